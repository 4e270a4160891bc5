"""Red-team scenarios: scripted fleets the detectors were never tuned on.

Each test builds a tiny dataset with :mod:`tests.routes.scenario_world` (its own
sites, route and truck scripts, not the project's synthetic fleet), audits it
through ``audit_folder`` and asserts exactly the alerts a careful analyst expects
from docs/formats.md and docs/detection.md — count, kind, vehicle, and roughly
where and when. Expected values are derived by hand from the script, never from
the code under test.

Layout (see scenario_world): origin O1 at (0, 0), disposal D1 at (6 km, 0) joined
by route R1 (corridor 100 m), second disposal D2 at (6 km, 3 km), expired origin O2
at (0, 3 km), depot DEP at (3 km, -1.5 km). Times are local HH:MM on 2026-03-02.
"""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import pytest
from scenario_world import World, xy

from haulwatch.routes.audit import audit_folder

V1, V2, V3, V4 = "浙A10001", "浙A10002", "浙A10003", "浙A10004"
OPEN_SPOT = (3000.0, 800.0)  # 800 m north of route R1, far from every site


def run(world: World, tmp_path, **write_kw) -> pd.DataFrame:
    folder = world.write(tmp_path / "ds", **write_kw)
    return audit_folder(folder).alerts


def kinds(alerts: pd.DataFrame) -> Counter:
    return Counter(zip(alerts["kind"], alerts["vehicle_id"], strict=True))


def dist_m(world: World, alert: pd.Series, x: float, y: float) -> float:
    lon, lat = world.lonlat(x, y)
    dx = (float(alert["lon"]) - lon) * 111320.0 * math.cos(math.radians(lat))
    dy = (float(alert["lat"]) - lat) * 110540.0
    return math.hypot(dx, dy)


def within(ts: pd.Timestamp, lo: pd.Timestamp, hi: pd.Timestamp, slack_s: float = 120) -> bool:
    return lo - pd.Timedelta(seconds=slack_s) <= ts <= hi + pd.Timedelta(seconds=slack_s)


def haul(w: World, vid: str, start: str = "08:00", *, dt_s: float = 10.0, manifest: bool = True, **truck_kw):
    """Depot → O1 (load 15 min) → route → D1 (unload 10 min) → depot: one clean trip."""
    tr = w.truck(vid, start, dt_s=dt_s, **truck_kw)
    tr.park(5).to("O1").park(15).drive((1000, 0), (5000, 0)).to("D1").park(10).to("DEP").park(5)
    if manifest:
        w.manifest(vid)
    return tr


def loaded_to(tr, *, sensor: bool = False):
    """Depot → O1, load 15 min, leave O1 along the route to x = 2 km (still loaded)."""
    tr.park(5).to("O1")
    tr.park(15, load_after="full" if sensor else None)
    return tr.drive((1000, 0), (2000, 0))


# ======================================================================= innocent


