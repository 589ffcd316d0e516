"""vecstore.loads: a batch load's log entry (staged segments by reference),
its roll-forward, prefix deletes, the builder reusing the load's cluster
assignment, and vacuum keeping staged segments while their entry lives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from segwriter import records_to_table, write_namespace
from test_builder import view_fetch, view_ids

from vecstore import builder, loads, manifests, tail, vacuum, wal, writes
from vecstore.errors import FormatError
from vecstore.resolve import id_locations
from vecstore.schemas import IndexSpec
from vecstore.storage import Store
from vecstore.writer import write_cluster

SPEC = IndexSpec(name="ix", dimension=8, metric="cosine")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    wal.clear_caches()


def _vec(rng: np.random.Generator) -> list[float]:
    return rng.normal(size=8).astype(np.float32).tolist()


def _base(store: Store, n: int = 1000) -> dict[str, tuple[list[float], dict[str, Any]]]:
    rng = np.random.default_rng(0)
    recs = [
        {"id": f"doc{i // 4}#{i % 4}", "values": _vec(rng), "metadata": {"i": i}} for i in range(n)
    ]
    write_namespace(store, SPEC, "ns", records_to_table(recs, SPEC), target_per_cluster=100)
    return {r["id"]: (r["values"], r["metadata"]) for r in recs}


def _stage(
    store: Store,
    recs: list[dict[str, Any]],
    clusters: list[int],
    *,
    load_id: str = "load1",
    centroids: str | None = None,
    deletes: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
    entries: bool = True,
) -> loads.StagedLoad:
    """What a load's workers leave behind: one segment per cluster (with their
    cluster entries, as the driver records them; ``entries=False``: as a load
    staged by an older vecstore, paths only)."""
    segs = []
    written = []
    by: dict[int, list[dict[str, Any]]] = {}
    for r, c in zip(recs, clusters, strict=True):
        by.setdefault(c, []).append(r)
    for c, rs in sorted(by.items()):
        entry = write_cluster(store, SPEC, "ns", load_id, c, records_to_table(rs, SPEC))
        segs.append((c, entry.segment))
        written.append(entry)
    staged = loads.StagedLoad(
        load_id=load_id,
        namespace="ns",
        segments=tuple(segs),
        entries=tuple(written) if entries else (),
        centroids=centroids,
        deletes=deletes,
        delete_prefixes=prefixes,
        records=len(recs),
    )
    loads.write_staged(store, SPEC.name, staged)
    return staged


@pytest.mark.parametrize("entries", [True, False], ids=["attached", "written"])
def test_load_entry_is_one_lsn_seen_by_readers_and_folded(
    local_store: Store, entries: bool
) -> None:
    model = _base(local_store)
    base = manifests.load_namespace(local_store, "ix", "ns")
    assert base is not None
    rng = np.random.default_rng(1)
    recs = [{"id": f"new{i}", "values": _vec(rng), "metadata": {"new": i}} for i in range(50)]
    recs += [{"id": "doc3#1", "values": _vec(rng), "metadata": {"over": True}}]
    staged = _stage(
        local_store,
        recs,
        [i % 3 for i in range(len(recs))],
        centroids=base.centroids,
        deletes=("doc5#0", "absent"),
        prefixes=("doc7#",),
        entries=entries,
    )
    assert loads.read_staged(local_store, "ix", "load1") == [staged]
    lsn = loads.apply(local_store, SPEC, staged)
    assert lsn == 1 and wal.list_lsns(local_store, "ix", "ns") == [1]
    # idempotent: a second roll-forward (recovery) finds it, also without the done record
    assert loads.apply(local_store, SPEC, staged) == 1
    local_store.delete(loads.staged_key("ix", "load1", "ns").replace(".json", ".lsn"))
    wal.clear_caches()
    assert loads.apply(local_store, SPEC, staged) == 1
    assert wal.list_lsns(local_store, "ix", "ns") == [1]

    for r in recs:
        model[r["id"]] = (r["values"], r["metadata"])
    for gone in ["doc5#0", "doc7#0", "doc7#1", "doc7#2", "doc7#3"]:
        del model[gone]
    entry = wal.read_entry(local_store, "ix", "ns", 1)
    assert entry.op == "load" and entry.upserts.num_rows == len(recs)
    assert set(entry.deletes) == {"doc5#0", "absent", "doc7#0", "doc7#1", "doc7#2", "doc7#3"}

    def check() -> None:
        assert view_ids(local_store, SPEC, "ns") == sorted(model)
        got = view_fetch(local_store, SPEC, "ns", ["new0", "doc3#1", "doc7#2", "doc1#1"])
        assert set(got) == {"new0", "doc3#1", "doc1#1"}
        assert got["doc3#1"][1] == {"over": True}
        np.testing.assert_allclose(got["new0"][0], model["new0"][0], rtol=1e-6)

    check()  # through the tail
    result = builder.build(local_store, SPEC, "ns")
    assert result.status == "built" and result.applied_lsn == 1
    m = result.manifest
    assert m is not None and m.record_count == len(model) and m.centroids == base.centroids
    check()  # through the clusters
    # the workers' assignment was kept (clusters 0-2 here, whatever is nearest)
    t = id_locations(local_store, m)
    loc = dict(zip(t.column("id").to_pylist(), t.column("cluster").to_pylist(), strict=True))
    assert [loc[r["id"]] for r in recs] == [i % 3 for i in range(len(recs))]
    # the staged segments became the clusters' delta segments as they are
    # (no second copy); a load staged without its entries is written again
    deltas = {d for c in m.clusters for d in c.deltas}
    staged_files = {rel for _, rel in staged.segments}
    assert (staged_files <= deltas) is entries
    assert len(deltas) == len(staged_files)
    assert sum(c.delta_rows for c in m.clusters) == len(recs)


def test_attached_staged_segments_outlive_their_log_entry(local_store: Store) -> None:
    """Folded as deltas, the staged files belong to the manifest: vacuum drops
    the load's log entry and keeps them."""
    _base(local_store, 400)
    base = manifests.load_namespace(local_store, "ix", "ns")
    assert base is not None
    rng = np.random.default_rng(4)
    recs = [{"id": f"n{i}", "values": _vec(rng), "metadata": {"i": i}} for i in range(12)]
    staged = _stage(local_store, recs, [i % 2 for i in range(12)], centroids=base.centroids)
    loads.apply(local_store, SPEC, staged)
    m = builder.build(local_store, SPEC, "ns").manifest
    assert m is not None and {rel for _, rel in staged.segments} <= {
        d for c in m.clusters for d in c.deltas
    }
    vacuum.vacuum(local_store, SPEC, older_than=0.0)
    assert wal.list_lsns(local_store, "ix", "ns") == []
    for _, rel in staged.segments:
        assert local_store.exists(f"indexes/ix/namespaces/ns/{rel}")
    wal.clear_caches()
    tail.tail_reader(local_store, SPEC).drop("ns")
    got = view_fetch(local_store, SPEC, "ns", [r["id"] for r in recs])
    assert {k: v[1] for k, v in got.items()} == {r["id"]: r["metadata"] for r in recs}


