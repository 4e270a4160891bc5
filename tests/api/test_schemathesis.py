"""Property-based API run (schemathesis, bounded examples): no input gives a server error."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from haulwatch.api.app import create_app
from haulwatch.api.settings import Settings, parse_tokens

_ADMIN = secrets.token_urlsafe(16)
_DB = Path(tempfile.mkdtemp(prefix="haulwatch-st-")) / "st.db"
APP = create_app(Settings(db_url=f"sqlite:///{_DB}",
                          tokens=tuple(parse_tokens(f"fuzz:admin:{_ADMIN}"))))
APP.state.service.store.upsert_alerts(pd.DataFrame({
    "alert_id": ["X1"], "kind": ["gps_gap"], "vehicle_id": ["浙A1"],
    "start": pd.to_datetime(["2024-05-01T00:00:00Z"]),
    "end": pd.to_datetime(["2024-05-01T00:20:00Z"]),
    "severity": ["medium"], "lon": [120.6], "lat": [30.0], "evidence": ["{}"]}))

schema = schemathesis.openapi.from_asgi("/openapi.json", APP).exclude(
    path="/api/stream")  # an endless event stream: covered by test_routers_stream.py



@pytest.fixture(scope="module", autouse=True)
def _remove_store():
    yield
    APP.state.service.store.close()
    shutil.rmtree(_DB.parent, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_server_error(case):
    case.call_and_validate(headers={"Authorization": f"Bearer {_ADMIN}"},
                           checks=[not_a_server_error])
