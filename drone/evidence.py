"""Evidence a flown mission brings back to its alert.

:func:`flight_evidence` turns a :class:`~haulwatch.drone.flight.FlightRecord`
into what the alert keeps and the console shows beside the truck's track:

* ``track``: the flown track as a GeoJSON ``Feature`` (``LineString`` of
  ``[lon, lat, alt_rel_m]``, WGS-84), with its first/last vehicle time;
* ``photos``: a GeoJSON ``FeatureCollection`` of ``Point`` photos with their
  time (UTC), altitude above home and AMSL, heading and index (from
  ``CAMERA_FEEDBACK``);
* ``outcome``: ``completed`` / ``failed`` / ``aborted``, the reason, the
  mission and dock ids, start/end instants;
* ``history``: the alert-history entry "inspected by drone" (text from the
  string catalog, Chinese first).

Pure functions, JSON-ready output; the flight log itself (the MAVLink
telemetry, a ``.tlog``) is written by ``VehicleLink(tlog_path=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from haulwatch.drone.flight import FlightRecord
from haulwatch.i18n import DEFAULT_LANG, t

__all__ = ["flight_evidence", "photos_geojson", "track_geojson"]


def _record(record: FlightRecord | Mapping[str, Any]) -> FlightRecord:
    if isinstance(record, FlightRecord):
        return record
    if isinstance(record, Mapping):
        return FlightRecord.from_dict(dict(record))
    raise TypeError(f"record must be a FlightRecord or its dict, got {type(record).__name__}")


def track_geojson(record: FlightRecord | Mapping[str, Any]) -> dict[str, Any]:
    """The flown track as a GeoJSON Feature (LineString ``[lon, lat, alt_rel_m]``).

    A track of fewer than two points gives a Feature with ``geometry`` null.
    """
    rec = _record(record)
    coords = [[float(p[2]), float(p[1]), float(p[3])] for p in rec.track]
    geometry = {"type": "LineString", "coordinates": coords} if len(coords) >= 2 else None
    props: dict[str, Any] = {
        "kind": "drone_track",
        "mission_id": rec.mission_id,
        "alert_id": rec.alert_id,
        "points": len(coords),
    }
    if rec.track:
        props["t_start_s"] = float(rec.track[0][0])
        props["t_end_s"] = float(rec.track[-1][0])
        props["max_alt_rel_m"] = max(float(p[3]) for p in rec.track)
    return {"type": "Feature", "geometry": geometry, "properties": props}


def photos_geojson(record: FlightRecord | Mapping[str, Any]) -> dict[str, Any]:
    """The photos as a GeoJSON FeatureCollection of Points (time, altitude, heading)."""
    rec = _record(record)
    features = []
    for photo in rec.photos:
        props = {
            "kind": "drone_photo",
            "index": photo.get("index"),
            "time_utc": photo.get("time_utc"),
            "alt_rel_m": photo.get("alt_rel_m"),
            "alt_msl_m": photo.get("alt_msl_m"),
            "yaw_deg": photo.get("yaw_deg"),
        }
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [float(photo["lon_deg"]), float(photo["lat_deg"])],
                },
                "properties": props,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def flight_evidence(
    record: FlightRecord | Mapping[str, Any], *, lang: str | None = DEFAULT_LANG
) -> dict[str, Any]:
    """Everything a flown mission attaches to its alert (JSON-ready).

    Parameters
    ----------
    record : FlightRecord or its dict
        The flight record (``FlightRecord.to_dict()`` output is accepted).
    lang : str, default "zh-CN"
        Language of the history text.

    Returns
    -------
    dict
        ``alert_id``, ``mission_id``, ``dock_site_id``, ``outcome``, ``reason``,
        ``started_at``, ``ended_at``, ``track`` (Feature), ``photos``
        (FeatureCollection), ``history`` (``{"action": "inspected_by_drone",
        "at", "outcome", "text"}``).
    """
    rec = _record(record)
    outcome_text = t(f"mission_status.{rec.outcome}", lang)
    text = t(
        "drone.inspected",
        lang,
        outcome=outcome_text,
        photos=len(rec.photos),
        points=len(rec.track),
    )
    if rec.reason:
        text += f" ({rec.reason})"
    return {
        "alert_id": rec.alert_id,
        "mission_id": rec.mission_id,
        "dock_site_id": rec.dock_site_id,
        "outcome": rec.outcome,
        "reason": rec.reason,
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "track": track_geojson(rec),
        "photos": photos_geojson(rec),
        "history": {
            "action": "inspected_by_drone",
            "at": rec.ended_at or rec.started_at,
            "outcome": rec.outcome,
            "text": text,
        },
    }
