"""Test support: write a whole namespace version in this process, without
the import pipeline (tests and the golden-file generators; not shipped in
the package)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore import kmeans, manifests
from vecstore.metadata import meta_fields_of, shred
from vecstore.schemas import ClusterEntry, IndexSpec, Manifest, RecordLayout
from vecstore.schemas.arrow import SPARSE_TYPE
from vecstore.segments import dense_matrix, fixed_list
from vecstore.writer import (
    assemble_manifest,
    write_centroids_file,
    write_cluster,
    write_id_file,
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


def merged_ids(state: Any, cluster_ids: Any, prefix: str = "") -> list[str]:
    """The live ids a view of clusters + write tail shows (a test oracle):
    the clusters' minus those the tail shadows, plus the tail's live ones."""
    live = set() if state.hide_clusters else {i for i in cluster_ids if i not in state.where}
    live.update(state.live_ids(prefix))
    return sorted(i for i in live if i.startswith(prefix))
