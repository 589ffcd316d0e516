"""The index builder: fold the log tail of a namespace into its clusters.

``build(store, spec, namespace)`` takes the namespace's builder lease, reads
the entries after the visible manifest's ``applied_lsn``, and commits the
next manifest (format 2) with the LSN it applied:

- every id the entries touched (overwritten or deleted) leaves the cluster
  that held it; a ``delete_all`` empties every cluster;
- each live new record joins the cluster of its nearest existing centroid
  (dense), or new clusters of up to ``TARGET_PER_CLUSTER`` rows (sparse);
- only the touched clusters change, and each by a delta segment of its new
  rows plus a deletion list while those stay under ``DELTA_FRACTION`` of
  it (else it is rewritten whole: compaction); the others are named again
  as they are (docs/write-path.md "Delta segments"). The id lookup is rewritten as one file (ids and two
  int32 columns: small next to the segments, see docs/write-path.md);
- a namespace with no centroids yet (created by upserts), or whose tail
  outgrows it, is clustered afresh (k-means), like an import.

Safety does not rest on the lease: the manifest commit is write-if-absent,
so two builders racing commit at most one version, and the loser's files
are orphans for vacuum. The lease (``_lease/<generation>`` objects with an
expiry) only keeps a second builder from doing the work twice.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore import commit, drift, kmeans, layout, manifests, wal, writer
from vecstore.errors import AlreadyExistsError, CommitConflictError, NotFoundError, VecstoreError
from vecstore.metadata import merge_stats, meta_fields_of
from vecstore.resolve import id_location_parts, joined_locations
from vecstore.schemas import ClusterEntry, IndexSpec, Manifest
from vecstore.schemas.models import MANIFEST_FORMAT_DELTA, MANIFEST_FORMAT_WAL
from vecstore.segments import (
    dense_matrix,
    fixed_list,
    read_centroids,
    read_cluster,
    read_deleted,
    write_deleted,
)
from vecstore.storage import Store
from vecstore.tail import TailState, conform_table
from vecstore.writer import (
    assemble_manifest,
    write_centroids_file,
    write_cluster,
    write_id_file,
)

log = logging.getLogger("vecstore")

LEASE_SECONDS = 60.0
# a touched cluster gets a delta segment (rows appended, deleted rows listed)
# while its deltas and deletions stay under this fraction of its segment's
# rows; past it the cluster is rewritten whole (compaction)
DELTA_FRACTION = 0.25
# id lookup files a fold may leave (sorted runs; more are merged into one)
MAX_ID_FILES = 8
CHECK_SECONDS = 0.25  # between clusters, a fold's check runs at most this often
BUILD_THREADS = min(4, os.cpu_count() or 1)  # clusters merged and written at once
IO_THREADS = 8  # clusters appended to at once (small files: store round trips)
LEASE_DIR = "_lease"


# ------------------------------------------------------------------ lease


@dataclass(frozen=True, slots=True)
class Lease:
    index: str
    namespace: str
    generation: int
    owner: str
    expires_at: float


def _lease_prefix(index: str, namespace: str) -> str:
    return f"{layout.namespace_prefix(index, namespace)}/{LEASE_DIR}"


def _lease_key(index: str, namespace: str, gen: int) -> str:
    return f"{_lease_prefix(index, namespace)}/{gen:020d}.json"


def _generations(store: Store, index: str, namespace: str) -> list[int]:
    out = []
    for key in store.ls(_lease_prefix(index, namespace)):
        stem = key.rsplit("/", 1)[-1].partition(".")[0]
        if stem.isdigit():
            out.append(int(stem))
    return sorted(out)


def _read_lease(store: Store, index: str, namespace: str, gen: int) -> dict[str, object] | None:
    try:
        data: dict[str, object] = json.loads(store.read_bytes(_lease_key(index, namespace, gen)))
    except (NotFoundError, ValueError):
        return None
    return data


def acquire_lease(
    store: Store,
    index: str,
    namespace: str,
    owner: str | None = None,
    seconds: float = LEASE_SECONDS,
) -> Lease | None:
    """Take the namespace's builder lease, or None if another holder's is live.

    The lease is the newest of ``_lease/<generation>.json``; taking it is a
    write-if-absent of the next generation, so of two processes taking an
    expired lease exactly one wins."""
    owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    gens = _generations(store, index, namespace)
    gen = 1
    if gens:
        cur = _read_lease(store, index, namespace, gens[-1])
        if (
            cur is not None
            and not cur.get("released")
            and cur.get("owner") != owner
            and float(cur.get("expires_at", 0.0)) > time.time()  # type: ignore[arg-type]
        ):
            return None
        gen = gens[-1] + 1
    expires = time.time() + seconds
    body = {"owner": owner, "expires_at": expires, "released": False}
    try:
        store.put_if_absent(_lease_key(index, namespace, gen), json.dumps(body).encode())
    except AlreadyExistsError:
        return None
    for old in gens[:-1]:  # keep the previous one: a holder may still be renewing it
        store.delete(_lease_key(index, namespace, old))
    return Lease(index, namespace, gen, owner, expires)


def holds(store: Store, lease: Lease) -> bool:
    """Whether ``lease`` is still the newest generation and unexpired."""
    gens = _generations(store, lease.index, lease.namespace)
    return bool(gens) and gens[-1] == lease.generation and lease.expires_at > time.time()


def renew(store: Store, lease: Lease, seconds: float = LEASE_SECONDS) -> Lease | None:
    """Extend a held lease (None if it was lost to another builder)."""
    if not holds(store, lease):
        return None
    expires = time.time() + seconds
    body = {"owner": lease.owner, "expires_at": expires, "released": False}
    store.write_bytes(
        _lease_key(lease.index, lease.namespace, lease.generation), json.dumps(body).encode()
    )
    return Lease(lease.index, lease.namespace, lease.generation, lease.owner, expires)


def release(store: Store, lease: Lease) -> None:
    if holds(store, lease):
        body = {"owner": lease.owner, "expires_at": 0.0, "released": True}
        store.write_bytes(
            _lease_key(lease.index, lease.namespace, lease.generation), json.dumps(body).encode()
        )


# ------------------------------------------------------------------ build


# check(): raises (e.g. CancelledError) to stop a fold between clusters
Check = Callable[[], None]
# progress(clusters_done, clusters_total): after each cluster written
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BuildResult:
    status: str  # "built", "nothing" (no tail), "busy" (another builder), "conflict"
    manifest: Manifest | None = None
    applied_lsn: int = 0
    entries: int = 0
    clusters_rewritten: int = 0
    seconds: float = 0.0


def build(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    *,
    owner: str | None = None,
    lease_seconds: float = LEASE_SECONDS,
    max_records: int | None = None,
    check: Check | None = None,
    progress: Progress | None = None,
    tag: str = "",
) -> BuildResult:
    """Fold the namespace's tail under its lease (see the module doc)."""
    lease = acquire_lease(store, spec.name, namespace, owner, lease_seconds)
    if lease is None:
        return BuildResult("busy")
    try:
        return fold(
            store,
            spec,
            namespace,
            max_records=max_records,
            owner=lease.owner,
            check=check,
            progress=progress,
            tag=tag,
        )
    finally:
        release(store, lease)


