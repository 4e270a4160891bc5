"""JT/T 808 gateway: protocol answers, storage semantics and hostile input.

The server runs on a free local port with an in-memory terminal store and a
fake sink (a dict keyed by plate and time, like the real store); terminals are
:class:`TerminalClient` or raw bytes. Expected answers come from the
standard's result tables (0x8001: 0 ok, 1 failure, 2 message error,
3 unsupported; 0x8100: 0 ok, 2 no such vehicle).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haulwatch.api.gateway import (
    BatchingSink,
    Gateway,
    GatewayConfig,
    GatewayConfigError,
    MemoryTerminalStore,
    Outcome,
)
from haulwatch.api.gateway.client import TerminalClient, TerminalReplyError
from haulwatch.ingest.jt808 import (
    FrameSplitter,
    check_code,
    decode_frame,
    decode_general_response,
    encode_frame,
    encode_location,
    escape,
)

T0 = datetime(2026, 3, 2, 3, 0, 0, tzinfo=timezone.utc)


class FakeStore:
    """``store(points)`` of a dict keyed like the real store (plate, time)."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls = 0
        self.fail = False

    def __call__(self, points: list[dict[str, Any]]) -> list[Outcome]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("disk full")
        out = []
        for p in points:
            key = (p["vehicle_id"], p["time"])
            if key in self.points:
                out.append(Outcome("duplicate"))
            else:
                self.points[key] = p
                out.append(Outcome("stored"))
        return out


def run(coro_fn: Callable[..., Awaitable[Any]], **cfg: Any) -> tuple[Any, Gateway, FakeStore]:
    """Start a gateway, run ``coro_fn(gateway)``, stop it; return its result."""
    store = FakeStore()
    gw_holder: dict[str, Gateway] = {}

    async def wrapped(gw: Gateway) -> Any:
        gw_holder["gw"] = gw
        return await coro_fn(gw)

    result = asyncio.run(asyncio.wait_for(_main(store, wrapped, cfg), 60))
    return result, gw_holder["gw"], store


async def _main(store: FakeStore, fn: Callable[[Gateway], Awaitable[Any]],
                cfg: dict[str, Any]) -> Any:
    gw = Gateway(GatewayConfig(port=0, **cfg), BatchingSink(store), MemoryTerminalStore(),
                 known_vehicle=lambda plate: plate.startswith("浙D"))
    await gw.start()
    try:
        return await fn(gw)
    finally:
        await gw.close()


async def terminal(gw: Gateway, phone: str = "13900000001", *, version: int = 2019,
                   plate: str = "浙D·A1234", auth: bool = True) -> TerminalClient:
    t = TerminalClient(phone, version=version, timeout_s=10)
    await t.connect("127.0.0.1", gw.port)
    if auth:
        r = await t.register(plate)
        assert r.result == 0 and r.auth_code
        assert (await t.authenticate()).result == 0
    return t


