"""ingest.limits: one place for the limits every entry point checks."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from haulwatch.errors import UserError
from haulwatch.ingest import limits as L  # noqa: N812


class TestCheckPlate:
    def test_good_plates_pass(self):
        assert L.check_plate("浙D12345") is None
        assert L.check_plate("浙D·A1234挂") is None

    @pytest.mark.parametrize("value, words", [
        (12345, "must be a string"), ({"a": 1}, "must be a string"), (None, "missing"),
        ("x" * 1_000_000, "too long"), ("\ud800", "lone surrogate"), ("浙\x00D1", "control"),
    ])
    def test_bad_plates_name_field_and_reason(self, value, words):
        field, reason = L.check_plate(value)
        assert field == "vehicle_id" and words in reason
        assert len(reason) < 200  # a snippet, never the whole value

    def test_length_limit_is_inclusive(self):
        assert L.check_plate("A" * L.PLATE_MAX_CHARS) is None
        assert L.check_plate("A" * (L.PLATE_MAX_CHARS + 1)) is not None

    def test_a_vin_is_a_plate(self):
        # JT/T 808 terminals of unplated vehicles register their 17-character VIN (ISO 3779)
        assert L.check_plate("LSVAU2180N2183294") is None
        assert L.check_plate("VIN:LSVAU2180N2183294") is not None       # 21: not a plate
        assert L.PLATE_MAX_CHARS == 20

    def test_column_form_gives_the_same_reasons(self):
        values = pd.Series(["浙D12345", None, "A" * 21, "浙\x00D1", "\ud800", 12345,
                            "LSVAU2180N2183294"], dtype=object)
        got = L.plate_problems(values)
        assert got[[0, 1, 5, 6]].tolist() == [None] * 4
        for i in (2, 3, 4):
            assert got[i] == L.check_plate(values[i])[1]

    def test_text_problems_of_ids(self):
        got = L.text_problems(["M" * 64, "M" * 65, "a\x01b", None], "manifest_id",
                              max_chars=L.ID_MAX_CHARS)
        assert got[0] is None and got[3] is None
        assert got[1] == "too long: 65 characters, at most 64 allowed"
        assert "control character" in got[2]


class TestCheckId:
    @pytest.mark.parametrize("value", ["ID-3f2a9c0e11aa22bb", "N1", "m-abc123", "站点_1", "a.b:c~d"])
    def test_good_ids(self, value):
        assert L.check_id(value, "alert_id") is None

    @pytest.mark.parametrize("value", ["a/b", "a b", "a?b", "a#b", "a%2F", "", "x" * 65, 7])
    def test_bad_ids(self, value):
        problem = L.check_id(value, "alert_id")
        assert problem is not None and problem[0] == "alert_id"

    def test_huge_id_reason_is_short(self):
        _, reason = L.check_id("x" * 100_000, "alert_id")
        assert "100,000" in reason and len(reason) < 100


class TestTimes:
    def test_range_bounds(self):
        assert L.check_time(datetime(1990, 1, 1, tzinfo=timezone.utc), "t") is None
        end = datetime(2100, 1, 1, tzinfo=timezone.utc)
        assert L.check_time(end - timedelta(microseconds=1), "t") is None
        assert L.check_time(end, "t") is not None
        assert L.check_time(datetime(1989, 12, 31, 23, 59, tzinfo=timezone.utc), "t") is not None

    def test_naive_refused(self):
        assert "zone" in L.check_time(datetime(2026, 3, 2), "start")[1]

    def test_ns_mask_matches_scalar_bounds(self):
        ns = pd.to_datetime(["1989-12-31T23:59:59Z", "1990-01-01T00:00:00Z",
                             "2099-12-31T23:59:59Z", "2100-01-01T00:00:00Z"]).as_unit("ns").asi8
        assert L.times_in_range_ns(ns).tolist() == [False, True, True, False]

    def test_text_year_screen(self):
        got = L.text_year_out_of_range(
            ["9999-12-31T23:59:59", "0001-01-01", "2262-04-12T00:00:00", "-5000-01-01",
             "2026-03-02T08:00:00", " 2026-03-02", 1700000000, None, "garbage"])
        assert got.tolist() == [True, True, True, True, False, False, False, False, False]


class TestCoords:
    def test_scalar(self):
        assert L.check_lon_lat(120.6, 30.0) is None
        assert L.check_lon_lat(120.6, 999)[0] == "lat"
        assert L.check_lon_lat(-181, 0)[0] == "lon"
        assert L.check_lon_lat(float("nan"), 0)[0] == "lon"
        assert L.check_lon_lat("120", 0)[0] == "lon"
        assert L.check_lon_lat(True, 0)[0] == "lon"

    def test_vector(self):
        got = L.coords_in_range(np.array([0, 180, 181, np.nan]), np.array([90, -90, 0, 0]))
        assert got.tolist() == [True, True, False, False]


def test_text_and_require():
    assert L.check_text("n" * L.TEXT_MAX_CHARS, "note") is None
    field, reason = L.check_text("n" * 5_000_000, "note")
    assert field == "note" and "5,000,000" in reason and len(reason) < 100
    assert L.check_text(None, "note", required=True)[0] == "note"
    with pytest.raises(L.LimitError, match="alert_id: ") as info:
        L.require(L.check_id("a/b", "alert_id"))
    assert isinstance(info.value, UserError) and info.value.field == "alert_id"
    L.require(None)


def test_snippet_is_bounded_and_encodable():
    s = L.snippet("\ud800" + "x" * 100)
    s.encode("utf-8")
    assert len(s) < 80 and "101 characters" in s
