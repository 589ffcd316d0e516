"""Arrow schemas of the three import file kinds and of segment files, with
their pydantic twins (one row as a model). ``tests/unit/test_schemas.py``
checks that each pair agrees.

Segment files (format version 1) hold, per row:

- ``id``: string
- ``values``: ``fixed_size_list<float32>[dimension]`` (dense and hybrid)
- ``sparse_values``: ``struct<indices: list<uint32>, values: list<float32>>``
  (sparse, and optional in hybrid)
- ``metadata``: the record's metadata as a JSON object string (returned as is)
- shredded metadata, one column per (field, kind), so filters evaluate
  vectorised without parsing JSON: ``m.num.<field>`` float64,
  ``m.str.<field>`` string, ``m.bool.<field>`` bool,
  ``m.list.<field>`` list<string>. A row whose field is absent (or of another
  kind) is null in that column.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from vecstore.schemas.models import RecordLayout

ImportKind = RecordLayout  # kept name: the import file layout of an index

SPARSE_TYPE = pa.struct(
    [pa.field("indices", pa.list_(pa.uint32())), pa.field("values", pa.list_(pa.float32()))]
)

META_PREFIX = "m."
META_KINDS: dict[str, pa.DataType] = {
    "num": pa.float64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "list": pa.list_(pa.string()),
}


def meta_column(field: str, kind: str) -> str:
    """Segment column name of a shredded metadata field."""
    return f"{META_PREFIX}{kind}.{field}"


def parse_meta_column(name: str) -> tuple[str, str] | None:
    """``m.num.year`` -> (``year``, ``num``); None for other columns."""
    if not name.startswith(META_PREFIX):
        return None
    kind, _, field = name[len(META_PREFIX) :].partition(".")
    if kind not in META_KINDS or not field:
        return None
    return field, kind


def is_string_type(t: pa.DataType) -> bool:
    """A string column of an import file: ``string``, ``large_string`` or
    ``string_view``, dictionary-encoded or not, or a JSON extension column
    (``arrow.json``, what DuckDB writes for ``JSON``) over one of these."""
    if pa.types.is_dictionary(t):
        return is_string_type(t.value_type)
    if isinstance(t, pa.BaseExtensionType):
        return t.extension_name == "arrow.json" and is_string_type(t.storage_type)
    return bool(
        pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    )


def as_string(array: pa.Array) -> pa.Array:
    """A column :func:`is_string_type` accepts, as plain ``string``."""
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    if isinstance(array, pa.DictionaryArray):
        return as_string(array.dictionary).take(array.indices)
    return array.cast(pa.string())


def as_float32(array: pa.Array) -> pa.Array:
    """The one numeric rule of imports: vector values of any integer or float
    type (a flat array, or a list / large / fixed-size list of them, which
    becomes ``list<float32>``) are rounded to the nearest float32.

    Never raises for a number: integers beyond +-2**24 lose their low bits
    (2**24 + 1 becomes 16777216.0, as numpy's ``astype(float32)`` does), a
    float64 beyond the float32 range becomes +-inf (validation then rejects
    it as ``non_finite``). Validation, the k-means sampler and every other
    reader of import values cast through here, so all agree on each value.
    """
    t = array.type
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return array.cast(pa.list_(pa.float32()), safe=False)
    return array.cast(pa.float32(), safe=False)


def import_schema(kind: ImportKind) -> pa.Schema:
    """The canonical schema of an import file of ``kind`` (others widen to it)."""
    fields = [pa.field("id", pa.string(), nullable=False)]
    if kind in ("dense", "hybrid"):
        fields.append(pa.field("values", pa.list_(pa.float32()), nullable=False))
    if kind == "sparse":
        fields.append(pa.field("sparse_values", SPARSE_TYPE, nullable=False))
    if kind == "hybrid":
        fields.append(pa.field("sparse_values", SPARSE_TYPE, nullable=True))
    fields.append(pa.field("metadata", pa.string(), nullable=True))
    return pa.schema(fields)


REQUIRED_COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    RecordLayout.DENSE: ("id", "values"),
    RecordLayout.SPARSE: ("id", "sparse_values"),
    RecordLayout.HYBRID: ("id", "values"),
}


def segment_schema(
    kind: ImportKind, dimension: int | None, meta_fields: dict[str, list[str]] | None = None
) -> pa.Schema:
    """Schema of a segment file; ``meta_fields`` maps field -> kinds present."""
    fields = [pa.field("id", pa.string(), nullable=False)]
    if kind in ("dense", "hybrid"):
        if dimension is None:
            raise ValueError("a dense segment needs a dimension")
        fields.append(
            pa.field("values", pa.list_(pa.field("item", pa.float32()), dimension), nullable=False)
        )
    if kind in ("sparse", "hybrid"):
        fields.append(pa.field("sparse_values", SPARSE_TYPE, nullable=kind == "hybrid"))
    fields.append(pa.field("metadata", pa.string(), nullable=True))
    for name in sorted(meta_fields or {}):
        fields.extend(
            pa.field(meta_column(name, k), META_KINDS[k], nullable=True)
            for k in sorted(meta_fields[name])  # type: ignore[index]
        )
    return pa.schema(fields)


ID_INDEX_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("cluster", pa.int32(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),
    ]
)

REJECT_SCHEMA = pa.schema(
    [
        pa.field("namespace", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("code", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=True),
    ]
)


# ------------------------------------------------------------ pydantic twins


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SparseRow(_Row):
    indices: list[int]
    values: list[float]


class DenseImportRow(_Row):
    id: str
    values: list[float]
    metadata: str | None = None


class SparseImportRow(_Row):
    id: str
    sparse_values: SparseRow
    metadata: str | None = None


class HybridImportRow(_Row):
    id: str
    values: list[float]
    sparse_values: SparseRow | None = None
    metadata: str | None = None


class SegmentRow(_Row):
    """A segment row without shredded metadata columns (those are derived)."""

    id: str
    values: list[float] | None = None
    sparse_values: SparseRow | None = None
    metadata: str | None = None


class IdIndexRow(_Row):
    id: str
    cluster: int
    row: int


class RejectRow(_Row):
    namespace: str
    file: str
    row: int
    code: str
    message: str
    id: str | None = None


IMPORT_ROW_MODELS: dict[ImportKind, type[_Row]] = {
    RecordLayout.DENSE: DenseImportRow,
    RecordLayout.SPARSE: SparseImportRow,
    RecordLayout.HYBRID: HybridImportRow,
}
