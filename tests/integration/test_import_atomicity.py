"""Commit atomicity on a real Dask cluster: an import's namespaces become
visible together or not at all, and a failed import leaves no manifest, no
data file and no staging file (walking the store)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from datagen import (
    NOTHING_LEFT,
    dense_import,
    dense_table,
    files_under,
    index_dir,
    leftovers,
    namespace_dir,
    run_import,
    vectors,
    wait_until,
    write,
)
from segwriter import records_to_table, write_namespace

from vecstore import manifests
from vecstore.api import Index
from vecstore.storage import Store

pytestmark = pytest.mark.dask


def test_second_namespace_failing_at_commit_hides_the_first(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """Namespace "b" appears (another writer commits it) while the import of
    "a" and "b" runs: the import commits "a"'s manifest, then fails on "b".
    "a" must never become visible and its manifest and files must go; the
    other writer's "b" stays as it was."""
    dense_import(src, {"a": 60_000, "b": 60_000}, dim=32, files=2, row_group_size=5_000)
    index = make_index(dimension=32)
    op = index.start_import(uri=str(src))
    wait_until(
        lambda: index.describe_import(op.id).phase in ("train", "scan", "dedup", "write", "commit", "done"),
        timeout=60, what="the import to pass discovery",
    )
    phase = index.describe_import(op.id).phase
    assert phase in ("train", "scan"), f"the import went too fast for this test: {phase}"
    other = records_to_table(
        [{"id": i, "values": v} for i, v in zip("xyz", vectors(3, 32, seed=9), strict=True)],
        index.spec,
    )
    store = Store(str(store_root))
    write_namespace(store, index.spec, "b", other)  # a concurrent writer, committed at once
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("b", 3)]
    before_b = files_under(namespace_dir(store_root, index.name, "b"))
    job = index.wait_for_import(op.id, timeout=120)
    assert job.status == "Failed", job
    assert job.error == (
        'The namespace "b" already exists. Imports are only allowed into nonexistent namespaces.'
    )
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("b", 3)]
    assert index.describe_index_stats().total_vector_count == 3
    assert manifests.manifest_versions(store, index.name, "a") == []
    assert files_under(namespace_dir(store_root, index.name, "a")) == []
    assert files_under(namespace_dir(store_root, index.name, "b")) == before_b
    assert leftovers(store_root, index.name, job.id)["staging"] == []
    assert leftovers(store_root, index.name, job.id)["committed"] == []
    # nothing of the failed import anywhere under namespaces/
    for f in files_under(index_dir(store_root, index.name) / "namespaces"):
        assert job.id not in f, f


@pytest.mark.parametrize("mode", ["continue", "abort"])
def test_failed_import_leaves_nothing_in_the_store(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    """A three-namespace import whose last namespace has a bad record (ABORT)
    or only bad records (CONTINUE): nothing of any namespace is visible or
    stored; only the job record (and its reject report) remain."""
    dense_import(src, {"a": 3000, "b": 3000}, dim=8, files=2)
    bad = dense_table(["c1", "c2"], np.full((2, 8), np.nan, dtype=np.float32))
    write(src / "c" / "0.parquet", bad)
    index = make_index()
    job = run_import(index, src, mode)
    assert job.status == "Failed"
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT
    assert index.list_namespaces() == []
    assert index.describe_index_stats().total_vector_count == 0
    everything = files_under(index_dir(store_root, index.name))
    allowed_prefixes = (f"imports/{job.id}.json", f"imports/{job.id}/rejects/", "index.json",
                        "_logged/%TRACKED",  # created with the index (docs/catalog.md)
                        f"imports/{job.id}/_attempts/")
    assert [f for f in everything if not f.startswith(allowed_prefixes)] == []


def test_concurrent_imports_of_one_namespace_one_wins(
    make_index: Callable[..., Index], store_root: Path, tmp_path: Path
) -> None:
    """Two imports of namespace "a" at once: exactly one Completed, and the
    visible "a" is its data; the other Failed and left nothing."""
    one, two = tmp_path / "one", tmp_path / "two"
    dense_import(one, {"a": 4000}, dim=8, seed=1)
    dense_import(two, {"a": 3000}, dim=8, seed=2)
    index = make_index()
    ops = [index.start_import(uri=str(one)), index.start_import(uri=str(two))]
    jobs = [index.wait_for_import(op.id, timeout=120) for op in ops]
    assert sorted(j.status for j in jobs) == ["Completed", "Failed"], jobs
    won = next(j for j in jobs if j.status == "Completed")
    lost = next(j for j in jobs if j.status == "Failed")
    assert lost.error is not None and 'The namespace "a"' in lost.error
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [
        ("a", won.records_imported)
    ]
    store = Store(str(store_root))
    m = manifests.load_namespace(store, index.name, "a")
    assert m is not None and m.import_id == won.id
    assert manifests.manifest_versions(store, index.name, "a") == [m.version]
    assert leftovers(store_root, index.name, lost.id)["staging"] == []
    for f in files_under(index_dir(store_root, index.name) / "namespaces"):
        assert lost.id not in f, f


def test_import_loses_to_an_import_already_committing_the_namespace(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """Import X has written its manifest of "a" and is about to write its commit
    marker (simulated in the store: X's manifest without a marker) when import
    Y of "a" commits. Y must not commit a later version: once X's marker lands,
    X's data would be shadowed by Y's although X reports Completed, and two
    imports would have created the same namespace. Y fails instead."""
    index = make_index(dimension=8)
    store = Store(str(store_root))
    x_id = "0000000000000001aaaaaaaa"
    x_table = records_to_table(
        [{"id": f"x{i}", "values": v} for i, v in enumerate(vectors(5, 8, seed=4))], index.spec
    )
    write_namespace(store, index.spec, "a", x_table, import_id=x_id, owner=x_id)
    assert index.list_namespaces() == []  # X is not committed yet
    dense_import(src, {"a": 100}, dim=8)
    y = run_import(index, src)
    assert y.status == "Failed", y
    assert y.error == (
        f'The namespace "a" is being created by another import ({x_id}). Imports are only '
        "allowed into nonexistent namespaces."
    )
    manifests.mark_import_committed(store, index.name, x_id)  # X's commit point
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("a", 5)]
    assert manifests.manifest_versions(store, index.name, "a") == [1]
    for f in files_under(index_dir(store_root, index.name) / "namespaces"):
        assert y.id not in f, f


def test_reimport_after_delete_namespace(
    make_index: Callable[..., Index], store_root: Path, tmp_path: Path
) -> None:
    """A deleted namespace (a visible tombstone) can be imported again."""
    one, two = tmp_path / "one", tmp_path / "two"
    dense_import(one, {"a": 300}, dim=8, seed=1)
    dense_import(two, {"a": 200}, dim=8, seed=2)
    index = make_index()
    assert run_import(index, one).status == "Completed"
    index.delete_namespace("a")
    assert index.list_namespaces() == []
    job = run_import(index, two)
    assert (job.status, job.error) == ("Completed", None), job
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("a", 200)]
    store = Store(str(store_root))
    m = manifests.load_namespace(store, index.name, "a")
    assert m is not None and m.import_id == job.id and m.version == 3  # 1 import, 2 tombstone
