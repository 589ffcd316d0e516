"""The build kind: folding the log tails of namespaces into their clusters as
a job on the common lifecycle (issue 11 item 7: listed, progress,
cancellable, recovered after a crash).

Registered in :data:`vecstore.jobs.kinds.KINDS` as ``"build"``. The record
is ``imports/<id>.json`` with ``"kind": "build"``; per namespace,
:class:`~vecstore.schemas.NamespaceProgress` counts ``records_read`` (log
records to fold), ``files`` (clusters rewritten so far) and, once built,
``records_imported`` (log records folded). ``uri`` is the index's folder.

The work is :func:`vecstore.builder.build` per namespace, under the builder
lease owned by the job (so a takeover of the job takes the lease at once),
with its files named after the job (cleanup after a crash finds them):

- progress is persisted after each cluster (at most every 0.25 s);
- a cancel is seen before the next cluster: the fold stops, its files are
  removed, nothing of that namespace is committed (namespaces built before
  stay built: each is its own commit);
- a runner that dies is found stale by whoever looks next (``describe_job``,
  ``wait``, ``recover_jobs``), which claims the next attempt and reruns the
  fold in its own process. That is safe because a fold commits
  ``base.version + 1`` through ``commit.apply(ApplyLog)``: a fold that had
  committed leaves nothing (or only newer writes) to fold, and two folds of
  one base commit at most once. A runner that wakes up after being taken
  over is fenced (the claim is checked before every record write and before
  its commit).

:class:`BuildRunner` runs jobs on threads of this process (a build is IO
and NumPy; no Dask).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from vecstore import builder, jobstate, layout, manifests, wal
from vecstore.errors import CancelledError, NotFoundError, StorageError, VecstoreError
from vecstore.jobs import lifecycle, policy
from vecstore.jobs.kinds import JobKindSpec
from vecstore.jobs.store import JobStore, new_job_id
from vecstore.schemas import IndexSpec, Job, NamespaceProgress
from vecstore.storage import Store

log = logging.getLogger("vecstore.jobs")

BUSY_WAIT_SECONDS = 0.2  # a namespace another builder holds: try again after
PROGRESS_SECONDS = 0.25  # at most one progress record per this


class Fenced(VecstoreError):
    """This attempt was taken over by another process: stop, write nothing."""


# ------------------------------------------------------------- the kind
def _tag(job_id: str) -> str:
    return f"j{job_id}"


def _cleanup(store: Store, index: str, job_id: str, keep_rejects: bool) -> None:
    """Remove the files of the job's folds that no visible manifest references."""
    del keep_rejects
    try:
        job = JobStore(store, index).get(job_id)
    except NotFoundError:
        return
    for ns in job.namespaces:
        builder.remove_staged(store, index, ns, _tag(job_id))


def _finish(store: Store, index: str, job_id: str) -> None:
    return None  # a build stages nothing outside the namespaces


def committed(store: Store, index: str, job_id: str) -> bool:
    """Whether the job's goal is met: no namespace of it has a tail left."""
    job = JobStore(store, index).get(job_id)
    for ns in job.namespaces:
        m = manifests.load_namespace(store, index, ns)
        if m is not None and wal.last_lsn(store, index, ns) > (m.applied_lsn or 0):
            return False
    return True


def committed_counts(store: Store, index: str, job_id: str) -> dict[str, int]:
    """Records folded per namespace, as the job last recorded them."""
    job = JobStore(store, index).get(job_id)
    return {ns: p.records_read for ns, p in job.namespaces.items()}


KIND = JobKindSpec(
    name="build",
    runner="vecstore.jobs.build_kind:BuildRunner",
    cleanup=_cleanup,
    finish=_finish,
    committed=committed,
    committed_counts=committed_counts,
)


# ------------------------------------------------------------- the job
def create(store: Store, spec: IndexSpec, namespaces: Iterable[str]) -> Job:
    """A Pending build job of ``namespaces`` (its record written)."""
    job_id = new_job_id()
    nss = {ns: NamespaceProgress() for ns in namespaces}
    job = Job(
        id=job_id,
        kind="build",
        index=spec.name,
        uri=store.url(layout.index_prefix(spec.name)),
        namespaces=nss,
    )
    return JobStore(store, spec.name).create(job)


