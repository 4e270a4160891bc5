"""The registry for the map: ``GET /api/sites.geojson`` and ``GET /api/routes.geojson``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from haulwatch.api.auth import Reader
from haulwatch.api.deps import ServiceDep
from haulwatch.api.schemas import FeatureCollection

router = APIRouter(tags=["registry"])

_EMPTY = {"type": "FeatureCollection", "features": []}


@router.get(
    "/api/sites.geojson",
    response_model=FeatureCollection,
    summary="Permitted sites, depots, nests and no-fly zones (WGS-84)",
)
def sites(svc: ServiceDep, who: Reader) -> dict[str, Any]:
    """The dataset's sites as a GeoJSON FeatureCollection (empty without a dataset)."""
    return svc.registry.sites if svc.registry is not None else _EMPTY


@router.get(
    "/api/routes.geojson",
    response_model=FeatureCollection,
    summary="Approved routes (WGS-84)",
)
def routes(svc: ServiceDep, who: Reader) -> dict[str, Any]:
    """The dataset's approved routes as a GeoJSON FeatureCollection (empty without a dataset)."""
    return svc.registry.routes if svc.registry is not None else _EMPTY
