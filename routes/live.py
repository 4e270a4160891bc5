"""The live audit: positions pushed as they arrive run the batch detectors.

:class:`LiveAuditor` keeps, per vehicle, an *open window* of points (since the
vehicle's last settled state) and re-runs exactly the batch audit's
:func:`~haulwatch.routes.audit.audit_partition` on the windows of the vehicles
that got points, so a day replayed through it yields the batch audit's alerts
(same ids, same content), whatever the order and grouping of the pushes. Alert
ids do not depend on ``end``: an alert whose window grows comes back as
*changed* with the same id.

Work per push is proportional to the open windows of the vehicles that got
points, never to the fleet:

* each vehicle's window is held as its own arrays; a push gathers the windows of
  its vehicles into one frame, audits them together (one vectorized run, so
  many single reports arriving together cost one run — the caller batches what
  arrived while the previous run was going) and splits the result back;
* alerts are made only from the open results of those vehicles and compared
  with what those vehicles had (new, changed, withdrawn); frozen results keep
  their alerts;
* the cross-vehicle kinds are updated incrementally, as ``combine`` would give
  them: ``dump_hotspot`` is recomputed only when a dump place changed, and
  ``manifest_not_executed`` only for the vehicles whose loading visits changed
  and the manifests whose window the data has just passed; the per-day
  ``unregistered_vehicle`` from the frozen and open trips of the pushed vehicles.

Settling keeps the windows short. After each run, a vehicle's window is cut at
the end of its last *delivered* trip (the truck has left a disposal site
empty), before an empty truck's depot stay, or ``max_window_s`` before its
newest point: what lies before the cut cannot change any more, so its alert
rows, dump places, loading visits and trips are frozen and its points leave the
window.

Points that arrive late — a blind-area back-fill (JT/T 808 0x0704) or a terminal
reconnecting after a dead zone — are audited in time order: the vehicle is
rolled back to the last settled state taken before the late point (settled
points are kept ``backfill_s`` for that), the results frozen since are reopened,
and the window is audited again with the late points in place; alerts the late
points change come back as changed, new or withdrawn, exactly as if the points
had come in time. Only points older than that (more than ``backfill_s`` behind
the vehicle's newest point) are counted ``late`` and not audited. A re-sent
point (same vehicle and time as a held one) is ignored.

Teleport outliers are dropped from each window with the batch rule
(:attr:`AuditConfig.teleport_rule`, :func:`haulwatch.geo.clean.drop_teleports`).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import itertools
import multiprocessing
import threading
import time
import weakref
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from haulwatch.errors import UserError
from haulwatch.geo.chinacoords import to_wgs84
from haulwatch.geo.clean import drop_teleports
from haulwatch.geo.crs import project
from haulwatch.routes.alerts import (
    ALERT_COLUMNS,
    empty_alerts,
    empty_rows,
)
from haulwatch.routes.audit import (
    Partial,
    audit_partition,
    dump_places_empty,
    make_context,
    trips_frame_empty,
)
from haulwatch.routes.config import AuditConfig
from haulwatch.routes.hotspots import hotspot_alerts
from haulwatch.routes.livestate import FLOATS as _FLOATS
from haulwatch.routes.livestate import LiveUpdate
from haulwatch.routes.livestate import VehiclePoints as _Vehicle
from haulwatch.routes.livestate import concat_frames as _concat
from haulwatch.routes.livestate import diff_alerts as _diff
from haulwatch.routes.livestate import in_keys as _in
from haulwatch.routes.livestate import keyed_alerts as _keyed_alerts
from haulwatch.routes.livestate import merge_updates as _merge
from haulwatch.routes.livestate import part_points as _part
from haulwatch.routes.livestate import row_records as _records
from haulwatch.routes.livestate import same_values as _same
from haulwatch.routes.livestate import signature as _signature
from haulwatch.routes.reconcile import not_executed_alerts, unregistered_alerts

__all__ = ["LiveAuditor", "LiveInputError", "LiveUpdate"]

_PER_DAY_KIND = "unregistered_vehicle"
_INPUT_COLUMNS = ("vehicle_id", "vehicle_key", "time", "lon", "lat")
_RESULTS = ("rows", "dumps", "loadings", "trips")
#: Order of an alerts frame (as ``routes.alerts.make_alerts`` sorts it).
_ALERT_ORDER = ["start", "kind", "vehicle_id", "alert_id", "end", "summary", "evidence"]


class LiveInputError(UserError, ValueError):
    """Pushed points or a live parameter are not usable."""


class LiveAuditor:
    """Incremental audit of pushed points with the batch detectors.

    Parameters
    ----------
    dataset : haulwatch.ingest.prepare.Dataset
        The service dataset (sites, routes, manifests, vehicles, CRS, timezone,
        ``coord_system`` of pushed coordinates); its ``points`` are not used.
    config : AuditConfig, optional
        Thresholds (default ``AuditConfig()``), the same the batch audit uses
        (its teleport rule included).
    max_window_s : float, default 172800
        Longest open window kept per vehicle (seconds); older points are settled.
    depot_keep_s : float, default 900
        Of an empty truck's ongoing depot stay, only this much stays open.
    retain_s : float, default 172800
        Frozen results are kept this long (rounded down to a local midnight)
        before the newest point, then retired: their alerts stay in the
        caller's store but are no longer recomputed (a service running for
        months keeps a bounded state). At least one day.
    backfill_s : float, default 7200
        How far behind a vehicle's newest point a late point is still audited in
        time order (settled points are held this long, plus the trip before).
        0 keeps no settled point: every point older than its vehicle's cut is late.
    workers : int, default 0
        Worker processes that audit part of the windows while this process
        audits the rest (``workers=1`` on a 2-core machine: each run's windows
        are split in two by vehicles, so a run takes about half the time). The
        detectors are per-vehicle, so the results are the same. 0: all in this
        process. Started with ``spawn`` (safe in a threaded service); a worker
        that dies is not replaced (the audit goes on in this process).
        :meth:`close` stops them.
    """

    def __init__(self, dataset: Any, config: AuditConfig | None = None, *,
                 max_window_s: float = 172_800.0, depot_keep_s: float = 900.0,
                 retain_s: float = 172_800.0, backfill_s: float = 7_200.0, workers: int = 0) -> None:
        if not max_window_s > 0:
            raise LiveInputError(f"max_window_s: {max_window_s!r} must be > 0")
        if not depot_keep_s >= 0:
            raise LiveInputError(f"depot_keep_s: {depot_keep_s!r} must be >= 0")
        if not retain_s >= 86_400:
            raise LiveInputError(f"retain_s: {retain_s!r} must be >= 86400 (one day)")
        if not (backfill_s >= 0 and np.isfinite(backfill_s)):
            raise LiveInputError(f"backfill_s: {backfill_s!r} must be a number >= 0")
        if isinstance(workers, bool) or not isinstance(workers, int | np.integer) or workers < 0:
            raise LiveInputError(f"workers: {workers!r} must be an integer >= 0")
        self.depot_keep_s = float(depot_keep_s)
        self.retain_s = float(retain_s)
        self.max_window_s = float(max_window_s)
        self.backfill_s = float(backfill_s)
        self.config = config or AuditConfig()
        self.context = make_context(dataset, self.config)
        # the window runs skip the per-day kind: it comes from frozen + open parts
        self._window_context = dataclasses.replace(self.context, vehicles=None)
        self.crs = dataset.crs
        self.coord_system = str(getattr(dataset, "coord_system", "wgs84"))
        sites = self.context.sites_m
        self._depots = set(sites.loc[sites["kind"].astype(str) == "depot", "site_id"].astype(str)) \
            if len(sites) else set()
        self._lock = threading.Lock()
        self._load_cats: list[Any] = []  # load readings seen (categories of the windows' codes)
        self._load_index: dict[Any, int] = {}
        self._vehicles: dict[str, _Vehicle] = {}
        self._pushes = 0
        #: Seconds spent per stage of :meth:`push`, summed over pushes (for benchmarks).
        self.timings: dict[str, float] = {}
        self._frozen: dict[str, pd.DataFrame | None] = {
            "rows": empty_rows(), "dumps": dump_places_empty(), "loadings": None,
            "trips": trips_frame_empty()}
        self._open: dict[str, pd.DataFrame | None] = {
            "rows": empty_rows(), "dumps": dump_places_empty(), "loadings": None,
            "trips": trips_frame_empty()}
        self._horizon: pd.Timestamp | None = None
        self._time_min: pd.Timestamp | None = None
        self._time_max: pd.Timestamp | None = None
        # alerts: of frozen rows, of open rows (per-vehicle kinds), hotspots, manifests
        self._frozen_alerts = _keyed_alerts(empty_rows(), self.context.timezone)
        self._open_alerts = self._frozen_alerts.copy()
        self._hot_alerts = self._frozen_alerts.copy()
        self._ne_alerts = self._frozen_alerts.copy()
        self._ne_span: tuple[float, float] | None = None  # (data_start, data_end) judged last
        veh = self.context.vehicles
        self._registered: set[str] | None = None
        if veh is not None:
            reg = veh["registered"].astype("boolean").fillna(False).to_numpy(dtype=bool)
            self._registered = set(veh["vehicle_key"].astype(str).to_numpy()[reg])
        man = self.context.manifests
        if man is not None and len(man):
            vt = pd.to_datetime(man["valid_to"], utc=True)
            self._man_vt = (vt.astype("int64") / 1e9).to_numpy(dtype=np.float64)
            self._man_keys = man["vehicle_key"].astype(str).to_numpy(dtype=object)
        else:
            self._man_vt = np.empty(0)
            self._man_keys = np.empty(0, dtype=object)
        self._man_key_set = set(self._man_keys)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._workers = int(workers)
        #: Smaller runs are audited in this process alone (sending costs more than it saves).
        self.parallel_min_points = 2_000
        if self._workers:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init, initargs=(self._window_context, self.config))
            self._finalizer = weakref.finalize(self, self._pool.shutdown, wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the worker processes (if any); the engine then audits in this process."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ state
    @property
    def alerts(self) -> gpd.GeoDataFrame:
        """Every current alert (frozen and open), as the batch audit would report them."""
        parts = [a for a in (self._frozen_alerts, self._open_alerts, self._hot_alerts,
                             self._ne_alerts) if len(a)]
        if not parts:
            return empty_alerts()
        out = pd.concat(parts, ignore_index=True).drop(columns="_key")
        out = out.sort_values(_ALERT_ORDER, kind="mergesort").reset_index(drop=True)
        return gpd.GeoDataFrame(out, geometry="geometry", crs="EPSG:4326")[list(ALERT_COLUMNS)]

    @property
    def window_points(self) -> int:
        """Points currently held in open windows."""
        return sum(len(v.win[0]) for v in self._vehicles.values())

    @property
    def held_points(self) -> int:
        """Points held in all (open windows and settled points kept for back-fill)."""
        return sum(len(v.win[0]) + len(v.arch[0]) for v in self._vehicles.values())

    def state_bytes(self) -> int:
        """Approximate bytes the engine holds: points (arrays) and result/alert frames."""
        n = 0
        for v in self._vehicles.values():
            for part in (v.arch, v.win):
                n += sum(int(a.nbytes) for a in part)  # object columns: their pointers
        frames = [*self._frozen.values(), *self._open.values(), self._frozen_alerts,
                  self._open_alerts, self._hot_alerts, self._ne_alerts]
        for f in frames:
            if f is not None and len(f):
                n += int(pd.DataFrame(f).memory_usage(index=False, deep=True).sum())
        return n

    @property
    def vehicles(self) -> int:
        """Vehicles seen."""
        return len(self._vehicles)

    def cut_of(self, vehicle_key: str) -> pd.Timestamp | None:
        """The time up to which a vehicle's points are settled (None: nothing settled)."""
        v = self._vehicles.get(str(vehicle_key))
        if v is None or v.cut is None:
            return None
        return pd.Timestamp(v.cut, unit="ns", tz="UTC")

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
            "vehicle_id": pd.Series(_text(points["vehicle_id"]), dtype=object),
            "vehicle_key": pd.Series(_text(points["vehicle_key"]), dtype=object),
            "time": pd.DatetimeIndex(time).as_unit("ns").asi8,
            "lon": lon, "lat": lat, "x": x, "y": y,
            "speed_kmh": opt("speed_kmh"), "heading_deg": opt("heading_deg"),
            "load": self._load_codes(opt("load", None)), "lift": opt("lift"),
            "src_row": (points["src_row"].to_numpy("int64") if "src_row" in points.columns
                        else np.arange(1, n + 1, dtype="int64")),
        })

    def _load_codes(self, values: np.ndarray) -> np.ndarray:
        """``load`` readings as codes into the engine's categories (-1: none).

        Windows hold the codes and are audited with a categorical ``load``
        (the detectors read the category values; no per-run factorizing).
        """
        codes, uniq = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
        table = np.empty(len(uniq) + 1, dtype=np.int16)
        table[-1] = -1
        for i, u in enumerate(uniq):
            c = self._load_index.get(u)
            if c is None:
                c = self._load_index[u] = len(self._load_cats)
                self._load_cats.append(u)
            table[i] = c
        return table[codes]

    def push(self, points: pd.DataFrame) -> LiveUpdate:
        """Add points and re-audit the vehicles that got them.

        Parameters
        ----------
        points : DataFrame
            Tracks rows (``vehicle_id, vehicle_key, time`` tz-aware, ``lon, lat``
            in the dataset's ``coord_system``, optional ``speed_kmh, heading_deg,
            load, lift``), any vehicles, any order, late ones included;
            duplicates of held points are ignored. Not changed.

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
        clock = [time.perf_counter()]

        def lap(name: str) -> None:
            now = time.perf_counter()
            self.timings[name] = self.timings.get(name, 0.0) + now - clock[0]
            clock[0] = now

        new = self._canonical(points)
        new, n_late, n_back, rolled = self._admit(new)
        if len(new) == 0 and not rolled:
            return LiveUpdate(changed=empty_alerts(), late=n_late)
        affected = np.array(sorted(set(new["vehicle_key"]) | rolled), dtype=object)
        if len(new):
            tmin = pd.Timestamp(int(new["time"].min()), unit="ns", tz="UTC")
            tmax = pd.Timestamp(int(new["time"].max()), unit="ns", tz="UTC")
            self._time_min = tmin if self._time_min is None else min(self._time_min, tmin)
            self._time_max = tmax if self._time_max is None else max(self._time_max, tmax)
        lap("admit")
        win, newest = self._gather(affected, new)
        lap("gather")
        part = self._audit(win, affected)
        if self._open["loadings"] is None:
            self._open["loadings"] = part.loadings.iloc[:0].copy()
            self._frozen["loadings"] = part.loadings.iloc[:0].copy()
        lap("audit")

        # replace the open results of the affected vehicles
        old_rows = _records(self._open["rows"].loc[_in(self._open["rows"], affected)])
        old_dumps = self._open["dumps"].loc[_in(self._open["dumps"], affected)]
        old_load = self._open["loadings"].loc[_in(self._open["loadings"], affected)]
        old_trips = self._open["trips"].loc[_in(self._open["trips"], affected)]
        for name, fresh in (("rows", part.rows), ("dumps", part.dumps),
                            ("loadings", part.loadings), ("trips", part.trips)):
            old = self._open[name]
            fresh = self._drop_seeded(fresh)
            keep = ~_in(old, affected)
            if name == "rows" and len(old):
                # the per-day kind comes from frozen + open parts (_recompute_per_day), not the window
                keep = keep | (old["kind"] == _PER_DAY_KIND).to_numpy()
            if name == "rows" and len(fresh):
                fresh = fresh.loc[(fresh["kind"] != _PER_DAY_KIND).to_numpy()]
            self._open[name] = _concat([old.loc[keep], fresh])
        self._recompute_per_day(affected, old_load, old_trips, rolled)
        lap("results")
        new_rows = _records(self._open["rows"].loc[_in(self._open["rows"], affected)])
        moved = [k for k in set(old_rows) | set(new_rows) if old_rows.get(k) != new_rows.get(k)]
        update = self._diff_vehicles(np.array(sorted(moved), dtype=object))
        dumps_moved = not _same(old_dumps, self._open["dumps"].loc[_in(self._open["dumps"], affected)],
                                ("vehicle_key", "start", "end", "x", "y"))
        keys = list(affected)
        before = _signature(old_load, keys, ("vehicle_key", "start"))
        after = _signature(self._open["loadings"], keys, ("vehicle_key", "start"))
        loads_of = {k for k in set(before) | set(after) if before.get(k) != after.get(k)} | rolled
        lap("alerts")
        self._settle(affected, part, newest)
        retired = self._retire()
        lap("settle")
        self._cross_vehicle(update, np.array(sorted(loads_of), dtype=object),
                            hot=dumps_moved or retired or bool(rolled))
        lap("cross_vehicle")
        update.audited_points = len(win)
        update.late = n_late
        update.backfilled = n_back
        return update

    def _audit(self, win: pd.DataFrame, affected: np.ndarray) -> Partial:
        """``audit_partition`` of the windows (teleports dropped), shared with the workers.

        ``win`` holds the vehicles' points contiguously, in the order of ``affected``;
        it is split at vehicle boundaries into parts of about equal points.
        """
        pool = self._pool
        if pool is None or len(affected) < 2 or len(win) < self.parallel_min_points:
            return _audit_window(win, self._window_context, self.config)
        n_parts = min(self._workers + 1, len(affected))
        code = pd.Index(affected, dtype=object).get_indexer(win["vehicle_key"].to_numpy(dtype=object))
        # vehicle boundaries nearest to equal shares of the points
        starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
        want = np.arange(1, n_parts) * len(win) / n_parts
        cuts = np.unique(starts[np.clip(np.searchsorted(starts, want), 0, len(starts) - 1)])
        bounds = [0, *[int(c) for c in cuts if 0 < c < len(win)], len(win)]
        pieces = [win.iloc[a:b] for a, b in itertools.pairwise(bounds) if b > a]
        try:
            futures = [pool.submit(_worker_audit, _compact_frame(piece)) for piece in pieces[1:]]
        except (RuntimeError, concurrent.futures.process.BrokenProcessPool):
            self._pool = None
            return _audit_window(win, self._window_context, self.config)
        parts = [_audit_window(pieces[0], self._window_context, self.config)]
        for fut, piece in zip(futures, pieces[1:], strict=True):
            try:
                parts.append(fut.result())
            except concurrent.futures.process.BrokenProcessPool:
                # a worker died: its share is audited here, later runs too
                self._pool = None
                parts.append(_audit_window(piece, self._window_context, self.config))
        return _join_partials(parts)

    # ---------------------------------------------------------------- windows
    def _admit(self, new: pd.DataFrame) -> tuple[pd.DataFrame, int, int, set[str]]:
        """Sort new points into held vehicles; roll back vehicles that got late points.

        Returns the points to add to the windows, the count of points too late to
        audit, the count of late points audited after a roll-back, and the keys of
        the vehicles rolled back.
        """
        keys = new["vehicle_key"].to_numpy(dtype=object)
        t = new["time"].to_numpy(dtype=np.int64)
        uniq, inverse = np.unique(keys.astype(str), return_inverse=True)
        never = np.iinfo(np.int64).min
        cuts = np.empty(len(uniq), dtype=np.int64)
        for i, key in enumerate(uniq):
            v = self._vehicles.get(key)
            if v is None:
                v = self._vehicles[key] = _Vehicle()
            cuts[i] = never if v.cut is None else v.cut
        behind = t <= cuts[inverse]
        if not behind.any():
            return new, 0, 0, set()
        drop = np.zeros(len(new), dtype=bool)
        n_late = n_back = 0
        rolled: set[str] = set()
        for i in np.unique(inverse[behind]):
            key = str(uniq[i])
            v = self._vehicles[key]
            old = np.flatnonzero(behind & (inverse == i))
            held = np.isin(t[old], v.arch[0])  # re-sent points already held are ignored
            drop[old[held]] = True
            old = old[~held]
            if not v.complete:
                # only the settled states still held can be returned to
                gone = t[old] <= v.settles[0][2]
                drop[old[gone]] = True
                n_late += int(gone.sum())
                old = old[~gone]
            if len(old) == 0:
                continue
            earliest = int(t[old].min())
            j = len(v.settles) - 1
            while j >= 0 and v.settles[j][2] >= earliest:
                j -= 1
            self._rollback(key, v, j)
            rolled.add(key)
            n_back += len(old)
        return new.loc[~drop].reset_index(drop=True), n_late, n_back, rolled

    def _rollback(self, key: str, v: _Vehicle, j: int) -> None:
        """Return a vehicle to its ``j``-th settled state (-1: none), reopening what froze since."""
        seed = v.settles[j][0] if j >= 0 else None
        cut = v.settles[j][1] if j >= 0 else None
        del v.settles[j + 1:]
        v.cut_at(cut)
        mine = {key}
        for name in _RESULTS:
            frame = self._frozen[name]
            if frame is None or not len(frame):
                continue
            sel = _in(frame, mine)
            if seed is not None:
                sel = sel & (pd.to_datetime(frame["start"], utc=True)
                             >= pd.Timestamp(seed, unit="ns", tz="UTC")).to_numpy()
            if sel.any():
                self._frozen[name] = frame.loc[~sel].reset_index(drop=True)
        fa = self._frozen_alerts
        sel = (fa["_key"] == key).to_numpy() if len(fa) else np.zeros(0, dtype=bool)
        if seed is not None and len(fa):
            sel = sel & (pd.to_datetime(fa["start"], utc=True)
                         >= pd.Timestamp(seed, unit="ns", tz="UTC")).to_numpy()
        if sel.any():
            # reopened: compared with what the re-run gives, like open alerts
            self._open_alerts = _concat([self._open_alerts, fa.loc[sel]])
            self._frozen_alerts = fa.loc[~sel].reset_index(drop=True)

    def _gather(self, affected: np.ndarray, new: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        """The open windows of ``affected`` with the new points merged in (written back), and
        each vehicle's newest point time."""
        vs = [self._vehicles[k] for k in affected]
        lens = np.array([len(v.win[0]) for v in vs], dtype=np.int64)
        code_new = pd.Index(affected, dtype=object).get_indexer(new["vehicle_key"].to_numpy(dtype=object))
        t = np.concatenate([*(v.win[0] for v in vs), new["time"].to_numpy(np.int64)])
        code = np.concatenate([np.repeat(np.arange(len(vs)), lens), code_new])
        prio = np.r_[np.zeros(int(lens.sum()), dtype=np.int8), np.ones(len(new), dtype=np.int8)]
        f = np.concatenate([*(v.win[1] for v in vs),
                            np.column_stack([new[c].to_numpy(np.float64) for c in _FLOATS])
                            if len(new) else np.empty((0, len(_FLOATS)))])
        load = np.concatenate([*(v.win[2] for v in vs), new["load"].to_numpy(dtype=np.int16)])
        vid = np.concatenate([*(v.win[3] for v in vs), new["vehicle_id"].to_numpy(dtype=object)])
        src = np.concatenate([*(v.win[4] for v in vs), new["src_row"].to_numpy(np.int64)])
        order = self._merge_order(vs, t, code, int(lens.sum()))
        if order is None:  # late or repeated points among the new ones: a full sort
            order = np.lexsort((prio, t, code))
            t, code = t[order], code[order]
            keep = np.ones(len(t), dtype=bool)
            keep[1:] = (t[1:] != t[:-1]) | (code[1:] != code[:-1])  # first of a (vehicle, time) wins
            order = order[keep]
            t, code = t[keep], code[keep]
        else:
            t, code = t[order], code[order]
        f, load, vid, src = f[order], load[order], vid[order], src[order]
        bounds = np.searchsorted(code, np.arange(len(vs) + 1))
        merged = [t, f, load, vid, src]
        # windows are views of the merged arrays (cheap); see _compact
        for i, v in enumerate(vs):
            v.win = _part(merged, bounds[i], bounds[i + 1])
        self._pushes += 1
        if self._pushes % 64 == 0:
            self._compact(set(affected))
        data: dict[str, Any] = {
            "vehicle_id": pd.Series(vid, dtype=object),
            "vehicle_key": pd.Series(affected[code], dtype=object),
            "time": pd.to_datetime(t, unit="ns", utc=True),
        }
        for k, c in enumerate(_FLOATS):
            if c == "lift":
                data["load"] = pd.Series(pd.Categorical.from_codes(
                    load, categories=pd.Index(self._load_cats, dtype=object)))
            data[c] = f[:, k]
        data["src_row"] = src
        has = bounds[1:] > bounds[:-1]
        newest = pd.Series(pd.to_datetime(t[bounds[1:][has] - 1], unit="ns", utc=True),
                           index=pd.Index(affected[has], dtype=object))
        return pd.DataFrame(data), newest

    @staticmethod
    def _merge_order(vs: list[_Vehicle], t: np.ndarray, code: np.ndarray, n_old: int) -> np.ndarray | None:
        """Order of the merged points when every new point comes after its vehicle's window.

        The usual case (reports in time order): each vehicle's window followed by its
        new points, found by a stable sort of the vehicle codes alone. None when a new
        point is not after its window or repeats a time (the caller sorts fully).
        """
        never = np.iinfo(np.int64).min
        last = np.array([v.win[0][-1] if len(v.win[0]) else never for v in vs], dtype=np.int64)
        nt, nc = t[n_old:], code[n_old:]
        o = np.lexsort((nt, nc))
        nt, nc = nt[o], nc[o]
        if len(nt) and not (nt > last[nc]).all():
            return None
        if len(nt) > 1 and not ((nc[1:] != nc[:-1]) | (nt[1:] > nt[:-1])).all():
            return None
        both = np.concatenate([code[:n_old], nc])
        order = np.argsort(both, kind="stable")
        # positions of the new points in the concatenated arrays (they were permuted by o)
        pos = np.concatenate([np.arange(n_old), n_old + o])
        return pos[order]

    def _compact(self, busy: set[str]) -> None:
        """Copy the windows of vehicles not in this push out of old merged arrays.

        A push leaves each window a view of that push's merged arrays; a vehicle
        that then falls silent would keep the whole merged array alive.
        """
        for key, v in self._vehicles.items():
            if key in busy:
                continue
            base = v.win[0].base
            if base is not None and base.size > 2 * len(v.win[0]):
                v.win = _part(v.win, 0, copy=True)

    # ---------------------------------------------------------------- results
    def _drop_seeded(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Results of a re-run that start before their vehicle's seed are already frozen."""
        if not len(frame):
            return frame
        keys = pd.unique(frame["vehicle_key"].to_numpy(dtype=object))
        never = np.iinfo(np.int64).min
        seeds = np.array([self._vehicles[k].seed if k in self._vehicles and
                          self._vehicles[k].seed is not None else never for k in keys], dtype=np.int64)
        if (seeds == never).all():
            return frame
        pos = pd.Index(keys, dtype=object).get_indexer(frame["vehicle_key"].to_numpy(dtype=object))
        start = pd.to_datetime(frame["start"], utc=True).astype("datetime64[ns, UTC]").astype("int64")
        before = start.to_numpy() < seeds[pos]
        return frame.loc[~before].reset_index(drop=True) if before.any() else frame

    def _recompute_per_day(self, affected: np.ndarray, old_load: pd.DataFrame, old_trips: pd.DataFrame,
                           rolled: set[str]) -> None:
        """``unregistered_vehicle`` from frozen + open trips and loadings of these vehicles.

        Only vehicles that are not registered can have one, and only a change of
        their loading visits or trips (or a roll-back) can change it.
        """
        if self._registered is None:
            return
        cand = [k for k in affected if k not in self._registered]
        if not cand:
            return
        cols_l, cols_t = ("vehicle_key", "start", "end"), ("vehicle_key", "status", "start", "end")
        before = (_signature(old_load, cand, cols_l), _signature(old_trips, cand, cols_t))
        after = (_signature(self._open["loadings"], cand, cols_l),
                 _signature(self._open["trips"], cand, cols_t))
        cand = [k for k in cand if k in rolled or any(b.get(k) != a.get(k) for b, a in
                                                      zip(before, after, strict=True))]
        if not cand:
            return
        rows = self._open["rows"]
        if len(rows):
            drop = (rows["kind"] == _PER_DAY_KIND).to_numpy() & _in(rows, cand)
            rows = rows.loc[~drop]
        parts = []
        for name in ("trips", "loadings"):
            both = _concat([self._frozen[name].loc[_in(self._frozen[name], cand)],
                            self._open[name].loc[_in(self._open[name], cand)]])
            parts.append(both)
        extra = unregistered_alerts(parts[0], parts[1], self.context.vehicles,
                                    timezone=self.context.timezone)
        self._open["rows"] = _concat([rows, extra]) if len(extra) else rows.reset_index(drop=True)

    def _diff_vehicles(self, keys: np.ndarray) -> LiveUpdate:
        """Alerts of these vehicles' open rows against the open alerts they had.

        ``keys``: the vehicles whose open alert rows changed in this push (a truck on
        an ordinary trip has none, and its re-run changes nothing).
        """
        if len(keys) == 0:
            return LiveUpdate(changed=empty_alerts())
        rows = self._open["rows"]
        fresh = _keyed_alerts(rows.loc[_in(rows, keys)], self.context.timezone)
        oa = self._open_alerts
        mine = _in(oa, keys, "_key")
        old = oa.loc[mine]
        self._open_alerts = _concat([oa.loc[~mine], fresh])
        return _diff(old, fresh, self._horizon)

    def _cross_vehicle(self, update: LiveUpdate, loads_of: np.ndarray, *, hot: bool) -> None:
        """Update ``dump_hotspot`` and ``manifest_not_executed`` as ``combine`` gives them."""
        tz, cfg = self.context.timezone, self.config
        if hot:
            dumps = _concat([self._frozen["dumps"], self._open["dumps"]])
            if len(dumps):
                dumps = dumps.sort_values(["vehicle_key", "start"], kind="stable", ignore_index=True)
            rows = hotspot_alerts(dumps, hotspot_radius_m=cfg.hotspot_radius_m,
                                  hotspot_min_vehicles=cfg.hotspot_min_vehicles, timezone=tz)
            fresh = _keyed_alerts(rows, tz)
            _merge(update, _diff(self._hot_alerts, fresh, self._horizon))
            self._hot_alerts = fresh
        # manifests: the vehicles whose loading visits changed, and those whose
        # window the data has just passed (or all, when the data's start moved)
        man = self.context.manifests
        if man is None or not len(man) or self._time_max is None:
            return
        start, end = self._data_span()
        keys: set[str] = set(map(str, loads_of)) & self._man_key_set
        if self._ne_span is None or start != self._ne_span[0]:
            keys = set(self._man_keys)
        else:
            passed = (self._man_vt > self._ne_span[1]) & (self._man_vt <= end)
            keys |= set(self._man_keys[passed])
        self._ne_span = (start, end)
        if not keys:
            return
        key_list = sorted(keys)
        loadings = _concat([self._frozen["loadings"], self._open["loadings"]])
        if loadings is not None and len(loadings):
            loadings = loadings.loc[_in(loadings, key_list)]
            loadings = loadings.sort_values(["vehicle_key", "start"], kind="stable", ignore_index=True)
        rows = not_executed_alerts(
            man.loc[_in(man, key_list)], loadings, self.context.sites,
            data_start=pd.Timestamp(start, unit="s", tz="UTC"),
            data_end=pd.Timestamp(end, unit="s", tz="UTC"),
            manifest_slack_s=cfg.manifest_slack_s, timezone=tz)
        fresh = _keyed_alerts(rows, tz)
        na = self._ne_alerts
        mine = _in(na, key_list, "_key")
        _merge(update, _diff(na.loc[mine], fresh, self._horizon))
        self._ne_alerts = _concat([na.loc[~mine], fresh])

    def _data_span(self) -> tuple[float, float]:
        """``data_start``, ``data_end`` (epoch s) as ``combine`` gets them from the held data."""
        tmin = self._time_min
        if self._horizon is not None and tmin is not None:
            tmin = max(tmin, self._horizon)
        return tmin.timestamp(), self._time_max.timestamp()

    # ---------------------------------------------------------------- settle
    def _settle(self, affected: np.ndarray, part: Any, last_t: pd.Series) -> None:
        """Freeze what can no longer change for each affected vehicle.

        Two times per vehicle: the *seed* (results starting before it are
        final and frozen) and the *cut* (points at or before it leave the
        window). The window keeps a little before the seed so that the
        detectors start from a known state (empty truck), as they do in the batch:

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
        Each settled state is remembered with the newest point it was taken at,
        so late points can roll the vehicle back to the last state taken before them.
        """
        trips, stops = part.trips, part.stops
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
            empty = ~_in(stops, open_keys) & _in(stops, self._depots, "site_id")
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
        prev = pd.Series({k: self._vehicles[k].seed for k in best.index
                          if self._vehicles[k].seed is not None}, dtype="int64")
        prev = pd.to_datetime(prev, unit="ns", utc=True).reindex(best.index)
        ok = (best["seed"] < newest) & (best["cut"] < newest) & (prev.isna() | (best["seed"] > prev))
        best = best.loc[ok.to_numpy()]
        if best.empty:
            return
        seed = best["seed"]
        frozen_rows = None
        for name in _RESULTS:
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
                frozen_rows = frozen
            else:
                frozen = frame.loc[before]
                self._open[name] = frame.loc[~before].reset_index(drop=True)
            self._frozen[name] = _concat([self._frozen[name], frozen])
        if frozen_rows is not None and len(frozen_rows):
            made = _keyed_alerts(frozen_rows, self.context.timezone)
            oa = self._open_alerts
            self._open_alerts = oa.loc[~oa["alert_id"].isin(made["alert_id"]).to_numpy()].reset_index(
                drop=True)
            self._frozen_alerts = _concat([self._frozen_alerts, made])
        seed_ns = seed.astype("datetime64[ns, UTC]").astype("int64")
        cut_ns = best["cut"].astype("datetime64[ns, UTC]").astype("int64")
        new_ns = newest.loc[best.index].astype("datetime64[ns, UTC]").astype("int64")
        for key in best.index:
            v = self._vehicles[key]
            c = int(cut_ns[key])
            if v.cut is not None:
                c = max(c, v.cut)
            v.settles.append((int(seed_ns[key]), c, int(new_ns[key])))
            v.settle_to(c)
            self._trim(v)

    def _trim(self, v: _Vehicle) -> None:
        """Forget settled points and states older than the back-fill reach."""
        if not v.settles:
            return
        limit = v.settles[-1][2] - int(self.backfill_s * 1e9)
        # the restore point: the latest state taken before the limit
        r = -1
        for j, s in enumerate(v.settles):
            if s[2] < limit:
                r = j
        if r < 0:
            return
        if self.backfill_s == 0:
            r = len(v.settles) - 1
        del v.settles[:r]
        lo = int(np.searchsorted(v.arch[0], v.settles[0][1], side="right"))
        if lo > 0:
            v.arch = _part(v.arch, lo, copy=True)
        v.complete = False

    def _retire(self) -> bool:
        """Drop frozen results older than ``retain_s`` (whole local days); True when it moved."""
        if self._time_max is None:
            return False
        tz = self.context.timezone
        horizon = (self._time_max - pd.Timedelta(seconds=self.retain_s)).tz_convert(tz).floor(
            "D", ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")
        if self._horizon is not None and horizon <= self._horizon:
            return False
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
        fa = self._frozen_alerts
        if len(fa):
            old = (pd.to_datetime(fa["end"], utc=True) < horizon).to_numpy()
            if old.any():
                self._frozen_alerts = fa.loc[~old].reset_index(drop=True)
        return True



def _text(col: pd.Series) -> np.ndarray:
    """A column as an object array of str (no copy through ``astype`` when it holds str already)."""
    arr = col.to_numpy(dtype=object)
    if len(arr) and all(type(v) is str for v in arr[:64]) and pd.api.types.infer_dtype(arr) == "string":
        return arr
    return col.astype(str).to_numpy(dtype=object)


# ------------------------------------------------------------------- workers
def _audit_window(win: pd.DataFrame, context: Any, config: AuditConfig) -> Partial:
    """Drop teleports (the batch rule) and audit some vehicles' windows."""
    kept, _ = drop_teleports(win, **config.teleport_rule)
    return audit_partition(win.loc[kept].reset_index(drop=True), context, config)


def _join_partials(parts: list[Partial]) -> Partial:
    """The results of disjoint vehicle sets as one (what the engine reads of a Partial)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    joined = {name: _concat([getattr(p, name) for p in parts])
              for name in ("rows", "stops", "trips", "dumps", "loadings")}
    return dataclasses.replace(first, **joined, n_points=sum(p.n_points for p in parts),
                               n_vehicles=sum(p.n_vehicles for p in parts))


_WORKER: dict[str, Any] = {}


def _worker_init(context: Any, config: AuditConfig) -> None:
    _WORKER["context"], _WORKER["config"] = context, config


def _compact_frame(win: pd.DataFrame) -> pd.DataFrame:
    """The per-point vehicle columns as categoricals (a few codes to send, not 100k strings)."""
    out = win.copy(deep=False)
    for c in ("vehicle_id", "vehicle_key"):
        out[c] = pd.Categorical(out[c].to_numpy(dtype=object))
    return out


def _worker_audit(win: pd.DataFrame) -> Partial:
    win = win.copy(deep=False)
    for c in ("vehicle_id", "vehicle_key"):  # back to the engine's object columns
        col = win[c].array
        if not isinstance(col, pd.Categorical):
            continue
        win[c] = pd.Series(np.asarray(col.categories, dtype=object)[col.codes], index=win.index, dtype=object)
    return _audit_window(win, _WORKER["context"], _WORKER["config"])
