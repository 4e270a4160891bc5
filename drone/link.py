"""The MAVLink client: ``VehicleLink``, a ground-station link built on pymavlink.

Works against ArduPilot Copter (real SITL or a vehicle) and the built-in
simulator (``drone.sitl``). What it does, in ArduPilot's terms:

* connect by URL (``tcp:127.0.0.1:5760``, ``udp:...``, ``udpin:0.0.0.0:14550``,
  serial ``/dev/ttyUSB0,57600``) with MAVLink 2; wait for the *vehicle's*
  heartbeat (GCS heartbeats are ignored) and remember its system/component;
* send our own GCS heartbeat at 1 Hz (vehicle time) from a thread;
* ask for streams (ArduPilot sends almost nothing until asked):
  ``REQUEST_DATA_STREAM`` plus ``MAV_CMD_SET_MESSAGE_INTERVAL`` for
  GLOBAL_POSITION_INT, SYS_STATUS, MISSION_CURRENT, HOME_POSITION,
  EXTENDED_SYS_STATE;
* wait until the vehicle can arm (SYS_STATUS prearm-check health bit and a
  home position), surfacing ``PreArm:`` STATUSTEXT reasons when it cannot;
* upload with ``drone.protocol.MissionUpload``, read back and compare;
* arm, switch modes, run commands (``COMMAND_LONG`` with re-sends and the
  vehicle's STATUSTEXT reasons on refusal), retry while the vehicle settles.

The flight procedure itself (GUIDED → arm → AUTO → ``MAV_CMD_MISSION_START``,
following the flight to the landing, the flight record) lives in
:mod:`haulwatch.drone.flight`; :meth:`VehicleLink.fly_mission` calls it.

Every timeout is in vehicle seconds: ``time_scale`` (simulated seconds per
wall second, e.g. the simulator's ``--speedup``) converts them, or a ``clock``
given by the caller measures them.

Size: one class, the whole client side of the MAVLink conversation (connect,
streams, receive and state, commands, transfers, readiness); its parts share
the connection state, so it stays one module.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from haulwatch import waiting
from haulwatch.drone.mission import Mission, MissionItem
from haulwatch.drone.protocol import (
    MissionDownload,
    MissionUpload,
    MissionVerifyError,
    compare_items,
)
from haulwatch.drone.wire import enum_name
from haulwatch.errors import HaulwatchError

if TYPE_CHECKING:  # drone.flight imports this module; the record is only a return type here
    from haulwatch.drone.flight import FlightRecord

__all__ = [
    "FAILSAFE_PARAMS",
    "PLANNING_PARAMS",
    "AbortRequested",
    "CommandRefused",
    "LinkConfig",
    "LinkLost",
    "VehicleLink",
    "VehicleLinkError",
    "VehicleNotReady",
    "command_result_name",
    "failsafe_warnings",
]

_log = logging.getLogger(__name__)
_GCS_TYPE = 6  # MAV_TYPE_GCS
_INVALID_AUTOPILOT = 8  # MAV_AUTOPILOT_INVALID
_AUTOPILOT_COMPONENT = 1  # MAV_COMP_ID_AUTOPILOT1
# MAV_TYPEs that are never the vehicle, even with an autopilot field set (a
# gimbal or companion computer may report MAV_AUTOPILOT_ARDUPILOTMEGA): GCS,
# antenna tracker, onboard controller, gimbal, ADSB, camera, charging station,
# FLARM, servo, ODID, battery, parachute, log, OSD, IMU, GPS, winch, illuminator.
_NOT_A_VEHICLE = frozenset({6, 5, 18, 26, 27, 30, 31, 32, 33, 34, 36, 37, 38, 39, 40, 41, 42, 44})
# Arming refusals that go away by themselves (EKF/GPS still converging, home not
# yet set): ArduPilot's "PreArm: Need Position Estimate", "waiting for home",
# "EKF ... not started/bad", "GPS ...", "AHRS: waiting", "Gyros inconsistent"...
_TRANSIENT_PREARM_RE = re.compile(
    r"position estimate|requires position|waiting for|home|ekf|ahrs|gps|settling|initiali[sz]|"
    r"gyros inconsistent",
    re.IGNORECASE,
)
_ARMED_FLAG = 128  # MAV_MODE_FLAG_SAFETY_ARMED
_PREARM_BIT = 0x10000000  # MAV_SYS_STATUS_PREARM_CHECK
_COPTER_MODES = {
    "STABILIZE": 0,
    "ACRO": 1,
    "ALT_HOLD": 2,
    "AUTO": 3,
    "GUIDED": 4,
    "LOITER": 5,
    "RTL": 6,
    "CIRCLE": 7,
    "LAND": 9,
    "POSHOLD": 16,
    "BRAKE": 17,
    "SMART_RTL": 21,
}
_MODE_NAMES = {v: k for k, v in _COPTER_MODES.items()}
Progress = Callable[[dict[str, Any]], None]  # drone.flight.Progress


class VehicleLinkError(HaulwatchError, RuntimeError):
    """A MAVLink conversation with the vehicle failed."""


class LinkLost(VehicleLinkError, ConnectionError):  # noqa: N818 (reads as an event)
    """No heartbeat from the vehicle for longer than the configured timeout."""


class CommandRefused(VehicleLinkError):  # noqa: N818 (reads as an event)
    """The vehicle answered a command with an error result.

    Attributes
    ----------
    result_name : str
        ``MAV_RESULT`` name, e.g. ``MAV_RESULT_FAILED``.
    """

    def __init__(
        self, message: str, *, result_name: str = "", vehicle_texts: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.result_name = result_name
        self.vehicle_texts = list(vehicle_texts)

    @property
    def transient(self) -> bool:
        """True when the vehicle is only not ready *yet* (EKF, GPS, home...).

        ``MAV_RESULT_TEMPORARILY_REJECTED``, or a ``PreArm:``/``Arm:``/mode
        change reason such as ArduPilot's "PreArm: Need Position Estimate".
        """
        if self.result_name == "MAV_RESULT_TEMPORARILY_REJECTED":
            return True
        return any(
            text.startswith(("PreArm", "Arm", "Mode change", "Flight mode change"))
            and _TRANSIENT_PREARM_RE.search(text) is not None
            for text in self.vehicle_texts
        )


class VehicleNotReady(HaulwatchError, TimeoutError):  # noqa: N818 (reads as a state)
    """The vehicle did not become ready to arm in time (reasons in the message)."""


def command_result_name(result: int) -> str:
    """Name of a ``MAV_RESULT`` code, e.g. ``MAV_RESULT_TEMPORARILY_REJECTED``."""
    return enum_name("MAV_RESULT", result)


@dataclass(frozen=True)
class LinkConfig:
    """Timeouts and rates of :class:`VehicleLink` (vehicle seconds, Hz, metres).

    Parameters
    ----------
    heartbeat_timeout_s : float, default 5.0
        Silence (no vehicle heartbeat) that counts as link loss.
    connect_timeout_s : float, default 30.0
        Wait for the first vehicle heartbeat; never less than
        min(connect_timeout_s, 10) wall seconds (a SITL boots in wall time).
    ready_timeout_s : float, default 180.0
        Wait for the vehicle to be armable (ArduPilot SITL needs ~42 s).
    command_timeout_s : float, default 2.0
        Wait for one ``COMMAND_ACK`` before re-sending.
    command_retries : int, default 3
        Re-sends of an unanswered command.
    item_timeout_s : float, default 2.0
        Mission transfer silence before a re-send.
    transfer_retries : int, default 5
        Mission transfer re-sends without progress.
    stream_rate_hz : float, default 4.0
        Requested telemetry rate.
    flight_timeout_s : float, default 3600.0
        Longest flight followed before giving up (failed).
    dock_radius_m : float, default 15.0
        Landing within this distance of home counts as "at the dock".
    min_wall_timeout_s : float, default 0.25
        Floor of every timeout in wall seconds (protects fast simulations
        from host scheduling jitter; no effect at real time).
    landed_disarm_s : float, default 20.0
        A vehicle that has landed (``EXTENDED_SYS_STATE`` on ground) but is
        still armed after this long is disarmed by us. ArduCopter disarms
        itself after ``DISARM_DELAY`` (10 s by default) but never when that
        parameter is 0.
    autopilot_wait_s : float, default 3.0
        On connect, how long a vehicle heartbeat from a component other than
        the autopilot (component 1) waits for the autopilot's own before
        the link settles for it.
    """

    heartbeat_timeout_s: float = 5.0
    connect_timeout_s: float = 30.0
    ready_timeout_s: float = 180.0
    command_timeout_s: float = 2.0
    command_retries: int = 3
    item_timeout_s: float = 2.0
    transfer_retries: int = 5
    stream_rate_hz: float = 4.0
    flight_timeout_s: float = 3600.0
    dock_radius_m: float = 15.0
    min_wall_timeout_s: float = 0.25
    landed_disarm_s: float = 20.0
    autopilot_wait_s: float = 3.0

    def __post_init__(self) -> None:
        for name in (
            "heartbeat_timeout_s",
            "connect_timeout_s",
            "ready_timeout_s",
            "command_timeout_s",
            "item_timeout_s",
            "stream_rate_hz",
            "flight_timeout_s",
            "dock_radius_m",
            "min_wall_timeout_s",
            "landed_disarm_s",
            "autopilot_wait_s",
        ):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"LinkConfig.{name} must be a positive number, got {value!r}")
        for name in ("command_retries", "transfer_retries"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"LinkConfig.{name} must be an int >= 0, got {value!r}")


def _open(url: str, *, source_system: int, source_component: int) -> Any:
    """Open a pymavlink connection with MAVLink 2 framing."""
    os.environ["MAVLINK20"] = "1"  # pymavlink picks the v2.0 dialect from this
    from pymavlink import mavutil

    device, baud = url, 57600
    if "," in url and not url.startswith(("tcp", "udp")):
        device, _, rate = url.partition(",")
        try:
            baud = int(rate)
        except ValueError as exc:
            raise ValueError(
                f"serial URL must be DEVICE,BAUD (e.g. /dev/ttyUSB0,57600), got {url!r}"
            ) from exc
    conn = mavutil.mavlink_connection(
        device,
        baud=baud,
        source_system=source_system,
        source_component=source_component,
        dialect="ardupilotmega",
        autoreconnect=False,
    )
    with contextlib.suppress(AttributeError):
        conn.mav.WIRE_PROTOCOL_VERSION = "2.0"
    if isinstance(conn, mavutil.mavtcp):
        # Without autoreconnect pymavlink prints "EOF on TCP socket" and returns no
        # data on every read of a closed connection (~1.5 million prints in 11 s when
        # ArduPilot died). A closed connection is link loss at once, and quiet.
        def closed(what: str) -> Callable[[], None]:
            def handler() -> None:
                raise ConnectionAbortedError(f"{what} ({url})")

            return handler

        conn.handle_eof = closed("connection closed by the vehicle")
        conn.handle_disconnect = closed("connection reset by the vehicle")
    return conn


#: Parameters :meth:`VehicleLink.vehicle_limits` reads for planning.
PLANNING_PARAMS: tuple[str, ...] = (
    "WPNAV_SPEED",
    "WPNAV_SPEED_UP",
    "WPNAV_SPEED_DN",
    "WPNAV_ACCEL",
    "BATT_CAPACITY",
    "BATT_ARM_MAH",
)

#: Parameters :meth:`VehicleLink.failsafe_warnings` reads.
FAILSAFE_PARAMS: tuple[str, ...] = (
    "FS_GCS_ENABLE",
    "BATT_FS_LOW_ACT",
    "BATT_FS_CRT_ACT",
    "BATT_LOW_MAH",
    "BATT_LOW_VOLT",
    "FENCE_ENABLE",
)


def failsafe_warnings(params: dict[str, float]) -> list[str]:
    """Warnings for failsafe parameters (ArduCopter names) that are off or unknown.

    Parameters
    ----------
    params : dict
        Parameter values read from the vehicle (missing names = not answered).

    Returns
    -------
    list of str
        One sentence per problem, naming the parameter and what to set.
    """
    out = []
    missing = [n for n in FAILSAFE_PARAMS if n not in params]
    if missing:
        out.append(f"could not read {', '.join(missing)}: failsafe settings unknown")
    if params.get("FS_GCS_ENABLE", 1) == 0:
        out.append(
            "FS_GCS_ENABLE is 0: if the ground link dies the vehicle carries on with the "
            "mission alone (set 1 = RTL)"
        )
    if params.get("BATT_FS_LOW_ACT", 1) == 0:
        out.append("BATT_FS_LOW_ACT is 0: no action on a low battery (set 2 = RTL)")
    if params.get("BATT_FS_CRT_ACT", 1) == 0:
        out.append("BATT_FS_CRT_ACT is 0: no action on a critical battery (set 1 = LAND)")
    if params.get("BATT_LOW_MAH", 1) == 0 and params.get("BATT_LOW_VOLT", 1) == 0:
        out.append("BATT_LOW_MAH and BATT_LOW_VOLT are 0: the low-battery failsafe never triggers")
    if params.get("FENCE_ENABLE", 1) == 0:
        out.append("FENCE_ENABLE is 0: no geofence keeps the vehicle near the dock")
    return out


class VehicleLink:
    """A ground-station link to one vehicle.

    Parameters
    ----------
    url : str
        Connection string: ``tcp:HOST:PORT``, ``udp:HOST:PORT``, ``udpin:HOST:PORT``,
        ``udpout:HOST:PORT`` or a serial ``DEVICE,BAUD``.
    time_scale : float or "auto", default 1.0
        Vehicle seconds per wall second (the simulator's speed-up). ``"auto"``
        reads the SITL parameter ``SIM_SPEEDUP`` on connect (1 when the
        vehicle has no such parameter, e.g. a real copter).
    config : LinkConfig, optional
        Timeouts and rates.
    source_system, source_component : int, default 255, 190
        Our MAVLink ids (a GCS, as Mission Planner / MAVProxy use).
    target_system : int or None, default None
        Talk to this vehicle; None = the first vehicle heard.
    tlog_path : str or Path, optional
        Keep the flight log: every MAVLink message received from the link is
        written there as a telemetry log (``.tlog``: 8-byte big-endian µs timestamp +
        the raw packet, the format of MAVProxy and Mission Planner, readable
        with ``mavutil.mavlink_connection(path)``).
    clock : callable or None, default None
        The vehicle clock in seconds (every timeout is measured on it). None =
        wall monotonic seconds × ``time_scale``. A simulator running in the same
        process can lend its own (``lambda: sim.sim_time_s``): timeouts then
        follow simulated time exactly, even when the host starves either side.
        ``time_scale`` still converts waits into wall-clock polling periods.

    Examples
    --------
    >>> with VehicleLink("tcp:127.0.0.1:5760", time_scale=10) as link:  # doctest: +SKIP
    ...     record = link.fly_mission(mission, progress=print)
    """

    def __init__(
        self,
        url: str,
        *,
        time_scale: float | str = 1.0,
        config: LinkConfig | None = None,
        source_system: int = 255,
        source_component: int = 190,
        target_system: int | None = None,
        clock: Callable[[], float] | None = None,
        tlog_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.strip():
            raise ValueError(
                f"url must be a MAVLink connection string such as tcp:127.0.0.1:5760, got {url!r}"
            )
        self._auto_scale = time_scale == "auto"
        if self._auto_scale:
            time_scale = 1.0
        if isinstance(time_scale, bool) or not (
            isinstance(time_scale, (int, float)) and math.isfinite(time_scale) and time_scale > 0
        ):
            raise ValueError(f"time_scale must be a positive number or 'auto', got {time_scale!r}")
        self.url = url.strip()
        self.time_scale = float(time_scale)
        self.config = config or LinkConfig()
        self.source_system = source_system
        self.source_component = source_component
        self.target_system: int | None = target_system
        self.target_component = 1
        self._clock = clock
        self.tlog_path = None if tlog_path is None else os.fspath(tlog_path)
        self.conn: Any = None
        self._send_lock = threading.Lock()
        self._closing = threading.Event()
        self._abort = threading.Event()
        self._abort_reason = ""
        self._hb_thread: threading.Thread | None = None
        # vehicle state
        self.mode = ""
        self.armed = False
        self.last_heartbeat = -math.inf
        self.position: tuple[float, float, float, float] | None = None  # t_s, lat, lon, alt_rel
        self.home: tuple[float, float, float] | None = None
        self.battery_pct: float | None = None
        self.sensors_health = 0
        self.sensors_present = 0
        self._sys_status_seen = False
        self.mission_current = 0
        self.landed_state = 0
        self.texts: list[tuple[float, int, str]] = []
        self._listeners: list[Callable[[Any], None]] = []

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        """The vehicle clock: the given ``clock``, else wall monotonic seconds × ``time_scale``."""
        if self._clock is not None:
            return float(self._clock())
        return time.monotonic() * self.time_scale

    def _wall(self, vehicle_s: float) -> float:
        return vehicle_s / self.time_scale

    def _vt(self, timeout_s: float) -> float:
        """A vehicle-time timeout, never shorter than ``min_wall_timeout_s`` of wall time.

        At large speed-ups a few vehicle seconds are a few wall milliseconds,
        less than this process may be descheduled for; the floor keeps host
        jitter from looking like a silent vehicle.
        """
        return max(timeout_s, self.config.min_wall_timeout_s * self.time_scale)

    # ------------------------------------------------------------------ connection
    def connect(self) -> VehicleLink:
        """Open the link, wait for the vehicle's heartbeat, start ours, request streams."""
        if self.conn is not None:
            return self
        try:
            self.conn = _open(
                self.url, source_system=self.source_system, source_component=self.source_component
            )
        except OSError as exc:
            raise LinkLost(f"cannot open MAVLink connection {self.url!r}: {exc}") from exc
        if self.tlog_path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(self.tlog_path)), exist_ok=True)
            self.conn.setup_logfile(self.tlog_path, mode="wb")
        # A SITL boots only when a client connects, in wall time: its clock
        # (and so the time scale) only runs once it is up. Wait at least
        # min(connect_timeout_s, 10) wall seconds whatever the speed-up.
        wait_s = self.config.connect_timeout_s
        wall_deadline = time.monotonic() + max(wait_s / self.time_scale, min(wait_s, 10.0))
        fallback: Any = None  # a vehicle heartbeat from a component other than 1
        fallback_until = math.inf
        chosen: Any = None
        while time.monotonic() < wall_deadline:
            try:
                msg = self.conn.recv_match(
                    type="HEARTBEAT", blocking=True, timeout=min(0.5, self._wall(1.0))
                )
            except OSError as exc:  # closed by the vehicle while we wait
                self.close()
                raise LinkLost(f"link lost while connecting to {self.url}: {exc}") from exc
            if msg is not None and self._is_vehicle_heartbeat(msg):
                if msg.get_srcComponent() == _AUTOPILOT_COMPONENT:
                    chosen = msg
                    break
                if fallback is None:
                    fallback = msg
                    fallback_until = self.now() + self._vt(self.config.autopilot_wait_s)
            if fallback is not None and self.now() >= fallback_until:
                chosen = fallback
                break
        if chosen is None and fallback is not None:
            chosen = fallback
        if chosen is None:
            self.close()
            raise LinkLost(
                f"no vehicle heartbeat on {self.url} within {self.config.connect_timeout_s:g} s (vehicle time)"
            )
        self.target_system = chosen.get_srcSystem()
        self.target_component = chosen.get_srcComponent()
        self._on_message(chosen)
        if self._auto_scale:
            self._detect_time_scale()
        self._hb_thread = threading.Thread(
            target=self._heartbeat_loop, name="gcs-heartbeat", daemon=True
        )
        self._hb_thread.start()
        self.request_streams()
        return self

    def _is_vehicle_heartbeat(self, msg: Any) -> bool:
        """A heartbeat of a vehicle's autopilot (not a GCS, gimbal, camera, ADSB...)."""
        if msg.type in _NOT_A_VEHICLE or msg.autopilot == _INVALID_AUTOPILOT:
            return False
        return self.target_system is None or msg.get_srcSystem() == self.target_system

    def _detect_time_scale(self, wait_s: float = 2.0) -> None:
        """Set ``time_scale`` from the SITL parameter ``SIM_SPEEDUP`` (wall-clock wait)."""
        self.send(
            self.conn.mav.param_request_read_encode(
                self.target_system, self.target_component, b"SIM_SPEEDUP", -1
            )
        )
        end = time.monotonic() + wait_s
        resend = time.monotonic() + wait_s / 2
        while time.monotonic() < end:
            if time.monotonic() >= resend:  # one re-ask: the request may be lost (UDP)
                resend = math.inf
                self.send(
                    self.conn.mav.param_request_read_encode(
                        self.target_system, self.target_component, b"SIM_SPEEDUP", -1
                    )
                )
            msg = self.conn.recv_match(type="PARAM_VALUE", blocking=True, timeout=0.2)
            if msg is None or not self._from_vehicle(msg):
                continue
            if str(msg.param_id).rstrip("\x00") == "SIM_SPEEDUP":
                if math.isfinite(msg.param_value) and msg.param_value > 0:
                    self.time_scale = float(msg.param_value)
                break
        self.last_heartbeat = self.now()  # the clock changed scale

    def close(self) -> None:
        """Stop the heartbeat thread and close the connection."""
        self._closing.set()
        if self._hb_thread is not None:
            waiting.join(self._hb_thread, 2.0)
            self._hb_thread = None
        if self.conn is not None:
            logfile = getattr(self.conn, "logfile", None)
            with contextlib.suppress(OSError):
                self.conn.close()
            if logfile is not None:
                with contextlib.suppress(OSError):
                    logfile.close()
            self.conn = None

    def __enter__(self) -> VehicleLink:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _heartbeat_loop(self) -> None:
        period = self._wall(1.0)
        while not waiting.wait(self._closing, period):
            with contextlib.suppress(OSError, AttributeError):
                self.send(self.conn.mav.heartbeat_encode(_GCS_TYPE, _INVALID_AUTOPILOT, 0, 0, 0))

    def send(self, msg: Any) -> None:
        """Send one pymavlink message (thread-safe)."""
        if self.conn is None:
            raise LinkLost("link is closed")
        with self._send_lock:
            self.conn.mav.send(msg)

    def request_streams(self) -> None:
        """Ask the vehicle for the telemetry we follow (both ArduPilot mechanisms)."""
        mav = self.conn.mav
        rate = max(1, round(self.config.stream_rate_hz))
        # only the groups we follow: EXTENDED_STATUS (SYS_STATUS, MISSION_CURRENT, GPS) and
        # POSITION (GLOBAL_POSITION_INT); everything else would just load the link
        for stream in (2, 6):
            self.send(
                mav.request_data_stream_encode(
                    self.target_system, self.target_component, stream, rate, 1
                )
            )
        interval_us = 1e6 / self.config.stream_rate_hz
        for msgid, interval in (
            (33, interval_us),  # GLOBAL_POSITION_INT
            (1, interval_us),  # SYS_STATUS
            (42, interval_us),  # MISSION_CURRENT
            (245, interval_us),  # EXTENDED_SYS_STATE
            (242, 1e6),  # HOME_POSITION
        ):
            self.send(
                mav.command_long_encode(
                    self.target_system,
                    self.target_component,
                    511,
                    0,
                    msgid,
                    interval,
                    0,
                    0,
                    0,
                    0,
                    0,
                )
            )

    # ------------------------------------------------------------------ receiving
    def _check_link(self) -> None:
        silence = self.now() - self.last_heartbeat
        if silence > self._vt(self.config.heartbeat_timeout_s):
            raise LinkLost(
                f"link lost: no heartbeat from vehicle {self.target_system} for {silence:.1f} s "
                f"(limit {self.config.heartbeat_timeout_s:g} s)"
            )

    def recv(self, timeout_s: float = 0.5) -> Any | None:
        """Receive one message from the vehicle (vehicle-seconds timeout), updating state.

        Raises
        ------
        LinkLost
            When the vehicle's heartbeat has been silent too long.
        """
        if self.conn is None:
            raise LinkLost("link is closed")
        try:
            msg = self.conn.recv_match(blocking=True, timeout=max(self._wall(timeout_s), 0.001))
        except OSError as exc:
            raise LinkLost(f"link lost: {exc}") from exc
        if msg is not None and msg.get_type() != "BAD_DATA" and self._from_vehicle(msg):
            self._on_message(msg)
            self._check_link()
            return msg
        self._check_link()
        return None

    def _from_vehicle(self, msg: Any) -> bool:
        """True for a message of our vehicle's autopilot meant for us (or for everyone).

        A link may carry other systems (a second GCS routed by ArduPilot or
        MAVProxy, ADSB traffic) and other components of the same system
        (gimbal, camera, companion computer); replies ArduPilot addresses to
        another GCS (its ``COMMAND_ACK``, mission messages) carry that GCS's
        ``target_system``/``target_component``. Those must not be taken for ours.
        """
        if (
            msg.get_srcSystem() != self.target_system
            or msg.get_srcComponent() != self.target_component
        ):
            return False
        target_system = getattr(msg, "target_system", 0) or 0
        if target_system not in (0, self.source_system):
            return False
        target_component = getattr(msg, "target_component", 0) or 0
        return target_component in (0, self.source_component)

    def _on_message(self, msg: Any) -> None:
        kind = msg.get_type()
        if kind == "HEARTBEAT":
            if msg.type in _NOT_A_VEHICLE or msg.get_srcComponent() != self.target_component:
                return
            self.last_heartbeat = self.now()
            self.armed = bool(msg.base_mode & _ARMED_FLAG)
            self.mode = _MODE_NAMES.get(int(msg.custom_mode), str(msg.custom_mode))
        elif kind == "GLOBAL_POSITION_INT":
            if msg.lat != 0 or msg.lon != 0:  # lat = lon = 0: ArduPilot before the GPS lock
                self.position = (
                    msg.time_boot_ms / 1000.0,
                    msg.lat / 1e7,
                    msg.lon / 1e7,
                    msg.relative_alt / 1000.0,
                )
        elif kind == "SYS_STATUS":
            self._sys_status_seen = True
            self.sensors_present = msg.onboard_control_sensors_present
            self.sensors_health = msg.onboard_control_sensors_health
            if msg.battery_remaining >= 0:
                self.battery_pct = float(msg.battery_remaining)
        elif kind == "HOME_POSITION":
            self.home = (msg.latitude / 1e7, msg.longitude / 1e7, msg.altitude / 1000.0)
        elif kind == "MISSION_CURRENT":
            self.mission_current = int(msg.seq)
        elif kind == "EXTENDED_SYS_STATE":
            self.landed_state = int(msg.landed_state)
        elif kind == "STATUSTEXT":
            text = msg.text if isinstance(msg.text, str) else msg.text.decode(errors="replace")
            self.texts.append((self.now(), int(msg.severity), text.rstrip("\x00")))
        for listener in list(self._listeners):
            listener(msg)

    def recent_texts(self, since: float, *, prefix: str = "") -> list[str]:
        """STATUSTEXT messages received since vehicle-clock ``since`` (optionally by prefix)."""
        return [t for when, _, t in self.texts if when >= since and t.startswith(prefix)]

    # ------------------------------------------------------------------ parameters
    def read_params(self, names: Sequence[str], timeout_s: float = 5.0) -> dict[str, float]:
        """Read parameters by name (``PARAM_REQUEST_READ``); missing ones are left out.

        Each unanswered name is asked again every ``command_timeout_s`` until
        ``timeout_s`` (vehicle seconds). Values are ArduPilot's units (e.g.
        ``WPNAV_SPEED`` cm/s, ``BATT_CAPACITY`` mAh).
        """
        if self.conn is None:
            raise LinkLost("link is closed")
        wanted = [str(n) for n in names]
        found: dict[str, float] = {}
        deadline = self.now() + self._vt(timeout_s)
        while True:
            missing = [n for n in wanted if n not in found]
            if not missing or self.now() > deadline:
                return found
            for name in missing:
                self.send(
                    self.conn.mav.param_request_read_encode(
                        self.target_system, self.target_component, name.encode(), -1
                    )
                )
            ask_again = self.now() + self._vt(self.config.command_timeout_s)
            while self.now() < min(ask_again, deadline) and any(n not in found for n in wanted):
                msg = self.recv(0.2)
                if msg is None or msg.get_type() != "PARAM_VALUE":
                    continue
                pid = msg.param_id
                name = (pid if isinstance(pid, str) else pid.decode(errors="replace")).rstrip(
                    "\x00"
                )
                if name in wanted and math.isfinite(msg.param_value):
                    found[name] = float(msg.param_value)

    def vehicle_limits(self, timeout_s: float = 10.0) -> tuple[dict[str, float], float | None]:
        """What to plan with: the vehicle's limit parameters and its state of charge.

        Returns
        -------
        params : dict
            :data:`PLANNING_PARAMS` the vehicle answered (``WPNAV_SPEED`` cm/s,
            ``BATT_CAPACITY`` mAh...), for :meth:`PlanConfig.for_vehicle
            <haulwatch.drone.planconfig.PlanConfig.for_vehicle>`.
        battery_pct : float or None
            ``SYS_STATUS.battery_remaining`` (None when the vehicle reports none
            within ``timeout_s``).
        """
        params = self.read_params(PLANNING_PARAMS, timeout_s=timeout_s)
        deadline = self.now() + self._vt(timeout_s)
        while self.battery_pct is None and self.now() < deadline:
            self.recv(0.2)
        return params, self.battery_pct

    def failsafe_warnings(self, timeout_s: float = 5.0) -> list[str]:
        """Warnings about failsafe parameters that leave the vehicle alone when the link dies.

        Checks ``FS_GCS_ENABLE`` (GCS failsafe), ``BATT_FS_LOW_ACT`` /
        ``BATT_FS_CRT_ACT`` with ``BATT_LOW_MAH``/``BATT_LOW_VOLT`` (battery
        failsafe) and ``FENCE_ENABLE`` (geofence); see docs/architecture.md,
        "Vehicle parameters a deployment must set". An empty list = all set.
        """
        values = self.read_params(FAILSAFE_PARAMS, timeout_s=timeout_s)
        return failsafe_warnings(values)

    # ------------------------------------------------------------------ commands
    def command(
        self,
        command: int,
        params: Sequence[float] = (),
        *,
        check: bool = True,
    ) -> int:
        """Send ``COMMAND_LONG`` and wait for its ``COMMAND_ACK``; return the result code.

        Re-sent (confirmation + 1) when unanswered for ``command_timeout_s``.

        Raises
        ------
        CommandRefused
            When ``check`` and the result is not ``MAV_RESULT_ACCEPTED`` (the
            message names the result and the vehicle's recent STATUSTEXT).
        VehicleLinkError
            When no ACK arrives after the retries.
        """
        p = [float(v) for v in params] + [0.0] * (7 - len(params))
        started = self.now()
        for confirmation in range(self.config.command_retries + 1):
            self.send(
                self.conn.mav.command_long_encode(
                    self.target_system, self.target_component, command, confirmation, *p[:7]
                )
            )
            deadline = self.now() + self._vt(self.config.command_timeout_s)
            while self.now() < deadline:
                msg = self.recv(0.2)
                if msg is None or msg.get_type() != "COMMAND_ACK" or msg.command != command:
                    continue
                if msg.result == 5:  # MAV_RESULT_IN_PROGRESS
                    deadline = self.now() + self._vt(self.config.command_timeout_s)
                    continue
                if check and msg.result != 0:
                    name = command_result_name(msg.result)
                    # ArduPilot queues its STATUSTEXT reasons; they may follow the ACK
                    self._drain(0.5)
                    texts = self.recent_texts(started)
                    said = "; ".join(texts) or "no reason given"
                    raise CommandRefused(
                        f"{_command_name(command)} refused: {name} (vehicle says: {said})",
                        result_name=name,
                        vehicle_texts=texts,
                    )
                return int(msg.result)
        raise VehicleLinkError(
            f"{_command_name(command)}: no COMMAND_ACK after {self.config.command_retries + 1} tries"
        )

    def set_mode(self, name: str) -> None:
        """Switch flight mode (``MAV_CMD_DO_SET_MODE``) and wait for the heartbeat to show it."""
        number = _COPTER_MODES.get(name.upper())
        if number is None:
            raise ValueError(f"mode must be one of {sorted(_COPTER_MODES)}, got {name!r}")
        self.command(176, (1, number))  # MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
        self._wait(
            lambda: self.mode == name.upper(), 3.0, f"mode {name.upper()} not shown in heartbeat"
        )

    def arm(self) -> None:
        """Arm the motors; raises :class:`CommandRefused` with the vehicle's reason."""
        self.command(400, (1,))
        self._wait(lambda: self.armed, 3.0, "armed state not shown in heartbeat")

    def set_current(self, seq: int) -> bool:
        """Make mission item ``seq`` the next one (``MISSION_SET_CURRENT``).

        ArduCopter resumes an interrupted mission where it stopped
        (``MIS_RESTART`` 0, the default) even after a new upload; setting
        item 1 makes the next AUTO start from the take-off. ArduPilot answers
        with ``MISSION_CURRENT`` (there is no ``COMMAND_ACK`` for a message).

        Returns
        -------
        bool
            True once the vehicle reports ``seq`` as current.
        """
        for _ in range(self.config.command_retries + 1):
            self.send(
                self.conn.mav.mission_set_current_encode(
                    self.target_system, self.target_component, seq
                )
            )
            deadline = self.now() + self._vt(self.config.command_timeout_s)
            while self.now() < deadline:
                msg = self.recv(0.2)
                if msg is not None and msg.get_type() == "MISSION_CURRENT" and msg.seq == seq:
                    return True
        return False

    def retry_while_settling(self, action: Callable[[], None]) -> None:
        """Run ``action``; while the vehicle refuses it for a transient reason, retry.

        Retries every 2 vehicle seconds until ``ready_timeout_s``: the
        prearm health bit is computed once a second, so a vehicle may show
        it and still refuse with "PreArm: Need Position Estimate" or a GPS /
        EKF reason a moment longer.
        """
        deadline = self.now() + self._vt(self.config.ready_timeout_s)
        while True:
            try:
                action()
                return
            except CommandRefused as exc:
                if not exc.transient or self.now() > deadline:
                    raise
                _log.info("vehicle not settled, retrying: %s", exc)
            self.check_abort()
            self._drain(2.0)

    def return_to_launch(self) -> None:
        """Switch to RTL: fly home and land."""
        self.set_mode("RTL")

    def land(self) -> None:
        """Switch to LAND: descend and land where it is."""
        self.set_mode("LAND")

    def disarm(self) -> None:
        """Disarm the motors (refused by the vehicle while flying)."""
        self.command(400, (0,))

    def _drain(self, duration_s: float) -> None:
        """Keep receiving (and recording) for ``duration_s`` vehicle seconds."""
        deadline = self.now() + duration_s
        while self.now() < deadline:
            self.recv(min(0.1, duration_s))

    def _wait(self, condition: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = self.now() + self._vt(timeout_s)
        while not condition():
            if self.now() > deadline:
                raise VehicleLinkError(f"timed out after {timeout_s:g} s: {what}")
            self.recv(0.2)

    def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until the vehicle can arm, has a home position and streams its position.

        Stream requests are re-sent every 5 s while SYS_STATUS or
        GLOBAL_POSITION_INT is missing (they are not acknowledged).

        Raises
        ------
        VehicleNotReady
            With the vehicle's ``PreArm:`` reasons when it is not ready in time.
        """
        timeout_s = self.config.ready_timeout_s if timeout_s is None else timeout_s
        started = self.now()
        next_home_request = started
        next_stream_request = started + 5.0
        while True:
            if self.sensors_present & _PREARM_BIT:
                ready = bool(self.sensors_health & _PREARM_BIT)
            else:  # an autopilot without the prearm bit: arming itself will tell
                ready = self._sys_status_seen
            if ready and self.home is not None and self.position is not None:
                return
            if self.now() >= next_home_request and self.home is None:
                next_home_request = self.now() + 2.0
                self.send(
                    self.conn.mav.command_long_encode(
                        self.target_system, self.target_component, 512, 0, 242, 0, 0, 0, 0, 0, 0
                    )
                )
            if self.now() >= next_stream_request and (
                not self._sys_status_seen or self.position is None
            ):  # the requests are not acknowledged; over UDP they may be lost
                next_stream_request = self.now() + 5.0
                self.request_streams()
            if self.now() - started > timeout_s:
                reasons = sorted(set(self.recent_texts(started - 60.0, prefix="PreArm")))
                if not self._sys_status_seen:
                    missing = ["no SYS_STATUS received (streams not sent)"]
                else:
                    missing = [] if ready else ["prearm checks failing"]
                if self.home is None:
                    missing.append("no home position")
                if self.position is None:
                    missing.append("no GLOBAL_POSITION_INT received")
                raise VehicleNotReady(
                    f"vehicle not ready to arm after {timeout_s:g} s: {', '.join(missing)}"
                    + (f" ({'; '.join(reasons)})" if reasons else "")
                )
            self.recv(0.2)

    # ------------------------------------------------------------------ mission transfer
    def _transfer(self, machine: MissionUpload | MissionDownload) -> None:
        step = machine.start(self.now())
        while True:
            for out in step.messages:
                self.send(out)
            if machine.finished:
                break
            msg = self.recv(0.2)
            step = machine.handle(msg, self.now()) if msg is not None else machine.poll(self.now())
            if msg is not None and not step.messages and not machine.finished:
                poll = machine.poll(self.now())
                step.messages += poll.messages
                step.events += poll.events
        if machine.error is not None:
            raise machine.error

    def upload_mission(self, mission: Mission | Sequence[MissionItem]) -> int:
        """Upload a mission (home at seq 0); return the number of re-sends needed.

        Raises
        ------
        MissionUploadError
            The vehicle refused it (``MAV_MISSION_RESULT`` by name).
        MissionTimeout
            The vehicle stopped answering.
        """
        items = mission.wire_items() if isinstance(mission, Mission) else list(mission)
        upload = MissionUpload(
            items,
            target_system=self.target_system,
            target_component=self.target_component,
            item_timeout_s=self._vt(self.config.item_timeout_s),
            max_retries=self.config.transfer_retries,
        )
        self._transfer(upload)
        return upload.retries_used

    def download_mission(self) -> list[MissionItem]:
        """Read the vehicle's mission; item 0 is its home."""
        download = MissionDownload(
            target_system=self.target_system,
            target_component=self.target_component,
            item_timeout_s=self._vt(self.config.item_timeout_s),
            max_retries=self.config.transfer_retries,
        )
        self._transfer(download)
        return download.items

    def verify_mission(self, mission: Mission | Sequence[MissionItem]) -> None:
        """Read the mission back and compare it with ``mission`` (home ignored).

        Raises
        ------
        MissionVerifyError
            Listing every difference.
        """
        items = mission.wire_items() if isinstance(mission, Mission) else list(mission)
        problems = compare_items(items[1:], self.download_mission()[1:])
        if problems:
            raise MissionVerifyError("mission read back differs: " + "; ".join(problems))

    # ------------------------------------------------------------------ flying
    def abort(self, reason: str = "aborted by operator") -> None:
        """Ask a running :meth:`fly_mission` to bring the vehicle home (RTL); thread-safe."""
        self._abort_reason = reason
        self._abort.set()

    @property
    def abort_requested(self) -> bool:
        """True once :meth:`abort` was called (until :meth:`clear_abort`)."""
        return self._abort.is_set()

    @property
    def abort_reason(self) -> str:
        """The reason given to :meth:`abort`."""
        return self._abort_reason

    def clear_abort(self) -> None:
        """Forget an abort request (consumed by the flight it stopped)."""
        self._abort.clear()

    def check_abort(self) -> None:
        """Raise :class:`AbortRequested` when :meth:`abort` was called."""
        if self._abort.is_set():
            raise AbortRequested(self._abort_reason)

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        """Call ``listener(msg)`` for every message of the vehicle the link receives."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Any], None]) -> None:
        """Stop calling ``listener`` (no error when it was not added)."""
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def fly_mission(
        self,
        mission: Mission,
        *,
        progress: Progress | None = None,
        mission_id: str = "",
        min_battery_pct: float | None = 40.0,
        check_failsafes: bool = True,
    ) -> FlightRecord:
        """Fly ``mission`` to the end: :func:`haulwatch.drone.flight.fly_mission` on this link."""
        from haulwatch.drone.flight import fly_mission

        return fly_mission(
            self,
            mission,
            progress=progress,
            mission_id=mission_id,
            min_battery_pct=min_battery_pct,
            check_failsafes=check_failsafes,
        )


class AbortRequested(HaulwatchError):  # noqa: N818 (internal control flow)
    """Abort requested before take-off (raised by :meth:`VehicleLink.check_abort`)."""


def _command_name(command: int) -> str:
    from pymavlink.dialects.v20 import ardupilotmega as mavlink2

    entry = mavlink2.enums["MAV_CMD"].get(int(command))
    return entry.name if entry is not None else f"MAV_CMD {command}"
