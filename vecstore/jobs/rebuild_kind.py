"""The rebuild kind: re-cluster one namespace offline (docs/rebuild.md).

Registered in :data:`vecstore.jobs.kinds.KINDS` as ``"rebuild"``. The work
(:func:`vecstore.rebuild.rebuild_namespace`) runs on a thread of the
process that started it (:class:`RebuildRunner`); the record goes through
the shared lifecycle (``Start``, ``Progress``, ``Committed`` / ``Fail`` /
``WorkStopped``) with a heartbeat thread, so a rebuild whose process died
is taken over like an import (resumed from scratch: it has no partial
state worth keeping). The record's ``report`` holds the namespace and base
version while running (vacuum keeps that version) and the balance / recall
figures once Completed. Its data files are ``data/<job-id>-...``; the
commit marker ``imports/<id>/_COMMITTED`` is written right after its
manifest commit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from vecstore import jobstate, layout, manifests
from vecstore.cleanup import finish_staging
from vecstore.errors import CancelledError, VecstoreError
from vecstore.jobs import lifecycle, policy
from vecstore.jobs.kinds import JobKindSpec
from vecstore.jobs.store import JobStore
from vecstore.schemas import ImportJob, IndexSpec
from vecstore.schemas.models import Job, NamespaceProgress
from vecstore.storage import Store

log = logging.getLogger(__name__)


def _referenced(store: Store, index: str, ns: str) -> set[str]:
    out: set[str] = set()
    for v in manifests.manifest_versions(store, index, ns):
        try:
            out.update(manifests.read_manifest(store, index, ns, v).files())
        except VecstoreError:
            continue
    return out


def _owned_files(store: Store, index: str, job_id: str) -> list[tuple[str, str, str]]:
    """(namespace, key, relative path) of every data file named for ``job_id``."""
    out: list[tuple[str, str, str]] = []
    for ns_key in store.ls(layout.namespaces_prefix(index)):
        ns = layout.ns_from_dir(ns_key.rsplit("/", 1)[-1])
        prefix = layout.namespace_prefix(index, ns)
        out.extend(
            (ns, key, key[len(prefix) + 1 :])
            for key in store.ls(layout.data_prefix(index, ns))
            if key.rsplit("/", 1)[-1].startswith(f"{job_id}-")
        )
    return out


def committed(store: Store, index: str, job_id: str) -> bool:
    """The marker exists, or a manifest references the job's files (a crash
    between the manifest commit and the marker)."""
    if manifests.import_committed(store, index, job_id):
        return True
    refs: dict[str, set[str]] = {}
    for ns, _, rel in _owned_files(store, index, job_id):
        if ns not in refs:
            refs[ns] = _referenced(store, index, ns)
        if rel in refs[ns]:
            return True
    return False


def _cleanup(store: Store, index: str, job_id: str, keep_rejects: bool) -> None:
    """Delete the job's data files no manifest references (never committed data)."""
    refs: dict[str, set[str]] = {}
    for ns, key, rel in _owned_files(store, index, job_id):
        if ns not in refs:
            refs[ns] = _referenced(store, index, ns)
        if rel not in refs[ns]:
            store.delete(key)
    finish_staging(store, index, job_id)


def committed_counts(store: Store, index: str, job_id: str) -> dict[str, int]:
    try:
        job = JobStore(store, index).get(job_id)
    except VecstoreError:
        return {}
    ns = (job.report or {}).get("namespace")
    m = manifests.load_namespace(store, index, ns) if isinstance(ns, str) else None
    return {} if m is None or not isinstance(ns, str) else {ns: m.record_count}


KIND = JobKindSpec(
    name="rebuild",
    runner="vecstore.jobs.rebuild_kind:RebuildRunner",
    cleanup=_cleanup,
    finish=finish_staging,
    committed=committed,
    committed_counts=committed_counts,
)


# ------------------------------------------------------------------ driver


