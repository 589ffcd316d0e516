"""The import plan: chunks of source files and per-namespace sizing.

Pure data and arithmetic; no IO, no Dask. Everything here pickles and is
small, so it travels to workers as task arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from schemas import IndexSpec
from vecstore import kmeans, layout
from vecstore.storage import Store

# A scan task reads about this many bytes of Parquet (whole row groups).
CHUNK_BYTES = 96 * 1024 * 1024
# A gather task holds about this many bytes of decoded rows.
BUCKET_BYTES = 96 * 1024 * 1024
# Rows per dedup partition (ids + 16-byte digests: small).
PARTITION_ROWS = 2_000_000
# Sparse indexes: rows per plain segment.
SPARSE_SEGMENT_ROWS = kmeans.TARGET_PER_CLUSTER
# Rows per Arrow batch inside a task: cancel is checked between batches.
BATCH_ROWS = 32_768
SPARSE_CLUSTER_STRIDE = 1 << 20


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

    @staticmethod
    def make(source: Store, store: Store, spec: IndexSpec, job_id: str, error_mode: str) -> Context:
        return Context(
            source=source,
            store=store,
            spec=spec,
            job_id=job_id,
            error_mode=error_mode,
            cancel_event=f"vecstore-cancel-{job_id}",
            staging=layout.staging_prefix(spec.name, job_id),
            rejects=layout.rejects_prefix(spec.name, job_id),
        )


def chunk_file(
    ns: str, file_idx: int, key: str, row_groups: list[int], size: int, start_index: int
) -> list[Chunk]:
    """Group a file's row groups into chunks of about CHUNK_BYTES."""
    total_rows = sum(row_groups) or 1
    per_row = size / total_rows
    chunks: list[Chunk] = []
    group: list[int] = []
    first = row = 0
    acc = 0.0
    for i, n in enumerate(row_groups):
        if group and acc + n * per_row > CHUNK_BYTES:
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
                  int(acc))
        )
    return chunks


def row_bytes(spec: IndexSpec) -> int:
    """Rough decoded size of one row, for sizing buckets."""
    dense = 4 * (spec.dimension or 0)
    sparse = 8 * 64 if spec.kind != "dense" else 0
    return dense + sparse + 160


def plan_namespace(
    ns: str,
    files: list[tuple[str, int, list[int]]],
    spec: IndexSpec,
    *,
    target_per_cluster: int = kmeans.TARGET_PER_CLUSTER,
) -> NamespacePlan:
    """``files``: (key, size, row-group row counts) sorted by key."""
    chunks: list[Chunk] = []
    for file_idx, (key, size, groups) in enumerate(files):
        chunks.extend(chunk_file(ns, file_idx, key, groups, size, len(chunks)))
    rows = sum(c.num_rows for c in chunks)
    nbytes = sum(size for _, size, _ in files)
    k = 1 if spec.kind == "sparse" else kmeans.choose_k(rows, target_per_cluster)
    buckets = max(1, math.ceil(rows * row_bytes(spec) / BUCKET_BYTES))
    if spec.kind != "sparse":
        buckets = min(buckets, k)
    partitions = max(1, math.ceil(rows / PARTITION_ROWS))
    sample = kmeans.sample_size(k)
    fraction = 1.0 if rows <= sample else sample / rows
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
    )


def bucket_of_cluster(cluster: int, k: int, buckets: int) -> int:
    """Contiguous ranges of cluster ids per bucket."""
    return min(buckets - 1, cluster * buckets // max(k, 1))


def ns_part(ns: str) -> str:
    return layout.ns_dir(ns)


def shuffle_dir(ctx: Context, ns: str, bucket: int) -> str:
    return f"{ctx.staging}/shuffle/{ns_part(ns)}/{bucket:06d}"


def keys_dir(ctx: Context, kind: str, ns: str, partition: int) -> str:
    return f"{ctx.staging}/{kind}/{ns_part(ns)}/{partition:06d}"


def rejects_file(ctx: Context, ns: str, name: str) -> str:
    return f"{ctx.rejects}/{ns_part(ns)}/{name}.parquet"
