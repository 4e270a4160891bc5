"""How long the analyst's outputs take on many alerts: report.html, the tables, audit.xlsx.

    .venv/bin/python benchmarks/bench_report.py [N_ALERTS ...]

Alerts are synthetic (kinds, trucks, companies, origins spread at random, fixed seed);
the figures are printed, never asserted (docs/style: no timed assertions).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from haulwatch.routes.alerts import KINDS, make_alerts
from haulwatch.routes.outputs import write_outputs
from haulwatch.routes.report import company_scorecard, origin_reconciliation, render_report


def world(n: int, seed: int = 7) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    trucks = [f"浙D{i:05d}" for i in range(max(50, n // 20))]
    vehicles = pd.DataFrame({"vehicle_id": trucks, "vehicle_key": trucks,
                             "company": [f"运输公司{i % 40}" for i in range(len(trucks))],
                             "registered": True, "capacity_m3": np.nan})
    start = pd.Timestamp("2026-03-01T00:00:00Z") + pd.to_timedelta(
        rng.integers(0, 30 * 86400, n), unit="s")
    alerts = make_alerts(pd.DataFrame({
        "kind": rng.choice(KINDS, n), "vehicle_id": rng.choice(trucks, n), "start": start,
        "end": start + pd.Timedelta(minutes=10), "severity": rng.choice(["high", "medium", "low"], n),
        "lon": 120.5 + rng.random(n) * 0.3, "lat": 30.0 + rng.random(n) * 0.2,
        "summary": "synthetic", "trip_id": [f"T{i}" for i in range(n)],
    }), timezone="Asia/Shanghai")
    trips = pd.DataFrame({"trip_id": [f"T{i}" for i in range(n * 3)],
                          "vehicle_id": rng.choice(trucks, n * 3),
                          "origin_site_id": rng.choice([f"O{i}" for i in range(60)], n * 3),
                          "disposal_site_id": rng.choice([f"D{i}" for i in range(10)], n * 3),
                          "status": "delivered"})
    stops = pd.DataFrame({"lon": 120.5 + rng.random(n * 2) * 0.3, "lat": 30.0 + rng.random(n * 2) * 0.2,
                          "duration_s": rng.integers(60, 3600, n * 2), "site_id": None})
    manifests = pd.DataFrame({"origin_site_id": rng.choice([f"O{i}" for i in range(60)], n),
                              "volume_m3": rng.integers(20, 200, n).astype(float)})
    return SimpleNamespace(alerts=alerts, trips=trips, stops=stops, rejects=pd.DataFrame(),
                           summary={"timezone": "Asia/Shanghai"}, manifests=manifests,
                           vehicles=vehicles)


def main(sizes: list[int]) -> None:
    for n in sizes:
        w = world(n)
        t0 = time.perf_counter()
        company_scorecard(w.alerts, trips=w.trips, vehicles=w.vehicles)
        origin_reconciliation(w.trips, manifests=w.manifests, vehicles=w.vehicles)
        t1 = time.perf_counter()
        html = render_report(w.alerts, trips=w.trips, stops=w.stops, manifests=w.manifests,
                             vehicles=w.vehicles, summary=w.summary)
        t2 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            write_outputs(w, tmp, xlsx=True)
            t3 = time.perf_counter()
            size = (Path(tmp) / "audit.xlsx").stat().st_size
        print(f"{n:>7,} alerts: tables {t1 - t0:6.2f} s, report.html {t2 - t1:6.2f} s "
              f"({len(html) / 1e6:.1f} MB), all outputs + audit.xlsx {t3 - t2:6.2f} s "
              f"(xlsx {size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000, 10_000])
