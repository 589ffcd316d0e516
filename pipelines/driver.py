"""The import driver: runs one job's phases on a Dask client, feeding the
pure state machine (:mod:`vecstore.jobstate`) through its one interpreter
(:func:`vecstore.jobs.lifecycle.execute`); the driver supplies the effects
that reach its workers (stop them, drain them before cleanup).

Its heartbeat is written by a thread of its own every
``VECSTORE_HEARTBEAT_SECONDS`` (1 s), whatever the phases are doing. A job
record or cleanup the store refuses is retried with backoff: progress for
a while (then the import fails), a final record until the store is back.

Phases and their share of ``percent_complete``::

    discover 0-2 | inspect 2-5 | sample+train 5-15 | scan 15-70 |
    dedup 70-75 | write 75-97 | commit 97-100

Small namespaces are packed (many per task, ``tasks.pack``); in CONTINUE
mode, namespaces tiny by their listing skip the inspection phase: one
``tasks.fold`` task per group inspects, plans and packs them, its share of
progress counted in the inspect phase's (docs/scale.md); results are
gathered in batches; the running record of an import of more than
NS_DETAIL_MAX namespaces leaves per-namespace progress to the final record
(docs/scale.md).

Only this driver commits: workers write immutable files and return small
results. The commit writes every namespace's manifest (write-if-absent,
carrying the import id), then the import's commit marker: the single point
at which all its namespaces become visible together.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from vecstore import commit as commits
from vecstore import jobstate, kmeans, layout, loadhistory, manifests
from vecstore.cleanup import cleanup_attempt, cleanup_import, finish_staging
from vecstore.errors import (
    AlreadyExistsError,
    CancelledError,
    CommitConflictError,
    IngestError,
    NotFoundError,
    RecordError,
    StorageError,
    VecstoreError,
)
from vecstore.jobs import JobStore, lifecycle, policy
from vecstore.jobs.import_kind import loads_prefix, roll_forward
from vecstore.jobs.policy import runner_name
from vecstore.pipelines import plan as P
from vecstore.pipelines import tasks
from vecstore.pipelines.discover import (
    Discovery,
    FileInfo,
    SourceFile,
    discover,
    display_path,
)
from vecstore.schemas import (
    ClusterEntry,
    ImportJob,
    IndexSpec,
    Manifest,
    NamespaceProgress,
    RecordLayout,
)
from vecstore.settings import settings
from vecstore.storage import Store

log = logging.getLogger("vecstore.import")

PERSIST_SECONDS = 0.5
POLL_SECONDS = 0.25
BATCH_WAIT_SECONDS = 0.02
# Imports of more namespaces keep per-namespace progress out of their
# running job record (docs/scale.md); the final record has it.
NS_DETAIL_MAX = 100


class _Stop(Exception):
    """Internal: unwind the phases (cancel observed)."""


class _LeftToRecovery(Exception):
    """Internal: a load passed its marker but could not roll forward; the driver
    stops writing (its heartbeat ends) and recovery finishes the load."""


class _Superseded(Exception):
    """Internal: another runner took this job over (recovery claimed a newer
    attempt, or finished the job): this driver must stop without writing the
    job record, the commit marker or a manifest, and without cleaning up
    anything but its own attempt's files."""


