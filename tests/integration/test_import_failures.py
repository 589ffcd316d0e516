"""Whole-import failures on a real Dask cluster: each ends as a Failed job whose
``error`` is the exact message of DESIGN "Import semantics" (Pinecone's
Troubleshooting messages without the ``User error:`` prefix), in both error
modes, and leaves nothing visible and no files behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datagen import (
    NOTHING_LEFT,
    dense_import,
    dense_table,
    leftovers,
    list_array,
    run_import,
    vectors,
    write,
)

from vecstore.api import Index

pytestmark = pytest.mark.dask

MODES = ["continue", "abort"]
DOCS = "https://docs.pinecone.io/guides/data/understanding-imports#directory-structure"


def complete_path(path: str) -> str:
    return (
        f'"{path}": It looks like you specified a complete path to a parquet file as the URI '
        "prefix to import from. Note that the URI prefix should give an ancestor directory with "
        f"subdirectories to specify each namespace to import into. See {DOCS}."
    )


def assert_failed(index: Index, store_root: Path, uri: Path | str, mode: str, error: str) -> None:
    job = run_import(index, uri, mode)
    assert job.status == "Failed", job
    assert job.error == error
    assert job.finished_at is not None
    assert job.percent_complete < 100
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT
    assert index.list_namespaces() == []
    assert index.describe_index_stats().total_vector_count == 0


def good_file(path: Path, n: int = 20, dim: int = 8, seed: int = 0) -> None:
    """A valid file; ids are unique across files (they carry the file name)."""
    write(path, dense_table([f"{path.stem}-{seed}-{i}" for i in range(n)], vectors(n, dim, seed)))


# ------------------------------------------------------------ directory layout


@pytest.mark.parametrize("mode", MODES)
def test_namespace_already_exists(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    index = make_index()
    dense_import(src, {"alpha": 30, "__default__": 30}, dim=8)
    first = run_import(index, src, mode)
    assert first.status == "Completed", first
    # a second import: "__default__" sorts first, and is shown by its directory name
    job = run_import(index, src, mode)
    assert job.status == "Failed"
    assert job.error == (
        'The namespace "__default__" already exists. Imports are only allowed into '
        "nonexistent namespaces."
    )
    # the first import's data is untouched and the failed one added nothing
    assert {n.name: n.record_count for n in index.list_namespaces()} == {"": 30, "alpha": 30}
    assert leftovers(store_root, index.name, job.id)["staging"] == []
    other = src.parent / "other"
    dense_import(other, {"alpha": 5, "beta": 5}, dim=8)
    job = run_import(index, other, mode)
    assert job.error == (
        'The namespace "alpha" already exists. Imports are only allowed into nonexistent '
        "namespaces."
    )
    assert sorted(n.name for n in index.list_namespaces()) == ["", "alpha"]


@pytest.mark.parametrize("mode", MODES)
def test_no_namespace_detected(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    index = make_index()
    good_file(src / "alpha" / "0.parquet")
    good_file(src / "b.parquet")
    good_file(src / "a.parquet")
    expected = (
        f'"{src}/a.parquet": No namespace detected. Each file should be nested under a '
        "subdirectory of the URI prefix. This indicates which namespace it should be imported into."
    )
    assert_failed(index, store_root, src, mode, expected)


@pytest.mark.parametrize("mode", MODES)
def test_no_parquet_files(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    index = make_index()

    def expected(uri: Path | str) -> str:
        return (
            f'No Parquet files found under "{uri}". Files must be stored with the specified '
            "bucket prefix."
        )

    assert_failed(index, store_root, src, mode, expected(src))  # empty directory
    # only hidden, marker and non-Parquet files
    (src / "alpha").mkdir()
    (src / "alpha" / "README.md").write_text("data\n")
    (src / "_SUCCESS").write_text("")
    good_file(src / "alpha" / "_tmp.parquet")
    good_file(src / "alpha" / ".part-0.parquet")
    good_file(src / "_temporary" / "0.parquet")
    assert_failed(index, store_root, src, mode, expected(src))
    missing = src.parent / "does-not-exist"
    assert_failed(index, store_root, missing, mode, expected(missing))


@pytest.mark.parametrize("mode", MODES)
def test_uri_is_a_parquet_file(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    index = make_index()
    good_file(src / "alpha" / "0.parquet")
    path = src / "alpha" / "0.parquet"
    assert_failed(index, store_root, path, mode, complete_path(str(path)))


@pytest.mark.parametrize("mode", MODES)
def test_uri_is_a_namespace_directory(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    index = make_index()
    good_file(src / "alpha" / "1.parquet")
    good_file(src / "alpha" / "0.parquet")
    assert_failed(index, store_root, src / "alpha", mode, complete_path(f"{src}/alpha/0.parquet"))


# ------------------------------------------------------------------- limits


@pytest.mark.parametrize(
    ("env", "value", "expected"),
    [
        ("VECSTORE_MAX_NAMESPACES", "2", "Exceeds system limit: 3 namespaces in one import (max 2)"),
        ("VECSTORE_MAX_FILES", "3", "Exceeds system limit: 4 files in one import (max 3)"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_limits_counts(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    env: str,
    value: str,
    expected: str,
) -> None:
    index = make_index()
    good_file(src / "a" / "0.parquet")
    good_file(src / "b" / "0.parquet", seed=1)
    good_file(src / "b" / "1.parquet", seed=2)
    good_file(src / "c" / "0.parquet", seed=3)
    monkeypatch.setenv(env, value)
    assert_failed(index, store_root, src, mode, expected)


@pytest.mark.parametrize("mode", MODES)
def test_limits_sizes(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    index = make_index()
    good_file(src / "a" / "0.parquet", n=10)
    good_file(src / "b" / "0.parquet", n=10, seed=1)
    good_file(src / "b" / "1.parquet", n=300, seed=2)
    big = src / "b" / "1.parquet"
    size_a = (src / "a" / "0.parquet").stat().st_size
    size_b = sum(p.stat().st_size for p in (src / "b").iterdir())
    # per file: the largest file is over, the others are not
    monkeypatch.setenv("VECSTORE_MAX_FILE_BYTES", str(big.stat().st_size - 1))
    assert_failed(
        index,
        store_root,
        src,
        mode,
        f'Exceeds system limit: file "{big}" has {big.stat().st_size} bytes '
        f"(max {big.stat().st_size - 1} bytes per file)",
    )
    # per namespace: "b" holds two files whose sum is over, each of them is under
    monkeypatch.delenv("VECSTORE_MAX_FILE_BYTES")
    monkeypatch.setenv("VECSTORE_MAX_NAMESPACE_BYTES", str(size_b - 1))
    assert size_a < size_b - 1 and big.stat().st_size < size_b - 1
    assert_failed(
        index,
        store_root,
        src,
        mode,
        f'Exceeds system limit: namespace "b" has {size_b} bytes '
        f"(max {size_b - 1} bytes per namespace)",
    )
    # at the limit exactly: fine
    monkeypatch.setenv("VECSTORE_MAX_NAMESPACE_BYTES", str(size_b))
    job = run_import(index, src, mode)
    assert (job.status, job.error) == ("Completed", None)


# ------------------------------------------------------------ file schemas


def _schema_cases(src: Path) -> list[tuple[str, pa.Table | bytes, str]]:
    """(file name, content, message after the file prefix)."""
    n, dim = 10, 8
    ids = [f"r{i}" for i in range(n)]
    vals = vectors(n, dim)
    meta = [json.dumps({"i": i}) for i in range(n)]
    return [
        (
            "missing-values",
            pa.table({"id": ids, "metadata": meta}),
            'Missing required column "values"',
        ),
        (
            "missing-id",
            pa.table({"values": list_array(vals)}),
            'Missing required column "id"',
        ),
        (
            "unsupported",
            pa.table({"id": ids, "values": list_array(vals), "extra": list(range(n))}),
            'Unsupported column "extra"',
        ),
        (
            "sparse-in-dense",
            pa.table(
                {
                    "id": ids,
                    "values": list_array(vals),
                    "sparse_values": pa.array(
                        [{"indices": [1], "values": [1.0]}] * n,
                        pa.struct([("indices", pa.list_(pa.uint32())), ("values", pa.list_(pa.float32()))]),
                    ),
                }
            ),
            'Unsupported column "sparse_values"',
        ),
        (
            "values-strings",
            pa.table({"id": ids, "values": pa.array([["a"] * dim] * n, pa.list_(pa.string()))}),
            'The expected data type for column "values" is "LIST<FLOAT>", but got "LIST<STRING>"',
        ),
        (
            "values-scalar",
            pa.table({"id": ids, "values": pa.array(np.arange(n, dtype=np.float32))}),
            'The expected data type for column "values" is "LIST<FLOAT>", but got "FLOAT"',
        ),
        (
            "id-int",
            pa.table({"id": pa.array(range(n), pa.int64()), "values": list_array(vals)}),
            'The expected data type for column "id" is "STRING", but got "INT64"',
        ),
        (
            "metadata-int",
            pa.table({"id": ids, "values": list_array(vals), "metadata": list(range(n))}),
            "The expected data type for metadata is a JSON encoded string in UTF-8 format, "
            'but got "INT64"',
        ),
        (
            "metadata-binary",
            pa.table(
                {"id": ids, "values": list_array(vals), "metadata": pa.array([m.encode() for m in meta])}
            ),
            "The expected data type for metadata is a JSON encoded string in UTF-8 format, "
            'but got "BINARY"',
        ),
        (
            "pandas-index",
            pa.table({"id": ids, "values": list_array(vals), "__index_level_0__": list(range(n))}),
            'Unsupported column "__index_level_0__". It holds the index of a pandas DataFrame: '
            "write the file with DataFrame.to_parquet(..., index=False)",
        ),
        (
            "decimal-values",
            pa.table(
                {"id": ids, "values": pa.array([[1] * dim] * n, pa.list_(pa.decimal128(4, 1)))}
            ),
            'The expected data type for column "values" is "LIST<FLOAT>", but got '
            '"LIST<DECIMAL128(4, 1)>". Decimal lists are what DuckDB writes for list literals '
            "such as [0.1, 0.2]: cast the column to FLOAT[] (values::FLOAT[])",
        ),
        (
            "metadata-struct",
            pa.table({"id": ids, "values": list_array(vals), "metadata": [{"i": i} for i in range(n)]}),
            "The expected data type for metadata is a JSON encoded string in UTF-8 format, "
            'but got "STRUCT<i: INT64>". Serialise the metadata to a JSON string (json.dumps in '
            "Python, to_json(metadata) in DuckDB)",
        ),
        (
            "corrupt",
            b"PAR1" + b"\x00garbage, not parquet\x00" * 20 + b"PAR1",
            "Parquet footer could not be parsed. Are you sure this is valid parquet?",
        ),
        (
            "truncated",
            b"",  # filled in below: a real file cut short
            "Parquet footer could not be parsed. Are you sure this is valid parquet?",
        ),
    ]


SCHEMA_CASES = [c[0] for c in _schema_cases(Path("."))]


def _write_bad(src: Path, case: str) -> tuple[Path, str]:
    name, content, message = next(c for c in _schema_cases(src) if c[0] == case)
    good_file(src / "alpha" / "0.parquet")
    good_file(src / "beta" / "0.parquet", seed=1)
    bad = src / "beta" / f"{name}.parquet"
    if case == "truncated":
        good_file(bad, n=100, seed=2)
        content = bad.read_bytes()[:-40]
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        write(bad, content)
    return bad, message


@pytest.mark.parametrize("case", SCHEMA_CASES)
@pytest.mark.parametrize("mode", MODES)
def test_schema_error(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str, case: str
) -> None:
    """A bad file among good ones fails the whole import with the file's message.

    The file is named by its key relative to the import URI (see
    test_schema_error_names_the_file_like_record_errors for the convention)."""
    index = make_index()
    bad, message = _write_bad(src, case)
    assert_failed(index, store_root, src, mode, f'file "{bad}": {message}')


def test_schema_error_names_the_file_like_record_errors(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    index = make_index()
    bad, message = _write_bad(src, "unsupported")
    assert_failed(index, store_root, src, "abort", f'file "{bad}": {message}')


# ------------------------------------------------------------ corrupt data


def _page_of(path: Path, row_group: int) -> tuple[int, int]:
    """(start, end) of the ``values`` column chunk of ``row_group``."""
    col = pq.ParquetFile(path).metadata.row_group(row_group).column(1)
    return col.data_page_offset, col.data_page_offset + col.total_compressed_size


def _flip(path: Path, offset: int, n: int = 1) -> None:
    data = bytearray(path.read_bytes())
    for i in range(offset, offset + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _read_error(path: Path, row_group: int, rows: str, reason: str) -> str:
    return (
        f'file "{path}": row group {row_group} (rows {rows}) could not be read: {reason}. '
        "Are you sure this is valid parquet?"
    )


def _paged_file(path: Path, **kwargs: object) -> None:
    """60 rows in row groups of 20, plain (no dictionary) pages."""
    t = dense_table([f"{path.stem}-{i}" for i in range(60)], vectors(60, 8, seed=3))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(t, path, row_group_size=20, use_dictionary=False, **kwargs)


@pytest.mark.parametrize(
    ("offset", "reason", "mode"),
    [
        (8, "Corrupt snappy compressed data", "continue"),
        # thrift's own message holds a control character (0x0e), shown escaped
        (
            45,
            "Couldn't deserialize thrift: don't know what type: \\x0e; Deserializing page "
            "header failed",
            "abort",
        ),
    ],
    ids=["snappy", "thrift"],
)
def test_corrupt_data_page(
    make_index: Callable[..., Index],
    store_root: Path,
    src: Path,
    offset: int,
    reason: str,
    mode: str,
) -> None:
    """A corrupt page (one byte flipped, found by flipping each in turn): the
    job fails naming the file and row group in clean text, in both error
    modes, instead of ``Internal error: OSError: ...``."""
    index = make_index()
    good_file(src / "alpha" / "0.parquet")
    bad = src / "beta" / "0.parquet"
    _paged_file(bad, compression="snappy")
    start, _ = _page_of(bad, 2)
    _flip(bad, start + offset)
    expected = _read_error(bad, 2, "40-59", reason)
    assert expected.isprintable()
    assert_failed(index, store_root, src, mode, expected)


@pytest.mark.parametrize("mode", MODES)
def test_page_checksum_mismatch(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    """A file written with page checksums whose values were altered in place
    fails; without the check it imported as Completed with garbage values."""
    index = make_index()
    bad = src / "alpha" / "0.parquet"
    _paged_file(bad, compression="none", write_page_checksum=True)
    start, end = _page_of(bad, 1)
    _flip(bad, (start + end) // 2, 4)
    reason = "could not verify page integrity, CRC checksum verification failed for page_ordinal 0"
    assert_failed(index, store_root, src, mode, _read_error(bad, 1, "20-39", reason))


@pytest.mark.parametrize("mode", MODES)
def test_namespace_of_0_row_files(
    make_index: Callable[..., Index], store_root: Path, src: Path, mode: str
) -> None:
    index = make_index()
    good_file(src / "alpha" / "0.parquet")
    for name in ("0.parquet", "1.parquet"):
        write(src / "empty" / name, dense_table([], np.zeros((0, 8), np.float32)))
    assert_failed(
        index, store_root, src, mode, "No records found for namespace: empty (its files have 0 rows)"
    )


def test_undecodable_namespace_directory(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    index = make_index()
    good_file(src / "caf%C3%A9" / "0.parquet")
    job = run_import(index, src, "abort")
    assert (job.status, [n.name for n in index.list_namespaces()]) == ("Completed", ["café"])
    other = src.parent / "other"
    good_file(other / "caf%E9" / "0.parquet", seed=1)
    job = run_import(index, other, "continue")
    assert job.status == "Failed"
    assert job.error == (
        'Invalid namespace directory "caf%E9": its name is not valid UTF-8 once percent-decoded. '
        'Name the directory in UTF-8 (percent-encode UTF-8 bytes, "caf%C3%A9" for "café")'
    )
    assert [n.name for n in index.list_namespaces()] == ["café"]
