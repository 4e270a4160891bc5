"""Tests for haulwatch.routes.report: the offline HTML report."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from haulwatch.routes.alerts import make_alerts
from haulwatch.routes.report import render_report, write_report


def _alerts() -> gpd.GeoDataFrame:
    return make_alerts(
        pd.DataFrame(
            {
                "kind": ["illegal_dump", "route_deviation", "dump_hotspot"],
                "vehicle_id": ["浙FA1", "浙FA2", ""],
                "start": pd.to_datetime(
                    ["2026-03-01T02:00:00Z", "2026-03-01T01:00:00Z", "2026-03-01T03:00:00Z"]
                ),
                "severity": ["high", "medium", "high"],
                "summary": ["Loaded <truck> & stopped", "left corridor", "3 trucks"],
                "lon": [120.1, None, 120.13],
                "lat": [30.1, None, 30.12],
                "geometry": [
                    None,
                    shapely.LineString([(120.12, 30.11), (120.125, 30.115), (120.13, 30.11)]),
                    None,
                ],
            }
        )
    )


def _registry():
    sites = gpd.GeoDataFrame(
        {"site_id": ["S1", "D1"], "kind": ["origin", "disposal"], "name": ["工地", None]},
        geometry=[
            shapely.box(120.09, 30.09, 120.095, 30.095),
            shapely.box(120.14, 30.13, 120.15, 30.14),
        ],
        crs="EPSG:4326",
    )
    routes = gpd.GeoDataFrame(
        {"route_id": ["R1"], "origin_site_id": ["S1"], "disposal_site_id": ["D1"]},
        geometry=[shapely.LineString([(120.0925, 30.0925), (120.145, 30.135)])],
        crs="EPSG:4326",
    )
    return sites, routes


def _svg(text: str) -> ET.Element:
    match = re.search(r"<svg.*?</svg>", text, flags=re.S)
    assert match is not None
    return ET.fromstring(match.group(0))


NS = "{http://www.w3.org/2000/svg}"


def test_self_contained_no_network():
    sites, routes = _registry()
    text = render_report(_alerts(), sites=sites, routes=routes, summary={"points_read": 10})
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", text)
    assert "<link" not in text and "@import" not in text


def test_map_draws_sites_routes_and_markers_linked_to_table():
    sites, routes = _registry()
    alerts = _alerts()
    text = render_report(alerts, sites=sites, routes=routes)
    svg = _svg(text)  # well-formed XML
    site_paths = svg.findall(f".//{NS}path[@class='site']")
    assert len(site_paths) == 2
    assert {p.get("fill") for p in site_paths} == {"#4c9be8", "#3bb273"}
    assert len(svg.findall(f".//{NS}path[@class='route']")) == 1
    assert len(svg.findall(f".//{NS}path[@class='dev']")) == 1  # route_deviation as a line
    assert len(svg.findall(f".//{NS}circle")) == 3
    for aid in alerts["alert_id"]:
        assert f"href='#alert-{aid}'" in text  # marker -> table row
        assert f"<tr id='alert-{aid}'>" in text  # table row anchor
        assert f"id='m-{aid}'" in text and f"href='#m-{aid}'" in text  # row -> marker
    titles = [t.text for t in svg.iter(f"{NS}title")]
    assert any(t and "illegal_dump" in t and "浙FA1" in t for t in titles)


def test_markers_inside_the_viewbox():
    sites, routes = _registry()
    svg = _svg(render_report(_alerts(), sites=sites, routes=routes))
    _, _, width, height = (float(v) for v in svg.get("viewBox").split())
    for c in svg.iter(f"{NS}circle"):
        assert 0 <= float(c.get("cx")) <= width
        assert 0 <= float(c.get("cy")) <= height


def test_text_is_escaped():
    text = render_report(_alerts())
    assert "Loaded &lt;truck&gt; &amp; stopped" in text
    assert "<truck>" not in text


def test_summary_tables():
    summary = {
        "points_read": 123456,
        "rejects_by_reason": {"bad_time": 4},
        "timings_s": {"read": 1.5},
        "timezone": "Asia/Shanghai",
    }
    text = render_report(_alerts(), summary=summary)
    assert "123,456" in text
    assert "bad_time" in text
    assert "10:00 local" in text  # 02:00Z in Shanghai
    row = re.search(r"<td>illegal_dump</td><td class='n'>(\d+)</td>", text)
    assert row is not None and row.group(1) == "1"


def test_empty_alerts_and_no_registry():
    text = render_report(_alerts().iloc[0:0])
    assert "No alerts." in text
    assert "Nothing to draw" in text


def test_projected_registry_is_drawn_in_wgs84():
    sites, routes = _registry()
    a = _svg(render_report(_alerts(), sites=sites, routes=routes))
    b = _svg(render_report(_alerts(), sites=sites.to_crs(32651), routes=routes.to_crs(32651)))
    ca = [float(c.get("cx")) for c in a.iter(f"{NS}circle")]
    cb = [float(c.get("cx")) for c in b.iter(f"{NS}circle")]
    assert ca == pytest.approx(cb, abs=0.2)


def test_max_rows(tmp_path):
    path = write_report(_alerts(), tmp_path / "r" / "report.html", max_rows=1)
    text = path.read_text(encoding="utf-8")
    assert text.count("<tr id='alert-") == 1
    assert "2 more alerts" in text
    with pytest.raises(ValueError, match="max_rows"):
        render_report(_alerts(), max_rows=0)


def test_site_labels_scale_bar_and_hotspot_ring_on_top():
    sites, routes = _registry()
    svg = _svg(render_report(_alerts(), sites=sites, routes=routes))
    labels = [t.text for t in svg.findall(f".//{NS}g[@id='site-labels']/{NS}text")]
    assert sorted(labels) == ["D1", "S1"]
    scale = svg.find(f".//{NS}g[@id='scale']/{NS}text").text
    assert scale.endswith(("km", " m"))
    circles = list(svg.iter(f"{NS}circle"))
    assert circles[-1].get("class") == "hs" and circles[-1].get("fill") == "none"


def test_scale_bar_length_matches_the_map():
    # two sites 0.1 degree of latitude apart (~11.1 km): the bar's pixels per metre
    # must agree with the pixel distance between them
    sites = gpd.GeoDataFrame(
        {"site_id": ["A", "B"], "kind": ["origin", "disposal"]},
        geometry=[
            shapely.Point(120.0, 30.0).buffer(0.001),
            shapely.Point(120.0, 30.1).buffer(0.001),
        ],
        crs="EPSG:4326",
    )
    text = render_report(_alerts().iloc[0:0], sites=sites)
    svg = _svg(text)
    path = svg.find(f".//{NS}g[@id='scale']/{NS}path").get("d")
    nums = [float(v) for v in re.findall(r"[-\d.]+", path)]
    bar_px = nums[3] - nums[0]  # "M x0,y V y H x1 V y": x1 - x0
    label = svg.find(f".//{NS}g[@id='scale']/{NS}text").text
    bar_m = float(label.split()[0]) * (1000 if label.endswith("km") else 1)
    ys = [float(t.get("y")) + 6 for t in svg.findall(f".//{NS}g[@id='site-labels']/{NS}text")]
    px_per_m = abs(ys[0] - ys[1]) / 11_132.0
    assert bar_px / bar_m == pytest.approx(px_per_m, rel=0.02)


def test_trips_by_status_from_summary_or_trips():
    text = render_report(_alerts(), summary={"trips_by_status": {"delivered": 7, "dumped": 2}})
    assert re.search(r"<td>dumped</td><td class='n'>2</td>", text)
    trips = pd.DataFrame({"status": ["delivered", "open", "delivered"]})
    text = render_report(_alerts(), trips=trips)
    assert re.search(r"<td>delivered</td><td class='n'>2</td>", text)
    assert "Trips by status" not in render_report(_alerts())


def test_thresholds_table():
    text = render_report(_alerts(), summary={"config": {"gap_max_s": 600.0, "timezone": None}})
    assert "Thresholds used" in text
    assert re.search(r"<td>gap_max_s</td><td class='n'>600</td>", text)
