"""Base-map settings (api/tiles.py): presets, JSON, datums, refusals, the console endpoints."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from haulwatch.api.tiles import (
    PRESETS,
    TileSettings,
    TileSettingsError,
    parse_tiles,
    tile_origins,
)
from haulwatch.i18n import catalog


class TestParse:
    @pytest.mark.parametrize("value", ["", "none", "  NONE ", "off"])
    def test_none_by_default(self, value: str) -> None:
        assert parse_tiles(value).basemaps == ()
        assert TileSettings.from_env({}).basemaps == ()

    def test_presets_with_the_key(self) -> None:
        s = TileSettings.from_env({"HAULWATCH_TILES": "tianditu, amap", "HAULWATCH_TILES_KEY": "k123"})
        assert [(b.id, b.datum) for b in s.basemaps] == [("tianditu", "wgs84"), ("amap", "gcj02")]
        tianditu = s.public()[0]
        assert len(tianditu["layers"]) == 2  # vector + annotation
        assert all("tk=k123" in layer["url"] for layer in tianditu["layers"])
        assert "{key}" not in json.dumps(s.public())
        assert "k123" not in repr(s)  # the key is a secret

    def test_key_is_required_when_urls_use_it(self) -> None:
        with pytest.raises(TileSettingsError, match="HAULWATCH_TILES_KEY"):
            parse_tiles("tianditu")

    def test_json_base_map(self) -> None:
        s = parse_tiles(json.dumps([{
            "id": "intranet", "name": "内网底图", "datum": "wgs84", "attribution": "© 市测绘院",
            "url": "http://10.1.2.3:8080/tiles/{z}/{x}/{y}.png", "max_zoom": 19}]))
        (b,) = s.basemaps
        assert (b.id, b.name, b.datum, b.attribution) == ("intranet", "内网底图", "wgs84", "© 市测绘院")
        assert b.layers[0].max_zoom == 19
        assert tile_origins(s) == ["http://10.1.2.3:8080"]

    def test_origins_expand_subdomains(self) -> None:
        s = TileSettings((PRESETS["amap"],))
        assert tile_origins(s) == [f"https://webrd0{i}.is.autonavi.com" for i in "1234"]

    def test_same_origin_path_is_allowed_without_extra_origin(self) -> None:
        s = parse_tiles('{"datum": "gcj02", "url": "/tiles/{z}/{x}/{y}.png"}')
        assert s.basemaps[0].datum == "gcj02"
        assert tile_origins(s) == []

    @pytest.mark.parametrize(("value", "match"), [
        ('[{"datum": "bd09", "url": "http://h/{z}/{x}/{y}"}]', r"datum: value 'bd09' .* wgs84, gcj02"),
        ('[{"datum": "wgs84", "url": "http://h/{z}/{x}"}]', r"missing \{y\}"),
        ('[{"datum": "wgs84", "url": "ftp://h/{z}/{x}/{y}"}]', r"http\(s\) URL"),
        ('[{"datum": "wgs84", "url": "http://t{s}.h/{z}/{x}/{y}"}]', r"subdomains"),
        ('[{"datum": "wgs84", "url": "http://h/{z}/{x}/{y}", "max_zoom": 40}]', r"max_zoom"),
        ('[{"datum": "wgs84", "url": "http://h/{z}/{x}/{y}", "id": "Bad Id"}]', r"\.id"),
        ("google", r"allowed: tianditu, tianditu-img, amap"),
        ("[not json", r"not valid JSON"),
        ('[{"id": "a", "datum": "wgs84", "url": "http://h/{z}/{x}/{y}"},'
         ' {"id": "a", "datum": "wgs84", "url": "http://h/{z}/{x}/{y}"}]', r"not unique"),
    ])
    def test_refusals_name_the_field(self, value: str, match: str) -> None:
        with pytest.raises(TileSettingsError, match=match):
            parse_tiles(value)


class TestEndpoints:
    def test_catalog_is_open_and_complete(self) -> None:
        from haulwatch.api.tiles import install

        app = FastAPI()
        install(app, TileSettings())
        with TestClient(app) as c:
            r = c.get("/api/i18n/zh-CN")
            assert r.status_code == 200
            assert r.json() == dict(catalog("zh-CN"))
            assert c.get("/api/i18n/en").json()["kind.illegal_dump"] == "Illegal dump"
            assert c.get("/api/i18n/zh").headers["content-language"] == "zh-CN"
            bad = c.get("/api/i18n/fr")
            assert bad.status_code == 404
            assert bad.json()["detail"]["field"] == "lang"
