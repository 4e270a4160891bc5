"""A mission flight: the procedure that flies it and the record of what it did.

:func:`fly_mission` drives a :class:`~haulwatch.drone.link.VehicleLink` (the
MAVLink client) through one mission — wait until the vehicle can arm, upload
and verify, GUIDED → arm → AUTO → ``MAV_CMD_MISSION_START``, follow it to the
landing — and fills a :class:`FlightRecord` (JSON-serialisable) as the vehicle
flies; ``VehicleLink.fly_mission`` is a shortcut for it. The API stores the
record with the mission and ``haulwatch fly --record`` writes it as JSON.

The flight is *completed* only when the vehicle has flown every navigation
item and landed and disarmed at the dock. Link loss, a mode the vehicle chose
itself (RTL/LAND after a failsafe) or disarming early make it *failed* with the
reason; :meth:`VehicleLink.abort` makes it *aborted*.

Times: ``t_s`` fields are vehicle seconds since boot (``time_boot_ms`` / 1000,
or the link's vehicle clock when a message carries no timestamp); wall-clock
instants (``started_at``, ``ended_at``) are ISO 8601 UTC with ``Z``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from haulwatch.drone.link import (
    AbortRequested,
    CommandRefused,
    LinkLost,
    VehicleLink,
    VehicleLinkError,
    VehicleNotReady,
)
from haulwatch.drone.mission import NAV_COMMANDS, Mission
from haulwatch.drone.protocol import MissionProtocolError, MissionTimeout
from haulwatch.errors import HaulwatchError

__all__ = ["OUTCOMES", "FlightRecord", "Progress", "fly_mission", "utc_now_iso"]

_log = logging.getLogger(__name__)
Progress = Callable[[dict[str, Any]], None]
_ON_GROUND = 1  # MAV_LANDED_STATE_ON_GROUND
_CLEARED_RE = re.compile(r"clear|resolved|disabled|\boff\b", re.IGNORECASE)
_MISSION_TEXT_RE = re.compile(r"^Mission: (\d+) ")  # AP_Mission::start_command
_REACHED_TEXT_RE = re.compile(r"Reached command #(\d+)")  # ArduCopter verify_nav_wp
_FAILSAFE_RE = re.compile(r"failsafe|fence breach|battery \d+ is (?:low|critical)", re.IGNORECASE)


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(min(1.0, math.sqrt(a)))


#: Allowed final outcomes (``pending`` while flying).
OUTCOMES: tuple[str, ...] = ("pending", "completed", "failed", "aborted")


def utc_now_iso() -> str:
    """The current UTC time as ISO 8601 with ``Z`` (millisecond precision)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FlightRecord:
    """Everything observed during one mission flight.

    Attributes
    ----------
    mission_id, alert_id, dock_site_id : str
        What was flown and why ("" when not applicable).
    connect : str
        The MAVLink connection string used.
    outcome : str
        ``pending``, ``completed``, ``failed`` or ``aborted``.
    reason : str
        Why the flight failed or was aborted ("" when completed).
    started_at, ended_at : str
        Wall-clock UTC instants, ISO 8601 with ``Z``.
    timings_s : dict
        Vehicle-clock durations per phase: ``connect``, ``ready``, ``upload``,
        ``verify``, ``flight``, ``total``.
    track : list of [t_s, lat_deg, lon_deg, alt_rel_m]
        Positions flown (``GLOBAL_POSITION_INT``), altitude above home; the fixes
        at lat = lon = 0 ArduPilot sends before its GPS lock are left out.
    items_reached : list of int
        Mission sequence numbers known done, ascending. ``MISSION_ITEM_REACHED``
        alone is not enough (ArduPilot keeps one slot per link: a do command
        verified in the same update overwrites a nav item), so also: the
        "Reached command #N" text, and every nav item before the one that
        "Mission: N <type>" or ``MISSION_CURRENT`` shows started; a do item counts
        once started.
    photos : list of dict
        Per ``CAMERA_FEEDBACK``: ``index``, ``lat_deg``, ``lon_deg``, ``alt_rel_m``,
        ``alt_msl_m``, ``yaw_deg`` (heading), ``time_utc`` (ISO 8601 ``Z`` from
        ``time_usec``, which ArduPilot's AP_Camera fills with GPS Unix time; None when
        the vehicle had no time yet) and ``t_s`` (vehicle seconds since boot of the
        last position before the photo).
    messages : list of [t_s, severity, text]
        The vehicle's ``STATUSTEXT`` messages.
    battery_start_pct, battery_end_pct : float or None
        Battery remaining at take-off and at the end, percent.
    home : list [lat_deg, lon_deg, alt_amsl_m] or None
        The vehicle's home position.
    upload_retries : int
        Re-sends needed during the mission upload.
    notes : list of str
        What the operator should know without it changing the outcome
        (e.g. no ``CAMERA_FEEDBACK`` because the vehicle has no camera
        configured, the link disarmed a landed vehicle itself, or a failsafe
        parameter is off).
    final_status : dict
        The last progress status (``phase`` = the outcome), as sent to the
        ``progress`` callback at the end.
    vehicle : dict
        What the vehicle said about its limits before arming: ``params``
        (``WPNAV_SPEED`` cm/s, ``BATT_CAPACITY`` mAh...) and ``battery_pct``.
    """

    mission_id: str = ""
    alert_id: str = ""
    dock_site_id: str = ""
    connect: str = ""
    outcome: str = "pending"
    reason: str = ""
    started_at: str = ""
    ended_at: str = ""
    timings_s: dict[str, float] = field(default_factory=dict)
    track: list[list[float]] = field(default_factory=list)
    items_reached: list[int] = field(default_factory=list)
    photos: list[dict[str, float]] = field(default_factory=list)
    messages: list[list[Any]] = field(default_factory=list)
    battery_start_pct: float | None = None
    battery_end_pct: float | None = None
    home: list[float] | None = None
    upload_retries: int = 0
    notes: list[str] = field(default_factory=list)
    final_status: dict[str, Any] = field(default_factory=dict)
    vehicle: dict[str, Any] = field(default_factory=dict)

    def finish(self, outcome: str, reason: str = "") -> None:
        """Set the final outcome (first call wins) and the end time.

        Parameters
        ----------
        outcome : str
            ``completed``, ``failed`` or ``aborted``.
        reason : str, default ""
            Why (required for ``failed`` and ``aborted``).

        Raises
        ------
        ValueError
            If ``outcome`` is not a final outcome.
        """
        if outcome not in OUTCOMES[1:]:
            raise ValueError(f"outcome must be one of {OUTCOMES[1:]}, got {outcome!r}")
        if self.outcome != "pending":
            return
        self.outcome = outcome
        self.reason = reason
        self.ended_at = utc_now_iso()

    @property
    def done(self) -> bool:
        """True once an outcome is set."""
        return self.outcome != "pending"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (plain lists, numbers and strings)."""
        return asdict(self)

    def to_json(self, *, indent: int | None = None) -> str:
        """The record as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FlightRecord:
        """Rebuild a record from :meth:`to_dict` output (unknown keys are ignored)."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        record = cls(**known)
        if record.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {record.outcome!r}")
        return record

    def write(self, path: str | Path) -> Path:
        """Write the record as indented JSON; return the path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(self.to_json(indent=2) + "\n", encoding="utf-8")
        return out


