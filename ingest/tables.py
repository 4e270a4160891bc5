"""Tables of the input files: CSV and Parquet into typed columns, with every retry.

One reading path for every table of a dataset folder (tracks, manifests,
vehicles) and every engine: :func:`open_table` streams the wanted columns of a
whole file, of some row groups of one Parquet file, or of a newline-aligned
byte range of a CSV (a :class:`TablePart`, what a Dask read task gets), and
:func:`read_attempts` repeats the read when the file turns out to need it:

- a byte that is not UTF-8 → read again as GB18030 (exports of Chinese fleet
  platforms; the encoding is sniffed from the first 64 KiB, the rest may differ);
- a row with the wrong number of fields met by a threaded read → read again in
  order, so that the refused row has its number in the file;
- an unbalanced quote that swallows line ends → read again with every line
  holding an odd number of quotes refused on its own (field ``row``).

CSV cells are read as text (header names matched case-insensitively, UTF-8
BOM ignored, comma / tab / ``;`` / ``|`` separated); Parquet columns keep
their types (``haulwatch.ingest.cells`` turns columns into numpy arrays).
"""

from __future__ import annotations

import csv
import io
import itertools
import mmap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from haulwatch.errors import HaulwatchError

from .rejects import SchemaError, make_rejects

__all__ = [
    "OpenedTable",
    "SkippedRows",
    "TablePart",
    "check_table",
    "file_rows",
    "open_table",
    "parquet_parts",
    "plan_parts",
    "read_attempts",
    "read_table_columns",
]

_T = TypeVar("_T")

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_BATCH_ROWS = 1 << 18
_BLOCK_BYTES = 1 << 24
#: Rough CSV bytes per row, only to size the byte ranges of :func:`plan_parts`.
CSV_BYTES_PER_ROW = 70
_MIN_PART_BYTES = 1 << 20

def file_rows(seq_rows: np.ndarray, skipped_rows: np.ndarray) -> np.ndarray:
    """Map 1-based rows among the rows parsed to rows of the file (skipped rows between).

    Parameters
    ----------
    seq_rows : numpy.ndarray
        1-based numbers of parsed rows, counting only the rows the parser kept.
    skipped_rows : numpy.ndarray
        1-based data rows the parser skipped (:attr:`SkippedRows.rows`).

    Returns
    -------
    numpy.ndarray
        The data row of each parsed row in the file.
    """
    if skipped_rows.size == 0:
        return seq_rows
    gaps = np.sort(skipped_rows) - np.arange(skipped_rows.size)
    return seq_rows + np.searchsorted(gaps, seq_rows, side="right")


# --------------------------------------------------------------------------- header


def _sniff_header(path: Path) -> tuple[list[str], str, str]:
    """Return (column names, delimiter, encoding) of a CSV file."""
    with path.open("rb") as fh:
        raw = fh.read(65536)
    if not raw.strip():
        raise SchemaError(f"{path.name}: the file is empty; expected a header line with columns")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SchemaError(
            f"{path.name}: the file is UTF-16 (e.g. Excel 'Unicode text'); "
            "expected UTF-8 or GB18030: save it as 'CSV UTF-8'"
        )
    encoding = "utf-8"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3 and len(raw) == 65536:
            # A multi-byte character cut at the 64 KiB boundary: still UTF-8.
            text = raw[: exc.start].decode("utf-8-sig")
        else:
            try:
                text = raw.decode("gb18030")
            except UnicodeDecodeError as exc2:
                raise SchemaError(
                    f"{path.name}: cannot decode the file as UTF-8 or GB18030"
                ) from exc2
            encoding = "gb18030"
    first = text.splitlines()[0] if text.splitlines() else ""
    delimiter = ","
    if "," not in first:
        for cand in ("\t", ";", "|"):
            if cand in first:
                delimiter = cand
                break
    header = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    return header, delimiter, encoding


