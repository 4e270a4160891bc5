"""Live events: ``GET /api/stream`` (server-sent events from the :class:`EventHub`).

Events (``event:`` field): ``alert`` (AlertPublic JSON, new or updated),
``status`` (a status change: alert_id, status, status_version, by, at, note),
``mission`` (mission progress: the Mission JSON). Comments (``: keep-alive``)
keep proxies from closing an idle stream.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from haulwatch.api.auth import StreamReader
from haulwatch.api.services.events import EventHub, sse_messages

router = APIRouter(tags=["stream"])


@router.get(
    "/api/stream",
    summary="Live events (server-sent events)",
    description=(
        "`text/event-stream` with events `alert` (AlertPublic, new or updated), `status` "
        "(alert status change), `mission` (mission progress), and `: keep-alive` comments. "
        "The token may be passed as `?access_token=` (EventSource cannot set headers)."
    ),
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "event stream"}},
)
async def stream(request: Request, who: StreamReader) -> StreamingResponse:
    """Open an event stream."""
    hub: EventHub = request.app.state.service.hub
    keepalive_s: float = request.app.state.service.settings.keepalive_s
    return StreamingResponse(
        sse_messages(hub, keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
