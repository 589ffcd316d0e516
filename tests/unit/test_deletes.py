"""pipelines.deletes (reading delete files of a load) and discovery of delete files.

Real Parquet files in a fresh ``memory://`` root per test.
"""

from __future__ import annotations

import io
import pickle
import uuid
from collections.abc import Iterator
from contextlib import suppress

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore.errors import IngestError, InvalidArgumentError, LimitExceededError, SchemaError
from vecstore.pipelines.deletes import read_delete_file
from vecstore.pipelines.discover import SourceFile, discover, is_delete_key
from vecstore.storage import Store


@pytest.fixture
def mem() -> Iterator[Store]:
    store = Store(f"memory://deletes-{uuid.uuid4().hex}/load")
    yield store
    with suppress(FileNotFoundError):
        store.fs.rm(store.root.rsplit("/", 1)[0], recursive=True)


def put(store: Store, key: str, table: pa.Table | bytes, **kwargs: object) -> SourceFile:
    if isinstance(table, pa.Table):
        buf = io.BytesIO()
        pq.write_table(table, buf, **kwargs)
        raw = buf.getvalue()
    else:
        raw = table
    store.write_bytes(key, raw)
    return SourceFile(key, len(raw), key.split("/", 1)[0])


def dense(n: int = 2) -> pa.Table:
    return pa.table(
        {
            "id": [f"r{i}" for i in range(n)],
            "values": pa.array([[1.0, 2.0]] * n, pa.list_(pa.float32())),
        }
    )


# ------------------------------------------------------------------ reading


def test_ids_unique_in_first_row_order(mem: Store) -> None:
    f = put(mem, "ns/deletes/a.parquet", pa.table({"id": ["b", "a", "b", "c"]}))
    assert read_delete_file(mem, f) == (["b", "a", "c"], [])


def test_prefixes(mem: Store) -> None:
    f = put(mem, "ns/deletes/p.parquet", pa.table({"prefix": ["doc-1#", "doc-2#"]}))
    assert read_delete_file(mem, f) == ([], ["doc-1#", "doc-2#"])


def test_empty_file_deletes_nothing(mem: Store) -> None:
    f = put(mem, "ns/deletes/e.parquet", pa.table({"id": pa.array([], pa.string())}))
    assert read_delete_file(mem, f) == ([], [])


@pytest.mark.parametrize(
    "array",
    [
        pa.array(["x", "y"], pa.large_string()),
        pa.array(["x", "y"], pa.string_view()),
        pa.array(["x", "y"]).dictionary_encode(),
        pa.array(["x", "y"]).cast(pa.json_(pa.string())),
    ],
)
def test_string_types_accepted(mem: Store, array: pa.Array) -> None:
    f = put(mem, "ns/deletes/s.parquet", pa.table({"id": array}))
    assert read_delete_file(mem, f) == (["x", "y"], [])


def test_many_row_groups_name_the_row_across_groups(mem: Store) -> None:
    ids = [f"id-{i}" for i in range(100)]
    ids[73] = ""
    f = put(mem, "ns/deletes/big.parquet", pa.table({"id": ids}), row_group_size=10)
    with pytest.raises(IngestError) as e:
        read_delete_file(mem, f)
    assert e.value.row == 73 and "row 73:" in str(e.value)


def shown(store: Store, key: str) -> str:
    return store.path(key)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            pa.table({"id": ["a"], "prefix": ["b"]}),
            'has both an "id" and a "prefix" column: a delete file holds exactly one of them',
        ),
        (pa.table({"ids": ["a"]}), 'Unsupported column "ids" in a delete file'),
        (dense(), 'Unsupported column "values" in a delete file'),  # a data file misplaced
        (pa.table({}), 'Missing column "id" or "prefix"'),
        (
            pa.table({"id": [1, 2]}),
            'The expected data type for column "id" is "STRING", but got "INT64"',
        ),
        (
            pa.table({"prefix": pa.array([b"a"], pa.binary())}),
            'The expected data type for column "prefix" is "STRING", but got "BINARY"',
        ),
    ],
)
def test_whole_file_errors(mem: Store, table: pa.Table, message: str) -> None:
    f = put(mem, "ns/deletes/bad.parquet", table)
    with pytest.raises(SchemaError) as e:
        read_delete_file(mem, f)
    assert str(e.value).startswith(f'delete file "{shown(mem, f.key)}": ')
    assert message in str(e.value)
    assert e.value.file == shown(mem, f.key)


