"""Dispatch through the scheduler with two docks and two simulated drones (issue 13).

Priority, one mission per drone, link loss → failed and re-queued (never done), a
restart keeps the queue. The fleet's clock is a fake one (recharge, queue times);
the drones fly on the simulators' own clocks.
"""

from __future__ import annotations

import datetime as dt

import pytest

from haulwatch.drone.fleet import FleetManager
from haulwatch.drone.fleet_run import FleetRunner, link_flyer
from haulwatch.drone.link import LinkConfig
from haulwatch.drone.plan import Dock, PlanConfig
from haulwatch.drone.schedule import ScheduleConfig
from haulwatch.drone.sitl import SimulatedCopter

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
SPEEDUP = 50.0
N1 = Dock("N1", 30.700, 121.020)
N2 = Dock("N2", 30.700, 121.040)
SHORT = PlanConfig(
    min_sun_elevation_deg=None,
    transit_alt_m=30.0,
    orbit_alt_m=30.0,
    orbit_radius_m=30.0,
    orbit_turns=1,
    photo_spacing_m=20.0,
)


def alert(alert_id, lat, lon, severity):
    return {
        "alert_id": alert_id,
        "lat": lat,
        "lon": lon,
        "severity": severity,
        "kind": "illegal_dump",
    }


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def sims():
    made = []
    for dock in (N1, N2):
        sim = SimulatedCopter(
            home_lat_deg=dock.lat_deg,
            home_lon_deg=dock.lon_deg,
            port=0,
            speedup=SPEEDUP,
            prearm_delay_s=4.0,
        ).start()
        made.append(sim)
    yield made
    for sim in made:
        sim.stop()


def make_fleet(sims) -> FleetManager:
    return FleetManager(
        (N1, N2),
        now=T0,
        connections={"N1/1": sims[0].url, "N2/1": sims[1].url},
        plan_config=SHORT,
        schedule_config=ScheduleConfig(recharge_s=600, max_retries=2),
        min_launch_battery_pct=50.0,
    )


def test_two_docks_two_drones(sims, tmp_path):
    clock = Clock()
    state = tmp_path / "fleet.json"
    cut: list[str] = []

    def on_progress(mission_id: str, drone_id: str, status: dict) -> None:
        # the link of the N2 drone dies once it has taken off
        if (
            drone_id == "N2/1"
            and status["phase"] == "flying"
            and status["items_reached"]
            and not cut
        ):
            cut.append(mission_id)
            sims[1].cut_link()

    flyer = link_flyer(
        time_scale=SPEEDUP,
        config=LinkConfig(heartbeat_timeout_s=30.0, command_timeout_s=6.0, min_wall_timeout_s=1.0),
        tlog_dir=tmp_path / "logs",
    )
    runner = FleetRunner(
        make_fleet(sims), clock=clock, flyer=flyer, state_path=state, on_progress=on_progress
    )
    runner.request(alert("near-N1", 30.7025, 121.0215, "high"))
    runner.request(alert("near-N2", 30.7025, 121.0415, "medium"))
    runner.request(alert("between", 30.7010, 121.0300, "low"))
    launches = [d for d in runner.tick() if d.action == "launch"]
    # priority order, each from its own dock, one mission per drone
    assert [(d.alert_id, d.drone_id) for d in launches] == [
        ("near-N1", "N1/1"),
        ("near-N2", "N2/1"),
    ]
    clock.now += dt.timedelta(minutes=1)
    assert [d.action for d in runner.tick()] in ([], ["wait"])  # both drones flying
    assert runner.fleet.queue_view(clock.now)["waiting"][0]["alert_id"] == "between"
    assert runner.wait_idle(300.0)

    done = {r.mission_id: r for r in runner.records.values()}
    ok = done[launches[0].mission_id]
    lost = done[launches[1].mission_id]
    assert ok.outcome == "completed", ok.reason
    assert ok.photos and (tmp_path / "logs" / f"{ok.mission_id}.tlog").stat().st_size > 0
    assert cut == [launches[1].mission_id]
    assert lost.outcome == "failed" and "link lost" in lost.reason
    log = runner.fleet.scheduler.log
    outcome_of = {d.mission_id: d.action for d in log if d.action in ("done", "requeue", "drop")}
    assert outcome_of == {ok.mission_id: "done", lost.mission_id: "requeue"}
    view = runner.fleet.queue_view(clock.now)
    assert [w["alert_id"] for w in view["waiting"]] == ["near-N2", "between"]
    assert view["waiting"][0]["attempts"] == 1 and "link lost" in view["waiting"][0]["last_failure"]
    states = {d["drone_id"]: d["state"] for d in view["drones"]}
    assert states == {"N1/1": "recharging", "N2/1": "recharging"}

    # restart: a new runner on the same state file keeps the queue and the order
    again = FleetRunner(make_fleet(sims), clock=clock, flyer=flyer, state_path=state)
    assert again.restored == []  # nothing was in flight at the last save
    assert [w["alert_id"] for w in again.fleet.queue_view(clock.now)["waiting"]] == [
        "near-N2",
        "between",
    ]
    assert again.fleet.scheduler.known("near-N1")  # handled: not flown twice
