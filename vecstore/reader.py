"""The query reader: query, query_batch, fetch and list over segment files.

``Reader(store, spec)`` is what ``Index.query / fetch / list /
list_paginated`` delegate to. It is thread-safe: many threads may query one
Reader while another process or thread commits new namespace versions.

- Planning (which version, which clusters): :mod:`vecstore.query.planner`.
- Scanning and scoring: :mod:`vecstore.query.executor`.
- Filters: :mod:`vecstore.query.filters`.
- Caches (bytes-bounded LRU in memory; a disk cache for remote stores):
  :mod:`vecstore.query.cache`.

Every call pins one namespace version and reads only its (immutable) files.
If a file of that version vanished (garbage-collected after a newer version
or a delete landed), the manifest is re-read and the call retried once.

A namespace that does not exist (never created, or deleted) answers queries
with no matches, ``fetch`` with no vectors and ``list`` with no ids, like
Pinecone. See docs/query.md for every decision.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from vecstore import pagination, wal
from vecstore.errors import InvalidArgumentError, NotFoundError
from vecstore.query import args
from vecstore.query.args import DEFAULT_TOP_K, DenseVector, SparseVectorArg
from vecstore.query.cache import ByteLRU, DiskCache
from vecstore.query.executor import (
    EMPTY_HITS,
    Blank,
    Executor,
    Filter,
    Hits,
    SparseQuery,
    prepare_dense,
)
from vecstore.query.filters import canonical, may_match, parse_filter
from vecstore.query.idindex import load_id_index
from vecstore.query.planner import ManifestTracker, NamespaceState
from vecstore.query.rows import ids_of, materialize
from vecstore.query.segdata import SegmentSource
from vecstore.query.topk import NEG_INF
from vecstore.refs import CLUSTER_ROW
from vecstore.schemas import (
    FetchResponse,
    IndexSpec,
    ListItem,
    ListResponse,
    Pagination,
    QueryResponse,
    RecordLayout,
    ScoredVector,
    SparseValues,
    Usage,
    Vector,
)
from vecstore.segments import read_deleted
from vecstore.settings import external, settings
from vecstore.storage import Store
from vecstore.tail import (
    Record,
    TailState,
    live_count,
    merge_hits,
    merged_fetch,
    shadowed_refs,
    tail_reader,
)

T = TypeVar("T")


def _default_cache_dir() -> str:
    base = external("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vecstore", "segments")


class Reader:
    """Reads one index: ``query``, ``query_batch``, ``fetch``, ``list``."""

    def __init__(
        self,
        store: Store,
        spec: IndexSpec,
        *,
        cache_bytes: int | None = None,
        cache_dir: str | None = None,
        manifest_ttl: float | None = None,
        threaded_matvec: bool = False,
        threads: int | None = None,
    ) -> None:
        self.store = store
        self.spec = spec
        if cache_bytes is None:
            cache_bytes = settings().query_cache_bytes
        self.cache = ByteLRU(cache_bytes)
        disk = None
        if store.is_remote:
            disk = DiskCache(cache_dir or settings().query_cache_dir or _default_cache_dir())
        self.source = SegmentSource(store, self.cache, disk)
        self.tracker = ManifestTracker(store, spec.name, manifest_ttl)
        self._tails = tail_reader(store, spec)  # shared with this process's writers
        self._shadows: dict[str, tuple[tuple[int, int, int], dict[int, np.ndarray], int]] = {}
        self._deleted_rows: dict[str, tuple[int, Blank | None]] = {}  # ns -> (version, rows)
        self.executor = Executor(
            self.source,
            spec.metric,
            spec.dimension,
            threaded_matvec=threaded_matvec,
            threads=threads,
        )

    def __repr__(self) -> str:
        return f"Reader({self.store.uri!r}, {self.spec.name!r})"

    # ------------------------------------------------------------- pinning
    def _pinned(self, namespace: str, fn: Callable[[NamespaceState | None], T]) -> T:
        """Run ``fn`` on the current version; once more on a fresh one if a file vanished."""
        try:
            return fn(self._state(namespace))
        except NotFoundError:
            self.tracker.invalidate(namespace)
        return fn(self._state(namespace))

    def _state(self, namespace: str) -> NamespaceState | None:
        state = self.tracker.get(namespace)
        if state is None and wal.last_written(self.store, self.spec.name, namespace):
            # this process wrote there (the namespace exists): do not wait for the ttl
            self.tracker.invalidate(namespace)
            state = self.tracker.get(namespace)
        return state

    def namespace_state(self, namespace: str | None = None) -> NamespaceState | None:
        """The version queries of ``namespace`` use now (None: no such namespace)."""
        return self._state(args.namespace(namespace))

    # ---------------------------------------------------------------- tail
    def tail(self, namespace: str, state: NamespaceState) -> TailState | None:
        """The write tail of the pinned version (None: nothing written after it)."""
        t = self._tails.get(namespace, state.manifest)
        return t if t.hide_clusters or t.where else None

    def _shadow(self, ns: str, state: NamespaceState, tail: TailState) -> tuple[Blank, int]:
        """Cluster rows the tail hides, by cluster position (for the executor to
        blank), and their count. Vectorised, remembered per (version, LSN)."""
        key = (state.version, tail.last_lsn, id(tail))
        hit = self._shadows.get(ns)
        if hit is not None and hit[0] == key:
            return hit[1], hit[2]
        blank: dict[int, np.ndarray] = {}
        count = 0
        if state.manifest.id_files:
            files = load_id_index(self.source, state).files
            refs = shadowed_refs(tail, [(f.ids, f.refs) for f in files])
            count = len(refs)
            if count:
                pos, rows = CLUSTER_ROW.split(refs)  # refs are sorted: by position, then row
                cut = np.flatnonzero(np.diff(pos)) + 1
                for p, r in zip(pos[np.r_[0, cut]].tolist(), np.split(rows, cut), strict=True):
                    blank[int(p)] = np.asarray(r, dtype=np.int64)
        self._shadows[ns] = (key, blank, count)
        return blank, count

    def deleted_rows(self, state: NamespaceState) -> Blank | None:
        """Rows of clusters with delta segments that are no longer live, by
        cluster position (format 3); read once per version."""
        m = state.manifest
        hit = self._deleted_rows.get(m.namespace)
        if hit is not None and hit[0] == m.version:
            return hit[1]
        rows: Blank | None = {
            pos: read_deleted(self.store, f"{state.prefix}/{c.deleted}").astype(np.int64)
            for pos, c in enumerate(m.clusters)
            if c.deleted
        } or None
        self._deleted_rows[m.namespace] = (m.version, rows)
        return rows

    def _blank(self, state: NamespaceState, shadow: Blank | None = None) -> Blank | None:
        """Rows the executor must never return: deleted rows of delta'd
        clusters plus those the tail shadows."""
        deleted = self.deleted_rows(state)
        if not deleted:
            return shadow
        if not shadow:
            return deleted
        out = dict(shadow)
        for pos, rows in deleted.items():
            have = out.get(pos)
            out[pos] = rows if have is None else np.union1d(have, rows)
        return out

    def record_count(self, namespace: str | None = None) -> int | None:
        """Live records of a namespace (clusters minus shadowed rows plus the
        tail's live records); None if the namespace does not exist."""
        ns = args.namespace(namespace)

        def run(state: NamespaceState | None) -> int | None:
            if state is None:
                return None
            tail = self.tail(ns, state)
            if tail is None:
                return state.manifest.record_count
            shadowed = 0 if tail.hide_clusters else self._shadow(ns, state, tail)[1]
            return live_count(tail, state.manifest.record_count, shadowed)

        return self._pinned(ns, run)

    def count(
        self,
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - Pinecone's name
    ) -> int | None:
        """Live records of a namespace that match ``filter`` (all live records
        for None); None if the namespace does not exist. Clusters whose
        metadata statistics prove they hold no match are skipped, the others
        are masked with the query path's filter evaluation; rows the write
        tail overwrote or deleted are not counted, its live matches are."""
        node = parse_filter(filter)
        if node is None:
            return self.record_count(namespace)
        ns = args.namespace(namespace)
        canon = canonical(node)

        def run(state: NamespaceState | None) -> int | None:
            if state is None:
                return None
            tail = self.tail(ns, state)
            total = 0
            if tail is None or not tail.hide_clusters:
                shadow = self._shadow(ns, state, tail)[0] if tail is not None else None
                blank = self._blank(state, shadow) or {}  # + deleted rows of delta'd clusters
                for cluster in state.manifest.clusters:
                    if not cluster.row_count or not may_match(
                        node, cluster.stats, cluster.row_count
                    ):
                        continue
                    pos = state.position_of[cluster.id]
                    mask = self.source.mask(
                        state.segment_keys[pos], node, canon, cluster.row_count, state.meta_columns
                    )
                    hidden = blank.get(pos)
                    total += int(mask.sum()) - (
                        int(mask[hidden].sum()) if hidden is not None else 0
                    )
            if tail is not None:
                rows = tail.matching(node, canon)
                total += 0 if rows is None else rows.num_rows
            return total

        return self._pinned(ns, run)

    # --------------------------------------------------------------- query
    def query(
        self,
        *,
        top_k: int = DEFAULT_TOP_K,
        vector: DenseVector | None = None,
        id: str | None = None,  # noqa: A002 - Pinecone's name
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - Pinecone's name
        include_values: bool = False,
        include_metadata: bool = False,
        sparse_vector: SparseVectorArg | None = None,
        nprobe: int | None = None,
    ) -> QueryResponse:
        """Nearest records of ``vector`` / ``sparse_vector`` / the record ``id``."""
        ns = args.namespace(namespace)
        k = args.top_k(top_k)
        probes = args.nprobe(nprobe)
        flt = self._filter(filter)
        dense, sparse = self._query_vectors(vector, sparse_vector, id)
        plain = dense is not None and sparse is None and flt is None

        def run(state: NamespaceState | None) -> QueryResponse:
            if state is None:
                return QueryResponse(matches=[], namespace=ns)
            tail = self.tail(ns, state)
            if tail is not None:
                return self._query_tail(
                    ns,
                    state,
                    tail,
                    dense,
                    sparse,
                    id,
                    k,
                    flt,
                    probes,
                    include_values,
                    include_metadata,
                )
            if plain and state.probe_centroids is not None:
                assert dense is not None
                return self._plain(state, dense, k, probes, include_values, include_metadata, ns)
            d, s = dense, sparse
            if id is not None:
                found = self._vectors_of(state, id)
                if found is None:
                    return QueryResponse(matches=[], namespace=ns, usage=self._usage(state))
                d, s = found
            hits = self._search(state, d, s, k, flt, probes, self._blank(state))
            qsq = (
                float(np.dot(d, d)) if d is not None and self.spec.metric.needs_query_norm else 0.0
            )
            scores = self._public_scores(hits.scores, qsq)
            matches = self._matches(state, hits.refs, scores, include_values, include_metadata)
            return QueryResponse(matches=matches, namespace=ns, usage=self._usage(state))

        return self._pinned(ns, run)

    def query_batch(
        self,
        vectors: np.ndarray | Sequence[Sequence[float]],
        top_k: int = DEFAULT_TOP_K,
        namespace: str | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002
        nprobe: int | None = None,
    ) -> list[list[tuple[str, float]]]:
        """Top-k ``(id, score)`` of each row of a (q, d) array of dense queries.

        The batch shares segment reads and groups its work by cluster (one
        matrix product per cluster): use it for throughput."""
        if self.spec.record_layout == RecordLayout.SPARSE:
            raise InvalidArgumentError("query_batch takes dense vectors; this index is sparse")
        ns = args.namespace(namespace)
        k = args.top_k(top_k)
        probes = args.nprobe(nprobe)
        flt = self._filter(filter)
        queries = args.dense_batch(vectors, self.spec.dimension)

        def run(state: NamespaceState | None) -> list[list[tuple[str, float]]]:
            if state is None:
                return [[] for _ in range(len(queries))]
            tail = self.tail(ns, state)
            if tail is not None:  # logged writes to merge: one query at a time
                return [
                    [
                        (m.id, m.score)
                        for m in self._query_tail(
                            ns, state, tail, q, None, None, k, flt, probes, False, False
                        ).matches
                    ]
                    for q in queries
                ]
            prepared = prepare_dense(queries, self.spec.metric)
            blank = self._blank(state)
            all_hits = self.executor.dense(state, prepared, k, flt, probes, blank=blank)
            if blank is not None:
                all_hits = [Hits(h.scores[h.scores > NEG_INF], h.refs[h.scores > NEG_INF])
                            for h in all_hits]
            qsq = np.einsum("ij,ij->i", queries, queries)
            refs = np.concatenate([h.refs for h in all_hits]) if all_hits else np.zeros(0, np.int64)
            ids = materialize(
                self.source,
                state,
                refs,
                dense=True,
                values=False,
                sparse=False,
                metadata=False,
                dimension=self.executor.dimension,
            ).ids
            out: list[list[tuple[str, float]]] = []
            at = 0
            for qi, h in enumerate(all_hits):
                scores = self._public_scores(h.scores, float(qsq[qi]))
                out.append(list(zip(ids[at : at + len(h.refs)], scores, strict=True)))
                at += len(h.refs)
            return out

        return self._pinned(ns, run)

    def _plain(
        self,
        state: NamespaceState,
        dense: np.ndarray,
        k: int,
        probes: int | None,
        include_values: bool,
        include_metadata: bool,
        ns: str,
    ) -> QueryResponse:
        """One dense query without filter or sparse part: the lean path."""
        scores, refs = self.executor.single_lists(state, dense, k, probes, self._blank(state))
        if self.spec.metric.needs_query_norm and scores:
            scores = self.spec.metric.public_score_list(scores, float(np.dot(dense, dense)))
        if include_values or include_metadata:
            refs_arr = np.asarray(refs, dtype=np.int64)
            matches = self._matches(state, refs_arr, scores, include_values, include_metadata)
        else:
            # validated construction of two plain fields is the cheapest way
            # to build a pydantic model (~1 us; model_construct ~3 us)
            ids = ids_of(self.source, state, refs)
            matches = [ScoredVector(id=i, score=s) for i, s in zip(ids, scores, strict=True)]
        return QueryResponse(matches=matches, namespace=ns, usage=self._usage(state))

    # ------------------------------------------------------------ helpers
    @staticmethod
    def _filter(spec: Any) -> Filter | None:
        node = parse_filter(spec)
        return None if node is None else Filter(node, canonical(node))

    def _query_vectors(
        self, vector: Any, sparse_vector: Any, id_: Any
    ) -> tuple[np.ndarray | None, SparseQuery | None]:
        layout = self.spec.record_layout
        if id_ is not None:
            if vector is not None or sparse_vector is not None:
                raise InvalidArgumentError(
                    "Provide either id or vector / sparse_vector to query, not both"
                )
            if not isinstance(id_, str) or not id_:
                raise InvalidArgumentError(f"Invalid id {id_!r}: expected a non-empty string")
            return None, None
        if vector is None and sparse_vector is None:
            raise InvalidArgumentError("A query needs a vector, a sparse_vector or an id")
        if layout == RecordLayout.SPARSE:
            if vector is not None and len(vector):
                raise InvalidArgumentError(
                    f'Index "{self.spec.name}" is sparse: query it with sparse_vector, not vector'
                )
            if sparse_vector is None:
                raise InvalidArgumentError("A sparse index is queried with sparse_vector")
            return None, args.sparse_vector(sparse_vector)
        if vector is None:
            raise InvalidArgumentError(
                f'Index "{self.spec.name}" is dense: a query needs a dense vector '
                "(sparse_vector may be added on a dotproduct index)"
            )
        dense = args.dense_vector(vector, self.spec.dimension)
        if sparse_vector is not None and layout != RecordLayout.HYBRID:
            raise InvalidArgumentError(
                f'sparse_vector needs an index with metric dotproduct; index "{self.spec.name}" '
                f"uses {self.spec.metric}"
            )
        return dense, None if sparse_vector is None else args.sparse_vector(sparse_vector)

    def _vectors_of(
        self, state: NamespaceState, id_: str
    ) -> tuple[np.ndarray | None, SparseQuery | None] | None:
        ref = load_id_index(self.source, state).lookup([id_]).get(id_)
        if ref is None:
            return None
        refs = np.array([ref], dtype=np.int64)
        layout = self.spec.record_layout
        rows = materialize(
            self.source,
            state,
            refs,
            dense=layout != RecordLayout.SPARSE,
            values=layout != RecordLayout.SPARSE,
            sparse=layout != RecordLayout.DENSE,
            metadata=False,
            dimension=self.executor.dimension,
        )
        dense = None if rows.values[0] is None else np.asarray(rows.values[0], dtype=np.float32)
        sv = rows.sparse[0]
        sparse = None
        if sv is not None:
            sparse = (np.asarray(sv.indices, np.int64), np.asarray(sv.values, np.float32))
        if layout == RecordLayout.SPARSE and sparse is None:
            return None
        return dense, sparse

    def _search(
        self,
        state: NamespaceState,
        dense: np.ndarray | None,
        sparse: SparseQuery | None,
        k: int,
        flt: Filter | None,
        probes: int | None,
        blank: Blank | None = None,
    ) -> Hits:
        if self.spec.record_layout == RecordLayout.SPARSE:
            if sparse is None:
                return EMPTY_HITS
            return self.executor.sparse_only(state, sparse, k, flt, blank)
        if dense is None:
            return EMPTY_HITS
        prepared = prepare_dense(dense.reshape(1, -1), self.spec.metric)
        parts = [sparse] if sparse is not None and len(sparse[0]) else None
        hits = self.executor.dense(state, prepared, k, flt, probes, parts, blank)[0]
        if blank is not None:
            keep = hits.scores > float(NEG_INF)
            hits = Hits(hits.scores[keep], hits.refs[keep])
        return hits

    def _query_tail(
        self,
        ns: str,
        state: NamespaceState,
        tail: TailState,
        dense: np.ndarray | None,
        sparse: SparseQuery | None,
        id_: str | None,
        k: int,
        flt: Filter | None,
        probes: int | None,
        include_values: bool,
        include_metadata: bool,
    ) -> QueryResponse:
        """A query over clusters and the write tail: the clusters are searched
        with the rows the tail shadows blanked, the tail exactly, and the two
        merged on the executor's internal scores."""
        layout = self.spec.record_layout
        usage = self._usage(state)
        d, s = dense, sparse
        if id_ is not None:
            got = tail.lookup([id_])
            if id_ in got:
                vecs = _record_vectors(got[id_], layout)
            elif tail.hide_clusters:
                vecs = None
            else:
                vecs = self._vectors_of(state, id_)
            if vecs is None:
                return QueryResponse(matches=[], namespace=ns, usage=usage)
            d, s = vecs
        hits = EMPTY_HITS
        cluster_ids: list[str] = []
        if not tail.hide_clusters and state.k:
            blank, _ = self._shadow(ns, state, tail)
            hits = self._search(state, d, s, k, flt, probes, self._blank(state, blank))
            keep = hits.scores > float(NEG_INF)
            hits = Hits(hits.scores[keep], hits.refs[keep])
            cluster_ids = ids_of(self.source, state, hits.refs.tolist())
        prepared = None
        if d is not None and layout != RecordLayout.SPARSE:
            prepared = prepare_dense(d.reshape(1, -1), self.spec.metric)[0]
        tail_sparse = s if s is not None and len(s[0]) else None
        if (layout == RecordLayout.SPARSE and tail_sparse is None) or (
            layout != RecordLayout.SPARSE and prepared is None
        ):
            t_ids: list[str] = []
            t_scores = np.zeros(0, np.float32)
        else:
            t_ids, t_scores = tail.search(
                prepared,
                tail_sparse,
                k,
                flt.node if flt else None,
                flt.canon if flt else "",
            )
        best = merge_hits(tail, cluster_ids, hits.scores, t_ids, t_scores, k)
        qsq = float(np.dot(d, d)) if d is not None and self.spec.metric.needs_query_norm else 0.0
        scores = self._public_scores(np.asarray([p[1] for p in best], np.float32), qsq)
        ref_of = dict(zip(cluster_ids, hits.refs.tolist(), strict=True))
        tail_set = set(t_ids)
        from_clusters = [i for i, _ in best if i not in tail_set]
        c_scores = [sc for (i, _), sc in zip(best, scores, strict=True) if i not in tail_set]
        c_matches = self._matches(
            state,
            np.asarray([ref_of[i] for i in from_clusters], dtype=np.int64),
            c_scores,
            include_values,
            include_metadata,
        )
        by_id = {m.id: m for m in c_matches}
        records = tail.lookup([i for i, _ in best if i in tail_set])
        matches = []
        for (i, _), sc in zip(best, scores, strict=True):
            rec = records.get(i)
            if rec is None:
                matches.append(by_id[i])
                continue
            v = _vector_of(rec, layout)
            matches.append(
                ScoredVector.model_construct(
                    id=i,
                    score=sc,
                    values=v.values if include_values else None,
                    sparse_values=v.sparse_values if include_values else None,
                    metadata=v.metadata if include_metadata else None,
                )
            )
        return QueryResponse(matches=matches, namespace=ns, usage=usage)

    def _public_scores(self, scores: np.ndarray, query_sq: float) -> list[float]:
        public = self.spec.metric.public_scores(scores, query_sq)
        out: list[float] = public.astype(np.float64).tolist()
        return out

    def _matches(
        self,
        state: NamespaceState,
        refs: np.ndarray,
        scores: list[float],
        include_values: bool,
        include_metadata: bool,
    ) -> list[ScoredVector]:
        layout = self.spec.record_layout
        rows = materialize(
            self.source,
            state,
            refs,
            dense=layout != RecordLayout.SPARSE,
            values=include_values,
            sparse=include_values and layout != RecordLayout.DENSE,
            metadata=include_metadata,
            dimension=self.executor.dimension,
        )
        return [
            ScoredVector.model_construct(
                id=rows.ids[i],
                score=scores[i],
                values=rows.values[i] if include_values and layout != RecordLayout.SPARSE else None,
                sparse_values=rows.sparse[i],
                metadata=rows.metadata[i] if include_metadata else None,
            )
            for i in range(len(scores))
        ]

    @staticmethod
    def _usage(state: NamespaceState) -> Usage:
        return Usage(read_units=args.read_units(state.manifest.byte_size))

    # --------------------------------------------------------------- fetch
    def fetch(self, ids: Sequence[str], namespace: str | None = None) -> FetchResponse:
        """The stored records of ``ids`` (absent ids are left out)."""
        wanted = args.fetch_ids(ids)
        ns = args.namespace(namespace)
        layout = self.spec.record_layout

        def run(state: NamespaceState | None) -> FetchResponse:
            if state is None or not wanted:
                return FetchResponse(vectors={}, namespace=ns, usage=Usage(read_units=1))
            tail = self.tail(ns, state)
            if tail is None:
                return from_clusters(state, wanted)
            merged = merged_fetch(tail, wanted, lambda rest: from_clusters(state, rest).vectors)
            vectors = {
                i: _vector_of(v, layout) if isinstance(v, Record) else v for i, v in merged.items()
            }
            return FetchResponse(
                vectors=vectors,
                namespace=ns,
                usage=Usage(read_units=max(1, -(-len(vectors) // 10))),
            )

        def from_clusters(state: NamespaceState, wanted: list[str]) -> FetchResponse:
            if not state.manifest.id_files:
                return FetchResponse(vectors={}, namespace=ns, usage=Usage(read_units=1))
            found = load_id_index(self.source, state).lookup(wanted)
            order = [i for i in wanted if i in found]
            refs = np.array([found[i] for i in order], dtype=np.int64)
            rows = materialize(
                self.source,
                state,
                refs,
                dense=layout != RecordLayout.SPARSE,
                values=layout != RecordLayout.SPARSE,
                sparse=layout != RecordLayout.DENSE,
                metadata=True,
                dimension=self.executor.dimension,
                known_ids=order,
            )
            vectors = {
                rows.ids[j]: Vector.model_construct(
                    id=rows.ids[j],
                    values=rows.values[j],
                    sparse_values=rows.sparse[j],
                    metadata=rows.metadata[j],
                )
                for j in range(len(order))
            }
            return FetchResponse(
                vectors=vectors, namespace=ns, usage=Usage(read_units=max(1, -(-len(order) // 10)))
            )

        return self._pinned(ns, run)

    # ---------------------------------------------------------------- list
    def list_paginated(
        self,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        pagination_token: str | None = None,
        namespace: str | None = None,
    ) -> ListResponse:
        """One page of ids in ascending order; ``pagination`` is None on the last page."""
        ns = args.namespace(namespace)
        pre = args.list_prefix(prefix)
        lim = args.list_limit(limit)
        after = pagination.decode(pagination_token)

        def run(state: NamespaceState | None) -> ListResponse:
            if state is None:
                return ListResponse(vectors=[], namespace=ns)
            tail = self.tail(ns, state)
            if tail is not None:
                page, more = self._tail_page(state, tail, pre, after, lim)
            elif not state.manifest.id_files:
                return ListResponse(vectors=[], namespace=ns)
            else:
                page, more = load_id_index(self.source, state).page(pre, after, lim)
            nxt = Pagination(next=pagination.encode(page[-1])) if more and page else None
            return ListResponse(
                vectors=[ListItem(id=i) for i in page], namespace=ns, pagination=nxt
            )

        return self._pinned(ns, run)

    def _tail_page(
        self, state: NamespaceState, tail: TailState, pre: str, after: str | None, lim: int
    ) -> tuple[list[str], bool]:
        """One page of the live ids of clusters and tail, merged in order."""
        want = lim + 1
        mine = [i for i in tail.live_ids(pre) if after is None or i > after][:want]
        theirs: list[str] = []
        if not tail.hide_clusters and state.manifest.id_files:
            index = load_id_index(self.source, state)
            cursor = after
            while len(theirs) < want:
                chunk, more = index.page(pre, cursor, want)
                theirs.extend(i for i in chunk if i not in tail.where)
                if not more or not chunk:
                    break
                cursor = chunk[-1]
        merged = sorted(set(mine[:want]) | set(theirs[:want]))
        return merged[:lim], len(merged) > lim

    def list(
        self,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        pagination_token: str | None = None,
        namespace: str | None = None,
    ) -> Iterator[list[str]]:
        """Every id (with ``prefix``), one list per page, like Pinecone's SDK."""
        token = pagination_token
        while True:
            page = self.list_paginated(
                prefix=prefix, limit=limit, pagination_token=token, namespace=namespace
            )
            if page.vectors:
                yield [v.id for v in page.vectors]
            if page.pagination is None:
                return
            token = page.pagination.next


def _record_vectors(
    rec: Record | None, layout: RecordLayout
) -> tuple[np.ndarray | None, SparseQuery | None] | None:
    """The query vectors of a tail record (None: deleted / nothing to search with)."""
    if rec is None:
        return None
    dense = None if rec.values is None else np.asarray(rec.values, dtype=np.float32)
    sparse = None
    if rec.sparse_values is not None:
        sv = rec.sparse_values
        sparse = (np.asarray(sv["indices"], np.int64), np.asarray(sv["values"], np.float32))
    if layout == RecordLayout.SPARSE and sparse is None:
        return None
    return dense, sparse


def _vector_of(rec: Record, layout: RecordLayout) -> Vector:
    """A tail record as ``fetch`` returns stored ones."""
    sv = rec.sparse_values
    return Vector.model_construct(
        id=rec.id,
        values=rec.values if layout != RecordLayout.SPARSE else None,
        sparse_values=None
        if sv is None or layout == RecordLayout.DENSE
        else SparseValues.model_construct(
            indices=list(sv["indices"]), values=[float(x) for x in sv["values"]]
        ),
        metadata=rec.metadata,
    )
