"""A seeded synthetic fleet: a contract dataset plus labelled ground truth.

:func:`generate` writes a dataset folder exactly as ``docs/formats.md`` fixes
it (sites, routes, manifests, tracks, vehicles, dataset.toml) for a fleet of
construction-waste trucks in a synthetic city near Shaoxing, together with

- ``truth.csv``: every injected violation as the alert the audit should
  raise (``docs/detection.md`` rules, windows from the generated points), and
  every deliberately innocent stop as an ``innocent_<what>`` row;
- ``truth_meta.json``: the bad rows and duplicates mixed into the tracks, by
  reason, so tests can check what the reader counted.

The same seed gives the same files. Trucks are simulated and written in
chunks, so memory stays bounded for large fleets (2,000 trucks x 1 day is
~10M points).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from haulwatch.errors import UserError
from haulwatch.geo.chinacoords import from_wgs84
from haulwatch.ingest.synthetic.city import City, Site, build_city
from haulwatch.ingest.synthetic.fleet import (
    EMPTY,
    FULL,
    HALF,
    LOAD_CODES,
    Event,
    TrackBuilder,
    sample_track,
    snap_events,
)
from haulwatch.timezone import DEFAULT_TIMEZONE, TimezoneError, check_timezone

__all__ = [
    "ASSUMED_CORRIDOR_DEFAULT_M",
    "CONDITIONS",
    "TRUTH_COLUMNS",
    "GeneratedDataset",
    "SyntheticError",
    "generate",
]

#: Columns of truth.csv (docs/internals.md).
TRUTH_COLUMNS: tuple[str, ...] = (
    "truth_id", "kind", "vehicle_id", "start", "end", "lon", "lat", "site_id", "manifest_id", "note",
)
#: Corridor half-width the truth assumes for routes written without ``corridor_m``
#: (the audit's ``corridor_default_m``); detours go far beyond any sane value.
ASSUMED_CORRIDOR_DEFAULT_M = 150.0
_HOTSPOT_RADIUS_M = 150.0
#: The sustained-excursion rule the truth assumes for ``route_deviation`` (the audit's
#: ``deviation_min_points``, ``deviation_min_duration_s``, ``deviation_min_excess_m``).
#: Stays at one site the audit merges into one visit across a shorter excursion
#: (``visit_merge_s`` plus a fix of a slow terminal), seconds.
_VISIT_MERGE_S = 300.0
#: A manifest covers a trip within its window widened by this (``manifest_slack_s``).
_MANIFEST_SLACK_S = 900.0
_DEVIATION_MIN_POINTS = 2
_DEVIATION_MIN_S = 120.0
_DEVIATION_MIN_EXCESS_M = 100.0
# truth kinds whose window an innocent stop may not overlap
_STOP_TRUTHS = ("illegal_dump", "gps_gap", "unpermitted_origin")
# innocent road situations a route_deviation window may hold (routes.evaluate.ROUTE_INNOCENTS)
_ROUTE_INNOCENTS = ("innocent_service_road", "innocent_urban_canyon", "innocent_multipath")
_HOTSPOT_MIN_VEHICLES = 3

#: Real-terminal conditions :func:`generate` can switch on (issue 12; docs/internals.md):
#: night shifts across midnight, 10/30/60/120 s terminals in one fleet, urban canyons
#: (noisy stretches and 80–300 m multipath jumps), frozen fixes, fast (1.5–4 min) dumps,
#: rolling dumps (tipping while creeping, lift sensor trucks), two terminals on one truck,
#: large origins (300–600 m) with gate queues, service roads 44–55 m beside approved
#: routes (some routes get a 60 m corridor), and dark dumps that end back inside the
#: origin, loading again.
CONDITIONS: tuple[str, ...] = (
    "night_shifts", "mixed_intervals", "urban_canyons", "frozen_fixes", "fast_dumps",
    "rolling_dumps", "twin_devices", "large_origins", "service_roads", "dark_at_origin",
)
_MIXED_INTERVALS_S = (10.0, 30.0, 60.0, 120.0)
_COORD_SYSTEMS = ("wgs84", "gcj02", "bd09")
_SENSORS = ("all", "none", "mixed")
_FORMATS = ("csv", "parquet")
_ROLES = (
    "illegal_dump", "dark_dump", "route_deviation", "gps_gap", "black_site",
    "expired_origin", "wrong_disposal", "unmanifested_trip", "manifest_not_executed",
)
_WASTE = ("渣土", "建筑垃圾", "拆除垃圾", "装修垃圾", "工程泥浆")
_COMPANIES = ("绍兴城建运输有限公司", "越城渣土运输队", "柯桥建运物流", "萧山清运车队", "上虞宏达运输")
_PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


class SyntheticError(UserError, ValueError):
    """A parameter of the generator is out of range."""


@dataclass(frozen=True)
class GeneratedDataset:
    """What :func:`generate` wrote.

    Attributes
    ----------
    folder : Path
        The dataset folder (also holds truth.csv and truth_meta.json).
    files : dict
        Written file names and their sizes in bytes.
    points : int
        Good, unique track points written.
    rows : int
        Track rows written (points + bad rows + duplicates).
    truth_counts : dict
        Truth rows per kind.
    """

    folder: Path
    files: dict[str, int]
    points: int
    rows: int
    truth_counts: dict[str, int]


@dataclass
class _Route:
    route_id: str
    origin_id: str
    disposal_id: str
    nodes: list[int]
    line: shapely.LineString
    corridor_m: float | None


@dataclass
class _Truck:
    index: int
    vehicle_id: str
    depot: str
    origin: str
    disposal: str
    night: bool
    sensors: bool
    interval_s: float
    sigma_m: float
    time_style: int
    registered: str  # "yes", "false", "missing"
    twin: bool = False  # a second terminal (video) reports the same plate
    roles: dict[int, str] = field(default_factory=dict)  # day -> role
    innocents: dict[int, str] = field(default_factory=dict)  # day -> forced innocent event
    hot_group: dict[int, int] = field(default_factory=dict)  # day -> hotspot group
    manifests: dict[int, str] = field(default_factory=dict)  # day -> manifest id
    assign: dict[int, tuple[str, str]] = field(default_factory=dict)  # day -> (origin, disposal)


@dataclass
class _Context:
    city: City
    routes: dict[tuple[str, str], _Route]
    timezone: str
    day0: dt.date
    expired_id: str
    hotspots: dict[tuple[int, int], np.ndarray]  # (day, group) -> spot (m)
    dumps: dict[int, list[np.ndarray]]  # day -> planned dump places so far
    site_polys: np.ndarray  # every site polygon (incl. black sites), metric
    permitted_polys: np.ndarray  # origins, disposals, depots
    conditions: frozenset = frozenset()


# --------------------------------------------------------------------------- checks


def _check(name: str, value, ok: bool, allowed: str) -> None:
    if not ok:
        raise SyntheticError(f"{name}={value!r} is not allowed; {name} must be {allowed}")


def _check_params(trucks, days, coord_system, sensors, interval_s, violation_rate,
                  bad_row_fraction, duplicate_fraction, fmt, chunk_trucks) -> tuple[float, float]:
    _check("trucks", trucks, isinstance(trucks, (int, np.integer)) and 1 <= trucks <= 100_000,
           "an integer in [1, 100000]")
    _check("days", days, isinstance(days, (int, np.integer)) and 1 <= days <= 366,
           "an integer in [1, 366]")
    _check("coord_system", coord_system, coord_system in _COORD_SYSTEMS, f"one of {_COORD_SYSTEMS}")
    _check("sensors", sensors, sensors in _SENSORS, f"one of {_SENSORS}")
    _check("fmt", fmt, fmt in _FORMATS, f"one of {_FORMATS}")
    given = interval_s
    if isinstance(interval_s, (int, float)):
        interval_s = (float(interval_s), float(interval_s))
    ok = (
        isinstance(interval_s, (tuple, list)) and len(interval_s) == 2
        and 1.0 <= float(interval_s[0]) <= float(interval_s[1]) <= 120.0
    )
    # beyond 120 s a stop of a few minutes has too few points for the truth to hold
    _check("interval_s", given, ok, "a number or a (low, high) pair within [1, 120] seconds")
    for name, v, hi in (("violation_rate", violation_rate, 1.0),
                        ("bad_row_fraction", bad_row_fraction, 0.5),
                        ("duplicate_fraction", duplicate_fraction, 0.5)):
        _check(name, v, isinstance(v, (int, float)) and 0.0 <= v <= hi, f"a number in [0, {hi}]")
    _check("chunk_trucks", chunk_trucks, isinstance(chunk_trucks, int) and chunk_trucks >= 1,
           "a positive integer")
    return float(interval_s[0]), float(interval_s[1])


# --------------------------------------------------------------------------- plan


def _plates(rng: np.random.Generator, n: int) -> list[str]:
    codes = rng.choice(len(_PLATE_LETTERS) * 10_000, size=n, replace=False)
    return [f"浙D{_PLATE_LETTERS[c // 10_000]}{c % 10_000:04d}" for c in codes]


def _local_midnight(ctx: _Context, day: int) -> float:
    d = ctx.day0 + dt.timedelta(days=day)
    return pd.Timestamp(d.isoformat(), tz=ctx.timezone).timestamp()


def _build_routes(city: City, rng: np.random.Generator) -> tuple[dict, dict[str, list[str]]]:
    disposals = city.of_kind("disposal")
    dc = np.array([d.centre for d in disposals])
    routes: dict[tuple[str, str], _Route] = {}
    linked: dict[str, list[str]] = {}
    for o in city.of_kind("origin"):
        order = np.argsort(np.hypot(*(dc - o.centre).T))
        k = 1 if rng.random() < 0.5 or len(disposals) == 1 else 2
        linked[o.site_id] = [disposals[i].site_id for i in order[:k]]
    for o_id, d_ids in linked.items():
        for d_id in d_ids:
            nodes = city.path(city.site(o_id).node, city.site(d_id).node)
            rid = f"R{len(routes) + 1:03d}"
            corridor = [None, None, 100.0, 120.0, 150.0][int(rng.integers(5))]
            routes[(o_id, d_id)] = _Route(
                rid, o_id, d_id, nodes, shapely.LineString(city.nodes[nodes]), corridor
            )
    return routes, linked


def _plan(rng: np.random.Generator, n: int, days: int, city: City, linked: dict,
          sensors: str, interval: tuple[float, float], violation_rate: float,
          expired_id: str, conditions: frozenset = frozenset(),
          crng: np.random.Generator | None = None) -> list[_Truck]:
    plates = _plates(rng, n)
    depots = [s.site_id for s in city.of_kind("depot")]
    good_origins = [o for o in linked if o != expired_id]
    trucks: list[_Truck] = []
    for i in range(n):
        origin = good_origins[int(rng.integers(len(good_origins)))]
        disp = linked[origin][int(rng.integers(len(linked[origin])))]
        has = sensors == "all" or (sensors == "mixed" and rng.random() < 0.5)
        trucks.append(_Truck(
            index=i, vehicle_id=plates[i], depot=depots[int(rng.integers(len(depots)))],
            origin=origin, disposal=disp, night=bool(rng.random() < 0.1), sensors=bool(has),
            interval_s=float(rng.uniform(*interval)), sigma_m=float(rng.uniform(5.0, 10.0)),
            time_style=int(rng.choice(5, p=[0.3, 0.15, 0.25, 0.2, 0.1])), registered="yes",
        ))
    # every time form appears (one terminal vendor each), the rest at random
    for t, style in zip(rng.permutation(trucks), range(5), strict=False):
        t.time_style = style
    crng = crng if crng is not None else np.random.default_rng(0)
    for t in trucks:  # real-terminal conditions: their own stream, defaults unchanged
        if "night_shifts" in conditions:
            t.night = bool(crng.random() < 0.5)
        if "mixed_intervals" in conditions:
            t.interval_s = float(crng.choice(_MIXED_INTERVALS_S))
        if "twin_devices" in conditions:
            t.twin = bool(crng.random() < 0.12)
    roles_all = _ROLES + (("rolling_dump",) if "rolling_dumps" in conditions else ())
    for day in range(days):
        order = rng.permutation(n)
        slots = n - max(1, n // 4) if n > 1 else 0
        wanted: list[str] = []
        n_groups = int(np.ceil(n / 500))  # dumping gangs: 3-5 trucks at one black spot
        if day == 0:  # every kind, more of each in big fleets
            wanted = list(roles_all) * max(1, int(np.ceil(n / 80)))
        else:
            n_groups = int(rng.binomial(n_groups, 0.5)) if n >= 20 else 0
        if n >= 12:
            for g in range(n_groups):
                wanted[2:2] = [f"hotspot#{g}"] * int(rng.integers(3, 6))
        k = 0
        for idx in order:
            t = trucks[idx]
            if day > 0 and rng.random() < 0.2:  # moves to another project
                t.origin = good_origins[int(rng.integers(len(good_origins)))]
                t.disposal = linked[t.origin][int(rng.integers(len(linked[t.origin])))]
            t.assign[day] = (t.origin, t.disposal)
            if k < min(len(wanted), slots):
                role = wanted[k]
                k += 1
            elif k >= len(wanted) and rng.random() < violation_rate and len(t.roles) < days:
                role = roles_all[int(rng.integers(len(roles_all)))]
            else:
                continue
            if role == "rolling_dump" and not t.sensors:
                role = "illegal_dump"  # without a lift sensor a rolling dump is not observable
            if role.startswith("hotspot#"):
                t.night = False
                t.hot_group[day] = int(role.removeprefix("hotspot#"))
                role = "hotspot"
            t.roles[day] = role
            if role == "expired_origin":
                t.assign[day] = (expired_id, linked[expired_id][0])
        # at least one refuel stop and one empty roadside parking a day
        free = [trucks[i] for i in order if day not in trucks[i].roles]
        for t, what in zip(free, ("refuel", "park"), strict=False):
            t.innocents[day] = what
    # unregistered trucks: day-shift trucks without other roles, ~3% (at least one)
    plain = [t for t in trucks if not t.roles and (not t.night or "night_shifts" in conditions)]
    # both kinds (missing from the registry, registered = false) once the fleet allows
    n_unreg = min(len(plain), max(2 if n >= 20 else 1, round(0.03 * n))) if n >= 4 else 0
    for j, t in enumerate(rng.permutation(len(plain))[:n_unreg]):
        plain[t].registered = "missing" if j % 2 == 0 else "false"
    return trucks


# --------------------------------------------------------------------------- one truck day


def _field_point(ctx: _Context, rng: np.random.Generator, anchor: np.ndarray,
                 route_line: shapely.LineString, day: int) -> np.ndarray | None:
    """A place in a field or at a roadside, 200–2000 m from the route, far from sites."""
    city = ctx.city
    for _ in range(80):
        ang = rng.uniform(0, 2 * np.pi)
        d = rng.uniform(250.0, 2000.0)
        p = anchor + d * np.array([np.cos(ang), np.sin(ang)])
        if np.abs(p).max() > 7200:
            continue
        pt = shapely.Point(p)
        if rng.random() < 0.5:  # roadside
            on_road = shapely.line_interpolate_point(
                city.road_lines, shapely.line_locate_point(city.road_lines, pt)
            )
            q = np.array([on_road.x, on_road.y])
            v = p - q
            p = q + v / max(np.hypot(*v), 1e-6) * 15.0
            pt = shapely.Point(p)
        if shapely.distance(route_line, pt) < 200.0:
            continue
        if shapely.distance(ctx.site_polys, pt).min() < 350.0:
            continue
        others = ctx.dumps.get(day, []) + [p for (d, _), p in ctx.hotspots.items() if d == day]
        if others and np.min(np.hypot(*(np.array(others) - p).T)) < 600.0:
            continue
        node = city.nearest_grid_node(p)
        access = shapely.LineString([city.nodes[node], p])
        if shapely.distance(ctx.site_polys, access).min() < 250.0:
            continue
        return p
    return None


def _dwell_point(site: Site, rng: np.random.Generator, spread_m: float) -> np.ndarray:
    return site.centre + rng.uniform(-spread_m, spread_m, 2)


def _load_spread(ctx: _Context, site: Site) -> float:
    """How far from the centre trucks load: 40 m, or across a large origin."""
    if "large_origins" in ctx.conditions and site.kind == "origin":
        x0, y0, x1, y1 = site.polygon.bounds
        return max(40.0, 0.3 * min(x1 - x0, y1 - y0))
    return 40.0


def _simulate_day(ctx: _Context, truck: _Truck, day: int, rng: np.random.Generator):
    """Build one truck day; returns (builder, trips, role_done)."""
    city = ctx.city
    role = truck.roles.get(day)
    mid = truck.manifests.get(day, "")
    origin_id, disp_id = truck.assign[day]
    origin, disposal, depot = city.site(origin_id), city.site(disp_id), city.site(truck.depot)
    midnight = _local_midnight(ctx, day)
    if truck.night:
        t_on = midnight + rng.uniform(19.2, 20.2) * 3600
        work_end = midnight + 29.3 * 3600
        t_off = midnight + rng.uniform(30.2, 30.8) * 3600
    else:
        t_on = midnight + rng.uniform(6.2, 7.5) * 3600
        work_end = midnight + 18.9 * 3600
        t_off = midnight + rng.uniform(20.4, 21.4) * 3600
    tr = TrackBuilder(t_on, _dwell_point(depot, rng, 40.0), rng, city)
    tr.wait(rng.uniform(8, 25) * 60, parked=True)
    trips: list[dict] = []
    if role == "manifest_not_executed":
        tr.wait(t_off - tr.now, parked=True)
        return tr, trips, role
    tr.move_to(depot.centre, 3.0)
    n_trips = int(rng.integers(3, 7))
    k_v = int(rng.integers(0, min(n_trips, 3)))
    lunch = (not truck.night) and rng.random() < 0.6
    had_lunch = False
    forced = truck.innocents.get(day)
    refuel_trip = int(rng.integers(0, n_trips)) if forced == "refuel" or rng.random() < 0.25 else -1
    park_trip = int(rng.integers(1, n_trips)) if forced == "park" or rng.random() < 0.2 else -1
    pos = depot.node
    done = None
    for k in range(n_trips):
        route = ctx.routes.get((origin_id, disp_id))
        est = 3600 + (route.line.length / 7.0 if route else 1500)
        if k > 0 and tr.now + est > work_end:
            break
        violate = k == k_v and role is not None
        src = origin
        if violate and role == "black_site":
            src = city.of_kind("black")[int(rng.integers(len(city.of_kind("black"))))]
        # empty leg to the loading place
        leg = city.path(pos, src.node)
        hooks = {}
        if k == park_trip and pos != depot.node and len(leg) > 4 and role is None:
            j = _grid_index(city, leg, rng)
            if j is not None:
                hooks[j] = lambda leg=leg, j=j: tr.roadside_stop(
                    leg[j - 1], leg[j], rng.uniform(20, 60) * 60, "innocent_empty_parking")
        big = "large_origins" in ctx.conditions and src.kind == "origin"
        if big and len(leg) >= 2 and rng.random() < 0.5 and src.site_id != ctx.expired_id:
            # empty trucks queue on the driveway outside the gate before entering
            def queue(src=src):
                g = ctx.city.nodes[src.gate_node]
                q = g + np.array(src.normal) * rng.uniform(5.0, max(10.0, src.near_m - 20.0))
                tr.move_to(q, 3.0)
                t_q = tr.now
                tr.wait(rng.uniform(3, 12) * 60)
                tr.events.append(Event("innocent_origin_queue", t_q, tr.now, q[0], q[1],
                                       site_id=src.site_id, note="empty, waiting at the gate"))
            hooks[len(leg) - 2] = queue
        tr.drive(leg, congestion=rng.random() < 0.15, hooks=hooks)
        # loading visit
        spread = _load_spread(ctx, src)
        tr.move_to(_dwell_point(src, rng, spread), 2.5)
        t_ls = tr.now
        dur = rng.uniform(10, 25) * 60
        if rng.random() < 0.5:  # waits its turn, then moves up to the excavator
            tr.wait(dur * rng.uniform(0.1, 0.3))
            tr.move_to(_dwell_point(src, rng, spread), 1.5)
        tr.wait(max(60.0, dur * rng.uniform(0.3, 0.6) - (tr.now - t_ls)))
        if tr.pending_dark is not None:
            # dark since a dump: back on air standing here, already loading (half, then full)
            tr.cur_load = HALF
            tr.wait(max(rng.uniform(60, 180), tr.pending_dark[0] + 720.0 - tr.now))
            t_g0, place, d_mid = tr.pending_dark
            tr.pending_dark = None
            _close_dark(tr, t_g0, tr.now - rng.uniform(20, 50), place, d_mid)
            tr.wait(rng.uniform(60, 120))
            tr.cur_load = FULL
        else:
            tr.cur_load = FULL if rng.random() < 0.8 else HALF
        tr.wait(dur - (tr.now - t_ls))
        if big and rng.random() < 0.5:  # loaded: queues at the wash bay by the exit
            g = ctx.city.nodes[src.gate_node]
            tr.move_to(g + np.array(src.normal) * (src.near_m + rng.uniform(15.0, 40.0)), 2.0)
            tr.wait(rng.uniform(2, 8) * 60)
        t_le = tr.now
        tr.move_to(src.centre, 2.5)
        trip = {"load_start": t_ls, "load_end": t_le, "origin": src, "unload_end": None,
                "disposal": None, "black": src.kind == "black", "manifest": mid}
        trips.append(trip)
        if violate and role in ("illegal_dump", "dark_dump", "hotspot", "rolling_dump"):
            pos = _dump(ctx, tr, truck, day, role, src, disposal, mid, rng,
                        last=k == n_trips - 1, depot=depot)
            if pos is not None:
                done = role
                continue
            pos = src.node  # no place found: haul normally
            violate = False
        dest = disposal
        if violate and role == "wrong_disposal":
            others = [d for d in city.of_kind("disposal") if d.site_id != disp_id]
            if others:
                dest = others[int(rng.integers(len(others)))]
                done = role
        src_id = src.site_id
        r = ctx.routes.get((src_id, dest.site_id))
        nodes = r.nodes if r is not None else city.path(src.node, dest.node)
        hooks = {}
        if violate and role == "route_deviation" and r is not None:
            detour = _detour(ctx, r, rng)
            if detour is not None:
                nodes = detour
                done = role
        if violate and role == "gps_gap":
            j = _grid_index(city, nodes, rng, lo=0.15, hi=0.45)
            if j is not None:
                hooks[j] = lambda: _hidden_gap(tr, rng, mid)
                done = role
        elif k == refuel_trip and role is None:
            j = _grid_index(city, nodes, rng)
            if j is not None:
                hooks[j] = lambda nodes=nodes, j=j: tr.roadside_stop(
                    nodes[j - 1], nodes[j], rng.uniform(5, 12) * 60, "innocent_refuel")
        frontage: dict[int, float] = {}
        if ("service_roads" in ctx.conditions and r is not None and done != "route_deviation"
                and rng.random() < 0.5):
            # service roads run along ordinary streets, not along a site's fence
            cand = [i for i in range(2, len(nodes) - 1) if i not in hooks and i - 1 not in hooks
                    and city.is_junction[nodes[i - 1]] and city.is_junction[nodes[i]]
                    and shapely.distance(ctx.site_polys, shapely.LineString(
                        city.nodes[[nodes[i - 1], nodes[i]]])).min() > 150.0]
            for i in rng.permutation(cand)[: int(rng.integers(1, 3))]:
                frontage[int(i)] = float(rng.choice([-1.0, 1.0]) * rng.uniform(44.0, 55.0))
        t_depart = tr.now
        tr.drive(nodes, congestion=rng.random() < 0.2, hooks=hooks, frontage=frontage)
        # gate queue, 50-150 m outside the polygon on the driveway
        normal = np.array(dest.normal)
        t_arrive = tr.now
        if rng.random() < 0.7:
            gate = city.nodes[dest.gate_node]
            q = gate + normal * (dest.near_m - rng.uniform(60.0, 140.0))
            tr.move_to(q, 4.0)
            t_arrive = tr.now
            t_q = tr.now
            tr.wait(rng.uniform(3, 15) * 60)
            tr.events.append(Event("innocent_gate_queue", t_q, tr.now, q[0], q[1],
                                   site_id=dest.site_id))
        tr.move_to(dest.centre, 3.0)
        tr.move_to(_dwell_point(dest, rng, 50.0), 2.5)
        t_us = tr.now
        dur = rng.uniform(5, 15) * 60
        tr.wait(dur * rng.uniform(0.2, 0.4))
        tr.wait(rng.uniform(60, 150), load=HALF, lift=1)
        tr.cur_load = EMPTY
        tr.wait(max(30.0, dur - (tr.now - t_us)))
        tr.move_to(dest.centre, 3.0)
        trip.update(disposal=dest, unload_start=t_us, unload_end=tr.now, visit_start=t_arrive,
                    depart=t_depart)
        if done == "route_deviation" and "deviation" not in trip and violate:
            trip["deviation"] = r
        pos = dest.node
        local_h = (tr.now - midnight) / 3600
        if lunch and not had_lunch and 11.0 <= local_h <= 13.5:
            had_lunch = True
            tr.drive(city.path(pos, depot.node))
            tr.move_to(_dwell_point(depot, rng, 40.0), 3.0)
            t_l = tr.now
            tr.wait(rng.uniform(30, 60) * 60, parked=True)
            p = tr.pos
            tr.events.append(Event("innocent_depot_lunch", t_l, tr.now, p[0], p[1],
                                   site_id=depot.site_id))
            tr.move_to(depot.centre, 3.0)
            pos = depot.node
    for tp in trips:  # the whole stay at a loading place outside permits (innocents inside it are not)
        o = tp["origin"]
        # the loading visit begins on arrival in the site's zone (polygon + origin buffer)
        tp["arrive"] = _stay(tr, o.polygon.buffer(50.0), tp["load_start"], tp["load_end"], outer=False)[0]
        if o.kind == "black" or o.site_id == ctx.expired_id:
            a, b = _stay(tr, o.polygon.buffer(80.0), tp["load_start"], tp["load_end"])
            # the audit merges stays at one site across excursions up to its visit_merge_s
            tp["stay"] = (a - _VISIT_MERGE_S, b + _VISIT_MERGE_S)
    t_home = tr.now
    if pos != depot.node:
        tr.drive(city.path(pos, depot.node))
    if tr.pending_dark is not None:  # no trip left: back on air on the way home
        t_g0, place, d_mid = tr.pending_dark
        tr.pending_dark = None
        _close_dark(tr, t_g0, max(t_g0 + 720.0, (t_home + tr.now) / 2), place, d_mid)
    tr.move_to(_dwell_point(depot, rng, 40.0), 3.0)
    tr.wait(max(600.0, t_off - tr.now), parked=True)
    return tr, trips, done


def _stay(tr: TrackBuilder, area, t0: float, t1: float, *, outer: bool = True) -> tuple[float, float]:
    """From the knot before the truck entered ``area`` to the knot after it left, around
    ``[t0, t1]`` (the truck is inside then); ``outer=False``: the first and last knot
    inside instead."""
    kt = np.asarray(tr.t)
    inside = shapely.contains_xy(area, np.asarray(tr.x), np.asarray(tr.y))
    a = int(np.searchsorted(kt, t0, side="left"))
    b = min(int(np.searchsorted(kt, t1, side="right")) - 1, len(kt) - 1)
    while a > 0 and inside[a - 1]:
        a -= 1
    while b < len(kt) - 1 and inside[b + 1]:
        b += 1
    if not outer:
        return float(kt[a]), float(kt[b])
    return float(kt[max(a - 1, 0)]), float(kt[min(b + 1, len(kt) - 1)])


def _close_dark(tr: TrackBuilder, t_g0: float, t_g1: float, place: np.ndarray, mid: str) -> None:
    """End a dark spell begun around a dump (truth: the gap and the dump in the dark)."""
    tr.dark(t_g0, t_g1)
    tr.events.append(Event("gps_gap", t_g0, t_g1, place[0], place[1], manifest_id=mid,
                           snap="gap", locate_at_gap_start=True, note="dark around a dump"))
    tr.events.append(Event("illegal_dump", t_g0, t_g1, place[0], place[1], manifest_id=mid,
                           snap="gap", locate_at_gap_start=True,
                           note="dumped while dark, back on air loading again at the origin"))


def _grid_index(city: City, nodes: list[int], rng, lo: float = 0.2, hi: float = 0.8) -> int | None:
    """A random interior path index that is a grid crossing, between lo and hi of the path."""
    n = len(nodes)
    cand = [i for i in range(max(1, int(n * lo)), min(n - 1, int(np.ceil(n * hi))))
            if city.is_junction[nodes[i]]]
    return int(rng.choice(cand)) if cand else None


def _clear_of_sites(ctx: _Context, tr: TrackBuilder, t_end: float, *, span_s: float = 60.0,
                    margin_m: float = 200.0) -> bool:
    """True when the truck stays farther than ``margin_m`` from every permitted site
    (origin, disposal, depot) during ``[t_end - span_s, t_end]``."""
    ts = np.linspace(t_end - span_s, t_end, 21)
    x = np.interp(ts, tr.t, tr.x)
    y = np.interp(ts, tr.t, tr.y)
    d = shapely.distance(ctx.permitted_polys[:, None], shapely.points(x, y)[None, :])
    return bool(d.min() > margin_m)


def _hidden_gap(tr: TrackBuilder, rng: np.random.Generator, mid: str) -> None:
    """A loaded truck goes dark 12–30 min, then reappears further on its way."""
    t0 = tr.now
    total = rng.uniform(12, 30) * 60
    after = rng.uniform(90, 180)
    tr.wait(total - after)  # idles (unseen), e.g. waiting at a roadside
    tr.dark(t0, t0 + total)
    p = tr.pos
    tr.events.append(Event("gps_gap", t0, t0 + total, p[0], p[1], manifest_id=mid,
                           snap="gap", locate_at_gap_start=True, note="loaded, went on to disposal"))


def _detour(ctx: _Context, r: _Route, rng: np.random.Generator) -> list[int] | None:
    """The route's node path with a 1–3 km loop through streets off its corridor."""
    city = ctx.city
    nodes = r.nodes
    corridor = r.corridor_m or ASSUMED_CORRIDOR_DEFAULT_M
    grid_idx = [i for i in range(1, len(nodes) - 1) if city.is_junction[nodes[i]]]
    if len(grid_idx) < 2:
        return None
    gx = city.nodes[: city.grid_count]
    dist = shapely.distance(r.line, shapely.points(gx))
    for _ in range(30):
        a = int(rng.choice(grid_idx[:-1]))
        later = [i for i in grid_idx if a + 1 <= i <= a + 6]
        if not later:
            continue
        b = int(rng.choice(later))
        pa = city.nodes[nodes[a]]
        near = np.hypot(*(gx - pa).T)
        cand = np.flatnonzero((dist > corridor + 350) & (dist < 1300) & (near < 1800))
        if len(cand) == 0:
            continue
        x = int(rng.choice(cand))
        loop = city.path(nodes[a], x) + city.path(x, nodes[b])[1:]
        if len(set(loop)) != len(loop):
            continue
        new = nodes[:a] + loop + nodes[b + 1:]
        extra = shapely.LineString(city.nodes[new]).length - r.line.length
        if 600 <= extra <= 4500:
            return new
    return None


