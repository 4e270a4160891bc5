"""The flight record: what a drone flight did, JSON-serialisable.

:class:`FlightRecord` is filled by ``drone.link.VehicleLink.fly_mission`` while
the vehicle flies and returned at the end; the API stores it with the mission
and the ``haulwatch fly --record`` command writes it as JSON.

Times: ``t_s`` fields are vehicle seconds since boot (``time_boot_ms`` / 1000,
or the link's vehicle clock when a message carries no timestamp); wall-clock
instants (``started_at``, ``ended_at``) are ISO 8601 UTC with ``Z``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["OUTCOMES", "FlightRecord", "utc_now_iso"]

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
        Positions flown (``GLOBAL_POSITION_INT``), altitude above home.
    items_reached : list of int
        Mission sequence numbers in the order ``MISSION_ITEM_REACHED`` reported them.
    photos : list of dict
        ``{"t_s", "index", "lat_deg", "lon_deg", "alt_rel_m"}`` per ``CAMERA_FEEDBACK``.
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
        configured, or the link disarmed a landed vehicle itself).
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
