"""Tests for haulwatch.ingest.registry (sites, routes, vehicles, dataset.toml)."""

import json
import math

import pandas as pd
import pytest

from haulwatch.ingest.registry import read_routes, read_settings, read_sites, read_vehicles
from haulwatch.ingest.rejects import SchemaError


def square(x0, y0, d=0.01):
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]}


def feature(props, geom):
    return {"type": "Feature", "properties": props, "geometry": geom}


def write_fc(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}),
                    encoding="utf-8")
    return path


class TestSettings:
    def test_defaults_without_file(self, tmp_path):
        s = read_settings(tmp_path)
        assert (s.coord_system, s.timezone) == ("wgs84", "Asia/Shanghai")

    def test_values_and_forgiving_names(self, tmp_path):
        (tmp_path / "dataset.toml").write_text('coord_system = "GCJ-02"\ntimezone = "UTC"\n')
        s = read_settings(tmp_path)
        assert (s.coord_system, s.timezone) == ("gcj02", "UTC")

    def test_unknown_coord_system_names_allowed_ones(self, tmp_path):
        (tmp_path / "dataset.toml").write_text('coord_system = "cgcs2000"\n')
        with pytest.raises(SchemaError, match=r"coord_system 'cgcs2000'.*'wgs84', 'gcj02', 'bd09'"):
            read_settings(tmp_path)

    def test_unknown_timezone(self, tmp_path):
        (tmp_path / "dataset.toml").write_text('timezone = "Mars/Olympus"\n')
        with pytest.raises(SchemaError, match=r"timezone 'Mars/Olympus'"):
            read_settings(tmp_path)

    def test_bad_toml(self, tmp_path):
        (tmp_path / "dataset.toml").write_text("coord_system = \n")
        with pytest.raises(SchemaError, match=r"not valid TOML"):
            read_settings(tmp_path)


    def test_misspelt_key_names_the_known_one(self, tmp_path):
        (tmp_path / "dataset.toml").write_text('coord-system = "gcj02"\n')
        with pytest.raises(SchemaError, match=r"unknown key 'coord-system'; did you mean "
                                              r"'coord_system'\?"):
            read_settings(tmp_path)

    def test_other_keys_listed(self, tmp_path):
        (tmp_path / "dataset.toml").write_text('producer = "x"\ntimezone = "UTC"\n')
        s = read_settings(tmp_path)
        assert (s.timezone, s.unknown_keys) == ("UTC", ("producer",))

    @pytest.mark.parametrize("text", ["coord_system = 84\n", "timezone = 8\n",
                                      "coord_system = ['wgs84']\n"])
    def test_values_must_be_strings(self, tmp_path, text):
        (tmp_path / "dataset.toml").write_text(text)
        with pytest.raises(SchemaError, match=r"dataset\.toml: (coord_system|timezone) .* must "
                                              r"be a string"):
            read_settings(tmp_path)


