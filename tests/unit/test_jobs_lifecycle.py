"""The one job lifecycle (vecstore.jobs) on a memory store, without Dask:
the record model with a kind, the stale policy, take-over by waiters and
cancels, the kind registry, retries, and the typed job methods of the API."""

from __future__ import annotations

import inspect
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vecstore import VecStore, layout
from vecstore.api import Index
from vecstore.errors import InvalidArgumentError, StorageError
from vecstore.jobs import JobStore, kinds, lifecycle, new_job_id, policy
from vecstore.jobs.kinds import KINDS, JobKindSpec, kind_of, register
from vecstore.schemas import ImportJob, IndexSpec, Job, NamespaceProgress
from vecstore.storage import Store


class Recorder:
    """Stands in for the import runner: records what it is asked to run."""

    def __init__(self) -> None:
        self.submitted: list[ImportJob] = []

    def submit(self, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        self.submitted.append(job)

    def recover(self, store: Store, index: str, source_for: Any = None) -> list[str]:
        return lifecycle.recover_stale(store, index, resume=self.submitted.append)

    def close(self, *, abandon: bool = False) -> None:
        pass


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    r = Recorder()
    monkeypatch.setattr("vecstore.api.get_runner", lambda *a, **k: r)
    for var in ("VECSTORE_STALE_SECONDS", "VECSTORE_MAX_ATTEMPTS", "VECSTORE_RUNNER"):
        monkeypatch.delenv(var, raising=False)
    return r


@pytest.fixture
def index(runner: Recorder) -> Iterator[Index]:
    vs = VecStore(f"memory://lifecycle-{uuid.uuid4().hex}")
    vs.create_index(name="docs", dimension=4)
    yield vs.Index("docs")
    vs.store.delete_prefix(layout.INDEX_ROOT)


def _job(index: Index, age: float, **update: Any) -> ImportJob:
    seen = datetime.now(UTC) - timedelta(seconds=age)
    job = ImportJob(
        id=new_job_id(), index="docs", uri="memory://src", created_at=seen,
        status="InProgress", runner="gone:1:1", heartbeat_at=seen, phase="scan",
        records_imported=22,
        namespaces={"a": NamespaceProgress(files=1, records_imported=22, status="InProgress")},
    ).model_copy(update=update)
    return index.jobs.create(job)


# ------------------------------------------------------------- the model


def test_records_without_kind_are_imports_and_imports_are_written_as_before() -> None:
    old = '{"id":"0001","index":"docs","uri":"s3://b/d","status":"Completed"}'
    job = Job.model_validate_json(old)
    assert job.kind == "import" and ImportJob is Job
    assert "kind" not in json.loads(job.model_dump_json())  # older readers still read it
    build = job.model_copy(update={"kind": "build"})
    assert json.loads(build.model_dump_json())["kind"] == "build"
    assert Job.model_validate_json(build.model_dump_json()).kind == "build"
    with pytest.raises(ValueError, match="kind"):
        Job.model_validate_json(old.replace("}", ',"kind":"teleport"}'))


# ------------------------------------------------------------ the policy


def test_stale_has_one_definition_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = datetime.now(UTC)
    job = ImportJob(id="1", index="d", uri="u", status="InProgress",
                    heartbeat_at=now - timedelta(seconds=10))
    monkeypatch.delenv("VECSTORE_STALE_SECONDS", raising=False)
    assert policy.stale_seconds() == 30.0 and not policy.is_stale(job, now)
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "5")
    assert policy.is_stale(job, now) and policy.cancellable_now(job, now)
    # never started: the record's age counts
    fresh = ImportJob(id="2", index="d", uri="u", created_at=now - timedelta(seconds=6))
    assert policy.heartbeat_age(fresh, now) == pytest.approx(6)
    assert policy.is_stale(fresh, now)
    assert not policy.is_stale(job.model_copy(update={"status": "Completed"}), now)


# ------------------------------------------------------------- take-over


def test_describe_takes_over_a_stale_job_and_resumes_it(index: Index, runner: Recorder) -> None:
    job = _job(index, age=60)
    resumed = index.describe_import(job.id)
    assert (resumed.status, resumed.attempt, resumed.runner) == ("Pending", 2, None)
    assert [j.id for j in runner.submitted] == [job.id]
    assert index.store.exists(layout.claim_key("docs", job.id, 2))
    # a second look does not resume it twice (fresh again)
    assert index.describe_import(job.id) == resumed and len(runner.submitted) == 1


