"""Live positions: ``POST /api/positions`` (terminals, gateways).

HTTP only: :func:`haulwatch.api.services.positions.push_points` validates and
stores the points and waits for the live audit
(:class:`~haulwatch.api.services.live.LiveRunner`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from haulwatch.api.auth import Device
from haulwatch.api.deps import ServiceDep
from haulwatch.api.schemas import ErrorBody, PositionBatch, PositionResult
from haulwatch.api.services.positions import push_points

router = APIRouter(tags=["positions"])


@router.post(
    "/api/positions",
    response_model=PositionResult,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
    summary="Push GPS points (any vehicles, any order); returns alerts they raised",
)
async def push_positions(svc: ServiceDep, who: Device, body: PositionBatch) -> dict[str, Any]:
    """Store new points idempotently and run the live audit on the vehicles that moved.

    Points are validated one by one (bad ones come back in ``rejected`` with
    their index, field and reason). The response waits for the live audit run
    that includes these points (at most ``live_wait_s``); alerts are streamed
    on ``/api/stream`` either way.
    """
    return await push_points(svc, [p.model_dump() for p in body.points])
