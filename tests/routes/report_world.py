"""A small audit result whose scorecard, reconciliation and charts are worked out by hand.

Companies: 甲运输 (trucks 浙A1 with 20 m³, 浙A2 without capacity), 乙运输 (浙B1 10 m³, 浙B2
idle); 浙C9 is listed but not registered. Origins: O1 (permit 80 m³), O2, O3 (manifest,
no trip), O4 (nothing); a load at no permitted origin (浙C9). Truck capacity setting 15 m³.
"""

from __future__ import annotations

from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from haulwatch.routes.alerts import make_alerts

CAPACITY_M3 = 15.0


def sites() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "site_id": ["O1", "O2", "O3", "O4", "D1", "P1"],
            "kind": ["origin", "origin", "origin", "origin", "disposal", "depot"],
            "name": ["东湖工地", "西山工地", "北岸工地", "", "南郊消纳场", "车队停车场"],
            "declared_volume_m3": [80.0, np.nan, np.nan, np.nan, np.nan, np.nan],
        },
        geometry=[shapely.box(120.00 + 0.01 * i, 30.00, 120.005 + 0.01 * i, 30.005)
                  for i in range(6)],
        crs="EPSG:4326",
    )


def routes() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"route_id": ["R1"], "origin_site_id": ["O1"], "disposal_site_id": ["D1"]},
        geometry=[shapely.LineString([(120.0025, 30.0025), (120.0425, 30.0025)])],
        crs="EPSG:4326",
    )


def vehicles() -> pd.DataFrame:
    return pd.DataFrame({
        "vehicle_id": ["浙A1", "浙A2", "浙B1", "浙B2", "浙C9"],
        "vehicle_key": ["浙A1", "浙A2", "浙B1", "浙B2", "浙C9"],
        "company": ["甲运输", "甲运输", "乙运输", "乙运输", "丙运输"],
        "registered": [True, True, True, True, False],
        "capacity_m3": [20.0, np.nan, 10.0, np.nan, np.nan],
    })


def trips() -> pd.DataFrame:
    rows = (
        [("浙A1", "O1", f"A1-{i}") for i in range(3)]
        + [("浙A2", "O1", f"A2-{i}") for i in range(2)]
        + [("浙B1", "O2", f"B1-{i}") for i in range(4)]
        + [("浙C9", None, "C9-0")]
    )
    return pd.DataFrame({
        "trip_id": [r[2] for r in rows],
        "vehicle_id": [r[0] for r in rows],
        "status": "delivered",
        "origin_site_id": [r[1] for r in rows],
        "disposal_site_id": "D1",
        "start": pd.Timestamp("2026-03-02T01:00:00Z"),
    })


def manifests() -> pd.DataFrame:
    return pd.DataFrame({
        "manifest_id": ["M1", "M2", "M3", "M4"],
        "vehicle_id": ["浙A1", "浙A2", "浙B1", "浙A1"],
        "origin_site_id": ["O1", "O1", "O2", "O3"],
        "disposal_site_id": ["D1", "D1", "D1", "D1"],
        "volume_m3": [60.0, 50.0, 20.0, 30.0],
    })


def alerts() -> gpd.GeoDataFrame:
    rows = [
        # kind, vehicle, start (UTC), trip, site, lon, lat, summary
        ("illegal_dump", "浙A1", "2026-03-01T15:30:00Z", "A1-0", None, 120.1, 30.1, "满载停车后空载"),
        ("route_deviation", "浙A2", "2026-03-02T03:06:00Z", "A2-0", None, 120.02, 30.01, "驶出核准路线"),
        ("unmanifested_trip", "浙B1", "2026-03-02T04:00:00Z", "B1-0", None, 120.012, 30.002, "无联单"),
        ("unregistered_vehicle", "浙C9", "2026-03-02T05:00:00Z", "C9-0", None, 120.3, 30.3, "未备案"),
        ("unpermitted_origin", "浙C9", "2026-03-02T05:10:00Z", None, None, 120.31, 30.31, "黑工地"),
        ("dump_hotspot", "", "2026-03-02T06:00:00Z", None, None, 120.2, 30.2, "多车偷倒"),
    ]
    return make_alerts(pd.DataFrame({
        "kind": [r[0] for r in rows],
        "vehicle_id": [r[1] for r in rows],
        "start": pd.to_datetime([r[2] for r in rows], utc=True),
        "end": pd.to_datetime([r[2] for r in rows], utc=True) + pd.Timedelta(minutes=10),
        "severity": ["high", "medium", "medium", "low", "high", "high"],
        "trip_id": [r[3] for r in rows],
        "site_id": [r[4] for r in rows],
        "lon": [r[5] for r in rows],
        "lat": [r[6] for r in rows],
        "summary": [r[7] for r in rows],
    }), timezone="Asia/Shanghai")


def stops() -> pd.DataFrame:
    # Two long stops ~10 m from the dump, one far away, one short, one inside a site.
    return pd.DataFrame({
        "vehicle_id": ["浙A1", "浙A2", "浙B1", "浙B1", "浙A1"],
        "lon": [120.1001, 120.0999, 120.15, 120.1, 120.0025],
        "lat": [30.1001, 30.0999, 30.15, 30.1, 30.0025],
        "duration_s": [900.0, 700.0, 1200.0, 300.0, 3600.0],
        "site_id": [None, None, None, None, "O1"],
    })


def result() -> SimpleNamespace:
    return SimpleNamespace(
        alerts=alerts(), stops=stops(), trips=trips(),
        rejects=pd.DataFrame({"file": ["tracks.csv"], "row": [7], "field": ["lat"],
                              "value": ["91"], "reason": ["latitude out of range"],
                              "action": ["row_dropped"]}),
        summary={"points_read": 100, "timezone": "Asia/Shanghai", "vehicles": 5},
        sites=sites(), routes=routes(), manifests=manifests(), vehicles=vehicles(),
    )


#: The scorecard worked out by hand: rank, company, trucks, active, trips, {kind: n}, per 100.
SCORECARD = [
    (1, "乙运输", 2, 1, 4, {"unmanifested_trip": 1}, 25.0),
    (2, "甲运输", 2, 2, 5, {"illegal_dump": 1, "route_deviation": 1}, 40.0),
    (3, "", 1, 1, 1, {"unregistered_vehicle": 1, "unpermitted_origin": 1}, 200.0),
]

#: The reconciliation by hand: origin, trips, hauled, manifests, declared, permit, flag.
RECONCILIATION = [
    ("O1", 5, 3 * 20.0 + 2 * CAPACITY_M3, 2, 110.0, 80.0, "over_permit"),
    ("O2", 4, 4 * 10.0, 1, 20.0, None, "over_declared"),
    ("O3", 0, 0.0, 1, 30.0, None, "not_hauled"),
    ("O4", 0, 0.0, 0, None, None, ""),
    ("", 1, CAPACITY_M3, 0, None, None, "unknown_origin"),
]
