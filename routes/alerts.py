"""The alerts frame: one record per event, stable ids, writers and readers.

Every detector hands :func:`make_alerts` a plain frame (one row per event) and
gets back the canonical alerts GeoDataFrame of ``docs/internals.md``:

``alert_id, kind, vehicle_id, start, end, severity, manifest_id, site_id,
summary, trip_id, lon, lat, evidence, geometry`` (EPSG:4326).

:func:`write_alerts` writes ``alerts.geojson`` (RFC 7946) and ``alerts.csv``
as ``docs/formats.md`` fixes them; :func:`read_alerts` reads either back.

The ``alert_id`` is a hash of what identifies the event, never of the row
position, so the same input gives the same id across runs, processes and
partitions: ``kind``, the normalized vehicle id, ``start`` (UTC, whole
seconds), ``site_id`` and ``manifest_id``. ``end`` is deliberately left out
so that a live feed can extend an alert's window without changing its id.
A ``dump_hotspot`` (no vehicle) is identified by its local day and its
location rounded to :data:`HOTSPOT_ID_DECIMALS` decimals of a degree.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE

__all__ = [
    "ALERT_COLUMNS",
    "ALERT_ROW_COLUMNS",
    "DEFAULT_TIMEZONE",
    "HOTSPOT_ID_DECIMALS",
    "KINDS",
    "SEVERITIES",
    "AlertSchemaError",
    "alert_id_for",
    "alerts_from_geojson",
    "empty_alerts",
    "empty_rows",
    "evidence_to_json",
    "make_alerts",
    "read_alerts",
    "write_alerts",
]

#: The alert kinds of the contract (docs/formats.md), in the order reports list them.
KINDS: tuple[str, ...] = (
    "illegal_dump",
    "route_deviation",
    "unpermitted_origin",
    "wrong_disposal",
    "unmanifested_trip",
    "manifest_not_executed",
    "gps_gap",
    "unregistered_vehicle",
    "dump_hotspot",
)

#: Severities, most severe first.
SEVERITIES: tuple[str, ...] = ("high", "medium", "low")

#: Columns of the alerts frame, in order.
ALERT_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "kind",
    "vehicle_id",
    "start",
    "end",
    "severity",
    "manifest_id",
    "site_id",
    "summary",
    "trip_id",
    "lon",
    "lat",
    "evidence",
    "geometry",
)

#: The alert-row schema: columns every detector hands :func:`make_alerts` (``kind``,
#: ``start`` and ``severity`` are required; ``vehicle_key`` is the normalized plate).
ALERT_ROW_COLUMNS: tuple[str, ...] = (
    "kind",
    "vehicle_id",
    "vehicle_key",
    "start",
    "end",
    "severity",
    "manifest_id",
    "site_id",
    "trip_id",
    "summary",
    "lon",
    "lat",
    "evidence",
    "geometry",
)

#: Decimals of a degree kept when a hotspot's place enters its id (3 ≈ 100 m).
HOTSPOT_ID_DECIMALS = 3

_STRING_COLUMNS = ("vehicle_id", "manifest_id", "site_id", "trip_id", "summary")
_PROPERTY_COLUMNS = tuple(c for c in ALERT_COLUMNS if c != "geometry")
_ID_HEX_CHARS = 16


class AlertSchemaError(UserError, ValueError):
    """An alerts frame or file does not follow the alerts contract."""


def empty_rows() -> pd.DataFrame:
    """An empty alert-rows frame (:data:`ALERT_ROW_COLUMNS`, object columns)."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in ALERT_ROW_COLUMNS})


# --------------------------------------------------------------------------- helpers


def _normalize_plates(plates: pd.Series) -> pd.Series:
    """Normalize plates as docs/formats.md says (spaces, ``·``, ``-`` out; half-width; upper).

    Uses ``ingest.plates.normalize_plate`` (one implementation for the project), once
    per distinct plate.
    """
    from haulwatch.ingest.plates import normalize_plate

    uniques = pd.Series(pd.unique(plates.to_numpy(dtype=object)), dtype=object)
    keys = normalize_plate(uniques)
    table = dict(zip(uniques, keys.where(keys.notna(), uniques), strict=True))
    return pd.Series([str(table[p]) for p in plates], index=plates.index, dtype="str")


