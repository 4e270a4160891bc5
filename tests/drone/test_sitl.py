"""The simulated copter, driven by a bare pymavlink client (no haulwatch link code)."""

from __future__ import annotations

import itertools
import math
import time

import pytest
from pymavlink import mavutil

from haulwatch.drone.sitl import SimulatedCopter, instance_port
from haulwatch.drone.sitl_vehicle import CopterModel, StoredItem

M = mavutil.mavlink
HOME = (30.70, 121.02)
REL = M.MAV_FRAME_GLOBAL_RELATIVE_ALT
# ArduCopter custom_mode numbers (ArduCopter/mode.h)
MODES = {"STABILIZE": 0, "AUTO": 3, "GUIDED": 4, "LOITER": 5, "RTL": 6, "LAND": 9}


class Gcs:
    """A minimal ground station for poking the simulator."""

    def __init__(self, sim: SimulatedCopter) -> None:
        self.sim = sim
        self.conn = mavutil.mavlink_connection(sim.url, source_system=255, source_component=190)
        self.conn.mav.heartbeat_send(M.MAV_TYPE_GCS, M.MAV_AUTOPILOT_INVALID, 0, 0, 0)
        self.seen: list = []

    def wait(self, kind: str, cond=lambda m: True, timeout_s: float = 5.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = self.conn.recv_match(blocking=True, timeout=0.1)
            if msg is None:
                continue
            self.seen.append(msg)
            if msg.get_type() == kind and cond(msg):
                return msg
        raise AssertionError(f"no {kind} within {timeout_s} s (sim t={self.sim.sim_time_s:.1f})")

    def seen_or_wait(self, kind: str, cond=lambda m: True, timeout_s: float = 5.0):
        for msg in self.seen:
            if msg.get_type() == kind and cond(msg):
                return msg
        return self.wait(kind, cond, timeout_s)

    def texts(self) -> list[str]:
        return [m.text for m in self.seen if m.get_type() == "STATUSTEXT"]

    def command(self, cmd: int, *params: float) -> int:
        p = list(params) + [0.0] * (7 - len(params))
        self.conn.mav.command_long_send(1, 1, cmd, 0, *p)
        return self.wait("COMMAND_ACK", lambda m: m.command == cmd).result

    def set_mode(self, name: str) -> int:
        return self.command(M.MAV_CMD_DO_SET_MODE, 1, MODES[name])

    def wait_sim(self, t_s: float, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.sim.sim_time_s < t_s:
            assert time.monotonic() < deadline, "simulated time does not advance"
            msg = self.conn.recv_match(blocking=True, timeout=0.05)
            if msg is not None:
                self.seen.append(msg)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def sim_factory():
    sims: list[SimulatedCopter] = []
    gcss: list[Gcs] = []

    def make(**kw) -> tuple[SimulatedCopter, Gcs]:
        kw.setdefault("speedup", 20)
        kw.setdefault("prearm_delay_s", 2.0)
        sim = SimulatedCopter(
            home_lat_deg=HOME[0], home_lon_deg=HOME[1], home_alt_m=5.0, port=0, **kw
        ).start()
        sims.append(sim)
        gcs = Gcs(sim)
        gcss.append(gcs)
        return sim, gcs

    yield make
    for gcs in gcss:
        gcs.close()
    for sim in sims:
        sim.stop()


def upload(gcs: Gcs, items: list[tuple]) -> object:
    """Upload (command, frame, p1..p4, lat, lon, alt) tuples after a home item; return the ACK."""
    full = [(M.MAV_CMD_NAV_WAYPOINT, M.MAV_FRAME_GLOBAL, 0, 0, 0, 0, *HOME, 5.0), *items]
    gcs.conn.mav.mission_count_send(1, 1, len(full), 0)
    while True:
        msg = gcs.wait("MISSION_REQUEST", timeout_s=3)
        cmd, frame, p1, p2, p3, p4, lat, lon, alt = full[msg.seq]
        gcs.conn.mav.mission_item_int_send(
            1,
            1,
            msg.seq,
            frame,
            cmd,
            0,
            1,
            p1,
            p2,
            p3,
            p4,
            round(lat * 1e7),
            round(lon * 1e7),
            alt,
            0,
        )
        if msg.seq == len(full) - 1:
            return gcs.wait("MISSION_ACK", timeout_s=3)


TAKEOFF = (M.MAV_CMD_NAV_TAKEOFF, REL, 0, 0, 0, 0, 0, 0, 20.0)


def test_instance_port_and_bad_parameters():
    assert instance_port(0) == 5760
    assert instance_port(3) == 5790
    with pytest.raises(ValueError, match="instance"):
        instance_port(-1)
    with pytest.raises(ValueError, match="speedup"):
        SimulatedCopter(home_lat_deg=30.0, home_lon_deg=120.0, speedup=0)
    with pytest.raises(ValueError, match="home_lat_deg"):
        SimulatedCopter(home_lat_deg=95.0, home_lon_deg=120.0)
    with pytest.raises(ValueError, match="unknown parameter 'NOPE'"):
        CopterModel(home_lat_deg=30.0, home_lon_deg=120.0, params={"NOPE": 1})


def test_boots_only_when_a_client_connects():
    sim = SimulatedCopter(home_lat_deg=HOME[0], home_lon_deg=HOME[1], port=0, speedup=50).start()
    try:
        time.sleep(0.2)
        assert sim.sim_time_s == 0.0
        gcs = Gcs(sim)
        gcs.wait("HEARTBEAT")
        gcs.wait_sim(2.0)
        gcs.close()
    finally:
        sim.stop()


def test_streams_only_when_requested(sim_factory):
    _sim, gcs = sim_factory(speedup=20)
    gcs.wait_sim(3.0)
    kinds = {m.get_type() for m in gcs.seen}
    assert "HEARTBEAT" in kinds
    assert not kinds & {"GLOBAL_POSITION_INT", "SYS_STATUS", "MISSION_CURRENT"}
    # one message by interval ...
    assert gcs.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, M.MAVLINK_MSG_ID_SYS_STATUS, 200_000) == 0
    gcs.wait("SYS_STATUS")
    assert not any(m.get_type() == "GLOBAL_POSITION_INT" for m in gcs.seen)
    # ... or a whole group by REQUEST_DATA_STREAM
    gcs.conn.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_POSITION, 4, 1)
    gpi = gcs.wait("GLOBAL_POSITION_INT")
    assert gpi.lat == pytest.approx(HOME[0] * 1e7, abs=2)
    assert gpi.relative_alt == 0


