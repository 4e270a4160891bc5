"""Tests for haulwatch.geo.clean.drop_teleports."""

import numpy as np
import pandas as pd
import pytest

from haulwatch.geo.clean import drop_teleports

T0 = pd.Timestamp("2024-05-01T00:00:00Z")


def track(vehicle, xs, ys, step_s=10, t0=T0):
    n = len(xs)
    return pd.DataFrame({
        "vehicle_key": [vehicle] * n,
        "time": [t0 + pd.Timedelta(seconds=step_s * i) for i in range(n)],
        "x": np.asarray(xs, dtype=float),
        "y": np.asarray(ys, dtype=float),
    })


def straight(vehicle, n=10, speed_ms=10.0, step_s=10):
    xs = np.arange(n) * speed_ms * step_s
    return track(vehicle, xs, np.zeros(n), step_s)


class TestDropTeleports:
    def test_single_outlier_in_the_middle(self):
        pts = straight("A")
        pts.loc[4, "y"] = 5000.0           # 5 km off for one fix, 10 s apart
        kept, rejected = drop_teleports(pts)
        assert np.flatnonzero(rejected).tolist() == [4]
        assert (kept == ~rejected).all()

    def test_clean_track_untouched(self):
        kept, _ = drop_teleports(straight("A"))
        assert kept.all()

    def test_real_fast_leg_is_not_a_teleport(self):
        # The truck moves fast to a new place and stays there: prev→next is not plausible.
        pts = track("A", [0, 100, 200, 5000, 5100, 5200], [0] * 6)
        kept, _ = drop_teleports(pts)
        assert kept.all()

    def test_hairpin_below_max_speed(self):
        # Parked truck, one fix 500 m away, 30 s apart: 60 km/h is possible, but going
        # out and straight back at that average is not.
        pts = track("A", [0, 0, 0, 500, 0, 0, 0], [0] * 7, step_s=30)
        _, rejected = drop_teleports(pts)
        assert np.flatnonzero(rejected).tolist() == [3]
        kept, _ = drop_teleports(pts, max_reversal_speed_kmh=None)
        assert kept.all()

    def test_slow_out_and_back_is_real(self):
        # 500 m down a dead end and back, two minutes each way: 15 km/h, kept.
        pts = track("A", [0, 0, 500, 0, 0], [0] * 5, step_s=120)
        kept, _ = drop_teleports(pts)
        assert kept.all()

    def test_first_and_last_points(self):
        pts = straight("A")
        pts.loc[0, "y"] = -8000.0
        pts.loc[9, "y"] = 8000.0
        _, rejected = drop_teleports(pts)
        assert np.flatnonzero(rejected).tolist() == [0, 9]

    def test_two_bad_fixes_in_a_row(self):
        pts = straight("A", n=12)
        pts.loc[5, "y"] = 6000.0
        pts.loc[6, "y"] = 6050.0
        _, rejected = drop_teleports(pts)
        assert np.flatnonzero(rejected).tolist() == [5, 6]

    def test_jitter_below_min_jump_kept(self):
        pts = track("A", [0, 0, 150, 0, 0], [0] * 5, step_s=1)   # 150 m in 1 s = 540 km/h
        kept, _ = drop_teleports(pts, min_jump_m=300)
        assert kept.all()
        _, rejected = drop_teleports(pts, min_jump_m=100)
        assert np.flatnonzero(rejected).tolist() == [2]

    def test_vehicle_boundaries_cut_pairs(self):
        a = straight("A", n=5)
        b = straight("B", n=5)
        b["y"] += 50_000.0                  # B is far from A: the boundary is no jump
        kept, _ = drop_teleports(pd.concat([a, b], ignore_index=True))
        assert kept.all()

    def test_gap_is_not_a_teleport(self):
        # 3 km in a 10-minute GPS gap is 18 km/h: plausible.
        pts = track("A", [0, 100, 3000, 3100], [0] * 4)
        pts.loc[2:, "time"] += pd.Timedelta(minutes=10)
        kept, _ = drop_teleports(pts)
        assert kept.all()

    def test_unsorted_input_masks_align_with_rows(self):
        pts = straight("A")
        pts.loc[4, "y"] = 5000.0
        shuffled = pts.sample(frac=1.0, random_state=3).reset_index(drop=True)
        _, rejected = drop_teleports(shuffled)
        assert shuffled.loc[rejected, "y"].tolist() == [5000.0]

    def test_two_vehicles_interleaved(self):
        a = straight("A")
        a.loc[3, "y"] = 4000.0
        b = straight("B")
        both = pd.concat([a, b]).sort_values("time", kind="stable").reset_index(drop=True)
        _, rejected = drop_teleports(both)
        assert both.loc[rejected, ["vehicle_key", "y"]].values.tolist() == [["A", 4000.0]]

    def test_lon_lat_without_projection(self):
        lon = 121.0 + np.arange(8) * 0.001
        lat = np.full(8, 31.0)
        lat[3] = 31.1                       # 11 km away for one fix
        pts = pd.DataFrame({"vehicle_id": ["A"] * 8,
                            "time": [T0 + pd.Timedelta(seconds=10 * i) for i in range(8)],
                            "lon": lon, "lat": lat})
        _, rejected = drop_teleports(pts)
        assert np.flatnonzero(rejected).tolist() == [3]

    def test_empty_and_single(self):
        kept, rejected = drop_teleports(straight("A").iloc[:0])
        assert kept.size == 0 and rejected.size == 0
        kept, _ = drop_teleports(straight("A").iloc[:1])
        assert kept.tolist() == [True]

    def test_input_left_unchanged(self):
        pts = straight("A")
        pts.loc[4, "y"] = 5000.0
        before = pts.copy()
        drop_teleports(pts)
        pd.testing.assert_frame_equal(pts, before)

    @pytest.mark.parametrize("kwargs, msg", [
        ({"max_speed_kmh": 0}, "max_speed_kmh must be a positive number"),
        ({"max_speed_kmh": float("nan")}, "max_speed_kmh must be a positive number"),
        ({"min_jump_m": -1}, "min_jump_m must be a number >= 0"),
        ({"max_passes": 0}, "max_passes must be an integer >= 1"),
        ({"max_reversal_speed_kmh": -3}, "max_reversal_speed_kmh must be a positive number"),
    ])
    def test_bad_parameters(self, kwargs, msg):
        with pytest.raises(ValueError, match=msg):
            drop_teleports(straight("A"), **kwargs)

    def test_missing_columns(self):
        with pytest.raises(ValueError, match="lack column"):
            drop_teleports(pd.DataFrame({"vehicle_key": ["A"], "time": [T0]}))
