"""Retention: delete the files no version a reader may still hold needs (issue 12 item 5).

``vacuum(store, spec, older_than)`` walks every namespace of an index
(docs/rebuild.md "Retention"). A file is deleted only if **nothing protected
references it and it is older than the retention period** (``older_than``
seconds, default ``VECSTORE_RETENTION_SECONDS``). Protected:

- the visible manifest, and every manifest above it (an import or load in
  flight: invisible until its marker lands);
- every older manifest superseded less than ``older_than`` ago (superseded
  at: ``created_at`` of the next manifest present), since a reader may have
  cached it; and the base version of every running rebuild (it reads it);
- the data files (segments, id files, centroids) any protected manifest
  references, and every data file named for a running job
  (``data/<job-id>-...``);
- the log entries after the lowest ``applied_lsn`` of the protected
  manifests (a reader on an old version replays them), and every entry
  younger than the retention period; and the staged segment files a batch
  load's entry among those names (docs/loads.md).

What goes: data files no protected manifest references (superseded
segments, id files, centroids, a losing builder's orphans), manifests below
the visible one superseded long enough ago, log entries folded into every
protected manifest, and the scratch (staging) files of jobs that finished
longer than the retention period ago. A tombstoned namespace keeps its log
(its ``applied_lsn`` is unknown). Deletes are by key, never by prefix of a
live folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vecstore import layout, manifests, wal
from vecstore.cleanup import finish_staging
from vecstore.errors import NotFoundError, VecstoreError
from vecstore.jobs.store import JobStore
from vecstore.schemas import IndexSpec, Manifest
from vecstore.storage import Store


@dataclass
class VacuumReport:
    older_than: float
    manifests: int = 0
    data_files: int = 0
    log_entries: int = 0
    staging: int = 0
    bytes: int = 0
    kept_versions: dict[str, list[int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _mtime(info: dict[str, Any]) -> float:
    """Modification time of a listed object (local: ``mtime``; S3: ``LastModified``)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        v = info.get(key)
        if isinstance(v, datetime):
            return v.timestamp()
        if isinstance(v, int | float):
            return float(v)
        if isinstance(v, str):
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return time.time()  # unknown: as new as can be, so never deleted


@dataclass(frozen=True)
class _Running:
    owners: frozenset[str]  # job ids whose data files are kept
    bases: dict[str, int]  # namespace -> lowest base version a running rebuild reads


def _running_jobs(
    store: Store, index: str, now: float, older_than: float, report: VacuumReport, dry: bool
) -> _Running:
    jobs = JobStore(store, index)
    owners: set[str] = set()
    bases: dict[str, int] = {}
    for jid in jobs.ids():
        try:
            job = jobs.get(jid)
        except VecstoreError:
            owners.add(jid)  # unreadable: keep what it may own
            continue
        if not job.done:
            owners.add(jid)
            rep = job.report or {}
            ns, base = rep.get("namespace"), rep.get("base_version")
            if isinstance(ns, str) and isinstance(base, int):
                bases[ns] = min(base, bases.get(ns, base))
        elif job.finished_at is not None and now - job.finished_at.timestamp() >= older_than:
            staging = layout.staging_prefix(index, jid)
            if store.walk_files(staging):
                report.staging += 1
                if not dry:
                    finish_staging(store, index, jid)
    return _Running(frozenset(owners), bases)


def _load_segments(
    store: Store, index: str, ns: str, log: list[dict[str, Any]], floor: int
) -> set[str]:
    """Staged segment files named by the load entries a vacuum keeps: every
    entry past ``floor`` (an entry at or below it may go, and its files with
    it, once both are older than the retention period)."""
    keep: set[str] = set()
    for info in log:
        lsn = wal.lsn_of(str(info["key"]))
        if lsn is None or lsn <= floor:
            continue
        try:
            entry = wal.read_header(store, index, ns, lsn)
        except NotFoundError:
            continue
        keep.update(rel for _, rel in entry.segments)
    return keep


def _namespaces(store: Store, index: str) -> list[str]:
    return [
        layout.ns_from_dir(k.rsplit("/", 1)[-1]) for k in store.ls(layout.namespaces_prefix(index))
    ]


def vacuum(
    store: Store,
    spec: IndexSpec,
    older_than: float | None = None,
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> VacuumReport:
    """Delete what no protected version needs (see the module doc)."""
    if older_than is None:
        from vecstore.settings import settings

        older_than = float(settings().retention_seconds)
    older_than = max(0.0, float(older_than))
    now = time.time() if now is None else now
    report = VacuumReport(older_than)
    running = _running_jobs(store, spec.name, now, older_than, report, dry_run)
    for ns in _namespaces(store, spec.name):
        _vacuum_namespace(store, spec, ns, now, older_than, running, report, dry_run)
    return report


def _vacuum_namespace(
    store: Store,
    spec: IndexSpec,
    ns: str,
    now: float,
    older_than: float,
    running: _Running,
    report: VacuumReport,
    dry: bool,
) -> None:
    index = spec.name
    visible = manifests.latest_visible(store, index, ns)
    if visible is None:
        return  # nothing visible (an import in flight, or a folder being removed): leave it
    versions = manifests.manifest_versions(store, index, ns)
    present: dict[int, Manifest] = {}
    for v in versions:
        try:
            present[v] = manifests.read_manifest(store, index, ns, v)
        except NotFoundError:
            continue
        except VecstoreError:
            return  # an unreadable manifest: touch nothing here
    protected: list[Manifest] = []
    doomed: list[int] = []
    above = sorted(present)
    for i, v in enumerate(above):
        m = present[v]
        if v >= visible.version:
            protected.append(m)
            continue
        successor = present[above[i + 1]]
        superseded_at = successor.created_at.timestamp()
        if now - superseded_at < older_than or v >= running.bases.get(ns, v + 1):
            protected.append(m)
        else:
            doomed.append(v)
    report.kept_versions[ns] = [m.version for m in protected]
    keep = {f for m in protected for f in m.files()}
    live = [m for m in protected if not m.deleted]
    floor = min((m.applied_lsn or 0) for m in live) if live else 0
    log = store.ls(wal.wal_prefix(index, ns), detail=True)
    # a batch load's staged segments live as long as its log entry
    keep |= _load_segments(store, index, ns, log, floor)
    # data files
    data_prefix = layout.data_prefix(index, ns)
    ns_prefix = layout.namespace_prefix(index, ns)
    for info in store.ls(data_prefix, detail=True):
        if info.get("type") == "directory":
            continue
        key = str(info["key"])
        rel = key[len(ns_prefix) + 1 :]
        name = key.rsplit("/", 1)[-1]
        if rel in keep or now - _mtime(info) < older_than:
            continue
        if any(name.startswith(f"{o}-") for o in running.owners):
            continue
        report.data_files += 1
        report.bytes += int(info.get("size") or 0)
        if not dry:
            store.delete(key)
    # log entries folded into every protected manifest
    if not visible.deleted:
        for info in log:
            lsn = wal.lsn_of(str(info["key"]))
            if lsn is None or lsn > floor or now - _mtime(info) < older_than:
                continue
            report.log_entries += 1
            report.bytes += int(info.get("size") or 0)
            if not dry:
                store.delete(str(info["key"]))
    # superseded manifests, oldest first
    for v in doomed:
        report.manifests += 1
        if not dry:
            store.delete(layout.manifest_key(index, ns, v))


__all__ = ["VacuumReport", "vacuum"]
