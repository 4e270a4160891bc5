"""A fleet of docks: each dock's drones with their connection, charge and availability.

:class:`FleetManager` is the drone side of dispatch with several docks. It wraps a
:class:`~haulwatch.drone.schedule.Scheduler` (priority, one mission per drone,
recharge, retries) and adds what a service needs around it, still pure and
clock-injected (every call takes ``now``; no I/O, no threads):

* each drone's MAVLink connection (``connections``: drone id → URL); a drone
  without one is held out of service;
* its charge: :meth:`FleetManager.report_battery` holds a drone whose battery
  is below ``min_launch_battery_pct`` and releases it once charged;
* availability: :meth:`FleetManager.set_available` (maintenance, dock door...);
* the three kinds of task of a dock system (as DJI's dock task model:
  immediate, timed, conditional): :meth:`FleetManager.request` queues an alert
  at once (a dispatcher's click), ``not_before`` delays it (timed), and
  :meth:`FleetManager.offer` applies the :class:`AutoDispatchRule` — a new
  high-severity ``illegal_dump`` within range of a free dock in flight hours is
  queued without a click; the rule is **off by default**;
* cancel (queued: dropped; flying: an ``abort`` instruction for the flyer) and
  reprioritise;
* :meth:`FleetManager.queue_view`: the queue as JSON for the console (waiting,
  flying, recharging, unavailable drones, the last decisions);
* :meth:`FleetManager.snapshot` / :meth:`FleetManager.restore`: a restart keeps
  the queue; what was flying comes back failed and re-queued.

The caller (the service) turns ``launch`` decisions into flights on
``decision_url(d)`` and reports back with :meth:`FleetManager.finished`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pyproj

from haulwatch.drone.daylight import as_utc
from haulwatch.drone.docks import Dock
from haulwatch.drone.planconfig import PlanConfig, is_finite_number
from haulwatch.drone.reasons import reason as _reason
from haulwatch.drone.schedule import (
    Decision,
    ScheduleConfig,
    Scheduler,
    SchedulerError,
)
from haulwatch.timezone import DEFAULT_TIMEZONE, check_timezone

__all__ = ["AutoDispatchRule", "FleetError", "FleetManager"]

_GEOD = pyproj.Geod(ellps="WGS84")
_SEVERITIES = ("high", "medium", "low")


class FleetError(SchedulerError):
    """A bad fleet request (unknown drone, bad rule, bad time)."""


@dataclass(frozen=True)
class AutoDispatchRule:
    """When a new alert is flown without a dispatcher's click.

    Parameters
    ----------
    enabled : bool, default False
        Off by default: every flight needs a click until an operator turns it on.
    kinds : tuple of str, default ("illegal_dump",)
        Alert kinds the rule applies to.
    severities : tuple of str, default ("high",)
        Severities the rule applies to.
    max_distance_m : float, optional
        Largest distance from a dock with a free drone; None = the planner's
        ``max_range_m``.
    flight_hours : (time, time) or None, default (07:00, 19:00)
        Local hours in which the rule may dispatch (may wrap midnight); None =
        any hour (the planner's daylight rule still applies).
    timezone : str, default "Asia/Shanghai"
        Zone of ``flight_hours``.
    """

    enabled: bool = False
    kinds: tuple[str, ...] = ("illegal_dump",)
    severities: tuple[str, ...] = ("high",)
    max_distance_m: float | None = None
    flight_hours: tuple[dt.time, dt.time] | None = (dt.time(7, 0), dt.time(19, 0))
    timezone: str = DEFAULT_TIMEZONE

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise FleetError(f"AutoDispatchRule.enabled must be a bool, got {self.enabled!r}")
        for name in ("kinds", "severities"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(k, str) for k in value):
                raise FleetError(f"AutoDispatchRule.{name} must be a tuple of str, got {value!r}")
        bad = [s for s in self.severities if s not in _SEVERITIES]
        if bad:
            raise FleetError(f"AutoDispatchRule.severities must be in {_SEVERITIES}, got {bad}")
        d = self.max_distance_m
        if d is not None and (not is_finite_number(d) or d <= 0):
            raise FleetError(f"AutoDispatchRule.max_distance_m must be None or > 0, got {d!r}")
        hours = self.flight_hours
        if hours is not None and (
            not isinstance(hours, tuple)
            or len(hours) != 2
            or not all(isinstance(h, dt.time) for h in hours)
            or hours[0] == hours[1]
        ):
            raise FleetError(
                f"AutoDispatchRule.flight_hours must be None or two distinct times, got {hours!r}"
            )
        check_timezone(self.timezone, what="AutoDispatchRule.timezone", error=FleetError)

    def in_hours(self, now: dt.datetime) -> bool:
        """True when ``now`` (tz-aware) falls in ``flight_hours``."""
        if self.flight_hours is None:
            return True
        local = now.astimezone(ZoneInfo(self.timezone)).time().replace(tzinfo=None)
        start, end = self.flight_hours
        return start <= local < end if start < end else (local >= start or local < end)


class FleetManager:
    """Docks, their drones' connections and charge, and the dispatch queue.

    Parameters
    ----------
    docks : iterable of Dock
        Docks with their ``drones`` count; drone ids are ``"<site_id>/<n>"``.
    connections : mapping, optional
        ``drone_id -> MAVLink URL`` (``tcp:...``). A drone without a URL is
        held ("no connection configured").
    no_fly, plan_config, schedule_config
        For the :class:`~haulwatch.drone.schedule.Scheduler`.
    rule : AutoDispatchRule, optional
        Automatic dispatch (off by default).
    min_launch_battery_pct : float, default 90
        A drone reporting less charge is held ("charging") until it reports
        at least this much again.
    now : datetime
        Creation time (held drones are logged at it).
    """

    def __init__(
        self,
        docks: Iterable[Dock],
        *,
        now: Any,
        connections: Mapping[str, str] | None = None,
        no_fly: Any = None,
        plan_config: PlanConfig | None = None,
        schedule_config: ScheduleConfig | None = None,
        rule: AutoDispatchRule | None = None,
        min_launch_battery_pct: float = 90.0,
    ) -> None:
        self.scheduler = Scheduler(
            docks, no_fly=no_fly, plan_config=plan_config, config=schedule_config
        )
        self.rule = AutoDispatchRule() if rule is None else rule
        if not isinstance(self.rule, AutoDispatchRule):
            raise FleetError(f"rule must be an AutoDispatchRule, got {type(rule).__name__}")
        pct = min_launch_battery_pct
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
            raise FleetError(f"min_launch_battery_pct must be in [0, 100], got {pct!r}")
        self.min_launch_battery_pct = float(pct)
        drone_ids = list(self.scheduler.drone_states(now))
        conns = dict(connections or {})
        unknown = sorted(set(conns) - set(drone_ids))
        if unknown:
            raise FleetError(f"connections for unknown drones {unknown}; drones: {drone_ids}")
        self.connections: dict[str, str] = conns
        self.battery_pct: dict[str, float | None] = dict.fromkeys(drone_ids)
        self._holds: dict[str, dict[str, str]] = {d: {} for d in drone_ids}
        # the same holds as structured reasons (code + params), by hold key
        self._hold_reasons: dict[str, dict[str, dict[str, Any]]] = {d: {} for d in drone_ids}
        self._not_before: dict[str, dt.datetime] = {}
        self._pending: dict[str, tuple[dict[str, Any], int]] = {}
        for drone_id in drone_ids:
            if drone_id not in conns:
                self._set_hold(drone_id, "link", "no connection configured", now)

    # ------------------------------------------------------------------ drones
    @property
    def docks(self) -> tuple[Dock, ...]:
        """The docks (sorted by site id)."""
        return self.scheduler.docks

    def _set_hold(
        self,
        drone_id: str,
        key: str,
        reason: str,
        now: Any,
        coded: dict[str, Any] | None = None,
    ) -> Decision | None:
        if drone_id not in self._holds:
            raise FleetError(f"drone_id {drone_id!r} is unknown; known: {sorted(self._holds)}")
        holds, coded_holds = self._holds[drone_id], self._hold_reasons[drone_id]
        if reason:
            holds[key] = reason
            coded_holds[key] = coded or _hold_reason(key, reason)
        else:
            holds.pop(key, None)
            coded_holds.pop(key, None)
        return self.scheduler.hold_drone(
            drone_id,
            "; ".join(holds[k] for k in sorted(holds)),
            now,
            parts=[coded_holds[k] for k in sorted(coded_holds)],
        )

    def set_available(self, drone_id: str, available: bool, now: Any, *, reason: str = "") -> None:
        """Put a drone in or out of service (out: ``reason``, e.g. "maintenance")."""
        why = "" if available else (reason or "out of service")
        self._set_hold(drone_id, "service", why, now)

    def set_connection(self, drone_id: str, url: str | None, now: Any) -> None:
        """Set (or remove, ``None``) a drone's MAVLink URL."""
        if url:
            self.connections[drone_id] = str(url)
            self._set_hold(drone_id, "link", "", now)
        else:
            self.connections.pop(drone_id, None)
            self._set_hold(drone_id, "link", "no connection configured", now)

    def report_battery(self, drone_id: str, pct: float | None, now: Any) -> None:
        """Record a drone's state of charge; hold it while below the launch minimum."""
        if pct is not None and not (isinstance(pct, (int, float)) and 0 <= pct <= 100):
            raise FleetError(f"battery pct must be None or in [0, 100], got {pct!r}")
        if drone_id not in self.battery_pct:
            raise FleetError(f"drone_id {drone_id!r} is unknown; known: {sorted(self.battery_pct)}")
        self.battery_pct[drone_id] = None if pct is None else float(pct)
        low = pct is not None and pct < self.min_launch_battery_pct
        why = (
            f"charging: battery {pct:.0f}% below the {self.min_launch_battery_pct:g}% to launch"
            if low
            else ""
        )
        coded = (
            _reason(
                "charging",
                battery_pct=round(float(pct)),
                min_pct=_tidy(self.min_launch_battery_pct),
            )
            if low
            else None
        )
        self._set_hold(drone_id, "battery", why, now, coded)

    def url(self, drone_id: str) -> str:
        """The MAVLink URL of ``drone_id``."""
        try:
            return self.connections[drone_id]
        except KeyError as exc:
            raise FleetError(f"drone {drone_id!r} has no connection configured") from exc

    # ------------------------------------------------------------------ tasks
    def request(
        self,
        alert: Mapping[str, Any],
        now: Any,
        *,
        priority: int = 0,
        not_before: Any = None,
    ) -> bool:
        """Queue an alert for a flight (a dispatcher's click).

        Parameters
        ----------
        alert : mapping
            ``alert_id``, ``lat``, ``lon`` and optionally ``severity``, ``kind``,
            ``start``, ``end``.
        now : datetime
            Current time.
        priority : int, default 0
            Higher goes first (before severity).
        not_before : datetime, optional
            A timed task: not launched before this instant.

        Returns
        -------
        bool
            False when the alert is already queued, flying or handled.
        """
        t = _as_utc(now, self.scheduler.config.timezone)
        alert_id = alert.get("alert_id") if isinstance(alert, Mapping) else None
        if not_before is not None:
            start = _as_utc(not_before, self.scheduler.config.timezone, "not_before")
            if start > t:
                if not isinstance(alert_id, str) or not alert_id:
                    raise FleetError(f"alert.alert_id must be a non-empty str, got {alert_id!r}")
                if alert_id in self._pending or self.scheduler.known(alert_id):
                    return False
                self._not_before[alert_id] = start
                self._pending[alert_id] = (dict(alert), int(priority))
                return True
        return self.scheduler.add_alert(alert, t, priority=priority)

    def offer(self, alert: Mapping[str, Any], now: Any) -> tuple[bool, str]:
        """Apply the automatic-dispatch rule to a new alert.

        Returns
        -------
        (queued, reason)
            Whether it was queued without a click, and why (not).
        """
        queued, text, _why = self.offer_reason(alert, now)
        return queued, text

    def offer_reason(self, alert: Mapping[str, Any], now: Any) -> tuple[bool, str, dict[str, Any]]:
        """As :meth:`offer`, with the reason also as a structured reason (code + params)."""
        t = _as_utc(now, self.scheduler.config.timezone)
        rule = self.rule
        if not rule.enabled:
            return False, "automatic dispatch is off", _reason("auto_off")
        kind, severity = str(alert.get("kind") or ""), str(alert.get("severity") or "")
        if kind not in rule.kinds:
            return (
                False,
                f"kind {kind or '-'} not in {list(rule.kinds)}",
                _reason("auto_kind", kind=kind),
            )
        if severity not in rule.severities:
            return (
                False,
                f"severity {severity or '-'} not in {list(rule.severities)}",
                _reason("auto_severity", severity=severity),
            )
        if not rule.in_hours(t):
            start, end = rule.flight_hours or (None, None)
            return (
                False,
                f"outside flight hours {start:%H:%M}-{end:%H:%M} ({rule.timezone})",
                _reason(
                    "auto_hours", start=f"{start:%H:%M}", end=f"{end:%H:%M}", zone=rule.timezone
                ),
            )
        try:
            lat, lon = float(alert["lat"]), float(alert["lon"])
        except (KeyError, TypeError, ValueError):
            return False, "alert has no usable lat/lon", _reason("auto_no_location")
        limit = rule.max_distance_m or self.scheduler.plan_config.max_range_m
        states = self.scheduler.drone_states(t)
        free_docks = {drone_id.split("/")[0] for drone_id, (s, _u) in states.items() if s == "free"}
        near = []
        for dock in self.docks:
            if dock.site_id not in free_docks:
                continue
            _, _, dist = _GEOD.inv(dock.lon_deg, dock.lat_deg, lon, lat)
            if dist <= limit:
                near.append((float(dist), dock.site_id))
        if not near:
            return (
                False,
                f"no dock with a free drone within {limit:.0f} m",
                _reason("auto_no_dock", max_distance_m=round(limit)),
            )
        dist, site = min(near)
        queued = self.scheduler.add_alert(alert, t)
        if not queued:
            return False, "already queued, flying or handled", _reason("auto_known")
        return (
            True,
            f"automatic dispatch: dock {site} free, target {dist:.0f} m away",
            _reason("auto_dispatched", dock=site, distance_m=round(dist)),
        )

    def cancel(self, alert_id: str, now: Any, *, by: str = "") -> dict[str, Any]:
        """Cancel an alert's task.

        Returns
        -------
        dict
            ``{"action": "dropped"}`` for a queued or timed task, or
            ``{"action": "abort", "mission_id": ...}`` for one in flight (the
            flyer must abort it and then call :meth:`finished`).
        """
        t = _as_utc(now, self.scheduler.config.timezone)
        who = f" by {by}" if by else ""
        cancelled = _reason("cancelled_by", by=by) if by else _reason("cancelled")
        if alert_id in self._pending:
            del self._pending[alert_id]
            del self._not_before[alert_id]
            return {
                "action": "dropped",
                "alert_id": alert_id,
                "reason": f"cancelled{who}",
                "reason_code": cancelled["code"],
                "reason_params": cancelled["params"],
            }
        if self.scheduler.is_queued(alert_id):
            d = self.scheduler.cancel(alert_id, t, reason=f"cancelled{who}", by=by)
            return {
                "action": "dropped",
                "alert_id": alert_id,
                "reason": d.reason,
                "reason_code": d.code,
                "reason_params": d.params,
            }
        for mission_id, (aid, drone_id) in self.scheduler.active.items():
            if aid == alert_id:
                return {
                    "action": "abort",
                    "alert_id": alert_id,
                    "mission_id": mission_id,
                    "drone_id": drone_id,
                    "reason": f"cancelled in flight{who}",
                    "reason_code": "cancelled_in_flight",
                    "reason_params": {"by": by},
                }
        raise FleetError(f"alert_id {alert_id!r} is neither queued nor flying")

    def reprioritise(self, alert_id: str, priority: int, now: Any, *, by: str = "") -> Decision:
        """Change a queued alert's priority (higher goes first)."""
        if alert_id in self._pending:
            alert, _old = self._pending[alert_id]
            self._pending[alert_id] = (alert, int(priority))
            t = _as_utc(now, self.scheduler.config.timezone)
            return Decision(
                "reprioritise",
                alert_id,
                "",
                "",
                f"timed task priority {priority}",
                t,
                code="timed_priority",
                params={"priority": int(priority)},
            )
        return self.scheduler.reprioritise(alert_id, priority, now, by=by)

    # ------------------------------------------------------------------ running
    def step(self, now: Any) -> list[Decision]:
        """Release timed tasks that are due, then the scheduler's decisions at ``now``."""
        t = _as_utc(now, self.scheduler.config.timezone)
        for alert_id in sorted(self._pending, key=lambda a: (self._not_before[a], a)):
            if self._not_before[alert_id] <= t:
                alert, priority = self._pending.pop(alert_id)
                del self._not_before[alert_id]
                self.scheduler.add_alert(alert, t, priority=priority)
        return self.scheduler.step(t)

    def finished(self, mission_id: str, outcome: str, now: Any, *, detail: str = "") -> Decision:
        """Report a flight's end (``completed``, ``failed``, ``aborted``); see the scheduler."""
        return self.scheduler.mission_finished(mission_id, outcome, now, detail=detail)

    # ------------------------------------------------------------------ views
    def queue_view(self, now: Any, *, log_tail: int = 20) -> dict[str, Any]:
        """The queue as the console shows it (JSON-ready).

        Returns
        -------
        dict
            ``waiting`` (position, alert id, severity, kind, priority, attempts,
            queued at, why it waits), ``timed`` (not before), ``flying``
            (mission, alert, drone), ``drones`` (state, until, battery,
            connection, hold reason), ``rule`` and the last decisions.
        """
        t = _as_utc(now, self.scheduler.config.timezone)
        s = self.scheduler
        last_wait = {d.alert_id: d for d in s.log if d.action == "wait"}
        waiting = [
            {
                "position": pos,
                **e,
                "queued_at": _iso(e["queued_at"]),
                **_wait_fields(last_wait.get(e["alert_id"])),
            }
            for pos, e in enumerate(s.entries(), start=1)
        ]
        timed = [
            {"alert_id": a, "not_before": _iso(self._not_before[a]), "priority": p}
            for a, (_alert, p) in sorted(
                self._pending.items(), key=lambda kv: self._not_before[kv[0]]
            )
        ]
        flying = [
            {"mission_id": m, "alert_id": a, "drone_id": d}
            for m, (a, d) in sorted(s.active.items())
        ]
        drones = []
        for drone_id, (state, until) in s.drone_states(t).items():
            holds = self._holds[drone_id]
            drones.append(
                {
                    "drone_id": drone_id,
                    "dock_site_id": drone_id.split("/")[0],
                    "state": state,
                    "until": None if until is None else _iso(until),
                    "battery_pct": self.battery_pct[drone_id],
                    "connection": self.connections.get(drone_id),
                    "unavailable_because": "; ".join(holds[k] for k in sorted(holds)),
                    "unavailable_reasons": [
                        self._hold_reasons[drone_id][k]
                        for k in sorted(self._hold_reasons[drone_id])
                    ],
                }
            )
        rule = self.rule
        return {
            "time": _iso(t),
            "waiting": waiting,
            "timed": timed,
            "flying": flying,
            "drones": drones,
            "rule": {
                "enabled": rule.enabled,
                "kinds": list(rule.kinds),
                "severities": list(rule.severities),
                "max_distance_m": rule.max_distance_m,
                "flight_hours": None
                if rule.flight_hours is None
                else [h.strftime("%H:%M") for h in rule.flight_hours],
            },
            "log": [
                {
                    "time": None if d.time is None else _iso(d.time),
                    "action": d.action,
                    "alert_id": d.alert_id,
                    "dock_site_id": d.dock_site_id,
                    "drone_id": d.drone_id,
                    "mission_id": d.mission_id,
                    "reason": d.reason,
                    "code": d.code,
                    "params": d.params,
                }
                for d in s.log[-log_tail:]
            ],
        }

    # ------------------------------------------------------------------ persistence
    def snapshot(self) -> dict[str, Any]:
        """The scheduler's state plus timed tasks, charge and holds (JSON-ready)."""
        return {
            "version": 1,
            "scheduler": self.scheduler.snapshot(),
            "timed": [
                {"alert": alert, "priority": p, "not_before": _iso(self._not_before[a])}
                for a, (alert, p) in sorted(self._pending.items())
            ],
            "battery_pct": dict(self.battery_pct),
            "holds": {k: dict(v) for k, v in self._holds.items()},
            "hold_reasons": {k: dict(v) for k, v in self._hold_reasons.items()},
        }

    def restore(self, data: Mapping[str, Any], now: Any) -> list[Decision]:
        """Load a :meth:`snapshot` (missions that were flying come back failed, re-queued)."""
        if not isinstance(data, Mapping) or data.get("version") != 1:
            raise FleetError("fleet snapshot must be a mapping with version 1")
        out = self.scheduler.restore(data["scheduler"], now)
        tz = self.scheduler.config.timezone
        for task in data.get("timed", []):
            alert = dict(task["alert"])
            alert_id = str(alert["alert_id"])
            self._pending[alert_id] = (alert, int(task.get("priority", 0)))
            self._not_before[alert_id] = _as_utc(task["not_before"], tz, "not_before")
        for drone_id, pct in dict(data.get("battery_pct", {})).items():
            if drone_id in self.battery_pct:
                self.battery_pct[drone_id] = pct
        coded = dict(data.get("hold_reasons", {}))
        for drone_id, holds in dict(data.get("holds", {})).items():
            if drone_id not in self._holds:
                continue
            for key, reason in dict(holds).items():
                if key == "link" and drone_id in self.connections:
                    continue  # connected in this configuration
                why = dict(coded.get(drone_id, {})).get(key)
                self._set_hold(drone_id, str(key), str(reason), now, why)
        return out


def _hold_reason(key: str, text: str) -> dict[str, Any]:
    """The structured reason of a hold given as text (``set_available``, an old snapshot)."""
    if key == "link":
        return _reason("no_connection")
    notes = [] if text == "out of service" else [_reason("failure_detail", detail=text)]
    return _reason("out_of_service", notes=notes)


def _tidy(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x


def _wait_fields(d: Decision | None) -> dict[str, Any]:
    if d is None:
        return {"waiting_because": "", "waiting_code": "", "waiting_params": {}}
    return {"waiting_because": d.reason, "waiting_code": d.code, "waiting_params": d.params}


def _as_utc(when: Any, timezone: str, what: str = "now") -> dt.datetime:
    return as_utc(when, timezone, what, error=FleetError)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
