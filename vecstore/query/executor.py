"""Query executors: scan the planned clusters, score with BLAS, keep the top k.

Scores are "higher is better" inside the executor; the metric math (query
preparation, per-row terms, centroid ranking) is :mod:`vecstore.schemas.metrics`.

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

import bisect
import itertools
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from vecstore.query import kernels
from vecstore.query.filters import Node
from vecstore.query.planner import (
    NamespaceState,
    candidate_clusters,
    probe_count,
    rank_clusters,
    rows_probed,
)
from vecstore.query.segdata import DenseBlock, SegmentSource
from vecstore.query.topk import NEG_INF, TopK
from vecstore.refs import CLUSTER_ROW
from vecstore.schemas.metrics import Metric

PARALLEL_WORK = 20_000_000  # query x row x dimension products: below, one thread
GATHER_BELOW = 0.5  # a filter matching fewer rows than this share: gather them first
FILTER_DEPTH = 1.0  # matching rows to see, relative to the rows an unfiltered probe scans

SparseQuery = tuple[np.ndarray, np.ndarray]  # (sorted int64 indices, float32 values)
# cluster position -> sorted rows to leave out (rows the write tail shadows)
Blank = Mapping[int, np.ndarray]


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
    return Metric(metric).prepare_queries(vectors)


def default_threads() -> int:
    """Threads a batch uses: the cores this process may run on (at most 8)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(8, n))


