"""haulwatch.drone.reasons: every explanation of the drone room carries a known code + params.

Each scheduler / fleet decision and each planner refusal is checked: its code is in
``REASON_CODES``, its catalog sentence exists in both languages, every placeholder of the
sentence has a parameter, and the rendered text leaves no ``{name}`` unfilled. Figures
expected in the parameters are derived here from the inputs (geodesic distance, times),
not read back from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import string
from pathlib import Path

import pyproj
import pytest
from shapely.geometry import Point

from haulwatch.drone.fleet import AutoDispatchRule, FleetManager
from haulwatch.drone.plan import Dock, MissionRefused, PlanConfig, choose_dock, plan_mission
from haulwatch.drone.reasons import REASON_CODES, reason, render
from haulwatch.drone.schedule import ScheduleConfig, Scheduler

ROOT = Path(__file__).resolve().parents[2]
UTC = dt.timezone.utc
T0 = dt.datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NO_SUN = PlanConfig(min_sun_elevation_deg=None, max_range_m=5000)
N1 = Dock("N1", 30.70, 121.02)
N2 = Dock("N2", 30.75, 121.10)
URLS = {"N1/1": "tcp:127.0.0.1:5760", "N2/1": "tcp:127.0.0.1:5770"}
LANGS = ("zh-CN", "en")


def _catalog(lang: str) -> dict[str, str]:
    return json.loads((ROOT / "haulwatch" / "locales" / f"{lang}.json").read_text("utf-8"))


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def check(value: dict) -> None:
    """A reason: known code, sentence in both catalogs, all placeholders given, nested too."""
    assert set(value) == {"code", "params"}, value
    code, params = value["code"], value["params"]
    assert code in REASON_CODES, code
    for lang in LANGS:
        text = _catalog(lang)[f"reason.{code}"]
        missing = _placeholders(text) - set(params)
        assert not missing, (code, lang, missing)
        out = render(value, lang)
        assert "{" not in out and out.strip(), (code, lang, out)
    for name, v in params.items():
        if name in ("parts", "notes"):
            assert isinstance(v, list)
            for sub in v:
                check(sub)
        elif isinstance(v, dict):
            check(v)
        elif name.endswith("_utc"):
            assert dt.datetime.strptime(v, "%Y-%m-%dT%H:%M:%SZ")  # ISO UTC text


def alert(alert_id, lat=30.71, lon=121.03, severity="high", kind="illegal_dump"):
    return {"alert_id": alert_id, "lat": lat, "lon": lon, "severity": severity, "kind": kind}


def test_every_code_has_a_sentence_in_both_catalogs_with_the_same_placeholders():
    zh, en = _catalog("zh-CN"), _catalog("en")
    for code in REASON_CODES:
        key = f"reason.{code}"
        assert key in zh and key in en, key
        assert _placeholders(zh[key]) == _placeholders(en[key]), key
    with pytest.raises(ValueError, match="not in REASON_CODES"):
        reason("no_such_code")


def test_scheduler_decisions_carry_codes_and_figures():
    s = Scheduler(
        (N1, N2), plan_config=NO_SUN, config=ScheduleConfig(recharge_s=600, max_retries=1)
    )
    for k in range(3):
        s.add_alert(alert(f"a{k}"), T0)
    s.add_alert(alert("far", lat=31.5, lon=122.5), T0)  # > 5 km from both docks
    s.reprioritise("a2", 5, T0, by="ops")
    decisions = s.step(T0)
    by_action = {}
    for d in decisions:
        by_action.setdefault(d.action, []).append(d)
        check(d.reason_dict)
    launch = by_action["launch"][0]
    assert launch.code == "launch" and launch.alert_id == "a2"
    # distance to the chosen dock, independently
    dock = N1 if launch.dock_site_id == "N1" else N2
    _, _, dist = pyproj.Geod(ellps="WGS84").inv(dock.lon_deg, dock.lat_deg, 121.03, 30.71)
    assert launch.params["distance_m"] == round(dist)
    assert launch.params["dock"] == launch.dock_site_id and launch.params["kind"] == "illegal_dump"
    (drop,) = [d for d in by_action["drop"] if d.alert_id == "far"]
    assert drop.code == "drop_infeasible"
    assert {p["params"]["refusal"] for p in drop.params["parts"]} == {"out_of_range"}
    assert {p["params"]["dock"] for p in drop.params["parts"]} == {"N1", "N2"}
    waits = by_action["wait"]
    assert waits and all(w.code == "wait" for w in waits)
    # the launched mission fails once (re-queued), then completes
    end = T0 + dt.timedelta(minutes=9)
    requeue = s.mission_finished(launch.mission_id, "failed", end, detail="link lost")
    check(requeue.reason_dict)
    assert (
        requeue.code == "requeue" and requeue.params["attempt"] == 2 and requeue.params["of"] == 2
    )
    assert requeue.params["until_utc"] == "2026-06-01T02:19:00Z"  # end + 600 s
    assert requeue.params["notes"] == [
        {"code": "failure_detail", "params": {"detail": "link lost"}}
    ]
    assert "link lost" in render(requeue.reason_dict, "zh-CN")
    assert "2026-06-01 10:19" in render(requeue.reason_dict, "zh-CN")  # shown in Asia/Shanghai
    later = T0 + dt.timedelta(minutes=30)
    relaunch = [d for d in s.step(later) if d.action == "launch" and d.alert_id == "a2"]
    (relaunch,) = relaunch
    assert relaunch.params["notes"][0] == {"code": "launch_attempt", "params": {"attempt": 2}}
    done = s.mission_finished(relaunch.mission_id, "completed", later + dt.timedelta(minutes=8))
    check(done.reason_dict)
    assert done.code == "done" and done.params["until_utc"] == "2026-06-01T02:48:00Z"
    assert render(done.reason_dict, "zh-CN").startswith("任务完成；无人机")
    for d in s.log:
        check(d.reason_dict)


def test_stale_night_and_restart_reasons():
    s = Scheduler((N1,), plan_config=NO_SUN, config=ScheduleConfig(max_alert_age_s=3600))
    s.add_alert({**alert("old"), "end": T0 - dt.timedelta(hours=3)}, T0)
    (drop,) = s.step(T0)
    check(drop.reason_dict)
    assert drop.code == "drop_stale" and drop.params["age_h"] == 3.0
    assert drop.params["since_utc"] == "2026-05-31T23:00:00Z"

    night = Scheduler((N1,), plan_config=PlanConfig(max_range_m=5000))
    night.add_alert(alert("n"), dt.datetime(2026, 6, 1, 15, 0, tzinfo=UTC))  # 23:00 local
    (wait,) = night.step(dt.datetime(2026, 6, 1, 15, 0, tzinfo=UTC))
    check(wait.reason_dict)
    (part,) = wait.params["parts"]
    assert part["code"] == "dock_waits" and part["params"]["why"]["code"] == "refused.daylight_sun"
    assert "夜间" in render(wait.reason_dict, "zh-CN")

    s = Scheduler((N1,), plan_config=NO_SUN)
    s.add_alert(alert("f"), T0)
    (_launch,) = s.step(T0)
    fresh = Scheduler((N1,), plan_config=NO_SUN)
    (requeue,) = fresh.restore(s.snapshot(), T0 + dt.timedelta(minutes=5))
    check(requeue.reason_dict)
    assert requeue.params["notes"] == [{"code": "service_restarted", "params": {}}]
    (entry,) = fresh.entries()
    assert entry["last_failure_code"] == "flight_failed"


def test_fleet_holds_waits_cancel_and_offer():
    f = FleetManager(
        (N1, N2),
        now=T0,
        connections={"N1/1": URLS["N1/1"]},
        plan_config=NO_SUN,
        rule=AutoDispatchRule(enabled=True, flight_hours=None),
    )
    f.report_battery("N1/1", 61.0, T0)
    f.request(alert("a"), T0)
    f.request(alert("b", severity="low"), T0)
    f.step(T0)
    view = f.queue_view(T0)
    drones = {d["drone_id"]: d for d in view["drones"]}
    assert drones["N1/1"]["unavailable_reasons"] == [
        {"code": "charging", "params": {"battery_pct": 61, "min_pct": 90}}
    ]
    assert drones["N2/1"]["unavailable_reasons"] == [{"code": "no_connection", "params": {}}]
    assert render(drones["N1/1"]["unavailable_reasons"][0], "zh-CN") == (
        "充电中：电量 61%，低于起飞所需 90%"
    )
    for d in view["drones"]:
        for r in d["unavailable_reasons"]:
            check(r)
    for w in view["waiting"]:
        assert w["waiting_code"] == "wait"
        check({"code": w["waiting_code"], "params": w["waiting_params"]})
    for entry in view["log"]:
        if entry["code"]:
            check({"code": entry["code"], "params": entry["params"]})
    assert {e["action"] for e in view["log"]} >= {"hold", "wait"}
    f.set_available("N1/1", False, T0, reason="maintenance")
    (hold,) = [e for e in f.queue_view(T0)["log"] if e["action"] == "hold"][-1:]
    check({"code": hold["code"], "params": hold["params"]})
    assert "maintenance" in render({"code": hold["code"], "params": hold["params"]}, "zh-CN")
    out = f.cancel("b", T0, by="ops")
    assert out["reason_code"] == "cancelled_by" and out["reason_params"] == {"by": "ops"}
    queued, _text, why = f.offer_reason(alert("c", kind="gps_gap"), T0)
    assert not queued
    check(why)
    assert why == {"code": "auto_kind", "params": {"kind": "gps_gap"}}
    queued, _text, why = f.offer_reason(alert("d"), T0)  # no free drone: both held
    check(why)
    assert not queued and why["code"] == "auto_no_dock"


def _zone(lon: float, lat: float, half: float = 0.003):
    return Point(lon, lat).buffer(half, cap_style="square")


@pytest.mark.parametrize(
    ("target", "config", "zones", "code"),
    [
        ((31.0, 121.5), NO_SUN, None, "refused.out_of_range"),
        (
            (30.71, 121.03),
            PlanConfig(min_sun_elevation_deg=None, max_range_m=5000, endurance_s=120),
            None,
            "refused.battery",
        ),
        ((30.71, 121.03), NO_SUN, [_zone(121.03, 30.71)], "refused.target_in_no_fly"),
        ((30.71, 121.03), NO_SUN, [_zone(121.02, 30.70)], "refused.dock_in_no_fly"),
        ((30.71, 121.03), NO_SUN, [_zone(121.03, 30.713135, 0.003)], "refused.orbit_in_no_fly"),
    ],
)
def test_planner_refusals_carry_their_figures(target, config, zones, code):
    t = {"lat": target[0], "lon": target[1]}
    with pytest.raises(MissionRefused) as exc:
        plan_mission(t, N1, no_fly=zones, config=config)
    why = exc.value.reason_dict
    check(why)
    assert why["code"] == code
    if code == "refused.out_of_range":
        _, _, dist = pyproj.Geod(ellps="WGS84").inv(N1.lon_deg, N1.lat_deg, 121.5, 31.0)
        assert why["params"] == {"distance_m": round(dist), "max_range_m": 5000}
        assert render(why, "zh-CN") == f"超出航程：目标距机巢 {round(dist)} m，最大航程 5000 m"


def test_no_feasible_dock_lists_each_dock():
    with pytest.raises(MissionRefused) as exc:
        choose_dock({"lat": 31.0, "lon": 121.5}, (N1, N2), config=NO_SUN)
    why = exc.value.reason_dict
    check(why)
    assert [p["params"]["dock"] for p in why["params"]["parts"]] == ["N2", "N1"]  # nearer first
    assert render(why, "en").startswith("no dock can fly it: dock N2: ")


def test_night_window_refusal_times_in_the_dataset_zone():
    cfg = PlanConfig(
        min_sun_elevation_deg=None, max_range_m=5000, local_window=(dt.time(7, 0), dt.time(19, 0))
    )
    with pytest.raises(MissionRefused) as exc:
        plan_mission(
            {"lat": 30.71, "lon": 121.03},
            N1,
            config=cfg,
            now=dt.datetime(2026, 6, 1, 12, 30, tzinfo=UTC),
        )  # 20:30 local
    why = exc.value.reason_dict
    check(why)
    assert why["code"] == "refused.daylight_window"
    assert why["params"]["start_utc"] == "2026-06-01T12:30:00Z"
    assert "2026-06-01 20:30" in render(why, "zh-CN")
