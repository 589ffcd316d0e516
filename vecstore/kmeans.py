"""k-means for centroid partitioning: pure, seeded functions (numpy / sklearn).

- :func:`choose_k` picks the number of clusters from the record count:
  ``clamp(4 * sqrt(n), target / 4, target)`` records per cluster with the
  default target 4,096, i.e. 1,024 per cluster up to 65,536 records, growing
  to 4,096 at ~1M (DESIGN "Clustering": roughly 1-4k records per cluster).
- :func:`fit` trains on a sample (FAISS's rule: at most 256 points per
  centroid) with *random* initialisation: k-means++ is ~6x slower at large k
  on these machines (PERF-NOTES) for no recall gain after Lloyd iterations.
- :func:`assign` maps points to their nearest centroid with blocked GEMM.

Cosine indexes cluster L2-normalised vectors and keep normalised centroids
(:meth:`vecstore.schemas.metrics.Metric.normalize_rows`).
"""

from __future__ import annotations

import math

import numpy as np

from vecstore.schemas.metrics import Metric

TARGET_PER_CLUSTER = 4096  # the upper end of DESIGN's 1-4k (the default target)
PER_CLUSTER_SQRT = 4.0  # records per cluster grow as 4 * sqrt(n) between target/4 and target
POINTS_PER_CENTROID = 256
MAX_K = 65_536
MAX_ITER = 10  # as FAISS's IVF training; recall is flat beyond
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
    sample: np.ndarray, k: int, *, seed: int = 0, metric: Metric = Metric.EUCLIDEAN
) -> np.ndarray:
    """Train ``k`` centroids on ``sample`` (n, d); returns (k', d) float32, k' <= k.

    ``metric`` decides the space clustered in (cosine: unit vectors)."""
    metric = Metric(metric)
    x = metric.normalize_rows(np.ascontiguousarray(sample, dtype=np.float32))
    uniq = min(k, len(x))
    if uniq <= 1:
        c = x[:1].copy() if len(x) else np.zeros((1, x.shape[1]), np.float32)
        return metric.normalize_rows(c)
    rng = np.random.default_rng(seed)
    if len(x) > sample_size(uniq):
        x = x[np.sort(rng.choice(len(x), sample_size(uniq), replace=False))]
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


def assign(
    x: np.ndarray, centroids: np.ndarray, *, metric: Metric = Metric.EUCLIDEAN
) -> np.ndarray:
    """Index of the nearest centroid (L2, in ``metric``'s space) for each row."""
    metric = Metric(metric)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    half_norms = 0.5 * np.einsum("ij,ij->i", c, c)
    out = np.empty(len(x), dtype=np.int32)
    for start in range(0, len(x), _BLOCK):
        block = np.asarray(x[start : start + _BLOCK], dtype=np.float32)
        block = metric.normalize_rows(block)
        scores = block @ c.T
        scores -= half_norms  # argmax(x.c - |c|^2/2) == argmin |x - c|^2
        out[start : start + len(block)] = np.argmax(scores, axis=1)
    return out
