"""Writing namespace versions: segment files per cluster, id lookup files,
centroids, and the manifest that names them.

The import pipeline calls :func:`write_cluster` / :func:`write_id_file` from
Dask workers and :func:`assemble_manifest` on the driver.
:func:`write_namespace` does everything in one process for small data
(tests, examples, offline rebuilds of small namespaces).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore import kmeans, layout, manifests
from vecstore.metadata import column_stats, meta_fields_of, shred
from vecstore.schemas import ClusterEntry, IndexSpec, Manifest, MetadataField, RecordLayout
from vecstore.schemas.arrow import ID_INDEX_SCHEMA, SPARSE_TYPE, segment_schema
from vecstore.segments import (
    dense_matrix,
    fixed_list,
    segment_row_group_rows,
    write_centroids,
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
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(len(table), f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def write_cluster(
    store: Any, spec: IndexSpec, namespace: str, owner: str, cluster_id: int, table: pa.Table
) -> ClusterEntry:
    """Write one cluster's rows as an immutable segment file.

    The file is cut into row groups of :func:`segment_row_group_rows` rows so
    that fetching one record reads one small row group (files written before
    with a single row group read the same way)."""
    table = conform(table, spec)
    rel = new_name(".parquet", owner)
    size = write_table(
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
    t = t.sort_by("id")
    rel = new_name(".ids.parquet", owner)
    write_table(store, _ns_key(spec.name, namespace, rel), t)
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


def records_to_table(records: Sequence[Mapping[str, Any]], spec: IndexSpec) -> pa.Table:
    """A segment table from plain records ``{"id", "values", "sparse_values", "metadata"}``."""
    ids = pa.array([str(r["id"]) for r in records], pa.string())
    cols: dict[str, pa.Array] = {"id": ids}
    if spec.record_layout in (RecordLayout.DENSE, RecordLayout.HYBRID):
        d = int(spec.dimension or 0)
        mat = np.asarray([r["values"] for r in records], dtype=np.float32).reshape(len(records), d)
        cols["values"] = fixed_list(mat)
    if spec.record_layout in (RecordLayout.SPARSE, RecordLayout.HYBRID):
        cols["sparse_values"] = pa.array(
            [
                None
                if r.get("sparse_values") is None
                else {
                    "indices": list(r["sparse_values"]["indices"]),
                    "values": list(r["sparse_values"]["values"]),
                }
                for r in records
            ],
            SPARSE_TYPE,
        )
    metas = [r.get("metadata") for r in records]
    cols["metadata"] = pa.array([None if m is None else json.dumps(m) for m in metas], pa.string())
    cols.update(shred(metas))
    return pa.table(cols)


def write_namespace(
    store: Any,
    spec: IndexSpec,
    namespace: str,
    table: pa.Table,
    *,
    target_per_cluster: int = kmeans.TARGET_PER_CLUSTER,
    seed: int = 0,
    import_id: str | None = None,
    owner: str = "",
) -> Manifest:
    """Cluster, write and commit a whole namespace version in this process."""
    n = table.num_rows
    centroids_rel: str | None = None
    if spec.record_layout == RecordLayout.SPARSE:
        per = max(1, target_per_cluster)
        assignment = np.arange(n, dtype=np.int64) // per
    else:
        x = dense_matrix(table.column("values"), int(spec.dimension or 0))
        metric = spec.metric
        cents = kmeans.fit(x, kmeans.choose_k(n, target_per_cluster), seed=seed, metric=metric)
        assignment = kmeans.assign(x, cents, metric=metric).astype(np.int64)
        centroids_rel = write_centroids_file(store, spec, namespace, owner, cents)
    order = np.argsort(assignment, kind="stable")
    sorted_assign = assignment[order]
    table = table.take(pa.array(order))
    bounds = np.flatnonzero(np.diff(sorted_assign)) + 1
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    ends = np.concatenate([bounds, [n]]).astype(np.int64)
    entries: list[ClusterEntry] = []
    cl = np.empty(n, np.int32)
    rows = np.empty(n, np.int32)
    for s, e in zip(starts, ends, strict=True):
        if e <= s:
            continue
        cid = int(sorted_assign[s])
        entries.append(write_cluster(store, spec, namespace, owner, cid, table.slice(s, e - s)))
        cl[s:e] = cid
        rows[s:e] = np.arange(e - s, dtype=np.int32)
    id_files = (
        [write_id_file(store, spec, namespace, owner, table.column("id"), cl, rows)] if n else []
    )
    manifest = assemble_manifest(
        spec,
        namespace,
        manifests.next_version(store, spec.name, namespace),
        entries,
        centroids=centroids_rel,
        id_files=id_files,
        import_id=import_id,
        fields=meta_fields_of(table.schema),
    )
    return manifests.commit(store, manifest)