def _entries(
    store: Store, spec: IndexSpec, namespace: str, after: int, max_records: int | None
) -> list[wal.Entry]:
    entries = wal.read_after(store, spec.name, namespace, after)
    if max_records is None:
        return entries
    out: list[wal.Entry] = []
    total = 0
    for e in entries:
        if out and total + e.size > max_records:
            break
        out.append(e)
        total += e.size
    return out


def fold(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    *,
    max_records: int | None = None,
    owner: str = "",
    base: Manifest | None = None,
    check: Check | None = None,
    progress: Progress | None = None,
    tag: str = "",
) -> BuildResult:
    """One build step without the lease (callers hold it). ``base``: the
    version to build on (default: the visible one).

    ``check`` is called before each cluster is rewritten and before the
    commit: what it raises stops the fold, with the files it wrote removed
    and nothing committed. ``progress(done, total)`` follows the clusters.
    ``tag`` names the files (``data/b<lsn>-<tag>-...``; a job passes its id
    so that cleanup after a crash finds them); default: a random one."""
    t0 = time.perf_counter()
    if base is None:
        base = manifests.load_namespace(store, spec.name, namespace)
    if base is None:
        return BuildResult("nothing")
    applied = base.applied_lsn or 0
    entries = _entries(store, spec, namespace, applied, max_records)
    if not entries:
        return BuildResult("nothing", base, applied)
    state = TailState(spec, applied, base.version)
    for e in entries:
        state.apply(e)
    new_rows, preassigned = state.live_with_clusters()
    n_new = 0 if new_rows is None else new_rows.num_rows
    tag = f"b{state.last_lsn}-{tag or uuid.uuid4().hex[:8]}"
    hooks = _Hooks(check, progress)
    retrained = spec.record_layout != "sparse" and (
        base.centroids is None or n_new > base.record_count
    )
    try:
        hooks.check()
        if retrained:
            manifest, rewritten = _fresh(store, spec, namespace, base, state, new_rows, tag)
            hooks.done(1, 1)
        else:
            manifest, rewritten = _incremental(
                store, spec, namespace, base, state, new_rows, tag, hooks, preassigned,
                staged=_staged_of(entries),
            )
    except BaseException:
        _remove_quietly(store, spec.name, namespace, tag)
        raise
    manifest = manifest.model_copy(
        update={
            **drift.carried(base, n_new, retrained, manifest.record_count),
            "format_version": (
                MANIFEST_FORMAT_DELTA
                if any(c.deltas or c.deleted for c in manifest.clusters)
                else MANIFEST_FORMAT_WAL
            ),
            "applied_lsn": state.last_lsn,
            "parent_version": base.version,
            "version": base.version + 1,
        }
    )
    change = commit.ApplyLog(
        namespace=namespace,
        base_version=base.version,
        applied_lsn=state.last_lsn,
        manifest=manifest,
    )
    try:  # conflict: another version won (a build, a delete); nothing of ours is visible
        manifest = commit.apply(store, spec.name, change, guard=check).manifests[namespace]
    except CommitConflictError:
        _remove_quietly(store, spec.name, namespace, tag)
        return BuildResult("conflict", None, applied, len(entries))
    except BaseException:  # (a manifest that landed keeps its files: see remove_staged)
        _remove_quietly(store, spec.name, namespace, tag)
        raise
    return BuildResult(
        "built",
        manifest,
        state.last_lsn,
        len(entries),
        rewritten,
        time.perf_counter() - t0,
    )


