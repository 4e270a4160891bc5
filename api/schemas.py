"""Request and response bodies of the HTTP API (named by suffix: Public, Detail, Update...).

Times are ISO 8601 UTC strings with ``Z``; geometries are GeoJSON objects in
WGS-84 (RFC 7946).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from haulwatch.ingest import limits
from haulwatch.ingest.limits import BATCH_MAX_POINTS, ID_MAX_CHARS, TEXT_MAX_CHARS


def _limited(check: Any) -> AfterValidator:
    """A pydantic validator from an :mod:`haulwatch.ingest.limits` check (reason as message)."""

    def validate(value: Any) -> Any:
        if value is not None:
            problem = check(value)
            if problem is not None:
                raise ValueError(problem[1])
        return value

    return AfterValidator(validate)


#: Free text: valid Unicode, no control characters, at most TEXT_MAX_CHARS.
Text = Annotated[str, Field(max_length=TEXT_MAX_CHARS),
                 _limited(lambda v: limits.check_text(v, "text"))]
#: An id (site, alert...): limits.ID_PATTERN.
Id = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS, pattern=r"^[\w.:~-]+$"),
               _limited(lambda v: limits.check_id(v, "id"))]

AlertKind = Literal[
    "illegal_dump", "route_deviation", "unpermitted_origin", "wrong_disposal",
    "unmanifested_trip", "manifest_not_executed", "gps_gap", "unregistered_vehicle",
    "dump_hotspot",
]
AlertStatus = Literal["open", "acknowledged", "confirmed", "dismissed"]
MissionStatus = Literal[
    "planned", "uploading", "flying", "completed", "failed", "aborted", "refused",
]


class Health(BaseModel):
    """Liveness and a count of stored alerts."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="haulwatch version")
    alerts: int = Field(description="alerts in the store")


class AlertPublic(BaseModel):
    """An alert as the map and the list show it (the contract fields + status)."""

    alert_id: str = Field(description="stable id: the same input gives the same id")
    kind: str = Field(description="alert kind (docs/formats.md)")
    vehicle_id: str = Field(description="plate as the tracks write it; empty for dump_hotspot")
    start: str = Field(description="start of the evidence window, ISO 8601 UTC")
    end: str = Field(description="end of the evidence window, ISO 8601 UTC")
    severity: str = Field(description="high, medium or low")
    manifest_id: str = Field(description="manifest concerned, or empty")
    site_id: str = Field(description="site concerned, or empty")
    summary: str = Field(description="one human-readable sentence")
    summary_zh: str | None = Field(default=None, description=(
        "the summary in Simplified Chinese, rendered from the alert's facts (times in the "
        "dataset's zone, sites by name)"))
    summary_en: str | None = Field(default=None, description="the summary in English")
    trip_id: str = Field(description="trip concerned, or empty")
    lon: float | None = Field(description="representative point, WGS-84 degrees")
    lat: float | None = Field(description="representative point, WGS-84 degrees")
    status: AlertStatus = Field(description="dispatcher status")
    status_version: int = Field(description="increments on every status change (for expected_version)")
    geometry: dict[str, Any] | None = Field(description="GeoJSON geometry, WGS-84")


class HistoryEntry(BaseModel):
    """One status change (history is append-only)."""

    status: AlertStatus
    by: str = Field(description="token name of who made the change")
    at: str = Field(description="when, ISO 8601 UTC")
    note: str = ""
    version: int = Field(description="status_version this change produced")


class AlertDetail(AlertPublic):
    """An alert with its evidence and status history."""

    evidence: dict[str, Any] = Field(description="what a dispatcher needs to judge the alert")
    history: list[HistoryEntry]


class AlertPage(BaseModel):
    """A page of alerts."""

    items: list[AlertPublic]
    total: int = Field(description="alerts matching the filters, all pages")
    limit: int
    offset: int


class StatusUpdate(BaseModel):
    """A dispatcher's status change."""

    model_config = ConfigDict(extra="forbid")

    status: AlertStatus
    note: Text | None = Field(default=None, description="why (free text, kept in the history)")
    expected_version: int | None = Field(
        default=None, ge=1,
        description="the status_version you saw; 409 if the alert changed since")


class ImportResult(BaseModel):
    """What an import did."""

    inserted: int
    updated: int
    unchanged: int


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection (RFC 7946)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]


class PositionIn(BaseModel):
    """One GPS point pushed by a terminal (validated point by point: a bad point is
    rejected with its index, field and reason; the others are accepted)."""

    model_config = ConfigDict(extra="ignore")

    vehicle_id: Any = Field(default=None, description="plate (required)")
    time: Any = Field(default=None, description="ISO 8601 (naive = dataset timezone) or epoch seconds (required)")
    lon: Any = Field(default=None, description="degrees in the dataset coord_system (required)")
    lat: Any = Field(default=None, description="degrees in the dataset coord_system (required)")
    speed_kmh: Any = Field(default=None, description="optional")
    heading_deg: Any = Field(default=None, description="optional")
    load: Any = Field(default=None, description="optional: empty, half, full")
    lift: Any = Field(default=None, description="optional: 1 while the dump body is raised, else 0")


class PositionBatch(BaseModel):
    """A batch of points (any vehicles, any order)."""

    points: list[PositionIn] = Field(max_length=BATCH_MAX_POINTS)


class RejectedPoint(BaseModel):
    """Why one pushed point was refused."""

    index: int = Field(description="position in the batch, 0-based")
    field: str
    reason: str


class PositionResult(BaseModel):
    """What a position push did."""

    accepted: int = Field(description="new points stored")
    duplicates: int = Field(description="points already stored (same vehicle and time)")
    rejected: list[RejectedPoint]
    new_alerts: list[str] = Field(description="ids of alerts this push raised")


class DispatchRequest(BaseModel):
    """Which dock flies (default: the service's dock or the nearest feasible one)."""

    model_config = ConfigDict(extra="forbid")

    dock_site_id: Id | None = Field(default=None, description="a nest site_id")


class MissionPublic(BaseModel):
    """A drone mission and its progress."""

    mission_id: str
    alert_id: str
    dock_site_id: str
    status: MissionStatus
    reason: str = Field(description="why it was refused, failed or aborted (empty otherwise)")
    progress: dict[str, Any] = Field(description="latest progress: phase, item, position, battery")
    created_by: str
    created: str
    updated: str
    flight_record: dict[str, Any] | None = Field(
        default=None, description="the flight record once the flight ended")


class MissionPage(BaseModel):
    """A page of missions."""

    items: list[MissionPublic]
    total: int
    limit: int
    offset: int


class ErrorBody(BaseModel):
    """An error: what field, what is wrong."""

    detail: Any
