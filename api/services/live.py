"""The live audit runner: new points → :class:`haulwatch.routes.live.LiveAuditor` → store and stream.

:class:`LiveRunner` runs the audit on one worker thread and batches concurrent
pushes (group commit); :func:`restore_live` replays stored points after a
restart so open windows survive.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

import pandas as pd

from haulwatch import waiting
from haulwatch.api.services.events import publish_alerts
from haulwatch.api.services.store import plate_key

if TYPE_CHECKING:
    from haulwatch.api.deps import Service

log = logging.getLogger("haulwatch.api")


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
            waiting.join(thread, timeout_s)

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
        from haulwatch.api.services.fleet import auto_dispatch

        auto_dispatch(svc, list(result.inserted))  # off unless HAULWATCH_AUTO_DISPATCH=on
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
