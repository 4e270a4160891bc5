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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

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
    "TracksResult",
    "empty_tracks",
    "parse_times",
    "read_table_columns",
    "read_tracks",
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
    "loaded": "full",
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
        return col.cast(pa.string())
    return pc.cast(col, pa.string())


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
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype("float64")
        vals[missing] = np.nan
        return vals, missing, np.zeros(len(vals), dtype=bool)
    col = _blank_to_null(_to_string(col))
    missing = _null_mask(col)
    try:  # fast path: every non-empty cell is a plain number
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype("float64")
        bad = np.zeros(len(vals), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        ser = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
        vals = pd.to_numeric(ser, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = ~missing & np.isnan(vals)
        # Literal "nan" parses as NaN but is not 'bad text': it is treated as missing below.
    vals = np.array(vals, dtype="float64")
    vals[missing] = np.nan
    return vals, missing, bad


def _epoch_to_ns(seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Epoch seconds (or milliseconds when >= 1e11) → int64 ns; bad mask for non-finite."""
    secs = np.where(np.abs(seconds) >= _EPOCH_MS_FROM, seconds / 1000.0, seconds)
    finite = np.isfinite(secs) & (np.abs(secs) < 9.2e9)
    ns = np.full(len(secs), _NAT, dtype="int64")
    whole = np.floor(secs[finite])
    frac = secs[finite] - whole
    ns[finite] = whole.astype("int64") * _NS_PER_S + np.round(frac * 1e6).astype("int64") * 1000
    return ns, ~finite


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
        col = _blank_to_null(_to_string(col))
        missing = _null_mask(col)
        is_num = np.asarray(
            pc.fill_null(pc.match_substring_regex(col, _NUMBER_RE), False)
            .to_numpy(zero_copy_only=False), dtype=bool)
        has_off = np.asarray(
            pc.fill_null(pc.match_substring_regex(col, _OFFSET_RE), False)
            .to_numpy(zero_copy_only=False), dtype=bool)
        ns = np.full(n, _NAT, dtype="int64")
        if is_num.any():
            part = col if is_num.all() else col.filter(pa.array(is_num))
            secs = pc.cast(part, pa.float64()).to_numpy(zero_copy_only=False)
            ns[is_num] = _epoch_to_ns(np.asarray(secs, dtype="float64"))[0]
        iso = ~missing & ~is_num
        for mask, aware in ((iso & has_off, True), (iso & ~has_off, False)):
            if not mask.any():
                continue
            part = col if mask.all() else col.filter(pa.array(mask))
            parsed = pd.to_datetime(pd.Series(part.to_pandas()), format="ISO8601",
                                    utc=aware, errors="coerce")
            vals = _dt_to_ns(parsed)
            ns[mask] = vals if aware else _localize(vals, timezone)
        nat = ns == _NAT
        status[nat] = _T_BAD
        status[missing] = _T_MISSING
    ok = status == _T_OK
    out_of_range = ok & ((ns < _MIN_TIME_NS) | (ns >= _MAX_TIME_NS))
    status[out_of_range] = _T_RANGE
    ns = np.where(status == _T_OK, ns, _NAT)
    return ns.astype("int64"), status


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
    raw = path.open("rb").read(65536)
    if not raw.strip():
        raise SchemaError(f"{path.name}: the file is empty; expected a header line with columns")
    encoding = "utf-8"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = raw.decode("gb18030")
            encoding = "gb18030"
        except UnicodeDecodeError:
            # A multi-byte character cut at the 64 KiB boundary is not an error.
            if exc.start < len(raw) - 4:
                raise SchemaError(
                    f"{path.name}: cannot decode the file as UTF-8 or GB18030"
                ) from exc
            text = raw[: exc.start].decode("utf-8-sig")
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
    for name in names:
        key = str(name).strip().lstrip("\ufeff").lower()
        lookup.setdefault(key, name)
    missing = [c for c in required if c not in lookup]
    if missing:
        raise SchemaError(
            f"{file}: missing required column(s) {', '.join(missing)}; "
            f"required: {', '.join(required)}; optional: {', '.join(optional)}; "
            f"found: {', '.join(map(str, names)) or '(none)'}"
        )
    return {c: lookup[c] for c in (*required, *optional) if c in lookup}


def read_table_columns(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...],
    *, dictionary: tuple[str, ...] = (),
) -> tuple[dict[str, pa.ChunkedArray], int]:
    """Read the wanted columns of a CSV or Parquet file as pyarrow arrays.

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

    Returns
    -------
    (dict of str to pyarrow.ChunkedArray, int)
        The columns found, under their canonical names, and the row count.

    Raises
    ------
    SchemaError
        If the file cannot be parsed or lacks a required column.
    """
    file = path.name
    if path.suffix.lower() in (".parquet", ".pq", ".parq"):
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SchemaError(f"{file}: not a readable Parquet file ({exc})") from exc
        mapping = _match_columns(list(schema.names), file, required, optional)
        table = pq.read_table(path, columns=list(mapping.values()))
        cols = {canon: table.column(actual) for canon, actual in mapping.items()}
        return cols, table.num_rows
    header, delimiter, encoding = _sniff_header(path)
    mapping = _match_columns(header, file, required, optional)
    wanted = set(mapping.values())
    types = {
        name: (pa.dictionary(pa.int32(), pa.string())
               if any(mapping.get(d) == name for d in dictionary) else pa.string())
        for name in header if name in wanted
    }
    read_opts = pacsv.ReadOptions(encoding=encoding, block_size=1 << 24)
    parse_opts = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False)
    conv_opts = pacsv.ConvertOptions(
        column_types=types, include_columns=list(mapping.values()),
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
    )
    try:
        table = pacsv.read_csv(path, read_options=read_opts, parse_options=parse_opts,
                               convert_options=conv_opts)
    except pa.ArrowInvalid as exc:
        if encoding == "utf-8" and "UTF8" in str(exc).upper():
            read_opts = pacsv.ReadOptions(encoding="gb18030", block_size=1 << 24)
            try:
                table = pacsv.read_csv(path, read_options=read_opts, parse_options=parse_opts,
                                       convert_options=conv_opts)
            except pa.ArrowInvalid as exc2:
                raise SchemaError(f"{file}: cannot parse the CSV ({exc2})") from exc2
        else:
            raise SchemaError(f"{file}: cannot parse the CSV ({exc})") from exc
    cols = {canon: table.column(actual) for canon, actual in mapping.items()}
    return cols, table.num_rows


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


def _load_column(col: pa.ChunkedArray) -> tuple[pd.Categorical, np.ndarray, np.ndarray]:
    """Load states: (categorical empty/half/full, missing mask, bad mask)."""
    text = _blank_to_null(_to_string(col))
    missing = _null_mask(text)
    enc = pc.dictionary_encode(pc.utf8_lower(text)).combine_chunks()
    dict_vals = enc.dictionary.to_pylist()
    lut = np.array([LOAD_VALUES.index(_LOAD_ALIASES[v]) if v in _LOAD_ALIASES else -2
                    for v in dict_vals] + [-1], dtype="int64")
    idx = enc.indices.to_numpy(zero_copy_only=False)
    idx = np.where(missing, len(dict_vals), np.nan_to_num(idx, nan=len(dict_vals))).astype(
        "int64")
    codes = lut[idx]
    bad = codes == -2
    codes[bad] = -1
    return pd.Categorical.from_codes(codes, categories=list(LOAD_VALUES)), missing, bad


def _lift_column(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dump-body lift: (float 0/1/NaN, missing mask, bad mask)."""
    if pa.types.is_boolean(col.type) or pa.types.is_integer(col.type) \
            or pa.types.is_floating(col.type):
        vals, missing, bad = _numeric(col)
    else:
        text = _blank_to_null(_to_string(col))
        missing = _null_mask(text)
        enc = pc.dictionary_encode(pc.utf8_lower(text)).combine_chunks()
        dict_vals = enc.dictionary.to_pylist()
        lut = np.array([_LIFT_ALIASES.get(v, -1.0) for v in dict_vals] + [np.nan])
        idx = enc.indices.to_numpy(zero_copy_only=False)
        idx = np.where(missing, len(dict_vals), np.nan_to_num(idx, nan=len(dict_vals)))
        vals = lut[idx.astype("int64")]
        bad = vals == -1.0
        vals[bad] = np.nan
        return vals, missing, bad
    bad = bad | (~missing & ~np.isin(vals, (0.0, 1.0)))
    vals = np.where(bad, np.nan, vals)
    return vals, missing, bad


def tracks_from_table(
    cols: dict[str, pa.ChunkedArray], rows_read: int, *, file: str, timezone: str,
    progress: Progress = None,
) -> TracksResult:
    """Validate raw track columns into the tracks frame.

    Parameters
    ----------
    cols : dict of str to pyarrow.ChunkedArray
        Columns by canonical name (at least :data:`REQUIRED_COLUMNS`), any types.
    rows_read : int
        Number of data rows.
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
    n = int(rows_read)
    src_row = np.arange(1, n + 1, dtype="int64")
    rejects: list[pd.DataFrame] = []
    dropped = np.zeros(n, dtype=bool)

    def drop(mask: np.ndarray, field: str, col: pa.ChunkedArray | None, reason: str | np.ndarray,
             values: np.ndarray | None = None) -> None:
        new = mask & ~dropped
        if not new.any():
            return
        vals = values[new] if values is not None else _texts(col, new)
        why = reason[new] if isinstance(reason, np.ndarray) else reason
        rejects.append(make_rejects(file, src_row[new], field, vals, why, ACTION_DROPPED))
        dropped[new] = True

    # vehicle_id ------------------------------------------------------------------
    vid = _vehicle_column(cols["vehicle_id"])
    vkey = normalize_plate(vid)
    vid_missing = vid.isna().to_numpy()
    drop(vid_missing, "vehicle_id", cols["vehicle_id"], "missing vehicle_id")
    key_empty = vkey.isna().to_numpy() & ~vid_missing
    drop(key_empty, "vehicle_id", cols["vehicle_id"],
         "vehicle_id has no letters or digits once spaces, '·' and '-' are removed")
    if progress:
        progress(f"{file}: parsing {n:,} times")

    # time --------------------------------------------------------------------------
    ns, tstat = parse_times(cols["time"], timezone)
    drop(tstat == _T_MISSING, "time", cols["time"], "missing time")
    drop(tstat == _T_BAD, "time", cols["time"],
         "unparseable time; expected ISO 8601 (e.g. 2024-05-01T08:00:00+08:00) or epoch seconds")
    drop(tstat == _T_RANGE, "time", cols["time"],
         "time outside 1990-01-01..2100-01-01 (epoch seconds expected for numbers)")

    # coordinates -------------------------------------------------------------------
    coords = {}
    for name, limit in (("lon", 180.0), ("lat", 90.0)):
        vals, missing, bad = _numeric(cols[name])
        drop(missing, name, cols[name], f"missing {name}")
        drop(bad, name, cols[name], f"{name} is not a number")
        nonfinite = ~np.isfinite(vals)
        drop(nonfinite, name, cols[name], f"{name} is not a finite number")
        with np.errstate(invalid="ignore"):
            out = np.abs(vals) > limit
        drop(out, name, cols[name], f"{name} out of range [-{limit:g}, {limit:g}]")
        coords[name] = vals
    lon, lat = coords["lon"], coords["lat"]
    zero = (lon == 0.0) & (lat == 0.0)
    drop(zero, "lon,lat", None, "position (0, 0): no GPS fix",
         values=np.full(n, "0,0", dtype=object))

    keep = ~dropped
    rows_dropped = int(dropped.sum())

    # optional columns: clear bad values on kept rows -----------------------------------
    def clear(mask: np.ndarray, field: str, col: pa.ChunkedArray, reason: str) -> None:
        m = mask & keep
        if m.any():
            rejects.append(make_rejects(file, src_row[m], field, _texts(col, m), reason,
                                        ACTION_CLEARED))

    optional_vals: dict[str, np.ndarray] = {}
    for name, lo, hi, unit in (("speed_kmh", 0.0, _MAX_SPEED_KMH, "km/h"),
                               ("heading_deg", 0.0, 360.0, "degrees")):
        if name not in cols:
            optional_vals[name] = np.full(n, np.nan)
            continue
        vals, _missing, bad = _numeric(cols[name])
        clear(bad, name, cols[name], f"{name} is not a number; value cleared")
        with np.errstate(invalid="ignore"):
            out = ~bad & ~np.isnan(vals) & ((vals < lo) | (vals > hi) | ~np.isfinite(vals))
        clear(out, name, cols[name], f"{name} outside [{lo:g}, {hi:g}] {unit}; value cleared")
        optional_vals[name] = np.where(bad | out, np.nan, vals)
    if "load" in cols:
        load, _lm, lbad = _load_column(cols["load"])
        clear(lbad, "load", cols["load"],
              "load must be empty, half or full; value cleared")
    else:
        load = pd.Categorical.from_codes(np.full(n, -1), categories=list(LOAD_VALUES))
    if "lift" in cols:
        lift, _fm, fbad = _lift_column(cols["lift"])
        clear(fbad, "lift", cols["lift"], "lift must be 0 or 1; value cleared")
    else:
        lift = np.full(n, np.nan)

    # duplicates and order ---------------------------------------------------------------
    if progress:
        progress(f"{file}: sorting {int(keep.sum()):,} rows")
    key_cat = vkey.cat if isinstance(vkey.dtype, pd.CategoricalDtype) else None
    if key_cat is not None:
        cats = vkey.cat.categories
        order_cats = np.argsort(np.asarray(cats.astype(str)), kind="stable")
        rank = np.empty(len(cats), dtype="int64")
        rank[order_cats] = np.arange(len(cats))
        codes = vkey.cat.codes.to_numpy().astype("int64")
        key_rank = np.where(codes >= 0, rank[np.maximum(codes, 0)], -1)
    else:  # pragma: no cover - normalize_plate keeps categoricals categorical
        key_rank = pd.factorize(vkey, sort=True)[0]
    kept_idx = np.flatnonzero(keep)
    order = np.lexsort((kept_idx, ns[kept_idx], key_rank[kept_idx]))
    sorted_idx = kept_idx[order]
    kr = key_rank[sorted_idx]
    tt = ns[sorted_idx]
    dup = np.zeros(len(sorted_idx), dtype=bool)
    if len(sorted_idx) > 1:
        dup[1:] = (kr[1:] == kr[:-1]) & (tt[1:] == tt[:-1])
    duplicates = int(dup.sum())
    final = sorted_idx[~dup]

    key_values = vkey.iloc[final]
    if isinstance(key_values.dtype, pd.CategoricalDtype):
        key_values = key_values.cat.remove_unused_categories()
    vid_values = vid.iloc[final].cat.remove_unused_categories()
    tracks = pd.DataFrame(
        {
            "vehicle_id": vid_values.to_numpy(),
            "vehicle_key": key_values.to_numpy(),
            "time": pd.DatetimeIndex(ns[final].view("datetime64[ns]")).tz_localize("UTC"),
            "lon": lon[final],
            "lat": lat[final],
            "speed_kmh": optional_vals["speed_kmh"][final],
            "heading_deg": optional_vals["heading_deg"][final],
            "load": load[final],
            "lift": np.asarray(lift, dtype="float64")[final],
            "src_row": src_row[final],
        }
    )
    tracks["vehicle_id"] = tracks["vehicle_id"].astype("category")
    tracks["vehicle_key"] = tracks["vehicle_key"].astype("category")
    rej = concat_rejects(rejects) if rejects else empty_rejects()
    if len(rej):
        rej = rej.sort_values(["row", "action"], kind="stable").reset_index(drop=True)
    return TracksResult(
        tracks=tracks, rejects=rej, file=file, rows_read=n, rows_dropped=rows_dropped,
        duplicates_dropped=duplicates, has_load="load" in cols, has_lift="lift" in cols,
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
    if not path.is_file():
        raise SchemaError(f"{path.name}: file not found at {path}")
    if progress:
        progress(f"{path.name}: reading")
    cols, n = read_table_columns(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS,
                                 dictionary=("vehicle_id",))
    if progress:
        progress(f"{path.name}: read {n:,} rows")
    return tracks_from_table(cols, n, file=path.name, timezone=timezone, progress=progress)
