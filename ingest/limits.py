"""The limits every entry point checks, in one place.

HTTP (positions, alert import, queries), the CLI, the JT/T 808 gateway and the
readers refuse the same values for the same reasons. Each ``check_*`` helper
returns ``None`` for a good value or a :data:`Problem` ``(field, reason)``; the
reason names what was received (a short snippet, never the whole value) and
what is allowed. :func:`require` turns a problem into a :class:`LimitError`.

=========================  ==========================================================
Limit                      Value and why
=========================  ==========================================================
``PLATE_MAX_CHARS``        20 characters. Chinese plates are 7 (8 for new-energy),
                           written with separators and trailers up to ~10
                           (``浙D·12345挂``). A JT/T 808 terminal of an unplated vehicle
                           registers with plate colour 0 and its VIN (17 characters,
                           ISO 3779) in the plate field, and real fleets have such
                           terminals: 20 admits a VIN with room for a separator or a
                           prefix, and still refuses anything that is not a plate.
``ID_MAX_CHARS``           64 characters; ids match :data:`ID_PATTERN`: letters or
                           digits of any script, ``_ . : ~ -``. No ``/``, ``?``, ``#``,
                           ``%`` or spaces, so every id is reachable as one URL path
                           segment (alert ids are ``ID-<16 hex>``, 19 characters).
``TIME_MIN``/``TIME_MAX``  1990-01-01T00:00:00Z (inclusive) .. 2100-01-01T00:00:00Z
                           (exclusive): GPS-era data, well inside the int64-nanosecond
                           range of numpy/pandas (1677..2262); the tracks reader uses
                           the same range.
``LON_RANGE_DEG``          [-180, 180] degrees; ``LAT_RANGE_DEG`` [-90, 90] degrees.
``TEXT_MAX_CHARS``         2,000 characters for free text (notes, summaries).
``BATCH_MAX_POINTS``       50,000 points per position push (~6 MB of JSON, under the body limit).
``IMPORT_MAX_FEATURES``    100,000 alerts per import.
``BODY_MAX_BYTES``         8 MiB per HTTP request body by default (``HAULWATCH_MAX_BODY_BYTES``).
``SNIPPET_CHARS``          40: error messages quote at most this much of a value.
=========================  ==========================================================

Every string must also be valid Unicode (no lone surrogates such as ``\\ud800``,
which JSON can carry but UTF-8 cannot store) and free of control characters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from haulwatch.errors import UserError

__all__ = [
    "BATCH_MAX_POINTS",
    "BODY_MAX_BYTES",
    "ID_MAX_CHARS",
    "ID_PATTERN",
    "IMPORT_MAX_FEATURES",
    "LAT_RANGE_DEG",
    "LON_RANGE_DEG",
    "PLATE_MAX_CHARS",
    "SNIPPET_CHARS",
    "TEXT_MAX_CHARS",
    "TIME_MAX",
    "TIME_MAX_NS",
    "TIME_MIN",
    "TIME_MIN_NS",
    "TIME_RANGE_REASON",
    "LimitError",
    "Problem",
    "check_id",
    "check_lon_lat",
    "check_plate",
    "check_text",
    "check_time",
    "coords_in_range",
    "plate_problems",
    "require",
    "snippet",
    "text_problems",
    "text_year_out_of_range",
    "times_in_range_ns",
]

PLATE_MAX_CHARS: int = 20
ID_MAX_CHARS: int = 64
#: An id: 1..ID_MAX_CHARS letters/digits of any script or ``_ . : ~ -``.
ID_PATTERN: re.Pattern[str] = re.compile(rf"[\w.:~-]{{1,{ID_MAX_CHARS}}}")
TIME_MIN: datetime = datetime(1990, 1, 1, tzinfo=timezone.utc)
TIME_MAX: datetime = datetime(2100, 1, 1, tzinfo=timezone.utc)
TIME_MIN_NS: int = int(TIME_MIN.timestamp()) * 1_000_000_000
TIME_MAX_NS: int = int(TIME_MAX.timestamp()) * 1_000_000_000
LON_RANGE_DEG: tuple[float, float] = (-180.0, 180.0)
LAT_RANGE_DEG: tuple[float, float] = (-90.0, 90.0)
TEXT_MAX_CHARS: int = 2000
BATCH_MAX_POINTS: int = 50_000
IMPORT_MAX_FEATURES: int = 100_000
BODY_MAX_BYTES: int = 8 * 1024 * 1024
SNIPPET_CHARS: int = 40

_TIME_RANGE_TEXT = "1990-01-01T00:00:00Z .. 2100-01-01T00:00:00Z"
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_YEAR_RE = re.compile(r"\s*([+-]?\d{1,9})-")

Problem = tuple[str, str]
"""``(field, reason)``: which field is wrong and why."""


class LimitError(UserError, ValueError):
    """A value outside the limits of :mod:`haulwatch.ingest.limits`.

    Parameters
    ----------
    field : str
        The field concerned (``vehicle_id``, ``time``, ``alert_id``...).
    reason : str
        Why, with a short snippet of the value and what is allowed.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def snippet(value: Any, max_chars: int = SNIPPET_CHARS) -> str:
    """A short, printable quote of a value for an error message.

    Strings longer than ``max_chars`` are cut and their length is given; lone
    surrogates and control characters are escaped, so the result is always
    valid UTF-8.
    """
    if isinstance(value, str):
        cut = value[:max_chars]
        text = repr(cut).encode("utf-8", "backslashreplace").decode("utf-8")
        if len(value) > max_chars:
            text = f"{text[:-1]}…{text[-1]} ({len(value):,} characters)"
        return text
    text = repr(value)
    if len(text) > max_chars:
        text = f"{text[:max_chars]}… ({type(value).__name__})"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _unicode_problem(field: str, value: str) -> Problem | None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return field, (f"not valid Unicode: lone surrogate at character {exc.start} "
                       f"in {snippet(value)}")
    m = _CONTROL_RE.search(value)
    if m is not None:
        return field, f"control character {m.group()!r} at character {m.start()} in {snippet(value)}"
    return None


