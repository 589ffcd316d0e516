"""Reading the parts of segment files a query needs, through the caches.

Each segment column is read on its own and cached under ``(segment key,
part)``: the dense matrix for scoring (a zero-copy float32 view of the
``fixed_size_list`` column, plus norms), the ids for the final top-k rows,
the ``metadata`` JSON column only when metadata is returned, the shredded
``m.*`` columns a filter reads, and a sparse inverted index. Segment files
are immutable, so cached parts never go stale; keys carry the file's UUID
name.

Local stores are read through pyarrow's native file IO; remote stores
(``store.kind`` not ``local`` / ``memory``) through the :class:`DiskCache`
when one is configured.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.arrow import meta_column
from schemas.models import Metric
from vecstore.errors import FormatError, NotFoundError
from vecstore.query.cache import ByteLRU, DiskCache
from vecstore.query.filters import Node, evaluate
from vecstore.segments import dense_matrix
from vecstore.storage import Store

UNIT_NORM_TOLERANCE = 1e-3


@dataclass(frozen=True, slots=True)
class DenseBlock:
    """The dense vectors of one segment, ready for BLAS."""

    matrix: np.ndarray  # (n, d) float32, a view of the Arrow buffer (no copy)
    inv_norm: np.ndarray | None = None  # cosine: 1/|x| (None: every row has unit length)
    sq_norm: np.ndarray | None = None  # euclidean: |x|^2

    @property
    def nbytes(self) -> int:
        return int(
            self.matrix.nbytes
            + (0 if self.inv_norm is None else self.inv_norm.nbytes)
            + (0 if self.sq_norm is None else self.sq_norm.nbytes)
        )


@dataclass(frozen=True, slots=True)
class SparseBlock:
    """An inverted index over one segment's sparse vectors."""

    n: int
    terms: np.ndarray  # sorted distinct indices (int64)
    starts: np.ndarray  # (len(terms) + 1,) offsets into rows / vals
    rows: np.ndarray  # int32 row of each posting
    vals: np.ndarray  # float32 value of each posting

    @property
    def nbytes(self) -> int:
        return int(self.terms.nbytes + self.starts.nbytes + self.rows.nbytes + self.vals.nbytes)

    def scores(self, q_idx: np.ndarray, q_val: np.ndarray) -> np.ndarray:
        """(n,) float32: the sparse dot product of each row with the query."""
        out = np.zeros(self.n, dtype=np.float32)
        if len(self.terms) == 0 or len(q_idx) == 0:
            return out
        pos = np.searchsorted(self.terms, q_idx)
        ok = pos < len(self.terms)
        ok[ok] = self.terms[pos[ok]] == q_idx[ok]
        if not ok.any():
            return out
        pos, weights = pos[ok], q_val[ok]
        begin, end = self.starts[pos], self.starts[pos + 1]
        lengths = end - begin
        total = int(lengths.sum())
        if total == 0:
            return out
        first = np.cumsum(lengths) - lengths
        postings = np.repeat(begin - first, lengths) + np.arange(total)
        acc = np.bincount(
            self.rows[postings],
            weights=self.vals[postings] * np.repeat(weights, lengths),
            minlength=self.n,
        )
        out[:] = acc
        return out


