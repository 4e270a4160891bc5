"""A real dronekit script drives the simulator (through the Python >= 3.10 shim)."""

from __future__ import annotations

import collections
import collections.abc
import threading
import time

import pytest

from haulwatch import waiting
from haulwatch.drone.dronekit_compat import ABC_NAMES, import_dronekit, install
from haulwatch.drone.sitl import SimulatedCopter

HOME = (30.70, 121.02, 4.0)


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_shim_restores_collections_aliases():
    install()
    for name in ABC_NAMES:
        assert getattr(collections, name) is getattr(collections.abc, name)
    assert install() == []  # idempotent


def test_dronekit_reads_arms_and_takes_off():
    dronekit = import_dronekit()
    sim = SimulatedCopter(
        home_lat_deg=HOME[0],
        home_lon_deg=HOME[1],
        home_alt_m=HOME[2],
        port=0,
        speedup=10,
        prearm_delay_s=3.0,
    ).start()
    vehicle = None
    try:
        vehicle = dronekit.connect(sim.url, wait_ready=True, heartbeat_timeout=60)
        here = vehicle.location.global_relative_frame
        assert here.lat == pytest.approx(HOME[0], abs=1e-6)
        assert here.lon == pytest.approx(HOME[1], abs=1e-6)
        assert here.alt == pytest.approx(0.0, abs=0.1)
        assert vehicle.battery.level == 100
        assert vehicle.battery.voltage > 14.0
        assert vehicle.mode.name == "STABILIZE"
        assert vehicle.armed is False
        assert vehicle.parameters["FENCE_RADIUS"] == 300

        vehicle.commands.download()
        vehicle.commands.wait_ready()
        home = vehicle.home_location
        # home 0.08 m above the ground, as a real SITL's EKF sets it
        assert (home.lat, home.lon, home.alt) == pytest.approx(
            (HOME[0], HOME[1], HOME[2] + 0.08), abs=1e-5
        )

        vehicle.mode = dronekit.VehicleMode("GUIDED")
        wait_for(lambda: vehicle.mode.name == "GUIDED", 10, "GUIDED")
        wait_for(lambda: vehicle.is_armable, 20, "is_armable")
        vehicle.armed = True
        wait_for(lambda: vehicle.armed, 10, "armed")
        vehicle.simple_takeoff(15)
        wait_for(lambda: vehicle.location.global_relative_frame.alt >= 14.5, 20, "15 m")
        assert vehicle.location.global_relative_frame.alt <= 15.5
        assert sim.model.alt_m == pytest.approx(15.0, abs=0.6)

        goal = dronekit.LocationGlobalRelative(HOME[0] + 0.0005, HOME[1], 15)  # ~55 m north
        vehicle.simple_goto(goal)
        wait_for(lambda: vehicle.location.global_relative_frame.lat > HOME[0] + 0.00045, 20, "goto")
    finally:
        if vehicle is not None:
            # dronekit's writer thread polls out_queue.get(timeout=0.01), a timed wait that
            # never returns under libfaketime 0.9.10 (see haulwatch.waiting), and close() (and
            # dronekit's atexit hook) join it: wake it with an empty write, close on the side
            handler = vehicle._handler
            handler._alive = False
            handler.out_queue.put(b"")
            closer = threading.Thread(target=vehicle.close, daemon=True)
            closer.start()
            waiting.join(closer, 10.0)
        sim.stop()
