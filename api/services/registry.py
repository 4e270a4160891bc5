"""The service's registry: the dataset's sites and routes (``HAULWATCH_DATASET``) in WGS-84.

Loaded once at start-up by :func:`load_registry`; served by
:mod:`haulwatch.api.routers.registry` whatever the dataset's ``coord_system``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE


class RegistryError(UserError, ValueError):
    """The service dataset cannot be loaded."""


@dataclass
class Registry:
    """The service dataset in WGS-84.

    Attributes
    ----------
    sites : dict
        Sites FeatureCollection (WGS-84).
    routes : dict
        Routes FeatureCollection (WGS-84).
    dataset : object or None
        The prepared dataset (``ingest.prepare.Dataset``) when the ingest room is
        available: the live audit and dispatch use it.
    coord_system : str
        Coordinate system of pushed positions (the dataset's).
    timezone : str
        Zone of naive times.
    """

    sites: dict[str, Any]
    routes: dict[str, Any]
    dataset: Any | None
    coord_system: str = "wgs84"
    timezone: str = DEFAULT_TIMEZONE

    def site_ids(self, kind: str | None = None) -> list[str]:
        """Site ids, optionally of one kind."""
        return [
            str(f["properties"].get("site_id"))
            for f in self.sites.get("features", [])
            if kind is None or f["properties"].get("kind") == kind
        ]


def _frame_to_fc(frame: Any) -> dict[str, Any]:
    out = frame.copy()
    for col in out.columns:
        if col != out.geometry.name and str(out[col].dtype).startswith("datetime"):
            out[col] = out[col].astype(str)
    return json.loads(out.to_json(na="null", drop_id=True))


def load_registry(folder: Path) -> Registry:
    """Read and prepare the service dataset's registry.

    Parameters
    ----------
    folder : Path
        A dataset folder (docs/formats.md).

    Raises
    ------
    RegistryError
        When the folder or its registry files are missing or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise RegistryError(f"dataset: {str(folder)!r} is not a folder")
    from haulwatch.ingest.dataset import read_registry
    from haulwatch.ingest.prepare import prepare_registry

    try:  # the registry only: the tracks file is never read at start-up
        dataset = prepare_registry(read_registry(folder))
    except (OSError, ValueError) as exc:
        raise RegistryError(f"dataset: cannot load {str(folder)!r}: {exc}") from exc
    return Registry(
        sites=_frame_to_fc(dataset.sites.to_crs("EPSG:4326")),
        routes=_frame_to_fc(dataset.routes.to_crs("EPSG:4326")),
        dataset=dataset,
        coord_system=str(dataset.coord_system),
        timezone=str(dataset.timezone),
    )

