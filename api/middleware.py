"""Request bounds and error shapes the whole service shares.

:class:`BodyLimit` answers 413 before a body larger than the limit is parsed
(``Content-Length`` checked first; a body sent without one is counted as it
arrives and never buffered beyond the limit). :func:`install_error_handlers`
makes every refusal a 4xx naming the field and the reason, quoting at most a
short snippet of the value (:func:`haulwatch.ingest.limits.snippet`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from haulwatch.errors import UserError
from haulwatch.ingest import limits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _too_large(size: str, max_bytes: int) -> bytes:
    return json.dumps({"detail": [{
        "loc": ["body"], "type": "too_large",
        "msg": f"request body is {size} bytes, at most {max_bytes:,} allowed "
               "(HAULWATCH_MAX_BODY_BYTES)"}]}).encode("utf-8")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413.

    Parameters
    ----------
    app : ASGI application
    max_bytes : int
        Largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = -1
            if size > self.max_bytes:
                await self._refuse(send, f"{size:,}")
                return
        # count what arrives (chunked bodies, lying Content-Length): buffer up to the limit
        chunks: list[bytes] = []
        total = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([], message), send)
                return
            body = message.get("body", b"")
            total += len(body)
            if total > self.max_bytes:
                await self._refuse(send, f"over {self.max_bytes:,}")
                return
            chunks.append(body)
            more = bool(message.get("more_body", False))
        await self.app(scope, _replay(chunks, None), send)

    async def _refuse(self, send: Send, size: str) -> None:
        body = _too_large(size, self.max_bytes)
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def _replay(chunks: list[bytes], then: Message | None) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if then is not None:
                return then
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _short(value: Any) -> Any:
    """A value as an error may quote it: short, JSON-able, valid UTF-8."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str) and len(value) <= limits.SNIPPET_CHARS:
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            pass
    return limits.snippet(value)


def _message(text: str, max_chars: int = 500) -> str:
    """An error message, cut to ``max_chars`` and made valid UTF-8."""
    if len(text) > max_chars:
        text = text[:max_chars] + "…"
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _clean_error(err: dict[str, Any]) -> dict[str, Any]:
    out = {"loc": [_short(p) for p in err.get("loc", ())], "msg": _message(str(err.get("msg", ""))),
           "type": str(err.get("type", "value_error"))}
    if "input" in err:
        out["input"] = _short(err["input"])
    return out


def install_error_handlers(app: FastAPI) -> None:
    """422 for validation and user errors, with short value snippets; never echo a body."""

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422,
                            content={"detail": [_clean_error(e) for e in exc.errors()]})

    @app.exception_handler(UserError)
    async def _user(request: Request, exc: UserError) -> JSONResponse:
        field = getattr(exc, "field", "") or ""
        loc = ["body", field] if field else ["body"]
        return JSONResponse(status_code=422, content={"detail": [
            {"loc": loc, "msg": _message(str(exc)), "type": "value_error"}]})

    @app.exception_handler(UnicodeError)
    async def _unicode(request: Request, exc: UnicodeError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [
            {"loc": ["body"], "type": "unicode_error",
             "msg": "a text is not valid Unicode (lone surrogate such as \\ud800)"}]})