def _json_default(value: Any) -> Any:
    """Turn numpy / pandas / datetime / shapely values into JSON-able ones."""
    if isinstance(value, pd.Timestamp | dt.datetime):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            return ts.isoformat()
        return _iso_z(ts)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return pd.Timedelta(value).total_seconds()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, BaseGeometry):
        return shapely.geometry.mapping(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    raise TypeError(f"evidence value {value!r} of type {type(value).__name__} is not JSON-able")


def _clean_floats(value: Any) -> Any:
    """Replace non-finite floats by None so the JSON text is strict (RFC 8259)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_floats(v) for v in value]
    return value


def evidence_to_json(evidence: Any) -> str:
    """Return the canonical JSON text of an evidence dict.

    Parameters
    ----------
    evidence : dict, str, None
        A mapping (numpy, pandas and datetime values are converted), JSON text
        of an object (re-encoded canonically), or None / NaN (→ ``"{}"``).

    Returns
    -------
    str
        Compact JSON with sorted keys and non-ASCII characters kept as they are.

    Raises
    ------
    AlertSchemaError
        When the value is not a mapping nor the JSON text of an object.
    """
    if evidence is None or (isinstance(evidence, float) and math.isnan(evidence)):
        return "{}"
    if isinstance(evidence, str):
        text = evidence.strip() or "{}"
        try:
            evidence = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AlertSchemaError(
                f"field 'evidence': value {text[:60]!r} is not JSON text ({exc.msg}); "
                "allowed: a dict or the JSON text of an object"
            ) from None
    if not isinstance(evidence, Mapping):
        raise AlertSchemaError(
            f"field 'evidence': value {evidence!r} of type {type(evidence).__name__} is not "
            "allowed; allowed: a dict or the JSON text of an object"
        )
    try:  # fast path: no NaN / infinity anywhere
        return json.dumps(
            evidence,
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
            allow_nan=False,
            default=_json_default,
        )
    except ValueError:
        pass
    # A first pass through the default hook, then strict float cleaning (NaN -> null).
    plain = json.loads(json.dumps(evidence, default=_json_default, allow_nan=True))
    return json.dumps(
        _clean_floats(plain),
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        allow_nan=False,
    )


def _iso_z(ts: pd.Timestamp) -> str:
    """ISO 8601 UTC with ``Z``, whole seconds unless the time has a fraction."""
    ts = ts.tz_convert("UTC")
    if ts.microsecond or ts.nanosecond:
        text = ts.strftime("%Y-%m-%dT%H:%M:%S.%f")
    else:
        text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z"


def _to_utc(values: pd.Series, field: str, timezone: str) -> pd.Series:
    """Parse a column of times to ``datetime64[ns, UTC]`` (naive = local in ``timezone``).

    Times outside the range of :mod:`haulwatch.ingest.limits` (1990..2100 UTC)
    raise :class:`AlertSchemaError` naming the field, the row and the value: a
    year written outside it (``9999-12-31``, ``0001-01-01``, which pandas cannot
    hold in nanoseconds, or shifts silently by an offset) is refused before
    parsing, the others after.
    """
    from haulwatch.ingest import limits

    def refuse(row: int) -> AlertSchemaError:
        return AlertSchemaError(
            f"field {field!r}: value {limits.snippet(values.iloc[row])} (row {row}) is outside "
            f"{limits.TIME_MIN:%Y-%m-%dT%H:%M:%SZ} .. {limits.TIME_MAX:%Y-%m-%dT%H:%M:%SZ} "
            "(the time range of every entry point)"
        )

    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        far = limits.text_year_out_of_range(values.tolist())
        if far.any():
            raise refuse(int(np.flatnonzero(far)[0]))
    try:
        out = _parse_utc(values, field, timezone)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise AlertSchemaError(
            f"field {field!r}: a value is outside "
            f"{limits.TIME_MIN:%Y-%m-%d}..{limits.TIME_MAX:%Y-%m-%d}"
        ) from None
    with np.errstate(invalid="ignore"):
        bad = (out.notna() & ((out < limits.TIME_MIN) | (out >= limits.TIME_MAX))).to_numpy()
    if bad.any():
        raise refuse(int(np.flatnonzero(bad)[0]))
    return out.astype("datetime64[ns, UTC]")


def _parse_utc(values: pd.Series, field: str, timezone: str) -> pd.Series:
    """:func:`_to_utc` without the range check (tz-aware UTC in the parsed unit)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        out = values.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert(
            "UTC"
        )
    else:
        try:
            parsed = pd.to_datetime(values, utc=False, format="ISO8601")
        except (ValueError, TypeError):
            parsed = None
        if parsed is None or not (
            isinstance(parsed.dtype, pd.DatetimeTZDtype)
            or pd.api.types.is_datetime64_dtype(parsed.dtype)
        ):
            # mixed offsets or mixed naive/aware values: one by one (rare, small frames)
            parsed = pd.Series(
                [_one_time(v, field, timezone) for v in values],
                index=values.index,
                dtype="datetime64[us, UTC]",
            )
        return _parse_utc(parsed, field, timezone)
    return out


def _one_time(value: Any, field: str, timezone: str) -> pd.Timestamp:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return pd.NaT
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise AlertSchemaError(
            f"field {field!r}: value {value!r} is not a time; allowed: ISO 8601 or datetime"
        ) from None
    try:
        if ts.tzinfo is None:
            ts = ts.tz_localize(timezone)
        return ts.tz_convert("UTC")
    except (ValueError, OverflowError):  # an ambiguous or impossible wall-clock time
        raise AlertSchemaError(
            f"field {field!r}: value {value!r} is not a time in {timezone}; "
            "allowed: ISO 8601 with an offset"
        ) from None


def _string_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series([""] * len(frame), index=frame.index, dtype="str")
    col = frame[name]
    col = col.where(col.notna(), "")
    return col.astype("str")


def _float_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    try:
        values = pd.to_numeric(frame[name], errors="raise")
        return np.array(values.to_numpy(dtype="float64", na_value=np.nan), dtype="float64")
    except (ValueError, TypeError):
        bad = frame[name][pd.to_numeric(frame[name], errors="coerce").isna() & frame[name].notna()]
        raise AlertSchemaError(
            f"field {name!r}: value {bad.iloc[0]!r} is not a number; allowed: degrees (float)"
        ) from None


def alert_id_for(
    kind: str,
    vehicle_key: str,
    start: pd.Timestamp,
    site_id: str = "",
    manifest_id: str = "",
    *,
    lon: float = math.nan,
    lat: float = math.nan,
    timezone: str = DEFAULT_TIMEZONE,
) -> str:
    """Return the stable id of one alert.

    Parameters
    ----------
    kind : str
        Alert kind.
    vehicle_key : str
        Normalized plate (see ``ingest.plates.normalize_plate``); empty for hotspots.
    start : pandas.Timestamp
        Start of the alert window (tz-aware); only whole UTC seconds enter the id.
    site_id, manifest_id : str
        Where they apply, else empty.
    lon, lat : float
        Degrees WGS-84; enter the id of a ``dump_hotspot`` only (rounded).
    timezone : str
        Zone of the local day of a ``dump_hotspot``.

    Returns
    -------
    str
        ``"<kind prefix>-<16 hex digits>"``, e.g. ``"ID-3f2a..."``.
    """
    start_utc = pd.Timestamp(start)
    if start_utc.tzinfo is None:
        start_utc = start_utc.tz_localize(timezone)
    start_utc = start_utc.tz_convert("UTC").floor("s")
    if kind == "dump_hotspot":
        day = start_utc.tz_convert(timezone).strftime("%Y-%m-%d")
        key = "|".join(
            (
                kind,
                day,
                f"{round(lon, HOTSPOT_ID_DECIMALS):.{HOTSPOT_ID_DECIMALS}f}",
                f"{round(lat, HOTSPOT_ID_DECIMALS):.{HOTSPOT_ID_DECIMALS}f}",
            )
        )
    else:
        key = "|".join(
            (kind, vehicle_key, start_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), site_id, manifest_id)
        )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:_ID_HEX_CHARS]
    prefix = "".join(part[0] for part in kind.split("_")).upper()
    return f"{prefix}-{digest}"


