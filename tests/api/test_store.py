"""The store: migrations, alert upserts, status history, missions, idempotent points."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point

from haulwatch.api.services.store import (
    AlertFilter,
    AlertNotFoundError,
    MissionNotFoundError,
    StatusConflictError,
    Store,
    StoreInputError,
    import_alerts,
)
from haulwatch.api.services.store_sql import MIGRATIONS, Database, StoreError, migrate


def _alerts(n: int = 3, *, end_shift_s: int = 0) -> gpd.GeoDataFrame:
    start = pd.date_range("2024-05-01 06:00", periods=n, freq="h", tz="UTC")
    return gpd.GeoDataFrame({
        "alert_id": [f"id{i}" for i in range(n)],
        "kind": ["illegal_dump"] * (n - 1) + ["route_deviation"],
        "vehicle_id": [f"浙F{i:05d}" for i in range(n)],
        "start": start,
        "end": start + pd.Timedelta(seconds=600 + end_shift_s),
        "severity": ["high"] * n,
        "manifest_id": [""] * n, "site_id": [""] * n, "summary": ["s"] * n,
        "trip_id": [""] * n,
        "lon": 120.0 + np.arange(n) * 0.1, "lat": [30.0] * n,
        "evidence": ['{"stop_s": 600}'] * n,
        "geometry": [Point(120.0 + i * 0.1, 30.0) for i in range(n - 1)]
        + [LineString([(120.2, 30.0), (120.25, 30.01)])],
    }, crs="EPSG:4326")


def _pg_command() -> list[str] | None:
    """How to run PostgreSQL's tools here (None when PostgreSQL or psycopg is missing)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None
    bindirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    initdb = shutil.which("initdb") or next(
        (str(b / "initdb") for b in bindirs if (b / "initdb").exists()), None)
    if initdb is None:
        return None
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None
        prefix = ["runuser", "-u", "postgres", "--"]
    return [*prefix, str(Path(initdb).parent)]


_PG = _pg_command()
# PostgreSQL runs only where its Debian packages and psycopg are installed (both are here).
BACKENDS = ["sqlite", *(["postgresql"] if _PG else [])]


@pytest.fixture(scope="module")
def pg_server():
    """A throw-away PostgreSQL cluster on a free port, stopped and deleted at the end."""
    *prefix, bindir = _PG
    root = Path(tempfile.mkdtemp(prefix="haulwatch-pg-"))  # pytest's tmp is private to root
    if prefix:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    data = root / "data"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subprocess.run([*prefix, f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "hw"],
                   check=True, capture_output=True)
    subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w",
                    "-o", f"-k {root} -p {port} -h 127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://hw@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop"],
                       check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'st.db'}")
    else:
        import psycopg

        base = request.getfixturevalue("pg_server")
        name = f"t{uuid.uuid4().hex[:10]}"
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        s = Store(f"{base}/{name}")
    yield s
    s.close()


