"""The gateway's TCP front end in its own process (``HAULWATCH_JT808_PROCESS=1``).

One Python process has one GIL: socket I/O, framing, decoding and answering
terminals (about half of the gateway's CPU per report) then compete with the
store and the live audit. With this option the front end runs in a child
process (its own event loop, its own store connection for registrations and
auth codes) and sends each group of decoded points to the service process
over a pipe; the service stores them (the same :func:`~.sink.service_store`),
feeds the live audit and sends the outcomes back; the child answers the
terminals only then (acknowledged still means stored).

The child sends its counters every second over a second pipe, so ``GET
/api/gateway`` shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import threading
from collections.abc import Callable
from typing import Any

from haulwatch.api.gateway.config import GatewayConfig
from haulwatch.api.gateway.sink import Outcome

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
    """Run the JT/T 808 front end in a child process; store its points here.

    Parameters
    ----------
    config : GatewayConfig
    db_url : str
        The store (the child opens its own connection for the terminal table).
    store : callable
        ``store(points) -> outcomes`` in this process (:func:`~.sink.service_store`).
    known_plates : set of str or None
        Plate keys of vehicles.csv (for ``refuse_unknown_vehicles``).
    """

    def __init__(self, config: GatewayConfig, db_url: str,
                 store: Callable[[list[dict[str, Any]]], list[Outcome]], *,
                 known_plates: set[str] | None = None) -> None:
        self.config = config
        self.db_url = db_url
        self.store = store
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
        points_parent, points_child = ctx.Pipe(duplex=True)
        info_parent, info_child = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child_main, name="haulwatch-jt808",
                                 args=(self.config, self.db_url, self.known_plates,
                                       points_child, info_child), daemon=True)
        self._proc.start()
        points_child.close()
        info_child.close()
        kind, value = info_parent.recv()  # ("port", n) or ("error", text)
        if kind != "port":
            raise RuntimeError(f"the JT/T 808 front end did not start: {value}")
        self._port = int(value)
        self._threads = [
            threading.Thread(target=self._serve_points, args=(points_parent,),
                             name="jt808-store", daemon=True),
            threading.Thread(target=self._read_info, args=(info_parent,),
                             name="jt808-metrics", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _serve_points(self, conn: Any) -> None:
        while True:
            try:
                points = conn.recv()
            except (EOFError, OSError):
                return
            try:
                reply: Any = ("ok", self.store(points))
            except Exception as exc:  # the child answers "failure"; the terminal re-sends
                log.exception("storing %d gateway points failed", len(points))
                reply = ("error", f"{type(exc).__name__}: {exc}")
            try:
                conn.send(reply)
            except (EOFError, OSError):
                return

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


def _child_main(config: GatewayConfig, db_url: str, known_plates: set[str] | None,
                points_conn: Any, info_conn: Any) -> None:
    """The child: the asyncio front end with a sink that stores through the parent."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    try:
        from haulwatch.api.gateway.server import Gateway
        from haulwatch.api.gateway.sink import BatchingSink
        from haulwatch.api.gateway.terminals import SqlTerminalStore
        from haulwatch.api.services.store import Store
        from haulwatch.ingest.plates import normalize_plate

        store = Store(db_url)
        lock = threading.Lock()

        def remote_store(points: list[dict[str, Any]]) -> list[Outcome]:
            with lock:
                points_conn.send(points)
                kind, value = points_conn.recv()
            if kind != "ok":
                raise RuntimeError(value)
            return value

        known = None
        if known_plates is not None:
            def known(plate: str) -> bool:
                return str(normalize_plate(plate)) in known_plates

        gw = Gateway(config, BatchingSink(remote_store, max_points=config.batch_max_points),
                     SqlTerminalStore(store.db), known_vehicle=known)
    except Exception as exc:  # report why, then stop
        info_conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return

    async def run() -> None:
        await gw.start()
        info_conn.send(("port", gw.port))
        while True:
            await asyncio.sleep(1.0)
            with contextlib.suppress(Exception):
                info_conn.send(("metrics", {"metrics": gw.metrics.snapshot(),
                                            "sink": gw.sink.stats()}))

    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError, EOFError):
        asyncio.run(run())
