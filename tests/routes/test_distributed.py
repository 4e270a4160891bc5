"""Tests for haulwatch.routes.distributed: the Dask engine gives the local audit's result."""

from __future__ import annotations

import shutil
import subprocess
import sys

import distributed
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from haulwatch.routes.audit import audit_folder
from haulwatch.routes.config import AuditConfig
from haulwatch.routes.distributed import DistributedError, audit_dask, bucket_of_keys

# Coordinates may differ by float rounding only (means taken over differently
# partitioned arrays): 1e-9 degree is 0.1 mm.
DEG_TOL = 1e-9
M_TOL = 1e-4


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from haulwatch.ingest.synthetic import generate

    folder = tmp_path_factory.mktemp("fleet") / "csv"
    # enough trucks for a hotspot (3 trucks) and every kind, small enough to be quick;
    # bad rows and duplicates so that rejects, row numbers and dedup across chunks count
    generate(folder, trucks=16, days=1, seed=11, bad_row_fraction=0.01, duplicate_fraction=0.01)
    return folder


@pytest.fixture(scope="module")
def local(dataset):
    return audit_folder(dataset, AuditConfig())


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()


def _assert_same_alerts(a, b):
    assert list(a["alert_id"]) == list(b["alert_id"])
    exact = [c for c in a.columns if c not in ("lon", "lat", "geometry")]
    pd.testing.assert_frame_equal(pd.DataFrame(a[exact]), pd.DataFrame(b[exact]))
    np.testing.assert_allclose(a["lon"], b["lon"], rtol=0, atol=DEG_TOL)
    np.testing.assert_allclose(a["lat"], b["lat"], rtol=0, atol=DEG_TOL)
    for ga, gb in zip(a.geometry, b.geometry, strict=True):
        assert ga.geom_type == gb.geom_type
        assert ga.equals_exact(gb, DEG_TOL)


def _assert_same_frame(a, b):
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    floats = [c for c in a.columns if pd.api.types.is_float_dtype(a[c])]
    others = [c for c in a.columns if c not in floats]
    pd.testing.assert_frame_equal(
        a[others].reset_index(drop=True),
        b[others].reset_index(drop=True),
        check_dtype=False,
        check_categorical=False,
    )
    for c in floats:
        np.testing.assert_allclose(a[c], b[c], rtol=0, atol=M_TOL, equal_nan=True)


def _check_same(local, remote):
    assert len(local.alerts) > 0
    _assert_same_alerts(local.alerts, remote.alerts)
    pd.testing.assert_frame_equal(local.rejects, remote.rejects)
    _assert_same_frame(local.trips, remote.trips)
    _assert_same_frame(local.stops, remote.stops)
    for key in (
        "points_read",
        "points_kept",
        "rows_rejected",
        "rejects_by_reason",
        "duplicates_dropped",
        "stops",
        "trips",
        "alerts_by_kind",
        "data_start",
        "data_end",
    ):
        assert local.summary[key] == remote.summary[key], key


def test_same_result_as_local_audit_many_chunks(dataset, local, client):
    # 3,000-row chunks: vehicles and duplicate pairs are spread over many chunks
    remote = audit_dask(dataset, AuditConfig(), client=client, chunk_rows=3000, n_partitions=5)
    assert set(local.alerts["kind"]) >= {"illegal_dump", "dump_hotspot", "gps_gap"}
    _check_same(local, remote)


def test_same_result_with_parquet_folder(dataset, local, client, tmp_path):
    # the same tracks as a folder of Parquet files (row order kept, several row groups)
    folder = tmp_path / "pq"
    shutil.copytree(dataset, folder)
    tracks = pd.read_csv(folder / "tracks.csv", dtype=str, keep_default_na=False)
    (folder / "tracks.csv").unlink()
    (folder / "tracks.parquet").mkdir()
    half = len(tracks) // 2
    for i, part in enumerate((tracks.iloc[:half], tracks.iloc[half:])):
        pq.write_table(
            __import__("pyarrow").Table.from_pandas(part, preserve_index=False),
            folder / "tracks.parquet" / f"part-{i}.parquet",
            row_group_size=2500,
        )
    remote = audit_dask(folder, AuditConfig(), client=client, chunk_rows=2000, n_partitions=3)
    _assert_same_alerts(local.alerts, remote.alerts)
    assert local.summary["points_read"] == remote.summary["points_read"]
    assert local.summary["duplicates_dropped"] == remote.summary["duplicates_dropped"]
    # rows are numbered across the files as if they were one file
    pd.testing.assert_frame_equal(
        local.rejects.drop(columns="file"), remote.rejects.drop(columns="file")
    )


