"""Materialise result rows: ids, values, sparse values and metadata of refs.

Only the rows that are returned are touched: ids from the id column a scan
cached, or else (and ``values`` / ``metadata`` / ``sparse_values`` when
asked) from the row groups holding the rows; ``json.loads`` runs once per
returned row, never over a whole segment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecstore.errors import FormatError
from vecstore.query.planner import NamespaceState
from vecstore.query.segdata import SegmentSource, StringColumn
from vecstore.refs import CLUSTER_ROW
from vecstore.schemas import SparseValues


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
    known_ids: list[str] | None = None,
) -> Rows:
    """The stored fields of ``refs`` in their order. ``dense``: the index has values.

    Ids come from the segment's id column a scan cached (or ``known_ids``,
    when the caller looked the refs up by id); values from its cached
    matrix. Anything else is read from the row groups holding the rows only
    (:meth:`SegmentSource.row_fields`)."""
    n = len(refs)
    ids: list[str] = list(known_ids) if known_ids is not None else [""] * n
    vals: list[list[float] | None] = [None] * n
    sps: list[SparseValues | None] = [None] * n
    metas: list[dict[str, Any] | None] = [None] * n
    if n == 0:
        return Rows(ids, vals, sps, metas)
    r64 = np.asarray(refs, dtype=np.int64)
    pos_arr, row_arr = CLUSTER_ROW.split(r64)
    positions, rows = pos_arr.tolist(), row_arr.tolist()
    groups: dict[int, list[int]] = {}
    for slot, pos in enumerate(positions):
        groups.setdefault(pos, []).append(slot)
    names = [] if known_ids is not None else ["id"]
    if values and dense:
        names.append("values")
    if sparse:
        names.append("sparse_values")
    if metadata:
        names.append("metadata")
    if not names:
        return Rows(ids, vals, sps, metas)
    for pos, slots in groups.items():
        key = state.segment_keys[pos]
        got = source.row_fields(key, [rows[i] for i in slots], names, dimension)
        if "id" in got:
            for slot, value in zip(slots, got["id"], strict=True):
                if value is None:
                    raise FormatError(f'Segment "{source.store.url(key)}" has no id column')
                ids[slot] = value
        if "values" in got:
            for slot, vec in zip(slots, got["values"], strict=True):
                if vec is None:
                    raise FormatError(f'Segment "{source.store.url(key)}" has no values column')
                vals[slot] = vec
        for slot, sv in zip(slots, got.get("sparse_values", ()), strict=False):
            if sv is not None:
                sps[slot] = SparseValues.model_construct(
                    indices=list(sv["indices"]), values=list(sv["values"])
                )
        for slot, text in zip(slots, got.get("metadata", ()), strict=False):
            if text is not None:
                metas[slot] = json.loads(text)
    return Rows(ids, vals, sps, metas)


def ids_of(source: SegmentSource, state: NamespaceState, refs: list[int]) -> list[str]:
    """The ids of ``refs`` (Python ints), from the id columns scans cached.

    The lean path of a query returning ids only: a plain Python loop over
    the few refs (no arrays); falls back to :func:`materialize` when a
    segment's id column is not in memory."""
    cols: dict[int, StringColumn] = {}
    out: list[str] = []
    keys = state.segment_keys
    for ref in refs:
        pos, row = CLUSTER_ROW.split_one(ref)
        col = cols.get(pos)
        if col is None:
            col = source.cache.get((keys[pos], "ids"))
            if col is None:
                return materialize(
                    source,
                    state,
                    np.asarray(refs, dtype=np.int64),
                    dense=True,
                    values=False,
                    sparse=False,
                    metadata=False,
                    dimension=0,
                ).ids
            cols[pos] = col
        out.append(col.get(row))
    return out