class TestInnocent:
    def test_clean_trip_raises_nothing(self, tmp_path):
        w = World()
        haul(w, V1)
        assert len(run(w, tmp_path)) == 0

    def test_traffic_lights_and_congestion(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((1000, 0))
        for wait_min in (0.5, 1.0, 2.0):  # red lights 30-120 s
            tr.drive((tr.x + 400, 0)).park(wait_min, sigma_m=2)
        tr.creep(30)  # 30 min of stop-and-go
        tr.drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    @pytest.mark.parametrize("gap_m", [60.0, 140.0])
    def test_gate_queue_outside_disposal(self, tmp_path, gap_m):
        w = World()
        tr = w.truck(V1, "08:00")
        gate_x = xy("D1")[0] - 100 - gap_m  # west edge of D1 minus gap
        tr.park(5).to("O1").park(15).drive((1000, 0), (gate_x, 0)).park(15, sigma_m=5)
        tr.to("D1").park(8).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_refuel_while_loaded_then_unload(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((3000, 0), (3000, 60)).park(15).drive((3000, 0), (5000, 0))
        tr.to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_lunch_in_depot_loaded_then_unload(self, tmp_path):
        w = World()
        tr = w.truck(V1, "10:00")
        tr.park(5).to("O1").park(15).drive((1000, 0), (3000, 0)).to("DEP").park(60)
        tr.drive((3000, 0), (5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        # lunch is no dump; but the depot lies 1.5 km off R1's corridor, so the loaded
        # trip did leave its approved route (one deviation, nothing else)
        assert kinds(run(w, tmp_path)) == Counter({("route_deviation", V1): 1})

    def test_empty_truck_parked_two_hours_roadside(self, tmp_path):
        w = World()
        tr = haul(w, V1)
        tr.drive(OPEN_SPOT).park(120, sigma_m=6).to("DEP").park(10)
        assert len(run(w, tmp_path)) == 0

    def test_empty_truck_parked_roadside_then_loads_at_origin(self, tmp_path):
        w = World()
        tr = haul(w, V1)
        tr.drive(OPEN_SPOT).park(120, sigma_m=6).to("O1").park(15).drive((5000, 0)).to("D1").park(10)
        assert len(run(w, tmp_path)) == 0

    def test_overnight_in_depot_terminal_off(self, tmp_path):
        w = World()
        tr = haul(w, V1, "14:00")
        tr.park(30).dark(15 * 60).park(30)  # 15:25 → 06:25 next day, terminal off
        tr.to("O1").park(15).drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1, day="2026-03-03", start="06:00", end="18:00")
        assert len(run(w, tmp_path)) == 0

    def test_gps_drift_while_stationary(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(20, sigma_m=20).drive((3000, 0), (3000, 60)).park(20, sigma_m=20)
        tr.drive((3000, 0), (5000, 0)).to("D1").park(15, sigma_m=20).to("DEP").park(30, sigma_m=20)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_data_starts_mid_trip(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00", at=(2500, 0))  # loaded, on the road, when data begins
        tr.drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_data_starts_mid_trip_with_stop_before_first_site(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00", at=(2500, 0))
        tr.park(20).drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0


# ======================================================================= dumps


class TestDumps:
    def _expect_one_dump(self, w, tmp_path, vid, x, y, lo, hi, **write_kw):
        alerts = run(w, tmp_path, **write_kw)
        assert kinds(alerts) == Counter({("illegal_dump", vid): 1})
        a = alerts.iloc[0]
        assert dist_m(w, a, x, y) < 60
        assert within(a["start"], w.utc(lo), w.utc(hi))
        return alerts

    def test_dump_without_sensors_then_back_to_origin(self, tmp_path):
        w = World()
        tr = loaded_to(w.truck(V1, "08:00"))  # leaves O1 at 08:20ish
        tr.drive(OPEN_SPOT).park(8).to("O1").park(15).drive((5000, 0)).to("D1").park(10)
        w.manifest(V1)
        # route deviation? the dumping leg is not an origin → disposal trip: not judged
        self._expect_one_dump(w, tmp_path, V1, *OPEN_SPOT, "08:20", "08:45")

    def test_dump_without_sensors_then_depot_for_the_night(self, tmp_path):
        w = World()
        tr = loaded_to(w.truck(V1, "15:00"))
        tr.drive(OPEN_SPOT).park(6).to("DEP").park(30)
        w.manifest(V1)
        self._expect_one_dump(w, tmp_path, V1, *OPEN_SPOT, "15:20", "15:45")

    def test_dump_with_load_sensor(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00", load="empty")
        loaded_to(tr, sensor=True)
        tr.drive(OPEN_SPOT).park(6, load_after="empty").to("DEP").park(10)
        w.manifest(V1)
        alerts = self._expect_one_dump(w, tmp_path, V1, *OPEN_SPOT, "08:20", "08:45")
        assert "sensor" in alerts.iloc[0]["evidence"]

    def test_dump_with_lift_only(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5, lift=False).to("O1", lift=False).park(15, lift=False)
        tr.drive((1000, 0), (2000, 0), OPEN_SPOT, lift=False).park(5, lift=True)
        # after tipping it drives to D1 anyway (empty, e.g. to fake the trip)
        tr.drive((5000, 800), lift=False).to("D1", lift=False).park(5, lift=False)
        w.sensor_columns = True
        w.manifest(V1)
        self._expect_one_dump(w, tmp_path, V1, *OPEN_SPOT, "08:20", "08:45")

    def test_slow_dump_three_minutes(self, tmp_path):
        w = World()
        tr = loaded_to(w.truck(V1, "08:00"))
        tr.drive(OPEN_SPOT).park(3).to("O1").park(15)
        w.manifest(V1)
        self._expect_one_dump(w, tmp_path, V1, *OPEN_SPOT, "08:20", "08:45")

    def test_dark_dump(self, tmp_path):
        w = World()
        tr = loaded_to(w.truck(V1, "08:00"))
        tr.drive((2500, 300)).dark(25, to=(2600, 400)).drive((1000, 0)).to("O1").park(15)
        tr.drive((5000, 0)).to("D1").park(10)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1, ("gps_gap", V1): 1})
        dump = alerts[alerts["kind"] == "illegal_dump"].iloc[0]
        gap = alerts[alerts["kind"] == "gps_gap"].iloc[0]
        assert dist_m(w, dump, 2500, 300) < 40
        assert abs((gap["end"] - gap["start"]).total_seconds() - 25 * 60 - 10) < 30

    def test_two_trucks_dump_at_different_places(self, tmp_path):
        w = World()
        a = loaded_to(w.truck(V1, "08:00"))
        a.drive(OPEN_SPOT).park(8).to("O1").park(15)
        b = loaded_to(w.truck(V2, "09:00"))
        b.drive((1500, -800)).park(8).to("DEP").park(15)
        w.manifest(V1)
        w.manifest(V2)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1, ("illegal_dump", V2): 1})
        assert dist_m(w, alerts[alerts["vehicle_id"] == V1].iloc[0], *OPEN_SPOT) < 60
        assert dist_m(w, alerts[alerts["vehicle_id"] == V2].iloc[0], 1500, -800) < 60

    def test_refuel_then_dump_only_the_dump_alerts(self, tmp_path):
        w = World()
        tr = loaded_to(w.truck(V1, "08:00"))
        tr.drive((2000, 60)).park(4).drive(OPEN_SPOT).park(10).to("O1").park(15)
        w.manifest(V1)
        self._expect_one_dump(w, tmp_path, V1, *OPEN_SPOT, "08:20", "08:50")


class TestHotspots:
    def _dumper(self, w, vid, start, spot, day=None):
        tr = w.truck(vid, start, day=day)
        loaded_to(tr).drive(spot).park(6).to("DEP").park(10)
        w.manifest(vid, day=day, start="00:00", end="23:59")

    def test_three_trucks_same_day_within_100m(self, tmp_path):
        w = World()
        spots = [(3000, 800), (3060, 820), (3020, 880)]
        for vid, start, spot in zip((V1, V2, V3), ("08:00", "10:00", "13:00"), spots, strict=True):
            self._dumper(w, vid, start, spot)
        alerts = run(w, tmp_path)
        c = Counter(alerts["kind"])
        assert c == Counter({"illegal_dump": 3, "dump_hotspot": 1})
        hot = alerts[alerts["kind"] == "dump_hotspot"].iloc[0]
        assert hot["vehicle_id"] == ""
        assert dist_m(w, hot, 3027, 833) < 60

    def test_two_trucks_no_hotspot(self, tmp_path):
        w = World()
        self._dumper(w, V1, "08:00", (3000, 800))
        self._dumper(w, V2, "10:00", (3050, 820))
        assert Counter(run(w, tmp_path)["kind"]) == Counter({"illegal_dump": 2})

    def test_three_trucks_on_different_days_no_hotspot(self, tmp_path):
        w = World()
        for vid, day in zip((V1, V2, V3), ("2026-03-02", "2026-03-03", "2026-03-04"), strict=True):
            self._dumper(w, vid, "08:00", (3000, 800), day=day)
        assert Counter(run(w, tmp_path)["kind"]) == Counter({"illegal_dump": 3})

    def test_night_shift_local_day_splits_hotspot(self, tmp_path):
        # 23:00 and 23:20 local on 03-02, 00:20 local on 03-03: one UTC day (15:xx-16:xx Z)
        # but two local days → no hotspot.
        w = World()
        self._dumper(w, V1, "22:30", (3000, 800))
        self._dumper(w, V2, "22:50", (3040, 800))
        self._dumper(w, V3, "23:50", (3000, 840))
        alerts = run(w, tmp_path)
        assert Counter(alerts["kind"]) == Counter({"illegal_dump": 3})

    def test_night_shift_hotspot_in_one_local_day_across_utc_midnight(self, tmp_path):
        # 07:30-08:40 local = 23:30-00:40 UTC: two UTC days, one local day → hotspot.
        w = World()
        self._dumper(w, V1, "07:10", (3000, 800))
        self._dumper(w, V2, "07:40", (3040, 800))
        self._dumper(w, V3, "08:20", (3000, 840))
        alerts = run(w, tmp_path)
        assert Counter(alerts["kind"]) == Counter({"illegal_dump": 3, "dump_hotspot": 1})


# ======================================================================= routes


class TestDeviation:
    def test_detour_off_corridor(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((2000, 0), (2500, 600), (3500, 600), (4000, 0), (5000, 0))
        tr.to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("route_deviation", V1): 1})
        a = alerts.iloc[0]
        xs = [pt[0] for pt in a["geometry"].coords]
        lo, _ = w.lonlat(2000, 0)
        hi, _ = w.lonlat(4000, 0)
        assert lo < min(xs) and max(xs) < hi

    def test_deviation_while_empty_not_judged(self, tmp_path):
        w = World()
        tr = haul(w, V1)
        tr.drive((4000, -600), (1000, -600)).to("O1").park(15).drive((5000, 0)).to("D1").park(10)
        assert len(run(w, tmp_path)) == 0

    def test_manifest_without_route_id_any_route_counts(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((2000, 0), (2500, 600), (3500, 600), (4000, 0), (5000, 0))
        tr.to("D1").park(10)
        w.manifest(V1, route_id=None)
        assert kinds(run(w, tmp_path)) == Counter({("route_deviation", V1): 1})

    def test_inside_wide_corridor_no_alert(self, tmp_path):
        # a 60 m lateral offset is inside R1's corridor_m = 100
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((1000, 60), (5000, 60)).to("D1").park(10)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0


# ======================================================================= origins / manifests


class TestOriginsAndManifests:
    def test_expired_origin(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O2").park(15).drive((5000, 3000)).to("D2").park(10).to("DEP").park(5)
        w.manifest(V1, "O2", "D2", route_id=None)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unpermitted_origin", V1): 1})
        a = alerts.iloc[0]
        assert a["severity"] == "medium" and a["site_id"] == "O2"

    def test_loading_at_unlisted_place(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        black = (1500, 1500)
        tr.park(5).drive(black).park(20, sigma_m=6).drive((5000, 1500)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unpermitted_origin", V1): 1})
        a = alerts.iloc[0]
        assert a["severity"] == "high" and dist_m(w, a, *black) < 40

    def test_wrong_disposal(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((1000, 0), (5000, 2000)).to("D2").park(10).to("DEP").park(5)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("wrong_disposal", V1): 1})
        assert alerts.iloc[0]["site_id"] == "D2"

    def test_no_manifest(self, tmp_path):
        w = World()
        haul(w, V1, manifest=False)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unmanifested_trip", V1): 1})
        a = alerts.iloc[0]
        assert within(a["start"], w.utc("08:10"), w.utc("08:20"))

    def test_manifest_never_executed(self, tmp_path):
        w = World()
        haul(w, V1, "08:00")
        idle = w.truck(V2, "08:00")
        idle.park(60).park(60).park(60).park(60)  # in the depot until noon
        w.manifest(V2, start="08:00", end="11:00")
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("manifest_not_executed", V2): 1})
        assert alerts.iloc[0]["severity"] == "low"

    def test_gap_while_loaded_in_the_open(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((2000, 0)).dark(15, to=(4500, 0)).drive((5000, 0)).to("D1").park(10)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("gps_gap", V1): 1})

    def test_unregistered_and_registered_false(self, tmp_path):
        w = World()
        haul(w, V1)
        haul(w, V2, "09:00")
        haul(w, V3, "10:00")
        w.vehicles = [(V1, "true"), (V2, "false")]
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unregistered_vehicle", V2): 1, ("unregistered_vehicle", V3): 1})

    def test_plates_written_differently(self, tmp_path):
        w = World()
        haul(w, "浙F·A1234", manifest=False)
        w.manifest("浙f a1234")
        w.vehicles = [("浙FA1234", "true")]
        assert len(run(w, tmp_path)) == 0

    def test_night_shift_unregistered_per_local_day(self, tmp_path):
        w = World()
        tr = w.truck(V1, "23:10")
        tr.park(5).to("O1").park(15).drive((5000, 0)).to("D1").park(10)
        tr.to("O1").park(15).drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1, start="22:00", end="03:00", end_day="2026-03-03")
        w.vehicles = [(V2, "true")]
        alerts = run(w, tmp_path)
        # first load at O1 ~23:21 (03-02), second load after a 45-min round trip ~00:06 (03-03)
        assert kinds(alerts) == Counter({("unregistered_vehicle", V1): 2})


# ======================================================================= data variety


class TestDataVariety:
    @pytest.mark.parametrize("dt_s", [5.0, 30.0, 60.0])
    def test_reporting_intervals(self, tmp_path, dt_s):
        w = World()
        haul(w, V1, dt_s=dt_s)
        tr = loaded_to(w.truck(V2, "09:00", dt_s=dt_s))
        tr.drive(OPEN_SPOT).park(4).to("O1").park(15)
        w.manifest(V2)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V2): 1})
        assert dist_m(w, alerts.iloc[0], *OPEN_SPOT) < 60

    @pytest.mark.parametrize("coord_system", ["gcj02", "bd09"])
    def test_china_coordinate_systems(self, tmp_path, coord_system):
        w = World(coord_system=coord_system)
        haul(w, V1)
        tr = loaded_to(w.truck(V2, "09:00"))
        tr.drive(OPEN_SPOT).park(6).to("O1").park(15)
        w.manifest(V2)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V2): 1})
        assert dist_m(w, alerts.iloc[0], *OPEN_SPOT) < 60  # output is WGS-84

    def test_timezone_urumqi(self, tmp_path):
        w = World(timezone="Asia/Urumqi", anchor=(87.6, 43.8))
        tr = loaded_to(w.truck(V1, "08:00"))
        tr.drive(OPEN_SPOT).park(6).to("O1").park(15)
        w.manifest(V1, start="07:00", end="08:30")  # local times: +06:00
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert within(alerts.iloc[0]["start"], w.utc("08:20"), w.utc("08:45"))
        assert alerts.iloc[0]["start"] < pd.Timestamp("2026-03-02 02:50", tz="UTC")

    def test_timezone_berlin_dst_local_day(self, tmp_path):
        # 2026-03-29 is the spring DST switch in Berlin (UTC+1 → UTC+2 at 02:00).
        w = World(timezone="Europe/Berlin", anchor=(13.4, 52.5), day="2026-03-29")
        w.site_permits = {}
        for vid, start, spot in ((V1, "08:00", (3000, 800)), (V2, "10:00", (3040, 800)), (V3, "12:00", (3000, 840))):
            loaded_to(w.truck(vid, start)).drive(spot).park(6).to("DEP").park(10)
            w.manifest(vid, start="06:00", end="20:00")
        alerts = run(w, tmp_path)
        assert Counter(alerts["kind"]) == Counter({"illegal_dump": 3, "dump_hotspot": 1})
        first = alerts[(alerts["kind"] == "illegal_dump") & (alerts["vehicle_id"] == V1)].iloc[0]
        # 08:2x CEST = 06:2x UTC
        assert within(first["start"], pd.Timestamp("2026-03-29 06:18", tz="UTC"),
                      pd.Timestamp("2026-03-29 06:45", tz="UTC"))

    def test_sensors_for_some_trucks_half_load(self, tmp_path):
        w = World()
        s = w.truck(V1, "08:00", load="empty")
        s.park(5).to("O1").park(15, load_after="half").drive((5000, 0)).to("D1").park(10, load_after="empty")
        s.to("DEP").park(5)
        w.manifest(V1)
        d = w.truck(V2, "08:00", load="empty")
        loaded_to(d, sensor=True).drive(OPEN_SPOT).park(5, load_after="empty").drive((3000, 0), (5000, 0))
        d.to("D1").park(5).to("DEP").park(5)
        w.manifest(V2)
        haul(w, V3, "09:00")  # no sensor values at all
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V2): 1})

    def test_parquet_epoch_seconds_without_route_id(self, tmp_path):
        w = World()
        haul(w, V1, manifest=False)
        w.manifest(V1, route_id=None)
        tr = loaded_to(w.truck(V2, "09:00"))
        tr.drive(OPEN_SPOT).park(6).to("O1").park(15)
        w.manifest(V2, route_id=None)
        alerts = run(w, tmp_path, parquet=True, epoch=True)
        assert kinds(alerts) == Counter({("illegal_dump", V2): 1})
        assert within(alerts.iloc[0]["start"], w.utc("09:20"), w.utc("09:45"))


