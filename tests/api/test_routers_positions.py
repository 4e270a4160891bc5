"""POST /api/positions: validation, idempotence, live alerts (stored, streamed), restart."""

from __future__ import annotations

import queue
import secrets
import threading

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from test_routers_stream import ServerThread, next_matching, read_events

from haulwatch.api.app import create_app
from haulwatch.api.settings import Settings, parse_tokens
from haulwatch.ingest.dataset import read_dataset
from haulwatch.ingest.prepare import prepare
from haulwatch.ingest.synthetic import generate
from haulwatch.routes.audit import audit


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pos-ds")
    generate(folder, trucks=6, days=1, seed=21, sensors="mixed", coord_system="gcj02",
             violation_rate=0.3, bad_row_fraction=0.0, duplicate_fraction=0.0)
    raw = read_dataset(folder)
    return folder, raw, audit(prepare(raw)).alerts


def _settings(tmp_path, folder, tokens, **kw) -> Settings:
    spec = ",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items())
    return Settings(db_url=f"sqlite:///{tmp_path / 'pos.db'}", tokens=tuple(parse_tokens(spec)),
                    dataset=folder, **kw)


@pytest.fixture
def tokens():
    return {r: secrets.token_urlsafe(12) for r in ("device", "analyst", "admin")}


def _as_json(tracks: pd.DataFrame) -> list[dict]:
    """Tracks rows as a terminal would push them (times with Z, coords as in the dataset)."""
    out = pd.DataFrame({
        "vehicle_id": tracks["vehicle_id"].astype(str),
        "time": tracks["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lon": tracks["lon"], "lat": tracks["lat"],
        "speed_kmh": tracks["speed_kmh"], "load": tracks["load"].astype(object),
        "lift": tracks["lift"],
    })
    recs = out.to_dict("records")
    for r in recs:  # JSON has no NaN: absent optional values are left out
        for k in ("speed_kmh", "load", "lift"):
            v = r[k]
            if v is None or (isinstance(v, float) and np.isnan(v)):
                del r[k]
    return recs


def _batches(raw, freq: str) -> list[list[dict]]:
    t = raw.tracks.sort_values("time", kind="stable")
    return [_as_json(c) for _, c in t.groupby(t["time"].dt.floor(freq), sort=True)]


def test_validation_duplicates_and_roles(tmp_path, dataset, tokens):
    folder, raw, _ = dataset
    good = _as_json(raw.tracks.head(3))
    points = [
        good[0],
        {"vehicle_id": "浙A1", "time": "not a time", "lon": 120.6, "lat": 30.0},
        {"vehicle_id": "浙A1", "time": "2026-03-02T08:00:00", "lon": 999, "lat": 30.0},
        {"time": "2026-03-02T08:00:00", "lon": 120.6, "lat": 30.0},
        {"vehicle_id": "浙A1", "time": 1772409600, "lon": "x", "lat": 30.0},
        good[1], good[1],
        {**good[2], "load": "overfull"},  # bad optional value: cleared, point kept
    ]
    with TestClient(create_app(_settings(tmp_path, folder, tokens))) as c:
        h = {"Authorization": f"Bearer {tokens['device']}"}
        r = c.post("/api/positions", json={"points": points}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["accepted"] == 3 and body["duplicates"] == 1
        assert sorted((x["index"], x["field"]) for x in body["rejected"]) == [
            (1, "time"), (2, "lon"), (3, "vehicle_id"), (4, "lon")]
        assert all(x["reason"] for x in body["rejected"])
        again = c.post("/api/positions", json={"points": good}, headers=h).json()
        assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 3, [])
        assert c.post("/api/positions", json={"points": good},
                      headers={"Authorization": f"Bearer {tokens['analyst']}"}).status_code == 403
        bad = c.post("/api/positions", json={"points": "nope"}, headers=h)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][:2] == ["body", "points"]


