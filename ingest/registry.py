"""Registries: permitted sites, approved routes, registered vehicles, dataset settings.

Sites and routes come from GeoJSON FeatureCollections, vehicles from an
optional CSV, settings from an optional ``dataset.toml``. Bad features and
rows are rejected with their feature index (GeoJSON, 0-based as in the
``features`` array) or 1-based data row (CSV); the reading goes on.
Coordinates are kept in the dataset's coordinate system (tagged EPSG:4326);
``ingest.prepare`` converts them to WGS-84.
"""

from __future__ import annotations

import difflib
import json
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from haulwatch.timezone import DEFAULT_TIMEZONE  # re-exported: the one default zone

from .limits import plate_problems
from .plates import normalize_plate
from .rejects import (
    ACTION_CLEARED,
    ACTION_DROPPED,
    SchemaError,
    concat_rejects,
    empty_rejects,
    make_rejects,
)
from .tables import file_rows, read_table_columns
from .timeparse import check_timezone

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "COORD_SYSTEMS",
    "DEFAULT_TIMEZONE",
    "SETTINGS_KEYS",
    "SITE_KINDS",
    "DatasetSettings",
    "RegistryResult",
    "read_routes",
    "read_settings",
    "read_sites",
    "read_vehicles",
]

#: Allowed ``kind`` values of sites.
SITE_KINDS: tuple[str, ...] = ("origin", "disposal", "depot", "nest", "no_fly")
#: Allowed ``coord_system`` values of dataset.toml.
COORD_SYSTEMS: tuple[str, ...] = ("wgs84", "gcj02", "bd09")
#: Keys dataset.toml may have.
SETTINGS_KEYS: tuple[str, ...] = ("coord_system", "timezone")

_TRUE = {"true", "t", "yes", "y", "1", "1.0", "是", "registered"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "否", "unregistered"}


@dataclass(frozen=True)
class DatasetSettings:
    """Settings of a dataset folder (from ``dataset.toml``).

    Attributes
    ----------
    coord_system : str
        ``wgs84``, ``gcj02`` or ``bd09``.
    timezone : str
        IANA zone of times written without an offset.
    unknown_keys : tuple of str
        Other top-level keys of the file (ignored; reported as rejects).
    """

    coord_system: str = "wgs84"
    timezone: str = DEFAULT_TIMEZONE
    unknown_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegistryResult:
    """A registry frame with the rejects of its file.

    Attributes
    ----------
    frame : pandas.DataFrame or geopandas.GeoDataFrame
        The accepted rows.
    rejects : pandas.DataFrame
        Refused rows and cleared values.
    rows_read : int
        Rows (features) in the file.
    """

    frame: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int


# --------------------------------------------------------------------------- settings


def normalize_coord_system(value: object, *, file: str = "dataset.toml") -> str:
    """Return the canonical coord_system name (``GCJ-02`` → ``gcj02``).

    Parameters
    ----------
    value : object
        The name as written (case, ``-``, ``_`` and spaces ignored).
    file : str
        File named in the error message.

    Returns
    -------
    str
        One of :data:`COORD_SYSTEMS`.

    Raises
    ------
    SchemaError
        If the value is not one of :data:`COORD_SYSTEMS`.
    """
    name = str(value).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if name not in COORD_SYSTEMS:
        raise SchemaError(
            f"{file}: coord_system {value!r} is not supported; "
            f"must be one of {', '.join(repr(c) for c in COORD_SYSTEMS)}"
        )
    return name


def read_settings(folder: str | Path) -> DatasetSettings:
    """Read ``dataset.toml`` of a dataset folder (defaults when absent).

    Parameters
    ----------
    folder : str or pathlib.Path
        The dataset folder.

    Returns
    -------
    DatasetSettings

    Other keys are ignored (tools may add their own) and listed in
    ``unknown_keys``, except a near-miss of a known key that is absent
    (``timzone``, ``coord-system``): that is a typo and raises, since the
    default would silently be used instead of what the user meant.

    Raises
    ------
    SchemaError
        If the file is not valid TOML, names an unknown coord_system /
        timezone, or has a misspelt key.
    """
    path = Path(folder) / "dataset.toml"
    if not path.is_file():
        return DatasetSettings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"dataset.toml: not valid TOML ({exc})") from exc
    unknown = tuple(k for k in data if k not in SETTINGS_KEYS)
    for key in unknown:
        near = difflib.get_close_matches(key.lower(), [k for k in SETTINGS_KEYS if k not in data],
                                         n=1, cutoff=0.75)
        if near:
            raise SchemaError(
                f"dataset.toml: unknown key {key!r}; did you mean {near[0]!r}? "
                f"known keys: {', '.join(SETTINGS_KEYS)}"
            )
    for key in SETTINGS_KEYS:
        if key in data and not isinstance(data[key], str):
            raise SchemaError(
                f"dataset.toml: {key} {data[key]!r} must be a string "
                f"(e.g. {key} = {DatasetSettings().__getattribute__(key)!r})"
            )
    coord = normalize_coord_system(data.get("coord_system", "wgs84"))
    tz = check_timezone(data.get("timezone", DEFAULT_TIMEZONE), file="dataset.toml")
    return DatasetSettings(coord_system=coord, timezone=tz, unknown_keys=unknown)


