"""Tests for ``routes.trajectories.trips_to_trajectories`` (trips as movingpandas trajectories)."""

from __future__ import annotations

import pandas as pd
import pytest
from pyproj import Geod

from haulwatch.errors import UserError
from haulwatch.routes.trajectories import TrajectoryInputError, trips_to_trajectories

T0 = pd.Timestamp("2026-03-02T01:00:00Z")


def _s(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def _points() -> pd.DataFrame:
    """Two vehicles, rows shuffled; A also has a point an hour later (after a gap)."""
    rows = [
        ("B", 10, 120.60, 30.01),
        ("A", 20, 120.52, 30.00),
        ("A", 0, 120.50, 30.00),
        ("A", 10, 120.51, 30.00),
        ("B", 0, 120.60, 30.00),
        ("B", 20, 120.60, 30.02),
        ("A", 3600, 121.00, 30.00),
    ]
    return pd.DataFrame(
        {
            "vehicle_key": pd.Categorical([r[0] for r in rows]),
            "time": [_s(r[1]) for r in rows],
            "lon": [r[2] for r in rows],
            "lat": [r[3] for r in rows],
            "speed_kmh": [float(i) for i in range(len(rows))],
        }
    )


def _trips() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "trip_id": ["B:1", "A:1", "C:1", "A:2"],
            "vehicle_key": ["B", "A", "C", "A"],
            "vehicle_id": ["浙B0002", "浙A0001", "浙C0003", "浙A0001"],
            "status": ["delivered", "dumped", "delivered", "open"],
            "start": [_s(0), _s(0), _s(0), _s(3000)],
            "end": [_s(20), _s(15), _s(5000), _s(4000)],
        }
    )


def _by_id(collection) -> dict:
    return {t.id: t for t in collection.trajectories}


def test_each_trip_is_its_vehicles_points_in_its_window():
    got = _by_id(trips_to_trajectories(_points(), _trips()))
    # C has no points; A:2 has one point (a trajectory needs two)
    assert set(got) == {"A:1", "B:1"}
    a = got["A:1"]
    assert a.obj_id == "浙A0001"
    assert list(a.df["time_utc"]) == [_s(0), _s(10)]  # 20 s is after its end
    assert list(a.df.geometry.x) == [120.50, 120.51]
    b = got["B:1"]
    assert list(b.df["time_utc"]) == [_s(0), _s(10), _s(20)]  # the end is inclusive
    assert list(b.df["speed_kmh"]) == [4.0, 0.0, 5.0]  # point columns follow their rows
    assert set(b.df["status"]) == {"delivered"}
    assert b.crs.to_epsg() == 4326


def test_length_is_geodesic_metres():
    a = _by_id(trips_to_trajectories(_points(), _trips()))["A:1"]
    _, _, expected_m = Geod(ellps="WGS84").inv(120.50, 30.0, 120.51, 30.0)
    assert a.get_length() == pytest.approx(expected_m, abs=0.5)


def test_times_are_naive_in_the_given_zone():
    a = _by_id(trips_to_trajectories(_points(), _trips()))["A:1"]
    assert a.df.index[0] == pd.Timestamp("2026-03-02T09:00:00")  # Asia/Shanghai = UTC+8
    utc = _by_id(trips_to_trajectories(_points(), _trips(), timezone="UTC"))["A:1"]
    assert utc.df.index[0] == pd.Timestamp("2026-03-02T01:00:00")


def test_trips_csv_text_times_give_the_same_trajectories():
    trips = _trips()
    as_text = trips.assign(
        start=trips["start"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        end=trips["end"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    one = _by_id(trips_to_trajectories(_points(), trips))
    two = _by_id(trips_to_trajectories(_points(), as_text))
    assert set(one) == set(two)
    for key in one:
        assert list(one[key].df["time_utc"]) == list(two[key].df["time_utc"])


def test_min_points_leaves_out_short_trips():
    got = _by_id(trips_to_trajectories(_points(), _trips(), min_points=3))
    assert set(got) == {"B:1"}


def test_inputs_are_left_unchanged():
    points, trips = _points(), _trips()
    p0, t0 = points.copy(), trips.copy()
    trips_to_trajectories(points, trips)
    pd.testing.assert_frame_equal(points, p0)
    pd.testing.assert_frame_equal(trips, t0)


def test_empty_inputs_give_an_empty_collection():
    assert len(trips_to_trajectories(_points(), _trips().iloc[:0])) == 0
    assert len(trips_to_trajectories(_points().iloc[:0], _trips())) == 0


def test_without_vehicle_id_the_object_is_the_vehicle_key():
    got = _by_id(trips_to_trajectories(_points(), _trips().drop(columns="vehicle_id")))
    assert got["A:1"].obj_id == "A"


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda p, t: (p.drop(columns="lat"), t), "points: required column.*'lat'"),
        (lambda p, t: (p, t.drop(columns="end")), "trips: required column.*'end'"),
        (lambda p, t: (p, t.assign(start="not a time")), "trips.start"),
        (lambda p, t: (p.assign(time=None), t), "points.time: missing time"),
    ],
)
def test_bad_frames_are_user_errors(change, match):
    points, trips = change(_points(), _trips())
    with pytest.raises(TrajectoryInputError, match=match) as exc:
        trips_to_trajectories(points, trips)
    assert isinstance(exc.value, UserError) and isinstance(exc.value, ValueError)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"min_points": 1}, "min_points=1 is not allowed"),
        ({"min_points": 2.5}, "min_points=2.5 is not allowed"),
        ({"timezone": "Mars/Olympus"}, "Mars/Olympus"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(TrajectoryInputError, match=match):
        trips_to_trajectories(_points(), _trips(), **kwargs)
