"""The simulated ArduCopter itself: kinematics, modes, arming, mission, battery, fence.

No sockets and no wall clock: :class:`CopterModel` advances by ``step(dt_s)``
in simulated seconds and queues what it has to tell the ground
(:attr:`CopterModel.events`); ``drone.sitl`` turns those into MAVLink and
serves them over TCP. Behaviour follows ArduCopter 4.x (see
docs/architecture.md, "The drone simulator"): arming refused with
``PreArm: Need Position Estimate`` until ``prearm_delay_s``, AUTO not armable,
AUTO on the ground needs a first ``NAV_TAKEOFF`` and ``MISSION_START``, do
commands sequenced as ``AP_Mission`` does (those between two nav commands run
when the second one starts, one per update; "Mission: N <type>" for each
command started; one MISSION_ITEM_REACHED slot), the copter hovers after
the last item, disarms by itself after landing, battery and fence failsafes.

Positions are kept in a local east/north frame around home (metres, flat
earth), which is exact enough for the few kilometres a dock drone flies.

Size: one vehicle — modes, mission sequencing, flight physics, camera, battery
and failsafes step the same state each tick, as in ArduCopter itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

__all__ = [
    "COPTER_MODES",
    "DEFAULT_PARAMS",
    "LOCATION_COMMANDS",
    "CopterModel",
    "StoredItem",
    "check_item",
    "store_params",
]

_M = mavlink2
_EARTH_R_M = 6_378_137.0

#: ArduCopter flight modes (``HEARTBEAT.custom_mode``) the simulator flies.
COPTER_MODES: dict[str, int] = {
    "STABILIZE": 0,
    "ALT_HOLD": 2,
    "AUTO": 3,
    "GUIDED": 4,
    "LOITER": 5,
    "RTL": 6,
    "LAND": 9,
    "BRAKE": 17,
}
_MODE_NAMES = {v: k for k, v in COPTER_MODES.items()}
_NEEDS_POSITION = {"AUTO", "GUIDED", "LOITER", "RTL", "BRAKE"}

#: Parameters served over the PARAM protocol (ArduPilot names and units).
DEFAULT_PARAMS: dict[str, float] = {
    "SYSID_THISMAV": 1,
    "SIM_SPEEDUP": 1,
    "ARMING_CHECK": 1,
    "DISARM_DELAY": 10,
    "WPNAV_SPEED": 1000,  # cm/s
    "WPNAV_SPEED_UP": 250,  # cm/s
    "WPNAV_SPEED_DN": 150,  # cm/s
    "WPNAV_RADIUS": 200,  # cm
    "WPNAV_ACCEL": 250,  # cm/s/s
    "LAND_SPEED": 50,  # cm/s
    "LAND_ALT_LOW": 1000,  # cm
    "RTL_ALT": 1500,  # cm
    "RTL_LOIT_TIME": 5000,  # ms
    "RTL_SPEED": 0,  # cm/s, 0 = WPNAV_SPEED
    "CIRCLE_RADIUS": 1000,  # cm
    "CIRCLE_RATE": 20,  # deg/s
    "FENCE_ENABLE": 0,
    "FENCE_TYPE": 7,  # 1 max altitude, 2 circle, 4 polygon
    "FENCE_ACTION": 1,  # 1 RTL (or land), 2 land
    "FENCE_RADIUS": 300,  # m
    "FENCE_ALT_MAX": 100,  # m
    "FENCE_MARGIN": 2,  # m
    "BATT_MONITOR": 4,
    "BATT_CAPACITY": 3300,  # mAh (ArduPilot's default)
    "BATT_LOW_MAH": 1000,  # mAh remaining that triggers the low failsafe
    "BATT_CRT_MAH": 500,  # mAh remaining that triggers the critical failsafe
    "BATT_LOW_VOLT": 0,
    "BATT_CRT_VOLT": 0,
    "BATT_FS_LOW_ACT": 2,  # 0 none, 1 land, 2 RTL
    "BATT_FS_CRT_ACT": 1,
    "BATT_ARM_MAH": 0,
    "FS_GCS_ENABLE": 0,  # 1 = RTL on GCS heartbeat loss
    "FS_GCS_TIMEOUT": 5,  # s
    "CAM_TRIGG_DIST": 0,  # m
    # A camera is configured (1 = servo shutter): CAMERA_FEEDBACK on each
    # photo. ArduPilot's own default is 0 (no camera: no CAMERA_FEEDBACK at
    # all); set CAM1_TYPE=0 to reproduce a bare SITL.
    "CAM1_TYPE": 1,
    "MIS_RESTART": 0,  # 0 = AUTO resumes an interrupted mission, 1 = restarts it
}

_NOMINAL_V = 14.8  # 4S pack
DEFAULT_CAPACITY_MAH = 3300.0  # ArduPilot's BATT_CAPACITY default
_HOME_ALT_OFFSET_M = 0.08  # EKF altitude above the ground when a real SITL set its home
_LAND_DISARM_S = 2.0  # "SIM Hit ground" -> "Disarming motors" on a real SITL
# What a real ArduCopter SITL says while it boots (17 texts), at its simulated
# times for a 42 s position estimate; scaled with ``prearm_delay_s``. "healthy" =
# the prearm health bit (~22 s), "position" = arming possible (~41 s).
_BOOT_TEXTS: tuple[tuple[float, str], ...] = (
    (0.0, "ArduCopter V4.7.0-dev"),
    (0.0, "Frame: QUAD/PLUS"),
    (0.2, "Barometer 1 calibration complete"),
    (0.2, "Barometer 2 calibration complete"),
    (1.0, "EKF3 IMU0 initialised"),
    (1.0, "EKF3 IMU1 initialised"),
    (1.0, "AHRS: EKF3 active"),
    (2.0, "EKF3 IMU0 tilt alignment complete"),
    (2.0, "EKF3 IMU1 tilt alignment complete"),
    (2.0, "EKF3 IMU0 MAG0 initial yaw alignment complete"),
    (2.0, "EKF3 IMU1 MAG0 initial yaw alignment complete"),
    (3.0, "GPS 1: detected u-blox"),
    (8.0, "EKF3 IMU0 origin set"),
    (8.0, "EKF3 IMU1 origin set"),
    (22.0, "Field Elevation Set: 0m"),
    (42.0, "EKF3 IMU0 is using GPS"),
    (42.0, "EKF3 IMU1 is using GPS"),
)
_GPS_LOCK_AT = 8.0 / 42.0  # shares of prearm_delay_s: lat/lon 0 before the lock
_HEALTHY_AT = 22.0 / 42.0
_FULL_V, _EMPTY_V = 16.8, 13.2

# Commands ArduCopter stores in a Location (frame checked on upload).
LOCATION_COMMANDS = frozenset(
    {
        _M.MAV_CMD_NAV_WAYPOINT,
        _M.MAV_CMD_NAV_LOITER_UNLIM,
        _M.MAV_CMD_NAV_LOITER_TURNS,
        _M.MAV_CMD_NAV_LOITER_TIME,
        _M.MAV_CMD_NAV_RETURN_TO_LAUNCH,
        _M.MAV_CMD_NAV_LAND,
        _M.MAV_CMD_NAV_TAKEOFF,
        _M.MAV_CMD_NAV_SPLINE_WAYPOINT,
        _M.MAV_CMD_NAV_DELAY,
        _M.MAV_CMD_DO_SET_ROI,
        _M.MAV_CMD_DO_SET_ROI_LOCATION,
        _M.MAV_CMD_DO_SET_HOME,
        _M.MAV_CMD_DO_LAND_START,
    }
)
_NAV_CMDS = frozenset(c for c in LOCATION_COMMANDS if c <= _M.MAV_CMD_NAV_LAST)
_SUPPORTED_CMDS = LOCATION_COMMANDS | {
    _M.MAV_CMD_CONDITION_DELAY,
    _M.MAV_CMD_CONDITION_YAW,
    _M.MAV_CMD_DO_JUMP,
    _M.MAV_CMD_DO_CHANGE_SPEED,
    _M.MAV_CMD_DO_SET_SERVO,
    _M.MAV_CMD_DO_SET_RELAY,
    _M.MAV_CMD_DO_SET_ROI_NONE,
    _M.MAV_CMD_DO_DIGICAM_CONFIGURE,
    _M.MAV_CMD_DO_DIGICAM_CONTROL,
    _M.MAV_CMD_DO_MOUNT_CONTROL,
    _M.MAV_CMD_DO_SET_CAM_TRIGG_DIST,
    _M.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW,
    _M.MAV_CMD_IMAGE_START_CAPTURE,
    _M.MAV_CMD_IMAGE_STOP_CAPTURE,
    _M.MAV_CMD_VIDEO_START_CAPTURE,
    _M.MAV_CMD_VIDEO_STOP_CAPTURE,
}
# AP_Mission::Mission_Command::type(): the names of "Mission: N <type>".
_COMMAND_TYPES: dict[int, str] = {
    _M.MAV_CMD_NAV_WAYPOINT: "WP",
    _M.MAV_CMD_NAV_SPLINE_WAYPOINT: "SplineWP",
    _M.MAV_CMD_NAV_RETURN_TO_LAUNCH: "RTL",
    _M.MAV_CMD_NAV_LOITER_UNLIM: "LoitUnlim",
    _M.MAV_CMD_NAV_LOITER_TIME: "LoitTime",
    _M.MAV_CMD_NAV_LOITER_TURNS: "LoitTurns",
    _M.MAV_CMD_NAV_TAKEOFF: "Takeoff",
    _M.MAV_CMD_NAV_LAND: "Land",
    _M.MAV_CMD_NAV_DELAY: "Delay",
    _M.MAV_CMD_CONDITION_DELAY: "CondDelay",
    _M.MAV_CMD_CONDITION_YAW: "CondYaw",
    _M.MAV_CMD_DO_CHANGE_SPEED: "ChangeSpeed",
    _M.MAV_CMD_DO_SET_HOME: "SetHome",
    _M.MAV_CMD_DO_SET_SERVO: "SetServo",
    _M.MAV_CMD_DO_SET_RELAY: "SetRelay",
    _M.MAV_CMD_DO_DIGICAM_CONFIGURE: "DigiCamCfg",
    _M.MAV_CMD_DO_DIGICAM_CONTROL: "DigiCamCtrl",
    _M.MAV_CMD_DO_SET_CAM_TRIGG_DIST: "SetCamTrigDst",
    _M.MAV_CMD_DO_SET_ROI: "SetROI",
    _M.MAV_CMD_DO_SET_ROI_LOCATION: "SetROI",  # name assumed (not in the excerpt read)
    _M.MAV_CMD_DO_SET_ROI_NONE: "SetROI",  # name assumed (not in the excerpt read)
    _M.MAV_CMD_DO_LAND_START: "LandStart",
    _M.MAV_CMD_DO_MOUNT_CONTROL: "MountControl",
    _M.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW: "GimbalPitchYaw",
    _M.MAV_CMD_DO_JUMP: "Jump",
}
# Do commands AP_Mission verifies itself: no MISSION_ITEM_REACHED for them.
_SILENT_DO = frozenset(
    {
        _M.MAV_CMD_DO_SET_SERVO,
        _M.MAV_CMD_DO_SET_RELAY,
        _M.MAV_CMD_DO_DIGICAM_CONFIGURE,
        _M.MAV_CMD_DO_DIGICAM_CONTROL,
        _M.MAV_CMD_DO_SET_CAM_TRIGG_DIST,
        _M.MAV_CMD_DO_GIMBAL_MANAGER_PITCHYAW,
    }
)
_ABS_FRAMES = {_M.MAV_FRAME_GLOBAL, _M.MAV_FRAME_GLOBAL_INT, _M.MAV_FRAME_MISSION}
_REL_FRAMES = {_M.MAV_FRAME_GLOBAL_RELATIVE_ALT, _M.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT}
_TERRAIN_FRAMES = {_M.MAV_FRAME_GLOBAL_TERRAIN_ALT, _M.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT}


@dataclass
class StoredItem:
    """One stored mission command, as ``MISSION_ITEM_INT`` fields (x, y raw)."""

    command: int
    frame: int
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    x: int = 0
    y: int = 0
    z: float = 0.0
    autocontinue: int = 1

    @property
    def has_location(self) -> bool:
        """True when ArduPilot stores this command with a Location."""
        return self.command in LOCATION_COMMANDS

    @property
    def is_nav(self) -> bool:
        """True for navigation commands (they move the vehicle)."""
        return self.command in _NAV_CMDS

    def readback_frame(self) -> int:
        """The frame ArduPilot reports for this item on download."""
        if not self.has_location:
            return _M.MAV_FRAME_GLOBAL
        if self.frame in _REL_FRAMES:
            return _M.MAV_FRAME_GLOBAL_RELATIVE_ALT
        if self.frame in _TERRAIN_FRAMES:
            return _M.MAV_FRAME_GLOBAL_TERRAIN_ALT
        return _M.MAV_FRAME_GLOBAL


def _u8(value: float) -> float:
    return float(min(255, max(0, int(value)))) if math.isfinite(value) else 0.0


def _u16(value: float) -> float:
    return float(min(65535, max(0, int(value)))) if math.isfinite(value) else 0.0


def store_params(command: int, params: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The four parameters as ArduCopter reads them back after storing them.

    ``AP_Mission::mavlink_int_to_mission_cmd`` packs a command into 15 bytes:
    NAV_WAYPOINT keeps only the hold time (uint16 s); NAV_LOITER_TURNS keeps
    MIN(255, turns) in a byte and |radius| in a byte (divided by 10 with a
    flag above 255 m) plus the direction; NAV_LOITER_TIME keeps uint16 s and
    the direction; DO_SET_CAM_TRIGG_DIST keeps the float distance and a byte
    "trigger now". Other commands are kept as sent (floats).
    """
    p1, p2, p3, p4 = params
    if command in (_M.MAV_CMD_NAV_WAYPOINT, _M.MAV_CMD_NAV_SPLINE_WAYPOINT):
        return (_u16(p1), 0.0, 0.0, 0.0)
    if command == _M.MAV_CMD_NAV_LOITER_TURNS:
        radius = abs(p3) if math.isfinite(p3) else 0.0
        stored = float(int(radius)) if radius <= 255 else float(min(255, int(radius * 0.1)) * 10)
        return (_u8(min(255.0, p1)), 0.0, -stored if p3 < 0 else stored, 1.0 if p4 > 0 else 0.0)
    if command == _M.MAV_CMD_NAV_LOITER_TIME:
        return (_u16(p1), 0.0, -1.0 if p3 < 0 else 1.0, 1.0 if p4 > 0 else 0.0)
    if command == _M.MAV_CMD_DO_SET_CAM_TRIGG_DIST:
        return (p1, 0.0, _u8(p3), 0.0)
    if command == _M.MAV_CMD_NAV_TAKEOFF:
        return (_u16(p1), 0.0, 0.0, 0.0)
    return (p1, p2, p3, p4)


