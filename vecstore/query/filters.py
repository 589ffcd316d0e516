"""Pinecone's metadata filter language: parse, prune by statistics, evaluate.

A filter is parsed once into a small tree (:class:`Cmp`, :class:`And`,
:class:`Or`); malformed filters raise :class:`~vecstore.errors.FilterError`
naming the bad part. The tree is then used twice:

- :func:`may_match` decides from a cluster's :class:`~vecstore.schemas.FieldStats`
  whether the cluster can hold a match at all (the planner's pruning). It is
  conservative: False only when the statistics prove there is no match.
- :func:`evaluate` computes a boolean row mask, vectorised with
  ``pyarrow.compute`` over the shredded metadata columns (``m.num.<f>``,
  ``m.str.<f>``, ``m.bool.<f>``, ``m.list.<f>``): no JSON is parsed.

Semantics (Pinecone's, see docs/query.md):

- ``$eq`` / ``$in`` on a list-of-strings field match when any element matches.
- ``$ne`` / ``$nin`` match only records where the field is present and no
  value (no element) equals the operand: a record without the field does
  not match (Pinecone's observed behaviour since 2024, unlike MongoDB).
- ``$gt $gte $lt $lte`` take numbers and match number fields only.
- Values of another kind never compare equal (``"1"`` is not ``1``, ``true``
  is not ``1``).
- ``{"f": v}`` is ``{"f": {"$eq": v}}``; several keys in one object, and
  several operators on one field, are and-ed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.errors import FilterError
from vecstore.schemas import FieldStats

Scalar = str | float | bool
COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
LOGICAL = ("$and", "$or")
MAX_IN_VALUES = 10_000

# (field, kind) -> the column of that shredded kind, or None if absent
ColumnGetter = Callable[[str, str], pa.Array | None]


@dataclass(frozen=True, slots=True)
class Cmp:
    """``field op value``; ``value`` is a tuple for ``$in`` / ``$nin``."""

    field: str
    op: str
    value: Scalar | tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Cmp | And | Or


# ------------------------------------------------------------------ parsing


def parse_filter(spec: Any) -> Node | None:
    """Parse a filter object; None (or ``{}``) means no filter."""
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise FilterError(f"Invalid filter: expected an object, got {_show(spec)}", part="filter")
    if not spec:
        return None
    return _parse_object(spec, "filter")


def canonical(node: Node | None) -> str:
    """A stable text form of a parsed filter (cache keys)."""
    return json.dumps(_to_jsonable(node), sort_keys=True, separators=(",", ":"))


def _to_jsonable(node: Node | None) -> Any:
    if node is None:
        return None
    if isinstance(node, Cmp):
        value = list(node.value) if isinstance(node.value, tuple) else node.value
        return [node.field, node.op, value]
    return ["and" if isinstance(node, And) else "or", [_to_jsonable(i) for i in node.items]]


def _parse_object(obj: Mapping[Any, Any], path: str) -> Node:
    if not obj:
        raise FilterError(f"Invalid filter: empty object at {path}", part=path)
    parts: list[Node] = []
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise FilterError(
                f"Invalid filter: field names must be non-empty strings, got {key!r} at {path}",
                part=path,
            )
        if key.startswith("$"):
            parts.append(_parse_logical(key, value, path))
        else:
            parts.append(_parse_field(key, value))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_logical(op: str, value: Any, path: str) -> Node:
    if op not in LOGICAL:
        hint = (
            ' (comparison operators go inside a field, e.g. {"genre": {"$eq": ...}})'
            if op in COMPARISONS
            else ""
        )
        raise FilterError(f'Invalid filter: unknown operator "{op}" at {path}{hint}', part=op)
    if not isinstance(value, list | tuple) or not value:
        raise FilterError(
            f"Invalid filter: {op} needs a non-empty list of filter objects, got {_show(value)}",
            part=op,
        )
    items: list[Node] = []
    for i, item in enumerate(value):
        sub = f"{op}[{i}]"
        if not isinstance(item, Mapping):
            raise FilterError(
                f"Invalid filter: {sub} must be an object, got {_show(item)}", part=sub
            )
        items.append(_parse_object(item, sub))
    return And(tuple(items)) if op == "$and" else Or(tuple(items))


def _parse_field(field: str, value: Any) -> Node:
    if not isinstance(value, Mapping):
        return Cmp(field, "$eq", _scalar("$eq", field, value))
    if not value:
        raise FilterError(f'Invalid filter: no operator for field "{field}"', part=field)
    parts: list[Node] = []
    for op, operand in value.items():
        if not isinstance(op, str) or op not in COMPARISONS:
            hint = " ($and / $or combine filter objects, not values)" if op in LOGICAL else ""
            raise FilterError(
                f'Invalid filter: unknown operator "{op}" at "{field}"{hint}',
                part=field,
                operator=op,
            )
        parts.append(_parse_op(field, op, operand))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _parse_op(field: str, op: str, operand: Any) -> Cmp:
    if op in ("$eq", "$ne"):
        return Cmp(field, op, _scalar(op, field, operand))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if (
            isinstance(operand, bool)
            or not isinstance(operand, int | float)
            or not math.isfinite(operand)
        ):
            raise FilterError(
                f'Invalid filter: {op} needs a number at "{field}", got {_show(operand)}',
                part=field,
                operator=op,
            )
        return Cmp(field, op, float(operand))
    if op in ("$in", "$nin"):
        if not isinstance(operand, list | tuple):
            raise FilterError(
                f'Invalid filter: {op} needs a list at "{field}", got {_show(operand)}',
                part=field,
                operator=op,
            )
        if len(operand) > MAX_IN_VALUES:
            raise FilterError(
                f'Invalid filter: {op} at "{field}" has {len(operand)} values, more than {MAX_IN_VALUES}',
                part=field,
                operator=op,
            )
        return Cmp(field, op, tuple(_scalar(op, field, v, in_list=True) for v in operand))
    # $exists
    if not isinstance(operand, bool):
        raise FilterError(
            f'Invalid filter: $exists needs true or false at "{field}", got {_show(operand)}',
            part=field,
            operator=op,
        )
    return Cmp(field, op, operand)


def _scalar(op: str, field: str, value: Any, *, in_list: bool = False) -> Scalar:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    where = f"a value of {op}" if in_list else op
    extra = (
        " (use $in to match any of several values)"
        if isinstance(value, list) and not in_list
        else ""
    )
    raise FilterError(
        f'Invalid filter: {where} at "{field}" must be a string, number or boolean, got {_show(value)}{extra}',
        part=field,
        operator=op,
    )


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------ introspection


def fields_of(node: Node | None) -> set[str]:
    """Every metadata field a filter reads."""
    if node is None:
        return set()
    if isinstance(node, Cmp):
        return {node.field}
    out: set[str] = set()
    for item in node.items:
        out |= fields_of(item)
    return out


# ------------------------------------------------------------------ pruning


def may_match(node: Node, stats: Mapping[str, FieldStats], row_count: int) -> bool:
    """False only if ``stats`` prove that no row of the cluster matches."""
    if isinstance(node, And):
        return all(may_match(i, stats, row_count) for i in node.items)
    if isinstance(node, Or):
        return any(may_match(i, stats, row_count) for i in node.items)
    st = stats.get(node.field)
    present = st.count if st is not None else 0
    if node.op == "$exists":
        return present > 0 if node.value else present < row_count
    if st is None or present == 0:
        return False
    if node.op == "$eq":
        return _may_equal(st, node.value)  # type: ignore[arg-type]
    if node.op == "$in":
        return any(_may_equal(st, v) for v in node.value)  # type: ignore[union-attr]
    if node.op in ("$ne", "$nin"):
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        return not _all_equal_to_one_of(st, values)
    v = float(node.value)  # type: ignore[arg-type]
    if st.num_count == 0 or st.min is None or st.max is None:
        return False
    return {
        "$gt": st.max > v,
        "$gte": st.max >= v,
        "$lt": st.min < v,
        "$lte": st.min <= v,
    }[node.op]


def _may_equal(st: FieldStats, v: Scalar) -> bool:
    if isinstance(v, bool):
        return (st.bool_true if v else st.bool_false) > 0
    if isinstance(v, float):
        return (
            st.num_count > 0 and st.min is not None and st.max is not None and st.min <= v <= st.max
        )
    if st.str_count + st.list_count == 0:
        return False
    return st.values is None or v in st.values


def _all_equal_to_one_of(st: FieldStats, values: tuple[Scalar, ...]) -> bool:
    """Whether every row carrying the field provably equals one of ``values``."""
    if st.count == st.num_count and st.min is not None and st.min == st.max:
        return any(isinstance(v, float) and not isinstance(v, bool) and v == st.min for v in values)
    if st.count == st.bool_true + st.bool_false and st.count > 0:
        # ``True in values`` would match 1.0 too (True == 1.0): kinds never mix
        if st.bool_false == 0:
            return any(v is True for v in values)
        if st.bool_true == 0:
            return any(v is False for v in values)
    if st.count == st.str_count and st.values is not None:
        strs = {v for v in values if isinstance(v, str)}
        return bool(st.values) and set(st.values) <= strs
    return False


# --------------------------------------------------------------- evaluation


def evaluate(node: Node, get: ColumnGetter, n: int) -> np.ndarray:
    """Boolean mask (n,) of the rows matching ``node``."""
    if isinstance(node, And):
        out = evaluate(node.items[0], get, n)
        for item in node.items[1:]:
            if not out.any():
                break
            out &= evaluate(item, get, n)
        return out
    if isinstance(node, Or):
        out = evaluate(node.items[0], get, n)
        for item in node.items[1:]:
            if out.all():
                break
            out |= evaluate(item, get, n)
        return out
    op = node.op
    if op == "$exists":
        present = _present(get, node.field, n)
        return present if node.value else ~present
    if op == "$eq":
        return _in_mask(get, node.field, (node.value,), n)  # type: ignore[arg-type]
    if op == "$in":
        return _in_mask(get, node.field, node.value, n)  # type: ignore[arg-type]
    if op == "$ne":
        return _present(get, node.field, n) & ~_in_mask(get, node.field, (node.value,), n)  # type: ignore[arg-type]
    if op == "$nin":
        return _present(get, node.field, n) & ~_in_mask(get, node.field, node.value, n)  # type: ignore[arg-type]
    col = get(node.field, "num")
    if col is None:
        return np.zeros(n, dtype=bool)
    fn = {"$gt": pc.greater, "$gte": pc.greater_equal, "$lt": pc.less, "$lte": pc.less_equal}[op]
    return _to_mask(fn(col, pa.scalar(float(node.value), pa.float64())))  # type: ignore[arg-type]


def _to_mask(result: Any) -> np.ndarray:
    arr = pc.fill_null(result, False)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    out: np.ndarray = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=bool)
    return out.copy() if not out.flags.writeable else out


def _present(get: ColumnGetter, field: str, n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    for kind in ("num", "str", "bool", "list"):
        col = get(field, kind)
        if col is not None and col.null_count < len(col):
            out |= _to_mask(pc.is_valid(col))
    return out


def _in_mask(get: ColumnGetter, field: str, values: tuple[Scalar, ...], n: int) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    strs = [v for v in values if isinstance(v, str)]
    nums = [v for v in values if isinstance(v, float) and not isinstance(v, bool)]
    bools = [v for v in values if isinstance(v, bool)]
    if strs:
        value_set = pa.array(sorted(set(strs)), pa.string())
        col = get(field, "str")
        if col is not None:
            out |= _to_mask(pc.is_in(col, value_set=value_set))
        lst = get(field, "list")
        if lst is not None:
            out |= _list_any(lst, value_set, n)
    if nums:
        col = get(field, "num")
        if col is not None:
            out |= _to_mask(pc.is_in(col, value_set=pa.array(sorted(set(nums)), pa.float64())))
    if bools:
        col = get(field, "bool")
        if col is not None:
            out |= _to_mask(pc.is_in(col, value_set=pa.array(sorted(set(bools)), pa.bool_())))
    return out


def _list_any(col: pa.Array, value_set: pa.Array, n: int) -> np.ndarray:
    """Rows of a list<string> column with any element in ``value_set``."""
    out = np.zeros(n, dtype=bool)
    flat = pc.list_flatten(col)
    if len(flat) == 0:
        return out
    hits = _to_mask(pc.is_in(flat, value_set=value_set))
    if hits.any():
        parents = np.asarray(pc.list_parent_indices(col).to_numpy(zero_copy_only=False))
        out[parents[hits]] = True
    return out
