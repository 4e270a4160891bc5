"""Tests for haulwatch.routes.report: the analyst's report, its tables and charts."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import report_world as world

from haulwatch.i18n import LanguageError
from haulwatch.routes.alerts import KINDS
from haulwatch.routes.report import (
    RECONCILIATION_COLUMNS,
    SCORECARD_COLUMNS,
    alert_breakdowns,
    company_scorecard,
    heat_cells,
    origin_reconciliation,
    render_report,
    write_report,
)


def _render(**kwargs) -> str:
    r = world.result()
    args = dict(summary=r.summary, rejects=r.rejects, trips=r.trips, stops=r.stops, sites=r.sites,
                routes=r.routes, manifests=r.manifests, vehicles=r.vehicles,
                truck_capacity_m3=world.CAPACITY_M3)
    args.update(kwargs)
    return render_report(r.alerts, **args)


def _visible(text: str) -> str:
    """The page's text without style, scripts and tags."""
    text = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", text, flags=re.S)
    return html_unescape(re.sub(r"<[^>]+>", " ", text))


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def _table_rows(text: str, table_id: str) -> list[list[str]]:
    m = re.search(rf"<table id='{table_id}'>.*?<tbody>(.*?)</tbody>", text, flags=re.S)
    assert m is not None, table_id
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", m.group(1), flags=re.S)
    return [[html_unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)] for r in rows]


class TestScorecard:
    def test_figures_worked_out_by_hand(self) -> None:
        card = company_scorecard(world.alerts(), trips=world.trips(), vehicles=world.vehicles())
        assert tuple(card.columns) == SCORECARD_COLUMNS
        assert len(card) == len(world.SCORECARD)
        for row, (rank, company, trucks, active, trips, kinds, per100) in zip(
                card.to_dict("records"), world.SCORECARD, strict=True):
            assert (row["rank"], row["company"], row["trucks"], row["active_trucks"],
                    row["trips"]) == (rank, company, trucks, active, trips)
            assert {k: row[f"alerts_{k}"] for k in KINDS if row[f"alerts_{k}"]} == kinds
            assert row["alerts_total"] == sum(kinds.values())
            assert row["alerts_per_100_trips"] == pytest.approx(per100)

    def test_without_registry_every_truck_is_unregistered(self) -> None:
        card = company_scorecard(world.alerts(), trips=world.trips())
        assert card["company"].tolist() == [""]
        assert card["trips"].tolist() == [10]
        assert card["alerts_total"].tolist() == [5]  # the hotspot has no truck

    def test_empty_and_unsorted_input_and_input_unchanged(self) -> None:
        empty = company_scorecard(world.alerts().iloc[0:0], trips=world.trips().iloc[0:0],
                                  vehicles=world.vehicles())
        assert tuple(empty.columns) == SCORECARD_COLUMNS
        assert (empty["trips"] == 0).all() and (empty["rank"] == 0).all()  # idle: not ranked
        alerts, trips = world.alerts(), world.trips()
        before = (alerts.copy(), trips.copy())
        shuffled = company_scorecard(alerts.iloc[::-1], trips=trips.iloc[::-1],
                                     vehicles=world.vehicles())
        pd.testing.assert_frame_equal(
            shuffled, company_scorecard(alerts, trips=trips, vehicles=world.vehicles()))
        pd.testing.assert_frame_equal(alerts, before[0])
        pd.testing.assert_frame_equal(trips, before[1])

    def test_ties_share_a_rank(self) -> None:
        trips = pd.DataFrame({"trip_id": ["1", "2"], "vehicle_id": ["浙A1", "浙B1"]})
        card = company_scorecard(world.alerts().iloc[0:0], trips=trips, vehicles=world.vehicles())
        assert card.set_index("company")["rank"].to_dict() == {"甲运输": 1, "乙运输": 1}


