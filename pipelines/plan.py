"""The import plan: chunks of source files and per-namespace sizing.

Pure data and arithmetic; no IO, no Dask. Everything here pickles and is
small, so it travels to workers as task arguments.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar, cast

from vecstore import kmeans, layout
from vecstore.errors import IngestError
from vecstore.pipelines.discover import FileInfo, SourceFile
from vecstore.schemas import IndexSpec, Manifest, RecordLayout
from vecstore.settings import Settings, settings
from vecstore.storage import Store

# A scan task reads about this many bytes of Parquet (whole row groups).
CHUNK_BYTES = 96 * 1024 * 1024
# A gather task holds about this many bytes of decoded rows.
BUCKET_BYTES = 96 * 1024 * 1024
# Rows per dedup partition (ids + 16-byte digests: small).
PARTITION_ROWS = 2_000_000
# A namespace's dedup partitions and gather buckets are spread over the
# cluster's worker threads (``spread``) while each keeps at least this many
# rows: one dedup of 1M rows is ~0.8 s of one worker while the others wait.
SPREAD_MIN_ROWS = 250_000
# Sparse indexes: rows per plain segment.
SPARSE_SEGMENT_ROWS = kmeans.TARGET_PER_CLUSTER
# Rows per Arrow batch inside a task: cancel is checked between batches.
BATCH_ROWS = 32_768
SPARSE_CLUSTER_STRIDE = 1 << 20
# A load into an existing namespace writes its staged segments in at least
# this many gather tasks (contiguous cluster ranges: a cluster stays in one).
LOAD_MIN_BUCKETS = 4
# A scan or sample task covers consecutive chunks of one namespace up to
# chunk_bytes() in all and at most this many chunks (many small files share
# a task; a task's arguments stay bounded whatever the number of files).
# (1,024: each task costs the driver's event loop ~3 ms, whatever its size --
# scheduling, its result's gather; 100,000 small files made 1,100 tasks fewer
# than at 256 and the driver's CPU fell from 13.0 to 9.1 s: docs/scale.md)
UNIT_CHUNKS = 1024
UNIT_SPLIT = 8
# Footer inspection: at most this many files per task, at least
# INSPECT_MIN_FILES, and about UNIT_SPLIT tasks per worker thread between the two.
INSPECT_FILES = 1024
INSPECT_MIN_FILES = 64


def inspect_batch(files: int, spread: int) -> int:
    """Files per inspection task, for ``files`` on ``spread`` worker threads."""
    per = math.ceil(files / (UNIT_SPLIT * max(1, spread)))
    return max(INSPECT_MIN_FILES, min(INSPECT_FILES, per))
# Small namespaces (at most PACK_ROWS rows and PACK_FILES files) are packed:
# one task validates, deduplicates, clusters and writes consecutive small
# namespaces, up to PACK_GROUP_ROWS rows and PACK_GROUP_FILES files per task.
# VECSTORE_PACK_ROWS (default PACK_ROWS) = 0 turns packing off. (docs/scale.md: the arithmetic.)
PACK_ROWS = 50_000
PACK_FILES = 64
PACK_BYTES = 64 * 1024 * 1024  # source bytes of a packed namespace (its scratch is in memory)
PACK_GROUP_ROWS = 100_000
PACK_GROUP_FILES = 256

# Operator overrides (VECSTORE_CHUNK_BYTES... in vecstore.settings), read each
# time an import is planned (in the driver's process), so tests and operators
# can force many chunks, buckets or dedup partitions on small data, or lower
# the import limits. Their defaults (vecstore.settings) equal the values above
# and discover's limits (tests/unit/test_settings.py checks).


def chunk_bytes() -> int:
    return settings().chunk_bytes


def bucket_bytes() -> int:
    return settings().bucket_bytes


def partition_rows() -> int:
    return settings().partition_rows


def pack_rows() -> int:
    """Namespaces of at most this many rows are packed (VECSTORE_PACK_ROWS; 0: never)."""
    return settings().pack_rows


def records_per_cluster() -> int:
    """The top of the records-per-cluster band (``kmeans.records_per_cluster``
    keeps clusters within [target/4, target]; DESIGN: 1-4k, overridable)."""
    return settings().records_per_cluster


def limits() -> dict[str, int]:
    """Keyword arguments of :func:`vecstore.pipelines.discover.discover`: the import limits."""
    return settings().limits()


T = TypeVar("T")


class Shipped(Generic[T]):
    """A task argument pickled once, by the driver, into bytes.

    Dask's scheduler unpickles every task's arguments and pickles them again
    for the worker, and the client walks tuples and lists looking for
    futures: for lists of small objects (a unit's 256 chunks, an inspection
    batch's files, a pack task's namespace plans) that was ~10 us per object
    in the driver process (100,000 small files: seconds of the scheduler's
    CPU). Shipped, the scheduler moves one bytes object; the task calls
    :func:`unship`. Tasks whose results are lists of small objects return
    them the same way (``inspect_many``, ``fold``, ``pack``): Dask's comms
    walk a list of 1,024 small objects on both sides (100,000 files: the
    driver's event loop spent 8.6 s waiting on the inspection results'
    gathers, 0.7 s shipped; its CPU 5.0 -> 2.6 s)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    @classmethod
    def of(cls, value: T) -> Shipped[T]:
        return cls(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Shipped, (self.data,))

    def get(self) -> T:
        return cast(T, pickle.loads(self.data))  # noqa: S301 - our own driver's bytes


