"""Tests for haulwatch.ingest.rejects."""

import numpy as np
import pytest

from haulwatch.ingest.rejects import (
    REJECT_COLUMNS,
    SchemaError,
    concat_rejects,
    empty_rejects,
    make_rejects,
)


def test_schema_error_is_a_value_error():
    assert issubclass(SchemaError, ValueError)


def test_empty_rejects_has_columns():
    rej = empty_rejects()
    assert tuple(rej.columns) == REJECT_COLUMNS
    assert len(rej) == 0
    assert rej["row"].dtype == "int64"


def test_make_rejects_broadcasts_and_renders_values():
    rej = make_rejects("tracks.csv", [3, 7], "lon", [None, 181.5], "bad lon")
    assert rej["row"].tolist() == [3, 7]
    assert rej["value"].tolist() == ["", "181.5"]
    assert set(rej["field"]) == {"lon"}
    assert set(rej["action"]) == {"row_dropped"}


def test_make_rejects_cuts_huge_values():
    rej = make_rejects("x.csv", [1], "time", ["9" * 10_000], "bad", "value_cleared")
    assert len(rej["value"].iloc[0]) == 200
    assert rej["action"].iloc[0] == "value_cleared"


def test_make_rejects_refuses_unknown_action():
    with pytest.raises(ValueError, match=r"action 'deleted'"):
        make_rejects("x.csv", [1], "f", ["v"], "r", action="deleted")


def test_concat_rejects_skips_empty_and_keeps_dtypes():
    a = make_rejects("a.csv", np.array([1]), "f", ["v"], "r")
    out = concat_rejects([empty_rejects(), a, make_rejects("b.csv", [], "f", [], "r")])
    assert len(out) == 1
    assert out["row"].dtype == "int64"
    assert len(concat_rejects([])) == 0
