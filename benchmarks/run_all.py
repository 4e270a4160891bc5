"""Run every benchmark and write ``benchmarks/RESULTS.md``.

Each benchmark runs in its own subprocess (``--json``), so one crash or
memory peak does not affect the others. The Markdown file starts with the
machine (CPU model, cores, RAM, load average at start, Python and library
versions, git commit) and then one table per benchmark with the targets.

Usage::

    .venv/bin/python benchmarks/run_all.py                # stops 100k (+random 100k, 300k), audit 1M/3M/10M
    .venv/bin/python benchmarks/run_all.py --quick        # stops 100k, audit 1M (a few minutes)
    .venv/bin/python benchmarks/run_all.py --audit-sizes 1e6 3e6 --dask-sizes 1e6
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable


def machine() -> dict[str, str]:
    """Describe the machine and the software versions."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "unknown"
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                    break
    except OSError:
        pass
    versions = {}
    for name in (
        "numpy",
        "pandas",
        "geopandas",
        "shapely",
        "pyarrow",
        "numba",
        "dask",
        "movingpandas",
    ):
        try:
            versions[name] = __import__(name).__version__
        except ImportError:
            versions[name] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = "unknown"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return {
        "CPU": cpu,
        "cores (logical)": str(os.cpu_count()),
        "RAM": ram,
        "OS": f"{platform.system()} {platform.release()}",
        "load average at start (1/5/15 min)": load,
        "Python": platform.python_version(),
        **versions,
        "git commit": commit or "unknown",
        "date (UTC)": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
    }


def _run(script: str, args: list[str]) -> list[dict[str, Any]]:
    cmd = [PYTHON, str(HERE / script), "--json", *args]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if proc.returncode != 0:
        print(proc.stderr[-4000:], file=sys.stderr)
        return [
            {
                "error": f"{script} failed with exit code {proc.returncode}: "
                f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}"
            }
        ]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def _ok(value: bool) -> str:
    return "✅" if value else "❌"


def stops_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| data | points | trucks | ours (s) | movingpandas (s) | speed ratio (≥ 300×) | stops ours / mpd "
        "| our stop time also mpd's (≥ 0.95) | mpd stop time also ours (≥ 0.95) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['error']} |||||||")
            continue
        out.append(
            f"| {r.get('source', '')} | {r['points']:,} | {r['vehicles']} | {r['ours_s']:.3f} | {r['movingpandas_s']:.1f} "
            f"| {r['speed_ratio']:.0f}× {_ok(r['speed_ratio'] >= 300)} "
            f"| {r['stops_ours']} / {r['stops_movingpandas']} "
            f"| {r['agreement_ours_in_ref']:.3f} {_ok(r['agreement_ours_in_ref'] >= 0.95)} "
            f"| {r['agreement_ref_in_ours']:.3f} {_ok(r['agreement_ref_in_ours'] >= 0.95)} |"
        )
    return "\n".join(out)


def _engine(r: dict[str, Any]) -> str:
    if r.get("engine") == "dask":
        return f"dask (largest worker {r.get('largest_worker_peak_rss_mb', 0):,.0f} MB)"
    return str(r.get("engine", ""))


def audit_table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| points | trucks | engine | audit (s) | points/s | floor (s) | audit / floor (≤ 3) "
        "| peak RSS (MB) | peak B/point (≤ 250) | B/point above imports | alerts |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    good = [r for r in rows if "error" not in r]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['error']} ||||||||||")
            continue
        out.append(
            f"| {r['points']:,} | {r['trucks']} | {_engine(r)} | {r['audit_s']:.1f} "
            f"| {r['points_per_s']:,.0f} | {r['floor_s']:.1f} "
            f"| {r['ratio_to_floor']:.2f} {_ok(r['ratio_to_floor'] <= 3)} "
            f"| {r['peak_rss_mb']:,.0f} | {r['bytes_per_point']:.0f} "
            f"{_ok(r['bytes_per_point'] <= 250)} | {r['bytes_per_point_above_base']:.0f} "
            f"| {r['alerts']} |"
        )
    local = [r for r in good if r.get("engine") == "local"]
    if len(local) > 1:
        first, last = local[0], local[-1]
        ratio = last["audit_s"] / first["audit_s"]
        pts = last["points"] / first["points"]
        limit = 11 * pts / 10
        out.append("")
        out.append(
            f"Scaling: time({last['points']:,}) / time({first['points']:,}) = **{ratio:.2f}** for "
            f"{pts:.2f}× the points (target ≤ 11 for 10×, i.e. ≤ {limit:.1f} here) "
            f"{_ok(ratio <= limit)}"
        )
    stage_lines = []
    for r in good:
        stages = ", ".join(f"{s} {t:.1f}" for s, t in r.get("stages", []))
        stage_lines.append(
            f"- {r['points']:,} points ({r['engine']}): {stages or 'no stages reported'}"
        )
        peaks = "; ".join(f"{mb:,.0f} MB {s}" for s, mb in r.get("stage_peaks_mb", []))
        if peaks:
            stage_lines.append(
                f"  - highest RSS (imports alone: {r.get('base_rss_mb', 0):,.0f} MB): {peaks}"
            )
    if stage_lines:
        out.append("")
        out.append("Stage timings (seconds, from the audit's progress callback):")
        out.extend(stage_lines)
    return "\n".join(out)


