"""Tests for haulwatch.ingest.plates."""

import pandas as pd
import pytest

from haulwatch.ingest.plates import normalize_plate


class TestNormalizePlate:
    @pytest.mark.parametrize(
        "plate",
        ["浙F·A1234", "浙f a1234", "浙FA1234", "浙F-A1234", "浙Ｆ・Ａ１２３４", " 浙F A 1234\t", "浙F－A1234"],
    )
    def test_spellings_share_one_key(self, plate):
        assert normalize_plate(plate) == "浙FA1234"

    def test_different_plates_stay_different(self):
        assert normalize_plate("浙FA1234") != normalize_plate("浙FA1235")
        assert normalize_plate("沪A12345") != normalize_plate("浙A12345")

    def test_missing_stays_missing(self):
        assert normalize_plate(None) is None
        assert normalize_plate(float("nan")) is None

    def test_series_keeps_index_and_missing(self):
        ser = pd.Series(["浙f·a1234", None, "苏E 0001"], index=[10, 20, 30], name="vehicle_id")
        out = normalize_plate(ser)
        assert list(out.index) == [10, 20, 30]
        assert out.name == "vehicle_id"
        assert out[10] == "浙FA1234"
        assert pd.isna(out[20])
        assert out[30] == "苏E0001"

    def test_series_input_left_unchanged(self):
        ser = pd.Series(["浙f·a1234", "苏e 0001"])
        before = ser.copy()
        normalize_plate(ser)
        pd.testing.assert_series_equal(ser, before)

    def test_categorical_merges_spellings_into_one_category(self):
        ser = pd.Series(["浙F·A1234", "浙f a1234", "苏E0001", None], dtype="category")
        out = normalize_plate(ser)
        assert isinstance(out.dtype, pd.CategoricalDtype)
        assert out.tolist()[:3] == ["浙FA1234", "浙FA1234", "苏E0001"]
        assert pd.isna(out.iloc[3])
        assert sorted(out.cat.categories) == ["浙FA1234", "苏E0001"]

    def test_only_separators_gives_empty_key(self):
        assert normalize_plate(" - · ") == ""


def test_categorical_with_every_plate_missing_stays_missing():
    plates = pd.Series(pd.Categorical([None, None], categories=[]))
    keys = normalize_plate(plates)
    assert keys.isna().all()
    assert len(keys) == 2
