"""Batch loads (``start_import(mode="upsert")``, issue 12 item 1) on a real
Dask LocalCluster and a local store: records of a load replace those of the
same id, new ids are added, existing namespaces are assigned to their own
centroids (no training), the whole load is one decision, and a failing or
cancelled load leaves nothing visible and no file behind.

Each state is checked record by record against a plain dict model
(id -> (values, metadata)), through the public API: fetch of every id,
``describe_index_stats``, ``list``, and an exact query (``nprobe`` past the
cluster count).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datagen import dense_table, files_under, namespace_dir, split_write, vectors, wait_until

from vecstore import layout, manifests
from vecstore.api import Index
from vecstore.schemas import ImportJob
from vecstore.storage import Store

pytestmark = [pytest.mark.dask]

DIM = 8
TIMEOUT = 240.0
Model = dict[str, dict[str, tuple[np.ndarray, dict[str, Any] | None]]]


def write_records(
    root: Path, ns_dir: str, ids: list[str], vals: np.ndarray, *, files: int = 1,
    tag: str = "part", meta: bool = True,
) -> None:
    metadata = [json.dumps({"src": tag, "n": i}) for i in range(len(ids))] if meta else None
    split_write(root / ns_dir, dense_table(ids, vals, metadata), files, prefix=tag)


def apply_to_model(model: Model, ns: str, ids: list[str], vals: np.ndarray, tag: str) -> None:
    mine = model.setdefault(ns, {})
    for i, (id_, v) in enumerate(zip(ids, vals, strict=True)):
        mine[id_] = (v, {"src": tag, "n": i})


def run(index: Index, uri: Path, *, mode: str = "upsert", error_mode: str = "continue",
        **kw: Any) -> ImportJob:
    op = index.start_import(uri=str(uri), error_mode=error_mode, mode=mode, **kw)
    return index.wait_for_import(op.id, timeout=TIMEOUT)


def cancel_then_rerun(index: Index, root: Path, files: int) -> ImportJob:
    """Cancel a load of ``root`` while it scans, run it again, and check the
    rerun loads each file once (all of them if the cancel won, none if the
    cancel came after the marker); the rerun's job."""
    op = index.start_import(uri=str(root), mode="upsert")
    wait_until(lambda: index.describe_import(op.id).phase in ("scan", "dedup", "write")
               or index.describe_import(op.id).status != "InProgress",
               timeout=TIMEOUT, what="the load to scan")
    index.cancel_import(op.id)
    cancelled = index.wait_for_import(op.id, timeout=TIMEOUT)
    rerun = run(index, root)
    assert rerun.status == "Completed", rerun
    if cancelled.status == "Cancelled":
        assert (rerun.files_skipped, rerun.files_loaded) == (0, files)
    else:  # the cancel came after the marker: the rerun skips every file
        assert (rerun.files_skipped, rerun.files_loaded) == (files, 0)
    return rerun


