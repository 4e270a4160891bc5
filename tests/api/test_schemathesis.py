"""Property-based API run (schemathesis, bounded examples): no input gives a server error,
and every response conforms to the OpenAPI document (status code, content type, headers, body)."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from haulwatch.api.app import create_app
from haulwatch.api.settings import Settings, parse_tokens
from haulwatch.ingest.synthetic import generate

_ADMIN = secrets.token_urlsafe(16)
_DB = Path(tempfile.mkdtemp(prefix="haulwatch-st-")) / "st.db"
# a small generated city: positions go through the live audit, dispatch plans from its nests
generate(_DB.parent / "ds", trucks=2, days=1, seed=3, bad_row_fraction=0.0,
         duplicate_fraction=0.0)
APP = create_app(Settings(db_url=f"sqlite:///{_DB}", dataset=_DB.parent / "ds",
                          tokens=tuple(parse_tokens(f"fuzz:admin:{_ADMIN}"))),
                 clock=lambda: datetime(2026, 3, 2, 4, 0, tzinfo=timezone.utc))
APP.state.service.store.upsert_alerts(pd.DataFrame({
    "alert_id": ["X1"], "kind": ["gps_gap"], "vehicle_id": ["浙A1"],
    "start": pd.to_datetime(["2024-05-01T00:00:00Z"]),
    "end": pd.to_datetime(["2024-05-01T00:20:00Z"]),
    "severity": ["medium"], "lon": [120.6], "lat": [30.0], "evidence": ["{}"]}))

schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(
    path="/api/stream")  # an endless event stream: covered by test_routers_stream.py
# The drone fleet answers 503 while HAULWATCH_DRONES is unset (api/services/fleet.py, being
# wired in by another change): fuzzed separately once it is configured in a test service.
schema = schema.exclude(path_regex="^/api/fleet")



# the response side of the contract (the request side is judged by test_bad_input.py:
# schema-valid values the limits refuse, e.g. a time in 9999, are a documented 422)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


@pytest.fixture(scope="module", autouse=True)
def _remove_store():
    yield
    APP.state.service.store.close()
    shutil.rmtree(_DB.parent, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_server_error(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {_ADMIN}"}, checks=CHECKS)
