"""haulwatch.waiting: Event.wait / Thread.join without a timed lock wait."""

from __future__ import annotations

import threading

import pytest

from haulwatch import waiting


def test_wait_returns_true_once_the_event_is_set_by_another_thread():
    event = threading.Event()
    threading.Thread(target=event.set, daemon=True).start()
    assert waiting.wait(event, 60.0)  # decided by the event, not by the timeout


def test_wait_times_out_false_and_looks_once_at_zero_or_negative():
    event = threading.Event()
    assert waiting.wait(event, 0.01) is False
    assert waiting.wait(event, 0.0) is False
    assert waiting.wait(event, -5.0) is False
    event.set()
    assert waiting.wait(event, 0.0) is True
    assert waiting.wait(event, -5.0) is True


def test_join_waits_for_the_thread_and_reports_it_finished():
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    assert waiting.join(worker, 0.01) is False  # still blocked on release
    assert worker.is_alive()
    release.set()
    assert waiting.join(worker, 60.0) is True
    assert not worker.is_alive()


def test_join_of_a_thread_never_started_returns_at_once():
    assert waiting.join(threading.Thread(target=lambda: None), 60.0) is True


@pytest.mark.parametrize("bad", [float("nan")])
def test_nan_timeout_gives_up_instead_of_spinning(bad):
    assert waiting.wait(threading.Event(), bad) is False
    release = threading.Event()
    worker = threading.Thread(target=release.wait, daemon=True)
    worker.start()
    try:
        assert waiting.join(worker, bad) is False
    finally:
        release.set()
