"""The audit on dask.distributed: partitioned by vehicle, out of core.

:func:`audit_dask` gives the same :class:`~haulwatch.routes.audit.AuditResult`
as :func:`~haulwatch.routes.audit.audit_folder` (same alerts, same ids, same
rejects and counts), but the tracks never pass through one process. Every
reading step is the ingest room's, so both engines read alike:

1. **registry** (client): ``ingest.dataset.read_registry`` (settings, sites,
   routes, manifests, vehicles and their rejects), once;
2. **read** (workers): the tracks are cut into parts
   (``ingest.tables.plan_parts``: Parquet row groups, of one file or of a
   folder of ``*.parquet`` files; or newline-aligned byte ranges of a CSV)
   and each part is read by ``ingest.tracks.read_tracks(part=...)`` — the
   local reader, with its GB18030 / ragged-row / unbalanced-quote retries — and
   split into ``n_partitions`` buckets by a stable hash (CRC-32) of the
   normalized plate. When a part needed GB18030 or refused unbalanced quotes,
   the parts read otherwise are read again that way: the whole-file reader
   reads the whole file in the mode one bad line asks for;
3. **shuffle + prepare** (workers): each bucket gathers its pieces from every
   part, numbers rows globally (``src_row``, reject rows), drops duplicates
   (first in file order wins) and runs ``ingest.prepare.prepare_points``
   (WGS-84, metric CRS, teleports), as ``ingest.prepare.prepare`` does;
4. **detect** (workers): ``routes.audit.audit_partition`` per bucket;
5. **combine** (client): the dataset's rejects and counts by
   ``ingest.dataset.dataset_stats`` and ``ingest.prepare.add_teleports``, then
   ``routes.audit.combine`` (hotspots span vehicles, sorting, ids).

Partitions are whole vehicles, never days: a trip crossing midnight, a gap
spanning the night and the depot parking that ends a day all belong to one
vehicle's continuous track, and every per-vehicle detector needs that context.
A vehicle's day-partitioned track would need overlap windows whose size no
threshold bounds (a loaded truck may sit dark for hours), so splitting by day
is not sound in general; with thousands of trucks per fleet, vehicles alone
give ample parallelism. Intermediate pieces live in worker memory, which
dask.distributed spills to disk above its memory target, so the tracks may be
larger than any one machine's memory.

The metric CRS is the local one (``geo.points.dataset_crs``) chosen without
gathering the points: ``geo.crs.pick_metric_crs_of_summary`` takes the UTM
zone of the median longitude from exact per-zone counts (so it is the zone the
single-process audit picks); only for data spanning more than about two zones
(a transverse Mercator on the median longitude) is the median estimated from
a sample.
"""

from __future__ import annotations

import dataclasses
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
from haulwatch.geo.crs import summarize_coords
from haulwatch.geo.points import convert_geometries, dataset_crs_of_summary, geometry_centroids
from haulwatch.ingest.dataset import check_folder, read_registry
from haulwatch.ingest.dataset import tracks_path as tracks_path_of
from haulwatch.ingest.tables import TablePart, plan_parts
from haulwatch.ingest.tracks import check_tracks

__all__ = ["DistributedError", "audit_dask", "bucket_of_keys"]

#: Target rows per read chunk.
DEFAULT_CHUNK_ROWS = 250_000
#: Target rows per partition (bucket) when ``n_partitions`` is not given.
DEFAULT_PARTITION_ROWS = 2_000_000
_SAMPLE_EVERY = 64


class DistributedError(UserError, ValueError):
    """A parameter of the distributed audit is not usable."""


# --------------------------------------------------------------------------- helpers


def _check_count(name: str, value: Any, low: int) -> None:
    """Raise :class:`DistributedError` unless ``value`` is an integer >= ``low``."""
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < low:
        raise DistributedError(
            f"{name}: value {value!r} is not allowed; allowed: an integer >= {low}"
        )


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
    _check_count("n_partitions", n_partitions, 1)
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


@dataclasses.dataclass(frozen=True)
class _Chunk:
    """One unit of reading: a part of the tracks table and its place in the file."""

    index: int
    path: str  # the tracks table (its name is the file of the rejects)
    part: TablePart


@dataclasses.dataclass
class _ChunkOut:
    """What a read task hands back (the buckets stay on the worker until gathered)."""

    buckets: dict[int, pd.DataFrame]
    rejects: pd.DataFrame
    rows_read: int
    duplicates: int
    coords: Any  # geo.crs.CoordSummary of the WGS-84 points
    has_load: bool
    has_lift: bool
    encoding: str
    quoting: bool


# --------------------------------------------------------------------------- tasks