def build_sparse_block(column: pa.Array | pa.ChunkedArray, n: int) -> SparseBlock:
    """Inverted index of a ``struct<indices, values>`` column (null rows: empty)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(arr) == 0 or arr.null_count == len(arr):
        empty = np.zeros(0, np.int64)
        return SparseBlock(
            n, empty, np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, np.float32)
        )
    indices, values = arr.flatten()
    offsets = np.asarray(indices.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    lengths = np.diff(offsets)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if indices.null_count:
        valid &= np.asarray(indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = np.where(valid, lengths, 0)
    start = offsets[:-1]
    total = int(lengths.sum())
    first = np.cumsum(lengths) - lengths
    take = np.repeat(start - first, lengths) + np.arange(total)
    flat_idx = np.asarray(indices.values.to_numpy(zero_copy_only=False), dtype=np.int64)[take]
    v_offsets = np.asarray(values.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    v_take = np.repeat(v_offsets[:-1] - first, lengths) + np.arange(total)
    flat_val = np.asarray(values.values.to_numpy(zero_copy_only=False), dtype=np.float32)[v_take]
    rows = np.repeat(np.arange(len(arr), dtype=np.int32), lengths)
    order = np.argsort(flat_idx, kind="stable")
    flat_idx, rows, flat_val = flat_idx[order], rows[order], flat_val[order]
    terms, first_pos = np.unique(flat_idx, return_index=True)
    starts = np.append(first_pos, total).astype(np.int64)
    return SparseBlock(n, terms.astype(np.int64), starts, rows, flat_val)


def _array_nbytes(arr: pa.Array | None) -> int:
    return 0 if arr is None else int(arr.nbytes)


@dataclass
class ReadCounter:
    """Segment file reads by this source (tests and benchmarks look here)."""

    total: int = 0
    by_key: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str) -> None:
        with self.lock:
            self.total += 1
            self.by_key[key] += 1


class SegmentSource:
    """Cached, column-wise access to the segment files of one store."""

    def __init__(self, store: Store, cache: ByteLRU, disk: DiskCache | None = None) -> None:
        self.store = store
        self.cache = cache
        self.disk = disk if store.kind not in ("local", "memory") else None
        self.reads = ReadCounter()

    # -------------------------------------------------------------- raw IO
    def read_columns(self, key: str, columns: list[str]) -> pa.Table:
        """Read ``columns`` of a segment (absent ones are skipped)."""
        self.reads.add(key)
        if self.store.kind == "local":
            try:
                pf = pq.ParquetFile(self.store.path(key))
            except FileNotFoundError:
                raise NotFoundError(f'Object not found: "{self.store.url(key)}"', key=key) from None
            return self._read(pf, columns)
        if self.disk is not None:
            return self._read(pq.ParquetFile(self.disk.local_path(self.store, key)), columns)
        with self.store.open_input(key) as f:
            return self._read(pq.ParquetFile(f), columns)

    @staticmethod
    def _read(pf: pq.ParquetFile, columns: list[str]) -> pa.Table:
        have = set(pf.schema_arrow.names)
        return pf.read(columns=[c for c in columns if c in have], use_threads=False)

    def _column(self, key: str, name: str) -> pa.Array | None:
        table = self.read_columns(key, [name])
        if name not in table.column_names:
            return None
        return table.column(name).combine_chunks()

    # -------------------------------------------------------------- parts
    def dense(self, key: str, dimension: int, metric: Metric) -> DenseBlock:
        def load() -> tuple[DenseBlock, int]:
            col = self._column(key, "values")
            if col is None:
                raise FormatError(f'Segment "{self.store.url(key)}" has no values column')
            matrix = dense_matrix(col, dimension)
            block = DenseBlock(matrix)
            if metric == "cosine":
                norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
                if len(norms) and np.abs(norms - 1.0).max() > UNIT_NORM_TOLERANCE:
                    safe = np.where(norms > 0, norms, 1.0)
                    inv = np.where(norms > 0, 1.0 / safe, 0.0).astype(np.float32)
                    block = DenseBlock(matrix, inv_norm=inv)
            elif metric == "euclidean":
                block = DenseBlock(matrix, sq_norm=np.einsum("ij,ij->i", matrix, matrix))
            return block, block.nbytes

        return self.cache.get_or_load((key, "dense"), load)

    def column(self, key: str, name: str) -> pa.Array | None:
        """One column (``id``, ``metadata``, ``sparse_values``, ``m.*``) or None."""

        def load() -> tuple[pa.Array | None, int]:
            col = self._column(key, name)
            return col, _array_nbytes(col) + 64

        return self.cache.get_or_load((key, "col", name), load)

    def ids(self, key: str) -> pa.Array:
        col = self.column(key, "id")
        if col is None:
            raise FormatError(f'Segment "{self.store.url(key)}" has no id column')
        return col

    def sparse(self, key: str, n: int) -> SparseBlock:
        def load() -> tuple[SparseBlock, int]:
            col = self._column(key, "sparse_values")
            block = build_sparse_block(col if col is not None else pa.nulls(n), n)
            return block, block.nbytes

        return self.cache.get_or_load((key, "sparse"), load)

    def mask(
        self, key: str, node: Node, canon: str, n: int, known: frozenset[str] | None = None
    ) -> np.ndarray:
        """Rows of the segment matching a parsed filter (cached per filter).

        ``known``: the shredded column names the namespace has (others are
        not looked for)."""

        def get(field_: str, kind: str) -> pa.Array | None:
            name = meta_column(field_, kind)
            if known is not None and name not in known:
                return None
            return self.column(key, name)

        def load() -> tuple[np.ndarray, int]:
            m = evaluate(node, get, n)
            m.flags.writeable = False
            return m, int(m.nbytes) + 64

        return self.cache.get_or_load((key, "mask", canon), load)
