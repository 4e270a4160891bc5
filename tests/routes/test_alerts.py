"""Tests for haulwatch.routes.alerts: the alerts frame, ids, writers and reader."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import shapely

from haulwatch.routes.alerts import (
    ALERT_COLUMNS,
    KINDS,
    SEVERITIES,
    AlertSchemaError,
    alert_id_for,
    make_alerts,
    read_alerts,
    write_alerts,
)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": ["illegal_dump", "route_deviation", "dump_hotspot", "gps_gap"],
            "vehicle_id": ["浙F·A1234", "浙FA1235", None, "浙F A1234"],
            "start": [
                pd.Timestamp("2026-03-01 10:00:05", tz="Asia/Shanghai"),
                pd.Timestamp("2026-03-01T01:00:00Z"),
                pd.Timestamp("2026-03-01T03:00:00Z"),
                pd.Timestamp("2026-03-01T00:30:00Z"),
            ],
            "end": [
                pd.Timestamp("2026-03-01 10:10:00", tz="Asia/Shanghai"),
                pd.Timestamp("2026-03-01T01:05:00Z"),
                pd.NaT,
                pd.Timestamp("2026-03-01T00:45:00Z"),
            ],
            "severity": ["high", "medium", "high", "medium"],
            "manifest_id": ["M1", None, None, ""],
            "site_id": [None, "S2", None, None],
            "trip_id": ["T1", "T2", None, "T3"],
            "summary": ["Loaded truck stopped", "Left corridor", "Three trucks", "Dark 15 min"],
            "lon": [120.1, np.nan, 120.3, 120.4],
            "lat": [30.1, np.nan, 30.3, 30.4],
            "evidence": [
                {"duration_s": np.float64(540.0), "at": pd.Timestamp("2026-03-01T02:00:00Z")},
                None,
                {"vehicles": 3, "nan": float("nan")},
                '{"gap_s": 900}',
            ],
            "geometry": [
                None,
                shapely.LineString([(120.2, 30.2), (120.21, 30.21), (120.22, 30.2)]),
                None,
                shapely.Point(120.4, 30.4),
            ],
        }
    )


class TestMakeAlerts:
    def test_columns_dtypes_and_crs(self):
        alerts = make_alerts(_frame())
        assert tuple(alerts.columns) == ALERT_COLUMNS
        assert str(alerts["start"].dtype) == "datetime64[ns, UTC]"
        assert str(alerts["end"].dtype) == "datetime64[ns, UTC]"
        assert alerts.crs.to_epsg() == 4326
        assert list(alerts.index) == list(range(4))

    def test_empty_in_empty_out(self):
        empty = _frame().iloc[0:0]
        alerts = make_alerts(empty)
        assert len(alerts) == 0
        assert tuple(alerts.columns) == ALERT_COLUMNS
        assert str(alerts["start"].dtype) == "datetime64[ns, UTC]"
        assert alerts.crs.to_epsg() == 4326

    def test_fills_strings_geometry_and_end(self):
        alerts = make_alerts(_frame()).set_index("kind")
        assert alerts.loc["dump_hotspot", "vehicle_id"] == ""
        assert alerts.loc["route_deviation", "manifest_id"] == ""
        # end missing -> start
        assert alerts.loc["dump_hotspot", "end"] == pd.Timestamp("2026-03-01T03:00:00Z")
        # no geometry -> Point(lon, lat)
        assert alerts.loc["illegal_dump", "geometry"].equals(shapely.Point(120.1, 30.1))
        # lon/lat missing -> first vertex of the line
        assert alerts.loc["route_deviation", ["lon", "lat"]].tolist() == [120.2, 30.2]
        assert alerts.loc["route_deviation", "geometry"].geom_type == "LineString"
        # local time converted to UTC
        assert alerts.loc["illegal_dump", "start"] == pd.Timestamp("2026-03-01T02:00:05Z")

    def test_evidence_is_canonical_json(self):
        alerts = make_alerts(_frame()).set_index("kind")
        ev = json.loads(alerts.loc["illegal_dump", "evidence"])
        assert ev == {"at": "2026-03-01T02:00:00Z", "duration_s": 540.0}
        assert json.loads(alerts.loc["dump_hotspot", "evidence"]) == {"nan": None, "vehicles": 3}
        assert alerts.loc["route_deviation", "evidence"] == "{}"
        assert json.loads(alerts.loc["gps_gap", "evidence"]) == {"gap_s": 900}

    def test_sorted_by_start_kind_vehicle(self):
        alerts = make_alerts(_frame())
        assert alerts["start"].is_monotonic_increasing
        assert list(alerts["kind"]) == [
            "gps_gap",
            "route_deviation",
            "illegal_dump",
            "dump_hotspot",
        ]

    def test_unsorted_input_gives_same_frame(self):
        frame = _frame()
        a = make_alerts(frame)
        b = make_alerts(frame.iloc[::-1].reset_index(drop=True))
        pd.testing.assert_frame_equal(a, b)

    def test_input_left_unchanged(self):
        frame = _frame()
        before = frame.copy(deep=True)
        make_alerts(frame)
        pd.testing.assert_frame_equal(frame, before)

    def test_ids_stable_and_ignore_end(self):
        frame = _frame()
        ids = make_alerts(frame).set_index("kind")["alert_id"]
        later = frame.copy()
        later.loc[0, "end"] = pd.Timestamp("2026-03-01 11:00:00", tz="Asia/Shanghai")
        later.loc[0, "summary"] = "extended"
        ids2 = make_alerts(later).set_index("kind")["alert_id"]
        assert ids["illegal_dump"] == ids2["illegal_dump"]
        assert len(set(ids)) == len(ids)

    def test_ids_use_normalized_plate_and_whole_seconds(self):
        frame = _frame().iloc[[0]].reset_index(drop=True)
        other = frame.copy()
        other["vehicle_id"] = ["浙fa1234"]
        other["start"] = [pd.Timestamp("2026-03-01T02:00:05.400Z")]
        assert make_alerts(frame)["alert_id"][0] == make_alerts(other)["alert_id"][0]
        # a different site makes a different alert
        other["site_id"] = ["S9"]
        assert make_alerts(frame)["alert_id"][0] != make_alerts(other)["alert_id"][0]

    def test_ids_equal_alert_id_for_row_by_row(self):
        frame = _frame()
        alerts = make_alerts(frame)
        for _, row in alerts.iterrows():
            key = "" if row["kind"] == "dump_hotspot" else row["vehicle_id"]
            key = key.replace("·", "").replace(" ", "").upper()
            expected = alert_id_for(
                row["kind"],
                key,
                row["start"],
                row["site_id"],
                row["manifest_id"],
                lon=row["lon"],
                lat=row["lat"],
            )
            assert row["alert_id"] == expected

    def test_id_same_in_a_fresh_process(self):
        expected = alert_id_for(
            "illegal_dump", "浙FA1234", pd.Timestamp("2026-03-01T02:00:05Z"), "", "M1"
        )
        code = (
            "import pandas as pd;from haulwatch.routes.alerts import alert_id_for;"
            "print(alert_id_for('illegal_dump','浙FA1234',"
            "pd.Timestamp('2026-03-01T02:00:05Z'),'','M1'))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "123", "PATH": ""},
        )
        assert out.stdout.strip() == expected

    def test_hotspot_id_by_local_day_and_place(self):
        t = pd.Timestamp("2026-03-01T03:00:00Z")
        a = alert_id_for("dump_hotspot", "", t, lon=120.30001, lat=30.30001)
        b = alert_id_for("dump_hotspot", "", t + pd.Timedelta(hours=2), lon=120.30004, lat=30.29998)
        assert a == b
        # 2026-03-01T17:00Z is 03-02 01:00 in Shanghai: another local day
        c = alert_id_for(
            "dump_hotspot", "", pd.Timestamp("2026-03-01T17:00:00Z"), lon=120.3, lat=30.3
        )
        assert c != a
        d = alert_id_for("dump_hotspot", "", t, lon=120.31, lat=30.3)
        assert d != a

    def test_duplicate_events_get_distinct_ids(self):
        frame = pd.concat([_frame().iloc[[0]]] * 2, ignore_index=True)
        frame.loc[1, "summary"] = "second"
        ids = make_alerts(frame)["alert_id"]
        assert ids.is_unique
        assert ids[1] == ids[0] + "-2"

    def test_two_vehicles_two_ids(self):
        frame = pd.concat([_frame().iloc[[0]]] * 2, ignore_index=True)
        frame.loc[1, "vehicle_id"] = "浙FB9999"
        alerts = make_alerts(frame)
        assert alerts["alert_id"].is_unique
        assert not alerts["alert_id"].str.contains("-2$").any()

    def test_naive_times_are_local(self):
        frame = _frame().iloc[[0]].reset_index(drop=True)
        frame["start"] = ["2026-03-01 10:00:05"]
        frame["end"] = ["2026-03-01 10:10:00"]
        alerts = make_alerts(frame, timezone="Asia/Shanghai")
        assert alerts["start"][0] == pd.Timestamp("2026-03-01T02:00:05Z")
        utc = make_alerts(frame, timezone="UTC")
        assert utc["start"][0] == pd.Timestamp("2026-03-01T10:00:05Z")

    @pytest.mark.parametrize(
        ("column", "value", "match"),
        [
            ("kind", "illegal_parking", r"'kind'.*illegal_parking.*must be one of"),
            ("severity", "critical", r"'severity'.*critical.*must be one of"),
            ("start", "not a time", r"'start'"),
            ("vehicle_id", "", r"'vehicle_id'.*dump_hotspot"),
            ("evidence", "[1, 2]", r"'evidence'"),
            ("lon", 500.0, r"lon.*\[-180, 180\]"),
        ],
    )
    def test_bad_values(self, column, value, match):
        frame = _frame().iloc[[0]].reset_index(drop=True)
        frame[column] = [value]
        with pytest.raises(AlertSchemaError, match=match):
            make_alerts(frame)

    def test_end_before_start(self):
        frame = _frame().iloc[[0]].reset_index(drop=True)
        frame["end"] = [pd.Timestamp("2026-03-01T00:00:00Z")]
        with pytest.raises(ValueError, match=r"'end'.*before start"):
            make_alerts(frame)

    def test_missing_required_column_and_location(self):
        with pytest.raises(AlertSchemaError, match=r"required column.*severity"):
            make_alerts(_frame().drop(columns=["severity"]))
        frame = _frame().iloc[[0]].reset_index(drop=True)
        frame["lon"] = [np.nan]
        with pytest.raises(AlertSchemaError, match="no location"):
            make_alerts(frame)

    def test_constants(self):
        assert len(KINDS) == 9 and "dump_hotspot" in KINDS
        assert SEVERITIES == ("high", "medium", "low")


class TestWriteRead:
    @pytest.mark.parametrize("name", ["alerts.geojson", "alerts.csv"])
    def test_round_trip(self, tmp_path, name):
        alerts = make_alerts(_frame())
        write_alerts(alerts, tmp_path)
        back = read_alerts(tmp_path / name)
        pd.testing.assert_frame_equal(
            pd.DataFrame(alerts.drop(columns="geometry")),
            pd.DataFrame(back.drop(columns="geometry")),
        )
        assert alerts.geometry.geom_equals_exact(back.geometry, 0).all()

    def test_round_trip_empty(self, tmp_path):
        alerts = make_alerts(_frame().iloc[0:0])
        write_alerts(alerts, tmp_path)
        doc = json.loads((tmp_path / "alerts.geojson").read_text(encoding="utf-8"))
        assert doc == {"type": "FeatureCollection", "features": []}
        for name in ("alerts.geojson", "alerts.csv"):
            back = read_alerts(tmp_path / name)
            assert len(back) == 0 and tuple(back.columns) == ALERT_COLUMNS

    def test_geojson_follows_contract(self, tmp_path):
        alerts = make_alerts(_frame())
        write_alerts(alerts, tmp_path)
        doc = json.loads((tmp_path / "alerts.geojson").read_text(encoding="utf-8"))
        assert doc["type"] == "FeatureCollection" and "crs" not in doc
        feats = {f["properties"]["kind"]: f for f in doc["features"]}
        dump = feats["illegal_dump"]
        assert dump["properties"]["start"] == "2026-03-01T02:00:05Z"
        assert dump["properties"]["end"] == "2026-03-01T02:10:00Z"
        assert dump["properties"]["vehicle_id"] == "浙F·A1234"  # as the tracks write it
        assert dump["properties"]["evidence"]["duration_s"] == 540.0
        assert dump["geometry"] == {"type": "Point", "coordinates": [120.1, 30.1]}
        assert feats["route_deviation"]["geometry"]["type"] == "LineString"
        required = {
            "alert_id",
            "kind",
            "vehicle_id",
            "start",
            "end",
            "severity",
            "manifest_id",
            "site_id",
            "summary",
            "trip_id",
            "evidence",
        }
        for feat in doc["features"]:
            assert required <= set(feat["properties"])
            assert feat["id"] == feat["properties"]["alert_id"]

    def test_csv_has_wkt_and_z_times(self, tmp_path):
        write_alerts(make_alerts(_frame()), tmp_path)
        table = pd.read_csv(tmp_path / "alerts.csv", dtype=str, keep_default_na=False)
        assert list(table.columns) == list(ALERT_COLUMNS)
        assert table["start"].str.endswith("Z").all()
        assert table["geometry"].str.startswith(("POINT", "LINESTRING")).all()

    def test_read_folder_and_missing(self, tmp_path):
        with pytest.raises(FileNotFoundError, match=r"alerts\.geojson"):
            read_alerts(tmp_path)
        write_alerts(make_alerts(_frame()), tmp_path)
        assert len(read_alerts(tmp_path)) == 4

    def test_read_foreign_geojson_without_ids(self, tmp_path):
        doc = {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [121.0, 31.0]},
                    "properties": {
                        "kind": "gps_gap",
                        "vehicle_id": "沪A1",
                        "start": "2026-03-01T08:00:00+08:00",
                        "end": "2026-03-01T08:20:00+08:00",
                        "severity": "medium",
                    },
                }
            ],
        }
        path = tmp_path / "x.geojson"
        path.write_text(json.dumps(doc), encoding="utf-8")
        alerts = read_alerts(path)
        assert alerts["alert_id"][0].startswith("GG-")
        assert alerts["start"][0] == pd.Timestamp("2026-03-01T00:00:00Z")
        assert (alerts["lon"][0], alerts["lat"][0]) == (121.0, 31.0)

    def test_read_bad_file(self, tmp_path):
        path = tmp_path / "alerts.geojson"
        path.write_text('{"type": "Feature"}', encoding="utf-8")
        with pytest.raises(AlertSchemaError, match="FeatureCollection"):
            read_alerts(path)
        other = tmp_path / "alerts.txt"
        other.write_text("x", encoding="utf-8")
        with pytest.raises(AlertSchemaError, match=r"suffix '\.txt'"):
            read_alerts(other)


class TestTimeLimits:
    """Times outside 1990..2100 UTC (the limits of every entry point) are a clear schema error."""

    @pytest.mark.parametrize("value", [
        "9999-12-31T23:59:59", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+08:00",
        "2262-04-12T00:00:00Z", "1989-12-31T23:59:59Z", "2100-01-01T00:00:00Z"])
    @pytest.mark.parametrize("field", ["start", "end"])
    def test_text_times_out_of_range(self, field, value):
        frame = _frame().iloc[[0, 1]].reset_index(drop=True).astype({field: object})
        frame.loc[1, field] = value
        with pytest.raises(AlertSchemaError, match=rf"field '{field}': value {re.escape(repr(value))} \(row 1\) "
                                                   r"is outside 1990-01-01T00:00:00Z"):
            make_alerts(frame)

    def test_mixed_offsets_with_year_one_are_not_shifted_into_the_range(self):
        # pandas silently turned this into 1972-12-31 when another row had another offset
        frame = _frame().iloc[[0, 1]].reset_index(drop=True)
        frame["start"] = ["0001-01-01T00:00:00+08:00", "2026-03-01T01:00:00Z"]
        frame["end"] = [None, None]
        with pytest.raises(AlertSchemaError, match=r"'start'.*row 0.*outside"):
            make_alerts(frame)

    def test_datetime_column_out_of_range(self):
        frame = _frame().iloc[[0]].reset_index(drop=True)
        frame["start"] = pd.Series([pd.Timestamp("1980-01-01T00:00:00Z")])
        frame["end"] = [pd.NaT]
        with pytest.raises(AlertSchemaError, match=r"'start'.*row 0.*outside"):
            make_alerts(frame)

    def test_edges_are_kept(self):
        frame = _frame().iloc[[0, 1]].reset_index(drop=True)
        frame["start"] = ["1990-01-01T00:00:00Z", "2099-12-31T23:59:59Z"]
        frame["end"] = [None, None]
        alerts = make_alerts(frame)
        assert sorted(alerts["start"]) == [pd.Timestamp("1990-01-01T00:00:00Z"),
                                           pd.Timestamp("2099-12-31T23:59:59Z")]

    def test_read_alerts_file_with_year_9999(self, tmp_path):
        write_alerts(make_alerts(_frame()), tmp_path)
        path = tmp_path / "alerts.geojson"
        doc = json.loads(path.read_text(encoding="utf-8"))
        doc["features"][2]["properties"]["end"] = "9999-12-31T23:59:59Z"
        path.write_text(json.dumps(doc), encoding="utf-8")
        with pytest.raises(AlertSchemaError, match=r"field 'end': value '9999-12-31T23:59:59Z' "
                                                   r"\(row 2\) is outside"):
            read_alerts(path)
