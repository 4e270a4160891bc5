"""Tests for haulwatch.drone.schedule: a fake clock drives the scheduler."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from haulwatch.drone.plan import Dock, MissionRefused, PlanConfig, plan_mission
from haulwatch.drone.schedule import (
    Decision,
    ScheduleConfig,
    Scheduler,
    SchedulerError,
)

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 6, 1, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
NO_SUN = PlanConfig(min_sun_elevation_deg=None, max_range_m=5000)
N1 = Dock("N1", 30.70, 121.02)
N2 = Dock("N2", 30.75, 121.10)


class Clock:
    """A fake clock: the only time source the tests give the scheduler."""

    def __init__(self, start: dt.datetime = T0) -> None:
        self.now = start

    def advance(self, **kw: float) -> dt.datetime:
        self.now += dt.timedelta(**kw)
        return self.now


def alert(alert_id, lat=30.71, lon=121.03, severity="high", kind="illegal_dump", **kw):
    return {"alert_id": alert_id, "lat": lat, "lon": lon, "severity": severity, "kind": kind, **kw}


def make(docks=(N1,), plan_config=NO_SUN, **kw):
    return Scheduler(docks, plan_config=plan_config, config=ScheduleConfig(**kw))


def actions(decisions):
    return [(d.action, d.alert_id) for d in decisions]


class TestQueue:
    def test_empty(self):
        s = make()
        assert s.step(T0) == []
        assert s.queued == [] and s.active == {}

    def test_severity_first(self):
        s = make()
        s.add_alert(alert("low", severity="low"), T0)
        s.add_alert(alert("high", severity="high"), T0)
        out = s.step(T0)
        assert actions(out) == [("launch", "high"), ("wait", "low")]

    def test_kind_then_age_order(self):
        s = make(docks=())
        s.add_alert(alert("gap", kind="gps_gap"), T0)
        s.add_alert(alert("new", end="2026-06-01T01:30:00Z"), T0)  # added first, newer
        s.add_alert(alert("old", end="2026-06-01T00:30:00Z"), T0)
        s.add_alert(alert("mid", end=dt.datetime(2026, 6, 1, 9, 0)), T0)  # naive = local 01:00Z
        assert s.queued == ["old", "mid", "new", "gap"]

    def test_duplicates_ignored(self):
        s = make()
        assert s.add_alert(alert("a"), T0) is True
        assert s.add_alert(alert("a"), T0) is False
        s.step(T0)
        assert s.add_alert(alert("a"), T0) is False  # already in flight
        assert s.queued == []

    def test_input_left_unchanged(self):
        a = alert("a", end="2026-06-01T01:00:00Z")
        before = copy.deepcopy(a)
        s = make()
        s.add_alert(a, T0)
        s.step(T0)
        assert a == before

    @pytest.mark.parametrize(
        ("bad", "match"),
        [
            ({"lat": 30.7, "lon": 121.0}, "alert_id"),
            (alert(""), "alert_id"),
            (alert("x", lat=91.0), "lat"),
            (alert("x", lon=None), "lon"),
            (alert("x", end="yesterday"), "alert.end"),
        ],
    )
    def test_bad_alerts(self, bad, match):
        with pytest.raises(SchedulerError, match=match):
            make().add_alert(bad, T0)

    def test_cancel(self):
        s = make()
        s.add_alert(alert("a"), T0)
        d = s.cancel("a", T0, reason="dismissed by dispatcher")
        assert (d.action, d.reason) == ("drop", "dismissed by dispatcher")
        assert s.step(T0) == []
        with pytest.raises(SchedulerError, match="not queued"):
            s.cancel("a", T0)


class TestLaunch:
    def test_launch_decision_is_explained(self):
        s = make()
        s.add_alert(alert("a"), T0)
        (d,) = s.step(T0)
        assert isinstance(d, Decision)
        assert (d.action, d.dock_site_id, d.drone_id) == ("launch", "N1", "N1/1")
        assert d.mission_id and d.mission is not None
        assert d.mission.alert_id == "a" and d.mission.dock_site_id == "N1"
        assert d.time == T0
        assert "1465 m" in d.reason and "min" in d.reason and "battery" in d.reason
        assert s.active == {d.mission_id: ("a", "N1/1")}
        assert s.drone_states(T0)["N1/1"][0] == "flying"
        assert s.log == [d]

    def test_wait_only_when_the_reason_changes(self):
        clock = Clock()
        s = make(recharge_s=600)
        s.add_alert(alert("a"), clock.now)
        s.add_alert(alert("b"), clock.now)
        first = s.step(clock.now)
        assert actions(first) == [("launch", "a"), ("wait", "b")]
        assert "flying until" in first[1].reason
        assert s.step(clock.advance(minutes=1)) == []  # same reason: silent
        s.mission_finished(first[0].mission_id, "completed", clock.advance(minutes=10))
        (wait,) = s.step(clock.now)
        assert wait.action == "wait" and "recharging until 2026-06-01T02:21:00Z" in wait.reason
        assert s.step(clock.advance(minutes=9, seconds=59)) == []
        (launch,) = s.step(clock.advance(seconds=1))
        assert (launch.action, launch.alert_id, launch.drone_id) == ("launch", "b", "N1/1")

    def test_second_dock_used_when_first_busy(self):
        mid = {"lat": 30.725, "lon": 121.06}  # ~4 km from both docks
        s = make(docks=(N1, N2))
        s.add_alert(alert("a", **mid), T0)
        s.add_alert(alert("b", **mid), T0)
        out = s.step(T0)
        assert [d.action for d in out] == ["launch", "launch"]
        assert {d.dock_site_id for d in out} == {"N1", "N2"}
        assert "(busy)" in out[1].reason  # the other dock is named busy

    def test_shortest_flight_dock_chosen(self):
        s = make(docks=(N2, N1))  # order given does not matter
        s.add_alert(alert("a", lat=30.745, lon=121.095), T0)
        (d,) = s.step(T0)
        assert d.dock_site_id == "N2"

    def test_dock_without_drones_not_used(self):
        s = make(docks=(Dock("N0", 30.709, 121.029, drones=0), N1))
        s.add_alert(alert("a"), T0)
        (d,) = s.step(T0)
        assert d.dock_site_id == "N1"

    def test_naive_time_is_local(self):
        s = make()
        s.add_alert(alert("a"), dt.datetime(2026, 6, 1, 10, 0))
        (d,) = s.step(dt.datetime(2026, 6, 1, 10, 0))
        assert d.time == T0


class TestOutcomes:
    def test_completed(self):
        s = make(recharge_s=1800)
        s.add_alert(alert("a"), T0)
        (launch,) = s.step(T0)
        done = s.mission_finished(launch.mission_id, "completed", T0 + dt.timedelta(minutes=9))
        assert (done.action, done.drone_id) == ("done", "N1/1")
        state, until = s.drone_states(T0 + dt.timedelta(minutes=10))["N1/1"]
        assert state == "recharging" and until == T0 + dt.timedelta(minutes=39)
        assert s.active == {}

    def test_failed_requeued_then_dropped(self):
        clock = Clock()
        s = make(recharge_s=0, max_retries=2)
        s.add_alert(alert("a"), clock.now)
        seen = []
        for _ in range(3):
            (launch,) = s.step(clock.advance(minutes=1))
            seen.append(launch.mission_id)
            d = s.mission_finished(
                launch.mission_id, "failed", clock.advance(minutes=5), detail="link lost"
            )
        assert len(set(seen)) == 3  # one id per attempt
        assert d.action == "drop" and "3 times" in d.reason and "link lost" in d.reason
        assert s.step(clock.advance(minutes=1)) == []
        assert [x.action for x in s.log if x.action in ("requeue", "drop")] == [
            "requeue",
            "requeue",
            "drop",
        ]

    def test_aborted_counts_as_failure(self):
        s = make(recharge_s=0, max_retries=0)
        s.add_alert(alert("a"), T0)
        (launch,) = s.step(T0)
        assert s.mission_finished(launch.mission_id, "aborted", T0).action == "drop"

    def test_bad_events(self):
        s = make()
        s.add_alert(alert("a"), T0)
        (launch,) = s.step(T0)
        with pytest.raises(SchedulerError, match="outcome"):
            s.mission_finished(launch.mission_id, "crashed-ish", T0)
        with pytest.raises(SchedulerError, match="not in flight"):
            s.mission_finished("nope", "completed", T0)
        with pytest.raises(SchedulerError, match="now"):
            s.step("not a time")


class TestRefusals:
    def test_infeasible_everywhere_is_dropped_with_reasons(self):
        s = make(docks=(N1, N2))
        s.add_alert(alert("far", lat=31.5, lon=121.5), T0)
        (d,) = s.step(T0)
        assert d.action == "drop"
        assert "N1: out_of_range" in d.reason and "N2: out_of_range" in d.reason

    def test_no_docks(self):
        s = make(docks=())
        s.add_alert(alert("a"), T0)
        (d,) = s.step(T0)
        assert d.action == "drop" and "no docks" in d.reason

    def test_night_waits_then_flies(self):
        clock = Clock(dt.datetime(2026, 6, 1, 15, 0, tzinfo=UTC))  # 23:00 local
        s = make(plan_config=PlanConfig())
        s.add_alert(alert("a"), clock.now)
        (wait,) = s.step(clock.now)
        assert wait.action == "wait" and "sun elevation" in wait.reason
        (launch,) = s.step(clock.advance(hours=7))  # 06:00 local
        assert launch.action == "launch"
        assert launch.mission.meta["sun_elevation_deg"][0] > -6

    def test_stale_alerts_dropped(self):
        s = make(max_alert_age_s=3600)
        s.add_alert(alert("old", end="2026-05-31T00:00:00Z"), T0)
        s.add_alert(alert("fresh", end="2026-06-01T01:30:00Z"), T0)
        out = s.step(T0)
        assert actions(out) == [("drop", "old"), ("launch", "fresh")]
        assert "max_alert_age_s" in out[0].reason

    def test_plans_once_per_alert_and_dock(self):
        calls = []

        def planner(target, dock):
            calls.append((target["alert_id"], dock.site_id))
            return plan_mission(target, dock, config=NO_SUN)

        s = Scheduler([N1], config=ScheduleConfig(), plan_config=NO_SUN, planner=planner)
        s.add_alert(alert("a"), T0)
        s.add_alert(alert("b"), T0)
        for minutes in range(5):
            s.step(T0 + dt.timedelta(minutes=minutes))
        assert sorted(calls) == [("a", "N1"), ("b", "N1")]

    def test_permanent_refusal_cached(self):
        calls = []

        def planner(target, dock):
            calls.append(dock.site_id)
            if dock.site_id == "N2":
                raise MissionRefused("no_path", "walled in")
            return plan_mission(target, dock, config=NO_SUN)

        s = Scheduler([N1, N2], plan_config=NO_SUN, planner=planner)
        s.add_alert(alert("a"), T0)
        s.add_alert(alert("b"), T0)
        out = s.step(T0)
        assert "N2: infeasible, no_path" in out[1].reason
        s.step(T0 + dt.timedelta(minutes=1))
        assert calls.count("N2") == 2  # once per alert


class TestDeterminism:
    def test_same_events_same_decisions(self):
        def run():
            clock = Clock()
            s = make(docks=(N1, N2), recharge_s=300)
            for k in range(4):
                s.add_alert(alert(f"a{k}", lat=30.71 + 0.004 * k, severity="medium"), clock.now)
            for _ in range(10):
                for d in s.step(clock.advance(minutes=3)):
                    if d.action == "launch":
                        s.mission_finished(d.mission_id, "completed", clock.advance(minutes=1))
            return [(d.action, d.alert_id, d.drone_id, d.reason, d.time) for d in s.log]

        first = run()
        assert first == run()
        assert sum(1 for a, *_ in first if a == "launch") == 4


class TestConfig:
    @pytest.mark.parametrize(
        ("kw", "match"),
        [
            ({"recharge_s": -1}, "recharge_s"),
            ({"max_retries": -1}, "max_retries"),
            ({"max_retries": 1.5}, "max_retries"),
            ({"max_alert_age_s": 0}, "max_alert_age_s"),
            ({"kind_priority": "illegal_dump"}, "kind_priority"),
            ({"timezone": "Nowhere/Land"}, "timezone"),
        ],
    )
    def test_bad_parameters(self, kw, match):
        with pytest.raises(SchedulerError, match=match):
            ScheduleConfig(**kw)

    def test_duplicate_docks(self):
        with pytest.raises(SchedulerError, match="unique"):
            Scheduler([N1, N1])


class TestDispatcherControls:
    def test_priority_goes_before_severity(self):
        s = make()
        s.add_alert(alert("hi"), T0)
        s.add_alert(alert("lo", severity="low"), T0)
        assert s.queued == ["hi", "lo"]
        d = s.reprioritise("lo", 5, T0, by="dispatcher1")
        assert d.action == "reprioritise" and "0 -> 5 by dispatcher1" in d.reason
        assert "#1" in d.reason
        assert s.queued == ["lo", "hi"]
        (launch, _wait) = s.step(T0)
        assert (launch.action, launch.alert_id) == ("launch", "lo")
        with pytest.raises(SchedulerError, match="not queued"):
            s.reprioritise("lo", 1, T0)
        with pytest.raises(SchedulerError, match="priority"):
            s.add_alert(alert("x"), T0, priority=1.5)

    def test_held_drone_is_not_used(self):
        s = make()
        s.add_alert(alert("a"), T0)
        hold = s.hold_drone("N1/1", "battery 20% below 40%", T0)
        assert hold.action == "hold" and s.hold_drone("N1/1", "battery 20% below 40%", T0) is None
        assert s.drone_states(T0)["N1/1"] == ("unavailable", None)
        (wait,) = s.step(T0)
        assert wait.action == "wait"
        assert s.hold_drone("N1/1", "", T0).action == "release"
        (launch,) = s.step(T0)
        assert launch.action == "launch"
        with pytest.raises(SchedulerError, match="unknown"):
            s.hold_drone("N9/1", "x", T0)


class TestRestart:
    def test_restart_keeps_the_queue_and_requeues_what_was_flying(self):
        import json

        clock = Clock()
        s = make(docks=(N1, N2), recharge_s=600)
        s.add_alert(alert("a"), clock.now)
        s.add_alert(alert("b", severity="medium"), clock.now)
        s.add_alert(alert("c", severity="low"), clock.now, priority=-1)
        s.hold_drone("N2/1", "maintenance", clock.now)
        (launch, *_rest) = s.step(clock.now)
        assert launch.alert_id == "a"
        saved = json.loads(json.dumps(s.snapshot()))  # through JSON, as stored

        after = make(docks=(N1, N2), recharge_s=600)
        decisions = after.restore(saved, clock.advance(minutes=3))
        (requeue,) = decisions
        assert requeue.action == "requeue" and "service restarted" in requeue.reason
        assert after.queued == ["a", "b", "c"]  # never "done"; the order kept
        assert after.drone_states(clock.now)["N1/1"][0] == "recharging"
        assert after.drone_states(clock.now)["N2/1"] == ("unavailable", None)
        assert after.add_alert(alert("a"), clock.now) is False  # still known
        with pytest.raises(SchedulerError, match="fresh"):
            after.restore(saved, clock.now)
        with pytest.raises(SchedulerError, match="version"):
            make().restore({"queue": []}, clock.now)
