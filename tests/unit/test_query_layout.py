"""Segment layout and the lean read paths: row groups and fetch, the number
of clusters, single-threaded kernels, the single-query path, the local
manifest check."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from test_query_support import (
    brute,
    clustered,
    dense_records,
    memory_store,
    spec_for,
    top_ids,
    write,
)

from vecstore import kmeans, manifests, segments
from vecstore.query import kernels
from vecstore.query.filters import may_match, parse_filter
from vecstore.reader import Reader
from vecstore.storage import Store

# ------------------------------------------------------------ clustering


def test_records_per_cluster_grow_with_the_namespace() -> None:
    # 1,024 per cluster for small and medium namespaces, 4,096 from ~1M on
    assert [kmeans.choose_k(n) for n in (0, 1, 1000, 2047, 5000, 25_000)] == [1, 1, 1, 1, 4, 24]
    assert kmeans.choose_k(120_000) == 86
    assert kmeans.choose_k(1_000_000) == 250  # import time depends on k: keep it ~250
    assert kmeans.choose_k(2_000_000) == 488
    for n in (1024, 3000, 25_000, 65_536, 100_000, 333_333, 1_000_000, 5_000_000):
        per = n / kmeans.choose_k(n)
        assert 1024 <= per < 4096 * 1.01, (n, per)  # DESIGN: roughly 1-4k records per cluster


def test_an_explicit_target_caps_the_cluster_size() -> None:
    # VECSTORE_RECORDS_PER_CLUSTER / target_per_cluster: tests force many clusters
    assert kmeans.records_per_cluster(10_000, 100) == 100
    assert kmeans.choose_k(6000, 100) == 60
    assert kmeans.records_per_cluster(10_000_000, 8192) == 8192
    assert kmeans.records_per_cluster(100, 8192) == 2048  # target / 4 at the low end


# ------------------------------------------------------------ row groups


def test_row_group_rows() -> None:
    assert segments.segment_row_group_rows(128) == 64  # 32 KiB of vectors
    assert segments.segment_row_group_rows(384) == 64
    assert segments.segment_row_group_rows(1536) == 64
    assert segments.segment_row_group_rows(8) == 1024
    assert segments.segment_row_group_rows(32) == 256
    assert segments.segment_row_group_rows(None) == 256  # sparse


class ByteCountingStore(Store):
    """A real Store that counts the bytes read from segment files."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        super().__init__(uri, storage_options)
        self.segment_bytes = 0

    def open_input(self, key: str, *, readahead: bool = True) -> IO[bytes]:
        f = super().open_input(key, readahead=readahead)
        if not key.endswith(".parquet") or ".ids." in key:
            return f
        store = self

        class Counting(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def seekable(self) -> bool:
                return True

            def seek(self, offset: int, whence: int = 0) -> int:
                return f.seek(offset, whence)

            def tell(self) -> int:
                return f.tell()

            def readinto(self, b: Any) -> int:
                data = f.read(len(b))
                b[: len(data)] = data
                store.segment_bytes += len(data)
                return len(data)

            def close(self) -> None:
                f.close()
                super().close()

        return Counting()  # type: ignore[return-value]


def _namespace(store: Store, d: int = 128, n: int = 1200) -> tuple[np.ndarray, list[str]]:
    spec = spec_for("euclidean", d)
    x = clustered(n, d, 2, seed=4)
    metas = [{"i": i, "tag": f"t{i % 7}"} for i in range(n)]
    write(store, spec, dense_records(x, metas), per_cluster=2400)  # 2 clusters of ~600
    return x, [f"r{i}" for i in range(n)]


def test_segments_are_cut_into_row_groups_and_fetch_reads_only_one(tmp_path: Path) -> None:
    store = Store(str(tmp_path))
    x, ids = _namespace(store)
    m = manifests.load_namespace(store, "idx", "ns")
    assert m is not None and len(m.clusters) == 2
    for c in m.clusters:
        md = pq.ParquetFile(store.path(f"indexes/idx/namespaces/ns/{c.segment}")).metadata
        assert md.num_row_groups == -(-c.row_count // 64)
        assert all(md.row_group(i).num_rows == 64 for i in range(md.num_row_groups - 1))

    counting = ByteCountingStore(f"memory://rg-{os.getpid()}-{time.time_ns()}")
    _namespace(counting)
    m = manifests.load_namespace(counting, "idx", "ns")
    assert m is not None
    biggest = max(c.byte_size for c in m.clusters)
    reader = Reader(counting, spec_for("euclidean", 128))
    reader.fetch([ids[0]], namespace="ns")  # loads the id lookup and one footer
    counting.segment_bytes = 0
    reader.cache.clear()
    res = reader.fetch([ids[700]], namespace="ns")
    assert res.vectors[ids[700]].values == pytest.approx(x[700].tolist())
    assert res.vectors[ids[700]].metadata == {"i": 700, "tag": "t0"}
    # the footer (pyarrow reads the file's last 64 KiB for it) and one row
    # group of the ten: not the segment
    assert 0 < counting.segment_bytes < biggest / 2


def test_fetch_across_row_groups_keeps_order_and_values() -> None:
    store = memory_store()
    x, ids = _namespace(store)
    reader = Reader(store, spec_for("euclidean", 128))
    rng = np.random.default_rng(0)
    for _ in range(3):
        pick = [int(i) for i in rng.choice(len(ids), 40, replace=False)]
        res = reader.fetch([ids[i] for i in pick], namespace="ns")
        assert list(res.vectors) == [ids[i] for i in pick]
        for i in pick:
            v = res.vectors[ids[i]]
            assert v.values == x[i].tolist()  # exact float32 values
            assert v.metadata == {"i": i, "tag": f"t{i % 7}"}
    # the same again, from the cached row groups, and after queries cached whole segments
    again = reader.fetch([ids[5], ids[1100]], namespace="ns")
    reader.query_batch(x[:4], top_k=3, namespace="ns", nprobe=10)
    hot = reader.fetch([ids[5], ids[1100]], namespace="ns")
    assert again == hot
    assert hot.vectors[ids[1100]].values == x[1100].tolist()


def test_single_row_group_segments_still_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written before segments were cut into row groups (format v1 all the same)."""
    monkeypatch.setattr(segments, "segment_row_group_rows", lambda d: 1 << 30)
    import vecstore.writer as writer

    monkeypatch.setattr(writer, "segment_row_group_rows", lambda d: 1 << 30)
    store = memory_store()
    x, ids = _namespace(store, n=700)
    m = manifests.load_namespace(store, "idx", "ns")
    assert m is not None
    for c in m.clusters:
        with store.open_input(f"indexes/idx/namespaces/ns/{c.segment}") as f:
            assert pq.ParquetFile(f).metadata.num_row_groups == 1
    reader = Reader(store, spec_for("euclidean", 128))
    res = reader.fetch([ids[3], ids[650], ids[200]], namespace="ns")
    assert [v.values for v in res.vectors.values()] == [x[i].tolist() for i in (3, 650, 200)]
    q = reader.query(namespace="ns", vector=x[9], top_k=3, include_metadata=True)
    assert q.matches[0].id == ids[9] and q.matches[0].metadata == {"i": 9, "tag": "t2"}


# --------------------------------------------------------------- kernels


@pytest.mark.parametrize(("n", "d"), [(8000, 128), (1000, 384), (71, 128), (143, 128), (5, 16)])
def test_single_threaded_matvec(n: int, d: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, d)).astype(np.float32)
    q = rng.standard_normal(d).astype(np.float32)
    np.testing.assert_allclose(kernels.vecdot(x, q), x @ q, rtol=1e-4, atol=1e-3)
    out = np.full(n + 3, 7.0, dtype=np.float32)
    kernels.matvec_into(x, q, out[1 : n + 1])
    np.testing.assert_allclose(out[1 : n + 1], x @ q, rtol=1e-4, atol=1e-3)
    assert out[0] == out[-1] == 7.0
    strided = np.asfortranarray(x)  # not row-major: the plain loop
    np.testing.assert_allclose(kernels.vecdot(strided, q), x @ q, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize(
    ("m", "n", "d"), [(1000, 250, 128), (5, 8000, 128), (1, 8000, 128), (300, 24, 384), (3, 5, 8)]
)
def test_gemm_t(m: int, n: int, d: int) -> None:
    rng = np.random.default_rng(m + n)
    a = rng.standard_normal((m, d)).astype(np.float32)
    b = rng.standard_normal((n, d)).astype(np.float32)
    np.testing.assert_allclose(kernels.gemm_t(a, b), a @ b.T, rtol=1e-4, atol=1e-3)


# ------------------------------------------------------ single-query path


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_single_path_matches_brute_force_and_batch(metric: str) -> None:
    store = memory_store()
    spec = spec_for(metric, 16)
    x = clustered(3000, 16, 12, seed=9, spread=0.6)
    write(store, spec, dense_records(x), per_cluster=200)
    reader = Reader(store, spec)
    state = reader.namespace_state("ns")
    assert state is not None and state.k >= 10
    rng = np.random.default_rng(1)
    qs = rng.standard_normal((20, 16)).astype(np.float32)
    for q in qs:
        exact = reader.query(namespace="ns", vector=q, top_k=10, nprobe=state.k)
        want = brute(x, q, metric)
        assert [m.id for m in exact.matches] == top_ids(want, 10, metric)
        got = [m.score for m in exact.matches]
        np.testing.assert_allclose(
            got, want[[int(m.id[1:]) for m in exact.matches]], rtol=1e-4, atol=1e-3
        )
    for nprobe in (1, 2, 5, None):
        batch = reader.query_batch(qs, top_k=10, namespace="ns", nprobe=nprobe)
        for q, b in zip(qs, batch, strict=True):
            one = reader.query(namespace="ns", vector=q.tolist(), top_k=10, nprobe=nprobe)
            assert [m.id for m in one.matches] == [i for i, _ in b]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_batch_shared_between_threads_matches_one_thread(
    metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vecstore.query import executor

    store = memory_store()
    spec = spec_for(metric, 16)
    x = clustered(4000, 16, 20, seed=7, spread=0.5)
    write(store, spec, dense_records(x, [{"g": i % 5} for i in range(4000)]), per_cluster=200)
    one = Reader(store, spec, threads=1)
    many = Reader(store, spec, threads=3)
    monkeypatch.setattr(executor, "PARALLEL_WORK", 0)
    qs = np.random.default_rng(4).standard_normal((60, 16)).astype(np.float32)
    for kwargs in ({"nprobe": 1}, {"nprobe": 4}, {"filter": {"g": {"$in": [1, 3]}}}):
        a = one.query_batch(qs, top_k=7, namespace="ns", **kwargs)
        b = many.query_batch(qs, top_k=7, namespace="ns", **kwargs)
        assert [[i for i, _ in r] for r in a] == [[i for i, _ in r] for r in b]
        for ra, rb in zip(a, b, strict=True):
            np.testing.assert_allclose([s for _, s in ra], [s for _, s in rb], rtol=1e-6)


def test_ties_are_broken_by_storage_position() -> None:
    store = memory_store()
    spec = spec_for("euclidean", 8)
    x = clustered(400, 8, 4, seed=2)
    x[:30] = x[0]  # 30 identical records: tied scores across the top-k boundary
    write(store, spec, dense_records(x), per_cluster=100)
    reader = Reader(store, spec)
    res = reader.query(namespace="ns", vector=x[0], top_k=5, nprobe=100)
    assert [m.id for m in res.matches] == [f"r{i}" for i in range(5)]
    assert all(m.score == 0.0 for m in res.matches)


def test_single_path_with_values_metadata_and_a_tiny_cache() -> None:
    store = memory_store()
    spec = spec_for("cosine", 8)
    x = clustered(500, 8, 5, seed=3)
    write(store, spec, dense_records(x, [{"i": i} for i in range(500)]), per_cluster=100)
    for reader in (Reader(store, spec), Reader(store, spec, cache_bytes=0)):
        res = reader.query(
            namespace="ns", vector=x[42], top_k=3, include_values=True, include_metadata=True
        )
        top = res.matches[0]
        assert (top.id, top.metadata) == ("r42", {"i": 42})
        assert top.values == x[42].tolist()
        assert top.score == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------ manifests


def test_local_listing_is_skipped_while_the_directory_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(str(tmp_path))
    spec = spec_for("cosine", 8)
    x = clustered(300, 8, 3, seed=5)
    write(store, spec, dense_records(x))
    mdir = store.path("indexes/idx/namespaces/ns/_manifests")
    old = time.time() - 60
    os.utime(mdir, (old, old))  # as if committed a minute ago
    calls: list[str] = []
    real = manifests.manifest_versions

    def counting(*a: Any, **k: Any) -> list[int]:
        calls.append("list")
        return real(*a, **k)

    monkeypatch.setattr(manifests, "manifest_versions", counting)
    reader = Reader(store, spec)
    for _ in range(5):
        assert reader.query(namespace="ns", vector=x[0], top_k=1).matches[0].id == "r0"
    assert len(calls) == 1  # listed once; then one stat per query
    # a new version lands (the directory changes): seen by the very next query
    write(store, spec, [{"id": f"n{i}", "values": x[i].tolist()} for i in range(300)])
    assert reader.query(namespace="ns", vector=x[0], top_k=1).matches[0].id == "n0"
    # a directory changed within the last seconds is listed on every query
    n = len(calls)
    reader.query(namespace="ns", vector=x[0], top_k=1)
    assert len(calls) == n + 1
    manifests.delete_namespace(store, spec.name, "ns")
    assert reader.query(namespace="ns", vector=x[0], top_k=1).matches == []


# --------------------------------------------------------------- filters


def test_nin_on_booleans_does_not_mix_kinds() -> None:
    """{"y": {"$nin": [0]}} matches y=false (false is not the number 0), so
    pruning must keep a cluster whose y values are all false."""
    from segwriter import records_to_table

    from vecstore.metadata import column_stats

    t = records_to_table(
        [{"id": "0", "values": [0.0, 0.0], "metadata": {"y": False}}], spec_for("cosine", 2)
    )
    for flt in ({"y": {"$nin": [0]}}, {"y": {"$ne": 0}}, {"y": {"$ne": 1}}):
        node = parse_filter(flt)
        assert node is not None and may_match(node, column_stats(t), 1)
    node = parse_filter({"y": {"$ne": False}})
    assert node is not None and not may_match(node, column_stats(t), 1)


def test_remote_fetch_reads_row_groups_without_downloading_segments(tmp_path: Path) -> None:
    """On a remote store a fetch reads the footer and one row group with
    ranged reads; a scan downloads the segment into the disk cache."""
    counting = ByteCountingStore(f"memory://remote-{os.getpid()}-{time.time_ns()}")
    x, ids = _namespace(counting)
    counting.is_remote = True  # as a remote store: reads go through the disk cache
    reader = Reader(counting, spec_for("euclidean", 128), cache_dir=str(tmp_path / "disk"))
    assert reader.source.disk is not None
    res = reader.fetch([ids[3], ids[900]], namespace="ns")
    assert [v.values for v in res.vectors.values()] == [x[3].tolist(), x[900].tolist()]

    def downloaded() -> int:
        return len([p for p in (tmp_path / "disk").rglob("*") if p.is_file()])

    m = manifests.load_namespace(counting, "idx", "ns")
    assert m is not None
    assert downloaded() == len(m.id_files)  # the id lookup, no segment
    assert counting.segment_bytes < sum(c.byte_size for c in m.clusters) / 2
    q = reader.query(namespace="ns", vector=x[7], top_k=1, nprobe=1)
    assert q.matches[0].id == ids[7]
    assert downloaded() == len(m.id_files) + 1  # the scanned segment


def test_matvec_into_a_strided_output() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4000, 128)).astype(np.float32)
    q = rng.standard_normal(128).astype(np.float32)
    out = np.zeros((4000, 2), dtype=np.float32)
    kernels.matvec_into(x, q, out[:, 0])  # not contiguous: no stacked view of it
    np.testing.assert_allclose(out[:, 0], x @ q, rtol=1e-4, atol=1e-3)
    assert not out[:, 1].any()
