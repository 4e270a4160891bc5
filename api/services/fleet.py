"""Dispatch through the fleet: several docks, each drone's connection, one visible queue.

:class:`FleetService` runs a :class:`haulwatch.drone.fleet_run.FleetRunner` over the
dataset's nests: every drone has its own MAVLink URL, charge and availability; the
scheduler decides priority, one mission per drone, recharge and retries; a dispatcher
sees the queue (waiting, timed, flying, drones: free / flying / recharging /
unavailable) and can queue, cancel or reprioritise. Each launched flight is stored as
a mission (status, progress, flight record) and published as ``mission`` events, like
single-vehicle dispatch; when it ends the alert history says "inspected by drone".

Configuration (environment; to move into :class:`haulwatch.api.settings.Settings`):

- ``HAULWATCH_DRONES``: ``N1/1=tcp:127.0.0.1:5760;N2/1=tcp:127.0.0.1:5770`` — drone id
  (``<nest site_id>/<n>``) = MAVLink URL. Without it there is no fleet (503).
- ``HAULWATCH_FLEET_STATE``: JSON file keeping the queue across restarts.
- ``HAULWATCH_AUTO_DISPATCH``: ``on`` to fly new high-severity ``illegal_dump`` alerts
  near a free dock in flight hours without a click (off by default).
- ``HAULWATCH_FLEET_TICK_S``: seconds between two scheduling rounds (default 2).
- ``HAULWATCH_FLIGHT_LOGS``: folder keeping each flight's MAVLink telemetry log
  (``<mission_id>.tlog``, downloadable at ``GET /api/missions/{id}/log``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from haulwatch import waiting
from haulwatch.errors import UserError

if TYPE_CHECKING:
    from haulwatch.api.deps import Service
    from haulwatch.drone.flight import FlightRecord
    from haulwatch.drone.schedule import Decision

log = logging.getLogger("haulwatch.api.services.fleet")
_LOCK = threading.Lock()


class FleetUnavailable(UserError, RuntimeError):  # noqa: N818 - reads as a state
    """No fleet is configured (``HAULWATCH_DRONES``) or the service has no dataset."""


def parse_drones(text: str) -> dict[str, str]:
    """``"N1/1=tcp:...;N2/1=tcp:..."`` → ``{"N1/1": "tcp:...", ...}``.

    Raises
    ------
    FleetUnavailable
        On an entry without ``=`` or an empty id / URL.
    """
    out: dict[str, str] = {}
    for part in text.replace(",", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        drone_id, sep, url = part.partition("=")
        if not sep or not drone_id.strip() or not url.strip():
            raise FleetUnavailable(
                f"HAULWATCH_DRONES: entry {part!r} must be DRONE_ID=URL, e.g. N1/1=tcp:127.0.0.1:5760"
            )
        out[drone_id.strip()] = url.strip()
    return out


def flight_log_dir(env: Mapping[str, str] | None = None) -> str | None:
    """The folder of flight logs (``HAULWATCH_FLIGHT_LOGS``), or None when not kept."""
    value = (os.environ if env is None else env).get("HAULWATCH_FLIGHT_LOGS", "").strip()
    return value or None


def auto_dispatch(service: Service, alert_ids: list[str]) -> None:
    """Offer new alerts to the fleet's automatic-dispatch rule (nothing unless configured).

    Called by the live audit for the alerts it inserted; quiet when there is no
    fleet (``HAULWATCH_DRONES``) or the rule is off (``HAULWATCH_AUTO_DISPATCH``).
    """
    if not alert_ids or not os.environ.get("HAULWATCH_DRONES"):
        return
    try:
        fleet = get_fleet(service)
        if not fleet.runner.fleet.rule.enabled:
            return
        for alert_id in alert_ids:
            queued, reason = fleet.offer(alert_id)
            if queued:
                log.info("alert %s dispatched automatically: %s", alert_id, reason)
    except Exception:  # dispatch must never break the live audit
        log.exception("automatic dispatch failed for %s", alert_ids)


def get_fleet(service: Service) -> FleetService:
    """The service's fleet, built on first use from the environment.

    Raises
    ------
    FleetUnavailable
        When ``HAULWATCH_DRONES`` is not set or the service has no dataset.
    """
    with _LOCK:
        fleet = getattr(service, "_fleet_service", None)
        if fleet is None:
            fleet = FleetService(service, env=os.environ)
            service._fleet_service = fleet  # type: ignore[attr-defined]
        return fleet


class FleetService:
    """The fleet of a running service (see the module docstring).

    Parameters
    ----------
    service : Service
        The running service (store, hub, registry, settings, clock).
    env : mapping
        Where ``HAULWATCH_DRONES`` etc. are read.
    flyer : callable, optional
        For tests: replaces :func:`haulwatch.drone.fleet_run.link_flyer`.
    start_ticker : bool, default True
        Run the scheduling rounds in a daemon thread (tests call :meth:`tick`).
    """

    def __init__(
        self,
        service: Service,
        *,
        env: Mapping[str, str],
        flyer: Any = None,
        start_ticker: bool = True,
    ) -> None:
        from haulwatch.drone.fleet import AutoDispatchRule, FleetManager
        from haulwatch.drone.fleet_run import FleetRunner, link_flyer
        from haulwatch.drone.link import LinkConfig
        from haulwatch.drone.plan import PlanConfig, docks_from_sites, no_fly_from_sites

        drones = parse_drones(env.get("HAULWATCH_DRONES", ""))
        if not drones:
            raise FleetUnavailable("no drone fleet configured (HAULWATCH_DRONES)")
        reg = service.registry
        if reg is None or reg.dataset is None:
            raise FleetUnavailable("the service has no dataset (HAULWATCH_DATASET): no nests known")
        self.service = service
        sites = reg.dataset.sites
        dispatcher = service.dispatcher
        plan_config = getattr(dispatcher, "plan_config", None) or PlanConfig(timezone=reg.timezone)
        auto = env.get("HAULWATCH_AUTO_DISPATCH", "off").strip().lower() in ("1", "on", "true", "yes")
        now = service.clock()
        fleet = FleetManager(
            docks_from_sites(sites),
            now=now,
            connections=drones,
            no_fly=no_fly_from_sites(sites),
            plan_config=plan_config,
            rule=AutoDispatchRule(enabled=auto, timezone=reg.timezone),
        )
        settings = service.settings
        self.runner = FleetRunner(
            fleet,
            clock=service.clock,
            flyer=flyer
            or link_flyer(
                time_scale=settings.time_scale,
                tlog_dir=flight_log_dir(env),
                # no timeout under 2 wall seconds: at a simulator's speed-up a busy host
                # must not look like a silent vehicle (no effect at real time)
                config=LinkConfig(min_wall_timeout_s=2.0),
            ),
            state_path=env.get("HAULWATCH_FLEET_STATE") or None,
            on_progress=self._progress,
            on_finished=self._finished,
        )
        self._missions: dict[str, str] = {}  # scheduler mission id -> stored mission id
        self._last_progress: dict[str, float] = {}
        # scheduler mission id -> {"reason_code", "reason_params"} of its launch
        self._reasons: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self.tick_s = float(env.get("HAULWATCH_FLEET_TICK_S", "2") or 2)
        if start_ticker:
            threading.Thread(target=self._ticker, name="haulwatch-fleet", daemon=True).start()

    # ------------------------------------------------------------------ requests
    def _alert(self, alert_id: str) -> dict[str, Any]:
        a = self.service.store.get_alert(alert_id, detail=False)
        return {
            "alert_id": alert_id,
            "lat": a["lat"],
            "lon": a["lon"],
            "severity": a.get("severity") or "",
            "kind": a.get("kind") or "",
            "start": a.get("start"),
            "end": a.get("end"),
        }

    def request(
        self, alert_id: str, *, priority: int = 0, not_before: Any = None
    ) -> dict[str, Any]:
        """Queue an alert for the fleet; the queue as it is afterwards."""
        queued = self.runner.request(self._alert(alert_id), priority=priority, not_before=not_before)
        self.tick()
        return {"queued": queued, **self.view()}

    def offer(self, alert_id: str) -> dict[str, Any]:
        """Apply the automatic-dispatch rule to an alert."""
        queued, reason = self.runner.offer(self._alert(alert_id))
        if queued:
            self.tick()
        return {"queued": queued, "reason": reason}

    def cancel(self, alert_id: str, *, by: str) -> dict[str, Any]:
        """Cancel a queued task or abort a flying one."""
        return self.runner.cancel(alert_id, by=by)

    def reprioritise(self, alert_id: str, priority: int, *, by: str) -> dict[str, Any]:
        """Change a queued alert's priority; the queue afterwards."""
        self.runner.reprioritise(alert_id, priority, by=by)
        return self.view()

    def view(self) -> dict[str, Any]:
        """The queue and the drones as JSON (see ``FleetManager.queue_view``)."""
        return self.runner.queue_view()

    # ------------------------------------------------------------------ running
    def tick(self) -> list[Decision]:
        """One scheduling round: launch what can fly and store those missions."""
        from haulwatch.drone.export import to_qgc_plan

        decisions = self.runner.tick()
        store, hub = self.service.store, self.service.hub
        for d in decisions:
            if d.action != "launch" or d.mission is None:
                continue
            stored_id = f"m-{uuid.uuid4().hex[:12]}"
            self._missions[d.mission_id] = stored_id
            self._reasons[d.mission_id] = _coded(d)
            meta = {k: v for k, v in dict(d.mission.meta).items() if k != "path_lonlat"}
            rec = store.create_mission(
                {
                    "mission_id": stored_id,
                    "alert_id": d.alert_id,
                    "dock_site_id": d.dock_site_id,
                    "status": "uploading",
                    "reason": d.reason,
                    "progress": {
                        "phase": "connecting",
                        "estimate": meta,
                        "drone_id": d.drone_id,
                        **_coded(d),
                    },
                    "plan": to_qgc_plan(d.mission),
                },
                by="fleet",
            )
            hub.publish("mission", rec)
        return decisions

    def _ticker(self) -> None:
        while not waiting.wait(self._stop, self.tick_s):
            if getattr(self.service.hub, "_closed", False):  # the service shut down
                self.shutdown()
                return
            try:
                self.tick()
            except Exception:  # the round must run again next time
                log.exception("fleet scheduling round failed")

    def _progress(self, mission_id: str, drone_id: str, status: dict[str, Any]) -> None:
        stored_id = self._missions.get(mission_id)
        if stored_id is None:
            return
        now = time.monotonic()
        if now - self._last_progress.get(mission_id, 0.0) < 1.0:
            return
        self._last_progress[mission_id] = now
        phase = str(status.get("phase", ""))
        state = "uploading" if phase in ("ready", "upload", "verify") else "flying"
        rec = self.service.store.update_mission(
            stored_id,
            status=state,
            progress={**status, "drone_id": drone_id, **self._reasons.get(mission_id, {})},
        )
        self.service.hub.publish("mission", rec)

    def _finished(self, decision: Decision, record: FlightRecord) -> None:
        from haulwatch.api.services.alerts import change_status
        from haulwatch.drone.evidence import flight_evidence

        stored_id = self._missions.pop(decision.mission_id, None)
        self._last_progress.pop(decision.mission_id, None)
        self._reasons.pop(decision.mission_id, None)
        if stored_id is None:
            return
        store = self.service.store
        data = record.to_dict()
        data["mission_id"] = stored_id
        logs = flight_log_dir()
        if logs is not None and os.path.exists(os.path.join(logs, f"{decision.mission_id}.tlog")):
            data["flight_log"] = f"{decision.mission_id}.tlog"
        # the scheduler's reason (done / requeue / drop) as code + params: the console and
        # clients render it per language; "reason" keeps the English text
        final = {**data.get("final_status", {}), "phase": record.outcome, **_coded(decision)}
        rec = store.update_mission(
            stored_id,
            status=record.outcome,
            reason=f"{record.reason} [{decision.action}: {decision.reason}]".strip(),
            progress=final,
            flight_record=data,
        )
        self.service.hub.publish("mission", rec)
        try:
            text = flight_evidence(data)["history"]["text"]
            alert = store.get_alert(decision.alert_id, detail=False)
            # through the service: the history entry also reaches the stream (status event)
            change_status(self.service, decision.alert_id, alert["status"], by="drone", note=text)
        except Exception:
            log.exception("could not note the inspection on alert %s", decision.alert_id)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop the rounds and abort what flies (the drones come home)."""
        self._stop.set()
        self.runner.shutdown(timeout_s)


def _coded(decision: Any) -> dict[str, Any]:
    """``reason_code`` / ``reason_params`` of a scheduler decision (empty without a code)."""
    code = getattr(decision, "code", "")
    if not code:
        return {}
    return {"reason_code": code, "reason_params": dict(getattr(decision, "params", {}) or {})}
