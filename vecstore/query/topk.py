"""Top-k selection over score tiles, vectorised across queries.

A :class:`TopK` keeps, for each of ``q`` queries, its best ``k`` (score,
ref) pairs so far, scores "higher is better". Tiles of scores (a few queries
x one cluster's rows) are pushed one at a time:

- Queries that do not have ``k`` results yet take the tile's row whole
  (``argpartition`` on the row joined with the current best).
- The others keep only entries above their current k-th best score. The
  comparison is one cheap vector op; the survivors are found by scanning the
  boolean mask as 64-bit words (``np.nonzero`` on bytes is ~4x slower), so
  the selection costs a fraction of the matrix product that made the tile
  (PERF-NOTES: selection, not BLAS, dominated naive implementations).

A ref is an int64 ``cluster_position << 32 | row``
(:data:`vecstore.refs.CLUSTER_ROW`).
"""

from __future__ import annotations

import numpy as np

NEG_INF = np.float32(-np.inf)


class TopK:
    """Best ``k`` (score, ref) pairs of each of ``q`` queries."""

    def __init__(self, q: int, k: int) -> None:
        self.k = k
        self.scores = np.full((q, k), NEG_INF, dtype=np.float32)
        self.refs = np.full((q, k), -1, dtype=np.int64)
        self.threshold = np.full(q, NEG_INF, dtype=np.float32)
        self.fresh = np.ones(q, dtype=bool)  # nothing pushed yet

    def push(self, qidx: np.ndarray, tile: np.ndarray, refs: np.ndarray) -> None:
        """Merge a tile: ``tile[i, j]`` is the score of ``refs[j]`` for query ``qidx[i]``."""
        if tile.shape[1] == 0 or len(qidx) == 0:
            return
        if tile.shape[1] >= self.k and self.fresh[qidx].all():
            self._push_first(qidx, tile, refs)
            return
        thr = self.threshold[qidx]
        full = thr > NEG_INF
        if full.all():
            self._push_sparse(qidx, tile, refs, thr)
        elif not full.any():
            self._push_dense(qidx, tile, refs)
        else:
            self._push_dense(qidx[~full], tile[~full], refs)
            self._push_sparse(qidx[full], tile[full], refs, thr[full])

    # ----------------------------------------------------------- internals
    def _push_first(self, qidx: np.ndarray, tile: np.ndarray, refs: np.ndarray) -> None:
        """The first tile of queries holding nothing yet: select in the tile alone."""
        n, k = tile.shape[1], self.k
        pick = np.argpartition(tile, n - k, axis=1)[:, n - k :]
        self._store(qidx, np.take_along_axis(tile, pick, axis=1), refs[pick])

    def _push_dense(self, qidx: np.ndarray, tile: np.ndarray, refs: np.ndarray) -> None:
        k = self.k
        joined = np.concatenate([self.scores[qidx], tile], axis=1)
        width = joined.shape[1]
        pick = np.argpartition(joined, width - k, axis=1)[:, width - k :]
        new_scores = np.take_along_axis(joined, pick, axis=1)
        old = pick < k
        new_refs = np.where(
            old,
            np.take_along_axis(self.refs[qidx], np.minimum(pick, k - 1), axis=1),
            refs[np.maximum(pick - k, 0)],
        )
        self._store(qidx, new_scores, new_refs)

    def _push_sparse(
        self, qidx: np.ndarray, tile: np.ndarray, refs: np.ndarray, thr: np.ndarray
    ) -> None:
        m, n = tile.shape
        n8 = (n + 7) // 8 * 8
        mask = np.zeros((m, n8), dtype=bool)
        np.greater(tile, thr[:, None], out=mask[:, :n])
        word_rows, word_cols = np.nonzero(mask.view(np.uint64))
        if len(word_rows) == 0:
            return
        bytes_ = mask.reshape(m, n8 // 8, 8)[word_rows, word_cols]
        hit, bit = np.nonzero(bytes_)
        rows = word_rows[hit]
        cols = word_cols[hit] * 8 + bit
        cand = tile[rows, cols]
        counts = np.bincount(rows, minlength=m)
        active = np.flatnonzero(counts)
        width = int(counts.max())
        k = self.k
        slot = np.full(m, -1, dtype=np.int64)
        slot[active] = np.arange(len(active))
        first = np.cumsum(counts) - counts
        pos = np.arange(len(rows)) - first[rows]
        qa = qidx[active]
        joined = np.full((len(active), k + width), NEG_INF, dtype=np.float32)
        joined_refs = np.full((len(active), k + width), -1, dtype=np.int64)
        joined[:, :k] = self.scores[qa]
        joined_refs[:, :k] = self.refs[qa]
        joined[slot[rows], k + pos] = cand
        joined_refs[slot[rows], k + pos] = refs[cols]
        total = k + width
        pick = np.argpartition(joined, total - k, axis=1)[:, total - k :]
        self._store(
            qa,
            np.take_along_axis(joined, pick, axis=1),
            np.take_along_axis(joined_refs, pick, axis=1),
        )

    def _store(self, qidx: np.ndarray, scores: np.ndarray, refs: np.ndarray) -> None:
        self.scores[qidx] = scores
        self.refs[qidx] = refs
        self.threshold[qidx] = scores.min(axis=1)
        self.fresh[qidx] = False

    def merge(self, other: TopK) -> None:
        """Fold another TopK of the same queries into this one."""
        if not (~other.fresh).any():
            return
        k = self.k
        joined = np.concatenate([self.scores, other.scores], axis=1)
        joined_refs = np.concatenate([self.refs, other.refs], axis=1)
        pick = np.argpartition(joined, k, axis=1)[:, k:]
        self.scores = np.take_along_axis(joined, pick, axis=1)
        self.refs = np.take_along_axis(joined_refs, pick, axis=1)
        self.threshold = self.scores.min(axis=1)
        self.fresh &= other.fresh

    def results(self, qi: int) -> tuple[np.ndarray, np.ndarray]:
        """Query ``qi``'s (scores, refs), best first, without empty slots."""
        s, r = self.scores[qi], self.refs[qi]
        keep = (r >= 0) & (s > NEG_INF)
        s, r = s[keep], r[keep]
        order = np.lexsort((r, -s))
        return s[order], r[order]
