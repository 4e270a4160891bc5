"""``haulwatch sim`` as a process until Ctrl-C, and ``haulwatch fly`` against it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from haulwatch.api.cli import main
from haulwatch.api.cli.fly import format_progress
from haulwatch.api.cli.sim import parse_home

HOME = (30.70, 121.02)


def write_sites(folder) -> str:
    d = 0.0002
    lat, lon = HOME
    nest = [
        [lon - d, lat - d],
        [lon + d, lat - d],
        [lon + d, lat + d],
        [lon - d, lat + d],
        [lon - d, lat - d],
    ]
    sites = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"site_id": "nest-1", "kind": "nest", "name": "Dock 1"},
                "geometry": {"type": "Polygon", "coordinates": [nest]},
            }
        ],
    }
    path = folder / "sites.geojson"
    path.write_text(json.dumps(sites), encoding="utf-8")
    return str(path)


def start_sim_process(*extra: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "haulwatch.api",
            "sim",
            "--home",
            f"{HOME[0]},{HOME[1]},4",
            "--port",
            "0",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline()
    match = re.search(r"on (tcp:127\.0\.0\.1:\d+)", first)
    if match is None:
        proc.kill()
        raise AssertionError(f"unexpected first line {first!r}; stderr: {proc.stderr.read()}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, out


class TestParseHome:
    def test_valid(self):
        assert parse_home("30.7,121.02") == (30.7, 121.02, 0.0)
        assert parse_home(" 30.7, 121.02, 4.5 ") == (30.7, 121.02, 4.5)

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("30.7", "LAT,LON"),
            ("a,b", "numbers"),
            ("95,121", "latitude"),
            ("30,200", "longitude"),
            ("30,120,nan", "altitude"),
        ],
    )
    def test_invalid(self, text, message):
        with pytest.raises(ValueError, match=message):
            parse_home(text)


def test_sim_bad_home_exits_2(capsys):
    assert main(["sim", "--home", "north"]) == 2
    assert "option --home" in capsys.readouterr().err


def test_sim_bad_param_exits_2(capsys):
    assert main(["sim", "--home", "30,120", "--port", "0", "--param", "NOPE=1"]) == 2
    assert "unknown parameter 'NOPE'" in capsys.readouterr().err


def test_sim_runs_until_ctrl_c_and_fly_completes(tmp_path, capsys):
    proc, url = start_sim_process("--speedup", "25", "--prearm-delay-s", "3")
    try:
        sites = write_sites(tmp_path)
        record_path = tmp_path / "flight.json"
        code = main(
            [
                "fly",
                "--connect",
                url,
                "--lat",
                "30.7030",
                "--lon",
                "121.0230",
                "--sites",
                sites,
                "--dock",
                "nest-1",
                "--record",
                str(record_path),
                "--time-scale",
                "auto",  # reads SIM_SPEEDUP = 25
                "--heartbeat-timeout-s",
                "40",
                "--orbit-radius-m",
                "30",
                "--orbit-turns",
                "1",
                "--altitude-m",
                "40",
                "--no-daylight",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0, out
        assert "COMPLETED" in out and "NAV_LOITER_TURNS" in out
        # re-planned within the vehicle's limits: 12 m/s asked, WPNAV_SPEED 10 m/s
        assert "Vehicle limits: WPNAV_SPEED 10 m/s, BATT_CAPACITY 3300 mAh" in out
        assert "re-planned at 10 m/s" in out
        assert re.search(r"\] flying\s+AUTO\s+ARMED", out)
        record = json.loads(record_path.read_text(encoding="utf-8"))
        assert record["outcome"] == "completed" and record["dock_site_id"] == "nest-1"
        assert record["photos"] and record["track"]
        assert proc.poll() is None  # still running after the client left
    finally:
        code, out = stop(proc)
    assert code == 0
    assert "stopped after" in out
    assert "Flight plan received" in out and "Arming motors" in out


def test_fly_refuses_unknown_dock(tmp_path, capsys):
    sites = write_sites(tmp_path)
    code = main(
        [
            "fly",
            "--connect",
            "tcp:127.0.0.1:1",
            "--lat",
            "30.701",
            "--lon",
            "121.021",
            "--sites",
            sites,
            "--dock",
            "nest-9",
        ]
    )
    assert code == 2
    assert "nest-9" in capsys.readouterr().err


def test_fly_without_vehicle_fails_cleanly(tmp_path, capsys):
    sites = write_sites(tmp_path)
    started = time.monotonic()
    code = main(
        [
            "fly",
            "--connect",
            "tcp:127.0.0.1:1",
            "--lat",
            "30.701",
            "--lon",
            "121.021",
            "--sites",
            sites,
            "--no-daylight",
        ]
    )
    assert code == 1
    assert "cannot open MAVLink connection" in capsys.readouterr().err
    assert time.monotonic() - started < 20


def test_fly_bad_time_scale_exits_2(tmp_path, capsys):
    sites = write_sites(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(
            [
                "fly",
                "--connect",
                "tcp:127.0.0.1:1",
                "--lat",
                "30.7",
                "--lon",
                "121.0",
                "--sites",
                sites,
                "--time-scale",
                "-3",
            ]
        )
    assert exc.value.code == 2
    assert "--time-scale" in capsys.readouterr().err


def test_format_progress():
    line = format_progress(
        {
            "phase": "flying",
            "mode": "AUTO",
            "armed": True,
            "seq": 4,
            "lat_deg": 30.7,
            "lon_deg": 121.02,
            "alt_rel_m": 50.0,
            "battery_pct": 88.0,
            "photos": 3,
            "t_s": 12.5,
        }
    )
    assert (
        "flying" in line
        and "ARMED" in line
        and "item 4" in line
        and "88%" in line
        and "photos 3" in line
    )


def test_fly_bad_min_battery_exits_2(tmp_path, capsys):
    sites = write_sites(tmp_path)
    args = ["fly", "--connect", "tcp:127.0.0.1:1", "--lat", "30.7", "--lon", "121.0"]
    code = main([*args, "--sites", sites, "--min-battery-pct", "120"])
    assert code == 2
    assert "--min-battery-pct" in capsys.readouterr().err
