"""vecstore.records: record-level checks of one record batch (imports and writes)."""

from __future__ import annotations

import io
import json
import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecstore.errors import InvalidArgumentError, RecordError
from vecstore.records import (
    MAX_METADATA_BYTES,
    REASON_CODES,
    Reject,
    ValidatedBatch,
    format_record_error,
    record_error,
    validate_batch,
)
from vecstore.schemas.arrow import SPARSE_TYPE, ImportKind, segment_schema

DIM = 3
IN_SPARSE = pa.struct([("indices", pa.list_(pa.int64())), ("values", pa.list_(pa.float64()))])
FSL3 = pa.list_(pa.field("item", pa.float32()), DIM)


def good_row(kind: ImportKind, i: int) -> dict[str, Any]:
    row: dict[str, Any] = {"id": f"r{i}", "metadata": None}
    if kind != "sparse":
        row["values"] = [float(i), 0.5, -1.0]
    if kind != "dense":
        row["sparse_values"] = {"indices": [i, i + 1], "values": [0.5, 0.25]}
    return row


def make_batch(kind: ImportKind, rows: list[dict[str, Any]]) -> pa.RecordBatch:
    cols: dict[str, pa.Array] = {"id": pa.array([r["id"] for r in rows], pa.string())}
    if kind != "sparse":
        cols["values"] = pa.array([r["values"] for r in rows], pa.list_(pa.float64()))
    if kind != "dense":
        cols["sparse_values"] = pa.array([r["sparse_values"] for r in rows], IN_SPARSE)
    cols["metadata"] = pa.array([r["metadata"] for r in rows], pa.string())
    return pa.record_batch(cols)


def run(kind: ImportKind, rows: list[dict[str, Any]], first_row: int = 0) -> ValidatedBatch:
    return validate_batch(
        make_batch(kind, rows), kind, None if kind == "sparse" else DIM, "ns/0.parquet", first_row
    )


def middle_bad(kind: ImportKind, **bad: Any) -> list[dict[str, Any]]:
    rows = [good_row(kind, i) for i in range(3)]
    rows[1].update(bad)
    return rows


def sv(indices: list[Any] | None, values: list[Any] | None) -> dict[str, Any]:
    return {"indices": indices, "values": values}


def value_message(key: str, found: str) -> str:
    return (
        f'Metadata value for key "{key}" must be a string, number, boolean or list of strings, '
        f"but got {found}"
    )


MISSING_VALUES = 'missing required values in column "values"'
MISSING_SPARSE = 'missing required values in column "sparse_values"'
NULL_SPARSE_ELEMENT = MISSING_SPARSE + ": the vector has nulls"
SPARSE_IN_DENSE = "Upserting sparse vectors without dense values is not supported for dense indexes"
FLOAT32 = " (values are stored as float32)"

