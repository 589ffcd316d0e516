"""``describe_index_stats`` with a filter: records per namespace that match.

Pinecone's serverless indexes refuse a filter here; vecstore counts, with the
reader's :meth:`~vecstore.reader.Reader.count` (clusters pruned by their
metadata statistics and masked with the query path's filter evaluation,
logged writes not yet built included, overwritten and deleted rows not).
"""

from __future__ import annotations

from typing import Any

from vecstore.api import Index
from vecstore.query.filters import parse_filter


def filtered_counts(index: Index, flt: dict[str, Any]) -> dict[str, int]:
    parse_filter(flt)  # FilterError (400) for a malformed filter, even with no namespace
    out: dict[str, int] = {}
    for ns in index.describe_index_stats().namespaces:
        n = index.reader.count(ns, flt)
        if n is not None:
            out[ns] = n
    return out
