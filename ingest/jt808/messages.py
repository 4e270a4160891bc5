"""JT/T 808 message bodies: the ones a position gateway needs, both editions.

Terminal → platform: ``0x0001`` terminal general response, ``0x0002``
heartbeat, ``0x0003`` logout, ``0x0100`` register, ``0x0102`` authenticate,
``0x0200`` location report, ``0x0704`` batch location upload.
Platform → terminal: ``0x8001`` platform general response, ``0x8100``
register response.

Field widths follow JT/T 808-2013 and JT/T 808-2019 (table numbers are those
of the 2019 text). Text is GBK (decoded as GB18030, its superset). Times are
BCD ``YYMMDDhhmmss`` in GMT+8 and are returned as UTC.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from haulwatch.ingest.jt808.frame import Jt808Error, bcd_decode, bcd_encode

__all__ = [
    "GMT8",
    "LOAD_BITS",
    "MSG",
    "REGISTER_RESULT",
    "RESULT",
    "Authenticate",
    "Batch",
    "GeneralResponse",
    "Location",
    "Register",
    "RegisterResponse",
    "decode_authenticate",
    "decode_batch",
    "decode_general_response",
    "decode_location",
    "decode_register",
    "decode_register_response",
    "decode_text",
    "encode_authenticate",
    "encode_batch",
    "encode_general_response",
    "encode_location",
    "encode_register",
    "encode_register_response",
    "encode_server_time",
    "encode_text",
]

GMT8 = timezone(timedelta(hours=8))
_EIGHT_HOURS = timedelta(hours=8)

MSG = {
    "terminal_response": 0x0001,
    "heartbeat": 0x0002,
    "logout": 0x0003,
    "query_time": 0x0004,
    "register": 0x0100,
    "authenticate": 0x0102,
    "location": 0x0200,
    "batch": 0x0704,
    "platform_response": 0x8001,
    "register_response": 0x8100,
    "server_time": 0x8004,
}
"""Message ids by name."""

RESULT = {"ok": 0, "failure": 1, "message_error": 2, "unsupported": 3, "alarm_ack": 4}
"""0x8001 / 0x0001 result codes (2019 table 5 / table 4)."""

REGISTER_RESULT = {"ok": 0, "vehicle_registered": 1, "no_vehicle": 2,
                   "terminal_registered": 3, "no_terminal": 4}
"""0x8100 result codes (2019 table 10)."""

LOAD_BITS = {0b00: "empty", 0b01: "half", 0b11: "full"}
"""Status bits 8–9 (2019 table 25): 00 empty, 01 half, 10 reserved, 11 full."""

_LOAD_CODE = {"empty": 0b00, "half": 0b01, "full": 0b11}


def decode_text(data: bytes, *, field: str) -> str:
    """GBK bytes → str (trailing NULs and blanks removed).

    Raises
    ------
    Jt808Error
        ``bad_text`` when the bytes are not GBK/GB18030.
    """
    try:
        return data.rstrip(b"\x00").decode("gb18030").strip()
    except UnicodeDecodeError as exc:
        raise Jt808Error("bad_text", f"{field}: {data[:32].hex()} is not GBK text ({exc.reason})"
                         ) from None


def encode_text(text: str, *, field: str) -> bytes:
    """str → GBK bytes.

    Raises
    ------
    Jt808Error
        ``bad_text`` when a character has no GBK code.
    """
    try:
        return text.encode("gbk")
    except UnicodeEncodeError:
        raise Jt808Error("bad_text", f"{field}: {text[:32]!r} cannot be written in GBK") from None


def _fixed(text: str, size: int, *, field: str) -> bytes:
    raw = encode_text(text, field=field)
    if len(raw) > size:
        raise Jt808Error("bad_text", f"{field}: {text!r} is longer than {size} bytes")
    return raw.ljust(size, b"\x00")


def _short(body: bytes, need: int, what: str) -> None:
    if len(body) < need:
        raise Jt808Error("short_body", f"{what} body of {len(body)} bytes, needs at least {need}")


# ------------------------------------------------------------------ general responses
@dataclass(frozen=True)
class GeneralResponse:
    """0x0001 / 0x8001: the answered flow number, message id and result."""

    reply_flow: int
    reply_id: int
    result: int


def decode_general_response(body: bytes) -> GeneralResponse:
    """Decode a 0x0001 or 0x8001 body (WORD flow, WORD id, BYTE result)."""
    _short(body, 5, "general response")
    return GeneralResponse(int.from_bytes(body[0:2], "big"), int.from_bytes(body[2:4], "big"),
                           body[4])


def encode_general_response(reply_flow: int, reply_id: int, result: int) -> bytes:
    """Encode a 0x0001 or 0x8001 body."""
    return ((reply_flow & 0xFFFF).to_bytes(2, "big") + (reply_id & 0xFFFF).to_bytes(2, "big")
            + bytes([result & 0xFF]))


# ------------------------------------------------------------------ register
@dataclass(frozen=True)
class Register:
    """0x0100 terminal register (2013 table 8 / 2019 table 9).

    Attributes
    ----------
    province, city : int
        Administrative division codes (GB/T 2260).
    manufacturer, model, terminal_id : str
        Fixed-width text fields (2013: 5, 20, 7 bytes; 2019: 11, 30, 30).
    plate_color : int
        JT/T 415 colour code; 0 means the vehicle has no plate (``plate`` is then the VIN).
    plate : str
        Licence plate (GBK).
    """

    province: int
    city: int
    manufacturer: str
    model: str
    terminal_id: str
    plate_color: int
    plate: str


_REG_WIDTHS = {2011: (5, 8, 7), 2013: (5, 20, 7), 2019: (11, 30, 30)}


def _register_layout(body: bytes, version: int) -> int:
    """Which table a 0x0100 body follows.

    A 2019 header normally carries the 2019 body (fixed part 76 bytes); one
    too short for it but long enough for the 2013 body is read as 2013 (some
    terminals upgraded only the header). A 2013 header body too short for the
    2013 table (fixed part 37 bytes) but long enough for the 2011 one (BYTE[8]
    model, fixed part 25 bytes) is read as 2011. The plate needs one byte at least.
    """
    def need(layout: int) -> int:
        m, md, tid = _REG_WIDTHS[layout]
        return 4 + m + md + tid + 1 + 1

    order = (2019, 2013) if version == 2019 else (2013, 2011)
    for layout in order:
        if len(body) >= need(layout):
            return layout
    return order[0]


def decode_register(body: bytes, version: int) -> Register:
    """Decode a 0x0100 body of the given header ``version`` (2013 or 2019).

    The body layout follows the header edition; see :func:`_register_layout`
    for the 2011 body and 2013 bodies under a 2019 header.
    """
    m, md, tid = _REG_WIDTHS[_register_layout(body, version)]
    fixed = 4 + m + md + tid + 1
    _short(body, fixed, f"register ({version})")
    pos = 4
    manufacturer = decode_text(body[pos:pos + m], field="manufacturer")
    pos += m
    model = decode_text(body[pos:pos + md], field="model")
    pos += md
    terminal_id = decode_text(body[pos:pos + tid], field="terminal id")
    pos += tid
    color = body[pos]
    plate = decode_text(body[pos + 1:], field="plate")
    return Register(province=int.from_bytes(body[0:2], "big"), city=int.from_bytes(body[2:4], "big"),
                    manufacturer=manufacturer, model=model, terminal_id=terminal_id,
                    plate_color=color, plate=plate)


def encode_register(reg: Register, version: int) -> bytes:
    """Encode a 0x0100 body in the table of ``version`` (2011, 2013 or 2019)."""
    m, md, tid = _REG_WIDTHS[version if version in _REG_WIDTHS else 2013]
    return (reg.province.to_bytes(2, "big") + reg.city.to_bytes(2, "big")
            + _fixed(reg.manufacturer, m, field="manufacturer")
            + _fixed(reg.model, md, field="model")
            + _fixed(reg.terminal_id, tid, field="terminal id")
            + bytes([reg.plate_color & 0xFF]) + encode_text(reg.plate, field="plate"))


@dataclass(frozen=True)
class RegisterResponse:
    """0x8100: answered flow, result, auth code (only with result 0)."""

    reply_flow: int
    result: int
    auth_code: str = ""


def encode_register_response(reply_flow: int, result: int, auth_code: str = "") -> bytes:
    """Encode a 0x8100 body (the auth code only when ``result`` is 0)."""
    body = (reply_flow & 0xFFFF).to_bytes(2, "big") + bytes([result & 0xFF])
    if result == 0:
        body += encode_text(auth_code, field="auth code")
    return body


def decode_register_response(body: bytes) -> RegisterResponse:
    """Decode a 0x8100 body."""
    _short(body, 3, "register response")
    result = body[2]
    code = decode_text(body[3:], field="auth code") if result == 0 else ""
    return RegisterResponse(int.from_bytes(body[0:2], "big"), result, code)


# ------------------------------------------------------------------ authenticate
@dataclass(frozen=True)
class Authenticate:
    """0x0102 terminal authentication.

    2013: the body is the auth code. 2019 (table 12): BYTE code length, code,
    BYTE[15] IMEI, BYTE[20] software version.
    """

    auth_code: str
    imei: str = ""
    software_version: str = ""


def decode_authenticate(body: bytes, version: int) -> Authenticate:
    """Decode a 0x0102 body of header ``version``."""
    if version != 2019:
        return Authenticate(decode_text(body, field="auth code"))
    _short(body, 1, "authenticate (2019)")
    n = body[0]
    _short(body, 1 + n + 15 + 20, "authenticate (2019)")
    code = decode_text(body[1:1 + n], field="auth code")
    imei = decode_text(body[1 + n:16 + n], field="imei")
    sw = decode_text(body[16 + n:36 + n], field="software version")
    return Authenticate(code, imei, sw)


def encode_authenticate(auth: Authenticate, version: int) -> bytes:
    """Encode a 0x0102 body for header ``version``."""
    code = encode_text(auth.auth_code, field="auth code")
    if version != 2019:
        return code
    if len(code) > 255:
        raise Jt808Error("bad_text", "auth code longer than 255 bytes")
    return (bytes([len(code)]) + code + _fixed(auth.imei, 15, field="imei")
            + _fixed(auth.software_version, 20, field="software version"))


# ------------------------------------------------------------------ location
@dataclass(frozen=True)
class Location:
    """A 0x0200 location report body (2019 table 23).

    Attributes
    ----------
    alarm, status : int
        Raw alarm and status DWORDs.
    lat, lon : float
        Degrees, signed by the status S / W bits (bits 2 and 3).
    lat_e6, lon_e6 : int
        The unsigned raw values (degrees × 1e6).
    altitude_m : int
        Metres (WORD; the 2019 edition leaves it unsigned).
    speed_kmh : float
        Speed (WORD in 0.1 km/h).
    heading_deg : int
        Direction 0–359, north = 0, clockwise.
    time : datetime or None
        UTC (the BCD time is GMT+8); None when the BCD is not a valid time
        (``time_error`` says why).
    extras : dict of int to bytes
        Additional-information items by id (table 26).
    extras_truncated : bool
        The last additional item declared more bytes than the body has (ignored).
    """

    alarm: int
    status: int
    lat_e6: int
    lon_e6: int
    altitude_m: int
    speed_kmh: float
    heading_deg: int
    time: datetime | None
    extras: dict[int, bytes] = field(default_factory=dict)
    extras_truncated: bool = False
    time_error: str = ""

    @property
    def positioned(self) -> bool:
        """Status bit 1: the fix is valid."""
        return bool(self.status & 0x2)

    @property
    def lat(self) -> float:
        """Latitude in degrees (negative when status bit 2, south, is set)."""
        return -self.lat_e6 / 1e6 if self.status & 0x4 else self.lat_e6 / 1e6

    @property
    def lon(self) -> float:
        """Longitude in degrees (negative when status bit 3, west, is set)."""
        return -self.lon_e6 / 1e6 if self.status & 0x8 else self.lon_e6 / 1e6

    @property
    def load(self) -> str | None:
        """Load state from status bits 8–9 (``None`` for the reserved value 10)."""
        return LOAD_BITS.get((self.status >> 8) & 0x3)

    def extra_int(self, info_id: int) -> int | None:
        """Additional item ``info_id`` as a big-endian unsigned integer (None when absent/empty)."""
        raw = self.extras.get(info_id)
        if not raw:
            return None
        return int.from_bytes(raw, "big")


LOCATION_SIZE = 28
_LOCATION_HEAD = struct.Struct(">IIIIHHH")  # alarm, status, lat, lon, altitude, speed, direction


def _bcd_time(raw: bytes) -> tuple[datetime | None, str]:
    try:
        digits = bcd_decode(raw, field="time")
    except Jt808Error as exc:
        return None, str(exc)
    try:
        local = datetime(2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]),
                         int(digits[6:8]), int(digits[8:10]), int(digits[10:12]))
    except ValueError as exc:
        return None, f"time: {digits} is not a valid YYMMDDhhmmss ({exc})"
    return (local - _EIGHT_HOURS).replace(tzinfo=timezone.utc), ""  # GMT+8 -> UTC


def decode_location(body: bytes) -> Location:
    """Decode a 0x0200 body (28 fixed bytes, then additional-information items).

    Raises
    ------
    Jt808Error
        ``short_body`` when fewer than 28 bytes.
    """
    _short(body, LOCATION_SIZE, "location")
    alarm, status, lat, lon, alt, speed_raw, heading = _LOCATION_HEAD.unpack_from(body)
    speed = speed_raw / 10.0
    t, err = _bcd_time(body[22:28])
    extras: dict[int, bytes] = {}
    pos, n, truncated = LOCATION_SIZE, len(body), False
    while pos < n:
        if pos + 2 > n:
            truncated = True
            break
        info_id, length = body[pos], body[pos + 1]
        if pos + 2 + length > n:
            truncated = True
            break
        extras[info_id] = body[pos + 2:pos + 2 + length]
        pos += 2 + length
    return Location(alarm=alarm, status=status, lat_e6=lat, lon_e6=lon, altitude_m=alt,
                    speed_kmh=speed, heading_deg=heading, time=t, extras=extras,
                    extras_truncated=truncated, time_error=err)


def encode_location(*, time: datetime, lat: float, lon: float, speed_kmh: float = 0.0,
                    heading_deg: float = 0.0, altitude_m: int = 0, positioned: bool = True,
                    load: str | None = "empty", alarm: int = 0, status_extra: int = 0,
                    extras: dict[int, bytes] | None = None) -> bytes:
    """Encode a 0x0200 body.

    Parameters
    ----------
    time : datetime
        Tz-aware time (written as GMT+8 BCD, whole seconds).
    lat, lon : float
        Degrees (the sign goes into status bits 2 and 3).
    load : {"empty", "half", "full"} or None
        Status bits 8–9; None writes the reserved value 10 ("not reported").
    status_extra : int
        Other status bits to set (ACC etc.).
    extras : dict of int to bytes, optional
        Additional-information items.
    """
    if time.tzinfo is None:
        raise Jt808Error("bad_time", "time: a naive datetime; give a zone")
    status = status_extra & ~0x30E
    if positioned:
        status |= 0x2
    if lat < 0:
        status |= 0x4
    if lon < 0:
        status |= 0x8
    status |= (_LOAD_CODE[load] if load is not None else 0b10) << 8
    local = time.astimezone(GMT8)
    if not 2000 <= local.year <= 2099:
        raise Jt808Error("bad_time", f"time: {time.isoformat()} is outside 2000–2099 (BCD YY)")
    stamp = bcd_encode(local.strftime("%y%m%d%H%M%S"), 6, field="time")
    lat_e6, lon_e6 = round(abs(lat) * 1e6), round(abs(lon) * 1e6)
    body = (
        (alarm & 0xFFFFFFFF).to_bytes(4, "big") + status.to_bytes(4, "big")
        + min(lat_e6, 0xFFFFFFFF).to_bytes(4, "big") + min(lon_e6, 0xFFFFFFFF).to_bytes(4, "big")
        + (altitude_m & 0xFFFF).to_bytes(2, "big")
        + min(max(round(speed_kmh * 10), 0), 0xFFFF).to_bytes(2, "big")
        + (round(heading_deg) % 360).to_bytes(2, "big") + stamp
    )
    for info_id, value in (extras or {}).items():
        if len(value) > 255:
            raise Jt808Error("bad_extra", f"additional item 0x{info_id:02x} longer than 255 bytes")
        body += bytes([info_id & 0xFF, len(value)]) + value
    return body


# ------------------------------------------------------------------ server time (2019)
def encode_server_time(now: datetime) -> bytes:
    """0x8004 body (2019 table 8-4): the platform's UTC time as BCD[6] ``YYMMDDhhmmss``."""
    if now.tzinfo is None:
        raise Jt808Error("bad_time", "now: a naive datetime; give a zone")
    return bcd_encode(now.astimezone(timezone.utc).strftime("%y%m%d%H%M%S"), 6, field="time")