class _Hooks:
    """``check`` between clusters: at most every CHECK_SECONDS (a namespace of
    thousands of clusters on S3 is not slowed by it), and once it raised,
    every later call raises the same (the clusters queued on the pool stop)."""

    def __init__(self, check: Check | None, progress: Progress | None) -> None:
        self._check = check
        self._progress = progress
        self._last = -math.inf
        self._raised: BaseException | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        if self._check is None:
            return
        with self._lock:
            if self._raised is not None:
                raise self._raised
            now = time.monotonic()
            if now - self._last < CHECK_SECONDS:
                return
            self._last = now
            try:
                self._check()
            except BaseException as exc:
                self._raised = exc
                raise

    def done(self, n: int, total: int) -> None:
        if self._progress is not None:
            self._progress(n, total)


def remove_staged(store: Store, index: str, namespace: str, tag: str) -> int:
    """Delete the data files whose name holds ``tag`` that the visible manifest
    does not reference (a fold that stopped or lost); how many."""
    m = manifests.load_namespace(store, index, namespace)
    keep = set(m.files()) if m is not None else set()
    prefix = layout.namespace_prefix(index, namespace)
    gone = 0
    for key in store.ls(layout.data_prefix(index, namespace)):
        rel = key[len(prefix) + 1 :]
        if tag in rel.rsplit("/", 1)[-1] and rel not in keep:
            store.delete(key)
            gone += 1
    return gone


def _remove_quietly(store: Store, index: str, namespace: str, tag: str) -> None:
    try:
        remove_staged(store, index, namespace, tag)
    except VecstoreError as exc:  # orphans then wait for vacuum
        log.warning("could not remove the staged files of %s/%s: %s", index, namespace, exc)


