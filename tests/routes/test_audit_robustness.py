"""Odd but legal (or plainly broken) datasets through the whole audit and the CLI.

Each case asserts a clear outcome: either a ``SchemaError`` naming the file and
the field, or a clean audit whose counts add up (every track row is kept,
dropped with a reject, or counted as a duplicate).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from haulwatch.api.cli import main
from haulwatch.geo.chinacoords import to_wgs84
from haulwatch.ingest.rejects import SchemaError
from haulwatch.routes.audit import audit_folder

T0 = 1714521600  # 2024-05-01T00:00:00Z
HEADER = "vehicle_id,time,lon,lat,speed_kmh,load\n"
MANIFEST_HEADER = "manifest_id,vehicle_id,origin_site_id,disposal_site_id,valid_from,valid_to\n"


# --------------------------------------------------------------------------- a small world


def square(x0: float, y0: float, d: float = 0.01) -> dict:
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]}


def site(site_id: str, kind: str, geometry: dict | None) -> dict:
    return {"type": "Feature", "properties": {"site_id": site_id, "kind": kind},
            "geometry": geometry}


def route(lon0: float, lat0: float, coords: list | None = None) -> dict:
    coords = coords or [[lon0 + 0.005, lat0 + 0.005], [lon0 + 0.105, lat0 + 0.005]]
    return {"type": "Feature",
            "properties": {"route_id": "R1", "origin_site_id": "O1", "disposal_site_id": "D1"},
            "geometry": {"type": "LineString", "coordinates": coords}}


def haul(plate: str, lon0: float, lat0: float, start: int, *, step_s: int = 30,
         dark_s: int = 0) -> list[tuple]:
    """Load 5 min in the origin, drive 0.1° east, unload 5 min in the disposal site."""
    rows, t = [], start
    for _ in range(6):
        rows.append((plate, t, lon0 + 0.005, lat0 + 0.005, 0, "full"))
        t += 60
    for i in range(40):
        rows.append((plate, t, lon0 + 0.005 + 0.1 * (i + 1) / 41, lat0 + 0.005, 40, "full"))
        t += step_s + (dark_s if i == 20 else 0)
    for _ in range(6):
        rows.append((plate, t, lon0 + 0.105, lat0 + 0.005, 0, "empty"))
        t += 60
    return rows


def csv_text(rows: list[tuple]) -> str:
    return HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows)


def write_dataset(path: Path, *, lon0: float = 121.0, lat0: float = 31.0,
                  tracks: str | bytes | None = None, sites: list | None = None,
                  routes: list | None = None, manifests: str | None = None,
                  vehicles: bool = True, toml: str | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if sites is None:
        sites = [site("O1", "origin", square(lon0, lat0)),
                 site("D1", "disposal", square(lon0 + 0.1, lat0))]
    if routes is None:
        routes = [route(lon0, lat0)]
    (path / "sites.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                    "features": sites}))
    (path / "routes.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                     "features": routes}))
    if manifests is None:
        manifests = MANIFEST_HEADER + "M1,浙A00001,O1,D1,2024-05-01T07:00:00,2024-05-01T18:00:00\n"
    (path / "manifests.csv").write_text(manifests, encoding="utf-8")
    if vehicles:
        (path / "vehicles.csv").write_text("vehicle_id,company,registered\n浙A00001,Acme,true\n",
                                           encoding="utf-8")
    if tracks is None:
        tracks = csv_text(haul("浙A00001", lon0, lat0, T0)
                          + haul("浙B00002", lon0, lat0, T0 + 3600))
    if isinstance(tracks, bytes):
        (path / "tracks.csv").write_bytes(tracks)
    elif tracks != "<absent>":
        (path / "tracks.csv").write_text(tracks, encoding="utf-8")
    if toml is not None:
        (path / "dataset.toml").write_text(toml, encoding="utf-8")
    return path


def accounted(result) -> dict:
    """Check the row accounting of the tracks file; return the summary."""
    s = result.summary
    rej = result.rejects
    tracks_rej = rej[rej["file"].isin(["tracks.csv", "tracks.parquet"])]
    dropped = int((tracks_rej["action"] == "row_dropped").sum())
    assert s["points_read"] == s["points_kept"] + dropped + s["duplicates_dropped"]
    # each dropped row is dropped once
    assert not tracks_rej.loc[tracks_rej["action"] == "row_dropped", "row"].duplicated().any()
    assert s["rows_rejected"] == len(rej)
    return s


# --------------------------------------------------------------------------- tracks shapes


class TestTracksShapes:
    def test_header_only_is_a_clean_empty_audit(self, tmp_path):
        s = accounted(audit_folder(write_dataset(tmp_path / "ds", tracks=HEADER)))
        # no data coverage at all: nothing can be judged, not even the manifest
        assert (s["points_read"], s["points_kept"], s["alerts_total"]) == (0, 0, 0)

    def test_zero_byte_tracks_names_the_file(self, tmp_path):
        with pytest.raises(SchemaError, match=r"tracks\.csv: the file is empty"):
            audit_folder(write_dataset(tmp_path / "ds", tracks=b""))

    def test_whitespace_only_tracks_names_the_file(self, tmp_path):
        with pytest.raises(SchemaError, match=r"tracks\.csv: the file is empty"):
            audit_folder(write_dataset(tmp_path / "ds", tracks=b"\r\n  \n"))

    def test_header_without_required_column_names_it(self, tmp_path):
        with pytest.raises(SchemaError, match=r"tracks\.csv: missing required column\(s\) lat"):
            audit_folder(write_dataset(tmp_path / "ds", tracks="vehicle_id,time,lon\nA,1,2\n"))

    def test_no_good_rows(self, tmp_path):
        text = HEADER + "浙A1,bad,121,31,,\n,,,,,\n浙A1,2024-05-01T08:00:00,abc,31,,\n"
        result = audit_folder(write_dataset(tmp_path / "ds", tracks=text))
        s = accounted(result)
        assert (s["points_read"], s["points_kept"]) == (3, 0)
        assert sorted(result.rejects["row"]) == [1, 2, 3]
        assert set(result.rejects["field"]) == {"time", "vehicle_id", "lon"}

    def test_nothing_valid_anywhere_still_reports_the_rejects(self, tmp_path):
        # no good row, no site, no route: nothing to measure, but the rejects must come out
        folder = write_dataset(tmp_path / "ds", tracks=HEADER + "浙A1,bad,121,31,,\n",
                               sites=[], routes=[], manifests=MANIFEST_HEADER)
        result = audit_folder(folder)
        s = accounted(result)
        assert (s["points_read"], s["points_kept"], s["alerts_total"]) == (1, 0, 0)
        assert result.rejects[["file", "row", "field"]].values.tolist() == [
            ["tracks.csv", 1, "time"]]

    def test_one_single_point(self, tmp_path):
        text = HEADER + "浙A00001,2024-05-01T08:00:00,121.005,31.005,0,full\n"
        s = accounted(audit_folder(write_dataset(tmp_path / "ds", tracks=text)))
        assert (s["points_read"], s["points_kept"], s["vehicles"]) == (1, 1, 1)

    def test_one_vehicle_only(self, tmp_path):
        text = csv_text(haul("浙A00001", 121.0, 31.0, T0 + 8 * 3600))
        s = accounted(audit_folder(write_dataset(tmp_path / "ds", tracks=text)))
        assert s["vehicles"] == 1
        assert s["trips"] == 1
        assert s["alerts_total"] == 0  # manifested, registered, on its route

    def test_vehicle_with_one_point_beside_a_normal_one(self, tmp_path):
        text = csv_text([*haul("浙A00001", 121.0, 31.0, T0),
                         ("浙C00003", T0 + 600, 121.05, 31.05, 0, "empty")])
        s = accounted(audit_folder(write_dataset(tmp_path / "ds", tracks=text)))
        assert s["vehicles"] == 2

    def test_all_points_at_one_time(self, tmp_path):
        rows = [(f"浙A0000{1 + i % 2}", T0, 121.005 + 0.001 * i, 31.005, 0, "full")
                for i in range(6)]
        s = accounted(audit_folder(write_dataset(tmp_path / "ds", tracks=csv_text(rows))))
        assert (s["points_kept"], s["duplicates_dropped"]) == (2, 4)

    def test_data_spanning_years(self, tmp_path):
        rows = [("浙A00001", T0 - 400 * 86400 + i * 86400 * 100, 121.005, 31.005, 0, "full")
                for i in range(10)]
        s = accounted(audit_folder(write_dataset(tmp_path / "ds", tracks=csv_text(rows))))
        assert s["points_kept"] == 10
        assert pd.Timestamp(s["data_end"]) - pd.Timestamp(s["data_start"]) > pd.Timedelta(
            days=800)


# --------------------------------------------------------------------------- registries


class TestSitesAndRoutes:
    def test_zero_sites_audits_with_load_sensor(self, tmp_path):
        # no site at all: loaded stops are suspicious, the audit must not crash
        folder = write_dataset(tmp_path / "ds", sites=[], routes=[], manifests=MANIFEST_HEADER)
        s = accounted(audit_folder(folder))
        assert s["points_kept"] == 104
        assert set(s["alerts_by_kind"]) <= {"illegal_dump", "unregistered_vehicle",
                                             "gps_gap", "dump_hotspot"}

    def test_zero_sites_and_a_dark_spell_while_loaded(self, tmp_path):
        text = csv_text(haul("浙A00001", 121.0, 31.0, T0, dark_s=1800))
        folder = write_dataset(tmp_path / "ds", tracks=text, sites=[], routes=[],
                               manifests=MANIFEST_HEADER)
        s = accounted(audit_folder(folder))
        assert s["alerts_by_kind"].get("gps_gap") == 1

    @pytest.mark.parametrize("bad", [
        pytest.param(None, id="no-geometry"),
        pytest.param({"type": "GeometryCollection", "geometries": [square(121.3, 31.0)]},
                     id="geometry-collection"),
        pytest.param({"type": "Point", "coordinates": [121.3, 31.0]}, id="point"),
        pytest.param({"type": "Polygon", "coordinates": [[[500000, 3400000], [500100, 3400000],
                                                          [500100, 3400100], [500000, 3400000]]]},
                     id="projected-metres"),
    ])
    def test_a_bad_site_feature_is_rejected_with_its_index(self, tmp_path, bad):
        sites = [site("O1", "origin", square(121.0, 31.0)),
                 site("D1", "disposal", square(121.1, 31.0)), site("X", "depot", bad)]
        result = audit_folder(write_dataset(tmp_path / "ds", sites=sites))
        s = accounted(result)
        rej = result.rejects
        assert rej[["file", "row", "field"]].values.tolist() == [["sites.geojson", 2, "geometry"]]
        assert s["alerts_by_kind"] == {"unmanifested_trip": 1}

    def test_self_intersecting_polygon_is_repaired(self, tmp_path):
        bowtie = {"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.01, 31.01],
                                                      [121.01, 31.0], [121.0, 31.01],
                                                      [121.0, 31.0]]]}
        sites = [site("O1", "origin", bowtie), site("D1", "disposal", square(121.1, 31.0))]
        result = audit_folder(write_dataset(tmp_path / "ds", sites=sites))
        accounted(result)
        assert len(result.rejects) == 0
        assert len(result.sites) == 2 and result.sites.geometry.is_valid.all()

    def test_holes_and_multipolygon(self, tmp_path):
        with_hole = {"type": "Polygon", "coordinates": [
            square(121.0, 31.0)["coordinates"][0],
            [[121.0070, 31.0070], [121.0090, 31.0070], [121.0090, 31.0090], [121.0070, 31.0070]]]}
        multi = {"type": "MultiPolygon", "coordinates": [square(121.1, 31.0)["coordinates"],
                                                         square(121.3, 31.0)["coordinates"]]}
        sites = [site("O1", "origin", with_hole), site("D1", "disposal", multi)]
        result = audit_folder(write_dataset(tmp_path / "ds", sites=sites))
        s = accounted(result)
        assert len(result.rejects) == 0
        assert s["trips"] == 2

    def test_single_point_route_is_rejected_and_audit_goes_on(self, tmp_path):
        routes = [route(121.0, 31.0, coords=[[121.005, 31.005]])]
        result = audit_folder(write_dataset(tmp_path / "ds", routes=routes))
        s = accounted(result)
        rej = result.rejects
        assert rej[["file", "row", "field"]].values.tolist() == [["routes.geojson", 0, "geometry"]]
        assert s["trips"] == 2


class TestManifests:
    def test_manifest_of_an_unknown_vehicle(self, tmp_path):
        text = MANIFEST_HEADER + "M9,沪Z99999,O1,D1,2024-05-01T07:00:00,2024-05-01T18:00:00\n"
        result = audit_folder(write_dataset(tmp_path / "ds", manifests=text))
        s = accounted(result)
        assert len(result.rejects) == 0  # a legal manifest: kept, not refused
        # a truck without any GPS point cannot be judged; both tracked trips lack a manifest
        assert s["alerts_by_kind"] == {"unmanifested_trip": 2}

    def test_header_only_manifests(self, tmp_path):
        s = accounted(audit_folder(write_dataset(tmp_path / "ds", manifests=MANIFEST_HEADER)))
        assert s["alerts_by_kind"]["unmanifested_trip"] == 2

    def test_zero_byte_manifests_names_the_file(self, tmp_path):
        with pytest.raises(SchemaError, match=r"manifests\.csv: the file is empty"):
            audit_folder(write_dataset(tmp_path / "ds", manifests=""))


class TestDatasetToml:
    def test_malformed_toml(self, tmp_path):
        with pytest.raises(SchemaError, match=r"dataset\.toml: not valid TOML"):
            audit_folder(write_dataset(tmp_path / "ds", toml="coord_system = \n"))

    def test_unknown_coord_system(self, tmp_path):
        with pytest.raises(SchemaError, match=r"dataset\.toml: coord_system 'utm'.*'wgs84'"):
            audit_folder(write_dataset(tmp_path / "ds", toml="coord_system = 'utm'\n"))

    def test_misspelt_key_is_refused(self, tmp_path):
        # a typo like 'timzone' would otherwise silently fall back to the default zone
        with pytest.raises(SchemaError, match=r"dataset\.toml: unknown key 'timzone'; "
                                              r"did you mean 'timezone'\?"):
            audit_folder(write_dataset(tmp_path / "ds", toml="timzone = 'Europe/Berlin'\n"))

    def test_other_keys_are_ignored_and_reported(self, tmp_path):
        toml = "coord_system = 'wgs84'\nproducer = 'fleet-export 2.1'\n[extra]\na = 1\n"
        result = audit_folder(write_dataset(tmp_path / "ds", toml=toml))
        s = accounted(result)
        rej = result.rejects
        assert rej[["file", "field", "action"]].values.tolist() == [
            ["dataset.toml", "producer", "value_cleared"], ["dataset.toml", "extra", "value_cleared"]]
        assert s["trips"] == 2

    def test_coord_system_not_a_string(self, tmp_path):
        with pytest.raises(SchemaError, match=r"dataset\.toml: coord_system 1 must be a string"):
            audit_folder(write_dataset(tmp_path / "ds", toml="coord_system = 1\n"))


# --------------------------------------------------------------------------- parquet


def _parquet_folder(tmp_path: Path, table: pa.Table) -> Path:
    folder = write_dataset(tmp_path / "ds", tracks="<absent>")
    pq.write_table(table, folder / "tracks.parquet")
    return folder


class TestParquet:
    def test_string_lon_column(self, tmp_path):
        table = pa.table({"vehicle_id": ["浙A00001"] * 3, "time": [T0, T0 + 60, T0 + 120],
                          "lon": ["121.005", "east", "121.006"], "lat": [31.005] * 3})
        result = audit_folder(_parquet_folder(tmp_path, table))
        s = accounted(result)
        assert s["points_kept"] == 2
        assert result.rejects[["file", "row", "field", "value"]].values.tolist() == [
            ["tracks.parquet", 2, "lon", "east"]]

    def test_nulls_in_required_and_optional_columns(self, tmp_path):
        table = pa.table({
            "vehicle_id": ["浙A00001", None, "浙A00001", "浙A00001"],
            "time": pa.array([T0, T0 + 60, None, T0 + 180], pa.int64()),
            "lon": [121.005, 121.005, 121.005, None],
            "lat": [31.005] * 4,
            "speed_kmh": [None, 1.0, 2.0, 3.0],
        })
        result = audit_folder(_parquet_folder(tmp_path, table))
        s = accounted(result)
        assert s["points_kept"] == 1
        rej = result.rejects.sort_values("row")
        assert rej[["row", "field"]].values.tolist() == [[2, "vehicle_id"], [3, "time"],
                                                          [4, "lon"]]

    def test_timestamp_column_with_timezone(self, tmp_path):
        times = pd.to_datetime([T0, T0 + 60], unit="s", utc=True).tz_convert("Asia/Shanghai")
        table = pa.table({"vehicle_id": ["浙A00001"] * 2, "time": pa.array(times),
                          "lon": [121.005, 121.006], "lat": [31.005] * 2})
        result = audit_folder(_parquet_folder(tmp_path, table))
        assert accounted(result)["data_start"] == "2024-05-01T00:00:00+00:00"

    def test_both_csv_and_parquet_is_refused(self, tmp_path):
        folder = write_dataset(tmp_path / "ds")
        pq.write_table(pa.table({"vehicle_id": ["A"], "time": [T0], "lon": [1.0], "lat": [1.0]}),
                       folder / "tracks.parquet")
        with pytest.raises(SchemaError, match=r"both tracks\.csv and tracks\.parquet"):
            audit_folder(folder)


# --------------------------------------------------------------------------- places


class TestPlaces:
    def test_gcj02_outside_china_is_not_shifted(self, tmp_path):
        # GCJ-02 only shifts inside China: Paris coordinates stay as written
        folder = write_dataset(tmp_path / "ds", lon0=2.30, lat0=48.85, toml="coord_system='gcj02'\n")
        result = audit_folder(folder)
        s = accounted(result)
        assert s["trips"] == 2
        lon, lat = to_wgs84(np.array([2.305]), np.array([48.855]), "gcj02")
        assert (lon[0], lat[0]) == (2.305, 48.855)

    def test_southern_hemisphere_and_another_timezone(self, tmp_path):
        folder = write_dataset(tmp_path / "ds", lon0=-46.70, lat0=-23.55,
                               toml="timezone = 'America/Sao_Paulo'\n",
                               manifests=MANIFEST_HEADER
                               + "M1,浙A00001,O1,D1,2024-04-30T20:00:00,2024-04-30T23:59:00\n")
        s = accounted(audit_folder(folder))
        assert s["trips"] == 2
        assert s["alerts_by_kind"] == {"unmanifested_trip": 1}

    def test_track_crossing_the_antimeridian(self, tmp_path):
        # Fiji: origin west of 180°, disposal east of it (longitudes wrap to -180)
        lon0, lat0 = 179.94, -16.8
        rows = haul("浙A00001", lon0, lat0, T0)
        rows = [(p, t, x - 360.0 if x > 180 else x, y, v, ld) for p, t, x, y, v, ld in rows]
        sites = [site("O1", "origin", square(lon0, lat0)),
                 site("D1", "disposal", square(lon0 + 0.1 - 360.0, lat0))]
        folder = write_dataset(tmp_path / "ds", tracks=csv_text(rows), sites=sites,
                               routes=[route(lon0, lat0, coords=[[179.945, -16.795],
                                                                 [180.0, -16.795]])],
                               toml="timezone = 'Pacific/Fiji'\n")
        result = audit_folder(folder)
        s = accounted(result)
        assert s["points_kept"] == len(rows)  # no point is taken for a teleport
        assert s["trips"] == 1


# --------------------------------------------------------------------------- CLI


class TestCli:
    @pytest.mark.parametrize(("kw", "message"), [
        ({"tracks": b""}, r"tracks\.csv: the file is empty"),
        ({"toml": "coord_system = 'utm'\n"}, r"dataset\.toml: coord_system 'utm'"),
        ({"tracks": "vehicle_id,time,lon\n"}, r"tracks\.csv: missing required column\(s\) lat"),
    ])
    def test_fatal_schema_error_exit_2_one_line(self, tmp_path, capsys, kw, message):
        folder = write_dataset(tmp_path / "ds", **kw)
        code = main(["audit", str(folder), "--out", str(tmp_path / "out"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2
        assert "Traceback" not in err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1
        assert pd.Series(lines).str.contains(message).all()

    def test_all_rows_bad_exit_0_and_every_row_in_rejects_csv(self, tmp_path, capsys):
        text = HEADER + "".join(f"浙A1,2024-02-30T08:00:{i:02d},121,31,,\n" for i in range(5))
        folder = write_dataset(tmp_path / "ds", tracks=text, sites=[], routes=[],
                               manifests=MANIFEST_HEADER, vehicles=False)
        out = tmp_path / "out"
        assert main(["audit", str(folder), "--out", str(out), "--quiet"]) == 0
        capsys.readouterr()
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        rejects = pd.read_csv(out / "rejects.csv")
        assert rejects["row"].tolist() == [1, 2, 3, 4, 5]
        assert len(rejects) == summary["rows_rejected"] == summary["points_read"] == 5

    def test_rejects_csv_matches_summary(self, tmp_path, capsys):
        rows = haul("浙A00001", 121.0, 31.0, T0)
        text = csv_text(rows) + "浙A00001,2024-02-30T08:00:00,121,31,0,full\n" \
            + "浙A00001,1714521600,121.005,31.005,0,full\n" + "浙A00001,1714525200,121,95,0,bad\n"
        folder = write_dataset(tmp_path / "ds", tracks=text)
        out = tmp_path / "out"
        assert main(["audit", str(folder), "--out", str(out), "--quiet"]) == 0
        capsys.readouterr()
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
        rejects = pd.read_csv(out / "rejects.csv", dtype=str, keep_default_na=False)
        assert len(rejects) == summary["rows_rejected"] == 2
        assert rejects[["row", "field"]].values.tolist() == [[str(len(rows) + 1), "time"],
                                                             [str(len(rows) + 3), "lat"]]
        assert summary["points_read"] == len(rows) + 3
        assert summary["duplicates_dropped"] == 1
        assert summary["points_kept"] == len(rows)
