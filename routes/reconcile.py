"""Manifests ⇄ trips: ``unmanifested_trip``, ``wrong_disposal``, ``manifest_not_executed``,
``unregistered_vehicle`` (docs/detection.md).

A manifest covers a trip when the vehicle matches (normalized plate) and the trip,
from loading start to leaving the disposal site, lies inside the manifest window
widened by ``manifest_slack_s`` on both sides. Matching is one merge of the
(small) trips and manifests frames on ``vehicle_key``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from haulwatch.routes.alerts import ALERT_ROW_COLUMNS, empty_rows
from haulwatch.routes.track import local_day, local_hhmm

__all__ = [
    "cover_trips",
    "manifest_alerts",
    "not_executed_alerts",
    "unregistered_alerts",
]


def _epoch(values) -> np.ndarray:
    return pd.DatetimeIndex(pd.Series(values)).as_unit("ns").asi8 / 1e9


def cover_trips(trips: pd.DataFrame, manifests: pd.DataFrame, *, manifest_slack_s: float) -> dict[str, list[dict]]:
    """Covering manifests of every trip.

    Parameters
    ----------
    trips : pandas.DataFrame
        Trips frame (``trip_id``, ``vehicle_key``, ``start``, ``end``).
    manifests : pandas.DataFrame
        ``manifest_id, vehicle_key, origin_site_id, disposal_site_id, route_id,
        valid_from, valid_to`` (UTC).
    manifest_slack_s : float
        Widening of each manifest window on both sides, seconds.

    Returns
    -------
    dict[str, list[dict]]
        ``trip_id`` → covering manifests (records, ordered by ``valid_from``,
        ``manifest_id``); trips without one are absent.
    """
    if trips.empty or manifests is None or manifests.empty:
        return {}
    cols = ["manifest_id", "vehicle_key", "origin_site_id", "disposal_site_id", "route_id",
            "valid_from", "valid_to"]
    man = manifests[[c for c in cols if c in manifests.columns]].copy()
    if "route_id" not in man.columns:
        man["route_id"] = None
    man["_vf"] = _epoch(man["valid_from"]) - manifest_slack_s
    man["_vt"] = _epoch(man["valid_to"]) + manifest_slack_s
    tr = pd.DataFrame(
        {
            "trip_id": trips["trip_id"].to_numpy(),
            "vehicle_key": trips["vehicle_key"].to_numpy(),
            "_ts": _epoch(trips["start"]),
            "_te": _epoch(trips["end"]),
        }
    )
    pairs = tr.merge(man, on="vehicle_key", how="inner")
    pairs = pairs[(pairs["_vf"] <= pairs["_ts"]) & (pairs["_te"] <= pairs["_vt"])]
    pairs = pairs.sort_values(["trip_id", "_vf", "manifest_id"], kind="stable")
    out: dict[str, list[dict]] = {}
    keep = ["manifest_id", "origin_site_id", "disposal_site_id", "route_id"]
    columns = [pairs[c].astype(object).tolist() for c in ["trip_id", *keep]]
    for trip_id, *values in zip(*columns, strict=True):
        out.setdefault(str(trip_id), []).append(dict(zip(keep, values, strict=True)))
    return out


def manifest_alerts(trips: pd.DataFrame, covers: dict[str, list[dict]], *, timezone: str) -> pd.DataFrame:
    """``unmanifested_trip`` and ``wrong_disposal`` alert rows for delivered trips.

    Parameters
    ----------
    trips : pandas.DataFrame
        Trips frame with ``load_x``... and ``lon``/``lat`` of loading and unloading
        (columns ``load_lon``, ``load_lat``, ``unload_lon``, ``unload_lat``).
    covers : dict
        From :func:`cover_trips`.
    timezone : str
        Zone of the local times in summaries.

    Returns
    -------
    pandas.DataFrame
        Alert rows.
    """
    if trips.empty:
        return empty_rows()
    rows = []
    delivered = trips[trips["status"] == "delivered"]
    for trip in delivered.itertuples(index=False):
        cov = covers.get(trip.trip_id, [])
        t0 = trip.start.timestamp()
        if not cov:
            origin = trip.origin_site_id or ("an unlisted place" if trip.origin_kind == "black" else "an unknown origin")
            rows.append(
                {
                    "kind": "unmanifested_trip",
                    "vehicle_id": trip.vehicle_id,
                    "vehicle_key": trip.vehicle_key,
                    "start": trip.start,
                    "end": trip.end,
                    "severity": "medium",
                    "manifest_id": "",
                    "site_id": trip.disposal_site_id,
                    "trip_id": trip.trip_id,
                    "summary": (
                        f"Truck {trip.vehicle_id} hauled a load from {origin} at "
                        f"{local_hhmm(t0, timezone)} local to disposal site {trip.disposal_site_id} "
                        "with no manifest covering the trip"
                    ),
                    # the alert is about where the load came from: the loading place
                    "lon": trip.load_lon if np.isfinite(trip.load_lon) else trip.unload_lon,
                    "lat": trip.load_lat if np.isfinite(trip.load_lat) else trip.unload_lat,
                    "evidence": {
                        "trip_id": trip.trip_id,
                        "origin_site_id": trip.origin_site_id,
                        "origin_kind": trip.origin_kind,
                        "disposal_site_id": trip.disposal_site_id,
                        "loading_start": trip.start,
                        "unloading_end": trip.end,
                    },
                    "geometry": None,
                }
            )
            continue
        named = [str(m["disposal_site_id"]) for m in cov]
        if trip.disposal_site_id in named:
            continue
        m0 = cov[0]
        rows.append(
            {
                "kind": "wrong_disposal",
                "vehicle_id": trip.vehicle_id,
                "vehicle_key": trip.vehicle_key,
                "start": trip.unload_start,
                "end": trip.end,
                "severity": "medium",
                "manifest_id": str(m0["manifest_id"]),
                "site_id": trip.disposal_site_id,
                "trip_id": trip.trip_id,
                "summary": (
                    f"Truck {trip.vehicle_id} unloaded at disposal site {trip.disposal_site_id} at "
                    f"{local_hhmm(trip.unload_start.timestamp(), timezone)} local but its manifest "
                    f"{m0['manifest_id']} names {m0['disposal_site_id']}"
                ),
                "lon": trip.unload_lon,
                "lat": trip.unload_lat,
                "evidence": {
                    "trip_id": trip.trip_id,
                    "manifest_ids": [str(m["manifest_id"]) for m in cov],
                    "manifest_disposal_site_ids": named,
                    "disposal_site_id": trip.disposal_site_id,
                    "origin_site_id": trip.origin_site_id,
                },
                "geometry": None,
            }
        )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS)) if rows else empty_rows()


def not_executed_alerts(
    manifests: pd.DataFrame,
    loadings: pd.DataFrame,
    sites: pd.DataFrame,
    *,
    data_start: pd.Timestamp | None,
    data_end: pd.Timestamp | None,
    manifest_slack_s: float,
    timezone: str,
) -> pd.DataFrame:
    """``manifest_not_executed`` rows: manifests whose vehicle has no loading visit in their window.

    Parameters
    ----------
    manifests : pandas.DataFrame
        Manifests frame.
    loadings : pandas.DataFrame
        Every loading visit of every vehicle: ``vehicle_key``, ``start`` (UTC).
    sites : pandas.DataFrame
        Sites with ``site_id`` and WGS-84 ``geometry`` (the alert is placed at the
        manifest's origin site).
    data_start, data_end : pandas.Timestamp or None
        Time span of the whole dataset's points; windows ending after ``data_end``
        (or before ``data_start``) are not judged.
    manifest_slack_s : float
        Widening of the window, seconds.
    timezone : str
        Zone for summaries.

    Returns
    -------
    pandas.DataFrame
        Alert rows.
    """
    if manifests is None or manifests.empty or data_end is None:
        return empty_rows()
    vf = _epoch(manifests["valid_from"])
    vt = _epoch(manifests["valid_to"])
    judged = (vt <= data_end.timestamp()) & (vt >= data_start.timestamp())
    if not judged.any():
        return empty_rows()
    man = manifests[judged].assign(_vf=vf[judged] - manifest_slack_s, _vt=vt[judged] + manifest_slack_s)
    if loadings is not None and not loadings.empty:
        ld = pd.DataFrame({"vehicle_key": loadings["vehicle_key"].to_numpy(), "_t": _epoch(loadings["start"])})
        pairs = man[["manifest_id", "vehicle_key", "_vf", "_vt"]].merge(ld, on="vehicle_key")
        hit = pairs[(pairs["_t"] >= pairs["_vf"]) & (pairs["_t"] <= pairs["_vt"])]["manifest_id"].unique()
        man = man[~man["manifest_id"].isin(hit)]
    if man.empty:
        return empty_rows()
    centroid = {}
    if sites is not None and len(sites):
        for sid, geom in zip(sites["site_id"].astype(str), sites.geometry, strict=True):
            if geom is not None:
                c = geom.representative_point()
                centroid[sid] = (c.x, c.y)
    rows = []
    for m in man.itertuples(index=False):
        lon, lat = centroid.get(str(m.origin_site_id), (np.nan, np.nan))
        vf_local = pd.Timestamp(m.valid_from).tz_convert(timezone)
        vt_local = pd.Timestamp(m.valid_to).tz_convert(timezone)
        rows.append(
            {
                "kind": "manifest_not_executed",
                "vehicle_id": m.vehicle_id,
                "vehicle_key": m.vehicle_key,
                "start": m.valid_from,
                "end": m.valid_to,
                "severity": "low",
                "manifest_id": str(m.manifest_id),
                "site_id": str(m.origin_site_id),
                "trip_id": "",
                "summary": (
                    f"Manifest {m.manifest_id} of truck {m.vehicle_id} ({m.origin_site_id} → "
                    f"{m.disposal_site_id}, {vf_local:%Y-%m-%d %H:%M}–{vt_local:%H:%M} local) "
                    "was never executed: the truck loaded nowhere in its window"
                ),
                "lon": lon,
                "lat": lat,
                "evidence": {
                    "manifest_id": str(m.manifest_id),
                    "origin_site_id": str(m.origin_site_id),
                    "disposal_site_id": str(m.disposal_site_id),
                    "valid_from": m.valid_from,
                    "valid_to": m.valid_to,
                    "loading_visits_in_window": 0,
                },
                "geometry": None,
            }
        )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS))


def unregistered_alerts(
    trips: pd.DataFrame,
    loadings: pd.DataFrame,
    vehicles: pd.DataFrame | None,
    *,
    timezone: str,
) -> pd.DataFrame:
    """``unregistered_vehicle`` rows: per vehicle and local day with a loading visit,
    when the vehicle is missing from ``vehicles`` or not registered.

    Parameters
    ----------
    trips : pandas.DataFrame
        Trips frame (for the last unloading of the day).
    loadings : pandas.DataFrame
        Loading visits: ``vehicle_id``, ``vehicle_key``, ``start``, ``end``, ``lon``, ``lat``.
    vehicles : pandas.DataFrame or None
        The registry; None (no vehicles.csv) → no alert.
    timezone : str
        Zone of the local day.

    Returns
    -------
    pandas.DataFrame
        Alert rows.
    """
    if vehicles is None or loadings is None or loadings.empty:
        return empty_rows()
    reg = vehicles["registered"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    registered = set(vehicles["vehicle_key"].astype(str).to_numpy()[reg])
    known = set(vehicles["vehicle_key"].astype(str))
    # a hash lookup (pandas' arrow-string isin walks the value set in Python)
    is_registered = pd.Index(sorted(registered), dtype=object).get_indexer(
        loadings["vehicle_key"].astype(str).to_numpy(dtype=object)) >= 0
    ld = loadings[~is_registered].copy()
    if ld.empty:
        return empty_rows()
    ld["_day"] = local_day(_epoch(ld["start"]), timezone)
    unl = trips[trips["status"] == "delivered"][["vehicle_key", "start", "end"]].copy()
    unl["_day"] = local_day(_epoch(unl["start"]), timezone) if len(unl) else pd.Series([], dtype=object)
    # last unloading end per (vehicle, local day), looked up per group (one pass over
    # the trips instead of a scan of every trip per group)
    last_end: dict = {}
    if len(unl):
        keyed = unl.assign(_key=unl["vehicle_key"].astype(str))
        last_end = keyed.groupby(["_key", "_day"], sort=False)["end"].max().to_dict()
    # first loading, count and latest loading end per (vehicle, local day), from one
    # sort (was: a sort and row lookups per group)
    ld = ld.assign(_key=ld["vehicle_key"].astype(str), _t=_epoch(ld["start"]))
    ld = ld.sort_values(["_key", "_day", "_t"], kind="stable")
    key = ld["_key"].to_numpy(dtype=object)
    day_of = ld["_day"].to_numpy(dtype=object)
    head = np.r_[True, (key[1:] != key[:-1]) | (day_of[1:] != day_of[:-1])]
    starts = np.flatnonzero(head)
    counts = np.diff(np.r_[starts, len(ld)])
    ends = ld["end"].tolist()
    firsts = ld.iloc[starts]
    rows = []
    for j, (vkey, day, vid, start, lon, lat) in enumerate(zip(
            key[starts], day_of[starts], firsts["vehicle_id"].tolist(), firsts["start"].tolist(),
            firsts["lon"].tolist(), firsts["lat"].tolist(), strict=True)):
        n = int(counts[j])
        end = last_end.get((vkey, day))
        if end is None:
            end = max(ends[starts[j]: starts[j] + n])
        status = "not registered" if vkey in known else "missing from the vehicle registry"
        rows.append(
            {
                "kind": "unregistered_vehicle",
                "vehicle_id": vid,
                "vehicle_key": vkey,
                "start": start,
                "end": max(end, start),
                "severity": "medium",
                "manifest_id": "",
                "site_id": "",
                "trip_id": "",
                "summary": f"Truck {vid} hauled {n} load(s) on {day} but is {status}",
                "lon": lon,
                "lat": lat,
                "evidence": {
                    "day": day,
                    "loads": n,
                    "registry_status": "unregistered" if vkey in known else "missing",
                },
                "geometry": None,
            }
        )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS))
