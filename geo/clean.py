"""GPS cleaning: drop teleport outliers.

A *teleport* is a single fix thrown far away by a bad GPS solution (multipath
near tall buildings, a cold start): the truck seems to jump out and come
straight back. A point is one when the implied speed from its previous point
AND to its next point (same vehicle) both exceed ``max_speed_kmh`` over at
least ``min_jump_m``, while going straight from the previous to the next point
is plausible. At a track's first (last) point only the next (previous) pair can
be judged: it is an outlier when the jump to its neighbour is impossible and
the neighbour's own next (previous) step is plausible. An excursion of up to
three consecutive bad fixes (impossible jump out, impossible jump back, no
jump inside) is dropped as a whole; further passes catch what a removal
reveals. A *hairpin* (one far fix reached and left in opposite directions at an
average speed no heavy truck reaches when it must turn around) is an outlier too.
Judged on whole columns with shifts; vehicle boundaries cut every pair.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["drop_teleports"]

_EARTH_RADIUS_M = 6_371_008.8
_HAIRPIN_COS = -np.cos(np.deg2rad(30.0))  # the track turns back by more than 150°


def _distance_m(points: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if "x" in points.columns and "y" in points.columns:
        return points["x"].to_numpy("float64"), points["y"].to_numpy("float64")
    # No projection yet: an equirectangular approximation around the data is enough to
    # judge hundreds of metres in seconds.
    lon = points["lon"].to_numpy("float64")
    lat = points["lat"].to_numpy("float64")
    lat0 = np.deg2rad(np.nanmedian(lat)) if len(lat) else 0.0
    x = np.deg2rad(lon) * np.cos(lat0) * _EARTH_RADIUS_M
    y = np.deg2rad(lat) * _EARTH_RADIUS_M
    return x, y


def drop_teleports(
    points: pd.DataFrame,
    *,
    max_speed_kmh: float = 150.0,
    min_jump_m: float = 300.0,
    max_reversal_speed_kmh: float | None = 45.0,
    max_passes: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Find teleport outliers in GPS points.

    Parameters
    ----------
    points : pandas.DataFrame
        Columns ``vehicle_key`` (or ``vehicle_id``), ``time`` and either
        ``x, y`` (metres, projected) or ``lon, lat`` (WGS-84 degrees). Any
        order; the frame is not changed.
    max_speed_kmh : float, default 150
        Speed no haul truck reaches; faster jumps are impossible.
    min_jump_m : float, default 300
        A jump shorter than this is never a teleport (GPS jitter between
        fixes a second apart gives high speeds over a few metres).
    max_reversal_speed_kmh : float or None, default 45
        Hairpin rule: a single fix at least ``min_jump_m`` from both neighbours,
        where the track turns back by more than 150°, is an outlier when the
        out-and-back average speed exceeds this (a heavy truck nearly stops to
        turn around, so real out-and-back legs are slow). None disables it.
    max_passes : int, default 3
        Passes of the rule; each pass judges the points kept by the previous one.

    Returns
    -------
    kept, rejected : numpy.ndarray of bool
        Masks aligned with the rows of ``points`` (``rejected == ~kept``).

    Raises
    ------
    ValueError
        If a threshold is not positive or a required column is missing.
    """
    if not (np.isfinite(max_speed_kmh) and max_speed_kmh > 0):
        raise ValueError(f"max_speed_kmh must be a positive number, got {max_speed_kmh!r}")
    if not (np.isfinite(min_jump_m) and min_jump_m >= 0):
        raise ValueError(f"min_jump_m must be a number >= 0, got {min_jump_m!r}")
    if max_reversal_speed_kmh is not None and not (
            np.isfinite(max_reversal_speed_kmh) and max_reversal_speed_kmh > 0):
        raise ValueError("max_reversal_speed_kmh must be a positive number or None, "
                         f"got {max_reversal_speed_kmh!r}")
    if int(max_passes) != max_passes or max_passes < 1:
        raise ValueError(f"max_passes must be an integer >= 1, got {max_passes!r}")
    key_col = "vehicle_key" if "vehicle_key" in points.columns else "vehicle_id"
    missing = [c for c in (key_col, "time") if c not in points.columns]
    if not ({"x", "y"} <= set(points.columns) or {"lon", "lat"} <= set(points.columns)):
        missing.append("x, y (or lon, lat)")
    if missing:
        raise ValueError(f"drop_teleports: points lack column(s) {', '.join(missing)}")
    n = len(points)
    kept = np.ones(n, dtype=bool)
    if n < 2:
        return kept, ~kept

    keys = points[key_col]
    if isinstance(keys.dtype, pd.CategoricalDtype):
        vcode = keys.cat.codes.to_numpy()
    else:
        vcode = pd.factorize(keys, sort=False)[0]
    t_ns = _time_ns(points["time"])
    x_all, y_all = _distance_m(points)
    if _is_grouped_sorted(vcode, t_ns):  # the canonical points frame: no reorder needed
        order = None
        x_s, y_s, t_s, v_s = x_all, y_all, t_ns, vcode
    else:
        order = np.lexsort((t_ns, vcode))
        x_s, y_s, t_s, v_s = x_all[order], y_all[order], t_ns[order], vcode[order]
    limit_ms = max_speed_kmh / 3.6
    rev_ms = None if max_reversal_speed_kmh is None else max_reversal_speed_kmh / 3.6
    alive = np.ones(n, dtype=bool)
    for _ in range(int(max_passes)):
        if alive.all():
            idx = None
            bad = _teleports(x_s, y_s, t_s, v_s, limit_ms, min_jump_m, reversal_ms=rev_ms)
        else:
            idx = np.flatnonzero(alive)
            bad = _teleports(x_s[idx], y_s[idx], t_s[idx], v_s[idx], limit_ms, min_jump_m,
                             reversal_ms=rev_ms)
        if not bad.any():
            break
        alive[np.flatnonzero(bad) if idx is None else idx[bad]] = False
    if order is None:
        kept = alive
    else:
        kept[order] = alive
    return kept, ~kept