class TestReconciliation:
    def test_figures_worked_out_by_hand(self) -> None:
        rec = origin_reconciliation(world.trips(), manifests=world.manifests(),
                                    vehicles=world.vehicles(), sites=world.sites(),
                                    truck_capacity_m3=world.CAPACITY_M3)
        assert tuple(rec.columns) == RECONCILIATION_COLUMNS
        for row, (origin, trips, hauled, n_man, declared, permit, flag) in zip(
                rec.to_dict("records"), world.RECONCILIATION, strict=True):
            assert (row["origin_site_id"], row["trips"], row["manifests"], row["flag"]) == (
                origin, trips, n_man, flag)
            assert row["hauled_m3"] == pytest.approx(hauled)
            for got, want in ((row["declared_m3"], declared), (row["permit_m3"], permit)):
                assert (math.isnan(got) if want is None else got == pytest.approx(want))
        o1 = rec.iloc[0]
        assert o1["capacity_basis"] == "mixed"  # one truck registered, one by the setting
        assert o1["hauled_vs_declared_pct"] == pytest.approx(100 * 90 / 110, abs=0.05)
        assert o1["hauled_vs_permit_pct"] == pytest.approx(100 * 90 / 80, abs=0.05)

    def test_capacity_setting_and_tolerance(self) -> None:
        rec = origin_reconciliation(world.trips(), manifests=world.manifests(), sites=world.sites(),
                                    truck_capacity_m3=4.0)
        o2 = rec.set_index("origin_site_id").loc["O2"]
        assert o2["hauled_m3"] == pytest.approx(16.0) and o2["capacity_basis"] == "setting"
        assert o2["flag"] == ""  # 16 of 20 declared: within ±20 %
        tight = origin_reconciliation(world.trips(), manifests=world.manifests(),
                                      sites=world.sites(), truck_capacity_m3=4.0, tolerance_pct=10)
        assert tight.set_index("origin_site_id").loc["O2", "flag"] == "under_declared"

    @pytest.mark.parametrize(("kwargs", "match"), [
        ({"truck_capacity_m3": 0}, r"truck_capacity_m3: value 0 .*> 0"),
        ({"truck_capacity_m3": -3.0}, r"truck_capacity_m3"),
        ({"tolerance_pct": -1}, r"tolerance_pct"),
    ])
    def test_bad_parameters(self, kwargs: dict, match: str) -> None:
        with pytest.raises(ValueError, match=match):
            origin_reconciliation(world.trips(), **kwargs)

    def test_empty(self) -> None:
        rec = origin_reconciliation(None, sites=world.sites())
        assert rec["origin_site_id"].tolist() == ["O1", "O2", "O3", "O4"]
        assert (rec["trips"] == 0).all()


class TestBreakdowns:
    def test_local_days_hours_companies_origins_disposal_sites(self) -> None:
        b = alert_breakdowns(world.alerts(), trips=world.trips(), vehicles=world.vehicles(),
                             sites=world.sites(), timezone="Asia/Shanghai")
        # 15:30 UTC on 1 March is 23:30 local: that day; the rest are on 2 March.
        assert b["by_day_kind"].sum(axis=1).to_dict() == {"2026-03-01": 1, "2026-03-02": 5}
        assert b["by_day_kind"].loc["2026-03-01", "illegal_dump"] == 1
        assert {h: n for h, n in b["by_hour"].items() if n} == {23: 1, 11: 1, 12: 1, 13: 2, 14: 1}
        assert b["by_company"].to_dict() == {"甲运输": 2, "": 2, "乙运输": 1}
        assert b["by_origin"].to_dict() == {"O1": 2, "O2": 1, "": 1}
        assert b["by_disposal"].to_dict() == {"D1": 4}

    def test_other_zone_moves_days_and_hours(self) -> None:
        b = alert_breakdowns(world.alerts(), timezone="UTC")
        assert b["by_hour"][15] == 1 and b["by_hour"][23] == 0

    def test_empty(self) -> None:
        b = alert_breakdowns(world.alerts().iloc[0:0])
        assert b["by_hour"].sum() == 0 and len(b["by_company"]) == 0


