"""Tests of geo.stops.detect_stops (movingpandas TrajectoryStopDetector is the reference)."""

from __future__ import annotations

import warnings
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from haulwatch.geo.stops import STOP_COLUMNS, StopsInputError, detect_stops

T0 = pd.Timestamp("2026-03-02 00:00:00", tz="UTC")


def _frame(vehicle: str, t_s, x, y) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "vehicle_id": vehicle,
            "vehicle_key": vehicle,
            "time": T0 + pd.to_timedelta(np.asarray(t_s, dtype=float), unit="s"),
            "x": np.asarray(x, dtype=float),
            "y": np.asarray(y, dtype=float),
        }
    )


def _drive_stop_drive(vehicle: str = "A", stop_s: float = 600, offset_s: float = 0) -> pd.DataFrame:
    """Drive east 20 points at 100 m per 10 s, stay (±3 m) for stop_s, drive on."""
    t1 = np.arange(20) * 10.0
    x1 = np.arange(20) * 100.0
    n_stop = int(stop_s // 10)
    t2 = t1[-1] + 10 + np.arange(n_stop) * 10.0
    x2 = x1[-1] + 100 + 3 * np.sin(np.arange(n_stop))
    t3 = t2[-1] + 10 + np.arange(20) * 10.0
    x3 = x2[-1] + 100 + np.arange(20) * 100.0
    t = np.concatenate([t1, t2, t3]) + offset_s
    x = np.concatenate([x1, x2, x3])
    return _frame(vehicle, t, x, np.zeros_like(x))


def _random_track(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    xs, ys, ts = [], [], []
    x = y = t = 0.0
    while len(xs) < n:
        if rng.random() < 0.5:  # dwell with GPS noise
            for _ in range(int(rng.uniform(30, 900) / 10)):
                t += rng.uniform(8, 12)
                xs.append(x + rng.normal(0, 6))
                ys.append(y + rng.normal(0, 6))
                ts.append(t)
        else:  # drive at 2-12 m/s in one heading
            heading, speed = rng.uniform(0, 2 * np.pi), rng.uniform(2, 12)
            for _ in range(int(rng.uniform(5, 60))):
                dt = rng.uniform(8, 12)
                t += dt
                x += speed * dt * np.cos(heading)
                y += speed * dt * np.sin(heading)
                xs.append(x + rng.normal(0, 6))
                ys.append(y + rng.normal(0, 6))
                ts.append(t)
    return _frame("A", ts[:n], xs[:n], ys[:n])


def _covered_time(times: np.ndarray, ranges) -> np.ndarray:
    """Per point interval (i → i+1): inside one of the ranges? (both ends inside)."""
    inside = np.zeros(len(times), dtype=bool)
    for a, b in ranges:
        inside |= (times >= a) & (times <= b)
    return inside[:-1] & inside[1:]


class TestAgainstMovingpandas:
    @pytest.mark.parametrize("seed", [3, 11])
    def test_stop_time_agrees_both_ways(self, seed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import geopandas as gpd
            import movingpandas as mpd

        points = _random_track(1500, seed)
        ours = detect_stops(points, diameter_m=50, min_duration_s=120)

        gdf = gpd.GeoDataFrame(
            points.assign(t=points["time"].dt.tz_localize(None)).set_index("t"),
            geometry=gpd.points_from_xy(points["x"], points["y"]),
            crs="EPSG:32651",
        )
        traj = mpd.Trajectory(gdf, "vehicle_id")
        ref = mpd.TrajectoryStopDetector(traj).get_stop_time_ranges(
            max_diameter=50, min_duration=timedelta(seconds=120)
        )
        assert len(ref) > 5  # the generated track really has stops to compare

        times = points["time"].dt.tz_localize(None).to_numpy()
        dt = np.diff(times).astype("timedelta64[ms]").astype(float)
        m_ours = _covered_time(
            times, [(a.tz_localize(None).to_datetime64(), b.tz_localize(None).to_datetime64())
                    for a, b in zip(ours["start"], ours["end"], strict=True)]
        )
        m_ref = _covered_time(
            times, [(np.datetime64(r.t_0), np.datetime64(r.t_n)) for r in ref]
        )
        both = (dt * (m_ours & m_ref)).sum()
        assert both / (dt * m_ours).sum() >= 0.95
        assert both / (dt * m_ref).sum() >= 0.95


class TestDetectStops:
    def test_one_stop_found_with_its_window(self):
        points = _drive_stop_drive(stop_s=600)
        stops = detect_stops(points, diameter_m=50, min_duration_s=120)
        assert list(stops.columns) == list(STOP_COLUMNS)
        assert len(stops) == 1
        row = stops.iloc[0]
        # the dwell points are rows 20..79 (x ≈ 2000 m); the last approach point
        # (x=1900) is 100 m away so it is not part of the stop
        assert row["i_first"] == 20
        assert row["i_last"] == 79
        assert row["start"] == points["time"].iloc[20]
        assert row["end"] == points["time"].iloc[79]
        assert row["duration_s"] == pytest.approx(590.0)
        assert row["n_points"] == 60
        assert row["x"] == pytest.approx(2000.0, abs=3)
        assert row["stop_id"] == f"A:{int(points['time'].iloc[20].timestamp())}"

    def test_short_dwell_is_not_a_stop(self):
        points = _drive_stop_drive(stop_s=60)
        assert detect_stops(points, diameter_m=50, min_duration_s=120).empty

    def test_empty_input_gives_empty_frame_with_columns(self):
        empty = _frame("A", [], [], [])
        stops = detect_stops(empty, diameter_m=50, min_duration_s=120)
        assert stops.empty
        assert list(stops.columns) == list(STOP_COLUMNS)

    def test_two_vehicles_are_kept_apart(self):
        a = _drive_stop_drive("A", stop_s=300)
        b = _drive_stop_drive("B", stop_s=900, offset_s=5000)
        # B parks exactly where A's track ends: a joint track would merge them
        stops = detect_stops(pd.concat([a, b], ignore_index=True), diameter_m=50, min_duration_s=120)
        assert list(stops["vehicle_id"]) == ["A", "B"]
        assert stops["duration_s"].tolist() == pytest.approx([290.0, 890.0])

    def test_unsorted_input_gives_same_stops_and_positions_into_input(self):
        points = pd.concat(
            [_drive_stop_drive("A", 400), _drive_stop_drive("B", 700, 100)], ignore_index=True
        )
        sorted_stops = detect_stops(points, diameter_m=50, min_duration_s=120)
        shuffled = points.sample(frac=1.0, random_state=7)
        shuffled_reset = shuffled.reset_index(drop=True)
        stops = detect_stops(shuffled_reset, diameter_m=50, min_duration_s=120)
        cols = ["vehicle_id", "start", "end", "duration_s", "n_points"]
        pd.testing.assert_frame_equal(stops[cols], sorted_stops[cols])
        # i_first / i_last are positions in the frame as given
        assert (shuffled_reset["time"].iloc[stops["i_first"]].to_numpy() == stops["start"].to_numpy()).all()
        assert (shuffled_reset["time"].iloc[stops["i_last"]].to_numpy() == stops["end"].to_numpy()).all()

    def test_gap_with_both_ends_close_stays_in_the_stop(self):
        points = _drive_stop_drive(stop_s=300)
        # terminal dark for 20 min in the middle of the dwell, same place after
        dwell = points.index[(points["x"] - 2000).abs() < 10]
        mid = dwell[len(dwell) // 2]
        shifted = points.copy()
        shifted.loc[mid:, "time"] = shifted.loc[mid:, "time"] + pd.Timedelta(minutes=20)
        stops = detect_stops(shifted, diameter_m=50, min_duration_s=120)
        assert len(stops) == 1
        assert stops["duration_s"].iloc[0] == pytest.approx(290.0 + 1200.0)

    def test_gap_between_far_apart_points_is_not_a_stop(self):
        # two points 5 km apart, 30 min apart: not a stop, however long the gap
        t = np.concatenate([np.arange(10) * 10.0, 1890 + np.arange(10) * 10.0])
        x = np.concatenate([np.arange(10) * 100.0, 5000 + np.arange(10) * 100.0])
        stops = detect_stops(_frame("A", t, x, np.zeros_like(x)), diameter_m=50, min_duration_s=120)
        assert stops.empty

    def test_input_is_left_unchanged(self):
        points = _drive_stop_drive(stop_s=600).sample(frac=1.0, random_state=1)
        before = points.copy()
        detect_stops(points, diameter_m=50, min_duration_s=120)
        pd.testing.assert_frame_equal(points, before)

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"diameter_m": 0, "min_duration_s": 120}, "diameter_m"),
            ({"diameter_m": 50, "min_duration_s": -1}, "min_duration_s"),
            ({"diameter_m": float("nan"), "min_duration_s": 120}, "diameter_m"),
            ({"diameter_m": "50", "min_duration_s": 120}, "not a number"),
        ],
    )
    def test_bad_parameters_are_refused(self, kwargs, match):
        with pytest.raises(StopsInputError, match=match):
            detect_stops(_drive_stop_drive(), **kwargs)

    def test_missing_column_is_named(self):
        with pytest.raises(StopsInputError, match=r"\['x'\]"):
            detect_stops(_drive_stop_drive().drop(columns="x"), diameter_m=50, min_duration_s=120)

    def test_missing_coordinate_is_refused(self):
        points = _drive_stop_drive()
        points.loc[5, "y"] = np.nan
        with pytest.raises(StopsInputError, match=r"'y'.*row 5"):
            detect_stops(points, diameter_m=50, min_duration_s=120)
