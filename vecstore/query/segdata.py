"""Reading the parts of segment files a query needs, through the caches.

Each segment column is read on its own and cached under ``(segment key,
part)``: the dense matrix for scoring (a zero-copy float32 view of the
``fixed_size_list`` column, plus norms), the ids for the final top-k rows,
the ``metadata`` JSON column only when metadata is returned, the shredded
``m.*`` columns a filter reads, and a sparse inverted index. Segment files
are immutable, so cached parts never go stale; keys carry the file's UUID
name.

Local stores are read through pyarrow's native file IO; remote stores
(``store.is_remote``) through the :class:`DiskCache`
when one is configured.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vecstore.errors import FormatError, NotFoundError
from vecstore.query.cache import ByteLRU, DiskCache
from vecstore.query.filters import Node, evaluate
from vecstore.schemas.arrow import meta_column
from vecstore.schemas.metrics import Metric
from vecstore.segments import dense_matrix
from vecstore.storage import Store


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


class StringColumn:
    """Fast ``str`` access to single rows of an Arrow string column.

    ``get`` / ``take`` decode only the rows asked for, straight from the Arrow
    buffers (memoryviews: no Arrow ``take`` kernel, no numpy scalars, no
    Python objects for the other rows): a few ids cost about a microsecond
    each."""

    __slots__ = ("_data", "_offsets", "array")

    def __init__(self, array: pa.Array | pa.ChunkedArray) -> None:
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        large = pa.types.is_large_string(array.type)
        if not large and not pa.types.is_string(array.type):
            array = array.cast(pa.string())
        self.array = array
        buffers = array.buffers()
        n = len(array)
        if n == 0 or buffers[1] is None:
            self._offsets: Any = [0] * (n + 1)
            self._data = memoryview(b"")
            return
        raw = memoryview(buffers[1]).cast("B")
        offsets = raw.cast("q") if large else raw.cast("i")
        self._offsets = offsets[array.offset : array.offset + n + 1]
        self._data = memoryview(buffers[2]) if buffers[2] is not None else memoryview(b"")

    def __len__(self) -> int:
        return len(self.array)

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def get(self, row: int) -> str:
        o = self._offsets
        return str(self._data[o[row] : o[row + 1]], "utf-8")

    def raw(self, row: int) -> bytes:
        """The UTF-8 bytes of one row."""
        o = self._offsets
        return self._data[o[row] : o[row + 1]].tobytes()

    def take(self, rows: list[int]) -> list[str]:
        o, data = self._offsets, self._data
        return [str(data[o[r] : o[r + 1]], "utf-8") for r in rows]


@dataclass(frozen=True, slots=True)
class Footer:
    """The Parquet footer of one segment and where its row groups start."""

    metadata: pq.FileMetaData
    starts_list: list[int]  # first row of each row group, then the row count
    names: frozenset[str]  # top-level column names

    @property
    def row_groups(self) -> int:
        return len(self.starts_list) - 1


def _footer(md: pq.FileMetaData) -> Footer:
    starts = [0]
    for i in range(md.num_row_groups):
        starts.append(starts[-1] + md.row_group(i).num_rows)
    return Footer(md, starts, frozenset(md.schema.to_arrow_schema().names))


class _RowGroupPart:
    """One column of one row group, ready for single-row reads."""

    __slots__ = ("array", "matrix", "nbytes")

    def __init__(self, matrix: np.ndarray | None = None, array: pa.Array | None = None) -> None:
        self.matrix = matrix
        self.array = array
        self.nbytes = int(
            (matrix.nbytes if matrix is not None else 0)
            + (array.nbytes if array is not None else 0)
        )

    @staticmethod
    def of(table: pa.Table, name: str, dimension: int) -> _RowGroupPart:
        if name not in table.column_names:
            return _RowGroupPart()
        col = table.column(name)
        if name == "values":
            return _RowGroupPart(matrix=dense_matrix(col, dimension))
        return _RowGroupPart(array=col.chunk(0) if col.num_chunks == 1 else col.combine_chunks())

    def get(self, row: int) -> Any:
        if self.matrix is not None:
            return self.matrix[row].tolist()
        if self.array is not None:
            return self.array[row].as_py()
        return None


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


PART_SEP = "\n"  # joins the keys of a cluster's segment and delta segments


class SegmentSource:
    """Cached, column-wise access to the segment files of one store.

    A key may be composite: the keys of a segment and its delta segments
    joined by :data:`PART_SEP`; it reads as one segment whose rows are the
    parts' rows in order (docs/write-path.md "Delta segments")."""

    def __init__(self, store: Store, cache: ByteLRU, disk: DiskCache | None = None) -> None:
        self.store = store
        self.cache = cache
        self.disk = disk if store.is_remote else None
        self.reads = ReadCounter()

    # -------------------------------------------------------------- raw IO
    @contextmanager
    def _open(self, key: str, whole: bool = True) -> Iterator[pq.ParquetFile]:
        """The segment as a ParquetFile (its footer parsed once, then cached).

        Remote stores: ``whole`` (a scan) downloads the file into the disk
        cache first; otherwise (a few row groups) a file not cached yet is
        read with ranged GETs of the bytes pyarrow asks for (the footer, then
        the column chunks), not downloaded whole."""
        self.reads.add(key)
        known = self.cache.get((key, "footer"))
        md = known.metadata if known is not None else None
        path = self.store.local_path(key)
        if path is None and self.disk is not None:
            path = (
                self.disk.local_path(self.store, key)
                if whole
                else self.disk.cached_path(self.store, key)
            )
        if path is not None:
            try:
                f = pa.OSFile(path)  # no filesystem resolution per open
            except FileNotFoundError:
                raise NotFoundError(f'Object not found: "{self.store.url(key)}"', key=key) from None
            try:
                # pre_buffer off: it costs a thread-pool round trip per read,
                # and local reads gain nothing from coalescing
                yield self._remember(key, pq.ParquetFile(f, metadata=md, pre_buffer=False), known)
            finally:
                f.close()
            return
        with self.store.open_input(key, readahead=False) as f:
            yield self._remember(key, pq.ParquetFile(f, metadata=md), known)

    def _remember(self, key: str, pf: pq.ParquetFile, known: Footer | None) -> pq.ParquetFile:
        if known is None:
            footer = _footer(pf.metadata)
            self.cache.put((key, "footer"), footer, int(pf.metadata.serialized_size) + 256)
        return pf

    def footer(self, key: str) -> Footer:
        """The segment's footer (read once; cached)."""
        known = self.cache.get((key, "footer"))
        if known is not None:
            return known  # type: ignore[no-any-return]
        with self._open(key) as pf:
            return _footer(pf.metadata)

    def read_columns(self, key: str, columns: list[str]) -> pa.Table:
        """Read ``columns`` of a segment, every row group (absent ones are skipped)."""
        if PART_SEP in key:
            parts = [self.read_columns(k, columns) for k in key.split(PART_SEP)]
            return pa.concat_tables(parts, promote_options="permissive")
        with self._open(key) as pf:
            return self._read(pf, columns)

    def _row_fields_of_parts(
        self, key: str, rows: list[int], names: list[str], dimension: int
    ) -> dict[str, list[Any]]:
        """``row_fields`` of a composite key: each row read from its part."""
        keys = key.split(PART_SEP)
        ends = np.cumsum([self.footer(k).metadata.num_rows for k in keys]).tolist()
        out: dict[str, list[Any]] = {name: [None] * len(rows) for name in names}
        by_part: dict[int, list[int]] = {}
        for i, r in enumerate(rows):
            by_part.setdefault(bisect.bisect_right(ends, r), []).append(i)
        for part, slots in by_part.items():
            start = 0 if part == 0 else int(ends[part - 1])
            got = self.row_fields(keys[part], [rows[i] - start for i in slots], names, dimension)
            for name, values in got.items():
                dest = out[name]
                for i, v in zip(slots, values, strict=True):
                    dest[i] = v
        return out

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
        """The segment's vectors (read with its ids: results need those next)."""

        def load() -> tuple[DenseBlock, int]:
            table = self.read_columns(key, ["values", "id"])
            if "values" not in table.column_names:
                raise FormatError(f'Segment "{self.store.url(key)}" has no values column')
            if "id" in table.column_names and self.cache.get((key, "ids")) is None:
                ids = StringColumn(table.column("id"))
                self.cache.put((key, "ids"), ids, ids.nbytes + 64)
            block = make_dense_block(dense_matrix(table.column("values"), dimension), metric)
            return block, block.nbytes

        return self.cache.get_or_load((key, "dense"), load)

    def cached_dense(self, key: str) -> DenseBlock | None:
        """The segment's DenseBlock if it is in memory (no read)."""
        block: DenseBlock | None = self.cache.get((key, "dense"))
        return block

    def column(self, key: str, name: str) -> pa.Array | None:
        """One column (``id``, ``metadata``, ``sparse_values``, ``m.*``) or None."""

        def load() -> tuple[pa.Array | None, int]:
            col = self._column(key, name)
            return col, _array_nbytes(col) + 64

        return self.cache.get_or_load((key, "col", name), load)

    def ids(self, key: str) -> StringColumn:
        """The whole id column (read once; cached)."""

        def load() -> tuple[StringColumn, int]:
            col = self._column(key, "id")
            if col is None:
                raise FormatError(f'Segment "{self.store.url(key)}" has no id column')
            ids = StringColumn(col)
            return ids, ids.nbytes + 64

        return self.cache.get_or_load((key, "ids"), load)

    def row_fields(
        self, key: str, rows: list[int], names: list[str], dimension: int
    ) -> dict[str, list[Any]]:
        """Python values of the columns ``names`` at ``rows`` of a segment.

        ``values`` gives lists of floats, ``id`` / ``metadata`` strings (or
        None), ``sparse_values`` dicts (or None); a column the segment lacks
        gives Nones. What is in memory is used first: the whole dense matrix
        or id column a scan cached. Otherwise only the row groups holding
        ``rows`` are read (one open of the file, one read per row group) and
        cached per row group, so fetching a few records reads a few small row
        groups, not whole segments. A segment written as one row group
        (before row groups were cut) is read whole the same way."""
        n = len(rows)
        out: dict[str, list[Any]] = {}
        todo: list[str] = []
        for name in names:
            if name == "values":
                block = self.cached_dense(key)
                if block is not None:
                    out[name] = block.matrix[rows].tolist()
                    continue
            elif name == "id":
                ids = self.cache.get((key, "ids"))
                if ids is not None:
                    out[name] = ids.take(rows)
                    continue
            todo.append(name)
        if not todo:
            return out
        if PART_SEP in key:
            out.update(self._row_fields_of_parts(key, rows, todo, dimension))
            return out
        for name in todo:
            out[name] = [None] * n
        footer: Footer | None = self.cache.get((key, "footer"))
        with contextlib.ExitStack() as stack:
            pf: pq.ParquetFile | None = None
            if footer is None:
                pf = stack.enter_context(self._open(key, whole=False))
                footer = self.cache.get((key, "footer")) or _footer(pf.metadata)
            starts = footer.starts_list
            groups: dict[int, list[int]] = {}
            for i, r in enumerate(rows):
                groups.setdefault(bisect.bisect_right(starts, r) - 1, []).append(i)
            for g, slots in groups.items():
                parts: dict[str, _RowGroupPart | None] = {
                    name: self.cache.get((key, "rg", g, name)) for name in todo
                }
                missing = [name for name, part in parts.items() if part is None]
                if missing:
                    if pf is None:
                        pf = stack.enter_context(self._open(key, whole=False))
                    table = pf.read_row_group(
                        g, columns=[c for c in missing if c in footer.names], use_threads=False
                    )
                    for name in missing:
                        fresh = _RowGroupPart.of(table, name, dimension)
                        self.cache.put((key, "rg", g, name), fresh, fresh.nbytes + 64)
                        parts[name] = fresh
                base = starts[g]
                for name in todo:
                    part = parts[name]
                    assert part is not None
                    dest = out[name]
                    for i in slots:
                        dest[i] = part.get(rows[i] - base)
        return out

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


def make_dense_block(matrix: np.ndarray, metric: Metric) -> DenseBlock:
    """A DenseBlock with what scoring ``metric`` needs besides the matrix."""
    inv_norm, sq_norm = Metric(metric).row_terms(matrix)
    return DenseBlock(matrix, inv_norm=inv_norm, sq_norm=sq_norm)
