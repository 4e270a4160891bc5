"""Read a whole dataset folder (docs/formats.md) into a :class:`RawDataset`.

Files are read in dependency order (settings, sites, routes, manifests,
vehicles, tracks) so that references can be checked; every refused row or
cleared value lands in one rejects frame. Coordinates stay in the folder's
``coord_system``; ``haulwatch.geo.prepare.prepare`` converts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from .manifests import read_manifests
from .registry import read_routes, read_settings, read_sites, read_vehicles
from .rejects import ACTION_CLEARED, ACTION_DROPPED, SchemaError, concat_rejects, make_rejects
from .tracks import read_tracks

__all__ = ["RawDataset", "SchemaError", "read_dataset"]

_TRACK_FILES = ("tracks.csv", "tracks.parquet")


@dataclass(frozen=True)
class RawDataset:
    """A dataset folder as read, validated but not yet converted.

    Attributes
    ----------
    folder : pathlib.Path
        The dataset folder.
    coord_system : str
        ``wgs84``, ``gcj02`` or ``bd09``: the system of every coordinate here.
    timezone : str
        IANA zone of times written without an offset.
    tracks : pandas.DataFrame
        ``vehicle_id, vehicle_key, time, lon, lat, speed_kmh, heading_deg, load,
        lift, src_row``, sorted by ``vehicle_key, time``.
    sites : geopandas.GeoDataFrame
        ``site_id, kind, name, permit_from, permit_to, geometry``.
    routes : geopandas.GeoDataFrame
        ``route_id, origin_site_id, disposal_site_id, corridor_m, geometry``.
    manifests : pandas.DataFrame
        ``manifest_id, vehicle_id, vehicle_key, origin_site_id,
        disposal_site_id, route_id, valid_from, valid_to, waste_type,
        volume_m3, src_row``.
    vehicles : pandas.DataFrame or None
        ``vehicle_id, vehicle_key, company, registered``; None without vehicles.csv.
    rejects : pandas.DataFrame
        ``file, row, field, value, reason, action`` for every file.
    stats : dict
        ``rows_read``, ``rows_kept``, ``rows_dropped`` (dicts by file name),
        ``duplicates_dropped`` (tracks rows with the same vehicle_key and time).
    has_load, has_lift : bool
        Whether the tracks file had a ``load`` / ``lift`` column.
    """

    folder: Path
    coord_system: str
    timezone: str
    tracks: pd.DataFrame
    sites: gpd.GeoDataFrame
    routes: gpd.GeoDataFrame
    manifests: pd.DataFrame
    vehicles: pd.DataFrame | None
    rejects: pd.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)
    has_load: bool = False
    has_lift: bool = False


def tracks_path(folder: Path) -> Path:
    """Return the dataset's tracks: ``tracks.csv``, or ``tracks.parquet`` (a file or a folder).

    Raises
    ------
    SchemaError
        When neither or both are present.
    """
    found = [folder / name for name in _TRACK_FILES if (folder / name).exists()]
    if not found:
        raise SchemaError(
            f"{folder}: no tracks file; expected tracks.csv or tracks.parquet in the folder"
        )
    if len(found) > 1:
        raise SchemaError(
            f"{folder}: both tracks.csv and tracks.parquet are present; keep only one"
        )
    return found[0]


def read_dataset(
    folder: str | Path, *, progress: Callable[[str], None] | None = None
) -> RawDataset:
    """Read and validate a dataset folder.

    Parameters
    ----------
    folder : str or pathlib.Path
        Folder with ``sites.geojson``, ``routes.geojson``, ``manifests.csv``,
        ``tracks.csv`` or ``tracks.parquet``, and optionally ``vehicles.csv``
        and ``dataset.toml``.
    progress : callable, optional
        Receives short stage messages (nothing is printed).

    Returns
    -------
    RawDataset

    Raises
    ------
    SchemaError
        If the folder, a required file or a required column is missing, or
        dataset.toml names an unknown coord_system or timezone. Bad rows do
        not raise: they are in ``rejects``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SchemaError(f"dataset folder not found: {folder}")
    for name in ("sites.geojson", "routes.geojson", "manifests.csv"):
        if not (folder / name).is_file():
            raise SchemaError(f"{name}: required file missing from {folder}")
    tracks_file = tracks_path(folder)

    def say(msg: str) -> None:
        if progress is not None:
            progress(msg)

    settings = read_settings(folder)
    say(f"settings: coord_system={settings.coord_system}, timezone={settings.timezone}")
    sites = read_sites(folder / "sites.geojson", timezone=settings.timezone)
    say(f"sites.geojson: {len(sites.frame)} sites")
    routes = read_routes(folder / "routes.geojson", site_ids=sites.frame["site_id"])
    say(f"routes.geojson: {len(routes.frame)} routes")
    manifests = read_manifests(
        folder / "manifests.csv", site_ids=sites.frame["site_id"],
        route_ids=routes.frame["route_id"], timezone=settings.timezone,
    )
    say(f"manifests.csv: {len(manifests.manifests)} manifests")
    vehicles = None
    vehicles_res = None
    if (folder / "vehicles.csv").is_file():
        vehicles_res = read_vehicles(folder / "vehicles.csv")
        vehicles = vehicles_res.frame
        say(f"vehicles.csv: {len(vehicles)} vehicles")
    tracks = read_tracks(tracks_file, timezone=settings.timezone, progress=progress)
    say(f"{tracks.file}: {len(tracks.tracks):,} points kept of {tracks.rows_read:,}")

    parts = [make_rejects("dataset.toml", [0] * len(settings.unknown_keys),
                          list(settings.unknown_keys), [""] * len(settings.unknown_keys),
                          "unknown key ignored; known keys: coord_system, timezone",
                          ACTION_CLEARED),
             sites.rejects, routes.rejects, manifests.rejects]
    if vehicles_res is not None:
        parts.append(vehicles_res.rejects)
    parts.append(tracks.rejects)
    rejects = concat_rejects(parts)

    def dropped(file: str) -> int:
        sel = (rejects["file"] == file) & (rejects["action"] == ACTION_DROPPED)
        return int(sel.sum())

    rows_read = {
        "sites.geojson": sites.rows_read,
        "routes.geojson": routes.rows_read,
        "manifests.csv": manifests.rows_read,
        tracks.file: tracks.rows_read,
    }
    rows_kept = {
        "sites.geojson": len(sites.frame),
        "routes.geojson": len(routes.frame),
        "manifests.csv": len(manifests.manifests),
        tracks.file: len(tracks.tracks),
    }
    if vehicles_res is not None:
        rows_read["vehicles.csv"] = vehicles_res.rows_read
        rows_kept["vehicles.csv"] = len(vehicles_res.frame)
    stats: dict[str, Any] = {
        "rows_read": rows_read,
        "rows_kept": rows_kept,
        "rows_dropped": {f: dropped(f) for f in rows_read},
        "duplicates_dropped": tracks.duplicates_dropped,
        "tracks_file": tracks.file,
    }
    return RawDataset(
        folder=folder,
        coord_system=settings.coord_system,
        timezone=settings.timezone,
        tracks=tracks.tracks,
        sites=sites.frame,
        routes=routes.frame,
        manifests=manifests.manifests,
        vehicles=vehicles,
        rejects=rejects,
        stats=stats,
        has_load=tracks.has_load,
        has_lift=tracks.has_lift,
    )
