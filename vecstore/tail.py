"""The freshness layer: the log entries a namespace's visible manifest has
not applied yet, folded in memory and searched exactly.

A :class:`TailState` is the fold of every entry after one manifest's
``applied_lsn``: id -> newest record (a row of an entry's upsert table) or a
tombstone (deleted), and ``hide_clusters`` when a ``delete_all`` came after
the manifest (every cluster row is then gone). Reads merge it with the
cluster results: a tail id *shadows* the cluster row of the same id
(overwritten or deleted records never come back), the tail's live records
are scored with the executor's metric and filter code, and the best of both
are kept.

Refreshing is incremental: only entries after the state's last LSN are read
(one listing). A state based on an older manifest is rebuilt from the log
when a newer manifest (a build) becomes visible; entries are cached by LSN
(:mod:`vecstore.wal`).

Scores are the executor's internal "higher is better" scores (cosine on
unit queries, ``2 x.q - |x|^2`` for euclidean, dot products plus the sparse
part for dotproduct), so tail and cluster hits compare directly.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore import manifests, wal
from vecstore.metadata import meta_fields_of
from vecstore.query import kernels
from vecstore.query.filters import Node, evaluate
from vecstore.query.segdata import DenseBlock, SparseBlock, build_sparse_block, make_dense_block
from vecstore.query.topk import NEG_INF
from vecstore.schemas import IndexSpec, Manifest
from vecstore.schemas.arrow import meta_column, segment_schema
from vecstore.schemas.metrics import Metric
from vecstore.segments import dense_matrix
from vecstore.settings import settings
from vecstore.storage import Store

REFRESH_TTL = 0.5  # seconds between listings of the log for writes of other processes
MERGE_FACTOR = 2  # chunks merge when the newer one is at least half the older
BATCH_ROWS = 1_000  # chunks this small (one request) merge as a run

SparseQuery = tuple[np.ndarray, np.ndarray]
T = TypeVar("T")


def tail_cap() -> int:
    """Records (upserts + deletes) a namespace may log beyond its visible manifest."""
    return settings().tail_cap


def conform_table(table: pa.Table, spec: IndexSpec) -> pa.Table:
    """``table`` with exactly the segment columns of ``spec`` (missing ones null)."""
    schema = segment_schema(spec.record_layout, spec.dimension, meta_fields_of(table.schema))
    cols = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(table.num_rows, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(cols, schema=schema)


@dataclass(eq=False)
class Chunk:
    """Upserted rows of one or more entries. ``gids``: each row's stable
    number (ascending; a row keeps it across merges); ``alive[i]``: row i is
    the newest version of its id."""

    table: pa.Table
    gids: np.ndarray
    alive: np.ndarray
    clusters: np.ndarray | None = None  # a load's cluster per row (-1: none)
    _dense: DenseBlock | None = None
    _sparse: SparseBlock | None = None
    _masks: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.gids)

    def dense(self, spec: IndexSpec) -> DenseBlock:
        if self._dense is None:
            m = dense_matrix(self.table.column("values"), int(spec.dimension or 0))
            self._dense = make_dense_block(np.ascontiguousarray(m), spec.metric)
        return self._dense

    def sparse(self) -> SparseBlock:
        if self._sparse is None:
            self._sparse = build_sparse_block(self.table.column("sparse_values"), self.n)
        return self._sparse

    def mask(self, node: Node, canon: str) -> np.ndarray:
        hit = self._masks.get(canon)
        if hit is None:
            names = set(self.table.column_names)

            def get(field_: str, kind: str) -> pa.Array | None:
                name = meta_column(field_, kind)
                if name not in names:
                    return None
                return self.table.column(name).combine_chunks()

            hit = evaluate(node, get, self.n)
            self._masks[canon] = hit
        return hit

    def ids_at(self, rows: Sequence[int]) -> list[str]:
        out: list[str] = self.table.column("id").take(pa.array(rows, pa.int64())).to_pylist()
        return out


@dataclass(frozen=True, slots=True)
class Record:
    """One tail record as a reader returns it."""

    id: str
    values: list[float] | None
    sparse_values: dict[str, list[Any]] | None
    metadata: dict[str, Any] | None


class TailState:
    """The fold of the log entries after ``applied_lsn`` (see the module doc).

    ``where`` maps every id the tail touched to the stable number (gid) of
    its newest row, or None when its newest change is a delete. Chunks merge
    as a binary counter (O(log n) merges per row, few chunks to scan); a
    merge moves Arrow buffers only, ``where`` is untouched."""

    def __init__(self, spec: IndexSpec, applied_lsn: int, base_version: int | None) -> None:
        self.spec = spec
        self.applied_lsn = applied_lsn
        self.base_version = base_version
        self.last_lsn = applied_lsn
        self.chunks: list[Chunk] = []
        self._firsts: list[int] = []  # first gid of each chunk
        self.where: dict[str, int | None] = {}
        self.next_gid = 0
        self.hide_clusters = False
        self.size = 0  # records logged after applied_lsn (upserts + deleted ids)
        self.entries = 0
        self.oldest_at: float | None = None
        self.memo: dict[Any, np.ndarray] = {}
        # centroids files that batch loads assigned their rows against
        self.assigned_with: set[str | None] = set()
        self.lock = threading.RLock()

    # ---------------------------------------------------------------- fold
    def apply_all(self, entries: Sequence[wal.Entry]) -> None:
        """Fold several entries; their rows are merged into one chunk at the end
        (one concatenation instead of a merge cascade)."""
        with self.lock:
            for e in entries:
                self.apply(e, merge=False)
            self._merge_small()

    def apply(self, entry: wal.Entry, *, merge: bool = True) -> None:
        with self.lock:
            if entry.lsn <= self.last_lsn:
                return
            self.last_lsn = entry.lsn
            self.size += entry.size
            self.entries += 1
            if self.oldest_at is None:
                self.oldest_at = entry.created_at
            if entry.delete_all:
                self.chunks, self._firsts, self.where = [], [], {}
                self.hide_clusters = True
            where = self.where
            for id_ in entry.deletes:
                self._kill(where.get(id_))
                where[id_] = None
            n = entry.upserts.num_rows
            if n:
                table = conform_table(entry.upserts, self.spec)
                first = self.next_gid
                self.next_gid += n
                chunk = Chunk(
                    table,
                    np.arange(first, first + n, dtype=np.int64),
                    np.ones(n, bool),
                    None if entry.clusters is None else entry.clusters.astype(np.int32),
                )
                if entry.clusters is not None:
                    self.assigned_with.add(entry.centroids)
                self.chunks.append(chunk)
                self._firsts.append(first)
                for gid, id_ in enumerate(table.column("id").to_pylist(), first):
                    self._kill(where.get(id_))
                    where[id_] = gid
                if merge:
                    self._merge_small()

    def _locate(self, gid: int) -> tuple[Chunk, int]:
        c = self.chunks[bisect.bisect_right(self._firsts, gid) - 1]
        return c, int(np.searchsorted(c.gids, gid))

    def _kill(self, gid: int | None) -> None:
        if gid is not None:
            c, row = self._locate(gid)
            c.alive[row] = False

    def _merge_small(self) -> None:
        chunks = self.chunks
        # a run of small chunks (entries folded together): one merge
        run = len(chunks)
        while run > 0 and chunks[run - 1].n <= BATCH_ROWS:
            run -= 1
        if len(chunks) - run >= 2:
            chunks[run:] = [self._merge(chunks[run:])]
        while len(chunks) >= 2 and chunks[-2].n <= MERGE_FACTOR * chunks[-1].n:
            b = chunks.pop()
            a = chunks.pop()
            chunks.append(self._merge([a, b]))
        self._firsts = [int(c.gids[0]) if c.n else 0 for c in chunks]
        # an empty chunk (every row dead) must not take part in locating
        if any(c.n == 0 for c in chunks):
            self.chunks = [c for c in chunks if c.n]
            self._firsts = [int(c.gids[0]) for c in self.chunks]

    def _merge(self, parts: Sequence[Chunk]) -> Chunk:
        tables = [c.table if c.alive.all() else c.table.filter(pa.array(c.alive)) for c in parts]
        merged = pa.concat_tables(tables, promote_options="permissive")
        merged = conform_table(merged, self.spec).combine_chunks()
        gids = np.concatenate([c.gids[c.alive] for c in parts])
        clusters = None
        if any(c.clusters is not None for c in parts):
            clusters = np.concatenate(
                [
                    (c.clusters if c.clusters is not None else np.full(c.n, -1, np.int32))[c.alive]
                    for c in parts
                ]
            )
        return Chunk(merged, gids, np.ones(len(gids), bool), clusters)

    # --------------------------------------------------------------- reads
    @property
    def live_count(self) -> int:
        return sum(int(c.alive.sum()) for c in self.chunks)

    def shadows(self, id_: str) -> bool:
        """Whether the cluster row of ``id_`` (if any) is hidden by the tail."""
        return self.hide_clusters or id_ in self.where

    def live_ids(self, prefix: str = "") -> list[str]:
        """Sorted ids of the live tail records starting with ``prefix``."""
        return sorted(i for i, w in self.where.items() if w is not None and i.startswith(prefix))

    def lookup(self, ids: Iterable[str]) -> dict[str, Record | None]:
        """Tail answers for ``ids``: a Record, None (deleted in the tail), or
        absent from the result (ask the clusters, unless ``hide_clusters``)."""
        out: dict[str, Record | None] = {}
        with self.lock:
            for id_ in ids:
                if id_ not in self.where:
                    continue
                gid = self.where[id_]
                out[id_] = None if gid is None else self._record(*self._locate(gid))
        return out

    def rows(self, ids: Iterable[str]) -> pa.Table | None:
        """The segment rows of the live tail records among ``ids``."""
        parts = []
        with self.lock:
            for id_ in ids:
                gid = self.where.get(id_)
                if gid is not None:
                    c, row = self._locate(gid)
                    parts.append(c.table.slice(row, 1))
        if not parts:
            return None
        return pa.concat_tables(parts, promote_options="permissive")

    def _record(self, chunk: Chunk, row: int) -> Record:
        t = chunk.table.slice(row, 1)
        kind = self.spec.record_layout
        values = t.column("values")[0].as_py() if kind != "sparse" else None
        sparse = t.column("sparse_values")[0].as_py() if kind != "dense" else None
        meta = t.column("metadata")[0].as_py()
        rid = str(t.column("id")[0].as_py())
        return Record(rid, values, sparse, None if meta is None else json.loads(meta))

    def matching(self, node: Node | None, canon: str = "") -> pa.Table | None:
        """Live tail rows matching a filter (all live rows for None)."""
        parts = []
        with self.lock:
            for c in self.chunks:
                keep = c.alive.copy()
                if node is not None:
                    keep &= c.mask(node, canon or repr(node))
                if keep.any():
                    parts.append(c.table.filter(pa.array(keep)))
        if not parts:
            return None
        return pa.concat_tables(parts, promote_options="permissive")

    def live_with_clusters(self) -> tuple[pa.Table | None, np.ndarray | None]:
        """Every live tail row and the cluster a batch load assigned it to
        (-1: none), or None for the clusters when no load is in the tail."""
        parts: list[pa.Table] = []
        cl: list[np.ndarray] = []
        with self.lock:
            for c in self.chunks:
                if not c.alive.any():
                    continue
                every = bool(c.alive.all())  # (a load's chunk usually: no copy)
                parts.append(c.table if every else c.table.filter(pa.array(c.alive)))
                full = c.clusters if c.clusters is not None else np.full(c.n, -1, np.int32)
                cl.append(full if every else full[c.alive])
            assigned = any(c.clusters is not None for c in self.chunks)
        if not parts:
            return None, None
        table = pa.concat_tables(parts, promote_options="permissive")
        return table, (np.concatenate(cl) if assigned else None)

    def search(
        self,
        dense: np.ndarray | None,
        sparse: SparseQuery | None,
        top_k: int,
        node: Node | None = None,
        canon: str = "",
    ) -> tuple[list[str], np.ndarray]:
        """Exact top-k of the live tail records: (ids, internal scores), best first.

        ``dense``: a prepared query (:func:`vecstore.query.executor.prepare_dense`)
        or None for a sparse index; ``sparse``: (sorted int64 indices,
        float32 values) or None."""
        found: list[tuple[np.ndarray, Chunk, np.ndarray]] = []
        sparse_only = self.spec.record_layout == "sparse"
        with self.lock:
            for c in self.chunks:
                keep = c.alive
                if node is not None:
                    keep = keep & c.mask(node, canon or repr(node))
                if not keep.any():
                    continue
                if sparse_only:
                    if sparse is None:
                        continue
                    s = c.sparse().scores(sparse[0], sparse[1])
                    keep = keep & (s != 0)
                else:
                    if dense is None:
                        continue
                    s = _dense_scores(c.dense(self.spec), dense, Metric(self.spec.metric))
                    if sparse is not None and len(sparse[0]):
                        s = s + c.sparse().scores(sparse[0], sparse[1])
                rows = np.flatnonzero(keep)
                if len(rows) > top_k:  # the chunk's own top k first: ids only for those
                    part = s[rows]
                    # every row tied with the k-th best too: ties are broken by id below
                    kth = np.partition(part, len(part) - top_k)[len(part) - top_k]
                    rows = rows[part >= kth]
                if len(rows):
                    found.append((s[rows].astype(np.float32, copy=False), c, rows))
            cands: list[tuple[float, str]] = []
            for scores, c, rows in found:
                cands.extend(zip(scores.tolist(), c.ids_at(rows.tolist()), strict=True))
        cands.sort(key=lambda p: (-p[0], p[1]))
        best = cands[:top_k]
        return [i for _, i in best], np.asarray([s for s, _ in best], dtype=np.float32)


def _dense_scores(block: DenseBlock, q: np.ndarray, metric: Metric) -> np.ndarray:
    """The executor's internal score of every row (the metric's own rule)."""
    s = np.empty(len(block.matrix), dtype=np.float32)
    kernels.matvec_into(block.matrix, np.asarray(q, dtype=np.float32).reshape(-1), s)
    return metric.finish_scores(s, block.inv_norm, block.sq_norm)


def merge_hits(
    tail: TailState,
    cluster_ids: Sequence[str],
    cluster_scores: Sequence[float] | np.ndarray,
    tail_ids: Sequence[str],
    tail_scores: Sequence[float] | np.ndarray,
    top_k: int,
) -> list[tuple[str, float]]:
    """Merge cluster and tail hits (internal scores): cluster hits the tail
    shadows are dropped, then the best ``top_k`` (ties: by id). Ask the
    clusters for ``top_k + overfetch(tail, top_k)`` hits so enough remain."""
    out: list[tuple[str, float]] = []
    if not tail.hide_clusters:
        out.extend(
            (i, float(s))
            for i, s in zip(cluster_ids, cluster_scores, strict=True)
            if i not in tail.where
        )
    out.extend((i, float(s)) for i, s in zip(tail_ids, tail_scores, strict=True))
    out = [p for p in out if p[1] > float(NEG_INF)]
    out.sort(key=lambda p: (-p[1], p[0]))
    return out[:top_k]


def overfetch(tail: TailState, top_k: int) -> int:
    """Extra cluster hits to ask for so that ``top_k`` survive shadowing:
    every shadowed id could be among them (bounded by the shadow count)."""
    return 0 if tail.hide_clusters else len(tail.where)


def shadowed_refs(state: TailState, id_files: Sequence[tuple[pa.Array, np.ndarray]]) -> np.ndarray:
    """The refs of the cluster rows the tail hides, vectorised (no per-id
    Python): ``id_files`` are (sorted ids, refs) pairs of the pinned
    version's id index (``IdFile.ids`` / ``IdFile.refs``). All refs after a
    ``delete_all``. Cached on the state per LSN: the executor blanks these
    rows instead of over-fetching, and stats subtract their count."""
    key = ("shadowed", state.last_lsn, tuple(id(f[0]) for f in id_files))
    with state.lock:
        hit = state.memo.get(key)
        if hit is not None:
            return hit
        parts = []
        touched = pa.array(list(state.where), pa.string()) if state.where else None
        for ids, refs in id_files:
            if state.hide_clusters:
                parts.append(np.asarray(refs, dtype=np.int64))
            elif touched is not None and len(ids):
                mask = pc.is_in(ids, value_set=touched).to_numpy(zero_copy_only=False)
                parts.append(np.asarray(refs, dtype=np.int64)[np.asarray(mask, dtype=bool)])
        out = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        state.memo = {key: out}
        return out


def live_count(state: TailState, cluster_records: int, shadowed: int) -> int:
    """Live records of the namespace: the clusters' minus the rows the tail
    hides (``len(shadowed_refs(...))``), plus the tail's live records."""
    base = 0 if state.hide_clusters else cluster_records - shadowed
    return base + state.live_count