def loc(seconds: int = 0, **kw: Any) -> bytes:
    args: dict[str, Any] = {"time": T0.replace(second=seconds % 60, minute=seconds // 60),
                            "lat": 29.966776, "lon": 120.631384, "speed_kmh": 48.7,
                            "heading_deg": 269, "load": "full"}
    args.update(kw)
    return encode_location(**args)


class TestSession:
    @pytest.mark.parametrize("version", [2013, 2019])
    def test_register_authenticate_report(self, version: int) -> None:
        async def go(gw: Gateway) -> list[int]:
            t = await terminal(gw, version=version)
            r1 = await t.report(loc(5, extras={0xE1: b"\x01"}))
            r2 = await t.report(loc(5, extras={0xE1: b"\x01"}))  # re-sent: not a second point
            r3 = await t.heartbeat()
            await t.close()
            return [r1.result, r2.result, r3.result]

        results, gw, store = run(go)
        assert results == [0, 0, 0]
        t = int(datetime(2026, 3, 2, 3, 0, 5, tzinfo=timezone.utc).timestamp())  # epoch seconds
        assert list(store.points) == [("浙D·A1234", t)]
        p = store.points[("浙D·A1234", t)]
        assert (p["lat"], p["lon"], p["speed_kmh"], p["heading_deg"]) == (
            29.966776, 120.631384, 48.7, 269.0)
        assert (p["load"], p["lift"]) == ("full", 1)
        assert gw.metrics.points["stored"] == 1 and gw.metrics.points["duplicate"] == 1

    def test_registering_again_gives_the_same_code(self) -> None:
        async def go(gw: Gateway) -> tuple[str, str, int, int]:
            t = await terminal(gw, auth=False)
            a = (await t.register("浙D·A1234")).auth_code
            await t.close()
            # the same phone in the other header form, new connection
            t2 = await terminal(gw, phone="013900000001", version=2013, auth=False)
            b = (await t2.register("浙D·A1234")).auth_code
            wrong = (await t2.authenticate("nope")).result
            right = (await t2.authenticate(a)).result
            await t2.close()
            return a, b, wrong, right

        (a, b, wrong, right), _, _ = run(go)
        assert a == b and len(a) == 16
        assert (wrong, right) == (1, 0)

    @pytest.mark.parametrize("version", [2013, 2019])
    def test_an_unplated_vehicle_registers_with_its_vin(self, version: int) -> None:
        # JT/T 808 register: plate colour 0 = not plated, the plate field holds the VIN (17).
        vin = "LSVAU2180N2183294"

        async def go(gw: Gateway) -> list[int]:
            t = TerminalClient("13900000077", version=version, timeout_s=10)
            await t.connect("127.0.0.1", gw.port)
            out = [(await t.register(vin, plate_color=0)).result,
                   (await t.authenticate()).result, (await t.report(loc(5))).result]
            too_long = TerminalClient("13900000078", version=version, timeout_s=10)
            await too_long.connect("127.0.0.1", gw.port)
            out.append((await too_long.register("浙D" + "1" * 19, plate_color=2)).result)
            await t.close()
            await too_long.close()
            return out

        results, gw, store = run(go)
        assert results == [0, 0, 0, 2]      # 0x8100 result 2: no such vehicle (plate refused)
        t5 = int(datetime(2026, 3, 2, 3, 0, 5, tzinfo=timezone.utc).timestamp())
        assert list(store.points) == [(vin, t5)]
        assert gw.metrics.refused["register_bad_plate"] == 1

    def test_location_before_auth_is_refused_and_not_stored(self) -> None:
        async def go(gw: Gateway) -> list[int]:
            t = await terminal(gw, auth=False)
            out = [(await t.report(loc(1))).result]
            await t.register("浙D·A1234")
            out.append((await t.batch([loc(2)])).result)  # registered, not authenticated
            await t.close()
            return out

        results, gw, store = run(go)
        assert results == [1, 1] and store.points == {} and store.calls == 0
        assert gw.metrics.refused["not_authenticated"] == 2

    def test_logout_forgets_the_registration(self) -> None:
        async def go(gw: Gateway) -> list[int]:
            t = await terminal(gw)
            out = [(await t.logout()).result, (await t.report(loc(1))).result,
                   (await t.authenticate()).result]
            await t.close()
            return out

        results, _, store = run(go)
        assert results == [0, 1, 1] and store.points == {}

    def test_server_time_query(self) -> None:
        # JT/T 808-2019 0x0004 -> 0x8004: UTC time as BCD[6] YYMMDDhhmmss
        async def go(gw: Gateway) -> bytes:
            gw.wall = lambda: datetime(2026, 3, 2, 11, 0, 5, tzinfo=timezone(timedelta(hours=8)))
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(_raw_frame(0x0004, b""))
            await writer.drain()
            s = FrameSplitter()
            while True:
                got = s.feed(await asyncio.wait_for(reader.read(4096), 10))
                if got:
                    f = decode_frame(got[0])
                    writer.close()
                    assert f.header.msg_id == 0x8004
                    return f.body

        body, _, _ = run(go)
        assert body == bytes.fromhex("260302030005")

    def test_unknown_message_short_body_encrypted(self) -> None:
        async def go(gw: Gateway) -> list[int]:
            t = await terminal(gw)
            out = [(await t.request(0x0900, b"\x01\x02")).result,   # not supported here
                   (await t.report(loc(1)[:20])).result]             # 0x0200 needs 28 bytes
            flow = t._next_flow()
            fut = asyncio.get_running_loop().create_future()
            t._pending[flow] = fut
            await t.send_raw(encode_frame(0x0200, loc(3), phone=t.phone, flow=flow,
                                          version=2019, encryption=1))
            out.append((await asyncio.wait_for(fut, 10)).result)
            await t.close()
            return out

        results, gw, store = run(go)
        assert results == [3, 2, 3] and store.points == {}
        assert gw.metrics.refused["unsupported_message"] == 1
        assert gw.metrics.refused["short_body"] == 1 and gw.metrics.refused["encrypted"] == 1


class TestReports:
    def test_no_fix_is_recorded_not_stored(self) -> None:
        async def go(gw: Gateway) -> int:
            t = await terminal(gw)
            r = await t.report(loc(1, positioned=False))
            await t.close()
            return r.result

        result, gw, store = run(go)
        assert result == 0 and store.points == {}
        assert gw.metrics.rejected["no_fix"] == 1
        assert gw.terminals.rejects[0][3].startswith("no_fix")

    def test_out_of_range_and_bad_time(self) -> None:
        async def go(gw: Gateway) -> list[int]:
            t = await terminal(gw)
            body = bytearray(loc(1))
            body[22:28] = bytes.fromhex("261399000000")  # month 13
            out = [(await t.report(loc(2, lat=95.0))).result, (await t.report(bytes(body))).result]
            await t.close()
            return out

        results, gw, store = run(go)
        assert results == [2, 2] and store.points == {}
        assert gw.metrics.rejected["bad_coordinates"] == 1 and gw.metrics.rejected["bad_time"] == 1

    def test_south_west_and_load_bits(self) -> None:
        async def go(gw: Gateway) -> None:
            t = await terminal(gw)
            for i, load in enumerate(["empty", "half", "full", None]):
                assert (await t.report(loc(i, lat=-12.5, lon=-45.25, load=load))).result == 0
            await t.close()

        _, _, store = run(go)
        pts = sorted(store.points.values(), key=lambda p: p["time"])
        assert [p["load"] for p in pts] == ["empty", "half", "full", None]
        assert all(p["lat"] == -12.5 and p["lon"] == -45.25 and p["lift"] is None for p in pts)

    def test_backfill_batch_and_subpackages(self) -> None:
        async def go(gw: Gateway) -> list[int]:
            t = await terminal(gw, version=2013)
            small = await t.batch([loc(1), loc(2, positioned=False), loc(3)], kind=1)
            # 60 items x (2 + 28) bytes > 1023: sent in sub-packages, answered once stored
            big = await t.batch([loc(100 + i) for i in range(60)], kind=0)
            await t.close()
            return [small.result, big.result]

        results, gw, store = run(go)
        assert results == [0, 0]
        assert len(store.points) == 2 + 60
        assert gw.metrics.rejected["no_fix"] == 1 and gw.metrics.points["backfill_items"] == 3

    def test_refuse_unknown_vehicles_setting(self) -> None:
        async def go(gw: Gateway) -> list[int]:
            t = await terminal(gw, auth=False)
            a = await t.register("沪A99999")
            b = await t.register("浙D·A1234")
            await t.close()
            return [a.result, b.result]

        results, _, _ = run(go, refuse_unknown_vehicles=True)
        assert results == [2, 0]
        results, _, _ = run(go)
        assert results == [0, 0]

    def test_answer_waits_for_the_store(self) -> None:
        store_gate = asyncio.Event()

        async def go(gw: Gateway) -> tuple[bool, int]:
            slow = gw.sink.store

            def gated(points: list[dict[str, Any]]) -> list[Outcome]:
                asyncio.run_coroutine_threadsafe(store_gate.wait(), loop).result(30)
                return slow(points)

            loop = asyncio.get_running_loop()
            gw.sink.store = gated
            t = await terminal(gw)
            task = asyncio.create_task(t.report(loc(1)))
            await asyncio.sleep(0.3)
            answered_early = task.done()
            store_gate.set()
            r = await task
            await t.close()
            return answered_early, r.result

        (early, result), _, store = run(go)
        assert not early and result == 0 and len(store.points) == 1

    def test_store_failure_answers_failure(self) -> None:
        async def go(gw: Gateway) -> int:
            gw.sink.store.fail = True
            t = await terminal(gw)
            r = await t.report(loc(1))
            await t.close()
            return r.result

        result, gw, _ = run(go)
        assert result == 1 and gw.metrics.refused["store_failed"] == 1


def _raw_frame(msg_id: int, body: bytes, phone: str = "13900000009", flow: int = 1) -> bytes:
    return encode_frame(msg_id, body, phone=phone, flow=flow, version=2019)


async def _answers(reader: asyncio.StreamReader, n: int) -> list[tuple[int, int]]:
    """Read ``n`` 0x8001 answers: (answered message id, result)."""
    s = FrameSplitter()
    got: list[tuple[int, int]] = []
    while len(got) < n:
        data = await asyncio.wait_for(reader.read(4096), 10)
        if not data:
            break
        for cand in s.feed(data):
            f = decode_frame(cand)
            r = decode_general_response(f.body)
            got.append((r.reply_id, r.result))
    return got


class TestHostile:
    def _fresh_terminal_works(self, gw: Gateway) -> Callable[[], Awaitable[int]]:
        async def check() -> int:
            t = await terminal(gw, phone="13999999999", plate="浙D·FRESH1")
            r = await t.report(loc(30))
            await t.close()
            return r.result
        return check

    def test_every_kind_of_bad_frame(self) -> None:
        good = _raw_frame(0x0002, b"")
        data = bytearray(good[1:-1])
        bad_check = bytes(data[:-1]) + bytes([data[-1] ^ 0x55])
        lying = bytearray(b"\x00\x02" + (0x4000 | 40).to_bytes(2, "big") + good[5:-2])
        lying += bytes([check_code(bytes(lying))])

        async def go(gw: Gateway) -> tuple[list[tuple[int, int]], int]:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"\x00garbage without flags\x01" * 10)
            writer.write(b"\x7e" + bad_check + b"\x7e")          # answered: result 2
            writer.write(b"\x7e\x00\x02\x7d\x05\x00\x7e")         # broken escape: dropped
            writer.write(b"\x7e\x00\x02\x40\x7e")                 # truncated: dropped
            writer.write(b"\x7e" + escape(bytes(lying)) + b"\x7e")  # lying length: result 2
            writer.write(b"\x7e" + b"\x11" * 5000 + b"\x7e")      # too long: dropped
            writer.write(good)                                    # still served: result 0
            await writer.drain()
            answers = await _answers(reader, 3)
            writer.close()
            return answers, await self._fresh_terminal_works(gw)()

        (answers, fresh), gw, _ = run(go)
        assert answers == [(0x0002, 2), (0x0002, 2), (0x0002, 0)]
        assert fresh == 0
        r = gw.metrics.refused
        for reason in ("bad_check_code", "bad_escape", "truncated", "length_mismatch",
                       "frame_too_long"):
            assert r[reason] == 1, reason

    def test_bad_frames_in_a_row_close_the_connection(self) -> None:
        async def go(gw: Gateway) -> tuple[bytes, int]:
            reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            writer.write(b"\x7e\x01\x7e" * 20)
            await writer.drain()
            rest = await asyncio.wait_for(reader.read(), 10)  # EOF when closed
            writer.close()
            return rest, await self._fresh_terminal_works(gw)()

        (rest, fresh), gw, _ = run(go, max_bad_frames=5)
        assert rest == b"" and fresh == 0
        assert gw.metrics.closed["too_many_bad_frames"] == 1

    def test_garbage_flood_closes_without_buffering(self) -> None:
        async def go(gw: Gateway) -> int:
            _, writer = await asyncio.open_connection("127.0.0.1", gw.port)
            try:
                for _ in range(100):
                    writer.write(b"\x00" * 10_000)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            writer.close()
            return await self._fresh_terminal_works(gw)()

        fresh, gw, _ = run(go, max_garbage_bytes=50_000)
        assert fresh == 0 and gw.metrics.closed["garbage"] == 1

    def test_idle_and_slow_senders_are_cut(self) -> None:
        async def go(gw: Gateway) -> tuple[bytes, bytes, int]:
            r1, w1 = await asyncio.open_connection("127.0.0.1", gw.port)   # says nothing
            r2, w2 = await asyncio.open_connection("127.0.0.1", gw.port)   # one byte at a time
            frame = _raw_frame(0x0002, b"")

            async def trickle() -> None:
                try:
                    for b in frame[:-1]:
                        w2.write(bytes([b]))
                        await w2.drain()
                        await asyncio.sleep(0.2)
                except (ConnectionError, OSError):
                    pass

            task = asyncio.create_task(trickle())
            idle = await asyncio.wait_for(r1.read(), 20)
            slow = await asyncio.wait_for(r2.read(), 20)
            task.cancel()
            w1.close()
            w2.close()
            return idle, slow, await self._fresh_terminal_works(gw)()

        (idle, slow, fresh), gw, _ = run(go, idle_timeout_s=0.5)
        assert idle == b"" and slow == b"" and fresh == 0
        assert gw.metrics.closed["idle_timeout"] == 2

    def test_connection_cap(self) -> None:
        async def go(gw: Gateway) -> tuple[bytes, int]:
            held = [await terminal(gw, phone=f"1390000{i:04d}") for i in range(3)]
            r, w = await asyncio.open_connection("127.0.0.1", gw.port)
            refused = await asyncio.wait_for(r.read(), 10)
            w.close()
            await held[0].close()
            for _ in range(200):  # until the server has seen that connection go
                if gw.metrics.open_connections < 3:
                    break
                await asyncio.sleep(0.05)
            fresh = await self._fresh_terminal_works(gw)()
            for t in held[1:]:
                await t.close()
            return refused, fresh

        (refused, fresh), gw, _ = run(go, max_connections=3)
        assert refused == b"" and fresh == 0 and gw.metrics.closed["connection_cap"] == 1

    def test_many_connections_at_once(self) -> None:
        async def go(gw: Gateway) -> list[int]:
            ts = await asyncio.gather(*(terminal(gw, phone=f"1380000{i:04d}",
                                                 plate=f"浙D{i:05d}") for i in range(200)))
            res = await asyncio.gather(*(t.report(loc(i % 60)) for i, t in enumerate(ts)))
            for t in ts:
                await t.close()
            return [r.result for r in res]

        results, _, store = run(go)
        assert results == [0] * 200 and len(store.points) == 200

    def test_closed_connection_mid_request(self) -> None:
        async def go(gw: Gateway) -> int:
            _, w = await asyncio.open_connection("127.0.0.1", gw.port)
            w.write(_raw_frame(0x0002, b"")[:10])
            await w.drain()
            w.transport.abort()
            return await self._fresh_terminal_works(gw)()

        fresh, _, _ = run(go)
        assert fresh == 0


