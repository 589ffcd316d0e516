"""pipelines.discover: listing an import directory and reading file footers.

Real Parquet files in ``memory://`` (one fresh root per test) and tmp_path.
"""

from __future__ import annotations

import io
import pickle
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore.errors import IngestError, InvalidArgumentError, LimitExceededError, SchemaError
from vecstore.pipelines.discover import (
    DOCS_URL,
    Discovery,
    FileInfo,
    SourceFile,
    discover,
    display_path,
    inspect_file,
    type_name,
)
from vecstore.schemas.arrow import SPARSE_TYPE, ImportKind
from vecstore.storage import Store

KINDS: tuple[ImportKind, ...] = ("dense", "sparse", "hybrid")


@pytest.fixture
def mem() -> Iterator[Store]:
    store = Store(f"memory://discover-{uuid.uuid4().hex}/test-import")
    yield store
    with suppress(FileNotFoundError):
        store.fs.rm(store.root.rsplit("/", 1)[0], recursive=True)


def parquet_bytes(table: pa.Table, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **kwargs)
    return buf.getvalue()


def dense_table(n: int = 3, dim: int = 2) -> pa.Table:
    return pa.table(
        {
            "id": [str(i) for i in range(n)],
            "values": pa.array([[float(i)] * dim for i in range(n)], pa.list_(pa.float32())),
        }
    )


def sparse_column(n: int, indices: pa.DataType | None = None) -> pa.Array:
    t = pa.struct(
        [("indices", pa.list_(indices or pa.uint32())), ("values", pa.list_(pa.float32()))]
    )
    return pa.array([{"indices": [i], "values": [1.0]} for i in range(n)], t)


def table_for(kind: ImportKind, n: int = 3) -> pa.Table:
    cols: dict[str, pa.Array] = {"id": pa.array([str(i) for i in range(n)])}
    if kind != "sparse":
        cols["values"] = pa.array([[1.0, 2.0]] * n, pa.list_(pa.float32()))
    if kind != "dense":
        cols["sparse_values"] = sparse_column(n)
    cols["metadata"] = pa.array(['{"a": 1}'] * n)
    return pa.table(cols)


def put(store: Store, key: str, data: bytes | pa.Table = b"PAR1") -> int:
    raw = parquet_bytes(data) if isinstance(data, pa.Table) else data
    store.write_bytes(key, raw)
    return len(raw)


def file_error(source: Store, table: pa.Table | bytes, kind: ImportKind) -> SchemaError:
    size = put(source, "ns1/0.parquet", table)
    with pytest.raises(SchemaError) as info:
        inspect_file(source, SourceFile("ns1/0.parquet", size, "ns1"), kind, 2)
    err = info.value
    # files are named as record errors name them: the full path here (memory://)
    shown = display_path(source, "ns1/0.parquet")
    assert shown.endswith("/test-import/ns1/0.parquet")
    assert err.message.startswith(f'file "{shown}": ') and err.file == shown
    # the rest of this module compares the message with the relative key in its place
    context = {**err.context, "file": "ns1/0.parquet"}
    return SchemaError(err.message.replace(shown, "ns1/0.parquet", 1), **context)


# ---------------------------------------------------------------- discover


def test_groups_namespaces_and_sorts_files(mem: Store) -> None:
    sizes = {
        key: put(mem, key, b"x" * i)
        for i, key in enumerate(
            ["ns-b/1.parquet", "ns-b/0.parquet", "ns-a/x.parquet", "__default__/d.parquet"], 1
        )
    }
    d = discover(mem, mem.uri, set())
    assert list(d.namespaces) == ["", "ns-a", "ns-b"]
    assert [(f.key, f.size, f.namespace) for f in d.namespaces["ns-b"]] == [
        ("ns-b/0.parquet", sizes["ns-b/0.parquet"], "ns-b"),
        ("ns-b/1.parquet", sizes["ns-b/1.parquet"], "ns-b"),
    ]
    assert [(f.key, f.size, f.namespace) for f in d.namespaces[""]] == [
        ("__default__/d.parquet", 4, "")
    ]
    assert all(f.version.startswith("mtime:") for f in d.files)  # memory:// lists a time
    assert d.deletes == {} and d.delete_files == []
    assert d.total_bytes == sum(sizes.values()) == 10
    assert d.num_files == 4
    assert [f.key for f in d.files] == [
        "__default__/d.parquet",
        "ns-a/x.parquet",
        "ns-b/0.parquet",
        "ns-b/1.parquet",
    ]
    assert pickle.loads(pickle.dumps(d)) == d