def _match_columns(names: list[str], file: str, required: tuple[str, ...],
                   optional: tuple[str, ...]) -> dict[str, str]:
    """Map canonical column names to the file's names (case and spaces ignored)."""
    lookup: dict[str, str] = {}
    known = (*required, *optional)
    for pos, name in enumerate(names):
        key = str(name).strip().lstrip("\ufeff").lower()
        if key in lookup and key in known:
            first = names.index(lookup[key]) + 1
            raise SchemaError(
                f"{file}: column {key} appears twice in the header (columns {first} and "
                f"{pos + 1}: {lookup[key]!r}, {name!r}); keep one"
            )
        lookup.setdefault(key, name)
    missing = [c for c in required if c not in lookup]
    if missing:
        raise SchemaError(
            f"{file}: missing required column(s) {', '.join(missing)}; "
            f"required: {', '.join(required)}; optional: {', '.join(optional)}; "
            f"found: {', '.join(map(str, names)) or '(none)'}"
        )
    return {c: lookup[c] for c in (*required, *optional) if c in lookup}


# --------------------------------------------------------------------------- retries


class _RetryEncodingError(HaulwatchError):
    """Internal: the CSV is not UTF-8 after all; read it again as GB18030."""


class _RetryThreadsError(HaulwatchError):
    """Internal: ragged rows met in a threaded read; read again in order for row numbers."""


class _RetryQuotesError(HaulwatchError):
    """Internal: an unbalanced quote swallowed line ends; read again with quotes as text."""


def read_attempts(read: Callable[[str | None, bool, bool], _T], file: str, *,
                  threads: bool = True, encoding: str | None = None,
                  quoting: bool = True) -> _T:
    """Call ``read(encoding, use_threads, quoting)`` until no internal retry is asked.

    The first try uses ``encoding`` (None: the sniffed one), threads (when
    allowed) and CSV quoting as given; a non-UTF-8 byte switches to GB18030, a
    ragged row to an ordered read, an unbalanced quote to reading quotes as
    text (one row per line).

    Parameters
    ----------
    read : callable
        ``read(encoding, use_threads, quoting)``: one attempt, typically over
        :func:`open_table`, consuming its batches (the retries are raised
        while they are read).
    file : str
        File name for the error message.
    threads : bool, default True
        Allow a threaded first attempt.
    encoding : str, optional
        Encoding of the first attempt (e.g. to read every part of a table the
        way one part needed).
    quoting : bool, default True
        Trust quotes on the first attempt.

    Returns
    -------
    object
        What ``read`` returns.

    Raises
    ------
    SchemaError
        When the file cannot be decoded as UTF-8 or GB18030.
    """
    for _ in range(8):
        try:
            return read(encoding, threads, quoting)
        except _RetryEncodingError:
            if encoding == "gb18030":
                break
            encoding = "gb18030"
        except _RetryThreadsError:
            threads = False
        except _RetryQuotesError:
            quoting = False
            threads = False
    raise SchemaError(f"{file}: cannot decode the file as UTF-8 or GB18030")


def _has_quote(path: Path) -> bool:
    """Whether the file holds a double quote anywhere (one memchr-speed scan)."""
    with path.open("rb") as fh:
        if path.stat().st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return mm.find(b'"') >= 0


def _has_line_break(col: pa.ChunkedArray) -> bool:
    """Whether any cell of a text column holds a line break (a quote ran over lines)."""
    if pa.types.is_dictionary(col.type):
        col = pa.chunked_array([c.dictionary for c in col.chunks], type=col.type.value_type)
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        return False
    return any(bool(pc.any(pc.match_substring(col, br)).as_py()) for br in ("\n", "\r"))