class TestSites:
    def test_good_and_bad_features(self, tmp_path):
        bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
        feats = [
            feature({"site_id": "O1", "kind": "origin", "name": "工地",
                     "permit_from": "2024-01-01", "permit_to": "2024-06-30"}, square(121, 31)),
            feature({"site_id": "D1", "kind": "Disposal"}, square(121.1, 31)),           # 1 ok
            feature({"kind": "origin"}, square(121.2, 31)),                              # 2
            feature({"site_id": "O1", "kind": "origin"}, square(121.3, 31)),             # 3
            feature({"site_id": "X1", "kind": "quarry"}, square(121.4, 31)),             # 4
            feature({"site_id": "P1", "kind": "depot"},
                    {"type": "Point", "coordinates": [121, 31]}),                        # 5
            feature({"site_id": "B1", "kind": "depot"}, bowtie),                         # 6 fixed
            feature({"site_id": "T1", "kind": "origin", "permit_from": "soon"},
                    square(121.5, 31)),                                                  # 7
            feature({"site_id": "T2", "kind": "origin", "permit_from": "2024-05-01",
                     "permit_to": "2024-04-01"}, square(121.6, 31)),                     # 8
            feature({"site_id": "N1", "kind": "nest"}, None),                            # 9
            feature({"site_id": "M1", "kind": "depot"}, square(13_470_000, 3_600_000, 500)),  # 10
        ]
        res = read_sites(write_fc(tmp_path / "sites.geojson", feats))
        assert res.rows_read == 11
        assert res.frame["site_id"].tolist() == ["O1", "D1", "B1"]
        assert res.frame["kind"].tolist() == ["origin", "disposal", "depot"]
        assert res.frame.crs.to_epsg() == 4326
        assert res.frame.geometry.is_valid.all()
        rej = res.rejects.set_index("row")
        assert rej.loc[2, "field"] == "site_id"
        assert "duplicate site_id" in rej.loc[3, "reason"]
        assert rej.loc[4, "field"] == "kind" and "origin, disposal" in rej.loc[4, "reason"]
        assert "Polygon or MultiPolygon" in rej.loc[5, "reason"]
        assert rej.loc[7, "field"] == "permit_from"
        assert "before permit_from" in rej.loc[8, "reason"]
        assert "no geometry" in rej.loc[9, "reason"]
        assert "not projected metres" in rej.loc[10, "reason"]
        assert set(res.rejects["action"]) == {"row_dropped"}

    def test_permit_dates_are_local_days(self, tmp_path):
        feats = [feature({"site_id": "O1", "kind": "origin", "permit_from": "2024-01-01",
                          "permit_to": "2024-06-30"}, square(121, 31))]
        site = read_sites(write_fc(tmp_path / "sites.geojson", feats)).frame.iloc[0]
        # Asia/Shanghai: the permit runs from local midnight to the end of its last day
        assert site["permit_from"] == pd.Timestamp("2023-12-31T16:00:00Z")
        assert site["permit_to"] == pd.Timestamp("2024-06-30T16:00:00Z")

    def test_not_a_feature_collection(self, tmp_path):
        (tmp_path / "sites.geojson").write_text('{"type": "Polygon", "coordinates": []}')
        with pytest.raises(SchemaError, match=r"expected a GeoJSON FeatureCollection"):
            read_sites(tmp_path / "sites.geojson")

    @pytest.mark.parametrize(("geom", "reason"), [
        ("POLYGON((0 0, 1 0, 1 1, 0 0))", "geometry must be a GeoJSON object, got str"),
        ({"coordinates": [[[121, 31], [121.1, 31], [121.1, 31.1], [121, 31]]]},
         "geometry has no 'type'"),
        ({"type": "Polygon", "coordinates": [[[121, 31], [121.01, 31], [121, 31]]]},
         "invalid polygon that make_valid cannot repair"),
        ({"type": "GeometryCollection", "geometries": [square(121, 31)]},
         "geometry must be a Polygon or MultiPolygon"),
        (None, "feature has no geometry"),
    ])
    def test_unreadable_geometry_is_rejected_with_a_reason(self, tmp_path, geom, reason):
        feats = [feature({"site_id": "X", "kind": "depot"}, geom),
                 feature({"site_id": "O1", "kind": "origin"}, square(121, 31))]
        res = read_sites(write_fc(tmp_path / "sites.geojson", feats))
        assert res.frame["site_id"].tolist() == ["O1"]
        assert res.rejects[["row", "field"]].values.tolist() == [[0, "geometry"]]
        assert res.rejects["reason"].iloc[0].startswith(reason)

    def test_empty_collection(self, tmp_path):
        res = read_sites(write_fc(tmp_path / "sites.geojson", []))
        assert len(res.frame) == 0
        assert list(res.frame.columns) == ["site_id", "kind", "name", "permit_from", "permit_to",
                                           "declared_volume_m3", "geometry"]

    def test_declared_volume_is_optional_and_bad_values_are_cleared(self, tmp_path):
        sq = {"type": "Polygon", "coordinates": [[[0, 0], [0.01, 0], [0.01, 0.01], [0, 0.01], [0, 0]]]}
        feats = [{"type": "Feature", "geometry": sq, "properties": {"site_id": sid, "kind": "origin", **p}}
                 for sid, p in [("A", {"declared_volume_m3": 1200}), ("B", {}),
                                ("C", {"declared_volume_m3": "lots"}), ("D", {"declared_volume_m3": -5})]]
        res = read_sites(write_fc(tmp_path / "sites.geojson", feats))
        vol = dict(zip(res.frame["site_id"], res.frame["declared_volume_m3"], strict=True))
        assert vol["A"] == 1200.0
        assert all(math.isnan(vol[k]) for k in "BCD")  # the sites stay, the value goes
        assert sorted(res.rejects["value"].astype(str)) == ["-5", "lots"]
        assert set(res.rejects["action"]) == {"value_cleared"}


