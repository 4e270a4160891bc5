"""haulwatch.drone.fleet: several docks, each drone's connection, charge and availability."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from haulwatch.drone.fleet import AutoDispatchRule, FleetError, FleetManager
from haulwatch.drone.plan import Dock, PlanConfig
from haulwatch.drone.schedule import ScheduleConfig

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NO_SUN = PlanConfig(min_sun_elevation_deg=None, max_range_m=5000)
N1 = Dock("N1", 30.70, 121.02)
N2 = Dock("N2", 30.75, 121.10)
URLS = {"N1/1": "tcp:127.0.0.1:5760", "N2/1": "tcp:127.0.0.1:5770"}


def alert(alert_id, lat=30.71, lon=121.03, severity="high", kind="illegal_dump"):
    return {"alert_id": alert_id, "lat": lat, "lon": lon, "severity": severity, "kind": kind}


def fleet(**kw) -> FleetManager:
    kw.setdefault("connections", URLS)
    kw.setdefault("plan_config", NO_SUN)
    kw.setdefault("schedule_config", ScheduleConfig(recharge_s=600))
    return FleetManager((N1, N2), now=T0, **kw)


def minutes(m: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=m)


class TestDrones:
    def test_drone_without_connection_is_held(self):
        f = fleet(connections={"N1/1": URLS["N1/1"]})
        view = f.queue_view(T0)
        by_id = {d["drone_id"]: d for d in view["drones"]}
        assert by_id["N2/1"]["state"] == "unavailable"
        assert by_id["N2/1"]["unavailable_because"] == "no connection configured"
        assert by_id["N1/1"]["state"] == "free" and by_id["N1/1"]["connection"] == URLS["N1/1"]
        f.set_connection("N2/1", "tcp:127.0.0.1:5780", T0)
        assert f.url("N2/1") == "tcp:127.0.0.1:5780"
        assert f.queue_view(T0)["drones"][1]["state"] == "free"
        with pytest.raises(FleetError, match="unknown drones"):
            fleet(connections={"N9/1": "tcp:x:1"})

    def test_low_battery_holds_until_charged(self):
        f = fleet()
        f.report_battery("N1/1", 35.0, T0)
        f.set_available("N2/1", False, T0, reason="maintenance")
        f.request(alert("a"), T0)
        (wait,) = f.step(T0)
        assert wait.action == "wait"
        states = {d["drone_id"]: d for d in f.queue_view(T0)["drones"]}
        assert "charging: battery 35%" in states["N1/1"]["unavailable_because"]
        assert states["N2/1"]["unavailable_because"] == "maintenance"
        f.report_battery("N1/1", 95.0, minutes(40))
        (launch,) = f.step(minutes(40))
        assert (launch.action, launch.drone_id) == ("launch", "N1/1")
        assert f.url(launch.drone_id) == URLS["N1/1"]
        with pytest.raises(FleetError, match=r"\[0, 100\]"):
            f.report_battery("N1/1", 120, T0)


class TestTasks:
    def test_two_docks_priority_one_mission_per_drone_and_recharge(self):
        f = fleet()
        f.request(alert("a", lat=30.73, lon=121.06, severity="medium"), T0)  # both docks reach it
        f.request(alert("b", severity="high"), T0)  # near N1 only
        f.request(alert("c", severity="low"), T0)
        launches = [d for d in f.step(T0) if d.action == "launch"]
        # the high one first, from its dock; the next one from the other (free) dock
        assert [(d.alert_id, d.drone_id) for d in launches] == [("b", "N1/1"), ("a", "N2/1")]
        view = f.queue_view(T0)
        assert [w["alert_id"] for w in view["waiting"]] == ["c"]
        assert {x["alert_id"] for x in view["flying"]} == {"a", "b"}
        # one mission per drone: nothing else launches while both fly
        assert [d.action for d in f.step(minutes(5))] == []
        done = f.finished(launches[0].mission_id, "completed", minutes(20))
        assert done.action == "done"
        assert [d.action for d in f.step(minutes(21))] == ["wait"]  # N1/1 recharging
        states = {d["drone_id"]: d["state"] for d in f.queue_view(minutes(21))["drones"]}
        assert states["N1/1"] == "recharging"
        (launch,) = [d for d in f.step(minutes(30)) if d.action == "launch"]
        assert (launch.alert_id, launch.drone_id) == ("c", "N1/1")

    def test_link_loss_fails_and_requeues_never_done(self):
        f = fleet(schedule_config=ScheduleConfig(recharge_s=0, max_retries=1))
        f.request(alert("a"), T0)
        (launch,) = f.step(T0)
        d = f.finished(launch.mission_id, "failed", minutes(3), detail="link lost: no heartbeat")
        assert d.action == "requeue" and "link lost" in d.reason
        (again,) = f.step(minutes(4))
        assert again.action == "launch" and again.mission_id != launch.mission_id
        d = f.finished(again.mission_id, "failed", minutes(8), detail="link lost")
        assert d.action == "drop"
        assert not any(x.action == "done" for x in f.scheduler.log)

    def test_cancel_and_reprioritise(self):
        f = fleet(connections={"N1/1": URLS["N1/1"]})
        for k, sev in enumerate(("high", "medium", "low")):
            f.request(alert(f"a{k}", severity=sev), T0)
        f.reprioritise("a2", 10, T0, by="ops")
        (launch, *_waits) = f.step(T0)
        assert launch.alert_id == "a2"
        assert f.cancel("a1", T0, by="ops") == {
            "action": "dropped",
            "alert_id": "a1",
            "reason": "cancelled by ops",
            "reason_code": "cancelled_by",
            "reason_params": {"by": "ops"},
        }
        flying = f.cancel("a2", T0)
        assert flying["action"] == "abort" and flying["mission_id"] == launch.mission_id
        with pytest.raises(FleetError, match="neither queued nor flying"):
            f.cancel("zz", T0)

    def test_timed_task_waits_for_its_time(self):
        f = fleet()
        assert f.request(alert("t"), T0, not_before=minutes(30)) is True
        assert f.request(alert("t"), T0, not_before=minutes(30)) is False
        assert f.step(minutes(29)) == []
        assert f.queue_view(minutes(29))["timed"][0]["not_before"] == "2026-06-01T02:30:00Z"
        (launch,) = f.step(minutes(30))
        assert launch.alert_id == "t"


class TestAutoDispatch:
    RULE = AutoDispatchRule(enabled=True)

    def test_off_by_default(self):
        f = fleet()
        assert f.offer(alert("a"), T0) == (False, "automatic dispatch is off")
        assert f.step(T0) == []

    def test_high_dump_near_a_free_dock_in_hours_is_queued(self):
        f = fleet(rule=self.RULE)
        queued, why = f.offer(alert("a"), T0)
        assert queued and why.startswith("automatic dispatch: dock N1 free")
        assert f.step(T0)[0].action == "launch"

    @pytest.mark.parametrize(
        ("kw", "now", "why"),
        [
            ({"severity": "medium"}, T0, "severity medium not in"),
            ({"kind": "route_deviation"}, T0, "kind route_deviation not in"),
            ({}, dt.datetime(2026, 6, 1, 14, 0, tzinfo=UTC), "outside flight hours 07:00-19:00"),
            ({"lat": 31.5, "lon": 122.5}, T0, "no dock with a free drone within 5000 m"),
        ],
    )
    def test_rule_refusals(self, kw, now, why):
        f = fleet(rule=self.RULE)
        a = {**alert("a"), **kw}
        queued, reason = f.offer(a, now)
        assert not queued and reason.startswith(why)

    def test_busy_docks_do_not_auto_dispatch(self):
        f = fleet(rule=AutoDispatchRule(enabled=True, max_distance_m=3000))
        f.set_available("N1/1", False, T0, reason="maintenance")
        queued, reason = f.offer(alert("a"), T0)  # N2 is ~7 km away
        assert not queued and "within 3000 m" in reason

    def test_bad_rules(self):
        with pytest.raises(FleetError, match="severities"):
            AutoDispatchRule(severities=("urgent",))
        with pytest.raises(FleetError, match="flight_hours"):
            AutoDispatchRule(flight_hours=(dt.time(7), dt.time(7)))
        with pytest.raises(FleetError, match="enabled"):
            AutoDispatchRule(enabled="yes")


class TestRestart:
    def test_restart_keeps_queue_timed_tasks_and_holds(self):
        f = fleet()
        f.request(alert("a"), T0)
        f.request(alert("b", severity="low"), T0)
        f.request(alert("t"), T0, not_before=minutes(60))
        f.set_available("N2/1", False, T0, reason="maintenance")
        (launch, _wait) = f.step(T0)
        saved = json.loads(json.dumps(f.snapshot()))

        g = fleet()
        (requeue,) = g.restore(saved, minutes(2))
        assert requeue.action == "requeue" and requeue.alert_id == launch.alert_id
        view = g.queue_view(minutes(2))
        assert [w["alert_id"] for w in view["waiting"]] == ["a", "b"]
        assert [t["alert_id"] for t in view["timed"]] == ["t"]
        states = {d["drone_id"]: d for d in view["drones"]}
        assert states["N2/1"]["unavailable_because"] == "maintenance"
        assert states["N1/1"]["state"] == "recharging"  # it flew before the restart
