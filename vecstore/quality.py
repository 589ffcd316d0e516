"""Quality figures of a clustered namespace: cluster balance and estimated recall@10.

- :func:`balance`: largest / mean / smallest cluster (rows) of a manifest or
  of an assignment.
- :func:`estimate_recall`: recall@10 at the default ``nprobe`` on a sample of
  the namespace's own vectors (docs/rebuild.md "Recall estimate"). A sample
  of at most ``SAMPLE`` records is drawn; ``QUERIES`` of them are the
  queries and are *held out* of the searched set (a query never finds
  itself). The exact top 10 of each query is computed over the rest of the
  sample; the approximate top 10 is what the cluster search finds among the
  same rows: the rows of the ``nprobe`` clusters whose centroids score best
  for the query (the query path's default ``nprobe`` for the namespace's
  k), plus rows that are in no cluster (the log tail, searched exactly by
  the query path). Restricting both to the sample estimates, per true
  neighbour, the probability that its cluster is probed -- which is what
  the default ``nprobe`` loses -- at a cost of O(queries x sample x d).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vecstore.schemas.metrics import Metric

SAMPLE = 20_000
QUERIES = 200
TOP_K = 10


@dataclass(frozen=True, slots=True)
class Balance:
    clusters: int
    largest: int
    mean: float
    smallest: int

    @property
    def ratio(self) -> float:
        """Largest cluster / mean cluster (1.0: perfectly even)."""
        return float(self.largest / self.mean) if self.mean else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {
            "clusters": self.clusters,
            "largest": self.largest,
            "mean": round(self.mean, 1),
            "smallest": self.smallest,
            "ratio": round(self.ratio, 3),
        }


def balance(sizes: list[int] | np.ndarray) -> Balance:
    """Balance of clusters of the given row counts (empty clusters skipped)."""
    s = np.asarray([int(x) for x in sizes if int(x) > 0], dtype=np.int64)
    if not len(s):
        return Balance(0, 0, 0.0, 0)
    return Balance(len(s), int(s.max()), float(s.mean()), int(s.min()))


def default_probe(k: int) -> int:
    """Clusters the query path probes by default out of ``k`` (planner's rule)."""
    from vecstore.query.planner import EXACT_FRACTION, EXACT_MAX_CLUSTERS, default_nprobe

    if k <= EXACT_MAX_CLUSTERS:
        return k
    p = default_nprobe(k)
    return k if p / k >= EXACT_FRACTION else p


def _scores(metric: Metric, q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Higher is nearer, in ``metric``."""
    if metric == Metric.COSINE:
        qn = Metric.COSINE.normalize_rows(q)
        xn = Metric.COSINE.normalize_rows(x)
        return np.asarray(qn @ xn.T)
    if metric == Metric.DOTPRODUCT:
        return np.asarray(q @ x.T)
    return np.asarray(2.0 * (q @ x.T) - np.einsum("ij,ij->i", x, x)[None, :])


def _top(scores: np.ndarray, k: int) -> list[set[int]]:
    k = min(k, scores.shape[1])
    if k <= 0:
        return [set() for _ in range(scores.shape[0])]
    idx = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return [set(row.tolist()) for row in idx]


def estimate_recall(
    x: np.ndarray,
    assignment: np.ndarray,
    centroids: np.ndarray | None,
    metric: Metric,
    *,
    seed: int = 0,
    sample: int = SAMPLE,
    queries: int = QUERIES,
    nprobe: int | None = None,
) -> float | None:
    """Estimated recall@10 at the default ``nprobe`` (see the module doc).

    ``assignment[i]``: the centroid row of record ``i``, or -1 for a record
    in no cluster (always found). None when there are too few records."""
    metric = Metric(metric)
    n = len(x)
    if n < queries + TOP_K or centroids is None or not len(centroids):
        return None
    rng = np.random.default_rng(seed)
    pick = rng.choice(n, min(n, sample), replace=False)
    q_idx, s_idx = pick[:queries], pick[queries:]
    q = np.ascontiguousarray(x[q_idx], dtype=np.float32)
    xs = np.ascontiguousarray(x[s_idx], dtype=np.float32)
    a = np.asarray(assignment)[s_idx]
    k = len(centroids)
    p = nprobe or default_probe(k)
    exact = _top(_scores(metric, q, xs), TOP_K)
    # the clusters each query probes: best centroids in the clustering space
    qc = metric.normalize_rows(q)
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    cscore = qc @ c.T - 0.5 * np.einsum("ij,ij->i", c, c)[None, :]
    probed = np.argpartition(-cscore, min(p, k) - 1, axis=1)[:, : min(p, k)]
    s = _scores(metric, q, xs)
    hits = 0
    for i in range(len(q)):
        allowed = np.isin(a, probed[i]) | (a < 0)
        si = np.where(allowed, s[i], -np.inf)
        got = _top(si[None, :], TOP_K)[0]
        got = {j for j in got if allowed[j]}
        hits += len(got & exact[i])
    return round(hits / (len(q) * min(TOP_K, len(s_idx))), 4)


__all__ = ["Balance", "balance", "default_probe", "estimate_recall"]
