"""Tests for haulwatch.geo.zones."""

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point, box

from haulwatch.geo.zones import (
    distance_to_nearest_site,
    inside_own_site,
    nearest_site,
    site_of_points,
)


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

# --------------------------------------------------------------------------- the audit's lookup
# A truck-yard layout in UTM metres (the audit's use): origin O1, disposal D1 / D2,
# depot P1, per-kind buffers, drone sites ignored by kinds=.
X0, Y0 = 270_000.0, 3_320_000.0
BUFFERS = {"origin": 50.0, "disposal": 150.0, "depot": 50.0}
TRUCK_KINDS = ("origin", "disposal", "depot")
_YARD = [
    ("O1", "origin", box(-100, -100, 100, 100)),
    ("D1", "disposal", box(4900, -100, 5100, 100)),
    ("D2", "disposal", box(4900, 2900, 5100, 3100)),
    ("P1", "depot", box(-50, -2050, 50, -1950)),
]


def yard(extra: list | None = None) -> gpd.GeoDataFrame:
    from shapely import affinity

    rows = [*_YARD, *(extra or [])]
    return gpd.GeoDataFrame(
        {"site_id": [r[0] for r in rows], "kind": [r[1] for r in rows]},
        geometry=[affinity.translate(r[2], X0, Y0) for r in rows],
        crs="EPSG:32651",
    )


def site_index(x, y, sm, *, buffer_m):
    return site_of_points(x, y, sm, buffer_m=buffer_m, kinds=TRUCK_KINDS)


class TestTruckSiteLookup:
    def test_inside_buffer_and_outside(self):
        sm = yard()
        x = np.array([0.0, 5000.0, 4780.0, 4700.0, 0.0, 2500.0]) + X0
        y = np.array([0.0, 0.0, 0.0, 0.0, -2000.0, 0.0]) + Y0
        pos = site_index(x, y, sm, buffer_m=BUFFERS)
        ids = [sm["site_id"].iloc[p] if p >= 0 else None for p in pos]
        # 4780 is 120 m outside D1 (inside its 150 m buffer), 4700 is 200 m outside
        assert ids == ["O1", "D1", "D1", None, "P1", None]

    def test_overlap_goes_to_the_smaller_site_and_drone_sites_are_ignored(self):
        extra = [
            ("O9", "origin", box(-20, -20, 20, 20)),       # inside O1, smaller
            ("N1", "nest", box(2400, -100, 2600, 100)),     # drones only
        ]
        sm = yard(extra)
        pos = site_index(np.array([X0, X0 + 90, X0 + 2500]), np.array([Y0, Y0, Y0]), sm, buffer_m=BUFFERS)
        assert [sm["site_id"].iloc[p] if p >= 0 else None for p in pos] == ["O9", "O1", None]

    def test_empty_inputs(self):
        assert site_index(np.array([]), np.array([]), yard(), buffer_m=BUFFERS).shape == (0,)
        out = site_index(np.array([X0]), np.array([Y0]), yard().iloc[0:0], buffer_m=BUFFERS)
        assert out.tolist() == [-1]

    def test_many_sites_agree_with_a_point_by_point_lookup(self):
        # Sites of very different sizes (a huge one among small ones, so the lookup
        # grid's cells are much smaller than some sites), points on box edges,
        # inside overlaps and far away, plus non-finite coordinates.
        rng = np.random.default_rng(3)
        extra = []
        for i in range(40):
            cx, cy = rng.uniform(-20_000, 20_000, 2)
            half = rng.uniform(20, 400)
            kind = ["origin", "disposal", "depot", "nest"][i % 4]
            extra.append((f"S{i}", kind, box(cx - half, cy - half, cx + half, cy + half)))
        extra.append(("BIG", "disposal", box(-15_000, -15_000, 5_000, 2_000)))
        sm = yard(extra)
        gx = sm.geometry.bounds
        x = np.concatenate([rng.uniform(-25_000, 25_000, 4000) + X0, gx["minx"].to_numpy() - 50.0,
                            gx["maxx"].to_numpy() + 150.0, [np.nan, np.inf, X0]])
        y = np.concatenate([rng.uniform(-25_000, 25_000, 4000) + Y0, gx["miny"].to_numpy(),
                            gx["maxy"].to_numpy(), [Y0, Y0, np.nan]])
        got = site_index(x, y, sm, buffer_m=BUFFERS)
        # Oracle: every point against every site, smallest containing site wins.
        want = np.full(len(x), -1)
        best_area = np.full(len(x), np.inf)
        for k in range(len(sm)):
            kind = sm["kind"].iloc[k]
            if kind not in ("origin", "disposal", "depot"):
                continue
            zone = sm.geometry.iloc[k].buffer(BUFFERS[kind])
            hit = shapely.contains_xy(zone, x, y) & (sm.geometry.iloc[k].area < best_area)
            want[hit] = k
            best_area[hit] = sm.geometry.iloc[k].area
        assert (want >= 0).sum() > 500 and (want < 0).sum() > 500
        assert got.tolist() == want.tolist()


class TestInsideOwnSite:
    def test_buffer_points_are_not_inside(self):
        sm = yard()
        x = np.array([0.0, 4780.0, 5000.0, 2500.0]) + X0
        y = np.array([0.0, 0.0, 0.0, 0.0]) + Y0
        pos = site_index(x, y, sm, buffer_m=BUFFERS)
        inside = inside_own_site(x, y, pos, sm)
        # O1 centre and D1 centre are inside; 120 m outside D1 (buffer) and the open are not
        assert inside.tolist() == [True, False, True, False]

    def test_empty_and_no_site(self):
        sm = yard()
        assert inside_own_site(np.empty(0), np.empty(0), np.empty(0, dtype=np.int64), sm).tolist() == []
        out = inside_own_site(np.array([1.0]), np.array([1.0]), np.array([-1]), sm)
        assert out.tolist() == [False]