def _alert_ids(
    kind: pd.Series,
    vehicle_key: pd.Series,
    start: pd.Series,
    site_id: pd.Series,
    manifest_id: pd.Series,
    lon: np.ndarray,
    lat: np.ndarray,
    timezone: str,
) -> list[str]:
    """:func:`alert_id_for` over whole columns (times formatted once, not per row)."""
    start_utc = start.dt.tz_convert("UTC").dt.floor("s")
    stamps = start_utc.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(dtype=object)
    kinds = kind.to_numpy(dtype=object)
    hot = kinds == "dump_hotspot"
    days = np.full(len(kinds), "", dtype=object)
    if hot.any():
        days[hot] = start_utc[hot].dt.tz_convert(timezone).dt.strftime("%Y-%m-%d").to_numpy()
    prefixes = {k: "".join(part[0] for part in k.split("_")).upper() for k in set(kinds)}
    d = HOTSPOT_ID_DECIMALS
    out = []
    for i, (k, vk, st, si, mi) in enumerate(
        zip(kinds, vehicle_key, stamps, site_id, manifest_id, strict=True)
    ):
        if hot[i]:
            key = f"{k}|{days[i]}|{round(lon[i], d):.{d}f}|{round(lat[i], d):.{d}f}"
        else:
            key = f"{k}|{vk}|{st}|{si}|{mi}"
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:_ID_HEX_CHARS]
        out.append(f"{prefixes[k]}-{digest}")
    return out


