"""The job lifecycle state machine: feed events, assert the exact job and actions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecstore import jobstate
from vecstore.jobstate import (
    MAX_RUNNING_PERCENT,
    CancelRequest,
    Cleanup,
    Committed,
    Discovered,
    Event,
    Fail,
    FinishStaging,
    Heartbeat,
    Persist,
    Progress,
    Resume,
    RunnerLost,
    Start,
    StopWork,
    WorkStopped,
    apply,
)
from vecstore.schemas import FINAL_STATUSES, ImportJob, NamespaceProgress

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pending(**update: object) -> ImportJob:
    job = ImportJob(id="00000000000000010000abcd", index="idx", uri="memory://src", created_at=T0)
    return job.model_copy(update=update)


def running(**update: object) -> ImportJob:
    job, _ = apply(pending(), Start(runner="runner-a", now=t(1)))
    return job.model_copy(update=update)


NS = {"": NamespaceProgress(files=2, bytes_total=100), "b": NamespaceProgress(files=1)}


# ------------------------------------------------------------------- start


def test_start() -> None:
    job = pending()
    new, actions = apply(job, Start(runner="runner-a", now=t(1)))
    expected = job.model_copy(
        update={
            "status": "InProgress",
            "runner": "runner-a",
            "heartbeat_at": t(1),
            "phase": "discover",
        }
    )
    assert new == expected
    assert actions == [Persist(expected)]
    assert job.status == "Pending"  # the input is never mutated


def test_start_after_a_cancel_request_cancels() -> None:
    job = pending(cancel_requested=True)
    new, actions = apply(job, Start(runner="runner-a", now=t(1)))
    expected = job.model_copy(
        update={
            "status": "Cancelled",
            "cancel_requested": True,
            "finished_at": t(1),
            "phase": "cancelled",
        }
    )
    assert new == expected
    assert actions == [StopWork(), Cleanup(), Persist(expected)]


def test_discovered() -> None:
    job = running()
    new, actions = apply(job, Discovered(bytes_total=1234, namespaces=NS, now=t(2)))
    expected = job.model_copy(update={"bytes_total": 1234, "namespaces": NS, "heartbeat_at": t(2)})
    assert new == expected
    assert actions == [Persist(expected)]


# ---------------------------------------------------------------- progress


def test_progress_sets_every_given_field() -> None:
    job = running(bytes_total=1000)
    ev = Progress(
        phase="scan",
        fraction=0.123456,
        now=t(3),
        bytes_read=500,
        records_imported=40,
        records_skipped={"bad_dimension": 2},
        namespaces=NS,
    )
    new, actions = apply(job, ev)
    expected = job.model_copy(
        update={
            "phase": "scan",
            "percent_complete": 12.35,
            "heartbeat_at": t(3),
            "bytes_read": 500,
            "records_imported": 40,
            "records_skipped": {"bad_dimension": 2},
            "namespaces": NS,
        }
    )
    assert new == expected
    assert actions == [Persist(expected)]


def test_progress_leaves_omitted_fields_alone() -> None:
    job = running(bytes_read=7, records_imported=3, records_skipped={"x": 1}, namespaces=NS)
    new, actions = apply(job, Progress(phase="cluster", fraction=0.5, now=t(4)))
    expected = job.model_copy(
        update={"phase": "cluster", "percent_complete": 50.0, "heartbeat_at": t(4)}
    )
    assert new == expected
    assert actions == [Persist(expected)]


def test_progress_percent_and_bytes_never_go_down() -> None:
    job, _ = apply(running(), Progress(phase="scan", fraction=0.6, now=t(3), bytes_read=600))
    assert (job.percent_complete, job.bytes_read) == (60.0, 600)
    job, actions = apply(job, Progress(phase="write", fraction=0.2, now=t(4), bytes_read=100))
    assert (job.percent_complete, job.bytes_read, job.phase) == (60.0, 600, "write")
    assert actions == [Persist(job)]


@pytest.mark.parametrize("fraction", [0.995, 0.999999, 1.0, 1.5, 1e9, math.inf])
def test_progress_is_capped_below_100_until_committed(fraction: float) -> None:
    job, _ = apply(running(), Progress(phase="commit", fraction=fraction, now=t(5)))
    assert job.percent_complete == MAX_RUNNING_PERCENT == 99.0
    assert job.status == "InProgress"


@pytest.mark.parametrize("fraction", [-1.0, -math.inf, 0.0])
def test_progress_never_below_zero(fraction: float) -> None:
    job, _ = apply(running(), Progress(phase="scan", fraction=fraction, now=t(5)))
    assert job.percent_complete == 0.0


def test_progress_ignores_a_nan_fraction() -> None:
    job, _ = apply(running(), Progress(phase="scan", fraction=0.25, now=t(3)))
    job, _ = apply(job, Progress(phase="scan", fraction=math.nan, now=t(4)))
    assert job.percent_complete == 25.0


def test_heartbeat() -> None:
    job = running()
    new, actions = apply(job, Heartbeat(now=t(9)))
    expected = job.model_copy(update={"heartbeat_at": t(9)})
    assert new == expected
    assert actions == [Persist(expected)]


# ------------------------------------------------------------ cancellation


def test_cancel_request_on_pending_without_runner_cancels_at_once() -> None:
    job = pending()
    new, actions = apply(job, CancelRequest(now=t(2)))
    expected = job.model_copy(
        update={
            "status": "Cancelled",
            "cancel_requested": True,
            "finished_at": t(2),
            "phase": "cancelled",
        }
    )
    assert new == expected
    assert actions == [StopWork(), Cleanup(keep_rejects=True), Persist(expected)]


def test_cancel_request_while_in_progress_asks_the_runner_to_stop() -> None:
    job = running()
    new, actions = apply(job, CancelRequest(now=t(2)))
    expected = job.model_copy(update={"cancel_requested": True, "heartbeat_at": t(2)})
    assert new == expected
    assert new.status == "InProgress"
    assert actions == [StopWork(), Persist(expected)]


def test_cancel_request_on_pending_with_a_runner_waits_for_it() -> None:
    job = pending(runner="runner-b")
    new, actions = apply(job, CancelRequest(now=t(2)))
    expected = job.model_copy(update={"cancel_requested": True, "heartbeat_at": t(2)})
    assert (new, actions) == (expected, [StopWork(), Persist(expected)])


def test_work_stopped_cancels() -> None:
    job, _ = apply(running(), CancelRequest(now=t(2)))
    new, actions = apply(job, WorkStopped(now=t(3)))
    expected = job.model_copy(
        update={"status": "Cancelled", "finished_at": t(3), "phase": "cancelled"}
    )
    assert new == expected
    assert actions == [StopWork(), Cleanup(), Persist(expected)]


# ------------------------------------------------------------ final states


def test_fail() -> None:
    job = running(percent_complete=40.0)
    new, actions = apply(job, Fail(error="No Parquet files found", now=t(5)))
    expected = job.model_copy(
        update={
            "status": "Failed",
            "error": "No Parquet files found",
            "finished_at": t(5),
            "phase": "failed",
        }
    )
    assert new == expected
    assert new.percent_complete == 40.0
    assert actions == [StopWork(), Cleanup(), Persist(expected)]


def test_committed_completes_at_100() -> None:
    job = running(percent_complete=99.0, error="transient")
    done_ns = {"": NamespaceProgress(files=2, records_imported=10, status="Committed")}
    new, actions = apply(
        job,
        Committed(records_imported=10, records_skipped={"dup": 1}, namespaces=done_ns, now=t(6)),
    )
    expected = job.model_copy(
        update={
            "status": "Completed",
            "percent_complete": 100.0,
            "records_imported": 10,
            "records_skipped": {"dup": 1},
            "namespaces": done_ns,
            "finished_at": t(6),
            "heartbeat_at": t(6),
            "phase": "done",
            "error": None,
        }
    )
    assert new == expected
    assert actions == [Persist(expected), FinishStaging()]


def test_runner_lost_after_the_commit_point_completes() -> None:
    job = running(percent_complete=97.0)
    new, actions = apply(job, RunnerLost(committed=True, max_attempts=3, now=t(60)))
    expected = job.model_copy(
        update={
            "status": "Completed",
            "percent_complete": 100.0,
            "finished_at": t(60),
            "heartbeat_at": t(60),
            "phase": "done",
        }
    )
    assert new == expected
    assert actions == [Persist(expected), FinishStaging()]


def test_completed_by_recovery_has_final_namespaces_and_the_new_runner() -> None:
    """issue 10 item 4: no InProgress namespace, not the dead runner's name;
    the counts the store shows replace the dead runner's running counts."""
    nss = {
        "a": NamespaceProgress(files=1, records_read=50, records_imported=40, status="InProgress"),
        "b": NamespaceProgress(files=1, records_read=9, records_imported=9, status="InProgress"),
    }
    job = running(percent_complete=97.0, namespaces=nss, records_imported=49)
    new, actions = apply(
        job,
        RunnerLost(
            committed=True, max_attempts=3, now=t(60), runner="rescuer",
            committed_counts={"a": 45, "b": 9},
        ),
    )
    assert (new.status, new.runner, new.records_imported, new.error) == (
        "Completed", "rescuer", 54, None
    )
    assert {ns: (p.status, p.records_imported) for ns, p in new.namespaces.items()} == {
        "a": ("Committed", 45), "b": ("Committed", 9)
    }
    assert actions == [Persist(new), FinishStaging()]


