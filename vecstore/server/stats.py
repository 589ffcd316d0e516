"""``describe_index_stats`` with a filter: records per namespace that match.

Pinecone's serverless indexes refuse a filter here; vecstore counts. Each
visible namespace version is scanned cluster by cluster: clusters whose
metadata statistics prove they hold no match are skipped, the others are
masked with the query path's own filter evaluation (and its cache).
"""

from __future__ import annotations

from typing import Any

from vecstore.api import Index
from vecstore.query.filters import canonical, may_match, parse_filter


def filtered_counts(index: Index, flt: dict[str, Any]) -> dict[str, int]:
    node = parse_filter(flt)  # FilterError (400) for a malformed filter
    stats = index.describe_index_stats()
    if node is None:
        return {ns: s.vector_count for ns, s in stats.namespaces.items()}
    reader = index.reader
    canon = canonical(node)
    out: dict[str, int] = {}
    for ns in stats.namespaces:
        state = reader.namespace_state(ns)
        if state is None:
            continue
        total = 0
        deleted = reader.deleted_rows(state) or {}  # rows of delta'd clusters no longer live
        for cluster in state.manifest.clusters:
            if not cluster.row_count or not may_match(node, cluster.stats, cluster.row_count):
                continue
            pos = state.position_of[cluster.id]
            key = state.segment_keys[pos]
            mask = reader.source.mask(key, node, canon, cluster.row_count, state.meta_columns)
            hidden = deleted.get(pos)
            total += int(mask.sum()) - (0 if hidden is None else int(mask[hidden].sum()))
        out[ns] = total
    return out
