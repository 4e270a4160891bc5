"""The live audit: a day pushed in batches, out of order or back-filled gives the batch audit's alerts."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import shapely

from haulwatch.ingest.dataset import read_dataset
from haulwatch.ingest.prepare import prepare
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


def test_replay_with_a_worker_process_equals_batch_audit(day):
    # windows split between this process and a worker (by vehicles) give the same alerts
    raw, dataset, batch = day
    live = LiveAuditor(dataset, workers=1)
    live.parallel_min_points = 0  # every run shared, however small
    try:
        for chunk in _slices(raw.tracks, "40min"):
            live.push(chunk)
        assert live._pool is not None  # the worker did the work (it did not die)
        assert_same_alerts(batch, live.alerts)
    finally:
        live.close()
    assert live._pool is None
    live.push(raw.tracks.iloc[:5])  # after close: audited in this process


def _dead_zones(tracks: pd.DataFrame, batch: pd.DataFrame, pad: str = "15min") -> pd.Series:
    """Mask of the points of a dead zone per dumping truck: around each of its dumps."""
    hidden = pd.Series(False, index=tracks.index)
    dumps = batch[batch["kind"] == "illegal_dump"]
    keys = tracks["vehicle_key"].astype(str)
    for vid, start, end in zip(dumps["vehicle_id"], dumps["start"], dumps["end"], strict=True):
        key = keys[tracks["vehicle_id"].astype(str) == vid]
        mine = keys.index.isin(key.index)
        hidden |= mine & (tracks["time"] >= start - pd.Timedelta(pad)) & \
            (tracks["time"] <= end + pd.Timedelta(pad))
    return hidden


def test_backfilled_dead_zone_is_audited_in_time_order(day):
    # Trucks go dark around their dumps; the terminals send the blind-area points
    # hours later (JT/T 808 0x0704). The back-filled points are audited in time
    # order: the dumps appear when the back-fill arrives, the gaps the silence
    # raised are withdrawn, and the end state is the batch audit's.
    raw, dataset, batch = day
    tracks = raw.tracks
    hidden = _dead_zones(tracks, batch)
    assert hidden.any() and (batch["kind"] == "illegal_dump").sum() >= 1
    live = LiveAuditor(dataset, backfill_s=6 * 3600)
    chunks = _slices(tracks[~hidden], "20min")
    later = _slices(tracks[hidden], "60min")  # each back-fill sent ~2 h after its zone
    dump_ids = set(batch.loc[batch["kind"] == "illegal_dump", "alert_id"])
    seen: set[str] = set()
    withdrawn: set[str] = set()
    backfilled = late = 0
    for chunk in chunks:
        t_now = chunk["time"].max()
        while later and later[0]["time"].max() < t_now - pd.Timedelta("2h"):
            fill = later.pop(0).sample(frac=1.0, random_state=1)  # any order inside the upload
            upd = live.push(fill)
            backfilled += upd.backfilled
            late += upd.late
            seen.update(upd.new_ids)
            withdrawn.update(upd.withdrawn)
        upd = live.push(chunk)
        seen.update(upd.new_ids)
        withdrawn.update(upd.withdrawn)
    for fill in later:
        upd = live.push(fill)
        backfilled += upd.backfilled
        late += upd.late
        seen.update(upd.new_ids)
        withdrawn.update(upd.withdrawn)
    assert late == 0 and backfilled > 0
    assert dump_ids <= seen  # the dark dumps were found when their points came
    assert withdrawn  # what the silence alone suggested (gaps) was withdrawn
    assert_same_alerts(batch, live.alerts)


def test_out_of_order_pushes_equal_batch_audit(day):
    # Reports of each 30 minutes arrive shuffled, vehicles interleaved, some
    # points a few minutes late: same alerts as the batch audit.
    raw, dataset, batch = day
    rng = np.random.default_rng(5)
    tracks = raw.tracks.assign(_arrive=raw.tracks["time"] + pd.to_timedelta(
        rng.exponential(60.0, len(raw.tracks)), unit="s"))
    live = LiveAuditor(dataset)
    for chunk in _slices(tracks.rename(columns={"time": "_t", "_arrive": "time"}), "30min"):
        chunk = chunk.rename(columns={"time": "_arrive", "_t": "time"}).sample(frac=1.0, random_state=2)
        live.push(chunk.drop(columns="_arrive"))
    assert_same_alerts(batch, live.alerts)


def test_points_too_late_are_counted_and_resent_points_ignored(day):
    raw, dataset, _ = day
    live = LiveAuditor(dataset, backfill_s=0)  # keeps no settled point
    for chunk in _slices(raw.tracks, "3h"):
        live.push(chunk)
    settled = [k for k in raw.tracks["vehicle_key"].astype(str).unique() if live.cut_of(k) is not None]
    assert settled
    key = settled[0]
    cut = live.cut_of(key)
    mine = raw.tracks[(raw.tracks["vehicle_key"].astype(str) == key) & (raw.tracks["time"] <= cut)]
    early = mine.head(3).copy()
    early["time"] = early["time"] - pd.Timedelta(milliseconds=1)  # new times, long settled
    before = live.alerts
    update = live.push(early)
    assert update.late == 3 and update.backfilled == 0 and len(update.changed) == 0
    # with the default reach, a re-sent settled point is a duplicate: nothing happens
    live2 = LiveAuditor(dataset)
    for chunk in _slices(raw.tracks, "3h"):
        live2.push(chunk)
    cut2 = live2.cut_of(key)
    again = raw.tracks[(raw.tracks["vehicle_key"].astype(str) == key)
                       & (raw.tracks["time"] <= cut2)].tail(2)
    update = live2.push(again)
    assert (update.late, update.backfilled, len(update.changed), update.withdrawn) == (0, 0, 0, [])
    assert len(live.alerts) == len(before)


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
    for bad in (-1, 1.5, True):
        with pytest.raises(LiveInputError, match="workers"):
            LiveAuditor(dataset, workers=bad)
    with pytest.raises(LiveInputError, match="depot_keep_s: -1"):
        LiveAuditor(dataset, depot_keep_s=-1)
    with pytest.raises(LiveInputError, match="backfill_s: -1"):
        LiveAuditor(dataset, backfill_s=-1)
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
