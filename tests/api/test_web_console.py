"""The dispatcher web console, driven in a real headless Chromium.

The service (``create_app``) runs under uvicorn on a free loopback port with a
temporary SQLite store and freshly generated tokens; the page is clicked
through like a dispatcher would: token, list, live alert, detail, evidence on
the map, status change (checked through the API), drone dispatch. A screenshot
of the final state is saved in the test's tmp folder.

Needs Debian's ``chromium`` (``bash scripts/ensure-browser.sh``) or
``HAULWATCH_CHROMIUM=/path/to/chrome``; the browser is never downloaded.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import socket
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright
from shapely.geometry import LineString, Point

from haulwatch.api.app import create_app
from haulwatch.api.settings import Settings, parse_tokens
from haulwatch.api.tiles import Basemap, TileLayer, TileSettings
from haulwatch.api.web_static import WebConsoleError, mount_web
from haulwatch.drone.plan import PlanConfig
from haulwatch.drone.sitl import SimulatedCopter
from haulwatch.geo.chinacoords import gcj02_to_wgs84, wgs84_to_gcj02
from haulwatch.routes.alerts import make_alerts, write_alerts

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}
UI_TIMEOUT_MS = 15_000
PAGE_SIZE = 50  # alerts per page of the list (app.js)
# Screenshots go to each test's tmp folder, and also to $HAULWATCH_SHOTS when it is set.
SHOTS_ENV = "HAULWATCH_SHOTS"
SIM_SPEEDUP = 40.0  # simulated seconds per wall second: a ~6 min flight takes ~10 s

# Around Huzhou; coordinates are WGS-84 as the alerts contract has them.
LON0, LAT0 = 120.0912, 30.8931


def _chromium_path() -> str:
    for candidate in (os.environ.get("HAULWATCH_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("no Chromium found: run `bash scripts/ensure-browser.sh` or set HAULWATCH_CHROMIUM")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _square(lon: float, lat: float, half_deg: float) -> dict:
    ring = [[lon - half_deg, lat - half_deg], [lon + half_deg, lat - half_deg],
            [lon + half_deg, lat + half_deg], [lon - half_deg, lat + half_deg],
            [lon - half_deg, lat - half_deg]]
    return {"type": "Polygon", "coordinates": [ring]}


# site_id, kind, name, offset from (LON0, LAT0) in degrees, half size in degrees
SITES = [
    ("S-O1", "origin", "湖州工地一号", -0.030, 0.000, 0.0020),
    ("S-D1", "disposal", "长兴消纳场", 0.035, 0.004, 0.0030),
    ("S-P1", "depot", "车队停车场", 0.000, -0.020, 0.0015),
    ("S-N1", "nest", "机巢甲", 0.005, -0.002, 0.0004),
    ("S-NF1", "no_fly", "禁飞区", -0.010, 0.025, 0.0040),
]


def _write_dataset(folder: Path) -> Path:
    """A small dataset (docs/formats.md) whose registry the map draws."""
    folder.mkdir(parents=True, exist_ok=True)
    sites = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"site_id": s, "kind": k, "name": n},
         "geometry": _square(LON0 + dx, LAT0 + dy, h)} for s, k, n, dx, dy, h in SITES]}
    (folder / "sites.geojson").write_text(json.dumps(sites, ensure_ascii=False), encoding="utf-8")
    routes = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"route_id": "R-1", "origin_site_id": "S-O1", "disposal_site_id": "S-D1",
                       "corridor_m": 120},
        "geometry": {"type": "LineString", "coordinates": [
            [LON0 - 0.030, LAT0], [LON0, LAT0 + 0.002], [LON0 + 0.035, LAT0 + 0.004]]}}]}
    (folder / "routes.geojson").write_text(json.dumps(routes), encoding="utf-8")
    (folder / "manifests.csv").write_text(
        "manifest_id,vehicle_id,origin_site_id,disposal_site_id,route_id,valid_from,valid_to\n"
        "M-1,浙E·A1234,S-O1,S-D1,R-1,2026-11-20 06:00,2026-11-20 18:00\n", encoding="utf-8")
    (folder / "tracks.csv").write_text(
        f"vehicle_id,time,lon,lat\n浙E·A1234,2026-11-20 07:00:00,{LON0 - 0.03},{LAT0}\n",
        encoding="utf-8")
    return folder


def _alerts(rows: list[dict]) -> dict:
    """An alerts FeatureCollection exactly as the batch audit writes it."""
    frame = pd.DataFrame(rows)
    out = Path(rows[0]["_dir"])
    write_alerts(make_alerts(frame.drop(columns="_dir"), timezone="Asia/Shanghai"), out)
    return json.loads((out / "alerts.geojson").read_text(encoding="utf-8"))


def _dump_row(tmp: Path, vehicle: str, minutes: int, dlon: float, dlat: float, **extra) -> dict:
    start = pd.Timestamp("2026-11-20 10:00", tz="Asia/Shanghai") + pd.Timedelta(minutes=minutes)
    lon, lat = LON0 + dlon, LAT0 + dlat
    track = [
        [lon - 0.004, lat - 0.002, (start - pd.Timedelta(minutes=6)).tz_convert("UTC").isoformat()],
        [lon - 0.002, lat - 0.001, (start - pd.Timedelta(minutes=3)).tz_convert("UTC").isoformat()],
        [lon, lat, start.tz_convert("UTC").isoformat()],
        [lon + 0.003, lat + 0.001, (start + pd.Timedelta(minutes=20)).tz_convert("UTC").isoformat()],
    ]
    row = {
        "_dir": str(tmp),
        "kind": "illegal_dump",
        "vehicle_id": vehicle,
        "start": start,
        "end": start + pd.Timedelta(minutes=14),
        "severity": "high",
        "summary": f"{vehicle} 满载停车 14 分钟后空载, 距最近消纳点 2.1 km",
        "geometry": Point(lon, lat),
        "evidence": {"stop_duration_s": 840, "load_before": "full", "load_after": "empty",
                     "nearest_site_m": 2100.0, "track": track},
    }
    row.update(extra)
    return row


@dataclass
class Service:
    base_url: str
    tokens: dict[str, str]
    tmp: Path
    first_alerts: dict
    app: Any = None

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0,
                            headers={"Authorization": f"Bearer {self.tokens[role]}"})


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("web_console")
    tokens = {role: secrets.token_urlsafe(24) for role in ("analyst", "dispatcher", "device", "admin")}
    # The in-process simulated copter waits on the nest (the drone's dock).
    _, _, _, nest_dx, nest_dy, _ = next(s for s in SITES if s[1] == "nest")
    sim = SimulatedCopter(home_lat_deg=LAT0 + nest_dy, home_lon_deg=LON0 + nest_dx, port=0,
                          speedup=SIM_SPEEDUP).start()
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        settings = Settings(
            vehicle_url=sim.url,
            time_scale=SIM_SPEEDUP,
            db_url=f"sqlite:///{tmp / 'store.db'}",
            dataset=_write_dataset(tmp / "dataset"),
            tokens=tuple(parse_tokens(",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items()))),
            keepalive_s=1.0,
        )
        app = create_app(settings)
        dispatcher = app.state.service.dispatcher
        # Plan whatever the hour: the daylight rule is drone.plan's to test, not the page's.
        dispatcher.plan_config = PlanConfig(min_sun_elevation_deg=None, timezone="Asia/Shanghai")
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               timeout_graceful_shutdown=3, lifespan="on"))
        thread = threading.Thread(target=server.run, name="uvicorn-web-console", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        svc = Service(f"http://127.0.0.1:{port}", tokens, tmp, {}, app=app)
        svc.first_alerts = _alerts([
            _dump_row(tmp / "a1", "浙E·A1234", 0, 0.010, 0.004),
            _dump_row(tmp / "a1", "浙E·B5678", 45, -0.012, -0.006, severity="medium"),
            {
                "_dir": str(tmp / "a1"),
                "kind": "route_deviation",
                "vehicle_id": "沪D·C9999",
                "start": pd.Timestamp("2026-11-20 11:30", tz="Asia/Shanghai"),
                "end": pd.Timestamp("2026-11-20 11:38", tz="Asia/Shanghai"),
                "severity": "medium",
                "summary": "沪D·C9999 驶出核准路线 1.2 km",
                "geometry": LineString([(LON0 - 0.02, LAT0 + 0.01), (LON0 - 0.025, LAT0 + 0.013),
                                        (LON0 - 0.03, LAT0 + 0.012)]),
                "evidence": {"max_offset_m": 640.0, "corridor_m": 150.0},
            },
        ])
        with svc.client("admin") as c:
            r = c.post("/api/alerts/import", json=svc.first_alerts)
            assert r.status_code == 200, r.text
            assert r.json()["inserted"] == 3
        yield svc
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=15)
        sim.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser_context(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium_profile")
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=_chromium_path(), headless=True, args=CHROMIUM_ARGS,
        viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai",
    )
    context.set_default_timeout(UI_TIMEOUT_MS)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture
def page(browser_context: BrowserContext, service: Service) -> Iterator[Page]:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The page runs under a strict Content-Security-Policy: nothing it does may violate it.
    page.on("console", lambda msg: errors.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    # Everything must come from the service itself: no CDN, no tiles, no fonts.
    foreign: list[str] = []
    page.on("request", lambda req: foreign.append(req.url)
            if not req.url.startswith((service.base_url, "data:", "blob:")) else None)
    yield page
    page.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert foreign == [], f"the page fetched outside the service: {foreign}"


def _sign_in(page: Page, service: Service, role: str) -> None:
    page.goto(service.base_url + "/")
    page.get_by_label("访问令牌").fill(service.tokens[role])
    page.get_by_role("button", name="连接").click()


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get(SHOTS_ENV):
        folder = Path(os.environ[SHOTS_ENV])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / name, folder / name)


def _alert_id(collection: dict, vehicle_id: str) -> str:
    return next(f["properties"]["alert_id"] for f in collection["features"]
                if f["properties"]["vehicle_id"] == vehicle_id)


class TestMountWeb:
    def test_page_and_assets_are_served_without_hiding_api_routes(self) -> None:
        app = FastAPI()
        mount_web(app)  # before the API route: must not shadow it

        @app.get("/api/ping")
        def ping() -> dict[str, str]:
            return {"pong": "yes"}

        with TestClient(app) as c:
            page = c.get("/")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            assert "script-src 'self'" in page.headers["content-security-policy"]
            assert 'src="web/app.js"' in page.text
            assert c.get("/web/app.js").status_code == 200
            assert c.get("/web/style.css").headers["content-type"].startswith("text/css")
            assert c.get("/web/nope.js").status_code == 404
            assert c.get("/api/ping").json() == {"pong": "yes"}
        assert "/" not in app.openapi()["paths"]

    def test_mounting_twice_is_a_no_op(self) -> None:
        app = FastAPI()
        mount_web(app)
        routes_before = len(app.routes)
        mount_web(app)
        assert len(app.routes) == routes_before

    def test_missing_folder_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(WebConsoleError, match=r"must be a folder containing index\.html"):
            mount_web(FastAPI(), directory=tmp_path / "nowhere")
        with pytest.raises(WebConsoleError, match=r"index\.html"):
            mount_web(FastAPI(), directory=tmp_path)  # a folder, but no page

    def test_the_service_serves_the_console(self, service: Service) -> None:
        r = httpx.get(service.base_url + "/", timeout=10)
        assert r.status_code == 200
        assert "调度台" in r.text  # Chinese first
        assert 'src="vendor/leaflet/leaflet.js"' in r.text
        assert httpx.get(service.base_url + "/web/app.js", timeout=10).status_code == 200


class TestConsole:
    def test_dispatcher_main_flow(self, page: Page, service: Service, tmp_path: Path) -> None:
        with service.client("analyst") as c:
            total = c.get("/api/alerts", params={"limit": 1}).json()["total"]
        assert total >= 3
        _sign_in(page, service, "dispatcher")
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
        expect(page.locator(".alert-item")).to_have_count(min(total, PAGE_SIZE))
        # Chinese plates arrive intact (UTF-8 end to end).
        expect(page.locator("#alert-list")).to_contain_text("浙E·A1234")
        expect(page.locator("#alert-list")).to_contain_text("沪D·C9999")
        expect(page.locator("#map .marker")).to_have_count(total)
        # The registry is drawn: every site by kind, the approved route, the nest as a dock.
        for site_id, kind, *_ in SITES:
            expect(page.locator(f'#map .site-{kind}[data-site-id="{site_id}"]')).to_have_count(1)
        expect(page.locator('#map .route[data-route-id="R-1"]')).to_have_count(1)
        expect(page.locator('#map .nest-icon[data-site-id="S-N1"]')).to_be_visible()
        expect(page.locator("#map .site-label", has_text="长兴消纳场")).to_be_visible()
        expect(page.locator('#dock-select option[value="S-N1"]')).to_have_text("机巢甲 (S-N1)")
        page.screenshot(path=str(tmp_path / "web_console_overview.png"))
        _shot(page, tmp_path, "list.png")

        # A new alert imported while the page is open appears live, without reload.
        new = _alerts([_dump_row(service.tmp / "live", "皖K·L0001", 120, 0.004, -0.003)])
        new_id = new["features"][0]["properties"]["alert_id"]
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=new).status_code == 200
        live_item = page.locator(f'.alert-item[data-alert-id="{new_id}"]')
        expect(live_item).to_be_visible()
        expect(live_item).to_contain_text("皖K·L0001")
        expect(page.locator("#alert-count")).to_have_text(f"({total + 1})")
        expect(page.locator(f'#map .marker[data-alert-id="{new_id}"]')).to_have_count(1)

        # Open an alert: detail, evidence listed and drawn on the map.
        target = _alert_id(service.first_alerts, "浙E·A1234")
        page.locator(f'.alert-item[data-alert-id="{target}"]').click()
        expect(page.locator("#detail-fields")).to_contain_text("浙E·A1234")
        expect(page.locator('#detail-evidence dd[data-key="stop_duration_s"]')).to_have_text("14 分钟")
        expect(page.locator("#map .evidence-track")).to_have_attribute("data-points", "4")
        expect(page.locator(f'#map .evidence-point[data-alert-id="{target}"]')).to_have_count(1)
        expect(page.locator(f'#map .marker.selected[data-alert-id="{target}"]')).to_have_count(1)
        # The evidence is inside the visible map after the zoom to the alert.
        box = page.locator("#map").bounding_box()
        point = page.locator("#map .evidence-point").bounding_box()
        assert box and point
        assert box["x"] <= point["x"] <= box["x"] + box["width"]
        assert box["y"] <= point["y"] <= box["y"] + box["height"]

        # Acknowledge with a note: shown, in the history, and stored (checked via the API).
        page.get_by_label("备注（可选）").fill("已通知执法队")
        page.get_by_role("button", name="受理", exact=True).click()
        expect(page.locator("#detail-status")).to_have_text("已受理")
        expect(page.locator("#detail-history")).to_contain_text("dispatcher-user")
        expect(page.locator("#detail-history")).to_contain_text("已通知执法队")
        expect(page.locator(f'.alert-item[data-alert-id="{target}"]')).to_have_attribute(
            "data-status", "acknowledged")
        with service.client("analyst") as c:
            stored = c.get(f"/api/alerts/{target}").json()
        assert stored["status"] == "acknowledged"
        assert stored["history"][-1]["by"] == "dispatcher-user"
        assert stored["history"][-1]["note"] == "已通知执法队"
        # ... and survives a reload of the page (token kept for the tab).
        page.reload()
        page.locator(f'.alert-item[data-alert-id="{target}"]').click()
        expect(page.locator("#detail-status")).to_have_text("已受理")

        # Send a drone: the dispatch request is made and its answer shown.
        with page.expect_response(lambda r: r.url.endswith(f"/api/alerts/{target}/dispatch")) as resp:
            page.get_by_role("button", name="派出无人机").click()
        answer = resp.value
        assert answer.status == 202, answer.text()
        mission = answer.json()
        mission_box = page.locator("#mission")
        expect(page.locator("#mission-id")).to_have_text(f"任务 {mission['mission_id']}")
        dock = page.locator('#mission-fields dd[data-field="dock"]')
        expect(dock).to_have_text("机巢甲")  # the site by name, its id on hover
        expect(dock).to_have_attribute("title", "S-N1")
        # The planned flight (from the mission's .plan) is drawn from the dock and back.
        expect(page.locator("#map .plan-path")).to_have_count(1)
        assert int(page.locator("#map .plan-path").get_attribute("data-points")) >= 3
        # Flown by the simulator: progress streams in while it flies...
        expect(mission_box).to_have_attribute("data-status", "flying", timeout=60_000)
        expect(page.locator("#map .drone")).to_have_count(1)
        expect(page.locator('#mission-fields dd[data-field="drone-at"]')).to_be_visible()
        expect(page.get_by_role("button", name="中止任务")).to_be_visible()
        expect(page.get_by_role("button", name="派出无人机")).to_be_disabled()
        page.screenshot(path=str(tmp_path / "web_console_flying.png"))
        _shot(page, tmp_path, "send-drone.png")
        # ... until it is back on its dock.
        expect(mission_box).to_have_attribute(
            "data-status", re.compile("completed|failed|aborted"), timeout=90_000)
        assert mission_box.get_attribute("data-status") == "completed", (
            page.locator("#mission-reason").inner_text())
        bar = page.locator("#mission-progress")
        assert bar.get_attribute("value") == bar.get_attribute("max")  # full
        reached = page.locator('#mission-fields dd[data-field="items-reached"]').inner_text()
        assert int(re.match(r"\d+", reached).group()) >= 1, reached
        expect(page.locator('#mission-fields dd[data-field="battery"]')).to_have_text(
            re.compile(r"^\d+ %$"))
        expect(page.get_by_role("button", name="中止任务")).to_be_hidden()
        expect(page.get_by_role("button", name="派出无人机")).to_be_enabled()
        # The QGroundControl plan downloads as a file.
        with page.expect_download() as download:
            page.get_by_role("button", name="下载 .plan").click()
        plan = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
        assert plan["fileType"] == "Plan"
        assert download.value.suggested_filename == f"{mission['mission_id']}.plan"
        with service.client("analyst") as c:
            stored = c.get(f"/api/missions/{mission['mission_id']}").json()
        assert stored["status"] == mission_box.get_attribute("data-status")
        page.screenshot(path=str(tmp_path / "web_console.png"))
        print("screenshot:", tmp_path / "web_console.png")

    def test_refused_dispatch_is_explained(self, page: Page, service: Service) -> None:
        # 0.1° east of the nest is ~9.5 km: beyond the drone's range.
        far = _alerts([_dump_row(service.tmp / "far", "浙E·F0009", 1500, 0.10, 0.0)])
        far_id = far["features"][0]["properties"]["alert_id"]
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=far).status_code == 200
        _sign_in(page, service, "dispatcher")
        page.locator(f'.alert-item[data-alert-id="{far_id}"]').click()
        expect(page.locator("#detail-fields")).to_contain_text("浙E·F0009")
        with page.expect_response(lambda r: r.url.endswith(f"/api/alerts/{far_id}/dispatch")) as resp:
            page.get_by_role("button", name="派出无人机").click()
        assert resp.value.status == 422, resp.value.text()
        detail = resp.value.json()["detail"]
        error = page.locator("#dispatch-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("无人机无法出动")
        # The dispatcher reads the refusal in Chinese, with the service's own figures
        # (issue 11: the drone room's code + params rendered from the catalog).
        expect(error).to_contain_text("没有能执行的机巢")
        for d in detail:
            metres = re.search(r"target is (\d+) m from dock", d["msg"]).group(1)
            expect(error).to_contain_text(f"超出航程：目标距机巢 {metres} m")
        expect(error).not_to_contain_text("target is")
        expect(page.get_by_role("button", name="派出无人机")).to_be_enabled()
        # Each refusal is recorded as a mission: reopened later, the newest one is shown.
        with page.expect_response(lambda r: r.url.endswith(f"/api/alerts/{far_id}/dispatch")) as again:
            page.get_by_role("button", name="派出无人机").click()
        newest = next(d.get("mission_id") for d in again.value.json()["detail"])
        page.reload()
        page.locator(f'.alert-item[data-alert-id="{far_id}"]').click()
        expect(page.locator("#mission-id")).to_have_text(f"任务 {newest}")
        expect(page.locator("#mission")).to_have_attribute("data-status", "refused")
        expect(page.locator("#mission-reason")).not_to_be_empty()
        # The refusal's code in words, the service's own details after it.
        expect(page.locator("#mission-reason")).to_have_text(re.compile(r"^[\u4e00-\u9fff（）]+："))

    def test_status_change_elsewhere_shows_up_live(self, page: Page, service: Service) -> None:
        target = _alert_id(service.first_alerts, "浙E·B5678")
        _sign_in(page, service, "analyst")
        page.locator(f'.alert-item[data-alert-id="{target}"]').click()
        expect(page.locator("#detail-status")).to_have_text("待处理")
        with service.client("dispatcher") as c:
            current = c.get(f"/api/alerts/{target}").json()
            r = c.post(f"/api/alerts/{target}/status", json={
                "status": "dismissed", "note": "洒水车, 非渣土",
                "expected_version": current["status_version"]})
            assert r.status_code == 200, r.text
        expect(page.locator("#detail-status")).to_have_text("已排除")
        expect(page.locator("#detail-history")).to_contain_text("洒水车, 非渣土")
        expect(page.locator(f'.alert-item[data-alert-id="{target}"]')).to_have_attribute(
            "data-status", "dismissed")

    def test_alert_joins_a_status_filter_when_its_status_changes(self, page: Page,
                                                                  service: Service) -> None:
        fresh = _alerts([_dump_row(service.tmp / "joins", "浙E·J0001", 1800, 0.003, 0.001)])
        fresh_id = fresh["features"][0]["properties"]["alert_id"]
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=fresh).status_code == 200
        _sign_in(page, service, "analyst")
        expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")
        page.get_by_label("状态", exact=True).select_option("confirmed")
        # No waiting for the filtered answer on purpose: an event that overtakes it must stick.
        expect(page.locator(f'.alert-item[data-alert-id="{fresh_id}"]')).to_have_count(0)
        with service.client("dispatcher") as c:
            r = c.post(f"/api/alerts/{fresh_id}/status", json={"status": "confirmed"})
            assert r.status_code == 200, r.text
        item = page.locator(f'.alert-item[data-alert-id="{fresh_id}"]')
        expect(item).to_be_visible()
        expect(item).to_have_attribute("data-status", "confirmed")

    def test_analyst_cannot_change_status_and_is_told_why(self, page: Page, service: Service) -> None:
        target = _alert_id(service.first_alerts, "沪D·C9999")
        _sign_in(page, service, "analyst")
        page.locator(f'.alert-item[data-alert-id="{target}"]').click()
        expect(page.locator("#map .evidence-geometry")).to_have_count(1)  # the off-route piece
        page.get_by_role("button", name="确认", exact=True).click()
        expect(page.locator("#message")).to_contain_text("无权更改告警状态")
        with service.client("analyst") as c:
            assert c.get(f"/api/alerts/{target}").json()["status"] == "open"

    def test_filters_narrow_list_and_map(self, page: Page, service: Service) -> None:
        _sign_in(page, service, "analyst")
        expect(page.locator(".alert-item")).not_to_have_count(0)
        page.get_by_label("类型", exact=True).select_option("route_deviation")
        expect(page.locator(".alert-item")).to_have_count(1)
        expect(page.locator(".alert-item")).to_contain_text("沪D·C9999")
        expect(page.locator("#map .marker")).to_have_count(1)
        page.get_by_label("类型", exact=True).select_option("")
        with service.client("analyst") as c:
            n_open = c.get("/api/alerts", params={"status": "open", "limit": 1}).json()["total"]
            n_all = c.get("/api/alerts", params={"limit": 1}).json()["total"]
        page.get_by_label("状态", exact=True).select_option("open")
        expect(page.locator(".alert-item")).to_have_count(n_open)
        statuses = page.locator(".alert-item").evaluate_all("els => els.map(e => e.dataset.status)")
        assert set(statuses) == {"open"}
        page.get_by_label("状态", exact=True).select_option("")
        expect(page.locator(".alert-item")).to_have_count(n_all)

    @pytest.mark.parametrize(("role", "message"), [
        ("wrong", "令牌被拒绝（401）"),
        ("device", "无权读取告警（403）"),
    ])
    def test_unusable_token_is_refused(self, page: Page, service: Service, role: str,
                                       message: str) -> None:
        page.goto(service.base_url + "/")
        token = "not-a-token-" + secrets.token_hex(4) if role == "wrong" else service.tokens[role]
        page.get_by_label("访问令牌").fill(token)
        page.get_by_role("button", name="连接").click()
        expect(page.locator("#message")).to_contain_text(message)
        expect(page.locator(".alert-item")).to_have_count(0)
        assert page.evaluate("sessionStorage.getItem('haulwatch.token')") is None

    def test_alert_text_is_never_run_as_html(self, page: Page, service: Service) -> None:
        hostile = '<img src=x onerror="window.__pwned=1">'
        bad = _alerts([_dump_row(service.tmp / "xss", "浙A·X0001", 300, 0.02, 0.02,
                                 summary=hostile)])
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=bad).status_code == 200
        _sign_in(page, service, "analyst")
        item = page.locator(f'.alert-item[data-alert-id="{bad["features"][0]["properties"]["alert_id"]}"]')
        expect(item).to_contain_text(hostile)
        item.click()
        expect(page.locator("#detail-summary")).to_have_text(hostile)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("#alert-list img, #detail img").count() == 0

    def test_plate_filter_matches_plates_as_typed(self, page: Page, service: Service) -> None:
        _sign_in(page, service, "analyst")
        expect(page.locator(".alert-item")).not_to_have_count(0)
        page.get_by_label("车牌").fill("浙e a1234")  # as a dispatcher types it
        items = page.locator(".alert-item")
        expect(items).to_have_count(1)
        expect(items).to_contain_text("浙E·A1234")
        # Live alerts follow the filter: the same truck spelled otherwise shows up, others do not.
        live = _alerts([
            _dump_row(service.tmp / "plates", "浙Ｅ－A1234", 1200, 0.002, 0.002),
            _dump_row(service.tmp / "plates", "浙E·A1235", 1201, 0.002, 0.003),
        ])
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=live).json()["inserted"] == 2
        same_truck = _alert_id(live, "浙Ｅ－A1234")
        expect(page.locator(f'.alert-item[data-alert-id="{same_truck}"]')).to_be_visible()
        expect(items).to_have_count(2)
        expect(page.locator("#alert-list")).not_to_contain_text("A1235")

    def test_pages_of_alerts(self, page: Page, service: Service) -> None:
        rows = []
        for i in range(PAGE_SIZE + 5):
            row = _dump_row(service.tmp / "many", f"苏E·P{i:04d}", 600 + i, 0.001 * (i % 10),
                            0.001 * (i // 10), kind="gps_gap", severity="low")
            row["evidence"] = {"gap_s": 900 + i}
            rows.append(row)
        many = _alerts(rows)
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=many).json()["inserted"] == PAGE_SIZE + 5
        _sign_in(page, service, "analyst")
        page.get_by_label("类型", exact=True).select_option("gps_gap")
        expect(page.locator(".alert-item")).to_have_count(PAGE_SIZE)
        expect(page.locator("#page-info")).to_have_text(f"第 1–{PAGE_SIZE} 条，共 {PAGE_SIZE + 5} 条")
        expect(page.get_by_role("button", name="上一页")).to_be_disabled()
        first_page = set(page.locator(".alert-item").evaluate_all(
            "els => els.map(e => e.dataset.alertId)"))
        page.get_by_role("button", name="下一页").click()
        expect(page.locator(".alert-item")).to_have_count(5)
        expect(page.locator("#page-info")).to_have_text(
            f"第 {PAGE_SIZE + 1}–{PAGE_SIZE + 5} 条，共 {PAGE_SIZE + 5} 条")
        expect(page.get_by_role("button", name="下一页")).to_be_disabled()
        second_page = set(page.locator(".alert-item").evaluate_all(
            "els => els.map(e => e.dataset.alertId)"))
        assert not first_page & second_page
        assert first_page | second_page == {f["properties"]["alert_id"] for f in many["features"]}
        # The map shows every alert of the filter, not only the page.
        expect(page.locator("#map .marker")).to_have_count(PAGE_SIZE + 5)

    def test_map_pans_and_zooms_from_the_keyboard(self, page: Page, service: Service) -> None:
        _sign_in(page, service, "analyst")
        expect(page.locator("#map .site")).not_to_have_count(0)
        expect(page.locator("#map .marker")).not_to_have_count(0)  # first fit done
        box = page.locator("#map")

        def view() -> tuple[float, float, float]:
            lat, lon = (float(v) for v in box.get_attribute("data-center").split(","))
            return float(box.get_attribute("data-zoom")), lat, lon

        box.focus()
        zoom0, lat0, lon0 = view()
        scale_label = page.locator(".leaflet-control-scale-line").inner_text()
        page.keyboard.press("+")
        expect(box).to_have_attribute("data-zoom", str(int(zoom0 + 1)))
        expect(page.locator(".leaflet-control-scale-line")).not_to_have_text(scale_label)
        _, lat1, lon1 = view()
        page.keyboard.press("ArrowLeft")  # the view moves west: the centre's longitude drops
        expect(box).not_to_have_attribute("data-center", f"{lat1:.7f},{lon1:.7f}")
        zoom2, lat2, lon2 = view()
        assert zoom2 == zoom0 + 1
        assert lon2 < lon1
        assert lat2 == pytest.approx(lat1, abs=1e-4)  # whole-pixel panning
        page.keyboard.press("0")  # back to everything
        expect(box).to_have_attribute("data-zoom", str(int(zoom0)))
        assert view()[1:] == pytest.approx((lat0, lon0), abs=1e-4)
        page.get_by_role("button", name="缩小").click()
        expect(box).to_have_attribute("data-zoom", str(int(zoom0 - 1)))

    def test_stream_drop_reconnects_and_catches_up(self, page: Page, service: Service) -> None:
        _sign_in(page, service, "analyst")
        conn = page.locator("#conn-status")
        expect(conn).to_have_attribute("data-state", "live")
        service.app.state.service.hub.close()  # the server ends every event stream
        expect(conn).to_have_attribute("data-state", "connecting")
        # An alert raised while the page is not listening ...
        missed = _alerts([_dump_row(service.tmp / "missed", "赣C·M0002", 900, -0.004, 0.006)])
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=missed).status_code == 200
        # ... is there once the stream is back (the page reloads what it shows).
        expect(conn).to_have_attribute("data-state", "live")
        missed_id = missed["features"][0]["properties"]["alert_id"]
        expect(page.locator(f'.alert-item[data-alert-id="{missed_id}"]')).to_be_visible()

    def test_keyboard_only_selection_and_sign_out(self, page: Page, service: Service) -> None:
        _sign_in(page, service, "analyst")
        first = page.locator(".alert-item").first
        expect(first).to_be_visible()
        first.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#detail")).to_be_visible()
        expect(first).to_have_attribute("aria-current", "true")
        page.keyboard.press("Escape")
        expect(page.locator("#detail")).to_be_hidden()
        page.get_by_role("button", name="退出").click()
        expect(page.get_by_label("访问令牌")).to_be_visible()
        expect(page.locator(".alert-item")).to_have_count(0)
        assert page.evaluate("sessionStorage.getItem('haulwatch.token')") is None



# ------------------------------------------------------------------ base maps
def _png_tile(x: int, y: int) -> bytes:
    """A 256-px PNG tile: a pale fill alternating by parity, darker 1-px edges (a visible grid)."""
    fill = (236, 232, 220) if (x + y) % 2 == 0 else (222, 232, 224)
    edge = (170, 170, 160)
    middle = bytes(edge) + bytes(fill) * 254 + bytes(edge)
    border = bytes(edge) * 256
    raw = b"".join(b"\x00" + (border if i in (0, 255) else middle) for i in range(256))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


class TileServer:
    """A local XYZ tile server: ``/{set}/{z}/{x}/{y}.png``; remembers every tile asked for."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, int, int, int]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                m = re.fullmatch(r"/(\w+)/(\d+)/(\d+)/(\d+)\.png", self.path)
                if not m:
                    self.send_error(404)
                    return
                name, z, x, y = m.group(1), *(int(v) for v in m.groups()[1:])
                owner.requests.append((name, z, x, y))
                body = _png_tile(x, y)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def tiles(self, name: str, z: int) -> set[tuple[int, int]]:
        return {(x, y) for n, zz, x, y in list(self.requests) if n == name and zz == z}


