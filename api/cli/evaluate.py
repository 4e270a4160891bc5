"""``haulwatch evaluate``: score alerts against a ground-truth file.

Exit codes: 0 success, 1 a score is below ``--fail-under``, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from haulwatch.api.cli.errors import UsageError
from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE

__all__ = ["format_table", "register", "run_evaluate"]

_DESCRIPTION = """\
Score the alerts of an audit against ground truth (truth.csv, as written by
`haulwatch generate`): true/false positives and misses, precision, recall and
F1 per alert kind, and how many stop alerts hit an innocent stop (traffic
light, congestion, gate queue, refuel, depot lunch, empty parking).

DATASET_OR_OUT is an audit output folder (alerts.geojson / alerts.csv), or a
dataset folder: then the alerts come from --alerts, or, without it, the
dataset is audited first (with --config / --set, as `haulwatch audit` takes
them; defaults otherwise). The truth defaults to DATASET_OR_OUT/truth.csv.

Matching (docs/internals.md): same kind, same normalized vehicle (hotspots:
within 300 m, same local day), time windows overlapping once widened by
--tolerance-s; one-to-one, largest overlap first.
"""

_EPILOG = """\
examples:
  haulwatch audit data/demo --out out/demo
  haulwatch evaluate out/demo --truth data/demo/truth.csv
  haulwatch evaluate data/demo --fail-under 0.9 --json /tmp/scores.json
  haulwatch generate --out /tmp/fleet --trucks 25 --seed 1
  haulwatch audit /tmp/fleet --out /tmp/fleet-out
  haulwatch evaluate /tmp/fleet-out --truth /tmp/fleet/truth.csv
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command to the ``haulwatch`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object ``ArgumentParser.add_subparsers`` returned.
    """
    p = subparsers.add_parser(
        "evaluate",
        help="score alerts against ground truth: precision/recall per alert kind",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", metavar="DATASET_OR_OUT", help="audit output or dataset folder")
    p.add_argument("--truth", metavar="CSV", help="truth.csv (default DATASET_OR_OUT/truth.csv)")
    p.add_argument("--alerts", metavar="FILE", help="alerts.csv or alerts.geojson to score")
    p.add_argument("--tolerance-s", type=float, default=300.0,
                   help="widen both time windows by this many seconds (default 300)")
    p.add_argument("--timezone", default=None,
                   help="zone of naive times and hotspot days (default: dataset.toml, "
                        f"else {DEFAULT_TIMEZONE})")
    p.add_argument("--config", "-c", metavar="TOML",
                   help="audit thresholds when the dataset is audited first (as audit --config)")
    p.add_argument("--set", dest="overrides", metavar="KEY=VALUE", action="append", default=[],
                   help="override one threshold when auditing first (as audit --set; repeatable)")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    p.add_argument("--fail-under", type=float, default=None, metavar="SCORE",
                   help="exit 1 when precision or recall of a kind present in the truth "
                        "(or alerted) is below SCORE, or a stop alert hits an innocent stop")
    p.set_defaults(handler=run_evaluate)


def _timezone(folders: list[Path], given: str | None) -> str:
    """--timezone, else the first dataset.toml found (dataset, then the truth's folder)."""
    if given:
        return given
    from haulwatch.ingest.registry import read_settings  # the one dataset.toml reader

    for folder in folders:
        if (folder / "dataset.toml").is_file():
            return read_settings(folder).timezone
    return DEFAULT_TIMEZONE


def _read_any_alerts(path: Path, tz: str):
    """The contract reader; a CSV from another tool needs only kind, vehicle_id, start, end."""
    from haulwatch.routes.alerts import AlertSchemaError, read_alerts

    try:
        return read_alerts(path, timezone=tz)
    except AlertSchemaError:
        if path.suffix.lower() != ".csv":
            raise
        import pandas as pd

        return pd.read_csv(path, dtype={"vehicle_id": str}, keep_default_na=False)


def format_table(table) -> str:
    """Render the evaluation frame as a fixed-width text table."""
    lines = [f"{'kind':<24}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>9}"
             f"{'f1':>8}{'innocent':>10}"]
    for r in table.itertuples(index=False):
        def f(v) -> str:
            return "-" if v != v else f"{v:.3f}"
        hits = "-" if r.innocent_hits is None or str(r.innocent_hits) == "<NA>" else str(r.innocent_hits)
        lines.append(f"{r.kind:<24}{r.tp:>6}{r.fp:>6}{r.fn:>6}{f(r.precision):>11}"
                     f"{f(r.recall):>9}{f(r.f1):>8}{hits:>10}")
    by = table.attrs.get("innocent_hits_by_kind") or {}
    if by:
        lines.append("innocent stops hit: " + ", ".join(f"{k}={v}" for k, v in sorted(by.items())))
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``haulwatch evaluate``; return the exit status."""
    from haulwatch.api.cli.options import parse_overrides
    from haulwatch.routes.alerts import read_alerts
    from haulwatch.routes.config import AuditConfig
    from haulwatch.routes.evaluate import evaluate, read_truth

    # user errors (exit 2) and Ctrl-C (130) are answered by haulwatch.api.cli.main
    folder = Path(args.path)
    if not folder.exists():
        raise UsageError(f"argument DATASET_OR_OUT: {str(folder)!r} does not exist")
    truth_path = Path(args.truth) if args.truth else folder / "truth.csv"
    if not truth_path.is_file():
        raise UsageError(f"truth file {str(truth_path)!r} not found (use --truth)")
    tz = _timezone([folder if folder.is_dir() else folder.parent, truth_path.parent],
                   args.timezone)
    config = AuditConfig.load(args.config, parse_overrides(args.overrides))
    try:
        if args.alerts:
            alerts = _read_any_alerts(Path(args.alerts), tz)
        elif folder.is_file() or any((folder / n).is_file()
                                     for n in ("alerts.geojson", "alerts.csv")):
            alerts = read_alerts(folder, timezone=tz)
        else:
            from haulwatch.routes.audit import audit_folder

            print(f"no alerts in {folder}: auditing it first", file=sys.stderr)
            alerts = audit_folder(folder, config).alerts
        table = evaluate(alerts, read_truth(truth_path), tolerance_s=args.tolerance_s,
                         timezone=tz)
    except ValueError as exc:
        if isinstance(exc, UserError):
            raise
        # a third-party file pandas cannot read (alerts from another tool)
        raise UsageError(str(exc)) from exc
    print(format_table(table))
    if args.json:
        records = json.loads(table.to_json(orient="records"))
        payload = {"scores": records,
                   "innocent_hits_by_kind": table.attrs.get("innocent_hits_by_kind", {})}
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    if args.fail_under is not None:
        rows = table[(table["kind"] != "all") & ((table["tp"] + table["fn"] + table["fp"]) > 0)]
        low = rows[(rows["precision"].fillna(0) < args.fail_under)
                   | (rows["recall"].fillna(0) < args.fail_under)]
        hits = int(table.loc[table["kind"] == "all", "innocent_hits"].iloc[0])
        if len(low) or hits:
            print(f"below {args.fail_under}: {', '.join(low['kind']) or '-'}; "
                  f"innocent stops hit: {hits}", file=sys.stderr)
            return 1
    return 0