def test_hidden_marker_and_other_files_are_ignored(mem: Store) -> None:
    for key in [
        "_SUCCESS",
        "notes.txt",
        "_root.parquet",
        ".root.parquet",
        "_temporary/0/ns/x.parquet",
        ".hidden/x.parquet",
        "_ns/x.parquet",
        "ns/_SUCCESS",
        "ns/.0.parquet.crc",
        "ns/0.parquet.crc",
        "ns/_tmp/x.parquet",
        "ns/sub/.x.parquet",
        "ns/README.md",
        "ns/schema.json",
        "other/only.json",
    ]:
        put(mem, key)
    put(mem, "ns/0.parquet")
    d = discover(mem, mem.uri, set())
    assert {ns: [f.key for f in files] for ns, files in d.namespaces.items()} == {
        "ns": ["ns/0.parquet"]
    }


def test_nested_files_belong_to_their_namespace_recursively(mem: Store) -> None:
    for key in ["ns/z.parquet", "ns/part=1/b.parquet", "ns/part=1/a/x.parquet", "ns/A.PARQUET"]:
        put(mem, key)
    d = discover(mem, mem.uri, set())
    assert [f.key for f in d.namespaces["ns"]] == [
        "ns/A.PARQUET",
        "ns/part=1/a/x.parquet",
        "ns/part=1/b.parquet",
        "ns/z.parquet",
    ]


def test_directory_names_are_percent_decoded(mem: Store) -> None:
    put(mem, "%5Fdrafts/0.parquet")
    put(mem, "a%20b/0.parquet")
    assert list(discover(mem, mem.uri, set()).namespaces) == ["_drafts", "a b"]


def test_two_directories_naming_one_namespace_fail(mem: Store) -> None:
    put(mem, "a b/0.parquet")
    put(mem, "a%20b/0.parquet")
    with pytest.raises(IngestError, match='both name the namespace "a b"'):
        discover(mem, mem.uri, set())


def test_namespace_names_up_to_512_characters(mem: Store) -> None:
    put(mem, f"{'a' * 512}/0.parquet")
    assert list(discover(mem, mem.uri, set()).namespaces) == ["a" * 512]
    put(mem, f"{'b' * 513}/0.parquet")
    with pytest.raises(IngestError) as info:
        discover(mem, mem.uri, set())
    assert info.value.message == (
        f'Invalid namespace name from directory "{"b" * 513}": a namespace name has 1-512 '
        "characters, got 513"
    )


def test_namespace_that_exists_fails(mem: Store) -> None:
    put(mem, "example-namespace/0.parquet")
    put(mem, "fresh/0.parquet")
    with pytest.raises(IngestError) as info:
        discover(mem, mem.uri, {"example-namespace", "other"})
    assert type(info.value) is IngestError
    assert info.value.message == (
        'The namespace "example-namespace" already exists. Imports are only allowed into '
        "nonexistent namespaces."
    )
    assert info.value.namespace == "example-namespace"


def test_default_namespace_that_exists_is_named_default(mem: Store) -> None:
    put(mem, "__default__/0.parquet")
    assert list(discover(mem, mem.uri, {"x"}).namespaces) == [""]
    with pytest.raises(IngestError) as info:
        discover(mem, mem.uri, {""})
    assert str(info.value) == (
        'The namespace "__default__" already exists. Imports are only allowed into '
        "nonexistent namespaces."
    )


def test_file_beside_namespaces_has_no_namespace(mem: Store) -> None:
    put(mem, "ns/0.parquet")
    put(mem, "1.parquet")
    put(mem, "0.parquet")
    with pytest.raises(IngestError) as info:
        discover(mem, mem.uri, set())
    assert info.value.message == (
        f'"{mem.root}/0.parquet": No namespace detected. Each file should be nested under a '
        "subdirectory of the URI prefix. This indicates which namespace it should be imported "
        "into."
    )
    assert not info.value.message.startswith("User error")
    assert info.value.file == "0.parquet"


def complete_path(path: str) -> str:
    return (
        f'"{path}": It looks like you specified a complete path to a parquet file as the URI '
        "prefix to import from. Note that the URI prefix should give an ancestor directory "
        "with subdirectories to specify each namespace to import into. See "
        "https://docs.pinecone.io/guides/data/understanding-imports#directory-structure."
    )


