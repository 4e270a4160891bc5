"""Turn a :class:`~haulwatch.ingest.dataset.RawDataset` into an analysis-ready Dataset.

Steps: every coordinate (tracks, sites, routes) from the folder's
``coord_system`` to WGS-84; teleport outliers dropped (into rejects with
reason ``teleport``); a metric CRS picked for the data; ``x, y`` added to the
points and projected copies of sites and routes made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from ..ingest.dataset import RawDataset
from ..ingest.rejects import ACTION_DROPPED, concat_rejects, make_rejects
from .chinacoords import to_wgs84
from .clean import drop_teleports
from .crs import pick_metric_crs, project

__all__ = ["POINT_COLUMNS", "Dataset", "convert_geometries", "prepare"]

#: Metric CRS of a dataset with no coordinate at all (nothing is projected).
_EMPTY_DATASET_EPSG = 3857

#: Columns of the canonical points frame, in order.
POINT_COLUMNS: tuple[str, ...] = (
    "vehicle_id", "vehicle_key", "time", "lon", "lat", "x", "y",
    "speed_kmh", "heading_deg", "load", "lift", "src_row",
)


@dataclass(frozen=True)
class Dataset:
    """A dataset ready for the detectors: WGS-84, cleaned, projected.

    Attributes
    ----------
    folder, coord_system, timezone, manifests, vehicles, stats, has_load, has_lift
        As in :class:`~haulwatch.ingest.dataset.RawDataset` (``coord_system``
        names the *source* system; every coordinate here is WGS-84).
    sites, routes : geopandas.GeoDataFrame
        As read, converted to WGS-84 (EPSG:4326).
    rejects : pandas.DataFrame
        The ingest rejects plus one ``teleport`` row per dropped outlier.
    crs : pyproj.CRS
        The metric CRS of ``x, y``, ``sites_m`` and ``routes_m``.
    sites_m, routes_m : geopandas.GeoDataFrame
        ``sites`` / ``routes`` projected to ``crs``.
    points : pandas.DataFrame
        ``vehicle_id, vehicle_key, time, lon, lat, x, y, speed_kmh,
        heading_deg, load, lift, src_row``, sorted by ``vehicle_key, time``,
        RangeIndex; ``lon, lat`` WGS-84, ``x, y`` metres.
    """

    folder: Path
    coord_system: str
    timezone: str
    sites: gpd.GeoDataFrame
    routes: gpd.GeoDataFrame
    manifests: pd.DataFrame
    vehicles: pd.DataFrame | None
    rejects: pd.DataFrame
    crs: pyproj.CRS
    sites_m: gpd.GeoDataFrame
    routes_m: gpd.GeoDataFrame
    points: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    has_load: bool = False
    has_lift: bool = False


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


def prepare(
    raw: RawDataset,
    *,
    max_speed_kmh: float = 150.0,
    min_jump_m: float = 300.0,
    max_reversal_speed_kmh: float | None = 45.0,
    crs: pyproj.CRS | None = None,
    progress: Callable[[str], None] | None = None,
) -> Dataset:
    """Convert, clean and project a raw dataset.

    Parameters
    ----------
    raw : RawDataset
        From :func:`haulwatch.ingest.dataset.read_dataset` (not modified).
    max_speed_kmh : float, default 150
        Teleport rule: implied speeds above this are impossible (see
        :func:`haulwatch.geo.clean.drop_teleports`).
    min_jump_m : float, default 300
        Teleport rule: jumps shorter than this are never teleports.
    max_reversal_speed_kmh : float or None, default 45
        Hairpin rule of the teleport filter (None disables it).
    crs : pyproj.CRS, optional
        Metric CRS to use instead of picking one (e.g. to share one between datasets).
    progress : callable, optional
        Receives short stage messages.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        If a threshold is invalid.

    Notes
    -----
    A dataset without any coordinate (no valid point, site or route, e.g.
    every track row rejected) still prepares, with the placeholder metric CRS
    EPSG:3857, so that its audit ends cleanly and reports the rejects.
    """
    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    tracks = raw.tracks
    say(f"prepare: {len(tracks):,} points from {raw.coord_system} to WGS-84")
    if raw.coord_system == "wgs84":  # nothing to convert: share the columns (copy-on-write)
        lon, lat = tracks["lon"].to_numpy("float64"), tracks["lat"].to_numpy("float64")
    else:
        lon, lat = to_wgs84(tracks["lon"].to_numpy("float64"),
                            tracks["lat"].to_numpy("float64"), raw.coord_system)
    sites = convert_geometries(raw.sites, raw.coord_system)
    routes = convert_geometries(raw.routes, raw.coord_system)

    if crs is None:
        sample_lon = [lon]
        sample_lat = [lat]
        for gdf in (sites, routes):
            if len(gdf):
                cent = shapely.centroid(np.asarray(gdf.geometry.values, dtype=object))
                sample_lon.append(shapely.get_x(cent))
                sample_lat.append(shapely.get_y(cent))
        all_lon, all_lat = np.concatenate(sample_lon), np.concatenate(sample_lat)
        if np.isfinite(all_lon).any() and np.isfinite(all_lat).any():
            crs = pick_metric_crs(all_lon, all_lat)
        else:  # nothing to measure (no point, site or route): any metric CRS will do
            crs = pyproj.CRS.from_epsg(_EMPTY_DATASET_EPSG)
    else:
        crs = pyproj.CRS.from_user_input(crs)
    say(f"prepare: metric CRS {crs.name}")
    x, y = project(lon, lat, crs)

    src = tracks.reset_index(drop=True)
    points = pd.DataFrame(
        {
            "vehicle_id": src["vehicle_id"],
            "vehicle_key": src["vehicle_key"],
            "time": src["time"],
            # wgs84: the Series themselves, so copy-on-write tracks the sharing
            "lon": src["lon"] if raw.coord_system == "wgs84" else lon,
            "lat": src["lat"] if raw.coord_system == "wgs84" else lat,
            "x": x,
            "y": y,
            "speed_kmh": src["speed_kmh"].astype("float64"),
            "heading_deg": src["heading_deg"].astype("float64"),
            "load": src["load"],
            "lift": src["lift"].astype("float64"),
            "src_row": src["src_row"].astype("int64"),
        },
        copy=False,  # unchanged columns share memory with raw.tracks (copy-on-write)
    )

    kept, rejected = drop_teleports(points, max_speed_kmh=max_speed_kmh, min_jump_m=min_jump_m,
                                    max_reversal_speed_kmh=max_reversal_speed_kmh)
    rejects = raw.rejects
    stats = dict(raw.stats)
    n_tele = int(rejected.sum())
    if n_tele:
        bad = points.loc[rejected]
        file = str(raw.stats.get("tracks_file", "tracks.csv"))
        values = np.array([f"{a:.6f},{b:.6f}" for a, b in
                           zip(src["lon"].to_numpy()[rejected], src["lat"].to_numpy()[rejected],
                               strict=True)],
                          dtype=object)
        tele = make_rejects(
            file, bad["src_row"].to_numpy(), "lon,lat", values,
            "teleport: a GPS fix thrown off the track and back (impossible jump or "
            f"hairpin; value in {raw.coord_system})",
            ACTION_DROPPED,
        )
        rejects = concat_rejects([rejects, tele])
        points = points.loc[kept].reset_index(drop=True)
        if "rows_dropped" in stats and file in stats["rows_dropped"]:
            stats["rows_dropped"] = {**stats["rows_dropped"],
                                     file: stats["rows_dropped"][file] + n_tele}
        if "rows_kept" in stats and file in stats["rows_kept"]:
            stats["rows_kept"] = {**stats["rows_kept"], file: stats["rows_kept"][file] - n_tele}
    stats["teleports_dropped"] = n_tele
    say(f"prepare: {n_tele} teleport outliers dropped")

    sites_m = sites.to_crs(crs) if len(sites) else sites.set_crs(crs, allow_override=True)
    routes_m = routes.to_crs(crs) if len(routes) else routes.set_crs(crs, allow_override=True)
    return Dataset(
        folder=raw.folder,
        coord_system=raw.coord_system,
        timezone=raw.timezone,
        sites=sites,
        routes=routes,
        manifests=raw.manifests,
        vehicles=raw.vehicles,
        rejects=rejects,
        crs=crs,
        sites_m=sites_m,
        routes_m=routes_m,
        points=points,
        stats=stats,
        has_load=raw.has_load,
        has_lift=raw.has_lift,
    )

