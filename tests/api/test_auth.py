"""Settings from the environment and token authentication."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from haulwatch.api.auth import require_roles
from haulwatch.api.services.auth import TokenRegistry
from haulwatch.api.settings import (
    Settings,
    SettingsError,
    hash_token,
    parse_tokens,
    read_tokens_file,
)


class TestSettings:
    def test_defaults(self):
        s = Settings.from_env({"HOME": "/home/ann"})
        assert s.db_url == "sqlite:////home/ann/.local/share/haulwatch/haulwatch.db"
        assert s.tokens == () and s.dataset is None and s.vehicle_url is None
        xdg = Settings.from_env({"HOME": "/home/ann", "XDG_DATA_HOME": "/data"})
        assert xdg.db_url == "sqlite:////data/haulwatch/haulwatch.db"
        assert Settings().db_url == "sqlite:///:memory:"  # built directly: nothing on disk

    def test_environment_and_overrides(self, tmp_path):
        env = {"HAULWATCH_DB_URL": "sqlite:///x.db", "HAULWATCH_TOKENS": "ann:analyst:t1",
               "HAULWATCH_DATASET": str(tmp_path), "HAULWATCH_VEHICLE_URL": "tcp:127.0.0.1:5760",
               "HAULWATCH_DOCK": "N1", "HAULWATCH_TIME_SCALE": "20",
               "HAULWATCH_KEEPALIVE_S": "2.5"}
        s = Settings.from_env(env, db_url="sqlite:///y.db", dataset=None)
        assert s.db_url == "sqlite:///y.db"  # flag wins; None leaves the env value
        assert s.dataset == Path(tmp_path)
        assert (s.vehicle_url, s.dock_site_id, s.time_scale, s.keepalive_s) == (
            "tcp:127.0.0.1:5760", "N1", 20.0, 2.5)
        assert s.tokens[0].name == "ann" and s.tokens[0].sha256_hex == hash_token("t1")

    @pytest.mark.parametrize(("env", "match"), [
        ({"HAULWATCH_DB_URL": "mysql://db"}, "db_url: 'mysql://db'"),
        ({"HAULWATCH_TIME_SCALE": "fast"}, "HAULWATCH_TIME_SCALE: 'fast'"),
        ({"HAULWATCH_TIME_SCALE": "0"}, "time_scale"),
        ({"HAULWATCH_STREAM_QUEUE": "0"}, "stream_queue_size"),
        ({"HAULWATCH_TOKENS": "ann:boss:t1"}, "role 'boss'"),
        ({"HAULWATCH_TOKENS": "ann:analyst"}, "entry 1 is not 'name:role:token'"),
    ])
    def test_bad_values_are_named(self, env, match):
        with pytest.raises(SettingsError, match=match):
            Settings.from_env(env)

    def test_token_with_colons_is_kept_whole(self):
        (entry,) = parse_tokens(" ann:analyst:a:b:c , ")
        assert entry.sha256_hex == hash_token("a:b:c")


class TestTokensFile:
    def test_reads_hashed_tokens(self, tmp_path):
        digest = hashlib.sha256(b"s3cret").hexdigest()
        f = tmp_path / "tokens"
        f.write_text(f"# who role digest\nops admin sha256:{digest.upper()}\n\n", encoding="utf-8")
        (entry,) = read_tokens_file(f)
        assert (entry.name, entry.role, entry.sha256_hex) == ("ops", "admin", digest)
        s = Settings.from_env({"HAULWATCH_TOKENS_FILE": str(f), "HAULWATCH_TOKENS": "a:device:x"})
        assert {e.name for e in s.tokens} == {"ops", "a"}

    @pytest.mark.parametrize(("line", "match"), [
        ("ops admin", "line 1: expected"),
        ("ops root sha256:" + "0" * 64, "line 1: role 'root'"),
        ("ops admin md5:" + "0" * 32, "line 1: digest"),
        ("ops admin sha256:xyz", "line 1: digest"),
    ])
    def test_bad_lines(self, tmp_path, line, match):
        f = tmp_path / "tokens"
        f.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(SettingsError, match=match):
            read_tokens_file(f)

    def test_missing_file(self, tmp_path):
        with pytest.raises(SettingsError, match="cannot read"):
            read_tokens_file(tmp_path / "nope")


class TestRegistry:
    def test_authenticate(self):
        reg = TokenRegistry(parse_tokens("ann:analyst:aaa,dan:dispatcher:ddd"))
        assert len(reg) == 2
        p = reg.authenticate("ddd")
        assert (p.name, p.role) == ("dan", "dispatcher")
        assert reg.authenticate("dd") is None
        assert reg.authenticate("") is None
        assert reg.authenticate("aaa ") is None

    def test_no_plain_token_kept(self):
        reg = TokenRegistry(parse_tokens("ann:analyst:plain-secret"))
        assert "plain-secret" not in repr(reg.__dict__)

    def test_require_roles_checks_names(self):
        with pytest.raises(ValueError, match="roles"):
            require_roles("superuser")
        with pytest.raises(ValueError, match="roles"):
            require_roles()