# a task's argument as the driver sends it (Shipped) or as tests and
# in-process callers pass it (plain)
ShippedOr: TypeAlias = Shipped[T] | T


def unship(value: ShippedOr[T]) -> T:
    """A task's argument: unpickled when :class:`Shipped`, else as given
    (tests and in-process callers pass plain values)."""
    return value.get() if isinstance(value, Shipped) else value


@dataclass(frozen=True)
class Chunk:
    """Whole row groups of one source file."""

    ns: str
    index: int  # position within the namespace, in (file, row group) order
    file_idx: int  # position of the file within the namespace (sorted by key)
    key: str  # source key, relative to the import root (shown in messages)
    row_groups: tuple[int, ...]
    first_row: int  # file row number of the first row of the first row group
    num_rows: int
    nbytes: int
    # the chunk is the whole file (its only chunk): a small one is read in one
    # call (reading.SMALL_FILE_BYTES)
    whole: bool = False
    # the whole file's rows decoded at inspection: (staging key, first row) (decoded.py)
    decoded: tuple[str, int] | None = None


@dataclass(frozen=True)
class Sizing:
    """What a scan task needs of its namespace (not the namespace's file list)."""

    ns: str
    k: int
    buckets: int
    partitions: int


@dataclass(frozen=True)
class NamespacePlan:
    ns: str
    files: tuple[str, ...]  # file_idx -> key
    chunks: tuple[Chunk, ...]
    rows: int
    nbytes: int
    k: int  # clusters (1 for sparse)
    buckets: int
    partitions: int
    sample_fraction: float
    # a batch load into a namespace that exists (docs/loads-pipeline.md): no
    # sampling or training, rows go to the existing centroids (``centroids``,
    # the visible manifest's file, relative to the namespace; None: left
    # unassigned, ``k`` 0); the gather writes no id lookup
    existing: bool = False
    centroids: str | None = None

    @property
    def sizing(self) -> Sizing:
        return Sizing(self.ns, self.k, self.buckets, self.partitions)

    @property
    def packable(self) -> bool:
        return self.packable_under(pack_rows())

    def packable_under(self, max_rows: int) -> bool:
        """``packable`` with ``pack_rows()`` read once by the caller."""
        return (
            0 < self.rows <= max_rows
            and len(self.files) <= PACK_FILES
            and self.nbytes <= PACK_BYTES
        )