def test_arming_needs_position_estimate(sim_factory):
    # as a real ArduCopter SITL: prearm bit and home at ~22 s, arming refused with
    # "Arm: Need Position Estimate" until ~42 s (7 refusals of a client retrying every 2 s)
    sim, gcs = sim_factory(prearm_delay_s=42.0, speedup=100)
    gcs.command(M.MAV_CMD_SET_MESSAGE_INTERVAL, M.MAVLINK_MSG_ID_SYS_STATUS, 500_000)
    status = gcs.wait("SYS_STATUS")
    assert not status.onboard_control_sensors_health & M.MAV_SYS_STATUS_PREARM_CHECK
    assert gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
    gcs.seen_or_wait("STATUSTEXT", lambda m: m.text == "PreArm: Need Position Estimate")
    gcs.wait_sim(22.5)
    gcs.wait(
        "SYS_STATUS", lambda m: m.onboard_control_sensors_health & M.MAV_SYS_STATUS_PREARM_CHECK
    )
    assert sim.sim_time_s < 42.0
    home = gcs.seen_or_wait("HOME_POSITION")
    # home 0.08 m above the ground (5 m AMSL), as the EKF had it on a real SITL
    assert (home.latitude, home.longitude, home.altitude) == (307000000, 1210200000, 5080)
    assert gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
    gcs.seen_or_wait("STATUSTEXT", lambda m: m.text == "Arm: Need Position Estimate")
    gcs.wait_sim(42.5)
    assert gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    gcs.wait("HEARTBEAT", lambda m: m.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED)


def test_mission_upload_uses_mission_request_and_acks(sim_factory):
    _sim, gcs = sim_factory()
    wp = (
        M.MAV_CMD_NAV_WAYPOINT,
        M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT,
        0,
        0,
        0,
        0,
        30.701,
        121.021,
        30.0,
    )
    ack = upload(gcs, [TAKEOFF, wp])
    assert ack.type == M.MAV_MISSION_ACCEPTED
    gcs.seen_or_wait("STATUSTEXT", lambda m: m.text == "Flight plan received")
    assert not any(m.get_type() == "MISSION_REQUEST_INT" for m in gcs.seen)
    # read back: relative INT frame reads back as 3, home is the vehicle's
    gcs.conn.mav.mission_request_list_send(1, 1, 0)
    assert gcs.wait("MISSION_COUNT").count == 3
    gcs.conn.mav.mission_request_int_send(1, 1, 2, 0)
    item = gcs.wait("MISSION_ITEM_INT")
    assert (item.frame, item.x, item.y) == (M.MAV_FRAME_GLOBAL_RELATIVE_ALT, 307010000, 1210210000)