class ImportDriver:
    def __init__(
        self, client: Any, store: Store, spec: IndexSpec, job: ImportJob, source: Store
    ) -> None:
        self.client = client
        self.store = store
        self.spec = spec
        self.job = job
        self.source = source
        self.jobs = JobStore(store, spec.name)
        self.ctx = P.Context.make(
            source, store, spec, job.id, job.error_mode, job.attempt,
            read_ahead=settings().source_reads,
        )
        self._last_persist = 0.0
        self._started = time.monotonic()
        self._last_cancel_check = 0.0
        self._outstanding: dict[Any, Any] = {}  # key -> future of this job
        self._event: Any = None
        self._stats = _Totals()
        self._detail = True  # per-namespace progress in the running record
        # the job record: every write goes through persist() under this lock;
        # _persisted is the last record written (the heartbeat rewrites it)
        self._record_lock = threading.RLock()
        self._persisted: ImportJob | None = None
        self._superseded = threading.Event()
        self._abandoned = threading.Event()
        self._heartbeat = _HeartbeatThread(self)
        # a load's files (read, and staged in the load history) and delete files
        self._loaded_files: list[SourceFile] = []
        self._marked = False  # this attempt wrote its commit marker
        self._delete_files: dict[str, list[SourceFile]] = {}

    def abandon(self) -> None:
        """The process is shutting down (``vecstore serve`` on SIGTERM): stop
        at the next check and write nothing more, not even a failure; the job
        keeps its record (now going stale) and is taken over by recovery, like
        a job whose process died. A commit is atomic, so it is never half-visible."""
        self._abandoned.set()
        self._superseded.set()

    # ---------------------------------------------------------- lifecycle
    def run(self) -> ImportJob:
        try:
            return self._run()
        except StorageError as exc:
            # even the final record could not be written, after retrying for
            # VECSTORE_RECORD_RETRY_SECONDS: the heartbeat stops with this
            # thread, and whoever looks at the job next takes it over
            log.error(
                "import %s: could not record its outcome (%s); it will be taken over "
                "once its heartbeat is stale",
                self.job.id,
                exc.message,
            )
            return self.job
        except _LeftToRecovery:
            return self.job
        except _Superseded:
            if self._abandoned.is_set():
                log.warning("import %s: abandoned at shutdown; left to recovery", self.job.id)
                with contextlib.suppress(Exception):
                    self._stop_work()
                return self.job
            # A runner presumed dead (paused, partitioned) that wakes up after
            # recovery resumed its job elsewhere: stop quietly, drop only what
            # this attempt wrote, leave the job to its new owner.
            log.warning(
                "import %s: attempt %s was superseded; stopping", self.job.id, self.job.attempt
            )
            with contextlib.suppress(Exception):
                self._stop_work()
            if self._marked:  # this attempt's commit landed: its data files are live
                self.store.delete_prefix(self.ctx.staging)
            else:
                cleanup_attempt(self.store, self.spec.name, self.ctx.staging, self.ctx.owner)
            with contextlib.suppress(NotFoundError):
                return self.jobs.get(self.job.id)
            return self.job
        finally:
            self._heartbeat.stop()
            self._release_event()

    def _run(self) -> ImportJob:
        try:
            return self._run_phases()
        finally:
            gc.unfreeze()  # what _freeze_heap kept from the collector is collectable again

    def _run_phases(self) -> ImportJob:
        # re-read: a cancel may have landed between submit and this thread's start
        self.job = self.jobs.get(self.job.id)
        self._apply(jobstate.Start(runner=runner_name(), now=_now()))
        if self.job.done:
            return self.job
        self._heartbeat.start()
        try:
            self._phases()
        except (_Superseded, _LeftToRecovery):
            raise
        except (_Stop, CancelledError):
            self._stop_work()
            self._apply(jobstate.WorkStopped(now=_now()))
        except (IngestError, CommitConflictError, StorageError) as exc:
            # expected: the job record says why; not logged as a crash
            self._stop_work()
            self._apply(jobstate.Fail(error=exc.message, now=_now()))
        except Exception as exc:  # a bug or an unexpected backend failure
            log.exception("import %s failed", self.job.id)
            self._stop_work()
            msg = exc.message if isinstance(exc, VecstoreError) else f"{type(exc).__name__}: {exc}"
            self._apply(jobstate.Fail(error=f"Internal error: {msg}", now=_now()))
        return self.job

    def _apply(self, event: jobstate.Event) -> None:
        self.job = lifecycle.execute(self.job, event, self)

    # ------------------------------------- effects (vecstore.jobs.lifecycle)
    def persist(self, job: ImportJob) -> None:
        """Write the job record (fenced). A final record is retried until the
        store takes it (VECSTORE_RECORD_RETRY_SECONDS); progress for half the
        stale threshold, then the StorageError fails the import."""
        seconds = (
            policy.record_retry_seconds() if job.done else max(1.0, policy.stale_seconds() / 2)
        )

        stored = job if job.done or self._detail else job.model_copy(update={"namespaces": {}})

        def write() -> None:
            self._fence(retrying=stored)
            self.jobs.save(stored)

        with self._record_lock:
            lifecycle.retrying(f"writing the record of import {job.id}", write, seconds=seconds)
            self._persisted = job
            self._last_persist = time.monotonic()

    def stop_work(self) -> None:
        self._signal_stop()

    def cleanup(self, job: ImportJob, keep_rejects: bool) -> None:
        self._fence()
        self._drain()
        lifecycle.retrying(
            f"cleaning up import {job.id}",
            lambda: self._cleanup(job.id, keep_rejects),
            seconds=policy.record_retry_seconds(),
        )

    def _cleanup(self, job_id: str, keep_rejects: bool) -> None:
        committed = manifests.import_committed(self.store, self.spec.name, job_id)
        cleanup_import(self.store, self.spec.name, job_id, keep_rejects=keep_rejects)
        if not committed:  # a load's staged loads (none for an import)
            self.store.delete_prefix(loads_prefix(self.spec.name, job_id))

    def finish(self, job: ImportJob) -> None:
        finish_staging(self.store, self.spec.name, job.id)

    def resume(self, job: ImportJob) -> None:  # pragma: no cover - not an action of a runner
        raise AssertionError("a running import is never resumed by its own driver")

    def beat(self) -> None:
        """One heartbeat: the last record written, with a new heartbeat_at."""
        with self._record_lock:
            last = self._persisted
            if last is None or last.done:
                return
            lifecycle.execute(last, jobstate.Heartbeat(now=_now()), self)

    def _fence(self, retrying: ImportJob | None = None) -> None:
        """Raise _Superseded unless this attempt still owns the job: no newer
        attempt was claimed and the stored record is this attempt's, unfinished
        (or exactly ``retrying``: an earlier try of this very write landed)."""
        if self._abandoned.is_set():
            raise _Superseded()
        if self.store.exists(layout.claim_key(self.spec.name, self.job.id, self.job.attempt + 1)):
            raise _Superseded()
        try:
            stored = ImportJob.model_validate_json(
                self.store.read_bytes(layout.job_key(self.spec.name, self.job.id))
            )
        except NotFoundError:  # the index was deleted meanwhile
            raise _Superseded() from None
        if stored.attempt != self.job.attempt or (stored.done and stored != retrying):
            raise _Superseded()

    # ------------------------------------------------------------- cancel
    def _cancel_event(self) -> Any:
        if self._event is None:
            from distributed import Event

            self._event = Event(self.ctx.cancel_event, client=self.client)
            self._event.clear()
        return self._event

    def _signal_stop(self) -> None:
        try:
            self._cancel_event().set()
        except Exception:  # pragma: no cover - scheduler gone
            log.warning("could not signal workers to stop", exc_info=True)

    def _release_event(self) -> None:
        if self._event is not None:
            with contextlib.suppress(Exception):
                self._event.clear()

    def _stop_work(self) -> None:
        self._signal_stop()
        self._drain()

    def _drain(self) -> None:
        """Wait for every task of this job to end before anything is deleted.

        Tasks are not cancelled with ``client.cancel``: the scheduler would
        forget them while a worker may still be running one, which could then
        write files after cleanup. The cancel event is already set, so running
        and queued tasks stop at their first check, within a batch.
        """
        if not self._outstanding:
            return
        deadline = time.monotonic() + 120
        left = list(self._outstanding.values())
        while left and time.monotonic() < deadline:
            left = [f for f in left if not f.done()]
            if left:
                time.sleep(0.05)
        if left:  # pragma: no cover
            log.warning("tasks of import %s did not stop within 120 s", self.job.id)
        self._outstanding = {}

    def _check(self) -> None:
        if self._superseded.is_set():  # seen by the heartbeat thread
            raise _Superseded()
        now = time.monotonic()
        if now - self._last_cancel_check >= POLL_SECONDS:
            self._last_cancel_check = now
            if self.jobs.cancel_requested(self.job.id):
                self._apply(jobstate.CancelRequest(now=_now()))
                raise _Stop()

    # ----------------------------------------------------------- progress
    def _progress(self, phase: str, fraction: float, force: bool = False) -> None:
        # a new phase is recorded at once (throttled, short phases never showed)
        if phase != self.job.phase:
            log.debug("import %s: phase %s at %.3f s", self.job.id, phase,
                      time.monotonic() - self._started)
        force = force or phase != self.job.phase
        if not force and time.monotonic() - self._last_persist < PERSIST_SECONDS:
            return
        self._apply(
            jobstate.Progress(
                phase=phase,
                fraction=fraction,
                now=_now(),
                bytes_read=self._stats.bytes_read,
                records_imported=self._stats.valid_total(),
                records_skipped=self._stats.skipped_total(),
                namespaces=self._stats.namespaces() if self._detail else None,
            )
        )

    def _threads(self) -> int:
        """The cluster's worker threads now (one scheduler round trip; 1 if
        it cannot say): how widely a large namespace's phases are split."""
        try:
            return max(1, sum(int(n) for n in self.client.nthreads().values()))
        except Exception:  # a plan that is not spread is still correct
            log.debug("import %s: worker threads unknown", self.job.id, exc_info=True)
            return 1

    def _run_tasks(
        self,
        futures: Sequence[Any],
        phase: str,
        lo: float,
        hi: float,
        weights: Sequence[float] | None = None,
        on_result: Callable[[int, Any], None] | None = None,
        ordered_errors: bool = False,
        keep: bool = True,
    ) -> list[Any]:
        """Wait for ``futures``, checking cancel, raising the first error.

        Finished futures come from one ``distributed.as_completed`` in
        batches; the results of a batch are fetched with one ``gather``;
        bookkeeping is dicts and sets (O(1) per future). ``keep=False``:
        results are handed to ``on_result`` only (the list holds None).

        ``ordered_errors``: ``futures`` are in input order (scan units in
        (namespace, file, row) order) and a :class:`RecordError` must be the
        first one in that order, not the first to arrive: on one, the tasks
        after it are no longer awaited and those before it are (one of them
        may hold an earlier bad record).
        """
        from distributed import as_completed

        futures = list(futures)
        for f in futures:
            self._outstanding[f.key] = f
        index = {f.key: i for i, f in enumerate(futures)}
        w = list(weights) if weights is not None else [1.0] * len(futures)
        total = sum(w) or 1.0
        done_w = 0.0
        results: list[Any] = [None] * len(futures)
        pending = set(range(len(futures)))
        first_error: tuple[int, BaseException] | None = None
        self._progress(phase, lo)
        ac = as_completed(futures, loop=self.client.loop)
        while pending:
            self._check()
            if not ac.has_ready():
                time.sleep(BATCH_WAIT_SECONDS)
                continue
            ok: list[tuple[int, Any]] = []
            for fut in ac.next_batch(block=False):
                i = index[fut.key]
                if i not in pending:  # after an ordered error: no longer awaited
                    continue
                if fut.status == "error":
                    exc = fut.exception()
                    if not (ordered_errors and isinstance(exc, RecordError)):
                        raise exc
                    pending.discard(i)
                    if first_error is None or i < first_error[0]:
                        first_error = (i, exc)
                    # not client.cancel: a running task must end before cleanup
                    # (_drain waits for it); the stop event ends it early
                    pending = {j for j in pending if j < i}
                    continue
                if fut.status == "cancelled":
                    raise CancelledError("Import cancelled")
                ok.append((i, fut))
            if ok:
                got = self.client.gather([f for _, f in ok])
                for (i, _), r in zip(ok, got, strict=True):
                    pending.discard(i)
                    if keep:
                        results[i] = r
                    if on_result is not None:
                        on_result(i, r)
                    done_w += w[i]
                _freeze_heap(every=FREEZE_SECONDS)
            self._progress(phase, lo + (hi - lo) * done_w / total)
        if first_error is not None:
            raise first_error[1]
        for f in futures:
            self._outstanding.pop(f.key, None)
        return results

    # ------------------------------------------------------------- phases
    def _phases(self) -> None:
        ctx = self.ctx
        load = self.job.mode == "upsert"
        visible = manifests.list_namespaces(self.store, self.spec.name)
        # a load's namespaces may exist: discovery does not refuse them
        disc: Discovery = discover(
            self.source, self.job.uri, set(visible), mode=self.job.mode, **P.limits()
        )
        if load:
            disc = self._load_discovery(disc)
        self._stats.init(disc)
        _freeze_heap()
        self._detail = len(disc.namespaces) <= NS_DETAIL_MAX
        self._apply(
            jobstate.Discovered(
                bytes_total=disc.total_bytes, namespaces=self._stats.namespaces(), now=_now()
            )
        )
        self._progress("inspect", 0.02, force=True)

        knobs = settings()
        spread = self._threads()
        # namespaces the listing shows tiny: inspected, planned and imported
        # by one task per group (CONTINUE mode: no record error to order
        # against the other namespaces'; docs/scale.md)
        max_rows = P.pack_rows()
        fold = not load and self.job.error_mode != "abort" and max_rows > 0
        groups, rest = P.fold_groups(disc.namespaces) if fold else ([], list(disc.namespaces))
        # footers on the workers, many files per task (the listing is done once, above)
        files = [f for ns in rest for f in disc.namespaces[ns]]
        step = P.inspect_batch(len(files), spread)
        batches = [files[i : i + step] for i in range(0, len(files), step)]
        by_ns: dict[str, list[FileInfo]] = {}
        folded: dict[str, P.NamespacePlan] = {}
        packed: dict[str, tasks.PackResult] = {}

        def inspected(_: int, shipped: P.Shipped[list[FileInfo] | tasks.FoldResult]) -> None:
            r = shipped.get()
            if isinstance(r, tasks.FoldResult):
                folded.update((p.ns, p) for p in r.plans)
                self._take_packed(r.packed, packed)
                return
            for info in r:
                by_ns.setdefault(info.namespace, []).append(info)

        futs = [
            self.client.submit(tasks.inspect_many, ctx, P.Shipped.of(b), pure=False)
            for b in batches
        ]
        safe_knobs = knobs.without_secrets()  # the planning knobs, not the credentials
        weights = [float(sum(f.size for f in b)) / 20 for b in batches]  # a footer: ~1/20th
        for g in groups:
            group = P.FoldGroup(g, safe_knobs, spread, max_rows)
            futs.append(self.client.submit(tasks.fold, ctx, P.Shipped.of(group), pure=False))
            weights.append(float(sum(f.size for _, fs in g for f in fs)))
        folded_bytes = sum(weights[len(batches) :])
        hi = 0.05 + 0.65 * folded_bytes / max(1.0, float(disc.total_bytes))
        self._run_tasks(futs, "inspect", 0.02, hi, weights, inspected, keep=False)
        del files, batches, futs, groups
        existing = visible if load else {}
        deletes = self._read_deletes(existing) if load else {}
        plans = {
            ns: P.plan_inspected(
                ns, infos, self.spec, existing=existing.get(ns), knobs=knobs, spread=spread
            )
            for ns, infos in by_ns.items()
        }
        plans = dict(sorted({**plans, **folded}.items()))
        for ns, p in plans.items():
            self._stats.rows_total[ns] = p.rows
        _freeze_heap()
        items = P.pack_groups([p for p in plans.values() if p.ns not in packed])
        big = [it for it in items if isinstance(it, P.NamespacePlan)]

        centroids = self._train([p for p in big if not p.existing])
        assigned = self._existing_centroids([p for p in big if p.existing])
        packed.update(self._scan(items, {**centroids, **assigned}))
        self._check_nonempty(plans)
        drops = self._dedup(plans, big, packed)
        buckets = self._gather(big, drops)
        self._commit(plans, centroids, buckets, packed, deletes, existing)

    # ---------------------------------------------------------- batch loads
    def _load_discovery(self, disc: Discovery) -> Discovery:
        """A load's files: those the load history has not seen (unless
        ``force`` or ``history=False``); the skipped ones are counted. Every
        file read (data and delete files) is staged in the history."""
        self._delete_files = {ns: list(fs) for ns, fs in disc.deletes.items()}
        self._loaded_files = list(disc.files) + disc.delete_files
        if not self.job.history or self.job.force:
            self.job = self.job.model_copy(update={"files_loaded": len(self._loaded_files)})
            return disc
        to_load, skipped = _history_filter(
            self.store, self.spec.name, self._loaded_files, self.job.uri
        )
        self._loaded_files = to_load
        keep = {f.key for f in to_load}
        data = {ns: [f for f in fs if f.key in keep] for ns, fs in disc.namespaces.items()}
        dels = {ns: [f for f in fs if f.key in keep] for ns, fs in disc.deletes.items()}
        self._delete_files = {ns: fs for ns, fs in dels.items() if fs}
        self.job = self.job.model_copy(
            update={"files_skipped": len(skipped), "files_loaded": len(to_load)}
        )
        nss = {ns: fs for ns, fs in data.items() if fs}
        return dataclasses.replace(
            disc,
            namespaces=nss,
            deletes=self._delete_files,
            total_bytes=sum(f.size for fs in nss.values() for f in fs),
        )

    def _existing_centroids(self, plans: list[P.NamespacePlan]) -> dict[str, Any]:
        """Futures of the centroids of the existing namespaces a load assigns
        to: each read by a task on a worker, never fetched by the driver."""
        out: dict[str, Any] = {}
        for p in plans:
            if p.centroids is not None:
                out[p.ns] = self.client.submit(
                    tasks.existing_centroids, self.ctx, p.ns, p.centroids, pure=False
                )
                self._outstanding[out[p.ns].key] = out[p.ns]
        return out

    def _read_deletes(
        self, existing: dict[str, Manifest]
    ) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
        """Ids and id prefixes of the delete files of each existing namespace,
        read and validated on the workers. Every delete file is checked (a bad
        one fails the load); those of a namespace that does not exist delete
        nothing (docs/loads.md)."""
        files = [(ns, f) for ns, fs in sorted(self._delete_files.items()) for f in fs]
        if not files:
            return {}
        futs = [self.client.submit(_read_delete_file, self.ctx, f, pure=False) for _, f in files]
        got: list[tuple[list[str], list[str]]] = self._run_tasks(
            futs, "inspect", 0.05, 0.05, [float(f.size) for _, f in files]
        )
        out: dict[str, tuple[set[str], set[str]]] = {}
        for (ns, _), (ids, prefixes) in zip(files, got, strict=True):
            if ns not in existing:
                continue
            mine = out.setdefault(ns, (set(), set()))
            mine[0].update(ids)
            mine[1].update(prefixes)
        return {ns: (tuple(sorted(i)), tuple(sorted(p))) for ns, (i, p) in out.items()}

    def _shown(self, p: P.NamespacePlan) -> list[str]:
        return [display_path(self.source, key) for key in p.files]

    def _train(self, plans: list[P.NamespacePlan]) -> dict[str, Any]:
        """Centroid futures per (big) namespace, dense and hybrid. The samples
        go from the sampling tasks to the training tasks as their arguments,
        and the centroids stay on the workers: the driver waits on their
        sizes only and never fetches a sample or a centroid matrix. Above
        ``kmeans.FLAT_MAX_K`` training is hierarchical (docs/kmeans.md)."""
        if self.spec.record_layout == RecordLayout.SPARSE or not plans:
            return {}
        ctx = self.ctx
        inner: list[Any] = []  # samples and intermediates: drained on a stop
        trains: dict[str, Any] = {}
        for p in plans:
            futs = [
                self.client.submit(
                    tasks.sample_unit, ctx, P.Shipped.of(u), p.sample_fraction, pure=False
                )
                for u in P.units(p.chunks)
            ]
            inner.extend(futs)
            if p.k <= kmeans.FLAT_MAX_K:
                trains[p.ns] = self.client.submit(tasks.train, ctx, p.k, p.buckets, *futs, pure=False)
            else:
                trains[p.ns], steps = self._train_hierarchical(p.ns, p, futs)
                inner.extend(steps)
        inner.extend(trains.values())
        sizes = [self.client.submit(tasks.centroid_count, f, pure=False) for f in trains.values()]
        for f in inner:
            self._outstanding[f.key] = f
        self._run_tasks(sizes, "train", 0.05, 0.15, keep=False)
        for f in inner:
            self._outstanding.pop(f.key, None)
        return trains

    def _train_hierarchical(
        self, ns: str, p: P.NamespacePlan, samples: list[Any]
    ) -> tuple[Any, list[Any]]:
        """kmeans.fit_parts as tasks (docs/kmeans.md): the centroids' future
        and the intermediate ones."""
        ctx, submit = self.ctx, self.client.submit
        expected = min(p.rows, kmeans.sample_size(p.k))  # the sample's size, about
        frac = kmeans.coarse_fraction(p.k, expected)
        groups = kmeans.cell_groups(p.k, expected, int(self.spec.dimension or 0))
        subsets = [
            submit(tasks.coarse_subset, ctx, i, frac, s, pure=False) for i, s in enumerate(samples)
        ]
        coarse = submit(tasks.train_coarse, ctx, p.k, *subsets, pure=False)
        counts = [
            submit(tasks.route, ctx, ns, i, groups, s, coarse, pure=False)
            for i, s in enumerate(samples)
        ]
        rows = [submit(tasks.cell_rows, ctx, ns, g, *counts, pure=False) for g in range(groups)]
        cells = [
            submit(tasks.train_cells, ctx, g, groups, p.k, coarse, rows[g], *counts, pure=False)
            for g in range(groups)
        ]
        steps = [*subsets, coarse, *counts, *rows, *cells]
        kc = kmeans.coarse_k(p.k)
        for _ in range(kmeans.REFINE_ITER):
            state = submit(tasks.gather_cells, ctx, *cells, pure=False)
            cells = [
                submit(tasks.refine_cells, ctx, g, groups, kc, rows[g], state, pure=False)
                for g in range(groups)
            ]
            steps += [state, *cells]
        state = submit(tasks.gather_cells, ctx, *cells, pure=False)
        return submit(tasks.join_cells, ctx, state, pure=False), [*steps, state]

    def _scan(
        self,
        items: list[list[P.NamespacePlan] | P.NamespacePlan],
        centroids: dict[str, Any],
    ) -> dict[str, tasks.PackResult]:
        """Scan units of big namespaces and packed groups of small ones, in
        namespace order (ABORT mode: the first record error in that order)."""
        ctx = self.ctx
        futs: list[Any] = []
        weights: list[float] = []
        for it in items:
            if isinstance(it, list):
                futs.append(self.client.submit(tasks.pack, ctx, P.Shipped.of(it), pure=False))
                weights.append(float(max(sum(p.nbytes for p in it), 1)))
                continue
            sizing = it.sizing
            for u in P.units(it.chunks):
                futs.append(
                    self.client.submit(
                        tasks.scan_unit,
                        ctx,
                        P.Shipped.of(u),
                        sizing,
                        centroids.get(it.ns),
                        pure=False,
                    )
                )
                weights.append(float(max(sum(c.nbytes for c in u), 1)))
        packed: dict[str, tasks.PackResult] = {}

        def record(
            _: int, r: list[tasks.ChunkResult] | P.Shipped[list[tasks.PackResult]]
        ) -> None:
            for x in r.get() if isinstance(r, P.Shipped) else r:
                if isinstance(x, tasks.PackResult):
                    self._take_packed([x], packed)
                else:
                    self._stats.add_chunk(x)

        self._run_tasks(
            futs,
            "scan",
            0.15,
            0.70,
            weights,
            record,
            ordered_errors=self.job.error_mode == "abort",
            keep=False,
        )
        return packed

    def _take_packed(
        self, results: Sequence[tasks.PackResult], packed: dict[str, tasks.PackResult]
    ) -> None:
        """A pack or fold task's namespaces: kept for the commit, counted."""
        for x in results:
            packed[x.ns] = x
            x.manifest  # noqa: B018 - parsed now, beside the workers, not in the commit
            for c in x.chunks:
                self._stats.add_chunk(c)

    def _check_nonempty(self, plans: dict[str, P.NamespacePlan]) -> None:
        for ns in plans:
            if self._stats.valid.get(ns, 0) == 0:
                raise IngestError(
                    f"No vectors added, all rows were skipped for namespace: {ns or '__default__'}",
                    namespace=ns,
                )

    def _dedup(
        self,
        plans: dict[str, P.NamespacePlan],
        big: list[P.NamespacePlan],
        packed: dict[str, tasks.PackResult],
    ) -> dict[str, tasks.Drops]:
        ctx = self.ctx
        keys: list[tuple[str, int]] = [(p.ns, part) for p in big for part in range(p.partitions)]
        futs = [self.client.submit(tasks.dedup, ctx, ns, part, pure=False) for ns, part in keys]
        results: list[tasks.Drops] = self._run_tasks(futs, "dedup", 0.70, 0.75)
        merged: dict[str, tasks.Drops] = {}
        for (ns, _), d in zip(keys, results, strict=True):
            prev = merged.get(ns)
            merged[ns] = d if prev is None else tasks.merge_drops(prev, d)
        del results
        for ns in plans:  # namespace order: the first duplicate of the import
            r = packed.get(ns)
            if r is not None:
                if r.dup_error is not None:
                    raise IngestError(r.dup_error, namespace=ns)
                self._stats.add_dup_counts(ns, r.dups)
                continue
            d = tasks.unique_drops(merged[ns])
            merged[ns] = d
            if len(d.keys) == 0:
                continue
            shown = self._shown(plans[ns])
            if self.job.error_mode == "abort":
                raise IngestError(tasks.first_dup_message(shown, d), namespace=ns)
            tasks.write_dup_rejects(ctx, ns, shown, d)
            self._stats.add_dup_counts(ns, tasks.dup_counts(d))
        return merged

    def _gather(
        self, big: list[P.NamespacePlan], drops: dict[str, tasks.Drops]
    ) -> dict[str, list[tasks.BucketResult]]:
        ctx = self.ctx
        keys: list[tuple[str, int]] = [(p.ns, b) for p in big for b in range(p.buckets)]
        drop_arrays = {ns: np.sort(d.keys) for ns, d in drops.items()}
        loading = {p.ns for p in big if p.existing}  # a load's staged segments: no id lookup
        futs = [
            self.client.submit(
                tasks.gather, ctx, ns, b, drop_arrays.get(ns, np.zeros(0, np.int64)),
                ns not in loading, pure=False,
            )
            for ns, b in keys
        ]
        out: dict[str, list[tasks.BucketResult]] = {p.ns: [] for p in big}

        def record(_: int, r: tasks.BucketResult) -> None:
            out[r.ns].append(r)

        self._run_tasks(futs, "write", 0.75, 0.97, on_result=record, keep=False)
        return out

    def _commit(
        self,
        plans: dict[str, P.NamespacePlan],
        centroids: dict[str, Any],
        buckets: dict[str, list[tasks.BucketResult]],
        packed: dict[str, tasks.PackResult],
        deletes: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] | None = None,
        existing: dict[str, Manifest] | None = None,
    ) -> None:
        """Manifests of the namespaces to create and, for a load, one staged
        load per existing namespace, then the one decision: the commit marker
        (docs/loads-pipeline.md "Commit"). A load then rolls its staged loads
        forward (log entry + fold)."""
        self._check()
        self._progress("commit", 0.97, force=True)
        deletes = deletes or {}
        existing = existing or {}
        fields = self._stats.fields
        cents = dict(zip(centroids, self.client.gather(list(centroids.values())), strict=True))
        counts: dict[str, int] = {}
        built: list[Manifest] = []
        prepared: list[Manifest] = []  # written (invisible) by their pack task
        staged: list[Any] = []
        for ns in plans:
            pr = packed.get(ns)
            results = pr.buckets if pr is not None else buckets[ns]
            results = sorted(results, key=lambda r: r.bucket)
            prepared_m = pr.manifest if pr is not None else None
            n = prepared_m.record_count if prepared_m is not None else sum(r.rows for r in results)
            counts[ns] = n
            if n == 0:
                raise IngestError(
                    f"No vectors added, all rows were skipped for namespace: {ns or '__default__'}",
                    namespace=ns,
                )
            if plans[ns].existing:
                ids, prefixes = deletes.get(ns, ((), ()))
                staged.append(
                    _staged_load(
                        self.job.id, ns, plans[ns].centroids,
                        [c for r in results for c in r.clusters], ids, prefixes, n,
                    )
                )
                continue
            if prepared_m is not None:
                prepared.append(prepared_m)
                continue
            cent_rel = pr.centroids if pr is not None else None
            if ns in cents:
                cent_rel = tasks.centroids_file(self.ctx, plans[ns], cents[ns])
            built.append(
                tasks.new_manifest(
                    self.spec, ns, results, centroids=cent_rel, import_id=self.job.id,
                    fields=fields.get(ns, {}),
                )
            )
        del cents
        for ns, (ids, prefixes) in sorted(deletes.items()):  # deletes only, no rows
            if ns not in plans and ns in existing and (ids or prefixes):
                staged.append(_staged_load(self.job.id, ns, existing[ns].centroids, [], ids,
                                           prefixes, 0))
                counts.setdefault(ns, 0)

        def guard() -> None:
            self._check()
            self._fence()

        load = self.job.mode == "upsert"
        if load:
            # before the decision: what the roll-forward needs, and the history's pending record
            self._stage_load(staged, guard)
        # version rule, conflicts, the file check and the commit marker (the
        # point at which all namespaces of this import become visible at once)
        change = commits.CreateNamespaces(import_id=self.job.id, manifests=tuple(built))
        try:
            _raise_prepare_error(packed)
            committed = commits.apply(
                self.store, self.spec.name, change, guard=guard, prepared=prepared
            )
            self._marked = True
        except commits.MissingFileError as exc:
            raise IngestError(exc.message, namespace=exc.namespace) from None
        except IngestError as exc:
            if not load:
                raise
            # a namespace new at discovery was created meanwhile (a write, an
            # import): its rows were clustered as a new namespace
            ns = str(exc.context.get("namespace", ""))
            raise IngestError(
                f'The namespace "{ns or "__default__"}" was created by another writer while '
                "this load ran; nothing was committed. Run the load again: it loads into "
                f"the namespace as it is now. ({exc.message})",
                namespace=ns,
            ) from None
        # scratch goes before the record says Completed: a runner dying in between
        # leaves an InProgress job that recovery completes (and cleans) from the
        # marker, whereas a Completed job is never looked at again
        finish_staging(self.store, self.spec.name, self.job.id)
        if staged:
            t0 = time.monotonic()
            self._roll_forward()
            log.debug("load %s: %d namespaces rolled forward in %.3f s", self.job.id,
                      len(staged), time.monotonic() - t0)
        # computed before the record gets every namespace: a heartbeat written
        # meanwhile stays a small running record (issue 9)
        quality = self._quality_figures(sorted(set(plans) | set(counts)), committed.manifests)
        self._stats.final(counts)
        self._detail = True  # the final record has every namespace
        if load:
            self.job = self.job.model_copy(
                update={
                    "records_upserted": sum(counts.values()),
                    "ids_deleted": sum(len(s.deletes) for s in staged),
                    "prefixes_deleted": sum(len(s.delete_prefixes) for s in staged),
                }
            )
        report = {**(self.job.report or {}), "quality": quality}
        self.job = self.job.model_copy(update={"report": report})
        self._apply(
            jobstate.Committed(
                records_imported=sum(counts.values()),
                records_skipped=self._stats.skipped_total(),
                namespaces=self._stats.namespaces(committed=True),
                now=_now(),
            )
        )

    def _quality_figures(
        self, namespaces: list[str], committed: Mapping[str, Manifest]
    ) -> dict[str, Any]:
        """Quality figures of the committed namespaces, for the record's
        ``report["quality"]`` (docs/quality.md): :func:`quality.import_report`'s
        steps as tasks, one per estimated namespace, so the estimates run on
        every worker; a failure or timeout is logged and leaves
        ``{"error": ...}``, never fails the job."""
        from vecstore import quality

        submit = self.client.submit
        futs: list[Any] = []
        t0 = time.perf_counter()
        try:
            # the balance of the namespaces this commit created comes from the
            # manifests in hand: the tasks read only the ones they estimate
            balances = {ns: quality.namespace_balance(m) for ns, m in committed.items()}
            part = submit(
                tasks.report_figures, self.store, self.spec,
                P.Shipped.of((namespaces, balances)), pure=False,
            )
            recalls = [
                submit(quality.detail_recall, self.store, self.spec, part, i,
                       seed=self.ctx.seed, pure=False)
                for i in range(min(quality.RECALL_NAMESPACES, len(namespaces)))
            ]
            final = submit(quality.assemble_report, part, *recalls, pure=False)
            futs = [part, *recalls, final]
            figures: dict[str, Any] = final.result(timeout=quality.TIMEOUT_SECONDS)
            figures["seconds"] = round(time.perf_counter() - t0, 3)
        except Exception as exc:
            log.warning("import %s: no quality figures: %s", self.job.id, exc, exc_info=True)
            figures = {"error": f"not computed: {type(exc).__name__}: {str(exc)[:200]}"}
            for f in futs:
                with contextlib.suppress(Exception):
                    f.cancel()
        return figures

    def _stage_load(self, staged: list[Any], guard: Callable[[], None]) -> None:
        """Write the staged loads and the load history's pending record (both
        count only once the marker exists)."""
        from vecstore import loads

        guard()
        for s in staged:
            try:
                loads.write_staged(self.store, self.spec.name, s)
            except AlreadyExistsError:
                self._fence()  # a newer attempt owns the job: stop here
                # still the owner: a superseded attempt's leftover, written after
                # the cleanup that preceded this attempt; ours replaces it
                loads.write_staged(self.store, self.spec.name, s, replace=True)
        # and no leftover of a superseded attempt for a namespace this one does
        # not load (the roll-forward applies every staged load there is)
        mine = {loads.staged_key(self.spec.name, s.load_id, s.namespace) for s in staged}
        for key in self.store.ls(loads_prefix(self.spec.name, self.job.id)):
            if key.endswith(".json") and key not in mine:
                self.store.delete(key)
        if self.job.history:
            _history_stage(
                self.store, self.spec.name, self.job.id, self._loaded_files, self.job.uri
            )

    def _roll_forward(self) -> None:
        """After the marker: append each existing namespace's log entry and fold
        it. The load is decided: if this fails (after retries), the job is left
        to recovery (which rolls forward again), never failed."""
        try:
            lifecycle.retrying(
                f"rolling load {self.job.id} forward",
                lambda: roll_forward(self.store, self.spec, self.job.id),
                seconds=max(1.0, policy.stale_seconds() / 2),
            )
        except Exception as exc:
            log.error("load %s: committed, roll-forward failed (%s); left to recovery",
                      self.job.id, exc)
            raise _LeftToRecovery() from exc


