"""A hostile client: every bad input gets a 4xx naming the field and reason, never a 5xx.

Positions are judged point by point (good points stored, bad ones rejected with
index, field, reason); bodies over the limit get 413 before they are parsed;
errors quote at most a short snippet of the value. Limits: haulwatch.ingest.limits.
"""

from __future__ import annotations

import json
import secrets

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from haulwatch.api.app import create_app
from haulwatch.api.settings import ROLES, Settings, parse_tokens
from haulwatch.ingest import limits

GOOD = [{"vehicle_id": "浙D12345", "time": f"2026-03-02T08:0{i}:00+08:00", "lon": 120.6,
         "lat": 30.0} for i in range(5)]


@pytest.fixture
def tokens() -> dict[str, str]:
    return {role: secrets.token_urlsafe(12) for role in ROLES}


def _app(tmp_path, tokens, **kw):
    spec = ",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items())
    return create_app(Settings(db_url=f"sqlite:///{tmp_path / 'bad.db'}",
                               tokens=tuple(parse_tokens(spec)), **kw))


@pytest.fixture
def client(tmp_path, tokens):
    with TestClient(_app(tmp_path, tokens), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {tokens['admin']}"
        yield c


def _alert(alert_id="A1", *, lon=120.6, lat=30.0, start="2026-03-02T02:00:00Z",
           end="2026-03-02T02:20:00Z", **props):
    return {"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"alert_id": alert_id, "kind": "illegal_dump", "vehicle_id": "浙D1",
                       "start": start, "end": end, "severity": "high", "manifest_id": "",
                       "site_id": "", "summary": "s", "trip_id": "", **props}}]}


def _with_props(**props):
    doc = _alert()
    doc["features"][0]["properties"].update(props)
    return doc


def _stored(client) -> int:
    return len(client.app.state.service.store.load_points())


# --------------------------------------------------------------------- positions
@pytest.mark.parametrize("when", ["9999-12-31T23:59:59", "0001-01-01T00:00:00",
                                  "2262-04-12T00:00:00", "1989-12-31T23:59:59Z", 1e300,
                                  "-5000-01-01"])
