"""Paths around no-fly zones: inflated zones, a visibility graph, A*.

Metric work happens in an azimuthal equidistant projection centred on the dock
(:func:`local_crs`); :func:`inflate_zones` inflates the zones by the clearance and
lists the candidate bend points, :func:`shortest_path` finds the shortest
polyline that keeps out of them.
"""

from __future__ import annotations

import heapq
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from haulwatch.drone.docks import Dock
from haulwatch.drone.planconfig import PlanConfig

__all__ = ["Obstacles", "inflate_zones", "local_crs", "project_geoms", "shortest_path"]


_LOCAL = threading.local()


def local_crs(dock: Dock) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    """Forward/inverse transformers of an azimuthal equidistant CRS centred on the dock.

    Building a transformer costs ~25 ms, so they are cached per thread (pyproj
    transformers must not be shared between threads) and per dock position.
    """
    cache = getattr(_LOCAL, "crs", None)
    if cache is None:
        cache = _LOCAL.crs = {}
    key = (dock.lat_deg, dock.lon_deg)
    pair = cache.get(key)
    if pair is None:
        crs = pyproj.CRS.from_proj4(
            f"+proj=aeqd +lat_0={dock.lat_deg!r} +lon_0={dock.lon_deg!r} "
            "+datum=WGS84 +units=m +no_defs"
        )
        fwd = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
        inv = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
        if len(cache) >= 256:
            cache.clear()
        pair = cache[key] = (fwd, inv)
    return pair


def project_geoms(geoms: Sequence[BaseGeometry], fwd: pyproj.Transformer) -> np.ndarray:
    def func(coords: np.ndarray) -> np.ndarray:
        x, y = fwd.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(np.asarray(geoms, dtype=object), func)


def _convex_ring_vertices(ring_coords: np.ndarray, *, hole: bool) -> np.ndarray:
    """Vertices of a closed ring that bulge into free space (candidate path bends)."""
    pts = ring_coords[:-1]
    if len(pts) < 3:
        return pts
    prev = np.roll(pts, 1, axis=0)
    nxt = np.roll(pts, -1, axis=0)
    cross = (pts[:, 0] - prev[:, 0]) * (nxt[:, 1] - pts[:, 1]) - (pts[:, 1] - prev[:, 1]) * (
        nxt[:, 0] - pts[:, 0]
    )
    x, y = ring_coords[:, 0], ring_coords[:, 1]
    orient = np.sign(np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]))
    # Exterior ring: the zone is inside, a path bends at its convex corners.
    # Hole ring: free space is inside, a path bends at its reflex corners.
    keep = cross * orient < 0 if hole else cross * orient > 0
    return pts[keep]


def _graph_nodes(blocked: BaseGeometry) -> np.ndarray:
    polys = shapely.get_parts(blocked)
    out = []
    for poly in polys:
        if poly.geom_type != "Polygon":
            continue
        out.append(_convex_ring_vertices(np.asarray(poly.exterior.coords)[:, :2], hole=False))
        for ring in poly.interiors:
            out.append(_convex_ring_vertices(np.asarray(ring.coords)[:, :2], hole=True))
    if not out:
        return np.empty((0, 2))
    return np.unique(np.round(np.concatenate(out), 6), axis=0)


@dataclass(frozen=True)
class Obstacles:
    blocked: BaseGeometry | None  # edges must not touch this (metric)
    nodes: np.ndarray  # candidate bend points (metric)
    clearance_m: float  # smallest clearance actually applied


# Arcs of a quad_segs=2 buffer: chords dip to cos(22.5°) of the radius.
_ROUND_CHORD = math.cos(math.pi / 8)
# Path edges must keep out of this share of the node polygons' offset.
_BLOCK_SHARE = 0.98
_MITRE_LIMIT = 2.0


