"""Query executors: scan the planned clusters, score with BLAS, keep the top k.

Scores are "higher is better" inside the executor:

- cosine: ``x . q / (|x| |q|)`` (queries are normalised once; rows by a
  cached ``1/|x|`` unless the segment is already unit length);
- dotproduct: ``x . q`` (+ the sparse dot product for hybrid queries);
- euclidean: ``2 x . q - |x|^2``, i.e. ``|q|^2 - |x - q|^2``; the reader
  turns it back into the squared distance Pinecone reports.

Dense rows are scored in place on the zero-copy float32 matrix of each
segment (gathering rows first is slower: PERF-NOTES). A filter's mask either
blanks the non-matching scores (broad filters) or, when fewer than half the
rows match, selects the matching rows before the product, which is then
small.

Batches group their (query, cluster) pairs by cluster: one matrix product
per cluster for all the queries probing it. Every query's best cluster is
scanned first, so the thresholds of :class:`~vecstore.query.topk.TopK` are
tight before the bulk of the work. A single query instead scores each probed
cluster with one matrix-vector product into a list and selects once.

Filtered queries probe beyond ``nprobe`` (in centroid order) until they have
seen as many matching rows as an unfiltered query would scan, or every
cluster that may match: a filter keeping 1% of the rows then ends as an
exact scan of the matching rows, a broad one costs about ``1/selectivity``
times the unfiltered probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from schemas.models import Metric
from vecstore.query.filters import Node
from vecstore.query.planner import (
    NamespaceState,
    candidate_clusters,
    probe_count,
    rank_clusters,
    rows_probed,
)
from vecstore.query.segdata import DenseBlock, SegmentSource
from vecstore.query.topk import NEG_INF, ROW_BITS, TopK, make_refs

GATHER_BELOW = 0.5  # a filter matching fewer rows than this share: gather them first
FILTER_DEPTH = 1.0  # matching rows to see, relative to the rows an unfiltered probe scans

SparseQuery = tuple[np.ndarray, np.ndarray]  # (sorted int64 indices, float32 values)


@dataclass(frozen=True, slots=True)
class Filter:
    node: Node
    canon: str


@dataclass(frozen=True, slots=True)
class Hits:
    """One query's results: internal scores (best first) and refs."""

    scores: np.ndarray
    refs: np.ndarray


EMPTY_HITS = Hits(np.zeros(0, np.float32), np.zeros(0, np.int64))


