"""Replay a contract dataset as JT/T 808 terminals (the tester's tool and the load generator).

Each vehicle of the dataset's tracks (as the project's reader keeps them: the
same points the batch audit sees) becomes one terminal on its own TCP
connection: it registers with its plate (GBK), authenticates with the code it
got, then sends its points as 0x0200 reports in time order on a shared
replay clock (``speedup`` dataset seconds per wall second; 0 = as fast as
the answers come), with heartbeats (0x0002) when it is quiet. A chosen share
of the trucks drives through a dead zone: the points inside it are held back
and sent after it as 0x0704 type 1 (blind-area back-fill) batches. Every
answer is checked; :class:`ReplaySummary` counts what happened.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from haulwatch.api.gateway.client import TerminalClient, TerminalReplyError
from haulwatch.errors import UserError
from haulwatch.ingest.jt808 import Jt808Error, encode_location

__all__ = ["ReplayError", "ReplaySummary", "TruckPlan", "plan_replay", "replay_dataset",
           "replay_plans", "terminal_phone"]

# 0x0704 items per batch: 30 items of 30 bytes (+2 length) stay under 1023 bytes.
BATCH_ITEMS = 30


class ReplayError(UserError, ValueError):
    """A replay option or dataset the simulator cannot use."""


def terminal_phone(plate_key: str) -> str:
    """A stable 11-digit phone number for a plate (``1`` + 10 digits of its SHA-1)."""
    digest = int(hashlib.sha1(plate_key.encode("utf-8")).hexdigest(), 16)
    return "1" + f"{digest % 10**10:010d}"


@dataclass
class TruckPlan:
    """What one simulated terminal sends.

    Attributes
    ----------
    plate : str
        Plate registered (the dataset's ``vehicle_id`` as first written).
    phone : str
        Terminal phone digits.
    version : int
        2013 or 2019 header.
    times : numpy.ndarray of int64
        Point times, epoch seconds (sorted).
    bodies : list of bytes
        The 0x0200 body of each point.
    dead : numpy.ndarray of bool
        Points inside the dead zone (held back, then sent as 0x0704 type 1).
    """

    plate: str
    phone: str
    version: int
    times: np.ndarray
    bodies: list[bytes]
    dead: np.ndarray
    skipped: int = 0


@dataclass
class ReplaySummary:
    """What the replay sent and what the platform answered."""

    terminals: int = 0
    registered: int = 0
    authenticated: int = 0
    reports: int = 0
    batches: int = 0
    backfilled: int = 0
    heartbeats: int = 0
    skipped: int = 0
    results: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def acked(self) -> int:
        """Points acknowledged with result 0 (reports + back-filled items)."""
        return self.results.get("0x0200:0", 0) + self.backfilled

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers (for JSON / the benchmark)."""
        lat = np.asarray(self.latencies_ms, dtype=float)
        pct = ({f"p{q}": round(float(np.percentile(lat, q)), 2) for q in (50, 95, 99)}
               if len(lat) else {})
        return {"terminals": self.terminals, "registered": self.registered,
                "authenticated": self.authenticated, "reports": self.reports,
                "batches": self.batches, "backfilled_points": self.backfilled,
                "heartbeats": self.heartbeats, "skipped_points": self.skipped,
                "results": dict(self.results), "errors": dict(self.errors),
                "elapsed_s": round(self.elapsed_s, 2),
                "points_per_s": round((self.reports + self.backfilled)
                                      / self.elapsed_s, 1) if self.elapsed_s else None,
                "ack_latency_ms": pct}

    def text(self) -> str:
        """Human summary (printed by ``haulwatch replay``)."""
        d = self.as_dict()
        bad = {k: v for k, v in self.results.items() if not k.endswith(":0")}
        lines = [
            f"terminals {d['terminals']}: registered {d['registered']}, "
            f"authenticated {d['authenticated']}",
            f"reports 0x0200 {d['reports']}, back-fill 0x0704 {d['batches']} batches "
            f"({d['backfilled_points']} points), heartbeats {d['heartbeats']}, "
            f"points skipped (not encodable) {d['skipped_points']}",
            f"answers not 0: {bad or 'none'}; errors: {dict(self.errors) or 'none'}",
            f"elapsed {d['elapsed_s']} s, {d['points_per_s']} points/s, "
            f"answer latency ms {d['ack_latency_ms'] or '-'}",
        ]
        return "\n".join(lines)


def _clean(values: pd.Series, fill: float) -> np.ndarray:
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(arr), arr, fill)


