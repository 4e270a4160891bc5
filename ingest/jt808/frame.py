"""JT/T 808 framing: delimiters, escaping, check code, header — no sockets.

A frame on the wire is ``0x7e | header | body | check | 0x7e``; inside the
delimiters ``0x7e`` is sent as ``0x7d 0x02`` and ``0x7d`` as ``0x7d 0x01``
(JT/T 808-2019 §4.4.1). The check code is the XOR of every byte of header and
body (§4.4.4). The header (§4.4.3, table 2):

====================  =========================  =========================
field                 2011/2013                  2019
====================  =========================  =========================
message id            WORD                       WORD
body attributes       WORD                       WORD (bit 14 = 1)
protocol version      —                          BYTE (1 = first 2019 edition)
terminal phone        BCD[6] (12 digits)         BCD[10] (20 digits)
flow number           WORD                       WORD
sub-package item      total WORD, index WORD     total WORD, index WORD
                      (only when bit 13 is set)  (only when bit 13 is set)
====================  =========================  =========================

Body attributes (figure 3): bits 0–9 body length, bits 10–12 encryption
(bit 10 = RSA), bit 13 sub-package, bit 14 version flag (2019), bit 15 reserved.

Everything here is a pure function of bytes; every problem raises
:class:`Jt808Error` with a short machine ``reason`` (the gateway counts by it).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from haulwatch.errors import UserError

__all__ = [
    "ESCAPE",
    "FLAG",
    "MAX_BODY_LENGTH",
    "Frame",
    "FrameSplitter",
    "Header",
    "Jt808Error",
    "bcd_decode",
    "bcd_encode",
    "check_code",
    "decode_frame",
    "encode_frame",
    "escape",
    "unescape",
]

FLAG = 0x7E
ESCAPE = 0x7D
MAX_BODY_LENGTH = 1023  # 10 bits of body length
# Largest unescaped frame content: 2019 header with sub-package item (21) + body + check.
MAX_FRAME_CONTENT = 21 + MAX_BODY_LENGTH + 1

_TWO_WORDS = struct.Struct(">HH")
_BAD_ESCAPE = re.compile(rb"\x7d(?![\x01\x02])", re.DOTALL)


class Jt808Error(UserError, ValueError):
    """A JT/T 808 frame or message that cannot be read.

    Parameters
    ----------
    reason : str
        Short machine code (``bad_check_code``, ``bad_escape``, ``truncated``,
        ``length_mismatch``, ``short_body``, ``bad_bcd``, ``bad_text``,
        ``frame_too_long``, ``bad_subpackage``, ...); metrics count by it.
    message : str
        What was wrong, with the values received.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def escape(data: bytes) -> bytes:
    """Escape frame content for the wire (``7d`` → ``7d 01`` first, then ``7e`` → ``7d 02``)."""
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes) -> bytes:
    """Undo :func:`escape`.

    Raises
    ------
    Jt808Error
        ``bad_escape`` when ``0x7d`` is followed by anything but ``0x01``/``0x02``
        (or ends the data); ``bad_escape`` also for a raw ``0x7e`` inside.
    """
    if b"\x7e" in data:
        raise Jt808Error("bad_escape", "raw 0x7e inside a frame")
    if b"\x7d" not in data:
        return data
    m = _BAD_ESCAPE.search(data)
    if m is not None:
        nxt = data[m.start() + 1:m.start() + 2]
        raise Jt808Error(
            "bad_escape",
            f"0x7d at offset {m.start()} followed by "
            f"{'end of frame' if not nxt else '0x' + nxt.hex()} (allowed: 0x01, 0x02)")
    return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def check_code(data: bytes) -> int:
    """XOR of every byte (the JT/T 808 check code)."""
    acc = 0
    for byte in data:  # a plain loop is the fastest pure-Python XOR fold on frame sizes
        acc ^= byte
    return acc


def bcd_decode(data: bytes, *, field: str = "bcd") -> str:
    """BCD bytes → digit string (``b'\\x01\\x39'`` → ``'0139'``).

    Raises
    ------
    Jt808Error
        ``bad_bcd`` for a nibble above 9.
    """
    text = data.hex()
    if not text.isdigit() and text:
        raise Jt808Error("bad_bcd", f"{field}: {data.hex()} is not BCD (a nibble above 9)")
    return text


def bcd_encode(digits: str, size: int, *, field: str = "bcd") -> bytes:
    """Digit string → BCD of ``size`` bytes, left-padded with zeros.

    Raises
    ------
    Jt808Error
        ``bad_bcd`` when the string is not all digits or longer than ``2*size``.
    """
    if not digits.isascii() or not (digits.isdigit() or digits == ""):
        raise Jt808Error("bad_bcd", f"{field}: {digits!r} is not a string of digits")
    if len(digits) > 2 * size:
        raise Jt808Error("bad_bcd", f"{field}: {digits!r} has more than {2 * size} digits")
    return bytes.fromhex(digits.rjust(2 * size, "0"))