CASES: list[tuple[ImportKind, dict[str, Any], str, str]] = [
    ("dense", {"id": None}, "missing_values", 'missing required values in column "id"'),
    ("dense", {"values": None}, "missing_values", MISSING_VALUES),
    ("dense", {"values": [1.0, None, 2.0]}, "missing_values", f"{MISSING_VALUES}: the vector has nulls"),
    ("dense", {"id": ""}, "id", "Vector ID must not be empty"),
    ("dense", {"id": "é" * 257}, "id", "Vector ID must be at most 512 bytes in UTF-8, but has 514 bytes"),
    ("dense", {"values": [1.0, 2.0]}, "dimension", "Vector dimension 2 does not match the dimension of the index 3"),
    ("dense", {"values": []}, "dimension", "Vector dimension 0 does not match the dimension of the index 3"),
    ("dense", {"values": [1.0, math.nan, 2.0]}, "non_finite", "Vector values must be finite numbers, but found NaN at position 1" + FLOAT32),
    ("dense", {"values": [1.0, 2.0, -math.inf]}, "non_finite", "Vector values must be finite numbers, but found -inf at position 2" + FLOAT32),
    ("dense", {"values": [1e300, 0.0, 0.0]}, "non_finite", "Vector values must be finite numbers, but found inf at position 0" + FLOAT32),
    ("hybrid", {"values": None}, "sparse_in_dense", SPARSE_IN_DENSE),
    ("hybrid", {"values": []}, "sparse_in_dense", SPARSE_IN_DENSE),
    ("hybrid", {"values": None, "sparse_values": None}, "missing_values", MISSING_VALUES),
    ("hybrid", {"values": [], "sparse_values": None}, "dimension", "Vector dimension 0 does not match the dimension of the index 3"),
    ("sparse", {"sparse_values": None}, "missing_values", MISSING_SPARSE),
    ("sparse", {"sparse_values": sv(None, [1.0])}, "missing_values", MISSING_SPARSE),
    ("hybrid", {"sparse_values": sv([1], None)}, "missing_values", MISSING_SPARSE),
    ("sparse", {"sparse_values": sv([1, None], [1.0, 2.0])}, "missing_values", NULL_SPARSE_ELEMENT),
    ("sparse", {"sparse_values": sv([1, 2], [1.0, None])}, "missing_values", NULL_SPARSE_ELEMENT),
    ("sparse", {"sparse_values": sv([1, 2], [1.0, math.inf])}, "non_finite", "Sparse vector values must be finite numbers, but found inf at position 1" + FLOAT32),
    ("sparse", {"sparse_values": sv([1, 2], [1.0])}, "sparse_length", "Sparse vector indices and values must have the same length, but got 2 indices and 1 values"),
    ("hybrid", {"sparse_values": sv([], [1.0])}, "sparse_length", "Sparse vector indices and values must have the same length, but got 0 indices and 1 values"),
    ("sparse", {"sparse_values": sv([], [])}, "sparse_empty", "Sparse vector must have at least one non-zero value, but is empty"),
    ("sparse", {"sparse_values": sv(list(range(1001)), [1.0] * 1001)}, "sparse_too_many", "Sparse vector has 1001 non-zero values, more than the maximum of 1000"),
    ("hybrid", {"sparse_values": sv(list(range(1001)), [1.0] * 1001)}, "sparse_too_many", "Sparse vector has 1001 non-zero values, more than the maximum of 1000"),
    ("sparse", {"sparse_values": sv([3, -1], [1.0, 1.0])}, "sparse_index_range", "Sparse index -1 is out of range: indices must be within [0, 4294967295]"),
    ("hybrid", {"sparse_values": sv([2**32], [1.0])}, "sparse_index_range", "Sparse index 4294967296 is out of range: indices must be within [0, 4294967295]"),
    ("sparse", {"sparse_values": sv([5, 1, 5], [1.0, 1.0, 1.0])}, "sparse_duplicate_indices", "Sparse vector indices must be unique, but index 5 repeats"),
    ("hybrid", {"sparse_values": sv([7, 7], [1.0, 1.0])}, "sparse_duplicate_indices", "Sparse vector indices must be unique, but index 7 repeats"),
    ("dense", {"metadata": json.dumps({"t": "x" * MAX_METADATA_BYTES})}, "metadata_size", "Metadata size is 40969 bytes, more than the limit of 40960 bytes per record"),
    ("sparse", {"metadata": '{"t": "' + "é" * 20480 + '"}'}, "metadata_size", "Metadata size is 40969 bytes, more than the limit of 40960 bytes per record"),
    ("dense", {"metadata": "{bad"}, "metadata_parse", "Failed to parse metadata: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("dense", {"metadata": '{"a": NaN}'}, "metadata_parse", "Failed to parse metadata: NaN is not valid JSON"),
    ("sparse", {"metadata": '{"a": 1} x'}, "metadata_parse", "Failed to parse metadata: Extra data: line 1 column 10 (char 9)"),
    ("hybrid", {"metadata": ""}, "metadata_parse", "Failed to parse metadata: Expecting value: line 1 column 1 (char 0)"),
    ("dense", {"metadata": "[1, 2]"}, "metadata_not_object", "Metadata must be a JSON object, but got array"),
    ("dense", {"metadata": "null"}, "metadata_not_object", "Metadata must be a JSON object, but got null"),
    ("sparse", {"metadata": ' "s" '}, "metadata_not_object", "Metadata must be a JSON object, but got string"),
    ("dense", {"metadata": '{"ok": 1, "a": null}'}, "metadata_value", value_message("a", "null")),
    ("dense", {"metadata": '{"a": {"b": 1}}'}, "metadata_value", value_message("a", "object")),
    ("hybrid", {"metadata": '{"a": ["x", 1]}'}, "metadata_value", value_message("a", "an array containing number")),
    ("sparse", {"metadata": '{"a": 1e999}'}, "metadata_value", value_message("a", "a non-finite number")),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "bad", "code", "message"), CASES)
