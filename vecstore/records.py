"""Record-level validation of one Arrow record batch (an import file's or a write request's).

The record rules shared by imports (``vecstore.pipelines.tasks``) and writes
(:mod:`vecstore.writes`); it lives at the ``vecstore`` level so that writes do
not import ``vecstore.pipelines`` (dependencies point one way: schemas <-
vecstore <- pipelines).

:func:`validate_batch` checks every row of a batch whose schema
:func:`vecstore.pipelines.discover.inspect_file` accepted, and returns the valid rows
normalised to the segment column types (:func:`vecstore.schemas.arrow.segment_schema`)
plus one :class:`Reject` per invalid row. Vector checks are vectorised over
the whole batch (numpy / pyarrow.compute on the flattened list values); only
metadata JSON is parsed only for rows that carry metadata: in one call to
Arrow's JSON reader when every such row is an object of storable values (the
common case), else row by row with exact per-row errors.

Rows are numbered from 0 within the file: ``first_row`` is the batch's offset
in its file. Each row gets at most one reject, from the first failing check.
Checks run column by column (``id``, ``values``, ``sparse_values``,
``metadata``) and, within a column, in the order of :data:`REASON_CODES`
(``sparse_in_dense`` before a null ``values`` is called missing). The codes:

``missing_values``
    a null ``id``, a null ``values`` (dense, hybrid), a null
    ``sparse_values`` (sparse) or null ``indices`` / ``values`` inside a
    present sparse vector, or a null element inside any vector list.
``id``
    an empty id, or one over 512 bytes in UTF-8.
``sparse_in_dense``
    hybrid index: a row with a sparse vector but no dense values (null or
    empty ``values``).
``dimension``
    a dense vector whose length differs from the index dimension (an empty
    list is length 0).
``non_finite``
    NaN or +-inf in dense or sparse values, after the cast to float32 (so a
    float64 beyond the float32 range is rejected here).
``sparse_length``
    ``indices`` and ``values`` of different lengths.
``sparse_empty``
    sparse index: a sparse vector with no non-zeros. (In a hybrid index an
    empty sparse part is accepted and kept as is.)
``sparse_too_many``
    more than 1,000 sparse non-zeros.
``sparse_index_range``
    a sparse index below 0 or above 2**32-1 (possible with int64 columns).
``sparse_duplicate_indices``
    the same index twice in one sparse vector.
``metadata_size``
    metadata over 40 KB (40,960 bytes of UTF-8 JSON), checked before parsing.
``metadata_parse``
    metadata that is not JSON (``NaN`` / ``Infinity`` literals are not JSON).
``metadata_not_object``
    JSON that is not an object (an array, a string, ``null``...).
``metadata_value``
    a metadata value that is not a string, a finite number, a boolean or a
    list of strings; the message names the key and the JSON type found.

Pinecone's ``dense_in_sparse`` ("Upserting dense vectors is not supported for
sparse indexes") cannot reach this module: a ``values`` column in a file for a
sparse index is an ``Unsupported column`` schema error of the whole file.

Numeric widening: any integer or float vector values become float32 through
:func:`vecstore.schemas.arrow.as_float32` (rounded to the nearest float32:
integers beyond +-2**24 lose their low bits, never an error); sparse indices
become uint32 once checked to be in range. ``large_string``, ``string_view``
and JSON extension (``arrow.json``) strings, ``large_list`` inputs,
dictionary-encoded strings, fixed-size lists and sliced arrays (non-zero
offsets, as ``iter_batches`` produces) are accepted.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from vecstore.errors import InvalidArgumentError, RecordError
from vecstore.metadata import Meta, kind_of, shred
from vecstore.schemas.arrow import (
    META_KINDS,
    SPARSE_TYPE,
    ImportKind,
    as_float32,
    as_string,
    meta_column,
    parse_meta_column,
    segment_schema,
)

__all__ = [
    "MAX_ID_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_SPARSE_INDEX",
    "MAX_SPARSE_NNZ",
    "REASON_CODES",
    "Reject",
    "ValidatedBatch",
    "format_record_error",
    "record_error",
    "validate_batch",
]

REASON_CODES: tuple[str, ...] = (
    "missing_values",
    "id",
    "sparse_in_dense",
    "dimension",
    "non_finite",
    "sparse_length",
    "sparse_empty",
    "sparse_too_many",
    "sparse_index_range",
    "sparse_duplicate_indices",
    "metadata_size",
    "metadata_parse",
    "metadata_not_object",
    "metadata_value",
)

MAX_ID_BYTES = 512
MAX_METADATA_BYTES = 40_960
MAX_SPARSE_NNZ = 1_000
MAX_SPARSE_INDEX = 2**32 - 1
_REJECT_ID_CHARS = 512  # a Reject's id is cut to this many characters

Mask = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]
Message = Callable[[int], str]


@dataclass(frozen=True, slots=True)
class Reject:
    """One skipped record: ``row`` within its file, a reason code, a message."""

    row: int
    code: str
    message: str
    id: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ValidatedBatch:
    """The outcome of one batch.

    ``table``: the valid rows, in input order, with exactly the schema
    :func:`vecstore.schemas.arrow.segment_schema` gives for the shredded metadata
    fields present (``id`` string, ``values`` fixed_size_list<float32>,
    ``sparse_values`` struct<list<uint32>, list<float32>>, ``metadata`` the
    original JSON text or null, then ``m.<kind>.<field>`` columns).
    ``rows``: the file row of each table row. ``rejects``: one per invalid
    row, in row order. Together ``rows`` and the rejects' rows are exactly
    ``first_row ... first_row + num_rows - 1``.
    """

    table: pa.Table
    rows: Ints
    rejects: list[Reject]


def format_record_error(file: str, row: int, message: str) -> str:
    """The ABORT message of an invalid record."""
    return f'error reading record (file "{file}", row {row}): {message}'


def record_error(file: str, reject: Reject) -> RecordError:
    """The error that aborts an import at ``reject``."""
    return RecordError(
        format_record_error(file, reject.row, reject.message),
        file=file,
        row=reject.row,
        code=reject.code,
        reason=reject.message,
    )


def validate_batch(
    batch: pa.RecordBatch,
    kind: ImportKind,
    dimension: int | None,
    file: str,
    first_row: int,
) -> ValidatedBatch:
    """Check every row of ``batch`` (rows ``first_row...`` of ``file``); see the module doc."""
    if kind != "sparse" and (dimension is None or dimension < 1):
        raise InvalidArgumentError(f"A {kind} index needs a dimension >= 1, got {dimension}")
    n = batch.num_rows
    verdicts = _Verdicts(n)
    ids = _strings(_column(batch, "id"), n)
    _check_ids(ids, verdicts)
    sparse = _read_sparse(batch, n) if kind != "dense" else None
    dense = _lists(_column(batch, "values"), n, pa.float32()) if kind != "sparse" else None
    if dense is not None:
        assert dimension is not None
        present = sparse.present if sparse is not None else None
        _check_dense(dense, dimension, present, verdicts)
    if sparse is not None:
        _check_sparse(sparse, kind, verdicts)
    metadata = _strings(_column(batch, "metadata"), n)
    parsed = _check_metadata(metadata, verdicts)
    ok = verdicts.ok
    table = _assemble(kind, dimension, ok, ids, dense, sparse, metadata, parsed)
    return ValidatedBatch(
        table=table,
        rows=(np.flatnonzero(ok) + first_row).astype(np.int64),
        rejects=verdicts.rejects(first_row, ids),
    )


# ------------------------------------------------------------ bookkeeping


class _Verdicts:
    """Which check rejected each row first (-1: none yet) and its messages."""

    def __init__(self, n: int) -> None:
        self.check = np.full(n, -1, dtype=np.int32)
        self._checks: list[tuple[str, Message]] = []

    @property
    def ok(self) -> Mask:
        return self.check < 0

    def reject(self, mask: Mask, code: str, message: Message) -> None:
        """Reject the rows of ``mask`` not rejected yet; ``message(i)`` says why."""
        new = mask & (self.check < 0)
        if new.any():
            self.check[new] = len(self._checks)
        self._checks.append((code, message))

    def rejects(self, first_row: int, ids: pa.Array) -> list[Reject]:
        out = []
        for i in np.flatnonzero(self.check >= 0).tolist():
            code, message = self._checks[self.check[i]]
            rid = ids[i].as_py()
            out.append(
                Reject(
                    row=first_row + i,
                    code=code,
                    message=message(i),
                    id=None if rid is None else rid[:_REJECT_ID_CHARS],
                )
            )
        return out


def _column(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    index = batch.schema.get_field_index(name)
    return None if index < 0 else batch.column(index)


def _strings(col: pa.Array | None, n: int) -> pa.Array:
    """A string column (large / view / JSON / dictionary / null type cast), nulls if absent."""
    if col is None:
        return pa.nulls(n, pa.string())
    return as_string(col)


def _valid(arr: pa.Array) -> Mask:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)


def _rows_of(positions: Ints, offsets: Ints, n: int) -> Mask:
    """Rows holding the flat element ``positions`` of a list column."""
    mask = np.zeros(n, dtype=np.bool_)
    if positions.size:
        mask[np.searchsorted(offsets, positions, side="right") - 1] = True
    return mask


@dataclass(frozen=True, slots=True)
class _Lists:
    """A list column as ``list<T>`` plus numpy views aligned with the batch rows.

    ``flat`` holds the child values of all rows (``offsets`` index into it,
    starting at 0), so sliced arrays need no special care. A null row may
    still span values (fixed-size lists): checks mask by ``valid``.
    """

    array: pa.Array
    valid: Mask
    offsets: Ints
    lengths: Ints
    flat: pa.Array
    numbers: npt.NDArray[Any]  # ``flat`` in numpy, nulls as 0 (rejected anyway)

    def null_element_rows(self) -> Mask:
        if self.flat.null_count == 0:
            return np.zeros(len(self.valid), dtype=np.bool_)
        positions = np.flatnonzero(~_valid(self.flat))
        return _rows_of(positions, self.offsets, len(self.valid)) & self.valid

    def row(self, i: int) -> npt.NDArray[Any]:
        return self.numbers[self.offsets[i] : self.offsets[i + 1]]


def _lists(col: pa.Array | None, n: int, value_type: pa.DataType | None) -> _Lists:
    """Normalise a list column to ``list<value_type>`` (its own type if None)."""
    if col is None or pa.types.is_null(col.type):
        col = pa.nulls(n, pa.list_(value_type or pa.float32()))
    if value_type == pa.float32():
        array = as_float32(col)  # the one rounding rule of imports
    else:
        array = pc.cast(col, pa.list_(value_type or col.type.value_type), safe=False)
    offsets = np.asarray(array.offsets.to_numpy(), dtype=np.int64)
    if offsets.size == 0:
        offsets = np.zeros(1, dtype=np.int64)
    start = int(offsets[0])
    flat = array.values.slice(start, int(offsets[-1]) - start)
    offsets = offsets - start
    filled = flat if flat.null_count == 0 else pc.fill_null(flat, 0)
    numbers = np.asarray(filled.to_numpy(zero_copy_only=False))
    return _Lists(array, _valid(array), offsets, np.diff(offsets), flat, numbers)


# ------------------------------------------------------------------ checks


def _missing(column: str, detail: str = "") -> Message:
    message = f'missing required values in column "{column}"{detail}'
    return lambda _i: message


def _check_ids(ids: pa.Array, v: _Verdicts) -> None:
    valid = _valid(ids)
    v.reject(~valid, "missing_values", _missing("id"))
    size = np.asarray(pc.fill_null(pc.binary_length(ids), 0).to_numpy(), dtype=np.int64)
    v.reject(valid & (size == 0), "id", lambda _i: "Vector ID must not be empty")
    v.reject(
        size > MAX_ID_BYTES,
        "id",
        lambda i: (
            f"Vector ID must be at most {MAX_ID_BYTES} bytes in UTF-8, but has {size[i]} bytes"
        ),
    )


def _number(x: Any) -> str:
    return "NaN" if np.isnan(x) else ("inf" if x > 0 else "-inf")


def _non_finite(lists: _Lists, what: str) -> tuple[Mask, Message]:
    def message(i: int) -> str:
        row = lists.row(i)
        p = int(np.flatnonzero(~np.isfinite(row))[0])
        return (
            f"{what} must be finite numbers, but found {_number(row[p])} at position {p} "
            "(values are stored as float32)"
        )

    values = lists.numbers
    with np.errstate(invalid="ignore"):  # inf + -inf
        total = values.sum(dtype=np.float64)  # float32s summed in float64 cannot overflow
    if np.isfinite(total):
        return np.zeros(len(lists.valid), dtype=np.bool_), message
    positions = np.flatnonzero(~np.isfinite(values))
    return _rows_of(positions, lists.offsets, len(lists.valid)) & lists.valid, message


def _check_dense(lists: _Lists, dimension: int, sparse: Mask | None, v: _Verdicts) -> None:
    has_sparse = sparse if sparse is not None else np.zeros(len(lists.valid), dtype=np.bool_)
    no_dense = ~lists.valid | (lists.lengths == 0)
    v.reject(
        no_dense & has_sparse,
        "sparse_in_dense",
        lambda _i: (
            "Upserting sparse vectors without dense values is not supported for dense indexes"
        ),
    )
    v.reject(~lists.valid, "missing_values", _missing("values"))
    v.reject(
        lists.null_element_rows(), "missing_values", _missing("values", ": the vector has nulls")
    )
    v.reject(
        lists.lengths != dimension,
        "dimension",
        lambda i: (
            f"Vector dimension {lists.lengths[i]} does not match the dimension of the index {dimension}"
        ),
    )
    mask, message = _non_finite(lists, "Vector values")
    v.reject(mask, "non_finite", message)


@dataclass(frozen=True, slots=True)
class _Sparse:
    present: Mask
    indices: _Lists
    values: _Lists


def _read_sparse(batch: pa.RecordBatch, n: int) -> _Sparse:
    col = _column(batch, "sparse_values")
    if col is None or pa.types.is_null(col.type):
        col = pa.nulls(n, SPARSE_TYPE)
    return _Sparse(
        present=_valid(col),
        indices=_lists(pc.struct_field(col, "indices"), n, None),
        values=_lists(pc.struct_field(col, "values"), n, pa.float32()),
    )


def _check_sparse(sp: _Sparse, kind: ImportKind, v: _Verdicts) -> None:
    present, ind, val = sp.present, sp.indices, sp.values
    if kind == "sparse":
        v.reject(~present, "missing_values", _missing("sparse_values"))
    v.reject(present & ~(ind.valid & val.valid), "missing_values", _missing("sparse_values"))
    nulls = ind.null_element_rows() | val.null_element_rows()
    v.reject(present & nulls, "missing_values", _missing("sparse_values", ": the vector has nulls"))
    mask, message = _non_finite(val, "Sparse vector values")
    v.reject(present & mask, "non_finite", message)
    v.reject(
        present & (ind.lengths != val.lengths),
        "sparse_length",
        lambda i: (
            f"Sparse vector indices and values must have the same length, but got "
            f"{ind.lengths[i]} indices and {val.lengths[i]} values"
        ),
    )
    if kind == "sparse":
        v.reject(
            present & (ind.lengths == 0),
            "sparse_empty",
            lambda _i: "Sparse vector must have at least one non-zero value, but is empty",
        )
    v.reject(
        present & (ind.lengths > MAX_SPARSE_NNZ),
        "sparse_too_many",
        lambda i: (
            f"Sparse vector has {ind.lengths[i]} non-zero values, more than the "
            f"maximum of {MAX_SPARSE_NNZ}"
        ),
    )
    _check_index_range(sp, v)
    _check_duplicates(sp, v)


def _out_of_range(x: npt.NDArray[Any]) -> Mask:
    if x.dtype == np.uint64:
        return np.asarray(x > np.uint64(MAX_SPARSE_INDEX), dtype=np.bool_)
    y = x.astype(np.int64, copy=False)
    return np.asarray((y < 0) | (y > MAX_SPARSE_INDEX), dtype=np.bool_)


def _check_index_range(sp: _Sparse, v: _Verdicts) -> None:
    ind = sp.indices
    positions = np.flatnonzero(_out_of_range(ind.numbers))
    mask = _rows_of(positions, ind.offsets, len(ind.valid)) & sp.present

    def message(i: int) -> str:
        row = ind.row(i)
        bad = row[_out_of_range(row)][0]
        return f"Sparse index {bad} is out of range: indices must be within [0, {MAX_SPARSE_INDEX}]"

    v.reject(mask, "sparse_index_range", message)


def _check_duplicates(sp: _Sparse, v: _Verdicts) -> None:
    """Duplicate indices, sorting only rows whose indices are not increasing."""
    ind = sp.indices
    n = len(ind.valid)
    x = ind.numbers
    if x.size < 2:
        return
    starts = np.zeros(x.size, dtype=np.bool_)
    starts[ind.offsets[:-1][ind.lengths > 0]] = True
    positions = np.flatnonzero((x[1:] <= x[:-1]) & ~starts[1:]) + 1
    candidates = sp.present & v.ok & _rows_of(positions, ind.offsets, n)
    if not candidates.any():
        return
    rows = np.flatnonzero(candidates)
    elements = np.repeat(candidates, ind.lengths)
    keys = (np.repeat(rows, ind.lengths[rows]).astype(np.uint64) << np.uint64(32)) | x[
        elements
    ].astype(np.uint64)
    keys.sort()
    dup = keys[1:] == keys[:-1]
    mask = np.zeros(n, dtype=np.bool_)
    mask[(keys[1:][dup] >> np.uint64(32)).astype(np.int64)] = True

    def message(i: int) -> str:
        values, counts = np.unique(ind.row(i), return_counts=True)
        return f"Sparse vector indices must be unique, but index {values[counts > 1][0]} repeats"

    v.reject(mask, "sparse_duplicate_indices", message)


_JSON_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "number",
    float: "number",
    type(None): "null",
}


def _json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
# scan_once: the C scanner JSONDecoder sets up in __init__ (not in typeshed)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    """``json.loads`` without NaN / Infinity, skipping its whitespace regexes
    when the text is one bare value; any other text goes the full way."""
    try:
        obj, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)  # raises the decoder's own message
    if end != len(text):
        return _DECODER.decode(text)
    return obj


_SCALARS = (str, bool, int)  # exact JSON value types that are always storable


def _bad_value(meta: Meta) -> str | None:
    """Why a metadata object cannot be stored, or None if it can."""
    for key, value in meta.items():
        if type(value) in _SCALARS:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            found = "a non-finite number"
        elif kind_of(value) is not None:
            continue
        elif isinstance(value, list):
            first = next(x for x in value if not isinstance(x, str))
            found = f"an array containing {_json_type(first)}"
        else:
            found = _json_type(value)
        return (
            f'Metadata value for key "{key}" must be a string, number, boolean or list of '
            f"strings, but got {found}"
        )
    return None


@dataclass(frozen=True)
class _Shredded:
    """Shredded metadata columns of the batch rows ``rows`` (the fast path)."""

    rows: Ints
    columns: dict[str, pa.Array]


# Texts holding these need the per-row path: explicit nulls are rejects that
# Arrow cannot tell from absent keys; NaN / Infinity are not JSON; a newline
# would split a record for the NDJSON reader.
_SLOW_PATH = r"null|NaN|Infinity|\n|\r"
_FAST_MIN_ROWS = 32


def _fast_shred(texts: pa.Array) -> dict[str, pa.Array] | None:
    """Shredded columns for ``texts`` through Arrow's JSON reader, or None when
    any text needs the exact per-row path (not an object, a value that is not
    storable, a type that changes between rows, ...)."""
    if len(texts) < _FAST_MIN_ROWS or pc.any(pc.match_substring_regex(texts, _SLOW_PATH)).as_py():
        return None
    data = b"\n".join(texts.cast(pa.binary()).to_pylist())
    try:
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(use_threads=False, block_size=len(data) + 1),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if table.num_rows != len(texts):
        return None
    out: dict[str, pa.Array] = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            kind = "num"
        elif pa.types.is_string(t):
            kind = "str"
        elif pa.types.is_boolean(t):
            kind = "bool"
        elif pa.types.is_list(t) and (
            pa.types.is_string(t.value_type) or pa.types.is_null(t.value_type)
        ):
            kind = "list"
        else:  # objects, arrays of numbers, ...: per-row messages
            return None
        out[meta_column(name, kind)] = col.cast(META_KINDS[kind])
    return dict(sorted(out.items()))


def _check_metadata(metadata: pa.Array, v: _Verdicts) -> dict[int, Meta] | _Shredded:
    """Check and parse metadata; returns row -> parsed object for valid rows
    (or, on the fast path, their shredded columns)."""
    present = _valid(metadata)
    size = np.asarray(pc.fill_null(pc.binary_length(metadata), 0).to_numpy(), dtype=np.int64)
    v.reject(
        size > MAX_METADATA_BYTES,
        "metadata_size",
        lambda i: (
            f"Metadata size is {size[i]} bytes, more than the limit of "
            f"{MAX_METADATA_BYTES} bytes per record"
        ),
    )
    rows = np.flatnonzero(present & v.ok)
    if rows.size == 0:
        return {}
    fast = _fast_shred(metadata.take(pa.array(rows)))
    if fast is not None:
        return _Shredded(rows, fast)
    texts = metadata.take(pa.array(rows)).to_pylist()
    parsed: dict[int, Meta] = {}
    errors: dict[str, dict[int, str]] = {
        "metadata_parse": {},
        "metadata_not_object": {},
        "metadata_value": {},
    }
    for i, text in zip(rows.tolist(), texts, strict=True):
        code, result = _parse_one(text)
        if code is None:
            parsed[i] = result
        else:
            errors[code][i] = result
    for code, found in errors.items():
        if found:
            mask = np.zeros(len(present), dtype=np.bool_)
            mask[list(found)] = True
            v.reject(mask, code, found.__getitem__)
    return parsed


def _parse_one(text: str) -> tuple[str | None, Any]:
    """(None, object) for good metadata, else (reason code, message)."""
    try:
        obj = _loads(text)
    except (ValueError, RecursionError) as exc:
        return "metadata_parse", f"Failed to parse metadata: {exc}"
    if not isinstance(obj, dict):
        return "metadata_not_object", f"Metadata must be a JSON object, but got {_json_type(obj)}"
    bad = _bad_value(obj)
    if bad is not None:
        return "metadata_value", bad
    return None, obj


# ---------------------------------------------------------------- assembly


# Valid rows are gathered in numpy (a boolean mask over the flat values):
# Arrow's filter on list arrays is several times slower at 1M x 128.


def _dense_column(lists: _Lists, ok: Mask, dimension: int) -> pa.Array:
    if ok.all():
        flat = lists.flat
    else:
        flat = pa.array(lists.numbers[np.repeat(ok, lists.lengths)], type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, dimension)


def _list_array(values: npt.NDArray[Any], lengths: Ints, value_type: pa.DataType) -> pa.Array:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))


def _sparse_column(sp: _Sparse, ok: Mask, kind: ImportKind) -> pa.Array:
    keep = ok & sp.present  # rows whose sparse values are kept; null ones become empty
    lengths = np.where(keep, sp.indices.lengths, 0)[ok]
    indices = sp.indices.numbers[np.repeat(keep, sp.indices.lengths)].astype(np.uint32)
    values = sp.values.numbers[np.repeat(keep, sp.values.lengths)]
    missing = ~sp.present[ok]
    return pa.StructArray.from_arrays(
        [
            _list_array(indices, lengths, pa.uint32()),
            _list_array(values, lengths, pa.float32()),
        ],
        fields=list(SPARSE_TYPE),
        mask=pa.array(missing) if kind == "hybrid" and missing.any() else None,
    )


def _assemble(
    kind: ImportKind,
    dimension: int | None,
    ok: Mask,
    ids: pa.Array,
    dense: _Lists | None,
    sparse: _Sparse | None,
    metadata: pa.Array,
    parsed: dict[int, Meta] | _Shredded,
) -> pa.Table:
    keep = pa.array(ok)
    columns: dict[str, pa.Array] = {"id": ids.filter(keep)}
    if dense is not None:
        assert dimension is not None
        columns["values"] = _dense_column(dense, ok, dimension)
    if sparse is not None:
        columns["sparse_values"] = _sparse_column(sparse, ok, kind)
    columns["metadata"] = metadata.filter(keep)
    meta_fields: dict[str, list[str]] = {}
    if isinstance(parsed, _Shredded):
        # rows of the fast path are all still valid; other valid rows have no metadata
        pos = np.full(len(ok), -1, dtype=np.int64)
        pos[parsed.rows] = np.arange(len(parsed.rows))
        take = pos[ok]
        idx = pa.array(take, mask=take < 0)
        shredded = {name: col.take(idx) for name, col in parsed.columns.items()}
        columns.update(shredded)
        for name in shredded:
            meta = parse_meta_column(name)
            if meta is not None:
                meta_fields.setdefault(meta[0], []).append(meta[1])
    elif parsed:
        shredded = shred([parsed.get(i) for i in np.flatnonzero(ok).tolist()])
        columns.update(shredded)
        for name in shredded:
            meta = parse_meta_column(name)
            if meta is not None:
                meta_fields.setdefault(meta[0], []).append(meta[1])
    schema = segment_schema(kind, dimension, meta_fields)
    return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)
