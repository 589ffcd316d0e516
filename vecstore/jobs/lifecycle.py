"""The one interpreter of the job state machine (:mod:`vecstore.jobstate`).

:func:`execute` feeds an event to the pure state machine and carries out
the actions it returns through an :class:`Effects` object. A job's runner
(the import driver) supplies effects that reach its workers; everyone else
(the API, the runner's recovery) uses :class:`StoreEffects`, which act on
the store only. The policy -- when a runner is lost, who takes a job over,
when a cancel finishes a job at once -- is :mod:`vecstore.jobs.policy`, and
the functions here apply it:

- :func:`settle` -- a job whose runner is lost is taken over: completed if
  it committed, cancelled if a cancel was asked, resumed if attempts remain,
  else failed. ``describe_import`` and ``wait_for_import`` call it, so a job
  always reaches a final status without any other call.
- :func:`cancel` -- asks the runner to stop; finishes the job at once
  (after cleanup) when its runner is lost or never started it.
- :func:`recover_stale` -- :func:`settle` for every job of an index.

Taking a job over first claims its next attempt (write-if-absent): one
process wins, and the old runner, should it wake up, sees the claim and
stops without writing anything (its fence).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from vecstore import jobstate
from vecstore.errors import NotFoundError, StorageError, VecstoreError
from vecstore.jobs import policy
from vecstore.jobs.kinds import JobKindSpec, kind_of
from vecstore.jobs.store import JobStore
from vecstore.schemas import Job
from vecstore.storage import Store

log = logging.getLogger("vecstore.jobs")

T = TypeVar("T")

# A resumer starts a new attempt of a job in the background (a runner's submit).
Resumer = Callable[[Job], None]


class Effects(Protocol):
    """What the actions of the state machine do, for whoever applies them."""

    def persist(self, job: Job) -> None: ...

    def stop_work(self) -> None: ...

    def cleanup(self, job: Job, keep_rejects: bool) -> None: ...

    def finish(self, job: Job) -> None: ...

    def resume(self, job: Job) -> None: ...


def execute(job: Job, event: jobstate.Event, effects: Effects) -> Job:
    """Apply ``event`` to ``job``, carry out the actions in order; the new record."""
    new, actions = jobstate.apply(job, event)
    for action in actions:
        match action:
            case jobstate.Persist(job=record):
                effects.persist(record)
            case jobstate.StopWork():
                effects.stop_work()
            case jobstate.Cleanup(keep_rejects=keep):
                effects.cleanup(new, keep)
            case jobstate.FinishStaging():
                effects.finish(new)
            case jobstate.Resume():
                effects.resume(new)
    return new


def now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------ retries
def retrying(
    what: str,
    fn: Callable[[], T],
    *,
    seconds: float,
    give_up: Callable[[], bool] | None = None,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
) -> T:
    """Call ``fn`` until it does not raise :class:`StorageError`, with
    exponential backoff, for at most ``seconds`` (then the last error is
    raised). ``give_up()``: checked before each retry; true stops early."""
    deadline = time.monotonic() + seconds
    delay = first_delay
    warned = False
    while True:
        try:
            return fn()
        except StorageError as exc:
            left = deadline - time.monotonic()
            if left <= 0 or (give_up is not None and give_up()):
                raise
            if not warned:
                log.warning("%s failed (%s); retrying for up to %.0f s", what, exc.message, left)
                warned = True
            time.sleep(min(delay, left))
            delay = min(max_delay, delay * 2)


# ------------------------------------------------------- effects on a store
class StoreEffects:
    """Actions carried out on the store by someone who is not the job's runner
    (its runner is lost or never started): there is no work to stop."""

    def __init__(
        self, store: Store, index: str, kind: JobKindSpec, resume: Resumer | None = None
    ) -> None:
        self.store = store
        self.index = index
        self.kind = kind
        self.jobs = JobStore(store, index)
        self._resume = resume
        self.record: Job | None = None  # the last record persisted

    def persist(self, job: Job) -> None:
        retrying(
            f"writing the record of job {job.id}",
            lambda: self.jobs.save(job),
            seconds=policy.record_retry_seconds(),
        )
        self.record = job

    def stop_work(self) -> None:
        return None

    def cleanup(self, job: Job, keep_rejects: bool) -> None:
        retrying(
            f"cleaning up job {job.id}",
            lambda: self.kind.cleanup(self.store, self.index, job.id, keep_rejects),
            seconds=policy.record_retry_seconds(),
        )

    def finish(self, job: Job) -> None:
        self.kind.finish(self.store, self.index, job.id)

    def resume(self, job: Job) -> None:
        if self._resume is None:
            self._fail(job, "no runner to resume it in this process")
            return
        try:
            self._resume(job)
        except VecstoreError as exc:
            # e.g. this process lacks the job's integration: fail it clearly
            # rather than leave it to go stale again
            self._fail(job, exc.message)
        except Exception as exc:  # e.g. no runner can start here (a missing extra)
            log.warning("job %s could not be resumed", job.id, exc_info=True)
            self._fail(job, f"{type(exc).__name__}: {exc}")

    def _fail(self, job: Job, why: str) -> None:
        execute(
            job, jobstate.Fail(error=f"Import could not be resumed: {why}", now=now()), self
        )


# ----------------------------------------------------------- taking over
def take_over(
    store: Store,
    index: str,
    job: Job,
    *,
    resume: Resumer | None,
    cancel: bool = False,
    at: datetime | None = None,
) -> Job | None:
    """Finish (or resume) ``job`` whose runner is lost. None when another
    process claimed it first, or the store refused the claim (try later)."""
    jobs = JobStore(store, index)
    me = policy.runner_name()
    kind = kind_of(job.kind)
    if job.mode == "upsert" and kind.committed(store, index, job.id):
        # a load that passed its marker: finish its roll-forward first (idempotent,
        # so a racing taker or the old runner doing the same is harmless); if it
        # fails nothing is claimed and the next looker tries again
        job = _roll_forward(store, index, job)
    try:
        if not jobs.claim_attempt(job.id, job.attempt + 1, me):
            return None
    except StorageError as exc:
        log.warning("could not take over job %s: %s", job.id, exc.message)
        return None
    if cancel:
        job = job.model_copy(update={"cancel_requested": True})
    committed = kind.committed(store, index, job.id)
    counts = kind.committed_counts(store, index, job.id) if committed else None
    t = at or now()
    event = jobstate.RunnerLost(
        committed=committed,
        max_attempts=policy.max_attempts(),
        now=t,
        last_seen=job.heartbeat_at,
        runner=me,
        committed_counts=counts,
    )
    effects = StoreEffects(store, index, kind, resume)
    new = execute(job, event, effects)
    log.warning("took over job %s (runner lost): now %s", job.id, new.status)
    return effects.record or new


def _roll_forward(store: Store, index: str, job: Job) -> Job:
    """Recovery of a committed load (docs/loads-pipeline.md): apply its staged
    loads and fold them; ``job`` with the load's counts."""
    from vecstore.jobs import import_kind

    spec = import_kind.read_spec(store, index)
    out = retrying(
        f"rolling load {job.id} forward",
        lambda: import_kind.roll_forward(store, spec, job.id),
        seconds=max(1.0, policy.stale_seconds()),
    )
    counts = import_kind.committed_counts(store, index, job.id)
    return job.model_copy(
        update={
            "records_upserted": sum(counts.values()),
            "ids_deleted": sum(out.deleted.values()),
            "prefixes_deleted": sum(out.prefixes.values()),
        }
    )


