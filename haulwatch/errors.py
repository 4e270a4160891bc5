"""The one error root of haulwatch.

Every exception the project raises on purpose derives from :class:`HaulwatchError`
(as shapely's derive from ``ShapelyError``) and from the builtin that fits it, so
callers can catch either. :class:`UserError` marks the problems a user fixes
(a file, a field, an argument, a threshold): the command line answers them with
one line and exit status 2, by class, never by module or name.
"""

from __future__ import annotations

__all__ = ["HaulwatchError", "UserError"]


class HaulwatchError(Exception):
    """Root of every exception haulwatch raises on purpose."""


class UserError(HaulwatchError):
    """Input the user can correct: bad file, field, value or argument (CLI exit status 2)."""
