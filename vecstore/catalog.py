"""The per-index namespace catalog: every namespace's visible version and
record count in one object, so ``describe_index_stats`` and
``list_namespaces`` cost a few object reads at 10,000 namespaces instead of
two per namespace (issue 9 item 6; docs/catalog.md).

On storage (``vecstore.layout``)::

    indexes/<i>/_catalog/<seq:020d>.json                 immutable snapshots
    indexes/<i>/_catalog/intents/<ms:013d>-<uuid>.json   commits in flight

- **Writers** (:func:`record`, called by :mod:`vecstore.commit` after the
  visibility point and by ``manifests.commit`` for a manifest visible when it
  lands) read the newest snapshot, merge the committed manifests into it
  (per namespace the higher version wins; tombstones are kept) and write
  the next sequence number with a write-if-absent put; a lost race re-reads
  and merges again. The first snapshot of an index is built from a full
  scan of its manifests (indexes written before the catalog existed).
  Older snapshots beyond the newest :data:`KEEP` are deleted.
- **Intents** close the window between a commit becoming visible and the
  snapshot recording it (a crash there): a commit writes an intent naming
  its namespaces before its first manifest, and deletes it once recorded.
- **Readers** (:func:`namespaces`) list ``_catalog/`` once (one request per
  1,000 keys on object stores), read the newest snapshot, and for each
  intent present read the named namespaces' manifests and overlay them
  (the higher version wins): an in-flight or crashed commit is seen as the
  manifests say, whatever the snapshot says. No snapshot at all: the full
  per-namespace scan (``manifests.list_namespaces``), as before.
- An intent older than :data:`INTENT_STALE_SECONDS` belongs to a dead commit:
  the next writer folds it into its snapshot and deletes it.

The catalog is derived data: the manifests stay the truth, and the catalog
never makes a namespace visible or invisible.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from vecstore import layout, manifests
from vecstore.errors import AlreadyExistsError, FormatError, NotFoundError, VecstoreError
from vecstore.schemas import Manifest
from vecstore.storage import Store

__all__ = ["NamespaceEntry", "abort", "begin", "finish", "namespace", "namespaces", "record"]

log = logging.getLogger(__name__)

FORMAT = 1
KEEP = 3  # snapshots kept (readers that listed an older one re-list when it is gone)
ATTEMPTS = 30  # write-if-absent races before giving up (the intent keeps readers right)
INTENT_STALE_SECONDS = 3600.0
READ_WORKERS = 16


@dataclass(frozen=True)
class NamespaceEntry:
    """A namespace as the catalog knows it: its visible manifest's version
    and record count (``deleted``: a tombstone, internal)."""

    version: int
    record_count: int
    deleted: bool = False


Entries = dict[str, NamespaceEntry]


# ------------------------------------------------------------------ readers


def namespaces(store: Store, index: str) -> dict[str, NamespaceEntry]:
    """Every live namespace of ``index`` with its version and record count,
    sorted by name: one listing and one read, plus the reads of commits in
    flight."""
    return {ns: e for ns, e in sorted(_current(store, index).items()) if not e.deleted}


def namespace(store: Store, index: str, ns: str) -> NamespaceEntry | None:
    """One live namespace, from its manifests (one listing and one read:
    cheaper than the whole catalog), or None."""
    m = manifests.load_namespace(store, index, ns)
    return None if m is None else _entry(m)


def _current(store: Store, index: str) -> Entries:
    for _ in range(KEEP + 2):
        snaps, intents = _listing(store, index)
        if not snaps:
            return {ns: _entry(m) for ns, m in manifests.list_namespaces(store, index).items()}
        try:
            entries = _read(store, index, snaps[-1])
        except NotFoundError:  # collected under us: a newer one exists
            continue
        if intents:
            _merge(entries, _visible(store, index, _intent_namespaces(store, intents)))
        return entries
    return {ns: _entry(m) for ns, m in manifests.list_namespaces(store, index).items()}


# ------------------------------------------------------------------ writers


def record(store: Store, index: str, committed: Iterable[Manifest]) -> bool:
    """Merge ``committed`` (visible manifests) into a new snapshot; whether
    it was recorded. Never raises a storage error: the commit is already
    visible, and its intent (kept when this fails) keeps readers right."""
    try:
        _record(store, index, {m.namespace: _entry(m) for m in committed})
    except VecstoreError as exc:
        log.warning('catalog of index "%s" not updated (%s); readers use the intents', index, exc)
        return False
    return True


def _record(store: Store, index: str, updates: Entries) -> None:
    for attempt in range(ATTEMPTS):
        snaps, intents = _listing(store, index)
        stale = [k for k in intents if _intent_age(k) > INTENT_STALE_SECONDS]
        if snaps:
            try:
                entries = _read(store, index, snaps[-1])
            except NotFoundError:
                continue
            seq = snaps[-1] + 1
        else:  # the index's first snapshot: everything committed so far
            entries = _scan(store, index, skip=set(updates))
            seq = 1
        before = dict(entries)
        _merge(entries, updates)
        if stale:
            _merge(entries, _visible(store, index, _intent_namespaces(store, stale)))
        if entries == before and snaps and not stale:
            return  # nothing new (a replay, or merged by a racing writer)
        try:
            store.put_if_absent(layout.catalog_key(index, seq), _dump(seq, entries))
        except AlreadyExistsError:
            time.sleep(random.uniform(0, min(0.5, 0.005 * 2**attempt)))
            continue
        newest, _ = _listing(store, index)
        if newest and newest[-1] > seq:
            # our listing was stale and the slot had been collected: a newer
            # snapshot exists without our update (ours, lower, is ignored)
            continue
        for key in stale:
            _delete(store, key)
        for old in snaps[: max(0, len(snaps) + 1 - KEEP)]:
            _delete(store, layout.catalog_key(index, old))
        return
    raise AlreadyExistsError(
        f'Catalog of index "{index}": {ATTEMPTS} concurrent updates in a row; not updated',
        index=index,
    )


def begin(store: Store, index: str, nss: Sequence[str]) -> str:
    """Before a commit of ``nss`` writes its first manifest: its intent (key)."""
    stamp = f"{int(time.time() * 1000):013d}-{uuid.uuid4().hex}"
    key = f"{layout.catalog_intents_prefix(index)}/{stamp}.json"
    store.write_bytes(key, json.dumps({"namespaces": list(nss)}).encode())
    return key


def finish(store: Store, index: str, key: str, committed: Iterable[Manifest]) -> None:
    """After the visibility point: record ``committed``, then drop the intent
    (kept if recording failed). Never raises a storage error."""
    if record(store, index, committed):
        with contextlib.suppress(VecstoreError):
            _delete(store, key)


def abort(store: Store, index: str, key: str, nss: Sequence[str]) -> None:
    """The commit failed: fold whatever of ``nss`` is visible now and drop
    the intent (or keep it, if that fails). Never raises a storage error."""
    with contextlib.suppress(VecstoreError):
        _record(store, index, _visible(store, index, nss))
        _delete(store, key)


# ------------------------------------------------------------------ helpers


def _entry(m: Manifest) -> NamespaceEntry:
    return NamespaceEntry(m.version, 0 if m.deleted else m.record_count, m.deleted)


def _merge(into: Entries, updates: Entries) -> None:
    for ns, e in updates.items():
        have = into.get(ns)
        if have is None or e.version >= have.version:
            into[ns] = e


def _listing(store: Store, index: str) -> tuple[list[int], list[str]]:
    """(snapshot sequence numbers ascending, intent keys) in one listing."""
    prefix = layout.catalog_prefix(index)
    snaps: list[int] = []
    intents: list[str] = []
    for key, _ in store.walk_files(prefix):
        rest = key[len(prefix) + 1 :]
        if rest.startswith("intents/"):
            if rest.endswith(".json"):
                intents.append(key)
            continue
        stem, _, ext = rest.partition(".")
        if ext == "json" and len(stem) == 20 and stem.isdigit():
            snaps.append(int(stem))
    return sorted(snaps), sorted(intents)


def _read(store: Store, index: str, seq: int) -> Entries:
    key = layout.catalog_key(index, seq)
    raw = store.read_bytes(key)
    try:
        doc = json.loads(raw)
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}")
        return {
            ns: NamespaceEntry(int(v[0]), int(v[1]), bool(v[2]))
            for ns, v in doc["namespaces"].items()
        }
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise FormatError(f'Catalog "{store.url(key)}" is not valid: {exc}', key=key) from exc


def _dump(seq: int, entries: Entries) -> bytes:
    doc = {
        "format": FORMAT,
        "seq": seq,
        "namespaces": {
            ns: [e.version, e.record_count, int(e.deleted)] for ns, e in sorted(entries.items())
        },
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _scan(store: Store, index: str, skip: set[str]) -> Entries:
    """Every namespace's visible state, tombstones included (the first
    snapshot), but those in ``skip`` (just committed: their state is known;
    so the first import into a new index reads no manifest)."""
    nss = [
        layout.ns_from_dir(key.rsplit("/", 1)[-1])
        for key in store.ls(layout.namespaces_prefix(index))
    ]
    return _visible(store, index, [ns for ns in nss if ns not in skip])


def _visible(store: Store, index: str, nss: Iterable[str]) -> Entries:
    names = sorted(set(nss))
    if not names:
        return {}
    markers = manifests.Markers()  # one view: an import in all its namespaces or in none
    with ThreadPoolExecutor(min(READ_WORKERS, len(names))) as pool:
        found = list(
            pool.map(lambda ns: manifests.latest_visible(store, index, ns, markers), names)
        )
    return {ns: _entry(m) for ns, m in zip(names, found, strict=True) if m is not None}


def _intent_namespaces(store: Store, keys: Iterable[str]) -> list[str]:
    out: list[str] = []
    for key in keys:
        try:
            out.extend(json.loads(store.read_bytes(key))["namespaces"])
        except NotFoundError:  # finished meanwhile: recorded in a newer snapshot
            continue
        except (ValueError, KeyError, TypeError) as exc:
            raise FormatError(f'Catalog intent "{store.url(key)}" is not valid: {exc}',
                              key=key) from exc
    return out


def _intent_age(key: str) -> float:
    stem = key.rsplit("/", 1)[-1].split("-", 1)[0]
    return time.time() - int(stem) / 1000 if stem.isdigit() else 0.0


def _delete(store: Store, key: str) -> None:
    with contextlib.suppress(NotFoundError):
        store.delete(key)
