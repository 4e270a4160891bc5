"""Tests for ``haulwatch audit`` (api/cli/audit.py)."""

from __future__ import annotations

import json
import re
import sys
import types
from types import SimpleNamespace

import pandas as pd
import pytest

from haulwatch.api.cli import main
from haulwatch.api.cli.audit import Progress, format_summary, parse_overrides
from haulwatch.routes.alerts import make_alerts


def _fake_result():
    alerts = make_alerts(
        pd.DataFrame(
            {
                "kind": ["illegal_dump", "gps_gap"],
                "vehicle_id": ["浙FA1", "浙FA2"],
                "start": pd.to_datetime(["2026-03-01T02:00:00Z", "2026-03-01T01:00:00Z"]),
                "severity": ["high", "medium"],
                "lon": [120.1, 120.2],
                "lat": [30.1, 30.2],
            }
        )
    )
    rejects = pd.DataFrame(
        {
            "file": ["tracks.csv"] * 3,
            "row": [2, 5, 8],
            "field": ["lat", "time", "time"],
            "value": ["99", "x", "y"],
            "reason": ["bad_coordinate", "bad_time", "bad_time"],
            "action": ["row_dropped"] * 3,
        }
    )
    return SimpleNamespace(
        alerts=alerts,
        stops=pd.DataFrame({"stop_id": ["a"]}),
        trips=pd.DataFrame({"trip_id": ["T1", "T2", "T3"]}),
        rejects=rejects,
        summary={"points_read": 12345, "duplicates_dropped": 4},
    )


@pytest.fixture
def fake_audit(monkeypatch):
    """Replace routes.audit.audit_folder by a recorder returning a fixed result."""
    calls = []

    def audit_folder(folder, config, *, progress=None):
        calls.append((folder, config))
        if progress is not None:
            progress("reading", "tracks.csv")
            progress("detecting")
        return _fake_result()

    module = types.ModuleType("haulwatch.routes.audit")
    module.audit_folder = audit_folder
    monkeypatch.setitem(sys.modules, "haulwatch.routes.audit", module)
    return calls


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--out", "--config", "--set", "--engine", "--scheduler", "--workers", "--quiet"):
        assert option in text
    assert "report.html" in text and "rejects.csv" in text


def test_lang_and_xlsx_options(tmp_path, capsys, fake_audit):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    assert main(["audit", str(dataset), "--out", str(tmp_path / "zh"), "--xlsx", "-q"]) == 0
    assert (tmp_path / "zh" / "audit.xlsx").is_file()
    assert "<html lang='zh-CN'>" in (tmp_path / "zh" / "report.html").read_text(encoding="utf-8")
    assert main(["audit", str(dataset), "--out", str(tmp_path / "en"), "--lang", "en",
                 "--truck-capacity-m3", "20", "-q"]) == 0
    assert "<html lang='en'>" in (tmp_path / "en" / "report.html").read_text(encoding="utf-8")
    assert not (tmp_path / "en" / "audit.xlsx").exists()
    assert main(["audit", str(dataset), "--out", str(tmp_path / "x"), "--truck-capacity-m3", "0",
                 "-q"]) == 2
    assert "truck_capacity_m3" in capsys.readouterr().err


def test_audit_writes_outputs_and_prints_summary(tmp_path, capsys, fake_audit):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    out = tmp_path / "out"
    code = main(["audit", str(dataset), "--out", str(out), "--set", "gap_max_s=900", "--lang", "en"])
    assert code == 0
    captured = capsys.readouterr()
    # progress with timings on stderr, table on stdout
    assert re.search(r"^\[\s*\d+\.\ds\] reading tracks\.csv$", captured.err, flags=re.M)
    assert "reading" not in captured.out
    lines = dict(
        (line.rsplit(None, 1)[0].strip().lower(), line.rsplit(None, 1)[1])
        for line in captured.out.splitlines()
    )
    assert lines["points read"] == "12,345"
    assert lines["rows rejected"] == "3"
    assert lines["bad_time"] == "2"
    assert lines["duplicates dropped"] == "4"
    assert lines["trips"] == "3"
    assert lines["illegal_dump"] == "1" and lines["dump_hotspot"] == "0"
    assert lines["alerts"] == "2"
    for name in ("alerts.geojson", "alerts.csv", "rejects.csv", "summary.json", "report.html"):
        assert (out / name).is_file()
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["alerts_by_kind"]["gps_gap"] == 1
    # the override reached the config
    ((_, config),) = fake_audit
    assert config.gap_max_s == 900


def test_quiet_prints_no_progress(tmp_path, capsys, fake_audit):
    (tmp_path / "ds").mkdir()
    assert main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "读入定位点" in captured.out  # Chinese first


