"""Detection accuracy on generated fleets with real-terminal conditions (issue 12).

For each fleet (seed x sensors x coordinate system) the script generates a dataset
with ``haulwatch.ingest.synthetic.generate`` (``conditions``: all of them by
default: night shifts, 10/30/60/120 s terminals, urban canyons and multipath jumps,
frozen fixes, fast and rolling dumps, two terminals on one truck, large origins with
gate queues, service roads inside narrow corridors, dark dumps ending in the origin),
audits it with the default configuration and scores the alerts against its
``truth.csv`` (``routes.evaluate``). It prints, per fleet and summed over all fleets:

* per alert kind: true / false positives, misses, precision, recall;
* alerts on innocent situations, by what they hit (traffic lights, gate queues,
  service roads, frozen fixes, multipath jumps, ...): any alert of a stop kind whose
  window overlaps one, and any ``route_deviation`` overlapping a service road, an
  urban canyon or a multipath jump of the same truck;
* stop durations: for every matched ``illegal_dump`` at a stop (not in the dark),
  the alert's ``stop_duration_s`` against the truth's dwell (first to last fix of
  the stop), and the share within one reporting interval of that truck.

Run (about 1 min per 200-truck, 2-day fleet on a quiet machine)::

    .venv/bin/python benchmarks/bench_accuracy.py --seeds 1 2 --trucks 200 --days 2
    .venv/bin/python benchmarks/bench_accuracy.py --seeds 5 --sensors all none \\
        --coord-systems wgs84 gcj02 --conditions night_shifts fast_dumps

Datasets and audit outputs go to ``--work`` (default ``benchmarks/work/accuracy``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

#: Innocent truth kinds a route_deviation must not sit on.
_ROUTE_INNOCENTS = ("innocent_service_road", "innocent_urban_canyon", "innocent_multipath")
_STOP_KINDS = ("illegal_dump", "unpermitted_origin", "gps_gap")


def _innocent_hits(alerts: pd.DataFrame, truth: pd.DataFrame) -> dict[str, int]:
    """Alerts overlapping an innocent situation of the same truck, by innocent kind.

    An alert that matched a truth row of its own kind is still counted when it
    overlaps an innocent row, except gps_gap / unpermitted_origin windows, which
    cover whole dark spells and loading visits: only stop kinds and deviations are
    judged, as in ``routes.evaluate``.
    """
    inn = truth[truth["kind"].str.startswith("innocent_")]
    hits: dict[str, int] = {}
    for kinds, allowed in ((("illegal_dump", "unpermitted_origin"), None),
                           (("route_deviation",), _ROUTE_INNOCENTS)):
        a = alerts[alerts["kind"].isin(kinds)]
        if a.empty or inn.empty:
            continue
        i = inn if allowed is None else inn[inn["kind"].isin(allowed)]
        m = a.merge(i, on="vehicle_key", suffixes=("", "_t"))
        m = m[(m["start"] <= m["end_t"]) & (m["start_t"] <= m["end"])]
        for k, n in m.groupby("kind_t").size().items():
            hits[str(k)] = hits.get(str(k), 0) + int(n)
    return hits


def _stop_durations(alerts: pd.DataFrame, truth: pd.DataFrame, pairs: pd.DataFrame,
                    intervals: dict[str, float]) -> tuple[int, int, float]:
    """(matched stop dumps, of them within one fix interval, worst excess in seconds)."""
    n = ok = 0
    worst = 0.0
    for ai, ti in zip(pairs["alert_index"], pairs["truth_index"], strict=True):
        a = alerts.loc[ai]
        t = truth.loc[ti]
        if a["kind"] != "illegal_dump" or "dark" in str(t.get("note", "")):
            continue
        ev = a["evidence"]
        if isinstance(ev, str):
            ev = json.loads(ev)
        if ev.get("went_dark"):
            continue
        true_s = (t["end"] - t["start"]).total_seconds()
        if true_s <= 0:
            continue
        step = intervals.get(str(a["vehicle_key"]), 30.0)
        err = abs(float(ev["stop_duration_s"]) - true_s)
        n += 1
        ok += err <= step + 1.0
        worst = max(worst, err - step)
    return n, ok, worst


def run_fleet(work: Path, *, seed: int, trucks: int, days: int, sensors: str, coord: str,
              conditions: list[str]) -> dict:
    """Generate, audit and score one fleet; return its figures."""
    from haulwatch.ingest.plates import normalize_plate
    from haulwatch.ingest.synthetic import generate
    from haulwatch.routes.audit import audit_folder
    from haulwatch.routes.evaluate import evaluate, match, read_truth

    name = f"s{seed}-{sensors}-{coord}-{trucks}x{days}"
    folder = work / name
    t0 = time.perf_counter()
    generate(folder, trucks=trucks, days=days, seed=seed, sensors=sensors, coord_system=coord,
             conditions=conditions)
    t1 = time.perf_counter()
    result = audit_folder(folder)
    t2 = time.perf_counter()
    alerts = result.alerts.reset_index(drop=True)
    truth = read_truth(folder)
    table = evaluate(alerts, truth)
    pairs = match(alerts, truth)
    alerts = alerts.assign(vehicle_key=alerts["vehicle_id"].map(normalize_plate))
    truth = truth.assign(vehicle_key=truth["vehicle_id"].map(normalize_plate))
    meta = json.loads((folder / "truth_meta.json").read_text(encoding="utf-8"))
    intervals = {normalize_plate(k): float(v) for k, v in meta.get("vehicle_interval_s", {}).items()}
    n_dur, ok_dur, worst = _stop_durations(alerts, truth, pairs, intervals)
    return {
        "name": name, "table": table, "innocent": _innocent_hits(alerts, truth),
        "n_innocent": int(truth["kind"].str.startswith("innocent_").sum()),
        "durations": (n_dur, ok_dur, worst), "gen_s": t1 - t0, "audit_s": t2 - t1,
    }


def _print_table(table: pd.DataFrame, title: str) -> None:
    print(f"\n{title}")
    print(f"{'kind':<24}{'tp':>6}{'fp':>6}{'fn':>6}{'precision':>11}{'recall':>9}")
    for r in table.itertuples(index=False):
        p = "-" if pd.isna(r.precision) else f"{r.precision:.3f}"
        rc = "-" if pd.isna(r.recall) else f"{r.recall:.3f}"
        print(f"{r.kind:<24}{r.tp:>6}{r.fp:>6}{r.fn:>6}{p:>11}{rc:>9}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    from haulwatch.ingest.synthetic import CONDITIONS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--trucks", type=int, default=200)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--sensors", nargs="+", default=["all", "none"], choices=("all", "none", "mixed"))
    ap.add_argument("--coord-systems", nargs="+", default=["wgs84", "gcj02"],
                    choices=("wgs84", "gcj02", "bd09"))
    ap.add_argument("--conditions", nargs="+", default=["all"], choices=("all", *CONDITIONS))
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "work" / "accuracy")
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    fleets = []
    # every seed with every sensor setting, coordinate systems taken in turn
    combos = [(s, sens, args.coord_systems[(k + j) % len(args.coord_systems)])
              for k, s in enumerate(args.seeds) for j, sens in enumerate(args.sensors)]
    for seed, sens, coord in combos:
        f = run_fleet(args.work, seed=seed, trucks=args.trucks, days=args.days, sensors=sens,
                      coord=coord, conditions=args.conditions)
        fleets.append(f)
        n, ok, worst = f["durations"]
        _print_table(f["table"], f"{f['name']}  (generate {f['gen_s']:.0f} s, audit {f['audit_s']:.0f} s)")
        print(f"innocent situations {f['n_innocent']}, alerts on them: {sum(f['innocent'].values())} "
              f"{f['innocent'] or ''}")
        print(f"dump stop durations within one fix interval: {ok}/{n} (worst excess {worst:.0f} s)")
        sys.stdout.flush()
    total = None
    for f in fleets:
        t = f["table"].set_index("kind")[["tp", "fp", "fn"]]
        total = t if total is None else total.add(t, fill_value=0)
    total = total.astype(int).reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        total["precision"] = total["tp"] / (total["tp"] + total["fp"])
        total["recall"] = total["tp"] / (total["tp"] + total["fn"])
    _print_table(total, f"ALL {len(fleets)} fleets, conditions {' '.join(args.conditions)}")
    inn: dict[str, int] = {}
    for f in fleets:
        for k, v in f["innocent"].items():
            inn[k] = inn.get(k, 0) + v
    n_inn = sum(f["n_innocent"] for f in fleets)
    n = sum(f["durations"][0] for f in fleets)
    ok = sum(f["durations"][1] for f in fleets)
    print(f"innocent situations {n_inn}, alerts on them: {sum(inn.values())} {inn or ''}")
    print(f"dump stop durations within one fix interval: {ok}/{n}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
