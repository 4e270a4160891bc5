"""Stop (dwell) detection: where a vehicle stayed within a small area for a while.

The meaning is movingpandas' ``TrajectoryStopDetector``: a stop is a stretch of a
vehicle's track whose points stay within ``diameter_m`` (the diagonal of their
minimum-area rotated rectangle) for at least ``min_duration_s``. The same sliding
window algorithm is run here, but in one numba pass over numpy arrays instead of
per-point Python with shapely geometries:

* while not stopped, the window is trimmed from the front to span less than
  ``min_duration_s`` (keeping at least two points);
* the window is "stopped" when its rectangle diagonal is below ``diameter_m``;
  while stopped it only grows (extents are updated incrementally, O(1) per point);
* when a stopped window breaks, the stop is the window without the breaking
  point, kept when it lasted at least ``min_duration_s``.

The minimum-area rectangle is found among :data:`N_DIRECTIONS` orientations
(5.6° apart), which matches shapely's exact rectangle to well under a percent of
the diagonal for GPS point clouds. A GPS gap whose two ends lie within the
diameter stays inside the stop (the truck did not move while dark).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from haulwatch.errors import UserError

__all__ = [
    "N_DIRECTIONS",
    "STOP_COLUMNS",
    "StopsInputError",
    "detect_stops",
    "segment_means",
    "sort_order",
    "stops_of_sorted",
    "time_seconds",
]

#: Orientations tried for the minimum-area rectangle (over a quarter turn).
N_DIRECTIONS = 16

#: Columns of the stops frame, in order.
STOP_COLUMNS: tuple[str, ...] = (
    "stop_id",
    "vehicle_id",
    "vehicle_key",
    "start",
    "end",
    "duration_s",
    "x",
    "y",
    "lon",
    "lat",
    "n_points",
    "i_first",
    "i_last",
)

_ANGLES = np.arange(N_DIRECTIONS) * (np.pi / 2.0) / N_DIRECTIONS
_COS = np.cos(_ANGLES)
_SIN = np.sin(_ANGLES)


class StopsInputError(UserError, ValueError):
    """The points frame or a threshold given to :func:`detect_stops` is not usable."""


def time_seconds(times: pd.Series) -> np.ndarray:
    """Return times as float seconds since the epoch (UTC for tz-aware input).

    Parameters
    ----------
    times : pandas.Series
        ``datetime64`` values of any resolution, tz-aware or naive.

    Returns
    -------
    numpy.ndarray
        float64 seconds; NaN where the time is missing.
    """
    index = pd.DatetimeIndex(times)
    seconds = index.as_unit("ns").asi8.astype(np.float64)
    if index.hasnans:
        seconds[index.isna()] = np.nan
    seconds /= 1e9
    return seconds


@numba.njit(cache=True, nogil=True)
def _extents(x, y, lo, hi, cos, sin, umin, umax, vmin, vmax):  # pragma: no cover - numba
    """Fill the per-orientation extents of points lo..hi (inclusive)."""
    k_n = cos.shape[0]
    for k in range(k_n):
        umin[k] = np.inf
        umax[k] = -np.inf
        vmin[k] = np.inf
        vmax[k] = -np.inf
    for j in range(lo, hi + 1):
        for k in range(k_n):
            u = x[j] * cos[k] + y[j] * sin[k]
            v = -x[j] * sin[k] + y[j] * cos[k]
            umin[k] = min(umin[k], u)
            umax[k] = max(umax[k], u)
            vmin[k] = min(vmin[k], v)
            vmax[k] = max(vmax[k], v)


@numba.njit(cache=True, nogil=True)
def _add_point(x, y, j, cos, sin, umin, umax, vmin, vmax):  # pragma: no cover - numba
    for k in range(cos.shape[0]):
        u = x[j] * cos[k] + y[j] * sin[k]
        v = -x[j] * sin[k] + y[j] * cos[k]
        umin[k] = min(umin[k], u)
        umax[k] = max(umax[k], u)
        vmin[k] = min(vmin[k], v)
        vmax[k] = max(vmax[k], v)


@numba.njit(cache=True, nogil=True)
def _diagonal(umin, umax, vmin, vmax):  # pragma: no cover - numba
    """Diagonal of the minimum-area rectangle among the tried orientations."""
    best_area = np.inf
    best_diag = np.inf
    for k in range(umin.shape[0]):
        w = umax[k] - umin[k]
        h = vmax[k] - vmin[k]
        area = w * h
        if area < best_area or (area == best_area and np.hypot(w, h) < best_diag):
            best_area = area
            best_diag = np.hypot(w, h)
    return best_diag


@numba.njit(cache=True, nogil=True)
def _stop_kernel(x, y, t, group_start, group_end, max_d, min_dur, cos, sin):  # pragma: no cover
    """Return (first, last) indices of the stops of every group (movingpandas semantics)."""
    n = x.shape[0]
    firsts = np.empty(n // 2 + 1, np.int64)
    lasts = np.empty(n // 2 + 1, np.int64)
    count = 0
    k_n = cos.shape[0]
    umin = np.empty(k_n)
    umax = np.empty(k_n)
    vmin = np.empty(k_n)
    vmax = np.empty(k_n)
    for g in range(group_start.shape[0]):
        a = group_start[g]
        b = group_end[g]
        w0 = a
        is_stopped = False
        prev_stopped = False
        valid = False  # extents describe window [w0, i-1]
        for i in range(a, b):
            if not is_stopped:
                while i - w0 + 1 > 2 and t[i] - t[w0] >= min_dur:
                    w0 += 1
                valid = False
            is_stopped = False
            if i - w0 + 1 > 1:
                if i - w0 + 1 == 2:
                    d = np.hypot(x[i] - x[w0], y[i] - y[w0])
                    is_stopped = d < max_d
                    valid = False
                else:
                    if valid:
                        _add_point(x, y, i, cos, sin, umin, umax, vmin, vmax)
                        is_stopped = _diagonal(umin, umax, vmin, vmax) < max_d
                    else:
                        # cheap exact rejection: the diagonal is at least the axis extents
                        xmin = x[w0]
                        xmax = x[w0]
                        ymin = y[w0]
                        ymax = y[w0]
                        for j in range(w0 + 1, i + 1):
                            xmin = min(xmin, x[j])
                            xmax = max(xmax, x[j])
                            ymin = min(ymin, y[j])
                            ymax = max(ymax, y[j])
                        if xmax - xmin < max_d and ymax - ymin < max_d:
                            _extents(x, y, w0, i, cos, sin, umin, umax, vmin, vmax)
                            valid = True
                            is_stopped = _diagonal(umin, umax, vmin, vmax) < max_d
                    if not is_stopped:
                        valid = False
            if (
                not is_stopped
                and prev_stopped
                and i - w0 + 1 > 1
                and t[i - 1] - t[w0] >= min_dur
            ):
                firsts[count] = w0
                lasts[count] = i - 1
                count += 1
                w0 = i
                valid = False
            prev_stopped = is_stopped
        if is_stopped and b - 1 > w0 and t[b - 1] - t[w0] >= min_dur:
            firsts[count] = w0
            lasts[count] = b - 1
            count += 1
    return firsts[:count], lasts[:count]


def _empty_stops(points: pd.DataFrame) -> pd.DataFrame:
    time_dtype = points["time"].dtype if "time" in points.columns else "datetime64[ns, UTC]"
    return pd.DataFrame(
        {
            "stop_id": pd.Series([], dtype=object),
            "vehicle_id": pd.Series([], dtype=object),
            "vehicle_key": pd.Series([], dtype=object),
            "start": pd.Series([], dtype=time_dtype),
            "end": pd.Series([], dtype=time_dtype),
            "duration_s": pd.Series([], dtype=np.float64),
            "x": pd.Series([], dtype=np.float64),
            "y": pd.Series([], dtype=np.float64),
            "lon": pd.Series([], dtype=np.float64),
            "lat": pd.Series([], dtype=np.float64),
            "n_points": pd.Series([], dtype=np.int64),
            "i_first": pd.Series([], dtype=np.int64),
            "i_last": pd.Series([], dtype=np.int64),
        }
    )


def sort_order(points: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Return (order, vehicle codes, times) for processing points by vehicle, time.

    ``order`` is None when the frame is already sorted (the canonical case); codes
    and times (epoch seconds) are given in processing order.
    """
    key_col = "vehicle_key" if "vehicle_key" in points.columns else "vehicle_id"
    codes, _ = pd.factorize(points[key_col], sort=True)
    codes = codes.astype(np.int64, copy=False)
    t = time_seconds(points["time"])
    if len(codes) < 2:
        return None, codes, t
    ok = np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (t[1:] >= t[:-1])))
    if ok:
        return None, codes, t
    order = np.lexsort((t, codes))
    return order, codes[order], t[order]


