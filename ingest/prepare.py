"""Turn a :class:`~haulwatch.ingest.dataset.RawDataset` into an analysis-ready :class:`Dataset`.

Steps: every coordinate (tracks, sites, routes) from the folder's
``coord_system`` to WGS-84; a metric CRS picked for the data; ``x, y`` added
to the points (``haulwatch.geo.points``); teleport outliers dropped
(``haulwatch.geo.clean.drop_teleports``) into the rejects with reason
``teleport`` and out of the counts; projected copies of sites and routes.
The geometry is geo's; this module assembles the dataset around it (rejects,
counts, registry), so that geo never imports the reader. The Dask engine
calls the same pieces (:func:`prepare_points`, :func:`add_teleports`,
:func:`assemble`) per vehicle partition and on the client.
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

from haulwatch.geo.clean import drop_teleports
from haulwatch.geo.points import (
    POINT_COLUMNS,
    convert_geometries,
    dataset_crs,
    geometry_centroids,
    points_frame,
)

from .dataset import RawDataset, Registry
from .rejects import ACTION_DROPPED, concat_rejects, empty_rejects, make_rejects
from .tracks import empty_tracks

__all__ = [
    "POINT_COLUMNS",
    "Dataset",
    "add_teleports",
    "assemble",
    "empty_points",
    "prepare",
    "prepare_points",
    "prepare_registry",
]


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


def empty_points() -> pd.DataFrame:
    """An empty points frame (columns :data:`POINT_COLUMNS`, their dtypes)."""
    base = empty_tracks()
    return pd.DataFrame({
        "vehicle_id": base["vehicle_id"],
        "vehicle_key": base["vehicle_key"],
        "time": base["time"],
        **{c: pd.Series([], dtype="float64") for c in ("lon", "lat", "x", "y", "speed_kmh",
                                                        "heading_deg")},
        "load": base["load"],
        "lift": pd.Series([], dtype="float64"),
        "src_row": pd.Series([], dtype="int64"),
    })[list(POINT_COLUMNS)]


def prepare_points(
    tracks: pd.DataFrame, coord_system: str, crs: pyproj.CRS | None, *, file: str,
    also: tuple[np.ndarray, np.ndarray] | None = None,
    max_speed_kmh: float = 150.0, min_jump_m: float = 300.0,
    max_reversal_speed_kmh: float | None = 45.0,
) -> tuple[pd.DataFrame, pd.DataFrame, pyproj.CRS]:
    """Points of a tracks frame, without teleport outliers, and the rejects of the outliers.

    Parameters
    ----------
    tracks : pandas.DataFrame
        The tracks frame (sorted by ``vehicle_key, time``).
    coord_system : str
        System of its coordinates.
    crs : pyproj.CRS or None
        The metric CRS; None picks one from the points and ``also``.
    file : str
        Tracks file name of the rejects.
    also : (numpy.ndarray, numpy.ndarray), optional
        Registry centroids (WGS-84) for the CRS choice.
    max_speed_kmh, min_jump_m, max_reversal_speed_kmh
        The teleport rule (:func:`haulwatch.geo.clean.drop_teleports`).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, pyproj.CRS)
        The points (RangeIndex), one ``teleport`` reject per outlier (points
        order; value in the source system) and the CRS.

    Raises
    ------
    ValueError
        If a threshold is invalid.
    """
    points, crs = points_frame(tracks, coord_system, crs, also=also)
    kept, rejected = drop_teleports(points, max_speed_kmh=max_speed_kmh, min_jump_m=min_jump_m,
                                    max_reversal_speed_kmh=max_reversal_speed_kmh)
    if not rejected.any():
        return points, empty_rejects(), crs
    src_lon = tracks["lon"].to_numpy()[rejected]
    src_lat = tracks["lat"].to_numpy()[rejected]
    values = np.array([f"{a:.6f},{b:.6f}" for a, b in zip(src_lon, src_lat, strict=True)],
                      dtype=object)
    tele = make_rejects(
        file, points["src_row"].to_numpy()[rejected], "lon,lat", values,
        "teleport: a GPS fix thrown off the track and back (impossible jump or "
        f"hairpin; value in {coord_system})",
        ACTION_DROPPED,
    )
    return points.loc[kept].reset_index(drop=True), tele, crs


def add_teleports(rejects: pd.DataFrame, stats: dict[str, Any],
                  teleports: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rejects and counts with the teleport outliers dropped after reading.

    Parameters
    ----------
    rejects : pandas.DataFrame
        The dataset's rejects as read.
    stats : dict
        Its counts (:func:`haulwatch.ingest.dataset.dataset_stats`); not modified.
    teleports : pandas.DataFrame
        The teleport rejects (:func:`prepare_points`).

    Returns
    -------
    (pandas.DataFrame, dict)
        Rejects with the teleports last; counts with them moved from kept to
        dropped and ``teleports_dropped`` set.
    """
    stats = dict(stats)
    n_tele = len(teleports)
    if n_tele:
        rejects = concat_rejects([rejects, teleports])
        file = str(stats.get("tracks_file", "tracks.csv"))
        if "rows_dropped" in stats and file in stats["rows_dropped"]:
            stats["rows_dropped"] = {**stats["rows_dropped"],
                                     file: stats["rows_dropped"][file] + n_tele}
        if "rows_kept" in stats and file in stats["rows_kept"]:
            stats["rows_kept"] = {**stats["rows_kept"], file: stats["rows_kept"][file] - n_tele}
    stats["teleports_dropped"] = n_tele
    return rejects, stats


