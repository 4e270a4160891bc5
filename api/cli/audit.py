"""``haulwatch audit``: audit a dataset folder and write the output folder.

Progress stages (with timings) go to stderr, the summary table to stdout.
Exit codes: 0 success, 2 bad input (bad dataset, config or option: one clear
message, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from haulwatch.api.cli.errors import UsageError
from haulwatch.api.cli.options import parse_overrides  # re-exported (tests, old imports)
from haulwatch.i18n import DEFAULT_LANG, LANGS

__all__ = ["Progress", "format_summary", "parse_overrides", "register", "run_audit"]

_DESCRIPTION = """\
Audit a dataset folder (sites.geojson, routes.geojson, manifests.csv,
tracks.csv or tracks.parquet, optional vehicles.csv and dataset.toml; see
docs/formats.md) against the "two points, one line" rule, and write into --out:

  alerts.geojson  alerts as an RFC 7946 FeatureCollection (WGS-84)
  alerts.csv      the same alerts as a table (geometry as WKT)
  rejects.csv     every refused row: file, row, field, value, reason, action
  trips.csv       haul trips found        stops.csv  stops found
  summary.json    counts (points, rejects by reason, trips, alerts by kind)
  scorecard.csv   company scorecard       reconciliation.csv  origin reconciliation
  report.html     offline report (Chinese; --lang en): map, charts, scorecard, tables
  audit.xlsx      with --xlsx: alerts, scorecard, reconciliation, rejects sheets

