"""``haulwatch generate``: write a seeded synthetic fleet dataset with ground truth.

Exit codes: 0 success, 2 bad option (one clear message, no traceback).
"""

from __future__ import annotations

import argparse
import sys

from haulwatch.api.cli.errors import UsageError
from haulwatch.timezone import DEFAULT_TIMEZONE

__all__ = ["register", "run_generate"]

_DESCRIPTION = """\
Write a synthetic construction-waste fleet (a city near Shaoxing, trucks doing
realistic days) as a dataset folder per docs/formats.md, with its ground truth:

  sites.geojson routes.geojson manifests.csv vehicles.csv dataset.toml
  tracks.csv (or tracks.parquet)
  truth.csv        every injected violation (one row per expected alert) and
                   every innocent stop (innocent_<what> rows), WGS-84
  truth_meta.json  parameters, points, bad rows by reason, duplicates

The same --seed and options give the same files. With >= 20 trucks every
alert kind is present on the first day.
"""

_EPILOG = """\
examples:
  # the bundled demo (data/demo) again, written elsewhere:
  haulwatch generate --out /tmp/demo-again --trucks 25 --days 1 --seed 7 --interval-s 15 20 \
      --coord-system gcj02 --sensors mixed
  haulwatch generate --out /tmp/gcj --trucks 40 --coord-system gcj02 --sensors mixed
  haulwatch generate --out /tmp/big --trucks 2000 --format parquet --bad-row-fraction 0
  haulwatch generate --out /tmp/real --trucks 200 --days 2 --all-conditions --sensors none
"""


#: (flag, help) of every condition switch; the flag's name with "_" is the condition.
_CONDITION_FLAGS = (
    ("night-shifts", "half the trucks work 20:00-06:00 local, shifts cross midnight"),
    ("mixed-intervals", "terminals report every 10, 30, 60 or 120 s (one per truck)"),
    ("urban-canyons", "noisy stretches (sigma 20-40 m) and 80-300 m multipath jumps of a "
                      "few seconds"),
    ("frozen-fixes", "terminals repeat their last fix with speed 0 for 1.5-8 min while "
                     "the truck drives on"),
    ("fast-dumps", "half the dumps take 1.5-4 min"),
    ("rolling-dumps", "dumps while creeping at walking pace with the lift raised "
                      "(trucks with sensors)"),
    ("twin-devices", "~12%% of trucks carry a second terminal reporting the same plate, "
                     "interleaved, a few seconds off"),
    ("large-origins", "origins 300-600 m across, empty trucks queueing at the gate, "
                      "loaded ones at the wash bay"),
    ("service-roads", "loaded trucks use frontage roads 44-55 m beside the approved route; "
                      "half the routes get a 60 m corridor"),
    ("dark-at-origin", "half the dark dumps end back on air inside the origin, "
                       "loading again"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``generate`` sub-command to the ``haulwatch`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object ``ArgumentParser.add_subparsers`` returned.
    """
    p = subparsers.add_parser(
        "generate",
        help="write a seeded synthetic fleet dataset with ground truth (truth.csv)",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder to write")
    p.add_argument("--trucks", type=int, default=25, metavar="N", help="fleet size (default 25)")
    p.add_argument("--days", type=int, default=1, metavar="N", help="consecutive local days (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    p.add_argument("--start-date", default="2026-03-02", metavar="YYYY-MM-DD",
                   help="first local day (default 2026-03-02)")
    p.add_argument("--coord-system", choices=("wgs84", "gcj02", "bd09"), default="wgs84",
                   help="system of the written coordinates (default wgs84; truth.csv is WGS-84)")
    p.add_argument("--sensors", choices=("all", "none", "mixed"), default="all",
                   help="which trucks report load/lift (default all)")
    p.add_argument("--interval-s", type=float, nargs="+", default=[10.0, 30.0],
                   metavar="S", help="reporting interval, one value or LOW HIGH (default 10 30)")
    p.add_argument("--violation-rate", type=float, default=0.1, metavar="P",
                   help="chance a truck-day carries a violation, beyond the guaranteed set "
                        "(default 0.1)")
    p.add_argument("--bad-row-fraction", type=float, default=0.002, metavar="P",
                   help="share of bad track rows mixed in (default 0.002)")
    p.add_argument("--duplicate-fraction", type=float, default=0.002, metavar="P",
                   help="share of duplicate track rows mixed in (default 0.002)")
    p.add_argument("--no-shuffle", action="store_true", help="keep track rows in truck order")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv", dest="fmt",
                   help="tracks file format (default csv)")
    p.add_argument("--timezone", default=DEFAULT_TIMEZONE, metavar="ZONE",
                   help="dataset time zone written to dataset.toml (default Asia/Shanghai)")
    real = p.add_argument_group(
        "real-terminal conditions (issue 12; each is labelled in truth.csv, innocent ones as "
        "innocent_<what>)")
    for flag, help_text in _CONDITION_FLAGS:
        real.add_argument(f"--{flag}", action="store_true", help=help_text)
    real.add_argument("--all-conditions", action="store_true",
                      help="switch on every condition above")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=run_generate)


def run_generate(args: argparse.Namespace) -> int:
    """Run ``haulwatch generate``; return the exit status."""
    from haulwatch.ingest.synthetic import generate

    # user errors (SyntheticError: exit 2) are answered by haulwatch.api.cli.main
    if len(args.interval_s) not in (1, 2):
        raise UsageError(
            f"option --interval-s takes 1 or 2 values (S, or LOW HIGH), got "
            f"{len(args.interval_s)}: {args.interval_s}"
        )
    interval = tuple(args.interval_s) if len(args.interval_s) == 2 else args.interval_s[0]

    conditions = [f.replace("-", "_") for f, _ in _CONDITION_FLAGS
                  if args.all_conditions or getattr(args, f.replace("-", "_"))]

    def progress(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    result = generate(
        args.out, trucks=args.trucks, days=args.days, seed=args.seed,
        start_date=args.start_date, coord_system=args.coord_system, sensors=args.sensors,
        interval_s=interval, violation_rate=args.violation_rate,
        bad_row_fraction=args.bad_row_fraction, duplicate_fraction=args.duplicate_fraction,
        shuffle=not args.no_shuffle, fmt=args.fmt, timezone=args.timezone,
        progress=progress, conditions=conditions,
    )
    print(f"wrote {result.folder}: {result.points:,} points in {result.rows:,} track rows")
    for name, size in result.files.items():
        print(f"  {name:<18} {size / 1e6:8.2f} MB")
    print("truth rows by kind:")
    for kind, n in result.truth_counts.items():
        print(f"  {kind:<26} {n:6d}")
    return 0
