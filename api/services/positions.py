"""Pushed positions: validate point by point, store idempotently, hand new points on.

Points are validated by the same code that reads ``tracks.csv``
(:func:`haulwatch.ingest.tracks.tracks_from_table`) after the limits of
:mod:`haulwatch.ingest.limits`: a bad point is rejected with its index, field
and reason and the others go on. New points are stored idempotently (the same
vehicle and time count once); the caller feeds them to the live audit
(:mod:`haulwatch.api.services.live`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from haulwatch.ingest import limits
from haulwatch.timezone import DEFAULT_TIMEZONE

if TYPE_CHECKING:
    from haulwatch.api.deps import Service

log = logging.getLogger("haulwatch.api")

_TEXT_MAX_CHARS = 64  # time, load and number fields written as text
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


def _screen(point: Any) -> tuple[str, str] | None:
    """The first limit a pushed point breaks (:mod:`haulwatch.ingest.limits`), or None."""
    if not isinstance(point, dict):
        return "point", f"must be an object, got {type(point).__name__} {limits.snippet(point)}"
    problem = limits.check_plate(point.get("vehicle_id"))
    if problem is not None:
        return problem
    for name in _FIELDS[1:]:
        value = point.get(name)
        if isinstance(value, str):
            problem = limits.check_text(value, name, max_chars=_TEXT_MAX_CHARS)
        elif isinstance(value, (dict, list)) or (isinstance(value, bool) and name != "lift"):
            problem = name, (f"must be a {'time' if name == 'time' else 'number'}, got "
                             f"{type(value).__name__} {limits.snippet(value)}")
            if name == "load":
                problem = name, f"must be empty, half or full, got {limits.snippet(value)}"
        if problem is not None:
            return problem
    return None


def validate_points(raw: list[dict[str, Any]], *, timezone: str,
                    ) -> tuple[pd.DataFrame, list[dict[str, Any]], int]:
    """Validate pushed points like rows of ``tracks.csv``, each point on its own.

    The limits of :mod:`haulwatch.ingest.limits` first (plate type and length,
    valid Unicode, text length, time range by a cheap year screen), then the
    tracks reader (:func:`haulwatch.ingest.tracks.tracks_from_table`). Should the
    reader fail on the batch, the batch is halved until the points it cannot
    read are found and rejected alone: a bad neighbour never loses a good point.

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
    rejected: list[dict[str, Any]] = []
    keep: list[int] = []
    for i, point in enumerate(raw):
        problem = _screen(point)
        if problem is None:
            keep.append(i)
        else:
            rejected.append({"index": i, "field": problem[0], "reason": problem[1]})
    times = [raw[i].get("time") for i in keep]
    far = limits.text_year_out_of_range(times)
    if far.any():
        for j in np.flatnonzero(far):
            rejected.append({"index": keep[j], "field": "time", "reason":
                             f"{limits.snippet(times[j])}: {limits.TIME_RANGE_REASON}"})
        keep = [k for k, bad in zip(keep, far, strict=True) if not bad]
    parts: list[pd.DataFrame] = []
    duplicates = _read(raw, keep, timezone, parts, rejected)
    if not parts:
        tracks = _empty_tracks()
    elif len(parts) == 1:
        tracks = parts[0]
    else:  # halves read apart: sort again, drop what repeats across halves
        tracks = pd.concat(parts, ignore_index=True).sort_values(
            ["vehicle_key", "time"], kind="stable", ignore_index=True)
        again = tracks.duplicated(["vehicle_key", "time"]).to_numpy()
        duplicates += int(again.sum())
        tracks = tracks.loc[~again].reset_index(drop=True)
    rejected.sort(key=lambda r: r["index"])
    return tracks, rejected, duplicates


def _read(raw: list[dict[str, Any]], keep: list[int], timezone: str,
          parts: list[pd.DataFrame], rejected: list[dict[str, Any]]) -> int:
    """Read the points ``keep`` with the tracks reader; halve on a reader failure."""
    from haulwatch.ingest.tracks import tracks_from_table

    if not keep:
        return 0
    pts = [raw[i] for i in keep]
    cols = {}
    for name in _FIELDS:
        values = [p.get(name) for p in pts]
        if name in ("vehicle_id", "time", "lon", "lat") or any(v is not None for v in values):
            cols[name] = _column(values)
    try:
        result = tracks_from_table(cols, len(pts), file="positions", timezone=timezone)
    except (ValueError, TypeError, OverflowError, ArithmeticError, LookupError,
            pa.ArrowException) as exc:
        if len(keep) == 1:
            field = "time" if isinstance(exc, (OverflowError, pd.errors.OutOfBoundsDatetime)) \
                else "point"
            log.info("pushed point %d refused by the reader: %s: %s", keep[0],
                     type(exc).__name__, exc)
            rejected.append({"index": keep[0], "field": field, "reason":
                             f"cannot be read ({type(exc).__name__}: "
                             f"{limits.snippet(str(exc), 80)})"})
            return 0
        half = len(keep) // 2
        return (_read(raw, keep[:half], timezone, parts, rejected)
                + _read(raw, keep[half:], timezone, parts, rejected))
    rej = result.rejects
    if len(rej):
        dropped = rej[rej["action"] == "row_dropped"] if "action" in rej.columns else rej
        rejected += [
            {"index": keep[int(row) - 1], "field": str(field), "reason": str(reason)}
            for row, field, reason in zip(dropped["row"], dropped["field"], dropped["reason"],
                                          strict=True)
        ]
    tracks = result.tracks
    if len(tracks):
        tracks = tracks.assign(src_row=np.asarray(keep, dtype="int64")[
            tracks["src_row"].to_numpy("int64") - 1] + 1)
        parts.append(tracks)
    return int(result.duplicates_dropped)


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


async def push_points(svc: Service, raw: list[dict[str, Any]]) -> dict[str, Any]:
    """A position push: validate and store (in a worker thread), then wait for the live audit.

    The answer waits for the live audit run that includes these points (at most
    ``settings.live_wait_s``); its alerts are streamed either way.

    Returns
    -------
    dict
        ``accepted``, ``duplicates``, ``rejected`` (index, field, reason), ``new_alerts``.
    """
    accepted, duplicates, rejected, new = await asyncio.to_thread(ingest_points, svc, raw)
    new_alerts: list[str] = []
    if new is not None and svc.live_runner is not None:
        fut = svc.live_runner.submit(new)
        try:
            new_alerts = await asyncio.wait_for(asyncio.wrap_future(fut),
                                                timeout=svc.settings.live_wait_s)
        except asyncio.TimeoutError:
            new_alerts = []  # still running: its alerts will be streamed
        except Exception:  # the points are stored; a live-audit failure must not lose them
            log.exception("live audit of %d pushed points failed", len(new))
            new_alerts = []
    return {"accepted": accepted, "duplicates": duplicates, "rejected": rejected,
            "new_alerts": new_alerts}
