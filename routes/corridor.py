"""``route_deviation``: a loaded haul trip left its approved route corridor (docs/detection.md).

Judged for delivered haul trips from an origin site to a disposal site when an
approved route connects them (the covering manifest's ``route_id`` if it names
one that connects them, else any route between the two sites). The trip's points
between leaving the loading visit and reaching the unloading visit are measured
against the route line(s) with one vectorized shapely ``distance`` call over all
judged points of the partition; points at the trip's own origin or disposal site
(polygon plus buffer) never count. One alert per trip when at least
``deviation_min_points`` consecutive points spanning ``deviation_min_duration_s``
lie outside the corridor (``corridor_m`` of the route, else ``corridor_default_m``)
and the farthest of them lies ``deviation_min_excess_m`` beyond its edge: a
sustained excursion, not noise carrying fixes of a service road past the edge.
The alert's point is that farthest fix.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import shapely

from haulwatch.routes.alerts import ALERT_ROW_COLUMNS, empty_rows
from haulwatch.routes.track import Track, km, local_hhmm, track_piece, utc

__all__ = ["deviation_alerts", "trip_routes"]


def trip_routes(trips: pd.DataFrame, routes_m: pd.DataFrame, manifests_by_trip: dict[str, list[dict]]) -> dict[int, list[int]]:
    """Route positions (in ``routes_m``) against which each judged trip is measured.

    Parameters
    ----------
    trips : pandas.DataFrame
        Trips frame.
    routes_m : pandas.DataFrame
        Approved routes (``route_id``, ``origin_site_id``, ``disposal_site_id``).
    manifests_by_trip : dict
        ``trip_id`` → covering manifests (dicts with ``route_id``).

    Returns
    -------
    dict[int, list[int]]
        Trip position → route positions (only trips that are judged).
    """
    out: dict[int, list[int]] = {}
    if trips.empty or routes_m is None or len(routes_m) == 0:
        return out
    r_id = routes_m["route_id"].astype(str).to_numpy()
    r_o = routes_m["origin_site_id"].astype(str).to_numpy()
    r_d = routes_m["disposal_site_id"].astype(str).to_numpy()
    by_pair: dict[tuple[str, str], list[int]] = {}
    for k, pair in enumerate(zip(r_o, r_d, strict=True)):
        by_pair.setdefault(pair, []).append(k)
    judged = (
        (trips["status"] == "delivered")
        & trips["origin_kind"].isin(["permitted", "expired"])
        & (trips["origin_site_id"] != "")
        & (trips["disposal_site_id"] != "")
    ).to_numpy()
    t_origin = trips["origin_site_id"].astype(object).tolist()
    t_disposal = trips["disposal_site_id"].astype(object).tolist()
    t_id = trips["trip_id"].astype(object).tolist()
    for pos in np.flatnonzero(judged):
        cands = by_pair.get((t_origin[pos], t_disposal[pos]), [])
        if not cands:
            continue
        named = [
            str(m.get("route_id"))
            for m in manifests_by_trip.get(t_id[pos], [])
            if m.get("route_id") not in (None, "") and not pd.isna(m.get("route_id"))
        ]
        chosen = [k for k in cands if r_id[k] in named]
        out[int(pos)] = chosen or cands
    return out


#: Share of a corridor's half-width inside which a point is known to be in the corridor
#: from a polygon test alone (GEOS buffers may simplify the line by 1 % of the width).
_SURE_INSIDE = 0.95


def _corridor_excess(
    x: np.ndarray, y: np.ndarray, idx: np.ndarray, rpos: np.ndarray, geoms: np.ndarray, half: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distance of points ``idx`` to routes ``rpos`` and its excess over the half-width, metres.

    A point well inside its corridor (within ``_SURE_INSIDE`` of the half-width, a
    prepared-polygon test on the coordinates) gets distance NaN and excess -inf: it
    is on the route and how far inside does not matter. Only the others (near the
    edge or off the route) get a Point geometry and an exact distance.
    """
    dist = np.full(len(idx), np.nan)
    excess = np.full(len(idx), -np.inf)
    small = np.int16 if len(geoms) < np.iinfo(np.int16).max else np.int64
    order = np.argsort(rpos.astype(small), kind="stable")
    r_sorted = rpos[order]
    bounds = np.flatnonzero(np.r_[True, r_sorted[1:] != r_sorted[:-1], True])
    exact = np.ones(len(idx), dtype=bool)
    for lo, hi in itertools.pairwise(bounds):
        r = int(r_sorted[lo])
        sure = _SURE_INSIDE * half[r]
        if geoms[r] is None or shapely.is_empty(geoms[r]) or not sure > 0:
            continue
        zone = shapely.buffer(geoms[r], sure)
        shapely.prepare(zone)
        rows = order[lo:hi]
        p = idx[rows]
        exact[rows[shapely.contains_xy(zone, x[p], y[p])]] = False
    rows = np.flatnonzero(exact)
    p = idx[rows]
    dist[rows] = shapely.distance(shapely.points(x[p], y[p]), geoms[rpos[rows]])
    excess[rows] = dist[rows] - half[rpos[rows]]
    return dist, excess


