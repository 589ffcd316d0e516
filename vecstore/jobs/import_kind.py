"""The import kind: a bulk import from Parquet files (Pinecone's ``start_import``).

Registered in :data:`vecstore.jobs.kinds.KINDS` as ``"import"``. Its work
runs in :class:`vecstore.pipelines.runner.DaskRunner` (named, not imported:
dependencies point from pipelines to vecstore).
"""

from __future__ import annotations

from vecstore import manifests
from vecstore.cleanup import cleanup_import, finish_staging
from vecstore.jobs.kinds import JobKindSpec
from vecstore.storage import Store


def _cleanup(store: Store, index: str, job_id: str, keep_rejects: bool) -> None:
    cleanup_import(store, index, job_id, keep_rejects=keep_rejects)


def committed_counts(store: Store, index: str, job_id: str) -> dict[str, int]:
    """Records of each namespace the import made visible."""
    return {
        ns: m.record_count
        for ns, m in manifests.list_namespaces(store, index).items()
        if m.import_id == job_id
    }


KIND = JobKindSpec(
    name="import",
    runner="vecstore.pipelines.runner:DaskRunner",
    cleanup=_cleanup,
    finish=finish_staging,
    committed=manifests.import_committed,
    committed_counts=committed_counts,
)

__all__ = ["KIND", "committed_counts"]
