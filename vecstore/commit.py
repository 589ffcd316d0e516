"""Every change to a namespace goes through :func:`apply`: one version rule,
one visibility rule, one conflict policy.

A change is data (a frozen model of the :data:`Change` union):

- :class:`CreateNamespaces` -- an import: new manifests for namespaces that do
  not exist (Pinecone's rule), visible together through the import's commit
  marker;
- :class:`DeleteNamespace` -- a tombstone for a live namespace;
- :class:`ApplyLog` -- the write path's slot (issue 11): the next manifest of a
  namespace, materialising the log up to ``applied_lsn``, built on the
  visible version ``base_version``.

The rules (see ``docs/commit.md``):

1. **Version**: a change to namespace ``ns`` is written at the version right
   after ``ns``'s *visible* state (1 if nothing is visible), never after the
   highest version present: an invisible manifest above the visible state is
   an import in flight, and it holds that slot.
2. **Write-if-absent**: every manifest is one ``put_if_absent``; of two
   writers racing for a version exactly one wins.
3. **Conflict -> refresh and re-validate** (pyiceberg style): the loser reads
   the slot's holder. A visible (or vanished) holder means the state moved: the
   change is validated again against the new visible state and retried with
   backoff (an import then fails with "already exists", a second delete with
   "not found", a stale :class:`ApplyLog` with a conflict). An invisible holder
   is an import in flight: an import fails at once ("is being created by
   another import"); other changes wait for it with backoff, a bounded number
   of times.
4. **Files exist**: right before the commit becomes visible, every file the
   new manifests reference is checked, with one listing per data folder;
   a missing file fails the commit and nothing becomes visible.
5. **Visibility**: manifests of a :class:`CreateNamespaces` carry its
   ``import_id`` and become visible at once when the marker
   ``imports/<id>/_COMMITTED`` lands (the single commit point of an import);
   other changes are visible when their manifest lands.
6. **Catalog** (:mod:`vecstore.catalog`, derived data): an intent naming the
   change's namespaces exists from before its first manifest write until
   the new state is recorded in the index's namespace catalog, right after
   the visibility point (an import: one snapshot for all its namespaces).

All namespaces of one change are validated, written and checked concurrently
(a thread pool), with ``guard`` called once before the first write and once
before the visibility point: a commit of 10,000 namespaces is one batched
operation with one visibility marker.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from vecstore import catalog, layout, manifests, wal
from vecstore.errors import CommitConflictError, IngestError, NotFoundError, VecstoreError
from vecstore.schemas import Manifest
from vecstore.schemas.models import MANIFEST_FORMAT_WAL
from vecstore.storage import Store

__all__ = [
    "ApplyLog",
    "Change",
    "Committed",
    "CreateNamespaces",
    "DeleteNamespace",
    "MissingFileError",
    "RetryPolicy",
    "apply",
    "check_files",
    "prepare",
]

T = TypeVar("T")
R = TypeVar("R")

MAX_WORKERS = 32


# ------------------------------------------------------------------ changes


class _Change(BaseModel):
    model_config = ConfigDict(frozen=True)


class CreateNamespaces(_Change):
    """An import's namespaces. The manifests' ``version`` is assigned by the
    commit (pass any); each carries ``import_id`` (set here if missing)."""

    kind: Literal["create_namespaces"] = "create_namespaces"
    import_id: str
    manifests: tuple[Manifest, ...]
    # the prefix of the data files this attempt of the import writes
    # (``<import id>-a<attempt>``): an invisible manifest of the same import
    # whose files all carry it was written by this very attempt (a task Dask
    # ran again) and is taken back instead of failing the import
    owner: str | None = None


class DeleteNamespace(_Change):
    """A tombstone for a live namespace; its older files are removed after."""

    kind: Literal["delete_namespace"] = "delete_namespace"
    namespace: str


class ApplyLog(_Change):
    """The write path's commit (issue 11): ``manifest`` is the namespace's state
    after applying its log up to ``applied_lsn``, built on the visible version
    ``base_version`` (None: on nothing). It commits only if that version is
    still the visible one; otherwise the builder must build again.
    ``applied_lsn`` goes into the manifest with the format version that adds
    log positions; today the commit checks the base and the version rule."""

    kind: Literal["apply_log"] = "apply_log"
    namespace: str
    base_version: int | None
    applied_lsn: int = Field(ge=0)
    manifest: Manifest


Change = Annotated[CreateNamespaces | DeleteNamespace | ApplyLog, Field(discriminator="kind")]


@dataclass(frozen=True)
class Committed:
    """What a change committed: each namespace's new manifest."""

    manifests: dict[str, Manifest]


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff on conflicts: ``attempts`` tries per namespace, sleeping
    ``base * 2**n`` (capped at ``cap``, full jitter) in between."""

    attempts: int = 8
    base: float = 0.02
    cap: float = 1.0

    def sleep(self, attempt: int) -> None:
        time.sleep(random.uniform(0, min(self.cap, self.base * (2**attempt))))


class MissingFileError(NotFoundError):
    """A file a commit references does not exist: nothing was committed."""


# -------------------------------------------------------------- per change


class _Rules:
    """How one change builds, and reacts, per namespace (private)."""

    marker: str | None = None  # import id whose marker makes the change visible

    def namespaces(self) -> list[str]:
        raise NotImplementedError

    def build(self, index: str, ns: str, base: Manifest | None, version: int) -> Manifest:
        """The manifest to write at ``version`` on the visible ``base``, or raise."""
        raise NotImplementedError

    def plan(self, store: Store, index: str, ns: str) -> Manifest:
        """Rule 1 for one namespace: :meth:`build` at the version after its
        visible state."""
        base = manifests.latest_visible(store, index, ns)
        return self.build(index, ns, base, _next(base))

    def pending(self, index: str, ns: str, holder: Manifest) -> None:
        """The slot is held by ``holder``, an import in flight: raise to fail
        now, return to wait for it."""

    def after(self, store: Store, index: str, committed: Manifest) -> None:
        """Work once the change is visible (garbage of older versions)."""


class _Create(_Rules):
    def __init__(self, change: CreateNamespaces, store: Store) -> None:
        self.store = store
        self.marker = change.import_id
        self.owner = change.owner
        self.by_ns = {m.namespace: m for m in change.manifests}
        if len(self.by_ns) != len(change.manifests):
            raise ValueError("CreateNamespaces: one manifest per namespace")

    def namespaces(self) -> list[str]:
        return list(self.by_ns)

    def _own(self, holder: Manifest) -> bool:
        files = holder.files()
        return bool(
            self.owner
            and holder.import_id == self.marker
            and files
            and all(layout.written_by(f, self.owner) for f in files)
        )

    def plan(self, store: Store, index: str, ns: str) -> Manifest:
        if _never_written(store, index, ns):  # version 1, no log: from one listing
            return self._built(ns, 1, 0)
        return super().plan(store, index, ns)

    def build(self, index: str, ns: str, base: Manifest | None, version: int) -> Manifest:
        if base is not None and not base.deleted:
            raise IngestError(exists_message(ns), namespace=ns)
        return self._built(ns, version, start_lsn(self.store, index, ns, base))

    def _built(self, ns: str, version: int, lsn: int) -> Manifest:
        update: dict[str, object] = {"version": version, "import_id": self.marker}
        if lsn:  # the namespace had a log: its old entries stay applied
            update.update(format_version=MANIFEST_FORMAT_WAL, applied_lsn=lsn)
        return self.by_ns[ns].model_copy(update=update)

    def pending(self, index: str, ns: str, holder: Manifest) -> None:
        if self._own(holder):
            # this attempt's own invisible manifest: a pack task that Dask ran
            # again (its worker was lost after commit.prepare). Nothing builds
            # on it: taken back, the slot retried. (Another attempt's is a
            # conflict: it may be a newer attempt's, and this one a zombie.)
            _unput(self.store, holder)
            return
        raise IngestError(
            f'The namespace "{ns or "__default__"}" is being created by another import '
            f"({holder.import_id}). Imports are only allowed into nonexistent namespaces.",
            namespace=ns,
        )


class _Delete(_Rules):
    def __init__(self, change: DeleteNamespace, store: Store) -> None:
        self.store = store
        self.ns = change.namespace

    def namespaces(self) -> list[str]:
        return [self.ns]

    def build(self, index: str, ns: str, base: Manifest | None, version: int) -> Manifest:
        if base is None or base.deleted:
            raise NotFoundError(
                f'Namespace "{ns}" not found in index "{index}"', index=index, namespace=ns
            )
        lsn = start_lsn(self.store, index, ns, base)
        return Manifest(
            index=index,
            namespace=ns,
            version=version,
            deleted=True,
            vector_type=base.vector_type,
            metric=base.metric,
            dimension=base.dimension,
            parent_version=base.version,
            # the log's end: a namespace created again starts after it
            **({"format_version": MANIFEST_FORMAT_WAL, "applied_lsn": lsn} if lsn else {}),
        )

    def after(self, store: Store, index: str, committed: Manifest) -> None:
        # Only files named by the older versions go: a change committing the
        # next version writes fresh UUID names that must survive.
        ns = committed.namespace
        ns_prefix = layout.namespace_prefix(index, ns)
        for v in manifests.manifest_versions(store, index, ns):
            if v >= committed.version:
                continue
            try:
                old = manifests.read_manifest(store, index, ns, v)
            except NotFoundError:
                continue
            for rel in old.files():
                store.delete(f"{ns_prefix}/{rel}")
            store.delete(layout.manifest_key(index, ns, v))
        # the log of the deleted namespace: its end is kept in the tombstone
        # (``applied_lsn``), so the namespace created again never replays it
        for lsn in wal.list_lsns(store, index, ns):
            store.delete(wal.entry_key(index, ns, lsn))


class _Apply(_Rules):
    def __init__(self, change: ApplyLog) -> None:
        self.change = change
        if change.manifest.namespace != change.namespace:
            raise ValueError("ApplyLog: the manifest is of another namespace")

    def namespaces(self) -> list[str]:
        return [self.change.namespace]

    def build(self, index: str, ns: str, base: Manifest | None, version: int) -> Manifest:
        have = None if base is None else base.version
        if have != self.change.base_version:
            raise CommitConflictError(
                f'Commit conflict: namespace "{ns}" in index "{index}" is at version {have}, '
                f"not {self.change.base_version} that this change was built on",
                index=index,
                namespace=ns,
                version=version,
            )
        if base is not None and self.change.applied_lsn < (base.applied_lsn or 0):
            raise ValueError(
                f"ApplyLog: applied_lsn {self.change.applied_lsn} is below the base's "
                f"{base.applied_lsn}"
            )
        return self.change.manifest.model_copy(
            update={
                "version": version,
                "import_id": None,
                "parent_version": have,
                "format_version": max(MANIFEST_FORMAT_WAL, self.change.manifest.format_version),
                "applied_lsn": self.change.applied_lsn,
            }
        )


def start_lsn(store: Store, index: str, ns: str, base: Manifest | None) -> int:
    """The log position a manifest starting (or deleting) ``ns`` records: the
    end of its log, or the end its tombstone recorded (the log of a deleted
    namespace is removed), whichever is higher; 0 when it never had a log."""
    floor = 0 if base is None else (base.applied_lsn or 0)
    return max(floor, wal.last_lsn(store, index, ns))


def _rules(store: Store, change: CreateNamespaces | DeleteNamespace | ApplyLog) -> _Rules:
    if isinstance(change, CreateNamespaces):
        return _Create(change, store)
    if isinstance(change, DeleteNamespace):
        return _Delete(change, store)
    return _Apply(change)


# --------------------------------------------------------------- the commit


def apply(
    store: Store,
    index: str,
    change: CreateNamespaces | DeleteNamespace | ApplyLog,
    *,
    guard: Callable[[], None] | None = None,
    retry: RetryPolicy | None = None,
    workers: int | None = None,
    prepared: Sequence[Manifest] = (),
) -> Committed:
    """Commit ``change`` to ``index`` under the rules in the module docstring.

    ``guard`` (e.g. the import driver's cancel check and fence) is called
    before the first manifest write and before the visibility point; whatever
    it raises aborts the commit with nothing visible. Raises the change's
    own errors (IngestError, NotFoundError), :class:`MissingFileError`, or
    :class:`CommitConflictError` when retries are exhausted.

    ``prepared`` (a :class:`CreateNamespaces` only): manifests of the same
    import already written by :func:`prepare` (other namespaces than the
    change's); they become visible with the marker, and are taken back with
    the others if the commit fails before it.
    """
    rules = _rules(store, change)
    policy = retry or RetryPolicy()
    nss = rules.namespaces()
    for m in change.manifests if isinstance(change, CreateNamespaces) else ():
        if m.index != index:
            raise ValueError(f'CreateNamespaces: manifest of index "{m.index}", not "{index}"')
    if prepared and (rules.marker is None or any(m.import_id != rules.marker for m in prepared)):
        raise ValueError("prepared manifests: only of the import a CreateNamespaces commits")
    every = [*nss, *(m.namespace for m in prepared)]
    with _Pool(max(1, min(workers or store.io_threads(MAX_WORKERS), len(nss)))) as pool:
        run = pool.map
        # 1. validate every namespace against its visible state, before any write
        planned = _plan(store, index, rules, nss, run)
        if rules.marker is None:
            check_files(store, index, planned, pool)
        if guard is not None:
            guard()
        # 2. write every manifest; conflicts are settled one namespace at a time
        written: list[Manifest] = list(prepared)
        # the namespace catalog: an import records its namespaces after its
        # marker (one snapshot); other changes through manifests.commit
        pending = catalog.begin(store, index, every) if rules.marker is not None else None
        try:
            _put_all(store, index, rules, planned, policy, run, written)
            # 3. the visibility point
            if rules.marker is not None:
                if guard is not None:
                    guard()
                check_files(store, index, written, pool)  # the prepared ones' too (rule 4)
                manifests.mark_import_committed(store, index, rules.marker)
        except BaseException:
            if rules.marker is not None and _marker_absent(store, index, rules.marker):
                run(lambda m: _unput(store, m), written)  # invisible: take them back
            if pending is not None:
                catalog.abort(store, index, pending, every)
            raise
        if pending is not None:
            catalog.finish(store, index, pending, written)
        by_ns = {m.namespace: m for m in written}
        run(lambda ns: rules.after(store, index, by_ns[ns]), nss)
    return Committed({ns: by_ns[ns] for ns in every})


def prepare(
    store: Store,
    index: str,
    change: CreateNamespaces,
    *,
    guard: Callable[[], None] | None = None,
    retry: RetryPolicy | None = None,
    workers: int | None = None,
) -> tuple[Manifest, ...]:
    """Steps 1 and 2 of :func:`apply` for an import's namespaces, without the
    visibility point: each namespace validated against its visible state and
    its manifest written (invisible: it carries the import id, rule 5); the
    file check (rule 4) stays with ``apply``, right before the marker. The import's workers
    call it for the namespaces they imported (a packed task), so the file
    work of a 10,000-namespace commit runs beside the import instead of
    after it, in the driver; the driver's ``apply(..., prepared=...)`` then
    makes them visible with the marker (docs/commit.md "Prepared
    manifests"). ``guard`` runs before the first write. Raises like
    :func:`apply`; whatever this call wrote is taken back first."""
    rules = _Create(change, store)
    policy = retry or RetryPolicy()
    nss = rules.namespaces()
    written: list[Manifest] = []
    with _Pool(max(1, min(workers or store.io_threads(MAX_WORKERS), len(nss)))) as pool:
        run = pool.map
        planned = _plan(store, index, rules, nss, run)
        if guard is not None:
            guard()
        try:
            _put_all(store, index, rules, planned, policy, run, written)
        except BaseException:
            run(lambda m: _unput(store, m), written)
            raise
    return tuple(written)


def _plan(
    store: Store, index: str, rules: _Rules, nss: Sequence[str], run: Callable[..., list[Any]]
) -> list[Manifest]:
    """Rule 1: each namespace's manifest at the version after its visible state."""
    planned: list[Manifest] = run(lambda ns: rules.plan(store, index, ns), nss)
    return planned


def _never_written(store: Store, index: str, ns: str) -> bool:
    """Whether the namespace's folder has neither manifests nor a log: a new
    namespace of an import (its data files only). One listing instead of
    two (the manifests', the log's): 10,000 namespaces of an import are
    10,000 requests less on an object store. A manifest or log entry written
    after the listing is met as for any other base read: the put's
    write-if-absent and the check after it (:func:`_shadowed`)."""
    children = {k.rsplit("/", 1)[-1] for k in store.ls(layout.namespace_prefix(index, ns))}
    return not children & {
        layout.manifests_prefix(index, ns).rsplit("/", 1)[-1],
        wal.wal_prefix(index, ns).rsplit("/", 1)[-1],
    }


def _put_all(
    store: Store,
    index: str,
    rules: _Rules,
    planned: Sequence[Manifest],
    policy: RetryPolicy,
    run: Callable[..., list[Any]],
    written: list[Manifest],
) -> None:
    """Rule 2: write every planned manifest (appended to ``written`` as they
    land, so a failure leaves them accounted for); conflicts settled one
    namespace at a time (rule 3)."""
    marked = rules.marker is not None
    outcomes = run(lambda m: _try_put(store, m, marked=marked), planned)
    written += [m for m, ok in zip(planned, outcomes, strict=True) if ok is True]
    for ok in outcomes:
        if isinstance(ok, BaseException):
            raise ok
    for m, ok in zip(planned, outcomes, strict=True):
        if ok is False:
            written.append(_settle(store, index, rules, m, policy))


def _next(base: Manifest | None) -> int:
    return 1 if base is None else base.version + 1


def _try_put(store: Store, m: Manifest, *, marked: bool) -> bool | Exception:
    """True if written, False if the version was taken, the error otherwise
    (so that a failed put among many leaves the others accounted for)."""
    try:
        manifests.commit(store, m, catalog=not marked)
        if marked and _shadowed(store, m):
            _unput(store, m)
            return False
    except CommitConflictError:
        return False
    except Exception as exc:
        return exc
    return True


def _shadowed(store: Store, m: Manifest) -> bool:
    """Whether a visible version above ``m`` (an import's manifest, invisible
    until its marker) exists: ``m`` then took a slot that a delete's garbage
    collection had freed, on a stale view of the namespace (a listing racing
    changes to the folder can miss entries), and would never be seen once
    marked. It is taken back and retried like a conflict. (Nothing builds on
    an invisible manifest, so a visible version above it never depends on it.)"""
    if manifests.manifest_versions(store, m.index, m.namespace)[-1:] == [m.version]:
        return False  # the top: the common case, one listing
    latest = manifests.latest_visible(store, m.index, m.namespace)
    return latest is not None and latest.version > m.version


def _marker_absent(store: Store, index: str, import_id: str) -> bool:
    """Whether the marker surely does not exist (a put that failed may still
    have landed; when in doubt, keep the manifests: cleanup decides later)."""
    try:
        return not manifests.import_committed(store, index, import_id)
    except VecstoreError:
        return False


def _unput(store: Store, m: Manifest) -> None:
    with contextlib.suppress(VecstoreError):
        store.delete(layout.manifest_key(m.index, m.namespace, m.version))


def _settle(
    store: Store, index: str, rules: _Rules, lost: Manifest, policy: RetryPolicy
) -> Manifest:
    """Retry one namespace whose version was taken: re-validate against the
    new visible state, or wait for an import in flight; bounded, with backoff."""
    ns, version = lost.namespace, lost.version
    for attempt in range(policy.attempts):
        try:
            holder: Manifest | None = manifests.read_manifest(store, index, ns, version)
        except NotFoundError:  # an import in flight was cleaned up meanwhile
            holder = None
        if holder is not None and not manifests.is_visible(store, holder):
            rules.pending(index, ns, holder)  # raises, or we wait for it
            policy.sleep(attempt)
            base = manifests.latest_visible(store, index, ns)
        else:
            if attempt:
                policy.sleep(attempt)
            base = manifests.latest_visible(store, index, ns)
        m = rules.build(index, ns, base, _next(base))
        ok = _try_put(store, m, marked=rules.marker is not None)
        if isinstance(ok, BaseException):
            raise ok
        if ok:
            return m
        version = m.version
    raise CommitConflictError(
        f'Commit conflict: namespace "{ns}" in index "{index}" kept changing '
        f"({policy.attempts} attempts); try again",
        index=index,
        namespace=ns,
        version=version,
    )


def check_files(
    store: Store,
    index: str,
    committed: Sequence[Manifest],
    pool: _Pool | None = None,
) -> None:
    """MissingFileError naming the first file that ``committed`` references
    and the store lacks; one listing per folder (files are ``data/...``), or
    one existence check where a folder holds one file referenced (a tiny
    namespace's segment: a ``stat`` instead of reading a directory)."""
    wanted: dict[str, list[tuple[str, str]]] = {}  # folder -> [(key, namespace)]
    for m in committed:
        prefix = layout.namespace_prefix(index, m.namespace)
        for rel in m.files():
            key = f"{prefix}/{rel}"
            wanted.setdefault(key.rsplit("/", 1)[0], []).append((key, m.namespace))
    folders = list(wanted)

    def present(folder: str) -> list[str]:
        files = wanted[folder]
        if len(files) == 1:
            return [files[0][0]] if store.exists(files[0][0]) else []
        return list(store.ls(folder))

    listings = (pool or _Pool(1)).map(present, folders)
    for folder, found in zip(folders, listings, strict=True):
        have = set(found)
        for key, ns in wanted[folder]:
            if key not in have:
                raise MissingFileError(
                    f'Commit refused: file "{store.url(key)}" referenced by namespace '
                    f'"{ns or "__default__"}" does not exist (deleted while the change was '
                    "being written?). Nothing was committed.",
                    key=key,
                    namespace=ns,
                )


def exists_message(ns: str) -> str:
    return (
        f'The namespace "{ns or "__default__"}" already exists. Imports are only allowed into '
        "nonexistent namespaces."
    )


class _Pool:
    """A thread pool whose ``map`` keeps order and re-raises the first error;
    serial when one worker suffices (no threads started)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        items = list(items)
        if self.size == 1 or len(items) <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.size, thread_name_prefix="vecstore-commit")
        return list(self._pool.map(fn, items))