def _ns_key(spec: IndexSpec, namespace: str, rel: str) -> str:
    return f"{layout.namespace_prefix(spec.name, namespace)}/{rel}"


def _surviving_rows(
    store: Store, spec: IndexSpec, namespace: str, base: Manifest, state: TailState
) -> list[pa.Table]:
    """Every cluster row of ``base`` the tail does not shadow."""
    if state.hide_clusters:
        return []
    gone = pa.array(sorted(state.where), pa.string())
    out = []
    for c in base.clusters:
        if c.row_count == 0:
            continue
        t = read_cluster(store, layout.namespace_prefix(spec.name, namespace), c)
        if len(gone):
            t = t.filter(pc.invert(pc.is_in(t.column("id"), value_set=gone)))
        if t.num_rows:
            out.append(t)
    return out


def _concat(parts: Sequence[pa.Table], spec: IndexSpec) -> pa.Table | None:
    parts = [p for p in parts if p is not None and p.num_rows]
    if not parts:
        return None
    return conform_table(pa.concat_tables(parts, promote_options="permissive"), spec)


def _fresh(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    base: Manifest,
    state: TailState,
    new_rows: pa.Table | None,
    tag: str,
) -> tuple[Manifest, int]:
    """Cluster every live record afresh (no centroids yet, or a tail larger than the namespace)."""
    table = _concat([*_surviving_rows(store, spec, namespace, base, state), new_rows], spec)
    if table is None:
        return _empty(spec, namespace, base), 0
    n = table.num_rows
    x = dense_matrix(table.column("values"), int(spec.dimension or 0))
    cents = kmeans.fit(x, kmeans.choose_k(n), seed=0, metric=spec.metric)
    assignment = kmeans.assign(x, cents, metric=spec.metric).astype(np.int64)
    cents_rel = write_centroids_file(store, spec, namespace, tag, cents)
    entries = _write_groups(store, spec, namespace, tag, table, assignment)
    id_rel = _write_ids(store, spec, namespace, tag, entries, [])
    m = assemble_manifest(
        spec,
        namespace,
        base.version + 1,
        [e for e, _ in entries],
        centroids=cents_rel,
        id_files=[id_rel] if id_rel else [],
        fields=meta_fields_of(table.schema),
    )
    return m, len(entries)


def _empty(spec: IndexSpec, namespace: str, base: Manifest) -> Manifest:
    return assemble_manifest(
        spec, namespace, base.version + 1, [], centroids=base.centroids, id_files=[]
    )


def _write_groups(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    tag: str,
    table: pa.Table,
    assignment: np.ndarray,
    vectors: np.ndarray | None = None,
) -> list[tuple[ClusterEntry, pa.Array]]:
    """One segment per distinct cluster id of ``assignment``; with each, its ids in row order.
    Each cluster's rows are taken on their own (memory: the table plus one
    cluster, not a second sorted copy of the table). ``vectors``: the
    table's ``values`` as an (n, d) matrix (the rebuild): a cluster's
    vectors are then gathered by numpy into a buffer each writing thread
    reuses (no fresh pages per cluster)."""
    if any(col.num_chunks > 1 for col in table.columns):  # a take per cluster: one chunk each
        table = table.combine_chunks()
    order = np.argsort(_sort_key(assignment), kind="stable")
    sorted_a = assignment[order]
    bounds = np.flatnonzero(np.diff(sorted_a)) + 1
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    ends = np.concatenate([bounds, [len(sorted_a)]]).astype(np.int64)
    spans = [(s, e) for s, e in zip(starts.tolist(), ends.tolist(), strict=True) if e > s]
    rest = table if vectors is None else table.drop_columns(["values"])
    local = threading.local()

    def rows_of(s: int, e: int) -> pa.Table:
        take = pa.array(order[s:e])
        if vectors is None:
            return table.take(take)
        buf = getattr(local, "buf", None)
        if buf is None:
            longest = max(b - a for a, b in spans)
            buf = local.buf = np.empty((longest, vectors.shape[1]), np.float32)
        got = np.take(vectors, order[s:e], axis=0, out=buf[: e - s])
        return rest.take(take).append_column("values", fixed_list(got))

    def one(span: tuple[int, int]) -> tuple[ClusterEntry, pa.Array]:
        s, e = span  # (the takes and the Parquet write release the GIL)
        part = rows_of(s, e)
        entry = write_cluster(store, spec, namespace, tag, int(sorted_a[s]), part)
        return entry, part.column("id").combine_chunks()

    threads = max(1, min(BUILD_THREADS, len(spans)))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vecstore-write") as pool:
        return list(pool.map(one, spans))


