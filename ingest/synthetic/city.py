"""The synthetic city: a road network, permitted sites and approved routes.

A ~15 x 15 km city centred near Shaoxing (30.0 N, 120.6 E), built in a local
transverse-Mercator frame (metres). The road network is a perturbed grid with
straighter, faster arterials every fifth row and column; sites (construction
sites, landfills, depots, drone nests, black sites that are in no registry) sit
inside city blocks, each reached by a driveway from the middle of one block
edge. Shortest paths are computed with ``scipy.sparse.csgraph``.

Used by :mod:`haulwatch.ingest.synthetic`; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely
from pyproj import Transformer
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

__all__ = ["LAT0_DEG", "LON0_DEG", "City", "Site", "build_city"]

#: Centre of the synthetic city (WGS-84 degrees), between Shaoxing and Hangzhou.
LON0_DEG = 120.60
LAT0_DEG = 30.00
#: Local metric frame of the city (metres east / north of the centre).
LOCAL_CRS = (
    f"+proj=tmerc +lat_0={LAT0_DEG} +lon_0={LON0_DEG} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
)
GRID_NODES = 21  # nodes per side
GRID_SPACING_M = 750.0  # 20 blocks x 750 m = 15 km
ARTERIAL_INDEX = (5, 10, 15)

# Site geometry in the block frame: (half width along the road, near edge, far edge)
# measured from the block-edge midpoint, metres. Driveways run along the normal.
_SITE_SHAPES: dict[str, tuple[float, float, float]] = {
    "origin": (80.0, 120.0, 280.0),
    "black": (70.0, 110.0, 250.0),
    "disposal": (110.0, 230.0, 470.0),
    "depot": (100.0, 100.0, 250.0),
}


@dataclass
class Site:
    """One site of the city (metric geometry)."""

    site_id: str
    kind: str  # origin, disposal, depot, nest, no_fly, black
    name: str
    polygon: shapely.Polygon
    node: int = -1  # graph node at the site centre (driveway end); -1: no access
    gate_node: int = -1  # graph node where the driveway meets the road
    normal: tuple[float, float] = (0.0, 1.0)  # unit vector road -> site
    near_m: float = 0.0  # distance road -> polygon along the driveway
    permit_from: str | None = None
    permit_to: str | None = None

    @property
    def centre(self) -> np.ndarray:
        """Centre of the site (where the driveway ends), metres."""
        c = self.polygon.centroid
        return np.array([c.x, c.y])


@dataclass
class City:
    """Road graph, sites and helpers for paths (all metric, local frame)."""

    nodes: np.ndarray  # (n, 2) metres
    graph: csr_matrix  # travel-time weights, seconds
    edge_speed: dict[tuple[int, int], float]  # m/s, both directions
    is_junction: np.ndarray  # bool per node: a grid crossing (traffic lights)
    grid_count: int  # nodes [0, grid_count) are grid nodes
    sites: list[Site]
    to_wgs84: Transformer
    road_lines: shapely.MultiLineString
    _pred_cache: dict[int, np.ndarray] = field(default_factory=dict)

    def site(self, site_id: str) -> Site:
        """Return the site with this id."""
        for s in self.sites:
            if s.site_id == site_id:
                return s
        raise KeyError(site_id)

    def of_kind(self, kind: str) -> list[Site]:
        """Return the sites of one kind, in id order."""
        return [s for s in self.sites if s.kind == kind]

    def path(self, a: int, b: int) -> list[int]:
        """Shortest (fastest) node path from node ``a`` to node ``b``."""
        pred = self._pred_cache.get(a)
        if pred is None:
            _, pred = dijkstra(self.graph, indices=a, return_predecessors=True)
            self._pred_cache[a] = pred
        out = [b]
        while out[-1] != a:
            p = int(pred[out[-1]])
            if p < 0:
                raise ValueError(f"no road path from node {a} to node {b}")
            out.append(p)
        return out[::-1]

    def nearest_grid_node(self, xy: np.ndarray) -> int:
        """Index of the grid node nearest to a metric point."""
        d = np.hypot(*(self.nodes[: self.grid_count] - xy).T)
        return int(np.argmin(d))

    def lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Metric local coordinates to WGS-84 lon/lat degrees (vectorized)."""
        return self.to_wgs84.transform(np.asarray(x, float), np.asarray(y, float))