@dataclass(frozen=True)
class Header:
    """A decoded message header.

    Attributes
    ----------
    msg_id : int
        Message id (``0x0200`` ...).
    body_length : int
        Body length declared in the attributes (0–1023).
    encryption : int
        Bits 10–12 of the attributes (0 = none, 1 = RSA).
    version : int
        2013 (covers 2011/2013: no version flag) or 2019 (bit 14 set).
    protocol_version : int
        The 2019 protocol version byte (0 for 2013 headers).
    phone : str
        Terminal phone number as BCD digits (12 for 2013, 20 for 2019).
    flow : int
        Message flow number.
    packet_total, packet_index : int or None
        Sub-package item (only when bit 13 is set): total packets and 1-based index.
    """

    msg_id: int
    body_length: int
    encryption: int
    version: int
    protocol_version: int
    phone: str
    flow: int
    packet_total: int | None = None
    packet_index: int | None = None

    @property
    def subpackaged(self) -> bool:
        """True when the message is one packet of several."""
        return self.packet_total is not None

    @property
    def phone_key(self) -> str:
        """The phone without leading zeros: the same terminal in 2013 and 2019 headers."""
        return self.phone.lstrip("0") or "0"

    @property
    def size(self) -> int:
        """Header length in bytes."""
        return (17 if self.version == 2019 else 12) + (4 if self.subpackaged else 0)


@dataclass(frozen=True)
class Frame:
    """A decoded frame: its header and raw body (check code verified)."""

    header: Header
    body: bytes


def decode_header(data: bytes) -> Header:
    """Decode the header at the start of unescaped frame content.

    Raises
    ------
    Jt808Error
        ``truncated`` when the data is shorter than the header it announces;
        ``bad_bcd`` for a phone that is not BCD; ``bad_subpackage`` for a
        sub-package item with total 0 or an index outside 1..total.
    """
    if len(data) < 4:
        raise Jt808Error("truncated", f"frame of {len(data)} bytes is shorter than a header")
    msg_id, attrs = _TWO_WORDS.unpack_from(data)
    length = attrs & 0x3FF
    encryption = (attrs >> 10) & 0x7
    sub = bool(attrs & 0x2000)
    v2019 = bool(attrs & 0x4000)
    if v2019:
        need = 17 + (4 if sub else 0)
        if len(data) < need:
            raise Jt808Error("truncated", f"2019 header needs {need} bytes, frame has {len(data)}")
        proto = data[4]
        phone = bcd_decode(data[5:15], field="terminal phone")
        flow = int.from_bytes(data[15:17], "big")
        pos = 17
    else:
        need = 12 + (4 if sub else 0)
        if len(data) < need:
            raise Jt808Error("truncated", f"2013 header needs {need} bytes, frame has {len(data)}")
        proto = 0
        phone = bcd_decode(data[4:10], field="terminal phone")
        flow = int.from_bytes(data[10:12], "big")
        pos = 12
    total = index = None
    if sub:
        total = int.from_bytes(data[pos:pos + 2], "big")
        index = int.from_bytes(data[pos + 2:pos + 4], "big")
        if total < 1 or not 1 <= index <= total:
            raise Jt808Error("bad_subpackage",
                             f"sub-package item total={total} index={index} (need 1 <= index <= total)")
    return Header(msg_id=msg_id, body_length=length, encryption=encryption,
                  version=2019 if v2019 else 2013, protocol_version=proto, phone=phone,
                  flow=flow, packet_total=total, packet_index=index)


def decode_frame(content: bytes, *, escaped: bool = True) -> Frame:
    """Decode the content between two ``0x7e`` delimiters.

    Parameters
    ----------
    content : bytes
        Frame content without the delimiters.
    escaped : bool, default True
        Whether ``content`` is still escaped (as read from the wire).

    Returns
    -------
    Frame

    Raises
    ------
    Jt808Error
        ``bad_escape``, ``truncated``, ``bad_check_code``, ``length_mismatch``
        (the body is not as long as the attributes say), ``bad_bcd``,
        ``bad_subpackage``.
    """
    data = unescape(content) if escaped else content
    if len(data) < 13:
        raise Jt808Error("truncated", f"frame of {len(data)} bytes is shorter than header + check")
    payload, check = data[:-1], data[-1]
    got = check_code(payload)
    if got != check:
        raise Jt808Error("bad_check_code",
                         f"check code 0x{check:02x} but the content XORs to 0x{got:02x}")
    header = decode_header(payload)
    body = payload[header.size:]
    if len(body) != header.body_length:
        raise Jt808Error("length_mismatch",
                         f"body attributes say {header.body_length} bytes, body has {len(body)}")
    return Frame(header=header, body=body)