def _world_px(lon: float, lat: float, z: float) -> tuple[float, float]:
    """Web-Mercator world pixel of a lon/lat at zoom z (256-px tiles), from the standard formula."""
    n = 256.0 * 2.0**z
    phi = math.radians(lat)
    return (lon + 180.0) / 360.0 * n, (1.0 - math.log(math.tan(phi) + 1.0 / math.cos(phi)) / math.pi) / 2.0 * n


@dataclass
class TiledService:
    base_url: str
    tokens: dict[str, str]
    tiles: TileServer
    alerts: dict


@pytest.fixture(scope="module")
def tiled_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TiledService]:
    """The service with two test base maps (wgs84, then gcj02) served by a local tile server."""
    tmp = tmp_path_factory.mktemp("web_console_tiles")
    tokens = {role: secrets.token_urlsafe(24) for role in ("analyst", "admin")}
    tile_server = TileServer()
    tile_server.thread.start()
    settings = Settings(
        db_url=f"sqlite:///{tmp / 'store.db'}", dataset=_write_dataset(tmp / "dataset"),
        tokens=tuple(parse_tokens(",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items()))),
        keepalive_s=1.0,
    )
    app = create_app(settings)
    app.state.tiles = TileSettings((
        Basemap("test-wgs84", "测试底图 WGS-84", "wgs84", "© 测试瓦片 WGS",
                (TileLayer(tile_server.url + "/wgs84/{z}/{x}/{y}.png", max_zoom=19),)),
        Basemap("test-gcj02", "测试底图 GCJ-02", "gcj02", "© 测试瓦片 GCJ",
                (TileLayer(tile_server.url + "/gcj02/{z}/{x}/{y}.png", max_zoom=19),)),
    ))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           timeout_graceful_shutdown=3, lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn-web-tiles", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        alerts = _alerts([_dump_row(tmp / "a", "浙E·T0001", 0, 0.010, 0.004)])
        svc = TiledService(f"http://127.0.0.1:{port}", tokens, tile_server, alerts)
        with httpx.Client(base_url=svc.base_url, timeout=10,
                          headers={"Authorization": f"Bearer {tokens['admin']}"}) as c:
            assert c.post("/api/alerts/import", json=alerts).status_code == 200
        yield svc
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        tile_server.httpd.shutdown()


@pytest.fixture
def tiled_page(browser_context: BrowserContext, tiled_service: TiledService) -> Iterator[Page]:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text)
            if "Content Security Policy" in msg.text else None)
    foreign: list[str] = []
    allowed = (tiled_service.base_url, tiled_service.tiles.url + "/", "data:", "blob:")
    page.on("request", lambda req: foreign.append(req.url)
            if not req.url.startswith(allowed) else None)
    yield page
    page.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert foreign == [], f"the page fetched outside the service and its tile server: {foreign}"


class TestBaseMaps:
    def _view(self, page: Page) -> tuple[int, float, float, dict]:
        box = page.locator("#map")
        lat, lon = (float(v) for v in box.get_attribute("data-center").split(","))
        return int(float(box.get_attribute("data-zoom"))), lat, lon, box.bounding_box()

    def _check_alignment(self, page: Page, svc: TiledService, datum: str) -> None:
        feature = svc.alerts["features"][0]
        alert_id = feature["properties"]["alert_id"]
        lon, lat = feature["geometry"]["coordinates"]
        if datum == "gcj02":
            glon, glat = wgs84_to_gcj02(lon, lat)
            lon_d, lat_d = float(glon), float(glat)
        else:
            lon_d, lat_d = lon, lat
        expect(page.locator("#map")).to_have_attribute("data-datum", datum)
        z, clat, clon, box = self._view(page)
        # The marker sits where the tiles draw its (shifted) position.
        cx, cy = _world_px(clon, clat, z)
        mx, my = _world_px(lon_d, lat_d, z)
        expected = (box["x"] + box["width"] / 2 + (mx - cx), box["y"] + box["height"] / 2 + (my - cy))
        marker = page.locator(f'#map .marker[data-alert-id="{alert_id}"]').bounding_box()
        assert marker is not None
        got = (marker["x"] + marker["width"] / 2, marker["y"] + marker["height"] / 2)
        assert got == pytest.approx(expected, abs=1.5), (datum, got, expected)
        if datum == "gcj02":  # not where the unshifted WGS-84 position would be (~500 m off)
            ux, uy = _world_px(lon, lat, z)
            assert math.hypot(ux - mx, uy - my) > 50
        # Every tile of the view, and the marker's own tile, was asked for at the view's zoom.
        x0 = math.floor((cx - box["width"] / 2 + 1) / 256)
        x1 = math.floor((cx + box["width"] / 2 - 1) / 256)
        y0 = math.floor((cy - box["height"] / 2 + 1) / 256)
        y1 = math.floor((cy + box["height"] / 2 - 1) / 256)
        wanted = {(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)}
        assert (math.floor(mx / 256), math.floor(my / 256)) in wanted
        deadline = time.monotonic() + 10
        while not wanted <= svc.tiles.tiles(datum, z) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert wanted <= svc.tiles.tiles(datum, z), sorted(wanted - svc.tiles.tiles(datum, z))
        expect(page.locator(".leaflet-control-attribution")).to_contain_text(
            "测试瓦片 WGS" if datum == "wgs84" else "测试瓦片 GCJ")

    def test_tiles_and_overlay_alignment_for_both_datums(
            self, tiled_page: Page, tiled_service: TiledService, tmp_path: Path) -> None:
        page = tiled_page
        _sign_in(page, tiled_service, "analyst")  # type: ignore[arg-type]
        alert_id = tiled_service.alerts["features"][0]["properties"]["alert_id"]
        page.locator(f'.alert-item[data-alert-id="{alert_id}"]').click()
        expect(page.locator(f'#map .evidence-point[data-alert-id="{alert_id}"]')).to_have_count(1)
        expect(page.locator(".basemap-tiles img")).not_to_have_count(0)
        self._check_alignment(page, tiled_service, "wgs84")
        _shot(page, tmp_path, "detail-basemap-wgs84.png")
        # Switch to the GCJ-02 base map: every overlay moves with it.
        page.locator(".leaflet-control-layers").hover()
        page.get_by_label("测试底图 GCJ-02").check()
        self._check_alignment(page, tiled_service, "gcj02")
        route = page.locator('#map .route[data-route-id="R-1"]')
        expect(route).to_have_count(1)
        page.get_by_role("button", name="定位告警").click()
        self._check_alignment(page, tiled_service, "gcj02")
        _shot(page, tmp_path, "detail-basemap-gcj02.png")
        # No base map: the overlays alone, back in WGS-84.
        page.locator(".leaflet-control-layers").hover()
        page.get_by_label("无底图（仅叠加图层）").check()
        expect(page.locator("#map")).to_have_attribute("data-datum", "wgs84")
        expect(page.locator(".basemap-tiles")).to_have_count(0)

    def test_the_page_may_load_tiles_from_the_configured_hosts_only(
            self, tiled_service: TiledService, service: Service) -> None:
        csp = httpx.get(tiled_service.base_url + "/", timeout=10).headers["content-security-policy"]
        assert f"img-src 'self' {tiled_service.tiles.url} data:" in csp
        assert "script-src 'self';" in csp
        plain = httpx.get(service.base_url + "/", timeout=10).headers["content-security-policy"]
        assert "img-src 'self' data:" in plain
        # Without a configured base map the console has none (overlays only).
        with service.client("analyst") as c:
            cfg = c.get("/api/console/config").json()
        assert cfg["basemaps"] == []
        assert cfg["timezone"] == "Asia/Shanghai"
        with httpx.Client(base_url=tiled_service.base_url, timeout=10) as c:
            assert c.get("/api/console/config").status_code == 401
            cfg = c.get("/api/console/config", headers={
                "Authorization": f"Bearer {tiled_service.tokens['analyst']}"}).json()
        assert [(b["id"], b["datum"]) for b in cfg["basemaps"]] == [
            ("test-wgs84", "wgs84"), ("test-gcj02", "gcj02")]

    def test_js_datum_port_matches_python(self, page: Page, service: Service) -> None:
        page.goto(service.base_url + "/")
        page.wait_for_function("window.HaulwatchCoords !== undefined")
        lons = [73.5, 87.6, 100.0, 113.26, 120.0912, 121.47, 126.6, 134.9, 60.0, 140.0]
        lats = [3.9, 18.25, 22.54, 30.8931, 31.23, 39.9, 45.75, 53.5, 10.0, 58.0]
        pts = [(lo, la) for lo in lons for la in lats]
        got = page.evaluate(
            "pts => pts.map(([lo, la]) => [HaulwatchCoords.wgs84ToGcj02(lo, la),"
            " HaulwatchCoords.gcj02ToWgs84(lo, la)])", pts)
        fwd_lon, fwd_lat = wgs84_to_gcj02([p[0] for p in pts], [p[1] for p in pts])
        inv_lon, inv_lat = gcj02_to_wgs84([p[0] for p in pts], [p[1] for p in pts])
        for i, ((f_js, i_js)) in enumerate(got):
            assert f_js == pytest.approx([fwd_lon[i], fwd_lat[i]], abs=1e-9), pts[i]
            assert i_js == pytest.approx([inv_lon[i], inv_lat[i]], abs=1e-9), pts[i]
        # Outside China the transform is the identity (as in Python).
        assert got[-1][0] == [140.0, 58.0]