def test_pushed_day_gives_batch_alerts_and_survives_restart(tmp_path, dataset, tokens):
    folder, raw, batch = dataset
    h = {"Authorization": f"Bearer {tokens['device']}"}
    ro = {"Authorization": f"Bearer {tokens['analyst']}"}
    batches = _batches(raw, "2h")
    half = len(batches) // 2
    new_ids: list[str] = []
    with TestClient(create_app(_settings(tmp_path, folder, tokens))) as c:
        for b in batches[:half]:
            new_ids += c.post("/api/positions", json={"points": b}, headers=h).json()["new_alerts"]
    # restart mid-day: the open windows are rebuilt from the stored points
    with TestClient(create_app(_settings(tmp_path, folder, tokens))) as c:
        for b in batches[half:]:
            new_ids += c.post("/api/positions", json={"points": b}, headers=h).json()["new_alerts"]
        stored = c.get("/api/alerts", params={"limit": 1000}, headers=ro).json()["items"]
    assert sorted(a["alert_id"] for a in stored) == sorted(batch["alert_id"])
    assert set(new_ids) <= set(batch["alert_id"]) and len(new_ids) >= len(batch) // 2
    by_id = batch.set_index("alert_id")
    for a in stored:
        assert a["kind"] == by_id.at[a["alert_id"], "kind"]
        assert a["start"] == by_id.at[a["alert_id"], "start"].strftime("%Y-%m-%dT%H:%M:%SZ")
        assert a["end"] == by_id.at[a["alert_id"], "end"].strftime("%Y-%m-%dT%H:%M:%SZ")


def test_new_alert_from_a_push_reaches_the_stream(tmp_path, dataset, tokens):
    folder, raw, _ = dataset
    srv = ServerThread(create_app(_settings(tmp_path, folder, tokens, keepalive_s=5)))
    base = srv.start()
    out: queue.Queue = queue.Queue()
    stop = threading.Event()
    try:
        threading.Thread(target=read_events, daemon=True, args=(
            f"{base}/api/stream", {"access_token": tokens["analyst"]}, {}, out, stop)).start()
        next_matching(out, lambda i: i == ("comment", "connected"))
        raised: list[str] = []
        with httpx.Client(timeout=60) as client:
            for b in _batches(raw, "3h"):
                r = client.post(f"{base}/api/positions", json={"points": b},
                                headers={"Authorization": f"Bearer {tokens['device']}"})
                r.raise_for_status()
                raised += r.json()["new_alerts"]
                if raised:
                    break
        assert raised
        ev = next_matching(out, lambda i: i[0] == "alert" and i[1]["alert_id"] == raised[0])
        assert ev[1]["status"] == "open" and ev[1]["geometry"]["type"] in ("Point", "LineString")
    finally:
        stop.set()
        srv.stop()


def test_serve_config_gives_the_alerts_of_audit_config(tmp_path, dataset, tokens, monkeypatch):
    """``haulwatch serve --config T`` audits live with the thresholds ``audit --config T`` uses."""
    import json

    import uvicorn

    from haulwatch.api.cli import main

    folder, raw, default_batch = dataset
    toml = tmp_path / "audit.toml"
    toml.write_text("[audit]\ngap_max_s = 3600\n", encoding="utf-8")
    assert main(["audit", str(folder), "--out", str(tmp_path / "out"),
                 "--config", str(toml)]) == 0
    doc = json.loads((tmp_path / "out" / "alerts.geojson").read_text(encoding="utf-8"))
    batch_ids = sorted(f["properties"]["alert_id"] for f in doc["features"])
    assert batch_ids != sorted(default_batch["alert_id"])  # the threshold matters here

    served = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: served.setdefault(
        "app", self.config.app))
    spec = ",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items())
    monkeypatch.setenv("HAULWATCH_TOKENS", spec)
    monkeypatch.delenv("HAULWATCH_AUDIT_CONFIG", raising=False)
    assert main(["serve", "--dataset", str(folder), "--db", f"sqlite:///{tmp_path / 's.db'}",
                 "--config", str(toml), "--port", "0"]) == 0
    h = {"Authorization": f"Bearer {tokens['device']}"}
    with TestClient(served["app"]) as c:
        for b in _batches(raw, "2h"):
            c.post("/api/positions", json={"points": b}, headers=h).raise_for_status()
        stored = c.get("/api/alerts", params={"limit": 1000},
                       headers={"Authorization": f"Bearer {tokens['analyst']}"}).json()["items"]
    assert sorted(a["alert_id"] for a in stored) == batch_ids


def test_audit_config_from_the_environment(tmp_path, monkeypatch):
    toml = tmp_path / "a.toml"
    toml.write_text("gap_max_s = 1200\n", encoding="utf-8")
    monkeypatch.setenv("HAULWATCH_AUDIT_CONFIG", str(toml))
    from haulwatch.api.app import audit_config

    settings = Settings.from_env()
    assert settings.audit_config == toml
    assert audit_config(settings).gap_max_s == 1200.0
    over = Settings.from_env(audit_overrides=(("gap_max_s", "900"),))
    assert audit_config(over).gap_max_s == 900.0
    monkeypatch.setenv("HAULWATCH_AUDIT_CONFIG", str(tmp_path / "missing.toml"))
    from haulwatch.errors import UserError

    with pytest.raises(UserError, match=r"missing\.toml"):
        audit_config(Settings.from_env())
