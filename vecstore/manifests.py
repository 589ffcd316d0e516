"""Namespace manifests: read the visible version, commit the next one.

Commit protocol (one place, used by imports, deletes and rebuilds):

1. Data files are written first under ``data/`` with fresh UUID names; nobody
   reads them until a manifest names them.
2. The manifest of version ``v`` is written with a write-if-absent put. Two
   writers racing for ``v``: exactly one succeeds, the other gets
   :class:`CommitConflictError`.
3. A manifest written by an import carries ``import_id``. It becomes visible
   only once that import's commit marker (``imports/<id>/_COMMITTED``) exists,
   so all the namespaces of one import appear together or not at all. A
   crashed or failed import leaves manifests without a marker: they are
   invisible and recovery deletes them.

Readers take the highest version that is visible; a visible ``deleted``
manifest (a tombstone) means the namespace does not exist.
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


def is_visible(store: Store, manifest: Manifest) -> bool:
    return manifest.import_id is None or import_committed(store, manifest.index, manifest.import_id)


def latest_visible(store: Store, index: str, namespace: str) -> Manifest | None:
    """The highest visible manifest (a tombstone included), or None."""
    for version in reversed(manifest_versions(store, index, namespace)):
        try:
            m = read_manifest(store, index, namespace, version)
        except NotFoundError:  # deleted under us by garbage collection
            continue
        if is_visible(store, m):
            return m
    return None


def load_namespace(store: Store, index: str, namespace: str) -> Manifest | None:
    """The visible, live manifest of a namespace, or None if it does not exist."""
    m = latest_visible(store, index, namespace)
    return None if m is None or m.deleted else m


def list_namespaces(store: Store, index: str) -> dict[str, Manifest]:
    """Every live namespace of an index with its visible manifest."""
    out: dict[str, Manifest] = {}
    for key in store.ls(layout.namespaces_prefix(index)):
        ns = layout.ns_from_dir(key.rsplit("/", 1)[-1])
        m = load_namespace(store, index, ns)
        if m is not None:
            out[ns] = m
    return dict(sorted(out.items()))


def next_version(store: Store, index: str, namespace: str) -> int:
    versions = manifest_versions(store, index, namespace)
    return (versions[-1] + 1) if versions else 1


def commit(store: Store, manifest: Manifest) -> Manifest:
    """Write ``manifest`` with write-if-absent; CommitConflictError if taken."""
    key = layout.manifest_key(manifest.index, manifest.namespace, manifest.version)
    try:
        store.put_if_absent(key, manifest.model_dump_json(indent=1).encode())
    except AlreadyExistsError:
        raise CommitConflictError(
            f'Commit conflict: version {manifest.version} of namespace "{manifest.namespace}" '
            f'in index "{manifest.index}" was committed by another writer',
            index=manifest.index,
            namespace=manifest.namespace,
            version=manifest.version,
        ) from None
    return manifest


def mark_import_committed(store: Store, index: str, import_id: str) -> None:
    """The commit point of an import: idempotent."""
    with contextlib.suppress(AlreadyExistsError):
        store.put_if_absent(layout.commit_marker_key(index, import_id), b"committed\n")
    with _cache_lock:
        _committed_cache.add((store.uri, index, import_id))


def delete_namespace(store: Store, index: str, namespace: str) -> Manifest:
    """Write a tombstone version, then remove the data files and old manifests.

    Readers see the namespace whole or not at all: the tombstone is one
    write-if-absent put; files are removed only after it landed.
    """
    current = load_namespace(store, index, namespace)
    if current is None:
        raise NotFoundError(
            f'Namespace "{namespace}" not found in index "{index}"',
            index=index,
            namespace=namespace,
        )
    tomb = Manifest(
        index=index,
        namespace=namespace,
        version=next_version(store, index, namespace),
        deleted=True,
        vector_type=current.vector_type,
        metric=current.metric,
        dimension=current.dimension,
        parent_version=current.version,
    )
    commit(store, tomb)
    # Only files named by the older versions go: an import racing for the
    # next version writes fresh UUID names that must survive.
    ns_prefix = layout.namespace_prefix(index, namespace)
    for v in manifest_versions(store, index, namespace):
        if v >= tomb.version:
            continue
        try:
            old = read_manifest(store, index, namespace, v)
        except NotFoundError:
            continue
        for rel in old.files():
            store.delete(f"{ns_prefix}/{rel}")
        store.delete(layout.manifest_key(index, namespace, v))
    return tomb