def test_uri_of_a_namespace_directory_is_a_complete_path(mem: Store) -> None:
    put(mem, "1.parquet")
    put(mem, "0.parquet")
    put(mem, "empty/notes.json")
    with pytest.raises(IngestError) as info:
        discover(mem, mem.uri, set())
    assert info.value.message == complete_path(f"{mem.root}/0.parquet")
    assert DOCS_URL in info.value.message


def test_uri_of_a_parquet_file_is_a_complete_path(mem: Store, tmp_path: Path) -> None:
    put(mem, "ns/0.parquet")
    with pytest.raises(IngestError) as info:
        discover(mem.child("ns/0.parquet"), f"{mem.uri}/ns/0.parquet", set())
    assert info.value.message == complete_path(f"{mem.root}/ns/0.parquet")
    local = tmp_path / "test-import" / "0.parquet"
    local.parent.mkdir()
    local.write_bytes(parquet_bytes(dense_table()))
    with pytest.raises(IngestError) as info:
        discover(Store(str(local)), str(local), set())
    assert info.value.message == complete_path(str(local))


def test_cloud_paths_are_shown_as_keys_in_the_bucket() -> None:
    s3 = Store("s3://example-bucket/test-import", {"anon": True})
    assert display_path(s3, "0.parquet") == "test-import/0.parquet"
    assert display_path(s3.child("0.parquet"), "") == "test-import/0.parquet"


def no_files(uri: str) -> str:
    return f'No Parquet files found under "{uri}". Files must be stored with the specified bucket prefix.'


@pytest.mark.parametrize(
    "keys",
    [
        [],
        ["_SUCCESS", ".hidden.parquet"],
        ["ns/schema.json", "ns/_SUCCESS", "README.md"],
        ["ns/.0.parquet.crc", "_temporary/ns/0.parquet"],
    ],
)
def test_no_parquet_files(mem: Store, keys: list[str]) -> None:
    for key in keys:
        put(mem, key)
    uri = "gs://example_bucket/imports"  # the message names the URI as the user gave it
    with pytest.raises(IngestError) as info:
        discover(mem, uri, set())
    assert info.value.message == no_files(uri)


def test_missing_uri_and_non_parquet_file_have_no_parquet_files(mem: Store, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="^No Parquet files found under"):
        discover(Store(str(tmp_path / "nope")), str(tmp_path / "nope"), set())
    put(mem, "data.csv", b"a,b")
    with pytest.raises(IngestError) as info:
        discover(mem.child("data.csv"), "memory://x/data.csv", set())
    assert info.value.message == no_files("memory://x/data.csv")


def test_directory_without_parquet_files_is_not_a_namespace(mem: Store) -> None:
    put(mem, "ns/0.parquet")
    put(mem, "empty/readme.txt")
    assert list(discover(mem, mem.uri, {"empty"}).namespaces) == ["ns"]


def test_local_directory(tmp_path: Path) -> None:
    root = tmp_path / "imp"
    (root / "__default__").mkdir(parents=True)
    (root / "__default__" / "0.parquet").write_bytes(parquet_bytes(dense_table()))
    (root / "__default__" / "_SUCCESS").write_bytes(b"")
    d = discover(Store(str(root)), str(root), set())
    assert [(f.key, f.namespace) for f in d.files] == [("__default__/0.parquet", "")]
    assert d.total_bytes == (root / "__default__" / "0.parquet").stat().st_size


# ------------------------------------------------------------------- limits


def test_limit_on_namespaces(mem: Store) -> None:
    for ns in "abc":
        put(mem, f"{ns}/0.parquet")
    assert len(discover(mem, mem.uri, set(), max_namespaces=3).namespaces) == 3
    with pytest.raises(LimitExceededError) as info:
        discover(mem, mem.uri, set(), max_namespaces=2)
    assert info.value.message == "Exceeds system limit: 3 namespaces in one import (max 2)"
    assert isinstance(info.value, IngestError)


def test_limit_on_files(mem: Store) -> None:
    for key in ["a/0.parquet", "a/1.parquet", "b/0.parquet", "b/_SUCCESS"]:
        put(mem, key)
    assert discover(mem, mem.uri, set(), max_files=3).num_files == 3
    with pytest.raises(LimitExceededError) as info:
        discover(mem, mem.uri, set(), max_files=2)
    assert info.value.message == "Exceeds system limit: 3 files in one import (max 2)"