def _sort_key(assignment: np.ndarray) -> np.ndarray:
    """``assignment`` as uint16 where it fits (numpy sorts those by radix, ~10x
    faster than a stable sort of int64), else as it is."""
    if len(assignment) and int(assignment.min()) >= 0 and int(assignment.max()) < 2**16:
        return assignment.astype(np.uint16)
    return assignment


def _write_id_runs(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    tag: str,
    rels: Sequence[str],
    parts: Sequence[pa.Table],
    keep: pa.Array | pa.ChunkedArray,
    new_rows: Sequence[pa.Table],
) -> list[str]:
    """A fold's id lookup as sorted runs, without sorting what is sorted: each
    base id file (``rels``, rows ``parts``) whose rows ``keep`` all keeps is
    reused as it is, one that loses rows is written filtered (still sorted),
    and ``new_rows`` are sorted into one new file. When that makes more than
    MAX_ID_FILES files, everything is merged into one sorted file (readers
    search each file; listing merges them once per version)."""
    mask = np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)
    bounds = np.cumsum([0, *(t.num_rows for t in parts)]).tolist()
    reused: list[str] = []
    filtered: list[pa.Table] = []
    for rel, t, a, b in zip(rels, parts, bounds[:-1], bounds[1:], strict=True):
        m = mask[a:b]
        if m.all():
            reused.append(rel)
        elif m.any():
            filtered.append(t.filter(pa.array(m)))
    new = [t for t in new_rows if t.num_rows]
    if len(reused) + len(filtered) + (1 if new else 0) > MAX_ID_FILES:
        kept = [
            t.filter(pa.array(mask[a:b]))
            for t, a, b in zip(parts, bounds[:-1], bounds[1:], strict=True)
        ]
        merged = _write_ids(store, spec, namespace, tag, [], [*kept, *new])
        return [merged] if merged else []
    out = reused + [writer.write_id_table(store, spec, namespace, tag, t) for t in filtered]
    sorted_new = _write_ids(store, spec, namespace, tag, [], new) if new else None
    return out + ([sorted_new] if sorted_new else [])


def _write_ids(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    tag: str,
    rewritten: Sequence[tuple[ClusterEntry, pa.Array]],
    kept: Sequence[pa.Table],
) -> str | None:
    """One id file: the kept (id, cluster, row) rows plus the rewritten clusters'."""
    ids: list[pa.Array] = []
    cl: list[np.ndarray] = []
    rows: list[np.ndarray] = []
    for t in kept:
        ids.append(t.column("id").combine_chunks())
        cl.append(np.asarray(t.column("cluster").to_numpy(), dtype=np.int32))
        rows.append(np.asarray(t.column("row").to_numpy(), dtype=np.int32))
    for entry, col in rewritten:
        ids.append(col)
        cl.append(np.full(len(col), entry.id, dtype=np.int32))
        rows.append(np.arange(len(col), dtype=np.int32))
    total = sum(len(a) for a in ids)
    if total == 0:
        return None
    all_ids = pa.concat_arrays([a.cast(pa.string()) for a in ids])
    return write_id_file(
        store, spec, namespace, tag, all_ids, np.concatenate(cl), np.concatenate(rows)
    )


