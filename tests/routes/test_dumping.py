"""Tests of routes.dumping: illegal_dump and unpermitted_origin, and the innocent stops."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from detector_world import Truck, dataset, dump_trip, manifest, normal_trip, points_frame
from shapely.geometry import box

from haulwatch.routes.audit import audit

PLATE = "浙A00001"


def _alerts(*trucks, manifests=None, extra_sites=None):
    pts = points_frame(*trucks)
    ms = manifests if manifests is not None else [manifest(f"M{k}", t.plate) for k, t in enumerate(trucks)]
    return audit(dataset(pts, ms, extra_sites=extra_sites)).alerts


@pytest.mark.parametrize("sensors", [False, True])
class TestInnocentStops:
    def test_light_queue_refuel_lunch_and_empty_parking_raise_nothing(self, sensors):
        a = Truck(PLATE, sensors=sensors, seed=11)
        normal_trip(a, refuel=True, queue=True, light=True)
        a.drive(0, -2000).dwell(2400)              # lunch in the depot
        normal_trip(a)
        a.drive(2500, -900).dwell(2400)            # empty, parked at the roadside 40 min
        normal_trip(a)
        a.drive(0, -2000).dwell(3600)              # night in the depot
        assert _alerts(a).empty

    def test_long_congestion_while_loaded_then_unload_raises_nothing(self, sensors):
        a = Truck(PLATE, sensors=sensors, seed=12)
        a.drive(0, 0).dwell(900, load="full").drive(1200, 0)
        a.drive(1300, 0, speed_mps=0.3)            # crawling 100 m in ~6 min
        a.drive(5000, 0).dwell(600, load="empty")
        a.drive(0, -2000).dwell(1800)
        assert _alerts(a).empty


@pytest.mark.parametrize("sensors", [False, True])
class TestIllegalDump:
    def test_dump_then_back_to_origin(self, sensors):
        a = Truck(PLATE, sensors=sensors, seed=13)
        normal_trip(a)
        dump_trip(a, at=(2500, 800), minutes=8)
        normal_trip(a)
        alerts = _alerts(a)
        assert alerts["kind"].tolist() == ["illegal_dump"]
        al = alerts.iloc[0]
        assert al["severity"] == "high"
        assert (al["end"] - al["start"]).total_seconds() == pytest.approx(470, abs=20)
        ev = json.loads(al["evidence"])
        assert ev["distance_to_permitted_site_m"] == pytest.approx(2500, abs=150)
        assert ev["then"] == ("sensor" if sensors else "origin")
        assert ev["manifest_ids"] == ["M0"]
        assert ev["decided_by"] == ("sensor" if sensors else "track")
        assert 2 <= len(ev["track"]) <= 40
        assert "stopped 8 min" in al["summary"]

    def test_dump_then_depot_for_the_night(self, sensors):
        a = Truck(PLATE, sensors=sensors, seed=14)
        a.drive(0, 0).dwell(900, load="full").drive(1500, 0).drive(1500, -1000)
        a.dwell(420, load="empty", lift_s=60 if sensors else 0)
        a.drive(0, -2000).dwell(7200)
        alerts = _alerts(a)
        assert alerts["kind"].tolist() == ["illegal_dump"]
        assert json.loads(alerts["evidence"].iloc[0])["then"] == ("sensor" if sensors else "depot")

    def test_longest_candidate_is_the_dump(self, sensors):
        a = Truck(PLATE, sensors=False, seed=15)  # track only: the rule is "the longest"
        a.drive(0, 0).dwell(900).drive(1500, 0).dwell(240)     # 4 min (e.g. a long light)
        a.drive(2500, 800).dwell(720).drive(1500, 0).drive(0, 0)
        normal_trip(a)
        alerts = _alerts(a)
        assert alerts["kind"].tolist() == ["illegal_dump"]
        # the true dwell (720 s) within one fix interval
        assert json.loads(alerts["evidence"].iloc[0])["stop_duration_s"] == pytest.approx(720, abs=15)

    def test_dark_dump_gives_dump_and_gap(self, sensors):
        a = Truck(PLATE, sensors=sensors, seed=16)
        a.drive(0, 0).dwell(900, load="full").drive(1500, 0)
        a.dark(1500)
        a.load = "empty"
        a.drive(1500, 50).drive(0, 0)
        normal_trip(a)
        alerts = _alerts(a)
        assert sorted(alerts["kind"]) == ["gps_gap", "illegal_dump"]
        dump = alerts[alerts["kind"] == "illegal_dump"].iloc[0]
        gap = alerts[alerts["kind"] == "gps_gap"].iloc[0]
        assert dump["start"] == gap["start"]
        assert json.loads(dump["evidence"])["went_dark"] is True


@pytest.mark.parametrize("sensors", [False, True])
class TestUnpermittedOrigin:
    def test_black_site_loading_then_disposal(self, sensors):
        a = Truck(PLATE, sensors=sensors, seed=17)
        normal_trip(a)
        a.drive(2500, -1500).dwell(900, load="full")   # 黑工地: no site here
        a.drive(5000, 0).dwell(600, load="empty")
        a.drive(0, -2000).dwell(1800)
        alerts = _alerts(a)
        assert alerts["kind"].tolist() == ["unpermitted_origin"]
        al = alerts.iloc[0]
        assert al["severity"] == "high"
        assert al["site_id"] == ""
        assert (al["end"] - al["start"]).total_seconds() == pytest.approx(890, abs=30)

    def test_expired_origin(self, sensors):
        old = ("O8", "origin", box(-100, 1900, 100, 2100), "2025-01-01", "2025-12-31")
        a = Truck(PLATE, sensors=sensors, seed=18)
        a.drive(0, 2000).dwell(900, load="full").drive(5000, 0).dwell(600, load="empty")
        a.drive(0, -2000).dwell(1800)
        alerts = _alerts(a, manifests=[manifest("M1", PLATE, origin="O8")], extra_sites=[old])
        assert alerts["kind"].tolist() == ["unpermitted_origin"]
        assert alerts["site_id"].iloc[0] == "O8"
        assert alerts["severity"].iloc[0] == "medium"


def test_input_dataset_is_left_unchanged():
    a = Truck(PLATE, seed=19)
    dump_trip(a)
    normal_trip(a)
    pts = points_frame(a).sample(frac=1.0, random_state=2)
    before = pts.copy()
    alerts = audit(dataset(pts, [manifest("M1", PLATE)])).alerts
    pd.testing.assert_frame_equal(pts, before)
    assert alerts["kind"].tolist() == ["illegal_dump"]


@pytest.mark.parametrize(
    ("permit_from", "permit_to", "alert"),
    [
        ("2026-03-02", "2026-03-02", False),   # valid that local day (loading at 08:00 local)
        ("2026-03-03", None, True),             # not yet valid
        (None, "2026-03-01", True),             # expired the day before
        (pd.Timestamp("2026-03-01 16:00", tz="UTC"), pd.Timestamp("2026-03-02 16:00", tz="UTC"), False),
        (pd.Timestamp("2026-03-02 16:00", tz="UTC"), None, True),   # reader form: local midnight 03-03
    ],
)
def test_origin_permit_dates_are_local_days(permit_from, permit_to, alert):
    site = ("O8", "origin", box(-100, 1900, 100, 2100), permit_from, permit_to)
    a = Truck(PLATE, seed=18)
    a.drive(0, 2000).dwell(900).drive(5000, 0).dwell(600)
    alerts = _alerts(a, manifests=[manifest("M1", PLATE, origin="O8")], extra_sites=[site])
    assert alerts["kind"].tolist() == (["unpermitted_origin"] if alert else [])


def test_quick_tip_at_disposal_after_a_refuel_is_not_a_dump():
    # sensor truck: refuel 300 m before the disposal site, then a 50 s tip inside it
    # (shorter than unload_min_duration_s): the sensor change makes it an unloading visit
    a = Truck(PLATE, sensors=True, seed=24)
    for _ in range(2):
        a.drive(0, 0).dwell(900, load="full").drive(4600, 0).dwell(480)
        a.drive(5000, 0, speed_mps=15).dwell(50, load="empty", lift_s=20)
    a.drive(0, -2000).dwell(1800)
    alerts = _alerts(a)
    assert alerts.empty, alerts["summary"].tolist()


def test_dark_dump_inside_a_stop_ends_when_the_truck_reappears():
    # stops, goes dark 20 min, reappears at the same place and waits 3 min more
    # (e.g. at a light): the dump window is the dark spell, not the later wait
    a = Truck(PLATE, seed=25)
    a.drive(0, 0).dwell(900).drive(2500, 800).dwell(120).dark(1200).dwell(180)
    a.drive(1500, 0).drive(0, 0)
    normal_trip(a)
    alerts = _alerts(a)
    dump = alerts[alerts["kind"] == "illegal_dump"].iloc[0]
    gap = alerts[alerts["kind"] == "gps_gap"].iloc[0]
    assert dump["end"] == gap["end"]
    assert (dump["end"] - dump["start"]).total_seconds() == pytest.approx(110 + 1210, abs=15)
    ev = json.loads(dump["evidence"])
    assert ev["went_dark"] is True and ev["dark_s"] == pytest.approx(1210, abs=1)
    assert "went dark for 20 min" in dump["summary"]