def test_assignment_recomputed_when_centroids_changed(local_store: Store) -> None:
    _base(local_store)
    rng = np.random.default_rng(2)
    recs = [{"id": f"new{i}", "values": _vec(rng)} for i in range(30)]
    staged = _stage(local_store, recs, [0] * 30, centroids="data/other-centroids.npy")
    loads.apply(local_store, SPEC, staged)
    m = builder.build(local_store, SPEC, "ns").manifest
    assert m is not None
    t = id_locations(local_store, m)
    where = dict(zip(t.column("id").to_pylist(), t.column("cluster").to_pylist(), strict=True))
    assert len({where[r["id"]] for r in recs}) > 1  # assigned afresh, not all to cluster 0


def test_online_write_after_a_load_wins(local_store: Store) -> None:
    _base(local_store)
    base = manifests.load_namespace(local_store, "ix", "ns")
    assert base is not None
    rng = np.random.default_rng(3)
    recs = [{"id": f"x{i}", "values": _vec(rng), "metadata": {"from": "load"}} for i in range(10)]
    staged = _stage(local_store, recs, [1] * 10, centroids=base.centroids)
    assert loads.apply(local_store, SPEC, staged) == 1
    writes.upsert(local_store, SPEC, "ns", [("x3", _vec(rng), {"from": "online"})])
    writes.delete(local_store, SPEC, "ns", ids=["x4"])
    for _ in range(2):
        got = view_fetch(local_store, SPEC, "ns", ["x3", "x4", "x5"])
        assert got["x3"][1] == {"from": "online"} and "x4" not in got
        assert got["x5"][1] == {"from": "load"}
        assert builder.build(local_store, SPEC, "ns").status in ("built", "nothing")


