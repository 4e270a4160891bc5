"""An independent little world for red-team scenarios (tests/routes/test_scenarios.py).

Nothing here comes from ``ingest.synthetic`` or ``tests/routes/detector_world.py``:
sites, a route and scripted truck tracks are laid out in a local metric frame
(x east, y north, metres from an anchor point), turned into degrees with a plain
equirectangular formula, optionally shifted into GCJ-02 / BD-09 with the public
formulas, and written as a contract dataset folder (docs/formats.md).

Layout (metres from the anchor)::

    O2 (expired origin)  (0, 3000)                       D2 (disposal) (6000, 3000)
    O1 (origin)          (0, 0) ---- route R1 (y = 0) ---- D1 (disposal) (6000, 0)
                                    DEP (depot) (3000, -1500)

Every site is a 200 m square around its centre. Route R1 runs O1 → D1 along y = 0
with ``corridor_m`` = 100.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SITES: dict[str, tuple[str, float, float]] = {
    "O1": ("origin", 0.0, 0.0),
    "O2": ("origin", 0.0, 3000.0),
    "D1": ("disposal", 6000.0, 0.0),
    "D2": ("disposal", 6000.0, 3000.0),
    "DEP": ("depot", 3000.0, -1500.0),
}
SITE_HALF_M = 100.0
ROUTE_CORRIDOR_M = 100.0


def xy(site: str) -> tuple[float, float]:
    """Centre of a site, metres."""
    return SITES[site][1], SITES[site][2]


# ----------------------------------------------------------------- China offsets (public formulas)

_A = 6378245.0
_EE = 0.00669342162296594323


def _t_lat(x: float, y: float) -> float:
    r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    r += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return r


def _t_lon(x: float, y: float) -> float:
    r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    r += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    r += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    r += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return r


def wgs_to_gcj(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 → GCJ-02 (inside China)."""
    dlat = _t_lat(lon - 105.0, lat - 35.0)
    dlon = _t_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sq = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sq) * math.pi)
    dlon = (dlon * 180.0) / (_A / sq * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def wgs_to_bd(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 → BD-09 (through GCJ-02)."""
    gx, gy = wgs_to_gcj(lon, lat)
    xpi = math.pi * 3000.0 / 180.0
    z = math.sqrt(gx * gx + gy * gy) + 0.00002 * math.sin(gy * xpi)
    theta = math.atan2(gy, gx) + 0.000003 * math.cos(gx * xpi)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


# ----------------------------------------------------------------- trucks


@dataclass
class Truck:
    """A scripted track: call ``park`` / ``drive`` / ``dark`` in order."""

    vehicle_id: str
    t_s: float  # current local-naive epoch seconds (wall clock in the dataset zone)
    x: float
    y: float
    dt_s: float
    rng: np.random.Generator
    load: str | None = None
    rows: list[tuple] = field(default_factory=list)

    def _emit(self, x: float, y: float, speed: float, lift: float | None) -> None:
        self.rows.append((self.t_s, x, y, speed, self.load, lift))

    def park(self, minutes: float, *, sigma_m: float = 4.0, lift: bool | None = None,
             load_after: str | None = None, lift_minutes: float | None = None) -> Truck:
        """Dwell ``minutes`` at the current place (GPS scatter ``sigma_m``).

        ``load_after`` switches the load sensor half-way through the dwell; ``lift``
        raises the body during ``lift_minutes`` (default the middle third).
        """
        n = max(round(minutes * 60 / self.dt_s), 1)
        lift_n = n // 3 if lift_minutes is None else round(lift_minutes * 60 / self.dt_s)
        lift_from = (n - lift_n) // 2
        for k in range(n):
            if load_after is not None and k == n // 2:
                self.load = load_after
            lifted = None if lift is None else (1.0 if lift and lift_from <= k < lift_from + lift_n else 0.0)
            jx, jy = self.rng.normal(0.0, sigma_m, 2)
            self._emit(self.x + jx, self.y + jy, 0.0, lifted)
            self.t_s += self.dt_s
        return self

    def drive(self, *waypoints: tuple[float, float], v_kmh: float = 36.0, lift: bool | None = None) -> Truck:
        """Drive straight through the waypoints (metres) at ``v_kmh``."""
        v = v_kmh / 3.6
        for wx, wy in waypoints:
            dist = math.hypot(wx - self.x, wy - self.y)
            n = max(math.ceil(dist / (v * self.dt_s)), 1)
            x0, y0 = self.x, self.y
            for k in range(1, n + 1):
                f = k / n
                jx, jy = self.rng.normal(0.0, 3.0, 2)
                self.x = x0 + (wx - x0) * f
                self.y = y0 + (wy - y0) * f
                self._emit(self.x + jx, self.y + jy, v_kmh, None if lift is None else 0.0)
                self.t_s += self.dt_s
        return self

    def to(self, site: str, **kw) -> Truck:
        """Drive to the centre of a site."""
        return self.drive(xy(site), **kw)

    def creep(self, minutes: float, *, step_m: float = 15.0, heading: tuple[float, float] = (1.0, 0.0),
              moving_s: float = 20.0, still_s: float = 40.0) -> Truck:
        """Stop-and-go: ``moving_s`` rolling (``step_m`` per move), ``still_s`` still, repeated."""
        end = self.t_s + minutes * 60
        hx, hy = heading
        while self.t_s < end:
            self.drive((self.x + hx * step_m, self.y + hy * step_m), v_kmh=step_m / moving_s * 3.6)
            self.park(still_s / 60.0, sigma_m=2.0)
        return self

    def dark(self, minutes: float, *, to: tuple[float, float] | None = None) -> Truck:
        """No fixes for ``minutes``; the truck reappears at ``to`` (default where it was)."""
        self.t_s += minutes * 60
        if to is not None:
            self.x, self.y = to
        return self


@dataclass
class Manifest:
    manifest_id: str
    vehicle_id: str
    origin_site_id: str
    disposal_site_id: str
    valid_from: str
    valid_to: str
    route_id: str | None = "R1"


class World:
    """Build a scenario and write it as a dataset folder."""

    def __init__(self, *, anchor: tuple[float, float] = (120.60, 30.00), timezone: str | None = None,
                 coord_system: str = "wgs84", day: str = "2026-03-02", seed: int = 7) -> None:
        self.anchor = anchor
        self.timezone = timezone
        self.coord_system = coord_system
        self.day = day
        self.rng = np.random.default_rng(seed)
        self.trucks: list[Truck] = []
        self.manifests: list[Manifest] = []
        self.vehicles: list[tuple[str, str]] | None = None
        self.site_permits: dict[str, tuple[str, str]] = {"O2": ("2020-01-01", "2025-12-31")}
        self.sensor_columns = False
        # site_id → (kind, centre x, centre y[, half-width east-west]) added to SITES
        self.extra_sites: dict[str, tuple] = {}

    # geometry -------------------------------------------------------------
    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        """WGS-84 degrees of a local point."""
        lon0, lat0 = self.anchor
        return lon0 + x / (111320.0 * math.cos(math.radians(lat0))), lat0 + y / 110540.0

    def _out(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self.lonlat(x, y)
        if self.coord_system == "gcj02":
            return wgs_to_gcj(lon, lat)
        if self.coord_system == "bd09":
            return wgs_to_bd(lon, lat)
        return lon, lat

    # scripting ------------------------------------------------------------
    def truck(self, vehicle_id: str, start: str = "08:00", *, at: str | tuple[float, float] = "DEP",
              dt_s: float = 10.0, day: str | None = None, load: str | None = None) -> Truck:
        """A new truck standing at a site (or a point) at local ``start`` (HH:MM) of the day."""
        x, y = xy(at) if isinstance(at, str) else at
        t0 = pd.Timestamp(f"{day or self.day} {start}").value / 1e9
        tr = Truck(vehicle_id, t0, x, y, dt_s, self.rng, load=load)
        if load is not None:
            self.sensor_columns = True
        self.trucks.append(tr)
        return tr

    def manifest(self, vehicle_id: str, origin: str = "O1", disposal: str = "D1", *,
                 start: str = "07:00", end: str = "18:00", route_id: str | None = "R1",
                 day: str | None = None, end_day: str | None = None) -> None:
        """A manifest valid [start, end] local on the day."""
        d = day or self.day
        self.manifests.append(Manifest(
            f"M{len(self.manifests) + 1:03d}", vehicle_id, origin, disposal,
            f"{d} {start}:00", f"{end_day or d} {end}:00", route_id,
        ))

    # writing --------------------------------------------------------------
    def _square(self, cx: float, cy: float, half: float, half_x: float) -> list:
        ring = [(cx - half_x, cy - half), (cx + half_x, cy - half), (cx + half_x, cy + half),
                (cx - half_x, cy + half), (cx - half_x, cy - half)]
        return [[list(self._out(px, py)) for px, py in ring]]

    def write(self, folder: Path, *, parquet: bool = False, epoch: bool = False,
              with_offset: bool = False) -> Path:
        """Write the dataset folder and return it."""
        folder.mkdir(parents=True, exist_ok=True)
        feats = []
        for sid, (kind, cx, cy, *half_x) in {**SITES, **self.extra_sites}.items():
            props = {"site_id": sid, "kind": kind, "name": sid}
            if sid in self.site_permits:
                props["permit_from"], props["permit_to"] = self.site_permits[sid]
            ring = self._square(cx, cy, SITE_HALF_M, half_x[0] if half_x else SITE_HALF_M)
            feats.append({"type": "Feature", "properties": props,
                          "geometry": {"type": "Polygon", "coordinates": ring}})
        (folder / "sites.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": feats}))
        route = {"type": "Feature",
                 "properties": {"route_id": "R1", "origin_site_id": "O1", "disposal_site_id": "D1",
                                "corridor_m": ROUTE_CORRIDOR_M},
                 "geometry": {"type": "LineString",
                              "coordinates": [list(self._out(*xy("O1"))), list(self._out(*xy("D1")))]}}
        (folder / "routes.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [route]}))
        mf = pd.DataFrame([m.__dict__ for m in self.manifests],
                          columns=["manifest_id", "vehicle_id", "origin_site_id", "disposal_site_id",
                                   "valid_from", "valid_to", "route_id"])
        if mf["route_id"].isna().all():
            mf = mf.drop(columns="route_id")
        mf.to_csv(folder / "manifests.csv", index=False)
        rows = []
        for tr in self.trucks:
            for t_s, x, y, speed, load, lift in tr.rows:
                lon, lat = self._out(x, y)
                rows.append((tr.vehicle_id, t_s, lon, lat, speed, load, lift))
        tracks = pd.DataFrame(rows, columns=["vehicle_id", "t_local", "lon", "lat", "speed_kmh", "load", "lift"])
        tracks = tracks.sample(frac=1.0, random_state=1).reset_index(drop=True)  # unsorted on purpose
        local = pd.to_datetime(tracks["t_local"], unit="s")
        tz = self.timezone or "Asia/Shanghai"
        if epoch or with_offset:
            aware = local.dt.tz_localize(tz)
            if epoch:
                tracks["time"] = ((aware - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(seconds=1)).astype("int64")
            else:
                tracks["time"] = aware.dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        else:
            tracks["time"] = local.dt.strftime("%Y-%m-%d %H:%M:%S")
        tracks["lon"] = tracks["lon"].round(7)
        tracks["lat"] = tracks["lat"].round(7)
        cols = ["vehicle_id", "time", "lon", "lat", "speed_kmh"]
        if self.sensor_columns:
            cols += ["load", "lift"]
        tracks = tracks[cols]
        if parquet:
            tracks.to_parquet(folder / "tracks.parquet", index=False)
        else:
            tracks.to_csv(folder / "tracks.csv", index=False)
        if self.vehicles is not None:
            pd.DataFrame(self.vehicles, columns=["vehicle_id", "registered"]).assign(company="X").to_csv(
                folder / "vehicles.csv", index=False)
        toml = [f'coord_system = "{self.coord_system}"']
        if self.timezone:
            toml.append(f'timezone = "{self.timezone}"')
        (folder / "dataset.toml").write_text("\n".join(toml) + "\n")
        return folder

    def utc(self, hhmm: str, day: str | None = None) -> pd.Timestamp:
        """A local HH:MM of the day as a UTC timestamp."""
        return pd.Timestamp(f"{day or self.day} {hhmm}").tz_localize(self.timezone or "Asia/Shanghai").tz_convert("UTC")
