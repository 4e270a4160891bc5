"""Tests for haulwatch.drone.plan: mission shape, feasibility, no-fly detours, daylight."""

from __future__ import annotations

import copy
import datetime as dt
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pymavlink import mavutil
from shapely.geometry import LineString, Point, box

from haulwatch.drone.plan import (
    LEGAL_MAX_ALT_M,
    Dock,
    MissionRefused,
    PlanConfig,
    PlanConfigError,
    check_flight_time,
    choose_dock,
    docks_from_sites,
    no_fly_from_sites,
    plan_mission,
    sun_elevation_deg,
)

MAV = mavutil.mavlink
UTC = dt.timezone.utc
DOCK = Dock("N1", 30.70, 121.02, alt_m=8.0)
TARGET = {"alert_id": "A1", "lat": 30.71, "lon": 121.03}
# A no-fly box lying across the straight line dock -> target.
ZONE = box(121.022, 30.702, 121.028, 30.708)
NOON = dt.datetime(2026, 6, 1, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
NO_SUN = PlanConfig(min_sun_elevation_deg=None, max_range_m=5000)


def _haversine_m(lat1, lon1, lat2, lon2):
    r = 6371008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


def _commands(mission):
    return [it.command for it in mission.items]


def _flown_path(mission):
    """Dock, every positional NAV item (loiter centre included), back to the dock."""
    nav = {MAV.MAV_CMD_NAV_TAKEOFF, MAV.MAV_CMD_NAV_WAYPOINT, MAV.MAV_CMD_NAV_LOITER_TURNS}
    pts = [(mission.home_lon_deg, mission.home_lat_deg)]
    pts += [(it.lon_deg, it.lat_deg) for it in mission.items if it.command in nav]
    pts.append((mission.home_lon_deg, mission.home_lat_deg))
    return LineString(pts)


def _to_metric(*geoms):
    s = gpd.GeoSeries(list(geoms), crs=4326)
    return list(s.to_crs(s.estimate_utm_crs()).values)


class TestMissionShape:
    def test_items_in_arducopter_order(self):
        m = plan_mission(TARGET, DOCK, config=NO_SUN)
        assert _commands(m) == [
            MAV.MAV_CMD_NAV_TAKEOFF,
            MAV.MAV_CMD_DO_CHANGE_SPEED,
            MAV.MAV_CMD_NAV_WAYPOINT,
            # AP_Mission starts these two as the loiter starts (see test_sitl)
            MAV.MAV_CMD_DO_SET_ROI_LOCATION,
            MAV.MAV_CMD_DO_SET_CAM_TRIGG_DIST,
            MAV.MAV_CMD_NAV_LOITER_TURNS,
            # ... and these two as the egress waypoint starts: when the orbit is complete
            MAV.MAV_CMD_DO_SET_CAM_TRIGG_DIST,
            MAV.MAV_CMD_DO_SET_ROI_NONE,
            MAV.MAV_CMD_NAV_WAYPOINT,
            MAV.MAV_CMD_NAV_RETURN_TO_LAUNCH,
        ]

    def test_parameters_follow_config(self):
        cfg = PlanConfig(
            transit_alt_m=80,
            orbit_alt_m=45,
            orbit_radius_m=60,
            orbit_turns=3,
            photo_spacing_m=12,
            cruise_speed_m_s=8,
            min_sun_elevation_deg=None,
        )
        m = plan_mission(TARGET, DOCK, config=cfg)
        by_cmd = {}
        for it in m.items:
            by_cmd.setdefault(it.command, []).append(it)
        takeoff = by_cmd[MAV.MAV_CMD_NAV_TAKEOFF][0]
        assert takeoff.alt_m == 80 and takeoff.frame == MAV.MAV_FRAME_GLOBAL_RELATIVE_ALT
        assert by_cmd[MAV.MAV_CMD_DO_CHANGE_SPEED][0].param2 == 8
        loiter = by_cmd[MAV.MAV_CMD_NAV_LOITER_TURNS][0]
        assert (loiter.param1, loiter.param3, loiter.alt_m) == (3, 60, 45)
        assert (loiter.lat_deg, loiter.lon_deg) == (30.71, 121.03)
        roi = by_cmd[MAV.MAV_CMD_DO_SET_ROI_LOCATION][0]
        assert (roi.lat_deg, roi.lon_deg) == (30.71, 121.03)
        start, stop = by_cmd[MAV.MAV_CMD_DO_SET_CAM_TRIGG_DIST]
        assert start.param1 == 12 and stop.param1 == 0
        # the home is the dock, AMSL
        assert (m.home_lat_deg, m.home_lon_deg, m.home_alt_m) == (30.70, 121.02, 8.0)
        assert m.alert_id == "A1" and m.dock_site_id == "N1"

    def test_entry_and_egress_waypoints_on_the_orbit(self):
        m = plan_mission(TARGET, DOCK, config=NO_SUN)
        k = _commands(m).index(MAV.MAV_CMD_NAV_LOITER_TURNS)
        # the copter is on the circle when the loiter (and so the camera) starts
        entry = m.items[k - 3]
        assert entry.command == MAV.MAV_CMD_NAV_WAYPOINT and entry.alt_m == m.meta["orbit_alt_m"]
        egress = m.items[k + 3]
        assert egress.command == MAV.MAV_CMD_NAV_WAYPOINT
        for wp in (entry, egress):
            d = _haversine_m(wp.lat_deg, wp.lon_deg, 30.71, 121.03)
            assert d == pytest.approx(m.meta["orbit_radius_m"], abs=1.0)
        # entry on the approach side: nearer the dock than the target is
        assert _haversine_m(entry.lat_deg, entry.lon_deg, 30.70, 121.02) < _haversine_m(
            30.71, 121.03, 30.70, 121.02
        )

    def test_entry_faces_the_last_detour_vertex(self):
        m = plan_mission(TARGET, DOCK, no_fly=[ZONE], config=NO_SUN)
        k = _commands(m).index(MAV.MAV_CMD_NAV_LOITER_TURNS)
        last_detour, entry = m.items[k - 4], m.items[k - 3]
        assert last_detour.command == entry.command == MAV.MAV_CMD_NAV_WAYPOINT
        leg = LineString([(last_detour.lon_deg, last_detour.lat_deg), (121.03, 30.71)])
        assert leg.distance(Point(entry.lon_deg, entry.lat_deg)) < 1e-6

    def test_no_altitude_above_legal_limit(self):
        cfg = PlanConfig(transit_alt_m=120, orbit_alt_m=120, min_sun_elevation_deg=None)
        m = plan_mission(TARGET, DOCK, config=cfg)
        assert max(it.alt_m for it in m.items) <= LEGAL_MAX_ALT_M

    def test_land_at_dock(self):
        m = plan_mission(
            TARGET, DOCK, config=PlanConfig(end_with="land", min_sun_elevation_deg=None)
        )
        last = m.items[-1]
        assert last.command == MAV.MAV_CMD_NAV_LAND
        assert (last.lat_deg, last.lon_deg) == (DOCK.lat_deg, DOCK.lon_deg)

    def test_meta_distances_are_geodesic(self):
        m = plan_mission(TARGET, DOCK, config=NO_SUN)
        expected = _haversine_m(30.70, 121.02, 30.71, 121.03)
        assert m.meta["straight_distance_m"] == pytest.approx(expected, rel=5e-3)
        # out to the orbit entry, one radius short of the target
        assert m.meta["distance_out_m"] == pytest.approx(expected - 50, rel=5e-3)
        assert m.meta["detour_vertices"] == 0

    def test_duration_grows_with_distance(self):
        cfg = PlanConfig(cruise_speed_m_s=10, min_sun_elevation_deg=None)
        near = plan_mission({"lat": 30.705, "lon": 121.02}, DOCK, config=cfg)
        far = plan_mission({"lat": 30.73, "lon": 121.02}, DOCK, config=cfg)
        assert far.meta["duration_s"] > near.meta["duration_s"]
        # ~2.78 km more each way at 10 m/s
        extra = _haversine_m(30.705, 121.02, 30.73, 121.02)
        assert far.meta["duration_s"] - near.meta["duration_s"] == pytest.approx(
            2 * extra / 10, rel=0.02
        )

    def test_deterministic(self):
        a = plan_mission(TARGET, DOCK, no_fly=[ZONE], config=NO_SUN)
        b = plan_mission(TARGET, DOCK, no_fly=[ZONE], config=NO_SUN)
        assert a == b and a.items == b.items

    def test_target_forms(self):
        row = pd.Series({"alert_id": "X9", "lat": 30.71, "lon": 121.03, "kind": "illegal_dump"})
        assert plan_mission(row, DOCK, config=NO_SUN).alert_id == "X9"
        m = plan_mission(Point(121.03, 30.71), DOCK, config=NO_SUN)
        assert m.alert_id == "" and (m.target_lat_deg, m.target_lon_deg) == (30.71, 121.03)

    def test_southern_western_hemisphere(self):
        dock = Dock("S1", -33.86, -70.65)
        zone = box(-70.645, -33.857, -70.635, -33.851)
        m = plan_mission({"lat": -33.85, "lon": -70.63}, dock, no_fly=[zone], config=NO_SUN)
        path, zone_m = _to_metric(_flown_path(m), zone)
        assert m.meta["detour_vertices"] > 0
        assert path.distance(zone_m) >= 0.95 * 30


class TestFeasibility:
    def test_out_of_range(self):
        with pytest.raises(MissionRefused, match="max_range_m") as exc:
            plan_mission({"lat": 30.80, "lon": 121.02}, DOCK, config=NO_SUN)
        assert exc.value.reason == "out_of_range"
        assert not exc.value.temporary
        assert exc.value.details["straight_distance_m"] > 11000

    def test_battery(self):
        cfg = PlanConfig(endurance_s=480, reserve_pct=30, min_sun_elevation_deg=None)
        with pytest.raises(MissionRefused, match="reserve") as exc:
            plan_mission(TARGET, DOCK, config=cfg)
        assert exc.value.reason == "battery"
        assert exc.value.details["duration_s"] > 480 * 0.7

    def test_refusal_pickles(self):
        import pickle

        exc = MissionRefused("no_path", "walled in", details={"no_fly_zones": 3})
        back = pickle.loads(pickle.dumps(exc))
        assert (back.reason, back.message, back.details) == ("no_path", "walled in", exc.details)
        assert str(back) == "no_path: walled in"

    def test_battery_from_energy(self):
        # 20 Wh at 400 W = 3 min of flight: not enough
        cfg = PlanConfig(battery_wh=20, cruise_power_w=400, min_sun_elevation_deg=None)
        assert cfg.full_endurance_s == pytest.approx(180)
        with pytest.raises(MissionRefused) as exc:
            plan_mission(TARGET, DOCK, config=cfg)
        assert exc.value.reason == "battery"

    def test_battery_share_reported(self):
        cfg = PlanConfig(endurance_s=1500, min_sun_elevation_deg=None)
        m = plan_mission(TARGET, DOCK, config=cfg)
        assert m.meta["battery_used_pct"] == pytest.approx(
            100 * m.meta["duration_s"] / 1500, rel=1e-3
        )

    def test_target_in_no_fly(self):
        with pytest.raises(MissionRefused) as exc:
            plan_mission({"lat": 30.705, "lon": 121.025}, DOCK, no_fly=[ZONE], config=NO_SUN)
        assert exc.value.reason == "target_in_no_fly"

    def test_dock_in_no_fly(self):
        with pytest.raises(MissionRefused) as exc:
            plan_mission(TARGET, DOCK, no_fly=[box(121.01, 30.69, 121.03, 30.705)], config=NO_SUN)
        assert exc.value.reason == "dock_in_no_fly"

    def test_orbit_shrinks_near_a_zone(self):
        # 0.0005 deg (~55 m) north of the zone: 55 - 30 m clearance = 25 m radius
        m = plan_mission({"lat": 30.7085, "lon": 121.025}, DOCK, no_fly=[ZONE], config=NO_SUN)
        assert 20 <= m.meta["orbit_radius_m"] < 30
        loiter = next(it for it in m.items if it.command == MAV.MAV_CMD_NAV_LOITER_TURNS)
        assert loiter.param3 == m.meta["orbit_radius_m"]

    def test_orbit_does_not_fit(self):
        with pytest.raises(MissionRefused) as exc:
            plan_mission({"lat": 30.7082, "lon": 121.025}, DOCK, no_fly=[ZONE], config=NO_SUN)
        assert exc.value.reason == "orbit_in_no_fly"


class TestNoFlyDetour:
    def test_detour_keeps_clearance(self):
        m = plan_mission(TARGET, DOCK, no_fly=[ZONE], config=NO_SUN)
        path, zone_m = _to_metric(_flown_path(m), ZONE)
        assert m.meta["detour_vertices"] > 0
        assert path.distance(zone_m) >= 0.95 * 30
        straight = _haversine_m(30.70, 121.02, 30.71, 121.03)
        assert m.meta["distance_out_m"] > straight

    def test_straight_line_clear_means_no_detour(self):
        far_zone = box(121.05, 30.75, 121.06, 30.76)
        m = plan_mission(TARGET, DOCK, no_fly=[far_zone], config=NO_SUN)
        assert m.meta["detour_vertices"] == 0

    def test_several_and_multipart_zones(self):
        zones = [
            shapely.MultiPolygon([ZONE, box(121.015, 30.703, 121.019, 30.709)]),
            box(121.029, 30.701, 121.033, 30.706),
        ]
        m = plan_mission(TARGET, DOCK, no_fly=zones, config=NO_SUN)
        path, *zones_m = _to_metric(_flown_path(m), *zones)
        assert min(path.distance(z) for z in zones_m) >= 0.95 * 30

    def test_no_path_when_target_enclosed(self):
        ring = Point(121.03, 30.71).buffer(0.01).difference(Point(121.03, 30.71).buffer(0.005))
        with pytest.raises(MissionRefused) as exc:
            plan_mission(TARGET, DOCK, no_fly=[ring], config=NO_SUN)
        assert exc.value.reason == "no_path"

    def test_sites_frame_as_no_fly_uses_only_no_fly_kind(self):
        sites = gpd.GeoDataFrame(
            {"site_id": ["Z", "O"], "kind": ["no_fly", "origin"]},
            geometry=[ZONE, box(121.029, 30.709, 121.031, 30.711)],  # origin covers the target
            crs=4326,
        )
        before = sites.copy()
        m = plan_mission(TARGET, DOCK, no_fly=sites, config=NO_SUN)
        assert m.meta["no_fly_zones"] == 1 and m.meta["detour_vertices"] > 0
        pd.testing.assert_frame_equal(sites, before)

    def test_projected_no_fly_frame_is_reprojected(self):
        s = gpd.GeoSeries([ZONE], crs=4326)
        projected = s.to_crs(s.estimate_utm_crs())
        a = plan_mission(TARGET, DOCK, no_fly=projected, config=NO_SUN)
        b = plan_mission(TARGET, DOCK, no_fly=[ZONE], config=NO_SUN)
        assert a.meta["detour_vertices"] == b.meta["detour_vertices"]
        assert a.meta["distance_out_m"] == pytest.approx(b.meta["distance_out_m"], abs=1.0)

    def test_inputs_left_unchanged(self):
        target = dict(TARGET)
        zones = [ZONE]
        snapshot = copy.deepcopy((target, zones))
        plan_mission(target, DOCK, no_fly=zones, config=NO_SUN, now=NOON)
        assert (target, zones) == snapshot

    def test_detailed_zone_is_valid(self):
        # no wall-clock bound here (a busy host decides it); speed belongs in benchmarks/
        circle = Point(121.025, 30.705).buffer(0.004, quad_segs=1000)  # ~4000 vertices
        m = plan_mission(TARGET, DOCK, no_fly=[circle], config=NO_SUN)
        path, zone_m = _to_metric(_flown_path(m), circle)
        assert path.distance(zone_m) >= 0.95 * 30

    def test_dock_close_to_a_zone_still_flies(self):
        # zone edge 10 m east of the dock: clearance shrinks near the dock only
        zone = box(121.0201, 30.695, 121.03, 30.7085)
        m = plan_mission(TARGET, DOCK, no_fly=[zone], config=NO_SUN)
        path, zone_m = _to_metric(_flown_path(m), zone)
        assert path.distance(zone_m) > 0
        assert m.meta["clearance_m"] < 30


class TestDaylight:
    def test_noon_is_fine_and_reported(self):
        m = plan_mission(TARGET, DOCK, now=NOON)
        assert "daylight" in m.meta["checks"]
        assert min(m.meta["sun_elevation_deg"]) > 60
        assert m.meta["planned_start"] == "2026-06-01T04:00:00Z"

    def test_night_is_refused_as_temporary(self):
        with pytest.raises(MissionRefused, match="sun elevation") as exc:
            plan_mission(TARGET, DOCK, now=dt.datetime(2026, 6, 1, 15, 0, tzinfo=UTC))
        assert exc.value.reason == "daylight" and exc.value.temporary

    def test_naive_now_is_local_time(self):
        m = plan_mission(TARGET, DOCK, now=dt.datetime(2026, 6, 1, 12, 0))
        assert m.meta["planned_start"] == "2026-06-01T04:00:00Z"

    def test_landing_after_dusk_refused(self):
        # Shanghai sunset ~19:00 local on 1 June; civil dusk ~19:28
        start = dt.datetime(2026, 6, 1, 19, 20)
        with pytest.raises(MissionRefused, match="landing"):
            plan_mission(TARGET, DOCK, now=start)

    def test_no_now_skips_the_check(self):
        m = plan_mission(TARGET, DOCK)
        assert "daylight" not in m.meta["checks"]

    def test_local_window(self):
        cfg = PlanConfig(local_window=(dt.time(8, 0), dt.time(18, 0)), min_sun_elevation_deg=None)
        plan_mission(TARGET, DOCK, config=cfg, now=dt.datetime(2026, 6, 1, 9, 0))
        with pytest.raises(MissionRefused, match="window"):
            plan_mission(TARGET, DOCK, config=cfg, now=dt.datetime(2026, 6, 1, 17, 55))

    def test_local_window_wrapping_midnight(self):
        cfg = PlanConfig(local_window=(dt.time(22, 0), dt.time(6, 0)), min_sun_elevation_deg=None)
        plan_mission(TARGET, DOCK, config=cfg, now=dt.datetime(2026, 6, 1, 23, 30))
        with pytest.raises(MissionRefused):
            plan_mission(TARGET, DOCK, config=cfg, now=dt.datetime(2026, 6, 1, 12, 0))

    def test_check_flight_time(self):
        info = check_flight_time(DOCK, NOON, 600)
        assert len(info["sun_elevation_deg"]) == 2
        with pytest.raises(PlanConfigError, match="duration_s"):
            check_flight_time(DOCK, NOON, -1)


class TestSunElevation:
    def test_shanghai_solstice_noon(self):
        # solar noon ~11:54 CST: elevation = 90 - (31.23 - 23.44) = 82.2 deg
        e = sun_elevation_deg(31.23, 121.47, dt.datetime(2024, 6, 21, 3, 54, tzinfo=UTC))
        assert e == pytest.approx(82.2, abs=0.4)

    def test_shanghai_solstice_sunrise(self):
        # published sunrise 04:50 CST: centre of the sun ~0.83 deg below the horizon
        e = sun_elevation_deg(31.23, 121.47, dt.datetime(2024, 6, 20, 20, 50, tzinfo=UTC))
        assert e == pytest.approx(-0.83, abs=0.5)

    def test_vectorized(self):
        times = pd.date_range("2024-06-21", periods=24, freq="h", tz="UTC")
        e = sun_elevation_deg(31.23, 121.47, times)
        assert e.shape == (24,)
        assert e.max() == pytest.approx(82.2, abs=1.5)
        assert e.min() < -30


class TestConfig:
    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"transit_alt_m": 150}, "transit_alt_m"),
            ({"max_alt_m": 130}, "max_alt_m"),
            ({"orbit_radius_m": 300}, "255"),
            ({"orbit_turns": 0}, "orbit_turns"),
            ({"orbit_turns": 1.5}, "orbit_turns"),
            ({"reserve_pct": 100}, "reserve_pct"),
            ({"cruise_speed_m_s": 0}, "cruise_speed_m_s"),
            ({"cruise_speed_m_s": math.nan}, "cruise_speed_m_s"),
            ({"end_with": "hover"}, "end_with"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"min_orbit_radius_m": 80}, "min_orbit_radius_m"),
            ({"local_window": (dt.time(8), dt.time(8))}, "local_window"),
            ({"battery_wh": -1}, "battery_wh"),
        ],
    )
    def test_bad_parameters(self, kw, match):
        with pytest.raises(PlanConfigError, match=match):
            PlanConfig(**kw)

    def test_bad_target(self):
        with pytest.raises(PlanConfigError, match="lat"):
            plan_mission({"lon": 121.0}, DOCK)
        with pytest.raises(PlanConfigError, match="lat"):
            plan_mission({"lat": 95.0, "lon": 121.0}, DOCK)
        with pytest.raises(PlanConfigError, match="target"):
            plan_mission((30.7, 121.0), DOCK)

    def test_bad_dock(self):
        with pytest.raises(PlanConfigError, match="lat_deg"):
            Dock("N", 100.0, 121.0)
        with pytest.raises(PlanConfigError, match="drones"):
            Dock("N", 30.0, 121.0, drones=-1)


