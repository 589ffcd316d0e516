"""vecstore.builder: folding the tail into clusters, the lease, and a
model-based test of the whole write path against a dict."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import segwriter
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from segwriter import records_to_table, write_namespace

from vecstore import builder, manifests, tail, wal, writes
from vecstore.reader import Reader
from vecstore.schemas import IndexSpec, Manifest
from vecstore.storage import Store

SPEC = IndexSpec(name="ix", dimension=8, metric="cosine")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    wal.clear_caches()


def _vec(rng: np.random.Generator) -> list[float]:
    return rng.normal(size=8).astype(np.float32).tolist()


# ------------------------------------------------------------ merged view


def view_fetch(store: Store, spec: IndexSpec, ns: str, ids: list[str]) -> dict[str, Any]:
    """What the lead's reader will answer: tail first, then the clusters."""
    state = tail.TailReader(store, spec, ttl=0).get(ns)
    reader = Reader(store, spec)

    def from_clusters(rest: list[str]) -> dict[str, Any]:
        return dict(reader.fetch(rest, namespace=ns).vectors)

    out = {}
    for i, v in tail.merged_fetch(state, ids, from_clusters).items():
        out[i] = (list(v.values or []), v.metadata)
    return out


def view_ids(store: Store, spec: IndexSpec, ns: str) -> list[str]:
    state = tail.TailReader(store, spec, ttl=0).get(ns)
    cluster = [i for page in Reader(store, spec).list(namespace=ns) for i in page]
    return segwriter.merged_ids(state, cluster)


def view_query(store: Store, spec: IndexSpec, ns: str, q: list[float], k: int) -> list[str]:
    from vecstore.query.executor import prepare_dense

    state = tail.TailReader(store, spec, ttl=0).get(ns)
    got = Reader(store, spec).query(
        vector=q, top_k=k + tail.overfetch(state, k), namespace=ns, nprobe=10_000
    )
    t_ids, t_scores = state.search(
        prepare_dense(np.array([q], np.float32), spec.metric)[0], None, k
    )
    merged = tail.merge_hits(
        state, [m.id for m in got.matches], [m.score for m in got.matches], t_ids, t_scores, k
    )
    return [i for i, _ in merged]


def model_scores(model: dict[str, tuple[list[float], dict]], q: list[float]) -> dict[str, float]:
    qa = np.asarray(q, np.float32)
    out = {}
    for i, (v, _) in model.items():
        va = np.asarray(v, np.float32)
        out[i] = float(va @ qa / (np.linalg.norm(va) * np.linalg.norm(qa)))
    return out


def model_query(model: dict[str, tuple[list[float], dict]], q: list[float], k: int) -> list[str]:
    scores = model_scores(model, q)
    return sorted(scores, key=lambda i: (-scores[i], i))[:k]


def assert_valid_top_k(
    got: list[str], model: dict[str, tuple[list[float], dict]], q: list[float], k: int
) -> None:
    """``got`` is a correct top-k of the model: ties (equal vectors) may come in any order."""
    scores = model_scores(model, q)
    want = model_query(model, q, k)
    assert len(got) == len(want) and len(set(got)) == len(got), (got, want)
    assert all(i in scores for i in got), (got, want)
    np.testing.assert_allclose([scores[i] for i in got], [scores[i] for i in want], atol=1e-5)


# ----------------------------------------------------------------- builds