# ------------------------------------------------------------------ batch
@dataclass(frozen=True)
class Batch:
    """0x0704 batch upload (2019 table 81): type 0 normal, 1 blind-area back-fill.

    ``items`` are the raw 0x0200 bodies (each decoded on its own, so one bad
    item does not lose the others); ``truncated`` is True when the count
    announced more items than the body held.
    """

    count: int
    kind: int
    items: tuple[bytes, ...]
    truncated: bool = False


def decode_batch(body: bytes) -> Batch:
    """Decode a 0x0704 body: WORD count, BYTE type, then WORD-length-prefixed items."""
    _short(body, 3, "batch")
    count = int.from_bytes(body[0:2], "big")
    kind = body[2]
    items: list[bytes] = []
    pos, n = 3, len(body)
    truncated = False
    for _ in range(count):
        if pos + 2 > n:
            truncated = True
            break
        length = int.from_bytes(body[pos:pos + 2], "big")
        if pos + 2 + length > n:
            truncated = True
            break
        items.append(body[pos + 2:pos + 2 + length])
        pos += 2 + length
    return Batch(count=count, kind=kind, items=tuple(items), truncated=truncated)


def encode_batch(items: list[bytes], kind: int = 0) -> bytes:
    """Encode a 0x0704 body from 0x0200 bodies."""
    out = len(items).to_bytes(2, "big") + bytes([kind & 0xFF])
    for item in items:
        out += len(item).to_bytes(2, "big") + item
    return out