def _blank_unbalanced_lines(data: bytes, placeholder: bytes, *,
                            header: bool) -> tuple[bytes, dict[int, bytes]]:
    """The bytes with every data line holding an odd number of quotes replaced.

    A quote that is never closed would swallow the lines after it. Those lines
    are replaced by ``placeholder`` (a line with the wrong number of fields, so
    the parser reports it with its number) and returned with their original
    bytes, keyed by 1-based data row (the header line, when ``header``, is
    never touched). Vectorized: one pass of numpy over the bytes; only the bad
    lines are copied.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    sep = ord("\n") if b"\n" in data else ord("\r")
    ends = np.flatnonzero(buf == sep)
    quotes = np.flatnonzero(buf == ord('"'))
    per_line = np.bincount(np.searchsorted(ends, quotes), minlength=len(ends) + 1)
    odd = np.flatnonzero(per_line % 2 == 1)
    if header:
        odd = odd[odd > 0]
    starts = np.concatenate([[0], ends + 1])
    stops = np.concatenate([ends, [len(data)]])
    pieces: list[bytes] = []
    originals: dict[int, bytes] = {}
    pos = 0
    for line in odd.tolist():
        a, b = int(starts[line]), int(stops[line])
        text = data[a:b]
        originals[line if header else line + 1] = text
        cr = b"\r" if text.endswith(b"\r") and sep == ord("\n") else b""
        pieces += [data[pos:a], placeholder + cr]
        pos = b
    pieces.append(data[pos:])
    return b"".join(pieces), originals


# --------------------------------------------------------------------------- parts


@dataclass(frozen=True)
class TablePart:
    """A piece of a table that can be read on its own (one read task of the Dask engine).

    Attributes
    ----------
    path : str
        The file to read: the CSV, or one Parquet file (of a folder of parts).
    row_groups : tuple of int
        Parquet: the row groups of ``path`` to read.
    start, end : int
        CSV: the byte range ``[start, end)``, both at line starts; ``start == 0``
        means the range begins with the header line, ``end == -1`` the end of
        the file. Other ranges are parsed with the header's columns.
    """

    path: str
    row_groups: tuple[int, ...] = ()
    start: int = 0
    end: int = -1


@dataclass
class SkippedRows:
    """CSV rows the parser could not split into the header's columns.

    Filled while the batches are read: ``rows`` are 1-based data rows, ``texts``
    the raw lines, ``reasons`` why they were refused.
    """

    rows: list[int]
    texts: list[str]
    reasons: list[str]

    def rejects(self, file: str) -> pd.DataFrame:
        """These rows as ``row_dropped`` rejects (field ``row``)."""
        return make_rejects(file, self.rows, "row", self.texts, np.array(self.reasons, object))


@dataclass
class OpenedTable:
    """What :func:`open_table` returns.

    Attributes
    ----------
    names : list of str
        The canonical column names present.
    batches : iterator of dict
        Batches mapping those names to arrays (the retries are raised while
        they are consumed).
    skipped : SkippedRows
        Ragged CSV rows skipped so far (complete once the batches are consumed).
    encoding : str
        CSV encoding used (``""`` for Parquet).
    quoting : bool
        Whether CSV quotes were trusted.
    """

    names: list[str]
    batches: Iterator[dict[str, pa.Array]]
    skipped: SkippedRows = field(default_factory=lambda: SkippedRows([], [], []))
    encoding: str = ""
    quoting: bool = True


def parquet_parts(path: Path) -> list[Path]:
    """The Parquet files of a table: the file, or a folder's ``*.parquet`` (sorted).

    Raises
    ------
    SchemaError
        When the folder holds no Parquet file.
    """
    if not path.is_dir():
        return [path]
    files = sorted(path.rglob("*.parquet"))
    if not files:
        raise SchemaError(f"{path.name}: folder holds no *.parquet file")
    return files


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def plan_parts(path: Path, rows_per_part: int) -> tuple[list[TablePart], int]:
    """Cut a table into parts of about ``rows_per_part`` rows, in file order.

    Parquet: consecutive row groups of each file (a folder's files in
    :func:`parquet_parts` order). CSV: newline-aligned byte ranges of about
    ``rows_per_part * CSV_BYTES_PER_ROW`` bytes (at least 1 MiB), the first
    beginning with the header line.

    Parameters
    ----------
    path : pathlib.Path
        The table (a CSV file, a Parquet file or a folder of them).
    rows_per_part : int
        Target rows per part.

    Returns
    -------
    (list of TablePart, int)
        The parts and an estimate of the rows of the table (exact for Parquet).
    """
    if _is_parquet(path):
        parts: list[TablePart] = []
        total = 0
        for f in parquet_parts(path):
            meta = pq.ParquetFile(f).metadata
            total += meta.num_rows
            groups: list[int] = []
            rows = 0
            for g in range(meta.num_row_groups):
                groups.append(g)
                rows += meta.row_group(g).num_rows
                if rows >= rows_per_part:
                    parts.append(TablePart(str(f), tuple(groups)))
                    groups, rows = [], 0
            if groups or meta.num_row_groups == 0:
                parts.append(TablePart(str(f), tuple(groups)))
        return parts, total
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(65536)
        if b"\n" not in head:  # one line, or lines ended by CR only: one part
            return [TablePart(str(path))], size // CSV_BYTES_PER_ROW
        fh.seek(0)
        first = len(fh.readline())
        step = max(rows_per_part * CSV_BYTES_PER_ROW, _MIN_PART_BYTES)
        bounds = [0]
        pos = first + step
        while pos < size:
            fh.seek(pos)
            fh.readline()  # move to the start of the next line
            nxt = fh.tell()
            if nxt >= size:
                break
            if nxt > bounds[-1]:
                bounds.append(nxt)
            pos = nxt + step
    bounds.append(size)
    ranges = [(a, b) for a, b in itertools.pairwise(bounds) if b > a]
    last = len(ranges) - 1
    return ([TablePart(str(path), start=a, end=-1 if i == last else b)
             for i, (a, b) in enumerate(ranges)] or [TablePart(str(path))],
            size // CSV_BYTES_PER_ROW)


# --------------------------------------------------------------------------- opening


def _open_parquet(path: Path, files: list[Path], required: tuple[str, ...],
                  optional: tuple[str, ...]) -> tuple[dict[str, str], list[pq.ParquetFile]]:
    """Open Parquet files and map the wanted columns (the first file's names)."""
    file = path.name
    pfiles = []
    for part in files:
        try:
            pfiles.append(pq.ParquetFile(part))
        except (pa.ArrowInvalid, OSError) as exc:
            raise SchemaError(f"{part.name}: not a readable Parquet file ({exc})") from exc
    mapping = _match_columns(list(pfiles[0].schema_arrow.names), file, required, optional)
    for part, pfile in zip(files[1:], pfiles[1:], strict=True):
        missing = [a for a in mapping.values() if a not in pfile.schema_arrow.names]
        if missing:
            raise SchemaError(
                f"{file}: part {part.name} lacks column(s) {', '.join(missing)} "
                f"that {files[0].name} has"
            )
    for canon, actual in mapping.items():
        typ = pfiles[0].schema_arrow.field(actual).type
        if pa.types.is_nested(typ):
            raise SchemaError(
                f"{file}: column {actual!r} has the nested type {typ}; {canon} must be "
                "a column of plain values (numbers, text or timestamps)"
            )
    return mapping, pfiles


def check_table(path: Path, required: tuple[str, ...], optional: tuple[str, ...]) -> list[str]:
    """Check a table's header(s) without reading its rows.

    Parameters
    ----------
    path : pathlib.Path
        A CSV file, a Parquet file or a folder of Parquet files.
    required, optional : tuple of str
        Canonical column names.

    Returns
    -------
    list of str
        The canonical names present.

    Raises
    ------
    SchemaError
        If the file is unreadable or lacks a required column (every Parquet
        part is checked).
    """
    if _is_parquet(path):
        mapping, _ = _open_parquet(path, parquet_parts(path), required, optional)
    else:
        header, _, _ = _sniff_header(path)
        mapping = _match_columns(header, path.name, required, optional)
    return list(mapping)


def open_table(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...],
    *, dictionary: tuple[str, ...] = (), encoding: str | None = None,
    use_threads: bool = True, quoting: bool = True, part: TablePart | None = None,
) -> OpenedTable:
    """Open a CSV or Parquet table (or a part of it) and stream the wanted columns.

    CSV cells are read as text (``dictionary`` columns dictionary-encoded),
    with empty cells as null; Parquet columns keep their types.

    Parameters
    ----------
    path : pathlib.Path
        A ``.csv`` (UTF-8 or GB18030; comma, tab, ``;`` or ``|`` separated),
        a ``.parquet`` file or a folder of them; its name is the file named
        in errors and rejects.
    required, optional : tuple of str
        Canonical column names; header names match case-insensitively.
    dictionary : tuple of str
        Columns to dictionary-encode (vehicle ids).
    encoding : str, optional
        Force a CSV encoding (default: sniffed from the first 64 KiB).
    use_threads : bool, default True
        Parse CSV blocks in parallel. Row numbers of ragged rows are only
        known single-threaded: a threaded read that meets one stops with
        ``_RetryThreadsError`` so that the caller reads again without threads.
    quoting : bool, default True
        Trust the CSV quotes. A value may not span lines: when an unbalanced
        quote makes one run over a line end, the read stops with
        ``_RetryQuotesError`` and the caller reads again with
        ``quoting=False``: then every line with an odd number of quotes is
        refused on its own (field ``row``), so no line is swallowed by
        another, and the other lines keep their quoting.
    part : TablePart, optional
        Read only this part (from :func:`plan_parts`); row numbers then count
        from the part's first data row.

    Returns
    -------
    OpenedTable

    Raises
    ------
    SchemaError
        If the file cannot be parsed or lacks a required column.
    """
    file = path.name
    if _is_parquet(path):
        files = [Path(part.path)] if part is not None else parquet_parts(path)
        mapping, pfiles = _open_parquet(path, files, required, optional)
        groups = list(part.row_groups) if part is not None else None

        def parquet_batches() -> Iterator[dict[str, pa.Array]]:
            got = False
            for pfile in pfiles:
                if groups is not None and not groups:
                    break
                for batch in pfile.iter_batches(batch_size=_BATCH_ROWS, row_groups=groups,
                                                columns=list(mapping.values())):
                    got = True
                    yield {canon: batch.column(actual) for canon, actual in mapping.items()}
            if not got:
                empty = pfiles[0].schema_arrow.empty_table()
                yield {canon: empty.column(actual) for canon, actual in mapping.items()}

        return OpenedTable(list(mapping), parquet_batches())
    header, delimiter, sniffed = _sniff_header(path)
    encoding = encoding or sniffed
    mapping = _match_columns(header, file, required, optional)
    wanted = set(mapping.values())
    types = {
        name: (pa.dictionary(pa.int32(), pa.string())
               if any(mapping.get(d) == name for d in dictionary) else pa.string())
        for name in header if name in wanted
    }
    # The header line is parsed by Arrow when the bytes begin with it; a range after
    # it is parsed with the sniffed names.
    with_header = part is None or part.start == 0
    data: bytes | None = None
    if part is not None and (part.start > 0 or part.end >= 0):
        with path.open("rb") as fh:
            fh.seek(part.start)
            data = fh.read(-1 if part.end < 0 else part.end - part.start)
    read_opts = pacsv.ReadOptions(encoding=encoding, block_size=_BLOCK_BYTES,
                                  use_threads=use_threads,
                                  column_names=None if with_header else header)
    skipped = SkippedRows([], [], [])

    spans_lines = [False]
    # Without any quote in the bytes no value can run over a line end: skip the checks.
    check_breaks = quoting and (_has_quote(path) if data is None else b'"' in data)
    source: Path | pa.BufferReader = path if data is None else pa.BufferReader(data)
    unbalanced: dict[int, bytes] = {}
    placeholder = delimiter * (len(header) + 1)
    if not quoting:
        data, unbalanced = _blank_unbalanced_lines(
            path.read_bytes() if data is None else data, placeholder.encode("ascii"),
            header=with_header)
        source = pa.BufferReader(data)

    def on_invalid(row: Any) -> str:
        number = row.number
        text = row.text
        if quoting and ("\n" in text or "\r" in text):
            spans_lines[0] = True
        # 1-based data row (the header, when parsed, is line 1)
        line = -1 if number is None else int(number) - (1 if with_header else 0)
        reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
        if line in unbalanced and text.rstrip("\r") == placeholder:
            text = unbalanced[line].decode(encoding, errors="replace").rstrip("\r")
            reason = "unbalanced quote: a quote opened in this line is never closed"
        skipped.rows.append(line)
        skipped.texts.append(text)
        skipped.reasons.append(reason)
        return "skip"

    parse_opts = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False,
                                    invalid_row_handler=on_invalid)
    conv_opts = pacsv.ConvertOptions(
        column_types=types, include_columns=list(mapping.values()),
        null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=True,
    )

    def cells(batch: pa.RecordBatch) -> dict[str, pa.Array]:
        out = {canon: batch.column(actual) for canon, actual in mapping.items()}
        if quoting and (spans_lines[0] or (check_breaks and any(
                _has_line_break(pa.chunked_array([c])) for c in out.values()))):
            raise _RetryQuotesError(f"{file}: a quoted value runs over a line end")
        return out

    def csv_batches() -> Iterator[dict[str, pa.Array]]:
        try:
            reader = pacsv.open_csv(source, read_options=read_opts, parse_options=parse_opts,
                                    convert_options=conv_opts)
            got = False
            for batch in reader:
                if spans_lines[0]:
                    raise _RetryQuotesError(f"{file}: a quoted value runs over a line end")
                if use_threads and skipped.rows:
                    raise _RetryThreadsError(f"{file}: ragged rows; reading again in order")
                got = True
                yield cells(batch)
            if spans_lines[0]:
                raise _RetryQuotesError(f"{file}: a quoted value runs over a line end")
            if use_threads and skipped.rows:
                raise _RetryThreadsError(f"{file}: ragged rows; reading again in order")
            if not got:
                yield {canon: pa.array([], type=types[actual])
                       for canon, actual in mapping.items()}
        except pa.ArrowInvalid as exc:
            if encoding.replace("-", "").lower() == "utf8" and "UTF8" in str(exc).upper():
                raise _RetryEncodingError(str(exc)) from exc
            if quoting and "out of sync" in str(exc):  # a quote ran over a block's end
                raise _RetryQuotesError(str(exc)) from exc
            where = "" if part is None or part.start == 0 else f" near byte {part.start}"
            raise SchemaError(f"{file}: cannot parse the CSV{where} ({exc})") from exc

    return OpenedTable(list(mapping), csv_batches(), skipped, encoding, quoting)