def units(chunks: Sequence[Chunk], max_bytes: int | None = None) -> list[tuple[Chunk, ...]]:
    """Consecutive chunks grouped into task units: at most ``max_bytes``
    (chunk_bytes()) and an eighth of the namespace (UNIT_SPLIT) in all, unless
    one chunk alone is larger, and at most UNIT_CHUNKS chunks."""
    limit = chunk_bytes() if max_bytes is None else max_bytes
    # a namespace is split into at least UNIT_SPLIT units when it has that
    # many chunks: small imports keep every worker busy
    limit = min(limit, max(1, math.ceil(sum(c.nbytes for c in chunks) / UNIT_SPLIT)))
    out: list[tuple[Chunk, ...]] = []
    cur: list[Chunk] = []
    acc = 0
    for c in chunks:
        if cur and (acc + c.nbytes > limit or len(cur) >= UNIT_CHUNKS):
            out.append(tuple(cur))
            cur, acc = [], 0
        cur.append(c)
        acc += c.nbytes
    if cur:
        out.append(tuple(cur))
    return out


def plan_inspected(
    ns: str, infos: Iterable[FileInfo], spec: IndexSpec, **kwargs: Any
) -> NamespacePlan:
    """:func:`plan_namespace` of a namespace's inspected files (any order)."""
    infos = list(infos)
    files = sorted((i.key, i.size, list(i.row_groups)) for i in infos)
    decoded = {i.key: i.decoded for i in infos if i.decoded is not None}
    return plan_namespace(ns, files, spec, decoded=decoded, **kwargs)


# Namespaces whose listing shows them tiny are inspected, planned and packed
# in one task (tasks.fold; docs/scale.md "Inspection folded into the pack
# task"): at most this many source bytes each, groups of at most
# PACK_GROUP_FILES files and FOLD_GROUP_BYTES bytes.
FOLD_NS_BYTES = 256 * 1024
FOLD_GROUP_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class FoldGroup:
    """Consecutive tiny namespaces as listed (not yet inspected), with what
    the driver's planning reads: the settings (without secrets:
    ``Settings.without_secrets``), the cluster's threads and the packing
    threshold."""

    namespaces: list[tuple[str, list[SourceFile]]]
    knobs: Settings
    spread: int
    max_rows: int


def fold_groups(
    namespaces: Mapping[str, Sequence[SourceFile]],
) -> tuple[list[list[tuple[str, list[SourceFile]]]], list[str]]:
    """The namespaces (in order) a fold task takes, grouped in runs of
    consecutive ones (at most PACK_GROUP_FILES files, FOLD_GROUP_BYTES
    bytes), and the others: a namespace of at most PACK_FILES files and
    FOLD_NS_BYTES listed bytes (a size the listing did not give: not folded)."""
    groups: list[list[tuple[str, list[SourceFile]]]] = []
    rest: list[str] = []
    group: list[tuple[str, list[SourceFile]]] = []
    files = size = 0
    for ns, fs in namespaces.items():
        nbytes = sum(f.size for f in fs)
        if not fs or len(fs) > PACK_FILES or nbytes > FOLD_NS_BYTES or any(f.size <= 0 for f in fs):
            rest.append(ns)
            continue
        if group and (files + len(fs) > PACK_GROUP_FILES or size + nbytes > FOLD_GROUP_BYTES):
            groups.append(group)
            group, files, size = [], 0, 0
        group.append((ns, list(fs)))
        files += len(fs)
        size += nbytes
    if group:
        groups.append(group)
    return groups, rest


def pack_groups(plans: Sequence[NamespacePlan]) -> list[list[NamespacePlan] | NamespacePlan]:
    """``plans`` (in namespace order) as work items in the same order: a big
    namespace alone, runs of consecutive small ones grouped (a big namespace
    between two small ones ends a group, so the items stay in namespace order)."""
    out: list[list[NamespacePlan] | NamespacePlan] = []
    group: list[NamespacePlan] = []
    rows = files = 0
    max_rows = pack_rows()  # the environment read once, not per namespace

    def close() -> None:
        nonlocal group, rows, files
        if group:
            out.append(group)
        group, rows, files = [], 0, 0

    for p in plans:
        if not p.packable_under(max_rows):
            close()
            out.append(p)
            continue
        if group and (rows + p.rows > PACK_GROUP_ROWS or files + len(p.files) > PACK_GROUP_FILES):
            close()
        group.append(p)
        rows += p.rows
        files += len(p.files)
    close()
    return out