def test_reason_codes(kind: ImportKind, bad: dict[str, Any], code: str, message: str) -> None:
    rows = middle_bad(kind, **bad)
    out = run(kind, rows, first_row=100)
    assert out.rejects == [Reject(row=101, code=code, message=message, id=rows[1]["id"])]
    assert out.rows.tolist() == [100, 102]
    assert out.rows.dtype == np.int64
    assert out.table.column("id").to_pylist() == ["r0", "r2"]


def test_every_reason_code_is_tested_and_unique() -> None:
    assert len(set(REASON_CODES)) == len(REASON_CODES)
    assert {code for _, _, code, _ in CASES} == set(REASON_CODES)


def test_first_failing_check_wins() -> None:
    rows = [good_row("hybrid", i) for i in range(4)]
    rows[0].update(id=None, values=[1.0], metadata="{bad")
    rows[1].update(values=[1.0], metadata="{bad", sparse_values=sv([1, 1], [1.0]))
    rows[2].update(sparse_values=sv([1, 1], [1.0]), metadata="{bad")
    rows[3].update(metadata="x" * (MAX_METADATA_BYTES + 1))
    out = run("hybrid", rows, first_row=5)
    assert [(r.row, r.code) for r in out.rejects] == [
        (5, "missing_values"),
        (6, "dimension"),
        (7, "sparse_length"),
        (8, "metadata_size"),
    ]
    assert out.table.num_rows == 0
    assert out.table.schema == segment_schema("hybrid", DIM)


def test_limits_are_inclusive() -> None:
    rows = [good_row("sparse", i) for i in range(3)]
    text = json.dumps({"t": "x" * (MAX_METADATA_BYTES - 9)})
    assert len(text.encode()) == MAX_METADATA_BYTES
    rows[0]["metadata"] = text
    rows[1]["id"] = "é" * 256  # 512 bytes
    rows[2]["sparse_values"] = sv(list(range(1000)), [1.0] * 1000)
    rows.append({**good_row("sparse", 3), "sparse_values": sv([0, 2**32 - 1], [1.0, 2.0])})
    out = run("sparse", rows)
    assert out.rejects == []
    assert out.table.column("sparse_values")[3].as_py() == {
        "indices": [0, 2**32 - 1],
        "values": [1.0, 2.0],
    }


def test_dense_rows_are_normalised() -> None:
    values = [[1.1, 2.2, 3.3], [1e-3, -5.5, 7.0]]
    batch = pa.record_batch(
        {
            "id": pa.array(["a", "b"], pa.large_string()),
            "values": pa.array(values, pa.list_(pa.float64())),
            "metadata": pa.array(['{"year": 1999}', None], pa.large_string()),
        }
    )
    out = validate_batch(batch, "dense", DIM, "f", 0)
    assert out.rejects == []
    assert out.table.schema == segment_schema("dense", DIM, {"year": ["num"]})
    assert out.table.schema.field("values").type == FSL3
    assert out.table.schema.field("id").type == pa.string()
    got = np.asarray(out.table.column("values").combine_chunks().flatten()).reshape(2, DIM)
    np.testing.assert_array_equal(got, np.array(values, dtype=np.float32))
    assert out.table.column("metadata").to_pylist() == ['{"year": 1999}', None]
    assert out.table.column("m.num.year").to_pylist() == [1999.0, None]


