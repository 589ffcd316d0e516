"""Golden files of manifest format 2 (the write path), read with today's code.

``tests/golden/v2/store`` was written once by ``tests/golden/make_golden_v2.py``
(see that file and ``tests/golden/README.md``): namespaces created by upserts,
log entries, manifests with ``applied_lsn`` written by the index builder, and
builder leases. The v1 store (``tests/unit/test_golden.py``) is read here too,
through the same write-path code, so both format versions are checked to read.
A failing test means the code no longer reads or writes format 2 the same way:
a change of the format needs a new version, never an edit of these files.
"""

from __future__ import annotations

import contextlib
import json
import types
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import segwriter

from vecstore import builder, layout, manifests, tail, wal, writes
from vecstore.metadata import column_stats
from vecstore.resolve import cluster_rows_by_id, id_locations
from vecstore.schemas import FORMAT_VERSION, IndexSpec, Manifest, MetadataField
from vecstore.schemas.arrow import ID_INDEX_SCHEMA, SPARSE_TYPE
from vecstore.schemas.models import MANIFEST_FORMAT_WAL
from vecstore.segments import read_centroids, read_table
from vecstore.storage import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
V2 = GOLDEN / "v2" / "store"
V1 = GOLDEN / "v1" / "store"

CREATED = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
CLOCK0 = CREATED.timestamp()
DOCS = "indexes/golden/namespaces/docs"
TERMS = "indexes/golden-sparse/namespaces/terms"
D_CENTROIDS = "data/b4-00000000000000000000000000000001.centroids"
D_SEG = "data/b4-00000000000000000000000000000002.parquet"
D_IDS = "data/b4-00000000000000000000000000000003.ids.parquet"
T_SEG0 = "data/b1-00000000000000000000000000000004.parquet"
T_IDS1 = "data/b1-00000000000000000000000000000005.ids.parquet"
T_SEG1 = "data/b2-00000000000000000000000000000006.parquet"
T_IDS2 = "data/b2-00000000000000000000000000000007.ids.parquet"

FILES = sorted(
    [
        "indexes/golden-sparse/index.json",
        "indexes/golden/index.json",
        f"{DOCS}/_lease/00000000000000000001.json",
        *(f"{DOCS}/_manifests/{v:020d}.json" for v in (1, 2)),
        *(f"{DOCS}/_wal/{lsn:020d}.arrow" for lsn in range(1, 8)),
        f"{DOCS}/{D_CENTROIDS}",
        f"{DOCS}/{D_SEG}",
        f"{DOCS}/{D_IDS}",
        *(f"{TERMS}/_lease/{g:020d}.json" for g in (1, 2)),
        *(f"{TERMS}/_manifests/{v:020d}.json" for v in (1, 2, 3)),
        *(f"{TERMS}/_wal/{lsn:020d}.arrow" for lsn in (1, 2, 3)),
        f"{TERMS}/{T_SEG0}",
        f"{TERMS}/{T_IDS1}",
        f"{TERMS}/{T_SEG1}",
        f"{TERMS}/{T_IDS2}",
    ]
)

