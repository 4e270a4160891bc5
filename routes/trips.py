"""Visits, events, load state and haul trips (docs/detection.md "Stops, visits, load state", "Trips").

The work runs in three steps, all on one partition of vehicles:

1. :func:`haulwatch.geo.zones.site_of_points` (called by ``routes.audit``) — which
   permitted place (origin / disposal / depot, with the per-kind buffers) each
   point is at, for all points at once.
2. :func:`build_events` — the vehicle's *events* in time order, from whole-column
   masks over the points: **visits** (runs of points at one site, merged across
   short excursions), **open stops** (dwells outside every site, from
   :func:`haulwatch.geo.stops.detect_stops`) and **dark gaps** (spells without
   points longer than ``gap_max_s`` that are not inside one visit or one stop; a
   spell that leaves or reaches a visit — the terminal switched off at a gate — is
   a gap event). Visits carry ``core_s`` / ``entered`` (time inside the polygon
   proper, not its buffer) and ``dwell_s`` (longest stand-still inside). Sensor
   readings are attached to the events: load transitions (empty → loaded "up",
   loaded → empty "down") go to the event they happen in; one first reported on
   the road goes to the event before (terminals report late; up to
   ``_SENSOR_LATE_S``), else to the nearest in time; ``lift`` raised inside an event.
3. :func:`run_trips` — a small state machine over the events (tens per vehicle and
   day, so a plain loop over the event table): loading visits open a haul trip,
   unloading visits close it as delivered. A loaded truck that loads again, or
   reaches its data end after parking in a depot, without reaching a disposal
   site closes it as undelivered, and its dump is the stop where the load changed
   (sensor), else the longest candidate stop or dark spell (before the depot, when
   there were any). A depot stay alone (lunch, the night) ends nothing: a later
   unloading visit delivers the load. Vehicles with a ``load`` sensor follow the
   sensor; others are judged from the track, with three guards: a disposal visit
   that never enters the polygon (a red light by the fence) unloads nothing; a
   loaded truck reloads at an origin only after standing still inside it; a raised
   body (``lift``) at a stop is the dump unless the truck then tips at a disposal
   site. A disposal site outside its permit dates is no unloading place: a stay
   there is a stop in the open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from haulwatch.errors import UserError
from haulwatch.geo.stops import segment_means
from haulwatch.routes.track import Track

__all__ = [
    "EVENT_COLUMNS",
    "TRIP_COLUMNS",
    "TripsInputError",
    "TripsResult",
    "build_events",
    "frozen_fixes",
    "loaded_state",
    "merge_split_stops",
    "run_trips",
    "trim_moving_ends",
    "trips_frame",
]

#: Columns of the events frame.
EVENT_COLUMNS: tuple[str, ...] = (
    "vehicle_code", "kind", "site_pos", "i_first", "i_last", "start_s", "end_s",
    "duration_s", "x", "y", "up", "down", "lift", "has_gap", "gap_i", "core_s",
    "entered", "dwell_s", "turn_back",
)

#: Columns of the trips frame.
TRIP_COLUMNS: tuple[str, ...] = (
    "trip_id", "vehicle_id", "vehicle_key", "status", "origin_kind", "origin_site_id",
    "disposal_site_id", "start", "load_end", "unload_start", "end", "i_first", "i_last",
    "load_x", "load_y", "loaded_by", "n_candidates",
)

_LOAD_CODES = {"empty": 0.0, "half": 1.0, "full": 1.0}

#: A load reading sent at this speed or faster came while driving, km/h (loading and
#: tipping happen standing or creeping at walking pace).
_LOAD_MOVING_KMH = 10.0

#: The way out of a stop within this cosine of the way in (about 120° or more) is the
#: truck turning back.
_TURN_BACK_COS = -0.5
#: A single fix is a turning point when the way out is within this cosine of the way
#: in (about 120° or more, as for stops: a sparse terminal sees the turn coarsely).
_TURN_POINT_COS = -0.5

#: A load change first reported this long after the truck left a stop or visit still
#: belongs to it (terminals report the new state late), seconds.
_SENSOR_LATE_S = 600.0


class TripsInputError(UserError, ValueError):
    """A frame or threshold handed to the trip builder is not usable."""


# --------------------------------------------------------------------------- sensors


def loaded_state(
    points: pd.DataFrame,
    codes: np.ndarray,
    t: np.ndarray,
    *,
    n_vehicles: int,
    sensor_min_duration_s: float,
    change_min_duration_s: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the load state of every point from the ``load`` / ``lift`` sensors.

    Parameters
    ----------
    points : pandas.DataFrame
        Points sorted by vehicle and time; ``load`` (``empty/half/full``) and
        ``lift`` (0/1) are optional columns.
    codes : numpy.ndarray
        Vehicle code per point (0 .. n_vehicles - 1, non-decreasing).
    t : numpy.ndarray
        Epoch seconds per point.
    n_vehicles : int
        Number of vehicle codes.
    sensor_min_duration_s : float
        Shortest reading that counts, seconds.
    change_min_duration_s : float, default 0
        Shortest state between two readings of the other state (empty between two
        loads: unloading and loading again), seconds (the audit: ``load_min_duration_s``).

    Returns
    -------
    tuple of numpy.ndarray
        (loaded per point, has_load per vehicle code, lift per point).

    ``loaded`` is 1.0 / 0.0 from the ``load`` column (``half`` and ``full`` are
    loaded) carried forward within each vehicle (NaN before the first reading or
    without a sensor). A reading that holds for less than ``sensor_min_duration_s``
    before the sensor says otherwise is a glitch and is ignored (real loads and
    unloads last far longer; terminals do send odd values). ``has_load`` is True
    for vehicles whose sensor changed state at least once: a sensor stuck on one
    value is ignored and the vehicle is judged from its track. ``lift`` is a bool
    array (True where the body is raised).
    """
    n = len(points)
    n_codes = n_vehicles
    if "load" in points.columns:
        column = points["load"]
        if isinstance(column.dtype, pd.CategoricalDtype):
            # the category codes (int8 for a few values) instead of a factorized copy
            lcodes, luniq = column.cat.codes.to_numpy(), column.cat.categories
        else:
            lcodes, luniq = pd.factorize(column)
        table = np.array([_LOAD_CODES.get(str(u).strip().lower(), np.nan) for u in luniq] + [np.nan])
        loaded = table[lcodes]  # code -1 (missing) picks the trailing NaN
        del lcodes
    else:
        loaded = np.full(n, np.nan)
    # Which vehicles report at all; then the short runs of one state among a
    # vehicle's readings (glitches) are blanked, in one pass without subsets.
    if "speed_kmh" in points.columns:
        moving = pd.to_numeric(points["speed_kmh"], errors="coerce").to_numpy(dtype=np.float64) >= _LOAD_MOVING_KMH
    else:
        moving = np.zeros(n, dtype=bool)
    has = _drop_short_runs(loaded, codes, t, float(sensor_min_duration_s), n_codes, moving,
                           float(change_min_duration_s))
    if n:
        _ffill_by_code(loaded, codes)
        # a sensor that never changes state (stuck, or a truck that did not haul) tells
        # nothing: such vehicles are judged from the track
        has &= _state_changed(loaded, codes, n_codes)
    if "lift" in points.columns:
        lift = pd.to_numeric(points["lift"], errors="coerce").to_numpy(dtype=np.float64) >= 0.5
    else:
        lift = np.zeros(n, dtype=bool)
    return loaded, has, lift


