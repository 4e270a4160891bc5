"""Drone missions: dispatch for an alert, list, detail, QGC plan, evidence, abort; the fleet queue."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from haulwatch.api.auth import Dispatcher, Reader
from haulwatch.api.deps import ServiceDep
from haulwatch.api.routers.errors import field_error
from haulwatch.api.schemas import DispatchRequest, ErrorBody, MissionPage, MissionPublic
from haulwatch.api.services.dispatch import DispatchRefused
from haulwatch.api.services.store import AlertNotFoundError, MissionNotFoundError

router = APIRouter(tags=["missions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or invalid token"},
    403: {"model": ErrorBody, "description": "role not allowed"},
    404: {"model": ErrorBody, "description": "no such alert or mission"},
}


class DispatchAt(DispatchRequest):
    """Which dock flies, and when (issue 13: night, another time)."""

    at: datetime | None = Field(None, description="plan for this take-off time (with a zone)")
    skip_daylight: bool = Field(False, description="fly outside daylight on the dispatcher's "
                                "responsibility (recorded); night-capable nests need no override")


def _dispatcher(svc: ServiceDep) -> Any:
    if svc.dispatcher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="dispatch: the drone planner is not available in this service")
    return svc.dispatcher


@router.post(
    "/api/alerts/{alert_id}/dispatch",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MissionPublic,
    responses={**_ERRORS, 422: {"model": ErrorBody, "description": "mission not feasible (reason)"}},
    summary="Send a drone to look at an alert",
)
def dispatch(svc: ServiceDep, who: Dispatcher, alert_id: str,
             body: DispatchAt | None = None) -> dict[str, Any]:
    """Plan a mission from a dock to the alert and queue it for flight (202).

    422 with the reason (``out_of_range``, ``battery``, ``no_fly``, ``daylight``...)
    when no feasible mission exists; the refusal is recorded as a mission too.
    """
    manager = _dispatcher(svc)
    try:
        return manager.dispatch(alert_id, dock_site_id=body.dock_site_id if body else None,
                                by=who.name, at=body.at if body else None,
                                skip_daylight=bool(body and body.skip_daylight))
    except AlertNotFoundError as exc:
        raise field_error(("path", "alert_id"), str(exc), 404) from None
    except DispatchRefused as exc:
        loc = ["body", exc.field] if exc.field in ("dock_site_id", "at") else ["path", exc.field]
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": loc, "msg": exc.message, "type": exc.reason,
                     "mission_id": exc.mission_id, **exc.reason_dict}],
        ) from None


@router.get("/api/missions", response_model=MissionPage, responses=_ERRORS,
            summary="Missions, newest first")
def list_missions(
    svc: ServiceDep, who: Reader,
    alert_id: Annotated[str | None, Query(description="only missions for this alert")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> dict[str, Any]:
    """A page of missions."""
    items, total = svc.store.list_missions(alert_id=alert_id, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/api/missions/{mission_id}", response_model=MissionPublic, responses=_ERRORS,
            summary="One mission, with its flight record when the flight ended")
def get_mission(svc: ServiceDep, who: Reader, mission_id: str) -> dict[str, Any]:
    """The mission."""
    try:
        return svc.store.get_mission(mission_id)
    except MissionNotFoundError as exc:
        raise field_error(("path", "mission_id"), str(exc), 404) from None


@router.get("/api/missions/{mission_id}/plan", response_model=dict[str, Any], responses=_ERRORS,
            summary="The mission as a QGroundControl .plan document")
def get_plan(svc: ServiceDep, who: Reader, mission_id: str) -> dict[str, Any]:
    """The QGroundControl plan (404 for refused missions, which have none)."""
    try:
        rec = svc.store.get_mission(mission_id, with_plan=True)
    except MissionNotFoundError as exc:
        raise field_error(("path", "mission_id"), str(exc), 404) from None
    if not rec.get("plan"):
        raise field_error(("path", "mission_id"),
                          f"mission {mission_id!r} has no plan (status {rec['status']})", 404)
    return rec["plan"]


@router.get("/api/missions/{mission_id}/evidence", response_model=dict[str, Any],
            responses=_ERRORS,
            summary="What the flight brought back: flown track and photos (GeoJSON), outcome")
def get_evidence(svc: ServiceDep, who: Reader, mission_id: str) -> dict[str, Any]:
    """The flight's evidence for its alert (404 until the flight ended)."""
    from haulwatch.drone.evidence import flight_evidence

    try:
        rec = svc.store.get_mission(mission_id)
    except MissionNotFoundError as exc:
        raise field_error(("path", "mission_id"), str(exc), 404) from None
    if not rec.get("flight_record"):
        raise field_error(("path", "mission_id"),
                          f"mission {mission_id!r} has no flight record (status {rec['status']})",
                          404)
    return flight_evidence(rec["flight_record"])


@router.get("/api/missions/{mission_id}/log", responses=_ERRORS,
            response_class=FileResponse,
            summary="The flight's MAVLink telemetry log (.tlog: Mission Planner, MAVProxy)")