class TestConfig:
    def test_bad_values_named(self) -> None:
        with pytest.raises(GatewayConfigError, match="coord_system"):
            GatewayConfig(coord_system="bd09")
        with pytest.raises(GatewayConfigError, match="port"):
            GatewayConfig(port=70000)
        with pytest.raises(GatewayConfigError, match="idle_timeout_s"):
            GatewayConfig(idle_timeout_s=0)

    def test_from_env(self) -> None:
        assert GatewayConfig.from_env({}) is None
        cfg = GatewayConfig.from_env({"HAULWATCH_JT808_PORT": "7000",
                                      "HAULWATCH_JT808_LIFT_INFO_ID": "0xF3",
                                      "HAULWATCH_JT808_COORDS": "gcj02",
                                      "HAULWATCH_JT808_REFUSE_UNKNOWN": "1"})
        assert cfg is not None
        assert (cfg.port, cfg.lift_info_id, cfg.coord_system, cfg.refuse_unknown_vehicles) == (
            7000, 0xF3, "gcj02", True)
        with pytest.raises(GatewayConfigError, match="HAULWATCH_JT808_PORT"):
            GatewayConfig.from_env({"HAULWATCH_JT808_PORT": "x"})


def test_client_reports_a_closed_connection() -> None:
    async def go(gw: Gateway) -> str:
        t = await terminal(gw, auth=False)
        await t.send_raw(b"\x7e\x01\x7e" * 3)
        try:
            await t.heartbeat()
        except TerminalReplyError as exc:
            return str(exc)
        return "answered"

    result, _, _ = run(go, max_bad_frames=2)
    assert "closed" in result



