"""The simulator shows what a real ArduCopter SITL did (issue 13), one test per behaviour.

Observed on ArduCopter SITL (master of 2025-07, ``--model +``, default parameters):
~17 boot texts; prearm-healthy at ~22 s but arming refused until ~41 s; GPS fixes at
lat = lon = 0 before the lock; home 0.08 m above the ground; "Mission: N <type>";
"starting circle i/2" up to "3/2"; 12 m/s asked, 10 flown (WPNAV_SPEED); RTL stays in
AUTO; "SIM Hit ground" then "Disarming motors" 2 s later; BATT_CAPACITY 3300 mAh; a
second flight starts from the charge the first one left; CAMERA_FEEDBACK on Unix time.
"""

from __future__ import annotations

import math

import pytest
from pymavlink import mavutil

from haulwatch.drone.sitl import SimulatedCopter
from haulwatch.drone.sitl_vehicle import CopterModel, StoredItem

M = mavutil.mavlink
REL = M.MAV_FRAME_GLOBAL_RELATIVE_ALT
HOME = (30.70, 121.02)


def texts(model: CopterModel) -> list[str]:
    return [e[2] for e in model.events if e[0] == "text"]


def run(model: CopterModel, seconds: float, until=None) -> None:
    for _ in range(round(seconds / 0.05)):
        model.step(0.05)
        if until is not None and until(model):
            return


def wp(cmd: int, *, p1=0.0, p2=0.0, p3=0.0, lat=0.0, lon=0.0, alt=0.0, frame=REL) -> StoredItem:
    return StoredItem(cmd, frame, p1, p2, p3, 0.0, round(lat * 1e7), round(lon * 1e7), alt)


def flying_model(items: list[StoredItem], **kw) -> CopterModel:
    model = CopterModel(home_lat_deg=HOME[0], home_lon_deg=HOME[1], prearm_delay_s=1.0, **kw)
    model.step(1.5)
    model.mission += items
    model.set_mode("GUIDED")
    assert model.arm()[0]
    model.set_mode("AUTO")
    model.mission_start()
    return model


def test_boot_says_17_texts_by_the_position_estimate():
    model = CopterModel(home_lat_deg=HOME[0], home_lon_deg=HOME[1], home_alt_m=0.0)
    run(model, 43.0)
    boot = [t for t in texts(model) if not t.startswith("PreArm")]
    assert len(boot) == 17
    assert boot[0].startswith("ArduCopter V")
    assert boot[-2:] == ["EKF3 IMU0 is using GPS", "EKF3 IMU1 is using GPS"]


def test_prearm_healthy_at_22_s_but_arming_refused_until_the_estimate():
    model = CopterModel(home_lat_deg=HOME[0], home_lon_deg=HOME[1])  # 42 s estimate
    run(model, 21.0)
    assert not model.prearm_healthy and not model.home_set
    assert model.arm() == (False, "PreArm: Need Position Estimate")
    run(model, 2.0)  # 23 s
    assert model.prearm_healthy and model.home_set
    assert model.set_mode("GUIDED")[0]  # a position for GUIDED already
    assert model.arm() == (False, "Arm: Need Position Estimate")
    run(model, 19.5)  # 42.5 s
    assert model.arm() == (True, "")


def test_position_is_0_0_before_the_gps_lock():
    sim = SimulatedCopter(home_lat_deg=HOME[0], home_lon_deg=HOME[1], port=0)  # not started
    sim.model.step(5.0)  # lock at 8/42 of the 42 s estimate
    early = sim._message(M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT)
    assert (early.lat, early.lon) == (0, 0)
    sim.model.step(4.0)
    late = sim._message(M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT)
    assert (late.lat, late.lon) == (round(HOME[0] * 1e7), round(HOME[1] * 1e7))


def test_home_is_8_cm_above_the_ground():
    model = CopterModel(home_lat_deg=HOME[0], home_lon_deg=HOME[1], home_alt_m=4.0)
    run(model, 23.0)
    assert model.home[2] == pytest.approx(4.08)


