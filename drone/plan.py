"""Plan an ArduPilot Copter mission from a dock to an alert, with a feasibility check.

:func:`plan_mission` turns a target (an alert row or a bare lat/lon) and a dock
(a ``nest`` site) into a :class:`~haulwatch.drone.mission.Mission`:

1. ``NAV_TAKEOFF`` to the transit altitude (ArduCopter needs it first to start
   AUTO from the ground), then ``DO_CHANGE_SPEED`` to the cruise speed;
2. ``NAV_WAYPOINT`` detour vertices around ``no_fly`` zones (a visibility graph
   over the zones offset by the clearance, shortest path by A*; none when the
   straight line is clear);
3. a ``NAV_WAYPOINT`` at the orbit entry (on the circle, approach side, orbit
   altitude) followed by ``DO_SET_ROI_LOCATION`` on the target (executed on
   the approach to the entry, so the camera/vehicle faces it);
   ``NAV_LOITER_TURNS`` around the target, then ``DO_SET_CAM_TRIGG_DIST``
   (photos every ``photo_spacing_m`` from the start of the orbit; supported by
   ArduPilot's AP_Mission camera commands);
4. an egress ``NAV_WAYPOINT`` on the orbit circle, which carries
   ``DO_SET_CAM_TRIGG_DIST 0`` (stop photos) and ``DO_SET_ROI_NONE``;
5. the detour back and ``NAV_RETURN_TO_LAUNCH`` (or ``NAV_LAND`` at the dock).

ArduPilot runs the DO items that follow a NAV item while that NAV item is
active, which is why the camera start follows the loiter and the stop follows
the egress waypoint.

The mission is refused (:class:`MissionRefused`, a ``ValueError`` with a
``reason`` code) when the target is beyond ``max_range_m``, when the estimated
flight does not fit the battery with its reserve, when the target or the dock
lies in a no-fly zone, when no path exists around the zones, or outside the
daylight window. Metric work is done in an azimuthal equidistant projection
centred on the dock (exact distances from the dock, sub-metre error elsewhere
within tens of km); reported distances are geodesic (WGS-84, ``pyproj.Geod``).

Altitudes are relative to the dock (``MAV_FRAME_GLOBAL_RELATIVE_ALT``); with no
terrain model the planner treats them as height above ground, so every
altitude is capped at :data:`LEGAL_MAX_ALT_M` (120 m, the limit for light UAVs).
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyproj
import shapely
from pymavlink import mavutil
from shapely.geometry.base import BaseGeometry

from haulwatch.drone.mission import Mission, MissionItem, deg_to_e7, e7_to_deg
from haulwatch.errors import UserError

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

#: Highest altitude any mission item may have (metres above the dock / ground).
LEGAL_MAX_ALT_M = 120.0

#: Refusal codes and what they mean.
REFUSAL_REASONS: dict[str, str] = {
    "out_of_range": "target farther from the dock than max_range_m",
    "battery": "estimated flight longer than the endurance minus the reserve",
    "target_in_no_fly": "target inside a no-fly zone",
    "dock_in_no_fly": "dock inside a no-fly zone",
    "orbit_in_no_fly": "no orbit of at least min_orbit_radius_m fits outside the no-fly zones",
    "no_path": "no path around the no-fly zones",
    "daylight": "flight outside the daylight / allowed local time window",
    "no_feasible_dock": "no dock can fly the mission",
}

#: Refusal codes that may clear by themselves later (retry rather than drop).
TEMPORARY_REASONS: frozenset[str] = frozenset({"daylight"})

_END_WITH = ("rtl", "land")


class PlanConfigError(UserError, ValueError):
    """A planning parameter is out of its allowed range."""


class MissionRefused(UserError, ValueError):  # noqa: N818 - the name the project uses
    """The mission is not feasible; ``reason`` is a code of :data:`REFUSAL_REASONS`.

    Parameters
    ----------
    reason : str
        Machine-readable code (``out_of_range``, ``battery``...).
    message : str
        Human-readable explanation with the numbers involved.
    details : dict, optional
        Figures behind the decision (distances, durations, per-dock reasons).
    """

    def __init__(self, reason: str, message: str, *, details: Mapping[str, Any] | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    @property
    def temporary(self) -> bool:
        """True when the refusal may clear later (e.g. night)."""
        return self.reason in TEMPORARY_REASONS

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable (worker processes, dask): rebuild with the keyword argument
        return (_rebuild_refusal, (self.reason, self.message, self.details))


def _rebuild_refusal(reason: str, message: str, details: dict[str, Any]) -> MissionRefused:
    return MissionRefused(reason, message, details=details)


@dataclass(frozen=True)
class PlanConfig:
    """Planning parameters (units in the names).

    Parameters
    ----------
    cruise_speed_m_s : float, default 12
        Horizontal speed on transit legs (``DO_CHANGE_SPEED``).
    hover_speed_m_s : float, default 5
        Speed QGroundControl shows for hover legs (export only).
    climb_rate_m_s, descent_rate_m_s : float, default 2.5, 1.5
        Vertical speeds used for the duration estimate (ArduCopter
        ``WPNAV_SPEED_UP`` / ``WPNAV_SPEED_DN`` defaults).
    transit_alt_m : float, default 70
        Altitude of takeoff, transit legs and egress, metres above the dock.
    orbit_alt_m : float, default 50
        Altitude of the orbit around the target.
    max_alt_m : float, default 120
        Ceiling for every item; may not exceed :data:`LEGAL_MAX_ALT_M`.
    orbit_radius_m : float, default 50
        Orbit radius; ArduPilot stores radii up to 255 m exactly.
    min_orbit_radius_m : float, default 20
        Smallest radius the planner may shrink the orbit to near a no-fly zone.
    orbit_turns : int, default 2
        Full turns around the target (1..255, stored in 8 bits by ArduPilot).
    orbit_rate_deg_s : float, default 20
        Angular rate of the orbit (ArduCopter ``CIRCLE_RATE`` default).
    photo_spacing_m : float, default 15
        Distance between photos along the orbit (``DO_SET_CAM_TRIGG_DIST``).
    endurance_s : float, default 1800
        Flight time on a full battery (ignored when ``battery_wh`` and
        ``cruise_power_w`` are both given).
    battery_wh, cruise_power_w : float, optional
        Battery energy and mean power draw; endurance = ``battery_wh / cruise_power_w``.
    reserve_pct : float, default 25
        Share of the endurance that must remain on landing.
    max_range_m : float, default 8000
        Largest straight distance dock → target.
    no_fly_clearance_m : float, default 30
        Distance kept from no-fly zones (reduced near the dock or the target
        when they are closer than that to a zone).
    waypoint_overhead_s : float, default 4
        Time lost accelerating/braking at each waypoint.
    end_with : {"rtl", "land"}, default "rtl"
        ``NAV_RETURN_TO_LAUNCH`` or ``NAV_LAND`` at the dock.
    min_sun_elevation_deg : float or None, default -6
        Refuse when the sun is lower at takeoff or landing (-6 = civil
        twilight); ``None`` disables the check.
    local_window : tuple of datetime.time, optional
        Allowed local flying window ``(start, end)``; may wrap midnight.
    timezone : str, default "Asia/Shanghai"
        Zone of naive times and of ``local_window``.
    max_graph_nodes : int, default 400
        Cap on visibility-graph vertices (zones are simplified beyond it).
    """

    cruise_speed_m_s: float = 12.0
    hover_speed_m_s: float = 5.0
    climb_rate_m_s: float = 2.5
    descent_rate_m_s: float = 1.5
    transit_alt_m: float = 70.0
    orbit_alt_m: float = 50.0
    max_alt_m: float = LEGAL_MAX_ALT_M
    orbit_radius_m: float = 50.0
    min_orbit_radius_m: float = 20.0
    orbit_turns: int = 2
    orbit_rate_deg_s: float = 20.0
    photo_spacing_m: float = 15.0
    endurance_s: float = 1800.0
    battery_wh: float | None = None
    cruise_power_w: float | None = None
    reserve_pct: float = 25.0
    max_range_m: float = 8000.0
    no_fly_clearance_m: float = 30.0
    waypoint_overhead_s: float = 4.0
    end_with: str = "rtl"
    min_sun_elevation_deg: float | None = -6.0
    local_window: tuple[dt.time, dt.time] | None = None
    timezone: str = "Asia/Shanghai"
    max_graph_nodes: int = 400

    def __post_init__(self) -> None:
        positive = (
            "cruise_speed_m_s",
            "hover_speed_m_s",
            "climb_rate_m_s",
            "descent_rate_m_s",
            "transit_alt_m",
            "orbit_alt_m",
            "max_alt_m",
            "orbit_radius_m",
            "min_orbit_radius_m",
            "orbit_rate_deg_s",
            "photo_spacing_m",
            "endurance_s",
            "max_range_m",
        )
        for name in positive:
            value = getattr(self, name)
            if not _finite_number(value) or value <= 0:
                raise PlanConfigError(f"PlanConfig.{name} must be a number > 0, got {value!r}")
        for name in ("no_fly_clearance_m", "waypoint_overhead_s"):
            value = getattr(self, name)
            if not _finite_number(value) or value < 0:
                raise PlanConfigError(f"PlanConfig.{name} must be a number >= 0, got {value!r}")
        for name in ("battery_wh", "cruise_power_w"):
            value = getattr(self, name)
            if value is not None and (not _finite_number(value) or value <= 0):
                raise PlanConfigError(
                    f"PlanConfig.{name} must be None or a number > 0, got {value!r}"
                )
        if self.max_alt_m > LEGAL_MAX_ALT_M:
            raise PlanConfigError(
                f"PlanConfig.max_alt_m must be <= {LEGAL_MAX_ALT_M:g} m, got {self.max_alt_m!r}"
            )
        for name in ("transit_alt_m", "orbit_alt_m"):
            value = getattr(self, name)
            if value > self.max_alt_m:
                raise PlanConfigError(
                    f"PlanConfig.{name} must be <= max_alt_m ({self.max_alt_m:g} m), got {value!r}"
                )
        if self.orbit_radius_m > 255:
            raise PlanConfigError(
                f"PlanConfig.orbit_radius_m must be <= 255 m (ArduPilot stores it in 8 bits), "
                f"got {self.orbit_radius_m!r}"
            )
        if self.min_orbit_radius_m > self.orbit_radius_m:
            raise PlanConfigError(
                f"PlanConfig.min_orbit_radius_m must be <= orbit_radius_m "
                f"({self.orbit_radius_m:g}), got {self.min_orbit_radius_m!r}"
            )
        turns = self.orbit_turns
        if (
            isinstance(turns, bool)
            or not isinstance(turns, (int, np.integer))
            or not 1 <= turns <= 255
        ):
            raise PlanConfigError(f"PlanConfig.orbit_turns must be an int in 1..255, got {turns!r}")
        if not _finite_number(self.reserve_pct) or not 0 <= self.reserve_pct < 100:
            raise PlanConfigError(
                f"PlanConfig.reserve_pct must be in [0, 100), got {self.reserve_pct!r}"
            )
        if self.end_with not in _END_WITH:
            raise PlanConfigError(
                f"PlanConfig.end_with must be one of {_END_WITH}, got {self.end_with!r}"
            )
        sun = self.min_sun_elevation_deg
        if sun is not None and (not _finite_number(sun) or not -90 <= sun <= 90):
            raise PlanConfigError(
                f"PlanConfig.min_sun_elevation_deg must be None or in [-90, 90], got {sun!r}"
            )
        window = self.local_window
        if window is not None and (
            not isinstance(window, tuple)
            or len(window) != 2
            or not all(isinstance(t, dt.time) for t in window)
            or window[0] == window[1]
        ):
            raise PlanConfigError(
                "PlanConfig.local_window must be None or a pair of distinct "
                f"datetime.time (start, end), got {window!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError, TypeError
            raise PlanConfigError(
                f"PlanConfig.timezone must be an IANA zone name, got {self.timezone!r}"
            ) from exc
        nodes = self.max_graph_nodes
        if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 8:
            raise PlanConfigError(f"PlanConfig.max_graph_nodes must be an int >= 8, got {nodes!r}")

    @property
    def usable_endurance_s(self) -> float:
        """Endurance minus the reserve, seconds."""
        return self.full_endurance_s * (1.0 - self.reserve_pct / 100.0)

    @property
    def full_endurance_s(self) -> float:
        """Flight time on a full battery, seconds."""
        if self.battery_wh is not None and self.cruise_power_w is not None:
            return self.battery_wh / self.cruise_power_w * 3600.0
        return float(self.endurance_s)


def _finite_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Dock:
    """A drone dock (a ``nest`` site): where missions start and end.

    Parameters
    ----------
    site_id : str
        The nest site's id.
    lat_deg, lon_deg : float
        Take-off point, WGS-84 degrees (the site polygon's centroid).
    alt_m : float, default 0
        Dock altitude above mean sea level (the mission's home altitude).
    drones : int, default 1
        Drones stationed at the dock.
    name : str, default ""
        Display name.
    """

    site_id: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    drones: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.site_id, str) or not self.site_id:
            raise PlanConfigError(f"Dock.site_id must be a non-empty str, got {self.site_id!r}")
        lat, lon = float(self.lat_deg), float(self.lon_deg)
        if not (math.isfinite(lat) and -90 <= lat <= 90):
            raise PlanConfigError(f"Dock.lat_deg must be in [-90, 90], got {self.lat_deg!r}")
        if not (math.isfinite(lon) and -180 <= lon <= 180):
            raise PlanConfigError(f"Dock.lon_deg must be in [-180, 180], got {self.lon_deg!r}")
        if not _finite_number(self.alt_m):
            raise PlanConfigError(f"Dock.alt_m must be a finite number, got {self.alt_m!r}")
        drones = self.drones
        if isinstance(drones, bool) or not isinstance(drones, (int, np.integer)) or drones < 0:
            raise PlanConfigError(f"Dock.drones must be an int >= 0, got {drones!r}")
        object.__setattr__(self, "lat_deg", lat)
        object.__setattr__(self, "lon_deg", lon)
        object.__setattr__(self, "alt_m", float(self.alt_m))
        object.__setattr__(self, "drones", int(drones))


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


# --------------------------------------------------------------------------- sites


def _site_frame(sites: Any) -> pd.DataFrame:
    if not isinstance(sites, pd.DataFrame) or "geometry" not in sites.columns:
        raise PlanConfigError(
            f"sites must be a GeoDataFrame with a geometry column, got {type(sites).__name__}"
        )
    if "kind" not in sites.columns:
        raise PlanConfigError("sites must have a 'kind' column (nest, no_fly, ...)")
    crs = getattr(sites, "crs", None)
    if crs is not None and not pyproj.CRS.from_user_input(crs).equals(pyproj.CRS.from_epsg(4326)):
        sites = sites.to_crs(4326)
    return sites


def docks_from_sites(sites: Any, *, default_drones: int = 1) -> list[Dock]:
    """Docks from the ``nest`` sites of a sites GeoDataFrame (WGS-84).

    Parameters
    ----------
    sites : GeoDataFrame
        Sites with ``site_id``, ``kind``, ``geometry`` (and optionally
        ``name``, ``alt_m`` or ``elevation_m`` AMSL, ``drones``).
    default_drones : int, default 1
        Drones per dock when the sites give no ``drones`` column/value.

    Returns
    -------
    list of Dock
        One per nest site, ordered by ``site_id``; the take-off point is the
        polygon centroid.
    """
    frame = _site_frame(sites)
    nests = frame[frame["kind"].astype(str) == "nest"]
    if nests.empty:
        return []
    geoms = np.asarray(nests.geometry.values, dtype=object)
    cent = shapely.centroid(geoms)
    lon, lat = shapely.get_x(cent), shapely.get_y(cent)
    alt_col = next((c for c in ("alt_m", "elevation_m") if c in nests.columns), None)
    docks = []
    for k, (_, row) in enumerate(nests.iterrows()):  # one row per dock, not per point
        alt = row[alt_col] if alt_col is not None else 0.0
        drones = row["drones"] if "drones" in nests.columns else default_drones
        name = row["name"] if "name" in nests.columns else ""
        docks.append(
            Dock(
                site_id=str(row["site_id"]),
                lat_deg=float(lat[k]),
                lon_deg=float(lon[k]),
                alt_m=float(alt) if _finite_number(alt) else 0.0,
                drones=int(drones) if _finite_number(drones) else default_drones,
                name=""
                if name is None or (isinstance(name, float) and math.isnan(name))
                else str(name),
            )
        )
    return sorted(docks, key=lambda d: d.site_id)


def no_fly_from_sites(sites: Any) -> list[BaseGeometry]:
    """No-fly polygons (WGS-84) from the ``no_fly`` sites of a sites GeoDataFrame."""
    frame = _site_frame(sites)
    zones = frame[frame["kind"].astype(str) == "no_fly"]
    return [g for g in zones.geometry.values if g is not None and not g.is_empty]


def _no_fly_geoms(no_fly: Any) -> list[BaseGeometry]:
    if no_fly is None:
        return []
    if isinstance(no_fly, pd.DataFrame):
        if "kind" in no_fly.columns:
            return no_fly_from_sites(no_fly)
        return _no_fly_geoms(_site_frame_geoseries(no_fly))
    if isinstance(no_fly, BaseGeometry):
        return [] if no_fly.is_empty else [no_fly]
    crs = getattr(no_fly, "crs", None)
    if crs is not None and not pyproj.CRS.from_user_input(crs).equals(pyproj.CRS.from_epsg(4326)):
        no_fly = no_fly.to_crs(4326)
    out = []
    for k, geom in enumerate(no_fly):
        if geom is None:
            continue
        if not isinstance(geom, BaseGeometry):
            raise PlanConfigError(
                f"no_fly[{k}] must be a shapely geometry, got {type(geom).__name__}"
            )
        if not geom.is_empty:
            out.append(geom)
    return out


def _site_frame_geoseries(frame: pd.DataFrame) -> Any:
    geo = frame.geometry
    crs = getattr(frame, "crs", None)
    if crs is not None and not pyproj.CRS.from_user_input(crs).equals(pyproj.CRS.from_epsg(4326)):
        geo = geo.to_crs(4326)
    return list(geo.values)


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
    if not _finite_number(lat) or not -90 <= float(lat) <= 90:
        raise PlanConfigError(f"target lat must be in [-90, 90], got {lat!r}")
    if not _finite_number(lon) or not -180 <= float(lon) <= 180:
        raise PlanConfigError(f"target lon must be in [-180, 180], got {lon!r}")
    return float(lat), float(lon), alert_id


def _dock(dock: Any) -> Dock:
    if isinstance(dock, Dock):
        return dock
    if isinstance(dock, (Mapping, pd.Series)):
        geom = dock.get("geometry")
        if geom is not None:
            c = shapely.centroid(geom)
            lat, lon = c.y, c.x
        else:
            lat, lon = dock.get("lat"), dock.get("lon")
        alt = dock.get("alt_m", dock.get("elevation_m", 0.0))
        return Dock(
            site_id=str(dock.get("site_id") or "dock"),
            lat_deg=lat,
            lon_deg=lon,
            alt_m=alt if _finite_number(alt) else 0.0,
        )
    raise PlanConfigError(
        f"dock must be a Dock or a nest site row (site_id, geometry), got {type(dock).__name__}"
    )


def _as_utc(when: Any, timezone: str) -> dt.datetime:
    """A tz-aware UTC datetime; naive input is local time in ``timezone``."""
    if isinstance(when, pd.Timestamp):
        when = when.to_pydatetime()
    if not isinstance(when, dt.datetime):
        raise PlanConfigError(f"now must be a datetime, got {type(when).__name__}")
    if when.tzinfo is None or when.tzinfo.utcoffset(when) is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    return when.astimezone(dt.timezone.utc)


# --------------------------------------------------------------------------- sun


def sun_elevation_deg(lat_deg: Any, lon_deg: Any, when: Any) -> Any:
    """Apparent-free (geometric) sun elevation above the horizon, degrees.

    Low-precision solar position of the Astronomical Almanac (about 0.01° in
    declination for 1950-2050); refraction is ignored (it lifts the sun by
    about 0.6° at the horizon).

    Parameters
    ----------
    lat_deg, lon_deg : float or array
        Observer position, WGS-84 degrees.
    when : datetime, Timestamp or array of them
        Tz-aware instant(s) (naive values are taken as UTC).

    Returns
    -------
    float or ndarray
        Elevation in degrees (negative below the horizon).
    """
    ts = pd.to_datetime(when, utc=True)
    delta = ts - pd.Timestamp("1970-01-01", tz="UTC")
    if isinstance(delta, pd.Timedelta):
        unix = delta.total_seconds()
    else:
        unix = np.asarray(delta.total_seconds(), dtype=np.float64)
    n = np.asarray(unix) / 86400.0 + 2440587.5 - 2451545.0
    mean_lon = np.mod(280.460 + 0.9856474 * n, 360.0)
    anomaly = np.radians(np.mod(357.528 + 0.9856003 * n, 360.0))
    ecl_lon = np.radians(mean_lon + 1.915 * np.sin(anomaly) + 0.020 * np.sin(2 * anomaly))
    obliquity = np.radians(23.439 - 0.0000004 * n)
    ra = np.arctan2(np.cos(obliquity) * np.sin(ecl_lon), np.cos(ecl_lon))
    dec = np.arcsin(np.sin(obliquity) * np.sin(ecl_lon))
    gmst_h = np.mod(18.697374558 + 24.06570982441908 * n, 24.0)
    hour_angle = np.radians(gmst_h * 15.0 + np.asarray(lon_deg, dtype=np.float64)) - ra
    lat = np.radians(np.asarray(lat_deg, dtype=np.float64))
    elev = np.degrees(
        np.arcsin(np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle))
    )
    return float(elev) if np.ndim(elev) == 0 else elev


def _check_time(
    dock: Dock, start: dt.datetime, duration_s: float, config: PlanConfig
) -> dict[str, Any]:
    end = start + dt.timedelta(seconds=duration_s)
    info: dict[str, Any] = {}
    if config.min_sun_elevation_deg is not None:
        elev = sun_elevation_deg(dock.lat_deg, dock.lon_deg, [start, end])
        info["sun_elevation_deg"] = [round(float(e), 2) for e in elev]
        low = float(np.min(elev))
        if low < config.min_sun_elevation_deg:
            which = "takeoff" if elev[0] < config.min_sun_elevation_deg else "landing"
            raise MissionRefused(
                "daylight",
                f"sun elevation {low:.1f}° at {which} "
                f"({(start if which == 'takeoff' else end).isoformat()}) is below the "
                f"minimum {config.min_sun_elevation_deg:g}°",
                details={
                    "sun_elevation_deg": info["sun_elevation_deg"],
                    "start": start.isoformat(),
                },
            )
    if config.local_window is not None:
        tz = ZoneInfo(config.timezone)
        w0, w1 = config.local_window
        t0, t1 = start.astimezone(tz), end.astimezone(tz)

        def inside(t: dt.datetime) -> bool:
            tt = t.time().replace(tzinfo=None)
            return (w0 <= tt <= w1) if w0 < w1 else (tt >= w0 or tt <= w1)

        if not (inside(t0) and inside(t1)) or (end - start) > dt.timedelta(days=1):
            raise MissionRefused(
                "daylight",
                f"flight {t0:%H:%M}-{t1:%H:%M} local ({config.timezone}) is outside the "
                f"allowed window {w0:%H:%M}-{w1:%H:%M}",
                details={"start": start.isoformat(), "end": end.isoformat()},
            )
    return info


def check_flight_time(
    dock: Dock, start: Any, duration_s: float, config: PlanConfig | None = None
) -> dict[str, Any]:
    """Check a flight of ``duration_s`` from ``start`` against the time rules.

    Parameters
    ----------
    dock : Dock
        Where the flight starts and ends (sun position).
    start : datetime
        Take-off time (tz-aware; naive = ``config.timezone`` local).
    duration_s : float
        Estimated flight duration.
    config : PlanConfig, optional
        ``min_sun_elevation_deg``, ``local_window`` and ``timezone`` apply.

    Returns
    -------
    dict
        ``sun_elevation_deg`` at take-off and landing (when checked).

    Raises
    ------
    MissionRefused
        ``daylight`` when take-off or landing falls outside the rules.
    """
    config = PlanConfig() if config is None else config
    if not _finite_number(duration_s) or duration_s < 0:
        raise PlanConfigError(f"duration_s must be a number >= 0, got {duration_s!r}")
    return _check_time(dock, _as_utc(start, config.timezone), float(duration_s), config)


# --------------------------------------------------------------------------- geometry


_LOCAL = threading.local()


def _local_crs(dock: Dock) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """Forward/inverse transformers of an azimuthal equidistant CRS centred on the dock.

    Building a transformer costs ~25 ms, so they are cached per thread (pyproj
    transformers must not be shared between threads) and per dock position.
    """
    cache = getattr(_LOCAL, "crs", None)
    if cache is None:
        cache = _LOCAL.crs = {}
    key = (dock.lat_deg, dock.lon_deg)
    pair = cache.get(key)
    if pair is None:
        crs = pyproj.CRS.from_proj4(
            f"+proj=aeqd +lat_0={dock.lat_deg!r} +lon_0={dock.lon_deg!r} "
            "+datum=WGS84 +units=m +no_defs"
        )
        fwd = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
        inv = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
        if len(cache) >= 256:
            cache.clear()
        pair = cache[key] = (fwd, inv)
    return pair


def _project(geoms: Sequence[BaseGeometry], fwd: pyproj.Transformer) -> np.ndarray:
    def func(coords: np.ndarray) -> np.ndarray:
        x, y = fwd.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), func)


def _convex_ring_vertices(ring_coords: np.ndarray, *, hole: bool) -> np.ndarray:
    """Vertices of a closed ring that bulge into free space (candidate path bends)."""
    pts = ring_coords[:-1]
    if len(pts) < 3:
        return pts
    prev = np.roll(pts, 1, axis=0)
    nxt = np.roll(pts, -1, axis=0)
    cross = (pts[:, 0] - prev[:, 0]) * (nxt[:, 1] - pts[:, 1]) - (pts[:, 1] - prev[:, 1]) * (
        nxt[:, 0] - pts[:, 0]
    )
    x, y = ring_coords[:, 0], ring_coords[:, 1]
    orient = np.sign(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
    # Exterior ring: the zone is inside, a path bends at its convex corners.
    # Hole ring: free space is inside, a path bends at its reflex corners.
    keep = cross * orient < 0 if hole else cross * orient > 0
    return pts[keep]


def _graph_nodes(blocked: BaseGeometry) -> np.ndarray:
    polys = shapely.get_parts(blocked)
    out = []
    for poly in polys:
        if poly.geom_type != "Polygon":
            continue
        out.append(_convex_ring_vertices(np.asarray(poly.exterior.coords)[:, :2], hole=False))
        for ring in poly.interiors:
            out.append(_convex_ring_vertices(np.asarray(ring.coords)[:, :2], hole=True))
    if not out:
        return np.empty((0, 2))
    return np.unique(np.round(np.concatenate(out), 6), axis=0)


@dataclass(frozen=True)
class _Obstacles:
    blocked: BaseGeometry | None  # edges must not touch this (metric)
    nodes: np.ndarray  # candidate bend points (metric)
    clearance_m: float  # smallest clearance actually applied


# Arcs of a quad_segs=2 buffer: chords dip to cos(22.5°) of the radius.
_ROUND_CHORD = math.cos(math.pi / 8)
# Path edges must keep out of this share of the node polygons' offset.
_BLOCK_SHARE = 0.98
_MITRE_LIMIT = 2.0


def _obstacles(
    zones_m: np.ndarray, points_m: Sequence[tuple[float, float]], config: PlanConfig
) -> _Obstacles:
    """Inflated no-fly zones (metric) and the candidate bend points around them.

    Each zone part is simplified (tolerance ``tol``) and offset outwards by
    ``(clearance + tol) / 0.98`` with mitre joins (one vertex per corner), so
    a path that stays out of the 0.98 offset keeps at least the clearance from
    the original zone. When a mitre corner would swallow the dock, the target
    or the egress point, that zone gets round joins and a clearance reduced to
    0.8 × its distance to those points instead. When there are more candidate
    vertices than ``max_graph_nodes``, the tolerance doubles (zones grow a
    little more conservative, never less).
    """
    if len(zones_m) == 0:
        return _Obstacles(None, np.empty((0, 2)), config.no_fly_clearance_m)
    pts = shapely.points(np.asarray(points_m, dtype=float))
    parts = shapely.get_parts(zones_m)
    parts = parts[~shapely.is_empty(parts)]
    dist = shapely.distance(parts[:, None], pts[None, :]).min(axis=1)
    # Clearance per zone: the configured one (at least 1 m, so paths may run
    # along an offset), or less when a mission point is closer than that.
    eff = np.minimum(max(config.no_fly_clearance_m, 1.0), 0.8 * dist)
    eff = np.maximum(eff, 1e-3)
    base_tol = 0.1 * max(config.no_fly_clearance_m, 1.0)
    scale = 1.0
    while True:
        tol = np.full(len(parts), base_tol * scale)
        grow = (eff + tol) / _BLOCK_SHARE
        simple = shapely.simplify(parts, tol, preserve_topology=True)
        node = shapely.buffer(simple, grow, join_style="mitre", mitre_limit=_MITRE_LIMIT)
        rounded = shapely.intersects(node[:, None], pts[None, :]).any(axis=1)
        block = shapely.buffer(
            simple, grow * _BLOCK_SHARE, join_style="mitre", mitre_limit=_MITRE_LIMIT
        )
        if rounded.any():
            tol_r = np.minimum(tol[rounded], 0.1 * eff[rounded])
            grow_r = (eff[rounded] + tol_r) / (_BLOCK_SHARE * _ROUND_CHORD)
            simple_r = shapely.simplify(parts[rounded], tol_r, preserve_topology=True)
            node[rounded] = shapely.buffer(simple_r, grow_r, quad_segs=2)
            block[rounded] = shapely.buffer(simple_r, grow_r * _BLOCK_SHARE, quad_segs=2)
        nodes = _graph_nodes(shapely.union_all(node))
        if len(nodes) <= config.max_graph_nodes or scale >= 1024:
            break
        scale *= 2.0
    blocked = shapely.union_all(block)
    shapely.prepare(blocked)
    if len(nodes):
        nodes = nodes[~shapely.intersects(shapely.points(nodes), blocked)]
    return _Obstacles(blocked, nodes, float(eff.min()))


def _shortest_path(
    start: tuple[float, float], goal: tuple[float, float], obstacles: _Obstacles
) -> list[tuple[float, float]] | None:
    """Shortest polyline start → goal that keeps out of ``obstacles.blocked``.

    A* over the visibility graph of the candidate bend points, with the
    straight-line distance to the goal as heuristic (admissible, so the path
    is the shortest in the graph). Visibility is tested lazily, from each
    settled node to all open nodes in one vectorized shapely call, so a clear
    or nearly clear sky costs a few calls instead of n² segment tests.
    Returns None when no path exists.
    """
    blocked = obstacles.blocked
    if blocked is None or not shapely.intersects(shapely.linestrings([start, goal]), blocked):
        return [start, goal]
    pts = np.vstack([np.asarray([start, goal], dtype=float), obstacles.nodes])
    n = len(pts)
    h = np.hypot(pts[:, 0] - pts[1, 0], pts[:, 1] - pts[1, 1])
    g = np.full(n, np.inf)
    g[0] = 0.0
    pred = np.full(n, -1)
    closed = np.zeros(n, dtype=bool)
    heap = [(h[0], 0)]
    while heap:
        _, u = heapq.heappop(heap)
        if closed[u]:
            continue
        closed[u] = True
        if u == 1:
            break
        cand = np.flatnonzero(~closed)
        if len(cand) == 0:
            break
        segs = shapely.linestrings(
            np.stack([np.broadcast_to(pts[u], (len(cand), 2)), pts[cand]], axis=1)
        )
        v = cand[~shapely.intersects(segs, blocked)]
        d = g[u] + np.hypot(pts[v, 0] - pts[u, 0], pts[v, 1] - pts[u, 1])
        better = d < g[v]
        v, d = v[better], d[better]
        g[v] = d
        pred[v] = u
        for node, f in zip(v.tolist(), (d + h[v]).tolist(), strict=True):
            heapq.heappush(heap, (f, node))
    if not closed[1]:
        return None
    path = [1]
    while path[-1] != 0:
        path.append(int(pred[path[-1]]))
    return [tuple(map(float, pts[k])) for k in reversed(path)]


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
    dk = _dock(dock)
    start_utc = None if now is None else _as_utc(now, config.timezone)

    _, _, straight_m = _GEOD.inv(dk.lon_deg, dk.lat_deg, lon_t, lat_t)
    straight_m = float(straight_m)
    if straight_m > config.max_range_m:
        raise MissionRefused(
            "out_of_range",
            f"target is {straight_m:.0f} m from dock {dk.site_id}, beyond max_range_m "
            f"{config.max_range_m:.0f} m",
            details={"straight_distance_m": straight_m, "max_range_m": config.max_range_m},
        )

    fwd, inv = _local_crs(dk)
    tx, ty = fwd.transform(lon_t, lat_t)
    target_m = (float(tx), float(ty))
    home_m = (0.0, 0.0)
    zones_ll = _no_fly_geoms(no_fly)
    zones_m = _project(zones_ll, fwd) if zones_ll else np.empty(0, dtype=object)

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

    obstacles = _obstacles(zones_m, [home_m, target_m, egress_m], config)
    path_out = _shortest_path(home_m, target_m, obstacles)
    path_back = None if path_out is None else _shortest_path(egress_m, home_m, obstacles)
    if path_out is None or path_back is None:
        raise MissionRefused(
            "no_path",
            f"no path from dock {dk.site_id} to the target keeps "
            f"{obstacles.clearance_m:.0f} m from the no-fly zones",
            details={"no_fly_zones": len(zones_ll)},
        )

    # Orbit entry point: on the circle, on the side the approach comes from
    # (the last leg runs towards the centre, so the leg up to the circle is
    # clear too). ArduPilot starts the DO items that follow NAV_LOITER_TURNS as
    # soon as the loiter starts, so the copter must already be on the circle.
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
    orbit_speed = min(config.cruise_speed_m_s, radius * math.radians(config.orbit_rate_deg_s))
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
    if duration > config.usable_endurance_s:
        raise MissionRefused(
            "battery",
            f"estimated flight {duration / 60:.1f} min uses {used_pct:.0f}% of the battery; "
            f"with a {config.reserve_pct:g}% reserve at most "
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
        "reserve_pct": config.reserve_pct,
        "orbit_radius_m": radius,
        "orbit_turns": int(config.orbit_turns),
        "orbit_alt_m": config.orbit_alt_m,
        "transit_alt_m": config.transit_alt_m,
        "cruise_speed_m_s": config.cruise_speed_m_s,
        "hover_speed_m_s": config.hover_speed_m_s,
        "photo_spacing_m": config.photo_spacing_m,
        "detour_vertices": len(path_out) - 2,
        "clearance_m": round(obstacles.clearance_m, 1) if len(zones_m) else None,
        "no_fly_zones": len(zones_ll),
        "path_lonlat": [[float(a), float(b)] for a, b in zip(out_lon, out_lat, strict=True)],
        "return_lonlat": [[float(a), float(b)] for a, b in zip(back_lon, back_lat, strict=True)],
    }
    if start_utc is not None:
        meta.update(_check_time(dk, start_utc, duration, config))
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
        # Runs during the approach to the entry: face the ground under the target.
        MissionItem(_MAV.MAV_CMD_DO_SET_ROI_LOCATION, rel, lat_deg=lat_t, lon_deg=lon_t, alt_m=0.0),
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
        # Runs while the orbit is active: one photo now, then one every photo_spacing_m.
        MissionItem(
            _MAV.MAV_CMD_DO_SET_CAM_TRIGG_DIST, cmd_frame, config.photo_spacing_m, 0.0, 1.0
        ),
        MissionItem(
            _MAV.MAV_CMD_NAV_WAYPOINT, rel, lat_deg=back_lat[0], lon_deg=back_lon[0], alt_m=alt
        ),
        MissionItem(_MAV.MAV_CMD_DO_SET_CAM_TRIGG_DIST, cmd_frame, 0.0, 0.0, 0.0),
        MissionItem(_MAV.MAV_CMD_DO_SET_ROI_NONE, cmd_frame),
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