# --------------------------------------------------------------------------- the procedure


def fly_mission(
    link: VehicleLink,
    mission: Mission,
    *,
    progress: Progress | None = None,
    mission_id: str = "",
    min_battery_pct: float | None = 40.0,
    check_failsafes: bool = True,
) -> FlightRecord:
    """Upload, verify, take off and follow ``mission`` to the end.

    Parameters
    ----------
    link : VehicleLink
        The link to the vehicle (connected here when it is not yet).
    mission : Mission
        What to fly (home = the dock, first item ``NAV_TAKEOFF``).
    progress : callable, optional
        Called with a status dict (``phase``, ``mode``, ``armed``, ``seq``,
        ``lat_deg``, ``lon_deg``, ``alt_rel_m``, ``battery_pct``,
        ``items_reached``, ``photos``, ``t_s``) on every change of phase,
        item or photo and at least once per vehicle second.
    mission_id : str, default ""
        Recorded in the flight record.
    min_battery_pct : float or None, default 40.0
        Refuse to arm (outcome ``failed``, reason ``battery ...``) when the
        vehicle reports less charge than this; None = no check. ArduPilot's own
        gate (``BATT_ARM_MAH`` / ``BATT_ARM_VOLT``) is off by default, and a
        real SITL armed and flew from 0 %.
    check_failsafes : bool, default True
        Read the failsafe parameters after connecting and note each one that
        is off (:func:`~haulwatch.drone.link.failsafe_warnings`).

    Returns
    -------
    FlightRecord
        ``completed``, ``failed`` (reason: link loss, failsafe, refusal...)
        or ``aborted``. Vehicle-side failures are reported here, not raised.
    """
    if min_battery_pct is not None and not (
        isinstance(min_battery_pct, (int, float)) and 0 <= min_battery_pct <= 100
    ):
        raise ValueError(f"min_battery_pct must be None or in [0, 100], got {min_battery_pct!r}")
    if link.conn is None:
        link.connect()
    record = FlightRecord(
        mission_id=mission_id,
        alert_id=mission.alert_id,
        dock_site_id=mission.dock_site_id,
        connect=link.url,
        started_at=utc_now_iso(),
    )
    t0 = link.now()
    phase_start = t0
    state: dict[str, Any] = {"phase": "ready", "last_report": -math.inf}

    nav_seqs = [k for k, item in enumerate(mission.items, start=1) if item.command in NAV_COMMANDS]
    n_items = len(mission.items)

    def mark(seqs: Any) -> None:
        new = {int(q) for q in seqs if 1 <= int(q) <= n_items} - set(record.items_reached)
        if new:
            record.items_reached = sorted({*record.items_reached, *new})
            report(force=True)

    def started(seq: int) -> None:
        """Item ``seq`` started: every nav item before it is done (no DO_JUMP in our plans)."""
        mark([q for q in nav_seqs if q < seq])

    def status_now() -> dict[str, Any]:
        pos = link.position
        return {
            "phase": state["phase"],
            "mode": link.mode,
            "armed": link.armed,
            "seq": link.mission_current,
            "lat_deg": pos[1] if pos else None,
            "lon_deg": pos[2] if pos else None,
            "alt_rel_m": pos[3] if pos else None,
            "battery_pct": link.battery_pct,
            "items_reached": list(record.items_reached),
            "photos": len(record.photos),
            "t_s": round(link.now() - t0, 3),
        }

    def report(force: bool = False) -> None:
        if progress is None:
            return
        now = link.now()
        if not force and now - state["last_report"] < 1.0:
            return
        state["last_report"] = now
        status = status_now()
        try:
            progress(status)
        except Exception:  # a broken listener must not crash the flight
            _log.exception("progress callback failed")

    def enter(phase: str) -> None:
        nonlocal phase_start
        now = link.now()
        record.timings_s[state["phase"]] = round(now - phase_start, 3)
        phase_start = now
        state["phase"] = phase
        report(force=True)

    def on_message(msg: Any) -> None:
        kind = msg.get_type()
        if kind == "GLOBAL_POSITION_INT":
            if msg.lat == 0 and msg.lon == 0:
                return  # ArduPilot's fix before the GPS lock
            record.track.append(
                [
                    msg.time_boot_ms / 1000.0,
                    msg.lat / 1e7,
                    msg.lon / 1e7,
                    round(msg.relative_alt / 1000.0, 3),
                ]
            )
        elif kind == "MISSION_ITEM_REACHED":
            if watch["max_current"] >= 0:
                mark([msg.seq])
        elif kind == "CAMERA_FEEDBACK":
            record.photos.append(_photo(msg, link.position))
            report(force=True)
        elif kind == "MISSION_CURRENT" and watch["max_current"] >= 0:
            watch["max_current"] = max(watch["max_current"], int(msg.seq))
            if msg.seq > 0:
                started(int(msg.seq))
        elif kind == "STATUSTEXT":
            text = link.texts[-1][2]
            if _FAILSAFE_RE.search(text) and not _CLEARED_RE.search(text):
                watch["failsafe"] = watch["failsafe"] or text
            if watch["max_current"] < 0:
                return
            hit = _MISSION_TEXT_RE.match(text)
            if hit:  # AP_Mission::start_command
                seq = int(hit.group(1))
                started(seq)
                if seq not in nav_seqs:
                    mark([seq])  # a do command started has run
            hit = _REACHED_TEXT_RE.search(text)
            if hit:  # ArduCopter's verify of a waypoint
                mark([int(hit.group(1))])

    watch: dict[str, Any] = {"failsafe": "", "max_current": -1}
    link.add_listener(on_message)
    try:
        report(force=True)
        link.wait_ready()
        record.home = list(link.home) if link.home else None
        if check_failsafes:
            for warning in link.failsafe_warnings():
                _log.warning("vehicle %s: %s", link.url, warning)
                record.notes.append(f"failsafe: {warning}")
        params, battery = link.vehicle_limits(timeout_s=5.0)
        record.vehicle = {"params": params, "battery_pct": battery}
        if min_battery_pct is not None and battery is not None and battery < min_battery_pct:
            record.battery_start_pct = battery
            raise _BatteryTooLow(
                f"battery {battery:.0f}% is below the {min_battery_pct:g}% needed to arm "
                "(min_battery_pct): charge or swap the battery"
            )
        _check_plan_against_vehicle(mission, params, battery, record)
        link.check_abort()
        enter("upload")
        record.upload_retries = link.upload_mission(mission)
        enter("verify")
        link.verify_mission(mission)
        link.check_abort()
        enter("arming")
        if not link.set_current(1):
            record.notes.append("vehicle did not confirm MISSION_SET_CURRENT 1")
        link.retry_while_settling(lambda: link.set_mode("GUIDED"))
        link.retry_while_settling(link.arm)
        record.battery_start_pct = link.battery_pct
        # ArduCopter refuses to arm in AUTO, and AUTO on the ground needs a
        # first NAV_TAKEOFF; MISSION_START (params 0, 0: anything else is
        # DENIED) sets auto_armed so it climbs with the throttle stick low.
        link.set_mode("AUTO")
        watch["max_current"] = 0
        link.command(300, (0, 0))  # MAV_CMD_MISSION_START
        enter("flying")
        _follow(link, mission, record, watch, report)
    except AbortRequested:
        record.finish("aborted", link.abort_reason + " (before take-off)")
    except _BatteryTooLow as exc:
        record.finish("failed", str(exc))
    except LinkLost as exc:
        record.finish("failed", str(exc))
    except (
        VehicleNotReady,
        MissionTimeout,
        MissionProtocolError,
        CommandRefused,
        VehicleLinkError,
    ) as exc:
        record.finish("failed", f"{type(exc).__name__}: {exc}")
    finally:
        link.remove_listener(on_message)
    if record.outcome != "failed" and not record.photos and _wants_photos(mission):
        record.notes.append(
            "no CAMERA_FEEDBACK received: the vehicle has no camera configured "
            "(ArduPilot CAM1_TYPE) or it took no photo"
        )
    record.timings_s[state["phase"]] = round(link.now() - phase_start, 3)
    record.timings_s["total"] = round(link.now() - t0, 3)
    record.battery_end_pct = link.battery_pct
    record.messages = [[round(t - t0, 3), sev, text] for t, sev, text in link.texts if t >= t0]
    state["phase"] = record.outcome
    link.clear_abort()  # a request consumed by this flight must not stop the next
    record.final_status = status_now()
    report(force=True)
    return record


