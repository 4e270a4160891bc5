"""Write missions for ground-control software: QGroundControl ``.plan`` and ``.waypoints``.

- :func:`to_qgc_plan` / :func:`write_qgc_plan`: the QGroundControl Plan file
  (JSON; ``fileType "Plan"``, version 1, mission version 2, ArduPilot firmware
  type 3, multirotor vehicle type 2, ``SimpleItem`` items with seven params),
  with the no-fly zones as exclusion polygons of the geofence when given.
  :func:`read_qgc_plan` reads one back into a :class:`Mission`.
- :func:`to_waypoints` / :func:`write_waypoints`: the plain-text
  ``QGC WPL 110`` format that Mission Planner, MAVProxy and pymavlink's
  ``mavwp`` read (tab-separated; line 0 is home). :func:`read_waypoints` reads
  one back.

The haulwatch context (target, dock site, alert id, estimates) rides in the
``.plan`` under an extra top-level ``"haulwatch"`` key, which QGroundControl
ignores; the ``.waypoints`` format has no room for it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pymavlink import mavutil
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from haulwatch.drone.mission import POSITIONAL_COMMANDS, Mission, MissionError, MissionItem
from haulwatch.errors import UserError

__all__ = [
    "ExportError",
    "read_qgc_plan",
    "read_waypoints",
    "to_qgc_plan",
    "to_waypoints",
    "write_qgc_plan",
    "write_waypoints",
]

_MAV = mavutil.mavlink

#: MAV_AUTOPILOT_ARDUPILOTMEGA and MAV_TYPE_QUADROTOR, as QGroundControl stores them.
FIRMWARE_TYPE = int(_MAV.MAV_AUTOPILOT_ARDUPILOTMEGA)
VEHICLE_TYPE = int(_MAV.MAV_TYPE_QUADROTOR)

# QGroundControl's AltitudeMode enum (QGroundControlQmlGlobal::AltMode).
_ALT_MODE_RELATIVE = 1
_ALT_MODE_ABSOLUTE = 2
_ALT_MODE_BY_FRAME = {
    int(_MAV.MAV_FRAME_GLOBAL_RELATIVE_ALT): _ALT_MODE_RELATIVE,
    int(_MAV.MAV_FRAME_GLOBAL_RELATIVE_ALT_INT): _ALT_MODE_RELATIVE,
    int(_MAV.MAV_FRAME_GLOBAL): _ALT_MODE_ABSOLUTE,
    int(_MAV.MAV_FRAME_GLOBAL_INT): _ALT_MODE_ABSOLUTE,
}

_WPL_HEADER = "QGC WPL 110"


class ExportError(UserError, ValueError):
    """A mission file cannot be read (wrong format, missing field)."""


# --------------------------------------------------------------------------- .plan


def _fence_polygons(no_fly: Iterable[BaseGeometry] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for geom in no_fly or ():
        if geom is None or geom.is_empty:
            continue
        parts = getattr(geom, "geoms", [geom])
        for part in parts:
            if not isinstance(part, Polygon):
                raise ExportError(
                    f"no_fly geometries must be (Multi)Polygons, got {part.geom_type}"
                )
            ring = list(part.exterior.coords)[:-1]
            out.append(
                {
                    "inclusion": False,
                    "polygon": [[float(lat), float(lon)] for lon, lat, *_ in ring],
                    "version": 1,
                }
            )
    return out


def to_qgc_plan(mission: Mission, *, no_fly: Iterable[BaseGeometry] | None = None) -> dict:
    """The mission as a QGroundControl Plan document (a JSON-ready dict).

    Parameters
    ----------
    mission : Mission
        The mission to export.
    no_fly : iterable of shapely Polygon, optional
        No-fly zones (WGS-84) written as exclusion polygons of the geofence.

    Returns
    -------
    dict
        ``fileType``, ``version``, ``groundStation``, ``mission``, ``geoFence``,
        ``rallyPoints`` as the QGroundControl file-format page documents them,
        plus ``haulwatch`` (target, dock, alert, estimates).
    """
    items = []
    for jump_id, item in enumerate(mission.items, start=1):
        entry: dict[str, Any] = {
            "autoContinue": bool(item.autocontinue),
            "command": int(item.command),
            "doJumpId": jump_id,
            "frame": int(item.frame),
            "params": [
                item.param1,
                item.param2,
                item.param3,
                item.param4,
                item.lat_deg,
                item.lon_deg,
                item.alt_m,
            ],
            "type": "SimpleItem",
        }
        if item.command in POSITIONAL_COMMANDS:
            entry["AMSLAltAboveTerrain"] = None
            entry["Altitude"] = item.alt_m
            entry["AltitudeMode"] = _ALT_MODE_BY_FRAME.get(int(item.frame), _ALT_MODE_RELATIVE)
        items.append(entry)
    meta = mission.meta
    return {
        "fileType": "Plan",
        "version": 1,
        "groundStation": "QGroundControl",
        "mission": {
            "version": 2,
            "firmwareType": FIRMWARE_TYPE,
            "vehicleType": VEHICLE_TYPE,
            "globalPlanAltitudeMode": _ALT_MODE_RELATIVE,
            "cruiseSpeed": float(meta.get("cruise_speed_m_s", 10.0)),
            "hoverSpeed": float(meta.get("hover_speed_m_s", 5.0)),
            "plannedHomePosition": [mission.home_lat_deg, mission.home_lon_deg, mission.home_alt_m],
            "items": items,
        },
        "geoFence": {"circles": [], "polygons": _fence_polygons(no_fly), "version": 2},
        "rallyPoints": {"points": [], "version": 2},
        "haulwatch": {
            "alert_id": mission.alert_id,
            "dock_site_id": mission.dock_site_id,
            "target": [mission.target_lat_deg, mission.target_lon_deg],
            "meta": _jsonable(meta),
        },
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return _jsonable(value.item())
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_qgc_plan(
    mission: Mission, path: str | Path, *, no_fly: Iterable[BaseGeometry] | None = None
) -> Path:
    """Write :func:`to_qgc_plan` to ``path`` (UTF-8 JSON); return the path."""
    p = Path(path)
    p.write_text(
        json.dumps(to_qgc_plan(mission, no_fly=no_fly), indent=4, ensure_ascii=False) + "\n",
        encoding="utf-8",
    )
    return p


def _target_from_items(
    items: Iterable[MissionItem], home: tuple[float, float]
) -> tuple[float, float]:
    """Target = the orbit centre, else the ROI, else home."""
    items = list(items)
    for wanted in (
        _MAV.MAV_CMD_NAV_LOITER_TURNS,
        _MAV.MAV_CMD_DO_SET_ROI_LOCATION,
        _MAV.MAV_CMD_DO_SET_ROI,
    ):
        for item in items:
            if item.command == wanted:
                return item.lat_deg, item.lon_deg
    return home


def _num(value: Any, where: str) -> float:
    if value is None:  # QGroundControl writes NaN params as null
        return 0.0
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"{where} must be a number, got {value!r}") from exc
    return 0.0 if math.isnan(out) else out


def read_qgc_plan(path: str | Path) -> Mission:
    """Read a QGroundControl ``.plan`` file into a :class:`Mission`.

    Only ``SimpleItem`` entries are supported (a ``ComplexItem`` survey or
    structure scan raises :class:`ExportError`). Null params (QGroundControl's
    NaN) read as 0. Target, dock and alert come from the ``haulwatch`` key when
    present, else the target is the orbit centre (or the ROI).
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("fileType") != "Plan":
        raise ExportError(f"{path}: fileType must be 'Plan'")
    mission_doc = doc.get("mission")
    if not isinstance(mission_doc, dict) or "items" not in mission_doc:
        raise ExportError(f"{path}: a 'mission' object with 'items' is required")
    home = mission_doc.get("plannedHomePosition")
    if not isinstance(home, list) or len(home) != 3:
        raise ExportError(
            f"{path}: mission.plannedHomePosition must be [lat, lon, alt], got {home!r}"
        )
    items = []
    for k, entry in enumerate(mission_doc["items"]):
        if entry.get("type") != "SimpleItem":
            raise ExportError(
                f"{path}: mission.items[{k}].type {entry.get('type')!r} is not supported "
                "(only 'SimpleItem')"
            )
        params = entry.get("params")
        if not isinstance(params, list) or len(params) != 7:
            raise ExportError(f"{path}: mission.items[{k}].params must be a list of 7 values")
        vals = [_num(v, f"mission.items[{k}].params[{i}]") for i, v in enumerate(params)]
        try:
            items.append(
                MissionItem(
                    command=int(entry["command"]),
                    frame=int(entry["frame"]),
                    param1=vals[0],
                    param2=vals[1],
                    param3=vals[2],
                    param4=vals[3],
                    lat_deg=vals[4],
                    lon_deg=vals[5],
                    alt_m=vals[6],
                    autocontinue=bool(entry.get("autoContinue", True)),
                )
            )
        except (KeyError, MissionError) as exc:
            raise ExportError(f"{path}: mission.items[{k}]: {exc}") from exc
    home_lat, home_lon, home_alt = (_num(v, "plannedHomePosition") for v in home)
    extra = doc.get("haulwatch") if isinstance(doc.get("haulwatch"), dict) else {}
    target = extra.get("target")
    if isinstance(target, list) and len(target) == 2:
        t_lat, t_lon = (_num(v, "haulwatch.target") for v in target)
    else:
        t_lat, t_lon = _target_from_items(items, (home_lat, home_lon))
    return Mission(
        home_lat_deg=home_lat,
        home_lon_deg=home_lon,
        home_alt_m=home_alt,
        items=tuple(items),
        target_lat_deg=t_lat,
        target_lon_deg=t_lon,
        dock_site_id=str(extra.get("dock_site_id", "") or ""),
        alert_id=str(extra.get("alert_id", "") or ""),
        meta=dict(extra.get("meta") or {}),
    )


