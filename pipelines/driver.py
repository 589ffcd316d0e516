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

Only this driver commits: workers write immutable files and return small
results. The commit writes every namespace's manifest (write-if-absent,
carrying the import id), then the import's commit marker: the single point
at which all its namespaces become visible together.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore import commit as commits
from vecstore import jobstate, kmeans, layout, manifests
from vecstore.cleanup import cleanup_attempt, cleanup_import, finish_staging
from vecstore.errors import (
    CancelledError,
    CommitConflictError,
    IngestError,
    NotFoundError,
    RecordError,
    StorageError,
    VecstoreError,
)
from vecstore.jobs import JobStore, lifecycle, policy
from vecstore.jobs.policy import runner_name
from vecstore.pipelines import plan as P
from vecstore.pipelines import tasks
from vecstore.pipelines.discover import Discovery, FileInfo, discover, display_path
from vecstore.refs import FILE_ROW
from vecstore.schemas import ImportJob, IndexSpec, Manifest, NamespaceProgress, RecordLayout
from vecstore.schemas.arrow import REJECT_SCHEMA
from vecstore.storage import Store
from vecstore.writer import assemble_manifest, write_centroids_file

log = logging.getLogger("vecstore.import")

PERSIST_SECONDS = 0.5
POLL_SECONDS = 0.25


