"""Full records of a namespace version's clusters, by id or by filter.

What a write needs to resolve an update-by-id (the current record) or a
delete / update by filter (the matching records) against the clusters. It
reads segment files directly (whole files, with the statistics pruning the
clusters a filter cannot match), which is enough for writes; queries keep
their own cached path (:mod:`vecstore.reader`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore import layout
from vecstore.query.filters import Node, evaluate, may_match
from vecstore.schemas import IndexSpec, Manifest
from vecstore.schemas.arrow import meta_column
from vecstore.segments import read_cluster, read_id_rows
from vecstore.storage import Store


def id_location_parts(store: Store, manifest: Manifest) -> list[pa.Table]:
    """The (id, cluster, row) rows of each of the version's id files, in order."""
    prefix = layout.namespace_prefix(manifest.index, manifest.namespace)
    return [read_id_rows(store, prefix, manifest, rel) for rel in manifest.id_files]


def id_locations(store: Store, manifest: Manifest) -> pa.Table:
    """Every (id, cluster, row) of the version's id files."""
    return joined_locations(id_location_parts(store, manifest))


def joined_locations(parts: Sequence[pa.Table]) -> pa.Table:
    """:func:`id_location_parts` as one table (empty, typed, if none)."""
    if not parts:
        return pa.table(
            {
                "id": pa.array([], pa.string()),
                "cluster": pa.array([], pa.int32()),
                "row": pa.array([], pa.int32()),
            }
        )
    return pa.concat_tables(parts)


def cluster_rows_by_id(
    store: Store, spec: IndexSpec, manifest: Manifest, ids: Sequence[str]
) -> pa.Table | None:
    """The cluster rows of ``ids`` present in the version (any order)."""
    if not ids or not manifest.id_files:
        return None
    loc = id_locations(store, manifest)
    loc = loc.filter(pc.is_in(loc.column("id"), value_set=pa.array(list(ids), pa.string())))
    if loc.num_rows == 0:
        return None
    by_id = {c.id: c for c in manifest.clusters}
    clusters = np.asarray(loc.column("cluster").to_numpy())
    rows = np.asarray(loc.column("row").to_numpy())
    parts = []
    for cid in np.unique(clusters).tolist():
        entry = by_id.get(int(cid))
        if entry is None:
            continue
        prefix = layout.namespace_prefix(manifest.index, manifest.namespace)
        t = read_cluster(store, prefix, entry, live=False)  # rows: one numbering
        parts.append(t.take(pa.array(rows[clusters == cid])))
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")


def cluster_rows_by_filter(
    store: Store,
    spec: IndexSpec,
    manifest: Manifest,
    node: Node | None,
    *,
    exclude: Callable[[str], bool] | None = None,
) -> pa.Table | None:
    """The cluster rows matching ``node`` (all rows for None), minus the ids
    ``exclude`` says are shadowed."""
    parts = []
    for entry in manifest.clusters:
        if entry.row_count == 0:
            continue
        if node is not None and not may_match(node, entry.stats, entry.row_count):
            continue
        prefix = layout.namespace_prefix(manifest.index, manifest.namespace)
        t = read_cluster(store, prefix, entry)  # live rows only
        keep = np.ones(t.num_rows, dtype=bool)
        if node is not None:
            names = set(t.column_names)

            def get(
                field_: str, kind: str, t: pa.Table = t, names: set[str] = names
            ) -> pa.Array | None:
                name = meta_column(field_, kind)
                return t.column(name).combine_chunks() if name in names else None

            keep &= evaluate(node, get, t.num_rows)
        if exclude is not None and keep.any():
            ids = t.column("id").to_pylist()
            keep &= np.fromiter((not exclude(i) for i in ids), dtype=bool, count=len(ids))
        if keep.any():
            parts.append(t.filter(pa.array(keep)))
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")