def _sites():
    return gpd.GeoDataFrame(
        {
            "site_id": ["N2", "N1", "Z", "O"],
            "kind": ["nest", "nest", "no_fly", "origin"],
            "name": ["Dock two", None, "", ""],
        },
        geometry=[
            box(121.0995, 30.7495, 121.1005, 30.7505),
            box(121.0195, 30.6995, 121.0205, 30.7005),
            ZONE,
            box(121.05, 30.70, 121.06, 30.71),
        ],
        crs=4326,
    )


class TestSites:
    def test_docks_from_sites(self):
        docks = docks_from_sites(_sites())
        assert [d.site_id for d in docks] == ["N1", "N2"]
        assert docks[0].lat_deg == pytest.approx(30.70) and docks[0].lon_deg == pytest.approx(
            121.02
        )
        assert docks[1].name == "Dock two" and docks[0].name == ""
        assert all(d.drones == 1 for d in docks)

    def test_drones_and_altitude_columns(self):
        sites = _sites().assign(drones=[3, 2, 0, 0], alt_m=[15.0, np.nan, 0, 0])
        docks = {d.site_id: d for d in docks_from_sites(sites)}
        assert docks["N2"].drones == 3 and docks["N2"].alt_m == 15.0
        assert docks["N1"].alt_m == 0.0

    def test_no_nest(self):
        assert docks_from_sites(_sites().iloc[2:]) == []

    def test_no_fly_from_sites(self):
        zones = no_fly_from_sites(_sites())
        assert len(zones) == 1 and zones[0].equals(ZONE)

    def test_not_a_sites_frame(self):
        with pytest.raises(PlanConfigError, match="kind"):
            docks_from_sites(gpd.GeoDataFrame({"site_id": ["a"]}, geometry=[ZONE], crs=4326))


