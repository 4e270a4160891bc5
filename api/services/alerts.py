"""Alerts coming in (a batch audit's alerts.geojson as a request body or a file) and status changes.

Both go through the one alert-GeoJSON parser
(:func:`haulwatch.routes.alerts.alerts_from_geojson` / ``read_alerts``) and the
store's limits (:mod:`haulwatch.ingest.limits`); new and changed alerts are
streamed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haulwatch.api.services.events import publish_alerts
from haulwatch.api.services.store import StoreInputError, UpsertResult
from haulwatch.ingest import limits
from haulwatch.timezone import DEFAULT_TIMEZONE

if TYPE_CHECKING:
    from haulwatch.api.deps import Service

# An ISO 8601 time that says its zone: ...Z or ...+08:00 / +0800 / +08
_ZONED_RE = re.compile(r".*\d(?:Z|z|[+-]\d{2}(?::?\d{2})?)\s*\Z")


_FIELD_RE = re.compile(r"fields? '(\w+)'")


class AlertImportError(StoreInputError):
    """An alert import refused: the field (JSON path) and the reason."""


def _check_times_zoned(doc: Any) -> None:
    """Refuse alert times without a zone offset (an import never guesses the zone), times
    outside the range and representative points outside the degree ranges."""
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        return  # the parser reports the shape
    if len(features) > limits.IMPORT_MAX_FEATURES:
        raise AlertImportError(
            f"features: {len(features):,} alerts, at most {limits.IMPORT_MAX_FEATURES:,} per "
            "import", field="features")
    for i, feat in enumerate(features):
        props = feat.get("properties") if isinstance(feat, dict) else None
        if not isinstance(props, dict):
            continue
        for name in ("start", "end"):
            value = props.get(name)
            field = f"features[{i}].properties.{name}"
            if not isinstance(value, str):
                raise AlertImportError(
                    f"{field}: must be an ISO 8601 time text, got {type(value).__name__} "
                    f"{limits.snippet(value)}", field=field)
            if limits.text_year_out_of_range([value])[0]:
                raise AlertImportError(f"{field}: {limits.snippet(value)}: "
                                       f"{limits.TIME_RANGE_REASON}", field=field)
            if _ZONED_RE.fullmatch(value) is None:
                raise AlertImportError(
                    f"{field}: {limits.snippet(value)} has no zone offset; write UTC with 'Z' "
                    "(2026-03-02T02:00:00Z) or an offset (+08:00)", field=field)
        _check_point(i, feat, props)


def _check_point(i: int, feat: dict[str, Any], props: dict[str, Any]) -> None:
    """The representative point (properties lon/lat, else a Point geometry) within degrees."""
    geom = feat.get("geometry")
    if props.get("lon") is not None or props.get("lat") is not None:
        where, lon, lat = f"features[{i}].properties.", props.get("lon"), props.get("lat")
    elif isinstance(geom, dict) and geom.get("type") == "Point" and \
            isinstance(geom.get("coordinates"), list) and len(geom["coordinates"]) >= 2:
        where, (lon, lat) = f"features[{i}].geometry.coordinates.", geom["coordinates"][:2]
    else:
        return  # other geometries: the parser checks them
    problem = limits.check_lon_lat(lon, lat, prefix=where)
    if problem is not None:
        raise AlertImportError(f"{problem[0]}: {problem[1]}", field=problem[0])


def import_geojson(svc: Service, doc: Any, *, by: str) -> UpsertResult:
    """Import an alerts FeatureCollection (a request body); statuses and history stay.

    Parameters
    ----------
    svc : Service
    doc : dict
        The parsed FeatureCollection.
    by : str
        Who imports (recorded in the history of new alerts).

    Raises
    ------
    StoreInputError
        The first problem, naming the field (a JSON path when known) and the reason.
    """
    from haulwatch.routes.alerts import AlertSchemaError, alerts_from_geojson

    _check_times_zoned(doc)
    try:
        frame = alerts_from_geojson(doc, timezone="UTC", source="body")
    except AlertSchemaError as exc:
        named = _FIELD_RE.search(str(exc))
        raise AlertImportError(str(exc), field=named.group(1) if named else "") from None
    result = svc.store.upsert_alerts(frame, by=by)
    publish_alerts(svc, [*result.inserted, *result.updated])
    return result


def import_file(svc: Service, path: Path, *, by: str = "startup") -> UpsertResult:
    """Import an alerts.geojson / alerts.csv written by the batch audit (start-up load).

    Times without an offset are read in the dataset's zone, as ``haulwatch audit`` writes them.
    """
    from haulwatch.errors import UserError
    from haulwatch.routes.alerts import read_alerts

    tz = svc.registry.timezone if svc.registry is not None else DEFAULT_TIMEZONE
    try:
        frame = read_alerts(Path(path), timezone=tz)
    except UserError:
        raise
    except (ValueError, OverflowError) as exc:  # e.g. a time beyond what pandas holds
        raise AlertImportError(f"load_alerts: {str(path)!r} cannot be read: "
                               f"{limits.snippet(str(exc), 200)}", field="load_alerts") from None
    return svc.store.upsert_alerts(frame, by=by)


def change_status(svc: Service, alert_id: str, status: str, *, by: str, note: str = "",
                  expected_version: int | None = None) -> dict[str, Any]:
    """Set an alert's status (appended to its history) and stream the ``status`` event.

    Raises
    ------
    haulwatch.api.services.store.AlertNotFoundError
    haulwatch.api.services.store.StatusConflictError
        ``expected_version`` is stale.
    """
    detail = svc.store.set_status(alert_id, status, by=by, note=note,
                                  expected_version=expected_version)
    last = detail["history"][-1]
    svc.hub.publish("status", {"alert_id": alert_id, "status": detail["status"],
                               "status_version": detail["status_version"],
                               **{k: last[k] for k in ("by", "at", "note")}})
    return detail
