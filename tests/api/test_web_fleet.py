"""The console's drone part (web/fleet.js), driven in a real headless Chromium.

The service runs under uvicorn with a fleet of one dock and one drone. The drone is
a stand-in flyer (``FleetService(flyer=...)``, as tests/api/test_fleet_api.py does)
that holds its flight until the test lets it land, so the queue can be seen with one
mission flying and one waiting; the flight it then reports (a track from the dock, an
orbit of eight photos around the alert, back) is stored by the service's own
``FleetService._finished``: mission record, flight log, "inspected by drone" history.

Checked: the fleet panel lists the drone (dock, state, charge) and the queue; a
dispatcher raises a priority and cancels a waiting task (checked through the API);
an analyst is refused and told why; the flown track and the photo points are drawn
on the map beside the truck's track, each photo on the pixel Web Mercator puts it
(computed here, independently of the page); outcome, times in the dataset's zone,
flight log download, the history entry marked. No JavaScript error, no request
outside the service. Screenshots go to the test's tmp folder and $HAULWATCH_SHOTS.
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
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import Response
from playwright.sync_api import BrowserContext, Page, Playwright, expect, sync_playwright

from haulwatch.api.app import create_app
from haulwatch.api.services.fleet import FleetService
from haulwatch.api.settings import Settings, parse_tokens
from haulwatch.api.tiles import Basemap, TileLayer, TileSettings
from haulwatch.drone.fleet_run import link_flyer
from haulwatch.drone.flight import FlightRecord
from haulwatch.drone.link import LinkConfig
from haulwatch.drone.sitl import SimulatedCopter
from haulwatch.geo.chinacoords import wgs84_to_gcj02

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1366, "height": 768}
UI_TIMEOUT_MS = 15_000
SHOTS_ENV = "HAULWATCH_SHOTS"
NOON = datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc)  # 12:00 in Asia/Shanghai: daylight
LON0, LAT0 = 120.0912, 30.8931  # around Huzhou, WGS-84
NEST = ("S-N1", LON0 + 0.005, LAT0 - 0.002)
DRONE = f"{NEST[0]}/1"
ORBIT_M = 50.0
SIM_SPEEDUP = 40.0  # simulated seconds per wall second
PHOTOS = 8
M_PER_DEG_LAT = 111_320.0


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


def _png_tile() -> bytes:
    """A plain 256-px PNG tile (the base map's look does not matter here, its datum does)."""
    raw = b"".join(b"\x00" + bytes((232, 236, 226)) * 256 for _ in range(256))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


TILE = _png_tile()


def _tile(z: int, x: int, y: int) -> Response:
    return Response(TILE, media_type="image/png")


def _square(lon: float, lat: float, half: float) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def _write_dataset(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sites = [("S-O1", "origin", "湖州工地一号", LON0 - 0.03, LAT0, 0.002),
             ("S-D1", "disposal", "长兴消纳场", LON0 + 0.035, LAT0 + 0.004, 0.003),
             (NEST[0], "nest", "机巢甲", NEST[1], NEST[2], 0.0004)]
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"site_id": s, "kind": k, "name": n},
         "geometry": _square(x, y, h)} for s, k, n, x, y, h in sites]}
    (folder / "sites.geojson").write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    routes = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"route_id": "R-1", "origin_site_id": "S-O1", "disposal_site_id": "S-D1",
                       "corridor_m": 120},
        "geometry": {"type": "LineString", "coordinates": [
            [LON0 - 0.03, LAT0], [LON0, LAT0 + 0.002], [LON0 + 0.035, LAT0 + 0.004]]}}]}
    (folder / "routes.geojson").write_text(json.dumps(routes), encoding="utf-8")
    (folder / "manifests.csv").write_text(
        "manifest_id,vehicle_id,origin_site_id,disposal_site_id,route_id,valid_from,valid_to\n"
        "M-1,浙E·A1234,S-O1,S-D1,R-1,2026-03-02 06:00,2026-03-02 18:00\n", encoding="utf-8")
    (folder / "tracks.csv").write_text(
        f"vehicle_id,time,lon,lat\n浙E·A1234,2026-03-02 07:00:00,{LON0 - 0.03},{LAT0}\n",
        encoding="utf-8")
    return folder


