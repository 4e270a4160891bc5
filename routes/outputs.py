"""Write everything an audit produces into one output folder.

:func:`write_outputs` takes an audit result (``routes.audit.AuditResult`` or
anything with the same fields: ``alerts``, ``stops``, ``trips``, ``rejects``,
``summary``) and writes:

================  ==========================================================
``alerts.geojson`` the alerts (RFC 7946), see :func:`routes.alerts.write_alerts`
``alerts.csv``     the same alerts as a table (geometry as WKT)
``rejects.csv``    every refused row or value: ``file, row, field, value, reason, action``
``trips.csv``      the haul trips found
``stops.csv``      the stops found
``summary.json``   counts: points, rejects by reason, duplicates, trips, alerts by kind
``scorecard.csv``  the company scorecard (``routes.report.company_scorecard``)
``reconciliation.csv`` the origin reconciliation (``routes.report.origin_reconciliation``)
``report.html``    the analyst's report (offline, Chinese first; Leaflet map, charts)
``audit.xlsx``     with ``xlsx=True``: sheets alerts, scorecard, reconciliation and
                   rejects with headers in the report's language (Chinese by default)
================  ==========================================================

Times are ISO 8601 UTC with ``Z`` in the CSV files (shown in the dataset's zone
in the report and the workbook); geometry columns are WKT. Each file is
written to a temporary name first and then renamed, so a crash never leaves a
half-written file behind. The same result always gives byte-identical files
(the workbook included: its zip and document times are fixed).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import threading
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from haulwatch.errors import UserError
from haulwatch.routes.alerts import KINDS, SEVERITIES, empty_alerts, write_alerts
from haulwatch.timezone import DEFAULT_TIMEZONE

__all__ = [
    "OUTPUT_FILES",
    "REJECT_COLUMNS",
    "XLSX_FILE",
    "OutputError",
    "frame_to_csv",
    "result_parts",
    "summary_counts",
    "write_outputs",
    "write_workbook",
]

#: Files :func:`write_outputs` writes, in order.
OUTPUT_FILES: tuple[str, ...] = (
    "alerts.geojson",
    "alerts.csv",
    "rejects.csv",
    "trips.csv",
    "stops.csv",
    "summary.json",
    "scorecard.csv",
    "reconciliation.csv",
    "report.html",
)

#: The workbook :func:`write_outputs` adds with ``xlsx=True``.
XLSX_FILE: str = "audit.xlsx"

#: Columns of ``rejects.csv``.
REJECT_COLUMNS: tuple[str, ...] = ("file", "row", "field", "value", "reason", "action")

_DEFAULT_ACTION = "row_dropped"


class OutputError(UserError, ValueError):
    """An audit result does not have the shape the writers need."""


# --------------------------------------------------------------------------- the result


def result_parts(result: Any) -> dict[str, Any]:
    """Return ``alerts, stops, trips, rejects, summary`` (+ registry parts) of a result.

    Parameters
    ----------
    result : AuditResult or Mapping
        Object with those attributes, or a mapping with those keys. ``stops``,
        ``trips`` and ``rejects`` may be missing (empty frames are used);
        ``sites`` / ``routes`` (WGS-84 GeoDataFrames, used by the report map)
        and ``manifests`` / ``vehicles`` (the scorecard and reconciliation) are
        taken from the result, or from its ``dataset``, when present.

    Returns
    -------
    dict
        The parts; ``summary`` is a plain dict.

    Raises
    ------
    OutputError
        When ``alerts`` is missing or a part has the wrong type.
    """

    def get(name: str) -> Any:
        if isinstance(result, Mapping):
            return result.get(name)
        return getattr(result, name, None)

    alerts = get("alerts")
    if alerts is None:
        raise OutputError(
            f"audit result {type(result).__name__} has no 'alerts'; expected an AuditResult "
            "with alerts, stops, trips, rejects, summary"
        )
    if not isinstance(alerts, pd.DataFrame):
        raise OutputError(
            f"field 'alerts': value of type {type(alerts).__name__} is not allowed; "
            "allowed: the GeoDataFrame from routes.alerts.make_alerts"
        )
    parts: dict[str, Any] = {"alerts": alerts if len(alerts) else empty_alerts()}
    for name in ("stops", "trips", "rejects"):
        value = get(name)
        if value is None:
            value = pd.DataFrame()
        if not isinstance(value, pd.DataFrame):
            raise OutputError(
                f"field {name!r}: value of type {type(value).__name__} is not allowed; "
                "allowed: a pandas DataFrame"
            )
        parts[name] = value
    summary = get("summary")
    if summary is None:
        summary = {}
    if not isinstance(summary, Mapping):
        raise OutputError(
            f"field 'summary': value of type {type(summary).__name__} is not allowed; "
            "allowed: a dict"
        )
    parts["summary"] = dict(summary)
    dataset = get("dataset")
    for name in ("sites", "routes"):
        value = get(name)
        if value is None and dataset is not None:
            value = getattr(dataset, name, None)
        parts[name] = value if isinstance(value, gpd.GeoDataFrame) else None
    for name in ("manifests", "vehicles"):
        value = get(name)
        if value is None and dataset is not None:
            value = getattr(dataset, name, None)
        parts[name] = value if isinstance(value, pd.DataFrame) else None
    return parts


def _count(series: pd.Series) -> dict[str, int]:
    counts = series.astype("str").value_counts(sort=False)
    return {str(k): int(counts[k]) for k in sorted(counts.index)}


def summary_counts(parts: Mapping[str, Any]) -> dict[str, Any]:
    """Return the summary of a result, completed with counts taken from its frames.

    Parameters
    ----------
    parts : Mapping
        The output of :func:`result_parts`.

    Returns
    -------
    dict
        The result's own ``summary`` (JSON-able), plus ``alerts_total``,
        ``alerts_by_kind`` (every kind, zero included), ``alerts_by_severity``,
        ``rows_rejected``, ``rejects_by_reason``, ``trips``, ``stops``, and the
        rejects split by action: ``points_dropped`` (+ ``_by_reason``; tracks rows
        refused, teleports included), ``values_cleared`` (+ ``_by_reason``; rows
        kept), ``rows_dropped_by_file`` (other files). Keys the summary already
        has are kept, except that alert counts always follow the alerts frame.
    """
    out: dict[str, Any] = _jsonable(dict(parts["summary"]))
    alerts: pd.DataFrame = parts["alerts"]
    by_kind = dict.fromkeys(KINDS, 0)
    if len(alerts):
        by_kind.update(_count(alerts["kind"]))
    by_sev = dict.fromkeys(SEVERITIES, 0)
    if len(alerts):
        by_sev.update(_count(alerts["severity"]))
    out["alerts_total"] = len(alerts)
    out["alerts_by_kind"] = by_kind
    out["alerts_by_severity"] = by_sev
    rejects: pd.DataFrame = parts["rejects"]
    out.setdefault("rows_rejected", len(rejects))
    if "reason" in rejects.columns:
        out.setdefault("rejects_by_reason", _count(rejects["reason"]))
    else:
        out.setdefault("rejects_by_reason", {})
    out.setdefault("trips", len(parts["trips"]))
    out.setdefault("stops", len(parts["stops"]))
    out.update({k: v for k, v in _reject_split(rejects).items() if k not in out})
    return out


def _reject_split(rejects: pd.DataFrame) -> dict[str, Any]:
    """Rows dropped apart from values cleared, so that points read = points kept +
    points dropped + duplicates dropped (values cleared leave their row kept)."""
    if not {"file", "action", "reason"} <= set(rejects.columns):
        return {}
    action = rejects["action"].astype("str")
    is_tracks = rejects["file"].astype("str").str.startswith("tracks")
    dropped = rejects[is_tracks & (action == _DEFAULT_ACTION)]
    cleared = rejects[action == "value_cleared"]
    other = rejects[~is_tracks & (action == _DEFAULT_ACTION)]
    return {
        "points_dropped": len(dropped),
        "points_dropped_by_reason": _count(dropped["reason"]),
        "values_cleared": len(cleared),
        "values_cleared_by_reason": _count(cleared["reason"]),
        "rows_dropped_by_file": _count(other["file"]),
    }


def _jsonable(value: Any) -> Any:
    """Turn a summary (nested dicts of numpy / pandas scalars) into plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, pd.Series):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, pd.Timestamp):
        if value is pd.NaT:
            return None
        return _iso_z_one(value)
    if isinstance(value, pd.Timedelta):
        return value.total_seconds()
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | bool) or value is None:
        return value
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    return str(value)


