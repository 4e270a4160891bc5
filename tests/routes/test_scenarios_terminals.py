"""Red-team scenarios from real terminals and operations (issue 12).

Like ``test_scenarios.py``: tiny scripted datasets of :mod:`scenario_world` (its own
sites and route, nothing from the synthetic fleet), audited through ``audit_folder``;
the expected alerts are derived by hand from the scripts and docs/detection.md.
Conditions: service roads beside the route, real detours, urban-canyon noise and
multipath jumps, frozen fixes, sparse terminals, fast and rolling dumps, two
terminals on one truck, large origins with gate queues, night shifts across
midnight, dark dumps that end back in the origin, and the alert fields.

Layout (scenario_world): origin O1 (0, 0), disposal D1 (6 km, 0), route R1 along
y = 0 with a 100 m corridor, depot DEP (3 km, -1.5 km). Local times on 2026-03-02.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scenario_world import World

from haulwatch.routes.audit import audit_folder
from haulwatch.routes.trips import frozen_fixes, merge_split_stops, trim_moving_ends

V1, V2 = "浙B20001", "浙B20002"
FIELD = (3000.0, 800.0)  # 800 m north of route R1, far from every site
SPUR = (3000.0, 0.0)  # where the field track leaves the route


def run(world: World, tmp_path, **kw) -> pd.DataFrame:
    return audit_folder(world.write(tmp_path / "ds", **kw)).alerts


def kinds(alerts: pd.DataFrame) -> Counter:
    return Counter(zip(alerts["kind"], alerts["vehicle_id"], strict=True))


def dist_m(world: World, alert: pd.Series, x: float, y: float) -> float:
    lon, lat = world.lonlat(x, y)
    dx = (float(alert["lon"]) - lon) * 111320.0 * math.cos(math.radians(lat))
    dy = (float(alert["lat"]) - lat) * 110540.0
    return math.hypot(dx, dy)


def loaded(tr, *, sensor: bool = False):
    """Depot → O1, load 15 min, leave along R1 to x = 2 km."""
    tr.park(5).to("O1").park(15, load_after="full" if sensor else None)
    return tr.drive((1000, 0), (2000, 0))


def field_dump(tr, minutes: float, *, sensor: bool = False, lift: bool | None = None):
    """From the route at x = 3 km up a field track to FIELD, tip, and back the same way."""
    tr.drive(SPUR, FIELD, v_kmh=20)
    tr.park(minutes, load_after="empty" if sensor else None, lift=lift)
    return tr.drive(SPUR, v_kmh=20)


def noisy(tr, t0_s: float, t1_s: float, sigma_m: float, rng) -> None:
    """Urban canyon: add noise of ``sigma_m`` to the fixes in [t0, t1] (script seconds)."""
    for k, row in enumerate(tr.rows):
        if t0_s <= row[0] <= t1_s:
            dx, dy = rng.normal(0.0, sigma_m, 2)
            tr.rows[k] = (row[0], row[1] + dx, row[2] + dy, *row[3:])


def jump(tr, at_s: float, n: int, dx: float, dy: float) -> None:
    """Multipath: the ``n`` fixes from ``at_s`` on are thrown ``(dx, dy)`` off."""
    idx = [k for k, row in enumerate(tr.rows) if row[0] >= at_s][:n]
    for k in idx:
        row = tr.rows[k]
        tr.rows[k] = (row[0], row[1] + dx, row[2] + dy, *row[3:])


def freeze(tr, minutes: float, to: tuple[float, float]):
    """A frozen terminal: the last fix repeated (speed 0) while the truck drives to ``to``."""
    last = tr.rows[-1]
    n = round(minutes * 60 / tr.dt_s)
    for _ in range(n):
        tr.t_s += tr.dt_s
        tr.rows.append((tr.t_s, last[1], last[2], 0.0, tr.load, last[5]))
    tr.x, tr.y = to
    return tr


# ================================================================ route deviation


class TestServiceRoadsAndDetours:
    def test_service_road_inside_the_corridor_is_no_detour(self, tmp_path):
        # 2 km on a frontage road 90 m beside R1 (corridor 100 m), canyon noise σ 20 m:
        # fixes stray past the corridor edge for minutes, never far
        w = World(seed=11)
        tr = loaded(w.truck(V1, "08:00"))
        t0 = tr.t_s
        tr.drive((2100, 90), (4100, 90), (4200, 0))
        noisy(tr, t0, tr.t_s, 20.0, np.random.default_rng(3))
        tr.drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        assert kinds(run(w, tmp_path)) == Counter()

    def test_real_detour_alerts_once_at_its_farthest_fix(self, tmp_path):
        # 300 m north for 2 km (about 4 min at 30 km/h): a detour, farthest at y = 300
        w = World(seed=12)
        tr = loaded(w.truck(V1, "08:00"))
        tr.drive((2200, 300), (3000, 300), v_kmh=30).drive((3800, 320), (4000, 0), v_kmh=30)
        tr.drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("route_deviation", V1): 1})
        al = alerts.iloc[0]
        assert al["manifest_id"] == "M001"
        assert dist_m(w, al, 3800, 320) < 60  # the farthest fix, not the first one off

    def test_multipath_jumps_make_no_deviation(self, tmp_path):
        # three fixes (30 s) thrown 250 m north on the loaded leg, twice
        w = World(seed=13)
        tr = loaded(w.truck(V1, "08:00"))
        t_mid = tr.t_s
        tr.drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        jump(tr, t_mid + 60, 3, 0.0, 250.0)
        jump(tr, t_mid + 300, 2, 120.0, -280.0)
        w.manifest(V1)
        assert kinds(run(w, tmp_path)) == Counter()


# ================================================================ dwells, dumps


class TestDwellsAndDumps:
    def test_a_noisy_fix_does_not_split_a_dump_and_the_summary_says_its_length(self, tmp_path):
        # a 13-minute dump with one 150 m multipath fix in the middle, then back to O1
        w = World(seed=21)
        tr = loaded(w.truck(V1, "08:00"))
        tr.drive(SPUR, FIELD, v_kmh=20)
        t0 = tr.t_s
        tr.park(13)
        t1 = tr.t_s - tr.dt_s
        jump(tr, t0 + 400, 1, 150.0, 0.0)
        tr.drive(SPUR, v_kmh=20).drive((0, 0)).park(15)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        al = alerts.iloc[0]
        ev = json.loads(al["evidence"])
        assert abs(ev["stop_duration_s"] - (t1 - t0)) <= tr.dt_s
        assert "13 min" in al["summary"]
        assert dist_m(w, al, *FIELD) < 60
        assert al["manifest_id"] == "M001"

    def test_the_dump_is_the_dead_end_stop_not_a_longer_roadside_wait(self, tmp_path):
        # loaded: 15 min at the kerb on the way (drives on), then 6 min up a field
        # track and back the same way, then loads again at O1: the field is the dump
        w = World(seed=22)
        tr = loaded(w.truck(V1, "08:00"))
        tr.drive((2500, 20)).park(15).drive((2600, 0))
        field_dump(tr, 6)
        tr.drive((0, 0)).park(15)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert dist_m(w, alerts.iloc[0], *FIELD) < 60

    @pytest.mark.parametrize("dt_s", [10.0, 30.0])
    def test_fast_dump_between_red_lights(self, tmp_path, dt_s):
        # a 1.5-minute tip up a field track; three 2-minute red lights on the way,
        # each longer than the tip
        w = World(seed=23)
        tr = loaded(w.truck(V1, "08:00", dt_s=dt_s))
        for x in (2300, 2600):
            tr.drive((x, 0)).park(2, sigma_m=2)
        field_dump(tr, 1.5)
        tr.drive((1500, 0)).park(2, sigma_m=2).drive((0, 0)).park(15)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert dist_m(w, alerts.iloc[0], *FIELD) < 60

    @pytest.mark.parametrize("v_kmh", [3.0, 8.0])
    def test_rolling_dump_with_the_lift_raised(self, tmp_path, v_kmh):
        # creeping along a field edge (3 km/h: 2.5 min; 8 km/h: ~1 min, never within
        # the stop diameter for a minute) with the body up, load full → half → empty;
        # then back to O1
        w = World(seed=24)
        tr = loaded(w.truck(V1, "08:00", load="empty"), sensor=True)
        tr.drive(SPUR, FIELD, v_kmh=20, lift=False)
        t0 = tr.t_s
        tr.load = "half"
        tr.drive((FIELD[0] + 125, FIELD[1]), v_kmh=v_kmh, lift=False)
        t1 = tr.t_s
        tr.rows = [(*r[:5], 1.0) if t0 <= r[0] < t1 else r for r in tr.rows]  # body raised
        tr.load = "empty"
        tr.drive(SPUR, v_kmh=20, lift=False).drive((0, 0), lift=False).park(15, load_after="full", lift=False)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        al = alerts.iloc[0]
        assert dist_m(w, al, FIELD[0] + 62, FIELD[1]) < 90
        assert json.loads(al["evidence"])["lift_raised"] is True
        t_start = w.utc("08:00") + pd.Timedelta(seconds=t0 - tr.rows[0][0])
        assert abs((al["start"] - t_start).total_seconds()) <= 3 * tr.dt_s

    def test_frozen_fixes_are_no_stop(self, tmp_path):
        # loaded: the terminal freezes 9 min while the truck drives 4 km on; the dump is a
        # 5-minute stop the truck drives through (no turning back), then back to O1
        w = World(seed=25)
        tr = loaded(w.truck(V1, "08:00"))
        freeze(tr, 9, to=(4000, -600))
        tr.drive((4000, -300), (3000, 800), v_kmh=30).park(5).drive((2000, 800), (0, 0)).park(15)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert dist_m(w, alerts.iloc[0], 3000, 800) < 60

    def test_sparse_terminal_dump(self, tmp_path):
        # a 120 s terminal: a 10-minute dump is 5-6 fixes
        w = World(seed=26)
        tr = loaded(w.truck(V1, "08:00", dt_s=120.0))
        field_dump(tr, 10).drive((0, 0)).park(15)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
        assert dist_m(w, alerts.iloc[0], *FIELD) < 60


# ================================================================ devices, sites, time


class TestTerminalsSitesNights:
    def _script(self, tr, dump: bool):
        loaded(tr)
        if dump:
            field_dump(tr, 8).drive((0, 0)).park(15)
        else:
            tr.drive((5000, 0)).to("D1").park(10).to("DEP").park(5)

    @pytest.mark.parametrize("dump", [False, True])
    def test_two_terminals_on_one_truck(self, tmp_path, dump):
        # the positioning and the video terminal send the same plate, 4 s apart, each
        # with its own noise: one truck, one trip, at most one alert
        w = World(seed=31)
        a = w.truck(V1, "08:00")
        b = w.truck(V1, "08:00")
        b.t_s += 4.0
        self._script(a, dump)
        self._script(b, dump)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        if dump:
            assert kinds(alerts) == Counter({("illegal_dump", V1): 1})
            ev = json.loads(alerts.iloc[0]["evidence"])
            assert abs(ev["stop_duration_s"] - 8 * 60) <= 20
        else:
            assert kinds(alerts) == Counter()

    def test_large_origin_with_a_gate_queue(self, tmp_path):
        # O3: 600 m wide; the truck queues empty 8 min 120 m outside the gate, loads
        # inside, waits loaded 5 min by the exit, hauls to D1 under a manifest
        w = World(seed=32)
        w.extra_sites["O3"] = ("origin", 0.0, -3000.0, 300.0)
        tr = w.truck(V1, "08:00")
        tr.park(5).drive((0, -2780)).park(8).drive((200, -3050)).park(15).drive((20, -2920)).park(5)
        tr.drive((0, -2700), (6000, -2700)).to("D1").park(10).to("DEP").park(5)
        w.manifest(V1, origin="O3", route_id=None)
        assert kinds(run(w, tmp_path)) == Counter()

    def test_night_shift_across_midnight(self, tmp_path):
        # loads at O1 23:30-23:45, unloads at D1 around 00:05 the next day, under a
        # 20:00-06:00 manifest: no alert; the truck is not registered: one
        # unregistered_vehicle, on the day it loaded (docs: per local day of loading)
        w = World(seed=33)
        w.vehicles = [(V2, "true")]
        tr = w.truck(V1, "23:20")
        tr.park(5).to("O1").park(15).drive((5000, 0)).to("D1").park(10).to("DEP").park(30)
        w.manifest(V1, start="20:00", end="06:00", end_day="2026-03-03")
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unregistered_vehicle", V1): 1})
        al = alerts.iloc[0]
        assert al["start"].tz_convert("Asia/Shanghai").day == 2

    @pytest.mark.parametrize("sensor", [False, True])
    def test_dark_dump_ending_in_the_origin(self, tmp_path, sensor):
        # loaded, goes dark by the field for 25 min, reappears standing in O1 (sensor
        # half then full, never empty), loads, hauls to D1: the load of the first trip
        # was dumped in the dark
        w = World(seed=34)
        tr = loaded(w.truck(V1, "08:00", load="empty" if sensor else None), sensor=sensor)
        tr.drive(SPUR, (3000, 400), v_kmh=20)
        tr.dark(25, to=(20.0, 10.0))
        if sensor:
            tr.load = "half"
        tr.park(10, load_after="full" if sensor else None)
        tr.drive((5000, 0)).to("D1").park(10, load_after="empty" if sensor else None).to("DEP").park(5)
        w.manifest(V1)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("illegal_dump", V1): 1, ("gps_gap", V1): 1})
        dump = alerts[alerts["kind"] == "illegal_dump"].iloc[0]
        assert dist_m(w, dump, 3000, 400) < 60
        assert set(alerts["manifest_id"]) == {"M001"}

    def test_unmanifested_trip_points_at_the_loading_place(self, tmp_path):
        w = World(seed=35)
        tr = w.truck(V1, "08:00")
        tr.park(5).to("O1").park(15).drive((5000, 0)).to("D1").park(10).to("DEP").park(5)
        alerts = run(w, tmp_path)
        assert kinds(alerts) == Counter({("unmanifested_trip", V1): 1})
        assert dist_m(w, alerts.iloc[0], 0, 0) < 60


# ================================================================ the helpers themselves


def _stops(rows):
    return pd.DataFrame(rows, columns=["i_first", "i_last", "x", "y", "duration_s", "n_points",
                                       "start", "end"])


class TestHelpers:
    def test_merge_split_stops(self):
        t = np.arange(12, dtype=float) * 10.0
        x = np.zeros(12)
        y = np.zeros(12)
        x[5] = 150.0  # one noisy fix between two pieces of one dwell
        codes = np.zeros(12, dtype=np.int64)
        stops = _stops([(0, 4, 0.0, 0.0, 40.0, 5, 0, 40), (6, 11, 0.0, 0.0, 50.0, 6, 60, 110)])
        before = stops.copy()
        out = merge_split_stops(stops, codes, t, x, y, diameter_m=100.0)
        pd.testing.assert_frame_equal(stops, before)  # input unchanged
        assert out[["i_first", "i_last"]].values.tolist() == [[0, 11]]
        assert out["duration_s"].tolist() == [110.0]
        # two vehicles: never merged across them
        codes2 = np.r_[np.zeros(5, np.int64), np.ones(7, np.int64)]
        assert len(merge_split_stops(stops, codes2, t, x, y, diameter_m=100.0)) == 2
        # far apart or long apart: two stops
        far = stops.assign(x=[0.0, 400.0])
        assert len(merge_split_stops(far, codes, t, x, y, diameter_m=100.0)) == 2
        assert len(merge_split_stops(stops, codes, t * 100, x, y, diameter_m=100.0)) == 2
        assert merge_split_stops(stops.iloc[0:0], codes, t, x, y, diameter_m=100.0).empty

    def test_frozen_fixes(self):
        # 5 identical fixes then 2.4 km further 10 s later: stale repeats
        t = np.arange(8, dtype=float) * 10.0
        x = np.array([0.0, 100.0, 100.0, 100.0, 100.0, 100.0, 2500.0, 2600.0])
        y = np.zeros(8)
        codes = np.zeros(8, dtype=np.int64)
        stale = frozen_fixes(codes, t, x, y, max_speed_kmh=150.0)
        assert stale.tolist() == [False, False, True, True, True, True, False, False]
        # the truck leaves from the spot: it really stood (a terminal holding its fix)
        x2 = x.copy()
        x2[6:] = [120.0, 200.0]
        assert not frozen_fixes(codes, t, x2, y, max_speed_kmh=150.0).any()
        # the repeats of another vehicle do not count
        codes2 = np.r_[np.zeros(4, np.int64), np.ones(4, np.int64)]
        assert frozen_fixes(codes2, t, x, y, max_speed_kmh=150.0).sum() <= 2
        assert not frozen_fixes(codes[:0], t[:0], x[:0], y[:0], max_speed_kmh=150.0).any()

    def test_trim_moving_ends(self):
        t = np.arange(10, dtype=float) * 10.0
        x = np.zeros(10)
        y = np.zeros(10)
        speed = np.array([20.0, 15.0, 0.0, 0.5, 0.0, 0.0, 0.3, 0.0, 12.0, 30.0])
        stops = _stops([(0, 9, 0.0, 0.0, 90.0, 10, 0, 90)])
        out = trim_moving_ends(stops, t, x, y, speed, min_duration_s=30.0)
        assert out[["i_first", "i_last"]].values.tolist() == [[2, 7]]
        assert out["duration_s"].tolist() == [50.0]
        assert trim_moving_ends(stops, t, x, y, speed, min_duration_s=60.0).empty
        assert trim_moving_ends(stops, t, x, y, None, min_duration_s=30.0) is stops


# ================================================================ batch and live agree


@pytest.mark.parametrize("sensors", ["all", "none"])
def test_live_replay_equals_batch_with_twin_terminals_and_frozen_fixes(tmp_path, sensors):
    # a fleet whose trucks carry second terminals, freeze, and drive urban canyons:
    # pushed to the live engine in 40-minute slices, it gives the batch audit's alerts
    from test_live import assert_same_alerts

    from haulwatch.ingest.dataset import read_dataset
    from haulwatch.ingest.prepare import prepare
    from haulwatch.ingest.synthetic import generate
    from haulwatch.routes.audit import audit
    from haulwatch.routes.live import LiveAuditor

    generate(tmp_path, trucks=8, days=1, seed=18, sensors=sensors, violation_rate=0.3,
             bad_row_fraction=0.0, duplicate_fraction=0.0,
             conditions=["twin_devices", "frozen_fixes", "urban_canyons", "fast_dumps"])
    meta = json.loads((tmp_path / "truth_meta.json").read_text())
    raw = read_dataset(tmp_path)
    dataset = prepare(raw)
    batch = audit(dataset).alerts
    assert len(batch) >= 3
    assert (pd.read_csv(tmp_path / "truth.csv")["kind"] == "innocent_frozen_fix").any()
    live = LiveAuditor(dataset)
    ordered = raw.tracks.sort_values("time", kind="stable")
    for _, chunk in ordered.groupby(ordered["time"].dt.floor("40min"), sort=True):
        live.push(chunk)
    assert_same_alerts(batch, live.alerts)
    assert meta["twin_device_vehicles"]  # the fleet has a truck with two terminals
