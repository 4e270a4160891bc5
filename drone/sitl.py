"""A simulated ArduPilot Copter that speaks MAVLink 2 over TCP, like SITL on port 5760.

``SimulatedCopter`` listens on ``5760 + 10 * instance`` (or any port, 0 = pick a
free one), boots when the first client connects, and serves every connected
client (replies go to the asker, broadcasts to all). Simulated time runs
``speedup`` times faster than the wall clock; every vehicle timer (mission
re-requests, the 42 s position estimate, failsafes) runs on simulated time.

What it reproduces (docs/architecture.md, "ArduPilot Copter SITL behaviour"):
HEARTBEAT at 1 Hz, STATUSTEXT, one HOME_POSITION, command replies and
MISSION_ITEM_REACHED are sent unasked; GLOBAL_POSITION_INT, SYS_STATUS,
MISSION_CURRENT... only after REQUEST_DATA_STREAM or
MAV_CMD_SET_MESSAGE_INTERVAL. The mission protocol follows
``MissionItemProtocol.cpp``: the vehicle asks with MISSION_REQUEST (id 40),
re-asks every 1 s, cancels after 8 s of silence, truncates on MISSION_COUNT.

Test hooks are explicit: ``drop_mission_items`` (constructor),
:meth:`SimulatedCopter.cut_link`, :meth:`SimulatedCopter.force_low_battery`.
The vehicle model itself lives in ``drone.sitl_vehicle``.

Size: one server class — the TCP loop, the command/parameter/mission-protocol
handlers and the message builders all read the same client and vehicle state;
split, each part would reach into the others.
"""

from __future__ import annotations

import contextlib
import math
import queue
import select
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from haulwatch import waiting
from haulwatch.drone.sitl_vehicle import (
    COPTER_MODES,
    LOCATION_COMMANDS,
    CopterModel,
    StoredItem,
    check_item,
    store_params,
)

__all__ = ["BASE_PORT", "COPTER_MODES", "SimulatedCopter", "instance_port"]

_M = mavlink2
BASE_PORT = 5760
_STEP_S = 0.05  # physics step, simulated seconds
_UPLOAD_TIMEOUT_S = 8.0
_REQUEST_RESEND_S = 1.0
_MAX_OUTBUF = 4 * 1024 * 1024
_FOREIGN_GCS = (250, 190)  # the second GCS of ``foreign_traffic``

# REQUEST_DATA_STREAM groups (ArduPilot GCS_MAVLINK stream lists, abridged).
_STREAM_GROUPS: dict[int, tuple[int, ...]] = {
    _M.MAV_DATA_STREAM_EXTENDED_STATUS: (
        _M.MAVLINK_MSG_ID_SYS_STATUS,
        _M.MAVLINK_MSG_ID_MISSION_CURRENT,
        _M.MAVLINK_MSG_ID_GPS_RAW_INT,
        _M.MAVLINK_MSG_ID_BATTERY_STATUS,
    ),
    _M.MAV_DATA_STREAM_POSITION: (_M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT,),
    _M.MAV_DATA_STREAM_EXTRA1: (_M.MAVLINK_MSG_ID_ATTITUDE,),
    _M.MAV_DATA_STREAM_EXTRA2: (_M.MAVLINK_MSG_ID_VFR_HUD,),
    _M.MAV_DATA_STREAM_EXTRA3: (
        _M.MAVLINK_MSG_ID_SYSTEM_TIME,
        _M.MAVLINK_MSG_ID_EXTENDED_SYS_STATE,
        _M.MAVLINK_MSG_ID_EKF_STATUS_REPORT,
    ),
}
_STREAMABLE = frozenset(m for group in _STREAM_GROUPS.values() for m in group) | {
    _M.MAVLINK_MSG_ID_HOME_POSITION,
    _M.MAVLINK_MSG_ID_HEARTBEAT,
    _M.MAVLINK_MSG_ID_AUTOPILOT_VERSION,
}
_PREARM_BIT = _M.MAV_SYS_STATUS_PREARM_CHECK
_SENSORS = (
    _M.MAV_SYS_STATUS_SENSOR_3D_GYRO
    | _M.MAV_SYS_STATUS_SENSOR_3D_ACCEL
    | _M.MAV_SYS_STATUS_SENSOR_GPS
    | _M.MAV_SYS_STATUS_SENSOR_BATTERY
)


def instance_port(instance: int) -> int:
    """The TCP port of SITL instance ``instance`` (``5760 + 10 * instance``).

    Raises
    ------
    ValueError
        If ``instance`` is not an int in 0..5000.
    """
    if isinstance(instance, bool) or not isinstance(instance, int) or not 0 <= instance <= 5000:
        raise ValueError(f"instance must be an int in 0..5000, got {instance!r}")
    return BASE_PORT + 10 * instance


class _Sink:
    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, data: bytes) -> None:
        self.buf += data


@dataclass
class _Client:
    sock: socket.socket
    addr: Any
    sink: _Sink = field(default_factory=_Sink)
    mav: Any = None
    intervals: dict[int, float] = field(default_factory=dict)  # msgid -> seconds
    next_due: dict[int, float] = field(default_factory=dict)
    sysid: int = 255
    compid: int = 190
    warned_float_item: bool = False

    def __post_init__(self) -> None:
        self.mav = _M.MAVLink(self.sink, srcSystem=1, srcComponent=1)
        self.mav.robust_parsing = True


