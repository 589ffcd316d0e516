"""Metadata in segment files: shredded into typed columns so filters are
vectorised, plus per-cluster statistics for pruning.

A record's metadata is a JSON object whose values are strings, numbers,
booleans or lists of strings. For each field and kind present, a segment
holds one column (see :mod:`vecstore.schemas.arrow`): ``m.num.<f>`` float64,
``m.str.<f>`` string, ``m.bool.<f>`` bool, ``m.list.<f>`` list<string>.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.schemas import STATS_MAX_VALUES, FieldStats
from vecstore.schemas.arrow import META_KINDS, meta_column, parse_meta_column

Meta = dict[str, Any]


def kind_of(value: Any) -> str | None:
    """The stored kind of a metadata value, or None if not storable."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "num"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "list"
    return None


def shred(metas: Sequence[Meta | None]) -> dict[str, pa.Array]:
    """Typed columns (name -> array) for a batch of parsed metadata objects."""
    cols: dict[tuple[str, str], list[Any]] = {}
    n = len(metas)
    for i, m in enumerate(metas):
        if not m:
            continue
        for field, value in m.items():
            kind = kind_of(value)
            if kind is None:
                continue
            col = cols.get((field, kind))
            if col is None:
                col = cols[(field, kind)] = [None] * n
            col[i] = float(value) if kind == "num" else value
    return {
        meta_column(field, kind): pa.array(values, type=META_KINDS[kind])
        for (field, kind), values in sorted(cols.items())
    }


def meta_fields_of(schema: pa.Schema) -> dict[str, list[str]]:
    """field -> kinds, from the shredded columns of a schema."""
    out: dict[str, list[str]] = {}
    for name in schema.names:
        parsed = parse_meta_column(name)
        if parsed:
            out.setdefault(parsed[0], []).append(parsed[1])
    return out


def column_stats(table: pa.Table) -> dict[str, FieldStats]:
    """Statistics per metadata field over all rows of ``table``."""
    acc: dict[str, dict[str, Any]] = {}
    for name in table.column_names:
        parsed = parse_meta_column(name)
        if not parsed:
            continue
        field, kind = parsed
        col = table.column(name)
        present = len(col) - col.null_count
        if present == 0:
            continue
        st = acc.setdefault(field, {"count_mask": None})
        valid = pc.is_valid(col)
        mask = valid.to_numpy(zero_copy_only=False)
        st["count_mask"] = mask if st["count_mask"] is None else (st["count_mask"] | mask)
        if kind == "num":
            mm = pc.min_max(col)
            st["num_count"] = present
            st["min"] = mm["min"].as_py()
            st["max"] = mm["max"].as_py()
        elif kind == "bool":
            trues = int(pc.sum(pc.cast(pc.fill_null(col, False), pa.int64())).as_py() or 0)
            st["bool_true"] = trues
            st["bool_false"] = present - trues
        elif kind == "str":
            st["str_count"] = present
            st["str_values"] = pc.unique(col.drop_null())
        else:
            st["list_count"] = present
            st["list_values"] = pc.unique(pc.list_flatten(col.drop_null()))
    out: dict[str, FieldStats] = {}
    for field, st in acc.items():
        values: set[str] | None = set()
        for key in ("str_values", "list_values"):
            if key in st and values is not None:
                uniq = st[key]
                values = None if len(uniq) > STATS_MAX_VALUES else values | set(uniq.to_pylist())
        if values is not None and len(values) > STATS_MAX_VALUES:
            values = None
        out[field] = FieldStats(
            count=int(np.count_nonzero(st["count_mask"])),
            num_count=st.get("num_count", 0),
            min=st.get("min"),
            max=st.get("max"),
            str_count=st.get("str_count", 0),
            values=sorted(values) if values is not None else None,
            bool_true=st.get("bool_true", 0),
            bool_false=st.get("bool_false", 0),
            list_count=st.get("list_count", 0),
        )
    return dict(sorted(out.items()))


def merge_stats(a: dict[str, FieldStats], b: dict[str, FieldStats]) -> dict[str, FieldStats]:
    """Statistics of the rows of two parts of one cluster (a segment and a
    delta): counts add, min / max widen, value sets unite (None past
    ``STATS_MAX_VALUES`` or when either is unknown)."""
    out = dict(a)
    for name, y in b.items():
        x = out.get(name)
        if x is None:
            out[name] = y
            continue

        def lo(p: float | None, q: float | None) -> float | None:
            return q if p is None else p if q is None else min(p, q)

        def hi(p: float | None, q: float | None) -> float | None:
            return q if p is None else p if q is None else max(p, q)

        values: list[str] | None = None
        if x.values is not None and y.values is not None:
            union = set(x.values) | set(y.values)
            values = sorted(union) if len(union) <= STATS_MAX_VALUES else None
        out[name] = FieldStats(
            count=x.count + y.count,
            num_count=x.num_count + y.num_count,
            min=lo(x.min, y.min),
            max=hi(x.max, y.max),
            str_count=x.str_count + y.str_count,
            values=values,
            bool_true=x.bool_true + y.bool_true,
            bool_false=x.bool_false + y.bool_false,
            list_count=x.list_count + y.list_count,
        )
    return out
