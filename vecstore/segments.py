"""Segment, centroid and id-lookup files: immutable, written once, named by UUID."""

from __future__ import annotations

import io
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vecstore.errors import FormatError
from vecstore.schemas import ClusterEntry, Manifest
from vecstore.schemas.arrow import ID_INDEX_SCHEMA
from vecstore.storage import Store

SEGMENT_COMPRESSION = "zstd"
# Segment files are cut into row groups of about this many bytes of vectors
# (a power of two of rows within [MIN, MAX]): a fetch reads the row group
# holding a record, not the whole segment; scans read every row group.
ROW_GROUP_VECTOR_BYTES = 32 * 1024
MIN_ROW_GROUP_ROWS = 64
MAX_ROW_GROUP_ROWS = 1024
SPARSE_ROW_GROUP_ROWS = 256


def segment_row_group_rows(dimension: int | None) -> int:
    """Rows per row group of a segment file (dense: ~32 KiB of vectors, at least
    64 rows: 64 rows of 128 or 384 dimensions, 1,024 of 8; sparse: 256 rows).

    Reading one row group costs ~0.1 ms of fixed overhead per column chunk
    plus decoding its vectors: at this size fetching a record costs ~0.2 ms,
    against ~0.35 ms at 128 rows and ~3.5 ms for a whole 4,096-row segment,
    while reading a whole segment (a scan) gets ~20% slower than with one
    row group."""
    if not dimension:
        return SPARSE_ROW_GROUP_ROWS
    rows = max(1, ROW_GROUP_VECTOR_BYTES // (4 * int(dimension)))
    rows = 1 << (rows.bit_length() - 1)  # a power of two, rounded down
    return int(min(MAX_ROW_GROUP_ROWS, max(MIN_ROW_GROUP_ROWS, rows)))


def new_name(suffix: str, owner: str = "") -> str:
    """A fresh data file name; ``owner`` (an import id) prefixes it so that
    cleanup finds a failed import's orphans by listing ``data/``."""
    tag = f"{owner}-" if owner else ""
    return f"data/{tag}{uuid.uuid4().hex}{suffix}"


def write_table(
    store: Store, key: str, table: pa.Table, *, row_group_size: int | None = None
) -> int:
    """Write a Parquet file and return its size in bytes."""
    buf = io.BytesIO()
    # vectors are float noise to a compressor: store them plain (fast to write
    # and to scan); everything else zstd
    compression = {
        name: ("none" if name in ("values", "sparse_values") else SEGMENT_COMPRESSION)
        for name in table.column_names
    }
    pq.write_table(
        table,
        buf,
        compression=compression,
        row_group_size=row_group_size,
        use_dictionary=[
            n for n in table.column_names if n not in ("values", "sparse_values", "id", "metadata")
        ],
        write_statistics=False,
    )
    data = buf.getvalue()
    store.write_new(key, data)  # a data file under a fresh name
    return len(data)


# Tables of at most this many rows (a tiny namespace's segment and id file)
# are written without compression or dictionary pages: at that size those
# save a few hundred bytes, and their fixed cost per column is most of the
# write's CPU (issue 9: 10,000 tiny namespaces).
SMALL_TABLE_ROWS = 512


def write_small_table(
    store: Store, key: str, table: pa.Table, *, row_group_size: int | None = None
) -> int:
    """:func:`write_table` of a small table: plain pages, no dictionaries, no
    statistics (readers see the same Parquet columns); returns the size."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="none",
        row_group_size=row_group_size,
        use_dictionary=False,
        write_statistics=False,
    )
    data = sink.getvalue().to_pybytes()
    store.write_new(key, data)  # a data file under a fresh name
    return len(data)


def read_table(store: Store, key: str, columns: list[str] | None = None) -> pa.Table:
    """Read a Parquet file (only ``columns`` if given; missing ones are skipped).

    A whole file is fetched in one read and decoded from memory (2-3x less
    CPU than through a file object for the small files a fold or a rebuild
    reads by the hundred; one request instead of a footer read and ranged
    reads on an object store); a column subset reads only its ranges."""
    if columns is None:
        data = store.read_bytes(key)
        return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)
    with store.open_input(key) as f:
        pf = pq.ParquetFile(f)
        if columns is not None:
            have = set(pf.schema_arrow.names)
            columns = [c for c in columns if c in have]
        # callers read many files at once on their own threads (a fold's
        # staged segments, a rebuild's clusters): no second pool per file
        return pf.read(columns=columns, use_threads=False)


def dense_matrix(column: pa.ChunkedArray | pa.Array, dimension: int) -> np.ndarray:
    """(n, dimension) float32 view of a fixed_size_list<float32> column
    (several chunks are joined first: one copy, contiguous)."""
    if isinstance(column, pa.ChunkedArray):
        arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    else:
        arr = column
    if len(arr) == 0:
        return np.zeros((0, dimension), dtype=np.float32)
    if not pa.types.is_fixed_size_list(arr.type):
        raise FormatError(f"expected fixed_size_list<float32>[{dimension}], got {arr.type}")
    flat = arr.values  # the whole child array: ignores the slice's offset and length
    if arr.offset or len(flat) != len(arr) * dimension:
        flat = arr.flatten()  # a slice (at any offset): only its own values
    out: np.ndarray = flat.to_numpy(zero_copy_only=False).reshape(len(arr), dimension)
    return out


def fixed_list(matrix: np.ndarray) -> pa.FixedSizeListArray:
    """A fixed_size_list<float32> array over a (n, d) float32 matrix (no copy)."""
    m = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), m.shape[1])


def write_centroids(store: Store, key: str, centroids: np.ndarray) -> int:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(centroids, dtype=np.float32), allow_pickle=False)
    data = buf.getvalue()
    store.write_new(key, data)  # a data file under a fresh name
    return len(data)


def read_centroids(store: Store, key: str) -> np.ndarray:
    data = store.read_bytes(key)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as exc:
        raise FormatError(f'Centroid file "{store.url(key)}" is not valid: {exc}') from exc
    return np.asarray(arr, dtype=np.float32)


# ------------------------------------------------- clusters with delta segments


def read_deleted(store: Store, key: str) -> np.ndarray:
    """The row numbers of a cluster's ``deleted`` file (sorted int32)."""
    arr: np.ndarray = np.load(io.BytesIO(store.read_bytes(key)), allow_pickle=False)
    return arr.astype(np.int32, copy=False)


def write_deleted(store: Store, key: str, rows: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.unique(np.asarray(rows, dtype=np.int32)), allow_pickle=False)
    store.write_bytes(key, buf.getvalue())


def read_cluster(store: Store, prefix: str, entry: ClusterEntry, *, live: bool = True) -> pa.Table:
    """Every row of a cluster: its segment then its deltas, one numbering;
    ``live``: without the deleted rows (then row numbers no longer apply)."""
    parts = [read_table(store, f"{prefix}/{rel}") for rel in entry.parts()]
    t = parts[0] if len(parts) == 1 else pa.concat_tables(parts, promote_options="permissive")
    if live and entry.deleted:
        keep = np.ones(t.num_rows, dtype=bool)
        keep[read_deleted(store, f"{prefix}/{entry.deleted}")] = False
        t = t.filter(pa.array(keep))
    return t


# ------------------------------------------------ id lookups kept in a segment
# A new one-cluster namespace of at most SMALL_TABLE_ROWS rows (every tiny
# namespace of a multitenant import) writes no id file: its manifest's
# ``id_files`` names its segment, whose ``id`` column is the lookup (rows in
# segment order, sorted here when read). One file less per namespace
# (docs/scale.md "Id lookups kept in the segment").


def segment_cluster(manifest: Manifest, rel: str) -> int | None:
    """The cluster id whose segment ``rel`` is, when an ``id_files`` entry
    names a segment of ``manifest``; None for an id file."""
    for c in manifest.clusters:
        if c.segment == rel:
            return c.id
    return None


def segment_id_rows(ids: pa.Array | pa.ChunkedArray, cluster: int) -> pa.Table:
    """The (id, cluster, row) lookup of a segment's ``ids`` (in segment
    order), sorted by id as an id file is."""
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    order = pc.sort_indices(ids)
    return pa.Table.from_arrays(
        [
            ids.take(order),
            pa.array(np.full(len(ids), cluster, np.int32)),
            order.cast(pa.int32()),
        ],
        schema=ID_INDEX_SCHEMA,
    )


def read_id_rows(store: Store, prefix: str, manifest: Manifest, rel: str) -> pa.Table:
    """One ``id_files`` entry of ``manifest`` as (id, cluster, row) rows:
    the id file, or the lookup of the segment it names."""
    cid = segment_cluster(manifest, rel)
    if cid is None:
        return read_table(store, f"{prefix}/{rel}")
    return segment_id_rows(read_table(store, f"{prefix}/{rel}", ["id"]).column("id"), cid)