class TestChooseDock:
    def test_picks_the_feasible_dock_and_explains(self):
        docks = docks_from_sites(_sites())
        choice = choose_dock(TARGET, docks, no_fly=[ZONE], config=NO_SUN)
        assert choice.dock.site_id == "N1"
        assert choice.mission.dock_site_id == "N1"
        assert "N1" in choice.reason and "min" in choice.reason
        assert [(s, r) for s, r, _ in choice.rejected] == [("N2", "out_of_range")]

    def test_prefers_shorter_flight(self):
        docks = [Dock("FAR", 30.69, 121.01), Dock("NEAR", 30.709, 121.029)]
        choice = choose_dock(TARGET, docks, config=NO_SUN)
        assert choice.dock.site_id == "NEAR" and choice.rejected == ()

    def test_exclude(self):
        docks = [Dock("FAR", 30.69, 121.01), Dock("NEAR", 30.709, 121.029)]
        choice = choose_dock(TARGET, docks, config=NO_SUN, exclude=["NEAR"])
        assert choice.dock.site_id == "FAR"

    def test_none_feasible(self):
        docks = [Dock("FAR", 31.5, 121.5)]
        with pytest.raises(MissionRefused) as exc:
            choose_dock(TARGET, docks, config=NO_SUN)
        assert exc.value.reason == "no_feasible_dock"
        assert exc.value.details["per_dock"][0][:2] == ("FAR", "out_of_range")
        assert exc.value.details["temporary"] is False

    def test_night_refusal_is_temporary(self):
        with pytest.raises(MissionRefused) as exc:
            choose_dock(TARGET, [DOCK], now=dt.datetime(2026, 6, 1, 15, 0, tzinfo=UTC))
        assert exc.value.details["temporary"] is True

    def test_no_docks(self):
        with pytest.raises(MissionRefused, match="no dock"):
            choose_dock(TARGET, [], config=NO_SUN)


