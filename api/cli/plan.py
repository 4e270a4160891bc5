"""``haulwatch plan``: plan a drone mission to look at an alert or a point.

Prints the mission items as a table and the feasibility verdict; writes the
QGroundControl ``.plan`` and/or Mission Planner ``.waypoints`` file on request.
Exit codes: 0 feasible, 2 refused (the reason code and why) or bad input,
130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from haulwatch.api.cli.errors import UsageError
from haulwatch.ingest.limits import check_id, check_lon_lat, check_time

__all__ = ["format_items", "load_sites", "register", "run_plan"]

_DESCRIPTION = """\
Plan an ArduPilot Copter mission from a drone dock (a 'nest' site) to look at
an alert (its representative point) or at a point: take off, fly around the
'no_fly' sites, orbit the target taking photos, come back.

The mission is checked before flight: range from the dock, battery (round trip
+ orbit at cruise speed with the reserve), no-fly zones (detour or refusal),
and daylight at take-off and landing. It prints the items and the verdict.

Coordinates: --lat/--lon are WGS-84 unless --coord-system says otherwise; the
sites file is read in the coord_system of the dataset.toml beside it.
Exit status: 0 feasible, 2 refused or bad input (the message says why).
"""

_EPILOG = """\
examples (the demo's docks are the nests N1 and N2; alert ids come from alerts.csv):
  haulwatch audit data/demo --out out/demo
  haulwatch plan --alert ID-b8ecbfb4fdd6a1c4 --alerts out/demo/alerts.geojson \\
      --sites data/demo/sites.geojson
  haulwatch plan --lat 30.0084 --lon 120.5457 --sites data/demo/sites.geojson --dock N1 \\
      --at 2026-03-02T10:00 --out mission.plan --waypoints mission.waypoints \\
      --altitude-m 80 --orbit-radius-m 40
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``plan`` sub-command to the ``haulwatch`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object ``ArgumentParser.add_subparsers`` returned.
    """
    p = subparsers.add_parser(
        "plan",
        help="plan a drone mission to an alert or a point (prints items and feasibility)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_arguments(p)
    p.add_argument("--out", metavar="FILE", help="write a QGroundControl .plan file")
    p.add_argument("--waypoints", metavar="FILE", help="write a Mission Planner .waypoints file")
    add_planning_arguments(p.add_argument_group("planning"))
    p.set_defaults(handler=_handle)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the target (alert or lat/lon), ``--sites`` and ``--dock`` options (plan and fly)."""
    what = parser.add_argument_group("target (either --alert with --alerts, or --lat with --lon)")
    what.add_argument("--alert", metavar="ALERT_ID", help="id of the alert to look at")
    what.add_argument(
        "--alerts", metavar="PATH", help="alerts.geojson or alerts.csv written by 'haulwatch audit'"
    )
    what.add_argument("--lat", type=float, metavar="DEG", help="target latitude")
    what.add_argument("--lon", type=float, metavar="DEG", help="target longitude")
    what.add_argument(
        "--coord-system",
        default="wgs84",
        choices=("wgs84", "gcj02", "bd09"),
        help="system of --lat/--lon (default wgs84; gcj02 = Amap/Tencent, bd09 = Baidu)",
    )
    parser.add_argument(
        "--sites",
        metavar="PATH",
        required=True,
        help="sites.geojson with 'nest' (docks) and optional 'no_fly' sites",
    )
    parser.add_argument("--dock", metavar="SITE_ID", help="nest site to fly from (default: best dock)")
    from haulwatch.api.cli.audit import _lang
    from haulwatch.i18n import DEFAULT_LANG, LANGS

    parser.add_argument(
        "--lang",
        type=_lang,
        default=None,
        metavar="LANG",
        help=f"language of refusal lines: {', '.join(LANGS)} (default {DEFAULT_LANG}, "
        "or $HAULWATCH_LANG)",
    )


def add_planning_arguments(group: Any) -> None:
    """Add the mission planning options shared by ``plan`` and ``fly``."""
    group.add_argument(
        "--altitude-m",
        type=float,
        metavar="M",
        help="transit altitude above the dock (default 70; at most 120)",
    )
    group.add_argument(
        "--orbit-alt-m",
        type=float,
        metavar="M",
        help="orbit altitude above the dock (default 50, or --altitude-m when lower)",
    )
    group.add_argument(
        "--orbit-radius-m", type=float, metavar="M", help="orbit radius (default 50; at most 255)"
    )
    group.add_argument("--orbit-turns", type=int, metavar="N", help="orbit turns (default 2)")
    group.add_argument(
        "--photo-spacing-m", type=float, metavar="M", help="metres between photos (default 15)"
    )
    group.add_argument("--speed-m-s", type=float, metavar="V", help="cruise speed (default 12)")
    group.add_argument(
        "--endurance-min", type=float, metavar="MIN", help="flight time on a full battery (30)"
    )
    group.add_argument(
        "--reserve-pct", type=float, metavar="PCT", help="battery kept on landing (default 25)"
    )
    group.add_argument(
        "--max-range-m", type=float, metavar="M", help="largest dock-target distance (8000)"
    )
    group.add_argument(
        "--clearance-m", type=float, metavar="M", help="distance kept from no-fly zones (30)"
    )
    group.add_argument(
        "--land",
        action="store_true",
        help="end with NAV_LAND at the dock instead of NAV_RETURN_TO_LAUNCH",
    )
    group.add_argument(
        "--at",
        metavar="TIME",
        help="planned take-off, ISO 8601 (no offset = dataset timezone); default: now",
    )
    group.add_argument(
        "--no-daylight", action="store_true", help="skip the daylight (sun elevation) check"
    )


# --------------------------------------------------------------------------- helpers


def load_sites(path: str | Path) -> tuple[Any, str]:
    """Read a sites GeoJSON and return it in WGS-84 with the dataset timezone.

    The ``dataset.toml`` beside the file (if any) gives the coordinate system
    and timezone. Uses ``haulwatch.ingest.registry`` (rejected features are
    reported on stderr by the caller through ``rejects``).

    Returns
    -------
    (GeoDataFrame, str)
        Sites with ``site_id, kind, name, geometry`` in WGS-84, and the timezone.
    """
    from haulwatch.geo.points import convert_geometries
    from haulwatch.ingest.registry import read_settings, read_sites

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"option --sites: file {str(p)!r} does not exist")
    settings = read_settings(p.parent)
    result = read_sites(p, timezone=settings.timezone)
    return convert_geometries(result.frame, settings.coord_system), settings.timezone


def _require_option(problem: tuple[str, str] | None) -> None:
    """Raise a :class:`UsageError` naming the option for a problem of ``ingest.limits``."""
    if problem is not None:
        field, reason = problem
        raise UsageError(f"option --{field.replace('_', '-')}: {reason}")


def target_from_args(args: argparse.Namespace, timezone: str) -> dict[str, Any]:
    by_alert = args.alert is not None or args.alerts is not None
    by_point = args.lat is not None or args.lon is not None
    if by_alert and by_point:
        raise UsageError("give either --alert/--alerts or --lat/--lon, not both")
    if by_point:
        if args.lat is None or args.lon is None:
            raise UsageError("options --lat and --lon must be given together")
        lat, lon = args.lat, args.lon
        _require_option(check_lon_lat(lon, lat))
        if args.coord_system != "wgs84":
            from haulwatch.geo.chinacoords import to_wgs84

            lon_a, lat_a = to_wgs84([lon], [lat], args.coord_system)
            lon, lat = float(lon_a[0]), float(lat_a[0])
        return {"lat": lat, "lon": lon, "alert_id": ""}
    if not by_alert:
        raise UsageError("a target is required: --alert ID --alerts FILE, or --lat and --lon")
    if args.alert is None or args.alerts is None:
        raise UsageError("options --alert and --alerts must be given together")
    _require_option(check_id(args.alert, "alert"))
    from haulwatch.routes.alerts import read_alerts

    path = Path(args.alerts)
    if not path.is_file():
        raise UsageError(f"option --alerts: file {str(path)!r} does not exist")
    alerts = read_alerts(path, timezone=timezone)
    hit = alerts[alerts["alert_id"].astype(str) == args.alert]
    if hit.empty:
        raise UsageError(
            f"option --alert: {args.alert!r} is not in {path} ({len(alerts)} alerts there)"
        )
    row = hit.iloc[0]
    lat, lon = row["lat"], row["lon"]
    if lat is None or lon is None or not (math.isfinite(lat) and math.isfinite(lon)):
        raise UsageError(f"alert {args.alert!r} has no location (lat/lon) to look at")
    return {
        "alert_id": str(row["alert_id"]),
        "lat": float(lat),
        "lon": float(lon),
        "kind": str(row.get("kind", "")),
        "summary": str(row.get("summary", "")),
    }


def plan_config_from_args(args: argparse.Namespace, timezone: str) -> Any:
    from haulwatch.drone.plan import PlanConfig

    kw: dict[str, Any] = {"timezone": timezone}
    if args.altitude_m is not None:
        kw["transit_alt_m"] = args.altitude_m
        if args.orbit_alt_m is None:
            kw["orbit_alt_m"] = min(args.altitude_m, PlanConfig.orbit_alt_m)
    pairs = (
        ("orbit_alt_m", "orbit_alt_m", 1.0),
        ("orbit_radius_m", "orbit_radius_m", 1.0),
        ("photo_spacing_m", "photo_spacing_m", 1.0),
        ("speed_m_s", "cruise_speed_m_s", 1.0),
        ("endurance_min", "endurance_s", 60.0),
        ("reserve_pct", "reserve_pct", 1.0),
        ("max_range_m", "max_range_m", 1.0),
        ("clearance_m", "no_fly_clearance_m", 1.0),
    )
    for opt, name, factor in pairs:
        value = getattr(args, opt)
        if value is not None:
            kw[name] = value * factor
    if args.orbit_turns is not None:
        kw["orbit_turns"] = args.orbit_turns
    if args.land:
        kw["end_with"] = "land"
    if args.no_daylight:
        kw["min_sun_elevation_deg"] = None
    if "orbit_radius_m" in kw:  # a smaller orbit asked for lowers the minimum with it
        kw["min_orbit_radius_m"] = min(PlanConfig.min_orbit_radius_m, kw["orbit_radius_m"])
    return PlanConfig(**kw)


def takeoff_time_from_args(args: argparse.Namespace, timezone: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    if args.at is None:
        return dt.datetime.now(dt.timezone.utc)
    try:
        when = dt.datetime.fromisoformat(args.at.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"option --at: value {args.at!r} is not allowed; allowed: ISO 8601 time, "
            "e.g. 2026-06-01T10:00 or 2026-06-01T02:00Z"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(timezone))
    _require_option(check_time(when, "at"))
    return when.astimezone(dt.timezone.utc)


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value - round(value)) < 1e-9:
        return str(round(value))
    return f"{value:g}"


def format_items(mission: Any) -> str:
    """A readable table of the mission items (home first, as on the wire)."""
    from pymavlink import mavutil

    frames = mavutil.mavlink.enums["MAV_FRAME"]
    rows = [("seq", "command", "frame", "p1", "p2", "p3", "p4", "lat", "lon", "alt_m")]
    for seq, item in enumerate(mission.wire_items()):
        entry = frames.get(item.frame)
        frame = entry.name.removeprefix("MAV_FRAME_") if entry is not None else str(item.frame)
        has_pos = seq == 0 or item.has_position
        rows.append(
            (
                str(seq),
                "HOME" if seq == 0 else item.command_name,
                frame,
                *(_num(v) for v in item.params),
                f"{item.lat_deg:.7f}" if has_pos else "-",
                f"{item.lon_deg:.7f}" if has_pos else "-",
                f"{item.alt_m:.1f}" if has_pos else "-",
            )
        )
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class PlannedMission:
    """A mission planned from the command line, with what to tell the user about it."""

    mission: Any
    label: str  # "alert ID (lat, lon)" or "point (lat, lon)"
    why: str  # why this dock
    no_fly: Any  # the no-fly zones it was planned around


def plan_from_args(
    args: argparse.Namespace,
    *,
    stderr: TextIO,
    vehicle: tuple[dict[str, float], float | None] | None = None,
) -> PlannedMission | None:
    """Plan the mission the target and planning options ask for (``plan`` and ``fly``).

    ``vehicle`` = (parameters, charge %) read from the vehicle (``fly``): the plan then
    keeps within its limits (``PlanConfig.for_vehicle``: WPNAV_SPEED, BATT_CAPACITY,
    state of charge).
    Returns None when every dock refuses it; the reasons are printed on ``stderr``.
    Bad options raise ``UsageError`` (a ``ValueError``).
    """
    from haulwatch.drone.plan import (
        MissionRefused,
        choose_dock,
        docks_from_sites,
        no_fly_from_sites,
        plan_mission,
    )

    sites, timezone = load_sites(args.sites)
    target = target_from_args(args, timezone)
    config = plan_config_from_args(args, timezone)
    if vehicle is not None:
        config = config.for_vehicle(*vehicle)
    now = takeoff_time_from_args(args, timezone)
    docks = docks_from_sites(sites)
    zones = no_fly_from_sites(sites)
    if not docks:
        raise UsageError(f"option --sites: {args.sites} has no 'nest' site (drone dock)")
    what = "alert " + target["alert_id"] if target["alert_id"] else "point"
    label = f"{what} ({target['lat']:.6f}, {target['lon']:.6f})"
    from haulwatch.api.cli.audit import output_lang
    from haulwatch.drone.reasons import render
    from haulwatch.i18n import t

    lang = output_lang(getattr(args, "lang", None))

    def replan(site_id: str) -> dict[str, Any] | None:
        """The structured refusal of one dock (planned again: same inputs, same refusal)."""
        dock = next((d for d in docks if d.site_id == site_id), None)
        if dock is None:
            return None
        try:
            plan_mission(target, dock, no_fly=zones, config=config, now=now)
        except MissionRefused as exc:
            return exc.reason_dict
        return None

    def _dock_refusal(site_id: str, code: str, message: str, again: Any) -> str:
        why = again(site_id)
        if why:
            return render(why, lang, timezone)
        other = {"code": "refused.other", "params": {"refusal": code, "detail": message}}
        return render(other, lang)

    try:
        if args.dock is not None:
            _require_option(check_id(args.dock, "dock"))
            dock = next((d for d in docks if d.site_id == args.dock), None)
            if dock is None:
                known = ", ".join(d.site_id for d in docks)
                raise UsageError(
                    f"option --dock: {args.dock!r} is not a nest site; nests: {known}"
                )
            mission = plan_mission(target, dock, no_fly=zones, config=config, now=now)
            why = f"dock {dock.site_id} (given with --dock)"
        else:
            choice = choose_dock(target, docks, no_fly=zones, config=config, now=now)
            mission, why = choice.mission, choice.reason
            for site_id, reason, message in choice.rejected:
                if lang == "en":
                    print(f"note: dock {site_id} refused: {reason}: {message}", file=stderr)
                else:
                    note = _dock_refusal(site_id, reason, message, replan)
                    print(t("plan.note_refused", lang, dock=site_id, why=note), file=stderr)
    except MissionRefused as exc:
        per_dock = exc.details.get("per_dock", [])
        if lang == "en":  # the planner's own English sentences
            if per_dock:
                print(f"REFUSED ({exc.reason}): {label}: no dock can fly it", file=stderr)
                for site_id, reason, message in per_dock:
                    print(f"  dock {site_id}: {reason}: {message}", file=stderr)
            else:
                print(f"REFUSED ({exc.reason}): {label}: {exc.message}", file=stderr)
            return None
        label_zh = (
            f"告警 {target['alert_id']}" if target["alert_id"] else "目标点"
        ) + f" ({target['lat']:.6f}, {target['lon']:.6f})"
        if per_dock:
            why = t("reason.refused.no_feasible_dock", lang, parts="").rstrip("：: ")
            print(t("plan.refused", lang, code=exc.reason, label=label_zh, why=why), file=stderr)
            for site_id, reason, message in per_dock:
                why = _dock_refusal(site_id, reason, message, replan)
                print(t("plan.refused_dock", lang, dock=site_id, why=why), file=stderr)
        else:
            why = render(exc.reason_dict, lang, timezone)
            print(t("plan.refused", lang, code=exc.reason, label=label_zh, why=why), file=stderr)
        return None
    return PlannedMission(mission=mission, label=label, why=why, no_fly=zones)


def run_plan(args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run the command with parsed ``args``; return the exit status."""
    from haulwatch.drone.export import write_qgc_plan, write_waypoints

    planned = plan_from_args(args, stderr=stderr)
    if planned is None:
        return 2
    mission = planned.mission
    print(f"Mission: {planned.label} from {planned.why}", file=stdout)
    meta = mission.meta
    print(format_items(mission), file=stdout)
    detour = meta.get("detour_vertices", 0)
    sun = meta.get("sun_elevation_deg")
    print(
        f"FEASIBLE: {meta['straight_distance_m']:.0f} m straight, "
        f"{meta['distance_total_m']:.0f} m flown "
        f"({detour} detour waypoint(s) around {meta.get('no_fly_zones', 0)} no-fly zone(s)), "
        f"est. {meta['duration_s'] / 60:.1f} min, battery {meta['battery_used_pct']:.0f}% "
        f"(reserve {meta['reserve_pct']:g}%), orbit r={meta['orbit_radius_m']:g} m "
        f"x{meta['orbit_turns']}"
        + (f", sun {sun[0]:.0f}°..{sun[1]:.0f}°" if sun else ", daylight not checked"),
        file=stdout,
    )
    if args.out:
        path = write_qgc_plan(mission, args.out, no_fly=planned.no_fly)
        print(f"wrote {path}", file=stdout)
    if args.waypoints:
        path = write_waypoints(mission, args.waypoints)
        print(f"wrote {path}", file=stdout)
    return 0


def _handle(args: argparse.Namespace) -> int:
    # user errors (exit 2) and Ctrl-C (130) are answered by haulwatch.api.cli.main
    return run_plan(args, stdout=sys.stdout, stderr=sys.stderr)
