"""Read a whole dataset folder (docs/formats.md): the registry, and with the tracks a :class:`RawDataset`.

One reader of the folder for every engine and face. :func:`read_registry`
reads everything but the tracks (settings, sites, routes, manifests,
vehicles and their rejects), in dependency order so that references can be
checked; :func:`read_dataset` adds the tracks (``ingest.tracks.read_tracks``)
into one rejects frame with the counts of every file (:func:`dataset_stats`,
which the Dask engine also uses). Coordinates stay in the folder's
``coord_system``; ``haulwatch.ingest.prepare.prepare`` converts them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from .manifests import ManifestsResult, read_manifests
from .registry import (
    DatasetSettings,
    RegistryResult,
    read_routes,
    read_settings,
    read_sites,
    read_vehicles,
)
from .rejects import ACTION_CLEARED, ACTION_DROPPED, SchemaError, concat_rejects, make_rejects
from .tracks import read_tracks

__all__ = [
    "RawDataset",
    "Registry",
    "SchemaError",
    "check_folder",
    "dataset_stats",
    "read_dataset",
    "read_registry",
    "tracks_path",
]

_TRACK_FILES = ("tracks.csv", "tracks.parquet")
_REGISTRY_FILES = ("sites.geojson", "routes.geojson", "manifests.csv")


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


@dataclass(frozen=True)
class Registry:
    """Everything of a dataset folder but the tracks, as read and validated.

    Attributes
    ----------
    folder : pathlib.Path
        The dataset folder.
    settings : DatasetSettings
        From ``dataset.toml`` (defaults without it).
    sites, routes : RegistryResult
        ``sites.geojson`` / ``routes.geojson`` (coordinates in ``coord_system``).
    manifests : ManifestsResult
        ``manifests.csv``.
    vehicles : RegistryResult or None
        ``vehicles.csv``; None without it.
    """

    folder: Path
    settings: DatasetSettings
    sites: RegistryResult
    routes: RegistryResult
    manifests: ManifestsResult
    vehicles: RegistryResult | None

    @property
    def coord_system(self) -> str:
        """The system of every coordinate of the folder."""
        return self.settings.coord_system

    @property
    def timezone(self) -> str:
        """IANA zone of times written without an offset."""
        return self.settings.timezone

    def rejects(self) -> pd.DataFrame:
        """The rejects of every registry file (dataset.toml, sites, routes, manifests, vehicles)."""
        unknown = self.settings.unknown_keys
        parts = [make_rejects("dataset.toml", [0] * len(unknown), list(unknown),
                              [""] * len(unknown),
                              "unknown key ignored; known keys: coord_system, timezone",
                              ACTION_CLEARED),
                 self.sites.rejects, self.routes.rejects, self.manifests.rejects]
        if self.vehicles is not None:
            parts.append(self.vehicles.rejects)
        return concat_rejects(parts)


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


def check_folder(folder: str | Path) -> Path:
    """Check that ``folder`` is a folder holding the required registry files.

    Parameters
    ----------
    folder : str or pathlib.Path
        The dataset folder.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    SchemaError
        If the folder or ``sites.geojson``, ``routes.geojson`` or ``manifests.csv`` is missing.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SchemaError(f"dataset folder not found: {folder}")
    for name in _REGISTRY_FILES:
        if not (folder / name).is_file():
            raise SchemaError(f"{name}: required file missing from {folder}")
    return folder


def read_registry(
    folder: str | Path, *, progress: Callable[[str], None] | None = None
) -> Registry:
    """Read and validate everything of a dataset folder but its tracks.

    The tracks are not needed (nor opened): the service serves sites and
    routes from this, the CLI plans from it, the Dask engine reads it once on
    the client.

    Parameters
    ----------
    folder : str or pathlib.Path
        Folder with ``sites.geojson``, ``routes.geojson``, ``manifests.csv``,
        and optionally ``vehicles.csv`` and ``dataset.toml``.
    progress : callable, optional
        Receives short stage messages (nothing is printed).

    Returns
    -------
    Registry

    Raises
    ------
    SchemaError
        If the folder, a required file or a required column is missing, or
        dataset.toml names an unknown coord_system or timezone. Bad rows do
        not raise: they are in the rejects.
    """
    folder = check_folder(folder)

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
    if (folder / "vehicles.csv").is_file():
        vehicles = read_vehicles(folder / "vehicles.csv")
        say(f"vehicles.csv: {len(vehicles.frame)} vehicles")
    return Registry(folder=folder, settings=settings, sites=sites, routes=routes,
                    manifests=manifests, vehicles=vehicles)


def dataset_stats(
    registry: Registry, rejects: pd.DataFrame, *, tracks_file: str, tracks_read: int,
    tracks_kept: int, duplicates: int,
) -> dict[str, Any]:
    """The counts of a dataset: rows read, kept and dropped per file, duplicates.

    Parameters
    ----------
    registry : Registry
        The folder's registry.
    rejects : pandas.DataFrame
        Every reject of the dataset (``row_dropped`` ones are counted per file).
    tracks_file : str
        Name of the tracks file.
    tracks_read, tracks_kept : int
        Track rows read, and kept after validation and duplicates.
    duplicates : int
        Track rows dropped as duplicates (same vehicle_key and time).

    Returns
    -------
    dict
        ``rows_read``, ``rows_kept``, ``rows_dropped`` (dicts by file name),
        ``duplicates_dropped``, ``tracks_file``.
    """
    rows_read = {
        "sites.geojson": registry.sites.rows_read,
        "routes.geojson": registry.routes.rows_read,
        "manifests.csv": registry.manifests.rows_read,
        tracks_file: tracks_read,
    }
    rows_kept = {
        "sites.geojson": len(registry.sites.frame),
        "routes.geojson": len(registry.routes.frame),
        "manifests.csv": len(registry.manifests.manifests),
        tracks_file: tracks_kept,
    }
    if registry.vehicles is not None:
        rows_read["vehicles.csv"] = registry.vehicles.rows_read
        rows_kept["vehicles.csv"] = len(registry.vehicles.frame)
    dropped = rejects.loc[rejects["action"] == ACTION_DROPPED, "file"].value_counts()
    return {
        "rows_read": rows_read,
        "rows_kept": rows_kept,
        "rows_dropped": {f: int(dropped.get(f, 0)) for f in rows_read},
        "duplicates_dropped": duplicates,
        "tracks_file": tracks_file,
    }


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
    folder = check_folder(folder)
    tracks_file = tracks_path(folder)
    reg = read_registry(folder, progress=progress)
    tracks = read_tracks(tracks_file, timezone=reg.timezone, progress=progress)
    if progress is not None:
        progress(f"{tracks.file}: {len(tracks.tracks):,} points kept of {tracks.rows_read:,}")
    rejects = concat_rejects([reg.rejects(), tracks.rejects])
    stats = dataset_stats(reg, rejects, tracks_file=tracks.file, tracks_read=tracks.rows_read,
                          tracks_kept=len(tracks.tracks),
                          duplicates=tracks.duplicates_dropped)
    return RawDataset(
        folder=folder,
        coord_system=reg.coord_system,
        timezone=reg.timezone,
        tracks=tracks.tracks,
        sites=reg.sites.frame,
        routes=reg.routes.frame,
        manifests=reg.manifests.manifests,
        vehicles=reg.vehicles.frame if reg.vehicles is not None else None,
        rejects=rejects,
        stats=stats,
        has_load=tracks.has_load,
        has_lift=tracks.has_lift,
    )
