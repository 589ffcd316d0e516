"""The write path over the pinecone SDK 10.2: upsert, update, delete, list,
and the 429 of a write tail over its cap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pinecone import ServerlessSpec
from pinecone.errors import ApiError, RateLimitError
from serverutil import Served, serve

from vecstore import VecStore

SPEC = ServerlessSpec(cloud="aws", region="us-east-1")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("writes") / "store") as s:
        yield s


HOSTS: dict[int, str] = {}


@pytest.fixture
def index(server: Served) -> Iterator[Any]:
    pc = server.client()
    name = f"w{len(HOSTS)}"
    m = pc.create_index(name=name, dimension=2, metric="dotproduct", spec=SPEC)
    idx = pc.Index(host=m.host)
    HOSTS[id(idx)] = m.host
    yield idx
    pc.delete_index(name)


def test_upsert_then_read(index: Any) -> None:
    res = index.upsert(
        vectors=[
            {"id": "vec1", "values": [1.0, -2.5], "metadata": {"genre": "drama"}},
            {"id": "vec2", "values": [3.0, -2.0], "metadata": {"genre": "documentary"},
             "sparse_values": {"indices": [1, 7], "values": [0.5, 0.25]}},
            ("vec3", [0.5, -1.5], {"genre": "documentary"}),
        ],
        namespace="example-namespace",
    )
    assert res.upserted_count == 3
    got = index.fetch(ids=["vec2"], namespace="example-namespace").vectors["vec2"]
    assert got.values == pytest.approx([3.0, -2.0])
    assert got.metadata == {"genre": "documentary"}
    assert got.sparse_values.indices == [1, 7]
    q = index.query(vector=[3.0, -2.0], top_k=1, namespace="example-namespace",
                    filter={"genre": {"$eq": "documentary"}}, include_metadata=True)
    assert q.matches[0].id == "vec2"
    stats = index.describe_index_stats()
    assert stats.namespaces["example-namespace"].vector_count == 3
    ids = [v.id for page in index.list(namespace="example-namespace") for v in page.vectors]
    assert ids == ["vec1", "vec2", "vec3"]
    page = index.list_paginated(namespace="example-namespace", prefix="vec", limit=2)
    assert [v.id for v in page.vectors] == ["vec1", "vec2"] and page.pagination is not None


def test_upsert_errors(index: Any, server: Served) -> None:
    with pytest.raises(ApiError) as e:
        index.upsert(vectors=[("a", [1.0, 2.0, 3.0])])
    assert e.value.status_code == 400
    url = HOSTS[id(index)] + "/vectors/upsert"
    for body in ({"vectors": []}, {"vectors": [{"values": [1, 2]}]}, {"vectors": "x"},
                 {"vectors": [{"id": "a", "values": ["1", 2]}]}):
        assert httpx.post(url, json=body).status_code == 400


def test_update(index: Any) -> None:
    index.upsert(vectors=[("a", [1.0, 0.0], {"g": "x"}), ("b", [0.0, 1.0], {"g": "x"})])
    index.update(id="a", values=[0.5, 0.5], set_metadata={"g": "y"})
    a = index.fetch(ids=["a"]).vectors["a"]
    assert a.values == pytest.approx([0.5, 0.5]) and a.metadata == {"g": "y"}
    res = index.update(filter={"g": {"$eq": "x"}}, set_metadata={"seen": True}, dry_run=True)
    assert res.matched_records == 1
    assert index.fetch(ids=["b"]).vectors["b"].metadata == {"g": "x"}


def test_delete(index: Any) -> None:
    index.upsert(vectors=[(f"d{i}", [float(i), 1.0], {"i": i}) for i in range(6)], namespace="n")
    index.delete(ids=["d0", "d1"], namespace="n")
    assert sorted(index.fetch(ids=["d0", "d2"], namespace="n").vectors) == ["d2"]
    index.delete(filter={"i": {"$gte": 4}}, namespace="n")
    assert index.describe_index_stats().namespaces["n"].vector_count == 2
    index.delete(delete_all=True, namespace="n")
    stats = index.describe_index_stats()  # delete_all keeps the namespace (docs/write-path.md)
    assert stats.namespaces["n"].vector_count == 0 and stats.total_vector_count == 0
    assert index.fetch(ids=[f"d{i}" for i in range(6)], namespace="n").vectors == {}


def test_tail_over_its_cap_is_429_and_writes_nothing(tmp_path: Any) -> None:
    env = {"VECSTORE_TAIL_CAP": "5", "VECSTORE_BUILD_IN_BACKGROUND": "0"}
    with serve(tmp_path / "store", env=env) as s:
        pc = s.client()
        m = pc.create_index(name="capped", dimension=2, metric="cosine", spec=SPEC)
        idx = pc.Index(host=m.host)
        assert idx.upsert(vectors=[(f"a{i}", [1.0, float(i)]) for i in range(5)]).upserted_count == 5
        r = httpx.post(m.host + "/vectors/upsert", json={"vectors": [{"id": "b", "values": [1, 2]}]})
        assert r.status_code == 429 and r.headers.get("retry-after") == "1", r.text
        assert r.json()["error"]["code"] == "RESOURCE_EXHAUSTED"
        with pytest.raises(RateLimitError):  # the SDK retries 429s, then raises
            idx.upsert(vectors=[("c", [0.5, 0.5])])
        assert idx.describe_index_stats().total_vector_count == 5
        assert idx.fetch(ids=["b", "c"]).vectors == {}


def test_filtered_stats_count_logged_writes(index: Any) -> None:
    index.upsert(vectors=[(f"v{i}", [1.0, float(i)], {"g": "a" if i % 2 else "b"}) for i in range(6)],
                 namespace="ns")
    index.delete(ids=["v1"], namespace="ns")
    index.upsert(vectors=[("v0", [1.0, 0.0], {"g": "a"})], namespace="ns")  # b -> a
    stats = index.describe_index_stats(filter={"g": {"$eq": "a"}})
    assert stats.namespaces["ns"].vector_count == 3  # v0, v3, v5
    assert index.describe_index_stats().namespaces["ns"].vector_count == 5


def _api(server: Served, index: Any) -> Any:
    """The Python API's Index of the same name on the server's store."""
    return VecStore(str(server.store)).Index(HOSTS[id(index)].rsplit("/", 1)[1])


def _metadata(index: Any, ids: list[str], namespace: str) -> dict[str, Any]:
    got = index.fetch(ids=ids, namespace=namespace).vectors
    assert sorted(got) == sorted(ids)
    return {i: got[i].metadata for i in ids}


def test_update_by_filter_is_applied(index: Any, server: Served) -> None:
    """``update(filter=, set_metadata=)`` merges the keys into exactly the
    matching records, whether folded into clusters or in the log's tail;
    fetch, filtered query (as the Python API's) and filtered stats see it."""
    api = _api(server, index)
    ids = [f"r{i}" for i in range(12)]
    recs = [(f"r{i}", [1.0, float(i)], {"g": "x" if i % 3 == 0 else "y", "i": i}) for i in range(12)]
    index.upsert(vectors=recs[:6], namespace="u")
    assert api.build(namespace="u")["u"].status == "built"  # r0-r5 in clusters
    index.upsert(vectors=recs[6:], namespace="u")  # r6-r11 in the tail
    index.upsert(vectors=[("o0", [1.0, 0.0], {"g": "x", "i": 0})], namespace="other")
    matching = ["r0", "r3", "r6", "r9"]

    res = index.update(filter={"g": {"$eq": "x"}}, set_metadata={"seen": True, "tier": 2},
                       namespace="u")
    assert res.matched_records == 4
    want = {f"r{i}": {"g": "x" if i % 3 == 0 else "y", "i": i} for i in range(12)}
    for i in matching:
        want[i] |= {"seen": True, "tier": 2}
    assert _metadata(index, ids, "u") == want
    got = index.fetch(ids=ids, namespace="u").vectors
    assert {i: got[i].values for i in ids} == {r[0]: pytest.approx(r[1]) for r in recs}
    assert _metadata(index, ["o0"], "other") == {"o0": {"g": "x", "i": 0}}  # other namespace

    flt = {"seen": {"$eq": True}}
    q = index.query(vector=[1.0, 1.0], top_k=12, namespace="u", filter=flt, include_metadata=True)
    ref = api.query(vector=[1.0, 1.0], top_k=12, namespace="u", filter=flt, include_metadata=True)
    assert sorted(m.id for m in q.matches) == matching
    assert [(m.id, m.score, m.metadata) for m in q.matches] == \
        [(m.id, pytest.approx(m.score, rel=1e-6), m.metadata) for m in ref.matches]
    assert index.describe_index_stats(filter=flt).namespaces["u"].vector_count == 4
    assert index.update(filter=flt, set_metadata={"x": 1}, dry_run=True,
                        namespace="u").matched_records == 4

    # a filter on the key it rewrites: every "y" becomes "z"
    assert index.update(filter={"g": "y"}, set_metadata={"g": "z"}, namespace="u").matched_records == 8
    assert index.query(vector=[1.0, 1.0], top_k=12, namespace="u", filter={"g": "y"}).matches == []
    z = index.query(vector=[1.0, 1.0], top_k=12, namespace="u", filter={"g": {"$eq": "z"}})
    assert sorted(m.id for m in z.matches) == sorted(set(ids) - set(matching))
    for i in want:
        if i not in matching:
            want[i]["g"] = "z"
    assert _metadata(index, ids, "u") == want
    assert index.describe_index_stats().namespaces["u"].vector_count == 12


def test_update_sparse_values(index: Any, server: Served) -> None:
    """``update(id=, sparse_values=)`` on a dotproduct (hybrid) index replaces
    the record's sparse values (or adds them) and nothing else: fetch and
    hybrid query scores (as the Python API's) use the new ones."""
    api = _api(server, index)
    index.upsert(vectors=[
        {"id": "s1", "values": [1.0, 2.0], "metadata": {"k": 1},
         "sparse_values": {"indices": [1, 7], "values": [0.5, 0.25]}},
        {"id": "s2", "values": [0.5, 0.5], "metadata": {"k": 2}},
        {"id": "s3", "values": [0.25, 0.0], "sparse_values": {"indices": [3], "values": [0.5]}},
    ], namespace="sv")
    index.update(id="s1", sparse_values={"indices": [3, 9], "values": [2.0, 1.0]}, namespace="sv")
    index.update(id="s2", sparse_values={"indices": [9], "values": [4.0]}, namespace="sv")

    def check() -> None:
        got = index.fetch(ids=["s1", "s2", "s3"], namespace="sv").vectors
        assert (got["s1"].sparse_values.indices, got["s1"].sparse_values.values) == ([3, 9], [2.0, 1.0])
        assert (got["s2"].sparse_values.indices, got["s2"].sparse_values.values) == ([9], [4.0])
        assert (got["s3"].sparse_values.indices, got["s3"].sparse_values.values) == ([3], [0.5])
        assert [got[i].values for i in ("s1", "s2", "s3")] == [[1.0, 2.0], [0.5, 0.5], [0.25, 0.0]]
        assert [got[i].metadata for i in ("s1", "s2", "s3")] == [{"k": 1}, {"k": 2}, None]
        for sq, want in (
            ({"indices": [3], "values": [1.0]}, [("s1", 3.0), ("s3", 0.75), ("s2", 0.5)]),
            ({"indices": [1, 7], "values": [1.0, 1.0]}, [("s1", 1.0), ("s2", 0.5), ("s3", 0.25)]),
            ({"indices": [9], "values": [1.0]}, [("s2", 4.5), ("s1", 2.0), ("s3", 0.25)]),
        ):
            kw = {"vector": [1.0, 0.0], "sparse_vector": sq, "top_k": 3, "namespace": "sv"}
            q = [(m.id, m.score) for m in index.query(**kw).matches]
            assert q == [(i, pytest.approx(s)) for i, s in want], (sq, q)
            assert q == [(m.id, pytest.approx(m.score)) for m in api.query(**kw).matches]

    check()  # updates in the tail
    assert api.build(namespace="sv")["sv"].status == "built"
    check()  # folded into clusters
    index.update(id="s1", sparse_values={"indices": [5], "values": [1.5]}, namespace="sv")
    s1 = index.fetch(ids=["s1"], namespace="sv").vectors["s1"]  # over a clustered record
    assert (s1.sparse_values.indices, s1.sparse_values.values, s1.values) == ([5], [1.5], [1.0, 2.0])


def test_delete_all_empties_only_its_namespace(index: Any, server: Served) -> None:
    """``delete(delete_all=True, namespace=)`` with records in clusters and in
    the tail: the namespace stays with 0 records (docs/write-path.md), nothing
    of it is fetched, listed or queried, old records never come back after a
    new upsert or a fold, and the other namespace is untouched."""
    api = _api(server, index)
    index.upsert(vectors=[(f"d{i}", [float(i), 1.0], {"i": i}) for i in range(6)], namespace="n")
    assert api.build(namespace="n")["n"].status == "built"
    index.upsert(vectors=[(f"e{i}", [float(i), 2.0], {"i": i}) for i in range(3)], namespace="n")
    keep = [(f"k{i}", [float(i), 0.5], {"i": i}) for i in range(4)]
    index.upsert(vectors=keep, namespace="keep")
    old = [f"d{i}" for i in range(6)] + [f"e{i}" for i in range(3)]
    assert index.describe_index_stats().namespaces["n"].vector_count == 9

    index.delete(delete_all=True, namespace="n")

    def empty_n(total: int) -> None:
        stats = index.describe_index_stats()
        assert {ns: v.vector_count for ns, v in stats.namespaces.items()} == {"n": 0, "keep": total}
        assert stats.total_vector_count == total
        assert index.describe_namespace(namespace="n").record_count == 0
        assert index.fetch(ids=old, namespace="n").vectors == {}
        assert [v.id for p in index.list(namespace="n") for v in p.vectors] == []
        assert index.query(vector=[1.0, 1.0], top_k=10, namespace="n").matches == []
        assert api.describe_index_stats().namespaces["n"].vector_count == 0
        kept = index.fetch(ids=[k[0] for k in keep], namespace="keep").vectors
        assert {i: (v.values, v.metadata) for i, v in kept.items()} == {
            k[0]: (k[1], k[2]) for k in keep}

    empty_n(4)
    assert api.build(namespace="n")["n"].status == "built"
    empty_n(4)  # folded: the clusters are emptied too
    index.upsert(vectors=[("d0", [9.0, 9.0], {"new": True})], namespace="n")
    q = index.query(vector=[1.0, 1.0], top_k=10, namespace="n", include_metadata=True)
    assert [(m.id, m.score, m.metadata) for m in q.matches] == [("d0", 18.0, {"new": True})]
    assert index.describe_index_stats().namespaces["n"].vector_count == 1
    assert sorted(index.fetch(ids=old, namespace="n").vectors) == ["d0"]