def test_own_local_cluster_is_closed(dataset, local, monkeypatch):
    made = []

    class Recording(distributed.LocalCluster):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(distributed, "LocalCluster", Recording)
    remote = audit_dask(dataset, AuditConfig(), n_workers=2, processes=False)
    _assert_same_alerts(local.alerts, remote.alerts)
    assert len(made) == 1
    assert made[0].status.name == "closed"


def test_input_folder_unchanged(dataset, client):
    before = {p.name: p.stat().st_mtime_ns for p in dataset.iterdir()}
    audit_dask(dataset, AuditConfig(), client=client, n_partitions=2)
    assert {p.name: p.stat().st_mtime_ns for p in dataset.iterdir()} == before


def test_missing_dataset_is_a_schema_error(tmp_path, client):
    from haulwatch.ingest.rejects import SchemaError

    with pytest.raises(SchemaError, match="not found"):
        audit_dask(tmp_path / "nope", AuditConfig(), client=client)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_workers": 0}, "n_workers"),
        ({"chunk_rows": 10}, "chunk_rows"),
        ({"n_partitions": 0}, "n_partitions"),
        ({"n_partitions": 2.5}, "n_partitions"),
    ],
)
def test_bad_parameters(dataset, kwargs, match):
    with pytest.raises(DistributedError, match=match):
        audit_dask(dataset, AuditConfig(), **kwargs)


class TestBucketOfKeys:
    def test_range_missing_and_same_key_same_bucket(self):
        keys = pd.Series(["浙A1", "浙B2", None, "浙A1", "沪C3"] * 3)
        buckets = bucket_of_keys(keys, 4)
        assert buckets[2] == -1
        ok = buckets[keys.notna().to_numpy()]
        assert ((ok >= 0) & (ok < 4)).all()
        assert buckets[0] == buckets[3]
        # independent of the other keys present
        assert bucket_of_keys(pd.Series(["浙A1"]), 4)[0] == buckets[0]

    def test_bad_partition_count(self):
        with pytest.raises(DistributedError, match="n_partitions"):
            bucket_of_keys(pd.Series(["浙A1"]), 0)

    def test_stable_across_processes(self):
        keys = [f"浙F{i:05d}" for i in range(50)]
        here = bucket_of_keys(pd.Series(keys), 7).tolist()
        code = (
            "import sys,pandas as pd;from haulwatch.routes.distributed import bucket_of_keys;"
            f"print(bucket_of_keys(pd.Series({keys!r}),7).tolist())"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": "99", "PATH": ""},
        )
        assert out.stdout.strip() == str(here)
        assert len(set(here)) > 1  # spreads vehicles


def test_tracks_with_header_only(dataset, client, tmp_path):
    folder = tmp_path / "empty"
    shutil.copytree(dataset, folder)
    header = (dataset / "tracks.csv").read_text(encoding="utf-8").splitlines()[0]
    (folder / "tracks.csv").write_text(header + "\n", encoding="utf-8")
    local = audit_folder(folder, AuditConfig())
    remote = audit_dask(folder, AuditConfig(), client=client)
    assert len(remote.alerts) == len(local.alerts)
    assert remote.summary["points_read"] == local.summary["points_read"] == 0
    pd.testing.assert_frame_equal(local.rejects, remote.rejects)


def test_missing_required_column_fails_like_the_reader(dataset, client, tmp_path):
    from haulwatch.ingest.rejects import SchemaError

    folder = tmp_path / "nolat"
    shutil.copytree(dataset, folder)
    tracks = pd.read_csv(folder / "tracks.csv", dtype=str, keep_default_na=False)
    tracks.drop(columns=["lat"]).to_csv(folder / "tracks.csv", index=False)
    with pytest.raises(SchemaError, match="lat"):
        audit_folder(folder, AuditConfig())
    with pytest.raises(SchemaError, match="lat"):
        audit_dask(folder, AuditConfig(), client=client)


