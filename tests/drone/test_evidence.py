"""haulwatch.drone.evidence on hand-made records (the flown case is in test_fly_mission)."""

from __future__ import annotations

import pytest

from haulwatch.drone.evidence import flight_evidence, track_geojson
from haulwatch.drone.flight import FlightRecord


def test_failed_flight_without_track():
    record = FlightRecord(mission_id="m-1", alert_id="a-1")
    record.finish("failed", "battery 20% is below the 40% needed to arm")
    ev = flight_evidence(record)
    assert ev["track"]["geometry"] is None and ev["track"]["properties"]["points"] == 0
    assert ev["photos"] == {"type": "FeatureCollection", "features": []}
    assert ev["history"]["text"] == (
        "无人机巡查失败：0 张照片，航迹 0 点 (battery 20% is below the 40% needed to arm)"
    )
    assert ev["history"]["at"] == record.ended_at


def test_track_keeps_order_and_altitude():
    record = FlightRecord(track=[[1.0, 30.7, 121.0, 0.0], [2.0, 30.701, 121.001, 12.5]])
    feature = track_geojson(record)
    assert feature["geometry"]["coordinates"] == [[121.0, 30.7, 0.0], [121.001, 30.701, 12.5]]
    assert feature["properties"]["max_alt_rel_m"] == 12.5
    assert feature["properties"]["t_start_s"] == 1.0 and feature["properties"]["t_end_s"] == 2.0


def test_bad_input():
    with pytest.raises(TypeError, match="FlightRecord"):
        flight_evidence([1, 2])  # type: ignore[arg-type]
