"""Tests of routes.reconcile: manifests ⇄ trips, registry."""

from __future__ import annotations

import pandas as pd
import pytest
from detector_world import T0, Truck, dataset, manifest, normal_trip, points_frame

from haulwatch.routes.audit import audit
from haulwatch.routes.reconcile import cover_trips, unregistered_alerts

PLATE = "浙A00001"


def _trips(rows):
    return pd.DataFrame(
        [{"trip_id": i, "vehicle_key": k, "start": T0 + pd.Timedelta(hours=a), "end": T0 + pd.Timedelta(hours=b)}
         for i, k, a, b in rows]
    )


class TestCoverTrips:
    def test_window_with_slack_and_vehicle(self):
        man = pd.DataFrame([manifest("M1", "浙A00001", start_h=0, end_h=4), manifest("M2", "浙B2", start_h=0, end_h=9)])
        trips = _trips([("t1", "浙A00001", 1, 2), ("t2", "浙A00001", 3.9, 4.2), ("t3", "浙A00001", 3.9, 4.5),
                        ("t4", "浙B2", 5, 6), ("t5", "浙C3", 1, 2)])
        cov = cover_trips(trips, man, manifest_slack_s=900)
        assert sorted(cov) == ["t1", "t2", "t4"]
        assert [m["manifest_id"] for m in cov["t4"]] == ["M2"]

    def test_empty(self):
        assert cover_trips(_trips([]), pd.DataFrame([manifest("M1", PLATE)]), manifest_slack_s=0) == {}
        assert cover_trips(_trips([("t1", PLATE, 1, 2)]), pd.DataFrame(), manifest_slack_s=0) == {}


def _audit(*trucks, manifests, vehicles=None):
    return audit(dataset(points_frame(*trucks), manifests, vehicles=vehicles)).alerts


class TestManifestAlerts:
    def test_unmanifested_trip(self):
        a = normal_trip(Truck(PLATE, seed=41))
        alerts = _audit(a, manifests=[manifest("M9", "浙Z99999")])
        assert alerts["kind"].tolist() == ["unmanifested_trip"]
        assert alerts["site_id"].iloc[0] == "D1"

    def test_manifest_outside_the_trip_time_does_not_cover(self):
        a = normal_trip(Truck(PLATE, seed=42))
        alerts = _audit(a, manifests=[manifest("M1", PLATE, start_h=5, end_h=9)])
        assert alerts["kind"].tolist() == ["unmanifested_trip"]

    def test_plate_written_differently_still_matches(self):
        a = normal_trip(Truck(PLATE, seed=43))
        m = manifest("M1", "浙a 00001")
        assert _audit(a, manifests=[m]).empty

    def test_wrong_disposal(self):
        a = normal_trip(Truck(PLATE, seed=44))
        alerts = _audit(a, manifests=[manifest("M1", PLATE, disposal="D2", route=None)])
        assert alerts["kind"].tolist() == ["wrong_disposal"]
        row = alerts.iloc[0]
        assert (row["manifest_id"], row["site_id"]) == ("M1", "D1")
        # window = the unloading visit (gate queue + unloading), not the whole trip
        assert (row["end"] - row["start"]).total_seconds() == pytest.approx(1000, abs=60)

    def test_any_covering_manifest_naming_the_site_clears_it(self):
        a = normal_trip(Truck(PLATE, seed=45))
        ms = [manifest("M1", PLATE, disposal="D2", route=None), manifest("M2", PLATE, disposal="D1")]
        assert _audit(a, manifests=ms).empty

    def test_manifest_not_executed(self):
        a = normal_trip(Truck(PLATE, seed=46))
        a.drive(0, -2000).dwell(4 * 3600)
        b = Truck("浙B00002", seed=47).dwell(5 * 3600)   # stays in the depot
        ms = [manifest("M1", PLATE, start_h=0, end_h=3), manifest("M2", "浙B00002", start_h=0, end_h=3),
              manifest("M3", "浙B00002", start_h=0, end_h=12)]   # ends after the data: not judged
        alerts = _audit(a, b, manifests=ms)
        assert alerts["kind"].tolist() == ["manifest_not_executed"]
        row = alerts.iloc[0]
        assert (row["manifest_id"], row["vehicle_id"], row["severity"]) == ("M2", "浙B00002", "low")
        assert row["start"] == T0 and row["end"] == T0 + pd.Timedelta(hours=3)


class TestUnregistered:
    def test_missing_and_false_are_alerts_registered_is_not(self):
        trucks = [normal_trip(Truck(p, seed=50 + k)) for k, p in enumerate(["浙A00001", "浙B00002", "浙C00003"])]
        ms = [manifest(f"M{k}", t.plate) for k, t in enumerate(trucks)]
        vehicles = [("浙A00001", True), ("浙B00002", False)]
        alerts = _audit(*trucks, manifests=ms, vehicles=vehicles)
        assert alerts["kind"].tolist() == ["unregistered_vehicle"] * 2
        assert sorted(alerts["vehicle_id"]) == ["浙B00002", "浙C00003"]
        row = alerts[alerts["vehicle_id"] == "浙C00003"].iloc[0]
        assert row["end"] > row["start"]

    def test_no_registry_no_alert(self):
        a = normal_trip(Truck("浙C00003", seed=60))
        assert _audit(a, manifests=[manifest("M1", "浙C00003")], vehicles=None).empty


class TestUnregisteredEnds:
    def test_the_alert_ends_at_the_days_last_unloading_of_that_vehicle(self):
        h = pd.Timedelta(hours=1)
        loadings = pd.DataFrame({
            "vehicle_id": ["浙B2", "浙B2", "浙C3"], "vehicle_key": ["浙B2", "浙B2", "浙C3"],
            "start": [T0 + 1 * h, T0 + 3 * h, T0 + 2 * h], "end": [T0 + 1.5 * h, T0 + 3.5 * h, T0 + 2.5 * h],
            "lon": [120.0, 120.1, 120.2], "lat": [30.0, 30.1, 30.2],
        })
        trips = pd.DataFrame({
            "vehicle_key": ["浙B2", "浙B2", "浙C3", "浙A1"], "status": ["delivered", "delivered", "dumped", "delivered"],
            "start": [T0 + 1 * h, T0 + 3 * h, T0 + 2 * h, T0 + 1 * h],
            "end": [T0 + 2 * h, T0 + 5 * h, T0 + 9 * h, T0 + 9 * h],
        })
        vehicles = pd.DataFrame({"vehicle_key": ["浙B2", "浙A1"], "registered": [False, True]})
        rows = unregistered_alerts(trips, loadings, vehicles, timezone="Asia/Shanghai")
        got = {r["vehicle_key"]: (r["start"], r["end"], r["evidence"]["loads"]) for r in rows.to_dict("records")}
        # 浙B2: its last delivered trip ends at +5 h; 浙C3 delivered nothing: its loading's end
        assert got == {"浙B2": (T0 + 1 * h, T0 + 5 * h, 2), "浙C3": (T0 + 2 * h, T0 + 2.5 * h, 1)}
