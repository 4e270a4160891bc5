"""A tiny hand-built world for the detector tests: sites, a route, a track builder.

Coordinates are metres in UTM 51N around Shaoxing (x0, y0 below); lon/lat are
derived with pyproj, so frames look like the canonical ones of ``ingest.prepare``.
Layout (metres from the base point):

* origin O1: 200 × 200 square centred on (0, 0)
* disposal D1: 200 × 200 square centred on (5000, 0); D2 the same at (5000, 3000)
* depot P1: 100 × 100 square centred on (0, -2000)
* route R1: straight line O1 → D1 (corridor default); R2: O1 → D2 via (0, 3000)
"""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from shapely.geometry import LineString, box

CRS = pyproj.CRS.from_epsg(32651)
X0, Y0 = 270_000.0, 3_320_000.0
T0 = pd.Timestamp("2026-03-02 00:00:00", tz="UTC")  # 08:00 Asia/Shanghai
_TO_WGS = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)

SITES = [
    ("O1", "origin", box(-100, -100, 100, 100)),
    ("D1", "disposal", box(4900, -100, 5100, 100)),
    ("D2", "disposal", box(4900, 2900, 5100, 3100)),
    ("P1", "depot", box(-50, -2050, 50, -1950)),
]


def sites_m(extra: list | None = None) -> gpd.GeoDataFrame:
    rows = [*SITES, *(extra or [])]
    gdf = gpd.GeoDataFrame(
        {
            "site_id": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "name": [r[0] for r in rows],
            "permit_from": [r[3] if len(r) > 3 else None for r in rows],
            "permit_to": [r[4] if len(r) > 4 else None for r in rows],
        },
        geometry=[shift(r[2]) for r in rows],
        crs=CRS,
    )
    return gdf


def shift(geom):
    from shapely import affinity

    return affinity.translate(geom, X0, Y0)


def routes_m() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "route_id": ["R1", "R2"],
            "origin_site_id": ["O1", "O1"],
            "disposal_site_id": ["D1", "D2"],
            "corridor_m": [np.nan, 200.0],
        },
        geometry=[shift(LineString([(0, 0), (5000, 0)])), shift(LineString([(0, 0), (0, 3000), (5000, 3000)]))],
        crs=CRS,
    )


