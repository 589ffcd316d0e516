"""A batch load's change to an existing namespace: staged, decided, rolled forward.

A load (``start_import(mode="upsert")``, ``vecstore load``) writes each
existing namespace's records as per-cluster segment files (assigned to the
namespace's centroids on the workers) and describes them in a
:class:`StagedLoad`, kept in the job's folder
(``imports/<job>/loads/<ns>.json``). Nothing is visible yet. The load's
commit marker (``imports/<job>/_COMMITTED``) is the one decision for all its
namespaces; after it, :func:`apply` *rolls forward* each namespace: it
appends the namespace's ONE log entry for the load (op ``load``, the staged
segments by reference, the deleted ids with the id prefixes resolved), so
the load takes one LSN per namespace and every reader and the builder see it
as one upsert. A runner that dies after the marker leaves the roll-forward to
recovery; :func:`apply` is idempotent (a per-namespace done record, and the
log itself searched for the load's entry), so a namespace never gets the
load twice.

Prefix deletes are resolved to ids against the state the entry lands on
(the entry is appended at exactly the next LSN, else resolved again), as a
delete by filter is (docs/write-path.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field

from vecstore import layout, wal
from vecstore.errors import NotFoundError
from vecstore.resolve import id_locations
from vecstore.schemas import ClusterEntry, IndexSpec, Manifest
from vecstore.storage import Store
from vecstore.tail import TailState

__all__ = [
    "StagedLoad",
    "apply",
    "applied_lsn",
    "delete_ids",
    "read_staged",
    "staged_key",
    "write_staged",
]

SEARCH_SLACK = 300.0  # seconds of clock skew tolerated when searching the log


class StagedLoad(BaseModel):
    """One namespace's part of a load (see the module doc). ``segments``:
    (cluster id, path relative to the namespace folder) of the staged segment
    files; ``entries``: their cluster entries (rows, bytes, column stats), in
    the same order, so that the fold attaches them as delta segments without
    writing them again (empty in loads staged before: the fold writes);
    ``centroids``: the centroids file their rows were assigned against (None:
    not assigned, the builder does it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    load_id: str
    namespace: str
    segments: tuple[tuple[int, str], ...] = ()
    entries: tuple[ClusterEntry, ...] = ()
    centroids: str | None = None
    deletes: tuple[str, ...] = ()
    delete_prefixes: tuple[str, ...] = ()
    records: int = Field(default=0, ge=0)
    created_at: float = Field(default_factory=time.time)


def _loads_prefix(index: str, load_id: str) -> str:
    return f"{layout.job_dir(index, load_id)}/loads"


def staged_key(index: str, load_id: str, namespace: str) -> str:
    return f"{_loads_prefix(index, load_id)}/{layout.ns_dir(namespace)}.json"


def _done_key(index: str, load_id: str, namespace: str) -> str:
    return f"{_loads_prefix(index, load_id)}/{layout.ns_dir(namespace)}.lsn"


def write_staged(store: Store, index: str, staged: StagedLoad, *, replace: bool = False) -> None:
    """Record a namespace's part of a load (before the load's commit marker).
    Write-if-absent (AlreadyExistsError if it is there) unless ``replace``: a
    runner presumed dead that wakes after recovery resumed the job never
    replaces the new attempt's staged loads with its own."""
    key = staged_key(index, staged.load_id, staged.namespace)
    data = staged.model_dump_json().encode()
    if replace:
        store.write_bytes(key, data)
    else:
        store.put_if_absent(key, data)


def read_staged(store: Store, index: str, load_id: str) -> list[StagedLoad]:
    """Every namespace's part of a load, in namespace order."""
    out = [
        StagedLoad.model_validate_json(store.read_bytes(key))
        for key in store.ls(_loads_prefix(index, load_id))
        if key.endswith(".json")
    ]
    return sorted(out, key=lambda s: s.namespace)


def applied_lsn(store: Store, index: str, staged: StagedLoad) -> int | None:
    """The LSN of the load's entry in the namespace's log, if it was appended:
    the done record, else the log searched back to when the load was staged."""
    with contextlib.suppress(NotFoundError):
        return int(store.read_bytes(_done_key(index, staged.load_id, staged.namespace)))
    since = staged.created_at - SEARCH_SLACK
    for lsn in reversed(wal.list_lsns(store, index, staged.namespace)):
        try:
            e = wal.read_header(store, index, staged.namespace, lsn)
        except NotFoundError:
            continue
        if e.load_id == staged.load_id:
            return lsn
        if e.created_at < since:
            break
    return None


def delete_ids(
    store: Store, manifest: Manifest, state: TailState, prefixes: Sequence[str]
) -> list[str]:
    """The live ids of the state (clusters and tail) starting with any prefix."""
    if not prefixes:
        return []
    found: set[str] = set()
    if not state.hide_clusters and manifest.id_files:
        ids = id_locations(store, manifest).column("id")
        hit = None
        for p in prefixes:
            m = pc.starts_with(ids, pattern=p)
            hit = m if hit is None else pc.or_(hit, m)
        if hit is not None:
            found.update(i for i in pc.filter(ids, hit).to_pylist() if not state.shadows(i))
    for p in prefixes:
        found.update(state.live_ids(p))
    return sorted(found)


def apply(store: Store, spec: IndexSpec, staged: StagedLoad) -> int:
    """Roll one namespace of a committed load forward; returns its entry's LSN.
    Idempotent (see the module doc)."""
    from vecstore import writes  # (writes imports the reader side; loads stays light)

    index = spec.name
    done = applied_lsn(store, index, staged)
    if done is not None:
        _mark_done(store, index, staged, done)
        return done

    def entry(manifest: Manifest, state: TailState) -> bytes:
        extra = delete_ids(store, manifest, state, staged.delete_prefixes)
        deletes = list(dict.fromkeys([*staged.deletes, *extra]))
        return wal.encode_load(
            staged.load_id,
            staged.segments,
            entries=staged.entries,
            centroids=staged.centroids,
            records=staged.records,
            deletes=deletes,
        )

    if staged.delete_prefixes:
        lsn = writes.resolved_append(store, spec, staged.namespace, entry)
    else:
        manifest = writes.ensure_namespace(store, spec, staged.namespace)
        data = entry(manifest, TailState(spec, manifest.applied_lsn or 0, manifest.version))
        lsn = wal.append(
            store,
            index,
            staged.namespace,
            data,
            floor=manifest.applied_lsn or 0,
            size=staged.records + len(staged.deletes),
        )
    _mark_done(store, index, staged, lsn)
    return lsn


def _mark_done(store: Store, index: str, staged: StagedLoad, lsn: int) -> None:
    store.write_bytes(_done_key(index, staged.load_id, staged.namespace), str(lsn).encode())
