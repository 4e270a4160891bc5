"""Times of the input files: one parser for tracks and manifests.

ISO 8601 with an offset (or ``Z``) are exact; ISO 8601 without an offset are
wall-clock times of the dataset timezone (DST gaps are shifted forward,
repeated hours resolve to the first occurrence, like Python's ``fold=0``);
plain numbers are epoch seconds (values of 1e11 and more are taken as epoch
milliseconds); Parquet timestamps are converted (naive ones are local). All
become UTC epoch nanoseconds with a status per cell. The common whole-second
forms are parsed by Arrow's C++ ``strptime`` in one pass; only what remains
is classified by regular expressions and handed to slower parsers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from haulwatch.ingest.limits import TIME_MAX_NS, TIME_MIN_NS
from haulwatch.timezone import check_timezone as _check_zone

from .cells import as_chunked, blank_to_null, null_mask, numeric_cells, to_string
from .rejects import SchemaError

__all__ = [
    "MAX_TIME_NS",
    "MIN_TIME_NS",
    "NAT_NS",
    "T_BAD",
    "T_MISSING",
    "T_OK",
    "T_RANGE",
    "check_timezone",
    "parse_times",
]

_NS_PER_S = 1_000_000_000
_NS_PER_DAY = 86_400 * _NS_PER_S
MIN_TIME_NS = TIME_MIN_NS  # the time range of haulwatch.ingest.limits, one place for every entry
MAX_TIME_NS = TIME_MAX_NS
NAT_NS = np.iinfo("int64").min
#: Times far outside the range but inside int64 ns (years 2200 / 1800): what a parsed
#: time beyond the nanosecond range (year 9999, year 1) becomes, so it is T_RANGE.
_FAR_LATE_NS = int(np.datetime64("2200-01-01T00:00:00", "ns").view("int64"))
_FAR_EARLY_NS = int(np.datetime64("1800-01-01T00:00:00", "ns").view("int64"))
_LOCALIZE_MARGIN_NS = 2 * 86_400 * _NS_PER_S
_EPOCH_MS_FROM = 1e11  # epoch seconds this large would be year 5138: they are milliseconds
_NUMBER_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_OFFSET_RE = r"[T ]\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"

# Time parse status codes.
T_OK, T_MISSING, T_BAD, T_RANGE = 0, 1, 2, 3


def check_timezone(value: object, *, file: str | None = None) -> str:
    """Return ``value`` (stripped) if it names an IANA zone.

    The input files' face of the project's one zone check
    (:func:`haulwatch.timezone.check_timezone`), raising :class:`SchemaError`.

    Parameters
    ----------
    value : object
        The zone name, e.g. ``"Asia/Shanghai"``.
    file : str, optional
        File named at the start of the error message.

    Returns
    -------
    str
        The stripped zone name.

    Raises
    ------
    SchemaError
        If the zone is unknown (e.g. ``"Asia/Shangai"``).
    """
    where = f"{file}: " if file else ""
    return _check_zone(value, what=f"{where}timezone", error=SchemaError)


def _epoch_to_ns(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds (or milliseconds when >= 1e11) → int64 ns; bad mask for non-finite.

    Finite values beyond the int64 nanosecond range get a time just outside
    1990..2100, so that they are reported as out of range, not as unparseable.
    """
    with np.errstate(invalid="ignore"):
        secs = np.where(np.abs(seconds) >= _EPOCH_MS_FROM, seconds / 1000.0, seconds)
        nonfinite = ~np.isfinite(secs)
        fits = ~nonfinite & (np.abs(secs) < 9.2e9)
        ns = np.full(len(secs), NAT_NS, dtype="int64")
        ns[~nonfinite & ~fits & (secs > 0)] = MAX_TIME_NS
        ns[~nonfinite & ~fits & (secs < 0)] = MIN_TIME_NS - 1
    whole = np.floor(secs[fits])
    frac = secs[fits] - whole
    ns[fits] = whole.astype("int64") * _NS_PER_S + np.round(frac * 1e6).astype("int64") * 1000
    return ns, nonfinite


