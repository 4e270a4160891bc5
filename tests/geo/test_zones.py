"""Tests for haulwatch.geo.zones."""

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from haulwatch.geo.zones import distance_to_nearest_site, nearest_site, site_of_points


@pytest.fixture
def sites_m():
    # metres: a big origin, a small depot inside it, a disposal far away
    return gpd.GeoDataFrame(
        {"site_id": ["O1", "DEP", "D1"], "kind": ["origin", "depot", "disposal"]},
        geometry=[box(0, 0, 1000, 1000), box(100, 100, 200, 200), box(5000, 0, 5500, 500)],
        crs="EPSG:32651",
    )


class TestSiteOfPoints:
    def test_inside_outside_and_overlap_priority(self, sites_m):
        x = [500, 150, 5200, 3000]
        y = [500, 150, 200, 3000]
        out = site_of_points(x, y, sites_m)
        # (150,150) is in both O1 and DEP: the smaller DEP wins
        assert out.tolist() == [0, 1, 2, -1]
        assert out.dtype == np.int64

    def test_priority_independent_of_row_order(self, sites_m):
        flipped = sites_m.iloc[::-1].reset_index(drop=True)
        out = site_of_points([150], [150], flipped)
        assert flipped["site_id"].iloc[out[0]] == "DEP"

    def test_buffer_all_and_per_kind(self, sites_m):
        x, y = [1030, 5530], [500, 250]   # 30 m outside O1 and D1
        assert site_of_points(x, y, sites_m).tolist() == [-1, -1]
        assert site_of_points(x, y, sites_m, buffer_m=50).tolist() == [0, 2]
        per_kind = site_of_points(x, y, sites_m, buffer_m={"disposal": 50})
        assert per_kind.tolist() == [-1, 2]

    def test_kinds_filter(self, sites_m):
        out = site_of_points([150], [150], sites_m, kinds=["origin"])
        assert out.tolist() == [0]
        assert site_of_points([150], [150], sites_m, kinds="nest").tolist() == [-1]

    def test_empty_inputs_and_nan(self, sites_m):
        assert site_of_points([], [], sites_m).size == 0
        assert site_of_points([1.0], [1.0], sites_m.iloc[:0]).tolist() == [-1]
        assert site_of_points([np.nan], [500], sites_m).tolist() == [-1]

    def test_many_points_match_shapely_reference(self, sites_m):
        rng = np.random.default_rng(7)
        x = rng.uniform(-500, 6000, 5000)
        y = rng.uniform(-500, 1500, 5000)
        out = site_of_points(x, y, sites_m)
        polys = list(sites_m.geometry)
        order = np.argsort([p.area for p in polys], kind="stable")
        for i in range(0, 5000, 97):     # spot-check against plain shapely predicates
            p = Point(x[i], y[i])
            want = next((int(k) for k in order if polys[k].intersects(p)), -1)
            assert out[i] == want

    def test_input_left_unchanged(self, sites_m):
        before = sites_m.copy()
        x = np.array([500.0])
        site_of_points(x, np.array([500.0]), sites_m, buffer_m=10)
        assert sites_m.geom_equals(before).all() and x.tolist() == [500.0]

    @pytest.mark.parametrize("buffer_m, msg", [(-1, "buffer_m must be a number >= 0"),
                                               ({"origin": -5}, "buffer_m values")])
    def test_bad_buffer(self, sites_m, buffer_m, msg):
        with pytest.raises(ValueError, match=msg):
            site_of_points([0], [0], sites_m, buffer_m=buffer_m)

    def test_length_mismatch(self, sites_m):
        with pytest.raises(ValueError, match="same length"):
            site_of_points([0, 1], [0], sites_m)


class TestNearest:
    def test_distance_and_index(self, sites_m):
        idx, dist = nearest_site([500, 1100, 4900], [500, 500, 250], sites_m)
        assert idx.tolist() == [0, 0, 2]
        np.testing.assert_allclose(dist, [0.0, 100.0, 100.0])

    def test_kinds(self, sites_m):
        dist = distance_to_nearest_site([1100], [500], sites_m, kinds=("disposal",))
        np.testing.assert_allclose(dist, [3900.0])

    def test_no_sites_and_nan(self, sites_m):
        assert np.isinf(distance_to_nearest_site([1.0], [1.0], sites_m, kinds="nest")).all()
        idx, dist = nearest_site([np.nan, 1100], [0, 500], sites_m)
        assert idx.tolist() == [-1, 0] and np.isinf(dist[0])