def test_upload_re_asks_each_second_then_cancels_after_8_s(sim_factory):
    sim, gcs = sim_factory(speedup=10)
    gcs.wait_sim(2.5)  # home set
    upload(gcs, [TAKEOFF, TAKEOFF, TAKEOFF])
    gcs.conn.mav.mission_count_send(1, 1, 2, 0)  # truncates at once
    first = gcs.wait("MISSION_REQUEST", lambda m: m.seq == 0)
    t0 = sim.sim_time_s
    again = gcs.wait("MISSION_REQUEST", lambda m: m.seq == 0)
    assert again is not first
    ack = gcs.wait("MISSION_ACK", timeout_s=5)
    elapsed = sim.sim_time_s - t0
    assert ack.type == M.MAV_MISSION_OPERATION_CANCELLED
    assert 7.0 <= elapsed <= 10.0
    repeats = [m for m in gcs.seen if m.get_type() == "MISSION_REQUEST" and m.seq == 0]
    assert 6 <= len(repeats) <= 10  # about one per simulated second
    gcs.seen_or_wait("STATUSTEXT", lambda m: m.text == "Mission upload timeout")
    assert len(sim.model.mission) == 2  # truncated by MISSION_COUNT, not restored


def test_unsupported_frame_is_refused(sim_factory):
    _sim, gcs = sim_factory()
    bad = (M.MAV_CMD_NAV_WAYPOINT, M.MAV_FRAME_LOCAL_NED, 0, 0, 0, 0, 30.701, 121.021, 30.0)
    gcs.conn.mav.mission_count_send(1, 1, 2, 0)
    gcs.wait("MISSION_REQUEST", lambda m: m.seq == 0)
    gcs.conn.mav.mission_item_int_send(
        1, 1, 0, 0, 16, 0, 1, 0, 0, 0, 0, 307000000, 1210200000, 5, 0
    )
    gcs.wait("MISSION_REQUEST", lambda m: m.seq == 1)
    cmd, frame, *_ = bad
    gcs.conn.mav.mission_item_int_send(
        1, 1, 1, frame, cmd, 0, 1, 0, 0, 0, 0, 307010000, 1210210000, 30, 0
    )
    assert gcs.wait("MISSION_ACK").type == M.MAV_MISSION_UNSUPPORTED_FRAME


def test_auto_rules_on_the_ground(sim_factory):
    _sim, gcs = sim_factory()
    gcs.wait_sim(2.5)
    wp = (M.MAV_CMD_NAV_WAYPOINT, REL, 0, 0, 0, 0, 30.701, 121.021, 30.0)
    upload(gcs, [wp])
    assert gcs.set_mode("AUTO") == M.MAV_RESULT_ACCEPTED  # disarmed: allowed
    assert gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_FAILED
    gcs.seen_or_wait("STATUSTEXT", lambda m: m.text == "Arm: AUTO mode not armable")
    assert gcs.set_mode("GUIDED") == M.MAV_RESULT_ACCEPTED
    assert gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    assert gcs.set_mode("AUTO") == M.MAV_RESULT_FAILED  # first item is not a takeoff
    gcs.seen_or_wait("STATUSTEXT", lambda m: m.text == "Auto: Missing Takeoff Cmd")


def test_guided_takeoff_land_and_auto_disarm(sim_factory):
    sim, gcs = sim_factory(speedup=30)
    gcs.wait_sim(2.5)
    gcs.conn.mav.request_data_stream_send(1, 1, M.MAV_DATA_STREAM_POSITION, 5, 1)
    assert gcs.set_mode("GUIDED") == 0
    assert gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == 0
    assert gcs.command(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 12.0) == 0
    gcs.wait("GLOBAL_POSITION_INT", lambda m: m.relative_alt > 11_500, timeout_s=10)
    assert gcs.set_mode("LAND") == 0
    gcs.wait("HEARTBEAT", lambda m: not m.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED, timeout_s=15)
    assert sim.model.alt_m == 0.0 and sim.model.landed