def test_limit_on_file_size(mem: Store) -> None:
    put(mem, "a/0.parquet", b"x" * 10)
    put(mem, "b/0.parquet", b"x" * 11)
    discover(mem, mem.uri, set(), max_file_bytes=11)
    with pytest.raises(LimitExceededError) as info:
        discover(mem, mem.uri, set(), max_file_bytes=10)
    assert info.value.message == (
        f'Exceeds system limit: file "{mem.root}/b/0.parquet" has 11 bytes (max 10 bytes per file)'
    )
    assert info.value.file == "b/0.parquet"


def test_limit_on_namespace_size(mem: Store) -> None:
    put(mem, "__default__/0.parquet", b"x" * 10)
    put(mem, "__default__/1.parquet", b"x" * 10)
    discover(mem, mem.uri, set(), max_namespace_bytes=20)
    with pytest.raises(LimitExceededError) as info:
        discover(mem, mem.uri, set(), max_namespace_bytes=19)
    assert info.value.message == (
        'Exceeds system limit: namespace "__default__" has 20 bytes (max 19 bytes per namespace)'
    )


def test_errors_pickle(mem: Store) -> None:
    put(mem, "a/0.parquet")
    put(mem, "b/0.parquet")
    with pytest.raises(LimitExceededError) as info:
        discover(mem, mem.uri, set(), max_namespaces=1)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is LimitExceededError and again.message == info.value.message


# ------------------------------------------------------------ inspect_file


@pytest.mark.parametrize("kind", KINDS)
def test_inspect_reads_the_footer(mem: Store, kind: ImportKind) -> None:
    table = table_for(kind, 10)
    raw = parquet_bytes(table, row_group_size=4)
    put(mem, "ns1/0.parquet", raw)
    info = inspect_file(mem, SourceFile("ns1/0.parquet", len(raw), "ns1"), kind, 2)
    assert info == FileInfo("ns1/0.parquet", "ns1", len(raw), 10, [4, 4, 2])


@pytest.mark.parametrize("kind", KINDS)
def test_inspect_without_optional_columns(mem: Store, kind: ImportKind) -> None:
    table = table_for(kind).drop_columns(["metadata"])
    if kind == "hybrid":
        table = table.drop_columns(["sparse_values"])
    info = inspect_file(mem, SourceFile("k.parquet", put(mem, "k.parquet", table), "ns"), kind, 2)
    assert info.num_rows == 3


def test_inspect_needs_a_dimension_for_dense(mem: Store) -> None:
    with pytest.raises(InvalidArgumentError):
        inspect_file(mem, SourceFile("k.parquet", 1, "ns"), "dense", None)


REQUIRED = {
    "dense": ["id", "values"],
    "sparse": ["id", "sparse_values"],
    "hybrid": ["id", "values"],
}


@pytest.mark.parametrize(("kind", "column"), [(k, c) for k in KINDS for c in REQUIRED[k]])
def test_missing_required_column(mem: Store, kind: ImportKind, column: str) -> None:
    err = file_error(mem, table_for(kind).drop_columns([column]), kind)
    assert err.message == f'file "ns1/0.parquet": Missing required column "{column}"'
    assert (err.file, err.column) == ("ns1/0.parquet", column)


@pytest.mark.parametrize("kind", KINDS)
def test_unsupported_column(mem: Store, kind: ImportKind) -> None:
    table = table_for(kind).append_column("foo", pa.array([1, 2, 3]))
    err = file_error(mem, table, kind)
    assert err.message == 'file "ns1/0.parquet": Unsupported column "foo"'
    assert err.column == "foo"


def test_vector_kind_of_the_other_index_is_unsupported(mem: Store) -> None:
    with_values = table_for("sparse").append_column("values", pa.array([[1.0]] * 3))
    assert file_error(mem, with_values, "sparse").message == (
        'file "ns1/0.parquet": Unsupported column "values"'
    )
    assert file_error(mem, table_for("hybrid"), "dense").message == (
        'file "ns1/0.parquet": Unsupported column "sparse_values"'
    )


def set_column(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)


def type_message(column: str, expected: str, got: str) -> str:
    return (
        f'file "ns1/0.parquet": The expected data type for column "{column}" is "{expected}", '
        f'but got "{got}"'
    )


