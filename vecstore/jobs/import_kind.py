"""The import kind: a bulk import from Parquet files (Pinecone's ``start_import``).

Registered in :data:`vecstore.jobs.kinds.KINDS` as ``"import"``. Its work
runs in :class:`vecstore.pipelines.runner.DaskRunner` (named, not imported:
dependencies point from pipelines to vecstore).

A batch load (``mode="upsert"``, docs/loads-pipeline.md) is an import job
too. Its commit marker decides it; after the marker its existing namespaces
are *rolled forward*: each namespace's staged load
(``imports/<job>/loads/<ns>.json``) becomes one log entry
(:func:`vecstore.loads.apply`, idempotent) and is folded. The driver does it
after its marker; recovery of a load whose runner died after the marker does
it again (:func:`roll_forward`) before the job is marked Completed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vecstore import layout, manifests
from vecstore.cleanup import cleanup_import, finish_staging
from vecstore.jobs.kinds import JobKindSpec
from vecstore.schemas import IndexSpec
from vecstore.storage import Store

if TYPE_CHECKING:
    from vecstore.loads import StagedLoad

log = logging.getLogger("vecstore.import")


def loads_prefix(index: str, job_id: str) -> str:
    """Where a load's staged loads are (one JSON per existing namespace)."""
    return f"{layout.job_dir(index, job_id)}/loads"


def _cleanup(store: Store, index: str, job_id: str, keep_rejects: bool) -> None:
    committed = manifests.import_committed(store, index, job_id)
    cleanup_import(store, index, job_id, keep_rejects=keep_rejects)
    if not committed:  # a load that did not commit: its staged loads go too
        store.delete_prefix(loads_prefix(index, job_id))


def committed_counts(store: Store, index: str, job_id: str) -> dict[str, int]:
    """Records of each namespace the import (or load) made visible: the
    namespaces it created, and a load's staged records per existing one."""
    counts = {
        ns: m.record_count
        for ns, m in manifests.list_namespaces(store, index).items()
        if m.import_id == job_id
    }
    for staged in _read_staged(store, index, job_id):
        counts[staged.namespace] = staged.records
    return counts


@dataclass(frozen=True)
class LoadOutcome:
    """What a committed load changed, per existing namespace."""

    records: dict[str, int]  # rows upserted
    deleted: dict[str, int]  # ids deleted (named by the delete files)
    prefixes: dict[str, int]  # id prefixes deleted
    lsns: dict[str, int]  # the log entry of each


def _read_staged(store: Store, index: str, job_id: str) -> list[StagedLoad]:
    if not store.ls(loads_prefix(index, job_id)):
        return []  # an import, or a load into new namespaces only
    from vecstore import loads

    return list(loads.read_staged(store, index, job_id))


def read_spec(store: Store, index: str) -> IndexSpec:
    return IndexSpec.model_validate_json(store.read_bytes(layout.index_spec_key(index)))


def roll_forward(
    store: Store, spec: IndexSpec, job_id: str, *, fold: bool = True
) -> LoadOutcome:
    """Apply every staged load of committed load ``job_id`` (one log entry per
    namespace; an entry already appended is found, not appended twice), then
    fold each namespace (a busy builder lease is fine: the background builder
    or the next build folds it). Only called once the load's marker exists."""
    from vecstore import loads

    records: dict[str, int] = {}
    deleted: dict[str, int] = {}
    prefixes: dict[str, int] = {}
    lsns: dict[str, int] = {}
    for staged in loads.read_staged(store, spec.name, job_id):
        lsns[staged.namespace] = loads.apply(store, spec, staged)
        records[staged.namespace] = staged.records
        deleted[staged.namespace] = len(staged.deletes)
        prefixes[staged.namespace] = len(staged.delete_prefixes)
    if fold and lsns:
        from vecstore import background

        try:
            background.build_now(store, spec, list(lsns), wait=False)
        except Exception:  # the load is committed: a fold that fails is redone later
            log.warning("load %s: folding its namespaces failed; left to the builder", job_id,
                        exc_info=True)
    return LoadOutcome(records, deleted, prefixes, lsns)


KIND = JobKindSpec(
    name="import",
    runner="vecstore.pipelines.runner:DaskRunner",
    cleanup=_cleanup,
    finish=finish_staging,
    committed=manifests.import_committed,
    committed_counts=committed_counts,
)

__all__ = ["KIND", "LoadOutcome", "committed_counts", "loads_prefix", "read_spec", "roll_forward"]
