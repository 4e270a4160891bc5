"""VehicleLink against the simulated copter: connection, readiness, transfer, failures."""

from __future__ import annotations

import math
import socket
import threading
import time

import pytest
from pymavlink import mavutil

from haulwatch.drone.flight import FlightRecord, _judge_end
from haulwatch.drone.link import (
    CommandRefused,
    LinkConfig,
    LinkLost,
    VehicleLink,
    VehicleNotReady,
)
from haulwatch.drone.mission import Mission, MissionItem
from haulwatch.drone.protocol import MissionUploadError
from haulwatch.drone.sitl import SimulatedCopter

M = mavutil.mavlink
REL = M.MAV_FRAME_GLOBAL_RELATIVE_ALT
HOME = (30.70, 121.02, 4.0)
TARGET = (30.7025, 121.0215)
SPEEDUP = 30.0
# Generous vehicle-time limits: the simulator shares two busy cores with other tests.
CONFIG = LinkConfig(heartbeat_timeout_s=30.0, command_timeout_s=4.0, connect_timeout_s=60.0)


def small_mission(*, frame: int = REL) -> Mission:
    """Take off, go look at a point 300 m away, orbit once taking photos, come home."""
    items = (
        MissionItem(M.MAV_CMD_NAV_TAKEOFF, REL, alt_m=30.0),
        # the orbit entry point: 30 m south of the target
        MissionItem(
            M.MAV_CMD_NAV_WAYPOINT,
            frame,
            lat_deg=TARGET[0] - 30 / 111_195,
            lon_deg=TARGET[1],
            alt_m=40.0,
        ),
        # ArduPilot (AP_Mission) starts these two when the loiter starts
        MissionItem(M.MAV_CMD_DO_SET_ROI_LOCATION, REL, lat_deg=TARGET[0], lon_deg=TARGET[1]),
        MissionItem(M.MAV_CMD_DO_SET_CAM_TRIGG_DIST, M.MAV_FRAME_MISSION, param1=20.0),
        MissionItem(
            M.MAV_CMD_NAV_LOITER_TURNS,
            REL,
            param1=1,
            param3=30,
            lat_deg=TARGET[0],
            lon_deg=TARGET[1],
            alt_m=40.0,
        ),
        # ... and this one when RTL starts: as the orbit is complete
        MissionItem(M.MAV_CMD_DO_SET_CAM_TRIGG_DIST, M.MAV_FRAME_MISSION),
        MissionItem(M.MAV_CMD_NAV_RETURN_TO_LAUNCH, M.MAV_FRAME_MISSION),
    )
    return Mission(
        HOME[0],
        HOME[1],
        HOME[2],
        items,
        TARGET[0],
        TARGET[1],
        dock_site_id="nest-1",
        alert_id="A-1",
    )


@pytest.fixture
def make_sim():
    sims: list[SimulatedCopter] = []

    def make(**kw) -> SimulatedCopter:
        kw.setdefault("speedup", SPEEDUP)
        kw.setdefault("prearm_delay_s", 3.0)
        sim = SimulatedCopter(
            home_lat_deg=HOME[0], home_lon_deg=HOME[1], home_alt_m=HOME[2], port=0, **kw
        )
        sims.append(sim.start())
        return sim

    yield make
    for sim in sims:
        sim.stop()


def open_link(sim: SimulatedCopter, **kw) -> VehicleLink:
    kw.setdefault("config", CONFIG)
    return VehicleLink(sim.url, time_scale=sim.speedup, **kw).connect()


def dist_m(lat1, lon1, lat2, lon2) -> float:
    dy = math.radians(lat2 - lat1) * 6_371_000
    dx = math.radians(lon2 - lon1) * 6_371_000 * math.cos(math.radians(lat1))
    return math.hypot(dx, dy)


