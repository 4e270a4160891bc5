"""The API's own documentation pages, offline: ``/docs`` (Swagger UI) and ``/redoc`` (Redoc).

FastAPI's defaults load swagger-ui, Redoc, a favicon and Google fonts from
CDNs, so the pages are blank in a command centre without internet. Here both
pages load only assets vendored from npm into ``api/web/vendor/swagger-ui`` and
``api/web/vendor/redoc`` (with their LICENSE files), served under
``/docs-assets/``; Redoc runs without web fonts and Swagger UI without the
online validator badge, and a Content-Security-Policy keeps the browser from
fetching anything elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

VENDOR_DIR: Path = Path(__file__).resolve().parent / "web" / "vendor"
"""Folder holding ``swagger-ui/`` and ``redoc/`` (vendored npm files)."""
ASSET_PREFIX: str = "/docs-assets"

# Nothing may come from elsewhere: the browser is told so, which also stops the one
# external image Redoc 2 draws unconditionally (the Redocly logo in its credits).
_CSP = ("default-src 'self'; img-src 'self' data:; font-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; script-src 'self' {inline}; "
        "worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'")
_SWAGGER_HEADERS = {"Content-Security-Policy": _CSP.format(inline="'unsafe-inline'")}
_REDOC_HEADERS = {"Content-Security-Policy": _CSP.format(inline="")}

_SWAGGER = f"{ASSET_PREFIX}/swagger-ui"
_REDOC = f"{ASSET_PREFIX}/redoc"


def _with(headers: dict[str, str], response: HTMLResponse) -> HTMLResponse:
    response.headers.update(headers)
    return response


def mount_docs(app: FastAPI) -> None:
    """Add ``/docs``, ``/docs/oauth2-redirect`` and ``/redoc`` served from vendored assets.

    The app must be created with ``docs_url=None, redoc_url=None`` (FastAPI's
    CDN pages off).
    """
    app.mount(_SWAGGER, StaticFiles(directory=VENDOR_DIR / "swagger-ui"), name="swagger_ui")
    app.mount(_REDOC, StaticFiles(directory=VENDOR_DIR / "redoc"), name="redoc")
    openapi_url = app.openapi_url or "/openapi.json"
    title = app.title
    favicon = f"{_SWAGGER}/favicon-32x32.png"

    def swagger() -> HTMLResponse:
        return _with(_SWAGGER_HEADERS, get_swagger_ui_html(
            openapi_url=openapi_url, title=f"{title} — Swagger UI",
            swagger_js_url=f"{_SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{_SWAGGER}/swagger-ui.css",
            swagger_favicon_url=favicon,
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        ))

    def oauth2_redirect() -> HTMLResponse:
        return _with(_SWAGGER_HEADERS, get_swagger_ui_oauth2_redirect_html())

    def redoc() -> HTMLResponse:
        return _with(_REDOC_HEADERS, get_redoc_html(
            openapi_url=openapi_url, title=f"{title} — ReDoc",
            redoc_js_url=f"{_REDOC}/redoc.standalone.js", redoc_favicon_url=favicon,
            with_google_fonts=False))

    for path, endpoint in (("/docs", swagger), ("/docs/oauth2-redirect", oauth2_redirect),
                           ("/redoc", redoc)):
        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False,
                          response_class=HTMLResponse)
