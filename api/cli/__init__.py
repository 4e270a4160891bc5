"""The ``haulwatch`` command: one entry point, one sub-command module each.

Each sub-command lives in ``api/cli/<name>.py`` and exposes
``register(subparsers) -> None``; handlers import heavy libraries lazily so
``haulwatch --help`` stays fast.

Exit statuses are decided here, once, by exception class: any
:class:`haulwatch.errors.UserError` (bad option, file, field or value; the CLI's
own is :class:`~haulwatch.api.cli.errors.UsageError`) and the operating system's
errors about a named path print one line on stderr and give 2; Ctrl-C gives 130;
anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from haulwatch import __version__
from haulwatch.api.cli.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FILE_ERRORS,
    UsageError,
    one_line,
)
from haulwatch.errors import UserError

__all__ = ["UsageError", "build_parser", "main"]

# Sub-command modules, in the order ``haulwatch --help`` lists them.
_COMMANDS: tuple[str, ...] = (
    "audit",
    "generate",
    "evaluate",
    "serve",
    "replay",
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
    parser.add_argument("--version", action="version", version=f"haulwatch {__version__}")
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
    """Run the command line; return the process exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 success; 1 a subcommand's own failure (e.g. a score below
        ``--fail-under``, a failed flight); 2 bad input (one line on stderr);
        130 interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    prog = f"haulwatch {args.command}"
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserError, *FILE_ERRORS) as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