def _iso_z_one(ts: pd.Timestamp) -> str:
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return _iso_z(pd.Series([ts]))[0]


# --------------------------------------------------------------------------- tables


def _iso_z(values: pd.Series) -> np.ndarray:
    """Vectorized ISO 8601 UTC text with ``Z`` ('' for missing)."""
    utc = values.dt.tz_convert("UTC") if values.dt.tz is not None else values
    ns = utc.astype("datetime64[ns, UTC]" if values.dt.tz is not None else "datetime64[ns]")
    whole = ns.dropna().dt.nanosecond.eq(0).all() and ns.dropna().dt.microsecond.eq(0).all()
    fmt = "%Y-%m-%dT%H:%M:%SZ" if whole else "%Y-%m-%dT%H:%M:%S.%fZ"
    text = ns.dt.strftime(fmt)
    return text.where(ns.notna(), "").to_numpy(dtype=object)


def _cell_json(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return json.dumps(_jsonable(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def frame_to_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` ready for CSV: times as ISO Z text, geometry as WKT.

    Parameters
    ----------
    frame : pandas.DataFrame
        Any frame (stops, trips...). Not changed.

    Returns
    -------
    pandas.DataFrame
        Datetime columns → ISO 8601 UTC text with ``Z`` (naive ones are taken as
        UTC, as the internal frames are); timedelta → seconds (float); shapely
        geometry → WKT; dict / list cells → JSON text; index dropped.
    """
    out = pd.DataFrame(frame).reset_index(drop=True).copy()
    for name in out.columns:
        col = out[name]
        if isinstance(col.dtype, gpd.array.GeometryDtype):
            out[name] = shapely.to_wkt(np.asarray(col.array, dtype=object), rounding_precision=-1)
        elif isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(
            col.dtype
        ):
            out[name] = _iso_z(col)
        elif pd.api.types.is_timedelta64_dtype(col.dtype):
            out[name] = col.dt.total_seconds()
        elif col.dtype == object and len(col):
            sample = col.dropna()
            if len(sample) and isinstance(sample.iloc[0], BaseGeometry):
                geoms = np.array([g if isinstance(g, BaseGeometry) else None for g in col])
                out[name] = shapely.to_wkt(geoms, rounding_precision=-1)
            elif len(sample) and isinstance(sample.iloc[0], dict | list | tuple):
                out[name] = [_cell_json(v) for v in col]
    return out


def _rejects_table(rejects: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame(rejects).reset_index(drop=True).copy()
    for name in REJECT_COLUMNS:
        if name not in table.columns:
            table[name] = _DEFAULT_ACTION if name == "action" else ""
    if len(table):
        table["action"] = table["action"].where(
            table["action"].notna() & (table["action"].astype("str") != ""), _DEFAULT_ACTION
        )
    extra = [c for c in table.columns if c not in REJECT_COLUMNS]
    return frame_to_csv(table[list(REJECT_COLUMNS) + extra])


# --------------------------------------------------------------------------- writing


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary sibling, then rename (created with the usual umask mode)."""
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _fixed_zip(data: bytes, stamp: str) -> bytes:
    """Re-pack an .xlsx with fixed member times and document dates (byte-identical output)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = body.decode("utf-8")
                text = re.sub(r"(<dcterms:(created|modified)[^>]*>)[^<]*(</dcterms:\2>)",
                              lambda m: m.group(1) + stamp + m.group(3), text)
                body = text.encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, body)
    return out.getvalue()


def _local(values: pd.Series, timezone: str) -> list[Any]:
    """Times as naive local datetimes (Excel has no zones; the sheet names the zone)."""
    ts = pd.to_datetime(values, utc=True, errors="coerce").dt.tz_convert(timezone)
    ts = ts.dt.floor("s").dt.tz_localize(None)
    return [None if pd.isna(v) else v.to_pydatetime() for v in ts]


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _reject_cell(column: str, value: Any, lang: str) -> Any:
    """A rejects.csv value for the workbook: the action in words, NaN as an empty cell."""
    from haulwatch.i18n import has_key, t

    if isinstance(value, float) and math.isnan(value):
        return None
    if column == "action" and isinstance(value, str) and has_key(f"action.{value}", lang):
        return t(f"action.{value}", lang)
    return value


def write_workbook(
    path: str | Path,
    *,
    alerts: pd.DataFrame,
    scorecard: pd.DataFrame,
    reconciliation: pd.DataFrame,
    rejects: pd.DataFrame,
    sites: pd.DataFrame | None = None,
    lang: str = "zh-CN",
    timezone: str = DEFAULT_TIMEZONE,
    truck_capacity_m3: float = 15.0,
) -> Path:
    """Write ``audit.xlsx``: sheets alerts, scorecard, reconciliation, rejects (openpyxl).

    Headers, kinds, severities, companies and flags are in ``lang`` (Chinese by
    default), times are local to ``timezone`` (named in the alert sheet's header),
    sites by name beside their id. The figures are those of the report: the same
    frames (``routes.report.company_scorecard`` / ``origin_reconciliation``).

    Parameters
    ----------
    path : str or Path
        The workbook to write (replaced atomically).
    alerts, scorecard, reconciliation, rejects : pandas.DataFrame
        The tables.
    sites : pandas.DataFrame, optional
        Site names for the alert sheet.
    lang : str
        ``zh-CN`` or ``en``.
    timezone : str
        Zone the times are shown in.
    truck_capacity_m3 : float
        The capacity setting (named in the reconciliation's volume basis).

    Returns
    -------
    Path
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from haulwatch.i18n import kind_label, normalize_lang, t
    from haulwatch.routes.report import (
        KINDS as _KINDS,
    )
    from haulwatch.routes.report import (
        basis_text,
        flag_text,
        reconciliation_headers,
        scorecard_headers,
        summaries_in,
    )

    lang = normalize_lang(lang)
    names: dict[str, str] = {}
    if sites is not None and len(sites) and "name" in sites.columns:
        names = dict(zip(sites["site_id"].astype(str), sites["name"].fillna("").astype(str),
                         strict=True))
    wb = Workbook()
    bold = Font(bold=True)

    def sheet(title: str, headers: list[str], rows: list[list[Any]], widths: list[int]) -> None:
        ws = wb.create_sheet(title)
        ws.append(headers)
        for c in ws[1]:
            c.font = bold
        for row in rows:
            ws.append([_cell(v) for v in row])
        ws.freeze_panes = "A2"
        for i, w in enumerate(widths):
            ws.column_dimensions[ws.cell(1, i + 1).column_letter].width = w

    wb.remove(wb.active)
    a = pd.DataFrame(alerts)
    zone = f"（{timezone}）" if lang != "en" else f" ({timezone})"
    heads = [t("report.col_alert_id", lang), t("report.col_kind", lang), t("report.col_severity", lang),
             t("report.col_vehicle", lang), t("report.col_start", lang) + zone,
             t("report.col_end", lang) + zone, t("report.col_site", lang), t("report.col_site_id", lang),
             t("report.col_manifest", lang), t("report.col_trip", lang), t("report.col_lon", lang),
             t("report.col_lat", lang), t("report.col_summary", lang)]
    rows = []
    if len(a):
        starts, ends = _local(a["start"], timezone), _local(a["end"], timezone)
        summaries = summaries_in(a, lang, timezone=timezone, sites=sites)
        for i, rec in enumerate(a.itertuples(index=False)):
            site = "" if rec.site_id is None or pd.isna(rec.site_id) else str(rec.site_id)
            sev = str(rec.severity) if isinstance(rec.severity, str) else ""
            rows.append([
                rec.alert_id, kind_label(rec.kind, lang),
                t(f"severity.{sev}", lang) if sev in ("high", "medium", "low") else sev,
                rec.vehicle_id or None, starts[i], ends[i], names.get(site, site) or None,
                site or None, rec.manifest_id or None, getattr(rec, "trip_id", None) or None,
                _cell(rec.lon), _cell(rec.lat),
                summaries[i],
            ])
    sheet(t("report.sheet_alerts", lang), heads, rows, [20, 16, 6, 12, 17, 17, 18, 10, 16, 22, 11, 10, 60])
    for row in wb[t("report.sheet_alerts", lang)].iter_rows(min_row=2, min_col=5, max_col=6):
        for c in row:
            c.number_format = "yyyy-mm-dd hh:mm"
    card = pd.DataFrame(scorecard)
    sheet(t("report.sheet_scorecard", lang), scorecard_headers(lang), [
        [r["rank"] or None, r["company"] or t("report.unregistered_company", lang), r["trucks"],
         r["active_trucks"], r["trips"], *(r[f"alerts_{k}"] for k in _KINDS), r["alerts_total"],
         r["alerts_per_100_trips"]]
        for r in card.to_dict("records")], [6, 24, 8, 8, 8, *([10] * len(_KINDS)), 9, 11])
    rec_ = pd.DataFrame(reconciliation)
    sheet(t("report.sheet_reconciliation", lang), reconciliation_headers(lang), [
        [r["origin_site_id"] or None,
         r["origin_name"] or (t("report.unknown_origin", lang) if not r["origin_site_id"] else None),
         r["trips"], r["trucks"], basis_text(r["capacity_basis"], lang, truck_capacity_m3),
         r["hauled_m3"], r["manifests"], r["declared_m3"], r["permit_m3"],
         r["hauled_vs_declared_pct"], r["hauled_vs_permit_pct"], flag_text(r["flag"], lang)]
        for r in rec_.to_dict("records")], [12, 20, 8, 8, 18, 12, 8, 12, 12, 12, 12, 16])
    rej = pd.DataFrame(rejects)
    cols = list(REJECT_COLUMNS)
    sheet(t("report.sheet_rejects", lang),
          [t(f"report.col_{c}", lang) for c in ("file", "row", "field", "raw_value", "reason", "action")],
          [[_reject_cell(c, r.get(c), lang) for c in cols] for r in rej.to_dict("records")]
          if len(rej) else [],
          [16, 8, 14, 20, 50, 14])
    buffer = io.BytesIO()
    wb.save(buffer)
    data = _fixed_zip(buffer.getvalue(), "2000-01-01T00:00:00Z")
    target = Path(path)
    _atomic_write(target, lambda p: p.write_bytes(data))
    return target


def write_outputs(
    result: Any,
    out_dir: str | Path,
    *,
    sites: gpd.GeoDataFrame | None = None,
    routes: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    lang: str = "zh-CN",
    xlsx: bool = False,
    truck_capacity_m3: float | None = None,
) -> dict[str, Path]:
    """Write the audit's output files into ``out_dir``.

    Parameters
    ----------
    result : AuditResult or Mapping
        See :func:`result_parts`.
    out_dir : str or Path
        Output folder, created when missing; existing output files are replaced.
    sites, routes : geopandas.GeoDataFrame, optional
        WGS-84 registry drawn on the report map; default: the result's own.
    title : str, optional
        Report title (default: the catalog's title + the dataset folder name if known).
    lang : str
        Language of ``report.html`` and ``audit.xlsx``: ``zh-CN`` (default) or ``en``.
    xlsx : bool
        Also write ``audit.xlsx`` (default False).
    truck_capacity_m3 : float, optional
        Volume per trip of a truck without a registry ``capacity_m3``
        (default :data:`routes.report.DEFAULT_TRUCK_CAPACITY_M3`).

    Returns
    -------
    dict
        File name → path, for every file of :data:`OUTPUT_FILES` (+ :data:`XLSX_FILE`).

    Raises
    ------
    OutputError
        When the result does not have the documented shape.
    LanguageError
        When ``lang`` has no catalog.
    """
    from haulwatch.i18n import normalize_lang, t
    from haulwatch.routes.report import (
        DEFAULT_TRUCK_CAPACITY_M3,
        company_scorecard,
        origin_reconciliation,
        render_report,
    )

    lang = normalize_lang(lang)
    capacity = DEFAULT_TRUCK_CAPACITY_M3 if truck_capacity_m3 is None else truck_capacity_m3
    if not (isinstance(capacity, int | float) and not isinstance(capacity, bool) and capacity > 0):
        raise OutputError(
            f"truck_capacity_m3: value {capacity!r} is not allowed; allowed: a number > 0"
        )
    parts = result_parts(result)
    if sites is not None:
        parts["sites"] = sites
    if routes is not None:
        parts["routes"] = routes
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in OUTPUT_FILES}

    with tempfile.TemporaryDirectory(dir=out, prefix=".alerts.") as tmp:
        write_alerts(parts["alerts"], tmp)
        for name in ("alerts.geojson", "alerts.csv"):
            os.replace(Path(tmp) / name, paths[name])

    def csv_writer(table: pd.DataFrame) -> Callable[[Path], None]:
        return lambda p: table.to_csv(p, index=False, encoding="utf-8")

    rejects_table = _rejects_table(parts["rejects"])
    _atomic_write(paths["rejects.csv"], csv_writer(rejects_table))
    _atomic_write(paths["trips.csv"], csv_writer(frame_to_csv(parts["trips"])))
    _atomic_write(paths["stops.csv"], csv_writer(frame_to_csv(parts["stops"])))

    summary = summary_counts(parts)
    text = json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=False, allow_nan=False)
    _atomic_write(paths["summary.json"], lambda p: p.write_text(text + "\n", encoding="utf-8"))

    scorecard = company_scorecard(parts["alerts"], trips=parts["trips"], vehicles=parts["vehicles"])
    reconciliation = origin_reconciliation(
        parts["trips"], manifests=parts["manifests"], vehicles=parts["vehicles"],
        sites=parts["sites"], truck_capacity_m3=capacity,
    )
    _atomic_write(paths["scorecard.csv"], csv_writer(scorecard))
    _atomic_write(paths["reconciliation.csv"], csv_writer(reconciliation))

    if title is None:
        folder = summary.get("dataset") or summary.get("folder")
        title = t("report.title", lang) + (f" — {Path(str(folder)).name}" if folder else "")
    html = render_report(
        parts["alerts"],
        summary=summary,
        rejects=parts["rejects"],
        trips=parts["trips"],
        stops=parts["stops"],
        sites=parts["sites"],
        routes=parts["routes"],
        manifests=parts["manifests"],
        vehicles=parts["vehicles"],
        title=title,
        lang=lang,
        truck_capacity_m3=capacity,
    )
    _atomic_write(paths["report.html"], lambda p: p.write_text(html, encoding="utf-8"))
    if xlsx:
        paths[XLSX_FILE] = write_workbook(
            out / XLSX_FILE, alerts=parts["alerts"], scorecard=scorecard,
            reconciliation=reconciliation, rejects=rejects_table, sites=parts["sites"], lang=lang,
            timezone=str(summary.get("timezone") or DEFAULT_TIMEZONE), truck_capacity_m3=capacity,
        )
    return paths
