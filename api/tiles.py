"""Base-map tiles for the console (and the report): what the deployment configures.

By default there is **no** base map: the console draws the overlays (sites,
routes, alerts, tracks, the drone) alone and fetches nothing from elsewhere.
A deployment adds XYZ tile layers with two environment variables:

``HAULWATCH_TILES``
    ``none`` (default), a comma-separated list of presets (``tianditu``,
    ``tianditu-img``, ``amap``), or JSON: a list of base maps, each
    ``{"id", "name", "datum", "attribution", "layers": [{"url", "subdomains",
    "min_zoom", "max_zoom"}]}`` (a base map with one layer may give ``url``,
    ``subdomains``... directly instead of ``layers``). URL templates use
    ``{z}``, ``{x}``, ``{y}``, ``{s}`` (subdomain) and ``{key}``.
``HAULWATCH_TILES_KEY``
    the value of ``{key}`` (e.g. the bureau's Tianditu ``tk``); a secret, read
    from the environment only, handed only to signed-in readers.

Each base map has a **datum**: ``wgs84`` (Tianditu is CGCS2000, which agrees
with WGS-84 at map scale; most intranet servers) or ``gcj02`` (AMap / Gaode,
Tencent). With a ``gcj02`` base map the console shifts every overlay by
``haulwatch.geo.chinacoords.wgs84_to_gcj02`` (its JS port, ``web/chinacoords.js``)
so they line up with the streets.

:func:`install` adds ``GET /api/console/config`` (tiles, the dataset's time
zone and coordinate system; any reading role), ``GET /api/i18n/{lang}`` (the
string catalog, open: the sign-in form needs it) and lets the console page's
Content-Security-Policy load images from the configured tile hosts, nothing else.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from haulwatch.api.auth import Reader
from haulwatch.api.deps import ServiceDep
from haulwatch.errors import UserError
from haulwatch.i18n import DEFAULT_TIMEZONE, LANGS, LanguageError, catalog, normalize_lang

__all__ = [
    "DATUMS",
    "PRESETS",
    "Basemap",
    "TileLayer",
    "TileSettings",
    "TileSettingsError",
    "install",
    "tile_origins",
]

#: Datums a base map may be drawn in.
DATUMS: tuple[str, ...] = ("wgs84", "gcj02")

_TIANDITU = (
    "https://t{s}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
    "&TILECOL={x}&tk={key}"
)


class TileSettingsError(UserError, ValueError):
    """A tile setting the console cannot use (names the field, the value and what is allowed)."""


@dataclass(frozen=True)
class TileLayer:
    """One XYZ tile layer.

    Parameters
    ----------
    url : str
        Template with ``{z}``, ``{x}``, ``{y}`` (and optionally ``{s}``, ``{key}``).
    subdomains : str
        Characters substituted for ``{s}`` (default ``""``).
    min_zoom, max_zoom : int
        Zoom range the server has tiles for (default 1–18).
    """

    url: str
    subdomains: str = ""
    min_zoom: int = 1
    max_zoom: int = 18


@dataclass(frozen=True)
class Basemap:
    """A base map the dispatcher may choose: one or more tile layers drawn together.

    Parameters
    ----------
    id : str
        Short identifier (``[a-z0-9_-]``).
    name : str
        Shown in the layer switch.
    datum : str
        ``wgs84`` or ``gcj02``: the system the tiles are drawn in.
    attribution : str
        Shown on the map (plain text).
    layers : tuple of TileLayer
        Drawn bottom to top (e.g. Tianditu vector, then its annotation).
    """

    id: str
    name: str
    datum: str
    attribution: str
    layers: tuple[TileLayer, ...]


@dataclass(frozen=True)
class TileSettings:
    """The deployment's base maps (none by default) and the ``{key}`` value.

    Parameters
    ----------
    basemaps : tuple of Basemap
        In the order the layer switch lists them; the first is shown at start.
    key : str
        Substituted for ``{key}`` in the URLs handed to the browser.
    """

    basemaps: tuple[Basemap, ...] = ()
    key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TileSettings:
        """Read ``HAULWATCH_TILES`` and ``HAULWATCH_TILES_KEY`` (see the module docs).

        Raises
        ------
        TileSettingsError
            When the value is neither ``none``, known presets nor valid JSON base maps.
        """
        env = os.environ if env is None else env
        return parse_tiles(env.get("HAULWATCH_TILES", ""), key=env.get("HAULWATCH_TILES_KEY", ""))

    def public(self) -> list[dict[str, Any]]:
        """The base maps as the console reads them (``{key}`` filled in)."""
        return [
            {
                "id": b.id,
                "name": b.name,
                "datum": b.datum,
                "attribution": b.attribution,
                "layers": [
                    {
                        "url": layer.url.replace("{key}", self.key),
                        "subdomains": layer.subdomains,
                        "min_zoom": layer.min_zoom,
                        "max_zoom": layer.max_zoom,
                    }
                    for layer in b.layers
                ],
            }
            for b in self.basemaps
        ]


def _tianditu(layer: str, note: str) -> tuple[TileLayer, ...]:
    return (
        TileLayer(_TIANDITU.replace("{layer}", layer), subdomains="01234567", max_zoom=18),
        TileLayer(_TIANDITU.replace("{layer}", note), subdomains="01234567", max_zoom=18),
    )


#: Base maps a deployment may name instead of writing JSON.
PRESETS: dict[str, Basemap] = {
    "tianditu": Basemap(
        "tianditu", "天地图 矢量 Tianditu", "wgs84", "© 天地图 国家地理信息公共服务平台",
        _tianditu("vec", "cva"),
    ),
    "tianditu-img": Basemap(
        "tianditu-img", "天地图 影像 Tianditu imagery", "wgs84",
        "© 天地图 国家地理信息公共服务平台", _tianditu("img", "cia"),
    ),
    "amap": Basemap(
        "amap", "高德地图 AMap", "gcj02", "© 高德地图 AutoNavi",
        (TileLayer("https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1"
                   "&style=8&x={x}&y={y}&z={z}", subdomains="1234", min_zoom=3, max_zoom=18),),
    ),
}

_ID_RE = re.compile(r"^[a-z0-9_-]{1,40}$")


def _check_url(url: Any, where: str) -> str:
    if not isinstance(url, str) or not url:
        raise TileSettingsError(f"{where}.url: value {url!r} is not allowed; allowed: a URL template")
    missing = [p for p in ("{z}", "{x}", "{y}") if p not in url]
    if missing:
        raise TileSettingsError(
            f"{where}.url: value {url!r} is not allowed; allowed: a template with {{z}}, {{x}}, "
            f"{{y}} (missing {', '.join(missing)})"
        )
    parts = urlsplit(url.replace("{", "").replace("}", ""))
    if parts.scheme not in ("http", "https", "") or (parts.scheme == "" and not url.startswith("/")):
        raise TileSettingsError(
            f"{where}.url: value {url!r} is not allowed; allowed: an http(s) URL or a path "
            "starting with /"
        )
    return url


def _int(value: Any, where: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 24:
        raise TileSettingsError(f"{where}: value {value!r} is not allowed; allowed: an integer 0-24")
    return value


def _basemap(item: Any, i: int) -> Basemap:
    where = f"HAULWATCH_TILES[{i}]"
    if isinstance(item, str):
        if item not in PRESETS:
            raise TileSettingsError(
                f"{where}: value {item!r} is not allowed; allowed: {', '.join(PRESETS)} or an object"
            )
        return PRESETS[item]
    if not isinstance(item, Mapping):
        raise TileSettingsError(f"{where}: value {item!r} is not allowed; allowed: an object")
    datum = item.get("datum")
    if datum not in DATUMS:
        raise TileSettingsError(
            f"{where}.datum: value {datum!r} is not allowed; allowed: {', '.join(DATUMS)}"
        )
    raw_layers = item.get("layers")
    if raw_layers is None:
        raw_layers = [item]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise TileSettingsError(
            f"{where}.layers: value {raw_layers!r} is not allowed; allowed: a non-empty list"
        )
    layers = []
    for j, raw in enumerate(raw_layers):
        w = f"{where}.layers[{j}]" if "layers" in item else where
        if not isinstance(raw, Mapping):
            raise TileSettingsError(f"{w}: value {raw!r} is not allowed; allowed: an object")
        sub = raw.get("subdomains", "")
        if not isinstance(sub, str):
            raise TileSettingsError(f"{w}.subdomains: value {sub!r} is not allowed; allowed: a string")
        if "{s}" in str(raw.get("url", "")) and not sub:
            raise TileSettingsError(
                f"{w}.subdomains: value '' is not allowed; allowed: the characters for {{s}}"
            )
        layers.append(TileLayer(
            _check_url(raw.get("url"), w), subdomains=sub,
            min_zoom=_int(raw.get("min_zoom"), f"{w}.min_zoom", 1),
            max_zoom=_int(raw.get("max_zoom"), f"{w}.max_zoom", 18),
        ))
    ident = item.get("id", f"basemap-{i + 1}")
    if not isinstance(ident, str) or not _ID_RE.match(ident):
        raise TileSettingsError(
            f"{where}.id: value {ident!r} is not allowed; allowed: 1-40 of a-z 0-9 _ -"
        )
    name = item.get("name", ident)
    attribution = item.get("attribution", "")
    if not isinstance(name, str) or not isinstance(attribution, str):
        raise TileSettingsError(f"{where}: name and attribution must be strings")
    return Basemap(ident, name, datum, attribution, tuple(layers))


def parse_tiles(value: str, *, key: str = "") -> TileSettings:
    """Parse a ``HAULWATCH_TILES`` value (see the module docs).

    Parameters
    ----------
    value : str
        ``""``/``none``, presets separated by commas, or JSON.
    key : str
        Value of ``{key}``.

    Returns
    -------
    TileSettings

    Raises
    ------
    TileSettingsError
        When the value cannot be used; the message names the field.
    """
    text = (value or "").strip()
    if text.lower() in ("", "none", "off"):
        return TileSettings((), key)
    if text.startswith(("[", "{")):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TileSettingsError(f"HAULWATCH_TILES: not valid JSON ({exc})") from None
        if isinstance(items, Mapping):
            items = [items]
    else:
        items = [p.strip() for p in text.split(",") if p.strip()]
    if not isinstance(items, list):
        raise TileSettingsError("HAULWATCH_TILES: value is not allowed; allowed: a list of base maps")
    basemaps = tuple(_basemap(item, i) for i, item in enumerate(items))
    ids = [b.id for b in basemaps]
    if len(set(ids)) != len(ids):
        raise TileSettingsError(f"HAULWATCH_TILES: base map ids {ids} are not unique")
    if any("{key}" in layer.url for b in basemaps for layer in b.layers) and not key:
        raise TileSettingsError(
            "HAULWATCH_TILES_KEY: value '' is not allowed; allowed: the tile service key its "
            "URLs use ({key})"
        )
    return TileSettings(basemaps, key)


def tile_origins(settings: TileSettings) -> list[str]:
    """The ``scheme://host[:port]`` every configured tile may come from (``{s}`` expanded)."""
    out: list[str] = []
    for b in settings.basemaps:
        for layer in b.layers:
            subs = list(layer.subdomains) if "{s}" in layer.url else [""]
            for s in subs:
                parts = urlsplit(layer.url.replace("{s}", s))
                if parts.scheme in ("http", "https") and parts.netloc:
                    origin = f"{parts.scheme}://{parts.netloc}"
                    if origin not in out:
                        out.append(origin)
    return out


