"""Namespace manifests on storage: read them, decide what is visible, and the
two primitive writes the commit is made of.

The rules for *changing* a namespace (which version, conflicts, the import
marker, checking files) live in :mod:`vecstore.commit`; every change goes
through ``commit.apply``. This module is what readers need:

- the manifest of version ``v`` is ``namespaces/<ns>/_manifests/<v:020d>.json``,
  written once with a write-if-absent put (:func:`commit`);
- a manifest that carries ``import_id`` is visible only once that import's
  commit marker ``imports/<id>/_COMMITTED`` exists (:func:`mark_import_committed`),
  so all the namespaces of one import appear together or not at all;
- readers take the highest visible version; a visible ``deleted`` manifest (a
  tombstone) means the namespace does not exist.
"""

from __future__ import annotations

import contextlib
import threading

from vecstore import layout
from vecstore.errors import AlreadyExistsError, CommitConflictError, FormatError, NotFoundError
from vecstore.schemas import Manifest
from vecstore.storage import Store

_committed_cache: set[tuple[str, str, str]] = set()
_cache_lock = threading.Lock()


def manifest_versions(store: Store, index: str, namespace: str) -> list[int]:
    """Every manifest version present (visible or not), ascending."""
    keys = store.ls(layout.manifests_prefix(index, namespace))
    versions = [layout.version_of_manifest(k) for k in keys]
    return sorted(v for v in versions if v is not None)


def read_manifest(store: Store, index: str, namespace: str, version: int) -> Manifest:
    key = layout.manifest_key(index, namespace, version)
    raw = store.read_bytes(key)
    try:
        return Manifest.model_validate_json(raw)
    except ValueError as exc:
        raise FormatError(f'Manifest "{store.url(key)}" is not valid: {exc}', key=key) from exc


def import_committed(store: Store, index: str, import_id: str) -> bool:
    """Whether an import's commit marker exists (positive answers are cached)."""
    ck = (store.uri, index, import_id)
    if ck in _committed_cache:
        return True
    if store.exists(layout.commit_marker_key(index, import_id)):
        with _cache_lock:
            _committed_cache.add(ck)
        return True
    return False


class Markers:
    """Import markers checked once for a read of several namespaces: in that
    view an import is visible in all of its namespaces or in none (without
    it, a marker landing between two namespaces' checks showed one of them
    and not the other). Thread-safe: of two concurrent first checks, the
    first answer recorded is the one every reader gets."""

    def __init__(self) -> None:
        self._seen: dict[str, bool] = {}

    def committed(self, store: Store, index: str, import_id: str) -> bool:
        got = self._seen.get(import_id)
        if got is None:
            got = self._seen.setdefault(import_id, import_committed(store, index, import_id))
        return got


def is_visible(store: Store, manifest: Manifest, markers: Markers | None = None) -> bool:
    if manifest.import_id is None:
        return True
    if markers is not None:
        return markers.committed(store, manifest.index, manifest.import_id)
    return import_committed(store, manifest.index, manifest.import_id)


RELISTS = 5


def latest_visible(
    store: Store, index: str, namespace: str, markers: Markers | None = None
) -> Manifest | None:
    """The highest visible manifest (a tombstone included), or None.
    ``markers``: shared by the reads of one view of several namespaces.

    A listed version that is gone when read was collected under us (a delete
    removes the versions below its tombstone; cleanup removes a failed
    import's): the listing is stale and a newer version exists, so list
    again. Skipping it instead could answer None for a namespace that was
    deleted at version 10, and a commit would then reuse version 1, below the
    tombstone, invisible.
    """
    for attempt in range(RELISTS + 1):
        stale = False
        for version in reversed(manifest_versions(store, index, namespace)):
            try:
                m = read_manifest(store, index, namespace, version)
            except NotFoundError:
                if attempt < RELISTS:
                    stale = True
                    break
                continue  # still racing after RELISTS listings: skip it
            if is_visible(store, m, markers):
                return m
        if not stale:
            return None
    return None  # pragma: no cover - the last pass never sets stale


def load_namespace(
    store: Store, index: str, namespace: str, markers: Markers | None = None
) -> Manifest | None:
    """The visible, live manifest of a namespace, or None if it does not exist."""
    m = latest_visible(store, index, namespace, markers)
    return None if m is None or m.deleted else m


def list_namespaces(store: Store, index: str) -> dict[str, Manifest]:
    """Every live namespace of an index with its visible manifest (one view:
    an import is visible in all of its namespaces or in none)."""
    out: dict[str, Manifest] = {}
    markers = Markers()
    for key in store.ls(layout.namespaces_prefix(index)):
        ns = layout.ns_from_dir(key.rsplit("/", 1)[-1])
        m = load_namespace(store, index, ns, markers)
        if m is not None:
            out[ns] = m
    return dict(sorted(out.items()))


def next_version(store: Store, index: str, namespace: str) -> int:
    """The version after the highest present, visible or not (for tools and
    tests writing a namespace directly; ``commit.apply`` writes the version
    after the *visible* state)."""
    versions = manifest_versions(store, index, namespace)
    return (versions[-1] + 1) if versions else 1


def commit(store: Store, manifest: Manifest, *, catalog: bool = True) -> Manifest:
    """Write ``manifest`` with write-if-absent; CommitConflictError if taken.

    The primitive put: changes go through :func:`vecstore.commit.apply`, which
    chooses the version and settles conflicts. With ``catalog`` (the
    default), the index's namespace catalog follows (:mod:`vecstore.catalog`):
    an intent before the put, and a manifest visible when it lands is
    recorded after it (an import's manifest keeps its intent until a later
    writer folds it; ``commit.apply`` records its imports itself)."""
    from vecstore import catalog as catalogs  # the catalog reads this module

    key = layout.manifest_key(manifest.index, manifest.namespace, manifest.version)
    pending = catalogs.begin(store, manifest.index, [manifest.namespace]) if catalog else None
    try:
        store.put_if_absent(key, manifest.model_dump_json(indent=1).encode())
    except AlreadyExistsError:
        if pending is not None:
            catalogs.abort(store, manifest.index, pending, [manifest.namespace])
        raise CommitConflictError(
            f'Commit conflict: version {manifest.version} of namespace "{manifest.namespace}" '
            f'in index "{manifest.index}" was committed by another writer',
            index=manifest.index,
            namespace=manifest.namespace,
            version=manifest.version,
        ) from None
    except BaseException:
        if pending is not None:
            catalogs.abort(store, manifest.index, pending, [manifest.namespace])
        raise
    if pending is not None and manifest.import_id is None:
        catalogs.finish(store, manifest.index, pending, [manifest])
    return manifest


def mark_import_committed(store: Store, index: str, import_id: str) -> None:
    """The commit point of an import (written by ``commit.apply``): idempotent."""
    with contextlib.suppress(AlreadyExistsError):
        store.put_if_absent(layout.commit_marker_key(index, import_id), b"committed\n")
    with _cache_lock:
        _committed_cache.add((store.uri, index, import_id))


def delete_namespace(store: Store, index: str, namespace: str) -> Manifest:
    """Delete a namespace (a tombstone, then its older files): shorthand for
    ``commit.apply(store, index, DeleteNamespace(namespace=...))``."""
    from vecstore import commit as commits  # the commit module reads this one

    change = commits.DeleteNamespace(namespace=namespace)
    return commits.apply(store, index, change).manifests[namespace]
