"""One call: dataset in, alerts out (docs/internals.md "Detectors").

The work partitions by vehicle so that a Dask engine and the live path reuse it:

* :func:`make_context` — the dataset-wide, read-only part (sites, routes,
  manifests, vehicles, CRS, timezone);
* :func:`audit_partition` — everything per vehicle for the points of some
  vehicles: stops, visits, trips and load state, ``illegal_dump``,
  ``unpermitted_origin``, ``route_deviation``, ``gps_gap``, ``unmanifested_trip``,
  ``wrong_disposal``, ``unregistered_vehicle`` (as alert rows), plus the dump places
  and loading visits the cross-vehicle kinds need;
* :func:`combine` — across vehicles: ``dump_hotspot``, ``manifest_not_executed``,
  alert ids (``routes.alerts.make_alerts``), sorting, the summary.

:func:`audit` runs them on a prepared :class:`~haulwatch.ingest.prepare.Dataset`,
:func:`audit_folder` reads and prepares a dataset folder first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from haulwatch.errors import UserError
from haulwatch.geo.stops import detect_stops, sort_order, stops_of_sorted
from haulwatch.geo.zones import inside_own_site, site_of_points
from haulwatch.routes.alerts import ALERT_ROW_COLUMNS, empty_rows, make_alerts
from haulwatch.routes.config import AuditConfig
from haulwatch.routes.corridor import deviation_alerts, trip_routes
from haulwatch.routes.dumping import (
    dump_alerts,
    dump_places,
    unpermitted_origin_alerts,
)
from haulwatch.routes.gaps import gap_alerts
from haulwatch.routes.hotspots import hotspot_alerts
from haulwatch.routes.reconcile import (
    cover_trips,
    manifest_alerts,
    not_executed_alerts,
    unregistered_alerts,
)
from haulwatch.routes.track import PERMITTED_KINDS, Track
from haulwatch.routes.trips import (
    build_events,
    frozen_fixes,
    loaded_state,
    merge_split_stops,
    run_trips,
    trim_moving_ends,
    trips_frame,
)
from haulwatch.timezone import DEFAULT_TIMEZONE

__all__ = [
    "AuditContext",
    "AuditInputError",
    "AuditResult",
    "Partial",
    "audit",
    "audit_folder",
    "audit_partition",
    "combine",
    "make_context",
]

Progress = Callable[[str], None] | None

_POINT_COLUMNS = ("vehicle_id", "vehicle_key", "time", "lon", "lat", "x", "y")
_LOADING_COLUMNS = ("vehicle_id", "vehicle_key", "start", "end", "lon", "lat", "origin_kind", "site_id")


class AuditInputError(UserError, ValueError):
    """The points or the dataset handed to the audit lack what it needs."""


@dataclass(frozen=True)
class AuditContext:
    """The dataset-wide, read-only inputs every partition shares (picklable)."""

    sites_m: pd.DataFrame
    """Sites in the metric CRS (``site_id, kind, permit_from, permit_to, geometry``)."""
    sites: pd.DataFrame
    """The same sites in WGS-84 (alert locations, the report map)."""
    routes_m: pd.DataFrame
    """Approved routes in the metric CRS."""
    manifests: pd.DataFrame
    vehicles: pd.DataFrame | None
    crs: pyproj.CRS | None
    timezone: str
    routes: pd.DataFrame | None = None
    """Routes in WGS-84 (for the report)."""


@dataclass
class Partial:
    """What :func:`audit_partition` found for some vehicles."""

    rows: pd.DataFrame
    """Alert rows (input of ``routes.alerts.make_alerts``) of the per-vehicle kinds."""
    stops: pd.DataFrame
    trips: pd.DataFrame
    dumps: pd.DataFrame
    """Chosen dump places (for hotspots)."""
    loadings: pd.DataFrame
    """Every loading visit (for manifest_not_executed)."""
    n_points: int
    time_min: pd.Timestamp | None
    time_max: pd.Timestamp | None
    timings: dict[str, float] = field(default_factory=dict)
    n_vehicles: int = 0
    """Vehicles with points in the partition."""


@dataclass
class AuditResult:
    """The audit's outcome."""

    alerts: pd.DataFrame
    """The alerts GeoDataFrame (``routes.alerts``)."""
    stops: pd.DataFrame
    trips: pd.DataFrame
    rejects: pd.DataFrame
    summary: dict[str, Any]
    sites: pd.DataFrame | None = None
    routes: pd.DataFrame | None = None
    manifests: pd.DataFrame | None = None
    """The manifests audited (the report's reconciliation reads their volumes)."""
    vehicles: pd.DataFrame | None = None
    """The vehicle registry (company, capacity_m3), when the dataset has one."""


