"""Remove what a failed, cancelled or abandoned import wrote.

Data files of an import are named ``data/<import-id>-<uuid>...``; its
manifests carry ``import_id``. Nothing is removed once the import's commit
marker exists (then its files are live data).
"""

from __future__ import annotations

from vecstore import layout, manifests
from vecstore.storage import Store


def cleanup_import(store: Store, index: str, job_id: str, *, keep_rejects: bool = True) -> None:
    """Delete staging files, uncommitted manifests and orphan data files of ``job_id``."""
    if manifests.import_committed(store, index, job_id):
        finish_staging(store, index, job_id)
        return
    for ns_key in store.ls(layout.namespaces_prefix(index)):
        ns = layout.ns_from_dir(ns_key.rsplit("/", 1)[-1])
        for v in manifests.manifest_versions(store, index, ns):
            try:
                m = manifests.read_manifest(store, index, ns, v)
            except Exception:
                continue
            if m.import_id == job_id:
                store.delete(layout.manifest_key(index, ns, v))
        prefix = layout.data_prefix(index, ns)
        for key in store.ls(prefix):
            if layout.written_by(key, job_id):
                store.delete(key)
        _drop_if_empty(store, index, ns)
    finish_staging(store, index, job_id)
    if not keep_rejects:
        store.delete_prefix(layout.rejects_prefix(index, job_id))


def cleanup_attempt(store: Store, index: str, staging: str, owner: str) -> None:
    """Delete what one *superseded* attempt of an import wrote: its scratch
    prefix ``staging`` and its data files (named ``<owner>-...``); nothing else
    of the job, whose newer attempt owns its manifests, marker and files."""
    for ns_key in store.ls(layout.namespaces_prefix(index)):
        ns = layout.ns_from_dir(ns_key.rsplit("/", 1)[-1])
        mine = [k for k in store.ls(layout.data_prefix(index, ns)) if layout.written_by(k, owner)]
        if mine:  # a manifest its workers prepared (invisible: no marker) goes too
            _drop_manifests(store, index, ns, owner)
        for key in mine:
            store.delete(key)
    store.delete_prefix(staging)


def _drop_manifests(store: Store, index: str, ns: str, owner: str) -> None:
    """Delete the manifests of ``ns`` that reference a data file of ``owner``."""
    for v in manifests.manifest_versions(store, index, ns):
        try:
            m = manifests.read_manifest(store, index, ns, v)
        except Exception:
            continue
        if any(layout.written_by(rel, owner) for rel in m.files()):
            store.delete(layout.manifest_key(index, ns, v))


def finish_staging(store: Store, index: str, job_id: str) -> None:
    store.delete_prefix(layout.staging_prefix(index, job_id))


def _drop_if_empty(store: Store, index: str, ns: str) -> None:
    """Remove a namespace directory that holds nothing (local stores keep dirs)."""
    if not store.has_directories:
        return
    prefix = layout.namespace_prefix(index, ns)
    if not store.walk_files(prefix):
        store.delete_prefix(prefix)