def test_unattended_armed_copter_disarms_itself(sim_factory):
    sim, gcs = sim_factory(speedup=30)
    gcs.wait_sim(2.5)
    gcs.set_mode("GUIDED")
    gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    armed_at = sim.sim_time_s
    gcs.wait("HEARTBEAT", lambda m: not m.base_mode & M.MAV_MODE_FLAG_SAFETY_ARMED, timeout_s=10)
    assert sim.sim_time_s - armed_at >= 9.5  # DISARM_DELAY 10 s


def test_params_list_and_set(sim_factory):
    sim, gcs = sim_factory()
    gcs.conn.mav.param_request_list_send(1, 1)
    first = gcs.wait("PARAM_VALUE")
    assert first.param_count == len(sim.model.params)
    gcs.conn.mav.param_set_send(1, 1, b"FENCE_RADIUS", 150.0, M.MAV_PARAM_TYPE_REAL32)
    gcs.wait("PARAM_VALUE", lambda m: m.param_id == "FENCE_RADIUS" and m.param_value == 150.0)
    assert sim.model.params["FENCE_RADIUS"] == 150.0
    gcs.conn.mav.param_request_read_send(1, 1, b"BATT_CAPACITY", -1)
    capacity = gcs.wait("PARAM_VALUE", lambda m: m.param_id == "BATT_CAPACITY")
    assert capacity.param_value == 3300  # ArduPilot's BATT_CAPACITY default


def test_fence_breach_triggers_rtl(sim_factory):
    _sim, gcs = sim_factory(speedup=40, params={"FENCE_ENABLE": 1, "FENCE_ALT_MAX": 15})
    gcs.wait_sim(2.5)
    gcs.set_mode("GUIDED")
    gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1)
    gcs.command(M.MAV_CMD_NAV_TAKEOFF, 0, 0, 0, 0, 0, 0, 25.0)
    gcs.wait("STATUSTEXT", lambda m: m.text.startswith("Fence Breached"), timeout_s=10)
    gcs.wait("HEARTBEAT", lambda m: m.custom_mode == MODES["RTL"])


def test_two_clients_both_served(sim_factory):
    sim, gcs = sim_factory()
    other = Gcs(sim)
    try:
        other.wait("HEARTBEAT")
        gcs.wait("HEARTBEAT")
        # a command reply goes to the asker only
        assert other.command(M.MAV_CMD_REQUEST_MESSAGE, M.MAVLINK_MSG_ID_AUTOPILOT_VERSION) == 0
        other.seen_or_wait("AUTOPILOT_VERSION")
        gcs.wait_sim(sim.sim_time_s + 2.0)
        assert not any(m.get_type() == "AUTOPILOT_VERSION" for m in gcs.seen)
        assert any(m.get_type() == "HEARTBEAT" for m in gcs.seen[-20:])
    finally:
        other.close()


def model_ready(**kw) -> CopterModel:
    model = CopterModel(
        home_lat_deg=HOME[0], home_lon_deg=HOME[1], home_alt_m=5.0, prearm_delay_s=1.0, **kw
    )
    model.step(1.5)
    return model


def item(
    cmd: int, frame: int = REL, p1=0.0, p2=0.0, p3=0.0, p4=0.0, lat=0.0, lon=0.0, alt=0.0, x=None
) -> StoredItem:
    """A stored command; ``x`` gives a raw param5 for non-positional commands."""
    return StoredItem(
        cmd, frame, p1, p2, p3, p4, round(lat * 1e7) if x is None else x, round(lon * 1e7), alt
    )


def run(model: CopterModel, seconds: float, until=None) -> None:
    """Step ``model``; what its one MISSION_ITEM_REACHED slot holds after each step goes
    to ``model.reached_log`` (what the server would send)."""
    log = model.__dict__.setdefault("reached_log", [])
    for _ in range(int(seconds / 0.05)):
        model.step(0.05)
        if model.reached_slot is not None:
            log.append(model.reached_slot)
            model.reached_slot = None
        if until is not None and until(model):
            return


def mission_texts(model: CopterModel) -> list[str]:
    return [e[2] for e in model.events if e[0] == "text" and e[2].startswith("Mission: ")]