def _check_plan_against_vehicle(
    mission: Mission, params: dict[str, float], battery: float | None, record: FlightRecord
) -> None:
    """Refuse a mission the charge left cannot cover; note a speed the vehicle will not fly.

    The plan's estimate (``meta``: ``battery_used_pct``, ``reserve_pct``,
    ``cruise_speed_m_s``) against what the vehicle reports: its state of charge
    and ``WPNAV_SPEED`` (ArduCopter flies a faster ``DO_CHANGE_SPEED`` at it).
    """
    meta = mission.meta or {}
    used, reserve = meta.get("battery_used_pct"), meta.get("reserve_pct")
    known = battery is not None and used is not None and reserve is not None
    if known and battery - float(used) < float(reserve):
        record.battery_start_pct = battery
        raise _BatteryTooLow(
            f"battery {battery:.0f}% cannot cover the estimated {float(used):.0f}% of this "
            f"mission plus the {float(reserve):g}% reserve: charge the battery or re-plan"
        )
    cruise, limit = meta.get("cruise_speed_m_s"), params.get("WPNAV_SPEED")
    if cruise is not None and limit and float(cruise) > limit / 100.0:
        record.notes.append(
            f"planned {float(cruise):g} m/s but the vehicle's WPNAV_SPEED is {limit / 100.0:g} m/s: "
            "it flies slower and longer than estimated (plan with PlanConfig.for_vehicle)"
        )