def prepare_dense(vectors: np.ndarray, metric: Metric) -> np.ndarray:
    """Queries as the executor scores them (cosine: unit length)."""
    q = np.ascontiguousarray(vectors, dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(q, axis=1, keepdims=True).astype(np.float32)
        norms[norms == 0] = 1.0
        q = q / norms
    return q


class Executor:
    """Runs planned scans over one namespace version through a SegmentSource."""

    def __init__(
        self,
        source: SegmentSource,
        metric: Metric,
        dimension: int | None,
        *,
        threaded_matvec: bool = False,
    ) -> None:
        self.source = source
        self.metric = metric
        self.dimension = int(dimension or 0)
        self.threaded_matvec = threaded_matvec

    # ---------------------------------------------------------- dense
    def dense(
        self,
        state: NamespaceState,
        queries: np.ndarray,
        top_k: int,
        flt: Filter | None = None,
        nprobe: int | None = None,
        sparse: Sequence[SparseQuery | None] | None = None,
    ) -> list[Hits]:
        """Top-k of each prepared dense query (hybrid: plus its sparse part)."""
        q = len(queries)
        cands = candidate_clusters(state, flt.node if flt else None, flt.canon if flt else None)
        if q == 0 or len(cands) == 0:
            return [EMPTY_HITS] * q
        ranked = rank_clusters(state, queries, cands, self.metric)
        p = min(probe_count(state, nprobe), len(cands))
        target = max(top_k, int(FILTER_DEPTH * rows_probed(state, probe_count(state, nprobe))))
        if q == 1:
            return [self._dense_one(state, queries[0], ranked[0], p, top_k, flt, target, sparse)]
        return self._dense_batch(state, queries, ranked, p, top_k, flt, target, sparse)

    def _tile(
        self,
        state: NamespaceState,
        pos: int,
        queries: np.ndarray,
        flt: Filter | None,
        sparse: Sequence[SparseQuery | None] | None,
        qidx: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Scores (m, n') of queries ``qidx`` on cluster ``pos``, refs (n',), matches."""
        key = state.segment_keys[pos]
        block = self.source.dense(key, self.dimension, self.metric)
        n = len(block.matrix)
        rows: np.ndarray | None = None
        blank: np.ndarray | None = None
        matched = n
        if flt is not None:
            mask = self.source.mask(key, flt.node, flt.canon, n, state.meta_columns)
            matched = int(np.count_nonzero(mask))
            if matched == 0:
                return np.zeros((len(qidx), 0), np.float32), np.zeros(0, np.int64), 0
            if matched < n * GATHER_BELOW:
                rows = np.flatnonzero(mask)
            elif matched < n:
                blank = ~mask
        scores = self._score(block, queries[qidx], rows)
        if sparse is not None:
            self._add_sparse(scores, key, n, [sparse[i] for i in qidx], rows)
        if blank is not None:
            scores[:, blank] = NEG_INF
        row_ids = np.arange(n, dtype=np.int64) if rows is None else rows
        return scores, make_refs(pos, row_ids), matched

    def _score(self, block: DenseBlock, q: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        x = block.matrix if rows is None else block.matrix[rows]
        s: np.ndarray
        if len(q) == 1 and self.threaded_matvec:
            s = (x @ q[0]).reshape(1, -1)  # BLAS gemv on the row-major matrix as stored
        elif len(q) == 1:
            # numpy's own single-threaded SIMD loop: steadier than a threaded
            # BLAS gemv when cores are shared (see docs/query.md)
            s = _vecdot(x, q[0]).reshape(1, -1)
        else:
            s = q @ x.T
        if block.inv_norm is not None:
            s *= block.inv_norm if rows is None else block.inv_norm[rows]
        elif block.sq_norm is not None:
            s *= 2.0
            s -= block.sq_norm if rows is None else block.sq_norm[rows]
        return s

    def _add_sparse(
        self,
        scores: np.ndarray,
        key: str,
        n: int,
        parts: Sequence[SparseQuery | None],
        rows: np.ndarray | None,
    ) -> None:
        if not any(p is not None and len(p[0]) for p in parts):
            return
        block = self.source.sparse(key, n)
        for i, part in enumerate(parts):
            if part is None or len(part[0]) == 0:
                continue
            s = block.scores(part[0], part[1])
            scores[i] += s if rows is None else s[rows]

    def _dense_one(
        self,
        state: NamespaceState,
        query: np.ndarray,
        ranked: np.ndarray,
        p: int,
        top_k: int,
        flt: Filter | None,
        target: int,
        sparse: Sequence[SparseQuery | None] | None,
    ) -> Hits:
        qmat = query.reshape(1, -1)
        qidx = np.zeros(1, dtype=np.int64)
        scores: list[np.ndarray] = []
        refs: list[np.ndarray] = []
        matched = 0
        for j, pos in enumerate(ranked):
            if j >= p and (flt is None or matched >= target):
                break
            s, r, m = self._tile(state, int(pos), qmat, flt, sparse, qidx)
            matched += m
            if len(r):
                scores.append(s[0])
                refs.append(r)
        return select(scores, refs, top_k)

    def _dense_batch(
        self,
        state: NamespaceState,
        queries: np.ndarray,
        ranked: np.ndarray,
        p: int,
        top_k: int,
        flt: Filter | None,
        target: int,
        sparse: Sequence[SparseQuery | None] | None,
    ) -> list[Hits]:
        q, c = ranked.shape
        top = TopK(q, top_k)
        matched = np.zeros(q, dtype=np.int64)
        all_q = np.arange(q)
        self._scan_pairs(state, queries, all_q, ranked[:, 0], top, matched, flt, sparse)
        if p > 1:
            qs = np.repeat(all_q, p - 1)
            self._scan_pairs(
                state, queries, qs, ranked[:, 1:p].reshape(-1), top, matched, flt, sparse
            )
        if flt is not None:
            probed = np.full(q, p, dtype=np.int64)
            cols = np.arange(c)
            while True:
                need = (matched < target) & (probed < c)
                if not need.any():
                    break
                step = np.maximum(probed, 1)
                sel = need[:, None] & (cols >= probed[:, None]) & (cols < (probed + step)[:, None])
                qs, js = np.nonzero(sel)
                self._scan_pairs(state, queries, qs, ranked[qs, js], top, matched, flt, sparse)
                probed = np.where(need, np.minimum(probed + step, c), probed)
        return [Hits(*top.results(i)) for i in range(q)]

    def _scan_pairs(
        self,
        state: NamespaceState,
        queries: np.ndarray,
        qs: np.ndarray,
        clusters: np.ndarray,
        top: TopK,
        matched: np.ndarray,
        flt: Filter | None,
        sparse: Sequence[SparseQuery | None] | None,
    ) -> None:
        """Scan (query, cluster) pairs grouped by cluster: one product per cluster."""
        if len(qs) == 0:
            return
        order = np.argsort(clusters, kind="stable")
        qs, clusters = qs[order], clusters[order]
        bounds = np.flatnonzero(np.diff(clusters)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(clusters)]])
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            qidx = qs[s:e]
            scores, refs, m = self._tile(state, int(clusters[s]), queries, flt, sparse, qidx)
            matched[qidx] += m
            top.push(qidx, scores, refs)

    # ---------------------------------------------------------- sparse
    def sparse_only(
        self, state: NamespaceState, query: SparseQuery, top_k: int, flt: Filter | None
    ) -> Hits:
        """Exact sparse dot-product search over every segment that may match."""
        scores: list[np.ndarray] = []
        refs: list[np.ndarray] = []
        cands = candidate_clusters(state, flt.node if flt else None, flt.canon if flt else None)
        for pos in cands.tolist():
            key = state.segment_keys[pos]
            n = int(state.row_counts[pos])
            s = self.source.sparse(key, n).scores(query[0], query[1])
            rows = np.flatnonzero(s != 0)  # records sharing no dimension are not matches
            if flt is not None and len(rows):
                mask = self.source.mask(key, flt.node, flt.canon, n, state.meta_columns)
                rows = rows[mask[rows]]
            if len(rows):
                scores.append(s[rows])
                refs.append(make_refs(pos, rows))
        return select(scores, refs, top_k)


def _vecdot(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise dot products on one thread (numpy >= 2: ``vecdot``)."""
    fn = getattr(np, "vecdot", None)
    out: np.ndarray = fn(x, q) if fn is not None else np.einsum("ij,j->i", x, q)
    return out


def select(scores: Sequence[np.ndarray], refs: Sequence[np.ndarray], top_k: int) -> Hits:
    """The best ``top_k`` of concatenated candidates, best first (ties: by ref)."""
    if not scores:
        return EMPTY_HITS
    s = np.concatenate(scores) if len(scores) > 1 else scores[0]
    r = np.concatenate(refs) if len(refs) > 1 else refs[0]
    keep = s > NEG_INF
    if not keep.all():
        s, r = s[keep], r[keep]
    if len(s) > top_k:
        pick = np.argpartition(s, len(s) - top_k)[len(s) - top_k :]
        s, r = s[pick], r[pick]
    order = np.lexsort((r, -s))
    return Hits(s[order], r[order])


__all__ = ["EMPTY_HITS", "Executor", "Filter", "Hits", "ROW_BITS", "prepare_dense", "select"]
