"""Metric coordinate reference systems: pick one for a dataset, project to it.

Distances, buffers and speeds are computed in metres in a projected CRS. A
dataset that fits in about two UTM zones uses the UTM zone of its median
longitude (north or south by its median latitude); a wider one gets a custom
transverse Mercator centred on the data, which keeps the scale error small
near the centre instead of blowing up at a zone edge.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyproj
from numpy.typing import ArrayLike, NDArray

__all__ = ["WGS84", "pick_metric_crs", "project", "unproject"]

#: Geographic WGS-84 (longitude, latitude order with ``always_xy``).
WGS84 = pyproj.CRS.from_epsg(4326)

#: Data wider than this (degrees of longitude) leaves UTM for a custom TM.
_MAX_UTM_SPAN_DEG = 12.0


def pick_metric_crs(lon: ArrayLike, lat: ArrayLike) -> pyproj.CRS:
    """Pick a metric CRS suited to the given WGS-84 coordinates.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 degrees; NaN and out-of-range values are ignored.

    Returns
    -------
    pyproj.CRS
        ``EPSG:326zz`` / ``EPSG:327zz`` (UTM zone ``zz`` of the median
        longitude) when the data span at most about two zones (12° of
        longitude), else a transverse Mercator (WGS-84 ellipsoid, metres)
        centred on the data's median longitude. Data straddling the
        antimeridian are measured across it (179.9° and -179.9° are 0.2° apart).

    Raises
    ------
    ValueError
        If no valid coordinate is given.
    """
    lon_a = np.asarray(lon, dtype="float64").ravel()
    lat_a = np.asarray(lat, dtype="float64").ravel()
    if lon_a.shape != lat_a.shape:
        raise ValueError(
            f"lon and lat must have the same length, got {lon_a.size} and {lat_a.size}"
        )
    ok = (
        np.isfinite(lon_a) & np.isfinite(lat_a)
        & (np.abs(lon_a) <= 180.0) & (np.abs(lat_a) <= 90.0)
    )
    if not ok.any():
        raise ValueError(
            "pick_metric_crs needs at least one valid coordinate "
            "(finite lon in [-180, 180], lat in [-90, 90]); got none"
        )
    lon_a = _unwrap_antimeridian(lon_a[ok])
    lat_a = lat_a[ok]
    lon_med = float(np.median(lon_a))
    lat_med = float(np.median(lat_a))
    # Robust span: ignore a few stray points at the extremes.
    if lon_a.size >= 100:
        lo, hi = np.percentile(lon_a, [0.5, 99.5])
    else:
        lo, hi = lon_a.min(), lon_a.max()
    lon_med = (lon_med + 180.0) % 360.0 - 180.0  # back to [-180, 180)
    if hi - lo > _MAX_UTM_SPAN_DEG:
        return pyproj.CRS.from_proj4(
            f"+proj=tmerc +lat_0=0 +lon_0={lon_med:.6f} +k=0.9996 +x_0=500000 "
            f"+y_0={10_000_000 if lat_med < 0 else 0} +ellps=WGS84 +units=m +no_defs"
        )
    zone = int(np.floor((lon_med + 180.0) / 6.0)) % 60 + 1
    return pyproj.CRS.from_epsg((32700 if lat_med < 0 else 32600) + zone)


def _unwrap_antimeridian(lon: NDArray[np.float64]) -> NDArray[np.float64]:
    """Longitudes on a continuous range when the data straddle ±180° (Fiji, Chukotka).

    Returned in [0, 360) when that makes the data narrower than in [-180, 180],
    so that the median and the span are those of the data, not of the globe.
    """
    if lon.size == 0:
        return lon
    east = lon % 360.0
    if float(east.max() - east.min()) < float(lon.max() - lon.min()):
        return east
    return lon


@lru_cache(maxsize=32)
def _transformer(src_wkt: str, dst_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(
        pyproj.CRS.from_wkt(src_wkt), pyproj.CRS.from_wkt(dst_wkt), always_xy=True
    )


def _pair(crs: pyproj.CRS | str | int) -> str:
    return pyproj.CRS.from_user_input(crs).to_wkt()


def project(
    lon: ArrayLike, lat: ArrayLike, crs: pyproj.CRS | str | int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Project WGS-84 longitude/latitude to ``crs`` (vectorized, cached transformer).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 degrees.
    crs : pyproj.CRS or str or int
        Target metric CRS (anything ``pyproj.CRS.from_user_input`` accepts).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``x`` (easting) and ``y`` (northing) in the CRS units (metres); NaN in → NaN out.
    """
    tr = _transformer(WGS84.to_wkt(), _pair(crs))
    x, y = tr.transform(np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64"))
    return np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64")


def unproject(
    x: ArrayLike, y: ArrayLike, crs: pyproj.CRS | str | int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Convert projected ``x, y`` in ``crs`` back to WGS-84 longitude/latitude.

    Parameters
    ----------
    x, y : array_like
        Coordinates in ``crs`` (metres).
    crs : pyproj.CRS or str or int
        The CRS of ``x, y``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        WGS-84 longitude and latitude in degrees.
    """
    tr = _transformer(_pair(crs), WGS84.to_wkt())
    lon, lat = tr.transform(np.asarray(x, dtype="float64"), np.asarray(y, dtype="float64"))
    return np.asarray(lon, dtype="float64"), np.asarray(lat, dtype="float64")