def test_a_job_that_did_not_commit_imported_nothing() -> None:
    """issue 10 item 10: Failed and Cancelled jobs report records_imported 0,
    and each namespace 0 with a final status."""
    nss = {"a": NamespaceProgress(files=1, records_read=22, records_imported=22, status="InProgress")}
    job = running(records_imported=22, namespaces=nss)
    for event, status in [
        (Fail(error="bad record", now=t(5)), "Failed"),
        (WorkStopped(now=t(5)), "Cancelled"),
        (RunnerLost(committed=False, max_attempts=1, now=t(60)), "Failed"),
    ]:
        new, _ = apply(job, event)
        assert (new.status, new.records_imported) == (status, 0), event
        assert new.namespaces["a"].records_imported == 0
        assert new.namespaces["a"].status == status
        assert new.namespaces["a"].records_read == 22  # what was read stays visible


def test_runner_lost_with_attempts_left_resumes() -> None:
    job = running(percent_complete=30.0)
    new, actions = apply(
        job, RunnerLost(committed=False, max_attempts=3, now=t(60), last_seen=t(2))
    )
    expected = job.model_copy(
        update={
            "status": "Pending",
            "attempt": 2,
            "runner": None,
            "phase": "resuming",
            "heartbeat_at": t(60),
        }
    )
    assert new == expected
    assert new.percent_complete == 30.0  # progress never goes back
    assert actions == [Cleanup(keep_rejects=False), Persist(expected), Resume(attempt=2)]