class Truck:
    """Builds one truck's points: drive, dwell, go dark; optional load / lift readings."""

    def __init__(self, plate: str, x: float = 0.0, y: float = -2000.0, t_s: float = 0.0,
                 dt_s: float = 10.0, seed: int = 0, sensors: bool = False):
        self.plate = plate
        self.x, self.y, self.t = x, y, t_s
        self.dt = dt_s
        self.rng = np.random.default_rng(seed)
        self.sensors = sensors
        self.load = "empty"
        self.lift = 0
        self.rows: list[tuple] = []
        self._emit()

    def _emit(self, jitter: float = 2.0) -> None:
        self.rows.append((self.plate, self.t, self.x + self.rng.normal(0, jitter),
                          self.y + self.rng.normal(0, jitter), self.load, self.lift))

    def drive(self, x: float, y: float, speed_mps: float = 10.0) -> Truck:
        dist = np.hypot(x - self.x, y - self.y)
        n = max(int(np.ceil(dist / (speed_mps * self.dt))), 1)
        x_start, y_start = self.x, self.y
        for k in range(1, n + 1):
            self.t += self.dt
            self.x = x_start + (x - x_start) * k / n
            self.y = y_start + (y - y_start) * k / n
            self._emit()
        return self

    def dwell(self, duration_s: float, *, load: str | None = None, lift_s: float = 0.0) -> Truck:
        """Stay; the load reading changes to ``load`` halfway, the body is raised for lift_s."""
        n = int(duration_s // self.dt)
        for k in range(n):
            self.t += self.dt
            if load is not None and (not self.sensors or k == n // 2):
                self.load = load
            self.lift = 1 if (lift_s and n // 2 <= k < n // 2 + lift_s / self.dt) else 0
            self._emit()
        self.lift = 0
        return self

    def dark(self, duration_s: float) -> Truck:
        """No points for duration_s (the next point is emitted by the next move)."""
        self.t += duration_s
        return self

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=["vehicle_id", "t", "x", "y", "load", "lift"])
        if not self.sensors:
            df["load"] = None
            df["lift"] = np.nan
        return df


def points_frame(*trucks: Truck) -> pd.DataFrame:
    """Canonical points frame of trucks, sorted by vehicle_key, time."""
    df = pd.concat([t.frame() for t in trucks], ignore_index=True)
    x = df["x"].to_numpy() + X0
    y = df["y"].to_numpy() + Y0
    lon, lat = _TO_WGS.transform(x, y)
    out = pd.DataFrame(
        {
            "vehicle_id": df["vehicle_id"],
            "vehicle_key": df["vehicle_id"].str.replace(" ", "").str.upper(),
            "time": T0 + pd.to_timedelta(df["t"], unit="s"),
            "lon": lon,
            "lat": lat,
            "x": x,
            "y": y,
            "speed_kmh": np.nan,
            "heading_deg": np.nan,
            "load": df["load"],
            "lift": df["lift"].astype(float),
            "src_row": np.arange(len(df)),
        }
    )
    return out.sort_values(["vehicle_key", "time"], kind="stable", ignore_index=True)


def manifest(mid: str, plate: str, origin: str = "O1", disposal: str = "D1", route: str | None = "R1",
             start_h: float = -2, end_h: float = 12) -> dict:
    return {
        "manifest_id": mid,
        "vehicle_id": plate,
        "vehicle_key": plate.replace(" ", "").upper(),
        "origin_site_id": origin,
        "disposal_site_id": disposal,
        "route_id": route,
        "valid_from": T0 + pd.Timedelta(hours=start_h),
        "valid_to": T0 + pd.Timedelta(hours=end_h),
        "waste_type": "渣土",
        "volume_m3": 20.0,
    }


def dataset(points: pd.DataFrame, manifests: list[dict] | None = None, vehicles: list[tuple] | None = None,
            extra_sites: list | None = None) -> SimpleNamespace:
    """An object with the fields of ingest.prepare.Dataset that the audit reads."""
    sm = sites_m(extra_sites)
    man = pd.DataFrame(manifests or [], columns=list(manifest("M", "X").keys()))
    for c in ("valid_from", "valid_to"):
        man[c] = pd.to_datetime(man[c], utc=True)
    veh = None
    if vehicles is not None:
        veh = pd.DataFrame(vehicles, columns=["vehicle_id", "registered"])
        veh["vehicle_key"] = veh["vehicle_id"].str.replace(" ", "").str.upper()
        veh["company"] = "ACME"
    return SimpleNamespace(
        points=points,
        sites_m=sm,
        sites=sm.to_crs("EPSG:4326"),
        routes_m=routes_m(),
        routes=routes_m().to_crs("EPSG:4326"),
        manifests=man,
        vehicles=veh,
        crs=CRS,
        timezone="Asia/Shanghai",
        rejects=pd.DataFrame(columns=["file", "row", "field", "value", "reason"]),
        stats={"rows_read": len(points), "duplicates_dropped": 0},
    )


# ---------------------------------------------------------------- day plans


def normal_trip(tr: Truck, *, queue: bool = True, refuel: bool = False, light: bool = True) -> Truck:
    """Origin → loading → route R1 (traffic light, optional refuel) → gate queue → unload."""
    tr.drive(0, 0).dwell(900, load="full")
    tr.drive(1500, 0)
    if light:
        tr.dwell(60)
    if refuel:
        tr.drive(2500, 40).dwell(600).drive(2600, 0)
    if queue:
        tr.drive(4780, 0).dwell(360)
    tr.drive(5000, 0).dwell(600, load="empty", lift_s=60 if tr.sensors else 0)
    return tr


def dump_trip(tr: Truck, *, at=(2500, 800), minutes: float = 8) -> Truck:
    """Origin → loading → leave the route to a field, dump, back to the origin."""
    tr.drive(0, 0).dwell(900, load="full")
    tr.drive(1500, 0).drive(*at).dwell(minutes * 60, load="empty", lift_s=60 if tr.sensors else 0)
    tr.drive(1500, 0).drive(0, 0)
    return tr
