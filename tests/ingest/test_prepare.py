"""Tests for haulwatch.ingest.prepare on hand-written dataset folders."""

import json

import numpy as np
import pandas as pd
import pytest

from haulwatch.ingest.dataset import read_dataset
from haulwatch.ingest.prepare import POINT_COLUMNS, Dataset, prepare

# Beijing railway station in the three systems (published reference values, lon/lat).
REF = {"wgs84": (116.42079, 39.90105), "gcj02": (116.42703, 39.90245),
       "bd09": (116.43351, 39.90851)}


def ring(lon, lat, d=0.002):
    return [[lon - d, lat - d], [lon + d, lat - d], [lon + d, lat + d], [lon - d, lat + d],
            [lon - d, lat - d]]


def make_folder(path, system="wgs84", extra_tracks=""):
    """Sites, route and a short track around the station, written in ``system``."""
    lon, lat = REF[system]
    path.mkdir(parents=True)
    sites = [{"type": "Feature", "properties": {"site_id": "O1", "kind": "origin"},
              "geometry": {"type": "Polygon", "coordinates": [ring(lon, lat)]}},
             {"type": "Feature", "properties": {"site_id": "D1", "kind": "disposal"},
              "geometry": {"type": "Polygon", "coordinates": [ring(lon + 0.05, lat)]}}]
    routes = [{"type": "Feature", "properties": {"route_id": "R1", "origin_site_id": "O1",
                                                 "disposal_site_id": "D1"},
               "geometry": {"type": "LineString", "coordinates": [[lon, lat],
                                                                  [lon + 0.05, lat]]}}]
    (path / "sites.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                    "features": sites}))
    (path / "routes.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                     "features": routes}))
    (path / "manifests.csv").write_text(
        "manifest_id,vehicle_id,origin_site_id,disposal_site_id,valid_from,valid_to\n"
        "M1,京A00001,O1,D1,2024-05-01T07:00:00,2024-05-01T18:00:00\n", encoding="utf-8")
    rows = ["vehicle_id,time,lon,lat"]
    for i in range(6):   # 10 s apart, 50 m steps east
        rows.append(f"京A00001,2024-05-01T08:00:{10 * i:02d},{lon + i * 0.0006:.7f},{lat:.7f}")
    (path / "tracks.csv").write_text("\n".join(rows) + "\n" + extra_tracks, encoding="utf-8")
    (path / "dataset.toml").write_text(f'coord_system = "{system}"\n')
    return path


class TestPrepare:
    def test_points_frame(self, tmp_path):
        ds = prepare(read_dataset(make_folder(tmp_path / "ds")))
        assert isinstance(ds, Dataset)
        p = ds.points
        assert tuple(p.columns) == POINT_COLUMNS
        assert isinstance(p.index, pd.RangeIndex)
        assert ds.crs.to_epsg() == 32650            # Beijing: UTM 50N
        # 50 m steps east in metres
        np.testing.assert_allclose(np.diff(p["x"].to_numpy()), 51.2, atol=1.0)
        assert ds.sites_m.crs == ds.crs and ds.routes_m.crs == ds.crs
        assert 1.5e5 < ds.sites_m.geometry.area.iloc[0] < 2.0e5   # ~0.004° square

    @pytest.mark.parametrize("system", ["gcj02", "bd09"])
    def test_chinese_systems_converted_everywhere(self, tmp_path, system):
        ds = prepare(read_dataset(make_folder(tmp_path / system, system)))
        want_lon, want_lat = REF["wgs84"]
        first = ds.points.iloc[0]
        tol = 2e-5  # published references are rounded to 5 decimals
        assert abs(first["lon"] - want_lon) < tol and abs(first["lat"] - want_lat) < tol
        centroid = ds.sites.geometry.iloc[0].centroid
        assert abs(centroid.x - want_lon) < tol and abs(centroid.y - want_lat) < tol
        start = ds.routes.geometry.iloc[0].coords[0]
        assert abs(start[0] - want_lon) < tol and abs(start[1] - want_lat) < tol
        assert ds.coord_system == system

    def test_same_place_in_every_system(self, tmp_path):
        xs = {s: prepare(read_dataset(make_folder(tmp_path / s, s))).points[["x", "y"]]
              for s in REF}
        for system in ("gcj02", "bd09"):
            # only the first fix is the reference point itself (later ones are offsets
            # written in each system, which are not the same place)
            err_m = np.hypot(*(xs[system].to_numpy()[0] - xs["wgs84"].to_numpy()[0]))
            assert err_m < 3.0             # within the rounding of the references

    def test_teleport_goes_to_rejects(self, tmp_path):
        lon, lat = REF["wgs84"]
        extra = (f"京A00001,2024-05-01T08:01:00,{lon + 0.0036:.7f},{lat:.7f}\n"
                 f"京A00001,2024-05-01T08:01:10,{lon + 0.0036:.7f},{lat + 0.1:.7f}\n"
                 f"京A00001,2024-05-01T08:01:20,{lon + 0.0042:.7f},{lat:.7f}\n")
        raw = read_dataset(make_folder(tmp_path / "ds", extra_tracks=extra))
        ds = prepare(raw)
        tele = ds.rejects[ds.rejects["reason"].str.startswith("teleport")]
        assert tele["row"].tolist() == [8]
        assert tele["action"].tolist() == ["row_dropped"]
        assert 8 not in ds.points["src_row"].tolist()
        s = ds.stats
        assert s["teleports_dropped"] == 1
        assert s["rows_read"]["tracks.csv"] == 9 == (
            len(ds.points) + s["rows_dropped"]["tracks.csv"] + s["duplicates_dropped"])

    def test_raw_left_unchanged(self, tmp_path):
        raw = read_dataset(make_folder(tmp_path / "ds", "gcj02"))
        before = raw.tracks.copy()
        sites_before = raw.sites.copy()
        prepare(raw)
        pd.testing.assert_frame_equal(raw.tracks, before)
        assert raw.sites.geom_equals(sites_before).all()

    @pytest.mark.parametrize("system", ["wgs84", "gcj02"])
    def test_points_writable_without_touching_raw(self, tmp_path, system):
        raw = read_dataset(make_folder(tmp_path / "ds", system))
        lon0 = raw.tracks["lon"].iloc[0]
        ds = prepare(raw)
        ds.points.loc[0, ["lon", "speed_kmh"]] = [0.0, 99.0]
        assert ds.points.loc[0, "lon"] == 0.0
        assert raw.tracks["lon"].iloc[0] == lon0
        assert np.isnan(raw.tracks["speed_kmh"].iloc[0])

    def test_empty_tracks(self, tmp_path):
        folder = make_folder(tmp_path / "ds")
        (folder / "tracks.csv").write_text("vehicle_id,time,lon,lat\n")
        ds = prepare(read_dataset(folder))
        assert len(ds.points) == 0
        assert tuple(ds.points.columns) == POINT_COLUMNS
        assert ds.crs.to_epsg() == 32650            # picked from the sites

    def test_no_coordinate_at_all_still_prepares(self, tmp_path):
        # every track row bad, no site, no route: the rejects must still reach the audit
        folder = make_folder(tmp_path / "ds")
        (folder / "tracks.csv").write_text("vehicle_id,time,lon,lat\n京A1,bad,1,2\n")
        empty = json.dumps({"type": "FeatureCollection", "features": []})
        (folder / "sites.geojson").write_text(empty)
        (folder / "routes.geojson").write_text(empty)
        (folder / "manifests.csv").write_text(
            "manifest_id,vehicle_id,origin_site_id,disposal_site_id,valid_from,valid_to\n")
        ds = prepare(read_dataset(folder))
        assert len(ds.points) == 0 and ds.crs.is_projected
        assert ds.rejects[["row", "field"]].values.tolist() == [[1, "time"]]

    def test_bad_threshold(self, tmp_path):
        raw = read_dataset(make_folder(tmp_path / "ds"))
        with pytest.raises(ValueError, match="max_speed_kmh must be a positive number"):
            prepare(raw, max_speed_kmh=-5)
