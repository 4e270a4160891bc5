"""The HTTP service through TestClient: roles on every endpoint, alerts, status, import."""

from __future__ import annotations

import secrets

import pytest
from fastapi.testclient import TestClient

from haulwatch.api.app import create_app
from haulwatch.api.settings import ROLES, Settings, parse_tokens


def _tokens() -> dict[str, str]:
    return {role: secrets.token_urlsafe(16) for role in ROLES}


def _settings(db_url: str, tokens: dict[str, str], **kw) -> Settings:
    spec = ",".join(f"{role}-user:{role}:{tok}" for role, tok in tokens.items())
    return Settings(db_url=db_url, tokens=tuple(parse_tokens(spec)), **kw)


def _feature(alert_id: str, *, kind: str = "illegal_dump", vehicle: str = "浙F·12345",
             start: str = "2024-05-01T06:00:00Z", end: str = "2024-05-01T06:10:00Z",
             lon: float = 120.60, lat: float = 30.00, summary: str = "stopped loaded") -> dict:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "alert_id": alert_id, "kind": kind, "vehicle_id": vehicle, "start": start,
            "end": end, "severity": "high", "manifest_id": "", "site_id": "", "summary": summary,
            "trip_id": "", "lon": lon, "lat": lat, "evidence": {"stop_s": 600},
        },
    }


def _fc(*features: dict) -> dict:
    return {"type": "FeatureCollection", "features": list(features)}


@pytest.fixture
def tokens() -> dict[str, str]:
    return _tokens()


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'hw.db'}"


@pytest.fixture
def client(db_url, tokens):
    app = create_app(_settings(db_url, tokens))
    with TestClient(app) as c:
        c.post("/api/alerts/import", json=_fc(_feature("A1"), _feature(
            "A2", kind="gps_gap", vehicle="浙A00001", start="2024-05-02T01:00:00Z",
            end="2024-05-02T02:00:00Z", lon=121.0, lat=31.0)),
            headers=_auth(tokens["admin"]))
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


READ = ("analyst", "dispatcher", "admin")
DISPATCH = ("dispatcher", "admin")

# endpoint × allowed roles → the status an allowed role gets (fresh store holding A1, A2)
ENDPOINTS = [
    ("GET", "/api/alerts", None, READ, 200),
    ("GET", "/api/alerts.geojson", None, READ, 200),
    ("GET", "/api/alerts/A1", None, READ, 200),
    ("POST", "/api/alerts/A1/status", {"status": "acknowledged"}, DISPATCH, 200),
    ("POST", "/api/alerts/import", _fc(_feature("A3")), ("admin",), 200),
    ("POST", "/api/positions", {"points": []}, ("device", "admin"), 200),
    ("POST", "/api/alerts/A1/dispatch", {}, DISPATCH, 422),  # no dataset → no docks
    ("GET", "/api/missions", None, READ, 200),
    ("GET", "/api/missions/nope", None, READ, 404),
    ("GET", "/api/missions/nope/plan", None, READ, 404),
    ("POST", "/api/missions/nope/abort", None, DISPATCH, 404),
    ("GET", "/api/sites.geojson", None, READ, 200),
    ("GET", "/api/routes.geojson", None, READ, 200),
    ("GET", "/api/stream", None, READ, None),  # allowed: streams forever (see test_stream)
]


_CASES = [
    (*ep, role) for ep in ENDPOINTS for role in (*ROLES, "none", "bad")
    if not (ep[4] is None and role in ep[3])  # allowed stream clients: see test_stream.py
]


@pytest.mark.parametrize(("method", "path", "body", "allowed", "ok", "role"), _CASES,
                         ids=[f"{c[0]} {c[1]} as {c[5]}" for c in _CASES])
def test_role_table(client, tokens, method, path, body, allowed, ok, role):
    if role == "none":
        headers = {}
    elif role == "bad":
        headers = _auth("not-a-token")
    else:
        headers = _auth(tokens[role])
    r = client.request(method, path, json=body, headers=headers)
    if role in ("none", "bad"):
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert "token" in r.json()["detail"]
    elif role in allowed:
        assert r.status_code == ok, r.text
    else:
        assert r.status_code == 403
        assert role in r.json()["detail"]


