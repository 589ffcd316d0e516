"""Planning: pruning by statistics, probing, filtered completeness and recall,
the default nprobe, the byte-bounded cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_query_support import (
    CountingStore,
    brute,
    clustered,
    dense_records,
    memory_store,
    spec_for,
    top_ids,
    write,
)

from vecstore.query.cache import ByteLRU, DiskCache
from vecstore.query.planner import default_nprobe, probe_count
from vecstore.reader import Reader

D = 16


def test_pruning_skips_clusters_that_cannot_match() -> None:
    store = memory_store(CountingStore)
    assert isinstance(store, CountingStore)
    spec = spec_for("euclidean", D)
    # 6 well separated groups; metadata "group" is constant within a group,
    # so each cluster's statistics name exactly one group.
    x = clustered(1200, D, 6, seed=2, spread=0.05)
    reader = Reader(store, spec)
    from vecstore.kmeans import assign, fit

    groups = assign(x, fit(x, 6, seed=0))
    metas = [{"group": int(g), "name": f"g{int(g)}"} for g in groups]
    m = write(store, spec, dense_records(x, metas), per_cluster=200, seed=0)
    k = len(m.clusters)
    assert k >= 4
    target = int(groups[0])
    holding = [c for c in m.clusters if c.stats["group"].min == target]
    store.reads.clear()
    res = reader.query(
        namespace="ns", vector=x[0].tolist(), top_k=5, filter={"group": target}, nprobe=k
    )
    assert res.matches and all(
        int(mm.id[1:]) in np.flatnonzero(groups == target) for mm in res.matches
    )
    # filter column, values and ids of the matching clusters only
    assert store.segment_reads() <= 3 * len(holding)
    assert store.segment_reads() < k
    # a string filter prunes through the value sets
    store.reads.clear()
    reader.cache.clear()
    reader.query(
        namespace="ns",
        vector=x[0].tolist(),
        top_k=5,
        filter={"name": {"$in": [f"g{target}"]}},
        nprobe=k,
    )
    assert store.segment_reads() < k
    # a filter no cluster can match reads no segment at all
    store.reads.clear()
    reader.cache.clear()
    none = reader.query(
        namespace="ns", vector=x[0].tolist(), top_k=5, filter={"group": {"$gt": 99}}
    )
    assert none.matches == [] and store.segment_reads() == 0


def test_probing_reads_only_probed_segments() -> None:
    store = memory_store(CountingStore)
    assert isinstance(store, CountingStore)
    spec = spec_for("cosine", D)
    x = clustered(2000, D, 20, seed=4)
    m = write(store, spec, dense_records(x), per_cluster=100)
    k = len(m.clusters)
    reader = Reader(store, spec)
    store.reads.clear()
    reader.query(namespace="ns", vector=x[0].tolist(), top_k=3, nprobe=2)
    # two value columns and the id column of the segments holding the results
    assert store.segment_reads() <= 4 < k


@pytest.mark.parametrize("selectivity", [0.01, 0.5])
def test_filtered_recall_against_exact_filtered_search(selectivity: float) -> None:
    store = memory_store()
    spec = spec_for("cosine", D)
    n = 6000
    x = clustered(n, D, 30, seed=6, spread=0.8)
    rng = np.random.default_rng(0)
    keep = rng.random(n) < selectivity
    metas = [{"tag": "yes" if k else "no", "n": i} for i, k in enumerate(keep)]
    write(store, spec, dense_records(x, metas), per_cluster=100)
    reader = Reader(store, spec)
    qs = clustered(40, D, 30, seed=6, spread=0.8)
    hits = total = 0
    for q in qs:
        res = reader.query(namespace="ns", vector=q.tolist(), top_k=10, filter={"tag": "yes"})
        want = top_ids(brute(x, q, "cosine"), 10, "cosine", allowed=keep)
        got = [mm.id for mm in res.matches]
        assert len(got) == min(10, int(keep.sum()))
        assert all(keep[int(i[1:])] for i in got)
        hits += len(set(got) & set(want))
        total += len(want)
    assert hits / total >= 0.9


def test_filtered_top_k_is_complete_when_matches_are_rare() -> None:
    store = memory_store()
    spec = spec_for("euclidean", D)
    x = clustered(3000, D, 15, seed=8)
    metas = [{"rare": i % 500 == 0} for i in range(3000)]
    write(store, spec, dense_records(x, metas), per_cluster=100)
    reader = Reader(store, spec)
    rare = [f"r{i}" for i in range(0, 3000, 500)]
    # nprobe=1 probes far too few clusters: the executor keeps going
    res = reader.query(
        namespace="ns", vector=x[1].tolist(), top_k=10, filter={"rare": True}, nprobe=1
    )
    assert sorted(m.id for m in res.matches) == sorted(rare)
    batch = reader.query_batch(x[:5], top_k=10, namespace="ns", filter={"rare": True}, nprobe=1)
    assert all(sorted(i for i, _ in b) == sorted(rare) for b in batch)
    res3 = reader.query(
        namespace="ns", vector=x[1].tolist(), top_k=3, filter={"rare": True}, nprobe=1
    )
    want = top_ids(brute(x, x[1], "euclidean"), 3, "euclidean", allowed=np.arange(3000) % 500 == 0)
    assert [m.id for m in res3.matches] == want


def test_default_nprobe_reaches_high_recall_on_clustered_data() -> None:
    store = memory_store()
    spec = spec_for("euclidean", D)
    n = 20_000
    x = clustered(n + 100, D, 60, seed=11, spread=1.0)
    base, qs = x[:n], x[n:]
    m = write(store, spec, dense_records(base), per_cluster=256)
    state_k = len(m.clusters)
    reader = Reader(store, spec)
    state = reader.namespace_state("ns")
    assert state is not None
    p = probe_count(state, None)
    assert p < state_k  # really probing, not scanning everything
    batch = reader.query_batch(qs, top_k=10, namespace="ns")
    hits = 0
    for q, got in zip(qs, batch, strict=True):
        want = set(top_ids(brute(base, q, "euclidean"), 10, "euclidean"))
        hits += len(want & {i for i, _ in got})
    assert hits / (10 * len(qs)) >= 0.95


def test_default_nprobe_rule() -> None:
    assert default_nprobe(1) == 1
    assert [default_nprobe(k) for k in (13, 49, 245, 1000)] == [8, 17, 44, 101]
    assert all(default_nprobe(k) <= k for k in range(1, 300))


def test_cache_bound_respected() -> None:
    store = memory_store()
    spec = spec_for("cosine", D)
    x = clustered(2000, D, 10, seed=3)
    write(store, spec, dense_records(x, [{"g": i % 4} for i in range(2000)]), per_cluster=100)
    bound = 40_000  # about five segments' vectors
    reader = Reader(store, spec, cache_bytes=bound)
    for i in range(40):
        reader.query(
            namespace="ns",
            vector=x[i * 37].tolist(),
            top_k=5,
            include_metadata=True,
            filter={"g": {"$ne": 1}},
        )
        assert reader.cache.current_bytes <= bound
    assert reader.cache.stats.evictions > 0
    # still exact with a cache too small for anything
    tiny = Reader(store, spec, cache_bytes=0)
    a = tiny.query(namespace="ns", vector=x[5].tolist(), top_k=5, nprobe=100)
    b = reader.query(namespace="ns", vector=x[5].tolist(), top_k=5, nprobe=100)
    assert [m.id for m in a.matches] == [m.id for m in b.matches]
    assert tiny.cache.current_bytes == 0


def test_byte_lru_evicts_least_recently_used() -> None:
    lru = ByteLRU(100)
    lru.put("a", 1, 40)
    lru.put("b", 2, 40)
    assert lru.get("a") == 1  # a is now the most recent
    lru.put("c", 3, 40)
    assert "b" not in lru and "a" in lru and "c" in lru
    assert lru.current_bytes == 80
    lru.put("huge", 4, 1000)
    assert "huge" not in lru
    calls: list[int] = []

    def load(value: int) -> tuple[int, int]:
        calls.append(value)
        return value, 10

    assert lru.get_or_load("d", lambda: load(5)) == 5
    assert lru.get_or_load("d", lambda: load(6)) == 5
    assert calls == [5]


def test_disk_cache_downloads_once_and_trims(tmp_path: Path) -> None:
    store = memory_store(CountingStore)
    assert isinstance(store, CountingStore)
    for i in range(4):
        store.write_bytes(f"data/{i}.bin", bytes([i]) * 1000)
    disk = DiskCache(str(tmp_path / "cache"), max_bytes=2500)
    first = disk.local_path(store, "data/0.bin")
    assert disk.local_path(store, "data/0.bin") == first
    assert store.reads["data/0.bin"] == 1
    assert Path(first).read_bytes() == bytes([0]) * 1000
    for i in range(1, 4):
        disk.local_path(store, f"data/{i}.bin")
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 2500
