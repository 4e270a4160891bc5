"""Tests for haulwatch.drone.mission: items, missions, the 1e7 conversion."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from pymavlink import mavutil

from haulwatch.drone.mission import (
    Mission,
    MissionError,
    MissionItem,
    deg_to_e7,
    e7_to_deg,
)

MAV = mavutil.mavlink
REL = MAV.MAV_FRAME_GLOBAL_RELATIVE_ALT


def _mission(**kw):
    items = (
        MissionItem(MAV.MAV_CMD_NAV_TAKEOFF, REL, lat_deg=30.7, lon_deg=121.02, alt_m=60.0),
        MissionItem(MAV.MAV_CMD_NAV_WAYPOINT, REL, lat_deg=30.71, lon_deg=121.03, alt_m=60.0),
        MissionItem(MAV.MAV_CMD_NAV_RETURN_TO_LAUNCH, MAV.MAV_FRAME_MISSION),
    )
    args = dict(
        home_lat_deg=30.7,
        home_lon_deg=121.02,
        home_alt_m=12.5,
        items=items,
        target_lat_deg=30.71,
        target_lon_deg=121.03,
        dock_site_id="N1",
        alert_id="A1",
        meta={"duration_s": 300.0},
    )
    args.update(kw)
    return Mission(**args)


class TestDegToE7:
    def test_rounds_instead_of_truncating(self):
        # 1.23456789 * 1e7 = 12345678.9: truncation would give ...78
        assert deg_to_e7(1.23456789) == 12345679
        assert deg_to_e7(-1.23456789) == -12345679

    def test_float_noise_does_not_lose_the_last_digit(self):
        # 34.0676418 * 1e7 is 340676417.99999994 in binary floating point
        assert deg_to_e7(34.0676418) == 340676418
        assert deg_to_e7(-34.0676418) == -340676418

    def test_round_trip_within_half_a_unit(self):
        rng = np.random.default_rng(7)
        values = np.concatenate([rng.uniform(-180, 180, 500), [0.0, 90.0, -90.0, 180.0]])
        back = np.array([e7_to_deg(deg_to_e7(v)) for v in values])
        assert np.max(np.abs(back - values)) <= 0.5e-7 + 1e-12

    def test_returns_python_int(self):
        assert type(deg_to_e7(np.float64(10.5))) is int

    @pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
    def test_non_finite_refused(self, bad):
        with pytest.raises(MissionError, match="finite"):
            deg_to_e7(bad)

    def test_beyond_int32_refused(self):
        with pytest.raises(MissionError, match="int32"):
            deg_to_e7(215.0)

    def test_e7_to_deg(self):
        assert e7_to_deg(-1234567890) == pytest.approx(-123.456789, abs=1e-12)


class TestMissionItem:
    def test_defaults_and_properties(self):
        item = MissionItem(MAV.MAV_CMD_NAV_WAYPOINT, REL, lat_deg=30.1234567, lon_deg=121.7654321)
        assert item.params == (0.0, 0.0, 0.0, 0.0)
        assert item.autocontinue is True
        assert item.x_e7 == 301234567
        assert item.y_e7 == 1217654321
        assert item.command_name == "NAV_WAYPOINT"
        assert item.has_position

    def test_do_command_has_no_position(self):
        item = MissionItem(MAV.MAV_CMD_DO_SET_ROI_NONE, MAV.MAV_FRAME_MISSION)
        assert not item.has_position
        assert item.command_name == "DO_SET_ROI_NONE"

    def test_frozen(self):
        item = MissionItem(MAV.MAV_CMD_NAV_WAYPOINT, REL)
        with pytest.raises(dataclasses.FrozenInstanceError):
            item.alt_m = 10.0  # type: ignore[misc]

    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"lat_deg": 90.5}, "lat_deg"),
            ({"lon_deg": -181.0}, "lon_deg"),
            ({"param2": math.nan}, "param2"),
            ({"alt_m": math.inf}, "alt_m"),
        ],
    )
    def test_bad_values_refused(self, kw, match):
        with pytest.raises(MissionError, match=match):
            MissionItem(MAV.MAV_CMD_NAV_WAYPOINT, REL, **kw)

    @pytest.mark.parametrize("command", [True, -1, 16.0, "16"])
    def test_bad_command_refused(self, command):
        with pytest.raises(MissionError, match="command"):
            MissionItem(command, REL)

    def test_values_coerced_to_float(self):
        item = MissionItem(MAV.MAV_CMD_NAV_LOITER_TURNS, REL, 2, 0, 50, 0, 30, 121, 40)
        assert isinstance(item.param1, float) and isinstance(item.lat_deg, float)


class TestMission:
    def test_wire_items_put_home_at_seq_zero(self):
        m = _mission()
        wire = m.wire_items()
        assert len(wire) == m.count == len(m.items) + 1
        home = wire[0]
        assert home.command == MAV.MAV_CMD_NAV_WAYPOINT
        assert home.frame == MAV.MAV_FRAME_GLOBAL  # home altitude is AMSL
        assert (home.lat_deg, home.lon_deg, home.alt_m) == (30.7, 121.02, 12.5)
        assert wire[1:] == list(m.items)

    def test_items_list_becomes_tuple(self):
        m = _mission(items=list(_mission().items))
        assert isinstance(m.items, tuple)

    def test_meta_not_compared_and_hashable(self):
        a, b = _mission(meta={"x": 1}), _mission(meta={"x": 2})
        assert a == b
        assert hash(a) == hash(b)
        assert a != _mission(alert_id="other")

    def test_meta_is_copied(self):
        meta = {"duration_s": 1.0}
        m = _mission(meta=meta)
        meta["duration_s"] = 99.0
        assert m.meta["duration_s"] == 1.0

    def test_bad_item_refused(self):
        with pytest.raises(MissionError, match=r"items\[1\]"):
            _mission(items=(_mission().items[0], "not an item"))

    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"home_lat_deg": 91.0}, "home_lat_deg"),
            ({"target_lon_deg": 200.0}, "target_lon_deg"),
            ({"home_alt_m": math.nan}, "home_alt_m"),
        ],
    )
    def test_bad_positions_refused(self, kw, match):
        with pytest.raises(MissionError, match=match):
            _mission(**kw)

    def test_empty_mission_has_home_only(self):
        m = _mission(items=())
        assert m.count == 1 and len(m.wire_items()) == 1