class TestRoutes:
    def test_routes(self, tmp_path):
        line = {"type": "LineString", "coordinates": [[121, 31], [121.1, 31]]}
        joined = {"type": "MultiLineString",
                  "coordinates": [[[121, 31], [121.05, 31]], [[121.05, 31], [121.1, 31]]]}
        apart = {"type": "MultiLineString",
                 "coordinates": [[[121, 31], [121.05, 31]], [[121.06, 31], [121.1, 31]]]}
        base = {"origin_site_id": "O1", "disposal_site_id": "D1"}
        feats = [
            feature({"route_id": "R1", **base, "corridor_m": 80}, line),
            feature({"route_id": "R2", **base}, joined),
            feature({"route_id": "R3", **base}, apart),                         # 2
            feature({**base}, line),                                            # 3
            feature({"route_id": "R4", "origin_site_id": "O1"}, line),          # 4
            feature({"route_id": "R5", **base, "disposal_site_id": "D9"}, line),  # 5
            feature({"route_id": "R6", **base}, square(121, 31)),               # 6
            feature({"route_id": "R1", **base}, line),                          # 7
            feature({"route_id": "R7", **base, "corridor_m": "wide"}, line),    # 8 cleared
        ]
        res = read_routes(write_fc(tmp_path / "routes.geojson", feats), site_ids=["O1", "D1"])
        assert res.frame["route_id"].tolist() == ["R1", "R2", "R7"]
        assert (res.frame.geom_type == "LineString").all()
        assert res.frame["corridor_m"].iloc[0] == 80
        assert pd.isna(res.frame["corridor_m"].iloc[2])
        rej = res.rejects.set_index("row")
        assert "do not join" in rej.loc[2, "reason"]
        assert rej.loc[3, "field"] == "route_id"
        assert rej.loc[4, "field"] == "disposal_site_id"
        assert "not found in sites" in rej.loc[5, "reason"]
        assert "LineString" in rej.loc[6, "reason"]
        assert "duplicate route_id" in rej.loc[7, "reason"]
        assert rej.loc[8, "action"] == "value_cleared"


def _without_capacity(folder):
    (folder / "v2.csv").write_text("vehicle_id\nA1\n", encoding="utf-8")
    return folder / "v2.csv"


class TestVehicles:
    def test_vehicles(self, tmp_path):
        (tmp_path / "vehicles.csv").write_text(
            "vehicle_id,company,registered\n"
            "浙F·A1234,Acme,true\n"
            "浙FB0001,Acme,FALSE\n"
            ",Acme,true\n"              # 3 missing id
            "浙f a1234,Other,true\n"    # 4 same plate as row 1
            "浙FC0002,Acme,maybe\n",    # 5 unreadable registered
            encoding="utf-8")
        res = read_vehicles(tmp_path / "vehicles.csv")
        f = res.frame
        assert f["vehicle_key"].tolist() == ["浙FA1234", "浙FB0001", "浙FC0002"]
        assert f["registered"].tolist() == [True, False, False]
        assert f["registered"].dtype == bool
        rej = res.rejects.set_index("row")
        assert rej.loc[3, "reason"] == "missing vehicle_id"
        assert "row 1" in rej.loc[4, "reason"]
        assert rej.loc[5, "action"] == "value_cleared"

    def test_capacity_is_optional_and_bad_values_are_cleared(self, tmp_path):
        (tmp_path / "vehicles.csv").write_text(
            "vehicle_id,capacity_m3\nA1,18.5\nB2,\nC3,big\nD4,0\n", encoding="utf-8")
        res = read_vehicles(tmp_path / "vehicles.csv")
        cap = res.frame["capacity_m3"].tolist()
        assert cap[0] == 18.5
        assert all(math.isnan(c) for c in cap[1:])
        assert len(res.frame) == 4  # the trucks stay, the value goes
        assert res.rejects.set_index("row").loc[[3, 4], "action"].tolist() == ["value_cleared"] * 2
        assert math.isnan(read_vehicles(_without_capacity(tmp_path)).frame["capacity_m3"][0])

    def test_without_registered_column_all_registered(self, tmp_path):
        (tmp_path / "vehicles.csv").write_text("vehicle_id\nA1\nB2\n")
        assert read_vehicles(tmp_path / "vehicles.csv").frame["registered"].all()

    def test_missing_column(self, tmp_path):
        (tmp_path / "vehicles.csv").write_text("plate\nA1\n")
        with pytest.raises(SchemaError, match=r"vehicles.csv: missing required column.*vehicle_id"):
            read_vehicles(tmp_path / "vehicles.csv")


class TestVehicleLimits:
    def test_plates_over_the_limit_are_rejected_and_do_not_shadow_a_good_row(self, tmp_path):
        long_plate = "浙F·A1234" + "X" * 13                      # 21 characters
        (tmp_path / "vehicles.csv").write_text(
            "vehicle_id,registered\n"
            f"{long_plate},true\n"                                # 1 refused: too long
            "LSVAU2180N2183294,true\n"                            # 2 a VIN fits
            f"浙FA1234{'X' * 13},true\n",                         # 3 same key as 1 but 20 chars
            encoding="utf-8")
        res = read_vehicles(tmp_path / "vehicles.csv")
        assert res.frame["vehicle_id"].tolist() == ["LSVAU2180N2183294", "浙FA1234" + "X" * 13]
        assert res.rejects[["row", "field", "action"]].values.tolist() == [
            [1, "vehicle_id", "row_dropped"]]
        assert res.rejects["reason"].iloc[0].startswith("too long for a plate: 21 characters")
