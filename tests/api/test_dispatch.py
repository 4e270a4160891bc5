"""Drone dispatch through the API: plan, fly the in-process simulator, record, refuse, abort."""

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
# Missions are planned for this time, never the wall clock: local noon in Zhejiang
# (UTC+8), a day of the generated fleet, in daylight at every dock of the city.
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)
NIGHT = datetime(2026, 3, 2, 18, 30, tzinfo=timezone.utc)  # 02:30 local


def _app(settings, now=NOON):
    return create_app(settings, clock=lambda: now)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dispatch-ds")
    generate(folder, trucks=3, days=1, seed=4, bad_row_fraction=0.0, duplicate_fraction=0.0)
    dataset = prepare(read_dataset(folder))
    docks = docks_from_sites(dataset.sites)
    assert docks, "the generated city has drone nests"
    return folder, docks[0]


@pytest.fixture
def tokens():
    return {r: secrets.token_urlsafe(12) for r in ("dispatcher", "analyst", "admin")}


def _settings(tmp_path, folder, tokens, **kw) -> Settings:
    spec = ",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items())
    return Settings(db_url=f"sqlite:///{tmp_path / 'd.db'}", tokens=tuple(parse_tokens(spec)),
                    dataset=folder, **kw)


def _alert(alert_id: str, lon: float, lat: float) -> dict:
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"alert_id": alert_id, "kind": "illegal_dump", "vehicle_id": "浙D1",
                       "start": "2026-03-02T02:00:00Z", "end": "2026-03-02T02:20:00Z",
                       "severity": "high", "manifest_id": "", "site_id": "", "summary": "s",
                       "trip_id": ""}}]}


def _h(tokens, role):
    return {"Authorization": f"Bearer {tokens[role]}"}


