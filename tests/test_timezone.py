"""Tests of haulwatch.timezone: the one default zone and the one zone check."""

from __future__ import annotations

import pytest

from haulwatch.errors import UserError
from haulwatch.timezone import DEFAULT_TIMEZONE, TimezoneError, check_timezone


def test_default_is_china_standard_time():
    assert DEFAULT_TIMEZONE == "Asia/Shanghai"


@pytest.mark.parametrize("name", ["Asia/Shanghai", "UTC", " Asia/Urumqi "])
def test_known_zones_pass_stripped(name):
    assert check_timezone(name) == name.strip()


@pytest.mark.parametrize("value", ["Asia/Shangai", "", "   ", None, 8, "../etc/passwd", "Mars/Olympus"])
def test_unknown_or_not_text_is_a_user_error(value):
    with pytest.raises(TimezoneError, match="is not a known IANA timezone") as info:
        check_timezone(value)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_caller_names_the_value_and_keeps_its_error_class():
    class MyError(UserError, ValueError):
        pass

    with pytest.raises(MyError, match=r"^dataset\.toml: timezone 'X/Y' is not a known IANA timezone; "
                                      r"expected a name like 'Asia/Shanghai' or 'UTC'$"):
        check_timezone("X/Y", what="dataset.toml: timezone", error=MyError)