class TestShortestPath:
    """The lazy A* finds the same length as Dijkstra on the full visibility graph."""

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_matches_full_graph_dijkstra(self, seed):
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import dijkstra

        from haulwatch.drone.nofly import inflate_zones, shortest_path

        rng = np.random.default_rng(seed)
        zones = np.array(
            [
                Point(rng.uniform(-2000, 2000), rng.uniform(-2000, 2000)).buffer(
                    rng.uniform(80, 300), quad_segs=3
                )
                for _ in range(12)
            ]
            + [Point(0, 0).buffer(250)],  # one always on the diagonal
            dtype=object,
        )
        start, goal = (-2600.0, -2600.0), (2600.0, 2600.0)
        obs = inflate_zones(zones, [start, goal], PlanConfig())
        path = shortest_path(start, goal, obs)
        assert path is not None and len(path) > 2  # a detour was needed
        line = LineString(path)
        assert not line.intersects(obs.blocked)
        assert min(line.distance(z) for z in zones) >= 0.95 * 30

        pts = np.vstack([[start, goal], obs.nodes])
        i, j = np.triu_indices(len(pts), k=1)
        segs = shapely.linestrings(np.stack([pts[i], pts[j]], axis=1))
        free = ~shapely.intersects(segs, obs.blocked)
        i, j = i[free], j[free]
        w = np.hypot(*(pts[i] - pts[j]).T)
        graph = coo_matrix((w, (i, j)), shape=(len(pts), len(pts)))
        best = dijkstra(graph, directed=False, indices=0)[1]
        assert line.length == pytest.approx(best, rel=1e-9)


