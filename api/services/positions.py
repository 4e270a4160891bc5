"""Pushed positions: validate point by point, store idempotently, hand new points on.

Points are validated by the same code that reads ``tracks.csv``
(:func:`haulwatch.ingest.tracks.tracks_from_table`) after the limits of
:mod:`haulwatch.ingest.limits`: a bad point is rejected with its index, field
and reason and the others go on. New points are stored idempotently (the same
vehicle and time count once); the caller feeds them to the live audit
(:mod:`haulwatch.api.services.live`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from haulwatch.timezone import DEFAULT_TIMEZONE

if TYPE_CHECKING:
    from haulwatch.api.deps import Service

_FIELDS = ("vehicle_id", "time", "lon", "lat", "speed_kmh", "heading_deg", "load", "lift")


def _column(values: list[Any]) -> pa.ChunkedArray:
    """JSON values → one pyarrow column (mixed or nested types become text)."""
    try:
        arr = pa.array(values)
        if pa.types.is_nested(arr.type):
            raise TypeError("nested")
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        arr = pa.array(
            [None if v is None else (json.dumps(v) if isinstance(v, (dict, list)) else str(v))
             for v in values],
            type=pa.string(),
        )
    if pa.types.is_null(arr.type):
        arr = arr.cast(pa.string())
    return pa.chunked_array([arr])


def validate_points(raw: list[dict[str, Any]], *, timezone: str,
                    ) -> tuple[pd.DataFrame, list[dict[str, Any]], int]:
    """Validate pushed points like rows of ``tracks.csv``.

    Parameters
    ----------
    raw : list of dict
        The pushed points (keys of :class:`~haulwatch.api.schemas.PositionIn`).
    timezone : str
        Zone of naive times (the dataset's).

    Returns
    -------
    tracks : DataFrame
        Valid points, sorted by vehicle and time, batch duplicates removed;
        ``src_row`` is the 1-based batch position.
    rejected : list of dict
        ``{"index", "field", "reason"}`` per refused point (0-based index).
    duplicates : int
        Points repeated within the batch (same vehicle and time).
    """
    from haulwatch.ingest.tracks import tracks_from_table

    # points without a vehicle are refused here (the reader needs at least one plate)
    missing = [i for i, p in enumerate(raw) if p.get("vehicle_id") in (None, "")]
    rejected: list[dict[str, Any]] = [
        {"index": i, "field": "vehicle_id", "reason": "missing vehicle_id"} for i in missing]
    gone = set(missing)
    keep = [i for i in range(len(raw)) if i not in gone]
    if not keep:
        return _empty_tracks(), rejected, 0
    pts = [raw[i] for i in keep]
    cols = {}
    for name in _FIELDS:
        values = [p.get(name) for p in pts]
        if name in ("vehicle_id", "time", "lon", "lat") or any(v is not None for v in values):
            cols[name] = _column(values)
    result = tracks_from_table(cols, len(pts), file="positions", timezone=timezone)
    rej = result.rejects
    if len(rej):
        dropped = rej[rej["action"] == "row_dropped"] if "action" in rej.columns else rej
        rejected += [
            {"index": keep[int(row) - 1], "field": str(field), "reason": str(reason)}
            for row, field, reason in zip(dropped["row"], dropped["field"], dropped["reason"],
                                          strict=True)
        ]
    tracks = result.tracks
    tracks = tracks.assign(src_row=np.asarray(keep, dtype="int64")[
        tracks["src_row"].to_numpy("int64") - 1] + 1)
    rejected.sort(key=lambda r: r["index"])
    return tracks, rejected, int(result.duplicates_dropped)


def _empty_tracks() -> pd.DataFrame:
    from haulwatch.ingest.tracks import empty_tracks

    return empty_tracks()


def ingest_points(svc: Service, raw: list[dict[str, Any]],
                  ) -> tuple[int, int, list[dict[str, Any]], pd.DataFrame | None]:
    """Validate, then store the new points of a push.

    Returns
    -------
    accepted, duplicates, rejected, new
        New points stored, points already stored or repeated, per-point
        rejects (index, field, reason), and the new points (None when none).
    """
    tz = svc.registry.timezone if svc.registry is not None else DEFAULT_TIMEZONE
    if not raw:
        return 0, 0, [], None
    tracks, rejected, duplicates = validate_points(raw, timezone=tz)
    if len(tracks) == 0:
        return 0, duplicates, rejected, None
    tracks = tracks.assign(
        vehicle_id=tracks["vehicle_id"].astype(str), vehicle_key=tracks["vehicle_key"].astype(str),
        load=tracks["load"].astype(object).where(tracks["load"].notna(), None))
    new = svc.store.insert_points(tracks)
    accepted = int(new.sum())
    duplicates += int((~new).sum())
    return accepted, duplicates, rejected, (tracks.loc[new].reset_index(drop=True)
                                            if accepted else None)
