"""Load test of the live path over HTTP (loopback only, bounded).

A real service (``haulwatch serve`` in its own process on 127.0.0.1, a fresh
SQLite store, the generated dataset as its registry) is fed:

1. warm-up (not timed): the first part of a generated fleet's day
   (``--fleet`` trucks, ``ingest.synthetic``), so trucks are mid-day;
2. measured: ``--rounds`` reporting rounds of ``--interval-s`` (simulated) in
   which ``--trucks`` extra trucks each report one point, plus the generated
   fleet's next points (the rest of its day, spread over the rounds, so
   alerts are raised while under load), sent as POSTs of ``--batch`` points
   by ``--clients`` concurrent gateways.

It prints the ingest throughput (accepted points per wall second), the POST
latency, and the alert latency: from sending the POST whose points raised an
alert to that alert arriving on an ``/api/stream`` client.

    .venv/bin/python benchmarks/bench_live_ingest.py            # 2,000 trucks, 1 simulated minute
    .venv/bin/python benchmarks/bench_live_ingest.py --trucks 500 --rounds 3 --fleet 10
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd


def _points_json(frame: pd.DataFrame) -> list[dict]:
    out = pd.DataFrame(
        {
            "vehicle_id": frame["vehicle_id"].astype(str),
            "time": frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lon": frame["lon"].astype(float),
            "lat": frame["lat"].astype(float),
            "speed_kmh": frame["speed_kmh"].astype(float),
        }
    )
    recs = out.to_dict("records")
    for r in recs:
        if r["speed_kmh"] != r["speed_kmh"]:  # NaN: absent
            del r["speed_kmh"]
    if "load" in frame.columns:
        for r, v in zip(recs, frame["load"].astype(object), strict=True):
            if isinstance(v, str):
                r["load"] = v
    return recs


def _virtual_trucks(
    n: int,
    rounds: int,
    start: pd.Timestamp,
    interval_s: float,
    bounds: tuple[float, float, float, float],
    seed: int,
) -> list[pd.DataFrame]:
    """``n`` trucks driving straight lines at city speeds, one point per round each."""
    rng = np.random.default_rng(seed)
    lon0 = rng.uniform(bounds[0], bounds[2], n)
    lat0 = rng.uniform(bounds[1], bounds[3], n)
    heading = rng.uniform(0, 2 * np.pi, n)
    speed = rng.uniform(5.0, 12.0, n)  # m/s
    ids = np.array([f"浙Z{i:05d}" for i in range(n)], dtype=object)
    out = []
    for k in range(rounds):
        d = speed * interval_s * k
        lon = lon0 + d * np.sin(heading) / (111_320.0 * np.cos(np.radians(lat0)))
        lat = lat0 + d * np.cos(heading) / 110_540.0
        t = start + pd.to_timedelta(interval_s * k + rng.uniform(0, interval_s, n), unit="s")
        out.append(
            pd.DataFrame(
                {"vehicle_id": ids, "time": t, "lon": lon, "lat": lat, "speed_kmh": speed * 3.6}
            )
        )
    return out


class _Server:
    """``haulwatch serve`` in its own process (as deployed: no GIL shared with the clients)."""

    def __init__(self, *, folder: Path, db: Path, tokens: str) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {
            **os.environ,
            "HAULWATCH_TOKENS": tokens,
            "HAULWATCH_LIVE_WAIT_S": "120",
            "HAULWATCH_KEEPALIVE_S": "1",
        }
        self.cmd = [
            sys.executable,
            "-m",
            "haulwatch.api",
            "serve",
            "--port",
            str(self.port),
            "--db",
            f"sqlite:///{db}",
            "--dataset",
            str(folder),
        ]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2).raise_for_status()
                return base
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {self.proc.stderr.read()}") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _listen(
    url: str, token: str, arrivals: dict[str, float], ready: threading.Event, stop: threading.Event
) -> None:
    try:
        with (
            httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client,
            client.stream("GET", url, params={"access_token": token}) as resp,
        ):
            event = None
            for line in resp.iter_lines():
                if stop.is_set():
                    return
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "alert":
                    aid = json.loads(line[5:])["alert_id"]
                    arrivals.setdefault(aid, time.perf_counter())
    except httpx.HTTPError:
        return


def main(argv: list[str] | None = None) -> int:
    """Run the load test; print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trucks", type=int, default=2000, help="extra reporting trucks (default 2000)")
    p.add_argument("--rounds", type=int, default=6, help="reporting rounds (default 6 = 1 min)")
    p.add_argument("--interval-s", type=float, default=10.0, help="report interval (default 10 s)")
    p.add_argument("--fleet", type=int, default=20, help="generated trucks with a real day (20)")
    p.add_argument("--warmup", type=float, default=0.6, help="share of their day pushed first")
    p.add_argument("--batch", type=int, default=500, help="points per POST (default 500)")
    p.add_argument("--clients", type=int, default=4, help="concurrent gateways (default 4)")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if min(args.trucks, args.rounds, args.fleet, args.batch, args.clients) < 1:
        p.error("--trucks, --rounds, --fleet, --batch, --clients must be >= 1")

    from haulwatch.ingest.dataset import read_dataset
    from haulwatch.ingest.synthetic import generate

    work = Path(tempfile.mkdtemp(prefix="haulwatch-bench-live-"))
    folder = work / "ds"
    generate(
        folder,
        trucks=args.fleet,
        days=1,
        seed=args.seed,
        bad_row_fraction=0.0,
        duplicate_fraction=0.0,
        violation_rate=0.3,
    )
    raw = read_dataset(folder)
    tracks = raw.tracks.sort_values("time", kind="stable").reset_index(drop=True)
    split = int(len(tracks) * args.warmup)
    warm, rest = tracks.iloc[:split], tracks.iloc[split:]
    b = raw.sites.total_bounds
    t_start = warm["time"].max()
    virtual = _virtual_trucks(
        args.trucks, args.rounds, t_start, args.interval_s, (b[0], b[1], b[2], b[3]), args.seed
    )
    fleet_rounds = np.array_split(np.arange(len(rest)), args.rounds)

    dev, ana = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    arrivals: dict[str, float] = {}
    sent_at: dict[str, float] = {}
    post_s: list[float] = []
    lock = threading.Lock()
    server = _Server(
        folder=folder, db=work / "bench.db", tokens=f"gw:device:{dev},ops:analyst:{ana}"
    )
    with server as base, httpx.Client(timeout=300) as client:
        headers = {"Authorization": f"Bearer {dev}"}
        t0 = time.perf_counter()
        for chunk in np.array_split(np.arange(len(warm)), max(1, len(warm) // 20_000)):
            client.post(
                f"{base}/api/positions",
                json={"points": _points_json(warm.iloc[chunk])},
                headers=headers,
            ).raise_for_status()
        warm_s = time.perf_counter() - t0
        ready, stop = threading.Event(), threading.Event()
        listener = threading.Thread(
            target=_listen, daemon=True, args=(f"{base}/api/stream", ana, arrivals, ready, stop)
        )
        listener.start()
        ready.wait(10)

        def send(points: list[dict]) -> int:
            t = time.perf_counter()
            r = httpx.post(
                f"{base}/api/positions", json={"points": points}, headers=headers, timeout=300
            )
            r.raise_for_status()
            body = r.json()
            with lock:
                post_s.append(time.perf_counter() - t)
                for aid in body["new_alerts"]:
                    sent_at.setdefault(aid, t)
            return int(body["accepted"])

        accepted = 0
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            for k in range(args.rounds):
                frame = pd.concat([virtual[k], rest.iloc[fleet_rounds[k]]], ignore_index=True)
                frame = frame.sort_values("time", kind="stable")
                pts = _points_json(frame)
                batches = [pts[i : i + args.batch] for i in range(0, len(pts), args.batch)]
                accepted += sum(pool.map(send, batches))
        wall = time.perf_counter() - t0
        time.sleep(1.0)  # let the last events arrive
        stop.set()
        listener.join(5)
    lat = np.array([arrivals[a] - sent_at[a] for a in sent_at if a in arrivals])
    posts = np.array(post_s)
    n_points = sum(len(v) for v in virtual) + len(rest)
    print(
        f"haulwatch live ingest benchmark (loopback, SQLite, {args.clients} clients, "
        f"{args.batch} points/POST)"
    )
    print(f"  warm-up: {len(warm):,} points of {args.fleet} generated trucks in {warm_s:.1f} s")
    print(
        f"  measured: {args.trucks:,} trucks x {args.rounds} rounds + {len(rest):,} fleet points"
        f" = {n_points:,} points ({accepted:,} accepted) in {wall:.1f} s wall"
    )
    print(
        f"  throughput: {accepted / wall:,.0f} points/s "
        f"(real-time need: {args.trucks / args.interval_s:,.0f} points/s)"
    )
    if len(posts):
        print(
            f"  POST latency: p50 {np.percentile(posts, 50):.2f} s, "
            f"p95 {np.percentile(posts, 95):.2f} s, max {posts.max():.2f} s"
        )
    if len(lat):
        print(
            f"  alert latency (POST sent -> SSE event): {len(lat)} new alerts, "
            f"p50 {np.percentile(lat, 50):.2f} s, p95 {np.percentile(lat, 95):.2f} s, "
            f"max {lat.max():.2f} s"
        )
    else:
        print("  alert latency: no new alert was raised during the measured phase")
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
