"""Tests of routes.gaps: gps_gap only for a loaded truck outside depots."""

from __future__ import annotations

import numpy as np
import pytest
from detector_world import Truck, dataset, manifest, normal_trip, points_frame

from haulwatch.routes.audit import audit
from haulwatch.routes.gaps import find_gaps

PLATE = "浙A00001"


class TestFindGaps:
    def test_gaps_within_a_vehicle_only(self):
        codes = np.array([0, 0, 0, 1, 1, 1])
        t = np.array([0.0, 10, 700, 1000, 1010, 2000])
        before, after = find_gaps(codes, t, gap_max_s=600)
        assert before.tolist() == [1, 4]
        assert after.tolist() == [2, 5]

    def test_exactly_the_threshold_is_not_a_gap(self):
        before, _ = find_gaps(np.zeros(2, np.int64), np.array([0.0, 600.0]), gap_max_s=600)
        assert before.size == 0

    def test_empty(self):
        before, after = find_gaps(np.array([], np.int64), np.array([]), gap_max_s=600)
        assert before.size == after.size == 0

    @pytest.mark.parametrize("bad", [0, -1, float("nan")])
    def test_bad_threshold(self, bad):
        with pytest.raises(ValueError, match="gap_max_s"):
            find_gaps(np.zeros(2, np.int64), np.array([0.0, 1.0]), gap_max_s=bad)


def _alerts(truck):
    return audit(dataset(points_frame(truck), [manifest("M1", truck.plate)])).alerts


class TestGapAlerts:
    def test_loaded_gap_then_delivery_is_one_gps_gap(self):
        a = Truck(PLATE, seed=21)
        a.drive(0, 0).dwell(900).drive(1500, 0).dark(900).drive(2500, 0).drive(5000, 0).dwell(600)
        a.drive(0, -2000).dwell(1200)
        alerts = _alerts(a)
        assert alerts["kind"].tolist() == ["gps_gap"]
        al = alerts.iloc[0]
        assert (al["end"] - al["start"]).total_seconds() == pytest.approx(910, abs=1)
        assert al["severity"] == "medium"

    def test_short_dropout_is_not_a_gap(self):
        a = Truck(PLATE, seed=22)
        a.drive(0, 0).dwell(900).drive(1500, 0).dark(100).drive(5000, 0).dwell(600)
        assert _alerts(a).empty

    def test_gap_while_empty_or_in_the_depot_is_not_an_alert(self):
        a = Truck(PLATE, seed=23)
        normal_trip(a)
        a.drive(2000, -300).dark(1200).drive(0, -2000)      # empty, dark on the road
        a.dwell(600).dark(3600).dwell(600)                  # parked in the depot, terminal off
        assert _alerts(a).empty