@pytest.mark.parametrize("delta", [False, True])
def test_build_rewrites_only_touched_clusters(
    local_store: Store, monkeypatch: pytest.MonkeyPatch, delta: bool
) -> None:
    """Only touched clusters change: rewritten whole (``DELTA_FRACTION`` 0),
    or (the default) given a delta segment and a deletion list, their
    segment file kept (format 3)."""
    if not delta:
        monkeypatch.setattr(builder, "DELTA_FRACTION", 0.0)
    rng = np.random.default_rng(0)
    recs = [{"id": f"r{i:04d}", "values": _vec(rng), "metadata": {"i": i}} for i in range(2000)]
    write_namespace(local_store, SPEC, "ns", records_to_table(recs, SPEC), target_per_cluster=100)
    base = manifests.load_namespace(local_store, "ix", "ns")
    assert base is not None and len(base.clusters) >= 10
    model = {r["id"]: (r["values"], r["metadata"]) for r in recs}
    new = [(f"n{i}", _vec(rng), {"new": True}) for i in range(3)]
    writes.upsert(local_store, SPEC, "ns", new)
    writes.upsert(local_store, SPEC, "ns", [("r0005", _vec(rng), {"i": -5})])
    writes.delete(local_store, SPEC, "ns", ids=["r0007", "r0009", "absent"])
    for i, v, m in new:
        model[i] = (v, m)
    model["r0005"] = (view_fetch(local_store, SPEC, "ns", ["r0005"])["r0005"][0], {"i": -5})
    del model["r0007"], model["r0009"]

    result = builder.build(local_store, SPEC, "ns")
    assert result.status == "built" and result.applied_lsn == 3
    m = result.manifest
    assert m is not None and m.format_version == (3 if delta else 2) and m.applied_lsn == 3
    assert m.parent_version == base.version and m.record_count == len(model)
    old = {c.id: c.segment for c in base.clusters}
    changed = [c.id for c in m.clusters if old.get(c.id) != c.segment or c.deltas or c.deleted]
    if delta:
        assert all(old[c.id] == c.segment for c in m.clusters)  # no segment rewritten
        assert sum(c.deleted_count for c in m.clusters) == 3  # r0005 (moved), r0007, r0009
        assert sum(c.delta_rows for c in m.clusters) == 4
    assert 1 <= len(changed) == result.clusters_rewritten <= 9  # at most 3 + 1 + 3 + ... touched
    assert len(changed) < len(base.clusters) // 2
    assert m.centroids == base.centroids

    assert tail.TailReader(local_store, SPEC).get("ns").live_ids() == []  # folded
    assert view_ids(local_store, SPEC, "ns") == sorted(model)
    got = view_fetch(local_store, SPEC, "ns", ["r0005", "r0007", "n1"])
    assert set(got) == {"r0005", "n1"} and got["r0005"][1] == {"i": -5}
    q = _vec(rng)
    assert_valid_top_k(view_query(local_store, SPEC, "ns", q, 10), model, q, 10)
    assert builder.build(local_store, SPEC, "ns").status == "nothing"