def merged_fetch(
    state: TailState,
    ids: Sequence[str],
    cluster_fetch: Callable[[list[str]], Mapping[str, T]],
) -> dict[str, Record | T]:
    """``fetch`` over tail and clusters: tail answers first (a tail delete
    hides the cluster row); ``cluster_fetch`` is asked only for the rest."""
    known = state.lookup(ids)
    out: dict[str, Record | T] = {i: rec for i, rec in known.items() if rec is not None}
    rest = [i for i in ids if i not in known]
    if rest and not state.hide_clusters:
        out.update(cluster_fetch(rest))
    return {i: out[i] for i in ids if i in out}


# ----------------------------------------------------------------- reader


class TailReader:
    """The tails of one index's namespaces in this process (thread-safe).

    ``get(namespace, manifest)`` returns the state for that manifest (its
    ``applied_lsn``), refreshed: always when this process appended past it
    (read-your-writes), else at most every ``ttl`` seconds (writes of other
    processes appear within ``ttl`` plus one listing)."""

    def __init__(self, store: Store, spec: IndexSpec, *, ttl: float = REFRESH_TTL) -> None:
        self.store = store
        self.spec = spec
        self.ttl = ttl
        self._states: dict[str, TailState] = {}
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()

    def get(
        self, namespace: str, manifest: Manifest | None = None, *, force: bool = False
    ) -> TailState:
        if manifest is None:
            manifest = manifests.load_namespace(self.store, self.spec.name, namespace)
        applied = (manifest.applied_lsn or 0) if manifest is not None else 0
        version = manifest.version if manifest is not None else None
        with self._lock:
            state = self._states.get(namespace)
            if state is None or state.applied_lsn != applied:
                state = TailState(self.spec, applied, version)
                self._states[namespace] = state
                force = True
            now = time.monotonic()
            stale = now - self._checked.get(namespace, -1e18) >= self.ttl
            mine = wal.last_written(self.store, self.spec.name, namespace)
            if force or stale or mine > state.last_lsn:
                self._checked[namespace] = now
                self._refresh(namespace, state)
            return state

    def _refresh(self, namespace: str, state: TailState) -> None:
        state.apply_all(wal.read_after(self.store, self.spec.name, namespace, state.last_lsn))

    def drop(self, namespace: str) -> None:
        with self._lock:
            self._states.pop(namespace, None)
            self._checked.pop(namespace, None)


_readers: dict[tuple[str, str], TailReader] = {}
_readers_lock = threading.Lock()


def tail_reader(store: Store, spec: IndexSpec) -> TailReader:
    """The process-wide TailReader of an index (shared by writers and readers)."""
    key = (store.uri, spec.name)
    with _readers_lock:
        r = _readers.get(key)
        if r is None or r.spec != spec:
            r = _readers[key] = TailReader(store, spec)
        return r