def check_text(value: Any, field: str, *, max_chars: int = TEXT_MAX_CHARS,
               required: bool = False) -> Problem | None:
    """Check free text: a string, valid Unicode, at most ``max_chars`` characters.

    Parameters
    ----------
    value : any
        The value received (None passes unless ``required``).
    field : str
        Field name for the problem.
    max_chars : int, default TEXT_MAX_CHARS
    required : bool, default False
        Refuse None and the empty string.
    """
    if value is None or value == "":
        return (field, "missing; a non-empty text is required") if required else None
    if not isinstance(value, str):
        return field, f"must be a string, got {type(value).__name__} {snippet(value)}"
    if len(value) > max_chars:
        return field, f"too long: {len(value):,} characters, at most {max_chars:,} allowed"
    return _unicode_problem(field, value)


def check_plate(value: Any, field: str = "vehicle_id") -> Problem | None:
    """Check a licence plate: a non-empty string of at most :data:`PLATE_MAX_CHARS`."""
    if value is None or value == "":
        return field, f"missing {field}"
    if not isinstance(value, str):
        return field, (f"must be a string (the plate, e.g. '浙D12345'), got "
                       f"{type(value).__name__} {snippet(value)}")
    if len(value) > PLATE_MAX_CHARS:
        return field, (f"too long for a plate: {len(value):,} characters in {snippet(value)}, "
                       f"at most {PLATE_MAX_CHARS} allowed")
    return _unicode_problem(field, value)


def check_id(value: Any, field: str) -> Problem | None:
    """Check an id (alert, mission, site...): :data:`ID_PATTERN`, at most :data:`ID_MAX_CHARS`."""
    if value is None or value == "":
        return field, "missing id"
    if not isinstance(value, str):
        return field, f"must be a string id, got {type(value).__name__} {snippet(value)}"
    if len(value) > ID_MAX_CHARS:
        return field, f"too long: {len(value):,} characters, at most {ID_MAX_CHARS} allowed"
    if ID_PATTERN.fullmatch(value) is None:
        bad = next((c for c in value if not ID_PATTERN.fullmatch(c)), "")
        return field, (f"{snippet(value)} has character {snippet(bad)}; allowed: letters, digits, "
                       "'_', '.', ':', '~', '-'")
    return None


def check_time(value: Any, field: str) -> Problem | None:
    """Check a parsed time: a tz-aware datetime in [:data:`TIME_MIN`, :data:`TIME_MAX`).

    Parameters
    ----------
    value : datetime or pandas.Timestamp
        The time (naive is refused: the caller decides the zone first).
    field : str
    """
    if not isinstance(value, datetime):
        return field, f"must be a time, got {type(value).__name__} {snippet(value)}"
    if value.tzinfo is None or value.utcoffset() is None:
        return field, f"time {snippet(value.isoformat())} has no zone offset"
    if not (TIME_MIN <= value < TIME_MAX):
        return field, f"time {snippet(value.isoformat())} outside {_TIME_RANGE_TEXT}"
    return None