@pytest.mark.parametrize(
    "values",
    [
        pa.array([[1, 2, 3], [4, 5, 6]], pa.list_(pa.int32())),
        pa.array([[1, 2, 3], [4, 5, 6]], pa.list_(pa.uint8())),
        pa.array([[1, 2, 3], [4, 5, 6]], pa.list_(pa.float16())),
        pa.array([[1, 2, 3], [4, 5, 6]], pa.large_list(pa.float64())),
        pa.array([[1, 2, 3], [4, 5, 6]], pa.list_(pa.float32(), 3)),
        pa.array([[1, 2, 3], [4, 5, 6]], pa.list_(pa.int64(), 3)),
    ],
)
def test_numeric_values_widen_to_float32(values: pa.Array) -> None:
    ids = pa.array(["a", "b"]).dictionary_encode()
    batch = pa.record_batch({"id": ids, "values": values})
    out = validate_batch(batch, "hybrid", DIM, "f", 0)
    assert out.table.schema == segment_schema("hybrid", DIM)
    assert out.table.column("values").to_pylist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert out.table.column("sparse_values").null_count == 2
    assert out.table.column("id").to_pylist() == ["a", "b"]


def test_integers_beyond_2_to_the_24_round_to_float32() -> None:
    """One rule everywhere (schemas.arrow.as_float32): the nearest float32, as
    numpy's astype(float32); never an error, in plain and fixed-size lists,
    dense and sparse values alike."""
    big = 2**24 + 1
    raw = [[big, -big, 2**40 + 1], [1, 2**53 + 1, 3]]
    want = np.asarray(raw, dtype=np.int64).astype(np.float32).tolist()
    assert want[0][:2] == [2.0**24, -(2.0**24)]
    for values in (
        pa.array(raw, pa.list_(pa.int64())),
        pa.array(raw, pa.list_(pa.int64(), 3)),
        pa.array([[big, 1, 2**40 + 1], [1, 2**53 + 1, 3]], pa.list_(pa.uint64())),
    ):
        out = validate_batch(pa.record_batch({"id": ["a", "b"], "values": values}), "dense", DIM, "f", 0)
        assert out.rejects == []
        assert out.table.column("values").to_pylist()[1] == want[1]
        assert out.table.column("values").to_pylist()[0][0] == 2.0**24
    sparse = pa.array(
        [{"indices": [1, 2], "values": [big, -big]}],
        pa.struct([("indices", pa.list_(pa.int64())), ("values", pa.list_(pa.int64()))]),
    )
    out = validate_batch(pa.record_batch({"id": ["a"], "sparse_values": sparse}), "sparse", None, "f", 0)
    assert out.table.column("sparse_values").to_pylist() == [
        {"indices": [1, 2], "values": [2.0**24, -(2.0**24)]}
    ]


