"""Clustering on a real Dask cluster (DESIGN "Clustering"): the committed
manifest has k = choose_k(records) clusters, every record is in the segment of
its nearest centroid, cosine indexes cluster normalised vectors, sparse
indexes are plain row chunks without centroids, hybrid indexes cluster on the
dense part and keep the sparse part."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from datagen import (
    clustered_vectors,
    dense_table,
    list_array,
    load_namespace_data,
    random_sparse,
    run_import,
    sparse_array,
    split_write,
    write,
)

from vecstore import kmeans
from vecstore.api import Index
from vecstore.pipelines import plan

pytestmark = pytest.mark.dask

DIM = 8


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    n[n == 0] = 1
    return x / n


def assert_nearest(x: np.ndarray, own: np.ndarray, centroids: np.ndarray, cosine: bool) -> None:
    """Each row of ``x`` is (up to float32 rounding) nearest to centroid ``own``."""
    x64 = _normalize(x.astype(np.float64)) if cosine else x.astype(np.float64)
    c64 = centroids.astype(np.float64)
    d = ((x64[:, None, :] - c64[None, :, :]) ** 2).sum(axis=2)
    best = d.min(axis=1)
    mine = d[np.arange(len(x)), own]
    bad = np.flatnonzero(mine > best * (1 + 1e-5) + 1e-6)
    assert bad.size == 0, f"{bad.size} records are not in their nearest cluster, e.g. row {bad[:5]}"


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "dotproduct"])
def test_dense_clusters(
    make_index: Callable[..., Index], store_root: Path, src: Path, metric: str
) -> None:
    n = 3 * kmeans.TARGET_PER_CLUSTER + 500
    k = kmeans.choose_k(n)
    assert k == n // kmeans.records_per_cluster(n) and 1000 <= n / k <= 4096  # DESIGN: 1-4 k
    x = clustered_vectors(n, DIM, centers=k + 2, seed=1)
    if metric == "cosine":  # very different norms: must not matter for cosine clustering
        x *= np.random.default_rng(2).uniform(0.01, 100, size=(n, 1)).astype(np.float32)
    ids = [f"id{i}" for i in range(n)]
    index = make_index(dimension=DIM, metric=metric)
    split_write(src / "ns", dense_table(ids, x), 3, row_group_size=2000)
    job = run_import(index, src, "abort")
    assert (job.status, job.records_imported) == ("Completed", n), job
    m, segs, cents = load_namespace_data(store_root, index.name, "ns")
    assert cents is not None and cents.shape == (k, DIM) and cents.dtype == np.float32
    assert m.centroids is not None and m.centroids.endswith(".centroids")
    assert sorted(c.id for c in m.clusters) == list(range(k))
    assert m.record_count == n == sum(c.row_count for c in m.clusters)
    if metric == "cosine":
        np.testing.assert_allclose(np.linalg.norm(cents, axis=1), 1.0, rtol=1e-5)
    by_id = {f"id{i}": x[i] for i in range(n)}
    seen: list[str] = []
    for cid, t in segs:
        assert t.num_rows == next(c.row_count for c in m.clusters if c.id == cid)
        assert pa.types.is_fixed_size_list(t.schema.field("values").type)
        vals = np.asarray(t.column("values").to_pylist(), dtype=np.float32)
        seg_ids = t.column("id").to_pylist()
        # stored values are the input values (not normalised), exactly
        np.testing.assert_array_equal(vals, np.stack([by_id[i] for i in seg_ids]))
        assert_nearest(vals, np.full(len(vals), cid), cents, cosine=metric == "cosine")
        seen.extend(seg_ids)
    assert sorted(seen) == sorted(ids)


def test_single_cluster_for_small_namespace(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    index = make_index(dimension=DIM)
    split_write(src / "ns", dense_table([f"r{i}" for i in range(10)], clustered_vectors(10, DIM, 2)), 1)
    job = run_import(index, src)
    assert job.status == "Completed", job
    m, segs, cents = load_namespace_data(store_root, index.name, "ns")
    # one cluster: no centroids file (docs/scale.md "One-cluster namespaces")
    assert cents is None and m.centroids is None
    assert [c.id for c in m.clusters] == [0] and segs[0][1].num_rows == 10
    got = index.query(vector=[1.0] * DIM, top_k=10, namespace="ns")
    assert sorted(x.id for x in got.matches) == [f"r{i}" for i in range(10)]


def test_sparse_index_plain_row_chunks(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    n1, n2 = 2 * plan.SPARSE_SEGMENT_ROWS + 300, 700
    index = make_index(vector_type="sparse")
    rows1 = random_sparse(n1, seed=1)
    rows2 = random_sparse(n2, seed=2)
    meta = [json.dumps({"i": i}) for i in range(n1)]
    write(
        src / "ns" / "0.parquet",
        pa.table({"id": [f"a{i}" for i in range(n1)], "sparse_values": sparse_array(rows1),
                  "metadata": meta}),
    )
    write(src / "ns" / "1.parquet",
          pa.table({"id": [f"b{i}" for i in range(n2)], "sparse_values": sparse_array(rows2)}))
    job = run_import(index, src, "abort")
    assert (job.status, job.records_imported) == ("Completed", n1 + n2), job
    m, segs, cents = load_namespace_data(store_root, index.name, "ns")
    assert cents is None and m.centroids is None
    assert m.record_count == n1 + n2
    sizes = sorted(t.num_rows for _, t in segs)
    # file 0 (one chunk): two full segments and the rest; file 1: one segment
    assert sizes == sorted([plan.SPARSE_SEGMENT_ROWS, plan.SPARSE_SEGMENT_ROWS, 300, n2])
    assert "values" not in segs[0][1].column_names
    want = {f"a{i}": r for i, r in enumerate(rows1)} | {f"b{i}": r for i, r in enumerate(rows2)}
    got = {
        rid: sv
        for _, t in segs
        for rid, sv in zip(
            t.column("id").to_pylist(), t.column("sparse_values").to_pylist(), strict=True
        )
    }
    assert sorted(got) == sorted(want)
    for rid, (idx, vals) in want.items():
        assert got[rid]["indices"] == idx
        np.testing.assert_array_equal(np.float32(got[rid]["values"]), np.float32(vals))


def test_hybrid_index(make_index: Callable[..., Index], store_root: Path, src: Path) -> None:
    """Dense dotproduct index with sparse_values: clusters on the dense part; rows
    without a sparse part are kept with a null one."""
    n = kmeans.TARGET_PER_CLUSTER + 1000
    x = clustered_vectors(n, DIM, centers=4, seed=3)
    sparse = random_sparse(n, seed=4, nnz=5)
    sparse_or_none = [None if i % 7 == 0 else s for i, s in enumerate(sparse)]
    index = make_index(dimension=DIM, metric="dotproduct")
    write(
        src / "__default__" / "0.parquet",
        pa.table({"id": [f"h{i}" for i in range(n)], "values": list_array(x),
                  "sparse_values": sparse_array(sparse_or_none)}),
        row_group_size=1000,
    )
    job = run_import(index, src, "abort")
    assert (job.status, job.records_imported) == ("Completed", n), job
    m, segs, cents = load_namespace_data(store_root, index.name, "")
    assert cents is not None and cents.shape == (kmeans.choose_k(n), DIM)
    assert m.record_count == n
    for cid, t in segs:
        vals = np.asarray(t.column("values").to_pylist(), dtype=np.float32)
        assert_nearest(vals, np.full(len(vals), cid), cents, cosine=False)
        for rid, sv in zip(t.column("id").to_pylist(), t.column("sparse_values").to_pylist(),
                           strict=True):
            i = int(rid[1:])
            if sparse_or_none[i] is None:
                assert sv is None
            else:
                assert sv["indices"] == sparse[i][0]
                np.testing.assert_array_equal(np.float32(sv["values"]), np.float32(sparse[i][1]))