class TestLanguage:
    def test_switch_is_remembered_and_covers_the_page(self, page: Page, service: Service) -> None:
        _sign_in(page, service, "analyst")
        expect(page.locator(".alert-item")).not_to_have_count(0)
        expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        expect(page.locator("#zone-note")).to_have_text("时间均为 Asia/Shanghai 时区")
        expect(page.locator("#alert-list")).to_contain_text("偷倒")
        when = page.locator(".alert-item .when").first.inner_text()
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", when), when
        page.locator("#lang-select").select_option("en")
        expect(page.locator("html")).to_have_attribute("lang", "en")
        expect(page.locator("#alerts-heading")).to_contain_text("Alerts")
        expect(page.locator("#alert-list")).to_contain_text("Illegal dump")
        expect(page.locator("#zone-note")).to_have_text("Times are in the Asia/Shanghai time zone")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        expect(page.get_by_label("Kind", exact=True)).to_be_visible()
        # The time format does not change with the language.
        assert page.locator(".alert-item .when").first.inner_text() == when
        page.reload()  # remembered
        expect(page.locator("#alerts-heading")).to_contain_text("Alerts")
        expect(page.locator("#alert-list")).to_contain_text("Illegal dump")
        page.locator(".alert-item").first.click()
        expect(page.locator("#detail-fields")).to_contain_text("Vehicle")
        page.locator("#lang-select").select_option("zh-CN")
        expect(page.locator("#detail-fields")).to_contain_text("车辆")
        expect(page.locator("#alerts-heading")).to_contain_text("告警")
        # Nothing English is left in what a Chinese reader sees (plates, ids, numbers aside).
        visible = page.locator("body").inner_text()
        for word in ("Alerts", "Kind", "Status", "Sign out", "Send drone", "Evidence", "History"):
            assert word not in visible, word
        assert page.evaluate("localStorage.getItem('haulwatch.lang')") == "zh-CN"