class TestConnect:
    def test_records_vehicle_ids_and_gets_streams(self, make_sim):
        sim = make_sim(sysid=7)
        link = open_link(sim)
        try:
            assert (link.target_system, link.target_component) == (7, 1)
            link._wait(
                lambda: link.position is not None and link.battery_pct is not None,
                20.0,
                "telemetry",
            )
            assert link.position[1] == pytest.approx(HOME[0], abs=1e-6)
            assert link.battery_pct == 100
            assert link.mode == "STABILIZE" and not link.armed
        finally:
            link.close()

    def test_time_scale_auto_reads_sim_speedup(self, make_sim):
        sim = make_sim(speedup=17.0)
        link = VehicleLink(sim.url, time_scale="auto", config=CONFIG).connect()
        try:
            assert link.time_scale == 17.0
            link._wait(lambda: link.position is not None, 20.0, "telemetry")
            assert link.now() - link.last_heartbeat < 5.0  # clock consistent after the change
        finally:
            link.close()

    def test_wait_ready_surfaces_prearm_reason(self, make_sim):
        sim = make_sim(prearm_delay_s=42.0)
        link = open_link(sim)
        try:
            with pytest.raises(VehicleNotReady, match="PreArm: Need Position Estimate"):
                link.wait_ready(timeout_s=5.0)
            link.wait_ready(timeout_s=120.0)
            # home 0.08 m above the ground, as a real SITL's EKF sets it
            assert link.home == pytest.approx((HOME[0], HOME[1], HOME[2] + 0.08), abs=1e-6)
        finally:
            link.close()

    def test_nothing_listening(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(LinkLost, match="cannot open"):
            VehicleLink(f"tcp:127.0.0.1:{port}", config=LinkConfig(connect_timeout_s=1.0)).connect()

    def test_bad_parameters(self):
        with pytest.raises(ValueError, match="time_scale"):
            VehicleLink("tcp:127.0.0.1:5760", time_scale=0)
        with pytest.raises(ValueError, match="'auto'"):
            VehicleLink("tcp:127.0.0.1:5760", time_scale="fast")
        with pytest.raises(ValueError, match="url"):
            VehicleLink("  ")
        with pytest.raises(ValueError, match="heartbeat_timeout_s"):
            LinkConfig(heartbeat_timeout_s=-1)
        with pytest.raises(ValueError, match="command_retries"):
            LinkConfig(command_retries=1.5)


class TestTransfer:
    @pytest.mark.parametrize(
        ("item_timeout_s", "link_retries"),
        [(0.3, True), (5.0, False)],  # we re-send first / the vehicle re-asks first (1 s)
    )
    def test_upload_recovers_a_dropped_item_and_verifies(
        self, make_sim, item_timeout_s, link_retries
    ):
        sim = make_sim(drop_mission_items={3}, speedup=5.0)  # wide wall-time margins
        config = LinkConfig(
            heartbeat_timeout_s=30.0,
            item_timeout_s=item_timeout_s,
            command_timeout_s=4.0,
            min_wall_timeout_s=0.005,
        )
        link = open_link(sim, config=config)
        mission = small_mission()
        try:
            retries = link.upload_mission(mission)
            assert (retries >= 1) is link_retries
            assert any("dropped mission item #3" in text for _, text in sim.log)
            link.verify_mission(mission)  # raises if the vehicle holds something else
            read = link.download_mission()
            assert [item.command for item in read[1:]] == [item.command for item in mission.items]
        finally:
            link.close()

    def test_unsupported_frame_reported_by_name(self, make_sim):
        sim = make_sim()
        link = open_link(sim)
        try:
            with pytest.raises(MissionUploadError, match="MAV_MISSION_UNSUPPORTED_FRAME"):
                link.upload_mission(small_mission(frame=M.MAV_FRAME_LOCAL_NED))
        finally:
            link.close()


def fly(sim: SimulatedCopter, on_progress=None, **kw) -> tuple[FlightRecord, VehicleLink]:
    link = open_link(sim, **kw)
    events: list[dict] = []

    def progress(status: dict) -> None:
        events.append(status)
        if on_progress is not None:
            on_progress(status, link)

    try:
        record = link.fly_mission(small_mission(), progress=progress, mission_id="M-1")
    finally:
        link.close()
    record.progress_events = events  # type: ignore[attr-defined]
    return record, link


class TestFly:
    def test_completed_flight_record(self, make_sim):
        sim = make_sim()
        record, _ = fly(sim)
        assert record.outcome == "completed", record.reason
        assert record.reason == ""
        # every nav item (1 takeoff, 2 waypoint, 5 orbit) reached, in this order
        nav = [s for s in record.items_reached if s in (1, 2, 5)]
        assert nav == [1, 2, 5]
        assert record.photos, "no CAMERA_FEEDBACK recorded"
        for photo in record.photos:
            assert dist_m(
                TARGET[0], TARGET[1], photo["lat_deg"], photo["lon_deg"]
            ) == pytest.approx(30.0, abs=3.0)
        last = record.track[-1]
        assert dist_m(HOME[0], HOME[1], last[1], last[2]) < 3.0 and last[3] < 0.5
        assert not sim.model.armed
        assert max(p[3] for p in record.track) == pytest.approx(40.0, abs=1.0)
        phases = [e["phase"] for e in record.progress_events]
        assert phases[0] == "ready" and phases[-1] == "completed"
        assert {"upload", "verify", "arming", "flying"} <= set(phases)
        assert record.battery_start_pct > record.battery_end_pct
        assert record.mission_id == "M-1" and record.alert_id == "A-1"
        assert FlightRecord.from_dict(record.to_dict()) == record

    def test_link_loss_mid_flight_fails(self, make_sim):
        sim = make_sim()
        cuts: list[float] = []

        def cut(status, link):
            if status["phase"] == "flying" and 2 in status["items_reached"] and not cuts:
                cuts.append(sim.sim_time_s)
                sim.cut_link()

        record, _ = fly(sim, cut)
        assert record.outcome == "failed"
        assert cuts, "the link was never cut"
        assert "link lost" in record.reason and "no heartbeat" in record.reason
        assert 5 not in record.items_reached

    def test_battery_failsafe_fails_with_reason(self, make_sim):
        sim = make_sim()

        def drain(status, link):
            if (
                status["phase"] == "flying"
                and 1 in status["items_reached"]
                and sim.model.battery_remaining_pct > 50
            ):
                sim.force_low_battery("low")

        record, _ = fly(sim, drain)
        assert record.outcome == "failed"
        assert "Battery 1 is low" in record.reason
        assert 5 not in record.items_reached
        # the vehicle flew home by itself and landed
        last = record.track[-1]
        assert dist_m(HOME[0], HOME[1], last[1], last[2]) < 3.0
        assert not sim.model.armed

    def test_abort_brings_it_home(self, make_sim):
        sim = make_sim()

        def abort(status, link):
            if status["phase"] == "flying" and 1 in status["items_reached"]:
                link.abort("operator pressed abort")

        record, _ = fly(sim, abort)
        assert record.outcome == "aborted"
        assert record.reason == "operator pressed abort"
        assert sim.model.mode == "RTL" and not sim.model.armed
        last = record.track[-1]
        assert dist_m(HOME[0], HOME[1], last[1], last[2]) < 3.0

    def test_not_ready_fails_without_flying(self, make_sim):
        sim = make_sim(prearm_delay_s=1000.0)
        record, _ = fly(sim, config=LinkConfig(heartbeat_timeout_s=30.0, ready_timeout_s=5.0))
        assert record.outcome == "failed"
        assert "PreArm: Need Position Estimate" in record.reason
        assert record.items_reached == [] and not sim.model.armed

    def test_abort_before_take_off(self, make_sim):
        sim = make_sim()
        link = open_link(sim)
        try:
            link.abort("cancelled by dispatcher")
            record = link.fly_mission(small_mission())
            assert record.outcome == "aborted"
            assert record.reason.startswith("cancelled by dispatcher")
            assert not sim.model.armed and sim.model.landed
            # the abort was consumed: the next flight on the same link flies
            again = link.fly_mission(small_mission())
            assert again.outcome == "completed", again.reason
        finally:
            link.close()

    def test_refusal_reason_from_the_vehicle(self, make_sim):
        sim = make_sim()
        no_takeoff = Mission(
            HOME[0],
            HOME[1],
            HOME[2],
            small_mission().items[1:],
            TARGET[0],
            TARGET[1],
        )
        link = open_link(sim)
        try:
            record = link.fly_mission(no_takeoff)
        finally:
            link.close()
        assert record.outcome == "failed"
        assert "MAV_RESULT_FAILED" in record.reason
        assert "Auto: Missing Takeoff Cmd" in record.reason


class FakeVehicle:
    """A raw TCP peer: a GCS heartbeat (sysid 200) and a vehicle heartbeat (sysid 3) at 20 Hz."""

    def __init__(self) -> None:
        from pymavlink.dialects.v20 import ardupilotmega as mavlink2

        self.m = mavlink2
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.received: list = []
        self.raw = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        conn, _ = self.server.accept()
        conn.settimeout(0.05)
        gcs = self.m.MAVLink(None, srcSystem=200, srcComponent=190)
        vehicle = self.m.MAVLink(None, srcSystem=3, srcComponent=1)
        parser = self.m.MAVLink(None)
        while not self.stop.is_set():
            try:
                conn.sendall(gcs.heartbeat_encode(6, 8, 0, 0, 0).pack(gcs))
                conn.sendall(vehicle.heartbeat_encode(2, 3, 81, 4, 3, 3).pack(vehicle))
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:  # the link closed the connection
                break
            if not data:
                break
            self.raw += data
            self.received += [
                m for m in parser.parse_buffer(data) or [] if m.get_type() != "BAD_DATA"
            ]
        conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.server.close()


def test_connect_ignores_gcs_heartbeats_and_speaks_mavlink2():
    fake = FakeVehicle()
    link = VehicleLink(f"tcp:127.0.0.1:{fake.port}", config=LinkConfig(connect_timeout_s=5.0))
    try:
        link.connect()
        assert (link.target_system, link.target_component) == (3, 1)
        assert link.mode == "GUIDED" and not link.armed
        deadline = time.monotonic() + 30.0  # a safety net: the loop ends at the first heartbeat
        while time.monotonic() < deadline and not any(
            m.get_type() == "HEARTBEAT" for m in fake.received
        ):
            time.sleep(0.05)
    finally:
        link.close()
        fake.close()
    kinds = [(m.get_type(), m.get_srcSystem()) for m in fake.received]
    assert ("HEARTBEAT", 255) in kinds  # our GCS heartbeat
    assert fake.raw[0] == 0xFD  # MAVLink 2 framing
    requests = [m for m in fake.received if m.get_type() == "REQUEST_DATA_STREAM"]
    assert requests and requests[0].target_system == 3
    intervals = {
        int(m.param1) for m in fake.received if m.get_type() == "COMMAND_LONG" and m.command == 511
    }
    assert {33, 1, 42, 242} <= intervals  # position, status, mission current, home


class TestSharedLink:
    """A link that also carries a gimbal, a companion computer and a second GCS."""

    def test_locks_onto_the_autopilot_component(self, make_sim):
        sim = make_sim(sysid=4, foreign_traffic=True)
        link = open_link(sim)
        try:
            # the gimbal (154, autopilot field ArduPilotMega) speaks first
            assert (link.target_system, link.target_component) == (4, 1)
            link._wait(lambda: link.position is not None, 20.0, "telemetry")
            link._drain(3.0)  # several rounds of foreign heartbeats
            assert link.mode == "STABILIZE" and not link.armed
        finally:
            link.close()

    def test_replies_to_another_gcs_are_not_ours(self, make_sim):
        # every command also gets a FAILED ack, every upload a DENIED ack and
        # every read-back a count of 0, all addressed to GCS 250/190
        sim = make_sim(foreign_traffic=True)
        record, _ = fly(sim)
        assert record.outcome == "completed", record.reason
        assert [s for s in record.items_reached if s in (1, 2, 5)] == [1, 2, 5]
        assert record.photos


class TestVehicleDifferences:
    def test_no_camera_configured_still_completes(self, make_sim):
        sim = make_sim(params={"CAM1_TYPE": 0})  # ArduPilot's default: no CAMERA_FEEDBACK
        record, _ = fly(sim)
        assert record.outcome == "completed", record.reason
        assert record.photos == []
        assert any("CAMERA_FEEDBACK" in note for note in record.notes)

    def test_camera_configured_no_note(self, make_sim):
        record, _ = fly(make_sim())
        assert record.photos
        assert not any("CAMERA_FEEDBACK" in note for note in record.notes)

    def test_arming_retried_while_position_estimate_missing(self, make_sim):
        sim = make_sim(prearm_delay_s=12.0)
        link = open_link(sim)
        try:
            link.retry_while_settling(link.arm)  # before the vehicle is ready
            assert link.armed
            said = link.recent_texts(-math.inf, prefix="PreArm")
            assert "PreArm: Need Position Estimate" in said  # it was refused first
        finally:
            link.close()

    def test_set_current_moves_the_mission_back_to_the_take_off(self, make_sim):
        sim = make_sim()
        link = open_link(sim)
        try:
            link.wait_ready()
            link.upload_mission(small_mission())
            sim.call(lambda model: model.set_current(4))  # left mid-mission
            link._wait(lambda: sim.model.mission_current == 4, 5.0, "sim state")
            assert link.set_current(1) is True
            assert sim.model.mission_current == 1
        finally:
            link.close()


class TestRefusalKinds:
    @pytest.mark.parametrize(
        ("result", "texts", "transient"),
        [
            ("MAV_RESULT_FAILED", ["PreArm: Need Position Estimate"], True),
            ("MAV_RESULT_FAILED", ["PreArm: AHRS: waiting for home"], True),
            ("MAV_RESULT_FAILED", ["PreArm: GPS 1: Bad fix"], True),
            ("MAV_RESULT_FAILED", ["Mode change to GUIDED failed: requires position"], True),
            ("MAV_RESULT_TEMPORARILY_REJECTED", [], True),
            ("MAV_RESULT_FAILED", ["Arm: AUTO mode not armable"], False),
            ("MAV_RESULT_FAILED", ["PreArm: Battery below minimum arming capacity"], False),
            # an unrelated EKF info line next to a real refusal is no excuse to retry
            ("MAV_RESULT_FAILED", ["EKF3 IMU0 is using GPS", "PreArm: Throttle too high"], False),
            ("MAV_RESULT_FAILED", [], False),
        ],
    )
    def test_transient(self, result, texts, transient):
        exc = CommandRefused("refused", result_name=result, vehicle_texts=texts)
        assert exc.transient is transient


class TestJudgeEnd:
    def judge(self, reached: list[int], max_current: int) -> FlightRecord:
        link = VehicleLink("tcp:127.0.0.1:1")
        link.home = (HOME[0], HOME[1], HOME[2])
        link.position = (100.0, HOME[0], HOME[1], 0.0)
        record = FlightRecord(items_reached=reached)
        _judge_end(link, record, [1, 2, 4], True, max_current)
        return record

    def test_missing_reached_message_covered_by_mission_current(self):
        record = self.judge([1, 4], max_current=6)  # MISSION_ITEM_REACHED 2 lost
        assert record.outcome == "completed", record.reason

    def test_item_not_passed_is_missing(self):
        record = self.judge([1], max_current=2)
        assert record.outcome == "failed"
        assert record.reason == "vehicle disarmed before reaching items [2, 4]"


def test_landed_but_armed_vehicle_is_disarmed_by_the_link(make_sim):
    sim = make_sim()

    def keep_armed_on_touchdown(model) -> None:  # as with a firmware that does not disarm
        original = model.disarm

        def disarm(*, force: bool = False, reason: str = ""):
            if reason == "landed":
                return False, "kept armed"
            return original(force=force, reason=reason)

        model.disarm = disarm

    sim.call(keep_armed_on_touchdown)
    config = LinkConfig(heartbeat_timeout_s=30.0, command_timeout_s=4.0, landed_disarm_s=5.0)
    record, _ = fly(sim, config=config)
    assert record.outcome == "completed", record.reason
    assert any("disarmed by the link" in note for note in record.notes)
    assert not sim.model.armed and sim.model.landed


def test_lost_stream_requests_are_sent_again(make_sim):
    sim = make_sim()
    # every link timeout on the simulator's own clock: a starved host slows both alike
    link = open_link(sim, clock=lambda: sim.sim_time_s)
    try:
        link._wait(lambda: link.position is not None, 20.0, "telemetry")
        # Barriers: the vehicle handles a link's messages in order and its replies come
        # back in order (TCP), so a COMMAND_ACK proves everything before it was handled.
        barrier = (M.MAV_CMD_REQUEST_MESSAGE, (M.MAVLINK_MSG_ID_AUTOPILOT_VERSION,))
        link.command(*barrier)  # every stream request of connect() has been handled
        # the vehicle forgets every requested stream (requests lost on UDP, a reboot)
        forgotten = threading.Event()

        def forget() -> None:
            for client in sim._clients:
                client.intervals.clear()
            forgotten.set()

        sim._actions.put(forget)
        assert forgotten.wait(60.0)  # wall-clock safety net only; the event decides
        # a reply the vehicle sends after forgetting: every message behind it on the
        # (ordered) TCP stream was sent after the streams stopped
        link.command(*barrier)
        link.position, link._sys_status_seen = None, False
        link._drain(3.0)
        assert link.position is None  # nothing streams any more
        link.wait_ready(timeout_s=60.0)
        assert link._sys_status_seen and link.position is not None
    finally:
        link.close()


class TestIssue13:
    """What the real ArduPilot SITL showed the flight procedure must handle (issue 13)."""

    def test_closed_connection_is_link_loss_at_once_and_quiet(self, make_sim, capfd):
        sim = make_sim()
        link = open_link(sim)
        try:
            link._wait(lambda: link.position is not None, 20.0, "telemetry")
            sim.stop()  # the autopilot process dies: its socket closes
            with pytest.raises(LinkLost, match=r"closed by the vehicle|reset by the vehicle"):
                for _ in range(10_000):  # bounded by reads, not by time
                    link.recv(0.01)
        finally:
            link.close()
        assert "EOF on TCP socket" not in capfd.readouterr().out

    def test_refuses_to_arm_a_flat_battery(self, make_sim):
        sim = make_sim()
        sim.call(lambda model: setattr(model, "energy_used_wh", 0.8 * model.battery_wh))
        record, _ = fly(sim)
        assert record.outcome == "failed"
        assert record.reason.startswith("battery 20% is below the 40% needed to arm")
        assert record.items_reached == [] and not sim.model.armed
        assert record.final_status["phase"] == "failed"

    def test_min_battery_is_configurable(self, make_sim):
        sim = make_sim()
        sim.call(lambda model: setattr(model, "energy_used_wh", 0.8 * model.battery_wh))
        link = open_link(sim)
        try:
            record = link.fly_mission(small_mission(), min_battery_pct=None)
        finally:
            link.close()
        assert not record.reason.startswith("battery")

    def test_failsafe_parameters_off_are_noted(self, make_sim):
        record, _ = fly(make_sim())  # ArduPilot's defaults: FS_GCS_ENABLE 0, FENCE_ENABLE 0
        said = [n for n in record.notes if n.startswith("failsafe: ")]
        assert any("FS_GCS_ENABLE is 0" in n for n in said)
        assert any("FENCE_ENABLE is 0" in n for n in said)
        safe = make_sim(params={"FS_GCS_ENABLE": 1, "FENCE_ENABLE": 1})
        record, _ = fly(safe)
        assert not [n for n in record.notes if n.startswith("failsafe: ")]

    def test_track_without_fixes_before_the_gps_lock_and_final_status(self, make_sim):
        record, _ = fly(make_sim())
        assert record.outcome == "completed", record.reason
        assert record.track and all(p[1] != 0 or p[2] != 0 for p in record.track)
        final = record.final_status
        assert final["phase"] == "completed" and not final["armed"]
        assert final["alt_rel_m"] < 0.5 and final["photos"] == len(record.photos)
        assert record.progress_events[-1] == final  # what the service stores last


def test_failsafe_warnings_rules():
    from haulwatch.drone.link import failsafe_warnings

    safe = {
        "FS_GCS_ENABLE": 1,
        "BATT_FS_LOW_ACT": 2,
        "BATT_FS_CRT_ACT": 1,
        "BATT_LOW_MAH": 600,
        "BATT_LOW_VOLT": 0,
        "FENCE_ENABLE": 1,
    }
    assert failsafe_warnings(safe) == []
    off = dict(safe, BATT_LOW_MAH=0)
    assert failsafe_warnings(off) == [
        "BATT_LOW_MAH and BATT_LOW_VOLT are 0: the low-battery failsafe never triggers"
    ]
    partial = {k: v for k, v in safe.items() if k != "FENCE_ENABLE"}
    assert failsafe_warnings(partial) == ["could not read FENCE_ENABLE: failsafe settings unknown"]


class TestPlanAgainstVehicle:
    def test_charge_that_cannot_cover_the_plan_is_refused(self, make_sim):
        sim = make_sim()
        sim.call(lambda model: setattr(model, "energy_used_wh", 0.5 * model.battery_wh))
        mission = small_mission()
        mission = Mission(
            **{**mission.__dict__, "meta": {"battery_used_pct": 30.0, "reserve_pct": 25.0}}
        )
        link = open_link(sim)
        try:
            record = link.fly_mission(mission)
        finally:
            link.close()
        assert record.outcome == "failed"
        assert record.reason.startswith("battery 50% cannot cover the estimated 30%")
        assert record.vehicle["battery_pct"] == 50 and not sim.model.armed

    def test_plan_faster_than_the_vehicle_is_noted(self, make_sim):
        mission = small_mission()
        mission = Mission(**{**mission.__dict__, "meta": {"cruise_speed_m_s": 12.0}})
        link = open_link(make_sim())
        try:
            record = link.fly_mission(mission)
        finally:
            link.close()
        assert record.outcome == "completed", record.reason
        assert record.vehicle["params"]["WPNAV_SPEED"] == 1000
        assert any("WPNAV_SPEED is 10 m/s" in n for n in record.notes)


def test_connection_closed_while_connecting_is_link_lost(capfd):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]

        def accept_and_close() -> None:
            conn, _ = server.accept()
            conn.close()

        threading.Thread(target=accept_and_close, daemon=True).start()
        link = VehicleLink(f"tcp:127.0.0.1:{port}", config=CONFIG)
        with pytest.raises(LinkLost, match="closed by the vehicle"):
            link.connect()
    assert link.conn is None
    assert "EOF on TCP socket" not in capfd.readouterr().out