def read_table_columns(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...],
    *, dictionary: tuple[str, ...] = (),
) -> tuple[dict[str, pa.ChunkedArray], int, SkippedRows]:
    """Read the wanted columns of a CSV or Parquet file whole (small files).

    Parameters
    ----------
    path : pathlib.Path
        The file (see :func:`open_table`).
    required, optional : tuple of str
        Canonical column names; header names match case-insensitively.
    dictionary : tuple of str
        Columns to dictionary-encode.

    Returns
    -------
    (dict of str to pyarrow.ChunkedArray, int, SkippedRows)
        The columns found under their canonical names, the number of rows in
        them, and the ragged rows skipped (1-based data rows).

    Raises
    ------
    SchemaError
        If the file cannot be parsed or lacks a required column.
    """
    def read(encoding: str | None, _threads: bool, quoting: bool) -> tuple[
            dict[str, pa.ChunkedArray], int, SkippedRows]:
        # small files: in order, so ragged rows have numbers
        table = open_table(path, required, optional, dictionary=dictionary,
                           encoding=encoding, use_threads=False, quoting=quoting)
        parts = list(table.batches)
        names = table.names
        cols = {name: pa.chunked_array([p[name] for p in parts]) for name in names}
        return cols, len(cols[names[0]]), table.skipped

    return read_attempts(read, path.name, threads=False)
