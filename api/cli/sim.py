"""``haulwatch sim``: run the built-in simulated ArduCopter until Ctrl-C.

It listens on TCP ``5760 + 10 * instance`` like ArduPilot SITL, boots when the
first client connects, and prints the vehicle's messages (STATUSTEXT) as they
happen. Exit status: 0 after Ctrl-C (or SIGTERM), 2 for bad options or a port
already in use.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
from typing import Any, TextIO

from haulwatch import waiting
from haulwatch.api.cli.errors import UsageError
from haulwatch.api.cli.options import tcp_port

__all__ = ["parse_home", "register", "run_sim"]

_DESCRIPTION = """\
Run a simulated ArduPilot Copter that speaks MAVLink 2 over TCP, like
ArduCopter SITL: HEARTBEAT, modes (STABILIZE, GUIDED, AUTO, LOITER, RTL, LAND),
arming checks, the mission protocol, MISSION_ITEM_REACHED, CAMERA_FEEDBACK,
battery and geofence failsafes, parameters. Telemetry streams only after a
client asks (REQUEST_DATA_STREAM / SET_MESSAGE_INTERVAL), as on ArduPilot.

Connect with 'haulwatch fly --connect tcp:127.0.0.1:5760', MAVProxy, QGroundControl
(TCP link) or dronekit. Runs until Ctrl-C.
"""

_EPILOG = """\
examples (home at the demo's dock N1, WGS-84):
  haulwatch sim --home 29.99660,120.54914
  haulwatch sim --home 29.99660,120.54914,4 --instance 1 --speedup 10 --battery-wh 60
  haulwatch sim --home 29.99660,120.54914 --param FENCE_ENABLE=1 --param FENCE_RADIUS=2000
"""


def parse_home(text: str) -> tuple[float, float, float]:
    """Parse ``LAT,LON[,ALT]`` (WGS-84 degrees, metres AMSL).

    Raises
    ------
    UsageError
        (a ``ValueError``) naming the value and what is allowed.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) not in (2, 3):
        raise UsageError(
            f"option --home: value {text!r} is not allowed; allowed: LAT,LON or LAT,LON,ALT"
        )
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise UsageError(
            f"option --home: value {text!r} is not allowed; allowed: numbers LAT,LON[,ALT]"
        ) from exc
    lat, lon = values[0], values[1]
    alt = values[2] if len(values) == 3 else 0.0
    if not (math.isfinite(lat) and -90 < lat < 90):
        raise UsageError(f"option --home: latitude {lat!r} is not allowed; allowed: -90 < LAT < 90")
    if not (math.isfinite(lon) and -180 <= lon <= 180):
        raise UsageError(f"option --home: longitude {lon!r} is not allowed; allowed: -180..180")
    if not math.isfinite(alt):
        raise UsageError(
            f"option --home: altitude {alt!r} is not allowed; allowed: a finite number of metres"
        )
    return lat, lon, alt


def _params(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip().upper()] = float(value)
        except ValueError as exc:
            raise UsageError(
                f"option --param: value {pair!r} is not allowed; allowed: NAME=NUMBER"
            ) from exc
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sim`` sub-command to the ``haulwatch`` parser."""
    p = subparsers.add_parser(
        "sim",
        help="run the simulated ArduCopter (MAVLink 2 over TCP 5760) until Ctrl-C",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--home",
        required=True,
        metavar="LAT,LON[,ALT]",
        help="boot position, WGS-84 (ALT in m AMSL)",
    )
    p.add_argument(
        "--instance", type=int, default=0, metavar="N", help="instance number: port 5760 + 10*N (0)"
    )
    p.add_argument(
        "--port",
        type=tcp_port,
        metavar="PORT",
        help="TCP port (overrides --instance; 0 = any free port)",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (127.0.0.1; 0.0.0.0 for all)"
    )
    p.add_argument(
        "--speedup", type=float, default=1.0, metavar="K", help="simulated seconds per second (1)"
    )
    p.add_argument(
        "--battery-wh", type=float, default=None, metavar="WH",
        help="battery energy (default: ArduPilot's BATT_CAPACITY 3300 mAh at 14.8 V = 48.8 Wh, "
        "about 15 min of flight)"
    )
    p.add_argument(
        "--prearm-delay-s",
        type=float,
        default=42.0,
        metavar="S",
        help="simulated seconds before it can arm (42, as ArduCopter SITL)",
    )
    p.add_argument("--sysid", type=int, default=1, metavar="ID", help="MAVLink system id (1)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set an ArduPilot parameter at boot (repeatable), e.g. FENCE_ENABLE=1",
    )
    p.add_argument("--quiet", action="store_true", help="do not print the vehicle's messages")
    p.set_defaults(handler=_handle)


def run_sim(
    args: argparse.Namespace, *, stdout: TextIO, stop: threading.Event | None = None
) -> int:
    """Run the simulator with parsed ``args`` until ``stop`` is set; return the exit status."""
    from haulwatch.drone.sitl import SimulatedCopter

    lat, lon, alt = parse_home(args.home)
    stop = stop or threading.Event()
    try:
        sim = SimulatedCopter(
            home_lat_deg=lat,
            home_lon_deg=lon,
            home_alt_m=alt,
            port=args.port,
            instance=args.instance,
            host=args.host,
            speedup=args.speedup,
            battery_wh=args.battery_wh,
            prearm_delay_s=args.prearm_delay_s,
            sysid=args.sysid,
            params=_params(args.param),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        sim.start()
    except OSError as exc:  # port in use, address not local, no permission
        raise UsageError(str(exc)) from exc  # "cannot listen on HOST:PORT: reason"
    print(
        f"haulwatch sim: ArduCopter simulator on {sim.url} (home {lat:.7f},{lon:.7f},{alt:g} m, "
        f"speed-up x{args.speedup:g}); waiting for a client. Ctrl-C to stop.",
        file=stdout,
        flush=True,
    )
    if args.speedup > 200:
        print(
            f"haulwatch sim: warning: at speed-up x{args.speedup:g} the vehicle's 1 s mission "
            "re-requests and 8 s upload timeout last milliseconds of wall time; clients may "
            "time out (x200 or less is reliable)",
            file=stdout,
            flush=True,
        )
    shown = 0
    try:
        while not waiting.wait(stop, 0.2):
            log = sim.log
            while shown < len(log):
                t, text = log[shown]
                shown += 1
                if not args.quiet:
                    print(f"[{t:9.1f} s] {text}", file=stdout, flush=True)
    finally:
        sim.stop()
        print(
            f"haulwatch sim: stopped after {sim.sim_time_s:.1f} simulated seconds",
            file=stdout,
            flush=True,
        )
    return 0


def _handle(args: argparse.Namespace) -> int:
    # user errors (exit 2) are answered by haulwatch.api.cli.main
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        return run_sim(args, stdout=sys.stdout, stop=stop)
    except KeyboardInterrupt:  # Ctrl-C is how the simulator is meant to stop: exit 0
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