class _Driver:
    """Feeds one rebuild's events through the lifecycle; writes its heartbeat."""

    def __init__(self, store: Store, spec: IndexSpec, job: Job) -> None:
        self.store = store
        self.spec = spec
        self.jobs = JobStore(store, spec.name)
        self.effects = lifecycle.StoreEffects(store, spec.name, KIND)
        self.job = job
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def feed(self, event: jobstate.Event, **update: Any) -> None:
        with self.lock:
            job = self.job.model_copy(update=update) if update else self.job
            self.job = lifecycle.execute(job, event, self.effects)

    def _beat(self) -> None:
        while not self.stop.wait(policy.heartbeat_seconds()):
            try:
                self.feed(jobstate.Heartbeat(now=lifecycle.now()))
            except Exception:  # a failed heartbeat is tried again next period
                log.warning("heartbeat of rebuild %s failed", self.job.id, exc_info=True)

    def check_cancel(self) -> None:
        if self.jobs.cancel_requested(self.job.id):
            raise CancelledError(f"Rebuild {self.job.id} was cancelled")

    def run(self) -> Job:
        from vecstore.rebuild import rebuild_namespace

        rep = dict(self.job.report or {})
        ns = str(rep.get("namespace", ""))
        self.feed(jobstate.Start(runner=policy.runner_name(), now=lifecycle.now()))
        beat = threading.Thread(target=self._beat, daemon=True, name=f"rebuild-hb-{self.job.id}")
        beat.start()
        try:
            base = manifests.load_namespace(self.store, self.spec.name, ns)
            if base is not None:
                rep["base_version"] = base.version

            def progress(phase: str, fraction: float) -> None:
                self.check_cancel()
                self.feed(
                    jobstate.Progress(phase=phase, fraction=fraction, now=lifecycle.now()),
                    report=rep,
                )

            progress("reading", 0.01)
            rpc = rep.get("records_per_cluster")
            report = rebuild_namespace(
                self.store,
                self.spec,
                ns,
                owner=self.job.id,
                records_per_cluster=int(rpc) if isinstance(rpc, int) else None,
                progress=progress,
                before_commit=self.check_cancel,
            )
            manifests.mark_import_committed(self.store, self.spec.name, self.job.id)
            final = {**rep, **report.as_dict()}
            self.feed(
                jobstate.Committed(
                    records_imported=report.records,
                    records_skipped={},
                    namespaces={
                        ns: NamespaceProgress(records_imported=report.records, status="Committed")
                    },
                    now=lifecycle.now(),
                ),
                report=final,
            )
        except CancelledError:
            self.feed(jobstate.CancelRequest(now=lifecycle.now()))
            self.feed(jobstate.WorkStopped(now=lifecycle.now()))
        except VecstoreError as exc:
            self.feed(jobstate.Fail(error=exc.message, now=lifecycle.now()))
        except Exception as exc:
            log.exception("rebuild %s crashed", self.job.id)
            self.feed(jobstate.Fail(error=f"{type(exc).__name__}: {exc}", now=lifecycle.now()))
        finally:
            self.stop.set()
            beat.join(timeout=5)
        return self.job


def run_rebuild(store: Store, spec: IndexSpec, job: Job) -> Job:
    """Run ``job`` (kind rebuild) here, to its final record."""
    return _Driver(store, spec, job).run()


class RebuildRunner:
    """Runs rebuilds on threads of this process (``submit`` returns at once)."""

    def __init__(self, scheduler_address: str | None = None) -> None:
        self.threads: dict[str, threading.Thread] = {}

    def submit(self, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        t = threading.Thread(
            target=run_rebuild, args=(store, spec, job), daemon=True, name=f"rebuild-{job.id}"
        )
        self.threads[job.id] = t
        t.start()

    def recover(
        self, store: Store, index: str, source_for: Callable[[ImportJob], Store] | None = None
    ) -> list[str]:
        return []

    def close(self, *, abandon: bool = False) -> None:
        """Wait for running rebuilds; ``abandon``: leave them to recovery (their
        commit is atomic: a rebuild stopped by the process exit is retaken)."""
        if abandon:
            return
        for t in self.threads.values():
            t.join(timeout=30)


__all__ = ["KIND", "RebuildRunner", "committed", "committed_counts", "run_rebuild"]
