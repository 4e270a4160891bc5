"""Exit statuses of the ``haulwatch`` command, decided once in ``main`` by exception class.

The user errors here are classes made on the spot, in a module nobody names: the
mapping must follow the class (``haulwatch.errors.UserError``), so renaming or
moving a library's exception cannot turn a user error into a traceback.
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

import haulwatch
from haulwatch.api.cli import build_parser, main
from haulwatch.api.cli.errors import UsageError, one_line
from haulwatch.api.cli.options import tcp_port
from haulwatch.errors import HaulwatchError, UserError

CLI_DIR = Path(__file__).resolve().parents[2] / "api" / "cli"


def _error_class(name: str, *bases: type[BaseException]) -> type[BaseException]:
    """A fresh exception class from a module that exists nowhere (a renamed library)."""
    return type(name, bases, {"__module__": "somewhere_renamed.deep.module"})


@pytest.fixture
def failing_audit(monkeypatch):
    """Make ``routes.audit.audit_folder`` (the library call under ``audit``) raise ``exc``."""

    def install(exc: BaseException) -> None:
        def audit_folder(folder, config, *, progress=None):
            raise exc

        module = types.ModuleType("haulwatch.routes.audit")
        module.audit_folder = audit_folder
        monkeypatch.setitem(sys.modules, "haulwatch.routes.audit", module)

    return install


@pytest.fixture
def failing_generate(monkeypatch):
    """Make ``ingest.synthetic.generate`` (the library call under ``generate``) raise ``exc``."""
    import haulwatch.ingest.synthetic as synthetic

    def install(exc: BaseException) -> None:
        def generate(*args, **kwargs):
            raise exc

        monkeypatch.setattr(synthetic, "generate", generate)

    return install


@pytest.mark.parametrize(
    "bases",
    [(UserError,), (UserError, ValueError), (UserError, LookupError), (UsageError,)],
    ids=["UserError", "UserError+ValueError", "UserError+LookupError", "UsageError"],
)
def test_user_error_from_a_library_call_gives_2_and_one_line(bases, failing_audit, tmp_path, capsys):
    cls = _error_class("FreshlyRenamedError", *bases)
    failing_audit(cls("tracks.csv: column 'lat' is missing\nsecond line of detail"))
    (tmp_path / "ds").mkdir()
    code = main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.endswith("\n")
    assert err.startswith("haulwatch audit: error: tracks.csv: column 'lat' is missing")
    assert "second line of detail" in err  # joined, not lost
    assert "Traceback" not in err


def test_user_error_from_generate_gives_2(failing_generate, tmp_path, capsys):
    failing_generate(_error_class("OtherNameError", UserError)("trucks=0 is not allowed"))
    assert main(["generate", "--out", str(tmp_path / "f"), "--quiet"]) == 2
    assert capsys.readouterr().err == "haulwatch generate: error: trucks=0 is not allowed\n"


@pytest.mark.parametrize("exc", [RuntimeError("a bug"), ValueError("a bug"), HaulwatchError("a bug")])
def test_errors_that_are_not_user_errors_keep_their_traceback(exc, failing_audit, tmp_path):
    failing_audit(exc)
    (tmp_path / "ds").mkdir()
    with pytest.raises(type(exc), match="a bug"):
        main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "-q"])


def test_missing_named_file_gives_2(failing_audit, tmp_path, capsys):
    failing_audit(FileNotFoundError(2, "No such file or directory", "ds/tracks.csv"))
    (tmp_path / "ds").mkdir()
    assert main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "ds/tracks.csv" in err and err.count("\n") == 1


def test_ctrl_c_gives_130(failing_audit, tmp_path, capsys):
    failing_audit(KeyboardInterrupt())
    (tmp_path / "ds").mkdir()
    assert main(["audit", str(tmp_path / "ds"), "--out", str(tmp_path / "o"), "-q"]) == 130
    assert capsys.readouterr().err == "haulwatch audit: interrupted\n"


def test_one_line_of_an_empty_message_is_the_class_name():
    assert one_line(UsageError()) == "UsageError"
    assert one_line(UsageError("  a\n\n  b  ")) == "a; b"


def test_usage_error_is_a_user_error_and_a_value_error():
    assert issubclass(UsageError, UserError) and issubclass(UsageError, ValueError)


def test_one_usage_error_class_and_no_lookup_by_name():
    """No subcommand declares its own usage error or finds error classes by module name."""
    for path in sorted(CLI_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.lstrip("_").endswith("UsageError"):
                assert path.name == "errors.py", f"{path.name} declares {node.name}"
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "__import__":
                raise AssertionError(f"{path.name} imports by name at line {node.lineno}")


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"haulwatch {haulwatch.__version__}"


def test_no_subcommand_prints_help_and_gives_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


# --------------------------------------------------------------------------- ports


@pytest.mark.parametrize("text,port", [("0", 0), ("1", 1), ("8000", 8000), ("65535", 65535)])
def test_tcp_port_accepts_0_to_65535(text, port):
    assert tcp_port(text) == port


@pytest.mark.parametrize("text", ["65536", "99999", "-1", "80.5", "eighty", "", "0x50"])
def test_tcp_port_refuses_the_rest(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match=r"allowed: an integer 0\.\.65535"):
        tcp_port(text)


@pytest.mark.parametrize("command", [["serve"], ["sim", "--home", "30,120"]])
def test_out_of_range_port_is_refused_before_anything_starts(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--port", "99999"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "argument --port: value '99999' is not allowed" in err
    assert "Traceback" not in err


def test_port_zero_and_default_parse():
    parser = build_parser()
    assert parser.parse_args(["serve", "--port", "0"]).port == 0
    assert parser.parse_args(["serve"]).port == 8000
