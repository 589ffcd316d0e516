"""Worker-side tasks of an import. Each reads and writes the store, returns
small frozen results, and checks the job's cancel event between batches.

- :func:`inspect_many` reads files' footers (schema check, row groups) and
  decodes the small ones once (:mod:`.decoded`).
- :func:`sample` reads the ``values`` column of a chunk and keeps a seeded
  random fraction of valid rows: the k-means training sample.
- :func:`train` fits centroids on the concatenated sample (k <= FLAT_MAX_K).
- Above that, hierarchical training (docs/kmeans.md), the sample staying on
  the workers: :func:`coarse_subset` per sample part -> :func:`train_coarse`
  -> :func:`route` per part (writes the part's rows per cell group to
  staging, returns per-cell counts) -> :func:`train_cells` per cell group
  -> (:func:`gather_cells` -> :func:`refine_cells` per group) x
  kmeans.REFINE_ITER -> :func:`join_cells`.
- :func:`scan` validates a chunk batch by batch, writes rejects, assigns
  rows to clusters and scatters them into per-bucket shuffle files, and
  writes dedup keys into per-partition key files.
- :func:`dedup` finds duplicate ids and identical vectors in one partition;
  the first in (file, row) order wins.
- :func:`gather` reads one bucket's shuffle files, drops duplicates, and
  writes one segment file per cluster plus an id lookup file.
- :func:`inspect_many`, :func:`sample_unit` and :func:`scan_unit` do the
  same for many files or consecutive chunks in one task (their arguments:
  the chunks and the namespace's :class:`~vecstore.pipelines.plan.Sizing`).
- :func:`pack` imports many small namespaces in one task: sample, train,
  scan, dedup and gather of each, scratch in memory (docs/scale.md).

Source files are opened and read through :mod:`vecstore.pipelines.reading`
(page checksums verified; a page that cannot be decoded fails the import
with a message naming the file and row group), and vector values become
float32 by :func:`vecstore.schemas.arrow.as_float32` everywhere.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vecstore import kmeans, layout, quality
from vecstore.errors import CancelledError, CommitConflictError, IngestError
from vecstore.metadata import meta_fields_of
from vecstore.pipelines import decoded
from vecstore.pipelines import plan as P
from vecstore.pipelines.discover import FileInfo, SourceFile, display_path, inspect_file
from vecstore.pipelines.hashing import digest_rows, digest_segments, hash_segments
from vecstore.pipelines.readahead import read_ahead
from vecstore.pipelines.reading import (
    FOOTER_BYTES,
    SMALL_FILE_BYTES,
    iter_batches,
    open_parquet,
    read_whole,
)
from vecstore.records import Reject, record_error, validate_batch
from vecstore.refs import FILE_ROW
from vecstore.schemas import ClusterEntry, IndexSpec, Manifest, RecordLayout
from vecstore.schemas.arrow import REJECT_SCHEMA, as_float32
from vecstore.segments import SMALL_TABLE_ROWS, dense_matrix
from vecstore.writer import (
    assemble_manifest,
    write_centroids_file,
    write_cluster,
    write_id_file,
)

SCRATCH_SUFFIX = ".arrow"
FLUSH_BYTES = 64 * 1024 * 1024


# ------------------------------------------------------------------ helpers
CANCEL_POLL_SECONDS = 0.2
# per worker process: event name -> (monotonic time of the last poll, set?)
_POLLED: dict[str, tuple[float, bool]] = {}


class CancelCheck:
    """Polls the job's distributed Event (one scheduler round trip), at most
    every CANCEL_POLL_SECONDS per worker process: a packed task calls it for
    each of thousands of small steps."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._event: Any = None

    def __call__(self) -> None:
        last = _POLLED.get(self.name)
        now = time.monotonic()
        if last is not None and (last[1] or now - last[0] < CANCEL_POLL_SECONDS):
            if last[1]:
                raise CancelledError("Import cancelled")
            return
        if self._event is None:
            try:
                from distributed import Event, get_worker

                get_worker()  # raises ValueError outside a Dask worker
                self._event = Event(self.name)
            except (ImportError, ValueError):  # not on a Dask worker (unit tests)
                self._event = False
        is_set = self._event is not False and bool(self._event.is_set())
        _POLLED[self.name] = (now, is_set)
        if is_set:
            raise CancelledError("Import cancelled")


def _write_parquet(ctx: P.Context, key: str, table: pa.Table) -> None:
    """A Parquet file (reject reports: read by users)."""
    buf = io.BytesIO()
    pq.write_table(table, buf)
    ctx.store.write_bytes(key, buf.getvalue())


# A packed task keeps its scratch (shuffle and dedup key tables) in memory:
# directory -> [(file name, table)]. None: scratch goes to the store.
_MEMORY: ContextVar[dict[str, list[tuple[str, pa.Table]]] | None] = ContextVar(
    "vecstore_scratch", default=None
)


@contextmanager
def memory_scratch() -> Iterator[None]:
    """Scratch written inside this block stays in memory (a packed task)."""
    token = _MEMORY.set({})
    try:
        yield
    finally:
        _MEMORY.reset(token)


def _write_scratch(ctx: P.Context, key: str, table: pa.Table) -> None:
    """A scratch file, written once and read once: Arrow IPC, no encoding."""
    mem = _MEMORY.get()
    if mem is not None:
        directory, name = key.rsplit("/", 1)
        mem.setdefault(directory, []).append((name, table))
        return
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    ctx.store.write_bytes(key, sink.getvalue().to_pybytes())


def _read_dir(ctx: P.Context, prefix: str) -> pa.Table | None:
    """Every scratch file under ``prefix``, concatenated in name order."""
    mem = _MEMORY.get()
    if mem is not None:
        parts = sorted(mem.pop(prefix, []), key=lambda x: x[0])
        if not parts:
            return None
        return pa.concat_tables([t for _, t in parts], promote_options="permissive")
    keys = [k for k in ctx.store.ls(prefix) if k.endswith(SCRATCH_SUFFIX)]
    if not keys:
        return None
    tables = [
        pa.ipc.open_file(pa.py_buffer(ctx.store.read_bytes(key))).read_all() for key in sorted(keys)
    ]
    return pa.concat_tables(tables, promote_options="permissive")


def dedup_key(files: np.ndarray, rows: np.ndarray) -> np.ndarray:
    return FILE_ROW.pack(files, rows)


