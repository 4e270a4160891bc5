"""A self-contained HTML report of an audit, for analysts who work offline.

One file, no network: no CDN, no web fonts, no map tiles. The map is inline
SVG drawn from the sites, routes and alerts themselves (an equirectangular
projection around the data's centre, faithful at city scale). Every alert marker
has a tooltip and links to its row in the alert table, and every row links
back to its marker.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from haulwatch.routes.alerts import KINDS

__all__ = ["KIND_COLOURS", "SITE_COLOURS", "render_report", "write_report"]

#: Fill colour of each site kind on the map.
SITE_COLOURS: dict[str, str] = {
    "origin": "#4c9be8",
    "disposal": "#3bb273",
    "depot": "#a0a0a0",
    "nest": "#9b59b6",
    "no_fly": "#e67e22",
}

#: Marker colour of each alert kind.
KIND_COLOURS: dict[str, str] = {
    "illegal_dump": "#d62728",
    "route_deviation": "#ff7f0e",
    "unpermitted_origin": "#8c1c13",
    "wrong_disposal": "#bcbd22",
    "unmanifested_trip": "#17becf",
    "manifest_not_executed": "#7f7f7f",
    "gps_gap": "#1f3b73",
    "unregistered_vehicle": "#e377c2",
    "dump_hotspot": "#000000",
}

_MAP_WIDTH = 960.0
_MAP_MAX_HEIGHT = 720.0
_PAD = 16.0

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
margin:0 auto;max-width:1200px;padding:0 16px 48px;color:#222;background:#fff}
h1{font-size:22px;margin:18px 0 4px}h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:4px 0 12px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:24px}.muted{color:#777}
.sev-high{color:#b00;font-weight:600}.sev-medium{color:#a60}.sev-low{color:#555}
svg.map{border:1px solid #ccc;background:#fafaf7;max-width:100%;height:auto}
svg .site{stroke:#444;stroke-width:.8;fill-opacity:.35}svg .route{fill:none;stroke:#555;stroke-width:2;stroke-dasharray:6 4}
svg .dev{fill:none;stroke-width:3.5;stroke-linecap:round}svg .mk{stroke:#fff;stroke-width:1.2}
svg .hs{stroke-width:2.5}svg .lbl{font-size:10px;fill:#333}svg .scale{stroke:#333;stroke-width:2;fill:none}
svg a:hover .mk,svg .mk:target,svg .dev:target,svg .hs:target{stroke:#000;stroke-width:3}
.legend span{display:inline-block;margin-right:14px}.sw{display:inline-block;width:12px;height:12px;border-radius:6px;vertical-align:-1px;margin-right:4px}
tr:target{background:#fff3b0}#alerts td{font-size:13px}input#q{padding:4px 8px;width:320px}
"""

_JS = """
document.getElementById('q').addEventListener('input',function(){
var q=this.value.toLowerCase();var rows=document.querySelectorAll('#alerts tbody tr');var n=0;
for(var i=0;i<rows.length;i++){var ok=rows[i].textContent.toLowerCase().indexOf(q)>=0;
rows[i].style.display=ok?'':'none';if(ok)n++;}
document.getElementById('shown').textContent=n;});
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt_num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return ""
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3g}"
    return str(value)


def _table(rows: list[tuple[str, Any]], head: tuple[str, str]) -> str:
    body = "".join(
        f"<tr><td>{_e(k)}</td><td class='n'>{_e(_fmt_num(v))}</td></tr>" for k, v in rows
    )
    if not rows:
        body = "<tr><td colspan='2' class='muted'>none</td></tr>"
    return f"<table><thead><tr><th>{_e(head[0])}</th><th>{_e(head[1])}</th></tr></thead><tbody>{body}</tbody></table>"


def _anchor(alert_id: str) -> str:
    """An id token safe in HTML and SVG (alert ids are ``[A-Z]+-[0-9a-f]+``, but be safe)."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(alert_id))


# --------------------------------------------------------------------------- the map


