"""A newcomer's path: the README's serve example leaves no file in the checkout."""

from __future__ import annotations

import secrets
from pathlib import Path

import uvicorn
from fastapi.testclient import TestClient

from haulwatch.api.cli import main

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo"


def test_serve_example_leaves_no_stray_file(tmp_path, monkeypatch):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    home = tmp_path / "home"
    monkeypatch.chdir(checkout)
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_DATA_HOME", "HAULWATCH_DB_URL", "HAULWATCH_DATASET",
                "HAULWATCH_AUDIT_CONFIG", "HAULWATCH_TOKENS_FILE"):
        monkeypatch.delenv(var, raising=False)
    tokens = {r: secrets.token_hex(16) for r in ("analyst", "dispatcher", "admin", "device")}
    monkeypatch.setenv("HAULWATCH_TOKENS", ",".join(f"u-{r}:{r}:{t}" for r, t in tokens.items()))
    served = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: served.setdefault(
        "app", self.config.app))
    assert main(["serve", "--dataset", str(DEMO), "--port", "8000"]) == 0
    with TestClient(served["app"]) as c:
        for role, token in tokens.items():  # every role's token opens what the README says
            r = c.get("/api/alerts", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == (403 if role == "device" else 200), role
        assert c.get("/").status_code == 200  # the console
    assert list(checkout.iterdir()) == []
    assert (home / ".local" / "share" / "haulwatch" / "haulwatch.db").is_file()