def _rect(mid: np.ndarray, along: np.ndarray, normal: np.ndarray, shape) -> shapely.Polygon:
    half, near, far = shape
    pts = [
        mid + along * -half + normal * near,
        mid + along * half + normal * near,
        mid + along * half + normal * far,
        mid + along * -half + normal * far,
    ]
    return shapely.Polygon(pts)


def build_city(
    rng: np.random.Generator,
    *,
    n_origins: int,
    n_disposals: int,
    n_depots: int,
    n_black: int,
    n_nests: int,
    permit_dates: tuple[str, str, str],
    large_origins: bool = False,
) -> City:
    """Build a random city.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the city is deterministic for a seed).
    n_origins, n_disposals, n_depots, n_black, n_nests : int
        How many sites of each kind. ``black`` sites are places where trucks
        load that are in no registry (黑工地).
    permit_dates : (str, str, str)
        ``(valid_from, valid_to, expired_to)`` ISO dates: the permit window of
        origins with a permit, and the end of the one expired permit.
    large_origins : bool, default False
        Origins 300–600 m across (big excavation sites) instead of 160 m.

    Returns
    -------
    City
    """
    n = GRID_NODES
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ii, jj = ii.ravel(), jj.ravel()
    base = np.stack([ii, jj], axis=1) * GRID_SPACING_M - (n - 1) * GRID_SPACING_M / 2
    jitter = np.clip(rng.normal(0.0, 30.0, base.shape), -60.0, 60.0)
    jitter[np.isin(ii, ARTERIAL_INDEX), 0] *= 0.15
    jitter[np.isin(jj, ARTERIAL_INDEX), 1] *= 0.15
    nodes = [tuple(p) for p in base + jitter]

    def nid(i: int, j: int) -> int:
        return i * n + j

    # grid edges: (a, b, arterial)
    edges: dict[tuple[int, int], float] = {}
    for i in range(n):
        for j in range(n):
            if i + 1 < n:
                art = j in ARTERIAL_INDEX
                edges[(nid(i, j), nid(i + 1, j))] = rng.uniform(13.0, 15.0) if art else rng.uniform(8.5, 11.0)
            if j + 1 < n:
                art = i in ARTERIAL_INDEX
                edges[(nid(i, j), nid(i, j + 1))] = rng.uniform(13.0, 15.0) if art else rng.uniform(8.5, 11.0)

    # sites in distinct blocks, attached to the block's lower edge (i,j)-(i+1,j)
    blocks = [(i, j) for i in range(1, n - 2) for j in range(1, n - 2)]
    order = rng.permutation(len(blocks))
    # a no-fly zone over a 2x2-block area (an airport / hospital); no sites inside
    nf_i, nf_j = blocks[order[0]]
    nofly_blocks = {(nf_i + a, nf_j + b) for a in (-1, 0, 1) for b in (-1, 0, 1)}
    free = [blocks[k] for k in order[1:] if blocks[k] not in nofly_blocks]

    plan: list[tuple[str, int]] = []
    for kind, count in (
        ("origin", n_origins),
        ("disposal", n_disposals),
        ("depot", n_depots),
        ("black", n_black),
        ("nest", n_nests),
    ):
        plan += [(kind, k) for k in range(count)]
    if len(plan) > len(free):
        raise ValueError(f"city too small for {len(plan)} sites (at most {len(free)})")

    sites: list[Site] = []
    extra_edges: list[tuple[int, int, float]] = []
    removed: set[tuple[int, int]] = set()
    names = {
        "origin": "工地", "disposal": "消纳场", "depot": "车队停车场", "black": "黑工地", "nest": "无人机机巢",
    }
    counters = {k: 0 for k in names}
    for (kind, _), (bi, bj) in zip(plan, free, strict=False):
        a, b = nid(bi, bj), nid(bi + 1, bj)
        pa, pb = np.array(nodes[a]), np.array(nodes[b])
        along = (pb - pa) / np.linalg.norm(pb - pa)
        normal = np.array([-along[1], along[0]])  # left of a->b: into the block (+y)
        mid = (pa + pb) / 2
        counters[kind] += 1
        if kind == "nest":
            c = mid + normal * 375.0
            poly = shapely.box(c[0] - 20, c[1] - 20, c[0] + 20, c[1] + 20)
            sid = f"N{counters[kind]}"
            sites.append(Site(sid, "nest", f"{names[kind]}{counters[kind]}", poly))
            continue
        shape = _SITE_SHAPES[kind]
        if kind == "origin" and large_origins:
            big = np.random.default_rng([int(abs(mid[0]) * 10), int(abs(mid[1]) * 10)])
            shape = (float(big.uniform(150.0, 300.0)), shape[1],
                     shape[1] + float(big.uniform(300.0, 480.0)))
        poly = _rect(mid, along, normal, shape)
        m_id = len(nodes)
        nodes.append(tuple(mid))
        c_xy = mid + normal * (shape[1] + shape[2]) / 2
        c_id = len(nodes)
        nodes.append(tuple(c_xy))
        speed = edges.pop((a, b))
        removed.add((a, b))
        extra_edges += [(a, m_id, speed), (m_id, b, speed), (m_id, c_id, 4.0)]
        prefix = {"origin": "O", "disposal": "D", "depot": "P", "black": "X"}[kind]
        sid = f"{prefix}{counters[kind]}"
        name = f"{names[kind]}{counters[kind]}号"
        sites.append(
            Site(sid, kind, name, poly, node=c_id, gate_node=m_id,
                 normal=(float(normal[0]), float(normal[1])), near_m=shape[1])
        )
    # no-fly polygon around the reserved blocks
    cx, cy = (np.array(nodes[nid(nf_i, nf_j)]) + np.array(nodes[nid(nf_i + 1, nf_j + 1)])) / 2
    sites.append(
        Site("NF1", "no_fly", "机场净空区", shapely.box(cx - 700, cy - 550, cx + 700, cy + 550))
    )
    # permits: most origins have a valid window, one is expired
    origins = [s for s in sites if s.kind == "origin"]
    for k, s in enumerate(origins):
        if k == 0:
            s.permit_from, s.permit_to = "2020-01-01", permit_dates[2]
            s.name += "(许可已过期)"
        elif rng.random() < 0.6:
            s.permit_from, s.permit_to = permit_dates[0], permit_dates[1]

    # drop a few local streets (not arterials, not site-attached) if it stays connected
    all_edges = dict(edges)
    for (a, b) in list(edges):
        if rng.random() < 0.04 and (a // n) not in ARTERIAL_INDEX and (a % n) not in ARTERIAL_INDEX:
            del edges[(a, b)]
    nodes_arr = np.array(nodes, dtype=float)
    for attempt in range(2):
        use = edges if attempt == 0 else all_edges
        pairs = [(a, b, v) for (a, b), v in use.items()] + extra_edges
        graph, speed_map = _graph(nodes_arr, pairs)
        n_comp, _ = connected_components(graph, directed=False)
        if n_comp == 1:
            break
    is_junction = np.zeros(len(nodes_arr), bool)
    is_junction[: n * n] = True
    lines = [shapely.LineString([nodes_arr[a], nodes_arr[b]]) for a, b, _ in pairs]
    return City(
        nodes=nodes_arr,
        graph=graph,
        edge_speed=speed_map,
        is_junction=is_junction,
        grid_count=n * n,
        sites=sites,
        to_wgs84=Transformer.from_crs(LOCAL_CRS, "EPSG:4326", always_xy=True),
        road_lines=shapely.MultiLineString(lines),
    )


def _graph(nodes: np.ndarray, pairs: list[tuple[int, int, float]]):
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    v = np.array([p[2] for p in pairs])
    length = np.hypot(*(nodes[a] - nodes[b]).T)
    w = length / v
    n = len(nodes)
    graph = csr_matrix((np.r_[w, w], (np.r_[a, b], np.r_[b, a])), shape=(n, n))
    speed = {}
    for x, y, s in zip(a.tolist(), b.tolist(), v.tolist(), strict=True):
        speed[(x, y)] = s
        speed[(y, x)] = s
    return graph, speed
