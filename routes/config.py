"""Audit thresholds in one frozen dataclass, loadable from TOML.

Every detector takes its thresholds as keyword-only arguments; :class:`AuditConfig`
groups them with documented defaults so the CLI, the service and the Dask engine
pass one object down. Only the outermost layer reads files: :meth:`AuditConfig.load`
(a TOML file, then ``--set`` overrides) is called by the faces — ``audit``,
``evaluate``, ``serve`` (its live auditor) — never by a detector.

A TOML file holds the keys at top level or under an ``[audit]`` table::

    stop_diameter_m = 60
    gap_max_s = 900
    disposal_buffer_m = 200
    timezone = "Asia/Shanghai"

Unknown keys and bad values raise :class:`AuditConfigError` naming the key, the
value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE, check_timezone

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10
    import tomli as tomllib

__all__ = ["AuditConfig", "AuditConfigError"]


class AuditConfigError(UserError, ValueError):
    """A threshold key or value is not acceptable."""


# (minimum, minimum inclusive?) per field; None = no numeric check (str / optional).
_LOWER_BOUNDS: dict[str, tuple[float, bool]] = {
    "stop_diameter_m": (0.0, False),
    "stop_min_duration_s": (0.0, False),
    "load_min_duration_s": (0.0, False),
    "unload_min_duration_s": (0.0, True),
    "dump_min_duration_s": (0.0, False),
    "disposal_buffer_m": (0.0, True),
    "origin_buffer_m": (0.0, True),
    "depot_buffer_m": (0.0, True),
    "visit_merge_s": (0.0, True),
    "corridor_default_m": (0.0, False),
    "deviation_min_points": (1.0, True),
    "deviation_min_duration_s": (0.0, True),
    "deviation_min_excess_m": (0.0, True),
    "gap_max_s": (0.0, False),
    "manifest_slack_s": (0.0, True),
    "hotspot_radius_m": (0.0, False),
    "hotspot_min_vehicles": (2.0, True),
    "max_speed_kmh": (0.0, False),
    "teleport_min_jump_m": (0.0, True),
    "teleport_max_reversal_speed_kmh": (0.0, False),
    "sensor_min_duration_s": (0.0, True),
    "evidence_max_points": (2.0, True),
}


@dataclasses.dataclass(frozen=True)
class AuditConfig:
    """Every threshold of the audit (see docs/detection.md for their meaning).

    Parameters
    ----------
    stop_diameter_m : float, default 100
        A stop stays within this diameter (movingpandas ``max_diameter``), metres.
        Parked trucks' GPS fixes scatter over 20–60 m (σ 5–15 m, multipath near
        buildings); 100 m keeps such stops whole.
    stop_min_duration_s : float, default 120
        ... for at least this long, seconds.
    load_min_duration_s : float, default 300
        Shortest dwell that counts as a loading visit (at an origin, or at a place
        outside every site for an unpermitted origin), seconds.
    unload_min_duration_s : float, default 120
        Shortest stay in a disposal site (with its buffer) that counts as an
        unloading visit, seconds.
    dump_min_duration_s : float, default 60
        Shortest stop of a loaded truck outside permitted sites that may be a dump,
        seconds (measured first to last fix: a tipper empties in 1.5–4 minutes, and
        a 1.5-minute tip seen by a 30 s terminal lasts 60 s). Stops are detected
        down to this length for that purpose; ``stops.csv`` keeps those of at least
        ``stop_min_duration_s``.
    disposal_buffer_m, origin_buffer_m, depot_buffer_m : float, default 150, 50, 50
        Distance around a site polygon that still counts as being at the site
        (gate queues, kerb-side waits), metres, per site kind.
    visit_merge_s : float, default 180
        Two stays in the same site separated by a shorter excursion are one visit, seconds.
    corridor_default_m : float, default 150
        Half-width of a route corridor when the route has no ``corridor_m``, metres.
    deviation_min_points : int, default 2
        Consecutive off-corridor points needed for a ``route_deviation`` (one fix
        off is indistinguishable from a multipath jump).
    deviation_min_duration_s : float, default 120
        ... spanning at least this long, seconds (multipath lasts seconds; a detour
        through other streets lasts minutes).
    deviation_min_excess_m : float, default 100
        ... and reaching this far beyond the corridor edge at its farthest fix,
        metres: 2.5 σ of urban-canyon GPS noise (σ up to 40 m), so a service road
        just inside the corridor never alerts on noise.
    gap_max_s : float, default 600
        Longest dark spell between two points that is not a ``gps_gap``, seconds.
    manifest_slack_s : float, default 900
        A manifest window is widened by this much on both sides when matching trips, seconds.
    hotspot_radius_m : float, default 150
        Dump places closer than this are linked into one hotspot cluster, metres.
    hotspot_min_vehicles : int, default 3
        Distinct trucks needed for a ``dump_hotspot``.
    max_speed_kmh : float, default 150
        Teleport rule: points implying a faster jump are outliers, dropped when
        preparing (batch) or on arrival (live); see
        :func:`haulwatch.geo.clean.drop_teleports`.
    teleport_min_jump_m : float, default 300
        Teleport rule: a jump shorter than this is never a teleport, metres.
    teleport_max_reversal_speed_kmh : float or None, default 45
        Teleport hairpin rule: a lone fix far from both neighbours where the track
        turns back is an outlier when the out-and-back speed exceeds this; None
        disables the rule.
    sensor_min_duration_s : float, default 120
        A ``load`` reading that holds for less time before the sensor says
        otherwise is a glitch, seconds.
    evidence_max_points : int, default 40
        Longest track piece written into an alert's evidence, points.
    timezone : str or None, default None
        IANA zone of local days and summaries; None uses the dataset's ``timezone``.
    """

    stop_diameter_m: float = 100.0
    stop_min_duration_s: float = 120.0
    load_min_duration_s: float = 300.0
    unload_min_duration_s: float = 120.0
    dump_min_duration_s: float = 60.0
    disposal_buffer_m: float = 150.0
    origin_buffer_m: float = 50.0
    depot_buffer_m: float = 50.0
    visit_merge_s: float = 180.0
    corridor_default_m: float = 150.0
    deviation_min_points: int = 2
    deviation_min_duration_s: float = 120.0
    deviation_min_excess_m: float = 100.0
    gap_max_s: float = 600.0
    manifest_slack_s: float = 900.0
    hotspot_radius_m: float = 150.0
    hotspot_min_vehicles: int = 3
    max_speed_kmh: float = 150.0
    teleport_min_jump_m: float = 300.0
    teleport_max_reversal_speed_kmh: float | None = 45.0
    sensor_min_duration_s: float = 120.0
    evidence_max_points: int = 40
    timezone: str | None = None

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            object.__setattr__(self, field.name, _checked(field.name, value))

    @property
    def site_buffer_m(self) -> dict[str, float]:
        """Buffer per site kind, metres (``origin``, ``disposal``, ``depot``)."""
        return {
            "origin": self.origin_buffer_m,
            "disposal": self.disposal_buffer_m,
            "depot": self.depot_buffer_m,
        }

    @property
    def teleport_rule(self) -> dict[str, float | None]:
        """Keyword arguments of :func:`haulwatch.geo.clean.drop_teleports` (batch and live)."""
        return {
            "max_speed_kmh": self.max_speed_kmh,
            "min_jump_m": self.teleport_min_jump_m,
            "max_reversal_speed_kmh": self.teleport_max_reversal_speed_kmh,
        }

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """Names of every setting, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    def with_overrides(self, overrides: Mapping[str, Any]) -> AuditConfig:
        """Return a copy with some settings replaced.

        Parameters
        ----------
        overrides : Mapping[str, Any]
            Setting name → value. Strings are converted to the setting's type
            (so ``{"gap_max_s": "900"}`` from ``--set gap_max_s=900`` works).

        Returns
        -------
        AuditConfig

        Raises
        ------
        AuditConfigError
            On an unknown key or a value of the wrong type or out of range.
        """
        if not isinstance(overrides, Mapping):
            raise AuditConfigError(
                f"overrides must be a mapping of setting name to value, got {type(overrides).__name__}"
            )
        allowed = self.keys()
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            if key not in allowed:
                raise AuditConfigError(
                    f"unknown audit setting {key!r} (value {value!r}); allowed: {', '.join(allowed)}"
                )
            changes[key] = _coerce(key, value)
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_toml(cls, path: str | Path) -> AuditConfig:
        """Read settings from a TOML file (top level or an ``[audit]`` table).

        Parameters
        ----------
        path : str or Path
            The file. Settings it does not name keep their defaults.

        Returns
        -------
        AuditConfig

        Raises
        ------
        AuditConfigError
            When the file is missing or not TOML, or on an unknown key / bad value.
        """
        path = Path(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise AuditConfigError(f"audit config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise AuditConfigError(f"audit config file {str(path)!r} is not valid TOML: {exc}") from None
        if "audit" in data:
            table = data["audit"]
            if not isinstance(table, dict):
                raise AuditConfigError(
                    f"key 'audit' in {str(path)!r} must be a table, got {table!r}"
                )
            other = [k for k in data if k != "audit"]
            if other:
                raise AuditConfigError(
                    f"{str(path)!r}: keys {other} outside the [audit] table; put every setting in it"
                )
            data = table
        return cls().with_overrides(data)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> AuditConfig:
        """The one way every face builds its config: a TOML file, then overrides.

        Parameters
        ----------
        path : str or Path, optional
            TOML file (:meth:`from_toml`); None starts from the defaults.
        overrides : Mapping[str, Any], optional
            Settings applied after the file (:meth:`with_overrides`, e.g. ``--set``).

        Returns
        -------
        AuditConfig

        Raises
        ------
        AuditConfigError
            As :meth:`from_toml` and :meth:`with_overrides`.
        """
        config = cls.from_toml(path) if path is not None and str(path) != "" else cls()
        return config.with_overrides(overrides) if overrides else config

    def to_dict(self) -> dict[str, Any]:
        """Settings as a plain dict (for reports and evidence)."""
        return dataclasses.asdict(self)


_INT_FIELDS = {"deviation_min_points", "hotspot_min_vehicles", "evidence_max_points"}
#: Settings that may be None (``none`` or empty on the command line).
_OPTIONAL_FIELDS = {"timezone", "teleport_max_reversal_speed_kmh"}


def _coerce(key: str, value: Any) -> Any:
    """Convert a TOML / CLI value to the setting's type (validation follows)."""
    if key in _OPTIONAL_FIELDS:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        if key == "timezone":
            return value
    if isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            kind = "an integer" if key in _INT_FIELDS else "a number"
            raise AuditConfigError(
                f"audit setting {key!r}: value {value!r} is not {kind}"
            ) from None
        if key in _INT_FIELDS and number.is_integer():
            return int(number)
        return number
    return value


def _checked(key: str, value: Any) -> Any:
    """Validate one setting; return it in canonical type."""
    if key in _OPTIONAL_FIELDS and value is None:
        return None
    if key == "timezone":
        if not isinstance(value, str):
            raise AuditConfigError(
                f"audit setting 'timezone': value {value!r} must be an IANA zone name like "
                f"{DEFAULT_TIMEZONE!r} or None"
            )
        return check_timezone(value, what="audit setting 'timezone': value", error=AuditConfigError)
    low, inclusive = _LOWER_BOUNDS[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuditConfigError(
            f"audit setting {key!r}: value {value!r} is not a number"
        )
    if key in _INT_FIELDS:
        if isinstance(value, float):
            if not value.is_integer():
                raise AuditConfigError(
                    f"audit setting {key!r}: value {value!r} must be a whole number"
                )
            value = int(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise AuditConfigError(f"audit setting {key!r}: value {value!r} must be finite")
    ok = value >= low if inclusive else value > low
    if not ok:
        bound = f">= {low:g}" if inclusive else f"> {low:g}"
        raise AuditConfigError(f"audit setting {key!r}: value {value!r} must be {bound}")
    return value