@numba.njit(cache=True, nogil=True)
def segment_means(values, first, last):  # pragma: no cover - numba
    """Mean of values[first[k]:last[k] + 1] for every k (no array as long as the points)."""
    out = np.empty(first.shape[0])
    for k in range(first.shape[0]):
        acc = 0.0
        for j in range(first[k], last[k] + 1):
            acc += values[j]
        out[k] = acc / (last[k] - first[k] + 1)
    return out


def detect_stops(
    points: pd.DataFrame,
    *,
    diameter_m: float,
    min_duration_s: float,
) -> pd.DataFrame:
    """Find the stops (dwells) of every vehicle.

    Parameters
    ----------
    points : pandas.DataFrame
        Columns ``vehicle_id``, ``time`` (datetime64, tz-aware UTC in the canonical
        frame), ``x``, ``y`` (metres, projected); optional ``vehicle_key`` (the
        normalized plate, defaults to ``vehicle_id``), ``lon``, ``lat``. Need not be
        sorted. Not changed.
    diameter_m : float
        Largest diagonal of the (rotated) rectangle around a stop's points, metres (> 0).
    min_duration_s : float
        Shortest stop, seconds (> 0).

    Returns
    -------
    pandas.DataFrame
        One row per stop, sorted by ``vehicle_key``, ``start``, with columns
        :data:`STOP_COLUMNS`: ``stop_id`` (``"<vehicle_key>:<start epoch s>"``),
        ``vehicle_id``, ``vehicle_key``, ``start``, ``end`` (times of its first and
        last point), ``duration_s``, ``x``, ``y``, ``lon``, ``lat`` (mean of its
        points; lon/lat NaN when absent), ``n_points``, ``i_first``, ``i_last``
        (positions in ``points`` of its first and last point; when ``points`` is
        sorted by vehicle and time, as the canonical frame is, the stop's points are
        ``points.iloc[i_first:i_last + 1]``).

    Raises
    ------
    StopsInputError
        When a required column is missing, holds missing values, or a threshold
        is not a positive finite number.
    """
    _check_threshold("diameter_m", diameter_m)
    _check_threshold("min_duration_s", min_duration_s)
    missing = [c for c in ("vehicle_id", "time", "x", "y") if c not in points.columns]
    if missing:
        raise StopsInputError(
            f"points lack column(s) {missing}; required: vehicle_id, time, x, y "
            f"(present: {list(points.columns)})"
        )
    if len(points) == 0:
        return _empty_stops(points)
    if not pd.api.types.is_datetime64_any_dtype(points["time"]):
        raise StopsInputError(
            f"column 'time' has dtype {points['time'].dtype}; allowed: datetime64 (tz-aware UTC)"
        )
    order, codes, t = sort_order(points)
    return stops_of_sorted(
        points, codes, t, order=order, diameter_m=float(diameter_m), min_duration_s=float(min_duration_s)
    )


