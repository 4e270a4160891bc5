"""Truck GPS tracks: read ``tracks.csv`` / ``tracks.parquet`` into the tracks frame.

The reader is column-wise and vectorized: the CSV is parsed by pyarrow with
explicit types (vehicle ids dictionary-encoded, everything else as text), each
column is converted once with a fast path for clean data, and every bad row is
recorded in the rejects frame with its 1-based data row, field, value and
reason. Required fields (``vehicle_id``, ``time``, ``lon``, ``lat``) drop the
row when bad; optional fields (``speed_kmh``, ``heading_deg``, ``load``,
``lift``) only clear the value. Rows with the same ``vehicle_key`` and time are
duplicates: the first in file order is kept, the others are counted in
``duplicates_dropped`` (they are not bad rows). The result is sorted by
``vehicle_key, time``. Invariant: ``rows_read = len(tracks) + rows_dropped +
duplicates_dropped``.

Times: ISO 8601 with an offset (or ``Z``) are exact; ISO 8601 without an
offset are wall-clock times of the dataset timezone (DST gaps are shifted
forward, repeated hours resolve to the first occurrence, like Python's
``fold=0``); plain numbers are epoch seconds (values of 1e11 and more are
taken as epoch milliseconds). All are stored as ``datetime64[ns, UTC]``.
"""

from __future__ import annotations

import csv
import io
import mmap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from haulwatch.errors import HaulwatchError

from .plates import normalize_plate
from .rejects import (
    ACTION_CLEARED,
    ACTION_DROPPED,
    SchemaError,
    concat_rejects,
    empty_rejects,
    make_rejects,
)

__all__ = [
    "LOAD_VALUES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TRACK_COLUMNS",
    "SkippedRows",
    "TracksResult",
    "check_timezone",
    "empty_tracks",
    "open_table",
    "parse_times",
    "read_table_columns",
    "read_tracks",
    "tracks_from_batches",
    "tracks_from_table",
]

#: Columns of the tracks frame, in order.
TRACK_COLUMNS: tuple[str, ...] = (
    "vehicle_id", "vehicle_key", "time", "lon", "lat",
    "speed_kmh", "heading_deg", "load", "lift", "src_row",
)
#: Columns a tracks file must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("vehicle_id", "time", "lon", "lat")
#: Columns a tracks file may have.
OPTIONAL_COLUMNS: tuple[str, ...] = ("speed_kmh", "heading_deg", "load", "lift")
#: Canonical load states (JT/T 808-2019 status bits 8–9).
LOAD_VALUES: tuple[str, ...] = ("empty", "half", "full")

# Spellings accepted for the load state (compared after strip + lower-case).
_LOAD_ALIASES: dict[str, str] = {
    "empty": "empty", "e": "empty", "0": "empty", "空": "empty", "空载": "empty", "空车": "empty",
    "half": "half", "h": "half", "1": "half", "半": "half", "半载": "half",
    "full": "full", "f": "full", "3": "full", "满": "full", "满载": "full", "重车": "full",
    "loaded": "full", "unloaded": "empty", "partial": "half",
}
_LIFT_ALIASES: dict[str, float] = {
    "0": 0.0, "1": 1.0, "0.0": 0.0, "1.0": 1.0, "false": 0.0, "true": 1.0,
    "f": 0.0, "t": 1.0, "no": 0.0, "yes": 1.0, "down": 0.0, "up": 1.0,
}

_NS_PER_S = 1_000_000_000
_MIN_TIME_NS = pd.Timestamp("1990-01-01", tz="UTC").value
_MAX_TIME_NS = pd.Timestamp("2100-01-01", tz="UTC").value
_NAT = np.iinfo("int64").min
_EPOCH_MS_FROM = 1e11  # epoch seconds this large would be year 5138: they are milliseconds
_MAX_SPEED_KMH = 400.0

_NUMBER_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$"
_OFFSET_RE = r"[T ]\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"

# Time parse status codes.
_T_OK, _T_MISSING, _T_BAD, _T_RANGE = 0, 1, 2, 3

Progress = Callable[[str], None] | None


@dataclass(frozen=True)
class TracksResult:
    """What :func:`read_tracks` returns.

    Attributes
    ----------
    tracks : pandas.DataFrame
        The tracks frame (columns :data:`TRACK_COLUMNS`).
    rejects : pandas.DataFrame
        Rejected rows and cleared values of this file.
    file : str
        File name (``tracks.csv`` or ``tracks.parquet``).
    rows_read : int
        Data rows in the file.
    rows_dropped : int
        Rows refused (one ``row_dropped`` reject each).
    duplicates_dropped : int
        Rows with the same ``vehicle_key`` and time as an earlier row.
    has_load, has_lift : bool
        Whether the file had a ``load`` / ``lift`` column.
    """

    tracks: pd.DataFrame
    rejects: pd.DataFrame
    file: str
    rows_read: int
    rows_dropped: int
    duplicates_dropped: int
    has_load: bool
    has_lift: bool


def empty_tracks() -> pd.DataFrame:
    """Return an empty tracks frame with the documented columns and dtypes.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TRACK_COLUMNS`, zero rows.
    """
    return pd.DataFrame(
        {
            "vehicle_id": pd.Categorical([]),
            "vehicle_key": pd.Categorical([]),
            "time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "lon": pd.Series([], dtype="float64"),
            "lat": pd.Series([], dtype="float64"),
            "speed_kmh": pd.Series([], dtype="float64"),
            "heading_deg": pd.Series([], dtype="float64"),
            "load": pd.Categorical([], categories=list(LOAD_VALUES)),
            "lift": pd.Series([], dtype="float64"),
            "src_row": pd.Series([], dtype="int64"),
        }
    )


# --------------------------------------------------------------------------- columns


def check_timezone(timezone: str) -> str:
    """Return ``timezone`` if it names an IANA zone.

    Parameters
    ----------
    timezone : str
        The zone name, e.g. ``"Asia/Shanghai"``.

    Returns
    -------
    str

    Raises
    ------
    SchemaError
        If the zone is unknown (e.g. ``"Asia/Shangai"``).
    """
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SchemaError(
            f"timezone {timezone!r} is not a known IANA timezone; "
            "expected a name like 'Asia/Shanghai' or 'UTC'"
        ) from exc
    return str(timezone)


