"""Materialise result rows: ids, values, sparse values and metadata of refs.

Only the rows that are returned are touched: the id column (and, when asked,
``metadata`` / ``sparse_values``) of their segments is read through the
cache and ``take``-n; ``json.loads`` runs once per returned row, never over
a whole segment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from schemas import SparseValues
from vecstore.query.planner import NamespaceState
from vecstore.query.segdata import SegmentSource
from vecstore.query.topk import split_refs


@dataclass(frozen=True, slots=True)
class Rows:
    ids: list[str]
    values: list[list[float] | None]
    sparse: list[SparseValues | None]
    metadata: list[dict[str, Any] | None]


def materialize(
    source: SegmentSource,
    state: NamespaceState,
    refs: np.ndarray,
    *,
    dense: bool,
    values: bool,
    sparse: bool,
    metadata: bool,
    dimension: int,
) -> Rows:
    """The stored fields of ``refs`` in their order. ``dense``: the index has values."""
    n = len(refs)
    ids: list[str] = [""] * n
    vals: list[list[float] | None] = [None] * n
    sps: list[SparseValues | None] = [None] * n
    metas: list[dict[str, Any] | None] = [None] * n
    if n == 0:
        return Rows(ids, vals, sps, metas)
    positions, rows = split_refs(refs)
    order = np.argsort(positions, kind="stable")
    bounds = np.flatnonzero(np.diff(positions[order])) + 1
    for group in np.split(order, bounds):
        pos = int(positions[group[0]])
        key = state.segment_keys[pos]
        take = pa.array(rows[group])
        slots = group.tolist()
        for slot, value in zip(slots, source.ids(key).take(take).to_pylist(), strict=True):
            ids[slot] = value
        if values and dense:
            block = source.dense(key, dimension, state.manifest.metric)
            for slot, vec in zip(slots, block.matrix[rows[group]].tolist(), strict=True):
                vals[slot] = vec
        if sparse:
            col = source.column(key, "sparse_values")
            if col is not None:
                for slot, sv in zip(slots, col.take(take).to_pylist(), strict=True):
                    if sv is not None:
                        sps[slot] = SparseValues.model_construct(
                            indices=list(sv["indices"]), values=list(sv["values"])
                        )
        if metadata:
            col = source.column(key, "metadata")
            if col is not None:
                for slot, text in zip(slots, col.take(take).to_pylist(), strict=True):
                    if text is not None:
                        metas[slot] = json.loads(text)
    return Rows(ids, vals, sps, metas)
