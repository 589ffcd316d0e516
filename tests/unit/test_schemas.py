"""The Arrow schemas of ``schemas/arrow.py`` agree with their pydantic twins.

For every pair: the same field names in the same order, a nullable Arrow field
exactly where the model field is Optional, and the same type family
(str <-> string, int <-> integer, float <-> floating, list[float] <-> list or
fixed_size_list of float32, SparseRow <-> SPARSE_TYPE). Rows round-trip
model -> Arrow table -> model unchanged.
"""

from __future__ import annotations

import types
import typing
from typing import Any, get_args, get_origin

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from vecstore.schemas.arrow import (
    ID_INDEX_SCHEMA,
    IMPORT_ROW_MODELS,
    META_KINDS,
    REJECT_SCHEMA,
    REQUIRED_COLUMNS,
    SPARSE_TYPE,
    DenseImportRow,
    HybridImportRow,
    IdIndexRow,
    RejectRow,
    SegmentRow,
    SparseImportRow,
    SparseRow,
    import_schema,
    meta_column,
    parse_meta_column,
    segment_schema,
)

KINDS = ("dense", "sparse", "hybrid")

# ------------------------------------------------------------------ helpers


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(inner type, is Optional) of a model field annotation."""
    origin = get_origin(annotation)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in get_args(annotation) if a is not type(None)]
        optional = len(args) < len(get_args(annotation))
        assert len(args) == 1, f"unexpected union {annotation}"
        return args[0], optional
    return annotation, False


def _assert_type_agrees(annotation: Any, arrow_type: pa.DataType, where: str) -> None:
    """The Python annotation and the Arrow type are of the same family."""
    if annotation is str:
        assert pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type), where
    elif annotation is bool:
        assert pa.types.is_boolean(arrow_type), where
    elif annotation is int:
        assert pa.types.is_integer(arrow_type), where
    elif annotation is float:
        assert pa.types.is_floating(arrow_type), where
    elif get_origin(annotation) is list:
        (item,) = get_args(annotation)
        assert (
            pa.types.is_list(arrow_type)
            or pa.types.is_large_list(arrow_type)
            or pa.types.is_fixed_size_list(arrow_type)
        ), where
        value_type = arrow_type.value_type
        if item is float:
            # vectors are stored as float32, whatever they were imported as
            assert value_type == pa.float32(), f"{where}: {value_type}"
        else:
            _assert_type_agrees(item, value_type, f"{where}[]")
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        assert pa.types.is_struct(arrow_type), where
        if annotation is SparseRow:
            assert arrow_type == SPARSE_TYPE, where
        names = [arrow_type.field(i).name for i in range(arrow_type.num_fields)]
        assert names == list(annotation.model_fields), where
        for name, info in annotation.model_fields.items():
            inner, optional = _unwrap_optional(info.annotation)
            # Struct children stay nullable in Arrow (files written by Spark or
            # pandas mark every child nullable and must cast without error);
            # the model requires them, so a null inside the struct is a record
            # error, never silently accepted.
            assert not optional, f"{where}.{name} must be required in the model"
            _assert_type_agrees(inner, arrow_type.field(name).type, f"{where}.{name}")
    else:  # pragma: no cover - a new annotation kind needs a rule here
        raise AssertionError(f"{where}: no rule for {annotation!r}")


def _assert_twins(model: type[BaseModel], schema: pa.Schema) -> None:
    assert list(model.model_fields) == schema.names
    for name, info in model.model_fields.items():
        inner, optional = _unwrap_optional(info.annotation)
        field = schema.field(name)
        assert field.nullable == optional, f"{model.__name__}.{name}: nullable={field.nullable}"
        assert info.is_required() != optional, f"{model.__name__}.{name}: default vs Optional"
        _assert_type_agrees(inner, field.type, f"{model.__name__}.{name}")


# --------------------------------------------------------------- the pairs


@pytest.mark.parametrize(
    ("kind", "model"),
    [("dense", DenseImportRow), ("sparse", SparseImportRow), ("hybrid", HybridImportRow)],
)
def test_import_schema_matches_row_model(kind: str, model: type[BaseModel]) -> None:
    assert IMPORT_ROW_MODELS[kind] is model  # type: ignore[index]
    _assert_twins(model, import_schema(kind))  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", KINDS)
def test_required_columns_are_the_non_nullable_import_columns(kind: str) -> None:
    schema = import_schema(kind)  # type: ignore[arg-type]
    required = tuple(f.name for f in schema if not f.nullable)
    assert required == REQUIRED_COLUMNS[kind]  # type: ignore[index]


def test_id_index_schema_matches_model() -> None:
    _assert_twins(IdIndexRow, ID_INDEX_SCHEMA)


def test_reject_schema_matches_model() -> None:
    _assert_twins(RejectRow, REJECT_SCHEMA)


def test_segment_schema_matches_segment_row() -> None:
    """SegmentRow covers all kinds: a column is Optional in the model exactly
    when some kind lacks it or stores it nullable."""
    schemas = {k: segment_schema(k, 8) for k in KINDS}  # type: ignore[arg-type]
    union: list[str] = []
    for s in schemas.values():
        union.extend(n for n in s.names if n not in union)
    assert list(SegmentRow.model_fields) == ["id", "values", "sparse_values", "metadata"]
    # same order as every kind's schema (each is a subsequence of the model's fields)
    for s in schemas.values():
        assert [n for n in SegmentRow.model_fields if n in s.names] == s.names
    assert set(union) == set(SegmentRow.model_fields)
    for name, info in SegmentRow.model_fields.items():
        inner, optional = _unwrap_optional(info.annotation)
        maybe_missing = any(name not in s.names or s.field(name).nullable for s in schemas.values())
        assert optional == maybe_missing, name
        for kind, s in schemas.items():
            if name in s.names:
                _assert_type_agrees(inner, s.field(name).type, f"SegmentRow.{name} ({kind})")


@pytest.mark.parametrize("kind", KINDS)
def test_segment_schema_without_meta_columns(kind: str) -> None:
    s = segment_schema(kind, 3)  # type: ignore[arg-type]
    assert s.names[0] == "id" and s.names[-1] == "metadata"
    assert not any(n.startswith("m.") for n in s.names)
    if kind != "sparse":
        values = s.field("values").type
        assert pa.types.is_fixed_size_list(values)
        assert values.list_size == 3 and values.value_type == pa.float32()
        assert not s.field("values").nullable
    if kind != "dense":
        assert s.field("sparse_values").type == SPARSE_TYPE
        assert s.field("sparse_values").nullable == (kind == "hybrid")


def test_dense_segment_needs_a_dimension() -> None:
    with pytest.raises(ValueError, match="dimension"):
        segment_schema("dense", None)
    assert segment_schema("sparse", None).names == ["id", "sparse_values", "metadata"]


def test_segment_meta_columns_sorted_and_typed() -> None:
    s = segment_schema("dense", 2, {"year": ["str", "num"], "a": ["list"], "b": ["bool"]})
    assert s.names[3:] == ["m.list.a", "m.bool.b", "m.num.year", "m.str.year"]
    for name in s.names[3:]:
        parsed = parse_meta_column(name)
        assert parsed is not None
        field, kind = parsed
        assert meta_column(field, kind) == name
        assert s.field(name).type == META_KINDS[kind]
        assert s.field(name).nullable


@pytest.mark.parametrize("name", ["id", "metadata", "m.", "m.num.", "m.float.x", "values"])
def test_parse_meta_column_rejects_other_columns(name: str) -> None:
    assert parse_meta_column(name) is None


def test_meta_field_names_may_contain_dots() -> None:
    assert parse_meta_column(meta_column("a.b", "num")) == ("a.b", "num")


# --------------------------------------------------------------- round trips

_f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
_ids = st.text(min_size=1, max_size=20)
_meta = st.none() | st.text(max_size=30)
_sparse = st.integers(0, 5).flatmap(
    lambda n: st.builds(
        SparseRow,
        indices=st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n, unique=True),
        values=st.lists(_f32, min_size=n, max_size=n),
    )
)


def _round_trip(rows: list[BaseModel], schema: pa.Schema) -> list[dict[str, Any]]:
    table = pa.Table.from_pylist([r.model_dump() for r in rows], schema=schema)
    assert table.schema.equals(schema)
    return table.to_pylist()  # type: ignore[no-any-return]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.builds(
            DenseImportRow, id=_ids, values=st.lists(_f32, min_size=1, max_size=6), metadata=_meta
        ),
        min_size=1,
        max_size=5,
    )
)
def test_dense_import_rows_round_trip(rows: list[DenseImportRow]) -> None:
    back = [DenseImportRow.model_validate(r) for r in _round_trip(rows, import_schema("dense"))]  # type: ignore[arg-type]
    assert back == rows


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.builds(SparseImportRow, id=_ids, sparse_values=_sparse, metadata=_meta),
        min_size=1,
        max_size=5,
    )
)
def test_sparse_import_rows_round_trip(rows: list[SparseImportRow]) -> None:
    back = [SparseImportRow.model_validate(r) for r in _round_trip(rows, import_schema("sparse"))]  # type: ignore[arg-type]
    assert back == rows


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.builds(
            HybridImportRow,
            id=_ids,
            values=st.lists(_f32, min_size=1, max_size=6),
            sparse_values=st.none() | _sparse,
            metadata=_meta,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_hybrid_import_rows_round_trip(rows: list[HybridImportRow]) -> None:
    back = [HybridImportRow.model_validate(r) for r in _round_trip(rows, import_schema("hybrid"))]  # type: ignore[arg-type]
    assert back == rows


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.builds(
            SegmentRow,
            id=_ids,
            values=st.lists(_f32, min_size=3, max_size=3),
            sparse_values=st.none() | _sparse,
            metadata=_meta,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_hybrid_segment_rows_round_trip(rows: list[SegmentRow]) -> None:
    schema = segment_schema("hybrid", 3)
    back = [SegmentRow.model_validate(r) for r in _round_trip(rows, schema)]
    assert back == rows
    assert all(isinstance(r.values, list) and len(r.values) == 3 for r in back)


@pytest.mark.parametrize("kind", KINDS)
def test_segment_rows_round_trip_per_kind(kind: str) -> None:
    rows = [
        SegmentRow(
            id="a",
            values=None if kind == "sparse" else [0.5, -1.25],
            sparse_values=None if kind == "dense" else SparseRow(indices=[0, 9], values=[1.0, 2.5]),
            metadata='{"genre": "drama"}',
        ),
        SegmentRow(
            id="b",
            values=None if kind == "sparse" else [0.0, 3.0],
            sparse_values=None if kind != "sparse" else SparseRow(indices=[], values=[]),
        ),
    ]
    schema = segment_schema(kind, 2)  # type: ignore[arg-type]
    back = [SegmentRow.model_validate(r) for r in _round_trip_selected(rows, schema)]
    assert back == rows


def _round_trip_selected(rows: list[SegmentRow], schema: pa.Schema) -> list[dict[str, Any]]:
    """Like _round_trip, keeping only the schema's columns (a kind lacks some)."""
    dumped = [{k: v for k, v in r.model_dump().items() if k in schema.names} for r in rows]
    return pa.Table.from_pylist(dumped, schema=schema).to_pylist()  # type: ignore[no-any-return]


