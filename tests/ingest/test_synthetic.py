"""Tests for ingest.synthetic: the seeded fleet, its files and its ground truth."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from haulwatch.geo.chinacoords import to_wgs84
from haulwatch.ingest.plates import normalize_plate
from haulwatch.ingest.synthetic import SyntheticError, generate
from haulwatch.ingest.synthetic.city import LOCAL_CRS
from haulwatch.ingest.synthetic.dataset import _setup
from haulwatch.routes.alerts import KINDS

TZ = "Asia/Shanghai"
DAY0 = dt.date(2026, 3, 2)
TO_LOCAL = Transformer.from_crs("EPSG:4326", LOCAL_CRS, always_xy=True)


def parse_times(col: pd.Series, tz: str = TZ) -> pd.Series:
    """Independent parser of the contract's time forms (epoch, ISO with offset, naive local)."""
    s = col.fillna("").astype(str)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    num = s.str.fullmatch(r"\d{9,11}")
    out[num] = pd.to_datetime(s[num].astype("int64"), unit="s", utc=True)
    off = ~num & s.str.contains(r"(?:Z|[+-]\d\d:\d\d)$")
    out[off] = pd.to_datetime(s[off], format="ISO8601", utc=True, errors="coerce")
    naive = ~num & ~off & (s != "")
    parsed = pd.to_datetime(s[naive], format="ISO8601", errors="coerce")
    out[naive] = parsed.dt.tz_localize(tz).dt.tz_convert("UTC")
    return out


def read_tracks(folder) -> pd.DataFrame:
    return pd.read_csv(folder / "tracks.csv", dtype=str, keep_default_na=False)


def clean_tracks(folder) -> pd.DataFrame:
    """Good rows only, with UTC time and local metric x, y (for generated WGS-84 data)."""
    df = read_tracks(folder)
    df = df.assign(t=parse_times(df["time"]),
                   lon=pd.to_numeric(df["lon"], errors="coerce"),
                   lat=pd.to_numeric(df["lat"], errors="coerce"),
                   speed_kmh=pd.to_numeric(df["speed_kmh"], errors="coerce"))
    df = df[df["t"].notna() & df["lon"].between(-180, 180) & df["lat"].between(-90, 90)
            & (df["vehicle_id"] != "")]
    df = df.drop_duplicates(["vehicle_id", "t"]).sort_values(["vehicle_id", "t"])
    x, y = TO_LOCAL.transform(df["lon"].to_numpy(), df["lat"].to_numpy())
    return df.assign(x=x, y=y).reset_index(drop=True)