class TestFastTracks:
    """The sink's typed fast path gives the tracks reader's frame for gateway points."""

    @staticmethod
    def _plain(frame: Any) -> Any:
        out = frame.copy()
        for c in ("vehicle_id", "vehicle_key", "load"):
            out[c] = out[c].astype(object).where(out[c].notna(), None)
        return out.reset_index(drop=True)

    @given(st.lists(st.tuples(
        st.sampled_from(["浙D·A1234", "浙DA1234", "浙d a1234", "沪B00001", "浙F-12345", "·-"]),
        st.integers(0, 200),                                   # seconds after T0 (repeats)
        st.one_of(st.just(0.0), st.floats(-180, 180)), st.one_of(st.just(0.0), st.floats(-90, 90)),
        st.integers(0, 0xFFFF).map(lambda v: v / 10.0),       # WORD speed, 0.1 km/h
        st.integers(0, 0xFFFF).map(float),                    # WORD direction
        st.sampled_from(["empty", "half", "full", None]),
        st.sampled_from([None, 0, 1])), min_size=1, max_size=60))
    @settings(max_examples=60, deadline=None)
    def test_same_frame_as_the_reader(self, rows: list[tuple]) -> None:
        from haulwatch.api.gateway.sink import gateway_tracks
        from haulwatch.api.services.positions import validate_points

        points = [{"vehicle_id": v, "time": int((T0 + timedelta(seconds=s)).timestamp()),
                   "lon": x, "lat": y, "speed_kmh": sp,
                   "heading_deg": hd, "load": ld, "lift": lf}
                  for v, s, x, y, sp, hd, ld, lf in rows]
        ref, ref_rejected, _ = validate_points(points, timezone="UTC")
        fast, rejected = gateway_tracks(points)
        pd.testing.assert_frame_equal(self._plain(fast), self._plain(ref), check_dtype=False)
        assert sorted((r["index"], r["field"], r["reason"]) for r in rejected) == sorted(
            (r["index"], r["field"], r["reason"]) for r in ref_rejected)


