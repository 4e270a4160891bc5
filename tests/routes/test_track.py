"""Tests of routes.track: the detectors' kernel helpers."""

from __future__ import annotations

import numpy as np

from haulwatch.routes.track import iso_seconds_z, km, local_day, local_hhmm, minutes, vehicle_range


def test_iso_seconds_z_drops_the_fraction():
    got = iso_seconds_z(np.array([0.0, 1.9999, -0.5, 1_700_000_000.75, 1_700_000_039.999999]))
    assert got == ["1970-01-01T00:00:00Z", "1970-01-01T00:00:01Z", "1969-12-31T23:59:59Z",
                   "2023-11-14T22:13:20Z", "2023-11-14T22:13:59Z"]
    assert iso_seconds_z(np.array([])) == []


def test_local_time_helpers_use_the_zone():
    # 2026-03-01 16:30:00Z is 00:30 the next day in Shanghai (UTC+8, no DST)
    t = 1772382600.0
    assert local_hhmm(t, "Asia/Shanghai") == "00:30"
    assert local_hhmm(t, "UTC") == "16:30"
    assert local_day(np.array([t]), "Asia/Shanghai").tolist() == ["2026-03-02"]
    assert local_day(np.array([]), "UTC").tolist() == []


def test_vehicle_range_and_text():
    codes = np.array([0, 0, 2, 2, 2, 5])
    assert vehicle_range(codes, 2) == (2, 4)
    assert vehicle_range(codes, 3) == (5, 4)  # absent: empty range
    assert km(850.4) == "850 m" and km(1320.0) == "1.3 km" and km(float("nan")) == "an unknown distance"
    assert minutes(-5) == "0 min" and minutes(90) == "2 min"