class TestVehicleLimits:
    """Plan with what the vehicle says about itself (issue 13: 12 m/s asked, 10 flown)."""

    def test_speed_capped_by_wpnav_speed(self):
        cfg = NO_SUN.for_vehicle({"WPNAV_SPEED": 1000.0})
        assert cfg.cruise_speed_m_s == 10.0
        slow = plan_mission(TARGET, DOCK, config=cfg)
        fast = plan_mission(TARGET, DOCK, config=NO_SUN)  # 12 m/s
        assert slow.meta["cruise_speed_m_s"] == 10.0
        assert slow.meta["duration_s"] > fast.meta["duration_s"]
        change = next(it for it in slow.items if it.command == MAV.MAV_CMD_DO_CHANGE_SPEED)
        assert change.param2 == 10.0
        # a faster vehicle does not raise the configured speed
        assert NO_SUN.for_vehicle({"WPNAV_SPEED": 2000.0}).cruise_speed_m_s == 12.0

    def test_capacity_and_current_give_the_endurance(self):
        cfg = PlanConfig(cruise_current_a=22.0, min_sun_elevation_deg=None)
        cfg = cfg.for_vehicle({"BATT_CAPACITY": 3300.0})
        assert cfg.full_endurance_s == pytest.approx(3.3 / 22.0 * 3600.0)  # 540 s

    def test_charge_left_limits_the_flight(self):
        m = plan_mission(TARGET, DOCK, config=NO_SUN)
        used = m.meta["battery_used_pct"]
        reserve = NO_SUN.reserve_pct
        enough = NO_SUN.for_vehicle({}, battery_pct=reserve + used + 1)
        assert plan_mission(TARGET, DOCK, config=enough).meta["battery_remaining_pct"] > 0
        short = NO_SUN.for_vehicle({}, battery_pct=reserve + used - 1)
        with pytest.raises(MissionRefused, match="charge left") as exc:
            plan_mission(TARGET, DOCK, config=short)
        assert exc.value.reason == "battery"
        flat = NO_SUN.for_vehicle({}, battery_pct=0.0)
        assert flat.usable_endurance_s == 0.0

    def test_bad_vehicle_values_are_ignored(self):
        cfg = NO_SUN.for_vehicle({"WPNAV_SPEED": float("nan"), "BATT_CAPACITY": -1}, 150.0)
        assert cfg == NO_SUN
        with pytest.raises(PlanConfigError, match="battery_remaining_pct"):
            PlanConfig(battery_remaining_pct=101)