@pytest.mark.parametrize("kind", KINDS)
def test_wrong_type_for_id(mem: Store, kind: ImportKind) -> None:
    table = set_column(table_for(kind), "id", pa.array([1, 2, 3]))
    err = file_error(mem, table, kind)
    assert err.message == type_message("id", "STRING", "INT64")
    assert err.column == "id"


@pytest.mark.parametrize("kind", ["dense", "hybrid"])
@pytest.mark.parametrize(
    ("array", "got"),
    [
        (pa.array(["1.0", "2.0", "3.0"]), "STRING"),
        (pa.array([["a"], ["b"], ["c"]]), "LIST<STRING>"),
        (pa.array([[True], [False], [True]]), "LIST<BOOL>"),
        (pa.array([1.0, 2.0, 3.0]), "DOUBLE"),
    ],
)
def test_wrong_type_for_values(mem: Store, kind: ImportKind, array: pa.Array, got: str) -> None:
    err = file_error(mem, set_column(table_for(kind), "values", array), kind)
    assert err.message == type_message("values", "LIST<FLOAT>", got)


SPARSE_EXPECTED = "STRUCT<indices: LIST<UINT32>, values: LIST<FLOAT>>"


@pytest.mark.parametrize("kind", ["sparse", "hybrid"])
@pytest.mark.parametrize(
    ("array", "got"),
    [
        (pa.array([[1.0]] * 3), "LIST<DOUBLE>"),
        (
            pa.array([{"indices": [1.5], "values": [1.0]}] * 3),
            "STRUCT<indices: LIST<DOUBLE>, values: LIST<DOUBLE>>",
        ),
        (
            pa.array([{"indices": [1], "values": ["x"]}] * 3),
            "STRUCT<indices: LIST<INT64>, values: LIST<STRING>>",
        ),
        (pa.array([{"indices": [1]}] * 3), "STRUCT<indices: LIST<INT64>>"),
        (
            pa.array([{"indices": [1], "values": [1.0], "extra": 1}] * 3),
            "STRUCT<indices: LIST<INT64>, values: LIST<DOUBLE>, extra: INT64>",
        ),
    ],
)
def test_wrong_type_for_sparse_values(
    mem: Store, kind: ImportKind, array: pa.Array, got: str
) -> None:
    err = file_error(mem, set_column(table_for(kind), "sparse_values", array), kind)
    assert err.message == type_message("sparse_values", SPARSE_EXPECTED, got)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("array", "got"), [(pa.array([1, 2, 3]), "INT64"), (pa.array([b"{}"] * 3), "BINARY")]
)
def test_metadata_not_a_string(mem: Store, kind: ImportKind, array: pa.Array, got: str) -> None:
    err = file_error(mem, set_column(table_for(kind), "metadata", array), kind)
    assert err.message == (
        'file "ns1/0.parquet": The expected data type for metadata is a JSON encoded string in '
        f'UTF-8 format, but got "{got}"'
    )
    assert err.column == "metadata"


FOOTER = (
    'file "ns1/0.parquet": Parquet footer could not be parsed. Are you sure this is valid parquet?'
)


@pytest.mark.parametrize("kind", KINDS)
def test_corrupt_files(mem: Store, kind: ImportKind) -> None:
    good = parquet_bytes(table_for(kind, 100))
    for raw in [
        b"",
        b"id,values\n1,2\n",
        good[: len(good) // 2],
        good[:-3],
        good[:-12] + b"\0" * 8 + good[-4:],  # footer length and metadata garbled
    ]:
        err = file_error(mem, raw, kind)
        assert err.message == FOOTER
        assert type(err) is SchemaError and err.file == "ns1/0.parquet"


@pytest.mark.parametrize(
    "values",
    [
        pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float64())),
        pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float16())),
        pa.array([[1, 2]] * 3, pa.list_(pa.int32())),
        pa.array([[1, 2]] * 3, pa.list_(pa.uint8())),
        pa.array([[1.0, 2.0]] * 3, pa.large_list(pa.float32())),
        pa.array([[1.0, 2.0]] * 3, pa.list_(pa.float32(), 2)),
        pa.array([[1.0, 2.0, 3.0]] * 3, pa.list_(pa.float32(), 3)),  # wrong size: record errors
    ],
)
def test_accepted_values_types(mem: Store, values: pa.Array) -> None:
    for kind in ("dense", "hybrid"):
        table = set_column(table_for(kind), "values", values)
        table = set_column(table, "id", pa.array(["a", "b", "c"], pa.large_string()))
        size = put(mem, "k.parquet", table)
        assert inspect_file(mem, SourceFile("k.parquet", size, "ns"), kind, 2).num_rows == 3


