"""Tests of routes.trips: site lookup, load sensor state, events and haul trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from detector_world import (
    X0,
    Truck,
    dataset,
    dump_trip,
    manifest,
    normal_trip,
    points_frame,
)

from haulwatch.routes.audit import AuditInputError, audit_partition, make_context
from haulwatch.routes.config import AuditConfig
from haulwatch.routes.trips import _longest_stop_inside, loaded_state


class TestLongestStopInside:
    def test_overlaps_are_clipped_to_the_event(self):
        t = np.arange(20, dtype=np.float64) * 10.0
        # events [0, 9] and [10, 19]; stops [2, 5] and [8, 14]
        out = _longest_stop_inside(np.array([0, 10]), np.array([9, 19]), np.array([8, 2]),
                                   np.array([14, 5]), t)
        # event 0: stop [2,5] = 30 s, stop [8,9] = 10 s; event 1: stop [10,14] = 40 s
        assert out.tolist() == [30.0, 40.0]

    def test_no_stops_or_events(self):
        t = np.arange(5, dtype=np.float64)
        assert _longest_stop_inside(np.array([0]), np.array([4]), np.empty(0, np.int64),
                                    np.empty(0, np.int64), t).tolist() == [0.0]
        assert _longest_stop_inside(np.empty(0, np.int64), np.empty(0, np.int64), np.array([0]),
                                    np.array([4]), t).tolist() == []


class TestLoadedState:
    def _frame(self, loads, t=None, codes=None):
        n = len(loads)
        t = np.arange(n) * 10.0 if t is None else np.asarray(t, float)
        codes = np.zeros(n, dtype=np.int64) if codes is None else np.asarray(codes)
        return pd.DataFrame({"load": pd.Series(loads, dtype="category")}), codes, t

    def test_readings_carried_forward_and_half_is_loaded(self):
        df, codes, t = self._frame(["empty"] * 20 + [None] * 5 + ["half"] * 20)
        loaded, has, _ = loaded_state(df, codes, t, n_vehicles=1, sensor_min_duration_s=60)
        assert has.tolist() == [True]
        assert loaded[:25].tolist() == [0.0] * 25
        assert loaded[25:].tolist() == [1.0] * 20

    def test_a_one_point_glitch_is_ignored(self):
        df, codes, t = self._frame(["empty"] * 30 + ["full"] + ["empty"] * 30)
        loaded, _, _ = loaded_state(df, codes, t, n_vehicles=1, sensor_min_duration_s=60)
        assert (loaded == 0.0).all()

    def test_two_vehicles_do_not_share_state(self):
        df, _, t = self._frame(["empty"] * 10 + ["full"] * 10 + [None] * 10 + ["full"] * 10)
        codes = np.array([0] * 20 + [1] * 20)
        loaded, has, _ = loaded_state(df, codes, t, n_vehicles=2, sensor_min_duration_s=60)
        # vehicle 1's sensor never changes: it tells nothing, the track decides
        assert has.tolist() == [True, False]
        assert loaded[:20].tolist() == [0.0] * 10 + [1.0] * 10
        assert np.isnan(loaded[20:30]).all()

    def test_glitches_first_and_last_runs_and_plain_strings(self):
        # vehicle 0: a 20 s 'full' first run (glitch: blank, nothing before it to carry),
        # then empty, a 30 s 'full' glitch between readings 'empty', then a short last
        # 'full' run, which is kept (nothing contradicts it); vehicle 1 starts afresh.
        loads = ["full"] * 2 + ["empty"] * 10 + [None, "full", None, "full"] + ["empty"] * 10 + ["FULL "] * 2
        loads += ["empty"] * 8 + ["full"] * 5
        codes = np.array([0] * 28 + [1] * 13)
        df, _, t = self._frame(loads)
        loaded, has, _ = loaded_state(df, codes, t, n_vehicles=2, sensor_min_duration_s=60)
        want = [np.nan] * 2 + [0.0] * 24 + [1.0] * 2 + [0.0] * 8 + [1.0] * 5
        np.testing.assert_array_equal(loaded, want)
        assert has.tolist() == [True, True]
        # the same readings as plain strings (not categorical) give the same states
        plain = pd.DataFrame({"load": pd.Series(loads, dtype=object)})
        np.testing.assert_array_equal(loaded_state(plain, codes, t, n_vehicles=2, sensor_min_duration_s=60)[0], want)

    def test_no_load_column(self):
        df = pd.DataFrame({"x": np.zeros(3)})
        loaded, has, lift = loaded_state(df, np.zeros(3, np.int64), np.arange(3.0), n_vehicles=1,
                                         sensor_min_duration_s=60)
        assert np.isnan(loaded).all() and not has.any() and not lift.any()


def _partition(points, manifests=None, config=None):
    ds = dataset(points, manifests)
    return audit_partition(points, make_context(ds), config or AuditConfig())


class TestTrips:
    def test_normal_day_gives_delivered_trips(self):
        a = Truck("浙A00001", seed=1)
        normal_trip(a, refuel=True)
        normal_trip(a)
        a.drive(0, -2000).dwell(1800)
        part = _partition(points_frame(a), [manifest("M1", "浙A00001")])
        trips = part.trips
        assert trips["status"].tolist() == ["delivered", "delivered"]
        assert trips["origin_site_id"].tolist() == ["O1", "O1"]
        assert trips["disposal_site_id"].tolist() == ["D1", "D1"]
        assert (trips["end"] > trips["start"]).all()
        assert part.rows.empty

    def test_dump_then_load_again_is_a_dumped_trip(self):
        a = Truck("浙A00001", seed=3)
        dump_trip(a)
        normal_trip(a)
        part = _partition(points_frame(a), [manifest("M1", "浙A00001")])
        assert part.trips["status"].tolist() == ["dumped", "delivered"]
        assert len(part.dumps) == 1
        assert part.dumps["x"].iloc[0] == pytest.approx(X0 + 2500, abs=10)

    def test_open_trip_at_data_end_raises_nothing(self):
        a = Truck("浙A00001", seed=4)
        a.drive(0, 0).dwell(900).drive(1500, 0).drive(2500, 800).dwell(600)
        part = _partition(points_frame(a), [manifest("M1", "浙A00001")])
        assert part.trips["status"].tolist() == ["open"]
        assert part.rows.empty

    def test_unsorted_input_gives_the_same_result_and_is_not_changed(self):
        a = Truck("浙A00001", seed=5)
        dump_trip(a)
        normal_trip(a)
        b = Truck("浙B00002", seed=6)
        normal_trip(b)
        pts = points_frame(a, b)
        shuffled = pts.sample(frac=1.0, random_state=3)
        before = shuffled.copy()
        p1 = _partition(pts, [manifest("M1", "浙A00001"), manifest("M2", "浙B00002")])
        p2 = _partition(shuffled, [manifest("M1", "浙A00001"), manifest("M2", "浙B00002")])
        pd.testing.assert_frame_equal(shuffled, before)
        cols = ["trip_id", "vehicle_id", "status", "start", "end"]
        pd.testing.assert_frame_equal(p1.trips[cols], p2.trips[cols])
        assert p1.rows["kind"].tolist() == p2.rows["kind"].tolist() == ["illegal_dump"]

    def test_two_vehicles_are_judged_apart(self):
        # B's track starts where A's dump happened: a joint track would mix them
        a = Truck("浙A00001", seed=7)
        dump_trip(a)
        normal_trip(a)
        b = Truck("浙B00002", x=2500, y=800, t_s=0, seed=8)
        b.dwell(900).drive(0, -2000).dwell(600)
        part = _partition(points_frame(a, b), [manifest("M1", "浙A00001"), manifest("M2", "浙B00002")])
        assert set(part.trips["vehicle_id"]) == {"浙A00001"}
        assert part.rows["vehicle_id"].tolist() == ["浙A00001"]

    def test_empty_points(self):
        a = Truck("浙A00001")
        pts = points_frame(a).iloc[0:0]
        part = _partition(pts)
        assert part.trips.empty and part.rows.empty and part.n_points == 0
        full = _partition(points_frame(normal_trip(Truck("浙A00001", seed=2))))
        assert list(part.trips.columns) == list(full.trips.columns)
        assert list(part.stops.columns) == list(full.stops.columns)

    def test_bad_points_are_refused(self):
        pts = points_frame(Truck("浙A00001").drive(100, 0))
        with pytest.raises(AuditInputError, match=r"lack column\(s\) \['x'\]"):
            _partition(pts.drop(columns="x"))
        naive = pts.assign(time=pts["time"].dt.tz_localize(None))
        with pytest.raises(AuditInputError, match="naive times"):
            _partition(naive)


def test_stuck_load_sensor_falls_back_to_the_track():
    a = Truck("浙S00001", sensors=True, seed=9)
    dump_trip(a)
    normal_trip(a)
    pts = points_frame(a).assign(load="full")  # the sensor says "full" all day
    part = _partition(pts, [manifest("M1", "浙S00001")])
    assert part.trips["status"].tolist() == ["dumped", "delivered"]
    assert part.trips["loaded_by"].tolist() == ["track", "track"]
    assert part.rows["kind"].tolist() == ["illegal_dump"]
