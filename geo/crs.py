"""Metric coordinate reference systems: pick one for a dataset, project to it.

Distances, buffers and speeds are computed in metres in a projected CRS. A
dataset that fits in about two UTM zones uses the UTM zone of its median
longitude (north or south by its median latitude); a wider one gets a custom
transverse Mercator centred on the data, which keeps the scale error small
near the centre instead of blowing up at a zone edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyproj
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "WGS84",
    "CoordSummary",
    "pick_metric_crs",
    "pick_metric_crs_of_summary",
    "project",
    "summarize_coords",
    "unproject",
]

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


@dataclass(frozen=True)
class CoordSummary:
    """What :func:`pick_metric_crs_of_summary` needs of some coordinates, mergeable with ``+``.

    Lets the CRS be picked for data spread over many processes without
    gathering it: counts, smallest and largest longitude per UTM zone are
    exact, the longitudes a sample.

    Attributes
    ----------
    zone_counts : numpy.ndarray
        int64[60], valid coordinates per UTM zone.
    south : int
        Valid coordinates with latitude < 0.
    valid : int
        Valid coordinates (finite, in range).
    sample_lon : numpy.ndarray
        Every ``sample_every``-th longitude (unfiltered).
    zone_min, zone_max : numpy.ndarray
        float64[60], smallest / largest valid longitude per zone (+inf / -inf when none).
    """

    zone_counts: NDArray[np.int64]
    south: int
    valid: int
    sample_lon: NDArray[np.float64]
    zone_min: NDArray[np.float64]
    zone_max: NDArray[np.float64]

    def __add__(self, other: CoordSummary) -> CoordSummary:
        """Summary of both sets of coordinates."""
        return CoordSummary(self.zone_counts + other.zone_counts, self.south + other.south,
                            self.valid + other.valid,
                            np.concatenate([self.sample_lon, other.sample_lon]),
                            np.minimum(self.zone_min, other.zone_min),
                            np.maximum(self.zone_max, other.zone_max))


def summarize_coords(lon: ArrayLike, lat: ArrayLike, *, sample_every: int = 64) -> CoordSummary:
    """Summarize WGS-84 coordinates for :func:`pick_metric_crs_of_summary`.

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 degrees; NaN and out-of-range values are not counted.
    sample_every : int, default 64
        Keep every n-th longitude as the sample.

    Returns
    -------
    CoordSummary
    """
    lon_a = np.asarray(lon, dtype="float64").ravel()
    lat_a = np.asarray(lat, dtype="float64").ravel()
    ok = (np.isfinite(lon_a) & np.isfinite(lat_a)
          & (np.abs(lon_a) <= 180.0) & (np.abs(lat_a) <= 90.0))
    lon_ok = lon_a[ok]
    zone = np.floor((lon_ok + 180.0) / 6.0).astype("int64") % 60
    zone_min = np.full(60, np.inf)
    zone_max = np.full(60, -np.inf)
    np.minimum.at(zone_min, zone, lon_ok)
    np.maximum.at(zone_max, zone, lon_ok)
    return CoordSummary(np.bincount(zone, minlength=60).astype("int64"),
                        int((lat_a[ok] < 0).sum()), int(ok.sum()),
                        lon_a[::sample_every].copy(), zone_min, zone_max)


def pick_metric_crs_of_summary(summary: CoordSummary) -> pyproj.CRS:
    """The CRS :func:`pick_metric_crs` picks, from a :class:`CoordSummary`.

    The UTM zone of the median longitude comes from the exact per-zone
    counts (and, when the two middle values lie in two zones, from their
    exact mean: the largest longitude of the lower zone and the smallest of
    the upper), so it is the zone :func:`pick_metric_crs` picks from all the
    coordinates. Only for data spanning more than about two zones (a
    transverse Mercator on the median longitude) is the median estimated from
    the sample. Data straddling the antimeridian are not unwrapped here.

    Parameters
    ----------
    summary : CoordSummary
        Of every coordinate (merged with ``+``).

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    ValueError
        If no valid coordinate was summarized.
    """
    counts, south, valid = summary.zone_counts, summary.south, summary.valid
    if valid == 0:
        return pick_metric_crs(np.empty(0), np.empty(0))  # raises the usual ValueError
    sample = summary.sample_lon[np.isfinite(summary.sample_lon)
                                & (np.abs(summary.sample_lon) <= 180)]
    if sample.size >= 100:
        lo, hi = np.percentile(sample, [0.5, 99.5])
    else:
        lo, hi = (sample.min(), sample.max()) if sample.size else (0.0, 0.0)
    south_median = south * 2 > valid  # lat median < 0 when most points are south
    if hi - lo > _MAX_UTM_SPAN_DEG:  # transverse Mercator on the (sampled) median longitude
        return pick_metric_crs(sample, np.full_like(sample, -1.0 if south_median else 1.0))
    # exact zone of the median: the zone where the cumulative count crosses half
    cum = np.cumsum(counts)
    lower = int(np.searchsorted(cum, (valid + 1) // 2))  # zone of the lower middle value
    upper = int(np.searchsorted(cum, valid // 2 + 1))  # zone of the upper middle value
    zone = lower + 1
    if upper != lower:  # the two middle values lie in two zones: their mean decides
        median = (float(summary.zone_max[lower]) + float(summary.zone_min[upper])) / 2.0
        zone = int(np.floor((median + 180.0) / 6.0)) % 60 + 1
    return pyproj.CRS.from_epsg((32700 if south_median else 32600) + zone)


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