def _read_chunk(chunk: _Chunk, timezone: str, coord_system: str, n_partitions: int,
                encoding: str | None = None, quoting: bool = True) -> _ChunkOut:
    """Read, validate and bucket one part with the local reader (runs on a worker)."""
    from haulwatch.geo.chinacoords import to_wgs84
    from haulwatch.ingest.tracks import read_tracks

    res = read_tracks(chunk.path, timezone=timezone, part=chunk.part, encoding=encoding,
                      quoting=quoting)
    tracks = res.tracks
    lon, lat = to_wgs84(
        tracks["lon"].to_numpy("float64"), tracks["lat"].to_numpy("float64"), coord_system
    )
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
        coords=summarize_coords(np.asarray(lon), np.asarray(lat), sample_every=_SAMPLE_EVERY),
        has_load=res.has_load,
        has_lift=res.has_lift,
        encoding=res.encoding,
        quoting=res.quoting,
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
    file: str,
    crs_wkt: str,
    teleport_rule: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Gather one bucket: global rows, dedupe, then ``ingest.prepare.prepare_points`` (worker).

    Returns the points, the teleport rejects (with ``_key``, ``_time`` to order
    them as the single-process audit does) and the duplicates dropped here.
    """
    import pyproj

    from haulwatch.ingest.prepare import empty_points, prepare_points
    from haulwatch.ingest.rejects import empty_rejects

    parts = [p for p in pieces if p is not None and len(p)]
    if not parts:
        return empty_points(), empty_rejects(), 0
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
    # exactly what the single-process audit does to the points
    points, tele, _ = prepare_points(tracks, coord_system, pyproj.CRS.from_wkt(crs_wkt),
                                     file=file, **teleport_rule)
    tele = tele.reset_index(drop=True)
    if len(tele):
        where = pd.Series(np.arange(len(tracks)), index=tracks["src_row"].to_numpy())
        pos = where.loc[tele["row"].to_numpy()].to_numpy()
        tele["_key"] = tracks["vehicle_key"].iloc[pos].astype("str").to_numpy()
        tele["_time"] = tracks["time"].array.asi8[pos]  # int ns: no Timestamp objects
    return points, tele, n_dup


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


def _audit_bucket(points: pd.DataFrame, context: Any, config: Any) -> Any:
    from haulwatch.routes.audit import audit_partition

    return audit_partition(points, context, config)


# --------------------------------------------------------------------------- the client


def _close(starting: Any) -> None:
    """Close the client and local cluster a background start made (or is making)."""
    try:
        client, cluster = starting.result()
    except Exception:  # the start failed: nothing to close; its error is raised elsewhere
        return
    client.close()
    if cluster is not None:
        cluster.close()


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

    _check_count("n_workers", n_workers, 1)
    _check_count("chunk_rows", chunk_rows, 1000)
    if n_partitions is not None:
        _check_count("n_partitions", n_partitions, 1)
    config = config if config is not None else AuditConfig()
    say = progress if progress is not None else (lambda *a, **k: None)
    t_start = time.perf_counter()
    folder = Path(folder)
    check_folder(folder)  # fail fast, before any cluster starts
    tracks_path = tracks_path_of(folder)
    check_tracks(tracks_path)

    own_client = client is None
    starting = None
    pool = None
    if own_client:
        # the cluster starts (worker processes spawn, import) while the registry is read
        say("cluster", scheduler or f"local, {n_workers} workers")
        pool = ThreadPoolExecutor(max_workers=1)
        starting = pool.submit(_client, scheduler, n_workers, processes)
    try:
        reg = read_registry(folder)
        say("registry", f"{len(reg.sites.frame)} sites, {len(reg.routes.frame)} routes, "
            f"{len(reg.manifests.manifests)} manifests")
        timezone = reg.timezone  # naive track times are local to the dataset
        coord_system = reg.coord_system
        table_parts, est_rows = plan_parts(tracks_path, chunk_rows)
        chunks = [_Chunk(i, str(tracks_path), p) for i, p in enumerate(table_parts)]
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
            client.submit(_read_chunk, c, timezone, coord_system, parts, pure=False)
            for c in chunks
        ]
        outs = client.gather([client.submit(_summary_of, f) for f in chunk_futs])
        # one reading mode for the whole file, as the whole-file reader has: GB18030 if
        # any part needed it, unbalanced quotes refused by line if any part met one
        encoding = "gb18030" if any(o.encoding == "gb18030" for o in outs) else None
        quoting = all(o.quoting for o in outs)
        again = [i for i, o in enumerate(outs)
                 if (encoding is not None and o.encoding != encoding) or o.quoting != quoting]
        if again:
            say("read", f"{len(again)} chunks again ({encoding or 'utf-8'}"
                f"{', unbalanced quotes refused by line' if not quoting else ''})")
            for i in again:
                chunk_futs[i] = client.submit(_read_chunk, chunks[i], timezone, coord_system,
                                              parts, encoding, quoting, pure=False)
            for i, o in zip(again, client.gather([client.submit(_summary_of, chunk_futs[i])
                                                  for i in again]), strict=True):
                outs[i] = o
        rows_per_chunk = np.array([o.rows_read for o in outs], dtype="int64")
        offsets = np.concatenate(([0], np.cumsum(rows_per_chunk)))[:-1].astype("int64")
        rows_read = int(rows_per_chunk.sum())
        say("read", f"{rows_read:,} rows")
        t_prepare = time.perf_counter()

        # the local CRS rule over every point and the registry's centroids (WGS-84)
        sites = convert_geometries(reg.sites.frame, coord_system)
        routes = convert_geometries(reg.routes.frame, coord_system)
        coords = outs[0].coords
        for o in outs[1:]:
            coords = coords + o.coords
        # the points first, then the centroids, as the local sample has them
        coords = coords + summarize_coords(*geometry_centroids(sites, routes), sample_every=1)
        crs = dataset_crs_of_summary(coords)
        say("prepare", f"metric CRS {crs.name}")
        rule = config.teleport_rule  # the local engine's rule (routes.audit.audit_folder)

        prep_futs = []
        for b in range(parts):
            pieces = [client.submit(_piece, f, b, pure=False) for f in chunk_futs]
            prep_futs.append(
                client.submit(
                    _prepare_bucket,
                    pieces,
                    offsets,
                    coord_system,
                    tracks_path.name,
                    crs.to_wkt(),
                    dict(rule),
                    pure=False,
                )
            )
        del chunk_futs
        points_futs = [client.submit(lambda r: r[0], f, pure=False) for f in prep_futs]
        small = client.gather(
            [client.submit(lambda r: (r[1], r[2]), f, pure=False) for f in prep_futs]
        )
        del prep_futs

        dataset = _dataset(reg, sites, routes, outs, offsets, small, crs, tracks_path.name,
                           rows_read)
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


def _dataset(reg: Any, sites: Any, routes: Any, outs: list[_ChunkOut], offsets: np.ndarray,
             small: list[tuple[pd.DataFrame, int]], crs: Any, file: str, rows_read: int) -> Any:
    """The prepared Dataset (without points) the context and combine need.

    Rejects and counts as ``read_dataset`` + ``prepare`` make them: registry
    rejects, track rejects in file row order, teleports in points order.
    """
    from haulwatch.ingest.dataset import dataset_stats
    from haulwatch.ingest.prepare import add_teleports, assemble, empty_points
    from haulwatch.ingest.rejects import ACTION_DROPPED, concat_rejects, empty_rejects

    track_rejects = []
    for o, off in zip(outs, offsets, strict=True):
        if len(o.rejects):
            r = o.rejects.copy()
            r["row"] = r["row"].astype("int64") + int(off)
            track_rejects.append(r)
    tr = concat_rejects(track_rejects)
    if len(tr):
        tr = tr.sort_values(["row", "action"], kind="stable").reset_index(drop=True)
    rejects = concat_rejects([reg.rejects(), tr])
    duplicates = sum(o.duplicates for o in outs) + sum(int(s[1]) for s in small)
    dropped = int(((tr["file"] == file) & (tr["action"] == ACTION_DROPPED)).sum())
    stats = dataset_stats(reg, rejects, tracks_file=file, tracks_read=rows_read,
                          tracks_kept=rows_read - dropped - duplicates, duplicates=duplicates)
    tele = [s[0] for s in small if len(s[0])]
    if tele:
        # the single-process order: points order (plate, time)
        both = pd.concat(tele, ignore_index=True)
        both = both.sort_values(["_key", "_time"], kind="stable").reset_index(drop=True)
        teleports = both.drop(columns=["_key", "_time"])
    else:
        teleports = empty_rejects()
    rejects, stats = add_teleports(rejects, stats, teleports)
    return assemble(
        folder=reg.folder, coord_system=reg.coord_system, timezone=reg.timezone, sites=sites,
        routes=routes, manifests=reg.manifests.manifests,
        vehicles=reg.vehicles.frame if reg.vehicles is not None else None, rejects=rejects,
        crs=crs, points=empty_points(), stats=stats,
        has_load=any(o.has_load for o in outs), has_lift=any(o.has_lift for o in outs))