def test_same_alerts_gcj02_parquet_dataset(client, tmp_path):
    from haulwatch.ingest.synthetic import generate

    folder = tmp_path / "gcj"
    generate(folder, trucks=10, days=1, seed=4, coord_system="gcj02", fmt="parquet")
    local = audit_folder(folder, AuditConfig())
    remote = audit_dask(folder, AuditConfig(), client=client, chunk_rows=4000, n_partitions=3)
    _assert_same_alerts(local.alerts, remote.alerts)
    pd.testing.assert_frame_equal(local.rejects, remote.rejects)


def _write_lines(path, header, lines, encoding):
    path.write_bytes((header + "\n" + "\n".join(lines) + "\n").encode(encoding))


@pytest.fixture
def small_parts(monkeypatch):
    """CSV parts of ~64 KiB, so that a bad line lands in a middle part."""
    from haulwatch.ingest import tables

    monkeypatch.setattr(tables, "_MIN_PART_BYTES", 1 << 16)


def test_gb18030_file_with_unbalanced_quote_local_and_dask_agree(
        dataset, client, tmp_path, small_parts):
    # GB18030 as Chinese fleet platforms export it, and one line whose quote is never
    # closed: the reader refuses that line alone (every other line kept), in both engines
    folder = tmp_path / "gb"
    shutil.copytree(dataset, folder)
    header, *lines = (dataset / "tracks.csv").read_text(encoding="utf-8").splitlines()
    at = len(lines) * 2 // 3
    bad = lines[at].replace(",", ',"', 1)  # vehicle_id,"time,... : the quote never closes
    lines[at] = bad
    _write_lines(folder / "tracks.csv", header, lines, "gb18030")
    assert b'\xd5\xe3' in (folder / "tracks.csv").read_bytes()  # 浙 in GB18030
    with pytest.raises(UnicodeDecodeError):
        (folder / "tracks.csv").read_bytes().decode("utf-8")

    local = audit_folder(folder, AuditConfig())
    remote = audit_dask(folder, AuditConfig(), client=client, chunk_rows=1000, n_partitions=3)
    _check_same(local, remote)
    quote = local.rejects[local.rejects["reason"].str.startswith("unbalanced quote")]
    assert list(quote["row"]) == [at + 1]
    assert quote["value"].iloc[0] == bad
    # nothing else refused as a ragged row: no line was swallowed by the open quote
    assert (local.rejects["field"] == "row").sum() == 1
    # the plates are read as written (GB18030 decoded), so the same vehicles as in UTF-8
    utf8 = audit_folder(dataset, AuditConfig())
    assert local.summary["vehicles"] == utf8.summary["vehicles"]
    assert local.summary["points_read"] == utf8.summary["points_read"]
    assert set(local.alerts["kind"]) == set(utf8.alerts["kind"])


def test_non_utf8_line_after_the_sniffed_bytes_local_and_dask_agree(
        dataset, client, tmp_path, small_parts):
    # UTF-8 at the start (the sniffed 64 KiB), one GB18030 line near the end: the whole
    # file is read again as GB18030, and every Dask part is read the same way
    folder = tmp_path / "mixed"
    shutil.copytree(dataset, folder)
    header, *lines = (dataset / "tracks.csv").read_text(encoding="utf-8").splitlines()
    at = len(lines) - 10
    data = ("\n".join([header, *lines[:at]]) + "\n").encode("utf-8") \
        + lines[at].encode("gb18030") + b"\n" \
        + ("\n".join(lines[at + 1:]) + "\n").encode("utf-8")
    (folder / "tracks.csv").write_bytes(data)

    local = audit_folder(folder, AuditConfig())
    remote = audit_dask(folder, AuditConfig(), client=client, chunk_rows=1000, n_partitions=3)
    _check_same(local, remote)
    assert local.summary["points_read"] == len(lines)
