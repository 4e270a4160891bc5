"""One string catalog per language: every text a user reads, Chinese first.

The catalogs are JSON files in ``haulwatch/locales/`` (``zh-CN.json``,
``en.json``), flat objects of ``key -> text``. Texts may hold ``{name}``
placeholders filled by :func:`t`. The console fetches the same files from the
service (``GET /api/i18n/{lang}``), so the browser and Python never disagree.

Every room may import this module (it imports nothing of the project except
:mod:`haulwatch.errors` and :mod:`haulwatch.timezone`). Simplified Chinese (``zh-CN``) is the default;
English (``en``) is given on request (``--lang en``, ``Accept-Language``, the
console's language switch).

Times are shown in the dataset's zone (``Asia/Shanghai`` by default), as
``2026-03-02 11:06`` (:func:`format_time`), with the zone named once per page
or table (:func:`zone_note`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from haulwatch.errors import HaulwatchError, UserError
from haulwatch.timezone import DEFAULT_TIMEZONE  # shown when the dataset names no zone

__all__ = [
    "DEFAULT_LANG",
    "DEFAULT_TIMEZONE",
    "LANGS",
    "CatalogKeyError",
    "LanguageError",
    "catalog",
    "format_time",
    "has_key",
    "kind_label",
    "negotiate",
    "normalize_lang",
    "site_kind_label",
    "t",
    "zone_note",
]

#: Languages with a catalog, the default first.
LANGS: tuple[str, ...] = ("zh-CN", "en")

#: The language every face uses unless asked otherwise.
DEFAULT_LANG: str = "zh-CN"


_ALIASES = {
    "zh": "zh-CN",
    "zh-cn": "zh-CN",
    "zh-hans": "zh-CN",
    "zh-hans-cn": "zh-CN",
    "zh_cn": "zh-CN",
    "cn": "zh-CN",
    "en": "en",
}


class LanguageError(UserError, ValueError):
    """A language that has no catalog."""


class CatalogKeyError(HaulwatchError, KeyError):
    """A key that is not in the catalog (a bug: every key used must be in both catalogs)."""


def normalize_lang(lang: str | None) -> str:
    """Return the catalog name for ``lang`` (``zh``, ``zh_CN``, ``en-US`` ... are accepted).

    Parameters
    ----------
    lang : str or None
        A language tag; ``None`` or ``""`` gives :data:`DEFAULT_LANG`.

    Returns
    -------
    str
        One of :data:`LANGS`.

    Raises
    ------
    LanguageError
        When the tag names a language without a catalog.
    """
    if lang in LANGS:  # the common case, fast
        return lang
    if lang is None or str(lang).strip() == "":
        return DEFAULT_LANG
    tag = str(lang).strip().lower().replace("_", "-")
    if tag in _ALIASES:
        return _ALIASES[tag]
    primary = tag.split("-", 1)[0]
    if primary == "en":
        return "en"
    if primary == "zh" and not any(part in ("tw", "hk", "mo", "hant") for part in tag.split("-")):
        return "zh-CN"
    raise LanguageError(f"lang: value {lang!r} is not allowed; allowed: {', '.join(LANGS)}")


def negotiate(accept_language: str | None) -> str:
    """Pick a catalog from an HTTP ``Accept-Language`` header (default :data:`DEFAULT_LANG`).

    Parameters
    ----------
    accept_language : str or None
        E.g. ``"en-US,en;q=0.9,zh-CN;q=0.8"``.

    Returns
    -------
    str
        The best language of :data:`LANGS` by quality, ties in header order.
    """
    if not accept_language:
        return DEFAULT_LANG
    best: tuple[float, int, str] | None = None
    for i, part in enumerate(str(accept_language).split(",")):
        pieces = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in pieces[1:]:
            if p.startswith("q="):
                try:
                    q = float(p[2:])
                except ValueError:
                    q = 0.0
        try:
            lang = normalize_lang(pieces[0]) if pieces[0] not in ("", "*") else None
        except LanguageError:
            lang = None
        if lang is None or q <= 0:
            continue
        if best is None or q > best[0] or (q == best[0] and i < best[1]):
            best = (q, i, lang)
    return best[2] if best else DEFAULT_LANG


@cache
def _load(lang: str) -> dict[str, str]:
    text = resources.files("haulwatch").joinpath("locales", f"{lang}.json").read_text("utf-8")
    data = json.loads(text)
    return {str(k): str(v) for k, v in data.items()}


def catalog(lang: str = DEFAULT_LANG) -> Mapping[str, str]:
    """Return the whole catalog of a language (read once, then cached).

    Parameters
    ----------
    lang : str
        Language tag (see :func:`normalize_lang`).

    Returns
    -------
    Mapping
        ``key -> text`` (a copy; changing it does not change the catalog).
    """
    return dict(_load(normalize_lang(lang)))


def has_key(key: str, lang: str = DEFAULT_LANG) -> bool:
    """True when ``key`` is in the catalog of ``lang``."""
    return key in _load(normalize_lang(lang))


class _Params(dict):
    def __missing__(self, name: str) -> str:
        return "{" + name + "}"


def t(key: str, lang: str | None = DEFAULT_LANG, **params: Any) -> str:
    """Return the text of ``key`` in ``lang``, with ``{name}`` placeholders filled.

    Parameters
    ----------
    key : str
        Catalog key, e.g. ``"kind.illegal_dump"``.
    lang : str, optional
        Language tag (default ``zh-CN``).
    **params
        Values of the placeholders; a placeholder without a value stays as
        ``{name}`` (visible, never an exception).

    Returns
    -------
    str

    Raises
    ------
    CatalogKeyError
        When ``key`` is not in the catalog.
    LanguageError
        When ``lang`` has no catalog.
    """
    texts = _load(normalize_lang(lang))
    try:
        text = texts[key]
    except KeyError:
        raise CatalogKeyError(
            f"i18n key {key!r} is not in the {normalize_lang(lang)} catalog"
        ) from None
    if not params:
        return text
    return text.format_map(_Params(params))


def kind_label(kind: str, lang: str | None = DEFAULT_LANG) -> str:
    """The name of an alert kind (``illegal_dump`` → 偷倒); unknown kinds are returned as given."""
    key = f"kind.{kind}"
    return t(key, lang) if has_key(key, normalize_lang(lang)) else str(kind)


def site_kind_label(kind: str, lang: str | None = DEFAULT_LANG) -> str:
    """The name of a site kind (``disposal`` → 消纳场); unknown kinds are returned as given."""
    key = f"site_kind.{kind}"
    return t(key, lang) if has_key(key, normalize_lang(lang)) else str(kind)


_ZONE_RE = re.compile(r"^[A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)*$")


def format_time(value: Any, timezone: str | None = DEFAULT_TIMEZONE, *, seconds: bool = False) -> str:
    """Format a time as ``2026-03-02 11:06`` in the dataset's zone.

    Parameters
    ----------
    value : datetime, pandas.Timestamp, str or None
        A tz-aware time (naive values are taken as UTC, as stored); ISO text is parsed.
    timezone : str, optional
        IANA zone (default ``Asia/Shanghai``).
    seconds : bool
        Add ``:SS``.

    Returns
    -------
    str
        The local time, or ``""`` for a missing value.
    """
    import pandas as pd

    if value is None or value == "":
        return ""
    ts = pd.Timestamp(value)
    if ts is pd.NaT:
        return ""
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    ts = ts.tz_convert(timezone or DEFAULT_TIMEZONE)
    return ts.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def zone_note(timezone: str | None = DEFAULT_TIMEZONE, lang: str | None = DEFAULT_LANG) -> str:
    """The sentence naming the zone times are shown in, e.g. ``时间均为 Asia/Shanghai 时区``."""
    zone = timezone or DEFAULT_TIMEZONE
    if not _ZONE_RE.match(str(zone)):
        zone = DEFAULT_TIMEZONE
    return t("common.zone_note", lang, zone=zone)
