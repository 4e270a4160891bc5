"""Structured reasons of the drone room: a stable code plus parameters, rendered per language.

Every explanation the scheduler, the fleet and the planner give (why this dock,
why it waits, why a drone is unavailable, why a mission was refused) carries,
besides its English sentence, a **reason**: ``{"code": str, "params": dict}``.
The code names the catalog key ``reason.<code>`` (``haulwatch/locales/*.json``);
the parameters are numbers, ids and UTC times. Faces (console, CLI) render them
in the user's language with :func:`render`; the console does the same in
``api/web/app.js`` (``renderReason``), by the same rules:

- a parameter whose name ends in ``_utc`` is an ISO UTC time, shown in the
  dataset's zone (``2026-03-02 12:45``);
- ``kind`` → the alert kind's name, ``severity`` → ``severity.<x>``,
  ``refusal`` → ``refusal.<x>`` (the refusal code in words), ``state`` →
  ``fleet.state.<x>``, ``outcome`` → ``mission_status.<x>``, ``dock`` →
  ``reason.dock_label`` (机巢 N1; the console shows the nest's name when it has one);
- a parameter that is itself a reason (a dict with ``code``) is rendered;
- ``parts``: a list of reasons joined with ``；`` (``; `` in English);
  ``notes``: a list of reasons, each preceded by that separator (an empty list
  renders as nothing);
- anything else (numbers, ids, free text a device sent) is shown as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["REASON_CODES", "REFUSAL_PARAM_CODES", "reason", "refusal_reason", "render"]

#: Every code a reason of the drone room may carry (catalog key ``reason.<code>``).
REASON_CODES: frozenset[str] = frozenset(
    {
        # scheduler decisions
        "launch",
        "launch_attempt",
        "other_dock",
        "other_dock_busy",
        "dock_infeasible",
        "wait",
        "dock_busy",
        "dock_busy_unknown",
        "dock_no_drones",
        "dock_refused",
        "dock_waits",
        "drop_infeasible",
        "drop_no_docks",
        "drop_stale",
        "done",
        "requeue",
        "drop_retries",
        "failure_detail",
        "service_restarted",
        "cancelled",
        "cancelled_by",
        "cancelled_in_flight",
        "reprioritise",
        "reprioritise_by",
        "timed_priority",
        "hold",
        "release",
        # drone holds (fleet)
        "no_connection",
        "charging",
        "out_of_service",
        # automatic dispatch (fleet.offer)
        "auto_off",
        "auto_kind",
        "auto_severity",
        "auto_hours",
        "auto_no_location",
        "auto_no_dock",
        "auto_known",
        "auto_dispatched",
        # missions (service): flights and their refusals
        "completed",
        "flight_failed",
        "flight_aborted",
        "aborted_by",
        "no_vehicle",
        "restarted_before_end",
        # planner refusals (MissionRefused.reason_dict)
        "refused.out_of_range",
        "refused.battery",
        "refused.target_in_no_fly",
        "refused.dock_in_no_fly",
        "refused.orbit_in_no_fly",
        "refused.no_path",
        "refused.daylight_sun",
        "refused.daylight_window",
        "refused.no_feasible_dock",
        "refused.other",
    }
)

#: Planner refusal code -> the reason code of its sentence.
REFUSAL_PARAM_CODES: dict[str, str] = {
    "out_of_range": "refused.out_of_range",
    "battery": "refused.battery",
    "target_in_no_fly": "refused.target_in_no_fly",
    "dock_in_no_fly": "refused.dock_in_no_fly",
    "orbit_in_no_fly": "refused.orbit_in_no_fly",
    "no_path": "refused.no_path",
    "no_feasible_dock": "refused.no_feasible_dock",
}


def reason(code: str, **params: Any) -> dict[str, Any]:
    """A reason ``{"code": code, "params": params}`` (``code`` must be in :data:`REASON_CODES`).

    Raises
    ------
    ValueError
        When ``code`` is not a known code (a bug: add it here and to both catalogs).
    """
    if code not in REASON_CODES:
        raise ValueError(f"reason code {code!r} is not in REASON_CODES")
    return {"code": code, "params": dict(params)}


def _r(x: Any, digits: int = 0) -> float | int | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return round(v) if digits == 0 else round(v, digits)


def refusal_reason(code: str, message: str, details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The reason of a planner refusal (``MissionRefused``): its figures as parameters.

    Parameters
    ----------
    code : str
        The refusal code (``out_of_range``, ``battery``, ``daylight``...).
    message : str
        The English sentence (kept as ``detail`` for codes without a sentence).
    details : mapping
        ``MissionRefused.details``.
    """
    d = dict(details or {})
    if code == "out_of_range":
        return reason(
            "refused.out_of_range",
            distance_m=_r(d.get("straight_distance_m")),
            max_range_m=_r(d.get("max_range_m")),
        )
    if code == "battery":
        return reason(
            "refused.battery",
            duration_min=_r(float(d.get("duration_s", 0.0)) / 60, 1),
            battery_used_pct=_r(d.get("battery_used_pct")),
            reserve_pct=_r(d.get("reserve_pct")),
            usable_min=_r(float(d.get("usable_endurance_s", 0.0)) / 60, 1),
        )
    if code == "target_in_no_fly":
        return reason(
            "refused.target_in_no_fly",
            lat=_r(d.get("target_lat_deg"), 6),
            lon=_r(d.get("target_lon_deg"), 6),
        )
    if code == "dock_in_no_fly":
        return reason("refused.dock_in_no_fly", dock=str(d.get("dock_site_id", "")))
    if code == "orbit_in_no_fly":
        return reason("refused.orbit_in_no_fly", distance_m=_r(d.get("target_to_no_fly_m")))
    if code == "no_path":
        return reason("refused.no_path", zones=int(d.get("no_fly_zones", 0) or 0))
    if code == "daylight" and "sun_elevation_deg" in d:
        elev = [float(e) for e in d.get("sun_elevation_deg") or [0.0]]
        return reason(
            "refused.daylight_sun",
            elevation_deg=_r(min(elev), 1),
            start_utc=_utc_text(d.get("start")),
        )
    if code == "daylight":
        return reason(
            "refused.daylight_window",
            start_utc=_utc_text(d.get("start")),
            end_utc=_utc_text(d.get("end")),
        )
    if code == "no_feasible_dock":
        per_dock = d.get("per_dock") or []
        parts = []
        for item in per_dock:
            site, sub = [*list(item), "", ""][:2]
            parts.append(reason("dock_refused", dock=str(site), refusal=str(sub)))
        return reason("refused.no_feasible_dock", parts=parts)
    return reason("refused.other", refusal=str(code), detail=str(message))