def check_lon_lat(lon: Any, lat: Any, *, prefix: str = "") -> Problem | None:
    """Check WGS-84-like degrees: finite numbers within :data:`LON_RANGE_DEG` / :data:`LAT_RANGE_DEG`."""
    for name, value, (lo, hi) in (("lon", lon, LON_RANGE_DEG), ("lat", lat, LAT_RANGE_DEG)):
        field = prefix + name
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating,
                                                              np.integer)):
            return field, f"must be a number of degrees, got {type(value).__name__} {snippet(value)}"
        if not math.isfinite(float(value)) or not lo <= float(value) <= hi:
            return field, f"{snippet(value)} out of range [{lo:g}, {hi:g}] degrees"
    return None


def require(problem: Problem | None) -> None:
    """Raise :class:`LimitError` for a problem; do nothing for None."""
    if problem is not None:
        raise LimitError(*problem)


# ----------------------------------------------------------------- whole columns
def times_in_range_ns(ns: np.ndarray) -> np.ndarray:
    """Mask of int64 UTC nanoseconds inside [:data:`TIME_MIN_NS`, :data:`TIME_MAX_NS`)."""
    ns = np.asarray(ns, dtype="int64")
    return (ns >= TIME_MIN_NS) & (ns < TIME_MAX_NS)


def coords_in_range(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Mask of finite lon/lat inside the degree ranges (NaN → False)."""
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    with np.errstate(invalid="ignore"):
        return ((lon >= LON_RANGE_DEG[0]) & (lon <= LON_RANGE_DEG[1])
                & (lat >= LAT_RANGE_DEG[0]) & (lat <= LAT_RANGE_DEG[1]))


def text_problems(values: Any, field: str, *, max_chars: int = TEXT_MAX_CHARS) -> np.ndarray:
    """Why each text of a column is refused (None where it is fine), for readers.

    The column form of :func:`check_text` for files: missing values pass (the
    reader decides whether the field is required); strings over ``max_chars``,
    with a control character or not valid Unicode get the reason of
    :func:`check_text`; other values are judged by their text. A cheap screen
    (length, :meth:`str.isprintable`) runs first, so only suspects are checked
    in full. It loops in Python: pass the distinct values of a large column.

    Parameters
    ----------
    values : sequence or pandas.Series
        The texts.
    field : str
        Field name used in the reasons.
    max_chars : int, default TEXT_MAX_CHARS

    Returns
    -------
    numpy.ndarray of object
        Reason text or None, one per value.
    """
    return _column_problems(values, max_chars,
                            lambda text: check_text(text, field, max_chars=max_chars))


def _column_problems(values: Any, max_chars: int,
                     check: Callable[[str], Problem | None]) -> np.ndarray:
    vals = np.asarray(pd.Series(values, dtype=object).to_numpy(), dtype=object)
    out = np.full(len(vals), None, dtype=object)
    missing = pd.isna(vals)
    for i, v in enumerate(vals):
        if missing[i]:
            continue
        text = v if isinstance(v, str) else str(v)
        if len(text) > max_chars or not text.isprintable():
            problem = check(text)
            if problem is not None:
                out[i] = problem[1]
    return out


def plate_problems(values: Any, field: str = "vehicle_id") -> np.ndarray:
    """Why each plate of a column is refused (None where fine): :func:`check_plate` for files.

    Over :data:`PLATE_MAX_CHARS` characters, a control character or broken
    Unicode. Missing values pass (the reader reports them itself).
    """
    return _column_problems(values, PLATE_MAX_CHARS, lambda text: check_plate(text, field))


def text_year_out_of_range(values: list[Any]) -> np.ndarray:
    """Mask of ISO-like time texts whose leading year is outside the time range.

    A cheap screen before parsing (``9999-12-31T…``, ``0001-01-01``, ``-5000-…``):
    values that are not text or do not start with ``<year>-`` give False. It
    loops in Python, so use it on bounded inputs (a request, at most
    :data:`BATCH_MAX_POINTS` values), not on fleet files.
    """
    lo, hi = TIME_MIN.year, TIME_MAX.year
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if isinstance(v, str):
            m = _YEAR_RE.match(v)
            if m is not None:
                year = int(m.group(1))
                out[i] = not (lo <= year < hi)
    return out


#: Why a time is refused (for readers reporting rows outside the range).
TIME_RANGE_REASON: str = f"time outside {_TIME_RANGE_TEXT}"
