"""``dump_hotspot``: places where dumps of several trucks cluster (黑消纳场, docs/detection.md).

Per local day, the ``illegal_dump`` places are linked when closer than
``hotspot_radius_m`` (single-linkage: KD-tree pairs + connected components); a
cluster with at least ``hotspot_min_vehicles`` distinct trucks is one alert at the
cluster's centroid, window = first to last of its dumps, ``vehicle_id`` empty.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from haulwatch.routes.alerts import ALERT_ROW_COLUMNS, empty_rows
from haulwatch.routes.track import local_day

__all__ = ["hotspot_alerts"]


def hotspot_alerts(
    dumps: pd.DataFrame,
    *,
    hotspot_radius_m: float,
    hotspot_min_vehicles: int,
    timezone: str,
) -> pd.DataFrame:
    """Build one ``dump_hotspot`` alert row per cluster of dumps of enough trucks.

    Parameters
    ----------
    dumps : pandas.DataFrame
        Dump places of every vehicle: ``vehicle_id``, ``vehicle_key``, ``start``,
        ``end`` (UTC), ``x``, ``y`` (metres, one projected CRS), ``lon``, ``lat``.
    hotspot_radius_m : float
        Link distance, metres (> 0).
    hotspot_min_vehicles : int
        Distinct trucks needed (≥ 2).
    timezone : str
        Zone of the local day.

    Returns
    -------
    pandas.DataFrame
        Alert rows (``vehicle_id`` empty, ``evidence`` lists the trucks and dumps).
    """
    if not np.isfinite(hotspot_radius_m) or hotspot_radius_m <= 0:
        raise ValueError(f"hotspot_radius_m: value {hotspot_radius_m!r} is not allowed; must be > 0")
    if int(hotspot_min_vehicles) < 2:
        raise ValueError(f"hotspot_min_vehicles: value {hotspot_min_vehicles!r} is not allowed; must be >= 2")
    if dumps is None or len(dumps) < hotspot_min_vehicles:
        return empty_rows()
    # a deterministic order whatever the partitioning of the vehicles was
    d = dumps.sort_values(["start", "vehicle_key"], kind="stable", ignore_index=True)
    start_s = pd.DatetimeIndex(d["start"]).as_unit("ns").asi8 / 1e9
    day = local_day(start_s, timezone)
    rows = []
    for the_day in sorted(set(day)):
        sel = np.flatnonzero(day == the_day)
        if len(sel) < hotspot_min_vehicles:
            continue
        xy = np.column_stack([d["x"].to_numpy()[sel], d["y"].to_numpy()[sel]])
        pairs = cKDTree(xy).query_pairs(hotspot_radius_m, output_type="ndarray")
        n = len(sel)
        graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, labels = connected_components(graph, directed=False)
        for lab in np.unique(labels):
            members = sel[labels == lab]
            group = d.iloc[members]
            keys = sorted(set(group["vehicle_key"].astype(str)))
            if len(keys) < hotspot_min_vehicles:
                continue
            lon = float(group["lon"].mean())
            lat = float(group["lat"].mean())
            spread = float(np.hypot(xy[labels == lab, 0] - xy[labels == lab, 0].mean(),
                                    xy[labels == lab, 1] - xy[labels == lab, 1].mean()).max())
            rows.append(
                {
                    "kind": "dump_hotspot",
                    "vehicle_id": "",
                    "vehicle_key": "",
                    "start": group["start"].min(),
                    "end": group["end"].max(),
                    "severity": "high",
                    "manifest_id": "",
                    "site_id": "",
                    "trip_id": "",
                    "summary": (
                        f"{len(keys)} trucks dumped within {hotspot_radius_m:.0f} m of one place on "
                        f"{the_day} ({len(group)} dumps): a likely illegal dump site"
                    ),
                    "lon": lon,
                    "lat": lat,
                    "evidence": {
                        "day": the_day,
                        "vehicles": sorted(set(group["vehicle_id"].astype(str))),
                        "dumps": [
                            [str(v), round(float(a), 6), round(float(b), 6), s]
                            for v, a, b, s in zip(group["vehicle_id"], group["lon"], group["lat"],
                                                  group["start"], strict=True)
                        ],
                        "max_distance_from_centre_m": round(spread, 1),
                        "hotspot_radius_m": hotspot_radius_m,
                    },
                    "geometry": None,
                }
            )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS)) if rows else empty_rows()
