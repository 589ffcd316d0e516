"""Issue 10 item 3 on a real Dask cluster: files an import's commit is about to
reference are deleted just before the commit (a real deletion of the
namespace's data folder, from a hook at the start of the commit's file check):
the job ends Failed naming the file, nothing of the import becomes visible,
and queries of the namespaces already there are unaffected."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from datagen import dense_import, files_under, index_dir, leftovers, run_import, vectors

from vecstore import commit, layout, manifests
from vecstore.api import Index
from vecstore.schemas import Manifest
from vecstore.storage import Store

pytestmark = pytest.mark.dask


def test_files_deleted_before_commit_fail_the_job(
    make_index: Callable[..., Index],
    store_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    dense_import(first, {"keep": 500}, dim=8, seed=1)
    dense_import(second, {"a": 400, "b": 300}, dim=8, seed=2)
    index = make_index()
    assert run_import(index, first).status == "Completed"
    probe = vectors(1, 8, seed=5)[0].tolist()
    before = index.query(vector=probe, top_k=5, namespace="keep")

    real = commit.check_files
    removed: list[str] = []

    def delete_then_check(store: Store, idx: str, ms: Sequence[Manifest], *a: Any) -> None:
        if any(m.namespace == "b" for m in ms) and not removed:
            removed.extend(k for k, _ in store.walk_files(layout.data_prefix(idx, "b")))
            store.delete_prefix(layout.data_prefix(idx, "b"))  # someone rm -r's the folder
        real(store, idx, ms, *a)

    monkeypatch.setattr(commit, "check_files", delete_then_check)
    job = run_import(index, second)

    assert removed, "the hook did not run"
    assert job.status == "Failed", job
    assert job.error is not None
    assert job.error.startswith("Commit refused: file ")
    assert 'referenced by namespace "b" does not exist' in job.error
    assert any(Path(k).name in job.error for k in removed), job.error
    assert job.error.endswith("Nothing was committed.")
    assert [(n.name, n.record_count) for n in index.list_namespaces()] == [("keep", 500)]
    after = index.query(vector=probe, top_k=5, namespace="keep")
    assert [m.id for m in after.matches] == [m.id for m in before.matches]
    store = Store(str(store_root))
    assert manifests.manifest_versions(store, index.name, "a") == []
    assert manifests.manifest_versions(store, index.name, "b") == []
    assert leftovers(store_root, index.name, job.id)["committed"] == []
    for f in files_under(index_dir(store_root, index.name) / "namespaces"):
        assert job.id not in f, f