class TestCopterModel:
    def test_do_commands_run_when_the_next_nav_item_starts(self):
        # AP_Mission::advance_current_nav_cmd: the do commands between two nav commands
        # start when the second one starts, i.e. once the first one has completed
        model = model_ready()
        target = (30.702, 121.02)
        model.mission += [
            item(M.MAV_CMD_NAV_TAKEOFF, alt=20),
            item(M.MAV_CMD_NAV_WAYPOINT, lat=target[0], lon=target[1], alt=20),
            item(M.MAV_CMD_DO_DIGICAM_CONTROL, M.MAV_FRAME_MISSION, x=1),  # x = 1: shoot
            item(M.MAV_CMD_NAV_LAND, M.MAV_FRAME_MISSION),
        ]
        model.set_mode("GUIDED")
        model.arm()
        model.set_mode("AUTO")
        model.mission_start()
        run(model, 300, until=lambda m: not m.armed)
        photos = [e[1] for e in model.events if e[0] == "photo"]
        assert len(photos) == 1
        # the photo was taken at the waypoint (when NAV_LAND started), not on the way to it
        assert photos[0]["lat"] == pytest.approx(target[0], abs=2e-5)
        assert photos[0]["alt_rel"] >= 19.0
        assert model.reached_log == [1, 2, 4]  # DIGICAM_CONTROL is verified silently (AP_Mission)
        assert mission_texts(model) == [
            "Mission: 1 Takeoff",
            "Mission: 2 WP",
            "Mission: 3 DigiCamCtrl",
            "Mission: 4 Land",
        ]
        assert not model.armed and model.landed
        lat, _ = model.lat_lon
        assert lat == pytest.approx(target[0], abs=2e-5)  # landed where it was (NAV_LAND 0,0)

    def test_do_commands_start_one_per_update_and_stop_at_the_next_nav(self):
        model = model_ready()
        model.mission += [
            item(M.MAV_CMD_NAV_TAKEOFF, alt=10),
            item(M.MAV_CMD_NAV_WAYPOINT, lat=30.7005, lon=121.02, alt=10),
            item(M.MAV_CMD_DO_SET_ROI_LOCATION, lat=30.701, lon=121.021),
            item(M.MAV_CMD_DO_SET_CAM_TRIGG_DIST, M.MAV_FRAME_MISSION, p1=5.0),
            item(M.MAV_CMD_NAV_WAYPOINT, lat=30.701, lon=121.02, alt=10),
            item(M.MAV_CMD_DO_SET_CAM_TRIGG_DIST, M.MAV_FRAME_MISSION, p1=0.0),
            item(M.MAV_CMD_NAV_LAND, M.MAV_FRAME_MISSION),
        ]
        model.set_mode("GUIDED")
        model.arm()
        model.set_mode("AUTO")
        model.mission_start()
        run(model, 100, until=lambda m: m.mission_current == 2)
        assert model._roi is None and model._trigg_dist_m == 0  # nothing of 3/4 while 2 flies
        run(model, 100, until=lambda m: m.mission_current == 5)
        # ROI started with nav 5 (same update); the trigger distance one update later
        assert model._roi is not None and model._trigg_dist_m == 0
        run(model, 0.05)
        assert model._trigg_dist_m == 5.0
        run(model, 100, until=lambda m: m.mission_current == 7)
        run(model, 0.1)
        assert model._trigg_dist_m == 0.0
        texts = mission_texts(model)
        assert texts.index("Mission: 3 SetROI") < texts.index("Mission: 5 WP")
        assert texts.index("Mission: 5 WP") < texts.index("Mission: 4 SetCamTrigDst")

    def test_one_mission_item_reached_slot(self):
        # GCS_MAVLINK keeps one mission_item_reached_index: a do command the vehicle
        # verifies in the same update as a nav command overwrites it (1 and 3 lost)
        model = model_ready()
        model.mission += [
            item(M.MAV_CMD_NAV_TAKEOFF, alt=10),
            item(M.MAV_CMD_DO_CHANGE_SPEED, M.MAV_FRAME_MISSION, p1=1, p2=5),
            item(M.MAV_CMD_NAV_WAYPOINT, lat=30.7005, lon=121.02, alt=10),
            item(M.MAV_CMD_DO_SET_ROI_LOCATION, lat=30.701, lon=121.021),
            item(M.MAV_CMD_NAV_LAND, M.MAV_FRAME_MISSION),
        ]
        model.set_mode("GUIDED")
        model.arm()
        model.set_mode("AUTO")
        model.mission_start()
        run(model, 300, until=lambda m: not m.armed)
        assert model.reached_log == [2, 4, 5]

    def test_loiter_turns_orbit_radius_and_direction(self):
        model = model_ready()
        center = (30.703, 121.023)
        model.mission += [
            item(M.MAV_CMD_NAV_TAKEOFF, alt=30),
            # before the loiter: starts when the loiter starts (AP_Mission)
            item(M.MAV_CMD_IMAGE_START_CAPTURE, M.MAV_FRAME_MISSION, p2=5.0, p3=0),
            item(M.MAV_CMD_NAV_LOITER_TURNS, p1=2, p3=-60, lat=center[0], lon=center[1], alt=30),
            item(M.MAV_CMD_NAV_WAYPOINT, lat=center[0], lon=center[1], alt=30),
        ]
        model.set_mode("GUIDED")
        model.arm()
        model.set_mode("AUTO")
        model.mission_start()
        run(model, 100, until=lambda m: m._nav is not None and m._nav.get("phase") == "orbit")
        cx, cy = model.to_local(*center)
        photos_before = model.photo_count  # capture started with the loiter (its approach)
        assert photos_before >= 1
        angles = []
        for _ in range(40):
            run(model, 1.0)
            dx, dy = model.east_m - cx, model.north_m - cy
            assert math.hypot(dx, dy) == pytest.approx(60.0, abs=0.5)
            angles.append(math.atan2(dy, dx))
        steps = [(b - a + math.pi) % (2 * math.pi) - math.pi for a, b in itertools.pairwise(angles)]
        assert all(s > 0 for s in steps)  # negative radius: counter-clockwise
        speed = math.hypot(*model.vel[:2])
        # AC_Circle: min(WPNAV_SPEED 10 m/s, sqrt(0.5 * WPNAV_ACCEL 2.5 m/s2 * 60 m) = 8.66)
        assert speed == pytest.approx(math.sqrt(0.5 * 2.5 * 60.0), abs=0.05)
        assert 7 <= model.photo_count - photos_before <= 9  # every 5 s over 40 s

    def test_critical_battery_lands(self):
        model = model_ready()
        model.set_mode("GUIDED")
        model.arm()
        model.takeoff(30.0)
        run(model, 30, until=lambda m: m.alt_m > 29)
        model.force_low_battery("critical")
        model.step(0.05)
        assert model.mode == "LAND"
        texts = [e[2] for e in model.events if e[0] == "text"]
        assert any(t.startswith("Battery 1 is critical") for t in texts)
        run(model, 120, until=lambda m: not m.armed)
        assert model.landed and not model.armed

    def test_climb_and_descent_rates(self):
        model = model_ready()
        model.set_mode("GUIDED")
        model.arm()
        model.takeoff(50.0)
        run(model, 10.0)
        assert model.alt_m == pytest.approx(25.0, abs=0.2)  # WPNAV_SPEED_UP 2.5 m/s
        run(model, 20.0)
        model.set_mode("LAND")
        run(model, 10.0)
        assert model.alt_m == pytest.approx(
            50.0 - 15.0, abs=0.3
        )  # WPNAV_SPEED_DN 1.5 m/s above 10 m

    def test_energy_grows_with_speed(self):
        slow, fast = model_ready(), model_ready()
        for model, speed in ((slow, 2.0), (fast, 12.0)):
            model.params["WPNAV_SPEED"] = speed * 100
            model.set_mode("GUIDED")
            model.arm()
            model.takeoff(20.0)
            run(model, 10.0)
            model.guided_goto(30.8, 121.02, 20.0)
            before = model.energy_used_wh
            run(model, 60.0)
            model.used = model.energy_used_wh - before
        assert fast.used > slow.used > 0
        assert fast.battery_remaining_pct < 100.0


