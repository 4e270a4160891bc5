"""HTTP error shapes and query parsing shared by the routers.

Every error body is FastAPI's: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``
(or a string for 401/403/413), naming the field and the reason.
"""

from __future__ import annotations

import pandas as pd
from fastapi import HTTPException


def field_error(loc: tuple[str | int, ...], reason: str, code: int = 422) -> HTTPException:
    """An HTTP error naming the field (FastAPI's ``detail`` list shape)."""
    return HTTPException(
        status_code=code,
        detail=[{"loc": list(loc), "msg": reason, "type": "value_error"}],
    )


def parse_time(value: str | None, tz: str, name: str) -> pd.Timestamp | None:
    """ISO 8601 (naive = ``tz``) or epoch seconds → UTC timestamp; 422 naming ``name``."""
    if value is None or value == "":
        return None
    try:
        if value.lstrip("-").replace(".", "", 1).isdigit():
            t = pd.Timestamp(float(value), unit="s", tz="UTC")
        else:
            t = pd.Timestamp(value)
            t = t.tz_localize(tz) if t.tzinfo is None else t
    except (ValueError, TypeError, OverflowError):
        raise field_error(("query", name), f"{value!r} is not an ISO 8601 time or epoch seconds") from None
    if t is pd.NaT or pd.isna(t):
        raise field_error(("query", name), f"{value!r} is not a time")
    return t.tz_convert("UTC")