def encode_frame(msg_id: int, body: bytes, *, phone: str, flow: int, version: int = 2013,
                 protocol_version: int = 1, encryption: int = 0,
                 packet: tuple[int, int] | None = None) -> bytes:
    """Build one escaped frame with its delimiters.

    Parameters
    ----------
    msg_id : int
        Message id.
    body : bytes
        Message body (at most 1023 bytes; split longer ones with :func:`split_body`).
    phone : str
        Terminal phone digits (padded to 12 or 20 digits).
    flow : int
        Flow number (taken modulo 65536).
    version : {2013, 2019}
        Header form.
    protocol_version : int, default 1
        The 2019 version byte.
    encryption : int, default 0
        Bits 10–12 of the attributes.
    packet : (total, index), optional
        Sub-package item.

    Returns
    -------
    bytes
    """
    if version not in (2013, 2019):
        raise Jt808Error("bad_version", f"version: {version!r} must be 2013 or 2019")
    if len(body) > MAX_BODY_LENGTH:
        raise Jt808Error("body_too_long", f"body of {len(body)} bytes (max {MAX_BODY_LENGTH})")
    attrs = len(body) | ((encryption & 0x7) << 10)
    if packet is not None:
        attrs |= 0x2000
    if version == 2019:
        attrs |= 0x4000
        head = (msg_id.to_bytes(2, "big") + attrs.to_bytes(2, "big")
                + bytes([protocol_version & 0xFF]) + bcd_encode(phone, 10, field="phone"))
    else:
        head = msg_id.to_bytes(2, "big") + attrs.to_bytes(2, "big") + bcd_encode(phone, 6,
                                                                                  field="phone")
    head += (flow & 0xFFFF).to_bytes(2, "big")
    if packet is not None:
        total, index = packet
        head += total.to_bytes(2, "big") + index.to_bytes(2, "big")
    payload = head + body
    return b"\x7e" + escape(payload + bytes([check_code(payload)])) + b"\x7e"


def split_body(body: bytes, size: int = MAX_BODY_LENGTH) -> list[bytes]:
    """Cut a long body into sub-package bodies of at most ``size`` bytes."""
    if not 1 <= size <= MAX_BODY_LENGTH:
        raise Jt808Error("bad_subpackage", f"size: {size} must be in 1..{MAX_BODY_LENGTH}")
    return [body[i:i + size] for i in range(0, len(body), size)] or [b""]


class FrameSplitter:
    """Cut a TCP byte stream into frame contents, whatever arrives.

    Every ``0x7e`` is a boundary; the bytes between two boundaries are one
    candidate frame (empty candidates, as in ``7e 7e``, are skipped). Bytes
    before the first ``0x7e`` are garbage and counted. A candidate longer than
    ``max_frame_bytes`` (escaped) is dropped as it streams — at most that many
    bytes are ever buffered — and reported once as ``frame_too_long``.

    Parameters
    ----------
    max_frame_bytes : int, default 2 * 1045 + 16
        Largest escaped frame content kept (a full 2019 frame with every byte
        escaped fits).

    Examples
    --------
    >>> s = FrameSplitter()
    >>> s.feed(b"junk\\x7e\\x01\\x02\\x7e\\x7e")
    [b'\\x01\\x02']
    >>> s.garbage_bytes
    4
    """

    def __init__(self, max_frame_bytes: int = 2 * MAX_FRAME_CONTENT + 16) -> None:
        if max_frame_bytes < 16:
            raise Jt808Error("bad_setting", f"max_frame_bytes: {max_frame_bytes} must be >= 16")
        self.max_frame_bytes = max_frame_bytes
        self._buf = bytearray()
        self._in_frame = False
        self._overflow = False
        self.garbage_bytes = 0
        self.overflows = 0

    @property
    def buffered(self) -> int:
        """Bytes held for an unfinished frame (never above ``max_frame_bytes``)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes | Jt808Error]:
        """Take the next bytes; return the complete candidates (escaped) and overflow errors."""
        out: list[bytes | Jt808Error] = []
        pos = 0
        n = len(data)
        while pos < n:
            if not self._in_frame:
                i = data.find(b"\x7e", pos)
                if i < 0:
                    self.garbage_bytes += n - pos
                    return out
                self.garbage_bytes += i - pos
                self._in_frame = True
                self._overflow = False
                pos = i + 1
                continue
            i = data.find(b"\x7e", pos)
            end = n if i < 0 else i
            if not self._overflow:
                room = self.max_frame_bytes - len(self._buf)
                if end - pos > room:
                    self._overflow = True
                    self.overflows += 1
                    self._buf.clear()
                    out.append(Jt808Error(
                        "frame_too_long",
                        f"no closing 0x7e within {self.max_frame_bytes} bytes; frame dropped"))
                else:
                    self._buf += data[pos:end]
            if i < 0:
                return out
            # boundary: close the candidate, the same 0x7e may open the next one
            if self._buf and not self._overflow:
                out.append(bytes(self._buf))
            self._buf.clear()
            self._overflow = False
            pos = i + 1
        return out