@numba.njit(cache=True, nogil=True)
def _drop_short_runs(values, codes, t, min_duration_s, n_codes, moving, between_s):  # pragma: no cover - numba
    """Blank (NaN, in place) the runs of one reading that are glitches.

    A run is a sequence of equal non-NaN readings of one code; it lasts from its
    first reading to the first reading of the next run. It is a glitch when it lasts
    under ``min_duration_s``; or, between two runs of the other state, when every
    reading of it came while driving (``moving``: a load changes only where the truck
    stands or creeps) or when it lasts under ``between_s`` (unloading and loading
    again, or loading and unloading again, take longer than that). The first and
    last run of a code are always kept (nothing before / after contradicts them).
    Returns, per code, whether it has any reading.
    """
    has = np.zeros(n_codes, dtype=np.bool_)
    prev = -1
    run_i = -1
    run_v = np.nan
    all_moving = True
    first_run = True
    for i in range(values.shape[0]):
        if codes[i] != prev:
            prev = codes[i]
            run_i = -1
            first_run = True
        v = values[i]
        if np.isnan(v):
            continue
        has[codes[i]] = True
        if run_i < 0:
            run_i = i
            run_v = v
            all_moving = moving[i]
        elif v != run_v:
            span = t[i] - t[run_i]
            if span < min_duration_s or (not first_run and (all_moving or span < between_s)):
                for j in range(run_i, i):
                    values[j] = np.nan
            else:
                first_run = False
            run_i = i
            run_v = v
            all_moving = moving[i]
        else:
            all_moving = all_moving and moving[i]
    return has


@numba.njit(cache=True, nogil=True)
def _ffill_by_code(values, codes):  # pragma: no cover - numba
    """Carry the last non-NaN value forward within each run of one code, in place."""
    last = np.nan
    prev = -1
    for i in range(values.shape[0]):
        if codes[i] != prev:
            prev = codes[i]
            last = np.nan
        if np.isnan(values[i]):
            values[i] = last
        else:
            last = values[i]


@numba.njit(cache=True, nogil=True)
def _state_changed(values, codes, n_codes):  # pragma: no cover - numba
    """Per code: whether two consecutive non-NaN values of that code differ."""
    out = np.zeros(n_codes, dtype=np.bool_)
    for i in range(1, values.shape[0]):
        a = values[i - 1]
        b = values[i]
        if codes[i] == codes[i - 1] and a != b and not np.isnan(a) and not np.isnan(b):
            out[codes[i]] = True
    return out


# --------------------------------------------------------------------------- stops

#: Between two pieces of one dwell (split by a noisy fix or a creeping entry) the truck
#: went nowhere: at most this many fixes ...
_SPLIT_MAX_FIXES = 3
#: ... within this long, seconds (three fixes of a 60 s terminal, two of a 120 s one).
_SPLIT_MAX_GAP_S = 300.0
#: Acceleration of a haul truck starting from standstill, m/s² (a laden tipper manages
#: ~1 m/s²; 1.5 is generous): how far it can be from a place it stood at Δt ago.
_MAX_ACCEL_MPS2 = 1.5


def merge_split_stops(
    stops: pd.DataFrame, codes: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray,
    lon: np.ndarray | None = None, lat: np.ndarray | None = None, *, diameter_m: float,
) -> pd.DataFrame:
    """Merge pieces of one dwell that noise split into consecutive stops.

    A creeping entry opens a stop and one noisy fix (multipath, a jump of a second
    terminal) pushes its extent past the diameter, so a new stop begins: the truck
    cannot have gone anywhere in a few seconds. Two consecutive stops of one vehicle
    are one when at most ``_SPLIT_MAX_FIXES`` fixes within ``_SPLIT_MAX_GAP_S``
    separate them and their centres lie within ``diameter_m`` of each other.

    Parameters
    ----------
    stops : pandas.DataFrame
        :func:`haulwatch.geo.stops.stops_of_sorted` output (``i_first``, ``i_last`` into
        the sorted points).
    codes, t, x, y : numpy.ndarray
        Vehicle code, epoch seconds and metric position per sorted point.
    lon, lat : numpy.ndarray, optional
        WGS-84 per point (the merged stops' ``lon``/``lat``).
    diameter_m : float
        The stop diameter, metres.

    Returns
    -------
    pandas.DataFrame
        The stops frame with split dwells merged (same columns; unchanged when none is).
    """
    if len(stops) < 2:
        return stops
    f = stops["i_first"].to_numpy(dtype=np.int64)
    la = stops["i_last"].to_numpy(dtype=np.int64)
    sx = stops["x"].to_numpy(dtype=np.float64)
    sy = stops["y"].to_numpy(dtype=np.float64)
    join = np.zeros(len(stops), dtype=bool)
    join[1:] = (
        (codes[f[1:]] == codes[la[:-1]])
        & (f[1:] - la[:-1] - 1 <= _SPLIT_MAX_FIXES)
        & (t[f[1:]] - t[la[:-1]] <= _SPLIT_MAX_GAP_S)
        & (np.hypot(sx[1:] - sx[:-1], sy[1:] - sy[:-1]) <= diameter_m)
    )
    if not join.any():
        return stops
    group = np.cumsum(~join) - 1
    heads = np.flatnonzero(~join)
    tails = np.r_[heads[1:] - 1, len(stops) - 1]
    out = stops.iloc[heads].reset_index(drop=True)
    new_last = la[tails]
    out["i_last"] = new_last
    out["end"] = stops["end"].iloc[tails].to_numpy()
    out["duration_s"] = t[new_last] - t[out["i_first"].to_numpy()]
    out["n_points"] = new_last - out["i_first"].to_numpy() + 1
    first = out["i_first"].to_numpy(dtype=np.int64)
    out["x"] = segment_means(x, first, new_last)
    out["y"] = segment_means(y, first, new_last)
    if lon is not None and lat is not None and "lon" in out.columns:
        out["lon"] = segment_means(np.asarray(lon, dtype=np.float64), first, new_last)
        out["lat"] = segment_means(np.asarray(lat, dtype=np.float64), first, new_last)
    del group
    return out


@numba.njit(cache=True, nogil=True)
def _trim_kernel(first, last, moving, codes, x, y, radius):  # pragma: no cover - numba
    """Move each stop's ends inwards past fixes reported while driving, then outwards
    over neighbouring standing fixes within ``radius`` of the stand-still's centre
    (the roll-in fix no longer stretches the extent)."""
    a = first.copy()
    b = last.copy()
    n = x.shape[0]
    for k in range(first.shape[0]):
        while a[k] < b[k] and moving[a[k]]:
            a[k] += 1
        while b[k] > a[k] and moving[b[k]]:
            b[k] -= 1
        cx = 0.0
        cy = 0.0
        for i in range(a[k], b[k] + 1):
            cx += x[i]
            cy += y[i]
        cx /= b[k] - a[k] + 1
        cy /= b[k] - a[k] + 1
        lo = last[k - 1] if k > 0 else -1
        hi = first[k + 1] if k + 1 < first.shape[0] else n
        while (b[k] + 1 < hi and codes[b[k] + 1] == codes[b[k]] and not moving[b[k] + 1]
               and (x[b[k] + 1] - cx) ** 2 + (y[b[k] + 1] - cy) ** 2 <= radius * radius):
            b[k] += 1
        while (a[k] - 1 > lo and codes[a[k] - 1] == codes[a[k]] and not moving[a[k] - 1]
               and (x[a[k] - 1] - cx) ** 2 + (y[a[k] - 1] - cy) ** 2 <= radius * radius):
            a[k] -= 1
    return a, b