@pytest.mark.parametrize("indices", [pa.int64(), pa.uint32(), pa.int8(), pa.uint64()])
def test_accepted_sparse_types(mem: Store, indices: pa.DataType) -> None:
    for kind in ("sparse", "hybrid"):
        table = set_column(table_for(kind), "sparse_values", sparse_column(3, indices))
        table = set_column(table, "metadata", pa.array(["{}", None, "{}"], pa.large_string()))
        size = put(mem, "k.parquet", table)
        assert inspect_file(mem, SourceFile("k.parquet", size, "ns"), kind, 2).num_rows == 3


def test_optional_columns_may_be_all_null(mem: Store) -> None:
    table = set_column(table_for("hybrid"), "metadata", pa.nulls(3))
    table = set_column(table, "sparse_values", pa.nulls(3))
    size = put(mem, "k.parquet", table)
    assert inspect_file(mem, SourceFile("k.parquet", size, "ns"), "hybrid", 2).num_rows == 3
    table = set_column(table_for("sparse"), "sparse_values", pa.nulls(3))
    err = file_error(mem, table, "sparse")
    assert err.message == type_message("sparse_values", SPARSE_EXPECTED, "NULL")


def test_type_names() -> None:
    assert type_name(pa.list_(pa.float64())) == "LIST<DOUBLE>"
    assert type_name(pa.large_list(pa.int8())) == "LARGE_LIST<INT8>"
    assert type_name(pa.list_(pa.float32(), 4)) == "FIXED_SIZE_LIST<FLOAT, 4>"
    assert type_name(SPARSE_TYPE) == SPARSE_EXPECTED
    assert type_name(pa.dictionary(pa.int32(), pa.string())) == "DICTIONARY<STRING>"
    assert type_name(pa.large_string()) == "LARGE_STRING"


def test_discovery_type_is_frozen() -> None:
    d = Discovery(namespaces={}, total_bytes=0)
    with pytest.raises(AttributeError):
        d.total_bytes = 1  # type: ignore[misc]


# ------------------------------------------------- what common writers produce


def json_column(texts: list[str | None], storage: pa.DataType | None = None) -> pa.Array:
    """A JSON extension column (``arrow.json``), as DuckDB writes ``JSON``."""
    return pa.array(texts, storage or pa.string()).cast(pa.json_(storage or pa.string()))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("storage", [pa.string(), pa.large_string(), pa.string_view()])
def test_json_extension_and_string_view_columns_are_strings(
    mem: Store, kind: ImportKind, storage: pa.DataType
) -> None:
    table = set_column(table_for(kind), "metadata", json_column(['{"a": 1}', None, "{}"], storage))
    table = set_column(table, "id", pa.array(["a", "b", "c"], pa.string_view()))
    size = put(mem, "k.parquet", table)
    schema = pq.read_schema(pa.BufferReader(mem.read_bytes("k.parquet")))
    assert schema.field("metadata").type == pa.json_(storage)  # what a reader sees
    assert schema.field("id").type == pa.string_view()
    assert inspect_file(mem, SourceFile("k.parquet", size, "ns"), kind, 2).num_rows == 3
    # string_view metadata too
    table = set_column(table, "metadata", pa.array(['{"a": 1}', None, "{}"], pa.string_view()))
    size = put(mem, "k.parquet", table)
    assert inspect_file(mem, SourceFile("k.parquet", size, "ns"), kind, 2).num_rows == 3


def test_pandas_index_column_gets_a_hint(mem: Store) -> None:
    """pandas writes its index as ``__index_level_0__`` (or under the index's
    name, listed in the ``pandas`` schema metadata) unless ``index=False``."""
    hint = (
        ". It holds the index of a pandas DataFrame: write the file with "
        "DataFrame.to_parquet(..., index=False)"
    )
    table = table_for("dense").append_column("__index_level_0__", pa.array([0, 1, 2]))
    err = file_error(mem, table, "dense")
    assert err.message == f'file "ns1/0.parquet": Unsupported column "__index_level_0__"{hint}'
    named = table_for("dense").append_column("row_no", pa.array([0, 1, 2]))
    named = named.replace_schema_metadata(
        {"pandas": '{"index_columns": ["row_no"], "columns": []}'}
    )
    assert file_error(mem, named, "dense").message == (
        f'file "ns1/0.parquet": Unsupported column "row_no"{hint}'
    )
    other = table_for("dense").append_column("row_no", pa.array([0, 1, 2]))
    assert file_error(mem, other, "dense").message == 'file "ns1/0.parquet": Unsupported column "row_no"'