class TestMigrations:
    def test_fresh_database_is_at_newest_version_and_wal(self, tmp_path):
        s = Store(f"sqlite:///{tmp_path / 'a.db'}")
        assert s.schema_version == max(v for v, _ in MIGRATIONS)
        assert s.db.fetchone("PRAGMA journal_mode")[0] == "wal"
        s.close()

    def test_upgrade_applies_only_missing_migrations_in_order(self, tmp_path):
        db = Database(f"sqlite:///{tmp_path / 'b.db'}")
        assert migrate(db, MIGRATIONS[:1]) == 1
        db.execute("INSERT INTO points (vehicle_key, time_us, vehicle_id, lon, lat, received_us)"
                   " VALUES ('K', 1, 'K', 120, 30, 0)")
        later = (*MIGRATIONS[:1],
                 (2, ("ALTER TABLE points ADD COLUMN source TEXT",)),
                 (3, ("CREATE INDEX points_source ON points (source)",)))
        assert migrate(db, later) == 3
        assert [r[0] for r in db.fetchall("SELECT version FROM schema_version ORDER BY version")] \
            == [1, 2, 3]
        assert db.fetchone("SELECT vehicle_key, source FROM points") == ("K", None)
        assert migrate(db, later) == 3  # idempotent
        db.close()

    def test_failed_migration_rolls_back_to_last_version(self, tmp_path):
        db = Database(f"sqlite:///{tmp_path / 'c.db'}")
        broken = (*MIGRATIONS[:1], (2, ("CREATE TABLE t2 (a INTEGER)", "NOT SQL AT ALL")))
        with pytest.raises(Exception, match="syntax"):
            migrate(db, broken)
        assert db.fetchone("SELECT MAX(version) FROM schema_version")[0] == 1
        assert db.fetchall("SELECT name FROM sqlite_master WHERE name = 't2'") == []
        db.close()

    def test_newer_database_is_refused(self, tmp_path):
        db = Database(f"sqlite:///{tmp_path / 'd.db'}")
        migrate(db, (*MIGRATIONS, (99, ("CREATE TABLE t99 (a INTEGER)",))))
        with pytest.raises(StoreError, match="version 99"):
            migrate(db)
        db.close()

    @pytest.mark.parametrize("url", ["mysql://x", "sqlite://", "file.db"])
    def test_bad_url(self, url):
        with pytest.raises(StoreError, match="db_url"):
            Database(url)


class TestAlerts:
    def test_upsert_counts_and_keeps_status(self, store):
        frame = _alerts()
        before = frame.copy()
        r = store.upsert_alerts(frame)
        assert (sorted(r.inserted), r.updated, r.unchanged) == (["id0", "id1", "id2"], [], 0)
        pd.testing.assert_frame_equal(frame, before)  # input left unchanged
        store.set_status("id1", "confirmed", by="dan")
        r = store.upsert_alerts(_alerts())
        assert (r.inserted, r.updated, r.unchanged) == ([], [], 3)
        r = store.upsert_alerts(_alerts(end_shift_s=300))
        assert (r.inserted, sorted(r.updated)) == ([], ["id0", "id1", "id2"])
        a = store.get_alert("id1")
        assert a["status"] == "confirmed" and a["end"] == "2024-05-01T07:15:00Z"
        assert a["evidence"] == {"stop_s": 600}

    def test_geometry_and_times_round_trip(self, store):
        store.upsert_alerts(_alerts())
        a = store.get_alert("id2")
        assert a["geometry"] == {"type": "LineString",
                                 "coordinates": [[120.2, 30.0], [120.25, 30.01]]}
        assert (a["start"], a["end"]) == ("2024-05-01T08:00:00Z", "2024-05-01T08:10:00Z")

    def test_empty_frame(self, store):
        r = store.upsert_alerts(_alerts().iloc[:0])
        assert (r.inserted, r.updated, r.unchanged) == ([], [], 0)
        assert store.count_alerts() == 0

    def test_naive_times_refused(self, store):
        frame = _alerts()
        frame["start"] = frame["start"].dt.tz_localize(None)
        with pytest.raises(StoreInputError, match="start: naive"):
            store.upsert_alerts(frame)
        assert store.count_alerts() == 0

    def test_missing_column(self, store):
        with pytest.raises(StoreInputError, match="alert_id"):
            store.upsert_alerts(_alerts().drop(columns="alert_id"))

    def test_filters(self, store):
        store.upsert_alerts(_alerts())
        items, total = store.query_alerts(AlertFilter(kind=("route_deviation",)))
        assert total == 1 and items[0]["alert_id"] == "id2"
        _, total = store.query_alerts(AlertFilter(
            start=pd.Timestamp("2024-05-01 07:05", tz="UTC"),
            end=pd.Timestamp("2024-05-01 07:30", tz="UTC")))
        assert total == 1  # only id1 (07:00-07:10) overlaps
        _, total = store.query_alerts(AlertFilter(bbox=(120.05, 29, 121, 31)))
        assert total == 2

    def test_status_versions_and_conflict(self, store):
        store.upsert_alerts(_alerts())
        a = store.set_status("id0", "acknowledged", by="a", expected_version=1)
        assert a["status_version"] == 2
        with pytest.raises(StatusConflictError, match="stale") as exc:
            store.set_status("id0", "dismissed", by="b", expected_version=1)
        assert exc.value.current_version == 2
        with pytest.raises(AlertNotFoundError):
            store.set_status("nope", "open", by="a")
        with pytest.raises(StoreInputError, match="status: 'closed'"):
            store.set_status("id0", "closed", by="a")
        hist = store.get_alert("id0")["history"]
        assert [(h["version"], h["status"], h["by"]) for h in hist] == [
            (1, "open", "import"), (2, "acknowledged", "a")]

    def test_withdraw_only_untouched(self, store):
        store.upsert_alerts(_alerts())
        store.set_status("id0", "confirmed", by="a")
        assert store.withdraw_alerts(["id0", "id1", "nope"]) == ["id1"]
        assert store.count_alerts() == 2

    def test_import_alerts_function(self, tmp_path):
        url = f"sqlite:///{tmp_path / 'imp.db'}"
        assert import_alerts(_alerts(), url) == {"inserted": 3, "updated": 0, "unchanged": 0}
        assert import_alerts(_alerts(), url) == {"inserted": 0, "updated": 0, "unchanged": 3}


