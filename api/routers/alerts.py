"""Alerts: list, map layer, detail, status changes (with history), batch import."""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, status

from haulwatch.api.auth import Admin, Dispatcher, Reader
from haulwatch.api.deps import ServiceDep
from haulwatch.api.routers.errors import field_error, parse_time
from haulwatch.api.schemas import (
    AlertDetail,
    AlertPage,
    ErrorBody,
    FeatureCollection,
    ImportResult,
    StatusUpdate,
)
from haulwatch.api.services.alerts import change_status, import_geojson
from haulwatch.api.services.store import (
    STATUSES,
    AlertFilter,
    AlertNotFoundError,
    StatusConflictError,
    StoreInputError,
)
from haulwatch.ingest.limits import snippet
from haulwatch.timezone import DEFAULT_TIMEZONE

KINDS: tuple[str, ...] = (
    "illegal_dump", "route_deviation", "unpermitted_origin", "wrong_disposal",
    "unmanifested_trip", "manifest_not_executed", "gps_gap", "unregistered_vehicle",
    "dump_hotspot",
)


def _split(value: str | None, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if not value:
        return ()
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in allowed]
    if bad:
        raise field_error(("query", name), f"{snippet(bad[0])} is not one of {', '.join(allowed)}")
    return items


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    parts = value.split(",")
    try:
        nums = tuple(float(p) for p in parts)
    except ValueError:
        nums = ()
    if len(nums) != 4 or not all(pd.notna(n) and abs(n) != float("inf") for n in nums):
        raise field_error(("query", "bbox"), f"{snippet(value)} is not minlon,minlat,maxlon,maxlat")
    minlon, minlat, maxlon, maxlat = nums
    if not (-180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90):
        raise field_error(
            ("query", "bbox"),
            f"{snippet(value)}: need -180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90")
    return minlon, minlat, maxlon, maxlat


def alert_filter(
    svc: ServiceDep,
    kind: Annotated[str | None, Query(description="kind(s), comma-separated")] = None,
    status_: Annotated[str | None, Query(alias="status", description="status(es), comma-separated")] = None,
    vehicle_id: Annotated[str | None, Query(description="plate (compared normalized)")] = None,
    start: Annotated[str | None, Query(description="window overlaps from (ISO 8601; naive = dataset timezone)")] = None,
    end: Annotated[str | None, Query(description="window overlaps until (ISO 8601)")] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS-84)")] = None,
) -> AlertFilter:
    """Parse the shared alert filters (dependency)."""
    tz = svc.registry.timezone if svc.registry is not None else DEFAULT_TIMEZONE
    t0, t1 = parse_time(start, tz, "start"), parse_time(end, tz, "end")
    if t0 is not None and t1 is not None and t1 < t0:
        raise field_error(("query", "end"), f"end {snippet(end)} is before start {snippet(start)}")
    return AlertFilter(
        kind=_split(kind, KINDS, "kind"),
        status=_split(status_, STATUSES, "status"),
        vehicle_id=vehicle_id or None,
        start=t0,
        end=t1,
        bbox=_bbox(bbox),
    )


Filters = Annotated[AlertFilter, Depends(alert_filter)]

router = APIRouter(tags=["alerts"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid token"},
    403: {"model": ErrorBody, "description": "role not allowed"},
}


@router.get("/api/alerts", response_model=AlertPage, responses=_ERRORS,
            summary="List alerts (filtered, paged, newest first)")
def list_alerts(
    svc: ServiceDep, who: Reader, flt: Filters,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """A page of alerts matching the filters."""
    items, total = svc.store.query_alerts(flt, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/api/alerts.geojson", response_model=FeatureCollection, responses=_ERRORS,
            summary="Alerts as a GeoJSON FeatureCollection (same filters)")
def alerts_geojson(
    svc: ServiceDep, who: Reader, flt: Filters,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 5000,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """Alerts as map features; properties are the AlertPublic fields."""
    items, _ = svc.store.query_alerts(flt, limit=limit, offset=offset)
    features = []
    for item in items:
        props = {k: v for k, v in item.items() if k != "geometry"}
        features.append({"type": "Feature", "geometry": item["geometry"], "properties": props})
    return {"type": "FeatureCollection", "features": features}


@router.post("/api/alerts/import", response_model=ImportResult,
             responses={**_ERRORS, 422: {"model": ErrorBody, "description": "not an alerts FeatureCollection"}},
             summary="Import a batch audit's alerts.geojson (statuses are kept)")
def import_alerts(svc: ServiceDep, who: Admin, body: FeatureCollection) -> dict[str, int]:
    """Insert new alerts, update changed ones in place; statuses and history stay.

    Times must carry their zone (``Z`` or ``+08:00``); ids, times, coordinates and
    texts must be within the service limits (422 names the field otherwise).
    """
    try:
        result = import_geojson(svc, body.model_dump(), by=who.name)
    except StoreInputError as exc:
        raise field_error(("body", *_json_path(exc.field)), str(exc)) from None
    return {"inserted": len(result.inserted), "updated": len(result.updated),
            "unchanged": result.unchanged}


def _json_path(field: str) -> tuple[str | int, ...]:
    """``features[3].properties.start`` → ``("features", 3, "properties", "start")``."""
    out: list[str | int] = []
    for part in field.replace("]", "").split("."):
        if not part:
            continue
        name, _, index = part.partition("[")
        out.append(name)
        if index.isdigit():
            out.append(int(index))
    return tuple(out)


@router.get("/api/alerts/{alert_id}", response_model=AlertDetail,
            responses={**_ERRORS, 404: {"model": ErrorBody, "description": "no such alert"}},
            summary="One alert with its evidence and status history")
def get_alert(svc: ServiceDep, who: Reader, alert_id: str) -> dict[str, Any]:
    """The alert detail."""
    try:
        return svc.store.get_alert(alert_id)
    except AlertNotFoundError as exc:
        raise field_error(("path", "alert_id"), str(exc), 404) from None


@router.post("/api/alerts/{alert_id}/status", response_model=AlertDetail,
             responses={**_ERRORS,
                        404: {"model": ErrorBody, "description": "no such alert"},
                        409: {"model": ErrorBody, "description": "expected_version is stale"}},
             summary="Change an alert's status (appended to its history)")
def set_status(svc: ServiceDep, who: Dispatcher, alert_id: str, body: StatusUpdate) -> dict[str, Any]:
    """Set the status; with ``expected_version`` a stale view gets 409, never an overwrite."""
    try:
        return change_status(svc, alert_id, body.status, by=who.name, note=body.note or "",
                             expected_version=body.expected_version)
    except AlertNotFoundError as exc:
        raise field_error(("path", "alert_id"), str(exc), 404) from None
    except StatusConflictError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=[{"loc": ["body", "expected_version"], "msg": str(exc), "type": "conflict",
                     "current_version": exc.current_version}],
        ) from None