@pytest.mark.parametrize(
    "strings",
    [
        lambda xs: pa.array(xs, pa.string_view()),
        lambda xs: pa.array(xs, pa.string()).cast(pa.json_()),
        lambda xs: pa.array(xs, pa.large_string()).cast(pa.json_(pa.large_string())),
        lambda xs: pa.array(xs, pa.string_view()).cast(pa.json_(pa.string_view())),
        lambda xs: pa.DictionaryArray.from_arrays(
            pa.array(range(len(xs)), pa.int32()), pa.array(xs, pa.string_view())
        ),
    ],
    ids=["string_view", "json", "json_large", "json_view", "dictionary_view"],
)
def test_string_view_and_json_columns_are_strings(strings: Callable[[list[Any]], pa.Array]) -> None:
    """DuckDB's JSON (an arrow.json extension column) and string_view ids and
    metadata read as plain strings; their records are checked as any other."""
    batch = pa.record_batch(
        {
            "id": strings(["a", "b", ""]),
            "values": pa.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]),
            "metadata": strings(['{"genre": "drama"}', "[1]", None]),
        }
    )
    out = validate_batch(batch, "dense", DIM, "f", 0)
    assert [(r.row, r.code) for r in out.rejects] == [(1, "metadata_not_object"), (2, "id")]
    assert out.table.schema.field("id").type == pa.string()
    assert out.table.column("id").to_pylist() == ["a"]
    assert out.table.column("metadata").to_pylist() == ['{"genre": "drama"}']
    assert out.table.column("m.str.genre").to_pylist() == ["drama"]


def test_fixed_size_list_of_the_wrong_size_rejects_every_row() -> None:
    batch = pa.record_batch(
        {"id": ["a", "b"], "values": pa.array([[1.0] * 4] * 2, pa.list_(pa.float32(), 4))}
    )
    out = validate_batch(batch, "dense", DIM, "f", 0)
    assert {r.code for r in out.rejects} == {"dimension"}
    assert out.table.num_rows == 0


def test_sparse_rows_are_normalised() -> None:
    rows = [good_row("hybrid", i) for i in range(4)]
    rows[1]["sparse_values"] = None
    rows[2]["sparse_values"] = sv([], [])
    rows[3]["sparse_values"] = sv([9, 2**32 - 1, 0], [1.5, -2.0, 1e-8])
    out = run("hybrid", rows)
    assert out.rejects == []
    assert out.table.schema == segment_schema("hybrid", DIM)
    assert out.table.schema.field("sparse_values").type == SPARSE_TYPE
    assert out.table.column("sparse_values").to_pylist() == [
        {"indices": [0, 1], "values": [0.5, 0.25]},
        None,
        {"indices": [], "values": []},
        {"indices": [9, 2**32 - 1, 0], "values": [1.5, -2.0, float(np.float32(1e-8))]},
    ]


@pytest.mark.parametrize("itype", [pa.uint64(), pa.uint32(), pa.int8(), pa.int64()])
def test_sparse_index_types(itype: pa.DataType) -> None:
    top = 2**32 if itype == pa.uint64() else 5
    t = pa.struct([("values", pa.large_list(pa.float16())), ("indices", pa.list_(itype))])
    col = pa.array([{"indices": [1, 3], "values": [1, 2]}, {"indices": [top], "values": [1]}], t)
    out = validate_batch(
        pa.record_batch({"id": ["a", "b"], "sparse_values": col}), "sparse", None, "f", 0
    )
    assert out.table.schema == segment_schema("sparse", None)
    assert out.table.column("sparse_values")[0].as_py() == {"indices": [1, 3], "values": [1.0, 2.0]}
    assert [r.code for r in out.rejects] == (["sparse_index_range"] if top > 2**32 - 1 else [])


def test_metadata_is_shredded_for_valid_rows_only() -> None:
    rows = [good_row("dense", i) for i in range(4)]
    rows[0]["metadata"] = '{"year": 1999, "genre": "drama", "flag": true, "tags": ["a", "b"]}'
    rows[1]["metadata"] = '{"year": 1}'
    rows[1]["values"] = [1.0]  # rejected: its metadata must not show up
    rows[2]["metadata"] = '{"year": "old", "empty": []}'
    out = run("dense", rows)
    t = out.table
    assert out.rows.tolist() == [0, 2, 3]
    assert t.column("m.num.year").to_pylist() == [1999.0, None, None]
    assert t.column("m.str.year").to_pylist() == [None, "old", None]
    assert t.column("m.str.genre").to_pylist() == ["drama", None, None]
    assert t.column("m.bool.flag").to_pylist() == [True, None, None]
    assert t.column("m.list.tags").to_pylist() == [["a", "b"], None, None]
    assert t.column("m.list.empty").to_pylist() == [None, [], None]
    assert t.column("metadata").to_pylist() == [rows[0]["metadata"], rows[2]["metadata"], None]
    fields = {
        "year": ["num", "str"],
        "genre": ["str"],
        "flag": ["bool"],
        "tags": ["list"],
        "empty": ["list"],
    }
    assert t.schema == segment_schema("dense", DIM, fields)


