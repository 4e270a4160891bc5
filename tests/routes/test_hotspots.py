"""Tests of routes.hotspots: dump places of several trucks close together on one day."""

from __future__ import annotations

import pandas as pd
import pytest

from haulwatch.routes.hotspots import hotspot_alerts

T = pd.Timestamp("2026-03-02 02:00", tz="UTC")


def _dumps(rows):
    df = pd.DataFrame(rows, columns=["vehicle_id", "x", "y", "hours"])
    df["vehicle_key"] = df["vehicle_id"]
    df["start"] = T + pd.to_timedelta(df["hours"], unit="h")
    df["end"] = df["start"] + pd.Timedelta(minutes=8)
    df["lon"] = 120.6 + df["x"] / 1e5
    df["lat"] = 30.0 + df["y"] / 1e5
    return df.drop(columns="hours")


def _run(df, **kw):
    args = {"hotspot_radius_m": 150, "hotspot_min_vehicles": 3, "timezone": "Asia/Shanghai", **kw}
    return hotspot_alerts(df, **args)


class TestHotspots:
    def test_three_trucks_chained_within_radius(self):
        # A–B 120 m, B–C 120 m, A–C 240 m: single linkage joins them
        out = _run(_dumps([("A", 0, 0, 0), ("B", 120, 0, 1), ("C", 240, 0, 3)]))
        assert len(out) == 1
        row = out.iloc[0]
        assert row["kind"] == "dump_hotspot" and row["vehicle_id"] == ""
        assert row["start"] == T and row["end"] == T + pd.Timedelta(hours=3, minutes=8)
        assert row["lon"] == pytest.approx(120.6 + 120 / 1e5)
        assert row["evidence"]["vehicles"] == ["A", "B", "C"]

    def test_one_truck_dumping_three_times_is_not_a_hotspot(self):
        out = _run(_dumps([("A", 0, 0, 0), ("A", 10, 0, 1), ("A", 20, 0, 2), ("B", 30, 0, 3)]))
        assert out.empty

    def test_far_apart_or_other_day_is_not_a_hotspot(self):
        far = _dumps([("A", 0, 0, 0), ("B", 400, 0, 1), ("C", 800, 0, 2)])
        assert _run(far).empty
        # 02:00 UTC + 20 h = next local day for the third truck
        days = _dumps([("A", 0, 0, 0), ("B", 10, 0, 1), ("C", 20, 0, 20)])
        assert _run(days).empty

    def test_unsorted_and_two_clusters(self):
        rows = [("A", 0, 0, 0), ("D", 5000, 0, 0), ("B", 50, 0, 1), ("E", 5050, 0, 1),
                ("C", 100, 0, 2), ("F", 5100, 0, 2)]
        out = _run(_dumps(rows).sample(frac=1.0, random_state=1))
        assert sorted(len(e["vehicles"]) for e in out["evidence"]) == [3, 3]

    def test_empty_and_bad_parameters(self):
        assert _run(_dumps([])).empty
        with pytest.raises(ValueError, match="hotspot_radius_m"):
            _run(_dumps([]), hotspot_radius_m=0)
        with pytest.raises(ValueError, match="hotspot_min_vehicles"):
            _run(_dumps([]), hotspot_min_vehicles=1)

    def test_input_unchanged(self):
        df = _dumps([("A", 0, 0, 0), ("B", 120, 0, 1), ("C", 240, 0, 3)])
        before = df.copy()
        _run(df)
        pd.testing.assert_frame_equal(df, before)
