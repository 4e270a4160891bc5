"""``illegal_dump`` and ``unpermitted_origin`` alerts from the trips (docs/detection.md).

:func:`haulwatch.routes.trips.run_trips` already chose, per undelivered loaded
trip, the dump event (the stop or dark spell where the load changed by sensor,
else the longest candidate). Here each becomes one alert with the evidence a
dispatcher needs, and each loading visit at a place that is not a permitted
origin (no site at all: 黑工地, or an origin outside its permit dates) becomes an
``unpermitted_origin`` alert.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from haulwatch.routes.alerts import ALERT_ROW_COLUMNS, empty_rows
from haulwatch.routes.track import Track, km, local_hhmm, minutes, track_piece, utc
from haulwatch.routes.track import nearest_permitted_site as nearest_site

__all__ = ["dump_alerts", "dump_places", "unpermitted_origin_alerts"]


class _Columns:
    """Column arrays of a frame, each fetched once.

    Alerts are built in a loop over few rows, and a pandas column lookup costs tens of
    microseconds: the loops read numpy arrays instead (same values).
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = self._frame[name].to_numpy()
        return self._cache[name]


def _rows(frame: pd.DataFrame, columns: tuple[str, ...]) -> Callable[[int], dict]:
    """``row(pos)``: a dict of ``columns`` at position ``pos`` (values as ``frame.iloc[pos]``)."""
    lists = {c: frame[c].tolist() for c in columns}

    def row(pos: int) -> dict:
        return {c: values[pos] for c, values in lists.items()}

    return row


_TRIP_FIELDS = ("vehicle_id", "vehicle_key", "trip_id", "origin_site_id", "origin_kind", "load_end",
                "disposal_site_id", "loaded_by", "ev_close")


def _event_lonlat(track: Track, e: int, evc: _Columns | None = None, ptc: _Columns | None = None) -> tuple[float, float]:
    evc = evc if evc is not None else _Columns(track.events)
    ptc = ptc if ptc is not None else _Columns(track.points)
    a = int(evc["i_first"][e])
    b = int(evc["i_last"][e])
    if evc["kind"][e] == "gap":
        b = a
    lon = ptc["lon"][a : b + 1]
    lat = ptc["lat"][a : b + 1]
    return float(lon.mean()), float(lat.mean())


