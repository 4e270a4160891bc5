"""The audit on dask.distributed: partitioned by vehicle, out of core.

:func:`audit_dask` gives the same :class:`~haulwatch.routes.audit.AuditResult`
as :func:`~haulwatch.routes.audit.audit_folder` (same alerts, same ids, same
rejects and counts), but the tracks never pass through one process:

1. **registry** (client): settings, sites, routes, manifests, vehicles are
   small and read once, exactly as ``ingest.dataset.read_dataset`` reads them;
2. **read** (workers): the tracks file is cut into chunks (Parquet row groups,
   of one file or of a folder of ``*.parquet`` files; or newline-aligned byte
   ranges of a CSV) and each chunk is validated with
   ``ingest.tracks.tracks_from_table`` and split into ``n_partitions`` buckets
   by a stable hash (CRC-32) of the normalized plate;
3. **shuffle + prepare** (workers): each bucket gathers its pieces from every
   chunk, numbers rows globally (``src_row``, reject rows), drops duplicates
   (first in file order wins), converts to WGS-84, projects to the metric CRS
   and drops teleports — what ``geo.prepare.prepare`` does, per vehicle;
4. **detect** (workers): ``routes.audit.audit_partition`` per bucket;
5. **combine** (client): ``routes.audit.combine`` (hotspots span vehicles,
   sorting, ids).

Partitions are whole vehicles, never days: a trip crossing midnight, a gap
spanning the night and the depot parking that ends a day all belong to one
vehicle's continuous track, and every per-vehicle detector needs that context.
A vehicle's day-partitioned track would need overlap windows whose size no
threshold bounds (a loaded truck may sit dark for hours), so splitting by day
is not sound in general; with thousands of trucks per fleet, vehicles alone
give ample parallelism. Intermediate pieces live in worker memory, which
dask.distributed spills to disk above its memory target, so the tracks may be
larger than any one machine's memory.

The metric CRS is chosen as ``geo.crs.pick_metric_crs`` chooses it, without
gathering the points: the UTM zone of the median longitude comes from exact
per-zone counts (so it is the same zone the single-process audit picks); only
for data spanning more than about two zones (a transverse Mercator on the
median longitude) is the median estimated from a sample.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import math
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from haulwatch.errors import UserError
from haulwatch.ingest.dataset import tracks_path as tracks_path_of
from haulwatch.ingest.tables import parquet_parts

__all__ = ["DistributedError", "audit_dask", "bucket_of_keys"]

#: Target rows per read chunk.
DEFAULT_CHUNK_ROWS = 250_000
#: Target rows per partition (bucket) when ``n_partitions`` is not given.
DEFAULT_PARTITION_ROWS = 2_000_000
_CSV_BYTES_PER_ROW = 70  # rough, only to size chunks and partitions
_SAMPLE_EVERY = 64


class DistributedError(UserError, ValueError):
    """A parameter of the distributed audit is not usable."""


# --------------------------------------------------------------------------- helpers


def bucket_of_keys(keys: pd.Series | pd.Categorical, n_partitions: int) -> np.ndarray:
    """Return the partition (0 .. n-1) of each normalized plate.

    The same plate always lands in the same partition, in every process and
    run (CRC-32 of its UTF-8 bytes, not Python's salted ``hash``).

    Parameters
    ----------
    keys : pandas.Series or pandas.Categorical
        Normalized plates (``vehicle_key``).
    n_partitions : int
        Number of partitions (>= 1).

    Returns
    -------
    numpy.ndarray
        int64 partition numbers, -1 for missing keys.
    """
    if (
        not isinstance(n_partitions, int | np.integer)
        or isinstance(n_partitions, bool)
        or (n_partitions < 1)
    ):
        raise DistributedError(
            f"n_partitions: value {n_partitions!r} is not allowed; allowed: an integer >= 1"
        )
    cat = pd.Categorical(keys)
    table = np.array(
        [zlib.crc32(str(k).encode("utf-8")) % n_partitions for k in cat.categories],
        dtype="int64",
    )
    codes = np.asarray(cat.codes, dtype="int64")
    out = np.full(len(codes), -1, dtype="int64")
    ok = codes >= 0
    out[ok] = table[codes[ok]]
    return out


def _zone_counts(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Counts per UTM zone of the valid coordinates, count of lat < 0, count valid."""
    ok = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0)
    lon = lon[ok]
    zone = np.floor((lon + 180.0) / 6.0).astype("int64") % 60
    return np.bincount(zone, minlength=60), int((lat[ok] < 0).sum()), int(ok.sum())


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """One unit of reading: a Parquet file's row groups, or a CSV byte range."""

    index: int
    path: str
    kind: str  # "parquet" | "csv"
    row_groups: tuple[int, ...] = ()
    start: int = 0
    end: int = 0
    row_offset: int | None = None  # known up front for Parquet


