"""Background index builds in a process that writes.

``builder_for(store, spec)`` is the process-wide :class:`BackgroundBuilder`
of an index: a daemon thread, started on the first write (``notify``), that
folds a namespace's tail into its clusters (:func:`vecstore.builder.build`)
once the tail holds ``VECSTORE_BUILD_TAIL_RECORDS`` records or its oldest
write is ``VECSTORE_BUILD_TAIL_SECONDS`` old. It stops at process exit
(``atexit``: a build in progress finishes its step, or is abandoned at
exit like any crash: the next build redoes it).

On-demand builds (``Index.build``, ``vecstore build``) are build jobs
(:mod:`vecstore.jobs.build_kind`); the background builder folds directly,
without a job record per fold: its folds are small, frequent and redone by
the next fold if the process dies (the lease expires, nothing is
committed), so a record would only add a store write per fold.
``build_now`` is the plain fold loop without a job (tools, benchmarks).
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Iterable

from vecstore import builder, manifests, wal
from vecstore.errors import VecstoreError
from vecstore.schemas import IndexSpec
from vecstore.settings import settings
from vecstore.storage import Store
from vecstore.tail import tail_reader

log = logging.getLogger("vecstore")

POLL_SECONDS = 0.5
BUSY_WAIT_SECONDS = 0.2


def namespaces_with_tail(store: Store, spec: IndexSpec) -> list[str]:
    """Namespaces whose log holds entries their visible manifest has not applied."""
    out = []
    for ns, m in manifests.list_namespaces(store, spec.name).items():
        if wal.last_lsn(store, spec.name, ns) > (m.applied_lsn or 0):
            out.append(ns)
    return out


def build_now(
    store: Store,
    spec: IndexSpec,
    namespaces: Iterable[str],
    *,
    wait: bool = True,
    timeout: float | None = None,
) -> dict[str, builder.BuildResult]:
    """Fold the tails of ``namespaces`` now. With ``wait``, a namespace whose
    lease another builder holds is retried until that build ended (or
    ``timeout``), then folded; a conflict (another builder committed first)
    is folded again on the new version. Without ``wait``: one attempt each."""
    results: dict[str, builder.BuildResult] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    for ns in namespaces:
        while True:
            res = builder.build(store, spec, ns)
            if res.status in ("built", "nothing") or not wait:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(BUSY_WAIT_SECONDS)
        if res.status == "built":
            # fold what was written during the build too (if any)
            nxt = builder.build(store, spec, ns) if wait else None
            if nxt is not None and nxt.status == "built":
                res = nxt
        results[ns] = res
    return results


class BackgroundBuilder:
    """One daemon thread per (store, index) folding tails past their thresholds.

    The thread runs while some namespace it watches has unfolded writes, and
    ends when none has (the next write starts it again)."""

    def __init__(self, store: Store, spec: IndexSpec) -> None:
        self.store = store
        self.spec = spec
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.builds = 0  # folds committed (for tests and logs)

    def notify(self, namespace: str) -> None:
        """A write landed in ``namespace``: watch its tail (starts the thread)."""
        with self._lock:
            self._pending.add(namespace)
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._run, name=f"vecstore-builder-{self.spec.name}", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout)

    def due(self, namespace: str) -> bool:
        """Whether the namespace's tail passed a threshold."""
        cfg = settings()
        state = tail_reader(self.store, self.spec).get(namespace)
        if state.entries == 0:
            return False
        if state.size >= cfg.build_tail_records:
            return True
        oldest = state.oldest_at
        return oldest is not None and time.time() - oldest >= cfg.build_tail_seconds

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            with self._lock:
                watched = sorted(self._pending)
                if not watched:  # idle: the thread ends; the next write starts another
                    self._thread = None
                    return
            for ns in watched:
                if self._stop.is_set():
                    return
                try:
                    self._step(ns)
                except VecstoreError as exc:
                    log.warning("background build of %s/%s failed: %s", self.spec.name, ns, exc)
                except Exception:  # a builder thread must not die silently
                    log.exception("background build of %s/%s failed", self.spec.name, ns)

    def _step(self, ns: str) -> None:
        if manifests.load_namespace(self.store, self.spec.name, ns) is None:
            with self._lock:
                self._pending.discard(ns)
            return
        if not self.due(ns):
            return
        res = builder.build(self.store, self.spec, ns)
        if res.status == "built":
            self.builds += 1
            log.info(
                "folded %d log entries of %s/%s in %.2f s",
                res.entries,
                self.spec.name,
                ns,
                res.seconds,
            )
        if res.status == "nothing" or (res.status == "built" and not self.due(ns)):
            state = tail_reader(self.store, self.spec).get(ns)
            if state.entries == 0:
                with self._lock:
                    self._pending.discard(ns)


_builders: dict[tuple[str, str], BackgroundBuilder] = {}
_builders_lock = threading.Lock()


def builder_for(store: Store, spec: IndexSpec) -> BackgroundBuilder:
    """The process-wide background builder of an index."""
    key = (store.uri, spec.name)
    with _builders_lock:
        b = _builders.get(key)
        if b is None:
            b = _builders[key] = BackgroundBuilder(store, spec)
        return b


def stop_all() -> None:
    """Stop every background builder of this process (run at exit)."""
    with _builders_lock:
        items = list(_builders.values())
    for b in items:
        b.stop()


atexit.register(stop_all)

__all__ = ["BackgroundBuilder", "build_now", "builder_for", "namespaces_with_tail", "stop_all"]