def _load_text(track: Track, i: int, load: pd.Series | None = None) -> str | None:
    if load is None:
        if "load" not in track.points.columns:
            return None
        load = track.points["load"]
    value = load.iat[i]
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def dump_places(track: Track, trips: pd.DataFrame, dumps: pd.DataFrame) -> pd.DataFrame:
    """Place and window of every chosen dump.

    Parameters
    ----------
    track : Track
        The partition.
    trips : pandas.DataFrame
        From :func:`haulwatch.routes.trips.trips_frame`.
    dumps : pandas.DataFrame
        ``TripsResult.dumps`` (``trip_pos``, ``ev``, ``reason``, ``after``).

    Returns
    -------
    pandas.DataFrame
        ``vehicle_id, vehicle_key, trip_id, start, end`` (UTC), ``x, y`` (metres),
        ``lon, lat`` (WGS-84), ``ev``, ``trip_pos``, ``reason``, ``after``.
    """
    evc = _Columns(track.events)
    ptc = _Columns(track.points)
    trip_row = _rows(trips, _TRIP_FIELDS)
    rows = []
    for d in dumps.itertuples(index=False):
        e = int(d.ev)
        trip = trip_row(int(d.trip_pos))
        g = int(evc["gap_i"][e])
        if g >= 0:
            # dumped in the dark: the place is the last fix before the dark spell and
            # the window runs to the first fix after it (not over later dwelling)
            lon = float(ptc["lon"][g])
            lat = float(ptc["lat"][g])
            x = float(ptc["x"][g])
            y = float(ptc["y"][g])
            end_s = track.t[g + 1]
        else:
            lon, lat = _event_lonlat(track, e, evc, ptc)
            x, y = float(evc["x"][e]), float(evc["y"][e])
            end_s = evc["end_s"][e]
        rows.append(
            {
                "vehicle_id": trip["vehicle_id"],
                "vehicle_key": trip["vehicle_key"],
                "trip_id": trip["trip_id"],
                "start": utc(evc["start_s"][e]),
                "end": utc(end_s),
                "x": x,
                "y": y,
                "lon": lon,
                "lat": lat,
                "ev": e,
                "trip_pos": int(d.trip_pos),
                "reason": d.reason,
                "after": d.after,
            }
        )
    cols = ["vehicle_id", "vehicle_key", "trip_id", "start", "end", "x", "y", "lon", "lat",
            "ev", "trip_pos", "reason", "after"]
    out = pd.DataFrame(rows, columns=cols)
    if out.empty:
        out["start"] = pd.Series([], dtype="datetime64[ns, UTC]")
        out["end"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return out


def dump_alerts(
    track: Track,
    trips: pd.DataFrame,
    places: pd.DataFrame,
    covers: dict[str, list[dict]] | None = None,
    *,
    evidence_max_points: int,
) -> pd.DataFrame:
    """Build one ``illegal_dump`` alert row per chosen dump.

    Parameters
    ----------
    track : Track
        The partition (events, points, sites).
    trips : pandas.DataFrame
        From :func:`haulwatch.routes.trips.trips_frame`.
    places : pandas.DataFrame
        From :func:`dump_places`.
    covers : dict, optional
        ``trip_id`` → covering manifests (``routes.reconcile.cover_trips``): the
        manifest the load travelled under goes into the evidence.
    evidence_max_points : int
        Longest track piece in the evidence.

    Returns
    -------
    pandas.DataFrame
        Alert rows (:data:`ALERT_ROW_COLUMNS`).
    """
    if places.empty:
        return empty_rows()
    evc = _Columns(track.events)
    trip_row = _rows(trips, _TRIP_FIELDS)
    load = track.points["load"] if "load" in track.points.columns else None
    site_ids = track.sites["site_id"].astype(str).to_numpy()
    dist, near_id = nearest_site(track, places["x"].to_numpy(), places["y"].to_numpy())
    rows = []
    for k, p in enumerate(places.itertuples(index=False)):
        e = int(p.ev)
        trip = trip_row(int(p.trip_pos))
        a, b = int(evc["i_first"][e]), int(evc["i_last"][e])
        g = int(evc["gap_i"][e])
        dark = g >= 0
        dur = float(evc["duration_s"][e])
        dark_s = float(track.t[g + 1] - track.t[g]) if dark else 0.0
        close = int(trip["ev_close"])
        close_kind = evc["kind"][close] if close >= 0 else ""
        close_site = site_ids[evc["site_pos"][close]] if close >= 0 and evc["site_pos"][close] >= 0 else ""
        if p.reason == "sensor":
            if bool(evc["lift"][e]):
                after = "raised its dump body there"
            else:
                before_txt = _load_text(track, max(a - 1, 0), load) or "loaded"
                after = f"its load sensor went from {before_txt} to empty there"
        elif close_kind == "origin":
            after = f"next went back to origin {close_site} without unloading"
        elif close_kind == "depot" or p.after == "depot":
            after = f"next parked in depot {close_site} without unloading".replace("  ", " ")
        else:
            after = "the load never reached a disposal site"
        when = local_hhmm(evc["start_s"][e], track.timezone)
        at_site = site_ids[evc["site_pos"][e]] if evc["site_pos"][e] >= 0 else ""
        if evc["kind"][e] == "turn":
            # one fix, no stop: the terminal reports too seldom to show a short tip
            summary = (
                f"Loaded truck {p.vehicle_id} turned back {km(dist[k])} from any permitted site "
                f"at {when} local without a stop its terminal could show and {after}"
            )
        elif evc["kind"][e] == "disposal" and not dark:
            # a disposal site outside its permit dates (run_trips judged it a stop in the open)
            summary = (
                f"Loaded truck {p.vehicle_id} stopped {minutes(dur)} at disposal site {at_site} "
                f"outside the site's permit dates at {when} local and {after}"
            )
        elif dark:
            where = "stopped and " if evc["kind"][e] == "stop" else ""
            summary = (
                f"Loaded truck {p.vehicle_id} {where}went dark for {minutes(dark_s)} at {when} local, "
                f"{km(dist[k])} from any permitted site, and {after}"
            )
        else:
            summary = (
                f"Loaded truck {p.vehicle_id} stopped {minutes(dur)} {km(dist[k])} from any "
                f"permitted site at {when} local and {after}"
            )
        margin = max(2, evidence_max_points // 4)
        evidence = {
            "stop_duration_s": round(dur, 1),
            "distance_to_permitted_site_m": round(float(dist[k]), 1) if np.isfinite(dist[k]) else None,
            "nearest_site_id": near_id[k],
            "trip_id": trip["trip_id"],
            "manifest_ids": [str(m["manifest_id"]) for m in (covers or {}).get(trip["trip_id"], [])],
            "origin_site_id": trip["origin_site_id"],
            "origin_kind": trip["origin_kind"],
            "loaded_since": trip["load_end"],
            "decided_by": p.reason,
            "then": "sensor" if p.reason == "sensor" else (close_kind or "data end"),
            "then_site_id": close_site,
            "at_site_id": at_site,
            "went_dark": dark,
            "dark_s": round(dark_s, 1),
            "load_before": _load_text(track, max(a - 1, 0), load),
            "load_after": _load_text(track, min(b + 1, len(track.points) - 1), load),
            "lift_raised": bool(evc["lift"][e]),
            "track": track_piece(track, a - margin, b + margin, evidence_max_points),
        }
        rows.append(
            {
                "kind": "illegal_dump",
                "vehicle_id": p.vehicle_id,
                "vehicle_key": p.vehicle_key,
                "start": p.start,
                "end": p.end,
                "severity": "high",
                "manifest_id": evidence["manifest_ids"][0] if evidence["manifest_ids"] else "",
                "site_id": at_site,
                "trip_id": trip["trip_id"],
                "summary": summary,
                "lon": p.lon,
                "lat": p.lat,
                "evidence": evidence,
                "geometry": None,
            }
        )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS))


