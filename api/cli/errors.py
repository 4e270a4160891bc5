"""The command line's one usage error and how exceptions become exit statuses.

Every subcommand raises :class:`UsageError` for a wrong option or argument; the
library raises its own :class:`haulwatch.errors.UserError` subclasses for a bad
file, field or value. :func:`haulwatch.api.cli.main` turns both into one line on
stderr and exit status 2 **by class** (never by module or name), a Ctrl-C into
130, and lets anything else (a bug) show its traceback.
"""

from __future__ import annotations

from haulwatch.errors import UserError

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "FILE_ERRORS",
    "UsageError",
    "one_line",
]

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it

# Operating-system errors about a path the user named: the user fixes them too.
FILE_ERRORS: tuple[type[OSError], ...] = (
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
    PermissionError,
)


class UsageError(UserError, ValueError):
    """A command-line option, argument or named file is wrong (exit status 2).

    The message names the option, the value received and what is allowed, e.g.
    ``option --workers: value 0 is not allowed; allowed: >= 1``.
    """


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (lines joined by ``"; "``; class name if empty).

    Parameters
    ----------
    exc : BaseException
        The exception to report.

    Returns
    -------
    str
        A single line without a traceback.
    """
    parts = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return "; ".join(parts) if parts else type(exc).__name__