# alert id -> (plate, lon, lat): both within a few hundred metres of the nest
ALERTS = {"A-FLY": ("浙E·A1234", LON0 + 0.008, LAT0 + 0.001),
          "A-WAIT": ("浙E·B5678", LON0 + 0.002, LAT0 - 0.004),
          "A-LATER": ("浙E·C9012", LON0 + 0.004, LAT0 + 0.003)}


def _alerts() -> dict:
    features = []
    for alert_id, (plate, lon, lat) in ALERTS.items():
        track = [[lon - 0.004, lat - 0.002, "2026-03-02T01:54:00Z"],
                 [lon - 0.002, lat - 0.001, "2026-03-02T01:57:00Z"],
                 [lon, lat, "2026-03-02T02:00:00Z"],
                 [lon + 0.003, lat + 0.001, "2026-03-02T02:20:00Z"]]
        features.append({
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"alert_id": alert_id, "kind": "illegal_dump", "vehicle_id": plate,
                           "start": "2026-03-02T02:00:00Z", "end": "2026-03-02T02:14:00Z",
                           "severity": "high", "manifest_id": "", "site_id": "", "trip_id": "",
                           "summary": f"{plate} 满载停车 14 分钟后空载",
                           "evidence": {"stop_duration_s": 840, "track": track}}})
    return {"type": "FeatureCollection", "features": features}


def _orbit_photos(lon: float, lat: float) -> list[dict[str, Any]]:
    """Eight photos on a 50 m circle around the alert, each looking at its centre."""
    out = []
    m_per_deg_lon = M_PER_DEG_LAT * math.cos(math.radians(lat))
    for i in range(PHOTOS):
        bearing = 360.0 * i / PHOTOS  # from the centre, clockwise from north
        north = ORBIT_M * math.cos(math.radians(bearing))
        east = ORBIT_M * math.sin(math.radians(bearing))
        out.append({"index": i + 1, "lat_deg": lat + north / M_PER_DEG_LAT,
                    "lon_deg": lon + east / m_per_deg_lon, "alt_rel_m": 40.0, "alt_msl_m": 45.0,
                    "yaw_deg": (bearing + 180.0) % 360.0,
                    "time_utc": f"2026-03-02T04:{5 + i:02d}:00Z", "t_s": 60.0 + 10 * i})
    return out


@dataclass
class Gate:
    """The stand-in flyer: holds each flight until the test lets it land."""

    logs: Path
    release: threading.Event = field(default_factory=threading.Event)
    flown: list[str] = field(default_factory=list)
    records: dict[str, FlightRecord] = field(default_factory=dict)

    def __call__(self, url: str, mission: Any, *, mission_id: str, abort: threading.Event,
                 progress: Any = None) -> FlightRecord:
        self.flown.append(mission.alert_id)
        if progress is not None:
            progress({"phase": "transit", "battery_pct": 90.0})
        while not self.release.wait(0.05):
            if abort.is_set():
                rec = FlightRecord(mission_id=mission_id, alert_id=mission.alert_id)
                rec.finish("aborted", "aborted by the dispatcher")
                return rec
        _plate, lon, lat = ALERTS[mission.alert_id]
        photos = _orbit_photos(lon, lat)
        track = [[0.0, NEST[2], NEST[1], 0.0], [20.0, NEST[2], NEST[1], 40.0]]
        track += [[p["t_s"], p["lat_deg"], p["lon_deg"], 40.0] for p in photos]
        track += [[200.0, NEST[2], NEST[1], 40.0], [230.0, NEST[2], NEST[1], 0.0]]
        rec = FlightRecord(mission_id=mission_id, alert_id=mission.alert_id,
                           dock_site_id=NEST[0], started_at="2026-03-02T04:02:00Z",
                           track=track, photos=photos, battery_start_pct=95.0,
                           battery_end_pct=61.0)
        rec.finish("completed")
        rec.ended_at = "2026-03-02T04:16:00Z"
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs / f"{mission_id}.tlog").write_bytes(b"\x00" * 8 + b"\xfd" + mission_id.encode())
        self.records[mission.alert_id] = rec
        return rec


