"""Live positions: ``POST /api/positions`` (terminals, gateways).

HTTP only: the points are validated and stored by
:func:`haulwatch.api.services.positions.ingest_points` and audited by the
:class:`~haulwatch.api.services.live.LiveRunner`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from haulwatch.api.auth import Device
from haulwatch.api.deps import ServiceDep
from haulwatch.api.schemas import ErrorBody, PositionBatch, PositionResult
from haulwatch.api.services.positions import ingest_points

log = logging.getLogger("haulwatch.api")

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
    raw = [p.model_dump() for p in body.points]
    accepted, duplicates, rejected, new = await run_in_threadpool(ingest_points, svc, raw)
    new_alerts: list[str] = []
    if new is not None and svc.live_runner is not None:
        fut = svc.live_runner.submit(new)
        try:
            new_alerts = await asyncio.wait_for(asyncio.wrap_future(fut),
                                                timeout=svc.settings.live_wait_s)
        except asyncio.TimeoutError:
            new_alerts = []  # still running: its alerts will be streamed
        except Exception:  # the points are stored; a live-audit failure must not lose them
            log.exception("live audit of %d pushed points failed", len(new))
            new_alerts = []
    return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected,
            "new_alerts": new_alerts}