def _localize(naive_ns: np.ndarray, timezone: str) -> np.ndarray:
    """Wall-clock ns in ``timezone`` → UTC ns (NaT kept).

    Only wall-clock times within two days of the time range are localized: a
    zone's offset is under a day, so the others stay outside the range as they
    are (and are reported so), and none can overflow int64 nanoseconds by the
    shift (``2262-04-11 23:00`` in ``America/Los_Angeles``).
    """
    naive_ns = np.asarray(naive_ns, dtype="int64")
    near = (naive_ns >= MIN_TIME_NS - _LOCALIZE_MARGIN_NS) & (naive_ns < MAX_TIME_NS
                                                              + _LOCALIZE_MARGIN_NS)
    every = bool(near.all())  # the common case: no copy in and out of a subset
    sub = naive_ns if every else naive_ns[near]
    idx = pd.DatetimeIndex(sub.view("datetime64[ns]"))
    ambiguous = np.ones(len(idx), dtype=bool)  # repeated hour: the first (DST) occurrence
    loc = idx.tz_localize(timezone, ambiguous=ambiguous, nonexistent="shift_forward")
    if every:
        return loc.as_unit("ns").asi8.copy()
    out = naive_ns.copy()
    out[near] = loc.as_unit("ns").asi8
    return out