def test_health_is_open_and_counts(client):
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.json()["alerts"] == 2


def test_list_filters_and_paging(client, tokens):
    h = _auth(tokens["analyst"])
    body = client.get("/api/alerts", headers=h).json()
    assert body["total"] == 2
    assert [a["alert_id"] for a in body["items"]] == ["A2", "A1"]  # newest first
    assert body["items"][1]["start"] == "2024-05-01T06:00:00Z"
    assert body["items"][1]["geometry"] == {"type": "Point", "coordinates": [120.6, 30.0]}
    # vehicle compared normalized (spaces, '·', case)
    assert client.get("/api/alerts", params={"vehicle_id": "浙f 12345"},
                      headers=h).json()["total"] == 1
    assert client.get("/api/alerts", params={"kind": "gps_gap"}, headers=h).json()["items"][0][
        "alert_id"] == "A2"
    assert client.get("/api/alerts", params={"bbox": "120.5,29.9,120.7,30.1"},
                      headers=h).json()["total"] == 1
    # a naive time is local (Asia/Shanghai): 2024-05-02 08:30 local = 00:30Z, before A2 starts
    assert client.get("/api/alerts", params={"start": "2024-05-02T00:00:00",
                                              "end": "2024-05-02T08:30:00"},
                      headers=h).json()["total"] == 0
    assert client.get("/api/alerts", params={"start": "2024-05-02T01:30:00Z"},
                      headers=h).json()["total"] == 1
    page = client.get("/api/alerts", params={"limit": 1, "offset": 1}, headers=h).json()
    assert page["total"] == 2 and [a["alert_id"] for a in page["items"]] == ["A1"]


@pytest.mark.parametrize(("params", "field"), [
    ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "10,50,0,60"}, "bbox"),
    ({"kind": "speeding"}, "kind"),
    ({"status": "closed"}, "status"),
    ({"start": "yesterday"}, "start"),
    ({"start": "2024-05-02T00:00:00Z", "end": "2024-05-01T00:00:00Z"}, "end"),
    ({"limit": 0}, "limit"),
    ({"offset": -1}, "offset"),
])
def test_bad_query_names_the_field(client, tokens, params, field):
    r = client.get("/api/alerts", params=params, headers=_auth(tokens["analyst"]))
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert any(field in d["loc"] for d in detail), detail


def test_geojson_features(client, tokens):
    fc = client.get("/api/alerts.geojson", params={"kind": "illegal_dump"},
                    headers=_auth(tokens["analyst"])).json()
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == 1
    props = fc["features"][0]["properties"]
    assert props["alert_id"] == "A1" and props["status"] == "open"
    assert fc["features"][0]["geometry"]["coordinates"] == [120.6, 30.0]


def test_status_change_history_and_conflict(client, tokens):
    h = _auth(tokens["dispatcher"])
    r = client.post("/api/alerts/A1/status", json={"status": "acknowledged", "note": "on it",
                                                   "expected_version": 1}, headers=h)
    assert r.status_code == 200
    detail = r.json()
    assert detail["status"] == "acknowledged" and detail["status_version"] == 2
    assert [(e["status"], e["by"], e["note"]) for e in detail["history"]] == [
        ("open", "admin-user", ""), ("acknowledged", "dispatcher-user", "on it")]
    assert detail["history"][-1]["at"].endswith("Z")
    # a second dispatcher who still saw version 1 is refused, nothing overwritten
    r = client.post("/api/alerts/A1/status", json={"status": "dismissed", "expected_version": 1},
                    headers=_auth(tokens["admin"]))
    assert r.status_code == 409
    assert r.json()["detail"][0]["loc"] == ["body", "expected_version"]
    assert r.json()["detail"][0]["current_version"] == 2
    now = client.get("/api/alerts/A1", headers=h).json()
    assert now["status"] == "acknowledged" and len(now["history"]) == 2


@pytest.mark.parametrize(("body", "field"), [
    ({"status": "closed"}, "status"),
    ({}, "status"),
    ({"status": "open", "expected_version": 0}, "expected_version"),
    ({"status": "open", "extra": 1}, "extra"),
])
def test_bad_status_body(client, tokens, body, field):
    r = client.post("/api/alerts/A1/status", json=body, headers=_auth(tokens["dispatcher"]))
    assert r.status_code == 422
    assert any(field in d["loc"] for d in r.json()["detail"])