# --------------------------------------------------------------------------- context


def make_context(dataset: Any, config: AuditConfig | None = None) -> AuditContext:
    """Build the shared context of a prepared dataset.

    Parameters
    ----------
    dataset : haulwatch.ingest.prepare.Dataset
        Needs ``sites``, ``sites_m``, ``routes_m``, ``manifests``, ``vehicles``,
        ``crs``, ``timezone`` (``routes`` optional).
    config : AuditConfig, optional
        Its ``timezone`` overrides the dataset's.

    Returns
    -------
    AuditContext
    """
    config = config or AuditConfig()
    missing = [n for n in ("sites_m", "routes_m", "manifests", "timezone") if not hasattr(dataset, n)]
    if missing:
        raise AuditInputError(
            f"dataset of type {type(dataset).__name__} lacks {missing}; "
            "expected a haulwatch.ingest.prepare.Dataset (use prepare(read_dataset(folder)))"
        )
    sites = getattr(dataset, "sites", None)
    if sites is None:
        sites = dataset.sites_m.to_crs("EPSG:4326")
    return AuditContext(
        sites_m=dataset.sites_m,
        sites=sites,
        routes_m=dataset.routes_m,
        manifests=dataset.manifests,
        vehicles=getattr(dataset, "vehicles", None),
        crs=getattr(dataset, "crs", None),
        timezone=config.timezone or dataset.timezone or DEFAULT_TIMEZONE,
        routes=getattr(dataset, "routes", None),
    )


def _permit_instant(value: Any, timezone: str, *, end: bool) -> float | None:
    """Epoch seconds of a permit bound; a naive date is a local day (``end``: its next midnight)."""
    ts = pd.to_datetime(value, errors="coerce")
    if pd.isna(ts):
        return None
    ts = pd.Timestamp(ts)
    if ts.tzinfo is None:
        is_date = ts == ts.normalize()
        ts = ts.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
        if pd.isna(ts):
            return None
        if end and is_date:
            ts = (ts.tz_localize(None) + pd.Timedelta(days=1)).tz_localize(
                timezone, ambiguous="NaT", nonexistent="shift_forward"
            )
    return ts.timestamp()


def _permit_checks(sites_m: pd.DataFrame, timezone: str) -> list:
    """Per site: None (always permitted) or f(epoch_s) -> True when outside its permit.

    The reader gives ``permit_from`` as the start of its local day and ``permit_to``
    as the end of its local day (the next local midnight, exclusive), both UTC;
    naive dates (hand-built frames) are read as local days the same way.
    """
    checks: list = []
    has_from = "permit_from" in sites_m.columns
    has_to = "permit_to" in sites_m.columns
    for k in range(len(sites_m)):
        lo = _permit_instant(sites_m["permit_from"].iat[k], timezone, end=False) if has_from else None
        hi = _permit_instant(sites_m["permit_to"].iat[k], timezone, end=True) if has_to else None
        if lo is None and hi is None:
            checks.append(None)
            continue

        def outside(epoch_s: float, lo=lo, hi=hi) -> bool:
            return (lo is not None and epoch_s < lo) or (hi is not None and epoch_s >= hi)

        checks.append(outside)
    return checks


# --------------------------------------------------------------------------- partition