class TestHeat:
    def test_dumps_and_long_stops_outside_sites(self) -> None:
        cells = heat_cells(world.alerts(), world.stops(), cell_m=250, long_stop_min_s=600)
        # The dump and the two long stops ~15 m from it share a cell; the far stop has its own;
        # the short stop and the stop inside O1 are not counted.
        assert cells["total"].tolist() == [3, 1]
        assert cells[["dumps", "stops"]].iloc[0].tolist() == [1, 2]
        first = cells.iloc[0]
        assert first["south"] <= 30.1 < first["north"] and first["west"] <= 120.1 < first["east"]
        side_m = (first["north"] - first["south"]) * 111_320
        assert side_m == pytest.approx(250, rel=1e-6)

    def test_nothing_to_count(self) -> None:
        assert len(heat_cells(world.alerts().iloc[0:0], None)) == 0
        with pytest.raises(ValueError, match="cell_m"):
            heat_cells(world.alerts(), cell_m=0)


class TestPage:
    def test_self_contained_offline(self) -> None:
        text = _render()
        assert text.startswith("<!DOCTYPE html>")
        markup = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", text, flags=re.S)
        assert not re.search(r"(src|href)=['\"]?(https?:)?//", markup)
        assert "setPrefix('Leaflet')" in text  # the attribution links nowhere
        assert "<link" not in text and "@import" not in text
        assert "L.map(" in text and "Leaflet" in text  # the vendored library, inlined
        assert "url(images/" not in text  # its images inlined too
        data = json.loads(re.search(r"<script type='application/json' id='map-data'>(.*?)</script>",
                                    text, flags=re.S).group(1))
        assert len(data["sites"]) == 6 and len(data["routes"]) == 1
        assert len(data["alerts"]) == 6 and len(data["heat"]) == 2

    def test_chinese_top_to_bottom_map_and_charts_first(self) -> None:
        text = _render()
        assert "<html lang='zh-CN'>" in text
        visible = _visible(text)
        for word in ("告警", "运输企业考核", "出土量核对", "每日告警", "偷倒", "时间均为 Asia/Shanghai 时区"):
            assert word in visible, word
        headings = re.findall(r"<h2[^>]*>(.*?)</h2>", text)
        assert all(re.search(r"[\u4e00-\u9fff]", h) for h in headings), headings
        body = text.split("<body>", 1)[1]
        order = [body.index(s) for s in ("id='map'", "id='chart-day-kind'", "id='scorecard'",
                                         "id='reconciliation'", "id='alerts'")]
        assert order == sorted(order)
        assert body.index("id='map'") < body.index("<table")  # no table before the map

    def test_english_on_request(self) -> None:
        text = _render(lang="en")
        assert "<html lang='en'>" in text
        visible = _visible(text)
        assert "Company scorecard" in visible and "Illegal dump" in visible
        assert "运输企业考核" not in visible

    def test_unknown_language_is_refused(self) -> None:
        with pytest.raises(LanguageError):
            _render(lang="fr")

    def test_tables_show_the_computed_figures(self) -> None:
        text = _render()
        rows = _table_rows(text, "scorecard")
        assert [r[1] for r in rows] == ["乙运输", "甲运输", "未备案车辆"]
        assert [r[0] for r in rows] == ["1", "2", "3"]
        assert [r[-1] for r in rows] == ["25.0", "40.0", "200.0"]
        rec = _table_rows(text, "reconciliation")
        assert [r[1] for r in rec] == ["东湖工地", "西山工地", "北岸工地", "O4", "非法产生点（未登记）"]
        assert rec[0][5] == "90.0" and rec[0][-1] == "超出许可方量"
        assert rec[1][-1] == "实运多于申报"

    def test_charts_present(self) -> None:
        text = _render()
        for chart in ("day-kind", "hour", "company", "origin", "disposal"):
            m = re.search(rf"<figure class='chart' id='chart-{chart}'>(.*?)</figure>", text, flags=re.S)
            assert m is not None and "<svg" in m.group(1), chart
        hour = re.search(r"id='chart-hour'>(.*?)</figure>", text, flags=re.S).group(1)
        assert "<title>13 告警: 2</title>" in hour  # 05:00 and 05:10 UTC
        company = re.search(r"id='chart-company'>(.*?)</figure>", text, flags=re.S).group(1)
        assert "甲运输" in company and "未备案车辆" in company

    def test_times_in_the_dataset_zone_sites_by_name(self) -> None:
        text = _render()
        rows = _table_rows(text, "alerts")
        deviation = next(r for r in rows if r[1] == "偏离路线")
        assert deviation[4] == "2026-03-02 11:06"  # 03:06 UTC
        assert "<span title='O1'>东湖工地</span>" in text

    def test_text_is_escaped(self) -> None:
        r = world.result()
        alerts = r.alerts.copy()
        alerts.loc[0, "summary"] = "<script>alert(1)</script> & <b>"
        sites = r.sites.copy()
        sites.loc[0, "name"] = "<img src=x>"
        text = render_report(alerts, sites=sites, trips=r.trips)
        assert "<script>alert(1)" not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in text
        assert "<img src=x>" not in text

    def test_empty_alerts_and_no_registry(self) -> None:
        text = render_report(world.alerts().iloc[0:0])
        assert "无告警" in text
        text = render_report(world.alerts().iloc[0:0], lang="en")
        assert "No alerts" in text

    def test_max_rows_and_bad_values(self, tmp_path: Path) -> None:
        text = _render(max_rows=2)
        assert len(_table_rows(text, "alerts")) == 2
        assert "另有 4 条告警见 alerts.csv" in text
        with pytest.raises(ValueError, match="max_rows"):
            _render(max_rows=0)
        with pytest.raises(ValueError, match="truck_capacity_m3"):
            _render(truck_capacity_m3=0)
        path = write_report(world.alerts(), tmp_path / "sub" / "report.html")
        assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")

    def test_deterministic_and_input_unchanged(self) -> None:
        r = world.result()
        before = r.alerts.copy()
        assert _render() == _render()
        pd.testing.assert_frame_equal(r.alerts, before)

    def test_projected_registry_is_drawn_in_wgs84(self) -> None:
        text = _render(sites=world.sites().to_crs(32651))
        data = json.loads(re.search(r"id='map-data'>(.*?)</script>", text, flags=re.S).group(1))
        ring = np.array(data["sites"][0]["coords"][0])
        assert ring[:, 0].min() == pytest.approx(30.0, abs=1e-6)  # [lat, lon] pairs
        assert ring[:, 1].min() == pytest.approx(120.0, abs=1e-6)

    def test_thresholds_and_print_layout(self) -> None:
        text = _render(summary={"config": {"gap_max_s": 600}, "timezone": "Asia/Shanghai"})
        assert _table_rows(text, "thresholds") == [["gap_max_s", "600"]]
        assert "@page{size:A4 landscape" in text