@dataclasses.dataclass
class _ChunkOut:
    """What a read task hands back (the buckets stay on the worker until gathered)."""

    buckets: dict[int, pd.DataFrame]
    rejects: pd.DataFrame
    rows_read: int
    duplicates: int
    zone_counts: np.ndarray
    south: int
    valid: int
    sample_lon: np.ndarray
    has_load: bool
    has_lift: bool


# --------------------------------------------------------------------------- chunking


def _check_columns(path: Path) -> None:
    """Fail early, as the reader does, when the tracks lack a required column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from haulwatch.ingest.rejects import SchemaError
    from haulwatch.ingest.tables import _match_columns, _sniff_header
    from haulwatch.ingest.tracks import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

    if path.suffix == ".parquet":
        for f in parquet_parts(path):
            try:
                names = list(pq.read_schema(f).names)
            except (pa.ArrowInvalid, OSError) as exc:
                raise SchemaError(f"{f.name}: not a readable Parquet file ({exc})") from exc
            _match_columns(names, path.name, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    else:
        header, _, _ = _sniff_header(path)
        _match_columns(header, path.name, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)


def _plan_parquet(path: Path, chunk_rows: int) -> list[_Chunk]:
    import pyarrow.parquet as pq

    files = parquet_parts(path)
    chunks: list[_Chunk] = []
    offset = 0
    for f in files:
        meta = pq.ParquetFile(f).metadata
        groups: list[int] = []
        rows = 0
        start = offset
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= chunk_rows:
                chunks.append(
                    _Chunk(len(chunks), str(f), "parquet", tuple(groups), row_offset=start)
                )
                start += rows
                groups, rows = [], 0
        if groups or meta.num_row_groups == 0:
            chunks.append(_Chunk(len(chunks), str(f), "parquet", tuple(groups), row_offset=start))
            start += rows
        offset = start
    return chunks


def _plan_csv(path: Path, chunk_rows: int) -> tuple[list[_Chunk], int]:
    """Newline-aligned byte ranges of the data rows; also the header's byte length."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        header = fh.readline()
        first = len(header)
        step = max(chunk_rows * _CSV_BYTES_PER_ROW, 1 << 20)
        bounds = [first]
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
    chunks = [
        _Chunk(i, str(path), "csv", start=a, end=b)
        for i, (a, b) in enumerate(itertools.pairwise(bounds))
        if b > a
    ]
    return chunks, first


# --------------------------------------------------------------------------- tasks


