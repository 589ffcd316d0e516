"""vecstore.writes: request forms, limits and messages, update / delete resolution."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from vecstore import builder, manifests, tail, wal, writes
from vecstore.errors import AlreadyExistsError, InvalidArgumentError, RateLimitedError
from vecstore.schemas import IndexSpec, Manifest
from vecstore.storage import Store

DENSE = IndexSpec(name="ix", dimension=4, metric="cosine")
HYBRID = IndexSpec(name="hy", dimension=4, metric="dotproduct")
SPARSE = IndexSpec(name="sp", metric="dotproduct", vector_type="sparse")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    wal.clear_caches()


def _entries(store: Store, spec: IndexSpec, ns: str = "ns") -> list[wal.Entry]:
    return wal.read_after(store, spec.name, ns, 0)


def _state(store: Store, spec: IndexSpec, ns: str = "ns") -> tail.TailState:
    return tail.TailReader(store, spec).get(ns)


# ------------------------------------------------------------------- forms


def test_upsert_takes_dicts_tuples_and_objects(memory_store: Store) -> None:
    n = writes.upsert(
        memory_store,
        DENSE,
        "ns",
        [
            {"id": "d", "values": [1, 0, 0, 0], "metadata": {"g": "x"}},
            ("t2", [0, 1, 0, 0]),
            ("t3", [0, 0, 1, 0], {"year": 2020}),
            SimpleNamespace(id="o", values=np.ones(4), sparse_values=None, metadata=None),
        ],
    )
    assert n == 4
    st = _state(memory_store, DENSE)
    got = st.lookup(["d", "t2", "t3", "o"])
    assert got["d"] is not None and got["d"].metadata == {"g": "x"}
    assert got["t3"] is not None and got["t3"].metadata == {"year": 2020}
    assert got["o"] is not None and got["o"].values == [1.0, 1.0, 1.0, 1.0]
    assert len(_entries(memory_store, DENSE)) == 1  # one request, one log entry


def test_upsert_creates_the_namespace_with_a_format2_manifest(memory_store: Store) -> None:
    writes.upsert(memory_store, DENSE, "new", [("a", [1, 2, 3, 4])])
    m = manifests.load_namespace(memory_store, "ix", "new")
    assert m is not None and m.format_version == 2 and m.applied_lsn == 0 and not m.clusters
    assert "new" in manifests.list_namespaces(memory_store, "ix")


def _rows() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    return [
        {"id": f"r{i}", "values": rng.random(4).tolist(), "metadata": {"i": i}} for i in range(25)
    ]


def test_upsert_from_arrow_table_in_batches(memory_store: Store) -> None:
    table = pa.Table.from_pylist([{**r, "metadata": json.dumps(r["metadata"])} for r in _rows()])
    assert writes.upsert(memory_store, DENSE, "ns", table, batch_size=10) == 25
    assert len(_entries(memory_store, DENSE)) == 3
    rec = _state(memory_store, DENSE).lookup(["r3"])["r3"]
    assert rec is not None and rec.metadata == {"i": 3}


def test_upsert_from_dataframe_in_batches(memory_store: Store) -> None:
    pd = pytest.importorskip("pandas")
    rows = _rows()
    df = pd.DataFrame(rows)
    assert writes.upsert(memory_store, DENSE, "df", df, batch_size=7) == 25
    assert len(_entries(memory_store, DENSE, "df")) == 4
    rec = _state(memory_store, DENSE, "df").lookup(["r3"])["r3"]
    assert rec is not None and rec.metadata == {"i": 3}


def test_hybrid_and_sparse_records(memory_store: Store) -> None:
    writes.upsert(
        memory_store,
        HYBRID,
        "ns",
        [
            {
                "id": "h",
                "values": [1, 0, 0, 0],
                "sparse_values": {"indices": [5, 1], "values": [0.5, 2]},
            }
        ],
    )
    writes.upsert(
        memory_store,
        SPARSE,
        "ns",
        [{"id": "s", "sparse_values": SimpleNamespace(indices=[3], values=[1.5])}],
    )
    h = _state(memory_store, HYBRID).lookup(["h"])["h"]
    s = _state(memory_store, SPARSE).lookup(["s"])["s"]
    assert h is not None and h.sparse_values == {"indices": [5, 1], "values": [0.5, 2.0]}
    assert s is not None and s.sparse_values == {"indices": [3], "values": [1.5]}


# ------------------------------------------------------ limits and messages


def _rejects(store: Store, spec: IndexSpec, records: Any, match: str, **kw: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        writes.upsert(store, spec, "ns", records, **kw)
    assert _entries(store, spec) == []  # a rejected request writes nothing


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (("b", [1, 2, 3]), r'record 1 \(id "b"\).*dimension 3 does not match.*4'),
        (("b", [1, 2, 3, float("nan")]), r'record 1 \(id "b"\).*NaN'),
        (("b", [1, 2, 3, float("inf")]), r'record 1 \(id "b"\).*finite'),
        (("x" * 513, [1, 2, 3, 4]), r"record 1 .*512"),
        (("b", [1, 2, 3, 4], {"big": "x" * 41_000}), r'record 1 \(id "b"\).*40'),
        (("b", [1, 2, 3, 4], {"o": {"n": 1}}), r'record 1 \(id "b"\).*"o".*object'),
        (("b", [1, 2, 3, 4], {"t": object()}), r'record 1 \(id "b"\).*JSON'),
        ({"id": "b", "values": [1, 2, 3, 4], "extra": 1}, r"record 1 .*unknown field"),
        ((7, [1, 2, 3, 4]), r"record 1.*id must be a string"),
        ({"id": "b", "values": "abcd"}, r'record 1 \(id "b"\).*list of numbers'),
        (
            {"id": "b", "values": [1, 2, 3, 4], "sparse_values": {"indices": [1], "values": [1]}},
            r'record 1 \(id "b"\).*dotproduct',
        ),
    ],
)
def test_invalid_records_name_the_record_and_write_nothing(
    memory_store: Store, record: Any, match: str
) -> None:
    _rejects(memory_store, DENSE, [("a", [1, 2, 3, 4]), record], match)


def test_sparse_limits(memory_store: Store) -> None:
    many = {"indices": list(range(1001)), "values": [1.0] * 1001}
    _rejects(
        memory_store, SPARSE, [{"id": "s", "sparse_values": many}], r'record 0 \(id "s"\).*1,?000'
    )
    _rejects(
        memory_store,
        SPARSE,
        [{"id": "s", "values": [1.0], "sparse_values": {"indices": [1], "values": [1]}}],
        "not supported for sparse indexes",
    )


def test_thousand_records_per_request(memory_store: Store) -> None:
    recs = [(f"r{i}", [1, 2, 3, 4]) for i in range(1001)]
    _rejects(memory_store, DENSE, recs, "at most 1,000 records")
    assert writes.upsert(memory_store, DENSE, "ns", recs, batch_size=1000) == 1001


def test_two_megabytes_per_request_as_pinecone_counts_them(memory_store: Store) -> None:
    spec = IndexSpec(name="big", dimension=1536)
    v = [0.5] * 1536
    meta = {"t": "x" * 1990}  # ~2,000 bytes of JSON
    ok = [(f"{i}", v, meta) for i in range(245)]  # Pinecone's table: 245 fit at 1536 / 2000 B
    assert writes.upsert(memory_store, spec, "ns", ok) == 245
    with pytest.raises(InvalidArgumentError, match="at most 2 MB"):
        writes.upsert(memory_store, spec, "ns", [*ok, ("x", v, meta)])


def test_a_bad_record_in_a_later_batch_writes_no_batch(memory_store: Store) -> None:
    recs: list[Any] = [(f"r{i}", [1, 2, 3, 4]) for i in range(20)] + [("bad", [1, 2])]
    _rejects(memory_store, DENSE, recs, r'id "bad"', batch_size=5)


def test_tail_cap_refuses_writes_until_the_builder_catches_up(memory_store: Store) -> None:
    writes.upsert(memory_store, DENSE, "ns", [(f"r{i}", [1, 2, 3, i]) for i in range(4)], cap=5)
    with pytest.raises(RateLimitedError, match="not yet indexed.*limit is 5"):
        writes.upsert(memory_store, DENSE, "ns", [("a", [1, 2, 3, 4]), ("b", [1, 2, 3, 4])], cap=5)
    assert builder.build(memory_store, DENSE, "ns").status == "built"
    assert writes.upsert(memory_store, DENSE, "ns", [("a", [1, 2, 3, 4])], cap=5) == 1


# ------------------------------------------------------------ namespaces


def test_write_refused_while_an_import_creates_the_namespace(memory_store: Store) -> None:
    pending = Manifest(index="ix", namespace="ns", version=1, import_id="imp-1", dimension=4)
    manifests.commit(memory_store, pending)
    with pytest.raises(AlreadyExistsError, match="being created by an import"):
        writes.upsert(memory_store, DENSE, "ns", [("a", [1, 2, 3, 4])])


def test_recreated_namespace_does_not_replay_the_old_log(memory_store: Store) -> None:
    writes.upsert(memory_store, DENSE, "ns", [("old", [1, 2, 3, 4])])
    manifests.delete_namespace(memory_store, "ix", "ns")
    writes.upsert(memory_store, DENSE, "ns", [("new", [1, 2, 3, 4])])
    assert _state(memory_store, DENSE).live_ids() == ["new"]


# ------------------------------------------------------- update / delete


def _seed(store: Store) -> None:
    writes.upsert(
        store,
        DENSE,
        "ns",
        [
            ("a", [1, 0, 0, 0], {"g": "x", "n": 1}),
            ("b", [0, 1, 0, 0], {"g": "y"}),
            ("c", [0, 0, 1, 0], {"g": "y"}),
        ],
    )


@pytest.mark.parametrize("built", [False, True])
def test_update_by_id_merges_metadata_and_replaces_values(memory_store: Store, built: bool) -> None:
    _seed(memory_store)
    if built:
        builder.build(memory_store, DENSE, "ns")
    assert writes.update(memory_store, DENSE, "ns", id="a", set_metadata={"n": 2, "z": True}) == 1
    assert writes.update(memory_store, DENSE, "ns", id="b", values=[0, 0, 0, 1]) == 1
    assert writes.update(memory_store, DENSE, "ns", id="missing", set_metadata={"n": 1}) == 0
    st = _state(memory_store, DENSE)
    a, b = st.lookup(["a"])["a"], st.lookup(["b"])["b"]
    assert a is not None and a.metadata == {"g": "x", "n": 2, "z": True}
    assert a.values == [1.0, 0.0, 0.0, 0.0]
    assert b is not None and b.values == [0.0, 0.0, 0.0, 1.0] and b.metadata == {"g": "y"}


@pytest.mark.parametrize("built", [False, True])
def test_update_and_delete_by_filter(memory_store: Store, built: bool) -> None:
    _seed(memory_store)
    if built:
        builder.build(memory_store, DENSE, "ns")
    assert (
        writes.update(
            memory_store, DENSE, "ns", filter={"g": "y"}, set_metadata={"k": 1}, dry_run=True
        )
        == 2
    )
    assert writes.update(memory_store, DENSE, "ns", filter={"g": "y"}, set_metadata={"k": 1}) == 2
    rec = _state(memory_store, DENSE).lookup(["c"])["c"]
    assert rec is not None and rec.metadata == {"g": "y", "k": 1}
    writes.delete(memory_store, DENSE, "ns", filter={"k": {"$eq": 1}})
    st = _state(memory_store, DENSE)
    assert st.lookup(["b", "c"]) == {"b": None, "c": None}
    assert writes.update(memory_store, DENSE, "ns", filter={"g": "y"}, set_metadata={"k": 2}) == 0


def test_delete_ids_unknown_is_fine_and_delete_all_keeps_the_namespace(memory_store: Store) -> None:
    _seed(memory_store)
    writes.delete(memory_store, DENSE, "ns", ids=["a", "nope"])
    assert _state(memory_store, DENSE).live_ids() == ["b", "c"]
    writes.delete(memory_store, DENSE, "ns", delete_all=True)
    st = _state(memory_store, DENSE)
    assert st.live_ids() == [] and st.hide_clusters
    assert manifests.load_namespace(memory_store, "ix", "ns") is not None
    writes.upsert(memory_store, DENSE, "ns", [("z", [1, 1, 1, 1])])
    assert _state(memory_store, DENSE).live_ids() == ["z"]


def test_delete_arguments(memory_store: Store) -> None:
    _seed(memory_store)
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        writes.delete(memory_store, DENSE, "ns", ids=["a"], delete_all=True)
    with pytest.raises(InvalidArgumentError, match="list of strings"):
        writes.delete(memory_store, DENSE, "ns", ids="a")  # type: ignore[arg-type]
    assert writes.delete(memory_store, DENSE, "absent", ids=["a"]) == 0


def test_show_progress_draws_a_bar_and_counts(memory_store: Store) -> None:
    recs = [(f"r{i}", [1, 2, 3, i]) for i in range(30)]
    assert writes.upsert(memory_store, DENSE, "ns", recs, batch_size=10, show_progress=True) == 30
    assert len(_entries(memory_store, DENSE)) == 3


def test_dict_fast_path_and_per_record_path_give_the_same_table() -> None:
    """Plain dicts take the columnar path; tuples and objects the per-record
    one; a record in error anywhere sends dicts the per-record way too."""
    rng = np.random.default_rng(3)
    rows = [
        {
            "id": f"r{i}",
            "values": rng.random(4).tolist(),
            "sparse_values": None if i % 3 else {"indices": [i, i + 1], "values": [0.5, 1]},
            "metadata": None if i % 4 == 0 else {"g": f"x{i % 2}", "n": i, "l": ["a"], "b": True},
        }
        for i in range(40)
    ]
    objs = [SimpleNamespace(**r) for r in rows]
    fast = writes.normalize(rows, HYBRID)
    slow = writes.normalize(objs, HYBRID)
    assert fast.equals(slow) and fast.schema.equals(slow.schema)
    # json text as json.dumps compact writes it
    assert fast.column("metadata")[1].as_py() == json.dumps(
        rows[1]["metadata"], ensure_ascii=False, separators=(",", ":")
    )
    dense = [{k: v for k, v in r.items() if k != "sparse_values"} for r in rows]
    tuples = [(r["id"], r["values"], r["metadata"]) for r in rows]
    assert writes.normalize(dense, DENSE).equals(writes.normalize(tuples, DENSE))


def test_metadata_errors_name_the_record() -> None:
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for bad, match in (
        (circular, "not JSON-serialisable"),
        ({"t": {1, 2}}, "not JSON-serialisable"),
        ([("k", "v")], "metadata must be an object"),
    ):
        recs = [
            {"id": "a", "values": [1, 2, 3, 4]},
            {"id": "b", "values": [1, 2, 3, 4], "metadata": bad},
        ]
        with pytest.raises(InvalidArgumentError, match=rf'record 1 \(id "b"\).*{match}'):
            writes.normalize(recs, DENSE)
    # non-ASCII text is kept as is (UTF-8), like the SDK's JSON
    t = writes.normalize([{"id": "é", "values": [1, 2, 3, 4], "metadata": {"k": "ü"}}], DENSE)
    assert t.column("metadata").to_pylist() == ['{"k":"ü"}']


def test_writers_follow_new_manifest_versions(memory_store: Store) -> None:
    """The newest manifest is read once per version (and re-read if its file changes)."""
    writes.upsert(memory_store, DENSE, "ns", [("a", [1, 2, 3, 4])])
    first = writes.ensure_namespace(memory_store, DENSE, "ns")
    assert first.version == 1 and writes.ensure_namespace(memory_store, DENSE, "ns") is first
    assert builder.build(memory_store, DENSE, "ns").status == "built"
    second = writes.ensure_namespace(memory_store, DENSE, "ns")
    assert (second.version, second.applied_lsn) == (2, 1)
    # the same version written again (a store restored from a backup, say): read afresh
    key = "indexes/ix/namespaces/ns/_manifests/00000000000000000002.json"
    changed = second.model_copy(update={"applied_lsn": 7})
    memory_store.fs.rm(memory_store.path(key))
    memory_store.write_bytes(key, changed.model_dump_json(indent=1).encode() + b"\n")
    assert writes.ensure_namespace(memory_store, DENSE, "ns").applied_lsn == 7