class TestNightCapableDock:
    MIDNIGHT = dt.datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai

    def test_sun_rule_skipped_for_a_night_dock(self):
        cfg = PlanConfig(max_range_m=5000)  # sun at least -6 degrees
        with pytest.raises(MissionRefused, match="sun elevation"):
            plan_mission(TARGET, DOCK, config=cfg, now=self.MIDNIGHT)
        night = Dock("N9", 30.70, 121.02, alt_m=8.0, night_capable=True)
        m = plan_mission(TARGET, night, config=cfg, now=self.MIDNIGHT)
        assert "daylight" in m.meta["checks"]

    def test_local_window_still_applies_at_night(self):
        cfg = PlanConfig(max_range_m=5000, local_window=(dt.time(6), dt.time(22)))
        night = Dock("N9", 30.70, 121.02, night_capable=True)
        with pytest.raises(MissionRefused, match="allowed window"):
            plan_mission(TARGET, night, config=cfg, now=self.MIDNIGHT)

    def test_sites_column(self):
        sites = gpd.GeoDataFrame(
            {
                "site_id": ["N1", "N2", "N3"],
                "kind": ["nest"] * 3,
                "night_capable": [True, "否", "yes"],
            },
            geometry=[Point(121.02, 30.70).buffer(1e-4)] * 3,
            crs=4326,
        )
        assert [d.night_capable for d in docks_from_sites(sites)] == [True, False, True]
        with pytest.raises(PlanConfigError, match="night_capable"):
            Dock("N1", 30.7, 121.0, night_capable="yes")


def test_orbit_speed_follows_ac_circle():
    # AC_Circle::calc_velocities: v = min(WPNAV_SPEED, sqrt(0.5 * WPNAV_ACCEL * r)), rate limit
    m = plan_mission(TARGET, DOCK, config=NO_SUN)  # r 50 m, accel 2.5 m/s2
    assert m.meta["orbit_speed_m_s"] == pytest.approx(math.sqrt(0.5 * 2.5 * 50.0), abs=0.01)
    brisk = NO_SUN.for_vehicle({"WPNAV_SPEED": 1000.0, "WPNAV_ACCEL": 500.0})
    assert plan_mission(TARGET, DOCK, config=brisk).meta["orbit_speed_m_s"] == 10.0
    slow_rate = PlanConfig(min_sun_elevation_deg=None, max_range_m=5000, orbit_rate_deg_s=5.0)
    assert plan_mission(TARGET, DOCK, config=slow_rate).meta["orbit_speed_m_s"] == pytest.approx(
        50.0 * math.radians(5.0), abs=0.01
    )
