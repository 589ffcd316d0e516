"""``vecstore serve --workers N``: several processes on one port.

Every request below uses a new SDK client (a new connection), so requests
land on whichever worker accepts them; the debug log names the worker of
each request (``vecstore.server[pid]``) and the tests check that both
workers answered. What must hold: a write acknowledged by one worker is
read by the next request whatever worker answers it (upsert, update,
delete, delete_namespace, create / delete index), a job started on one
worker is described and cancelled through any, and SIGTERM stops every
worker cleanly with running imports left to recovery.
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from pinecone import NotFoundError, ServerlessSpec
from serverutil import Served, serve, write_dense_import

SPEC = ServerlessSpec(cloud="aws", region="us-east-1")
WORKER = re.compile(r"vecstore\.server\[(\d+)\]: (?:GET|POST|PATCH|DELETE) ")


def fresh(server: Served, host: str) -> Any:
    """An index handle on a new connection (any worker may take it)."""
    return server.client().Index(host=host)


def workers_seen(server: Served) -> set[str]:
    return set(WORKER.findall(server.log_text()))


@pytest.mark.slow  # long: CI runs it (make test-slow)
def test_writes_then_reads_across_workers(tmp_path: Path) -> None:
    with serve(tmp_path / "store", workers=2) as s:
        m = s.client().create_index(name="rw", dimension=2, metric="dotproduct", spec=SPEC)
        for i in range(30):
            fresh(s, m.host).upsert(
                vectors=[{"id": f"v{i}", "values": [1.0, float(i)], "metadata": {"i": i, "g": "a"}}],
                namespace="ns",
            )
            got = fresh(s, m.host).fetch(ids=[f"v{i}"], namespace="ns").vectors
            assert f"v{i}" in got, i
            q = fresh(s, m.host).query(vector=[0.0, 1.0], top_k=1, namespace="ns")
            assert q.matches[0].id == f"v{i}", i  # the newest has the largest score
            stats = fresh(s, m.host).describe_index_stats()
            assert stats.namespaces["ns"].vector_count == i + 1, i
            if i % 3 == 0:  # metadata merge reads the record first: it must be the latest
                fresh(s, m.host).update(id=f"v{i}", set_metadata={"g": "b"}, namespace="ns")
                md = fresh(s, m.host).fetch(ids=[f"v{i}"], namespace="ns").vectors[f"v{i}"].metadata
                assert md == {"i": i, "g": "b"}, i
                flt = fresh(s, m.host).query(
                    vector=[0.0, 1.0], top_k=30, namespace="ns", filter={"g": "b"}
                )
                assert {x.id for x in flt.matches} == {f"v{j}" for j in range(0, i + 1, 3)}
        for i in range(0, 30, 2):
            fresh(s, m.host).delete(ids=[f"v{i}"], namespace="ns")
            assert not fresh(s, m.host).fetch(ids=[f"v{i}"], namespace="ns").vectors, i
        listed = [v.id for page in fresh(s, m.host).list(namespace="ns") for v in page.vectors]
        assert listed == sorted(f"v{i}" for i in range(1, 30, 2))
        ns = fresh(s, m.host).describe_namespace(namespace="ns")
        assert int(ns.record_count) == 15
        fresh(s, m.host).delete_namespace(namespace="ns")
        for _ in range(6):
            with pytest.raises(NotFoundError):
                fresh(s, m.host).describe_namespace(namespace="ns")
        # the control plane too: a deleted index is gone for every worker
        s.client().delete_index("rw")
        for _ in range(6):
            assert not s.client().has_index("rw")
            with pytest.raises(NotFoundError):
                fresh(s, m.host).query(vector=[0.0, 1.0], top_k=1, namespace="ns")
        assert len(workers_seen(s)) == 2, "every request landed on one worker"


def test_an_import_is_driven_by_one_worker_and_seen_by_all(tmp_path: Path) -> None:
    src = tmp_path / "src"
    write_dense_import(src, {"a": 2_000, "b": 1_000}, 8)
    src2 = tmp_path / "src2"
    write_dense_import(src2, {f"c{i}": 20_000 for i in range(3)}, 8, seed=1)
    with serve(tmp_path / "store", workers=2) as s:
        m = s.client().create_index(name="imp", dimension=8, metric="cosine", spec=SPEC)
        op = fresh(s, m.host).start_import(uri=str(src))
        deadline = time.monotonic() + 180
        while (job := fresh(s, m.host).describe_import(id=op.id)).status not in (
            "Completed", "Failed", "Cancelled"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job.status == "Completed", job.error
        for _ in range(6):
            stats = fresh(s, m.host).describe_index_stats()
            assert {n: c.vector_count for n, c in stats.namespaces.items()} == {"a": 2_000, "b": 1_000}
            assert [j.id for j in fresh(s, m.host).list_imports()] == [op.id]
        # a second import, cancelled through new connections (any worker)
        op2 = fresh(s, m.host).start_import(uri=str(src2))
        fresh(s, m.host).cancel_import(id=op2.id)
        while (job := fresh(s, m.host).describe_import(id=op2.id)).status not in (
            "Completed", "Failed", "Cancelled"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert job.status in ("Cancelled", "Completed")  # it may have finished first
        assert len(workers_seen(s)) == 2
    log = s.log_text()
    assert "took over" not in log  # nobody took over a job whose runner was alive


@pytest.mark.slow  # long: CI runs it (make test-slow)
def test_sigterm_stops_every_worker_and_leaves_imports_to_recovery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vecstore import VecStore
    from vecstore.runners import close_runners

    src = tmp_path / "src"
    write_dense_import(src, {f"ns{i}": 20_000 for i in range(3)}, 16)
    store = tmp_path / "store"
    with serve(store, workers=2, env={"VECSTORE_STALE_SECONDS": "2"}) as s:
        m = s.client().create_index(name="big", dimension=16, metric="cosine", spec=SPEC)
        op = fresh(s, m.host).start_import(uri=str(src))
        deadline = time.monotonic() + 120
        while fresh(s, m.host).describe_import(id=op.id).status == "Pending":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        pids = {int(p) for p in workers_seen(s)}
        assert pids
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=60) == 0
        for pid in pids:  # no worker outlives the server
            assert not Path(f"/proc/{pid}").exists() or _zombie(pid), pid
        assert "Stopping parent process" in s.log_text()
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "2")
    index = VecStore(str(store)).Index("big")
    assert index.jobs.get(op.id).status == "InProgress"  # its runner stopped with its worker
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


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True
