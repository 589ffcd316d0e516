"""vecstore.tail: the folded log tail, exact search, shadowing, refresh."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore import builder, tail, wal, writes
from vecstore.query.executor import prepare_dense
from vecstore.query.filters import canonical, parse_filter
from vecstore.schemas import IndexSpec
from vecstore.storage import Store


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    wal.clear_caches()


def _brute(spec: IndexSpec, recs: dict[str, tuple[np.ndarray, dict]], q: np.ndarray, k: int, pred):
    out = []
    for i, (v, m) in recs.items():
        if not pred(m):
            continue
        if spec.metric == "cosine":
            s = float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))
        elif spec.metric == "dotproduct":
            s = float(v @ q)
        else:
            s = float(2 * v @ q - v @ v)
        out.append((i, s))
    out.sort(key=lambda p: (-p[1], p[0]))
    return out[:k]


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_search_is_exact_with_filters_and_overwrites(memory_store: Store, metric: str) -> None:
    spec = IndexSpec(name="ix", dimension=8, metric=metric)  # type: ignore[arg-type]
    rng = np.random.default_rng(3)
    model: dict[str, tuple[np.ndarray, dict]] = {}
    for _batch in range(6):
        recs = []
        for _ in range(40):
            i = f"id{rng.integers(0, 120)}"
            v = rng.normal(size=8).astype(np.float32)
            m = {"g": ["a", "b", "c"][int(rng.integers(0, 3))], "n": int(rng.integers(0, 10))}
            recs.append((i, v.tolist(), m))
        writes.upsert(memory_store, spec, "ns", recs)
        for i, v, m in recs:
            model[i] = (np.asarray(v, np.float32), m)
        gone = [f"id{j}" for j in rng.integers(0, 120, size=5)]
        writes.delete(memory_store, spec, "ns", ids=gone)
        for g in gone:
            model.pop(g, None)
    st = tail.TailReader(memory_store, spec).get("ns")
    assert len(st.chunks) < 6  # small chunks were merged
    assert st.live_ids() == sorted(model)
    q = rng.normal(size=8).astype(np.float32)
    pq = prepare_dense(q.reshape(1, -1), spec.metric)[0]
    ids, scores = st.search(pq, None, 10)
    want = _brute(spec, model, q, 10, lambda m: True)
    assert ids == [w[0] for w in want]
    np.testing.assert_allclose(scores, [w[1] for w in want], rtol=1e-4, atol=1e-4)
    node = parse_filter({"$and": [{"g": {"$in": ["a", "c"]}}, {"n": {"$gte": 5}}]})
    ids, _ = st.search(pq, None, 10, node, canonical(node))
    want = _brute(spec, model, q, 10, lambda m: m["g"] in ("a", "c") and m["n"] >= 5)
    assert ids == [w[0] for w in want]


def test_hybrid_adds_the_sparse_part_and_sparse_index_needs_overlap(memory_store: Store) -> None:
    hy = IndexSpec(name="hy", dimension=2, metric="dotproduct")
    writes.upsert(
        memory_store,
        hy,
        "ns",
        [
            {"id": "a", "values": [1, 0], "sparse_values": {"indices": [7], "values": [5.0]}},
            {"id": "b", "values": [2, 0]},
        ],
    )
    st = tail.TailReader(memory_store, hy).get("ns")
    q = np.array([1, 0], np.float32)
    ids, scores = st.search(q, (np.array([7]), np.array([1.0], np.float32)), 2)
    assert ids == ["a", "b"] and scores.tolist() == [6.0, 2.0]
    sp = IndexSpec(name="sp", metric="dotproduct", vector_type="sparse")
    writes.upsert(
        memory_store,
        sp,
        "ns",
        [
            {"id": "x", "sparse_values": {"indices": [1, 2], "values": [1.0, 1.0]}},
            {"id": "y", "sparse_values": {"indices": [3], "values": [1.0]}},
        ],
    )
    st = tail.TailReader(memory_store, sp).get("ns")
    ids, scores = st.search(None, (np.array([2]), np.array([3.0], np.float32)), 5)
    assert ids == ["x"] and scores.tolist() == [3.0]


def test_merge_drops_shadowed_cluster_hits(memory_store: Store) -> None:
    spec = IndexSpec(name="ix", dimension=2, metric="dotproduct")
    writes.upsert(memory_store, spec, "ns", [("a", [1, 0]), ("b", [0, 1])])
    writes.delete(memory_store, spec, "ns", ids=["c"])
    st = tail.TailReader(memory_store, spec).get("ns")
    merged = tail.merge_hits(st, ["c", "a", "d"], [9.0, 8.0, 0.5], ["a", "b"], [1.0, 0.7], 3)
    assert merged == [("a", 1.0), ("b", 0.7), ("d", 0.5)]  # c deleted, old a overwritten
    assert tail.overfetch(st, 3) == 3
    writes.delete(memory_store, spec, "ns", delete_all=True)
    st = tail.TailReader(memory_store, spec).get("ns")
    assert tail.merge_hits(st, ["d"], [0.5], [], [], 3) == []


def test_other_processes_writes_appear_after_the_ttl(memory_store: Store) -> None:
    spec = IndexSpec(name="ix", dimension=2)
    writes.upsert(memory_store, spec, "ns", [("a", [1, 0])])
    reader = tail.TailReader(memory_store, spec, ttl=3600)
    assert reader.get("ns").live_ids() == ["a"]
    # another process: an entry this process did not write
    memory_store.put_if_absent(
        wal.entry_key("ix", "ns", 2), wal.encode(writes.normalize([("b", [0, 1])], spec))
    )
    assert reader.get("ns").live_ids() == ["a"]  # within the ttl
    assert reader.get("ns", force=True).live_ids() == ["a", "b"]
    # this process's own write is seen at once (read-your-writes)
    writes.upsert(memory_store, spec, "ns", [("c", [1, 1])])
    assert reader.get("ns").live_ids() == ["a", "b", "c"]


def test_state_rebases_on_a_newer_manifest(memory_store: Store) -> None:
    spec = IndexSpec(name="ix", dimension=2)
    writes.upsert(memory_store, spec, "ns", [("a", [1, 0])])
    reader = tail.TailReader(memory_store, spec, ttl=0)
    assert reader.get("ns").size == 1
    builder.build(memory_store, spec, "ns")
    writes.upsert(memory_store, spec, "ns", [("b", [0, 1])])
    st = reader.get("ns")
    assert st.applied_lsn == 1 and st.live_ids() == ["b"] and st.size == 1


def test_shadowed_refs_and_live_count_against_a_built_version(memory_store: Store) -> None:
    from vecstore import manifests
    from vecstore.resolve import id_locations

    spec = IndexSpec(name="ix", dimension=2)
    writes.upsert(memory_store, spec, "ns", [(f"r{i}", [1, i]) for i in range(10)])
    builder.build(memory_store, spec, "ns")
    m = manifests.load_namespace(memory_store, "ix", "ns")
    assert m is not None
    loc = id_locations(memory_store, m)
    ids = loc.column("id").combine_chunks()
    refs = (np.asarray(loc.column("cluster")).astype(np.int64) << 32) | np.asarray(
        loc.column("row")
    )
    writes.upsert(memory_store, spec, "ns", [("r1", [0, 1]), ("new", [1, 1])])
    writes.delete(memory_store, spec, "ns", ids=["r2", "absent"])
    st = tail.TailReader(memory_store, spec).get("ns")
    shadow = tail.shadowed_refs(st, [(ids, refs)])
    want = {int(r) for i, r in zip(ids.to_pylist(), refs, strict=True) if i in ("r1", "r2")}
    assert set(shadow.tolist()) == want
    assert tail.shadowed_refs(st, [(ids, refs)]) is shadow  # cached per LSN
    assert tail.live_count(st, m.record_count, len(shadow)) == 10  # 10 - 2 + r1 + new
    writes.delete(memory_store, spec, "ns", delete_all=True)
    st = tail.TailReader(memory_store, spec).get("ns")
    assert len(tail.shadowed_refs(st, [(ids, refs)])) == 10
    assert tail.live_count(st, m.record_count, 10) == 0


def test_search_breaks_ties_by_id_across_the_chunk_cut(memory_store: Store) -> None:
    """Equal scores beyond k in one chunk: the smallest ids win, as in clusters."""

    spec = IndexSpec(name="ties", dimension=8, metric="cosine")
    v = [0.0] * 7 + [1.0]
    order = [int(i) for i in np.random.default_rng(5).permutation(60)]
    writes.upsert(memory_store, spec, "ns", [(f"k{i:02d}", v, {"g": "a"}) for i in order])
    state = tail.TailReader(memory_store, spec, ttl=0).get("ns")
    q = prepare_dense(np.array([[1.0, 0.5, -0.25, 0.0, 0.1, 0.2, 0.3, -0.4]], np.float32), "cosine")
    ids, _ = state.search(q[0], None, 3)
    assert ids == ["k00", "k01", "k02"]
