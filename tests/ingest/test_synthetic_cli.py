"""Tests for ``haulwatch generate`` (api/cli/generate.py)."""

from __future__ import annotations

import json

from haulwatch.api.cli import main


def test_generate_writes_dataset_and_reports(tmp_path, capsys):
    out = tmp_path / "fleet"
    code = main(["generate", "--out", str(out), "--trucks", "3", "--seed", "2",
                 "--coord-system", "gcj02", "--sensors", "none", "--interval-s", "20",
                 "--format", "parquet", "--no-shuffle", "--bad-row-fraction", "0"])
    assert code == 0
    printed = capsys.readouterr()
    assert f"wrote {out}" in printed.out
    assert "tracks.parquet" in printed.out
    assert "trucks 1-3 of 3" in printed.err  # progress on stderr
    meta = json.loads((out / "truth_meta.json").read_text())
    assert (meta["trucks"], meta["seed"], meta["coord_system"], meta["sensors"]) == (
        3, 2, "gcj02", "none")
    assert meta["interval_s"] == [20.0, 20.0]
    assert meta["bad_rows_total"] == 0
    assert (out / "tracks.parquet").exists() and not (out / "tracks.csv").exists()


def test_generate_bad_option_exits_2_with_message(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--trucks", "-4"]) == 2
    assert "trucks=-4 is not allowed" in capsys.readouterr().err
    assert main(["generate", "--out", str(tmp_path), "--interval-s", "5", "6", "7"]) == 2
    assert "--interval-s takes 1 or 2 values" in capsys.readouterr().err
    assert not (tmp_path / "tracks.csv").exists()
