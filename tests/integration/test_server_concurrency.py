"""32 concurrent pinecone SDK clients mixing queries, fetches, stats, lists
(and upserts once the write path exists) while an import runs: no request
fails, with one server process and with two (``--workers 2``). The issue's
60 s run is marked slow; a short run is always on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pinecone import ServerlessSpec
from serverutil import Served, serve, wait_import, write_dense_import

pytestmark = pytest.mark.dask

DIM = 16
N = 1500
CLIENTS = 32


@pytest.fixture(
    scope="module",
    # two server processes: the longest runs, CI runs them (make test-slow)
    params=[1, pytest.param(2, marks=pytest.mark.slow)],
    ids=["1-worker", "2-workers"],
)
def env(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("conc")
    write_dense_import(base / "src", {"ns": N}, DIM)
    with serve(base / "store", log_level="info", workers=request.param) as s:
        pc = s.client()
        m = pc.create_index(name="conc", dimension=DIM, metric="cosine",
                            spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        idx = pc.Index(host=m.host)
        job = wait_import(idx, idx.start_import(uri=str(base / "src")).id)
        assert job.status == "Completed", job.error
        yield {"server": s, "host": m.host, "base": base}


def hammer(server: Served, host: str, seconds: float, base: Path) -> dict[str, Any]:
    stop = time.monotonic() + seconds
    errors: list[str] = []
    ops = [0] * CLIENTS
    latencies: list[float] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        rng = np.random.default_rng(n)
        idx = server.client().Index(host=host)
        while time.monotonic() < stop:
            r = rng.random()
            t0 = time.perf_counter()
            try:
                if r < 0.55:
                    res = idx.query(vector=rng.normal(size=DIM).tolist(), top_k=5, namespace="ns",
                                    include_metadata=bool(n % 2))
                    assert len(res.matches) == 5
                elif r < 0.8:
                    ids = [f"ns-{i}" for i in rng.integers(0, N, size=3)]
                    got = idx.fetch(ids=ids, namespace="ns")
                    assert set(got.vectors) == set(ids)
                elif r < 0.88:
                    assert idx.describe_index_stats().namespaces["ns"].vector_count >= N
                elif r < 0.94:
                    page = idx.list_paginated(namespace="ns", limit=10)
                    assert len(page.vectors) == 10
                else:
                    res = idx.upsert(vectors=[(f"w{n}-{ops[n]}", rng.normal(size=DIM).tolist())],
                                     namespace=f"writes-{n % 4}")
                    assert res.upserted_count == 1
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
            else:
                with lock:
                    latencies.append(time.perf_counter() - t0)
            ops[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    # an import runs meanwhile (into new namespaces, each run its own):
    # queries must not wait for it
    more = base / f"more-{int(seconds)}"
    write_dense_import(more, {f"extra{int(seconds)}-{i}": 3000 for i in range(3)}, DIM, seed=7)
    importer = server.client().Index(host=host)
    op = importer.start_import(uri=str(more))
    for t in threads:
        t.join()
    job = wait_import(importer, op.id)
    return {"errors": errors, "ops": ops, "latencies": latencies, "import": job}


@pytest.mark.parametrize("seconds", [
    pytest.param(8.0, id="short"),
    pytest.param(60.0, id="60s", marks=pytest.mark.slow),
])
def test_32_clients(env: dict[str, Any], seconds: float) -> None:
    out = hammer(env["server"], env["host"], seconds, env["base"])
    assert out["errors"] == [], out["errors"][:5]
    assert all(n > 0 for n in out["ops"]), out["ops"]
    assert out["import"].status == "Completed", out["import"].error
    lat = np.array(out["latencies"])
    print(f"{len(lat)} requests from {CLIENTS} clients in {seconds:.0f} s: "
          f"p50 {np.percentile(lat, 50) * 1000:.1f} ms, p99 {np.percentile(lat, 99) * 1000:.1f} ms")


def _query_latencies(server: Served, host: str, clients: int, until: Any) -> list[float]:
    """Queries from ``clients`` threads until ``until()`` is true; their latencies (s)."""
    lat: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        rng = np.random.default_rng(100 + n)
        idx = server.client().Index(host=host)
        while not until():
            t0 = time.perf_counter()
            try:
                res = idx.query(vector=rng.normal(size=DIM).tolist(), top_k=5, namespace="ns")
                assert len(res.matches) == 5
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
            else:
                with lock:
                    lat.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [], errors[:5]
    return lat


def test_queries_do_not_wait_on_an_import(env: dict[str, Any]) -> None:
    """Issue 13 item 6: query latency while an import runs vs just before it,
    in the same test. The p99 during the import must stay under 5x the p99
    before, or under 1 s absolute (the import competes for the 2 shared cores
    of CI, so only a query *waiting* on the import -- a lock, a blocked event
    loop -- would exceed both)."""
    server: Served = env["server"]
    host: str = env["host"]
    clients = 4
    end = time.monotonic() + 3.0
    before = np.array(_query_latencies(server, host, clients, lambda: time.monotonic() > end))

    src = env["base"] / "latency-import"
    write_dense_import(src, {f"lat-{i}": 12000 for i in range(4)}, DIM, seed=11)
    importer = server.client().Index(host=host)
    op = importer.start_import(uri=str(src))
    state: dict[str, Any] = {"status": "Pending", "t": 0.0}
    hard_stop = time.monotonic() + 60

    def done() -> bool:
        # poll the job at most every 0.25 s (from whichever client thread asks)
        if time.monotonic() - state["t"] > 0.25:
            state["t"] = time.monotonic()
            state["status"] = importer.describe_import(id=op.id).status
        return state["status"] in ("Completed", "Failed", "Cancelled") or time.monotonic() > hard_stop

    t0 = time.monotonic()
    during = np.array(_query_latencies(server, host, clients, done))
    took = time.monotonic() - t0
    job = wait_import(importer, op.id)
    assert job.status == "Completed", job.error
    p99_before, p99_during = np.percentile(before, 99), np.percentile(during, 99)
    print(f"queries before import: n={len(before)} p50 {np.percentile(before, 50) * 1000:.1f} ms "
          f"p99 {p99_before * 1000:.1f} ms; during the {took:.1f} s import: n={len(during)} "
          f"p50 {np.percentile(during, 50) * 1000:.1f} ms p99 {p99_during * 1000:.1f} ms "
          f"(max {during.max() * 1000:.0f} ms)")
    assert len(before) >= 20 and len(during) >= 20, (len(before), len(during))
    assert p99_during < max(5 * p99_before, 1.0), (p99_before, p99_during)


def test_queries_do_not_wait_on_background_builds(tmp_path: Path) -> None:
    """Issue 13 item 6, the build half: queries of a namespace while the
    server's background builder folds that namespace's tail again and again
    (a writer keeps upserting ~1,000 records a second into it; the fold
    threshold is 1,000 records, and each fold rewrites the clusters it
    touched, which the queries then read anew).
    Same bound as for the import: p99 during the folds under 5x the p99
    before, or under 1 s; no query fails, and the folds did happen."""
    base = tmp_path
    n0 = 20_000
    write_dense_import(base / "src", {"ns": n0}, DIM, seed=3)
    env = {"VECSTORE_BUILD_TAIL_RECORDS": "1000", "VECSTORE_BUILD_TAIL_SECONDS": "1"}
    with serve(base / "store", log_level="info", env=env) as server:
        pc = server.client()
        m = pc.create_index(name="builds", dimension=DIM, metric="cosine",
                            spec=ServerlessSpec(cloud="aws", region="us-east-1"))
        idx = pc.Index(host=m.host)
        job = wait_import(idx, idx.start_import(uri=str(base / "src")).id)
        assert job.status == "Completed", job.error
        end = time.monotonic() + 3.0
        before = np.array(_query_latencies(server, m.host, 4, lambda: time.monotonic() > end))

        def folds() -> int:
            return server.log_text().count("log entries of builds/ns")

        stop = threading.Event()
        written = [0]
        write_errors: list[str] = []

        def writer() -> None:
            rng = np.random.default_rng(5)
            w = pc.Index(host=m.host)
            while not stop.is_set():
                batch = [(f"new-{written[0] + i}", rng.normal(size=DIM).tolist()) for i in range(250)]
                try:
                    w.upsert(vectors=batch, namespace="ns")
                except Exception as exc:  # noqa: BLE001 - counted, asserted empty
                    write_errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    return
                written[0] += len(batch)
                stop.wait(0.25)  # ~1,000 records a second: a fold about every second

        t = threading.Thread(target=writer)
        t.start()
        folds_at_start = folds()
        t0 = time.monotonic()
        try:  # at least 4 s and 3 folds (at most 40 s)
            during = np.array(_query_latencies(
                server, m.host, 4,
                lambda: (folds() >= folds_at_start + 3 and time.monotonic() > t0 + 4)
                or time.monotonic() > t0 + 40,
            ))
        finally:
            stop.set()
            t.join()
        assert write_errors == [], write_errors
        assert folds() >= folds_at_start + 3, server.log_text()[-2000:]
        p99_before, p99_during = np.percentile(before, 99), np.percentile(during, 99)
        print(f"queries before: n={len(before)} p99 {p99_before * 1000:.1f} ms; during "
              f"{folds() - folds_at_start} folds ({written[0]} records upserted): n={len(during)} "
              f"p50 {np.percentile(during, 50) * 1000:.1f} ms p99 {p99_during * 1000:.1f} ms")
        assert len(before) >= 20 and len(during) >= 20, (len(before), len(during))
        assert p99_during < max(5 * p99_before, 1.0), (p99_before, p99_during)
        # every write is visible once acknowledged, folded or not
        stats = idx.describe_index_stats()
        assert stats.namespaces["ns"].vector_count == n0 + written[0]