# --------------------------------------------------------------------------- GeoJSON


def _load_features(path: Path) -> list[Any]:
    file = path.name
    if not path.is_file():
        raise SchemaError(f"{file}: file not found at {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{file}: not valid JSON ({exc})") from exc
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        feats = data.get("features")
        if not isinstance(feats, list):
            raise SchemaError(f"{file}: 'features' must be a list, got {type(feats).__name__}")
        return feats
    if isinstance(data, dict) and data.get("type") == "Feature":
        return [data]
    got = data.get("type") if isinstance(data, dict) else type(data).__name__
    raise SchemaError(f"{file}: expected a GeoJSON FeatureCollection, got {got!r}")


def _text(value: Any) -> str | None:
    """Property as stripped text; None for missing / blank / NaN."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _number(value: Any) -> tuple[float, bool]:
    """(value, ok): missing gives (nan, True), non-numeric (nan, False)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan, True
    if isinstance(value, bool):
        return math.nan, False
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan, False
    return out, math.isfinite(out)


def _geometry(feature: Any) -> tuple[Any, str | None]:
    """Shapely geometry of a feature or (None, reason)."""
    if not isinstance(feature, dict):
        return None, f"feature is not a JSON object ({type(feature).__name__})"
    geom = feature.get("geometry")
    if geom is None:
        return None, "feature has no geometry"
    if not isinstance(geom, dict):
        return None, f"geometry must be a GeoJSON object, got {type(geom).__name__}"
    if not isinstance(geom.get("type"), str):
        return None, "geometry has no 'type' (expected Polygon, MultiPolygon or LineString)"
    try:
        out = shape(geom)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError,
            shapely.errors.GEOSException) as exc:
        return None, f"geometry cannot be read ({exc})"
    if not out.is_empty:
        x0, y0, x1, y1 = out.bounds
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            return None, (f"coordinates outside longitude/latitude range (bounds {x0:.6g}, "
                          f"{y0:.6g}, {x1:.6g}, {y1:.6g}); expected degrees in the "
                          "dataset's coord_system, not projected metres")
    return out, None


def _permit_time(value: Any, timezone: str, *, end: bool) -> tuple[pd.Timestamp, bool]:
    """Permit date → UTC timestamp (a date's end is the next local midnight)."""
    text = _text(value)
    if text is None:
        return pd.NaT, True
    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT, False
    if ts is pd.NaT:
        return pd.NaT, False
    date_only = len(text) <= 10 and ts == ts.normalize() and ts.tzinfo is None
    if date_only and end:
        ts = ts + pd.Timedelta(days=1)
    if ts.tzinfo is None:
        ts = ts.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
    return ts.tz_convert("UTC").as_unit("ns"), True


def _feature_id(
    i: int, props: dict[str, Any], field: str, seen: dict[str, int],
    rej: list[tuple[int, str, Any, str]],
) -> str | None:
    """The feature's id, or None with a reject when it is missing or already seen."""
    value = _text(props.get(field))
    if value is None:
        rej.append((i, field, props.get(field), f"missing {field}"))
        return None
    if value in seen:
        rej.append((i, field, value, f"duplicate {field} (first at feature {seen[value]})"))
        return None
    return value


