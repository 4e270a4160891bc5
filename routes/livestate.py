"""The live engine's parts: each vehicle's held points, and the bookkeeping of alerts.

:mod:`haulwatch.routes.live` keeps one :class:`VehiclePoints` per vehicle (its open
window and the settled points kept for back-fill, as plain arrays) and compares the
alerts of a re-run with what they replace (:func:`diff_alerts`). Split from
``routes.live`` so that module holds the engine's flow only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from haulwatch.routes.alerts import ALERT_COLUMNS, ALERT_ROW_COLUMNS, empty_alerts, make_alerts

__all__ = [
    "FLOATS",
    "LiveUpdate",
    "VehiclePoints",
    "cat_points",
    "concat_frames",
    "content_hash",
    "diff_alerts",
    "empty_points",
    "in_keys",
    "keyed_alerts",
    "merge_updates",
    "part_points",
    "row_records",
    "same_values",
    "signature",
]

#: Float columns of a held point, in the order of a vehicle's ``f`` array.
FLOATS = ("lon", "lat", "x", "y", "speed_kmh", "heading_deg", "lift")


@dataclass
class LiveUpdate:
    """What one :meth:`LiveAuditor.push` changed.

    Attributes
    ----------
    changed : GeoDataFrame
        Alerts that are new or whose content changed (alerts frame of
        ``routes.alerts``).
    new_ids : list of str
        Ids in ``changed`` that did not exist before.
    withdrawn : list of str
        Ids of earlier alerts the data no longer supports (e.g. a dump that a
        back-filled track shows was a delivery, or a hotspot whose rounded place
        moved as more trucks joined it).
    audited_points : int
        Points re-audited in this push (the open windows of the vehicles that moved).
    late : int
        Points too old to audit (more than ``backfill_s`` behind their vehicle's
        newest point, before a settled state no longer held).
    backfilled : int
        Points older than their vehicle's settled cut that were audited after
        rolling the vehicle back (back-fill, reconnect).
    """

    changed: gpd.GeoDataFrame
    new_ids: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    audited_points: int = 0
    late: int = 0
    backfilled: int = 0


def empty_points() -> list[np.ndarray]:
    """No points: ``[t, f, load, vid, src]`` arrays of length 0 (``load``: int16 codes)."""
    return [np.empty(0, dtype=np.int64), np.empty((0, len(FLOATS)), dtype=np.float64),
            np.empty(0, dtype=np.int16), np.empty(0, dtype=object), np.empty(0, dtype=np.int64)]


def cat_points(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    """The points of ``a`` then those of ``b`` (copies)."""
    return [np.concatenate([x, y]) for x, y in zip(a, b, strict=True)]


def part_points(p: list[np.ndarray], lo: int, hi: int | None = None, *, copy: bool = False) -> list[np.ndarray]:
    """Points ``lo:hi`` of ``p`` (views, or copies with ``copy``)."""
    return [x[lo:hi].copy() if copy else x[lo:hi] for x in p]


class VehiclePoints:
    """One vehicle's held points and settled states.

    Points are ``[t, f, load, vid, src]``: time (int64 ns, ascending, unique),
    floats (n × len(FLOATS)), ``load`` (int16 codes into the engine's load
    categories, -1 for none), ``vehicle_id`` (object), ``src_row``.
    ``win`` is the open window; ``arch`` the settled points kept for back-fill.
    ``settles`` lists ``(seed_ns, cut_ns, newest_ns)`` of each settled state
    still held, oldest first; ``complete`` says whether the points go back to the
    vehicle's first one (so it may be rolled back to no settled state at all).
    """

    __slots__ = ("arch", "complete", "settles", "win")

    def __init__(self) -> None:
        self.arch = empty_points()
        self.win = empty_points()
        self.settles: list[tuple[int, int, int]] = []
        self.complete = True

    @property
    def seed(self) -> int | None:
        """Results starting before this (ns) are frozen; None: nothing settled."""
        return self.settles[-1][0] if self.settles else None

    @property
    def cut(self) -> int | None:
        """Points at or before this (ns) are settled; None: nothing settled."""
        return self.settles[-1][1] if self.settles else None

    def cut_at(self, cut: int | None) -> None:
        """Points at or before ``cut`` are settled, the rest open (None: all open)."""
        every = cat_points(self.arch, self.win)
        k = 0 if cut is None else int(np.searchsorted(every[0], cut, side="right"))
        self.arch, self.win = part_points(every, 0, k), part_points(every, k)

    def settle_to(self, cut: int) -> None:
        """Move the window's points at or before ``cut`` to the settled points."""
        k = int(np.searchsorted(self.win[0], cut, side="right"))
        if k:
            self.arch = cat_points(self.arch, part_points(self.win, 0, k))
            self.win = part_points(self.win, k)


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None]
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return frames[0].iloc[:0].copy() if frames else pd.DataFrame()
    return pd.concat(nonempty, ignore_index=True) if len(nonempty) > 1 else nonempty[0].reset_index(
        drop=True)


