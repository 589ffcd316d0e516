"""Offline rebuilds (issue 12 item 4): a job that re-clusters a namespace at an
LSN, commits atomically, keeps every write made meanwhile, and reports the
cluster balance and estimated recall before and after. Real local stores."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecstore import Index, NotFoundError, VecStore, builder, manifests, quality
from vecstore.rebuild import rebuild_namespace

D = 16
NS = "ns"


@pytest.fixture(autouse=True)
def _no_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")


def _index(tmp_path: Path, metric: str = "euclidean") -> Index:
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index(name="m", dimension=D, metric=metric)
    return vs.Index("m")


def _load(index: Index, model: dict[str, list[float]], prefix: str, n: int, seed: int) -> None:
    x = np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)
    for s in range(0, n, 1000):
        batch = [(f"{prefix}{j}", x[j].tolist()) for j in range(s, min(n, s + 1000))]
        index.upsert(batch, namespace=NS)
        model.update(dict(batch))


def _state(index: Index) -> dict[str, list[float]]:
    ids = [i for page in index.list(namespace=NS) for i in page]
    out: dict[str, list[float]] = {}
    for s in range(0, len(ids), 1000):
        got = index.fetch(ids[s : s + 1000], namespace=NS).vectors
        out.update({i: list(v.values) for i, v in got.items()})
    return out


def _same(index: Index, model: dict[str, list[float]]) -> None:
    got = _state(index)
    assert set(got) == set(model)
    for i, v in model.items():
        assert got[i] == pytest.approx(v), i


def test_rebuild_grown_namespace_changes_k_and_reports_quality(tmp_path: Path) -> None:
    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 3000, 0)
    index.build(namespace=NS)
    before = manifests.load_namespace(index.store, "m", NS)
    assert before is not None and len(before.clusters) == 2
    _load(index, model, "b", 3000, 1)  # grows 2x; the builder keeps 2 clusters
    index.build(namespace=NS)
    grown = manifests.load_namespace(index.store, "m", NS)
    assert grown is not None and len(grown.clusters) == 2
    drift = index.drift(NS)[NS]
    assert drift["added_fraction"] == pytest.approx(0.5) and drift["rebuild_advised"]

    [job] = index.rebuild(NS)
    assert job.kind == "rebuild" and job.status == "Completed", job.error
    rep = job.report or {}
    assert rep["k_before"] == 2 and rep["k_after"] == 5  # choose_k(6000)
    assert rep["records"] == 6000 and rep["balance_after"]["clusters"] == 5
    assert rep["balance_before"]["largest"] >= rep["balance_before"]["smallest"] > 0
    assert 0.0 <= rep["recall_after"] <= 1.0 and rep["recall_before"] is not None
    # stored in the job record
    assert index.describe_job(job.id).report == rep
    after = manifests.load_namespace(index.store, "m", NS)
    assert after is not None and after.version == grown.version + 1
    assert after.applied_lsn == grown.applied_lsn and after.trained_records == 6000
    assert all(c.segment.startswith(f"data/{job.id}-") for c in after.clusters)
    assert index.drift(NS)[NS]["added_fraction"] == 0.0
    _same(index, model)
    # records_per_cluster decides k
    [job2] = index.rebuild(NS, records_per_cluster=600)
    assert job2.status == "Completed" and (job2.report or {})["k_after"] == 10
    _same(index, model)


def test_rebuild_with_concurrent_upserts_loses_nothing(tmp_path: Path) -> None:
    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 4000, 0)
    index.build(namespace=NS)
    stop = threading.Event()
    errors: list[BaseException] = []
    writer = VecStore(str(tmp_path / "store")).Index("m")  # another client
    rng = np.random.default_rng(7)
    lock = threading.Lock()

    def write() -> None:
        n = 0
        try:
            while not stop.is_set() or n < 5:
                recs = [
                    (f"w{n}-{j}", rng.normal(size=D).astype(np.float32).tolist()) for j in range(50)
                ]
                recs.append((f"a{n}", rng.normal(size=D).astype(np.float32).tolist()))  # overwrite
                writer.upsert(recs, namespace=NS)
                writer.delete(ids=[f"a{1000 + n}"], namespace=NS)
                with lock:
                    model.update(dict(recs))
                    model.pop(f"a{1000 + n}", None)
                n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=write)
    t.start()
    try:
        [job] = index.rebuild(NS)
    finally:
        stop.set()
        t.join()
    assert not errors and job.status == "Completed", job.error
    _same(index, model)  # writes after the snapshot are replayed from the log
    index.build(namespace=NS)
    _same(index, model)


def _spec_store(index: Index) -> tuple[Any, Any]:
    return index.spec, index.store


@pytest.mark.parametrize("past_snapshot", [False, True])
def test_a_build_landing_during_the_rebuild_is_kept(tmp_path: Path, past_snapshot: bool) -> None:
    """A build commits between the snapshot and the rebuild's commit: folded
    up to the snapshot LSN (committed on top) or past it (the difference is
    folded into the rebuilt clusters). Reads keep the old version until then."""
    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 3000, 0)
    index.build(namespace=NS)
    _load(index, model, "b", 500, 1)  # tail at the snapshot
    spec, store = _spec_store(index)
    q = model["a5"]
    seen: list[str] = []

    def race() -> None:
        if seen:
            return
        # reads during the rebuild: the old version answers, the tail included
        res = index.query(vector=q, top_k=1, namespace=NS, include_values=False)
        seen.append(res.matches[0].id)
        if past_snapshot:
            _load(index, model, "c", 300, 2)  # entries after the snapshot ...
        assert builder.fold(store, spec, NS).status == "built"  # ... folded by a build

    rep = rebuild_namespace(store, spec, NS, owner="rtest", before_commit=race)
    assert seen == ["a5"]
    m = manifests.load_namespace(store, "m", NS)
    assert m is not None and m.version == rep.version
    assert rep.folded_after_snapshot == (1 if past_snapshot else 0)
    assert m.applied_lsn == rep.applied_lsn
    index.reader.tracker.invalidate(NS)
    _same(index, model)


def test_rebuild_of_a_deleted_namespace_commits_nothing(tmp_path: Path) -> None:
    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 1200, 0)
    index.build(namespace=NS)
    spec, store = _spec_store(index)

    def delete() -> None:
        index.delete_namespace(NS)

    with pytest.raises(NotFoundError, match="deleted or re-created"):
        rebuild_namespace(store, spec, NS, owner="rdel", before_commit=delete)
    assert manifests.load_namespace(store, "m", NS) is None
    with pytest.raises(NotFoundError):
        index.rebuild(NS)


def test_failed_rebuild_job_cleans_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 1200, 0)
    index.build(namespace=NS)
    from vecstore import rebuild as rb

    def boom(*a: Any, **k: Any) -> Any:
        raise rb.CommitConflictError("kept changing")

    monkeypatch.setattr(rb, "_commit", boom)
    [job] = index.rebuild(NS)
    assert job.status == "Failed" and "kept changing" in (job.error or "")
    data = index.store.ls(f"indexes/m/namespaces/{NS}/data")
    assert not [k for k in data if k.rsplit("/", 1)[-1].startswith(f"{job.id}-")]
    _same(index, model)


def test_recall_estimate_and_balance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 8)).astype(np.float32)
    from vecstore import kmeans

    c = kmeans.fit(x, 40, seed=0)
    a = kmeans.assign(x, c)
    full = quality.estimate_recall(x, a, c, "euclidean", nprobe=40)
    assert full == 1.0  # every cluster probed: exact
    one = quality.estimate_recall(x, a, c, "euclidean", nprobe=1)
    assert one is not None and one < 0.9
    tail = quality.estimate_recall(x, np.full(len(x), -1), c, "euclidean", nprobe=1)
    assert tail == 1.0  # records in no cluster are searched exactly
    b = quality.balance([10, 0, 30, 20])
    assert (b.clusters, b.largest, b.smallest, b.mean, b.ratio) == (3, 30, 10, 20.0, 1.5)


def test_rebuild_in_the_background_can_be_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 1200, 0)
    index.build(namespace=NS)
    from vecstore import kmeans

    started, go = threading.Event(), threading.Event()
    real_fit = kmeans.fit

    def slow_fit(*a: Any, **k: Any) -> Any:
        started.set()
        go.wait(30)
        return real_fit(*a, **k)

    monkeypatch.setattr(kmeans, "fit", slow_fit)
    [job] = index.rebuild(NS, wait=False)
    assert started.wait(30)
    assert index.describe_job(job.id).status == "InProgress"
    index.cancel_job(job.id)
    go.set()
    final = index.wait_for_job(job.id, timeout=60)
    assert final.status == "Cancelled" and final.kind == "rebuild"
    data = index.store.ls(f"indexes/m/namespaces/{NS}/data")
    assert not [k for k in data if k.rsplit("/", 1)[-1].startswith(f"{job.id}-")]
    _same(index, model)
    # and one left alone completes
    monkeypatch.setattr(kmeans, "fit", real_fit)
    [job2] = index.rebuild(NS, wait=False)
    assert index.wait_for_job(job2.id, timeout=120).status == "Completed"


def test_a_rebuild_whose_process_died_is_taken_over_and_completed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from vecstore.jobs import JobStore, new_job_id
    from vecstore.schemas import ImportJob

    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 1200, 0)
    index.build(namespace=NS)
    _load(index, model, "b", 1200, 1)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    job = ImportJob(
        id=new_job_id(),
        kind="rebuild",
        index="m",
        uri=index.store.uri,
        status="InProgress",
        created_at=long_ago,
        heartbeat_at=long_ago,
        runner="elsewhere:1:1",
        report={"namespace": NS, "records_per_cluster": 300},
    )
    JobStore(index.store, "m").create(job)
    # an orphan of the dead attempt
    index.store.write_bytes(f"indexes/m/namespaces/{NS}/data/{job.id}-dead.parquet", b"x")
    final = index.wait_for_job(job.id, timeout=120)
    assert final.status == "Completed" and final.attempt == 2, final.error
    assert (final.report or {})["k_after"] == 8
    _same(index, model)
    # the dead attempt's orphan went with the take-over's cleanup
    assert not index.store.exists(f"indexes/m/namespaces/{NS}/data/{job.id}-dead.parquet")
    index.vacuum(older_than=0)
    _same(index, model)


# ------------------------------------------------- the rebuild's fast paths


def test_rebuild_of_delta_clusters_with_a_shadowing_tail(tmp_path: Path) -> None:
    """Clusters with delta segments and deleted rows (format 3), and a tail at
    the snapshot that overwrites and deletes records of them: the vectors
    gathered on several threads leave gaps that are closed, row for row."""
    index = _index(tmp_path)
    model: dict[str, list[float]] = {}
    _load(index, model, "a", 3000, 0)
    index.build(namespace=NS)
    rng = np.random.default_rng(5)
    over = [(f"a{j}", rng.normal(size=D).astype(np.float32).tolist()) for j in range(0, 3000, 30)]
    index.upsert(over, namespace=NS)
    index.delete(ids=[f"a{j}" for j in range(1, 3000, 40)], namespace=NS)
    model.update(dict(over))
    for j in range(1, 3000, 40):
        model.pop(f"a{j}")
    index.build(namespace=NS)
    built = manifests.load_namespace(index.store, "m", NS)
    assert built is not None and any(c.deltas or c.deleted for c in built.clusters)
    # the tail at the snapshot: overwrites, deletes and new records
    over = [(f"a{j}", rng.normal(size=D).astype(np.float32).tolist()) for j in range(2, 3000, 25)]
    index.upsert(over, namespace=NS)
    index.delete(ids=[f"a{j}" for j in range(3, 3000, 35)], namespace=NS)
    model.update(dict(over))
    for j in range(3, 3000, 35):
        model.pop(f"a{j}", None)
    _load(index, model, "n", 400, 9)
    [job] = index.rebuild(NS)
    assert job.status == "Completed", job.error
    rep = job.report or {}
    assert rep["records"] == len(model)
    assert set(rep["phase_seconds"]) == {"read", "train", "assign", "write", "commit"}
    _same(index, model)


def test_gather_closes_gaps_and_keeps_parts_larger_than_reserved() -> None:
    import pyarrow as pa

    from vecstore.rebuild import _Gather
    from vecstore.schemas import IndexSpec
    from vecstore.segments import dense_matrix, fixed_list

    spec = IndexSpec(name="g", dimension=4, metric="euclidean")
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(n, 4)).astype(np.float32) for n in (5, 0, 3, 7)]

    def table(x: np.ndarray) -> pa.Table:
        return pa.table({"id": [str(i) for i in range(len(x))], "values": fixed_list(x)})

    exact = _Gather([5, 0, 3, 7], spec)
    for i, x in enumerate(parts):
        assert exact.put(i, table(x)).column_names == ["id"]
    assert np.array_equal(exact.matrix(), np.concatenate(parts))
    assert exact.matrix() is exact.x  # no gap: the matrix itself, no copy
    # part 0 got fewer rows than reserved, part 3 more: same rows, in part order
    odd = _Gather([6, 0, 3, 2], spec)
    for i, x in reversed(list(enumerate(parts))):
        odd.put(i, table(x))
    assert np.array_equal(odd.matrix(), np.concatenate(parts))
    assert dense_matrix(fixed_list(odd.matrix()), 4).shape == (15, 4)


def test_threaded_assignment_matches_the_serial_one() -> None:
    from vecstore import kmeans

    rng = np.random.default_rng(1)
    x = rng.normal(size=(3 * kmeans._BLOCK + 123, 12)).astype(np.float32)
    c = rng.normal(size=(37, 12)).astype(np.float32)
    for metric in ("euclidean", "cosine"):
        serial = kmeans.assign(x, c, metric=metric)
        assert np.array_equal(kmeans.assign(x, c, metric=metric, threads=2), serial)
        assert np.array_equal(kmeans.assign(x, c, metric=metric, threads=3), serial)
    # the exact nearest centroid (euclidean)
    d = ((x[:500, None, :] - c[None, :, :]) ** 2).sum(-1)
    assert np.array_equal(kmeans.assign(x[:500], c, threads=2), d.argmin(1))


def test_write_groups_with_a_vector_matrix_writes_the_same_segments(tmp_path: Path) -> None:
    import pyarrow as pa

    from vecstore import layout
    from vecstore.segments import fixed_list, read_cluster

    index = _index(tmp_path)
    spec, store = _spec_store(index)
    rng = np.random.default_rng(2)
    n = 5000
    x = rng.normal(size=(n, D)).astype(np.float32)
    table = builder._concat(
        [pa.table({"id": [f"r{i}" for i in range(n)], "values": fixed_list(x)})], spec
    )
    assert table is not None
    a = rng.integers(0, 40, n).astype(np.int64)
    plain = builder._write_groups(store, spec, NS, "p", table, a)
    fast = builder._write_groups(store, spec, NS, "f", table, a, vectors=x)
    prefix = layout.namespace_prefix(spec.name, NS)
    assert [e.id for e, _ in plain] == [e.id for e, _ in fast] == list(range(40))
    for (ep, ip), (ef, idf) in zip(plain, fast, strict=True):
        assert ip.equals(idf) and ep.row_count == ef.row_count
        assert read_cluster(store, prefix, ep).equals(read_cluster(store, prefix, ef))
    # every row once, in its cluster, with its own vector
    got = {}
    for e, _ in fast:
        t = read_cluster(store, prefix, e)
        v = np.asarray(t.column("values").combine_chunks().values).reshape(-1, D)
        for i, row in zip(t.column("id").to_pylist(), v, strict=True):
            got[i] = (e.id, row)
    assert len(got) == n
    for i in range(n):
        cid, row = got[f"r{i}"]
        assert cid == a[i] and np.array_equal(row, x[i])