def _is_grouped_sorted(vcode: np.ndarray, t_ns: np.ndarray) -> bool:
    """True when each vehicle's rows are contiguous and in time order."""
    if len(vcode) < 2:
        return True
    change = vcode[1:] != vcode[:-1]
    if np.any(~change & (t_ns[1:] < t_ns[:-1])):
        return False
    # contiguous groups: as many runs as distinct vehicles
    return int(change.sum()) + 1 == len(np.unique(vcode))


def _time_ns(times: pd.Series) -> np.ndarray:
    ser = pd.Series(times)
    if isinstance(ser.dtype, pd.DatetimeTZDtype) or ser.dtype.kind == "M":
        return pd.DatetimeIndex(ser).as_unit("ns").asi8
    return pd.to_datetime(ser, utc=True).dt.as_unit("ns").astype("int64").to_numpy()


def _teleports(x: np.ndarray, y: np.ndarray, t: np.ndarray, v: np.ndarray,
               limit_ms: float, min_jump_m: float, max_run: int = 3,
               reversal_ms: float | None = None) -> np.ndarray:
    """One pass of the rules on points sorted by (vehicle, time); ``t`` in ns.

    An excursion of 1..``max_run`` consecutive fixes is an outlier when the jump
    into it and the jump out of it are both impossible, the fixes inside it do
    not jump, and going straight from the point before to the point after is
    plausible. Only the (rare) far jumps are examined beyond the first O(n) pass.
    """
    n = len(x)
    bad = np.zeros(n, dtype=bool)
    if n < 3:
        return bad
    same = v[1:] == v[:-1]                    # pair j: fix j → j+1 within one vehicle
    d = np.hypot(np.diff(x), np.diff(y))      # m
    dt = np.diff(t) / 1e9                     # s (t in ns)
    far = same & (d > min_jump_m)
    with np.errstate(divide="ignore", invalid="ignore"):
        fast = far & ((dt <= 0) | (d > limit_ms * dt))

    def plausible(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Going straight from fix a to fix b (same vehicle) is possible."""
        dist = np.hypot(x[b] - x[a], y[b] - y[a])
        span = (t[b] - t[a]) / 1e9
        return (v[a] == v[b]) & (dist <= np.maximum(limit_ms * span, min_jump_m))

    starts = np.flatnonzero(fast[:-1]) + 1    # fix i reached by an impossible jump
    if starts.size:
        fast_cum = np.concatenate([[0], np.cumsum(fast)]) if max_run > 1 else None
        for run in range(1, max_run + 1):
            i = starts[starts + run <= n - 1]
            if i.size == 0:
                break
            ok = fast[i + run - 1]            # impossible jump out of the excursion
            if run > 1:                       # no jump inside it
                ok &= (fast_cum[i + run - 1] - fast_cum[i]) == 0
            i = i[ok]
            hit = i[plausible(i - 1, i + run)]
            for k in range(run):
                bad[hit + k] = True
    # Hairpin: a far fix reached and left in opposite directions, faster on average than a
    # heavy truck can go out and back (it must nearly stop to turn around).
    if reversal_ms is not None:
        j = np.flatnonzero(far[:-1] & far[1:])
        if j.size:
            dx0, dy0 = x[j + 1] - x[j], y[j + 1] - y[j]
            dx1, dy1 = x[j + 2] - x[j + 1], y[j + 2] - y[j + 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                cos_turn = (dx0 * dx1 + dy0 * dy1) / (d[j] * d[j + 1])
                avg = (d[j] + d[j + 1]) / (dt[j] + dt[j + 1])
                hp = (cos_turn < _HAIRPIN_COS) & ((avg > reversal_ms) | ~np.isfinite(avg))
            bad[j[hp] + 1] = True
    # First (last) fix of a vehicle: the jump to its neighbour is impossible and the
    # neighbour's own next (previous) step is plausible.
    plausible_step = same & ~fast
    first = np.ones(n, dtype=bool)
    first[1:] = ~same
    last = np.ones(n, dtype=bool)
    last[:-1] = ~same
    bad[:-2] |= first[:-2] & fast[:-1] & plausible_step[1:]
    bad[2:] |= last[2:] & fast[1:] & plausible_step[:-1]
    return bad