def test_id_index_and_reject_rows_round_trip() -> None:
    ids = [IdIndexRow(id="a", cluster=0, row=0), IdIndexRow(id="é/ü", cluster=2**31 - 1, row=7)]
    assert [IdIndexRow.model_validate(r) for r in _round_trip(ids, ID_INDEX_SCHEMA)] == ids  # type: ignore[arg-type]
    rejects = [
        RejectRow(
            namespace="", file="s3://b/ns/a.parquet", row=3, code="bad_dimension", message="m"
        ),
        RejectRow(namespace="ns", file="f", row=2**40, code="duplicate_id", message="m", id="x"),
    ]
    back = [RejectRow.model_validate(r) for r in _round_trip(rejects, REJECT_SCHEMA)]  # type: ignore[arg-type]
    assert back == rejects


# ------------------------------------------------------- frozen, no extras

ROW_EXAMPLES: list[BaseModel] = [
    DenseImportRow(id="a", values=[1.0]),
    SparseImportRow(id="a", sparse_values=SparseRow(indices=[1], values=[1.0])),
    HybridImportRow(id="a", values=[1.0]),
    SegmentRow(id="a"),
    IdIndexRow(id="a", cluster=0, row=0),
    RejectRow(namespace="", file="f", row=0, code="c", message="m"),
    SparseRow(indices=[], values=[]),
]


@pytest.mark.parametrize("row", ROW_EXAMPLES, ids=lambda r: type(r).__name__)
def test_row_models_are_frozen(row: BaseModel) -> None:
    first = next(iter(type(row).model_fields))
    with pytest.raises(ValidationError, match="frozen"):
        setattr(row, first, getattr(row, first))
    copy = row.model_copy(update={})
    assert copy == row


@pytest.mark.parametrize("row", ROW_EXAMPLES, ids=lambda r: type(r).__name__)
def test_row_models_reject_extra_fields(row: BaseModel) -> None:
    data = {**row.model_dump(), "surprise": 1}
    with pytest.raises(ValidationError, match="[Ee]xtra"):
        type(row).model_validate(data)
