"""Truck GPS tracks: one reader of ``tracks.csv`` / ``tracks.parquet`` into the tracks frame.

One reader serves every engine: :func:`read_tracks` reads a whole file, a
folder of Parquet parts, or one part of either (a few Parquet row groups, a
byte range of the CSV: a Dask read task), always through the same retries of
``haulwatch.ingest.tables`` (GB18030, ragged rows, unbalanced quotes) and the
same validation. The reader is column-wise and vectorized: the CSV is parsed by
pyarrow with explicit types (vehicle ids dictionary-encoded, everything else
as text), each column is converted once with a fast path for clean data, and
every bad row is recorded in the rejects frame with its 1-based data row,
field, value and reason. Required fields (``vehicle_id``, ``time``, ``lon``,
``lat``) drop the row when bad (a plate or time outside the limits of
:mod:`haulwatch.ingest.limits` is bad); optional fields (``speed_kmh``,
``heading_deg``, ``load``, ``lift``) only clear the value. Rows with the same
``vehicle_key`` and time are duplicates: the first in file order is kept, the
others are counted in ``duplicates_dropped`` (they are not bad rows). The
result is sorted by ``vehicle_key, time``. Invariant: ``rows_read =
len(tracks) + rows_dropped + duplicates_dropped``.

Times are parsed by ``haulwatch.ingest.timeparse`` (ISO 8601 with or without
offset, epoch seconds or milliseconds; naive = dataset-local) and stored as
``datetime64[ns, UTC]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from haulwatch.timezone import DEFAULT_TIMEZONE

from .cells import as_chunked, cell_texts, numeric_cells, to_string
from .limits import plate_problems
from .plates import normalize_plate
from .rejects import (
    ACTION_CLEARED,
    ACTION_DROPPED,
    SchemaError,
    concat_rejects,
    empty_rejects,
    make_rejects,
)
from .tables import (
    PARQUET_SUFFIXES,
    SkippedRows,
    TablePart,
    check_table,
    file_rows,
    open_table,
    read_attempts,
)
from .timeparse import NAT_NS, T_BAD, T_MISSING, T_RANGE, check_timezone, parse_times

__all__ = [
    "LOAD_VALUES",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "TRACK_COLUMNS",
    "TracksResult",
    "check_tracks",
    "empty_tracks",
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

_MAX_SPEED_KMH = 400.0

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
    encoding : str
        CSV: the encoding the file was read with (``utf-8`` or ``gb18030``);
        ``""`` otherwise.
    quoting : bool
        CSV: False when an unbalanced quote made the reader refuse every line
        holding an odd number of quotes (see ``haulwatch.ingest.tables.open_table``).
    """

    tracks: pd.DataFrame
    rejects: pd.DataFrame
    file: str
    rows_read: int
    rows_dropped: int
    duplicates_dropped: int
    has_load: bool
    has_lift: bool
    encoding: str = ""
    quoting: bool = True


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



def _vehicle_column(col: pa.ChunkedArray) -> pd.Series:
    """Vehicle ids as a pandas categorical (whitespace stripped, blanks missing)."""
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(to_string(col))
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
    enc = pc.dictionary_encode(to_string(col)).combine_chunks()
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
        vals, missing, bad = numeric_cells(col)
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
    vals, missing, bad = numeric_cells(col)
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
            self.texts.setdefault(field, []).append((rows[mask], cell_texts(col, mask)))

    def add(self, cols: dict[str, pa.ChunkedArray]) -> None:
        n = len(cols["vehicle_id"])
        rows = np.arange(self.n + 1, self.n + n + 1, dtype="int64")
        self.n += n
        vid = cols["vehicle_id"]
        if not pa.types.is_dictionary(vid.type):
            vid = pc.dictionary_encode(to_string(vid))
        self.vid.extend(vid.chunks)
        ns, tstat = parse_times(cols["time"], self.timezone)
        self._put("time", ns)
        self._put("time_status", tstat)
        self._keep_text("time", cols["time"], tstat >= T_BAD, rows)
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
        col.add({k: as_chunked(v) for k, v in batch.items()})
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