def _chromium() -> str | None:
    for c in (os.environ.get("HAULWATCH_CHROMIUM"), shutil.which("chromium"),
              shutil.which("chromium-browser")):
        if c and Path(c).exists():
            return c
    return None


def test_report_in_headless_chromium(tmp_path: Path) -> None:
    """The page draws its map and charts offline, without a request or a script error."""
    chromium = _chromium()
    if chromium is None:
        pytest.fail("no Chromium found: run `bash scripts/ensure-browser.sh` or set HAULWATCH_CHROMIUM")
    from playwright.sync_api import sync_playwright

    path = write_report(world.alerts(), tmp_path / "report.html", **{
        k: v for k, v in vars(world.result()).items() if k not in ("alerts",)})
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True,
                                    args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_selector("#map.leaflet-container")
        assert page.locator("#map path.leaflet-interactive").count() >= 6 + 1 + 6  # sites, route, alerts
        assert page.locator("#map .site-label").count() == 6
        assert page.locator("figure.chart svg rect").count() > 10
        box = page.locator("#map").bounding_box()
        assert box is not None and box["y"] < 900  # the map is on the first screen
        if os.environ.get("HAULWATCH_SHOTS"):
            out = Path(os.environ["HAULWATCH_SHOTS"])
            out.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out / "report.png"), full_page=False)
            page.pdf(path=str(out / "report.pdf"), format="A4", landscape=True)
        browser.close()
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert np.isfinite(box["height"])