# --------------------------------------------------------------- helpers
# The driver keeps per-namespace objects for the whole import (10,000
# namespaces: the listing, plans, pack results, parsed manifests: several
# hundred thousand objects). Each full collection of the cyclic garbage
# collector walked them all (0.7 s of a 10,000-namespace import's driver
# CPU, in the commit among others; 1.4 s of 100,000 files'). gc.freeze()
# moves what is alive into the permanent generation, which collections skip;
# the driver calls it after the listing, after planning and, at most once a
# second, as task results arrive (they are what it keeps), and
# unfreezes at the end (what became garbage meanwhile is then collected).
FREEZE_SECONDS = 1.0
_last_freeze = 0.0


def _freeze_heap(every: float = 0.0) -> None:
    """gc.freeze(), at most once per ``every`` seconds (O(1): the collector's
    generations are spliced onto the permanent one)."""
    global _last_freeze
    now = time.monotonic()
    if now - _last_freeze >= every:
        _last_freeze = now
        gc.freeze()


def _now() -> datetime:
    return datetime.now(UTC)


def _staged_load(
    job_id: str,
    ns: str,
    centroids: str | None,
    clusters: Sequence[ClusterEntry],
    deletes: Sequence[str],
    prefixes: Sequence[str],
    records: int,
) -> Any:
    """One existing namespace's part of a load (vecstore.loads.StagedLoad)."""
    from vecstore.loads import StagedLoad

    return StagedLoad(
        load_id=job_id,
        namespace=ns,
        segments=tuple((c.id, c.segment) for c in clusters),
        entries=tuple(clusters),
        centroids=centroids,
        deletes=tuple(deletes),
        delete_prefixes=tuple(prefixes),
        records=records,
    )