def test_config_file(tmp_path, fake_audit):
    (tmp_path / "ds").mkdir()
    cfg = tmp_path / "audit.toml"
    cfg.write_text("[audit]\ngap_max_s = 1200\nhotspot_min_vehicles = 4\n", encoding="utf-8")
    args = ["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "-q", "--config", str(cfg)]
    assert main([*args, "--set", "hotspot_min_vehicles=5"]) == 0
    ((_, config),) = fake_audit
    assert config.gap_max_s == 1200 and config.hotspot_min_vehicles == 5


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--set", "nonsense"], "KEY=VALUE"),
        (["--set", "no_such_key=3"], "no_such_key"),
        (["--set", "gap_max_s=abc"], "gap_max_s"),
        (["--config", "/no/such/audit.toml"], "does not exist"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_options_exit_2_without_traceback(tmp_path, capsys, fake_audit, extra, match):
    (tmp_path / "ds").mkdir()
    code = main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert match in err
    assert "Traceback" not in err
    assert not fake_audit  # never started


def test_missing_dataset_exit_2(tmp_path, capsys, fake_audit):
    code = main(["audit", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "nope" in capsys.readouterr().err


def test_schema_error_from_audit_exit_2(tmp_path, capsys, monkeypatch):
    from haulwatch.ingest.rejects import SchemaError

    def audit_folder(folder, config, *, progress=None):
        raise SchemaError("tracks.csv: required column 'lat' missing")

    module = types.ModuleType("haulwatch.routes.audit")
    module.audit_folder = audit_folder
    monkeypatch.setitem(sys.modules, "haulwatch.routes.audit", module)
    (tmp_path / "ds").mkdir()
    assert main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "required column 'lat'" in err and "Traceback" not in err


def test_parse_overrides():
    assert parse_overrides(["a=1", "b = x", "a=2"]) == {"a": "2", "b": "x"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_overrides(["=3"])


def test_progress_accepts_engine_calling_styles():
    lines = []

    class Sink:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    progress = Progress(Sink())
    progress("read")
    progress("stops", "1,000 points")
    progress(stage="combine", partitions=4)
    text = "".join(lines)
    assert "read" in text and "stops 1,000 points" in text and "combine partitions=4" in text
    assert [s for s, _ in progress.stages] == ["read", "stops", "combine"]


def test_format_summary_aligns_and_handles_per_file_rows():
    summary = {"rows_read": {"tracks.csv": 10, "sites.geojson": 3}, "alerts_total": 0, "trips": 0}
    text = format_summary(summary, "en")
    assert "Points read" in text and "10" in text
    widths = {len(line) for line in text.splitlines()}
    assert len(widths) == 1


def _columns(line: str) -> int:
    """Terminal columns of a line (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in line)


def test_summary_is_chinese_first_and_aligned_in_terminal_columns(monkeypatch):
    monkeypatch.delenv("HAULWATCH_LANG", raising=False)
    summary = {
        "points_read": 10, "points_kept": 7, "points_dropped": 2, "duplicates_dropped": 1,
        "points_dropped_by_reason": {"missing lat": 2}, "values_cleared": 0,
        "rows_rejected": 2, "stops": 4, "trips": 3, "alerts_total": 2,
        "alerts_by_kind": {"illegal_dump": 1, "route_deviation": 1},
    }
    text = format_summary(summary)
    for term in ("读入定位点", "偷倒", "偏离路线", "拒收记录"):
        assert term in text
    assert len({_columns(line) for line in text.splitlines()}) == 1
    assert "illegal_dump" in format_summary(summary, "en")  # English shows the kind codes


def test_lang_option_and_environment(tmp_path, capsys, fake_audit, monkeypatch):
    (tmp_path / "ds").mkdir()
    argv = ["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "-q"]
    monkeypatch.setenv("HAULWATCH_LANG", "en")
    assert main(argv) == 0
    assert "Points read" in capsys.readouterr().out
    assert main([*argv, "--lang", "zh"]) == 0  # the option wins; aliases are accepted
    assert "读入定位点" in capsys.readouterr().out
    monkeypatch.setenv("HAULWATCH_LANG", "fr")
    assert main(argv) == 2
    assert "HAULWATCH_LANG: value 'fr' is not allowed" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--lang", "fr"])
    assert exc.value.code == 2


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    from haulwatch.ingest.synthetic import generate

    folder = tmp_path_factory.mktemp("cli") / "fleet"
    generate(folder, trucks=8, days=1, seed=5)
    return folder


def test_end_to_end_local_and_dask_agree(small_dataset, tmp_path, capsys):
    from haulwatch.routes.alerts import read_alerts

    assert main(["audit", str(small_dataset), "--out", str(tmp_path / "a"), "-q"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    assert f"{summary['alerts_total']:,}" in out
    alerts = read_alerts(tmp_path / "a" / "alerts.geojson")
    assert len(alerts) == summary["alerts_total"] > 0
    code = main(
        [
            "audit",
            str(small_dataset),
            "--out",
            str(tmp_path / "d"),
            "-q",
            "--engine",
            "dask",
            "--workers",
            "1",
        ]
    )
    assert code == 0
    other = read_alerts(tmp_path / "d" / "alerts.csv")
    assert list(other["alert_id"]) == list(alerts["alert_id"])
    assert list(other["kind"]) == list(alerts["kind"])
    dask_summary = json.loads((tmp_path / "d" / "summary.json").read_text(encoding="utf-8"))
    for key in ("points_read", "points_kept", "points_dropped", "values_cleared",
                "duplicates_dropped", "points_dropped_by_reason", "values_cleared_by_reason"):
        assert dask_summary[key] == summary[key], key


def _table(text: str) -> dict[str, int]:
    """``label  value`` lines of the summary table -> {label: int} (unindented, lower case)."""
    rows = {}
    for line in text.splitlines():
        label, value = line.rsplit(None, 1)
        rows[label.strip().lower()] = int(value.replace(",", ""))
    return rows


def test_summary_separates_rows_dropped_from_values_cleared(small_dataset, tmp_path, capsys):
    """points read = kept + dropped + duplicates; cleared values are listed apart.

    The expected figures come from the generator's own record of what it broke
    (truth_meta.json), not from the audit.
    """
    meta = json.loads((small_dataset / "truth_meta.json").read_text(encoding="utf-8"))
    assert main(["audit", str(small_dataset), "--out", str(tmp_path / "a"), "-q", "--lang", "en"]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["points read"] == meta["rows_written"]
    assert rows["points kept"] + rows["points dropped"] + rows["duplicates dropped"] == (
        rows["points read"]
    )
    assert rows["points dropped"] == meta["rows_dropped_expected"] + meta["teleport_points"]
    assert rows["duplicates dropped"] == meta["duplicates"]
    assert rows["values cleared (row kept)"] == meta["values_cleared_expected"]
    assert rows["rows rejected"] == rows["points dropped"] + rows["values cleared (row kept)"]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    assert summary["points_dropped"] == rows["points dropped"]
    assert sum(summary["points_dropped_by_reason"].values()) == summary["points_dropped"]
    assert summary["values_cleared"] == sum(summary["values_cleared_by_reason"].values())
    assert summary["rows_dropped_by_file"] == {}


def test_format_summary_lists_other_files_apart():
    text = format_summary(
        {
            "points_read": 10, "points_kept": 7, "points_dropped": 2, "duplicates_dropped": 1,
            "points_dropped_by_reason": {"missing lat": 2},
            "values_cleared": 1, "values_cleared_by_reason": {"bad load": 1},
            "rows_dropped_by_file": {"manifests.csv": 3}, "rows_rejected": 6,
        },
        "en",
    )
    rows = _table(text)
    assert rows["points kept"] + rows["points dropped"] + rows["duplicates dropped"] == 10
    assert rows["rows dropped in other files"] == 3 and rows["manifests.csv"] == 3
    assert rows["bad load"] == 1 and rows["missing lat"] == 2
    lines = text.splitlines()
    assert lines.index(next(x for x in lines if "missing lat" in x)) < lines.index(
        next(x for x in lines if "Duplicates dropped" in x)
    )


def test_out_is_a_file_exit_2_before_auditing(tmp_path, capsys, fake_audit):
    (tmp_path / "ds").mkdir()
    (tmp_path / "taken").write_text("x", encoding="utf-8")
    code = main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "taken")])
    assert code == 2
    assert "--out" in capsys.readouterr().err
    assert not fake_audit


def test_store_loads_the_alerts_and_rerun_keeps_them_once(tmp_path, capsys, fake_audit):
    from haulwatch.api.services.store import Store

    dataset = tmp_path / "ds"
    dataset.mkdir()
    url = f"sqlite:///{tmp_path / 'alerts.db'}"
    args = ["audit", str(dataset), "--out", str(tmp_path / "out"), "--store", url]
    assert main(args) == 0
    assert "2 inserted" in capsys.readouterr().err
    assert main(args) == 0
    assert "0 inserted, 0 updated, 2 unchanged" in capsys.readouterr().err
    store = Store(url)
    try:
        assert store.count_alerts() == 2
    finally:
        store.close()


def test_store_with_a_bad_url_exits_2_before_auditing(tmp_path, capsys, fake_audit):
    dataset = tmp_path / "ds"
    dataset.mkdir()
    code = main(["audit", str(dataset), "--out", str(tmp_path / "out"), "--store", "mysql://x"])
    assert code == 2
    assert "--store" in capsys.readouterr().err
    assert fake_audit == []