def test_wait_fails_a_stale_job_out_of_attempts(
    index: Index, runner: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_MAX_ATTEMPTS", "1")
    job = _job(index, age=60)
    t0 = time.monotonic()
    final = index.wait_for_import(job.id, timeout=5)
    assert time.monotonic() - t0 < 2
    assert (final.status, final.records_imported) == ("Failed", 0)
    assert final.namespaces["a"].status == "Failed"
    assert runner.submitted == []


def test_a_fresh_job_is_left_to_its_runner(index: Index, runner: Recorder) -> None:
    job = _job(index, age=1)
    assert index.describe_import(job.id) == job
    assert index.recover_imports() == [] and runner.submitted == []


def test_only_one_process_takes_a_job_over(index: Index, runner: Recorder) -> None:
    job = _job(index, age=60)
    results: list[ImportJob | None] = []
    barrier = threading.Barrier(4)

    def go() -> None:
        barrier.wait()
        results.append(lifecycle.take_over(index.store, "docs", job, resume=runner.submitted.append))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1 and len(runner.submitted) == 1


def test_cancel_of_a_stale_job_is_final_at_once(index: Index, runner: Recorder) -> None:
    job = _job(index, age=60)
    staging = f"{layout.staging_prefix('docs', job.id)}/part-0"
    index.store.write_bytes(staging, b"x")
    cancelled = index.cancel_import(job.id)
    assert (cancelled.status, cancelled.records_imported) == ("Cancelled", 0)
    assert cancelled.namespaces["a"].status == "Cancelled"
    assert not index.store.exists(staging) and runner.submitted == []
    assert index.describe_import(job.id) == cancelled


def test_cancel_of_a_live_job_asks_its_runner(index: Index) -> None:
    job = _job(index, age=1)
    after = index.cancel_import(job.id)
    assert (after.status, after.cancel_requested) == ("InProgress", True)


def test_a_resume_that_cannot_start_fails_the_job(index: Index) -> None:
    job = _job(index, age=60)

    def refuse(_: Job) -> None:
        raise InvalidArgumentError('Unknown integration "int-1"')

    new = lifecycle.take_over(index.store, "docs", job, resume=refuse)
    assert new is not None and new.status == "Failed"
    assert new.error == 'Import could not be resumed: Unknown integration "int-1"'
    assert index.jobs.get(job.id) == new


# ------------------------------------------------------------ the kinds


def test_the_import_kind_is_registered_by_name() -> None:
    assert KINDS["import"] == "vecstore.jobs.import_kind:KIND"
    spec = kind_of("import")
    assert spec.name == "import" and spec.runner == "vecstore.pipelines.runner:DaskRunner"
    with pytest.raises(InvalidArgumentError, match="Unknown job kind"):
        kind_of("teleport")


def test_a_new_kind_uses_the_same_lifecycle(
    index: Index, runner: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kind is a spec: take-over of a stale "vacuum" job uses its cleanup."""
    cleaned: list[str] = []
    monkeypatch.setattr(kinds, "_loaded", dict(kinds._loaded))  # registered for this test only
    register(JobKindSpec(
        name="vacuum", runner="tests:none",
        cleanup=lambda store, idx, job_id, keep: cleaned.append(job_id),
        finish=lambda store, idx, job_id: None,
        committed=lambda store, idx, job_id: False,
        committed_counts=lambda store, idx, job_id: {},
    ))
    job = _job(index, age=60, kind="vacuum")
    cancelled = index.cancel_import(job.id)
    assert cancelled.status == "Cancelled" and cleaned == [job.id]


# ------------------------------------------------------------ retries


def test_retrying_rides_out_a_refusing_store_and_gives_up_after_its_time() -> None:
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise StorageError("Access denied")
        return "ok"

    assert lifecycle.retrying("write", flaky, seconds=5, first_delay=0.01) == "ok"
    assert calls["n"] == 3

    def never() -> None:
        raise StorageError("Access denied")

    t0 = time.monotonic()
    with pytest.raises(StorageError):
        lifecycle.retrying("write", never, seconds=0.2, first_delay=0.01)
    assert time.monotonic() - t0 < 2


# ------------------------------------------------------- typed API methods


@pytest.mark.parametrize(
    ("method", "args", "kwargs"),
    [
        ("list_imports", (), {"pagination_tokn": "x"}),
        ("list_imports", (5,), {}),
        ("list_imports_paginated", (), {"paginationToken": "x"}),
        ("list_imports_paginated", (5,), {}),
        ("wait_for_import", ("0001",), {"timout": 1}),
        ("wait_for_import", ("0001", 1.0), {}),
        ("describe_import", ("0001",), {"verbose": True}),
        ("cancel_import", ("0001",), {"force": True}),
        ("start_import", ("memory://src",), {"errorMode": "abort"}),
    ],
)
def test_job_methods_refuse_unknown_keywords(
    index: Index, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        getattr(index, method)(*args, **kwargs)


def test_job_methods_are_typed() -> None:
    for name in ("start_import", "describe_import", "list_imports", "list_imports_paginated",
                 "cancel_import", "wait_for_import", "recover_imports"):
        sig = inspect.signature(getattr(Index, name))
        assert sig.return_annotation is not inspect.Signature.empty, name
        for p in sig.parameters.values():
            assert p.kind is not inspect.Parameter.VAR_KEYWORD, (name, p)
            assert p.name == "self" or p.annotation is not inspect.Parameter.empty, (name, p)


def test_list_imports_starts_after_a_token(index: Index) -> None:
    jobs = [_job(index, age=0) for _ in range(3)]
    newest_first = sorted((j.id for j in jobs), reverse=True)
    first = index.list_imports_paginated(limit=1)
    assert first.pagination is not None
    rest = [j.id for j in index.list_imports(limit=1, pagination_token=first.pagination.next)]
    assert rest == newest_first[1:]


def test_job_store_round_trips_through_the_package_names() -> None:
    store = Store(f"memory://js-{uuid.uuid4().hex}")
    jobs = JobStore(store, "docs")
    job = jobs.create(ImportJob(id=new_job_id(), index="docs", uri="memory://x"))
    assert jobs.get(job.id) == job