class TestInsertNewPoints:
    """The sink's one-statement insert stores what ``Store.insert_points`` stores."""

    def test_same_rows_and_mask_as_the_store(self, tmp_path: Any) -> None:
        from haulwatch.api.gateway.sink import gateway_tracks, insert_new_points
        from haulwatch.api.services.store import Store

        def pts(seconds: range, plate: str, **kw: Any) -> list[dict[str, Any]]:
            return [{"vehicle_id": plate, "time": int(T0.timestamp()) + s, "lon": 120.0 + s / 1e4,
                     "lat": 30.0, "speed_kmh": kw.get("speed", 12.5), "heading_deg": None,
                     "load": kw.get("load"), "lift": kw.get("lift")} for s in seconds]

        batches = [pts(range(0, 600), "浙D·A1234", load="full", lift=1) + pts(range(0, 3), "沪B1"),
                   pts(range(590, 610), "浙DA1234", load=None, speed=999.0),  # 10 already stored
                   pts(range(0, 3), "沪B1")]                                 # all stored before
        a, b = Store(f"sqlite:///{tmp_path / 'a.db'}"), Store(f"sqlite:///{tmp_path / 'b.db'}")
        for batch in batches:
            tracks, _ = gateway_tracks(batch)
            np.testing.assert_array_equal(insert_new_points(b.db, tracks), a.insert_points(tracks))
        cols = ("vehicle_key, time_us, vehicle_id, lon, lat, speed_kmh, heading_deg, load, lift")
        q = f"SELECT {cols} FROM points ORDER BY vehicle_key, time_us"
        assert a.db.fetchall(q) == b.db.fetchall(q)
        assert len(a.db.fetchall(q)) == 600 + 3 + 10
        a.close()
        b.close()


