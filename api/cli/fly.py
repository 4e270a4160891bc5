"""``haulwatch fly``: plan a mission to an alert or a point, fly it over MAVLink, record it.

Plans with ``drone.plan`` (the same options as ``haulwatch plan``), connects to
the vehicle (``--connect``: ArduPilot SITL, a real vehicle or ``haulwatch sim``),
uploads and verifies the mission, arms, flies and follows it, printing progress,
and writes the flight record as JSON (``--record``). The first Ctrl-C sends the
vehicle home (RTL, outcome ``aborted``); a second one quits at once.

Exit status: 0 completed, 1 failed or aborted (the reason is printed),
2 refused by the planner or bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, TextIO

from haulwatch.api.cli.errors import UsageError
from haulwatch.api.cli.plan import add_planning_arguments, add_target_arguments

__all__ = ["format_progress", "register", "run_fly"]

_DESCRIPTION = """\
Send a drone to look at an alert (or a point): plan the mission from the dock
(a 'nest' site; see 'haulwatch plan'), connect over MAVLink, upload and read it
back, arm, fly it in AUTO and follow it until the copter has landed and
disarmed at the dock. Link loss or a vehicle failsafe (battery, fence, RTL/LAND
chosen by the vehicle) ends the flight as failed with the reason.

Use --time-scale K when the vehicle runs K times faster than real time
(e.g. 'haulwatch sim --speedup K'): every timeout is in vehicle seconds.
"""

_EPILOG = """\
examples (the demo's docks are the nests N1 and N2; the simulator starts at N1):
  haulwatch sim --home 29.99660,120.54914 --speedup 10 &
  haulwatch fly --connect tcp:127.0.0.1:5760 --time-scale 10 --lat 30.0084 --lon 120.5457 \\
      --sites data/demo/sites.geojson --dock N1 --no-daylight --record flight.json
  haulwatch audit data/demo --out out/demo
  haulwatch fly --connect udpin:0.0.0.0:14550 --alert ID-b8ecbfb4fdd6a1c4 \\
      --alerts out/demo/alerts.geojson --sites data/demo/sites.geojson
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fly`` sub-command to the ``haulwatch`` parser."""
    p = subparsers.add_parser(
        "fly",
        help="plan, upload and fly a drone mission over MAVLink; write the flight record",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--connect",
        required=True,
        metavar="URL",
        help="MAVLink connection: tcp:HOST:PORT, udp:..., udpin:HOST:PORT or DEVICE,BAUD",
    )
    add_target_arguments(p)
    p.add_argument("--record", metavar="FILE", help="write the flight record (JSON) here")
    p.add_argument(
        "--time-scale",
        type=_time_scale,
        default=1.0,
        metavar="K",
        help="vehicle seconds per wall second: the simulator's --speedup, or 'auto' to read "
        "the SITL parameter SIM_SPEEDUP (default 1)",
    )
    p.add_argument(
        "--heartbeat-timeout-s",
        type=float,
        default=5.0,
        metavar="S",
        help="vehicle heartbeat silence counted as link loss (5 s)",
    )
    p.add_argument(
        "--ready-timeout-s",
        type=float,
        default=180.0,
        metavar="S",
        help="wait this long for the vehicle to be armable (180 s)",
    )
    p.add_argument(
        "--min-battery-pct",
        type=float,
        default=40.0,
        metavar="PCT",
        help="refuse to arm below this charge (40; ArduPilot's own BATT_ARM_* gate is off by "
        "default)",
    )
    add_planning_arguments(p.add_argument_group("planning (as 'haulwatch plan')"))
    p.add_argument("--quiet", action="store_true", help="print only the outcome")
    p.set_defaults(handler=_handle)


def _time_scale(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value < float("inf")):
        raise argparse.ArgumentTypeError(
            f"value {text!r} is not allowed; allowed: a positive number or 'auto'"
        )
    return value


def format_progress(status: dict[str, Any]) -> str:
    """One progress line from a ``VehicleLink.fly_mission`` status dict."""
    pos = "-"
    if status.get("lat_deg") is not None:
        pos = f"{status['lat_deg']:.6f},{status['lon_deg']:.6f} alt {status['alt_rel_m']:5.1f} m"
    battery = "-" if status.get("battery_pct") is None else f"{status['battery_pct']:.0f}%"
    return (
        f"[{status['t_s']:8.1f} s] {status['phase']:<9} {status['mode'] or '-':<9} "
        f"{'ARMED' if status['armed'] else 'disarmed':<8} item {status['seq']:<3} {pos}  "
        f"battery {battery}  photos {status['photos']}"
    )


def run_fly(args: argparse.Namespace, *, stdout: TextIO, stderr: TextIO) -> int:
    """Run the command with parsed ``args``; return the exit status."""
    from haulwatch.api.cli.plan import format_items, plan_from_args
    from haulwatch.drone.link import LinkConfig, VehicleLink

    try:
        link_config = LinkConfig(
            heartbeat_timeout_s=args.heartbeat_timeout_s, ready_timeout_s=args.ready_timeout_s
        )
    except ValueError as exc:
        raise UsageError(f"option --heartbeat-timeout-s/--ready-timeout-s: {exc}") from exc
    if not 0 <= args.min_battery_pct <= 100:
        raise UsageError(
            f"option --min-battery-pct: value {args.min_battery_pct!r} is not allowed; "
            "allowed: 0..100"
        )
    planned = plan_from_args(args, stderr=stderr)
    if planned is None:
        return 2
    mission = planned.mission
    if not args.quiet:
        print(
            f"Mission: {planned.label} from {planned.why}, "
            f"est. {mission.meta.get('duration_s', float('nan')) / 60:.1f} min",
            file=stdout,
        )
        print(format_items(mission), file=stdout, flush=True)

    link = VehicleLink(args.connect, time_scale=args.time_scale, config=link_config)
    interrupts = []

    def on_sigint(signum: int, frame: Any) -> None:
        interrupts.append(signum)
        if len(interrupts) > 1:
            raise KeyboardInterrupt
        print(
            "interrupt: sending the vehicle home (RTL); Ctrl-C again to quit",
            file=stderr,
            flush=True,
        )
        link.abort("interrupted by the operator (Ctrl-C)")

    def progress(status: dict[str, Any]) -> None:
        if not args.quiet:
            print(format_progress(status), file=stdout, flush=True)

    previous = signal.getsignal(signal.SIGINT)
    in_main = _is_main_thread()
    if in_main:
        signal.signal(signal.SIGINT, on_sigint)
    try:
        link.connect()
        # plan again within what the vehicle says it can do (speed limit, charge left)
        params, charge = link.vehicle_limits()
        replanned = plan_from_args(args, stderr=stderr, vehicle=(params, charge))
        if replanned is None:
            from haulwatch.api.cli.audit import output_lang
            from haulwatch.i18n import t

            lang = output_lang(getattr(args, "lang", None))
            text = (
                "REFUSED with the vehicle's limits (reasons above)"
                if lang == "en"
                else t("plan.refused_vehicle", lang)
            )
            print(text, file=stderr, flush=True)
            return 1
        mission = replanned.mission
        if not args.quiet:
            speed = mission.meta.get("cruise_speed_m_s")
            print(
                f"Vehicle limits: WPNAV_SPEED {params.get('WPNAV_SPEED', float('nan')) / 100:g} m/s, "
                f"BATT_CAPACITY {params.get('BATT_CAPACITY', float('nan')):g} mAh, charge "
                f"{'-' if charge is None else f'{charge:.0f}%'}; re-planned at {speed:g} m/s, "
                f"est. {mission.meta.get('duration_s', float('nan')) / 60:.1f} min",
                file=stdout,
                flush=True,
            )
        record = link.fly_mission(
            mission, progress=progress, min_battery_pct=args.min_battery_pct
        )
    finally:
        link.close()
        if in_main:
            signal.signal(signal.SIGINT, previous)
    if args.record:
        path = record.write(args.record)
        print(f"wrote {path}", file=stdout)
    line = f"{record.outcome.upper()}: {len(record.items_reached)} items reached, {len(record.photos)} photos"
    if record.reason:
        line += f"; reason: {record.reason}"
    print(line, file=stdout if record.outcome == "completed" else stderr, flush=True)
    for note in record.notes:
        print(f"note: {note}", file=stdout, flush=True)
    return 0 if record.outcome == "completed" else 1


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _handle(args: argparse.Namespace) -> int:
    # user errors (exit 2) and Ctrl-C (130) are answered by haulwatch.api.cli.main
    from haulwatch.drone.link import LinkLost

    try:
        return run_fly(args, stdout=sys.stdout, stderr=sys.stderr)
    except LinkLost as exc:  # the flight failed, not the input: exit 1 as for a failed record
        print(f"haulwatch fly: {exc}", file=sys.stderr)
        return 1
