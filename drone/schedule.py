"""Which dock flies which alert, and when: a pure, clock-injected scheduler.

The :class:`Scheduler` holds a queue of alerts to look at, the docks and their
drones, and the missions in flight. It never reads the wall clock and does no
I/O: every call takes ``now``; the caller (the API, the fly command, a test)
turns decisions into actions and reports back with :meth:`mission_finished`.

Rules
-----
- Queue order: a dispatcher's ``priority`` (higher first, default 0), then severity (``high`` first), then kind (``illegal_dump`` and
  ``dump_hotspot`` first: the evidence lies on the ground), then the alert's
  age (oldest first), then ``alert_id``.
- One mission per drone at a time; after each flight the drone recharges for
  ``recharge_s`` before it may fly again.
- For each alert, in queue order, every dock is considered; the mission is
  launched from the dock with a free drone that gives the shortest feasible
  flight (as :func:`~haulwatch.drone.plan.choose_dock`).
- An alert no dock can ever fly (out of range, no path, in a no-fly zone,
  battery) is dropped with the reasons; one refused only for the time of day,
  or whose feasible docks are all busy, waits (a ``wait`` decision is issued
  when its reason changes, not at every step).
- A failed mission is re-queued up to ``max_retries`` times, then dropped.
- A drone can be held out of service (``hold_drone``: maintenance, battery
  below the launch minimum, no link); it is ``unavailable`` until released.
- :meth:`Scheduler.snapshot` / :meth:`Scheduler.restore` keep the queue across a
  restart; a mission that was in flight when the state was saved is counted as
  failed ("service restarted during the flight") and re-queued, never done.

Every :class:`Decision` carries a one-sentence reason: why this dock (distance,
duration, battery), why now, or why not (busy until, recharging until,
infeasible and why).
Size: one state machine (queue, drones, missions in flight, its snapshot);
the events that change it belong together.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyproj

from haulwatch.drone.daylight import as_utc
from haulwatch.drone.mission import Mission
from haulwatch.drone.plan import (
    TEMPORARY_REASONS,
    Dock,
    MissionRefused,
    PlanConfig,
    check_flight_time,
    plan_mission,
)
from haulwatch.drone.planconfig import is_finite_number
from haulwatch.drone.reasons import reason as _reason
from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE, check_timezone

__all__ = [
    "ACTIONS",
    "DEFAULT_KIND_PRIORITY",
    "OUTCOMES",
    "Decision",
    "ScheduleConfig",
    "Scheduler",
    "SchedulerError",
]

#: Decision actions.
ACTIONS: tuple[str, ...] = (
    "launch",
    "wait",
    "drop",
    "requeue",
    "done",
    "reprioritise",
    "hold",
    "release",
)

#: Outcomes :meth:`Scheduler.mission_finished` accepts.
OUTCOMES: tuple[str, ...] = ("completed", "failed", "aborted")

#: Kinds in the order a drone should look at them (unlisted kinds come last).
DEFAULT_KIND_PRIORITY: tuple[str, ...] = (
    "illegal_dump",
    "dump_hotspot",
    "unpermitted_origin",
    "wrong_disposal",
    "route_deviation",
    "gps_gap",
    "unmanifested_trip",
    "unregistered_vehicle",
    "manifest_not_executed",
)

_SEVERITY_RANK = {"high": 0, "medium": 1, "low": 2}
_GEOD = pyproj.Geod(ellps="WGS84")


class SchedulerError(UserError, ValueError):
    """A bad event for the scheduler (unknown mission, bad outcome, bad alert)."""


@dataclass(frozen=True)
class Decision:
    """One explainable scheduling decision.

    Parameters
    ----------
    action : str
        ``launch``, ``wait``, ``drop``, ``requeue`` or ``done``.
    alert_id : str
        The alert concerned.
    dock_site_id, drone_id : str
        The dock and drone concerned ("" when none).
    reason : str
        Why, in one sentence with the figures.
    time : datetime, optional
        When the decision was taken (UTC).
    mission_id : str, default ""
        The mission launched / finished.
    mission : Mission, optional
        The mission to fly (``launch`` only).
    code, params : str, dict
        The reason as a stable code and its parameters (numbers, ids, UTC
        times), rendered per language by :func:`haulwatch.drone.reasons.render`.
    """

    action: str
    alert_id: str
    dock_site_id: str
    drone_id: str
    reason: str
    time: dt.datetime | None = None
    mission_id: str = ""
    mission: Mission | None = field(default=None, compare=False, repr=False)
    code: str = field(default="", compare=False)
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def reason_dict(self) -> dict[str, Any]:
        """``{"code": ..., "params": ...}`` (empty dict when the decision has no code)."""
        return {"code": self.code, "params": dict(self.params)} if self.code else {}


@dataclass(frozen=True)
class ScheduleConfig:
    """Scheduling parameters.

    Parameters
    ----------
    recharge_s : float, default 2700
        Time a drone needs after a flight before the next one.
    max_retries : int, default 2
        Times a failed mission is re-queued before the alert is dropped.
    max_alert_age_s : float, optional
        Drop alerts whose evidence (``end``, else ``start``, else the time
        queued) is older than this; ``None`` keeps them.
    kind_priority : tuple of str
        Alert kinds, most urgent first.
    timezone : str, default "Asia/Shanghai"
        Zone of naive times.
    """

    recharge_s: float = 2700.0
    max_retries: int = 2
    max_alert_age_s: float | None = None
    kind_priority: tuple[str, ...] = DEFAULT_KIND_PRIORITY
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if not is_finite_number(self.recharge_s) or self.recharge_s < 0:
            raise SchedulerError(
                f"ScheduleConfig.recharge_s must be a number >= 0, got {self.recharge_s!r}"
            )
        r = self.max_retries
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise SchedulerError(f"ScheduleConfig.max_retries must be an int >= 0, got {r!r}")
        age = self.max_alert_age_s
        if age is not None and (not is_finite_number(age) or age <= 0):
            raise SchedulerError(
                f"ScheduleConfig.max_alert_age_s must be None or a number > 0, got {age!r}"
            )
        if isinstance(self.kind_priority, str) or not all(
            isinstance(k, str) for k in self.kind_priority
        ):
            raise SchedulerError(
                f"ScheduleConfig.kind_priority must be a tuple of kind names, "
                f"got {self.kind_priority!r}"
            )
        check_timezone(self.timezone, what="ScheduleConfig.timezone", error=SchedulerError)


def _utc(when: Any, timezone: str, what: str = "now") -> dt.datetime:
    return as_utc(when, timezone, what, error=SchedulerError)


def _check_priority(priority: Any) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1000:
        raise SchedulerError(f"priority must be an int in -1000..1000, got {priority!r}")


def _hhmm(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Drone:
    drone_id: str
    dock: Dock
    mission_id: str = ""
    busy_until: dt.datetime | None = None  # estimated landing of the current mission
    recharged_at: dt.datetime | None = None
    hold: str = ""  # why the drone is out of service ("" = in service)

    def state(self, now: dt.datetime) -> tuple[str, dt.datetime | None]:
        if self.mission_id:
            return "flying", self.busy_until
        if self.hold:
            return "unavailable", None
        if self.recharged_at is not None and self.recharged_at > now:
            return "recharging", self.recharged_at
        return "free", None


@dataclass
class _Entry:
    alert_id: str
    target: dict[str, Any]
    severity: str
    kind: str
    evidence_time: dt.datetime
    queued_at: dt.datetime
    attempts: int = 0
    priority: int = 0
    last_failure: str = ""
    last_wait: str = ""
    last_failure_reason: dict[str, Any] = field(default_factory=dict)
    # (site_id -> (reason, message)) refusals that cannot clear by themselves
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    # (site_id -> Mission) planned without the time check
    planned: dict[str, Mission] = field(default_factory=dict)


@dataclass
class _Active:
    entry: _Entry
    drone: _Drone
    mission: Mission
    launched_at: dt.datetime


class Scheduler:
    """Queue of alerts, docks with drones, missions in flight; decisions on demand.

    Parameters
    ----------
    docks : iterable of Dock
        Docks with their ``drones`` count; drone ids are ``"<site_id>/<n>"``.
    no_fly : optional
        No-fly zones passed to the planner (see :func:`plan_mission`).
    plan_config : PlanConfig, optional
        Planning parameters (also the daylight / time-window rules).
    config : ScheduleConfig, optional
        Scheduling parameters.
    planner : callable, optional
        ``planner(target, dock) -> Mission`` (raises ``MissionRefused``);
        defaults to :func:`plan_mission` with ``no_fly`` and ``plan_config``.
        The scheduler applies the time-of-day rules itself at each step.

    Attributes
    ----------
    log : list of Decision
        Every decision taken, in order.
    """

    def __init__(
        self,
        docks: Iterable[Dock],
        *,
        no_fly: Any = None,
        plan_config: PlanConfig | None = None,
        config: ScheduleConfig | None = None,
        planner: Callable[[Mapping[str, Any], Dock], Mission] | None = None,
    ) -> None:
        self.config = ScheduleConfig() if config is None else config
        self.plan_config = PlanConfig() if plan_config is None else plan_config
        if not isinstance(self.config, ScheduleConfig):
            raise SchedulerError(f"config must be a ScheduleConfig, got {type(config).__name__}")
        if not isinstance(self.plan_config, PlanConfig):
            raise SchedulerError(
                f"plan_config must be a PlanConfig, got {type(plan_config).__name__}"
            )
        self.docks: tuple[Dock, ...] = tuple(sorted(docks, key=lambda d: d.site_id))
        ids = [d.site_id for d in self.docks]
        if len(set(ids)) != len(ids):
            raise SchedulerError(f"dock site_ids must be unique, got {ids}")
        for d in self.docks:
            if not isinstance(d, Dock):
                raise SchedulerError(f"docks must be Dock objects, got {type(d).__name__}")
        if planner is None:
            no_fly_zones, cfg = no_fly, self.plan_config

            def planner(target: Mapping[str, Any], dock: Dock) -> Mission:
                return plan_mission(target, dock, no_fly=no_fly_zones, config=cfg, now=None)

        self._planner = planner
        self._drones: dict[str, _Drone] = {}
        for d in self.docks:
            for n in range(1, d.drones + 1):
                drone_id = f"{d.site_id}/{n}"
                self._drones[drone_id] = _Drone(drone_id, d)
        self._queue: dict[str, _Entry] = {}
        self._active: dict[str, _Active] = {}
        self._seen: set[str] = set()
        self.log: list[Decision] = []

    # ------------------------------------------------------------------ state

    @property
    def queued(self) -> list[str]:
        """Alert ids waiting, in priority order."""
        return [e.alert_id for e in sorted(self._queue.values(), key=self._priority)]

    def known(self, alert_id: str) -> bool:
        """True once ``alert_id`` was queued (queued, flying or handled)."""
        return alert_id in self._seen

    def is_queued(self, alert_id: str) -> bool:
        """True while ``alert_id`` waits in the queue."""
        return alert_id in self._queue

    def entries(self) -> list[dict[str, Any]]:
        """The queued alerts in priority order, as JSON-ready dicts."""
        return [
            {
                "alert_id": e.alert_id,
                "severity": e.severity,
                "kind": e.kind,
                "priority": e.priority,
                "attempts": e.attempts,
                "queued_at": e.queued_at,
                "last_failure": e.last_failure,
                "last_failure_code": e.last_failure_reason.get("code", ""),
                "last_failure_params": dict(e.last_failure_reason.get("params") or {}),
            }
            for e in sorted(self._queue.values(), key=self._priority)
        ]

    @property
    def active(self) -> dict[str, tuple[str, str]]:
        """Missions in flight: ``mission_id -> (alert_id, drone_id)``."""
        return {m: (a.entry.alert_id, a.drone.drone_id) for m, a in self._active.items()}

    def drone_states(self, now: Any) -> dict[str, tuple[str, dt.datetime | None]]:
        """``drone_id -> (state, until)`` with state ``free``, ``flying``, ``recharging``."""
        t = _utc(now, self.config.timezone)
        return {k: d.state(t) for k, d in sorted(self._drones.items())}

    def _priority(self, e: _Entry) -> tuple:
        kinds = self.config.kind_priority
        kind_rank = kinds.index(e.kind) if e.kind in kinds else len(kinds)
        return (
            -e.priority,
            _SEVERITY_RANK.get(e.severity, len(_SEVERITY_RANK)),
            kind_rank,
            e.evidence_time,
            e.alert_id,
        )

    def _emit(self, decision: Decision) -> Decision:
        self.log.append(decision)
        return decision

    # ------------------------------------------------------------------ events

    def add_alert(
        self, alert: Mapping[str, Any] | pd.Series, now: Any, *, priority: int = 0
    ) -> bool:
        """Queue an alert to look at.

        Parameters
        ----------
        alert : mapping or Series
            An alerts-frame row: ``alert_id``, ``lat``, ``lon`` (WGS-84) and
            optionally ``severity``, ``kind``, ``start``, ``end``.
        now : datetime
            Current time (tz-aware; naive = local ``config.timezone``).
        priority : int, default 0
            A dispatcher's priority: higher goes first, before severity.

        Returns
        -------
        bool
            False when the alert was already queued, in flight or handled.
        """
        _check_priority(priority)
        t = _utc(now, self.config.timezone)
        if not isinstance(alert, (Mapping, pd.Series)):
            raise SchedulerError(f"alert must be a mapping or Series, got {type(alert).__name__}")
        alert_id = alert.get("alert_id")
        if not isinstance(alert_id, str) or not alert_id:
            raise SchedulerError(f"alert.alert_id must be a non-empty str, got {alert_id!r}")
        lat, lon = alert.get("lat"), alert.get("lon")
        if not (is_finite_number(lat) and -90 <= float(lat) <= 90):
            raise SchedulerError(f"alert {alert_id}: lat must be in [-90, 90], got {lat!r}")
        if not (is_finite_number(lon) and -180 <= float(lon) <= 180):
            raise SchedulerError(f"alert {alert_id}: lon must be in [-180, 180], got {lon!r}")
        if alert_id in self._seen:
            return False
        evidence = t
        for key in ("end", "start"):
            value = alert.get(key)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                if value is pd.NaT:
                    continue
                evidence = _utc(value, self.config.timezone, what=f"alert.{key}")
                break
        self._seen.add(alert_id)
        self._queue[alert_id] = _Entry(
            alert_id=alert_id,
            target={"alert_id": alert_id, "lat": float(lat), "lon": float(lon)},
            severity=str(alert.get("severity") or ""),
            kind=str(alert.get("kind") or ""),
            evidence_time=evidence,
            queued_at=t,
            priority=int(priority),
        )
        return True

    def reprioritise(self, alert_id: str, priority: int, now: Any, *, by: str = "") -> Decision:
        """Change a queued alert's dispatcher priority (higher goes first)."""
        t = _utc(now, self.config.timezone)
        _check_priority(priority)
        entry = self._queue.get(alert_id)
        if entry is None:
            raise SchedulerError(f"alert_id {alert_id!r} is not queued")
        old, entry.priority = entry.priority, int(priority)
        entry.last_wait = ""
        who = f" by {by}" if by else ""
        position = self.queued.index(alert_id) + 1
        why = _reason(
            "reprioritise_by" if by else "reprioritise",
            old=old,
            new=entry.priority,
            position=position,
            **({"by": by} if by else {}),
        )
        return self._emit(
            Decision(
                "reprioritise",
                alert_id,
                "",
                "",
                f"priority {old} -> {entry.priority}{who}; now #{position} in the queue",
                t,
                **_coded(why),
            )
        )

    def hold_drone(
        self,
        drone_id: str,
        reason: str,
        now: Any,
        *,
        parts: list[dict[str, Any]] | None = None,
    ) -> Decision | None:
        """Take a drone out of service (``reason``) or back in (``reason`` = "").

        ``parts`` are the structured reasons of the hold (see :mod:`haulwatch.drone.reasons`).
        Returns the decision when the drone's hold changed, else None.
        """
        t = _utc(now, self.config.timezone)
        drone = self._drones.get(drone_id)
        if drone is None:
            raise SchedulerError(f"drone_id {drone_id!r} is unknown; known: {sorted(self._drones)}")
        if drone.hold == reason:
            return None
        drone.hold = reason
        action, why = ("hold", reason) if reason else ("release", "back in service")
        coded = (
            _reason("hold", drone=drone_id, parts=list(parts or []))
            if reason
            else _reason("release", drone=drone_id)
        )
        return self._emit(
            Decision(action, "", drone.dock.site_id, drone_id, why, t, **_coded(coded))
        )

    # ------------------------------------------------------------------ persistence

    def snapshot(self) -> dict[str, Any]:
        """The queue, the drones and the missions in flight as JSON-ready data."""

        def entry(e: _Entry) -> dict[str, Any]:
            return {
                "alert_id": e.alert_id,
                "lat": e.target["lat"],
                "lon": e.target["lon"],
                "severity": e.severity,
                "kind": e.kind,
                "evidence_time": e.evidence_time.isoformat(),
                "queued_at": e.queued_at.isoformat(),
                "attempts": e.attempts,
                "priority": e.priority,
                "last_failure": e.last_failure,
            }

        return {
            "version": 1,
            "queue": [entry(e) for e in sorted(self._queue.values(), key=self._priority)],
            "active": [
                {
                    "mission_id": m,
                    "drone_id": a.drone.drone_id,
                    "launched_at": a.launched_at.isoformat(),
                    **entry(a.entry),
                }
                for m, a in sorted(self._active.items())
            ],
            "drones": {
                k: {
                    "recharged_at": None if d.recharged_at is None else d.recharged_at.isoformat(),
                    "hold": d.hold,
                }
                for k, d in sorted(self._drones.items())
            },
            "seen": sorted(self._seen),
        }

    def restore(self, data: Mapping[str, Any], now: Any) -> list[Decision]:
        """Load a :meth:`snapshot` into this (fresh) scheduler.

        Missions that were in flight are reported failed ("service restarted
        during the flight": nobody followed them to the end) and re-queued or
        dropped by ``max_retries``, never counted done; their drones recharge.

        Returns
        -------
        list of Decision
            The ``requeue`` / ``drop`` decisions for those missions.
        """
        t = _utc(now, self.config.timezone)
        if self._queue or self._active or self._seen:
            raise SchedulerError("restore() needs a fresh scheduler")
        if not isinstance(data, Mapping) or data.get("version") != 1:
            raise SchedulerError("snapshot must be a mapping with version 1")

        def entry(d: Mapping[str, Any]) -> _Entry:
            tz = self.config.timezone
            return _Entry(
                alert_id=str(d["alert_id"]),
                target={
                    "alert_id": str(d["alert_id"]),
                    "lat": float(d["lat"]),
                    "lon": float(d["lon"]),
                },
                severity=str(d.get("severity", "")),
                kind=str(d.get("kind", "")),
                evidence_time=_utc(d["evidence_time"], tz, "evidence_time"),
                queued_at=_utc(d["queued_at"], tz, "queued_at"),
                attempts=int(d.get("attempts", 0)),
                priority=int(d.get("priority", 0)),
                last_failure=str(d.get("last_failure", "")),
            )

        try:
            for d in data.get("queue", []):
                e = entry(d)
                self._queue[e.alert_id] = e
            for drone_id, state in dict(data.get("drones", {})).items():
                drone = self._drones.get(drone_id)
                if drone is None:
                    continue  # a dock removed since: its drones are gone
                at = state.get("recharged_at")
                drone.recharged_at = None if at is None else _utc(at, self.config.timezone)
                drone.hold = str(state.get("hold", ""))
            self._seen = {str(a) for a in data.get("seen", [])}
            out = []
            for d in data.get("active", []):
                e = entry(d)
                drone = self._drones.get(str(d.get("drone_id")))
                if drone is None:  # its dock was removed: re-queue without a drone to free
                    e.attempts += 1
                    e.last_failure = "failed: service restarted during the flight"
                    self._queue[e.alert_id] = e
                    continue
                mission = Mission(0.0, 0.0, 0.0, (), e.target["lat"], e.target["lon"])
                self._active[str(d["mission_id"])] = _Active(e, drone, mission, t)
                drone.mission_id = str(d["mission_id"])
                out.append(
                    self.mission_finished(
                        str(d["mission_id"]),
                        "failed",
                        t,
                        detail="service restarted during the flight",
                        detail_reason=_reason("service_restarted"),
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise SchedulerError(f"bad snapshot: {exc}") from exc
        return out

    def cancel(
        self, alert_id: str, now: Any, *, reason: str = "cancelled", by: str = ""
    ) -> Decision:
        """Remove a queued alert (e.g. a dispatcher dismissed it; ``by`` who)."""
        t = _utc(now, self.config.timezone)
        if alert_id not in self._queue:
            raise SchedulerError(f"alert_id {alert_id!r} is not queued")
        del self._queue[alert_id]
        why = _reason("cancelled_by", by=by) if by else _reason("cancelled")
        return self._emit(Decision("drop", alert_id, "", "", reason, t, **_coded(why)))

    def mission_finished(
        self,
        mission_id: str,
        outcome: str,
        now: Any,
        *,
        detail: str = "",
        detail_reason: dict[str, Any] | None = None,
    ) -> Decision:
        """Report the end of a launched mission.

        Parameters
        ----------
        mission_id : str
            As given in the ``launch`` decision.
        outcome : {"completed", "failed", "aborted"}
            How it ended.
        now : datetime
            When it ended; the drone recharges from then on.
        detail : str, default ""
            Why it failed (goes into the decision's reason).
        detail_reason : dict, optional
            The same as a structured reason (default: ``failure_detail`` with ``detail``).

        Returns
        -------
        Decision
            ``done``, ``requeue`` or ``drop``.
        """
        t = _utc(now, self.config.timezone)
        if outcome not in OUTCOMES:
            raise SchedulerError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        active = self._active.pop(mission_id, None)
        if active is None:
            raise SchedulerError(f"mission_id {mission_id!r} is not in flight")
        drone, entry = active.drone, active.entry
        drone.mission_id = ""
        drone.busy_until = None
        drone.recharged_at = t + dt.timedelta(seconds=self.config.recharge_s)
        recharge = f"drone {drone.drone_id} recharging until {_hhmm(drone.recharged_at)}"
        base = dict(
            alert_id=entry.alert_id,
            dock_site_id=drone.dock.site_id,
            drone_id=drone.drone_id,
            time=t,
            mission_id=mission_id,
        )
        until = _hhmm(drone.recharged_at)
        if outcome == "completed":
            why = _reason("done", drone=drone.drone_id, until_utc=until)
            return self._emit(
                Decision("done", reason=f"mission completed; {recharge}", **base, **_coded(why))
            )
        entry.attempts += 1
        entry.last_failure = f"{outcome}" + (f": {detail}" if detail else "")
        notes = []
        if detail_reason:
            notes.append(dict(detail_reason))
        elif detail:
            notes.append(_reason("failure_detail", detail=detail))
        entry.last_failure_reason = _reason("flight_" + outcome, notes=notes)
        if entry.attempts > self.config.max_retries:
            why = _reason(
                "drop_retries",
                outcome=outcome,
                attempts=entry.attempts,
                max_retries=self.config.max_retries,
                drone=drone.drone_id,
                until_utc=until,
                notes=notes,
            )
            return self._emit(
                Decision(
                    "drop",
                    reason=(
                        f"mission {outcome} {entry.attempts} times (max_retries "
                        f"{self.config.max_retries}); last: {entry.last_failure}; {recharge}"
                    ),
                    **base,
                    **_coded(why),
                )
            )
        entry.last_wait = ""
        self._queue[entry.alert_id] = entry
        why = _reason(
            "requeue",
            outcome=outcome,
            attempt=entry.attempts + 1,
            of=self.config.max_retries + 1,
            drone=drone.drone_id,
            until_utc=until,
            notes=notes,
        )
        return self._emit(
            Decision(
                "requeue",
                reason=(
                    f"mission {entry.last_failure}; re-queued (attempt {entry.attempts + 1} of "
                    f"{self.config.max_retries + 1}); {recharge}"
                ),
                **base,
                **_coded(why),
            )
        )

    # ------------------------------------------------------------------ step

    def step(self, now: Any) -> list[Decision]:
        """Decide what to do at ``now``: launches, waits (on change), drops.

        Parameters
        ----------
        now : datetime
            Current time (tz-aware; naive = local ``config.timezone``).

        Returns
        -------
        list of Decision
            In queue-priority order.
        """
        t = _utc(now, self.config.timezone)
        out: list[Decision] = []
        free: dict[str, list[_Drone]] = {d.site_id: [] for d in self.docks}
        for drone in sorted(self._drones.values(), key=lambda d: d.drone_id):
            if drone.state(t)[0] == "free":
                free[drone.dock.site_id].append(drone)

        for entry in sorted(self._queue.values(), key=self._priority):
            decision = self._decide(entry, t, free)
            if decision is not None:
                out.append(self._emit(decision))
        return out

    def _stale(self, entry: _Entry, t: dt.datetime) -> tuple[str, dict[str, Any]]:
        limit = self.config.max_alert_age_s
        if limit is None:
            return "", {}
        age = (t - entry.evidence_time).total_seconds()
        if age > limit:
            text = (
                f"evidence is {age / 3600:.1f} h old (since {_hhmm(entry.evidence_time)}), "
                f"older than max_alert_age_s {limit:g} s"
            )
            why = _reason(
                "drop_stale",
                age_h=round(age / 3600, 1),
                since_utc=_hhmm(entry.evidence_time),
                limit_h=round(limit / 3600, 1),
            )
            return text, why
        return "", {}

    def _decide(
        self, entry: _Entry, t: dt.datetime, free: dict[str, list[_Drone]]
    ) -> Decision | None:
        stale, stale_why = self._stale(entry, t)
        if stale:
            del self._queue[entry.alert_id]
            return Decision("drop", entry.alert_id, "", "", stale, t, **_coded(stale_why))

        docks = self._docks_by_distance(entry)
        feasible: list[tuple[Dock, float, Mission]] = []
        temporary: list[str] = []
        temporary_why: list[dict[str, Any]] = []
        for dock, dist in docks:
            if dock.site_id in entry.refused:
                continue
            mission = entry.planned.get(dock.site_id)
            if mission is None:
                try:
                    mission = self._planner(entry.target, dock)
                except MissionRefused as exc:
                    if exc.reason in TEMPORARY_REASONS:
                        temporary.append(f"{dock.site_id}: {exc.message}")
                        temporary_why.append(
                            _reason("dock_waits", dock=dock.site_id, why=exc.reason_dict)
                        )
                    else:
                        entry.refused[dock.site_id] = (exc.reason, exc.message)
                    continue
                entry.planned[dock.site_id] = mission
            try:
                timing = check_flight_time(
                    dock, t, float(mission.meta.get("duration_s", 0.0)), self.plan_config
                )
            except MissionRefused as exc:
                temporary.append(f"{dock.site_id}: {exc.message}")
                temporary_why.append(_reason("dock_waits", dock=dock.site_id, why=exc.reason_dict))
                continue
            stamped = dataclasses.replace(mission, meta={**mission.meta, **timing})
            feasible.append((dock, dist, stamped))

        if not feasible and not temporary:
            del self._queue[entry.alert_id]
            why = "; ".join(f"{s}: {r} ({m})" for s, (r, m) in sorted(entry.refused.items()))
            coded = (
                _reason(
                    "drop_infeasible",
                    parts=[
                        _reason("dock_infeasible", dock=s, refusal=r)
                        for s, (r, _m) in sorted(entry.refused.items())
                    ],
                )
                if entry.refused
                else _reason("drop_no_docks")
            )
            return Decision(
                "drop",
                entry.alert_id,
                "",
                "",
                f"infeasible from every dock: {why or 'no docks with drones'}",
                t,
                **_coded(coded),
            )

        # Shortest flight among docks with a free drone.
        ready = [f for f in feasible if free[f[0].site_id]]
        if ready:
            dock, dist, mission = min(
                ready, key=lambda f: (f[2].meta.get("duration_s", 0.0), f[1], f[0].site_id)
            )
            drone = free[dock.site_id].pop(0)
            return self._launch(entry, drone, mission, dist, feasible, t)

        parts = []
        coded: list[dict[str, Any]] = []
        for dock, _dist, _m in feasible:
            states = [d.state(t) for d in self._drones.values() if d.dock.site_id == dock.site_id]
            if not states:
                parts.append(f"{dock.site_id}: no drones")
                coded.append(_reason("dock_no_drones", dock=dock.site_id))
                continue
            soonest = min(states, key=lambda s: s[1] or t)
            parts.append(
                f"{dock.site_id}: all {len(states)} drone(s) busy, first {soonest[0]} until "
                f"{_hhmm(soonest[1]) if soonest[1] else 'unknown'}"
            )
            if soonest[1]:
                coded.append(
                    _reason(
                        "dock_busy",
                        dock=dock.site_id,
                        n=len(states),
                        state=soonest[0],
                        until_utc=_hhmm(soonest[1]),
                    )
                )
            else:
                coded.append(
                    _reason("dock_busy_unknown", dock=dock.site_id, n=len(states), state=soonest[0])
                )
        parts += temporary
        coded += temporary_why
        parts += [f"{s}: infeasible, {r}" for s, (r, _m) in sorted(entry.refused.items())]
        coded += [
            _reason("dock_infeasible", dock=s, refusal=r)
            for s, (r, _m) in sorted(entry.refused.items())
        ]
        reason = "waiting: " + "; ".join(parts)
        if reason == entry.last_wait:
            return None
        entry.last_wait = reason
        return Decision(
            "wait", entry.alert_id, "", "", reason, t, **_coded(_reason("wait", parts=coded))
        )

    def _docks_by_distance(self, entry: _Entry) -> list[tuple[Dock, float]]:
        docks = [d for d in self.docks if d.drones > 0]
        if not docks:
            return []
        n = len(docks)
        _, _, dist = _GEOD.inv(
            [d.lon_deg for d in docks],
            [d.lat_deg for d in docks],
            [entry.target["lon"]] * n,
            [entry.target["lat"]] * n,
        )
        pairs = list(zip(docks, [float(x) for x in list(dist)], strict=True))
        return sorted(pairs, key=lambda p: (p[1], p[0].site_id))

    def _launch(
        self,
        entry: _Entry,
        drone: _Drone,
        mission: Mission,
        dist: float,
        feasible: list[tuple[Dock, float, Mission]],
        t: dt.datetime,
    ) -> Decision:
        del self._queue[entry.alert_id]
        mission_id = f"{entry.alert_id}-{entry.attempts + 1}"
        duration = float(mission.meta.get("duration_s", 0.0))
        drone.mission_id = mission_id
        drone.busy_until = t + dt.timedelta(seconds=duration)
        self._active[mission_id] = _Active(entry, drone, mission, t)
        others = []
        notes: list[dict[str, Any]] = []
        if entry.attempts:
            notes.append(_reason("launch_attempt", attempt=entry.attempts + 1))
        for dock, _d, m in feasible:
            if dock.site_id == drone.dock.site_id:
                continue
            states = [d.state(t) for d in self._drones.values() if d.dock.site_id == dock.site_id]
            busy = all(s[0] != "free" for s in states)
            others.append(
                f"{dock.site_id} {m.meta.get('duration_s', 0.0) / 60:.1f} min"
                + (" (busy)" if busy else "")
            )
            notes.append(
                _reason(
                    "other_dock_busy" if busy else "other_dock",
                    dock=dock.site_id,
                    duration_min=round(float(m.meta.get("duration_s", 0.0)) / 60, 1),
                )
            )
        refused = [f"{s} {r}" for s, (r, _m) in sorted(entry.refused.items())]
        notes += [
            _reason("dock_infeasible", dock=s, refusal=r)
            for s, (r, _m) in sorted(entry.refused.items())
        ]
        queued_min = (t - entry.queued_at).total_seconds() / 60
        reason = (
            f"{entry.severity or 'unrated'} {entry.kind or 'alert'}, first in queue "
            f"(waited {queued_min:.0f} min"
            + (f", attempt {entry.attempts + 1}" if entry.attempts else "")
            + f"); dock {drone.dock.site_id} is the shortest feasible flight with a free drone: "
            f"target {dist:.0f} m, est. {duration / 60:.1f} min, battery "
            f"{mission.meta.get('battery_used_pct', float('nan')):.0f}%"
            + (f"; other docks: {', '.join(others)}" if others else "")
            + (f"; infeasible: {', '.join(refused)}" if refused else "")
        )
        battery = float(mission.meta.get("battery_used_pct", float("nan")))
        why = _reason(
            "launch",
            severity=entry.severity,
            kind=entry.kind,
            waited_min=round(queued_min),
            dock=drone.dock.site_id,
            drone=drone.drone_id,
            distance_m=round(dist),
            duration_min=round(duration / 60, 1),
            battery_pct=round(battery) if math.isfinite(battery) else None,
            notes=notes,
        )
        return Decision(
            "launch",
            entry.alert_id,
            drone.dock.site_id,
            drone.drone_id,
            reason,
            t,
            mission_id=mission_id,
            mission=mission,
            **_coded(why),
        )


def _coded(why: dict[str, Any]) -> dict[str, Any]:
    """``code=`` and ``params=`` keyword arguments of a :class:`Decision` from a reason."""
    return {"code": why.get("code", ""), "params": dict(why.get("params") or {})}