@dataclass(frozen=True)
class Context:
    """What every task of one import needs (pickles small: stores pickle as URLs)."""

    source: Store
    store: Store
    spec: IndexSpec
    job_id: str
    error_mode: str
    cancel_event: str
    seed: int = 0
    staging: str = field(default="")
    rejects: str = field(default="")
    attempt: int = 1
    owner: str = field(default="")  # prefix of this attempt's data file names
    # small source files read ahead per task on a remote source (readahead.py)
    read_ahead: int = 16

    def __post_init__(self) -> None:
        if not self.owner:  # data files must carry the import id (cleanup finds them by it)
            object.__setattr__(self, "owner", attempt_owner(self.job_id, self.attempt))

    @staticmethod
    def make(
        source: Store,
        store: Store,
        spec: IndexSpec,
        job_id: str,
        error_mode: str,
        attempt: int = 1,
        read_ahead: int = 16,
    ) -> Context:
        """Scratch files, data file names and the stop event are per attempt: a
        superseded attempt (a runner that was presumed dead but woke up) cannot
        mix its files or its stop signal with those of the attempt resuming it."""
        return Context(
            source=source,
            store=store,
            spec=spec,
            job_id=job_id,
            error_mode=error_mode,
            cancel_event=f"vecstore-cancel-{job_id}-{attempt}",
            staging=attempt_staging(spec.name, job_id, attempt),
            rejects=layout.rejects_prefix(spec.name, job_id),
            attempt=attempt,
            owner=attempt_owner(job_id, attempt),
            read_ahead=read_ahead,
        )


def attempt_staging(index: str, job_id: str, attempt: int) -> str:
    return f"{layout.staging_prefix(index, job_id)}/{attempt:06d}"


def attempt_owner(job_id: str, attempt: int) -> str:
    """Data files of an attempt are named ``<job_id>-a<attempt>-<uuid>...``
    (so ``<job_id>-`` still finds every file of the import)."""
    return f"{job_id}-a{attempt}"


def chunk_file(
    ns: str,
    file_idx: int,
    key: str,
    row_groups: list[int],
    size: int,
    start_index: int,
    max_bytes: int | None = None,
    decoded: tuple[str, int] | None = None,
) -> list[Chunk]:
    """Group a file's row groups into chunks of about ``max_bytes``
    (CHUNK_BYTES). ``decoded``: where the file's rows were decoded at
    inspection, carried by a chunk that is the whole file."""
    limit = CHUNK_BYTES if max_bytes is None else max_bytes
    total_rows = sum(row_groups) or 1
    per_row = size / total_rows
    chunks: list[Chunk] = []
    group: list[int] = []
    first = row = 0
    acc = 0.0
    for i, n in enumerate(row_groups):
        if group and acc + n * per_row > limit:
            chunks.append(
                Chunk(ns, start_index + len(chunks), file_idx, key, tuple(group), first,
                      row - first, int(acc))
            )
            group, first, acc = [], row, 0.0
        group.append(i)
        acc += n * per_row
        row += n
    if group:
        chunks.append(
            Chunk(ns, start_index + len(chunks), file_idx, key, tuple(group), first, row - first,
                  int(acc), whole=not chunks, decoded=None if chunks else decoded)
        )
    return chunks


def row_bytes(spec: IndexSpec) -> int:
    """Rough decoded size of one row, for sizing buckets."""
    dense = 4 * (spec.dimension or 0)
    sparse = 8 * 64 if spec.record_layout != RecordLayout.DENSE else 0
    return dense + sparse + 160


