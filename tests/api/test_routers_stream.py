"""Server-sent events: delivery over a real socket, keep-alives, auth, slow clients dropped."""

from __future__ import annotations

import asyncio
import json
import queue
import secrets
import threading
import time

import httpx
import pytest
import uvicorn

from haulwatch.api.app import create_app
from haulwatch.api.services.events import EventHub, sse_messages
from haulwatch.api.settings import Settings, parse_tokens


class ServerThread:
    """uvicorn on a free loopback port in a thread (stopped by ``stop``)."""

    def __init__(self, app) -> None:
        self.app = app
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                timeout_graceful_shutdown=1, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.app.state.service.hub.shutdown()  # end streams, as `haulwatch serve` does
        self.server.should_exit = True
        self.thread.join(15)


def read_events(url: str, params: dict, headers: dict, out: queue.Queue, stop: threading.Event):
    """Collect (event, data or comment) from an SSE stream into ``out``."""
    try:
        _read_events(url, params, headers, out, stop)
    except (httpx.RemoteProtocolError, httpx.ReadError):
        out.put(("closed", None))  # the server stopped while we listened


def _read_events(url: str, params: dict, headers: dict, out: queue.Queue, stop: threading.Event):
    with httpx.Client(timeout=httpx.Timeout(10.0, read=30.0)) as client, \
            client.stream("GET", url, params=params, headers=headers) as resp:
        out.put(("status", resp.status_code, resp.headers.get("content-type")))
        event, data = None, []
        for line in resp.iter_lines():
            if stop.is_set():
                return
            if line.startswith(":"):
                out.put(("comment", line[1:].strip()))
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and event:
                out.put((event, json.loads("\n".join(data))))
                event, data = None, []


def next_matching(out: queue.Queue, pred, timeout_s: float = 15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            item = out.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if pred(item):
            return item
    raise AssertionError("expected event did not arrive")


@pytest.fixture
def served(tmp_path):
    tokens = {r: secrets.token_urlsafe(12) for r in ("analyst", "admin", "device", "dispatcher")}
    spec = ",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items())
    settings = Settings(db_url=f"sqlite:///{tmp_path / 's.db'}", tokens=tuple(parse_tokens(spec)),
                        keepalive_s=0.3)
    srv = ServerThread(create_app(settings))
    base = srv.start()
    yield base, tokens
    srv.stop()


def _fc(alert_id: str, end: str = "2024-05-01T06:10:00Z") -> dict:
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [120.6, 30.0]},
        "properties": {"alert_id": alert_id, "kind": "illegal_dump", "vehicle_id": "浙F1",
                       "start": "2024-05-01T06:00:00Z", "end": end, "severity": "high",
                       "manifest_id": "", "site_id": "", "summary": "s", "trip_id": ""}}]}


def test_alert_and_status_events_reach_a_query_token_client(served):
    base, tokens = served
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    reader = threading.Thread(target=read_events, daemon=True, args=(
        f"{base}/api/stream", {"access_token": tokens["analyst"]}, {}, out, stop))
    reader.start()
    status = next_matching(out, lambda i: i[0] == "status" and isinstance(i[1], int))
    assert status[1] == 200 and status[2].startswith("text/event-stream")
    next_matching(out, lambda i: i == ("comment", "connected"))
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    httpx.post(f"{base}/api/alerts/import", json=_fc("E1"), headers=admin).raise_for_status()
    ev = next_matching(out, lambda i: i[0] == "alert")
    assert ev[1]["alert_id"] == "E1" and ev[1]["status"] == "open"
    assert ev[1]["geometry"]["type"] == "Point"
    # the window grows: the same id is sent again
    httpx.post(f"{base}/api/alerts/import", json=_fc("E1", end="2024-05-01T06:30:00Z"),
               headers=admin).raise_for_status()
    ev = next_matching(out, lambda i: i[0] == "alert")
    assert ev[1]["alert_id"] == "E1" and ev[1]["end"] == "2024-05-01T06:30:00Z"
    httpx.post(f"{base}/api/alerts/E1/status", json={"status": "acknowledged"},
               headers={"Authorization": f"Bearer {tokens['dispatcher']}"}).raise_for_status()
    ev = next_matching(out, lambda i: i[0] == "status" and isinstance(i[1], dict))
    assert ev[1] == {**ev[1], "alert_id": "E1", "status": "acknowledged", "status_version": 2,
                     "by": "dispatcher-user"}
    # idle: keep-alive comments
    next_matching(out, lambda i: i == ("comment", "keep-alive"), timeout_s=5)
    stop.set()


def test_header_token_and_refusals(served):
    base, tokens = served
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    threading.Thread(target=read_events, daemon=True, args=(
        f"{base}/api/stream", {}, {"Authorization": f"Bearer {tokens['admin']}"}, out,
        stop)).start()
    assert next_matching(out, lambda i: i[0] == "status")[1] == 200
    stop.set()
    r = httpx.get(f"{base}/api/stream", params={"access_token": tokens["device"]})
    assert r.status_code == 403
    r = httpx.get(f"{base}/api/stream", params={"access_token": "wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_slow_client_is_dropped_not_the_server():
    async def scenario() -> tuple[list[str], int]:
        hub = EventHub(queue_size=3)
        gen = sse_messages(hub, keepalive_s=5.0)
        first = await gen.__anext__()  # subscribes
        assert "connected" in first
        for i in range(10):  # the client reads nothing meanwhile
            hub.publish("alert", {"alert_id": f"a{i}"})
        await asyncio.sleep(0.05)  # let call_soon_threadsafe deliveries run
        got = [m async for m in gen]
        return got, hub.dropped_clients

    got, dropped = asyncio.run(scenario())
    assert dropped == 1
    assert got[-1].startswith(": dropped")
    assert sum(m.startswith("event: alert") for m in got) == 2  # the bound minus the end marker


def test_hub_rejects_unknown_event_and_bad_size():
    with pytest.raises(ValueError, match="event: 'bogus'"):
        EventHub().publish("bogus", {})
    with pytest.raises(ValueError, match="queue_size"):
        EventHub(queue_size=0)


def test_a_stream_opened_after_shutdown_ends_at_once():
    async def scenario() -> list[str]:
        hub = EventHub()
        hub.shutdown()  # shutdown began before this client's generator first ran
        return [m async for m in sse_messages(hub, keepalive_s=60.0)]

    got = asyncio.run(asyncio.wait_for(scenario(), timeout=10))
    assert len(got) == 1 and "connected" in got[0]


def test_close_ends_open_streams_but_clients_may_reconnect():
    async def scenario() -> tuple[list[str], list[str]]:
        hub = EventHub()
        first = sse_messages(hub, keepalive_s=60.0)
        assert "connected" in await first.__anext__()
        hub.close()
        await asyncio.sleep(0.05)
        ended = [m async for m in first]
        second = sse_messages(hub, keepalive_s=60.0)
        assert "connected" in await second.__anext__()
        hub.publish("alert", {"alert_id": "a1"})
        after = [await asyncio.wait_for(second.__anext__(), timeout=5)]
        await second.aclose()
        return ended, after

    ended, after = asyncio.run(scenario())
    assert ended == []
    assert after[0].startswith("event: alert")
