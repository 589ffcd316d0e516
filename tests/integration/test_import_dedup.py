"""Duplicate records on a real Dask cluster.

The rule tested (DESIGN "Import semantics", Duplicates): within a namespace a
valid record is skipped when an *earlier* valid record, in (file path, row)
order, has the same id (``duplicate_id``) or identical vector values
(``duplicate_values``; ``duplicate_id`` when both). "Earlier record" is any
earlier valid record, skipped or not, exactly as written in DESIGN. The result
must not depend on how the work is split: files, row groups, scan chunks,
dedup partitions and write buckets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datagen import (
    NOTHING_LEFT,
    dense_table,
    leftovers,
    load_namespace_data,
    read_rejects,
    run_import,
    split_write,
    vectors,
    write,
)

from vecstore import kmeans
from vecstore.api import Index

pytestmark = pytest.mark.dask

DIM = 4
N = 9000  # > 2 x kmeans.TARGET_PER_CLUSTER: several clusters, so several write buckets


@dataclass
class Dataset:
    ids: list[str]
    vals: np.ndarray


def make_dataset(seed: int = 0) -> Dataset:
    """N records with repeated ids, repeated vectors, both, and chains of them."""
    rng = np.random.default_rng(seed)
    vals = vectors(N, DIM, seed)
    ids = [f"r{i}" for i in range(N)]
    rows = rng.permutation(np.arange(1, N))
    it = iter(rows.tolist())
    for _ in range(40):  # identical vector of an earlier record (perhaps itself a duplicate)
        j = next(it)
        vals[j] = vals[int(rng.integers(0, j))]
    for _ in range(30):  # repeated id
        j = next(it)
        ids[j] = ids[int(rng.integers(0, j))]
    for _ in range(10):  # both, from the same earlier record
        j = next(it)
        i = int(rng.integers(0, j))
        ids[j], vals[j] = ids[i], vals[i]
    for _ in range(10):  # both, from two different earlier records
        j = next(it)
        ids[j] = ids[int(rng.integers(0, j))]
        vals[j] = vals[int(rng.integers(0, j))]
    return Dataset(ids, vals)


@dataclass
class Expected:
    kept: list[int]  # global row numbers
    dropped: dict[int, tuple[str, int]]  # row -> (code, row of the first occurrence)


def reference(ds: Dataset) -> Expected:
    first_id: dict[str, int] = {}
    first_val: dict[bytes, int] = {}
    kept: list[int] = []
    dropped: dict[int, tuple[str, int]] = {}
    for r, (rid, v) in enumerate(zip(ds.ids, ds.vals, strict=True)):
        key = v.tobytes()
        if rid in first_id:
            dropped[r] = ("duplicate_id", first_id[rid])
        elif key in first_val:
            dropped[r] = ("duplicate_values", first_val[key])
        else:
            kept.append(r)
        first_id.setdefault(rid, r)
        first_val.setdefault(key, r)
    return Expected(kept, dropped)


def write_split(directory: Path, ds: Dataset, files: int, row_group_size: int) -> list[tuple[str, int]]:
    """Write the dataset in ``files`` files; returns (file path, row in file) per global row."""
    table = dense_table(ds.ids, ds.vals)
    paths = split_write(directory, table, files, row_group_size=row_group_size)
    where: list[tuple[str, int]] = []
    bounds = np.linspace(0, N, files + 1).astype(int)
    for p, a, b in zip(paths, bounds[:-1], bounds[1:], strict=True):
        where.extend((p, r) for r in range(b - a))
    return where


def stored(store_root: Path, index: str, ns: str) -> dict[str, np.ndarray]:
    _, segs, _ = load_namespace_data(store_root, index, ns)
    t = pa.concat_tables([s for _, s in segs])
    mat = np.asarray(t.column("values").to_pylist(), dtype=np.float32)
    ids = t.column("id").to_pylist()
    assert len(set(ids)) == len(ids), "an id is stored twice"
    return dict(zip(ids, mat, strict=True))


SPLITS = [
    pytest.param(3, 1000, {}, id="3-files"),
    pytest.param(7, 97, {}, id="7-files-small-row-groups"),
    pytest.param(
        2,
        500,
        # 18 scan chunks, 13 dedup partitions, one write bucket per cluster
        {"VECSTORE_PARTITION_ROWS": "700", "VECSTORE_CHUNK_BYTES": "1", "VECSTORE_BUCKET_BYTES": "1"},
        id="many-chunks-partitions-buckets",
    ),
    pytest.param(1, 10_000, {"VECSTORE_PARTITION_ROWS": "2500"}, id="1-file-4-partitions"),
]


@pytest.mark.parametrize(("files", "row_group_size", "env"), SPLITS)
def test_first_occurrence_wins_whatever_the_split(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: int,
    row_group_size: int,
    env: dict[str, str],
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    ds = make_dataset()
    exp = reference(ds)
    index = make_index(dimension=DIM, metric="euclidean")
    where = write_split(src / "alpha", ds, files, row_group_size)
    # the same records in another namespace: duplicates across namespaces are not duplicates
    write_split(src / "beta", ds, 1, 10_000)
    job = run_import(index, src, "continue")
    assert (job.status, job.error) == ("Completed", None), job
    n_id = sum(1 for c, _ in exp.dropped.values() if c == "duplicate_id")
    n_val = len(exp.dropped) - n_id
    assert n_id > 40 and n_val > 20  # the dataset exercises both
    assert job.records_skipped == {"duplicate_id": 2 * n_id, "duplicate_values": 2 * n_val}
    assert job.records_imported == 2 * len(exp.kept)
    m, _, _ = load_namespace_data(store_root, index.name, "alpha")
    assert len(m.clusters) == kmeans.choose_k(N) > 1
    for ns in ("alpha", "beta"):
        got = stored(store_root, index.name, ns)
        # the kept records are exactly the first occurrences, with their own vectors
        assert sorted(got) == sorted(ds.ids[r] for r in exp.kept)
        for r in exp.kept:
            np.testing.assert_array_equal(got[ds.ids[r]], ds.vals[r])
        assert index.describe_namespace(ns).record_count == len(exp.kept)
    # every skipped record of "alpha" is in the reject report, naming its first occurrence
    report = [r for r in read_rejects(job.rejects_uri) if r["namespace"] == "alpha"]
    want = []
    for r, (code, first) in sorted(exp.dropped.items()):
        f, row = where[r]
        ff, frow = where[first]
        if code == "duplicate_id":
            msg = f'Duplicate id "{ds.ids[r]}": the id of the record at (file "{ff}", row {frow})'
        else:
            msg = (
                f'Duplicate vector: the values of record "{ds.ids[r]}" are identical to those of '
                f'the record at (file "{ff}", row {frow})'
            )
        want.append({"namespace": "alpha", "file": f, "row": row, "code": code, "message": msg,
                     "id": ds.ids[r]})
    assert report == sorted(want, key=lambda x: (x["namespace"], x["file"], x["row"], x["code"]))


def test_file_path_order_not_write_order(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """The file that sorts first wins, even if written last; rows order within a file."""
    index = make_index(dimension=DIM)
    v = vectors(3, DIM, 5)
    t_late = dense_table(["x", "y", "z"], v)
    t_early = dense_table(["z", "w"], np.stack([v[0], v[2] + 1]))
    split_write(src / "ns", t_late, 1, prefix="b")
    split_write(src / "ns", t_early, 1, prefix="a")  # a-000.parquet < b-000.parquet
    job = run_import(index, src, "continue")
    assert job.status == "Completed", job
    got = stored(store_root, index.name, "ns")
    # a: z (v0), w (v2+1) kept; b: x has v0 (dup of a/z), y kept, z dup id of a/z
    assert sorted(got) == ["w", "y", "z"]
    np.testing.assert_array_equal(got["z"], v[0])
    assert job.records_skipped == {"duplicate_id": 1, "duplicate_values": 1}


def test_abort_fails_on_the_first_duplicate(
    make_index: Callable[..., Index], store_root: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_PARTITION_ROWS", "700")  # 13 partitions: found across partitions
    ds = make_dataset(seed=3)
    exp = reference(ds)
    index = make_index(dimension=DIM)
    where = write_split(src / "alpha", ds, 4, 100)
    first_dup = min(exp.dropped)
    code, first = exp.dropped[first_dup]
    f, row = where[first_dup]
    ff, frow = where[first]
    job = run_import(index, src, "abort")
    assert job.status == "Failed"
    if code == "duplicate_id":
        reason = f'Duplicate id "{ds.ids[first_dup]}": the id of the record at (file "{ff}", row {frow})'
    else:
        reason = (
            f'Duplicate vector: the values of record "{ds.ids[first_dup]}" are identical to those '
            f'of the record at (file "{ff}", row {frow})'
        )
    assert job.error == f'error reading record (file "{f}", row {row}): {reason}'
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT
    assert index.list_namespaces() == []


@pytest.mark.parametrize("code", ["duplicate_id", "duplicate_values"])
def test_abort_duplicate_message_names_both_records(
    make_index: Callable[..., Index], store_root: Path, src: Path, code: str
) -> None:
    index = make_index(dimension=DIM)
    v = vectors(4, DIM, 1)
    ids = ["a", "b", "c", "d"]
    t0 = dense_table(ids[:2], v[:2])
    if code == "duplicate_id":
        t1 = dense_table(["c", "a"], v[2:])
        reason = f'Duplicate id "a": the id of the record at (file "{src}/ns/0.parquet", row 0)'
    else:
        t1 = dense_table(["c", "d"], np.stack([v[2], v[1]]))
        reason = (
            'Duplicate vector: the values of record "d" are identical to those of the record at '
            f'(file "{src}/ns/0.parquet", row 1)'
        )
    write(src / "ns" / "0.parquet", t0)
    write(src / "ns" / "1.parquet", t1)
    job = run_import(index, src, "abort")
    assert (job.status, job.error) == (
        "Failed",
        f'error reading record (file "{src}/ns/1.parquet", row 1): {reason}',
    )
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT
