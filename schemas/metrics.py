"""The similarity metrics: every piece of metric math of vecstore lives here.

Adding a metric is one new :class:`Metric` member plus its :data:`_RULES`
entry; the index spec, clustering (:mod:`vecstore.kmeans`), the query
executor, the planner and the reader only call the methods below.

Scores are "higher is better" inside the engine:

- cosine: ``x . q / (|x| |q|)``: queries are normalised once, rows by a
  cached ``1/|x|`` unless a segment is already unit length; clustering works
  on normalised vectors and keeps normalised centroids.
- dotproduct: ``x . q`` (+ the sparse dot product for hybrid queries); the
  only metric of sparse and hybrid indexes.
- euclidean: ``2 x . q - |x|^2``, i.e. ``|q|^2 - |x - q|^2``;
  :meth:`Metric.public_scores` turns it back into the squared distance
  Pinecone reports.

This module imports nothing else from vecstore, so the schemas use
:class:`Metric` as a field type; numpy loads when the math first runs
(``import vecstore`` stays light).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

UNIT_NORM_TOLERANCE = 1e-3  # rows this close to unit length are not rescaled (cosine)


@dataclass(frozen=True)
class _Rules:
    unit_vectors: bool  # queries, rows and centroids are compared at unit length
    subtract_sq_norm: bool  # internal score = scale * x.q - |x|^2
    scale: float  # factor of x.q in the internal score
    sparse: bool  # sparse values may be scored with it (sparse and hybrid indexes)


class Metric(StrEnum):
    """A similarity metric; the value is the name stored in index.json and manifests."""

    COSINE = "cosine"
    EUCLIDEAN = "euclidean"
    DOTPRODUCT = "dotproduct"

    @property
    def _rules(self) -> _Rules:
        return _RULES[self]

    # ---------------------------------------------------------- properties
    @property
    def unit_vectors(self) -> bool:
        """Vectors (and centroids) are clustered and compared at unit length."""
        return self._rules.unit_vectors

    @property
    def supports_sparse(self) -> bool:
        """Sparse indexes and the sparse part of hybrid queries use this metric."""
        return self._rules.sparse

    @property
    def needs_query_norm(self) -> bool:
        """:meth:`public_scores` needs ``|q|^2`` of the query."""
        return self._rules.subtract_sq_norm

    @classmethod
    def default_for(cls, *, sparse: bool) -> Metric:
        """The metric of an index created without one."""
        return cls.DOTPRODUCT if sparse else cls.COSINE

    @classmethod
    def sparse_metrics(cls) -> tuple[Metric, ...]:
        return tuple(m for m in cls if m.supports_sparse)

    # ------------------------------------------------------- normalising
    def normalize_rows(self, x: np.ndarray) -> np.ndarray:
        """Rows as this metric clusters them (cosine: unit length; zero rows stay zero)."""
        if not self.unit_vectors:
            return x
        return unit_rows(x)

    def prepare_queries(self, vectors: np.ndarray) -> np.ndarray:
        """(q, d) queries as the executor scores them in batches (cosine: unit length)."""
        import numpy as np

        q = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.unit_vectors:
            norms = np.linalg.norm(q, axis=1, keepdims=True).astype(np.float32)
            norms[norms == 0] = 1.0
            q = q / norms
        return q

    def scaled_query(self, query: np.ndarray) -> np.ndarray:
        """One (d,) query with normalisation and the scale folded in (the lean path):
        ``rows @ scaled_query(q)`` then :meth:`finish_scores` with ``scaled=True``."""
        import numpy as np

        qv = query
        if self.unit_vectors:
            norm = np.sqrt(np.dot(query, query))
            qv = query / norm if norm > 0 else query
        if self._rules.scale != 1.0:
            qv = qv * np.float32(self._rules.scale)
        return qv

    # ----------------------------------------------------------- scoring
    def row_terms(self, matrix: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(inv_norm, sq_norm)`` of a block of rows: what scoring needs besides the
        matrix (None: not needed; cosine rows already at unit length need nothing)."""
        import numpy as np

        if self.unit_vectors:
            norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
            if len(norms) and np.abs(norms - 1.0).max() > UNIT_NORM_TOLERANCE:
                safe = np.where(norms > 0, norms, 1.0)
                return np.where(norms > 0, 1.0 / safe, 0.0).astype(np.float32), None
            return None, None
        if self._rules.subtract_sq_norm:
            return None, np.einsum("ij,ij->i", matrix, matrix)
        return None, None

    def finish_scores(
        self,
        dots: np.ndarray,
        inv_norm: np.ndarray | None,
        sq_norm: np.ndarray | None,
        *,
        scaled: bool = False,
    ) -> np.ndarray:
        """Internal scores from ``rows . query`` products, in place (``scaled``: the
        query came from :meth:`scaled_query`)."""
        if inv_norm is not None:
            dots *= inv_norm
        elif sq_norm is not None:
            if not scaled and self._rules.scale != 1.0:
                dots *= self._rules.scale
            dots -= sq_norm
        return dots

    def rank_scores(self, dots: np.ndarray, centroid_sq: np.ndarray | None) -> np.ndarray:
        """Centroid ranking scores (higher first) from (q, c) ``queries . centroids``
        products of prepared (not scaled) queries."""
        if self._rules.subtract_sq_norm and centroid_sq is not None:
            out: np.ndarray = self._rules.scale * dots - centroid_sq[None, :]
            return out
        return dots

    def rank_scores_scaled(self, dots: np.ndarray, centroid_sq: np.ndarray | None) -> np.ndarray:
        """:meth:`rank_scores` of one query from :meth:`scaled_query`, in place."""
        if self._rules.subtract_sq_norm and centroid_sq is not None:
            dots -= centroid_sq
        return dots

    # ------------------------------------------------ score -> distance
    def public_scores(self, internal: np.ndarray, query_sq: float) -> np.ndarray:
        """The scores Pinecone reports (euclidean: the squared distance)."""
        import numpy as np

        if self._rules.subtract_sq_norm:
            return np.maximum(np.float32(query_sq) - internal, 0)
        return internal

    def public_score_list(self, internal: list[float], query_sq: float) -> list[float]:
        """:meth:`public_scores` of a plain list (the lean path)."""
        if self._rules.subtract_sq_norm:
            return [max(query_sq - s, 0.0) for s in internal]
        return internal


_RULES: dict[Metric, _Rules] = {
    Metric.COSINE: _Rules(unit_vectors=True, subtract_sq_norm=False, scale=1.0, sparse=False),
    Metric.EUCLIDEAN: _Rules(unit_vectors=False, subtract_sq_norm=True, scale=2.0, sparse=False),
    Metric.DOTPRODUCT: _Rules(unit_vectors=False, subtract_sq_norm=False, scale=1.0, sparse=True),
}


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm as float32 (zero rows stay zero)."""
    import numpy as np

    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: np.ndarray = (x / norms).astype(np.float32, copy=False)
    return out
