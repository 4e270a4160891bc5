"""Load test of the JT/T 808 gateway: thousands of terminals, single 0x0200 reports.

A real service (``haulwatch serve --jt808-port`` in its own process on
127.0.0.1, a fresh SQLite store or a throw-away PostgreSQL cluster, a
generated dataset as its registry) is fed by this process:

1. warm-up (not timed): the first part of a generated fleet's day over
   ``POST /api/positions``, so the fleet's trucks are mid-day;
2. ``--trucks`` extra terminals connect, register and authenticate (the
   server's resident memory is read before and after: memory per 1,000
   connected trucks);
3. measured, ``--duration-s`` wall seconds: every extra terminal sends single
   0x0200 reports (waits for each 0x8001) paced so that all of them together
   offer ``--rate`` points/s; the fleet's terminals send the rest of their day
   spread over the same time, so alerts are raised under load.

Printed: points acknowledged per second (sustained), answer latency, alert
latency (report sent → alert on an ``/api/stream`` client: the vehicle's last
report sent before the alert arrived; exact while it is below a fleet
terminal's report spacing, printed), server memory, gateway counters.

    .venv/bin/python benchmarks/bench_jt808.py                      # 2,000 terminals, SQLite
    .venv/bin/python benchmarks/bench_jt808.py --db postgresql      # throw-away PostgreSQL
    .venv/bin/python benchmarks/bench_jt808.py --trucks 200 --duration-s 10 --rate 500
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_nofile(need: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (the front end) so far."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc/*/stat)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the front end), MB."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024.0
    return total


class _Postgres:
    """A throw-away PostgreSQL cluster (as tests/api/test_store.py makes one)."""

    def __enter__(self) -> str:
        bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
        initdb = shutil.which("initdb") or next(
            (str(b / "initdb") for b in bindirs if (b / "initdb").exists()), None)
        if initdb is None:
            raise SystemExit("PostgreSQL is not installed (initdb not found)")
        self.bindir = str(Path(initdb).parent)
        self.prefix: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="haulwatch-bench-pg-"))
        if os.geteuid() == 0:
            self.prefix = ["runuser", "-u", "postgres", "--"]
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        self.data = self.root / "data"
        port = _free_port()
        subprocess.run([*self.prefix, f"{self.bindir}/initdb", "-D", str(self.data), "-A",
                        "trust", "-U", "hw"], check=True, capture_output=True)
        subprocess.run([*self.prefix, f"{self.bindir}/pg_ctl", "-D", str(self.data), "-l",
                        str(self.root / "log"), "-w", "-o",
                        f"-k {self.root} -p {port} -h 127.0.0.1 -c max_connections=50",
                        "start"], check=True, capture_output=True)
        import psycopg

        with psycopg.connect(f"postgresql://hw@127.0.0.1:{port}/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        return f"postgresql://hw@127.0.0.1:{port}/bench"

    def __exit__(self, *exc: object) -> None:
        subprocess.run([*self.prefix, f"{self.bindir}/pg_ctl", "-D", str(self.data), "-m",
                        "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


class _Server:
    """``haulwatch serve`` with the gateway, in its own process."""

    def __init__(self, *, folder: Path | None, db_url: str, tokens: str,
                 max_connections: int, process: bool = False) -> None:
        self.port = _free_port()
        self.jt808_port = _free_port()
        self.env = {**os.environ, "HAULWATCH_TOKENS": tokens, "HAULWATCH_KEEPALIVE_S": "1",
                    "HAULWATCH_JT808_MAX_CONNECTIONS": str(max_connections),
                    "HAULWATCH_JT808_IDLE_TIMEOUT_S": "600",
                    "HAULWATCH_JT808_PROCESS": "1" if process else "0"}
        self.cmd = [sys.executable, "-m", "haulwatch", "serve", "--port", str(self.port),
                    "--jt808-port", str(self.jt808_port), "--db", db_url,
                    *(["--dataset", str(folder)] if folder is not None else [])]
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                httpx.get(f"{base}/health", timeout=2).raise_for_status()
                with socket.create_connection(("127.0.0.1", self.jt808_port), timeout=2):
                    pass
                # keep reading its log so a full pipe never blocks the service
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return base
            except (httpx.HTTPError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"serve did not start: {self.proc.stderr.read()}") from None
                time.sleep(0.3)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _listen(url: str, token: str, arrivals: list[tuple[float, str]], ready: threading.Event,
            stop: threading.Event) -> None:
    try:
        with (httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as client,
              client.stream("GET", url, params={"access_token": token}) as resp):
            event = None
            seen: set[str] = set()
            for line in resp.iter_lines():
                if stop.is_set():
                    return
                if line.startswith(": connected"):
                    ready.set()
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "alert":
                    rec = json.loads(line[5:])
                    if rec["alert_id"] not in seen:
                        seen.add(rec["alert_id"])
                        arrivals.append((time.perf_counter(), str(rec.get("vehicle_id") or "")))
    except httpx.HTTPError:
        return


def _points_json(frame: pd.DataFrame) -> list[dict]:
    recs = []
    for v, t, x, y, s in zip(frame["vehicle_id"].astype(str),
                             frame["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             frame["lon"].astype(float), frame["lat"].astype(float),
                             frame["speed_kmh"].astype(float), strict=True):
        r = {"vehicle_id": v, "time": t, "lon": x, "lat": y}
        if s == s:
            r["speed_kmh"] = s
        recs.append(r)
    if "load" in frame.columns:
        for r, ld in zip(recs, frame["load"].astype(object), strict=True):
            if isinstance(ld, str):
                r["load"] = ld
    return recs


async def _run_load(args: argparse.Namespace, jt_port: int, pid: int, fleet_plans: list,
                    t_start: pd.Timestamp, bounds: tuple[float, float, float, float],
                    ) -> dict:
    from haulwatch.api.gateway.client import TerminalClient
    from haulwatch.ingest.jt808 import encode_location

    n = args.trucks
    rng = np.random.default_rng(args.seed)
    lon0 = rng.uniform(bounds[0], bounds[2], n)
    lat0 = rng.uniform(bounds[1], bounds[3], n)
    head = rng.uniform(0, 2 * np.pi, n)
    speed = rng.uniform(5.0, 12.0, n)
    m_per_deg = 111_320.0

    sem = asyncio.Semaphore(200)

    async def connect(phone: str, plate: str, version: int) -> TerminalClient:
        t = TerminalClient(phone, version=version, timeout_s=120)
        async with sem:
            await t.connect("127.0.0.1", jt_port)
            if (await t.register(plate)).result != 0 or (await t.authenticate()).result != 0:
                raise RuntimeError(f"{plate}: register/authenticate refused")
        return t

    rss0 = _rss_mb(pid)
    t0 = time.perf_counter()
    virt = await asyncio.gather(*(connect(f"1770{i:07d}", f"浙Z{i:05d}", 2013 + 6 * (i % 2))
                                  for i in range(n)))
    fleet = await asyncio.gather(*(connect(p.phone, p.plate, p.version) for p in fleet_plans))
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(1.0)
    rss1 = _rss_mb(pid)

    ack_ms: list[float] = []
    results: dict[int, int] = {}
    acked = 0
    sent_by_plate: dict[str, list[float]] = {}
    period = n / args.rate if args.rate > 0 else 0.0
    start = time.perf_counter() + 0.5
    end = start + args.duration_s

    async def virtual(i: int, t: TerminalClient) -> None:
        nonlocal acked
        k = 0
        while True:
            due = start + (i / n + k) * period
            now = time.perf_counter()
            if due >= end or now >= end:
                return
            if due > now:
                await asyncio.sleep(due - now)
            dt = 10.0 * k  # simulated seconds: a report every 10 s
            d = speed[i] * dt
            body = encode_location(
                time=(t_start + pd.Timedelta(seconds=dt)).to_pydatetime(),
                lat=float(lat0[i] + d * np.sin(head[i]) / m_per_deg),
                lon=float(lon0[i] + d * np.cos(head[i]) / (m_per_deg * np.cos(np.radians(lat0[i])))),
                speed_kmh=float(speed[i] * 3.6), heading_deg=0.0, load=None)
            s = time.perf_counter()
            r = await t.report(body)
            ack_ms.append((time.perf_counter() - s) * 1000)
            results[r.result] = results.get(r.result, 0) + 1
            acked += r.result == 0
            k += 1

    async def fleet_truck(p, t: TerminalClient) -> None:
        nonlocal acked
        gap = args.fleet_gap_s
        sends = sent_by_plate.setdefault(p.plate, [])
        for k, body in enumerate(p.bodies):
            due = start + k * gap
            now = time.perf_counter()
            if due >= end or now >= end:
                return
            if due > now:
                await asyncio.sleep(due - now)
            s = time.perf_counter()
            sends.append(s)
            r = await t.report(body)
            ack_ms.append((time.perf_counter() - s) * 1000)
            results[r.result] = results.get(r.result, 0) + 1
            acked += r.result == 0

    cpu0, own0 = _cpu_s(pid), time.process_time()
    tasks = [virtual(i, t) for i, t in enumerate(virt)]
    tasks += [fleet_truck(p, t) for p, t in zip(fleet_plans, fleet, strict=True)]
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    cpu = _cpu_s(pid) - cpu0
    own = time.process_time() - own0
    rss2 = _rss_mb(pid)
    for t in [*virt, *fleet]:
        await t.close()
    fleet_gap = args.fleet_gap_s
    return {"cpu_s": cpu, "client_cpu_s": own, "connect_s": connect_s, "rss0": rss0, "rss1": rss1, "rss2": rss2, "wall": wall,
            "acked": acked, "results": results, "ack_ms": ack_ms, "sent_by_plate": sent_by_plate,
            "start": start, "fleet_gap_s": fleet_gap}


def main(argv: list[str] | None = None) -> int:
    """Run the load test; print the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trucks", type=int, default=2000, help="extra terminals (default 2000)")
    p.add_argument("--rate", type=float, default=5000.0,
                   help="points/s offered by the extra terminals together (default 5000)")
    p.add_argument("--duration-s", type=float, default=30.0, help="measured wall time (30)")
    p.add_argument("--fleet", type=int, default=20, help="generated trucks with a real day (20)")
    p.add_argument("--warmup", type=float, default=0.45,
                   help="share of the fleet's day pushed first (default 0.45: mid-day)")
    p.add_argument("--fleet-gap-s", type=float, default=0.5,
                   help="wall seconds between a fleet terminal's reports (default 0.5)")
    p.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--process", action="store_true",
                   help="HAULWATCH_JT808_PROCESS=1: the TCP front end in its own process")
    p.add_argument("--no-live", action="store_true",
                   help="serve without the dataset: points are stored, no live audit (isolates "
                        "the gateway's own cost)")
    args = p.parse_args(argv)
    if min(args.trucks, args.fleet) < 1 or not args.duration_s > 0 or args.rate < 0:
        p.error("--trucks, --fleet >= 1, --duration-s > 0, --rate >= 0")
    nofile = _raise_nofile(2 * (args.trucks + args.fleet) + 256)
    if nofile < args.trucks + args.fleet + 64:
        p.error(f"ulimit -n is {nofile}; raise it (ulimit -n {2 * args.trucks + 256})")

    from haulwatch.api.gateway.replay import plan_replay
    from haulwatch.ingest.dataset import read_dataset
    from haulwatch.ingest.synthetic import generate

    work = Path(tempfile.mkdtemp(prefix="haulwatch-bench-jt808-"))
    folder = work / "ds"
    generate(folder, trucks=args.fleet, days=1, seed=args.seed, bad_row_fraction=0.0,
             duplicate_fraction=0.0, violation_rate=0.3)
    raw = read_dataset(folder)
    tracks = raw.tracks.sort_values("time", kind="stable").reset_index(drop=True)
    split = int(len(tracks) * args.warmup)
    warm, rest = tracks.iloc[:split], tracks.iloc[split:]
    plans = plan_replay(folder, version="mixed", tracks=rest.reset_index(drop=True))
    b = raw.sites.total_bounds
    t_start = warm["time"].max()

    pg = _Postgres() if args.db == "postgresql" else None
    db_url = pg.__enter__() if pg is not None else f"sqlite:///{work / 'bench.db'}"
    dev, ana = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    arrivals: list[tuple[float, str]] = []
    server = _Server(folder=None if args.no_live else folder, db_url=db_url, tokens=f"gw:device:{dev},ops:analyst:{ana}",
                     max_connections=args.trucks + args.fleet + 100, process=args.process)
    try:
        with server as base, httpx.Client(timeout=600) as client:
            t0 = time.perf_counter()
            for chunk in np.array_split(np.arange(len(warm)), max(1, len(warm) // 5_000)):
                client.post(f"{base}/api/positions", json={"points": _points_json(warm.iloc[chunk])},
                            headers={"Authorization": f"Bearer {dev}"}).raise_for_status()
            warm_s = time.perf_counter() - t0
            ready, stop = threading.Event(), threading.Event()
            listener = threading.Thread(target=_listen, daemon=True,
                                        args=(f"{base}/api/stream", ana, arrivals, ready, stop))
            listener.start()
            ready.wait(10)
            assert server.proc is not None
            out = asyncio.run(_run_load(args, server.jt808_port, server.proc.pid, plans, t_start,
                                        (b[0], b[1], b[2], b[3])))
            time.sleep(2.0)
            stop.set()
            gw = client.get(f"{base}/api/gateway",
                            headers={"Authorization": f"Bearer {ana}"}).json()
    finally:
        if pg is not None:
            pg.__exit__(None, None, None)
    # alert latency: the vehicle's last report sent before the alert arrived
    lat = []
    for arrived, plate in arrivals:
        sends = out["sent_by_plate"].get(plate)
        if not sends or arrived < out["start"]:
            continue
        i = bisect.bisect_right(sends, arrived) - 1
        if i >= 0:
            lat.append(arrived - sends[i])
    lat_a = np.array(lat)
    ack = np.array(out["ack_ms"])
    n_conn = args.trucks + args.fleet
    print(f"haulwatch JT/T 808 gateway benchmark (loopback, {args.db}, {os.cpu_count()} cores"
          f"{', front end in its own process' if args.process else ''})")
    print(f"  warm-up: {len(warm):,} fleet points over HTTP in {warm_s:.1f} s")
    print(f"  connected {n_conn:,} terminals (register + authenticate) in {out['connect_s']:.1f} s")
    print(f"  server RSS: {out['rss0']:.0f} MB before, {out['rss1']:.0f} MB with {n_conn:,} "
          f"connected ({(out['rss1'] - out['rss0']) / n_conn * 1000:.1f} MB per 1,000 trucks), "
          f"{out['rss2']:.0f} MB after the load")
    print(f"  offered: {args.rate:,.0f} points/s from {args.trucks:,} terminals (single 0x0200 "
          f"each, waiting for every answer) + {len(plans)} fleet terminals (their day from the "
          f"warm-up on, a report every {args.fleet_gap_s} s) for {args.duration_s:.0f} s")
    print(f"  sustained: {out['acked']:,} points acknowledged in {out['wall']:.1f} s = "
          f"{out['acked'] / out['wall']:,.0f} points/s; answers {out['results']}")
    print(f"  CPU: server {out['cpu_s']:.1f} s = {out['cpu_s'] / max(out['acked'], 1) * 1e6:,.0f} us "
          f"per acknowledged point (one core: {max(out['acked'], 1) / max(out['cpu_s'], 1e-9):,.0f} "
          f"points/s at most); load generator {out['client_cpu_s']:.1f} s; machine load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if len(ack):
        print(f"  answer latency (0x0200 sent -> 0x8001 result 0, stored): p50 "
              f"{np.percentile(ack, 50):.0f} ms, p95 {np.percentile(ack, 95):.0f} ms, "
              f"p99 {np.percentile(ack, 99):.0f} ms")
    if len(lat_a):
        print(f"  alert latency (report sent -> SSE alert): {len(lat_a)} fleet alerts, p50 "
              f"{np.percentile(lat_a, 50):.2f} s, p95 {np.percentile(lat_a, 95):.2f} s, "
              f"p99 {np.percentile(lat_a, 99):.2f} s, max {lat_a.max():.2f} s "
              f"(exact below a fleet terminal's report spacing, {out['fleet_gap_s']:.2f} s)")
    else:
        print("  alert latency: no alert arrived during the measured phase")
    print(f"  gateway: refused {gw.get('refused')}, closed {gw.get('closed')}, "
          f"points {gw.get('points')}, store calls {gw.get('sink')}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