def test_fold_keeps_sorted_id_runs_and_merges_past_the_limit(
    local_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold does not re-sort the id lookup: a base id file nothing hides is
    kept as it is, one that loses rows is written filtered, new rows go to one
    sorted file; past MAX_ID_FILES everything is merged into one. Every file
    stays sorted, every live id is in exactly one, and fetch / list agree."""
    from vecstore.resolve import id_location_parts

    monkeypatch.setattr(builder, "MAX_ID_FILES", 4)
    rng = np.random.default_rng(5)
    recs = [{"id": f"r{i:04d}", "values": _vec(rng), "metadata": {"i": i}} for i in range(600)]
    write_namespace(local_store, SPEC, "ns", records_to_table(recs, SPEC), target_per_cluster=100)
    base = manifests.load_namespace(local_store, "ix", "ns")
    assert base is not None and len(base.id_files) == 1
    model = {r["id"]: r["metadata"] for r in recs}
    seen_files = [list(base.id_files)]
    for step in range(6):
        writes.upsert(local_store, SPEC, "ns", [(f"s{step}-{j}", _vec(rng), {"s": step})
                                                for j in range(5)])
        model.update({f"s{step}-{j}": {"s": step} for j in range(5)})
        if step % 2:  # hide a row of the first id file: it is written filtered
            writes.delete(local_store, SPEC, "ns", ids=[f"r{step:04d}"])
            del model[f"r{step:04d}"]
        m = builder.build(local_store, SPEC, "ns").manifest
        assert m is not None and 1 <= len(m.id_files) <= 4
        seen_files.append(list(m.id_files))
        parts = id_location_parts(local_store, m)
        ids = [i for t in parts for i in t.column("id").to_pylist()]
        assert sorted(ids) == sorted(model) and len(ids) == len(set(ids))
        for t in parts:
            col = t.column("id").to_pylist()
            assert col == sorted(col)
    # the first fold kept the base's file as it was and added one of new rows
    assert seen_files[1][0] == seen_files[0][0] and len(seen_files[1]) == 2
    # a fold that deletes from a kept file rewrites it; the limit merged the runs once
    assert any(len(f) == 1 for f in seen_files[2:])
    tail.tail_reader(local_store, SPEC).drop("ns")
    assert view_ids(local_store, SPEC, "ns") == sorted(model)
    got = view_fetch(local_store, SPEC, "ns", ["r0000", "r0001", "s0-0", "s5-4"])
    assert {k: v[1] for k, v in got.items()} == {
        "r0000": {"i": 0}, "s0-0": {"s": 0}, "s5-4": {"s": 5}
    }


def test_build_of_a_namespace_created_by_upserts_clusters_it(memory_store: Store) -> None:
    rng = np.random.default_rng(1)
    writes.upsert(memory_store, SPEC, "ns", [(f"a{i}", _vec(rng)) for i in range(300)])
    r = builder.build(memory_store, SPEC, "ns")
    assert r.status == "built" and r.manifest is not None and r.manifest.centroids
    assert r.manifest.record_count == 300
    assert len(view_ids(memory_store, SPEC, "ns")) == 300


def test_delete_all_then_build_leaves_an_empty_namespace(memory_store: Store) -> None:
    rng = np.random.default_rng(2)
    writes.upsert(memory_store, SPEC, "ns", [(f"a{i}", _vec(rng)) for i in range(20)])
    builder.build(memory_store, SPEC, "ns")
    writes.delete(memory_store, SPEC, "ns", delete_all=True)
    writes.upsert(memory_store, SPEC, "ns", [("z", _vec(rng))])
    r = builder.build(memory_store, SPEC, "ns")
    assert r.manifest is not None and r.manifest.record_count == 1
    assert view_ids(memory_store, SPEC, "ns") == ["z"]


def test_sparse_index_build(memory_store: Store) -> None:
    sp = IndexSpec(name="sp", metric="dotproduct", vector_type="sparse")
    recs = [
        {"id": f"s{i}", "sparse_values": {"indices": [i, i + 1], "values": [1.0, 2.0]}}
        for i in range(30)
    ]
    writes.upsert(memory_store, sp, "ns", recs)
    assert builder.build(memory_store, sp, "ns").status == "built"
    writes.delete(memory_store, sp, "ns", ids=["s3"])
    writes.upsert(
        memory_store, sp, "ns", [{"id": "t", "sparse_values": {"indices": [3], "values": [9.0]}}]
    )
    r = builder.build(memory_store, sp, "ns")
    assert r.manifest is not None and r.manifest.record_count == 30
    res = Reader(memory_store, sp).query(
        sparse_vector={"indices": [3], "values": [1.0]}, top_k=3, namespace="ns"
    )
    assert [m.id for m in res.matches] == ["t", "s2"]


def test_a_racing_commit_makes_the_build_a_conflict(memory_store: Store) -> None:
    rng = np.random.default_rng(3)
    writes.upsert(memory_store, SPEC, "ns", [("a", _vec(rng))])
    base = manifests.load_namespace(memory_store, "ix", "ns")
    assert base is not None
    # two builders folding the same version: one commits, the other loses
    assert builder.fold(memory_store, SPEC, "ns", base=base).status == "built"
    assert builder.fold(memory_store, SPEC, "ns", base=base).status == "conflict"
    m = manifests.load_namespace(memory_store, "ix", "ns")
    assert m is not None and m.version == base.version + 1 and m.record_count == 1


def test_manifest_formats() -> None:
    m1 = Manifest(index="i", namespace="n", version=1)
    assert "applied_lsn" not in m1.model_dump_json()  # format 1 bytes unchanged
    m2 = m1.model_copy(update={"format_version": 2, "applied_lsn": 9})
    back = Manifest.model_validate_json(m2.model_dump_json())
    assert back.applied_lsn == 9 and back.format_version == 2


# ------------------------------------------------------------------ lease


def test_lease_is_exclusive_until_released_or_expired(memory_store: Store) -> None:
    a = builder.acquire_lease(memory_store, "ix", "ns", "A", seconds=60)
    assert a is not None and builder.holds(memory_store, a)
    assert builder.acquire_lease(memory_store, "ix", "ns", "B") is None
    assert builder.build(memory_store, SPEC, "ns", owner="B").status == "busy"
    builder.release(memory_store, a)
    b = builder.acquire_lease(memory_store, "ix", "ns", "B", seconds=0.05)
    assert b is not None and b.generation == a.generation + 1
    assert not builder.holds(memory_store, a)
    time.sleep(0.1)  # B's lease expires without release
    c = builder.acquire_lease(memory_store, "ix", "ns", "C")
    assert c is not None and builder.renew(memory_store, b) is None
    assert builder.renew(memory_store, c) is not None


# ------------------------------------------------------ model-based test

IDS = st.sampled_from([f"k{i}" for i in range(12)])
VEC = st.lists(st.floats(-1, 1, allow_nan=False, width=32), min_size=8, max_size=8).filter(
    lambda v: float(np.linalg.norm(v)) > 1e-3
)
GROUP = st.sampled_from(["a", "b"])


class WritePath(RuleBasedStateMachine):
    """Random upserts / updates / deletes / builds against a dict model."""

    def __init__(self) -> None:
        super().__init__()
        import uuid

        wal.clear_caches()
        self.store = Store(f"memory://wp-{uuid.uuid4().hex}/root")
        self.model: dict[str, tuple[list[float], dict[str, Any]]] = {}

    @rule(items=st.lists(st.tuples(IDS, VEC, GROUP), min_size=1, max_size=6))
    def upsert(self, items: list[tuple[str, list[float], str]]) -> None:
        writes.upsert(self.store, SPEC, "ns", [(i, v, {"g": g}) for i, v, g in items])
        for i, v, g in items:
            self.model[i] = (list(np.asarray(v, np.float32).tolist()), {"g": g})

    @rule(i=IDS, g=GROUP)
    def update_meta(self, i: str, g: str) -> None:
        n = writes.update(self.store, SPEC, "ns", id=i, set_metadata={"g": g, "u": 1})
        assert n == (1 if i in self.model else 0)
        if i in self.model:
            self.model[i] = (self.model[i][0], {**self.model[i][1], "g": g, "u": 1})

    @rule(ids=st.lists(IDS, max_size=4))
    def delete_ids(self, ids: list[str]) -> None:
        writes.delete(self.store, SPEC, "ns", ids=ids)
        for i in ids:
            self.model.pop(i, None)

    @rule(g=GROUP)
    def delete_filter(self, g: str) -> None:
        writes.delete(self.store, SPEC, "ns", filter={"g": g})
        self.model = {i: r for i, r in self.model.items() if r[1]["g"] != g}

    @rule()
    def delete_all(self) -> None:
        writes.delete(self.store, SPEC, "ns", delete_all=True)
        self.model.clear()

    @rule()
    def build(self) -> None:
        builder.build(self.store, SPEC, "ns")

    @invariant()
    def same_as_model(self) -> None:
        if manifests.load_namespace(self.store, "ix", "ns") is None:
            assert not self.model
            return
        assert view_ids(self.store, SPEC, "ns") == sorted(self.model)
        got = view_fetch(self.store, SPEC, "ns", [f"k{i}" for i in range(12)])
        assert set(got) == set(self.model)
        for i, (v, m) in self.model.items():
            assert got[i][1] == m
            np.testing.assert_allclose(got[i][0], v, rtol=1e-6)
        if self.model:
            q = [1.0, 0.5, -0.25, 0.0, 0.1, 0.2, 0.3, -0.4]
            assert_valid_top_k(view_query(self.store, SPEC, "ns", q, 3), self.model, q, 3)


TestWritePath = WritePath.TestCase
TestWritePath.settings = settings(
    max_examples=20,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