DECIMAL_HINT = (
    ". Decimal lists are what DuckDB writes for list literals such as [0.1, 0.2]: cast the "
    "column to FLOAT[] (values::FLOAT[])"
)


@pytest.mark.parametrize("kind", ["dense", "hybrid"])
def test_decimal_values_get_a_hint(mem: Store, kind: ImportKind) -> None:
    decimals = pa.array([[1, 2]] * 3, pa.list_(pa.decimal128(4, 1)))
    err = file_error(mem, set_column(table_for(kind), "values", decimals), kind)
    assert err.message == type_message("values", "LIST<FLOAT>", "LIST<DECIMAL128(4, 1)>") + DECIMAL_HINT


def test_decimal_sparse_values_get_a_hint(mem: Store) -> None:
    t = pa.struct([("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.decimal128(3, 2)))])
    sparse = pa.array([{"indices": [1], "values": [1]}] * 3, t)
    err = file_error(mem, set_column(table_for("sparse"), "sparse_values", sparse), "sparse")
    assert err.message == (
        type_message(
            "sparse_values", SPARSE_EXPECTED, "STRUCT<indices: LIST<INT32>, values: LIST<DECIMAL128(3, 2)>>"
        )
        + DECIMAL_HINT
    )


@pytest.mark.parametrize(
    ("array", "got"),
    [
        (pa.array([{"genre": "drama"}] * 3), "STRUCT<genre: STRING>"),
        (pa.array([[("genre", "drama")]] * 3, pa.map_(pa.string(), pa.string())), "MAP<STRING, STRING>"),
    ],
)
def test_metadata_struct_gets_a_hint(mem: Store, array: pa.Array, got: str) -> None:
    err = file_error(mem, set_column(table_for("dense"), "metadata", array), "dense")
    assert err.message == (
        'file "ns1/0.parquet": The expected data type for metadata is a JSON encoded string in '
        f'UTF-8 format, but got "{got}". Serialise the metadata to a JSON string (json.dumps in '
        "Python, to_json(metadata) in DuckDB)"
    )


def test_duckdb_files(mem: Store, tmp_path: Path) -> None:
    """Files written by DuckDB itself: ``JSON`` metadata is accepted, its
    default decimal list literals are refused with the hint."""
    import duckdb

    con = duckdb.connect()
    rows = "SELECT 'r' || i::VARCHAR AS id, {values} AS values, '{{\"i\": 1}}'::JSON AS metadata FROM range(3) t(i)"
    good = tmp_path / "good.parquet"
    con.execute(f"COPY ({rows.format(values='[0.5, 1.5]::FLOAT[]')}) TO '{good}' (FORMAT parquet)")
    size = put(mem, "ns1/good.parquet", good.read_bytes())
    assert inspect_file(mem, SourceFile("ns1/good.parquet", size, "ns1"), "dense", 2).num_rows == 3
    decimals = tmp_path / "decimals.parquet"
    con.execute(f"COPY ({rows.format(values='[0.5, 1.5]')}) TO '{decimals}' (FORMAT parquet)")
    err = file_error(mem, decimals.read_bytes(), "dense")
    assert err.message == type_message("values", "LIST<FLOAT>", "LIST<DECIMAL128(2, 1)>") + DECIMAL_HINT


def test_directory_names_that_do_not_decode_are_refused(mem: Store) -> None:
    put(mem, "caf%C3%A9/0.parquet")
    put(mem, "50%off/0.parquet")  # not an escape: kept as is
    assert list(discover(mem, mem.uri, set()).namespaces) == ["50%off", "café"]
    put(mem, "caf%E9/0.parquet")  # Latin-1: no UTF-8
    with pytest.raises(IngestError) as info:
        discover(mem, mem.uri, set())
    assert info.value.message == (
        'Invalid namespace directory "caf%E9": its name is not valid UTF-8 once percent-decoded. '
        'Name the directory in UTF-8 (percent-encode UTF-8 bytes, "caf%C3%A9" for "café")'
    )