def stops_of_sorted(
    points: pd.DataFrame,
    codes: np.ndarray,
    t: np.ndarray,
    *,
    order: np.ndarray | None,
    diameter_m: float,
    min_duration_s: float,
) -> pd.DataFrame:
    """:func:`detect_stops` for callers that already hold the processing order.

    Parameters
    ----------
    points : pandas.DataFrame
        As for :func:`detect_stops`.
    codes, t : numpy.ndarray
        Vehicle code and epoch seconds per point, in processing order (codes
        non-decreasing, times non-decreasing within a code).
    order : numpy.ndarray or None
        Positions of ``points`` in processing order; None when ``points`` is sorted.
    diameter_m, min_duration_s : float
        As for :func:`detect_stops` (not re-validated).

    Returns
    -------
    pandas.DataFrame
        The stops frame.
    """
    if len(points) == 0:
        return _empty_stops(points)

    def column(name: str) -> np.ndarray:
        values = points[name].to_numpy(dtype=np.float64)
        return values if order is None else values[order]

    x = column("x")
    y = column("y")
    for name, arr in (("x", x), ("y", y), ("time", t)):
        bad = ~np.isfinite(arr)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            pos = k if order is None else int(order[k])
            raise StopsInputError(
                f"column {name!r} has a missing or non-finite value at row {pos}; "
                "allowed: finite numbers / valid times (clean points with ingest.prepare first)"
            )
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    group_start = np.concatenate(([0], change)).astype(np.int64)
    group_end = np.concatenate((change, [len(codes)])).astype(np.int64)
    first, last = _stop_kernel(
        x, y, t, group_start, group_end, float(diameter_m), float(min_duration_s), _COS, _SIN
    )
    if len(first) == 0:
        return _empty_stops(points)

    n_points = last - first + 1
    mean_x = segment_means(x, first, last)
    mean_y = segment_means(y, first, last)
    if "lon" in points.columns and "lat" in points.columns:
        mean_lon = segment_means(column("lon"), first, last)
        mean_lat = segment_means(column("lat"), first, last)
    else:
        mean_lon = np.full(len(first), np.nan)
        mean_lat = np.full(len(first), np.nan)
    pos_first = first if order is None else order[first]
    pos_last = last if order is None else order[last]
    vid = points["vehicle_id"].iloc[pos_first].to_numpy(dtype=object)
    vkey_col = "vehicle_key" if "vehicle_key" in points.columns else "vehicle_id"
    vkey = points[vkey_col].iloc[pos_first].to_numpy(dtype=object)
    times = points["time"]
    start = times.iloc[pos_first].reset_index(drop=True)
    end = times.iloc[pos_last].reset_index(drop=True)
    start_s = np.floor(t[first]).astype(np.int64)
    stop_id = pd.Series([f"{k}:{s}" for k, s in zip(vkey, start_s.tolist(), strict=True)], dtype=object)
    return pd.DataFrame(
        {
            "stop_id": stop_id.to_numpy(dtype=object),
            "vehicle_id": vid.astype(object),
            "vehicle_key": vkey.astype(object),
            "start": start,
            "end": end,
            "duration_s": t[last] - t[first],
            "x": mean_x,
            "y": mean_y,
            "lon": mean_lon,
            "lat": mean_lat,
            "n_points": n_points.astype(np.int64),
            "i_first": pos_first.astype(np.int64),
            "i_last": pos_last.astype(np.int64),
        }
    )


def _check_threshold(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise StopsInputError(f"{name}: value {value!r} is not a number; allowed: a number > 0")
    if not np.isfinite(value) or value <= 0:
        raise StopsInputError(f"{name}: value {value!r} is not allowed; must be finite and > 0")