def test_no_connection_is_remembered_after_it_closes() -> None:
    """Pipelined connections come and go: the server keeps no task or state of them."""
    async def go(gw: Gateway) -> tuple[int, int]:
        for i in range(5):
            t = await terminal(gw, phone=f"1370000{i:04d}", plate=f"浙D{i:05d}")
            futs = [await t.send(0x0200, loc(j)) for j in range(10)]  # 10 in flight
            assert [(await t.wait(f, 0x0200)).result for f in futs] == [0] * 10
            await t.close()
        for _ in range(200):
            if gw.metrics.open_connections == 0:
                break
            await asyncio.sleep(0.05)
        return len(gw._tasks), len(gw._conns)

    (tasks, conns), _, store = run(go)
    assert (tasks, conns) == (0, 0) and len(store.points) == 5 * 10


@given(st.lists(st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=60).map(lambda b: b"\x7e" + b + b"\x7e"),
    st.sampled_from([b"\x7e", b"\x7d", b"\x7e\x7d\x7e", _raw_frame(0x0002, b""),
                     _raw_frame(0x0200, b"\x00" * 10), _raw_frame(0x0100, b"\x01" * 40)])),
    min_size=1, max_size=12))
@settings(max_examples=25, deadline=None)
def test_any_bytes_leave_the_gateway_serving(chunks: list[bytes]) -> None:
    async def go(gw: Gateway) -> int:
        _, w = await asyncio.open_connection("127.0.0.1", gw.port)
        try:
            for c in chunks:
                w.write(c)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        w.close()
        t = await terminal(gw, phone="13999999999", plate="浙D·FRESH1")
        r = await t.report(loc(30))
        await t.close()
        return r.result

    fresh, _, store = run(go, max_bad_frames=4)
    assert fresh == 0 and ("浙D·FRESH1", int(T0.timestamp()) + 30) in store.points
