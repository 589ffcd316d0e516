"""The write-path model test (``tests/write_model.py``) on S3 (moto): fewer,
shorter runs than the local one (``tests/unit/test_write_model.py``)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from servers import Bucket
from write_model import machine

from vecstore import VecStore


@pytest.mark.slow  # long: CI runs it (make test-slow)
@pytest.mark.s3
def test_write_model_on_s3(s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")
    runs = itertools.count()

    def open_store() -> VecStore:
        return VecStore(s3_bucket.uri(f"run{next(runs)}"), storage_options=s3_bucket.options())

    run_state_machine_as_test(
        machine(open_store),
        settings=settings(
            max_examples=6,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.mark.s3
def test_build_job_on_s3_recovered_after_its_runner_vanished(
    s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build job on S3: run in the background, listed; and a job whose
    runner never ran it (as after a crash) is taken over by the next looker,
    which reruns the fold."""
    from vecstore.jobs import build_kind

    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")
    vs = VecStore(s3_bucket.uri("buildjob"), storage_options=s3_bucket.options())
    vs.create_index(name="docs", dimension=4)
    index = vs.Index("docs")
    index.upsert([(f"a{i}", [float(i), 1.0, 0.0, 1.0]) for i in range(50)], namespace="ns")
    job = index.build(namespace="ns", wait=False)
    assert index.wait_for_job(job.id, timeout=60).status == "Completed"
    index.upsert([(f"b{i}", [1.0, float(i), 1.0, 0.0]) for i in range(30)], namespace="ns")
    index.delete(ids=["a0"], namespace="ns")
    orphan = build_kind.create(index.store, index.spec, ["ns"])  # no runner ever takes it
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "1")
    monkeypatch.setenv("VECSTORE_HEARTBEAT_SECONDS", "0.2")
    done = index.wait_for_job(orphan.id, timeout=60)
    assert done.status == "Completed" and done.attempt == 2
    assert [j.id for j in index.list_jobs(kind="build")] == [orphan.id, job.id]
    assert index.describe_index_stats().namespaces["ns"].vector_count == 79
    ids = sorted(i for page in index.list(namespace="ns") for i in page)
    assert len(ids) == 79 and "a0" not in ids
    from vecstore import background

    assert background.namespaces_with_tail(index.store, index.spec) == []
