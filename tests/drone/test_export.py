"""Tests for haulwatch.drone.export: QGroundControl .plan and QGC WPL 110 .waypoints."""

from __future__ import annotations

import json

import pytest
from pymavlink import mavutil, mavwp
from shapely.geometry import box

from haulwatch.drone.export import (
    ExportError,
    read_qgc_plan,
    read_waypoints,
    to_qgc_plan,
    to_waypoints,
    write_qgc_plan,
    write_waypoints,
)
from haulwatch.drone.mission import Mission, MissionItem
from haulwatch.drone.plan import Dock, PlanConfig, plan_mission

MAV = mavutil.mavlink
ZONE = box(121.022, 30.702, 121.028, 30.708)


@pytest.fixture(scope="module")
def mission() -> Mission:
    # a detour around ZONE gives waypoints with long decimal coordinates
    return plan_mission(
        {"alert_id": "A-7", "lat": 30.71, "lon": 121.03},
        Dock("N1", 30.70, 121.02, alt_m=12.3),
        no_fly=[ZONE],
        config=PlanConfig(cruise_speed_m_s=10, min_sun_elevation_deg=None),
    )


def _odd_mission() -> Mission:
    """Values that stress number formatting: tiny, negative, exponent-prone."""
    items = (
        MissionItem(MAV.MAV_CMD_NAV_TAKEOFF, 3, lat_deg=-0.00000012, lon_deg=-179.9999999, alt_m=5),
        MissionItem(MAV.MAV_CMD_NAV_WAYPOINT, 3, 1e-9, 0.5, -2.25, 0, 1e-7, 1e-5, 0.001),
        MissionItem(MAV.MAV_CMD_DO_SET_ROI_NONE, 2, autocontinue=False),
    )
    return Mission(-0.0000001, -179.9999999, -3.5, items, 0.0, 0.0)


class TestWaypoints:
    def test_format(self, mission):
        lines = to_waypoints(mission).splitlines()
        assert lines[0] == "QGC WPL 110"
        assert len(lines) == 1 + mission.count
        for seq, line in enumerate(lines[1:]):
            fields = line.split("\t")
            assert len(fields) == 12
            assert int(fields[0]) == seq
        home = lines[1].split("\t")
        assert home[1] == "1" and home[2] == str(MAV.MAV_FRAME_GLOBAL)
        assert float(home[8]) == 30.70 and float(home[9]) == 121.02 and float(home[10]) == 12.3
        assert all(line.split("\t")[1] == "0" for line in lines[2:])
        assert "e" not in to_waypoints(_odd_mission()).lower().replace("qgc wpl", "")

    @pytest.mark.parametrize("build", ["planned", "odd"])
    def test_pymavlink_loads_same_items(self, mission, tmp_path, build):
        m = mission if build == "planned" else _odd_mission()
        path = write_waypoints(m, tmp_path / "m.waypoints")
        loader = mavwp.MAVWPLoader()
        assert loader.load(str(path)) == m.count
        for seq, want in enumerate(m.wire_items()):
            got = loader.wp(seq)
            assert got.seq == seq
            assert got.command == want.command
            assert got.frame == want.frame
            assert got.autocontinue == int(want.autocontinue)
            assert got.x == pytest.approx(want.lat_deg, abs=1e-7)
            assert got.y == pytest.approx(want.lon_deg, abs=1e-7)
            assert got.z == pytest.approx(want.alt_m, abs=1e-6)
            params = (got.param1, got.param2, got.param3, got.param4)
            assert params == pytest.approx(want.params, abs=1e-9)

    def test_round_trip(self, mission, tmp_path):
        back = read_waypoints(write_waypoints(mission, tmp_path / "m.waypoints"))
        assert back.items == mission.items
        assert (back.home_lat_deg, back.home_lon_deg, back.home_alt_m) == (30.70, 121.02, 12.3)
        # the target is recovered from the orbit item
        assert (back.target_lat_deg, back.target_lon_deg) == (30.71, 121.03)

    def test_round_trip_odd_values(self, tmp_path):
        m = _odd_mission()
        back = read_waypoints(write_waypoints(m, tmp_path / "odd.waypoints"))
        assert back.items == m.items

    def test_reads_mission_planner_file_with_spaces_and_comments(self, tmp_path):
        path = tmp_path / "mp.waypoints"
        path.write_text(
            "QGC WPL 110\n"
            "0 1 0 16 0 0 0 0 30.7 121.02 10 1\n"
            "# a comment\n"
            "1 0 3 22 0 0 0 0 0 0 30 1\n"
        )
        m = read_waypoints(path)
        assert m.count == 2 and m.items[0].alt_m == 30

    @pytest.mark.parametrize(
        ("text", "match"),
        [
            ("QGC WPL 100\n", "first line"),
            ("QGC WPL 110\n0\t1\t0\t16\n", "12 required"),
            ("QGC WPL 110\n1\t1\t0\t16\t0\t0\t0\t0\t1\t1\t1\t1\n", "seq 1"),
            ("QGC WPL 110\n", "home"),
            ("QGC WPL 110\n0\t1\t0\t16\t0\t0\t0\t0\t95\t1\t1\t1\n", "lat_deg"),
        ],
    )
    def test_bad_files(self, tmp_path, text, match):
        path = tmp_path / "bad.waypoints"
        path.write_text(text)
        with pytest.raises(ExportError, match=match):
            read_waypoints(path)


