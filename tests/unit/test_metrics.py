"""vecstore.schemas.metrics: the one home of metric math, checked against plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore import kmeans
from vecstore.schemas import IndexSpec, RecordLayout
from vecstore.schemas.metrics import Metric, unit_rows

RNG = np.random.default_rng(7)
X = RNG.normal(size=(50, 6)).astype(np.float32)
Q = RNG.normal(size=(3, 6)).astype(np.float32)


def _reference(metric: Metric, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """(q, n) scores Pinecone reports: cosine similarity, squared distance, dot."""
    if metric is Metric.COSINE:
        return (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (
            x / np.linalg.norm(x, axis=1, keepdims=True)
        ).T
    if metric is Metric.EUCLIDEAN:
        return ((q[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    return q @ x.T


def _internal(metric: Metric, x: np.ndarray, q: np.ndarray) -> np.ndarray:
    inv, sq = metric.row_terms(x)
    return metric.finish_scores(metric.prepare_queries(q) @ x.T, inv, sq)


def test_every_member_has_rules() -> None:
    for m in Metric:
        assert isinstance(m.unit_vectors, bool) and isinstance(m.supports_sparse, bool)
        assert Metric(m.value) is m and m == m.value


@pytest.mark.parametrize("metric", list(Metric))
def test_public_scores_match_the_definition(metric: Metric) -> None:
    internal = _internal(metric, X, Q)
    for i, q in enumerate(Q):
        public = metric.public_scores(internal[i], float(np.dot(q, q)))
        np.testing.assert_allclose(public, _reference(metric, X, Q)[i], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", list(Metric))
def test_higher_internal_score_is_better(metric: Metric) -> None:
    internal = _internal(metric, X, Q)
    ref = _reference(metric, X, Q)
    for i in range(len(Q)):
        best = np.argsort(-internal[i], kind="stable")[:5]
        want = np.argsort(ref[i] if metric is Metric.EUCLIDEAN else -ref[i], kind="stable")[:5]
        assert best.tolist() == want.tolist()


@pytest.mark.parametrize("metric", list(Metric))
def test_lean_path_equals_batch_path(metric: Metric) -> None:
    inv, sq = metric.row_terms(X)
    batch = _internal(metric, X, Q)
    for i, q in enumerate(Q):
        lean = metric.finish_scores(X @ metric.scaled_query(q), inv, sq, scaled=True)
        np.testing.assert_allclose(lean, batch[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", list(Metric))
def test_score_to_distance(metric: Metric) -> None:
    qsq = 2.5
    for s in (-1.0, 0.0, 0.75, 2.0):
        public = float(metric.public_scores(np.array([s], np.float32), qsq)[0])
        want = max(qsq - s, 0.0) if metric is Metric.EUCLIDEAN else s
        assert public == pytest.approx(want)
    assert metric.public_score_list([0.5, 1.0], qsq) == pytest.approx(
        metric.public_scores(np.array([0.5, 1.0], np.float32), qsq).tolist()
    )


@pytest.mark.parametrize("metric", list(Metric))
def test_centroid_ranking(metric: Metric) -> None:
    cents = metric.normalize_rows(RNG.normal(size=(8, 6)).astype(np.float32))
    csq = np.einsum("ij,ij->i", cents, cents)
    ranked = np.argsort(-metric.rank_scores(metric.prepare_queries(Q) @ cents.T, csq), axis=1)
    want = np.argsort(
        _reference(metric, cents, Q) * (1 if metric is Metric.EUCLIDEAN else -1), axis=1
    )
    assert ranked[:, :3].tolist() == want[:, :3].tolist()
    for i, q in enumerate(Q):
        lean = metric.rank_scores_scaled(cents @ metric.scaled_query(q), csq)
        assert np.argsort(-lean)[:3].tolist() == ranked[i, :3].tolist()


def test_cosine_rows_at_unit_length_need_no_terms() -> None:
    assert Metric.COSINE.row_terms(unit_rows(X)) == (None, None)
    inv, sq = Metric.COSINE.row_terms(X)
    assert sq is None and inv is not None
    np.testing.assert_allclose(inv, 1 / np.linalg.norm(X, axis=1), rtol=1e-6)
    assert Metric.DOTPRODUCT.row_terms(X) == (None, None)


def test_zero_vectors_stay_zero() -> None:
    z = np.zeros((2, 3), np.float32)
    assert not unit_rows(z).any()
    assert not Metric.COSINE.prepare_queries(z).any()
    assert not Metric.COSINE.scaled_query(z[0]).any()


def test_clustering_space_follows_the_metric() -> None:
    x = RNG.normal(size=(200, 4)).astype(np.float32) * 5
    cos = kmeans.fit(x, 4, seed=1, metric=Metric.COSINE)
    np.testing.assert_allclose(np.linalg.norm(cos, axis=1), 1.0, rtol=1e-5)
    l2 = kmeans.fit(x, 4, seed=1, metric=Metric.EUCLIDEAN)
    assert np.linalg.norm(l2, axis=1).max() > 1.01
    a = kmeans.assign(x, cos, metric=Metric.COSINE)
    want = np.argmin(((unit_rows(x)[:, None] - cos[None]) ** 2).sum(2), axis=1)
    assert (a == want).all()


def test_index_defaults_and_layout() -> None:
    assert Metric.default_for(sparse=True) is Metric.DOTPRODUCT
    assert Metric.default_for(sparse=False) is Metric.COSINE
    assert Metric.sparse_metrics() == (Metric.DOTPRODUCT,)
    spec = IndexSpec(name="a", dimension=3, metric="dotproduct")
    assert spec.metric is Metric.DOTPRODUCT and spec.record_layout is RecordLayout.HYBRID
    assert IndexSpec(name="a", dimension=3).record_layout is RecordLayout.DENSE
    assert '"metric":"dotproduct"' in spec.model_dump_json()
