"""The fleet through the API: two nests, two simulated drones, one queue (issue 13)."""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from haulwatch.api.app import create_app
from haulwatch.api.settings import Settings, parse_tokens
from haulwatch.drone.plan import docks_from_sites
from haulwatch.drone.sitl import SimulatedCopter
from haulwatch.ingest.dataset import read_dataset
from haulwatch.ingest.prepare import prepare
from haulwatch.ingest.synthetic import generate

SPEEDUP = 50.0
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)  # local noon: daylight at every dock


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fleet-ds")
    generate(folder, trucks=3, days=1, seed=4, bad_row_fraction=0.0, duplicate_fraction=0.0)
    docks = docks_from_sites(prepare(read_dataset(folder)).sites)
    assert len(docks) >= 2, "the generated city has two drone nests"
    return folder, docks[:2]


@pytest.fixture
def tokens():
    return {r: secrets.token_urlsafe(12) for r in ("dispatcher", "analyst", "admin")}


def _h(tokens, role):
    return {"Authorization": f"Bearer {tokens[role]}"}


def _settings(tmp_path, folder, tokens) -> Settings:
    spec = ",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items())
    return Settings(db_url=f"sqlite:///{tmp_path / 'f.db'}", tokens=tuple(parse_tokens(spec)),
                    dataset=folder, time_scale=SPEEDUP)


def _alert(alert_id, lon, lat, severity="high"):
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"alert_id": alert_id, "kind": "illegal_dump", "vehicle_id": "浙D1",
                       "start": "2026-03-02T02:00:00Z", "end": "2026-03-02T02:20:00Z",
                       "severity": severity, "manifest_id": "", "site_id": "", "summary": "s",
                       "trip_id": ""}}]}


def test_without_drones_the_fleet_is_503(tmp_path, city, tokens, monkeypatch):
    folder, _docks = city
    monkeypatch.delenv("HAULWATCH_DRONES", raising=False)
    with TestClient(create_app(_settings(tmp_path, folder, tokens), clock=lambda: NOON)) as c:
        r = c.get("/api/fleet", headers=_h(tokens, "analyst"))
        assert r.status_code == 503 and "HAULWATCH_DRONES" in r.text