def _sections(text: str) -> dict[str, str]:
    """Split a results page into its ``## `` sections (heading line -> whole section)."""
    parts: dict[str, str] = {}
    current = None
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            current = line.strip()
            parts[current] = ""
        if current is not None:
            parts[current] += line
    return parts


def keep_other_sections(new_text: str, old_text: str) -> str:
    """Append to ``new_text`` the sections of ``old_text`` this script does not write.

    The JT/T 808, live-engine, live-ingest and accuracy benchmarks are run on their own
    (each writes its own section by hand, with its machine state); a rerun of this script
    replaces only the sections it produces and keeps theirs.
    """
    produced = _sections(new_text)
    kept = [body.rstrip("\n") + "\n" for head, body in _sections(old_text).items()
            if head not in produced]
    if not kept:
        return new_text
    return new_text.rstrip("\n") + "\n\n" + "\n".join(kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="stops 100k only, audit 1M only")
    parser.add_argument(
        "--stops-sizes",
        type=int,
        nargs="*",
        default=None,
        help="points for the stop benchmark on the synthetic fleet (default 100000)",
    )
    parser.add_argument(
        "--stops-random-sizes",
        type=int,
        nargs="*",
        default=None,
        help="points for the stop benchmark on random-walk trucks (default 100000 300000)",
    )
    parser.add_argument("--audit-sizes", type=float, nargs="*", default=None)
    parser.add_argument("--format", choices=("csv", "parquet"), default="parquet")
    parser.add_argument(
        "--dask-sizes",
        type=float,
        nargs="*",
        default=[],
        help="also run the audit with the Dask engine (local cluster, 2 workers) at these sizes",
    )
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    stops_sizes = args.stops_sizes if args.stops_sizes is not None else [100_000]
    if args.stops_random_sizes is not None:
        random_sizes = args.stops_random_sizes
    else:
        random_sizes = [100_000] if args.quick else [100_000, 300_000]
    if args.audit_sizes is not None:
        audit_sizes = args.audit_sizes
    else:
        audit_sizes = [1e6] if args.quick else [1e6, 3e6, 1e7]
    info = machine()
    t0 = time.perf_counter()
    sections = [
        "# Benchmark results",
        "",
        "Written by `benchmarks/run_all.py`; see benchmarks/README.md for what each figure means.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
    ]
    sections += [f"| {k} | {v} |" for k, v in info.items()]
    if stops_sizes or random_sizes:
        rows = []
        if stops_sizes:
            rows += _run(
                "bench_stops.py", ["--source", "fleet", "--points", *map(str, stops_sizes)]
            )
        if random_sizes:
            rows += _run(
                "bench_stops.py", ["--source", "random", "--points", *map(str, random_sizes)]
            )
        sections += [
            "",
            "## Stop detection: ours vs movingpandas TrajectoryStopDetector",
            "",
            "Same points, diameter 60 m, min duration 120 s. `fleet`: whole trucks of the "
            "synthetic fleet (long dwells: loading, queues, night parking); `random`: "
            "random-walk trucks with dwells of 20 s to 40 min.",
            "",
            stops_table(rows),
        ]
    if audit_sizes or args.dask_sizes:
        rows = []
        if audit_sizes:
            sizes = [str(int(x)) for x in audit_sizes]
            rows += _run("bench_audit.py", ["--sizes", *sizes, "--format", args.format])
        if args.dask_sizes:
            sizes = [str(int(x)) for x in args.dask_sizes]
            rows += _run(
                "bench_audit.py", ["--sizes", *sizes, "--format", args.format, "--engine", "dask"]
            )
        sections += [
            "",
            "## Full audit (read → alerts), synthetic fleet, one day",
            "",
            f"Tracks as {args.format}; each run in a fresh process. Floor = read the same file "
            "with pyarrow and sort by vehicle and time (pandas). Dask rows: local cluster of "
            "2 worker processes; peak RSS is the client's (the largest worker is in the JSON).",
            "",
            audit_table(rows),
        ]
    sections += ["", f"Total benchmark time: {time.perf_counter() - t0:.0f} s.", ""]
    text = "\n".join(sections)
    out = Path(args.out)
    if out.exists():
        text = keep_other_sections(text, out.read_text(encoding="utf-8"))
    out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
