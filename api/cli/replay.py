"""``haulwatch replay``: replay a dataset as JT/T 808 terminals against a gateway."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from haulwatch.api.cli.errors import UsageError


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise argparse.ArgumentTypeError(
            f"value {text!r} is not HOST:PORT with a port 1..65535 (e.g. 127.0.0.1:6808)")
    return host, int(port)


def _pct(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"value {text!r} is not a percentage 0..100")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``replay`` sub-command."""
    p = subparsers.add_parser(
        "replay",
        help="replay a dataset's trucks as JT/T 808 terminals (tester's tool, load generator)",
        description=(
            "One TCP connection per plate: register (0x0100), authenticate (0x0102), then the "
            "truck's points in time order as 0x0200 location reports, with heartbeats (0x0002) "
            "when quiet. With --backfill-pct, that share of trucks drives through a dead zone "
            "whose points are sent afterwards as 0x0704 type 1 (blind-area back-fill). Every "
            "answer is checked; a summary is printed. Exit status 1 when an answer was not 0."
        ),
        epilog="example: haulwatch replay data/demo --jt808 127.0.0.1:6808 --speedup 60",
    )
    p.add_argument("dataset", type=Path, help="dataset folder (tracks.csv, vehicles.csv, ...)")
    p.add_argument("--jt808", type=_hostport, required=True, metavar="HOST:PORT",
                   help="the gateway (haulwatch serve --jt808-port)")
    p.add_argument("--speedup", type=float, default=60.0,
                   help="dataset seconds per wall second (default 60; 0 = as fast as answered)")
    p.add_argument("--version", choices=("2013", "2019", "mixed"), default="mixed",
                   help="header form of the terminals (default mixed: half 2013, half 2019)")
    p.add_argument("--backfill-pct", type=_pct, default=0.0, metavar="P",
                   help="percent of trucks with a dead zone sent later as 0x0704 (default 0)")
    p.add_argument("--coords", choices=("wgs84", "gcj02"), default="wgs84",
                   help="coordinates the terminals send (default wgs84, as the standard says; "
                        "must match the gateway's HAULWATCH_JT808_COORDS)")
    p.add_argument("--lift-info-id", type=lambda s: int(s, 0), default=0xE1,
                   help="additional-information id carrying the lift state (default 0xE1)")
    p.add_argument("--heartbeat-s", type=float, default=60.0,
                   help="wall seconds of silence before a heartbeat (default 60)")
    p.add_argument("--pipeline", type=int, default=1,
                   help="reports a terminal sends before waiting for the oldest answer (default 1)")
    p.add_argument("--seed", type=int, default=0, help="chooses the dead zones (default 0)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from haulwatch.api.gateway.replay import replay_dataset

    if not args.dataset.is_dir():
        raise UsageError(f"dataset: {str(args.dataset)!r} is not a folder")
    host, port = args.jt808
    summary = replay_dataset(args.dataset, host, port, speedup=args.speedup,
                             version=args.version, backfill_pct=args.backfill_pct,
                             coords=args.coords, seed=args.seed, heartbeat_s=args.heartbeat_s,
                             lift_info_id=args.lift_info_id, pipeline=args.pipeline)
    if args.json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        print(summary.text())
    bad = any(not k.endswith(":0") for k in summary.results) or summary.errors
    if bad:
        print("haulwatch replay: some answers were not 0 (see above)", file=sys.stderr)
    return 1 if bad else 0
