"""Full audit, read → alerts, on synthetic fleets of 1M, 3M, 10M points.

For every size the dataset is generated once with ``haulwatch.ingest.synthetic``
(cached under ``benchmarks/work/``, git-ignored) and then, each in a **fresh
subprocess** so peak memory is that of one run:

* ``floor``: read the same tracks file (pyarrow) into pandas and sort by
  vehicle and time, nothing else: the least any audit must pay;
* ``audit``: ``routes.audit.audit_folder`` (read, validate, convert, project,
  stops, trips, every detector, alerts), optionally with ``--engine dask``.

Figures: seconds, points/s, peak RSS (``resource.getrusage``) and peak bytes per
point, both raw and above the process's RSS after imports (the interpreter and
libraries, ~0.3 GB, are not per-point costs), the ratio audit / floor, and the
scaling time(10M) / time(1M). Stage timings come from the audit's progress
callback. Targets: audit ≤ 3× floor, time(10M)/time(1M) ≤ 11, peak ≤ 250 B/point.

Run: ``.venv/bin/python benchmarks/bench_audit.py --sizes 1000000 3000000``
(add ``--json`` for machine-readable lines; ``run_all.py`` collects them).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"
PYTHON = sys.executable


def _rss_now_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def tracks_file(dataset: Path) -> Path:
    """Return the tracks file of a dataset folder (CSV or Parquet)."""
    for name in ("tracks.parquet", "tracks.csv"):
        if (dataset / name).exists():
            return dataset / name
    raise FileNotFoundError(f"no tracks.csv or tracks.parquet in {str(dataset)!r}")


# --------------------------------------------------------------------------- data


def _generate(out: Path, *, trucks: int, seed: int, fmt: str) -> None:
    code = (
        "import sys;from haulwatch.ingest.synthetic import generate;"
        f"generate(sys.argv[1], trucks={trucks}, days=1, seed={seed}, fmt={fmt!r})"
    )
    subprocess.run([PYTHON, "-c", code, str(out)], check=True)


def count_points(dataset: Path) -> int:
    """Rows of the tracks file (data rows, header excluded)."""
    path = tracks_file(dataset)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as fh:
        return sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 24), b"")) - 1


def generator_fingerprint() -> str:
    """Hash of the synthetic generator's sources: cached data from another version is stale."""
    import hashlib

    import haulwatch.ingest as ingest

    digest = hashlib.sha256()
    for path in sorted(Path(ingest.__file__).parent.glob("synthetic*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _drop_stale() -> None:
    """Delete cached datasets made by another version of the generator."""
    import shutil

    fingerprint = generator_fingerprint()
    for folder in list(WORK.glob("fleet_*")) + list(WORK.glob("probe_*")):
        if folder.is_dir() and not folder.name.endswith(f"_{fingerprint}"):
            shutil.rmtree(folder)


def _cached_fleets(seed: int, fmt: str) -> list[tuple[Path, dict[str, Any]]]:
    out = []
    fingerprint = generator_fingerprint()
    for folder in sorted(WORK.glob(f"fleet_*t_{fmt}_s{seed}_{fingerprint}")):
        marker = folder / ".complete"
        if marker.exists():
            out.append((folder, json.loads(marker.read_text(encoding="ascii"))))
    return out


def ensure_dataset(n_points: int, *, seed: int = 7, fmt: str = "parquet") -> Path:
    """Generate (once) a one-day fleet with about ``n_points`` track rows; return its folder.

    Points per truck shrink as fleets grow (sites are shared), so the truck count
    is calibrated on the largest fleet generated so far and corrected (at most
    three attempts) until the row count is within -15 % / +30 % of the target.
    """
    WORK.mkdir(parents=True, exist_ok=True)
    _drop_stale()
    fleets = _cached_fleets(seed, fmt)
    fits = [
        (abs(m["points"] / n_points - 1), f)
        for f, m in fleets
        if 0.85 <= m["points"] / n_points <= 1.3
    ]
    if fits:
        return min(fits)[1]
    if fleets:
        _, meta = max(fleets, key=lambda fm: fm[1]["trucks"])
        per_truck = meta["points"] / meta["trucks"]
    else:
        probe = WORK / f"probe_{fmt}_s{seed}_{generator_fingerprint()}"
        if not (probe / ".complete").exists():
            _generate(probe, trucks=20, seed=seed, fmt=fmt)
            (probe / ".complete").write_text(str(count_points(probe)), encoding="ascii")
        per_truck = int((probe / ".complete").read_text(encoding="ascii")) / 20
    out = WORK
    for _ in range(3):
        trucks = int(min(100_000, max(3, round(n_points / per_truck))))
        out = WORK / f"fleet_{trucks}t_{fmt}_s{seed}_{generator_fingerprint()}"
        if not (out / ".complete").exists():
            t0 = time.perf_counter()
            _generate(out, trucks=trucks, seed=seed, fmt=fmt)
            meta = {
                "points": count_points(out),
                "trucks": trucks,
                "generate_s": time.perf_counter() - t0,
            }
            (out / ".complete").write_text(json.dumps(meta), encoding="ascii")
        meta = json.loads((out / ".complete").read_text(encoding="ascii"))
        if 0.85 <= meta["points"] / n_points <= 1.3:
            break
        per_truck = meta["points"] / meta["trucks"]
    return out


# --------------------------------------------------------------------------- children


def child_floor(dataset: Path) -> dict[str, Any]:
    """Read the tracks file and sort by vehicle and time; nothing else."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    base = _rss_now_bytes()
    path = tracks_file(dataset)
    t0 = time.perf_counter()
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        table = pacsv.read_csv(
            path, convert_options=pacsv.ConvertOptions(column_types={"vehicle_id": "string"})
        )
    frame = table.to_pandas()
    del table
    frame = frame.sort_values(["vehicle_id", "time"], kind="stable", ignore_index=True)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": len(frame), "peak_rss": _peak_rss_bytes(), "base_rss": base}


def child_audit(dataset: Path, engine: str, workers: int) -> dict[str, Any]:
    """Run the full audit (read → alerts) and report time, memory and stage timings."""
    import threading

    from haulwatch.routes.config import AuditConfig

    stages: list[tuple[str, float]] = []
    last = [time.perf_counter()]
    current = ["start"]
    stage_peaks: dict[str, int] = {}
    done = threading.Event()

    def poll() -> None:  # RSS every 20 ms, kept per stage (the step after a message)
        while not done.is_set():
            rss = _rss_now_bytes()
            label = current[0]
            if rss > stage_peaks.get(label, 0):
                stage_peaks[label] = rss
            done.wait(0.02)

    def progress(*args: Any, **info: Any) -> None:
        now = time.perf_counter()
        stage = str(args[0]) if args else str(info.get("stage", "progress"))
        stages.append((stage, now - last[0]))
        current[0] = f"after '{stage[:60]}'"
        last[0] = now

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()

    if engine == "dask":
        from haulwatch.routes.distributed import audit_dask

        base = _rss_now_bytes()
        t0 = time.perf_counter()
        last[0] = t0
        result = audit_dask(dataset, AuditConfig(), n_workers=workers, progress=progress)
    else:
        from haulwatch.routes.audit import audit_folder

        base = _rss_now_bytes()
        t0 = time.perf_counter()
        last[0] = t0
        result = audit_folder(dataset, AuditConfig(), progress=progress)
    seconds = time.perf_counter() - t0
    done.set()
    poller.join()
    summary = getattr(result, "summary", {}) or {}
    by_kind = result.alerts["kind"].value_counts().to_dict() if len(result.alerts) else {}
    return {
        "seconds": seconds,
        "peak_rss": _peak_rss_bytes(),
        "children_peak_rss": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
        "base_rss": base,
        "alerts": len(result.alerts),
        "alerts_by_kind": {str(k): int(v) for k, v in by_kind.items()},
        "trips": len(getattr(result, "trips", [])),
        "stages": stages,
        "stage_peaks": sorted(stage_peaks.items(), key=lambda kv: -kv[1])[:3],
        "summary_points": {
            k: summary.get(k) for k in ("points_read", "points_kept", "rows_rejected")
        },
    }


def _run_child(kind: str, dataset: Path, engine: str = "local", workers: int = 2) -> dict:
    cmd = [
        PYTHON,
        str(Path(__file__).resolve()),
        "--child",
        kind,
        "--dataset",
        str(dataset),
        "--engine",
        engine,
        "--workers",
        str(workers),
    ]
    env = dict(os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _warm_cache(path: Path) -> None:
    with path.open("rb") as fh:
        while fh.read(1 << 24):
            pass


def bench(
    n_points: int, *, seed: int = 7, fmt: str = "parquet", engine: str = "local", workers: int = 2
) -> dict[str, Any]:
    """Generate (cached), then time the floor and the audit in fresh processes."""
    dataset = ensure_dataset(n_points, seed=seed, fmt=fmt)
    meta = json.loads((dataset / ".complete").read_text(encoding="ascii"))
    points = int(meta["points"])
    _warm_cache(tracks_file(dataset))
    floor = _run_child("floor", dataset)
    audit = _run_child("audit", dataset, engine, workers)
    return {
        "target_points": n_points,
        "points": points,
        "trucks": meta["trucks"],
        "format": fmt,
        "engine": engine,
        "generate_s": meta.get("generate_s"),
        "floor_s": floor["seconds"],
        "audit_s": audit["seconds"],
        "ratio_to_floor": audit["seconds"] / floor["seconds"],
        "points_per_s": points / audit["seconds"],
        "peak_rss_mb": audit["peak_rss"] / 2**20,
        "bytes_per_point": audit["peak_rss"] / points,
        "bytes_per_point_above_base": (audit["peak_rss"] - audit["base_rss"]) / points,
        "floor_peak_rss_mb": floor["peak_rss"] / 2**20,
        "largest_worker_peak_rss_mb": audit.get("children_peak_rss", 0) / 2**20,
        "alerts": audit["alerts"],
        "alerts_by_kind": audit["alerts_by_kind"],
        "trips": audit["trips"],
        "stages": audit["stages"],
        "stage_peaks_mb": [(s, r / 2**20) for s, r in audit.get("stage_peaks", [])],
        "base_rss_mb": audit["base_rss"] / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 3e6, 1e7])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--format", choices=("csv", "parquet"), default="parquet")
    parser.add_argument("--engine", choices=("local", "dask"), default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print one JSON line per size")
    parser.add_argument("--child", choices=("floor", "audit"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        dataset = Path(args.dataset)
        if args.child == "floor":
            out = child_floor(dataset)
        else:
            out = child_audit(dataset, args.engine, args.workers)
        print(json.dumps(out))
        return 0
    results = []
    for size in args.sizes:
        res = bench(
            int(size), seed=args.seed, fmt=args.format, engine=args.engine, workers=args.workers
        )
        results.append(res)
        if args.json:
            print(json.dumps(res), flush=True)
        else:
            stages = ", ".join(f"{s} {t:.1f}s" for s, t in res["stages"])
            print(
                f"{res['points']:>11,} points ({res['trucks']} trucks): audit {res['audit_s']:.1f} s "
                f"({res['points_per_s']:,.0f} pt/s), floor {res['floor_s']:.1f} s, ratio "
                f"{res['ratio_to_floor']:.2f}, peak {res['peak_rss_mb']:.0f} MB = "
                f"{res['bytes_per_point']:.0f} B/pt ({res['bytes_per_point_above_base']:.0f} "
                f"above imports), alerts {res['alerts']}\n    stages: {stages}",
                flush=True,
            )
    if len(results) > 1 and not args.json:
        first, last = results[0], results[-1]
        print(
            f"time ratio {last['points']:,}/{first['points']:,} points: "
            f"{last['audit_s'] / first['audit_s']:.2f} (points ratio "
            f"{last['points'] / first['points']:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