class _TileCSP:
    """ASGI middleware: add the tile hosts to ``img-src`` of the console page's CSP.

    The hosts are read from ``app.state.tiles`` at each request, so a test (or an
    embedding application) may replace the settings after :func:`install`.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        owner = scope.get("app")
        tiles = getattr(getattr(owner, "state", None), "tiles", None)
        origins = tile_origins(tiles) if isinstance(tiles, TileSettings) else []
        if scope.get("type") != "http" or not origins:
            await self.app(scope, receive, send)
            return
        extra = " ".join(origins).encode("ascii")

        async def patched(message: dict) -> None:
            if message.get("type") == "http.response.start":
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-security-policy":
                        value = value.replace(b"img-src 'self'", b"img-src 'self' " + extra, 1)
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, patched)


def _timezone(svc: Any) -> str:
    registry = getattr(svc, "registry", None)
    return str(getattr(registry, "timezone", None) or DEFAULT_TIMEZONE)


def install(app: FastAPI, tiles: TileSettings | None = None) -> None:
    """Add the console's configuration and catalog endpoints to ``app``.

    Parameters
    ----------
    app : FastAPI
        The service (``create_app`` calls this).
    tiles : TileSettings, optional
        Base maps; default: ``settings.tiles`` of the service when it has that
        field, else :meth:`TileSettings.from_env`. Kept on ``app.state.tiles``
        (read at each request: it may be replaced before the app serves).
    """
    if getattr(app.state, "haulwatch_console_config", False):
        return
    if tiles is None:
        svc = getattr(app.state, "service", None)
        tiles = getattr(getattr(svc, "settings", None), "tiles", None)
    if not isinstance(tiles, TileSettings):
        tiles = TileSettings.from_env()
    app.state.tiles = tiles
    router = APIRouter(tags=["console"])

    @router.get("/api/console/config", summary="Base maps, time zone and datum for the console")
    def console_config(request: Request, svc: ServiceDep, who: Reader) -> dict[str, Any]:
        """Base maps (none by default), the dataset's time zone and coordinate system."""
        registry = getattr(svc, "registry", None)
        current = getattr(request.app.state, "tiles", None)
        return {
            "timezone": _timezone(svc),
            "coord_system": str(getattr(registry, "coord_system", "wgs84")),
            "basemaps": current.public() if isinstance(current, TileSettings) else [],
            "langs": list(LANGS),
        }

    @router.get("/api/i18n/{lang}", summary="The console's string catalog (open)")
    def i18n_catalog(lang: str) -> JSONResponse:
        """The catalog of ``lang`` (``zh-CN`` or ``en``) as ``key -> text``."""
        try:
            name = normalize_lang(lang)
        except LanguageError as exc:
            raise HTTPException(
                status_code=404, detail={"field": "lang", "reason": str(exc)}
            ) from None
        return JSONResponse(
            dict(catalog(name)),
            headers={"Cache-Control": "no-cache", "Content-Language": name},
        )

    app.include_router(router)
    app.add_middleware(_TileCSP)
    app.state.haulwatch_console_config = True
