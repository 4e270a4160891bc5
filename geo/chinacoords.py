"""Chinese map coordinate systems: GCJ-02 and BD-09 to and from WGS-84.

GCJ-02 ("Mars coordinates") is the obfuscated system of Chinese web maps
(Amap, Tencent); BD-09 is Baidu's further offset of GCJ-02. The offset from
WGS-84 is several hundred metres. The forward GCJ-02 transform is the
published Krasovsky-ellipsoid formula (a = 6378245.0 m,
e² = 0.00669342162296594323) applied only inside the usual China bounding
box; inverses are computed by fixed-point iteration to better than 1e-9°
(well under a millimetre), not by the one-step approximation.

All functions take and return numpy arrays (or scalars) of longitude and
latitude in degrees, in ``(lon, lat)`` order, and propagate NaN.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from haulwatch.errors import UserError

__all__ = [
    "COORD_SYSTEMS",
    "CoordSystemError",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "to_wgs84",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

#: The coordinate systems a dataset may be written in.
COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0
_TOL_DEG = 1e-10
_MAX_ITER = 30

Coords = tuple[NDArray[np.float64], NDArray[np.float64]]


class CoordSystemError(UserError, ValueError):
    """An unknown coordinate system name."""


def _arrays(lon: ArrayLike, lat: ArrayLike) -> Coords:
    lon_a = np.asarray(lon, dtype="float64")
    lat_a = np.asarray(lat, dtype="float64")
    if lon_a.shape != lat_a.shape:
        raise ValueError(
            f"lon and lat must have the same shape, got {lon_a.shape} and {lat_a.shape}"
        )
    return lon_a, lat_a


def in_china(lon: ArrayLike, lat: ArrayLike) -> NDArray[np.bool_]:
    """Return where GCJ-02 applies: the usual China bounding box.

    Parameters
    ----------
    lon, lat : array_like
        Degrees (WGS-84 or GCJ-02; the box is coarse enough for either).

    Returns
    -------
    numpy.ndarray of bool
        True inside 72.004–137.8347°E, 0.8293–55.8271°N (NaN gives False).
    """
    lon_a, lat_a = _arrays(lon, lat)
    return (lon_a >= 72.004) & (lon_a <= 137.8347) & (lat_a >= 0.8293) & (lat_a <= 55.8271)


def _gcj_delta(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> Coords:
    """Offset (dlon, dlat) in degrees added to WGS-84 to get GCJ-02."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat = dlat + common
    dlat = dlat + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlon = dlon + common
    dlon = dlon + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Convert WGS-84 to GCJ-02 (identity outside China).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 degrees.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        GCJ-02 longitude and latitude in degrees.
    """
    lon_a, lat_a = _arrays(lon, lat)
    dlon, dlat = _gcj_delta(lon_a, lat_a)
    inside = in_china(lon_a, lat_a)
    return np.where(inside, lon_a + dlon, lon_a), np.where(inside, lat_a + dlat, lat_a)


def _invert(
    forward: Callable[[NDArray[np.float64], NDArray[np.float64]], Coords],
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    start: Coords | None = None,
) -> Coords:
    """Solve forward(w) = target by fixed-point iteration w ← w − (forward(w) − target).

    The iteration starts at ``start`` (an approximate inverse) or at the target itself.
    """
    w_lon, w_lat = (lon.copy(), lat.copy()) if start is None else start
    for _ in range(_MAX_ITER):
        f_lon, f_lat = forward(w_lon, w_lat)
        e_lon = f_lon - lon
        e_lat = f_lat - lat
        w_lon = w_lon - e_lon
        w_lat = w_lat - e_lat
        err = np.maximum(np.abs(e_lon), np.abs(e_lat))
        if not np.any(err > _TOL_DEG):  # NaN compares False: NaN inputs do not loop
            break
    return w_lon, w_lat


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Convert GCJ-02 to WGS-84 by iterating the forward formula (< 1e-9° error).

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 degrees.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        WGS-84 longitude and latitude in degrees.
    """
    lon_a, lat_a = _arrays(lon, lat)
    return _invert(wgs84_to_gcj02, lon_a, lat_a)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Convert GCJ-02 to BD-09 (Baidu).

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 degrees.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        BD-09 longitude and latitude in degrees.
    """
    x, y = _arrays(lon, lat)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def bd09_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Convert BD-09 to GCJ-02 (exact inverse by iteration, < 1e-9° error).

    Parameters
    ----------
    lon, lat : array_like
        BD-09 degrees.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        GCJ-02 longitude and latitude in degrees.
    """
    lon_a, lat_a = _arrays(lon, lat)
    # The published one-step inverse is the starting point; iteration removes its error.
    x = lon_a - 0.0065
    y = lat_a - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(gcj02_to_bd09, lon_a, lat_a, start=(z * np.cos(theta), z * np.sin(theta)))


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Convert WGS-84 to BD-09 (via GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 degrees.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        BD-09 longitude and latitude in degrees.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> Coords:
    """Convert BD-09 to WGS-84 (via GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        BD-09 degrees.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        WGS-84 longitude and latitude in degrees.
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


def _check_system(system: str) -> str:
    name = str(system).strip().lower().replace("-", "").replace("_", "")
    if name not in COORD_SYSTEMS:
        raise CoordSystemError(
            f"coord_system {system!r} is not supported; must be one of {', '.join(COORD_SYSTEMS)}"
        )
    return name


def to_wgs84(lon: ArrayLike, lat: ArrayLike, system: str) -> Coords:
    """Convert coordinates written in ``system`` to WGS-84.

    Parameters
    ----------
    lon, lat : array_like
        Degrees in ``system``.
    system : {"wgs84", "gcj02", "bd09"}
        The source system (case and ``-``/``_`` ignored: ``"GCJ-02"`` works).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        WGS-84 longitude and latitude in degrees (new arrays).

    Raises
    ------
    CoordSystemError
        If ``system`` is not one of the supported names.
    """
    name = _check_system(system)
    lon_a, lat_a = _arrays(lon, lat)
    if name == "gcj02":
        return gcj02_to_wgs84(lon_a, lat_a)
    if name == "bd09":
        return bd09_to_wgs84(lon_a, lat_a)
    return lon_a.copy(), lat_a.copy()


def from_wgs84(lon: ArrayLike, lat: ArrayLike, system: str) -> Coords:
    """Convert WGS-84 coordinates to ``system`` (the inverse of :func:`to_wgs84`).

    Parameters
    ----------
    lon, lat : array_like
        WGS-84 degrees.
    system : {"wgs84", "gcj02", "bd09"}
        The target system.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Longitude and latitude in ``system``.
    """
    name = _check_system(system)
    lon_a, lat_a = _arrays(lon, lat)
    if name == "gcj02":
        return wgs84_to_gcj02(lon_a, lat_a)
    if name == "bd09":
        return wgs84_to_bd09(lon_a, lat_a)
    return lon_a.copy(), lat_a.copy()
