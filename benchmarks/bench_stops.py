"""Stop detection: ``haulwatch.geo.stops.detect_stops`` vs movingpandas.

Both run on the same tracks (metric coordinates, same ``diameter_m`` and
``min_duration_s``); movingpandas' ``TrajectoryStopDetector`` is the reference
meaning of a stop. Figures:

* speed: points per second of each, and the ratio (ours / movingpandas);
* agreement both ways, as a share of stop time: the share of our stop time
  that movingpandas also calls a stop, and the share of movingpandas' stop
  time we also find.

Timing excludes building inputs (the points frame for us, the
``TrajectoryCollection`` for movingpandas) and numba compilation (one warm-up
call on a small frame); ours is the best of three runs, movingpandas runs once.

Data (``--source``): ``fleet`` (default) takes whole trucks of the synthetic
fleet (``ingest.synthetic``, read and prepared as the audit does); ``random``
generates trucks here (seeded): they drive at 15-60 km/h with turns,
and stop 20 s - 40 min (traffic lights, queues, loading, parking) with 4 m GPS
noise, sampled every 5-30 s. Run: ``.venv/bin/python benchmarks/bench_stops.py
--points 100000 300000``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

DIAMETER_M = 60.0
MIN_DURATION_S = 120.0


def make_tracks(n_points: int, *, seed: int = 0, points_per_vehicle: int = 5000) -> pd.DataFrame:
    """Return a sorted points frame (``vehicle_id, vehicle_key, time, x, y``) of ``n_points``.

    Parameters
    ----------
    n_points : int
        Total points (>= 1).
    seed : int
        Random seed.
    points_per_vehicle : int
        Points per truck (the last truck gets the remainder).

    Returns
    -------
    pandas.DataFrame
    """
    rng = np.random.default_rng(seed)
    n_vehicles = max(1, int(np.ceil(n_points / points_per_vehicle)))
    sizes = np.full(n_vehicles, points_per_vehicle)
    sizes[-1] = n_points - points_per_vehicle * (n_vehicles - 1)
    frames = []
    for v, n in enumerate(sizes):
        dt = rng.choice([5.0, 10.0, 15.0, 30.0])
        # alternate driving and dwelling phases, lengths in points
        phases = []
        total = 0
        moving = True
        while total < n:
            if moving:
                length = int(rng.integers(10, 120))
            else:
                dwell_s = float(np.exp(rng.uniform(np.log(20.0), np.log(2400.0))))
                length = max(2, int(dwell_s / dt))
            phases.append((moving, min(length, n - total)))
            total += length
            moving = not moving
        speed = np.concatenate(
            [np.full(k, rng.uniform(15, 60) / 3.6) if mv else np.zeros(k) for mv, k in phases]
        )
        heading = np.cumsum(
            np.concatenate(
                [
                    rng.normal(0, 0.08, k) + (rng.random(k) < 0.02) * rng.choice([-1.57, 1.57], k)
                    for _, k in phases
                ]
            )
        )
        step = speed * dt
        x = np.cumsum(step * np.cos(heading)) + rng.uniform(-20000, 20000)
        y = np.cumsum(step * np.sin(heading)) + rng.uniform(-20000, 20000)
        x += rng.normal(0, 4.0, n)
        y += rng.normal(0, 4.0, n)
        jitter = rng.uniform(-0.5, 0.5, n)
        t = np.arange(n) * dt + jitter + 1.7e9 + rng.uniform(0, 3600)
        plate = f"浙F{v:05d}"
        frames.append(
            pd.DataFrame(
                {
                    "vehicle_id": plate,
                    "vehicle_key": plate,
                    "time": pd.to_datetime(
                        np.round(t * 1e3).astype("int64"), unit="ms", utc=True
                    ).astype("datetime64[ns, UTC]"),
                    "x": x,
                    "y": y,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _intervals_by_vehicle(starts, ends, vehicles) -> dict[str, np.ndarray]:
    out: dict[str, list[tuple[float, float]]] = {}
    for s, e, v in zip(starts, ends, vehicles, strict=True):
        out.setdefault(str(v), []).append((s, e))
    return {k: np.array(sorted(v)) for k, v in out.items()}


def _overlap_s(a: np.ndarray, b: np.ndarray) -> float:
    """Total overlap of two sets of disjoint intervals (rows start, end)."""
    total = 0.0
    j = 0
    for s, e in a:
        while j < len(b) and b[j, 1] <= s:
            j += 1
        k = j
        while k < len(b) and b[k, 0] < e:
            total += max(0.0, min(e, b[k, 1]) - max(s, b[k, 0]))
            k += 1
    return total


def agreement(ours: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> tuple[float, float]:
    """Return (share of our stop time the reference shares, share of reference time we share)."""
    ours_total = sum(float((v[:, 1] - v[:, 0]).sum()) for v in ours.values())
    ref_total = sum(float((v[:, 1] - v[:, 0]).sum()) for v in ref.values())
    both = sum(_overlap_s(v, ref.get(k, np.empty((0, 2)))) for k, v in ours.items())
    return (both / ours_total if ours_total else 1.0, both / ref_total if ref_total else 1.0)


def run_ours(points: pd.DataFrame) -> tuple[float, dict[str, np.ndarray], int]:
    """Time our detector (best of 3); return (seconds, intervals, stop count)."""
    from haulwatch.geo.stops import detect_stops

    detect_stops(points.iloc[:2000], diameter_m=DIAMETER_M, min_duration_s=MIN_DURATION_S)
    best = np.inf
    stops = None
    for _ in range(3):
        t0 = time.perf_counter()
        stops = detect_stops(points, diameter_m=DIAMETER_M, min_duration_s=MIN_DURATION_S)
        best = min(best, time.perf_counter() - t0)
    epoch = pd.Timestamp(0, tz="UTC")
    s = (stops["start"] - epoch).dt.total_seconds().to_numpy()
    e = (stops["end"] - epoch).dt.total_seconds().to_numpy()
    return best, _intervals_by_vehicle(s, e, stops["vehicle_key"]), len(stops)


def run_movingpandas(points: pd.DataFrame) -> tuple[float, dict[str, np.ndarray], int]:
    """Time movingpandas' TrajectoryStopDetector; return (seconds, intervals, stop count)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import geopandas as gpd
        import movingpandas as mpd

        gdf = gpd.GeoDataFrame(
            {
                "vehicle_key": points["vehicle_key"].to_numpy(),
                "t": points["time"].dt.tz_convert(None).to_numpy(),
            },
            geometry=gpd.points_from_xy(points["x"], points["y"]),
            crs="EPSG:32651",
        )
        collection = mpd.TrajectoryCollection(gdf, traj_id_col="vehicle_key", t="t")
        detector = mpd.TrajectoryStopDetector(collection)
        t0 = time.perf_counter()
        ranges = detector.get_stop_time_ranges(
            max_diameter=DIAMETER_M, min_duration=timedelta(seconds=MIN_DURATION_S)
        )
        seconds = time.perf_counter() - t0
    epoch = pd.Timestamp(0)
    s = np.array([(pd.Timestamp(r.t_0) - epoch).total_seconds() for r in ranges])
    e = np.array([(pd.Timestamp(r.t_n) - epoch).total_seconds() for r in ranges])
    vehicles = [r.traj_id for r in ranges]
    return seconds, _intervals_by_vehicle(s, e, vehicles), len(ranges)


