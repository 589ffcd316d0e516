"""Record-level errors on a real Dask cluster: ABORT fails at the first bad
record in (file path, row) order, CONTINUE skips and counts by reason and
writes every skipped record to the reject report; a namespace whose rows are
all skipped fails the import; numeric widening imports fine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datagen import (
    NOTHING_LEFT,
    ids_of,
    leftovers,
    list_array,
    load_namespace_data,
    read_rejects,
    run_import,
    vectors,
    write,
)

from vecstore.api import Index

pytestmark = pytest.mark.dask

DIM = 8


def _json_error(text: str) -> str:
    try:
        json.loads(text)
    except ValueError as exc:
        return str(exc)
    raise AssertionError(text)


def bad_rows(prefix: str) -> list[tuple[dict[str, Any], str, str]]:
    """(row overrides, reason code, message): one of each record error of a dense index."""
    long_id = "x" * 513
    big_meta = json.dumps({"text": "y" * 41_000})
    return [
        ({"values": None}, "missing_values", 'missing required values in column "values"'),
        (
            {"values": [0.5, None, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]},
            "missing_values",
            'missing required values in column "values": the vector has nulls',
        ),
        ({"id": None}, "missing_values", 'missing required values in column "id"'),
        ({"id": ""}, "id", "Vector ID must not be empty"),
        ({"id": long_id}, "id", "Vector ID must be at most 512 bytes in UTF-8, but has 513 bytes"),
        (
            {"values": [0.1] * 7},
            "dimension",
            "Vector dimension 7 does not match the dimension of the index 8",
        ),
        ({"values": []}, "dimension", "Vector dimension 0 does not match the dimension of the index 8"),
        (
            {"values": [0.1, 0.2, float("nan"), 0, 0, 0, 0, 0]},
            "non_finite",
            "Vector values must be finite numbers, but found NaN at position 2 (values are stored "
            "as float32)",
        ),
        (
            {"values": [float("-inf")] + [0.3] * 7},
            "non_finite",
            "Vector values must be finite numbers, but found -inf at position 0 (values are stored "
            "as float32)",
        ),
        (
            {"metadata": "{bad"},
            "metadata_parse",
            f"Failed to parse metadata: {_json_error('{bad')}",
        ),
        (
            {"metadata": '{"a": NaN}'},
            "metadata_parse",
            "Failed to parse metadata: NaN is not valid JSON",
        ),
        ({"metadata": "[1, 2]"}, "metadata_not_object", "Metadata must be a JSON object, but got array"),
        (
            {"metadata": '{"a": {"b": 1}}'},
            "metadata_value",
            'Metadata value for key "a" must be a string, number, boolean or list of strings, but '
            "got object",
        ),
        (
            {"metadata": '{"tags": ["x", 1]}'},
            "metadata_value",
            'Metadata value for key "tags" must be a string, number, boolean or list of strings, '
            "but got an array containing number",
        ),
        (
            {"metadata": big_meta},
            "metadata_size",
            f"Metadata size is {len(big_meta)} bytes, more than the limit of 40960 bytes per record",
        ),
    ]


def mixed_file(
    path: Path,
    n: int,
    bad: dict[int, dict[str, Any]],
    *,
    seed: int,
    row_group_size: int | None = None,
) -> pa.Table:
    """``n`` valid records (ids ``<stem>-<row>``), with rows of ``bad`` overridden."""
    vals = vectors(n, DIM, seed)
    rows = [
        {"id": f"{path.parent.name}-{path.stem}-{i}", "values": vals[i].tolist(),
         "metadata": json.dumps({"row": i})}
        for i in range(n)
    ]
    for i, over in bad.items():
        rows[i].update(over)
    t = pa.table(
        {
            "id": pa.array([r["id"] for r in rows], pa.string()),
            "values": pa.array([r["values"] for r in rows], pa.list_(pa.float32())),
            "metadata": pa.array([r["metadata"] for r in rows], pa.string()),
        }
    )
    write(path, t, row_group_size=row_group_size)
    return t


def test_abort_fails_at_the_first_bad_record(
    make_index: Callable[..., Index], store_root: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several files with bad records, scanned in parallel chunks: the error names
    the first bad record in (namespace, file path, row) order, whichever chunk
    finishes first."""
    monkeypatch.setenv("VECSTORE_CHUNK_BYTES", "1")  # one chunk per row group
    index = make_index()
    cases = bad_rows("")
    # namespace "a" sorts first; within it 0.parquet before 1.parquet
    mixed_file(src / "a" / "0.parquet", 200, {137: cases[7][0], 150: cases[0][0]}, seed=1,
               row_group_size=25)
    mixed_file(src / "a" / "1.parquet", 200, {3: cases[5][0]}, seed=2, row_group_size=25)
    mixed_file(src / "b" / "0.parquet", 200, {0: cases[9][0]}, seed=3, row_group_size=25)
    job = run_import(index, src, "abort")
    assert job.status == "Failed"
    assert job.error == (
        f'error reading record (file "{src}/a/0.parquet", row 137): {cases[7][2]}'
    )
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT
    assert index.list_namespaces() == []


