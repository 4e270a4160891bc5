"""Mission items on the wire: :class:`MissionItem` ⇄ ``MISSION_ITEM_INT``, and what ArduPilot keeps.

The codec the transfer machines of :mod:`haulwatch.drone.protocol` send and
receive with (:func:`encode_item`, :func:`decode_item`; degrees × 1e7 through
:func:`haulwatch.drone.mission.deg_to_e7` / ``e7_to_deg``), and the read-back
check after an upload: :func:`stored_param` says what ArduPilot stores of each
parameter (``AP_Mission::mavlink_int_to_mission_cmd`` packs a command into 15
bytes), :func:`compare_items` compares what was sent with what the vehicle holds.
No state and no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pymavlink.dialects.v20 import ardupilotmega as mavlink2

from haulwatch.drone.mission import POSITIONAL_COMMANDS, MissionItem, e7_to_deg

__all__ = [
    "MAV_MISSION_TYPE_MISSION",
    "compare_items",
    "decode_item",
    "encode_item",
    "enum_name",
    "stored_param",
]

MAV_MISSION_TYPE_MISSION = mavlink2.MAV_MISSION_TYPE_MISSION


def enum_name(enum: str, value: int) -> str:
    """Name of ``value`` in the MAVLink enum ``enum``, e.g. ``MAV_RESULT_DENIED``.

    Parameters
    ----------
    enum : str
        The enum, e.g. ``"MAV_RESULT"`` or ``"MAV_MISSION_RESULT"``.
    value : int
        The code received.

    Returns
    -------
    str
        The entry's name; ``"<enum>_<n>"`` for a code this dialect does not know.
    """
    entry = mavlink2.enums[enum].get(int(value))
    if entry is None or entry.name.endswith("_ENUM_END"):
        return f"{enum}_{int(value)}"
    return entry.name

# Frames ArduPilot stores as "absolute", "relative to home" and "terrain"
# (AP_Mission); a read-back reports the non-INT frame of each class.
_FRAME_CLASS: dict[int, int] = {
    mavlink2.MAV_FRAME_GLOBAL: mavlink2.MAV_FRAME_GLOBAL,
    mavlink2.MAV_FRAME_GLOBAL_INT: mavlink2.MAV_FRAME_GLOBAL,
    mavlink2.MAV_FRAME_MISSION: mavlink2.MAV_FRAME_GLOBAL,
    mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT: mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT: mavlink2.MAV_FRAME_GLOBAL_RELATIVE_ALT,
    mavlink2.MAV_FRAME_GLOBAL_TERRAIN_ALT: mavlink2.MAV_FRAME_GLOBAL_TERRAIN_ALT,
    mavlink2.MAV_FRAME_GLOBAL_TERRAIN_ALT_INT: mavlink2.MAV_FRAME_GLOBAL_TERRAIN_ALT,
}


def _as_float(value: float) -> float:
    return float(value)


def _as_u8(value: float) -> float:
    return float(min(255, max(0, int(value))))


def _as_u16(value: float) -> float:
    return float(min(65535, max(0, int(value))))


def _loiter_radius(value: float) -> float:
    """LOITER_TURNS param3 as AP_Mission stores it: |r| in a byte, ×10 above 255 m, sign = CCW."""
    radius = abs(value)
    stored = float(int(radius)) if radius <= 255 else float(min(255, int(radius * 0.1)) * 10)
    return -stored if value < 0 else stored


# What ArduPilot keeps of each parameter (AP_Mission::mavlink_int_to_mission_cmd
# packs them into a 15-byte command): the value a read-back returns for what
# was sent. Parameters not listed are not stored (or not compared).
_STORED_PARAMS: dict[int, dict[int, Any]] = {
    # Copter keeps only the hold time, as uint16 seconds
    mavlink2.MAV_CMD_NAV_WAYPOINT: {1: _as_u16},
    # turns: MIN(255, param1) in the low byte; radius: see _loiter_radius
    mavlink2.MAV_CMD_NAV_LOITER_TURNS: {1: _as_u8, 3: _loiter_radius},
    mavlink2.MAV_CMD_NAV_LOITER_TIME: {1: _as_u16},
    mavlink2.MAV_CMD_DO_CHANGE_SPEED: {1: _as_u8, 2: _as_float},
    # distance (float) and "trigger once now" (uint8)
    mavlink2.MAV_CMD_DO_SET_CAM_TRIGG_DIST: {1: _as_float, 3: _as_u8},
}


def stored_param(command: int, index: int, value: float) -> float | None:
    """What ArduPilot reads back for parameter ``index`` (1..4) of ``command``.

    Parameters
    ----------
    command : int
        ``MAV_CMD`` of the item.
    index : int
        Parameter number, 1 to 4.
    value : float
        The value uploaded.

    Returns
    -------
    float or None
        The stored value (e.g. 1.5 turns → 1.0, a 300.7 m loiter radius →
        300.0), or None when the autopilot does not keep this parameter.
    """
    convert = _STORED_PARAMS.get(int(command), {}).get(int(index))
    if convert is None or not math.isfinite(value):
        return None
    return convert(value)


def encode_item(
    item: MissionItem,
    seq: int,
    *,
    target_system: int,
    target_component: int,
    mission_type: int = MAV_MISSION_TYPE_MISSION,
) -> Any:
    """Build the ``MISSION_ITEM_INT`` message for one item.

    Positional commands carry latitude/longitude as degrees × 1e7; for other
    commands ``x``/``y`` are the raw integer param5/param6 (as ArduPilot reads
    them, e.g. ``DO_DIGICAM_CONTROL`` shoot flag in ``x``).

    Parameters
    ----------
    item : MissionItem
        The item.
    seq : int
        Its wire sequence number (0 is home).
    target_system, target_component : int
        The vehicle's ids.
    mission_type : int, default 0
        ``MAV_MISSION_TYPE``.

    Returns
    -------
    MAVLink_mission_item_int_message
    """
    if item.command in POSITIONAL_COMMANDS or seq == 0:
        x, y = item.x_e7, item.y_e7
    else:
        x, y = round(item.lat_deg), round(item.lon_deg)
    return mavlink2.MAVLink_mission_item_int_message(
        target_system,
        target_component,
        seq,
        item.frame,
        item.command,
        0,
        int(item.autocontinue),
        item.param1,
        item.param2,
        item.param3,
        item.param4,
        x,
        y,
        item.alt_m,
        mission_type,
    )


def decode_item(msg: Any) -> MissionItem:
    """Turn a received ``MISSION_ITEM_INT`` (or float ``MISSION_ITEM``) into a MissionItem.

    Parameters
    ----------
    msg : pymavlink message
        ``MISSION_ITEM_INT`` or ``MISSION_ITEM``.

    Returns
    -------
    MissionItem
    """
    is_int = msg.get_type() == "MISSION_ITEM_INT"
    positional = msg.command in POSITIONAL_COMMANDS or msg.seq == 0
    if positional:
        lat = e7_to_deg(msg.x) if is_int else float(msg.x)
        lon = e7_to_deg(msg.y) if is_int else float(msg.y)
    else:
        lat, lon = float(msg.x), float(msg.y)
    return MissionItem(
        command=int(msg.command),
        frame=int(msg.frame),
        param1=_finite(msg.param1),
        param2=_finite(msg.param2),
        param3=_finite(msg.param3),
        param4=_finite(msg.param4),
        lat_deg=lat if -90.0 <= lat <= 90.0 else 0.0,
        lon_deg=lon if -180.0 <= lon <= 180.0 else 0.0,
        alt_m=_finite(msg.z),
        autocontinue=bool(msg.autocontinue),
    )


def _finite(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0


def compare_items(
    sent: Sequence[MissionItem],
    read: Sequence[MissionItem],
    *,
    alt_tolerance_m: float = 0.05,
) -> list[str]:
    """List the differences between the items sent and those read back.

    Both sequences exclude home (seq 0): the vehicle replaces it with its real
    home. Compared: count, command, frame class for positional commands
    (``GLOBAL_RELATIVE_ALT_INT`` reads back as ``GLOBAL_RELATIVE_ALT``),
    position to 1e-7 degrees, altitude to ``alt_tolerance_m`` (ArduPilot
    stores centimetres), and the parameters ArduPilot keeps, as it keeps
    them (:func:`stored_param`: whole turns and a byte-sized loiter radius,
    whole hold seconds...), so a faithful vehicle never fails verification.

    Parameters
    ----------
    sent, read : sequence of MissionItem
        The items after home, in sequence order.
    alt_tolerance_m : float, default 0.05
        Allowed altitude difference, metres.

    Returns
    -------
    list of str
        One line per difference, e.g. ``"seq 3: command 16 != 22"``; empty
        when the vehicle holds the mission that was sent.
    """
    problems: list[str] = []
    if len(sent) != len(read):
        problems.append(f"count: sent {len(sent)} items, vehicle holds {len(read)}")
    for k, (a, b) in enumerate(zip(sent, read, strict=False), start=1):
        if a.command != b.command:
            problems.append(f"seq {k}: command {b.command} != {a.command}")
            continue
        if a.command in POSITIONAL_COMMANDS:
            fa, fb = _FRAME_CLASS.get(a.frame, a.frame), _FRAME_CLASS.get(b.frame, b.frame)
            if fa != fb:
                problems.append(f"seq {k}: frame {b.frame} != {a.frame}")
            if (a.x_e7, a.y_e7) != (b.x_e7, b.y_e7):
                problems.append(
                    f"seq {k}: position {b.lat_deg:.7f},{b.lon_deg:.7f} != "
                    f"{a.lat_deg:.7f},{a.lon_deg:.7f}"
                )
            if abs(a.alt_m - b.alt_m) > alt_tolerance_m:
                problems.append(f"seq {k}: alt_m {b.alt_m:g} != {a.alt_m:g}")
        for p in _STORED_PARAMS.get(a.command, {}):
            va = stored_param(a.command, p, a.params[p - 1])
            vb = b.params[p - 1]
            if va is not None and abs(va - vb) > 1e-3 * max(1.0, abs(va)):
                problems.append(f"seq {k}: param{p} {vb:g} != {va:g}")
    return problems
