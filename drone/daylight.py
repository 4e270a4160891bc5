"""When a drone may fly: sun elevation and the local time window.

:func:`sun_elevation_deg` (a low-precision solar position, vectorized) and
:func:`check_flight_time`, which refuses a flight whose take-off or landing
falls outside the rules of a :class:`~haulwatch.drone.planconfig.PlanConfig`
(``min_sun_elevation_deg``, ``local_window``). A dock equipped for night
flight skips the sun rule (``Dock.night_capable``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from haulwatch.drone.docks import Dock
from haulwatch.drone.planconfig import MissionRefused, PlanConfig, PlanConfigError, is_finite_number

__all__ = ["as_utc", "check_flight_time", "check_time_rules", "sun_elevation_deg"]


def as_utc(
    when: Any, timezone: str, what: str = "now", *, error: type[Exception] = PlanConfigError
) -> dt.datetime:
    """``when`` (a datetime, pandas Timestamp or ISO 8601 text) as a tz-aware UTC datetime.

    The drone room's one conversion: the planner, the scheduler and the fleet use it.

    Parameters
    ----------
    when : datetime, pandas.Timestamp or str
        The time; naive = local time in ``timezone``.
    timezone : str
        IANA zone of naive times.
    what : str, default "now"
        Name of the value in the error message.
    error : type of Exception, default PlanConfigError
        Raised for a value that is not a time (the scheduler raises its
        ``SchedulerError``, the fleet its ``FleetError``).

    Returns
    -------
    datetime.datetime
    """
    if isinstance(when, pd.Timestamp):
        when = when.to_pydatetime()
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        except ValueError as exc:
            raise error(f"{what} must be an ISO 8601 time, got {when!r}") from exc
    if not isinstance(when, dt.datetime):
        raise error(f"{what} must be a datetime, got {type(when).__name__}")
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


def check_time_rules(
    dock: Dock, start: dt.datetime, duration_s: float, config: PlanConfig
) -> dict[str, Any]:
    end = start + dt.timedelta(seconds=duration_s)
    info: dict[str, Any] = {}
    if config.min_sun_elevation_deg is not None and not dock.night_capable:
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
        ``min_sun_elevation_deg`` (not for a ``night_capable`` dock),
        ``local_window`` and ``timezone`` apply.

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
    if not is_finite_number(duration_s) or duration_s < 0:
        raise PlanConfigError(f"duration_s must be a number >= 0, got {duration_s!r}")
    return check_time_rules(dock, as_utc(start, config.timezone), float(duration_s), config)
