"""Cells of input columns: pyarrow columns into numpy arrays with masks of missing and bad cells.

Shared by every reader of the ingest room (tracks, times, manifests): a column
of any type (text from a CSV, typed from Parquet, pandas or numpy from a
caller) becomes float64 values plus ``missing`` / ``bad`` masks, with a fast
path for clean data and the original text of bad cells kept for the rejects.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["as_chunked", "blank_to_null", "cell_texts", "null_mask", "numeric_cells", "to_string"]


def as_chunked(values: pa.Array | pa.ChunkedArray | pd.Series | np.ndarray) -> pa.ChunkedArray:
    """Any column (pyarrow, pandas or numpy) as a pyarrow ChunkedArray."""
    if isinstance(values, pa.ChunkedArray):
        return values
    if isinstance(values, pa.Array):
        return pa.chunked_array([values])
    if isinstance(values, pd.Series):
        return pa.chunked_array([pa.array(values.astype(object), from_pandas=True)])
    return pa.chunked_array([pa.array(np.asarray(values, dtype=object), from_pandas=True)])


def to_string(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cast any column to (large) strings, dictionary and numbers included."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col
    if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
        try:
            return col.cast(pa.string())
        except pa.ArrowInvalid:  # not UTF-8: decode each distinct value (GB18030 first)
            enc = pc.dictionary_encode(col).combine_chunks()
            words = [None if v is None else _decode_bytes(v)
                     for v in enc.dictionary.to_pylist()]
            return pa.chunked_array([pc.take(pa.array(words, pa.string()), enc.indices)])
    return pc.cast(col, pa.string())


def _decode_bytes(raw: bytes) -> str:
    """Bytes that are not UTF-8: GB18030 (Chinese plates), else UTF-8 with U+FFFD."""
    try:
        return raw.decode("gb18030")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")


def blank_to_null(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strings that are empty after stripping become null."""
    stripped = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(pc.utf8_length(stripped), 0), pa.scalar(None, stripped.type),
                      stripped)


def null_mask(col: pa.ChunkedArray) -> np.ndarray:
    """Boolean mask of the null cells (NaN is a value, not null)."""
    return np.asarray(pc.is_null(col, nan_is_null=False).to_numpy(zero_copy_only=False), bool)


def numeric_cells(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Convert a column to float64.

    Returns
    -------
    values : float64 array (NaN where missing or not a number)
    missing : bool array, the cell was empty
    bad : bool array, the cell held text that is not a number
    """
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) \
            or pa.types.is_decimal(t):
        missing = null_mask(col)
        # unsafe: a uint64 beyond 2**53 is a (rounded) number, not an error
        vals = pc.cast(col, pa.float64(), safe=False).to_numpy(
            zero_copy_only=False).astype("float64")
        vals[missing] = np.nan
        return vals, missing, np.zeros(len(vals), dtype=bool)
    col = to_string(col)
    try:  # fast path: every non-empty cell is a plain number
        vals = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False).astype("float64")
        missing = null_mask(col)
        bad = np.zeros(len(vals), dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # full-width digits and signs (１２１．５, typed in Chinese input methods) → ASCII
        col = blank_to_null(pc.utf8_normalize(col, "NFKC"))
        missing = null_mask(col)
        ser = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
        vals = pd.to_numeric(ser, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        # A literal "nan" is a number (non-finite), like on the fast path: not bad text.
        nan_word = ser.str.lower().isin(["nan", "+nan", "-nan"]).to_numpy()
        bad = ~missing & np.isnan(vals) & ~nan_word
    vals = np.array(vals, dtype="float64")
    vals[missing] = np.nan
    return vals, missing, bad


def cell_texts(col: pa.ChunkedArray, mask: np.ndarray) -> np.ndarray:
    """The original cells of ``col`` at ``mask`` as Python objects."""
    if not mask.any():
        return np.empty(0, dtype=object)
    picked = col.filter(pa.array(mask))
    if pa.types.is_dictionary(picked.type):
        picked = picked.cast(picked.type.value_type)
    return np.asarray(picked.to_pylist(), dtype=object)