@dataclass
class Service:
    base_url: str
    tokens: dict[str, str]
    gate: Gate
    app: Any = None
    logs: Path | None = None

    def client(self, role: str) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10.0,
                            headers={"Authorization": f"Bearer {self.tokens[role]}"})


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("web_fleet")
    tokens = {r: secrets.token_urlsafe(24) for r in ("analyst", "dispatcher", "admin")}
    logs = tmp / "logs"
    mp = pytest.MonkeyPatch()
    mp.setenv("HAULWATCH_FLIGHT_LOGS", str(logs))  # read by the mission log route
    mp.delenv("HAULWATCH_DRONES", raising=False)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    gate = Gate(logs)
    fleet: FleetService | None = None
    try:
        settings = Settings(
            db_url=f"sqlite:///{tmp / 'store.db'}",
            dataset=_write_dataset(tmp / "dataset"),
            tokens=tuple(parse_tokens(",".join(f"{r}-user:{r}:{t}" for r, t in tokens.items()))),
            keepalive_s=1.0,
        )
        app = create_app(settings, clock=lambda: NOON)
        # A GCJ-02 base map (as AMap's), its tiles served by the service itself: every
        # overlay, the drone's flight included, must be shifted onto it.
        app.add_api_route("/test-tiles/{z}/{x}/{y}.png", _tile, include_in_schema=False)
        app.state.tiles = TileSettings((
            Basemap("test-gcj02", "测试底图 GCJ-02", "gcj02", "© 测试瓦片",
                    (TileLayer("/test-tiles/{z}/{x}/{y}.png", max_zoom=19),)),))
        svc = app.state.service
        fleet = FleetService(svc, env={"HAULWATCH_DRONES": f"{DRONE}=tcp:127.0.0.1:9"},
                             flyer=gate, start_ticker=False)
        svc._fleet_service = fleet
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               timeout_graceful_shutdown=3, lifespan="on"))
        thread = threading.Thread(target=server.run, name="uvicorn-web-fleet", daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("uvicorn did not start")
            time.sleep(0.05)
        service = Service(f"http://127.0.0.1:{port}", tokens, gate, app, logs)
        with service.client("admin") as c:
            r = c.post("/api/alerts/import", json=_alerts())
            assert r.status_code == 200, r.text
        yield service
    finally:
        gate.release.set()
        if fleet is not None:
            fleet.shutdown(5.0)
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=15)
        mp.undo()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser_context(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium_profile_fleet")
    # The browser's zone is UTC on purpose: the page must show the dataset's zone.
    context = playwright.chromium.launch_persistent_context(
        str(profile), executable_path=_chromium_path(), headless=True, args=CHROMIUM_ARGS,
        viewport=VIEWPORT, locale="zh-CN", timezone_id="UTC", accept_downloads=True,
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
    page.on("console", lambda msg: errors.append(msg.text)
            if (msg.type == "error" and "Failed to load resource" not in msg.text)
            or "Content Security Policy" in msg.text else None)
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
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "live")


def _shot(page: Page, tmp_path: Path, name: str) -> None:
    page.screenshot(path=str(tmp_path / name))
    if os.environ.get(SHOTS_ENV):
        folder = Path(os.environ[SHOTS_ENV])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / name, folder / name)