# --------------------------------------------------------------------------- .waypoints


def _fmt(value: float) -> str:
    """Shortest exact decimal text of a float, never in exponent form."""
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{float(value):.12f}".rstrip("0").rstrip(".")
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text in ("-0", "") else text


def to_waypoints(mission: Mission) -> str:
    """The mission as ``QGC WPL 110`` text (Mission Planner ``.waypoints``).

    Line 0 is home (``current`` 1, ``MAV_FRAME_GLOBAL``, altitude AMSL); then
    one line per item: ``seq, current, frame, command, param1..param4, lat,
    lon, alt, autocontinue``, tab-separated, with exact decimal coordinates.
    """
    lines = [_WPL_HEADER]
    for seq, item in enumerate(mission.wire_items()):
        fields = [
            str(seq),
            "1" if seq == 0 else "0",
            str(int(item.frame)),
            str(int(item.command)),
            *(_fmt(v) for v in item.params),
            _fmt(item.lat_deg),
            _fmt(item.lon_deg),
            _fmt(item.alt_m),
            "1" if item.autocontinue else "0",
        ]
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def write_waypoints(mission: Mission, path: str | Path) -> Path:
    """Write :func:`to_waypoints` to ``path``; return the path."""
    p = Path(path)
    p.write_text(to_waypoints(mission), encoding="ascii")
    return p


