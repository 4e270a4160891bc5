"""The gateway in its own process (``HAULWATCH_JT808_PROCESS=1``).

One Python process has one GIL: socket I/O, framing, decoding, answering
terminals and storing their points would otherwise compete with the live
audit and the HTTP API. With this option the gateway runs in a child process
with its own event loop and its own store connection: it stores each group of
points (the same :func:`~.sink.service_store` path, durable before any answer,
so acknowledged still means stored) and registrations, then sends the new
points to the service process over a pipe, where a thread hands them to the
live audit (alerts are stored and streamed there as for ``POST
/api/positions``). A point acknowledged but not yet audited when the service
stops is audited at the next start (the live audit replays stored points).

The child sends its counters every second over a second pipe, so ``GET
/api/gateway`` shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import os
import threading
from collections.abc import Callable
from typing import Any

from haulwatch.api.gateway.config import GatewayConfig

__all__ = ["GatewayProcess"]

log = logging.getLogger("haulwatch.gateway")


class _RemoteMetrics:
    """The child's last counters (``snapshot()`` like :class:`~.server.GatewayMetrics`)."""

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}

    def snapshot(self) -> dict[str, Any]:
        return dict(self.last)


class _RemoteSinkStats:
    def __init__(self) -> None:
        self.last: dict[str, Any] | None = None

    def stats(self) -> dict[str, Any] | None:
        return self.last


class GatewayProcess:
    """Run the JT/T 808 gateway in a child process; audit its new points here.

    Parameters
    ----------
    config : GatewayConfig
    db_url : str
        The store (the child opens its own connection).
    live_submit : callable or None
        Takes a tracks frame of new points (the live runner's ``submit``); None
        when the service has no live audit.
    target_coord_system : str
        The dataset's ``coord_system`` (points are converted to it).
    known_plates : set of str or None
        Plate keys of vehicles.csv (for ``refuse_unknown_vehicles``).
    """

    def __init__(self, config: GatewayConfig, db_url: str,
                 live_submit: Callable[[Any], Any] | None, *, target_coord_system: str = "wgs84",
                 known_plates: set[str] | None = None) -> None:
        self.config = config
        self.db_url = db_url
        self.live_submit = live_submit
        self.target = target_coord_system
        self.known_plates = known_plates
        self.metrics = _RemoteMetrics()
        self.sink = _RemoteSinkStats()
        self._proc: mp.process.BaseProcess | None = None
        self._threads: list[threading.Thread] = []
        self._port = config.port
        self._server = True  # for the router: "running"

    @property
    def port(self) -> int:
        """The bound port (known once the child listens)."""
        return self._port

    async def start(self) -> None:
        """Spawn the child; return when it listens."""
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        ctx = mp.get_context("spawn")
        points_parent, points_child = ctx.Pipe(duplex=False)
        info_parent, info_child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child_main, name="haulwatch-jt808",
                                 args=(self.config, self.db_url, self.target, self.known_plates,
                                       points_child, info_child), daemon=True)
        self._proc.start()
        points_child.close()
        info_child.close()
        kind, value = info_parent.recv()  # ("port", n) or ("error", text)
        if kind != "port":
            raise RuntimeError(f"the JT/T 808 gateway process did not start: {value}")
        self._port = int(value)
        self._threads = [
            threading.Thread(target=self._feed_live, args=(points_parent,),
                             name="jt808-live-feed", daemon=True),
            threading.Thread(target=self._read_info, args=(info_parent,),
                             name="jt808-metrics", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _feed_live(self, conn: Any) -> None:
        while True:
            try:
                tracks = conn.recv()
            except (EOFError, OSError):
                return
            if self.live_submit is None:
                continue
            try:
                self.live_submit(tracks)
            except Exception:  # the points are stored; the next start audits them
                log.exception("live audit of %d gateway points failed", len(tracks))

    def _read_info(self, conn: Any) -> None:
        while True:
            try:
                kind, value = conn.recv()
            except (EOFError, OSError):
                return
            if kind == "metrics":
                self.metrics.last = value.get("metrics", {})
                self.sink.last = value.get("sink")

    async def close(self) -> None:
        """Stop the child (its connections close; terminals reconnect later)."""
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        proc.terminate()
        await asyncio.to_thread(proc.join, 10)
        if proc.is_alive():
            proc.kill()
        for t in self._threads:  # the pipes are closed: the readers end; queued points are fed
            await asyncio.to_thread(t.join, 10)


class _PipeLive:
    """The child's stand-in for the live runner: new points go to the parent."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.Lock()

    def submit(self, tracks: Any) -> None:
        with self.lock, contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send(tracks)


def _child_main(config: GatewayConfig, db_url: str, target: str,
                known_plates: set[str] | None, points_conn: Any, info_conn: Any) -> None:
    """The child: the asyncio gateway storing through its own connection."""
    import signal
    from types import SimpleNamespace

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        from haulwatch.api.gateway.server import Gateway
        from haulwatch.api.gateway.sink import BatchingSink, service_store
        from haulwatch.api.gateway.terminals import SqlTerminalStore
        from haulwatch.api.services.store import Store
        from haulwatch.ingest.plates import normalize_plate

        store = Store(db_url)
        svc = SimpleNamespace(registry=SimpleNamespace(dataset=SimpleNamespace(
            coord_system=target)), store=store, live_runner=_PipeLive(points_conn))
        known = None
        if known_plates is not None:
            def known(plate: str) -> bool:
                return str(normalize_plate(plate)) in known_plates

        sink = BatchingSink(service_store(svc, coord_system=config.coord_system),
                            max_points=config.batch_max_points)
        gw = Gateway(config, sink, SqlTerminalStore(store.db), known_vehicle=known)
    except Exception as exc:  # report why, then stop
        info_conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return

    parent = os.getppid()

    async def run() -> None:
        await gw.start()
        info_conn.send(("port", gw.port))
        while os.getppid() == parent:  # the service died (even by SIGKILL): stop too
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                info_conn.send(("metrics", {"metrics": gw.metrics.snapshot(),
                                            "sink": gw.sink.stats()}))
        await gw.close()

    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError, EOFError):
        asyncio.run(run())