def test_runner_lost_with_attempts_exhausted_fails() -> None:
    job = running(attempt=3)
    new, actions = apply(
        job, RunnerLost(committed=False, max_attempts=3, now=t(60), last_seen=t(2))
    )
    message = (
        "Import runner stopped (no heartbeat since 2025-03-01T12:00:02+00:00) and the import "
        "was abandoned after 3 attempt(s)"
    )
    expected = job.model_copy(
        update={"status": "Failed", "error": message, "finished_at": t(60), "phase": "failed"}
    )
    assert new == expected
    assert actions == [Cleanup(), Persist(expected)]


def test_runner_lost_never_seen() -> None:
    new, _ = apply(pending(runner="r"), RunnerLost(committed=False, max_attempts=1, now=t(60)))
    assert new.status == "Failed"
    assert new.error == (
        "Import runner stopped (no heartbeat since never) and the import was abandoned after "
        "1 attempt(s)"
    )


def test_runner_lost_after_a_cancel_request_cancels() -> None:
    job, _ = apply(running(), CancelRequest(now=t(2)))
    new, actions = apply(job, RunnerLost(committed=False, max_attempts=3, now=t(60)))
    expected = job.model_copy(
        update={"status": "Cancelled", "finished_at": t(60), "phase": "cancelled"}
    )
    assert (new, actions) == (expected, [StopWork(), Cleanup(), Persist(expected)])