# ======================================================================= harder cases


class TestHarder:
    def test_sensor_truck_data_starts_loaded_then_dumps(self, tmp_path):
        # the load sensor says full from the first fix; it turns empty at an open stop
        w = World()
        tr = w.truck(V1, "08:00", at=(2000, 0), load="full")
        tr.drive((2500, 0), OPEN_SPOT).park(6, load_after="empty").to("DEP").park(10)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert dist_m(w, alerts.iloc[0], *OPEN_SPOT) < 60

    def test_drift_sigma_20m_during_dump_and_black_loading(self, tmp_path):
        w = World()
        black = (1500, 1500)
        a = w.truck(V1, "08:00")
        a.park(5).drive(black).park(20, sigma_m=20).drive((5000, 1500)).to("D1").park(10).to("DEP").park(5)
        b = loaded_to(w.truck(V2, "09:00"))
        b.drive(OPEN_SPOT).park(6, sigma_m=20).to("O1").park(15)
        w.manifest(V1)
        w.manifest(V2)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unpermitted_origin", V1): 1, ("illegal_dump", V2): 1})

    def test_one_truck_dumping_thrice_is_no_hotspot(self, tmp_path):
        w = World()
        tr = w.truck(V1, "07:00")
        for _ in range(3):
            loaded_to(tr).drive(OPEN_SPOT).park(6).to("DEP").park(10)
        w.manifest(V1)
        assert Counter(run(w, tmp_path)["kind"]) == Counter({"illegal_dump": 3})

    @pytest.mark.parametrize(("permit", "load_sensor"), [
        (("2020-01-01", "2025-12-31"), False),  # expired
        (("2027-01-01", "2030-12-31"), True),   # not yet valid
    ])
    def test_unloading_at_disposal_outside_its_permit(self, tmp_path, permit, load_sensor):
        # D2 is not permitted that day: unloading there is not a delivery to a permitted site
        w = World()
        w.site_permits["D2"] = permit
        tr = w.truck(V1, "08:00", load="empty" if load_sensor else None)
        tr.park(5).to("O1").park(15, load_after="full" if load_sensor else None)
        tr.drive((1000, 0), (5000, 2000)).to("D2").park(10, load_after="empty" if load_sensor else None)
        tr.to("DEP").park(5)
        w.manifest(V1, "O1", "D2", route_id=None)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert dist_m(w, alerts.iloc[0], *xy("D2")) < 80

    def test_loaded_truck_creeping_past_another_origin(self, tmp_path):
        # R1 runs 30 m from the fence of a working origin O3; a loaded truck queues
        # there in stop-and-go for 10 min after a refuel stop, then unloads at D1.
        w = World()
        w.extra_sites["O3"] = ("origin", 4000.0, 130.0)
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((2000, 0), (2000, 60)).park(12).drive((2000, 0), (3850, 0))
        tr.creep(10, step_m=15.0)
        tr.drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    @pytest.mark.parametrize("load_sensor", [False, True])
    def test_lift_glitch_at_red_light_then_tip_at_disposal(self, tmp_path, load_sensor):
        # one lift=1 reading during a 2-min red light; the real tip is at D1
        w = World()
        w.sensor_columns = True
        tr = w.truck(V1, "08:00", load="empty" if load_sensor else None)
        tr.park(5, lift=False).to("O1", lift=False)
        tr.park(15, lift=False, load_after="full" if load_sensor else None)
        tr.drive((2500, 0), lift=False).park(2, lift=True, lift_minutes=10 / 60)
        tr.drive((5000, 0), lift=False).to("D1", lift=False)
        tr.park(10, lift=True, load_after="empty" if load_sensor else None).to("DEP", lift=False).park(5, lift=False)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_sensor_black_loading_then_dump(self, tmp_path):
        w = World()
        black = (1500, 1500)
        tr = w.truck(V1, "08:00", load="empty")
        tr.park(5).drive(black).park(20, load_after="full").drive(OPEN_SPOT).park(6, load_after="empty")
        tr.to("DEP").park(10)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unpermitted_origin", V1): 1, ("illegal_dump", V1): 1})
        assert dist_m(w, alerts[alerts["kind"] == "illegal_dump"].iloc[0], *OPEN_SPOT) < 60
        assert dist_m(w, alerts[alerts["kind"] == "unpermitted_origin"].iloc[0], *black) < 60

    def test_loaded_truck_dark_until_disposal(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((2000, 0)).dark(20, to=(5950, 0)).park(10).to("DEP").park(5)
        w.manifest(V1)
        assert kinds(run(w, tmp_path)) == Counter({("gps_gap", V1): 1})

    def test_empty_truck_dark_on_the_road(self, tmp_path):
        w = World()
        tr = haul(w, V1)
        tr.drive((3000, -800)).dark(40, to=(1000, -800)).to("O1").park(15).drive((5000, 0)).to("D1").park(10)
        assert len(run(w, tmp_path)) == 0

    def test_refuel_then_depot_lunch_then_unload(self, tmp_path):
        # both innocent on their own, and together: the load reaches D2 after lunch
        # (manifest O1 → D2, no approved route between them: deviation not judged)
        w = World()
        tr = w.truck(V1, "10:00")
        tr.park(5).to("O1").park(15).drive((2000, -500)).park(15).to("DEP").park(60)
        tr.drive((5000, 2000)).to("D2").park(10).to("DEP").park(5)
        w.manifest(V1, "O1", "D2", route_id=None)
        assert len(run(w, tmp_path)) == 0

    def test_dump_then_depot_then_next_load(self, tmp_path):
        # the 2-hour roadside wait after the depot is no suspect: the dump came before
        w = World()
        tr = w.truck(V1, "10:00")
        tr.park(5).to("O1").park(15).drive((1500, -800)).park(8).to("DEP").park(60)
        tr.drive(OPEN_SPOT).park(120).to("O1").park(15).drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert dist_m(w, alerts.iloc[0], 1500, -800) < 60

    def test_stop_then_dark_inside_the_stop(self, tmp_path):
        # stopped 3 min, terminal off 20 min on the spot, 2 min more, back to O1
        w = World()
        tr = loaded_to(w.truck(V1, "08:00"))
        tr.drive(OPEN_SPOT).park(3).dark(20).park(2).to("O1").park(15)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1, ("gps_gap", V1): 1})
        assert dist_m(w, alerts[alerts["kind"] == "illegal_dump"].iloc[0], *OPEN_SPOT) < 60

    def test_route_corridor_m_is_used(self, tmp_path):
        # 230 m off R1: beyond its corridor_m = 100 plus the 100 m noise margin, though
        # inside the 150 m default plus the margin
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((1500, 0), (1700, 230), (3700, 230), (3900, 0), (5000, 0))
        tr.to("D1").park(10)
        w.manifest(V1)
        assert kinds(run(w, tmp_path)) == Counter({("route_deviation", V1): 1})

    def test_detour_in_gcj02(self, tmp_path):
        w = World(coord_system="gcj02")
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((2000, 0), (2500, 600), (3500, 600), (4000, 0), (5000, 0))
        tr.to("D1").park(10)
        haul(w, V2, "09:00")
        w.manifest(V1)
        assert kinds(run(w, tmp_path)) == Counter({("route_deviation", V1): 1})

    def test_manifest_of_a_truck_without_any_point(self, tmp_path):
        w = World()
        haul(w, V1, "08:00")
        w.manifest(V2, start="08:10", end="08:40")  # data run 08:00-08:56
        assert kinds(run(w, tmp_path)) == Counter({("manifest_not_executed", V2): 1})

    def test_two_dumps_and_a_refuel_stop_at_one_place_no_hotspot(self, tmp_path):
        spot = (3000.0, 70.0)  # a lay-by inside R1's corridor
        w = World()
        for vid, start in ((V1, "08:00"), (V2, "10:00")):
            loaded_to(w.truck(vid, start)).drive(spot).park(6).to("DEP").park(10)
            w.manifest(vid)
        tr = loaded_to(w.truck(V3, "12:00"))
        tr.drive(spot).park(15).drive((3000, 0), (5000, 0)).to("D1").park(10)
        w.manifest(V3)
        assert Counter(run(w, tmp_path)["kind"]) == Counter({"illegal_dump": 2})

    def test_load_sensor_glitch_while_parked(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00", load="empty")
        tr.park(5).to("O1").park(15, load_after="full").drive((5000, 0)).to("D1").park(10, load_after="empty")
        tr.drive(OPEN_SPOT).park(1).park(1.5, load_after="full")  # 45 s of "full": a glitch
        tr.load = "empty"
        tr.park(20).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_loaded_truck_slowly_through_another_origin(self, tmp_path):
        # R1 crosses a large origin O3 (600 m × 200 m); after a refuel stop a loaded
        # truck rolls through it at 5 km/h (7 min inside, never standing still)
        w = World()
        w.extra_sites["O3"] = ("origin", 4000.0, 0.0, 300.0)
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((2000, 0), (2000, 60)).park(12).drive((2000, 0), (3650, 0))
        tr.drive((4350, 0), v_kmh=5.0).drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_load_sensor_reports_late_after_leaving_origin(self, tmp_path):
        # the sensor says "full" only 100 s after the truck left O1; a 2-min red light
        # follows 20 s later: the load came from O1, not from the red light
        w = World()
        tr = w.truck(V1, "08:00", load="empty")
        tr.park(5).to("O1").park(15).drive((xy("O1")[0] + 200, 0))  # out of O1 and its buffer
        tr.drive((tr.x + 1000, 0))  # 100 s more at 36 km/h
        tr.load = "full"
        tr.drive((tr.x + 200, 0)).park(2).drive((5000, 0)).to("D1").park(10, load_after="empty")
        tr.to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    @pytest.mark.parametrize(("timezone", "anchor", "day"), [
        ("Asia/Urumqi", (87.6, 43.8), "2026-03-02"),
        ("Europe/Berlin", (13.4, 52.5), "2026-03-29"),  # the DST switch day
        ("America/Sao_Paulo", (-46.6, -23.5), "2026-03-02"),
    ])
    def test_naive_manifest_times_are_dataset_local(self, tmp_path, timezone, anchor, day):
        # the manifest covers 07:45-09:30 local; read in another zone it would not
        w = World(timezone=timezone, anchor=anchor, day=day)
        w.site_permits = {}
        haul(w, V1, "08:00", manifest=False)
        w.manifest(V1, start="07:45", end="09:30")
        haul(w, V2, "08:00", manifest=False)  # no manifest at all
        w.vehicles = [(V1, "true"), (V2, "true")]
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unmanifested_trip", V2): 1})
        a = alerts.iloc[0]
        assert within(a["start"], w.utc("08:08", day), w.utc("08:15", day))

    def test_lone_points_and_duplicates(self, tmp_path):
        w = World()
        haul(w, V1)
        w.truck(V2, "09:00", at=OPEN_SPOT).park(10 / 60)  # a single fix
        d = w.truck(V3, "09:00", at=OPEN_SPOT)
        d.park(1)
        d.rows.extend(d.rows)  # every row twice
        assert len(run(w, tmp_path)) == 0

    def test_red_light_next_to_another_disposal_site(self, tmp_path):
        # D3's fence is 100 m north of R1: a 3-min red light there (inside D3's 150 m
        # buffer, never inside D3) is no unloading; the load goes on to D1
        w = World()
        w.extra_sites["D3"] = ("disposal", 4000.0, 200.0)
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((4000, 0)).park(3).drive((5000, 0)).to("D1").park(10)
        tr.to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_dark_from_the_origin_gate(self, tmp_path):
        # the terminal goes off at O1's gate (inside its 50 m buffer) right after
        # loading; the truck reappears 25 min later on the road and goes back to O1
        w = World()
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((130, 0)).dark(25, to=(1500, 0)).to("O1").park(15)
        tr.drive((5000, 0)).to("D1").park(10)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1, ("gps_gap", V1): 1})
        assert dist_m(w, alerts[alerts["kind"] == "illegal_dump"].iloc[0], 130, 0) < 40

    def test_sensor_dark_from_the_origin_gate_comes_back_empty(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00", load="empty")
        tr.park(5).to("O1").park(15, load_after="full").drive((130, 0)).dark(25, to=(1500, 0))
        tr.load = "empty"
        tr.to("DEP").park(15)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1, ("gps_gap", V1): 1})

    @pytest.mark.parametrize("load_sensor", [False, True])
    def test_dark_when_leaving_disposal_and_origin(self, tmp_path, load_sensor):
        # terminal off at D1's gate after unloading (sensor says empty only on
        # reappearing), and again at O1's gate after loading (says full on reappearing)
        w = World()
        tr = w.truck(V1, "08:00", load="empty" if load_sensor else None)
        tr.park(5).to("O1").park(15).drive((130, 0)).dark(12, to=(3000, 0))
        if load_sensor:
            tr.load = "full"
        tr.drive((5000, 0)).to("D1").park(10).drive((5870, 0)).dark(15, to=(3000, -1000))
        if load_sensor:
            tr.load = "empty"
        tr.to("DEP").park(10)
        w.manifest(V1)
        # only the loaded dark spell is a gps_gap
        assert kinds(run(w, tmp_path)) == Counter({("gps_gap", V1): 1})

    def test_load_sensor_reports_empty_late_after_leaving_disposal(self, tmp_path):
        w = World()
        tr = w.truck(V1, "08:00", load="empty")
        tr.park(5).to("O1").park(15, load_after="full").drive((5000, 0)).to("D1").park(10)
        tr.drive((6000, -400), (4000, -400))  # 2.4 km, ~4 min after leaving D1
        tr.load = "empty"
        tr.drive((3800, -400)).park(2).to("DEP").park(5)
        w.manifest(V1)
        assert len(run(w, tmp_path)) == 0

    def test_loaded_overnight_in_depot_terminal_off_then_unload(self, tmp_path):
        w = World()
        tr = w.truck(V1, "16:30")
        tr.park(5).to("O1").park(15).to("DEP").park(20).dark(12 * 60).park(20)
        tr.drive((5000, -800)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1, start="16:00", end="10:00", end_day="2026-03-03", route_id=None)
        # the manifest names no route and O1 → D1 via the depot leaves R1: judged
        # against R1 (any route between the sites) → one deviation; no gap, no dump
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("route_deviation", V1): 1})

    def test_loaded_overnight_in_the_open_terminal_off(self, tmp_path):
        w = World()
        tr = w.truck(V1, "16:30")
        tr.park(5).to("O1").park(15).drive((3000, 0), (3000, 60)).park(20).dark(12 * 60).park(20)
        tr.drive((3000, 0), (5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1, start="16:00", end="10:00", end_day="2026-03-03")
        assert kinds(run(w, tmp_path)) == Counter({("gps_gap", V1): 1})
