"""Tests for routes.evaluate: matching rule and scores, on hand-made frames."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from haulwatch.routes.evaluate import EvaluationError, evaluate, match, read_truth

T0 = pd.Timestamp("2026-03-02T02:00:00Z")


def _row(kind, vid, start_s, end_s, lon=120.6, lat=30.0):
    return {"kind": kind, "vehicle_id": vid, "start": T0 + pd.Timedelta(seconds=start_s),
            "end": T0 + pd.Timedelta(seconds=end_s), "lon": lon, "lat": lat}


def _frame(rows):
    return pd.DataFrame(rows, columns=["kind", "vehicle_id", "start", "end", "lon", "lat"])


def _get(table, kind):
    (row,) = [r for r in table.itertuples(index=False) if r.kind == kind]
    return row


class TestEvaluate:
    def test_perfect_match_every_kind_scores_one(self):
        truth = _frame([_row("illegal_dump", "浙DA0001", 0, 600),
                        _row("gps_gap", "浙DA0002", 1000, 2000)])
        table = evaluate(truth.copy(), truth)
        for kind in ("illegal_dump", "gps_gap"):
            r = _get(table, kind)
            assert (r.tp, r.fp, r.fn) == (1, 0, 0)
            assert r.precision == 1.0 and r.recall == 1.0 and r.f1 == 1.0
        assert (_get(table, "all").tp, _get(table, "all").fn) == (2, 0)

    def test_empty_alerts_give_recall_zero_and_undefined_precision(self):
        truth = _frame([_row("illegal_dump", "浙DA0001", 0, 600)])
        table = evaluate(_frame([]), truth)
        r = _get(table, "illegal_dump")
        assert (r.tp, r.fp, r.fn) == (0, 0, 1)
        assert np.isnan(r.precision) and r.recall == 0.0
        r = _get(table, "route_deviation")  # neither alerts nor truth
        assert np.isnan(r.precision) and np.isnan(r.recall)

    def test_tolerance_widens_both_windows(self):
        # gap between windows 590 s: widened by 300 s each side they overlap (600 >= 590)
        truth = _frame([_row("illegal_dump", "浙DA0001", 0, 600)])
        near = _frame([_row("illegal_dump", "浙DA0001", 1190, 1500)])
        far = _frame([_row("illegal_dump", "浙DA0001", 1210, 1500)])
        assert _get(evaluate(near, truth), "illegal_dump").tp == 1
        assert _get(evaluate(far, truth), "illegal_dump").tp == 0
        assert _get(evaluate(far, truth, tolerance_s=320), "illegal_dump").tp == 1

    def test_one_to_one(self):
        truth = _frame([_row("illegal_dump", "浙DA0001", 0, 600)])
        alerts = _frame([_row("illegal_dump", "浙DA0001", 0, 600),
                         _row("illegal_dump", "浙DA0001", 100, 500)])
        r = _get(evaluate(alerts, truth), "illegal_dump")
        assert (r.tp, r.fp, r.fn) == (1, 1, 0)
        assert r.precision == 0.5 and r.recall == 1.0
        assert r.f1 == pytest.approx(2 * 0.5 * 1.0 / 1.5)

    def test_greedy_by_overlap_not_by_order(self):
        # A1 touches both truths a little; A2 is exactly T1. Largest overlap first
        # pairs A2-T1, then A1-T2: two hits (first-come order would give only one).
        truth = _frame([_row("gps_gap", "浙DA0001", 0, 100),
                        _row("gps_gap", "浙DA0001", 200, 300)])
        alerts = _frame([_row("gps_gap", "浙DA0001", 90, 210),
                         _row("gps_gap", "浙DA0001", 0, 100)])
        pairs = match(alerts, truth, tolerance_s=0)
        assert sorted(zip(pairs.alert_index, pairs.truth_index, strict=True)) == [(0, 1), (1, 0)]
        assert _get(evaluate(alerts, truth, tolerance_s=0), "gps_gap").tp == 2

    def test_kind_and_vehicle_must_agree_plates_normalized(self):
        truth = _frame([_row("wrong_disposal", "浙DA1234", 0, 600)])
        alerts = _frame([_row("wrong_disposal", "浙d·a 1234", 0, 600),
                         _row("unmanifested_trip", "浙DA1234", 0, 600),
                         _row("wrong_disposal", "浙DA9999", 0, 600)])
        table = evaluate(alerts, truth)
        r = _get(table, "wrong_disposal")
        assert (r.tp, r.fp, r.fn) == (1, 1, 0)
        r = _get(table, "unmanifested_trip")
        assert (r.tp, r.fp, r.fn) == (0, 1, 0)
        assert np.isnan(r.recall)

    def test_hotspots_match_by_place_and_local_day(self):
        # 0.002 deg latitude ~ 222 m: matches within 300 m; 0.004 deg ~ 445 m does not
        truth = _frame([_row("dump_hotspot", "", 0, 3600, lat=30.0)])
        close = _frame([_row("dump_hotspot", "", 0, 3600, lat=30.002)])
        away = _frame([_row("dump_hotspot", "", 0, 3600, lat=30.004)])
        assert _get(evaluate(close, truth), "dump_hotspot").tp == 1
        assert _get(evaluate(away, truth), "dump_hotspot").tp == 0
        # 15:59Z is 23:59 in Shanghai, 16:01Z is 00:01 the next local day
        t_day = {"kind": "dump_hotspot", "vehicle_id": "", "lon": 120.6, "lat": 30.0,
                 "start": pd.Timestamp("2026-03-02T15:50Z"), "end": pd.Timestamp("2026-03-02T15:59Z")}
        a_day = dict(t_day, start=pd.Timestamp("2026-03-02T16:01Z"),
                     end=pd.Timestamp("2026-03-02T16:10Z"))
        assert _get(evaluate(_frame([a_day]), _frame([t_day])), "dump_hotspot").tp == 0
        assert _get(evaluate(_frame([a_day]), _frame([t_day]), timezone="UTC"),
                    "dump_hotspot").tp == 1

    def test_innocent_rows_not_scored_but_hits_counted(self):
        truth = _frame([_row("innocent_traffic_light", "浙DA0001", 0, 90),
                        _row("innocent_refuel", "浙DA0001", 1000, 1500),
                        _row("illegal_dump", "浙DA0002", 0, 600)])
        alerts = _frame([_row("illegal_dump", "浙DA0001", 1100, 1400),   # on the refuel stop
                         _row("illegal_dump", "浙DA0002", 60, 600),      # true dump, other truck
                         _row("unpermitted_origin", "浙DA0001", 95, 300),  # no overlap (no widening)
                         _row("gps_gap", "浙DA0001", 0, 1500)])          # not a stop kind
        table = evaluate(alerts, truth)
        dump = _get(table, "illegal_dump")
        assert (dump.tp, dump.fp, dump.fn, dump.innocent_hits) == (1, 1, 0, 1)
        assert _get(table, "unpermitted_origin").innocent_hits == 0
        assert pd.isna(_get(table, "gps_gap").innocent_hits)
        assert _get(table, "all").innocent_hits == 1
        assert table.attrs["innocent_hits_by_kind"] == {"innocent_refuel": 1}
        assert "innocent_refuel" not in set(table["kind"])

    def test_iso_text_and_naive_local_times(self):
        truth = pd.DataFrame({"kind": ["gps_gap"], "vehicle_id": ["浙DA0001"],
                              "start": ["2026-03-02T02:00:00Z"], "end": ["2026-03-02T02:20:00Z"]})
        # 10:00 naive local in Shanghai is 02:00Z; in UTC it is 8 hours away
        alerts = pd.DataFrame({"kind": ["gps_gap"], "vehicle_id": ["浙DA0001"],
                               "start": ["2026-03-02 10:00:00"], "end": ["2026-03-02 10:20:00"]})
        assert _get(evaluate(alerts, truth), "gps_gap").tp == 1
        assert _get(evaluate(alerts, truth, timezone="UTC"), "gps_gap").tp == 0

    def test_unsorted_input_and_unknown_kind(self):
        truth = _frame([_row("gps_gap", "浙DA0002", 5000, 6000), _row("gps_gap", "浙DA0001", 0, 600)])
        alerts = _frame([_row("gps_gap", "浙DA0001", 0, 600), _row("teleport", "浙DA0001", 0, 9),
                         _row("gps_gap", "浙DA0002", 5000, 6000)])
        table = evaluate(alerts.iloc[::-1], truth)
        assert _get(table, "gps_gap").tp == 2
        r = _get(table, "teleport")
        assert (r.tp, r.fp) == (0, 1)
        assert list(table["kind"])[-1] == "all"

    def test_inputs_left_unchanged(self):
        truth = _frame([_row("gps_gap", "浙DA0001", 0, 600)])
        alerts = _frame([_row("gps_gap", "浙d a0001", 0, 600)])
        before_t, before_a = truth.copy(), alerts.copy()
        evaluate(alerts, truth)
        pd.testing.assert_frame_equal(truth, before_t)
        pd.testing.assert_frame_equal(alerts, before_a)

    def test_bad_parameters_and_columns(self):
        truth = _frame([_row("gps_gap", "浙DA0001", 0, 600)])
        with pytest.raises(EvaluationError, match="tolerance_s=-1"):
            evaluate(truth, truth, tolerance_s=-1)
        with pytest.raises(EvaluationError, match=r"lacks column\(s\) \['end'\]"):
            evaluate(truth.drop(columns="end"), truth)
        bad = truth.assign(start=["not a time"])
        with pytest.raises(EvaluationError, match=r"truth\.start"):
            evaluate(truth, bad)

    @pytest.mark.parametrize("value", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+08:00",
                                       "2262-04-12T00:00:00", "1989-12-31T23:59:59Z"])
    def test_times_outside_the_range_of_every_entry_point(self, value):
        truth = _frame([_row("gps_gap", "浙DA0001", 0, 600)])
        bad = truth.astype({"start": object}).assign(start=[value])
        with pytest.raises(EvaluationError, match=r"truth\.start row 1: .* is outside "
                                                  r"1990-01-01\.\.2100-01-01 UTC"):
            evaluate(truth, bad)


def test_read_truth_roundtrip(tmp_path):
    (tmp_path / "truth.csv").write_text(
        "truth_id,kind,vehicle_id,start,end,lon,lat,site_id,manifest_id,note\n"
        "T000001,dump_hotspot,,2026-03-02T02:00:00Z,2026-03-02T03:00:00Z,120.6,30.0,,,3 vehicles\n",
        encoding="utf-8",
    )
    t = read_truth(tmp_path)
    assert t.loc[0, "vehicle_id"] == ""
    assert t.loc[0, "start"] == pd.Timestamp("2026-03-02T02:00:00Z")
    assert str(t["start"].dtype) == "datetime64[ns, UTC]"


def test_cli_evaluate_prints_table_and_fails_under(tmp_path, capsys):
    from haulwatch.api.cli import main

    (tmp_path / "truth.csv").write_text(
        "truth_id,kind,vehicle_id,start,end,lon,lat,site_id,manifest_id,note\n"
        "T1,gps_gap,浙DA0001,2026-03-02T02:00:00Z,2026-03-02T02:20:00Z,120.6,30.0,,,\n"
        "T2,gps_gap,浙DA0002,2026-03-02T03:00:00Z,2026-03-02T03:20:00Z,120.6,30.0,,,\n",
        encoding="utf-8")
    (tmp_path / "alerts.csv").write_text(
        "kind,vehicle_id,start,end\ngps_gap,浙DA0001,2026-03-02T02:01:00Z,2026-03-02T02:19:00Z\n",
        encoding="utf-8")
    args = ["evaluate", str(tmp_path), "--alerts", str(tmp_path / "alerts.csv"),
            "--json", str(tmp_path / "scores.json")]
    assert main(args) == 0
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("gps_gap")]
    assert line.split()[1:7] == ["1", "0", "1", "1.000", "0.500", "0.667"]
    scores = json.loads((tmp_path / "scores.json").read_text())["scores"]
    assert next(s for s in scores if s["kind"] == "gps_gap")["recall"] == 0.5
    assert main([*args, "--fail-under", "0.9"]) == 1
    assert main([*args, "--fail-under", "0.5"]) == 0
    assert main(["evaluate", str(tmp_path / "missing")]) == 2
