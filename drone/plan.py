"""Plan an ArduPilot Copter mission from a dock to an alert, with a feasibility check.

:func:`plan_mission` turns a target (an alert row or a bare lat/lon) and a dock
(a ``nest`` site) into a :class:`~haulwatch.drone.mission.Mission`:

1. ``NAV_TAKEOFF`` to the transit altitude (ArduCopter needs it first to start
   AUTO from the ground), then ``DO_CHANGE_SPEED`` to the cruise speed;
2. ``NAV_WAYPOINT`` detour vertices around ``no_fly`` zones (a visibility graph
   over the zones offset by the clearance, shortest path by A*; none when the
   straight line is clear);
3. a ``NAV_WAYPOINT`` at the orbit entry (on the circle, approach side, orbit
   altitude), then ``DO_SET_ROI_LOCATION`` on the target and
   ``DO_SET_CAM_TRIGG_DIST`` (a photo every ``photo_spacing_m``), then
   ``NAV_LOITER_TURNS`` around the target;
4. ``DO_SET_CAM_TRIGG_DIST 0`` (stop photos) and ``DO_SET_ROI_NONE``, then an
   egress ``NAV_WAYPOINT`` on the orbit circle;
5. the detour back and ``NAV_RETURN_TO_LAUNCH`` (or ``NAV_LAND`` at the dock).

Where the DO items sit follows ArduPilot's ``AP_Mission``
(``advance_current_nav_cmd`` / ``advance_current_do_cmd``): the DO items
*between* two NAV items are started when the second NAV item starts — the first
one in the same update, the next ones one per update — and never run past the
next NAV item. So the ROI and the camera placed before the loiter run as the
orbit begins, and the stop placed before the egress waypoint runs as the orbit
ends. (Placed after the loiter, the camera would start only when the orbit is
over: the photos would be taken on the way home.)

The mission is refused (:class:`MissionRefused`, a ``ValueError`` with a
``reason`` code) when the target is beyond ``max_range_m``, when the estimated
flight does not fit the battery with its reserve, when the target or the dock
lies in a no-fly zone, when no path exists around the zones, or outside the
daylight window. Metric work is done in an azimuthal equidistant projection
centred on the dock (exact distances from the dock, sub-metre error elsewhere
within tens of km); reported distances are geodesic (WGS-84, ``pyproj.Geod``).

The planner is split along its seams: :mod:`~haulwatch.drone.planconfig`
(parameters, refusal codes), :mod:`~haulwatch.drone.docks` (docks and no-fly
zones from the sites), :mod:`~haulwatch.drone.daylight` (sun and time window),
:mod:`~haulwatch.drone.nofly` (paths around the zones); this module builds the
mission and chooses the dock, and re-exports the public names of the others.

Altitudes are relative to the dock (``MAV_FRAME_GLOBAL_RELATIVE_ALT``); with no
terrain model the planner treats them as height above ground, so every
altitude is capped at :data:`LEGAL_MAX_ALT_M` (120 m, the limit for light UAVs).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
from pymavlink import mavutil
from shapely.geometry.base import BaseGeometry

from haulwatch.drone.daylight import as_utc, check_flight_time, check_time_rules, sun_elevation_deg
from haulwatch.drone.docks import Dock, as_dock, docks_from_sites, no_fly_from_sites, no_fly_geoms
from haulwatch.drone.mission import Mission, MissionItem, deg_to_e7, e7_to_deg
from haulwatch.drone.nofly import inflate_zones, local_crs, project_geoms, shortest_path
from haulwatch.drone.planconfig import (
    LEGAL_MAX_ALT_M,
    REFUSAL_REASONS,
    TEMPORARY_REASONS,
    MissionRefused,
    PlanConfig,
    PlanConfigError,
    is_finite_number,
)

__all__ = [
    "LEGAL_MAX_ALT_M",
    "REFUSAL_REASONS",
    "TEMPORARY_REASONS",
    "Dock",
    "DockChoice",
    "MissionRefused",
    "PlanConfig",
    "PlanConfigError",
    "check_flight_time",
    "choose_dock",
    "docks_from_sites",
    "no_fly_from_sites",
    "plan_mission",
    "sun_elevation_deg",
]

_MAV = mavutil.mavlink
_GEOD = pyproj.Geod(ellps="WGS84")


@dataclass(frozen=True)
class DockChoice:
    """Result of :func:`choose_dock`: the mission and why this dock.

    Parameters
    ----------
    mission : Mission
        The planned mission from the chosen dock.
    dock : Dock
        The chosen dock.
    reason : str
        Why it was chosen (shortest estimated flight, distance).
    rejected : tuple of (site_id, reason_code, message)
        Docks that could not fly it, nearest first.
    """

    mission: Mission
    dock: Dock
    reason: str
    rejected: tuple[tuple[str, str, str], ...] = field(default=())


# --------------------------------------------------------------------------- inputs


def _target(target: Any) -> tuple[float, float, str]:
    """(lat, lon, alert_id) from an alert row / mapping / Point."""
    if isinstance(target, BaseGeometry):
        if target.is_empty:
            raise PlanConfigError("target geometry is empty")
        pt = target if target.geom_type == "Point" else target.representative_point()
        lat, lon, alert_id = pt.y, pt.x, ""
    elif isinstance(target, (Mapping, pd.Series)):
        getter = target.get
        lat, lon = getter("lat"), getter("lon")
        if (lat is None or lon is None) and getter("geometry") is not None:
            return (*_target(getter("geometry"))[:2], str(getter("alert_id") or ""))
        if lat is None or lon is None:
            raise PlanConfigError(
                f"target must have 'lat' and 'lon' (WGS-84 degrees), got keys {sorted(map(str, target.keys()))}"
            )
        alert_id = getter("alert_id")
        alert_id = (
            ""
            if alert_id is None or (isinstance(alert_id, float) and math.isnan(alert_id))
            else str(alert_id)
        )
    else:
        raise PlanConfigError(
            "target must be an alert row (mapping with lat, lon, alert_id) or a shapely Point, "
            f"got {type(target).__name__}"
        )
    if not is_finite_number(lat) or not -90 <= float(lat) <= 90:
        raise PlanConfigError(f"target lat must be in [-90, 90], got {lat!r}")
    if not is_finite_number(lon) or not -180 <= float(lon) <= 180:
        raise PlanConfigError(f"target lon must be in [-180, 180], got {lon!r}")
    return float(lat), float(lon), alert_id


def _snap_e7(deg: np.ndarray) -> np.ndarray:
    return np.array([e7_to_deg(deg_to_e7(v)) for v in deg], dtype=float)


def _geodesic_length(lon: np.ndarray, lat: np.ndarray) -> float:
    if len(lon) < 2:
        return 0.0
    return float(_GEOD.line_length(lon, lat))


# --------------------------------------------------------------------------- planning


def plan_mission(
    target: Any,
    dock: Any,
    *,
    no_fly: Any = None,
    config: PlanConfig | None = None,
    now: Any = None,
) -> Mission:
    """Plan a Copter mission from ``dock`` to orbit and photograph ``target``.

    Parameters
    ----------
    target : mapping, pandas Series or shapely Point
        An alerts-frame row (``lat``, ``lon``, ``alert_id``) or a bare
        ``{"lat": ..., "lon": ...}`` / ``Point(lon, lat)``, WGS-84.
    dock : Dock or nest site row
        Where the drone takes off and lands.
    no_fly : GeoDataFrame, GeoSeries or sequence of shapely geometries, optional
        No-fly zones (WGS-84). A sites frame is filtered to ``kind == "no_fly"``.
    config : PlanConfig, optional
        Planning parameters; defaults to ``PlanConfig()``.
    now : datetime, optional
        Planned take-off time (tz-aware; naive = ``config.timezone`` local).
        Without it the daylight/time-window check is skipped.

    Returns
    -------
    Mission
        Items after home; ``meta`` holds ``straight_distance_m``,
        ``distance_out_m``, ``distance_back_m``, ``distance_total_m``,
        ``duration_s``, ``battery_used_pct``, ``orbit_radius_m``,
        ``detour_vertices``, ``clearance_m``, ``path_lonlat`` and the checks done.

    Raises
    ------
    MissionRefused
        When the mission is not feasible (``reason`` says why).
    PlanConfigError
        When the inputs are malformed.
    """
    config = PlanConfig() if config is None else config
    if not isinstance(config, PlanConfig):
        raise PlanConfigError(f"config must be a PlanConfig, got {type(config).__name__}")
    lat_t, lon_t, alert_id = _target(target)
    dk = as_dock(dock)
    start_utc = None if now is None else as_utc(now, config.timezone)

    _, _, straight_m = _GEOD.inv(dk.lon_deg, dk.lat_deg, lon_t, lat_t)
    straight_m = float(straight_m)
    if straight_m > config.max_range_m:
        raise MissionRefused(
            "out_of_range",
            f"target is {straight_m:.0f} m from dock {dk.site_id}, beyond max_range_m "
            f"{config.max_range_m:.0f} m",
            details={"straight_distance_m": straight_m, "max_range_m": config.max_range_m},
        )

    fwd, inv = local_crs(dk)
    tx, ty = fwd.transform(lon_t, lat_t)
    target_m = (float(tx), float(ty))
    home_m = (0.0, 0.0)
    zones_ll = no_fly_geoms(no_fly)
    zones_m = project_geoms(zones_ll, fwd) if zones_ll else np.empty(0, dtype=object)

    radius = float(config.orbit_radius_m)
    if len(zones_m):
        t_pt, h_pt = shapely.points(target_m), shapely.points(home_m)
        if shapely.intersects(zones_m, t_pt).any():
            raise MissionRefused(
                "target_in_no_fly",
                f"target ({lat_t:.6f}, {lon_t:.6f}) lies inside a no-fly zone",
                details={"target_lat_deg": lat_t, "target_lon_deg": lon_t},
            )
        if shapely.intersects(zones_m, h_pt).any():
            raise MissionRefused(
                "dock_in_no_fly",
                f"dock {dk.site_id} lies inside a no-fly zone",
                details={"dock_site_id": dk.site_id},
            )
        d_target = float(shapely.distance(zones_m, t_pt).min())
        fit = d_target - config.no_fly_clearance_m
        if fit < radius:
            if fit < config.min_orbit_radius_m:
                raise MissionRefused(
                    "orbit_in_no_fly",
                    f"target is {d_target:.0f} m from a no-fly zone: with "
                    f"no_fly_clearance_m {config.no_fly_clearance_m:g} m no orbit of at least "
                    f"min_orbit_radius_m {config.min_orbit_radius_m:g} m fits",
                    details={"target_to_no_fly_m": d_target},
                )
            radius = float(math.floor(fit))

    # Orbit egress point: on the circle, facing the dock.
    bearing = math.atan2(home_m[1] - target_m[1], home_m[0] - target_m[0])
    if math.hypot(target_m[0], target_m[1]) < 1e-6:
        bearing = 0.0
    egress_m = (target_m[0] + radius * math.cos(bearing), target_m[1] + radius * math.sin(bearing))

    obstacles = inflate_zones(zones_m, [home_m, target_m, egress_m], config)
    path_out = shortest_path(home_m, target_m, obstacles)
    path_back = None if path_out is None else shortest_path(egress_m, home_m, obstacles)
    if path_out is None or path_back is None:
        raise MissionRefused(
            "no_path",
            f"no path from dock {dk.site_id} to the target keeps "
            f"{obstacles.clearance_m:.0f} m from the no-fly zones",
            details={"no_fly_zones": len(zones_ll)},
        )

    # Orbit entry point: on the circle, on the side the approach comes from
    # (the last leg runs towards the centre, so the leg up to the circle is
    # clear too). The camera starts with the loiter (AP_Mission), so the copter
    # must already be on the circle.
    prev = path_out[-2]
    bearing_in = math.atan2(prev[1] - target_m[1], prev[0] - target_m[0])
    if math.hypot(prev[0] - target_m[0], prev[1] - target_m[1]) < 1e-6:
        bearing_in = 0.0
    entry_m = (
        target_m[0] + radius * math.cos(bearing_in),
        target_m[1] + radius * math.sin(bearing_in),
    )
    path_out = [*path_out[:-1], entry_m]

    out_lon, out_lat = inv.transform(*np.asarray(path_out, dtype=float).T)
    back_lon, back_lat = inv.transform(*np.asarray(path_back, dtype=float).T)
    out_lon, out_lat = np.asarray(out_lon, float), np.asarray(out_lat, float)
    back_lon, back_lat = np.asarray(back_lon, float), np.asarray(back_lat, float)
    # Exact dock (no projection round-off).
    out_lon[0], out_lat[0] = dk.lon_deg, dk.lat_deg
    back_lon[-1], back_lat[-1] = dk.lon_deg, dk.lat_deg
    # Computed vertices snap to the 1e-7 degree grid MISSION_ITEM_INT carries.
    out_lon[1:], out_lat[1:] = _snap_e7(out_lon[1:]), _snap_e7(out_lat[1:])
    back_lon[:-1], back_lat[:-1] = _snap_e7(back_lon[:-1]), _snap_e7(back_lat[:-1])

    items = _mission_items(dk, lat_t, lon_t, out_lon, out_lat, back_lon, back_lat, radius, config)

    dist_out = _geodesic_length(out_lon, out_lat)
    dist_back = _geodesic_length(back_lon, back_lat)
    orbit_m = 2.0 * math.pi * radius * config.orbit_turns
    # ArduCopter's AC_Circle: at most the waypoint speed, sqrt(0.5 * accel * r) (half the
    # acceleration for the turn) and the circle rate -- 7.9 m/s on a 50 m orbit by default
    orbit_speed = min(
        config.cruise_speed_m_s,
        math.sqrt(0.5 * config.wp_accel_m_s2 * radius),
        radius * math.radians(config.orbit_rate_deg_s),
    )
    # detours and entry, loiter, egress and detours back, arrival
    n_wp = (len(path_out) - 1) + 1 + (len(path_back) - 1) + 1
    alt_change = abs(config.transit_alt_m - config.orbit_alt_m)
    duration = (
        config.transit_alt_m / config.climb_rate_m_s
        + dist_out / config.cruise_speed_m_s
        + alt_change / config.descent_rate_m_s
        + orbit_m / orbit_speed
        + alt_change / config.climb_rate_m_s
        + dist_back / config.cruise_speed_m_s
        + config.transit_alt_m / config.descent_rate_m_s
        + n_wp * config.waypoint_overhead_s
    )
    endurance = config.full_endurance_s
    used_pct = duration / endurance * 100.0
    details = {
        "duration_s": duration,
        "usable_endurance_s": config.usable_endurance_s,
        "battery_used_pct": used_pct,
        "reserve_pct": config.reserve_pct,
    }
    if config.battery_remaining_pct < 100.0:
        details["battery_remaining_pct"] = config.battery_remaining_pct
    if duration > config.usable_endurance_s:
        charge = (
            ""
            if config.battery_remaining_pct >= 100.0
            else f" and {config.battery_remaining_pct:.0f}% charge left"
        )
        raise MissionRefused(
            "battery",
            f"estimated flight {duration / 60:.1f} min uses {used_pct:.0f}% of the battery; "
            f"with a {config.reserve_pct:g}% reserve{charge} at most "
            f"{config.usable_endurance_s / 60:.1f} min may be flown",
            details=details,
        )

    checks = ["range", "battery", "no_fly"]
    meta: dict[str, Any] = {
        "straight_distance_m": round(straight_m, 1),
        "distance_out_m": round(dist_out, 1),
        "distance_back_m": round(dist_back, 1),
        "orbit_length_m": round(orbit_m, 1),
        "distance_total_m": round(dist_out + orbit_m + dist_back, 1),
        "duration_s": round(duration, 1),
        "battery_used_pct": round(used_pct, 1),
        "endurance_s": round(endurance, 1),
        "battery_remaining_pct": config.battery_remaining_pct,
        "reserve_pct": config.reserve_pct,
        "orbit_radius_m": radius,
        "orbit_turns": int(config.orbit_turns),
        "orbit_alt_m": config.orbit_alt_m,
        "transit_alt_m": config.transit_alt_m,
        "cruise_speed_m_s": config.cruise_speed_m_s,
        "orbit_speed_m_s": round(orbit_speed, 2),
        "hover_speed_m_s": config.hover_speed_m_s,
        "photo_spacing_m": config.photo_spacing_m,
        "detour_vertices": len(path_out) - 2,
        "clearance_m": round(obstacles.clearance_m, 1) if len(zones_m) else None,
        "no_fly_zones": len(zones_ll),
        "path_lonlat": [[float(a), float(b)] for a, b in zip(out_lon, out_lat, strict=True)],
        "return_lonlat": [[float(a), float(b)] for a, b in zip(back_lon, back_lat, strict=True)],
    }
    if start_utc is not None:
        meta.update(check_time_rules(dk, start_utc, duration, config))
        meta["planned_start"] = start_utc.isoformat().replace("+00:00", "Z")
        meta["planned_end"] = (
            (start_utc + dt.timedelta(seconds=duration)).isoformat().replace("+00:00", "Z")
        )
        checks.append("daylight")
    meta["checks"] = checks

    return Mission(
        home_lat_deg=dk.lat_deg,
        home_lon_deg=dk.lon_deg,
        home_alt_m=dk.alt_m,
        items=tuple(items),
        target_lat_deg=lat_t,
        target_lon_deg=lon_t,
        dock_site_id=dk.site_id,
        alert_id=alert_id,
        meta=meta,
    )


def _mission_items(
    dk: Dock,
    lat_t: float,
    lon_t: float,
    out_lon: np.ndarray,
    out_lat: np.ndarray,
    back_lon: np.ndarray,
    back_lat: np.ndarray,
    radius: float,
    config: PlanConfig,
) -> list[MissionItem]:
    rel = _MAV.MAV_FRAME_GLOBAL_RELATIVE_ALT
    cmd_frame = _MAV.MAV_FRAME_MISSION
    alt = config.transit_alt_m
    items = [
        MissionItem(
            _MAV.MAV_CMD_NAV_TAKEOFF, rel, lat_deg=dk.lat_deg, lon_deg=dk.lon_deg, alt_m=alt
        ),
        # param1 1 = ground speed, param2 m/s, param3 -1 = throttle unchanged
        MissionItem(_MAV.MAV_CMD_DO_CHANGE_SPEED, cmd_frame, 1.0, config.cruise_speed_m_s, -1.0),
    ]
    for lon, lat in zip(out_lon[1:-1], out_lat[1:-1], strict=True):
        items.append(
            MissionItem(_MAV.MAV_CMD_NAV_WAYPOINT, rel, lat_deg=lat, lon_deg=lon, alt_m=alt)
        )
    items += [
        # Orbit entry, on the circle at the orbit altitude.
        MissionItem(
            _MAV.MAV_CMD_NAV_WAYPOINT,
            rel,
            lat_deg=out_lat[-1],
            lon_deg=out_lon[-1],
            alt_m=config.orbit_alt_m,
        ),
        # AP_Mission starts the do commands between two nav commands when the second
        # one starts: these two run as the orbit begins (ROI with it, the camera one
        # update later). Face the ground under the target...
        MissionItem(_MAV.MAV_CMD_DO_SET_ROI_LOCATION, rel, lat_deg=lat_t, lon_deg=lon_t, alt_m=0.0),
        # ...and take one photo now, then one every photo_spacing_m.
        MissionItem(
            _MAV.MAV_CMD_DO_SET_CAM_TRIGG_DIST, cmd_frame, config.photo_spacing_m, 0.0, 1.0
        ),
        # param1 turns, param3 radius (> 0 clockwise); starts at the entry point.
        MissionItem(
            _MAV.MAV_CMD_NAV_LOITER_TURNS,
            rel,
            float(config.orbit_turns),
            0.0,
            radius,
            0.0,
            lat_deg=lat_t,
            lon_deg=lon_t,
            alt_m=config.orbit_alt_m,
        ),
        # Run when the egress waypoint starts, i.e. as soon as the orbit is complete.
        MissionItem(_MAV.MAV_CMD_DO_SET_CAM_TRIGG_DIST, cmd_frame, 0.0, 0.0, 0.0),
        MissionItem(_MAV.MAV_CMD_DO_SET_ROI_NONE, cmd_frame),
        MissionItem(
            _MAV.MAV_CMD_NAV_WAYPOINT, rel, lat_deg=back_lat[0], lon_deg=back_lon[0], alt_m=alt
        ),
    ]
    for lon, lat in zip(back_lon[1:-1], back_lat[1:-1], strict=True):
        items.append(
            MissionItem(_MAV.MAV_CMD_NAV_WAYPOINT, rel, lat_deg=lat, lon_deg=lon, alt_m=alt)
        )
    if config.end_with == "land":
        items.append(
            MissionItem(
                _MAV.MAV_CMD_NAV_LAND, rel, lat_deg=dk.lat_deg, lon_deg=dk.lon_deg, alt_m=0.0
            )
        )
    else:
        items.append(MissionItem(_MAV.MAV_CMD_NAV_RETURN_TO_LAUNCH, cmd_frame))
    return items


def choose_dock(
    target: Any,
    docks: Iterable[Dock],
    *,
    no_fly: Any = None,
    config: PlanConfig | None = None,
    now: Any = None,
    exclude: Iterable[str] = (),
) -> DockChoice:
    """Plan from every dock and keep the shortest feasible flight.

    Parameters
    ----------
    target : mapping, Series or Point
        As for :func:`plan_mission`.
    docks : iterable of Dock
        Candidate docks.
    no_fly, config, now
        As for :func:`plan_mission`.
    exclude : iterable of str, default ()
        Dock site ids not to use (e.g. no drone available there).

    Returns
    -------
    DockChoice
        The mission with the shortest estimated duration (ties: nearer, then
        smaller ``site_id``), why, and the docks refused with their reasons.

    Raises
    ------
    MissionRefused
        ``no_feasible_dock`` when no dock can fly it; ``details["per_dock"]``
        lists ``(site_id, reason, message)`` and ``details["temporary"]`` says
        whether some refusal may clear later.
    """
    config = PlanConfig() if config is None else config
    lat_t, lon_t, _ = _target(target)
    skip = set(exclude)
    candidates = [d for d in docks if d.site_id not in skip]
    if candidates:
        _, _, dists = _GEOD.inv(
            [d.lon_deg for d in candidates],
            [d.lat_deg for d in candidates],
            [lon_t] * len(candidates),
            [lat_t] * len(candidates),
        )
        dists = np.atleast_1d(np.asarray(dists, dtype=float))
    else:
        dists = np.empty(0)
    order = sorted(range(len(candidates)), key=lambda k: (dists[k], candidates[k].site_id))
    best: tuple[float, float, str, Mission, Dock] | None = None
    rejected: list[tuple[str, str, str]] = []
    for k in order:
        d = candidates[k]
        try:
            m = plan_mission(target, d, no_fly=no_fly, config=config, now=now)
        except MissionRefused as exc:
            rejected.append((d.site_id, exc.reason, exc.message))
            continue
        key = (m.meta["duration_s"], float(dists[k]), d.site_id, m, d)
        if best is None or key[:3] < best[:3]:
            best = key
    if best is None:
        msg = "; ".join(f"{s}: {r} ({m})" for s, r, m in rejected) or "no dock given"
        raise MissionRefused(
            "no_feasible_dock",
            f"no dock can fly to ({lat_t:.6f}, {lon_t:.6f}): {msg}",
            details={
                "per_dock": rejected,
                "temporary": any(r in TEMPORARY_REASONS for _, r, _ in rejected),
            },
        )
    duration, dist, site_id, mission, dock = best
    reason = (
        f"dock {site_id}: shortest feasible flight ({duration / 60:.1f} min, target "
        f"{dist:.0f} m away, battery {mission.meta['battery_used_pct']:.0f}%)"
    )
    return DockChoice(mission=mission, dock=dock, reason=reason, rejected=tuple(rejected))