class TestMissions:
    def test_create_update_list(self, store):
        store.create_mission({"mission_id": "m1", "alert_id": "id0", "dock_site_id": "N1",
                              "plan": {"fileType": "Plan"}}, by="dan")
        m = store.update_mission("m1", status="flying", progress={"item": 3})
        assert (m["status"], m["progress"]) == ("flying", {"item": 3})
        assert store.get_mission("m1", with_plan=True)["plan"] == {"fileType": "Plan"}
        items, total = store.list_missions()
        assert total == 1 and items[0]["mission_id"] == "m1"
        with pytest.raises(MissionNotFoundError):
            store.update_mission("m2", status="failed")
        with pytest.raises(StoreInputError, match="status"):
            store.update_mission("m1", status="exploded")


def _points(keys, times, lon=120.0):
    return pd.DataFrame({
        "vehicle_id": keys, "vehicle_key": keys,
        "time": pd.to_datetime(times, utc=True),
        "lon": lon, "lat": 30.0, "speed_kmh": np.nan, "heading_deg": np.nan,
        "load": [None] * len(keys), "lift": np.nan,
    })


class TestPoints:
    def test_idempotent_by_vehicle_and_time(self, store):
        p = _points(["A", "A", "B"], ["2024-05-01T00:00:00Z", "2024-05-01T00:00:10Z",
                                      "2024-05-01T00:00:00Z"])
        assert store.insert_points(p).tolist() == [True, True, True]
        again = _points(["A", "B", "A", "A"], ["2024-05-01T00:00:10Z", "2024-05-01T00:00:05Z",
                                               "2024-05-01T00:00:20Z", "2024-05-01T00:00:20Z"])
        assert store.insert_points(again).tolist() == [False, True, True, False]
        got = store.load_points()
        assert len(got) == 5
        assert got["vehicle_key"].tolist() == ["A", "A", "A", "B", "B"]
        assert str(got["time"].dtype) == "datetime64[ns, UTC]"

    def test_load_since(self, store):
        store.insert_points(_points(["A"] * 3, ["2024-05-01T00:00:00Z", "2024-05-01T01:00:00Z",
                                                "2024-05-01T02:00:00Z"]))
        got = store.load_points(vehicle_keys=["A"],
                                since={"A": pd.Timestamp("2024-05-01T01:00:00Z")})
        assert len(got) == 2

    def test_empty(self, store):
        assert store.insert_points(_points([], [])).tolist() == []
        assert len(store.load_points()) == 0
