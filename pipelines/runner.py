"""The Dask import runner: an embedded LocalCluster by default (started
lazily, reused), or an existing cluster when a scheduler address is given
(argument, or the ``VECSTORE_SCHEDULER`` environment variable).

Each job runs in a driver thread of this process (:class:`ImportDriver`);
the heavy work runs on the cluster's workers. :meth:`DaskRunner.recover`
takes over jobs whose runner is lost, by the one policy of
:mod:`vecstore.jobs.lifecycle`, resuming them here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from vecstore import extras
from vecstore.jobs import lifecycle
from vecstore.pipelines.driver import ImportDriver
from vecstore.schemas import ImportJob, IndexSpec
from vecstore.settings import settings
from vecstore.storage import Store

log = logging.getLogger("vecstore.runner")

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
        self._drivers: dict[str, ImportDriver] = {}

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
                # expected errors (a bad record, an unusable file) are results,
                # not crashes: keep workers from logging them as "Compute Failed"
                from vecstore.pipelines.quiet import QuietExpectedErrors  # needs distributed

                self._client.register_plugin(QuietExpectedErrors(), name="vecstore-quiet")
                from vecstore.pipelines.warm import WarmImports  # needs distributed

                self._client.register_plugin(WarmImports(), name="vecstore-warm")
            return self._client

    def close(self, *, abandon: bool = False) -> None:
        """Wait for running imports (up to a minute each), then stop the
        cluster. ``abandon``: do not wait; running imports stop writing at once
        and are left to recovery (``vecstore serve`` on SIGTERM)."""
        if abandon:
            for driver in list(self._drivers.values()):
                driver.abandon()
        for t in list(self._threads.values()):
            t.join(timeout=10 if abandon else 60)
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
        driver = ImportDriver(client, store, spec, job, source)
        self._drivers[job.id] = driver
        try:
            driver.run()
        except Exception:  # pragma: no cover - the driver records its own failures
            log.exception("import driver crashed for %s", job.id)
        finally:
            self._threads.pop(job.id, None)
            self._drivers.pop(job.id, None)

    def running(self) -> list[str]:
        return list(self._threads)

    def wait(self, timeout: float | None = None) -> None:
        for t in list(self._threads.values()):
            t.join(timeout)

    # ----------------------------------------------------------- recovery
    def recover(
        self,
        store: Store,
        index: str,
        source_for: Callable[[ImportJob], Store] | None = None,
    ) -> list[str]:
        """Resume or fail jobs of ``index`` whose runner is lost (the one
        policy of vecstore.jobs.lifecycle); jobs running here are skipped."""
        from vecstore.api import VecStore

        def resume(job: ImportJob) -> None:
            vs = VecStore(store.uri, storage_options=store.storage_options)
            spec = vs.describe_index(index)
            source = (
                source_for(job)
                if source_for is not None
                else self._sources.get(job.id) or vs.source_store(job.uri, job.integration_id)
            )
            self.submit(store, spec, job, source)

        return lifecycle.recover_stale(
            store,
            index,
            resume=resume,
            skip=lambda job: job.kind != "import" or job.id in self._threads,
        )
