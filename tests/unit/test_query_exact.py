"""Scores and rankings against numpy brute force, argument checks, responses."""

from __future__ import annotations

from typing import Any

import numpy as np
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

from vecstore.errors import FilterError, InvalidArgumentError
from vecstore.reader import Reader
from vecstore.schemas import QueryResponse

N, D = 600, 12


def build(metric: str, per_cluster: int = 64, n: int = N) -> tuple[Reader, np.ndarray]:
    store = memory_store()
    spec = spec_for(metric, D)
    x = clustered(n, D, 8, seed=1)
    if metric == "dotproduct":
        x *= np.random.default_rng(2).uniform(0.5, 2.0, (n, 1)).astype(np.float32)
    metas = [{"i": i, "g": ["a", "b", "c"][i % 3]} for i in range(n)]
    write(store, spec, dense_records(x, metas), per_cluster=per_cluster)
    return Reader(store, spec), x


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
@pytest.mark.parametrize("path", ["full-scan", "probe-everything"])
def test_dense_exact(metric: str, path: str) -> None:
    # full scan: one big cluster (a small namespace); probe-everything: many
    # clusters and nprobe >= their number.
    reader, x = build(metric, per_cluster=10_000 if path == "full-scan" else 50)
    state = reader.namespace_state("ns")
    assert state is not None
    assert (state.k == 1) == (path == "full-scan")
    rng = np.random.default_rng(3)
    for _ in range(5):
        q = rng.standard_normal(D).astype(np.float32) * 2
        res = reader.query(namespace="ns", vector=q.tolist(), top_k=7, nprobe=10_000)
        want = brute(x, q, metric)
        ids = [m.id for m in res.matches]
        assert ids == top_ids(want, 7, metric)
        got = np.array([m.score for m in res.matches])
        np.testing.assert_allclose(got, want[[int(i[1:]) for i in ids]], rtol=1e-4, atol=1e-3)
        batch = reader.query_batch(q[None, :], top_k=7, namespace="ns", nprobe=10_000)
        assert [i for i, _ in batch[0]] == ids


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "dotproduct"])
def test_batch_matches_single_queries(metric: str) -> None:
    reader, _ = build(metric, per_cluster=40)
    rng = np.random.default_rng(5)
    qs = rng.standard_normal((25, D)).astype(np.float32)
    for nprobe in (1, 3, None):
        batch = reader.query_batch(qs, top_k=9, namespace="ns", nprobe=nprobe)
        for q, got in zip(qs, batch, strict=True):
            one = reader.query(namespace="ns", vector=q, top_k=9, nprobe=nprobe)
            assert [i for i, _ in got] == [m.id for m in one.matches]
            np.testing.assert_allclose(
                [s for _, s in got], [m.score for m in one.matches], rtol=1e-5
            )


def test_euclidean_scores_are_squared_distances_ascending() -> None:
    reader, x = build("euclidean")
    q = x[17] + 0.01
    res = reader.query(namespace="ns", vector=q.tolist(), top_k=5)
    assert res.matches[0].id == "r17"
    scores = [m.score for m in res.matches]
    assert scores == sorted(scores)
    assert scores[0] == pytest.approx(float(((x[17] - q) ** 2).sum()), rel=1e-3, abs=1e-5)


def test_include_values_and_metadata() -> None:
    reader, x = build("cosine")
    res = reader.query(
        namespace="ns", vector=x[3].tolist(), top_k=3, include_values=True, include_metadata=True
    )
    top = res.matches[0]
    assert top.id == "r3"
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert top.values == pytest.approx(x[3].tolist())
    assert top.metadata == {"i": 3, "g": "a"}
    bare = reader.query(namespace="ns", vector=x[3].tolist(), top_k=3)
    assert bare.matches[0].values is None and bare.matches[0].metadata is None
    assert isinstance(bare, QueryResponse) and bare.namespace == "ns"


def test_query_by_id() -> None:
    reader, x = build("euclidean")
    by_id = reader.query(namespace="ns", id="r42", top_k=4)
    by_vec = reader.query(namespace="ns", vector=x[42].tolist(), top_k=4)
    assert [m.id for m in by_id.matches] == [m.id for m in by_vec.matches]
    assert by_id.matches[0].id == "r42"
    assert reader.query(namespace="ns", id="nope", top_k=4).matches == []


def test_top_k_larger_than_namespace_returns_everything() -> None:
    reader, _ = build("cosine", n=50)
    res = reader.query(namespace="ns", vector=[1.0] * D, top_k=10_000)
    assert len(res.matches) == 50
    assert len({m.id for m in res.matches}) == 50


