"""The dataset time zone: one default and one check, for every room.

Times in haulwatch are tz-aware; a naive time is dataset-local, and a dataset
that names no zone is in :data:`DEFAULT_TIMEZONE` (Zhejiang: China Standard
Time). Every reader, configuration and face that accepts a zone name checks it
with :func:`check_timezone`, so the same bad name gets the same answer
everywhere. Like the rest of the root, this imports no room.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from haulwatch.errors import UserError

__all__ = ["DEFAULT_TIMEZONE", "TimezoneError", "check_timezone"]

#: Zone of naive times, local days and hotspot-id days when a dataset names none.
DEFAULT_TIMEZONE = "Asia/Shanghai"


class TimezoneError(UserError, ValueError):
    """A time-zone name is not a known IANA zone."""


def check_timezone(
    value: object,
    *,
    what: str = "timezone",
    error: type[Exception] = TimezoneError,
) -> str:
    """Return ``value`` (stripped) if it names an IANA time zone.

    Parameters
    ----------
    value : object
        The zone name, e.g. ``"Asia/Shanghai"`` or ``"UTC"``. Must be a string.
    what : str, default "timezone"
        What the value is, named first in the error message (e.g.
        ``"dataset.toml: timezone"`` or ``"audit setting 'timezone'"``).
    error : type of Exception, default TimezoneError
        Class raised, so a caller keeps its own error type (it should derive
        from :class:`haulwatch.errors.UserError` and ``ValueError``).

    Returns
    -------
    str
        The stripped zone name.

    Raises
    ------
    TimezoneError
        (or ``error``) if ``value`` is not a string naming a known zone.
    """
    name = value.strip() if isinstance(value, str) else None
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
        else:
            return name
    raise error(
        f"{what} {value!r} is not a known IANA timezone; "
        f"expected a name like {DEFAULT_TIMEZONE!r} or 'UTC'"
    )