def test_one_bad_time_loses_no_good_point(client, when):
    r = client.post("/api/positions", json={"points": [*GOOD, {**GOOD[0], "time": when}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 5 and _stored(client) == 5
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [(5, "time")]
    assert "1990-01-01" in body["rejected"][0]["reason"]


@pytest.mark.parametrize(("plate", "words"), [
    (12345, "must be a string"), ({"a": 1}, "must be a string"), ([1], "must be a string"),
    ("x" * 1_000_000, "too long"), ("浙D" + "1" * limits.PLATE_MAX_CHARS, "too long"),
    ("", "missing"), (None, "missing"),
])
def test_bad_plates_are_rejected_point_by_point(client, plate, words):
    r = client.post("/api/positions", json={"points": [{**GOOD[0], "vehicle_id": plate},
                                                        GOOD[1]]})
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 1
    (rej,) = body["rejected"]
    assert rej["index"] == 0 and rej["field"] == "vehicle_id" and words in rej["reason"]
    assert len(r.content) < 1000  # a snippet, never the whole value


def test_lone_surrogate_is_a_reject_not_a_500(client):
    raw = ('{"points":[{"vehicle_id":"\\ud800","time":"2026-03-02T08:00:00","lon":120.6,'
           '"lat":30.0},{"vehicle_id":"浙D1","time":"2026-03-02T08:00:00","lon":120.6,'
           '"lat":30.0,"load":"\\udfff"},' + json.dumps(GOOD[0]) + ']}')
    r = client.post("/api/positions", content=raw.encode("utf-8"),
                    headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 1
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [(0, "vehicle_id"),
                                                                   (1, "load")]
    assert all("surrogate" in x["reason"] for x in body["rejected"])


def test_a_reader_failure_is_isolated_to_its_point(client, monkeypatch):
    import haulwatch.ingest.tracks as tracks

    real = tracks.tracks_from_table

    def fragile(cols, *args, **kwargs):
        if "2026-03-02T09:13:00+08:00" in cols["time"].to_pylist():
            raise OverflowError("simulated reader failure")
        return real(cols, *args, **kwargs)

    monkeypatch.setattr(tracks, "tracks_from_table", fragile)
    bad = {**GOOD[0], "time": "2026-03-02T09:13:00+08:00"}
    points = [GOOD[0], GOOD[1], bad, GOOD[2], GOOD[3], GOOD[4], GOOD[0]]
    r = client.post("/api/positions", json={"points": points})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 5 and body["duplicates"] == 1 and _stored(client) == 5
    assert [(x["index"], x["field"]) for x in body["rejected"]] == [(2, "time")]


def test_batch_over_the_limit_is_422(client):
    one = {"vehicle_id": "A", "time": 1, "lon": 0, "lat": 0}  # short: the body stays < 8 MiB
    r = client.post("/api/positions", json={"points": [one] * (limits.BATCH_MAX_POINTS + 1)})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "points"]
    assert len(r.content) < 2000


# ----------------------------------------------------------------------- queries
@pytest.mark.parametrize("path", ["/api/alerts", "/api/alerts.geojson"])
@pytest.mark.parametrize("start", ["-9999999999", "0001-01-01", "9999-12-31", "99999999999",
                                   "2262-04-12T00:00:00"])
def test_times_outside_the_range_are_422(client, path, start):
    r = client.get(path, params={"start": start})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "start"]
    assert "1990-01-01" in r.json()["detail"][0]["msg"]


def test_start_after_end_is_422(client):
    r = client.get("/api/alerts", params={"start": "2026-03-03", "end": "2026-03-01"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "end"]


# ------------------------------------------------------------------------ import
@pytest.mark.parametrize(("doc", "loc", "words"), [
    (_alert(lat=999), ["body", "features", 0, "geometry", "coordinates", "lat"],
     "out of range [-90, 90]"),
    (_alert(lon=-181), ["body", "features", 0, "geometry", "coordinates", "lon"],
     "out of range [-180, 180]"),
    (_with_props(lon=120.0, lat=91), ["body", "features", 0, "properties", "lat"],
     "out of range [-90, 90]"),
    (_alert("a/b"), ["body", "alert_id"], "'/'"),
    (_alert("x" * 100_000), ["body", "alert_id"], "100,000 characters"),
    (_alert(start="2026-03-02T02:00:00"), ["body", "features", 0, "properties", "start"],
     "no zone offset"),
    (_alert(end="2026-03-02 02:20"), ["body", "features", 0, "properties", "end"],
     "no zone offset"),
    (_alert(start="9999-01-01T00:00:00Z", end="9999-01-01T00:10:00Z"),
     ["body", "features", 0, "properties", "start"], "outside"),
    (_alert(start="1989-01-01T00:00:00Z"), ["body", "features", 0, "properties", "start"],
     "outside"),
    (_alert(start="2099-12-31T23:00:00-08:00", end="2099-12-31T23:30:00-08:00"),
     ["body", "start"], "outside"),  # 2100-01-01T07:00Z
    (_alert(start="2026-03-02T03:00:00Z"), ["body", "end"], "before start"),
    (_alert(summary="s" * 5_000), ["body", "summary"], "too long"),
    (_alert(vehicle_id="x" * 1_000), ["body", "vehicle_id"], "too long"),
])
def test_bad_imports_are_422_naming_the_field(client, doc, loc, words):
    r = client.post("/api/alerts/import", json=doc)
    assert r.status_code == 422, r.text
    d = r.json()["detail"][0]
    assert d["loc"] == loc and words in d["msg"]
    assert len(r.content) < 1000
    assert client.get("/api/alerts").json()["total"] == 0


def test_dispatch_of_an_alert_stored_out_of_range_is_422(client, monkeypatch):
    import haulwatch.api.services.store as store

    svc = client.app.state.service
    monkeypatch.setattr(store, "_check_limits", lambda *a, **k: None)  # a row from before
    svc.store.upsert_alerts(pd.DataFrame({
        "alert_id": ["OLD"], "kind": ["illegal_dump"], "severity": ["high"],
        "start": [pd.Timestamp("2026-03-02T02:00Z")], "end": [pd.Timestamp("2026-03-02T02:20Z")],
        "lon": [120.6], "lat": [999.0]}), by="test")
    monkeypatch.undo()
    r = client.post("/api/alerts/OLD/dispatch", json={})
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "no_location" and "lat" in r.json()["detail"][0]["msg"]


def test_text_with_a_lone_surrogate_is_422(client):
    client.post("/api/alerts/import", json=_alert("S1")).raise_for_status()
    r = client.post("/api/alerts/S1/status", content=b'{"status":"acknowledged","note":"\\ud800"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert client.get("/api/alerts/S1").json()["status"] == "open"


# ------------------------------------------------------------------------ bodies
def test_huge_note_error_quotes_a_snippet(client):
    client.post("/api/alerts/import", json=_alert("N1")).raise_for_status()
    r = client.post("/api/alerts/N1/status", json={"status": "acknowledged", "note": "n" * 5_000_000})
    assert r.status_code == 422
    assert len(r.content) < 1000
    assert r.json()["detail"][0]["loc"] == ["body", "note"]


def test_body_over_the_limit_is_413_before_parsing(client):
    # not even JSON: a parser would answer 422; the limit answers first
    r = client.post("/api/positions", content=b"x" * (30 * 1024 * 1024),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "HAULWATCH_MAX_BODY_BYTES" in r.json()["detail"][0]["msg"]


def test_streamed_body_without_length_is_counted(client):
    def chunks():
        for _ in range(40):
            yield b"y" * (256 * 1024)

    r = client.post("/api/alerts/import", content=chunks(),
                    headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_body_limit_is_configurable(tmp_path, tokens, monkeypatch):
    monkeypatch.setenv("HAULWATCH_MAX_BODY_BYTES", "4096")
    assert Settings.from_env().max_body_bytes == 4096
    with TestClient(_app(tmp_path, tokens, max_body_bytes=4096)) as c:
        h = {"Authorization": f"Bearer {tokens['device']}"}
        assert c.post("/api/positions", json={"points": GOOD}, headers=h).status_code == 200
        many = {"points": GOOD * 20}
        assert len(json.dumps(many)) > 4096
        assert c.post("/api/positions", json=many, headers=h).status_code == 413


def test_times_stay_inside_pandas_range():
    assert pd.Timestamp.min.tz_localize("UTC") < pd.Timestamp(limits.TIME_MIN) \
        < pd.Timestamp(limits.TIME_MAX) < pd.Timestamp.max.tz_localize("UTC")


def test_openapi_documents_the_shared_answers(client):
    paths = client.get("/openapi.json").json()["paths"]
    push = paths["/api/positions"]["post"]["responses"]
    assert {"200", "400", "401", "403", "413", "422"} <= set(push)
    assert {"401", "403", "422"} <= set(paths["/api/alerts"]["get"]["responses"])
    assert "404" in paths["/api/alerts/{alert_id}"]["get"]["responses"]
    assert "401" not in paths["/health"]["get"]["responses"]  # open


@pytest.mark.parametrize(("method", "path", "params", "code"), [
    ("GET", "/api/alerts/" + "x" * 5000, None, 404),
    ("GET", "/api/missions/" + "m" * 5000, None, 404),
    ("GET", "/api/alerts", {"kind": "k" * 5000}, 422),
    ("GET", "/api/alerts", {"bbox": "1," * 2500}, 422),
    ("GET", "/api/alerts", {"start": "2" * 5000}, 422),
])
def test_errors_quote_a_snippet_of_long_values(client, method, path, params, code):
    r = client.request(method, path, params=params)
    assert r.status_code == code, r.text
    assert len(r.content) < 600


def test_load_alerts_file_out_of_range_is_a_user_error(tmp_path, tokens):
    from haulwatch.errors import UserError

    bad = tmp_path / "alerts.geojson"
    bad.write_text(json.dumps(_alert(start="9999-12-31T23:59:59Z", end="9999-12-31T23:59:59Z")),
                   encoding="utf-8")
    with pytest.raises(UserError, match=r"alerts\.geojson"):  # a user error naming the file
        _app(tmp_path, tokens, load_alerts=bad)
