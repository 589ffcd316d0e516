"""Planning at scale (issue 9): task units carry their chunks only, so a scan
task's pickled arguments do not grow with the number of files; small
namespaces are packed in namespace order."""

from __future__ import annotations

import pickle

import pytest

from vecstore.pipelines import plan as P
from vecstore.schemas import IndexSpec
from vecstore.storage import Store

SPEC = IndexSpec(name="i", dimension=64, metric="euclidean")


def _plan(ns: str, files: int, rows: int = 10, size: int = 3000) -> P.NamespacePlan:
    return P.plan_namespace(ns, [(f"{ns}/part-{i:06d}.parquet", size, [rows]) for i in range(files)], SPEC)


def _max_scan_payload(p: P.NamespacePlan) -> int:
    ctx = P.Context.make(Store("memory://src"), Store("memory://dst"), SPEC, "job", "continue")
    return max(len(pickle.dumps((ctx, u, p.sizing, None))) for u in P.units(p.chunks))


def test_scan_payload_does_not_grow_with_files() -> None:
    small, big = _plan("a", 20_000), _plan("a", 200_000)
    assert len(pickle.dumps(big)) > 9 * len(pickle.dumps(small))  # the plan itself grows
    # a unit holds at most UNIT_CHUNKS chunks: only the digits of file numbers grow
    assert _max_scan_payload(big) < 1.1 * _max_scan_payload(small)
    assert _max_scan_payload(big) < 100 * P.UNIT_CHUNKS


def test_inspection_tasks_per_worker_thread() -> None:
    assert P.inspect_batch(100_000, 2) == P.INSPECT_FILES  # capped: ~98 tasks
    assert P.inspect_batch(2_000, 2) == 125  # UNIT_SPLIT tasks per thread
    assert P.inspect_batch(100_000, 64) == 196
    assert P.inspect_batch(10, 2) == P.INSPECT_MIN_FILES


def test_units_keep_order_and_bounds() -> None:
    p = _plan("a", 1000)
    units = P.units(p.chunks)
    assert [c for u in units for c in u] == list(p.chunks)
    assert all(len(u) <= P.UNIT_CHUNKS for u in units)
    big = P.chunk_file("b", 0, "b/x.parquet", [100] * 10, 10 * 2**20, 0, max_bytes=2**20)
    assert [len(u) for u in P.units(big, max_bytes=2**20)] == [1] * 10
    # at least UNIT_SPLIT units when there are that many chunks (every worker busy)
    ten = P.chunk_file("c", 0, "c/x.parquet", [100] * 10, 10 * 2**20, 0, max_bytes=2**20)
    assert len(P.units(ten, max_bytes=96 * 2**20)) == 10


def test_pack_groups_in_namespace_order(monkeypatch: pytest.MonkeyPatch) -> None:
    plans = [_plan(f"n{i:03d}", 1) for i in range(600)]
    plans.insert(300, _plan("n299z", 1, rows=60_000))  # too big to pack: ends a group
    items = P.pack_groups(plans)
    flat = [p.ns for it in items for p in (it if isinstance(it, list) else [it])]
    assert flat == [p.ns for p in plans]
    assert sum(1 for it in items if isinstance(it, P.NamespacePlan)) == 1
    groups = [it for it in items if isinstance(it, list)]
    assert all(len(g) <= P.PACK_GROUP_FILES for g in groups)
    assert len(groups) == 4  # 300 + 300 small namespaces, 256 files per group at most
    monkeypatch.setenv("VECSTORE_PACK_ROWS", "0")
    assert all(isinstance(it, P.NamespacePlan) for it in P.pack_groups(plans))


def test_a_load_into_an_existing_namespace_is_gathered_by_several_tasks() -> None:
    """100k rows fit one bucket: an import of a new namespace gathers them in
    one task, a load into an existing one in LOAD_MIN_BUCKETS (its staged
    segments are written by every worker), never more buckets than clusters."""
    from vecstore.schemas import ClusterEntry, Manifest

    files = [(f"ns/part-{i:02d}.parquet", 5 * 2**20, [10_000]) for i in range(10)]

    def existing(k: int) -> Manifest:
        clusters = [ClusterEntry(id=i, segment=f"data/{i}.parquet", row_count=2000, byte_size=1)
                    for i in range(k)]
        return Manifest(index="i", namespace="ns", version=1, clusters=clusters,
                        centroids="data/c.npy", record_count=2000 * k)

    assert P.plan_namespace("ns", files, SPEC).buckets == 1
    load = P.plan_namespace("ns", files, SPEC, existing=existing(500))
    assert load.existing and load.k == 500 and load.buckets == P.LOAD_MIN_BUCKETS
    assert P.plan_namespace("ns", files, SPEC, existing=existing(2)).buckets == 2


def test_large_namespaces_are_spread_over_the_cluster() -> None:
    """A namespace's dedup partitions and gather buckets (one task each) use
    every worker thread when each keeps SPREAD_MIN_ROWS rows: a 1M-row
    namespace is one partition by size alone, so one worker deduplicated it
    while the others waited; small namespaces stay one task."""
    rows = 4 * P.SPREAD_MIN_ROWS
    files = [(f"ns/part-{i:02d}.parquet", 2**20, [rows // 10]) for i in range(10)]
    alone = P.plan_namespace("ns", files, SPEC)
    assert alone.partitions == 1 and alone.buckets < 8  # by size: one dedup task
    eight = P.plan_namespace("ns", files, SPEC, spread=8)
    assert (eight.partitions, eight.buckets) == (4, 8)  # partitions: one per SPREAD_MIN_ROWS
    two = P.plan_namespace("ns", files, SPEC, spread=2)
    assert two.partitions == 2 and two.buckets == max(2, alone.buckets + alone.buckets % 2)
    # buckets a multiple of the threads (equal buckets end together) while
    # each keeps SPREAD_MIN_ROWS / 4 rows
    three = P.plan_namespace("ns", files, SPEC, spread=3)
    assert three.buckets % 3 == 0 and three.buckets >= alone.buckets
    # not when that would leave buckets of under SPREAD_MIN_ROWS / 4 rows
    many = P.plan_namespace("ns", files, SPEC, spread=64)
    assert (many.partitions, many.buckets) == (4, max(4, alone.buckets))
    # never more buckets than clusters
    few = P.plan_namespace("ns", files, SPEC, spread=64, target_per_cluster=2 * rows)
    assert few.k == 2 and few.buckets == 2 and few.partitions == 4
    small = [(f"s/part-{i:02d}.parquet", 2**20, [1000]) for i in range(10)]
    s = P.plan_namespace("s", small, SPEC, spread=64)
    assert (s.partitions, s.buckets) == (1, 1)
