"""Golden files of on-storage format version 1, read with today's code.

``tests/golden/v1/store`` was written once by ``tests/golden/make_golden.py``
(see that file and ``tests/golden/README.md``). These tests fail when the
current code can no longer read a version 1 store, or when it would write the
same values differently: a change of the on-storage format must come with a new
format version, never by editing these files.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from segwriter import records_to_table

from vecstore import VecStore, layout, manifests
from vecstore.jobs import JobStore
from vecstore.metadata import column_stats, meta_fields_of
from vecstore.schemas import (
    FORMAT_VERSION,
    ClusterEntry,
    FieldStats,
    ImportJob,
    IndexSpec,
    Manifest,
    MetadataField,
    NamespaceProgress,
)
from vecstore.schemas.arrow import ID_INDEX_SCHEMA, REJECT_SCHEMA, SPARSE_TYPE, segment_schema
from vecstore.segments import dense_matrix, read_centroids, read_table
from vecstore.storage import Store
from vecstore.writer import assemble_manifest, conform

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "v1" / "store"

INDEX = "golden"
IMPORT_ID = "17357870450000000badc0de"
CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
FINISHED = datetime(2025, 1, 2, 3, 4, 47, 500_000, tzinfo=UTC)
SEG0 = f"data/{IMPORT_ID}-00000000000000000000000000000001.parquet"
SEG1 = f"data/{IMPORT_ID}-00000000000000000000000000000002.parquet"
CENTROIDS = f"data/{IMPORT_ID}-00000000000000000000000000000003.centroids"
IDS = f"data/{IMPORT_ID}-00000000000000000000000000000004.ids.parquet"
DOCS = "indexes/golden/namespaces/docs"

FILES = sorted(
    [
        "indexes/golden-sparse/index.json",
        "indexes/golden/index.json",
        f"indexes/golden/imports/{IMPORT_ID}.json",
        f"indexes/golden/imports/{IMPORT_ID}/_COMMITTED",
        f"indexes/golden/imports/{IMPORT_ID}/rejects/docs/duplicates.parquet",
        f"{DOCS}/_manifests/00000000000000000001.json",
        f"{DOCS}/_manifests/00000000000000000002.json",
        f"{DOCS}/{SEG0}",
        f"{DOCS}/{SEG1}",
        f"{DOCS}/{CENTROIDS}",
        f"{DOCS}/{IDS}",
        "indexes/golden/namespaces/old/_manifests/00000000000000000002.json",
    ]
)

SPEC = IndexSpec(
    name=INDEX,
    dimension=4,
    metric="dotproduct",
    vector_type="dense",
    cloud="aws",
    region="local",
    created_at=CREATED,
    tags={"team": "search"},
)
SPARSE_SPEC = IndexSpec(
    name="golden-sparse",
    dimension=None,
    metric="dotproduct",
    vector_type="sparse",
    cloud="gcp",
    region="europe-west4",
    created_at=CREATED,
)


def _stats(**kw: object) -> FieldStats:
    return FieldStats(**kw)  # type: ignore[arg-type]


DOCS_V1 = Manifest(
    format_version=1,
    index=INDEX,
    namespace="docs",
    version=1,
    created_at=CREATED,
    import_id=IMPORT_ID,
    deleted=False,
    vector_type="dense",
    metric="dotproduct",
    dimension=4,
    record_count=5,
    byte_size=3059 + 3019,
    centroids=CENTROIDS,
    clusters=[
        ClusterEntry(
            id=0,
            segment=SEG0,
            row_count=3,
            byte_size=3059,
            stats={
                "draft": _stats(count=1, values=[], bool_false=1),
                "genre": _stats(count=1, str_count=1, values=["drama"]),
                "score": _stats(count=1, num_count=1, min=0.5, max=0.5, values=[]),
                "tags": _stats(count=2, values=["x", "y"], list_count=2),
                "year": _stats(count=1, num_count=1, min=2001.0, max=2001.0, values=[]),
            },
        ),
        ClusterEntry(
            id=1,
            segment=SEG1,
            row_count=2,
            byte_size=3019,
            stats={
                "draft": _stats(count=1, values=[], bool_true=1),
                "genre": _stats(count=2, str_count=2, values=["comedy", "drama"]),
                "year": _stats(
                    count=2, num_count=1, min=1999.0, max=1999.0, str_count=1, values=["unknown"]
                ),
            },
        ),
    ],
    id_files=[IDS],
    fields=[
        MetadataField(name="draft", kinds=["bool"]),
        MetadataField(name="genre", kinds=["str"]),
        MetadataField(name="score", kinds=["num"]),
        MetadataField(name="tags", kinds=["list"]),
        MetadataField(name="year", kinds=["num", "str"]),
    ],
    parent_version=None,
)
DOCS_V2 = DOCS_V1.model_copy(
    update={"version": 2, "import_id": None, "parent_version": 1, "created_at": FINISHED}
)
OLD_TOMBSTONE = Manifest(
    format_version=1,
    index=INDEX,
    namespace="old",
    version=2,
    created_at=FINISHED,
    import_id=None,
    deleted=True,
    vector_type="dense",
    metric="dotproduct",
    dimension=4,
    record_count=0,
    byte_size=0,
    centroids=None,
    clusters=[],
    id_files=[],
    fields=[],
    parent_version=1,
)
JOB = ImportJob(
    format_version=1,
    id=IMPORT_ID,
    index=INDEX,
    uri="s3://example-bucket/imports/2025-01-02/",
    status="Completed",
    error_mode="continue",
    integration_id="example-s3",
    created_at=CREATED,
    finished_at=FINISHED,
    percent_complete=100.0,
    records_imported=5,
    error=None,
    phase="done",
    bytes_total=4096,
    bytes_read=4096,
    records_skipped={"duplicate_id": 1},
    namespaces={
        "docs": NamespaceProgress(
            files=1,
            bytes_total=4096,
            bytes_read=4096,
            records_read=6,
            records_imported=5,
            records_skipped=1,
            status="Committed",
        )
    },
    rejects_uri=f"memory://golden-v1/indexes/golden/imports/{IMPORT_ID}/rejects",
    heartbeat_at=FINISHED,
    runner="runner-golden",
    attempt=1,
    cancel_requested=False,
)

# segment rows, by cluster, in file order
ROWS: dict[int, list[dict[str, object]]] = {
    0: [
        {
            "id": "a",
            "values": [1.0, 0.25, 0.0, 0.0],
            "sparse_values": {"indices": [1, 7], "values": [0.5, 0.25]},
            "metadata": '{"genre": "drama", "year": 2001, "tags": ["x", "y"], "draft": false}',
            "m.bool.draft": False,
            "m.str.genre": "drama",
            "m.num.score": None,
            "m.list.tags": ["x", "y"],
            "m.num.year": 2001.0,
            "m.str.year": None,
        },
        {
            "id": "c",
            "values": [0.75, 0.0, 0.0, 0.125],
            "sparse_values": None,
            "metadata": None,
            "m.bool.draft": None,
            "m.str.genre": None,
            "m.num.score": None,
            "m.list.tags": None,
            "m.num.year": None,
            "m.str.year": None,
        },
        {
            "id": "e",
            "values": [2.0, -1.0, 0.0, 0.0],
            "sparse_values": None,
            "metadata": '{"tags": [], "score": 0.5}',
            "m.bool.draft": None,
            "m.str.genre": None,
            "m.num.score": 0.5,
            "m.list.tags": [],
            "m.num.year": None,
            "m.str.year": None,
        },
    ],
    1: [
        {
            "id": "b",
            "values": [0.0, 1.0, 0.5, 0.0],
            "sparse_values": None,
            "metadata": '{"genre": "comedy", "year": 1999}',
            "m.bool.draft": None,
            "m.str.genre": "comedy",
            "m.num.score": None,
            "m.list.tags": None,
            "m.num.year": 1999.0,
            "m.str.year": None,
        },
        {
            "id": "d",
            "values": [0.0, 0.5, 0.0, -0.5],
            "sparse_values": {"indices": [3], "values": [1.5]},
            "metadata": '{"genre": "drama", "year": "unknown", "draft": true}',
            "m.bool.draft": True,
            "m.str.genre": "drama",
            "m.num.score": None,
            "m.list.tags": None,
            "m.num.year": None,
            "m.str.year": "unknown",
        },
    ],
}

# The exact Arrow schema of a version 1 segment of this hybrid index.
SEGMENT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("values", pa.list_(pa.field("item", pa.float32()), 4), nullable=False),
        pa.field(
            "sparse_values",
            pa.struct(
                [
                    pa.field("indices", pa.list_(pa.uint32())),
                    pa.field("values", pa.list_(pa.float32())),
                ]
            ),
        ),
        pa.field("metadata", pa.string()),
        pa.field("m.bool.draft", pa.bool_()),
        pa.field("m.str.genre", pa.string()),
        pa.field("m.num.score", pa.float64()),
        pa.field("m.list.tags", pa.list_(pa.string())),
        pa.field("m.num.year", pa.float64()),
        pa.field("m.str.year", pa.string()),
    ]
)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def golden() -> Iterator[Store]:
    """The golden store, checked to be left exactly as it was."""
    assert GOLDEN.is_dir(), "run tests/golden/make_golden.py (once) and commit its output"
    before = {p: p.read_bytes() for p in GOLDEN.rglob("*") if p.is_file()}
    yield Store(str(GOLDEN))
    after = {p: p.read_bytes() for p in GOLDEN.rglob("*") if p.is_file()}
    assert after == before, "a test modified the golden files"


@pytest.fixture
def memory() -> Iterator[Store]:
    store = Store(f"memory://test-golden-{uuid.uuid4().hex}")
    yield store
    with contextlib.suppress(Exception):
        store.fs.rm(store.root, recursive=True)


def _raw(golden: Store, key: str) -> bytes:
    return golden.read_bytes(key)


def _mask_created_at(raw: bytes) -> bytes:
    return re.sub(rb'("created_at": ?)"[^"]*"', rb'\1"<ts>"', raw)


# --------------------------------------------------------------- the tree


def test_format_version_is_1() -> None:
    assert FORMAT_VERSION == 1


def test_tree_is_complete(golden: Store) -> None:
    assert [k for k, _ in golden.walk_files("")] == FILES


def test_every_json_file_carries_format_version_1(golden: Store) -> None:
    for key in FILES:
        if key.endswith(".json"):
            assert json.loads(_raw(golden, key))["format_version"] == 1, key


# ------------------------------------------------------------- index specs


def test_index_specs(golden: Store) -> None:
    assert IndexSpec.model_validate_json(_raw(golden, "indexes/golden/index.json")) == SPEC
    assert SPEC.record_layout == "hybrid"
    sparse = IndexSpec.model_validate_json(_raw(golden, "indexes/golden-sparse/index.json"))
    assert sparse == SPARSE_SPEC and sparse.record_layout == "sparse"
    vs = VecStore(str(GOLDEN))
    assert vs.list_indexes() == [SPEC, SPARSE_SPEC]
    assert vs.describe_index("golden") == SPEC


def test_create_index_writes_identical_json(golden: Store, memory: Store) -> None:
    vs = VecStore(memory.uri)
    vs.create_index(
        name="golden",
        dimension=4,
        metric="dotproduct",
        vector_type="dense",
        cloud="aws",
        tags={"team": "search"},
    )
    vs.create_index(name="golden-sparse", vector_type="sparse", cloud="gcp", region="europe-west4")
    for name in ("golden", "golden-sparse"):
        key = layout.index_spec_key(name)
        assert _mask_created_at(memory.read_bytes(key)) == _mask_created_at(_raw(golden, key))
        spec = IndexSpec.model_validate_json(_raw(golden, key))
        assert spec.model_dump_json(indent=1).encode() == _raw(golden, key)


# --------------------------------------------------------------- manifests


def test_manifests_exact_values(golden: Store) -> None:
    assert manifests.read_manifest(golden, INDEX, "docs", 1) == DOCS_V1
    assert manifests.read_manifest(golden, INDEX, "docs", 2) == DOCS_V2
    assert manifests.read_manifest(golden, INDEX, "old", 2) == OLD_TOMBSTONE
    assert manifests.manifest_versions(golden, INDEX, "docs") == [1, 2]
    assert manifests.manifest_versions(golden, INDEX, "old") == [2]


def test_visibility_rules_on_the_golden_store(golden: Store) -> None:
    assert manifests.import_committed(golden, INDEX, IMPORT_ID)
    assert manifests.load_namespace(golden, INDEX, "docs") == DOCS_V2
    assert manifests.load_namespace(golden, INDEX, "old") is None
    assert manifests.latest_visible(golden, INDEX, "old") == OLD_TOMBSTONE
    assert manifests.list_namespaces(golden, INDEX) == {"docs": DOCS_V2}
    assert manifests.next_version(golden, INDEX, "old") == 3
    index = VecStore(str(GOLDEN)).Index(INDEX)
    stats = index.describe_index_stats()
    assert stats.total_vector_count == 5
    assert {ns: s.vector_count for ns, s in stats.namespaces.items()} == {"docs": 5}
    assert [(d.name, d.record_count) for d in index.list_namespaces()] == [("docs", 5)]


def test_commit_writes_identical_json(golden: Store, memory: Store) -> None:
    for ns, version in (("docs", 1), ("docs", 2), ("old", 2)):
        key = layout.manifest_key(INDEX, ns, version)
        raw = _raw(golden, key)
        manifests.commit(memory, Manifest.model_validate_json(raw))
        assert memory.read_bytes(key) == raw, key


def test_manifest_byte_sizes_match_the_files(golden: Store) -> None:
    for c in DOCS_V1.clusters:
        assert golden.size(f"{DOCS}/{c.segment}") == c.byte_size
    for rel in DOCS_V1.files():
        assert golden.exists(f"{DOCS}/{rel}")


def test_writer_reproduces_manifest_from_segments(golden: Store) -> None:
    """Today's statistics and manifest assembly give the stored manifest."""
    entries = []
    for c in DOCS_V1.clusters:
        table = read_table(golden, f"{DOCS}/{c.segment}")
        assert column_stats(table) == c.stats
        entries.append(c)
    fields = meta_fields_of(pq.read_schema(GOLDEN / DOCS / SEG0))
    rebuilt = assemble_manifest(
        SPEC,
        "docs",
        1,
        list(reversed(entries)),
        centroids=CENTROIDS,
        id_files=[IDS],
        import_id=IMPORT_ID,
        fields=fields,
    )
    assert rebuilt.model_copy(update={"created_at": CREATED}) == DOCS_V1