class _BatteryTooLow(HaulwatchError):  # noqa: N818 (internal control flow: refused before arming)
    """The vehicle's charge is below ``min_battery_pct``."""


_UNIX_2000_S = 946_684_800.0


def _photo(msg: Any, position: tuple[float, float, float, float] | None) -> dict[str, Any]:
    """One photo of the record from a ``CAMERA_FEEDBACK``.

    ArduPilot's AP_Camera stamps ``time_usec`` with the GPS clock as Unix
    microseconds (``AP::rtc()``), not time since boot; a value before 2000
    means the vehicle had no time yet and is left out.
    """
    unix_s = msg.time_usec / 1e6
    time_utc = None
    if unix_s >= _UNIX_2000_S:
        when = datetime.fromtimestamp(unix_s, tz=timezone.utc)
        time_utc = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "t_s": position[0] if position is not None else None,
        "time_utc": time_utc,
        "index": int(msg.img_idx),
        "lat_deg": msg.lat / 1e7,
        "lon_deg": msg.lng / 1e7,
        "alt_rel_m": round(float(msg.alt_rel), 3),
        "alt_msl_m": round(float(msg.alt_msl), 3),
        "yaw_deg": round(float(msg.yaw) % 360.0, 1),
    }


def _follow(
    link: VehicleLink,
    mission: Mission,
    record: FlightRecord,
    watch: dict[str, Any],
    report: Callable[[], None],
) -> None:
    """Follow the flight until landed and disarmed (or link loss / timeout)."""
    nav_seqs = [k for k, item in enumerate(mission.items, start=1) if item.command in NAV_COMMANDS]
    final_nav = nav_seqs[-1] if nav_seqs else 0
    landing_cmds = {20, 21}  # NAV_RETURN_TO_LAUNCH, NAV_LAND
    needed = [
        s for s in nav_seqs if not (s == final_nav and mission.items[s - 1].command in landing_cmds)
    ]
    started = link.now()
    was_airborne = False
    requested_mode = "AUTO"
    landed_since: float | None = None
    disarm_sent = False

    while True:
        link.recv(0.2)
        report()
        pos = link.position
        if (pos is not None and pos[3] > 1.0) or link.landed_state in (2, 3, 4):
            was_airborne = True  # MAV_LANDED_STATE_IN_AIR / TAKEOFF / LANDING
        if link.abort_requested and record.outcome == "pending":
            record.finish("aborted", link.abort_reason)
            requested_mode = "RTL"
            with contextlib.suppress(CommandRefused, VehicleLinkError):
                link.set_mode("RTL")
        if record.outcome == "pending" and link.mode not in (requested_mode, "") and link.armed:
            why = f"vehicle switched to {link.mode} by itself"
            record.finish("failed", why + (f": {watch['failsafe']}" if watch["failsafe"] else ""))
        if record.outcome == "pending" and watch["failsafe"] and was_airborne:
            record.finish("failed", f"vehicle failsafe: {watch['failsafe']}")
        if not link.armed:
            if record.outcome == "pending":
                _judge_end(link, record, needed, was_airborne, watch["max_current"])
            return
        if was_airborne and link.landed_state == _ON_GROUND:
            landed_since = link.now() if landed_since is None else landed_since
            if not disarm_sent and link.now() - landed_since > link.config.landed_disarm_s:
                # ArduCopter with DISARM_DELAY 0 never disarms by itself
                disarm_sent = True
                record.notes.append(
                    f"landed but still armed after {link.config.landed_disarm_s:g} s: disarmed by the link"
                )
                with contextlib.suppress(CommandRefused, VehicleLinkError):
                    link.command(400, (0,), check=False)
        else:
            landed_since = None
        if link.now() - started > link.config.flight_timeout_s:
            record.finish("failed", f"flight not finished after {link.config.flight_timeout_s:g} s")
            return


