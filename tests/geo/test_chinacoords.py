"""Tests for haulwatch.geo.chinacoords."""

import numpy as np
import pytest

from haulwatch.geo.chinacoords import (
    CoordSystemError,
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    in_china,
    to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

# Beijing railway station, published reference values (lon, lat).
WGS = (116.42079, 39.90105)
GCJ = (116.42703, 39.90245)
BD = (116.43351, 39.90851)
M_PER_DEG = 111_320.0


def _close(got, want, tol):
    assert abs(float(got[0]) - want[0]) < tol and abs(float(got[1]) - want[1]) < tol, (got, want)


class TestReferencePoints:
    def test_wgs_to_gcj(self):
        _close(wgs84_to_gcj02(*WGS), GCJ, 1e-5)

    def test_gcj_to_bd(self):
        _close(gcj02_to_bd09(*GCJ), BD, 1e-5)

    def test_wgs_to_bd(self):
        # Two published steps, each rounded to 5 decimals (±5e-6): allow their sum.
        _close(wgs84_to_bd09(*WGS), BD, 2e-5)

    def test_inverse_directions(self):
        _close(gcj02_to_wgs84(*GCJ), WGS, 1e-5)
        _close(bd09_to_gcj02(*BD), GCJ, 1e-5)
        _close(bd09_to_wgs84(*BD), WGS, 2e-5)

    def test_offset_is_hundreds_of_metres(self):
        lon, lat = wgs84_to_gcj02(*WGS)
        shift_m = np.hypot((lon - WGS[0]) * M_PER_DEG * np.cos(np.radians(WGS[1])),
                           (lat - WGS[1]) * M_PER_DEG)
        assert 100 < shift_m < 1000


class TestRoundTrips:
    @pytest.fixture
    def china(self):
        rng = np.random.default_rng(42)
        return rng.uniform(74.0, 134.0, 20_000), rng.uniform(18.0, 53.0, 20_000)

    @pytest.mark.parametrize("fwd, inv", [(wgs84_to_gcj02, gcj02_to_wgs84),
                                          (wgs84_to_bd09, bd09_to_wgs84),
                                          (gcj02_to_bd09, bd09_to_gcj02)])
    def test_round_trip_under_a_centimetre(self, china, fwd, inv):
        lon, lat = china
        back_lon, back_lat = inv(*fwd(lon, lat))
        err_m = np.hypot((back_lon - lon) * M_PER_DEG, (back_lat - lat) * M_PER_DEG)
        assert err_m.max() < 0.01

    @pytest.mark.parametrize("system", ["wgs84", "gcj02", "bd09"])
    def test_to_wgs84_inverts_from_wgs84(self, china, system):
        lon, lat = china
        back_lon, back_lat = to_wgs84(*from_wgs84(lon, lat, system), system)
        assert np.abs(back_lon - lon).max() < 1e-7
        assert np.abs(back_lat - lat).max() < 1e-7


class TestOutsideChina:
    def test_gcj_is_identity_outside_china(self):
        lon = np.array([2.35, -74.0, 151.2])   # Paris, New York, Sydney
        lat = np.array([48.85, 40.7, -33.9])
        g_lon, g_lat = wgs84_to_gcj02(lon, lat)
        np.testing.assert_array_equal(g_lon, lon)
        np.testing.assert_array_equal(g_lat, lat)
        w_lon, _w_lat = gcj02_to_wgs84(lon, lat)
        np.testing.assert_array_equal(w_lon, lon)

    def test_in_china_box(self):
        assert in_china([116.4, 2.35], [39.9, 48.85]).tolist() == [True, False]


class TestArrays:
    def test_nan_propagates_without_hanging(self):
        lon, lat = gcj02_to_wgs84(np.array([np.nan, 116.4]), np.array([39.9, np.nan]))
        assert np.isnan(lon[0]) and np.isnan(lat[1])

    def test_input_left_unchanged(self):
        lon = np.array([116.4, 121.5])
        lat = np.array([39.9, 31.2])
        keep = (lon.copy(), lat.copy())
        to_wgs84(lon, lat, "bd09")
        np.testing.assert_array_equal(lon, keep[0])
        np.testing.assert_array_equal(lat, keep[1])

    def test_empty(self):
        lon, lat = to_wgs84(np.array([]), np.array([]), "gcj02")
        assert lon.size == 0 and lat.size == 0

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"same shape"):
            wgs84_to_gcj02([1.0, 2.0], [1.0])

    def test_system_names_are_forgiving(self):
        a = to_wgs84([116.427], [39.902], "GCJ-02")
        b = to_wgs84([116.427], [39.902], "gcj02")
        np.testing.assert_array_equal(a[0], b[0])

    def test_unknown_system(self):
        with pytest.raises(CoordSystemError, match=r"'utm50'.*wgs84, gcj02, bd09"):
            to_wgs84([1.0], [1.0], "utm50")