def empty_alerts() -> gpd.GeoDataFrame:
    """Return an alerts frame with no rows and the documented columns and dtypes."""
    data: dict[str, Any] = {}
    for name in ALERT_COLUMNS:
        if name in ("start", "end"):
            data[name] = pd.Series([], dtype="datetime64[ns, UTC]")
        elif name in ("lon", "lat"):
            data[name] = pd.Series([], dtype="float64")
        elif name == "geometry":
            data[name] = gpd.GeoSeries([], crs="EPSG:4326")
        else:
            data[name] = pd.Series([], dtype="str")
    return gpd.GeoDataFrame(data, geometry="geometry", crs="EPSG:4326")


# --------------------------------------------------------------------------- make


def make_alerts(frame: pd.DataFrame, *, timezone: str = DEFAULT_TIMEZONE) -> gpd.GeoDataFrame:
    """Build the canonical alerts frame from detector output.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per event with columns from :data:`ALERT_ROW_COLUMNS`. Required:
        ``kind`` (one of :data:`KINDS`), ``start`` (tz-aware, or naive local
        time in ``timezone``), ``severity`` (one of :data:`SEVERITIES`).
        ``end`` defaults to ``start``; string columns default to ``""``;
        ``vehicle_key`` defaults to the normalized ``vehicle_id``;
        ``evidence`` is a dict (or JSON text, or None); ``geometry`` is a shapely
        geometry in WGS-84 or None, which becomes ``Point(lon, lat)``; ``lon``,
        ``lat`` default to the geometry's first coordinate. The frame is not changed.
    timezone : str
        IANA zone of naive times and of the local day in hotspot ids.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`ALERT_COLUMNS`, EPSG:4326, sorted by ``start``, ``kind``,
        ``vehicle_id`` (then ``alert_id``), RangeIndex. ``start`` / ``end`` are
        ``datetime64[ns, UTC]``; ``evidence`` is canonical JSON text.

    Raises
    ------
    AlertSchemaError
        On a missing required column, an unknown kind or severity, a missing or
        unparseable time, an ``end`` before ``start``, a row without any location,
        a missing vehicle on a kind other than ``dump_hotspot``.
    """
    return _build(frame, timezone=timezone, keep_ids=False)


