"""Tests for haulwatch.geo.points and the summary form of the metric-CRS rule (geo.crs)."""

import numpy as np
import pandas as pd
import pyproj
import pytest

from haulwatch.geo.crs import pick_metric_crs, pick_metric_crs_of_summary, summarize_coords
from haulwatch.geo.points import (
    POINT_COLUMNS,
    dataset_crs,
    dataset_crs_of_summary,
    points_frame,
)


def tracks(lon, lat):
    n = len(lon)
    return pd.DataFrame({
        "vehicle_id": pd.Categorical(["A"] * n), "vehicle_key": pd.Categorical(["A"] * n),
        "time": pd.date_range("2024-05-01", periods=n, freq="min", tz="UTC"),
        "lon": np.asarray(lon, float), "lat": np.asarray(lat, float),
        "speed_kmh": np.nan, "heading_deg": np.nan,
        "load": pd.Categorical([None] * n, categories=["empty", "half", "full"]),
        "lift": np.nan, "src_row": np.arange(1, n + 1),
    }, index=np.arange(10, 10 + n))  # not a RangeIndex


class TestPointsFrame:
    def test_wgs84_projected_as_pyproj_does(self):
        t = tracks([120.10, 120.20, 120.30], [30.2, 30.3, 30.25])
        before = t.copy()
        pts, crs = points_frame(t, "wgs84", None)
        assert list(pts.columns) == list(POINT_COLUMNS)
        assert crs.to_epsg() == 32651  # 120-126 E, north
        tr = pyproj.Transformer.from_crs(4326, 32651, always_xy=True)
        x, y = tr.transform(t["lon"].to_numpy(), t["lat"].to_numpy())
        np.testing.assert_allclose(pts["x"], x, atol=1e-6)
        np.testing.assert_allclose(pts["y"], y, atol=1e-6)
        assert pts.index.equals(pd.RangeIndex(3))
        assert pts["src_row"].tolist() == [1, 2, 3]
        pd.testing.assert_frame_equal(t, before)

    def test_gcj02_moves_points_by_the_datum_offset(self):
        # GCJ-02 is offset from WGS-84 by a few hundred metres in China
        t = tracks([116.4273, 116.43], [39.9032, 39.91])
        pts, _ = points_frame(t, "gcj02", 32650)
        shift = np.hypot(pts["lon"] - t["lon"].to_numpy(), pts["lat"] - t["lat"].to_numpy())
        assert ((shift > 0.001) & (shift < 0.01)).all()

    def test_registry_coordinates_join_the_crs_choice(self):
        t = tracks([119.9] * 3, [30.0] * 3)  # zone 50 alone
        _, crs = points_frame(t, "wgs84", None, also=(np.full(7, 120.3), np.full(7, 30.0)))
        assert crs.to_epsg() == 32651  # the median is now east of 120 E

    def test_empty_tracks_get_the_placeholder_crs(self):
        pts, crs = points_frame(tracks([], []), "gcj02", None)
        assert len(pts) == 0 and crs.to_epsg() == 3857
        assert dataset_crs(np.array([np.nan]), np.array([np.nan])).to_epsg() == 3857


class TestSummary:
    @pytest.mark.parametrize("lon0, lat0, spread", [
        (120.3, 30.2, 0.5),     # Hangzhou, one zone
        (119.98, 30.2, 0.2),    # straddles 120 E: zones 50 and 51
        (151.2, -33.9, 0.3),    # Sydney: south
        (105.0, 35.0, 20.0),    # wider than two zones: transverse Mercator
    ])
    def test_same_crs_as_from_all_points(self, lon0, lat0, spread):
        rng = np.random.default_rng(3)
        lon = lon0 + rng.uniform(-spread, spread, 20_001)
        lat = lat0 + rng.uniform(-0.2, 0.2, 20_001)
        parts = np.array_split(np.arange(lon.size), 7)
        summary = summarize_coords(lon[parts[0]], lat[parts[0]])
        for p in parts[1:]:
            summary = summary + summarize_coords(lon[p], lat[p])
        got, want = pick_metric_crs_of_summary(summary), pick_metric_crs(lon, lat)
        if want.to_epsg() is not None:
            assert got.to_epsg() == want.to_epsg()
        else:  # TM: centre from every 64th longitude (documented estimate), near the median
            params = got.to_dict()
            assert params["proj"] == "tmerc" and want.to_dict()["proj"] == "tmerc"
            assert abs(params["lon_0"] - np.median(lon)) < 3.0

    @pytest.mark.parametrize("right", [120.005, 120.02])
    def test_two_middle_values_in_two_zones(self, right):
        # even count, the lower half west of 120 E, the upper half east: the median is
        # the mean of the two middle values, west of 120 E (zone 50) for 119.99 | 120.005
        lon = np.concatenate([np.linspace(119.0, 119.99, 1000), np.linspace(right, 121.0, 1000)])
        lat = np.full(lon.size, 30.0)
        rng = np.random.default_rng(1)
        order = rng.permutation(lon.size)
        lon, lat = lon[order], lat[order]
        summary = summarize_coords(lon[:777], lat[:777]) + summarize_coords(lon[777:], lat[777:])
        want = pick_metric_crs(lon, lat)
        assert want.to_epsg() == (32650 if right == 120.005 else 32651)
        assert pick_metric_crs_of_summary(summary).to_epsg() == want.to_epsg()

    def test_counts_merge_exactly_and_bad_values_are_not_counted(self):
        a = summarize_coords([120.1, np.nan, 200.0, 121.0], [30.0, 30.0, 30.0, -1.0])
        b = summarize_coords([10.0], [50.0])
        ab = a + b
        assert (a.valid, a.south, ab.valid) == (2, 1, 3)
        assert ab.zone_counts.sum() == 3 and ab.zone_counts[50] == 2 and ab.zone_counts[31] == 1
        assert (ab.zone_min[50], ab.zone_max[50], ab.zone_min[31]) == (120.1, 121.0, 10.0)

    def test_nothing_valid(self):
        empty = summarize_coords([np.nan], [np.nan])
        with pytest.raises(ValueError, match="at least one valid"):
            pick_metric_crs_of_summary(empty)
        assert dataset_crs_of_summary(empty).to_epsg() == 3857