class TestSummaries:
    """The console writes the same Chinese sentence as routes.report.localized_summary."""

    ALERTS: ClassVar[list[dict]] = [
        {"kind": "illegal_dump", "evidence": {"stop_duration_s": 349, "distance_to_permitted_site_m": 1891.5}},
        {"kind": "illegal_dump", "evidence": {"dark_s": 2409, "distance_to_permitted_site_m": 1767.8}},
        {"kind": "illegal_dump", "evidence": {"at_site_id": "S-D1", "stop_duration_s": 1500}},
        {"kind": "route_deviation", "evidence": {"route_ids": ["R-1"], "origin_site_id": "S-O1",
                                                 "disposal_site_id": "S-D1", "off_corridor_s": 230,
                                                 "max_off_corridor_m": 781.7}},
        {"kind": "unpermitted_origin", "evidence": {"dwell_duration_s": 1292, "disposal_site_id": "S-D1",
                                                    "distance_to_permitted_site_m": 2245.4}},
        {"kind": "unpermitted_origin", "site_id": "S-O1", "evidence": {"dwell_duration_s": 700}},
        {"kind": "wrong_disposal", "site_id": "S-D1", "manifest_id": "M-1",
         "evidence": {"manifest_disposal_site_ids": ["S-P1", "S-N1"]}},
        {"kind": "unmanifested_trip", "evidence": {"origin_site_id": "S-O1", "disposal_site_id": "S-D1"}},
        {"kind": "manifest_not_executed", "manifest_id": "M-1", "evidence": {
            "origin_site_id": "S-O1", "disposal_site_id": "S-D1", "valid_from": "2026-11-19T22:00:00Z",
            "valid_to": "2026-11-20T10:00:00Z"}},
        {"kind": "gps_gap", "evidence": {"gap_s": 3700, "moved_while_dark_m": 576.3}},
        {"kind": "unregistered_vehicle", "evidence": {"day": "2026-11-20", "loads": 5}},
        {"kind": "dump_hotspot", "vehicle_id": "", "evidence": {
            "day": "2026-11-20", "hotspot_radius_m": 150.0,
            "dumps": [["浙A1", 1, 2, "t"], ["浙A2", 1, 2, "t"], ["浙A3", 1, 2, "t"]]}},
        {"kind": "route_deviation", "evidence": {}},  # facts missing: the original sentence
    ]

    def test_js_sentences_equal_python(self, page: Page, service: Service) -> None:
        from haulwatch.routes.report import localized_summary

        _sign_in(page, service, "analyst")
        expect(page.locator("#map .site")).to_have_count(len(SITES))  # names known
        names = {s: n for s, _, n, *_ in SITES}
        alerts = [{"vehicle_id": "浙E·A1234", "start": "2026-11-20T02:06:00Z",
                   "end": "2026-11-20T02:20:00Z", "site_id": "", "manifest_id": "",
                   "summary": "English original", **a} for a in self.ALERTS]
        got = page.evaluate("alerts => alerts.map(a => window.haulwatchConsole.localSummary(a))",
                            alerts)
        want = [localized_summary(a, "zh-CN", timezone="Asia/Shanghai",
                                  site_name=lambda s: names.get(s, s)) for a in alerts]
        assert got[:-1] == want[:-1]
        assert got[-1] is None and want[-1] == "English original"
        assert "满载车辆 浙E·A1234 于 2026-11-20 10:06 驶离核准路线 R-1（湖州工地一号 → 长兴消纳场）" in got[3]

    def test_api_gives_both_languages_and_the_list_shows_chinese(self, page: Page,
                                                                 service: Service) -> None:
        row = _dump_row(service.tmp / "summaries", "浙E·G0007", 2400, 0.006, 0.006, kind="gps_gap",
                        severity="medium", summary="Loaded truck 浙E·G0007 went dark for 62 min")
        row["evidence"] = {"gap_s": 3700.0, "moved_while_dark_m": 576.3}
        gap = _alerts([row])
        gap_id = gap["features"][0]["properties"]["alert_id"]
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=gap).status_code == 200
        with service.client("analyst") as c:
            item = next(a for a in c.get("/api/alerts", params={"limit": 500}).json()["items"]
                        if a["alert_id"] == gap_id)
            detail = c.get(f"/api/alerts/{gap_id}").json()
        # 2026-11-20 10:00 local + 2400 min = 2026-11-22 02:00 local
        zh = "满载车辆 浙E·G0007 于 2026-11-22 02:00 起信号中断 1 小时 2 分，重新出现时已移动 576 m"
        assert item["summary_zh"] == detail["summary_zh"] == zh
        assert item["summary_en"] == item["summary"] == "Loaded truck 浙E·G0007 went dark for 62 min"
        # Sites by name in the service's sentence too (the dataset's registry).
        dev = _dump_row(service.tmp / "summaries2", "浙E·G0008", 2500, 0.006, 0.007,
                        kind="route_deviation", severity="medium", summary="left the route")
        dev["evidence"] = {"route_ids": ["R-1"], "origin_site_id": "S-O1", "disposal_site_id": "S-D1",
                           "off_corridor_s": 300.0, "max_off_corridor_m": 640.0}
        dev_fc = _alerts([dev])
        with service.client("admin") as c:
            assert c.post("/api/alerts/import", json=dev_fc).status_code == 200
        with service.client("analyst") as c:
            got = c.get(f"/api/alerts/{dev_fc['features'][0]['properties']['alert_id']}").json()
        assert "驶离核准路线 R-1（湖州工地一号 → 长兴消纳场）5 分钟，最远偏离 640 m" in got["summary_zh"]
        _sign_in(page, service, "analyst")
        line = page.locator(f'.alert-item[data-alert-id="{gap_id}"] .summary-line')
        expect(line).to_have_text(zh)
        page.locator("#lang-select").select_option("en")
        expect(line).to_have_text("Loaded truck 浙E·G0007 went dark for 62 min")
        page.locator("#lang-select").select_option("zh-CN")
