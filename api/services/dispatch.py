"""Drone dispatch: plan a mission for an alert, fly it in the background, stream progress.

:class:`DispatchManager` plans with :func:`haulwatch.drone.plan.plan_mission`
(or :func:`~haulwatch.drone.plan.choose_dock` when no dock is named), stores
the mission and its QGroundControl ``.plan`` (:func:`haulwatch.drone.export.to_qgc_plan`),
and hands it to one worker thread that flies missions one at a time over
MAVLink (:class:`haulwatch.drone.link.VehicleLink` against
``settings.vehicle_url``). Status (``planned → uploading → flying →
completed | failed | aborted``), progress and the flight record are stored and
sent as ``mission`` events.

The flying is a callable (``flyer``) so tests and other vehicles can swap it:
``flyer(mission, *, record_ids, progress, abort) -> FlightRecord``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from haulwatch import waiting
from haulwatch.errors import UserError
from haulwatch.ingest.limits import check_lon_lat

if TYPE_CHECKING:
    from haulwatch.api.deps import Clock, Service
    from haulwatch.drone.mission import Mission

log = logging.getLogger("haulwatch.api.services.dispatch")

Flyer = Callable[..., Any]


class DispatchRefused(UserError, ValueError):  # noqa: N818 - mirrors drone.plan.MissionRefused
    """A dispatch cannot be planned; ``reason`` is a short code, the message says why.

    Parameters
    ----------
    reason : str
        Code (``no_dataset``, ``unknown_dock``, ``no_location``, ``invalid_target``, or a
        :data:`haulwatch.drone.plan.REFUSAL_REASONS` code).
    message : str
        Explanation naming the value and what is allowed.
    field : str
        The request field concerned.
    mission_id : str
        Id of the refused mission when it was recorded ("" otherwise).
    reason_dict : dict, optional
        The refusal as a structured reason ``{"code", "params"}`` (planner refusals:
        :attr:`haulwatch.drone.plan.MissionRefused.reason_dict`); rendered per language.
    """

    def __init__(self, reason: str, message: str, *, field: str = "alert_id",
                 mission_id: str = "", reason_dict: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.field = field
        self.mission_id = mission_id
        self.reason_dict: dict[str, Any] = dict(reason_dict or {})


def link_flyer(vehicle_url: str, *, time_scale: float = 1.0) -> Flyer:
    """A flyer that flies over MAVLink with :class:`haulwatch.drone.link.VehicleLink`.

    Parameters
    ----------
    vehicle_url : str
        MAVLink connection string (``tcp:127.0.0.1:5760``...).
    time_scale : float, default 1
        Simulator speed-up; timeouts shrink by it.
    """

    def fly(mission: Mission, *, record_ids: Mapping[str, str],
            progress: Callable[[dict[str, Any]], None], abort: threading.Event) -> Any:
        from haulwatch.api.services.fleet import flight_log_dir
        from haulwatch.drone.flight import FlightRecord, utc_now_iso
        from haulwatch.drone.link import LinkConfig, VehicleLink, VehicleLinkError

        logs = flight_log_dir()  # HAULWATCH_FLIGHT_LOGS: keep the MAVLink log per mission
        tlog = None if logs is None else f"{logs}/{record_ids.get('mission_id', 'mission')}.tlog"
        # no timeout under 2 wall seconds: at a simulator's speed-up a busy host must not
        # look like a silent vehicle (seen: "no heartbeat for 13.7 s", limit 5 s at 50x)
        link = VehicleLink(vehicle_url, time_scale=time_scale, tlog_path=tlog,
                           config=LinkConfig(min_wall_timeout_s=2.0))
        done = threading.Event()

        def watch() -> None:  # forward a dispatcher's abort to the running flight
            while not done.is_set():
                if waiting.wait(abort, 0.2):
                    link.abort("aborted by dispatcher")
                    return

        watcher = threading.Thread(target=watch, name="haulwatch-abort-watch", daemon=True)
        watcher.start()
        try:
            with link:
                return link.fly_mission(mission, progress=progress,
                                        mission_id=record_ids.get("mission_id", ""))
        except (VehicleLinkError, OSError, TimeoutError) as exc:
            record = FlightRecord(mission_id=record_ids.get("mission_id", ""),
                                  alert_id=record_ids.get("alert_id", ""),
                                  dock_site_id=record_ids.get("dock_site_id", ""),
                                  connect=vehicle_url, started_at=utc_now_iso())
            record.finish("failed", f"link: {type(exc).__name__}: {exc}")
            return record
        finally:
            done.set()
            waiting.join(watcher, 1.0)

    return fly


class DispatchManager:
    """Plans missions for alerts and flies them one at a time in a worker thread.

    Parameters
    ----------
    service : Service
        The running service (store, hub, registry, settings).
    flyer : callable, optional
        How to fly a mission; default :func:`link_flyer` on ``settings.vehicle_url``
        (None there: missions are planned and wait with reason ``no_vehicle``).
    plan_config : drone.plan.PlanConfig, optional
        Planning parameters (default: ``PlanConfig`` in the dataset timezone).
    progress_interval_s : float, default 1.0
        Least wall time between two stored/streamed progress updates of a flight.
    clock : callable, optional
        Returns the tz-aware time missions are planned for (daylight and time
        windows); default ``service.clock``. Never read the wall clock elsewhere.
    """

    def __init__(self, service: Service, *, flyer: Flyer | None = None,
                 plan_config: Any = None, progress_interval_s: float = 1.0,
                 clock: Clock | None = None) -> None:
        self.service = service
        self.clock: Clock = clock if clock is not None else service.clock
        settings = service.settings
        if flyer is None and settings.vehicle_url:
            flyer = link_flyer(settings.vehicle_url, time_scale=settings.time_scale)
        self.flyer = flyer
        self.plan_config = plan_config
        self.progress_interval_s = progress_interval_s
        self._queue: queue.Queue[tuple[str, Mission] | None] = queue.Queue()
        self._aborts: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._recover()

    # ------------------------------------------------------------------ setup
    def _recover(self) -> None:
        """Missions left unfinished by a previous run cannot resume: mark them failed."""
        store = self.service.store
        offset = 0
        while True:
            items, total = store.list_missions(limit=500, offset=offset)
            for m in items:
                if m["status"] in ("planned", "uploading", "flying"):
                    store.update_mission(m["mission_id"], status="failed",
                                         reason="service restarted before the flight finished",
                                         progress={**(m.get("progress") or {}),
                                                   "reason_code": "restarted_before_end",
                                                   "reason_params": {}})
            offset += len(items)
            if offset >= total or not items:
                break

    def _docks_and_zones(self) -> tuple[list[Any], list[Any], str]:
        reg = self.service.registry
        if reg is None or reg.dataset is None:
            raise DispatchRefused("no_dataset", "the service has no dataset (HAULWATCH_DATASET): "
                                  "no docks or no-fly zones known", field="dock_site_id")
        from haulwatch.drone.plan import docks_from_sites, no_fly_from_sites

        sites = reg.dataset.sites
        return docks_from_sites(sites), no_fly_from_sites(sites), reg.timezone

    # --------------------------------------------------------------- dispatch
    def dispatch(self, alert_id: str, *, dock_site_id: str | None, by: str,
                 at: Any = None, skip_daylight: bool = False) -> dict[str, Any]:
        """Plan a mission to look at an alert and queue it for flight.

        Parameters
        ----------
        alert_id : str
            The alert to look at (its representative point is the target).
        dock_site_id : str or None
            Nest to fly from; None: ``settings.dock_site_id``, else the best dock.
        by : str
            Who asked (token name).
        at : datetime, optional
            Plan for this take-off time instead of now (tz-aware; the time rules
            are checked for it).
        skip_daylight : bool, default False
            The dispatcher takes responsibility for flying outside daylight (as
            ``haulwatch plan --no-daylight``); recorded in the mission's estimate.
            A nest with ``night_capable`` needs no override.

        Returns
        -------
        dict
            The stored mission (status ``planned``).

        Raises
        ------
        haulwatch.api.services.store.AlertNotFoundError
            Unknown alert.
        DispatchRefused
            When no mission can be planned (the refusal is stored too).
        """
        from haulwatch.drone.export import to_qgc_plan
        from haulwatch.drone.plan import (
            MissionRefused,
            PlanConfig,
            PlanConfigError,
            choose_dock,
            plan_mission,
        )

        store = self.service.store
        alert = store.get_alert(alert_id, detail=False)
        if alert["lon"] is None or alert["lat"] is None:
            raise DispatchRefused("no_location", f"alert {alert_id!r} has no location to look at")
        problem = check_lon_lat(alert["lon"], alert["lat"])
        if problem is not None:  # stored before the limits existed
            raise DispatchRefused("no_location", f"alert {alert_id!r}: {problem[0]} {problem[1]}")
        docks, zones, tz = self._docks_and_zones()
        config = self.plan_config if self.plan_config is not None else PlanConfig(timezone=tz)
        if skip_daylight:
            import dataclasses

            config = dataclasses.replace(config, min_sun_elevation_deg=None)
        wanted = dock_site_id or self.service.settings.dock_site_id
        target = {"lon": alert["lon"], "lat": alert["lat"], "alert_id": alert_id}
        now = self.clock() if at is None else at
        if getattr(now, "tzinfo", None) is None:
            raise DispatchRefused("invalid_time", f"at must be a time with a zone, got {at!r}",
                                  field="at")
        mission_id = f"m-{uuid.uuid4().hex[:12]}"
        try:
            if wanted:
                dock = next((d for d in docks if d.site_id == wanted), None)
                if dock is None:
                    known = ", ".join(d.site_id for d in docks) or "(none)"
                    raise DispatchRefused("unknown_dock", f"dock_site_id {wanted!r} is not a nest "
                                          f"site; nests: {known}", field="dock_site_id")
                mission = plan_mission(target, dock, no_fly=zones, config=config, now=now)
            else:
                if not docks:
                    raise DispatchRefused("no_dock", "the dataset has no nest site",
                                          field="dock_site_id")
                mission = choose_dock(target, docks, no_fly=zones, config=config, now=now).mission
        except PlanConfigError as exc:
            raise DispatchRefused("invalid_target", str(exc)) from None
        except MissionRefused as exc:
            from haulwatch.drone.reasons import detailed_refusal

            # each dock's own figures (out of range by how much...), not only its code
            why = detailed_refusal(exc, target, docks, no_fly=zones, config=config, now=now)
            rec = store.create_mission({
                "mission_id": mission_id, "alert_id": alert_id,
                "dock_site_id": wanted or "", "status": "refused",
                "reason": f"{exc.reason}: {exc.message}",
                "progress": {"phase": "refused", "details": exc.details,
                             "reason_code": why["code"], "reason_params": why["params"]},
            }, by=by)
            self.service.hub.publish("mission", rec)
            raise DispatchRefused(exc.reason, exc.message, mission_id=mission_id,
                                  reason_dict=why) from None
        plan = to_qgc_plan(mission, no_fly=zones)
        meta = {k: v for k, v in dict(mission.meta).items() if k != "path_lonlat"}
        if skip_daylight:
            meta["daylight_skipped_by"] = by
        reason = "" if self.flyer is not None else (
            "no_vehicle: no vehicle URL configured (HAULWATCH_VEHICLE_URL); fly the .plan by hand")
        coded = {} if self.flyer is not None else {"reason_code": "no_vehicle",
                                                   "reason_params": {}}
        rec = store.create_mission({
            "mission_id": mission_id, "alert_id": alert_id,
            "dock_site_id": mission.dock_site_id, "status": "planned", "reason": reason,
            "progress": {"phase": "planned", "estimate": meta, **coded}, "plan": plan,
        }, by=by)
        self.service.hub.publish("mission", rec)
        if self.flyer is not None:
            with self._lock:
                self._aborts[mission_id] = threading.Event()
            self._queue.put((mission_id, mission))
            self._ensure_worker()
        return rec

    def abort(self, mission_id: str, *, by: str) -> dict[str, Any]:
        """Abort a queued or flying mission (a flying drone returns to its dock).

        Raises
        ------
        haulwatch.api.services.store.MissionNotFoundError
        """
        store = self.service.store
        rec = store.get_mission(mission_id)
        if rec["status"] in ("completed", "failed", "aborted", "refused"):
            return rec
        with self._lock:
            event = self._aborts.get(mission_id)
        if event is not None:
            event.set()
        if rec["status"] == "planned":
            rec = store.update_mission(mission_id, status="aborted", reason=f"aborted by {by}",
                                       progress={**(rec.get("progress") or {}),
                                                 "reason_code": "aborted_by",
                                                 "reason_params": {"by": by}})
            self.service.hub.publish("mission", rec)
        return rec

    # ----------------------------------------------------------------- worker
    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="haulwatch-dispatch",
                                                daemon=True)
                self._worker.start()

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            mission_id, mission = job
            try:
                self._fly(mission_id, mission)
            except Exception as exc:  # the worker must survive any one flight
                log.exception("mission %s crashed", mission_id)
                self._finish(mission_id, "failed", f"internal error: {type(exc).__name__}: {exc}",
                             None)
            finally:
                with self._lock:
                    self._aborts.pop(mission_id, None)

    def _fly(self, mission_id: str, mission: Mission) -> None:
        store, hub = self.service.store, self.service.hub
        with self._lock:
            abort = self._aborts.get(mission_id) or threading.Event()
        current = store.get_mission(mission_id)
        if current["status"] != "planned" or abort.is_set():
            return
        rec = store.update_mission(mission_id, status="uploading",
                                   progress={**current["progress"], "phase": "connecting"})
        hub.publish("mission", rec)
        state = {"status": "uploading", "last": 0.0}
        estimate = current["progress"].get("estimate")

        def progress(info: Mapping[str, Any]) -> None:
            info = dict(info)
            phase = str(info.get("phase", ""))
            status = ("uploading" if phase in ("ready", "connect", "upload", "verify")
                      else "flying")
            now = time.monotonic()
            if status == state["status"] and now - state["last"] < self.progress_interval_s:
                return
            state["status"], state["last"] = status, now
            if estimate is not None:
                info.setdefault("estimate", estimate)  # the plan's figures stay visible
            hub.publish("mission", store.update_mission(mission_id, status=status,
                                                        progress=info))

        record = self.flyer(
            mission,
            record_ids={"mission_id": mission_id, "alert_id": mission.alert_id or "",
                        "dock_site_id": mission.dock_site_id or ""},
            progress=progress, abort=abort)
        outcome = getattr(record, "outcome", "failed")
        reason = getattr(record, "reason", "")
        if outcome not in ("completed", "failed", "aborted"):
            outcome, reason = "failed", f"flight ended with outcome {outcome!r}: {reason}"
        data = record.to_dict() if hasattr(record, "to_dict") else dict(record)
        from haulwatch.api.services.fleet import flight_log_dir

        logs = flight_log_dir()
        if logs is not None and (Path(logs) / f"{mission_id}.tlog").exists():
            data["flight_log"] = f"{mission_id}.tlog"
        self._finish(mission_id, outcome, reason, data)

    def _finish(self, mission_id: str, status: str, reason: str,
                record: dict[str, Any] | None) -> None:
        store = self.service.store
        prev = store.get_mission(mission_id)
        # the flight's own last status (throttled updates may have missed it)
        final = (record or {}).get("final_status") or {}
        progress = {**prev["progress"], **final, "phase": status}
        # code + params beside the English text (the flight's own words stay as the detail)
        notes = [{"code": "failure_detail", "params": {"detail": reason}}] if (
            reason and status != "completed") else []
        progress["reason_code"] = "completed" if status == "completed" else f"flight_{status}"
        progress["reason_params"] = {"notes": notes}
        changes: dict[str, Any] = {"status": status, "reason": reason, "progress": progress}
        if record is not None:
            changes["flight_record"] = record
        self.service.hub.publish("mission", store.update_mission(mission_id, **changes))
        if record is not None and prev.get("alert_id"):  # "inspected by drone" in the history
            self._note_inspection(prev["alert_id"], record)

    def _note_inspection(self, alert_id: str, record: dict[str, Any]) -> None:
        from haulwatch.api.services.alerts import change_status
        from haulwatch.drone.evidence import flight_evidence

        store = self.service.store
        try:
            text = flight_evidence(record)["history"]["text"]
            alert = store.get_alert(alert_id, detail=False)
            # through the service: the history entry also reaches the stream (status event)
            change_status(self.service, alert_id, alert["status"], by="drone", note=text)
        except Exception:  # the flight is recorded; a history note must not break the worker
            log.exception("could not note the inspection on alert %s", alert_id)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no mission is queued or flying; True if it became idle in time."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._aborts)
            if not busy:
                return True
            time.sleep(0.05)
        return False

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Abort what is flying and stop the worker (a later dispatch starts a new one)."""
        with self._lock:
            events = list(self._aborts.values())
            worker = self._worker
        for e in events:
            e.set()
        if worker is not None and worker.is_alive():
            self._queue.put(None)
            waiting.join(worker, timeout_s)
