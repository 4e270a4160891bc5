"""Docks and no-fly zones from the sites registry (``nest`` and ``no_fly`` sites).

:class:`Dock` is where a drone takes off and lands; :func:`docks_from_sites` and
:func:`no_fly_from_sites` read them from a sites GeoDataFrame (any CRS, turned
into WGS-84).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.geometry.base import BaseGeometry

from haulwatch.drone.planconfig import PlanConfigError, is_finite_number
from haulwatch.geo.crs import WGS84

__all__ = ["Dock", "as_dock", "docks_from_sites", "no_fly_from_sites", "no_fly_geoms"]


@dataclass(frozen=True)
class Dock:
    """A drone dock (a ``nest`` site): where missions start and end.

    Parameters
    ----------
    site_id : str
        The nest site's id.
    lat_deg, lon_deg : float
        Take-off point, WGS-84 degrees (the site polygon's centroid).
    alt_m : float, default 0
        Dock altitude above mean sea level (the mission's home altitude).
    drones : int, default 1
        Drones stationed at the dock.
    name : str, default ""
        Display name.
    night_capable : bool, default False
        The dock and its drone are equipped and approved for night flight
        (lights, night camera): the sun-elevation rule does not apply to it
        (a ``local_window`` still does).
    """

    site_id: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    drones: int = 1
    name: str = ""
    night_capable: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.site_id, str) or not self.site_id:
            raise PlanConfigError(f"Dock.site_id must be a non-empty str, got {self.site_id!r}")
        lat, lon = float(self.lat_deg), float(self.lon_deg)
        if not (math.isfinite(lat) and -90 <= lat <= 90):
            raise PlanConfigError(f"Dock.lat_deg must be in [-90, 90], got {self.lat_deg!r}")
        if not (math.isfinite(lon) and -180 <= lon <= 180):
            raise PlanConfigError(f"Dock.lon_deg must be in [-180, 180], got {self.lon_deg!r}")
        if not is_finite_number(self.alt_m):
            raise PlanConfigError(f"Dock.alt_m must be a finite number, got {self.alt_m!r}")
        drones = self.drones
        if isinstance(drones, bool) or not isinstance(drones, (int, np.integer)) or drones < 0:
            raise PlanConfigError(f"Dock.drones must be an int >= 0, got {drones!r}")
        object.__setattr__(self, "lat_deg", lat)
        object.__setattr__(self, "lon_deg", lon)
        object.__setattr__(self, "alt_m", float(self.alt_m))
        object.__setattr__(self, "drones", int(drones))
        if not isinstance(self.night_capable, (bool, np.bool_)):
            raise PlanConfigError(f"Dock.night_capable must be a bool, got {self.night_capable!r}")
        object.__setattr__(self, "night_capable", bool(self.night_capable))


def _site_frame(sites: Any) -> pd.DataFrame:
    if not isinstance(sites, pd.DataFrame) or "geometry" not in sites.columns:
        raise PlanConfigError(
            f"sites must be a GeoDataFrame with a geometry column, got {type(sites).__name__}"
        )
    if "kind" not in sites.columns:
        raise PlanConfigError("sites must have a 'kind' column (nest, no_fly, ...)")
    return _in_wgs84(sites)


def _in_wgs84(obj: Any) -> Any:
    """A GeoDataFrame / GeoSeries in WGS-84: reprojected when it carries another CRS."""
    crs = getattr(obj, "crs", None)
    if crs is not None and not pyproj.CRS.from_user_input(crs).equals(WGS84):
        return obj.to_crs(WGS84)
    return obj


def docks_from_sites(sites: Any, *, default_drones: int = 1) -> list[Dock]:
    """Docks from the ``nest`` sites of a sites GeoDataFrame (WGS-84).

    Parameters
    ----------
    sites : GeoDataFrame
        Sites with ``site_id``, ``kind``, ``geometry`` (and optionally
        ``name``, ``alt_m`` or ``elevation_m`` AMSL, ``drones``,
        ``night_capable``: true/1/yes for a dock equipped for night flight).
    default_drones : int, default 1
        Drones per dock when the sites give no ``drones`` column/value.

    Returns
    -------
    list of Dock
        One per nest site, ordered by ``site_id``; the take-off point is the
        polygon centroid.
    """
    frame = _site_frame(sites)
    nests = frame[frame["kind"].astype(str) == "nest"]
    if nests.empty:
        return []
    geoms = np.asarray(nests.geometry.values, dtype=object)
    cent = shapely.centroid(geoms)
    lon, lat = shapely.get_x(cent), shapely.get_y(cent)
    alt_col = next((c for c in ("alt_m", "elevation_m") if c in nests.columns), None)
    docks = []
    for k, (_, row) in enumerate(nests.iterrows()):  # one row per dock, not per point
        alt = row[alt_col] if alt_col is not None else 0.0
        drones = row["drones"] if "drones" in nests.columns else default_drones
        name = row["name"] if "name" in nests.columns else ""
        night = _truthy(row["night_capable"]) if "night_capable" in nests.columns else False
        docks.append(
            Dock(
                site_id=str(row["site_id"]),
                lat_deg=float(lat[k]),
                lon_deg=float(lon[k]),
                alt_m=float(alt) if is_finite_number(alt) else 0.0,
                drones=int(drones) if is_finite_number(drones) else default_drones,
                name=""
                if name is None or (isinstance(name, float) and math.isnan(name))
                else str(name),
                night_capable=night,
            )
        )
    return sorted(docks, key=lambda d: d.site_id)


def _truthy(value: Any) -> bool:
    """A sites-table flag: True for true/1/yes/y/是 (any case), False otherwise (NaN too)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if is_finite_number(value):
        return float(value) != 0
    return str(value).strip().lower() in {"true", "1", "yes", "y", "是"}


def no_fly_from_sites(sites: Any) -> list[BaseGeometry]:
    """No-fly polygons (WGS-84) from the ``no_fly`` sites of a sites GeoDataFrame."""
    frame = _site_frame(sites)
    zones = frame[frame["kind"].astype(str) == "no_fly"]
    return [g for g in zones.geometry.values if g is not None and not g.is_empty]


def no_fly_geoms(no_fly: Any) -> list[BaseGeometry]:
    if no_fly is None:
        return []
    if isinstance(no_fly, pd.DataFrame):
        if "kind" in no_fly.columns:
            return no_fly_from_sites(no_fly)
        return no_fly_geoms(list(_in_wgs84(no_fly).geometry.values))
    if isinstance(no_fly, BaseGeometry):
        return [] if no_fly.is_empty else [no_fly]
    no_fly = _in_wgs84(no_fly)
    out = []
    for k, geom in enumerate(no_fly):
        if geom is None:
            continue
        if not isinstance(geom, BaseGeometry):
            raise PlanConfigError(
                f"no_fly[{k}] must be a shapely geometry, got {type(geom).__name__}"
            )
        if not geom.is_empty:
            out.append(geom)
    return out


def as_dock(dock: Any) -> Dock:
    if isinstance(dock, Dock):
        return dock
    if isinstance(dock, (Mapping, pd.Series)):
        geom = dock.get("geometry")
        if geom is not None:
            c = shapely.centroid(geom)
            lat, lon = c.y, c.x
        else:
            lat, lon = dock.get("lat"), dock.get("lon")
        alt = dock.get("alt_m", dock.get("elevation_m", 0.0))
        return Dock(
            site_id=str(dock.get("site_id") or "dock"),
            lat_deg=lat,
            lon_deg=lon,
            alt_m=alt if is_finite_number(alt) else 0.0,
            night_capable=_truthy(dock.get("night_capable", False)),
        )
    raise PlanConfigError(
        f"dock must be a Dock or a nest site row (site_id, geometry), got {type(dock).__name__}"
    )
