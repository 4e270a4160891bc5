"""Which site a point is in, and how far the nearest site is.

One STRtree query answers for all points at once (no per-point loop). When
sites overlap, a point belongs to the most specific one: the smallest area
first, then the earlier row (deterministic). Coordinates are metres in the
dataset's metric CRS (``Dataset.sites_m``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray

__all__ = ["distance_to_nearest_site", "nearest_site", "site_of_points"]

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
        return sites_m["kind"].map(dict(buffer_m)).fillna(0.0).to_numpy("float64")
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
        point is in no (selected) site or has NaN coordinates. Overlaps go to
        the site with the smallest (unbuffered) area, then the lower position.

    Raises
    ------
    ValueError
        If ``buffer_m`` is negative or ``x``, ``y`` differ in length.
    """
    xa, ya = _points(x, y)
    out = np.full(xa.size, -1, dtype="int64")
    if xa.size == 0 or len(sites_m) == 0:
        return out
    sel = np.flatnonzero(_kind_mask(sites_m, kinds))
    if sel.size == 0:
        return out
    geoms = np.asarray(sites_m.geometry.values, dtype=object)[sel]
    buf = _buffers(sites_m, buffer_m)[sel]
    grown = np.where(buf > 0, shapely.buffer(geoms, buf), geoms)
    area = shapely.area(geoms)
    tree = shapely.STRtree(grown)
    for lo in range(0, xa.size, _CHUNK_POINTS):
        hi = min(lo + _CHUNK_POINTS, xa.size)
        pts = shapely.points(xa[lo:hi], ya[lo:hi])
        pt_idx, tree_idx = tree.query(pts, predicate="intersects")
        del pts
        if pt_idx.size == 0:
            continue
        # Priority: smallest area, then lowest position: one lexsort, first per point.
        order = np.lexsort((sel[tree_idx], area[tree_idx], pt_idx))
        pt_sorted = pt_idx[order]
        first = np.ones(pt_sorted.size, dtype=bool)
        first[1:] = pt_sorted[1:] != pt_sorted[:-1]
        out[lo + pt_sorted[first]] = sel[tree_idx[order][first]]
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
