"""The house ladder: imports point down, never up (docs/architecture.md).

``geo`` ← ``ingest`` ← ``routes`` ← ``drone`` ← ``api``: each room may import
the rooms listed for it below and the package root (``haulwatch``,
``haulwatch.errors``, ``haulwatch.i18n``, ``haulwatch.timezone``, ``haulwatch.waiting``), nothing else
of the project. Every
``.py`` file of the rooms is parsed (never imported), so an import inside a
function, under ``TYPE_CHECKING`` or written relative (``from ..ingest import``)
counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("geo", "ingest", "routes", "drone", "api")
#: What each room may import besides itself and the package root.
ALLOWED: dict[str, frozenset[str]] = {
    "geo": frozenset(),
    "ingest": frozenset({"geo"}),
    "routes": frozenset({"geo", "ingest"}),
    "drone": frozenset({"geo", "routes"}),
    "api": frozenset(ROOMS),
}
#: Modules of the package root every room may import (with their submodules).
ROOT_MODULES = ("haulwatch", "haulwatch.errors", "haulwatch.i18n", "haulwatch.timezone",
                "haulwatch.waiting")


def _package_of(path: Path) -> str:
    """Dotted package of a file under a room: ``ingest/jt808/frame.py`` → ``haulwatch.ingest.jt808``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(("haulwatch", *parts[:-1]))
    return ".".join(("haulwatch", *parts[:-1]))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every project-or-other module a file imports, absolute and dotted, with its line.

    ``from X import a, b`` yields ``X.a`` and ``X.b`` (a name may be a
    submodule), so ``from haulwatch import ingest`` is seen as ``haulwatch.ingest``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _package_of(path)
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.extend((node.lineno, f"{module}.{alias.name}") for alias in node.names)
    return sorted(out)


def room_of(module: str) -> str | None:
    """The room a dotted module belongs to (``haulwatch.geo.crs`` → ``geo``), else None.

    A room's folder name imported bare (``import ingest``) also counts as the room.
    """
    parts = module.split(".")
    if parts[0] == "haulwatch" and len(parts) > 1 and parts[1] in ROOMS:
        return parts[1]
    if parts[0] in ROOMS:
        return parts[0]
    return None


def _is_root(module: str) -> bool:
    return any(module == r or module.startswith(r + ".") for r in ROOT_MODULES[1:]) \
        or module in ("haulwatch", "haulwatch.__version__")


def violations(room: str) -> list[str]:
    """``file:line imports module`` for every import of ``room`` outside its allowed directions."""
    found = []
    for path in sorted((ROOT / room).rglob("*.py")):
        for line, module in imported_modules(path):
            target = room_of(module)
            if module.split(".")[0] in ROOMS:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module} "
                             "(a room by its folder name; import haulwatch.<room>)")
            elif target is None:
                if module.startswith("haulwatch") and not _is_root(module):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {module} "
                                 f"(allowed of the root: {', '.join(ROOT_MODULES)})")
            elif target != room and target not in ALLOWED[room]:
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module} "
                             f"({room} may import: "
                             f"{', '.join(sorted(ALLOWED[room])) or 'no other room'})")
    return found


@pytest.mark.parametrize("room", ROOMS)
def test_imports_point_down(room: str) -> None:
    assert (ROOT / room).is_dir()
    assert violations(room) == []


def test_checker_sees_relative_lazy_and_root_imports(tmp_path: Path, monkeypatch) -> None:
    """The checker itself: a fake house with one upward import of each form."""
    for name in ROOMS:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / "geo" / "bad.py").write_text(
        "from ..ingest.dataset import RawDataset\n"          # relative, upward
        "def f():\n    import haulwatch.routes.audit\n"     # lazy, upward
        "from haulwatch import drone\n"                     # name that is a room
        "from haulwatch.errors import UserError\n"          # root: allowed
        "from . import crs\n"                               # itself: allowed
        "import numpy\n"                                    # not the project
    )
    (tmp_path / "ingest" / "sub").mkdir()
    (tmp_path / "ingest" / "sub" / "deep.py").write_text(
        "from ...geo import crs\n"                          # ingest -> geo: allowed
        "from ...routes import audit\n"                     # ingest -> routes: refused
    )
    (tmp_path / "drone" / "x.py").write_text("from haulwatch.ingest import tracks\n")
    (tmp_path / "api" / "y.py").write_text("from haulwatch.drone import plan\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    geo = violations("geo")
    assert [v.split(" imports ")[1].split(" (")[0] for v in geo] == [
        "haulwatch.ingest.dataset.RawDataset", "haulwatch.routes.audit", "haulwatch.drone"]
    assert [v.split(":")[0] for v in violations("ingest")] == ["ingest/sub/deep.py"]
    assert "haulwatch.routes.audit" in violations("ingest")[0]
    assert len(violations("drone")) == 1
    assert violations("api") == []
