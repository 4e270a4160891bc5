"""Mission data: what a drone is asked to fly, kept apart from how it is sent.

A :class:`Mission` is an immutable list of MAVLink mission items (the items
*after* home) plus the home position (the dock, altitude AMSL) and the context
that produced it (target, dock, alert, estimates in ``meta``). The transfer
protocol (``drone.link`` / ``drone.protocol``) asks :meth:`Mission.wire_items`
for the items as they go on the wire: sequence 0 is home, 1..N the items.

The ×1e7 integer conversion used by ``MISSION_ITEM_INT`` lives here and only
here: :func:`deg_to_e7` / :func:`e7_to_deg`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pymavlink import mavutil

from haulwatch.errors import UserError

__all__ = [
    "NAV_COMMANDS",
    "POSITIONAL_COMMANDS",
    "Mission",
    "MissionError",
    "MissionItem",
    "deg_to_e7",
    "e7_to_deg",
]

_MAV = mavutil.mavlink

#: Commands that move the vehicle (ArduPilot "NAV" commands we emit).
NAV_COMMANDS: frozenset[int] = frozenset(
    {
        _MAV.MAV_CMD_NAV_WAYPOINT,
        _MAV.MAV_CMD_NAV_TAKEOFF,
        _MAV.MAV_CMD_NAV_LOITER_TURNS,
        _MAV.MAV_CMD_NAV_LOITER_TIME,
        _MAV.MAV_CMD_NAV_LOITER_UNLIM,
        _MAV.MAV_CMD_NAV_RETURN_TO_LAUNCH,
        _MAV.MAV_CMD_NAV_LAND,
    }
)

#: Commands whose lat/lon/alt fields carry a location.
POSITIONAL_COMMANDS: frozenset[int] = frozenset(
    {
        _MAV.MAV_CMD_NAV_WAYPOINT,
        _MAV.MAV_CMD_NAV_TAKEOFF,
        _MAV.MAV_CMD_NAV_LOITER_TURNS,
        _MAV.MAV_CMD_NAV_LOITER_TIME,
        _MAV.MAV_CMD_NAV_LOITER_UNLIM,
        _MAV.MAV_CMD_NAV_LAND,
        _MAV.MAV_CMD_DO_SET_ROI,
        _MAV.MAV_CMD_DO_SET_ROI_LOCATION,
    }
)

_E7 = 10_000_000
_INT32_MAX = 2**31 - 1


class MissionError(UserError, ValueError):
    """A mission or mission item is malformed (bad coordinate, bad field)."""


def deg_to_e7(deg: float) -> int:
    """Convert degrees to the MAVLink integer form (degrees × 1e7), rounded.

    Parameters
    ----------
    deg : float
        Angle in degrees (latitude or longitude).

    Returns
    -------
    int
        ``round(deg * 1e7)``; rounding (not truncation) keeps a round trip
        through :func:`e7_to_deg` within 0.5e-7 degrees (about 5 mm).

    Raises
    ------
    MissionError
        If ``deg`` is not finite or does not fit a signed 32-bit integer.
    """
    value = float(deg)
    if not math.isfinite(value):
        raise MissionError(f"deg_to_e7: degrees must be finite, got {deg!r}")
    scaled = round(value * _E7)
    if abs(scaled) > _INT32_MAX:
        raise MissionError(
            f"deg_to_e7: {deg!r} degrees does not fit int32 (allowed |deg| <= 214.7483647)"
        )
    return int(scaled)


def e7_to_deg(i: int) -> float:
    """Convert the MAVLink integer form (degrees × 1e7) back to degrees.

    Parameters
    ----------
    i : int
        Degrees × 1e7, as in ``MISSION_ITEM_INT.x`` / ``.y``.

    Returns
    -------
    float
        Degrees.
    """
    return int(i) / _E7


def _check_finite(name: str, value: float) -> float:
    out = float(value)
    if not math.isfinite(out):
        raise MissionError(f"MissionItem.{name} must be a finite number, got {value!r}")
    return out


@dataclass(frozen=True)
class MissionItem:
    """One MAVLink mission item (``MISSION_ITEM_INT`` fields, in degrees and metres).

    Parameters
    ----------
    command : int
        ``MAV_CMD_*`` value (use ``pymavlink.mavutil.mavlink`` constants).
    frame : int
        ``MAV_FRAME_*`` value; positions are ``MAV_FRAME_GLOBAL_RELATIVE_ALT``
        (altitude above home), non-positional commands ``MAV_FRAME_MISSION``.
    param1, param2, param3, param4 : float
        Command parameters, as the MAVLink common message set defines them.
    lat_deg, lon_deg : float
        WGS-84 position in degrees (0 for commands without a location).
    alt_m : float
        Altitude in metres, relative to ``frame``.
    autocontinue : bool, default True
        Continue to the next item when this one completes.
    """

    command: int
    frame: int
    param1: float = 0.0
    param2: float = 0.0
    param3: float = 0.0
    param4: float = 0.0
    lat_deg: float = 0.0
    lon_deg: float = 0.0
    alt_m: float = 0.0
    autocontinue: bool = True

    def __post_init__(self) -> None:
        for name in ("command", "frame"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise MissionError(
                    f"MissionItem.{name} must be a non-negative int (MAVLink enum), got {value!r}"
                )
        for name in ("param1", "param2", "param3", "param4", "alt_m"):
            object.__setattr__(self, name, _check_finite(name, getattr(self, name)))
        lat = _check_finite("lat_deg", self.lat_deg)
        lon = _check_finite("lon_deg", self.lon_deg)
        if not -90.0 <= lat <= 90.0:
            raise MissionError(f"MissionItem.lat_deg must be in [-90, 90], got {lat!r}")
        if not -180.0 <= lon <= 180.0:
            raise MissionError(f"MissionItem.lon_deg must be in [-180, 180], got {lon!r}")
        object.__setattr__(self, "lat_deg", lat)
        object.__setattr__(self, "lon_deg", lon)
        object.__setattr__(self, "autocontinue", bool(self.autocontinue))

    @property
    def x_e7(self) -> int:
        """Latitude as ``MISSION_ITEM_INT.x`` (degrees × 1e7)."""
        return deg_to_e7(self.lat_deg)

    @property
    def y_e7(self) -> int:
        """Longitude as ``MISSION_ITEM_INT.y`` (degrees × 1e7)."""
        return deg_to_e7(self.lon_deg)

    @property
    def command_name(self) -> str:
        """The ``MAV_CMD`` name without its prefix, e.g. ``NAV_TAKEOFF``."""
        entry = _MAV.enums["MAV_CMD"].get(self.command)
        if entry is None:
            return str(self.command)
        return entry.name.removeprefix("MAV_CMD_")

    @property
    def params(self) -> tuple[float, float, float, float]:
        """``(param1, param2, param3, param4)``."""
        return (self.param1, self.param2, self.param3, self.param4)

    @property
    def has_position(self) -> bool:
        """True when lat/lon/alt carry a location for this command."""
        return self.command in POSITIONAL_COMMANDS


@dataclass(frozen=True)
class Mission:
    """An ArduPilot Copter mission from a dock to a target and back.

    Parameters
    ----------
    home_lat_deg, home_lon_deg : float
        Dock position (WGS-84 degrees); sent as item 0.
    home_alt_m : float
        Dock altitude above mean sea level, metres.
    items : tuple of MissionItem
        The items after home (wire sequence 1..N).
    target_lat_deg, target_lon_deg : float
        What the mission looks at (WGS-84 degrees).
    dock_site_id : str
        The ``nest`` site the drone flies from ("" when ad hoc).
    alert_id : str
        The alert being checked ("" for a bare coordinate).
    meta : dict
        Estimates and context: ``distance_out_m``, ``distance_total_m``,
        ``duration_s``, ``battery_used_pct``... (not compared, not hashed).
    """

    home_lat_deg: float
    home_lon_deg: float
    home_alt_m: float
    items: tuple[MissionItem, ...]
    target_lat_deg: float
    target_lon_deg: float
    dock_site_id: str = ""
    alert_id: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        items = tuple(self.items)
        for k, item in enumerate(items):
            if not isinstance(item, MissionItem):
                raise MissionError(
                    f"Mission.items[{k}] must be a MissionItem, got {type(item).__name__}"
                )
        object.__setattr__(self, "items", items)
        for name, lo, hi in (
            ("home_lat_deg", -90.0, 90.0),
            ("home_lon_deg", -180.0, 180.0),
            ("target_lat_deg", -90.0, 90.0),
            ("target_lon_deg", -180.0, 180.0),
        ):
            value = float(getattr(self, name))
            if not (math.isfinite(value) and lo <= value <= hi):
                raise MissionError(f"Mission.{name} must be in [{lo:g}, {hi:g}], got {value!r}")
            object.__setattr__(self, name, value)
        alt = float(self.home_alt_m)
        if not math.isfinite(alt):
            raise MissionError(f"Mission.home_alt_m must be finite, got {self.home_alt_m!r}")
        object.__setattr__(self, "home_alt_m", alt)
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def home_item(self) -> MissionItem:
        """Home as a mission item (``NAV_WAYPOINT``, ``MAV_FRAME_GLOBAL``, AMSL)."""
        return MissionItem(
            command=_MAV.MAV_CMD_NAV_WAYPOINT,
            frame=_MAV.MAV_FRAME_GLOBAL,
            lat_deg=self.home_lat_deg,
            lon_deg=self.home_lon_deg,
            alt_m=self.home_alt_m,
        )

    def wire_items(self) -> list[MissionItem]:
        """Items as sent over MAVLink: home at index (seq) 0, then :attr:`items`.

        Returns
        -------
        list of MissionItem
            ``len(items) + 1`` items; ``wire_items()[seq]`` is item ``seq``.
        """
        return [self.home_item, *self.items]

    @property
    def count(self) -> int:
        """``MISSION_COUNT.count``: the items plus home."""
        return len(self.items) + 1
