"""An import whose k is above kmeans.FLAT_MAX_K trains hierarchically on the
workers (issue 9 item 5, docs/kmeans.md) and commits a correct namespace:
every record in the segment of its nearest centroid, every id once, queries
find records. The threshold is lowered so a small import takes that path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from datagen import clustered_vectors, dense_table, load_namespace_data, run_import, split_write
from test_import_clustering import assert_nearest

from vecstore import kmeans
from vecstore.api import Index

pytestmark = pytest.mark.dask

DIM = 8


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_hierarchical_training_import(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    monkeypatch: pytest.MonkeyPatch,
    metric: str,
) -> None:
    n = 3 * kmeans.TARGET_PER_CLUSTER + 500
    k = kmeans.choose_k(n)
    monkeypatch.setattr(kmeans, "FLAT_MAX_K", 4)  # the driver decides the path
    assert k > kmeans.FLAT_MAX_K
    x = clustered_vectors(n, DIM, centers=k + 2, seed=5)
    ids = [f"id{i}" for i in range(n)]
    index = make_index(dimension=DIM, metric=metric)
    split_write(src / "ns", dense_table(ids, x), 3, row_group_size=2000)
    job = run_import(index, src, "abort")
    assert (job.status, job.records_imported) == ("Completed", n), job
    m, segs, cents = load_namespace_data(store_root, index.name, "ns")
    assert cents is not None and 1 < len(cents) <= k and cents.shape[1] == DIM
    assert sorted(c.id for c in m.clusters) == list(range(len(cents)))
    assert m.record_count == n == sum(c.row_count for c in m.clusters)
    seen: list[str] = []
    for cid, t in segs:
        vals = np.asarray(t.column("values").to_pylist(), dtype=np.float32)
        assert_nearest(vals, np.full(len(vals), cid), cents, cosine=metric == "cosine")
        seen.extend(t.column("id").to_pylist())
    assert sorted(seen) == sorted(ids)
    res = index.query(vector=x[17].tolist(), top_k=1, namespace="ns")
    assert res.matches[0].id == "id17"
    # the staging area of the cell shuffle is gone with the import's scratch
    assert not list((store_root / "indexes" / index.name / "imports").rglob("*.npz"))