def test_missing_metadata_column_and_empty_batch() -> None:
    batch = pa.record_batch({"id": ["a"], "values": pa.array([[1.0, 2.0, 3.0]])})
    out = validate_batch(batch, "dense", DIM, "f", 0)
    assert out.table.column("metadata").to_pylist() == [None]
    empty = validate_batch(batch.slice(1), "dense", DIM, "f", 7)
    assert (empty.table.num_rows, empty.rows.tolist(), empty.rejects) == (0, [], [])
    assert empty.table.schema == segment_schema("dense", DIM)


def test_dense_needs_a_dimension() -> None:
    batch = make_batch("dense", [good_row("dense", 0)])
    with pytest.raises(InvalidArgumentError):
        validate_batch(batch, "dense", None, "f", 0)


def test_record_error_messages() -> None:
    assert format_record_error("ns/0.parquet", 7, MISSING_VALUES) == (
        'error reading record (file "ns/0.parquet", row 7): missing required values in column "values"'
    )
    err = record_error(
        "ns/0.parquet", Reject(row=7, code="missing_values", message=MISSING_VALUES, id="a")
    )
    assert isinstance(err, RecordError)
    assert err.message == format_record_error("ns/0.parquet", 7, MISSING_VALUES)
    again = pickle.loads(pickle.dumps(err))
    assert (again.file, again.row, again.code, again.reason) == (
        "ns/0.parquet",
        7,
        "missing_values",
        MISSING_VALUES,
    )


def test_reject_ids_are_cut_to_512_characters() -> None:
    out = run("dense", middle_bad("dense", id="x" * 600))
    assert out.rejects[0].id == "x" * 512


# ------------------------------------------------------------- offsets


def mixed_rows(kind: ImportKind, n: int) -> list[dict[str, Any]]:
    rows = [good_row(kind, i) for i in range(n)]
    bad = [c for c in CASES if c[0] == kind]
    for i in range(1, n, 3):
        rows[i].update(bad[i % len(bad)][1])
    for i in range(0, n, 4):
        if rows[i]["metadata"] is None:
            rows[i]["metadata"] = json.dumps({"i": i, "s": f"v{i}"})
    return rows


def summary(out: ValidatedBatch) -> tuple[list[int], list[tuple[int, str, str]], list[Any]]:
    return (
        out.rows.tolist(),
        [(r.row, r.code, r.message) for r in out.rejects],
        [{k: v for k, v in row.items() if v is not None} for row in out.table.to_pylist()],
    )


@pytest.mark.parametrize("kind", ["dense", "sparse", "hybrid"])
def test_sliced_batches_match_the_whole(kind: ImportKind) -> None:
    rows = mixed_rows(kind, 40)
    batch = make_batch(kind, rows)
    dim = None if kind == "sparse" else DIM
    whole = summary(validate_batch(batch, kind, dim, "f", 0))
    parts = [validate_batch(batch.slice(s, 9), kind, dim, "f", s) for s in range(0, 40, 9)]
    assert whole[1] and whole[0]
    merged = (
        [r for p in parts for r in summary(p)[0]],
        [r for p in parts for r in summary(p)[1]],
        [r for p in parts for r in summary(p)[2]],
    )
    assert merged == whole