def _wait_final(c, tokens, mission_id, timeout_s=120.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = c.get(f"/api/missions/{mission_id}", headers=_h(tokens, "analyst")).json()
        if m["status"] in ("completed", "failed", "aborted"):
            return m
        time.sleep(0.25)
    raise AssertionError(f"mission {mission_id} still {m['status']}: {m['progress']}")


def test_dispatch_flies_the_simulator_to_completion(tmp_path, registry, tokens):
    folder, dock = registry
    sim = SimulatedCopter(home_lat_deg=dock.lat_deg, home_lon_deg=dock.lon_deg, port=0,
                          speedup=SPEEDUP).start()
    try:
        settings = _settings(tmp_path, folder, tokens, vehicle_url=sim.url, time_scale=SPEEDUP)
        with TestClient(_app(settings)) as c:
            hub = c.app.state.service.hub
            events: list[tuple[str, dict]] = []
            publish = hub.publish
            hub.publish = lambda event, data: (events.append((event, data)), publish(event, data))
            c.post("/api/alerts/import", json=_alert("NEAR", dock.lon_deg, dock.lat_deg + 0.004),
                   headers=_h(tokens, "admin")).raise_for_status()
            r = c.post("/api/alerts/NEAR/dispatch", json={"dock_site_id": dock.site_id},
                       headers=_h(tokens, "dispatcher"))
            assert r.status_code == 202, r.text
            mission = r.json()
            assert mission["status"] == "planned" and mission["dock_site_id"] == dock.site_id
            assert mission["progress"]["estimate"]["distance_total_m"] > 800
            plan = c.get(f"/api/missions/{mission['mission_id']}/plan",
                         headers=_h(tokens, "analyst")).json()
            assert plan["fileType"] == "Plan" and plan["mission"]["items"]
            done = _wait_final(c, tokens, mission["mission_id"])
            assert done["status"] == "completed", done["reason"]
            rec = done["flight_record"]
            assert rec["outcome"] == "completed" and rec["mission_id"] == mission["mission_id"]
            assert rec["items_reached"] and len(rec["track"]) > 10
            # progress went out on the stream, in order, ending with the stored record
            seq = [d["status"] for e, d in events if e == "mission"]
            assert seq[0] == "planned" and seq[-1] == "completed"
            assert "uploading" in seq and "flying" in seq
            assert seq.index("uploading") < seq.index("flying")
            assert any("lat_deg" in d["progress"] for e, d in events
                       if e == "mission" and d["status"] == "flying")
            listed = c.get("/api/missions", params={"alert_id": "NEAR"},
                           headers=_h(tokens, "analyst")).json()
            assert listed["total"] == 1
            # the stored progress is the flight's last status, not a throttled one (issue 13)
            assert done["progress"]["phase"] == "completed" and done["progress"]["armed"] is False
            assert done["progress"]["alt_rel_m"] < 1.0
            ev = c.get(f"/api/missions/{mission['mission_id']}/evidence",
                       headers=_h(tokens, "analyst")).json()
            assert ev["track"]["geometry"]["type"] == "LineString"
            assert len(ev["photos"]["features"]) == len(rec["photos"])
            history = c.get("/api/alerts/NEAR", headers=_h(tokens, "analyst")).json()["history"]
            assert history[-1]["by"] == "drone" and "无人机巡查" in history[-1]["note"]
    finally:
        sim.stop()


def test_infeasible_dispatch_is_422_with_reason_and_recorded(tmp_path, registry, tokens):
    folder, dock = registry
    with TestClient(_app(_settings(tmp_path, folder, tokens))) as c:
        c.post("/api/alerts/import", json=_alert("FAR", dock.lon_deg + 1.0, dock.lat_deg),
               headers=_h(tokens, "admin")).raise_for_status()
        r = c.post("/api/alerts/FAR/dispatch", json={"dock_site_id": dock.site_id},
                   headers=_h(tokens, "dispatcher"))
        assert r.status_code == 422
        d = r.json()["detail"][0]
        assert d["type"] == "out_of_range" and "m from dock" in d["msg"]
        refused = c.get(f"/api/missions/{d['mission_id']}", headers=_h(tokens, "analyst")).json()
        assert refused["status"] == "refused" and refused["reason"].startswith("out_of_range")
        # the refusal also as code + params (rendered per language by the faces)
        import pyproj

        _, _, far_m = pyproj.Geod(ellps="WGS84").inv(dock.lon_deg, dock.lat_deg,
                                                     dock.lon_deg + 1.0, dock.lat_deg)
        assert d["code"] == "refused.out_of_range" and d["params"]["distance_m"] == round(far_m)
        assert refused["progress"]["reason_code"] == "refused.out_of_range"
        assert refused["progress"]["reason_params"] == d["params"]
        assert c.get(f"/api/missions/{d['mission_id']}/plan",
                     headers=_h(tokens, "analyst")).status_code == 404
        r = c.post("/api/alerts/FAR/dispatch", json={"dock_site_id": "NOPE"},
                   headers=_h(tokens, "dispatcher"))
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "dock_site_id"]
        assert c.post("/api/alerts/GONE/dispatch", json={},
                      headers=_h(tokens, "dispatcher")).status_code == 404


def test_without_vehicle_mission_waits_and_can_be_aborted(tmp_path, registry, tokens):
    folder, dock = registry
    with TestClient(_app(_settings(tmp_path, folder, tokens))) as c:
        c.post("/api/alerts/import", json=_alert("A", dock.lon_deg, dock.lat_deg + 0.003),
               headers=_h(tokens, "admin")).raise_for_status()
        m = c.post("/api/alerts/A/dispatch", json={}, headers=_h(tokens, "dispatcher")).json()
        assert m["status"] == "planned" and m["reason"].startswith("no_vehicle")
        a = c.post(f"/api/missions/{m['mission_id']}/abort", headers=_h(tokens, "dispatcher"))
        assert a.status_code == 200 and a.json()["status"] == "aborted"
        assert "dispatcher-user" in a.json()["reason"]


