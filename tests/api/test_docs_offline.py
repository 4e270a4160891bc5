"""/docs and /redoc work offline: every asset comes from the package (vendored from npm).

Needs Debian's ``chromium`` for the browser check (``bash scripts/ensure-browser.sh``).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi.testclient import TestClient
from test_routers_stream import ServerThread

from haulwatch.api.app import create_app
from haulwatch.api.docs import VENDOR_DIR
from haulwatch.api.settings import Settings

_URL_RE = re.compile(r"(?:https?:)?//[A-Za-z0-9.-]+")


@pytest.fixture(scope="module")
def app():
    return create_app(Settings(db_url="sqlite:///:memory:"))


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_pages_reference_no_external_url(app, path):
    with TestClient(app) as c:
        r = c.get(path)
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        html = r.text
        assert _URL_RE.findall(html) == [], "the page must load nothing from elsewhere"
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        for url in assets:
            assert url.startswith("/docs-assets/"), url
            got = c.get(url)
            assert got.status_code == 200 and len(got.content) > 500, url


def test_vendored_assets_keep_their_licenses():
    for folder, files in (("swagger-ui", ("LICENSE", "NOTICE", "swagger-ui-bundle.js",
                                          "swagger-ui.css")),
                          ("redoc", ("LICENSE", "redoc.standalone.js"))):
        for name in files:
            assert (VENDOR_DIR / folder / name).is_file(), f"{folder}/{name}"


def test_docs_are_not_in_the_openapi_document(app):
    with TestClient(app) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


def _chromium() -> str:
    for candidate in (os.environ.get("HAULWATCH_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("no Chromium found: run `bash scripts/ensure-browser.sh` or set HAULWATCH_CHROMIUM")


def test_pages_render_with_the_network_cut(tmp_path):
    from playwright.sync_api import sync_playwright

    srv = ServerThread(create_app(Settings(db_url=f"sqlite:///{tmp_path / 'd.db'}")))
    base = srv.start()
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=_chromium(), headless=True,
                                        args=["--no-sandbox", "--disable-gpu",
                                              "--disable-background-networking"])
            page = browser.new_page()
            broken: list[str] = []
            page.on("pageerror", lambda exc: broken.append(str(exc)))
            page.set_default_timeout(30_000)

            def gate(route):
                host = urlparse(route.request.url).hostname
                if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", gate)
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock-tag")  # operations drawn from /openapi.json
            assert page.locator(".opblock").count() > 5
            page.goto(f"{base}/redoc")
            page.wait_for_selector("[data-section-id]")
            assert "positions" in page.content()
            browser.close()
            assert broken == []
    finally:
        srv.stop()
    assert outside == []