def _assignment(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    base: Manifest,
    state: TailState,
    new_rows: pa.Table,
    preassigned: np.ndarray | None,
) -> np.ndarray:
    """The nearest centroid of each new row: a batch load's assignment where
    its workers used this version's centroids (no second pass over its rows),
    computed here for the others (online writes, or centroids replaced by a
    rebuild since the load was staged)."""
    known = np.full(new_rows.num_rows, -1, np.int64)
    if (
        preassigned is not None
        and state.assigned_with == {base.centroids}
        and len(preassigned) == new_rows.num_rows
    ):
        known = preassigned.astype(np.int64)
        known[known >= max((c.id for c in base.clusters), default=-1) + 1] = -1
    todo = np.flatnonzero(known < 0)
    if len(todo):
        cents = read_centroids(store, _ns_key(spec, namespace, str(base.centroids)))
        part = new_rows if len(todo) == len(known) else new_rows.take(pa.array(todo))
        x = dense_matrix(part.column("values"), int(spec.dimension or 0))
        known[todo] = kmeans.assign(x, cents, metric=spec.metric)
    return known


def _appended_ids(rows: pa.Table, cluster: int, first_row: int) -> pa.Table:
    """(id, cluster, row) of rows appended to a cluster of ``first_row`` rows."""
    n = rows.num_rows
    return pa.table(
        {
            "id": rows.column("id").combine_chunks().cast(pa.string()),
            "cluster": pa.array(np.full(n, cluster, dtype=np.int32)),
            "row": pa.array(np.arange(first_row, first_row + n, dtype=np.int32)),
        }
    )


def _staged_of(entries: Sequence[wal.Entry]) -> tuple[ClusterEntry, ...]:
    """The staged segments a fold may attach as they are: those of a tail
    that is exactly one batch load (its rows are then, in order, the rows of
    its staged segments)."""
    if len(entries) != 1 or entries[0].op != "load":
        return ()
    e = entries[0]
    if len(e.staged) != len(e.segments) or any(
        s.id != cid or s.segment != rel for s, (cid, rel) in zip(e.staged, e.segments, strict=True)
    ):
        return ()
    return e.staged


def _attachments(
    staged: Sequence[ClusterEntry],
    assignment: np.ndarray,
    preassigned: np.ndarray | None,
    incoming: dict[int, pa.Table],
) -> dict[int, list[ClusterEntry]]:
    """Per cluster, the staged segments that hold exactly its incoming rows
    (in order): every row kept the cluster the load's workers gave it."""
    if not staged or preassigned is None or not np.array_equal(assignment, preassigned):
        return {}
    out: dict[int, list[ClusterEntry]] = {}
    for s in staged:
        out.setdefault(s.id, []).append(s)
    if out.keys() != incoming.keys() or any(
        sum(s.row_count for s in out[cid]) != t.num_rows for cid, t in incoming.items()
    ):
        return {}
    return out


def _split_by(table: pa.Table, labels: np.ndarray) -> dict[int, pa.Table]:
    """The rows of ``table`` by label (row order kept within a label): one
    take and zero-copy slices, not one filter of the whole table per label."""
    if len(labels) < 2 or bool(np.all(labels[1:] >= labels[:-1])):
        ordered, sorted_labels = table, labels  # (a load's rows come by cluster)
    else:
        order = np.argsort(labels, kind="stable")
        ordered = table.combine_chunks().take(pa.array(order))
        sorted_labels = labels[order]
    values, starts = np.unique(sorted_labels, return_index=True)
    ends = [*starts[1:].tolist(), len(sorted_labels)]
    return {
        int(v): ordered.slice(int(s), int(e) - int(s))
        for v, s, e in zip(values.tolist(), starts.tolist(), ends, strict=True)
    }


