"""``GET /api/gateway``: the JT/T 808 gateway's counters (admin, analyst)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from haulwatch.api.auth import require_roles
from haulwatch.api.schemas import ErrorBody

router = APIRouter(tags=["gateway"])


@router.get(
    "/api/gateway",
    summary="JT/T 808 gateway status: connections, messages, refusals and rejected reports by reason",
    dependencies=[Depends(require_roles("analyst", "admin"))],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)
def gateway_status(request: Request) -> dict[str, Any]:
    """Counters of the running gateway (``{"running": false}`` when none is started)."""
    gw = getattr(request.app.state, "gateway", None)
    if gw is None:
        return {"running": False}
    cfg = gw.config
    return {"running": True, "port": gw.port if gw._server is not None else cfg.port,
            "settings": {"max_connections": cfg.max_connections,
                         "idle_timeout_s": cfg.idle_timeout_s,
                         "max_frame_bytes": cfg.max_frame_bytes,
                         "lift_info_id": cfg.lift_info_id, "coord_system": cfg.coord_system,
                         "refuse_unknown_vehicles": cfg.refuse_unknown_vehicles},
            "sink": gw.sink.stats() if hasattr(gw.sink, "stats") else None,
            **gw.metrics.snapshot()}