def plan_namespace(
    ns: str,
    files: list[tuple[str, int, list[int]]],
    spec: IndexSpec,
    *,
    target_per_cluster: int | None = None,
    existing: Manifest | None = None,
    knobs: Settings | None = None,
    spread: int = 1,
    decoded: Mapping[str, tuple[str, int]] | None = None,
) -> NamespacePlan:
    """``files``: (key, size, row-group row counts) sorted by key;
    ``decoded``: where small files' rows were decoded at inspection, by key.

    ``spread``: the cluster's worker threads. A large namespace gets at least
    that many dedup partitions and gather buckets (each of at least
    :data:`SPREAD_MIN_ROWS` rows, buckets at most ``k``), so those phases,
    one task per partition or bucket, use the whole cluster; its buckets
    are then a multiple of ``spread`` when each keeps a quarter of that.

    ``existing``: the visible manifest of the namespace a batch load writes
    into. Its rows are then assigned to the manifest's centroids (``k`` is
    its cluster count, no sample), or, without centroids (sparse, or never
    built), left unassigned (``k`` 0: rows are bucketed by chunk, the
    builder assigns them). Planning stays O(1) in the namespace's size.

    A namespace whose files hold no rows at all fails the import (both error
    modes) with ``No records found for namespace: <ns> (its files have 0
    rows)``: there is nothing to import, and saying that all rows were
    skipped would send the user looking for bad records.
    """
    chunks: list[Chunk] = []
    # ``knobs``: the settings, read once by a caller planning 10,000 namespaces
    knobs = knobs or settings()
    max_chunk = knobs.chunk_bytes
    for file_idx, (key, size, groups) in enumerate(files):
        where = decoded.get(key) if decoded else None
        chunks.extend(chunk_file(ns, file_idx, key, groups, size, len(chunks), max_chunk, where))
    rows = sum(c.num_rows for c in chunks)
    if rows == 0:
        raise IngestError(empty_namespace_message(ns), namespace=ns)
    nbytes = sum(size for _, size, _ in files)
    target = target_per_cluster or knobs.records_per_cluster
    sparse = spec.record_layout == RecordLayout.SPARSE
    centroids = None
    if existing is not None:
        centroids = None if sparse else existing.centroids
        k = 1 if sparse else (max(1, len(existing.clusters)) if centroids else 0)
    else:
        k = 1 if sparse else kmeans.choose_k(rows, target)
    buckets = max(1, math.ceil(rows * row_bytes(spec) / knobs.bucket_bytes))
    if existing is not None:
        # a load's write is per-cluster staged segments and no id file: spread
        # it over the workers even when its rows fit one bucket
        buckets = max(buckets, LOAD_MIN_BUCKETS)
    spread = max(1, spread)
    wide = min(spread, rows // SPREAD_MIN_ROWS)
    buckets = max(buckets, wide)
    rounded = -(-buckets // spread) * spread
    if wide > 1 and rows // rounded >= SPREAD_MIN_ROWS // 4:
        # a multiple of the threads: buckets of about equal rows
        # (tasks.train orders the clusters so) end together
        buckets = rounded
    if not sparse and k > 0:
        buckets = min(buckets, k)
    partitions = max(1, math.ceil(rows / knobs.partition_rows), wide)
    sample = kmeans.sample_size(max(k, 1))
    fraction = 0.0 if existing is not None else (1.0 if rows <= sample else sample / rows)
    return NamespacePlan(
        ns=ns,
        files=tuple(key for key, _, _ in files),
        chunks=tuple(chunks),
        rows=rows,
        nbytes=nbytes,
        k=k,
        buckets=buckets,
        partitions=partitions,
        sample_fraction=fraction,
        existing=existing is not None,
        centroids=centroids,
    )


def empty_namespace_message(ns: str) -> str:
    """Why a namespace whose files hold no rows fails the import."""
    return f"No records found for namespace: {ns or layout.DEFAULT_NAMESPACE_DIR} (its files have 0 rows)"


def ns_part(ns: str) -> str:
    return layout.ns_dir(ns)


def shuffle_dir(ctx: Context, ns: str, bucket: int) -> str:
    return f"{ctx.staging}/shuffle/{ns_part(ns)}/{bucket:06d}"


def keys_dir(ctx: Context, kind: str, ns: str, partition: int) -> str:
    return f"{ctx.staging}/{kind}/{ns_part(ns)}/{partition:06d}"


def rejects_file(ctx: Context, ns: str, name: str) -> str:
    return f"{ctx.rejects}/{ns_part(ns)}/{name}.parquet"