# ---- the load history (vecstore.loadhistory) and delete files (pipelines.deletes):
# docs/loads.md
def _history_filter(
    store: Store, index: str, files: list[SourceFile], uri: str
) -> tuple[list[SourceFile], list[SourceFile]]:
    return loadhistory.filter_new(store, index, files, source_uri=uri)


def _history_stage(
    store: Store, index: str, load_id: str, files: list[SourceFile], uri: str
) -> None:
    loadhistory.stage(store, index, load_id, files, source_uri=uri)


def _read_delete_file(ctx: P.Context, f: SourceFile) -> tuple[list[str], list[str]]:
    """Task: the ids and id prefixes of one delete file (validated on the worker)."""
    from vecstore.pipelines.deletes import read_delete_file

    tasks.CancelCheck(ctx.cancel_event)()
    return read_delete_file(ctx.source, f)


class _HeartbeatThread(threading.Thread):
    """Writes the driver's heartbeat every VECSTORE_HEARTBEAT_SECONDS, whatever
    the driver thread is doing; never dies of a store error (logs it, goes on)."""

    def __init__(self, driver: ImportDriver) -> None:
        super().__init__(name=f"heartbeat-{driver.job.id}", daemon=True)
        self.driver = driver
        self._stopped = threading.Event()

    def run(self) -> None:
        warned = False
        while not self._stopped.wait(policy.heartbeat_seconds()):
            try:
                self.driver.beat()
                warned = False
            except _Superseded:
                self.driver._superseded.set()
                return
            except Exception as exc:  # the store refused it: try again next beat
                if not warned:
                    log.warning("heartbeat of import %s not written: %s", self.driver.job.id, exc)
                    warned = True

    def stop(self) -> None:
        self._stopped.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout=60)


