"""Bulk imports over the pinecone SDK 10.2: start (local path, default
error mode), describe, list, list_paginated, cancel (of a finished import,
and of one in progress: an S3 source the test slows down with a proxy),
imports from several clients at once, and the errors."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from cloudgen import counting_proxy, matrix_of, new_place, seed_import
from datagen import NOTHING_LEFT, dense_table, leftovers, vectors, wait_until, write
from pinecone import NotFoundError, ServerlessSpec
from pinecone.errors import ApiError
from serverutil import Served, serve, wait_import, write_dense_import

pytestmark = pytest.mark.dask

DIM = 4


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("imports")
    with serve(base / "store") as s:
        pc = s.client()
        m = pc.create_index(name="imp", dimension=DIM, metric="euclidean",
                            spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        yield {"server": s, "pc": pc, "index": pc.Index(host=m.host), "base": base}


def test_import_lifecycle(env: dict[str, Any]) -> None:
    base: Path = env["base"]
    idx = env["index"]
    write_dense_import(base / "good", {"a": 30, "b": 20}, DIM)
    op = idx.start_import(uri=str(base / "good"))
    assert isinstance(op.id, str) and op.id
    job = wait_import(idx, op.id)
    assert job.status == "Completed" and job.id == op.id
    assert job.records_imported == 50 and job.percent_complete == 100.0
    assert job.uri == str(base / "good")
    assert job.created_at and job.finished_at
    assert job.error is None
    assert idx.describe_index_stats().namespaces["a"].vector_count == 30

    # records with the wrong dimension: skipped with Pinecone's default mode
    # (continue) when errorMode is omitted
    bad = dense_table(["x0", "x1"], vectors(2, DIM + 1), None)
    write(base / "mixed" / "c" / "part-0.parquet", bad)
    write(base / "mixed" / "c" / "part-1.parquet", dense_table(["c0"], vectors(1, DIM), None))
    write(base / "mixed" / "d" / "part-0.parquet", dense_table(["y0"], vectors(1, DIM), None))
    r = httpx.post(f"{env['server'].url}/idx/imp/bulk/imports", json={"uri": str(base / "mixed")})
    assert r.status_code == 200 and set(r.json()) == {"id"}
    job = wait_import(idx, r.json()["id"])
    assert job.status == "Completed", job.error
    assert job.records_imported == 2
    detail = httpx.get(f"{env['server'].url}/idx/imp/bulk/imports/{job.id}").json()
    assert set(detail) >= {"id", "uri", "status", "createdAt", "percentComplete", "recordsImported"}
    assert isinstance(detail["recordsImported"], int)

    # abort mode fails on the first bad record
    op = idx.start_import(uri=str(base / "mixed"), error_mode="abort")
    job = wait_import(idx, op.id)
    assert job.status == "Failed" and job.error

    listed = list(idx.list_imports())
    assert len(listed) == 3 and listed[0].created_at >= listed[-1].created_at
    page = idx.list_imports_paginated(limit=2)
    assert len(page) == 2 and page.pagination and page.pagination.next
    page2 = idx.list_imports_paginated(limit=2, pagination_token=page.pagination.next)
    assert len(page2) == 1 and page2.pagination is None
    assert {j.id for j in [*page, *page2]} == {j.id for j in listed}


def test_cancel_finished_import_is_a_noop(env: dict[str, Any]) -> None:
    base: Path = env["base"]
    idx = env["index"]
    write_dense_import(base / "small", {"done": 30}, DIM, seed=9)
    op = idx.start_import(uri=str(base / "small"))
    job = wait_import(idx, op.id)
    assert job.status == "Completed", job.error
    idx.cancel_import(id=op.id)
    after = idx.describe_import(id=op.id)
    assert (after.status, after.records_imported, after.finished_at) == (
        "Completed", 30, job.finished_at)
    assert idx.describe_index_stats().namespaces["done"].vector_count == 30


def _namespaces(idx: Any) -> dict[str, int]:
    """list_namespaces over the SDK (it yields pages): {name: record count}."""
    return {ns.name: int(ns.record_count) for page in idx.list_namespaces() for ns in page.namespaces}


def _stored_job(store: Path, index: str, job_id: str) -> dict[str, Any]:
    """The job record as its runner last wrote it (no cancel-marker overlay)."""
    from vecstore import layout

    return cast(dict[str, Any], json.loads((store / layout.job_key(index, job_id)).read_text()))


@pytest.mark.slow  # ~10 s: the server's first import starts its Dask cluster
@pytest.mark.s3
def test_cancel_in_progress_import_through_the_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """An S3 source behind a proxy that holds each request 0.5 s cannot
    finish quickly: cancelled over the SDK while InProgress with its Dask
    tasks reading, it ends Cancelled; none of its namespaces is visible
    (list_namespaces, stats, queries), and it leaves no manifest, data file,
    staging file or commit marker, also a while later."""
    place = new_place("s3", request, tmp_path)
    assert place.server is not None
    uri, tables, _ = seed_import(place, tmp_path, {f"n{i}": 400 for i in range(4)},
                                 dim=DIM, files=8)
    store = tmp_path / "store"
    with counting_proxy(place.server) as proxy:
        slow = place.server.options_via(proxy.endpoint)
        slow.pop("skip_instance_cache", None)
        cfg = tmp_path / "cfg.json"
        cfg.write_text(json.dumps({"integrations": {"slow": slow}}))
        with serve(store, config=cfg, log_level="info") as s:
            pc = s.client()
            m = pc.create_index(name="slow", dimension=DIM, metric="euclidean",
                                spec=ServerlessSpec(cloud="aws", region="us-east-1"))
            idx = pc.Index(host=m.host)
            proxy.latency = 0.5
            op = idx.start_import(uri=uri, integration_id="slow")
            # past discovery, its tasks reading the source's files
            wait_until(lambda: _stored_job(store, "slow", op.id)["phase"] not in
                       ("pending", "discover") and len(proxy.since()) >= 3,
                       timeout=60, interval=0.02, what="the import's tasks to read")
            assert idx.describe_import(id=op.id).status == "InProgress"
            idx.cancel_import(id=op.id)
            # the driver saw the cancel (its own record says so) before the
            # source speeds up again: the import cannot complete in between
            wait_until(lambda: (j := _stored_job(store, "slow", op.id))["cancel_requested"]
                       or j["status"] != "InProgress", timeout=30, what="the driver to see it")
            proxy.latency = 0.0
            job = wait_import(idx, op.id, timeout=60)
            assert job.status == "Cancelled", job
            assert job.error is None and job.finished_at is not None
            assert job.percent_complete < 100
            assert _namespaces(idx) == {}
            stats = idx.describe_index_stats()
            assert (stats.total_vector_count, dict(stats.namespaces)) == (0, {})
            for ns, t in tables.items():
                res = idx.query(vector=matrix_of(t)[0].tolist(), top_k=3, namespace=ns)
                assert res.matches == [], ns
            assert leftovers(store, "slow", op.id) == NOTHING_LEFT
            time.sleep(1.5)  # a task that ignored the cancel would have written by now
            assert leftovers(store, "slow", op.id) == NOTHING_LEFT
            idx.cancel_import(id=op.id)  # a no-op now
            assert idx.describe_import(id=op.id).status == "Cancelled"
            assert [(j.id, j.status) for j in idx.list_imports()] == [(op.id, "Cancelled")]
            assert _namespaces(idx) == {}
            assert "Traceback" not in s.log_text()


def test_concurrent_imports_from_several_clients(env: dict[str, Any]) -> None:
    """Four threads, each with its own SDK client, start an import into its
    own namespace of one index at the same moment: the four run at once and
    all complete, with exact counts per namespace, and each namespace
    answers with its own records."""
    base: Path = env["base"]
    server: Served = env["server"]
    host = env["pc"].create_index(name="multi", dimension=DIM, metric="euclidean",
                                  spec=ServerlessSpec(cloud="aws", region="us-east-1")).host
    rows = {f"c{i}": 1500 + 37 * i for i in range(4)}
    tables = {ns: write_dense_import(base / f"multi-{ns}", {ns: n}, DIM, seed=20 + i)[ns]
              for i, (ns, n) in enumerate(rows.items())}
    start = threading.Barrier(len(rows))

    def run(ns: str) -> Any:
        idx = server.client().Index(host=host)  # a client of its own
        start.wait(timeout=30)
        return wait_import(idx, idx.start_import(uri=str(base / f"multi-{ns}")).id)

    with ThreadPoolExecutor(len(rows)) as pool:
        done = dict(zip(rows, pool.map(run, rows), strict=True))
    assert {ns: (job.status, job.error, job.records_imported) for ns, job in done.items()} == {
        ns: ("Completed", None, n) for ns, n in rows.items()}
    jobs = list(done.values())
    assert len({job.id for job in jobs}) == len(rows)
    # all four were in flight together (the last started before the first ended)
    assert max(job.created_at for job in jobs) < min(job.finished_at for job in jobs), jobs
    idx = env["pc"].Index(host=host)
    stats = idx.describe_index_stats()
    assert {ns: v.vector_count for ns, v in stats.namespaces.items()} == rows
    assert stats.total_vector_count == sum(rows.values())
    assert _namespaces(idx) == rows
    for ns, t in tables.items():
        x = matrix_of(t)
        res = idx.query(vector=x[-1].tolist(), top_k=1, namespace=ns, include_metadata=True)
        assert res.matches[0].id == t.column("id")[t.num_rows - 1].as_py()
    assert {j.id for j in idx.list_imports()} == {job.id for job in jobs}


def test_errors(env: dict[str, Any]) -> None:
    idx = env["index"]
    url = f"{env['server'].url}/idx/imp/bulk/imports"
    with pytest.raises(NotFoundError):
        idx.describe_import(id="999")
    with pytest.raises(NotFoundError):
        idx.cancel_import(id="999")
    with pytest.raises(ApiError) as e:
        idx.start_import(uri="ftp://host/x")
    assert e.value.status_code == 400
    with pytest.raises(ApiError) as e:
        idx.start_import(uri="s3://bucket/x", integration_id="nope")
    assert e.value.status_code == 400 and "integration" in str(e.value).lower()
    for body in (
        {},
        {"uri": 3},
        {"uri": ""},
        {"uri": "/x", "errorMode": {"onError": "explode"}},
        {"uri": "/x", "errorMode": "continue"},
        {"uri": "/x", "integrationId": 5},
    ):
        r = httpx.post(url, json=body)
        assert r.status_code == 400, (body, r.text)
    assert httpx.get(f"{url}?limit=0").status_code == 400
    assert httpx.get(f"{url}?paginationToken=@@@").status_code == 400
    assert httpx.get(f"{url}/..").status_code == 404
    r = httpx.post(f"{env['server'].url}/idx/missing/bulk/imports", json={"uri": "/x"})
    assert r.status_code == 404
    # the failed job of an unreadable directory is a job, not an HTTP error
    op = idx.start_import(uri=str(env["base"] / "does-not-exist"))
    job = wait_import(idx, op.id)
    assert job.status == "Failed" and job.error


def test_integration_from_config(tmp_path: Path) -> None:
    """``--config`` integrations reach imports; their secrets never reach a
    response, a job record or the log."""
    secret = "vecstoreFAKEserverSECRET42"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"integrations": {"local-int": {"secret_token": secret}}}))
    write_dense_import(tmp_path / "src", {"a": 5}, DIM)
    with serve(tmp_path / "store", config=cfg) as s:
        pc = s.client()
        m = pc.create_index(name="cfg", dimension=DIM, metric="cosine",
                            spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        idx = pc.Index(host=m.host)
        r = httpx.post(f"{s.url}/idx/cfg/bulk/imports", timeout=120,
                       json={"uri": str(tmp_path / "src"), "integrationId": "local-int"})
        texts = [r.text]
        if r.status_code == 200:
            job = wait_import(idx, r.json()["id"], timeout=120)
            texts.append(httpx.get(f"{s.url}/idx/cfg/bulk/imports/{job.id}").text)
        texts.append(s.log_text())
        texts += [p.read_text(errors="replace") for p in s.store.rglob("*.json")]
        assert all(secret not in t for t in texts)