def plan_replay(folder: str | Path, *, version: str = "mixed", backfill_pct: float = 0.0,
                coords: str = "wgs84", seed: int = 0, lift_info_id: int = 0xE1,
                dead_fraction: float = 0.15, tracks: pd.DataFrame | None = None,
                ) -> list[TruckPlan]:
    """Turn a dataset's tracks into per-terminal message plans.

    Parameters
    ----------
    folder : path
        Dataset folder (read with the project's reader).
    version : {"2013", "2019", "mixed"}
        Header form; ``mixed`` alternates over the plates (half each).
    backfill_pct : float
        Percentage of trucks (0–100) that drive through a dead zone.
    coords : {"wgs84", "gcj02"}
        What the terminals send (the dataset's coordinates are converted).
    seed : int
        Chooses the back-filling trucks and their dead zones.
    lift_info_id : int
        Additional-information id that carries ``lift``.
    dead_fraction : float
        Share of a back-filling truck's points inside its dead zone.
    tracks : DataFrame, optional
        Already-read tracks (``vehicle_id, vehicle_key, time, lon, lat, ...``)
        in the dataset's ``coord_system``; default: read ``folder``.

    Returns
    -------
    list of TruckPlan
    """
    from haulwatch.geo.chinacoords import from_wgs84, to_wgs84

    if version not in ("2013", "2019", "mixed"):
        raise ReplayError(f"version: {version!r} must be 2013, 2019 or mixed")
    if not 0 <= backfill_pct <= 100:
        raise ReplayError(f"backfill_pct: {backfill_pct} must be in 0..100")
    if coords not in ("wgs84", "gcj02"):
        raise ReplayError(f"coords: {coords!r} must be wgs84 or gcj02")
    if tracks is None:
        from haulwatch.ingest.dataset import read_dataset

        ds = read_dataset(Path(folder))
        tracks, source = ds.tracks, ds.coord_system
        phones = _registry_phones(Path(folder))
    else:
        source, phones = "wgs84", {}
    lon = tracks["lon"].to_numpy(dtype=float)
    lat = tracks["lat"].to_numpy(dtype=float)
    if source != coords:
        lon, lat = to_wgs84(lon, lat, source) if source != "wgs84" else (lon, lat)
        if coords != "wgs84":
            lon, lat = from_wgs84(lon, lat, coords)
    times = pd.to_datetime(tracks["time"], utc=True)
    t_s = (times.astype("datetime64[s, UTC]").astype("int64")).to_numpy()
    speed = _clean(tracks.get("speed_kmh", pd.Series(np.nan, index=tracks.index)), 0.0)
    heading = _clean(tracks.get("heading_deg", pd.Series(np.nan, index=tracks.index)), 0.0)
    loads = (tracks["load"].astype(object).where(tracks["load"].notna(), None).to_numpy()
             if "load" in tracks.columns else np.full(len(tracks), None, dtype=object))
    lifts = (_clean(tracks["lift"], np.nan) if "lift" in tracks.columns
             else np.full(len(tracks), np.nan))
    keys = tracks["vehicle_key"].astype(str).to_numpy()
    ids = tracks["vehicle_id"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    order = sorted(set(keys))
    n_back = round(len(order) * backfill_pct / 100.0)
    back = set(rng.choice(order, size=n_back, replace=False).tolist()) if n_back else set()
    plans: list[TruckPlan] = []
    for i, key in enumerate(order):
        idx = np.flatnonzero(keys == key)
        idx = idx[np.argsort(t_s[idx], kind="stable")]
        bodies, kept = [], []
        for j in idx:
            extras = {} if math.isnan(lifts[j]) else {lift_info_id: bytes([1 if lifts[j] else 0])}
            load = loads[j] if loads[j] in ("empty", "half", "full") else None
            try:
                bodies.append(encode_location(
                    time=pd.Timestamp(int(t_s[j]), unit="s", tz="UTC").to_pydatetime(),
                    lat=float(lat[j]), lon=float(lon[j]), speed_kmh=float(speed[j]),
                    heading_deg=float(heading[j]), load=load, extras=extras))
                kept.append(j)
            except (Jt808Error, ValueError, OverflowError):
                continue
        if not kept:
            continue
        kept_arr = np.asarray(kept)
        dead = np.zeros(len(kept_arr), dtype=bool)
        if key in back and len(kept_arr) >= 10:
            size = max(2, int(len(kept_arr) * dead_fraction))
            start = int(rng.integers(1, len(kept_arr) - size))
            dead[start:start + size] = True
        v = {"2013": 2013, "2019": 2019}.get(version, 2013 if i % 2 == 0 else 2019)
        plans.append(TruckPlan(plate=str(ids[kept_arr[0]]), phone=phones.get(key) or
                               terminal_phone(key), version=v, times=t_s[kept_arr],
                               bodies=bodies, dead=dead, skipped=len(idx) - len(kept)))
    return plans


def _registry_phones(folder: Path) -> dict[str, str]:
    """``vehicle_key → terminal_phone`` from vehicles.csv when it has that column."""
    path = folder / "vehicles.csv"
    if not path.exists():
        return {}
    try:
        v = pd.read_csv(path, dtype=str, usecols=lambda c: c in ("vehicle_id", "terminal_phone"))
    except (ValueError, OSError, UnicodeDecodeError):
        return {}
    if "terminal_phone" not in v.columns:
        return {}
    from haulwatch.ingest.plates import normalize_plate

    out = {}
    for vid, phone in zip(v["vehicle_id"], v["terminal_phone"], strict=True):
        digits = "".join(ch for ch in str(phone) if ch.isdigit())
        if isinstance(vid, str) and digits and len(digits) <= 12:
            out[str(normalize_plate(vid))] = digits
    return out


async def _truck(plan: TruckPlan, host: str, port: int, clock: _Clock, s: ReplaySummary, *,
                 heartbeat_s: float, timeout_s: float, sem: asyncio.Semaphore | None,
                 pipeline: int = 1) -> None:
    t = TerminalClient(plan.phone, version=plan.version, timeout_s=timeout_s)
    try:
        if sem is not None:
            async with sem:
                await t.connect(host, port)
        else:
            await t.connect(host, port)
        s.terminals += 1
        reg = await t.register(plan.plate)
        s.results[f"0x0100:{reg.result}"] += 1
        if reg.result != 0:
            return
        s.registered += 1
        auth = await t.authenticate()
        s.results[f"0x0102:{auth.result}"] += 1
        if auth.result != 0:
            return
        s.authenticated += 1
        held: list[bytes] = []
        last_sent = time.monotonic()
        window: deque[tuple[float, list[asyncio.Future]]] = deque()

        async def settle(keep: int) -> None:
            while len(window) > keep:
                t_sent, futs = window.popleft()
                r = await t.wait(futs, 0x0200)
                s.latencies_ms.append((time.monotonic() - t_sent) * 1000.0)
                s.results[f"0x0200:{r.result}"] += 1

        for k in range(len(plan.bodies)):
            # wait for the point's time on the replay clock, heart-beating when quiet
            while True:
                wait = clock.wall_until(int(plan.times[k]))
                if wait <= 0:
                    break
                await settle(0)
                quiet = heartbeat_s - (time.monotonic() - last_sent)
                if quiet <= 0:
                    hb = await t.heartbeat()
                    s.heartbeats += 1
                    s.results[f"0x0002:{hb.result}"] += 1
                    last_sent = time.monotonic()
                    continue
                await asyncio.sleep(min(wait, quiet))
            if plan.dead[k]:
                held.append(plan.bodies[k])
                continue
            window.append((time.monotonic(), await t.send(0x0200, plan.bodies[k])))
            s.reports += 1
            last_sent = time.monotonic()
            await settle(pipeline - 1)
            if held:  # out of the dead zone: back-fill what was held
                await settle(0)
                await _backfill(t, held, s)
                held = []
        await settle(0)
        if held:
            await _backfill(t, held, s)
    except TerminalReplyError as exc:
        s.errors[str(exc).split(" within")[0][:60]] += 1
    except (ConnectionError, OSError) as exc:
        s.errors[f"connection: {type(exc).__name__}"] += 1
    finally:
        await t.close()


async def _backfill(t: TerminalClient, held: list[bytes], s: ReplaySummary) -> None:
    for i in range(0, len(held), BATCH_ITEMS):
        chunk = held[i:i + BATCH_ITEMS]
        r = await t.batch(chunk, kind=1)
        s.batches += 1
        s.results[f"0x0704:{r.result}"] += 1
        if r.result == 0:
            s.backfilled += len(chunk)


class _Clock:
    """Replay clock: dataset second ``t`` is due at wall time ``start + (t - t0) / speedup``."""

    def __init__(self, t0: int, speedup: float) -> None:
        self.t0 = t0
        self.speedup = speedup
        self.start = time.monotonic()

    def wall_until(self, t: int) -> float:
        if self.speedup <= 0:
            return 0.0
        return self.start + (t - self.t0) / self.speedup - time.monotonic()


async def replay_plans(plans: list[TruckPlan], host: str, port: int, *, speedup: float = 60.0,
                       heartbeat_s: float = 60.0, timeout_s: float = 60.0,
                       connect_concurrency: int = 200, pipeline: int = 1) -> ReplaySummary:
    """Run the terminals of ``plans`` against ``host:port``; return the summary.

    ``pipeline`` is how many reports a terminal sends before it waits for the
    oldest answer (1: one at a time, as most terminals do).
    """
    s = ReplaySummary()
    if not plans:
        return s
    t0 = min(int(p.times[0]) for p in plans)
    clock = _Clock(t0, speedup)
    sem = asyncio.Semaphore(connect_concurrency)
    start = time.monotonic()
    await asyncio.gather(*(_truck(p, host, port, clock, s, heartbeat_s=heartbeat_s,
                                  timeout_s=timeout_s, sem=sem, pipeline=max(1, pipeline))
                           for p in plans))
    s.skipped = sum(p.skipped for p in plans)
    s.elapsed_s = time.monotonic() - start
    return s


def replay_dataset(folder: str | Path, host: str, port: int, *, speedup: float = 60.0,
                   version: str = "mixed", backfill_pct: float = 0.0, coords: str = "wgs84",
                   seed: int = 0, heartbeat_s: float = 60.0, timeout_s: float = 60.0,
                   lift_info_id: int = 0xE1, pipeline: int = 1) -> ReplaySummary:
    """Replay a dataset folder as JT/T 808 terminals (blocking; runs its own event loop).

    Parameters
    ----------
    folder : path
        Dataset folder (docs/formats.md).
    host, port : str, int
        The gateway.
    speedup : float, default 60
        Dataset seconds per wall second; 0 sends as fast as answers come.
    version, backfill_pct, coords, seed, lift_info_id
        See :func:`plan_replay`.
    heartbeat_s : float, default 60
        Wall seconds of silence after which a terminal sends a heartbeat.
    timeout_s : float, default 60
        Longest wait for one answer.
    pipeline : int, default 1
        Reports a terminal sends before waiting for the oldest answer.

    Returns
    -------
    ReplaySummary
    """
    if speedup < 0 or not math.isfinite(speedup):
        raise ReplayError(f"speedup: {speedup} must be >= 0 (0 = as fast as possible)")
    if not heartbeat_s > 0:
        raise ReplayError(f"heartbeat_s: {heartbeat_s} must be > 0")
    plans = plan_replay(folder, version=version, backfill_pct=backfill_pct, coords=coords,
                        seed=seed, lift_info_id=lift_info_id)
    summary = asyncio.run(replay_plans(plans, host, port, speedup=speedup,
                                       heartbeat_s=heartbeat_s, timeout_s=timeout_s,
                                       pipeline=pipeline))
    return summary
