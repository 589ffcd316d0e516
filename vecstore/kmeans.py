"""k-means for centroid partitioning: pure, seeded functions (numpy / sklearn).

- :func:`choose_k` picks the number of clusters from the record count:
  ``clamp(4 * sqrt(n), target / 4, target)`` records per cluster with the
  default target 4,096, i.e. 1,024 per cluster up to 65,536 records, growing
  to 4,096 at ~1M (DESIGN "Clustering": roughly 1-4k records per cluster).
- :func:`fit` trains on a sample (FAISS's rule: at most 256 points per
  centroid) with *random* initialisation: k-means++ is ~6x slower at large k
  on these machines (PERF-NOTES) for no recall gain after Lloyd iterations.
- :func:`assign` maps points to their nearest centroid with blocked GEMM.

Past :data:`FLAT_MAX_K` clusters, :func:`fit` trains hierarchically
(:func:`fit_parts`, docs/kmeans.md): ``kc = ceil(sqrt(k))`` coarse centroids
on a ``256 * kc`` subsample, the sample routed to its coarse cell, then
``k_j`` sub-centroids per cell (``k_j`` proportional to the cell's share of
the sample, :func:`allocate`) trained on that cell's points only. A Lloyd
iteration then costs ``~256 * k**1.5 * d`` multiply-adds instead of
``256 * k**2 * d``, and the cells train independently (the import runs them
as parallel tasks, :mod:`vecstore.pipelines.tasks`). The pieces are pure and
seeded (each cell by ``(seed, cell)``), so the in-memory and the distributed
composition agree for the same parts.

Cosine indexes cluster L2-normalised vectors and keep normalised centroids
(:meth:`vecstore.schemas.metrics.Metric.normalize_rows`).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from vecstore import extras
from vecstore.schemas.metrics import Metric

TARGET_PER_CLUSTER = 4096  # the upper end of DESIGN's 1-4k (the default target)
PER_CLUSTER_SQRT = 4.0  # records per cluster grow as 4 * sqrt(n) between target/4 and target
POINTS_PER_CENTROID = 256
MAX_K = 65_536
MAX_ITER = 10  # as FAISS's IVF training; recall is flat beyond
FLAT_MAX_K = 1024  # up to this k one flat fit (as before); above it, hierarchical
_BLOCK = 16_384


def records_per_cluster(n: int, target: int = TARGET_PER_CLUSTER) -> int:
    """Records per cluster wanted for ``n`` records: ``4 * sqrt(n)`` kept
    within ``[target / 4, target]`` (default: 1,024 to 4,096).

    Small and medium namespaces get the smallest clusters DESIGN allows: a
    query then probes fewer rows for the same recall (the share of clusters
    needed falls as k grows). Large ones get larger clusters, so that
    training stays cheap (k-means costs ~ n * k): 1,000,000 records give
    250 clusters of 4,000."""
    target = max(1, int(target))
    low = max(1, target // 4)
    return int(min(target, max(low, round(PER_CLUSTER_SQRT * math.sqrt(max(n, 0))))))


def choose_k(n: int, target: int = TARGET_PER_CLUSTER) -> int:
    """Clusters for ``n`` records: ``n // records_per_cluster(n, target)``, at least 1.

    Rounding down keeps the mean cluster at or above the per-cluster size."""
    if n <= 0:
        return 1
    return int(min(MAX_K, max(1, n // records_per_cluster(n, target))))


def sample_size(k: int) -> int:
    return k * POINTS_PER_CENTROID


def fit(
    sample: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    metric: Metric = Metric.EUCLIDEAN,
    flat_max_k: int | None = None,
) -> np.ndarray:
    """Train ``k`` centroids on ``sample`` (n, d); returns (k', d) float32, k' <= k.

    ``metric`` decides the space clustered in (cosine: unit vectors). Up to
    ``flat_max_k`` (default :data:`FLAT_MAX_K`) clusters one flat k-means;
    above it the hierarchical :func:`fit_parts`."""
    limit = FLAT_MAX_K if flat_max_k is None else flat_max_k
    if k <= limit:
        return fit_flat(sample, k, seed=seed, metric=metric)
    return fit_parts([sample], k, seed=seed, metric=metric)


def fit_flat(
    sample: np.ndarray, k: int, *, seed: int = 0, metric: Metric = Metric.EUCLIDEAN
) -> np.ndarray:
    """One flat k-means (random init, :data:`MAX_ITER` Lloyd iterations) on at
    most ``256 * k`` points of ``sample``; duplicates dropped, rows sorted."""
    metric = Metric(metric)
    x = np.ascontiguousarray(sample, dtype=np.float32)
    uniq = min(k, len(x))
    if uniq <= 1:
        c = metric.normalize_rows(x[:1].copy()) if len(x) else np.zeros((1, x.shape[1]), np.float32)
        return metric.normalize_rows(c)
    rng = np.random.default_rng(seed)
    if len(x) > sample_size(uniq):  # sampled before normalising: no copy of a large input
        x = x[np.sort(rng.choice(len(x), sample_size(uniq), replace=False))]
    x = metric.normalize_rows(x)
    from sklearn.cluster import KMeans

    km = KMeans(
        n_clusters=uniq,
        init="random",
        n_init=1,
        max_iter=MAX_ITER,
        tol=1e-4,
        random_state=int(rng.integers(2**31 - 1)),
        algorithm="lloyd",
    )
    km.fit(x)
    centroids = np.asarray(km.cluster_centers_, dtype=np.float32)
    # drop empty clusters (k-means can leave duplicates when data has few distinct points)
    centroids = np.unique(centroids, axis=0)
    return metric.normalize_rows(centroids)


def balanced_order(counts: np.ndarray, k: int, groups: int) -> np.ndarray:
    """A new order of the clusters (``counts``: rows each, ``len(counts) <= k``)
    in which the import's bucket rule -- position ``i`` goes to bucket
    ``min(groups - 1, i * groups // k)``, contiguous ranges -- gives buckets
    of about equal rows: each bucket keeps its number of positions, and the
    clusters, largest first, go to the open bucket with the fewest rows so
    far (each bucket's clusters then in their old order). Deterministic.

    k-means leaves clusters of very different sizes (1M x 128 here: 1 to
    33,480 rows, mean 4,000), and with centroids in sorted order the ranges
    held 50k to 207k rows: one gather task held four times another's rows
    and ran alone at the end of the phase."""
    n = len(counts)
    groups = max(1, min(int(groups), n))
    if groups <= 1 or n <= 1:
        return np.arange(n, dtype=np.int64)
    room = np.bincount(np.minimum(groups - 1, np.arange(n) * groups // max(k, n)), minlength=groups)
    sums = np.zeros(groups, np.float64)
    members: list[list[int]] = [[] for _ in range(groups)]
    for c in np.argsort(-np.asarray(counts, np.float64), kind="stable").tolist():
        open_ = np.flatnonzero(room > 0)
        g = int(open_[np.argmin(sums[open_])])
        members[g].append(c)
        sums[g] += counts[c]
        room[g] -= 1
    return np.array([c for m in members for c in sorted(m)], np.int64)


# ------------------------------------------------------------ hierarchical


def coarse_k(k: int) -> int:
    """Coarse cells of a hierarchical fit: ``ceil(sqrt(k))``, at least 2."""
    return max(2, math.isqrt(max(k, 1) - 1) + 1)


def coarse_subset(part: np.ndarray, fraction: float, *, seed: int, index: int) -> np.ndarray:
    """A seeded ``fraction`` of one sample part (rows kept in order): the
    coarse training set is the union of these over the parts."""
    if fraction >= 1.0:
        return np.asarray(part, dtype=np.float32)
    rng = np.random.default_rng([seed, 2, index])
    return np.asarray(part[rng.random(len(part)) < fraction], dtype=np.float32)


def coarse_fraction(k: int, sample_rows: int) -> float:
    """Share of the sample the coarse fit trains on (``256 * coarse_k(k)`` rows)."""
    return min(1.0, sample_size(coarse_k(k)) / max(1, sample_rows))


def fit_coarse(
    subset: np.ndarray, k: int, *, seed: int = 0, metric: Metric = Metric.EUCLIDEAN
) -> np.ndarray:
    """The coarse centroids of a hierarchical fit of ``k`` (``coarse_k(k)`` of them)."""
    return fit_flat(subset, coarse_k(k), seed=_mix(seed, 1, 0), metric=metric)


def allocate(counts: np.ndarray, k: int) -> np.ndarray:
    """Sub-centroids per coarse cell: proportional to the cell's sample
    ``counts`` (largest remainder), summing to ``min(k, counts.sum())``,
    at least 1 for a non-empty cell, at most its count."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    want = min(int(k), total)
    out = np.zeros(len(counts), np.int64)
    if want <= 0:
        return out
    nonempty = counts > 0
    base = np.where(nonempty, 1, 0)
    rest = want - int(base.sum())
    if rest < 0:  # more non-empty cells than clusters: the largest cells get one
        order = np.lexsort((np.arange(len(counts)), -counts))
        out[order[:want]] = 1
        return out
    share = counts * (rest / total)
    extra = np.minimum(np.floor(share).astype(np.int64), counts - base)
    left = rest - int(extra.sum())
    room = counts - base - extra
    frac = share - np.floor(share)
    order = np.lexsort((np.arange(len(counts)), -frac))
    while left > 0:  # hand out the remainder, largest fractions first, where room is left
        for j in order:
            if left == 0:
                break
            if room[j] > 0:
                extra[j] += 1
                room[j] -= 1
                left -= 1
    return np.asarray(base + extra, dtype=np.int64)


def fit_cell(
    points: np.ndarray,
    k_cell: int,
    *,
    seed: int = 0,
    cell: int = 0,
    metric: Metric = Metric.EUCLIDEAN,
) -> np.ndarray:
    """The sub-centroids of one coarse cell (seeded by ``(seed, cell)``)."""
    if k_cell <= 0 or len(points) == 0:
        return np.zeros((0, points.shape[1]), np.float32)
    return fit_flat(points, k_cell, seed=_mix(seed, 3, cell), metric=metric)


def finish(cells: list[np.ndarray], dim: int, metric: Metric = Metric.EUCLIDEAN) -> np.ndarray:
    """Concatenate per-cell centroids (in cell order), drop duplicates."""
    parts = [c for c in cells if len(c)]
    if not parts:
        return np.zeros((1, dim), np.float32)
    return Metric(metric).normalize_rows(np.unique(np.concatenate(parts), axis=0))


NEAR = 3  # coarse cells a sample row is refined against (its nearest ones)
REFINE_ITER = 4  # Lloyd iterations over cell boundaries after the per-cell fits
GROUP_BYTES = 64 * 1024 * 1024  # sample bytes per cell-training task (about)
MIN_GROUPS = 4


def cell_groups(k: int, sample_rows: int, dim: int) -> int:
    """Cell-training tasks of a hierarchical fit: one per ~64 MB of sample,
    at least 4 (so several workers train), at most one per coarse cell."""
    by_size = math.ceil(sample_rows * max(dim, 1) * 4 / GROUP_BYTES)
    return int(min(coarse_k(k), max(MIN_GROUPS, by_size)))


def group_of(cells: np.ndarray, kc: int, groups: int) -> np.ndarray:
    """The cell-training task of each coarse cell: contiguous ranges of cells."""
    return (np.asarray(cells, dtype=np.int64) * groups // max(kc, 1)).astype(np.int32)


def cells_of_group(group: int, kc: int, groups: int) -> range:
    """The coarse cells one cell-training task trains (inverse of :func:`group_of`)."""
    cells = np.flatnonzero(group_of(np.arange(kc), kc, groups) == group)
    return range(int(cells[0]), int(cells[-1]) + 1) if len(cells) else range(0)


def fit_parts(
    parts: list[np.ndarray],
    k: int,
    *,
    seed: int = 0,
    metric: Metric = Metric.EUCLIDEAN,
    coarse_frac: float | None = None,
) -> np.ndarray:
    """Hierarchical fit of ``k`` centroids on a sample given as ``parts``
    (the import's per-chunk samples), composed of the pure steps the import
    runs as tasks: :func:`coarse_subset` per part, :func:`fit_coarse`,
    :func:`near_cells` (each row's :data:`NEAR` nearest coarse cells, the
    first its own), :func:`allocate`, :func:`fit_cell` per cell,
    :data:`REFINE_ITER` rounds of :func:`refine` (Lloyd steps in which a row
    may move to a centroid of its neighbouring cell: the per-cell fits alone
    leave cell boundaries where the coarse cut fell), :func:`finish`.
    ``coarse_frac`` defaults to :func:`coarse_fraction` of the sample's rows
    (the import passes the fraction of the rows it expects)."""
    metric = Metric(metric)
    parts = [metric.normalize_rows(np.ascontiguousarray(p, dtype=np.float32)) for p in parts]
    dim = parts[0].shape[1] if parts else 0
    rows = sum(len(p) for p in parts)
    if rows == 0:
        return np.zeros((1, dim), np.float32)
    frac = coarse_fraction(k, rows) if coarse_frac is None else coarse_frac
    subset = np.concatenate(
        [coarse_subset(p, frac, seed=seed, index=i) for i, p in enumerate(parts)]
    )
    coarse = fit_coarse(subset, k, seed=seed, metric=metric)
    x = np.concatenate(parts)
    near = near_cells(x, coarse, metric=metric)
    counts = np.bincount(near[:, 0], minlength=len(coarse))
    alloc = allocate(counts, k)
    cells = [
        fit_cell(x[near[:, 0] == j], int(alloc[j]), seed=seed, cell=j, metric=metric)
        for j in range(len(coarse))
    ]
    centroids, owner = stack_cells(cells, range(len(coarse)), dim)
    for _ in range(REFINE_ITER):
        centroids = refine(x, near, centroids, owner, range(len(coarse)), metric=metric)
    return finish([centroids], dim, metric)


def near_cells(
    x: np.ndarray, coarse: np.ndarray, *, metric: Metric = Metric.EUCLIDEAN, near: int | None = None
) -> np.ndarray:
    """(n, m) int32: each row's ``m`` (default :data:`NEAR`) nearest coarse
    cells, nearest first (column 0 is :func:`assign`'s answer)."""
    metric = Metric(metric)
    m = min(NEAR if near is None else near, len(coarse))
    c = np.ascontiguousarray(coarse, dtype=np.float32)
    half_norms = 0.5 * np.einsum("ij,ij->i", c, c)
    out = np.empty((len(x), m), dtype=np.int32)
    for start in range(0, len(x), _BLOCK):
        block = metric.normalize_rows(np.asarray(x[start : start + _BLOCK], dtype=np.float32))
        scores = block @ c.T
        scores -= half_norms
        first = np.argmax(scores, axis=1)
        out[start : start + len(block), 0] = first
        if m > 1:
            scores[np.arange(len(block)), first] = -np.inf
            rest = np.argsort(-scores, axis=1, kind="stable")[:, : m - 1]
            out[start : start + len(block), 1:] = rest
    return out


def stack_cells(
    cells: list[np.ndarray], ids: Iterable[int], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell centroids as one array and the coarse cell owning each row."""
    ids = list(ids)
    owner = np.concatenate(
        [
            np.zeros(0, np.int32),
            *[np.full(len(c), j, np.int32) for c, j in zip(cells, ids, strict=True)],
        ]
    )
    return np.concatenate([np.zeros((0, dim), np.float32), *cells]), owner


def refine(
    x: np.ndarray,
    near: np.ndarray,
    centroids: np.ndarray,
    owner: np.ndarray,
    cells: Iterable[int],
    *,
    metric: Metric = Metric.EUCLIDEAN,
) -> np.ndarray:
    """One Lloyd step over cell boundaries: each row of ``x`` goes to its
    nearest centroid among those owned by its ``near`` cells; the centroids
    owned by ``cells`` move to the mean of their rows (kept if they have
    none). Returns those centroids, in ``centroids`` order. Cost
    ``n * NEAR * k / kc * d``, not ``n * k * d``. ``x`` must hold every row
    one of ``cells`` is near (the import's cell files do)."""
    metric = Metric(metric)
    mine = np.isin(owner, np.fromiter(cells, np.int32))
    best_d = np.full(len(x), np.inf, np.float32)
    best_c = np.full(len(x), -1, np.int64)
    order = np.argsort(owner, kind="stable")
    top = int(max(owner.max(initial=-1), near.max(initial=-1))) + 2
    bounds = np.searchsorted(owner[order], np.arange(top))
    flat = near.ravel()  # (row, cell) pairs grouped by cell; rows ascending within one
    by_cell = np.argsort(flat, kind="stable")
    row_bounds = np.searchsorted(flat[by_cell], np.arange(top))
    m = near.shape[1] if near.ndim == 2 else 1
    for j in range(top - 1):
        cand = order[bounds[j] : bounds[j + 1]]
        if not len(cand) or row_bounds[j] == row_bounds[j + 1]:
            continue
        rows = by_cell[row_bounds[j] : row_bounds[j + 1]] // m
        c = centroids[cand]
        xs = x[rows]
        d = np.einsum("ij,ij->i", c, c)[None, :] - 2 * (xs @ c.T)  # + |x|^2, same for all
        arg = np.argmin(d, axis=1)
        dmin = d[np.arange(len(rows)), arg]
        better = dmin < best_d[rows]
        best_d[rows[better]] = dmin[better]
        best_c[rows[better]] = cand[arg[better]]
    out = centroids[mine].copy()
    idx = np.flatnonzero(mine)
    pos = np.full(len(centroids), -1, np.int64)
    pos[idx] = np.arange(len(idx))
    take = best_c >= 0
    take[take] = mine[best_c[take]]
    if take.any():
        where = pos[best_c[take]]
        from scipy.sparse import csr_matrix

        rows_of = np.flatnonzero(take)
        pick = csr_matrix(
            (np.ones(len(rows_of), np.float32), (where, np.arange(len(rows_of)))),
            shape=(len(idx), len(rows_of)),
        )
        sums = np.asarray(pick @ np.asarray(x[rows_of], dtype=np.float32))
        n = np.bincount(where, minlength=len(idx))
        moved = n > 0
        out[moved] = (sums[moved] / n[moved, None]).astype(np.float32)
    return metric.normalize_rows(out)


def inertia(x: np.ndarray, centroids: np.ndarray, *, metric: Metric = Metric.EUCLIDEAN) -> float:
    """Sum of squared distances of ``x`` to their nearest centroid (in ``metric``'s space)."""
    metric = Metric(metric)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    total = 0.0
    own = assign(x, c, metric=metric)
    for start in range(0, len(x), _BLOCK):
        block = metric.normalize_rows(np.asarray(x[start : start + _BLOCK], dtype=np.float32))
        diff = block - c[own[start : start + _BLOCK]]
        total += float(np.einsum("ij,ij->", diff, diff, dtype=np.float64))
    return total


def _mix(seed: int, stage: int, index: int) -> int:
    return int(np.random.default_rng([seed, stage, index]).integers(2**31 - 1))


def assign(
    x: np.ndarray,
    centroids: np.ndarray,
    *,
    metric: Metric = Metric.EUCLIDEAN,
    threads: int | None = None,
) -> np.ndarray:
    """Index of the nearest centroid (L2, in ``metric``'s space) for each row.

    ``threads``: blocks of rows scored on that many threads of this process,
    each with a one-thread BLAS and its own score buffer (the rebuild, which
    has the machine to itself). None: one block at a time on the caller's
    thread, BLAS threaded as configured (an import worker)."""
    metric = Metric(metric)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    half_norms = 0.5 * np.einsum("ij,ij->i", c, c)
    out = np.empty(len(x), dtype=np.int32)
    if threads is None or threads <= 1 or len(x) <= _BLOCK:
        for start in range(0, len(x), _BLOCK):
            out[start : start + _BLOCK] = _nearest(x[start : start + _BLOCK], c, half_norms, metric)
        return out
    local = threading.local()

    def one(start: int) -> None:  # the matmul and the argmax release the GIL
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = np.empty((_BLOCK, len(c)), np.float32)
        block = x[start : start + _BLOCK]
        out[start : start + len(block)] = _nearest(block, c, half_norms, metric, buf[: len(block)])

    with (
        _one_thread_blas(),
        ThreadPoolExecutor(threads, thread_name_prefix="vecstore-assign") as pool,
    ):
        list(pool.map(one, range(0, len(x), _BLOCK)))
    return out


def _nearest(
    block: np.ndarray,
    c: np.ndarray,
    half_norms: np.ndarray,
    metric: Metric,
    buf: np.ndarray | None = None,
) -> np.ndarray:
    block = metric.normalize_rows(np.asarray(block, dtype=np.float32))
    scores = np.matmul(block, c.T, out=buf)
    scores -= half_norms  # argmax(x.c - |c|^2/2) == argmin |x - c|^2
    best: np.ndarray = np.argmax(scores, axis=1)
    return best


def _one_thread_blas() -> contextlib.AbstractContextManager[object]:
    """BLAS limited to one thread (threadpoolctl, which scikit-learn brings)
    while several threads of ours run matmuls: a threaded BLAS under each
    would oversubscribe the cores (measured slower, and spinning)."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - comes with scikit-learn
        return contextlib.nullcontext()
    limits: contextlib.AbstractContextManager[object] = threadpool_limits(limits=1, user_api="blas")
    return limits


def preload() -> threading.Thread:
    """Import scikit-learn's k-means on a daemon thread (it takes ~1-2 s,
    mostly while the caller's other threads read files) and return it."""
    return extras.preload("sklearn.cluster", name="vecstore-preload-sklearn")