def read_item(gcs: Gcs, seq: int):
    gcs.conn.mav.mission_request_int_send(1, 1, seq, 0)
    return gcs.wait("MISSION_ITEM_INT", lambda m: m.seq == seq)


def test_items_read_back_as_ap_mission_stores_them(sim_factory):
    _sim, gcs = sim_factory()
    orbit = (M.MAV_CMD_NAV_LOITER_TURNS, REL, 2.7, 0, -307.4, 0, 30.701, 121.021, 30.0)
    hold = (M.MAV_CMD_NAV_WAYPOINT, REL, 3.9, 5.0, 0, 45.0, 30.701, 121.021, 30.0)
    trigger = (M.MAV_CMD_DO_SET_CAM_TRIGG_DIST, M.MAV_FRAME_MISSION, 12.5, 0, 1, 0, 0, 0, 0)
    assert upload(gcs, [TAKEOFF, orbit, hold, trigger]).type == M.MAV_MISSION_ACCEPTED
    item = read_item(gcs, 2)  # 2 whole turns; 307 m -> 30 tens of metres, counter-clockwise
    assert (item.param1, item.param3) == (2.0, -300.0)
    item = read_item(gcs, 3)  # Copter keeps only whole hold seconds
    assert (item.param1, item.param2, item.param4) == (3.0, 0.0, 0.0)
    item = read_item(gcs, 4)
    assert (item.param1, item.param3) == (12.5, 1.0)


