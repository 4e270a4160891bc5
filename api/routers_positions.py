"""Live positions: ``POST /api/positions`` (terminals, gateways).

Points are validated by the same code that reads ``tracks.csv``
(:func:`haulwatch.ingest.tracks.tracks_from_table`): a bad point is rejected
with its index, field and reason and the others go on. New points are stored
idempotently (the same vehicle and time count once), then fed to the live
audit (:mod:`haulwatch.routes.live`), whose new or grown alerts are stored and
streamed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from fastapi import APIRouter
from haulwatch.api.auth import Device
from haulwatch.api.deps import Service, ServiceDep
from haulwatch.api.routers_alerts import publish_alerts
from haulwatch.api.schemas import ErrorBody, PositionBatch, PositionResult

log = logging.getLogger("haulwatch.api")

_FIELDS = ("vehicle_id", "time", "lon", "lat", "speed_kmh", "heading_deg", "load", "lift")


def _column(values: list[Any]) -> pa.ChunkedArray:
    """JSON values → one pyarrow column (mixed or nested types become text)."""
    try:
        arr = pa.array(values)
        if pa.types.is_nested(arr.type):
            raise TypeError("nested")
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        arr = pa.array(
            [None if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else str(v))
             for v in values],
            type=pa.string(),
        )
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    return pa.chunked_array([arr])


def validate_points(raw: list[dict[str, Any]], *, timezone: str,
                    ) -> tuple[pd.DataFrame, list[dict[str, Any]], int]:
    """Validate pushed points like rows of ``tracks.csv``.

    Parameters
    ----------
    raw : list of dict
        The pushed points (keys of :class:`~haulwatch.api.schemas.PositionIn`).
    timezone : str
        Zone of naive times (the dataset's).

    Returns
    -------
    tracks : DataFrame
        Valid points, sorted by vehicle and time, batch duplicates removed;
        ``src_row`` is the 1-based batch position.
    rejected : list of dict
        ``{"index", "field", "reason"}`` per refused point (0-based index).
    duplicates : int
        Points repeated within the batch (same vehicle and time).
    """
    from haulwatch.ingest.tracks import tracks_from_table

    n = len(raw)
    cols = {}
    for name in _FIELDS:
        values = [p.get(name) for p in raw]
        if name in ("vehicle_id", "time", "lon", "lat") or any(v is not None for v in values):
            cols[name] = _column(values)
    result = tracks_from_table(cols, n, file="positions", timezone=timezone)
    rej = result.rejects
    rejected: list[dict[str, Any]] = []
    if len(rej):
        dropped = rej[rej["action"] == "row_dropped"] if "action" in rej.columns else rej
        rejected = [
            {"index": int(row) - 1, "field": str(field), "reason": str(reason)}
            for row, field, reason in zip(dropped["row"], dropped["field"], dropped["reason"],
                                          strict=True)
        ]
    return result.tracks, rejected, int(result.duplicates_dropped)


router = APIRouter(tags=["positions"])


@router.post(
    "/api/positions",
    response_model=PositionResult,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
    summary="Push GPS points (any vehicles, any order); returns alerts they raised",
)
def push_positions(svc: ServiceDep, who: Device, body: PositionBatch) -> dict[str, Any]:
    """Store new points idempotently and run the live audit on the vehicles that moved."""
    tz = svc.registry.timezone if svc.registry is not None else "Asia/Shanghai"
    raw = [p.model_dump() for p in body.points]
    tracks, rejected, duplicates = validate_points(raw, timezone=tz) if raw else (
        pd.DataFrame(), [], 0)
    new_alerts: list[str] = []
    if len(tracks) == 0:
        return {"accepted": 0, "duplicates": duplicates, "rejected": rejected, "new_alerts": []}
    tracks = tracks.assign(
        vehicle_id=tracks["vehicle_id"].astype(str), vehicle_key=tracks["vehicle_key"].astype(str),
        load=tracks["load"].astype(object).where(tracks["load"].notna(), None))
    new = svc.store.insert_points(tracks)
    accepted = int(new.sum())
    duplicates += int((~new).sum())
    if accepted and svc.live is not None:
        new_alerts = run_live(svc, tracks.loc[new].reset_index(drop=True))
    return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected,
            "new_alerts": new_alerts}


def run_live(svc: Service, points: pd.DataFrame) -> list[str]:
    """Feed new points to the live audit; store and stream what changed.

    Returns
    -------
    list of str
        Ids of alerts that did not exist before.
    """
    update = svc.live.push(points)
    changed = update.changed
    if len(changed) == 0 and not update.withdrawn:
        return []
    result = svc.store.upsert_alerts(changed, by="live")
    if update.withdrawn:
        gone = svc.store.withdraw_alerts(list(update.withdrawn))
        if gone:
            log.info("live audit withdrew %d alert(s) it no longer supports", len(gone))
    publish_alerts(svc, [*result.inserted, *result.updated])
    return list(np.asarray(result.inserted, dtype=object))
