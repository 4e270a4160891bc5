"""Which site a point is in, and how far the nearest site is.

Whole-array answers, no per-point loop: :func:`site_of_points` groups the points
by the cells of a grid over the sites (the audit's one site lookup);
:func:`nearest_site` is one STRtree query. When sites overlap, a point belongs to
the most specific one: the smallest area first, then the earlier row
(deterministic). Coordinates are metres in the
dataset's metric CRS (``Dataset.sites_m``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

__all__ = ["distance_to_nearest_site", "inside_own_site", "nearest_site", "site_of_points"]

#: Points per STRtree query: bounds the memory of the temporary point geometries
#: (about 100 bytes each) while keeping one tree for all of them.
_CHUNK_POINTS = 1 << 19


def _points(x: ArrayLike, y: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    xa = np.asarray(x, dtype="float64").ravel()
    ya = np.asarray(y, dtype="float64").ravel()
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have the same length, got {xa.size} and {ya.size}")
    return xa, ya


def _kind_mask(sites_m: pd.DataFrame, kinds: Iterable[str] | str | None) -> np.ndarray:
    n = len(sites_m)
    if kinds is None:
        return np.ones(n, dtype=bool)
    if "kind" not in sites_m.columns:
        raise ValueError("sites_m has no 'kind' column; cannot filter by kinds")
    wanted = [kinds] if isinstance(kinds, str) else list(kinds)
    return sites_m["kind"].isin(wanted).to_numpy()


def _buffers(sites_m: pd.DataFrame, buffer_m: float | Mapping[str, float]) -> np.ndarray:
    n = len(sites_m)
    if isinstance(buffer_m, Mapping):
        if "kind" not in sites_m.columns:
            raise ValueError("sites_m has no 'kind' column; buffer_m per kind needs it")
        bad = {k: v for k, v in buffer_m.items() if not np.isfinite(v) or v < 0}
        if bad:
            raise ValueError(f"buffer_m values must be numbers >= 0, got {bad!r}")
        kinds = sites_m["kind"].astype(str).to_numpy()
        return np.array([float(buffer_m.get(k, 0.0)) for k in kinds], dtype=np.float64)
    value = float(buffer_m)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"buffer_m must be a number >= 0 (metres), got {buffer_m!r}")
    return np.full(n, value)


def site_of_points(
    x: ArrayLike,
    y: ArrayLike,
    sites_m: pd.DataFrame,
    *,
    buffer_m: float | Mapping[str, float] = 0.0,
    kinds: Iterable[str] | str | None = None,
) -> NDArray[np.int64]:
    """Return, for each point, the position of the site it lies in (-1 for none).

    Parameters
    ----------
    x, y : array_like
        Point coordinates in metres (the CRS of ``sites_m``).
    sites_m : geopandas.GeoDataFrame
        Sites in a metric CRS (``geometry``, and ``kind`` when filtering or
        buffering per kind).
    buffer_m : float or mapping of kind to float, default 0
        Grow each site by this many metres (GPS error at gates); a mapping
        gives one value per ``kind`` (missing kinds: 0).
    kinds : str or iterable of str, optional
        Only consider sites of these kinds.

    Returns
    -------
    numpy.ndarray of int64
        Positional index into ``sites_m`` (``sites_m.iloc[i]``), -1 when the
        point is in no (selected) site or has non-finite coordinates. Overlaps go
        to the site with the smallest (unbuffered) area, then the lower position.
        A point on a site's boundary is not in it (``shapely.contains_xy``).

    Raises
    ------
    ValueError
        If ``buffer_m`` is negative or ``x``, ``y`` differ in length.

    Notes
    -----
    No shapely geometry is built per point: the points are grouped by the cells of
    a regular grid over the sites' boxes, and each site tests (one prepared
    ``contains_xy``) only the points of its own cells, smallest site first. The
    cost stays linear in the points whatever the number of sites.
    """
    xa, ya = _points(x, y)
    out = np.full(xa.size, -1, dtype=np.int64)
    if xa.size == 0 or len(sites_m) == 0:
        return out
    buffers_all = _buffers(sites_m, buffer_m)
    geoms = np.asarray(sites_m.geometry.to_numpy(), dtype=object)
    selected = np.flatnonzero(_kind_mask(sites_m, kinds) & ~shapely.is_missing(geoms))
    if selected.size == 0:
        return out
    area = shapely.area(geoms[selected])
    order = selected[np.lexsort((selected, area))]
    buffers = buffers_all[order]
    zones = np.where(buffers > 0, shapely.buffer(geoms[order], buffers), geoms[order])
    bounds = shapely.bounds(zones)
    grid = _SiteGrid(bounds)
    # Only points in a grid cell that some zone's box overlaps are candidates (most
    # road points drop out in one pass), grouped by cell.
    near, cell_start, members = grid.group(xa, ya)
    if len(near) == 0:
        return out
    for j, (k, zone) in enumerate(zip(order, zones, strict=True)):
        cand = near[grid.members_of(j, cell_start, members)]
        if len(cand) == 0:
            continue
        x0, y0, x1, y1 = bounds[j]
        xc = xa[cand]
        yc = ya[cand]
        keep = (xc >= x0) & (xc <= x1) & (yc >= y0) & (yc <= y1) & (out[cand] < 0)
        cand = cand[keep]
        if len(cand) == 0:
            continue
        shapely.prepare(zone)
        inside = shapely.contains_xy(zone, xc[keep], yc[keep])
        out[cand[inside]] = k
    return out


#: Most cells of the site-prefilter grid.
_GRID_MAX_CELLS = 1 << 20


class _SiteGrid:
    """A regular grid over some boxes, to find the points that may lie in each box.

    Parameters
    ----------
    bounds : numpy.ndarray
        ``(n, 4)`` boxes ``xmin, ymin, xmax, ymax``, metres; non-finite boxes are
        ignored (they hold no point).
    """

    def __init__(self, bounds: np.ndarray) -> None:
        bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 4)
        self.ok = np.isfinite(bounds).all(axis=1)
        good = bounds[self.ok]
        if len(good) == 0:
            self.cell = 0.0
            return
        self.gx0, self.gy0 = float(good[:, 0].min()), float(good[:, 1].min())
        self.gx1, self.gy1 = float(good[:, 2].max()), float(good[:, 3].max())
        span = max(self.gx1 - self.gx0, self.gy1 - self.gy0, 1.0)
        # Cells about the size of a typical box, at most _GRID_MAX_CELLS of them.
        typical = float(np.median(np.maximum(good[:, 2] - good[:, 0], good[:, 3] - good[:, 1])))
        self.cell = max(typical, span / np.sqrt(_GRID_MAX_CELLS), 1e-6 * span)
        self.nx = int((self.gx1 - self.gx0) // self.cell) + 1
        self.ny = int((self.gy1 - self.gy0) // self.cell) + 1
        ix0, iy0 = self._cells(bounds[:, 0], bounds[:, 1], self.ok)
        ix1, iy1 = self._cells(bounds[:, 2], bounds[:, 3], self.ok)
        self.box_cells = np.stack([ix0, iy0, ix1, iy1], axis=1)
        touched = np.zeros((self.ny, self.nx), dtype=bool)
        for i in np.flatnonzero(self.ok):
            c0, r0, c1, r1 = self.box_cells[i]
            touched[r0 : r1 + 1, c0 : c1 + 1] = True
        # Touched cells numbered in row-major order: a box's cells in one row are
        # consecutive numbers.
        self.n_touched = int(touched.sum())
        rank_type = np.int16 if self.n_touched < np.iinfo(np.int16).max else np.int32
        rank = np.cumsum(touched.ravel(), dtype=np.int64).reshape(self.ny, self.nx) - 1
        rank[~touched] = -1
        self.rank = rank.astype(rank_type)

    def _cells(self, x: np.ndarray, y: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column and row of each coordinate (clipped to the grid; 0 where not ``ok``)."""
        ix = np.zeros(len(x), dtype=np.int64)
        iy = np.zeros(len(y), dtype=np.int64)
        ix[ok] = np.clip((x[ok] - self.gx0) // self.cell, 0, self.nx - 1)
        iy[ok] = np.clip((y[ok] - self.gy0) // self.cell, 0, self.ny - 1)
        return ix, iy

    def group(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the candidate points grouped by touched cell.

        Returns
        -------
        near : numpy.ndarray
            Positions of the points in a touched cell (ascending).
        cell_start : numpy.ndarray
            ``n_touched + 1`` offsets into ``members``, per touched cell.
        members : numpy.ndarray
            Positions into ``near``, grouped by cell.
        """
        empty = np.array([], dtype=np.int64)
        if self.cell == 0.0:
            return empty, np.zeros(1, dtype=np.int64), empty
        inside = (x >= self.gx0) & (x <= self.gx1)
        inside &= y >= self.gy0
        inside &= y <= self.gy1
        idx = np.flatnonzero(inside)
        del inside
        ix = ((x[idx] - self.gx0) // self.cell).astype(np.int32)
        np.minimum(ix, self.nx - 1, out=ix)
        iy = ((y[idx] - self.gy0) // self.cell).astype(np.int32)
        np.minimum(iy, self.ny - 1, out=iy)
        rank = self.rank[iy, ix]
        del ix, iy
        keep = rank >= 0
        near = idx[keep]
        del idx
        rank = rank[keep]
        del keep
        # a stable sort of small integers is a radix sort: linear in the points
        members = np.argsort(rank, kind="stable")
        cell_start = np.zeros(self.n_touched + 1, dtype=np.int64)
        np.cumsum(np.bincount(rank, minlength=self.n_touched), out=cell_start[1:])
        return near, cell_start, members

    def members_of(self, box: int, cell_start: np.ndarray, members: np.ndarray) -> np.ndarray:
        """Positions into ``near`` of the points in the cells box ``box`` overlaps."""
        if self.cell == 0.0 or not self.ok[box]:
            return np.array([], dtype=np.int64)
        c0, r0, c1, r1 = self.box_cells[box]
        parts = [
            members[cell_start[self.rank[r, c0]] : cell_start[self.rank[r, c1] + 1]]
            for r in range(r0, r1 + 1)
        ]
        return np.concatenate(parts) if parts else np.array([], dtype=np.int64)


def inside_own_site(
    x: np.ndarray,
    y: np.ndarray,
    site_pos: np.ndarray,
    sites_m: pd.DataFrame,
) -> np.ndarray:
    """Return, per point, whether it lies inside the polygon proper of its site (no buffer).

    Parameters
    ----------
    x, y : numpy.ndarray
        Projected coordinates, metres.
    site_pos : numpy.ndarray
        :func:`site_of_points` of each point (-1: at no site).
    sites_m : geopandas.GeoDataFrame
        The sites ``site_pos`` refers to, same projected CRS.

    Returns
    -------
    numpy.ndarray
        bool per point; False where ``site_pos`` is -1.

    Only points already at a site are tested, one prepared polygon per site, so
    the cost is that of the points near sites.
    """
    site_pos = np.asarray(site_pos, dtype=np.int64)
    out = np.zeros(len(site_pos), dtype=bool)
    at = np.flatnonzero(site_pos >= 0)
    if len(at) == 0:
        return out
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    geoms = np.asarray(sites_m.geometry.to_numpy(), dtype=object)
    # a stable sort of small integers is a radix sort (few sites: int16)
    small = np.int16 if len(sites_m) < np.iinfo(np.int16).max else np.int64
    order = at[np.argsort(site_pos[at].astype(small), kind="stable")]
    pos_sorted = site_pos[order]
    bounds = np.flatnonzero(np.r_[True, pos_sorted[1:] != pos_sorted[:-1]])
    for a, b in zip(bounds, np.r_[bounds[1:], len(order)], strict=True):
        geom = geoms[pos_sorted[a]]
        idx = order[a:b]
        shapely.prepare(geom)
        out[idx] = shapely.contains_xy(geom, x[idx], y[idx])
    return out


def nearest_site(
    x: ArrayLike,
    y: ArrayLike,
    sites_m: pd.DataFrame,
    *,
    kinds: Iterable[str] | str | None = None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Return the nearest site of each point and the distance to it.

    Parameters
    ----------
    x, y : array_like
        Point coordinates in metres (the CRS of ``sites_m``).
    sites_m : geopandas.GeoDataFrame
        Sites in a metric CRS.
    kinds : str or iterable of str, optional
        Only consider sites of these kinds.

    Returns
    -------
    index : numpy.ndarray of int64
        Positional index into ``sites_m``; -1 when there is no site or the point is NaN.
    distance_m : numpy.ndarray of float64
        Distance to that site's polygon in metres (0 inside); inf when none.
    """
    xa, ya = _points(x, y)
    idx = np.full(xa.size, -1, dtype="int64")
    dist = np.full(xa.size, np.inf)
    if xa.size == 0 or len(sites_m) == 0:
        return idx, dist
    sel = np.flatnonzero(_kind_mask(sites_m, kinds))
    if sel.size == 0:
        return idx, dist
    geoms = np.asarray(sites_m.geometry.values, dtype=object)[sel]
    tree = shapely.STRtree(geoms)
    ok_pos = np.flatnonzero(np.isfinite(xa) & np.isfinite(ya))
    for lo in range(0, ok_pos.size, _CHUNK_POINTS):
        pos = ok_pos[lo:lo + _CHUNK_POINTS]
        pts = shapely.points(xa[pos], ya[pos])
        (pt_i, tree_i), d = tree.query_nearest(pts, return_distance=True, all_matches=False)
        del pts
        idx[pos[pt_i]] = sel[tree_i]
        dist[pos[pt_i]] = d
    return idx, dist


def distance_to_nearest_site(
    x: ArrayLike,
    y: ArrayLike,
    sites_m: pd.DataFrame,
    *,
    kinds: Iterable[str] | str | None = None,
) -> NDArray[np.float64]:
    """Distance in metres from each point to the nearest site (0 inside).

    Parameters
    ----------
    x, y : array_like
        Point coordinates in metres (the CRS of ``sites_m``).
    sites_m : geopandas.GeoDataFrame
        Sites in a metric CRS.
    kinds : str or iterable of str, optional
        Only consider sites of these kinds (e.g. ``("origin", "disposal")``).

    Returns
    -------
    numpy.ndarray of float64
        Metres; ``inf`` when there is no such site or the point is NaN.
    """
    return nearest_site(x, y, sites_m, kinds=kinds)[1]