def _incremental(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    base: Manifest,
    state: TailState,
    new_rows: pa.Table | None,
    tag: str,
    hooks: _Hooks,
    preassigned: np.ndarray | None = None,
    staged: Sequence[ClusterEntry] = (),
) -> tuple[Manifest, int]:
    """Rewrite only the clusters the tail touches (see the module doc).

    ``preassigned``: the cluster a batch load's workers assigned each new row
    to (-1: none), reused when they used this version's centroids.
    ``staged``: a batch load's staged segments (:func:`_staged_of`); a cluster
    that takes a delta gets them as its delta segments, not a copy."""
    loc_parts = id_location_parts(store, base)
    loc = joined_locations(loc_parts)
    by_id = {c.id: c for c in base.clusters}
    gone = pa.array(sorted(state.where), pa.string())
    # which rows of the id lookup the tail hides: one membership test, reused below
    hit = None if state.hide_clusters else pc.is_in(loc.column("id"), value_set=gone)
    if hit is None:
        touched = {c.id for c in base.clusters if c.row_count}
    else:
        touched = set(np.unique(np.asarray(loc.filter(hit).column("cluster").to_numpy())).tolist())
    # where the new records go
    incoming: dict[int, pa.Table] = {}
    attach: dict[int, list[ClusterEntry]] = {}
    if new_rows is not None and new_rows.num_rows:
        if spec.record_layout == "sparse":
            per = kmeans.TARGET_PER_CLUSTER
            first = max(by_id, default=-1) + 1
            assignment = first + np.arange(new_rows.num_rows, dtype=np.int64) // per
        else:
            assignment = _assignment(store, spec, namespace, base, state, new_rows, preassigned)
        incoming = _split_by(new_rows, assignment)
        if state.assigned_with == {base.centroids}:
            attach = _attachments(staged, assignment, preassigned, incoming)
        touched |= set(incoming)
    fields: dict[str, set[str]] = {f.name: set(f.kinds) for f in base.fields}

    # rows of the touched clusters the tail hides, by cluster (delta decisions)
    gone_rows: dict[int, np.ndarray] = {}
    if hit is not None and len(gone):
        hidden = loc.filter(hit)
        h_cl = np.asarray(hidden.column("cluster").to_numpy())
        h_rows = np.asarray(hidden.column("row").to_numpy())
        for cid in np.unique(h_cl).tolist():
            gone_rows[int(cid)] = h_rows[h_cl == cid]
    prefix = layout.namespace_prefix(spec.name, namespace)

    def as_delta(cid: int) -> bool:
        """Append a delta segment (and a deletion list) instead of rewriting:
        while the changed rows stay under DELTA_FRACTION of the cluster."""
        old = by_id.get(cid)
        if old is None or not old.row_count or state.hide_clusters or DELTA_FRACTION <= 0:
            return False
        n_in = 0 if cid not in incoming else incoming[cid].num_rows
        changed = old.delta_rows + old.deleted_count + n_in + len(gone_rows.get(cid, ()))
        return changed <= DELTA_FRACTION * (old.row_count - old.delta_rows)

    def append(cid: int) -> tuple[ClusterEntry, pa.Table, dict[str, list[str]]]:
        """A delta segment of the incoming rows, the deleted rows merged;
        with the id rows of the cluster's new rows (``row`` continues)."""
        old = by_id[cid]
        update: dict[str, object] = {}
        new_ids = pa.table(
            {
                "id": pa.array([], pa.string()),
                "cluster": pa.array([], pa.int32()),
                "row": pa.array([], pa.int32()),
            }
        )
        kinds: dict[str, list[str]] = {}
        if cid in incoming:
            part = conform_table(incoming[cid], spec)
            # the load's staged segments as they are, else a delta written here
            pieces = attach.get(cid) or [write_cluster(store, spec, namespace, tag, int(cid), part)]
            n = part.num_rows
            stats = old.stats
            for p in pieces:
                stats = merge_stats(stats, p.stats)
            update.update(
                deltas=[*old.deltas, *(p.segment for p in pieces)],
                delta_rows=old.delta_rows + n,
                row_count=old.row_count + n,
                byte_size=old.byte_size + sum(p.byte_size for p in pieces),
                stats=stats,
            )
            new_ids = _appended_ids(part, cid, old.row_count)
            kinds = meta_fields_of(part.schema)
        hidden_rows = gone_rows.get(cid)
        if hidden_rows is not None and len(hidden_rows):
            before = (
                read_deleted(store, f"{prefix}/{old.deleted}")
                if old.deleted
                else np.zeros(0, np.int32)
            )
            rows = np.union1d(before, hidden_rows.astype(np.int32))
            rel = writer.new_name(".deleted.npy", tag)
            write_deleted(store, f"{prefix}/{rel}", rows)
            update.update(deleted=rel, deleted_count=len(rows))
        return old.model_copy(update=update), new_ids, kinds

    def rewrite(cid: int) -> tuple[ClusterEntry, pa.Array, dict[str, list[str]]] | None:
        """Merge and write one touched cluster (Parquet reads and writes release the GIL)."""
        pieces = []
        old = by_id.get(cid)
        if old is not None and old.row_count and not state.hide_clusters:
            t = read_cluster(store, prefix, old)
            pieces.append(t.filter(pc.invert(pc.is_in(t.column("id"), value_set=gone))))
        if cid in incoming:
            pieces.append(incoming[cid])
        merged = _concat(pieces, spec)
        if merged is None:
            return None
        entry = write_cluster(store, spec, namespace, tag, int(cid), merged)
        return entry, merged.column("id").combine_chunks(), meta_fields_of(merged.schema)

    # one touched cluster at a time per thread: memory follows the largest
    # clusters, not the change (a tail spread over the namespace touches all)
    rewritten: list[tuple[ClusterEntry, pa.Array]] = []
    appended: list[ClusterEntry] = []
    appended_ids: list[pa.Table] = []
    order = sorted(touched)
    deltas = {cid for cid in order if as_delta(cid)}
    # appends are small files (a delta, a deletion list): more threads than
    # cores keep the store busy; rewrites hold whole clusters: BUILD_THREADS
    threads = max(1, min(BUILD_THREADS if deltas != touched else IO_THREADS, len(touched)))
    total = len(order)
    finished = 0

    def guarded(
        cid: int,
    ) -> (
        tuple[ClusterEntry, pa.Array, dict[str, list[str]]]
        | tuple[ClusterEntry, pa.Table, dict[str, list[str]]]
        | None
    ):
        hooks.check()  # a cancel stops before the next cluster
        return append(cid) if cid in deltas else rewrite(cid)

    def write_lookup(new_rows: Sequence[pa.Table]) -> list[str]:
        """The version's id lookup: the base's rows minus those of rewritten
        clusters and the hidden rows of appended ones, plus ``new_rows``."""
        rewritten_ids = pa.array(sorted(touched - deltas), pa.int32())
        keep = pc.invert(pc.is_in(loc.column("cluster"), value_set=rewritten_ids))
        if len(gone) and deltas and hit is not None:  # hidden rows of appended clusters leave it
            keep = pc.and_(keep, pc.invert(hit))
        return _write_id_runs(store, spec, namespace, tag, base.id_files, loc_parts, keep,
                              new_rows)

    # only appends (a batch load's fold): the id lookup is known before any
    # file is written (new rows continue each cluster's numbering), so it is
    # sorted and written beside the appends
    early: Future[list[str]] | None = None
    ids_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vecstore-build-ids")
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vecstore-build")
    with ids_pool, pool:
        if deltas == touched:
            added = [
                _appended_ids(incoming[cid], cid, by_id[cid].row_count)
                for cid in order
                if cid in incoming
            ]
            early = ids_pool.submit(write_lookup, added)
        for cid, done in zip(order, pool.map(guarded, order), strict=True):
            finished += 1
            hooks.done(finished, total)
            if done is None:
                continue
            if cid in deltas:
                entry, id_rows, kinds_of = done
                assert isinstance(id_rows, pa.Table)
                appended.append(entry)
                appended_ids.append(id_rows)
                for name, kinds in kinds_of.items():
                    fields.setdefault(name, set()).update(kinds)
                continue
            entry, ids, kinds_of = done
            rewritten.append((entry, ids))
            for name, kinds in kinds_of.items():
                fields.setdefault(name, set()).update(kinds)
        id_files = early.result() if early is not None else None
    kept_clusters = [c for c in base.clusters if c.id not in touched]
    if id_files is None:
        id_files = write_lookup(
            [*appended_ids, *(_appended_ids(pa.table({"id": ids}), e.id, 0) for e, ids in rewritten)]
        )
    m = assemble_manifest(
        spec,
        namespace,
        base.version + 1,
        kept_clusters + appended + [e for e, _ in rewritten],
        centroids=base.centroids,
        id_files=id_files,
        fields={k: sorted(v) for k, v in fields.items()},
    )
    return m, len(rewritten) + len(appended)
