"""The in-process event hub behind ``GET /api/stream`` (server-sent events).

Events (``event:`` field): ``alert`` (AlertPublic JSON, new or updated),
``status`` (a status change: alert_id, status, status_version, by, at, note),
``mission`` (mission progress: the Mission JSON). Comments (``: keep-alive``)
keep proxies from closing an idle stream. Each client has its own bounded
queue: a client that falls ``stream_queue_size`` events behind is dropped
(its stream ends; EventSource reconnects), the server never blocks on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from haulwatch.api.services.store import dumps

if TYPE_CHECKING:
    from haulwatch.api.deps import Service

EVENTS: tuple[str, ...] = ("alert", "status", "mission")


class _Client:
    """One subscriber: a bounded queue living on the event loop that serves it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=size)
        self.dropped = False

    def offer(self, message: str | None) -> None:
        """Enqueue (runs on the client's loop); a full queue drops the client."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()  # make room for the end marker
            self.queue.put_nowait(None)


class EventHub:
    """Fan events out to every connected stream client; thread-safe publish.

    Parameters
    ----------
    queue_size : int
        Events buffered per client before that client is dropped.
    """

    def __init__(self, queue_size: int = 1000) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size: {queue_size!r} must be >= 1")
        self.queue_size = queue_size
        self._clients: set[_Client] = set()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self._closed = False
        self.dropped_clients = 0

    @property
    def client_count(self) -> int:
        """Connected clients."""
        with self._lock:
            return len(self._clients)

    def subscribe(self) -> _Client:
        """Register a client on the running event loop (ended at once after shutdown)."""
        client = _Client(asyncio.get_running_loop(), self.queue_size)
        with self._lock:
            if not self._closed:
                self._clients.add(client)
                return client
        client.offer(None)
        return client

    def unsubscribe(self, client: _Client) -> None:
        """Forget a client."""
        with self._lock:
            self._clients.discard(client)
            if client.dropped:
                self.dropped_clients += 1

    def publish(self, event: str, data: Any) -> None:
        """Send one event to every client (callable from any thread).

        Parameters
        ----------
        event : str
            One of :data:`EVENTS`.
        data : JSON-serialisable
            The event payload.
        """
        if event not in EVENTS:
            raise ValueError(f"event: {event!r} is not one of {', '.join(EVENTS)}")
        message = f"event: {event}\nid: {next(self._seq)}\ndata: {dumps(data)}\n\n"
        self._send(message)

    def close(self) -> None:
        """End every open stream (clients may reconnect)."""
        self._send(None)

    def shutdown(self) -> None:
        """End every stream, and every stream opened from now on (server shutdown)."""
        with self._lock:
            self._closed = True
        self._send(None)

    def _send(self, message: str | None) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            try:
                client.loop.call_soon_threadsafe(client.offer, message)
            except RuntimeError:  # that client's loop is closed
                with self._lock:
                    self._clients.discard(client)


async def sse_messages(hub: EventHub, keepalive_s: float) -> AsyncIterator[str]:
    """The text/event-stream chunks of one client, until the hub ends its stream."""
    # Subscribed before the first chunk: a client that has read ": connected" misses
    # no later event. After hub.shutdown() a new subscriber's stream ends at once.
    client = hub.subscribe()
    try:
        yield "retry: 3000\n: connected\n\n"
        while True:
            try:
                message = await asyncio.wait_for(client.queue.get(), timeout=keepalive_s)
            except asyncio.TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if message is None:
                if client.dropped:
                    yield ": dropped: client too slow\n\n"
                break
            yield message
    finally:
        hub.unsubscribe(client)


def publish_alerts(svc: Service, alert_ids: list[str]) -> None:
    """Send ``alert`` events for these alerts (new or changed)."""
    if not alert_ids:
        return
    for rec in svc.store.get_alerts(alert_ids):
        svc.hub.publish("alert", rec)
