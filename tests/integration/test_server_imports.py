"""Bulk imports over the pinecone SDK 10.2: start (local path, default
error mode), describe, list, list_paginated, cancel, and the errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from datagen import dense_table, vectors, write
from pinecone import NotFoundError, ServerlessSpec
from pinecone.errors import ApiError
from serverutil import serve, wait_import, write_dense_import

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


def test_cancel(env: dict[str, Any]) -> None:
    base: Path = env["base"]
    idx = env["index"]
    write_dense_import(base / "big", {f"n{i}": 2000 for i in range(4)}, DIM, seed=9)
    op = idx.start_import(uri=str(base / "big"))
    idx.cancel_import(id=op.id)
    job = wait_import(idx, op.id)
    assert job.status in ("Cancelled", "Completed")  # it may finish before the cancel lands
    idx.cancel_import(id=op.id)  # cancelling a finished import is a no-op


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
