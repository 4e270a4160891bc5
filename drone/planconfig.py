"""Planning parameters and refusals: :class:`PlanConfig`, :class:`MissionRefused`.

The leaves of the mission planner (``drone.plan``): what a plan may ask of the
vehicle (speeds, altitudes, orbit, battery and reserve, time rules) and the
codes a refused plan carries. Imported by every other planning module.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE, check_timezone

__all__ = [
    "LEGAL_MAX_ALT_M",
    "REFUSAL_REASONS",
    "TEMPORARY_REASONS",
    "MissionRefused",
    "PlanConfig",
    "PlanConfigError",
    "is_finite_number",
]

#: Highest altitude any mission item may have (metres above the dock / ground).
LEGAL_MAX_ALT_M = 120.0

#: Refusal codes and what they mean.
REFUSAL_REASONS: dict[str, str] = {
    "out_of_range": "target farther from the dock than max_range_m",
    "battery": "estimated flight longer than the endurance minus the reserve",
    "target_in_no_fly": "target inside a no-fly zone",
    "dock_in_no_fly": "dock inside a no-fly zone",
    "orbit_in_no_fly": "no orbit of at least min_orbit_radius_m fits outside the no-fly zones",
    "no_path": "no path around the no-fly zones",
    "daylight": "flight outside the daylight / allowed local time window",
    "no_feasible_dock": "no dock can fly the mission",
}

#: Refusal codes that may clear by themselves later (retry rather than drop).
TEMPORARY_REASONS: frozenset[str] = frozenset({"daylight"})

_END_WITH = ("rtl", "land")


class PlanConfigError(UserError, ValueError):
    """A planning parameter is out of its allowed range."""


class MissionRefused(UserError, ValueError):  # noqa: N818 - the name the project uses
    """The mission is not feasible; ``reason`` is a code of :data:`REFUSAL_REASONS`.

    Parameters
    ----------
    reason : str
        Machine-readable code (``out_of_range``, ``battery``...).
    message : str
        Human-readable explanation with the numbers involved.
    details : dict, optional
        Figures behind the decision (distances, durations, per-dock reasons).
    """

    def __init__(self, reason: str, message: str, *, details: Mapping[str, Any] | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = dict(details or {})

    @property
    def reason_dict(self) -> dict[str, Any]:
        """The refusal as a structured reason (code + figures; see :mod:`haulwatch.drone.reasons`)."""
        from haulwatch.drone.reasons import refusal_reason

        return refusal_reason(self.reason, self.message, self.details)

    @property
    def temporary(self) -> bool:
        """True when the refusal may clear later (e.g. night)."""
        return self.reason in TEMPORARY_REASONS

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable (worker processes, dask): rebuild with the keyword argument
        return (_rebuild_refusal, (self.reason, self.message, self.details))


def _rebuild_refusal(reason: str, message: str, details: dict[str, Any]) -> MissionRefused:
    return MissionRefused(reason, message, details=details)


@dataclass(frozen=True)
class PlanConfig:
    """Planning parameters (units in the names).

    Parameters
    ----------
    cruise_speed_m_s : float, default 12
        Horizontal speed on transit legs (``DO_CHANGE_SPEED``).
    hover_speed_m_s : float, default 5
        Speed QGroundControl shows for hover legs (export only).
    climb_rate_m_s, descent_rate_m_s : float, default 2.5, 1.5
        Vertical speeds used for the duration estimate (ArduCopter
        ``WPNAV_SPEED_UP`` / ``WPNAV_SPEED_DN`` defaults).
    transit_alt_m : float, default 70
        Altitude of takeoff, transit legs and egress, metres above the dock.
    orbit_alt_m : float, default 50
        Altitude of the orbit around the target.
    max_alt_m : float, default 120
        Ceiling for every item; may not exceed :data:`LEGAL_MAX_ALT_M`.
    orbit_radius_m : float, default 50
        Orbit radius; ArduPilot stores radii up to 255 m exactly.
    min_orbit_radius_m : float, default 20
        Smallest radius the planner may shrink the orbit to near a no-fly zone.
    orbit_turns : int, default 2
        Full turns around the target (1..255, stored in 8 bits by ArduPilot).
    orbit_rate_deg_s : float, default 20
        Angular rate of the orbit (ArduCopter ``CIRCLE_RATE`` default).
    wp_accel_m_s2 : float, default 2.5
        Horizontal acceleration limit (ArduCopter ``WPNAV_ACCEL`` default 250 cm/s²);
        the orbit is flown at most at sqrt(0.5 × it × radius), as ``AC_Circle`` does.
    photo_spacing_m : float, default 15
        Distance between photos along the orbit (``DO_SET_CAM_TRIGG_DIST``).
    endurance_s : float, default 1800
        Flight time on a full battery (ignored when ``battery_wh`` and
        ``cruise_power_w`` are both given).
    battery_wh, cruise_power_w : float, optional
        Battery energy and mean power draw; endurance = ``battery_wh / cruise_power_w``.
    battery_mah, cruise_current_a : float, optional
        Battery capacity (ArduPilot ``BATT_CAPACITY``) and mean current draw;
        endurance = ``battery_mah / 1000 / cruise_current_a`` hours (takes
        precedence over the two above).
    battery_remaining_pct : float, default 100
        State of charge at take-off: the flight must fit in it minus the
        reserve (the reserve is a share of a full pack).
    reserve_pct : float, default 25
        Share of the endurance that must remain on landing.
    max_range_m : float, default 8000
        Largest straight distance dock → target.
    no_fly_clearance_m : float, default 30
        Distance kept from no-fly zones (reduced near the dock or the target
        when they are closer than that to a zone).
    waypoint_overhead_s : float, default 4
        Time lost accelerating/braking at each waypoint.
    end_with : {"rtl", "land"}, default "rtl"
        ``NAV_RETURN_TO_LAUNCH`` or ``NAV_LAND`` at the dock.
    min_sun_elevation_deg : float or None, default -6
        Refuse when the sun is lower at takeoff or landing (-6 = civil
        twilight); ``None`` disables the check.
    local_window : tuple of datetime.time, optional
        Allowed local flying window ``(start, end)``; may wrap midnight.
    timezone : str, default "Asia/Shanghai"
        Zone of naive times and of ``local_window``.
    max_graph_nodes : int, default 400
        Cap on visibility-graph vertices (zones are simplified beyond it).
    """

    cruise_speed_m_s: float = 12.0
    hover_speed_m_s: float = 5.0
    climb_rate_m_s: float = 2.5
    descent_rate_m_s: float = 1.5
    transit_alt_m: float = 70.0
    orbit_alt_m: float = 50.0
    max_alt_m: float = LEGAL_MAX_ALT_M
    orbit_radius_m: float = 50.0
    min_orbit_radius_m: float = 20.0
    orbit_turns: int = 2
    orbit_rate_deg_s: float = 20.0
    wp_accel_m_s2: float = 2.5
    photo_spacing_m: float = 15.0
    endurance_s: float = 1800.0
    battery_wh: float | None = None
    cruise_power_w: float | None = None
    battery_mah: float | None = None
    cruise_current_a: float | None = None
    battery_remaining_pct: float = 100.0
    reserve_pct: float = 25.0
    max_range_m: float = 8000.0
    no_fly_clearance_m: float = 30.0
    waypoint_overhead_s: float = 4.0
    end_with: str = "rtl"
    min_sun_elevation_deg: float | None = -6.0
    local_window: tuple[dt.time, dt.time] | None = None
    timezone: str = DEFAULT_TIMEZONE
    max_graph_nodes: int = 400

    def __post_init__(self) -> None:
        positive = (
            "cruise_speed_m_s",
            "hover_speed_m_s",
            "climb_rate_m_s",
            "descent_rate_m_s",
            "transit_alt_m",
            "orbit_alt_m",
            "max_alt_m",
            "orbit_radius_m",
            "min_orbit_radius_m",
            "orbit_rate_deg_s",
            "wp_accel_m_s2",
            "photo_spacing_m",
            "endurance_s",
            "max_range_m",
        )
        for name in positive:
            value = getattr(self, name)
            if not is_finite_number(value) or value <= 0:
                raise PlanConfigError(f"PlanConfig.{name} must be a number > 0, got {value!r}")
        for name in ("no_fly_clearance_m", "waypoint_overhead_s"):
            value = getattr(self, name)
            if not is_finite_number(value) or value < 0:
                raise PlanConfigError(f"PlanConfig.{name} must be a number >= 0, got {value!r}")
        for name in ("battery_wh", "cruise_power_w", "battery_mah", "cruise_current_a"):
            value = getattr(self, name)
            if value is not None and (not is_finite_number(value) or value <= 0):
                raise PlanConfigError(
                    f"PlanConfig.{name} must be None or a number > 0, got {value!r}"
                )
        charge = self.battery_remaining_pct
        if not is_finite_number(charge) or not 0 <= charge <= 100:
            raise PlanConfigError(
                f"PlanConfig.battery_remaining_pct must be in [0, 100], got {charge!r}"
            )
        if self.max_alt_m > LEGAL_MAX_ALT_M:
            raise PlanConfigError(
                f"PlanConfig.max_alt_m must be <= {LEGAL_MAX_ALT_M:g} m, got {self.max_alt_m!r}"
            )
        for name in ("transit_alt_m", "orbit_alt_m"):
            value = getattr(self, name)
            if value > self.max_alt_m:
                raise PlanConfigError(
                    f"PlanConfig.{name} must be <= max_alt_m ({self.max_alt_m:g} m), got {value!r}"
                )
        if self.orbit_radius_m > 255:
            raise PlanConfigError(
                f"PlanConfig.orbit_radius_m must be <= 255 m (ArduPilot stores it in 8 bits), "
                f"got {self.orbit_radius_m!r}"
            )
        if self.min_orbit_radius_m > self.orbit_radius_m:
            raise PlanConfigError(
                f"PlanConfig.min_orbit_radius_m must be <= orbit_radius_m "
                f"({self.orbit_radius_m:g}), got {self.min_orbit_radius_m!r}"
            )
        turns = self.orbit_turns
        if (
            isinstance(turns, bool)
            or not isinstance(turns, (int, np.integer))
            or not 1 <= turns <= 255
        ):
            raise PlanConfigError(f"PlanConfig.orbit_turns must be an int in 1..255, got {turns!r}")
        if not is_finite_number(self.reserve_pct) or not 0 <= self.reserve_pct < 100:
            raise PlanConfigError(
                f"PlanConfig.reserve_pct must be in [0, 100), got {self.reserve_pct!r}"
            )
        if self.end_with not in _END_WITH:
            raise PlanConfigError(
                f"PlanConfig.end_with must be one of {_END_WITH}, got {self.end_with!r}"
            )
        sun = self.min_sun_elevation_deg
        if sun is not None and (not is_finite_number(sun) or not -90 <= sun <= 90):
            raise PlanConfigError(
                f"PlanConfig.min_sun_elevation_deg must be None or in [-90, 90], got {sun!r}"
            )
        window = self.local_window
        if window is not None and (
            not isinstance(window, tuple)
            or len(window) != 2
            or not all(isinstance(t, dt.time) for t in window)
            or window[0] == window[1]
        ):
            raise PlanConfigError(
                "PlanConfig.local_window must be None or a pair of distinct "
                f"datetime.time (start, end), got {window!r}"
            )
        check_timezone(self.timezone, what="PlanConfig.timezone", error=PlanConfigError)
        nodes = self.max_graph_nodes
        if isinstance(nodes, bool) or not isinstance(nodes, (int, np.integer)) or nodes < 8:
            raise PlanConfigError(f"PlanConfig.max_graph_nodes must be an int >= 8, got {nodes!r}")

    @property
    def usable_endurance_s(self) -> float:
        """Flight time the charge left allows minus the reserve, seconds (>= 0)."""
        share = (self.battery_remaining_pct - self.reserve_pct) / 100.0
        return max(0.0, self.full_endurance_s * share)

    @property
    def full_endurance_s(self) -> float:
        """Flight time on a full battery, seconds."""
        if self.battery_mah is not None and self.cruise_current_a is not None:
            return self.battery_mah / 1000.0 / self.cruise_current_a * 3600.0
        if self.battery_wh is not None and self.cruise_power_w is not None:
            return self.battery_wh / self.cruise_power_w * 3600.0
        return float(self.endurance_s)

    def for_vehicle(
        self, params: Mapping[str, float], battery_pct: float | None = None
    ) -> PlanConfig:
        """This configuration within a vehicle's real limits.

        Parameters
        ----------
        params : mapping
            Parameters read from the vehicle (ArduCopter names and units):
            ``WPNAV_SPEED`` (cm/s) caps ``cruise_speed_m_s`` — a real copter asked
            12 m/s by ``DO_CHANGE_SPEED`` flew its 10 m/s default;
            ``WPNAV_ACCEL`` (cm/s²) becomes ``wp_accel_m_s2`` (orbit speed);
            ``BATT_CAPACITY`` (mAh) becomes ``battery_mah`` (used for the
            endurance when ``cruise_current_a`` is set).
        battery_pct : float, optional
            The vehicle's state of charge (``SYS_STATUS.battery_remaining``);
            becomes ``battery_remaining_pct``.

        Returns
        -------
        PlanConfig
            A copy with the limits applied (unknown or invalid values ignored).
        """
        changes: dict[str, Any] = {}
        speed = params.get("WPNAV_SPEED")
        if is_finite_number(speed) and speed > 0:
            changes["cruise_speed_m_s"] = min(self.cruise_speed_m_s, float(speed) / 100.0)
        accel = params.get("WPNAV_ACCEL")
        if is_finite_number(accel) and accel > 0:
            changes["wp_accel_m_s2"] = float(accel) / 100.0
        capacity = params.get("BATT_CAPACITY")
        if is_finite_number(capacity) and capacity > 0:
            changes["battery_mah"] = float(capacity)
        if is_finite_number(battery_pct) and 0 <= battery_pct <= 100:
            changes["battery_remaining_pct"] = float(battery_pct)
        return replace(self, **changes)


def is_finite_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
