"""Tests for haulwatch.geo.crs."""

import numpy as np
import pytest

from haulwatch.geo.crs import pick_metric_crs, project, unproject


class TestPickMetricCrs:
    def test_utm_zone_of_median_longitude(self):
        # Shanghai area: UTM 51N
        assert pick_metric_crs([121.0, 121.5, 121.3], [30.7, 31.2, 31.0]).to_epsg() == 32651
        # Beijing: UTM 50N
        assert pick_metric_crs([116.4], [39.9]).to_epsg() == 32650

    def test_southern_hemisphere(self):
        assert pick_metric_crs([151.2], [-33.9]).to_epsg() == 32756

    def test_ignores_nan_and_junk(self):
        crs = pick_metric_crs([np.nan, 121.0, 999.0], [np.nan, 31.0, 31.0])
        assert crs.to_epsg() == 32651

    def test_wide_data_gets_centered_transverse_mercator(self):
        crs = pick_metric_crs(np.linspace(80.0, 125.0, 50), np.full(50, 35.0))
        assert crs.to_epsg() is None
        assert crs.is_projected
        assert crs.coordinate_operation.method_name == "Transverse Mercator"
        lon0 = crs.coordinate_operation.params[1].value
        assert 100.0 < lon0 < 105.0

    def test_data_straddling_the_antimeridian(self):
        # Fiji: half the points at 179.95 E, half at 179.95 W (0.1 degree apart)
        lon = np.array([179.95] * 10 + [-179.95] * 10)
        lat = np.full(20, -16.8)
        crs = pick_metric_crs(lon, lat)
        assert crs.to_epsg() in (32760, 32701)  # UTM 60S or 1S, not a zone at Greenwich
        x, y = project(lon, lat, crs)
        # 0.1 degree of longitude at 16.8 S is about 10.66 km
        assert abs(np.hypot(x[0] - x[-1], y[0] - y[-1]) - 10_655) < 30

    def test_wide_data_across_the_antimeridian_centred_there(self):
        lon = np.concatenate([np.linspace(170.0, 180.0, 20), np.linspace(-180.0, -170.0, 20)])
        crs = pick_metric_crs(lon, np.full(40, 65.0))
        lon0 = crs.coordinate_operation.params[1].value
        assert abs(abs(lon0) - 180.0) < 1.0

    def test_no_valid_point(self):
        with pytest.raises(ValueError, match=r"at least one valid coordinate"):
            pick_metric_crs([np.nan], [np.nan])


class TestProject:
    def test_round_trip_and_metres(self):
        crs = pick_metric_crs([121.0], [31.0])
        lon = np.array([121.0, 121.0, 121.01])
        lat = np.array([31.0, 31.01, 31.0])
        x, y = project(lon, lat, crs)
        # 0.01 degree of latitude is about 1109 m
        assert abs((y[1] - y[0]) - 1109) < 5
        back_lon, back_lat = unproject(x, y, crs)
        np.testing.assert_allclose(back_lon, lon, atol=1e-9)
        np.testing.assert_allclose(back_lat, lat, atol=1e-9)

    def test_nan_stays_nan(self):
        x, _y = project(np.array([np.nan]), np.array([31.0]), 32651)
        assert np.isnan(x[0])

    def test_accepts_epsg_code(self):
        x, _ = project([117.0], [0.0], "EPSG:32650")
        assert abs(x[0] - 500_000) < 1e-6