def test_two_nests_two_drones_through_the_api(tmp_path, city, tokens, monkeypatch):
    folder, (d1, d2) = city
    sims = [
        SimulatedCopter(home_lat_deg=d.lat_deg, home_lon_deg=d.lon_deg, port=0,
                        speedup=SPEEDUP, prearm_delay_s=4.0).start()
        for d in (d1, d2)
    ]
    try:
        monkeypatch.setenv("HAULWATCH_DRONES",
                           f"{d1.site_id}/1={sims[0].url};{d2.site_id}/1={sims[1].url}")
        monkeypatch.setenv("HAULWATCH_FLEET_TICK_S", "0.2")
        monkeypatch.setenv("HAULWATCH_FLEET_STATE", str(tmp_path / "fleet.json"))
        monkeypatch.setenv("HAULWATCH_FLIGHT_LOGS", str(tmp_path / "logs"))
        with TestClient(create_app(_settings(tmp_path, folder, tokens), clock=lambda: NOON)) as c:
            admin, disp, reader = (_h(tokens, r) for r in ("admin", "dispatcher", "analyst"))
            for aid, d, sev in (("A1", d1, "high"), ("A2", d2, "high"), ("A3", d1, "low")):
                c.post("/api/alerts/import", json=_alert(aid, d.lon_deg, d.lat_deg + 0.003, sev),
                       headers=admin).raise_for_status()
            view = c.get("/api/fleet", headers=reader).json()
            states = {x["drone_id"]: x["state"] for x in view["drones"]}
            assert states[f"{d1.site_id}/1"] == "free" and states[f"{d2.site_id}/1"] == "free"
            assert view["rule"]["enabled"] is False  # automatic dispatch off by default
            r = c.post("/api/fleet/queue", json={"alert_id": "A3", "priority": 0}, headers=disp)
            assert r.status_code == 202, r.text
            # A3 (low) went to its nest's drone at once; A1 (high) now waits for that drone
            c.post("/api/fleet/queue", json={"alert_id": "A1"}, headers=disp).raise_for_status()
            c.post("/api/fleet/queue", json={"alert_id": "A2"}, headers=disp).raise_for_status()
            view = c.get("/api/fleet", headers=reader).json()
            flying = {x["alert_id"]: x["drone_id"] for x in view["flying"]}
            assert flying == {"A3": f"{d1.site_id}/1", "A2": f"{d2.site_id}/1"}
            assert [w["alert_id"] for w in view["waiting"]] == ["A1"]  # one mission per drone
            assert c.patch("/api/fleet/queue/A1", json={"priority": 3},
                           headers=disp).json()["waiting"][0]["priority"] == 3
            assert c.delete("/api/fleet/queue/A1", headers=disp).json()["action"] == "dropped"
            assert c.delete("/api/fleet/queue/A1", headers=disp).status_code == 422
            assert c.post("/api/fleet/queue", json={"alert_id": "nope"},
                          headers=disp).status_code == 404
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                missions = c.get("/api/missions", headers=reader).json()["items"]
                if len(missions) == 2 and all(m["status"] in ("completed", "failed")
                                              for m in missions):
                    break
                time.sleep(0.25)
            by_alert = {m["alert_id"]: m for m in missions}
            assert {a: m["status"] for a, m in by_alert.items()} == {
                "A2": "completed", "A3": "completed"}, [m["reason"] for m in missions]
            done = by_alert["A2"]
            assert done["progress"]["phase"] == "completed" and done["dock_site_id"] == d2.site_id
            # the scheduler's reason passes through as code + params (the English text stays)
            assert done["progress"]["reason_code"] == "done"
            assert done["progress"]["reason_params"]["drone"] == (
                f"{d2.site_id}/1")
            assert done["reason"].endswith("]") and "mission completed" in done["reason"]
            ev = c.get(f"/api/missions/{done['mission_id']}/evidence", headers=reader).json()
            assert ev["track"]["geometry"]["type"] == "LineString"
            log = c.get(f"/api/missions/{done['mission_id']}/log", headers=reader)
            assert log.status_code == 200 and len(log.content) > 1000
            assert log.content[8] == 0xFD  # .tlog: 8-byte time, then a MAVLink 2 frame
            assert c.get("/api/missions/nope/log", headers=reader).status_code == 404
            history = c.get("/api/alerts/A2", headers=reader).json()["history"]
            assert history[-1]["by"] == "drone"
            view = c.get("/api/fleet", headers=reader).json()
            assert view["flying"] == [] and {x["action"] for x in view["log"]} >= {"launch", "done"}
    finally:
        for sim in sims:
            sim.stop()


def test_live_alert_auto_dispatched_only_when_the_rule_is_on(tmp_path, city, tokens, monkeypatch):
    from haulwatch.api.services.fleet import FleetService, auto_dispatch
    from haulwatch.drone.flight import FlightRecord

    folder, (d1, _d2) = city
    flown: list[str] = []

    def fake_flyer(url, mission, *, mission_id, abort, progress=None):
        flown.append(mission.alert_id)
        record = FlightRecord(mission_id=mission_id, alert_id=mission.alert_id)
        record.finish("completed")
        return record

    monkeypatch.setenv("HAULWATCH_DRONES", f"{d1.site_id}/1=tcp:127.0.0.1:9")
    with TestClient(create_app(_settings(tmp_path, folder, tokens), clock=lambda: NOON)) as c:
        svc = c.app.state.service
        c.post("/api/alerts/import", json=_alert("L1", d1.lon_deg, d1.lat_deg + 0.003),
               headers=_h(tokens, "admin")).raise_for_status()
        for enabled in ("off", "on"):
            env = {"HAULWATCH_DRONES": f"{d1.site_id}/1=tcp:127.0.0.1:9",
                   "HAULWATCH_AUTO_DISPATCH": enabled}
            svc._fleet_service = FleetService(svc, env=env, flyer=fake_flyer, start_ticker=False)
            auto_dispatch(svc, ["L1"])
            svc._fleet_service.runner.wait_idle(30)
            assert flown == ([] if enabled == "off" else ["L1"])
        missions = c.get("/api/missions", params={"alert_id": "L1"},
                         headers=_h(tokens, "analyst")).json()["items"]
        assert [m["status"] for m in missions] == ["completed"]
