"""Sub-packaged JT/T 808 messages put back together (sans-IO, injected clock).

A long message is sent as ``total`` packets with bit 13 set and a sub-package
item ``(total, index)``; their flow numbers run on from the first packet's
(2019 §4.4.3: the platform asks for missing ones with 0x8003 by the first
packet's flow number). Packets are grouped by ``(message id, total, flow of
packet 1)``; the message is complete when every index has arrived.

Bounds keep a hostile terminal from holding memory: at most
``max_packets`` per message, ``max_bytes`` of body per connection in flight,
and incomplete messages expire after ``timeout_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from haulwatch.ingest.jt808.frame import Frame, Jt808Error

__all__ = ["Reassembler"]


@dataclass
class _Partial:
    total: int
    first_seen: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Collect sub-packages of one connection.

    Parameters
    ----------
    max_packets : int, default 64
        Largest ``total`` accepted.
    max_bytes : int, default 65536
        Body bytes held for incomplete messages of this connection.
    timeout_s : float, default 60
        Incomplete messages older than this are dropped by :meth:`expire`.
    """

    def __init__(self, *, max_packets: int = 64, max_bytes: int = 65536,
                 timeout_s: float = 60.0) -> None:
        self.max_packets = max_packets
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self._open: dict[tuple[int, int, int], _Partial] = {}
        self._bytes = 0

    @property
    def held_bytes(self) -> int:
        """Body bytes held for incomplete messages."""
        return self._bytes

    def add(self, frame: Frame, now: float) -> bytes | None:
        """Add one packet; return the whole body when the message is complete.

        Raises
        ------
        Jt808Error
            ``bad_subpackage`` for a total above ``max_packets``, a packet that
            contradicts earlier ones, or more held bytes than ``max_bytes``
            (the partial message is dropped).
        """
        h = frame.header
        if h.packet_total is None or h.packet_index is None:
            return frame.body
        total, index = h.packet_total, h.packet_index
        if total > self.max_packets:
            raise Jt808Error("bad_subpackage",
                             f"message 0x{h.msg_id:04x} in {total} packets (max {self.max_packets})")
        key = (h.msg_id, total, (h.flow - (index - 1)) & 0xFFFF)
        part = self._open.get(key)
        if part is None:
            part = self._open[key] = _Partial(total=total, first_seen=now)
        if index in part.parts:  # a re-sent packet replaces the first copy
            old = part.parts.pop(index)
            part.size -= len(old)
            self._bytes -= len(old)
        if self._bytes + len(frame.body) > self.max_bytes:
            self._drop(key)
            raise Jt808Error("bad_subpackage",
                             f"sub-packaged messages hold more than {self.max_bytes} bytes")
        part.parts[index] = frame.body
        part.size += len(frame.body)
        self._bytes += len(frame.body)
        if len(part.parts) < total:
            return None
        body = b"".join(part.parts[i] for i in range(1, total + 1))
        self._drop(key)
        return body

    def _drop(self, key: tuple[int, int, int]) -> None:
        part = self._open.pop(key, None)
        if part is not None:
            self._bytes -= part.size

    def expire(self, now: float) -> int:
        """Drop incomplete messages older than ``timeout_s``; return how many."""
        old = [k for k, p in self._open.items() if now - p.first_seen > self.timeout_s]
        for k in old:
            self._drop(k)
        return len(old)
