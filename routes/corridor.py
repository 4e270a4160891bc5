"""``route_deviation``: a loaded haul trip left its approved route corridor (docs/detection.md).

Judged for delivered haul trips from an origin site to a disposal site when an
approved route connects them (the covering manifest's ``route_id`` if it names
one that connects them, else any route between the two sites). The trip's points
between leaving the loading visit and reaching the unloading visit are measured
against the route line(s) with one vectorized shapely ``distance`` call over all
judged points of the partition; points at the trip's own origin or disposal site
(polygon plus buffer) never count. One alert per trip when at least
``deviation_min_points`` consecutive points spanning ``deviation_min_duration_s``
lie outside the corridor (``corridor_m`` of the route, else ``corridor_default_m``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from haulwatch.routes.dumping import ALERT_ROW_COLUMNS, empty_rows
from haulwatch.routes.trips import Track, km, local_hhmm, track_piece, utc

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

    # points of every judged trip, once per candidate route
    p_idx, p_trip, p_route = [], [], []
    for pos, routes in judged.items():
        a = e_last[ev_load[pos]] + 1
        b = e_first[ev_close[pos]] - 1
        if b < a:
            continue
        idx = np.arange(a, b + 1)
        own = (track.site_pos[idx] == origin_pos[pos]) | (track.site_pos[idx] == disposal_pos[pos])
        idx = idx[~own]
        if len(idx) == 0:
            continue
        for r in routes:
            p_idx.append(idx)
            p_trip.append(np.full(len(idx), pos))
            p_route.append(np.full(len(idx), r))
    if not p_idx:
        return empty_rows()
    idx = np.concatenate(p_idx)
    tpos = np.concatenate(p_trip)
    rpos = np.concatenate(p_route)
    x = track.points["x"].to_numpy()
    y = track.points["y"].to_numpy()
    dist = shapely.distance(shapely.points(x[idx], y[idx]), geoms[rpos])
    excess = dist - half[rpos]
    # best route per (trip, point): the smallest excess
    frame = pd.DataFrame({"i": idx, "trip": tpos, "excess": excess, "dist": dist, "half": half[rpos], "route": rpos})
    frame = frame.sort_values(["trip", "i", "excess"], kind="stable")
    frame = frame.drop_duplicates(["trip", "i"], keep="first").reset_index(drop=True)
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
    good = run_off & (n_pts >= deviation_min_points) & (span >= deviation_min_duration_s)
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
                "lon": float(lon_all[i0]),
                "lat": float(lat_all[i0]),
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
