"""A planned mission (drone.plan) flown on the simulator end to end, and the flight record."""

from __future__ import annotations

import json
import math

import pytest
from pyproj import Geod

from haulwatch.drone.flight import FlightRecord
from haulwatch.drone.link import LinkConfig, VehicleLink
from haulwatch.drone.mission import NAV_COMMANDS
from haulwatch.drone.plan import Dock, PlanConfig, plan_mission
from haulwatch.drone.sitl import SimulatedCopter

GEOD = Geod(ellps="WGS84")
DOCK = Dock("nest-1", 30.700, 121.020, alt_m=4.0)
# a demo-like alert: a suspected dumping stop ~1.2 km north-east of the dock
ALERT = {"alert_id": "dump-0001", "lat": 30.7075, "lon": 121.0290, "kind": "illegal_dumping"}


def dist_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


@pytest.fixture(scope="module")
def flown(tmp_path_factory):
    config = PlanConfig(
        orbit_radius_m=40.0, orbit_turns=1, photo_spacing_m=20.0, min_sun_elevation_deg=None
    )
    mission = plan_mission(ALERT, DOCK, config=config)
    speedup = 60.0
    sim = SimulatedCopter(
        home_lat_deg=DOCK.lat_deg,
        home_lon_deg=DOCK.lon_deg,
        home_alt_m=DOCK.alt_m,
        port=0,
        speedup=speedup,
        prearm_delay_s=42.0,
    ).start()
    try:
        config = LinkConfig(heartbeat_timeout_s=60.0, command_timeout_s=6.0)
        tlog = tmp_path_factory.mktemp("flight") / "mission-1.tlog"
        with VehicleLink(sim.url, time_scale=speedup, config=config, tlog_path=tlog) as link:
            record = link.fly_mission(mission, mission_id="mission-1")
        record.tlog = tlog  # type: ignore[attr-defined]
        yield mission, record, sim
    finally:
        sim.stop()


def test_flight_completes(flown):
    _, record, sim = flown
    assert record.outcome == "completed", record.reason
    assert not sim.model.armed and sim.model.landed


def test_nav_items_reached_in_order(flown):
    mission, record, _ = flown
    nav_seqs = [
        seq for seq, item in enumerate(mission.items, start=1) if item.command in NAV_COMMANDS
    ]
    reached_nav = [seq for seq in record.items_reached if seq in nav_seqs]
    assert reached_nav == nav_seqs


def test_photos_on_the_orbit_around_the_target(flown):
    mission, record, _ = flown
    radius = mission.meta["orbit_radius_m"]
    assert len(record.photos) >= 8  # 2*pi*40 m / 20 m ~ 12
    for photo in record.photos:
        d = dist_m(ALERT["lat"], ALERT["lon"], photo["lat_deg"], photo["lon_deg"])
        assert abs(d - radius) < 5.0, (
            f"photo {photo['index']} taken {d:.1f} m from the target: ArduPilot runs the DO items "
            "after NAV_LOITER_TURNS as soon as the loiter starts, i.e. during its flight to the "
            "circle edge; the plan needs a NAV_WAYPOINT at the orbit entry before the loiter"
        )
    assert [p["index"] for p in record.photos] == sorted(p["index"] for p in record.photos)


def test_photo_times_are_the_vehicles_unix_time(flown):
    import datetime as dt

    _, record, sim = flown
    boot, now = sim._unix0, sim._unix0 + sim.sim_time_s  # the vehicle's (GPS) clock
    for photo in record.photos:
        when = dt.datetime.fromisoformat(photo["time_utc"].replace("Z", "+00:00")).timestamp()
        assert boot < when < now
        assert 0 <= photo["yaw_deg"] < 360 and photo["t_s"] > 0


def test_photos_cover_the_whole_orbit(flown):
    mission, record, _ = flown
    # one turn of 2*pi*40 m at one photo per 20 m: the camera ran for the whole orbit
    expected = 2 * math.pi * mission.meta["orbit_radius_m"] / 20.0
    assert len(record.photos) >= math.floor(expected)


