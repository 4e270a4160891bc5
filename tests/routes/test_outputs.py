"""Tests for haulwatch.routes.outputs: the output folder."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import geopandas as gpd
import pandas as pd
import pytest
import report_world as world
import shapely

from haulwatch.routes.alerts import KINDS, make_alerts, read_alerts
from haulwatch.routes.outputs import (
    OUTPUT_FILES,
    XLSX_FILE,
    OutputError,
    frame_to_csv,
    summary_counts,
    write_outputs,
)


def _alerts() -> gpd.GeoDataFrame:
    return make_alerts(
        pd.DataFrame(
            {
                "kind": ["illegal_dump", "gps_gap", "illegal_dump"],
                "vehicle_id": ["浙FA1", "浙FA2", "浙FA2"],
                "start": pd.to_datetime(
                    ["2026-03-01T02:00:00Z", "2026-03-01T01:00:00Z", "2026-03-01T03:00:00Z"]
                ),
                "severity": ["high", "medium", "high"],
                "lon": [120.1, 120.2, 120.3],
                "lat": [30.1, 30.2, 30.3],
                "summary": ["a", "b", "c"],
            }
        )
    )


def _result(**changes):
    parts = {
        "alerts": _alerts(),
        "stops": pd.DataFrame(
            {
                "vehicle_id": ["浙FA1"],
                "start": pd.to_datetime(["2026-03-01T02:00:00.5Z"]),
                "end": pd.to_datetime(["2026-03-01T02:09:00Z"]),
                "duration": [pd.Timedelta(minutes=9)],
                "geometry": [shapely.Point(120.1, 30.1)],
            }
        ),
        "trips": pd.DataFrame(
            {
                "trip_id": ["T1", "T2"],
                "start": pd.to_datetime(["2026-03-01T01:00:00Z", pd.NaT], utc=True),
                "sites": [["S1", "D1"], None],
            }
        ),
        "rejects": pd.DataFrame(
            {
                "file": ["tracks.csv", "tracks.csv", "tracks.csv"],
                "row": [4, 7, 9],
                "field": ["lat", "time", "speed_kmh"],
                "value": ["91", "yesterday", "-5"],
                "reason": ["bad_coordinate", "bad_time", "bad_number"],
                "action": ["row_dropped", "row_dropped", "value_cleared"],
            }
        ),
        "summary": {"points_read": 1000, "duplicates_dropped": 2, "timezone": "Asia/Shanghai"},
    }
    parts.update(changes)
    return SimpleNamespace(**parts)


class TestWriteOutputs:
    def test_writes_every_file(self, tmp_path):
        paths = write_outputs(_result(), tmp_path / "out")
        assert tuple(paths) == OUTPUT_FILES
        for name in OUTPUT_FILES:
            assert (tmp_path / "out" / name).is_file()
        # no temporary files left behind
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(OUTPUT_FILES)

    def test_alerts_round_trip(self, tmp_path):
        result = _result()
        write_outputs(result, tmp_path)
        back = read_alerts(tmp_path / "alerts.geojson")
        assert list(back["alert_id"]) == list(result.alerts["alert_id"])

    def test_rejects_csv_has_every_row_and_action(self, tmp_path):
        rejects = _result().rejects.drop(columns="action")
        write_outputs(_result(rejects=rejects), tmp_path)
        table = pd.read_csv(tmp_path / "rejects.csv", dtype=str, keep_default_na=False)
        assert list(table.columns) == ["file", "row", "field", "value", "reason", "action"]
        assert list(table["row"]) == ["4", "7", "9"]
        assert set(table["action"]) == {"row_dropped"}  # filled when the result lacks it

    def test_summary_counts(self, tmp_path):
        write_outputs(_result(), tmp_path)
        summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
        assert summary["points_read"] == 1000
        assert summary["alerts_total"] == 3
        assert summary["alerts_by_kind"]["illegal_dump"] == 2
        assert summary["alerts_by_kind"]["gps_gap"] == 1
        assert set(summary["alerts_by_kind"]) == set(KINDS)
        assert summary["alerts_by_severity"] == {"high": 2, "medium": 1, "low": 0}
        assert summary["rejects_by_reason"] == {"bad_coordinate": 1, "bad_number": 1, "bad_time": 1}
        assert summary["rows_rejected"] == 3
        assert summary["trips"] == 2 and summary["stops"] == 1

    def test_tables_times_and_geometry(self, tmp_path):
        write_outputs(_result(), tmp_path)
        stops = pd.read_csv(tmp_path / "stops.csv", dtype=str, keep_default_na=False)
        assert stops["start"][0] == "2026-03-01T02:00:00.500000Z"
        assert stops["end"][0] == "2026-03-01T02:09:00Z"
        assert stops["duration"][0] == "540.0"
        assert stops["geometry"][0] == "POINT (120.1 30.1)"
        trips = pd.read_csv(tmp_path / "trips.csv", dtype=str, keep_default_na=False)
        assert list(trips["start"]) == ["2026-03-01T01:00:00Z", ""]
        assert json.loads(trips["sites"][0]) == ["S1", "D1"]

    def test_empty_result(self, tmp_path):
        empty = _result(
            alerts=_alerts().iloc[0:0],
            stops=pd.DataFrame(),
            trips=pd.DataFrame(),
            rejects=pd.DataFrame(),
            summary={},
        )
        write_outputs(empty, tmp_path)
        summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
        assert summary["alerts_total"] == 0 and summary["rows_rejected"] == 0
        doc = json.loads((tmp_path / "alerts.geojson").read_text(encoding="utf-8"))
        assert doc["features"] == []
        assert "无告警" in (tmp_path / "report.html").read_text(encoding="utf-8")

    def test_deterministic_and_input_unchanged(self, tmp_path):
        result = _result()
        before = result.trips.copy(deep=True)
        write_outputs(result, tmp_path / "a")
        write_outputs(result, tmp_path / "b")
        for name in OUTPUT_FILES:
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        pd.testing.assert_frame_equal(result.trips, before)

    def test_mapping_result_and_overwrite(self, tmp_path):
        (tmp_path / "alerts.csv").write_text("stale", encoding="utf-8")
        write_outputs(vars(_result()), tmp_path)
        assert "stale" not in (tmp_path / "alerts.csv").read_text(encoding="utf-8")

    def test_bad_result(self, tmp_path):
        with pytest.raises(OutputError, match="no 'alerts'"):
            write_outputs(SimpleNamespace(stops=None), tmp_path)
        with pytest.raises(OutputError, match=r"field 'trips'.*list"):
            write_outputs(_result(trips=[1, 2]), tmp_path)
        with pytest.raises(OutputError, match=r"field 'summary'"):
            write_outputs(_result(summary=3), tmp_path)


def test_frame_to_csv_leaves_input_unchanged():
    frame = _result().stops
    before = frame.copy(deep=True)
    out = frame_to_csv(frame)
    pd.testing.assert_frame_equal(frame, before)
    assert out["geometry"][0] == "POINT (120.1 30.1)"


def test_summary_counts_keeps_own_figures_but_recounts_alerts():
    parts = {
        "alerts": _alerts(),
        "stops": pd.DataFrame(),
        "trips": pd.DataFrame(),
        "rejects": pd.DataFrame(),
        "summary": {"trips": 7, "alerts_total": 99, "ratio": float("nan")},
    }
    out = summary_counts(parts)
    assert out["trips"] == 7
    assert out["alerts_total"] == 3
    assert out["ratio"] is None


def test_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        write_outputs(_result(), tmp_path)
    finally:
        os.umask(mask)
    for name in OUTPUT_FILES:
        mode = stat.S_IMODE((tmp_path / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))


# --------------------------------------------------------------------------- report tables


def _html_rows(text: str, table_id: str) -> list[list[str]]:
    import html
    import re

    body = re.search(rf"<table id='{table_id}'>.*?<tbody>(.*?)</tbody>", text, flags=re.S).group(1)
    return [[html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
             for c in re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.S)]
            for r in re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)]


class TestReportTables:
    def test_scorecard_and_reconciliation_csv(self, tmp_path):
        write_outputs(world.result(), tmp_path, truck_capacity_m3=world.CAPACITY_M3)
        card = pd.read_csv(tmp_path / "scorecard.csv", dtype={"company": str},
                           keep_default_na=False)
        assert card["company"].tolist() == [c for _, c, *_ in world.SCORECARD]
        assert card["alerts_per_100_trips"].tolist() == [p for *_, p in world.SCORECARD]
        rec = pd.read_csv(tmp_path / "reconciliation.csv", dtype={"origin_site_id": str},
                          keep_default_na=False)
        assert rec["origin_site_id"].tolist() == [o for o, *_ in world.RECONCILIATION]
        assert rec["hauled_m3"].tolist() == [h for _, _, h, *_ in world.RECONCILIATION]
        assert rec["flag"].tolist() == [f for *_, f in world.RECONCILIATION]

    def test_workbook_reads_back_with_the_report_figures(self, tmp_path):
        from openpyxl import load_workbook

        paths = write_outputs(world.result(), tmp_path, xlsx=True,
                              truck_capacity_m3=world.CAPACITY_M3)
        assert paths[XLSX_FILE] == tmp_path / XLSX_FILE
        wb = load_workbook(tmp_path / XLSX_FILE)
        assert wb.sheetnames == ["告警", "企业考核", "出土量核对", "拒收记录"]
        page = (tmp_path / "report.html").read_text(encoding="utf-8")

        card = [list(r) for r in wb["企业考核"].iter_rows(values_only=True)]
        assert card[0][:5] == ["排名", "运输企业", "车辆数", "出车车辆", "趟次"]
        assert card[0][-1] == "每百趟告警"
        html_card = _html_rows(page, "scorecard")
        assert len(card) - 1 == len(html_card) == len(world.SCORECARD)
        for row, html_row, (rank, company, trucks, active, trips, kinds, per100) in zip(
                card[1:], html_card, world.SCORECARD, strict=True):
            assert row[:5] == [rank, company or "未备案车辆", trucks, active, trips]
            assert row[-2] == sum(kinds.values()) and row[-1] == per100
            # The same figures as the page, cell by cell.
            assert len(row) == len(html_row)
            for v, h in zip(row, html_row, strict=True):
                assert (float(h.replace(",", "")) == v) if isinstance(v, int | float) else str(v) == h

        rec = [list(r) for r in wb["出土量核对"].iter_rows(values_only=True)]
        assert rec[0][5] == "实运方量 (m³)" and rec[0][-1] == "核对结果"
        html_rec = _html_rows(page, "reconciliation")
        for row, html_row, (origin, trips, hauled, n_man, declared, permit, flag) in zip(
                rec[1:], html_rec, world.RECONCILIATION, strict=True):
            assert (row[0] or "") == origin and row[2] == trips and row[6] == n_man
            assert row[5] == hauled and row[7] == declared and row[8] == permit
            assert row[-1] == html_row[-1] == {
                "over_permit": "超出许可方量", "over_declared": "实运多于申报", "not_hauled": "有联单无运输",
                "": "一致", "unknown_origin": "非法产生点"}[flag]
            assert f"{row[5]:.1f}" == html_row[5]

        alerts = [list(r) for r in wb["告警"].iter_rows(values_only=True)]
        assert alerts[0][4] == "开始（Asia/Shanghai）"
        assert len(alerts) - 1 == len(world.alerts())
        deviation = next(r for r in alerts[1:] if r[1] == "偏离路线")
        assert deviation[4] == dt.datetime(2026, 3, 2, 11, 6)  # local time, as on the page
        rejects = [list(r) for r in wb["拒收记录"].iter_rows(values_only=True)]
        assert rejects[0] == ["文件", "行号", "字段", "原值", "原因", "处理"]
        assert rejects[1][:3] == ["tracks.csv", 7, "lat"]
        assert rejects[1][5] == "整行丢弃"  # row_dropped, in words

    def test_workbook_is_byte_identical_and_english_on_request(self, tmp_path):
        from openpyxl import load_workbook

        write_outputs(world.result(), tmp_path / "a", xlsx=True)
        write_outputs(world.result(), tmp_path / "b", xlsx=True)
        assert (tmp_path / "a" / XLSX_FILE).read_bytes() == (tmp_path / "b" / XLSX_FILE).read_bytes()
        write_outputs(world.result(), tmp_path / "en", xlsx=True, lang="en")
        wb = load_workbook(tmp_path / "en" / XLSX_FILE)
        assert wb.sheetnames == ["alerts", "scorecard", "reconciliation", "rejects"]
        assert next(wb["scorecard"].iter_rows(values_only=True))[1] == "Company"
        assert "<html lang='en'>" in (tmp_path / "en" / "report.html").read_text(encoding="utf-8")
        assert not (tmp_path / "c").exists()
        write_outputs(world.result(), tmp_path / "c")
        assert not (tmp_path / "c" / XLSX_FILE).exists()  # only on request

    def test_bad_capacity_setting(self, tmp_path):
        with pytest.raises(OutputError, match="truck_capacity_m3"):
            write_outputs(world.result(), tmp_path, truck_capacity_m3=0)