def trim_moving_ends(
    stops: pd.DataFrame, t: np.ndarray, x: np.ndarray, y: np.ndarray, speed_kmh: np.ndarray | None,
    lon: np.ndarray | None = None, lat: np.ndarray | None = None, *, min_duration_s: float,
    codes: np.ndarray | None = None, diameter_m: float = 100.0,
) -> pd.DataFrame:
    """Drop the fixes at a stop's ends that the terminal sent while driving.

    A truck rolling in at walking-to-city pace is within the stop diameter for a
    fix or two before it stands, and again as it leaves: the dwell is from the
    first to the last fix reported below ``_LOAD_MOVING_KMH``. The roll-in fix also
    stretched the stop's extent, so standing fixes next to the trimmed stop within
    half the diameter of its centre join it. Stops left shorter than
    ``min_duration_s`` are dropped. Without a speed column nothing changes.

    Parameters
    ----------
    stops : pandas.DataFrame
        Stops frame (``i_first``, ``i_last`` into the sorted points).
    t, x, y : numpy.ndarray
        Epoch seconds and metric position per sorted point.
    speed_kmh : numpy.ndarray or None
        Reported speed per sorted point (NaN: unknown, counts as standing).
    lon, lat : numpy.ndarray, optional
        WGS-84 per point.
    min_duration_s : float
        Shortest stop kept, seconds.
    codes : numpy.ndarray, optional
        Vehicle code per sorted point (default: one vehicle).
    diameter_m : float, default 100
        The stop diameter, metres.

    Returns
    -------
    pandas.DataFrame
    """
    if speed_kmh is None or len(stops) == 0:
        return stops
    moving = np.asarray(speed_kmh, dtype=np.float64) >= _LOAD_MOVING_KMH
    codes = np.zeros(len(t), dtype=np.int64) if codes is None else np.asarray(codes, dtype=np.int64)
    f0 = stops["i_first"].to_numpy(dtype=np.int64)
    l0 = stops["i_last"].to_numpy(dtype=np.int64)
    f, la = _trim_kernel(f0, l0, moving, codes, np.asarray(x, dtype=np.float64),
                         np.asarray(y, dtype=np.float64), diameter_m / 2.0)
    if (f == f0).all() and (la == l0).all():
        return stops
    out = stops.copy()
    out["i_first"] = f
    out["i_last"] = la
    out["duration_s"] = t[la] - t[f]
    out["n_points"] = la - f + 1
    out["x"] = segment_means(x, f, la)
    out["y"] = segment_means(y, f, la)
    if lon is not None and lat is not None and "lon" in out.columns:
        out["lon"] = segment_means(np.asarray(lon, dtype=np.float64), f, la)
        out["lat"] = segment_means(np.asarray(lat, dtype=np.float64), f, la)
    changed_start = f != f0
    if changed_start.any() and "start" in out.columns:
        out.loc[changed_start, "start"] = pd.to_datetime(t[f][changed_start], unit="s", utc=True).astype(
            out["start"].dtype).to_numpy()
    changed_end = la != l0
    if changed_end.any() and "end" in out.columns:
        out.loc[changed_end, "end"] = pd.to_datetime(t[la][changed_end], unit="s", utc=True).astype(
            out["end"].dtype).to_numpy()
    return out[out["duration_s"] >= min_duration_s].reset_index(drop=True)


@numba.njit(cache=True, nogil=True)
def _frozen_kernel(codes, t, x, y, accel, vmax, lookback, noise_m, speed, moving_kmh):  # pragma: no cover - numba
    """See :func:`frozen_fixes`: (repeat root per point or -1, stale per point)."""
    n = t.shape[0]
    root = np.full(n, -1, dtype=np.int64)
    for i in range(1, n):
        k = i - 1
        steps = 0
        while k >= 0 and codes[k] == codes[i] and steps < lookback:
            if x[k] == x[i] and y[k] == y[i]:
                root[i] = root[k] if root[k] >= 0 else k
                break
            k -= 1
            steps += 1
    t_acc = vmax / accel
    bad_root = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        # a position first reported at driving speed, repeated: the truck did not
        # stand where it was passing (a terminal holding a stand-still position
        # holds the place it stopped at)
        if root[i] >= 0 and speed[root[i]] >= moving_kmh:
            bad_root[root[i]] = True
        r = root[i]
        if r < 0:
            continue
        # the fixes next to this repeat (before and after) that are elsewhere
        for direction in (-1, 1):
            j = i + direction
            steps = 0
            while 0 <= j < n and codes[j] == codes[i] and steps < lookback:
                if not (x[j] == x[i] and y[j] == y[i]):
                    dt = abs(t[j] - t[i])
                    if dt <= t_acc:
                        reach = 0.5 * accel * dt * dt
                    else:
                        reach = 0.5 * accel * t_acc * t_acc + vmax * (dt - t_acc)
                    d = np.sqrt((x[j] - x[i]) ** 2 + (y[j] - y[i]) ** 2)
                    if d > reach + noise_m:
                        bad_root[r] = True
                    break
                j += direction
                steps += 1
    stale = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if root[i] >= 0 and bad_root[root[i]]:
            stale[i] = True
    return stale


def frozen_fixes(codes: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray, *,
                 max_speed_kmh: float, noise_m: float = 100.0,
                 speed_kmh: np.ndarray | None = None) -> np.ndarray:
    """Fixes that repeat an earlier position while the truck drove on (a frozen terminal).

    A terminal in a tunnel or under a covered antenna keeps sending its last position
    (speed 0) while the truck drives on; fixes then resume further along. A repeat —
    the exact position of one of the vehicle's last few fixes (a second terminal on
    the truck may report in between) — is stale when a fix next to it, before or
    after, lies farther away than a truck starting from standstill could have got in
    the time between (``_MAX_ACCEL_MPS2``, at most ``max_speed_kmh``) plus the GPS
    scatter ``noise_m`` (a second terminal's fix seconds apart), or when the position
    was first reported at driving speed (``speed_kmh`` >= 10; a terminal holding a
    stand-still position holds where the truck stopped, not where it passed): the
    truck did not stand there. Then every repeat of that position is. A truck that really
    stood (terminals that hold the position when stationary) leaves from the spot,
    so its repeats are kept. The first fix of the position is genuine.

    Parameters
    ----------
    codes, t, x, y : numpy.ndarray
        Vehicle code, epoch seconds and metric position per point, sorted by vehicle
        and time.
    max_speed_kmh : float
        Top speed of a haul truck, km/h.
    noise_m : float, default 100
        Scatter between two fixes of a standing truck, metres (the stop diameter).
    speed_kmh : numpy.ndarray, optional
        Reported speed per point (NaN: unknown).

    Returns
    -------
    numpy.ndarray of bool
        True for the stale repeats.
    """
    n = len(t)
    if n < 3:
        return np.zeros(n, dtype=bool)
    return _frozen_kernel(np.asarray(codes, dtype=np.int64), np.asarray(t, dtype=np.float64),
                          np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64),
                          _MAX_ACCEL_MPS2, max_speed_kmh / 3.6, 8, float(noise_m),
                          np.full(n, np.nan) if speed_kmh is None else np.asarray(speed_kmh, dtype=np.float64),
                          _LOAD_MOVING_KMH)


def lift_runs(codes: np.ndarray, lift: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last point of each run of raised-body readings (unknown readings,
    e.g. a second terminal without sensors, are skipped, not breaking a run)."""
    k = np.flatnonzero(known)
    if len(k) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    up_ = lift[k]
    ck = codes[k]
    new = up_ & ~np.r_[False, up_[:-1] & (ck[1:] == ck[:-1])]
    end = up_ & ~np.r_[up_[1:] & (ck[1:] == ck[:-1]), False]
    return k[new].astype(np.int64), k[end].astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _turn_back(x, y, codes, fi, la, reach_m, max_steps):  # pragma: no cover - numba
    """Per event: cosine between the way in and the way out (-1: the truck turned back).

    The way in runs from the last fix at least ``reach_m`` before the event's centre,
    the way out to the first fix that far after (at most ``max_steps`` fixes away);
    2.0 when either is missing.
    """
    out = np.full(fi.shape[0], 2.0)
    n = x.shape[0]
    for e in range(fi.shape[0]):
        a = fi[e]
        b = la[e]
        cx = 0.0
        cy = 0.0
        for i in range(a, b + 1):
            cx += x[i]
            cy += y[i]
        cx /= b - a + 1
        cy /= b - a + 1
        i0 = -1
        i = a - 1
        steps = 0
        while i >= 0 and codes[i] == codes[a] and steps < max_steps:
            if (x[i] - cx) ** 2 + (y[i] - cy) ** 2 >= reach_m * reach_m:
                i0 = i
                break
            i -= 1
            steps += 1
        i1 = -1
        i = b + 1
        steps = 0
        while i < n and codes[i] == codes[b] and steps < max_steps:
            if (x[i] - cx) ** 2 + (y[i] - cy) ** 2 >= reach_m * reach_m:
                i1 = i
                break
            i += 1
            steps += 1
        if i0 < 0 or i1 < 0:
            continue
        ux = cx - x[i0]
        uy = cy - y[i0]
        vx = x[i1] - cx
        vy = y[i1] - cy
        nu = np.sqrt(ux * ux + uy * uy)
        nv = np.sqrt(vx * vx + vy * vy)
        if nu > 0 and nv > 0:
            out[e] = (ux * vx + uy * vy) / (nu * nv)
    return out


# --------------------------------------------------------------------------- events


def _runs(values: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index of runs of equal (value, vehicle)."""
    n = len(values)
    new = np.ones(n, dtype=bool)
    new[1:] = (values[1:] != values[:-1]) | (codes[1:] != codes[:-1])
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, n - 1]
    return first, last


