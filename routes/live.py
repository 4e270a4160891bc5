"""The live audit: positions pushed in batches run the batch detectors.

:class:`LiveAuditor` keeps, per vehicle, an *open window* of points (since the
vehicle's last settled state) and re-runs exactly the batch audit's
:func:`~haulwatch.routes.audit.audit_partition` on the windows of the vehicles
that got points, then :func:`~haulwatch.routes.audit.combine` over every
vehicle's results, so a day replayed through it yields the batch audit's alerts
(same ids, same content). Alert ids do not depend on ``end``: an alert whose
window grows comes back as *changed* with the same id.

Settling keeps the cost bounded. After each run, a vehicle's window is cut at
the end of its last *delivered* trip (the truck has left a disposal site
empty): what lies before the cut cannot change any more, so its alert rows,
dump places, loading visits and trips are frozen and its points dropped. The
per-day ``unregistered_vehicle`` kind is recomputed from the frozen and open
trips and loading visits together (same detector function), and the
cross-vehicle kinds (``dump_hotspot``, ``manifest_not_executed``) come from
``combine`` over frozen + open parts, as in the batch. A window is also cut at
``max_window_s`` so a vehicle that never delivers cannot grow it forever.

Teleport outliers are dropped from each window with the batch rule
(:func:`haulwatch.geo.clean.drop_teleports`). Points older than a vehicle's
cut (arriving after their part was settled) are counted in ``late`` and not
audited.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from haulwatch.errors import UserError
from haulwatch.geo.chinacoords import to_wgs84
from haulwatch.geo.clean import drop_teleports
from haulwatch.geo.crs import project
from haulwatch.routes.alerts import ALERT_COLUMNS, ALERT_ROW_COLUMNS, empty_alerts, empty_rows
from haulwatch.routes.audit import (
    Partial,
    audit_partition,
    combine,
    dump_places_empty,
    make_context,
    trips_frame_empty,
)
from haulwatch.routes.config import AuditConfig
from haulwatch.routes.reconcile import unregistered_alerts

__all__ = ["LiveAuditor", "LiveInputError", "LiveUpdate"]

_PER_DAY_KIND = "unregistered_vehicle"
_INPUT_COLUMNS = ("vehicle_id", "vehicle_key", "time", "lon", "lat")
_POINT_COLUMNS = ("vehicle_id", "vehicle_key", "time", "lon", "lat", "x", "y", "speed_kmh",
                  "heading_deg", "load", "lift", "src_row")


class LiveInputError(UserError, ValueError):
    """Pushed points or a live parameter are not usable."""


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
        Ids of earlier alerts the data no longer supports (e.g. a hotspot whose
        rounded place moved as more trucks joined it).
    audited_points : int
        Points re-audited in this push (the open windows of the vehicles that moved).
    late : int
        Points older than their vehicle's settled cut (not audited).
    """

    changed: gpd.GeoDataFrame
    new_ids: list[str] = field(default_factory=list)
    withdrawn: list[str] = field(default_factory=list)
    audited_points: int = 0
    late: int = 0


def _empty_loadings_like(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[:0].copy()


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None]
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return frames[0].iloc[:0].copy() if frames else pd.DataFrame()
    return pd.concat(nonempty, ignore_index=True) if len(nonempty) > 1 else nonempty[0].reset_index(
        drop=True)


def _by_vehicle(frame: pd.DataFrame) -> pd.DataFrame:
    """Order as one batch partition lists them (vehicle, then time)."""
    if len(frame) < 2:
        return frame
    return frame.sort_values(["vehicle_key", "start"], kind="stable", ignore_index=True)


def _content_hash(alerts: pd.DataFrame) -> pd.Series:
    """One uint64 per alert over every column (geometry as WKB)."""
    if len(alerts) == 0:
        return pd.Series([], dtype="uint64", index=pd.Index([], dtype=object))
    cols = [c for c in ALERT_COLUMNS if c != "geometry"]
    text = alerts[cols].astype(str)
    text["_wkb"] = [g.wkb_hex if g is not None else "" for g in alerts.geometry.to_numpy()]
    h = pd.util.hash_pandas_object(text, index=False)
    h.index = alerts["alert_id"].to_numpy()
    return h