def _dense_values(arr: pa.Array, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(ok mask, matrix of the ok rows) from any list<number> values array."""
    lengths = pc.fill_null(pc.list_value_length(arr), -1).to_numpy(zero_copy_only=False)
    ok = lengths == dim
    good = arr.filter(pa.array(ok))
    flat = as_float32(pc.list_flatten(good))  # validation's rounding rule, never an error
    mat = flat.to_numpy(zero_copy_only=False).reshape(-1, dim) if dim else np.zeros((0, 0))
    finite = np.isfinite(mat).all(axis=1)
    idx = np.flatnonzero(ok)
    ok[idx[~finite]] = False
    return ok, mat[finite]


def _small(chunk: P.Chunk) -> bool:
    """A whole file of at most SMALL_FILE_BYTES (reading.py) and BATCH_ROWS
    rows: read in one call (its bytes, then decoded at once) by sample and
    scan; a scan unit's consecutive small files are validated and scattered
    together (:func:`_scan_small`) up to BATCH_BYTES."""
    return chunk.whole and chunk.nbytes <= SMALL_FILE_BYTES and chunk.num_rows <= P.BATCH_ROWS


# sample_unit draws a chunk of one row group of at most this many rows whole
# (a few hundred thousand such rows make a namespace of hundreds of drawn files)
DRAWN_WHOLE_ROWS = 1_000


def _small_batches(
    ctx: P.Context, chunk: P.Chunk, columns: list[str] | None = None
) -> list[pa.RecordBatch] | None:
    """A small whole file's rows as at most one record batch, read in one call
    (what ``iter_batches`` yields for it, without its per-file cost). None when
    the chunk is not small or that read fails: the caller's exact path then
    reads again and raises what it raises."""
    if not _small(chunk):
        return None
    try:
        t = decoded.rows(ctx, chunk, columns)
        if t is None:
            t = read_whole(ctx.source.read_bytes(chunk.key), chunk.row_groups, columns)
    except CancelledError:
        raise
    except Exception:
        return None
    return t.combine_chunks().to_batches() if t.num_rows else []


def _fetched(chunk: P.Chunk) -> bool:
    """A small file the task reads whole from the source (not decoded)."""
    return chunk.decoded is None and _small(chunk)


@contextmanager
def _reading_ahead(ctx: P.Context, keys: Iterable[str]) -> Iterator[P.Context]:
    """``ctx`` whose source reads ``keys`` (whole files the task is about to
    read, in order) ahead on a remote store (:mod:`.readahead`); ``ctx``
    itself on local disk. The task's decoded files are read once
    (:func:`.decoded.session`)."""
    ahead = read_ahead(ctx.source, keys, ctx.read_ahead)
    with decoded.session():
        if ahead is None:
            yield ctx
            return
        with ahead:
            yield dataclasses.replace(ctx, source=cast(Any, ahead))


# ------------------------------------------------------------------ inspect
def inspect_many(
    ctx: P.Context, shipped: P.ShippedOr[Sequence[SourceFile]]
) -> P.Shipped[list[FileInfo]]:
    """Footers of several files (one task for many small files), in order;
    the small ones' rows decoded to staging (:mod:`.decoded`). The result
    comes back :class:`~.plan.Shipped` (see there)."""
    files = P.unship(shipped)
    whole = [f.key for f in files if 0 < f.size <= FOOTER_BYTES]  # discover._read_footer
    opened: dict[str, pq.ParquetFile] = {}
    with _reading_ahead(ctx, whole) as mine:
        infos = _inspect_each(mine, files, opened)
    # the small ones decoded now, once: sample, scan and pack slice them
    return P.Shipped.of(decoded.keep(ctx, infos, opened))


def _inspect_each(
    ctx: P.Context,
    files: Sequence[SourceFile],
    opened: dict[str, pq.ParquetFile] | None = None,
) -> list[FileInfo]:
    check = CancelCheck(ctx.cancel_event)
    kind, dim = ctx.spec.record_layout, ctx.spec.dimension
    out = []
    for f in files:
        check()
        out.append(inspect_file(ctx.source, f, kind, dim, opened=opened))
    return out


# ------------------------------------------------------------------- sample
def sample(ctx: P.Context, chunk: P.Chunk, fraction: float) -> np.ndarray:
    """A seeded random fraction of the chunk's valid dense vectors.

    When the fraction is small, only a random subset of the chunk's row
    groups is read (each with probability ``min(1, 3 * fraction)``, at least
    one), and rows are drawn from those: the sample stays spread over every
    file while reading a fraction of the data.
    """
    return _sample_matrix(ctx, _sample_values(ctx, chunk, fraction))


def _sample_matrix(ctx: P.Context, parts: Sequence[pa.Array | np.ndarray]) -> np.ndarray:
    """The valid dense vectors of drawn rows, in order, as one float32 matrix:
    runs of ``values`` columns of one type are converted together (the
    validity filter is row by row); matrices are already converted."""
    dim = int(ctx.spec.dimension or 0)
    mats: list[np.ndarray] = []
    run: list[pa.Array] = []

    def convert() -> None:
        if run:
            col = run[0] if len(run) == 1 else pa.concat_arrays(run)
            mats.append(_dense_values(col, dim)[1].astype(np.float32, copy=False))
            run.clear()

    for part in parts:
        if isinstance(part, np.ndarray):
            convert()
            mats.append(part)
        else:
            if run and part.type != run[0].type:  # float / double, list / large list
                convert()
            run.append(part)
    convert()
    mats = [m for m in mats if len(m)]
    if not mats:
        return np.zeros((0, dim), np.float32)
    return mats[0] if len(mats) == 1 else np.concatenate(mats)


def _sample_values(
    ctx: P.Context, chunk: P.Chunk, fraction: float
) -> list[pa.Array | np.ndarray]:
    """The drawn rows of :func:`sample`: a small file's as its ``values``
    column (converted with the next small files' at once), a big chunk's
    converted batch by batch (float32 matrices: a double source's draws are
    not held at twice the size)."""
    check = CancelCheck(ctx.cancel_event)
    dim = int(ctx.spec.dimension or 0)
    groups = list(chunk.row_groups)
    q = min(1.0, 3.0 * fraction)
    # seeded only when something is drawn: a small file taken whole by
    # sample_unit needs no generator (its construction is a quarter of the
    # file's decode)
    rng = (
        np.random.default_rng([ctx.seed, chunk.file_idx, chunk.index, len(chunk.ns)])
        if fraction < 1.0
        else None
    )
    if rng is not None and q < 1.0:
        picked = [g for g in groups if rng.random() < q] or [groups[int(rng.integers(len(groups)))]]
        row_fraction = min(1.0, fraction * len(groups) / len(picked))
    else:
        picked, row_fraction = groups, fraction
    parts: list[pa.Array | np.ndarray] = []
    small = _small(chunk)
    check()  # a stopped import opens no more source files (each open may retry for seconds)
    # no readahead: on a remote source it would fetch MBs past each picked
    # row group, turning the sample into a second full read of the file
    shown = display_path(ctx.source, chunk.key)
    with contextlib.ExitStack() as stack:
        batches: Iterable[pa.RecordBatch] | None = _small_batches(ctx, chunk, ["values"])
        if batches is None:
            fh = stack.enter_context(ctx.source.open_input(chunk.key, readahead=False))
            pf = open_parquet(fh, shown)
            batches = iter_batches(pf, shown, picked, batch_size=P.BATCH_ROWS, columns=["values"])
        for batch in batches:
            check()
            n = batch.num_rows
            take = (
                np.flatnonzero(rng.random(n) < row_fraction)
                if rng is not None and row_fraction < 1.0
                else np.arange(n)
            )
            if not len(take):
                continue
            col = batch.column(0)
            col = col.take(pa.array(take)) if len(take) < n else col
            parts.append(col if small else _dense_values(col, dim)[1].astype(np.float32, copy=False))
    return parts


def sample_unit(
    ctx: P.Context,
    shipped: P.ShippedOr[Sequence[P.Chunk]],
    fraction: float,
) -> np.ndarray:
    """:func:`sample` of consecutive chunks (one task), concatenated.

    Chunks of a few row groups are themselves drawn, each with probability
    ``q = min(1, spread * fraction * row groups)``, and then sampled at
    ``fraction / q`` (at least one chunk): the expected sample is the same,
    but most of them are not opened at all. A chunk of one row group of at
    most DRAWN_WHOLE_ROWS rows has spread 1: it is drawn with probability
    ``fraction`` and then taken whole, as reading it costs the same for one
    row or all (100,000 small files: a third of the files read at spread 3).
    Other chunks have spread 3, so their sample comes from more row groups;
    big chunks (probability 1) are sampled as :func:`sample` does.
    """
    chunks = P.unship(shipped)
    parts: list[pa.Array | np.ndarray] = []
    draws: list[tuple[P.Chunk, float]] = []  # (chunk, the fraction sampled of it)
    if fraction >= 1.0 or len(chunks) == 1:
        draws = [(c, fraction) for c in chunks]
    else:
        rng = np.random.default_rng([ctx.seed, chunks[0].file_idx, chunks[0].index, 1])
        for c in chunks:
            spread = 1.0 if len(c.row_groups) == 1 and c.num_rows <= DRAWN_WHOLE_ROWS else 3.0
            q = min(1.0, spread * fraction * len(c.row_groups))
            if q >= 1.0 or rng.random() < q:
                draws.append((c, min(1.0, fraction / q)))
        if not draws:
            draws.append((chunks[int(rng.integers(len(chunks)))], fraction))
    with _reading_ahead(ctx, [c.key for c, _ in draws if _fetched(c)]) as mine:
        for c, f in draws:
            parts += _sample_values(mine, c, f)
    return _sample_matrix(ctx, parts)


def train(ctx: P.Context, k: int, buckets: int, *samples: np.ndarray) -> np.ndarray:
    """``k`` centroids from the samples, in :func:`kmeans.balanced_order` for
    ``buckets`` (the sample's rows per cluster stand for the namespace's):
    the gather tasks then hold about equal rows."""
    x = np.concatenate([s for s in samples if len(s)]) if any(len(s) for s in samples) else None
    if x is None:
        return np.zeros((1, int(ctx.spec.dimension or 0)), np.float32)
    c = kmeans.fit_flat(x, k, seed=ctx.seed, metric=ctx.spec.metric)
    if buckets > 1 and len(c) > 1:
        counts = np.bincount(kmeans.assign(x, c, metric=ctx.spec.metric), minlength=len(c))
        c = c[kmeans.balanced_order(counts, k, buckets)]
    return c


# ------------------------------------------------- hierarchical training
def coarse_subset(ctx: P.Context, part: int, fraction: float, s: np.ndarray) -> np.ndarray:
    return kmeans.coarse_subset(s, fraction, seed=ctx.seed, index=part)


def train_coarse(ctx: P.Context, k: int, *subsets: np.ndarray) -> np.ndarray:
    dim = int(ctx.spec.dimension or 0)
    x = np.concatenate([np.zeros((0, dim), np.float32), *subsets])
    return kmeans.fit_coarse(x, k, seed=ctx.seed, metric=ctx.spec.metric)


def cells_dir(ctx: P.Context, ns: str, group: int) -> str:
    return f"{ctx.staging}/kmeans/{P.ns_part(ns)}/{group:06d}"


def route(
    ctx: P.Context, ns: str, part: int, groups: int, s: np.ndarray, coarse: np.ndarray
) -> np.ndarray:
    """Find each row's nearest coarse cells (kmeans.near_cells), write the
    part's rows to every cell group one of those cells is in (one file per
    group: the row's own cell trains there, the others refine there), and
    return the per-cell counts of rows by their own cell."""
    kc = len(coarse)
    if not len(s):
        return np.zeros(kc, np.int64)
    x = ctx.spec.metric.normalize_rows(np.ascontiguousarray(s, dtype=np.float32))
    near = kmeans.near_cells(x, coarse, metric=ctx.spec.metric)
    grp = kmeans.group_of(near, kc, groups)
    for g in np.unique(grp):
        rows = np.flatnonzero((grp == g).any(axis=1))
        buf = io.BytesIO()
        np.savez(buf, near=near[rows], x=x[rows])
        ctx.store.write_bytes(f"{cells_dir(ctx, ns, int(g))}/{part:06d}.npz", buf.getvalue())
    return np.bincount(near[:, 0], minlength=kc).astype(np.int64)


Rows = tuple[np.ndarray, np.ndarray]  # (x, near): one cell group's sample rows


def cell_rows(ctx: P.Context, ns: str, group: int, *routed: np.ndarray) -> Rows:
    """The rows routed to one cell group (after every ``route`` task), in
    part order: read once, kept on a worker for the training and refining
    steps (Dask runs them where the rows are)."""
    check = CancelCheck(ctx.cancel_event)
    dim = int(ctx.spec.dimension or 0)
    xs: list[np.ndarray] = []
    nears: list[np.ndarray] = []
    for key in sorted(ctx.store.ls(cells_dir(ctx, ns, group))):
        check()
        with np.load(io.BytesIO(ctx.store.read_bytes(key))) as z:
            xs.append(z["x"])
            nears.append(z["near"])
    if not xs:
        return np.zeros((0, dim), np.float32), np.zeros((0, 1), np.int32)
    return np.concatenate(xs), np.concatenate(nears)


Cells = tuple[np.ndarray, np.ndarray]  # (centroids, coarse cell of each)


def train_cells(
    ctx: P.Context, group: int, groups: int, k: int, coarse: np.ndarray, rows: Rows,
    *counts: np.ndarray,
) -> Cells:
    """The sub-centroids of one group of coarse cells, from the rows whose
    own cell is in the group."""
    check = CancelCheck(ctx.cancel_event)
    kc, dim = len(coarse), int(ctx.spec.dimension or 0)
    alloc = kmeans.allocate(np.sum(np.stack(counts), axis=0), k)
    x, near = rows
    ids = kmeans.cells_of_group(group, kc, groups)
    out: list[np.ndarray] = []
    for j in ids:
        check()
        out.append(
            kmeans.fit_cell(
                x[near[:, 0] == j], int(alloc[j]), seed=ctx.seed, cell=j, metric=ctx.spec.metric
            )
        )
    return kmeans.stack_cells(out, ids, dim)


def gather_cells(ctx: P.Context, *groups: Cells) -> Cells:
    """Every group's centroids as one array (cell order) with their cells."""
    dim = int(ctx.spec.dimension or 0)
    return (
        np.concatenate([np.zeros((0, dim), np.float32), *[c for c, _ in groups]]),
        np.concatenate([np.zeros(0, np.int32), *[o for _, o in groups]]),
    )


def refine_cells(
    ctx: P.Context, group: int, groups: int, kc: int, rows: Rows, state: Cells
) -> Cells:
    """One kmeans.refine step for the centroids of one group's cells."""
    centroids, owner = state
    x, near = rows
    ids = kmeans.cells_of_group(group, kc, groups)
    moved = kmeans.refine(x, near, centroids, owner, ids, metric=ctx.spec.metric)
    return moved, owner[np.isin(owner, np.fromiter(ids, np.int32))]


def join_cells(ctx: P.Context, state: Cells) -> np.ndarray:
    return kmeans.finish([state[0]], int(ctx.spec.dimension or 0), ctx.spec.metric)


def existing_centroids(ctx: P.Context, ns: str, rel: str) -> np.ndarray:
    """The centroids of an existing namespace a load assigns its rows to (its
    visible manifest's file, ``rel`` relative to the namespace): read here, on
    a worker, and passed to the scan tasks; never through the driver."""
    from vecstore import layout
    from vecstore.segments import read_centroids

    CancelCheck(ctx.cancel_event)()
    return read_centroids(ctx.store, f"{layout.namespace_prefix(ctx.spec.name, ns)}/{rel}")


def centroid_count(centroids: np.ndarray) -> int:
    """What the driver waits on instead of the centroids themselves."""
    return len(centroids)


# --------------------------------------------------------------------- scan
@dataclass(frozen=True)
class ChunkResult:
    ns: str
    chunk: int
    rows_read: int
    valid: int
    skipped: dict[str, int]
    nbytes: int
    meta_fields: dict[str, list[str]] = field(default_factory=dict)
    first_error: tuple[int, str] | None = None  # (row, message) in ABORT mode


# the valid rows of one batch: (table, clusters, file_idx, file rows)
Scanned = tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]


class _Spill:
    """Accumulates tables per output key and flushes them past FLUSH_BYTES."""

    def __init__(self, ctx: P.Context, chunk: P.Chunk) -> None:
        self.ctx = ctx
        self.chunk = chunk
        self.pending: dict[str, list[pa.Table]] = {}
        self.size = 0
        self.part = 0

    def add(self, directory: str, table: pa.Table) -> None:
        if table.num_rows:
            self.pending.setdefault(directory, []).append(table)
            self.size += table.nbytes

    def maybe_flush(self) -> None:
        if self.size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        for directory, tables in self.pending.items():
            t = pa.concat_tables(tables, promote_options="permissive")
            name = f"{self.chunk.index:06d}-{self.part:04d}{SCRATCH_SUFFIX}"
            _write_scratch(self.ctx, f"{directory}/{name}", t)
        self.pending.clear()
        self.size = 0
        self.part += 1


def _clusters_for(
    ctx: P.Context, chunk: P.Chunk, table: pa.Table, centroids: np.ndarray | None, seen: int
) -> np.ndarray:
    if ctx.spec.record_layout == RecordLayout.SPARSE or centroids is None:
        local = (seen + np.arange(table.num_rows)) // P.SPARSE_SEGMENT_ROWS
        return (chunk.index * P.SPARSE_CLUSTER_STRIDE + local).astype(np.int32)
    x = dense_matrix(table.column("values"), int(ctx.spec.dimension or 0))
    return kmeans.assign(x, centroids, metric=ctx.spec.metric)


def _sparse_digests(column: pa.ChunkedArray) -> np.ndarray:
    """128-bit digests of sparse vectors (indices then values); null rows digest as empty."""
    sv = column.combine_chunks()
    if sv.null_count:
        sv = pc.if_else(pc.is_null(sv), pa.scalar({"indices": [], "values": []}, sv.type), sv)
    idx = pc.list_flatten(sv.field("indices")).to_numpy(zero_copy_only=False)
    val = pc.list_flatten(sv.field("values")).to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(sv.field("indices")).to_numpy(zero_copy_only=False)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    # one row = its indices then its values, as 32-bit words
    words = np.empty(2 * len(idx), np.uint32)
    pos = np.arange(len(idx)) + np.repeat(offsets[:-1], lengths)
    words[pos] = idx.astype(np.uint32)
    words[pos + np.repeat(lengths, lengths)] = val.astype(np.float32).view(np.uint32)
    return digest_segments(words, 2 * offsets)


def _value_digests(ctx: P.Context, table: pa.Table) -> np.ndarray:
    """The identity of each record's vector: dense values, sparse values, or
    (hybrid) both — two hybrid records are duplicates only if both parts agree."""
    if ctx.spec.record_layout == RecordLayout.SPARSE:
        return _sparse_digests(table.column("sparse_values"))
    x = dense_matrix(table.column("values"), int(ctx.spec.dimension or 0))
    dense = digest_rows(x)
    if ctx.spec.record_layout == RecordLayout.HYBRID and "sparse_values" in table.column_names:
        sparse = _sparse_digests(table.column("sparse_values"))
        # combine: rotate the sparse digest so (a, b) and (b, a) differ
        combined: np.ndarray = dense ^ np.roll(sparse, 1, axis=1) ^ np.uint64(0x9E3779B97F4A7C15)
        return combined
    return dense


def _id_hash(ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
    arr = ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids
    arr = arr.cast(pa.string())
    if arr.offset:
        arr = pa.concat_arrays([arr])
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[: len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] else np.zeros(0, np.uint8)
    return hash_segments(data, offsets)


def scan(
    ctx: P.Context, chunk: P.Chunk, nsplan: P.Sizing | P.NamespacePlan, centroids: np.ndarray | None
) -> ChunkResult:
    """Validate and scatter one chunk (see :func:`scan_unit`)."""
    return scan_unit(ctx, (chunk,), nsplan, centroids)[0]


def scan_unit(
    ctx: P.Context,
    shipped: P.ShippedOr[Sequence[P.Chunk]],
    nsplan: P.Sizing | P.NamespacePlan,
    centroids: np.ndarray | None,
) -> list[ChunkResult]:
    """Validate consecutive chunks of one namespace, write their rejects,
    assign rows to clusters and scatter them (one spill for all: many small
    files make few scratch files). Carries the namespace's sizing only."""
    chunks = P.unship(shipped)
    with _reading_ahead(ctx, [c.key for c in chunks if _fetched(c)]) as mine:
        return _scan_unit(mine, chunks, nsplan, centroids)


def _scan_unit(
    ctx: P.Context,
    chunks: Sequence[P.Chunk],
    nsplan: P.Sizing | P.NamespacePlan,
    centroids: np.ndarray | None,
) -> list[ChunkResult]:
    spill = _Spill(ctx, chunks[0])
    out: list[ChunkResult] = []  # merged into one result for the driver at the end
    batchable = (
        ctx.spec.record_layout != RecordLayout.SPARSE and centroids is not None and nsplan.k > 0
    )
    i = 0
    while i < len(chunks):
        j, size = i, 0
        while batchable and j < len(chunks) and _small(chunks[j]) and size < BATCH_BYTES:
            size += chunks[j].nbytes
            j += 1
        run = chunks[i : max(j, i + 1)]
        assert centroids is not None or len(run) == 1
        done = _scan_small(ctx, run, nsplan, spill, centroids) if len(run) > 1 else None
        if done is None:
            done = [_scan_chunk(ctx, c, nsplan, spill, centroids) for c in run]
        out += done
        i += len(run)
    spill.flush()
    return [_merged(out)]


def _merged(results: Sequence[ChunkResult]) -> ChunkResult:
    """One result for a unit's chunks (one namespace): the driver only sums
    them, and 100,000 small files made 100,000 results to send and unpickle."""
    if len(results) == 1:
        return results[0]
    skipped: dict[str, int] = {}
    fields: dict[str, set[str]] = {}
    for r in results:
        for code, n in r.skipped.items():
            skipped[code] = skipped.get(code, 0) + n
        for name, kinds in r.meta_fields.items():
            fields.setdefault(name, set()).update(kinds)
    return ChunkResult(
        ns=results[0].ns,
        chunk=results[0].chunk,
        rows_read=sum(r.rows_read for r in results),
        valid=sum(r.valid for r in results),
        skipped=skipped,
        nbytes=sum(r.nbytes for r in results),
        meta_fields={k: sorted(v) for k, v in fields.items()},
    )


def _scan_small(
    ctx: P.Context,
    chunks: Sequence[P.Chunk],
    nsplan: P.Sizing | P.NamespacePlan,
    spill: _Spill,
    centroids: np.ndarray | None,
) -> list[ChunkResult] | None:
    """:func:`_scan_chunk` of consecutive small whole files of one namespace,
    the per-record steps run once over all their rows: one read call per
    file, one validation of their rows concatenated, one cluster assignment
    and one scatter. None (nothing added to ``spill``) unless that is the
    plain case -- every file reads in one call, same schema, no rejected
    record: the caller then scans the files one by one, which reads,
    validates and reports exactly as before (docs/scale.md "Many small
    files")."""
    check = CancelCheck(ctx.cancel_event)
    raw: list[pa.Table] = []
    for c in chunks:
        check()
        got = _small_batches(ctx, c)
        if got is None:
            return None
        raw.append(pa.Table.from_batches(got) if got else pa.table({}))
    tables = [t for t in raw if t.num_rows]
    if not tables:
        return None
    if any(not t.schema.equals(tables[0].schema) for t in tables[1:]):
        return None
    try:
        batch = pa.concat_tables(tables).combine_chunks().to_batches()[0]
        vb = validate_batch(batch, ctx.spec.record_layout, ctx.spec.dimension, "", 0)
    except CancelledError:
        raise
    except Exception:  # the exact path raises what it raises
        return None
    if vb.rejects or vb.table.num_rows != sum(c.num_rows for c in chunks) or any(
        t.num_rows != c.num_rows for t, c in zip(raw, chunks, strict=True)
    ):
        return None
    check()
    t = vb.table
    files, rows = _file_rows(chunks)
    clusters = _clusters_for(ctx, chunks[0], t, centroids, 0)
    _scatter(ctx, chunks[0], nsplan, spill, t, clusters, files, rows)
    spill.maybe_flush()
    return _all_valid(chunks, {k: sorted(v) for k, v in meta_fields_of(t.schema).items()})


def _file_rows(chunks: Sequence[P.Chunk]) -> tuple[np.ndarray, np.ndarray]:
    """(file index, file row) of every row of ``chunks`` read one after another."""
    counts = np.array([c.num_rows for c in chunks], np.int64)
    files = np.repeat(np.array([c.file_idx for c in chunks], np.int32), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows = np.arange(len(files), dtype=np.int64) - np.repeat(
        starts - np.array([c.first_row for c in chunks], np.int64), counts
    )
    return files, rows


def _all_valid(chunks: Sequence[P.Chunk], fields: dict[str, list[str]]) -> list[ChunkResult]:
    """The results of chunks whose every row was valid (a batched read)."""
    return [
        ChunkResult(
            ns=c.ns,
            chunk=c.index,
            rows_read=c.num_rows,
            valid=c.num_rows,
            skipped={},
            nbytes=c.nbytes,
            meta_fields=fields if c.num_rows else {},
        )
        for c in chunks
    ]


def _scan_chunk(
    ctx: P.Context,
    chunk: P.Chunk,
    nsplan: P.Sizing | P.NamespacePlan,
    spill: _Spill | None,
    centroids: np.ndarray | None,
    collect: list[Scanned] | None = None,
) -> ChunkResult:
    """``collect``: receives the valid rows instead of ``spill`` (a packed
    namespace imported in memory, :func:`_pack_direct`)."""
    check = CancelCheck(ctx.cancel_event)
    rejects: list[Reject] = []
    skipped: dict[str, int] = {}
    fields: dict[str, set[str]] = {}
    rows_read = valid = 0
    row = chunk.first_row
    abort = ctx.error_mode == "abort"
    shown = display_path(ctx.source, chunk.key)
    check()  # a stopped import opens no more source files (each open may retry for seconds)
    with contextlib.ExitStack() as stack:
        batches: Iterable[pa.RecordBatch] | None = _small_batches(ctx, chunk)
        if batches is None:
            # pyarrow reads (and coalesces) the chunk's column chunks itself; a
            # readahead would also fetch the next chunk's row groups
            fh = stack.enter_context(ctx.source.open_input(chunk.key, readahead=False))
            pf = open_parquet(fh, shown)
            batches = iter_batches(pf, shown, chunk.row_groups, batch_size=P.BATCH_ROWS)
        for batch in batches:
            check()
            vb = validate_batch(batch, ctx.spec.record_layout, ctx.spec.dimension, shown, row)
            if vb.rejects:
                if abort:
                    raise record_error(shown, vb.rejects[0])
                rejects.extend(vb.rejects)
                for r in vb.rejects:
                    skipped[r.code] = skipped.get(r.code, 0) + 1
            rows_read += batch.num_rows
            row += batch.num_rows
            t = vb.table
            if not t.num_rows:
                continue
            for name, kinds in meta_fields_of(t.schema).items():
                fields.setdefault(name, set()).update(kinds)
            clusters = _clusters_for(ctx, chunk, t, centroids, valid)
            valid += t.num_rows
            files = np.full(t.num_rows, chunk.file_idx, np.int32)
            rows = np.asarray(vb.rows, dtype=np.int64)
            if collect is not None:
                collect.append((t, clusters, files, rows))
                continue
            assert spill is not None
            _scatter(ctx, chunk, nsplan, spill, t, clusters, files, rows)
            spill.maybe_flush()
    if rejects:
        _write_rejects(ctx, chunk.ns, f"{chunk.index:06d}", shown, rejects)
    return ChunkResult(
        ns=chunk.ns,
        chunk=chunk.index,
        rows_read=rows_read,
        valid=valid,
        skipped=skipped,
        nbytes=chunk.nbytes,
        meta_fields={k: sorted(v) for k, v in fields.items()},
    )


def _scatter(
    ctx: P.Context,
    chunk: P.Chunk,
    nsplan: P.Sizing | P.NamespacePlan,
    spill: _Spill,
    t: pa.Table,
    clusters: np.ndarray,
    files: np.ndarray,
    rows: np.ndarray,
) -> None:
    # data rows -> buckets of contiguous cluster ranges
    if ctx.spec.record_layout == RecordLayout.SPARSE or nsplan.k <= 0:
        # sparse, or a load's rows left unassigned (an existing namespace without centroids)
        buckets = np.full(len(clusters), chunk.index % nsplan.buckets, np.int64)
    else:
        buckets = np.minimum(nsplan.buckets - 1, clusters.astype(np.int64) * nsplan.buckets // nsplan.k)
    data = t.append_column("_file", pa.array(files)).append_column("_row", pa.array(rows))
    data = data.append_column("_cluster", pa.array(clusters.astype(np.int32)))
    # one take into bucket order, then zero-copy slices
    order = np.argsort(buckets, kind="stable")
    data = data.take(pa.array(order))
    sorted_buckets = buckets[order]
    bounds = np.flatnonzero(np.diff(sorted_buckets)) + 1
    for s, e in zip([0, *bounds.tolist()], [*bounds.tolist(), len(order)], strict=True):
        b = int(sorted_buckets[s])
        spill.add(P.shuffle_dir(ctx, chunk.ns, b), data.slice(s, e - s))
    # dedup keys -> partitions
    ids = t.column("id")
    id_part = (_id_hash(ids) % np.uint64(nsplan.partitions)).astype(np.int64)
    digests = _value_digests(ctx, t)
    val_part = (digests[:, 0] % np.uint64(nsplan.partitions)).astype(np.int64)
    key = dedup_key(files, rows)
    idt = pa.table({"id": ids, "key": key})
    vt = pa.table({"h1": digests[:, 0], "h2": digests[:, 1], "key": key, "id": ids})
    for p in range(nsplan.partitions):
        spill.add(P.keys_dir(ctx, "ids", chunk.ns, p), idt.filter(pa.array(id_part == p)))
        spill.add(P.keys_dir(ctx, "vals", chunk.ns, p), vt.filter(pa.array(val_part == p)))


def _write_rejects(ctx: P.Context, ns: str, name: str, file: str, rejects: list[Reject]) -> None:
    table = pa.Table.from_pydict(
        {
            "namespace": [ns] * len(rejects),
            "file": [file] * len(rejects),
            "row": [r.row for r in rejects],
            "code": [r.code for r in rejects],
            "message": [r.message for r in rejects],
            "id": [r.id for r in rejects],
        },
        schema=REJECT_SCHEMA,
    )
    _write_parquet(ctx, P.rejects_file(ctx, ns, name), table)


# -------------------------------------------------------------------- dedup
@dataclass(frozen=True)
class Drops:
    """Duplicates found in one partition: dedup keys and their first occurrence."""

    keys: np.ndarray  # int64 file<<40|row of the dropped record
    first: np.ndarray  # int64 key of the record it duplicates
    codes: list[str]
    ids: list[str]


def _first_occurrence(codes: np.ndarray) -> np.ndarray:
    """For each row (already in (file,row) order), the index of the first row with its code."""
    _, first_idx, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return np.asarray(first_idx[inverse])


def dedup(ctx: P.Context, ns: str, partition: int) -> Drops:
    CancelCheck(ctx.cancel_event)()
    idt = _read_dir(ctx, P.keys_dir(ctx, "ids", ns, partition))
    vt = _read_dir(ctx, P.keys_dir(ctx, "vals", ns, partition))
    return _find_drops(idt, vt)


def _find_drops(idt: pa.Table | None, vt: pa.Table | None) -> Drops:
    """Duplicates among the rows of ``idt`` (id, key) and ``vt`` (h1, h2,
    key, id): the first in key order wins."""
    keys: list[np.ndarray] = []
    firsts: list[np.ndarray] = []
    codes: list[str] = []
    ids: list[str] = []
    dropped: set[int] = set()
    if idt is not None and idt.num_rows:
        idt = idt.sort_by("key")
        enc = pc.dictionary_encode(idt.column("id")).combine_chunks()
        first = _first_occurrence(enc.indices.to_numpy(zero_copy_only=False))
        dup = np.flatnonzero(first != np.arange(len(first)))
        k = idt.column("key").to_numpy()
        keys.append(k[dup])
        firsts.append(k[first[dup]])
        codes.extend(["duplicate_id"] * len(dup))
        ids.extend(idt.column("id").take(pa.array(dup)).to_pylist())
        dropped.update(k[dup].tolist())
    if vt is not None and vt.num_rows:
        vt = vt.sort_by("key")
        h = np.stack([vt.column("h1").to_numpy(), vt.column("h2").to_numpy()], axis=1)
        first = _first_occurrence(np.ascontiguousarray(h).view(np.dtype((np.void, 16))).ravel())
        dup = np.flatnonzero(first != np.arange(len(first)))
        k = vt.column("key").to_numpy()
        fresh = np.array([x not in dropped for x in k[dup].tolist()], dtype=bool)
        dup = dup[fresh] if len(dup) else dup
        keys.append(k[dup])
        firsts.append(k[first[dup]])
        codes.extend(["duplicate_values"] * len(dup))
        ids.extend(vt.column("id").take(pa.array(dup)).to_pylist())
    if not keys:
        return Drops(np.zeros(0, np.int64), np.zeros(0, np.int64), [], [])
    return Drops(np.concatenate(keys), np.concatenate(firsts), codes, ids)


# ------------------------------------------------------------------- gather
@dataclass(frozen=True)
class BucketResult:
    ns: str
    bucket: int
    clusters: list[ClusterEntry]
    id_file: str | None
    rows: int


def gather(
    ctx: P.Context, ns: str, bucket: int, drop_keys: np.ndarray, with_ids: bool = True
) -> BucketResult:
    """``with_ids=False`` (a load's staged segments): no id lookup file, the
    builder writes the namespace's lookup when it folds the load."""
    CancelCheck(ctx.cancel_event)()
    t = _read_dir(ctx, P.shuffle_dir(ctx, ns, bucket))
    return write_bucket(ctx, ns, bucket, t, drop_keys, with_ids)


def write_bucket(
    ctx: P.Context,
    ns: str,
    bucket: int,
    t: pa.Table | None,
    drop_keys: np.ndarray,
    with_ids: bool = True,
    *,
    cancel: bool = True,
) -> BucketResult:
    """The segments and id file of one bucket's rows ``t`` (with their
    ``_file``, ``_row`` and ``_cluster`` columns), less ``drop_keys``.
    ``cancel=False``: no cancel checks (a writer thread of a packed task,
    whose own thread checks; a check from another thread would refresh the
    per-process poll cache without seeing the Dask event)."""
    if t is None or not t.num_rows:
        return BucketResult(ns, bucket, [], None, 0)
    keys = dedup_key(t.column("_file").to_numpy(), t.column("_row").to_numpy())
    if len(drop_keys):
        t = t.filter(pa.array(~np.isin(keys, drop_keys)))
    if not t.num_rows:
        return BucketResult(ns, bucket, [], None, 0)
    t = t.sort_by([("_cluster", "ascending"), ("_file", "ascending"), ("_row", "ascending")])
    clusters = t.column("_cluster").to_numpy()
    t = t.drop_columns(["_file", "_row", "_cluster"])
    return _write_sorted(ctx, ns, bucket, t, clusters, with_ids, cancel)


def _write_sorted(
    ctx: P.Context,
    ns: str,
    bucket: int,
    t: pa.Table,
    clusters: np.ndarray,
    with_ids: bool,
    cancel: bool,
) -> BucketResult:
    """The second half of :func:`write_bucket`: rows ``t`` sorted by (cluster,
    file, row), their ``clusters``; one segment per cluster and the id file."""
    if not t.num_rows:
        return BucketResult(ns, bucket, [], None, 0)
    bounds = np.flatnonzero(np.diff(clusters)) + 1
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    ends = np.concatenate([bounds, [len(clusters)]]).astype(np.int64)
    entries: list[ClusterEntry] = []
    rows = np.empty(len(clusters), np.int32)
    check = CancelCheck(ctx.cancel_event) if cancel else None
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if check is not None:
            check()
        cid = int(clusters[s])
        entries.append(write_cluster(ctx.store, ctx.spec, ns, ctx.owner, cid, t.slice(s, e - s)))
        rows[s:e] = np.arange(e - s, dtype=np.int32)
    if not with_ids:
        id_file = None
    elif len(entries) == 1 and t.num_rows <= SMALL_TABLE_ROWS:
        id_file = entries[0].segment  # the lookup is the segment's ids (segments.segment_cluster)
    else:
        id_file = write_id_file(
            ctx.store, ctx.spec, ns, ctx.owner, t.column("id"), clusters.astype(np.int32), rows
        )
    return BucketResult(ns, bucket, entries, id_file, int(t.num_rows))


# ---------------------------------------------------- duplicates, per namespace
def new_manifest(
    spec: IndexSpec,
    ns: str,
    buckets: Sequence[BucketResult],
    *,
    centroids: str | None,
    import_id: str,
    fields: Mapping[str, Iterable[str]],
) -> Manifest:
    """A new namespace's manifest from its bucket results, in bucket order
    (the version is assigned by the commit)."""
    ordered = sorted(buckets, key=lambda b: b.bucket)
    return assemble_manifest(
        spec,
        ns,
        1,
        [c for b in ordered for c in b.clusters],
        centroids=centroids,
        id_files=[b.id_file for b in ordered if b.id_file],
        import_id=import_id,
        fields=fields,
    )


def split_key(key: int) -> tuple[int, int]:
    return FILE_ROW.split_one(key)


def merge_drops(a: Drops, b: Drops) -> Drops:
    return Drops(
        np.concatenate([a.keys, b.keys]),
        np.concatenate([a.first, b.first]),
        a.codes + b.codes,
        a.ids + b.ids,
    )


def unique_drops(d: Drops) -> Drops:
    """A record that is both a repeated id and a repeated vector counts once
    (as duplicate_id)."""
    if len(d.keys) == 0:
        return d
    pri = np.array([0 if c == "duplicate_id" else 1 for c in d.codes])
    order = np.lexsort((pri, d.keys))
    keys = d.keys[order]
    keep = np.concatenate([[True], keys[1:] != keys[:-1]])
    sel = order[keep]
    return Drops(d.keys[sel], d.first[sel], [d.codes[i] for i in sel], [d.ids[i] for i in sel])


def dup_message(shown: Sequence[str], d: Drops, i: int, abort: bool) -> str:
    """Why record ``i`` of ``d`` was dropped; ``shown``: file_idx -> file as messages name it."""
    f, r = split_key(int(d.keys[i]))
    ff, fr = split_key(int(d.first[i]))
    if d.codes[i] == "duplicate_id":
        reason = f'Duplicate id "{d.ids[i]}": the id of the record at (file "{shown[ff]}", row {fr})'
    else:
        reason = (
            f'Duplicate vector: the values of record "{d.ids[i]}" are identical to those of '
            f'the record at (file "{shown[ff]}", row {fr})'
        )
    if abort:
        return f'error reading record (file "{shown[f]}", row {r}): {reason}'
    return reason


def first_dup_message(shown: Sequence[str], d: Drops) -> str:
    """The ABORT-mode error: the first dropped record in (file, row) order."""
    i = int(np.lexsort((d.keys,))[0])
    return dup_message(shown, d, i, abort=True)


def write_dup_rejects(ctx: P.Context, ns: str, shown: Sequence[str], d: Drops) -> None:
    order = np.argsort(d.keys, kind="stable")
    rows = []
    for i in order.tolist():
        f, r = split_key(int(d.keys[i]))
        rows.append((shown[f], r, d.codes[i], dup_message(shown, d, i, abort=False), d.ids[i]))
    table = pa.Table.from_pydict(
        {
            "namespace": [ns] * len(rows),
            "file": [x[0] for x in rows],
            "row": [x[1] for x in rows],
            "code": [x[2] for x in rows],
            "message": [x[3] for x in rows],
            "id": [x[4] for x in rows],
        },
        schema=REJECT_SCHEMA,
    )
    _write_parquet(ctx, P.rejects_file(ctx, ns, "duplicates"), table)


def dup_counts(d: Drops) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in d.codes:
        out[c] = out.get(c, 0) + 1
    return out


# --------------------------------------------------------------------- pack
@dataclass(frozen=True)
class PackResult:
    """One small namespace imported inside a packed task (its files written,
    not yet committed)."""

    ns: str
    chunks: list[ChunkResult]
    dups: dict[str, int]  # code -> records dropped as duplicates
    dup_error: str | None  # ABORT mode: the first duplicate's message
    buckets: list[BucketResult]
    centroids: str | None  # the centroids file written (dense, hybrid)
    # its manifest, written invisible by the task (commit.prepare), or None;
    # sent to the driver as JSON (pydantic's validation of it costs a third
    # of unpickling the model: 10,000 of them reach the driver)
    manifest_json: bytes | None = None
    # what commit.prepare raised for the task's namespaces: (error type, message, namespace)
    commit_error: tuple[str, str, str] | None = None

    @functools.cached_property
    def manifest(self) -> Manifest | None:
        """The prepared manifest, parsed once (the driver parses it as the
        task's results arrive, while the workers still run)."""
        return None if self.manifest_json is None else Manifest.model_validate_json(self.manifest_json)

    @property
    def valid(self) -> int:
        return sum(c.valid for c in self.chunks)


def pack(
    ctx: P.Context, shipped: P.ShippedOr[Sequence[P.NamespacePlan]]
) -> P.Shipped[list[PackResult]]:
    """Import small namespaces in one task, one after the other: the steps
    of the sample, train, scan, dedup and gather tasks, with their scratch in
    memory. Every file written and every reject is the one the unpacked path
    writes (same seeds, same order); the commit stays with the driver.

    ABORT mode: a record error is raised (the first in namespace, file, row
    order among this task's namespaces); duplicates are returned
    (``dup_error``) so the driver can prefer an earlier record error of
    another task, as the phases of the unpacked path do.
    """
    plans = P.unship(shipped)
    with _reading_ahead(ctx, _read_once_keys(ctx, plans)) as ahead:
        return P.Shipped.of(_pack(ctx, ahead.source, plans))


@dataclass(frozen=True)
class FoldResult:
    """A fold task's namespaces: every one planned (in order), and the
    results of those it imported (the packable ones; the driver imports
    the others as it does any namespace too big to pack)."""

    plans: list[P.NamespacePlan]
    packed: list[PackResult]


def fold(ctx: P.Context, shipped: P.ShippedOr[P.FoldGroup]) -> P.Shipped[FoldResult]:
    """Inspection, planning and :func:`pack` of namespaces the listing shows
    tiny, in one task: each file is read once, for its footer and then its
    rows. The footers are checked and the plans made as
    :func:`inspect_many` and the driver do (the same errors, raised before
    any namespace is imported; the same plans), so the namespaces get the
    files, rejects and counts the unfolded path gives them. The driver folds
    only imports in CONTINUE mode, where no record error is raised
    (docs/scale.md "Inspection folded into the pack task")."""
    g = P.unship(shipped)
    keys = [f.key for _, files in g.namespaces for f in files]
    with _reading_ahead(ctx, keys) as ahead:
        cache = _ReadOnce(ahead.source)  # kept for the whole task: the pack reads them again
        mine = dataclasses.replace(ahead, source=cast(Any, cache))
        plans = [
            P.plan_inspected(ns, _inspect_each(mine, files), ctx.spec, knobs=g.knobs,
                             spread=g.spread)
            for ns, files in g.namespaces
        ]
        packable = [p for p in plans if p.packable_under(g.max_rows)]
        return P.Shipped.of(FoldResult(plans, _pack(ctx, cache, packable) if packable else []))


def _read_once_keys(ctx: P.Context, plans: Sequence[P.NamespacePlan]) -> list[str]:
    """The small files :func:`pack` reads whole through :class:`_ReadOnce`, in
    the order it first reads them (each once: the cache serves it after)."""
    keys = (
        c.key
        for p in plans
        if _batchable(ctx, p) or p.nbytes <= READ_ONCE_BYTES
        for c in p.chunks
        if c.whole and c.nbytes <= SMALL_FILE_BYTES and c.decoded is None
    )
    return list(dict.fromkeys(keys))


def _pack(ctx: P.Context, source: Any, plans: Sequence[P.NamespacePlan]) -> list[PackResult]:
    once = _ReadOnce(source)
    mine = dataclasses.replace(ctx, source=cast(Any, once))
    out: list[PackResult] = []
    batch: list[P.NamespacePlan] = []
    size = 0  # source bytes of the batch

    def flush() -> None:
        nonlocal size
        if batch:
            once.enabled = True
            out.extend(_pack_batch(mine, batch))
            once.forget()
            batch.clear()
        size = 0

    with memory_scratch():
        for p in plans:
            if _batchable(ctx, p):
                if size + p.nbytes > BATCH_BYTES:
                    flush()
                batch.append(p)
                size += p.nbytes
                continue
            flush()
            once.enabled = p.nbytes <= READ_ONCE_BYTES
            direct = not p.existing and p.buckets == 1 and p.partitions == 1
            out.append(_pack_direct(mine, p) if direct else _pack_one(mine, p))
            once.forget()
        flush()
    return _prepare(ctx, plans, out)


def _prepare(
    ctx: P.Context, plans: Sequence[P.NamespacePlan], out: list[PackResult]
) -> list[PackResult]:
    """The manifests of the task's new namespaces, written invisible
    (:func:`vecstore.commit.prepare`): the commit's file work per namespace
    runs here, beside the import, and the driver only makes them visible
    with the marker. Nothing is written when the import will fail anyway
    (a duplicate in ABORT mode) or by a superseded attempt. A commit error
    (the namespace was created meanwhile...) is returned, not raised, so
    that an earlier record error of another task still wins (the driver
    raises it at its commit, as before)."""
    from vecstore import commit as commits

    if any(r.dup_error for r in out):
        return out
    by_ns = {p.ns: p for p in plans}
    built: dict[str, Manifest] = {}
    for r in out:
        rows = sum(b.rows for b in r.buckets)
        if by_ns[r.ns].existing or rows == 0:
            continue  # a load's staged load; an empty namespace (the driver's error)
        built[r.ns] = new_manifest(
            ctx.spec, r.ns, r.buckets, centroids=r.centroids, import_id=ctx.job_id,
            fields=_merged(r.chunks).meta_fields,
        )
    if not built:
        return out
    check = CancelCheck(ctx.cancel_event)

    def guard() -> None:
        check()
        if ctx.store.exists(layout.claim_key(ctx.spec.name, ctx.job_id, ctx.attempt + 1)):
            raise CancelledError("Import attempt superseded")

    change = commits.CreateNamespaces(
        import_id=ctx.job_id, manifests=tuple(built.values()), owner=ctx.owner
    )
    try:
        written = commits.prepare(ctx.store, ctx.spec.name, change, guard=guard,
                                  workers=ctx.store.io_threads(PREPARE_THREADS))
    except (IngestError, CommitConflictError, commits.MissingFileError) as exc:
        ns = str(exc.context.get("namespace", ""))
        error = (type(exc).__name__, exc.message, ns)
        return [dataclasses.replace(r, commit_error=error) for r in out]
    mine = {m.namespace: m for m in written}
    # the manifest carries the clusters: its bucket results need not travel too
    return [
        dataclasses.replace(r, manifest_json=mine[r.ns].model_dump_json().encode(), buckets=[])
        if r.ns in mine
        else r
        for r in out
    ]


READ_ONCE_BYTES = 16 * 1024 * 1024
PREPARE_THREADS = 4  # a pack task's manifests: small files, the store's latency overlapped


class _ReadOnce:
    """The import source, its small files read once: a packed task reads a
    file for the k-means sample and again for the scan."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._cache: dict[str, bytes] = {}
        self.enabled = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    @contextmanager
    def open_input(self, key: str, *, readahead: bool = True) -> Iterator[Any]:
        data = self._cache.get(key)
        if data is None:
            if not self.enabled:
                with self._source.open_input(key, readahead=readahead) as fh:
                    yield fh
                return
            data = self._cache[key] = self._source.read_bytes(key)
        yield pa.BufferReader(data)

    def read_bytes(self, key: str) -> bytes:
        data = self._cache.get(key)
        if data is None:
            data = self._source.read_bytes(key)
            if self.enabled:
                self._cache[key] = data
        return data

    def forget(self) -> None:
        self._cache.clear()


def one_cluster(p: P.NamespacePlan) -> bool:
    """A new namespace of one cluster, its whole source the sample: every
    row goes to cluster 0 and no centroids file is written (one cluster is
    always scanned; a build re-clusters such a namespace when it grows,
    docs/scale.md "One-cluster namespaces")."""
    return p.k == 1 and p.sample_fraction >= 1.0


def _new_centroids(ctx: P.Context, p: P.NamespacePlan) -> np.ndarray | None:
    """What a new namespace's rows are assigned to: nothing (sparse), the one
    cluster (:func:`one_cluster`: no training), or centroids trained on its
    sample."""
    if ctx.spec.record_layout == RecordLayout.SPARSE:
        return None
    if one_cluster(p):
        return np.zeros((1, int(ctx.spec.dimension or 0)), np.float32)
    return train(ctx, p.k, p.buckets, *[sample(ctx, c, p.sample_fraction) for c in p.chunks])


def centroids_file(ctx: P.Context, p: P.NamespacePlan, centroids: np.ndarray | None) -> str | None:
    """The centroids file of a new namespace, written; None without
    centroids or with one cluster (:func:`one_cluster`)."""
    if centroids is None or one_cluster(p):
        return None
    return write_centroids_file(ctx.store, ctx.spec, p.ns, ctx.owner, centroids)


def _pack_one(ctx: P.Context, p: P.NamespacePlan) -> PackResult:
    if p.existing:  # a load: the namespace's own centroids, no training
        centroids = existing_centroids(ctx, p.ns, p.centroids) if p.centroids else None
    else:
        centroids = _new_centroids(ctx, p)
    spill = _Spill(ctx, p.chunks[0])
    chunks = [_scan_chunk(ctx, c, p, spill, centroids) for c in p.chunks]
    spill.flush()
    if not sum(c.valid for c in chunks):  # the driver fails the import for it
        for part in range(p.partitions):
            _read_dir(ctx, P.keys_dir(ctx, "ids", p.ns, part))
            _read_dir(ctx, P.keys_dir(ctx, "vals", p.ns, part))
        return PackResult(p.ns, chunks, {}, None, [], None)
    d: Drops | None = None
    for part in range(p.partitions):
        got = dedup(ctx, p.ns, part)
        d = got if d is None else merge_drops(d, got)
    assert d is not None
    d = unique_drops(d)
    shown = [display_path(ctx.source, key) for key in p.files]
    if len(d.keys):
        if ctx.error_mode == "abort":
            for b in range(p.buckets):  # drop the scratch
                _read_dir(ctx, P.shuffle_dir(ctx, p.ns, b))
            return PackResult(p.ns, chunks, dup_counts(d), first_dup_message(shown, d), [], None)
        write_dup_rejects(ctx, p.ns, shown, d)
    drop_keys = np.sort(d.keys)
    buckets = [gather(ctx, p.ns, b, drop_keys, not p.existing) for b in range(p.buckets)]
    rel = p.centroids if p.existing else centroids_file(ctx, p, centroids)
    return PackResult(p.ns, chunks, dup_counts(d), None, buckets, rel)


def _pack_direct(ctx: P.Context, p: P.NamespacePlan) -> PackResult:
    """:func:`_pack_one` of a new namespace of one bucket and one dedup
    partition (every tiny namespace), its rows kept as scanned: no shuffle
    or key tables, one dedup and one gather over them. Same files, rejects
    and messages (the same steps on the same rows, in the same order)."""
    centroids = _new_centroids(ctx, p)
    got: list[Scanned] = []
    chunks = [_scan_chunk(ctx, c, p, None, centroids, got) for c in p.chunks]
    if not got:  # the driver fails the import for it
        return PackResult(p.ns, chunks, {}, None, [], None)
    tables = [g[0] for g in got]
    t = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    clusters = np.concatenate([g[1] for g in got])
    files = np.concatenate([g[2] for g in got])
    rows = np.concatenate([g[3] for g in got])
    key = dedup_key(files, rows)
    ids = t.column("id")
    digests = np.concatenate([_value_digests(ctx, g[0]) for g in got])
    d = unique_drops(
        _find_drops(
            pa.table({"id": ids, "key": key}),
            pa.table({"h1": digests[:, 0], "h2": digests[:, 1], "key": key, "id": ids}),
        )
    )
    if len(d.keys):
        shown = [display_path(ctx.source, k) for k in p.files]
        if ctx.error_mode == "abort":
            return PackResult(p.ns, chunks, dup_counts(d), first_dup_message(shown, d), [], None)
        write_dup_rejects(ctx, p.ns, shown, d)
    data = t.append_column("_file", pa.array(files)).append_column("_row", pa.array(rows))
    data = data.append_column("_cluster", pa.array(clusters.astype(np.int32)))
    CancelCheck(ctx.cancel_event)()
    bucket = write_bucket(ctx, p.ns, 0, data, np.sort(d.keys))
    return PackResult(p.ns, chunks, dup_counts(d), None, [bucket], centroids_file(ctx, p, centroids))


# Tiny namespaces (one cluster, at most BATCH_NS_BYTES of source each) are
# imported a batch at a time (up to BATCH_BYTES of source): read, validate
# and checked for duplicates together (docs/scale.md).
BATCH_NS_BYTES = 1024 * 1024
BATCH_BYTES = 32 * 1024 * 1024
WRITE_THREADS = 4  # a batch's small files are written by this many threads


def _batchable(ctx: P.Context, p: P.NamespacePlan) -> bool:
    return (
        ctx.spec.record_layout == RecordLayout.DENSE
        and not p.existing
        and p.k == 1
        and p.sample_fraction >= 1.0
        and p.buckets == 1
        and p.partitions == 1
        and p.nbytes <= BATCH_NS_BYTES
    )


def _read_chunk(ctx: P.Context, chunk: P.Chunk) -> pa.Table:
    """Every column of a chunk's row groups, in one call (a tiny file)."""
    got = decoded.rows(ctx, chunk)
    if got is not None:
        return got
    shown = display_path(ctx.source, chunk.key)
    with ctx.source.open_input(chunk.key, readahead=False) as fh:
        pf = open_parquet(fh, shown)
        return pf.read_row_groups(list(chunk.row_groups), use_threads=False)


def _pack_batch(ctx: P.Context, plans: Sequence[P.NamespacePlan]) -> list[PackResult]:
    """:func:`_pack_direct` of consecutive tiny dense namespaces, the
    per-record steps run once over all their rows: one read call per file,
    one validation of the files' rows concatenated, one duplicate check. When
    that is not the plain case (a file that does not read in one call,
    schemas that differ, a metadata column, any rejected record), the
    namespaces go through :func:`_pack_direct` one by one instead, which
    reads, validates and reports exactly as the unpacked path: nothing was
    written yet, so the results (files, rejects, messages, which error is
    raised first) are the same either way."""
    check = CancelCheck(ctx.cancel_event)
    dim = int(ctx.spec.dimension or 0)
    chunks = [c for p in plans for c in p.chunks]
    raw: list[pa.Table] = []
    try:
        for c in chunks:
            check()
            raw.append(_read_chunk(ctx, c))
        plain = "metadata" not in raw[0].column_names and all(
            t.schema.equals(raw[0].schema) for t in raw[1:]
        )
        vb = None
        if plain:
            joined = pa.concat_tables(raw).combine_chunks()
            vb = validate_batch(
                joined.to_batches()[0], ctx.spec.record_layout, ctx.spec.dimension, "", 0
            )
    except CancelledError:
        raise
    except Exception:  # the exact path reads again and raises what it raises
        vb = None
    if vb is None or vb.rejects or vb.table.num_rows != sum(c.num_rows for c in chunks):
        return [_pack_direct(ctx, p) for p in plans]
    check()
    table = vb.table
    files, rows = _file_rows(chunks)
    ns_rows = np.array([p.rows for p in plans], np.int64)
    ns_of = np.repeat(np.arange(len(plans)), ns_rows)
    # namespaces with a repeated id or vector (most have none): found at once
    ids = table.column("id")
    enc = pc.dictionary_encode(ids).combine_chunks()
    codes = ns_of * len(enc.dictionary) + enc.indices.to_numpy(zero_copy_only=False)
    x = dense_matrix(table.column("values"), dim)
    digests = digest_rows(x)
    both = np.column_stack([ns_of.astype(np.uint64), digests])
    suspects: set[int] = set()
    for keys in (codes, np.ascontiguousarray(both).view(np.dtype((np.void, 24))).ravel()):
        _, first_idx, counts_k = np.unique(keys, return_index=True, return_counts=True)
        suspects.update(ns_of[first_idx[counts_k > 1]].tolist())
    threads = ctx.store.io_threads(WRITE_THREADS)
    # one thread on local disk: the writes' system calls overlap the next
    # namespace's work without the hand-offs of several threads
    with ThreadPoolExecutor(threads, thread_name_prefix="vecstore-pack") as pool:
        return _write_batch(ctx, plans, chunks, table, files, rows, x, digests, suspects, pool)


def _write_batch(
    ctx: P.Context,
    plans: Sequence[P.NamespacePlan],
    chunks: Sequence[P.Chunk],
    table: pa.Table,
    files: np.ndarray,
    rows: np.ndarray,
    x: np.ndarray,
    digests: np.ndarray,
    suspects: set[int],
    pool: ThreadPoolExecutor,
) -> list[PackResult]:
    """The second half of :func:`_pack_batch`: per namespace its duplicates
    (``suspects`` only), then its files, written by ``pool``'s threads (small
    files: the time is the store's latency, which the threads overlap)."""
    check = CancelCheck(ctx.cancel_event)
    fields = {k: sorted(v) for k, v in meta_fields_of(table.schema).items()}
    ns_rows = np.array([p.rows for p in plans], np.int64)
    out: list[PackResult] = []
    writes: list[tuple[int, Future[BucketResult]]] = []
    at = 0
    ci = 0
    for j, p in enumerate(plans):
        check()
        n = int(ns_rows[j])
        mine = _all_valid(chunks[ci : ci + len(p.chunks)], fields)
        ci += len(p.chunks)
        t = table.slice(at, n)
        f, r = files[at : at + n], rows[at : at + n]
        drops = np.zeros(0, np.int64)
        dups: dict[str, int] = {}
        key = dedup_key(f, r)
        if j in suspects:
            h = digests[at : at + n]
            d = unique_drops(
                _find_drops(
                    pa.table({"id": t.column("id"), "key": key}),
                    pa.table({"h1": h[:, 0], "h2": h[:, 1], "key": key, "id": t.column("id")}),
                )
            )
            dups = dup_counts(d)
            if len(d.keys):
                shown = [display_path(ctx.source, k) for k in p.files]
                if ctx.error_mode == "abort":
                    out.append(PackResult(p.ns, mine, dups, first_dup_message(shown, d), [], None))
                    at += n
                    continue
                write_dup_rejects(ctx, p.ns, shown, d)
            drops = np.sort(d.keys)
        # write_bucket's steps without its sort: the rows are in (file, row)
        # order already (a plan's chunks are in file order) and form one
        # cluster (compute kernels on 20-row tables: ~0.2 ms per namespace)
        if len(drops):
            t = t.filter(pa.array(~np.isin(key, drops)))
        clusters = np.zeros(t.num_rows, np.int32)
        writes.append((len(out), pool.submit(_write_sorted, ctx, p.ns, 0, t, clusters, True, False)))
        out.append(PackResult(p.ns, mine, dups, None, [], None))  # its files: below
        at += n
    for i, fut in writes:  # in namespace order: the first failed write is raised
        out[i] = dataclasses.replace(out[i], buckets=[fut.result()])
    return out


# ------------------------------------------------------------- quality figures
def report_figures(
    store: Any,
    spec: IndexSpec,
    shipped: P.ShippedOr[tuple[list[str], dict[str, dict[str, Any]]]],
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """:func:`vecstore.quality.report_figures` of an import's namespaces and
    the balances the driver has in hand, shipped as one bytes object (10,000
    namespaces' balances were ~80,000 objects for the client to walk)."""
    namespaces, balances = P.unship(shipped)
    return quality.report_figures(store, spec, namespaces, balances=balances)