def fleet_points(n_points: int, *, seed: int = 7) -> pd.DataFrame:
    """Whole vehicles of the synthetic fleet (read + prepared), about ``n_points`` points.

    Uses the benchmark fleet cached by ``bench_audit.ensure_dataset`` (generated once).
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_audit import ensure_dataset

    from haulwatch.ingest.prepare import prepare
    from haulwatch.ingest.dataset import read_dataset

    folder = ensure_dataset(max(n_points, 1_000_000), seed=seed)
    points = prepare(read_dataset(folder)).points
    keys = points["vehicle_key"].astype("str")
    sizes = keys.value_counts(sort=False).reindex(keys.unique())
    keep = sizes.index[np.cumsum(sizes.to_numpy()) <= n_points]
    out = points[keys.isin(set(keep))].reset_index(drop=True)
    return out[["vehicle_id", "vehicle_key", "time", "x", "y"]].assign(
        vehicle_id=lambda f: f["vehicle_id"].astype("str"),
        vehicle_key=lambda f: f["vehicle_key"].astype("str"),
    )


def bench(n_points: int, *, seed: int = 0, source: str = "fleet") -> dict[str, float]:
    """Run both detectors on about ``n_points`` points; return the figures."""
    points = fleet_points(n_points) if source == "fleet" else make_tracks(n_points, seed=seed)
    n_points = len(points)
    ours_s, ours, n_ours = run_ours(points)
    ref_s, ref, n_ref = run_movingpandas(points)
    a_ours, a_ref = agreement(ours, ref)
    return {
        "points": n_points,
        "source": source,
        "vehicles": int(points["vehicle_key"].nunique()),
        "ours_s": ours_s,
        "movingpandas_s": ref_s,
        "ours_points_per_s": n_points / ours_s,
        "movingpandas_points_per_s": n_points / ref_s,
        "speed_ratio": ref_s / ours_s,
        "stops_ours": n_ours,
        "stops_movingpandas": n_ref,
        "agreement_ours_in_ref": a_ours,
        "agreement_ref_in_ours": a_ref,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--source",
        choices=("fleet", "random"),
        default="fleet",
        help="fleet: whole trucks of the synthetic fleet (default); random: random-walk trucks",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON line per size")
    args = parser.parse_args(argv)
    for n in args.points:
        res = bench(n, seed=args.seed, source=args.source)
        if args.json:
            print(json.dumps(res), flush=True)
        else:
            print(
                f"{res['points']:>9,} points ({res['source']}): ours {res['ours_s']:.3f} s, movingpandas "
                f"{res['movingpandas_s']:.1f} s, ratio {res['speed_ratio']:.0f}x, stops "
                f"{res['stops_ours']}/{res['stops_movingpandas']}, agreement "
                f"{res['agreement_ours_in_ref']:.3f} / {res['agreement_ref_in_ours']:.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
