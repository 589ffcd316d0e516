"""The job lifecycle as a pure state machine: events in, actions out.

No IO here. :func:`vecstore.jobs.lifecycle.execute` is its one interpreter:
it feeds events and carries out the actions (for the import driver, the API
and recovery alike); ``tests/unit/test_jobstate.py`` feeds events and
asserts the exact job and actions, without Dask or storage.

::

    Pending ──Start──▶ InProgress ──Committed──▶ Completed
       │                   │  ├──Fail──────────▶ Failed
       │                   │  └──WorkStopped───▶ Cancelled   (after CancelRequest)
       └──CancelRequest────┴──RunnerLost──▶ Pending (resume, attempt+1) | Failed

``percent_complete`` never goes down and stays below 100 until Completed.
A job that did not commit imported nothing: Failed and Cancelled report
``records_imported`` 0. A final job's namespaces have a final status
(Committed, Failed or Cancelled).
Events on a finished job change nothing and produce no actions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from vecstore.schemas import ImportJob, NamespaceProgress
from vecstore.schemas.models import NamespaceStatus

MAX_RUNNING_PERCENT = 99.0


# ------------------------------------------------------------------ events
@dataclass(frozen=True)
class Start:
    runner: str
    now: datetime


@dataclass(frozen=True)
class Discovered:
    bytes_total: int
    namespaces: dict[str, NamespaceProgress]
    now: datetime


@dataclass(frozen=True)
class Progress:
    phase: str
    fraction: float  # overall 0..1 as computed by the runner
    now: datetime
    bytes_read: int | None = None
    records_imported: int | None = None
    records_skipped: dict[str, int] | None = None
    namespaces: dict[str, NamespaceProgress] | None = None


@dataclass(frozen=True)
class Heartbeat:
    now: datetime


@dataclass(frozen=True)
class CancelRequest:
    now: datetime


@dataclass(frozen=True)
class WorkStopped:
    """The runner stopped all work after a cancel request."""

    now: datetime


@dataclass(frozen=True)
class Fail:
    error: str
    now: datetime


@dataclass(frozen=True)
class Committed:
    records_imported: int
    records_skipped: dict[str, int]
    namespaces: dict[str, NamespaceProgress]
    now: datetime


@dataclass(frozen=True)
class RunnerLost:
    """The heartbeat is stale. ``committed``: the import's commit marker exists."""

    committed: bool
    max_attempts: int
    now: datetime
    last_seen: datetime | None = None
    runner: str | None = None  # who takes the job over
    # records each namespace made visible (when committed), from the store
    committed_counts: dict[str, int] | None = None


Event = (
    Start
    | Discovered
    | Progress
    | Heartbeat
    | CancelRequest
    | WorkStopped
    | Fail
    | Committed
    | RunnerLost
)


# ----------------------------------------------------------------- actions
@dataclass(frozen=True)
class Persist:
    job: ImportJob


@dataclass(frozen=True)
class StopWork:
    """Tell every worker task to stop at its next check."""


@dataclass(frozen=True)
class Cleanup:
    """Delete staging files, uncommitted manifests and their data files."""

    keep_rejects: bool = True


@dataclass(frozen=True)
class Resume:
    """Start the work again from the beginning (a new attempt)."""

    attempt: int


@dataclass(frozen=True)
class FinishStaging:
    """Drop scratch files of a completed import."""


Action = Persist | StopWork | Cleanup | Resume | FinishStaging

# ------------------------------------------------------------- transitions


def apply(job: ImportJob, event: Event) -> tuple[ImportJob, list[Action]]:
    """The next job record and the actions to carry out."""
    if job.done:
        return job, []
    new, actions = _transition(job, event)
    return new, actions