def _longest_stop_inside(
    e_first: np.ndarray, e_last: np.ndarray, s_first: np.ndarray, s_last: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Per event [e_first, e_last], the longest overlap with a stop [s_first, s_last], seconds.

    Stops are sorted and disjoint (one vehicle's points never interleave another's), so
    the stops overlapping an event are one contiguous range; pairs are expanded with
    ``np.repeat`` (each stop meets at most a couple of events).
    """
    out = np.zeros(len(e_first), dtype=np.float64)
    if len(e_first) == 0 or len(s_first) == 0:
        return out
    order = np.argsort(s_first, kind="stable")
    s_first, s_last = s_first[order], s_last[order]
    lo = np.searchsorted(s_last, e_first, side="left")
    hi = np.searchsorted(s_first, e_last, side="right")
    cnt = np.maximum(hi - lo, 0)
    if cnt.sum() == 0:
        return out
    ev = np.repeat(np.arange(len(e_first)), cnt)
    offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    st = np.repeat(lo, cnt) + offs
    a = np.maximum(s_first[st], e_first[ev])
    b = np.minimum(s_last[st], e_last[ev])
    span = np.where(b >= a, t[b] - t[np.minimum(a, b)], 0.0)
    np.maximum.at(out, ev, span)
    return out


def build_events(
    points: pd.DataFrame,
    codes: np.ndarray,
    t: np.ndarray,
    site_pos: np.ndarray,
    site_kinds: np.ndarray,
    loaded: np.ndarray,
    lift: np.ndarray,
    stops: pd.DataFrame,
    *,
    stop_min_duration_s: float,
    load_min_duration_s: float,
    unload_min_duration_s: float,
    visit_merge_s: float,
    gap_max_s: float,
    in_core: np.ndarray | None = None,
    lift_known: np.ndarray | None = None,
    stale: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build the time-ordered events (visits, open stops, dark gaps) of every vehicle.

    Parameters
    ----------
    points : pandas.DataFrame
        Canonical points, sorted by ``vehicle_key``, ``time`` (positions are used).
    codes : numpy.ndarray
        Vehicle code per point (non-decreasing).
    t : numpy.ndarray
        Time per point, epoch seconds.
    site_pos : numpy.ndarray
        :func:`haulwatch.geo.zones.site_of_points` of each point.
    site_kinds : numpy.ndarray
        ``kind`` of each site (indexed by ``site_pos``).
    loaded, lift : numpy.ndarray
        From :func:`loaded_state`.
    stops : pandas.DataFrame
        :func:`haulwatch.geo.stops.detect_stops` of ``points``.
    stop_min_duration_s : float
        Shortest depot visit, seconds.
    load_min_duration_s, unload_min_duration_s : float
        Shortest origin / disposal visit, seconds (depot visits need ``stop_min_duration_s``).
    visit_merge_s : float
        Stays at one site separated by a shorter excursion merge, seconds.
    gap_max_s : float
        Longer spells without points are gaps, seconds.
    in_core : numpy.ndarray, optional
        :func:`haulwatch.geo.zones.inside_own_site` per point. Gives each visit its ``core_s``: first to
        last point inside the site polygon proper (not its buffer), seconds; 0 when
        the truck only touched the buffer, and ``entered`` (at least one point inside
        the polygon proper). Without it ``core_s`` is the duration and ``entered`` True.
    lift_known : numpy.ndarray, optional
        Per point: the ``lift`` reading is present (a second terminal on the truck may
        send none). A run of raised-body readings outside every visit and stop — a
        dump while creeping, no stop — becomes an open-stop event of its own (``lift``
        set). Default: every reading known.
    stale : numpy.ndarray, optional
        :func:`frozen_fixes` per point: their positions are unknown, so no raised-body
        run is placed on them, and a load change first read on one is not a late
        report of the event before (it goes to the nearest event in time).

    Every event also gets ``turn_back``: the cosine between the way into the event and
    the way out of it (``-1``: the truck left the way it came, as from a dead end in a
    field; ``2``: unknown), and ``dwell_s``: the longest stop of ``stops`` (standing within
    the stop diameter) inside it, seconds — a visit crossed at walking pace has none.

    Returns
    -------
    pandas.DataFrame
        :data:`EVENT_COLUMNS`, sorted by vehicle and time, non-overlapping.
    """
    n = len(points)
    x = points["x"].to_numpy(dtype=np.float64)
    y = points["y"].to_numpy(dtype=np.float64)
    frames = []

    # ---- visits: runs of points at one site, merged across short excursions
    first, last = _runs(site_pos, codes)
    at = site_pos[first] >= 0
    first, last = first[at], last[at]
    if len(first) > 2:
        # a stray fix or two in another site's zone (a multipath jump) between two stays
        # at one site does not split the visit: such a run is dropped
        r_site = site_pos[first]
        r_code = codes[first]
        k = np.arange(1, len(first) - 1)
        stray = (
            (r_site[k - 1] == r_site[k + 1]) & (r_site[k] != r_site[k - 1])
            & (r_code[k - 1] == r_code[k + 1])
            & (last[k] - first[k] + 1 <= _SPLIT_MAX_FIXES)
            & (t[first[k + 1]] - t[last[k - 1]] <= _SPLIT_MAX_GAP_S)
        )
        if stray.any():
            keep = np.ones(len(first), dtype=bool)
            keep[k[stray]] = False
            first, last = first[keep], last[keep]
    covered = np.zeros(n + 1, dtype=np.int32)
    if len(first):
        r_site = site_pos[first]
        r_code = codes[first]
        new = np.ones(len(first), dtype=bool)
        # one visit across a short excursion, or across a few stray fixes (a multipath
        # jump out of the site seen by a terminal reporting every minute or two)
        gap_s = t[first[1:]] - t[last[:-1]]
        new[1:] = ~(
            (r_site[1:] == r_site[:-1])
            & (r_code[1:] == r_code[:-1])
            & ((gap_s <= visit_merge_s)
               | ((first[1:] - last[:-1] - 1 <= _SPLIT_MAX_FIXES) & (gap_s <= _SPLIT_MAX_GAP_S)))
        )
        group = np.cumsum(new) - 1
        v_first = first[new]
        v_last = np.zeros(len(v_first), dtype=np.int64)
        np.maximum.at(v_last, group, last)
        v_site = r_site[new]
        v_kind = site_kinds[v_site]
        dur = t[v_last] - t[v_first]
        need = np.where(
            v_kind == "origin",
            load_min_duration_s,
            np.where(v_kind == "disposal", unload_min_duration_s, stop_min_duration_s),
        )
        ok = dur >= need
        # back on air after a dark spell standing in an origin: part of the stay was
        # unseen, so a stand-still there is a visit (routes: loading again after a dark dump)
        back_on_air = np.flatnonzero((np.diff(t) > gap_max_s) & (codes[1:] == codes[:-1])) + 1
        ok |= (v_kind == "origin") & np.isin(v_first, back_on_air) & (dur >= stop_min_duration_s)
        if not ok.all():
            # a stay of any length where the sensors saw the load change or the body
            # go up is a loading / unloading visit (quick tips happen)
            flip = np.zeros(n + 1, dtype=np.int32)
            if n > 1:
                changed = (
                    (codes[1:] == codes[:-1])
                    & (loaded[1:] != loaded[:-1])
                    & ~np.isnan(loaded[1:])
                    & ~np.isnan(loaded[:-1])
                )
                flip[2:] = changed  # flip[j + 1] marks a change at point j (new state)
            flip[1:] += lift.astype(np.int32)
            cum_flip = np.cumsum(flip, dtype=np.int32)  # cum_flip[k] = marks at points < k
            last_in = np.minimum(v_last + 1, n - 1)
            sensed = (cum_flip[last_in + 1] - cum_flip[v_first]) > 0
            ok |= sensed
            del flip, cum_flip
        v_first, v_last, v_site, v_kind, dur = v_first[ok], v_last[ok], v_site[ok], v_kind[ok], dur[ok]
        np.add.at(covered, v_first, 1)
        np.add.at(covered, v_last + 1, -1)
        frames.append(
            pd.DataFrame(
                {
                    "vehicle_code": codes[v_first],
                    "kind": v_kind.astype(object),
                    "site_pos": v_site,
                    "i_first": v_first,
                    "i_last": v_last,
                    "has_gap": False,
                    "gap_i": -1,
                }
            )
        )
    in_visit = np.cumsum(covered, dtype=np.int32)[:n] > 0
    del covered
    kept_first = np.sort(v_first) if len(first) else np.empty(0, dtype=np.int64)
    kept_last = np.sort(v_last) if len(first) else np.empty(0, dtype=np.int64)
    cum_visit = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(in_visit, dtype=np.int32, out=cum_visit[1:])

    # ---- open stops: dwells outside every site, not touching a visit
    s_first = stops["i_first"].to_numpy(dtype=np.int64)
    s_last = stops["i_last"].to_numpy(dtype=np.int64)
    cum_site = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(site_pos >= 0, dtype=np.int32, out=cum_site[1:])
    n_pts = s_last - s_first + 1
    frac_at_site = (cum_site[s_last + 1] - cum_site[s_first]) / np.maximum(n_pts, 1)
    touches_visit = (cum_visit[s_last + 1] - cum_visit[s_first]) > 0
    open_ = (frac_at_site < 0.5) & ~touches_visit
    s_first, s_last = s_first[open_], s_last[open_]
    del cum_site, cum_visit
    stop_cover = np.zeros(n + 1, dtype=np.int32)
    np.add.at(stop_cover, s_first, 1)
    np.add.at(stop_cover, s_last + 1, -1)
    in_stop = np.cumsum(stop_cover, dtype=np.int32)[:n] > 0
    del stop_cover

    # ---- rolling dumps: the body raised while moving, in no visit; a run that
    # overlaps stops (creeping slowly enough to look like one) joins them into one event
    known = np.ones(n, dtype=bool) if lift_known is None else np.asarray(lift_known, dtype=bool)
    stale = np.zeros(n, dtype=bool) if stale is None else np.asarray(stale, dtype=bool)
    l_first, l_last = lift_runs(codes, np.asarray(lift, dtype=bool) & known & ~stale, known & ~stale)
    if len(l_first):
        busy = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(in_visit, dtype=np.int32, out=busy[1:])
        free = (busy[l_last + 1] - busy[l_first]) == 0
        l_first, l_last = l_first[free], l_last[free]
        if len(l_first):
            a = np.r_[s_first, l_first]
            b = np.r_[s_last, l_last]
            order_s = np.lexsort((b, a))
            a, b = a[order_s], b[order_s]
            # union of overlapping intervals (stops never overlap each other)
            reach = np.maximum.accumulate(b)
            new_iv = np.r_[True, a[1:] > reach[:-1]]
            grp = np.cumsum(new_iv) - 1
            s_first = a[new_iv]
            s_last = np.zeros(len(s_first), dtype=np.int64)
            np.maximum.at(s_last, grp, b)
            stop_cover = np.zeros(n + 1, dtype=np.int32)
            np.add.at(stop_cover, s_first, 1)
            np.add.at(stop_cover, s_last + 1, -1)
            in_stop = np.cumsum(stop_cover, dtype=np.int32)[:n] > 0
            del stop_cover

    # ---- gaps: long dark spells between consecutive points of one vehicle
    dt = np.diff(t)
    g_after = np.flatnonzero((dt > gap_max_s) & (codes[1:] == codes[:-1])) + 1
    g_before = g_after - 1
    inside_stop = in_stop[g_before] & in_stop[g_after]
    stop_has_gap = np.zeros(len(s_first), dtype=bool)
    stop_gap_i = np.full(len(s_first), -1, dtype=np.int64)
    if len(s_first) and inside_stop.any():
        gb = g_before[inside_stop]
        k = np.searchsorted(s_first, gb, side="right") - 1
        stop_has_gap[k] = True
        # the longest dark spell of each stop (where a dark dump happened)
        order = np.lexsort((dt[gb], k))
        last_of_k = np.r_[k[order][1:] != k[order][:-1], True]
        stop_gap_i[k[order][last_of_k]] = gb[order][last_of_k]
    # a dark spell inside one visit is part of it (parked at the site); one that leaves
    # or reaches a visit (the terminal went off at the gate) is a gap event of its own
    vis_b = np.searchsorted(kept_first, g_before, side="right") - 1
    vis_a = np.searchsorted(kept_first, g_after, side="right") - 1
    same_visit = in_visit[g_before] & in_visit[g_after] & (vis_b == vis_a) & (vis_b >= 0)
    same_visit &= g_after <= kept_last[np.clip(vis_b, 0, None)] if len(kept_last) else False
    keep_gap = ~(same_visit | inside_stop)
    g_before, g_after = g_before[keep_gap], g_after[keep_gap]
    frames.append(
        pd.DataFrame(
            {
                "vehicle_code": codes[s_first],
                "kind": "stop",
                "site_pos": -1,
                "i_first": s_first,
                "i_last": s_last,
                "has_gap": stop_has_gap,
                "gap_i": stop_gap_i,
            }
        )
    )
    frames.append(
        pd.DataFrame(
            {
                "vehicle_code": codes[g_before],
                "kind": "gap",
                "site_pos": -1,
                "i_first": g_before,
                "i_last": g_after,
                "has_gap": True,
                "gap_i": g_before,
            }
        )
    )
    events = pd.concat(frames, ignore_index=True)
    events = events.astype(
        {"vehicle_code": np.int64, "site_pos": np.int64, "i_first": np.int64, "i_last": np.int64,
         "gap_i": np.int64,
         "has_gap": bool}
    )
    events = events.sort_values(["i_first", "i_last"], kind="stable", ignore_index=True)
    # a gap event that begins at the last point of a stop belongs to neither: keep both,
    # they are adjacent (stop ends where the dark spell begins)
    fi = events["i_first"].to_numpy()
    la = events["i_last"].to_numpy()
    events["start_s"] = t[fi] if len(fi) else np.empty(0)
    events["end_s"] = t[la] if len(la) else np.empty(0)
    events["duration_s"] = events["end_s"] - events["start_s"]
    gap_ev = (events["kind"] == "gap").to_numpy()
    # place of an event: mean of its points (a gap: the last point before it)
    la_place = np.where(gap_ev, fi, la).astype(np.int64)
    events["x"] = segment_means(x, fi.astype(np.int64), la_place)
    events["y"] = segment_means(y, fi.astype(np.int64), la_place)

    # ---- sensors: lift raised inside the event; load transitions given to events
    events["lift"] = segment_means(lift, fi.astype(np.int64), la.astype(np.int64)) > 0
    turn = _turn_back(x, y, codes, fi.astype(np.int64), la.astype(np.int64), 150.0, 60)
    events["turn_back"] = np.where(gap_ev, 2.0, turn) if len(fi) else np.empty(0)
    events["dwell_s"] = _longest_stop_inside(
        fi.astype(np.int64), la.astype(np.int64), stops["i_first"].to_numpy(dtype=np.int64),
        stops["i_last"].to_numpy(dtype=np.int64), t,
    )
    if in_core is None or len(events) == 0:
        events["core_s"] = events["duration_s"].to_numpy(dtype=np.float64)
        events["entered"] = True
    else:
        # first / last core point of each event: the next core point at or after its
        # first point, the last core point at or before its last point
        # (positions of the core points, searched: no array as long as the points)
        core_at = np.flatnonzero(np.asarray(in_core, dtype=bool))
        c_first = np.r_[core_at, n][np.searchsorted(core_at, fi, side="left")]
        c_last = np.r_[-1, core_at][np.searchsorted(core_at, la, side="right")]
        ok = (c_first <= la) & (c_last >= fi) & (c_last >= c_first)
        c_first_t = t[np.clip(c_first, 0, n - 1)]
        c_last_t = t[np.clip(c_last, 0, n - 1)]
        events["core_s"] = np.where(ok & ~gap_ev, c_last_t - c_first_t, 0.0)
        events["entered"] = ok & ~gap_ev
    up = np.zeros(len(events), dtype=bool)
    down = np.zeros(len(events), dtype=bool)
    change_j = np.empty(0, dtype=np.int64)
    change_up = np.empty(0, dtype=bool)
    if n > 1 and len(events):
        prev_l = loaded[:-1]
        next_l = loaded[1:]
        same = codes[1:] == codes[:-1]
        change = same & ~np.isnan(prev_l) & ~np.isnan(next_l) & (prev_l != next_l)
        j = np.flatnonzero(change) + 1  # first point with the new state
        is_up = next_l[j - 1] > prev_l[j - 1]
        ev_code = events["vehicle_code"].to_numpy()
        k = np.searchsorted(fi, j, side="right") - 1
        k_next = k + 1
        has_prev = (k >= 0) & (ev_code[np.clip(k, 0, None)] == codes[j])
        has_next = (k_next < len(events)) & (
            ev_code[np.clip(k_next, None, len(events) - 1)] == codes[j]
        )
        kp = np.clip(k, 0, len(events) - 1)
        kn = np.clip(k_next, 0, len(events) - 1)
        inside_prev = has_prev & (j <= la[kp] + 1)
        d_prev = np.where(has_prev, t[j] - t[la[kp]], np.inf)
        d_next = np.where(has_next, t[fi[kn]] - t[j - 1], np.inf)
        # a load cannot change while driving: a change first seen on the road was
        # reported late, so it belongs to the event before (up to _SENSOR_LATE_S late)
        # when it fits it (loaded at an origin, emptied at a disposal site, anything at
        # an open stop, a dark spell or a depot), else to the nearest event in time
        k_prev = events["kind"].to_numpy()[kp]
        fits = np.where(is_up, k_prev != "disposal", k_prev != "origin")
        late = fits & (d_prev <= _SENSOR_LATE_S) & ~stale[j]
        target = np.where(inside_prev | (d_prev <= d_next) | late, kp, kn)
        # a dark spell that begins at a visit's last point: a load reported at its far
        # end belongs to the visit when it is what the visit does (loaded at an origin,
        # emptied at a disposal site, anything in a depot); else to the dark spell
        ev_kind = events["kind"].to_numpy()
        tg = np.clip(target, 0, len(events) - 1)
        before = np.clip(tg - 1, 0, None)
        adjacent = (
            (ev_kind[tg] == "gap") & (tg > 0) & (ev_code[before] == ev_code[tg]) & (la[before] == fi[tg])
        )
        own = (
            ((ev_kind[before] == "origin") & is_up)
            | ((ev_kind[before] == "disposal") & ~is_up)
            | (ev_kind[before] == "depot")
        )
        target = np.where(adjacent & own, before, target)
        valid = has_prev | has_next
        np.logical_or.at(up, target[valid & is_up], True)
        np.logical_or.at(down, target[valid & ~is_up], True)
        change_j, change_up = j, is_up
    events["up"] = up
    events["down"] = down
    # a frozen terminal's repeats and the fix they repeat are no turning point
    frozen_near = stale | np.r_[stale[1:], False]
    turns = _turn_events(points, codes, t, x, y, in_visit | in_stop | (site_pos >= 0) | frozen_near,
                         g_before, g_after)
    if len(turns) and len(change_j):
        # a load change first read at a turning point (or the fix after it) happened there:
        # a short tip seen as one fix
        t_idx = turns["i_first"].to_numpy(dtype=np.int64)
        for lag in (0, 1):
            pos = np.searchsorted(t_idx, change_j - lag)
            hit = (pos < len(t_idx)) & (t_idx[np.minimum(pos, len(t_idx) - 1)] == change_j - lag)
            col_up = turns["up"].to_numpy(dtype=bool).copy()
            col_down = turns["down"].to_numpy(dtype=bool).copy()
            col_up[pos[hit & change_up]] = True
            col_down[pos[hit & ~change_up]] = True
            turns["up"] = col_up
            turns["down"] = col_down
    if len(turns):
        events = pd.concat([events, turns], ignore_index=True).sort_values(
            ["i_first", "i_last"], kind="stable", ignore_index=True)
    return events[list(EVENT_COLUMNS)]


def _turn_events(points: pd.DataFrame, codes: np.ndarray, t: np.ndarray, x: np.ndarray, y: np.ndarray,
                 busy: np.ndarray, g_before: np.ndarray, g_after: np.ndarray) -> pd.DataFrame:
    """Single fixes where a truck standing or rolling slowly turned back (``kind`` "turn").

    A tip of a minute or two seen by a terminal reporting every one or two minutes is
    one fix, no stop: the place a loaded truck turned back at, outside every visit,
    stop and dark-spell edge, is where such a dump can only have been. Only used when
    an undelivered trip has no stop or dark spell to blame (``run_trips``).
    """
    cand = ~busy
    if "speed_kmh" in points.columns:
        speed = pd.to_numeric(points["speed_kmh"], errors="coerce").to_numpy(dtype=np.float64)
        cand &= ~(speed >= _LOAD_MOVING_KMH)
    cand[g_before] = False
    cand[g_after] = False
    idx = np.flatnonzero(cand).astype(np.int64)
    if len(idx) == 0:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    cos = _turn_back(x, y, codes, idx, idx, 150.0, 60)
    sharp = cos < _TURN_POINT_COS
    idx, cos = idx[sharp], cos[sharp]
    if len(idx) == 0:
        return pd.DataFrame(columns=list(EVENT_COLUMNS))
    # one per run of neighbouring fixes: the sharpest
    run = np.cumsum(np.r_[True, (np.diff(idx) > 1) | (codes[idx[1:]] != codes[idx[:-1]])])
    order = np.lexsort((cos, run))
    first = np.r_[True, run[order][1:] != run[order][:-1]]
    idx, cos = idx[order][first], cos[order][first]
    n = len(idx)
    return pd.DataFrame({
        "vehicle_code": codes[idx].astype(np.int64), "kind": "turn", "site_pos": np.full(n, -1, np.int64),
        "i_first": idx, "i_last": idx, "start_s": t[idx], "end_s": t[idx], "duration_s": np.zeros(n),
        "x": x[idx], "y": y[idx], "up": False, "down": False, "lift": False, "has_gap": False,
        "gap_i": np.full(n, -1, np.int64), "core_s": np.zeros(n), "entered": False,
        "dwell_s": np.zeros(n), "turn_back": cos,
    })


# --------------------------------------------------------------------------- trips


@dataclass
class TripsResult:
    """Output of :func:`run_trips` (positions refer to the events frame)."""

    trips: pd.DataFrame
    """One row per haul trip (:data:`TRIP_COLUMNS` + event positions ``ev_load``, ``ev_close``)."""
    dumps: pd.DataFrame
    """Chosen dump per undelivered trip: ``trip_pos``, ``ev``, ``reason``, ``after``."""
    loadings: pd.DataFrame
    """Every loading visit: ``vehicle_code``, ``ev``, ``origin_kind``, ``trip_pos``."""


def run_trips(
    events: pd.DataFrame,
    site_kinds: np.ndarray,
    site_expired_at: list,
    has_load: np.ndarray,
    has_lift: np.ndarray,
    *,
    load_min_duration_s: float,
    dump_min_duration_s: float,
    stop_min_duration_s: float = 120.0,
) -> TripsResult:
    """Run the load state machine over the events of every vehicle.

    Parameters
    ----------
    events : pandas.DataFrame
        From :func:`build_events`.
    site_kinds : numpy.ndarray
        ``kind`` per site position.
    site_expired_at : list
        Callable per site position ``f(epoch_s) -> bool`` telling whether an
        origin's permit does not cover that moment (None: always permitted).
    has_load, has_lift : numpy.ndarray
        Per vehicle code: the terminal reports ``load`` / ``lift``.
    load_min_duration_s : float
        Shortest dwell outside sites that may be a loading (unpermitted origin), seconds.
    dump_min_duration_s : float
        Shortest stop outside sites that may be a dump, seconds.
    stop_min_duration_s : float, default 120
        A loaded truck (judged from its track) reloads at an origin only when it
        stood still there this long (``dwell_s``) and spent ``load_min_duration_s``
        inside the polygon proper (``core_s``); else it was passing by, seconds.

    Returns
    -------
    TripsResult
    """
    code = events["vehicle_code"].to_numpy()
    kind = events["kind"].to_numpy().copy()
    site = events["site_pos"].to_numpy()
    start = events["start_s"].to_numpy()
    dur = events["duration_s"].to_numpy()
    up = events["up"].to_numpy()
    down = events["down"].to_numpy()
    lift = events["lift"].to_numpy()
    core = events["core_s"].to_numpy() if "core_s" in events.columns else dur
    dwell = events["dwell_s"].to_numpy() if "dwell_s" in events.columns else dur
    turn = events["turn_back"].to_numpy() if "turn_back" in events.columns else np.full(len(events), 2.0)
    ex = events["x"].to_numpy(dtype=np.float64) if "x" in events.columns else np.zeros(len(events))
    ey = events["y"].to_numpy(dtype=np.float64) if "y" in events.columns else np.zeros(len(events))
    entered = events["entered"].to_numpy(dtype=bool) if "entered" in events.columns else np.ones(len(events), bool)
    # a disposal site outside its permit dates is no permitted place: a stay there is
    # a stop in the open (where a load may be dumped), not an unloading visit
    for e in np.flatnonzero(kind == "disposal"):
        check = site_expired_at[site[e]] if site[e] < len(site_expired_at) else None
        if check is not None and check(start[e]):
            kind[e] = "stop"

    trips: list[dict] = []
    dumps: list[dict] = []
    loadings: list[dict] = []

    def origin_kind_of(e: int) -> str:
        if kind[e] == "origin":
            check = site_expired_at[site[e]]
            return "expired" if check is not None and check(start[e]) else "permitted"
        if kind[e] in ("stop", "gap"):
            return "black"
        return "other"

    def candidate(e: int) -> bool:
        return (kind[e] == "stop" and dur[e] >= dump_min_duration_s) or kind[e] == "gap"

    def close_undelivered(trip: dict, e_close: int, after: str, sensed_at: int = -1,
                          forced: int = -1) -> None:
        trip["ev_close"] = e_close
        cands = trip["cands"]
        trip["status"] = "undelivered"
        if sensed_at >= 0 and sensed_at not in cands:
            cands.append(sensed_at)
        if forced >= 0:
            dumps.append({"trip_pos": len(trips), "ev": forced, "reason": "track", "after": after})
            trip["status"] = "dumped"
            trip["ev_dump"] = forced
        elif trip["turns"] and not any(kind[c] == "gap" or turn[c] < _TURN_BACK_COS or lift[c] or down[c]
                                       for c in cands):
            # no dark spell, no stop it turned back at, no sensor: the sharpest turning
            # point beats stops on the way (a queue, a long red light)
            pick = min(trip["turns"], key=lambda c: (turn[c], c))
            dumps.append({"trip_pos": len(trips), "ev": pick, "reason": "track", "after": after})
            trip["status"] = "dumped"
            trip["ev_dump"] = pick
        elif cands:
            sensed = [c for c in cands if c == sensed_at or lift[c] or down[c]]
            # without a sensor: a dark spell, or a stop the truck left the way it came
            # (a dead end in a field), before any stop on the way (a red light, a queue),
            # then the longest; a truck back at its origin went out and came back, so
            # among stops on the way the one farthest from where it loaded (where it
            # turned for home) goes before the longest
            lx, ly = ex[trip["ev_load"]], ey[trip["ev_load"]]

            def rank(c: int) -> tuple:
                far = float(np.hypot(ex[c] - lx, ey[c] - ly)) if after == "origin" else 0.0
                return (kind[c] == "gap" or turn[c] < _TURN_BACK_COS, far, dur[c], -c)

            pick = sensed_at if sensed_at >= 0 else (sensed[0] if sensed else max(cands, key=rank))
            reason = "sensor" if sensed else "track"
            dumps.append({"trip_pos": len(trips), "ev": pick, "reason": reason, "after": after})
            trip["status"] = "dumped"
            trip["ev_dump"] = pick
        trips.append(trip)

    def back_at_origin_from_dark(e: int, first: int, trip: dict) -> bool:
        """A loaded truck went dark in the open and came back on air standing in an
        origin (loading again, part of it unseen): the load did not come back with it."""
        return bool(
            kind[e] == "origin" and e > first and kind[e - 1] == "gap" and (e - 1) in trip["cands"]
            and entered[e] and dwell[e] >= stop_min_duration_s
        )

    def open_trip(e: int, okind: str, by: str) -> dict:
        loadings.append({"vehicle_code": code[e], "ev": e, "origin_kind": okind, "trip_pos": len(trips)})
        return {"ev_load": e, "ev_close": -1, "origin_kind": okind, "cands": [], "loaded_by": by,
                "status": "open", "ev_dump": -1, "depot_after": False, "lift_at": -1,
                "depot_ev": -1, "frozen": False, "turns": []}

    n_ev = len(events)
    i = 0
    while i < n_ev:
        j = i
        while j < n_ev and code[j] == code[i]:
            j += 1
        v = code[i]
        sensor = bool(has_load[v])
        use_lift = bool(has_lift[v])
        state = "unknown"
        trip: dict | None = None
        black: list[int] = []
        if sensor:
            # data starting mid-trip: when the sensor's first change is loaded → empty,
            # the truck was loaded from its first fix (origin unknown, not a loading visit)
            flips = np.flatnonzero(up[i:j] | down[i:j])
            if len(flips) and down[i + flips[0]] and not up[i + flips[0]]:
                trip = open_trip(i, "unknown", "sensor")
                loadings.pop()
                state = "loaded"
        for e in range(i, j):
            k = kind[e]
            if k == "turn":  # a turning point: the dump's place of last resort
                if state == "loaded" and trip is not None:
                    if sensor and down[e]:  # the sensor went empty right there
                        close_undelivered(trip, e, "sensor", sensed_at=e)
                        trip = None
                        state = "empty"
                    else:
                        trip["turns"].append(e)
                continue
            if sensor:
                if up[e] and state != "loaded":
                    trip = open_trip(e, origin_kind_of(e), "sensor")
                    state = "loaded"
                    if down[e] and k != "origin":
                        pass  # loaded and unloaded at one place: keep loaded (next event decides)
                    continue
                if (state == "loaded" and trip is not None and not up[e] and not down[e]
                        and back_at_origin_from_dark(e, i, trip)):
                    # the sensor never saw "empty": the terminal was off
                    close_undelivered(trip, e, "origin", forced=e - 1)
                    trip = open_trip(e, origin_kind_of(e), "sensor")
                    continue
                # the load sensor decides; a raised body alone closes the trip only at a
                # disposal site (elsewhere it marks the stop, and the sensor must agree)
                if state == "loaded" and trip is not None and (down[e] or (use_lift and lift[e] and k == "disposal")):
                    if k == "disposal":
                        trip["ev_close"] = e
                        trip["status"] = "delivered"
                        trips.append(trip)
                    elif k in ("stop", "gap"):
                        close_undelivered(trip, e, "sensor", sensed_at=e)
                    else:
                        close_undelivered(trip, e, "origin" if k == "origin" else "depot")
                    trip = None
                    state = "empty"
                    continue
                if down[e]:
                    state = "empty"
                if state == "loaded" and trip is not None and (
                    candidate(e) or (use_lift and lift[e] and k in ("stop", "gap"))
                ):
                    trip["cands"].append(e)
                continue
            # ---- track-only (lift used when present)
            if k == "origin":
                if state == "loaded" and trip is not None and back_at_origin_from_dark(e, i, trip):
                    close_undelivered(trip, e, "origin", forced=e - 1)
                    trip = open_trip(e, origin_kind_of(e), "track")
                    black = []
                    continue
                if state == "loaded" and trip is not None:
                    if core[e] < load_min_duration_s or dwell[e] < stop_min_duration_s:
                        # a loaded truck that only waited by the fence, or crossed the
                        # site without standing still, did not load there: the trip goes on
                        continue
                    close_undelivered(trip, e, "origin")
                elif core[e] < stop_min_duration_s:
                    # an empty truck that only queued by the gate (the buffer) and never
                    # stood inside the site did not load there
                    continue
                trip = open_trip(e, origin_kind_of(e), "track")
                state = "loaded"
                black = []
            elif k == "disposal":
                if not entered[e]:
                    # waited only in the buffer (a red light or a queue by the fence) and
                    # never drove in: no unloading here
                    continue
                if state == "loaded" and trip is not None:
                    if trip["lift_at"] >= 0 and not lift[e]:
                        # tipped on the way and not here: the load was dumped there
                        close_undelivered(trip, e, "disposal", sensed_at=trip["lift_at"])
                    else:
                        trip["ev_close"] = e
                        trip["status"] = "delivered"
                        trips.append(trip)
                elif state == "empty" and black:
                    b = max(black, key=lambda c: (dur[c], c))
                    t_ = open_trip(b, "black", "track")
                    t_["ev_close"] = e
                    t_["status"] = "delivered"
                    trips.append(t_)
                elif state == "unknown":
                    t_ = open_trip(e, "unknown", "track")
                    loadings.pop()  # no loading seen: not a loading visit
                    t_["ev_close"] = e
                    t_["status"] = "delivered"
                    trips.append(t_)
                trip = None
                state = "empty"
                black = []
            elif k == "depot":
                if state == "loaded" and trip is not None:
                    # a depot stay (lunch, the night) does not end the trip: what the
                    # truck does next decides (a disposal visit delivers the load; the
                    # next loading or the data end leaves it undelivered)
                    trip["depot_after"] = True
                    trip["depot_ev"] = e
                    # stops before the depot are the suspects; later ones only when
                    # there were none (the truck carried its load through lunch)
                    trip["frozen"] = bool(trip["cands"])
                else:
                    state = "empty"
                    black = []
            else:  # open stop or dark gap
                if state == "loaded" and trip is not None:
                    if use_lift and lift[e]:
                        # the body went up here: the dump unless the truck then tips at a
                        # disposal site (a raised reading at a red light is a glitch)
                        if trip["lift_at"] < 0:
                            trip["lift_at"] = e
                        trip["cands"].append(e)
                    elif candidate(e) and not trip["frozen"]:
                        trip["cands"].append(e)
                elif state == "empty" and k == "stop" and dur[e] >= load_min_duration_s:
                    black.append(e)
        if trip is not None:
            if trip["lift_at"] >= 0:
                close_undelivered(trip, -1, "end", sensed_at=trip["lift_at"])
            elif trip["depot_after"] and (trip["cands"] or trip["turns"]):
                close_undelivered(trip, trip["depot_ev"], "depot")
            else:
                trip["status"] = "open"
                trips.append(trip)
        i = j

    trips_df = pd.DataFrame(
        trips, columns=["ev_load", "ev_close", "origin_kind", "loaded_by", "status", "ev_dump", "cands"]
    )
    if len(trips_df):
        trips_df["n_candidates"] = trips_df["cands"].map(len)
    else:
        trips_df["n_candidates"] = pd.Series([], dtype=np.int64)
    trips_df = trips_df.drop(columns="cands")
    dumps_df = pd.DataFrame(dumps, columns=["trip_pos", "ev", "reason", "after"])
    loadings_df = pd.DataFrame(loadings, columns=["vehicle_code", "ev", "origin_kind", "trip_pos"])
    return TripsResult(trips=trips_df, dumps=dumps_df, loadings=loadings_df)


def trips_frame(track: Track, result: TripsResult) -> pd.DataFrame:
    """Turn :func:`run_trips` output into the trips frame (:data:`TRIP_COLUMNS`).

    Parameters
    ----------
    track : Track
        The partition the events were built from.
    result : TripsResult
        From :func:`run_trips`.

    Returns
    -------
    pandas.DataFrame
        One row per haul trip.

    Extra columns ``ev_load``, ``ev_close``, ``ev_dump`` keep the event positions.
    Times are UTC; ``end`` is leaving the disposal site (delivered), the end of the
    dump (dumped), the start of the event that closed it (undelivered) or the
    vehicle's last point (open).
    """
    tr = result.trips
    cols = [*TRIP_COLUMNS, "ev_load", "ev_close", "ev_dump"]
    if len(tr) == 0:
        out = pd.DataFrame({c: pd.Series([], dtype=object) for c in cols})
        for c in ("start", "load_end", "unload_start", "end"):
            out[c] = pd.Series([], dtype="datetime64[ns, UTC]")
        for c in ("i_first", "i_last", "n_candidates", "ev_load", "ev_close", "ev_dump"):
            out[c] = pd.Series([], dtype=np.int64)
        for c in ("load_x", "load_y"):
            out[c] = pd.Series([], dtype=np.float64)
        return out
    ev = track.events
    e_first = ev["i_first"].to_numpy()
    e_last = ev["i_last"].to_numpy()
    e_start = ev["start_s"].to_numpy()
    e_end = ev["end_s"].to_numpy()
    e_site = ev["site_pos"].to_numpy()
    # one more slot for "no site" (-1), so a dataset without sites indexes safely
    site_ids = np.append(track.sites["site_id"].astype(str).to_numpy(dtype=object), "")
    load = tr["ev_load"].to_numpy(dtype=np.int64)
    close = tr["ev_close"].to_numpy(dtype=np.int64)
    dump = tr["ev_dump"].to_numpy(dtype=np.int64)
    status = tr["status"].to_numpy()
    pts_first = e_first[load]
    codes = track.codes[pts_first]
    veh_last = np.searchsorted(track.codes, codes, "right") - 1
    delivered = status == "delivered"
    dumped = status == "dumped"
    has_close = close >= 0
    cl = np.where(has_close, close, 0)
    dp = np.where(dump >= 0, dump, 0)
    i_last = np.where(
        delivered, e_last[cl], np.where(dumped, e_last[dp], np.where(has_close, e_first[cl], veh_last))
    )
    end_s = np.where(
        delivered, e_end[cl], np.where(dumped, e_end[dp], np.where(has_close, e_start[cl], track.t[veh_last]))
    )
    start_s = e_start[load]
    vkey = track.vehicle_keys[codes]
    vid = track.vehicle_ids[codes]
    origin_site = site_ids[e_site[load]]
    disposal_site = np.where(delivered, site_ids[e_site[cl]], "")
    to_utc = lambda s: pd.to_datetime(s, unit="s", utc=True)  # noqa: E731
    unload_start = pd.Series(to_utc(np.where(delivered, e_start[cl], np.nan)))
    return pd.DataFrame(
        {
            "trip_id": [f"{k}:{int(s)}" for k, s in zip(vkey, np.floor(start_s), strict=True)],
            "vehicle_id": vid.astype(object),
            "vehicle_key": vkey.astype(object),
            "status": status.astype(object),
            "origin_kind": tr["origin_kind"].to_numpy().astype(object),
            "origin_site_id": origin_site.astype(object),
            "disposal_site_id": disposal_site.astype(object),
            "start": to_utc(start_s),
            "load_end": to_utc(e_end[load]),
            "unload_start": unload_start.to_numpy(),
            "end": to_utc(end_s),
            "i_first": pts_first.astype(np.int64),
            "i_last": i_last.astype(np.int64),
            "load_x": ev["x"].to_numpy()[load],
            "load_y": ev["y"].to_numpy()[load],
            "loaded_by": tr["loaded_by"].to_numpy().astype(object),
            "n_candidates": tr["n_candidates"].to_numpy(dtype=np.int64),
            "ev_load": load,
            "ev_close": close,
            "ev_dump": dump,
        }
    )
