"""Why a row was refused: the rejects frame and the ingest exceptions.

Every data problem that can be survived is recorded here instead of raised:
one row of the rejects frame names the file, the 1-based data row (the
feature index for GeoJSON), the field, the offending value, the reason and
what was done (``row_dropped`` or ``value_cleared``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from haulwatch.errors import UserError

__all__ = [
    "ACTION_CLEARED",
    "ACTION_DROPPED",
    "REJECT_COLUMNS",
    "SchemaError",
    "concat_rejects",
    "empty_rejects",
    "make_rejects",
]

#: Columns of the rejects frame, in order.
REJECT_COLUMNS: tuple[str, ...] = ("file", "row", "field", "value", "reason", "action")
#: The whole row was refused (a required field is missing or bad).
ACTION_DROPPED = "row_dropped"
#: The row was kept but one optional value was cleared (set to NaN / None).
ACTION_CLEARED = "value_cleared"


class SchemaError(UserError, ValueError):
    """A dataset cannot be read at all: a missing file, column or bad setting.

    Messages name the file or column, the value received and what is expected.
    Bad *rows* never raise; they go to the rejects frame.
    """


def empty_rejects() -> pd.DataFrame:
    """Return an empty rejects frame with the documented columns and dtypes.

    Returns
    -------
    pandas.DataFrame
        Columns ``file, row, field, value, reason, action``; ``row`` is int64.
    """
    return pd.DataFrame(
        {
            "file": pd.Series([], dtype=object),
            "row": pd.Series([], dtype="int64"),
            "field": pd.Series([], dtype=object),
            "value": pd.Series([], dtype=object),
            "reason": pd.Series([], dtype=object),
            "action": pd.Series([], dtype=object),
        }
    )


def _as_text(values: Sequence[object] | np.ndarray | pd.Series) -> np.ndarray:
    """Render offending values as short strings ('' for missing, cut at 200 chars)."""
    arr = np.asarray(values, dtype=object).ravel()
    missing = pd.isna(arr)
    return np.array(
        ["" if m else (v if type(v) is str else str(v))[:200]
         for v, m in zip(arr, missing, strict=True)],
        dtype=object,
    )


def make_rejects(
    file: str,
    rows: Sequence[int] | np.ndarray,
    field: str | Sequence[str] | np.ndarray,
    values: Sequence[object] | np.ndarray | pd.Series,
    reason: str | Sequence[str] | np.ndarray,
    action: str = ACTION_DROPPED,
) -> pd.DataFrame:
    """Build rejects rows for many rows at once.

    Parameters
    ----------
    file : str
        File name inside the dataset folder, e.g. ``"tracks.csv"``.
    rows : array of int
        1-based data rows (header not counted); feature index for GeoJSON.
    field : str or array of str
        The field at fault (one for all rows, or one per row).
    values : array
        The offending values (rendered as text, '' when missing).
    reason : str or array of str
        Why the value is refused.
    action : {"row_dropped", "value_cleared"}
        What was done with the row.

    Returns
    -------
    pandas.DataFrame
        A rejects frame (see :func:`empty_rejects`).
    """
    if action not in (ACTION_DROPPED, ACTION_CLEARED):
        raise ValueError(
            f"action {action!r} is not valid; must be {ACTION_DROPPED!r} or {ACTION_CLEARED!r}"
        )
    rows_arr = np.asarray(rows, dtype="int64")
    n = len(rows_arr)
    if n == 0:
        return empty_rejects()
    return pd.DataFrame(
        {
            "file": np.full(n, file, dtype=object),
            "row": rows_arr,
            "field": np.broadcast_to(np.asarray(field, dtype=object), (n,)).copy(),
            "value": _as_text(values),
            "reason": np.broadcast_to(np.asarray(reason, dtype=object), (n,)).copy(),
            "action": np.full(n, action, dtype=object),
        }
    )


def concat_rejects(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate rejects frames, keeping the documented columns and dtypes.

    Parameters
    ----------
    frames : iterable of pandas.DataFrame
        Rejects frames (empty ones are skipped).

    Returns
    -------
    pandas.DataFrame
        One rejects frame with a RangeIndex.
    """
    parts = [f for f in frames if f is not None and len(f)]
    if not parts:
        return empty_rejects()
    out = pd.concat([p.loc[:, list(REJECT_COLUMNS)] for p in parts], ignore_index=True)
    out["row"] = out["row"].astype("int64")
    return out