def test_fixed_size_lists_with_nulls_and_offsets() -> None:
    flat = pa.array(np.arange(30, dtype=np.float64))
    mask = pa.array([False, True, False, False, True, False, False, False, False, False])
    values = pa.FixedSizeListArray.from_arrays(flat, DIM, mask=mask)
    hidden = np.arange(30, dtype=np.float64)
    hidden[3:6] = np.nan  # garbage under the null row 1 must not matter
    values = pa.FixedSizeListArray.from_arrays(pa.array(hidden), DIM, mask=mask)
    batch = pa.record_batch({"id": [f"r{i}" for i in range(10)], "values": values}).slice(1, 6)
    out = validate_batch(batch, "dense", DIM, "f", 1)
    assert [(r.row, r.code) for r in out.rejects] == [(1, "missing_values"), (4, "missing_values")]
    assert out.rows.tolist() == [2, 3, 5, 6]
    assert out.table.column("values").to_pylist() == [
        [6.0, 7.0, 8.0],
        [9.0, 10.0, 11.0],
        [15.0, 16.0, 17.0],
        [18.0, 19.0, 20.0],
    ]


def test_values_under_null_sparse_vectors_are_ignored() -> None:
    indices = pa.array([[1, 2], [5, 5, -1], [3]], pa.list_(pa.int64()))
    values = pa.array([[1.0, 2.0], [math.nan, 1.0, 1.0], [1.0]], pa.list_(pa.float64()))
    mask = pa.array([False, True, False])
    col = pa.StructArray.from_arrays([indices, values], names=["indices", "values"], mask=mask)
    batch = pa.record_batch(
        {"id": ["a", "b", "c"], "values": pa.array([[1.0, 2.0, 3.0]] * 3), "sparse_values": col}
    )
    out = validate_batch(batch.slice(1), "hybrid", DIM, "f", 1)
    assert out.rejects == []
    assert out.table.column("sparse_values").to_pylist() == [
        None,
        {"indices": [3], "values": [1.0]},
    ]


@pytest.mark.parametrize("kind", ["dense", "sparse", "hybrid"])
def test_iter_batches_of_a_parquet_file(kind: ImportKind) -> None:
    rows = mixed_rows(kind, 50)
    table = pa.Table.from_batches([make_batch(kind, rows)])
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=7)
    dim = None if kind == "sparse" else DIM
    whole = summary(validate_batch(table.to_batches()[0], kind, dim, "f", 0))
    parts, first = [], 0
    for batch in pq.ParquetFile(io.BytesIO(buf.getvalue())).iter_batches(batch_size=4):
        parts.append(summary(validate_batch(batch, kind, dim, "f", first)))
        first += batch.num_rows
    assert first == 50
    assert tuple([x for p in parts for x in p[i]] for i in range(3)) == whole


# ------------------------------------------------------------- property

ROW_KINDS = {
    "ok": None,
    "ok_no_sparse": None,
    "null_id": "missing_values",
    "short": "dimension",
    "nan": "non_finite",
    "no_dense": "sparse_in_dense",
    "dup": "sparse_duplicate_indices",
    "unsorted": None,
    "bad_json": "metadata_parse",
    "list_json": "metadata_not_object",
}


def property_row(choice: str, i: int) -> dict[str, Any]:
    row = good_row("hybrid", i)
    row["metadata"] = json.dumps({"i": i})
    if choice == "ok_no_sparse":
        row["sparse_values"] = None
    elif choice == "null_id":
        row["id"] = None
    elif choice == "short":
        row["values"] = row["values"][:2]
    elif choice == "nan":
        row["values"][1] = math.nan
    elif choice == "no_dense":
        row["values"] = None
    elif choice == "dup":
        row["sparse_values"] = sv([i + 2, i, i + 2], [1.0, 2.0, 3.0])
    elif choice == "unsorted":
        row["sparse_values"] = sv([i + 2, i, i + 1], [1.0, 2.0, 3.0])
    elif choice == "bad_json":
        row["metadata"] = "{"
    elif choice == "list_json":
        row["metadata"] = "[]"
    return row


