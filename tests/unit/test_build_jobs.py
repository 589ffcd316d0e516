"""Builds as jobs on the common lifecycle (issue 11 item 7): listed with kind
``build``, progress, cancel between clusters (nothing committed, staged files
removed), and recovery of a job whose process was killed (kill -9): the next
looker takes it over, reruns the fold, and the state equals the model.

Real local stores; real subprocesses for the kill."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_query_support import clustered

from vecstore import Index, NotFoundError, VecStore, background, builder, layout, manifests
from vecstore.cli.app import main
from vecstore.jobs import JobStore
from vecstore.schemas import Job

D = 8
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")


def _index(tmp_path: Path) -> Index:
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index(name="docs", dimension=D)
    return vs.Index("docs")


def _seed(index: Index, n: int = 12_000, tail: int = 600, seed: int = 0) -> dict[str, list[float]]:
    """A built namespace of ``n`` records (several clusters) plus a tail of
    ``tail`` upserts spread over them and a few deletes; the model."""
    x = clustered(n + tail, D, 12, seed=seed)
    model: dict[str, list[float]] = {}
    recs = [(f"r{i}", x[i].tolist()) for i in range(n)]
    index.upsert(recs, namespace="ns", batch_size=1000)
    model.update(recs)
    index.build(namespace="ns")
    more = [(f"t{i}", x[n + i].tolist()) for i in range(tail)]
    index.upsert(more, namespace="ns", batch_size=100)
    model.update(more)
    index.delete(ids=["r0", "r1", "t0"], namespace="ns")
    for k in ("r0", "r1", "t0"):
        model.pop(k)
    return model


def _matches_model(index: Index, model: dict[str, list[float]]) -> None:
    ids = sorted(i for page in index.list(namespace="ns") for i in page)
    assert ids == sorted(model)
    got = index.fetch(ids=sorted(model)[:50], namespace="ns").vectors
    for k, v in got.items():
        np.testing.assert_allclose(v.values, model[k], rtol=1e-6)
    assert index.describe_index_stats().namespaces["ns"].vector_count == len(model)


def _job_files(index: Index, job_id: str) -> list[str]:
    return [
        k for k in index.store.ls(layout.data_prefix(index.name, "ns")) if f"j{job_id}" in k
    ]


def test_build_is_a_job_listed_with_progress(tmp_path: Path) -> None:
    index = _index(tmp_path)
    model = _seed(index)
    res = index.build(namespace="ns")
    job = res.job
    assert (job.kind, job.status, job.percent_complete) == ("build", "Completed", 100.0)
    ns = job.namespaces["ns"]
    assert ns.status == "Committed" and ns.records_imported == ns.records_read == 7
    assert ns.files == res["ns"].clusters_rewritten > 0
    assert res["ns"].status == "built" and res["ns"].manifest is not None
    assert res["ns"].manifest.applied_lsn == 19
    raw = json.loads(index.store.read_bytes(layout.job_key(index.name, job.id)))
    assert raw["kind"] == "build"
    # listed among jobs, not among imports
    builds = list(index.list_jobs(kind="build"))
    assert job.id in [j.id for j in builds] and all(j.kind == "build" for j in builds)
    assert [j.id for j in index.list_jobs()][0] == job.id
    assert list(index.list_imports()) == []
    assert index.list_imports_paginated().data == []
    with pytest.raises(NotFoundError, match="build job"):
        index.describe_import(job.id)
    assert index.describe_job(job.id) == job
    assert index.cancel_job(job.id).status == "Completed"  # final: a no-op
    _matches_model(index, model)
    assert background.namespaces_with_tail(index.store, index.spec) == []


def test_build_without_wait_returns_the_job(tmp_path: Path) -> None:
    index = _index(tmp_path)
    model = _seed(index)
    job = index.build(namespace="ns", wait=False)
    assert isinstance(job, Job) and job.kind == "build"
    done = index.wait_for_job(job.id, timeout=60)
    assert done.status == "Completed"
    _matches_model(index, model)
    assert background.namespaces_with_tail(index.store, index.spec) == []


def test_cli_build_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = _index(tmp_path)
    _seed(index, 200, 20)
    root = str(tmp_path / "store")
    assert main(["--store", root, "build", "--index", "docs", "--wait"]) == 0
    assert "Completed" in capsys.readouterr().out
    # a build job cancelled by another process exits 2
    index.upsert([("late", [1.0] * D)], namespace="ns")

    def cancel_first(*a: Any, **kw: Any) -> Any:
        job = next(iter(index.list_jobs(kind="build")))
        index.cancel_job(job.id)
        return real(*a, **kw)

    real = builder.build
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builder, "build", cancel_first)
        assert main(["--store", root, "build", "--index", "docs", "--namespace", "ns"]) == 2
    assert "Cancelled" in capsys.readouterr().out


def test_cancel_between_clusters_commits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = _index(tmp_path)
    model = _seed(index)
    before = manifests.load_namespace(index.store, index.name, "ns")
    assert before is not None
    files_before = sorted(index.store.ls(layout.data_prefix(index.name, "ns")))
    real = builder.write_cluster

    def slow(*a: Any, **kw: Any) -> Any:  # the real write, slowed so that a cancel lands
        time.sleep(0.1)
        return real(*a, **kw)

    monkeypatch.setattr(builder, "write_cluster", slow)
    monkeypatch.setattr(builder, "BUILD_THREADS", 1)
    monkeypatch.setattr(builder, "IO_THREADS", 1)  # appends: one slow cluster at a time
    job = index.build(namespace="ns", wait=False)
    deadline = time.monotonic() + 30
    while index.describe_job(job.id).namespaces["ns"].files < 1:  # progress: clusters written
        assert time.monotonic() < deadline
        time.sleep(0.02)
    index.cancel_job(job.id)
    done = index.wait_for_job(job.id, timeout=30)
    assert done.status == "Cancelled" and done.records_imported == 0
    assert done.namespaces["ns"].status == "Cancelled"
    assert manifests.load_namespace(index.store, index.name, "ns") == before  # nothing committed
    assert _job_files(index, job.id) == []  # staged files removed
    assert sorted(index.store.ls(layout.data_prefix(index.name, "ns"))) == files_before
    _matches_model(index, model)  # the tail still serves every write
    monkeypatch.setattr(builder, "write_cluster", real)
    assert index.build(namespace="ns").job.status == "Completed"
    _matches_model(index, model)


CHILD = textwrap.dedent(
    """
    import sys, time
    from vecstore import VecStore, builder
    real = builder.write_cluster
    def slow(*a, **kw):
        time.sleep(0.05)
        return real(*a, **kw)
    builder.write_cluster = slow
    builder.BUILD_THREADS = 1
    builder.IO_THREADS = 1
    index = VecStore(sys.argv[1]).Index("docs")
    index.build(namespace="ns")
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_of_a_build_job_then_recovery_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    index = _index(tmp_path)
    model = _seed(index, seed=seed)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VECSTORE_BUILD_IN_BACKGROUND": "0"}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "store")], env=env)
    jobs = JobStore(index.store, index.name)
    job_id = None
    deadline = time.monotonic() + 60
    try:
        while job_id is None:  # the child's job record, once it runs
            assert time.monotonic() < deadline and child.poll() is None
            running = [j for j in jobs.iter_all() if j.status == "InProgress"]
            job_id = running[0].id if running else None
            time.sleep(0.01)
        time.sleep(random.Random(seed).uniform(0.0, 0.6))  # a random point of the fold
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed = jobs.get(job_id)
    assert not killed.done
    # the next looker finds it stale, takes it over and reruns the fold here
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1.5")
    monkeypatch.setenv("VECSTORE_HEARTBEAT_SECONDS", "0.2")
    done = index.wait_for_job(job_id, timeout=60)
    assert done.status == "Completed", done.error
    assert done.attempt in (1, 2)  # 1: it had committed; recovery only completed it
    assert done.runner is not None and str(os.getpid()) in done.runner
    assert background.namespaces_with_tail(index.store, index.spec) == []
    m = manifests.load_namespace(index.store, index.name, "ns")
    assert m is not None and m.applied_lsn == 19
    referenced = set(m.files())
    prefix = layout.namespace_prefix(index.name, "ns") + "/"
    orphans = [k for k in _job_files(index, job_id) if k[len(prefix) :] not in referenced]
    assert orphans == []
    fresh = VecStore(str(tmp_path / "store")).Index("docs")
    _matches_model(fresh, model)