def content_hash(alerts: pd.DataFrame) -> pd.Series:
    """One uint64 per alert over every column (geometry as WKB), indexed by id."""
    if len(alerts) == 0:
        return pd.Series([], dtype="uint64", index=pd.Index([], dtype=object))
    cols = [c for c in ALERT_COLUMNS if c != "geometry"]
    h = pd.util.hash_pandas_object(alerts[cols], index=False).to_numpy()
    wkb = shapely.to_wkb(np.asarray(alerts.geometry.to_numpy(), dtype=object), hex=True)
    hw = pd.util.hash_array(np.asarray(wkb, dtype=object))
    return pd.Series(h ^ (hw * np.uint64(0x9E3779B97F4A7C15)), index=alerts["alert_id"].to_numpy())


def keyed_alerts(rows: pd.DataFrame, tz: str) -> gpd.GeoDataFrame:
    """``make_alerts`` of some rows, plus ``_key`` (the rows' vehicle key; "" for hotspots)."""
    if len(rows) == 0:
        out = empty_alerts()
        out["_key"] = pd.Series([], dtype=object)
        return out
    alerts = make_alerts(rows[list(ALERT_ROW_COLUMNS)], timezone=tz)
    key_of = dict(zip(rows["vehicle_id"].astype(str), rows["vehicle_key"].astype(str), strict=True))
    alerts["_key"] = alerts["vehicle_id"].astype(str).map(key_of).fillna("").to_numpy(dtype=object)
    return alerts


def in_keys(frame: pd.DataFrame, keys: Any, column: str = "vehicle_key") -> np.ndarray:
    """Mask of the rows of ``frame`` whose ``column`` is one of ``keys`` (a hash lookup)."""
    if frame is None or not len(frame):
        return np.zeros(0 if frame is None else len(frame), dtype=bool)
    index = pd.Index(np.asarray(list(keys), dtype=object), dtype=object).unique()
    col = frame[column].to_numpy(dtype=object)
    return index.get_indexer(col) >= 0


def row_records(rows: pd.DataFrame) -> dict[str, list[tuple]]:
    """Alert rows per vehicle key, as sorted value tuples (to see which vehicles' rows changed)."""
    out: dict[str, list[tuple]] = {}
    if not len(rows):
        return out
    cols = list(ALERT_ROW_COLUMNS)
    values = zip(*(rows[c].tolist() if c in rows.columns else [None] * len(rows) for c in cols),
                 strict=True)
    for rec in values:
        rec = tuple(_comparable(v) for v in rec)
        out.setdefault(str(rec[cols.index("vehicle_key")]), []).append(rec)
    key, text = cols.index("start"), cols.index("summary")
    for recs in out.values():
        # an order for comparing; rows equal on it keep the detectors' order (a different
        # order only makes the vehicle's alerts be rebuilt and compared by content)
        recs.sort(key=lambda r: (str(r[0]), str(r[key]), str(r[text])))
    return out