def test_delete_namespace_writes_the_golden_tombstone_shape(golden: Store, memory: Store) -> None:
    for key, _ in golden.walk_files(""):
        memory.write_bytes(key, golden.read_bytes(key))
    tomb = manifests.delete_namespace(memory, INDEX, "docs")
    assert tomb.version == 3 and tomb.parent_version == 2
    same = tomb.model_copy(
        update={"namespace": "old", "version": 2, "parent_version": 1, "created_at": FINISHED}
    )
    assert same == OLD_TOMBSTONE
    stored = memory.read_bytes(layout.manifest_key(INDEX, "docs", 3))
    expected = _raw(golden, layout.manifest_key(INDEX, "old", 2))
    expected = expected.replace(b'"namespace": "old"', b'"namespace": "docs"')
    expected = expected.replace(b'"version": 2', b'"version": 3')
    expected = expected.replace(b'"parent_version": 1', b'"parent_version": 2')
    assert _mask_created_at(stored) == _mask_created_at(expected)
    # and the golden data files are gone from the copy
    assert [k for k, _ in memory.walk_files(DOCS)] == [layout.manifest_key(INDEX, "docs", 3)]


# ---------------------------------------------------------------- segments


@pytest.mark.parametrize(("cluster", "segment"), [(0, SEG0), (1, SEG1)])
def test_segment_schema_exact(golden: Store, cluster: int, segment: str) -> None:
    schema = pq.read_schema(GOLDEN / DOCS / segment)
    assert schema.equals(SEGMENT_SCHEMA)
    assert schema.names == SEGMENT_SCHEMA.names
    for f in SEGMENT_SCHEMA:
        got = schema.field(f.name)
        assert (got.type, got.nullable) == (f.type, f.nullable), f.name
    values = schema.field("values").type
    assert pa.types.is_fixed_size_list(values)
    assert (values.list_size, values.value_type) == (4, pa.float32())
    assert schema.field("sparse_values").type == SPARSE_TYPE
    kinds = {f.name: f.kinds for f in DOCS_V1.fields}
    assert schema.equals(segment_schema("hybrid", 4, kinds))  # type: ignore[arg-type]


