"""Tests of routes.config.AuditConfig."""

from __future__ import annotations

import dataclasses

import pytest

from haulwatch.routes.config import AuditConfig, AuditConfigError


class TestAuditConfig:
    def test_defaults_follow_the_detection_rules(self):
        c = AuditConfig()
        assert c.gap_max_s == 600
        assert c.hotspot_radius_m == 150
        assert c.hotspot_min_vehicles == 3
        assert c.site_buffer_m == {"origin": 50.0, "disposal": 150.0, "depot": 50.0}

    def test_is_frozen(self):
        with pytest.raises(dataclasses.FrozenInstanceError):
            AuditConfig().gap_max_s = 5  # type: ignore[misc]

    def test_overrides_convert_text_values(self):
        c = AuditConfig().with_overrides({"gap_max_s": "900", "deviation_min_points": "4", "timezone": "UTC"})
        assert c.gap_max_s == 900.0
        assert c.deviation_min_points == 4
        assert isinstance(c.deviation_min_points, int)
        assert c.timezone == "UTC"
        assert AuditConfig().gap_max_s == 600  # the original is unchanged

    @pytest.mark.parametrize(
        ("overrides", "match"),
        [
            ({"gap_max": 1}, r"unknown audit setting 'gap_max'.*allowed: .*gap_max_s"),
            ({"gap_max_s": "soon"}, r"'gap_max_s': value 'soon' is not a number"),
            ({"gap_max_s": 0}, r"'gap_max_s': value 0.0 must be > 0"),
            ({"disposal_buffer_m": -5}, r"'disposal_buffer_m': value -5.0 must be >= 0"),
            ({"hotspot_min_vehicles": 2.5}, r"'hotspot_min_vehicles': value 2.5 must be a whole number"),
            ({"hotspot_min_vehicles": 1}, r"must be >= 2"),
            ({"timezone": "Mars/Olympus"}, r"'timezone': value 'Mars/Olympus' is not a known IANA timezone"),
            ({"stop_diameter_m": True}, r"'stop_diameter_m': value True is not a number"),
        ],
    )
    def test_bad_overrides_name_key_value_and_rule(self, overrides, match):
        with pytest.raises(AuditConfigError, match=match):
            AuditConfig().with_overrides(overrides)

    def test_bad_constructor_value(self):
        with pytest.raises(AuditConfigError, match="corridor_default_m"):
            AuditConfig(corridor_default_m=float("nan"))

    def test_from_toml_top_level_and_table(self, tmp_path):
        flat = tmp_path / "flat.toml"
        flat.write_text('gap_max_s = 900\ntimezone = "Asia/Urumqi"\n', encoding="utf-8")
        table = tmp_path / "table.toml"
        table.write_text("[audit]\ndisposal_buffer_m = 200\nhotspot_min_vehicles = 4\n", encoding="utf-8")
        a = AuditConfig.from_toml(flat)
        b = AuditConfig.from_toml(table)
        assert (a.gap_max_s, a.timezone) == (900.0, "Asia/Urumqi")
        assert (b.disposal_buffer_m, b.hotspot_min_vehicles, b.gap_max_s) == (200.0, 4, 600.0)

    def test_from_toml_errors(self, tmp_path):
        with pytest.raises(AuditConfigError, match="does not exist"):
            AuditConfig.from_toml(tmp_path / "missing.toml")
        bad = tmp_path / "bad.toml"
        bad.write_text("gap_max_s = = 3\n", encoding="utf-8")
        with pytest.raises(AuditConfigError, match="not valid TOML"):
            AuditConfig.from_toml(bad)
        unknown = tmp_path / "unknown.toml"
        unknown.write_text("[audit]\nstop_radius_m = 3\n", encoding="utf-8")
        with pytest.raises(AuditConfigError, match="'stop_radius_m'"):
            AuditConfig.from_toml(unknown)
        mixed = tmp_path / "mixed.toml"
        mixed.write_text("gap_max_s = 3\n[audit]\nstop_diameter_m = 3\n", encoding="utf-8")
        with pytest.raises(AuditConfigError, match=r"outside the \[audit\] table"):
            AuditConfig.from_toml(mixed)

    def test_to_dict_round_trips(self):
        c = AuditConfig(gap_max_s=700)
        assert AuditConfig().with_overrides(c.to_dict()) == c


class TestTeleportRuleAndLoad:
    def test_teleport_rule_is_part_of_the_config(self):
        c = AuditConfig().with_overrides({"max_speed_kmh": "120", "teleport_min_jump_m": "250",
                                          "teleport_max_reversal_speed_kmh": "none"})
        assert c.teleport_rule == {"max_speed_kmh": 120.0, "min_jump_m": 250.0,
                                   "max_reversal_speed_kmh": None}
        assert AuditConfig().teleport_rule == {"max_speed_kmh": 150.0, "min_jump_m": 300.0,
                                               "max_reversal_speed_kmh": 45.0}

    @pytest.mark.parametrize(("key", "value", "match"), [
        ("teleport_min_jump_m", -1, r"'teleport_min_jump_m': value -1.0 must be >= 0"),
        ("teleport_max_reversal_speed_kmh", 0, r"must be > 0"),
        ("teleport_max_reversal_speed_kmh", "fast", r"is not a number"),
    ])
    def test_bad_teleport_values(self, key, value, match):
        with pytest.raises(AuditConfigError, match=match):
            AuditConfig().with_overrides({key: value})

    def test_load_file_then_overrides(self, tmp_path):
        path = tmp_path / "audit.toml"
        path.write_text("[audit]\ngap_max_s = 900\nteleport_min_jump_m = 200\n", encoding="utf-8")
        c = AuditConfig.load(path, {"gap_max_s": "1200"})
        assert (c.gap_max_s, c.teleport_min_jump_m) == (1200.0, 200.0)
        assert AuditConfig.load() == AuditConfig()
        assert AuditConfig.load(None, {"hotspot_min_vehicles": 4}).hotspot_min_vehicles == 4
        with pytest.raises(AuditConfigError, match="does not exist"):
            AuditConfig.load(tmp_path / "nope.toml")

    def test_timezone_must_be_a_name(self):
        with pytest.raises(AuditConfigError, match=r"must be an IANA zone name like 'Asia/Shanghai' or None"):
            AuditConfig(timezone=8)  # type: ignore[arg-type]
        assert AuditConfig().with_overrides({"timezone": "none"}).timezone is None
