"""The live audit: a day pushed in batches gives the batch audit's alerts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import shapely

from haulwatch.ingest.prepare import prepare
from haulwatch.ingest.dataset import read_dataset
from haulwatch.ingest.synthetic import generate
from haulwatch.routes.audit import audit
from haulwatch.routes.live import LiveAuditor, LiveInputError

TEXT = ("kind", "vehicle_id", "start", "end", "severity", "manifest_id", "site_id", "summary",
        "trip_id")


def _close(a, b, tol=1e-9) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b), rel_tol=0, abs_tol=tol)
    return a == b


def assert_same_alerts(batch: pd.DataFrame, live: pd.DataFrame) -> None:
    """Same ids and content; floats equal to 1e-9 (a mean summed in another order)."""
    b = batch.set_index("alert_id").sort_index()
    lv = live.set_index("alert_id").sort_index()
    assert list(lv.index) == list(b.index)
    for col in TEXT:
        mism = b.index[(b[col] != lv[col]).to_numpy()]
        assert len(mism) == 0, (col, list(mism[:3]))
    np.testing.assert_allclose(lv["lon"], b["lon"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(lv["lat"], b["lat"], rtol=0, atol=1e-9)
    assert shapely.equals_exact(np.asarray(b.geometry.values), np.asarray(lv.geometry.values),
                                tolerance=1e-9).all()
    for aid in b.index:
        assert _close(json.loads(b.at[aid, "evidence"]), json.loads(lv.at[aid, "evidence"])), aid


@pytest.fixture(scope="module", params=[("none", "gcj02", 7), ("all", "wgs84", 13)],
            ids=["track-only-gcj02", "sensors-wgs84"])
def day(request, tmp_path_factory):
    sensors, coords, seed = request.param
    folder = tmp_path_factory.mktemp(f"live-{sensors}")
    generate(folder, trucks=9, days=1, seed=seed, sensors=sensors, coord_system=coords,
             violation_rate=0.25, bad_row_fraction=0.0, duplicate_fraction=0.0)
    raw = read_dataset(folder)
    dataset = prepare(raw)
    return raw, dataset, audit(dataset).alerts


def _slices(tracks: pd.DataFrame, freq: str) -> list[pd.DataFrame]:
    ordered = tracks.sort_values("time", kind="stable")
    return [chunk for _, chunk in ordered.groupby(ordered["time"].dt.floor(freq), sort=True)]


def test_replay_in_batches_equals_batch_audit(day):
    raw, dataset, batch = day
    assert len(batch) >= 6 and batch["kind"].nunique() >= 4  # a meaningful day
    live = LiveAuditor(dataset)
    chunks = _slices(raw.tracks, "40min")
    seen_new: set[str] = set()
    first_end: dict[str, str] = {}
    grew: set[str] = set()
    for chunk in chunks:
        update = live.push(chunk)
        seen_new.update(update.new_ids)
        for aid, end in zip(update.changed["alert_id"], update.changed["end"], strict=True):
            if first_end.setdefault(aid, str(end)) != str(end):
                grew.add(aid)
    assert_same_alerts(batch, live.alerts)
    assert set(batch["alert_id"]) <= seen_new
    assert grew  # an alert whose window grew came back with the same id
    # settling keeps the open windows small: far less than the day is held
    assert live.window_points < 0.25 * len(raw.tracks)
    # points pushed twice change nothing
    again = live.push(chunks[len(chunks) // 2])
    assert len(again.changed) == 0 and again.withdrawn == []
    assert_same_alerts(batch, live.alerts)


def test_late_points_before_the_cut_are_counted_not_audited(day):
    raw, dataset, _ = day
    live = LiveAuditor(dataset)
    for chunk in _slices(raw.tracks, "3h"):
        live.push(chunk)
    key, cut = next(iter(live._cut.items()))
    early = raw.tracks[(raw.tracks["vehicle_key"].astype(str) == key)
                       & (raw.tracks["time"] <= cut)].head(3).copy()
    early["time"] = early["time"] - pd.Timedelta(milliseconds=1)  # new times, long settled
    update = live.push(early)
    assert update.late == len(early) == 3
    assert len(update.changed) == 0


def test_empty_push(day):
    _, dataset, _ = day
    live = LiveAuditor(dataset)
    update = live.push(pd.DataFrame(columns=["vehicle_id", "vehicle_key", "time", "lon", "lat"]))
    assert len(update.changed) == 0 and update.new_ids == [] and live.window_points == 0
    assert list(live.alerts.columns)[:2] == ["alert_id", "kind"]


def test_bad_input_and_parameters(day):
    raw, dataset, _ = day
    with pytest.raises(LiveInputError, match="max_window_s: 0"):
        LiveAuditor(dataset, max_window_s=0)
    with pytest.raises(LiveInputError, match="depot_keep_s: -1"):
        LiveAuditor(dataset, depot_keep_s=-1)
    live = LiveAuditor(dataset)
    naive = raw.tracks.head(5).assign(time=lambda f: f["time"].dt.tz_localize(None))
    with pytest.raises(LiveInputError, match=r"time: dtype .* not tz-aware"):
        live.push(naive)
    with pytest.raises(LiveInputError, match=r"missing column.*lat"):
        live.push(raw.tracks.head(5).drop(columns="lat"))


def test_old_days_are_retired_not_withdrawn(tmp_path):
    generate(tmp_path, trucks=5, days=3, seed=3, violation_rate=0.3, bad_row_fraction=0.0,
             duplicate_fraction=0.0)
    raw = read_dataset(tmp_path)
    dataset = prepare(raw)
    batch = audit(dataset).alerts
    live = LiveAuditor(dataset, retain_s=86_400)
    withdrawn: list[str] = []
    for chunk in _slices(raw.tracks, "4h"):
        withdrawn += live.push(chunk).withdrawn
    assert withdrawn == []
    horizon = live._horizon
    assert horizon is not None and horizon > raw.tracks["time"].min()
    frozen = live._frozen["rows"]
    assert len(frozen) == 0 or (pd.to_datetime(frozen["end"], utc=True) >= horizon).all()
    # what is still held matches the batch audit for the retained days
    recent = batch[batch["end"] >= horizon]
    got = live.alerts
    assert set(recent["alert_id"]) <= set(got["alert_id"]) <= set(batch["alert_id"])
    assert len(got) < len(batch)