def _utc_text(value: Any) -> str:
    if value is None or value == "":
        return ""
    import pandas as pd

    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _word(prefix: str, value: Any, lang: str) -> str:
    from haulwatch.i18n import has_key, normalize_lang, t

    key = f"{prefix}.{value}"
    return t(key, lang) if has_key(key, normalize_lang(lang)) else str(value)


def render(
    value: Mapping[str, Any] | None, lang: str | None = None, timezone: str | None = None
) -> str:
    """The sentence of a reason in ``lang`` (default Chinese), times in ``timezone``.

    Parameters
    ----------
    value : mapping or None
        ``{"code": ..., "params": {...}}``; None or ``{}`` renders as ``""``.
    lang : str, optional
        Language tag (default ``zh-CN``).
    timezone : str, optional
        Zone times are shown in (default ``Asia/Shanghai``).

    Returns
    -------
    str
    """
    from haulwatch.i18n import DEFAULT_LANG, format_time, kind_label, normalize_lang, t

    if not value or not value.get("code"):
        return ""
    lang = normalize_lang(lang or DEFAULT_LANG)
    sep = "; " if lang == "en" else "；"
    out: dict[str, Any] = {}
    for name, v in dict(value.get("params") or {}).items():
        if name in ("parts", "notes") and isinstance(v, list):
            texts = [render(p, lang, timezone) for p in v]
            out[name] = sep.join(texts) if name == "parts" else "".join(sep + x for x in texts)
        elif isinstance(v, Mapping) and "code" in v:
            out[name] = render(v, lang, timezone)
        elif name.endswith("_utc"):
            out[name] = format_time(v, timezone) if v else "—"
        elif name == "kind":
            out[name] = kind_label(str(v), lang) if v else _word("reason", "any_alert", lang)
        elif name == "severity":
            out[name] = _word("severity", v, lang) if v else ""
        elif name == "refusal":
            out[name] = _word("refusal", v, lang)
        elif name == "state":
            out[name] = _word("fleet.state", v, lang)
        elif name == "outcome":
            out[name] = _word("mission_status", v, lang)
        elif name == "dock":
            out[name] = t("reason.dock_label", lang, dock=v)
        else:
            out[name] = "" if v is None else v
    return t(f"reason.{value['code']}", lang, **out)


def detailed_refusal(
    refused: Any,
    target: Mapping[str, Any],
    docks: Any,
    *,
    no_fly: Any = None,
    config: Any = None,
    now: Any = None,
) -> dict[str, Any]:
    """The reason of a refusal with each dock's own figures (``no_feasible_dock``).

    ``choose_dock`` keeps only each dock's code and English sentence; this plans each
    refused dock again (same inputs, same refusal) to give its structured reason
    (``dock_waits`` parts). Other refusals: their :attr:`MissionRefused.reason_dict`.

    Parameters
    ----------
    refused : MissionRefused
        The planner's refusal.
    target, docks, no_fly, config, now
        As given to ``choose_dock``.
    """
    from haulwatch.drone.plan import MissionRefused, plan_mission

    per_dock = refused.details.get("per_dock") if refused.reason == "no_feasible_dock" else None
    if not per_dock:
        return refused.reason_dict
    by_id = {d.site_id: d for d in docks}
    parts = []
    for item in per_dock:
        site, code, message = [*list(item), "", "", ""][:3]
        why = None
        if site in by_id:
            try:
                plan_mission(target, by_id[site], no_fly=no_fly, config=config, now=now)
            except MissionRefused as exc:
                why = exc.reason_dict
        if why is None:
            why = reason("refused.other", refusal=str(code), detail=str(message))
        parts.append(reason("dock_waits", dock=str(site), why=why))
    return reason("refused.no_feasible_dock", parts=parts)