def test_older_vecstore_refuses_a_load_entry(
    local_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    _base(local_store, 100)
    staged = _stage(local_store, [{"id": "a", "values": [1.0] * 8}], [0])
    loads.apply(local_store, SPEC, staged)
    wal.clear_caches()
    monkeypatch.setattr(wal, "READ_FORMAT", wal.ENTRY_FORMAT)
    with pytest.raises(FormatError, match="upgrade vecstore"):
        wal.read_entry(local_store, "ix", "ns", 1)


def test_vacuum_keeps_staged_segments_while_the_entry_lives(local_store: Store) -> None:
    _base(local_store, 200)
    staged = _stage(local_store, [{"id": "a", "values": [1.0] * 8}], [0])
    loads.apply(local_store, SPEC, staged)
    rel = staged.segments[0][1]
    key = f"indexes/ix/namespaces/ns/{rel}"
    spec = SPEC
    vacuum.vacuum(local_store, spec, older_than=0.0)
    assert local_store.exists(key)  # the entry is not folded: its rows are only there
    tail.tail_reader(local_store, spec).drop("ns")
    assert "a" in view_fetch(local_store, spec, "ns", ["a"])
    assert builder.build(local_store, spec, "ns").status == "built"
    vacuum.vacuum(local_store, spec, older_than=0.0)
    assert not local_store.exists(key)  # folded, the entry gone: the staged file goes too
    wal.clear_caches()
    assert "a" in view_fetch(local_store, spec, "ns", ["a"])


def test_rebuild_with_concurrent_loads_and_upserts_loses_nothing(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads rolled forward while a rebuild runs are replayed on top of it;
    their rows were assigned with the old centroids, so the builder assigns
    them again against the rebuilt ones (nothing lost, nothing misplaced)."""
    import threading

    from vecstore import VecStore

    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index(name="ix", dimension=8, metric="cosine")
    index = vs.Index("ix")
    spec, store = index.spec, index.store
    rng = np.random.default_rng(5)
    model: dict[str, list[float]] = {}
    base = [(f"a{j}", _vec(rng)) for j in range(3000)]
    for s in range(0, len(base), 1000):
        index.upsert(base[s : s + 1000], namespace="ns")
    model.update(dict(base))
    index.build(namespace="ns")
    old = manifests.load_namespace(store, "ix", "ns")
    assert old is not None and old.centroids is not None
    stop = threading.Event()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def load_and_write() -> None:
        n = 0
        try:
            while not stop.is_set() or n < 3:
                recs = [{"id": f"l{n}-{j}", "values": _vec(rng)} for j in range(40)]
                recs.append({"id": f"a{n}", "values": _vec(rng)})  # an overwrite
                segs = []
                for c in (0, 1):
                    part = recs[c::2]
                    e = write_cluster(
                        store, spec, "ns", f"load{n}", c, records_to_table(part, spec)
                    )
                    segs.append((c, e.segment))
                staged = loads.StagedLoad(
                    load_id=f"load{n}",
                    namespace="ns",
                    segments=tuple(segs),
                    centroids=old.centroids,
                    deletes=(f"a{2000 + n}",),
                    records=len(recs),
                )
                loads.apply(store, spec, staged)
                online = [(f"w{n}", _vec(rng))]
                index.upsert(online, namespace="ns")
                with lock:
                    model.update({r["id"]: r["values"] for r in recs})
                    model.update(dict(online))
                    model.pop(f"a{2000 + n}", None)
                n += 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=load_and_write)
    t.start()
    try:
        [job] = index.rebuild("ns")
    finally:
        stop.set()
        t.join()
    assert not errors and job.status == "Completed", job.error

    def same() -> None:
        ids = [i for page in index.list(namespace="ns") for i in page]
        assert set(ids) == set(model)
        got = index.fetch(ids[:200] + [f"l0-{j}" for j in range(5)], namespace="ns").vectors
        for i, v in got.items():
            assert list(v.values) == pytest.approx(model[i]), i

    same()
    index.build(namespace="ns")
    same()
    m = manifests.load_namespace(store, "ix", "ns")
    assert m is not None and m.centroids != old.centroids
