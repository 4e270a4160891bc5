"""HTTP error shapes and query parsing shared by the routers.

Every error body is FastAPI's: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``
(or a string for 401/403/413), naming the field and the reason.
"""

from __future__ import annotations

import pandas as pd
from fastapi import HTTPException

from haulwatch.ingest import limits


def field_error(loc: tuple[str | int, ...], reason: str, code: int = 422) -> HTTPException:
    """An HTTP error naming the field (FastAPI's ``detail`` list shape)."""
    return HTTPException(
        status_code=code,
        detail=[{"loc": list(loc), "msg": reason, "type": "value_error"}],
    )


def parse_time(value: str | None, tz: str, name: str) -> pd.Timestamp | None:
    """ISO 8601 (naive = ``tz``) or epoch seconds → UTC timestamp; 422 naming ``name``.

    Times outside the limits of :mod:`haulwatch.ingest.limits` are refused too.
    """
    if value is None or value == "":
        return None
    shown = limits.snippet(value)
    try:
        if value.lstrip("-").replace(".", "", 1).isdigit():
            seconds = float(value)
            if not (limits.TIME_MIN.timestamp() <= seconds < limits.TIME_MAX.timestamp()):
                raise field_error(("query", name), f"{shown}: {limits.TIME_RANGE_REASON}")
            t = pd.Timestamp(seconds, unit="s", tz="UTC")
        else:
            if limits.text_year_out_of_range([value])[0]:
                raise field_error(("query", name), f"{shown}: {limits.TIME_RANGE_REASON}")
            t = pd.Timestamp(value)
            t = t.tz_localize(tz) if t.tzinfo is None else t
    except (ValueError, TypeError, OverflowError, pd.errors.OutOfBoundsDatetime):
        raise field_error(("query", name),
                          f"{shown} is not an ISO 8601 time or epoch seconds") from None
    if t is pd.NaT or pd.isna(t):
        raise field_error(("query", name), f"{shown} is not a time")
    t = t.tz_convert("UTC")
    problem = limits.check_time(t.to_pydatetime(), name)
    if problem is not None:
        raise field_error(("query", name), problem[1])
    return t
