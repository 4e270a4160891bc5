"""Score alerts against a ground-truth file: precision, recall and F1 per alert kind.

The matching rule is the one of ``docs/internals.md``: an alert matches a
truth row of the same kind when the normalized vehicle ids are equal (for
``dump_hotspot``: the places are within ``hotspot_match_m`` and on the same
local day) and their time windows overlap once both are widened by
``tolerance_s``. Each truth row matches at most one alert and vice versa;
pairs are taken greedily, largest widened overlap first (ties: closest
starts, then file order), so the result does not depend on row order.

Truth rows whose kind starts with ``innocent_`` are stops that must raise no
alert: they are not scored, but alerts of the stop kinds (``illegal_dump``,
``unpermitted_origin``) whose window overlaps one of them (same vehicle, no
widening) are counted as ``innocent_hits``, and so are ``route_deviation`` alerts
overlapping a service road, urban canyon or multipath jump (:data:`ROUTE_INNOCENTS`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from haulwatch.errors import UserError
from haulwatch.ingest.plates import normalize_plate
from haulwatch.routes.alerts import DEFAULT_TIMEZONE, KINDS

__all__ = [
    "EVALUATION_COLUMNS",
    "INNOCENT_PREFIX",
    "ROUTE_INNOCENTS",
    "STOP_KINDS",
    "EvaluationError",
    "evaluate",
    "match",
    "read_truth",
]

#: Columns of the frame :func:`evaluate` returns.
EVALUATION_COLUMNS: tuple[str, ...] = (
    "kind", "tp", "fp", "fn", "precision", "recall", "f1", "innocent_hits",
)
#: Truth kinds with this prefix are innocent stops.
INNOCENT_PREFIX = "innocent_"
#: Alert kinds that are a stop, so can be raised on an innocent stop by mistake.
STOP_KINDS: tuple[str, ...] = ("illegal_dump", "unpermitted_origin")
#: Innocent situations on the road that a ``route_deviation`` must not sit on (a
#: service road inside the corridor, GPS noise in an urban canyon, a multipath jump).
ROUTE_INNOCENTS: tuple[str, ...] = ("innocent_service_road", "innocent_urban_canyon", "innocent_multipath")
_EARTH_RADIUS_M = 6_371_008.8


class EvaluationError(UserError, ValueError):
    """An alerts or truth table lacks a column, or a parameter is out of range."""


def read_truth(path: str | Path) -> pd.DataFrame:
    """Read a ``truth.csv`` (docs/internals.md) with ``start``/``end`` as UTC timestamps.

    Parameters
    ----------
    path : str or Path
        The file, or a folder holding ``truth.csv``.

    Returns
    -------
    pandas.DataFrame
    """
    p = Path(path)
    if p.is_dir():
        p = p / "truth.csv"
    df = pd.read_csv(p, dtype={"vehicle_id": str, "site_id": str, "manifest_id": str,
                               "note": str, "kind": str, "truth_id": str}, keep_default_na=False)
    return _prepare(df, "truth", DEFAULT_TIMEZONE)


def _prepare(df: pd.DataFrame, name: str, timezone: str) -> pd.DataFrame:
    missing = [c for c in ("kind", "vehicle_id", "start", "end") if c not in df.columns]
    if missing:
        raise EvaluationError(
            f"{name} table lacks column(s) {missing}; it needs kind, vehicle_id, start, end "
            f"(and lon, lat for dump_hotspot)"
        )
    out = pd.DataFrame({
        "kind": df["kind"].astype(str).to_numpy(),
        "vehicle_id": df["vehicle_id"].fillna("").astype(str).to_numpy(),
        "start": _utc(df["start"], f"{name}.start", timezone),
        "end": _utc(df["end"], f"{name}.end", timezone),
        "lon": pd.to_numeric(df["lon"], errors="coerce").to_numpy() if "lon" in df else np.nan,
        "lat": pd.to_numeric(df["lat"], errors="coerce").to_numpy() if "lat" in df else np.nan,
    })
    out["vehicle_key"] = normalize_plate(out["vehicle_id"]).fillna("")
    return out


def _utc(col: pd.Series, name: str, timezone: str) -> pd.Series:
    values = pd.Series(col).reset_index(drop=True)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC")
    else:
        try:
            out = pd.to_datetime(values, format="ISO8601", utc=False)
        except (ValueError, TypeError) as exc:
            raise EvaluationError(f"{name} has values that are not ISO 8601 times: {exc}") from exc
        if isinstance(out.dtype, pd.DatetimeTZDtype):
            out = out.dt.tz_convert("UTC")
        else:  # naive: the dataset's local time
            out = out.dt.tz_localize(timezone).dt.tz_convert("UTC")
    if out.isna().any():
        raise EvaluationError(f"{name} has missing times (row {int(np.flatnonzero(out.isna())[0]) + 1})")
    from haulwatch.ingest.limits import TIME_MAX, TIME_MIN, snippet, text_year_out_of_range

    # the time range of every entry point; a year pandas shifts by an offset is caught as text
    far = np.zeros(len(values), dtype=bool) if pd.api.types.is_datetime64_any_dtype(
        values.dtype) else text_year_out_of_range(values.tolist())
    far |= ((out < TIME_MIN) | (out >= TIME_MAX)).to_numpy()
    if far.any():
        row = int(np.flatnonzero(far)[0])
        raise EvaluationError(f"{name} row {row + 1}: {snippet(values.iloc[row])} is outside "
                              f"{TIME_MIN:%Y-%m-%d}..{TIME_MAX:%Y-%m-%d} UTC")
    return out.astype("datetime64[ns, UTC]")


def _seconds(s: pd.Series) -> np.ndarray:
    return s.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]").to_numpy().astype(np.int64) / 1e9


def _haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = map(np.radians, (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def match(
    alerts: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    tolerance_s: float = 300.0,
    timezone: str = DEFAULT_TIMEZONE,
    hotspot_match_m: float = 300.0,
) -> pd.DataFrame:
    """Match alerts to truth rows one-to-one (the rule of docs/internals.md).

    Parameters
    ----------
    alerts, truth : pandas.DataFrame
        Columns ``kind, vehicle_id, start, end`` (and ``lon, lat`` for
        ``dump_hotspot``); times tz-aware or ISO 8601 text (naive = ``timezone``).
        Innocent truth rows are ignored here.
    tolerance_s : float, default 300
        Both windows are widened by this many seconds on each side.
    timezone : str, default "Asia/Shanghai"
        Zone of naive times and of the "same local day" of hotspots.
    hotspot_match_m : float, default 300
        Largest distance between a hotspot alert and its truth row, metres.

    Returns
    -------
    pandas.DataFrame
        One row per matched pair: ``alert_index``, ``truth_index`` (positions
        in the inputs), ``kind``, ``overlap_s`` (widened overlap).
    """
    _check_params(tolerance_s, hotspot_match_m)
    a = _prepare(alerts, "alerts", timezone)
    t = _prepare(truth, "truth", timezone)
    return _match(a, t, tolerance_s, timezone, hotspot_match_m)


def _check_params(tolerance_s: float, hotspot_match_m: float) -> None:
    for name, v in (("tolerance_s", tolerance_s), ("hotspot_match_m", hotspot_match_m)):
        if not isinstance(v, (int, float, np.integer, np.floating)) or not np.isfinite(v) or v < 0:
            raise EvaluationError(f"{name}={v!r} is not allowed; {name} must be a number >= 0")


def _match(a: pd.DataFrame, t: pd.DataFrame, tol: float, timezone: str,
           hotspot_m: float) -> pd.DataFrame:
    a = a.assign(ai=np.arange(len(a)), s=_seconds(a["start"]), e=_seconds(a["end"]))
    t = t.assign(ti=np.arange(len(t)), s=_seconds(t["start"]), e=_seconds(t["end"]))
    t = t[~t["kind"].str.startswith(INNOCENT_PREFIX)]
    hot_a, hot_t = a["kind"] == "dump_hotspot", t["kind"] == "dump_hotspot"
    pairs = a[~hot_a].merge(t[~hot_t], on=["kind", "vehicle_key"], suffixes=("_a", "_t"))
    ha, ht = a[hot_a], t[hot_t]
    if len(ha) and len(ht):
        ha = ha.assign(day=ha["start"].dt.tz_convert(timezone).dt.date)
        ht = ht.assign(day=ht["start"].dt.tz_convert(timezone).dt.date)
        hp = ha.merge(ht, on=["kind", "day"], suffixes=("_a", "_t"))
        d = _haversine_m(hp["lon_a"], hp["lat_a"], hp["lon_t"], hp["lat_t"])
        pairs = pd.concat([pairs, hp[d <= hotspot_m]], ignore_index=True)
    cols = ["alert_index", "truth_index", "kind", "overlap_s"]
    if pairs.empty:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "overlap_s" else
                                          (object if c == "kind" else np.int64)) for c in cols})
    overlap = (np.minimum(pairs["e_a"], pairs["e_t"]) + tol
               - (np.maximum(pairs["s_a"], pairs["s_t"]) - tol))
    pairs = pairs.assign(overlap_s=overlap, dstart=np.abs(pairs["s_a"] - pairs["s_t"]))
    pairs = pairs[pairs["overlap_s"] >= 0].sort_values(
        ["overlap_s", "dstart", "ti", "ai"], ascending=[False, True, True, True], kind="stable")
    used_a: set[int] = set()
    used_t: set[int] = set()
    rows = []
    # greedy one-to-one assignment over candidate pairs (a few per truth row)
    for ai, ti, kind, ov in zip(pairs["ai"].to_numpy(), pairs["ti"].to_numpy(),
                                pairs["kind"].to_numpy(), pairs["overlap_s"].to_numpy(),
                                strict=True):
        if ai in used_a or ti in used_t:
            continue
        used_a.add(ai)
        used_t.add(ti)
        rows.append((int(ai), int(ti), kind, float(ov)))
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({"alert_index": np.int64, "truth_index": np.int64, "overlap_s": float})


def evaluate(
    alerts: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    tolerance_s: float = 300.0,
    timezone: str = DEFAULT_TIMEZONE,
    hotspot_match_m: float = 300.0,
) -> pd.DataFrame:
    """Score alerts against ground truth, per alert kind.

    Parameters
    ----------
    alerts : pandas.DataFrame
        The alerts frame (``routes.alerts``; at least ``kind, vehicle_id,
        start, end``, plus ``lon, lat`` for ``dump_hotspot``).
    truth : pandas.DataFrame
        ``truth.csv`` as read by :func:`read_truth` (or the same columns as text).
    tolerance_s : float, default 300
        Both time windows are widened by this many seconds on each side
        before testing overlap.
    timezone : str, default "Asia/Shanghai"
        Zone of naive times, and of the local day that hotspots must share.
    hotspot_match_m : float, default 300
        Largest distance between a matched hotspot alert and truth row, metres.

    Returns
    -------
    pandas.DataFrame
        One row per alert kind (the contract's kinds, then any other kind seen),
        then a row ``all`` (micro-average), with columns :data:`EVALUATION_COLUMNS`:
        ``tp, fp, fn`` (int), ``precision = tp / (tp + fp)``, ``recall = tp /
        (tp + fn)``, ``f1`` (NaN when undefined: no alerts, or no truth rows),
        ``innocent_hits`` (nullable int: alerts of :data:`STOP_KINDS` that
        overlap an innocent stop of the same vehicle; NA for other kinds).
        ``result.attrs["innocent_hits_by_kind"]`` breaks the hits down by
        innocent kind.

    Raises
    ------
    EvaluationError
        When a table lacks a column, has unreadable times, or a parameter is
        out of range.
    """
    _check_params(tolerance_s, hotspot_match_m)
    a = _prepare(alerts, "alerts", timezone)
    t = _prepare(truth, "truth", timezone)
    pairs = _match(a, t, float(tolerance_s), timezone, float(hotspot_match_m))
    scored = t[~t["kind"].str.startswith(INNOCENT_PREFIX)]
    extra = sorted((set(a["kind"]) | set(scored["kind"])) - set(KINDS))
    kinds = [*KINDS, *extra]
    tp = pairs["kind"].value_counts()
    n_alerts = a["kind"].value_counts()
    n_truth = scored["kind"].value_counts()
    hits, by_innocent = _innocent_hits(a, t)
    rows = []
    for kind in kinds:
        k_tp = int(tp.get(kind, 0))
        rows.append(_scores(kind, k_tp, int(n_alerts.get(kind, 0)) - k_tp,
                            int(n_truth.get(kind, 0)) - k_tp,
                            hits.get(kind, 0) if kind in (*STOP_KINDS, "route_deviation") else pd.NA))
    total = pd.DataFrame(rows)
    rows.append(_scores("all", int(total["tp"].sum()), int(total["fp"].sum()),
                        int(total["fn"].sum()), sum(hits.values())))
    out = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
    out["innocent_hits"] = out["innocent_hits"].astype("Int64")
    out.attrs["innocent_hits_by_kind"] = by_innocent
    return out


def _scores(kind: str, tp: int, fp: int, fn: int, hits) -> dict:
    precision = tp / (tp + fp) if tp + fp else np.nan
    recall = tp / (tp + fn) if tp + fn else np.nan
    if np.isfinite(precision) and np.isfinite(recall):
        f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    else:
        f1 = np.nan
    return {"kind": kind, "tp": tp, "fp": fp, "fn": fn, "precision": precision,
            "recall": recall, "f1": f1, "innocent_hits": hits}


def _innocent_hits(a: pd.DataFrame, t: pd.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    inn = t[t["kind"].str.startswith(INNOCENT_PREFIX)]
    stop_alerts = a[a["kind"].isin((*STOP_KINDS, "route_deviation"))].assign(ai=lambda d: np.arange(len(d)))
    if inn.empty or stop_alerts.empty:
        return {}, {}
    pairs = stop_alerts.merge(inn, on="vehicle_key", suffixes=("_a", "_t"))
    hit = (pairs["start_a"] <= pairs["end_t"]) & (pairs["start_t"] <= pairs["end_a"])
    # a deviation is judged only against the road situations it could be mistaken for
    hit &= (pairs["kind_a"] != "route_deviation") | pairs["kind_t"].isin(ROUTE_INNOCENTS)
    pairs = pairs[hit]
    per_alert = pairs.drop_duplicates("ai")
    by_kind = {str(k): int(v) for k, v in per_alert["kind_a"].value_counts().items()}
    by_innocent = {str(k): int(v) for k, v in
                   pairs.drop_duplicates(["ai", "kind_t"])["kind_t"].value_counts().items()}
    return by_kind, by_innocent