def _as_chunked(values: pa.Array | pa.ChunkedArray | pd.Series | np.ndarray) -> pa.ChunkedArray:
    if isinstance(values, pa.ChunkedArray):
        return values
    if isinstance(values, pa.Array):
        return pa.chunked_array([values])
    if isinstance(values, pd.Series):
        return pa.chunked_array([pa.array(values.astype(object), from_pandas=True)])
    return pa.chunked_array([pa.array(np.asarray(values, dtype=object), from_pandas=True)])


def _to_string(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cast any column to (large) strings, dictionary and numbers included."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        try:
            return col.cast(pa.string())
        except pa.ArrowInvalid:  # not UTF-8: decode each distinct value (GB18030 first)
            enc = pc.dictionary_encode(col).combine_chunks()
            words = [None if v is None else _decode_bytes(v)
                     for v in enc.dictionary.to_pylist()]
            return pa.chunked_array([pc.take(pa.array(words, pa.string()), enc.indices)])
    return pc.cast(col, pa.string())


def _decode_bytes(raw: bytes) -> str:
    """Bytes that are not UTF-8: GB18030 (Chinese plates), else UTF-8 with U+FFFD."""
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")


def _blank_to_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strings that are empty after stripping become null."""
    stripped = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(pc.utf8_length(stripped), 0), pa.scalar(None, stripped.type),
                      stripped)


def _null_mask(col: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.is_null(col, nan_is_null=False).to_numpy(zero_copy_only=False), bool)


def _numeric(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert a column to float64.

    Returns
    -------
    values : float64 array (NaN where missing or not a number)
    missing : bool array, the cell was empty
    bad : bool array, the cell held text that is not a number
    """
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) \
            or pa.types.is_decimal(t):
        missing = _null_mask(col)
        # unsafe: a uint64 beyond 2**53 is a (rounded) number, not an error
        vals = pc.cast(col, pa.float64(), safe=False).to_numpy(
            zero_copy_only=False).astype("float64")
        vals[missing] = np.nan
        return vals, missing, np.zeros(len(vals), dtype=bool)
    col = _to_string(col)
    try:  # fast path: every non-empty cell is a plain number
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype("float64")
        missing = _null_mask(col)
        bad = np.zeros(len(vals), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # full-width digits and signs (１２１．５, typed in Chinese input methods) → ASCII
        col = _blank_to_null(pc.utf8_normalize(col, "NFKC"))
        missing = _null_mask(col)
        ser = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
        vals = pd.to_numeric(ser, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        # A literal "nan" is a number (non-finite), like on the fast path: not bad text.
        nan_word = ser.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
        bad = ~missing & np.isnan(vals) & ~nan_word
    vals = np.array(vals, dtype="float64")
    vals[missing] = np.nan
    return vals, missing, bad


def _epoch_to_ns(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds (or milliseconds when >= 1e11) → int64 ns; bad mask for non-finite.

    Finite values beyond the int64 nanosecond range get a time just outside
    1990..2100, so that they are reported as out of range, not as unparseable.
    """
    with np.errstate(invalid="ignore"):
        secs = np.where(np.abs(seconds) >= _EPOCH_MS_FROM, seconds / 1000.0, seconds)
        nonfinite = ~np.isfinite(secs)
        fits = ~nonfinite & (np.abs(secs) < 9.2e9)
        ns = np.full(len(secs), _NAT, dtype="int64")
        ns[~nonfinite & ~fits & (secs > 0)] = _MAX_TIME_NS
        ns[~nonfinite & ~fits & (secs < 0)] = _MIN_TIME_NS - 1
    whole = np.floor(secs[fits])
    frac = secs[fits] - whole
    ns[fits] = whole.astype("int64") * _NS_PER_S + np.round(frac * 1e6).astype("int64") * 1000
    return ns, nonfinite


def _localize(naive_ns: np.ndarray, timezone: str) -> np.ndarray:
    """Wall-clock ns in ``timezone`` → UTC ns (NaT kept)."""
    idx = pd.DatetimeIndex(naive_ns.view("datetime64[ns]"))
    ambiguous = np.ones(len(idx), dtype=bool)  # repeated hour: the first (DST) occurrence
    loc = idx.tz_localize(timezone, ambiguous=ambiguous, nonexistent="shift_forward")
    return loc.as_unit("ns").asi8.copy()


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
    col = _as_chunked(values)
    t = col.type
    n = len(col)
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    status = np.zeros(n, dtype="int8")
    if pa.types.is_timestamp(t):
        missing = _null_mask(col)
        factor = {"s": _NS_PER_S, "ms": 1_000_000, "us": 1000, "ns": 1}[t.unit]
        raw = pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)
        raw = np.where(missing, 0, raw).astype("int64")
        lim = np.iinfo("int64").max // factor
        over = np.abs(raw) >= lim
        ns = np.where(over, 0, raw) * factor
        if t.tz is None:
            ns_ok = ~missing & ~over
            ns = np.where(ns_ok, ns, _NAT)
            ns = _localize(ns, timezone)
        ns = np.where(missing | over, _NAT, ns)
        status[missing] = _T_MISSING
        status[over & ~missing] = _T_RANGE
    elif pa.types.is_date(t):
        missing = _null_mask(col)
        days = pc.cast(pc.cast(col, pa.date32()), pa.int32()).to_numpy(zero_copy_only=False)
        ns = np.where(missing, 0, days).astype("int64") * 86_400 * _NS_PER_S
        ns = _localize(np.where(missing, _NAT, ns), timezone)
        status[missing] = _T_MISSING
    elif pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        secs, missing, _ = _numeric(col)
        ns, bad = _epoch_to_ns(secs)
        status[bad] = _T_BAD
        status[missing] = _T_MISSING
    else:
        ns, missing = _parse_text_times(_to_string(col), timezone)
        status[ns == _NAT] = _T_BAD
        status[missing] = _T_MISSING
    ok = status == _T_OK
    out_of_range = ok & ((ns < _MIN_TIME_NS) | (ns >= _MAX_TIME_NS))
    status[out_of_range] = _T_RANGE
    ns = np.where(status == _T_OK, ns, _NAT)
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
        got = ~_null_mask(res)
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
    ns = np.full(n, _NAT, dtype="int64")
    missing = _null_mask(col)
    todo = ~missing
    naive = _strptime_pass(col, todo, ns, aware=False)
    if todo.any():
        pos = np.flatnonzero(todo)
        # full-width digits, colons and signs → ASCII before the slower parsers
        part = _blank_to_null(pc.utf8_normalize(col.filter(pa.array(todo)), "NFKC"))
        blank = _null_mask(part)
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
    naive &= ns != _NAT
    if naive.any():
        ns[naive] = _localize(ns[naive], timezone)
    return ns, missing


def _parse_iso(part: pa.ChunkedArray, *, aware: bool) -> np.ndarray:
    """ISO 8601 text → int64 ns (UTC if ``aware``, else wall clock); NaT where unparsed.

    Whole-second values go through Arrow's C++ ``strptime`` (fast path); the rest
    (fractions, week dates, other ISO forms) through pandas' ISO 8601 parser.
    """
    n = len(part)
    ns = np.full(n, _NAT, dtype="int64")
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
    """Datetime Series (any unit, NaT allowed) → int64 ns with NaT as int64 min."""
    arr = parsed.dt.as_unit("ns") if hasattr(parsed, "dt") else parsed
    vals = arr.to_numpy()
    if vals.dtype.kind == "M":
        return vals.astype("datetime64[ns]").view("int64").copy()
    # tz-aware: to_numpy gives objects; go through the underlying ns values.
    return pd.DatetimeIndex(arr).as_unit("ns").asi8.copy()


# --------------------------------------------------------------------------- reading


def _sniff_header(path: Path) -> tuple[list[str], str, str]:
    """Return (column names, delimiter, encoding) of a CSV file."""
    with path.open("rb") as fh:
        raw = fh.read(65536)
    if not raw.strip():
        raise SchemaError(f"{path.name}: the file is empty; expected a header line with columns")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SchemaError(
            f"{path.name}: the file is UTF-16 (e.g. Excel 'Unicode text'); "
            "expected UTF-8 or GB18030: save it as 'CSV UTF-8'"
        )
    encoding = "utf-8"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3 and len(raw) == 65536:
            # A multi-byte character cut at the 64 KiB boundary: still UTF-8.
            text = raw[: exc.start].decode("utf-8-sig")
        else:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError as exc2:
                raise SchemaError(
                    f"{path.name}: cannot decode the file as UTF-8 or GB18030"
                ) from exc2
            encoding = "gb18030"
    first = text.splitlines()[0] if text.splitlines() else ""
    delimiter = ","
    if "," not in first:
        for cand in ("\t", ";", "|"):
            if cand in first:
                delimiter = cand
                break
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    return header, delimiter, encoding


def _match_columns(names: list[str], file: str, required: tuple[str, ...],
                   optional: tuple[str, ...]) -> dict[str, str]:
    """Map canonical column names to the file's names (case and spaces ignored)."""
    lookup: dict[str, str] = {}
    known = (*required, *optional)
    for pos, name in enumerate(names):
        key = str(name).strip().lstrip("\ufeff").lower()
        if key in lookup and key in known:
            first = names.index(lookup[key]) + 1
            raise SchemaError(
                f"{file}: column {key} appears twice in the header (columns {first} and "
                f"{pos + 1}: {lookup[key]!r}, {name!r}); keep one"
            )
        lookup.setdefault(key, name)
    missing = [c for c in required if c not in lookup]
    if missing:
        raise SchemaError(
            f"{file}: missing required column(s) {', '.join(missing)}; "
            f"required: {', '.join(required)}; optional: {', '.join(optional)}; "
            f"found: {', '.join(map(str, names)) or '(none)'}"
        )
    return {c: lookup[c] for c in (*required, *optional) if c in lookup}


class _RetryEncodingError(HaulwatchError):
    """Internal: the CSV is not UTF-8 after all; read it again as GB18030."""


class _RetryThreadsError(HaulwatchError):
    """Internal: ragged rows met in a threaded read; read again in order for row numbers."""


class _RetryQuotesError(HaulwatchError):
    """Internal: an unbalanced quote swallowed line ends; read again with quotes as text."""


def _read_attempts(read: Callable[[str | None, bool, bool], Any], file: str, *,
                   threads: bool = True) -> Any:
    """Call ``read(encoding, use_threads, quoting)`` until no internal retry is asked.

    The first try uses the sniffed encoding, threads (when allowed) and CSV
    quoting; a non-UTF-8 byte switches to GB18030, a ragged row to an ordered
    read, an unbalanced quote to reading quotes as text (one row per line).
    """
    encoding: str | None = None
    quoting = True
    for _ in range(8):
        try:
            return read(encoding, threads, quoting)
        except _RetryEncodingError:
            if encoding == "gb18030":
                break
            encoding = "gb18030"
        except _RetryThreadsError:
            threads = False
        except _RetryQuotesError:
            quoting = False
            threads = False
    raise SchemaError(f"{file}: cannot decode the file as UTF-8 or GB18030")


def _has_quote(path: Path) -> bool:
    """Whether the file holds a double quote anywhere (one memchr-speed scan)."""
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return mm.find(b'"') >= 0


def _has_line_break(col: pa.ChunkedArray) -> bool:
    """Whether any cell of a text column holds a line break (a quote ran over lines)."""
    if pa.types.is_dictionary(col.type):
        col = pa.chunked_array([c.dictionary for c in col.chunks], type=col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return False
    return any(bool(pc.any(pc.match_substring(col, br)).as_py()) for br in ("\n", "\r"))


def _blank_unbalanced_lines(path: Path, placeholder: bytes) -> tuple[bytes, dict[int, bytes]]:
    """The file's bytes with every line holding an odd number of quotes replaced.

    A quote that is never closed would swallow the lines after it. Those lines
    (0-based line index, the header being line 0, never touched) are replaced
    by ``placeholder`` (a line with the wrong number of fields, so the parser
    reports it with its number) and returned by index with their original bytes.
    Vectorized: one pass of numpy over the bytes; only the bad lines are copied.
    """
    data = path.read_bytes()
    buf = np.frombuffer(data, dtype=np.uint8)
    sep = ord("\n") if b"\n" in data else ord("\r")
    ends = np.flatnonzero(buf == sep)
    quotes = np.flatnonzero(buf == ord('"'))
    per_line = np.bincount(np.searchsorted(ends, quotes), minlength=len(ends) + 1)
    odd = np.flatnonzero(per_line % 2 == 1)
    odd = odd[odd > 0]
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends, [len(data)]])
    pieces: list[bytes] = []
    originals: dict[int, bytes] = {}
    pos = 0
    for line in odd.tolist():
        a, b = int(starts[line]), int(stops[line])
        text = data[a:b]
        originals[line] = text
        cr = b"\r" if text.endswith(b"\r") and sep == ord("\n") else b""
        pieces += [data[pos:a], placeholder + cr]
        pos = b
    pieces.append(data[pos:])
    return b"".join(pieces), originals



_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_BATCH_ROWS = 1 << 18
_BLOCK_BYTES = 1 << 24


@dataclass
class SkippedRows:
    """CSV rows the parser could not split into the header's columns.

    Filled while the batches are read: ``rows`` are 1-based data rows, ``texts``
    the raw lines, ``reasons`` why they were refused.
    """

    rows: list[int]
    texts: list[str]
    reasons: list[str]

    def rejects(self, file: str) -> pd.DataFrame:
        """These rows as ``row_dropped`` rejects (field ``row``)."""
        return make_rejects(file, self.rows, "row", self.texts, np.array(self.reasons, object))


def parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of ``tracks.parquet``: the file, or a folder's ``*.parquet`` (sorted).

    Raises
    ------
    SchemaError
        When the folder holds no Parquet file.
    """
    if not path.is_dir():
        return [path]
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise SchemaError(f"{path.name}: folder holds no *.parquet file")
    return files


def open_table(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...],
    *, dictionary: tuple[str, ...] = (), encoding: str | None = None,
    use_threads: bool = True, quoting: bool = True,
) -> tuple[list[str], Iterator[dict[str, pa.Array]], SkippedRows]:
    """Open a CSV or Parquet file and stream the wanted columns in batches.

    CSV cells are read as text (``dictionary`` columns dictionary-encoded),
    with empty cells as null; Parquet columns keep their types.

    Parameters
    ----------
    path : pathlib.Path
        A ``.csv`` (UTF-8 or GB18030; comma, tab, ``;`` or ``|`` separated)
        or ``.parquet`` file.
    required, optional : tuple of str
        Canonical column names; header names match case-insensitively.
    dictionary : tuple of str
        Columns to dictionary-encode (vehicle ids).
    encoding : str, optional
        Force a CSV encoding (default: sniffed from the first 64 KiB).
    use_threads : bool, default True
        Parse CSV blocks in parallel. Row numbers of ragged rows are only
        known single-threaded: a threaded read that meets one stops with
        ``_RetryThreadsError`` so that the caller reads again without threads.
    quoting : bool, default True
        Trust the CSV quotes. A value may not span lines: when an unbalanced
        quote makes one run over a line end, the read stops with
        ``_RetryQuotesError`` and the caller reads again with
        ``quoting=False``: then every line with an odd number of quotes is
        refused on its own (field ``row``), so no line is swallowed by
        another, and the other lines keep their quoting.

    Returns
    -------
    (list of str, iterator of dict, SkippedRows)
        The canonical names present, batches mapping them to arrays, and the
        ragged CSV rows skipped so far (complete once the batches are consumed).

    Raises
    ------
    SchemaError
        If the file cannot be parsed or lacks a required column.
    """
    file = path.name
    if path.suffix.lower() in _PARQUET_SUFFIXES:
        parts = parquet_parts(path)
        pfiles = []
        for part in parts:
            try:
                pfiles.append(pq.ParquetFile(part))
            except (pa.ArrowInvalid, OSError) as exc:
                raise SchemaError(f"{part.name}: not a readable Parquet file ({exc})") from exc
        mapping = _match_columns(list(pfiles[0].schema_arrow.names), file, required, optional)
        for part, pfile in zip(parts[1:], pfiles[1:], strict=True):
            missing = [a for a in mapping.values() if a not in pfile.schema_arrow.names]
            if missing:
                raise SchemaError(
                    f"{file}: part {part.name} lacks column(s) {', '.join(missing)} "
                    f"that {parts[0].name} has"
                )
        for canon, actual in mapping.items():
            typ = pfiles[0].schema_arrow.field(actual).type
            if pa.types.is_nested(typ):
                raise SchemaError(
                    f"{file}: column {actual!r} has the nested type {typ}; {canon} must be "
                    "a column of plain values (numbers, text or timestamps)"
                )

        def parquet_batches() -> Iterator[dict[str, pa.Array]]:
            got = False
            for pfile in pfiles:
                for batch in pfile.iter_batches(batch_size=_BATCH_ROWS,
                                                columns=list(mapping.values())):
                    got = True
                    yield {canon: batch.column(actual) for canon, actual in mapping.items()}
            if not got:
                empty = pfiles[0].schema_arrow.empty_table()
                yield {canon: empty.column(actual) for canon, actual in mapping.items()}

        return list(mapping), parquet_batches(), SkippedRows([], [], [])
    header, delimiter, sniffed = _sniff_header(path)
    encoding = encoding or sniffed
    mapping = _match_columns(header, file, required, optional)
    wanted = set(mapping.values())
    types = {
        name: (pa.dictionary(pa.int32(), pa.string())
               if any(mapping.get(d) == name for d in dictionary) else pa.string())
        for name in header if name in wanted
    }
    read_opts = pacsv.ReadOptions(encoding=encoding, block_size=_BLOCK_BYTES,
                                  use_threads=use_threads)
    skipped = SkippedRows([], [], [])

    spans_lines = [False]
    # Without any quote in the file no value can run over a line end: skip the checks.
    check_breaks = quoting and _has_quote(path)
    source: Path | pa.BufferReader = path
    unbalanced: dict[int, bytes] = {}
    placeholder = delimiter * (len(header) + 1)
    if not quoting:
        data, unbalanced = _blank_unbalanced_lines(path, placeholder.encode("ascii"))
        source = pa.BufferReader(data)

    def on_invalid(row: Any) -> str:
        number = row.number
        text = row.text
        if quoting and ("\n" in text or "\r" in text):
            spans_lines[0] = True
        line = -1 if number is None else int(number) - 1  # header is line 1
        reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        if line in unbalanced and text.rstrip("\r") == placeholder:
            text = unbalanced[line].decode(encoding, errors="replace").rstrip("\r")
            reason = "unbalanced quote: a quote opened in this line is never closed"
        skipped.rows.append(line)
        skipped.texts.append(text)
        skipped.reasons.append(reason)
        return "skip"

    parse_opts = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False,
                                    invalid_row_handler=on_invalid)
    conv_opts = pacsv.ConvertOptions(
        column_types=types, include_columns=list(mapping.values()),
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
    )

    def cells(batch: pa.RecordBatch) -> dict[str, pa.Array]:
        out = {canon: batch.column(actual) for canon, actual in mapping.items()}
        if quoting and (spans_lines[0] or (check_breaks and any(
                _has_line_break(pa.chunked_array([c])) for c in out.values()))):
            raise _RetryQuotesError(f"{file}: a quoted value runs over a line end")
        return out

    def csv_batches() -> Iterator[dict[str, pa.Array]]:
        try:
            reader = pacsv.open_csv(source, read_options=read_opts, parse_options=parse_opts,
                                    convert_options=conv_opts)
            got = False
            for batch in reader:
                if spans_lines[0]:
                    raise _RetryQuotesError(f"{file}: a quoted value runs over a line end")
                if use_threads and skipped.rows:
                    raise _RetryThreadsError(f"{file}: ragged rows; reading again in order")
                got = True
                yield cells(batch)
            if spans_lines[0]:
                raise _RetryQuotesError(f"{file}: a quoted value runs over a line end")
            if use_threads and skipped.rows:
                raise _RetryThreadsError(f"{file}: ragged rows; reading again in order")
            if not got:
                yield {canon: pa.array([], type=types[actual])
                       for canon, actual in mapping.items()}
        except pa.ArrowInvalid as exc:
            if encoding.replace("-", "").lower() == "utf8" and "UTF8" in str(exc).upper():
                raise _RetryEncodingError(str(exc)) from exc
            if quoting and "out of sync" in str(exc):  # a quote ran over a block's end
                raise _RetryQuotesError(str(exc)) from exc
            raise SchemaError(f"{file}: cannot parse the CSV ({exc})") from exc

    return list(mapping), csv_batches(), skipped


def read_table_columns(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...],
    *, dictionary: tuple[str, ...] = (),
) -> tuple[dict[str, pa.ChunkedArray], int, SkippedRows]:
    """Read the wanted columns of a CSV or Parquet file whole (small files).

    Parameters
    ----------
    path : pathlib.Path
        The file (see :func:`open_table`).
    required, optional : tuple of str
        Canonical column names; header names match case-insensitively.
    dictionary : tuple of str
        Columns to dictionary-encode.

    Returns
    -------
    (dict of str to pyarrow.ChunkedArray, int, SkippedRows)
        The columns found under their canonical names, the number of rows in
        them, and the ragged rows skipped (1-based data rows).

    Raises
    ------
    SchemaError
        If the file cannot be parsed or lacks a required column.
    """
    def read(encoding: str | None, _threads: bool, quoting: bool) -> tuple[
            dict[str, pa.ChunkedArray], int, SkippedRows]:
        # small files: in order, so ragged rows have numbers
        names, batches, skipped = open_table(path, required, optional, dictionary=dictionary,
                                             encoding=encoding, use_threads=False,
                                             quoting=quoting)
        parts = list(batches)
        cols = {name: pa.chunked_array([p[name] for p in parts]) for name in names}
        return cols, len(cols[names[0]]), skipped

    return _read_attempts(read, path.name, threads=False)


def _texts(col: pa.ChunkedArray, mask: np.ndarray) -> np.ndarray:
    """The original cells of ``col`` at ``mask`` as Python objects."""
    if not mask.any():
        return np.empty(0, dtype=object)
    picked = col.filter(pa.array(mask))
    if pa.types.is_dictionary(picked.type):
        picked = picked.cast(picked.type.value_type)
    return np.asarray(picked.to_pylist(), dtype=object)


def _vehicle_column(col: pa.ChunkedArray) -> pd.Series:
    """Vehicle ids as a pandas categorical (whitespace stripped, blanks missing)."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(_to_string(col))
    col = col.unify_dictionaries() if col.num_chunks > 1 else col
    ser = pd.Series(col.to_pandas())
    if not isinstance(ser.dtype, pd.CategoricalDtype):  # pragma: no cover - defensive
        ser = ser.astype("category")
    cats = pd.Series(ser.cat.categories.astype(object), dtype=object)
    stripped = cats.str.strip()
    stripped[stripped == ""] = None
    if not stripped.equals(cats):
        codes = ser.cat.codes.to_numpy()
        new_cats = pd.Index(stripped.dropna().unique())
        lut = new_cats.get_indexer(stripped.to_numpy(dtype=object)).astype("int64")
        new_codes = np.where(codes >= 0, lut[np.maximum(codes, 0)], -1)
        ser = pd.Series(pd.Categorical.from_codes(new_codes, categories=new_cats))
    return ser


def _lookup(col: pa.ChunkedArray, table: dict[str, float]) -> tuple[np.ndarray, np.ndarray,
                                                                  np.ndarray]:
    """Map text cells through ``table`` (keys stripped, lower-case) via a dictionary encoding.

    Returns (values as float, NaN where missing or bad; missing mask; bad mask).
    Only the distinct cells are looked at in Python.
    """
    enc = pc.dictionary_encode(_to_string(col)).combine_chunks()
    words = [None if v is None else v.strip().lower() for v in enc.dictionary.to_pylist()]
    # Per distinct cell: value, or NaN; status 0 ok, 1 missing, 2 bad. Last slot = null cell.
    lut_val = np.array([table.get(w, np.nan) if w else np.nan for w in words] + [np.nan])
    lut_status = np.array([(0 if w in table else 2) if w else 1 for w in words] + [1],
                          dtype="int8")
    idx = enc.indices.fill_null(len(words)).to_numpy(zero_copy_only=False).astype("int64")
    status = lut_status[idx]
    return lut_val[idx], status == 1, status == 2


def _load_column(col: pa.ChunkedArray) -> tuple[pd.Categorical, np.ndarray, np.ndarray]:
    """Load states: (categorical empty/half/full, missing mask, bad mask)."""
    table = {k: float(LOAD_VALUES.index(v)) for k, v in _LOAD_ALIASES.items()}
    vals, missing, bad = _lookup(col, table)
    codes = np.where(np.isnan(vals), -1, vals).astype("int64")
    return pd.Categorical.from_codes(codes, categories=list(LOAD_VALUES)), missing, bad


def _lift_column(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dump-body lift: (float 0/1/NaN, missing mask, bad mask)."""
    if pa.types.is_boolean(col.type) or pa.types.is_integer(col.type) \
            or pa.types.is_floating(col.type):
        vals, missing, bad = _numeric(col)
        bad = bad | (~missing & ~np.isin(vals, (0.0, 1.0)))
        return np.where(bad, np.nan, vals), missing, bad
    return _lookup(col, _LIFT_ALIASES)


def _sort_order(key: np.ndarray, t_ns: np.ndarray) -> np.ndarray:
    """Stable order by (key, time): one int64 sort of key·2⁴³ + milliseconds when it fits."""
    n = len(key)
    if n == 0:
        return np.zeros(0, dtype="int64")
    t_min = int(t_ns.min())
    span_ms = (int(t_ns.max()) - t_min) // 1_000_000
    if int(key.max()) < (1 << 20) and span_ms < (1 << 43):
        combined = (key.astype("int64") << 43) | ((t_ns - t_min) // 1_000_000)
        order = np.argsort(combined, kind="stable")
        del combined
        # Sub-millisecond differences may be out of order: check, else fall back.
        t = t_ns[order]
        unordered = t[1:] < t[:-1]
        del t
        if unordered.any():
            k = key[order]
            unordered &= k[1:] == k[:-1]
        if not unordered.any():
            return order
    return np.lexsort((t_ns, key))


def _take_categorical(cat: pd.Categorical, idx: np.ndarray) -> pd.Categorical:
    """``cat[idx]`` without unused categories, working on codes only."""
    codes = np.asarray(cat.codes)[idx].astype("int64")
    ncat = len(cat.categories)
    used = np.bincount(codes[codes >= 0], minlength=ncat) > 0
    remap = np.cumsum(used) - 1
    new_codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
    return pd.Categorical.from_codes(new_codes, categories=cat.categories[used])


# Status codes of a numeric cell.
_S_OK, _S_MISSING, _S_TEXT, _S_NONFINITE, _S_RANGE = 0, 1, 2, 3, 4


def _num_status(col: pa.ChunkedArray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Numbers with a status per cell (ok, missing, text, non-finite, out of [lo, hi])."""
    vals, missing, bad = _numeric(col)
    status = np.zeros(len(vals), dtype="int8")
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(vals)
        status[~finite] = _S_NONFINITE
        status[finite & ((vals < lo) | (vals > hi))] = _S_RANGE
    status[bad] = _S_TEXT
    status[missing] = _S_MISSING
    vals[status != _S_OK] = np.nan
    return vals, status


class _Collector:
    """Convert batches of raw columns into compact arrays, keeping bad cells' text."""

    def __init__(self, timezone: str, optional: set[str]) -> None:
        self.timezone = timezone
        self.optional = optional
        self.n = 0
        self.vid: list[pa.Array] = []
        self.arrays: dict[str, list[np.ndarray]] = {}
        self.texts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def _put(self, name: str, values: np.ndarray) -> None:
        self.arrays.setdefault(name, []).append(values)

    def _keep_text(self, field: str, col: pa.ChunkedArray, mask: np.ndarray,
                   rows: np.ndarray) -> None:
        if mask.any():
            self.texts.setdefault(field, []).append((rows[mask], _texts(col, mask)))

    def add(self, cols: dict[str, pa.ChunkedArray]) -> None:
        n = len(cols["vehicle_id"])
        rows = np.arange(self.n + 1, self.n + n + 1, dtype="int64")
        self.n += n
        vid = cols["vehicle_id"]
        if not pa.types.is_dictionary(vid.type):
            vid = pc.dictionary_encode(_to_string(vid))
        self.vid.extend(vid.chunks)
        ns, tstat = parse_times(cols["time"], self.timezone)
        self._put("time", ns)
        self._put("time_status", tstat)
        self._keep_text("time", cols["time"], tstat >= _T_BAD, rows)
        for name, lo, hi in (("lon", -180.0, 180.0), ("lat", -90.0, 90.0),
                             ("speed_kmh", 0.0, _MAX_SPEED_KMH), ("heading_deg", 0.0, 360.0)):
            if name not in cols:
                continue
            vals, status = _num_status(cols[name], lo, hi)
            self._put(name, vals)
            self._put(name + "_status", status)
            self._keep_text(name, cols[name], status >= _S_TEXT, rows)
        if "load" in cols:
            load, _missing, bad = _load_column(cols["load"])
            self._put("load", np.asarray(load.codes, dtype="int8"))
            self._keep_text("load", cols["load"], bad, rows)
        if "lift" in cols:
            lift, _missing, bad = _lift_column(cols["lift"])
            self._put("lift", lift)
            self._keep_text("lift", cols["lift"], bad, rows)

    def column(self, name: str, fill: float | int, dtype: str) -> np.ndarray:
        parts = self.arrays.pop(name, None)
        if not parts:
            return np.full(self.n, fill, dtype=dtype)
        return np.concatenate(parts).astype(dtype, copy=False)

    def text_lookup(self, field: str) -> pd.Series:
        parts = self.texts.get(field, [])
        if not parts:
            return pd.Series([], dtype=object, index=pd.Index([], dtype="int64"))
        return pd.Series(np.concatenate([p[1] for p in parts]),
                         index=np.concatenate([p[0] for p in parts]), dtype=object)


def tracks_from_batches(
    batches: Iterable[dict[str, pa.ChunkedArray | pa.Array]],
    *,
    file: str,
    timezone: str,
    optional: Iterable[str] = OPTIONAL_COLUMNS,
    progress: Progress = None,
    skipped: SkippedRows | None = None,
) -> TracksResult:
    """Validate raw track columns, batch by batch, into the tracks frame.

    Each batch is converted to compact arrays at once (its text is then
    freed), so peak memory stays near the size of the final frame.

    Parameters
    ----------
    batches : iterable of dict of str to pyarrow array
        Consecutive row batches; each maps canonical column names (at least
        :data:`REQUIRED_COLUMNS`) to arrays of any type.
    file : str
        File name used in rejects.
    timezone : str
        IANA zone of times written without an offset.
    optional : iterable of str
        The optional columns the file has (``has_load`` / ``has_lift`` come from it).
    progress : callable, optional
        Receives short stage messages.
    skipped : SkippedRows, optional
        Rows the CSV parser skipped (filled while ``batches`` is consumed):
        they count as read and dropped, and the rows after them keep their
        numbers in the file.

    Returns
    -------
    TracksResult
    """
    check_timezone(timezone)
    present = set(optional)
    col = _Collector(timezone, present)
    for batch in batches:
        col.add({k: _as_chunked(v) for k, v in batch.items()})
        if progress:
            progress(f"{file}: converted {col.n:,} rows")
    return _assemble(col, file=file, present=present, progress=progress, skipped=skipped)


def tracks_from_table(
    cols: dict[str, pa.ChunkedArray | pa.Array], rows_read: int | None = None, *, file: str,
    timezone: str, progress: Progress = None,
) -> TracksResult:
    """Validate raw track columns (one batch) into the tracks frame.

    Parameters
    ----------
    cols : dict of str to pyarrow array
        Columns by canonical name (at least :data:`REQUIRED_COLUMNS`), any types.
    rows_read : int, optional
        Number of data rows (checked against the columns when given).
    file : str
        File name used in rejects.
    timezone : str
        IANA zone of times written without an offset.
    progress : callable, optional
        Receives short stage messages.

    Returns
    -------
    TracksResult
    """
    if rows_read is not None and len(cols["vehicle_id"]) != rows_read:
        raise ValueError(f"rows_read={rows_read} but the columns have {len(cols['vehicle_id'])}")
    return tracks_from_batches([cols], file=file, timezone=timezone,
                               optional=[c for c in OPTIONAL_COLUMNS if c in cols],
                               progress=progress)


def _file_rows(seq_rows: np.ndarray, skipped_rows: np.ndarray) -> np.ndarray:
    """Map 1-based rows among the rows parsed to rows of the file (skipped rows between)."""
    if skipped_rows.size == 0:
        return seq_rows
    gaps = np.sort(skipped_rows) - np.arange(skipped_rows.size)
    return seq_rows + np.searchsorted(gaps, seq_rows, side="right")


def _assemble(col: _Collector, *, file: str, present: set[str],
              progress: Progress, skipped: SkippedRows | None = None) -> TracksResult:
    n = col.n
    src_row = np.arange(1, n + 1, dtype="int64")
    rejects: list[pd.DataFrame] = []
    dropped = np.zeros(n, dtype=bool)

    def drop(mask: np.ndarray, field: str, reason: str, values: np.ndarray | None = None) -> None:
        new = mask & ~dropped
        if not new.any():
            return
        if values is None:
            vals = col.text_lookup(field).reindex(src_row[new]).to_numpy(dtype=object)
        else:
            vals = values if len(values) == int(new.sum()) else values[new]
        rejects.append(make_rejects(file, src_row[new], field, vals, reason, ACTION_DROPPED))
        dropped[new] = True

    # vehicle_id ------------------------------------------------------------------
    if col.vid:
        vid_arr = pa.chunked_array(col.vid)
    else:
        vid_arr = pa.chunked_array([], type=pa.dictionary(pa.int32(), pa.string()))
    col.vid = []
    vid = _vehicle_column(vid_arr)
    del vid_arr
    vkey = normalize_plate(vid)
    vid_missing = vid.isna().to_numpy()
    drop(vid_missing, "vehicle_id", "missing vehicle_id", np.full(n, "", dtype=object))
    key_codes = vkey.cat.codes.to_numpy()
    blank_cat = np.asarray(vkey.cat.categories == "", dtype=bool)
    key_empty = ~vid_missing & (key_codes >= 0) & blank_cat[np.maximum(key_codes, 0)] \
        if len(blank_cat) else np.zeros(n, dtype=bool)
    drop(key_empty, "vehicle_id",
         "vehicle_id has no letters or digits once spaces, '·' and '-' are removed",
         vid[key_empty & ~dropped].astype(object).to_numpy())

    # time --------------------------------------------------------------------------
    ns = col.column("time", _NAT, "int64")
    tstat = col.column("time_status", _T_MISSING, "int8")
    drop(tstat == _T_MISSING, "time", "missing time", np.full(n, "", dtype=object))
    drop(tstat == _T_BAD, "time",
         "unparseable time; expected ISO 8601 (e.g. 2024-05-01T08:00:00+08:00) or epoch seconds")
    drop(tstat == _T_RANGE, "time",
         "time outside 1990-01-01..2100-01-01 (epoch seconds expected for numbers)")
    del tstat

    # coordinates -------------------------------------------------------------------
    coords = {}
    for name, limit in (("lon", 180.0), ("lat", 90.0)):
        vals = col.column(name, np.nan, "float64")
        status = col.column(name + "_status", _S_MISSING, "int8")
        drop(status == _S_MISSING, name, f"missing {name}", np.full(n, "", dtype=object))
        drop(status == _S_TEXT, name, f"{name} is not a number")
        drop(status == _S_NONFINITE, name, f"{name} is not a finite number")
        drop(status == _S_RANGE, name, f"{name} out of range [-{limit:g}, {limit:g}]")
        coords[name] = vals
    lon, lat = coords["lon"], coords["lat"]
    zero = (lon == 0.0) & (lat == 0.0)
    drop(zero, "lon,lat", "position (0, 0): no GPS fix",
         np.full(int((zero & ~dropped).sum()), "0,0", dtype=object))

    keep = ~dropped
    rows_dropped = int(dropped.sum())

    # optional columns: clear bad values on kept rows -----------------------------------
    def clear(mask: np.ndarray, field: str, reason: str) -> None:
        m = mask & keep
        if m.any():
            vals = col.text_lookup(field).reindex(src_row[m]).to_numpy(dtype=object)
            rejects.append(make_rejects(file, src_row[m], field, vals, reason, ACTION_CLEARED))

    for name, lo, hi, unit in (("speed_kmh", 0.0, _MAX_SPEED_KMH, "km/h"),
                               ("heading_deg", 0.0, 360.0, "degrees")):
        if name in present:
            status = col.column(name + "_status", _S_MISSING, "int8")
            clear(status == _S_TEXT, name, f"{name} is not a number; value cleared")
            clear(status == _S_NONFINITE, name, f"{name} is not a finite number; value cleared")
            clear(status == _S_RANGE, name,
                  f"{name} outside [{lo:g}, {hi:g}] {unit}; value cleared")
    for name, reason in (("load", "load must be empty, half or full; value cleared"),
                         ("lift", "lift must be 0 or 1; value cleared")):
        if name in present:
            bad_rows = col.text_lookup(name).index.to_numpy()
            mask = np.zeros(n, dtype=bool)
            mask[bad_rows - 1] = True
            clear(mask, name, reason)

    # duplicates and order ---------------------------------------------------------------
    if progress:
        progress(f"{file}: sorting {int(keep.sum()):,} rows")
    key_cats = vkey.cat.categories
    cat_order = np.argsort(np.asarray(key_cats.astype(str), dtype=object), kind="stable")
    rank = np.empty(len(key_cats), dtype="int32")
    rank[cat_order] = np.arange(len(key_cats))
    key_codes = vkey.cat.codes.to_numpy()
    key_rank = np.where(key_codes >= 0, rank[np.maximum(key_codes, 0)], -1).astype("int32")
    del vkey, key_codes
    # Stable sort: equal (key, time) keep file order, so the first row survives.
    if keep.all():
        sorted_idx = _sort_order(key_rank, ns)
    else:
        kept_idx = np.flatnonzero(keep)
        sorted_idx = kept_idx[_sort_order(key_rank[kept_idx], ns[kept_idx])]
        del kept_idx
    kr = key_rank[sorted_idx]
    tt = ns[sorted_idx]
    dup = np.zeros(len(sorted_idx), dtype=bool)
    if len(sorted_idx) > 1:
        dup[1:] = (kr[1:] == kr[:-1]) & (tt[1:] == tt[:-1])
    duplicates = int(dup.sum())
    final = sorted_idx[~dup]
    del sorted_idx, kr, dup
    time_col = pd.DatetimeIndex(ns[final].view("datetime64[ns]")).tz_localize("UTC")
    del tt, ns

    data: dict[str, Any] = {
        "vehicle_id": _take_categorical(vid.array, final),
        "vehicle_key": _take_categorical(
            pd.Categorical.from_codes(key_rank, categories=key_cats[cat_order]), final),
        "time": time_col,
    }
    del vid, key_rank
    data["lon"] = lon[final]
    data["lat"] = lat[final]
    del lon, lat, coords
    for name in ("speed_kmh", "heading_deg"):
        data[name] = col.column(name, np.nan, "float64")[final]
    load_codes = col.column("load", -1, "int8")
    data["load"] = pd.Categorical.from_codes(load_codes[final], categories=list(LOAD_VALUES))
    del load_codes
    data["lift"] = col.column("lift", np.nan, "float64")[final]
    data["src_row"] = src_row[final]
    tracks = pd.DataFrame(data, copy=False)  # fresh arrays: no copy, no consolidation
    rows_read = n
    if skipped is not None and skipped.rows:
        gaps = np.asarray(skipped.rows, dtype="int64")
        tracks["src_row"] = _file_rows(tracks["src_row"].to_numpy(), gaps)
        for part in rejects:
            part["row"] = _file_rows(part["row"].to_numpy(), gaps)
        rejects.append(skipped.rejects(file))
        rows_read += len(skipped.rows)
        rows_dropped += len(skipped.rows)
    rej = concat_rejects(rejects) if rejects else empty_rejects()
    if len(rej):
        rej = rej.sort_values(["row", "action"], kind="stable").reset_index(drop=True)
    return TracksResult(
        tracks=tracks, rejects=rej, file=file, rows_read=rows_read, rows_dropped=rows_dropped,
        duplicates_dropped=duplicates, has_load="load" in present, has_lift="lift" in present,
    )


def read_tracks(
    path: str | Path, *, timezone: str = "Asia/Shanghai", progress: Progress = None
) -> TracksResult:
    """Read and validate a ``tracks.csv`` or ``tracks.parquet`` file.

    Parameters
    ----------
    path : str or pathlib.Path
        The file. CSV: UTF-8 (or GB18030), header line, columns in any order,
        names matched case-insensitively. Parquet: ``time`` may be a timestamp
        column (tz-aware or naive) or integer epoch seconds.
    timezone : str, default "Asia/Shanghai"
        IANA zone of times written without an offset.
    progress : callable, optional
        Receives short stage messages; nothing is printed.

    Returns
    -------
    TracksResult
        The tracks frame (sorted by ``vehicle_key, time``), its rejects and counts.

    Raises
    ------
    SchemaError
        If the file is missing, unreadable, or lacks a required column.
    """
    path = Path(path)
    check_timezone(timezone)
    is_parquet_folder = path.is_dir() and path.suffix.lower() in _PARQUET_SUFFIXES
    if not (path.is_file() or is_parquet_folder):
        raise SchemaError(f"{path.name}: file not found at {path}")
    if progress:
        progress(f"{path.name}: reading")
    def read(encoding: str | None, threads: bool, quoting: bool) -> TracksResult:
        if progress and (encoding or not threads):
            progress(f"{path.name}: reading again ({encoding or 'utf-8'}, "
                     f"{'in order' if not threads else 'threaded'}"
                     f"{', unbalanced quotes refused by line' if not quoting else ''})")
        names, batches, skipped = open_table(
            path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, dictionary=("vehicle_id",),
            encoding=encoding, use_threads=threads, quoting=quoting)
        return tracks_from_batches(
            batches, file=path.name, timezone=timezone,
            optional=[c for c in OPTIONAL_COLUMNS if c in names], progress=progress,
            skipped=skipped)

    return _read_attempts(read, path.name)
