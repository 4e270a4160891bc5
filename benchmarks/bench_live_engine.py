"""The live engine alone (no HTTP, no gateway): single reports from a city's fleet.

A generated fleet (``--trucks`` trucks, one day, ``ingest.synthetic``) is replayed
through :class:`haulwatch.routes.live.LiveAuditor` as a service would feed it:

1. warm-up (not timed): the day until ``--warm-hours`` after its first point,
   pushed in half-hour slices, so trucks are mid-day with open windows;
2. measured: the following points, in time order, *offered one by one* at
   ``--rate`` points per wall second (each truck's single reports, interleaved as
   the fleet sends them). Like the service's runner, the engine takes everything
   that arrived while its previous run was going as one push (micro-batching),
   so a busy engine gets larger pushes and a fast one single points.
   ``--backfill-pct`` of the trucks go dark for ``--dead-min`` minutes during
   the measured phase and upload the blind-area points afterwards, late
   (JT/T 808 0x0704), which the engine audits in time order.

Printed: sustained points/s (points audited / wall), whether it kept up with
the offered rate, per-point engine cost (busy time / points), push size and
time, point latency (arrival -> its push done) and alert latency (arrival of the
point that raised a new alert -> the push that reported it) p50/p99, and the
memory the engine holds per 1,000 trucks (RSS growth after warm-up and run,
``held_points``).

    .venv/bin/python benchmarks/bench_live_engine.py                  # 2,000 trucks, 5,000 points/s, 30 s
    .venv/bin/python benchmarks/bench_live_engine.py --trucks 300 --seconds 10 --rate 2000
    .venv/bin/python benchmarks/bench_live_engine.py --folder /tmp/fleet2000   # reuse a generated fleet
    .venv/bin/python benchmarks/bench_live_engine.py --folder /tmp/fleet2000 --workers 1   # second core
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _dead_zones(feed: pd.DataFrame, pct: float, minutes: float, seed: int) -> np.ndarray:
    """Mask of the measured points a terminal holds back (one dead zone per chosen truck)."""
    rng = np.random.default_rng(seed)
    keys = feed["vehicle_key"].astype(str).to_numpy()
    uniq = np.unique(keys)
    chosen = set(rng.choice(uniq, size=round(len(uniq) * pct / 100.0), replace=False))
    t = feed["time"].astype("int64").to_numpy() / 1e9
    held = np.zeros(len(feed), dtype=bool)
    if not chosen:
        return held
    t0, t1 = t.min(), t.max()
    for key in chosen:
        start = rng.uniform(t0, max(t0, t1 - minutes * 60))
        held |= (keys == key) & (t >= start) & (t < start + minutes * 60)
    return held


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trucks", type=int, default=2000, help="generated trucks (default 2000)")
    p.add_argument("--folder", type=Path, help="use this generated dataset instead of generating")
    p.add_argument("--rate", type=float, default=5000.0, help="offered points per second (5000)")
    p.add_argument("--seconds", type=float, default=30.0, help="measured wall seconds (30)")
    p.add_argument("--warm-hours", type=float, default=4.0, help="day pushed before measuring (4 h)")
    p.add_argument("--backfill-pct", type=float, default=10.0,
                   help="trucks that go dark and back-fill during the measured phase (10)")
    p.add_argument("--dead-min", type=float, default=20.0, help="length of a dead zone, minutes (20)")
    p.add_argument("--backfill-s", type=float, default=7200.0,
                   help="how far back late points are audited in time order (LiveAuditor, 7200)")
    p.add_argument("--workers", type=int, default=0,
                   help="worker processes auditing part of each run's windows (LiveAuditor, 0; 1 on 2 cores)")
    p.add_argument("--fixed-push", type=int, default=0, metavar="N",
                   help="instead of pacing: push the measured points N at a time, unpaced, and print the "
                        "engine CPU per push (compares engines at equal work on a busy machine)")
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args(argv)
    if args.trucks < 1 or args.rate <= 0 or args.seconds <= 0:
        p.error("--trucks, --rate and --seconds must be > 0")

    from haulwatch.ingest.dataset import read_dataset
    from haulwatch.ingest.prepare import prepare
    from haulwatch.ingest.synthetic import generate
    from haulwatch.routes.live import LiveAuditor

    folder = args.folder
    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="haulwatch-bench-engine-")) / "fleet"
        t = time.perf_counter()
        generate(folder, trucks=args.trucks, days=1, seed=args.seed, bad_row_fraction=0.0,
                 duplicate_fraction=0.0, violation_rate=0.2)
        print(f"generated {args.trucks} trucks in {time.perf_counter() - t:.0f} s: {folder}")
    raw = read_dataset(folder)
    dataset = prepare(raw)
    tracks = raw.tracks.sort_values("time", kind="stable").reset_index(drop=True)
    cols = [c for c in ("vehicle_id", "vehicle_key", "time", "lon", "lat", "speed_kmh",
                        "heading_deg", "load", "lift") if c in tracks.columns]
    tracks = tracks[cols]
    n_trucks = tracks["vehicle_key"].nunique()
    t_first = tracks["time"].iloc[0]
    warm_end = t_first + pd.Timedelta(hours=args.warm_hours)
    warm = tracks[tracks["time"] < warm_end]
    feed = tracks[tracks["time"] >= warm_end].reset_index(drop=True)
    n_offer = int(min(len(feed), args.rate * args.seconds))
    feed = feed.iloc[:n_offer]
    held = _dead_zones(feed, args.backfill_pct, args.dead_min, args.seed)
    # the blind-area upload of a truck comes when it reconnects: after its zone
    order = np.arange(len(feed))
    if held.any():
        keys = feed["vehicle_key"].astype(str).to_numpy()
        release = np.full(len(feed), -1)
        for key in np.unique(keys[held]):
            zone = np.flatnonzero(held & (keys == key))
            after = np.flatnonzero(~held & (keys == key) & (np.arange(len(feed)) > zone.max()))
            release[zone] = after[0] if len(after) else len(feed) - 1
        # offered sequence: each held point moves to just after its release point
        pos = np.where(held, release + 0.5, np.arange(len(feed), dtype=float))
        order = np.argsort(pos, kind="stable")
    feed = feed.iloc[order].reset_index(drop=True)
    was_held = held[order]

    gc.collect()
    rss0 = _rss_mb()
    extra = {"workers": args.workers} if args.workers else {}  # an engine without workers runs too
    live = LiveAuditor(dataset, backfill_s=args.backfill_s, **extra)
    t = time.perf_counter()
    for _, chunk in warm.groupby(warm["time"].dt.floor("30min"), sort=True):
        live.push(chunk)
    warm_s = time.perf_counter() - t
    print(f"haulwatch live engine benchmark: {n_trucks:,} trucks, warm-up {len(warm):,} points "
          f"({args.warm_hours:g} h of their day) in {warm_s:.0f} s; "
          f"{live.window_points:,} points in open windows")

    if args.fixed_push > 0:
        n = args.fixed_push
        chunks = [feed.iloc[i:i + n] for i in range(0, len(feed), n)][:9]
        live.push(chunks[0])  # not measured
        cpu0, t0 = time.process_time(), time.perf_counter()
        for chunk in chunks[1:]:
            live.push(chunk)
        k = len(chunks) - 1
        print(f"  fixed pushes: {k} x {n:,} points, engine CPU {(time.process_time() - cpu0) / k:.3f} s "
              f"per push, wall {(time.perf_counter() - t0) / k:.3f} s; load average {os.getloadavg()[0]:.1f}")
        if hasattr(live, "close"):
            live.close()
        return 0

    # measured phase: arrivals at the offered rate, one push per engine run
    arrive = np.arange(len(feed)) / args.rate
    done = 0
    pushes: list[tuple[int, float]] = []
    latency = np.full(len(feed), np.nan)
    alert_lat: list[float] = []
    late = backfilled = audited = 0
    busy = 0.0
    live.timings.clear()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    while done < len(feed):
        now = time.perf_counter() - t0
        upto = int(min(len(feed), np.floor(now * args.rate) + 1))
        if upto <= done:
            time.sleep(max(0.0, arrive[done] - now))
            continue
        batch = feed.iloc[done:upto]
        a = time.perf_counter()
        upd = live.push(batch)
        b = time.perf_counter()
        busy += b - a
        end = b - t0
        latency[done:upto] = end - arrive[done:upto]
        pushes.append((upto - done, b - a))
        late += upd.late
        backfilled += upd.backfilled
        audited += upd.audited_points
        if upd.new_ids:
            first = batch.assign(_a=arrive[done:upto]).groupby("vehicle_id")["_a"].min()
            vid = upd.changed.set_index("alert_id")["vehicle_id"]
            for aid in upd.new_ids:
                v = vid.get(aid, "")
                alert_lat.append(end - float(first.get(v, arrive[done])))
        done = upto
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    gc.collect()
    rss1 = _rss_mb()

    sizes = np.array([s for s, _ in pushes])
    times = np.array([d for _, d in pushes])
    pct = lambda v, q: float(np.percentile(v, q)) if len(v) else float("nan")  # noqa: E731
    print(f"  offered: {len(feed):,} single reports at {args.rate:,.0f} points/s "
          f"({int(was_held.sum()):,} of them back-filled late by {args.backfill_pct:g}% of trucks)")
    print(f"  sustained: {len(feed) / wall:,.0f} points/s over {wall:.1f} s wall "
          f"({'kept up' if wall <= len(feed) / args.rate * 1.05 + 1.0 else 'fell behind'}); "
          f"engine busy {busy / wall:.0%}")
    print(f"  per point: {busy / len(feed) * 1e6:,.0f} us engine wall time, {cpu / len(feed) * 1e6:,.0f} us "
          f"CPU; {audited / len(feed):,.0f} window points re-audited per point")
    stages = ", ".join(f"{k} {v / busy:.0%}" for k, v in live.timings.items())
    print(f"  engine time by stage: {stages}")
    print(f"  pushes: {len(pushes):,}, size p50 {pct(sizes, 50):,.0f} / max {sizes.max():,} points, "
          f"time p50 {pct(times, 50) * 1e3:,.0f} ms / p99 {pct(times, 99) * 1e3:,.0f} ms")
    print(f"  point latency (arrival -> pushed): p50 {pct(latency, 50):.2f} s, "
          f"p99 {pct(latency, 99):.2f} s, max {np.nanmax(latency):.2f} s")
    if alert_lat:
        lat = np.array(alert_lat)
        print(f"  alert latency (report -> new alert out of the engine): {len(lat)} alerts, "
              f"p50 {pct(lat, 50):.2f} s, p99 {pct(lat, 99):.2f} s, max {lat.max():.2f} s")
    else:
        print("  alert latency: no new alert in the measured phase")
    print(f"  back-fill: {backfilled:,} late points audited in time order, {late:,} too late")
    state = live.state_bytes() / 2**20
    print(f"  memory: engine state {state:,.0f} MB = {state / n_trucks * 1000:,.0f} MB per 1,000 trucks "
          f"({live.held_points:,} points held, {live.window_points:,} of them in open windows); "
          f"process RSS +{rss1 - rss0:,.0f} MB = {(rss1 - rss0) / n_trucks * 1000:,.0f} MB per 1,000 trucks "
          f"(includes the allocator's high-water mark of the pushes)")
    print(f"  machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"{args.workers} worker process(es) (CPU per point counts this process only)")
    if hasattr(live, "close"):
        live.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
