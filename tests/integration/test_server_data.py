"""Data plane over the official pinecone SDK 10.2 (REST): an index filled by
``start_import`` from a local path through the server, then stats (with a
filter), query (vector, id, filter, sparse, include values / metadata),
fetch, list, namespaces, each checked field by field against the Python API
on the same store, and Pinecone's errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest
from datagen import random_sparse, sparse_array, write
from pinecone import NotFoundError, ServerlessSpec
from pinecone.errors import ApiError
from serverutil import Served, serve, wait_import, write_dense_import

from vecstore import VecStore

pytestmark = pytest.mark.dask

DIM = 8
COUNTS = {"ns1": 120, "ns2": 40, "gone": 10}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("data")
    src = base / "import"
    tables = write_dense_import(src, COUNTS, DIM, seed=3)
    sparse_src = base / "sparse-import"
    rows = random_sparse(60, seed=5, nnz=6, space=500)
    meta = [json.dumps({"quarter": "Q3" if i % 3 else "Q4"}) for i in range(60)]
    write(sparse_src / "sp" / "part-000.parquet",
          pa.table({"id": [f"s{i}" for i in range(60)], "sparse_values": sparse_array(rows),
                    "metadata": pa.array(meta, pa.string())}))
    with serve(base / "store") as s:
        pc = s.client()
        dense = pc.create_index(name="dense", dimension=DIM, metric="cosine",
                                spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        sparse = pc.create_index(name="sparse", vector_type="sparse", metric="dotproduct",
                                 spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        di = pc.Index(host=dense.host)
        si = pc.Index(host=sparse.host)
        ops = [(di, di.start_import(uri=str(src), error_mode="abort")),
               (si, si.start_import(uri=str(sparse_src)))]
        for idx, op in ops:
            job = wait_import(idx, op.id)
            assert job.status == "Completed", job.error
        yield {"server": s, "pc": pc, "dense": di, "sparse": si, "tables": tables,
               "sparse_rows": rows, "api": VecStore(str(s.store))}


def test_stats(env: dict[str, Any]) -> None:
    st = env["dense"].describe_index_stats()
    assert st.dimension == DIM and st.total_vector_count == sum(COUNTS.values())
    assert st.metric == "cosine" and st.vector_type == "dense"
    assert {ns: v.vector_count for ns, v in st.namespaces.items()} == COUNTS
    assert st.index_fullness == 0.0
    f = env["dense"].describe_index_stats(filter={"g": {"$eq": "a"}})
    assert {ns: v.vector_count for ns, v in f.namespaces.items()} == {
        ns: (n + 1) // 2 for ns, n in COUNTS.items()
    }
    f = env["dense"].describe_index_stats(filter={"i": {"$lt": 5}})
    assert f.total_vector_count == 15
    s = env["sparse"].describe_index_stats()
    assert s.vector_type == "sparse" and s.total_vector_count == 60 and s.dimension is None


def _api_index(env: dict[str, Any], name: str) -> Any:
    return env["api"].Index(name)


def test_query_matches_python_api(env: dict[str, Any]) -> None:
    q = np.random.default_rng(1).normal(size=DIM).astype(np.float32).tolist()
    api = _api_index(env, "dense")
    for kwargs in (
        {"top_k": 5, "namespace": "ns1"},
        {"top_k": 7, "namespace": "ns2", "filter": {"g": {"$eq": "b"}}},
        {"top_k": 3, "namespace": "ns1", "filter": {"$or": [{"i": {"$gte": 100}}, {"g": "a"}]}},
    ):
        got = env["dense"].query(vector=q, include_metadata=True, include_values=True, **kwargs)
        want = api.query(vector=q, include_metadata=True, include_values=True, **kwargs)
        assert got.namespace == kwargs["namespace"]
        assert [m.id for m in got.matches] == [m.id for m in want.matches]
        assert len(got.matches) == kwargs["top_k"]
        for g, w in zip(got.matches, want.matches, strict=True):
            assert g.score == pytest.approx(w.score, rel=1e-6)
            assert g.metadata == w.metadata and g.metadata is not None
            assert g.values == pytest.approx(list(w.values), rel=1e-6)
        if "filter" in kwargs and kwargs["top_k"] == 7:
            assert all(m.metadata["g"] == "b" for m in got.matches)
        assert got.usage.read_units == want.usage.read_units


def test_query_defaults_and_by_id(env: dict[str, Any]) -> None:
    q = [0.1] * DIM
    got = env["dense"].query(vector=q, top_k=2, namespace="ns1")
    assert all(not m.values and m.metadata is None for m in got.matches)
    by_id = env["dense"].query(id="ns1-7", top_k=1, namespace="ns1")
    assert by_id.matches[0].id == "ns1-7"
    assert by_id.matches[0].score == pytest.approx(1.0, abs=1e-5)
    empty = env["dense"].query(vector=q, top_k=3, namespace="nothing-here")
    assert empty.matches == [] and empty.namespace == "nothing-here"


def test_sparse_query(env: dict[str, Any]) -> None:
    idx, rows = env["sparse_rows"][4]
    sv = {"indices": idx, "values": [1.0] * len(idx)}
    got = env["sparse"].query(sparse_vector=sv, top_k=3, namespace="sp", include_metadata=True,
                              include_values=True, filter={"quarter": {"$eq": "Q3"}})
    want = _api_index(env, "sparse").query(sparse_vector=sv, top_k=3, namespace="sp",
                                           include_metadata=True, include_values=True,
                                           filter={"quarter": {"$eq": "Q3"}})
    assert [m.id for m in got.matches] == [m.id for m in want.matches] and got.matches
    assert got.matches[0].id == "s4"
    assert got.matches[0].sparse_values.indices == idx
    assert got.matches[0].sparse_values.values == pytest.approx(rows, rel=1e-6)
    assert got.matches[0].metadata == {"quarter": "Q3"}


def test_fetch(env: dict[str, Any]) -> None:
    t = env["tables"]["ns2"]
    res = env["dense"].fetch(ids=["ns2-3", "ns2-9", "absent"], namespace="ns2")
    assert res.namespace == "ns2"
    assert sorted(res.vectors) == ["ns2-3", "ns2-9"]
    v = res.vectors["ns2-3"]
    assert v.id == "ns2-3"
    assert v.values == pytest.approx(t.column("values")[3].as_py(), rel=1e-6)
    assert v.metadata == {"i": 3, "g": "b"}
    assert res.usage.read_units >= 1
    sp = env["sparse"].fetch(ids=["s2"], namespace="sp").vectors["s2"]
    assert sp.sparse_values.indices == env["sparse_rows"][2][0]


def test_list(env: dict[str, Any]) -> None:
    idx = env["dense"]
    page = idx.list_paginated(namespace="ns1", prefix="ns1-1", limit=5)
    ids = [v.id for v in page.vectors]
    assert ids == sorted(ids) and len(ids) == 5 and all(i.startswith("ns1-1") for i in ids)
    assert page.pagination is not None and page.pagination.next
    seen = list(ids)
    while page.pagination is not None:
        page = idx.list_paginated(namespace="ns1", prefix="ns1-1", limit=5,
                                  pagination_token=page.pagination.next)
        seen += [v.id for v in page.vectors]
    want = sorted(i for i in (f"ns1-{n}" for n in range(COUNTS["ns1"])) if i.startswith("ns1-1"))
    assert seen == want
    pages = list(idx.list(namespace="ns2", limit=15))
    assert sum(len(p) for p in pages) == COUNTS["ns2"]


def test_namespaces(env: dict[str, Any]) -> None:
    idx = env["dense"]
    names = {ns.name: ns.record_count for page in idx.list_namespaces() for ns in page.namespaces}
    assert names == COUNTS
    d = idx.describe_namespace(namespace="ns2")
    assert (d.name, d.record_count) == ("ns2", 40)
    page = idx.list_namespaces_paginated(limit=2)
    assert len(page.namespaces) == 2 and page.pagination and page.pagination.next
    rest = idx.list_namespaces_paginated(limit=2, pagination_token=page.pagination.next)
    assert {n.name for n in page.namespaces} | {n.name for n in rest.namespaces} == set(COUNTS)
    assert [n.name for n in idx.list_namespaces_paginated(prefix="ns").namespaces] == ["ns1", "ns2"]
    with pytest.raises(NotFoundError):
        idx.describe_namespace(namespace="never")


def test_delete_namespace(env: dict[str, Any]) -> None:
    idx = env["dense"]
    idx.delete_namespace(namespace="gone")
    assert "gone" not in idx.describe_index_stats().namespaces
    with pytest.raises(NotFoundError):
        idx.describe_namespace(namespace="gone")
    with pytest.raises(NotFoundError):
        idx.delete_namespace(namespace="gone")


def test_errors(env: dict[str, Any]) -> None:
    s: Served = env["server"]
    idx = env["dense"]
    with pytest.raises(ApiError) as e:
        idx.query(vector=[1.0, 2.0], top_k=1, namespace="ns1")
    assert e.value.status_code == 400 and "dimension" in str(e.value)
    with pytest.raises(ApiError) as e:
        idx.query(vector=[0.1] * DIM, top_k=1, namespace="ns1", filter={"g": {"$regex": "a"}})
    assert e.value.status_code == 400
    with pytest.raises(NotFoundError):
        env["pc"].Index(host=f"{s.url}/idx/missing").query(vector=[0.1] * DIM, top_k=1)
    base = f"{s.url}/idx/dense"
    cases = [
        ("POST", "/query", {"topK": 0, "vector": [0.1] * DIM}),
        ("POST", "/query", {"topK": 10001, "vector": [0.1] * DIM}),
        ("POST", "/query", {"topK": 3}),
        ("POST", "/query", {"topK": "3", "vector": [0.1] * DIM}),
        ("POST", "/query", {"topK": 3, "vector": ["0.1"] * DIM}),
        ("POST", "/query", {"topK": 3, "vector": [True] * DIM}),
        ("POST", "/query", {"topK": 3, "vector": [0.1] * DIM, "namespace": "x" * 513}),
        ("POST", "/query", {"topK": 3, "vector": [0.1] * DIM, "filter": []}),
        ("POST", "/query", {"topK": 3, "id": "ns1-1", "vector": [0.1] * DIM}),
        ("POST", "/query", {"topK": 3, "sparseVector": {"indices": [1], "values": ["a"]}}),
        ("POST", "/describe_index_stats", {"filter": "x"}),
        ("GET", "/vectors/fetch", None),
        ("GET", "/vectors/list?limit=0", None),
        ("GET", "/vectors/list?limit=abc", None),
        ("GET", "/vectors/list?paginationToken=%%%", None),
        ("GET", "/namespaces?limit=-1", None),
    ]
    for method, path, body in cases:
        r = httpx.request(method, base + path, json=body)
        assert r.status_code == 400, (path, body, r.text)
        err = r.json()
        assert err["status"] == 400 and err["error"]["code"] and err["error"]["message"]


def _hybrid_scores(q: np.ndarray, sq: dict[int, float], dense: np.ndarray,
                   sparse: list[tuple[list[int], list[float]] | None]) -> np.ndarray:
    """Brute-force dotproduct scores: dense part plus the sparse part (0 without sparse values)."""
    sp = [0.0 if s is None else sum(v * sq.get(i, 0.0) for i, v in zip(s[0], s[1], strict=True))
          for s in sparse]
    out: np.ndarray = dense.astype(np.float64) @ q.astype(np.float64) + np.array(sp)
    return out


def test_hybrid_query_matches_python_api(env: dict[str, Any]) -> None:
    """A dotproduct dense index with sparse values upserted by the SDK, queried
    with ``vector`` and ``sparse_vector`` together: ids, scores and returned
    sparse values as the Python API's and as brute force, before and after the
    tail is folded into clusters, and a ranking the sparse part reorders."""
    pc = env["pc"]
    m = pc.create_index(name="hybrid", dimension=DIM, metric="dotproduct",
                        spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    hy = pc.Index(host=m.host)
    rng = np.random.default_rng(11)
    q = rng.normal(size=DIM).astype(np.float32)
    n = 40
    dense = rng.normal(size=(n, DIM)).astype(np.float32)
    sparse: list[tuple[list[int], list[float]] | None] = list(random_sparse(n, seed=12, nnz=4, space=40))
    for i in range(0, n, 8):
        sparse[i] = None  # dense-only records live in a hybrid index too
    # "boost": dense score near 0 (orthogonal to q), sparse part large: last
    # in no dense ranking's top, first with the sparse query below
    ortho = rng.normal(size=DIM).astype(np.float32)
    ortho -= q * (ortho @ q) / (q @ q)
    dense = np.vstack([dense, ortho * 0.1])
    sparse.append(([1000, 1001], [5.0, 4.0]))
    ids = [f"h{i}" for i in range(n)] + ["boost"]
    vectors = []
    for i, (vid, vals, sv) in enumerate(zip(ids, dense, sparse, strict=True)):
        rec: dict[str, Any] = {"id": vid, "values": vals.tolist(), "metadata": {"i": i}}
        if sv is not None:
            rec["sparse_values"] = {"indices": sv[0], "values": sv[1]}
        vectors.append(rec)
    assert hy.upsert(vectors=vectors, namespace="hy").upserted_count == n + 1

    sq: dict[str, Any] = {"indices": [3, 7, 1000, 1001], "values": [0.5, 0.25, 1.0, 1.0]}
    sq_map = dict(zip(sq["indices"], sq["values"], strict=True))
    want_scores = _hybrid_scores(q, sq_map, dense, sparse)
    dense_scores = _hybrid_scores(q, {}, dense, sparse)
    top_k = 8
    want_ids = [ids[i] for i in np.argsort(-want_scores, kind="stable")[:top_k]]
    dense_ids = [ids[i] for i in np.argsort(-dense_scores, kind="stable")[:top_k]]
    api = _api_index(env, "hybrid")

    def check() -> None:
        d = hy.query(vector=q.tolist(), top_k=top_k, namespace="hy")
        got = hy.query(vector=q.tolist(), sparse_vector=sq, top_k=top_k, namespace="hy",
                       include_values=True, include_metadata=True)
        ref = api.query(vector=q.tolist(), sparse_vector=sq, top_k=top_k, namespace="hy",
                        include_values=True, include_metadata=True)
        assert [x.id for x in d.matches] == dense_ids
        assert [x.id for x in got.matches] == [x.id for x in ref.matches] == want_ids
        for g, w in zip(got.matches, ref.matches, strict=True):
            assert g.score == pytest.approx(w.score, rel=1e-6)
            assert g.score == pytest.approx(want_scores[ids.index(g.id)], rel=1e-5, abs=1e-5)
            assert g.metadata == w.metadata == {"i": ids.index(g.id)}
            assert g.values == pytest.approx(list(w.values), rel=1e-6)
            sv = sparse[ids.index(g.id)]
            if sv is None:
                assert not g.sparse_values or not g.sparse_values.indices
            else:
                assert g.sparse_values.indices == sv[0]
                assert g.sparse_values.values == pytest.approx(sv[1], rel=1e-6)
        # the sparse part reorders: "boost" leads the hybrid ranking only
        assert got.matches[0].id == "boost" and "boost" not in dense_ids
        assert got.matches[0].score == pytest.approx(9.0, abs=1e-4)

    check()  # the records are in the write log's tail
    assert api.build(namespace="hy")["hy"].status == "built"
    check()  # folded into clusters