def assemble(
    *, folder: Path, coord_system: str, timezone: str, sites: gpd.GeoDataFrame,
    routes: gpd.GeoDataFrame, manifests: pd.DataFrame, vehicles: pd.DataFrame | None,
    rejects: pd.DataFrame, crs: pyproj.CRS, points: pd.DataFrame, stats: dict[str, Any],
    has_load: bool, has_lift: bool,
) -> Dataset:
    """The :class:`Dataset` of WGS-84 ``sites`` / ``routes`` and the rest, with projected copies.

    Returns
    -------
    Dataset
    """
    sites_m = sites.to_crs(crs) if len(sites) else sites.set_crs(crs, allow_override=True)
    routes_m = routes.to_crs(crs) if len(routes) else routes.set_crs(crs, allow_override=True)
    return Dataset(folder=folder, coord_system=coord_system, timezone=timezone, sites=sites,
                   routes=routes, manifests=manifests, vehicles=vehicles, rejects=rejects,
                   crs=crs, sites_m=sites_m, routes_m=routes_m, points=points, stats=stats,
                   has_load=has_load, has_lift=has_lift)


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

    say(f"prepare: {len(raw.tracks):,} points from {raw.coord_system} to WGS-84")
    sites = convert_geometries(raw.sites, raw.coord_system)
    routes = convert_geometries(raw.routes, raw.coord_system)
    file = str(raw.stats.get("tracks_file", "tracks.csv"))
    points, tele, crs = prepare_points(
        raw.tracks, raw.coord_system, crs, file=file, also=geometry_centroids(sites, routes),
        max_speed_kmh=max_speed_kmh, min_jump_m=min_jump_m,
        max_reversal_speed_kmh=max_reversal_speed_kmh)
    say(f"prepare: metric CRS {crs.name}")
    rejects, stats = add_teleports(raw.rejects, raw.stats, tele)
    say(f"prepare: {len(tele)} teleport outliers dropped")
    return assemble(folder=raw.folder, coord_system=raw.coord_system, timezone=raw.timezone,
                    sites=sites, routes=routes, manifests=raw.manifests, vehicles=raw.vehicles,
                    rejects=rejects, crs=crs, points=points, stats=stats,
                    has_load=raw.has_load, has_lift=raw.has_lift)


def prepare_registry(registry: Registry, *, crs: pyproj.CRS | None = None) -> Dataset:
    """A :class:`Dataset` of the registry alone (no points): what the live service needs.

    Parameters
    ----------
    registry : Registry
        From :func:`haulwatch.ingest.dataset.read_registry` (the tracks are never read).
    crs : pyproj.CRS, optional
        Metric CRS; default: picked from the centroids of the sites and routes
        (EPSG:3857 when there are none).

    Returns
    -------
    Dataset
        Empty ``points``; rejects and counts of the registry files only.
    """
    sites = convert_geometries(registry.sites.frame, registry.coord_system)
    routes = convert_geometries(registry.routes.frame, registry.coord_system)
    if crs is None:
        crs = dataset_crs(*geometry_centroids(sites, routes))
    rejects = registry.rejects()
    return assemble(folder=registry.folder, coord_system=registry.coord_system,
                    timezone=registry.timezone, sites=sites, routes=routes,
                    manifests=registry.manifests.manifests,
                    vehicles=registry.vehicles.frame if registry.vehicles is not None else None,
                    rejects=rejects, crs=pyproj.CRS.from_user_input(crs), points=empty_points(),
                    stats={}, has_load=False, has_lift=False)