class TestQgcPlan:
    def test_documented_keys(self, mission):
        doc = json.loads(json.dumps(to_qgc_plan(mission)))
        assert doc["fileType"] == "Plan" and doc["version"] == 1
        assert doc["groundStation"] == "QGroundControl"
        ms = doc["mission"]
        assert ms["version"] == 2 and ms["firmwareType"] == 3 and ms["vehicleType"] == 2
        assert ms["plannedHomePosition"] == [30.70, 121.02, 12.3]
        assert ms["cruiseSpeed"] == 10 and ms["hoverSpeed"] == 5
        assert doc["geoFence"] == {"circles": [], "polygons": [], "version": 2}
        assert doc["rallyPoints"] == {"points": [], "version": 2}
        assert len(ms["items"]) == len(mission.items)
        for jump_id, (entry, item) in enumerate(zip(ms["items"], mission.items, strict=True), 1):
            assert entry["type"] == "SimpleItem"
            assert entry["doJumpId"] == jump_id
            assert entry["command"] == item.command and entry["frame"] == item.frame
            assert entry["autoContinue"] is True
            assert entry["params"] == [*item.params, item.lat_deg, item.lon_deg, item.alt_m]
            if item.has_position:
                assert entry["AMSLAltAboveTerrain"] is None
                assert entry["Altitude"] == item.alt_m
                assert entry["AltitudeMode"] == 1  # relative to home
            else:
                assert "Altitude" not in entry

    def test_no_fly_as_exclusion_fence(self, mission):
        doc = to_qgc_plan(mission, no_fly=[ZONE])
        (poly,) = doc["geoFence"]["polygons"]
        assert poly["inclusion"] is False
        assert len(poly["polygon"]) == 4
        assert [30.702, 121.022] in poly["polygon"]  # [lat, lon] order

    def test_round_trip(self, mission, tmp_path):
        path = write_qgc_plan(mission, tmp_path / "m.plan", no_fly=[ZONE])
        back = read_qgc_plan(path)
        assert back == mission  # items, home, target, dock and alert ids
        assert back.meta["duration_s"] == mission.meta["duration_s"]

    def test_reads_plan_without_haulwatch_key_and_null_params(self, mission, tmp_path):
        doc = to_qgc_plan(mission)
        del doc["haulwatch"]
        doc["mission"]["items"][0]["params"][3] = None  # QGC writes NaN yaw as null
        path = tmp_path / "qgc.plan"
        path.write_text(json.dumps(doc))
        back = read_qgc_plan(path)
        assert back.items == mission.items
        assert (back.target_lat_deg, back.target_lon_deg) == (30.71, 121.03)
        assert back.alert_id == "" and back.dock_site_id == ""

    @pytest.mark.parametrize(
        ("mutate", "match"),
        [
            (lambda d: d.update(fileType="Mission"), "fileType"),
            (lambda d: d["mission"].pop("items"), "items"),
            (lambda d: d["mission"].update(plannedHomePosition=[1, 2]), "plannedHomePosition"),
            (lambda d: d["mission"]["items"][0].update(type="ComplexItem"), "ComplexItem"),
            (lambda d: d["mission"]["items"][0].update(params=[0, 0]), "7 values"),
        ],
    )
    def test_bad_plans(self, mission, tmp_path, mutate, match):
        doc = json.loads(json.dumps(to_qgc_plan(mission)))
        mutate(doc)
        path = tmp_path / "bad.plan"
        path.write_text(json.dumps(doc))
        with pytest.raises(ExportError, match=match):
            read_qgc_plan(path)

    def test_not_json(self, tmp_path):
        path = tmp_path / "x.plan"
        path.write_text("{nope")
        with pytest.raises(ExportError, match="not JSON"):
            read_qgc_plan(path)

    def test_mission_left_unchanged(self, mission):
        before = (mission.items, dict(mission.meta))
        to_qgc_plan(mission, no_fly=[ZONE])
        to_waypoints(mission)
        assert (mission.items, dict(mission.meta)) == before