def parse_times(
    values: pa.Array | pa.ChunkedArray | pd.Series | np.ndarray, timezone: str
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column of times into UTC nanoseconds.

    Parameters
    ----------
    values : pyarrow array, pandas Series or numpy array
        Text (ISO 8601 with or without offset, or epoch seconds as digits),
        numbers (epoch seconds; ``>= 1e11`` → epoch milliseconds) or
        timestamps (tz-aware → converted; naive → local to ``timezone``).
    timezone : str
        IANA zone of times written without an offset.

    Returns
    -------
    ns : numpy.ndarray of int64
        UTC epoch nanoseconds; ``numpy.iinfo('int64').min`` (NaT) where not parsed.
    status : numpy.ndarray of int8
        0 ok, 1 missing, 2 unparseable, 3 outside 1990-01-01..2100-01-01.
    """
    col = as_chunked(values)
    t = col.type
    n = len(col)
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    status = np.zeros(n, dtype="int8")
    if pa.types.is_timestamp(t):
        missing = null_mask(col)
        factor = {"s": _NS_PER_S, "ms": 1_000_000, "us": 1000, "ns": 1}[t.unit]
        raw = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)
        raw = np.where(missing, 0, raw).astype("int64")
        lim = np.iinfo("int64").max // factor
        over = np.abs(raw) >= lim
        ns = np.where(over, 0, raw) * factor
        if t.tz is None:
            ns_ok = ~missing & ~over
            ns = np.where(ns_ok, ns, NAT_NS)
            ns = _localize(ns, timezone)
        ns = np.where(missing | over, NAT_NS, ns)
        status[missing] = T_MISSING
        status[over & ~missing] = T_RANGE
    elif pa.types.is_date(t):
        missing = null_mask(col)
        days = pc.cast(pc.cast(col, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        days = np.where(missing, 0, days).astype("int64")
        over = ~missing & ((days < _FAR_EARLY_NS // _NS_PER_DAY)
                           | (days > _FAR_LATE_NS // _NS_PER_DAY))  # year 9999 overflows ns
        ns = np.where(over, 0, days) * _NS_PER_DAY
        ns = _localize(np.where(missing | over, NAT_NS, ns), timezone)
        status[missing] = T_MISSING
        status[over] = T_RANGE
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        secs, missing, _ = numeric_cells(col)
        ns, bad = _epoch_to_ns(secs)
        status[bad] = T_BAD
        status[missing] = T_MISSING
    else:
        ns, missing = _parse_text_times(to_string(col), timezone)
        status[ns == NAT_NS] = T_BAD
        status[missing] = T_MISSING
    ok = status == T_OK
    out_of_range = ok & ((ns < MIN_TIME_NS) | (ns >= MAX_TIME_NS))
    status[out_of_range] = T_RANGE
    ns = np.where(status == T_OK, ns, NAT_NS)
    return ns.astype("int64"), status


# Whole-second forms parsed in C++ before anything else (the slash form is common in
# exports from Chinese fleet platforms; year first, so it is unambiguous).
_FAST_FORMATS = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S")


_LATE_DAY_RE = r"^\s*\d{4}[-/]\d{1,2}[-/](29|30|31)(\D|$)"
_DATE_RE = r"^\s*(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})"


def _rolled_over(text: pa.ChunkedArray, parsed: pa.ChunkedArray, *, aware: bool) -> np.ndarray:
    """Rows where strptime silently rolled an impossible date over (2024-02-30 → 03-01).

    The written day is checked against the length of the written month. For
    wall-clock times only parsed days 1–3 of March, May, July, October and
    December can come from a roll-over, so only those are looked at; with an offset the parsed (UTC) day says nothing, so
    every row is checked.
    """
    n = len(parsed)
    out = np.zeros(n, dtype=bool)
    if aware:
        cand = np.ones(n, dtype=bool)
    else:
        # A roll-over lands on day 1–3 of the month after a short one.
        day = np.asarray(pc.fill_null(pc.day(parsed), 0).to_numpy(zero_copy_only=False))
        cand = (day >= 1) & (day <= 3)
        if cand.any():
            month = np.asarray(pc.fill_null(pc.month(parsed), 0).to_numpy(zero_copy_only=False))
            cand &= np.isin(month, (3, 5, 7, 10, 12))
        if not cand.any():
            return out
    sub = text if cand.all() else text.filter(pa.array(cand))
    # Only days 29–31 can be impossible: a cheap regex match first, the extraction after.
    late = np.asarray(pc.fill_null(pc.match_substring_regex(sub, _LATE_DAY_RE), False)
                      .to_numpy(zero_copy_only=False), dtype=bool)
    if not late.any():
        return out
    pos = np.flatnonzero(cand)[late]
    parts = pc.extract_regex(sub.filter(pa.array(late)), _DATE_RE)
    ymd = [np.asarray(pc.cast(pc.fill_null(pc.struct_field(parts, [i]), "1"), pa.int64())
                      .to_numpy(zero_copy_only=False)) for i in range(3)]
    month0 = (ymd[0] - 1970) * 12 + np.clip(ymd[1], 1, 12) - 1
    start = month0.astype("datetime64[M]")
    days_in_month = ((start + 1).astype("datetime64[D]") - start.astype("datetime64[D]")).astype(
        "int64")
    out[pos] = ymd[2] > days_in_month
    return out


def _strptime_pass(col: pa.ChunkedArray, todo: np.ndarray, ns: np.ndarray, *,
                   aware: bool) -> np.ndarray:
    """Parse ``col[todo]`` with the whole-second formats (Arrow C++); fill ``ns``.

    Returns the mask of rows parsed; ``todo`` is updated in place.
    """
    done = np.zeros(len(col), dtype=bool)
    for fmt in _FAST_FORMATS:
        if not todo.any():
            break
        sub = col if todo.all() else col.filter(pa.array(todo))
        res = pc.strptime(sub, format=fmt + ("%z" if aware else ""), unit="ns",
                          error_is_null=True)
        got = ~null_mask(res)
        if got.any():
            got &= ~_rolled_over(sub, res, aware=aware)
        if got.any():
            pos = np.flatnonzero(todo)[got]
            vals = np.asarray(pc.cast(res, pa.int64()).to_numpy(zero_copy_only=False))
            ns[pos] = vals[got]
            todo[pos] = False
            done[pos] = True
    return done


def _parse_text_times(col: pa.ChunkedArray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Text times → (UTC ns with NaT, missing mask).

    Fast path first: the common whole-second ISO forms without offset are parsed
    by Arrow in one pass; only what remains is classified (epoch number, ISO
    with offset, other ISO forms) by regular expressions.
    """
    n = len(col)
    ns = np.full(n, NAT_NS, dtype="int64")
    missing = null_mask(col)
    todo = ~missing
    naive = _strptime_pass(col, todo, ns, aware=False)
    if todo.any():
        pos = np.flatnonzero(todo)
        # full-width digits, colons and signs → ASCII before the slower parsers
        part = blank_to_null(pc.utf8_normalize(col.filter(pa.array(todo)), "NFKC"))
        blank = null_mask(part)
        missing[pos[blank]] = True
        is_num = np.asarray(pc.fill_null(pc.match_substring_regex(part, _NUMBER_RE), False)
                            .to_numpy(zero_copy_only=False), dtype=bool)
        has_off = np.asarray(pc.fill_null(pc.match_substring_regex(part, _OFFSET_RE), False)
                             .to_numpy(zero_copy_only=False), dtype=bool)
        if is_num.any():
            secs = pc.cast(part.filter(pa.array(is_num)), pa.float64())
            ns[pos[is_num]] = _epoch_to_ns(
                np.asarray(secs.to_numpy(zero_copy_only=False), dtype="float64"))[0]
        for mask, aware in ((~blank & ~is_num & has_off, True),
                            (~blank & ~is_num & ~has_off, False)):
            if mask.any():
                sub = part.filter(pa.array(mask))
                ns[pos[mask]] = _parse_iso(sub, aware=aware)
                if not aware:
                    naive[pos[mask]] = True
    naive &= ns != NAT_NS
    if naive.any():
        ns[naive] = _localize(ns[naive], timezone)
    return ns, missing


def _parse_iso(part: pa.ChunkedArray, *, aware: bool) -> np.ndarray:
    """ISO 8601 text → int64 ns (UTC if ``aware``, else wall clock); NaT where unparsed.

    Whole-second values go through Arrow's C++ ``strptime`` (fast path); the rest
    (fractions, week dates, other ISO forms) through pandas' ISO 8601 parser.
    """
    n = len(part)
    ns = np.full(n, NAT_NS, dtype="int64")
    todo = np.ones(n, dtype=bool)
    _strptime_pass(part, todo, ns, aware=aware)
    if not todo.any():
        return ns
    sub = part if todo.all() else part.filter(pa.array(todo))
    parsed = pd.to_datetime(pd.Series(sub.to_numpy(zero_copy_only=False), dtype=object),
                            format="ISO8601", utc=aware, errors="coerce")
    ns[todo] = _dt_to_ns(parsed)
    return ns


def _dt_to_ns(parsed: pd.Series) -> np.ndarray:
    """Datetime Series (any unit, NaT allowed) → int64 ns with NaT as int64 min.

    pandas parses ISO text into microseconds, so years 1..9999 arrive here;
    times beyond the int64-nanosecond range (``9999-12-31``, ``0001-01-01``,
    ``2262-04-12``) become :data:`_FAR_LATE_NS` / :data:`_FAR_EARLY_NS`, outside
    the time range, so that they are reported as out of range, never raised.
    """
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    vals = np.asarray(parsed.to_numpy(), dtype="datetime64")
    unit = np.datetime_data(vals.dtype)[0]
    nat = np.isnat(vals)
    late = ~nat & (vals >= np.datetime64(_FAR_LATE_NS, "ns").astype(vals.dtype))
    early = ~nat & (vals < np.datetime64(_FAR_EARLY_NS, "ns").astype(vals.dtype))
    fits = ~nat & ~late & ~early
    ns = np.full(len(vals), NAT_NS, dtype="int64")
    ns[late] = _FAR_LATE_NS
    ns[early] = _FAR_EARLY_NS
    ns[fits] = vals[fits].astype(f"datetime64[{unit}]").astype("datetime64[ns]").view("int64")
    return ns