class _Totals:
    """Running counts for progress (driver side only); every update O(1)
    per result, totals kept as running sums."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}
        self.bytes_total: dict[str, int] = {}
        self.bytes_read_ns: dict[str, int] = {}
        self.rows_total: dict[str, int] = {}
        self.read: dict[str, int] = {}
        self.valid: dict[str, int] = {}
        self.skipped_ns: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self.fields: dict[str, dict[str, set[str]]] = {}
        self.imported: dict[str, int] | None = None
        self.bytes_read = 0
        self._valid_total = 0

    def init(self, disc: Discovery) -> None:
        for ns, fs in disc.namespaces.items():
            self.files[ns] = len(fs)
            self.bytes_total[ns] = sum(f.size for f in fs)
            self.bytes_read_ns[ns] = 0
            self.read[ns] = self.valid[ns] = self.skipped_ns[ns] = 0

    def add_chunk(self, r: tasks.ChunkResult) -> None:
        before = self.bytes_read_ns.get(r.ns, 0)
        after = min(self.bytes_total.get(r.ns, 0), before + r.nbytes)
        self.bytes_read_ns[r.ns] = after
        self.bytes_read += after - before
        self.read[r.ns] += r.rows_read
        self.valid[r.ns] += r.valid
        self._valid_total += r.valid
        n = sum(r.skipped.values())
        self.skipped_ns[r.ns] += n
        for code, c in r.skipped.items():
            self.skipped[code] = self.skipped.get(code, 0) + c
        if r.meta_fields:
            mine = self.fields.setdefault(r.ns, {})
            for name, kinds in r.meta_fields.items():
                mine.setdefault(name, set()).update(kinds)

    def add_dup_counts(self, ns: str, counts: dict[str, int]) -> None:
        n = sum(counts.values())
        self.valid[ns] -= n
        self._valid_total -= n
        self.skipped_ns[ns] += n
        for c, k in counts.items():
            self.skipped[c] = self.skipped.get(c, 0) + k

    def final(self, counts: dict[str, int]) -> None:
        self.imported = dict(counts)

    def valid_total(self) -> int:
        return self._valid_total

    def skipped_total(self) -> dict[str, int]:
        return dict(sorted(self.skipped.items()))

    def namespaces(self, committed: bool = False) -> dict[str, NamespaceProgress]:
        out = {}
        for ns in self.files:
            imported = (self.imported or self.valid).get(ns, 0)
            # trusted ints and a status literal: no validation (10,000 of them)
            out[ns] = NamespaceProgress.model_construct(
                files=self.files[ns],
                bytes_total=self.bytes_total[ns],
                bytes_read=self.bytes_read_ns.get(ns, 0),
                records_read=self.read.get(ns, 0),
                records_imported=imported,
                records_skipped=self.skipped_ns.get(ns, 0),
                status="Committed" if committed else ("InProgress" if self.read.get(ns) else "Pending"),
            )
        return out


__all__ = ["ImportDriver"]


def _raise_prepare_error(packed: Mapping[str, tasks.PackResult]) -> None:
    """What a pack task's ``commit.prepare`` met (in namespace order), raised
    as the driver's own commit would have: after every record error."""
    for ns in sorted(packed):
        err = packed[ns].commit_error
        if err is None:
            continue
        kind, message, where = err
        if kind == "CommitConflictError":
            raise CommitConflictError(message, namespace=where)
        if kind == "MissingFileError":
            raise commits.MissingFileError(message, namespace=where)
        raise IngestError(message, namespace=where)