def deviation_alerts(
    track: Track,
    trips: pd.DataFrame,
    routes_m: pd.DataFrame,
    judged: dict[int, list[int]],
    manifests_by_trip: dict[str, list[dict]],
    *,
    corridor_default_m: float,
    deviation_min_points: int,
    deviation_min_duration_s: float,
    evidence_max_points: int,
    deviation_min_excess_m: float = 0.0,
    stale: np.ndarray | None = None,
) -> pd.DataFrame:
    """Build one ``route_deviation`` alert row per judged trip that leaves its corridor.

    Parameters
    ----------
    track : Track
        The partition.
    trips : pandas.DataFrame
        Trips frame.
    routes_m : pandas.DataFrame
        Projected routes (``route_id``, ``corridor_m``, ``geometry``).
    judged : dict[int, list[int]]
        From :func:`trip_routes`.
    manifests_by_trip : dict
        ``trip_id`` → covering manifests.
    corridor_default_m : float
        Half-width when a route has no ``corridor_m``, metres.
    deviation_min_points : int
        Consecutive outside points needed.
    deviation_min_duration_s : float
        ... spanning at least this long, seconds.
    evidence_max_points : int
        Longest track piece in the evidence.
    deviation_min_excess_m : float, default 0
        ... whose farthest point lies at least this far beyond the corridor edge,
        metres (a sustained excursion, not GPS noise past the edge).
    stale : numpy.ndarray, optional
        Per point: a frozen terminal's repeat (``routes.trips.frozen_fixes``). Its
        position is no evidence of where the truck was: not judged.

    Returns
    -------
    pandas.DataFrame
        Alert rows; geometry is the WGS-84 LineString of the off-corridor piece.
    """
    if not judged:
        return empty_rows()
    ev = track.events
    e_first = ev["i_first"].to_numpy()
    e_last = ev["i_last"].to_numpy()
    geoms = np.asarray(routes_m.geometry.to_numpy())
    if "corridor_m" in routes_m.columns:
        half = pd.to_numeric(routes_m["corridor_m"], errors="coerce").to_numpy(dtype=float)
    else:
        half = np.full(len(routes_m), np.nan)
    half = np.where(np.isfinite(half) & (half > 0), half, corridor_default_m)
    ev_load = trips["ev_load"].to_numpy(dtype=np.int64)
    ev_close = trips["ev_close"].to_numpy(dtype=np.int64)
    origin_pos = ev["site_pos"].to_numpy()[ev_load]
    disposal_pos = ev["site_pos"].to_numpy()[ev_close.clip(0)]

    # points of every judged trip (between its loading and unloading visits, not at
    # either site), once per candidate route: whole-array ranges, no loop per trip
    pair_trip = np.array([pos for pos, routes in judged.items() for _ in routes], dtype=np.int64)
    pair_route = np.array([r for routes in judged.values() for r in routes], dtype=np.int64)
    first_i = e_last[ev_load[pair_trip]] + 1
    last_i = e_first[ev_close[pair_trip]] - 1
    lens = np.maximum(last_i - first_i + 1, 0)
    total = int(lens.sum())
    if total == 0:
        return empty_rows()
    idx = np.repeat(first_i - (np.cumsum(lens) - lens), lens) + np.arange(total)
    tpos = np.repeat(pair_trip, lens)
    rpos = np.repeat(pair_route, lens)
    del first_i, last_i, lens
    at_site = track.site_pos[idx]
    keep = (at_site != origin_pos[tpos]) & (at_site != disposal_pos[tpos])
    if stale is not None:
        keep &= ~np.asarray(stale, dtype=bool)[idx]
    del at_site
    idx, tpos, rpos = idx[keep], tpos[keep], rpos[keep]
    del keep
    if len(idx) == 0:
        return empty_rows()
    x = track.points["x"].to_numpy()
    y = track.points["y"].to_numpy()
    dist, excess = _corridor_excess(x, y, idx, rpos, geoms, half)
    # best route per (trip, point): the smallest excess, ties to the first route listed
    # (rows come by trip, route, point: with one route per trip, in ascending trip
    # order, they are already in (trip, point) order without duplicates)
    if len(pair_trip) > 1 and not (np.diff(pair_trip) > 0).all():
        order = np.lexsort((excess, idx, tpos))
        idx, tpos, rpos, excess, dist = idx[order], tpos[order], rpos[order], excess[order], dist[order]
        del order
        first_of = np.ones(len(idx), dtype=bool)
        first_of[1:] = (tpos[1:] != tpos[:-1]) | (idx[1:] != idx[:-1])
        idx, tpos, rpos, excess, dist = idx[first_of], tpos[first_of], rpos[first_of], excess[first_of], dist[first_of]
    frame = pd.DataFrame({"i": idx, "trip": tpos, "excess": excess, "dist": dist, "half": half[rpos], "route": rpos})
    off = (frame["excess"] > 0).to_numpy()
    i_arr = frame["i"].to_numpy()
    trip_arr = frame["trip"].to_numpy()
    new = np.ones(len(frame), dtype=bool)
    new[1:] = (off[1:] != off[:-1]) | (trip_arr[1:] != trip_arr[:-1])
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(frame) - 1]
    run_off = off[first]
    n_pts = last - first + 1
    span = track.t[i_arr[last]] - track.t[i_arr[first]]
    run_excess = np.maximum.reduceat(frame["excess"].to_numpy(), first)
    good = (run_off & (n_pts >= deviation_min_points) & (span >= deviation_min_duration_s)
            & (run_excess >= deviation_min_excess_m))
    if not good.any():
        return empty_rows()
    runs = pd.DataFrame({"trip": trip_arr[first[good]], "a": first[good], "b": last[good]})
    per_trip = runs.groupby("trip").agg(a=("a", "min"), b=("b", "max"))
    lon_all = track.points["lon"].to_numpy()
    lat_all = track.points["lat"].to_numpy()
    r_ids = routes_m["route_id"].astype(str).to_numpy()
    rows = []
    for pos, (a, b) in per_trip.iterrows():
        trip = trips.iloc[int(pos)]
        piece = frame.iloc[a : b + 1]
        off_piece = piece[piece["excess"] > 0]
        i0, i1 = int(piece["i"].iat[0]), int(piece["i"].iat[-1])
        max_k = int(off_piece["dist"].to_numpy().argmax())
        max_dist = float(off_piece["dist"].iat[max_k])
        i_far = int(off_piece["i"].iat[max_k])  # the alert's point: the farthest fix
        pts_idx = np.arange(i0, i1 + 1)
        line = shapely.linestrings(lon_all[pts_idx], lat_all[pts_idx]) if len(pts_idx) > 1 else None
        manifests = manifests_by_trip.get(trip["trip_id"], [])
        route_list = [r_ids[r] for r in judged[int(pos)]]
        summary = (
            f"Loaded truck {trip['vehicle_id']} left the approved route "
            f"{'/'.join(route_list)} from {trip['origin_site_id']} to {trip['disposal_site_id']} "
            f"at {local_hhmm(track.t[i0], track.timezone)} local for "
            f"{(track.t[i1] - track.t[i0]) / 60:.0f} min, up to {km(max_dist)} from it"
        )
        rows.append(
            {
                "kind": "route_deviation",
                "vehicle_id": trip["vehicle_id"],
                "vehicle_key": trip["vehicle_key"],
                "start": utc(track.t[i0]),
                "end": utc(track.t[i1]),
                "severity": "medium",
                "manifest_id": str(manifests[0]["manifest_id"]) if manifests else "",
                "site_id": "",
                "trip_id": trip["trip_id"],
                "summary": summary,
                "lon": float(lon_all[i_far]),
                "lat": float(lat_all[i_far]),
                "evidence": {
                    "route_ids": route_list,
                    "corridor_m": float(off_piece["half"].iat[max_k]),
                    "max_off_corridor_m": round(max_dist, 1),
                    "off_corridor_points": len(off_piece),
                    "off_corridor_s": round(float(track.t[i1] - track.t[i0]), 1),
                    "trip_id": trip["trip_id"],
                    "origin_site_id": trip["origin_site_id"],
                    "disposal_site_id": trip["disposal_site_id"],
                    "track": track_piece(track, i0, i1, evidence_max_points),
                },
                "geometry": line,
            }
        )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS))