def _read_columns(chunk: _Chunk) -> tuple[dict[str, Any], int, str]:
    """Read one chunk's wanted columns as pyarrow arrays (the reader's types and rules)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from haulwatch.ingest.rejects import SchemaError
    from haulwatch.ingest.tables import _match_columns, _sniff_header
    from haulwatch.ingest.tracks import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

    path = Path(chunk.path)
    file = "tracks.parquet" if chunk.kind == "parquet" else path.name
    if chunk.kind == "parquet":
        pf = pq.ParquetFile(path)
        mapping = _match_columns(
            list(pf.schema_arrow.names), file, REQUIRED_COLUMNS, OPTIONAL_COLUMNS
        )
        table = pf.read_row_groups(list(chunk.row_groups), columns=list(mapping.values()))
        return {c: table.column(a) for c, a in mapping.items()}, table.num_rows, file
    header, delimiter, encoding = _sniff_header(path)
    mapping = _match_columns(header, file, REQUIRED_COLUMNS, OPTIONAL_COLUMNS)
    wanted = set(mapping.values())
    types = {
        name: (
            pa.dictionary(pa.int32(), pa.string())
            if mapping.get("vehicle_id") == name
            else pa.string()
        )
        for name in header
        if name in wanted
    }
    with path.open("rb") as fh:
        fh.seek(chunk.start)
        data = fh.read(chunk.end - chunk.start)
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(
                column_names=header, encoding=encoding, block_size=1 << 24
            ),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=list(mapping.values()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as exc:
        raise SchemaError(f"{file}: cannot parse the CSV near byte {chunk.start} ({exc})") from exc
    return {c: table.column(a) for c, a in mapping.items()}, table.num_rows, file


def _read_chunk(chunk: _Chunk, timezone: str, coord_system: str, n_partitions: int) -> _ChunkOut:
    """Read, validate and bucket one chunk (runs on a worker)."""
    from haulwatch.geo.chinacoords import to_wgs84
    from haulwatch.ingest.tracks import tracks_from_table

    cols, n, file = _read_columns(chunk)
    res = tracks_from_table(cols, n, file=file, timezone=timezone)
    tracks = res.tracks
    lon, lat = to_wgs84(
        tracks["lon"].to_numpy("float64"), tracks["lat"].to_numpy("float64"), coord_system
    )
    zone_counts, south, valid = _zone_counts(np.asarray(lon), np.asarray(lat))
    bucket = bucket_of_keys(tracks["vehicle_key"], n_partitions)
    order = np.argsort(bucket, kind="stable")
    sorted_b = bucket[order]
    cuts = np.flatnonzero(np.diff(sorted_b)) + 1
    buckets: dict[int, pd.DataFrame] = {}
    for part in np.split(order, cuts):
        if len(part):
            piece = tracks.iloc[part].reset_index(drop=True)
            piece["chunk"] = np.int32(chunk.index)
            buckets[int(bucket[part[0]])] = piece
    return _ChunkOut(
        buckets=buckets,
        rejects=res.rejects,
        rows_read=res.rows_read,
        duplicates=res.duplicates_dropped,
        zone_counts=zone_counts,
        south=south,
        valid=valid,
        sample_lon=np.asarray(lon)[::_SAMPLE_EVERY].copy(),
        has_load=res.has_load,
        has_lift=res.has_lift,
    )


def _piece(out: _ChunkOut, bucket: int) -> pd.DataFrame | None:
    return out.buckets.get(bucket)


def _summary_of(out: _ChunkOut) -> _ChunkOut:
    """The chunk result without its buckets (what the client needs)."""
    return dataclasses.replace(out, buckets={})


def _prepare_bucket(
    pieces: list[pd.DataFrame | None],
    offsets: np.ndarray,
    coord_system: str,
    timezone: str,
    file: str,
    crs_wkt: str,
    max_speed_kmh: float,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Gather one bucket: global rows, dedupe, then ``geo.prepare.prepare`` it (worker).

    Returns the points, the teleport rejects (with ``_key``, ``_time`` to order
    them as the single-process audit does) and the duplicates dropped here.
    """
    import geopandas as gpd
    import pyproj

    from haulwatch.geo.prepare import prepare
    from haulwatch.ingest.dataset import RawDataset
    from haulwatch.ingest.manifests import empty_manifests
    from haulwatch.ingest.rejects import empty_rejects

    parts = [p for p in pieces if p is not None and len(p)]
    if not parts:
        return _empty_points(), _empty_teleports(), 0
    key_codes, key_cats = _merged_codes([p["vehicle_key"] for p in parts])
    id_codes, id_cats = _merged_codes([p["vehicle_id"] for p in parts])
    frame = pd.concat(
        [p.drop(columns=["vehicle_id", "vehicle_key"]) for p in parts], ignore_index=True
    )
    src_row = offsets[frame["chunk"].to_numpy()] + frame["src_row"].to_numpy("int64")
    t_ns = frame["time"].astype("datetime64[ns, UTC]").array.asi8
    # the reader's order: plate (sorted), time, then file order; first of equal (plate, time) wins
    order = np.lexsort((src_row, t_ns, key_codes))
    k_s = key_codes[order]
    t_s = t_ns[order]
    dup = np.zeros(len(order), dtype=bool)
    if len(order) > 1:
        dup[1:] = (k_s[1:] == k_s[:-1]) & (t_s[1:] == t_s[:-1])
    keep = order[~dup]
    n_dup = int(dup.sum())
    src = frame.iloc[keep].reset_index(drop=True)
    tracks = pd.DataFrame(
        {
            "vehicle_id": pd.Categorical.from_codes(id_codes[keep], categories=id_cats),
            "vehicle_key": pd.Categorical.from_codes(key_codes[keep], categories=key_cats),
            "time": src["time"].astype("datetime64[ns, UTC]"),
            "lon": src["lon"].to_numpy("float64"),
            "lat": src["lat"].to_numpy("float64"),
            "speed_kmh": src["speed_kmh"].astype("float64"),
            "heading_deg": src["heading_deg"].astype("float64"),
            "load": src["load"],
            "lift": src["lift"].astype("float64"),
            "src_row": src_row[keep].astype("int64"),
        }
    )
    del frame, src
    empty_geo = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    raw = RawDataset(
        folder=Path("."),
        coord_system=coord_system,
        timezone=timezone,
        tracks=tracks,
        sites=empty_geo,
        routes=empty_geo,
        manifests=empty_manifests(),
        vehicles=None,
        rejects=empty_rejects(),
        stats={"tracks_file": file},
    )
    # exactly what the single-process audit does to the points (audit_folder's call)
    prepared = prepare(raw, max_speed_kmh=max_speed_kmh, crs=pyproj.CRS.from_wkt(crs_wkt))
    tele = prepared.rejects.reset_index(drop=True)
    if len(tele):
        where = pd.Series(np.arange(len(tracks)), index=tracks["src_row"].to_numpy())
        pos = where.loc[tele["row"].to_numpy()].to_numpy()
        tele["_key"] = tracks["vehicle_key"].iloc[pos].astype("str").to_numpy()
        tele["_time"] = tracks["time"].array.asi8[pos]  # int ns: no Timestamp objects
    return prepared.points, tele, n_dup


