"""The analyst's report of an audit: one offline HTML file, Chinese first.

``report.html`` reads top to bottom in the bureau's language (``lang="zh-CN"``
by default, ``"en"`` on request; every string from :mod:`haulwatch.i18n`):
key figures, the map, the charts, the **company scorecard** (运输企业考核),
the **origin reconciliation** (出土量核对), then the detail tables and the
filterable alert list. Times are shown in the dataset's zone (named once) as
``2026-03-02 11:06``; sites by name, their id on hover.

The map is Leaflet (the copy vendored in the package root, ``haulwatch/vendor/leaflet``,
inlined into the page with its license) drawing sites, routes, alerts and a heat
map of dumps and long stops outside sites — no base map, no network: the file
opens offline and can be mailed. Charts are plain inline SVG. The page prints on
A4 landscape.

The tables are computed by :func:`company_scorecard`,
:func:`origin_reconciliation` and :func:`alert_breakdowns`; ``routes.outputs``
writes the same frames as CSV and ``audit.xlsx``, so the workbook and the page
always show the same figures.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from haulwatch.i18n import (
    DEFAULT_TIMEZONE,
    format_time,
    has_key,
    kind_label,
    normalize_lang,
    site_kind_label,
    t,
)
from haulwatch.ingest.plates import normalize_plate
from haulwatch.routes.alerts import KINDS

__all__ = [
    "DEFAULT_TRUCK_CAPACITY_M3",
    "KIND_COLOURS",
    "RECONCILIATION_COLUMNS",
    "SCORECARD_COLUMNS",
    "SITE_COLOURS",
    "alert_breakdowns",
    "company_scorecard",
    "heat_cells",
    "localized_summary",
    "origin_reconciliation",
    "render_report",
    "summaries_in",
    "write_report",
]

#: Body volume assumed for a truck whose ``capacity_m3`` the registry does not give (m³).
DEFAULT_TRUCK_CAPACITY_M3: float = 15.0

#: Fill colour of each site kind (polygons), apart from every alert colour.
SITE_COLOURS: dict[str, str] = {
    "origin": "#3cb44b",
    "disposal": "#4363d8",
    "depot": "#808000",
    "nest": "#911eb4",
    "no_fly": "#e6194b",
}

#: Marker colour of each alert kind: twenty-colour palette picks, told apart in print too.
KIND_COLOURS: dict[str, str] = {
    "illegal_dump": "#d00000",
    "route_deviation": "#f58231",
    "unpermitted_origin": "#000075",
    "wrong_disposal": "#9a9a00",
    "unmanifested_trip": "#f032e6",
    "manifest_not_executed": "#808080",
    "gps_gap": "#00a0c0",
    "unregistered_vehicle": "#9a6324",
    "dump_hotspot": "#000000",
}

#: Columns of the company scorecard (``scorecard.csv``), in order.
SCORECARD_COLUMNS: tuple[str, ...] = (
    "rank", "company", "trucks", "active_trucks", "trips",
    *(f"alerts_{k}" for k in KINDS), "alerts_total", "alerts_per_100_trips",
)

#: Columns of the origin reconciliation (``reconciliation.csv``), in order.
RECONCILIATION_COLUMNS: tuple[str, ...] = (
    "origin_site_id", "origin_name", "trips", "trucks", "capacity_basis", "hauled_m3",
    "manifests", "declared_m3", "permit_m3", "hauled_vs_declared_pct", "hauled_vs_permit_pct",
    "flag",
)

_UNREGISTERED = ""  # company of trucks the registry does not list as registered
_UNKNOWN_ORIGIN = ""  # origin of loads at no permitted origin (black sites)


def _local_text(values: Any, timezone: str) -> list[str]:
    """Times as ``2026-03-02 11:06`` in ``timezone``, a whole column at once ('' when missing)."""
    ts = pd.to_datetime(pd.Series(values), utc=True, errors="coerce").dt.tz_convert(timezone)
    return ts.dt.strftime("%Y-%m-%d %H:%M").fillna("").tolist()


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


# --------------------------------------------------------------------------- tables


def _company_of(vehicle_ids: pd.Series, vehicles: pd.DataFrame | None) -> pd.Series:
    """Company of each vehicle id (the registry's, by normalized plate); unregistered key else."""
    if vehicles is None or not len(vehicles) or "vehicle_id" not in vehicles.columns:
        return pd.Series(_UNREGISTERED, index=vehicle_ids.index, dtype=object)
    reg = vehicles.copy()
    key = reg["vehicle_key"] if "vehicle_key" in reg.columns else normalize_plate(reg["vehicle_id"])
    company = reg["company"] if "company" in reg.columns else pd.Series(None, index=reg.index)
    registered = reg["registered"].astype(bool) if "registered" in reg.columns else True
    company = company.where(company.notna() & (company.astype(str) != ""), "—")
    company = company.where(registered, _UNREGISTERED)
    lookup = pd.Series(company.to_numpy(dtype=object), index=key.to_numpy(dtype=object))
    lookup = lookup[~lookup.index.duplicated()]
    keys = normalize_plate(vehicle_ids.fillna("").astype(str))
    out = keys.map(lookup)
    return out.where(out.notna(), _UNREGISTERED).astype(object)


def _trip_lookup(alerts: pd.DataFrame, trips: pd.DataFrame | None, column: str) -> pd.Series:
    """The ``column`` of each alert's trip (by ``trip_id``), NaN without one."""
    if trips is None or not len(trips) or column not in trips.columns or "trip_id" not in alerts:
        return pd.Series(np.nan, index=alerts.index, dtype=object)
    by_trip = trips.drop_duplicates("trip_id").set_index("trip_id")[column]
    return alerts["trip_id"].map(by_trip)


def _site_kind_map(sites: pd.DataFrame | None) -> dict[str, str]:
    if sites is None or not len(sites):
        return {}
    return dict(zip(sites["site_id"].astype(str), sites["kind"].astype(str), strict=True))


def alert_breakdowns(
    alerts: pd.DataFrame,
    *,
    trips: pd.DataFrame | None = None,
    vehicles: pd.DataFrame | None = None,
    sites: pd.DataFrame | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """Count the alerts per local day and kind, hour of day, company, origin and disposal site.

    Parameters
    ----------
    alerts : pandas.DataFrame
        The alerts frame (``routes.alerts``); not changed.
    trips : pandas.DataFrame, optional
        The audit's trips: an alert's origin / disposal site is its trip's.
    vehicles : pandas.DataFrame, optional
        The registry (``vehicle_id``, ``company``, ``registered``): an alert's company.
    sites : pandas.DataFrame, optional
        The sites: an alert without a trip counts at its ``site_id`` when that is an
        origin (or disposal site).
    timezone : str
        Zone of the day and hour (the dataset's).

    Returns
    -------
    dict
        ``by_day_kind`` (DataFrame: local date × kind), ``by_hour`` (Series 0-23),
        ``by_company``, ``by_origin``, ``by_disposal`` (Series, most first; the
        keys ``""`` stands for trucks outside the registry (company) and
        loads at no permitted origin (origin)).
    """
    a = pd.DataFrame(alerts)
    if not len(a):
        empty = pd.Series(dtype="int64")
        return {
            "by_day_kind": pd.DataFrame(columns=list(KINDS), dtype="int64"),
            "by_hour": pd.Series(0, index=range(24), dtype="int64"),
            "by_company": empty, "by_origin": empty, "by_disposal": empty,
        }
    local = pd.to_datetime(a["start"], utc=True).dt.tz_convert(timezone)
    day = local.dt.strftime("%Y-%m-%d")
    by_day_kind = (
        pd.crosstab(day, a["kind"]).reindex(columns=list(KINDS), fill_value=0).sort_index()
    )
    by_day_kind.index.name = "day"
    by_hour = local.dt.hour.value_counts().reindex(range(24), fill_value=0).astype("int64")
    has_vehicle = a["vehicle_id"].fillna("").astype(str) != ""
    company = _company_of(a.loc[has_vehicle, "vehicle_id"], vehicles)
    by_company = company.value_counts()
    kinds = _site_kind_map(sites)
    site = a["site_id"].fillna("").astype(str) if "site_id" in a.columns else pd.Series("", index=a.index)
    site_kind = site.map(kinds)
    origin = _trip_lookup(a, trips, "origin_site_id")
    origin = origin.where(origin.notna() & (origin.astype(str) != ""), site.where(site_kind == "origin"))
    unknown = (a["kind"] == "unpermitted_origin") & origin.isna()
    origin = origin.where(~unknown, _UNKNOWN_ORIGIN)
    disposal = _trip_lookup(a, trips, "disposal_site_id")
    disposal = disposal.where(disposal.notna() & (disposal.astype(str) != ""),
                              site.where(site_kind == "disposal"))
    return {
        "by_day_kind": by_day_kind.astype("int64"),
        "by_hour": by_hour,
        "by_company": by_company.astype("int64"),
        "by_origin": origin.dropna().value_counts().astype("int64"),
        "by_disposal": disposal.dropna().value_counts().astype("int64"),
    }


def company_scorecard(
    alerts: pd.DataFrame,
    *,
    trips: pd.DataFrame | None = None,
    vehicles: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per transport company: trucks, trips, alerts by kind, alerts per 100 trips, rank.

    Parameters
    ----------
    alerts : pandas.DataFrame
        The alerts frame; not changed.
    trips : pandas.DataFrame, optional
        The audit's trips (``vehicle_id``); each counts for its truck's company.
    vehicles : pandas.DataFrame, optional
        The registry (``vehicle_id``, ``company``, ``registered``). Trucks it does not
        list as registered form one row (``company`` = ``""``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SCORECARD_COLUMNS`. ``trucks``: registered trucks of the company
        (for the unregistered row: the distinct trucks seen); ``active_trucks``:
        trucks with a trip; ``alerts_per_100_trips`` is NaN without trips; ``rank``
        1 = fewest alerts per 100 trips (ties share a rank; companies without trips
        are not ranked: 0). Sorted by rank, then company.
    """
    a = pd.DataFrame(alerts)
    trips = pd.DataFrame(trips) if trips is not None else pd.DataFrame()
    if "vehicle_id" not in trips.columns:  # trips of unknown trucks count for no company
        trips = pd.DataFrame({"vehicle_id": pd.Series([], dtype=object)})
    a = a[a["vehicle_id"].fillna("").astype(str) != ""] if len(a) else a
    alert_company = _company_of(a["vehicle_id"], vehicles) if len(a) else pd.Series(dtype=object)
    trip_company = (_company_of(trips["vehicle_id"], vehicles) if len(trips)
                    else pd.Series(dtype=object))
    companies: set[str] = set(alert_company) | set(trip_company)
    fleet = pd.Series(dtype="int64")
    if vehicles is not None and len(vehicles):
        reg_company = _company_of(vehicles["vehicle_id"], vehicles)
        fleet = reg_company[reg_company != _UNREGISTERED].value_counts()
        companies |= set(fleet.index)
    rows = []
    trip_keys = normalize_plate(trips["vehicle_id"].fillna("").astype(str)) if len(trips) else None
    alert_keys = normalize_plate(a["vehicle_id"].fillna("").astype(str)) if len(a) else None
    for company in sorted(companies, key=lambda c: (c == _UNREGISTERED, c)):
        tmask = (trip_company == company).to_numpy() if len(trips) else np.zeros(0, bool)
        amask = (alert_company == company).to_numpy() if len(a) else np.zeros(0, bool)
        n_trips = int(tmask.sum())
        active = int(trip_keys[tmask].nunique()) if trip_keys is not None else 0
        if company == _UNREGISTERED:
            seen = set(trip_keys[tmask]) if trip_keys is not None else set()
            seen |= set(alert_keys[amask]) if alert_keys is not None else set()
            trucks = len(seen)
        else:
            trucks = int(fleet.get(company, 0))
        kinds = a.loc[amask, "kind"].value_counts() if len(a) else pd.Series(dtype="int64")
        row: dict[str, Any] = {"company": company, "trucks": trucks, "active_trucks": active,
                               "trips": n_trips}
        total = 0
        for k in KINDS:
            row[f"alerts_{k}"] = int(kinds.get(k, 0))
            total += row[f"alerts_{k}"]
        row["alerts_total"] = total
        row["alerts_per_100_trips"] = round(100.0 * total / n_trips, 1) if n_trips else math.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in SCORECARD_COLUMNS if c != "rank"])
    rate = out["alerts_per_100_trips"]
    rank = rate.rank(method="min", ascending=True)
    out.insert(0, "rank", rank.fillna(0).astype("int64"))
    order = np.lexsort((out["company"].astype(str).to_numpy(),
                        np.where(out["rank"] == 0, 10**9, out["rank"]).astype("int64")))
    out = out.iloc[order].reset_index(drop=True)
    for c in SCORECARD_COLUMNS:
        if c not in ("company", "alerts_per_100_trips"):
            out[c] = out[c].astype("int64")
    return out[list(SCORECARD_COLUMNS)]


def origin_reconciliation(
    trips: pd.DataFrame | None,
    *,
    manifests: pd.DataFrame | None = None,
    vehicles: pd.DataFrame | None = None,
    sites: pd.DataFrame | None = None,
    truck_capacity_m3: float = DEFAULT_TRUCK_CAPACITY_M3,
    tolerance_pct: float = 20.0,
) -> pd.DataFrame:
    """Per origin (出土量核对): trips and hauled volume against declared and permitted volume.

    Parameters
    ----------
    trips : pandas.DataFrame or None
        The audit's trips (``vehicle_id``, ``origin_site_id``): every trip is one load
        (delivered, dumped, undelivered or open); loads at no permitted origin count under ``origin_site_id`` = ``""``.
    manifests : pandas.DataFrame, optional
        ``origin_site_id``, ``volume_m3`` (NaN when absent): what the manifests declare.
    vehicles : pandas.DataFrame, optional
        ``capacity_m3`` per truck (the body volume hauled per trip).
    sites : pandas.DataFrame, optional
        ``site_id``, ``kind``, ``name``, optional ``declared_volume_m3`` (the permit).
    truck_capacity_m3 : float
        Volume per trip of a truck whose capacity the registry does not give, m³ (> 0).
    tolerance_pct : float
        Hauled volume more than this far from the declared (or above the permit) is flagged.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECONCILIATION_COLUMNS`, one row per permitted origin (and one
        for unknown origins when trucks loaded elsewhere). ``hauled_m3`` = Σ per trip of
        the truck's ``capacity_m3`` or ``truck_capacity_m3``; ``capacity_basis`` says
        which (``registry``, ``setting``, ``mixed``); ``declared_m3`` = Σ manifest
        ``volume_m3`` (NaN when none gives one); ``*_pct`` = 100 × hauled / reference;
        ``flag`` = ``over_permit``, ``over_declared``, ``under_declared``,
        ``no_manifest`` (trips but no manifest), ``not_hauled`` (manifests but no
        trip), ``unknown_origin`` or ``""``.

    Raises
    ------
    ValueError
        When ``truck_capacity_m3`` <= 0 or ``tolerance_pct`` < 0.
    """
    if not (isinstance(truck_capacity_m3, int | float) and truck_capacity_m3 > 0):
        raise ValueError(
            f"truck_capacity_m3: value {truck_capacity_m3!r} is not allowed; allowed: a number > 0"
        )
    if not tolerance_pct >= 0:
        raise ValueError(f"tolerance_pct: value {tolerance_pct!r} is not allowed; allowed: >= 0")
    trips = pd.DataFrame(trips) if trips is not None else pd.DataFrame()
    if "vehicle_id" not in trips.columns:
        trips = trips.assign(vehicle_id="")
    origin = (trips["origin_site_id"] if "origin_site_id" in trips.columns
              else pd.Series(np.nan, index=trips.index, dtype=object))
    origin = origin.where(origin.notna() & (origin.astype(str) != ""), _UNKNOWN_ORIGIN)
    cap = pd.Series(np.nan, index=trips.index, dtype="float64")
    if len(trips) and vehicles is not None and len(vehicles) and "capacity_m3" in vehicles.columns:
        key = (vehicles["vehicle_key"] if "vehicle_key" in vehicles.columns
               else normalize_plate(vehicles["vehicle_id"]))
        lookup = pd.Series(pd.to_numeric(vehicles["capacity_m3"], errors="coerce").to_numpy(),
                           index=key.to_numpy(dtype=object))
        lookup = lookup[~lookup.index.duplicated()]
        cap = normalize_plate(trips["vehicle_id"].fillna("").astype(str)).map(lookup).astype("float64")
    from_registry = cap.notna()
    volume = cap.fillna(float(truck_capacity_m3))
    kinds = _site_kind_map(sites)
    names: dict[str, str] = {}
    permit: dict[str, float] = {}
    if sites is not None and len(sites):
        names = dict(zip(sites["site_id"].astype(str), sites["name"].fillna("").astype(str),
                         strict=True)) if "name" in sites.columns else {}
        if "declared_volume_m3" in sites.columns:
            permit = dict(zip(sites["site_id"].astype(str),
                              pd.to_numeric(sites["declared_volume_m3"], errors="coerce"),
                              strict=True))
    man = pd.DataFrame(manifests) if manifests is not None else pd.DataFrame()
    man_origin = man["origin_site_id"].astype(str) if len(man) else pd.Series(dtype=str)
    man_volume = (pd.to_numeric(man["volume_m3"], errors="coerce") if "volume_m3" in man.columns
                  else pd.Series(np.nan, index=man.index))
    ids = {s for s, k in kinds.items() if k == "origin"} | set(origin) | set(man_origin)
    keys = normalize_plate(trips["vehicle_id"].fillna("").astype(str)) if len(trips) else None
    rows = []
    for sid in sorted(ids, key=lambda s: (s == _UNKNOWN_ORIGIN, s)):
        tmask = (origin == sid).to_numpy()
        n = int(tmask.sum())
        mmask = (man_origin == sid).to_numpy()
        declared_parts = man_volume[mmask].dropna()
        declared = float(declared_parts.sum()) if len(declared_parts) else math.nan
        hauled = float(volume[tmask].sum()) if n else 0.0
        reg = from_registry[tmask]
        basis = ("" if not n else "registry" if reg.all() else "setting" if not reg.any()
                 else "mixed")
        p = permit.get(sid, math.nan)
        p = float(p) if p is not None and not pd.isna(p) else math.nan
        vs_declared = 100.0 * hauled / declared if declared and declared > 0 else math.nan
        vs_permit = 100.0 * hauled / p if p and p > 0 else math.nan
        if sid == _UNKNOWN_ORIGIN and n:
            flag = "unknown_origin"
        elif not math.isnan(vs_permit) and vs_permit > 100.0:
            flag = "over_permit"
        elif n and not mmask.any():
            flag = "no_manifest"
        elif mmask.any() and not n:
            flag = "not_hauled"
        elif not math.isnan(vs_declared) and vs_declared > 100.0 + tolerance_pct:
            flag = "over_declared"
        elif not math.isnan(vs_declared) and vs_declared < 100.0 - tolerance_pct:
            flag = "under_declared"
        else:
            flag = ""
        rows.append({
            "origin_site_id": sid, "origin_name": names.get(sid, ""), "trips": n,
            "trucks": int(keys[tmask].nunique()) if keys is not None else 0,
            "capacity_basis": basis, "hauled_m3": round(hauled, 1), "manifests": int(mmask.sum()),
            "declared_m3": round(declared, 1) if not math.isnan(declared) else math.nan,
            "permit_m3": p, "hauled_vs_declared_pct": round(vs_declared, 1),
            "hauled_vs_permit_pct": round(vs_permit, 1), "flag": flag,
        })
    out = pd.DataFrame(rows, columns=list(RECONCILIATION_COLUMNS))
    for c in ("trips", "trucks", "manifests"):
        out[c] = out[c].astype("int64")
    return out


def heat_cells(
    alerts: pd.DataFrame,
    stops: pd.DataFrame | None = None,
    *,
    cell_m: float = 250.0,
    long_stop_min_s: float = 600.0,
) -> pd.DataFrame:
    """Count dumps and long stops outside sites per square cell (the report's heat map).

    Parameters
    ----------
    alerts : pandas.DataFrame
        Its ``illegal_dump`` alerts (``lon``, ``lat``) are counted.
    stops : pandas.DataFrame, optional
        Stops (``lon``, ``lat``, ``duration_s``, ``site_id``): those outside every site
        (``site_id`` empty) lasting at least ``long_stop_min_s`` are counted.
    cell_m : float
        Cell side, metres (> 0).
    long_stop_min_s : float
        Shortest stop counted, seconds.

    Returns
    -------
    pandas.DataFrame
        ``south, west, north, east`` (degrees) and ``dumps``, ``stops``, ``total`` per
        non-empty cell, most first.
    """
    if not cell_m > 0:
        raise ValueError(f"cell_m: value {cell_m!r} is not allowed; allowed: a number > 0")
    lon_parts, lat_parts, is_dump = [], [], []
    a = pd.DataFrame(alerts)
    if len(a):
        d = a[a["kind"] == "illegal_dump"][["lon", "lat"]].dropna()
        lon_parts.append(d["lon"].to_numpy(float))
        lat_parts.append(d["lat"].to_numpy(float))
        is_dump.append(np.ones(len(d), bool))
    if stops is not None and len(stops) and {"lon", "lat", "duration_s"} <= set(stops.columns):
        outside = (stops["site_id"].isna() | (stops["site_id"].astype(str) == "")
                   if "site_id" in stops.columns else pd.Series(True, index=stops.index))
        dur = pd.to_numeric(stops["duration_s"], errors="coerce")
        s = stops[outside & (dur >= long_stop_min_s)][["lon", "lat"]].dropna()
        lon_parts.append(s["lon"].to_numpy(float))
        lat_parts.append(s["lat"].to_numpy(float))
        is_dump.append(np.zeros(len(s), bool))
    columns = ["south", "west", "north", "east", "dumps", "stops", "total"]
    if not lon_parts or not sum(len(x) for x in lon_parts):
        return pd.DataFrame(columns=columns)
    lon = np.concatenate(lon_parts)
    lat = np.concatenate(lat_parts)
    dump = np.concatenate(is_dump)
    lat0 = float(np.nanmean(lat))
    dlat = cell_m / 111_320.0
    dlon = cell_m / (111_320.0 * max(math.cos(math.radians(lat0)), 1e-6))
    iy = np.floor(lat / dlat).astype("int64")
    ix = np.floor(lon / dlon).astype("int64")
    frame = pd.DataFrame({"iy": iy, "ix": ix, "dumps": dump.astype("int64"),
                          "stops": (~dump).astype("int64")})
    g = frame.groupby(["iy", "ix"], sort=True)[["dumps", "stops"]].sum().reset_index()
    g["total"] = g["dumps"] + g["stops"]
    out = pd.DataFrame({
        "south": g["iy"] * dlat, "west": g["ix"] * dlon,
        "north": (g["iy"] + 1) * dlat, "east": (g["ix"] + 1) * dlon,
        "dumps": g["dumps"], "stops": g["stops"], "total": g["total"],
    })
    return out.sort_values(["total", "south", "west"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- summaries


def _minutes_text(seconds: Any, lang: str) -> str | None:
    try:
        sec = float(seconds)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(sec):
        return None
    minutes = math.floor(abs(sec) / 60.0 + 0.5)  # whole minutes, half up, as the detectors say
    if minutes >= 60:
        return t("unit.h_min", lang, h=minutes // 60, m=minutes % 60)
    if minutes >= 1:
        return t("unit.min", lang, m=minutes)
    return t("unit.s", lang, s=math.floor(abs(sec) + 0.5))


def _distance_text(metres: Any) -> str | None:
    try:
        m = float(metres)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(m):
        return None
    return f"{m / 1000:.1f} km" if abs(m) >= 1000 else f"{m:.0f} m"


def _evidence_of(alert: Mapping[str, Any]) -> dict[str, Any]:
    ev = alert.get("evidence")
    if isinstance(ev, str) and ev:
        try:
            ev = json.loads(ev)
        except ValueError:
            return {}
    return ev if isinstance(ev, dict) else {}


def localized_summary(
    alert: Mapping[str, Any],
    lang: str = "zh-CN",
    *,
    timezone: str = DEFAULT_TIMEZONE,
    site_name: Any = None,
) -> str:
    """The alert's one-sentence summary in ``lang``, from its structured fields.

    The detectors write ``summary`` in English; this renders the same facts from
    the catalog's ``summary.<kind>`` templates and the alert's fields and evidence
    (the console's ``localSummary`` does the same in the browser). When a fact the
    template needs is missing, the alert's own ``summary`` is returned.

    Parameters
    ----------
    alert : Mapping
        ``kind``, ``vehicle_id``, ``start``, ``end``, ``site_id``, ``manifest_id``,
        ``evidence`` (dict or JSON text), ``summary``.
    lang : str
        ``zh-CN`` (default) or ``en``.
    timezone : str
        Zone of the times in the sentence.
    site_name : callable, optional
        ``site_id -> display name`` (default: the id).

    Returns
    -------
    str
    """
    lang = normalize_lang(lang)
    name = site_name if callable(site_name) else (lambda sid: str(sid))
    ev = _evidence_of(alert)
    kind = str(alert.get("kind") or "")
    original = "" if _blank(alert.get("summary")) else str(alert.get("summary"))

    def site(value: Any) -> str | None:
        return None if _blank(value) else name(str(value))

    def first(values: Any) -> Any:
        if isinstance(values, list | tuple) and values:
            return values[0]
        return None

    params: dict[str, Any] = {
        "vehicle": alert.get("vehicle_id") or None,
        "time": alert.get("start_local") or format_time(alert.get("start"), timezone) or None,
        "site": site(alert.get("site_id")),
        "manifest": alert.get("manifest_id") or first(ev.get("manifest_ids")) or None,
        "origin": site(ev.get("origin_site_id")),
        "disposal": site(ev.get("disposal_site_id")),
        "distance": _distance_text(ev.get("distance_to_permitted_site_m")),
    }
    key = f"summary.{kind}"
    if kind == "illegal_dump":
        if not _blank(ev.get("at_site_id")):
            key, params["site"] = "summary.illegal_dump_at_site", site(ev.get("at_site_id"))
            params["duration"] = _minutes_text(ev.get("stop_duration_s"), lang)
        elif (ev.get("dark_s") or 0) > 0:
            key, params["duration"] = "summary.illegal_dump_dark", _minutes_text(ev.get("dark_s"), lang)
        else:
            params["duration"] = _minutes_text(ev.get("stop_duration_s"), lang)
    elif kind == "route_deviation":
        params["route"] = first(ev.get("route_ids"))
        params["duration"] = _minutes_text(ev.get("off_corridor_s"), lang)
        params["offset"] = _distance_text(ev.get("max_off_corridor_m"))
    elif kind == "unpermitted_origin":
        params["duration"] = _minutes_text(ev.get("dwell_duration_s"), lang)
        if params["site"]:
            key = "summary.unpermitted_origin_permit"
    elif kind == "wrong_disposal":
        expected = ev.get("manifest_disposal_site_ids") or []
        params["expected"] = "、".join(name(str(x)) for x in expected) if lang != "en" else \
            ", ".join(name(str(x)) for x in expected)
        params["expected"] = params["expected"] or None
        params["site"] = params["site"] or params["disposal"]
    elif kind == "manifest_not_executed":
        params["from"] = format_time(ev.get("valid_from") or alert.get("start"), timezone) or None
        params["to"] = format_time(ev.get("valid_to") or alert.get("end"), timezone) or None
    elif kind == "gps_gap":
        params["duration"] = _minutes_text(ev.get("gap_s"), lang)
        params["moved"] = _distance_text(ev.get("moved_while_dark_m"))
    elif kind == "unregistered_vehicle":
        params["day"] = ev.get("day")
        params["loads"] = ev.get("loads")
    elif kind == "dump_hotspot":
        dumps = ev.get("dumps") if isinstance(ev.get("dumps"), list) else []
        trucks = ev.get("vehicles")
        if isinstance(trucks, list):
            trucks = len(trucks)
        if not isinstance(trucks, int) and dumps:
            trucks = len({d[0] for d in dumps if isinstance(d, list) and d})
        params.update(day=ev.get("day"), trucks=trucks, dumps=len(dumps) or None,
                      radius=_distance_text(ev.get("hotspot_radius_m")))
    if not has_key(key, lang):
        return original
    template = t(key, lang)
    import string

    needed = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    if any(params.get(f) is None for f in needed):
        return original
    return template.format(**{f: params[f] for f in needed})


# --------------------------------------------------------------------------- the page


@cache
def _leaflet() -> tuple[str, str, str]:
    """Leaflet's JS, CSS (images inlined) and license, from the copy vendored in the package root."""
    base = resources.files("haulwatch").joinpath("vendor", "leaflet")
    js = base.joinpath("leaflet.js").read_text("utf-8")
    css = base.joinpath("leaflet.css").read_text("utf-8")
    for name in ("layers.png", "layers-2x.png", "marker-icon.png"):
        import base64

        data = base64.b64encode(base.joinpath("images", name).read_bytes()).decode("ascii")
        css = css.replace(f"url(images/{name})", f"url(data:image/png;base64,{data})")
    return js, css, base.joinpath("LICENSE").read_text("utf-8")


_CSS = """
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei",sans-serif;
margin:0 auto;max-width:1240px;padding:0 16px 48px;color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:14px;margin:10px 0 4px}
table{border-collapse:collapse;margin:4px 0 12px}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f4f4f4;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:18px 28px}.muted{color:#666}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.card{border:1px solid #ddd;border-radius:6px;padding:6px 12px;min-width:110px}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}.card span{color:#555;font-size:12px}
.sev-high{color:#b00;font-weight:600}.sev-medium{color:#a60}.sev-low{color:#555}
#map{height:560px;border:1px solid #ccc;background:#f3f3ef}
.legend span{display:inline-block;margin:0 14px 2px 0;font-size:12px}.sw{display:inline-block;width:12px;height:12px;border-radius:6px;vertical-align:-1px;margin-right:4px}
.sq{border-radius:2px;opacity:.7}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:14px 24px}
.chart{break-inside:avoid}.chart svg{max-width:100%;height:auto}.chart text{font-size:11px;fill:#333}
.flag{font-weight:600;color:#a40000}.flag-ok{color:#2e7d32}
tr:target{background:#fff3b0}#alerts td{font-size:13px}input#q{padding:4px 8px;width:320px}
.leaflet-tooltip.site-label{background:transparent;border:0;box-shadow:none;padding:0;font-size:11px;color:#222;
text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff}.leaflet-tooltip.site-label:before{display:none}
.license{font-size:11px;color:#777;white-space:pre-wrap}
@media print{@page{size:A4 landscape;margin:10mm}body{max-width:none;padding:0;font-size:11px}
h1{font-size:18px;margin:0 0 2px}.cards{gap:5px;margin:4px 0}.card{padding:1px 8px;min-width:0}.card b{font-size:14px}
#map{height:128mm;page-break-inside:avoid}.leaflet-control-zoom,.leaflet-control-layers{display:none}
.noprint,input#q{display:none}h2{page-break-after:avoid;margin:8px 0 4px}
table{page-break-inside:auto}tr{page-break-inside:avoid}.charts{grid-template-columns:1fr 1fr}
#alerts td{font-size:10px}a{color:inherit;text-decoration:none}}
"""

_JS = """
(function(){
var data=JSON.parse(document.getElementById('map-data').textContent);
var el=document.getElementById('map');
if(!window.L||!el){return;}
var map=L.map(el,{zoomSnap:0.25,preferCanvas:false});
map.attributionControl.setPrefix('Leaflet');
L.control.scale({imperial:false}).addTo(map);
function tipEl(text){var s=document.createElement('span');s.textContent=text;return s;}
var sites=L.layerGroup().addTo(map),routes=L.layerGroup().addTo(map),heat=L.layerGroup().addTo(map),
alerts=L.layerGroup().addTo(map),bounds=[];
data.routes.forEach(function(r){var l=L.polyline(r.coords,{color:'#00897b',weight:3,dashArray:'6 4'});
l.bindTooltip(tipEl(r.title));l.addTo(routes);r.coords.forEach(function(c){bounds.push(c);});});
var many=data.sites.length>40;
data.sites.forEach(function(s){var p=L.polygon(s.coords,{color:s.colour,weight:1.5,fillOpacity:0.3});
p.bindTooltip(tipEl(s.title));p.addTo(sites);var b=p.getBounds();bounds.push(b.getSouthWest(),b.getNorthEast());
if(many&&s.kind!=='disposal'){return;}
L.tooltip({permanent:true,direction:'bottom',className:'site-label',interactive:false})
.setLatLng([b.getSouth(),b.getCenter().lng]).setContent(tipEl(s.label)).addTo(sites);});
var max=1;data.heat.forEach(function(h){if(h.total>max)max=h.total;});
data.heat.forEach(function(h){var f=0.15+0.6*h.total/max;L.rectangle([[h.s,h.w],[h.n,h.e]],
{stroke:false,fillColor:'#d00000',fillOpacity:f,interactive:true}).bindTooltip(tipEl(h.title)).addTo(heat);});
data.alerts.forEach(function(a){var m;if(a.line){m=L.polyline(a.line,{color:a.colour,weight:4,opacity:0.85});
m.addTo(alerts);a.line.forEach(function(c){bounds.push(c);});}
if(a.hotspot){m=L.circleMarker(a.at,{radius:11,color:a.colour,weight:2.5,fill:false});}
else{m=L.circleMarker(a.at,{radius:5,color:'#fff',weight:1.2,fillColor:a.colour,fillOpacity:0.95});}
m.bindTooltip(tipEl(a.title));m.on('click',function(){location.hash='alert-'+a.anchor;});m.addTo(alerts);bounds.push(a.at);});
var layers={};layers[data.labels.sites]=sites;layers[data.labels.routes]=routes;layers[data.labels.heat]=heat;
layers[data.labels.alerts]=alerts;
var ctl={};Object.keys(layers).forEach(function(k){ctl[k.replace(/[&<>]/g,'')]=layers[k];});
L.control.layers(null,ctl,{collapsed:false}).addTo(map);
function fit(){if(bounds.length){map.fitBounds(L.latLngBounds(bounds).pad(0.05),{maxZoom:16,animate:false});}
else{map.setView([30.0,120.2],8);}}
fit();
// The printed map is smaller than the screen's: redraw it for the page.
window.addEventListener('beforeprint',function(){map.invalidateSize(false);fit();});
window.addEventListener('afterprint',function(){map.invalidateSize(false);fit();});
var q=document.getElementById('q');if(q){q.addEventListener('input',function(){
var v=this.value.toLowerCase();var rows=document.querySelectorAll('#alerts tbody tr');var n=0;
for(var i=0;i<rows.length;i++){var ok=rows[i].textContent.toLowerCase().indexOf(v)>=0;
rows[i].style.display=ok?'':'none';if(ok)n++;}document.getElementById('shown').textContent=n;});}
})();
"""


def _fmt(value: Any, digits: int = 0) -> str:
    if _blank(value):
        return "—"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "—"
        return f"{value:,.{digits}f}" if digits or not float(value).is_integer() else f"{value:,.0f}"
    return str(value)


def _wgs84(frame: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    if frame is None or len(frame) == 0 or not isinstance(frame, gpd.GeoDataFrame):
        return None
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return frame


_ANCHOR_RE = re.compile(r"[^0-9A-Za-z_\-]")


def _anchor(alert_id: str) -> str:
    """An id token safe in HTML (alert ids are ``[A-Z]+-[0-9a-f]+``, but be safe)."""
    return _ANCHOR_RE.sub("_", str(alert_id))


def _latlngs(geom: Any) -> Any:
    """Leaflet [lat, lon] nesting of a (multi)polygon or line."""
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [[[round(y, 7), round(x, 7)] for x, y, *_ in ring.coords]
                for ring in [geom.exterior, *geom.interiors]]
    if geom.geom_type in ("MultiPolygon", "MultiLineString", "GeometryCollection"):
        return [_latlngs(g) for g in geom.geoms]
    if geom.geom_type in ("LineString", "LinearRing"):
        return [[round(y, 7), round(x, 7)] for x, y, *_ in geom.coords]
    return []


class _Names:
    """Site display names (id on hover) in the report's language."""

    def __init__(self, sites: gpd.GeoDataFrame | None, lang: str) -> None:
        self.lang = lang
        self.names: dict[str, str] = {}
        if sites is not None and len(sites) and "site_id" in sites.columns:
            names = (sites["name"] if "name" in sites.columns
                     else pd.Series("", index=sites.index)).fillna("").astype(str)
            self.names = dict(zip(sites["site_id"].astype(str), names, strict=True))

    def text(self, site_id: Any) -> str:
        if _blank(site_id):
            return ""
        sid = str(site_id)
        return self.names.get(sid) or sid

    def origin(self, site_id: Any) -> str:
        """An origin's name; blank = loads at no permitted origin."""
        if _blank(site_id):
            return t("report.unknown_origin", self.lang)
        return self.text(site_id)

    def html(self, site_id: Any, *, origin: bool = False) -> str:
        if _blank(site_id):
            return _e(t("report.unknown_origin", self.lang)) if origin else "—"
        sid = str(site_id)
        return f"<span title='{_e(sid)}'>{_e(self.text(sid))}</span>"


def _company_text(company: str, lang: str) -> str:
    return t("report.unregistered_company", lang) if company == _UNREGISTERED else str(company)


def _map_data(alerts: gpd.GeoDataFrame, sites: gpd.GeoDataFrame | None,
              routes: gpd.GeoDataFrame | None, heat: pd.DataFrame, names: _Names,
              lang: str, timezone: str, summaries: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {"sites": [], "routes": [], "alerts": [], "heat": [], "labels": {
        "sites": t("report.layer_sites", lang), "routes": t("report.layer_routes", lang),
        "heat": t("report.layer_heat", lang), "alerts": t("report.layer_alerts", lang)}}
    if sites is not None:
        kinds = sites["kind"].astype(str) if "kind" in sites.columns else pd.Series("", index=sites.index)
        for sid, kind, geom in zip(sites["site_id"].astype(str), kinds, sites.geometry, strict=True):
            if geom is None or geom.is_empty:
                continue
            data["sites"].append({
                "coords": _latlngs(geom), "colour": SITE_COLOURS.get(kind, "#999999"),
                "label": names.text(sid), "kind": kind,
                "title": f"{names.text(sid)}（{sid}，{site_kind_label(kind, lang)}）"
                if lang != "en" else f"{names.text(sid)} ({sid}, {site_kind_label(kind, lang)})",
            })
    if routes is not None:
        for _, r in routes.iterrows():
            if r.geometry is None or r.geometry.is_empty:
                continue
            data["routes"].append({
                "coords": _latlngs(r.geometry),
                "title": t("console.route_title", lang, id=r.get("route_id", "?"),
                           origin=names.text(r.get("origin_site_id")),
                           disposal=names.text(r.get("disposal_site_id"))),
            })
    if len(alerts):
        geoms = np.asarray(alerts.geometry.array, dtype=object)
        lines = shapely.get_type_id(geoms) == 1
        starts = _local_text(alerts["start"], timezone)
        for i, (aid, kind, vehicle, lon, lat) in enumerate(zip(
                alerts["alert_id"], alerts["kind"], alerts["vehicle_id"],
                alerts["lon"], alerts["lat"], strict=True)):
            if _blank(lon) or _blank(lat):
                continue
            item: dict[str, Any] = {
                "at": [round(float(lat), 7), round(float(lon), 7)], "anchor": _anchor(aid),
                "colour": KIND_COLOURS.get(kind, "#d00000"), "hotspot": kind == "dump_hotspot",
                "title": f"{kind_label(kind, lang)} · {vehicle or '—'} · "
                         f"{starts[i]}\n{summaries[i]}",
            }
            if lines[i]:
                item["line"] = _latlngs(geoms[i])
            data["alerts"].append(item)
    for h in heat.itertuples(index=False):
        data["heat"].append({
            "s": round(h.south, 7), "w": round(h.west, 7), "n": round(h.north, 7),
            "e": round(h.east, 7), "total": int(h.total),
            "title": t("report.heat_cell", lang, dumps=int(h.dumps), stops=int(h.stops)),
        })
    return data


def summaries_in(
    alerts: pd.DataFrame,
    lang: str = "zh-CN",
    *,
    timezone: str = DEFAULT_TIMEZONE,
    sites: pd.DataFrame | None = None,
) -> list[str]:
    """Every alert's summary in ``lang`` (the report, the workbook).

    ``summary_zh`` / ``summary_en`` columns win when the frame has them; else English
    is the detectors' own ``summary`` and Chinese is :func:`localized_summary`
    (sites by name).
    """
    lang = normalize_lang(lang)
    a = pd.DataFrame(alerts)
    if not len(a):
        return []
    names = _Names(_wgs84(sites) if isinstance(sites, gpd.GeoDataFrame) else sites, lang)
    col = "summary_en" if lang == "en" else "summary_zh"
    given = a[col] if col in a.columns else pd.Series(None, index=a.index, dtype=object)
    fields = [c for c in ("kind", "vehicle_id", "start", "end", "site_id", "manifest_id",
                          "evidence", "summary") if c in a.columns]
    records = a[fields].astype(object).to_dict("records")
    starts = _local_text(a["start"], timezone) if "start" in a.columns else [""] * len(a)
    out = []
    for i, rec in enumerate(records):
        rec["start_local"] = starts[i]
        text = given.iat[i]
        if isinstance(text, str) and text:
            out.append(text)
        elif lang == "en":
            out.append("" if _blank(rec.get("summary")) else str(rec.get("summary")))
        else:
            out.append(localized_summary(rec, lang, timezone=timezone, site_name=names.text))
    return out


# --------------------------------------------------------------------------- charts


def _bar_chart(title: str, labels: list[str], series: list[tuple[str, str, list[int]]], *,
               horizontal: bool = False, tips: list[str] | None = None, chart_id: str) -> str:
    """A plain SVG bar chart (stacked when several series); labels and values as text."""
    n = len(labels)
    totals = [sum(s[2][i] for s in series) for i in range(n)]
    peak = max(totals) if totals and max(totals) > 0 else 1
    out = [f"<figure class='chart' id='{chart_id}'><h3>{_e(title)}</h3>"]
    if not n:
        return out[0] + f"<p class='muted'>{_e('—')}</p></figure>"
    if horizontal:
        row_h, label_w, bar_w = 18, 130, 200
        height = n * row_h + 8
        width = label_w + bar_w + 40
        out.append(f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-label='{_e(title)}' "
                   f"viewBox='0 0 {width} {height}' width='{width}' height='{height}'>")
        for i, label in enumerate(labels):
            y = 4 + i * row_h
            tip = tips[i] if tips else label
            out.append(f"<text x='{label_w - 6}' y='{y + 12}' text-anchor='end'><title>{_e(tip)}</title>"
                       f"{_e(label if len(label) <= 10 else label[:9] + '…')}</text>")
            x = label_w
            for _, colour, values in series:
                w = bar_w * values[i] / peak
                if w > 0:
                    out.append(f"<rect x='{x:.1f}' y='{y + 2}' width='{w:.1f}' height='{row_h - 5}' "
                               f"fill='{colour}'><title>{_e(tip)}: {values[i]}</title></rect>")
                x += w
            out.append(f"<text x='{x + 4:.1f}' y='{y + 12}'>{totals[i]}</text>")
    else:
        col_w = max(8, min(36, 330 // max(n, 1)))
        plot_h, top, left = 150, 12, 44
        width = left + n * col_w + 10
        height = top + plot_h + 44
        out.append(f"<svg xmlns='http://www.w3.org/2000/svg' role='img' aria-label='{_e(title)}' "
                   f"viewBox='0 0 {width} {height}' width='{width}' height='{height}'>")
        out.append(f"<line x1='{left}' y1='{top + plot_h}' x2='{width - 6}' y2='{top + plot_h}' "
                   "stroke='#999'/>")
        out.append(f"<text x='{left - 4}' y='{top + 8}' text-anchor='end'>{peak}</text>"
                   f"<text x='{left - 4}' y='{top + plot_h}' text-anchor='end'>0</text>")
        step = max(1, math.ceil(n / 16))
        for i, label in enumerate(labels):
            x = left + i * col_w
            y = top + plot_h
            for name, colour, values in series:
                h = plot_h * values[i] / peak
                if h > 0:
                    y -= h
                    out.append(f"<rect x='{x + 1}' y='{y:.1f}' width='{col_w - 2}' height='{h:.1f}' "
                               f"fill='{colour}'><title>{_e(label)} {_e(name)}: {values[i]}</title></rect>")
            if i % step == 0:
                out.append(f"<text x='{x + col_w / 2:.1f}' y='{top + plot_h + 14}' text-anchor='end' "
                           f"transform='rotate(-40 {x + col_w / 2:.1f} {top + plot_h + 14})'>"
                           f"{_e(label)}</text>")
    out.append("</svg>")
    if len(series) > 1:
        out.append("<div class='legend'>" + "".join(
            f"<span><i class='sw' style='background:{c}'></i>{_e(name)}</span>"
            for name, c, values in series if sum(values)) + "</div>")
    out.append("</figure>")
    return "".join(out)


def _charts(b: dict[str, Any], names: _Names, lang: str) -> str:
    day_kind: pd.DataFrame = b["by_day_kind"]
    days = [str(d) for d in day_kind.index]
    if days and len({d[:4] for d in days}) == 1:
        days = [d[5:] for d in days]  # MM-DD within one year
    series = [(kind_label(k, lang), KIND_COLOURS[k], [int(v) for v in day_kind[k]])
              for k in KINDS if k in day_kind.columns]
    parts = ["<div class='charts'>",
             _bar_chart(t("report.chart_day_kind", lang), days, series, chart_id="chart-day-kind")]
    hours = b["by_hour"]
    parts.append(_bar_chart(t("report.chart_hour", lang), [f"{h:02d}" for h in range(24)],
                            [(t("report.alerts", lang), "#4363d8", [int(v) for v in hours])],
                            chart_id="chart-hour"))

    def top(series_: pd.Series, label: Any, chart_id: str, title: str) -> str:
        s = series_.head(15)
        labels = [label(k) for k in s.index]
        return _bar_chart(title, labels, [(t("report.alerts", lang), "#d00000", [int(v) for v in s])],
                          horizontal=True, tips=[f"{label(k)} ({k})" if k and label(k) != k
                                                 else label(k) for k in s.index], chart_id=chart_id)

    parts.append(top(b["by_company"], lambda c: _company_text(c, lang), "chart-company",
                     t("report.chart_company", lang)))
    parts.append(top(b["by_origin"], names.origin, "chart-origin", t("report.chart_origin", lang)))
    parts.append(top(b["by_disposal"], names.text, "chart-disposal", t("report.chart_disposal", lang)))
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- tables (html)


def _table(head: list[tuple[str, bool]], rows: list[list[str]], *, table_id: str = "",
           empty: str = "—") -> str:
    ths = "".join(f"<th class='n'>{_e(h)}</th>" if num else f"<th>{_e(h)}</th>" for h, num in head)
    if not rows:
        body = f"<tr><td colspan='{len(head)}' class='muted'>{_e(empty)}</td></tr>"
    else:
        body = "".join(
            "<tr>" + "".join(f"<td class='n'>{c}</td>" if head[j][1] else f"<td>{c}</td>"
                             for j, c in enumerate(r)) + "</tr>" for r in rows)
    ident = f" id='{table_id}'" if table_id else ""
    return f"<table{ident}><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


def scorecard_headers(lang: str) -> list[str]:
    """Column titles of the scorecard (page and workbook) in ``lang``."""
    return [t("report.col_rank", lang), t("report.col_company", lang), t("report.col_trucks", lang),
            t("report.col_active_trucks", lang), t("report.col_trips", lang),
            *(kind_label(k, lang) for k in KINDS), t("report.col_alerts_total", lang),
            t("report.col_per_100_trips", lang)]


def reconciliation_headers(lang: str) -> list[str]:
    """Column titles of the origin reconciliation (page and workbook) in ``lang``."""
    return [t("report.col_origin_id", lang), t("report.col_origin", lang), t("report.col_trips", lang),
            t("report.col_trucks", lang), t("report.col_capacity_basis", lang),
            t("report.col_hauled_m3", lang), t("report.col_manifests", lang),
            t("report.col_declared_m3", lang), t("report.col_permit_m3", lang),
            t("report.col_vs_declared", lang), t("report.col_vs_permit", lang),
            t("report.col_flag", lang)]


def flag_text(flag: str, lang: str) -> str:
    """The reconciliation flag in words (``""`` → 一致 / consistent)."""
    return t(f"report.flag_{flag or 'ok'}", lang)


def basis_text(basis: str, lang: str, capacity_m3: float) -> str:
    """Where a hauled volume comes from, in words."""
    if not basis:
        return "—"
    return t(f"report.basis_{basis}", lang, capacity=_fmt(capacity_m3, 0))


def _scorecard_html(card: pd.DataFrame, lang: str) -> str:
    head = [(h, j not in (1,)) for j, h in enumerate(scorecard_headers(lang))]
    rows = []
    for r in card.itertuples(index=False):
        rec = r._asdict()
        rows.append([
            _e(rec["rank"] or "—"), _e(_company_text(rec["company"], lang)), _fmt(rec["trucks"]),
            _fmt(rec["active_trucks"]), _fmt(rec["trips"]),
            *(_fmt(rec[f"alerts_{k}"]) for k in KINDS), _fmt(rec["alerts_total"]),
            _fmt(rec["alerts_per_100_trips"], 1),
        ])
    return _table(head, rows, table_id="scorecard")


def _reconciliation_html(rec: pd.DataFrame, names: _Names, lang: str, capacity_m3: float) -> str:
    head = [(h, j in (2, 3, 5, 6, 7, 8, 9, 10)) for j, h in enumerate(reconciliation_headers(lang))]
    rows = []
    for r in rec.itertuples(index=False):
        flag = flag_text(r.flag, lang)
        rows.append([
            _e(r.origin_site_id), names.html(r.origin_site_id, origin=True), _fmt(r.trips),
            _fmt(r.trucks),
            _e(basis_text(r.capacity_basis, lang, capacity_m3)), _fmt(r.hauled_m3, 1),
            _fmt(r.manifests), _fmt(r.declared_m3, 1), _fmt(r.permit_m3, 1),
            _fmt(r.hauled_vs_declared_pct, 1), _fmt(r.hauled_vs_permit_pct, 1),
            f"<span class='{'flag' if r.flag else 'flag-ok'}'>{_e(flag)}</span>",
        ])
    return _table(head, rows, table_id="reconciliation")


_FIGURES = ("points_read", "points_kept", "rows_rejected", "duplicates_dropped", "vehicles",
            "stops", "trips")


def render_report(
    alerts: gpd.GeoDataFrame,
    *,
    summary: Mapping[str, Any] | None = None,
    rejects: pd.DataFrame | None = None,
    trips: pd.DataFrame | None = None,
    stops: pd.DataFrame | None = None,
    sites: gpd.GeoDataFrame | None = None,
    routes: gpd.GeoDataFrame | None = None,
    manifests: pd.DataFrame | None = None,
    vehicles: pd.DataFrame | None = None,
    title: str | None = None,
    timezone: str | None = None,
    lang: str = "zh-CN",
    truck_capacity_m3: float = DEFAULT_TRUCK_CAPACITY_M3,
    max_rows: int = 20000,
) -> str:
    """Return the report as one self-contained HTML document.

    Parameters
    ----------
    alerts : geopandas.GeoDataFrame
        The alerts frame (``routes.alerts.make_alerts``); not changed.
    summary : Mapping, optional
        Audit summary (``routes.outputs.summary_counts``): figures, ``rejects_by_reason``,
        ``trips_by_status``, ``config`` (thresholds) and ``timings_s`` become tables.
    rejects, trips, stops : pandas.DataFrame, optional
        Rejects (counted by reason when the summary lacks them); trips (scorecard,
        reconciliation, an alert's origin / disposal site); stops (long stops outside
        sites on the heat map).
    sites, routes : geopandas.GeoDataFrame, optional
        Registry drawn on the map (any CRS; drawn in WGS-84).
    manifests, vehicles : pandas.DataFrame, optional
        Declared volumes (reconciliation); companies and truck capacities.
    title : str, optional
        Page title (default: the catalog's report title).
    timezone : str, optional
        Zone times are shown in (default ``summary["timezone"]``, else Asia/Shanghai).
    lang : str
        ``zh-CN`` (default) or ``en``.
    truck_capacity_m3 : float
        Volume per trip of a truck without a registry ``capacity_m3`` (m³).
    max_rows : int
        At most this many alerts are listed in the table (all are on the map and in
        alerts.csv); must be >= 1.

    Returns
    -------
    str
        The HTML text (UTF-8); identical input gives identical text.

    Raises
    ------
    ValueError
        When ``max_rows`` < 1 or ``truck_capacity_m3`` <= 0.
    LanguageError
        When ``lang`` has no catalog.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows: value {max_rows!r} is not allowed; allowed: an integer >= 1")
    lang = normalize_lang(lang)
    summary = dict(summary or {})
    tz = str(timezone or summary.get("timezone") or DEFAULT_TIMEZONE)
    title = title or t("report.title", lang)
    sites = _wgs84(sites)
    routes = _wgs84(routes)
    names = _Names(sites, lang)
    breakdowns = alert_breakdowns(alerts, trips=trips, vehicles=vehicles, sites=sites, timezone=tz)
    card = company_scorecard(alerts, trips=trips, vehicles=vehicles)
    rec = origin_reconciliation(trips, manifests=manifests, vehicles=vehicles, sites=sites,
                                truck_capacity_m3=truck_capacity_m3)
    config = summary.get("config") if isinstance(summary.get("config"), Mapping) else {}
    long_stop_s = float(config.get("dump_min_duration_s", 600) or 600)
    heat = heat_cells(alerts, stops, long_stop_min_s=max(long_stop_s, 600.0))
    js, css, license_text = _leaflet()

    by_kind = dict.fromkeys(KINDS, 0)
    if len(alerts):
        by_kind.update({str(k): int(v) for k, v in alerts["kind"].value_counts().items()})
    period = ""
    if len(alerts):
        period = t("report.period", lang, start=format_time(alerts["start"].min(), tz),
                   end=format_time(alerts["end"].max(), tz))
    n_trips = summary.get("trips", len(trips) if trips is not None else None)
    cards = [
        (t("report.fig_alerts", lang), len(alerts)),
        (t("report.fig_trips", lang), n_trips),
        (t("report.fig_vehicles", lang), summary.get("vehicles")),
        (t("report.fig_companies", lang), int((card["company"] != _UNREGISTERED).sum())),
        (kind_label("illegal_dump", lang), by_kind["illegal_dump"]),
        (kind_label("route_deviation", lang), by_kind["route_deviation"]),
        (kind_label("unmanifested_trip", lang), by_kind["unmanifested_trip"]),
        (t("report.fig_flagged_origins", lang), int((rec["flag"] != "").sum())),
    ]
    parts = [
        f"<!DOCTYPE html><html lang='{_e(lang)}'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{css}</style><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<p class='muted'>" + " · ".join(_e(x) for x in (
            t("common.zone_note", lang, zone=tz), period, t("report.coords_note", lang)) if x)
        + "</p>",
        "<div class='cards'>" + "".join(
            f"<div class='card'><b>{_fmt(v)}</b><span>{_e(k)}</span></div>" for k, v in cards
        ) + "</div>",
        f"<h2 id='map-heading'>{_e(t('report.map', lang))}</h2>",
        "<div id='map' role='img' aria-label='" + _e(t("report.map_aria", lang)) + "'></div>",
        "<div class='legend'>" + "".join(
            f"<span><i class='sw sq' style='background:{c}'></i>{_e(site_kind_label(k, lang))}</span>"
            for k, c in SITE_COLOURS.items()) + "</div>",
        "<div class='legend'>" + "".join(
            f"<span><i class='sw' style='background:{KIND_COLOURS[k]}'></i>{_e(kind_label(k, lang))}"
            f"</span>" for k in KINDS if by_kind[k]) +
        f"<span><i class='sw sq' style='background:#d00000;opacity:.5'></i>"
        f"{_e(t('report.layer_heat', lang))}</span></div>",
        f"<h2 id='charts'>{_e(t('report.charts', lang))}</h2>",
        _charts(breakdowns, names, lang),
        f"<h2 id='scorecard-heading'>{_e(t('report.scorecard', lang))}</h2>",
        f"<p class='muted'>{_e(t('report.scorecard_note', lang))}</p>",
        _scorecard_html(card, lang),
        f"<h2 id='reconciliation-heading'>{_e(t('report.reconciliation', lang))}</h2>",
        f"<p class='muted'>{_e(t('report.reconciliation_note', lang, capacity=_fmt(truck_capacity_m3, 0)))}</p>",
        _reconciliation_html(rec, names, lang, truck_capacity_m3),
    ]
    # Detail tables.
    figures = [(t(f"report.fig_{k}", lang), summary[k]) for k in _FIGURES
               if k in summary and not isinstance(summary[k], Mapping)]
    if not any(k == "trips" for k in summary) and trips is not None:
        figures.append((t("report.fig_trips", lang), len(trips)))
    rejects_by = summary.get("rejects_by_reason")
    if not isinstance(rejects_by, Mapping):
        rejects_by = {}
        if rejects is not None and "reason" in rejects.columns and len(rejects):
            rejects_by = rejects["reason"].astype(str).value_counts().sort_index().to_dict()
    by_status = summary.get("trips_by_status")
    if not isinstance(by_status, Mapping) or not by_status:
        by_status = {}
        if trips is not None and "status" in trips.columns and len(trips):
            by_status = trips["status"].astype(str).value_counts().sort_index().to_dict()
    parts.append(f"<h2 id='summary'>{_e(t('report.details', lang))}</h2><div class='grid'>")
    parts.append(f"<div><h3>{_e(t('report.figures', lang))}</h3>" + _table(
        [(t("report.col_figure", lang), False), (t("report.col_value", lang), True)],
        [[_e(k), _fmt(v)] for k, v in figures]) + "</div>")
    parts.append(f"<div><h3>{_e(t('report.alerts_by_kind', lang))}</h3>" + _table(
        [(t("report.col_kind", lang), False), (t("report.col_alerts", lang), True)],
        [[_e(kind_label(k, lang)), _fmt(v)] for k, v in by_kind.items()]) + "</div>")
    parts.append(f"<div><h3>{_e(t('report.rejects_by_reason', lang))}</h3>" + _table(
        [(t("report.col_reason", lang), False), (t("report.col_rows", lang), True)],
        [[_e(k), _fmt(v)] for k, v in rejects_by.items()], table_id="rejects") + "</div>")
    if by_status:
        parts.append(f"<div><h3>{_e(t('report.trips_by_status', lang))}</h3>" + _table(
            [(t("report.col_status", lang), False), (t("report.col_trips", lang), True)],
            [[_e(t(f"trip_status.{k}", lang) if has_key(f"trip_status.{k}", lang) else k), _fmt(v)]
             for k, v in by_status.items()]) + "</div>")
    if config:
        parts.append(f"<div><h3>{_e(t('report.thresholds', lang))}</h3>" + _table(
            [(t("report.col_setting", lang), False), (t("report.col_value", lang), True)],
            [[_e(k), _e(_fmt(v))] for k, v in config.items()], table_id="thresholds") + "</div>")
    timings = summary.get("timings_s") or summary.get("timings")
    if isinstance(timings, Mapping) and timings:
        parts.append(f"<div><h3>{_e(t('report.timings', lang))}</h3>" + _table(
            [(t("report.col_stage", lang), False), (t("report.col_seconds", lang), True)],
            [[_e(k), _fmt(v, 3)] for k, v in timings.items()]) + "</div>")
    parts.append("</div>")

    # The alert list.
    shown = alerts.iloc[:max_rows]
    summaries = summaries_in(alerts, lang, timezone=tz, sites=sites)
    parts.append(
        f"<h2 id='alert-table'>{_e(t('report.alert_list', lang))}</h2><p class='noprint'>"
        f"<input id='q' type='search' placeholder='{_e(t('report.filter', lang))}' "
        f"aria-label='{_e(t('report.filter', lang))}'> <span class='muted'>"
        + _e(t("report.shown", lang, n="\x00")).replace("\x00", f"<span id='shown'>{len(shown)}</span>")
        + "</span></p>"
    )
    head = [(t(f"report.col_{c}", lang), False) for c in
            ("alert_id", "kind", "severity", "vehicle", "start", "end", "site", "manifest", "summary")]
    rows = []
    shown_starts = _local_text(shown["start"], tz)
    shown_ends = _local_text(shown["end"], tz)
    for i, rec_ in enumerate(shown[["alert_id", "kind", "severity", "vehicle_id", "start", "end",
                                    "site_id", "manifest_id"]].itertuples(index=False)):
        anchor = _anchor(rec_.alert_id)
        sev = "" if _blank(rec_.severity) else str(rec_.severity)
        rows.append(
            f"<tr id='alert-{anchor}'><td>{_e(rec_.alert_id)}</td><td>{_e(kind_label(rec_.kind, lang))}</td>"
            f"<td class='sev-{_e(sev)}'>{_e(t('severity.' + sev, lang) if sev in ('high', 'medium', 'low') else sev)}</td>"
            f"<td>{_e(rec_.vehicle_id or '—')}</td><td>{_e(shown_starts[i])}</td>"
            f"<td>{_e(shown_ends[i])}</td><td>{names.html(rec_.site_id)}</td>"
            f"<td>{_e(rec_.manifest_id or '—')}</td><td>{_e(summaries[i])}</td></tr>"
        )
    if not rows:
        rows.append(f"<tr><td colspan='9' class='muted'>{_e(t('report.no_alerts', lang))}</td></tr>")
    parts.append("<table id='alerts'><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h, _ in head)
                 + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")
    if len(alerts) > max_rows:
        parts.append(f"<p class='muted'>{_e(t('report.more_in_csv', lang, n=f'{len(alerts) - max_rows:,}'))}</p>")
    data = _map_data(alerts, sites, routes, heat, names, lang, tz, summaries)
    # No "<" at all inside the script element: nothing in the data can end or re-open it.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    parts.append(f"<details class='noprint'><summary>{_e(t('report.license', lang))}</summary>"
                 f"<p class='license'>{_e(license_text)}</p></details>")
    parts.append(f"<script type='application/json' id='map-data'>{payload}</script>")
    parts.append(f"<script>{js}</script><script>{_JS}</script></body></html>\n")
    return "".join(parts)


def write_report(alerts: gpd.GeoDataFrame, path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`render_report` output to ``path`` (UTF-8) and return the path.

    Parameters
    ----------
    alerts : geopandas.GeoDataFrame
        The alerts frame.
    path : str or Path
        Target file; its folder is created when missing.
    **kwargs
        Passed to :func:`render_report`.

    Returns
    -------
    Path
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(alerts, **kwargs), encoding="utf-8")
    return target