class _Stop(Exception):
    """Internal: unwind the phases (cancel observed)."""


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
        self.ctx = P.Context.make(source, store, spec, job.id, job.error_mode, job.attempt)
        self._last_persist = 0.0
        self._last_cancel_check = 0.0
        self._outstanding: list[Any] = []
        self._event: Any = None
        self._stats = _Totals()
        self._shown: dict[str, list[str]] = {}
        # the job record: every write goes through persist() under this lock;
        # _persisted is the last record written (the heartbeat rewrites it)
        self._record_lock = threading.RLock()
        self._persisted: ImportJob | None = None
        self._superseded = threading.Event()
        self._heartbeat = _HeartbeatThread(self)

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
        except _Superseded:
            # A runner presumed dead (paused, partitioned) that wakes up after
            # recovery resumed its job elsewhere: stop quietly, drop only what
            # this attempt wrote, leave the job to its new owner.
            log.warning(
                "import %s: attempt %s was superseded; stopping", self.job.id, self.job.attempt
            )
            with contextlib.suppress(Exception):
                self._stop_work()
            cleanup_attempt(self.store, self.spec.name, self.ctx.staging, self.ctx.owner)
            with contextlib.suppress(NotFoundError):
                return self.jobs.get(self.job.id)
            return self.job
        finally:
            self._heartbeat.stop()
            self._release_event()

    def _run(self) -> ImportJob:
        # re-read: a cancel may have landed between submit and this thread's start
        self.job = self.jobs.get(self.job.id)
        self._apply(jobstate.Start(runner=runner_name(), now=_now()))
        if self.job.done:
            return self.job
        self._heartbeat.start()
        try:
            self._phases()
        except _Superseded:
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

        def write() -> None:
            self._fence(retrying=job)
            self.jobs.save(job)

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
            lambda: cleanup_import(self.store, self.spec.name, job.id, keep_rejects=keep_rejects),
            seconds=policy.record_retry_seconds(),
        )

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
        while any(not f.done() for f in self._outstanding) and time.monotonic() < deadline:
            time.sleep(0.05)
        if any(not f.done() for f in self._outstanding):  # pragma: no cover
            log.warning("tasks of import %s did not stop within 120 s", self.job.id)
        self._outstanding = []

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
                namespaces=self._stats.namespaces(),
            )
        )

    def _run_tasks(
        self,
        futures: Sequence[Any],
        phase: str,
        lo: float,
        hi: float,
        weights: Sequence[float] | None = None,
        on_result: Callable[[int, Any], None] | None = None,
        ordered_errors: bool = False,
    ) -> list[Any]:
        """Wait for ``futures``, heartbeating, checking cancel, raising the first error.

        ``ordered_errors``: ``futures`` are in input order (scan chunks in
        (namespace, file, row) order) and a :class:`RecordError` must be the
        first one in that order, not the first to arrive: on one, the tasks
        after it are no longer awaited and those before it are (one of them
        may hold an earlier bad record).
        """
        from distributed import wait

        futures = list(futures)
        self._outstanding.extend(futures)
        w = list(weights) if weights is not None else [1.0] * len(futures)
        total = sum(w) or 1.0
        done_w = 0.0
        results: list[Any] = [None] * len(futures)
        pending = dict(enumerate(futures))
        first_error: tuple[int, BaseException] | None = None
        self._progress(phase, lo)
        while pending:
            self._check()
            with contextlib.suppress(TimeoutError), self.client.as_current():
                wait(list(pending.values()), timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
            for i, fut in sorted(pending.items()):
                if i not in pending or not fut.done():  # cancelled above, or still running
                    continue
                del pending[i]
                if fut.status == "error":
                    exc = fut.exception()
                    if not (ordered_errors and isinstance(exc, RecordError)):
                        raise exc
                    if first_error is None or i < first_error[0]:
                        first_error = (i, exc)
                    for j in [j for j in pending if j > i]:
                        # not client.cancel: a running task must end before cleanup
                        # (_drain waits for it); the stop event ends it early
                        del pending[j]
                    continue
                if fut.status == "cancelled":
                    raise CancelledError("Import cancelled")
                results[i] = fut.result()
                if on_result is not None:
                    on_result(i, results[i])
                done_w += w[i]
            self._progress(phase, lo + (hi - lo) * done_w / total)
        if first_error is not None:
            raise first_error[1]
        self._outstanding = [f for f in self._outstanding if f not in futures]
        return results

    # ------------------------------------------------------------- phases
    def _phases(self) -> None:
        ctx = self.ctx
        existing = set(manifests.list_namespaces(self.store, self.spec.name))
        disc: Discovery = discover(self.source, self.job.uri, existing, **P.limits())
        self._stats.init(disc)
        self._apply(
            jobstate.Discovered(
                bytes_total=disc.total_bytes, namespaces=self._stats.namespaces(), now=_now()
            )
        )
        self._progress("inspect", 0.02, force=True)

        files = [f for ns in disc.namespaces for f in disc.namespaces[ns]]
        infos: list[FileInfo] = self._run_tasks(
            [self.client.submit(tasks.inspect, ctx, f, pure=False) for f in files],
            "inspect",
            0.02,
            0.05,
        )
        by_ns: dict[str, list[tuple[str, int, list[int]]]] = {}
        for info in infos:
            by_ns.setdefault(info.namespace, []).append((info.key, info.size, list(info.row_groups)))
        plans = {
            ns: P.plan_namespace(ns, sorted(fs), self.spec) for ns, fs in sorted(by_ns.items())
        }
        self._shown = {
            ns: [display_path(self.source, key) for key in p.files] for ns, p in plans.items()
        }
        for ns, p in plans.items():
            self._stats.rows_total[ns] = p.rows

        centroids = self._train(plans)
        chunk_results = self._scan(plans, centroids)
        self._check_nonempty(plans, chunk_results)
        drops = self._dedup(plans)
        buckets = self._gather(plans, drops)
        self._commit(plans, centroids, chunk_results, drops, buckets)

    def _train(self, plans: dict[str, P.NamespacePlan]) -> dict[str, Any]:
        """Centroid futures per namespace (dense and hybrid). The samples and
        centroids stay on the workers: the driver waits on their sizes."""
        if self.spec.record_layout == RecordLayout.SPARSE:
            return {}
        ctx = self.ctx
        trains: dict[str, Any] = {}
        inner: list[Any] = []  # awaited through the centroid sizes, drained on failure
        for ns, p in plans.items():
            futs = [
                self.client.submit(tasks.sample, ctx, c, p.sample_fraction, pure=False)
                for c in p.chunks
            ]
            inner += futs
            if p.k <= kmeans.FLAT_MAX_K:
                trains[ns] = self.client.submit(tasks.train, ctx, p.k, *futs, pure=False)
            else:
                trains[ns], steps = self._train_hierarchical(ns, p, futs)
                inner += steps
        sizes = [self.client.submit(tasks.centroid_count, f, pure=False) for f in trains.values()]
        inner += trains.values()
        self._outstanding.extend(inner)
        self._run_tasks(sizes, "train", 0.05, 0.15)
        done = {id(f) for f in inner}
        self._outstanding = [f for f in self._outstanding if id(f) not in done]
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
        self, plans: dict[str, P.NamespacePlan], centroids: dict[str, Any]
    ) -> list[tasks.ChunkResult]:
        ctx = self.ctx
        futs: list[Any] = []
        weights: list[float] = []
        for ns, p in plans.items():
            for c in p.chunks:
                futs.append(
                    self.client.submit(tasks.scan, ctx, c, p, centroids.get(ns), pure=False)
                )
                weights.append(float(max(c.nbytes, 1)))

        def record(_: int, r: tasks.ChunkResult) -> None:
            self._stats.add_chunk(r)

        return self._run_tasks(
            futs, "scan", 0.15, 0.70, weights, record, ordered_errors=self.job.error_mode == "abort"
        )

    def _check_nonempty(
        self, plans: dict[str, P.NamespacePlan], results: list[tasks.ChunkResult]
    ) -> None:
        valid: dict[str, int] = dict.fromkeys(plans, 0)
        for r in results:
            valid[r.ns] += r.valid
        for ns, n in valid.items():
            if n == 0:
                raise IngestError(
                    f"No vectors added, all rows were skipped for namespace: {ns or '__default__'}",
                    namespace=ns,
                )

    def _dedup(self, plans: dict[str, P.NamespacePlan]) -> dict[str, tasks.Drops]:
        ctx = self.ctx
        keys: list[tuple[str, int]] = [
            (ns, part) for ns, p in plans.items() for part in range(p.partitions)
        ]
        futs = [self.client.submit(tasks.dedup, ctx, ns, part, pure=False) for ns, part in keys]
        results: list[tasks.Drops] = self._run_tasks(futs, "dedup", 0.70, 0.75)
        merged: dict[str, tasks.Drops] = {}
        for (ns, _), d in zip(keys, results, strict=True):
            prev = merged.get(ns)
            merged[ns] = d if prev is None else _merge_drops(prev, d)
        for ns, d in merged.items():
            # a record that is both a repeated id and a repeated vector counts once
            d = _unique_drops(d)
            merged[ns] = d
            if len(d.keys) == 0:
                continue
            order = np.lexsort((d.keys,))
            if self.job.error_mode == "abort":
                i = int(order[0])
                raise IngestError(self._dup_message(plans[ns], d, i, abort=True), namespace=ns)
            self._write_dup_rejects(plans[ns], d)
            self._stats.add_dups(ns, d)
        return merged

    def _dup_message(self, p: P.NamespacePlan, d: tasks.Drops, i: int, abort: bool) -> str:
        f, r = _split_key(int(d.keys[i]))
        ff, fr = _split_key(int(d.first[i]))
        shown = self._shown[p.ns]
        if d.codes[i] == "duplicate_id":
            reason = (
                f'Duplicate id "{d.ids[i]}": the id of the record at (file "{shown[ff]}", row {fr})'
            )
        else:
            reason = (
                f'Duplicate vector: the values of record "{d.ids[i]}" are identical to those of '
                f'the record at (file "{shown[ff]}", row {fr})'
            )
        if abort:
            return f'error reading record (file "{shown[f]}", row {r}): {reason}'
        return reason

    def _write_dup_rejects(self, p: P.NamespacePlan, d: tasks.Drops) -> None:
        import io

        import pyarrow.parquet as pq

        order = np.argsort(d.keys, kind="stable")
        rows = []
        for i in order.tolist():
            f, r = _split_key(int(d.keys[i]))
            rows.append((self._shown[p.ns][f], r, d.codes[i], self._dup_message(p, d, i, abort=False), d.ids[i]))
        table = pa.Table.from_pydict(
            {
                "namespace": [p.ns] * len(rows),
                "file": [x[0] for x in rows],
                "row": [x[1] for x in rows],
                "code": [x[2] for x in rows],
                "message": [x[3] for x in rows],
                "id": [x[4] for x in rows],
            },
            schema=REJECT_SCHEMA,
        )
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.store.write_bytes(P.rejects_file(self.ctx, p.ns, "duplicates"), buf.getvalue())

    def _gather(
        self, plans: dict[str, P.NamespacePlan], drops: dict[str, tasks.Drops]
    ) -> dict[str, list[tasks.BucketResult]]:
        ctx = self.ctx
        keys: list[tuple[str, int]] = [(ns, b) for ns, p in plans.items() for b in range(p.buckets)]
        drop_arrays = {ns: np.sort(d.keys) for ns, d in drops.items()}
        futs = [
            self.client.submit(
                tasks.gather, ctx, ns, b, drop_arrays.get(ns, np.zeros(0, np.int64)), pure=False
            )
            for ns, b in keys
        ]
        results: list[tasks.BucketResult] = self._run_tasks(futs, "write", 0.75, 0.97)
        out: dict[str, list[tasks.BucketResult]] = {ns: [] for ns in plans}
        for r in results:
            out[r.ns].append(r)
        return out

    def _commit(
        self,
        plans: dict[str, P.NamespacePlan],
        centroids: dict[str, Any],
        chunk_results: list[tasks.ChunkResult],
        drops: dict[str, tasks.Drops],
        buckets: dict[str, list[tasks.BucketResult]],
    ) -> None:
        self._check()
        self._progress("commit", 0.97, force=True)
        fields: dict[str, dict[str, set[str]]] = {ns: {} for ns in plans}
        for r in chunk_results:
            for name, kinds in r.meta_fields.items():
                fields[r.ns].setdefault(name, set()).update(kinds)
        counts: dict[str, int] = {}
        built: list[Manifest] = []
        for ns in plans:
            results = buckets[ns]
            n = sum(r.rows for r in results)
            counts[ns] = n
            if n == 0:
                raise IngestError(
                    f"No vectors added, all rows were skipped for namespace: {ns or '__default__'}",
                    namespace=ns,
                )
            cent_rel = None
            if ns in centroids:
                cents = centroids[ns].result()
                cent_rel = write_centroids_file(self.store, self.spec, ns, self.ctx.owner, cents)
            built.append(
                assemble_manifest(
                    self.spec,
                    ns,
                    1,  # the commit assigns the version
                    [c for r in results for c in r.clusters],
                    centroids=cent_rel,
                    id_files=[r.id_file for r in results if r.id_file],
                    import_id=self.job.id,
                    fields=fields[ns],
                )
            )

        def guard() -> None:
            self._check()
            self._fence()

        # version rule, conflicts, the file check and the commit marker (the
        # point at which all namespaces of this import become visible at once)
        change = commits.CreateNamespaces(import_id=self.job.id, manifests=tuple(built))
        try:
            commits.apply(self.store, self.spec.name, change, guard=guard)
        except commits.MissingFileError as exc:
            raise IngestError(exc.message, namespace=exc.namespace) from None
        # scratch goes before the record says Completed: a runner dying in between
        # leaves an InProgress job that recovery completes (and cleans) from the
        # marker, whereas a Completed job is never looked at again
        finish_staging(self.store, self.spec.name, self.job.id)
        self._stats.final(counts)
        self._apply(
            jobstate.Committed(
                records_imported=sum(counts.values()),
                records_skipped=self._stats.skipped_total(),
                namespaces=self._stats.namespaces(committed=True),
                now=_now(),
            )
        )


