"""Every ``haulwatch <command> --help`` example works as written against the bundled demo.

The examples are parsed out of each subcommand's epilog (the text ``--help`` prints),
so a changed option, a renamed nest or a stale alert id fails here. Every example is
parsed by the real parser and its references are checked against ``data/demo`` (nests
``N1``/``N2``, the alert ids an audit of it gives, coordinates near its sites). The
examples that need no server, vehicle or long run (audit of the demo, plan, evaluate)
are also run, in a scratch folder where ``data`` is the checkout's ``data`` and
``/tmp/...`` paths are redirected into the test's own temporary folder.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path

import pytest

from haulwatch.api.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo"
# a fixed take-off time on the demo's day, so a plan example does not depend on the hour
DAYTIME = "2026-03-02T10:00"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps no public handle on its subparsers
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("the haulwatch parser has no subcommands")


def examples_of(epilog: str) -> list[list[str]]:
    """The ``haulwatch ...`` command lines of an epilog, continuation lines joined."""
    lines: list[str] = []
    pending = ""
    for raw in epilog.splitlines():
        text = raw.strip()
        if pending:
            text = pending + " " + text
            pending = ""
        if text.endswith("\\"):
            pending = text[:-1].strip()
            continue
        lines.append(text)
    commands = []
    for text in lines:
        label, sep, rest = text.partition(": ")
        if sep and label in ("example", "examples") and rest.startswith("haulwatch "):
            text = rest  # a one-line epilog: "example: haulwatch ..."
        if not text.startswith("haulwatch "):
            continue  # headings, comments, `export ...`
        text = text.removesuffix("&").strip()
        commands.append(shlex.split(text)[1:])
    return commands


def _all_examples() -> list[tuple[str, list[str]]]:
    out, seen = [], set()
    for name, sub in _subparsers(build_parser()).items():
        for argv in examples_of(sub.epilog or ""):
            if tuple(argv) not in seen:  # e.g. the demo audit that several epilogs start with
                seen.add(tuple(argv))
                out.append((name, argv))
    return out


EXAMPLES = _all_examples()
IDS = [" ".join(argv) for _, argv in EXAMPLES]


def _demo_sites() -> list[dict]:
    data = json.loads((DEMO / "sites.geojson").read_text(encoding="utf-8"))
    return data["features"]


def _demo_bbox(margin_deg: float = 0.1) -> tuple[float, float, float, float]:
    lons, lats = [], []

    def walk(coords):
        if isinstance(coords[0], (int, float)):
            lons.append(coords[0])
            lats.append(coords[1])
        else:
            for c in coords:
                walk(c)

    for feature in _demo_sites():
        walk(feature["geometry"]["coordinates"])
    return min(lons) - margin_deg, min(lats) - margin_deg, max(lons) + margin_deg, max(
        lats
    ) + margin_deg


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    """``haulwatch audit data/demo --out out/demo`` (the first example of audit and plan)."""
    out = tmp_path_factory.mktemp("examples") / "out" / "demo"
    assert main(["audit", str(DEMO), "--out", str(out), "-q"]) == 0
    return out


def test_every_subcommand_has_examples():
    names = {name for name, _ in EXAMPLES}
    assert names == set(_subparsers(build_parser())), "a subcommand's --help has no example"


def test_the_parser_finds_continuation_lines():
    epilog = "examples:\n  haulwatch plan --a 1 \\\n      --b 2\n  # note\n  haulwatch sim --x &\n"
    assert examples_of(epilog) == [["plan", "--a", "1", "--b", "2"], ["sim", "--x"]]
    assert examples_of("example: haulwatch replay d --x 1") == [["replay", "d", "--x", "1"]]


@pytest.mark.parametrize("command,argv", EXAMPLES, ids=IDS)
def test_example_parses_with_the_real_parser(command, argv):
    args = build_parser().parse_args(argv)  # SystemExit(2) on an unknown option or bad value
    assert args.command == argv[0]


@pytest.mark.parametrize("command,argv", EXAMPLES, ids=IDS)
def test_example_references_the_demo(command, argv, demo_out):
    args = build_parser().parse_args(argv)
    nests = {f["properties"]["site_id"] for f in _demo_sites() if f["properties"]["kind"] == "nest"}
    assert nests == {"N1", "N2"}
    for name, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v.startswith("data/"):
                assert (REPO / v).exists(), f"--{name} {v}: no such file in the checkout"
            if isinstance(v, str) and v.startswith("out/demo/"):
                assert (demo_out / v.removeprefix("out/demo/")).exists(), (
                    f"--{name} {v}: 'haulwatch audit data/demo --out out/demo' writes no such file"
                )
    if getattr(args, "dock_site_id", None) or getattr(args, "dock", None):
        assert (getattr(args, "dock", None) or args.dock_site_id) in nests
    if getattr(args, "alert", None):
        alerts = json.loads((demo_out / "alerts.geojson").read_text(encoding="utf-8"))
        ids = {f["properties"]["alert_id"] for f in alerts["features"]}
        assert args.alert in ids, f"alert {args.alert} is not in an audit of data/demo"
    lon0, lat0, lon1, lat1 = _demo_bbox()
    points = []
    if getattr(args, "lat", None) is not None:
        points.append((args.lon, args.lat))
    if getattr(args, "home", None):
        lat, lon = (float(x) for x in args.home.split(",")[:2])
        points.append((lon, lat))
    for lon, lat in points:
        assert lon0 <= lon <= lon1 and lat0 <= lat <= lat1, f"({lat}, {lon}) is not near the demo"
    if command == "generate":
        out = (REPO / args.out).resolve()  # an absolute --out stays as it is
        data = (REPO / "data").resolve()
        assert data != out and data not in out.parents, (
            f"generate --out {args.out} would overwrite the bundled data"
        )


def _runnable(command: str, argv: list[str]) -> bool:
    if argv[0] == "audit":
        return "--engine" not in argv and "--scheduler" not in argv and argv[1] == "data/demo"
    return argv[0] in ("plan", "evaluate") and "/tmp/fleet-out" not in argv


RUNNABLE = [(c, a) for c, a in EXAMPLES if _runnable(c, a)]


@pytest.mark.parametrize("command,argv", RUNNABLE, ids=[" ".join(a) for _, a in RUNNABLE])
def test_example_runs_as_written(command, argv, demo_out, tmp_path, monkeypatch, capsys):
    work = tmp_path / "cwd"
    (work / "out").mkdir(parents=True)
    (work / "data").symlink_to(REPO / "data", target_is_directory=True)
    (work / "out" / "demo").symlink_to(demo_out, target_is_directory=True)
    monkeypatch.chdir(work)
    argv = [str(tmp_path / a.removeprefix("/tmp/")) if a.startswith("/tmp/") else a for a in argv]
    if argv[0] == "audit" and argv[argv.index("--out") + 1] == "out/demo":
        argv[argv.index("--out") + 1] = "out/demo-again"  # the fixture already wrote out/demo
    if argv[0] == "plan" and "--at" not in argv:
        argv += ["--at", DAYTIME]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    if argv[0] == "plan":
        assert "FEASIBLE" in captured.out
        for name in ("mission.plan", "mission.waypoints"):
            if name in argv:
                assert (work / name).is_file()
    assert not list((REPO / "data").glob("**/*.plan")), "an example wrote into the checkout"