def read_sites(path: str | Path, *, timezone: str = DEFAULT_TIMEZONE) -> RegistryResult:
    """Read ``sites.geojson``: permitted places (polygons).

    Parameters
    ----------
    path : str or pathlib.Path
        The GeoJSON file.
    timezone : str
        Zone of permit dates / times without an offset.

    Returns
    -------
    RegistryResult
        ``frame`` is a GeoDataFrame (EPSG:4326 tag, coordinates still in the
        dataset's system) with ``site_id, kind, name, permit_from, permit_to,
        declared_volume_m3, geometry`` (``declared_volume_m3``: optional, NaN when
        absent; a bad value is cleared and reported). ``permit_from`` is the start of its local day (or the time
        given), ``permit_to`` the end of its local day (next local midnight),
        both ``datetime64[ns, UTC]``, NaT when open. Rejected: missing or
        duplicate ``site_id``, unknown ``kind``, non-polygon or unrepairable
        geometry, unparseable permit dates or ``permit_to`` before
        ``permit_from``. Invalid polygons are repaired with ``make_valid``.

    Raises
    ------
    SchemaError
        If the file is missing or not a FeatureCollection.
    """
    path = Path(path)
    file = path.name
    feats = _load_features(path)
    rows: list[dict[str, Any]] = []
    rej: list[tuple[int, str, Any, str]] = []
    cleared: list[tuple[int, str, Any, str]] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(feats):
        geom, why = _geometry(feat)
        props = (feat.get("properties") or {}) if isinstance(feat, dict) else {}
        site_id = _feature_id(i, props, "site_id", seen, rej)
        if site_id is None:
            continue
        kind_raw = _text(props.get("kind"))
        kind = kind_raw.lower().replace("-", "_") if kind_raw else None
        if kind not in SITE_KINDS:
            rej.append((i, "kind", props.get("kind"),
                        f"kind must be one of {', '.join(SITE_KINDS)}"))
            continue
        if why is not None:
            rej.append((i, "geometry", None, why))
            continue
        if geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            rej.append((i, "geometry", geom.geom_type,
                        "geometry must be a Polygon or MultiPolygon"))
            continue
        if not geom.is_valid:
            fixed = shapely.make_valid(geom)
            polys = shapely.get_parts(fixed)
            polys = [p for p in polys if p.geom_type in ("Polygon", "MultiPolygon")]
            geom = shapely.union_all(polys) if polys else None
            if geom is None or geom.is_empty or geom.area == 0:
                rej.append((i, "geometry", "invalid",
                            "invalid polygon that make_valid cannot repair"))
                continue
        p_from, ok_from = _permit_time(props.get("permit_from"), timezone, end=False)
        if not ok_from:
            rej.append((i, "permit_from", props.get("permit_from"),
                        "permit_from is not an ISO date (YYYY-MM-DD)"))
            continue
        p_to, ok_to = _permit_time(props.get("permit_to"), timezone, end=True)
        if not ok_to:
            rej.append((i, "permit_to", props.get("permit_to"),
                        "permit_to is not an ISO date (YYYY-MM-DD)"))
            continue
        if p_from is not pd.NaT and p_to is not pd.NaT and p_to <= p_from:
            rej.append((i, "permit_to", props.get("permit_to"), "permit_to before permit_from"))
            continue
        declared, ok_declared = _number(props.get("declared_volume_m3"))
        if not ok_declared or declared < 0:
            cleared.append((i, "declared_volume_m3", props.get("declared_volume_m3"),
                            "declared_volume_m3 must be a number >= 0; ignored"))
            declared = math.nan
        seen[site_id] = i
        rows.append({
            "site_id": site_id, "kind": kind, "name": _text(props.get("name")) or "",
            "permit_from": p_from, "permit_to": p_to, "declared_volume_m3": declared,
            "geometry": geom,
        })
    frame = _sites_frame(rows)
    rejects = concat_rejects([_rejects(file, rej), _rejects(file, cleared, ACTION_CLEARED)])
    return RegistryResult(frame=frame, rejects=rejects, rows_read=len(feats))


def _sites_frame(rows: list[dict[str, Any]]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "site_id": pd.Series([r["site_id"] for r in rows], dtype=object),
            "kind": pd.Series([r["kind"] for r in rows], dtype=object),
            "name": pd.Series([r["name"] for r in rows], dtype=object),
            "permit_from": pd.Series([r["permit_from"] for r in rows],
                                     dtype="datetime64[ns, UTC]"),
            "permit_to": pd.Series([r["permit_to"] for r in rows], dtype="datetime64[ns, UTC]"),
            "declared_volume_m3": pd.Series([r["declared_volume_m3"] for r in rows],
                                            dtype="float64"),
        },
        geometry=gpd.GeoSeries([r["geometry"] for r in rows], crs="EPSG:4326"),
        crs="EPSG:4326",
    )


