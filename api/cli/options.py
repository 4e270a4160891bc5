"""Argument types and parsers shared by the subcommands.

A type callable raises ``argparse.ArgumentTypeError``; argparse then prints the
usage and ``argument --X: <message>`` and exits with status 2, before any work.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from haulwatch.api.cli.errors import UsageError

__all__ = ["PORT_MAX", "parse_overrides", "tcp_port"]

PORT_MAX = 65535  # TCP ports are 16-bit; 0 asks the system for any free port


def tcp_port(text: str) -> int:
    """Parse a TCP port: an integer 0..65535, 0 meaning any free port.

    Parameters
    ----------
    text : str
        The option's value as typed.

    Returns
    -------
    int
        The port.

    Raises
    ------
    argparse.ArgumentTypeError
        Naming the value and the allowed range.
    """
    try:
        port = int(text, 10)
    except ValueError:
        port = -1
    if not 0 <= port <= PORT_MAX:
        raise argparse.ArgumentTypeError(
            f"value {text!r} is not allowed; allowed: an integer 0..{PORT_MAX} "
            "(0 = any free port, shown at start-up)"
        )
    return port


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """Turn ``--set`` values ``["key=value", ...]`` into a dict (later items win).

    Shared by ``audit``, ``evaluate`` and ``serve``; the values are converted by
    ``AuditConfig.load`` / ``AuditConfig.with_overrides``.

    Parameters
    ----------
    items : sequence of str
        The ``--set`` values.

    Returns
    -------
    dict
        Setting name → value text.

    Raises
    ------
    UsageError
        (a ``UserError`` and ``ValueError``) when an item has no ``=`` or an empty key.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                f"option --set: value {item!r} is not allowed; allowed: KEY=VALUE, "
                "e.g. --set gap_max_s=900"
            )
        out[key.strip()] = value.strip()
    return out