@pytest.mark.parametrize(("cluster", "segment"), [(0, SEG0), (1, SEG1)])
def test_segment_content(golden: Store, cluster: int, segment: str) -> None:
    table = read_table(golden, f"{DOCS}/{segment}")
    assert table.to_pylist() == ROWS[cluster]
    matrix = dense_matrix(table.column("values"), 4)
    assert matrix.dtype == np.float32 and matrix.shape == (len(ROWS[cluster]), 4)
    expected = np.array([r["values"] for r in ROWS[cluster]], dtype=np.float32)
    np.testing.assert_array_equal(matrix, expected)
    # only the columns asked for
    assert read_table(golden, f"{DOCS}/{segment}", ["id", "nope"]).column_names == ["id"]


def test_writer_still_writes_the_golden_segment_layout(golden: Store) -> None:
    """records_to_table + conform on the same records give the same table."""
    records = []
    for row in ROWS[0]:
        meta = row["metadata"]
        records.append(
            {
                "id": row["id"],
                "values": row["values"],
                "sparse_values": row["sparse_values"],
                "metadata": None if meta is None else json.loads(str(meta)),
            }
        )
    written = conform(records_to_table(records, SPEC), SPEC)
    stored = read_table(golden, f"{DOCS}/{SEG0}")
    # the stored segment has the namespace's columns; project the new table onto them
    assert written.schema.names == [n for n in stored.schema.names if n in written.schema.names]
    assert written.to_pylist() == stored.select(written.schema.names).to_pylist()