def test_unknown_alert_is_404(client, tokens):
    r = client.get("/api/alerts/NOPE", headers=_auth(tokens["analyst"]))
    assert r.status_code == 404 and "NOPE" in r.json()["detail"][0]["msg"]
    r = client.post("/api/alerts/NOPE/status", json={"status": "open"},
                    headers=_auth(tokens["dispatcher"]))
    assert r.status_code == 404


def test_reimport_keeps_status_and_updates_content(client, tokens):
    admin = _auth(tokens["admin"])
    client.post("/api/alerts/A1/status", json={"status": "confirmed"},
                headers=_auth(tokens["dispatcher"]))
    same = client.post("/api/alerts/import", json=_fc(_feature("A1")), headers=admin).json()
    assert same == {"inserted": 0, "updated": 0, "unchanged": 1}
    grown = _feature("A1", end="2024-05-01T06:20:00Z", summary="stopped 20 min")
    r = client.post("/api/alerts/import", json=_fc(grown, _feature("A9")), headers=admin).json()
    assert r == {"inserted": 1, "updated": 1, "unchanged": 0}
    a1 = client.get("/api/alerts/A1", headers=admin).json()
    assert a1["status"] == "confirmed" and a1["end"] == "2024-05-01T06:20:00Z"
    assert a1["summary"] == "stopped 20 min"


@pytest.mark.parametrize(("body", "needle"), [
    ({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}}]},
     "properties.start"),  # a missing alert_id is computed (docs/formats.md); times are not
    ({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": None,
         "properties": {"alert_id": "x", "kind": "gps_gap", "start": "soon", "end": "later"}}]},
     "start"),
    ({"type": "Feature"}, "type"),
    (_fc(_feature("K1", kind="speeding")), "'kind'], 'msg': \"field 'kind': value 'speeding'"),
    ({"type": "FeatureCollection", "features": [
        {**_feature("G1"), "geometry": {"type": "Point", "coordinates": [1]}}]}, "geometry"),
])
def test_bad_import_is_422(client, tokens, body, needle):
    r = client.post("/api/alerts/import", json=body, headers=_auth(tokens["admin"]))
    assert r.status_code == 422
    assert needle in str(r.json()["detail"])


def test_restart_keeps_alerts_statuses_and_history(db_url, tokens):
    with TestClient(create_app(_settings(db_url, tokens))) as c:
        c.post("/api/alerts/import", json=_fc(_feature("R1"), _feature("R2")),
               headers=_auth(tokens["admin"]))
        c.post("/api/alerts/R1/status", json={"status": "acknowledged", "note": "n1"},
               headers=_auth(tokens["dispatcher"]))
        c.post("/api/alerts/R1/status", json={"status": "confirmed"},
               headers=_auth(tokens["admin"]))
        before = c.get("/api/alerts/R1", headers=_auth(tokens["analyst"])).json()
    with TestClient(create_app(_settings(db_url, tokens))) as c:
        after = c.get("/api/alerts/R1", headers=_auth(tokens["analyst"])).json()
        assert c.get("/health").json()["alerts"] == 2
    assert after == before
    assert [e["status"] for e in after["history"]] == ["open", "acknowledged", "confirmed"]


def test_load_alerts_at_startup(tmp_path, db_url, tokens):
    import json

    path = tmp_path / "alerts.geojson"
    path.write_text(json.dumps(_fc(_feature("S1"))), encoding="utf-8")
    with TestClient(create_app(_settings(db_url, tokens, load_alerts=path))) as c:
        r = c.get("/api/alerts/S1", headers=_auth(tokens["analyst"]))
        assert r.status_code == 200 and r.json()["evidence"] == {"stop_s": 600}


def test_openapi_documents_every_route(client):
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for method, path, *_ in ENDPOINTS:
        templ = (path.replace("/A1", "/{alert_id}").replace("/nope", "/{mission_id}"))
        assert method.lower() in paths[templ], templ
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    assert "AlertDetail" in spec["components"]["schemas"]