@pytest.mark.parametrize("case", range(len(bad_rows(""))), ids=[c[1] + str(i) for i, c in enumerate(bad_rows(""))])
def test_abort_message_per_reason(
    make_index: Callable[..., Index], store_root: Path, src: Path, case: int
) -> None:
    index = make_index()
    over, _code, message = bad_rows("")[case]
    mixed_file(src / "ns" / "f.parquet", 40, {33: over}, seed=case, row_group_size=16)
    job = run_import(index, src, "abort")
    assert (job.status, job.error) == (
        "Failed",
        f'error reading record (file "{src}/ns/f.parquet", row 33): {message}',
    )
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT


def test_continue_skips_counts_and_reports_every_record(
    make_index: Callable[..., Index], store_root: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_CHUNK_BYTES", "1")  # several chunks per file: row offsets
    index = make_index()
    cases = bad_rows("")
    files = {
        src / "a" / "0.parquet": (120, 1),
        src / "a" / "1.parquet": (90, 2),
        src / "__default__" / "x.parquet": (70, 3),
    }
    expected: list[dict[str, Any]] = []
    tables = {}
    rng = np.random.default_rng(7)
    case_of_file: dict[Path, dict[int, int]] = {}
    for k, (path, (n, seed)) in enumerate(files.items()):
        rows = sorted(rng.choice(n, size=len(cases), replace=False).tolist())
        order = rng.permutation(len(cases)).tolist()
        assignment = dict(zip(rows, order, strict=True))
        if k == 2:  # the default namespace gets a few only
            assignment = dict(list(assignment.items())[:4])
        case_of_file[path] = assignment
        tables[path] = mixed_file(
            path, n, {r: cases[c][0] for r, c in assignment.items()}, seed=seed, row_group_size=16
        )
        ns = "" if path.parent.name == "__default__" else path.parent.name
        for r, c in assignment.items():
            over, code, message = cases[c]
            rid = over.get("id", f"{path.parent.name}-{path.stem}-{r}")
            expected.append(
                {"namespace": ns, "file": str(path), "row": r, "code": code, "message": message,
                 "id": None if rid is None else rid[:512]}
            )
    job = run_import(index, src, "continue")
    assert (job.status, job.error) == ("Completed", None), job
    counts: dict[str, int] = {}
    for e in expected:
        counts[e["code"]] = counts.get(e["code"], 0) + 1
    assert job.records_skipped == counts
    total = sum(n for n, _ in files.values())
    assert job.records_imported == total - len(expected)
    assert read_rejects(job.rejects_uri) == sorted(
        expected, key=lambda r: (r["namespace"], r["file"], r["row"], r["code"])
    )
    # per namespace: progress and the visible data agree
    skipped_a = sum(1 for e in expected if e["namespace"] == "a")
    assert job.namespaces["a"].records_imported == 210 - skipped_a
    assert job.namespaces["a"].records_skipped == skipped_a
    assert job.namespaces["a"].records_read == 210
    assert {n.name: n.record_count for n in index.list_namespaces()} == {
        "": 70 - 4,
        "a": 210 - skipped_a,
    }
    good = sorted(
        f"{p.parent.name}-{p.stem}-{i}"
        for p, (n, _) in files.items()
        if p.parent.name == "a"
        for i in range(n)
        if i not in case_of_file[p]
    )
    assert ids_of(store_root, index.name, "a") == good
    assert leftovers(store_root, index.name, job.id)["staging"] == []


@pytest.mark.parametrize("ns_dir", ["__default__", "beta"])
def test_all_rows_skipped_fails(
    make_index: Callable[..., Index], store_root: Path, src: Path, ns_dir: str
) -> None:
    index = make_index()
    mixed_file(src / "alpha" / "0.parquet", 30, {}, seed=1)  # fine
    mixed_file(src / ns_dir / "0.parquet", 20, {i: {"values": [1.0] * 3} for i in range(20)}, seed=2)
    mixed_file(src / ns_dir / "1.parquet", 10, {i: {"id": ""} for i in range(10)}, seed=3)
    job = run_import(index, src, "continue")
    assert job.status == "Failed"
    assert job.error == f"No vectors added, all rows were skipped for namespace: {ns_dir}"
    # the good namespace of the same import is not visible either
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT
    assert index.list_namespaces() == []
    assert index.describe_index_stats().total_vector_count == 0


def test_numeric_widening(make_index: Callable[..., Index], store_root: Path, src: Path) -> None:
    """float64 / float16 / integer / fixed-size / large lists, large_string ids and
    metadata: stored as float32, ids and metadata as is."""
    index = make_index()
    n = 50
    base = np.random.default_rng(0).integers(-100, 100, size=(n, DIM))
    variants: dict[str, pa.Array] = {
        "f64": pa.array(list(base.astype(np.float64) / 4), pa.list_(pa.float64())),
        "f16": pa.array(list(base.astype(np.float16) / 4), pa.list_(pa.float16())),
        "i32": pa.array(list(base.astype(np.int32)), pa.list_(pa.int32())),
        "i64": pa.array(list(base.astype(np.int64) + 1000), pa.list_(pa.int64())),
        "u8": pa.array(list((base % 200).astype(np.uint8)), pa.large_list(pa.uint8())),
        "fixed": pa.FixedSizeListArray.from_arrays(pa.array(base.reshape(-1) * 2.5), DIM),
    }
    expected = {}
    for k, (name, col) in enumerate(variants.items()):
        ids = pa.array([f"{name}-{i}" for i in range(n)], pa.large_string())
        meta = pa.array([json.dumps({"k": k, "name": name}) for _ in range(n)], pa.large_string())
        write(src / name / "0.parquet", pa.table({"id": ids, "values": col, "metadata": meta}))
        expected[name] = np.asarray(col.to_pylist(), dtype=np.float64).astype(np.float32)
    job = run_import(index, src, "abort")
    assert (job.status, job.error, job.records_imported) == ("Completed", None, n * len(variants))
    for name, want in expected.items():
        _, segs, _ = load_namespace_data(store_root, index.name, name)
        t = pa.concat_tables([s for _, s in segs])
        got = dict(zip(t.column("id").to_pylist(), t.column("values").to_pylist(), strict=True))
        assert pa.types.is_fixed_size_list(t.schema.field("values").type)
        assert t.schema.field("values").type.value_type == pa.float32()
        for i in range(n):
            np.testing.assert_array_equal(np.asarray(got[f"{name}-{i}"], np.float32), want[i])
        metas = set(t.column("metadata").to_pylist())
        assert len(metas) == 1 and json.loads(metas.pop())["name"] == name


def test_reject_report_is_parquet_under_rejects_uri(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    index = make_index()
    mixed_file(src / "a" / "0.parquet", 10, {4: {"values": None}}, seed=0)
    job = run_import(index, src, "continue")
    assert job.status == "Completed"
    assert job.rejects_uri is not None and job.rejects_uri.startswith(str(store_root))
    files = sorted(Path(job.rejects_uri).rglob("*.parquet"))
    assert files, "no reject report"
    for f in files:
        assert pq.read_schema(f).names == ["namespace", "file", "row", "code", "message", "id"]
    assert read_rejects(job.rejects_uri) == [
        {"namespace": "a", "file": f"{src}/a/0.parquet", "row": 4, "code": "missing_values",
         "message": 'missing required values in column "values"', "id": "a-0-4"}
    ]


def test_abort_first_bad_record_wins_over_a_faster_chunk(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """The first file is large with its bad record at the end, the second is small
    with a bad first row: its chunk fails long before the first one's, yet the
    error names the first file's record."""
    index = make_index(dimension=DIM)
    n = 300_000
    vals = vectors(n, DIM, 1)
    vals[n - 1, 0] = np.nan
    write(
        src / "a" / "0.parquet",
        pa.table({"id": [f"a0-{i}" for i in range(n)], "values": list_array(vals)}),
        row_group_size=5_000,
    )
    mixed_file(src / "a" / "1.parquet", 10, {0: {"values": None}}, seed=2)
    job = run_import(index, src, "abort")
    assert job.status == "Failed"
    assert job.error == (
        f'error reading record (file "{src}/a/0.parquet", row {n - 1}): Vector values must be '
        "finite numbers, but found NaN at position 0 (values are stored as float32)"
    )
    assert leftovers(store_root, index.name, job.id) == NOTHING_LEFT


def test_integers_beyond_2_to_the_24_round_to_float32(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """int64 values past +-2**24 in a row group the k-means sampler reads (a
    small namespace: it reads every row group) import as float32 rounding has
    them, the rule validation applies too, instead of failing with
    ``Internal error: ArrowInvalid: Integer value ... not in range``."""
    index = make_index(metric="euclidean")
    n = 60
    base = np.random.default_rng(0).integers(-1000, 1000, size=(n, DIM)).astype(np.int64)
    base[45, 2] = 2**24 + 1  # row group 2
    base[50, 0] = -(2**24 + 1)
    ids = [f"r{i}" for i in range(n)]
    write(
        src / "ints" / "0.parquet",
        pa.table({"id": ids, "values": pa.array(list(base), pa.list_(pa.int64()))}),
        row_group_size=20,
    )
    for mode in ("abort", "continue"):
        if mode == "continue":
            index.delete_namespace("ints")
        job = run_import(index, src, mode)
        assert (job.status, job.error, job.records_imported) == ("Completed", None, n)
        got = index.fetch(ids=["r45", "r50", "r0"], namespace="ints").vectors
        assert got["r45"].values[2] == 16777216.0
        assert got["r50"].values[0] == -16777216.0
        assert got["r0"].values == base[0].astype(np.float32).tolist()


def test_duckdb_json_and_string_view_columns_import(
    make_index: Callable[..., Index], store_root: Path, src: Path
) -> None:
    """DuckDB writes ``metadata::JSON`` as an arrow.json extension column; Arrow
    writers may keep ``string_view`` ids and metadata: all are strings."""
    import duckdb

    index = make_index(dimension=2)
    duck = src / "duck" / "0.parquet"
    duck.parent.mkdir(parents=True)
    duckdb.connect().execute(
        "COPY (SELECT 'd' || i::VARCHAR AS id, [i::FLOAT, 1.0::FLOAT] AS values, "
        "json_object('genre', CASE WHEN i % 2 = 0 THEN 'drama' ELSE 'comedy' END) AS metadata "
        f"FROM range(10) t(i)) TO '{duck}' (FORMAT parquet)"
    )
    assert str(pq.read_schema(duck).field("metadata").type) == "extension<arrow.json>"
    n = 10
    write(
        src / "view" / "0.parquet",
        pa.table(
            {
                "id": pa.array([f"v{i}" for i in range(n)], pa.string_view()),
                "values": pa.array([[float(i), 2.0] for i in range(n)], pa.list_(pa.float32())),
                "metadata": pa.array(
                    [json.dumps({"genre": "drama"})] * n, pa.string_view()
                ).cast(pa.json_(pa.string_view())),
            }
        ),
    )
    job = run_import(index, src, "abort")
    assert (job.status, job.error, job.records_imported) == ("Completed", None, 2 * n)
    res = index.query(
        namespace="duck", vector=[0.0, 1.0], top_k=10, filter={"genre": {"$eq": "drama"}},
        include_metadata=True,
    )
    assert sorted(m.id for m in res.matches) == ["d0", "d2", "d4", "d6", "d8"]
    assert {json.dumps(m.metadata) for m in res.matches} == {'{"genre": "drama"}'}
    assert index.fetch(ids=["v3"], namespace="view").vectors["v3"].metadata == {"genre": "drama"}