Progress goes to stderr, a summary table to stdout. Exit status: 0 on success,
2 on bad input (the message names the file, field and value), 130 if interrupted.
"""

_EPILOG = """\
examples (from a checkout; data/demo is the bundled demo):
  haulwatch audit data/demo --out out/demo
  haulwatch audit data/demo --out /tmp/demo-900 --set gap_max_s=900 --set hotspot_min_vehicles=4
  haulwatch audit data/demo --out /tmp/demo-dask --engine dask --workers 2
  # with a dask scheduler running at that address, whose workers see data/demo:
  haulwatch audit data/demo --out /tmp/demo-dask --scheduler tcp://127.0.0.1:8786
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audit`` sub-command to the ``haulwatch`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The object ``ArgumentParser.add_subparsers`` returned.
    """
    p = subparsers.add_parser(
        "audit",
        help="audit a dataset folder and write alerts, rejects, trips, summary and report",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", metavar="DATASET", help="dataset folder to audit")
    p.add_argument(
        "--out",
        "-o",
        metavar="DIR",
        required=True,
        help="output folder (created if missing; output files in it are replaced)",
    )
    p.add_argument(
        "--config",
        "-c",
        metavar="TOML",
        help="audit thresholds from a TOML file (top-level keys or an [audit] table); "
        "keys it does not name keep their defaults",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one threshold, e.g. --set gap_max_s=900 (repeatable; applied after "
        "--config; unknown keys are refused with the list of allowed ones)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "dask"),
        default="local",
        help="local: one process (default); dask: partition by vehicle and run on "
        "dask.distributed workers (a local cluster unless --scheduler is given)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running dask scheduler, e.g. tcp://host:8786 (implies --engine "
        "dask); its workers must see DATASET at the same path",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=2,
        help="worker processes of the local dask cluster (default 2; ignored with --scheduler)",
    )
    p.add_argument(
        "--store",
        metavar="DB_URL",
        help="also load the alerts into the dispatcher service's store, e.g. "
        "sqlite:///haulwatch.db or postgresql://user@host/db (re-running keeps statuses)",
    )
    p.add_argument(
        "--xlsx", action="store_true", help="also write audit.xlsx (Excel workbook of the tables)"
    )
    p.add_argument(
        "--truck-capacity-m3",
        metavar="M3",
        type=float,
        default=None,
        help="volume one trip hauls for trucks without capacity_m3 in vehicles.csv, for the "
        "origin reconciliation (default 15)",
    )
    p.add_argument(
        "--lang",
        type=_lang,
        default=None,
        metavar="LANG",
        help=f"language of report.html, audit.xlsx and the summary table: {', '.join(LANGS)} "
        f"(default $HAULWATCH_LANG, else {DEFAULT_LANG})",
    )
    p.add_argument(
        "--quiet", "-q", action="store_true", help="print no progress, only the summary table"
    )
    p.set_defaults(handler=_handle)


# --------------------------------------------------------------------------- helpers


def _lang(text: str) -> str:
    """argparse type of ``--lang``: a language with a catalog (aliases such as ``zh`` accepted)."""
    from haulwatch.i18n import LanguageError, normalize_lang

    try:
        return normalize_lang(text)
    except LanguageError as exc:
        raise argparse.ArgumentTypeError(
            f"value {text!r} is not allowed; allowed: {', '.join(LANGS)}"
        ) from exc


def output_lang(given: str | None) -> str:
    """``--lang``, else ``$HAULWATCH_LANG``, else the default language (Chinese)."""
    import os

    from haulwatch.i18n import normalize_lang

    if given:
        return given
    env = os.environ.get("HAULWATCH_LANG", "").strip()
    if env:
        try:
            return normalize_lang(env)
        except ValueError as exc:
            raise UsageError(
                f"HAULWATCH_LANG: value {env!r} is not allowed; allowed: {', '.join(LANGS)}"
            ) from exc
    return DEFAULT_LANG


class Progress:
    """Progress callback printing ``[  12.3s] stage detail`` lines (time since start).

    Accepts the calling conventions the engines use: ``progress("stage")``,
    ``progress("stage", detail)`` or ``progress(stage="...", **info)``.

    Parameters
    ----------
    stream : TextIO or None
        Where to print; None prints nothing (the timings are still kept).
    """

    def __init__(self, stream: TextIO | None = sys.stderr) -> None:
        self.stream = stream
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.stages: list[tuple[str, float]] = []

    def __call__(self, *args: Any, **info: Any) -> None:
        now = time.perf_counter()
        stage = str(args[0]) if args else str(info.pop("stage", "progress"))
        extra = [str(a) for a in args[1:]]
        extra += [f"{k}={v}" for k, v in info.items()]
        self.stages.append((stage, now - self.last))
        if self.stream is not None:
            detail = (" " + " ".join(extra)) if extra else ""
            print(
                f"[{now - self.t0:7.1f}s] {stage}{detail}",
                file=self.stream,
                flush=True,
            )
        self.last = now


def _first(summary: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = summary.get(key)
        if value is not None:
            return value
    return None


_LABEL_MAX = 56


def _display_width(text: str) -> int:
    """Terminal columns of ``text``: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _shorten(label: str) -> str:
    """Cut long labels (reject reasons can be sentences) to keep the table narrow."""
    if _display_width(label) <= _LABEL_MAX:
        return label
    out = ""
    for c in label:
        if _display_width(out + c) > _LABEL_MAX - 1:
            break
        out += c
    return out.rstrip() + "…"


def format_summary(summary: Mapping[str, Any], lang: str = DEFAULT_LANG) -> str:
    """Return the plain-text summary table printed after an audit.

    Parameters
    ----------
    summary : Mapping
        ``routes.outputs.summary_counts`` of the result.
    lang : str, default "zh-CN"
        Language of the labels (the string catalog's ``report.fig_*`` figures and
        alert kind names; ``en`` shows the kind codes of alerts.csv). Reject
        reasons are shown as the readers wrote them.

    Returns
    -------
    str
        Lines ``label  value``, aligned in terminal columns. The point lines add
        up: points read = points kept + points dropped (by reason) + duplicates
        dropped; values cleared (their rows are kept) are listed apart, then rows
        dropped in the other files, rows rejected in all (the lines of
        rejects.csv), stops, trips, alerts by kind and the total. A summary
        without the split (written by an older version) gives rows rejected by
        reason instead.
    """
    from haulwatch.i18n import kind_label, normalize_lang, t

    lang = normalize_lang(lang)
    rows: list[tuple[str, str]] = []

    def fig(name: str) -> str:
        return t(f"report.fig_{name}", lang)

    def add(label: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        rows.append((label, f"{value:,}" if isinstance(value, int) else str(value)))

    def add_counts(indent: str, counts: Any) -> None:
        if isinstance(counts, Mapping):
            for label, n in sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0]))):
                add(f"{indent}{label}", n)

    points_read = _first(summary, "points_read", "rows_read")
    if isinstance(points_read, Mapping):
        points_read = _first(points_read, "tracks.csv", "tracks.parquet", "tracks")
    add(fig("points_read"), points_read)
    if "points_dropped" in summary:
        add("  " + fig("points_kept"), _first(summary, "points_kept", "points"))
        add("  " + fig("points_dropped"), summary["points_dropped"])
        add_counts("    ", summary.get("points_dropped_by_reason"))
        add("  " + fig("duplicates_dropped"), _first(summary, "duplicates_dropped", "duplicates"))
        add(fig("values_cleared"), summary.get("values_cleared"))
        add_counts("  ", summary.get("values_cleared_by_reason"))
        other = summary.get("rows_dropped_by_file") or {}
        if isinstance(other, Mapping) and other:
            add(fig("rows_dropped_other_files"), sum(int(n) for n in other.values()))
            add_counts("  ", other)
        add(fig("rows_rejected"), _first(summary, "rows_rejected", "rejects"))
    else:
        add(fig("points_kept"), _first(summary, "points_kept", "points"))
        add(fig("rows_rejected"), _first(summary, "rows_rejected", "rejects"))
        add_counts("  ", summary.get("rejects_by_reason"))
        add(fig("duplicates_dropped"), _first(summary, "duplicates_dropped", "duplicates"))
    add(fig("stops"), summary.get("stops"))
    add(fig("trips"), summary.get("trips"))
    by_kind = summary.get("alerts_by_kind") or {}
    add(fig("alerts"), summary.get("alerts_total"))
    if isinstance(by_kind, Mapping):
        for kind, n in by_kind.items():
            add("  " + (str(kind) if lang == "en" else kind_label(str(kind), lang)), n)
    rows = [(_shorten(label), value) for label, value in rows]
    width = max((_display_width(label) for label, _ in rows), default=0)
    vwidth = max((len(v) for _, v in rows), default=0)
    return "\n".join(
        f"{label}{' ' * (width - _display_width(label))}  {value:>{vwidth}}"
        for label, value in rows
    )


def run_audit(
    dataset: str | Path,
    out_dir: str | Path,
    *,
    config: Any = None,
    engine: str = "local",
    scheduler: str | None = None,
    n_workers: int = 2,
    progress: Progress | None = None,
    store_url: str | None = None,
    lang: str = DEFAULT_LANG,
    xlsx: bool = False,
    truck_capacity_m3: float | None = None,
) -> dict[str, Any]:
    """Audit ``dataset`` with the chosen engine, write the outputs, return the summary.

    Parameters
    ----------
    dataset : str or Path
        Dataset folder.
    out_dir : str or Path
        Output folder.
    config : AuditConfig, optional
        Thresholds (default ``AuditConfig()``).
    engine : {"local", "dask"}
        Single process, or partitions on dask.distributed.
    scheduler : str, optional
        Dask scheduler address (dask engine only); None starts a local cluster.
    n_workers : int
        Workers of the local cluster; must be >= 1.
    progress : Progress, optional
        Progress callback (default: silent).
    store_url : str, optional
        When given, the alerts are also loaded into the service's store at this URL
        (``sqlite:///FILE`` or ``postgresql://...``; statuses of known alerts are kept).
    lang : str
        Language of report.html and audit.xlsx (``zh-CN`` or ``en``).
    xlsx : bool
        Also write ``audit.xlsx``.
    truck_capacity_m3 : float, optional
        Volume per trip of trucks without a registry capacity (default 15 m³).

    Returns
    -------
    dict
        The summary written to ``summary.json``.

    Raises
    ------
    FileNotFoundError
        When ``dataset`` is not a folder.
    ValueError
        On a bad engine name, worker count, or bad input data (``SchemaError``...).
    """
    from haulwatch.routes.outputs import result_parts, summary_counts, write_outputs

    folder = Path(dataset)
    if not folder.is_dir():
        raise FileNotFoundError(f"dataset folder {str(folder)!r} does not exist or is not a folder")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(
            f"option --out: value {str(out)!r} is an existing file; allowed: a folder "
            "(created if missing)"
        )
    out.mkdir(parents=True, exist_ok=True)  # fail now, not after a long audit
    if engine not in ("local", "dask"):
        raise UsageError(f"option --engine: value {engine!r} is not allowed; allowed: local, dask")
    if n_workers < 1:
        raise UsageError(f"option --workers: value {n_workers!r} is not allowed; allowed: >= 1")
    if store_url is not None and not store_url.startswith(("sqlite://", "postgresql://")):
        raise UsageError(
            f"option --store: value {store_url!r} is not allowed; allowed: sqlite:///FILE or "
            "postgresql://..."
        )
    progress = progress or Progress(None)
    progress("audit", f"{folder} with the {engine} engine")
    if config is None:
        from haulwatch.routes.config import AuditConfig

        config = AuditConfig()

    if engine == "dask":
        from haulwatch.routes.distributed import audit_dask

        result = audit_dask(
            folder, config, scheduler=scheduler, n_workers=n_workers, progress=progress
        )
    else:
        from haulwatch.routes.audit import audit_folder

        result = audit_folder(folder, config, progress=progress)
    progress("writing outputs", str(out_dir))
    write_outputs(result, out_dir, lang=lang, xlsx=xlsx, truck_capacity_m3=truck_capacity_m3)
    summary = summary_counts(result_parts(result))
    if store_url is not None:
        from haulwatch.api.services.store import import_alerts
        from haulwatch.api.services.store_sql import StoreError

        try:
            counts = import_alerts(result.alerts, store_url)
        except StoreError as exc:  # cannot open or migrate the store the user named
            raise UsageError(f"option --store: {exc}") from exc
        progress(
            "store",
            f"{store_url}: {counts['inserted']} inserted, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged",
        )
    progress("done")
    return summary


def _handle(args: argparse.Namespace) -> int:
    progress = Progress(None if args.quiet else sys.stderr)
    engine = "dask" if args.scheduler else args.engine
    lang = output_lang(args.lang)
    # user errors (exit 2) and Ctrl-C (130) are answered by haulwatch.api.cli.main
    from haulwatch.routes.config import AuditConfig

    config = AuditConfig.load(args.config, parse_overrides(args.overrides))
    summary = run_audit(
        args.dataset,
        args.out,
        config=config,
        engine=engine,
        scheduler=args.scheduler,
        n_workers=args.workers,
        progress=progress,
        store_url=args.store,
        lang=lang,
        xlsx=args.xlsx,
        truck_capacity_m3=args.truck_capacity_m3,
    )
    print(format_summary(summary, lang))
    if not args.quiet:
        print(f"outputs written to {args.out}", file=sys.stderr)
    return 0
