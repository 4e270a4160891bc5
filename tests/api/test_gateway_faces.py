"""The gateway's faces: ``GET /api/gateway`` (roles, counters), ``haulwatch replay``, the SQL terminal store."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from haulwatch.api.app import create_app
from haulwatch.api.cli import main
from haulwatch.api.gateway import (
    BatchingSink,
    Gateway,
    GatewayConfig,
    MemoryTerminalStore,
    SqlTerminalStore,
)
from haulwatch.api.gateway.replay import ReplayError, plan_replay, terminal_phone
from haulwatch.api.gateway.router import router
from haulwatch.api.services.store import Store
from haulwatch.api.settings import Settings, parse_tokens
from haulwatch.ingest.jt808 import decode_location
from haulwatch.ingest.plates import normalize_plate
from haulwatch.ingest.synthetic import generate

TOKENS = "a:analyst:ta,d:dispatcher:td,v:device:tv,x:admin:tx"


@pytest.fixture(scope="module")
def small_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("jt808-small")
    generate(folder, trucks=3, days=1, seed=4, interval_s=120.0, coord_system="wgs84")
    return folder


class TestStatusEndpoint:
    def test_roles_and_counters(self, tmp_path: Path) -> None:
        app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 's.db'}",
                                  tokens=tuple(parse_tokens(TOKENS))))
        app.include_router(router)
        with TestClient(app) as c:
            hdr = {"Authorization": "Bearer ta"}
            assert c.get("/api/gateway", headers=hdr).json() == {"running": False}
            gw = Gateway(GatewayConfig(port=0, lift_info_id=0xF3), BatchingSink(lambda p: []),
                         MemoryTerminalStore())
            gw.metrics.refused["bad_check_code"] += 2
            app.state.gateway = gw
            body = c.get("/api/gateway", headers=hdr).json()
            assert body["running"] and body["refused"] == {"bad_check_code": 2}
            assert body["settings"]["lift_info_id"] == 0xF3
            assert c.get("/api/gateway", headers={"Authorization": "Bearer tx"}).status_code == 200
            for token in ("td", "tv"):
                r = c.get("/api/gateway", headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 403
            assert c.get("/api/gateway").status_code == 401


class TestSqlTerminalStore:
    def test_codes_survive_a_reopen(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 't.db'}"
        store = Store(url)
        terms = SqlTerminalStore(store.db)
        a = terms.register("13900000001", "浙D·A1234", 2013)
        assert terms.register("13900000001", "浙DA1234", 2019).auth_code == a.auth_code
        terms.record_reject("13900000001", "浙DA1234", None, "no_fix: status bit 1")
        store.close()
        store = Store(url)
        again = SqlTerminalStore(store.db)
        t = again.get("13900000001")
        assert t is not None and (t.auth_code, t.plate, t.version) == (a.auth_code, "浙DA1234", 2019)
        assert again.get("13900000002") is None
        assert again.deregister("13900000001") and again.get("13900000001") is None
        assert store.db.fetchone("SELECT COUNT(*) FROM jt808_rejects")[0] == 1
        store.close()


class TestReplayPlan:
    def test_plan(self, small_day: Path) -> None:
        plans = plan_replay(small_day, version="mixed", backfill_pct=100, seed=1)
        assert len(plans) == 3 and {p.version for p in plans} == {2013, 2019}
        for p in plans:
            assert list(p.times) == sorted(p.times) and len(p.bodies) == len(p.times)
            assert p.dead.any() and not p.dead[0]  # a dead zone, never the first point
            assert p.phone == terminal_phone(normalize_plate(p.plate))  # no terminal_phone column
            first = decode_location(p.bodies[0])
            assert int(first.time.timestamp()) == p.times[0]
        assert all(not p.dead.any() for p in plan_replay(small_day, backfill_pct=0))

    def test_bad_options(self, small_day: Path) -> None:
        with pytest.raises(ReplayError, match="version"):
            plan_replay(small_day, version="2011")
        with pytest.raises(ReplayError, match="backfill_pct"):
            plan_replay(small_day, backfill_pct=150)


def _serve_gateway(tmp_path: Path, dataset: Path, ready: threading.Event, box: dict) -> None:
    async def run() -> None:
        from haulwatch.api.gateway import build_gateway

        app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'g.db'}", dataset=dataset))
        gw = build_gateway(app.state.service, GatewayConfig(port=0))
        await gw.start()
        box.update(port=gw.port, gw=gw, svc=app.state.service)
        ready.set()
        while not box.get("stop"):
            await asyncio.sleep(0.05)
        await gw.close()
        app.state.service.live_runner.close()

    asyncio.run(run())


def test_replay_cli_against_a_gateway(small_day: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    ready, box = threading.Event(), {}
    thread = threading.Thread(target=_serve_gateway, args=(tmp_path, small_day, ready, box),
                              daemon=True)
    thread.start()
    assert ready.wait(120)
    try:
        code = main(["replay", str(small_day), "--jt808", f"127.0.0.1:{box['port']}",
                     "--speedup", "0", "--pipeline", "8", "--backfill-pct", "50", "--json"])
    finally:
        box["stop"] = True
        thread.join(60)
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["terminals"] == out["authenticated"] == 3 and out["errors"] == {}
    assert out["backfilled_points"] > 0 and out["batches"] > 0
    stored = box["svc"].store.load_points()
    assert len(stored) == out["reports"] + out["backfilled_points"]
    assert box["gw"].metrics.points["stored"] == len(stored)


def test_replay_cli_refuses_bad_arguments(small_day: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["replay", str(small_day), "--jt808", "nohost"])
    assert info.value.code == 2 and "HOST:PORT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["replay", str(small_day), "--jt808", "127.0.0.1:1", "--backfill-pct", "101"])
    assert info.value.code == 2
    # nothing listens there: every terminal fails to connect, exit status 1
    assert main(["replay", str(small_day), "--jt808", "127.0.0.1:1", "--speedup", "0"]) == 1


def test_front_end_in_its_own_process(small_day: Path, tmp_path: Path) -> None:
    """``process=True``: the child answers terminals and stores, the service audits."""
    from haulwatch.api.gateway import build_gateway
    from haulwatch.api.gateway.replay import replay_plans

    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'p.db'}", dataset=small_day))
    svc = app.state.service
    plans = plan_replay(small_day, version="mixed", backfill_pct=50, seed=3)

    async def go() -> tuple[Any, dict, int]:
        gw = build_gateway(svc, GatewayConfig(port=0, process=True))
        await gw.start()
        try:
            summary = await replay_plans(plans, "127.0.0.1", gw.port, speedup=0, pipeline=4)
            want = summary.reports + summary.backfilled
            for _ in range(300):  # the child sends its counters every second
                await asyncio.sleep(0.1)
                if gw.metrics.snapshot().get("points", {}).get("stored") == want:
                    break
            return summary, gw.metrics.snapshot(), gw.port
        finally:
            await gw.close()

    summary, metrics, port = asyncio.run(go())
    svc.live_runner.close()
    assert summary.errors == {} and all(k.endswith(":0") for k in summary.results)
    assert summary.authenticated == 3 and summary.backfilled > 0 and port > 0
    stored = svc.store.load_points()
    assert len(stored) == summary.reports + summary.backfilled
    assert metrics["points"]["stored"] == len(stored)
    # registrations were written by the child into the service's store
    assert svc.store.db.fetchone("SELECT COUNT(*) FROM jt808_terminals")[0] == 3
    # the points reached this process's live audit: the batch audit's alerts
    from haulwatch.api.services.store import AlertFilter
    from haulwatch.routes.audit import audit_folder

    stored_ids = sorted(a["alert_id"] for a in svc.store.query_alerts(AlertFilter(),
                                                                       limit=10_000)[0])
    assert stored_ids == sorted(audit_folder(small_day).alerts["alert_id"])
    svc.store.close()


# ---------------------------------------------------------------- PostgreSQL
def _pg_bindir() -> tuple[list[str], str] | None:
    """How to run PostgreSQL's tools here (as tests/api/test_store.py does), or None."""
    import os
    import pwd
    import shutil

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
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return None
        prefix = ["runuser", "-u", "postgres", "--"]
    return prefix, str(Path(initdb).parent)


