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
``report.html``    a self-contained report for analysts (offline; inline SVG map)
================  ==========================================================

Times are ISO 8601 UTC with ``Z``; geometry columns are WKT. Each file is
written to a temporary name first and then renamed, so a crash never leaves a
half-written file behind. The same result always gives byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
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

__all__ = [
    "OUTPUT_FILES",
    "REJECT_COLUMNS",
    "OutputError",
    "frame_to_csv",
    "result_parts",
    "summary_counts",
    "write_outputs",
]

#: Files :func:`write_outputs` writes, in order.
OUTPUT_FILES: tuple[str, ...] = (
    "alerts.geojson",
    "alerts.csv",
    "rejects.csv",
    "trips.csv",
    "stops.csv",
    "summary.json",
    "report.html",
)

#: Columns of ``rejects.csv``.
REJECT_COLUMNS: tuple[str, ...] = ("file", "row", "field", "value", "reason", "action")

_DEFAULT_ACTION = "row_dropped"


class OutputError(UserError, ValueError):
    """An audit result does not have the shape the writers need."""


# --------------------------------------------------------------------------- the result


def result_parts(result: Any) -> dict[str, Any]:
    """Return ``alerts, stops, trips, rejects, summary`` (+ ``sites, routes``) of a result.

    Parameters
    ----------
    result : AuditResult or Mapping
        Object with those attributes, or a mapping with those keys. ``stops``,
        ``trips`` and ``rejects`` may be missing (empty frames are used);
        ``sites`` / ``routes`` (WGS-84 GeoDataFrames, used by the report map)
        are taken from the result, or from its ``dataset``, when present.

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


def write_outputs(
    result: Any,
    out_dir: str | Path,
    *,
    sites: gpd.GeoDataFrame | None = None,
    routes: gpd.GeoDataFrame | None = None,
    title: str | None = None,
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
        Report title (default: "haulwatch audit" + the dataset folder name if known).

    Returns
    -------
    dict
        File name → path, for every file of :data:`OUTPUT_FILES`.

    Raises
    ------
    OutputError
        When the result does not have the documented shape.
    """
    from haulwatch.routes.report import render_report

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

    _atomic_write(paths["rejects.csv"], csv_writer(_rejects_table(parts["rejects"])))
    _atomic_write(paths["trips.csv"], csv_writer(frame_to_csv(parts["trips"])))
    _atomic_write(paths["stops.csv"], csv_writer(frame_to_csv(parts["stops"])))

    summary = summary_counts(parts)
    text = json.dumps(summary, ensure_ascii=False, indent=2, sort_keys=False, allow_nan=False)
    _atomic_write(paths["summary.json"], lambda p: p.write_text(text + "\n", encoding="utf-8"))

    if title is None:
        folder = summary.get("dataset") or summary.get("folder")
        title = f"haulwatch audit — {Path(str(folder)).name}" if folder else "haulwatch audit"
    html = render_report(
        parts["alerts"],
        summary=summary,
        rejects=parts["rejects"],
        trips=parts["trips"],
        sites=parts["sites"],
        routes=parts["routes"],
        title=title,
    )
    _atomic_write(paths["report.html"], lambda p: p.write_text(html, encoding="utf-8"))
    return paths
