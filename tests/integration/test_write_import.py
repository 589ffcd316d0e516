"""Imports and writes on one index (real Dask LocalCluster): an import refuses
a namespace created by upsert (Pinecone's "already exists"), also one whose
records were all deleted; a namespace created by an import takes writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from datagen import dense_import, run_import

from vecstore.api import Index

D = 8


def test_import_refuses_a_namespace_created_by_upsert(
    make_index: Callable[..., Index], src: Path
) -> None:
    index = make_index(dimension=D)
    index.upsert([("u1", [1.0] * D)], namespace="books")
    index.upsert([("u2", [1.0] * D)], namespace="emptied")
    index.delete(delete_all=True, namespace="emptied")
    for ns in ("books", "emptied"):
        dense_import(src / f"for-{ns}", {ns: 20}, D)
        job = run_import(index, src / f"for-{ns}")
        assert job.status == "Failed"
        assert job.error == (
            f'The namespace "{ns}" already exists. Imports are only allowed into '
            "nonexistent namespaces."
        )
    assert index.describe_index_stats().namespaces["books"].vector_count == 1
    assert index.describe_index_stats().namespaces["emptied"].vector_count == 0


def test_writes_to_an_imported_namespace(make_index: Callable[..., Index], src: Path) -> None:
    index = make_index(dimension=D)
    tables = dense_import(src, {"docs": 50}, D)
    assert run_import(index, src).status == "Completed"
    x = np.asarray(tables["docs"].column("values").to_pylist(), dtype=np.float32)
    index.delete(ids=["docs-0"], namespace="docs")
    index.upsert([("docs-1", (-x[1]).tolist()), ("new", x[0].tolist())], namespace="docs")
    assert index.describe_namespace("docs").record_count == 50
    got = index.query(vector=x[0].tolist(), top_k=1, namespace="docs", nprobe=100)
    assert got.matches[0].id == "new"
    assert index.build(namespace="docs")["docs"].status == "built"
    got = index.query(vector=x[1].tolist(), top_k=50, namespace="docs", nprobe=100)
    assert got.matches[-1].id == "docs-1" and len(got.matches) == 50