def _empty_loadings() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series([], dtype=object) for c in _LOADING_COLUMNS})
    out["start"] = pd.Series([], dtype="datetime64[ns, UTC]")
    out["end"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return out


def _sorted_points(points: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Validate the points; return them sorted by vehicle, time (RangeIndex), codes, epoch s."""
    missing = [c for c in _POINT_COLUMNS if c not in points.columns]
    if missing:
        raise AuditInputError(
            f"points lack column(s) {missing}; required: {list(_POINT_COLUMNS)} "
            "(the canonical points frame of ingest.prepare)"
        )
    if not pd.api.types.is_datetime64_any_dtype(points["time"]):
        raise AuditInputError(
            f"column 'time' has dtype {points['time'].dtype}; allowed: datetime64 with a timezone (UTC)"
        )
    if getattr(points["time"].dtype, "tz", None) is None:
        raise AuditInputError(
            "column 'time' holds naive times; allowed: tz-aware UTC times (ingest.prepare makes them)"
        )
    order, codes, t = sort_order(points)
    if order is None:
        if isinstance(points.index, pd.RangeIndex) and points.index.start == 0 and points.index.step == 1:
            return points, codes, t
        return points.reset_index(drop=True), codes, t
    return points.iloc[order].reset_index(drop=True), codes, t


def audit_partition(points: pd.DataFrame, context: AuditContext, config: AuditConfig | None = None) -> Partial:
    """Audit the points of some vehicles (every vehicle's points must be all there).

    Parameters
    ----------
    points : pandas.DataFrame
        Canonical points (``vehicle_id, vehicle_key, time`` (UTC), ``lon, lat, x, y``,
        optional ``load``, ``lift``...) of whole vehicles. Need not be sorted; not changed.
    context : AuditContext
        From :func:`make_context`.
    config : AuditConfig, optional
        Thresholds (default ``AuditConfig()``).

    Returns
    -------
    Partial
    """
    config = config or AuditConfig()
    clock = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = timings.get(name, 0.0) + now - clock
        clock = now

    pts, codes, t = _sorted_points(points)
    n = len(pts)
    tz = context.timezone
    if n == 0:
        return Partial(
            rows=empty_rows(),
            stops=_stops_out(
                detect_stops(pts, diameter_m=config.stop_diameter_m, min_duration_s=config.stop_min_duration_s),
                context.sites_m, config,
            ),
            trips=trips_frame_empty(), dumps=dump_places_empty(), loadings=_empty_loadings(),
            n_points=0, n_vehicles=0, time_min=None, time_max=None, timings=timings,
        )
    n_codes = int(codes[-1]) + 1
    first_of = np.searchsorted(codes, np.arange(n_codes))
    vehicle_keys = pts["vehicle_key"].iloc[first_of].astype(str).to_numpy(dtype=object)
    vehicle_ids = pts["vehicle_id"].iloc[first_of].astype(str).to_numpy(dtype=object)
    x = pts["x"].to_numpy(dtype=np.float64)
    y = pts["y"].to_numpy(dtype=np.float64)
    sites_m = context.sites_m.reset_index(drop=True)
    site_pos = site_of_points(x, y, sites_m, buffer_m=config.site_buffer_m, kinds=PERMITTED_KINDS)
    # a frozen terminal's repeated fixes say nothing about where the truck was: no
    # site visit runs through them and they make no stop (routes.trips.frozen_fixes)
    speed = (pd.to_numeric(pts["speed_kmh"], errors="coerce").to_numpy(dtype=np.float64)
             if "speed_kmh" in pts.columns else None)
    stale = frozen_fixes(codes, t, x, y, max_speed_kmh=config.max_speed_kmh, noise_m=config.stop_diameter_m,
                         speed_kmh=speed)
    if stale.any():
        site_pos[stale] = -1
    site_kinds = sites_m["kind"].astype(str).to_numpy() if len(sites_m) else np.array([], dtype=object)
    lap("sites")
    # stops as short as a fast dump may be (dump_min_duration_s); pieces of one dwell
    # that noise split are merged; "stops" made of a frozen terminal's repeats are none
    stops = stops_of_sorted(
        pts, codes, t, order=None, diameter_m=config.stop_diameter_m,
        min_duration_s=min(config.stop_min_duration_s, config.dump_min_duration_s),
    )
    stops = merge_split_stops(
        stops, codes, t, x, y, pts["lon"].to_numpy(dtype=np.float64), pts["lat"].to_numpy(dtype=np.float64),
        diameter_m=config.stop_diameter_m,
    )
    # a frozen terminal's repeats are no stand-still either: trimmed off like moving fixes
    stops = trim_moving_ends(
        stops, t, x, y,
        np.where(stale, np.inf, speed) if speed is not None else (np.where(stale, np.inf, 0.0) if stale.any() else None),
        pts["lon"].to_numpy(dtype=np.float64), pts["lat"].to_numpy(dtype=np.float64),
        min_duration_s=min(config.stop_min_duration_s, config.dump_min_duration_s),
        codes=codes, diameter_m=config.stop_diameter_m,
    )
    if stale.any() and len(stops):
        cum = np.r_[0, np.cumsum(stale)]
        sf = stops["i_first"].to_numpy(dtype=np.int64)
        sl = stops["i_last"].to_numpy(dtype=np.int64)
        stops = stops[(cum[sl + 1] - cum[sf]) * 2 < (sl - sf + 1)].reset_index(drop=True)
    lap("stops")
    loaded, has_load, lift = loaded_state(
        pts, codes, t, n_vehicles=n_codes, sensor_min_duration_s=config.sensor_min_duration_s,
        change_min_duration_s=config.load_min_duration_s,
    )
    has_lift = np.zeros(n_codes, dtype=bool)
    if lift.any():
        has_lift[np.unique(codes[lift])] = True
    events = build_events(
        pts, codes, t, site_pos, site_kinds, loaded, lift, stops,
        stop_min_duration_s=config.stop_min_duration_s,
        load_min_duration_s=config.load_min_duration_s,
        unload_min_duration_s=config.unload_min_duration_s,
        visit_merge_s=config.visit_merge_s,
        gap_max_s=config.gap_max_s,
        in_core=inside_own_site(x, y, site_pos, sites_m),
        lift_known=(pd.to_numeric(pts["lift"], errors="coerce").notna().to_numpy()
                    if "lift" in pts.columns else None),
        stale=stale,
    )
    result = run_trips(
        events, site_kinds, _permit_checks(sites_m, tz), has_load, has_lift,
        load_min_duration_s=config.load_min_duration_s,
        dump_min_duration_s=config.dump_min_duration_s,
        stop_min_duration_s=config.stop_min_duration_s,
    )
    track = Track(
        points=pts, codes=codes, t=t, site_pos=site_pos, loaded=loaded, lift=lift,
        has_load=has_load, has_lift=has_lift, events=events, sites=sites_m, timezone=tz,
        vehicle_ids=vehicle_ids, vehicle_keys=vehicle_keys,
    )
    trips = trips_frame(track, result)
    trips = _add_trip_places(track, trips)
    lap("trips")

    manifests = context.manifests
    if manifests is not None and len(manifests):
        keys = set(vehicle_keys)
        manifests = manifests[manifests["vehicle_key"].astype(str).isin(keys)]
    covers = cover_trips(trips, manifests, manifest_slack_s=config.manifest_slack_s)
    places = dump_places(track, trips, result.dumps)
    rows = [
        dump_alerts(track, trips, places, covers, evidence_max_points=config.evidence_max_points),
        unpermitted_origin_alerts(track, trips, result.loadings, evidence_max_points=config.evidence_max_points,
                                  covers=covers),
    ]
    lap("dumping")
    rows.append(
        gap_alerts(track, trips, gap_max_s=config.gap_max_s, evidence_max_points=config.evidence_max_points,
                   covers=covers)
    )
    lap("gaps")
    rows.append(manifest_alerts(trips, covers, timezone=tz))
    loadings = _loadings_frame(track, result.loadings)
    rows.append(unregistered_alerts(trips, loadings, context.vehicles, timezone=tz))
    lap("reconcile")
    routes_m = context.routes_m
    judged = trip_routes(trips, routes_m, covers)
    rows.append(
        deviation_alerts(
            track, trips, routes_m, judged, covers,
            corridor_default_m=config.corridor_default_m,
            deviation_min_points=config.deviation_min_points,
            deviation_min_duration_s=config.deviation_min_duration_s,
            deviation_min_excess_m=config.deviation_min_excess_m,
            stale=stale,
            evidence_max_points=config.evidence_max_points,
        )
    )
    lap("corridor")
    rows = [r for r in rows if len(r)]
    all_rows = pd.concat(rows, ignore_index=True) if rows else empty_rows()

    stops_out = _stops_out(stops[stops["duration_s"] >= config.stop_min_duration_s], sites_m, config)
    trips_out = trips.drop(columns=["i_first", "i_last", "ev_load", "ev_close", "ev_dump", "load_x", "load_y"])
    dumps_out = places.drop(columns=["ev", "trip_pos"])
    return Partial(
        rows=all_rows, stops=stops_out, trips=trips_out, dumps=dumps_out, loadings=loadings,
        n_points=n, n_vehicles=n_codes, time_min=pts["time"].min(), time_max=pts["time"].max(), timings=timings,
    )


def _stops_out(stops: pd.DataFrame, sites_m: pd.DataFrame, config: AuditConfig) -> pd.DataFrame:
    """The stops frame as the audit returns it: with ``site_id``, without point positions."""
    out = stops.copy()
    if len(out):
        pos = site_of_points(out["x"].to_numpy(), out["y"].to_numpy(), sites_m, buffer_m=config.site_buffer_m,
                             kinds=PERMITTED_KINDS)
        ids = sites_m["site_id"].astype(str).to_numpy()
        out["site_id"] = np.where(pos >= 0, ids[np.clip(pos, 0, None)] if len(ids) else "", "")
    else:
        out["site_id"] = pd.Series([], dtype=object)
    return out.drop(columns=["i_first", "i_last"])


def trips_frame_empty() -> pd.DataFrame:
    """An empty trips frame with the output columns."""
    from haulwatch.routes.trips import TRIP_COLUMNS

    out = pd.DataFrame({c: pd.Series([], dtype=object) for c in TRIP_COLUMNS})
    for c in ("start", "load_end", "unload_start", "end"):
        out[c] = pd.Series([], dtype="datetime64[ns, UTC]")
    for c in ("load_lon", "load_lat", "unload_lon", "unload_lat"):
        out[c] = pd.Series([], dtype=np.float64)
    return out.drop(columns=["i_first", "i_last", "load_x", "load_y"])


def dump_places_empty() -> pd.DataFrame:
    """An empty dump-places frame."""
    cols = ["vehicle_id", "vehicle_key", "trip_id", "start", "end", "x", "y", "lon", "lat", "reason", "after"]
    out = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
    out["start"] = pd.Series([], dtype="datetime64[ns, UTC]")
    out["end"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return out


def _event_mean(track: Track, ev_pos: np.ndarray, column: str) -> np.ndarray:
    """Mean of a point column over each event's points (a gap: its first point)."""
    ev = track.events
    if len(ev_pos) == 0:
        return np.empty(0)
    values = track.points[column].to_numpy(dtype=np.float64)
    c = np.r_[0.0, np.cumsum(values)]
    a = ev["i_first"].to_numpy()[ev_pos]
    b = ev["i_last"].to_numpy()[ev_pos]
    b = np.where(ev["kind"].to_numpy()[ev_pos] == "gap", a, b)
    return (c[b + 1] - c[a]) / (b - a + 1)


def _add_trip_places(track: Track, trips: pd.DataFrame) -> pd.DataFrame:
    trips = trips.copy()
    load = trips["ev_load"].to_numpy(dtype=np.int64)
    close = trips["ev_close"].to_numpy(dtype=np.int64)
    delivered = (trips["status"] == "delivered").to_numpy()
    trips["load_lon"] = _event_mean(track, load, "lon")
    trips["load_lat"] = _event_mean(track, load, "lat")
    ulon = _event_mean(track, np.clip(close, 0, None), "lon")
    ulat = _event_mean(track, np.clip(close, 0, None), "lat")
    trips["unload_lon"] = np.where(delivered, ulon, np.nan) if len(trips) else ulon
    trips["unload_lat"] = np.where(delivered, ulat, np.nan) if len(trips) else ulat
    return trips


def _loadings_frame(track: Track, loadings: pd.DataFrame) -> pd.DataFrame:
    if loadings.empty:
        return _empty_loadings()
    ev = track.events
    e = loadings["ev"].to_numpy(dtype=np.int64)
    first = ev["i_first"].to_numpy()[e]
    site_ids = track.sites["site_id"].astype(str).to_numpy()
    sp = ev["site_pos"].to_numpy()[e]
    return pd.DataFrame(
        {
            "vehicle_id": track.vehicle_ids[track.codes[first]],
            "vehicle_key": track.vehicle_keys[track.codes[first]],
            "start": pd.to_datetime(ev["start_s"].to_numpy()[e], unit="s", utc=True),
            "end": pd.to_datetime(ev["end_s"].to_numpy()[e], unit="s", utc=True),
            "lon": _event_mean(track, e, "lon"),
            "lat": _event_mean(track, e, "lat"),
            "origin_kind": loadings["origin_kind"].to_numpy(),
            "site_id": np.where(sp >= 0, site_ids[np.clip(sp, 0, None)] if len(site_ids) else "", ""),
        }
    )


# --------------------------------------------------------------------------- combine


def _concat(frames: list[pd.DataFrame], empty: pd.DataFrame) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return empty
    return pd.concat(frames, ignore_index=True)


def combine(
    partials: Iterable[Partial],
    context: AuditContext,
    config: AuditConfig | None = None,
    *,
    rejects: pd.DataFrame | None = None,
    stats: dict[str, Any] | None = None,
) -> AuditResult:
    """Merge partition results and add the cross-vehicle kinds.

    Parameters
    ----------
    partials : iterable of Partial
        From :func:`audit_partition` over disjoint sets of vehicles.
    context : AuditContext
        From :func:`make_context`.
    config : AuditConfig, optional
        Thresholds.
    rejects : pandas.DataFrame, optional
        Rows the reader / cleaner refused (passed through, counted in the summary).
    stats : dict, optional
        Reader statistics (``rows_read``, ``duplicates_dropped``...) for the summary.

    Returns
    -------
    AuditResult
        Alerts sorted by ``start``, ``kind``, ``vehicle_id`` with stable ids.
    """
    config = config or AuditConfig()
    clock = time.perf_counter()
    partials = list(partials)
    tz = context.timezone
    dumps = _concat([p.dumps for p in partials], dump_places_empty())
    loadings = _concat([p.loadings for p in partials], _empty_loadings())
    if len(dumps):
        dumps = dumps.sort_values(["vehicle_key", "start"], kind="stable", ignore_index=True)
    if len(loadings):
        loadings = loadings.sort_values(["vehicle_key", "start"], kind="stable", ignore_index=True)
    mins = [p.time_min for p in partials if p.time_min is not None]
    maxs = [p.time_max for p in partials if p.time_max is not None]
    data_start = min(mins) if mins else None
    data_end = max(maxs) if maxs else None
    rows = [p.rows for p in partials]
    rows.append(
        hotspot_alerts(
            dumps, hotspot_radius_m=config.hotspot_radius_m,
            hotspot_min_vehicles=config.hotspot_min_vehicles, timezone=tz,
        )
    )
    rows.append(
        not_executed_alerts(
            context.manifests, loadings, context.sites, data_start=data_start, data_end=data_end,
            manifest_slack_s=config.manifest_slack_s, timezone=tz,
        )
    )
    all_rows = _concat(rows, empty_rows())
    all_rows = all_rows[list(ALERT_ROW_COLUMNS)]
    alerts = make_alerts(all_rows, timezone=tz)
    stops = _concat([p.stops for p in partials], partials[0].stops if partials else pd.DataFrame())
    trips = _concat([p.trips for p in partials], trips_frame_empty())
    if len(stops):
        stops = stops.sort_values(["vehicle_key", "start"], kind="stable", ignore_index=True)
    if len(trips):
        trips = trips.sort_values(["vehicle_key", "start"], kind="stable", ignore_index=True)
    if rejects is None:
        rejects = pd.DataFrame(columns=["file", "row", "field", "value", "reason"])
    timings: dict[str, float] = {}
    for p in partials:
        for k, v in p.timings.items():
            timings[k] = timings.get(k, 0.0) + v
    timings["combine"] = time.perf_counter() - clock
    stats = dict(stats or {})
    by_reason = rejects["reason"].value_counts().to_dict() if "reason" in rejects.columns else {}
    by_kind = alerts["kind"].value_counts().to_dict() if len(alerts) else {}
    n_points = sum(p.n_points for p in partials)
    rows_read = stats.get("rows_read", n_points)
    if isinstance(rows_read, dict):
        track_file = stats.get("tracks_file", "tracks.csv")
        rows_read = rows_read.get(track_file, rows_read.get("tracks.parquet", n_points))
    summary = {
        "points_read": int(rows_read),
        "points_kept": n_points,
        "rows_rejected": len(rejects),
        "rejects_by_reason": {str(k): int(v) for k, v in by_reason.items()},
        "duplicates_dropped": int(stats.get("duplicates_dropped", 0) or 0),
        "vehicles": int(sum(p.n_vehicles for p in partials)),
        "stops": len(stops),
        "trips": len(trips),
        "trips_by_status": {str(k): int(v) for k, v in trips["status"].value_counts().items()}
        if len(trips) else {},
        "alerts_total": len(alerts),
        "alerts_by_kind": {str(k): int(v) for k, v in by_kind.items()},
        "data_start": data_start.isoformat() if data_start is not None else None,
        "data_end": data_end.isoformat() if data_end is not None else None,
        "timezone": tz,
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "config": config.to_dict(),
    }
    return AuditResult(
        alerts=alerts, stops=stops, trips=trips, rejects=rejects, summary=summary,
        sites=context.sites, routes=context.routes,
        manifests=context.manifests, vehicles=context.vehicles,
    )


# --------------------------------------------------------------------------- entry points


def audit(dataset: Any, config: AuditConfig | None = None, *, progress: Progress = None) -> AuditResult:
    """Audit a prepared dataset.

    Parameters
    ----------
    dataset : haulwatch.ingest.prepare.Dataset
        From ``prepare(read_dataset(folder))``.
    config : AuditConfig, optional
        Thresholds (default ``AuditConfig()``).
    progress : callable, optional
        Receives short stage messages.

    Returns
    -------
    AuditResult
    """
    config = config or AuditConfig()
    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    context = make_context(dataset, config)
    points = dataset.points
    say(f"audit: {len(points):,} points of {points['vehicle_key'].nunique():,} vehicles")
    partial = audit_partition(points, context, config)
    say(f"audit: {len(partial.trips):,} trips, {len(partial.rows):,} per-vehicle alerts")
    result = combine([partial], context, config, rejects=dataset.rejects, stats=dataset.stats)
    result.summary["timings_s"]["audit_total"] = round(time.perf_counter() - t0, 3)
    say(f"audit: {len(result.alerts):,} alerts in {time.perf_counter() - t0:.1f} s")
    return result


def audit_folder(folder: str | Path, config: AuditConfig | None = None, *, progress: Progress = None) -> AuditResult:
    """Read, prepare and audit a dataset folder (docs/formats.md).

    Parameters
    ----------
    folder : str or Path
        The dataset folder.
    config : AuditConfig, optional
        Thresholds (default ``AuditConfig()``); its teleport rule (:attr:`AuditConfig.teleport_rule`) drives cleaning.
    progress : callable, optional
        Receives short stage messages.

    Returns
    -------
    AuditResult
    """
    from haulwatch.ingest.prepare import prepare
    from haulwatch.ingest.dataset import read_dataset

    config = config or AuditConfig()
    t0 = time.perf_counter()
    raw = read_dataset(Path(folder), progress=progress)
    t1 = time.perf_counter()
    dataset = prepare(raw, **config.teleport_rule, progress=progress)
    # The raw tracks are no longer needed: let them go before the detectors run.
    del raw
    t2 = time.perf_counter()
    result = audit(dataset, config, progress=progress)
    result.summary["timings_s"]["read"] = round(t1 - t0, 3)
    result.summary["timings_s"]["prepare"] = round(t2 - t1, 3)
    return result