@pytest.mark.parametrize(
    ("column", "values", "row", "reason"),
    [
        ("id", ["a", None, "b"], 1, 'null "id": every row needs a value'),
        ("prefix", ["a", "b", None], 2, 'null "prefix": every row needs a value'),
        ("id", ["a", ""], 1, 'empty "id": ids have 1-512 bytes'),
        (
            "prefix",
            ["", "a"],
            0,
            'empty "prefix": an empty prefix would delete every record of the namespace',
        ),
        ("id", ["é" * 257], 0, '"id" of 514 bytes: ids have at most 512 bytes'),
    ],
)
def test_row_errors_name_file_and_row(
    mem: Store, column: str, values: list[str | None], row: int, reason: str
) -> None:
    f = put(mem, "ns/deletes/rows.parquet", pa.table({column: pa.array(values, pa.string())}))
    with pytest.raises(IngestError) as e:
        read_delete_file(mem, f)
    assert not isinstance(e.value, SchemaError)
    assert str(e.value).startswith(f'delete file "{shown(mem, f.key)}", row {row}: {reason}')
    assert e.value.row == row
    assert pickle.loads(pickle.dumps(e.value)).message == e.value.message  # crosses to the driver


def test_corrupt_footer(mem: Store) -> None:
    f = put(mem, "ns/deletes/c.parquet", b"not parquet at all")
    with pytest.raises(SchemaError, match="Parquet footer could not be parsed"):
        read_delete_file(mem, f)


# ---------------------------------------------------------------- discovery


def test_is_delete_key() -> None:
    assert is_delete_key("ns/deletes/a.parquet")
    assert is_delete_key("ns/deletes/day=1/a.parquet")
    assert not is_delete_key("deletes/a.parquet")  # the namespace "deletes"
    assert not is_delete_key("ns/part=1/deletes/a.parquet")  # deeper: data
    assert not is_delete_key("ns/Deletes/a.parquet")


def test_upsert_mode_returns_delete_files_per_namespace(mem: Store) -> None:
    put(mem, "a/0.parquet", dense())
    put(mem, "a/deletes/part-1.parquet", pa.table({"id": ["x"]}))
    put(mem, "a/deletes/part-0.parquet", pa.table({"prefix": ["y"]}))
    put(mem, "a/deletes/_SUCCESS", b"")
    put(mem, "a/deletes/.part-0.parquet.crc", b"")
    put(mem, "only-deletes/deletes/x.parquet", pa.table({"id": ["z"]}))
    d = discover(mem, mem.uri, {"a", "only-deletes"}, mode="upsert")  # existing: fine
    assert {ns: [f.key for f in fs] for ns, fs in d.namespaces.items()} == {"a": ["a/0.parquet"]}
    assert {ns: [f.key for f in fs] for ns, fs in d.deletes.items()} == {
        "a": ["a/deletes/part-0.parquet", "a/deletes/part-1.parquet"],
        "only-deletes": ["only-deletes/deletes/x.parquet"],
    }
    assert d.num_files == 1 and d.total_bytes == d.namespaces["a"][0].size
    assert [f.namespace for f in d.delete_files] == ["a", "a", "only-deletes"]
    assert all(f.version for f in d.files + d.delete_files)
    assert pickle.loads(pickle.dumps(d)) == d


def test_create_mode_refuses_delete_files(mem: Store) -> None:
    put(mem, "a/0.parquet", dense())
    put(mem, "a/deletes/1.parquet", pa.table({"id": ["x"]}))
    put(mem, "a/deletes/0.parquet", pa.table({"id": ["x"]}))
    with pytest.raises(IngestError) as e:
        discover(mem, mem.uri, set())
    assert str(e.value) == (
        f'"{mem.path("a/deletes/0.parquet")}": Delete files (a "deletes" directory in a '
        'namespace directory) are only allowed in a load (mode="upsert", `vecstore load`): '
        "an import only creates new namespaces and has nothing to delete"
    )


def test_create_mode_still_refuses_existing_namespaces(mem: Store) -> None:
    put(mem, "a/0.parquet", dense())
    with pytest.raises(IngestError, match="already exists"):
        discover(mem, mem.uri, {"a"}, mode="create")
    assert list(discover(mem, mem.uri, {"a"}, mode="upsert").namespaces) == ["a"]


def test_unknown_mode(mem: Store) -> None:
    put(mem, "a/0.parquet", dense())
    with pytest.raises(InvalidArgumentError, match='Invalid mode "merge"'):
        discover(mem, mem.uri, set(), mode="merge")


def test_only_delete_files_is_a_load(mem: Store) -> None:
    put(mem, "a/deletes/0.parquet", pa.table({"id": ["x"]}))
    d = discover(mem, mem.uri, set(), mode="upsert")
    assert d.namespaces == {} and [f.key for f in d.delete_files] == ["a/deletes/0.parquet"]


def test_delete_files_count_toward_the_file_limit(mem: Store) -> None:
    put(mem, "a/0.parquet", dense())
    put(mem, "a/deletes/0.parquet", pa.table({"id": ["x"]}))
    with pytest.raises(LimitExceededError, match="2 files in one import"):
        discover(mem, mem.uri, set(), mode="upsert", max_files=1)


def test_directories_naming_one_namespace_across_data_and_deletes(mem: Store) -> None:
    put(mem, "a%20b/0.parquet", dense())
    put(mem, "a b/deletes/0.parquet", pa.table({"id": ["x"]}))
    with pytest.raises(IngestError, match="both name the namespace"):
        discover(mem, mem.uri, set(), mode="upsert")