def test_unfinished_missions_are_failed_after_restart(tmp_path, registry, tokens):
    folder, dock = registry
    with TestClient(_app(_settings(tmp_path, folder, tokens))) as c:
        c.post("/api/alerts/import", json=_alert("B", dock.lon_deg, dock.lat_deg + 0.003),
               headers=_h(tokens, "admin")).raise_for_status()
        m = c.post("/api/alerts/B/dispatch", json={}, headers=_h(tokens, "dispatcher")).json()
        c.app.state.service.store.update_mission(m["mission_id"], status="flying")
    with TestClient(_app(_settings(tmp_path, folder, tokens))) as c:
        again = c.get(f"/api/missions/{m['mission_id']}", headers=_h(tokens, "analyst")).json()
    assert again["status"] == "failed" and "restarted" in again["reason"]


def test_abort_while_flying_brings_the_drone_back(tmp_path, registry, tokens):
    folder, dock = registry
    sim = SimulatedCopter(home_lat_deg=dock.lat_deg, home_lon_deg=dock.lon_deg, port=0,
                          speedup=SPEEDUP).start()
    try:
        settings = _settings(tmp_path, folder, tokens, vehicle_url=sim.url, time_scale=SPEEDUP)
        with TestClient(_app(settings)) as c:
            c.post("/api/alerts/import", json=_alert("AB", dock.lon_deg, dock.lat_deg + 0.02),
                   headers=_h(tokens, "admin")).raise_for_status()
            m = c.post("/api/alerts/AB/dispatch", json={"dock_site_id": dock.site_id},
                       headers=_h(tokens, "dispatcher")).json()
            deadline = time.monotonic() + 60
            while c.get(f"/api/missions/{m['mission_id']}",
                        headers=_h(tokens, "analyst")).json()["status"] != "flying":
                assert time.monotonic() < deadline, "never started flying"
                time.sleep(0.1)
            r = c.post(f"/api/missions/{m['mission_id']}/abort", headers=_h(tokens, "dispatcher"))
            assert r.status_code == 200
            done = _wait_final(c, tokens, m["mission_id"])
            assert done["status"] == "aborted", done["reason"]
            assert done["flight_record"]["outcome"] == "aborted"
    finally:
        sim.stop()


def test_dispatch_plans_for_the_service_clock_not_the_wall_clock(tmp_path, registry, tokens):
    folder, dock = registry
    with TestClient(_app(_settings(tmp_path, folder, tokens), now=NIGHT)) as c:
        c.post("/api/alerts/import", json=_alert("N", dock.lon_deg, dock.lat_deg + 0.003),
               headers=_h(tokens, "admin")).raise_for_status()
        r = c.post("/api/alerts/N/dispatch", json={"dock_site_id": dock.site_id},
                   headers=_h(tokens, "dispatcher"))
        assert r.status_code == 422, r.text
        assert r.json()["detail"][0]["type"] == "daylight"


def test_dispatch_at_another_time_or_outside_daylight(tmp_path, registry, tokens):
    # issue 13: at night the service can plan for another time, or a dispatcher can
    # take responsibility for a night flight (recorded on the mission)
    folder, dock = registry
    with TestClient(_app(_settings(tmp_path, folder, tokens), now=NIGHT)) as c:
        c.post("/api/alerts/import", json=_alert("N", dock.lon_deg, dock.lat_deg + 0.003),
               headers=_h(tokens, "admin")).raise_for_status()
        later = c.post("/api/alerts/N/dispatch", headers=_h(tokens, "dispatcher"),
                       json={"dock_site_id": dock.site_id, "at": "2026-03-03T12:00:00+08:00"})
        assert later.status_code == 202, later.text
        assert later.json()["progress"]["estimate"]["planned_start"] == "2026-03-03T04:00:00Z"
        night = c.post("/api/alerts/N/dispatch", headers=_h(tokens, "dispatcher"),
                       json={"dock_site_id": dock.site_id, "skip_daylight": True})
        assert night.status_code == 202, night.text
        assert night.json()["progress"]["estimate"]["daylight_skipped_by"] == "dispatcher-user"
        naive = c.post("/api/alerts/N/dispatch", headers=_h(tokens, "dispatcher"),
                       json={"dock_site_id": dock.site_id, "at": "2026-03-03T12:00:00"})
        assert naive.status_code == 422 and naive.json()["detail"][0]["loc"] == ["body", "at"]
