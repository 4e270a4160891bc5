"""Serve the dispatcher web console (``api/web/``) from the HTTP service.

The page is plain HTML + JavaScript with no build step and no external asset
(command centres often have no internet): ``GET /`` returns ``index.html`` and
the files next to it are served under ``/web/``; the browser libraries vendored in
the package root (Leaflet, shared with the analyst's report) under ``/vendor/``. Keeping the assets under their
own prefix means the mount can never shadow an API route, whatever order
``create_app`` registers things in. The page only uses relative URLs, so the
service also works behind a reverse proxy on a sub-path.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from haulwatch.errors import HaulwatchError

WEB_DIR: Path = Path(__file__).resolve().parent / "web"
"""Folder holding ``index.html``, ``app.js``, ``style.css``."""

ASSET_PREFIX: str = "/web"
"""URL prefix of the console's static assets."""

VENDOR_DIR: Path = Path(str(resources.files("haulwatch").joinpath("vendor")))
"""Browser libraries vendored in the package root (``haulwatch/vendor``: Leaflet), shared
by the console and the analyst's report (``routes.report`` inlines the same copy)."""

VENDOR_PREFIX: str = "/vendor"
"""URL prefix of the vendored browser libraries."""

# The page loads nothing from elsewhere and runs no inline script: say so to
# the browser, so an injected string in alert data can never run as code.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; "
    "form-action 'self'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The page is tiny and must pick up a new version at once after an upgrade.
    "Cache-Control": "no-cache",
}


class WebConsoleError(HaulwatchError, FileNotFoundError):
    """The web console folder or its ``index.html`` is missing."""


def mount_web(app: FastAPI, *, directory: Path | str | None = None) -> None:
    """Serve the dispatcher web console on ``app``.

    Adds ``GET /`` (the page, ``index.html``) and mounts the folder's files
    under ``/web/`` (``/web/app.js``, ``/web/style.css``, ...). Neither path is
    listed in the OpenAPI schema. Calling it twice on the same app is a no-op.

    Parameters
    ----------
    app : FastAPI
        The service application (``haulwatch.api.app.create_app`` calls this).
    directory : Path or str, optional
        Folder to serve instead of the bundled ``api/web`` (default ``None``:
        the bundled page).

    Raises
    ------
    WebConsoleError
        If ``directory`` is not a folder or has no ``index.html``.
    """
    web_dir = Path(directory) if directory is not None else WEB_DIR
    index = web_dir / "index.html"
    if not web_dir.is_dir() or not index.is_file():
        raise WebConsoleError(
            f"web console directory {str(web_dir)!r} must be a folder containing index.html"
        )
    if getattr(app.state, "haulwatch_web_mounted", False):
        return

    def console_page() -> FileResponse:
        return FileResponse(index, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    app.add_api_route(
        "/",
        console_page,
        methods=["GET", "HEAD"],
        include_in_schema=False,
        response_class=FileResponse,
        name="web_console",
    )
    app.mount(ASSET_PREFIX, StaticFiles(directory=web_dir), name="web_assets")
    app.mount(VENDOR_PREFIX, StaticFiles(directory=VENDOR_DIR), name="vendor_assets")
    app.state.haulwatch_web_mounted = True