def _transition(job: ImportJob, ev: Event) -> tuple[ImportJob, list[Action]]:
    match ev:
        case Start(runner=runner, now=now):
            if job.cancel_requested:
                return _cancelled(job, now)
            new = job.model_copy(
                update={
                    "status": "InProgress",
                    "runner": runner,
                    "heartbeat_at": now,
                    "phase": "discover",
                }
            )
            return new, [Persist(new)]
        case Discovered(bytes_total=total, namespaces=nss, now=now):
            new = job.model_copy(
                update={"bytes_total": total, "namespaces": nss, "heartbeat_at": now}
            )
            return new, [Persist(new)]
        case Progress() as p:
            fraction = 0.0 if math.isnan(p.fraction) else p.fraction
            pct = max(job.percent_complete, min(MAX_RUNNING_PERCENT, round(100.0 * fraction, 2)))
            update: dict[str, object] = {
                "phase": p.phase,
                "percent_complete": pct,
                "heartbeat_at": p.now,
            }
            if p.bytes_read is not None:
                update["bytes_read"] = max(job.bytes_read, p.bytes_read)
            if p.records_imported is not None:
                update["records_imported"] = p.records_imported
            if p.records_skipped is not None:
                update["records_skipped"] = dict(p.records_skipped)
            if p.namespaces is not None:
                update["namespaces"] = p.namespaces
            new = job.model_copy(update=update)
            return new, [Persist(new)]
        case Heartbeat(now=now):
            new = job.model_copy(update={"heartbeat_at": now})
            return new, [Persist(new)]
        case CancelRequest(now=now):
            if job.status == "Pending" and job.runner is None:
                return _cancelled(job, now)
            new = job.model_copy(update={"cancel_requested": True, "heartbeat_at": now})
            return new, [StopWork(), Persist(new)]
        case WorkStopped(now=now):
            return _cancelled(job, now)
        case Fail(error=error, now=now):
            new = job.model_copy(
                update={
                    "status": "Failed",
                    "error": error,
                    "finished_at": now,
                    "phase": "failed",
                    **_nothing_imported(job, "Failed"),
                }
            )
            return new, [StopWork(), Cleanup(), Persist(new)]
        case Committed() as c:
            new = job.model_copy(
                update={
                    "status": "Completed",
                    "percent_complete": 100.0,
                    "records_imported": c.records_imported,
                    "records_skipped": dict(c.records_skipped),
                    "namespaces": c.namespaces,
                    "finished_at": c.now,
                    "heartbeat_at": c.now,
                    "phase": "done",
                    "error": None,
                }
            )
            return new, [Persist(new), FinishStaging()]
        case RunnerLost() as r:
            if r.committed:
                return _completed_by_recovery(job, r)
            if job.cancel_requested:
                return _cancelled(job, r.now)
            if job.attempt < r.max_attempts:
                new = job.model_copy(
                    update={
                        "status": "Pending",
                        "attempt": job.attempt + 1,
                        "runner": None,
                        "phase": "resuming",
                        "heartbeat_at": r.now,
                    }
                )
                return new, [Cleanup(keep_rejects=False), Persist(new), Resume(new.attempt)]
            seen = r.last_seen.isoformat() if r.last_seen else "never"
            error = (
                f"Import runner stopped (no heartbeat since {seen}) and the import was "
                f"abandoned after {job.attempt} attempt(s)"
            )
            new = job.model_copy(
                update={
                    "status": "Failed",
                    "error": error,
                    "finished_at": r.now,
                    "phase": "failed",
                    **_nothing_imported(job, "Failed"),
                }
            )
            return new, [Cleanup(), Persist(new)]
    raise TypeError(f"unknown event {ev!r}")  # pragma: no cover


def _cancelled(job: ImportJob, now: datetime) -> tuple[ImportJob, list[Action]]:
    new = job.model_copy(
        update={
            "status": "Cancelled",
            "cancel_requested": True,
            "finished_at": now,
            "phase": "cancelled",
            **_nothing_imported(job, "Cancelled"),
        }
    )
    return new, [StopWork(), Cleanup(), Persist(new)]


def _nothing_imported(job: ImportJob, status: NamespaceStatus) -> dict[str, object]:
    """A job that did not commit imported 0 records, in every namespace."""
    return {
        "records_imported": 0,
        "namespaces": {
            ns: p.model_copy(update={"records_imported": 0, "status": status})
            for ns, p in job.namespaces.items()
        },
    }


def _completed_by_recovery(job: ImportJob, r: RunnerLost) -> tuple[ImportJob, list[Action]]:
    """The dead runner had passed the commit point: the job is Completed, each
    namespace Committed, with the counts the store shows when known."""
    counts = r.committed_counts
    namespaces = {
        ns: p.model_copy(
            update={
                "status": "Committed",
                **({"records_imported": counts.get(ns, 0)} if counts is not None else {}),
            }
        )
        for ns, p in job.namespaces.items()
    }
    update: dict[str, object] = {
        "status": "Completed",
        "percent_complete": 100.0,
        "finished_at": r.now,
        "heartbeat_at": r.now,
        "phase": "done",
        "runner": r.runner if r.runner is not None else job.runner,
        "namespaces": namespaces,
        "error": None,
    }
    if counts is not None:
        update["records_imported"] = sum(counts.values())
    new = job.model_copy(update=update)
    return new, [Persist(new), FinishStaging()]


__all__ = [
    "Action",
    "CancelRequest",
    "Cleanup",
    "Committed",
    "Discovered",
    "Event",
    "Fail",
    "FinishStaging",
    "Heartbeat",
    "Persist",
    "Progress",
    "Resume",
    "RunnerLost",
    "Start",
    "StopWork",
    "WorkStopped",
    "apply",
]