@settings(max_examples=60, deadline=None)
@given(
    choices=st.lists(st.sampled_from(sorted(ROW_KINDS)), max_size=25),
    skip=st.integers(0, 3),
    first_row=st.integers(0, 10**6),
)
def test_valid_rows_and_rejects_partition_the_batch(
    choices: list[str], skip: int, first_row: int
) -> None:
    rows = [property_row("ok", -1 - k) for k in range(skip)]
    rows += [property_row(c, i) for i, c in enumerate(choices)]
    batch = make_batch("hybrid", rows).slice(skip)
    out = validate_batch(batch, "hybrid", DIM, "f", first_row)
    expected_ok = [first_row + i for i, c in enumerate(choices) if ROW_KINDS[c] is None]
    expected_bad = [(first_row + i, ROW_KINDS[c]) for i, c in enumerate(choices) if ROW_KINDS[c]]
    assert out.rows.tolist() == expected_ok
    assert [(r.row, r.code) for r in out.rejects] == expected_bad
    assert sorted(expected_ok + [r for r, _ in expected_bad]) == [
        first_row + i for i in range(len(choices))
    ]
    got_ids = out.table.column("id").to_pylist()
    assert got_ids == [f"r{r - first_row}" for r in expected_ok]
    if got_ids:
        assert out.table.column("m.num.i").to_pylist() == [r - first_row for r in expected_ok]
    for r, values in zip(expected_ok, out.table.column("values").to_pylist(), strict=True):
        assert values == [float(r - first_row), 0.5, -1.0]


# ------------------------------------------------ metadata fast path (Arrow JSON)

_meta_values = st.one_of(
    st.text(max_size=8),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
)
_meta_objects = st.one_of(
    # keys of one type each: the fast path accepts these batches
    st.fixed_dictionaries(
        {},
        optional={
            "a": st.text(max_size=8),
            "b": st.integers(-(2**40), 2**40),
            "f": st.floats(allow_nan=False, allow_infinity=False, width=32),
            "ok": st.booleans(),
            "tags": st.lists(st.text(max_size=5), max_size=3),
        },
    ),
    # anything storable: types may change between rows (per-row path)
    st.dictionaries(st.sampled_from(["a", "b", "genre", "year"]), _meta_values, max_size=4),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.none(), _meta_objects), min_size=40, max_size=80))
def test_metadata_fast_path_matches_per_row_path(metas: list[dict[str, object] | None]) -> None:
    """Arrow's JSON reader (one call per batch) and the per-row parser give the
    same table whenever the fast path accepts a batch."""
    import vecstore.records as V

    n = len(metas)
    batch = pa.record_batch(
        {
            "id": [f"r{i}" for i in range(n)],
            "values": [[float(i), 1.0] for i in range(n)],
            "metadata": [None if m is None else json.dumps(m) for m in metas],
        }
    )
    fast = validate_batch(batch, "dense", 2, "f.parquet", 0)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(V, "_FAST_MIN_ROWS", 10**9)
        slow = validate_batch(batch, "dense", 2, "f.parquet", 0)
    assert fast.rejects == slow.rejects
    assert fast.table.schema == slow.table.schema
    assert fast.table.equals(slow.table)


def test_metadata_fast_path_is_taken_and_falls_back() -> None:
    import vecstore.records as V

    texts = pa.array([json.dumps({"genre": "a", "year": i}) for i in range(64)])
    cols = V._fast_shred(texts)
    assert cols is not None and set(cols) == {"m.num.year", "m.str.genre"}
    # a type that changes between rows, an explicit null, a nested object: per-row path
    assert V._fast_shred(pa.array([*texts.to_pylist(), '{"year": "x"}'])) is None
    assert V._fast_shred(pa.array([*texts.to_pylist(), '{"year": null}'])) is None
    assert V._fast_shred(pa.array([*texts.to_pylist(), '{"o": {"x": 1}}'])) is None