def test_missing_namespace_is_empty() -> None:
    reader, _ = build("cosine")
    res = reader.query(namespace="other", vector=[1.0] * D, top_k=3)
    assert res.matches == [] and res.namespace == "other"
    assert reader.query_batch(np.ones((2, D)), namespace="other") == [[], []]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"vector": [1.0] * D, "top_k": 0}, "top_k"),
        ({"vector": [1.0] * D, "top_k": 10_001}, "top_k"),
        ({"vector": [1.0] * D, "top_k": True}, "top_k"),
        ({"vector": [1.0] * 5}, f"dimension 5 does not match the dimension of the index {D}"),
        ({"vector": [float("nan")] * D}, "finite"),
        ({}, "needs a vector"),
        ({"vector": [1.0] * D, "id": "r1"}, "not both"),
        ({"vector": [1.0] * D, "sparse_vector": {"indices": [1], "values": [1.0]}}, "dotproduct"),
        ({"vector": [1.0] * D, "nprobe": 0}, "nprobe"),
        ({"vector": [1.0] * D, "filter": {"g": {"$bad": 1}}}, '"$bad" at "g"'),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], needle: str) -> None:
    reader, _ = build("cosine", n=40)
    with pytest.raises(InvalidArgumentError) as err:
        reader.query(namespace="ns", **kwargs)
    assert needle in str(err.value)


def test_filter_error_type() -> None:
    reader, _ = build("cosine", n=40)
    with pytest.raises(FilterError):
        reader.query(namespace="ns", vector=[1.0] * D, filter={"g": {"$in": "a"}})


# ------------------------------------------------------------ sparse/hybrid


def sparse_records(n: int, seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[int, float]]]:
    rng = np.random.default_rng(seed)
    recs, dicts = [], []
    for i in range(n):
        k = int(rng.integers(1, 8))
        idx = sorted(rng.choice(40, k, replace=False).tolist())
        if i % 7 == 0:
            idx = [int(v) + 4_000_000_000 for v in idx[:1]] + idx[1:]
        vals = rng.uniform(0.1, 2.0, len(idx)).round(3).tolist()
        recs.append(
            {
                "id": f"r{i}",
                "sparse_values": {"indices": idx, "values": vals},
                "metadata": {"even": i % 2 == 0},
            }
        )
        dicts.append(dict(zip(idx, vals, strict=True)))
    return recs, dicts


def sparse_dot(d: dict[int, float], q: dict[int, float]) -> float:
    return sum(v * q.get(i, 0.0) for i, v in d.items())


def test_sparse_exact_with_filter() -> None:
    store = memory_store()
    spec = spec_for("dotproduct", None, "sparse")
    recs, dicts = sparse_records(300)
    write(store, spec, recs, per_cluster=64)
    reader = Reader(store, spec)
    q = {3: 1.0, 7: 0.5, 11: 2.0, 4_000_000_003: 1.5}
    sv = {"indices": list(q), "values": list(q.values())}
    for flt, allowed in ((None, lambda i: True), ({"even": True}, lambda i: i % 2 == 0)):
        res = reader.query(
            namespace="ns", sparse_vector=sv, top_k=15, filter=flt, include_values=True
        )
        want = sorted(
            (
                (sparse_dot(d, q), i)
                for i, d in enumerate(dicts)
                if allowed(i) and sparse_dot(d, q) != 0
            ),
            key=lambda t: (-t[0], f"r{t[1]}"),
        )[:15]
        assert [m.id for m in res.matches] == [f"r{i}" for _, i in want]
        np.testing.assert_allclose([m.score for m in res.matches], [s for s, _ in want], rtol=1e-5)
        top = res.matches[0]
        assert top.values is None and top.sparse_values is not None
        assert dict(
            zip(top.sparse_values.indices, top.sparse_values.values, strict=True)
        ) == pytest.approx(dicts[int(top.id[1:])])
    by_id = reader.query(namespace="ns", id="r5", top_k=1)
    assert by_id.matches[0].id == "r5"
    with pytest.raises(InvalidArgumentError):
        reader.query(namespace="ns", vector=[1.0, 2.0])


def test_hybrid_exact() -> None:
    store = memory_store()
    spec = spec_for("dotproduct", D)
    assert spec.record_layout == "hybrid"
    x = clustered(400, D, 5, seed=9)
    recs, dicts = sparse_records(400, seed=4)
    for i, r in enumerate(recs):
        r["values"] = x[i].tolist()
        if i % 5 == 0:
            r["sparse_values"] = None
            dicts[i] = {}
    write(store, spec, recs, per_cluster=50)
    reader = Reader(store, spec)
    rng = np.random.default_rng(1)
    qd = rng.standard_normal(D).astype(np.float32)
    qs = {1: 3.0, 5: 2.0, 9: 1.0}
    res = reader.query(
        namespace="ns",
        vector=qd.tolist(),
        sparse_vector={"indices": list(qs), "values": list(qs.values())},
        top_k=10,
        nprobe=100,
    )
    want = x.astype(np.float64) @ qd + np.array([sparse_dot(d, qs) for d in dicts])
    assert [m.id for m in res.matches] == top_ids(want, 10, "dotproduct")
    np.testing.assert_allclose([m.score for m in res.matches], np.sort(want)[::-1][:10], rtol=1e-4)
    dense_only = reader.query(namespace="ns", vector=qd.tolist(), top_k=10, nprobe=100)
    assert [m.id for m in dense_only.matches] == top_ids(
        x.astype(np.float64) @ qd, 10, "dotproduct"
    )
