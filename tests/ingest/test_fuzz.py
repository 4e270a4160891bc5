"""Property test: corrupted cells never crash the audit and never vanish.

Hypothesis writes a small, valid contract dataset, corrupts random cells of
``tracks.csv``, ``manifests.csv`` and ``vehicles.csv`` (empty, blanks, text in
numbers, NaN/inf, huge numbers, negative epochs, impossible dates, 24:00:00,
years 9999 and 1 beyond pandas' nanoseconds, plates over the limit,
stray quotes, quoted commas, ragged rows, emoji and full-width characters...)
and writes the files in a random dialect (UTF-8, UTF-8 with BOM or GB18030;
LF or CRLF; columns in another order and case; extra and repeated unknown
columns). Every corruption has a known fate: the row is dropped with a
reject naming that row and field, or kept with the value cleared, or kept.
The properties:

* ``audit_folder`` does not raise;
* every data row is accounted for once: kept + dropped + duplicates == written;
* every reject names the file, a 1-based data row, a field and a reason, and
  points at the row that was corrupted.

Examples are derandomized (the same cases on every run) and bounded, so the
file runs in well under a minute.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from haulwatch.ingest.dataset import read_dataset
from haulwatch.routes.audit import audit_folder

TRACK_COLUMNS = ["vehicle_id", "time", "lon", "lat", "speed_kmh", "heading_deg", "load", "lift"]
MANIFEST_COLUMNS = ["manifest_id", "vehicle_id", "origin_site_id", "disposal_site_id",
                    "valid_from", "valid_to", "route_id", "volume_m3", "waste_type"]
VEHICLE_COLUMNS = ["vehicle_id", "company", "registered"]
PLATES = ["浙A00001", "浙B00002", "沪C00003"]
POINTS_PER_TRUCK = 8
T0 = pd.Timestamp("2024-05-01 08:00:00")  # local (Asia/Shanghai)

FULL_WIDTH = str.maketrans("0123456789.-:+", "０１２３４５６７８９．－：＋")

KEEP, DROP, CLEAR, EITHER = "keep", "drop", "clear", "either"


@dataclass(frozen=True)
class Cell:
    """One corruption: what to write instead of a cell, and its expected fate."""

    name: str
    fate: str                       # keep / drop / clear / either (kept or dropped)
    fields: frozenset[str] = frozenset()  # acceptable reject fields (drop / clear)

    def write(self, value: str) -> str:
        return _WRITERS[self.name](value)


_WRITERS = {
    "empty": lambda v: "",
    "blanks": lambda v: "   ",
    "text": lambda v: "abc",
    "nan": lambda v: "NaN",
    "inf": lambda v: "inf",
    "minus_inf": lambda v: "-Infinity",
    "huge": lambda v: "9" * 40,
    "huge_exp": lambda v: "1e400",
    "negative_epoch": lambda v: "-86400",
    "feb_30": lambda v: "2024-02-30 08:00:00",
    "month_13": lambda v: "2024-13-01T08:00:00",
    "hour_24": lambda v: "2024-05-01T24:00:00",
    "stray_quote_mid": lambda v: v[:2] + '"' + v[2:],
    "stray_quote_open": lambda v: '"' + v,
    "quoted_comma": lambda v: f'"{v[:3]},{v[3:]}"',
    "padded": lambda v: f"  {v}\t",
    "quoted": lambda v: f'"{v}"',
    "full_width": lambda v: v.translate(FULL_WIDTH),
    "emoji_plate": lambda v: "🚚" + v,
    "lower_spaced_plate": lambda v: " " + v[0] + v[1].lower() + " · " + v[2:] + " ",
    "full_width_plate": lambda v: v[0] + "".join(chr(ord(c) + 0xFEE0) for c in v[1:]),
    "separators_only": lambda v: " ·-· ",
    "time_offset": lambda v: (pd.Timestamp(v).tz_localize("Asia/Shanghai")
                              .tz_convert("Asia/Tokyo").isoformat()),
    "time_z": lambda v: (pd.Timestamp(v).tz_localize("Asia/Shanghai").tz_convert("UTC")
                         .strftime("%Y-%m-%dT%H:%M:%SZ")),
    "time_epoch": lambda v: str(int(pd.Timestamp(v).tz_localize("Asia/Shanghai").timestamp())),
    "time_epoch_ms": lambda v: str(int(pd.Timestamp(v).tz_localize("Asia/Shanghai")
                                       .timestamp() * 1000)),
    "time_slash": lambda v: v.replace("-", "/"),
    "negative": lambda v: "-5",
    "over_range": lambda v: "999",
    "bad_word": lambda v: "overfull",
    "unknown_site": lambda v: "NOPE",
    "unknown_route": lambda v: "R404",
    "maybe": lambda v: "maybe",
    # beyond the int64 nanoseconds of pandas: outside the time range of every entry point
    "year_9999": lambda v: "9999-12-31T23:59:59",
    "year_9999_offset": lambda v: "9999-12-31T23:59:59+08:00",
    "year_9999_fraction": lambda v: "9999-12-31 23:59:59.5",
    "year_1": lambda v: "0001-01-01",
    "year_2262": lambda v: "2262-04-12T00:00:00",
    "epoch_year_9999": lambda v: "253402300799",
    "date_9999": lambda v: "9999-12-31",
    # the plate and id limits of every entry point (20 and 64 characters, no control character)
    "long_plate": lambda v: v + "0" * 20,
    "control_plate": lambda v: v[:2] + "\x07" + v[2:],
    "long_id": lambda v: v + "9" * 64,
}
_FAR_TIMES = ["year_9999", "year_9999_offset", "year_9999_fraction", "year_1", "year_2262",
              "epoch_year_9999"]


def _c(name: str, fate: str, *fields: str) -> Cell:
    return Cell(name, fate, frozenset(fields))


# Per column: the corruptions it may get. A dropped row's reject names the
# column, or "row" when the line no longer splits into the header's fields
# (a line with an unbalanced quote).
_NUMBER_DROPS = ["empty", "blanks", "text", "nan", "inf", "minus_inf", "huge", "huge_exp"]
# A line with an odd number of quotes is refused as a whole (field "row") once
# one of them swallows a line end; alone, a quote inside a cell is just a bad cell.
_QUOTE_DROPS = ["stray_quote_mid", "stray_quote_open"]
TRACK_CELLS: dict[str, list[Cell]] = {
    "vehicle_id": [_c("empty", DROP, "vehicle_id"), _c("blanks", DROP, "vehicle_id"),
                   _c("separators_only", DROP, "vehicle_id"), _c("emoji_plate", KEEP),
                   _c("lower_spaced_plate", KEEP), _c("full_width_plate", KEEP),
                   _c("quoted", KEEP), _c("long_plate", DROP, "vehicle_id"),
                   _c("control_plate", DROP, "vehicle_id")],
    "time": [*(_c(n, DROP, "time") for n in _FAR_TIMES), *(_c(n, DROP, "time") for n in ("empty", "blanks", "text", "nan", "inf", "huge",
                                              "huge_exp", "negative_epoch", "feb_30",
                                              "month_13")),
             _c("hour_24", EITHER, "time"), _c("time_offset", KEEP), _c("time_z", KEEP),
             _c("time_epoch", KEEP), _c("time_epoch_ms", KEEP), _c("time_slash", KEEP),
             _c("full_width", KEEP), _c("padded", KEEP), _c("quoted", KEEP)],
    "lon": [*(_c(n, DROP, "lon") for n in _NUMBER_DROPS),
            *(_c(n, DROP, "lon", "row") for n in _QUOTE_DROPS),
            _c("quoted_comma", DROP, "lon"),
            _c("padded", KEEP), _c("quoted", KEEP), _c("full_width", KEEP)],
    "lat": [*(_c(n, DROP, "lat") for n in _NUMBER_DROPS),
            *(_c(n, DROP, "lat", "row") for n in _QUOTE_DROPS),
            _c("quoted_comma", DROP, "lat"),
            _c("padded", KEEP), _c("full_width", KEEP)],
    "speed_kmh": [_c("text", CLEAR, "speed_kmh"), _c("negative", CLEAR, "speed_kmh"),
                  _c("inf", CLEAR, "speed_kmh"), _c("huge", CLEAR, "speed_kmh"),
                  _c("empty", KEEP), _c("quoted_comma", CLEAR, "speed_kmh")],
    "heading_deg": [_c("over_range", CLEAR, "heading_deg"), _c("nan", CLEAR, "heading_deg"),
                    _c("blanks", KEEP)],
    "load": [_c("bad_word", CLEAR, "load"), _c("empty", KEEP), _c("padded", KEEP)],
    "lift": [_c("maybe", CLEAR, "lift"), _c("huge", CLEAR, "lift"), _c("empty", KEEP)],
}
MANIFEST_CELLS: dict[str, list[Cell]] = {
    "manifest_id": [_c("empty", DROP, "manifest_id"), _c("padded", KEEP),
                    _c("long_id", DROP, "manifest_id")],
    "vehicle_id": [_c("empty", DROP, "vehicle_id"), _c("separators_only", DROP, "vehicle_id"),
                   _c("lower_spaced_plate", KEEP), _c("full_width_plate", KEEP),
                   _c("emoji_plate", KEEP), _c("long_plate", DROP, "vehicle_id")],
    "origin_site_id": [_c("unknown_site", DROP, "origin_site_id"),
                       _c("empty", DROP, "origin_site_id")],
    "disposal_site_id": [_c("unknown_site", DROP, "disposal_site_id")],
    "valid_from": [*(_c(n, DROP, "valid_from") for n in ("empty", "text", "feb_30",
                                                         "negative_epoch", "huge",
                                                         *_FAR_TIMES)),
                   _c("time_offset", KEEP), _c("time_epoch", KEEP), _c("full_width", KEEP)],
    "valid_to": [*(_c(n, DROP, "valid_to") for n in ("blanks", "month_13", "inf", "date_9999",
                                                     *_FAR_TIMES)),
                 _c("time_z", KEEP), _c("stray_quote_open", DROP, "valid_to", "row")],
    "route_id": [_c("unknown_route", CLEAR, "route_id"), _c("empty", KEEP)],
    "volume_m3": [_c("text", CLEAR, "volume_m3"), _c("negative", CLEAR, "volume_m3"),
                  _c("inf", CLEAR, "volume_m3"), _c("quoted_comma", CLEAR, "volume_m3")],
    "waste_type": [_c("quoted_comma", KEEP), _c("emoji_plate", KEEP)],
}
VEHICLE_CELLS: dict[str, list[Cell]] = {
    "vehicle_id": [_c("empty", DROP, "vehicle_id"), _c("separators_only", DROP, "vehicle_id"),
                   _c("full_width_plate", KEEP), _c("emoji_plate", KEEP),
                   _c("long_plate", DROP, "vehicle_id"), _c("control_plate", DROP, "vehicle_id")],
    "company": [_c("quoted_comma", KEEP), _c("emoji_plate", KEEP), _c("empty", KEEP)],
    "registered": [_c("maybe", CLEAR, "registered"), _c("padded", KEEP)],
}


# --------------------------------------------------------------------------- the clean dataset


def square(x0: float, y0: float, d: float = 0.01) -> dict:
    return {"type": "Polygon",
            "coordinates": [[[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]]]}


def clean_tracks() -> list[list[str]]:
    """Three trucks creeping along (no teleport, no shared times within a truck)."""
    rows = []
    for k, plate in enumerate(PLATES):
        for i in range(POINTS_PER_TRUCK):
            t = T0 + pd.Timedelta(minutes=10 * k + i)
            rows.append([plate, t.strftime("%Y-%m-%d %H:%M:%S"), f"{121.0051 + 0.0004 * i:.6f}",
                         f"{31.0051 + 0.001 * k:.6f}", f"{20 + i}.5", f"{90 + i}", "full",
                         str(i % 2)])
    return rows


def clean_manifests() -> list[list[str]]:
    return [[f"M{i}", PLATES[i % 3], "O1", "D1", "2024-05-01 07:00:00", "2024-05-01 18:00:00",
             "R1", f"{10 + i}.0", "渣土"] for i in range(5)]


def clean_vehicles() -> list[list[str]]:
    return [[p, f"Co{i}", "true"] for i, p in enumerate(PLATES)]


def write_geo(folder: Path) -> None:
    sites = [{"type": "Feature", "properties": {"site_id": "O1", "kind": "origin"},
              "geometry": square(121.0, 31.0)},
             {"type": "Feature", "properties": {"site_id": "D1", "kind": "disposal"},
              "geometry": square(121.1, 31.0)}]
    routes = [{"type": "Feature",
               "properties": {"route_id": "R1", "origin_site_id": "O1", "disposal_site_id": "D1"},
               "geometry": {"type": "LineString",
                            "coordinates": [[121.005, 31.005], [121.105, 31.005]]}}]
    (folder / "sites.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                      "features": sites}), encoding="utf-8")
    (folder / "routes.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                       "features": routes}), encoding="utf-8")


# --------------------------------------------------------------------------- corrupting


@dataclass
class Dialect:
    encoding: str          # utf-8, utf-8-sig, gb18030
    newline: str           # \n or \r\n
    order: list[int]       # permutation of the columns
    upper: bool            # header in upper case
    extra: bool            # two unknown columns named "note" at the end


@dataclass
class Plan:
    """Corruptions of one file: row (0-based) → (column, Cell) or the row made ragged."""

    cells: dict[int, tuple[str, Cell]] = field(default_factory=dict)
    ragged: dict[int, int] = field(default_factory=dict)  # row → fields to keep (or +1)
    duplicates: list[int] = field(default_factory=list)   # rows copied to the end


def render(columns: list[str], rows: list[list[str]], plan: Plan, dialect: Dialect) -> bytes:
    rows = [list(r) for r in rows]
    for r, (col, cell) in plan.cells.items():
        j = columns.index(col)
        rows[r][j] = cell.write(rows[r][j])
    rows += [list(rows[r]) for r in plan.duplicates]
    names = [c.upper() if dialect.upper else c for c in columns]
    lines = []
    header = [names[j] for j in dialect.order] + (["note", "note"] if dialect.extra else [])
    lines.append(",".join(header))
    for r, row in enumerate(rows):
        cells = [row[j] for j in dialect.order] + (["x", '"a, b"'] if dialect.extra else [])
        if r in plan.ragged:
            keep = plan.ragged[r]
            cells = cells[:keep] if keep < len(cells) else [*cells, "surplus"]
        lines.append(",".join(cells))
    text = dialect.newline.join(lines) + dialect.newline
    return text.encode(dialect.encoding)


@st.composite
def dialects(draw, n_columns: int) -> Dialect:
    return Dialect(
        encoding=draw(st.sampled_from(["utf-8", "utf-8-sig", "gb18030"])),
        newline=draw(st.sampled_from(["\n", "\r\n"])),
        order=draw(st.permutations(range(n_columns))),
        upper=draw(st.booleans()),
        extra=draw(st.booleans()),
    )


@st.composite
def plans(draw, n_rows: int, cells: dict[str, list[Cell]], *, max_bad: int,
          dup: bool = False) -> Plan:
    n_columns = len(cells)
    rows = draw(st.lists(st.integers(0, n_rows - 1), max_size=max_bad, unique=True))
    plan = Plan()
    for r in rows:
        if draw(st.integers(0, 9)) == 0:
            plan.ragged[r] = draw(st.sampled_from([1, n_columns - 1, n_columns + 99]))
        else:
            col = draw(st.sampled_from(sorted(cells)))
            plan.cells[r] = (col, draw(st.sampled_from(cells[col])))
    if dup:
        clean_rows = [r for r in range(n_rows) if r not in rows]
        plan.duplicates = draw(st.lists(st.sampled_from(clean_rows), max_size=2, unique=True))
    return plan


# --------------------------------------------------------------------------- checking


def check_file(raw, file: str, n_written: int, plan: Plan, *, kept_rows: set[int]) -> None:
    """Every corrupted row has its fate; every reject is complete and points at a bad row."""
    rej = raw.rejects[raw.rejects["file"] == file]
    assert raw.stats["rows_read"][file] == n_written
    dropped = rej[rej["action"] == "row_dropped"]
    cleared = rej[rej["action"] == "value_cleared"]
    assert dropped["row"].is_unique, dropped
    assert ((rej["row"] >= 1) & (rej["row"] <= n_written)).all(), rej
    assert (rej["field"].str.len() > 0).all() and (rej["reason"].str.len() > 0).all(), rej
    assert raw.stats["rows_kept"][file] + len(dropped) + (
        raw.stats["duplicates_dropped"] if file == "tracks.csv" else 0) == n_written
    expected = {r + 1: ("ragged", Cell("ragged", DROP, frozenset({"row"})))
                for r in plan.ragged}
    expected.update({r + 1: v for r, v in plan.cells.items() if r not in plan.ragged})
    drop_rows = dict(zip(dropped["row"], dropped["field"], strict=True))
    clear_rows = set(zip(cleared["row"], cleared["field"], strict=True))
    # no reject for a row that was written clean
    assert set(rej["row"]) <= set(expected), (rej, expected)
    for row, (_col, cell) in expected.items():
        what = f"{file} row {row}: {cell.name}"
        if cell.fate == DROP:
            assert drop_rows.get(row) in cell.fields, (what, rej)
        elif cell.fate == KEEP:
            assert row not in drop_rows and row in kept_rows, (what, rej)
            assert not any(r == row for r, _ in clear_rows), (what, rej)
        elif cell.fate == CLEAR:
            assert row not in drop_rows and row in kept_rows, (what, rej)
            assert any(r == row and f in cell.fields for r, f in clear_rows), (what, rej)
        else:  # EITHER: kept, or dropped naming an acceptable field
            assert row in kept_rows or drop_rows.get(row) in cell.fields, (what, rej)


def write_dataset(folder: Path, track_plan: Plan, track_dialect: Dialect,
                  manifest_plan: Plan, manifest_dialect: Dialect,
                  vehicle_plan: Plan, vehicle_dialect: Dialect,
                  track_rows: list[list[str]] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_geo(folder)
    (folder / "tracks.csv").write_bytes(
        render(TRACK_COLUMNS, track_rows or clean_tracks(), track_plan, track_dialect))
    (folder / "manifests.csv").write_bytes(
        render(MANIFEST_COLUMNS, clean_manifests(), manifest_plan, manifest_dialect))
    (folder / "vehicles.csv").write_bytes(
        render(VEHICLE_COLUMNS, clean_vehicles(), vehicle_plan, vehicle_dialect))


N_TRACKS = len(PLATES) * POINTS_PER_TRUCK
FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(
    track_plan=plans(N_TRACKS, TRACK_CELLS, max_bad=8, dup=True),
    track_dialect=dialects(len(TRACK_COLUMNS)),
    manifest_plan=plans(5, MANIFEST_CELLS, max_bad=3),
    manifest_dialect=dialects(len(MANIFEST_COLUMNS)),
    vehicle_plan=plans(3, VEHICLE_CELLS, max_bad=2),
    vehicle_dialect=dialects(len(VEHICLE_COLUMNS)),
)
def test_corrupted_cells_are_accounted_for(tmp_path_factory, track_plan, track_dialect,
                                           manifest_plan, manifest_dialect, vehicle_plan,
                                           vehicle_dialect):
    folder = tmp_path_factory.mktemp("fuzz")
    write_dataset(folder, track_plan, track_dialect, manifest_plan, manifest_dialect,
                  vehicle_plan, vehicle_dialect)
    n_tracks = N_TRACKS + len(track_plan.duplicates)

    raw = read_dataset(folder)
    check_file(raw, "tracks.csv", n_tracks, track_plan,
               kept_rows=set(raw.tracks["src_row"].tolist()))
    check_file(raw, "manifests.csv", 5, manifest_plan,
               kept_rows=set(raw.manifests["src_row"].tolist()))
    kept_vehicle_rows = {i + 1 for i in range(3)
                         if i not in vehicle_plan.ragged
                         and not (i in vehicle_plan.cells
                                  and vehicle_plan.cells[i][1].fate == DROP)}
    check_file(raw, "vehicles.csv", 3, vehicle_plan, kept_rows=kept_vehicle_rows)
    # copies of clean rows are duplicates, not rejects
    assert raw.stats["duplicates_dropped"] >= len(track_plan.duplicates)

    result = audit_folder(folder)  # must not raise
    s = result.summary
    tracks_rej = result.rejects[result.rejects["file"] == "tracks.csv"]
    dropped = int((tracks_rej["action"] == "row_dropped").sum())
    assert s["points_read"] == n_tracks
    assert s["points_kept"] + dropped + s["duplicates_dropped"] == n_tracks
    assert s["rows_rejected"] == len(result.rejects)
    assert sum(s["rejects_by_reason"].values()) == len(result.rejects)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_every_corruption_at_once(tmp_path, encoding):
    """One file with each track corruption on its own row: the fates, side by side."""
    cells = [(col, cell) for col, options in TRACK_CELLS.items() for cell in options]
    base = clean_tracks()
    rows = [list(base[i % len(base)]) for i in range(len(cells))]
    for i, row in enumerate(rows):  # one truck, one minute apart: no duplicates
        row[0] = "浙Z99999"
        row[1] = (T0 + pd.Timedelta(minutes=i)).strftime("%Y-%m-%d %H:%M:%S")
        row[2] = f"{121.0051 + 0.0001 * i:.6f}"
    plan = Plan(cells=dict(enumerate(cells)))
    def dialect(columns: list[str]) -> Dialect:
        return Dialect(encoding, "\r\n", list(range(len(columns))), False, True)

    folder = tmp_path / "ds"
    write_dataset(folder, plan, dialect(TRACK_COLUMNS), Plan(), dialect(MANIFEST_COLUMNS),
                  Plan(), dialect(VEHICLE_COLUMNS), track_rows=rows)
    raw = read_dataset(folder)
    check_file(raw, "tracks.csv", len(rows), plan,
               kept_rows=set(raw.tracks["src_row"].tolist()))
    assert raw.stats["duplicates_dropped"] == 0
    s = audit_folder(folder).summary
    assert s["points_read"] == len(rows)
