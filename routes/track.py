"""The detectors' kernel: the partition every detector reads, and small shared helpers.

Every detector (``trips``, ``dumping``, ``corridor``, ``gaps``, ``reconcile``,
``hotspots``) imports from here and from :mod:`haulwatch.routes.alerts` (the
alert-row schema), never from another detector. This module imports nothing of
``routes`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from haulwatch.geo.stops import time_seconds
from haulwatch.geo.zones import nearest_site as zones_nearest_site

__all__ = [
    "PERMITTED_KINDS",
    "Track",
    "iso_seconds_z",
    "km",
    "local_day",
    "local_hhmm",
    "minutes",
    "nearest_permitted_site",
    "seconds",
    "track_piece",
    "utc",
    "vehicle_range",
]

#: Site kinds a truck can be "at" (nest / no_fly are for drones: a truck there is in the open).
PERMITTED_KINDS: tuple[str, ...] = ("origin", "disposal", "depot")


def seconds(times: pd.Series) -> np.ndarray:
    """Epoch seconds of a datetime Series."""
    return time_seconds(times)


@dataclass
class Track:
    """One partition's points with everything the detectors share (built by routes.audit)."""

    points: pd.DataFrame
    """Canonical points of the partition, sorted by vehicle and time, RangeIndex."""
    codes: np.ndarray
    """Vehicle code per point (non-decreasing)."""
    t: np.ndarray
    """Epoch seconds per point."""
    site_pos: np.ndarray
    """Site position per point (:func:`haulwatch.geo.zones.site_of_points`, -1: none)."""
    loaded: np.ndarray
    lift: np.ndarray
    has_load: np.ndarray
    has_lift: np.ndarray
    events: pd.DataFrame
    sites: pd.DataFrame
    """Projected sites (``site_id``, ``kind``, ``geometry``)."""
    timezone: str
    vehicle_ids: np.ndarray
    """Plate as the tracks write it, per vehicle code."""
    vehicle_keys: np.ndarray
    """Normalized plate per vehicle code."""


def local_hhmm(epoch_s: float, timezone: str) -> str:
    """``HH:MM`` of an epoch second in the local zone."""
    return pd.Timestamp(epoch_s, unit="s", tz="UTC").tz_convert(timezone).strftime("%H:%M")


def local_day(epoch_s: np.ndarray, timezone: str) -> np.ndarray:
    """Local calendar day (``YYYY-MM-DD`` strings) of epoch seconds."""
    idx = pd.to_datetime(np.asarray(epoch_s, dtype=float), unit="s", utc=True).tz_convert(timezone)
    return np.asarray(idx.strftime("%Y-%m-%d"), dtype=object)


def utc(epoch_s: float) -> pd.Timestamp:
    """UTC timestamp of an epoch second."""
    return pd.Timestamp(float(epoch_s), unit="s", tz="UTC")


def track_piece(track: Track, i_first: int, i_last: int, max_points: int) -> list[list]:
    """``[[lon, lat, iso_utc], ...]`` of points i_first..i_last, thinned to ``max_points``."""
    i_first = max(int(i_first), 0)
    i_last = min(int(i_last), len(track.points) - 1)
    if i_last < i_first:
        return []
    idx = np.arange(i_first, i_last + 1)
    if len(idx) > max_points:
        idx = idx[np.unique(np.linspace(0, len(idx) - 1, max_points).round().astype(int))]
    lon = track.points["lon"].to_numpy()[idx].tolist()
    lat = track.points["lat"].to_numpy()[idx].tolist()
    return [[round(a, 6), round(b, 6), c] for a, b, c in zip(lon, lat, iso_seconds_z(track.t[idx]), strict=True)]


def iso_seconds_z(epoch_s: np.ndarray) -> list[str]:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC, fraction dropped) of epoch seconds, without pandas."""
    whole = np.floor(np.asarray(epoch_s, dtype=np.float64)).astype(np.int64).astype("datetime64[s]")
    return [f"{v}Z" for v in np.datetime_as_string(whole, unit="s").tolist()]


def vehicle_range(codes: np.ndarray, code: int) -> tuple[int, int]:
    """First and last point position of a vehicle code (codes sorted)."""
    return int(np.searchsorted(codes, code, "left")), int(np.searchsorted(codes, code, "right")) - 1


def km(distance_m: float) -> str:
    """Human distance: ``850 m`` or ``1.3 km``."""
    if not np.isfinite(distance_m):
        return "an unknown distance"
    return f"{distance_m:.0f} m" if distance_m < 1000 else f"{distance_m / 1000:.1f} km"


def minutes(duration_s: float) -> str:
    """Human duration in minutes."""
    return f"{max(duration_s, 0) / 60:.0f} min"


def nearest_permitted_site(track: Track, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (m) to, and id of, the nearest origin / disposal / depot polygon."""
    idx, dist = zones_nearest_site(x, y, track.sites, kinds=PERMITTED_KINDS)
    ids = track.sites["site_id"].astype(str).to_numpy()
    names = np.where(idx >= 0, ids[np.clip(idx, 0, None)] if len(ids) else "", "")
    return dist, names.astype(object)
