"""Offline rebuild of a namespace: re-cluster its state at an LSN (issue 12 item 4).

``rebuild_namespace(store, spec, ns, owner=job_id)``:

1. **Snapshot.** ``base`` = the visible manifest, ``L`` = the last LSN of the
   namespace's log now. The state at ``L`` is ``base``'s cluster rows minus
   what the entries ``(base.applied_lsn, L]`` shadow, plus their live rows
   (the builder's :class:`~vecstore.tail.TailState`).
2. **Re-cluster.** k from the size (:func:`vecstore.kmeans.choose_k`, or
   ``n // records_per_cluster``), k-means on a fresh sample (seeded by the
   job), every record assigned, fresh segments / id file / centroids named
   ``data/<owner>-...`` in the current format. One process, its cores kept
   busy by threads where numpy / pyarrow release the GIL (reads, the
   vector copy, assignment, writes; docs/rebuild.md "Speed").
3. **Commit** (under the builder lease) an ``ApplyLog`` with
   ``applied_lsn = L``. Writes that landed after ``L`` stay in the log and
   are replayed on top by readers and the next build: none is lost. If the
   visible version moved meanwhile (a build folded entries), it must descend
   from ``base`` (else the namespace was deleted / re-created: the rebuild
   fails and commits nothing). The state is a function of the log, so:
   - it applied up to ``L' <= L``: the rebuilt state at ``L`` contains it;
     the rebuild commits on top of it, still with ``applied_lsn = L``;
   - it applied past ``L``: the entries ``(L, L']`` are folded into the
     rebuilt clusters (:func:`vecstore.builder.fold` on the rebuilt
     manifest) and that is committed on top of it.
   A lost race repeats step 3 (never steps 1-2).
Readers keep their version until the commit; the old files stay until
``vacuum`` after the retention period.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore import builder, kmeans, layout, manifests, quality, wal
from vecstore.errors import CommitConflictError, NotFoundError
from vecstore.metadata import meta_fields_of
from vecstore.schemas import IndexSpec, Manifest
from vecstore.schemas.models import MANIFEST_FORMAT_WAL
from vecstore.segments import dense_matrix, fixed_list, read_centroids, read_cluster
from vecstore.storage import Store
from vecstore.tail import TailState, conform_table
from vecstore.writer import assemble_manifest, write_centroids_file, write_id_file

THREADS = builder.BUILD_THREADS  # clusters read, vectors copied and assigned at once
REMOTE_READ_THREADS = 8  # clusters read at once from an object store (latency-bound GETs)
COMMIT_ATTEMPTS = 20
LEASE_WAIT_SECONDS = 120.0

Progress = Callable[[str, float], None]


@dataclass
class RebuildReport:
    namespace: str
    snapshot_lsn: int = 0
    base_version: int = 0
    version: int | None = None
    applied_lsn: int | None = None
    records: int = 0
    k_before: int = 0
    k_after: int = 0
    balance_before: dict[str, Any] = field(default_factory=dict)
    balance_after: dict[str, Any] = field(default_factory=dict)
    recall_before: float | None = None
    recall_after: float | None = None
    folded_after_snapshot: int = 0
    commit_attempts: int = 0
    seconds: float = 0.0
    # wall seconds of each step: read, train, assign, write, commit
    phase_seconds: dict[str, float] = field(default_factory=dict)

    def timed(self, phase: str, since: float) -> float:
        """Record ``phase`` as ended now (started at ``since``); returns now."""
        now = time.perf_counter()
        self.phase_seconds[phase] = round(now - since, 3)
        return now

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _k_for(n: int, records_per_cluster: int | None) -> int:
    if records_per_cluster is None:
        return kmeans.choose_k(n)
    return int(min(kmeans.MAX_K, max(1, n // max(1, int(records_per_cluster)))))


def _seed(owner: str) -> int:
    return int.from_bytes(owner.encode()[-8:].rjust(8, b"\0"), "big") % (2**31 - 1)


def _state_at(
    store: Store, spec: IndexSpec, ns: str, base: Manifest, lsn: int
) -> tuple[pa.Table | None, np.ndarray | None, np.ndarray]:
    """The live records at ``lsn``, their (n, d) vectors (dense layouts; the
    table's ``values`` column is a view of them) and, for each record, its
    cluster in ``base`` (-1: tail).

    The clusters are read on :data:`THREADS` threads (Parquet decoding
    releases the GIL; :data:`REMOTE_READ_THREADS` from an object store);
    each thread copies the vectors it read into their rows of one matrix at
    once (:class:`_Gather`): one copy of the vectors, made while they are in
    cache, and no second table of them."""
    applied = base.applied_lsn or 0
    state = TailState(spec, applied, base.version)
    for e in wal.read_after(store, spec.name, ns, applied, upto=lsn):
        state.apply(e)
    gone = pa.array(sorted(state.where), pa.string())
    prefix = layout.namespace_prefix(spec.name, ns)
    clusters = [c for c in ([] if state.hide_clusters else base.clusters) if c.row_count]
    tail = builder._concat([t for t in [state.matching(None)] if t is not None], spec)
    dense = spec.record_layout != "sparse"
    # rows of each part in the matrix: at most its live rows (the tail shadows some)
    gather = _Gather([c.live_count for c in clusters] + [tail.num_rows if tail else 0], spec)

    def read(i: int) -> pa.Table:
        # segment + delta segments, without the deleted rows (format 3)
        t = read_cluster(store, prefix, clusters[i])
        if len(gone):
            t = t.filter(pc.invert(pc.is_in(t.column("id"), value_set=gone)))
        return gather.put(i, conform_table(t, spec)) if dense else t

    threads = REMOTE_READ_THREADS if store.is_remote else THREADS
    with ThreadPoolExecutor(threads, thread_name_prefix="vecstore-rebuild-read") as pool:
        tables = list(pool.map(read, range(len(clusters))))
    if tail is not None:
        tables.append(gather.put(len(clusters), tail) if dense else tail)
    ids = [c.id for c in clusters] + [-1]
    where = [np.full(t.num_rows, ids[i], dtype=np.int64) for i, t in enumerate(tables)]
    old_where = np.concatenate(where) if where else np.zeros(0, np.int64)
    parts = [t for t in tables if t.num_rows]
    del tables
    if not dense or not parts:
        return builder._concat(parts, spec), None, old_where
    x = gather.matrix()
    table = pa.concat_tables(parts, promote_options="permissive").combine_chunks()
    table = table.append_column("values", fixed_list(x))
    return builder._concat([table], spec), x, old_where


class _Gather:
    """The vectors of numbered parts, copied into one preallocated (n, d)
    matrix as the parts arrive (from several threads: a numpy copy releases
    the GIL). Part ``i`` has ``sizes[i]`` rows reserved; a part with fewer
    leaves a gap that :meth:`matrix` closes (one more copy, only then)."""

    def __init__(self, sizes: list[int], spec: IndexSpec) -> None:
        self.dim = int(spec.dimension or 0)
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.rows = np.zeros(len(sizes), np.int64)
        self.x = np.empty(
            (int(self.offsets[-1]) if spec.record_layout != "sparse" else 0, self.dim), np.float32
        )
        self.over: dict[int, np.ndarray] = {}  # parts with more rows than reserved (kept apart)

    def put(self, i: int, t: pa.Table) -> pa.Table:
        """Copy ``t``'s vectors into part ``i``'s rows; ``t`` without them."""
        v = dense_matrix(t.column("values"), self.dim)
        at = int(self.offsets[i])
        if at + len(v) <= self.offsets[i + 1]:
            self.x[at : at + len(v)] = v
        else:  # more rows than the manifest counts (not expected): joined in matrix()
            self.over[i] = v
        self.rows[i] = len(v)
        return t.drop_columns(["values"])

    def matrix(self) -> np.ndarray:
        """The parts' vectors in part order, without gaps."""
        if not self.over and bool(np.all(self.rows == np.diff(self.offsets))):
            return self.x
        pieces = [
            self.over[i] if i in self.over else self.x[at : at + n]
            for i, (at, n) in enumerate(
                zip(self.offsets[:-1].tolist(), self.rows.tolist(), strict=True)
            )
        ]
        return np.concatenate([np.zeros((0, self.dim), np.float32), *pieces])


def _cluster(
    store: Store,
    spec: IndexSpec,
    ns: str,
    base: Manifest,
    table: pa.Table | None,
    x: np.ndarray | None,
    owner: str,
    records_per_cluster: int | None,
    report: RebuildReport,
    old_where: np.ndarray,
) -> Manifest:
    """Write the re-clustered namespace; its manifest (version to be set).

    ``x``: the vectors of ``table`` (dense layouts). Assignment runs on
    :data:`THREADS` threads; the recall estimates and the id file are
    computed beside the segment writes."""
    if table is None:
        return assemble_manifest(spec, ns, base.version + 1, [], centroids=None, id_files=[])
    n = table.num_rows
    seed = _seed(owner)
    cents_rel: str | None = None
    figures: Future[None] | None = None
    t = time.perf_counter()
    with ThreadPoolExecutor(1, thread_name_prefix="vecstore-rebuild-quality") as side:
        if spec.record_layout == "sparse" or x is None:
            assignment = np.arange(n, dtype=np.int64) // kmeans.TARGET_PER_CLUSTER
        else:
            cents = kmeans.fit(x, _k_for(n, records_per_cluster), seed=seed, metric=spec.metric)
            t = report.timed("train", t)
            assignment = kmeans.assign(x, cents, metric=spec.metric, threads=THREADS).astype(
                np.int64
            )
            t = report.timed("assign", t)
            figures = side.submit(
                _recall_figures,
                store,
                spec,
                ns,
                base,
                x,
                old_where,
                assignment,
                cents,
                seed,
                report,
            )
            cents_rel = write_centroids_file(store, spec, ns, owner, cents)
        id_file = side.submit(_write_id_file, store, spec, ns, owner, table, assignment)
        entries = builder._write_groups(store, spec, ns, owner, table, assignment, vectors=x)
        id_rel = id_file.result()
        if figures is not None:
            figures.result()
    report.timed("write", t)
    return assemble_manifest(
        spec,
        ns,
        base.version + 1,
        [e for e, _ in entries],
        centroids=cents_rel,
        id_files=[id_rel],
        fields=meta_fields_of(table.schema),
    )


def _write_id_file(
    store: Store, spec: IndexSpec, ns: str, owner: str, table: pa.Table, assignment: np.ndarray
) -> str:
    """The id file of the clusters :func:`builder._write_groups` writes from
    ``table`` and ``assignment`` (written beside them): each record's cluster
    and its row there -- its rank in the same stable order by cluster."""
    order = np.argsort(builder._sort_key(assignment), kind="stable")
    by_cluster = assignment[order]
    rows = np.empty(len(order), np.int32)
    rows[order] = np.arange(len(order)) - np.searchsorted(by_cluster, by_cluster, side="left")
    ids = table.column("id").cast(pa.string())
    return write_id_file(store, spec, ns, owner, ids, assignment.astype(np.int32), rows)


def _recall_figures(
    store: Store,
    spec: IndexSpec,
    ns: str,
    base: Manifest,
    x: np.ndarray,
    old_where: np.ndarray,
    assignment: np.ndarray,
    cents: np.ndarray,
    seed: int,
    report: RebuildReport,
) -> None:
    """Estimated recall@10 before (the base's clusters) and after."""
    if base.centroids is not None and len(old_where):
        old_c = read_centroids(store, builder._ns_key(spec, ns, base.centroids))
        report.recall_before = quality.estimate_recall(x, old_where, old_c, spec.metric, seed=seed)
    report.recall_after = quality.estimate_recall(x, assignment, cents, spec.metric, seed=seed)


def descends_from(store: Store, spec: IndexSpec, ns: str, m: Manifest, version: int) -> bool:
    """Whether ``m`` was built on version ``version`` through ``parent_version`` links."""
    cur: Manifest | None = m
    while cur is not None and cur.version > version:
        if cur.parent_version is None or cur.deleted:
            return False
        try:
            cur = manifests.read_manifest(store, spec.name, ns, cur.parent_version)
        except NotFoundError:
            return False
    return cur is not None and cur.version == version


def rebuild_namespace(
    store: Store,
    spec: IndexSpec,
    ns: str,
    *,
    owner: str,
    records_per_cluster: int | None = None,
    progress: Progress | None = None,
    before_commit: Callable[[], None] | None = None,
) -> RebuildReport:
    """Re-cluster ``ns`` and commit it (see the module doc). ``owner`` names
    the files (the job id); ``before_commit`` is called before each commit
    attempt (the job's cancel check; tests use it to race builds)."""
    t0 = time.perf_counter()
    say = progress or (lambda phase, frac: None)
    if spec.record_layout != "sparse":
        kmeans.preload()  # ~1-2 s in a fresh process: imported while the clusters are read
    base = manifests.load_namespace(store, spec.name, ns)
    if base is None or base.deleted:
        raise NotFoundError(f'Namespace "{ns}" not found in index "{spec.name}"', namespace=ns)
    lsn = max(wal.last_lsn(store, spec.name, ns), base.applied_lsn or 0)
    report = RebuildReport(ns, snapshot_lsn=lsn, base_version=base.version)
    report.k_before = len([c for c in base.clusters if c.row_count])
    report.balance_before = quality.balance([c.row_count for c in base.clusters]).as_dict()
    say("reading", 0.05)
    table, x, old_where = _state_at(store, spec, ns, base, lsn)
    t = report.timed("read", t0)
    report.records = 0 if table is None else table.num_rows
    say("clustering", 0.3)
    fresh = _cluster(store, spec, ns, base, table, x, owner, records_per_cluster, report, old_where)
    del table, x
    fresh = fresh.model_copy(
        update={
            "format_version": MANIFEST_FORMAT_WAL,
            "applied_lsn": lsn,
            "trained_records": report.records,
            "added_since_training": 0,
        }
    )
    report.k_after = len(fresh.clusters)
    report.balance_after = quality.balance([c.row_count for c in fresh.clusters]).as_dict()
    say("committing", 0.9)
    t = time.perf_counter()
    committed = _commit(store, spec, ns, base, fresh, owner, report, before_commit)
    report.timed("commit", t)
    report.version = committed.version
    report.applied_lsn = committed.applied_lsn
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def _commit(
    store: Store,
    spec: IndexSpec,
    ns: str,
    base: Manifest,
    fresh: Manifest,
    owner: str,
    report: RebuildReport,
    before_commit: Callable[[], None] | None,
) -> Manifest:
    from vecstore import commit

    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    lsn = int(fresh.applied_lsn or 0)
    for attempt in range(1, COMMIT_ATTEMPTS + 1):
        report.commit_attempts = attempt
        lease = builder.acquire_lease(store, spec.name, ns, owner=f"rebuild-{owner}")
        if lease is None:
            if time.monotonic() > deadline:
                raise CommitConflictError(
                    f'Rebuild of namespace "{ns}": the builder lease stayed taken; try again'
                )
            time.sleep(0.2)
            continue
        try:
            if before_commit is not None:
                before_commit()
            visible = manifests.load_namespace(store, spec.name, ns)
            if (
                visible is None
                or visible.deleted
                or not descends_from(store, spec, ns, visible, base.version)
            ):
                raise NotFoundError(
                    f'Namespace "{ns}" was deleted or re-created during its rebuild; '
                    "nothing was committed"
                )
            on_top = fresh.model_copy(
                update={"version": visible.version + 1, "parent_version": visible.version}
            )
            if (visible.applied_lsn or 0) > lsn:
                # a build folded entries past the snapshot: fold them into the rebuilt clusters
                rebased = on_top.model_copy(update={"version": visible.version})
                result = builder.fold(store, spec, ns, owner=lease.owner, base=rebased)
                if result.status == "built" and result.manifest is not None:
                    report.folded_after_snapshot = result.entries
                    return result.manifest
                continue
            try:
                out = commit.apply(
                    store,
                    spec.name,
                    commit.ApplyLog(
                        namespace=ns,
                        base_version=visible.version,
                        applied_lsn=lsn,
                        manifest=on_top,
                    ),
                )
            except CommitConflictError:
                continue
            return out.manifests[ns]
        finally:
            builder.release(store, lease)
    raise CommitConflictError(
        f'Rebuild of namespace "{ns}": the namespace kept changing; try again'
    )


__all__ = ["RebuildReport", "descends_from", "rebuild_namespace"]