def _merged_codes(columns: list[pd.Series]) -> tuple[np.ndarray, pd.Index]:
    """Codes of the concatenated columns over their sorted, merged categories.

    Works on the (small) categories of each piece, never on per-row strings.
    """
    cats = [pd.Categorical(c) for c in columns]
    merged = pd.Index(
        sorted(set().union(*(set(map(str, c.categories)) for c in cats))), dtype="str"
    )
    out = []
    for c in cats:
        where = merged.get_indexer(pd.Index(c.categories.astype("str")))
        codes = np.asarray(c.codes, dtype="int64")
        out.append(np.where(codes >= 0, where[np.maximum(codes, 0)], -1))
    return np.concatenate(out), merged


def _empty_points() -> pd.DataFrame:
    from haulwatch.ingest.tracks import empty_tracks

    base = empty_tracks()
    out = pd.DataFrame(
        {
            "vehicle_id": base["vehicle_id"],
            "vehicle_key": base["vehicle_key"],
            "time": base["time"],
            "lon": pd.Series([], dtype="float64"),
            "lat": pd.Series([], dtype="float64"),
            "x": pd.Series([], dtype="float64"),
            "y": pd.Series([], dtype="float64"),
            "speed_kmh": pd.Series([], dtype="float64"),
            "heading_deg": pd.Series([], dtype="float64"),
            "load": base["load"],
            "lift": pd.Series([], dtype="float64"),
            "src_row": pd.Series([], dtype="int64"),
        }
    )
    return out


def _empty_teleports() -> pd.DataFrame:
    from haulwatch.ingest.rejects import empty_rejects

    return empty_rejects()


def _audit_bucket(points: pd.DataFrame, context: Any, config: Any) -> Any:
    from haulwatch.routes.audit import audit_partition

    return audit_partition(points, context, config)