def test_landed_back_at_the_dock(flown):
    _, record, _ = flown
    _t, lat, lon, alt = record.track[-1]
    assert dist_m(DOCK.lat_deg, DOCK.lon_deg, lat, lon) < 3.0
    assert alt < 0.5
    # home 0.08 m above the dock, as a real SITL's EKF sets it
    assert record.home == pytest.approx([DOCK.lat_deg, DOCK.lon_deg, DOCK.alt_m + 0.08], abs=1e-6)
    # the track went out to the target and back
    farthest = max(dist_m(DOCK.lat_deg, DOCK.lon_deg, p[1], p[2]) for p in record.track)
    assert farthest > dist_m(DOCK.lat_deg, DOCK.lon_deg, ALERT["lat"], ALERT["lon"])


def test_timings_and_battery(flown):
    mission, record, _ = flown
    # prearm-healthy at ~22 s, arming refused until the 42 s position estimate
    assert record.timings_s["ready"] >= 20.0
    assert (
        record.timings_s["ready"]
        + record.timings_s["upload"]
        + record.timings_s["verify"]
        + record.timings_s["arming"]
        >= 40.0
    )
    flight_s = record.timings_s["flying"]
    assert flight_s == pytest.approx(mission.meta["duration_s"], rel=0.35)
    assert 0 < record.battery_end_pct < record.battery_start_pct == 100


def test_flight_log_is_a_readable_tlog(flown):
    from pymavlink import mavutil

    _, record, _ = flown
    log = mavutil.mavlink_connection(str(record.tlog))
    kinds: dict[str, int] = {}
    while (msg := log.recv_match()) is not None:
        kinds[msg.get_type()] = kinds.get(msg.get_type(), 0) + 1
    assert kinds["CAMERA_FEEDBACK"] == len(record.photos)
    assert kinds["GLOBAL_POSITION_INT"] >= len(record.track)
    assert kinds["HEARTBEAT"] > 10 and kinds["MISSION_ACK"] >= 1


def test_evidence_for_the_alert(flown):
    from haulwatch.drone.evidence import flight_evidence

    _, record, _ = flown
    ev = flight_evidence(record.to_dict())
    assert ev["alert_id"] == "dump-0001" and ev["outcome"] == "completed"
    line = ev["track"]["geometry"]
    assert line["type"] == "LineString" and len(line["coordinates"]) == len(record.track)
    lon, lat, alt = line["coordinates"][0]
    assert (lat, lon) == pytest.approx((DOCK.lat_deg, DOCK.lon_deg), abs=1e-4) and alt < 1
    photos = ev["photos"]["features"]
    assert len(photos) == len(record.photos)
    first = photos[0]
    assert first["geometry"]["coordinates"] == [
        record.photos[0]["lon_deg"],
        record.photos[0]["lat_deg"],
    ]
    assert (
        first["properties"]["time_utc"].endswith("Z") and first["properties"]["yaw_deg"] is not None
    )
    assert ev["history"]["action"] == "inspected_by_drone"
    assert ev["history"]["text"].startswith("无人机巡查已完成")
    assert f"{len(record.photos)} 张照片" in ev["history"]["text"]
    assert flight_evidence(record, lang="en")["history"]["text"].startswith(
        "Inspected by drone, completed"
    )
    json.dumps(ev, ensure_ascii=False, allow_nan=False)


def test_record_is_json(flown, tmp_path):
    _, record, _ = flown
    path = record.write(tmp_path / "flight.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["outcome"] == "completed" and data["alert_id"] == "dump-0001"
    assert FlightRecord.from_dict(data) == record


class TestFlightRecord:
    def test_first_outcome_wins(self):
        record = FlightRecord()
        record.finish("failed", "link lost")
        record.finish("completed")
        assert (record.outcome, record.reason) == ("failed", "link lost")
        assert record.ended_at.endswith("Z")

    def test_bad_outcome(self):
        with pytest.raises(ValueError, match="outcome must be one of"):
            FlightRecord().finish("done")
        with pytest.raises(ValueError, match="outcome must be one of"):
            FlightRecord.from_dict({"outcome": "flying"})