SPEC = IndexSpec(
    name="golden",
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

# header of each log entry: (op, deletes, delete_all); created_at is CLOCK0 + its tick
DOCS_HEADERS = {
    1: ("upsert", [], False),
    2: ("upsert", [], False),
    3: ("update", [], False),
    4: ("delete", ["c", "unknown"], False),
    5: ("upsert", [], False),
    6: ("delete_by_filter", ["b"], False),
    7: ("update", [], False),
}
TERMS_HEADERS = {
    1: ("upsert", [], False),
    2: ("upsert", [], False),
    3: ("delete_all", [], True),
}
TICKS = {("golden", "docs"): 0, ("golden-sparse", "terms"): 7}

DOCS_UPSERTS: dict[int, list[dict[str, Any]]] = {
    1: [
        {
            "id": "a",
            "values": [1.0, 0.25, 0.0, 0.0],
            "sparse_values": {"indices": [1, 7], "values": [0.5, 0.25]},
            "metadata": '{"genre":"drama","year":2001,"tags":["x","y"],"draft":false}',
            "m.bool.draft": False,
            "m.str.genre": "drama",
            "m.list.tags": ["x", "y"],
            "m.num.year": 2001.0,
        },
        {
            "id": "b",
            "values": [0.0, 1.0, 0.5, 0.0],
            "sparse_values": None,
            "metadata": '{"genre":"comedy","year":1999}',
            "m.bool.draft": None,
            "m.str.genre": "comedy",
            "m.list.tags": None,
            "m.num.year": 1999.0,
        },
        {
            "id": "c",
            "values": [0.75, 0.0, 0.0, 0.125],
            "sparse_values": None,
            "metadata": None,
            "m.bool.draft": None,
            "m.str.genre": None,
            "m.list.tags": None,
            "m.num.year": None,
        },
    ],
    3: [
        {
            "id": "b",
            "values": [0.0, 1.0, 0.5, 0.0],
            "sparse_values": None,
            "metadata": '{"genre":"comedy","year":2000}',
            "m.str.genre": "comedy",
            "m.num.year": 2000.0,
        }
    ],
    5: [
        {
            "id": "a",
            "values": [0.5, 0.5, 0.5, 0.5],
            "sparse_values": None,
            "metadata": '{"genre":"drama","v":2}',
            "m.str.genre": "drama",
            "m.num.v": 2.0,
        },
        {
            "id": "f",
            "values": [0.0, 0.0, 1.0, 0.0],
            "sparse_values": {"indices": [2], "values": [1.0]},
            "metadata": None,
            "m.str.genre": None,
            "m.num.v": None,
        },
    ],
    7: [
        {
            "id": "d",
            "values": [0.0, 0.5, 0.0, -0.5],
            "sparse_values": {"indices": [3], "values": [1.5]},
            "metadata": '{"genre":"drama","year":"unknown","draft":true,"seen":true}',
            "m.bool.draft": True,
            "m.str.genre": "drama",
            "m.bool.seen": True,
            "m.str.year": "unknown",
        }
    ],
}

# the records a reader must see (clusters + tail): id -> (values, sparse, metadata)
DOCS_LIVE: dict[str, tuple[list[float], dict[str, list[Any]] | None, dict[str, Any] | None]] = {
    "a": ([0.5, 0.5, 0.5, 0.5], None, {"genre": "drama", "v": 2}),
    "d": (
        [0.0, 0.5, 0.0, -0.5],
        {"indices": [3], "values": [1.5]},
        {"genre": "drama", "year": "unknown", "draft": True, "seen": True},
    ),
    "e": ([2.0, -1.0, 0.0, 0.0], None, {"tags": [], "score": 0.5}),
    "f": ([0.0, 0.0, 1.0, 0.0], {"indices": [2], "values": [1.0]}, None),
}
# the v1 store's namespace "docs" (an import, no log)
V1_LIVE: dict[str, tuple[list[float], dict[str, list[Any]] | None, dict[str, Any] | None]] = {
    "a": (
        [1.0, 0.25, 0.0, 0.0],
        {"indices": [1, 7], "values": [0.5, 0.25]},
        {"genre": "drama", "year": 2001, "tags": ["x", "y"], "draft": False},
    ),
    "b": ([0.0, 1.0, 0.5, 0.0], None, {"genre": "comedy", "year": 1999}),
    "c": ([0.75, 0.0, 0.0, 0.125], None, None),
    "d": (
        [0.0, 0.5, 0.0, -0.5],
        {"indices": [3], "values": [1.5]},
        {"genre": "drama", "year": "unknown", "draft": True},
    ),
    "e": ([2.0, -1.0, 0.0, 0.0], None, {"tags": [], "score": 0.5}),
}


def _empty(index: str, namespace: str, spec: IndexSpec) -> Manifest:
    return Manifest(
        format_version=2,
        index=index,
        namespace=namespace,
        version=1,
        created_at=CREATED,
        vector_type=spec.vector_type,
        metric=spec.metric,
        dimension=spec.dimension,
        applied_lsn=0,
    )


# ------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    wal.clear_caches()
    yield
    wal.clear_caches()


@pytest.fixture(scope="module")
def golden() -> Iterator[Store]:
    """The v2 golden store, checked to be left exactly as it was."""
    assert V2.is_dir(), "run tests/golden/make_golden_v2.py (once) and commit its output"
    before = {p: p.read_bytes() for p in V2.rglob("*") if p.is_file()}
    yield Store(str(V2))
    after = {p: p.read_bytes() for p in V2.rglob("*") if p.is_file()}
    assert after == before, "a test modified the golden files"


def _copy(src: Path) -> Store:
    """A memory:// copy of a golden store, for tests that write."""
    store = Store(f"memory://test-golden-v2-{uuid.uuid4().hex}")
    origin = Store(str(src))
    for key, _ in origin.walk_files(""):
        store.write_bytes(key, origin.read_bytes(key))
    return store


@pytest.fixture
def copy_v2() -> Iterator[Store]:
    store = _copy(V2)
    yield store
    with contextlib.suppress(Exception):
        store.fs.rm(store.root, recursive=True)


@pytest.fixture
def copy_v1() -> Iterator[Store]:
    store = _copy(V1)
    yield store
    with contextlib.suppress(Exception):
        store.fs.rm(store.root, recursive=True)


@contextlib.contextmanager
def _clock(at: float) -> Iterator[None]:
    original = wal.time
    wal.time = types.SimpleNamespace(time=lambda: at)  # type: ignore[assignment]
    try:
        yield
    finally:
        wal.time = original


# --------------------------------------------------------------- the tree


def test_tree_is_complete(golden: Store) -> None:
    assert [k for k, _ in golden.walk_files("")] == FILES


def test_versions() -> None:
    assert FORMAT_VERSION == 1  # index specs and job records are unchanged
    assert MANIFEST_FORMAT_WAL == 2
    assert wal.ENTRY_FORMAT == 1


def test_format_versions_of_the_json_files(golden: Store) -> None:
    for key in FILES:
        if "/_manifests/" in key:
            assert json.loads(golden.read_bytes(key))["format_version"] == 2, key
        elif key.endswith("index.json"):
            assert json.loads(golden.read_bytes(key))["format_version"] == 1, key


def test_index_specs(golden: Store) -> None:
    for spec in (SPEC, SPARSE_SPEC):
        raw = golden.read_bytes(layout.index_spec_key(spec.name))
        assert IndexSpec.model_validate_json(raw) == spec
        assert spec.model_dump_json(indent=1).encode() == raw


# --------------------------------------------------------------- manifests


def test_docs_manifests_exact(golden: Store) -> None:
    assert manifests.manifest_versions(golden, "golden", "docs") == [1, 2]
    assert manifests.read_manifest(golden, "golden", "docs", 1) == _empty("golden", "docs", SPEC)
    m = manifests.read_manifest(golden, "golden", "docs", 2)
    assert (m.format_version, m.version, m.parent_version, m.applied_lsn) == (2, 2, 1, 4)
    assert (m.import_id, m.deleted, m.created_at) == (None, False, CREATED)
    assert (m.vector_type, m.metric, m.dimension) == ("dense", "dotproduct", 4)
    assert (m.record_count, m.centroids, m.id_files) == (4, D_CENTROIDS, [D_IDS])
    assert [(c.id, c.segment, c.row_count) for c in m.clusters] == [(0, D_SEG, 4)]
    assert m.byte_size == m.clusters[0].byte_size == golden.size(f"{DOCS}/{D_SEG}")
    assert m.fields == [
        MetadataField(name="draft", kinds=["bool"]),
        MetadataField(name="genre", kinds=["str"]),
        MetadataField(name="score", kinds=["num"]),
        MetadataField(name="tags", kinds=["list"]),
        MetadataField(name="year", kinds=["num", "str"]),
    ]
    assert m.clusters[0].stats == column_stats(read_table(golden, f"{DOCS}/{D_SEG}"))
    year = m.clusters[0].stats["year"]
    assert (year.count, year.num_count, year.min, year.max, year.values) == (
        3,
        2,
        2000.0,
        2001.0,
        ["unknown"],
    )


def test_terms_manifests_exact(golden: Store) -> None:
    assert manifests.manifest_versions(golden, "golden-sparse", "terms") == [1, 2, 3]
    first = manifests.read_manifest(golden, "golden-sparse", "terms", 1)
    assert first == _empty("golden-sparse", "terms", SPARSE_SPEC)
    m2 = manifests.read_manifest(golden, "golden-sparse", "terms", 2)
    m3 = manifests.read_manifest(golden, "golden-sparse", "terms", 3)
    assert (m2.applied_lsn, m2.parent_version, m2.record_count, m2.id_files) == (1, 1, 2, [T_IDS1])
    assert (m3.applied_lsn, m3.parent_version, m3.record_count, m3.id_files) == (2, 2, 3, [T_IDS2])
    assert m2.centroids is None and m3.centroids is None  # sparse: no centroids
    # the second build kept cluster 0 as it was (same file, same entry) and added cluster 1
    assert m3.clusters[0] == m2.clusters[0]
    assert [(c.id, c.segment, c.row_count) for c in m3.clusters] == [
        (0, T_SEG0, 2),
        (1, T_SEG1, 1),
    ]
    assert m3.fields == [MetadataField(name="n", kinds=["num"])]
    for m in (m2, m3):
        for c in m.clusters:
            assert golden.size(f"{TERMS}/{c.segment}") == c.byte_size


def test_commit_writes_identical_json(golden: Store) -> None:
    """Today's model and commit serialise every format-2 manifest to the same bytes."""
    memory = Store(f"memory://test-golden-v2-{uuid.uuid4().hex}")
    for key in FILES:
        if "/_manifests/" not in key:
            continue
        raw = golden.read_bytes(key)
        m = Manifest.model_validate_json(raw)
        assert "applied_lsn" in json.loads(raw)  # format 2 always writes it (0 included)
        manifests.commit(memory, m)
        assert memory.read_bytes(key) == raw, key


def test_visibility_and_listing(golden: Store) -> None:
    docs = manifests.load_namespace(golden, "golden", "docs")
    assert docs is not None and docs.version == 2
    assert set(manifests.list_namespaces(golden, "golden")) == {"docs"}
    # a delete_all keeps the namespace (it is in the log, not a tombstone)
    assert set(manifests.list_namespaces(golden, "golden-sparse")) == {"terms"}
    assert manifests.next_version(golden, "golden", "docs") == 3


# ------------------------------------------------------------------ the log


@pytest.mark.parametrize(
    ("index", "namespace", "headers"),
    [("golden", "docs", DOCS_HEADERS), ("golden-sparse", "terms", TERMS_HEADERS)],
)
def test_log_entries_exact(
    golden: Store, index: str, namespace: str, headers: dict[int, tuple[str, list[str], bool]]
) -> None:
    assert wal.list_lsns(golden, index, namespace) == sorted(headers)
    assert wal.last_lsn(golden, index, namespace) == max(headers)
    tick = TICKS[(index, namespace)]
    for lsn, (op, deletes, delete_all) in headers.items():
        raw = golden.read_bytes(wal.entry_key(index, namespace, lsn))
        with pa.ipc.open_stream(pa.py_buffer(raw)) as r:
            header = (r.schema.metadata or {})[wal.HEADER_KEY]
        created = CLOCK0 + tick + lsn
        expected = {
            "format": 1,
            "op": op,
            "deletes": deletes,
            "delete_all": delete_all,
            "created_at": created,
        }
        assert header == json.dumps(expected, separators=(",", ":")).encode(), lsn
        entry = wal.read_entry(golden, index, namespace, lsn)
        assert (entry.lsn, entry.op, entry.deletes, entry.delete_all) == (
            lsn,
            op,
            tuple(deletes),
            delete_all,
        )
        assert entry.created_at == created
        assert entry.upserts.schema.metadata is None


def test_docs_log_rows_and_schemas(golden: Store) -> None:
    for lsn in DOCS_HEADERS:
        entry = wal.read_entry(golden, "golden", "docs", lsn)
        t = entry.upserts
        if lsn in (4, 6):
            assert t.num_rows == 0 and t.schema.names == ["id"], lsn
            continue
        assert t.schema.names[:4] == ["id", "values", "sparse_values", "metadata"]
        assert t.schema.field("id").type == pa.string()
        assert t.schema.field("values").type == pa.list_(pa.field("item", pa.float32()), 4)
        assert t.schema.field("sparse_values").type == SPARSE_TYPE
        if lsn in DOCS_UPSERTS:
            assert t.to_pylist() == DOCS_UPSERTS[lsn], lsn
    d = wal.read_entry(golden, "golden", "docs", 2).upserts
    assert d.column("id").to_pylist() == ["d", "e"]
    assert d.schema.field("m.str.year").type == pa.string()
    assert d.schema.field("m.list.tags").type == pa.list_(pa.string())


def test_terms_log_rows(golden: Store) -> None:
    t1 = wal.read_entry(golden, "golden-sparse", "terms", 1).upserts
    assert t1.schema.names == ["id", "sparse_values", "metadata", "m.num.n"]
    assert t1.to_pylist() == [
        {
            "id": "s1",
            "sparse_values": {"indices": [1, 5], "values": [1.0, 2.0]},
            "metadata": '{"n":1}',
            "m.num.n": 1.0,
        },
        {
            "id": "s2",
            "sparse_values": {"indices": [2], "values": [0.5]},
            "metadata": None,
            "m.num.n": None,
        },
    ]


def test_encoder_writes_the_same_entries(golden: Store) -> None:
    """Today's encoder, given a golden entry's content and clock, writes the
    same header and the same table (compared by content: IPC bytes belong to
    pyarrow, like Parquet bytes)."""
    for index, ns, headers in (
        ("golden", "docs", DOCS_HEADERS),
        ("golden-sparse", "terms", TERMS_HEADERS),
    ):
        for lsn in headers:
            entry = wal.read_entry(golden, index, ns, lsn)
            upserts = entry.upserts if entry.upserts.num_rows else None
            with _clock(entry.created_at):
                data = wal.encode(upserts, entry.deletes, delete_all=entry.delete_all, op=entry.op)
            raw = golden.read_bytes(wal.entry_key(index, ns, lsn))
            with pa.ipc.open_stream(pa.py_buffer(raw)) as r:
                want = r.read_all()
            with pa.ipc.open_stream(pa.py_buffer(data)) as r:
                got = r.read_all()
            assert got.schema.metadata == want.schema.metadata, (ns, lsn)
            assert got.schema.equals(want.schema) and got.equals(want), (ns, lsn)


def test_a_newer_entry_format_is_refused(golden: Store) -> None:
    raw = golden.read_bytes(wal.entry_key("golden", "docs", 1))
    assert wal.decode(1, raw).upserts.num_rows == 3
    with pa.ipc.open_stream(pa.py_buffer(raw)) as r:
        t = r.read_all()
    header = json.loads(t.schema.metadata[wal.HEADER_KEY])
    header["format"] = wal.READ_FORMAT + 1
    t = t.replace_schema_metadata({wal.HEADER_KEY: json.dumps(header).encode()})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    from vecstore.errors import FormatError

    with pytest.raises(FormatError, match="upgrade vecstore"):
        wal.decode(1, sink.getvalue().to_pybytes())


# ---------------------------------------------------------- data and lease


def test_docs_data_files(golden: Store) -> None:
    c = read_centroids(golden, f"{DOCS}/{D_CENTROIDS}")
    assert c.dtype == np.float32 and c.shape == (1, 4)
    np.testing.assert_array_equal(c, np.array([[1.0, 0.25, 0.0, 0.0]], dtype=np.float32))
    seg = read_table(golden, f"{DOCS}/{D_SEG}")
    assert seg.column("id").to_pylist() == ["a", "d", "e", "b"]
    kinds = {"draft": ["bool"], "genre": ["str"], "score": ["num"], "tags": ["list"]}
    kinds["year"] = ["num", "str"]
    from vecstore.schemas.arrow import segment_schema

    assert pq.read_schema(V2 / DOCS / D_SEG).equals(segment_schema("hybrid", 4, kinds))  # type: ignore[arg-type]
    b = seg.to_pylist()[3]
    assert b["metadata"] == '{"genre":"comedy","year":2000}' and b["m.num.year"] == 2000.0
    ids = read_table(golden, f"{DOCS}/{D_IDS}")
    assert ids.schema.equals(ID_INDEX_SCHEMA)
    assert ids.to_pylist() == [
        {"id": "a", "cluster": 0, "row": 0},
        {"id": "b", "cluster": 0, "row": 3},
        {"id": "d", "cluster": 0, "row": 1},
        {"id": "e", "cluster": 0, "row": 2},
    ]


def test_terms_data_files(golden: Store) -> None:
    seg0 = read_table(golden, f"{TERMS}/{T_SEG0}")
    assert seg0.column("id").to_pylist() == ["s1", "s2"]
    assert pq.read_schema(V2 / TERMS / T_SEG0).field("sparse_values").type == SPARSE_TYPE
    seg1 = read_table(golden, f"{TERMS}/{T_SEG1}").to_pylist()
    assert seg1 == [
        {
            "id": "s3",
            "sparse_values": {"indices": [9, 4], "values": [0.25, 4.0]},
            "metadata": '{"n":3}',
            "m.num.n": 3.0,
        }
    ]
    m3 = manifests.read_manifest(golden, "golden-sparse", "terms", 3)
    assert id_locations(golden, m3).to_pylist() == [
        {"id": "s1", "cluster": 0, "row": 0},
        {"id": "s2", "cluster": 0, "row": 1},
        {"id": "s3", "cluster": 1, "row": 0},
    ]


def test_released_leases(golden: Store) -> None:
    released = {"owner": "golden-builder", "expires_at": 0.0, "released": True}
    for key in FILES:
        if "/_lease/" in key:
            assert json.loads(golden.read_bytes(key)) == released, key
    # a released lease is free to take: the next generation
    store = _copy(V2)
    lease = builder.acquire_lease(store, "golden-sparse", "terms", owner="me")
    assert lease is not None and lease.generation == 3


# ---------------------------------------------------- reading both formats


def _live(store: Store, spec: IndexSpec, namespace: str) -> dict[str, tuple[Any, Any, Any]]:
    """What a reader sees: the visible manifest's clusters merged with the log tail."""
    manifest = manifests.load_namespace(store, spec.name, namespace)
    assert manifest is not None
    state = tail.TailReader(store, spec).get(namespace, manifest)
    ids = id_locations(store, manifest).column("id").to_pylist()
    live = segwriter.merged_ids(state, ids)

    def from_clusters(wanted: list[str]) -> dict[str, dict[str, Any]]:
        rows = cluster_rows_by_id(store, spec, manifest, wanted)
        return {} if rows is None else {r["id"]: r for r in rows.to_pylist()}

    out: dict[str, tuple[Any, Any, Any]] = {}
    for rid, rec in tail.merged_fetch(state, live, from_clusters).items():
        if isinstance(rec, tail.Record):
            out[rid] = (rec.values, rec.sparse_values, rec.metadata)
        else:
            meta = rec.get("metadata")
            out[rid] = (
                rec.get("values"),
                rec.get("sparse_values"),
                None if meta is None else json.loads(meta),
            )
    count = tail.live_count(state, manifest.record_count, len(set(ids) & set(state.where)))
    assert count == len(out)
    return out


def _as_expected(
    got: dict[str, tuple[Any, Any, Any]],
) -> dict[str, tuple[Any, Any, Any]]:
    """Sparse parts of hybrid records without non-zeros read as None."""
    out = {}
    for rid, (values, sparse, meta) in got.items():
        if sparse is not None and not sparse.get("indices"):
            sparse = None
        out[rid] = (values, sparse, meta)
    return out


@pytest.mark.parametrize(("root", "expected"), [(V1, V1_LIVE), (V2, DOCS_LIVE)])
def test_both_formats_read_the_same_way(
    golden: Store, root: Path, expected: dict[str, Any]
) -> None:
    """Format 1 (an import, no log) and format 2 (clusters + an unfolded tail)."""
    store = Store(str(root))
    assert _as_expected(_live(store, SPEC, "docs")) == expected


def test_delete_all_in_the_tail_hides_every_cluster(golden: Store) -> None:
    assert _live(golden, SPARSE_SPEC, "terms") == {}
    m = manifests.load_namespace(golden, "golden-sparse", "terms")
    assert m is not None and m.record_count == 3  # still in the clusters, hidden by the log


# ------------------------------------------------------------ writing on top


def test_building_the_golden_tail(copy_v2: Store) -> None:
    """Today's builder folds the golden log into the golden clusters."""
    before = _as_expected(_live(copy_v2, SPEC, "docs"))
    done = builder.build(copy_v2, SPEC, "docs", owner="t")
    assert done.status == "built" and done.applied_lsn == 7 and done.entries == 3
    m = done.manifest
    assert m is not None and (m.version, m.parent_version, m.format_version) == (3, 2, 2)
    assert m.centroids == D_CENTROIDS  # incremental: the centroids are kept
    assert m.record_count == 4
    wal.clear_caches()
    assert _as_expected(_live(copy_v2, SPEC, "docs")) == before == DOCS_LIVE
    # and the sparse namespace: delete_all folded, the namespace stays, empty
    done = builder.build(copy_v2, SPARSE_SPEC, "terms", owner="t")
    assert done.status == "built" and done.manifest is not None
    assert done.manifest.record_count == 0 and done.manifest.applied_lsn == 3
    assert set(manifests.list_namespaces(copy_v2, "golden-sparse")) == {"terms"}


def test_writes_continue_the_golden_log(copy_v2: Store) -> None:
    assert writes.upsert(copy_v2, SPEC, "docs", [("g", [1.0, 1.0, 1.0, 1.0])]) == 1
    assert wal.list_lsns(copy_v2, "golden", "docs") == list(range(1, 9))
    got = _as_expected(_live(copy_v2, SPEC, "docs"))
    assert got == {**DOCS_LIVE, "g": ([1.0, 1.0, 1.0, 1.0], None, None)}


def test_a_v1_namespace_takes_writes_and_builds_to_format_2(copy_v1: Store) -> None:
    """An imported format-1 namespace (no applied_lsn) under the write path."""
    assert writes.upsert(copy_v1, SPEC, "docs", [("a", [0.0, 0.0, 0.0, 1.0], {"v": 1})]) == 1
    assert writes.delete(copy_v1, SPEC, "docs", ids=["b"]) == 2
    expected = {**V1_LIVE, "a": ([0.0, 0.0, 0.0, 1.0], None, {"v": 1})}
    del expected["b"]
    assert _as_expected(_live(copy_v1, SPEC, "docs")) == expected
    done = builder.build(copy_v1, SPEC, "docs", owner="t")
    assert done.status == "built" and done.manifest is not None
    m = done.manifest
    assert (m.format_version, m.version, m.parent_version, m.applied_lsn) == (2, 3, 2, 2)
    assert m.record_count == 4
    # the imported version 2 is untouched and still format 1
    raw = copy_v1.read_bytes(layout.manifest_key("golden", "docs", 2))
    assert "applied_lsn" not in json.loads(raw) and json.loads(raw)["format_version"] == 1
    wal.clear_caches()
    assert _as_expected(_live(copy_v1, SPEC, "docs")) == expected