class TestLocalizedSummaries:
    BASE: ClassVar[dict] = {"vehicle_id": "浙DW8937", "start": "2026-03-01T23:36:00Z", "end": "2026-03-01T23:42:00Z",
            "site_id": "", "manifest_id": "", "summary": "English original"}

    @pytest.mark.parametrize(("kind", "extra", "evidence", "zh"), [
        ("illegal_dump", {}, {"stop_duration_s": 349, "distance_to_permitted_site_m": 1891.5},
         "满载车辆 浙DW8937 于 2026-03-02 07:36 在距许可场地 1.9 km 处停车 6 分钟，未到消纳场即空载：疑似偷倒"),
        ("illegal_dump", {}, {"dark_s": 2409, "stop_duration_s": 0, "distance_to_permitted_site_m": 1767.8},
         "满载车辆 浙DW8937 于 2026-03-02 07:36 在距许可场地 1.8 km 处信号中断 40 分钟，之后空载出现：疑似偷倒"),
        ("route_deviation", {}, {"route_ids": ["R1"], "origin_site_id": "O1", "disposal_site_id": "D1",
                                 "off_corridor_s": 230, "max_off_corridor_m": 781.7},
         "满载车辆 浙DW8937 于 2026-03-02 07:36 驶离核准路线 R1（东湖工地 → 南郊消纳场）4 分钟，最远偏离 782 m"),
        ("wrong_disposal", {"site_id": "D1", "manifest_id": "M9"}, {"manifest_disposal_site_ids": ["O2"]},
         "车辆 浙DW8937 于 2026-03-02 07:36 在消纳场 南郊消纳场 卸载，但联单 M9 指定的是 西山工地：非指定消纳场"),
        ("gps_gap", {}, {"gap_s": 3700, "moved_while_dark_m": 576.3},
         "满载车辆 浙DW8937 于 2026-03-02 07:36 起信号中断 1 小时 2 分，重新出现时已移动 576 m"),
        ("unregistered_vehicle", {}, {"day": "2026-03-02", "loads": 5}, "未备案车辆 浙DW8937 于 2026-03-02 运输 5 车次"),
        ("dump_hotspot", {"vehicle_id": ""}, {"day": "2026-03-02", "hotspot_radius_m": 150.0, "dumps": [
            ["浙A1", 120.1, 30.1, "t"], ["浙A2", 120.1, 30.1, "t"], ["浙A1", 120.1, 30.1, "t"]]},
         "2026-03-02 有 2 辆车在同一地点 150 m 范围内卸载（共 3 次）：疑似偷倒热点"),
    ])
    def test_chinese_from_the_alert_fields(self, kind: str, extra: dict, evidence: dict, zh: str) -> None:
        from haulwatch.routes.report import localized_summary

        names = {"O1": "东湖工地", "O2": "西山工地", "D1": "南郊消纳场"}
        alert = {**self.BASE, "kind": kind, **extra, "evidence": json.dumps(evidence)}
        assert localized_summary(alert, site_name=lambda s: names.get(s, s)) == zh

    def test_missing_facts_fall_back_to_the_original(self) -> None:
        from haulwatch.routes.report import localized_summary

        alert = {**self.BASE, "kind": "route_deviation", "evidence": {"route_ids": []}}
        assert localized_summary(alert) == "English original"
        assert localized_summary({**self.BASE, "kind": "new_kind", "evidence": None}) == "English original"

    def test_report_and_list_use_them(self) -> None:
        text = _render()
        rows = _table_rows(text, "alerts")
        assert any("疑似偷倒" in r[-1] for r in rows) or any("满载停车后空载" in r[-1] for r in rows)
        en = _table_rows(_render(lang="en"), "alerts")
        assert {r[-1] for r in en} == set(world.alerts()["summary"])  # the detectors' own words
