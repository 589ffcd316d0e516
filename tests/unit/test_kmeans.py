"""Hierarchical k-means (issue 9 item 5, docs/kmeans.md): close to a flat fit,
seeded, bounded, and the flat path unchanged below FLAT_MAX_K."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecstore import kmeans
from vecstore.schemas.metrics import Metric


def _mixture(n: int, d: int, blobs: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(blobs, d)) * 3
    lab = rng.integers(0, blobs, n)
    scale = rng.uniform(0.5, 2, size=(blobs, 1))
    return (centers[lab] + rng.normal(size=(n, d)) * scale[lab]).astype(np.float32)


def test_hierarchical_inertia_is_close_to_flat() -> None:
    x = _mixture(60_000, 16, 40)
    k = 240
    flat = kmeans.fit_flat(x, k, seed=3)
    hier = kmeans.fit_parts([x[:25_000], x[25_000:]], k, seed=3)
    assert len(hier) == k and hier.dtype == np.float32
    ratio = kmeans.inertia(x, hier) / kmeans.inertia(x, flat)
    assert ratio < 1.03, ratio


def test_fit_dispatches_on_flat_max_k() -> None:
    x = _mixture(20_000, 8, 10, seed=1)
    assert np.array_equal(kmeans.fit(x, 50, seed=2), kmeans.fit_flat(x, 50, seed=2))
    assert np.array_equal(
        kmeans.fit(x, 50, seed=2, flat_max_k=10), kmeans.fit_parts([x], 50, seed=2)
    )


def test_hierarchical_is_deterministic_and_seeded() -> None:
    x = _mixture(30_000, 8, 20, seed=2)
    a = kmeans.fit_parts([x[:10_000], x[10_000:]], 100, seed=7)
    b = kmeans.fit_parts([x[:10_000], x[10_000:]], 100, seed=7)
    c = kmeans.fit_parts([x[:10_000], x[10_000:]], 100, seed=8)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_cosine_centroids_are_unit() -> None:
    x = _mixture(20_000, 8, 10, seed=4) * np.float32(50)
    c = kmeans.fit_parts([x], 64, seed=0, metric=Metric.COSINE)
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, rtol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 2_000), min_size=1, max_size=40),
    k=st.integers(1, 5_000),
)
def test_allocate_splits_k_over_cells(counts: list[int], k: int) -> None:
    c = np.array(counts)
    a = kmeans.allocate(c, k)
    assert int(a.sum()) == min(k, int(c.sum()))
    assert (a <= c).all() and (a >= 0).all()
    if k >= int((c > 0).sum()):
        assert ((a >= 1) == (c > 0)).all()  # every non-empty cell trains


@pytest.mark.parametrize("k", [2, 1025, 40_000, 65_536])
def test_cells_and_groups_cover_every_cell_once(k: int) -> None:
    kc = kmeans.coarse_k(k)
    assert kc * kc >= k and (kc - 1) ** 2 < max(k, 2)
    groups = kmeans.cell_groups(k, kmeans.sample_size(k), 32)
    assert 1 <= groups <= kc
    seen = [j for g in range(groups) for j in kmeans.cells_of_group(g, kc, groups)]
    assert seen == list(range(kc))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(50, 3_000), k=st.integers(2, 60))
def test_assign_picks_the_nearest_hierarchical_centroid(seed: int, n: int, k: int) -> None:
    x = _mixture(n, 6, 5, seed=seed)
    c = kmeans.fit_parts([x], k, seed=seed)
    own = kmeans.assign(x, c)
    d = ((x[:, None, :].astype(np.float64) - c[None].astype(np.float64)) ** 2).sum(axis=2)
    mine = d[np.arange(n), own]
    assert (mine <= d.min(axis=1) * (1 + 1e-5) + 1e-6).all()


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_the_import_tasks_compose_to_fit_parts(tmp_path: Any, metric: str) -> None:
    """The tasks the driver chains (run here in-process, in its order, with
    G cell groups) give exactly kmeans.fit_parts on the same parts."""
    from vecstore.pipelines import plan as P
    from vecstore.pipelines import tasks
    from vecstore.schemas import IndexSpec
    from vecstore.storage import Store

    store = Store(str(tmp_path / "store"))
    spec = IndexSpec(name="idx", dimension=8, metric=metric)
    ctx = P.Context.make(store, store, spec, "job1", "continue")
    x = _mixture(24_000, 8, 30, seed=9)
    parts = np.array_split(x, 5)
    k, frac, groups = 90, 0.3, 4
    subsets = [tasks.coarse_subset(ctx, i, frac, s) for i, s in enumerate(parts)]
    coarse = tasks.train_coarse(ctx, k, *subsets)
    counts = [tasks.route(ctx, "ns", i, groups, s, coarse) for i, s in enumerate(parts)]
    rows = [tasks.cell_rows(ctx, "ns", g, *counts) for g in range(groups)]
    cells = [tasks.train_cells(ctx, g, groups, k, coarse, rows[g], *counts) for g in range(groups)]
    for _ in range(kmeans.REFINE_ITER):
        state = tasks.gather_cells(ctx, *cells)
        cells = [tasks.refine_cells(ctx, g, groups, len(coarse), rows[g], state)
                 for g in range(groups)]
    got = tasks.join_cells(ctx, tasks.gather_cells(ctx, *cells))
    want = kmeans.fit_parts(list(parts), k, seed=ctx.seed, metric=Metric(metric),
                            coarse_frac=frac)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert len(got) == len(want) <= k


def _bucket_rows(counts: np.ndarray, k: int, groups: int) -> np.ndarray:
    """Rows per bucket under the scan's rule (contiguous ranges of positions)."""
    pos = np.arange(len(counts))
    return np.bincount(np.minimum(groups - 1, pos * groups // k), weights=counts, minlength=groups)


def test_balanced_order_evens_the_buckets() -> None:
    rng = np.random.default_rng(5)
    counts = np.sort(rng.pareto(1.2, 250) * 1000).astype(np.int64) + 1  # skewed, sorted: the worst case
    k, groups = 250, 7
    before = _bucket_rows(counts, k, groups)
    order = kmeans.balanced_order(counts, k, groups)
    assert sorted(order.tolist()) == list(range(250))  # a permutation
    after = _bucket_rows(counts[order], k, groups)
    assert after.sum() == before.sum()
    assert before.max() / before.mean() > 2.0
    assert after.max() - after.min() <= counts.max()  # within one cluster of even
    assert after.max() < 0.6 * before.max()
    # each bucket keeps its number of clusters; fewer centroids than k (duplicates dropped)
    fewer = counts[:240]
    o = kmeans.balanced_order(fewer, k, groups)
    assert sorted(o.tolist()) == list(range(240))
    assert _bucket_rows(fewer[o], k, groups).max() < 0.6 * _bucket_rows(fewer, k, groups).max()
    # one bucket, or one cluster: unchanged
    assert kmeans.balanced_order(counts, k, 1).tolist() == list(range(250))
    assert kmeans.balanced_order(np.array([5.0]), 1, 4).tolist() == [0]
    assert np.array_equal(order, kmeans.balanced_order(counts, k, groups))  # deterministic
