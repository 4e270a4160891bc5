"""``gps_gap`` alerts: a loaded truck's terminal went dark too long (docs/detection.md).

A gap is a spell longer than ``gap_max_s`` between two consecutive points of one
vehicle. It is an alert when the truck was loaded — after its loading visit, before
its unloading visit or its dump — and not parked in a depot (both ends in a depot).
One alert per gap; window = last point before → first point after.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from haulwatch.routes.alerts import ALERT_ROW_COLUMNS, empty_rows
from haulwatch.routes.track import Track, km, local_hhmm, minutes, track_piece, utc
from haulwatch.routes.track import nearest_permitted_site as nearest_site

__all__ = ["find_gaps", "gap_alerts"]


def find_gaps(codes: np.ndarray, t: np.ndarray, *, gap_max_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions (before, after) of every dark spell longer than ``gap_max_s`` within a vehicle.

    Parameters
    ----------
    codes : numpy.ndarray
        Vehicle code per point, points sorted by vehicle and time.
    t : numpy.ndarray
        Epoch seconds per point.
    gap_max_s : float
        Longest allowed spell, seconds (> 0).

    Returns
    -------
    tuple of numpy.ndarray
        int64 positions of the last point before and the first point after each gap.
    """
    if not np.isfinite(gap_max_s) or gap_max_s <= 0:
        raise ValueError(f"gap_max_s: value {gap_max_s!r} is not allowed; must be a finite number > 0")
    if len(t) < 2:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    after = np.flatnonzero((np.diff(t) > gap_max_s) & (codes[1:] == codes[:-1])) + 1
    return (after - 1).astype(np.int64), after.astype(np.int64)


def _first_manifest(covers: dict[str, list[dict]] | None, trip_id: str) -> str:
    """The id of the first manifest covering ``trip_id``, else ``""``."""
    cov = (covers or {}).get(trip_id, [])
    return str(cov[0]["manifest_id"]) if cov else ""


def gap_alerts(track: Track, trips: pd.DataFrame, *, gap_max_s: float, evidence_max_points: int,
               covers: dict[str, list[dict]] | None = None) -> pd.DataFrame:
    """Build one ``gps_gap`` alert row per dark spell of a loaded truck outside depots.

    Parameters
    ----------
    track : Track
        The partition.
    trips : pandas.DataFrame
        From :func:`haulwatch.routes.trips.trips_frame`.
    gap_max_s : float
        Longest allowed dark spell, seconds.
    evidence_max_points : int
        Longest track piece in the evidence.
    covers : dict, optional
        ``trip_id`` → covering manifests: the first fills ``manifest_id``.

    Returns
    -------
    pandas.DataFrame
        Alert rows.
    """
    before, after = find_gaps(track.codes, track.t, gap_max_s=gap_max_s)
    if len(before) == 0 or trips.empty:
        return empty_rows()
    # one more slot for "no site" (-1), so a dataset without sites indexes safely
    site_kinds = np.append(track.sites["kind"].astype(str).to_numpy(dtype=object), "")
    sp = track.site_pos
    in_depot = lambda i: site_kinds[sp[i]] == "depot"  # noqa: E731
    keep = ~(in_depot(before) & in_depot(after))
    before, after = before[keep], after[keep]
    if len(before) == 0:
        return empty_rows()
    # the trip of each gap: same vehicle, loading ended before the gap began
    t_b = track.t[before]
    code_b = track.codes[before]
    load_end = trips["load_end"]
    trip_code = track.codes[trips["i_first"].to_numpy(dtype=np.int64)]
    le = (pd.DatetimeIndex(load_end).as_unit("ns").asi8 / 1e9)
    delivered = (trips["status"] == "delivered").to_numpy()
    close = np.where(
        delivered,
        pd.DatetimeIndex(trips["unload_start"]).as_unit("ns").asi8 / 1e9,
        pd.DatetimeIndex(trips["end"]).as_unit("ns").asi8 / 1e9,
    )
    order = np.lexsort((le, trip_code))
    key_trips = trip_code[order].astype(np.float64) * 1e11 + le[order]
    key_gaps = code_b.astype(np.float64) * 1e11 + t_b
    k = np.searchsorted(key_trips, key_gaps, side="right") - 1
    ok = k >= 0
    kk = order[np.clip(k, 0, None)]
    ok &= trip_code[kk] == code_b
    ok &= (t_b >= le[kk]) & (t_b < close[kk])
    if not ok.any():
        return empty_rows()
    before, after, kk = before[ok], after[ok], kk[ok]
    x = track.points["x"].to_numpy()
    y = track.points["y"].to_numpy()
    dist, near_id = nearest_site(track, x[before], y[before])
    jump_m = np.hypot(x[after] - x[before], y[after] - y[before])
    rows = []
    for n, (b, a, tk) in enumerate(zip(before, after, kk, strict=True)):
        trip = trips.iloc[int(tk)]
        dur = float(track.t[a] - track.t[b])
        vid = track.vehicle_ids[track.codes[b]]
        summary = (
            f"Loaded truck {vid} went dark for {minutes(dur)} from {local_hhmm(track.t[b], track.timezone)} "
            f"local and reappeared {km(jump_m[n])} away"
        )
        margin = max(2, evidence_max_points // 4)
        rows.append(
            {
                "kind": "gps_gap",
                "vehicle_id": vid,
                "vehicle_key": track.vehicle_keys[track.codes[b]],
                "start": utc(track.t[b]),
                "end": utc(track.t[a]),
                "severity": "medium",
                "manifest_id": _first_manifest(covers, trip["trip_id"]),
                "site_id": "",
                "trip_id": trip["trip_id"],
                "summary": summary,
                "lon": float(track.points["lon"].iat[int(b)]),
                "lat": float(track.points["lat"].iat[int(b)]),
                "evidence": {
                    "gap_s": round(dur, 1),
                    "gap_max_s": gap_max_s,
                    "moved_while_dark_m": round(float(jump_m[n]), 1),
                    "distance_to_permitted_site_m": round(float(dist[n]), 1) if np.isfinite(dist[n]) else None,
                    "nearest_site_id": near_id[n],
                    "trip_id": trip["trip_id"],
                    "trip_status": trip["status"],
                    "track": track_piece(track, int(b) - margin, int(a) + margin, evidence_max_points),
                },
                "geometry": None,
            }
        )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS))
