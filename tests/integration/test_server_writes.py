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
    assert index.describe_index_stats().namespaces.get("n") is None or \
        index.describe_index_stats().namespaces["n"].vector_count == 0


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