def _build(frame: pd.DataFrame, *, timezone: str, keep_ids: bool) -> gpd.GeoDataFrame:
    """:func:`make_alerts`; with ``keep_ids`` a non-empty ``alert_id`` column is kept."""
    if not isinstance(frame, pd.DataFrame):
        raise AlertSchemaError(
            f"make_alerts expects a pandas DataFrame, got {type(frame).__name__}"
        )
    missing = [c for c in ("kind", "start", "severity") if c not in frame.columns]
    if missing:
        raise AlertSchemaError(
            f"alerts input lacks required column(s) {missing}; present: {list(frame.columns)}"
        )
    if len(frame) == 0:
        return empty_alerts()

    frame = frame.reset_index(drop=True)
    kind = _string_column(frame, "kind")
    bad = ~kind.isin(KINDS)
    if bad.any():
        raise AlertSchemaError(
            f"field 'kind': value {kind[bad].iloc[0]!r} is not a valid alert kind, "
            f"must be one of {list(KINDS)}"
        )
    severity = _string_column(frame, "severity")
    bad = ~severity.isin(SEVERITIES)
    if bad.any():
        raise AlertSchemaError(
            f"field 'severity': value {severity[bad].iloc[0]!r} is not valid, "
            f"must be one of {list(SEVERITIES)}"
        )

    start = _to_utc(frame["start"], "start", timezone)
    if start.isna().any():
        row = int(np.flatnonzero(start.isna().to_numpy())[0])
        raise AlertSchemaError(
            f"field 'start': value {frame['start'].iloc[row]!r} (row {row}) is missing or not a "
            "valid time; every alert needs a start"
        )
    if "end" in frame.columns:
        end = _to_utc(frame["end"], "end", timezone)
        end = end.where(end.notna(), start)
    else:
        end = start.copy()
    before = (end < start).to_numpy()
    if before.any():
        row = int(np.flatnonzero(before)[0])
        raise AlertSchemaError(
            f"field 'end': value {end.iloc[row]} (row {row}) is before start {start.iloc[row]}; "
            "allowed: end >= start"
        )

    strings = {name: _string_column(frame, name) for name in _STRING_COLUMNS}
    vehicle_id = strings["vehicle_id"]
    no_vehicle = (vehicle_id == "") & (kind != "dump_hotspot")
    if no_vehicle.any():
        row = int(np.flatnonzero(no_vehicle.to_numpy())[0])
        raise AlertSchemaError(
            f"field 'vehicle_id': value '' (row {row}, kind {kind.iloc[row]!r}) is empty; "
            "allowed empty only for kind 'dump_hotspot'"
        )
    if "vehicle_key" in frame.columns:
        vehicle_key = _string_column(frame, "vehicle_key")
    else:
        vehicle_key = pd.Series([""] * len(frame), dtype="str")
    need_key = (vehicle_key == "") & (vehicle_id != "")
    if need_key.any():
        vehicle_key = vehicle_key.copy()
        vehicle_key[need_key] = _normalize_plates(vehicle_id[need_key]).to_numpy()

    # geometry and representative point
    lon = _float_column(frame, "lon")
    lat = _float_column(frame, "lat")
    if "geometry" in frame.columns:
        raw_geom = frame["geometry"]
        if (
            isinstance(raw_geom, gpd.GeoSeries)
            and raw_geom.crs is not None
            and not raw_geom.crs.equals("EPSG:4326")
        ):
            raise AlertSchemaError(
                f"field 'geometry': CRS {raw_geom.crs.to_string()!r} is not allowed; "
                "allowed: WGS-84 (EPSG:4326)"
            )
        geom_values = [g if isinstance(g, BaseGeometry) else None for g in raw_geom]
        not_geom = [
            g
            for g in raw_geom
            if g is not None
            and not isinstance(g, BaseGeometry)
            and not (isinstance(g, float) and math.isnan(g))
        ]
        if not_geom:
            raise AlertSchemaError(
                f"field 'geometry': value {not_geom[0]!r} is not a shapely geometry; "
                "allowed: a shapely geometry in WGS-84 or None"
            )
        geoms = np.array(geom_values, dtype=object)
        geoms[shapely.is_empty(geoms)] = None
    else:
        geoms = np.full(len(frame), None, dtype=object)
    has_geom = ~shapely.is_missing(geoms)
    fill_point = ~np.isfinite(lon) | ~np.isfinite(lat)
    if (fill_point & has_geom).any():
        idx = np.flatnonzero(fill_point & has_geom)
        # get_point returns None for polygons / points: fall back to a point on the surface
        reps = shapely.get_point(geoms[idx], 0)
        poly = shapely.is_missing(reps)
        if poly.any():
            reps[poly] = shapely.point_on_surface(geoms[idx][poly])
        first = shapely.get_coordinates(reps)
        lon[idx] = first[:, 0]
        lat[idx] = first[:, 1]
    no_place = ~np.isfinite(lon) | ~np.isfinite(lat)
    if no_place.any():
        row = int(np.flatnonzero(no_place)[0])
        raise AlertSchemaError(
            f"fields 'lon'/'lat' (row {row}, kind {kind.iloc[row]!r}): no location; "
            "allowed: finite lon/lat degrees or a geometry"
        )
    out_of_range = (np.abs(lon) > 180) | (np.abs(lat) > 90)
    if out_of_range.any():
        row = int(np.flatnonzero(out_of_range)[0])
        raise AlertSchemaError(
            f"fields 'lon'/'lat': value ({lon[row]}, {lat[row]}) (row {row}) is not WGS-84 "
            "degrees; allowed: lon in [-180, 180], lat in [-90, 90]"
        )
    geoms[~has_geom] = shapely.points(lon[~has_geom], lat[~has_geom])

    if "evidence" in frame.columns:
        evidence = [evidence_to_json(e) for e in frame["evidence"]]
    else:
        evidence = ["{}"] * len(frame)

    computed = _alert_ids(
        kind, vehicle_key, start, strings["site_id"], strings["manifest_id"], lon, lat, timezone
    )
    if keep_ids:
        given = _string_column(frame, "alert_id").to_numpy(dtype=object)
        ids = [g if g else c for g, c in zip(given, computed, strict=True)]
    else:
        ids = computed

    out = pd.DataFrame(
        {
            "alert_id": pd.Series(ids, dtype="str"),
            "kind": kind,
            "vehicle_id": vehicle_id,
            "start": start,
            "end": end,
            "severity": severity,
            "manifest_id": strings["manifest_id"],
            "site_id": strings["site_id"],
            "summary": strings["summary"],
            "trip_id": strings["trip_id"],
            "lon": lon,
            "lat": lat,
            "evidence": pd.Series(evidence, dtype="str"),
        }
    )
    out["_geom_i"] = np.arange(len(out))
    # Deterministic order; ties broken by every field so order never depends on input order.
    out = out.sort_values(
        ["start", "kind", "vehicle_id", "alert_id", "end", "summary", "evidence"],
        kind="mergesort",
    ).reset_index(drop=True)
    if not keep_ids:
        out["alert_id"] = _disambiguate(out["alert_id"])
    geometry = gpd.GeoSeries(geoms[out.pop("_geom_i").to_numpy()], crs="EPSG:4326")
    return gpd.GeoDataFrame(out, geometry=geometry, crs="EPSG:4326")[list(ALERT_COLUMNS)]