def _now() -> datetime:
    return datetime.now(UTC)


class _Driver:
    """Runs one attempt of a build job; its own :class:`lifecycle.Effects`."""

    def __init__(self, store: Store, spec: IndexSpec, job: Job) -> None:
        self.store = store
        self.spec = spec
        self.jobs = JobStore(store, spec.name)
        self.job = job
        self.results: dict[str, builder.BuildResult] = {}
        self.error: VecstoreError | None = None  # why the attempt failed, if it did
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._cancelled = False
        self._last_progress = 0.0

    # --------------------------------------------------------- effects
    def _fence(self) -> None:
        if self.store.exists(layout.claim_key(self.spec.name, self.job.id, self.job.attempt + 1)):
            self._stop.set()
            raise Fenced(f"build job {self.job.id} was taken over by another process")

    def persist(self, job: Job) -> None:
        with self._lock:
            self._fence()
            lifecycle.retrying(
                f"writing the record of job {job.id}",
                lambda: self.jobs.save(job),
                seconds=policy.record_retry_seconds() if job.done else policy.stale_seconds() / 2,
            )
            self.job = job

    def stop_work(self) -> None:
        self._stop.set()

    def cleanup(self, job: Job, keep_rejects: bool) -> None:
        _cleanup(self.store, self.spec.name, job.id, keep_rejects)

    def finish(self, job: Job) -> None:
        return None

    def resume(self, job: Job) -> None:  # pragma: no cover - RunnerLost is not fed here
        return None

    def _event(self, event: jobstate.Event) -> None:
        with self._lock:
            self.job = lifecycle.execute(self.job, event, self)

    # --------------------------------------------------------- hooks
    def check(self) -> None:
        """Stop on a cancel, or when taken over (two HEADs; the builder calls
        it between clusters at most every ``builder.CHECK_SECONDS``, and
        before its commit)."""
        if self._cancelled or self.jobs.cancel_requested(self.job.id):
            self._cancelled = True
            raise CancelledError(f"build job {self.job.id} was cancelled")
        self._fence()

    def _progress(self, ns: str, done: int, total: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_SECONDS:
            return
        self._last_progress = now
        with self._lock:
            nss = dict(self.job.namespaces)
            nss[ns] = nss.get(ns, NamespaceProgress()).model_copy(
                update={"files": done, "status": "InProgress"}
            )
            names = list(nss)
            per = (names.index(ns) + (done / total if total else 1.0)) / max(1, len(names))
            self._event(jobstate.Progress(phase="fold", fraction=per, now=_now(), namespaces=nss))

    # --------------------------------------------------------- the work
    def _heartbeat(self) -> None:
        while not self._stop.wait(policy.heartbeat_seconds()):
            try:
                self._event(jobstate.Heartbeat(now=_now()))
            except Fenced:
                return
            except VecstoreError as exc:
                log.warning("heartbeat of build job %s failed: %s", self.job.id, exc)

    def run(self) -> Job:
        """The attempt from start to a final record (or until fenced)."""
        beat = threading.Thread(target=self._heartbeat, name="vecstore-build-heartbeat", daemon=True)
        try:
            self._event(jobstate.Start(runner=policy.runner_name(), now=_now()))
            if self.job.done:  # cancelled before it started
                return self.job
            beat.start()
            for ns in list(self.job.namespaces):
                self.results[ns] = self._fold(ns)
            self._committed()
        except Fenced:
            log.warning("build job %s: taken over by another process; stopping", self.job.id)
        except CancelledError:
            self._event(jobstate.WorkStopped(now=_now()))
        except VecstoreError as exc:
            self.error = exc
            self._fail(exc.message)
        except Exception as exc:
            log.exception("build job %s failed", self.job.id)
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._stop.set()
            if beat.is_alive():
                beat.join(5)
        return self.job

    def _fail(self, error: str) -> None:
        try:
            self._event(jobstate.Fail(error=error, now=_now()))
        except Fenced:
            return

    def _fold(self, ns: str) -> builder.BuildResult:
        """Fold ``ns`` until its tail at the start of the fold is built: a
        namespace another builder holds is waited for, a lost commit redone."""
        owner = f"job-{self.job.id}"
        tag = _tag(self.job.id)
        pending = wal.last_lsn(self.store, self.spec.name, ns)
        m = manifests.load_namespace(self.store, self.spec.name, ns)
        if m is None:
            raise NotFoundError(
                f'Namespace "{ns}" not found in index "{self.spec.name}"', namespace=ns
            )
        self._set(ns, records_read=pending - (m.applied_lsn or 0))
        last: builder.BuildResult | None = None
        folded = 0
        while True:
            self.check()
            res = builder.build(
                self.store,
                self.spec,
                ns,
                owner=owner,
                check=self.check,
                progress=lambda d, t: self._progress(ns, d, t),
                tag=tag,
            )
            if res.status == "built":
                folded += res.entries
                last = res
            if res.status in ("busy", "conflict"):
                time.sleep(BUSY_WAIT_SECONDS)
                continue
            if res.status == "nothing" or res.applied_lsn >= pending:
                break
        out = last or res
        self._set(
            ns,
            records_imported=folded,
            files=out.clusters_rewritten,
            status="Committed",
        )
        return out

    def _set(self, ns: str, **update: object) -> None:
        with self._lock:
            nss = dict(self.job.namespaces)
            nss[ns] = nss.get(ns, NamespaceProgress()).model_copy(update=update)
            self._event(
                jobstate.Progress(phase="fold", fraction=0.0, now=_now(), namespaces=nss)
            )

    def _committed(self) -> None:
        nss = self.job.namespaces
        self._event(
            jobstate.Committed(
                records_imported=sum(p.records_imported for p in nss.values()),
                records_skipped={},
                namespaces=nss,
                now=_now(),
            )
        )


class BuildResults(dict[str, builder.BuildResult]):
    """``{namespace: BuildResult}`` of a build job run to its end, with the
    job's final record as ``job`` (``Index.build(wait=True)``)."""

    def __init__(self, job: Job, results: dict[str, builder.BuildResult]) -> None:
        super().__init__(results)
        self.job = job


def run(store: Store, spec: IndexSpec, job: Job) -> BuildResults:
    """Run one attempt of ``job`` in this thread, to its final record.
    A failed job raises the error that failed it."""
    driver = _Driver(store, spec, job)
    final = driver.run()
    if driver.error is not None:
        raise driver.error
    return BuildResults(final, driver.results)


# ------------------------------------------------------------- the runner
class BuildRunner:
    """Runs build jobs on threads of this process (the runner of the kind)."""

    def __init__(self, scheduler_address: str | None = None) -> None:
        del scheduler_address  # no cluster: builds run here
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    def submit(self, store: Store, spec: IndexSpec, job: Job, source: Store | None = None) -> None:
        """Start ``job`` on a thread; return at once."""
        del source
        t = threading.Thread(
            target=self._run, args=(store, spec, job), name=f"vecstore-build-{job.id}", daemon=True
        )
        with self._lock:
            self._threads[job.id] = t
        t.start()

    def _run(self, store: Store, spec: IndexSpec, job: Job) -> None:
        try:
            run(store, spec, job)
        except StorageError:
            log.exception("build job %s stopped", job.id)
        finally:
            with self._lock:
                self._threads.pop(job.id, None)

    def running(self) -> list[str]:
        with self._lock:
            return list(self._threads)

    def wait(self, timeout: float | None = None) -> None:
        for t in list(self._threads.values()):
            t.join(timeout)

    def recover(
        self,
        store: Store,
        index: str,
        source_for: Callable[[Job], Store] | None = None,
    ) -> list[str]:
        """Rerun (or finish) build jobs of ``index`` whose runner is lost."""
        from vecstore.api import VecStore

        def resume(job: Job) -> None:
            spec = VecStore(store.uri, storage_options=store.storage_options).describe_index(index)
            self.submit(store, spec, job)

        return lifecycle.recover_stale(
            store,
            index,
            resume=resume,
            skip=lambda job: job.kind != "build" or job.id in self.running(),
        )

    def close(self, *, abandon: bool = False) -> None:
        return None  # builds run in the calling thread: nothing of ours is left running


__all__ = ["KIND", "BuildResults", "BuildRunner", "committed", "committed_counts", "create", "run"]