def _assemble(col: _Collector, *, file: str, present: set[str],
              progress: Progress, skipped: SkippedRows | None = None) -> TracksResult:
    n = col.n
    src_row = np.arange(1, n + 1, dtype="int64")
    rejects: list[pd.DataFrame] = []
    dropped = np.zeros(n, dtype=bool)

    def drop(mask: np.ndarray, field: str, reason: str | np.ndarray,
             values: np.ndarray | None = None) -> None:
        """Drop ``mask`` rows (a reason per row of ``mask`` when an array)."""
        new = mask & ~dropped
        if not new.any():
            return
        if values is None:
            vals = col.text_lookup(field).reindex(src_row[new]).to_numpy(dtype=object)
        else:
            vals = values if len(values) == int(new.sum()) else values[new]
        if not isinstance(reason, str) and len(reason) != int(new.sum()):
            reason = reason[new[mask]]
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
    # the plate limits of every entry point (length, control characters), per distinct plate
    why_cat = plate_problems(vid.cat.categories.to_numpy(dtype=object))
    if any(w is not None for w in why_cat):
        vid_codes = vid.cat.codes.to_numpy()
        why = np.where(vid_codes >= 0, why_cat[np.maximum(vid_codes, 0)], None)
        bad_plate = np.asarray(pd.notna(why), dtype=bool) & ~dropped
        drop(bad_plate, "vehicle_id", why[bad_plate], vid[bad_plate].astype(object).to_numpy())
    key_codes = vkey.cat.codes.to_numpy()
    blank_cat = np.asarray(vkey.cat.categories == "", dtype=bool)
    key_empty = ~vid_missing & (key_codes >= 0) & blank_cat[np.maximum(key_codes, 0)] \
        if len(blank_cat) else np.zeros(n, dtype=bool)
    drop(key_empty, "vehicle_id",
         "vehicle_id has no letters or digits once spaces, '·' and '-' are removed",
         vid[key_empty & ~dropped].astype(object).to_numpy())

    # time --------------------------------------------------------------------------
    ns = col.column("time", NAT_NS, "int64")
    tstat = col.column("time_status", T_MISSING, "int8")
    drop(tstat == T_MISSING, "time", "missing time", np.full(n, "", dtype=object))
    drop(tstat == T_BAD, "time",
         "unparseable time; expected ISO 8601 (e.g. 2024-05-01T08:00:00+08:00) or epoch seconds")
    drop(tstat == T_RANGE, "time",
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
        tracks["src_row"] = file_rows(tracks["src_row"].to_numpy(), gaps)
        for part in rejects:
            part["row"] = file_rows(part["row"].to_numpy(), gaps)
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


def check_tracks(path: str | Path) -> list[str]:
    """Check that a tracks file exists and has the required columns, without reading rows.

    Parameters
    ----------
    path : str or pathlib.Path
        ``tracks.csv`` or ``tracks.parquet`` (a file or a folder of parts).

    Returns
    -------
    list of str
        The canonical columns present.

    Raises
    ------
    SchemaError
        If the file is missing, unreadable, or lacks a required column.
    """
    path = Path(path)
    _check_exists(path)
    return check_table(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)


def _check_exists(path: Path) -> None:
    is_parquet_folder = path.is_dir() and path.suffix.lower() in PARQUET_SUFFIXES
    if not (path.is_file() or is_parquet_folder):
        raise SchemaError(f"{path.name}: file not found at {path}")


def read_tracks(
    path: str | Path, *, timezone: str = DEFAULT_TIMEZONE, progress: Progress = None,
    part: TablePart | None = None, encoding: str | None = None, quoting: bool = True,
) -> TracksResult:
    """Read and validate ``tracks.csv`` or ``tracks.parquet``, whole or one part.

    Parameters
    ----------
    path : str or pathlib.Path
        The file (or folder of Parquet parts); its name is the file of the
        rejects. CSV: UTF-8 (or GB18030), header line, columns in any order,
        names matched case-insensitively. Parquet: ``time`` may be a timestamp
        column (tz-aware or naive) or integer epoch seconds.
    timezone : str, default "Asia/Shanghai"
        IANA zone of times written without an offset.
    progress : callable, optional
        Receives short stage messages; nothing is printed.
    part : TablePart, optional
        Read only this part of the file (from
        :func:`haulwatch.ingest.tables.plan_parts`). Row numbers (``src_row``,
        rejects) and ``rows_read`` then count from the part's first data row;
        adding the rows read by the parts before it gives the file's numbers.
    encoding : str, optional
        CSV encoding of the first attempt (default: sniffed); e.g. ``gb18030``
        when another part of the same file needed it, so that every part is
        decoded alike.
    quoting : bool, default True
        Trust CSV quotes on the first attempt (False: as when another part
        met an unbalanced quote).

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
    _check_exists(path)
    if progress:
        progress(f"{path.name}: reading")
    attempts = [0]

    def read(encoding: str | None, threads: bool, quoting: bool) -> TracksResult:
        attempts[0] += 1
        if progress and attempts[0] > 1:
            progress(f"{path.name}: reading again ({encoding or 'utf-8'}, "
                     f"{'in order' if not threads else 'threaded'}"
                     f"{', unbalanced quotes refused by line' if not quoting else ''})")
        table = open_table(
            path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS, dictionary=("vehicle_id",),
            encoding=encoding, use_threads=threads, quoting=quoting, part=part)
        res = tracks_from_batches(
            table.batches, file=path.name, timezone=timezone,
            optional=[c for c in OPTIONAL_COLUMNS if c in table.names], progress=progress,
            skipped=table.skipped)
        return dataclasses.replace(res, encoding=table.encoding, quoting=table.quoting)

    return read_attempts(read, path.name, encoding=encoding, quoting=quoting)
