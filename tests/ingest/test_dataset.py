"""Tests for haulwatch.ingest.dataset.read_dataset on hand-written folders."""

import json

import pandas as pd
import pytest

from haulwatch.ingest.dataset import (
    RawDataset,
    SchemaError,
    dataset_stats,
    read_dataset,
    read_registry,
)


def square(x0, y0, d=0.01):
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]}


def make_folder(path, *, tracks=None, vehicles=True, toml=None):
    """A tiny dataset: one origin, one disposal, one route, two trucks."""
    path.mkdir(parents=True, exist_ok=True)
    sites = [
        {"type": "Feature", "properties": {"site_id": "O1", "kind": "origin"},
         "geometry": square(121.00, 31.00)},
        {"type": "Feature", "properties": {"site_id": "D1", "kind": "disposal"},
         "geometry": square(121.10, 31.00)},
    ]
    routes = [{"type": "Feature",
               "properties": {"route_id": "R1", "origin_site_id": "O1", "disposal_site_id": "D1"},
               "geometry": {"type": "LineString", "coordinates": [[121.005, 31.005],
                                                                  [121.105, 31.005]]}}]
    (path / "sites.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                    "features": sites}))
    (path / "routes.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                     "features": routes}))
    (path / "manifests.csv").write_text(
        "manifest_id,vehicle_id,origin_site_id,disposal_site_id,valid_from,valid_to\n"
        "M1,浙A00001,O1,D1,2024-05-01T07:00:00,2024-05-01T18:00:00\n"
        "M2,浙A00009,O1,D7,2024-05-01T07:00:00,2024-05-01T18:00:00\n", encoding="utf-8")
    if vehicles:
        (path / "vehicles.csv").write_text("vehicle_id,company,registered\n浙A00001,Acme,true\n",
                                           encoding="utf-8")
    if tracks is None:
        tracks = (
            "vehicle_id,time,lon,lat,speed_kmh,load\n"
            "浙A 00002,2024-05-01T08:00:00,121.005,31.005,0,full\n"
            "浙A00001,2024-05-01T08:01:00,121.05,31.005,30,full\n"
            "浙A00001,2024-05-01T08:00:00,121.005,31.005,0,full\n"
            "浙A00001,2024-05-01T08:00:00,121.005,31.005,0,full\n"   # duplicate
            "浙A00001,bad,121.005,31.005,0,full\n"                    # rejected
        )
    (path / "tracks.csv").write_text(tracks, encoding="utf-8")
    if toml:
        (path / "dataset.toml").write_text(toml)
    return path


class TestReadDataset:
    def test_reads_every_part(self, tmp_path):
        raw = read_dataset(make_folder(tmp_path / "ds"))
        assert isinstance(raw, RawDataset)
        assert (raw.coord_system, raw.timezone) == ("wgs84", "Asia/Shanghai")
        assert raw.sites["site_id"].tolist() == ["O1", "D1"]
        assert raw.routes["route_id"].tolist() == ["R1"]
        assert raw.manifests["manifest_id"].tolist() == ["M1"]
        assert raw.vehicles["vehicle_key"].tolist() == ["浙A00001"]
        assert raw.has_load and not raw.has_lift
        t = raw.tracks
        assert t["vehicle_key"].astype(str).tolist() == ["浙A00001", "浙A00001", "浙A00002"]
        assert t["time"].iloc[:2].tolist() == [pd.Timestamp("2024-05-01T00:00:00Z"),
                                               pd.Timestamp("2024-05-01T00:01:00Z")]
        assert t["src_row"].tolist() == [3, 2, 1]

    def test_rejects_and_stats(self, tmp_path):
        raw = read_dataset(make_folder(tmp_path / "ds"))
        rej = raw.rejects
        assert set(rej["file"]) == {"manifests.csv", "tracks.csv"}
        m = rej[rej["file"] == "manifests.csv"].iloc[0]
        assert (m["row"], m["field"]) == (2, "disposal_site_id")
        t = rej[rej["file"] == "tracks.csv"].iloc[0]
        assert (t["row"], t["field"], t["action"]) == (5, "time", "row_dropped")
        s = raw.stats
        assert s["rows_read"]["tracks.csv"] == 5
        assert s["duplicates_dropped"] == 1
        assert s["rows_read"]["tracks.csv"] == (
            s["rows_kept"]["tracks.csv"] + s["rows_dropped"]["tracks.csv"]
            + s["duplicates_dropped"])
        assert s["rows_read"]["manifests.csv"] == 2

    def test_vehicles_optional(self, tmp_path):
        raw = read_dataset(make_folder(tmp_path / "ds", vehicles=False))
        assert raw.vehicles is None

    def test_settings_applied(self, tmp_path):
        raw = read_dataset(make_folder(tmp_path / "ds",
                                       toml='coord_system = "bd09"\ntimezone = "UTC"\n'))
        assert raw.coord_system == "bd09"
        assert raw.tracks["time"].min() == pd.Timestamp("2024-05-01T08:00:00Z")
        assert raw.manifests["valid_from"].item() == pd.Timestamp("2024-05-01T07:00:00Z")

    def test_progress_gets_messages_and_nothing_printed(self, tmp_path, capsys):
        msgs = []
        read_dataset(make_folder(tmp_path / "ds"), progress=msgs.append)
        assert any("tracks.csv" in m for m in msgs)
        assert capsys.readouterr().out == ""

    def test_input_files_left_unchanged(self, tmp_path):
        folder = make_folder(tmp_path / "ds")
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        read_dataset(folder)
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

    @pytest.mark.parametrize("name", ["sites.geojson", "routes.geojson", "manifests.csv"])
    def test_missing_required_file(self, tmp_path, name):
        folder = make_folder(tmp_path / "ds")
        (folder / name).unlink()
        with pytest.raises(SchemaError, match=rf"{name}: required file missing"):
            read_dataset(folder)

    def test_missing_tracks(self, tmp_path):
        folder = make_folder(tmp_path / "ds")
        (folder / "tracks.csv").unlink()
        with pytest.raises(SchemaError, match=r"tracks.csv or tracks.parquet"):
            read_dataset(folder)

    def test_two_tracks_files(self, tmp_path):
        folder = make_folder(tmp_path / "ds")
        (folder / "tracks.parquet").write_bytes(b"")
        with pytest.raises(SchemaError, match=r"both tracks.csv and tracks.parquet"):
            read_dataset(folder)

    def test_missing_folder(self, tmp_path):
        with pytest.raises(SchemaError, match=r"dataset folder not found"):
            read_dataset(tmp_path / "nope")

    def test_bad_coord_system(self, tmp_path):
        folder = make_folder(tmp_path / "ds", toml='coord_system = "mars"\n')
        with pytest.raises(SchemaError, match=r"coord_system 'mars'"):
            read_dataset(folder)


class TestParquetFolder:
    def _split(self, folder):
        csv = folder / "tracks.csv"
        frame = pd.read_csv(csv, dtype=str)
        parts = folder / "tracks.parquet"
        parts.mkdir()
        frame.iloc[:2].to_parquet(parts / "part-000.parquet", index=False)
        frame.iloc[2:].to_parquet(parts / "part-001.parquet", index=False)
        csv.unlink()

    def test_a_folder_of_parts_reads_like_one_file(self, tmp_path):
        single = read_dataset(make_folder(tmp_path / "csv"))
        folder = make_folder(tmp_path / "parts")
        self._split(folder)
        parts = read_dataset(folder)
        cols = ["vehicle_key", "time", "lon", "lat", "src_row"]
        left = single.tracks[cols].astype({"vehicle_key": str}).reset_index(drop=True)
        right = parts.tracks[cols].astype({"vehicle_key": str}).reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right)
        assert parts.rejects["row"].tolist() == single.rejects["row"].tolist()

    def test_a_part_missing_a_column_is_refused_by_name(self, tmp_path):
        folder = make_folder(tmp_path / "parts")
        self._split(folder)
        frame = pd.read_parquet(folder / "tracks.parquet" / "part-001.parquet")
        frame.drop(columns=["lat"]).to_parquet(folder / "tracks.parquet" / "part-001.parquet")
        with pytest.raises(SchemaError, match=r"part-001\.parquet lacks column"):
            read_dataset(folder)

    def test_an_empty_folder_is_refused(self, tmp_path):
        folder = make_folder(tmp_path / "parts")
        (folder / "tracks.csv").unlink()
        (folder / "tracks.parquet").mkdir()
        with pytest.raises(SchemaError, match=r"no \*\.parquet file"):
            read_dataset(folder)


class TestReadRegistry:
    def test_everything_but_the_tracks_never_opened(self, tmp_path):
        folder = make_folder(tmp_path / "ds", toml='coord_system = "gcj02"\nowner = "x"\n')
        (folder / "tracks.csv").write_bytes(b"\xff\xfe not a CSV at all")  # never read
        reg = read_registry(folder)
        assert (reg.coord_system, reg.timezone) == ("gcj02", "Asia/Shanghai")
        assert reg.sites.frame["site_id"].tolist() == ["O1", "D1"]
        assert reg.manifests.manifests["manifest_id"].tolist() == ["M1"]  # M2: unknown D7
        assert reg.vehicles is not None and len(reg.vehicles.frame) == 1
        rej = reg.rejects()
        assert set(rej["file"]) == {"dataset.toml", "manifests.csv"}
        assert rej.loc[rej["file"] == "dataset.toml", "field"].tolist() == ["owner"]

    def test_same_registry_rejects_as_the_whole_dataset(self, tmp_path):
        folder = make_folder(tmp_path / "ds", toml='owner = "x"\n')
        raw = read_dataset(folder)
        reg = read_registry(folder)
        expected = raw.rejects[raw.rejects["file"] != "tracks.csv"].reset_index(drop=True)
        pd.testing.assert_frame_equal(reg.rejects(), expected)
        stats = dataset_stats(reg, raw.rejects, tracks_file="tracks.csv", tracks_read=5,
                              tracks_kept=3, duplicates=1)
        assert stats == raw.stats

    def test_missing_registry_file_is_a_schema_error(self, tmp_path):
        folder = make_folder(tmp_path / "ds")
        (folder / "routes.geojson").unlink()
        with pytest.raises(SchemaError, match=r"routes\.geojson"):
            read_registry(folder)
        with pytest.raises(SchemaError, match="not found"):
            read_registry(tmp_path / "nope")