def check_item(item: StoredItem) -> int:
    """``MAV_MISSION_RESULT`` for storing ``item`` (ArduPilot's upload checks)."""
    if item.command not in _SUPPORTED_CMDS:
        return _M.MAV_MISSION_UNSUPPORTED
    if item.has_location:
        if item.frame not in _ABS_FRAMES | _REL_FRAMES | _TERRAIN_FRAMES:
            return _M.MAV_MISSION_UNSUPPORTED_FRAME
        if item.command not in (_M.MAV_CMD_NAV_RETURN_TO_LAUNCH,) and (
            abs(item.x) > 900_000_000 or abs(item.y) > 1_800_000_000
        ):
            return (
                _M.MAV_MISSION_INVALID_PARAM5_X
                if abs(item.x) > 900_000_000
                else _M.MAV_MISSION_INVALID_PARAM6_Y
            )
    return _M.MAV_MISSION_ACCEPTED


class CopterModel:
    """A simulated ArduCopter, advanced in simulated seconds.

    Parameters
    ----------
    home_lat_deg, home_lon_deg : float
        Where it boots (WGS-84 degrees); becomes home once the position
        estimate is ready.
    home_alt_m : float, default 0.0
        Ground altitude AMSL at home, metres.
    battery_wh : float, optional
        Battery energy, watt-hours (sets ``BATT_CAPACITY`` at 14.8 V).
    battery_mah : float, optional
        Battery capacity; default (neither given) ArduPilot's ``BATT_CAPACITY``
        3300 mAh.
    prearm_delay_s : float, default 42.0
        Simulated seconds after boot before a position estimate exists (arming
        possible). Earlier shares of it: the GPS lock (8/42: GLOBAL_POSITION_INT
        at lat = lon = 0 before) and the prearm health bit and home (22/42:
        arming then fails with "Arm: Need Position Estimate" until the estimate).
    params : dict, optional
        Parameter overrides (ArduPilot names).

    Attributes
    ----------
    events : list of tuple
        Queued notifications for the ground, drained by the server:
        ``("text", severity, text)``,
        ``("photo", dict)``, ``("home",)``, ``("param", name)``.
    """

    def __init__(
        self,
        *,
        home_lat_deg: float,
        home_lon_deg: float,
        home_alt_m: float = 0.0,
        battery_wh: float | None = None,
        prearm_delay_s: float = 42.0,
        params: dict[str, float] | None = None,
        battery_mah: float | None = None,
    ) -> None:
        if not (math.isfinite(home_lat_deg) and -90.0 < home_lat_deg < 90.0):
            raise ValueError(f"home_lat_deg must be in (-90, 90), got {home_lat_deg!r}")
        if not (math.isfinite(home_lon_deg) and -180.0 <= home_lon_deg <= 180.0):
            raise ValueError(f"home_lon_deg must be in [-180, 180], got {home_lon_deg!r}")
        if battery_wh is not None and not (math.isfinite(battery_wh) and battery_wh > 0):
            raise ValueError(
                f"battery_wh must be a positive number of watt-hours, got {battery_wh!r}"
            )
        if battery_mah is not None and not (math.isfinite(battery_mah) and battery_mah > 0):
            raise ValueError(f"battery_mah must be a positive number of mAh, got {battery_mah!r}")
        if battery_mah is None:
            battery_mah = (
                DEFAULT_CAPACITY_MAH if battery_wh is None else battery_wh / _NOMINAL_V * 1000.0
            )
        battery_wh = battery_mah * _NOMINAL_V / 1000.0
        if not (math.isfinite(prearm_delay_s) and prearm_delay_s >= 0):
            raise ValueError(f"prearm_delay_s must be >= 0 seconds, got {prearm_delay_s!r}")
        self.origin_lat = float(home_lat_deg)
        self.origin_lon = float(home_lon_deg)
        self.ground_alt_m = float(home_alt_m)
        self.params: dict[str, float] = dict(DEFAULT_PARAMS)
        self.params["BATT_CAPACITY"] = round(battery_mah)
        self.params["BATT_LOW_MAH"] = round(0.2 * self.params["BATT_CAPACITY"])
        self.params["BATT_CRT_MAH"] = round(0.1 * self.params["BATT_CAPACITY"])
        for name, value in (params or {}).items():
            if name not in self.params:
                raise ValueError(f"unknown parameter {name!r}; known: {sorted(self.params)}")
            self.params[name] = float(value)
        self.prearm_delay_s = float(prearm_delay_s)
        self.battery_wh = float(battery_wh)
        self.energy_used_wh = 0.0
        self.t_s = 0.0
        self.events: list[tuple[Any, ...]] = []
        # state
        self.east_m = 0.0
        self.north_m = 0.0
        self.alt_m = 0.0  # above home
        self.vel = (0.0, 0.0, 0.0)  # east, north, up m/s
        self.yaw_deg = 0.0
        self.armed = False
        self.mode = "STABILIZE"
        self.landed = True
        self.home_set = False
        self.home = (self.origin_lat, self.origin_lon, self.ground_alt_m)
        self.mission: list[StoredItem] = [self._home_item()]
        self.mission_current = 0
        self.mission_running = False
        self.auto_armed = False
        self._nav: dict[str, Any] | None = None  # active navigation target
        self._nav_index = 0
        # AP_Mission's do-command state: the active do command, whether it is verified,
        # and whether none is left before the next nav command
        self._do_index: int | None = None
        self._do_done = True
        self._do_all_done = True
        self._do_started = 0.0
        self.reached_slot: int | None = None  # GCS_MAVLINK mission_item_reached_index
        self._guided_target: tuple[float, float, float] | None = None
        self._roi: tuple[float, float] | None = None
        self._speed_override: float | None = None
        self._landed_since = 0.0
        self._last_prearm_text = -1e9
        self._batt_level = 0  # 0 ok, 1 low, 2 critical
        self._fence_breached = False
        self._trigg_dist_m = 0.0
        self._trigg_last: tuple[float, float] | None = None
        self._capture: dict[str, float] | None = None
        self.photo_count = 0
        self._boot_texts = [(at * self.prearm_delay_s / 42.0, text) for at, text in _BOOT_TEXTS]
        self._touchdown_at: float | None = None
        self.last_gcs_heartbeat_s = 0.0
        self._gcs_failsafe = False

    # ------------------------------------------------------------------ geometry
    def to_latlon(self, east_m: float, north_m: float) -> tuple[float, float]:
        """(lat, lon) degrees of a local east/north offset in metres from the boot point."""
        lat = self.origin_lat + math.degrees(north_m / _EARTH_R_M)
        lon = self.origin_lon + math.degrees(
            east_m / (_EARTH_R_M * math.cos(math.radians(self.origin_lat)))
        )
        return lat, lon

    def to_local(self, lat: float, lon: float) -> tuple[float, float]:
        """(east_m, north_m) of a WGS-84 position relative to the boot point."""
        north = math.radians(lat - self.origin_lat) * _EARTH_R_M
        east = (
            math.radians(lon - self.origin_lon)
            * _EARTH_R_M
            * math.cos(math.radians(self.origin_lat))
        )
        return east, north

    @property
    def lat_lon(self) -> tuple[float, float]:
        """Current (lat, lon) in degrees."""
        return self.to_latlon(self.east_m, self.north_m)

    @property
    def home_local(self) -> tuple[float, float]:
        """Home as (east_m, north_m)."""
        return self.to_local(self.home[0], self.home[1])

    def _home_item(self) -> StoredItem:
        return StoredItem(
            _M.MAV_CMD_NAV_WAYPOINT,
            _M.MAV_FRAME_GLOBAL,
            x=round(self.home[0] * 1e7),
            y=round(self.home[1] * 1e7),
            z=self.home[2],
        )

    # ------------------------------------------------------------------ status
    @property
    def position_ok(self) -> bool:
        """True once the (simulated) EKF has a position estimate (arming possible)."""
        return self.t_s >= self.prearm_delay_s

    @property
    def gps_lock(self) -> bool:
        """True once the GPS has a fix (before it, GLOBAL_POSITION_INT is at lat = lon = 0)."""
        return self.t_s >= self.prearm_delay_s * _GPS_LOCK_AT

    @property
    def prearm_healthy(self) -> bool:
        """The SYS_STATUS prearm health bit: on at ~22 s, before arming is possible (~42 s)."""
        if self.params["ARMING_CHECK"] == 0:
            return True
        return self.t_s >= self.prearm_delay_s * _HEALTHY_AT and self._battery_ok()

    def _battery_ok(self) -> bool:
        return self._batt_level == 0 and not (
            self.params["BATT_ARM_MAH"] > 0 and self.remaining_mah < self.params["BATT_ARM_MAH"]
        )

    @property
    def battery_remaining_pct(self) -> float:
        """Battery energy left, percent."""
        return max(0.0, 100.0 * (1.0 - self.energy_used_wh / self.battery_wh))

    @property
    def battery_voltage_v(self) -> float:
        """Pack voltage, linear between 16.8 V (full) and 13.2 V (empty)."""
        return _EMPTY_V + (_FULL_V - _EMPTY_V) * self.battery_remaining_pct / 100.0

    @property
    def consumed_mah(self) -> float:
        """Charge used so far at the nominal 14.8 V, mAh."""
        return self.energy_used_wh / _NOMINAL_V * 1000.0

    @property
    def remaining_mah(self) -> float:
        """``BATT_CAPACITY`` minus the charge used, mAh."""
        return max(0.0, self.params["BATT_CAPACITY"] - self.consumed_mah)

    def power_w(self) -> float:
        """Electrical power drawn now: 0 disarmed, 20 W on the ground, hover + speed + climb terms."""
        if not self.armed:
            return 0.0
        if self.landed:
            return 20.0
        ve, vn, vu = self.vel
        return 180.0 + 2.0 * math.hypot(ve, vn) + 15.0 * max(vu, 0.0)

    def current_a(self) -> float:
        """Battery current now, amperes."""
        return self.power_w() / self.battery_voltage_v

    def prearm_failure(self) -> str | None:
        """The first prearm check that fails, or None when it can arm."""
        if self.params["ARMING_CHECK"] == 0:
            return None
        if not self.position_ok:
            return "Need Position Estimate"
        if not self._battery_ok():
            return "Battery 1 below minimum arming capacity"
        return None

    def text(self, severity: int, message: str) -> None:
        """Queue a STATUSTEXT for the ground."""
        self.events.append(("text", severity, message))

    @property
    def mode_number(self) -> int:
        """``HEARTBEAT.custom_mode`` of the current mode."""
        return COPTER_MODES[self.mode]

    # ------------------------------------------------------------------ speeds
    def _wp_speed(self) -> float:
        # observed on a real SITL: DO_CHANGE_SPEED 12 with WPNAV_SPEED 1000 flew 10 m/s
        limit = self.params["WPNAV_SPEED"] / 100.0
        if self._speed_override:
            return min(self._speed_override, limit)
        return limit

    def _up_speed(self) -> float:
        return self.params["WPNAV_SPEED_UP"] / 100.0

    def _down_speed(self) -> float:
        if self.alt_m <= self.params["LAND_ALT_LOW"] / 100.0 and self._descending_to_land():
            return self.params["LAND_SPEED"] / 100.0
        return self.params["WPNAV_SPEED_DN"] / 100.0

    def _descending_to_land(self) -> bool:
        return (
            self._nav is not None
            and self._nav.get("kind") == "land"
            and self._nav.get("phase") == "descend"
        )

    # ------------------------------------------------------------------ commands
    def arm(self, *, force: bool = False) -> tuple[bool, str]:
        """Try to arm; return (accepted, reason text)."""
        if self.armed:
            return True, ""
        if not force:
            failure = self.prearm_failure()
            if failure:
                # AP_Arming: the periodic pre-arm checks say "PreArm:", the checks run
                # when arming "Arm:" — a real SITL's prearm bit is on from ~22 s while
                # arming is refused with "Arm: Need Position Estimate" until ~41 s
                msg = f"{'Arm' if self.prearm_healthy else 'PreArm'}: {failure}"
                self.text(_M.MAV_SEVERITY_CRITICAL, msg)
                return False, msg
            if self.mode in ("AUTO", "RTL", "LAND", "BRAKE"):
                msg = f"Arm: {self.mode} mode not armable"
                self.text(_M.MAV_SEVERITY_CRITICAL, msg)
                return False, msg
        self.armed = True
        self.landed = True
        self._landed_since = self.t_s
        self.auto_armed = False
        self.text(_M.MAV_SEVERITY_INFO, "Arming motors")
        return True, ""

    def disarm(self, *, force: bool = False, reason: str = "") -> tuple[bool, str]:
        """Disarm; refused in flight unless forced."""
        if not self.armed:
            return True, ""
        if not self.landed and not force:
            msg = "Disarm: vehicle is flying"
            self.text(_M.MAV_SEVERITY_CRITICAL, msg)
            return False, msg
        self.armed = False
        self.auto_armed = False
        self.mission_running = False
        self._nav = None
        self._guided_target = None
        self.vel = (0.0, 0.0, 0.0)
        if not self.landed:
            self.landed = self.alt_m <= 0.1
        self.text(_M.MAV_SEVERITY_INFO, "Disarming motors")
        return True, ""

    def set_mode(self, name: str, *, reason: str = "") -> tuple[bool, str]:
        """Change flight mode as ArduCopter would; return (accepted, reason text)."""
        if name not in COPTER_MODES:
            return False, f"Mode change failed: unknown mode {name!r}"
        if name in _NEEDS_POSITION and self.t_s < self.prearm_delay_s * _HEALTHY_AT:
            msg = f"Mode change to {name} failed: requires position"  # Copter::mode_change_failed
            self.text(_M.MAV_SEVERITY_WARNING, msg)
            return False, msg
        if name == "AUTO" and self.armed and self.landed:
            first = next((it for it in self.mission[1:] if it.is_nav), None)
            if first is None or first.command != _M.MAV_CMD_NAV_TAKEOFF:
                msg = "Auto: Missing Takeoff Cmd"
                self.text(_M.MAV_SEVERITY_WARNING, msg)
                return False, msg
        if name == "AUTO" and len(self.mission) <= 1 and self.armed:
            msg = "Auto: No Mission"
            self.text(_M.MAV_SEVERITY_WARNING, msg)
            return False, msg
        previous = self.mode
        self.mode = name
        self._nav = None
        self._guided_target = None
        if name != "AUTO":
            self.mission_running = False
        if name == "AUTO" and self.armed:
            self._start_mission(resume=previous == "AUTO")
        elif name == "RTL" and self.armed:
            self._begin_rtl()
        elif name == "LAND" and self.armed:
            self._nav = {"kind": "land", "phase": "descend"}
        elif name in ("GUIDED", "LOITER", "BRAKE", "ALT_HOLD") and self.armed and not self.landed:
            self._guided_target = (self.east_m, self.north_m, self.alt_m)
        if reason:
            self.text(_M.MAV_SEVERITY_WARNING if reason != "GCS" else _M.MAV_SEVERITY_INFO, reason)
        return True, ""

    def takeoff(self, alt_m: float) -> tuple[bool, str]:
        """GUIDED ``NAV_TAKEOFF`` to ``alt_m`` above home."""
        if self.mode != "GUIDED" or not self.armed or not self.landed:
            return False, "Takeoff requires GUIDED, armed and landed"
        if not (math.isfinite(alt_m) and alt_m > 0):
            return False, f"Takeoff altitude must be > 0 m, got {alt_m!r}"
        self.landed = False
        self._guided_target = (self.east_m, self.north_m, float(alt_m))
        return True, ""

    def guided_goto(self, lat: float, lon: float, alt_rel_m: float) -> bool:
        """GUIDED position target (``SET_POSITION_TARGET_GLOBAL_INT``)."""
        if self.mode != "GUIDED" or not self.armed or self.landed:
            return False
        east, north = self.to_local(lat, lon)
        self._guided_target = (east, north, float(alt_rel_m))
        return True

    def mission_start(self, first: float = 0.0, last: float = 0.0) -> tuple[bool, str]:
        """``MAV_CMD_MISSION_START``: switch to AUTO (if needed) and let it climb.

        ArduCopter (``handle_MAV_CMD_MISSION_START``) refuses a first/last item
        (params 1, 2 not 0) with ``MAV_RESULT_DENIED``: the caller checks.
        """
        if first or last:
            return False, "first/last item not supported"
        if self.mode != "AUTO":
            ok, msg = self.set_mode("AUTO")
            if not ok:
                return False, msg
        if not self.armed:
            return False, "Mission start requires armed"
        self.auto_armed = True
        if not self.mission_running:
            self._start_mission(resume=False)
        return True, ""

    def force_low_battery(self, level: str = "low") -> None:
        """Test hook: drain the battery to just below the ``low`` or ``critical`` threshold."""
        key = {"low": "BATT_LOW_MAH", "critical": "BATT_CRT_MAH"}.get(level)
        if key is None:
            raise ValueError(f"level must be 'low' or 'critical', got {level!r}")
        target_mah = self.params[key] * 0.98
        consumed_mah = self.params["BATT_CAPACITY"] - target_mah
        self.energy_used_wh = max(self.energy_used_wh, consumed_mah * _NOMINAL_V / 1000.0)

    # ------------------------------------------------------------------ mission
    def _start_mission(self, *, resume: bool) -> None:
        self.mission_running = len(self.mission) > 1
        if not self.mission_running:
            return
        start = self.mission_current if resume and self.mission_current >= 1 else 1
        self._advance_nav(start)

    def set_current(self, seq: int) -> None:
        """``MISSION_SET_CURRENT``: continue the mission from item ``seq``."""
        self.mission_current = seq
        if self.mode == "AUTO" and self.mission_running:
            self._advance_nav(seq)

    def _loc(self, item: StoredItem, *, keep_alt: bool = False) -> tuple[float, float, float]:
        if item.x == 0 and item.y == 0:
            east, north = self.east_m, self.north_m
        else:
            east, north = self.to_local(item.x / 1e7, item.y / 1e7)
        if keep_alt and item.z == 0:
            alt = self.alt_m
        elif item.frame in _REL_FRAMES or item.frame in _TERRAIN_FRAMES:
            alt = item.z
        else:
            alt = item.z - self.home[2]
        return east, north, alt

    def _advance_nav(self, start: int) -> None:
        """``AP_Mission::advance_current_nav_cmd``: start the next nav command from ``start``.

        Walking from ``start``, the *first* do command met before the nav
        command is started at once (only one do command is active at a time),
        then the nav command starts. The do commands between a nav command
        and the next one therefore run when that next one starts — i.e. when
        the preceding nav command has *completed* — one per update
        (:meth:`_update_do`), never past the next nav command.
        """
        self._do_index = None
        self._do_all_done = False
        index = start
        while index < len(self.mission):
            item = self.mission[index]
            if item.command == _M.MAV_CMD_DO_JUMP:  # not simulated: skipped
                index += 1
                continue
            if item.is_nav:
                self._nav_index = index
                self.mission_current = index
                self._start_command(index, item)
                self._start_nav(item)
                if self._do_index is None:
                    self._do_all_done = True  # no do command before this nav completes
                return
            if self._do_index is None:
                self._do_index = index
                self._do_started = self.t_s
                self._start_command(index, item)
                self._run_do(index, item)
            index += 1
        # no nav command left: mission complete, hover (or disarm if landed)
        self.mission_running = False
        self._nav = None
        self.text(_M.MAV_SEVERITY_INFO, "Mission Complete")
        if self.landed and self.armed:
            self.disarm(reason="mission complete")
        else:
            self._guided_target = (self.east_m, self.north_m, self.alt_m)

    def _start_command(self, seq: int, item: StoredItem) -> None:
        """``AP_Mission::start_command``: announce "Mission: N <type>"."""
        name = _COMMAND_TYPES.get(item.command, "?")
        self.text(_M.MAV_SEVERITY_INFO, f"Mission: {seq} {name}")

    def _update_do(self) -> None:
        """The do half of ``AP_Mission::update``: verify the active do command or start the next.

        A loaded do command is verified (CONDITION_DELAY waits its seconds,
        the others are done at once; ``MISSION_ITEM_REACHED`` for those the
        vehicle code verifies); otherwise the next do command *before the next
        nav command* is started (``advance_current_do_cmd``).
        """
        if not self.mission_running or self.mode != "AUTO":
            return
        if self._do_index is not None and not self._do_done:
            item = self.mission[self._do_index]
            waiting = self.t_s - self._do_started < max(item.param1, 0.0)
            if item.command == _M.MAV_CMD_CONDITION_DELAY and waiting:
                return
            self._do_done = True
            if item.command not in _SILENT_DO:
                self.send_reached(self._do_index)
            return
        if self._do_all_done or self._do_index is None:
            return
        index = self._do_index + 1
        while index < len(self.mission) and self.mission[index].command == _M.MAV_CMD_DO_JUMP:
            index += 1
        if index >= len(self.mission) or self.mission[index].is_nav:
            self._do_all_done = True
            return
        self._do_index = index
        self._do_started = self.t_s
        self._start_command(index, self.mission[index])
        self._run_do(index, self.mission[index])

    def send_reached(self, seq: int) -> None:
        """``GCS::send_mission_item_reached_message``: fill the one deferred slot.

        Each link keeps one ``mission_item_reached_index``; a second item
        reached before the message went out overwrites the first (the server
        sends the slot once per step).
        """
        self.reached_slot = seq

    def _start_nav(self, item: StoredItem) -> None:
        cmd = item.command
        self._guided_target = None
        if cmd == _M.MAV_CMD_NAV_TAKEOFF:
            _, _, alt = self._loc(item)
            self._nav = {"kind": "takeoff", "alt": max(alt, 1.0)}
        elif (
            cmd in (_M.MAV_CMD_NAV_WAYPOINT, _M.MAV_CMD_NAV_SPLINE_WAYPOINT)
            or cmd == _M.MAV_CMD_NAV_LOITER_TIME
        ):
            self._nav = {
                "kind": "goto",
                "target": self._loc(item, keep_alt=True),
                "hold": max(item.param1, 0.0),
            }
        elif cmd == _M.MAV_CMD_NAV_LOITER_UNLIM:
            self._nav = {"kind": "goto", "target": self._loc(item, keep_alt=True), "hold": math.inf}
        elif cmd == _M.MAV_CMD_NAV_LOITER_TURNS:
            east, north, alt = self._loc(item, keep_alt=True)
            radius = abs(item.param3) or self.params["CIRCLE_RADIUS"] / 100.0
            self._nav = {
                "kind": "circle",
                "center": (east, north),
                "alt": alt,
                "radius": radius,
                "turns": max(int(min(item.param1, 255)), 0),
                "ccw": item.param3 < 0,
                "phase": "approach",
                "angle": 0.0,
            }
        elif cmd == _M.MAV_CMD_NAV_RETURN_TO_LAUNCH:
            self._begin_rtl()
        elif cmd == _M.MAV_CMD_NAV_LAND:
            if item.x == 0 and item.y == 0:
                self._nav = {"kind": "land", "phase": "descend"}
            else:
                east, north, _ = self._loc(item)
                self._nav = {
                    "kind": "land",
                    "phase": "approach",
                    "target": (east, north, self.alt_m),
                }
        else:  # NAV_DELAY and others: complete at once
            self._nav = {"kind": "instant"}

    def _run_do(self, seq: int, item: StoredItem) -> None:
        self._do_done = False
        cmd = item.command
        if cmd == _M.MAV_CMD_DO_CHANGE_SPEED and item.param2 > 0:
            self._speed_override = float(item.param2)
        elif cmd in (_M.MAV_CMD_DO_SET_ROI, _M.MAV_CMD_DO_SET_ROI_LOCATION):
            if item.x == 0 and item.y == 0:
                self._roi = None
            else:
                self._roi = self.to_local(item.x / 1e7, item.y / 1e7)
        elif cmd == _M.MAV_CMD_DO_SET_ROI_NONE:
            self._roi = None
        elif cmd == _M.MAV_CMD_DO_SET_CAM_TRIGG_DIST:
            self.set_trigger_distance(item.param1, trigger_now=item.param3 == 1)
        elif cmd == _M.MAV_CMD_DO_DIGICAM_CONTROL:
            if item.x == 1:
                self.take_photo()
        elif cmd == _M.MAV_CMD_IMAGE_START_CAPTURE:
            self.start_capture(item.param2, item.param3)
        elif cmd == _M.MAV_CMD_IMAGE_STOP_CAPTURE:
            self._capture = None

    def _nav_complete(self) -> None:
        seq = self._nav_index
        self.send_reached(seq)
        self._nav = None
        if self.mode == "AUTO" and self.mission_running:
            self._advance_nav(seq + 1)

    # ------------------------------------------------------------------ camera
    def set_trigger_distance(self, distance_m: float, *, trigger_now: bool = False) -> None:
        """``DO_SET_CAM_TRIGG_DIST``: a photo every ``distance_m`` flown (0 stops)."""
        self._trigg_dist_m = max(float(distance_m), 0.0)
        self._trigg_last = None
        if trigger_now:
            self.take_photo()

    def start_capture(self, interval_s: float, total: float) -> None:
        """``IMAGE_START_CAPTURE``: ``total`` photos (0 = until stopped) every ``interval_s``."""
        total_i = int(total)
        if interval_s <= 0 or total_i == 1:
            self.take_photo()
            return
        self._capture = {
            "interval": float(interval_s),
            "left": total_i if total_i > 0 else -1,
            "next": self.t_s,
        }

    def take_photo(self) -> None:
        """Take one photo now (queues a CAMERA_FEEDBACK); nothing without ``CAM1_TYPE``."""
        if not self.params.get("CAM1_TYPE", 0):
            return  # AP_Camera has no backend: the trigger does nothing
        self.photo_count += 1
        lat, lon = self.lat_lon
        self.events.append(
            (
                "photo",
                {
                    "index": self.photo_count,
                    "lat": lat,
                    "lon": lon,
                    "alt_rel": self.alt_m,
                    "alt_msl": self.alt_m + self.home[2],
                    "yaw": self.yaw_deg,
                },
            )
        )

    def _camera_update(self) -> None:
        if self._trigg_dist_m > 0 and not self.landed:
            here = (self.east_m, self.north_m)
            if self._trigg_last is None:
                self._trigg_last = here
            elif math.dist(here, self._trigg_last) >= self._trigg_dist_m:
                self._trigg_last = here
                self.take_photo()
        cap = self._capture
        if cap is not None and self.t_s >= cap["next"]:
            self.take_photo()
            cap["next"] = self.t_s + cap["interval"]
            if cap["left"] > 0:
                cap["left"] -= 1
                if cap["left"] == 0:
                    self._capture = None

    # ------------------------------------------------------------------ RTL / land
    def _begin_rtl(self) -> None:
        rtl_alt = max(self.alt_m, self.params["RTL_ALT"] / 100.0)
        hx, hy = self.home_local
        if self.landed:
            self._nav = {"kind": "land", "phase": "descend"}
            return
        self._nav = {
            "kind": "rtl",
            "phase": "climb",
            "alt": rtl_alt,
            "home": (hx, hy),
            "loiter_until": None,
        }

    # ------------------------------------------------------------------ physics
    def _move_toward(
        self, target: tuple[float, float, float], dt: float, speed: float | None = None
    ) -> float:
        """Fly toward target; return the remaining 3-D distance."""
        tx, ty, tz = target
        dx, dy = tx - self.east_m, ty - self.north_m
        dist_h = math.hypot(dx, dy)
        step_h = min(dist_h, (speed or self._wp_speed()) * dt)
        ve = vn = 0.0
        if dist_h > 1e-9:
            ve, vn = dx / dist_h * step_h / dt, dy / dist_h * step_h / dt
            self.east_m += dx / dist_h * step_h
            self.north_m += dy / dist_h * step_h
            if step_h > 1e-6:
                self.yaw_deg = math.degrees(math.atan2(dx, dy)) % 360.0
        dz = tz - self.alt_m
        rate = self._up_speed() if dz > 0 else self._down_speed()
        step_z = max(-rate * dt, min(rate * dt, dz))
        self.alt_m += step_z
        self.vel = (ve, vn, step_z / dt)
        return math.sqrt(
            (tx - self.east_m) ** 2 + (ty - self.north_m) ** 2 + (tz - self.alt_m) ** 2
        )

    def _descend(self, dt: float) -> None:
        if self._touchdown_at is not None:  # on the ground, waiting for the land detector
            self.vel = (0.0, 0.0, 0.0)
            return
        rate = self.params["LAND_SPEED"] / 100.0
        if self.alt_m > self.params["LAND_ALT_LOW"] / 100.0:
            rate = self.params["WPNAV_SPEED_DN"] / 100.0
        self.alt_m = max(0.0, self.alt_m - rate * dt)
        self.vel = (0.0, 0.0, -rate)
        if self.alt_m <= 0.0:
            self._touchdown()

    def _touchdown(self) -> None:
        """Ground contact: "SIM Hit ground", then land complete and disarm 2 s later."""
        speed = abs(self.vel[2])
        self.alt_m = 0.0
        self.vel = (0.0, 0.0, 0.0)
        self.landed = True
        self._landed_since = self.t_s
        self._touchdown_at = self.t_s
        self.text(_M.MAV_SEVERITY_INFO, f"SIM Hit ground at {speed:.1f} m/s")
        if self._nav is not None:
            self._nav["phase"] = "landed"

    def _land_complete(self) -> None:
        self._touchdown_at = None
        if (
            self.mode == "AUTO"
            and self._nav is not None
            and self._nav.get("kind") in ("land", "rtl")
        ):
            self.send_reached(self._nav_index)
            self.mission_running = False
        self._nav = None
        self.text(_M.MAV_SEVERITY_INFO, "Land complete")
        self.disarm(reason="landed")

    def _fly_nav(self, dt: float) -> None:
        nav = self._nav
        if nav is None:
            return
        kind = nav["kind"]
        radius = self.params["WPNAV_RADIUS"] / 100.0
        if kind == "instant":
            self._nav_complete()
        elif kind == "takeoff":
            if self.landed and not self.auto_armed:
                return  # AUTO on the ground waits for MISSION_START
            self.landed = False
            self._move_toward((self.east_m, self.north_m, nav["alt"]), dt)
            if self.alt_m >= nav["alt"] - 0.5:
                self._nav_complete()
        elif kind == "goto":
            remaining = self._move_toward(nav["target"], dt)
            if remaining <= radius:
                nav.setdefault("arrived", self.t_s)
                if self.t_s - nav["arrived"] >= nav["hold"]:
                    self._nav_complete()
        elif kind == "circle":
            self._fly_circle(nav, dt, radius)
        elif kind == "rtl":
            self._fly_rtl(nav, dt, radius)
        elif kind == "land":
            if nav["phase"] == "approach":
                if self._move_toward(nav["target"], dt) <= radius:
                    nav["phase"] = "descend"
            else:
                self._descend(dt)

    def _fly_circle(self, nav: dict[str, Any], dt: float, wp_radius: float) -> None:
        cx, cy = nav["center"]
        r = nav["radius"]
        if nav["phase"] == "approach":
            dx, dy = self.east_m - cx, self.north_m - cy
            d = math.hypot(dx, dy)
            if d < 1e-6:
                dx, dy, d = 0.0, -1.0, 1.0
            edge = (cx + dx / d * r, cy + dy / d * r, nav["alt"])
            if self._move_toward(edge, dt) <= wp_radius:
                nav["phase"] = "orbit"
                nav["theta"] = math.atan2(self.north_m - cy, self.east_m - cx)
                nav["turn"] = 1
                self.text(_M.MAV_SEVERITY_INFO, f"starting circle 1/{nav['turns']}")
            return
        # AC_Circle::calc_velocities: speed <= WPNAV_SPEED and <= sqrt(0.5 * accel * r)
        # ("not more than half our max acceleration towards the centre"), rate <= CIRCLE_RATE
        speed = min(self._wp_speed(), math.sqrt(0.5 * self.params["WPNAV_ACCEL"] / 100.0 * r))
        omega = min(math.radians(abs(self.params["CIRCLE_RATE"]) or 20.0), speed / r)
        step = omega * dt * (1.0 if nav["ccw"] else -1.0)
        nav["theta"] += step
        nav["angle"] += abs(step)
        old = (self.east_m, self.north_m)
        self.east_m = cx + r * math.cos(nav["theta"])
        self.north_m = cy + r * math.sin(nav["theta"])
        dz = nav["alt"] - self.alt_m
        rate = self._up_speed() if dz > 0 else self._down_speed()
        step_z = max(-rate * dt, min(rate * dt, dz))
        self.alt_m += step_z
        self.vel = ((self.east_m - old[0]) / dt, (self.north_m - old[1]) / dt, step_z / dt)
        self.yaw_deg = math.degrees(math.atan2(self.vel[0], self.vel[1])) % 360.0
        if nav["angle"] >= 2.0 * math.pi * nav["turn"]:
            # a text per turn begun, as a real SITL says it (up to "3/2" for 2 turns)
            nav["turn"] += 1
            self.text(_M.MAV_SEVERITY_INFO, f"starting circle {nav['turn']}/{nav['turns']}")
        if nav["angle"] >= 2.0 * math.pi * nav["turns"]:
            self._nav_complete()

    def _fly_rtl(self, nav: dict[str, Any], dt: float, wp_radius: float) -> None:
        hx, hy = nav["home"]
        speed = self.params["RTL_SPEED"] / 100.0 or None
        if nav["phase"] == "climb":
            self._move_toward((self.east_m, self.north_m, nav["alt"]), dt)
            if self.alt_m >= nav["alt"] - 0.5:
                nav["phase"] = "return"
        elif nav["phase"] == "return":
            if self._move_toward((hx, hy, nav["alt"]), dt, speed) <= wp_radius:
                nav["phase"] = "loiter"
                nav["loiter_until"] = self.t_s + self.params["RTL_LOIT_TIME"] / 1000.0
        elif nav["phase"] == "loiter":
            self.vel = (0.0, 0.0, 0.0)
            if self.t_s >= nav["loiter_until"]:
                nav["phase"] = "descend"
        else:
            self._descend(dt)

    def _yaw_to_roi(self) -> None:
        if self._roi is not None and not self.landed:
            dx, dy = self._roi[0] - self.east_m, self._roi[1] - self.north_m
            if math.hypot(dx, dy) > 1.0:
                self.yaw_deg = math.degrees(math.atan2(dx, dy)) % 360.0

    def step(self, dt: float) -> None:
        """Advance the simulation by ``dt`` simulated seconds."""
        if dt <= 0:
            return
        self.t_s += dt
        while self._boot_texts and self._boot_texts[0][0] <= self.t_s:
            self.text(_M.MAV_SEVERITY_INFO, self._boot_texts.pop(0)[1])
        if self.prearm_healthy and not self.home_set:
            self.home_set = True
            self.home = (self.origin_lat, self.origin_lon, self.ground_alt_m + _HOME_ALT_OFFSET_M)
            self.mission[0] = self._home_item()
            self.events.append(("home",))
        if not self.armed and not self.prearm_healthy and self.t_s - self._last_prearm_text >= 30.0:
            failure = self.prearm_failure()
            if failure:
                self._last_prearm_text = self.t_s
                self.text(_M.MAV_SEVERITY_CRITICAL, f"PreArm: {failure}")
        if self.armed:
            if (self.mode == "AUTO" and self.mission_running) or self.mode in ("RTL", "LAND"):
                self._fly_nav(dt)
                self._update_do()
            elif self._guided_target is not None:
                if self.landed and self.mode == "GUIDED" and self._guided_target[2] > 0:
                    self.landed = False
                if not self.landed:
                    self._move_toward(self._guided_target, dt)
            else:
                self.vel = (0.0, 0.0, 0.0)
            self._yaw_to_roi()
            if self._touchdown_at is not None and self.t_s - self._touchdown_at >= _LAND_DISARM_S:
                self._land_complete()
            self.energy_used_wh += self.power_w() * dt / 3600.0
            self._camera_update()
            self._check_battery()
            self._check_fence()
            self._check_gcs()
            if (
                (
                    self.armed
                    and self.landed
                    and self.t_s - self._landed_since >= self.params["DISARM_DELAY"] > 0
                )
                and not (self.mode == "AUTO" and self.auto_armed)
                and self._guided_target is None
            ):
                self.disarm(reason="auto disarm")
        else:
            self.vel = (0.0, 0.0, 0.0)

    # ------------------------------------------------------------------ failsafes
    def _check_battery(self) -> None:
        remaining = self.remaining_mah
        level = 0
        if self.params["BATT_CRT_MAH"] > 0 and remaining < self.params["BATT_CRT_MAH"]:
            level = 2
        elif self.params["BATT_LOW_MAH"] > 0 and remaining < self.params["BATT_LOW_MAH"]:
            level = 1
        if level <= self._batt_level:
            return
        self._batt_level = level
        word = "critical" if level == 2 else "low"
        self.text(
            _M.MAV_SEVERITY_WARNING,
            f"Battery 1 is {word} {self.battery_voltage_v:.2f}V used {self.consumed_mah:.0f} mAh",
        )
        action = int(self.params["BATT_FS_CRT_ACT" if level == 2 else "BATT_FS_LOW_ACT"])
        if self.landed or action == 0:
            return
        if action == 2 and self.mode not in ("RTL", "LAND"):
            self.set_mode("RTL", reason="Battery failsafe: RTL")
        elif action == 1 and self.mode != "LAND":
            self.set_mode("LAND", reason="Battery failsafe: LAND")

    def _check_fence(self) -> None:
        if self.params["FENCE_ENABLE"] < 1 or self.landed or self._fence_breached:
            return
        ftype = int(self.params["FENCE_TYPE"])
        hx, hy = self.home_local
        breach = ""
        if ftype & 1 and self.alt_m > self.params["FENCE_ALT_MAX"]:
            breach = "max altitude"
        elif (
            ftype & 2
            and math.hypot(self.east_m - hx, self.north_m - hy) > self.params["FENCE_RADIUS"]
        ):
            breach = "circle"
        if not breach:
            return
        self._fence_breached = True
        self.text(_M.MAV_SEVERITY_CRITICAL, f"Fence Breached: {breach}")
        action = int(self.params["FENCE_ACTION"])
        if action == 2:
            self.set_mode("LAND", reason="Fence breach: LAND")
        elif action != 0:
            self.set_mode("RTL", reason="Fence breach: RTL")

    def _check_gcs(self) -> None:
        if self.params["FS_GCS_ENABLE"] < 1 or self.landed or self._gcs_failsafe:
            return
        if self.t_s - self.last_gcs_heartbeat_s > self.params["FS_GCS_TIMEOUT"]:
            self._gcs_failsafe = True
            self.text(_M.MAV_SEVERITY_CRITICAL, "GCS Failsafe")
            self.set_mode("RTL", reason="GCS failsafe: RTL")

    def gcs_heartbeat(self) -> None:
        """Note a GCS heartbeat (for the GCS failsafe)."""
        self.last_gcs_heartbeat_s = self.t_s
        self._gcs_failsafe = False

    def set_param(self, name: str, value: float) -> bool:
        """Set a known parameter (announced with PARAM_VALUE); False for unknown names."""
        if name not in self.params:
            return False
        self.params[name] = float(value)
        if name.startswith("FENCE_"):
            self._fence_breached = False
        self.events.append(("param", name))
        return True

    def mode_name(self, number: int) -> str | None:
        """Mode name of a ``custom_mode`` number, or None."""
        return _MODE_NAMES.get(int(number))