# --------------------------------------------------------------- helpers
def _now() -> datetime:
    return datetime.now(UTC)


def _split_key(key: int) -> tuple[int, int]:
    return FILE_ROW.split_one(key)


def _merge_drops(a: tasks.Drops, b: tasks.Drops) -> tasks.Drops:
    return tasks.Drops(
        np.concatenate([a.keys, b.keys]),
        np.concatenate([a.first, b.first]),
        a.codes + b.codes,
        a.ids + b.ids,
    )


def _unique_drops(d: tasks.Drops) -> tasks.Drops:
    if len(d.keys) == 0:
        return d
    # prefer the duplicate_id reason when a record is dropped by both partitions
    pri = np.array([0 if c == "duplicate_id" else 1 for c in d.codes])
    order = np.lexsort((pri, d.keys))
    keys = d.keys[order]
    keep = np.concatenate([[True], keys[1:] != keys[:-1]])
    sel = order[keep]
    return tasks.Drops(
        d.keys[sel], d.first[sel], [d.codes[i] for i in sel], [d.ids[i] for i in sel]
    )


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
    """Running counts for progress (driver side only)."""

    def __init__(self) -> None:
        self.files: dict[str, int] = {}
        self.bytes_total: dict[str, int] = {}
        self.bytes_read_ns: dict[str, int] = {}
        self.rows_total: dict[str, int] = {}
        self.read: dict[str, int] = {}
        self.valid: dict[str, int] = {}
        self.skipped_ns: dict[str, int] = {}
        self.skipped: dict[str, int] = {}
        self.imported: dict[str, int] | None = None

    def init(self, disc: Discovery) -> None:
        for ns, fs in disc.namespaces.items():
            self.files[ns] = len(fs)
            self.bytes_total[ns] = sum(f.size for f in fs)
            self.bytes_read_ns[ns] = 0
            self.read[ns] = self.valid[ns] = self.skipped_ns[ns] = 0

    @property
    def bytes_read(self) -> int:
        return sum(self.bytes_read_ns.values())

    def add_chunk(self, r: tasks.ChunkResult) -> None:
        self.bytes_read_ns[r.ns] = min(
            self.bytes_total.get(r.ns, 0), self.bytes_read_ns.get(r.ns, 0) + r.nbytes
        )
        self.read[r.ns] += r.rows_read
        self.valid[r.ns] += r.valid
        n = sum(r.skipped.values())
        self.skipped_ns[r.ns] += n
        for code, c in r.skipped.items():
            self.skipped[code] = self.skipped.get(code, 0) + c

    def add_dups(self, ns: str, d: tasks.Drops) -> None:
        self.valid[ns] -= len(d.keys)
        self.skipped_ns[ns] += len(d.keys)
        for c in d.codes:
            self.skipped[c] = self.skipped.get(c, 0) + 1

    def final(self, counts: dict[str, int]) -> None:
        self.imported = dict(counts)

    def valid_total(self) -> int:
        return sum(self.valid.values())

    def skipped_total(self) -> dict[str, int]:
        return dict(sorted(self.skipped.items()))

    def namespaces(self, committed: bool = False) -> dict[str, NamespaceProgress]:
        out = {}
        for ns in self.files:
            imported = (self.imported or self.valid).get(ns, 0)
            out[ns] = NamespaceProgress(
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