def settle(store: Store, index: str, job: Job, *, resume: Resumer | None) -> Job:
    """``job`` as it stands, after taking it over if its runner is lost."""
    if not policy.is_stale(job):
        return job
    new = take_over(store, index, job, resume=resume)
    if new is not None:
        return new
    try:
        return JobStore(store, index).get(job.id)  # someone else took it over
    except NotFoundError:
        return job


def cancel(store: Store, index: str, job_id: str) -> Job:
    """Ask the job to stop; finish it at once when no live runner would."""
    jobs = JobStore(store, index)
    job = jobs.get(job_id)
    if job.done:
        return job
    jobs.request_cancel(job_id)
    job = jobs.get(job_id)
    if policy.cancellable_now(job):
        new = take_over(store, index, job, resume=None, cancel=True)
        if new is not None:
            return new
    return jobs.get(job_id)


def recover_stale(
    store: Store,
    index: str,
    *,
    resume: Resumer | None,
    skip: Callable[[Job], bool] | None = None,
) -> list[str]:
    """Take over every job of ``index`` whose runner is lost; their ids."""
    out = []
    for job in JobStore(store, index).iter_all():
        if not policy.is_stale(job) or (skip is not None and skip(job)):
            continue
        if take_over(store, index, job, resume=resume) is not None:
            out.append(job.id)
    return out


__all__ = [
    "Effects",
    "Resumer",
    "StoreEffects",
    "cancel",
    "execute",
    "recover_stale",
    "retrying",
    "settle",
    "take_over",
]
