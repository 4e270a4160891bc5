"""A type checker resolves every ``haulwatch.*`` module of the installed checkout.

``haulwatch`` is a regular package (``haulwatch/__init__.py``, ``py.typed``) whose rooms are
linked in (``haulwatch/geo -> ../geo``, ...) and installed as a plain path, so mypy and
pyright find it like any installed package. This runs mypy on a scratch file, outside the
checkout, that imports every module found under the package (plus the names users import
from the root) and requires no import error. It checks *resolution*, not typing: the
project's own modules are followed silently and third-party ones are skipped, so the run
stays short (a few seconds).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import haulwatch

IMPORT_ERRORS = ("import-not-found", "import-untyped", "Cannot find implementation or library stub")

MYPY_INI = """\
[mypy]
follow_imports = skip
[mypy-haulwatch.*]
follow_imports = silent
[mypy-haulwatch]
follow_imports = silent
"""


def haulwatch_modules() -> list[str]:
    """Every importable module under the installed ``haulwatch`` package (links followed)."""
    root = Path(haulwatch.__file__).resolve().parent
    modules = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        if not (here / "__init__.py").is_file():
            if any(f.endswith(".py") for f in files):
                raise AssertionError(f"{here} holds Python modules but is not a package")
            dirs[:] = []
            continue
        package = here.relative_to(root.parent).parts
        modules.append(".".join(package))
        for name in sorted(files):
            if name.endswith(".py") and name not in ("__init__.py", "__main__.py"):
                modules.append(".".join((*package, name[:-3])))
    return modules


def _mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    try:
        import mypy  # noqa: F401
    except ModuleNotFoundError:  # a missing checker must not pass as a skip
        pytest.fail("mypy is not installed; it is in the dev extra: pip install -e '.[dev]'")
    (tmp_path / "mypy.ini").write_text(MYPY_INI, encoding="utf-8")
    (tmp_path / "uses_haulwatch.py").write_text(source, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "--cache-dir",
         str(tmp_path / ".mypy_cache"), "--no-color-output", "--show-error-codes",
         "uses_haulwatch.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


def test_every_room_is_found():
    modules = set(haulwatch_modules())
    for room in ("geo", "ingest", "routes", "drone", "api", "api.cli"):
        assert f"haulwatch.{room}" in modules
    assert "haulwatch.errors" in modules and "haulwatch.api.cli.errors" in modules


def test_mypy_resolves_every_haulwatch_import(tmp_path):
    modules = haulwatch_modules()
    source = "".join(f"import {m}\n" for m in modules) + (
        "from haulwatch import HaulwatchError, UserError, __version__\n"
        "from haulwatch.api.cli import build_parser, main\n"
        "from haulwatch.api.cli.errors import UsageError\n"
    )
    result = _mypy(tmp_path, source)
    output = result.stdout + result.stderr
    unresolved = [line for line in output.splitlines() if any(e in line for e in IMPORT_ERRORS)]
    assert not unresolved, "\n".join(unresolved)
    assert result.returncode == 0, output


def test_the_check_can_fail(tmp_path):
    """A module that does not exist is reported, so the test above is not vacuous."""
    result = _mypy(tmp_path, "import haulwatch.no_such_room\n")
    assert result.returncode == 1
    assert "import-not-found" in result.stdout and "haulwatch.no_such_room" in result.stdout
