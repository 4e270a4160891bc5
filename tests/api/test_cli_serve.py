"""``haulwatch serve`` as a process: flags, environment tokens, clean stop with a stream open."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time

import httpx

from haulwatch.api.cli import build_parser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_flags_parse():
    args = build_parser().parse_args(["serve", "--port", "9001", "--db", "sqlite:///x.db",
                                      "--vehicle-url", "tcp:127.0.0.1:5760", "--dock", "N1"])
    assert (args.port, args.db_url, args.vehicle_url, args.dock_site_id, args.host) == (
        9001, "sqlite:///x.db", "tcp:127.0.0.1:5760", "N1", "127.0.0.1")


def test_bad_setting_exits_2(tmp_path):
    env = {**os.environ, "HAULWATCH_TOKENS": "ann:boss:x"}
    r = subprocess.run([sys.executable, "-m", "haulwatch.api", "serve", "--db",
                        f"sqlite:///{tmp_path / 'a.db'}"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "role 'boss'" in r.stderr


def test_serve_loads_alerts_and_stops_cleanly_with_a_stream_open(tmp_path):
    token = secrets.token_urlsafe(12)
    alerts = tmp_path / "alerts.geojson"
    alerts.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [120.6, 30.0]},
        "properties": {"alert_id": "CLI1", "kind": "gps_gap", "vehicle_id": "浙A1",
                       "start": "2024-05-01T00:00:00Z", "end": "2024-05-01T00:20:00Z",
                       "severity": "medium", "manifest_id": "", "site_id": "", "summary": "s",
                       "trip_id": "", "lon": 120.6, "lat": 30.0, "evidence": "{}"}}]}),
        encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "HAULWATCH_TOKENS": f"ops:admin:{token}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "haulwatch.api", "serve", "--port", str(port), "--db",
         f"sqlite:///{tmp_path / 'serve.db'}", "--load-alerts", str(alerts),
         # A long grace period: if the open stream held shutdown up, wait() below times out.
         "--shutdown-timeout-s", "120"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(proc.stderr.read() if proc.poll() is not None else
                                         "serve did not start") from None
                time.sleep(0.2)
        assert health["alerts"] == 1
        h = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{base}/api/alerts/CLI1", headers=h).json()["kind"] == "gps_gap"
        with httpx.Client(timeout=10) as client, client.stream(
                "GET", f"{base}/api/stream", headers=h) as stream:
            assert stream.status_code == 200
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)  # well under the 120 s grace period
        assert proc.returncode in (0, -signal.SIGINT)  # uvicorn re-raises the signal it caught
        assert "Exception in ASGI application" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