# --------------------------------------------------------------------------- the client


def _pick_crs(outs: list[_ChunkOut], registry_lon: np.ndarray, registry_lat: np.ndarray) -> Any:
    """The CRS ``geo.crs.pick_metric_crs`` picks for all points + registry centroids."""
    import pyproj

    from haulwatch.geo.crs import pick_metric_crs

    counts = np.zeros(60, dtype="int64")
    south = 0
    valid = 0
    for o in outs:
        counts += o.zone_counts
        south += o.south
        valid += o.valid
    rc, rs, rv = _zone_counts(registry_lon, registry_lat)
    counts += rc
    south += rs
    valid += rv
    if valid == 0:
        return pick_metric_crs(registry_lon, registry_lat)  # raises the usual ValueError
    sample = np.concatenate([o.sample_lon for o in outs] + [registry_lon])
    sample = sample[np.isfinite(sample) & (np.abs(sample) <= 180)]
    if sample.size >= 100:
        lo, hi = np.percentile(sample, [0.5, 99.5])
    else:
        lo, hi = (sample.min(), sample.max()) if sample.size else (0.0, 0.0)
    crs = pick_metric_crs(sample, np.zeros_like(sample) + (-1.0 if south * 2 > valid else 1.0))
    if hi - lo > 12.0:
        return crs  # transverse Mercator on the (sampled) median longitude
    # exact zone of the median: the zone where the cumulative count crosses half
    cum = np.cumsum(counts)
    lower = int(np.searchsorted(cum, (valid + 1) // 2))  # zone of the lower middle value
    upper = int(np.searchsorted(cum, valid // 2 + 1))  # zone of the upper middle value
    zone = lower + 1
    if upper != lower:  # the median falls between zones: let the sample decide
        zone = int(np.floor((float(np.median(sample)) + 180.0) / 6.0)) % 60 + 1
    south_median = south * 2 > valid  # lat median < 0 when most points are south
    return pyproj.CRS.from_epsg((32700 if south_median else 32600) + zone)


def _registry(folder: Path, progress: Callable[..., None]) -> dict[str, Any]:
    """Read everything but the tracks, as ``read_dataset`` does."""
    from haulwatch.ingest.manifests import read_manifests
    from haulwatch.ingest.registry import read_routes, read_settings, read_sites, read_vehicles

    _check_folder(folder)
    settings = read_settings(folder)
    sites = read_sites(folder / "sites.geojson", timezone=settings.timezone)
    routes = read_routes(folder / "routes.geojson", site_ids=sites.frame["site_id"])
    manifests = read_manifests(
        folder / "manifests.csv",
        site_ids=sites.frame["site_id"],
        route_ids=routes.frame["route_id"],
        timezone=settings.timezone,
    )
    vehicles = None
    if (folder / "vehicles.csv").is_file():
        vehicles = read_vehicles(folder / "vehicles.csv")
    progress(
        "registry",
        f"{len(sites.frame)} sites, {len(routes.frame)} routes, "
        f"{len(manifests.manifests)} manifests",
    )
    return {
        "settings": settings,
        "sites": sites,
        "routes": routes,
        "manifests": manifests,
        "vehicles": vehicles,
    }


def _close(starting: Any) -> None:
    """Close the client and local cluster a background start made (or is making)."""
    try:
        client, cluster = starting.result()
    except Exception:  # the start failed: nothing to close; its error is raised elsewhere
        return
    client.close()
    if cluster is not None:
        cluster.close()


def _check_folder(folder: Path) -> None:
    from haulwatch.ingest.rejects import SchemaError

    if not folder.is_dir():
        raise SchemaError(f"dataset folder not found: {folder}")
    for name in ("sites.geojson", "routes.geojson", "manifests.csv"):
        if not (folder / name).is_file():
            raise SchemaError(f"{name}: required file missing from {folder}")


def _client(scheduler: str | None, n_workers: int, processes: bool) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), None
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=":0",
        silence_logs=40,
    )
    return Client(cluster), cluster


def audit_dask(
    folder: str | Path,
    config: Any = None,
    *,
    scheduler: str | None = None,
    n_workers: int = 2,
    progress: Callable[..., None] | None = None,
    n_partitions: int | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    processes: bool = True,
    client: Any = None,
) -> Any:
    """Audit a dataset folder on dask.distributed, partitioned by vehicle.

    Parameters
    ----------
    folder : str or Path
        Dataset folder (docs/formats.md). ``tracks.parquet`` may also be a
        folder of Parquet files.
    config : AuditConfig, optional
        Thresholds (default ``AuditConfig()``).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); its workers must
        see ``folder`` at the same path. None starts a ``LocalCluster``.
    n_workers : int
        Workers of the local cluster (>= 1; ignored with ``scheduler`` or ``client``).
    progress : callable, optional
        Called as ``progress(stage, detail)`` at each stage.
    n_partitions : int, optional
        Vehicle partitions (>= 1); default: enough for about
        :data:`DEFAULT_PARTITION_ROWS` rows each, and at least ``2 * workers``.
    chunk_rows : int
        Target rows per read chunk (>= 1000).
    processes : bool
        Local cluster with worker processes (True) or threads in this process.
    client : distributed.Client, optional
        Use this client (and its cluster) instead of making one; it is not closed.

    Returns
    -------
    AuditResult
        As :func:`haulwatch.routes.audit.audit_folder` returns it.

    Raises
    ------
    DistributedError
        On a bad ``n_workers``, ``n_partitions`` or ``chunk_rows``.
    SchemaError
        When the dataset cannot be read (as the local audit raises it).
    """
    from haulwatch.routes.config import AuditConfig

    for name, value, low in (("n_workers", n_workers, 1), ("chunk_rows", chunk_rows, 1000)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
            raise DistributedError(
                f"{name}: value {value!r} is not allowed; allowed: an integer >= {low}"
            )
    if n_partitions is not None and (
        not isinstance(n_partitions, int | np.integer)
        or isinstance(n_partitions, bool)
        or n_partitions < 1
    ):
        raise DistributedError(
            f"n_partitions: value {n_partitions!r} is not allowed; allowed: an integer >= 1"
        )
    config = config if config is not None else AuditConfig()
    say = progress if progress is not None else (lambda *a, **k: None)
    t_start = time.perf_counter()
    folder = Path(folder)
    _check_folder(folder)  # fail fast, before any cluster starts
    tracks_path = tracks_path_of(folder)
    _check_columns(tracks_path)

    own_client = client is None
    starting = None
    pool = None
    if own_client:
        # the cluster starts (worker processes spawn, import) while the registry is read
        say("cluster", scheduler or f"local, {n_workers} workers")
        pool = ThreadPoolExecutor(max_workers=1)
        starting = pool.submit(_client, scheduler, n_workers, processes)
    try:
        reg = _registry(folder, say)
        settings = reg["settings"]
        timezone = settings.timezone  # naive track times are local to the dataset
        if tracks_path.suffix == ".parquet":
            import pyarrow.parquet as pq

            chunks = _plan_parquet(tracks_path, chunk_rows)
            est_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in parquet_parts(tracks_path))
        else:
            chunks, _ = _plan_csv(tracks_path, chunk_rows)
            est_rows = tracks_path.stat().st_size // _CSV_BYTES_PER_ROW
        if starting is not None:
            client = starting.result()[0]
        workers = max(1, len(client.scheduler_info().get("workers", {})) or n_workers)
        if n_partitions:
            parts = int(n_partitions)
        else:  # about DEFAULT_PARTITION_ROWS each, a multiple of the workers (even rounds)
            wanted = max(2 * workers, math.ceil(est_rows / DEFAULT_PARTITION_ROWS))
            parts = workers * math.ceil(wanted / workers)
        say("read", f"{tracks_path.name}: {len(chunks)} chunks → {parts} vehicle partitions")
        t_read = time.perf_counter()
        chunk_futs = [
            client.submit(_read_chunk, c, timezone, settings.coord_system, parts, pure=False)
            for c in chunks
        ]
        outs = client.gather([client.submit(_summary_of, f) for f in chunk_futs])
        rows_per_chunk = np.array([o.rows_read for o in outs], dtype="int64")
        offsets = np.concatenate(([0], np.cumsum(rows_per_chunk)))[:-1].astype("int64")
        rows_read = int(rows_per_chunk.sum())
        say("read", f"{rows_read:,} rows")
        t_prepare = time.perf_counter()

        # registry in WGS-84 for the CRS choice (same inputs as geo.prepare.prepare)
        import shapely

        from haulwatch.geo.prepare import convert_geometries

        reg_lon, reg_lat = [], []
        for res in (reg["sites"], reg["routes"]):
            gdf = convert_geometries(res.frame, settings.coord_system)
            if len(gdf):
                cent = shapely.centroid(np.asarray(gdf.geometry.values, dtype=object))
                reg_lon.append(shapely.get_x(cent))
                reg_lat.append(shapely.get_y(cent))
        reg_lon_a = np.concatenate(reg_lon) if reg_lon else np.empty(0)
        reg_lat_a = np.concatenate(reg_lat) if reg_lat else np.empty(0)
        crs = _pick_crs(outs, reg_lon_a, reg_lat_a)
        say("prepare", f"metric CRS {crs.name}")

        prep_futs = []
        for b in range(parts):
            pieces = [client.submit(_piece, f, b, pure=False) for f in chunk_futs]
            prep_futs.append(
                client.submit(
                    _prepare_bucket,
                    pieces,
                    offsets,
                    settings.coord_system,
                    settings.timezone,
                    tracks_path.name,
                    crs.to_wkt(),
                    float(config.max_speed_kmh),
                    pure=False,
                )
            )
        del chunk_futs
        points_futs = [client.submit(lambda r: r[0], f, pure=False) for f in prep_futs]
        small = client.gather(
            [client.submit(lambda r: (r[1], r[2]), f, pure=False) for f in prep_futs]
        )
        del prep_futs

        dataset = _dataset(
            reg,
            outs,
            offsets,
            small,
            crs,
            settings,
            tracks_path,
            rows_read,
        )
        say("detect", f"{parts} partitions")
        t_detect = time.perf_counter()
        from haulwatch.routes.audit import combine, make_context

        context = make_context(dataset, config)
        ctx_fut = client.scatter(context, broadcast=True)
        partial_futs = [
            client.submit(_audit_bucket, p, ctx_fut, config, pure=False) for p in points_futs
        ]
        partials = client.gather(partial_futs)
        del points_futs, partial_futs
        say("combine", f"{len(partials)} partials")
        t_combine = time.perf_counter()
        partials = _canonical_partials(partials)
        result = combine(partials, context, config, rejects=dataset.rejects, stats=dataset.stats)
        now = time.perf_counter()
        result.summary["timings_s"].update(
            {
                "read": round(t_prepare - t_read, 3),
                "prepare": round(t_detect - t_prepare, 3),
                "detect_wall": round(t_combine - t_detect, 3),
                "combine_wall": round(now - t_combine, 3),
                "audit_total": round(now - t_start, 3),
            }
        )
        result.summary["engine"] = f"dask ({parts} partitions, {workers} workers)"
        return result
    finally:
        if starting is not None:
            _close(starting)
            pool.shutdown(wait=True)


def _canonical_partials(partials: list[Any]) -> list[Any]:
    """Put the cross-vehicle inputs (dump places, loading visits) in vehicle order.

    ``combine`` concatenates them partial by partial; a single-process audit has
    one partial in vehicle-key order. Gathering them, stably sorted by
    ``vehicle_key``, into the first partial gives ``combine`` the same input
    whatever the partitioning (each vehicle's own order is kept).
    """
    if len(partials) < 2:
        return partials
    merged = {}
    for name in ("dumps", "loadings"):
        frames = [getattr(p, name) for p in partials]
        nonempty = [f for f in frames if len(f)]
        if not nonempty:
            merged[name] = frames[0]
            continue
        both = pd.concat(nonempty, ignore_index=True)
        key = both["vehicle_key"].astype("str")
        merged[name] = both.iloc[np.argsort(key.to_numpy(), kind="stable")].reset_index(drop=True)
    first = dataclasses.replace(partials[0], **merged)
    rest = [
        dataclasses.replace(p, dumps=p.dumps.iloc[0:0], loadings=p.loadings.iloc[0:0])
        for p in partials[1:]
    ]
    return [first, *rest]


def _dataset(reg, outs, offsets, small, crs, settings, tracks_path, rows_read) -> Any:
    """The prepared Dataset (without points) the context and combine need."""
    from haulwatch.geo.prepare import Dataset, convert_geometries
    from haulwatch.ingest.rejects import ACTION_DROPPED, concat_rejects

    file = tracks_path.name
    track_rejects = []
    for o, off in zip(outs, offsets, strict=True):
        if len(o.rejects):
            r = o.rejects.copy()
            r["row"] = r["row"].astype("int64") + int(off)
            track_rejects.append(r)
    tr = concat_rejects(track_rejects)
    if len(tr):
        tr = tr.sort_values(["row", "action"], kind="stable").reset_index(drop=True)
    parts = [reg["sites"].rejects, reg["routes"].rejects, reg["manifests"].rejects]
    if reg["vehicles"] is not None:
        parts.append(reg["vehicles"].rejects)
    parts.append(tr)
    rejects = concat_rejects(parts)
    duplicates = sum(o.duplicates for o in outs) + sum(int(s[1]) for s in small)
    tele = (
        pd.concat([s[0] for s in small if len(s[0])], ignore_index=True)
        if any(len(s[0]) for s in small)
        else _empty_teleports()
    )
    n_tele = len(tele)
    if n_tele:
        # the single-process order: points order (plate, time)
        tele = tele.sort_values(["_key", "_time"], kind="stable").reset_index(drop=True)
        rejects = concat_rejects([rejects, tele.drop(columns=["_key", "_time"])])

    def dropped(name: str) -> int:
        sel = (rejects["file"] == name) & (rejects["action"] == ACTION_DROPPED)
        return int(sel.sum())

    kept = (
        rows_read
        - int(((rejects["file"] == file) & (rejects["action"] == ACTION_DROPPED)).sum())
        - duplicates
    )
    rows_read_d = {
        "sites.geojson": reg["sites"].rows_read,
        "routes.geojson": reg["routes"].rows_read,
        "manifests.csv": reg["manifests"].rows_read,
        file: rows_read,
    }
    rows_kept = {
        "sites.geojson": len(reg["sites"].frame),
        "routes.geojson": len(reg["routes"].frame),
        "manifests.csv": len(reg["manifests"].manifests),
        file: kept,
    }
    if reg["vehicles"] is not None:
        rows_read_d["vehicles.csv"] = reg["vehicles"].rows_read
        rows_kept["vehicles.csv"] = len(reg["vehicles"].frame)
    stats = {
        "rows_read": rows_read_d,
        "rows_kept": rows_kept,
        "rows_dropped": {f: dropped(f) for f in rows_read_d},
        "duplicates_dropped": duplicates,
        "tracks_file": file,
        "teleports_dropped": n_tele,
    }
    sites = convert_geometries(reg["sites"].frame, settings.coord_system)
    routes = convert_geometries(reg["routes"].frame, settings.coord_system)
    sites_m = sites.to_crs(crs) if len(sites) else sites.set_crs(crs, allow_override=True)
    routes_m = routes.to_crs(crs) if len(routes) else routes.set_crs(crs, allow_override=True)
    return Dataset(
        folder=Path(tracks_path).parent,
        coord_system=settings.coord_system,
        timezone=settings.timezone,
        sites=sites,
        routes=routes,
        manifests=reg["manifests"].manifests,
        vehicles=reg["vehicles"].frame if reg["vehicles"] is not None else None,
        rejects=rejects,
        crs=crs,
        sites_m=sites_m,
        routes_m=routes_m,
        points=_empty_points(),
        stats=stats,
        has_load=any(o.has_load for o in outs),
        has_lift=any(o.has_lift for o in outs),
    )