class _Projection:
    """Equirectangular lon/lat → SVG pixels fitted to a bounding box."""

    def __init__(self, bounds: tuple[float, float, float, float]) -> None:
        minx, miny, maxx, maxy = bounds
        lat0 = math.radians((miny + maxy) / 2.0)
        self.kx = max(math.cos(lat0), 1e-6)
        span_x = max((maxx - minx) * self.kx, 1e-9)
        span_y = max(maxy - miny, 1e-9)
        inner_w = _MAP_WIDTH - 2 * _PAD
        scale = inner_w / span_x
        if span_y * scale > _MAP_MAX_HEIGHT - 2 * _PAD:
            scale = (_MAP_MAX_HEIGHT - 2 * _PAD) / span_y
        self.scale = scale
        self.minx, self.maxy = minx, maxy
        self.width = _MAP_WIDTH
        self.height = max(span_y * scale + 2 * _PAD, 120.0)
        self.offx = (_MAP_WIDTH - span_x * scale) / 2.0

    def xy(self, coords: np.ndarray) -> np.ndarray:
        x = (coords[:, 0] - self.minx) * self.kx * self.scale + self.offx
        y = (self.maxy - coords[:, 1]) * self.scale + _PAD
        return np.column_stack([x, y])


def _points_text(xy: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)


def _path_d(geom: Any, proj: _Projection) -> str:
    """SVG path data of a (multi)polygon or (multi)line, rings closed."""
    parts: list[str] = []
    for part in getattr(geom, "geoms", [geom]):
        if part.geom_type == "Polygon":
            rings = [part.exterior, *part.interiors]
            for ring in rings:
                xy = proj.xy(np.asarray(ring.coords)[:, :2])
                parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in xy) + " Z")
        elif part.geom_type in ("LineString", "LinearRing"):
            xy = proj.xy(np.asarray(part.coords)[:, :2])
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in xy))
    return " ".join(parts)


def _bounds(frames: list[gpd.GeoSeries]) -> tuple[float, float, float, float] | None:
    boxes = []
    for geoms in frames:
        arr = np.asarray(geoms, dtype=object)
        if len(arr) == 0:
            continue
        arr = arr[~shapely.is_missing(arr) & ~shapely.is_empty(arr)]
        if len(arr):
            boxes.append(shapely.total_bounds(arr))
    if not boxes:
        return None
    b = np.vstack(boxes)
    minx, miny = np.nanmin(b[:, 0]), np.nanmin(b[:, 1])
    maxx, maxy = np.nanmax(b[:, 2]), np.nanmax(b[:, 3])
    if not np.isfinite([minx, miny, maxx, maxy]).all():
        return None
    # at least ~300 m on each side so a single alert is not a degenerate box
    pad_y = max((maxy - miny) * 0.04, 0.0015)
    pad_x = max((maxx - minx) * 0.04, 0.0015)
    return (minx - pad_x, miny - pad_y, maxx + pad_x, maxy + pad_y)


