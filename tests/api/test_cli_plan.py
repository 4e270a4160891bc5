"""Tests for ``haulwatch plan`` (api/cli/plan.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pymavlink import mavwp

from haulwatch.api.cli import main
from haulwatch.geo.chinacoords import gcj02_to_wgs84
from haulwatch.routes.alerts import make_alerts, write_alerts


def _square(lon: float, lat: float, half: float = 0.0002) -> list:
    return [
        [
            [lon - half, lat - half],
            [lon + half, lat - half],
            [lon + half, lat + half],
            [lon - half, lat + half],
            [lon - half, lat - half],
        ]
    ]


def _feature(site_id: str, kind: str, coords: list) -> dict:
    return {
        "type": "Feature",
        "properties": {"site_id": site_id, "kind": kind},
        "geometry": {"type": "Polygon", "coordinates": coords},
    }


def _write_sites(folder: Path, coord_system: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    features = [
        _feature("nest-1", "nest", _square(121.02, 30.70)),
        _feature("nest-2", "nest", _square(121.10, 30.75)),
        _feature(
            "nf-1",
            "no_fly",
            [
                [
                    [121.022, 30.702],
                    [121.028, 30.702],
                    [121.028, 30.708],
                    [121.022, 30.708],
                    [121.022, 30.702],
                ]
            ],
        ),
        _feature("o-1", "origin", _square(121.05, 30.70, 0.001)),
    ]
    path = folder / "sites.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    if coord_system:
        (folder / "dataset.toml").write_text(f'coord_system = "{coord_system}"\n')
    return path


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    return _write_sites(tmp_path / "data")


NOON = ["--at", "2026-06-01T12:00", "--max-range-m", "5000"]


def test_point_mission_table_and_files(sites, tmp_path, capsys):
    plan, wps = tmp_path / "m.plan", tmp_path / "m.waypoints"
    argv = ["plan", "--lat", "30.71", "--lon", "121.03", "--sites", str(sites)]
    rc = main([*argv, *NOON, "--out", str(plan), "--waypoints", str(wps)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "nest-1" in out.out and "NAV_TAKEOFF" in out.out and "NAV_LOITER_TURNS" in out.out
    assert "FEASIBLE" in out.out and "detour" in out.out
    assert "提示：机巢 nest-2 无法执行：超出航程：目标距机巢" in out.err  # Chinese by default
    doc = json.loads(plan.read_text())
    assert doc["fileType"] == "Plan" and doc["mission"]["firmwareType"] == 3
    assert len(doc["geoFence"]["polygons"]) == 1  # the no-fly zone as exclusion fence
    loader = mavwp.MAVWPLoader()
    assert loader.load(str(wps)) == len(doc["mission"]["items"]) + 1
    # the table lists every item, home first
    table = [ln for ln in out.out.splitlines() if ln[:1].isdigit()]
    assert table[0].split()[1] == "HOME" and len(table) == loader.count()


def test_alert_from_alerts_file(sites, tmp_path, capsys):
    frame = pd.DataFrame(
        {
            "kind": ["illegal_dump", "route_deviation"],
            "vehicle_id": ["浙F12345", "浙F00001"],
            "start": ["2026-06-01T09:00:00", "2026-06-01T09:30:00"],
            "severity": ["high", "medium"],
            "lon": [121.03, 121.01],
            "lat": [30.71, 30.69],
        }
    )
    alerts = make_alerts(frame)
    write_alerts(alerts, tmp_path / "out")
    alert_id = str(alerts.loc[alerts["kind"] == "illegal_dump", "alert_id"].iloc[0])
    wps = tmp_path / "a.waypoints"
    rc = main(
        [
            "plan",
            "--alert",
            alert_id,
            "--alerts",
            str(tmp_path / "out" / "alerts.geojson"),
            "--sites",
            str(sites),
            *NOON,
            "--waypoints",
            str(wps),
        ]
    )
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert f"alert {alert_id}" in out.out
    loader = mavwp.MAVWPLoader()
    loader.load(str(wps))
    loiter = [loader.wp(k) for k in range(loader.count()) if loader.wp(k).command == 18]
    assert (loiter[0].x, loiter[0].y) == pytest.approx((30.71, 121.03), abs=1e-7)


def test_unknown_alert(sites, tmp_path, capsys):
    alerts = make_alerts(
        pd.DataFrame(
            {
                "kind": ["illegal_dump"],
                "vehicle_id": ["浙F12345"],
                "start": ["2026-06-01T09:00:00"],
                "severity": ["high"],
                "lon": [121.03],
                "lat": [30.71],
            }
        )
    )
    write_alerts(alerts, tmp_path / "out")
    rc = main(
        [
            "plan",
            "--alert",
            "nope",
            "--alerts",
            str(tmp_path / "out" / "alerts.csv"),
            "--sites",
            str(sites),
        ]
    )
    assert rc == 2
    assert "'nope' is not in" in capsys.readouterr().err


def test_refused_target_in_no_fly(sites, capsys, monkeypatch):
    monkeypatch.delenv("HAULWATCH_LANG", raising=False)
    argv = ["plan", "--lat", "30.705", "--lon", "121.025", "--sites", str(sites), *NOON]
    assert main(argv) == 2
    err = capsys.readouterr().err
    # Chinese by default: the refusal code kept, each dock's reason in words with its figures
    assert "拒绝执行（no_feasible_dock）：目标点 (30.705000, 121.025000)" in err
    assert "机巢 nest-1：目标（30.705, 121.025）位于禁飞区内" in err
    assert "机巢 nest-2：超出航程：目标距机巢" in err and "最大航程 5000 m" in err
    assert "REFUSED" not in err and "lies inside" not in err
    # English on request: --lang en, or HAULWATCH_LANG=en
    assert main([*argv, "--lang", "en"]) == 2
    err = capsys.readouterr().err
    assert "REFUSED (no_feasible_dock)" in err
    assert "nest-1: target_in_no_fly" in err and "nest-2: out_of_range" in err
    assert "禁飞区" not in err
    monkeypatch.setenv("HAULWATCH_LANG", "en")
    assert main(argv) == 2
    assert "REFUSED (no_feasible_dock)" in capsys.readouterr().err


def test_refused_lang_is_checked(sites, capsys):
    argv = ["plan", "--lat", "30.705", "--lon", "121.025", "--sites", str(sites), *NOON]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--lang", "fr"])
    assert exc.value.code == 2


def test_refused_at_night_with_given_dock(sites, capsys, monkeypatch):
    monkeypatch.delenv("HAULWATCH_LANG", raising=False)
    argv = ["plan", "--lat", "30.71", "--lon", "121.03", "--sites", str(sites), "--dock", "nest-1"]
    assert main([*argv, "--at", "2026-06-01T23:00"]) == 2
    err = capsys.readouterr().err
    # 23:00 local (Asia/Shanghai) is night: the take-off time shown in the dataset zone
    assert "拒绝执行（daylight）" in err and "夜间禁飞：太阳高度" in err
    assert "2026-06-01 23:00 起飞" in err
    assert main([*argv, "--at", "2026-06-01T23:00", "--lang", "en"]) == 2
    assert "REFUSED (daylight)" in capsys.readouterr().err
    assert main([*argv, "--at", "2026-06-01T23:00", "--no-daylight"]) == 0


def test_options_reach_the_mission(sites, tmp_path, capsys):
    wps = tmp_path / "o.waypoints"
    argv = ["plan", "--lat", "30.71", "--lon", "121.03", "--sites", str(sites), *NOON]
    opts = ["--altitude-m", "90", "--orbit-radius-m", "35", "--orbit-turns", "3", "--land"]
    assert main([*argv, *opts, "--waypoints", str(wps)]) == 0
    loader = mavwp.MAVWPLoader()
    loader.load(str(wps))
    items = [loader.wp(k) for k in range(1, loader.count())]
    assert items[0].command == 22 and items[0].z == 90
    loiter = next(w for w in items if w.command == 18)
    assert (loiter.param1, loiter.param3) == (3, 35)
    assert items[-1].command == 21  # NAV_LAND
    assert "orbit r=35 m x3" in capsys.readouterr().out


def test_gcj02_sites_are_converted(tmp_path, capsys):
    sites = _write_sites(tmp_path / "gcj", coord_system="gcj02")
    wps = tmp_path / "g.waypoints"
    argv = ["plan", "--lat", "30.71", "--lon", "121.03", "--sites", str(sites), "--dock", "nest-1"]
    assert main([*argv, *NOON, "--waypoints", str(wps)]) == 0, capsys.readouterr().err
    loader = mavwp.MAVWPLoader()
    loader.load(str(wps))
    lon, lat = gcj02_to_wgs84(121.02, 30.70)
    assert (loader.wp(0).x, loader.wp(0).y) == pytest.approx((float(lat), float(lon)), abs=1e-6)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--lat", "30.71"], "--lat and --lon"),
        (["--lat", "95", "--lon", "121"], "--lat"),
        (["--alert", "x"], "--alert and --alerts"),
        (["--lat", "30.71", "--lon", "121.03", "--alert", "x"], "not both"),
        ([], "target is required"),
        (["--lat", "30.71", "--lon", "121.03", "--dock", "nest-9"], "nest-1, nest-2"),
        (["--lat", "30.71", "--lon", "121.03", "--altitude-m", "150"], "transit_alt_m"),
        (["--lat", "30.71", "--lon", "121.03", "--at", "noon"], "--at"),
        # the limits every entry point shares (haulwatch.ingest.limits)
        (["--lat", "nan", "--lon", "121"], "option --lat: nan out of range [-90, 90]"),
        (["--lat", "30.71", "--lon", "181"], "option --lon: 181.0 out of range"),
        (["--lat", "30.71", "--lon", "121.03", "--at", "1900-01-01T10:00Z"], "outside 1990"),
        (["--alert", "a/b", "--alerts", "x.geojson"], "option --alert: 'a/b' has character '/'"),
        (["--lat", "30.71", "--lon", "121.03", "--dock", "x" * 65], "option --dock: too long"),
    ],
)
def test_bad_options(sites, capsys, extra, match):
    assert main(["plan", "--sites", str(sites), *extra]) == 2
    assert match in capsys.readouterr().err


def test_missing_sites_file(tmp_path, capsys):
    rc = main(
        ["plan", "--lat", "30.71", "--lon", "121.03", "--sites", str(tmp_path / "no.geojson")]
    )
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_sites_without_nest(tmp_path, capsys):
    folder = tmp_path / "nonest"
    folder.mkdir()
    path = folder / "sites.geojson"
    feats = [_feature("o-1", "origin", _square(121.05, 30.70))]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
    assert main(["plan", "--lat", "30.71", "--lon", "121.03", "--sites", str(path)]) == 2
    assert "no 'nest' site" in capsys.readouterr().err
