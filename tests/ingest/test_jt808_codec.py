"""JT/T 808 codec: framing, escaping, headers and message bodies.

Expected values come from the standard's tables and from frames published by
other implementations (each cited where used), never from the code under test.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haulwatch.errors import UserError
from haulwatch.ingest.jt808 import (
    Authenticate,
    FrameSplitter,
    Jt808Error,
    Reassembler,
    Register,
    check_code,
    decode_authenticate,
    decode_batch,
    decode_frame,
    decode_general_response,
    decode_location,
    decode_register,
    decode_register_response,
    encode_authenticate,
    encode_batch,
    encode_frame,
    encode_general_response,
    encode_location,
    encode_register,
    encode_register_response,
    escape,
    split_body,
    unescape,
)
from haulwatch.ingest.jt808.frame import bcd_decode, bcd_encode

# Published frames: makeclan/xtream-codec (a Java JT/T 808 server),
# debug/jt/jt-808-server-spring-boot-starter-debug-ui/src/utils/codec-utils.ts,
# "codecMockData" (hex string + decoded body of each built-in message).
XTREAM_0200 = ("7e02004026010000000001391234432900000000006f0000001601dc9a0707456246007b"
               "004200032501292233440202006401040000000c417e")
XTREAM_0200_SAMPLE2 = (
    "7e0200407c010000000001391234432900000000007b000000de01d907f2073d336c029a004e00001410"
    "2119510901040000006f020200de0302029a0402014d2504000003093001211206010000000001130700"
    "000001000000310137642f000000dedf6f03420b0c0d0e0f04d201d907f2073d336c141021195109000131"
    "3233343536371410211951090101008e7e")
XTREAM_0704 = ("7e0704403f01000000000139123443290000000200001c000000010000000101d907f2073d336c"
               "029a00210059241029213903001c000000010000000101d907f3073d336d03090043005a241029"
               "213903f87e")
XTREAM_8001 = "7e8001400501000000000139123443290000006f020000dc7e"
XTREAM_8100 = "7e8100400d01000000000139123443290000006f006f6b2e2e6f6b2e2e6f6bd27e"
XTREAM_8003_2013 = "7e800300090139123443230000006f030002000300049d7e"
XTREAM_8300_2013 = ("7e8300001901391234432300000148656c6c6f576f726c6420babad7d62047424b20b1e0c2eb"
                    "f27e")
PHONE_2019 = "00000000013912344329"


def _content(hexframe: str) -> bytes:
    raw = bytes.fromhex(hexframe)
    assert raw[0] == 0x7E and raw[-1] == 0x7E
    return raw[1:-1]


class TestEscape:
    def test_example_of_the_standard(self) -> None:
        # JT/T 808-2013 / -2019 §4.4.1 (标识位): the packet 30 7e 08 7d 55 is sent as
        # 7e 30 7d 02 08 7d 01 55 7e.
        assert escape(bytes.fromhex("307e087d55")) == bytes.fromhex("307d02087d0155")
        assert unescape(bytes.fromhex("307d02087d0155")) == bytes.fromhex("307e087d55")

    def test_7d_escaped_before_7e(self) -> None:
        # a 0x7e becomes 7d 02; that 7d must not be escaped again
        assert escape(b"\x7e\x7d") == b"\x7d\x02\x7d\x01"

    @pytest.mark.parametrize("bad", ["7d", "7d03", "307d00", "7d7d", "017e02"])
    def test_broken_escape_refused(self, bad: str) -> None:
        with pytest.raises(Jt808Error, match="0x7") as info:
            unescape(bytes.fromhex(bad))
        assert info.value.reason == "bad_escape"

    @given(st.binary(max_size=300))
    def test_round_trip(self, data: bytes) -> None:
        esc = escape(data)
        assert b"\x7e" not in esc
        assert unescape(esc) == data


class TestCheckCode:
    def test_xor_of_bytes(self) -> None:
        assert check_code(b"") == 0
        assert check_code(b"\x01\x02\x04") == 0x07
        assert check_code(b"\xff\xff") == 0
        assert check_code(bytes(range(1, 11))) == 1 ^ 2 ^ 3 ^ 4 ^ 5 ^ 6 ^ 7 ^ 8 ^ 9 ^ 10

    @given(st.binary(max_size=200))
    def test_matches_a_plain_fold(self, data: bytes) -> None:
        acc = 0
        for b in data:
            acc ^= b
        assert check_code(data) == acc

    def test_published_frames_check(self) -> None:
        for hexframe in (XTREAM_0200, XTREAM_0704, XTREAM_8001, XTREAM_8100, XTREAM_8003_2013):
            data = unescape(_content(hexframe))
            assert check_code(data[:-1]) == data[-1]


class TestHeader:
    def test_2019_header(self) -> None:
        f = decode_frame(_content(XTREAM_0200))
        h = f.header
        assert (h.msg_id, h.version, h.protocol_version, h.phone, h.flow) == (
            0x0200, 2019, 1, PHONE_2019, 0)
        assert h.body_length == 0x26 == len(f.body)
        assert not h.subpackaged and h.encryption == 0
        assert h.phone_key == "13912344329"

    def test_2013_header(self) -> None:
        f = decode_frame(_content(XTREAM_8003_2013))
        h = f.header
        assert (h.msg_id, h.version, h.phone, h.flow, h.body_length) == (
            0x8003, 2013, "013912344323", 0, 9)
        assert f.body == bytes.fromhex("006f03000200030004")

    def test_2013_gbk_text_frame(self) -> None:
        f = decode_frame(_content(XTREAM_8300_2013))
        assert f.body[0] == 1
        assert f.body[1:].decode("gbk") == "HelloWorld 汉字 GBK 编码"

    @pytest.mark.parametrize("version", [2013, 2019])
    def test_encode_decode(self, version: int) -> None:
        body = bytes(range(200)) + b"\x7e\x7d" * 5
        raw = encode_frame(0x0200, body, phone="13912344329", flow=65535, version=version)
        assert raw[0] == raw[-1] == 0x7E and b"\x7e" not in raw[1:-1]
        f = decode_frame(raw[1:-1])
        assert f.body == body and f.header.flow == 65535 and f.header.version == version
        assert f.header.phone_key == "13912344329"
        assert len(f.header.phone) == (20 if version == 2019 else 12)

    def test_subpackage_item(self) -> None:
        raw = encode_frame(0x0704, b"abc", phone="1", flow=7, version=2019, packet=(3, 2))
        h = decode_frame(raw[1:-1]).header
        assert (h.packet_total, h.packet_index, h.size) == (3, 2, 21)
        raw13 = encode_frame(0x0704, b"abc", phone="1", flow=7, packet=(3, 3))
        assert decode_frame(raw13[1:-1]).header.size == 16

    def test_bad_check_code(self) -> None:
        data = bytearray(unescape(_content(XTREAM_8001)))
        data[-1] ^= 0x01
        with pytest.raises(Jt808Error, match="check code") as info:
            decode_frame(escape(bytes(data)))
        assert info.value.reason == "bad_check_code"
        assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)

    def test_lying_length(self) -> None:
        # attributes claim 0x3ff bytes for a 5-byte body (check code recomputed)
        data = bytearray(unescape(_content(XTREAM_8001))[:-1])
        data[2:4] = (0x4000 | 0x3FF).to_bytes(2, "big")
        data += bytes([check_code(bytes(data))])
        with pytest.raises(Jt808Error) as info:
            decode_frame(escape(bytes(data)))
        assert info.value.reason == "length_mismatch"

    def test_truncated(self) -> None:
        with pytest.raises(Jt808Error) as info:
            decode_frame(bytes.fromhex("0200"))
        assert info.value.reason == "truncated"
        # a 2019 flag on 13 bytes: header needs 17
        data = bytes.fromhex("0002400001000000000000") + b"\x00"
        data += bytes([check_code(data)])
        with pytest.raises(Jt808Error) as info:
            decode_frame(data, escaped=False)
        assert info.value.reason == "truncated"

    def test_bad_bcd_phone(self) -> None:
        data = bytes.fromhex("00020000") + bytes.fromhex("0139123443ff") + b"\x00\x01"
        data += bytes([check_code(data)])
        with pytest.raises(Jt808Error) as info:
            decode_frame(data, escaped=False)
        assert info.value.reason == "bad_bcd"

    def test_bad_subpackage_index(self) -> None:
        data = bytes.fromhex("02002000") + bytes(6) + b"\x00\x01" + bytes.fromhex("00020003")
        data += bytes([check_code(data)])
        with pytest.raises(Jt808Error) as info:
            decode_frame(data, escaped=False)
        assert info.value.reason == "bad_subpackage"

    def test_bcd(self) -> None:
        assert bcd_decode(bytes.fromhex("013912344323")) == "013912344323"
        assert bcd_encode("13912344323", 6) == bytes.fromhex("013912344323")
        with pytest.raises(Jt808Error):
            bcd_encode("12a", 6)
        with pytest.raises(Jt808Error):
            bcd_encode("1" * 13, 6)


class TestResponses:
    def test_8001_byte_for_byte(self) -> None:
        # xtream-codec: clientFlowId 111, clientMessageId 0x0200, result 0
        raw = encode_frame(0x8001, encode_general_response(111, 0x0200, 0), phone=PHONE_2019,
                           flow=0, version=2019)
        assert raw.hex() == XTREAM_8001
        r = decode_general_response(decode_frame(_content(XTREAM_8001)).body)
        assert (r.reply_flow, r.reply_id, r.result) == (111, 0x0200, 0)

    def test_8100_byte_for_byte(self) -> None:
        # xtream-codec: clientFlowId 111, result 0, authCode "ok..ok..ok"
        raw = encode_frame(0x8100, encode_register_response(111, 0, "ok..ok..ok"),
                           phone=PHONE_2019, flow=0, version=2019)
        assert raw.hex() == XTREAM_8100
        r = decode_register_response(decode_frame(_content(XTREAM_8100)).body)
        assert (r.reply_flow, r.result, r.auth_code) == (111, 0, "ok..ok..ok")

    def test_8100_refusal_has_no_code(self) -> None:
        assert encode_register_response(5, 2, "secret") == bytes.fromhex("000502")
        assert decode_register_response(bytes.fromhex("000502")).auth_code == ""

    def test_short_response(self) -> None:
        with pytest.raises(Jt808Error) as info:
            decode_general_response(b"\x00\x01")
        assert info.value.reason == "short_body"


class TestRegister:
    def test_2013_widths(self) -> None:
        # JT/T 808-2013 table 8: WORD province, WORD city, BYTE[5] maker, BYTE[20] model,
        # BYTE[7] terminal id, BYTE colour, STRING plate
        reg = Register(33, 600, "HW001", "T-1", "ID00001", 2, "浙D·A1234")
        body = encode_register(reg, 2013)
        assert len(body) == 2 + 2 + 5 + 20 + 7 + 1 + len("浙D·A1234".encode("gbk"))
        assert body[:4] == bytes.fromhex("00210258")
        assert body[4:9] == b"HW001" and body[36] == 2
        assert body[37:].decode("gbk") == "浙D·A1234"
        assert decode_register(body, 2013) == reg

    def test_2019_widths(self) -> None:
        # JT/T 808-2019 table 9: BYTE[11] maker, BYTE[30] model, BYTE[30] terminal id
        reg = Register(33, 600, "HW001", "T-1", "ID-0000000000001", 1, "浙DA1234")
        body = encode_register(reg, 2019)
        assert len(body) == 4 + 11 + 30 + 30 + 1 + 8
        assert body[4 + 11 + 30:4 + 11 + 30 + 16] == b"ID-0000000000001"
        assert decode_register(body, 2019) == reg

    def test_2011_body_and_2013_body_under_a_2019_header(self) -> None:
        # JT/T 808-2011 table: BYTE[8] terminal model (2013 widened it to BYTE[20])
        reg = Register(33, 600, "HW001", "T-8", "ID00001", 2, "浙DA1234")
        body11 = encode_register(reg, 2011)
        assert len(body11) == 4 + 5 + 8 + 7 + 1 + 8
        assert decode_register(body11, 2013) == reg
        # a terminal that sends the 2013 body with a 2019 header
        assert decode_register(encode_register(reg, 2013), 2019) == reg

    def test_short_and_bad_text(self) -> None:
        with pytest.raises(Jt808Error) as info:
            decode_register(b"\x00" * 25, 2013)  # 2011 fixed part is 25 bytes, plus a plate
        assert info.value.reason == "short_body"
        body = encode_register(Register(0, 0, "", "", "", 1, "x"), 2013)[:-1] + b"\xff\xff\xff"
        with pytest.raises(Jt808Error) as info:
            decode_register(body, 2013)
        assert info.value.reason == "bad_text"


class TestAuthenticate:
    def test_2013_body_is_the_code(self) -> None:
        assert encode_authenticate(Authenticate("abc123"), 2013) == b"abc123"
        assert decode_authenticate(b"abc123", 2013).auth_code == "abc123"

    def test_2019_layout(self) -> None:
        # JT/T 808-2019 table 12: BYTE length, STRING code, BYTE[15] IMEI, BYTE[20] version
        a = Authenticate("abc123", "861234567890123", "V1.0")
        body = encode_authenticate(a, 2019)
        assert body[0] == 6 and body[1:7] == b"abc123" and len(body) == 1 + 6 + 15 + 20
        assert body[7:22] == b"861234567890123"
        assert decode_authenticate(body, 2019) == a

    def test_2019_short(self) -> None:
        with pytest.raises(Jt808Error) as info:
            decode_authenticate(b"\x06abc123", 2019)
        assert info.value.reason == "short_body"


class TestLocation:
    def test_published_report(self) -> None:
        # xtream-codec BuiltinMessage0200: alarm 111, status 22, lat 31234567, lon 121987654,
        # altitude 123, speed 66 (0.1 km/h), direction 3, BCD time 250129223344, items 1, 2
        loc = decode_location(decode_frame(_content(XTREAM_0200)).body)
        assert (loc.alarm, loc.status, loc.lat_e6, loc.lon_e6) == (111, 22, 31234567, 121987654)
        assert (loc.altitude_m, loc.speed_kmh, loc.heading_deg) == (123, 6.6, 3)
        # status 22 = 0b10110: bit 1 positioned, bit 2 south
        assert loc.positioned and loc.lat == -31.234567 and loc.lon == 121.987654
        # 2025-01-29 22:33:44 GMT+8
        assert loc.time == datetime(2025, 1, 29, 14, 33, 44, tzinfo=timezone.utc)
        assert loc.extras == {1: bytes.fromhex("0000000c"), 2: bytes.fromhex("0064")}
        assert loc.extra_int(1) == 12 and loc.extra_int(2) == 100 and loc.extra_int(3) is None
        assert loc.load == "empty"

    def test_published_report_many_items(self) -> None:
        # xtream-codec BuiltinMessage0200Sample2 (fields read off its hex by hand)
        loc = decode_location(decode_frame(_content(XTREAM_0200_SAMPLE2)).body)
        assert (loc.alarm, loc.status, loc.lat_e6, loc.lon_e6) == (123, 0xDE, 31000562, 121451372)
        assert (loc.altitude_m, loc.speed_kmh, loc.heading_deg) == (666, 7.8, 0)
        assert loc.time == datetime(2014, 10, 21, 11, 51, 9, tzinfo=timezone.utc)
        assert loc.extra_int(0x01) == 111 and loc.extra_int(0x02) == 222
        assert loc.extra_int(0x03) == 666 and loc.extra_int(0x04) == 333
        assert loc.extra_int(0x25) == 0x309 and loc.extra_int(0x30) == 0x21
        assert not loc.extras_truncated

    def test_status_bits(self) -> None:
        # JT/T 808-2019 table 25: bit 1 positioned, bit 2 south, bit 3 west, bits 8-9 load
        t = datetime(2026, 3, 2, 3, 0, 5, tzinfo=timezone.utc)
        for load, bits in (("empty", 0b00), ("half", 0b01), ("full", 0b11), (None, 0b10)):
            body = encode_location(time=t, lat=-30.5, lon=-120.25, load=load)
            status = int.from_bytes(body[4:8], "big")
            assert status == 0x2 | 0x4 | 0x8 | (bits << 8)
            loc = decode_location(body)
            assert loc.load == load and loc.lat == -30.5 and loc.lon == -120.25
        body = encode_location(time=t, lat=30, lon=120, positioned=False)
        assert not decode_location(body).positioned

    def test_time_is_gmt8_bcd(self) -> None:
        t = datetime(2026, 3, 2, 3, 0, 5, tzinfo=timezone.utc)  # 11:00:05 in GMT+8
        body = encode_location(time=t, lat=30.0, lon=120.0, speed_kmh=48.7, heading_deg=269)
        assert body[22:28] == bytes.fromhex("260302110005")
        assert body[18:20] == (487).to_bytes(2, "big") and body[20:22] == (269).to_bytes(2, "big")
        assert body[8:12] == (30_000_000).to_bytes(4, "big")
        loc = decode_location(body)
        assert loc.time == t and loc.speed_kmh == 48.7

    @pytest.mark.parametrize("stamp", ["261302110005", "260230110005", "2603021100ff",
                                       "260302250005"])
    def test_bad_time_is_reported_not_raised(self, stamp: str) -> None:
        body = bytearray(encode_location(time=datetime(2026, 3, 2, tzinfo=timezone.utc),
                                         lat=30, lon=120))
        body[22:28] = bytes.fromhex(stamp)
        loc = decode_location(bytes(body))
        assert loc.time is None and loc.time_error

    def test_extras(self) -> None:
        t = datetime(2026, 3, 2, tzinfo=timezone.utc)
        body = encode_location(time=t, lat=30, lon=120, extras={0xE1: b"\x01", 0x01: b"\0\0\0\x05"})
        assert body[28:] == bytes.fromhex("e10101" "010400000005")
        loc = decode_location(body)
        assert loc.extra_int(0xE1) == 1 and loc.extra_int(0x01) == 5
        cut = decode_location(body[:-2])
        assert cut.extras_truncated and cut.extra_int(0xE1) == 1 and 0x01 not in cut.extras

    def test_short(self) -> None:
        with pytest.raises(Jt808Error) as info:
            decode_location(b"\x00" * 27)
        assert info.value.reason == "short_body"


class TestBatch:
    def test_published_batch(self) -> None:
        # xtream-codec BuiltinMessage0704: count 2, type 0, items of 28 bytes
        f = decode_frame(_content(XTREAM_0704))
        b = decode_batch(f.body)
        assert (b.count, b.kind, len(b.items), b.truncated) == (2, 0, 2, False)
        first, second = (decode_location(i) for i in b.items)
        assert (first.lat_e6, first.lon_e6, first.altitude_m, first.heading_deg) == (
            31000562, 121451372, 666, 89)
        assert first.speed_kmh == 3.3 and second.speed_kmh == 6.7
        assert second.lat_e6 == 31000563 and second.altitude_m == 777
        assert first.time == datetime(2024, 10, 29, 13, 39, 3, tzinfo=timezone.utc)
        assert not first.positioned  # status 1: ACC only

    def test_round_trip_and_lies(self) -> None:
        t = datetime(2026, 3, 2, tzinfo=timezone.utc)
        items = [encode_location(time=t, lat=30, lon=120 + i / 1000) for i in range(3)]
        body = encode_batch(items, kind=1)
        b = decode_batch(body)
        assert b.kind == 1 and b.items == tuple(items)
        lying = (10).to_bytes(2, "big") + body[2:]
        assert decode_batch(lying).truncated and len(decode_batch(lying).items) == 3
        assert decode_batch(body[:-5]).truncated and len(decode_batch(body[:-5]).items) == 2
        with pytest.raises(Jt808Error):
            decode_batch(b"\x00\x01")


class TestSplitter:
    def test_garbage_and_boundaries(self) -> None:
        s = FrameSplitter()
        out = s.feed(b"garbage" + bytes.fromhex(XTREAM_8001) + bytes.fromhex(XTREAM_8001))
        assert out == [_content(XTREAM_8001)] * 2
        assert s.garbage_bytes == 7

    def test_byte_by_byte(self) -> None:
        s = FrameSplitter()
        got = []
        for b in bytes.fromhex(XTREAM_0704):
            got += s.feed(bytes([b]))
        assert got == [_content(XTREAM_0704)]

    def test_shared_delimiter(self) -> None:
        # some terminals let one 0x7e close a frame and open the next
        a = bytes.fromhex(XTREAM_8001)
        s = FrameSplitter()
        assert s.feed(a + a[1:]) == [_content(XTREAM_8001)] * 2

    def test_no_delimiter_buffers_nothing(self) -> None:
        s = FrameSplitter(max_frame_bytes=64)
        s.feed(b"\x00" * 10_000)
        assert s.buffered == 0 and s.garbage_bytes == 10_000

    def test_overlong_frame_dropped_once(self) -> None:
        s = FrameSplitter(max_frame_bytes=64)
        out = s.feed(b"\x7e" + b"\x01" * 50)
        out += s.feed(b"\x01" * 5000)
        assert s.buffered <= 64
        errors = [o for o in out if isinstance(o, Jt808Error)]
        assert len(errors) == 1 and errors[0].reason == "frame_too_long"
        assert s.feed(bytes.fromhex(XTREAM_8001)) == [_content(XTREAM_8001)]

    @given(st.lists(st.binary(max_size=40), max_size=20), st.binary(max_size=200))
    @settings(max_examples=200)
    def test_frames_survive_any_chunking(self, chunks: list[bytes], noise: bytes) -> None:
        frames = [encode_frame(0x0200, c, phone="13900000000", flow=i)
                  for i, c in enumerate(chunks)]
        stream = noise.replace(b"\x7e", b"") + b"".join(frames)
        s = FrameSplitter()
        got: list[bytes] = []
        step = 7
        for i in range(0, len(stream), step):
            got += [o for o in s.feed(stream[i:i + step]) if isinstance(o, bytes)]
        assert [decode_frame(g).body for g in got] == chunks


@given(st.binary(max_size=400))
@settings(max_examples=500)
def test_arbitrary_bytes_raise_only_the_codec_error(data: bytes) -> None:
    s = FrameSplitter(max_frame_bytes=256)
    for cand in s.feed(b"\x7e" + data + b"\x7e"):
        if isinstance(cand, Jt808Error):
            continue
        try:
            f = decode_frame(cand)
        except Jt808Error:
            continue
        v = f.header.version
        for fn in (partial(decode_register, version=v), decode_location, decode_batch,
                   partial(decode_authenticate, version=v), decode_general_response):
            with contextlib.suppress(Jt808Error):
                fn(f.body)


@given(st.binary(max_size=200), st.sampled_from([2013, 2019]))
def test_arbitrary_bodies_raise_only_the_codec_error(body: bytes, version: int) -> None:
    for fn in (lambda b: decode_register(b, version), decode_location, decode_batch,
               lambda b: decode_authenticate(b, version), decode_general_response,
               decode_register_response):
        with contextlib.suppress(Jt808Error):
            fn(body)
    loc = decode_location(body.ljust(28, b"\x00"))
    assert abs(loc.lat) <= 0xFFFFFFFF / 1e6 and 0 <= loc.heading_deg <= 0xFFFF


class TestReassembly:
    def _frames(self, body: bytes, size: int, first_flow: int = 10) -> list:
        parts = split_body(body, size)
        return [decode_frame(encode_frame(0x0704, p, phone="1", flow=first_flow + i,
                                          version=2019, packet=(len(parts), i + 1))[1:-1])
                for i, p in enumerate(parts)]

    def test_in_order_and_out_of_order(self) -> None:
        body = bytes(range(256)) * 10
        frames = self._frames(body, 1000)
        r = Reassembler()
        assert r.add(frames[0], 0.0) is None and r.add(frames[1], 0.0) is None
        assert r.add(frames[2], 0.0) == body and r.held_bytes == 0
        r2 = Reassembler()
        for f in (frames[2], frames[0]):
            assert r2.add(f, 0.0) is None
        assert r2.add(frames[1], 0.0) == body

    def test_limits_and_expiry(self) -> None:
        frames = self._frames(b"x" * 3000, 1000)
        r = Reassembler(max_bytes=1500)
        r.add(frames[0], 0.0)
        with pytest.raises(Jt808Error) as info:
            r.add(frames[1], 0.0)
        assert info.value.reason == "bad_subpackage" and r.held_bytes == 0
        r = Reassembler(max_packets=2)
        with pytest.raises(Jt808Error):
            r.add(frames[0], 0.0)
        r = Reassembler(timeout_s=5)
        r.add(frames[0], 0.0)
        assert r.expire(4.0) == 0 and r.expire(6.0) == 1 and r.held_bytes == 0