def _first_manifest(covers: dict[str, list[dict]] | None, trip_id: str) -> str:
    """The id of the first manifest covering ``trip_id``, else ``""``."""
    cov = (covers or {}).get(trip_id, [])
    return str(cov[0]["manifest_id"]) if cov else ""


def unpermitted_origin_alerts(
    track: Track, trips: pd.DataFrame, loadings: pd.DataFrame, *, evidence_max_points: int,
    covers: dict[str, list[dict]] | None = None,
) -> pd.DataFrame:
    """One ``unpermitted_origin`` alert row per loading visit at a black site or expired origin.

    Parameters
    ----------
    track : Track
        The partition.
    trips : pandas.DataFrame
        From :func:`haulwatch.routes.trips.trips_frame`.
    loadings : pandas.DataFrame
        ``TripsResult.loadings`` (``ev``, ``origin_kind``, ``trip_pos``).
    evidence_max_points : int
        Longest track piece in the evidence.
    covers : dict, optional
        ``trip_id`` → covering manifests: the first fills ``manifest_id``.

    Returns
    -------
    pandas.DataFrame
        Alert rows: severity ``high`` for a place outside every site, ``medium``
        for an origin outside its permit dates.
    """
    if loadings.empty:
        return empty_rows()
    bad = loadings[loadings["origin_kind"].isin(["black", "expired"])]
    if bad.empty:
        return empty_rows()
    ev = track.events
    evc = _Columns(ev)
    ptc = _Columns(track.points)
    trip_row = _rows(trips, _TRIP_FIELDS)
    site_ids = track.sites["site_id"].astype(str).to_numpy()
    rows = []
    dist, near_id = nearest_site(track, ev["x"].to_numpy()[bad["ev"].to_numpy(dtype=np.int64)],
                                 ev["y"].to_numpy()[bad["ev"].to_numpy(dtype=np.int64)])
    for k, ld in enumerate(bad.itertuples(index=False)):
        e = int(ld.ev)
        trip = trip_row(int(ld.trip_pos))
        a, b = int(evc["i_first"][e]), int(evc["i_last"][e])
        lon, lat = _event_lonlat(track, e, evc, ptc)
        dur = float(evc["duration_s"][e])
        when = local_hhmm(evc["start_s"][e], track.timezone)
        if ld.origin_kind == "expired":
            site = site_ids[evc["site_pos"][e]]
            row = track.sites.iloc[int(evc["site_pos"][e])]
            summary = (
                f"Truck {trip['vehicle_id']} loaded for {minutes(dur)} at origin {site} at {when} "
                "local, outside the site's permit dates"
            )
            severity = "medium"
            extra = {"permit_from": row.get("permit_from"), "permit_to": row.get("permit_to")}
        else:
            site = ""
            then = trip["disposal_site_id"] or "its next stop"
            summary = (
                f"Truck {trip['vehicle_id']} dwelt {minutes(dur)} {km(dist[k])} from any permitted "
                f"site at {when} local and then carried a load to {then}: an unpermitted origin"
            )
            severity = "high"
            extra = {}
        evidence = {
            "dwell_duration_s": round(dur, 1),
            "origin_kind": ld.origin_kind,
            "distance_to_permitted_site_m": round(float(dist[k]), 1) if np.isfinite(dist[k]) else None,
            "nearest_site_id": near_id[k],
            "trip_id": trip["trip_id"],
            "disposal_site_id": trip["disposal_site_id"],
            "loaded_by": trip["loaded_by"],
            "track": track_piece(track, a, b, evidence_max_points),
            **{k2: (None if pd.isna(v) else str(v)) for k2, v in extra.items()},
        }
        rows.append(
            {
                "kind": "unpermitted_origin",
                "vehicle_id": trip["vehicle_id"],
                "vehicle_key": trip["vehicle_key"],
                "start": utc(evc["start_s"][e]),
                "end": utc(evc["end_s"][e]),
                "severity": severity,
                "manifest_id": _first_manifest(covers, trip["trip_id"]),
                "site_id": site,
                "trip_id": trip["trip_id"],
                "summary": summary,
                "lon": lon,
                "lat": lat,
                "evidence": evidence,
                "geometry": None,
            }
        )
    return pd.DataFrame(rows, columns=list(ALERT_ROW_COLUMNS))
