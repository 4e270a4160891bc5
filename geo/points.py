"""The canonical points frame: source coordinates to WGS-84, a metric CRS, ``x, y`` in metres.

Pure array work, no file and no dataset: ``haulwatch.ingest.prepare`` uses it
to turn a dataset's tracks into the frame every detector reads, and the Dask
engine uses the same functions on each vehicle partition.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from .chinacoords import to_wgs84
from .crs import CoordSummary, pick_metric_crs, pick_metric_crs_of_summary, project

__all__ = [
    "EMPTY_DATASET_EPSG",
    "POINT_COLUMNS",
    "convert_geometries",
    "dataset_crs",
    "dataset_crs_of_summary",
    "geometry_centroids",
    "points_frame",
]

#: Metric CRS of a dataset with no coordinate at all (nothing is projected).
EMPTY_DATASET_EPSG = 3857

#: Columns of the canonical points frame, in order.
POINT_COLUMNS: tuple[str, ...] = (
    "vehicle_id", "vehicle_key", "time", "lon", "lat", "x", "y",
    "speed_kmh", "heading_deg", "load", "lift", "src_row",
)


def convert_geometries(gdf: gpd.GeoDataFrame, coord_system: str) -> gpd.GeoDataFrame:
    """Return a copy of ``gdf`` with coordinates converted from ``coord_system`` to WGS-84.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Geometries whose coordinates are in ``coord_system`` (lon, lat degrees).
    coord_system : {"wgs84", "gcj02", "bd09"}
        Their system.

    Returns
    -------
    geopandas.GeoDataFrame
        A new frame, CRS EPSG:4326.
    """
    out = gdf.copy()
    if len(out) and coord_system != "wgs84":
        def conv(coords: np.ndarray) -> np.ndarray:
            lon, lat = to_wgs84(coords[:, 0], coords[:, 1], coord_system)
            return np.column_stack([lon, lat])

        out = out.set_geometry(
            gpd.GeoSeries(shapely.transform(np.asarray(out.geometry.values, dtype=object),
                                            conv), index=out.index, crs="EPSG:4326"))
    return out.set_crs("EPSG:4326", allow_override=True)


def geometry_centroids(*frames: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of the centroids of every geometry of ``frames``.

    Parameters
    ----------
    *frames : geopandas.GeoDataFrame
        WGS-84 frames (sites, routes).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float64 degrees, one per geometry, frames in order.
    """
    lon: list[np.ndarray] = [np.empty(0)]
    lat: list[np.ndarray] = [np.empty(0)]
    for gdf in frames:
        if len(gdf):
            cent = shapely.centroid(np.asarray(gdf.geometry.values, dtype=object))
            lon.append(shapely.get_x(cent))
            lat.append(shapely.get_y(cent))
    return np.concatenate(lon).astype("float64"), np.concatenate(lat).astype("float64")


def dataset_crs(lon: np.ndarray, lat: np.ndarray) -> pyproj.CRS:
    """The metric CRS of a dataset: :func:`~haulwatch.geo.crs.pick_metric_crs` of its coordinates.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        WGS-84 degrees of every point and of the registry's centroids.

    Returns
    -------
    pyproj.CRS
        The CRS picked, or EPSG:3857 (:data:`EMPTY_DATASET_EPSG`) when no
        coordinate is finite (nothing will be measured).
    """
    lon = np.asarray(lon, dtype="float64")
    lat = np.asarray(lat, dtype="float64")
    if np.isfinite(lon).any() and np.isfinite(lat).any():
        return pick_metric_crs(lon, lat)
    return pyproj.CRS.from_epsg(EMPTY_DATASET_EPSG)


def points_frame(
    tracks: pd.DataFrame, coord_system: str, crs: pyproj.CRS | None = None, *,
    also: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[pd.DataFrame, pyproj.CRS]:
    """The canonical points frame of a tracks frame: WGS-84 ``lon, lat`` and metric ``x, y``.

    Parameters
    ----------
    tracks : pandas.DataFrame
        The tracks frame (``haulwatch.ingest.tracks.TRACK_COLUMNS``), any index.
    coord_system : {"wgs84", "gcj02", "bd09"}
        System of its ``lon, lat``.
    crs : pyproj.CRS, optional
        The metric CRS; None picks one (:func:`dataset_crs`) from the points and ``also``.
    also : (numpy.ndarray, numpy.ndarray), optional
        More WGS-84 longitudes and latitudes for the CRS choice (the registry's
        centroids, :func:`geometry_centroids`).

    Returns
    -------
    (pandas.DataFrame, pyproj.CRS)
        Columns :data:`POINT_COLUMNS`, RangeIndex, same rows in the same order;
        unchanged columns share memory with ``tracks`` (copy-on-write); and the CRS.
    """
    src = tracks.reset_index(drop=True)
    if coord_system == "wgs84":  # nothing to convert: share the columns (copy-on-write)
        lon, lat = src["lon"].to_numpy("float64"), src["lat"].to_numpy("float64")
    else:
        lon, lat = to_wgs84(src["lon"].to_numpy("float64"), src["lat"].to_numpy("float64"),
                            coord_system)
    if crs is None:
        extra_lon, extra_lat = also if also is not None else (np.empty(0), np.empty(0))
        crs = dataset_crs(np.concatenate([lon, extra_lon]), np.concatenate([lat, extra_lat]))
    else:
        crs = pyproj.CRS.from_user_input(crs)
    x, y = project(lon, lat, crs)
    points = pd.DataFrame(
        {
            "vehicle_id": src["vehicle_id"],
            "vehicle_key": src["vehicle_key"],
            "time": src["time"],
            # wgs84: the Series themselves, so copy-on-write tracks the sharing
            "lon": src["lon"] if coord_system == "wgs84" else lon,
            "lat": src["lat"] if coord_system == "wgs84" else lat,
            "x": x,
            "y": y,
            "speed_kmh": src["speed_kmh"].astype("float64"),
            "heading_deg": src["heading_deg"].astype("float64"),
            "load": src["load"],
            "lift": src["lift"].astype("float64"),
            "src_row": src["src_row"].astype("int64"),
        },
        copy=False,  # unchanged columns share memory with tracks (copy-on-write)
    )
    return points, crs


def dataset_crs_of_summary(summary: CoordSummary) -> pyproj.CRS:
    """:func:`dataset_crs` from a :class:`~haulwatch.geo.crs.CoordSummary` (data spread over processes).

    Parameters
    ----------
    summary : CoordSummary
        Of every point and registry centroid.

    Returns
    -------
    pyproj.CRS
        :func:`~haulwatch.geo.crs.pick_metric_crs_of_summary`, or EPSG:3857
        when no coordinate is valid.
    """
    if summary.valid == 0:
        return pyproj.CRS.from_epsg(EMPTY_DATASET_EPSG)
    return pick_metric_crs_of_summary(summary)
