"""pipelines.reading and the worker tasks that read import files (tasks.sample,
tasks.scan): corrupt pages and checksum mismatches name the file and the row
group in clean text; integer values beyond +-2**24 are rounded to float32 by
the sampler exactly as validation rounds them.

Real Parquet files, corrupted byte by byte, in a local store under tmp_path.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore.errors import IngestError, SchemaError
from vecstore.pipelines import plan as P
from vecstore.pipelines import tasks
from vecstore.pipelines.reading import clean_text, iter_batches, open_parquet, read_error
from vecstore.records import validate_batch
from vecstore.schemas import IndexSpec
from vecstore.schemas.arrow import as_float32
from vecstore.storage import Store

DIM = 8
ROWS = 200
GROUP = 100  # two row groups: rows 0-99 and 100-199


def table(n: int = ROWS) -> pa.Table:
    rng = np.random.default_rng(0)
    vals = rng.normal(size=(n, DIM)).astype(np.float32)
    return pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "values": pa.array(list(vals), pa.list_(pa.float32())),
        }
    )


def parquet(t: pa.Table, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    pq.write_table(t, buf, row_group_size=GROUP, use_dictionary=False, **kwargs)
    return buf.getvalue()


def values_page(data: bytes, row_group: int = 1) -> int:
    """Offset of the first data page of ``values`` in ``row_group``."""
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    return int(meta.row_group(row_group).column(1).data_page_offset)


def flip(data: bytes, offset: int, n: int = 1) -> bytes:
    out = bytearray(data)
    for i in range(offset, offset + n):
        out[i] ^= 0xFF
    return bytes(out)


def read_all(data: bytes, groups: list[int] | None = None) -> int:
    pf = open_parquet(io.BytesIO(data), "ns/0.parquet")
    rows = 0
    for b in iter_batches(pf, "ns/0.parquet", groups or [0, 1], batch_size=150):
        rows += b.num_rows
    return rows


def message(reason: str, group: int = 1) -> str:
    rows = f"{group * GROUP}-{group * GROUP + GROUP - 1}"
    return (
        f'file "ns/0.parquet": row group {group} (rows {rows}) could not be read: {reason}. '
        "Are you sure this is valid parquet?"
    )


# The byte flipped (from the start of the page) and what pyarrow says about it:
# found by flipping each byte of a snappy page of this file in turn.
CORRUPT_PAGES = [
    (8, "Corrupt snappy compressed data"),
    (0, "Couldn't deserialize thrift: TProtocolException: Invalid data; Deserializing page "
        "header failed"),
    (45, "Couldn't deserialize thrift: don't know what type: \\x0e; Deserializing page header "
         "failed"),
]


@pytest.mark.parametrize(("offset", "reason"), CORRUPT_PAGES)
def test_corrupt_page_names_file_and_row_group(offset: int, reason: str) -> None:
    good = parquet(table(), compression="snappy")
    assert read_all(good) == ROWS
    bad = flip(good, values_page(good) + offset)
    with pytest.raises(SchemaError) as info:
        read_all(bad)
    err = info.value
    assert err.message == message(reason)
    assert (err.file, err.row_group) == ("ns/0.parquet", 1)
    assert all(c.isprintable() for c in err.message)
    # the batch that fails spans both row groups (150 rows): still row group 1
    # is named, and a read of row group 0 alone is fine
    assert read_all(bad, [0]) == GROUP


def test_checksums_are_verified_where_the_file_has_them() -> None:
    """A page body corrupted in place decodes to garbage without a checksum;
    with one (write_page_checksum=True) the read fails, naming the page."""
    for checksum in (False, True):
        good = parquet(table(), compression="none", write_page_checksum=checksum)
        start = values_page(good)
        end = start + pq.ParquetFile(io.BytesIO(good)).metadata.row_group(1).column(1).total_compressed_size
        bad = flip(good, (start + end) // 2, 4)  # inside the float values
        if not checksum:
            assert read_all(bad) == ROWS  # undetectable: no checksum to compare
            continue
        with pytest.raises(SchemaError) as info:
            read_all(bad)
        assert info.value.message == message(
            "could not verify page integrity, CRC checksum verification failed for page_ordinal 0"
        )


def test_a_file_without_checksums_reads_as_before() -> None:
    data = parquet(table(), compression="zstd")
    assert read_all(data) == ROWS


def test_clean_text() -> None:
    assert clean_text("a\nb\r\n  c\n") == "a; b; c"
    assert clean_text("type: \x0e\x00 and \x7f") == "type: \\x0e\\x00 and \\x7f"
    assert clean_text("tab\there") == "tab\\x09here"
    assert clean_text("café ✓") == "café ✓"


def test_read_error_message() -> None:
    err = read_error("k/0.parquet", 3, 30, 10, "bad\npage.\n")
    assert err.message == (
        'file "k/0.parquet": row group 3 (rows 30-39) could not be read: bad; page. '
        "Are you sure this is valid parquet?"
    )


# ------------------------------------------------------------- worker tasks


def context(tmp_path: Path, dimension: int = DIM) -> P.Context:
    source = Store(str(tmp_path / "import"))
    store = Store(str(tmp_path / "store"))
    spec = IndexSpec(name="docs", dimension=dimension, metric="euclidean")
    return P.Context.make(source, store, spec, "job-1", "abort")


def put(ctx: P.Context, key: str, data: bytes) -> P.Chunk:
    ctx.source.write_bytes(key, data)
    groups = [g.num_rows for g in _groups(data)]
    return P.chunk_file("ns", 0, key, groups, len(data), 0)[0]


def _groups(data: bytes) -> list[pq.RowGroupMetaData]:
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    return [meta.row_group(i) for i in range(meta.num_row_groups)]


def test_sample_and_scan_name_the_corrupt_row_group(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    good = parquet(table(), compression="snappy")
    chunk = put(ctx, "ns/0.parquet", flip(good, values_page(good) + 8))
    shown = str(tmp_path / "import" / "ns" / "0.parquet")
    expected = message("Corrupt snappy compressed data").replace("ns/0.parquet", shown)
    with pytest.raises(SchemaError) as info:
        tasks.sample(ctx, chunk, 1.0)
    assert info.value.message == expected
    nsplan = P.plan_namespace("ns", [(chunk.key, chunk.nbytes, [GROUP, GROUP])], ctx.spec)
    with pytest.raises(SchemaError) as info:
        tasks.scan(ctx, chunk, nsplan, None)
    assert info.value.message == expected


BIG = 2**24 + 1  # the first integer float32 cannot hold


def int_table() -> pa.Table:
    vals = np.arange(ROWS * DIM, dtype=np.int64).reshape(ROWS, DIM)
    vals[150, 3] = BIG  # in row group 1
    vals[160, 0] = -BIG
    return pa.table(
        {"id": [f"r{i}" for i in range(ROWS)], "values": pa.array(list(vals), pa.list_(pa.int64()))}
    )


def test_sampler_rounds_large_integers_as_validation_does(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    t = int_table()
    chunk = put(ctx, "ns/0.parquet", parquet(t))
    sample = tasks.sample(ctx, chunk, 1.0)  # a fraction of 1: every row group is read
    assert sample.shape == (ROWS, DIM) and sample.dtype == np.float32
    assert sample[150, 3] == np.float32(2**24) and sample[160, 0] == np.float32(-(2**24))
    validated = validate_batch(t.to_batches()[0], "dense", DIM, "ns/0.parquet", 0)
    assert validated.rejects == []
    stored = np.asarray(validated.table.column("values").to_pylist(), np.float32)
    np.testing.assert_array_equal(stored, sample)
    # the one rule: numpy's float32 rounding
    np.testing.assert_array_equal(
        stored, np.asarray(t.column("values").to_pylist(), np.int64).astype(np.float32)
    )


def test_as_float32_never_raises_for_a_number() -> None:
    assert as_float32(pa.array([BIG, -BIG, 2**63 - 1])).to_pylist() == [
        2.0**24, -(2.0**24), 2.0**63
    ]
    assert as_float32(pa.array([1e300, -1e300])).to_pylist() == [float("inf"), float("-inf")]
    fixed = pa.FixedSizeListArray.from_arrays(pa.array([BIG, 1], pa.uint64()), 2)
    assert as_float32(fixed).type == pa.list_(pa.float32())
    assert as_float32(fixed).to_pylist() == [[2.0**24, 1.0]]


def test_a_namespace_of_0_row_files_has_no_records(tmp_path: Path) -> None:
    spec = context(tmp_path).spec
    empty = parquet(table(0))
    assert [g.num_rows for g in _groups(empty)] in ([], [0])
    for ns, shown in (("films", "films"), ("", "__default__")):
        with pytest.raises(IngestError) as info:
            P.plan_namespace(ns, [("a.parquet", len(empty), []), ("b.parquet", 10, [0])], spec)
        assert info.value.message == f"No records found for namespace: {shown} (its files have 0 rows)"
        assert info.value.namespace == ns
    # one row anywhere is enough
    assert P.plan_namespace("films", [("a.parquet", 1, [0]), ("b.parquet", 9, [1])], spec).rows == 1
