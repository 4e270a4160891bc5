"""The alert and mission store: alerts, their status history, missions, points.

SQLite file by default (WAL mode, created on first start), PostgreSQL when a
``postgresql://`` URL is given (see :mod:`haulwatch.api.services.store_sql`). Times are
stored as UTC epoch microseconds; alert geometry as GeoJSON text, evidence as
JSON text. Status history is append-only: one row per status version.

The batch audit loads its results with :func:`import_alerts`::

    from haulwatch.api.services.store import import_alerts
    counts = import_alerts(result.alerts, "sqlite:///haulwatch.db")
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from haulwatch.api.services.store_sql import Database, migrate
from haulwatch.errors import HaulwatchError, UserError
from haulwatch.ingest.limits import snippet

STATUSES: tuple[str, ...] = ("open", "acknowledged", "confirmed", "dismissed")
MISSION_STATUSES: tuple[str, ...] = (
    "planned", "uploading", "flying", "completed", "failed", "aborted", "refused",
)
FINAL_MISSION_STATUSES: frozenset[str] = frozenset({"completed", "failed", "aborted", "refused"})

_ALERT_TEXT = ("kind", "vehicle_id", "severity", "manifest_id", "site_id", "summary", "trip_id")
_ALERT_COLS = (
    "alert_id", "kind", "vehicle_id", "vehicle_key", "start_us", "end_us", "severity",
    "manifest_id", "site_id", "summary", "trip_id", "lon", "lat", "evidence", "geometry",
    "content_hash", "status", "status_version", "created_us", "updated_us",
)
_PUBLIC_SELECT = ", ".join(_ALERT_COLS)
_MISSION_COLS = (
    "mission_id", "alert_id", "dock_site_id", "status", "reason", "progress", "plan",
    "flight_record", "created_by", "created_us", "updated_us",
)


class StoreInputError(UserError, ValueError):
    """Data handed to the store is not usable (the message names the field).

    Parameters
    ----------
    message : str
        What is wrong, naming the field and the value.
    field : str
        The field concerned (``alert_id``, ``start``, ``lat``...), "" if unknown.
    """

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class AlertNotFoundError(HaulwatchError, LookupError):
    """No alert has the requested id."""


class MissionNotFoundError(HaulwatchError, LookupError):
    """No mission has the requested id."""


class StatusConflictError(HaulwatchError, ValueError):
    """A status change named an ``expected_version`` that is no longer current.

    Attributes
    ----------
    current_version : int
        The alert's status version now.
    """

    def __init__(self, message: str, current_version: int) -> None:
        super().__init__(message)
        self.current_version = current_version


@dataclass(frozen=True)
class AlertFilter:
    """Filters for :meth:`Store.query_alerts` (all optional, combined with AND).

    ``start``/``end`` select alerts whose window overlaps [start, end];
    ``bbox`` is (min_lon, min_lat, max_lon, max_lat) on the representative point.
    """

    kind: Sequence[str] = ()
    status: Sequence[str] = ()
    vehicle_id: str | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    bbox: tuple[float, float, float, float] | None = None


@dataclass
class UpsertResult:
    """What an alert upsert did: ids inserted, ids whose content changed, count unchanged."""

    inserted: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0


def now_us() -> int:
    """Current UTC time in epoch microseconds."""
    return int(time.time() * 1_000_000)


def iso_z(us: int | None) -> str | None:
    """Epoch microseconds → ISO 8601 UTC with ``Z`` (second precision unless sub-second)."""
    if us is None:
        return None
    dt = datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc)
    if us % 1_000_000:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def to_us(ts: Any) -> int:
    """A tz-aware timestamp (or ISO text with offset) → UTC epoch microseconds."""
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        raise StoreInputError(f"time: {ts!r} has no UTC offset; alert times must be UTC")
    return int(t.tz_convert("UTC").value // 1000)


def plate_key(values: pd.Series) -> pd.Series:
    """Normalized plates (``ingest.plates.normalize_plate``: the rule of docs/formats.md)."""
    from haulwatch.ingest.plates import normalize_plate

    keys = normalize_plate(pd.Series(values, dtype=object).fillna("").astype(str))
    return keys.astype(object).where(keys.notna(), "")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, (pd.Timestamp, datetime)):
        return iso_z(to_us(obj)) if getattr(obj, "tzinfo", None) else obj.isoformat()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def dumps(obj: Any) -> str:
    """Compact, key-sorted JSON (numpy and timestamps handled)."""
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"),
                      default=_json_default)


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _content_hash(row: Mapping[str, Any]) -> str:
    content = {k: row[k] for k in (*_ALERT_TEXT, "start_us", "end_us", "lon", "lat",
                                   "evidence", "geometry")}
    return hashlib.sha256(dumps(content).encode("utf-8")).hexdigest()


def _check_limits(ids: np.ndarray, start: pd.Series, end: pd.Series,
                  text: Mapping[str, np.ndarray], lon: np.ndarray, lat: np.ndarray) -> None:
    """Refuse alerts outside :mod:`haulwatch.ingest.limits` (the first problem, by alert)."""
    from haulwatch.ingest import limits

    def refuse(i: int, field: str, reason: str) -> None:
        raise StoreInputError(f"{field}: alert {i} ({limits.snippet(ids[i])}): {reason}",
                              field=field)

    if len(ids) > limits.IMPORT_MAX_FEATURES:
        raise StoreInputError(f"alerts: {len(ids):,} alerts, at most "
                              f"{limits.IMPORT_MAX_FEATURES:,} per import", field="features")
    for i, v in enumerate(ids):
        problem = limits.check_id(v, "alert_id")
        if problem is not None:
            refuse(i, *problem)
    for name, col in (("start", start), ("end", end)):
        ns = col.astype("datetime64[ns, UTC]").astype("int64").to_numpy() if len(col) else \
            np.zeros(0, dtype="int64")
        bad = ~limits.times_in_range_ns(ns)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            refuse(i, name, f"{col.iloc[i].isoformat()} is outside "
                   f"{limits.TIME_MIN:%Y-%m-%d}..{limits.TIME_MAX:%Y-%m-%d} UTC")
    later = (start > end).to_numpy()
    if later.any():
        i = int(np.flatnonzero(later)[0])
        refuse(i, "end", f"end {end.iloc[i].isoformat()} is before start {start.iloc[i].isoformat()}")
    given = np.isfinite(lon) | np.isfinite(lat)
    bad = given & ~limits.coords_in_range(lon, lat)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        problem = limits.check_lon_lat(float(lon[i]), float(lat[i]))
        refuse(i, *(problem or ("lon,lat", "lon and lat must both be given")))
    for col, values in text.items():
        max_chars = limits.PLATE_MAX_CHARS if col == "vehicle_id" else limits.TEXT_MAX_CHARS
        for i, v in enumerate(values):
            problem = limits.check_text(v, col, max_chars=max_chars)
            if problem is not None:
                refuse(i, *problem)


def alert_rows_from_frame(alerts: pd.DataFrame) -> list[dict[str, Any]]:
    """Turn an alerts frame (docs/internals.md) into store rows.

    Parameters
    ----------
    alerts : DataFrame or GeoDataFrame
        Columns ``alert_id, kind, vehicle_id, start, end, severity, manifest_id,
        site_id, summary, trip_id, lon, lat, evidence, geometry``; ``start``/``end``
        tz-aware (or ISO text with offset), geometry shapely in WGS-84.

    Raises
    ------
    StoreInputError
        Missing columns, empty ``alert_id``, unknown times.
    """
    required = ("alert_id", "kind", "start", "end")
    missing = [c for c in required if c not in alerts.columns]
    if missing:
        raise StoreInputError(f"alerts: missing column(s) {', '.join(missing)}")
    n = len(alerts)
    if n == 0:
        return []
    import shapely

    frame = alerts.reset_index(drop=True)
    ids = frame["alert_id"].fillna("").astype(str)
    if (ids == "").any():
        raise StoreInputError(f"alert_id: empty at row {int(np.flatnonzero(ids == '')[0])}")
    for col in ("start", "end"):
        dtype = frame[col].dtype
        if pd.api.types.is_datetime64_dtype(dtype) and getattr(dtype, "tz", None) is None:
            raise StoreInputError(f"{col}: naive datetimes; alert times must be tz-aware UTC")
    try:
        start = pd.to_datetime(frame["start"], utc=True, format="ISO8601")
        end = pd.to_datetime(frame["end"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise StoreInputError(f"start/end: not ISO 8601 times: {exc}") from None
    if start.isna().any() or end.isna().any():
        raise StoreInputError("start/end: missing time in some alerts")
    start_us = (start.astype("datetime64[us, UTC]").astype("int64")).to_numpy()
    end_us = (end.astype("datetime64[us, UTC]").astype("int64")).to_numpy()
    text = {c: (frame[c].fillna("").astype(str).to_numpy() if c in frame.columns
                else np.full(n, "", dtype=object)) for c in _ALERT_TEXT}
    lon = frame["lon"].to_numpy(dtype=float) if "lon" in frame.columns else np.full(n, np.nan)
    lat = frame["lat"].to_numpy(dtype=float) if "lat" in frame.columns else np.full(n, np.nan)
    if "geometry" in frame.columns:
        geoms = np.asarray(frame["geometry"].to_numpy(), dtype=object)
        is_geom = np.array([g is not None and hasattr(g, "geom_type") for g in geoms])
        geo_text = np.full(n, "", dtype=object)
        if is_geom.any():
            geo_text[is_geom] = shapely.to_geojson(geoms[is_geom].astype(object))
        for i in np.flatnonzero(~is_geom):
            g = geoms[i]
            geo_text[i] = json.dumps(g) if isinstance(g, dict) else ""
    else:
        geo_text = np.full(n, "", dtype=object)
    missing_geo = (geo_text == "") & np.isfinite(lon) & np.isfinite(lat)
    if missing_geo.any():  # no geometry: the representative point, when there is one
        pts = shapely.points(lon[missing_geo], lat[missing_geo])
        geo_text[missing_geo] = shapely.to_geojson(pts)
    if "evidence" in frame.columns:
        evidence = [
            e if isinstance(e, str) else dumps(e if e is not None and not
                                                (isinstance(e, float) and math.isnan(e)) else {})
            for e in frame["evidence"].to_numpy()
        ]
    else:
        evidence = ["{}"] * n
    from haulwatch.routes.alerts import KINDS, SEVERITIES

    for col, allowed in (("kind", KINDS), ("severity", SEVERITIES)):
        bad = ~np.isin(text[col].astype(str), allowed)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise StoreInputError(
                f"{col}: {text[col][i]!r} (alert {ids[i]!r}) is not one of {', '.join(allowed)}")
    _check_limits(ids.to_numpy(dtype=object), start, end, text, lon, lat)
    keys = plate_key(pd.Series(text["vehicle_id"])).to_numpy()
    rows = []
    for i in range(n):
        ev = evidence[i] or "{}"
        try:
            ev = dumps(json.loads(ev))
        except ValueError:
            raise StoreInputError(f"evidence: alert {ids[i]!r} has evidence that is not JSON") from None
        row = {
            "alert_id": ids[i],
            **{c: str(text[c][i]) for c in _ALERT_TEXT},
            "vehicle_key": str(keys[i]),
            "start_us": int(start_us[i]),
            "end_us": int(end_us[i]),
            "lon": _finite(lon[i]),
            "lat": _finite(lat[i]),
            "evidence": ev,
            "geometry": dumps(json.loads(geo_text[i])) if geo_text[i] else "",
        }
        row["content_hash"] = _content_hash(row)
        rows.append(row)
    return rows


class Store:
    """Alerts (with append-only status history), missions and ingested points.

    Parameters
    ----------
    db_url : str
        ``sqlite:///file.db`` or ``postgresql://...``; the schema is created or
        migrated on open.
    """

    #: Zone and site names the Chinese summaries (``summary_zh``) are written with;
    #: ``create_app`` sets them from the service dataset.
    display_timezone: str = "Asia/Shanghai"
    site_names: Mapping[str, str] = {}

    def __init__(self, db_url: str) -> None:
        self.db = Database(db_url)
        self.schema_version = migrate(self.db)

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    # ---------------------------------------------------------------- alerts
    def count_alerts(self) -> int:
        """Number of alerts stored."""
        row = self.db.fetchone("SELECT COUNT(*) FROM alerts")
        return int(row[0]) if row else 0

    def upsert_alerts(self, alerts: pd.DataFrame | Sequence[Mapping[str, Any]], *,
                      by: str = "import") -> UpsertResult:
        """Insert new alerts and update changed ones; statuses are kept.

        Parameters
        ----------
        alerts : DataFrame or sequence of store rows
            An alerts frame (see :func:`alert_rows_from_frame`) or its rows.
        by : str
            Recorded as ``by`` of the first history entry of new alerts.

        Returns
        -------
        UpsertResult
        """
        rows = alert_rows_from_frame(alerts) if isinstance(alerts, pd.DataFrame) else list(alerts)
        result = UpsertResult()
        if not rows:
            return result
        by_id: dict[str, dict[str, Any]] = {}
        for r in rows:  # last row of an id wins (one alert per id)
            by_id[r["alert_id"]] = r
        ids = list(by_id)
        stamp = now_us()
        with self.db.transaction():
            existing: dict[str, str] = {}
            for chunk in _chunks(ids, 500):
                marks = ",".join("?" * len(chunk))
                for aid, h in self.db.fetchall(
                    f"SELECT alert_id, content_hash FROM alerts WHERE alert_id IN ({marks})", chunk
                ):
                    existing[aid] = h
            new_rows, changed = [], []
            for aid, r in by_id.items():
                if aid not in existing:
                    new_rows.append(r)
                elif existing[aid] != r["content_hash"]:
                    changed.append(r)
            self.db.executemany(
                f"INSERT INTO alerts ({_PUBLIC_SELECT}) VALUES ({','.join('?' * len(_ALERT_COLS))})",
                [tuple({**r, "status": "open", "status_version": 1, "created_us": stamp,
                        "updated_us": stamp}[c] for c in _ALERT_COLS) for r in new_rows],
            )
            self.db.executemany(
                "INSERT INTO alert_history (alert_id, version, status, by_name, at_us, note) "
                "VALUES (?, 1, 'open', ?, ?, '')",
                [(r["alert_id"], by, stamp) for r in new_rows],
            )
            content = ("kind", "vehicle_id", "vehicle_key", "start_us", "end_us", "severity",
                       "manifest_id", "site_id", "summary", "trip_id", "lon", "lat", "evidence",
                       "geometry", "content_hash")
            self.db.executemany(
                f"UPDATE alerts SET {', '.join(f'{c} = ?' for c in content)}, updated_us = ? "
                "WHERE alert_id = ?",
                [(*(r[c] for c in content), stamp, r["alert_id"]) for r in changed],
            )
        result.inserted = [r["alert_id"] for r in new_rows]
        result.updated = [r["alert_id"] for r in changed]
        result.unchanged = len(ids) - len(new_rows) - len(changed)
        return result

    def query_alerts(self, flt: AlertFilter, *, limit: int = 50, offset: int = 0,
                     ) -> tuple[list[dict[str, Any]], int]:
        """Alerts matching ``flt``, newest first, and the total count without paging."""
        where, params = [], []
        if flt.kind:
            where.append(f"kind IN ({','.join('?' * len(flt.kind))})")
            params.extend(flt.kind)
        if flt.status:
            where.append(f"status IN ({','.join('?' * len(flt.status))})")
            params.extend(flt.status)
        if flt.vehicle_id:
            where.append("vehicle_key = ?")
            params.append(str(plate_key(pd.Series([flt.vehicle_id])).iloc[0]))
        if flt.start is not None:
            where.append("end_us >= ?")
            params.append(to_us(flt.start))
        if flt.end is not None:
            where.append("start_us <= ?")
            params.append(to_us(flt.end))
        if flt.bbox is not None:
            where.append("lon >= ? AND lat >= ? AND lon <= ? AND lat <= ?")
            params.extend(flt.bbox)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total = int(self.db.fetchone(f"SELECT COUNT(*) FROM alerts{clause}", params)[0])
        rows = self.db.fetchall(
            f"SELECT {_PUBLIC_SELECT} FROM alerts{clause} "
            "ORDER BY start_us DESC, alert_id LIMIT ? OFFSET ?",
            [*params, int(limit), int(offset)],
        )
        return [self._public(r) for r in rows], total

    def get_alerts(self, alert_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Public records of the given alerts (unknown ids are skipped)."""
        out = []
        ids = list(alert_ids)
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            out.extend(self._public(r) for r in self.db.fetchall(
                f"SELECT {_PUBLIC_SELECT} FROM alerts WHERE alert_id IN ({marks})", chunk))
        order = {a: i for i, a in enumerate(ids)}
        return sorted(out, key=lambda r: order[r["alert_id"]])

    def get_alert(self, alert_id: str, *, detail: bool = True) -> dict[str, Any]:
        """One alert (with ``evidence`` and ``history`` when ``detail``).

        Raises
        ------
        AlertNotFoundError
        """
        row = self.db.fetchone(f"SELECT {_PUBLIC_SELECT} FROM alerts WHERE alert_id = ?", (alert_id,))
        if row is None:
            raise AlertNotFoundError(f"alert_id: no alert {snippet(alert_id)}")
        rec = self._public(row, evidence=detail)
        if detail:
            rec["history"] = [
                {"status": s, "by": b, "at": iso_z(a), "note": n, "version": v}
                for v, s, b, a, n in self.db.fetchall(
                    "SELECT version, status, by_name, at_us, note FROM alert_history "
                    "WHERE alert_id = ? ORDER BY version", (alert_id,))
            ]
        return rec

    def set_status(self, alert_id: str, status: str, *, by: str, note: str = "",
                   expected_version: int | None = None) -> dict[str, Any]:
        """Change an alert's status and append the change to its history.

        Parameters
        ----------
        alert_id : str
        status : str
            One of :data:`STATUSES`.
        by : str
            Who made the change (token name).
        note : str
            Free text kept with the change.
        expected_version : int, optional
            The ``status_version`` the caller saw; a different current version
            raises :class:`StatusConflictError` and nothing is changed.

        Returns
        -------
        dict
            The alert detail after the change.

        Raises
        ------
        StoreInputError, AlertNotFoundError, StatusConflictError
        """
        if status not in STATUSES:
            raise StoreInputError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
        with self.db.transaction():
            row = self.db.fetchone(
                "SELECT status_version FROM alerts WHERE alert_id = ?", (alert_id,))
            if row is None:
                raise AlertNotFoundError(f"alert_id: no alert {snippet(alert_id)}")
            current = int(row[0])
            if expected_version is not None and expected_version != current:
                raise StatusConflictError(
                    f"expected_version: {expected_version} is stale; the alert is at version "
                    f"{current} (reload it and retry)", current)
            stamp = now_us()
            changed = self.db.execute(
                "UPDATE alerts SET status = ?, status_version = ?, updated_us = ? "
                "WHERE alert_id = ? AND status_version = ?",
                (status, current + 1, stamp, alert_id, current))
            if changed != 1:  # another writer got in between (other process)
                raise StatusConflictError(
                    f"expected_version: {current} changed concurrently; reload and retry", current)
            self.db.execute(
                "INSERT INTO alert_history (alert_id, version, status, by_name, at_us, note) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (alert_id, current + 1, status, by, stamp, note or ""))
        return self.get_alert(alert_id)

    def withdraw_alerts(self, alert_ids: Sequence[str]) -> list[str]:
        """Delete alerts the live audit no longer supports, unless a person touched them.

        Only alerts still at status version 1 (never acknowledged, confirmed or
        dismissed) are deleted; the others stay, with their history.

        Returns
        -------
        list of str
            The ids deleted.
        """
        gone: list[str] = []
        with self.db.transaction():
            for chunk in _chunks(list(alert_ids), 500):
                marks = ",".join("?" * len(chunk))
                ids = [r[0] for r in self.db.fetchall(
                    f"SELECT alert_id FROM alerts WHERE status_version = 1 AND alert_id IN ({marks})",
                    chunk)]
                if ids:
                    m = ",".join("?" * len(ids))
                    self.db.execute(f"DELETE FROM alert_history WHERE alert_id IN ({m})", ids)
                    self.db.execute(f"DELETE FROM alerts WHERE alert_id IN ({m})", ids)
                    gone.extend(ids)
        return gone

    def _public(self, row: Sequence[Any], *, evidence: bool = False) -> dict[str, Any]:
        r = dict(zip(_ALERT_COLS, row, strict=True))
        rec = {
            "alert_id": r["alert_id"],
            "kind": r["kind"],
            "vehicle_id": r["vehicle_id"],
            "start": iso_z(r["start_us"]),
            "end": iso_z(r["end_us"]),
            "severity": r["severity"],
            "manifest_id": r["manifest_id"],
            "site_id": r["site_id"],
            "summary": r["summary"],
            "trip_id": r["trip_id"],
            "lon": r["lon"],
            "lat": r["lat"],
            "status": r["status"],
            "status_version": int(r["status_version"]),
            "geometry": json.loads(r["geometry"]) if r["geometry"] else None,
        }
        if evidence:
            rec["evidence"] = json.loads(r["evidence"]) if r["evidence"] else {}
        # Both languages (issue 11): the detectors' sentence, and Chinese from the facts.
        from haulwatch.routes.report import localized_summary

        rec["summary_en"] = r["summary"]
        names = self.site_names
        rec["summary_zh"] = localized_summary(
            {**rec, "evidence": r["evidence"]}, "zh-CN", timezone=self.display_timezone,
            site_name=lambda sid: names.get(sid) or sid)
        return rec

    # -------------------------------------------------------------- missions
    def create_mission(self, mission: Mapping[str, Any], *, by: str) -> dict[str, Any]:
        """Store a new mission (keys of the ``missions`` table; JSON fields as objects)."""
        stamp = now_us()
        rec = {
            "mission_id": mission["mission_id"],
            "alert_id": mission["alert_id"],
            "dock_site_id": mission.get("dock_site_id") or "",
            "status": mission.get("status", "planned"),
            "reason": mission.get("reason") or "",
            "progress": dumps(mission.get("progress") or {}),
            "plan": dumps(mission["plan"]) if mission.get("plan") is not None else None,
            "flight_record": (dumps(mission["flight_record"])
                              if mission.get("flight_record") is not None else None),
            "created_by": by,
            "created_us": stamp,
            "updated_us": stamp,
        }
        if rec["status"] not in MISSION_STATUSES:
            raise StoreInputError(f"status: {rec['status']!r} is not one of {MISSION_STATUSES}")
        self.db.execute(
            f"INSERT INTO missions ({', '.join(_MISSION_COLS)}) "
            f"VALUES ({','.join('?' * len(_MISSION_COLS))})",
            tuple(rec[c] for c in _MISSION_COLS))
        return self.get_mission(rec["mission_id"])

    def update_mission(self, mission_id: str, **changes: Any) -> dict[str, Any]:
        """Change mission fields (status, reason, progress, plan, flight_record)."""
        allowed = {"status", "reason", "progress", "plan", "flight_record", "dock_site_id"}
        bad = set(changes) - allowed
        if bad:
            raise StoreInputError(f"mission fields: {sorted(bad)} cannot be changed")
        if "status" in changes and changes["status"] not in MISSION_STATUSES:
            raise StoreInputError(f"status: {changes['status']!r} is not one of {MISSION_STATUSES}")
        sets, params = [], []
        for k, v in changes.items():
            sets.append(f"{k} = ?")
            params.append(dumps(v) if k in {"progress", "plan", "flight_record"} and v is not None
                          else v)
        sets.append("updated_us = ?")
        params.append(now_us())
        n = self.db.execute(f"UPDATE missions SET {', '.join(sets)} WHERE mission_id = ?",
                            (*params, mission_id))
        if n == 0:
            raise MissionNotFoundError(f"mission_id: no mission {snippet(mission_id)}")
        return self.get_mission(mission_id)

    def get_mission(self, mission_id: str, *, with_plan: bool = False) -> dict[str, Any]:
        """One mission (flight record included; the QGC plan when ``with_plan``)."""
        row = self.db.fetchone(
            f"SELECT {', '.join(_MISSION_COLS)} FROM missions WHERE mission_id = ?", (mission_id,))
        if row is None:
            raise MissionNotFoundError(f"mission_id: no mission {snippet(mission_id)}")
        return self._mission(row, with_plan=with_plan)

    def list_missions(self, *, alert_id: str | None = None, limit: int = 50, offset: int = 0,
                      ) -> tuple[list[dict[str, Any]], int]:
        """Missions, newest first, and their total count."""
        clause, params = ("WHERE alert_id = ?", [alert_id]) if alert_id else ("", [])
        total = int(self.db.fetchone(f"SELECT COUNT(*) FROM missions {clause}", params)[0])
        rows = self.db.fetchall(
            f"SELECT {', '.join(_MISSION_COLS)} FROM missions {clause} "
            "ORDER BY created_us DESC, mission_id LIMIT ? OFFSET ?", [*params, limit, offset])
        return [self._mission(r) for r in rows], total

    @staticmethod
    def _mission(row: Sequence[Any], *, with_plan: bool = False) -> dict[str, Any]:
        r = dict(zip(_MISSION_COLS, row, strict=True))
        rec = {
            "mission_id": r["mission_id"],
            "alert_id": r["alert_id"],
            "dock_site_id": r["dock_site_id"],
            "status": r["status"],
            "reason": r["reason"],
            "progress": json.loads(r["progress"]) if r["progress"] else {},
            "flight_record": json.loads(r["flight_record"]) if r["flight_record"] else None,
            "created_by": r["created_by"],
            "created": iso_z(r["created_us"]),
            "updated": iso_z(r["updated_us"]),
        }
        if with_plan:
            rec["plan"] = json.loads(r["plan"]) if r["plan"] else None
        return rec

    # ---------------------------------------------------------------- points
    def insert_points(self, points: pd.DataFrame) -> np.ndarray:
        """Store points idempotently; return a mask of the rows that were new.

        Parameters
        ----------
        points : DataFrame
            ``vehicle_id, vehicle_key, time`` (tz-aware), ``lon, lat`` (as
            received), optional ``speed_kmh, heading_deg, load, lift``.

        Returns
        -------
        numpy.ndarray of bool
            True for rows stored now; False for duplicates (same vehicle_key and
            time already stored, or earlier in this batch).
        """
        n = len(points)
        if n == 0:
            return np.zeros(0, dtype=bool)
        keys = points["vehicle_key"].astype(str).to_numpy()
        t_us = points["time"].astype("datetime64[us, UTC]").astype("int64").to_numpy()
        first = ~pd.DataFrame({"k": keys, "t": t_us}).duplicated().to_numpy()
        with self.db.transaction():
            frame = pd.DataFrame({"k": keys, "t": t_us})
            bounds = frame.groupby("k")["t"].agg(["min", "max"])
            stored: list[tuple[str, int]] = []
            for k, lo, hi in bounds.itertuples():  # one range query per vehicle
                stored.extend((k, int(t)) for (t,) in self.db.fetchall(
                    "SELECT time_us FROM points WHERE vehicle_key = ? AND time_us BETWEEN ? AND ?",
                    (k, int(lo), int(hi))))
            if stored:
                old = pd.MultiIndex.from_arrays([keys, t_us]).isin(
                    pd.MultiIndex.from_tuples(stored))
            else:
                old = np.zeros(n, dtype=bool)
            new = first & ~old
            if new.any():
                sub = points.loc[new]
                cols = [sub["vehicle_key"].astype(str), pd.Series(t_us[new], index=sub.index),
                        sub["vehicle_id"].astype(str), sub["lon"].astype(float),
                        sub["lat"].astype(float)]
                for c in ("speed_kmh", "heading_deg"):
                    cols.append(sub[c].astype(float) if c in sub.columns
                                else pd.Series(np.nan, index=sub.index))
                cols.append(sub["load"] if "load" in sub.columns
                            else pd.Series(None, index=sub.index, dtype=object))
                cols.append(sub["lift"].astype(float) if "lift" in sub.columns
                            else pd.Series(np.nan, index=sub.index))
                stamp = now_us()
                data = [
                    (k, int(t), v, float(x), float(y), _finite(s), _finite(h),
                     None if ld is None or (isinstance(ld, float) and math.isnan(ld)) else str(ld),
                     _finite(lf), stamp)
                    for k, t, v, x, y, s, h, ld, lf in zip(*cols, strict=True)
                ]
                self.db.executemany(
                    "INSERT INTO points (vehicle_key, time_us, vehicle_id, lon, lat, speed_kmh, "
                    "heading_deg, load, lift, received_us) VALUES (?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT (vehicle_key, time_us) DO NOTHING", data)
        return new

    def latest_point_time(self) -> pd.Timestamp | None:
        """Time of the newest stored point (None when there is none)."""
        row = self.db.fetchone("SELECT MAX(time_us) FROM points")
        if not row or row[0] is None:
            return None
        return pd.Timestamp(int(row[0]), unit="us", tz="UTC")

    def load_points(self, *, since: Mapping[str, pd.Timestamp] | None = None,
                    vehicle_keys: Sequence[str] | None = None,
                    start: pd.Timestamp | None = None) -> pd.DataFrame:
        """Stored points as a tracks frame (``vehicle_id, vehicle_key, time`` UTC, ...).

        Parameters
        ----------
        since : mapping vehicle_key → Timestamp, optional
            Only points at or after this time for each vehicle listed.
        vehicle_keys : sequence of str, optional
            Only these vehicles (all when None).
        start : Timestamp, optional
            Only points at or after this time (all vehicles; with ``vehicle_keys=None``).
        """
        cols = ["vehicle_key", "time_us", "vehicle_id", "lon", "lat", "speed_kmh",
                "heading_deg", "load", "lift"]
        rows: list[tuple] = []
        keys = list(vehicle_keys) if vehicle_keys is not None else None
        if keys is None:
            lo = to_us(start) if start is not None else -(2**62)
            rows = self.db.fetchall(f"SELECT {', '.join(cols)} FROM points WHERE time_us >= ?",
                                    (lo,))
        else:
            for k in keys:
                lo = to_us(since[k]) if since and k in since else -(2**62)
                rows.extend(self.db.fetchall(
                    f"SELECT {', '.join(cols)} FROM points WHERE vehicle_key = ? AND time_us >= ?",
                    (k, lo)))
        frame = pd.DataFrame.from_records(rows, columns=cols)
        frame["time"] = pd.to_datetime(frame.pop("time_us").astype("int64"), unit="us",
                                       utc=True).astype("datetime64[ns, UTC]")
        for c in ("lon", "lat", "speed_kmh", "heading_deg", "lift"):
            frame[c] = frame[c].astype(float)
        frame["load"] = frame["load"].astype(object)
        frame = frame[["vehicle_id", "vehicle_key", "time", "lon", "lat", "speed_kmh",
                       "heading_deg", "load", "lift"]]
        return frame.sort_values(["vehicle_key", "time"], kind="stable").reset_index(drop=True)


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def import_alerts(alerts: pd.DataFrame, db_url: str, *, by: str = "audit") -> dict[str, int]:
    """Load a batch audit's alerts into the store at ``db_url``.

    Re-importing the same alerts changes nothing; alerts whose content changed
    are updated in place and keep their status and history.

    Parameters
    ----------
    alerts : GeoDataFrame
        The alerts frame (``AuditResult.alerts`` or ``routes.alerts.read_alerts``).
    db_url : str
        ``sqlite:///file.db`` or ``postgresql://...`` (created/migrated if needed).
    by : str, default "audit"
        Recorded as the author of the first history entry of new alerts.

    Returns
    -------
    dict
        ``{"inserted": n, "updated": n, "unchanged": n}``.
    """
    store = Store(db_url)
    try:
        res = store.upsert_alerts(alerts, by=by)
    finally:
        store.close()
    return {"inserted": len(res.inserted), "updated": len(res.updated), "unchanged": res.unchanged}