def signature(frame: pd.DataFrame, keys: list[str], cols: tuple[str, ...]) -> dict[str, tuple]:
    """Per vehicle key (of ``keys``), the sorted hashes of ``cols`` of its rows.

    ``cols[0]`` is the vehicle key column. Two signatures are equal when the
    vehicle's rows hold the same values (as a multiset); a dtype change
    (another time unit) only makes them differ, i.e. costs a recomputation.
    """
    out: dict[str, tuple] = {}
    if frame is None or not len(frame):
        return out
    sub = frame.loc[in_keys(frame, keys)]
    if not len(sub):
        return out
    h = pd.util.hash_pandas_object(sub[list(cols[1:])], index=False).to_numpy()
    codes, uniq = pd.factorize(sub[cols[0]].astype(str).to_numpy(dtype=object))
    order = np.lexsort((h, codes))
    h, codes = h[order], codes[order]
    bounds = np.searchsorted(codes, np.arange(len(uniq) + 1))
    for i, key in enumerate(uniq):
        out[str(key)] = tuple(h[bounds[i]:bounds[i + 1]].tolist())
    return out


def _comparable(value: Any) -> Any:
    """A value that compares equal when the alert content is equal (NaN equals NaN)."""
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, dict | list):
        return repr(value)
    if hasattr(value, "wkb"):
        return value.wkb
    return value


def same_values(a: pd.DataFrame, b: pd.DataFrame, cols: tuple[str, ...]) -> bool:
    """Whether two result subsets hold the same values in ``cols`` (order-insensitive)."""
    if len(a) != len(b):
        return False
    if len(a) == 0:
        return True

    def arrays(frame: pd.DataFrame) -> list[np.ndarray]:
        out = []
        for c in cols:
            col = frame[c]
            if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(col):
                out.append(pd.to_datetime(col, utc=True).astype("datetime64[ns, UTC]").astype("int64")
                           .to_numpy())
            elif c == "vehicle_key":
                out.append(col.astype(str).to_numpy(dtype=object))
            else:
                out.append(col.to_numpy())
        order = np.lexsort(out[::-1])
        return [v[order] for v in out]

    return all(np.array_equal(x, y) for x, y in zip(arrays(a), arrays(b), strict=True))


def diff_alerts(old: pd.DataFrame, fresh: pd.DataFrame, horizon: pd.Timestamp | None) -> LiveUpdate:
    """New, changed and withdrawn alerts between two keyed alert frames of the same scope.

    Alerts gone because they ended before the retention ``horizon`` are retired,
    not withdrawn.
    """
    ho, hn = content_hash(old.drop(columns="_key")), content_hash(fresh.drop(columns="_key"))
    is_new = ~hn.index.isin(ho.index)
    differs = ~is_new & (hn.to_numpy() != ho.reindex(hn.index).to_numpy())
    gone = ~ho.index.isin(hn.index)
    if horizon is not None and gone.any():
        ends = pd.Series(pd.to_datetime(old["end"], utc=True).to_numpy(), index=old["alert_id"].to_numpy())
        gone = gone & ~(ends.reindex(ho.index) < horizon).to_numpy()
    changed = fresh.loc[is_new | differs].drop(columns="_key").reset_index(drop=True)
    return LiveUpdate(
        changed=gpd.GeoDataFrame(changed, geometry="geometry", crs="EPSG:4326"),
        new_ids=[str(a) for a in hn.index[is_new]],
        withdrawn=[str(a) for a in ho.index[gone]],
    )


def merge_updates(into: LiveUpdate, other: LiveUpdate) -> None:
    """Add ``other``'s changes to ``into``."""
    if len(other.changed):
        into.changed = gpd.GeoDataFrame(concat_frames([into.changed, other.changed]), geometry="geometry",
                                        crs="EPSG:4326")
    into.new_ids += other.new_ids
    into.withdrawn += other.withdrawn