def test_centroids(golden: Store) -> None:
    raw = golden.read_bytes(f"{DOCS}/{CENTROIDS}")
    assert raw.startswith(b"\x93NUMPY")
    c = read_centroids(golden, f"{DOCS}/{CENTROIDS}")
    assert c.shape == (2, 4) and c.dtype == np.float32
    np.testing.assert_array_equal(c, np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float32))


def test_id_file(golden: Store) -> None:
    table = read_table(golden, f"{DOCS}/{IDS}")
    assert table.schema.equals(ID_INDEX_SCHEMA)
    rows = table.to_pylist()
    assert rows == [
        {"id": "a", "cluster": 0, "row": 0},
        {"id": "b", "cluster": 1, "row": 0},
        {"id": "c", "cluster": 0, "row": 1},
        {"id": "d", "cluster": 1, "row": 1},
        {"id": "e", "cluster": 0, "row": 2},
    ]
    for r in rows:
        assert ROWS[int(r["cluster"])][int(r["row"])]["id"] == r["id"]


# -------------------------------------------------------------- job records


def test_job_record(golden: Store) -> None:
    jobs = JobStore(golden, INDEX)
    assert jobs.get(IMPORT_ID) == JOB
    assert jobs.ids() == [IMPORT_ID]
    page = jobs.page(10)
    assert page.data == [JOB] and page.pagination is None
    assert golden.read_bytes(layout.commit_marker_key(INDEX, IMPORT_ID)) == b"committed\n"
    index = VecStore(str(GOLDEN)).Index(INDEX)
    assert index.describe_import(IMPORT_ID) == JOB
    assert index.cancel_import(IMPORT_ID) == JOB  # finished: a no-op that writes nothing


def test_job_store_writes_identical_json(golden: Store, memory: Store) -> None:
    raw = _raw(golden, layout.job_key(INDEX, IMPORT_ID))
    job = ImportJob.model_validate_json(raw)
    JobStore(memory, INDEX).create(job)
    assert memory.read_bytes(layout.job_key(INDEX, IMPORT_ID)) == raw
    JobStore(memory, INDEX).save(job)
    assert memory.read_bytes(layout.job_key(INDEX, IMPORT_ID)) == raw


def test_reject_report(golden: Store) -> None:
    key = f"{layout.rejects_prefix(INDEX, IMPORT_ID)}/docs/duplicates.parquet"
    table = read_table(golden, key)
    assert table.schema.equals(REJECT_SCHEMA)
    assert table.to_pylist() == [
        {
            "namespace": "docs",
            "file": "s3://example-bucket/imports/2025-01-02/docs/part-0.parquet",
            "row": 5,
            "code": "duplicate_id",
            "message": 'id "a" repeats row 0 of the same file',
            "id": "a",
        }
    ]