def _world_px(lon: float, lat: float, zoom: int) -> tuple[float, float]:
    """Web Mercator pixel of a WGS-84 point at ``zoom`` (256 px tiles)."""
    scale = 256 * 2 ** zoom
    s = math.sin(math.radians(lat))
    return (lon + 180.0) / 360.0 * scale, (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * scale


def _map_px(page: Page, lon: float, lat: float) -> tuple[float, float]:
    """Where the page's map puts (lon, lat) given in its base map's datum: Web Mercator
    from the view the map records (centre and zoom on #map)."""
    box = page.locator("#map").bounding_box()
    assert box is not None
    zoom = int(page.locator("#map").get_attribute("data-zoom"))
    clat, clon = (float(v) for v in page.locator("#map").get_attribute("data-center").split(","))
    cx, cy = _world_px(clon, clat, zoom)
    x, y = _world_px(lon, lat, zoom)
    return box["x"] + box["width"] / 2 + x - cx, box["y"] + box["height"] / 2 + y - cy


def _centre(page: Page, selector: str) -> tuple[float, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _fleet(service: Service) -> dict:
    with service.client("analyst") as c:
        r = c.get("/api/fleet")
        r.raise_for_status()
        return r.json()


def _wait_mission_done(service: Service, alert_id: str, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    with service.client("analyst") as c:
        while time.monotonic() < deadline:
            items = c.get("/api/missions", params={"alert_id": alert_id}).json()["items"]
            if items and items[0]["status"] == "completed" and items[0]["flight_record"]:
                return items[0]
            time.sleep(0.1)
    pytest.fail(f"the flight for {alert_id} did not end")


ROOT = Path(__file__).resolve().parents[2]


def test_every_key_fleet_js_uses_is_in_both_catalogs() -> None:
    """tests/test_i18n.py reads app.js; the keys of web/fleet.js are checked here."""
    js = (ROOT / "api" / "web" / "fleet.js").read_text(encoding="utf-8")
    # every "fleet.…" literal (the action labels also with "_aria"); tOr() prefixes apart
    keys = set(re.findall(r"""["'](fleet\.[A-Za-z0-9_.]*[A-Za-z0-9_])["']""", js))
    keys |= {f"{k}_aria" for k in re.findall(r'\w+: "(fleet\.\w+)"', js)}
    prefixes = re.findall(r"""tOr\(\s*["']([A-Za-z0-9_.]+\.)["']""", js)
    assert len(keys) >= 30 and set(prefixes) == {"fleet.state.", "fleet.queue_state."}
    for lang in ("zh-CN", "en"):
        catalog = json.loads((ROOT / "haulwatch" / "locales" / f"{lang}.json").read_text(encoding="utf-8"))
        assert keys - set(catalog) == set(), lang
        for state in ("free", "flying", "recharging", "unavailable"):
            assert f"fleet.state.{state}" in catalog
        for state in ("waiting", "timed", "flying", "done", "failed"):
            assert f"fleet.queue_state.{state}" in catalog


class TestFleetConsole:
    def test_no_fleet_no_panel(self, page: Page, service: Service) -> None:
        svc = service.app.state.service
        fleet, svc._fleet_service = svc._fleet_service, None  # as a service without HAULWATCH_DRONES
        try:
            with page.expect_response(lambda r: r.url.endswith("/api/fleet")) as answer:
                _sign_in(page, service, "dispatcher")
            assert answer.value.status == 503
            expect(page.locator(".alert-item")).to_have_count(len(ALERTS))
            expect(page.locator("#fleet-panel")).to_be_hidden()
        finally:
            svc._fleet_service = fleet


    def test_queue_cancel_and_flown_evidence(self, page: Page, service: Service,
                                             tmp_path: Path) -> None:
        with service.client("dispatcher") as c:
            for alert_id in ("A-FLY", "A-WAIT"):
                r = c.post("/api/fleet/queue", json={"alert_id": alert_id})
                assert r.status_code == 202, r.text
        view = _fleet(service)
        assert [f["alert_id"] for f in view["flying"]] == ["A-FLY"]
        assert [w["alert_id"] for w in view["waiting"]] == ["A-WAIT"]  # one mission per drone

        _sign_in(page, service, "dispatcher")
        panel = page.locator("#fleet-panel")
        expect(panel).to_be_visible()
        expect(panel.locator("#fleet-heading")).to_have_text("无人机机队")
        drone = panel.locator(f'#fleet-drones tr[data-drone-id="{DRONE}"]')
        expect(drone).to_have_attribute("data-state", "flying")
        expect(drone).to_contain_text("机巢甲")  # the dock by name
        expect(drone).to_contain_text("飞行中")
        waiting = panel.locator('#fleet-queue tr[data-state="waiting"][data-alert-id="A-WAIT"]')
        expect(waiting).to_contain_text("等待中")
        # why it waits, from the drone room's code + params in the catalog's words
        expect(waiting.locator("td.note")).to_contain_text("等待中：机巢")
        expect(waiting.locator("td.note")).to_contain_text("架无人机均不可用")
        expect(waiting.locator("td.note")).not_to_contain_text("waiting:")
        flying = panel.locator('#fleet-queue tr[data-state="flying"][data-alert-id="A-FLY"]')
        expect(flying).to_contain_text(DRONE)
        expect(flying.get_by_role("button", name="中止告警 A-FLY 的飞行（无人机返航）")).to_be_visible()
        _shot(page, tmp_path, "fleet-queue.png")

        # Reprioritise, by keyboard: the API holds the new priority.
        raise_btn = waiting.get_by_role("button", name="提高告警 A-WAIT 的优先级")
        raise_btn.focus()
        page.keyboard.press("Enter")
        expect(waiting.locator("td.priority")).to_have_text("1")
        assert _fleet(service)["waiting"][0]["priority"] == 1
        # Cancel: the row goes, the queue is empty, the flight goes on.
        waiting.get_by_role("button", name="取消告警 A-WAIT 的排队任务").click()
        expect(waiting).to_have_count(0)
        view = _fleet(service)
        assert view["waiting"] == [] and [f["alert_id"] for f in view["flying"]] == ["A-FLY"]
        assert service.gate.flown == ["A-FLY"]

        # The drone comes back: the service stores the flight; the page picks it up.
        service.gate.release.set()
        mission = _wait_mission_done(service, "A-FLY")
        done = panel.locator(f'#fleet-queue tr[data-state="done"][data-mission-id="{mission["mission_id"]}"]')
        page.locator("#fleet-refresh").click()
        expect(done).to_contain_text("已完成")
        # Back on its dock, held until it has recharged from what the flight left (61 %).
        expect(drone).to_have_attribute("data-state", re.compile("^(recharging|unavailable)$"))
        expect(drone.locator("meter")).to_have_attribute("value", "61")
        expect(drone).to_contain_text("61 %")
        expect(drone).to_contain_text("充电中：电量 61%，低于起飞所需 90%")
        expect(drone).not_to_contain_text("charging:")
        # From the queue to the alert: the truck's track and the drone's flight side by side.
        done.get_by_role("button", name="打开告警 A-FLY").click()
        expect(page.locator("#detail-fields")).to_contain_text("浙E·A1234")
        expect(page.locator("#map .evidence-track")).to_have_attribute("data-points", "4")
        record = service.gate.records["A-FLY"]
        expect(page.locator("#map .drone-track")).to_have_attribute("data-points", str(len(record.track)))
        expect(page.locator("#map .drone-photo")).to_have_count(PHOTOS)
        # the finished mission's note: in words, times in the dataset zone, not shown as an error
        note = page.locator("#mission-reason")
        expect(note).to_contain_text("任务完成；无人机 " + DRONE + " 充电中，至 2026-03-02 ")
        expect(note).to_have_class(re.compile(r"\bnote\b"))
        expect(note).not_to_contain_text("[done")
        expect(page.locator("#mission-fields")).not_to_contain_text("done")  # no raw code row
        box = page.locator("#drone-evidence")
        expect(box).to_be_visible()
        expect(box).to_have_attribute("data-outcome", "completed")
        expect(box.locator('dd[data-field="outcome"]')).to_have_text("已完成")
        expect(box.locator('dd[data-field="photos"]')).to_have_text(f"{PHOTOS} 张")
        expect(box.locator('dd[data-field="dock"]')).to_have_text("机巢甲")
        # Times in the dataset's zone (Asia/Shanghai, UTC+8), whatever the browser's zone.
        expect(box.locator('dd[data-field="flown"]')).to_have_text("2026-03-02 12:02 – 2026-03-02 12:16")
        expect(box.locator("#drone-photos li").first).to_have_text(
            "照片 1 · 2026-03-02 12:05 · 高 40 m · 航向 180°")
        # The history says the drone inspected it.
        tagged = page.locator("#detail-history li.drone-inspected")
        expect(tagged).to_have_count(1)
        expect(tagged).to_contain_text("无人机巡查")
        expect(tagged).to_contain_text("8 张照片")

        # Each photo where Web Mercator puts it, relative to the alert's own point.
        zoom = int(page.locator("#map").get_attribute("data-zoom"))
        _plate, lon, lat = ALERTS["A-FLY"]
        ax, ay = _centre(page, "#map .evidence-point")
        wx, wy = _world_px(lon, lat, zoom)
        for p in record.photos:
            px, py = _world_px(p["lon_deg"], p["lat_deg"], zoom)
            got = _centre(page, f'#map .drone-photo[data-index="{p["index"]}"]')
            assert abs(got[0] - ax - (px - wx)) <= 1.5 and abs(got[1] - ay - (py - wy)) <= 1.5, (
                p["index"], got, (ax + px - wx, ay + py - wy))
        # North of the alert is up on the map (photo 1 at bearing 0).
        assert _centre(page, '#map .drone-photo[data-index="1"]')[1] < ay
        # On the GCJ-02 base map each photo sits on its GCJ-02 position (several hundred
        # metres from where its WGS-84 numbers would put it) ...
        first = record.photos[0]
        expect(page.locator("#map")).to_have_attribute("data-datum", "gcj02")
        gcj = wgs84_to_gcj02(first["lon_deg"], first["lat_deg"])
        on_gcj = _map_px(page, float(gcj[0]), float(gcj[1]))
        on_wgs = _map_px(page, first["lon_deg"], first["lat_deg"])
        assert math.dist(on_gcj, on_wgs) > 20
        got = _centre(page, '#map .drone-photo[data-index="1"]')
        assert math.dist(got, on_gcj) <= 1.5, (got, on_gcj)
        # ... and back on its WGS-84 numbers without a base map.
        page.locator(".leaflet-control-layers").hover()
        page.locator(".leaflet-control-layers-base label", has_text="无底图").click()
        expect(page.locator("#map")).to_have_attribute("data-datum", "wgs84")
        got = _centre(page, '#map .drone-photo[data-index="1"]')
        on_wgs = _map_px(page, first["lon_deg"], first["lat_deg"])
        assert math.dist(got, on_wgs) <= 1.5, (got, on_wgs)
        expect(page.locator("#map .drone-photo")).to_have_count(PHOTOS)
        page.locator(".leaflet-control-layers-base label", has_text="测试底图 GCJ-02").click()
        expect(page.locator("#map")).to_have_attribute("data-datum", "gcj02")
        page.mouse.move(5, 5)
        box.scroll_into_view_if_needed()
        _shot(page, tmp_path, "fleet-evidence.png")

        # The flight log downloads as the service keeps it.
        with page.expect_download() as download:
            page.get_by_role("button", name="下载飞行日志 (.tlog)").click()
        assert download.value.suggested_filename == f"{mission['mission_id']}.tlog"
        with service.client("analyst") as c:
            stored = c.get(f"/api/missions/{mission['mission_id']}/log").content
        assert Path(download.value.path()).read_bytes() == stored

        # English on request: the same panel and evidence, in the other catalog.
        page.locator("#lang-select").select_option("en")
        expect(page.locator("#fleet-heading")).to_have_text("Drone fleet")
        expect(box.locator('dd[data-field="outcome"]')).to_have_text("completed")
        expect(tagged).to_contain_text("Inspected by drone")
        page.locator("#lang-select").select_option("zh-CN")
        expect(page.locator("#fleet-heading")).to_have_text("无人机机队")

    def test_analyst_sees_the_queue_but_cannot_change_it(self, page: Page, service: Service,
                                                          tmp_path: Path) -> None:
        later = (NOON + timedelta(hours=1)).isoformat()
        with service.client("dispatcher") as c:
            r = c.post("/api/fleet/queue", json={"alert_id": "A-LATER", "not_before": later})
            assert r.status_code == 202, r.text
        _sign_in(page, service, "analyst")
        timed = page.locator('#fleet-queue tr[data-state="timed"][data-alert-id="A-LATER"]')
        expect(timed).to_contain_text("定时")
        expect(timed).to_contain_text("不早于 2026-03-02 13:00")  # 05:00 UTC in Asia/Shanghai
        timed.get_by_role("button", name="取消告警 A-LATER 的排队任务").click()
        expect(page.locator("#message")).to_contain_text("无权调度无人机队列")
        assert [x["alert_id"] for x in _fleet(service)["timed"]] == ["A-LATER"]
        _shot(page, tmp_path, "fleet-analyst.png")
        # The strip folds away and back (a real button: keyboard, aria-expanded).
        toggle = page.get_by_role("button", name="收起")
        toggle.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#fleet-body")).to_be_hidden()
        expect(page.locator("#fleet-toggle")).to_have_attribute("aria-expanded", "false")
        page.get_by_role("button", name="展开").click()
        expect(page.locator("#fleet-body")).to_be_visible()
        expect(page.locator("#fleet-toggle")).to_have_attribute("aria-expanded", "true")
        with service.client("dispatcher") as c:
            assert c.delete("/api/fleet/queue/A-LATER").json()["action"] == "dropped"


class TestSimulatedFlight:
    def test_a_flight_of_the_simulator_shows_up_live_as_the_service_stored_it(
            self, page: Page, service: Service, tmp_path: Path) -> None:
        """The built-in ArduCopter-like simulator flies through the service's own flyer
        (MAVLink, CAMERA_FEEDBACK, .tlog) while the alert is open: the queue shows it
        flying, and when it lands the page draws what the evidence route gives."""
        lon, lat = LON0 + 0.007, LAT0 + 0.002  # ~250 m from the nest
        alert = _alerts()["features"][0]
        alert["properties"] = {**alert["properties"], "alert_id": "A-SIM", "vehicle_id": "浙E·S0001",
                               "summary": "浙E·S0001 满载停车 14 分钟后空载"}
        alert["geometry"] = {"type": "Point", "coordinates": [lon, lat]}
        with service.client("admin") as c:
            r = c.post("/api/alerts/import", json={"type": "FeatureCollection", "features": [alert]})
            assert r.status_code == 200, r.text
        _sign_in(page, service, "analyst")
        page.locator('.alert-item:has-text("浙E·S0001")').click()
        expect(page.locator("#detail-fields")).to_contain_text("浙E·S0001")
        box = page.locator("#drone-evidence")
        expect(box).to_be_hidden()  # not flown yet

        svc = service.app.state.service
        sim = SimulatedCopter(home_lat_deg=NEST[2], home_lon_deg=NEST[1], port=0,
                              speedup=SIM_SPEEDUP).start()
        held, fleet = svc._fleet_service, None
        try:
            fleet = FleetService(
                svc, env={"HAULWATCH_DRONES": f"{DRONE}={sim.url}"}, start_ticker=False,
                flyer=link_flyer(time_scale=SIM_SPEEDUP, tlog_dir=service.logs,
                                 config=LinkConfig(min_wall_timeout_s=2.0)))
            svc._fleet_service = fleet
            with service.client("dispatcher") as c:
                r = c.post("/api/fleet/queue", json={"alert_id": "A-SIM"})
                assert r.status_code == 202, r.text
            assert [f["alert_id"] for f in r.json()["flying"]] == ["A-SIM"]
            page.locator("#fleet-refresh").click()
            expect(page.locator('#fleet-queue tr[data-state="flying"][data-alert-id="A-SIM"]')
                   ).to_have_count(1)
            # Landed: the mission event brings the evidence in without a click.
            expect(box).to_be_visible(timeout=180_000)
            with service.client("analyst") as c:
                mission = c.get("/api/missions", params={"alert_id": "A-SIM"}).json()["items"][0]
                assert mission["status"] == "completed", mission["reason"]
                ev = c.get(f"/api/missions/{mission['mission_id']}/evidence").json()
        finally:
            if fleet is not None:
                fleet.shutdown(5.0)
            svc._fleet_service = held
            sim.stop()
        photos = ev["photos"]["features"]
        points = len(ev["track"]["geometry"]["coordinates"])
        assert photos and points > len(photos)
        expect(box).to_have_attribute("data-mission-id", mission["mission_id"])
        expect(box.locator('dd[data-field="photos"]')).to_have_text(f"{len(photos)} 张")
        expect(page.locator("#map .drone-track")).to_have_attribute("data-points", str(points))
        expect(page.locator("#map .drone-photo")).to_have_count(len(photos))
        expect(page.locator("#drone-photos li")).to_have_count(len(photos))
        expect(page.get_by_role("button", name="下载飞行日志 (.tlog)")).to_be_visible()
        expect(page.locator("#detail-history li.drone-inspected")).to_have_count(1)
        # Every photo on its GCJ-02 pixel (the test base map's datum).
        page.get_by_role("button", name="在地图上显示航迹").click()
        for f in photos:
            plon, plat = f["geometry"]["coordinates"]
            glon, glat = wgs84_to_gcj02(plon, plat)
            want = _map_px(page, float(glon), float(glat))
            got = _centre(page, f'#map .drone-photo[data-index="{f["properties"]["index"]}"]')
            assert math.dist(got, want) <= 1.5, (f["properties"]["index"], got, want)
        # A photo of the list is picked out on the map.
        page.locator("#drone-photos button").nth(2).click()
        expect(page.locator("#map .drone-photo.focused")).to_have_count(1)
        expect(page.locator("#map .drone-photo.focused")).to_have_attribute(
            "data-index", str(photos[2]["properties"]["index"]))
        box.scroll_into_view_if_needed()
        _shot(page, tmp_path, "fleet-simulator.png")
