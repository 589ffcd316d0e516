"""Imports and writes on one index (real Dask LocalCluster): an import refuses
a namespace created by upsert (Pinecone's "already exists"), also one whose
records were all deleted; a namespace created by an import takes writes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from datagen import dense_import, run_import

from vecstore import manifests
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
    # one cluster, imported by a pack task: no centroids file (docs/scale.md)
    m = manifests.load_namespace(index.store, index.name, "docs")
    assert m is not None and m.centroids is None and len(m.clusters) == 1
    x = np.asarray(tables["docs"].column("values").to_pylist(), dtype=np.float32)
    index.delete(ids=["docs-0"], namespace="docs")
    index.upsert([("docs-1", (-x[1]).tolist()), ("new", x[0].tolist())], namespace="docs")
    assert index.describe_namespace("docs").record_count == 50
    got = index.query(vector=x[0].tolist(), top_k=1, namespace="docs", nprobe=100)
    assert got.matches[0].id == "new"
    assert index.build(namespace="docs")["docs"].status == "built"
    got = index.query(vector=x[1].tolist(), top_k=50, namespace="docs", nprobe=100)
    assert got.matches[-1].id == "docs-1" and len(got.matches) == 50
    built = manifests.load_namespace(index.store, index.name, "docs")
    assert built is not None and built.centroids is not None  # the build re-clustered
    assert index.fetch(["new", "docs-2"], namespace="docs").vectors.keys() == {"new", "docs-2"}


def test_delete_then_reimport_does_not_replay_the_old_log(
    make_index: Callable[..., Index], src: Path
) -> None:
    """A namespace created by upserts, deleted, then imported again: the
    import's manifest records the old log's end (format 2), so nothing of
    the old incarnation comes back; the old ``_wal/`` is gone."""
    index = make_index(dimension=D)
    index.upsert([(f"old{i}", [float(i + 1)] * D) for i in range(5)], namespace="books")
    index.delete(ids=["old0"], namespace="books")  # LSN 2
    index.delete_namespace("books")
    tomb = index.store.ls(f"indexes/{index.name}/namespaces")
    assert tomb  # the namespace folder stays (its tombstone)
    from vecstore import wal

    assert wal.list_lsns(index.store, index.name, "books") == []
    dense_import(src, {"books": 20}, D)
    assert run_import(index, src).status == "Completed"
    m = manifests.load_namespace(index.store, index.name, "books")
    assert m is not None and m.applied_lsn == 2 and m.format_version == 2
    ids = sorted(i for page in index.list(namespace="books") for i in page)
    assert ids == sorted(f"books-{i}" for i in range(20))
    assert index.describe_index_stats().namespaces["books"].vector_count == 20
    # writes after the re-import continue the numbering, past the old log
    index.upsert([("new", [1.0] * D)], namespace="books")
    assert wal.list_lsns(index.store, index.name, "books") == [3]
    assert index.build(namespace="books")["books"].status == "built"
    assert index.describe_index_stats().namespaces["books"].vector_count == 21


def test_import_of_a_namespace_without_a_log_stays_format_1(
    make_index: Callable[..., Index], src: Path
) -> None:
    index = make_index(dimension=D)
    dense_import(src, {"plain": 10}, D)
    assert run_import(index, src).status == "Completed"
    m = manifests.load_namespace(index.store, index.name, "plain")
    assert m is not None and m.applied_lsn is None and m.format_version == 1