def assert_matches(index: Index, model: Model) -> None:
    """The index holds exactly the model's records (built or not)."""
    stats = index.describe_index_stats()
    assert {ns: s.vector_count for ns, s in stats.namespaces.items()} == {
        ns: len(recs) for ns, recs in model.items()
    }
    for ns, recs in model.items():
        listed = sorted(i for page in index.list(namespace=ns) for i in page)
        assert listed == sorted(recs), ns
        ids = sorted(recs)
        for start in range(0, len(ids), 500):
            got = index.fetch(ids[start : start + 500], namespace=ns).vectors
            for id_ in ids[start : start + 500]:
                want_v, want_m = recs[id_]
                assert id_ in got, (ns, id_)
                np.testing.assert_allclose(got[id_].values, want_v, rtol=1e-6, err_msg=id_)
                assert (got[id_].metadata or None) == want_m, id_
        # exact search: each probed record is its own nearest neighbour
        for id_ in ids[:: max(1, len(ids) // 5)]:
            res = index.query(vector=recs[id_][0].tolist(), top_k=1, namespace=ns, nprobe=100_000)
            assert res.matches[0].id == id_, (ns, id_)


def data_files(store_root: Path, index: str, ns: str) -> set[str]:
    return {f for f in files_under(namespace_dir(store_root, index, ns)) if f.startswith("data/")}


def job_files(store_root: Path, index: str, job_id: str) -> list[str]:
    """Data files of the job anywhere in the index, and its staged loads."""
    root = Path(store_root) / layout.index_prefix(index)
    out = [f for f in files_under(root / "namespaces") if f"/data/{job_id}-" in f"/{f}"]
    out += files_under(root / "imports" / job_id / "loads")
    out += files_under(root / "imports" / job_id / "staging")
    return out


@pytest.fixture
def base(make_index: Callable[..., Index], tmp_path: Path) -> tuple[Index, Model]:
    """An index with namespace "a" (3,000 records in several clusters) imported."""
    index = make_index(dimension=DIM, metric="euclidean")
    ids = [f"a-{i}" for i in range(3000)]
    vals = vectors(3000, DIM, seed=1)
    root = tmp_path / "base"
    write_records(root, "a", ids, vals, files=2, tag="base")
    job = run(index, root, mode="create")
    assert job.status == "Completed", job
    model: Model = {}
    apply_to_model(model, "a", ids, vals, "base")
    return index, model


def test_load_into_existing_namespace_overwrites_and_adds(
    base: tuple[Index, Model], store_root: Path, tmp_path: Path
) -> None:
    index, model = base
    store = Store(str(store_root))
    before = manifests.load_namespace(store, index.name, "a")
    assert before is not None and before.centroids
    # 600 overwrites of existing ids, 900 new ids, in 3 files
    ids = [f"a-{i}" for i in range(0, 3000, 5)] + [f"a-new-{i}" for i in range(900)]
    vals = vectors(len(ids), DIM, seed=2)
    root = tmp_path / "load1"
    write_records(root, "a", ids, vals, files=3, tag="load1")
    job = run(index, root)
    assert job.status == "Completed", job
    assert (job.mode, job.records_imported, job.records_upserted) == ("upsert", 1500, 1500)
    assert job.namespaces["a"].records_imported == 1500
    apply_to_model(model, "a", ids, vals, "load1")
    assert_matches(index, model)
    # the load did not train: the namespace keeps its centroids
    after = manifests.load_namespace(store, index.name, "a")
    assert after is not None and after.centroids == before.centroids
    # the job record says it is a load; an import's record does not carry the fields
    raw = json.loads(store.read_bytes(layout.job_key(index.name, job.id)))
    assert raw["mode"] == "upsert" and raw["records_upserted"] == 1500
    first = next(j for j in index.list_imports() if j.mode == "create")
    raw0 = json.loads(store.read_bytes(layout.job_key(index.name, first.id)))
    assert "mode" not in raw0 and "records_upserted" not in raw0
    # no namespace to create: the commit marker is still the load's decision
    assert store.exists(layout.commit_marker_key(index.name, job.id))
    # no scratch left behind
    assert files_under(store_root / layout.staging_prefix(index.name, job.id)) == []


def test_load_new_and_existing_namespaces_in_one_load(
    base: tuple[Index, Model], tmp_path: Path
) -> None:
    index, model = base
    root = tmp_path / "load2"
    a_ids = [f"a-{i}" for i in range(100)] + [f"a-x{i}" for i in range(50)]
    a_vals = vectors(len(a_ids), DIM, seed=3)
    b_ids = [f"b-{i}" for i in range(2500)]
    b_vals = vectors(len(b_ids), DIM, seed=4)
    c_ids = [f"c-{i}" for i in range(40)]  # small: packed
    c_vals = vectors(len(c_ids), DIM, seed=5)
    write_records(root, "a", a_ids, a_vals, tag="l2")
    write_records(root, "b", b_ids, b_vals, files=2, tag="l2")
    write_records(root, "c", c_ids, c_vals, tag="l2")
    job = run(index, root)
    assert job.status == "Completed", job
    assert job.records_imported == 150 + 2500 + 40
    for ns, ids, vals in (("a", a_ids, a_vals), ("b", b_ids, b_vals), ("c", c_ids, c_vals)):
        apply_to_model(model, ns, ids, vals, "l2")
    assert_matches(index, model)


def test_load_small_existing_namespace_is_packed_and_assigned(
    make_index: Callable[..., Index], tmp_path: Path, store_root: Path
) -> None:
    """A small existing namespace goes through the packed task: its own
    centroids (read in the task), no training, no centroids file written."""
    index = make_index(dimension=DIM, metric="euclidean")
    model: Model = {}
    ids = [f"s-{i}" for i in range(300)]
    vals = vectors(300, DIM, seed=7)
    write_records(tmp_path / "i", "s", ids, vals, tag="i")
    assert run(index, tmp_path / "i", mode="create").status == "Completed"
    apply_to_model(model, "s", ids, vals, "i")
    store = Store(str(store_root))
    before = manifests.load_namespace(store, index.name, "s")
    assert before is not None
    ids2 = ids[:50] + [f"s-n{i}" for i in range(30)]
    vals2 = vectors(80, DIM, seed=8)
    write_records(tmp_path / "l", "s", ids2, vals2, tag="l")
    job = run(index, tmp_path / "l")
    assert job.status == "Completed" and job.records_upserted == 80, job
    apply_to_model(model, "s", ids2, vals2, "l")
    assert_matches(index, model)
    after = manifests.load_namespace(store, index.name, "s")
    assert after is not None and after.centroids == before.centroids
    assert not [f for f in data_files(store_root, index.name, "s")
                if f.endswith(".centroids") and job.id in f]


def test_create_mode_into_existing_namespace_keeps_pinecones_message(
    base: tuple[Index, Model], tmp_path: Path
) -> None:
    index, model = base
    root = tmp_path / "again"
    write_records(root, "a", ["a-0"], vectors(1, DIM, seed=9), tag="x")
    job = run(index, root, mode="create")
    assert job.status == "Failed"
    assert job.error == (
        'User error: The namespace "a" already exists. Imports are only allowed into '
        "nonexistent namespaces."
    ) or job.error == (
        'The namespace "a" already exists. Imports are only allowed into nonexistent namespaces.'
    ), job.error
    assert_matches(index, model)


def test_invalid_mode_is_refused(base: tuple[Index, Model], tmp_path: Path) -> None:
    from vecstore.errors import InvalidArgumentError

    index, _ = base
    with pytest.raises(InvalidArgumentError, match="Invalid mode 'merge'"):
        index.start_import(uri=str(tmp_path), mode="merge")


def test_failing_load_leaves_nothing(
    base: tuple[Index, Model], store_root: Path, tmp_path: Path
) -> None:
    """ABORT mode, a bad record in the new namespace's file after the existing
    namespace's rows were staged: nothing of either is visible, no file left."""
    index, model = base
    before_a = data_files(store_root, index.name, "a")
    root = tmp_path / "bad"
    write_records(root, "a", [f"a-{i}" for i in range(200)], vectors(200, DIM, seed=10), tag="ok")
    bad_vals = vectors(300, DIM, seed=11)
    bad_vals[250, 3] = np.nan
    write_records(root, "z", [f"z-{i}" for i in range(300)], bad_vals, tag="bad")
    job = run(index, root, error_mode="abort")
    assert job.status == "Failed", job
    assert "z" in (job.error or "") or "NaN" in (job.error or "") or "row 250" in (job.error or "")
    assert job.records_imported == 0
    assert_matches(index, model)
    assert data_files(store_root, index.name, "a") == before_a
    assert job_files(store_root, index.name, job.id) == []
    assert not (namespace_dir(store_root, index.name, "z")).exists() or not data_files(
        store_root, index.name, "z"
    )


def test_cancelled_load_leaves_nothing(
    base: tuple[Index, Model], store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, model = base
    before_a = data_files(store_root, index.name, "a")
    root = tmp_path / "big"
    n = 200_000  # long enough that the cancel lands before the marker, also on a quiet machine
    monkeypatch.setenv("VECSTORE_CHUNK_BYTES", str(256 * 1024))  # many scan tasks
    write_records(root, "a", [f"a-c{i}" for i in range(n)], vectors(n, DIM, seed=12), files=20,
                  tag="c", meta=False)
    op = index.start_import(uri=str(root), mode="upsert")
    wait_until(lambda: index.describe_import(op.id).phase in ("scan", "dedup", "write"),
               timeout=TIMEOUT, what="the load to scan")
    index.cancel_import(op.id)
    job = index.wait_for_import(op.id, timeout=TIMEOUT)
    if job.status == "Completed":  # the cancel came after the marker: allowed, but not here
        pytest.skip("the load committed before the cancel was seen")
    assert job.status == "Cancelled" and job.records_imported == 0, job
    assert_matches(index, model)
    assert data_files(store_root, index.name, "a") == before_a
    assert job_files(store_root, index.name, job.id) == []


def write_deletes(root: Path, ns_dir: str, column: str, values: list[str], name: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = root / ns_dir / "deletes" / f"{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({column: pa.array(values, pa.string())}), path)


def delete_from_model(model: Model, ns: str, ids: list[str], prefixes: list[str]) -> None:
    recs = model.get(ns, {})
    for id_ in [*ids, *[i for i in recs if any(i.startswith(p) for p in prefixes)]]:
        recs.pop(id_, None)


def test_load_with_deletes_then_history_skips_then_force(
    base: tuple[Index, Model], store_root: Path, tmp_path: Path
) -> None:
    """Upserts, id deletes and prefix deletes in one load (deletes first, then
    the load's records); the same directory loaded again skips every file;
    a new file alone is loaded next; ``force`` loads everything again."""
    index, model = base
    root = tmp_path / "daily"
    ids = [f"a-1{i}" for i in range(5)] + [f"a-{i}" for i in range(2000, 2100)] + ["a-new-0"]
    vals = vectors(len(ids), DIM, seed=20)
    write_records(root, "a", ids, vals, tag="d1")
    del_ids = ["a-2", "a-3", "a-2050", "a-missing"]
    prefixes = ["a-1", "a-29"]
    write_deletes(root, "a", "id", del_ids, "ids")
    write_deletes(root, "a", "prefix", prefixes, "prefixes")
    write_deletes(root, "zz", "id", ["zz-0"], "ids")  # a namespace that does not exist
    job = run(index, root)
    assert job.status == "Completed", job
    assert (job.records_upserted, job.ids_deleted, job.prefixes_deleted) == (len(ids), 4, 2)
    assert (job.files_loaded, job.files_skipped) == (4, 0)
    delete_from_model(model, "a", del_ids, prefixes)
    apply_to_model(model, "a", ids, vals, "d1")  # the load's records come after its deletes
    assert "a-10" in model["a"] and "a-100" not in model["a"] and "a-2050" in model["a"]
    assert_matches(index, model)
    assert "zz" not in {n.name for n in index.list_namespaces()}

    again = run(index, root)
    assert again.status == "Completed", again
    assert (again.files_skipped, again.files_loaded, again.records_imported) == (4, 0, 0)
    assert_matches(index, model)

    more = [f"a-more-{i}" for i in range(20)]
    more_vals = vectors(20, DIM, seed=21)
    write_records(root, "a", more, more_vals, tag="d2")
    third = run(index, root)
    assert third.status == "Completed", third
    assert (third.files_skipped, third.files_loaded, third.records_upserted) == (4, 1, 20)
    apply_to_model(model, "a", more, more_vals, "d2")
    assert_matches(index, model)

    forced = run(index, root, force=True)
    assert forced.status == "Completed", forced
    assert (forced.files_skipped, forced.files_loaded) == (0, 5)
    delete_from_model(model, "a", del_ids, prefixes)
    apply_to_model(model, "a", ids, vals, "d1")
    apply_to_model(model, "a", more, more_vals, "d2")
    assert_matches(index, model)


def test_bad_delete_file_fails_the_load_before_anything_is_visible(
    base: tuple[Index, Model], store_root: Path, tmp_path: Path
) -> None:
    index, model = base
    root = tmp_path / "baddel"
    write_records(root, "a", ["a-0"], vectors(1, DIM, seed=22), tag="x")
    write_deletes(root, "a", "prefix", ["a-5", ""], "prefixes")
    job = run(index, root)
    assert job.status == "Failed", job
    assert 'row 1: empty "prefix"' in (job.error or ""), job.error
    assert_matches(index, model)
    assert job_files(store_root, index.name, job.id) == []
    # the files were not marked loaded: fixed, the same directory loads
    write_deletes(root, "a", "prefix", ["a-5"], "prefixes")
    ok = run(index, root)
    assert ok.status == "Completed" and ok.files_skipped == 0, ok


@pytest.mark.slow  # long: CI runs it (make test-slow)
def test_cancelled_load_then_rerun_loads_each_file_once(
    base: tuple[Index, Model], store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index, model = base
    root = tmp_path / "big2"
    n = 60_000
    monkeypatch.setenv("VECSTORE_CHUNK_BYTES", str(256 * 1024))
    ids = [f"a-c{i}" for i in range(n)]
    vals = vectors(n, DIM, seed=23)
    write_records(root, "a", ids, vals, files=6, tag="c", meta=False)
    cancel_then_rerun(index, root, 6)
    recs = model["a"]
    for id_, v in zip(ids, vals, strict=True):
        recs[id_] = (v, None)
    assert_matches(index, model)


def test_new_namespace_created_meanwhile_fails_the_load_clearly(
    base: tuple[Index, Model], store_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A namespace new at discovery that a write creates before the load's
    scan (its manifest is written by the scan's pack task, which then finds
    the namespace there): nothing of the load is committed (the existing
    namespace's part neither), the message says why, and the rerun loads
    into it."""
    from vecstore.pipelines.driver import ImportDriver

    index, model = base
    root = tmp_path / "race"
    write_records(root, "a", ["a-0"], vectors(1, DIM, seed=30), tag="r")
    n_ids = [f"n-{i}" for i in range(50)]
    n_vals = vectors(50, DIM, seed=31)
    write_records(root, "n", n_ids, n_vals, tag="r")
    real = ImportDriver._scan
    other = vectors(1, DIM, seed=32)[0].tolist()

    def racing(self: ImportDriver, *args: Any) -> Any:
        index.upsert([("n-other", other)], namespace="n")
        return real(self, *args)

    monkeypatch.setattr(ImportDriver, "_scan", racing)
    job = run(index, root)
    assert job.status == "Failed", job
    assert job.error is not None and 'The namespace "n" was created by another writer' in job.error
    model["n"] = {"n-other": (np.asarray(other, np.float32), None)}
    assert_matches(index, model)
    assert job_files(store_root, index.name, job.id) == []
    monkeypatch.setattr(ImportDriver, "_scan", real)
    again = run(index, root)
    assert again.status == "Completed" and again.files_skipped == 0, again
    apply_to_model(model, "a", ["a-0"], vectors(1, DIM, seed=30), "r")
    apply_to_model(model, "n", n_ids, n_vals, "r")
    assert_matches(index, model)


def test_load_into_sparse_namespace_and_unbuilt_namespace(
    make_index: Callable[..., Index], tmp_path: Path
) -> None:
    """Existing namespaces without centroids: a sparse index's (rows bucketed
    by chunk, no assignment), and a dense namespace created by upserts and
    never built (rows left for the builder)."""
    import pyarrow as pa
    from datagen import random_sparse, sparse_array, write

    sp = make_index(name="sp", vector_type="sparse")
    rows = random_sparse(600, seed=40)
    write(tmp_path / "s0" / "ns" / "0.parquet",
          pa.table({"id": [f"s{i}" for i in range(600)], "sparse_values": sparse_array(rows)}))
    assert run(sp, tmp_path / "s0", mode="create").status == "Completed"
    rows2 = random_sparse(300, seed=41)
    ids2 = [f"s{i}" for i in range(0, 600, 3)] + [f"t{i}" for i in range(100)]
    write(tmp_path / "s1" / "ns" / "0.parquet",
          pa.table({"id": ids2, "sparse_values": sparse_array(rows2)}))
    job = run(sp, tmp_path / "s1")
    assert job.status == "Completed" and job.records_upserted == 300, job
    want = {f"s{i}": r for i, r in enumerate(rows)} | dict(zip(ids2, rows2, strict=True))
    assert sp.describe_index_stats().namespaces["ns"].vector_count == len(want)
    ids = sorted(want)
    got = {}
    for s in range(0, len(ids), 500):
        got.update(sp.fetch(ids[s : s + 500], namespace="ns").vectors)
    assert sorted(got) == ids
    for id_, (idx, vals) in want.items():
        sv = got[id_].sparse_values
        assert sv is not None and list(sv.indices) == idx, id_
        np.testing.assert_allclose(sv.values, vals, rtol=1e-6)

    dense = make_index(name="up", dimension=DIM, metric="euclidean")
    model: Model = {}
    first = vectors(20, DIM, seed=42)
    dense.upsert([(f"u{i}", first[i].tolist()) for i in range(20)], namespace="u")
    model["u"] = {f"u{i}": (first[i], None) for i in range(20)}
    ids3 = [f"u{i}" for i in range(10)] + [f"v{i}" for i in range(990)]
    vals3 = vectors(1000, DIM, seed=43)
    write_records(tmp_path / "u1", "u", ids3, vals3, tag="u1")
    job = run(dense, tmp_path / "u1")
    assert job.status == "Completed" and job.records_upserted == 1000, job
    apply_to_model(model, "u", ids3, vals3, "u1")
    assert_matches(dense, model)


def test_cancel_after_the_marker_completes_the_load(
    base: tuple[Index, Model], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vecstore.pipelines.driver import ImportDriver

    index, model = base
    root = tmp_path / "late"
    ids = [f"a-{i}" for i in range(50)] + [f"a-late{i}" for i in range(50)]
    vals = vectors(100, DIM, seed=50)
    write_records(root, "a", ids, vals, tag="late")
    real = ImportDriver._roll_forward

    def cancelled_first(self: ImportDriver) -> None:
        index.cancel_import(self.job.id)  # after the marker: the load is decided
        real(self)

    monkeypatch.setattr(ImportDriver, "_roll_forward", cancelled_first)
    job = run(index, root)
    assert (job.status, job.records_upserted) == ("Completed", 100), job
    apply_to_model(model, "a", ids, vals, "late")
    assert_matches(index, model)


def test_deletes_only_load(base: tuple[Index, Model], tmp_path: Path) -> None:
    index, model = base
    root = tmp_path / "dels"
    write_deletes(root, "a", "id", ["a-7", "a-8"], "ids")
    write_deletes(root, "a", "prefix", ["a-99"], "pre")
    job = run(index, root)
    assert job.status == "Completed", job
    assert (job.records_upserted, job.ids_deleted, job.prefixes_deleted) == (0, 2, 1)
    delete_from_model(model, "a", ["a-7", "a-8"], ["a-99"])
    assert_matches(index, model)
    again = run(index, root)
    assert (again.status, again.files_skipped, again.ids_deleted) == ("Completed", 2, 0), again
    assert_matches(index, model)
