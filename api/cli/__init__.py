"""The ``haulwatch`` command: one entry point, one sub-command module each.

Each sub-command lives in ``api/cli/<name>.py`` and exposes
``register(subparsers) -> None``; handlers import heavy libraries lazily so
``haulwatch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Sub-command modules, in the order ``haulwatch --help`` lists them.
_COMMANDS: tuple[str, ...] = (
    "audit",
    "generate",
    "evaluate",
    "serve",
    "plan",
    "fly",
    "sim",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="haulwatch",
        description=(
            "Supervise construction-waste haulage ('two points, one line'): audit "
            "truck GPS against permits, manifests and approved routes, serve the "
            "alerts, and send a drone to look."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        try:
            module = importlib.import_module(f"haulwatch.api.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"haulwatch.api.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    return int(args.handler(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