def _rejects(file: str, rej: list[tuple[int, str, Any, str]],
             action: str = ACTION_DROPPED) -> pd.DataFrame:
    if not rej:
        return empty_rejects()
    return make_rejects(file, [r[0] for r in rej], [r[1] for r in rej],
                        [r[2] for r in rej], [r[3] for r in rej], action)


def read_routes(
    path: str | Path, *, site_ids: Iterable[str] | None = None
) -> RegistryResult:
    """Read ``routes.geojson``: approved routes (lines).

    Parameters
    ----------
    path : str or pathlib.Path
        The GeoJSON file.
    site_ids : iterable of str, optional
        Known site ids; a route naming another site is rejected.

    Returns
    -------
    RegistryResult
        ``frame`` is a GeoDataFrame with ``route_id, origin_site_id,
        disposal_site_id, corridor_m`` (float, NaN = project default) and a
        LineString geometry. A MultiLineString is merged (``line_merge``);
        one whose parts do not join into one line is rejected, as are other
        geometry types, missing or duplicate ids and unknown sites. A bad
        ``corridor_m`` (not a positive number) is cleared.

    Raises
    ------
    SchemaError
        If the file is missing or not a FeatureCollection.
    """
    path = Path(path)
    file = path.name
    feats = _load_features(path)
    known = None if site_ids is None else set(site_ids)
    rows: list[dict[str, Any]] = []
    rej: list[tuple[int, str, Any, str]] = []
    cleared: list[tuple[int, str, Any, str]] = []
    seen: dict[str, int] = {}
    for i, feat in enumerate(feats):
        geom, why = _geometry(feat)
        props = (feat.get("properties") or {}) if isinstance(feat, dict) else {}
        route_id = _feature_id(i, props, "route_id", seen, rej)
        if route_id is None:
            continue
        ids = {}
        bad = False
        for field in ("origin_site_id", "disposal_site_id"):
            val = _text(props.get(field))
            if val is None:
                rej.append((i, field, props.get(field), f"missing {field}"))
                bad = True
                break
            if known is not None and val not in known:
                rej.append((i, field, val, f"{field} not found in sites.geojson"))
                bad = True
                break
            ids[field] = val
        if bad:
            continue
        if why is not None:
            rej.append((i, "geometry", None, why))
            continue
        if geom.geom_type == "MultiLineString":
            merged = shapely.line_merge(geom)
            if merged.geom_type != "LineString":
                rej.append((i, "geometry", "MultiLineString",
                            "MultiLineString whose parts do not join into one line"))
                continue
            geom = merged
        if geom.geom_type != "LineString" or geom.is_empty or geom.length == 0:
            rej.append((i, "geometry", geom.geom_type,
                        "geometry must be a non-empty LineString (or joinable MultiLineString)"))
            continue
        corridor, ok = _number(props.get("corridor_m"))
        if not ok or (not math.isnan(corridor) and corridor <= 0):
            cleared.append((i, "corridor_m", props.get("corridor_m"),
                            "corridor_m must be a positive number of metres; "
                            "value cleared (project default used)"))
            corridor = math.nan
        seen[route_id] = i
        rows.append({"route_id": route_id, **ids, "corridor_m": corridor, "geometry": geom})
    frame = gpd.GeoDataFrame(
        {
            "route_id": pd.Series([r["route_id"] for r in rows], dtype=object),
            "origin_site_id": pd.Series([r["origin_site_id"] for r in rows], dtype=object),
            "disposal_site_id": pd.Series([r["disposal_site_id"] for r in rows], dtype=object),
            "corridor_m": pd.Series([r["corridor_m"] for r in rows], dtype="float64"),
        },
        geometry=gpd.GeoSeries([r["geometry"] for r in rows], crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    rejects = concat_rejects([_rejects(file, rej), _rejects(file, cleared, ACTION_CLEARED)])
    return RegistryResult(frame=frame, rejects=rejects, rows_read=len(feats))


def read_vehicles(path: str | Path) -> RegistryResult:
    """Read ``vehicles.csv``: registered trucks.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file (``vehicle_id`` required; ``company``, ``registered`` optional).

    Returns
    -------
    RegistryResult
        ``frame`` has ``vehicle_id, vehicle_key, company, registered`` (bool),
        ``capacity_m3`` (optional body volume, NaN when absent; a bad value is
        cleared and reported).
        Without a ``registered`` column every listed truck is registered; a
        blank or unreadable value counts as not registered (``value_cleared``).
        Rows without a vehicle id and later duplicates of a plate (same
        ``vehicle_key``) are rejected.

    Raises
    ------
    SchemaError
        If the file lacks the ``vehicle_id`` column.
    """
    path = Path(path)
    file = path.name
    df, rows, ragged = _read_small_csv(path, ("vehicle_id",),
                                       ("company", "registered", "capacity_m3"))
    n = len(df)
    vid = df["vehicle_id"]
    key = normalize_plate(vid)
    parts = [ragged]
    missing = vid.isna().to_numpy()
    parts.append(make_rejects(file, rows[missing], "vehicle_id", vid[missing], "missing vehicle_id"))
    no_key = (key.isna() | (key == "")).to_numpy() & ~missing
    parts.append(make_rejects(file, rows[no_key], "vehicle_id", vid[no_key],
                              "vehicle_id has no letters or digits"))
    why_plate = plate_problems(vid)
    bad_plate = pd.notna(why_plate) & ~missing & ~no_key
    parts.append(make_rejects(file, rows[bad_plate], "vehicle_id", vid[bad_plate],
                              why_plate[bad_plate]))
    ok = ~missing & ~no_key & ~bad_plate
    dup = ok & key.where(ok, None).duplicated(keep="first").to_numpy()
    if dup.any():
        first = pd.Series(rows[ok], index=key[ok].to_numpy()).groupby(level=0).first()
        why = [f"duplicate vehicle_id (same plate as row {first[k]})" for k in key[dup]]
        parts.append(make_rejects(file, rows[dup], "vehicle_id", vid[dup], np.array(why)))
    keep = ok & ~dup
    if "registered" in df.columns:
        text = df["registered"].fillna("").astype(str).str.strip().str.lower()
        is_true = text.isin(_TRUE).to_numpy()
        is_false = text.isin(_FALSE).to_numpy()
        bad = keep & ~is_true & ~is_false
        parts.append(make_rejects(file, rows[bad], "registered", df["registered"][bad],
                                  "registered must be true or false; treated as false",
                                  ACTION_CLEARED))
        registered = is_true
    else:
        registered = np.ones(n, dtype=bool)
    company = df["company"] if "company" in df.columns else pd.Series([None] * n, dtype=object)
    capacity = np.full(n, np.nan)
    if "capacity_m3" in df.columns:
        capacity = pd.to_numeric(df["capacity_m3"], errors="coerce").to_numpy(dtype="float64")
        bad_cap = keep & df["capacity_m3"].notna().to_numpy() & ~(capacity > 0)
        parts.append(make_rejects(file, rows[bad_cap], "capacity_m3", df["capacity_m3"][bad_cap],
                                  "capacity_m3 must be a number > 0; ignored", ACTION_CLEARED))
        capacity = np.where(capacity > 0, capacity, np.nan)
    frame = pd.DataFrame({
        "vehicle_id": pd.Series(vid[keep].to_numpy(dtype=object), dtype=object),
        "vehicle_key": pd.Series(key[keep].to_numpy(dtype=object), dtype=object),
        "company": pd.Series(company[keep].to_numpy(dtype=object), dtype=object),
        "registered": registered[keep].astype(bool),
        "capacity_m3": capacity[keep],
    })
    rejects = concat_rejects(parts)
    if len(rejects):
        rejects = rejects.sort_values(["row", "action"], kind="stable").reset_index(drop=True)
    return RegistryResult(frame=frame, rejects=rejects, rows_read=n + len(ragged))


def _read_small_csv(path: Path, required: tuple[str, ...],
                    optional: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Read a small CSV as text: blanks → None, names matched case-insensitively.

    Returns the frame, the 1-based file row of each of its rows, and the
    rejects of ragged rows the parser skipped (they count as read rows).
    """
    if not path.is_file():
        raise SchemaError(f"{path.name}: file not found at {path}")
    cols, n, skipped = read_table_columns(path, required, optional)
    out = {}
    for name, col in cols.items():
        ser = pd.Series(col.to_pandas(), dtype=object) if n else pd.Series([], dtype=object)
        arr = ser.map(_text, na_action="ignore").to_numpy(dtype=object, copy=True)
        arr[pd.isna(arr)] = None
        out[name] = pd.Series(arr, dtype=object)
    rows = file_rows(np.arange(1, n + 1, dtype="int64"), np.asarray(skipped.rows, "int64"))
    return pd.DataFrame(out, index=pd.RangeIndex(n)), rows, skipped.rejects(path.name)
