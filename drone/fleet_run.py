"""Fly a :class:`~haulwatch.drone.fleet.FleetManager`'s launches: one thread per flight.

:class:`FleetRunner` is the small piece of I/O around the pure fleet manager: on
each :meth:`FleetRunner.tick` it asks the manager what to do at ``clock()``,
starts a thread per ``launch`` that flies the mission on that drone's MAVLink
connection (:class:`~haulwatch.drone.link.VehicleLink`), and reports the flight's
outcome back (``completed``; ``failed`` with the reason, e.g. link loss → the
alert is re-queued, never counted done; ``aborted``). The drone's charge at
landing is reported too (a drone below the launch minimum is held until it
reports enough again). With ``state_path`` the fleet's state is written after
every change and read back on start, so a restart keeps the queue; what was in
flight comes back failed and re-queued.

The clock is injected (a service passes its own; tests a fake one); the only
wall-clock waits are thread joins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from haulwatch import waiting
from haulwatch.drone.fleet import FleetManager
from haulwatch.drone.flight import FlightRecord, utc_now_iso
from haulwatch.drone.mission import Mission
from haulwatch.drone.schedule import Decision

__all__ = ["FleetRunner", "Flyer", "link_flyer"]

_log = logging.getLogger(__name__)

#: ``flyer(url, mission, *, mission_id, abort, progress) -> FlightRecord``
Flyer = Callable[..., FlightRecord]


def link_flyer(
    *, time_scale: float = 1.0, tlog_dir: str | os.PathLike[str] | None = None, **link_kw: Any
) -> Flyer:
    """A flyer over MAVLink: connect to ``url``, fly, forward an abort, close.

    Parameters
    ----------
    time_scale : float, default 1
        Vehicle seconds per wall second (a simulator's speed-up).
    tlog_dir : path, optional
        Keep each flight's telemetry log as ``<tlog_dir>/<mission_id>.tlog``.
    **link_kw
        More :class:`~haulwatch.drone.link.VehicleLink` options (``config``...).
    """
    from haulwatch.drone.link import VehicleLink, VehicleLinkError

    def fly(
        url: str,
        mission: Mission,
        *,
        mission_id: str,
        abort: threading.Event,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> FlightRecord:
        tlog = None if tlog_dir is None else Path(tlog_dir) / f"{mission_id}.tlog"
        link = VehicleLink(url, time_scale=time_scale, tlog_path=tlog, **link_kw)
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                if waiting.wait(abort, 0.2):
                    link.abort("cancelled by the dispatcher")
                    return

        watcher = threading.Thread(target=watch, name=f"abort-{mission_id}", daemon=True)
        watcher.start()
        try:
            with link:
                return link.fly_mission(mission, progress=progress, mission_id=mission_id)
        except (VehicleLinkError, OSError, TimeoutError) as exc:
            record = FlightRecord(
                mission_id=mission_id,
                alert_id=mission.alert_id,
                dock_site_id=mission.dock_site_id,
                connect=url,
                started_at=utc_now_iso(),
            )
            record.finish("failed", f"link: {type(exc).__name__}: {exc}")
            return record
        finally:
            done.set()
            waiting.join(watcher, 1.0)

    return fly


class FleetRunner:
    """Run a fleet: launch flights in threads, report outcomes, keep the state.

    Parameters
    ----------
    fleet : FleetManager
        The docks, drones and queue.
    clock : callable
        Returns the current tz-aware time (the only time source).
    flyer : callable, optional
        ``flyer(url, mission, *, mission_id, abort, progress) -> FlightRecord``;
        default :func:`link_flyer`.
    state_path : path, optional
        JSON file of the fleet's state, read on start and written on every change.
    on_progress : callable, optional
        ``on_progress(mission_id, drone_id, status)`` for each progress status.
    on_finished : callable, optional
        ``on_finished(decision, record)`` after each flight.
    """

    def __init__(
        self,
        fleet: FleetManager,
        *,
        clock: Callable[[], dt.datetime],
        flyer: Flyer | None = None,
        state_path: str | os.PathLike[str] | None = None,
        on_progress: Callable[[str, str, dict[str, Any]], None] | None = None,
        on_finished: Callable[[Decision, FlightRecord], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.clock = clock
        self.flyer = flyer if flyer is not None else link_flyer()
        self.state_path = None if state_path is None else Path(state_path)
        self.on_progress = on_progress
        self.on_finished = on_finished
        self.records: dict[str, FlightRecord] = {}
        self._lock = threading.RLock()
        self._threads: dict[str, threading.Thread] = {}
        self._aborts: dict[str, threading.Event] = {}
        self.restored: list[Decision] = []
        self._saved: str | None = None  # the state text last written
        if self.state_path is not None and self.state_path.exists():
            data = json.loads(self.state_path.read_text(encoding="utf-8"))
            self.restored = self.fleet.restore(data, self.clock())
            self._save()

    # ------------------------------------------------------------------ state
    def _save(self) -> None:
        if self.state_path is None:
            return
        text = json.dumps(self.fleet.snapshot(), ensure_ascii=False)
        if text == self._saved:  # every tick saves: write only what changed
            return
        tmp = self.state_path.with_suffix(self.state_path.suffix + ".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.state_path)  # atomic: a crash never leaves half a file
        self._saved = text

    # ------------------------------------------------------------------ requests
    def request(self, alert: Mapping[str, Any], **kw: Any) -> bool:
        """Queue an alert (see :meth:`FleetManager.request`)."""
        with self._lock:
            queued = self.fleet.request(alert, self.clock(), **kw)
            self._save()
            return queued

    def offer(self, alert: Mapping[str, Any]) -> tuple[bool, str]:
        """Apply the automatic-dispatch rule (see :meth:`FleetManager.offer`)."""
        with self._lock:
            result = self.fleet.offer(alert, self.clock())
            self._save()
            return result

    def cancel(self, alert_id: str, *, by: str = "") -> dict[str, Any]:
        """Cancel a queued task, or abort a flying one (the drone comes home)."""
        with self._lock:
            answer = self.fleet.cancel(alert_id, self.clock(), by=by)
            if answer["action"] == "abort":
                event = self._aborts.get(answer["mission_id"])
                if event is not None:
                    event.set()
            self._save()
            return answer

    def reprioritise(self, alert_id: str, priority: int, *, by: str = "") -> Decision:
        """Change a queued alert's priority."""
        with self._lock:
            decision = self.fleet.reprioritise(alert_id, priority, self.clock(), by=by)
            self._save()
            return decision

    def queue_view(self) -> dict[str, Any]:
        """The fleet's queue and drones at ``clock()`` (see :meth:`FleetManager.queue_view`)."""
        with self._lock:
            return self.fleet.queue_view(self.clock())

    # ------------------------------------------------------------------ running
    def tick(self) -> list[Decision]:
        """Decide at ``clock()`` and start a thread for every launch; return the decisions."""
        with self._lock:
            decisions = self.fleet.step(self.clock())
            for d in decisions:
                if d.action == "launch" and d.mission is not None:
                    self._start(d)
            self._save()
            return decisions

    def _start(self, d: Decision) -> None:
        abort = threading.Event()
        self._aborts[d.mission_id] = abort
        thread = threading.Thread(
            target=self._fly, args=(d, abort), name=f"flight-{d.mission_id}", daemon=True
        )
        self._threads[d.mission_id] = thread
        thread.start()

    def _fly(self, d: Decision, abort: threading.Event) -> None:
        assert d.mission is not None
        mission = d.mission
        if not mission.alert_id:
            mission = dataclasses.replace(mission, alert_id=d.alert_id)

        def progress(status: dict[str, Any]) -> None:
            if self.on_progress is not None:
                try:
                    self.on_progress(d.mission_id, d.drone_id, status)
                except Exception:  # a listener must not crash the flight
                    _log.exception("progress listener failed")

        try:
            record = self.flyer(
                self.fleet.url(d.drone_id),
                mission,
                mission_id=d.mission_id,
                abort=abort,
                progress=progress,
            )
        except Exception as exc:  # the fleet must hear of every flight's end
            _log.exception("flight %s crashed", d.mission_id)
            record = FlightRecord(mission_id=d.mission_id, alert_id=d.alert_id)
            record.finish("failed", f"internal error: {type(exc).__name__}: {exc}")
        outcome = record.outcome if record.outcome in ("completed", "aborted") else "failed"
        with self._lock:
            self.records[d.mission_id] = record
            now = self.clock()
            if record.battery_end_pct is not None:
                self.fleet.report_battery(d.drone_id, float(record.battery_end_pct), now)
            decision = self.fleet.finished(d.mission_id, outcome, now, detail=record.reason)
            self._aborts.pop(d.mission_id, None)
            self._save()
        if self.on_finished is not None:
            try:
                self.on_finished(decision, record)
            except Exception:
                _log.exception("finished listener failed")

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait (wall seconds) until no flight thread runs; True when idle in time."""
        deadline = time.monotonic() + max(0.0, float(timeout_s))
        while True:
            with self._lock:
                running = [t for t in self._threads.values() if t.is_alive()]
            if not running:
                return True
            if not time.monotonic() < deadline:
                return False
            waiting.join(running[0], min(0.1, deadline - time.monotonic()))

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Abort every flight and wait for the threads (the drones come home)."""
        with self._lock:
            for event in self._aborts.values():
                event.set()
        self.wait_idle(timeout_s)