def _wgs84(frame: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    if frame is None or len(frame) == 0:
        return None
    if frame.crs is not None and not frame.crs.equals("EPSG:4326"):
        frame = frame.to_crs("EPSG:4326")
    return frame


def _svg_map(
    alerts: gpd.GeoDataFrame,
    sites: gpd.GeoDataFrame | None,
    routes: gpd.GeoDataFrame | None,
    *,
    local: pd.Series | None,
) -> str:
    sites = _wgs84(sites)
    routes = _wgs84(routes)
    series = [alerts.geometry] if len(alerts) else []
    series += [f.geometry for f in (sites, routes) if f is not None]
    bounds = _bounds(series)
    if bounds is None:
        return "<p class='muted'>Nothing to draw: no sites, routes or alerts.</p>"
    proj = _Projection(bounds)
    out = [
        f"<svg class='map' xmlns='http://www.w3.org/2000/svg' role='img' "
        f"aria-label='Map of sites, routes and alerts' viewBox='0 0 {proj.width:.0f} "
        f"{proj.height:.0f}' width='{proj.width:.0f}' height='{proj.height:.0f}'>"
    ]
    if sites is not None:
        out.append("<g id='sites'>")
        kinds = (
            sites["kind"].astype("str") if "kind" in sites.columns else pd.Series([""] * len(sites))
        )
        for i, geom in enumerate(sites.geometry):
            if geom is None or geom.is_empty:
                continue
            row = sites.iloc[i]
            kind = kinds.iloc[i]
            colour = SITE_COLOURS.get(kind, "#cccccc")
            label = f"{row.get('site_id', '')} ({kind})"
            name = row.get("name")
            if isinstance(name, str) and name:
                label += f" {name}"
            out.append(
                f"<path class='site' fill='{colour}' fill-rule='evenodd' d='{_path_d(geom, proj)}'>"
                f"<title>{_e(label)}</title></path>"
            )
        out.append("</g>")
    if routes is not None:
        out.append("<g id='routes'>")
        for i, geom in enumerate(routes.geometry):
            if geom is None or geom.is_empty:
                continue
            row = routes.iloc[i]
            label = (
                f"route {row.get('route_id', '')}: {row.get('origin_site_id', '')} → "
                f"{row.get('disposal_site_id', '')}"
            )
            out.append(
                f"<path class='route' d='{_path_d(geom, proj)}'><title>{_e(label)}</title></path>"
            )
        out.append("</g>")
    if sites is not None and len(sites) and "site_id" in sites.columns:
        geoms = np.asarray(sites.geometry.array, dtype=object)
        ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
        anchors = proj.xy(shapely.get_coordinates(shapely.point_on_surface(geoms[ok])))
        out.append("<g id='site-labels' class='lbl'>")
        for (x, y), sid in zip(anchors, sites["site_id"].astype("str")[ok], strict=True):
            out.append(f"<text x='{x + 6:.1f}' y='{y - 6:.1f}'>{_e(sid)}</text>")
        out.append("</g>")
    out.append(_scale_bar(proj))
    if len(alerts):
        out.append("<g id='alert-markers'>")
        geoms = np.asarray(alerts.geometry.array, dtype=object)
        lines = shapely.get_type_id(geoms) == 1  # LineString
        pts = proj.xy(alerts[["lon", "lat"]].to_numpy(dtype="float64"))
        kinds = alerts["kind"].to_numpy(dtype=object)
        # hotspots (rings around several dumps) last, so they stay visible on top
        order = np.argsort(kinds == "dump_hotspot", kind="stable")
        for i in order:
            aid, kind = alerts["alert_id"].iat[i], kinds[i]
            vehicle, start = alerts["vehicle_id"].iat[i], alerts["start"].iat[i]
            summary = alerts["summary"].iat[i]
            colour = KIND_COLOURS.get(kind, "#d62728")
            when = start.strftime("%Y-%m-%d %H:%M:%SZ")
            if local is not None:
                when += f" ({local.iloc[i]})"
            tip = _e(f"{kind} · {vehicle or '—'} · {when}\n{summary}")
            anchor = _anchor(aid)
            out.append(f"<a href='#alert-{anchor}'>")
            if lines[i]:
                out.append(
                    f"<path id='m-{anchor}' class='dev' stroke='{colour}' "
                    f"d='{_path_d(geoms[i], proj)}'><title>{tip}</title></path>"
                )
            x, y = pts[i]
            marker_id = "" if lines[i] else f" id='m-{anchor}'"
            if kind == "dump_hotspot":
                shape = f"class='hs' r='11' fill='none' stroke='{colour}'"
            else:
                shape = f"class='mk' r='5' fill='{colour}'"
            out.append(
                f"<circle{marker_id} {shape} cx='{x:.1f}' cy='{y:.1f}'>"
                f"<title>{tip}</title></circle></a>"
            )
        out.append("</g>")
    out.append("</svg>")
    legend = ["<div class='legend'>"]
    legend += [
        f"<span><i class='sw' style='background:{c};opacity:.6'></i>site: {k}</span>"
        for k, c in SITE_COLOURS.items()
    ]
    legend.append("</div><div class='legend'>")
    present = set(alerts["kind"]) if len(alerts) else set()
    legend += [
        f"<span><i class='sw' style='background:{KIND_COLOURS[k]}'></i>{k}</span>"
        for k in KINDS
        if k in present
    ]
    legend.append("</div>")
    return "".join(out) + "".join(legend)


def _scale_bar(proj: _Projection) -> str:
    """A scale bar of a round length (1, 2 or 5 x 10^n metres) about 150 px long."""
    metres_per_px = 111_320.0 / proj.scale  # one degree of latitude, metres
    target = 150.0 * metres_per_px
    exp = 10.0 ** math.floor(math.log10(target))
    length_m = min((m * exp for m in (1, 2, 5, 10)), key=lambda v: abs(v - target))
    px = length_m / metres_per_px
    x0, y0 = _PAD, proj.height - _PAD / 2 - 4
    label = f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m"
    return (
        f"<g id='scale'><path class='scale' d='M{x0:.1f},{y0 - 5:.1f} V{y0:.1f} "
        f"H{x0 + px:.1f} V{y0 - 5:.1f}'/><text class='lbl' x='{x0 + px + 6:.1f}' "
        f"y='{y0:.1f}'>{label}</text></g>"
    )


# --------------------------------------------------------------------------- the page


def _scalar_rows(summary: Mapping[str, Any]) -> list[tuple[str, Any]]:
    rows = []
    for key, value in summary.items():
        if isinstance(value, bool | int | float | np.integer | np.floating | str) and key not in (
            "alerts_total",
        ):
            rows.append((key.replace("_", " "), value))
    return rows


def _mapping_rows(value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [(str(k), v) for k, v in value.items()]
    return []


def render_report(
    alerts: gpd.GeoDataFrame,
    *,
    summary: Mapping[str, Any] | None = None,
    rejects: pd.DataFrame | None = None,
    trips: pd.DataFrame | None = None,
    sites: gpd.GeoDataFrame | None = None,
    routes: gpd.GeoDataFrame | None = None,
    title: str = "haulwatch audit",
    timezone: str | None = None,
    max_rows: int = 20000,
) -> str:
    """Return the report as one self-contained HTML document.

    Parameters
    ----------
    alerts : geopandas.GeoDataFrame
        The alerts frame (``routes.alerts.make_alerts``).
    summary : Mapping, optional
        Audit summary (``routes.outputs.summary_counts``): its scalar figures are
        listed; ``rejects_by_reason``, ``alerts_by_kind``, ``trips_by_status``,
        ``config`` (thresholds used) and ``timings_s`` (stage → seconds) become tables.
    rejects, trips : pandas.DataFrame, optional
        Used for counts when the summary lacks them.
    sites, routes : geopandas.GeoDataFrame, optional
        Registry drawn on the map (any CRS; drawn in WGS-84).
    title : str
        Page title.
    timezone : str, optional
        IANA zone to show local times beside UTC (default: ``summary["timezone"]``).
    max_rows : int
        At most this many alerts are listed in the table (all are on the map
        and in alerts.csv); must be >= 1.

    Returns
    -------
    str
        The HTML text (UTF-8); identical input gives identical text.

    Raises
    ------
    ValueError
        When ``max_rows`` < 1.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows: value {max_rows!r} is not allowed; allowed: an integer >= 1")
    summary = dict(summary or {})
    tz = timezone or summary.get("timezone")
    local = None
    if tz and len(alerts):
        local = alerts["start"].dt.tz_convert(str(tz)).dt.strftime("%H:%M local")

    by_kind = dict.fromkeys(KINDS, 0)
    if len(alerts):
        counts = alerts["kind"].value_counts()
        by_kind.update({str(k): int(v) for k, v in counts.items()})
    rejects_by = _mapping_rows(summary.get("rejects_by_reason"))
    if not rejects_by and rejects is not None and "reason" in rejects.columns and len(rejects):
        counts = rejects["reason"].astype("str").value_counts()
        rejects_by = sorted((str(k), int(v)) for k, v in counts.items())
    figures = _scalar_rows(summary)
    if not any(k == "trips" for k, _ in figures) and trips is not None:
        figures.append(("trips", len(trips)))

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>{len(alerts):,} alerts. Times are UTC"
        + (f"; local times in {_e(tz)}" if tz else "")
        + ". Coordinates WGS-84.</p>",
        "<h2 id='summary'>Summary</h2><div class='grid'>",
        "<div><h3>Figures</h3>" + _table(figures, ("figure", "value")) + "</div>",
        "<div><h3>Alerts by kind</h3>"
        + _table([(k, v) for k, v in by_kind.items()], ("kind", "alerts"))
        + "</div>",
        "<div><h3>Rows rejected by reason</h3>" + _table(rejects_by, ("reason", "rows")) + "</div>",
    ]
    by_status = _mapping_rows(summary.get("trips_by_status"))
    if not by_status and trips is not None and "status" in trips.columns and len(trips):
        counts = trips["status"].astype("str").value_counts()
        by_status = sorted((str(k), int(v)) for k, v in counts.items())
    if by_status:
        parts.append(
            "<div><h3>Trips by status</h3>" + _table(by_status, ("status", "trips")) + "</div>"
        )
    thresholds = _mapping_rows(summary.get("config"))
    if thresholds:
        parts.append(
            "<div><h3>Thresholds used</h3>" + _table(thresholds, ("setting", "value")) + "</div>"
        )
    timings = _mapping_rows(summary.get("timings_s") or summary.get("timings"))
    if timings:
        parts.append("<div><h3>Timings (s)</h3>" + _table(timings, ("stage", "seconds")) + "</div>")
    parts.append("</div>")

    parts.append("<h2 id='map'>Map</h2>")
    parts.append(_svg_map(alerts, sites, routes, local=local))

    parts.append(
        "<h2 id='alert-table'>Alerts</h2><p><input id='q' type='search' "
        "placeholder='filter: kind, vehicle, site, text…' aria-label='filter alerts'> "
        f"<span class='muted'><span id='shown'>{min(len(alerts), max_rows)}</span> shown</span></p>"
    )
    head = (
        "<table id='alerts'><thead><tr><th>alert</th><th>kind</th><th>severity</th>"
        "<th>vehicle</th><th>start (UTC)</th><th>end (UTC)</th><th>site</th><th>manifest</th>"
        "<th>trip</th><th>summary</th></tr></thead><tbody>"
    )
    rows = []
    shown = alerts.iloc[:max_rows]
    starts = shown["start"].dt.strftime("%Y-%m-%d %H:%M:%S") if len(shown) else []
    ends = shown["end"].dt.strftime("%Y-%m-%d %H:%M:%S") if len(shown) else []
    for i, rec in enumerate(
        shown[
            [
                "alert_id",
                "kind",
                "severity",
                "vehicle_id",
                "site_id",
                "manifest_id",
                "trip_id",
                "summary",
            ]
        ].itertuples(index=False)
    ):
        anchor = _anchor(rec.alert_id)
        start = starts.iloc[i] + (
            f"<br><span class='muted'>{_e(local.iloc[i])}</span>" if local is not None else ""
        )
        rows.append(
            f"<tr id='alert-{anchor}'><td><a href='#m-{anchor}' title='show on map'>"
            f"{_e(rec.alert_id)}</a></td><td>{_e(rec.kind)}</td>"
            f"<td class='sev-{_e(rec.severity)}'>{_e(rec.severity)}</td>"
            f"<td>{_e(rec.vehicle_id)}</td><td>{start}</td><td>{ends.iloc[i]}</td>"
            f"<td>{_e(rec.site_id)}</td><td>{_e(rec.manifest_id)}</td><td>{_e(rec.trip_id)}</td>"
            f"<td>{_e(rec.summary)}</td></tr>"
        )
    if not rows:
        rows.append("<tr><td colspan='10' class='muted'>No alerts.</td></tr>")
    parts.append(head + "".join(rows) + "</tbody></table>")
    if len(alerts) > max_rows:
        parts.append(
            f"<p class='muted'>{len(alerts) - max_rows:,} more alerts are in alerts.csv.</p>"
        )
    parts.append(f"<script>{_JS}</script></body></html>\n")
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
