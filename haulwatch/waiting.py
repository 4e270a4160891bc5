"""Timed waits that survive an odd clock: sleep in short slices instead of a timed lock wait.

CPython >= 3.11 implements ``threading.Event.wait(t)``, ``Thread.join(t)`` and
``Lock.acquire(timeout=t)`` with ``sem_clockwait(CLOCK_MONOTONIC, deadline)``. Under
Debian's ``faketime`` (libfaketime 0.9.10, even ``-f '+0s'``) that deadline reaches the
kernel as a Unix time on the monotonic clock (measured: futex ``tv_sec=1796414271`` with
an uptime of 6652 s), so such a wait never returns — a finished flight's dispatch thread
hung in ``abort.wait(0.2)``. ``time.sleep`` and ``select`` keep working there, so the
waits of the flight path (abort watchers, the GCS heartbeat, joins on stop) poll an event
or a thread in slices of at most ``slice_s`` seconds with :func:`time.sleep`. The cost is
up to ``slice_s`` of extra latency, nothing else.
"""

from __future__ import annotations

import math
import threading
import time

__all__ = ["join", "wait"]

_SLICE_S = 0.05


def wait(event: threading.Event, timeout_s: float, *, slice_s: float = _SLICE_S) -> bool:
    """Wait until ``event`` is set or ``timeout_s`` seconds have passed.

    Parameters
    ----------
    event : threading.Event
        The event to wait for.
    timeout_s : float
        Longest wait in seconds (0 or less: look once).
    slice_s : float, default 0.05
        Longest single sleep, i.e. the extra latency at worst.

    Returns
    -------
    bool
        True if the event is set (as :meth:`threading.Event.wait`).
    """
    if event.is_set():
        return True
    deadline = time.monotonic() + max(0.0, float(timeout_s))
    while True:
        left = deadline - time.monotonic()
        if not left > 0:  # also a NaN clock: give up rather than spin
            return event.is_set()
        time.sleep(min(slice_s, left))
        if event.is_set():
            return True


def join(thread: threading.Thread, timeout_s: float = math.inf, *,
         slice_s: float = _SLICE_S) -> bool:
    """Wait until ``thread`` has finished or ``timeout_s`` seconds have passed.

    Parameters
    ----------
    thread : threading.Thread
        A started thread (or one never started: returns at once).
    timeout_s : float, default inf
        Longest wait in seconds.
    slice_s : float, default 0.05
        Longest single sleep.

    Returns
    -------
    bool
        True if the thread has finished (not alive).
    """
    deadline = time.monotonic() + max(0.0, float(timeout_s))
    while thread.is_alive():
        left = deadline - time.monotonic()
        if not left > 0:
            return False
        time.sleep(min(slice_s, left))
    if thread.ident is not None:
        thread.join()  # finished: returns at once (no timed wait)
    return True