def test_mission_start_and_set_mode_refusals(sim_factory):
    sim, gcs = sim_factory()
    gcs.wait_sim(2.5)
    upload(gcs, [TAKEOFF])
    # base mode without MAV_MODE_FLAG_CUSTOM_MODE_ENABLED: DENIED (_set_mode_common)
    assert gcs.command(M.MAV_CMD_DO_SET_MODE, 0, MODES["GUIDED"]) == M.MAV_RESULT_DENIED
    assert gcs.set_mode("GUIDED") == M.MAV_RESULT_ACCEPTED
    assert gcs.command(M.MAV_CMD_COMPONENT_ARM_DISARM, 1) == M.MAV_RESULT_ACCEPTED
    # first/last item not supported by Copter: DENIED, nothing started
    assert gcs.command(M.MAV_CMD_MISSION_START, 1, 1) == M.MAV_RESULT_DENIED
    assert sim.model.mode == "GUIDED" and sim.model.landed
    assert gcs.command(M.MAV_CMD_MISSION_START, 0, 0) == M.MAV_RESULT_ACCEPTED
    assert sim.model.mode == "AUTO"


def test_no_camera_feedback_without_a_camera(sim_factory):
    sim, gcs = sim_factory(params={"CAM1_TYPE": 0})
    gcs.wait_sim(2.5)
    assert gcs.command(M.MAV_CMD_DO_DIGICAM_CONTROL, 0, 0, 0, 0, 1) == M.MAV_RESULT_ACCEPTED
    gcs.wait_sim(sim.sim_time_s + 2.0)
    assert not any(m.get_type() == "CAMERA_FEEDBACK" for m in gcs.seen)
    assert sim.model.photo_count == 0


def test_commands_for_another_component_are_not_executed(sim_factory):
    sim, gcs = sim_factory()
    gcs.wait_sim(2.5)
    # addressed to the gimbal (component 154) of this vehicle: not the autopilot's
    gcs.conn.mav.command_long_send(
        1, 154, M.MAV_CMD_DO_SET_MODE, 0, 1, MODES["GUIDED"], 0, 0, 0, 0, 0
    )
    assert gcs.set_mode("LOITER") == M.MAV_RESULT_ACCEPTED
    acks = [m for m in gcs.seen if m.get_type() == "COMMAND_ACK"]
    assert len(acks) == 1 and sim.model.mode == "LOITER"


def test_foreign_traffic_is_addressed_elsewhere(sim_factory):
    _sim, gcs = sim_factory(foreign_traffic=True)
    gcs.wait_sim(2.5)
    assert gcs.set_mode("GUIDED") == M.MAV_RESULT_FAILED  # the first ack is for GCS 250 ...
    ours = gcs.wait("COMMAND_ACK", lambda m: m.target_system == 255)
    assert ours.result == M.MAV_RESULT_ACCEPTED  # ... then ours
    foreign = next(m for m in gcs.seen if m.get_type() == "COMMAND_ACK")
    assert (foreign.target_system, foreign.target_component) == (250, 190)
    beats = {
        (m.get_srcSystem(), m.get_srcComponent(), m.type)
        for m in gcs.seen
        if m.get_type() == "HEARTBEAT"
    }
    assert {(1, 154, M.MAV_TYPE_GIMBAL), (1, 191, M.MAV_TYPE_ONBOARD_CONTROLLER)} <= beats
    assert (250, 190, M.MAV_TYPE_GCS) in beats and (1, 1, M.MAV_TYPE_QUADROTOR) in beats