def _dump(ctx: _Context, tr: TrackBuilder, truck: _Truck, day: int, role: str, src: Site,
          disposal: Site, mid: str, rng, *, last: bool, depot: Site) -> int | None:
    """Loaded truck leaves its way to dump in a field; returns the node it ends at."""
    city = ctx.city
    r = ctx.routes.get((src.site_id, disposal.site_id))
    nodes = r.nodes if r is not None else city.path(src.node, disposal.node)
    line = r.line if r is not None else shapely.LineString(city.nodes[nodes])
    j = _grid_index(city, nodes, rng, lo=0.2, hi=0.6)
    if j is None:
        j = max(1, len(nodes) // 2)
    spot = ctx.hotspots.get((day, truck.hot_group.get(day, -1)))
    if role == "hotspot" and spot is not None:
        ang, rad = rng.uniform(0, 2 * np.pi), 60.0 * np.sqrt(rng.uniform())
        place = spot + rad * np.array([np.cos(ang), np.sin(ang)])
    else:
        place = _field_point(ctx, rng, city.nodes[nodes[j]], line, day)
        if place is None:
            return None
        ctx.dumps.setdefault(day, []).append(place)
    access = city.nearest_grid_node(place)
    tr.drive(nodes[: j + 1])
    tr.drive(city.path(nodes[j], access), light_p=0.2)
    dark = role == "dark_dump"
    tr.move_to(place, rng.uniform(3.0, 6.0))
    t0 = tr.now
    if dark:  # switched off on the way, once well away from every permitted site
        t_g0 = next((t0 - u for u in np.sort(rng.uniform(10.0, 300.0, 8))
                     if _clear_of_sites(ctx, tr, t0 - u)), None)
        dark = t_g0 is not None
    note = "hotspot" if role == "hotspot" else ("field or roadside")
    fast = "fast_dumps" in ctx.conditions and rng.random() < 0.5
    if role == "rolling_dump":  # tipping while creeping along a field edge, no stop
        ang = rng.uniform(0, 2 * np.pi)
        creep = rng.uniform(0.5, 1.5)
        length = creep * rng.uniform(90.0, 180.0)
        end = place + length * np.array([np.cos(ang), np.sin(ang)])
        tr.move_to(end, creep, load=HALF, lift=1)
        tr.cur_load = EMPTY
        mid_p = (place + end) / 2
        place = mid_p
        note = "rolling dump: lift raised while creeping"
    elif fast:  # a tipper empties in 1.5-4 minutes
        dur = rng.uniform(1.5, 4.0) * 60
        tr.wait(dur * rng.uniform(0.15, 0.3))
        tr.wait(dur * rng.uniform(0.4, 0.6), load=HALF, lift=1)
        tr.cur_load = EMPTY
        tr.wait(max(10.0, dur - (tr.now - t0)))
        note += ", fast dump"
    else:
        dur = rng.uniform(4, 15) * 60
        tr.wait(dur * rng.uniform(0.2, 0.5))
        tr.wait(rng.uniform(60, 150), load=HALF, lift=1)
        tr.cur_load = EMPTY
        tr.wait(max(30.0, dur - (tr.now - t0)))
    at_origin = (dark and not last and "dark_at_origin" in ctx.conditions
                 and rng.random() < 0.5)
    if dark:
        total = max(rng.uniform(15, 40) * 60, tr.now - t_g0 + rng.uniform(90, 180))
        if not at_origin:
            tr.wait(max(0.0, t_g0 + total - tr.now - rng.uniform(60, 120)))
        t_leave = tr.now
    else:
        tr.events.append(Event("illegal_dump", t0, tr.now, place[0], place[1],
                               manifest_id=mid, note=note))
    tr.move_to(city.nodes[access], rng.uniform(3.0, 6.0))
    back = depot if last else src
    tr.drive(city.path(access, back.node))
    if at_origin:  # stays dark until it stands in the origin, loading again
        tr.pending_dark = (t_g0, place, mid)
        return back.node
    if dark:  # back on air on the way home, never already inside a permitted site
        t_g1 = t_g0 + total
        if not _clear_of_sites(ctx, tr, t_g1 + 60.0):
            t_g1 = t_leave + 5.0
        tr.dark(t_g0, t_g1)
        tr.events.append(Event("gps_gap", t_g0, t_g1, place[0], place[1],
                               manifest_id=mid, snap="gap", locate_at_gap_start=True,
                               note="dark around a dump"))
        tr.events.append(Event("illegal_dump", t_g0, t_g1, place[0], place[1],
                               manifest_id=mid, snap="gap", locate_at_gap_start=True,
                               note="dumped while dark"))
    return back.node


# --------------------------------------------------------------------------- truth


def _trip_truths(ctx: _Context, truck: _Truck, day: int, trips: list[dict]) -> list[Event]:
    out: list[Event] = []
    vid_mid = truck.manifests.get(day, "")
    for tp in trips:
        o: Site = tp["origin"]
        if o.kind == "black" or o.site_id == ctx.expired_id:
            c = o.centre
            out.append(Event("unpermitted_origin", tp["load_start"], tp["load_end"], c[0], c[1],
                             site_id="" if o.kind == "black" else o.site_id, manifest_id=vid_mid,
                             note="black site" if o.kind == "black" else "permit expired",
                             extra={"busy": tp.get("stay", (tp["load_start"], tp["load_end"]))}))
        d: Site | None = tp["disposal"]
        if d is None:
            continue
        cover = _covering_manifest(ctx, truck, day, tp["load_start"], tp["unload_end"])
        if cover is None:  # none, or the trip ran past its window (a long last trip)
            c = o.centre  # the alert is about where the load came from
            out.append(Event("unmanifested_trip", tp["load_start"], tp["unload_end"], c[0], c[1],
                             site_id=d.site_id))
        elif d.site_id != truck.assign[cover[1]][1]:
            c = d.centre
            out.append(Event("wrong_disposal", tp["visit_start"], tp["unload_end"], c[0], c[1],
                             site_id=d.site_id, manifest_id=cover[0]))
        if "deviation" in tp:
            out.append(Event("route_deviation", tp["depart"], tp["visit_start"], 0.0, 0.0,
                             manifest_id=vid_mid, snap="deviation",
                             extra={"route": tp["deviation"], "origin": o, "disposal": d}))
    return out


def _manifest_window(ctx: _Context, truck: _Truck, day: int) -> tuple[float, float]:
    """The window of the truck's manifest of ``day`` (epoch seconds), as written."""
    f, to = (18.5, 30.5) if truck.night else (6.0, 20.0)
    midnight = _local_midnight(ctx, day)
    return midnight + f * 3600, midnight + to * 3600


def _covering_manifest(ctx: _Context, truck: _Truck, day: int, t0: float,
                       t1: float) -> tuple[str, int] | None:
    """(manifest id, its day) of a manifest whose window, widened by the audit's
    ``manifest_slack_s``, holds ``[t0, t1]``; None when none does."""
    for d in (day, day - 1, day + 1):
        mid = truck.manifests.get(d)
        if not mid:
            continue
        a, b = _manifest_window(ctx, truck, d)
        if a - _MANIFEST_SLACK_S <= t0 and t1 <= b + _MANIFEST_SLACK_S:
            return mid, d
    return None


def _unregistered_truths(ctx: _Context, truck: _Truck, trips: list[dict]) -> list[Event]:
    """One ``unregistered_vehicle`` row per local day with a loading visit (a night
    shift's loads before and after midnight fall on two days; a visit is on the day
    the truck arrived in the site's zone), window first loading start to the last
    unloading end of the trips loaded that day."""
    if truck.registered == "yes" or not trips:
        return []
    starts = np.array([tp.get("arrive", tp["load_start"]) for tp in trips])
    days = pd.to_datetime(starts, unit="s", utc=True).tz_convert(ctx.timezone).date
    out = []
    c = ctx.city.site(truck.depot).centre
    for day in sorted(set(days)):
        sel = [tp for tp, d in zip(trips, days, strict=True) if d == day]
        ends = [tp["unload_end"] for tp in sel if tp["unload_end"] is not None]
        if ends:
            out.append(Event("unregistered_vehicle", min(tp["load_start"] for tp in sel),
                             max(ends), c[0], c[1], note=f"registry: {truck.registered}"))
    return out


def _deviation_window(ev: Event, s: dict[str, np.ndarray]) -> Event | None:
    """The deviation as the audit must see it (docs/detection.md): runs of consecutive
    fixes beyond the corridor half-width with at least ``_DEVIATION_MIN_POINTS`` fixes,
    spanning ``_DEVIATION_MIN_S`` and reaching ``_DEVIATION_MIN_EXCESS_M`` beyond the
    edge; window first to last fix of those runs, place the farthest fix."""
    r: _Route = ev.extra["route"]
    m = (s["t"] >= ev.t0) & (s["t"] <= ev.t1) & ~s["spike"] & ~s["jump"] & ~s["stale"]
    idx = np.flatnonzero(m)
    pts = shapely.points(s["x"][idx], s["y"][idx])
    corridor = r.corridor_m or ASSUMED_CORRIDOR_DEFAULT_M
    dist = shapely.distance(r.line, pts)
    off = dist > corridor
    off &= ~shapely.contains_xy(ev.extra["origin"].polygon, s["x"][idx], s["y"][idx])
    off &= ~shapely.contains_xy(ev.extra["disposal"].polygon, s["x"][idx], s["y"][idx])
    edges = np.flatnonzero(np.diff(np.r_[0, off.astype(np.int8), 0]))
    good = []
    for a, b in zip(edges[::2], edges[1::2] - 1, strict=True):
        if (b - a + 1 >= _DEVIATION_MIN_POINTS and s["t"][idx[b]] - s["t"][idx[a]] >= _DEVIATION_MIN_S
                and dist[a: b + 1].max() >= corridor + _DEVIATION_MIN_EXCESS_M):
            good.append((a, b))
    if not good:
        return None
    a, b = good[0][0], good[-1][1]
    far = a + int(np.argmax(np.where(off[a: b + 1], dist[a: b + 1], -1.0)))
    return Event("route_deviation", float(s["t"][idx[a]]), float(s["t"][idx[b]]),
                 float(s["x"][idx[far]]), float(s["y"][idx[far]]), manifest_id=ev.manifest_id,
                 snap="fixed", note=f"route {r.route_id}, corridor {corridor:.0f} m")


def _hotspot_truths(dumps: pd.DataFrame, timezone: str) -> list[dict]:
    """Single-linkage clusters of illegal_dump places per local day (>= 3 vehicles)."""
    out: list[dict] = []
    if dumps.empty:
        return out
    local_day = pd.to_datetime(dumps["start"], unit="s", utc=True).dt.tz_convert(timezone).dt.date
    for _, g in dumps.groupby(local_day.to_numpy()):
        xy = g[["x", "y"]].to_numpy()
        vid = g["vehicle_id"].to_numpy()
        pairs = cKDTree(xy).query_pairs(_HOTSPOT_RADIUS_M, output_type="ndarray")
        n = len(g)
        adj = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
        _, label = connected_components(adj, directed=False)
        for c in np.unique(label):
            m = label == c
            n_vehicles = len(set(vid[m]))
            if n_vehicles < _HOTSPOT_MIN_VEHICLES:
                continue
            out.append({
                "kind": "dump_hotspot", "vehicle_id": "",
                "start": float(g["start"].to_numpy()[m].min()),
                "end": float(g["end"].to_numpy()[m].max()),
                "x": float(xy[m, 0].mean()), "y": float(xy[m, 1].mean()),
                "site_id": "", "manifest_id": "", "note": f"{n_vehicles} vehicles",
            })
    return out


# --------------------------------------------------------------------------- writing


def _iso_utc(sec: np.ndarray) -> np.ndarray:
    s = np.datetime_as_string(np.asarray(sec, "int64").astype("datetime64[s]"), unit="s")
    return np.char.add(s.astype(str), "Z")


def _format_times(sec: np.ndarray, style: np.ndarray, timezone: str) -> np.ndarray:
    """Times as the terminals write them: 0 naive local 'YYYY-MM-DD HH:MM:SS', 1 naive ISO,
    2 ISO with offset, 3 epoch seconds, 4 ISO UTC with Z."""
    utc = pd.to_datetime(sec, unit="s", utc=True)
    local = utc.tz_convert(timezone).tz_localize(None)
    naive = np.datetime_as_string(local.to_numpy().astype("datetime64[s]"), unit="s").astype(object)
    offset_s = (local.to_numpy().astype("datetime64[s]").astype(np.int64) - np.asarray(sec, np.int64))
    out = naive.copy()
    m0 = style == 0
    if m0.any():
        out[m0] = np.char.replace(naive[m0].astype(str), "T", " ")
    m2 = style == 2
    if m2.any():
        sign = np.where(offset_s[m2] < 0, "-", "+")
        a = np.abs(offset_s[m2])
        off = np.char.add(np.char.add(sign, np.char.zfill((a // 3600).astype(str), 2)),
                          np.char.add(":", np.char.zfill((a % 3600 // 60).astype(str), 2)))
        out[m2] = np.char.add(naive[m2].astype(str), off)
    m3 = style == 3
    if m3.any():
        out[m3] = np.asarray(sec)[m3].astype(str)
    m4 = style == 4
    if m4.any():
        out[m4] = _iso_utc(np.asarray(sec)[m4])
    return out


def _to_system(ctx: _Context, x, y, system: str) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = ctx.city.lonlat(x, y)
    return from_wgs84(lon, lat, system)


def _geom_to_system(ctx: _Context, geom, system: str):
    def fn(xy: np.ndarray) -> np.ndarray:
        lon, lat = _to_system(ctx, xy[:, 0], xy[:, 1], system)
        return np.column_stack([np.round(lon, 7), np.round(lat, 7)])
    return shapely.transform(geom, fn)


def _write_geojson(path: Path, features: list[tuple[dict, object]]) -> None:
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(g)}
            for props, g in features
        ],
    }
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")


_BAD_REASONS = ("missing_field", "bad_coordinates", "bad_time", "bad_load")


def _corrupt(df: pd.DataFrame, rng: np.random.Generator, bad_fraction: float,
             dup_fraction: float, has_load: np.ndarray, fmt: str, counts: dict) -> pd.DataFrame:
    """Mix bad rows and exact duplicates into a chunk of formatted track rows."""
    n = len(df)
    if n == 0:
        return df
    n_bad = int(rng.binomial(n, bad_fraction)) if bad_fraction > 0 else 0
    n_dup = int(rng.binomial(n, dup_fraction)) if dup_fraction > 0 else 0
    reasons = rng.choice(len(_BAD_REASONS), size=n_bad)
    if "load" not in df.columns or not has_load.any():
        reasons = np.where(reasons == 3, rng.integers(0, 3, n_bad), reasons)
    pool = rng.permutation(n)
    # bad load values: in place (the reader clears the value, the point stays)
    load_rows = pool[has_load[pool]][: int((reasons == 3).sum())]
    reasons = np.r_[reasons[reasons != 3], np.full(len(load_rows), 3)]
    cand = pool[: n_dup + n_bad + len(load_rows) + 1]
    rest = cand[~np.isin(cand, load_rows)]
    dup_src = rest[:n_dup] if len(rest) >= n_dup else rng.choice(n, n_dup)
    n_extra = int((reasons != 3).sum())
    src = rng.integers(0, n, n_extra)
    bad = df.iloc[src].copy().reset_index(drop=True)  # copied before any load is spoilt
    df = df.copy()
    if len(load_rows):
        df.iloc[load_rows, df.columns.get_loc("load")] = rng.choice(
            ["??", "9", "-1", "xx", "FULL!"], len(load_rows))
    dups = df.iloc[dup_src]
    # shifted a few seconds so that no bad row doubles as a duplicate
    if fmt == "csv":
        epoch = df["_t"].to_numpy()[src] + rng.integers(1, 5, n_extra)
        bad["time"] = epoch.astype(str)
    else:
        bad["time"] = bad["time"] + pd.to_timedelta(rng.integers(1, 5, n_extra), unit="s")
    bad["_t"] = -1
    r_extra = reasons[reasons != 3]
    # 0: a required field left blank
    which = rng.integers(0, 4, n_extra)
    for k, col in enumerate(("vehicle_id", "time", "lon", "lat")):
        sel = (r_extra == 0) & (which == k)
        if sel.any():
            bad.loc[sel, col] = np.nan if col in ("lon", "lat") else None
    # 1: a coordinate out of range
    on_lat = rng.random(n_extra) < 0.5
    sel = (r_extra == 1) & on_lat
    bad.loc[sel, "lat"] = rng.choice([91.5, -95.0, 123.4], n_extra)[sel]
    sel = (r_extra == 1) & ~on_lat
    bad.loc[sel, "lon"] = rng.choice([181.0, 361.2, -200.0], n_extra)[sel]
    # 2: a time nobody can parse (Parquet: a missing timestamp)
    sel = r_extra == 2
    if sel.any():
        if fmt == "csv":
            bad.loc[sel, "time"] = rng.choice(
                ["2026-02-30 25:61:00", "yesterday", "17/13/2026 8h", "--", "1e99"], n_extra)[sel]
        else:
            bad.loc[sel, "time"] = pd.NaT
    if fmt != "csv":  # a Parquet timestamp cannot hold text: the bad time is a missing one
        reasons = np.where(reasons == 2, 0, reasons)
    for k, name in enumerate(_BAD_REASONS):
        counts[name] = counts.get(name, 0) + int((reasons == k).sum())
    counts["duplicates"] = counts.get("duplicates", 0) + len(dups)
    return pd.concat([df, dups, bad], ignore_index=True)


# --------------------------------------------------------------------------- generate


def _check_date_range(day0: dt.date, days: int) -> None:
    """Refuse a dataset (with its site permits, 200 days before and 150 after) outside the
    time range of every entry point (:mod:`haulwatch.ingest.limits`): its rows would all be
    rejected by the readers, and dates near year 1 or 9999 overflow."""
    from haulwatch.ingest.limits import TIME_MAX, TIME_MIN

    first = TIME_MIN.date() + dt.timedelta(days=201)
    last = TIME_MAX.date() - dt.timedelta(days=152 + max(int(days), 1))
    if not first <= day0 <= last:
        raise SyntheticError(
            f"start_date={day0.isoformat()!r} is not allowed; with days={days} it must be "
            f"{first.isoformat()}..{last.isoformat()} (the dataset and its site permits stay "
            f"within {TIME_MIN:%Y-%m-%d}..{TIME_MAX:%Y-%m-%d} UTC, the time range of every "
            "entry point)")


def generate(
    out_dir: str | Path,
    *,
    trucks: int = 25,
    days: int = 1,
    seed: int = 0,
    start_date: str | dt.date = "2026-03-02",
    coord_system: str = "wgs84",
    sensors: str = "all",
    interval_s: float | tuple[float, float] = (10.0, 30.0),
    violation_rate: float = 0.1,
    bad_row_fraction: float = 0.002,
    duplicate_fraction: float = 0.002,
    shuffle: bool = True,
    fmt: str = "csv",
    timezone: str = DEFAULT_TIMEZONE,
    chunk_trucks: int = 200,
    progress: Callable[[str], None] | None = None,
    conditions: Iterable[str] = (),
) -> GeneratedDataset:
    """Generate a synthetic fleet dataset with ground truth.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created; existing dataset files are overwritten).
    trucks : int, default 25
        Fleet size.
    days : int, default 1
        Number of consecutive local days.
    seed : int, default 0
        Random seed; the same seed and parameters give the same files.
    start_date : str or datetime.date, default "2026-03-02"
        First local day (ISO date).
    coord_system : {"wgs84", "gcj02", "bd09"}, default "wgs84"
        System of every coordinate written in the dataset (truth.csv is WGS-84).
    sensors : {"all", "none", "mixed"}, default "all"
        Which trucks report ``load`` and ``lift``: every truck, none (columns
        absent), or about half (blank for the others).
    interval_s : float or (float, float), default (10, 30)
        Reporting interval in seconds (1–120), or a range each truck draws its
        own from. Parked trucks (engine off) report every 120 s.
    violation_rate : float, default 0.1
        Probability that a truck-day carries one injected violation, besides
        the guaranteed set of every kind on the first day (as far as the fleet
        size allows: all kinds need >= 20 trucks).
    bad_row_fraction, duplicate_fraction : float, default 0.002
        Share of bad rows (missing fields, impossible coordinates, unparseable
        times, bad load values) and exact duplicate rows mixed into the tracks.
    shuffle : bool, default True
        Shuffle track rows (within each chunk of trucks).
    fmt : {"csv", "parquet"}, default "csv"
        tracks.csv (times in mixed legal forms) or tracks.parquet (UTC timestamps).
    timezone : str, default "Asia/Shanghai"
        The dataset's zone (dataset.toml); naive times are written in it.
    chunk_trucks : int, default 200
        Trucks simulated and written per chunk (bounds memory).
    progress : callable, optional
        Called with a short message after each chunk.
    conditions : iterable of str, default ()
        Real-terminal conditions to switch on (any of :data:`CONDITIONS`, or
        ``"all"``). Each is labelled in truth.csv: violations as the alerts they
        must raise, the rest as ``innocent_<what>`` rows (service roads, urban
        canyons, multipath jumps, frozen fixes, origin gate queues).

    Returns
    -------
    GeneratedDataset

    Raises
    ------
    SyntheticError
        If a parameter is out of range.
    """
    lo, hi = _check_params(trucks, days, coord_system, sensors, interval_s, violation_rate,
                           bad_row_fraction, duplicate_fraction, fmt, chunk_trucks)
    conds = _check_conditions(conditions)
    try:
        day0 = dt.date.fromisoformat(str(start_date))
    except ValueError as exc:
        raise SyntheticError(
            f"start_date={start_date!r} is not allowed; start_date must be an ISO date (YYYY-MM-DD)"
        ) from exc
    _check_date_range(day0, days)
    try:
        check_timezone(timezone)
    except TimezoneError as exc:
        raise SyntheticError(f"timezone={timezone!r} is not allowed; must be an IANA zone") from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    city, routes, linked = _setup(seed, trucks, days, day0, conds)
    plan_rng = np.random.default_rng([seed, 29])
    expired_id = city.of_kind("origin")[0].site_id
    fleet = _plan(plan_rng, trucks, days, city, linked, sensors, (lo, hi), violation_rate,
                  expired_id, conds, np.random.default_rng([seed, 37]))
    ctx = _Context(city, routes, timezone, day0, expired_id, {}, {},
                   np.array([s.polygon for s in city.sites if s.kind != "no_fly"]),
                   np.array([s.polygon for s in city.sites
                             if s.kind in ("origin", "disposal", "depot")]), conds)
    for key in sorted({(d, g) for t in fleet for d, g in t.hot_group.items()}):
        for _ in range(500):
            p = plan_rng.uniform(-6500, 6500, 2)
            taken = [q for (d, _), q in ctx.hotspots.items() if d == key[0]]
            if (shapely.distance(ctx.site_polys, shapely.Point(p)).min() > 400
                    and all(np.hypot(*(p - q)) > 1500 for q in taken)):
                ctx.hotspots[key] = p
                break
    manifests = _manifests(ctx, fleet, days, plan_rng)
    _write_static(out, ctx, fleet, manifests, coord_system, timezone, plan_rng)

    truth_events: list[dict] = []
    counts: dict[str, int] = {}
    n_points = 0
    n_rows = 0
    n_spikes = 0
    data_end = -np.inf
    writer = None
    track_path = out / ("tracks.csv" if fmt == "csv" else "tracks.parquet")
    track_path.unlink(missing_ok=True)
    for c0 in range(0, trucks, chunk_trucks):
        frames = []
        for truck in fleet[c0: c0 + chunk_trucks]:
            rng = np.random.default_rng([seed, 101, truck.index])
            samples, events = _render_truck(ctx, truck, days, rng)
            if samples is None:
                continue
            data_end = max(data_end, float(samples["t"].max()))
            n_spikes += int(samples["spike"].sum())
            for ev in events:
                truth_events.append({
                    "kind": ev.kind, "vehicle_id": truck.vehicle_id, "start": ev.t0, "end": ev.t1,
                    "x": ev.x, "y": ev.y, "site_id": ev.site_id, "manifest_id": ev.manifest_id,
                    "note": ev.note,
                })
            frames.append(_points_frame(truck, samples, sensors))
        if not frames:
            continue
        chunk = pd.concat(frames, ignore_index=True)
        n_points += len(chunk)
        crng = np.random.default_rng([seed, 202, c0])
        lon, lat = _to_system(ctx, chunk.pop("x").to_numpy(), chunk.pop("y").to_numpy(),
                              coord_system)
        chunk["lon"] = np.round(lon, 6)
        chunk["lat"] = np.round(lat, 6)
        style = chunk.pop("_style").to_numpy()
        if fmt == "csv":
            chunk["time"] = _format_times(chunk["_t"].to_numpy(), style, timezone)
        else:
            chunk["time"] = pd.to_datetime(chunk["_t"].to_numpy(), unit="s", utc=True)
        has_load = chunk.pop("_has_load").to_numpy()
        chunk = _corrupt(chunk, crng, bad_row_fraction, duplicate_fraction, has_load, fmt, counts)
        if shuffle:
            chunk = chunk.iloc[crng.permutation(len(chunk))]
        chunk = chunk.drop(columns="_t")
        cols = ["vehicle_id", "time", "lon", "lat", "speed_kmh", "heading_deg"]
        if sensors != "none":
            cols += ["load", "lift"]
        chunk = chunk[cols]
        n_rows += len(chunk)
        table = pa.Table.from_pandas(chunk, schema=_track_schema(cols, fmt), preserve_index=False)
        if fmt == "csv":
            with track_path.open("ab") as fh:
                if c0 == 0:
                    fh.write((",".join(cols) + "\n").encode())
                pa_csv.write_csv(table, fh, pa_csv.WriteOptions(
                    include_header=False, quoting_style="none"))
        else:
            if writer is None:
                writer = pq.ParquetWriter(track_path, table.schema)
            writer.write_table(table)
        if progress:
            progress(f"trucks {c0 + 1}-{min(trucks, c0 + chunk_trucks)} of {trucks}: "
                     f"{n_points:,} points")
    if writer is not None:
        writer.close()

    # manifest_not_executed: only windows that end before the data end
    for m in manifests:
        if m["_not_executed"] and m["_to"] <= data_end:
            c = city.site(m["origin_site_id"]).centre
            truth_events.append({
                "kind": "manifest_not_executed", "vehicle_id": m["_vid"], "start": m["_from"],
                "end": m["_to"], "x": c[0], "y": c[1], "site_id": m["origin_site_id"],
                "manifest_id": m["manifest_id"], "note": "truck stayed in the depot",
            })
    truth = pd.DataFrame(truth_events, columns=["kind", "vehicle_id", "start", "end", "x", "y",
                                                "site_id", "manifest_id", "note"])
    hot = _hotspot_truths(truth[truth["kind"] == "illegal_dump"], timezone)
    if hot:
        truth = pd.concat([truth, pd.DataFrame(hot)], ignore_index=True)
    truth = truth.sort_values(["start", "kind", "vehicle_id"], kind="stable").reset_index(drop=True)
    lon, lat = city.lonlat(truth["x"].to_numpy(), truth["y"].to_numpy())
    truth_out = pd.DataFrame({
        "truth_id": [f"T{i + 1:06d}" for i in range(len(truth))],
        "kind": truth["kind"], "vehicle_id": truth["vehicle_id"],
        "start": _iso_utc(truth["start"].to_numpy()), "end": _iso_utc(truth["end"].to_numpy()),
        "lon": np.round(lon, 6), "lat": np.round(lat, 6),
        "site_id": truth["site_id"], "manifest_id": truth["manifest_id"], "note": truth["note"],
    })
    truth_out.to_csv(out / "truth.csv", index=False)
    dropped = counts.get("missing_field", 0) + counts.get("bad_coordinates", 0) + counts.get("bad_time", 0)
    meta = {
        "generator": "haulwatch.ingest.synthetic", "seed": seed, "trucks": trucks, "days": days,
        "start_date": day0.isoformat(), "coord_system": coord_system, "sensors": sensors,
        "timezone": timezone, "format": fmt, "interval_s": [lo, hi],
        "conditions": sorted(conds),
        "twin_device_vehicles": sorted(t.vehicle_id for t in fleet if t.twin),
        "vehicle_interval_s": {t.vehicle_id: round(t.interval_s, 1) for t in fleet},
        "points": n_points, "rows_written": n_rows,
        "bad_rows": {k: counts.get(k, 0) for k in _BAD_REASONS},
        "bad_rows_total": sum(counts.get(k, 0) for k in _BAD_REASONS),
        "rows_dropped_expected": dropped,
        "values_cleared_expected": counts.get("bad_load", 0),
        "duplicates": counts.get("duplicates", 0),
        "teleport_points": n_spikes,
        "truth_counts": {k: int(v) for k, v in truth_out["kind"].value_counts().sort_index().items()},
    }
    (out / "truth_meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()}
    return GeneratedDataset(out, files, n_points, n_rows, meta["truth_counts"])


def _track_schema(cols: list[str], fmt: str) -> pa.Schema:
    """Fixed column types, so every chunk writes the same schema (even all-blank sensors)."""
    types = {
        "vehicle_id": pa.string(),
        "time": pa.string() if fmt == "csv" else pa.timestamp("s", tz="UTC"),
        "lon": pa.float64(), "lat": pa.float64(), "speed_kmh": pa.float64(),
        "heading_deg": pa.float64(), "load": pa.string(), "lift": pa.int8(),
    }
    return pa.schema([(c, types[c]) for c in cols])


def _check_conditions(conditions: Iterable[str]) -> frozenset:
    if isinstance(conditions, str):
        conditions = [conditions]
    conds = set(conditions)
    if "all" in conds:
        conds = (conds - {"all"}) | set(CONDITIONS)
    bad = sorted(conds - set(CONDITIONS))
    _check("conditions", bad, not bad, f"a subset of {CONDITIONS} (or 'all')")
    return frozenset(conds)


def _setup(seed: int, trucks: int, days: int, day0: dt.date, conditions: frozenset = frozenset()):
    """The city and its approved routes for a seed and fleet size (deterministic)."""
    city_rng = np.random.default_rng([seed, 17])
    n_origins = int(np.clip(trucks // 8, 5, 40))
    n_disposals = int(np.clip(trucks // 40, 3, 12))
    last = day0 + dt.timedelta(days=days - 1)
    city = build_city(
        city_rng, n_origins=n_origins, n_disposals=n_disposals,
        n_depots=int(np.clip(trucks // 60, 2, 10)), n_black=int(np.clip(trucks // 100, 2, 6)),
        n_nests=2, large_origins="large_origins" in conditions,
        permit_dates=((day0 - dt.timedelta(days=200)).isoformat(),
                      (last + dt.timedelta(days=150)).isoformat(),
                      (day0 - dt.timedelta(days=30)).isoformat()),
    )
    routes, linked = _build_routes(city, city_rng)
    if "service_roads" in conditions:  # narrow corridors: a service road lies just inside
        crng = np.random.default_rng([seed, 41])
        for r in routes.values():
            if crng.random() < 0.5:
                r.corridor_m = 60.0
    return city, routes, linked


def _quiet_windows(kn: dict[str, np.ndarray], gaps: list[tuple[float, float]],
                   rng: np.random.Generator, n: int, dur: tuple[float, float], *,
                   moving: bool, busy: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Up to ``n`` windows of a truck day, clear of dark spells (300 s) and of ``busy``;
    ``moving``: start while driving and hold no stay longer than 150 s."""
    kt = kn["t"]
    still_seg = kn["still"]
    out: list[tuple[float, float]] = []
    for _ in range(n * 20):
        if len(out) >= n or len(kt) < 3:
            break
        t0 = rng.uniform(kt[0] + 600.0, kt[-1] - 600.0) if kt[-1] - kt[0] > 1500 else None
        if t0 is None:
            break
        t1 = t0 + rng.uniform(*dur)
        if any(t0 - 300 < g1 and g0 < t1 + 300 for g0, g1 in gaps + busy + out):
            continue
        if moving:
            seg = int(np.searchsorted(kt, t0, side="right")) - 1
            if still_seg[seg] or kn["parked"][seg]:
                continue
            a = max(0, int(np.searchsorted(kt, t0)) - 1)
            b = int(np.searchsorted(kt, t1))
            d = np.diff(kt[a: b + 1])
            if np.sum(d[still_seg[a:b]]) > 150.0:  # freezes while driving on, not at a stay
                continue
        out.append((float(t0), float(t1)))
    return out


def _conditions_of_day(ctx: _Context, tr: TrackBuilder, rng: np.random.Generator) -> dict:
    """Urban canyons, multipath jumps and frozen fixes of one truck day (issue 12)."""
    kw: dict = {}
    if not ctx.conditions & {"urban_canyons", "frozen_fixes"}:
        return kw
    kn = tr.knots()
    busy = [(e.t0 - 120.0, e.t1 + 120.0) for e in tr.events if e.kind in _STOP_TRUTHS]
    if "frozen_fixes" in ctx.conditions and rng.random() < 0.6:
        kw["frozen"] = _quiet_windows(kn, tr.gaps, rng, 1, (90.0, 480.0), moving=True,
                                      busy=busy)
    if "urban_canyons" in ctx.conditions:
        wins = _quiet_windows(kn, tr.gaps, rng, int(rng.integers(1, 4)), (180.0, 720.0),
                              moving=False, busy=kw.get("frozen", []))
        kw["canyons"] = [(a, b, float(rng.uniform(20.0, 40.0))) for a, b in wins]
        jumps = []
        for a, _ in _quiet_windows(kn, tr.gaps, rng, int(rng.integers(2, 6)), (5.0, 35.0),
                                   moving=False, busy=kw.get("frozen", [])):
            ang, d = rng.uniform(0, 2 * np.pi), rng.uniform(80.0, 300.0)
            # multipath lasts seconds: 1-3 fixes of a 10 s terminal, at most one of a slow one
            jumps.append((a, a + rng.uniform(5.0, 35.0), d * np.cos(ang), d * np.sin(ang)))
        kw["jumps"] = jumps
    return kw


def _condition_truths(kw: dict, s: dict[str, np.ndarray]) -> list[Event]:
    """Innocent rows for the canyons, jumps and freezes that fixes actually show."""
    out = []
    for kind, wins in (("innocent_urban_canyon", [(a, b) for a, b, _ in kw.get("canyons", [])]),
                       ("innocent_multipath", [(a, b) for a, b, _, _ in kw.get("jumps", [])]),
                       ("innocent_frozen_fix", kw.get("frozen", []))):
        for a, b in wins:
            m = np.flatnonzero((s["t"] >= a) & (s["t"] <= b))
            if len(m) == 0:
                continue
            i = m[len(m) // 2]
            out.append(Event(kind, float(s["t"][m[0]]), float(s["t"][m[-1]]), float(s["x"][i]),
                             float(s["y"][i]), snap="fixed"))
    return out


def _render_truck(ctx: _Context, truck: _Truck, days: int, rng: np.random.Generator):
    parts, events = [], []
    all_trips: list[dict] = []
    for day in range(days):
        tr, trips, _ = _simulate_day(ctx, truck, day, rng)
        all_trips += trips
        kw = _conditions_of_day(ctx, tr, rng)
        s = sample_track(tr.knots(), tr.gaps, interval_s=truck.interval_s, sigma_m=truck.sigma_m,
                         rng=rng, dropouts=int(rng.poisson(1.0)), **kw)
        s["twin"] = np.zeros(len(s["t"]), bool)
        evs = snap_events(tr.events + _trip_truths(ctx, truck, day, trips), s["t"], s["x"], s["y"])
        evs += _condition_truths(kw, s)
        # an innocent stop hidden in a dark spell or inside a violation's stop is not innocent
        busy = [e.extra.get("busy", (e.t0, e.t1)) for e in evs if e.kind in _STOP_TRUTHS]
        evs = [e for e in evs if not e.kind.startswith("innocent_")
               or not any(e.t0 <= b1 and b0 <= e.t1 for b0, b1 in busy)]
        parts.append(s)
        both = s
        if truck.twin:  # the video terminal: own clock offset, noise and dropouts, no sensors
            r2 = np.random.default_rng(rng.integers(1 << 62))
            s2 = sample_track(tr.knots(), tr.gaps, interval_s=truck.interval_s,
                              sigma_m=float(r2.uniform(5.0, 10.0)), rng=r2,
                              dropouts=int(r2.poisson(1.0)), t_offset_s=float(r2.uniform(1.0, 8.0)),
                              spikes=False)
            s2["twin"] = np.ones(len(s2["t"]), bool)
            parts.append(s2)
            order = np.argsort(np.r_[s["t"], s2["t"]], kind="stable")
            both = {k: np.r_[s[k], s2[k]][order] for k in s}
        for ev in evs:
            if ev.snap == "deviation":  # judged on every genuine fix, both terminals'
                ev2 = _deviation_window(ev, both)
                if ev2 is not None:
                    events.append(ev2)
            else:
                events.append(ev)
    if not parts:
        return None, []
    s = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    # a deviation's window holds the road situations along it: they are part of it
    devs = [(e.t0, e.t1) for e in events if e.kind == "route_deviation"]
    events = [e for e in events if e.kind not in _ROUTE_INNOCENTS
              or not any(e.t0 <= b and a <= e.t1 for a, b in devs)]
    main = ~s["twin"]
    events += snap_events(_unregistered_truths(ctx, truck, all_trips), s["t"][main], s["x"][main],
                          s["y"][main])
    return s, events


def _points_frame(truck: _Truck, s: dict[str, np.ndarray], sensors: str) -> pd.DataFrame:
    n = len(s["t"])
    twin = s["twin"]
    df = pd.DataFrame({
        "vehicle_id": np.full(n, truck.vehicle_id, dtype=object),
        "_t": s["t"], "x": s["x"], "y": s["y"],
        "speed_kmh": s["speed_kmh"], "heading_deg": s["heading_deg"],
        "_style": np.full(n, truck.time_style, np.int8),
        "_has_load": np.full(n, truck.sensors and sensors != "none") & ~twin,
    })
    if sensors != "none":
        if truck.sensors:
            df["load"] = np.where(twin, None, np.asarray(LOAD_CODES, dtype=object)[s["load"]])
            df["lift"] = pd.array(np.where(twin, pd.NA, s["lift"]), dtype="Int8")
        else:
            df["load"] = None
            df["lift"] = pd.array(np.full(n, pd.NA), dtype="Int8")
    return df


def _manifests(ctx: _Context, fleet: list[_Truck], days: int, rng) -> list[dict]:
    out = []
    seq = 0
    for day in range(days):
        date = (ctx.day0 + dt.timedelta(days=day)).strftime("%Y%m%d")
        for t in fleet:
            if t.roles.get(day) == "unmanifested_trip":
                continue
            seq += 1
            mid = f"ZY{date}{seq:05d}"
            t.manifests[day] = mid
            o, d = t.assign[day]
            r = ctx.routes.get((o, d))
            out.append({
                "manifest_id": mid,
                "vehicle_id": _plate_variant(t.vehicle_id, rng, 0.1),
                "origin_site_id": o, "disposal_site_id": d,
                "route_id": r.route_id if r is not None and rng.random() < 0.85 else "",
                "_from": _manifest_window(ctx, t, day)[0], "_to": _manifest_window(ctx, t, day)[1],
                "waste_type": _WASTE[int(rng.integers(len(_WASTE)))],
                "volume_m3": float(rng.choice([12.0, 15.0, 18.0, 20.0]) * rng.integers(3, 7)),
                "_vid": t.vehicle_id, "_not_executed": t.roles.get(day) == "manifest_not_executed",
            })
    return out


def _plate_variant(plate: str, rng, p: float) -> str:
    """A hand-typed variant of a plate (same truck after normalization) with probability p."""
    if rng.random() >= p:
        return plate
    k = int(rng.integers(3))
    if k == 0:
        return f"{plate[:2]}·{plate[2:]}"
    if k == 1:
        return f"{plate[:2]} {plate[2:].lower()}"
    return plate[:2] + "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c
                               for c in plate[2:])


def _write_static(out: Path, ctx: _Context, fleet: list[_Truck], manifests: list[dict],
                  system: str, timezone: str, rng) -> None:
    city = ctx.city
    feats = []
    for s in city.sites:
        if s.kind == "black":
            continue
        props = {"site_id": s.site_id, "kind": s.kind, "name": s.name}
        if s.permit_from:
            props.update(permit_from=s.permit_from, permit_to=s.permit_to)
        feats.append((props, _geom_to_system(ctx, s.polygon, system)))
    _write_geojson(out / "sites.geojson", feats)
    feats = []
    for r in ctx.routes.values():
        props = {"route_id": r.route_id, "origin_site_id": r.origin_id,
                 "disposal_site_id": r.disposal_id}
        if r.corridor_m is not None:
            props["corridor_m"] = r.corridor_m
        feats.append((props, _geom_to_system(ctx, r.line, system)))
    _write_geojson(out / "routes.geojson", feats)
    if manifests:
        m = pd.DataFrame(manifests)
        styles = rng.integers(0, 2, len(m))
        for col, src in (("valid_from", "_from"), ("valid_to", "_to")):
            m[col] = _format_times(m[src].to_numpy().astype(np.int64), np.where(styles == 0, 0, 2),
                                   timezone)
        m = m[["manifest_id", "vehicle_id", "origin_site_id", "disposal_site_id", "route_id",
               "valid_from", "valid_to", "waste_type", "volume_m3"]]
    else:
        m = pd.DataFrame(columns=["manifest_id", "vehicle_id", "origin_site_id",
                                  "disposal_site_id", "route_id", "valid_from", "valid_to",
                                  "waste_type", "volume_m3"])
    m.to_csv(out / "manifests.csv", index=False)
    rows = []
    for t in fleet:
        if t.registered == "missing":
            continue
        rows.append({"vehicle_id": _plate_variant(t.vehicle_id, rng, 0.1),
                     "company": _COMPANIES[t.index % len(_COMPANIES)],
                     "registered": "false" if t.registered == "false" else "true"})
    for p in _plates(np.random.default_rng(rng.integers(1 << 31)), 3):  # registered, not driving
        if all(p != t.vehicle_id for t in fleet):
            rows.append({"vehicle_id": p, "company": _COMPANIES[0], "registered": "true"})
    pd.DataFrame(rows, columns=["vehicle_id", "company", "registered"]).to_csv(
        out / "vehicles.csv", index=False)
    (out / "dataset.toml").write_text(
        "# written by haulwatch generate (synthetic fleet)\n"
        f'coord_system = "{system}"\ntimezone = "{timezone}"\n', encoding="utf-8")
