"""Control plane over the official pinecone SDK 10.2 (REST) against
``vecstore serve``: create / list / describe / has / configure /
delete indexes, Pinecone's error classes, start-up time, SIGTERM, logging."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pinecone import (
    ConflictError,
    FailedPreconditionError,
    NotFoundError,
    ServerlessSpec,
)
from pinecone.errors import ApiError
from serverutil import Served, serve, write_dense_import


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("control") / "store") as s:
        yield s


@pytest.fixture
def pc(server: Served) -> Iterator[Any]:
    client = server.client()
    yield client
    for m in client.list_indexes():
        if m.deletion_protection == "enabled":
            client.configure_index(m.name, deletion_protection="disabled")
        client.delete_index(m.name)


def test_starts_fast(server: Served) -> None:
    assert server.started_in < 2.0
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
    spec = httpx.get(f"{server.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]["/indexes"]) == {"get", "post"}
    assert set(spec["paths"]["/indexes/{name}"]) == {"get", "patch", "delete"}
    assert "post" in spec["paths"]["/idx/{index}/query"]
    assert "/idx/{index}/namespaces/{namespace}" in spec["paths"]


def test_dense_index_lifecycle(pc: Any, server: Served) -> None:
    m = pc.create_index(
        name="dense-index", dimension=2, metric="cosine",
        spec=ServerlessSpec(cloud="aws", region="us-east-1"),
        deletion_protection="disabled", tags={"environment": "development"},
    )
    assert m.name == "dense-index"
    assert m.host == f"{server.url}/idx/dense-index"
    assert m.status.ready is True
    assert m.dimension == 2 and m.metric == "cosine" and m.vector_type == "dense"
    assert m.tags == {"environment": "development"}
    assert m.deletion_protection == "disabled"
    assert m.spec.serverless.cloud == "aws" and m.spec.serverless.region == "us-east-1"
    assert pc.has_index("dense-index") and not pc.has_index("other")
    d = pc.describe_index("dense-index")
    assert (d.name, d.dimension, d.metric, d.host) == ("dense-index", 2, "cosine", m.host)
    assert [i.name for i in pc.list_indexes()] == ["dense-index"]
    pc.delete_index("dense-index")
    assert not pc.has_index("dense-index")
    assert server.store.joinpath("indexes").exists()
    assert not server.store.joinpath("indexes", "dense-index").exists()


def test_index_hosts_per_sdk(pc: Any, server: Served) -> None:
    """The Python SDK gets ``http://`` hosts (it turns a bare host into
    https); the Node.js SDK gets Pinecone's bare host, which code written
    for Pinecone Local prefixes with ``'http://'``, and ``private_host``
    with the scheme, which that SDK uses when it resolves a host itself."""
    pc.create_index(name="hosts", dimension=2, metric="cosine",
                    spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    url = f"{server.url}/idx/hosts"
    node = {"User-Agent": "@pinecone-database/pinecone v9.0.0; lang=typescript; node v20.20.2"}
    for r in (
        httpx.get(f"{server.url}/indexes/hosts", headers=node),
        httpx.post(f"{server.url}/indexes", headers=node, json={
            "name": "hosts2", "dimension": 2, "metric": "cosine",
            "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
        }),
    ):
        assert r.status_code in (200, 201), r.text
        m = r.json()
        assert m["host"] == f"{url}{m['name'][5:]}".removeprefix("http://")
        assert m["private_host"] == f"{url}{m['name'][5:]}"
    (listed,) = [i for i in httpx.get(f"{server.url}/indexes", headers=node).json()["indexes"]
                 if i["name"] == "hosts"]
    assert (listed["host"], listed["private_host"]) == (url.removeprefix("http://"), url)
    plain = httpx.get(f"{server.url}/indexes/hosts").json()
    assert plain["host"] == url and "private_host" not in plain
    assert pc.describe_index("hosts").host == url


def test_sparse_and_hybrid_indexes(pc: Any) -> None:
    s = pc.create_index(
        name="sparse-index", vector_type="sparse", metric="dotproduct",
        spec=ServerlessSpec(cloud="gcp", region="us-central1"),
    )
    assert s.vector_type == "sparse" and s.metric == "dotproduct" and s.dimension is None
    assert s.spec.serverless.cloud == "gcp"
    h = pc.create_index(
        name="hybrid", dimension=4, metric="dotproduct",
        spec=ServerlessSpec(cloud="azure", region="eastus2"),
    )
    assert (h.vector_type, h.metric, h.dimension) == ("dense", "dotproduct", 4)
    assert sorted(i.name for i in pc.list_indexes()) == ["hybrid", "sparse-index"]


def test_configure_deletion_protection_and_tags(pc: Any) -> None:
    pc.create_index(
        name="guarded", dimension=3, metric="euclidean",
        spec=ServerlessSpec(cloud="aws", region="us-east-1"),
        deletion_protection="enabled", tags={"env": "dev", "team": "search"},
    )
    assert pc.describe_index("guarded").deletion_protection == "enabled"
    with pytest.raises(FailedPreconditionError) as err:
        pc.delete_index("guarded")
    assert err.value.status_code == 412
    assert pc.has_index("guarded")
    m = pc.configure_index("guarded", tags={"env": "prod", "team": ""})
    assert m.tags == {"env": "prod"}
    assert pc.describe_index("guarded").tags == {"env": "prod"}
    m = pc.configure_index("guarded", deletion_protection="disabled")
    assert m.deletion_protection == "disabled" and m.tags == {"env": "prod"}
    pc.delete_index("guarded")
    assert not pc.has_index("guarded")


def test_errors(pc: Any, server: Served) -> None:
    pc.create_index(name="dup", dimension=3, metric="cosine",
                    spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    with pytest.raises(ConflictError) as conflict:
        pc.create_index(name="dup", dimension=3, metric="cosine",
                        spec=ServerlessSpec(cloud="aws", region="us-east-1"))
    assert conflict.value.status_code == 409
    with pytest.raises(NotFoundError):
        pc.describe_index("missing")
    with pytest.raises(NotFoundError):
        pc.delete_index("missing")
    with pytest.raises(NotFoundError):
        pc.configure_index("missing", deletion_protection="enabled")
    # what the SDK would refuse client-side, sent raw: the server checks too
    bad_bodies: list[dict[str, Any]] = [
        {"name": "Bad_Name", "dimension": 3, "metric": "cosine"},
        {"name": "ok", "dimension": 0, "metric": "cosine"},
        {"name": "ok", "dimension": 20001, "metric": "cosine"},
        {"name": "ok", "dimension": "3", "metric": "cosine"},
        {"name": "ok", "dimension": 3, "metric": "manhattan"},
        {"name": "ok", "vector_type": "sparse", "metric": "cosine"},
        {"name": "ok", "dimension": 3, "spec": {"pod": {"environment": "x"}}},
        {"name": "ok", "dimension": 3, "deletion_protection": "maybe"},
        {"name": "ok", "dimension": 3, "tags": {"k": 1}},
        {"name": "ok", "schema": {"fields": {}}},
        {"name": "ok", "schema": {"fields": {"t": {"type": "semantic_text", "model": "m"}}}},
        {"name": "a" * 46, "dimension": 3},
    ]
    for body in bad_bodies:
        r = httpx.post(f"{server.url}/indexes", json=body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == "INVALID_ARGUMENT" and r.json()["status"] == 400
    assert sorted(i.name for i in pc.list_indexes()) == ["dup"]
    r = httpx.patch(f"{server.url}/indexes/dup", json={"deployment": {"replicas": 2}})
    assert r.status_code == 400
    for tags in ({"k": "v" * 200}, {"bad key": "v"}, {"k": 3}, {}):
        r = httpx.patch(f"{server.url}/indexes/dup", json={"tags": tags})
        assert r.status_code == 400, (tags, r.text)
    with pytest.raises(ApiError) as e:
        pc.indexes.configure("dup", deployment={"replicas": 2})
    assert e.value.status_code == 400
    assert pc.describe_index("dup").tags == {}


def test_unknown_route_and_method(server: Served) -> None:
    r = httpx.get(f"{server.url}/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = httpx.put(f"{server.url}/indexes")
    assert r.status_code == 400 and "error" in r.json()


def test_old_request_shape(server: Served, pc: Any) -> None:
    """The 2025-01 body the seed's curl example sends (Pinecone Local's API)."""
    r = httpx.post(
        f"{server.url}/indexes",
        headers={"X-Pinecone-API-Version": "2025-01"},
        json={"name": "legacy", "vector_type": "dense", "dimension": 2, "metric": "cosine",
              "spec": {"serverless": {"cloud": "aws", "region": "us-east-1"}},
              "tags": {"environment": "development"}, "deletion_protection": "disabled"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["dimension"] == 2 and body["host"].startswith("http://")
    assert pc.describe_index("legacy").tags == {"environment": "development"}


def test_one_debug_line_per_request_and_clean_sigterm(tmp_path: Path) -> None:
    with serve(tmp_path / "store") as s:
        pc = s.client()
        pc.create_index(name="logged", dimension=2, metric="cosine",
                        spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        pc.describe_index("logged")
        httpx.get(f"{s.url}/indexes/missing")
        time.sleep(0.3)
        lines = [ln for ln in s.log_text().splitlines() if "vecstore.server:" in ln and " DEBUG " in ln]
        assert any("POST /indexes 201" in ln for ln in lines), lines
        assert sum("GET /indexes/logged 200" in ln for ln in lines) >= 1
        assert sum("GET /indexes/missing 404" in ln for ln in lines) == 1
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=20) == 0
        assert "Finished server process" in s.log_text()
        assert "Traceback" not in s.log_text()


def test_sigterm_during_an_import_leaves_it_to_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while an import runs: the server exits cleanly, the import is
    never half-visible, and the next process that waits on it takes it over
    (stale heartbeat) and completes it."""
    from vecstore import VecStore
    from vecstore.runners import close_runners

    src = tmp_path / "src"
    write_dense_import(src, {f"ns{i}": 20_000 for i in range(3)}, 16)
    store = tmp_path / "store"
    with serve(store, env={"VECSTORE_STALE_SECONDS": "2"}) as s:
        pc = s.client()
        m = pc.create_index(name="big", dimension=16, metric="cosine",
                            spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        idx = pc.Index(host=m.host)
        op = idx.start_import(uri=str(src))
        deadline = time.monotonic() + 120
        while idx.describe_import(id=op.id).status == "Pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=30) == 0
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "2")
    index = VecStore(str(store)).Index("big")
    assert index.jobs.get(op.id).status == "InProgress"  # the runner died with the server
    counts = index.describe_index_stats().namespaces
    assert counts == {} or {n: c.vector_count for n, c in counts.items()} == {
        f"ns{i}": 20_000 for i in range(3)
    }
    try:
        job = index.wait_for_import(op.id, timeout=180)
    finally:
        close_runners()
    assert job.status == "Completed", job.error
    assert {n: c.vector_count for n, c in index.describe_index_stats().namespaces.items()} == {
        f"ns{i}": 20_000 for i in range(3)
    }