def _disambiguate(ids: pd.Series) -> pd.Series:
    """Suffix ``-2``, ``-3``... to repeated ids (in the frame's deterministic order)."""
    rank = ids.groupby(ids, sort=False).cumcount().to_numpy()
    if not rank.any():
        return ids
    suffix = np.where(rank > 0, "-" + (rank + 1).astype(str), "")
    return pd.Series(ids.to_numpy().astype(object) + suffix, index=ids.index, dtype="str")


# --------------------------------------------------------------------------- write / read


def _check_alerts(alerts: pd.DataFrame) -> None:
    missing = [c for c in ALERT_COLUMNS if c not in alerts.columns]
    if missing:
        raise AlertSchemaError(
            f"alerts frame lacks column(s) {missing}; build it with make_alerts()"
        )


def write_alerts(alerts: gpd.GeoDataFrame, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``alerts.geojson`` and ``alerts.csv`` into ``out_dir``.

    Parameters
    ----------
    alerts : geopandas.GeoDataFrame
        The frame :func:`make_alerts` returns.
    out_dir : str or Path
        Folder, created when missing.

    Returns
    -------
    tuple of Path
        Paths of the GeoJSON and CSV files.

    Notes
    -----
    GeoJSON: an RFC 7946 FeatureCollection (WGS-84, no ``crs`` member); each
    feature's ``id`` and properties carry the contract fields plus ``trip_id``,
    ``lon``, ``lat`` and ``evidence`` (a JSON object). CSV: UTF-8 with the same
    fields, ``evidence`` as JSON text and ``geometry`` as WKT. Times are
    ISO 8601 UTC with ``Z``.
    """
    _check_alerts(alerts)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    geojson_path = out / "alerts.geojson"
    csv_path = out / "alerts.csv"

    if len(alerts) and alerts.crs is not None and not alerts.crs.equals("EPSG:4326"):
        alerts = alerts.to_crs("EPSG:4326")
    starts = _iso_z_column(alerts["start"])
    ends = _iso_z_column(alerts["end"])
    geoms = np.asarray(alerts.geometry.array, dtype=object) if len(alerts) else np.array([])
    is_point = shapely.get_type_id(geoms) == 0 if len(geoms) else np.array([], dtype=bool)
    plain = [c for c in _PROPERTY_COLUMNS if c not in ("start", "end", "lon", "lat", "evidence")]
    columns = {c: alerts[c].astype("str").to_numpy(dtype=object) for c in plain}
    lons = alerts["lon"].to_numpy(dtype="float64")
    lats = alerts["lat"].to_numpy(dtype="float64")
    evidence = alerts["evidence"].astype("str").to_numpy(dtype=object)

    # Each feature is assembled as text: evidence is already canonical JSON text and
    # points need no shapely round trip, which keeps 100k alerts to about a second.
    chunks = []
    for i in range(len(alerts)):
        props = {c: columns[c][i] for c in plain[:3]}  # alert_id, kind, vehicle_id
        props["start"] = starts[i]
        props["end"] = ends[i]
        props.update({c: columns[c][i] for c in plain[3:]})
        props["lon"] = float(lons[i])
        props["lat"] = float(lats[i])
        head = json.dumps(props, ensure_ascii=False, allow_nan=False)
        g = geoms[i]
        if g is None:
            geometry = "null"
        elif is_point[i]:
            geometry = json.dumps({"type": "Point", "coordinates": [g.x, g.y]}, allow_nan=False)
        else:
            geometry = json.dumps(
                shapely.geometry.mapping(g), allow_nan=False, default=_geojson_default
            )
        chunks.append(
            f'{{"type": "Feature", "id": {json.dumps(columns["alert_id"][i], ensure_ascii=False)}, '
            f'"geometry": {geometry}, "properties": {head[:-1]}, "evidence": '
            f"{evidence[i] or '{}'}}}}}"
        )
    text = '{"type": "FeatureCollection", "features": [' + ", ".join(chunks) + "]}"
    geojson_path.write_text(text, encoding="utf-8")

    table = pd.DataFrame(alerts[list(_PROPERTY_COLUMNS)]).copy()
    table["start"] = starts
    table["end"] = ends
    table["geometry"] = shapely.to_wkt(geoms, rounding_precision=-1) if len(geoms) else []
    table.to_csv(csv_path, index=False, encoding="utf-8")
    return geojson_path, csv_path


def _iso_z_column(values: pd.Series) -> np.ndarray:
    """:func:`_iso_z` over a column (whole seconds unless a time has a fraction)."""
    if len(values) == 0:
        return np.array([], dtype=object)
    utc = values.dt.tz_convert("UTC")
    out = utc.dt.strftime("%Y-%m-%dT%H:%M:%S").to_numpy(dtype=object) + "Z"
    frac = ((utc.dt.microsecond != 0) | (utc.dt.nanosecond != 0)).to_numpy()
    if frac.any():
        out[frac] = utc[frac].dt.strftime("%Y-%m-%dT%H:%M:%S.%f").to_numpy(dtype=object) + "Z"
    return out


def _geojson_default(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return _json_default(value)


def read_alerts(path: str | Path, *, timezone: str = DEFAULT_TIMEZONE) -> gpd.GeoDataFrame:
    """Read ``alerts.geojson`` or ``alerts.csv`` back into the alerts frame.

    Parameters
    ----------
    path : str or Path
        A ``.geojson`` / ``.json`` or ``.csv`` file written by :func:`write_alerts`
        (or by another tool following docs/formats.md), or a folder holding
        ``alerts.geojson`` (else ``alerts.csv``).
    timezone : str
        Zone of times written without an offset.

    Returns
    -------
    geopandas.GeoDataFrame
        The frame :func:`make_alerts` returns; ids present in the file are kept,
        missing ids are computed.

    Raises
    ------
    FileNotFoundError
        When the file (or both files of a folder) is missing.
    AlertSchemaError
        When the content does not follow the alerts contract.
    """
    p = Path(path)
    if p.is_dir():
        for name in ("alerts.geojson", "alerts.csv"):
            if (p / name).exists():
                p = p / name
                break
        else:
            raise FileNotFoundError(f"no alerts.geojson or alerts.csv in folder {str(path)!r}")
    if not p.exists():
        raise FileNotFoundError(f"alerts file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix in (".geojson", ".json"):
        table = _read_geojson(p)
    elif suffix == ".csv":
        table = _read_csv(p)
    else:
        raise AlertSchemaError(
            f"alerts file {str(p)!r}: suffix {suffix!r} is not allowed; allowed: "
            "'.geojson', '.json', '.csv'"
        )
    try:
        return _from_table(table, timezone=timezone)
    except AlertSchemaError as exc:
        text = str(exc)
        if str(p) in text:
            raise
        raise AlertSchemaError(f"alerts file {str(p)!r}: {text}") from None


def _read_geojson(p: Path) -> pd.DataFrame:
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise AlertSchemaError(f"alerts file {str(p)!r} is not JSON: {exc.msg}") from None
    return _geojson_table(doc, f"alerts file {str(p)!r}")


def alerts_from_geojson(doc: Any, *, timezone: str = DEFAULT_TIMEZONE,
                        source: str = "alerts") -> gpd.GeoDataFrame:
    """Parsed GeoJSON (a FeatureCollection as :func:`write_alerts` writes) → the alerts frame.

    The one alert-GeoJSON parser: :func:`read_alerts` reads files through it,
    the service's import reads request bodies through it.

    Parameters
    ----------
    doc : dict
        The FeatureCollection (``json.loads`` of the file or body).
    timezone : str
        Zone of times written without an offset.
    source : str
        How messages name the input (``"alerts file 'x.geojson'"``, ``"body"``).

    Raises
    ------
    AlertSchemaError
        When the content does not follow the alerts contract.
    """
    return _from_table(_geojson_table(doc, source), timezone=timezone)


def _geojson_table(doc: Any, source: str) -> pd.DataFrame:
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise AlertSchemaError(
            f"{source}: type {doc.get('type') if isinstance(doc, dict) else type(doc).__name__!r} "
            "is not allowed; allowed: a GeoJSON FeatureCollection"
        )
    rows = []
    for i, feat in enumerate(doc.get("features") or []):
        if not isinstance(feat, dict) or not isinstance(feat.get("properties"), dict):
            raise AlertSchemaError(f"{source}: feature {i} has no properties object")
        props = dict(feat["properties"])
        if not props.get("alert_id") and feat.get("id") is not None:
            props["alert_id"] = str(feat["id"])
        gj = feat.get("geometry")
        try:
            props["geometry"] = shapely.geometry.shape(gj) if gj else None
        except (AttributeError, KeyError, IndexError, TypeError, ValueError,
                shapely.errors.GEOSException) as exc:
            raise AlertSchemaError(
                f"{source}: feature {i} geometry is not GeoJSON ({type(exc).__name__})") from None
        rows.append(props)
    return pd.DataFrame(rows)


def _read_csv(p: Path) -> pd.DataFrame:
    string_cols = {c: "str" for c in ALERT_COLUMNS if c not in ("lon", "lat")}
    table = pd.read_csv(p, dtype=string_cols, keep_default_na=False, encoding="utf-8")
    if "geometry" in table.columns:
        wkt = table["geometry"].to_numpy(dtype=object)
        wkt = np.where(wkt == "", None, wkt)
        try:
            table["geometry"] = list(shapely.from_wkt(wkt))
        except shapely.errors.GEOSException as exc:
            raise AlertSchemaError(
                f"alerts file {str(p)!r}: field 'geometry' is not WKT ({exc})"
            ) from None
    for name in ("lon", "lat"):
        if name in table.columns:
            table[name] = pd.to_numeric(table[name].replace("", np.nan), errors="coerce")
    return table


def _from_table(table: pd.DataFrame, *, timezone: str) -> gpd.GeoDataFrame:
    if len(table) == 0:
        return empty_alerts()
    if "evidence" in table.columns:
        table = table.copy()
        table["evidence"] = [
            e if isinstance(e, Mapping) or e is None else str(e) for e in table["evidence"]
        ]
    return _build(table, timezone=timezone, keep_ids=True)