class Executor:
    """Runs planned scans over one namespace version through a SegmentSource."""

    def __init__(
        self,
        source: SegmentSource,
        metric: Metric,
        dimension: int | None,
        *,
        threaded_matvec: bool = False,
        threads: int | None = None,
    ) -> None:
        self.source = source
        self.metric = Metric(metric)
        self.dimension = int(dimension or 0)
        self.threaded_matvec = threaded_matvec
        self.threads = max(1, threads if threads is not None else default_threads())
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    # ---------------------------------------------------------- dense
    def dense(
        self,
        state: NamespaceState,
        queries: np.ndarray,
        top_k: int,
        flt: Filter | None = None,
        nprobe: int | None = None,
        sparse: Sequence[SparseQuery | None] | None = None,
        blank: Blank | None = None,
    ) -> list[Hits]:
        """Top-k of each prepared dense query (hybrid: plus its sparse part).
        ``blank``: rows never to return (shadowed by the write tail)."""
        q = len(queries)
        if (
            q == 1
            and flt is None
            and state.probe_centroids is not None
            and (sparse is None or all(s is None or len(s[0]) == 0 for s in sparse))
        ):
            return [self.single(state, queries[0], top_k, nprobe, blank)]
        cands = candidate_clusters(state, flt.node if flt else None, flt.canon if flt else None)
        if q == 0 or len(cands) == 0:
            return [EMPTY_HITS] * q
        p = min(probe_count(state, nprobe), len(cands))
        # filtered queries may probe past p, in centroid order: rank them all
        ranked = rank_clusters(state, queries, cands, self.metric, None if flt else p)
        target = max(top_k, int(FILTER_DEPTH * rows_probed(state, probe_count(state, nprobe))))
        if q == 1:
            return [
                self._dense_one(state, queries[0], ranked[0], p, top_k, flt, target, sparse, blank)
            ]
        return self._dense_batch(state, queries, ranked, p, top_k, flt, target, sparse, blank)

    def single(
        self,
        state: NamespaceState,
        query: np.ndarray,
        top_k: int,
        nprobe: int | None = None,
        blank: Blank | None = None,
    ) -> Hits:
        """One unfiltered dense query (prepared): its top k as :class:`Hits`."""
        scores, refs = self.single_lists(state, query, top_k, nprobe, blank)
        return Hits(np.asarray(scores, dtype=np.float32), np.asarray(refs, dtype=np.int64))

    def single_lists(
        self,
        state: NamespaceState,
        query: np.ndarray,
        top_k: int,
        nprobe: int | None = None,
        blank: Blank | None = None,
    ) -> tuple[list[float], list[int]]:
        """One unfiltered dense query (a float32 (d,) vector, prepared or not):
        internal scores and refs, best first.

        The lean path of ``Reader.query``. The probed clusters' scores go into
        one reused buffer (one single-threaded matrix-vector product per
        cluster, written in place); one selection over the buffer finds the
        k-th best score; only the entries at or above it (k, plus ties) are
        mapped back to (cluster, row) and sorted, in Python. Each numpy call
        after a scan runs on caches the scan evicted (several microseconds
        each on these machines), so the path makes as few as it can.
        Rows in ``blank`` score -inf and are left out."""
        cands = state.nonempty
        c = len(cands)
        if c == 0:
            return [], []
        metric = self.metric
        qv = metric.scaled_query(query)
        p = min(probe_count(state, nprobe), c)
        if p >= c:
            probe: list[int] = cands.tolist()
        else:
            cents, csq = state.probe_centroids, state.probe_csq
            assert cents is not None
            sims = metric.rank_scores_scaled(kernels.vecdot(cents, qv), csq)
            if p == 1:
                probe = [int(cands[int(np.argmax(sims))])]
            else:
                probe = cands[np.argpartition(sims, c - p)[c - p :]].tolist()
        keys = state.segment_keys
        blocks = [self.source.dense(keys[pos], self.dimension, self.metric) for pos in probe]
        starts: list[int] = []
        total = 0
        for b in blocks:
            starts.append(total)
            total += b.matrix.shape[0]
        buf = kernels.scratch(total)
        into = kernels.threaded_matvec_into if self.threaded_matvec else kernels.matvec_into
        for b, at, pos in zip(blocks, starts, probe, strict=True):
            n = b.matrix.shape[0]
            if n:
                out = buf[at : at + n]
                into(b.matrix, qv, out)
                metric.finish_scores(out, b.inv_norm, b.sq_norm, scaled=True)
                if blank is not None and pos in blank:
                    out[blank[pos]] = NEG_INF
        if total > top_k:
            kth = np.partition(buf, total - top_k)[total - top_k]
            idx = np.flatnonzero(buf >= kth)  # ties at the k-th score included
            found = buf[idx].tolist()
            where = idx.tolist()
        else:
            found = buf.tolist()  # a copy: the scratch buffer is reused
            where = list(range(total))
        if len(probe) == 1:
            base = CLUSTER_ROW.pack_one(probe[0], 0)
            refs = [base | i for i in where]
        else:
            refs = []
            for i in where:
                j = bisect.bisect_right(starts, i) - 1
                refs.append(CLUSTER_ROW.pack_one(probe[j], i - starts[j]))
        best = sorted(zip(found, refs, strict=True), key=_best_first)[:top_k]
        if blank is not None:
            best = [p for p in best if p[0] > NEG_INF]
        return [s for s, _ in best], [r for _, r in best]

    def _tile(
        self,
        state: NamespaceState,
        pos: int,
        queries: np.ndarray,
        flt: Filter | None,
        sparse: Sequence[SparseQuery | None] | None,
        qidx: np.ndarray,
        shadow: Blank | None = None,
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
        hidden = None if shadow is None else shadow.get(pos)
        if hidden is not None and len(hidden):
            if rows is None:
                scores[:, hidden] = NEG_INF
            else:
                scores[:, np.isin(rows, hidden, assume_unique=True)] = NEG_INF
        row_ids = np.arange(n, dtype=np.int64) if rows is None else rows
        return scores, CLUSTER_ROW.pack(pos, row_ids), matched

    def _score(self, block: DenseBlock, q: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        x = block.matrix if rows is None else block.matrix[rows]
        s: np.ndarray
        if len(q) == 1 and self.threaded_matvec:
            s = (x @ q[0]).reshape(1, -1)  # BLAS gemv on the row-major matrix as stored
        elif len(q) == 1:
            # single-threaded: steadier than a threaded BLAS gemv when cores
            # are shared (see docs/query.md)
            s = np.empty((1, len(x)), dtype=np.float32)
            kernels.matvec_into(x, q[0], s[0])
        else:
            s = kernels.gemm_t(q, x)
        inv, sq = block.inv_norm, block.sq_norm
        if rows is not None:
            inv = None if inv is None else inv[rows]
            sq = None if sq is None else sq[rows]
        return self.metric.finish_scores(s, inv, sq)

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
        blank: Blank | None = None,
    ) -> Hits:
        qmat = query.reshape(1, -1)
        qidx = np.zeros(1, dtype=np.int64)
        scores: list[np.ndarray] = []
        refs: list[np.ndarray] = []
        matched = 0
        for j, pos in enumerate(ranked):
            if j >= p and (flt is None or matched >= target):
                break
            s, r, m = self._tile(state, int(pos), qmat, flt, sparse, qidx, blank)
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
        blank: Blank | None = None,
    ) -> list[Hits]:
        q, c = ranked.shape
        tops = [TopK(q, top_k) for _ in range(self.threads)]
        matched = np.zeros(q, dtype=np.int64)
        all_q = np.arange(q)
        self._scan_pairs(state, queries, all_q, ranked[:, 0], tops, matched, flt, sparse, blank)
        if p > 1:
            qs = np.repeat(all_q, p - 1)
            self._scan_pairs(
                state, queries, qs, ranked[:, 1:p].reshape(-1), tops, matched, flt, sparse, blank
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
                self._scan_pairs(
                    state, queries, qs, ranked[qs, js], tops, matched, flt, sparse, blank
                )
                probed = np.where(need, np.minimum(probed + step, c), probed)
        top = tops[0]
        for other in tops[1:]:
            top.merge(other)
        return [Hits(*top.results(i)) for i in range(q)]

    def _scan_pairs(
        self,
        state: NamespaceState,
        queries: np.ndarray,
        qs: np.ndarray,
        clusters: np.ndarray,
        tops: list[TopK],
        matched: np.ndarray,
        flt: Filter | None,
        sparse: Sequence[SparseQuery | None] | None,
        blank: Blank | None = None,
    ) -> None:
        """Scan (query, cluster) pairs grouped by cluster: one product per cluster.

        With ``threads`` > 1, enough work and only small tiles (a few queries
        per cluster, as at low nprobe, each scored single-threaded), the
        clusters are shared out dynamically (largest first) between the
        calling thread and helper threads, each keeping its own top-k (merged
        at the end): the kernels release the GIL, and a helper that is not
        scheduled (busy cores) simply takes fewer clusters, where a threaded
        BLAS call would wait for it. Large tiles use the threaded GEMM, one
        at a time."""
        if len(qs) == 0:
            return
        order = np.argsort(clusters, kind="stable")
        qs, clusters = qs[order], clusters[order]
        bounds = np.flatnonzero(np.diff(clusters)) + 1
        starts = np.concatenate([[0], bounds]).tolist()
        ends = np.concatenate([bounds, [len(clusters)]]).tolist()
        tiles = [(int(clusters[s]), qs[s:e]) for s, e in zip(starts, ends, strict=True)]
        work = sum(len(qidx) * int(state.row_counts[pos]) for pos, qidx in tiles)
        helpers = min(len(tops) - 1, len(tiles) - 1)
        if (
            helpers <= 0
            or work * self.dimension < PARALLEL_WORK
            # a tile on BLAS threads already uses the cores: threads of ours
            # on top would only oversubscribe them
            or not all(kernels.gemm_single_threaded(len(t[1]), self.dimension) for t in tiles)
        ):
            for pos, qidx in tiles:
                scores, refs, m = self._tile(state, pos, queries, flt, sparse, qidx, blank)
                matched[qidx] += m
                tops[0].push(qidx, scores, refs)
            return
        tiles.sort(key=lambda t: -len(t[1]) * int(state.row_counts[t[0]]))
        counter = itertools.count()

        def run(slot: int) -> np.ndarray:
            seen = np.zeros(len(matched), dtype=np.int64)
            top = tops[slot]
            while True:
                i = next(counter)  # atomic: each tile goes to exactly one thread
                if i >= len(tiles):
                    return seen
                pos, qidx = tiles[i]
                scores, refs, m = self._tile(state, pos, queries, flt, sparse, qidx, blank)
                seen[qidx] += m
                top.push(qidx, scores, refs)

        pool = self._helpers()
        futures = [pool.submit(run, slot) for slot in range(1, helpers + 1)]
        matched += run(0)
        for f in futures:
            if not f.cancel():  # a helper that never started has nothing to give
                matched += f.result()

    def _helpers(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=max(1, self.threads - 1), thread_name_prefix="vecstore-query"
                )
            return self._pool

    # ---------------------------------------------------------- sparse
    def sparse_only(
        self,
        state: NamespaceState,
        query: SparseQuery,
        top_k: int,
        flt: Filter | None,
        blank: Blank | None = None,
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
            hidden = None if blank is None else blank.get(pos)
            if hidden is not None and len(rows):
                rows = rows[~np.isin(rows, hidden, assume_unique=True)]
            if len(rows):
                scores.append(s[rows])
                refs.append(CLUSTER_ROW.pack(pos, rows))
        return select(scores, refs, top_k)


def _best_first(pair: tuple[float, int]) -> tuple[float, int]:
    return -pair[0], pair[1]


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


__all__ = [
    "EMPTY_HITS",
    "Executor",
    "Filter",
    "Hits",
    "prepare_dense",
    "select",
]