def inflate_zones(
    zones_m: np.ndarray, points_m: Sequence[tuple[float, float]], config: PlanConfig
) -> Obstacles:
    """Inflated no-fly zones (metric) and the candidate bend points around them.

    Each zone part is simplified (tolerance ``tol``) and offset outwards by
    ``(clearance + tol) / 0.98`` with mitre joins (one vertex per corner), so
    a path that stays out of the 0.98 offset keeps at least the clearance from
    the original zone. When a mitre corner would swallow the dock, the target
    or the egress point, that zone gets round joins and a clearance reduced to
    0.8 × its distance to those points instead. When there are more candidate
    vertices than ``max_graph_nodes``, the tolerance doubles (zones grow a
    little more conservative, never less).
    """
    if len(zones_m) == 0:
        return Obstacles(None, np.empty((0, 2)), config.no_fly_clearance_m)
    pts = shapely.points(np.asarray(points_m, dtype=float))
    parts = shapely.get_parts(zones_m)
    parts = parts[~shapely.is_empty(parts)]
    dist = shapely.distance(parts[:, None], pts[None, :]).min(axis=1)
    # Clearance per zone: the configured one (at least 1 m, so paths may run
    # along an offset), or less when a mission point is closer than that.
    eff = np.minimum(max(config.no_fly_clearance_m, 1.0), 0.8 * dist)
    eff = np.maximum(eff, 1e-3)
    base_tol = 0.1 * max(config.no_fly_clearance_m, 1.0)
    scale = 1.0
    while True:
        tol = np.full(len(parts), base_tol * scale)
        grow = (eff + tol) / _BLOCK_SHARE
        simple = shapely.simplify(parts, tol, preserve_topology=True)
        node = shapely.buffer(simple, grow, join_style="mitre", mitre_limit=_MITRE_LIMIT)
        rounded = shapely.intersects(node[:, None], pts[None, :]).any(axis=1)
        block = shapely.buffer(
            simple, grow * _BLOCK_SHARE, join_style="mitre", mitre_limit=_MITRE_LIMIT
        )
        if rounded.any():
            tol_r = np.minimum(tol[rounded], 0.1 * eff[rounded])
            grow_r = (eff[rounded] + tol_r) / (_BLOCK_SHARE * _ROUND_CHORD)
            simple_r = shapely.simplify(parts[rounded], tol_r, preserve_topology=True)
            node[rounded] = shapely.buffer(simple_r, grow_r, quad_segs=2)
            block[rounded] = shapely.buffer(simple_r, grow_r * _BLOCK_SHARE, quad_segs=2)
        nodes = _graph_nodes(shapely.union_all(node))
        if len(nodes) <= config.max_graph_nodes or scale >= 1024:
            break
        scale *= 2.0
    blocked = shapely.union_all(block)
    shapely.prepare(blocked)
    if len(nodes):
        nodes = nodes[~shapely.intersects(shapely.points(nodes), blocked)]
    return Obstacles(blocked, nodes, float(eff.min()))


def shortest_path(
    start: tuple[float, float], goal: tuple[float, float], obstacles: Obstacles
) -> list[tuple[float, float]] | None:
    """Shortest polyline start → goal that keeps out of ``obstacles.blocked``.

    A* over the visibility graph of the candidate bend points, with the
    straight-line distance to the goal as heuristic (admissible, so the path
    is the shortest in the graph). Visibility is tested lazily, from each
    settled node to all open nodes in one vectorized shapely call, so a clear
    or nearly clear sky costs a few calls instead of n² segment tests.
    Returns None when no path exists.
    """
    blocked = obstacles.blocked
    if blocked is None or not shapely.intersects(shapely.linestrings([start, goal]), blocked):
        return [start, goal]
    pts = np.vstack([np.asarray([start, goal], dtype=float), obstacles.nodes])
    n = len(pts)
    h = np.hypot(pts[:, 0] - pts[1, 0], pts[:, 1] - pts[1, 1])
    g = np.full(n, np.inf)
    g[0] = 0.0
    pred = np.full(n, -1)
    closed = np.zeros(n, dtype=bool)
    heap = [(h[0], 0)]
    while heap:
        _, u = heapq.heappop(heap)
        if closed[u]:
            continue
        closed[u] = True
        if u == 1:
            break
        cand = np.flatnonzero(~closed)
        if len(cand) == 0:
            break
        segs = shapely.linestrings(
            np.stack([np.broadcast_to(pts[u], (len(cand), 2)), pts[cand]], axis=1)
        )
        v = cand[~shapely.intersects(segs, blocked)]
        d = g[u] + np.hypot(pts[v, 0] - pts[u, 0], pts[v, 1] - pts[u, 1])
        better = d < g[v]
        v, d = v[better], d[better]
        g[v] = d
        pred[v] = u
        for node, f in zip(v.tolist(), (d + h[v]).tolist(), strict=True):
            heapq.heappush(heap, (f, node))
    if not closed[1]:
        return None
    path = [1]
    while path[-1] != 0:
        path.append(int(pred[path[-1]]))
    return [tuple(map(float, pts[k])) for k in reversed(path)]
