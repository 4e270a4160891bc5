"""Electronic transfer manifests: read ``manifests.csv`` into the manifests frame.

A manifest allows one vehicle to carry waste from an origin site to a
disposal site within a time window. Rows are refused (``row_dropped``) for a
missing or duplicate ``manifest_id``, a missing vehicle id, an unknown origin
or disposal site, a missing or unparseable window bound, or ``valid_to``
before ``valid_from``, and for values outside the limits of every entry point
(:mod:`haulwatch.ingest.limits`: a window bound outside 1990..2100 UTC, a plate
over ``PLATE_MAX_CHARS`` or an id over ``ID_MAX_CHARS`` characters, control characters). An unknown ``route_id`` or a bad ``volume_m3`` only
clears the value (``value_cleared``): the manifest still covers its trips.
Window times without an offset are local to the dataset timezone; a
``valid_to`` written as a date only (``2024-05-01``) covers that whole local day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .limits import ID_MAX_CHARS, plate_problems, text_problems
from .plates import normalize_plate
from .registry import DEFAULT_TIMEZONE, _read_small_csv
from .rejects import ACTION_CLEARED, ACTION_DROPPED, concat_rejects, make_rejects
from .timeparse import check_timezone, parse_times

__all__ = [
    "MANIFEST_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "ManifestsResult",
    "empty_manifests",
    "read_manifests",
]

#: Columns of the manifests frame, in order.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "manifest_id", "vehicle_id", "vehicle_key", "origin_site_id", "disposal_site_id",
    "route_id", "valid_from", "valid_to", "waste_type", "volume_m3", "src_row",
)
#: Columns manifests.csv must have.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "manifest_id", "vehicle_id", "origin_site_id", "disposal_site_id", "valid_from", "valid_to",
)
#: Columns manifests.csv may have.
OPTIONAL_COLUMNS: tuple[str, ...] = ("route_id", "waste_type", "volume_m3")

_DATE_ONLY_RE = r"\d{4}[-/]\d{2}[-/]\d{2}"

_TIME_REASONS = {
    1: "missing {f}",
    2: "unparseable {f}; expected ISO 8601 (e.g. 2024-05-01T08:00:00+08:00) or epoch seconds",
    3: "{f} outside 1990-01-01..2100-01-01",
}


@dataclass(frozen=True)
class ManifestsResult:
    """What :func:`read_manifests` returns.

    Attributes
    ----------
    manifests : pandas.DataFrame
        Columns :data:`MANIFEST_COLUMNS`.
    rejects : pandas.DataFrame
        Refused rows and cleared values.
    rows_read : int
        Data rows in the file.
    """

    manifests: pd.DataFrame
    rejects: pd.DataFrame
    rows_read: int


def empty_manifests() -> pd.DataFrame:
    """Return an empty manifests frame with the documented columns and dtypes.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`MANIFEST_COLUMNS`, zero rows.
    """
    obj = {c: pd.Series([], dtype=object) for c in MANIFEST_COLUMNS}
    obj["valid_from"] = pd.Series([], dtype="datetime64[ns, UTC]")
    obj["valid_to"] = pd.Series([], dtype="datetime64[ns, UTC]")
    obj["volume_m3"] = pd.Series([], dtype="float64")
    obj["src_row"] = pd.Series([], dtype="int64")
    return pd.DataFrame(obj)


def read_manifests(
    path: str | Path,
    *,
    site_ids: Iterable[str] | None = None,
    route_ids: Iterable[str] | None = None,
    timezone: str = DEFAULT_TIMEZONE,
) -> ManifestsResult:
    """Read and validate ``manifests.csv``.

    Parameters
    ----------
    path : str or pathlib.Path
        The CSV file.
    site_ids : iterable of str, optional
        Known site ids; manifests naming another origin/disposal are refused.
    route_ids : iterable of str, optional
        Known route ids; another ``route_id`` is cleared (None).
    timezone : str, default "Asia/Shanghai"
        Zone of window times written without an offset.

    Returns
    -------
    ManifestsResult
        ``manifests`` sorted by ``vehicle_key, valid_from``, with
        ``valid_from``/``valid_to`` as ``datetime64[ns, UTC]``, ``route_id``
        None when absent, ``volume_m3`` float (NaN when absent) and
        ``src_row`` (1-based data row).

    Raises
    ------
    SchemaError
        If the file is missing or lacks a required column.
    """
    path = Path(path)
    file = path.name
    check_timezone(timezone)
    df, rows, ragged = _read_small_csv(path, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    n = len(df)
    dropped = np.zeros(n, dtype=bool)
    parts: list[pd.DataFrame] = [ragged]

    def drop(mask: np.ndarray, field: str, reason: str | np.ndarray) -> None:
        new = mask & ~dropped
        if new.any():
            why = reason[new] if isinstance(reason, np.ndarray) else reason
            parts.append(make_rejects(file, rows[new], field, df[field][new], why,
                                      ACTION_DROPPED))
            dropped[new] = True

    for field in ("manifest_id", "vehicle_id", "origin_site_id", "disposal_site_id"):
        drop(df[field].isna().to_numpy(), field, f"missing {field}")
    # the limits of every entry point: plates as the tracks reader, ids at most ID_MAX_CHARS
    why = plate_problems(df["vehicle_id"])
    drop(pd.notna(why), "vehicle_id", why)
    for field in ("manifest_id", "origin_site_id", "disposal_site_id"):
        why = text_problems(df[field], field, max_chars=ID_MAX_CHARS)
        drop(pd.notna(why), field, why)
    key = normalize_plate(df["vehicle_id"])
    drop((key.isna() | (key == "")).to_numpy(), "vehicle_id",
         "vehicle_id has no letters or digits")
    if site_ids is not None:
        known = pd.Index(list(site_ids))
        for field in ("origin_site_id", "disposal_site_id"):
            unknown = df[field].notna().to_numpy() & ~df[field].isin(known).to_numpy()
            drop(unknown, field, f"{field} not found in sites.geojson")
    times = {}
    for field in ("valid_from", "valid_to"):
        ns, status = parse_times(df[field], timezone)
        for code, template in _TIME_REASONS.items():
            drop(status == code, field, template.format(f=field))
        times[field] = ns
    # A date without a time of day as valid_to covers that whole local day
    # (like a site's permit_to): its end is the next local midnight.
    date_only = (~dropped & df["valid_to"].fillna("").str.fullmatch(_DATE_ONLY_RE)
                 .to_numpy(dtype=bool))
    if date_only.any():
        day = pd.to_datetime(df["valid_to"][date_only].str.replace("/", "-"), format="%Y-%m-%d")
        next_day = (day + pd.Timedelta(days=1)).dt.strftime("%Y-%m-%d")
        ns, status = parse_times(next_day.to_numpy(dtype=object), timezone)
        times["valid_to"][date_only] = np.where(status == 0, ns, times["valid_to"][date_only])
    with np.errstate(invalid="ignore"):
        inverted = ~dropped & (times["valid_to"] < times["valid_from"])
    drop(inverted, "valid_to", "valid_to before valid_from")
    # Duplicate ids: the first valid row keeps the id, later ones are refused.
    ids = df["manifest_id"].where(~pd.Series(dropped), None)
    dup = ids.notna().to_numpy() & ids.duplicated(keep="first").to_numpy()
    if dup.any():
        first_row = pd.Series(rows[~dropped], index=ids[~dropped].to_numpy())
        first_row = first_row.groupby(level=0).first()
        why = np.array([f"duplicate manifest_id (first at row {first_row[i]})"
                        if d else "" for i, d in zip(ids, dup, strict=True)], dtype=object)
        drop(dup, "manifest_id", why)
    keep = ~dropped

    route = df["route_id"] if "route_id" in df.columns else pd.Series([None] * n, dtype=object)
    if route_ids is not None:
        bad_route = keep & route.notna().to_numpy() & ~route.isin(list(route_ids)).to_numpy()
        if bad_route.any():
            parts.append(make_rejects(file, rows[bad_route], "route_id", route[bad_route],
                                      "route_id not found in routes.geojson; value cleared",
                                      ACTION_CLEARED))
            route_arr = route.to_numpy(dtype=object, copy=True)
            route_arr[bad_route] = None
            route = pd.Series(route_arr, dtype=object)
    if "volume_m3" in df.columns:
        vol = pd.to_numeric(df["volume_m3"], errors="coerce").to_numpy(dtype="float64")
        bad_vol = keep & df["volume_m3"].notna().to_numpy() & ~(np.isfinite(vol) & (vol >= 0))
        if bad_vol.any():
            parts.append(make_rejects(file, rows[bad_vol], "volume_m3", df["volume_m3"][bad_vol],
                                      "volume_m3 must be a number >= 0; value cleared",
                                      ACTION_CLEARED))
        vol = np.where(bad_vol, np.nan, vol)
    else:
        vol = np.full(n, np.nan)
    waste = df["waste_type"] if "waste_type" in df.columns else pd.Series([None] * n,
                                                                            dtype=object)
    out = pd.DataFrame({
        "manifest_id": pd.Series(df["manifest_id"].to_numpy(dtype=object), dtype=object),
        "vehicle_id": pd.Series(df["vehicle_id"].to_numpy(dtype=object), dtype=object),
        "vehicle_key": pd.Series(key.to_numpy(dtype=object), dtype=object),
        "origin_site_id": pd.Series(df["origin_site_id"].to_numpy(dtype=object), dtype=object),
        "disposal_site_id": pd.Series(df["disposal_site_id"].to_numpy(dtype=object), dtype=object),
        "route_id": pd.Series(route.to_numpy(dtype=object), dtype=object),
        "valid_from": pd.DatetimeIndex(times["valid_from"].view("datetime64[ns]")).tz_localize(
            "UTC"),
        "valid_to": pd.DatetimeIndex(times["valid_to"].view("datetime64[ns]")).tz_localize("UTC"),
        "waste_type": pd.Series(waste.to_numpy(dtype=object), dtype=object),
        "volume_m3": vol,
        "src_row": rows,
    })[keep]
    out = out.sort_values(["vehicle_key", "valid_from", "src_row"], kind="stable")
    out = out.reset_index(drop=True)
    rejects = concat_rejects(parts)
    if len(rejects):
        rejects = rejects.sort_values(["row", "action"], kind="stable").reset_index(drop=True)
    return ManifestsResult(manifests=out, rejects=rejects, rows_read=n + len(ragged))
