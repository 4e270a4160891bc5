"""Truck days of the synthetic fleet: knots of a piecewise-linear motion, then samples.

A truck day is built as a list of *knots* ``(t, x, y)`` (seconds, metres) with
per-segment attributes (stationary or moving, load state, body lift). The
terminal's reports are then sampled from it in one vectorized pass
(:func:`sample_track`): interpolation between knots, correlated GPS noise,
dropouts and deliberate dark spells removed. Events that become ground-truth
rows are recorded while building (:class:`Event`) and snapped to the sampled
points afterwards (:func:`snap_events`).

Used by :mod:`haulwatch.ingest.synthetic`; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from haulwatch.ingest.synthetic.city import City

__all__ = ["LOAD_CODES", "Event", "TrackBuilder", "sample_track", "snap_events"]

#: Load state codes of the segments, and how the terminal writes them.
LOAD_CODES: tuple[str, ...] = ("empty", "half", "full")
EMPTY, HALF, FULL = 0, 1, 2
_MAX_SPEED_MPS = 50 / 3.6  # city traffic: 50 km/h at most
#: Sleep reporting interval of a parked terminal (engine off), seconds.
PARKED_INTERVAL_S = 120.0
#: Share of reports that are multipath / cold-start jumps (single wild points).
SPIKE_RATE = 2e-4


@dataclass
class Event:
    """A ground-truth event before it is snapped to the sampled points.

    ``snap`` says how the window is read from the samples: ``stop`` (first
    sample at/after ``t0`` to last sample at/before ``t1``), ``gap`` (last
    sample before ``t0`` to first sample after ``t1``), ``fixed`` (as is),
    ``deviation`` (computed from the points, see ``extra``).
    """

    kind: str
    t0: float
    t1: float
    x: float
    y: float
    site_id: str = ""
    manifest_id: str = ""
    note: str = ""
    snap: str = "stop"
    locate_at_gap_start: bool = False
    extra: dict = field(default_factory=dict)


class TrackBuilder:
    """Accumulates the knots of one truck day.

    Parameters
    ----------
    t0 : float
        Start, epoch seconds (UTC).
    xy : array_like
        Start position, metres.
    rng : numpy.random.Generator
        The truck's random stream.
    city : City
        Roads and sites.
    """

    def __init__(self, t0: float, xy, rng: np.random.Generator, city: City) -> None:
        self.t = [float(t0)]
        self.x = [float(xy[0])]
        self.y = [float(xy[1])]
        self.still: list[bool] = []
        self.load: list[int] = []
        self.lift: list[int] = []
        self.parked: list[bool] = []
        self.cur_load = EMPTY
        self.events: list[Event] = []
        self.gaps: list[tuple[float, float]] = []
        #: a dark spell begun around a dump that ends later, back at the origin:
        #: (start, dump place, manifest id)
        self.pending_dark: tuple[float, np.ndarray, str] | None = None
        self.rng = rng
        self.city = city

    @property
    def now(self) -> float:
        """Time of the last knot, epoch seconds."""
        return self.t[-1]

    @property
    def pos(self) -> np.ndarray:
        """Position of the last knot, metres."""
        return np.array([self.x[-1], self.y[-1]])

    def _knot(self, t: float, xy, *, still: bool, load: int | None = None, lift: int = 0,
              parked: bool = False) -> None:
        self.t.append(max(float(t), self.t[-1] + 1e-3))
        self.x.append(float(xy[0]))
        self.y.append(float(xy[1]))
        self.still.append(still)
        self.load.append(self.cur_load if load is None else load)
        self.lift.append(lift)
        self.parked.append(parked)

    def wait(self, duration_s: float, *, load: int | None = None, lift: int = 0,
             parked: bool = False) -> None:
        """Stay in place for ``duration_s`` seconds (``parked``: engine off, the
        terminal reports at its slower sleep interval)."""
        if duration_s > 0:
            self._knot(self.now + duration_s, self.pos, still=True, load=load, lift=lift,
                       parked=parked)

    def move_to(self, xy, speed_mps: float, *, load: int | None = None, lift: int = 0) -> None:
        """Drive straight to ``xy`` at ``speed_mps`` (``lift``: body raised meanwhile)."""
        d = float(np.hypot(*(np.asarray(xy) - self.pos)))
        if d > 0.5:
            self._knot(self.now + d / speed_mps, xy, still=False, load=load, lift=lift)

    def drive(
        self,
        nodes: list[int],
        *,
        light_p: float = 0.3,
        congestion: bool = False,
        hooks: dict[int, Callable[[], None]] | None = None,
        frontage: dict[int, float] | None = None,
    ) -> None:
        """Drive along a node path of the road graph.

        Traffic-light stops (30–120 s) happen at grid crossings with
        probability ``light_p``; ``congestion`` turns one long edge into
        stop-and-go crawling. ``hooks[i]`` runs on arrival at ``nodes[i]``.
        ``frontage[i]``: the edge into ``nodes[i]`` is driven on a parallel
        service road that far (metres, signed: left/right) from it.
        """
        city, rng = self.city, self.rng
        hooks = hooks or {}
        if len(nodes) < 2:
            if 0 in hooks:
                hooks[0]()
            return
        xy = city.nodes[nodes]
        seg_len = np.hypot(*np.diff(xy, axis=0).T)
        jam = -1
        if congestion:
            long_edges = np.flatnonzero(seg_len > 250)
            if len(long_edges):
                jam = int(rng.choice(long_edges))
        factor = 0.9 if self.cur_load else 1.0
        if 0 in hooks:
            hooks[0]()
        for k in range(1, len(nodes)):
            a, b = nodes[k - 1], nodes[k]
            speed = min(city.edge_speed[(a, b)] * factor * rng.uniform(0.75, 1.15), _MAX_SPEED_MPS)
            if k - 1 == jam:
                self._jam(xy[k - 1], xy[k])
            elif frontage and k in frontage:
                self._frontage(xy[k - 1], xy[k], frontage[k], speed)
            else:
                self._knot(self.now + seg_len[k - 1] / speed, xy[k], still=False)
            if k in hooks:
                hooks[k]()
            elif k < len(nodes) - 1 and city.is_junction[b] and rng.random() < light_p:
                t0 = self.now
                self.wait(rng.uniform(30.0, 120.0))
                self.events.append(
                    Event("innocent_traffic_light", t0, self.now, xy[k][0], xy[k][1])
                )

    def _frontage(self, p0: np.ndarray, p1: np.ndarray, offset_m: float, speed: float) -> None:
        """Drive from ``p0`` to ``p1`` on a service road ``offset_m`` beside the edge."""
        v = (p1 - p0) / max(np.hypot(*(p1 - p0)), 1e-6)
        n = np.array([-v[1], v[0]]) * offset_m
        ramp = min(40.0, float(np.hypot(*(p1 - p0))) / 5)
        self.move_to(p0 + v * ramp + n, speed * 0.6)
        t0 = self.now
        self.move_to(p1 - v * ramp + n, speed * 0.8)
        mid = (p0 + p1) / 2 + n
        self.events.append(Event("innocent_service_road", t0, self.now, mid[0], mid[1],
                                 note=f"{abs(offset_m):.0f} m beside the approved route"))
        self.move_to(p1, speed * 0.6)

    def _jam(self, p0: np.ndarray, p1: np.ndarray) -> None:
        rng = self.rng
        t0 = self.now
        n = int(rng.integers(4, 9))
        fr = np.sort(rng.uniform(0.0, 1.0, n - 1))
        pts = p0 + np.outer(np.r_[fr, 1.0], p1 - p0)
        for p in pts:
            self.move_to(p, rng.uniform(0.4, 2.8))  # 1.5-10 km/h
            if rng.random() < 0.5:
                self.wait(rng.uniform(15.0, 60.0))
        mid = (p0 + p1) / 2
        self.events.append(Event("innocent_congestion", t0, self.now, mid[0], mid[1]))

    def roadside_stop(self, node_from: int, node_at: int, duration_s: float, kind: str) -> None:
        """Pull over 12–18 m beside the road at ``node_at`` and wait, as an innocent event."""
        a, b = self.city.nodes[node_from], self.city.nodes[node_at]
        v = (b - a) / max(np.hypot(*(b - a)), 1e-6)
        side = np.array([v[1], -v[0]]) * self.rng.uniform(12.0, 18.0)
        self.move_to(b + side - v * 20.0, 3.0)
        t0 = self.now
        self.wait(duration_s)
        p = self.pos
        self.events.append(Event(kind, t0, self.now, p[0], p[1]))
        self.move_to(b, 3.0)

    def dark(self, t0: float, t1: float) -> None:
        """Record a terminal-off spell (no reports in ``(t0, t1)``)."""
        self.gaps.append((t0, t1))

    def knots(self) -> dict[str, np.ndarray]:
        """The knots and segment attributes as arrays."""
        return {
            "t": np.asarray(self.t),
            "x": np.asarray(self.x),
            "y": np.asarray(self.y),
            "still": np.asarray(self.still, bool),
            "load": np.asarray(self.load, np.int8),
            "lift": np.asarray(self.lift, np.int8),
            "parked": np.asarray(self.parked, bool),
        }


def sample_track(
    knots: dict[str, np.ndarray],
    gaps: list[tuple[float, float]],
    *,
    interval_s: float,
    sigma_m: float,
    rng: np.random.Generator,
    dropouts: int,
    t_offset_s: float = 0.0,
    canyons: list[tuple[float, float, float]] = (),
    jumps: list[tuple[float, float, float, float]] = (),
    frozen: list[tuple[float, float]] = (),
    spikes: bool = True,
) -> dict[str, np.ndarray]:
    """Sample the terminal's reports from a truck day's knots (vectorized).

    Parameters
    ----------
    knots : dict
        From :meth:`TrackBuilder.knots`.
    gaps : list of (float, float)
        Dark spells: no report strictly inside them.
    interval_s : float
        Nominal reporting interval (each interval jitters by ±10 %, whole seconds).
    sigma_m : float
        GPS noise standard deviation while moving, metres (AR(1) correlated,
        ~60 s correlation; half of it while stationary, as terminals filter
        static drift).
    rng : numpy.random.Generator
        Random stream.
    dropouts : int
        Number of short (20–100 s) terminal dropouts to add.
    t_offset_s : float, default 0
        Shift of the reporting clock (a second terminal on the same truck).
    canyons : list of (t0, t1, sigma_m)
        Urban-canyon stretches: extra correlated noise of ``sigma_m`` in ``[t0, t1]``.
    jumps : list of (t0, t1, dx, dy)
        Multipath jumps: every fix in ``[t0, t1]`` is thrown ``(dx, dy)`` metres off.
    frozen : list of (t0, t1)
        Frozen terminal: fixes in ``(t0, t1]`` repeat the last fix at or before ``t0``
        exactly, with speed 0, while the truck drives on.
    spikes : bool, default True
        Add the rare km-scale wild points.

    Returns
    -------
    dict
        ``t`` (int64 epoch seconds), ``x``, ``y`` (metres, noisy), ``speed_kmh``,
        ``heading_deg``, ``load`` (int8 code; rare 1–2 report glitches while
        driving), ``lift`` (int8), ``still`` (bool),
        ``spike`` (bool: a wild multipath point, 400–3000 m off), ``jump`` (bool:
        a multipath fix of ``jumps``), ``stale`` (bool: a frozen repeated fix).
    """
    kt, kx, ky = knots["t"], knots["x"], knots["y"]
    span = kt[-1] - kt[0]
    n_est = int(span / interval_s * 1.15) + 16
    steps = np.maximum(1.0, np.rint(interval_s * rng.uniform(0.9, 1.1, n_est)))
    t = np.ceil(kt[0]) + float(t_offset_s) + np.r_[0.0, np.cumsum(steps)]
    t = t[t <= kt[-1]]
    keep = np.ones(len(t), bool)
    for g0, g1 in gaps:
        keep &= ~((t > g0) & (t < g1))
    for _ in range(dropouts):  # short dropouts, never just before or after a dark spell
        c = rng.uniform(kt[0], kt[-1])
        if any(c - 400.0 < g0 and c < g1 + 300.0 for g0, g1 in gaps):
            continue
        keep &= ~((t > c) & (t < c + rng.uniform(20.0, 100.0)))
    t = t[keep]
    seg = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 2)
    # parked (engine off): one report per sleep interval
    bucket = np.floor(t / max(PARKED_INTERVAL_S, interval_s))
    first_in_bucket = np.r_[True, bucket[1:] != bucket[:-1]]
    keep = ~knots["parked"][seg] | first_in_bucket
    t, seg = t[keep], seg[keep]
    dt = kt[seg + 1] - kt[seg]
    frac = np.clip((t - kt[seg]) / dt, 0.0, 1.0)
    dx = np.diff(kx)
    dy = np.diff(ky)
    x = kx[seg] + frac * dx[seg]
    y = ky[seg] + frac * dy[seg]
    still = knots["still"][seg]
    # correlated GPS noise
    scale = np.where(still, 0.5, 1.0) * sigma_m
    x = x + _correlated_noise(rng, len(t), interval_s) * scale
    y = y + _correlated_noise(rng, len(t), interval_s) * scale
    for c0, c1, c_sigma in canyons:  # urban canyon: noisier stretch
        m = (t >= c0) & (t <= c1)
        if m.any():
            k = int(m.sum())
            c_scale = np.where(still[m], 0.5, 1.0) * c_sigma
            x[m] += _correlated_noise(rng, k, interval_s) * c_scale
            y[m] += _correlated_noise(rng, k, interval_s) * c_scale
    jump = np.zeros(len(t), bool)
    for j0, j1, jdx, jdy in jumps:  # multipath: thrown off for a few seconds
        m = (t >= j0) & (t <= j1)
        x[m] += jdx
        y[m] += jdy
        jump |= m
    # rare single wild points (multipath), never next to a dark spell
    spike = (rng.random(len(t)) < SPIKE_RATE) & bool(spikes)
    spike[[0, -1] if len(t) else []] = False
    for g0, g1 in gaps:
        spike &= (np.abs(t - g0) > 300) & (np.abs(t - g1) > 300)
    n_spike = int(spike.sum())
    ang = rng.uniform(0, 2 * np.pi, n_spike)
    dist = rng.uniform(400.0, 3000.0, n_spike)
    x[spike] += dist * np.cos(ang)
    y[spike] += dist * np.sin(ang)
    seg_speed = np.hypot(dx, dy) / np.diff(kt)
    seg_heading = np.degrees(np.arctan2(dx, dy)) % 360.0
    moving = ~knots["still"] & (np.hypot(dx, dy) > 0.5)
    last_moving = np.maximum.accumulate(np.where(moving, np.arange(len(moving)), 0))
    seg_heading = seg_heading[last_moving]
    speed = np.where(
        still,
        np.abs(rng.normal(0.0, 0.4, len(t))),
        seg_speed[seg] * 3.6 * (1.0 + rng.normal(0.0, 0.04, len(t))),
    )
    heading = (seg_heading[seg] + rng.normal(0.0, 3.0, len(t))) % 360.0
    stale = np.zeros(len(t), bool)
    for f0, f1 in frozen:  # frozen terminal: the last fix repeated, speed 0
        i0 = int(np.searchsorted(t, f0, side="right")) - 1
        m = (t > f0) & (t <= f1)
        if i0 < 0 or not m.any():
            continue
        x[m], y[m] = x[i0], y[i0]
        speed[m] = 0.0
        heading[m] = heading[i0]
        stale |= m
    # load-sensor glitches: 1-2 reports flip while driving (never during a stop)
    load = knots["load"][seg].copy()
    moving_idx = np.flatnonzero(~still & (speed > 10))
    for i in rng.choice(moving_idx, size=min(len(moving_idx), int(rng.poisson(0.7))),
                        replace=False):
        j = slice(i, min(i + int(rng.integers(1, 3)), len(t)))
        if not still[j].any():
            load[j] = np.where(load[j] > EMPTY, EMPTY, FULL)
    return {
        "t": t.astype(np.int64),
        "x": x,
        "y": y,
        "speed_kmh": np.round(np.maximum(speed, 0.0), 1),
        "heading_deg": np.round(heading, 0) % 360.0,
        "load": load,
        "lift": knots["lift"][seg],
        "still": still,
        "spike": spike,
        "jump": jump,
        "stale": stale,
    }


def _correlated_noise(rng: np.random.Generator, n: int, interval_s: float) -> np.ndarray:
    """Unit-variance noise with an exponential autocorrelation (~60 s): white noise
    convolved with a truncated AR(1) kernel."""
    phi = float(np.exp(-interval_s / 60.0))
    k = max(1, int(np.ceil(5 * 60.0 / interval_s)))
    kernel = phi ** np.arange(k)
    kernel /= np.sqrt(np.sum(kernel**2))
    z = rng.standard_normal(n + k - 1)
    return np.convolve(z, kernel, mode="valid")


def snap_events(events: list[Event], t: np.ndarray, x: np.ndarray, y: np.ndarray) -> list[Event]:
    """Read each event's window from the sampled times (see :class:`Event`).

    Events with no sample in their window (a dropout ate a short stop) are
    left out, except dumps (a tip between two fixes of a slow terminal happened all
    the same; its window stays as simulated). Returns new events; ``deviation`` events are passed through
    unchanged (they need the route geometry).
    """
    out: list[Event] = []
    for ev in events:
        if ev.snap == "stop":
            i0 = int(np.searchsorted(t, ev.t0, side="left"))
            i1 = int(np.searchsorted(t, ev.t1, side="right")) - 1
            if i0 > i1 or i0 >= len(t):
                if ev.kind == "illegal_dump":  # a tip between two fixes still happened
                    out.append(_replace(ev, ev.t0, ev.t1))
                continue
            out.append(_replace(ev, t[i0], t[i1]))
        elif ev.snap == "gap":
            i0 = int(np.searchsorted(t, ev.t0, side="right")) - 1
            i1 = int(np.searchsorted(t, ev.t1, side="left"))
            if i0 < 0 or i1 >= len(t):
                continue
            new = _replace(ev, t[i0], t[i1])
            if ev.locate_at_gap_start:
                new.x, new.y = float(x[i0]), float(y[i0])
            out.append(new)
        else:
            out.append(ev)
    return out


def _replace(ev: Event, t0: float, t1: float) -> Event:
    return Event(
        ev.kind, float(t0), float(t1), ev.x, ev.y, ev.site_id, ev.manifest_id, ev.note,
        "fixed", ev.locate_at_gap_start, ev.extra,
    )
