"""Live positions: ``POST /api/positions`` (terminals, gateways).

Points are validated by the same code that reads ``tracks.csv``
(:func:`haulwatch.ingest.tracks.tracks_from_table`): a bad point is rejected
with its index, field and reason and the others go on. New points are stored
idempotently (the same vehicle and time count once), then fed to the live
audit (:mod:`haulwatch.routes.live`), whose new or grown alerts are stored and
streamed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import Future
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from haulwatch.api.auth import Device
from haulwatch.api.deps import Service, ServiceDep
from haulwatch.api.routers_alerts import publish_alerts
from haulwatch.api.schemas import ErrorBody, PositionBatch, PositionResult
from haulwatch.api.store import plate_key
from haulwatch.timezone import DEFAULT_TIMEZONE

log = logging.getLogger("haulwatch.api")

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


class LiveRunner:
    """Runs the live audit on one worker thread, batching concurrent pushes.

    Pushes that arrive while a run is going are merged into the next run
    (group commit), so the audit's fixed cost is paid once per run, not per
    request. Each push gets back the ids of the new alerts of its vehicles
    (plus new cross-vehicle alerts, e.g. hotspots).

    Parameters
    ----------
    service : Service
        Its ``live`` (a :class:`haulwatch.routes.live.LiveAuditor`), store and hub are used.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self._pending: list[tuple[pd.DataFrame, Future]] = []
        self._cv = threading.Condition()
        self._closed = False
        self.runs = 0
        self._thread: threading.Thread | None = None
        self.start()

    def start(self) -> None:
        """Start the worker (again, after :meth:`close`)."""
        with self._cv:
            self._closed = False
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="haulwatch-live",
                                                daemon=True)
                self._thread.start()

    def submit(self, points: pd.DataFrame) -> Future:
        """Queue new points; the future resolves to the new alert ids they raised."""
        fut: Future = Future()
        with self._cv:
            if self._closed:
                fut.set_result([])
                return fut
            self._pending.append((points, fut))
            self._cv.notify()
        return fut

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the queued work and stop the worker."""
        with self._cv:
            self._closed = True
            self._cv.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._pending and not self._closed:
                    self._cv.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closed:
                    return
            try:
                per_push = run_live(self.service, [p for p, _ in batch])
            except Exception as exc:  # keep serving; the callers see the error
                log.exception("live audit failed")
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            self.runs += 1
            for (_, fut), ids in zip(batch, per_push, strict=True):
                fut.set_result(ids)


def run_live(svc: Service, pushes: list[pd.DataFrame]) -> list[list[str]]:
    """Feed new points to the live audit; store and stream what changed.

    Returns
    -------
    list of list of str
        Per push: ids of alerts that did not exist before and concern its
        vehicles (or no vehicle: hotspots).
    """
    points = pd.concat(pushes, ignore_index=True) if len(pushes) > 1 else pushes[0]
    update = svc.live.push(points)
    changed = update.changed
    inserted: list[str] = []
    if len(changed):
        result = svc.store.upsert_alerts(changed, by="live")
        inserted = result.inserted
        publish_alerts(svc, [*result.inserted, *result.updated])
    if update.withdrawn:
        gone = svc.store.withdraw_alerts(list(update.withdrawn))
        if gone:
            log.info("live audit withdrew %d alert(s) it no longer supports", len(gone))
    if not inserted:
        return [[] for _ in pushes]
    keys = plate_key(changed.set_index("alert_id").loc[inserted, "vehicle_id"])
    key_of = dict(zip(inserted, keys.to_numpy(), strict=True))
    out = []
    for p in pushes:
        mine = set(p["vehicle_key"].astype(str))
        out.append([a for a in inserted if key_of[a] in mine or key_of[a] == ""])
    return out


def restore_live(svc: Service, *, lookback_s: float = 86_400.0) -> int:
    """Rebuild the live audit's open windows from stored points after a restart.

    Replays the points of the last ``lookback_s`` seconds (before the newest
    stored point); alerts they give that the store lacks are stored. Nothing
    is streamed (no client is connected yet).

    Returns
    -------
    int
        Points replayed.
    """
    newest = svc.store.latest_point_time()
    if newest is None or svc.live is None:
        return 0
    points = svc.store.load_points(start=newest - pd.Timedelta(seconds=lookback_s))
    if len(points):
        update = svc.live.push(points)
        if len(update.changed):
            svc.store.upsert_alerts(update.changed, by="live")
    return len(points)


router = APIRouter(tags=["positions"])


@router.post(
    "/api/positions",
    response_model=PositionResult,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
    summary="Push GPS points (any vehicles, any order); returns alerts they raised",
)
async def push_positions(svc: ServiceDep, who: Device, body: PositionBatch) -> dict[str, Any]:
    """Store new points idempotently and run the live audit on the vehicles that moved.

    Points are validated one by one (bad ones come back in ``rejected`` with
    their index, field and reason). The response waits for the live audit run
    that includes these points (at most ``live_wait_s``); alerts are streamed
    on ``/api/stream`` either way.
    """
    raw = [p.model_dump() for p in body.points]
    accepted, duplicates, rejected, new = await run_in_threadpool(_ingest, svc, raw)
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


def _ingest(svc: Service, raw: list[dict[str, Any]],
            ) -> tuple[int, int, list[dict[str, Any]], pd.DataFrame | None]:
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