ALL_EVENTS: list[Event] = [
    Start(runner="r", now=t(1)),
    Discovered(bytes_total=1, namespaces={}, now=t(1)),
    Progress(phase="x", fraction=0.5, now=t(1)),
    Heartbeat(now=t(1)),
    CancelRequest(now=t(1)),
    WorkStopped(now=t(1)),
    Fail(error="e", now=t(1)),
    Committed(records_imported=1, records_skipped={}, namespaces={}, now=t(1)),
    RunnerLost(committed=True, max_attempts=3, now=t(1)),
    RunnerLost(committed=False, max_attempts=3, now=t(1)),
]


@pytest.mark.parametrize("status", sorted(FINAL_STATUSES))
@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: type(e).__name__)
def test_events_on_a_final_job_change_nothing(status: str, event: Event) -> None:
    job = running(status=status, finished_at=t(0.5), percent_complete=42.0)
    new, actions = apply(job, event)
    assert new is job
    assert actions == []


def test_actions_and_events_are_frozen_values() -> None:
    assert Cleanup() == Cleanup(keep_rejects=True) != Cleanup(keep_rejects=False)
    assert StopWork() == StopWork()
    with pytest.raises(AttributeError):
        Cleanup().keep_rejects = False  # type: ignore[misc]
    assert set(jobstate.__all__) >= {"apply", "Persist", "Start", "RunnerLost"}


# ------------------------------------------------------------ properties

_now = st.integers(0, 10_000).map(lambda s: t(s))
_fraction = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)
_ns = st.dictionaries(
    st.sampled_from(["", "a", "b"]),
    st.builds(NamespaceProgress, files=st.integers(0, 5), records_imported=st.integers(0, 100)),
    max_size=3,
)
_skipped = st.dictionaries(st.sampled_from(["dup", "bad_dimension"]), st.integers(0, 9), max_size=2)
EVENTS = st.one_of(
    st.builds(Start, runner=st.sampled_from(["r1", "r2"]), now=_now),
    st.builds(Discovered, bytes_total=st.integers(0, 10**9), namespaces=_ns, now=_now),
    st.builds(
        Progress,
        phase=st.sampled_from(["scan", "cluster", "write"]),
        fraction=_fraction,
        now=_now,
        bytes_read=st.none() | st.integers(0, 10**9),
        records_imported=st.none() | st.integers(0, 10**6),
        records_skipped=st.none() | _skipped,
    ),
    st.builds(Heartbeat, now=_now),
    st.builds(CancelRequest, now=_now),
    st.builds(WorkStopped, now=_now),
    st.builds(Fail, error=st.text(min_size=1, max_size=10), now=_now),
    st.builds(
        Committed,
        records_imported=st.integers(0, 10**6),
        records_skipped=_skipped,
        namespaces=_ns,
        now=_now,
    ),
    st.builds(
        RunnerLost,
        committed=st.booleans(),
        max_attempts=st.integers(1, 4),
        now=_now,
        last_seen=st.none() | _now,
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EVENTS, max_size=25))
def test_random_event_sequences_keep_the_invariants(events: list[Event]) -> None:
    job = pending()
    for ev in events:
        was_final = job.done
        before = job
        job, actions = apply(job, ev)
        if was_final:
            assert job is before and actions == []
            continue
        assert before.percent_complete <= job.percent_complete <= 100.0
        assert job.percent_complete >= 0.0
        assert job.bytes_read >= before.bytes_read
        assert job.attempt >= before.attempt
        if job.status == "Completed":
            assert job.percent_complete == 100.0
        else:
            assert job.percent_complete <= MAX_RUNNING_PERCENT
        assert (job.finished_at is not None) == job.done
        if job.status == "Failed":
            assert job.error
        # every action list persists exactly the new record, once
        persisted = [a.job for a in actions if isinstance(a, Persist)]
        assert persisted == [job]
        if any(isinstance(a, Resume) for a in actions):
            assert job.status == "Pending" and job.runner is None
            assert actions[-1] == Resume(attempt=job.attempt)
        if job.done and not before.done and job.status != "Completed":
            assert Cleanup() in actions or Cleanup(keep_rejects=False) in actions
        if job.status == "Cancelled":
            assert job.cancel_requested
