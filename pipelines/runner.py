"""The Dask import runner: an embedded LocalCluster by default (started
lazily, reused), or an existing cluster when a scheduler address is given
(argument, or the ``VECSTORE_SCHEDULER`` environment variable).

Each job runs in a driver thread of this process (:class:`ImportDriver`);
the heavy work runs on the cluster's workers. On start and on request
(:meth:`DaskRunner.recover`) the runner finds jobs whose runner died (stale
heartbeat), claims them atomically and resumes or fails them.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from vecstore import extras, jobstate, manifests
from vecstore.cleanup import cleanup_import, finish_staging
from vecstore.errors import VecstoreError
from vecstore.jobs import JobStore, heartbeat_age
from vecstore.pipelines.driver import ImportDriver, runner_name
from vecstore.schemas import ImportJob, IndexSpec
from vecstore.settings import settings
from vecstore.storage import Store

log = logging.getLogger("vecstore.runner")

# VECSTORE_STALE_SECONDS, VECSTORE_MAX_ATTEMPTS, VECSTORE_WORKERS: read when
# used (recovery, cluster start) through vecstore.settings.


def stale_seconds() -> float:
    return settings().stale_seconds


def max_attempts() -> int:
    return settings().max_attempts


def n_workers() -> int:
    return settings().workers


class DaskRunner:
    """Runs import jobs on Dask. Thread-safe; one per process and address."""

    def __init__(self, scheduler_address: str | None = None) -> None:
        extras.require("dask", "An import job")  # before any job record is written
        self.scheduler_address = scheduler_address
        self._client: Any = None
        self._cluster: Any = None
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._sources: dict[str, Store] = {}

    # ------------------------------------------------------------ cluster
    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from distributed import Client

                if self.scheduler_address:
                    self._client = Client(self.scheduler_address, set_as_default=False)
                else:
                    from distributed import LocalCluster

                    self._cluster = LocalCluster(
                        n_workers=n_workers(),
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=":0",
                        silence_logs=logging.ERROR,
                        memory_limit=settings().worker_memory,
                    )
                    self._client = Client(self._cluster, set_as_default=False)
            return self._client

    def close(self) -> None:
        for t in list(self._threads.values()):
            t.join(timeout=60)
        with self._lock:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
            self._client = self._cluster = None

    # --------------------------------------------------------------- jobs
    def submit(self, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        client = self.client
        self._sources[job.id] = source
        t = threading.Thread(
            target=self._run, args=(client, store, spec, job, source), name=f"import-{job.id}",
            daemon=True,
        )
        self._threads[job.id] = t
        t.start()

    def _run(self, client: Any, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        try:
            ImportDriver(client, store, spec, job, source).run()
        except Exception:  # pragma: no cover - the driver records its own failures
            log.exception("import driver crashed for %s", job.id)
        finally:
            self._threads.pop(job.id, None)

    def running(self) -> list[str]:
        return list(self._threads)

    def wait(self, timeout: float | None = None) -> None:
        for t in list(self._threads.values()):
            t.join(timeout)

    # ----------------------------------------------------------- recovery
    @staticmethod
    def _fail_unresumable(store: Store, index: str, job: ImportJob, why: str) -> ImportJob:
        new, actions = jobstate.apply(
            job,
            jobstate.Fail(error=f"Import could not be resumed: {why}", now=datetime.now(UTC)),
        )
        for action in actions:
            if isinstance(action, jobstate.Cleanup):
                cleanup_import(store, index, job.id, keep_rejects=action.keep_rejects)
            elif isinstance(action, jobstate.Persist):
                JobStore(store, index).save(action.job)
        return new

    def recover(self, store: Store, index: str, source_for: Any = None) -> list[str]:
        """Resume or fail jobs of ``index`` whose runner stopped heartbeating."""
        from vecstore.api import VecStore

        jobs = JobStore(store, index)
        recovered: list[str] = []
        stale, attempts = stale_seconds(), max_attempts()
        now = datetime.now(UTC)
        for job in jobs.iter_all():
            if job.done or job.id in self._threads:
                continue
            age = heartbeat_age(job, now)
            if age is None:
                age = (now - job.created_at).total_seconds()
            if age < stale:
                continue
            if not jobs.claim_attempt(job.id, job.attempt + 1, runner_name()):
                continue  # another process took it over
            committed = manifests.import_committed(store, index, job.id)
            new, actions = jobstate.apply(
                job,
                jobstate.RunnerLost(
                    committed=committed, max_attempts=attempts, now=now, last_seen=job.heartbeat_at
                ),
            )
            for action in actions:
                if isinstance(action, jobstate.Cleanup):
                    cleanup_import(store, index, job.id, keep_rejects=action.keep_rejects)
                elif isinstance(action, jobstate.FinishStaging):
                    finish_staging(store, index, job.id)
                elif isinstance(action, jobstate.Persist):
                    jobs.save(action.job)
                elif isinstance(action, jobstate.Resume):
                    vs = VecStore(store.uri, storage_options=store.storage_options)
                    try:
                        spec = vs.describe_index(index)
                        source = (
                            source_for(new)
                            if source_for is not None
                            else self._sources.get(job.id)
                            or vs.source_store(new.uri, new.integration_id)
                        )
                    except VecstoreError as exc:
                        # e.g. this process lacks the job's integration: fail it
                        # clearly rather than leave it to go stale again
                        new = self._fail_unresumable(store, index, new, exc.message)
                        continue
                    self.submit(store, spec, new, source)
            log.warning("recovered import %s: now %s", job.id, new.status)
            recovered.append(job.id)
        return recovered
