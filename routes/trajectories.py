"""Haul trips as movingpandas trajectories, for analysts working in Python.

movingpandas is the analysts' trajectory model (length, speed, direction,
splitting, generalisation, plotting). :func:`trips_to_trajectories` turns the
audit's trips and the points they were found in into a
``movingpandas.TrajectoryCollection``: one trajectory per trip, identified by
``trip_id``, its object the vehicle. The audit itself never uses movingpandas
(its hot paths are arrays); this is a face for people, so it is imported only
when called.

Example
-------
>>> from haulwatch.ingest.dataset import read_dataset            # doctest: +SKIP
>>> from haulwatch.ingest.prepare import prepare                 # doctest: +SKIP
>>> from haulwatch.routes.audit import audit                     # doctest: +SKIP
>>> ds = prepare(read_dataset("data/demo"))                      # doctest: +SKIP
>>> trips = trips_to_trajectories(ds.points, audit(ds).trips)    # doctest: +SKIP
>>> trips.trajectories[0].get_length()  # metres                 # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE, check_timezone

if TYPE_CHECKING:  # pragma: no cover
    import movingpandas

__all__ = [
    "POINT_COLUMNS",
    "TRIP_ATTRIBUTES",
    "TRIP_COLUMNS",
    "TrajectoryInputError",
    "trips_to_trajectories",
]

POINT_COLUMNS: tuple[str, ...] = ("vehicle_key", "time", "lon", "lat")
"""Columns the points frame needs (``ingest.prepare`` points: WGS-84 lon/lat, tz-aware time)."""

TRIP_COLUMNS: tuple[str, ...] = ("trip_id", "vehicle_key", "start", "end")
"""Columns the trips frame needs (``AuditResult.trips`` or ``trips.csv``)."""

TRIP_ATTRIBUTES: tuple[str, ...] = (
    "vehicle_id",
    "status",
    "origin_site_id",
    "disposal_site_id",
    "loaded_by",
)
"""Trip columns copied onto every point of its trajectory, when the trips frame has them."""

_POINT_EXTRAS: tuple[str, ...] = ("speed_kmh", "heading_deg", "load", "lift")


class TrajectoryInputError(UserError, ValueError):
    """A points or trips frame lacks a column or holds an unreadable time."""


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TrajectoryInputError(
            f"{name}: required column(s) {', '.join(map(repr, missing))} missing; "
            f"required: {', '.join(columns)}"
        )


def _utc_ns(values: Any, what: str) -> np.ndarray:
    """Times (tz-aware, ISO text with offset, or naive = UTC) as int64 UTC nanoseconds."""
    try:
        times = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise TrajectoryInputError(f"{what}: times that are not ISO 8601: {exc}") from exc
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise TrajectoryInputError(f"{what}: missing time at row {row}")
    return times.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def trips_to_trajectories(
    points: pd.DataFrame,
    trips: pd.DataFrame,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    min_points: int = 2,
) -> movingpandas.TrajectoryCollection:
    """Return each trip as a movingpandas trajectory of its vehicle's points.

    A trip's points are those of its vehicle (same ``vehicle_key``) with
    ``start <= time <= end``. Neither frame is changed.

    Parameters
    ----------
    points : pandas.DataFrame
        Points with ``vehicle_key, time, lon, lat`` (WGS-84 degrees; ``time``
        tz-aware, or naive UTC), in any order, e.g. ``prepare(raw).points``.
        ``speed_kmh, heading_deg, load, lift`` are kept when present.
    trips : pandas.DataFrame
        Trips with ``trip_id, vehicle_key, start, end`` (tz-aware, or ISO 8601
        text as in ``trips.csv``), e.g. ``AuditResult.trips``. The columns of
        :data:`TRIP_ATTRIBUTES` it has are copied onto the points.
    timezone : str, default "Asia/Shanghai"
        IANA zone the trajectories' times are shown in. movingpandas keeps
        naive times, so the index is naive local time (the house rule: naive =
        dataset-local); the column ``time_utc`` keeps the exact instant.
    min_points : int, default 2
        Trips with fewer points are left out (a trajectory needs two).

    Returns
    -------
    movingpandas.TrajectoryCollection
        One trajectory per trip with at least ``min_points`` points, ``id`` =
        ``trip_id``, ``obj_id`` = ``vehicle_id`` (else ``vehicle_key``), CRS
        EPSG:4326, ordered by ``trip_id`` (as movingpandas groups them). Empty
        when no trip qualifies.

    Raises
    ------
    TrajectoryInputError
        When a required column is missing or a time cannot be read
        (a ``UserError`` and ``ValueError``).
    """
    import geopandas as gpd

    _require(points, POINT_COLUMNS, "points")
    _require(trips, TRIP_COLUMNS, "trips")
    zone = check_timezone(timezone, what="timezone", error=TrajectoryInputError)
    if isinstance(min_points, bool) or not isinstance(min_points, int | np.integer) or min_points < 2:
        raise TrajectoryInputError(
            f"min_points={min_points!r} is not allowed; allowed: an integer >= 2"
        )

    # points sorted by (vehicle, time): each trip is one contiguous slice
    p_key = points["vehicle_key"].astype("str").to_numpy()
    p_t = _utc_ns(points["time"].to_numpy(), "points.time")
    order = np.lexsort((p_t, p_key))
    p_key, p_t = p_key[order], p_t[order]
    keys, first = np.unique(p_key, return_index=True)
    last = np.append(first[1:], len(p_key))

    t_key = trips["vehicle_key"].astype("str").to_numpy()
    t_start = _utc_ns(trips["start"].to_numpy(), "trips.start")
    t_end = _utc_ns(trips["end"].to_numpy(), "trips.end")
    lo = np.zeros(len(trips), dtype=np.int64)
    hi = np.zeros(len(trips), dtype=np.int64)
    if len(keys):
        slot = np.clip(np.searchsorted(keys, t_key), 0, len(keys) - 1)
        known = np.flatnonzero(keys[slot] == t_key)
        by_vehicle = known[np.argsort(slot[known], kind="stable")]
        cuts = np.flatnonzero(np.diff(slot[by_vehicle])) + 1
        for sel in np.split(by_vehicle, cuts):  # one searchsorted per vehicle, not per point
            if not len(sel):
                continue
            k = slot[sel[0]]
            a, b = first[k], last[k]
            lo[sel] = a + np.searchsorted(p_t[a:b], t_start[sel], side="left")
            hi[sel] = a + np.searchsorted(p_t[a:b], t_end[sel], side="right")
    counts = np.maximum(hi - lo, 0)
    keep = counts >= min_points
    counts = np.where(keep, counts, 0)

    # gather: the sorted positions of every kept trip's slice, with its trip row
    trip_row = np.repeat(np.arange(len(trips)), counts)
    offsets = np.cumsum(counts) - counts
    pos = np.arange(int(counts.sum())) - np.repeat(offsets, counts) + np.repeat(lo, counts)
    src = order[pos]

    time_utc = pd.to_datetime(p_t[pos], utc=True)
    data: dict[str, Any] = {
        "trip_id": trips["trip_id"].astype("str").to_numpy()[trip_row],
        "vehicle_key": p_key[pos],
        "time": time_utc.tz_convert(zone).tz_localize(None),
        "time_utc": time_utc,
    }
    for column in TRIP_ATTRIBUTES:
        if column in trips.columns and column not in data:
            data[column] = trips[column].to_numpy()[trip_row]
    for column in _POINT_EXTRAS:
        if column in points.columns:
            data[column] = points[column].to_numpy()[src]
    lon = pd.to_numeric(points["lon"], errors="coerce").to_numpy(dtype=float)[src]
    lat = pd.to_numeric(points["lat"], errors="coerce").to_numpy(dtype=float)[src]
    frame = gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    obj_col = "vehicle_id" if "vehicle_id" in frame.columns else "vehicle_key"
    return _collection(frame, obj_col)


def _collection(frame: Any, obj_col: str) -> movingpandas.TrajectoryCollection:
    with warnings.catch_warnings():
        # movingpandas warns on import about an optional smoother package and, inside,
        # about a pandas keyword it still uses: neither concerns the caller
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        import movingpandas

        return movingpandas.TrajectoryCollection(
            frame, traj_id_col="trip_id", obj_id_col=obj_col, t="time"
        )