def _judge_end(
    link: VehicleLink, record: FlightRecord, needed: list[int], was_airborne: bool, max_current: int
) -> None:
    # MISSION_ITEM_REACHED is one deferred message per link: a lost packet
    # or two items done in one loop leave a gap. The mission only moves
    # past a nav item once it is done, so MISSION_CURRENT beyond it counts.
    missing = [s for s in needed if s not in record.items_reached and s >= max_current]
    if not was_airborne:
        record.finish("failed", "vehicle disarmed before taking off")
        return
    if missing:
        record.finish("failed", f"vehicle disarmed before reaching items {missing}")
        return
    pos, home = link.position, link.home
    if pos is not None and home is not None:
        dist = _haversine_m(pos[1], pos[2], home[0], home[1])
        if pos[3] > 2.0:
            record.finish("failed", f"vehicle disarmed {pos[3]:.1f} m above ground")
            return
        if dist > link.config.dock_radius_m:
            record.finish("failed", f"vehicle landed {dist:.0f} m from the dock")
            return
    record.finish("completed")


def _wants_photos(mission: Mission) -> bool:
    """True when the mission asks the vehicle's camera for photos.

    ``DO_DIGICAM_CONTROL`` (203), ``IMAGE_START_CAPTURE`` (2000) or
    ``DO_SET_CAM_TRIGG_DIST`` (206) with a distance or "trigger now".
    """
    return any(
        item.command in (203, 2000)
        or (item.command == 206 and (item.param1 > 0 or item.param3 == 1))
        for item in mission.items
    )