_PGTOOLS = _pg_bindir()


@pytest.fixture(scope="module")
def pg_url() -> Any:
    import os
    import pwd
    import shutil
    import socket
    import subprocess
    import tempfile

    import psycopg

    assert _PGTOOLS is not None
    prefix, bindir = _PGTOOLS
    root = Path(tempfile.mkdtemp(prefix="haulwatch-gw-pg-"))
    if prefix:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    subprocess.run([*prefix, f"{bindir}/initdb", "-D", str(root / "data"), "-A", "trust", "-U",
                    "hw"], check=True, capture_output=True)
    subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", str(root / "data"), "-l",
                    str(root / "log"), "-w", "-o", f"-k {root} -p {port} -h 127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        with psycopg.connect(f"postgresql://hw@127.0.0.1:{port}/postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE a")
            conn.execute("CREATE DATABASE b")
        yield f"postgresql://hw@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, f"{bindir}/pg_ctl", "-D", str(root / "data"), "-m",
                        "immediate", "stop"], check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(_PGTOOLS is None, reason="PostgreSQL or psycopg not installed")
def test_postgresql_store_paths(pg_url: str) -> None:
    """On PostgreSQL: the one-statement insert stores what Store.insert_points stores, and
    auth codes persist."""
    import numpy as np

    from haulwatch.api.gateway.sink import gateway_tracks, insert_new_points

    t0 = 1_772_420_400
    pts = [{"vehicle_id": "浙D·A1234", "time": t0 + s, "lon": 120.0 + s / 1e4, "lat": 30.0,
            "speed_kmh": 500.0 if s % 7 == 0 else 12.5, "heading_deg": None,
            "load": "full" if s % 2 else None, "lift": s % 2} for s in range(700)]
    a, b = Store(f"{pg_url}/a"), Store(f"{pg_url}/b")
    for batch in (pts[:400], pts[300:]):
        tracks, _ = gateway_tracks(batch)
        np.testing.assert_array_equal(insert_new_points(b.db, tracks), a.insert_points(tracks))
    q = ("SELECT vehicle_key, time_us, vehicle_id, lon, lat, speed_kmh, heading_deg, load, lift "
         "FROM points ORDER BY vehicle_key, time_us")
    assert a.db.fetchall(q) == b.db.fetchall(q) and len(b.db.fetchall(q)) == 700
    terms = SqlTerminalStore(b.db)
    code = terms.register("13900000001", "浙DA1234", 2019).auth_code
    assert SqlTerminalStore(b.db).get("13900000001").auth_code == code
    a.close()
    b.close()
