"""Tests of routes.corridor: route_deviation of loaded haul trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import shapely
from detector_world import Truck, dataset, manifest, normal_trip, points_frame

from haulwatch.routes.audit import audit
from haulwatch.routes.config import AuditConfig
from haulwatch.routes.corridor import _corridor_excess

PLATE = "浙A00001"


def _alerts(truck, manifests=None, config=None):
    ms = manifests if manifests is not None else [manifest("M1", truck.plate)]
    return audit(dataset(points_frame(truck), ms), config or AuditConfig()).alerts


def _detour(tr: Truck, off_m: float = 1000, load: bool = True) -> Truck:
    tr.drive(0, 0).dwell(900, load="full" if load else None)
    tr.drive(1500, 0).drive(2000, off_m).drive(3000, off_m).drive(3500, 0).drive(5000, 0)
    tr.dwell(600, load="empty")
    return tr


class TestRouteDeviation:
    def test_detour_gives_one_alert_with_the_off_piece(self):
        a = _detour(Truck(PLATE, seed=31))
        a.drive(0, -2000).dwell(600)
        alerts = _alerts(a)
        assert alerts["kind"].tolist() == ["route_deviation"]
        al = alerts.iloc[0]
        assert al["manifest_id"] == "M1"
        assert al.geometry.geom_type == "LineString"
        ev = json.loads(al["evidence"])
        assert ev["route_ids"] == ["R1"]
        assert ev["max_off_corridor_m"] == pytest.approx(1000, abs=20)
        assert ev["corridor_m"] == 150
        # the off piece starts after leaving the corridor (150 m off at x ≈ 1575 m)
        assert shapely.get_num_points(al.geometry) >= 3
        assert (al["end"] - al["start"]).total_seconds() > 60

    def test_staying_on_route_gives_nothing(self):
        a = normal_trip(Truck(PLATE, seed=32), refuel=False)
        assert _alerts(a).empty

    def test_wider_corridor_or_more_points_needed_suppress_it(self):
        a = _detour(Truck(PLATE, seed=33), off_m=300)
        assert _alerts(a)["kind"].tolist() == ["route_deviation"]
        assert _alerts(a, config=AuditConfig(corridor_default_m=400)).empty
        assert _alerts(a, config=AuditConfig(deviation_min_points=500)).empty

    def test_manifest_route_is_used(self):
        # manifest names R2 (O1 → D2 via the north, corridor 200 m); the truck goes straight
        a = Truck(PLATE, seed=34)
        a.drive(0, 0).dwell(900).drive(5000, 3000).dwell(600)
        alerts = _alerts(a, manifests=[manifest("M1", PLATE, disposal="D2", route="R2")])
        assert alerts["kind"].tolist() == ["route_deviation"]
        assert json.loads(alerts["evidence"].iloc[0])["corridor_m"] == 200

    def test_no_route_between_the_sites_is_not_judged(self):
        # O1 → D2 straight, manifest without route: only R2 connects them (judged);
        # a trip O1 → D1 with a manifest for D2 has route R1: judged against R1.
        a = Truck(PLATE, seed=35)
        a.drive(0, 0).dwell(900).drive(2500, 2000).drive(5000, 0).dwell(600)
        alerts = _alerts(a, manifests=[manifest("M1", PLATE, disposal="D1", route=None)])
        assert alerts["kind"].tolist() == ["route_deviation"]
        b = Truck(PLATE, seed=36)
        b.drive(0, 0).dwell(900).drive(2500, 2000).drive(2500, -3000).dwell(900)  # never delivers
        assert _alerts(b).empty

    def test_unsorted_input_same_alert(self):
        a = _detour(Truck(PLATE, seed=37))
        pts = points_frame(a)
        r1 = audit(dataset(pts, [manifest("M1", PLATE)])).alerts
        r2 = audit(dataset(pts.sample(frac=1.0, random_state=4), [manifest("M1", PLATE)])).alerts
        assert r1["alert_id"].tolist() == r2["alert_id"].tolist()
        assert r1["end"].tolist() == r2["end"].tolist()


class TestCorridorEdge:
    def test_a_detour_just_inside_the_corridor_is_not_one_just_outside_is(self):
        # R1's corridor is 150 m: a detour 140 m off stays in it, 165 m off leaves it
        # (points between 95 % and 100 % of the half-width are measured exactly);
        # the edge itself, without the noise margin (deviation_min_excess_m)
        edge = AuditConfig(deviation_min_excess_m=0, deviation_min_duration_s=60)
        assert _alerts(_detour(Truck(PLATE, seed=35), off_m=140), config=edge).empty
        alerts = _alerts(_detour(Truck(PLATE, seed=35), off_m=165), config=edge)
        assert alerts["kind"].tolist() == ["route_deviation"]
        ev = json.loads(alerts.iloc[0]["evidence"])
        assert ev["max_off_corridor_m"] == pytest.approx(165, abs=10)

    def test_excess_agrees_with_exact_distances(self):
        rng = np.random.default_rng(7)
        geoms = np.array([
            shapely.LineString([(0, 0), (1000, 0), (1000, 1000), (300, 400)]),
            shapely.LineString([(0, 500), (900, 520)]),
            None,
        ], dtype=object)
        half = np.array([60.0, 150.0, 100.0])
        x = rng.uniform(-300, 1300, 6000)
        y = rng.uniform(-300, 1300, 6000)
        idx = np.repeat(np.arange(6000), 2)
        rpos = np.tile([0, 1], 6000)
        rpos[::7] = 2
        dist, excess = _corridor_excess(x, y, idx, rpos, geoms, half)
        has = rpos < 2
        true = np.full(len(idx), np.nan)
        true[has] = shapely.distance(shapely.points(x[idx[has]], y[idx[has]]), geoms[rpos[has]])
        # off the corridor exactly where the exact distance says so; no route: never off
        assert ((excess > 0) == (true - half[rpos] > 0)).all()
        assert not (excess[~has] > 0).any()
        measured = np.isfinite(dist)
        np.testing.assert_allclose(dist[measured], true[measured])
        # a point left unmeasured lies well inside its corridor
        assert (true[has & ~measured] < 0.96 * half[rpos[has & ~measured]]).all()
        assert (has & ~measured).sum() > 1000 and (excess > 0).sum() > 1000
