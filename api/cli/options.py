"""Argument types shared by the subcommands (argparse ``type=`` callables).

A type callable raises ``argparse.ArgumentTypeError``; argparse then prints the
usage and ``argument --X: <message>`` and exits with status 2, before any work.
"""

from __future__ import annotations

import argparse

__all__ = ["PORT_MAX", "tcp_port"]

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