class LiveAuditor:
    """Incremental audit of pushed points with the batch detectors.

    Parameters
    ----------
    dataset : haulwatch.ingest.prepare.Dataset
        The service dataset (sites, routes, manifests, vehicles, CRS, timezone,
        ``coord_system`` of pushed coordinates); its ``points`` are not used.
    config : AuditConfig, optional
        Thresholds (default ``AuditConfig()``), the same the batch audit uses.
    max_window_s : float, default 172800
        Longest open window kept per vehicle (seconds); older points are settled.
    depot_keep_s : float, default 900
        Of an empty truck's ongoing depot stay, only this much stays open.
    retain_s : float, default 172800
        Frozen results are kept this long (rounded down to a local midnight)
        before the newest point, then retired: their alerts stay in the
        caller's store but are no longer recomputed (a service running for
        months keeps a bounded state). At least one day.

    The teleport rule is the config's (:attr:`AuditConfig.teleport_rule`), as the
    batch audit applies it when preparing.
    """

    def __init__(self, dataset: Any, config: AuditConfig | None = None, *,
                 max_window_s: float = 172_800.0, depot_keep_s: float = 900.0,
                 retain_s: float = 172_800.0) -> None:
        if not max_window_s > 0:
            raise LiveInputError(f"max_window_s: {max_window_s!r} must be > 0")
        if not depot_keep_s >= 0:
            raise LiveInputError(f"depot_keep_s: {depot_keep_s!r} must be >= 0")
        self.depot_keep_s = float(depot_keep_s)
        if not retain_s >= 86_400:
            raise LiveInputError(f"retain_s: {retain_s!r} must be >= 86400 (one day)")
        self.retain_s = float(retain_s)
        self._horizon: pd.Timestamp | None = None
        self.config = config or AuditConfig()
        self.context = make_context(dataset, self.config)
        self.crs = dataset.crs
        self.coord_system = str(getattr(dataset, "coord_system", "wgs84"))
        self.max_window_s = float(max_window_s)
        sites = self.context.sites_m
        self._depots = set(sites.loc[sites["kind"].astype(str) == "depot", "site_id"].astype(str)) \
            if len(sites) else set()
        self._lock = threading.Lock()
        self._window = pd.DataFrame({
            c: pd.Series([], dtype="datetime64[ns, UTC]" if c == "time" else "int64"
                         if c == "src_row" else object if c in ("vehicle_id", "vehicle_key", "load")
                         else "float64") for c in _POINT_COLUMNS})
        self._cut: dict[str, pd.Timestamp] = {}
        self._seed: dict[str, pd.Timestamp] = {}
        self._frozen = {"rows": empty_rows(), "dumps": dump_places_empty(),
                        "loadings": None, "trips": trips_frame_empty()}
        self._open = {"rows": empty_rows(), "dumps": dump_places_empty(),
                      "loadings": None, "trips": trips_frame_empty()}
        self._stops_empty: pd.DataFrame | None = None
        self._time_min: pd.Timestamp | None = None
        self._time_max: pd.Timestamp | None = None
        self._alerts: gpd.GeoDataFrame = empty_alerts()
        self._hashes = _content_hash(self._alerts)

    # ------------------------------------------------------------------ state
    @property
    def alerts(self) -> gpd.GeoDataFrame:
        """Every current alert (frozen and open), as the batch audit would report them."""
        return self._alerts.copy()

    @property
    def window_points(self) -> int:
        """Points currently held in open windows."""
        return len(self._window)

    # ------------------------------------------------------------------- push
    def _canonical(self, points: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in _INPUT_COLUMNS if c not in points.columns]
        if missing:
            raise LiveInputError(f"points: missing column(s) {', '.join(missing)}; need "
                                 f"{', '.join(_INPUT_COLUMNS)}")
        time = points["time"]
        if not isinstance(time.dtype, pd.DatetimeTZDtype):
            raise LiveInputError(f"time: dtype {time.dtype} is not tz-aware; convert to UTC first")
        lon, lat = to_wgs84(points["lon"].to_numpy("float64"), points["lat"].to_numpy("float64"),
                            self.coord_system)
        x, y = project(lon, lat, self.crs)
        n = len(points)

        def opt(name: str, dtype: str | None = "float64") -> Any:
            if name in points.columns:
                col = points[name]
                return col.to_numpy(dtype) if dtype else col.astype(object).where(
                    col.notna(), None).to_numpy()
            return np.full(n, np.nan) if dtype else np.full(n, None, dtype=object)

        return pd.DataFrame({
            "vehicle_id": points["vehicle_id"].astype(str).to_numpy(),
            "vehicle_key": points["vehicle_key"].astype(str).to_numpy(),
            "time": time.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").to_numpy(),
            "lon": lon, "lat": lat, "x": x, "y": y,
            "speed_kmh": opt("speed_kmh"), "heading_deg": opt("heading_deg"),
            "load": opt("load", None), "lift": opt("lift"),
            "src_row": (points["src_row"].to_numpy("int64") if "src_row" in points.columns
                        else np.arange(1, n + 1, dtype="int64")),
        }).assign(time=lambda f: pd.to_datetime(f["time"], utc=True))

    def push(self, points: pd.DataFrame) -> LiveUpdate:
        """Add points and re-audit the vehicles that got them.

        Parameters
        ----------
        points : DataFrame
            Tracks rows (``vehicle_id, vehicle_key, time`` tz-aware, ``lon, lat``
            in the dataset's ``coord_system``, optional ``speed_kmh, heading_deg,
            load, lift``), any order; duplicates of held points are ignored.
            Not changed.

        Returns
        -------
        LiveUpdate

        Raises
        ------
        LiveInputError
            Missing columns or naive times.
        """
        with self._lock:
            return self._push(points)

    def _push(self, points: pd.DataFrame) -> LiveUpdate:
        if len(points) == 0:
            return LiveUpdate(changed=empty_alerts())
        new = self._canonical(points)
        cut = pd.Series(self._cut, dtype="datetime64[ns, UTC]")
        if len(cut):
            limit = new["vehicle_key"].map(cut)
            late = (limit.notna() & (new["time"] <= limit)).to_numpy()
        else:
            late = np.zeros(len(new), dtype=bool)
        n_late = int(late.sum())
        new = new.loc[~late]
        if len(new) == 0:
            return LiveUpdate(changed=empty_alerts(), late=n_late)
        affected = pd.unique(new["vehicle_key"])
        in_aff = self._window["vehicle_key"].isin(affected).to_numpy()
        win = pd.concat([self._window.loc[in_aff], new], ignore_index=True) if in_aff.any() \
            else new.reset_index(drop=True)
        win = win.drop_duplicates(["vehicle_key", "time"], keep="first")
        win = win.sort_values(["vehicle_key", "time"], kind="stable", ignore_index=True)
        tmin, tmax = new["time"].min(), new["time"].max()
        self._time_min = tmin if self._time_min is None else min(self._time_min, tmin)
        self._time_max = tmax if self._time_max is None else max(self._time_max, tmax)

        kept, _ = drop_teleports(win, **self.config.teleport_rule)
        part = audit_partition(win.loc[kept].reset_index(drop=True), self.context, self.config)
        if self._stops_empty is None:
            self._stops_empty = part.stops.iloc[:0].copy()
        if self._open["loadings"] is None:
            self._open["loadings"] = _empty_loadings_like(part.loadings)
            self._frozen["loadings"] = _empty_loadings_like(part.loadings)

        # replace the open results of the affected vehicles
        for name, fresh in (("rows", part.rows), ("dumps", part.dumps),
                            ("loadings", part.loadings), ("trips", part.trips)):
            old = self._open[name]
            keep = ~old["vehicle_key"].astype(str).isin(affected).to_numpy() if len(old) else None
            fresh = self._drop_seeded(fresh)
            self._open[name] = _concat([old.loc[keep] if keep is not None else old, fresh])
        self._recompute_per_day(affected)
        self._window = pd.concat([self._window.loc[~in_aff], win], ignore_index=True)
        self._settle(affected, part, win)

        self._retire()
        update = self._combine()
        update.audited_points = len(win)
        update.late = n_late
        return update

    def _recompute_per_day(self, affected: np.ndarray) -> None:
        """``unregistered_vehicle`` from frozen + open trips and loadings of these vehicles."""
        rows = self._open["rows"]
        if len(rows):
            drop = (rows["kind"] == _PER_DAY_KIND).to_numpy() & \
                rows["vehicle_key"].astype(str).isin(affected).to_numpy()
            rows = rows.loc[~drop]
        parts = []
        for name in ("trips", "loadings"):
            both = _concat([self._frozen[name], self._open[name]])
            parts.append(both[both["vehicle_key"].astype(str).isin(affected)] if len(both) else both)
        extra = unregistered_alerts(parts[0], parts[1], self.context.vehicles,
                                    timezone=self.context.timezone)
        self._open["rows"] = _concat([rows, extra]) if len(extra) else rows

    def _settle(self, affected: np.ndarray, part: Partial, win: pd.DataFrame) -> None:
        """Freeze what can no longer change for each affected vehicle.

        Two times per vehicle: the *seed* (results starting before it are
        final and frozen) and the *cut* (points at or before it are dropped).
        The window keeps a little before the seed so that the detectors start
        from a known state (empty truck), as they do in the batch:

        * last delivered trip: seed = its end, cut = just before its unloading
          visit (the window starts with that visit, so the truck is known empty;
          the visit's duplicate "unknown-origin" trip starts before the seed
          and is ignored);
        * an empty truck's latest depot stay: seed = cut = just before it (a
          long stay — a truck parked for the night — is cut inside too, so
          only its last ``depot_keep_s`` stay open);
        * ``max_window_s`` before the newest point (seed = cut), a bound for
          trucks that never deliver nor park in a depot.

        Only depot stays qualify as plain stops: elsewhere a track-only truck's
        dwell may yet turn out to be a loading visit once it reaches a
        disposal site. Seeds only move forward and stay before the newest point.
        """
        trips, stops = part.trips, part.stops
        last_t = win.groupby("vehicle_key")["time"].max()
        index = pd.Index(affected, dtype=object)
        one_s = pd.Timedelta(seconds=1)
        cands: list[pd.DataFrame] = []
        open_keys: set[str] = set()
        if len(trips):
            keys = trips["vehicle_key"].astype(str)
            open_keys = set(keys[trips["status"] == "open"])
            done = trips[(trips["status"] == "delivered").to_numpy()]
            if len(done):
                d = pd.DataFrame({
                    "key": done["vehicle_key"].astype(str).to_numpy(),
                    "seed": pd.to_datetime(done["end"], utc=True).to_numpy(),
                    "cut": (pd.to_datetime(done["unload_start"], utc=True) - one_s).to_numpy(),
                }).sort_values("seed").groupby("key").last()
                cands.append(d)
        if len(stops):
            skeys = stops["vehicle_key"].astype(str)
            empty = ~skeys.isin(open_keys).to_numpy() & \
                stops["site_id"].astype(str).isin(self._depots).to_numpy()
            if empty.any():
                st = stops.loc[empty]
                last = pd.DataFrame({
                    "start": pd.to_datetime(st["start"], utc=True).to_numpy(),
                    "end": pd.to_datetime(st["end"], utc=True).to_numpy(),
                    "key": skeys[empty].to_numpy()}).sort_values("start").groupby("key").last()
                inside = last["end"] - pd.Timedelta(seconds=self.depot_keep_s)
                at = pd.concat([last["start"] - one_s, inside], axis=1).max(axis=1)
                cands.append(pd.DataFrame({"seed": at, "cut": at}))
        horizon = last_t - pd.Timedelta(seconds=self.max_window_s)
        cands.append(pd.DataFrame({"seed": horizon, "cut": horizon}))
        allc = pd.concat([c.reindex(index) for c in cands if len(c)], keys=range(len(cands)))
        allc = allc.dropna(subset=["seed"]).reset_index(level=1, names=["_", "key"])
        if allc.empty:
            return
        best = allc.sort_values("seed", kind="stable").groupby("key").last()
        newest = last_t.reindex(best.index)
        prev = pd.Series(self._seed, dtype="datetime64[ns, UTC]").reindex(best.index)
        ok = (best["seed"] < newest) & (best["cut"] < newest) & (prev.isna() | (best["seed"] > prev))
        best = best.loc[ok.to_numpy()]
        if best.empty:
            return
        seed = best["seed"]
        for name in ("rows", "dumps", "loadings", "trips"):
            frame = self._open[name]
            if not len(frame):
                continue
            limit = frame["vehicle_key"].astype(str).map(seed)
            before = (limit.notna() & (pd.to_datetime(frame["start"], utc=True) < limit)).to_numpy()
            if name == "rows":
                per_day = (frame["kind"] == _PER_DAY_KIND).to_numpy()
                frozen = frame.loc[before & ~per_day]
                # the per-day kind stays open (recomputed from frozen + open parts)
                self._open[name] = frame.loc[~before | per_day].reset_index(drop=True)
            else:
                frozen = frame.loc[before]
                self._open[name] = frame.loc[~before].reset_index(drop=True)
            self._frozen[name] = _concat([self._frozen[name], frozen])
        cut = best["cut"]
        wlimit = self._window["vehicle_key"].map(cut)
        old = (wlimit.notna() & (self._window["time"] <= wlimit)).to_numpy()
        self._window = self._window.loc[~old].reset_index(drop=True)
        prev_cut = pd.Series(self._cut, dtype="datetime64[ns, UTC]").reindex(cut.index)
        self._cut.update(cut.where(prev_cut.isna() | (cut > prev_cut), prev_cut).to_dict())
        self._seed.update(seed.to_dict())

    def _drop_seeded(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Results of a re-run that start before their vehicle's seed are already frozen."""
        if not len(frame) or not self._seed:
            return frame
        limit = frame["vehicle_key"].astype(str).map(
            pd.Series(self._seed, dtype="datetime64[ns, UTC]"))
        before = (limit.notna() & (pd.to_datetime(frame["start"], utc=True) < limit)).to_numpy()
        return frame.loc[~before].reset_index(drop=True) if before.any() else frame

    def _retire(self) -> None:
        """Drop frozen results older than ``retain_s`` (whole local days)."""
        if self._time_max is None:
            return
        tz = self.context.timezone
        horizon = (self._time_max - pd.Timedelta(seconds=self.retain_s)).tz_convert(tz).floor(
            "D", ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
        if self._horizon is not None and horizon <= self._horizon:
            return
        self._horizon = horizon
        keep_loadings = horizon - pd.Timedelta(days=31)  # manifests may span weeks
        for name, col, limit in (("rows", "end", horizon), ("dumps", "start", horizon),
                                 ("trips", "end", horizon), ("loadings", "start", keep_loadings)):
            frame = self._frozen[name]
            if frame is None or not len(frame):
                continue
            old = (pd.to_datetime(frame[col], utc=True) < limit).to_numpy()
            if old.any():
                self._frozen[name] = frame.loc[~old].reset_index(drop=True)

    def _combine(self) -> LiveUpdate:
        partial = Partial(
            rows=_concat([self._frozen["rows"], self._open["rows"]])[list(ALERT_ROW_COLUMNS)],
            stops=self._stops_empty if self._stops_empty is not None else pd.DataFrame(),
            trips=_concat([self._frozen["trips"], self._open["trips"]]),
            dumps=_by_vehicle(_concat([self._frozen["dumps"], self._open["dumps"]])),
            loadings=_by_vehicle(_concat([self._frozen["loadings"], self._open["loadings"]])),
            n_points=0, time_max=self._time_max,
            time_min=(self._time_min if self._horizon is None or self._time_min is None
                      else max(self._time_min, self._horizon)),
        )
        alerts = combine([partial], self.context, self.config).alerts
        hashes = _content_hash(alerts)
        prev = self._hashes
        is_new = ~hashes.index.isin(prev.index)
        differs = ~is_new & (hashes.to_numpy() != prev.reindex(hashes.index).to_numpy())
        changed_mask = is_new | differs
        gone = ~prev.index.isin(hashes.index)
        if self._horizon is not None and gone.any() and len(self._alerts):
            # alerts that ended before the retention horizon are retired, not withdrawn
            ends = pd.Series(pd.to_datetime(self._alerts["end"], utc=True).to_numpy(),
                             index=self._alerts["alert_id"].to_numpy())
            gone &= ~(ends.reindex(prev.index) < self._horizon).to_numpy()
        withdrawn = [str(a) for a in prev.index[gone]]
        self._alerts, self._hashes = alerts, hashes
        return LiveUpdate(
            changed=alerts.loc[changed_mask].reset_index(drop=True),
            new_ids=[str(a) for a in hashes.index[is_new]],
            withdrawn=withdrawn,
        )
