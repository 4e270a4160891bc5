"""The string catalogs (haulwatch.i18n): complete, in step, and every key used exists."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pandas as pd
import pytest

from haulwatch import i18n
from haulwatch.i18n import (
    LANGS,
    CatalogKeyError,
    LanguageError,
    catalog,
    format_time,
    kind_label,
    negotiate,
    normalize_lang,
    site_kind_label,
    t,
    zone_note,
)
from haulwatch.routes.alerts import KINDS

ROOT = Path(__file__).resolve().parents[1]
LOCALES = ROOT / "haulwatch" / "locales"
# Rooms whose code may use catalog keys, plus the console.
CODE_DIRS = ("haulwatch", "geo", "ingest", "routes", "drone", "api")
# A literal key passed to t() / i18n.t() (Python) or t() (console JS).
_USE = re.compile(r"""(?<![\w.])(?:i18n\.)?t\(\s*["']([A-Za-z0-9_\-]+\.[A-Za-z0-9_.\-]+)["']""")
_HTML_USE = re.compile(r"""data-i18n(?:-[a-z\-]+)?=["']([A-Za-z0-9_.\-]+)["']""")
_HTML_ATTR_USE = re.compile(r"""data-i18n-attr=["']([^"']+)["']""")


def _raw(lang: str) -> dict[str, str]:
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _used_keys() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    files: list[Path] = []
    for room in CODE_DIRS:
        base = ROOT / room
        files += [p for p in base.rglob("*.py") if "__pycache__" not in p.parts]
    files += [ROOT / "api" / "web" / "app.js"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for key in _USE.findall(text):
            used.setdefault(key, set()).add(str(path.relative_to(ROOT)))
    html = (ROOT / "api" / "web" / "index.html").read_text(encoding="utf-8")
    for key in _HTML_USE.findall(html):
        used.setdefault(key, set()).add("api/web/index.html")
    for spec in _HTML_ATTR_USE.findall(html):
        for pair in spec.split(";"):
            if ":" in pair:
                used.setdefault(pair.split(":", 1)[1].strip(), set()).add("api/web/index.html")
    return used


class TestCatalogs:
    def test_every_language_has_the_same_keys(self) -> None:
        keys = {lang: set(_raw(lang)) for lang in LANGS}
        zh, en = keys["zh-CN"], keys["en"]
        assert zh - en == set(), f"keys missing from en.json: {sorted(zh - en)}"
        assert en - zh == set(), f"keys missing from zh-CN.json: {sorted(en - zh)}"

    def test_placeholders_agree_between_languages(self) -> None:
        zh, en = _raw("zh-CN"), _raw("en")
        wrong = {k: (_placeholders(zh[k]), _placeholders(en[k])) for k in zh
                 if _placeholders(zh[k]) != _placeholders(en.get(k, ""))}
        assert wrong == {}

    def test_no_text_is_empty_and_chinese_is_chinese(self) -> None:
        zh = _raw("zh-CN")
        assert all(v.strip() for v in zh.values())
        assert all(v.strip() for v in _raw("en").values())
        # Labels a dispatcher reads carry Chinese characters (numbers/units aside).
        for key in [k for k in zh if k.startswith(("kind.", "site_kind.", "status."))]:
            assert re.search(r"[\u4e00-\u9fff]", zh[key]), key

    def test_every_key_used_in_code_or_console_exists(self) -> None:
        used = _used_keys()
        assert len(used) > 50  # the scan does find the console's keys
        for lang in LANGS:
            have = set(_raw(lang))
            missing = {k: sorted(v) for k, v in used.items() if k not in have}
            assert missing == {}, f"keys used but missing from {lang}.json: {missing}"

    def test_every_alert_kind_and_site_kind_is_named(self) -> None:
        for lang in LANGS:
            for kind in KINDS:
                assert i18n.has_key(f"kind.{kind}", lang)
            for kind in ("origin", "disposal", "depot", "nest", "no_fly"):
                assert i18n.has_key(f"site_kind.{kind}", lang)
            for kind in KINDS:  # the sentence of each kind (routes.report.localized_summary)
                assert i18n.has_key(f"summary.{kind}", lang)

    def test_terms_enforcement_staff_use(self) -> None:
        assert kind_label("illegal_dump") == "偷倒"
        assert kind_label("route_deviation") == "偏离路线"
        assert "黑工地" in kind_label("unpermitted_origin")
        assert "非法产生点" in kind_label("unpermitted_origin")
        assert kind_label("unmanifested_trip") == "无联单运输"
        assert kind_label("manifest_not_executed") == "联单未执行"
        assert kind_label("wrong_disposal") == "非指定消纳场"
        assert kind_label("gps_gap") == "信号中断"
        assert kind_label("unregistered_vehicle") == "未备案车辆"
        assert kind_label("dump_hotspot") == "偷倒热点"
        assert [site_kind_label(k) for k in ("origin", "disposal", "depot", "nest", "no_fly")] == [
            "产生点", "消纳场", "停车场", "无人机机巢", "禁飞区"]
        assert kind_label("illegal_dump", "en") == "Illegal dump"
        assert kind_label("something_new") == "something_new"


class TestT:
    def test_parameters_are_filled(self) -> None:
        assert t("console.page_info", "en", **{"from": 1, "to": 50, "total": 55}) == "1–50 of 55"
        assert t("console.page_info", **{"from": 1, "to": 50, "total": 55}) == "第 1–50 条，共 55 条"

    def test_missing_parameter_stays_visible(self) -> None:
        assert t("unit.min", "en") == "{m} min"
        assert t("unit.min", "en", other=1) == "{m} min"

    def test_unknown_key_is_an_error(self) -> None:
        with pytest.raises(CatalogKeyError, match=r"no\.such\.key"):
            t("no.such.key")

    def test_catalog_is_a_copy(self) -> None:
        cat = catalog("en")
        cat["kind.illegal_dump"] = "changed"
        assert t("kind.illegal_dump", "en") == "Illegal dump"


class TestLanguages:
    @pytest.mark.parametrize(("tag", "lang"), [
        (None, "zh-CN"), ("", "zh-CN"), ("zh", "zh-CN"), ("zh_CN", "zh-CN"), ("ZH-cn", "zh-CN"),
        ("zh-Hans", "zh-CN"), ("en", "en"), ("en-US", "en"), ("en_GB", "en"),
    ])
    def test_normalize(self, tag: str | None, lang: str) -> None:
        assert normalize_lang(tag) == lang

    @pytest.mark.parametrize("tag", ["fr", "zh-TW", "de-DE", "xx"])
    def test_unknown_language_is_refused(self, tag: str) -> None:
        with pytest.raises(LanguageError, match=r"lang: value .* allowed: zh-CN, en"):
            normalize_lang(tag)

    @pytest.mark.parametrize(("header", "lang"), [
        (None, "zh-CN"), ("", "zh-CN"), ("en-US,en;q=0.9", "en"), ("fr-FR,fr;q=0.9", "zh-CN"),
        ("fr;q=1, en;q=0.5, zh-CN;q=0.8", "zh-CN"), ("de, en;q=0.3", "en"), ("*", "zh-CN"),
        ("en;q=0, zh;q=0.1", "zh-CN"), ("en;q=bad", "zh-CN"),
    ])
    def test_accept_language(self, header: str | None, lang: str) -> None:
        assert negotiate(header) == lang


class TestTimes:
    def test_shown_in_the_dataset_zone_without_seconds(self) -> None:
        utc = pd.Timestamp("2026-03-02T03:06:59Z")
        assert format_time(utc) == "2026-03-02 11:06"
        assert format_time(utc, "Asia/Shanghai", seconds=True) == "2026-03-02 11:06:59"
        assert format_time(utc, "Europe/Berlin") == "2026-03-02 04:06"
        assert format_time("2026-03-02T03:06:00Z") == "2026-03-02 11:06"
        # Naive values are stored UTC.
        assert format_time(pd.Timestamp("2026-03-02 16:30")) == "2026-03-03 00:30"

    def test_missing_time_is_blank(self) -> None:
        assert format_time(None) == ""
        assert format_time(pd.NaT) == ""

    def test_zone_is_named(self) -> None:
        assert "Asia/Shanghai" in zone_note()
        assert zone_note("Asia/Urumqi", "en") == "Times are in the Asia/Urumqi time zone"
        assert "Asia/Shanghai" in zone_note("<script>")


def test_reason_keys_are_the_drone_rooms_codes() -> None:
    """``reason.<code>`` keys: one per code of drone.reasons (both catalogs), no orphans."""
    from haulwatch.drone.reasons import REASON_CODES

    helpers = {"any_alert", "dock_label"}  # words the renderers use, not codes
    for lang in LANGS:
        keys = {k[len("reason."):] for k in _raw(lang) if k.startswith("reason.")}
        assert keys == set(REASON_CODES) | helpers, (lang, keys ^ (set(REASON_CODES) | helpers))
