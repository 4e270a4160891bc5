"""A JT/T 808 terminal over asyncio: the replay tool's, the tests' and the benchmark's client.

:class:`TerminalClient` speaks as one terminal (2013 or 2019 header) on one
TCP connection: register, authenticate, location reports, batch uploads,
heartbeats, logout. Every request waits for the platform's answer to *its*
flow number and checks it; a wrong or missing answer raises
:class:`TerminalReplyError`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from haulwatch.errors import HaulwatchError
from haulwatch.ingest.jt808 import (
    MSG,
    Authenticate,
    FrameSplitter,
    Jt808Error,
    Register,
    decode_frame,
    decode_general_response,
    decode_register_response,
    encode_authenticate,
    encode_batch,
    encode_frame,
    encode_register,
)
from haulwatch.ingest.jt808.frame import MAX_BODY_LENGTH

__all__ = ["Reply", "TerminalClient", "TerminalReplyError"]


class TerminalReplyError(HaulwatchError, RuntimeError):
    """The platform answered wrongly, not at all, or closed the connection."""


@dataclass(frozen=True)
class Reply:
    """The platform's answer: message id, result, auth code (0x8100 only)."""

    msg_id: int
    result: int
    auth_code: str = ""


class TerminalClient:
    """One simulated terminal.

    Parameters
    ----------
    phone : str
        Terminal phone digits.
    version : {2013, 2019}
        Header form (and register/authenticate body layout).
    timeout_s : float, default 30
        Longest wait for an answer.
    """

    def __init__(self, phone: str, *, version: int = 2019, timeout_s: float = 30.0) -> None:
        self.phone = phone
        self.version = version
        self.timeout_s = timeout_s
        self.flow = 0
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._splitter = FrameSplitter()
        self._pending: dict[int, asyncio.Future] = {}
        self._reader_task: asyncio.Task | None = None
        self.auth_code = ""

    async def connect(self, host: str, port: int) -> None:
        """Open the TCP connection."""
        self.reader, self.writer = await asyncio.open_connection(host, port)
        self._reader_task = asyncio.create_task(self._read_loop())

    async def close(self) -> None:
        """Close the connection."""
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task

    async def _read_loop(self) -> None:
        assert self.reader is not None
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for cand in self._splitter.feed(data):
                    if isinstance(cand, Jt808Error):
                        continue
                    try:
                        frame = decode_frame(cand)
                    except Jt808Error:
                        continue
                    self._answered(frame.header.msg_id, frame.body)
        except (ConnectionError, OSError):
            pass
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(TerminalReplyError("connection closed by the platform"))
                    fut.exception()  # awaiting it still raises; unawaited ones are not logged
            self._pending.clear()

    def _answered(self, msg_id: int, body: bytes) -> None:
        try:
            if msg_id == MSG["platform_response"]:
                r = decode_general_response(body)
                reply = Reply(msg_id, r.result)
                key = r.reply_flow
            elif msg_id == MSG["register_response"]:
                rr = decode_register_response(body)
                reply = Reply(msg_id, rr.result, rr.auth_code)
                key = rr.reply_flow
            else:
                return
        except Jt808Error:
            return
        fut = self._pending.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(reply)

    def _next_flow(self) -> int:
        self.flow = (self.flow + 1) & 0xFFFF
        return self.flow

    async def send_raw(self, data: bytes) -> None:
        """Write bytes as they are (tests of hostile input)."""
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def request(self, msg_id: int, body: bytes) -> Reply:
        """Send one message (sub-packaged when longer than 1023 bytes); wait for its answer."""
        return await self.wait(await self.send(msg_id, body), msg_id)

    async def wait(self, futs: list[asyncio.Future], msg_id: int) -> Reply:
        """Wait for the answers of a message sent with :meth:`send`; return the last one."""
        try:
            replies = await asyncio.wait_for(asyncio.gather(*futs), self.timeout_s)
        except asyncio.TimeoutError:
            raise TerminalReplyError(
                f"no answer to 0x{msg_id:04x} within {self.timeout_s} s") from None
        return replies[-1]

    async def send(self, msg_id: int, body: bytes) -> list[asyncio.Future]:
        """Send one message without waiting; return the futures of its answers (one per packet)."""
        if self.writer is None:
            raise TerminalReplyError("not connected")
        parts = [body[i:i + MAX_BODY_LENGTH] for i in range(0, len(body), MAX_BODY_LENGTH)] or [b""]
        loop = asyncio.get_running_loop()
        futs = []
        for i, part in enumerate(parts):
            flow = self._next_flow()
            fut = loop.create_future()
            self._pending[flow] = fut
            futs.append(fut)
            packet = (len(parts), i + 1) if len(parts) > 1 else None
            self.writer.write(encode_frame(msg_id, part, phone=self.phone, flow=flow,
                                           version=self.version, packet=packet))
        await self.writer.drain()
        return futs

    async def register(self, plate: str, *, plate_color: int = 2, province: int = 33,
                       city: int = 0, terminal_id: str = "") -> Reply:
        """0x0100 → 0x8100; keeps the auth code."""
        reg = Register(province, city, "HWSIM", "haulwatch-replay",
                       (terminal_id or self.phone[-7:])[: 7 if self.version != 2019 else 30],
                       plate_color, plate)
        reply = await self.request(MSG["register"], encode_register(reg, self.version))
        if reply.msg_id != MSG["register_response"]:
            raise TerminalReplyError(f"register answered by 0x{reply.msg_id:04x}")
        if reply.result == 0:
            self.auth_code = reply.auth_code
        return reply

    async def authenticate(self, code: str | None = None) -> Reply:
        """0x0102 → 0x8001."""
        auth = Authenticate(self.auth_code if code is None else code, "860000000000000", "sim-1")
        return await self.request(MSG["authenticate"], encode_authenticate(auth, self.version))

    async def report(self, location_body: bytes) -> Reply:
        """0x0200 → 0x8001."""
        return await self.request(MSG["location"], location_body)

    async def batch(self, location_bodies: list[bytes], *, kind: int = 1) -> Reply:
        """0x0704 → 0x8001 (sub-packaged when the body is over 1023 bytes)."""
        return await self.request(MSG["batch"], encode_batch(location_bodies, kind))

    async def heartbeat(self) -> Reply:
        """0x0002 → 0x8001."""
        return await self.request(MSG["heartbeat"], b"")

    async def logout(self) -> Reply:
        """0x0003 → 0x8001."""
        return await self.request(MSG["logout"], b"")