class SimulatedCopter:
    """The simulated ArduCopter SITL (TCP server + vehicle model), in a thread.

    Parameters
    ----------
    home_lat_deg, home_lon_deg : float
        Boot position and home (WGS-84 degrees).
    home_alt_m : float, default 0.0
        Ground altitude at home, metres AMSL.
    port : int or None, default None
        TCP port; None = ``5760 + 10 * instance``; 0 = a free port (tests).
    instance : int, default 0
        SITL instance number (``-I N``), shifts the default port by 10·N.
    host : str, default "127.0.0.1"
        Address to bind.
    speedup : float, default 1.0
        Simulated seconds per wall-clock second.
    battery_wh : float, optional
        Battery energy, watt-hours (``BATT_CAPACITY`` = it at 14.8 V).
    battery_mah : float, optional
        Battery capacity; default (neither given) ArduPilot's 3300 mAh.
    prearm_delay_s : float, default 42.0
        Simulated seconds before a position estimate (arming possible).
    sysid : int, default 1
        MAVLink system id of the vehicle.
    params : dict, optional
        ArduPilot parameter overrides, e.g. ``{"FENCE_ENABLE": 1}``.
    drop_mission_items : collection of int, optional
        Test hook: 1-based ordinal numbers of received ``MISSION_ITEM(_INT)``
        messages to discard as if lost on the link.
    foreign_traffic : bool, default False
        Also carry what a shared link carries (ArduPilot routes every
        MAVLink port to the others; MAVProxy forwards everything to every
        output): heartbeats of a gimbal (component 154, autopilot field
        ArduPilotMega, custom_mode 0), a companion computer (component 191)
        and a second GCS (system 250), each sent before the autopilot's; and
        the vehicle's replies to that GCS (``COMMAND_ACK`` FAILED for every
        command, ``MISSION_ACK`` DENIED for every upload, ``MISSION_COUNT`` 0
        for every read-back), addressed to system 250, component 190.

    Examples
    --------
    >>> sim = SimulatedCopter(home_lat_deg=30.70, home_lon_deg=121.02, port=0, speedup=20).start()
    >>> sim.url  # doctest: +SKIP
    'tcp:127.0.0.1:40123'
    >>> sim.stop()
    """

    def __init__(
        self,
        *,
        home_lat_deg: float,
        home_lon_deg: float,
        home_alt_m: float = 0.0,
        port: int | None = None,
        instance: int = 0,
        host: str = "127.0.0.1",
        speedup: float = 1.0,
        battery_wh: float | None = None,
        prearm_delay_s: float = 42.0,
        sysid: int = 1,
        params: dict[str, float] | None = None,
        drop_mission_items: Collection[int] = (),
        foreign_traffic: bool = False,
        battery_mah: float | None = None,
    ) -> None:
        if not (
            isinstance(speedup, (int, float)) and math.isfinite(speedup) and 0 < speedup <= 1000
        ):
            raise ValueError(f"speedup must be a number in (0, 1000], got {speedup!r}")
        if isinstance(sysid, bool) or not isinstance(sysid, int) or not 1 <= sysid <= 255:
            raise ValueError(f"sysid must be an int in 1..255, got {sysid!r}")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
        ):
            raise ValueError(f"port must be an int in 0..65535 or None, got {port!r}")
        self.model = CopterModel(
            home_lat_deg=home_lat_deg,
            home_lon_deg=home_lon_deg,
            home_alt_m=home_alt_m,
            battery_wh=battery_wh,
            battery_mah=battery_mah,
            prearm_delay_s=prearm_delay_s,
            params=params,
        )
        self.model.params["SIM_SPEEDUP"] = float(speedup)
        self.model.params["SYSID_THISMAV"] = float(sysid)
        self.speedup = float(speedup)
        self.sysid = sysid
        self.host = host
        self._requested_port = instance_port(instance) if port is None else port
        self._drop_items = {int(n) for n in drop_mission_items}
        self.foreign_traffic = bool(foreign_traffic)
        self._items_seen = 0
        self._listener: socket.socket | None = None
        self._clients: list[_Client] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._actions: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._booted = threading.Event()
        self._wall0 = 0.0
        self._unix0 = time.time()
        self._link_cut_until: float | None = None  # sim time; inf = until restored
        self._next_heartbeat = 0.0
        self._next_timesync = 0.0
        self._upload: dict[str, Any] | None = None
        self.port = 0
        self.log: list[tuple[float, str]] = []

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        """Connection string for clients, e.g. ``tcp:127.0.0.1:5760``."""
        return f"tcp:{self.host}:{self.port}"

    @property
    def sim_time_s(self) -> float:
        """Simulated seconds since boot."""
        return self.model.t_s

    def start(self) -> SimulatedCopter:
        """Bind the port and run the simulator in a daemon thread; return self."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self._requested_port))
        except OSError as exc:
            listener.close()
            raise OSError(
                f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror}"
            ) from exc
        listener.listen(8)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name=f"sitl-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and close every socket."""
        self._stop.set()
        if self._thread is not None:
            waiting.join(self._thread, 5.0)
        for client in self._clients:
            with contextlib.suppress(OSError):
                client.sock.close()
        self._clients.clear()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()

    def __enter__(self) -> SimulatedCopter:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_booted(self, timeout_s: float = 10.0) -> bool:
        """Wait (wall seconds) until a client has connected and the vehicle booted."""
        return waiting.wait(self._booted, timeout_s)

    # ------------------------------------------------------------------ test hooks
    def call(self, action: Callable[[CopterModel], Any]) -> None:
        """Run ``action(model)`` inside the simulator thread (thread-safe)."""
        self._actions.put(lambda: action(self.model))

    def cut_link(self, duration_s: float | None = None) -> None:
        """Test hook: silence the link both ways for ``duration_s`` simulated seconds (None: until restored)."""

        def cut() -> None:
            self._link_cut_until = (
                math.inf if duration_s is None else self.model.t_s + float(duration_s)
            )

        self._actions.put(cut)

    def restore_link(self) -> None:
        """Test hook: end a :meth:`cut_link`."""

        def restore() -> None:
            self._link_cut_until = None

        self._actions.put(restore)

    def force_low_battery(self, level: str = "low") -> None:
        """Test hook: drain the battery below the ``low`` or ``critical`` failsafe level."""
        if level not in ("low", "critical"):
            raise ValueError(f"level must be 'low' or 'critical', got {level!r}")
        self.call(lambda model: model.force_low_battery(level))

    # ------------------------------------------------------------------ main loop
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._loop_once()
        finally:
            for client in self._clients:
                with contextlib.suppress(OSError):
                    client.sock.close()

    def _loop_once(self) -> None:
        assert self._listener is not None  # set by start()
        rlist: list[Any] = [self._listener] + [c.sock for c in self._clients]
        wlist = [c.sock for c in self._clients if c.sink.buf]
        timeout = max(0.001, min(0.02, _STEP_S / self.speedup)) if self._booted.is_set() else 0.05
        try:
            readable, _writable, _ = select.select(rlist, wlist, [], timeout)
        except (OSError, ValueError):
            self._drop_closed()
            return
        while True:
            try:
                action = self._actions.get_nowait()
            except queue.Empty:
                break
            action()
        for sock in readable:
            if sock is self._listener:
                self._accept()
            else:
                self._read(sock)
        if self._booted.is_set():
            self._advance()
        for client in list(self._clients):
            if client.sink.buf:
                self._flush(client)

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            sock, addr = self._listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(sock, addr)
        client.mav.srcSystem = self.sysid
        self._clients.append(client)
        if not self._booted.is_set():
            self._wall0 = time.monotonic()
            self._unix0 = time.time()
            self._booted.set()
            self._note("boot: client connected")
        if self.foreign_traffic:  # the other components speak first
            self._foreign_heartbeats()
        self._send(client, self._heartbeat())

    def _drop_closed(self) -> None:
        keep = []
        for client in self._clients:
            if client.sock.fileno() >= 0:
                keep.append(client)
        self._clients = keep

    def _remove(self, client: _Client) -> None:
        with contextlib.suppress(OSError):
            client.sock.close()
        if client in self._clients:
            self._clients.remove(client)
        if self._upload is not None and self._upload["client"] is client:
            self._upload = None

    def _read(self, sock: socket.socket) -> None:
        client = next((c for c in self._clients if c.sock is sock), None)
        if client is None:
            return
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._remove(client)
            return
        if not data:
            self._remove(client)
            return
        if self._link_is_cut():
            return
        try:
            messages = client.mav.parse_buffer(data) or []
        except _M.MAVError:
            return
        for msg in messages:
            if msg.get_type() == "BAD_DATA":
                continue
            self._handle(client, msg)

    def _flush(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.sink.buf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._remove(client)
            return
        del client.sink.buf[:sent]
        if len(client.sink.buf) > _MAX_OUTBUF:
            self._note(f"dropping client {client.addr}: not reading")
            self._remove(client)

    def _link_is_cut(self) -> bool:
        until = self._link_cut_until
        if until is None:
            return False
        if self.model.t_s >= until:
            self._link_cut_until = None
            return False
        return True

    def _advance(self) -> None:
        target = (time.monotonic() - self._wall0) * self.speedup
        model = self.model
        behind = target - model.t_s
        if behind > 2.0:  # starved of CPU: slow simulated time down instead of jumping
            self._wall0 += (behind - 2.0) / self.speedup
            target = model.t_s + 2.0
        while model.t_s + 1e-9 < target:
            model.step(min(_STEP_S, target - model.t_s))
            self._drain_events()
            self._periodic()

    def _note(self, text: str) -> None:
        self.log.append((self.model.t_s, text))

    # ------------------------------------------------------------------ sending
    def _send(self, client: _Client, msg: Any) -> None:
        if self._link_is_cut():
            return
        try:
            client.mav.send(msg)
        except (_M.MAVError, TypeError, ValueError) as exc:
            self._note(f"cannot pack {msg.get_type()}: {exc}")

    def _send_as(self, client: _Client, msg: Any, sysid: int, compid: int) -> None:
        """Send ``msg`` from another system/component (traffic routed onto this link)."""
        mav = client.mav
        saved = (mav.srcSystem, mav.srcComponent)
        mav.srcSystem, mav.srcComponent = sysid, compid
        try:
            self._send(client, msg)
        finally:
            mav.srcSystem, mav.srcComponent = saved

    def _foreign_heartbeats(self) -> None:
        beats = (
            (self.sysid, _M.MAV_COMP_ID_GIMBAL, _M.MAV_TYPE_GIMBAL, _M.MAV_AUTOPILOT_ARDUPILOTMEGA),
            (
                self.sysid,
                _M.MAV_COMP_ID_ONBOARD_COMPUTER,
                _M.MAV_TYPE_ONBOARD_CONTROLLER,
                _M.MAV_AUTOPILOT_INVALID,
            ),
            (_FOREIGN_GCS[0], _FOREIGN_GCS[1], _M.MAV_TYPE_GCS, _M.MAV_AUTOPILOT_INVALID),
        )
        for client in self._clients:
            for sysid, compid, mav_type, autopilot in beats:
                msg = _M.MAVLink_heartbeat_message(
                    mav_type, autopilot, 0, 0, _M.MAV_STATE_STANDBY, 3
                )
                self._send_as(client, msg, sysid, compid)

    def _foreign_reply(self, client: _Client, msg: Any) -> None:
        """The vehicle's reply to another GCS, as a forwarding router shows it to us."""
        kind = msg.get_type()
        gcs_sys, gcs_comp = _FOREIGN_GCS
        if kind in ("COMMAND_LONG", "COMMAND_INT"):
            reply = _M.MAVLink_command_ack_message(
                msg.command, _M.MAV_RESULT_FAILED, 0, 0, gcs_sys, gcs_comp
            )
        elif kind == "MISSION_COUNT":
            reply = _M.MAVLink_mission_ack_message(gcs_sys, gcs_comp, _M.MAV_MISSION_DENIED, 0)
        elif kind == "MISSION_REQUEST_LIST":
            reply = _M.MAVLink_mission_count_message(gcs_sys, gcs_comp, 0, 0)
        else:
            return
        self._send(client, reply)

    def _broadcast(self, msg: Any) -> None:
        for client in self._clients:
            self._send(client, msg)

    def _statustext(self, severity: int, text: str) -> Any:
        return _M.MAVLink_statustext_message(severity, text.encode()[:50])

    def _drain_events(self) -> None:
        model = self.model
        while model.events:
            event = model.events.pop(0)
            kind = event[0]
            if kind == "text":
                self._note(event[2])
                self._broadcast(self._statustext(event[1], event[2]))
            elif kind == "photo":
                p = event[1]
                self._broadcast(
                    _M.MAVLink_camera_feedback_message(
                        # AP_Camera: GPS Unix time (AP_RTC), not time since boot
                        self._unix_us(),
                        0,
                        0,
                        p["index"],
                        round(p["lat"] * 1e7),
                        round(p["lon"] * 1e7),
                        p["alt_msl"],
                        p["alt_rel"],
                        0.0,
                        0.0,
                        p["yaw"],
                        0.0,
                        _M.CAMERA_FEEDBACK_PHOTO,
                        p["index"],
                    )
                )
            elif kind == "home":
                self._broadcast(self._message(_M.MAVLINK_MSG_ID_HOME_POSITION))
            elif kind == "param":
                self._broadcast(self._param_value(event[1]))
        if model.reached_slot is not None:  # one deferred slot per link, sent once per step
            self._broadcast(_M.MAVLink_mission_item_reached_message(model.reached_slot))
            model.reached_slot = None

    def _periodic(self) -> None:
        model = self.model
        now = model.t_s
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + 1.0
            if self.foreign_traffic:
                self._foreign_heartbeats()
            self._broadcast(self._heartbeat())
        if now >= self._next_timesync:  # ArduPilot probes the GCS clock unasked
            self._next_timesync = now + 10.0
            self._broadcast(_M.MAVLink_timesync_message(0, int(now * 1e9)))
        for client in self._clients:
            for msgid, interval in client.intervals.items():
                if interval <= 0 or now < client.next_due.get(msgid, 0.0):
                    continue
                client.next_due[msgid] = now + interval
                msg = self._message(msgid)
                if msg is not None:
                    self._send(client, msg)
        up = self._upload
        if up is not None:
            if now - up["last_receive"] > _UPLOAD_TIMEOUT_S:
                self._upload = None
                self._send(
                    up["client"],
                    _M.MAVLink_mission_ack_message(
                        up["sysid"], up["compid"], _M.MAV_MISSION_OPERATION_CANCELLED, 0
                    ),
                )
                model.text(_M.MAV_SEVERITY_WARNING, "Mission upload timeout")
                self._drain_events()
            elif now - up["last_request"] > _REQUEST_RESEND_S:
                self._send_request(up)

    # ------------------------------------------------------------------ messages
    def _heartbeat(self) -> Any:
        model = self.model
        base = _M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | _M.MAV_MODE_FLAG_STABILIZE_ENABLED
        if model.mode in ("GUIDED", "AUTO", "RTL", "LAND"):
            base |= _M.MAV_MODE_FLAG_GUIDED_ENABLED
        if model.mode == "AUTO":
            base |= _M.MAV_MODE_FLAG_AUTO_ENABLED
        if model.armed:
            base |= _M.MAV_MODE_FLAG_SAFETY_ARMED
        state = _M.MAV_STATE_ACTIVE if model.armed else _M.MAV_STATE_STANDBY
        return _M.MAVLink_heartbeat_message(
            _M.MAV_TYPE_QUADROTOR, _M.MAV_AUTOPILOT_ARDUPILOTMEGA, base, model.mode_number, state, 3
        )

    def _message(self, msgid: int) -> Any | None:
        model = self.model
        now_ms = int(model.t_s * 1000) & 0xFFFFFFFF
        lat, lon = model.lat_lon
        ve, vn, vu = model.vel
        if msgid == _M.MAVLINK_MSG_ID_HEARTBEAT:
            return self._heartbeat()
        if msgid == _M.MAVLINK_MSG_ID_GLOBAL_POSITION_INT:
            if not model.gps_lock:  # ArduPilot before its GPS lock: lat = lon = 0
                lat = lon = 0.0
            return _M.MAVLink_global_position_int_message(
                now_ms,
                round(lat * 1e7),
                round(lon * 1e7),
                round((model.alt_m + model.home[2]) * 1000),
                round(model.alt_m * 1000),
                round(vn * 100),
                round(ve * 100),
                round(-vu * 100),
                round(model.yaw_deg * 100) % 36000,
            )
        if msgid == _M.MAVLINK_MSG_ID_SYS_STATUS:
            health = _SENSORS | (_PREARM_BIT if model.prearm_healthy else 0)
            return _M.MAVLink_sys_status_message(
                _SENSORS | _PREARM_BIT,
                _SENSORS | _PREARM_BIT,
                health,
                200,
                round(model.battery_voltage_v * 1000),
                round(model.current_a() * 100),
                round(model.battery_remaining_pct),
                0,
                0,
                0,
                0,
                0,
                0,
            )
        if msgid == _M.MAVLINK_MSG_ID_BATTERY_STATUS:
            volts = [round(model.battery_voltage_v * 1000)] + [65535] * 9
            return _M.MAVLink_battery_status_message(
                0,
                0,
                0,
                32767,
                volts,
                round(model.current_a() * 100),
                round(model.consumed_mah),
                -1,
                round(model.battery_remaining_pct),
            )
        if msgid == _M.MAVLINK_MSG_ID_MISSION_CURRENT:
            return _M.MAVLink_mission_current_message(
                model.mission_current, len(model.mission), 0, 0
            )
        if msgid == _M.MAVLINK_MSG_ID_GPS_RAW_INT:
            fix = 3 if model.t_s >= min(5.0, model.prearm_delay_s) else 1
            return _M.MAVLink_gps_raw_int_message(
                int(model.t_s * 1e6),
                fix,
                round(lat * 1e7),
                round(lon * 1e7),
                round((model.alt_m + model.home[2]) * 1000),
                80,
                120,
                round(math.hypot(ve, vn) * 100),
                round(model.yaw_deg * 100) % 36000,
                12 if fix == 3 else 0,
            )
        if msgid == _M.MAVLINK_MSG_ID_ATTITUDE:
            return _M.MAVLink_attitude_message(
                now_ms,
                0.0,
                0.0,
                math.radians(((model.yaw_deg + 180.0) % 360.0) - 180.0),
                0.0,
                0.0,
                0.0,
            )
        if msgid == _M.MAVLINK_MSG_ID_VFR_HUD:
            return _M.MAVLink_vfr_hud_message(
                math.hypot(ve, vn),
                math.hypot(ve, vn),
                round(model.yaw_deg) % 360,
                0 if model.landed else 50,
                model.alt_m + model.home[2],
                vu,
            )
        if msgid == _M.MAVLINK_MSG_ID_SYSTEM_TIME:
            return _M.MAVLink_system_time_message(self._unix_us(), now_ms)
        if msgid == _M.MAVLINK_MSG_ID_EXTENDED_SYS_STATE:
            if not model.armed or model.landed:
                landed = _M.MAV_LANDED_STATE_ON_GROUND
            elif model.vel[2] > 0.2:
                landed = _M.MAV_LANDED_STATE_TAKEOFF
            elif model.vel[2] < -0.2:
                landed = _M.MAV_LANDED_STATE_LANDING
            else:
                landed = _M.MAV_LANDED_STATE_IN_AIR
            return _M.MAVLink_extended_sys_state_message(_M.MAV_VTOL_STATE_UNDEFINED, landed)
        if msgid == _M.MAVLINK_MSG_ID_EKF_STATUS_REPORT:
            flags = _M.EKF_ATTITUDE
            if model.position_ok:
                flags |= (
                    _M.EKF_VELOCITY_HORIZ
                    | _M.EKF_VELOCITY_VERT
                    | _M.EKF_POS_HORIZ_REL
                    | _M.EKF_POS_HORIZ_ABS
                    | _M.EKF_POS_VERT_ABS
                    | _M.EKF_PRED_POS_HORIZ_REL
                    | _M.EKF_PRED_POS_HORIZ_ABS
                )
            else:
                flags |= _M.EKF_CONST_POS_MODE
            return _M.MAVLink_ekf_status_report_message(flags, 0.02, 0.02, 0.02, 0.02, 0.0, 0.0)
        if msgid == _M.MAVLINK_MSG_ID_HOME_POSITION:
            if not model.home_set:
                return None
            hlat, hlon, halt = model.home
            return _M.MAVLink_home_position_message(
                round(hlat * 1e7),
                round(hlon * 1e7),
                round(halt * 1000),
                0.0,
                0.0,
                0.0,
                [1.0, 0.0, 0.0, 0.0],
                0.0,
                0.0,
                0.0,
                int(model.t_s * 1e6),
            )
        if msgid == _M.MAVLINK_MSG_ID_AUTOPILOT_VERSION:
            caps = (
                _M.MAV_PROTOCOL_CAPABILITY_MISSION_FLOAT
                | _M.MAV_PROTOCOL_CAPABILITY_PARAM_FLOAT
                | _M.MAV_PROTOCOL_CAPABILITY_MISSION_INT
                | _M.MAV_PROTOCOL_CAPABILITY_COMMAND_INT
                | _M.MAV_PROTOCOL_CAPABILITY_SET_POSITION_TARGET_GLOBAL_INT
                | _M.MAV_PROTOCOL_CAPABILITY_MAVLINK2
            )
            return _M.MAVLink_autopilot_version_message(
                caps,
                (4 << 24) | (7 << 16) | (0 << 8) | 255,
                0,
                0,
                0,
                [0] * 8,
                [0] * 8,
                [0] * 8,
                0,
                0,
                0,
            )
        return None

    def _unix_us(self) -> int:
        """The vehicle's Unix clock (µs): the wall time at boot plus simulated seconds."""
        return int((self._unix0 + self.model.t_s) * 1e6)

    def _param_value(self, name: str) -> Any:
        names = list(self.model.params)
        return _M.MAVLink_param_value_message(
            name.encode(),
            float(self.model.params[name]),
            _M.MAV_PARAM_TYPE_REAL32,
            len(names),
            names.index(name),
        )

    # ------------------------------------------------------------------ inbound
    def _handle(self, client: _Client, msg: Any) -> None:
        kind = msg.get_type()
        src = msg.get_srcSystem()
        model = self.model
        if kind == "HEARTBEAT":
            if msg.type == _M.MAV_TYPE_GCS:
                client.sysid, client.compid = src, msg.get_srcComponent()
                model.gcs_heartbeat()
            return
        target = getattr(msg, "target_system", None)
        if target not in (None, 0, self.sysid):
            return  # for another vehicle
        component = getattr(msg, "target_component", None)
        if target == self.sysid and component not in (None, 0, 1):
            return  # for another component of this vehicle (gimbal, camera...)
        handler = self._HANDLERS.get(kind)
        if self.foreign_traffic:
            self._foreign_reply(client, msg)
        if handler is not None:
            handler(self, client, msg)
            self._drain_events()

    def _ack(self, client: _Client, msg: Any, command: int, result: int) -> None:
        self._send(
            client,
            _M.MAVLink_command_ack_message(
                command, result, 0, 0, msg.get_srcSystem(), msg.get_srcComponent()
            ),
        )

    def _on_command_long(self, client: _Client, msg: Any) -> None:
        params = (
            msg.param1,
            msg.param2,
            msg.param3,
            msg.param4,
            msg.param5,
            msg.param6,
            msg.param7,
        )
        self._command(client, msg, msg.command, params)

    def _on_command_int(self, client: _Client, msg: Any) -> None:
        params = (msg.param1, msg.param2, msg.param3, msg.param4, msg.x / 1e7, msg.y / 1e7, msg.z)
        self._command(client, msg, msg.command, params)

    def _command(self, client: _Client, msg: Any, command: int, p: tuple[float, ...]) -> None:
        model = self.model
        accepted, failed = _M.MAV_RESULT_ACCEPTED, _M.MAV_RESULT_FAILED
        if command == _M.MAV_CMD_COMPONENT_ARM_DISARM:
            force = abs(p[1] - 21196) < 0.5
            if p[0] >= 0.5:
                ok, _ = model.arm(force=force)
            else:
                ok, _ = model.disarm(force=force)
            result = accepted if ok else failed
        elif command == _M.MAV_CMD_DO_SET_MODE:
            # GCS_MAVLINK::_set_mode_common: only custom modes; otherwise DENIED
            result = (
                self._set_mode_number(int(p[1]))
                if int(p[0]) & _M.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED
                else _M.MAV_RESULT_DENIED
            )
        elif command == _M.MAV_CMD_NAV_TAKEOFF:
            result = accepted if model.takeoff(p[6])[0] else failed
        elif command == _M.MAV_CMD_MISSION_START:
            if p[0] != 0 or p[1] != 0:  # first/last item: not supported by Copter
                result = _M.MAV_RESULT_DENIED
            else:
                result = accepted if model.mission_start()[0] else failed
        elif command == _M.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            result = accepted if model.set_mode("RTL")[0] else failed
        elif command == _M.MAV_CMD_NAV_LAND:
            result = accepted if model.set_mode("LAND")[0] else failed
        elif command == _M.MAV_CMD_SET_MESSAGE_INTERVAL:
            result = self._set_interval(client, int(p[0]), p[1])
        elif command == _M.MAV_CMD_REQUEST_MESSAGE:
            reply = self._message(int(p[0]))
            if reply is not None:
                self._send(client, reply)
            result = accepted if reply is not None else failed
        elif command == _M.MAV_CMD_REQUEST_AUTOPILOT_CAPABILITIES:
            self._send(client, self._message(_M.MAVLINK_MSG_ID_AUTOPILOT_VERSION))
            result = accepted
        elif command == _M.MAV_CMD_GET_HOME_POSITION:
            reply = self._message(_M.MAVLINK_MSG_ID_HOME_POSITION)
            if reply is not None:
                self._send(client, reply)
            result = accepted if reply is not None else failed
        elif command == _M.MAV_CMD_DO_CHANGE_SPEED:
            if p[1] > 0:
                model._speed_override = float(p[1])
            result = accepted
        elif command == _M.MAV_CMD_DO_SET_CAM_TRIGG_DIST:
            model.set_trigger_distance(p[0], trigger_now=p[2] == 1)
            result = accepted
        elif command == _M.MAV_CMD_DO_DIGICAM_CONTROL:
            if p[4] == 1:
                model.take_photo()
            result = accepted
        elif command == _M.MAV_CMD_IMAGE_START_CAPTURE:
            model.start_capture(p[1], p[2])
            result = accepted
        elif command == _M.MAV_CMD_DO_FENCE_ENABLE:
            model.set_param("FENCE_ENABLE", 1.0 if p[0] >= 1 else 0.0)
            result = accepted
        else:
            result = _M.MAV_RESULT_UNSUPPORTED
        self._ack(client, msg, command, result)

    def _set_mode_number(self, custom_mode: int) -> int:
        name = self.model.mode_name(custom_mode)
        if name is None:
            self.model.text(_M.MAV_SEVERITY_WARNING, f"No such mode {custom_mode}")
            return _M.MAV_RESULT_FAILED
        ok, _ = self.model.set_mode(name)
        return _M.MAV_RESULT_ACCEPTED if ok else _M.MAV_RESULT_FAILED

    def _on_set_mode(self, client: _Client, msg: Any) -> None:
        result = self._set_mode_number(int(msg.custom_mode))
        self._send(client, _M.MAVLink_command_ack_message(_M.MAVLINK_MSG_ID_SET_MODE, result))

    def _set_interval(self, client: _Client, msgid: int, interval_us: float) -> int:
        if msgid not in _STREAMABLE:
            return _M.MAV_RESULT_FAILED
        if interval_us < 0:
            client.intervals.pop(msgid, None)
        else:
            client.intervals[msgid] = 1.0 if interval_us == 0 else max(interval_us / 1e6, 0.01)
            client.next_due[msgid] = 0.0
        return _M.MAV_RESULT_ACCEPTED

    def _on_request_data_stream(self, client: _Client, msg: Any) -> None:
        stream = int(msg.req_stream_id)
        groups = list(_STREAM_GROUPS) if stream == _M.MAV_DATA_STREAM_ALL else [stream]
        rate = int(msg.req_message_rate)
        for group in groups:
            for msgid in _STREAM_GROUPS.get(group, ()):
                if msg.start_stop == 0 or rate <= 0:
                    client.intervals.pop(msgid, None)
                else:
                    client.intervals[msgid] = 1.0 / min(rate, 50)
                    client.next_due[msgid] = 0.0

    def _on_set_position_target_global_int(self, client: _Client, msg: Any) -> None:
        self.model.guided_goto(msg.lat_int / 1e7, msg.lon_int / 1e7, msg.alt)

    def _on_timesync(self, client: _Client, msg: Any) -> None:
        if msg.tc1 == 0:
            self._send(client, _M.MAVLink_timesync_message(int(self.model.t_s * 1e9), msg.ts1))

    # -- parameters
    def _on_param_request_list(self, client: _Client, msg: Any) -> None:
        for name in self.model.params:
            self._send(client, self._param_value(name))

    def _on_param_request_read(self, client: _Client, msg: Any) -> None:
        names = list(self.model.params)
        name = (
            msg.param_id.rstrip("\x00") if isinstance(msg.param_id, str) else msg.param_id.decode()
        )
        if msg.param_index >= 0:
            if msg.param_index < len(names):
                self._send(client, self._param_value(names[msg.param_index]))
        elif name in self.model.params:
            self._send(client, self._param_value(name))

    def _on_param_set(self, client: _Client, msg: Any) -> None:
        name = (
            msg.param_id.rstrip("\x00") if isinstance(msg.param_id, str) else msg.param_id.decode()
        )
        if math.isfinite(msg.param_value):
            self.model.set_param(name, msg.param_value)

    # -- mission protocol (MissionItemProtocol.cpp)
    def _mission_ack(self, client: _Client, msg: Any, result: int) -> None:
        self._send(
            client,
            _M.MAVLink_mission_ack_message(msg.get_srcSystem(), msg.get_srcComponent(), result, 0),
        )

    def _on_mission_count(self, client: _Client, msg: Any) -> None:
        if msg.mission_type != _M.MAV_MISSION_TYPE_MISSION:
            self._mission_ack(client, msg, _M.MAV_MISSION_UNSUPPORTED)
            return
        up = self._upload
        if up is not None and (up["client"] is not client or up["sysid"] != msg.get_srcSystem()):
            self._mission_ack(client, msg, _M.MAV_MISSION_DENIED)
            return
        if msg.count > 700:
            self._mission_ack(client, msg, _M.MAV_MISSION_NO_SPACE)
            self.model.text(_M.MAV_SEVERITY_WARNING, "Only 700 items are supported")
            return
        model = self.model
        del model.mission[max(int(msg.count), 1) :]  # truncate at once, keep home
        if msg.count == 0:
            self._mission_ack(client, msg, _M.MAV_MISSION_ACCEPTED)
            return
        now = model.t_s
        self._upload = {
            "client": client,
            "sysid": msg.get_srcSystem(),
            "compid": msg.get_srcComponent(),
            "next": 0,
            "last": int(msg.count) - 1,
            "last_receive": now,
            "last_request": now,
        }
        self._send_request(self._upload)

    def _send_request(self, up: dict[str, Any]) -> None:
        up["last_request"] = self.model.t_s
        self._send(
            up["client"],
            _M.MAVLink_mission_request_message(up["sysid"], up["compid"], up["next"], 0),
        )

    def _on_mission_item(self, client: _Client, msg: Any) -> None:
        if getattr(msg, "mission_type", 0) != _M.MAV_MISSION_TYPE_MISSION:
            return
        if msg.current == 2:  # GUIDED "fly to" as a mission item (dronekit simple_goto)
            scale = 1e7 if msg.get_type() == "MISSION_ITEM_INT" else 1.0
            self.model.guided_goto(msg.x / scale, msg.y / scale, msg.z)
            self._mission_ack(client, msg, _M.MAV_MISSION_ACCEPTED)
            return
        self._items_seen += 1
        if self._items_seen in self._drop_items:
            self._note(f"fault: dropped mission item #{self._items_seen} (seq {msg.seq})")
            return
        up = self._upload
        if up is None:
            self._mission_ack(client, msg, _M.MAV_MISSION_ERROR)
            return
        if msg.seq != up["next"]:
            self._mission_ack(client, msg, _M.MAV_MISSION_INVALID_SEQUENCE)
            return
        if msg.get_srcSystem() != up["sysid"] or msg.get_srcComponent() != up["compid"]:
            self._mission_ack(client, msg, _M.MAV_MISSION_DENIED)
            return
        if msg.get_type() == "MISSION_ITEM":
            if not client.warned_float_item:
                client.warned_float_item = True
                self.model.text(
                    _M.MAV_SEVERITY_WARNING, "got MISSION_ITEM; GCS should send MISSION_ITEM_INT"
                )
            x, y = _float_to_int_xy(msg)
        else:
            x, y = msg.x, msg.y
        item = StoredItem(
            int(msg.command),
            int(msg.frame),
            *store_params(int(msg.command), (msg.param1, msg.param2, msg.param3, msg.param4)),
            int(x),
            int(y),
            float(msg.z),
            int(msg.autocontinue),
        )
        model = self.model
        result = check_item(item)
        if result == _M.MAV_MISSION_ACCEPTED and msg.seq > len(model.mission):
            result = _M.MAV_MISSION_ERROR
        if result != _M.MAV_MISSION_ACCEPTED:
            self._mission_ack(client, msg, result)
            self._upload = None
            return
        if msg.seq > 0:  # item 0 is home: ignored
            if msg.seq < len(model.mission):
                model.mission[msg.seq] = item
            else:
                model.mission.append(item)
        up["last_receive"] = model.t_s
        up["next"] += 1
        if up["next"] > up["last"]:
            self._upload = None
            self._mission_ack(client, msg, _M.MAV_MISSION_ACCEPTED)
            model.text(_M.MAV_SEVERITY_INFO, "Flight plan received")
            if model.mission_current >= len(model.mission):
                model.mission_current = 0
            return
        self._send_request(up)

    def _on_mission_request_list(self, client: _Client, msg: Any) -> None:
        if getattr(msg, "mission_type", 0) != _M.MAV_MISSION_TYPE_MISSION:
            self._send(
                client,
                _M.MAVLink_mission_count_message(
                    msg.get_srcSystem(), msg.get_srcComponent(), 0, msg.mission_type
                ),
            )
            return
        if self._upload is not None:
            self._mission_ack(client, msg, _M.MAV_MISSION_DENIED)
            return
        self._send(
            client,
            _M.MAVLink_mission_count_message(
                msg.get_srcSystem(), msg.get_srcComponent(), len(self.model.mission), 0
            ),
        )

    def _on_mission_request(self, client: _Client, msg: Any) -> None:
        if getattr(msg, "mission_type", 0) != _M.MAV_MISSION_TYPE_MISSION:
            return
        if self._upload is not None:
            self._mission_ack(client, msg, _M.MAV_MISSION_DENIED)
            return
        model = self.model
        if not 0 <= msg.seq < len(model.mission):
            self._mission_ack(client, msg, _M.MAV_MISSION_INVALID_SEQUENCE)
            return
        item = model.mission[msg.seq] if msg.seq > 0 else model._home_item()
        frame = item.readback_frame()
        z = round(item.z * 100) / 100.0  # stored in centimetres
        args = (
            msg.get_srcSystem(),
            msg.get_srcComponent(),
            msg.seq,
            frame,
            item.command,
            int(msg.seq == model.mission_current),
            item.autocontinue,
            item.param1,
            item.param2,
            item.param3,
            item.param4,
        )
        if msg.get_type() == "MISSION_REQUEST_INT":
            reply = _M.MAVLink_mission_item_int_message(*args, item.x, item.y, z, 0)
        else:
            x, y = (
                (item.x / 1e7, item.y / 1e7)
                if item.has_location
                else (float(item.x), float(item.y))
            )
            reply = _M.MAVLink_mission_item_message(*args, x, y, z, 0)
        self._send(client, reply)

    def _on_mission_ack(self, client: _Client, msg: Any) -> None:
        return  # end of a download: nothing to do

    def _on_mission_clear_all(self, client: _Client, msg: Any) -> None:
        if self._upload is not None:
            self._mission_ack(client, msg, _M.MAV_MISSION_ERROR)
            return
        del self.model.mission[1:]
        self.model.mission_current = 0
        self._mission_ack(client, msg, _M.MAV_MISSION_ACCEPTED)

    def _on_mission_set_current(self, client: _Client, msg: Any) -> None:
        model = self.model
        # GCS_MAVLINK::handle_mission_set_current: MISSION_CURRENT only when
        # AP_Mission::set_current_cmd accepted the index (no COMMAND_ACK)
        if 0 < msg.seq < len(model.mission):
            model.set_current(msg.seq)
            self._send(client, self._message(_M.MAVLINK_MSG_ID_MISSION_CURRENT))

    _HANDLERS: ClassVar[dict[str, Callable[[SimulatedCopter, _Client, Any], None]]] = {
        "COMMAND_LONG": _on_command_long,
        "COMMAND_INT": _on_command_int,
        "SET_MODE": _on_set_mode,
        "REQUEST_DATA_STREAM": _on_request_data_stream,
        "SET_POSITION_TARGET_GLOBAL_INT": _on_set_position_target_global_int,
        "TIMESYNC": _on_timesync,
        "PARAM_REQUEST_LIST": _on_param_request_list,
        "PARAM_REQUEST_READ": _on_param_request_read,
        "PARAM_SET": _on_param_set,
        "MISSION_COUNT": _on_mission_count,
        "MISSION_ITEM": _on_mission_item,
        "MISSION_ITEM_INT": _on_mission_item,
        "MISSION_REQUEST_LIST": _on_mission_request_list,
        "MISSION_REQUEST": _on_mission_request,
        "MISSION_REQUEST_INT": _on_mission_request,
        "MISSION_ACK": _on_mission_ack,
        "MISSION_CLEAR_ALL": _on_mission_clear_all,
        "MISSION_SET_CURRENT": _on_mission_set_current,
    }


def _float_to_int_xy(msg: Any) -> tuple[int, int]:
    """x/y of a float MISSION_ITEM as MISSION_ITEM_INT stores them."""
    if msg.command in LOCATION_COMMANDS:
        return round(msg.x * 1e7), round(msg.y * 1e7)
    return round(msg.x), round(msg.y)