def read_geojson(path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def local_geom(feature) -> shapely.Geometry:
    g = shapely.geometry.shape(feature["geometry"])
    return shapely.transform(g, lambda xy: np.column_stack(TO_LOCAL.transform(xy[:, 0], xy[:, 1])))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """20 trucks x 1 day, every violation kind, default noise in the files."""
    out = tmp_path_factory.mktemp("fleet20")
    generate(out, trucks=20, days=1, seed=7, sensors="all")
    return out


@pytest.fixture(scope="module")
def fleet_truth(fleet):
    t = pd.read_csv(fleet / "truth.csv", dtype=str, keep_default_na=False)
    return t.assign(s=pd.to_datetime(t["start"]), e=pd.to_datetime(t["end"]),
                    lon=t["lon"].astype(float), lat=t["lat"].astype(float))


@pytest.fixture(scope="module")
def fleet_points(fleet):
    return clean_tracks(fleet)


class TestGenerate:
    def test_writes_a_contract_folder(self, fleet):
        names = {p.name for p in fleet.iterdir()}
        assert {"sites.geojson", "routes.geojson", "manifests.csv", "tracks.csv", "vehicles.csv",
                "dataset.toml", "truth.csv", "truth_meta.json"} <= names
        assert 'coord_system = "wgs84"' in (fleet / "dataset.toml").read_text()
        header = (fleet / "tracks.csv").read_text(encoding="utf-8").splitlines()[0]
        assert header == "vehicle_id,time,lon,lat,speed_kmh,heading_deg,load,lift"

    def test_same_seed_same_files_other_seed_other_tracks(self, tmp_path):
        a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
        for out, seed in ((a, 3), (b, 3), (c, 4)):
            generate(out, trucks=3, seed=seed)
        for name in ("tracks.csv", "truth.csv", "manifests.csv", "sites.geojson",
                     "routes.geojson", "vehicles.csv", "truth_meta.json"):
            assert (a / name).read_bytes() == (b / name).read_bytes(), name
        assert (a / "tracks.csv").read_bytes() != (c / "tracks.csv").read_bytes()

    def test_every_alert_kind_and_innocent_stop_present(self, fleet_truth):
        kinds = set(fleet_truth["kind"])
        assert set(KINDS) <= kinds
        assert {"innocent_traffic_light", "innocent_congestion", "innocent_gate_queue",
                "innocent_refuel", "innocent_depot_lunch", "innocent_empty_parking"} <= kinds

    def test_truth_vehicles_and_sites_exist(self, fleet, fleet_truth):
        tracks = set(read_tracks(fleet)["vehicle_id"]) - {""}
        vids = set(fleet_truth.loc[fleet_truth["kind"] != "dump_hotspot", "vehicle_id"])
        assert vids <= tracks
        assert set(fleet_truth.loc[fleet_truth["kind"] == "dump_hotspot", "vehicle_id"]) == {""}
        sites = {f["properties"]["site_id"] for f in read_geojson(fleet / "sites.geojson")}
        assert set(fleet_truth["site_id"]) - {""} <= sites
        assert (fleet_truth["e"] >= fleet_truth["s"]).all()

    def test_moving_points_lie_on_roads(self, fleet, fleet_points):
        city, _, _ = _setup(7, 20, 1, DAY0)
        moving = fleet_points[fleet_points["speed_kmh"] > 5]
        d = shapely.distance(city.road_lines, shapely.points(moving["x"], moving["y"]))
        assert len(moving) > 1000
        assert np.percentile(d, 50) < 12
        assert np.percentile(d, 99) < 40

    def test_loading_happens_inside_origin_polygons(self, fleet_points):
        city, _, _ = _setup(7, 20, 1, DAY0)
        load = fleet_points["load"].map({"empty": 0, "half": 1, "full": 2}).to_numpy()
        vid = fleet_points["vehicle_id"].to_numpy()
        # a loading: empty for 3 reports, then loaded for 3 reports (sensor glitches are 1-2)
        n = len(load)
        i = np.arange(3, n - 3)
        was_empty = (load[i - 1] == 0) & (load[i - 2] == 0) & (load[i - 3] == 0)
        now_loaded = (load[i] > 0) & (load[i + 1] > 0) & (load[i + 2] > 0)
        same = (vid[i - 3] == vid[i + 2])
        up = i[was_empty & now_loaded & same]
        assert len(up) >= 40
        x, y = fleet_points["x"].to_numpy()[up], fleet_points["y"].to_numpy()[up]
        inside = np.zeros(len(up), bool)
        for s in city.sites:
            if s.kind in ("origin", "black"):
                inside |= shapely.contains_xy(s.polygon, x, y)
        assert inside.all()

    def test_gate_queues_50_to_150_m_outside_the_disposal_polygon(self, fleet, fleet_truth,
                                                                 fleet_points):
        polys = {f["properties"]["site_id"]: local_geom(f)
                 for f in read_geojson(fleet / "sites.geojson")}
        q = fleet_truth[fleet_truth["kind"] == "innocent_gate_queue"]
        assert len(q) >= 10
        x, y = TO_LOCAL.transform(q["lon"].to_numpy(), q["lat"].to_numpy())
        d = np.array([shapely.distance(polys[s], shapely.Point(a, b))
                      for s, a, b in zip(q["site_id"], x, y, strict=True)])
        assert ((d >= 50) & (d <= 150)).all()
        row = q.iloc[0]
        pts = fleet_points[(fleet_points["vehicle_id"] == row["vehicle_id"])
                           & fleet_points["t"].between(row["s"], row["e"])]
        dp = shapely.distance(polys[row["site_id"]], shapely.points(pts["x"], pts["y"]))
        assert np.median(dp) == pytest.approx(d[0], abs=15)

    def test_illegal_dumps_are_stops_far_from_sites(self, fleet, fleet_truth, fleet_points):
        polys = [local_geom(f) for f in read_geojson(fleet / "sites.geojson")
                 if f["properties"]["kind"] in ("origin", "disposal", "depot")]
        dumps = fleet_truth[(fleet_truth["kind"] == "illegal_dump")
                            & (fleet_truth["note"] != "dumped while dark")]
        assert len(dumps) >= 3
        for row in dumps.itertuples():
            pts = fleet_points[(fleet_points["vehicle_id"] == row.vehicle_id)
                               & fleet_points["t"].between(row.s, row.e)]
            assert (row.e - row.s).total_seconds() >= 180
            assert len(pts) >= 5
            assert pts["speed_kmh"].median() < 2
            x, y = TO_LOCAL.transform(row.lon, row.lat)
            assert np.hypot(pts["x"] - x, pts["y"] - y).max() < 60
            assert min(shapely.distance(p, shapely.Point(x, y)) for p in polys) > 300

    def test_load_glitches_are_short_and_only_while_driving(self, fleet_points):
        pts = fleet_points[fleet_points["load"].isin(["empty", "half", "full"])]  # no bad rows
        load = pts["load"].to_numpy()
        vid = pts["vehicle_id"].to_numpy()
        flip = np.flatnonzero((load[1:] != load[:-1]) & (vid[1:] == vid[:-1])) + 1
        runs = np.diff(flip)  # reports between two changes of the load value
        # a glitch: 1-2 reports that differ from the same value before and after
        back = load[flip[:-1] - 1] == load[flip[1:]]
        short = flip[:-1][(runs <= 2) & back & (vid[flip[:-1] - 1] == vid[flip[1:]])]
        assert len(short) >= 1
        assert (pts["speed_kmh"].to_numpy()[short] > 10).all()

    def test_dark_dumps_go_dark_away_from_permitted_sites(self, fleet, fleet_truth,
                                                           fleet_points):
        polys = [local_geom(f) for f in read_geojson(fleet / "sites.geojson")
                 if f["properties"]["kind"] in ("origin", "disposal", "depot")]
        dark = fleet_truth[fleet_truth["note"] == "dumped while dark"]
        assert len(dark) >= 1
        for row in dark.itertuples():
            gap = fleet_truth[(fleet_truth["kind"] == "gps_gap")
                              & (fleet_truth["vehicle_id"] == row.vehicle_id)
                              & (fleet_truth["s"] == row.s)]
            assert len(gap) == 1 and (gap["e"] == row.e).all()
            x, y = TO_LOCAL.transform(row.lon, row.lat)
            assert min(shapely.distance(p, shapely.Point(x, y)) for p in polys) > 200
            back = fleet_points[(fleet_points["vehicle_id"] == row.vehicle_id)
                                & (fleet_points["t"] == row.e)]
            assert len(back) == 1  # reappears, still clear of every permitted site
            p_back = shapely.Point(back["x"].iloc[0], back["y"].iloc[0])
            assert min(shapely.distance(p, p_back) for p in polys) > 150

    def test_gaps_are_dark_longer_than_ten_minutes(self, fleet_truth, fleet_points):
        gaps = fleet_truth[fleet_truth["kind"] == "gps_gap"]
        assert len(gaps) >= 2
        for row in gaps.itertuples():
            v = fleet_points[fleet_points["vehicle_id"] == row.vehicle_id]["t"]
            assert (row.e - row.s).total_seconds() > 600
            assert ((v > row.s) & (v < row.e)).sum() == 0
            assert (v == row.s).sum() == 1 and (v == row.e).sum() == 1

    def test_route_deviation_window_is_off_corridor(self, fleet, fleet_truth, fleet_points):
        routes = read_geojson(fleet / "routes.geojson")
        dev = fleet_truth[fleet_truth["kind"] == "route_deviation"]
        assert len(dev) >= 1
        for row in dev.itertuples():
            rid = row.note.split(",")[0].removeprefix("route ")
            (feat,) = [f for f in routes if f["properties"]["route_id"] == rid]
            corridor = feat["properties"].get("corridor_m", 150.0)
            line = local_geom(feat)
            pts = fleet_points[(fleet_points["vehicle_id"] == row.vehicle_id)
                               & fleet_points["t"].between(row.s, row.e)]
            d = shapely.distance(line, shapely.points(pts["x"], pts["y"]))
            assert d[0] > corridor and d[-1] > corridor
            assert d.max() > corridor + 200

    def test_hotspot_truth_has_three_dumps_nearby(self, fleet_truth):
        hot = fleet_truth[fleet_truth["kind"] == "dump_hotspot"]
        dumps = fleet_truth[fleet_truth["kind"] == "illegal_dump"]
        assert len(hot) >= 1
        for row in hot.itertuples():
            hx, hy = TO_LOCAL.transform(row.lon, row.lat)
            dx, dy = TO_LOCAL.transform(dumps["lon"].to_numpy(), dumps["lat"].to_numpy())
            near = dumps[np.hypot(dx - hx, dy - hy) < 150]
            assert near["vehicle_id"].nunique() >= 3
            assert near["s"].min() == row.s and near["e"].max() == row.e

    def test_registry_and_manifests_agree_with_truth(self, fleet, fleet_truth):
        veh = pd.read_csv(fleet / "vehicles.csv", dtype=str, keep_default_na=False)
        reg = dict(zip(normalize_plate(veh["vehicle_id"]), veh["registered"], strict=True))
        unreg = set(fleet_truth.loc[fleet_truth["kind"] == "unregistered_vehicle", "vehicle_id"])
        assert unreg
        for v in set(read_tracks(fleet)["vehicle_id"]) - {""}:
            ok = reg.get(normalize_plate(v)) == "true"
            assert ok != (v in unreg), v
        man = pd.read_csv(fleet / "manifests.csv", dtype=str, keep_default_na=False)
        sites = {f["properties"]["site_id"]: f["properties"]["kind"]
                 for f in read_geojson(fleet / "sites.geojson")}
        assert set(man["origin_site_id"].map(sites)) == {"origin"}
        assert set(man["disposal_site_id"].map(sites)) == {"disposal"}
        routes = {f["properties"]["route_id"]: f["properties"]
                  for f in read_geojson(fleet / "routes.geojson")}
        for r in man[man["route_id"] != ""].itertuples():
            assert routes[r.route_id]["origin_site_id"] == r.origin_site_id
            assert routes[r.route_id]["disposal_site_id"] == r.disposal_site_id
        unman = set(fleet_truth.loc[fleet_truth["kind"] == "unmanifested_trip", "vehicle_id"])
        assert not unman & set(normalize_plate(man["vehicle_id"]))

    def test_times_written_in_mixed_legal_forms(self, fleet):
        t = read_tracks(fleet)["time"]
        assert t.str.fullmatch(r"\d{10}").any()
        assert t.str.endswith("+08:00").any()
        assert t.str.endswith("Z").any()
        assert t.str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d").any()


class TestRowsAndFormats:
    def test_bad_rows_and_duplicates_counted_in_meta(self, tmp_path):
        generate(tmp_path, trucks=4, seed=5, bad_row_fraction=0.02, duplicate_fraction=0.01)
        meta = json.loads((tmp_path / "truth_meta.json").read_text())
        df = read_tracks(tmp_path)
        missing = (df[["vehicle_id", "time", "lon", "lat"]] == "").any(axis=1)
        lon = pd.to_numeric(df["lon"], errors="coerce")
        lat = pd.to_numeric(df["lat"], errors="coerce")
        coords = ~missing & ~(lon.between(-180, 180) & lat.between(-90, 90))
        times = ~missing & ~coords & parse_times(df["time"]).isna()
        load = ~df["load"].isin(["", "empty", "half", "full"])
        assert meta["bad_rows"] == {"missing_field": int(missing.sum()),
                                    "bad_coordinates": int(coords.sum()),
                                    "bad_time": int(times.sum()), "bad_load": int(load.sum())}
        assert meta["rows_dropped_expected"] == int((missing | coords | times).sum())
        assert min(meta["bad_rows"].values()) > 0
        assert meta["duplicates"] == int(df.duplicated().sum()) > 0
        assert meta["rows_written"] == len(df)
        assert meta["points"] == len(df) - meta["duplicates"] - meta["rows_dropped_expected"]

    def test_no_bad_rows_when_fractions_are_zero(self, tmp_path):
        generate(tmp_path, trucks=2, seed=1, bad_row_fraction=0, duplicate_fraction=0,
                 shuffle=False)
        df = read_tracks(tmp_path)
        meta = json.loads((tmp_path / "truth_meta.json").read_text())
        assert meta["bad_rows_total"] == 0 and meta["duplicates"] == 0
        assert len(df) == meta["points"]
        t = parse_times(df["time"])
        assert t.notna().all()
        for _, g in t.groupby(df["vehicle_id"]):
            assert g.is_monotonic_increasing  # not shuffled

    def test_gcj02_and_bd09_shift_hundreds_of_metres_and_convert_back(self, tmp_path):
        out = {}
        for system in ("wgs84", "gcj02", "bd09"):
            out[system] = tmp_path / system
            generate(out[system], trucks=2, seed=9, coord_system=system, bad_row_fraction=0,
                     duplicate_fraction=0, shuffle=False)
        w = read_tracks(out["wgs84"])
        assert (out["wgs84"] / "truth.csv").read_bytes() == (out["gcj02"] / "truth.csv").read_bytes()
        for system in ("gcj02", "bd09"):
            assert f'coord_system = "{system}"' in (out[system] / "dataset.toml").read_text()
            c = read_tracks(out[system])
            wx, wy = TO_LOCAL.transform(w["lon"].astype(float), w["lat"].astype(float))
            cx, cy = TO_LOCAL.transform(c["lon"].astype(float), c["lat"].astype(float))
            shift = np.hypot(cx - wx, cy - wy)
            assert 200 < np.median(shift) < 1500
            lon, lat = to_wgs84(c["lon"].astype(float), c["lat"].astype(float), system)
            bx, by = TO_LOCAL.transform(lon, lat)
            assert np.hypot(bx - wx, by - wy).max() < 1.0
            s_w = read_geojson(out["wgs84"] / "sites.geojson")[0]["geometry"]["coordinates"][0][0]
            s_c = read_geojson(out[system] / "sites.geojson")[0]["geometry"]["coordinates"][0][0]
            lon, lat = to_wgs84([s_c[0]], [s_c[1]], system)
            assert lon[0] == pytest.approx(s_w[0], abs=2e-5)
            assert lat[0] == pytest.approx(s_w[1], abs=2e-5)

    def test_sensor_modes(self, tmp_path):
        generate(tmp_path / "none", trucks=2, seed=2, sensors="none")
        header = (tmp_path / "none" / "tracks.csv").read_text(encoding="utf-8").splitlines()[0]
        assert "load" not in header and "lift" not in header
        generate(tmp_path / "mixed", trucks=8, seed=2, sensors="mixed", bad_row_fraction=0)
        df = read_tracks(tmp_path / "mixed")
        has = (df["load"] != "").groupby(df["vehicle_id"]).agg(["all", "any"])
        assert (has["all"] == has["any"]).all()  # each truck: always or never
        assert has["all"].any() and not has["all"].all()
        assert set(df.loc[df["load"] != "", "lift"]) == {"0", "1"}
        assert set(df.loc[df["load"] == "", "lift"]) == {""}

    def test_parquet_tracks(self, tmp_path):
        generate(tmp_path, trucks=2, seed=4, fmt="parquet")
        df = pd.read_parquet(tmp_path / "tracks.parquet")
        meta = json.loads((tmp_path / "truth_meta.json").read_text())
        assert str(df["time"].dtype).startswith("datetime64") and df["time"].dt.tz is not None
        assert len(df) == meta["rows_written"]
        assert not (tmp_path / "tracks.csv").exists()

    def test_several_days_and_night_shifts_are_local_days(self, tmp_path):
        generate(tmp_path, trucks=12, days=2, seed=8, bad_row_fraction=0, duplicate_fraction=0)
        meta = json.loads((tmp_path / "truth_meta.json").read_text())
        assert meta["days"] == 2
        man = pd.read_csv(tmp_path / "manifests.csv", dtype=str)
        starts = parse_times(man["valid_from"]).dt.tz_convert(TZ)
        assert set(starts.dt.date) == {DAY0, DAY0 + dt.timedelta(days=1)}
        assert set(starts.dt.hour) <= {6, 18}

    @pytest.mark.parametrize(
        ("kwargs", "pattern"),
        [
            ({"trucks": 0}, r"trucks=0 is not allowed"),
            ({"days": 0}, r"days=0"),
            ({"coord_system": "utm"}, r"coord_system='utm'.*wgs84"),
            ({"sensors": "some"}, r"sensors='some'"),
            ({"fmt": "xlsx"}, r"fmt='xlsx'"),
            ({"interval_s": (30, 10)}, r"interval_s=\(30, 10\)"),
            ({"interval_s": 300}, r"interval_s=300 .*\[1, 120\]"),
            ({"bad_row_fraction": 0.9}, r"bad_row_fraction=0.9"),
            ({"start_date": "2026-13-01"}, r"start_date='2026-13-01'.*ISO date"),
            # the time range of every entry point (ingest.limits), not an OverflowError
            ({"start_date": "9999-12-31"}, r"start_date='9999-12-31'.*1990-07-21\.\.2099-08-01"),
            ({"start_date": "0001-01-01"}, r"start_date='0001-01-01'.*1990-01-01\.\.2100-01-01"),
            ({"start_date": "2099-07-31", "days": 3}, r"with days=3 it must be .*\.\.2099-07-30"),
            ({"timezone": "Mars/Olympus"}, r"timezone='Mars/Olympus'"),
        ],
    )
    def test_bad_parameters(self, tmp_path, kwargs, pattern):
        with pytest.raises(SyntheticError, match=pattern):
            generate(tmp_path, **({"trucks": 2} | kwargs))
        assert not (tmp_path / "tracks.csv").exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_reader_counts_what_truth_meta_says(tmp_path, fmt):
    from haulwatch.ingest.dataset import read_dataset

    generate(tmp_path, trucks=3, seed=6, sensors="mixed", fmt=fmt, bad_row_fraction=0.02,
             duplicate_fraction=0.01)
    meta = json.loads((tmp_path / "truth_meta.json").read_text())
    raw = read_dataset(tmp_path)
    name = f"tracks.{fmt}"
    assert raw.stats["rows_read"][name] == meta["rows_written"]
    assert raw.stats["rows_dropped"][name] == meta["rows_dropped_expected"]
    assert raw.stats["duplicates_dropped"] == meta["duplicates"]
    cleared = raw.rejects[(raw.rejects["file"] == name) & (raw.rejects["field"] == "load")]
    assert len(cleared) == meta["values_cleared_expected"] > 0
    assert len(raw.tracks) == meta["points"]


# ------------------------------------------------------------------ real-terminal conditions


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A small fleet with every condition of issue 12 on."""
    folder = tmp_path_factory.mktemp("real")
    generate(folder, trucks=40, days=2, seed=5, conditions=["all"], bad_row_fraction=0.0,
             duplicate_fraction=0.0)
    truth = pd.read_csv(folder / "truth.csv", dtype=str, keep_default_na=False)
    truth = truth.assign(s=pd.to_datetime(truth["start"], utc=True), e=pd.to_datetime(truth["end"], utc=True))
    return folder, truth, clean_tracks(folder), json.loads((folder / "truth_meta.json").read_text())


class TestConditions:
    def test_every_condition_is_labelled(self, real):
        _, truth, _, meta = real
        kinds = set(truth["kind"])
        assert set(KINDS) <= kinds
        assert {"innocent_service_road", "innocent_urban_canyon", "innocent_multipath",
                "innocent_frozen_fix", "innocent_origin_queue"} <= kinds
        notes = " ".join(truth["note"])
        assert "fast dump" in notes and "rolling dump" in notes
        assert sorted(meta["conditions"]) == sorted(
            ["night_shifts", "mixed_intervals", "urban_canyons", "frozen_fixes", "fast_dumps",
             "rolling_dumps", "twin_devices", "large_origins", "service_roads", "dark_at_origin"])

    def test_mixed_intervals_and_night_shifts(self, real):
        _, _, pts, meta = real
        assert set(meta["vehicle_interval_s"].values()) == {10.0, 30.0, 60.0, 120.0}
        local_h = pts["t"].dt.tz_convert(TZ).dt.hour
        # trucks driving across local midnight
        assert ((local_h == 23) | (local_h == 0)).sum() > 100
        night = pts[(local_h >= 22) | (local_h < 5)]
        assert night["speed_kmh"].gt(20).sum() > 100

    def test_frozen_fixes_repeat_a_position_with_speed_zero(self, real):
        _, truth, pts, _ = real
        for r in truth[truth["kind"] == "innocent_frozen_fix"].head(5).itertuples():
            p = pts[(pts["vehicle_id"] == r.vehicle_id) & (pts["t"] >= r.s) & (pts["t"] <= r.e)]
            main = p[p.duplicated(["lon", "lat"], keep=False)]
            assert len(main) >= 2 and (main["speed_kmh"] == 0).all()

    def test_service_roads_lie_44_to_55_m_from_the_route_inside_60_m_corridors(self, real):
        folder, truth, _, _ = real
        routes = read_geojson(folder / "routes.geojson")
        assert any(f["properties"].get("corridor_m") == 60.0 for f in routes)
        offsets = truth.loc[truth["kind"] == "innocent_service_road", "note"].str.extract(r"(\d+) m")[0]
        assert offsets.astype(int).between(44, 55).all()

    def test_twin_devices_report_the_same_plate_interleaved(self, real):
        _, _, pts, meta = real
        twins = meta["twin_device_vehicles"]
        assert twins
        p = pts[pts["vehicle_id"] == twins[0]].sort_values("t")
        gaps = p["t"].diff().dt.total_seconds().dropna()
        iv = meta["vehicle_interval_s"][twins[0]]
        assert (gaps < min(iv, 10.0)).mean() > 0.3  # a second clock a few seconds off

    def test_large_origins_are_300_to_600_m_across(self, real):
        folder, _, _, _ = real
        sizes = []
        for f in read_geojson(folder / "sites.geojson"):
            if f["properties"]["kind"] == "origin":
                g = local_geom(f)
                x0, y0, x1, y1 = g.bounds
                sizes.append(max(x1 - x0, y1 - y0))
        assert min(sizes) >= 280 and max(sizes) <= 640

    def test_conditions_change_nothing_when_off(self, tmp_path):
        generate(tmp_path / "a", trucks=4, seed=9)
        generate(tmp_path / "b", trucks=4, seed=9, conditions=())
        assert (tmp_path / "a" / "tracks.csv").read_bytes() == (tmp_path / "b" / "tracks.csv").read_bytes()

    def test_unknown_condition_is_refused(self, tmp_path):
        with pytest.raises(SyntheticError, match="conditions"):
            generate(tmp_path / "x", trucks=2, conditions=["rain"])

    def test_cli_switches(self, tmp_path):
        from haulwatch.api.cli import main

        assert main(["generate", "--out", str(tmp_path / "c"), "--trucks", "3", "--quiet",
                     "--night-shifts", "--twin-devices"]) == 0
        meta = json.loads((tmp_path / "c" / "truth_meta.json").read_text())
        assert meta["conditions"] == ["night_shifts", "twin_devices"]
        assert main(["generate", "--out", str(tmp_path / "d"), "--trucks", "3", "--quiet",
                     "--all-conditions"]) == 0
        assert len(json.loads((tmp_path / "d" / "truth_meta.json").read_text())["conditions"]) == 10