def get_flight_log(svc: ServiceDep, who: Reader, mission_id: str) -> FileResponse:
    """Kept when the service runs with HAULWATCH_FLIGHT_LOGS (404 otherwise)."""
    from haulwatch.api.services.fleet import flight_log_dir

    try:
        rec = svc.store.get_mission(mission_id)
    except MissionNotFoundError as exc:
        raise field_error(("path", "mission_id"), str(exc), 404) from None
    name = (rec.get("flight_record") or {}).get("flight_log")
    logs = flight_log_dir()
    path = None if not name or logs is None else Path(logs) / Path(str(name)).name
    if path is None or not path.is_file():
        raise field_error(("path", "mission_id"),
                          f"mission {mission_id!r} has no flight log (HAULWATCH_FLIGHT_LOGS)", 404)
    return FileResponse(path, media_type="application/octet-stream",
                        filename=f"{mission_id}.tlog")


@router.post("/api/missions/{mission_id}/abort", response_model=MissionPublic,
             responses=_ERRORS, summary="Abort a queued or flying mission (drone returns)")
def abort_mission(svc: ServiceDep, who: Dispatcher, mission_id: str) -> dict[str, Any]:
    """Abort; a mission already finished is returned unchanged."""
    manager = _dispatcher(svc)
    try:
        return manager.abort(mission_id, by=who.name)
    except MissionNotFoundError as exc:
        raise field_error(("path", "mission_id"), str(exc), 404) from None


# --------------------------------------------------------------------------- the fleet
# Several docks, each drone on its own MAVLink URL, one queue (api.services.fleet).


_FLEET_ERRORS: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    422: {"model": ErrorBody, "description": "alert not queued / bad priority or time"},
    503: {"model": ErrorBody, "description": "no fleet configured (HAULWATCH_DRONES)"},
}


class FleetRequest(BaseModel):
    """Queue an alert for the fleet."""

    alert_id: str = Field(min_length=1, max_length=64)
    priority: int = Field(0, ge=-1000, le=1000, description="higher goes first (before severity)")
    not_before: datetime | None = Field(None, description="a timed task: not before this time")


class FleetPriority(BaseModel):
    """A new priority for a queued alert."""

    priority: int = Field(ge=-1000, le=1000)


def _fleet(svc: Any) -> Any:
    from haulwatch.api.services.fleet import FleetUnavailable, get_fleet

    try:
        return get_fleet(svc)
    except FleetUnavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, detail=str(exc)) from None


def _fleet_call(fn: Any, field: tuple[str, str], *args: Any, **kw: Any) -> Any:
    from haulwatch.drone.schedule import SchedulerError

    try:
        return fn(*args, **kw)
    except AlertNotFoundError as exc:
        raise field_error(field, str(exc), 404) from None
    except SchedulerError as exc:
        raise field_error(field, str(exc), 422) from None


@router.get("/api/fleet", response_model=dict[str, Any], responses=_FLEET_ERRORS,
            summary="The drone queue: waiting, timed, flying; each drone's state and charge")
def fleet_view(svc: ServiceDep, who: Reader) -> dict[str, Any]:
    """The fleet's queue and drones (503 when no fleet is configured: HAULWATCH_DRONES)."""
    return _fleet(svc).view()


@router.post("/api/fleet/queue", status_code=status.HTTP_202_ACCEPTED,
             response_model=dict[str, Any], responses=_FLEET_ERRORS,
             summary="Queue an alert for a drone of the fleet (now or not before a time)")
def fleet_request(svc: ServiceDep, who: Dispatcher, body: FleetRequest) -> dict[str, Any]:
    """Queue; the scheduler picks the dock and drone (priority, one mission per drone)."""
    fleet = _fleet(svc)
    return _fleet_call(fleet.request, ("body", "alert_id"), body.alert_id,
                       priority=body.priority, not_before=body.not_before)


@router.patch("/api/fleet/queue/{alert_id}", response_model=dict[str, Any], responses=_FLEET_ERRORS,
              summary="Reprioritise a queued alert")
def fleet_reprioritise(svc: ServiceDep, who: Dispatcher, alert_id: str,
                       body: FleetPriority) -> dict[str, Any]:
    """Higher priority goes first."""
    fleet = _fleet(svc)
    return _fleet_call(fleet.reprioritise, ("path", "alert_id"), alert_id, body.priority,
                       by=who.name)


@router.delete("/api/fleet/queue/{alert_id}", response_model=dict[str, Any], responses=_FLEET_ERRORS,
               summary="Cancel a queued alert, or abort its flight (the drone comes home)")
def fleet_cancel(svc: ServiceDep, who: Dispatcher, alert_id: str) -> dict[str, Any]:
    """``dropped`` for a queued task, ``abort`` for one in flight."""
    fleet = _fleet(svc)
    return _fleet_call(fleet.cancel, ("path", "alert_id"), alert_id, by=who.name)


@router.post("/api/fleet/offer/{alert_id}", response_model=dict[str, Any], responses=_FLEET_ERRORS,
             summary="Apply the automatic-dispatch rule to an alert (off by default)")
def fleet_offer(svc: ServiceDep, who: Dispatcher, alert_id: str) -> dict[str, Any]:
    """Queued without a click when the rule matches; the reason either way."""
    fleet = _fleet(svc)
    return _fleet_call(fleet.offer, ("path", "alert_id"), alert_id)