def read_waypoints(path: str | Path) -> Mission:
    """Read a ``QGC WPL 110`` file into a :class:`Mission` (line 0 = home).

    The target is the orbit centre (``NAV_LOITER_TURNS``), else the ROI, else
    home; dock and alert ids are empty (the format has no room for them).
    """
    text = Path(path).read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines()]
    if not lines or lines[0] != _WPL_HEADER:
        raise ExportError(
            f"{path}: first line must be {_WPL_HEADER!r}, got {(lines[0] if lines else '')!r}"
        )
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 12:
            raise ExportError(f"{path}: line {n} has {len(fields)} fields, 12 required")
        try:
            seq, _current, frame, command = (int(f) for f in fields[:4])
            values = [float(f) for f in fields[4:11]]
            auto = int(fields[11])
        except ValueError as exc:
            raise ExportError(f"{path}: line {n}: {exc}") from exc
        if seq != len(rows):
            raise ExportError(f"{path}: line {n} has seq {seq}, expected {len(rows)}")
        try:
            rows.append(
                MissionItem(
                    command=command,
                    frame=frame,
                    param1=values[0],
                    param2=values[1],
                    param3=values[2],
                    param4=values[3],
                    lat_deg=values[4],
                    lon_deg=values[5],
                    alt_m=values[6],
                    autocontinue=bool(auto),
                )
            )
        except MissionError as exc:
            raise ExportError(f"{path}: line {n}: {exc}") from exc
    if not rows:
        raise ExportError(f"{path}: no home line (seq 0)")
    home, items = rows[0], tuple(rows[1:])
    t_lat, t_lon = _target_from_items(items, (home.lat_deg, home.lon_deg))
    return Mission(
        home_lat_deg=home.lat_deg,
        home_lon_deg=home.lon_deg,
        home_alt_m=home.alt_m,
        items=items,
        target_lat_deg=t_lat,
        target_lon_deg=t_lon,
    )
