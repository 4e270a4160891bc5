"""The JT/T 808 gateway: an asyncio TCP server in front of the point sink.

One coroutine per connection reads bytes, cuts frames
(:class:`~haulwatch.ingest.jt808.FrameSplitter`), decodes them and answers:

=========  ===========================================================
message    answer
=========  ===========================================================
0x0100     0x8100 with the terminal's auth code (the same code again on
           a new registration); result 2 for a plate refused
0x0102     0x8001: 0 when the code matches the phone's, else 1
0x0002     0x8001 result 0
0x0003     0x8001 result 0; the registration is forgotten
0x0200     0x8001 result 0 once the point is stored (or was already);
           1 before authentication (not stored) or when storing failed;
           2 for a body too short or values out of range
0x0704     0x8001 result 0 once every good item is stored; as 0x0200
0x0001     no answer (the terminal's answer to us)
0x0004     0x8004 with the platform's UTC time (2019 query)
other      0x8001 result 3 (unsupported)
=========  ===========================================================

Unreadable frames (bad check code, broken escape, length that lies,
truncated) are answered 0x8001 result 2 when their header can be read, else
dropped; each is counted by reason in :class:`GatewayMetrics` and logged
once per terminal. A connection is closed on idle timeout (no valid frame),
too many consecutive bad frames, too much garbage, a peer that does not read
our answers, or past the connection cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from haulwatch.api.gateway.config import GatewayConfig
from haulwatch.api.gateway.sink import Outcome, PointSink
from haulwatch.api.gateway.terminals import TerminalStore
from haulwatch.ingest.jt808 import (
    MSG,
    REGISTER_RESULT,
    RESULT,
    FrameSplitter,
    Jt808Error,
    Location,
    Reassembler,
    decode_authenticate,
    decode_batch,
    decode_frame,
    decode_location,
    decode_register,
    encode_frame,
    encode_general_response,
    encode_register_response,
    unescape,
)
from haulwatch.ingest.jt808.frame import Header, decode_header
from haulwatch.ingest.jt808.messages import encode_server_time
from haulwatch.ingest.limits import check_lon_lat, check_plate, check_time

__all__ = ["Gateway", "GatewayMetrics", "location_to_point"]

log = logging.getLogger("haulwatch.gateway")

_PIPELINED = (b"\x02\x00", b"\x07\x04")


class GatewayMetrics:
    """Counters of the gateway (``GET /api/gateway``)."""

    def __init__(self) -> None:
        self.started = time.time()
        self.open_connections = 0
        self.counts: Counter[str] = Counter()
        self.messages: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.points: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.recent_rejects: deque[dict[str, Any]] = deque(maxlen=50)
        self._logged: set[tuple[str, str]] = set()

    def log_once(self, who: str, reason: str, message: str) -> None:
        """Log ``message`` the first time ``who`` hits ``reason``."""
        key = (who, reason)
        if key in self._logged:
            return
        if len(self._logged) > 100_000:
            self._logged.clear()
        self._logged.add(key)
        log.warning("jt808 %s: %s: %s", who, reason, message)

    def snapshot(self) -> dict[str, Any]:
        """All counters as plain JSON."""
        return {
            "uptime_s": round(time.time() - self.started, 1),
            "open_connections": self.open_connections,
            "connections": dict(self.counts),
            "messages": dict(self.messages),
            "refused": dict(self.refused),
            "closed": dict(self.closed),
            "points": dict(self.points),
            "rejected": dict(self.rejected),
            "recent_rejects": list(self.recent_rejects),
        }


def location_to_point(loc: Location, plate: str, *, lift_info_id: int,
                      ) -> tuple[dict[str, Any] | None, str]:
    """A decoded location report → a tracks point, or None and the reason it is refused.

    Parameters
    ----------
    loc : Location
        Decoded 0x0200 body.
    plate : str
        The registered plate (the point's ``vehicle_id``).
    lift_info_id : int
        Additional-information id of the lift state.

    Returns
    -------
    point : dict or None
        ``vehicle_id, time`` (epoch seconds), ``lon, lat, speed_kmh, heading_deg, load, lift``.
    reason : str
        Why there is no point (``no_fix``, ``bad_time: ...``, ``bad_coordinates: ...``).
    """
    if not loc.positioned:
        return None, "no_fix: status bit 1 (positioned) is 0"
    if loc.time is None:
        return None, f"bad_time: {loc.time_error}"
    problem = check_time(loc.time, "time")
    if problem is not None:
        return None, f"bad_time: {problem[1]}"
    lat, lon = loc.lat, loc.lon
    problem = check_lon_lat(lon, lat)
    if problem is not None:
        return None, f"bad_coordinates: {problem[0]} {problem[1]}"
    lift_raw = loc.extra_int(lift_info_id)
    return {
        "vehicle_id": plate,
        "time": int(loc.time.timestamp()),  # epoch seconds (UTC), as tracks.csv may write them
        "lon": lon,
        "lat": lat,
        "speed_kmh": loc.speed_kmh,
        "heading_deg": float(loc.heading_deg),
        "load": loc.load,
        "lift": None if lift_raw is None else (1 if lift_raw else 0),
    }, ""


@dataclass
class _Session:
    """One terminal on a connection."""

    phone: str
    plate: str = ""
    authenticated: bool = False


@dataclass(eq=False)
class _Conn:
    peer: str
    writer: asyncio.StreamWriter
    splitter: FrameSplitter
    reassembler: Reassembler
    last_valid: float
    sessions: dict[str, _Session] = field(default_factory=dict)
    flow: int = 0
    bad_in_row: int = 0
    close_reason: str = ""
    inflight: set[asyncio.Task] = field(default_factory=set)

    def next_flow(self) -> int:
        self.flow = (self.flow + 1) & 0xFFFF
        return self.flow


class Gateway:
    """JT/T 808 TCP server.

    Parameters
    ----------
    config : GatewayConfig
        Limits and options.
    sink : PointSink
        Where points go (:class:`~haulwatch.api.gateway.sink.BatchingSink`).
    terminals : TerminalStore
        Registrations and auth codes.
    known_vehicle : callable, optional
        ``known_vehicle(plate) -> bool`` (plate as registered); used when
        ``config.refuse_unknown_vehicles``.
    clock : callable, default time.monotonic
        Seconds, for idle and sub-package timeouts.
    wall : callable, optional
        Current tz-aware time for 0x8004 (default: the system clock, UTC).
    """

    def __init__(self, config: GatewayConfig, sink: PointSink, terminals: TerminalStore, *,
                 known_vehicle: Callable[[str], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] | None = None) -> None:
        self.config = config
        self.sink = sink
        self.terminals = terminals
        self.known_vehicle = known_vehicle
        self.clock = clock
        self.wall = wall if wall is not None else (lambda: datetime.now(timezone.utc))
        self.metrics = GatewayMetrics()
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._conns: set[_Conn] = set()
        self._sweeper: asyncio.Task | None = None

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Listen on ``config.host:config.port``."""
        start = getattr(self.sink, "start", None)
        if start is not None:
            await start()
        self._server = await asyncio.start_server(
            self._handle, self.config.host, self.config.port,
            limit=max(4 * self.config.max_frame_bytes, 16384), backlog=4096)
        self._sweeper = asyncio.create_task(self._sweep_idle(), name="jt808-idle")

    async def _sweep_idle(self) -> None:
        """Close connections without a valid frame for ``idle_timeout_s`` (one timer for all)."""
        step = min(1.0, self.config.idle_timeout_s / 4)
        while True:
            await asyncio.sleep(step)
            now = self.clock()
            for conn in list(self._conns):
                if not conn.close_reason and now - conn.last_valid > self.config.idle_timeout_s:
                    conn.close_reason = "idle_timeout"
                    self._who_log(conn, "idle_timeout",
                                  f"no valid frame for {self.config.idle_timeout_s:g} s")
                    conn.writer.transport.abort()

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening, close the connections, flush the sink."""
        if self._server is not None:
            self._server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        close = getattr(self.sink, "close", None)
        if close is not None:
            await close()

    # ---------------------------------------------------------------- connection
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        m = self.metrics
        peer = writer.get_extra_info("peername")
        peer_s = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else "?"
        if m.open_connections >= self.config.max_connections:
            m.closed["connection_cap"] += 1
            m.log_once("*", "connection_cap", f"more than {self.config.max_connections} "
                                              "connections; new ones are closed")
            writer.transport.abort()
            return
        if task is not None:
            self._tasks.add(task)
        m.open_connections += 1
        m.counts["accepted"] += 1
        cfg = self.config
        conn = _Conn(peer=peer_s, writer=writer,
                     splitter=FrameSplitter(cfg.max_frame_bytes),
                     reassembler=Reassembler(max_bytes=cfg.subpackage_max_bytes,
                                             timeout_s=cfg.subpackage_timeout_s),
                     last_valid=self.clock())
        self._conns.add(conn)
        try:
            while not conn.close_reason:
                data = await reader.read(65536)  # idle connections are cut by _sweep_idle
                if not data:
                    conn.close_reason = conn.close_reason or "peer_closed"
                    break
                m.counts["bytes_in"] += len(data)
                items = conn.splitter.feed(data)
                for item in items:
                    if isinstance(item, Jt808Error):
                        self._bad(conn, item, None)
                    elif item[:2] in _PIPELINED and (conn.inflight or len(items) > 1):
                        # location reports of one connection are stored concurrently (one
                        # group commit for a burst); other messages wait for them (barrier)
                        while len(conn.inflight) >= cfg.max_inflight:
                            await asyncio.wait(conn.inflight, return_when=asyncio.FIRST_COMPLETED)
                        job = asyncio.create_task(self._frame(conn, item))
                        conn.inflight.add(job)
                        job.add_done_callback(conn.inflight.discard)
                    else:
                        if conn.inflight:
                            await asyncio.wait(set(conn.inflight))
                        await self._frame(conn, item)
                    if conn.close_reason:
                        break
                if conn.splitter.garbage_bytes > cfg.max_garbage_bytes:
                    conn.close_reason = "garbage"
                    self._who_log(conn, "garbage",
                                  f"{conn.splitter.garbage_bytes} bytes outside any frame")
                if conn.reassembler.held_bytes:
                    conn.reassembler.expire(self.clock())
        except (ConnectionError, OSError):
            conn.close_reason = conn.close_reason or "connection_reset"
        except asyncio.CancelledError:
            conn.close_reason = conn.close_reason or "shutdown"
        finally:
            self._conns.discard(conn)
            if conn.inflight:  # answers to reports being stored: let them finish (or fail)
                with contextlib.suppress(BaseException):
                    await asyncio.wait(set(conn.inflight), timeout=self.config.write_timeout_s)
            m.open_connections -= 1
            m.closed[conn.close_reason or "unknown"] += 1
            if conn.close_reason == "peer_closed":
                writer.close()
            else:
                writer.transport.abort()
            if task is not None:
                self._tasks.discard(task)

    def _who(self, conn: _Conn, phone: str | None = None) -> str:
        return f"terminal {phone}" if phone else f"peer {conn.peer}"

    def _who_log(self, conn: _Conn, reason: str, message: str, phone: str | None = None) -> None:
        self.metrics.log_once(phone or conn.peer, reason, f"{self._who(conn, phone)}: {message}")

    def _bad(self, conn: _Conn, err: Jt808Error, header: Header | None) -> None:
        self.metrics.refused[err.reason] += 1
        self._who_log(conn, err.reason, str(err), header.phone_key if header else None)
        conn.bad_in_row += 1
        if conn.bad_in_row >= self.config.max_bad_frames:
            conn.close_reason = "too_many_bad_frames"

    async def _send(self, conn: _Conn, header: Header, msg_id: int, body: bytes) -> None:
        raw = encode_frame(msg_id, body, phone=header.phone, flow=conn.next_flow(),
                           version=header.version, protocol_version=header.protocol_version or 1)
        conn.writer.write(raw)
        transport = conn.writer.transport
        if transport.get_write_buffer_size() > 65536:
            try:
                await asyncio.wait_for(conn.writer.drain(), self.config.write_timeout_s)
            except asyncio.TimeoutError:
                conn.close_reason = "slow_reader"
                self._who_log(conn, "slow_reader", "does not read the answers", header.phone_key)

    async def _answer(self, conn: _Conn, header: Header, result: int) -> None:
        self.metrics.messages[f"0x8001_result_{result}"] += 1
        await self._send(conn, header, MSG["platform_response"],
                         encode_general_response(header.flow, header.msg_id, result))

    # ---------------------------------------------------------------- frames
    async def _frame(self, conn: _Conn, content: bytes) -> None:
        try:
            frame = decode_frame(content)
        except Jt808Error as err:
            header = None
            if err.reason in ("bad_check_code", "length_mismatch"):
                with contextlib.suppress(Jt808Error):
                    header = decode_header(unescape(content)[:-1])
            self._bad(conn, err, header)
            if header is not None and not conn.close_reason:
                await self._answer(conn, header, RESULT["message_error"])
            return
        h = frame.header
        conn.bad_in_row = 0
        conn.last_valid = self.clock()
        self.metrics.messages[f"0x{h.msg_id:04x}"] += 1
        sess = conn.sessions.get(h.phone_key)
        if sess is None:
            if len(conn.sessions) >= self.config.max_terminals_per_connection:
                conn.close_reason = "too_many_terminals"
                self._who_log(conn, "too_many_terminals",
                              f"more than {self.config.max_terminals_per_connection} phones")
                return
            sess = conn.sessions[h.phone_key] = _Session(h.phone_key)
        if h.encryption:
            self.metrics.refused["encrypted"] += 1
            self._who_log(conn, "encrypted", f"encryption bits {h.encryption} (unsupported)",
                          h.phone_key)
            await self._answer(conn, h, RESULT["unsupported"])
            return
        body = frame.body
        if h.subpackaged:
            try:
                whole = conn.reassembler.add(frame, self.clock())
            except Jt808Error as err:
                self._bad(conn, err, h)
                await self._answer(conn, h, RESULT["message_error"])
                return
            if whole is None:  # packet received; the message answer comes with the last one
                await self._answer(conn, h, RESULT["ok"])
                return
            body = whole
        try:
            await self._dispatch(conn, sess, h, body)
        except Jt808Error as err:
            self.metrics.refused[err.reason] += 1
            self._who_log(conn, err.reason, str(err), h.phone_key)
            await self._answer(conn, h, RESULT["message_error"])

    async def _dispatch(self, conn: _Conn, sess: _Session, h: Header, body: bytes) -> None:
        mid = h.msg_id
        if mid == MSG["location"]:
            await self._locations(conn, sess, h, [body], batch=False)
        elif mid == MSG["batch"]:
            batch = decode_batch(body)
            if batch.truncated:
                self.metrics.refused["batch_truncated"] += 1
                self._who_log(conn, "batch_truncated",
                              f"0x0704 announces {batch.count} items, body holds {len(batch.items)}",
                              h.phone_key)
            if batch.kind == 1:
                self.metrics.points["backfill_items"] += len(batch.items)
            await self._locations(conn, sess, h, list(batch.items), batch=True,
                                  truncated=batch.truncated)
        elif mid == MSG["heartbeat"]:
            await self._answer(conn, h, RESULT["ok"])
        elif mid == MSG["register"]:
            await self._register(conn, sess, h, body)
        elif mid == MSG["authenticate"]:
            await self._authenticate(conn, sess, h, body)
        elif mid == MSG["logout"]:
            if sess.authenticated or await asyncio.to_thread(self.terminals.get, sess.phone):
                await asyncio.to_thread(self.terminals.deregister, sess.phone)
            sess.authenticated = False
            await self._answer(conn, h, RESULT["ok"])
        elif mid == MSG["terminal_response"]:
            return
        elif mid == MSG["query_time"]:  # 2019: the terminal asks for the platform's UTC time
            await self._send(conn, h, MSG["server_time"], encode_server_time(self.wall()))
        else:
            self.metrics.refused["unsupported_message"] += 1
            self._who_log(conn, "unsupported_message", f"message id 0x{mid:04x}", h.phone_key)
            await self._answer(conn, h, RESULT["unsupported"])

    async def _register(self, conn: _Conn, sess: _Session, h: Header, body: bytes) -> None:
        reg = decode_register(body, h.version)
        plate = reg.plate.strip()
        reason = ""
        if not plate:
            reason = "no_plate"
        elif check_plate(plate) is not None or not plate.isprintable():
            reason = "bad_plate"
        elif (self.config.refuse_unknown_vehicles and self.known_vehicle is not None
              and not self.known_vehicle(plate)):
            reason = "unknown_vehicle"
        if reason:
            self.metrics.refused[f"register_{reason}"] += 1
            self._who_log(conn, f"register_{reason}", f"plate {plate[:40]!r} refused",
                          h.phone_key)
            self.metrics.messages["0x8100_result_2"] += 1
            await self._send(conn, h, MSG["register_response"],
                             encode_register_response(h.flow, REGISTER_RESULT["no_vehicle"]))
            return
        term = await asyncio.to_thread(self.terminals.register, sess.phone, plate, h.version)
        sess.plate = term.plate
        self.metrics.messages["0x8100_result_0"] += 1
        await self._send(conn, h, MSG["register_response"],
                         encode_register_response(h.flow, REGISTER_RESULT["ok"], term.auth_code))

    async def _authenticate(self, conn: _Conn, sess: _Session, h: Header, body: bytes) -> None:
        auth = decode_authenticate(body, h.version)
        term = await asyncio.to_thread(self.terminals.get, sess.phone)
        if term is None or auth.auth_code != term.auth_code:
            sess.authenticated = False
            why = "unregistered" if term is None else "wrong_code"
            self.metrics.refused[f"auth_{why}"] += 1
            self._who_log(conn, f"auth_{why}", "authentication refused", h.phone_key)
            await self._answer(conn, h, RESULT["failure"])
            return
        sess.authenticated = True
        sess.plate = term.plate
        await self._answer(conn, h, RESULT["ok"])

    async def _locations(self, conn: _Conn, sess: _Session, h: Header, bodies: list[bytes], *,
                         batch: bool, truncated: bool = False) -> None:
        m = self.metrics
        if not sess.authenticated:
            m.refused["not_authenticated"] += 1
            self._who_log(conn, "not_authenticated", "location before authentication",
                          h.phone_key)
            await self._answer(conn, h, RESULT["failure"])
            return
        points: list[dict[str, Any]] = []
        refused: list[tuple[int | None, str]] = []
        message_error = truncated
        for raw in bodies:
            try:
                loc = decode_location(raw)
            except Jt808Error as err:
                if not batch:
                    raise
                refused.append((None, f"{err.reason}: {err}"))
                message_error = True
                continue
            if loc.extras_truncated:
                m.refused["extras_truncated"] += 1
                self._who_log(conn, "extras_truncated", "an additional-information item is "
                                                        "cut short (ignored)", h.phone_key)
            point, why = location_to_point(loc, sess.plate, lift_info_id=self.config.lift_info_id)
            if point is None:
                refused.append((_us(loc.time), why))
                if not why.startswith("no_fix"):
                    message_error = True
            else:
                points.append(point)
        outcomes: list[Outcome] = []
        if points:
            try:
                outcomes = await self.sink.ingest(points)
            except Exception as exc:
                m.refused["store_failed"] += 1
                self._who_log(conn, "store_failed", f"{type(exc).__name__}: {exc}", h.phone_key)
                await self._answer(conn, h, RESULT["failure"])
                return
        for p, o in zip(points, outcomes, strict=True):
            m.points[o.status] += 1
            if o.status == "rejected":
                refused.append((int(p["time"]) * 1_000_000, f"{o.field}: {o.reason}"))
                message_error = True
        for t_us, why in refused:
            kind = why.split(":", 1)[0]
            m.rejected[kind] += 1
            m.recent_rejects.append({"terminal": sess.phone, "plate": sess.plate,
                                     "time_us": t_us, "reason": why[:200]})
            self._who_log(conn, f"rejected_{kind}", why[:200], h.phone_key)
        if refused:
            await asyncio.to_thread(self._record_rejects, sess, refused)
        # a single report with refused values, or a batch whose item list is cut: "message error";
        # a batch answers for the whole message (its good items are stored, bad ones recorded)
        bad = truncated if batch else message_error
        await self._answer(conn, h, RESULT["message_error"] if bad else RESULT["ok"])

    def _record_rejects(self, sess: _Session, refused: list[tuple[int | None, str]]) -> None:
        for t_us, why in refused:
            try:
                self.terminals.record_reject(sess.phone, sess.plate, t_us, why)
            except Exception:
                log.exception("recording a refused report failed")
                return


def _us(t: datetime | None) -> int | None:
    return None if t is None else int(t.timestamp() * 1_000_000)