def test_speed_asked_above_wpnav_speed_is_flown_at_wpnav_speed():
    far = (HOME[0] + 0.01, HOME[1])
    model = flying_model(
        [
            wp(M.MAV_CMD_NAV_TAKEOFF, alt=20),
            wp(M.MAV_CMD_DO_CHANGE_SPEED, p1=1, p2=12, frame=M.MAV_FRAME_MISSION),
            wp(M.MAV_CMD_NAV_WAYPOINT, lat=far[0], lon=far[1], alt=20),
        ]
    )
    run(model, 60.0, until=lambda m: m.mission_current == 3 and m.alt_m > 19.5)
    run(model, 20.0)
    assert math.hypot(*model.vel[:2]) == pytest.approx(model.params["WPNAV_SPEED"] / 100.0)
    assert model.params["WPNAV_SPEED"] == 1000  # ArduCopter's default: 10 m/s


def test_orbit_says_starting_circle_per_turn():
    centre = (HOME[0] + 0.001, HOME[1])
    model = flying_model(
        [
            wp(M.MAV_CMD_NAV_TAKEOFF, alt=20),
            wp(M.MAV_CMD_NAV_LOITER_TURNS, p1=2, p3=30, lat=centre[0], lon=centre[1], alt=20),
            wp(M.MAV_CMD_NAV_RETURN_TO_LAUNCH, frame=M.MAV_FRAME_MISSION),
        ]
    )
    run(model, 400.0, until=lambda m: m.mission_current == 3)
    said = [t for t in texts(model) if t.startswith("starting circle")]
    assert said == ["starting circle 1/2", "starting circle 2/2", "starting circle 3/2"]
    assert "Mission: 2 LoitTurns" in texts(model)


def test_mission_rtl_stays_in_auto_and_disarms_2_s_after_hitting_ground():
    model = flying_model(
        [
            wp(M.MAV_CMD_NAV_TAKEOFF, alt=15),
            wp(M.MAV_CMD_NAV_RETURN_TO_LAUNCH, frame=M.MAV_FRAME_MISSION),
        ]
    )
    run(model, 30.0, until=lambda m: m.mission_current == 2)
    modes = set()
    run(model, 200.0, until=lambda m: modes.add(m.mode) or m.landed)
    assert modes == {"AUTO"}  # the mission's RTL is flown in AUTO, not by switching to RTL
    assert texts(model)[-1].startswith("SIM Hit ground")
    touchdown = model.t_s
    run(model, 1.9)
    assert model.armed and model.mode == "AUTO"
    run(model, 0.2, until=lambda m: not m.armed)
    assert not model.armed
    assert model.t_s - touchdown == pytest.approx(2.0, abs=0.06)
    assert texts(model)[-1] == "Disarming motors"


def test_battery_is_3300_mah_and_a_second_flight_starts_from_what_is_left():
    model = flying_model(
        [
            wp(M.MAV_CMD_NAV_TAKEOFF, alt=30),
            wp(M.MAV_CMD_NAV_LOITER_TURNS, p1=3, p3=40, lat=HOME[0] + 0.002, lon=HOME[1], alt=30),
            wp(M.MAV_CMD_NAV_RETURN_TO_LAUNCH, frame=M.MAV_FRAME_MISSION),
        ]
    )
    assert model.params["BATT_CAPACITY"] == 3300
    run(model, 900.0, until=lambda m: not m.armed)
    left = model.battery_remaining_pct
    assert 0 < left < 90
    # a second flight: nothing recharged the pack
    model.set_mode("GUIDED")
    assert model.arm()[0]
    assert model.battery_remaining_pct == pytest.approx(left)
    assert model.remaining_mah == pytest.approx(3300 * left / 100, rel=1e-6)


def test_camera_feedback_time_is_unix_time():
    sim = SimulatedCopter(home_lat_deg=HOME[0], home_lon_deg=HOME[1], port=0)  # not started
    sim._unix0 = 1_750_000_000.0  # wall clock when the vehicle booted
    sim.model.step(12.5)
    assert sim._unix_us() == round((1_750_000_000.0 + 12.5) * 1e6)
    sent = []
    sim._broadcast = sent.append  # type: ignore[method-assign]
    sim.model.params["CAM1_TYPE"] = 1
    sim.model.take_photo()
    sim._drain_events()
    (feedback,) = [m for m in sent if m.get_type() == "CAMERA_FEEDBACK"]
    assert feedback.time_usec == sim._unix_us()
