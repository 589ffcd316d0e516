"""Writing namespace versions: segment files per cluster, id lookup files,
centroids, and the manifest that names them.

The import pipeline calls :func:`write_cluster` / :func:`write_id_file` from
Dask workers and :func:`assemble_manifest` on the driver.
(tests/segwriter.py writes a whole namespace in one process for the tests.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore import layout
from vecstore.metadata import column_stats, meta_fields_of
from vecstore.schemas import ClusterEntry, IndexSpec, Manifest, MetadataField, RecordLayout
from vecstore.schemas.arrow import ID_INDEX_SCHEMA, segment_schema
from vecstore.segments import (
    SMALL_TABLE_ROWS,
    segment_row_group_rows,
    write_centroids,
    write_small_table,
    write_table,
)
from vecstore.segments import (
    new_name as new_name,  # re-exported: the builder names files through it (goldens pin it)
)


def _ns_key(index: str, namespace: str, rel: str) -> str:
    return f"{layout.namespace_prefix(index, namespace)}/{rel}"


def conform(table: pa.Table, spec: IndexSpec) -> pa.Table:
    """Order and type the columns of a segment table (shredded columns sorted)."""
    fields = meta_fields_of(table.schema)
    schema = segment_schema(spec.record_layout, spec.dimension, fields)
    cols = []
    names = set(table.column_names)
    for f in schema:
        if f.name in names:
            col = table.column(f.name)
            # a cast to the type a column has is a no-op that still costs a
            # compute call (10,000 tiny namespaces: 3 per segment)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(len(table), f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def write_cluster(
    store: Any, spec: IndexSpec, namespace: str, owner: str, cluster_id: int, table: pa.Table
) -> ClusterEntry:
    """Write one cluster's rows as an immutable segment file.

    The file is cut into row groups of :func:`segment_row_group_rows` rows so
    that fetching one record reads one small row group (files written before
    with a single row group read the same way). Small tables are written
    plain (:func:`~vecstore.segments.write_small_table`)."""
    table = conform(table, spec)
    rel = new_name(".parquet", owner)
    write = write_small_table if table.num_rows <= SMALL_TABLE_ROWS else write_table
    size = write(
        store,
        _ns_key(spec.name, namespace, rel),
        table,
        row_group_size=segment_row_group_rows(
            spec.dimension if spec.record_layout != RecordLayout.SPARSE else None
        ),
    )
    return ClusterEntry(
        id=cluster_id,
        segment=rel,
        row_count=table.num_rows,
        byte_size=size,
        stats=column_stats(table),
    )


def write_id_file(
    store: Any,
    spec: IndexSpec,
    namespace: str,
    owner: str,
    ids: pa.Array | pa.ChunkedArray,
    clusters: np.ndarray,
    rows: np.ndarray,
) -> str:
    """Write an id -> (cluster, row) lookup file sorted by id; returns its relative path."""
    t = pa.Table.from_arrays(
        [
            pa.chunked_array([ids]) if isinstance(ids, pa.Array) else ids,
            pa.array(clusters, pa.int32()),
            pa.array(rows, pa.int32()),
        ],
        schema=ID_INDEX_SCHEMA,
    )
    return write_id_table(store, spec, namespace, owner, t.sort_by("id"))


def write_id_table(
    store: Any, spec: IndexSpec, namespace: str, owner: str, table: pa.Table
) -> str:
    """Write (id, cluster, row) rows ALREADY sorted by id as a lookup file
    (a sorted file's rows filtered stay sorted); returns its relative path."""
    t = table.select(ID_INDEX_SCHEMA.names)
    if not t.schema.equals(ID_INDEX_SCHEMA):
        t = t.cast(ID_INDEX_SCHEMA)
    rel = new_name(".ids.parquet", owner)
    write = write_small_table if t.num_rows <= SMALL_TABLE_ROWS else write_table
    write(store, _ns_key(spec.name, namespace, rel), t)
    return rel


def write_centroids_file(
    store: Any, spec: IndexSpec, namespace: str, owner: str, centroids: np.ndarray
) -> str:
    rel = new_name(".centroids", owner)
    write_centroids(store, _ns_key(spec.name, namespace, rel), centroids)
    return rel


def assemble_manifest(
    spec: IndexSpec,
    namespace: str,
    version: int,
    clusters: Sequence[ClusterEntry],
    *,
    centroids: str | None,
    id_files: Sequence[str],
    import_id: str | None = None,
    fields: Mapping[str, Iterable[str]] | None = None,
) -> Manifest:
    ordered = sorted(clusters, key=lambda c: c.id)
    merged: dict[str, set[str]] = {}
    for name, kinds in (fields or {}).items():
        merged.setdefault(name, set()).update(kinds)
    return Manifest(
        index=spec.name,
        namespace=namespace,
        version=version,
        import_id=import_id,
        vector_type=spec.vector_type,
        metric=spec.metric,
        dimension=spec.dimension,
        record_count=sum(c.live_count for c in ordered),
        byte_size=sum(c.byte_size for c in ordered),
        centroids=centroids,
        clusters=list(ordered),
        id_files=list(id_files),
        fields=[MetadataField(name=n, kinds=sorted(k)) for n, k in sorted(merged.items())],
    )
