"""Load history: which source files were loaded into an index (issue 12 item 3).

A file is *loaded* once a load that staged it has committed. Files are keyed
by ``(file, size, version)``: ``file`` is the source URI joined with the key
relative to it (``s3://exports/emb/books/part-0.parquet``), ``size`` and
``version`` (``etag:...`` or ``mtime:...``, see
:class:`vecstore.pipelines.discover.SourceFile`) are what the listing says. A
file rewritten in place (new etag or mtime, or new size) is new again.

On the store (docs/loads.md "Load history")::

    indexes/<index>/_loadhistory/pending/<load-id>.parquet     staged by a load
    indexes/<index>/_loadhistory/compacted/<seq:020d>.parquet  committed loads, folded

Both have the columns ``file`` (string), ``size`` (int64), ``version``
(string) and ``load_id`` (string).

- :func:`stage` writes a load's pending file **before** the load's commit
  marker (``layout.commit_marker_key(index, load_id)``). A pending file
  counts only while that marker exists: a load that fails, is cancelled or
  dies before its marker never marks its files loaded, and a committed load
  always has them (the marker is written after the pending file).
- :func:`filter_new` splits candidate files into (to load, skipped): one
  listing of ``_loadhistory/``, one read of the newest compacted file, a
  marker check and a read per pending file not folded yet, then one
  ``is_in`` of Arrow arrays (no Python set of the history).
- :func:`compact` (run by :func:`filter_new` once :data:`COMPACT_AFTER`
  committed pending files are waiting) writes the next compacted file
  (write-if-absent: of two compactions racing, one wins and the other does
  nothing), then deletes the pending files it folded and the compacted files
  older than the one it read. A reader that finds a listed file gone lists
  again. Pending files of loads that ended without a marker (Failed,
  Cancelled) are deleted when seen.

Skipping is the caller's choice: a forced load (``--force``) does not call
:func:`filter_new` but still stages its files.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vecstore import layout
from vecstore.errors import AlreadyExistsError, NotFoundError, VecstoreError
from vecstore.storage import Store

__all__ = [
    "COMPACT_AFTER",
    "HISTORY_SCHEMA",
    "Listed",
    "compact",
    "file_url",
    "filter_new",
    "history_prefix",
    "loaded",
    "stage",
]

COMPACT_AFTER = 4
"""Committed pending files that make :func:`filter_new` compact."""
READ_ATTEMPTS = 5  # a reader racing compactions lists again this often

HISTORY_SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("size", pa.int64()),
        ("version", pa.string()),
        ("load_id", pa.string()),
    ]
)


class Listed(Protocol):
    """A listed source file (:class:`vecstore.pipelines.discover.SourceFile`)."""

    @property
    def key(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def version(self) -> str: ...


F = TypeVar("F", bound=Listed)


# ------------------------------------------------------------------ keys


def history_prefix(index: str) -> str:
    return f"{layout.index_prefix(index)}/_loadhistory"


def pending_key(index: str, load_id: str) -> str:
    return f"{history_prefix(index)}/pending/{load_id}.parquet"


def compacted_key(index: str, seq: int) -> str:
    return f"{history_prefix(index)}/compacted/{seq:020d}.parquet"


def file_url(source_uri: str, key: str) -> str:
    """How the history names a source file: the source URI joined with its key."""
    return f"{source_uri.rstrip('/')}/{key.lstrip('/')}"


# ------------------------------------------------------------------- API


def stage(
    store: Store, index: str, load_id: str, files: Sequence[Listed], *, source_uri: str
) -> None:
    """Record that load ``load_id`` loads ``files`` (of ``source_uri``).

    Call it before the load's commit marker is written; it counts once the
    marker exists. Staging again (a resumed attempt) replaces the record.
    Nothing is written for no files.
    """
    if not files:
        store.delete(pending_key(index, load_id))
        return
    table = pa.table(
        {
            "file": pa.array([file_url(source_uri, f.key) for f in files], pa.string()),
            "size": pa.array([f.size for f in files], pa.int64()),
            "version": pa.array([f.version for f in files], pa.string()),
            "load_id": pa.array([load_id] * len(files), pa.string()),
        },
        schema=HISTORY_SCHEMA,
    )
    store.write_bytes(pending_key(index, load_id), _to_parquet(table))


def filter_new(
    store: Store, index: str, files: Sequence[F], *, source_uri: str
) -> tuple[list[F], list[F]]:
    """``(to_load, skipped)``: ``files`` (of ``source_uri``) not yet loaded
    into ``index``, and those already loaded; both in the order given."""
    if not files:
        return [], []
    history = loaded(store, index)
    candidates = _entries(
        pa.array([file_url(source_uri, f.key) for f in files], pa.string()),
        pa.array([f.size for f in files], pa.int64()),
        pa.array([f.version for f in files], pa.string()),
    )
    known = _entries(history["file"], history["size"], history["version"]).combine_chunks()
    seen = pc.is_in(candidates, value_set=known).to_numpy(zero_copy_only=False)
    to_load = [f for f, s in zip(files, seen, strict=True) if not s]
    skipped = [f for f, s in zip(files, seen, strict=True) if s]
    return to_load, skipped


def loaded(store: Store, index: str, *, compact_after: int = COMPACT_AFTER) -> pa.Table:
    """Every loaded file of ``index`` (:data:`HISTORY_SCHEMA`; a file loaded
    twice appears twice). Compacts when ``compact_after`` committed pending
    files are waiting."""
    for attempt in range(READ_ATTEMPTS):
        try:
            state = _read(store, index)
        except NotFoundError:  # a compaction removed a file we listed
            if attempt == READ_ATTEMPTS - 1:
                raise
            continue
        if len(state.committed) >= compact_after:
            _compact(store, index, state)
        return state.table
    raise AssertionError("unreachable")  # pragma: no cover


def compact(store: Store, index: str) -> bool:
    """Fold every committed pending file into a new compacted file; False
    when there was nothing to fold or another compaction won the race."""
    return _compact(store, index, _read(store, index))


# ------------------------------------------------------------- internals


class _State:
    """What one listing of the history found, read."""

    def __init__(
        self, seq: int, older: list[str], table: pa.Table, committed: list[str], stale: list[str]
    ) -> None:
        self.seq = seq  # the newest compacted file's number (0: none)
        self.older = older  # compacted files older than it
        self.table = table  # compacted + committed pending records
        self.committed = committed  # pending keys folded into ``table``
        self.stale = stale  # pending keys already in the compacted file


def _read(store: Store, index: str) -> _State:
    prefix = history_prefix(index)
    compacted: list[tuple[int, str]] = []
    pending: list[tuple[str, str]] = []  # (load id, key)
    for key, _ in store.walk_files(prefix):
        rest = key[len(prefix) + 1 :]
        folder, _, name = rest.partition("/")
        stem, dot, ext = name.partition(".")
        if ext != "parquet" or "/" in name:
            continue
        if folder == "compacted" and stem.isdigit():
            compacted.append((int(stem), key))
        elif folder == "pending" and stem:
            pending.append((stem, key))
    compacted.sort()
    tables: list[pa.Table] = []
    folded: set[str] = set()
    seq = 0
    if compacted:
        seq, newest = compacted[-1]
        base = _from_parquet(store.read_bytes(newest))
        tables.append(base)
        folded = set(pc.unique(base["load_id"]).to_pylist())
    committed: list[str] = []
    stale: list[str] = []
    for load_id, key in pending:
        if load_id in folded:
            stale.append(key)  # folded by a compaction that stopped before deleting it
            continue
        if store.exists(layout.commit_marker_key(index, load_id)):
            tables.append(_from_parquet(store.read_bytes(key)))
            committed.append(key)
        else:
            _drop_if_abandoned(store, index, load_id, key)
    table = pa.concat_tables(tables) if tables else HISTORY_SCHEMA.empty_table()
    return _State(seq, [k for _, k in compacted[:-1]], table, committed, stale)


def _drop_if_abandoned(store: Store, index: str, load_id: str, key: str) -> None:
    """Delete the pending file of a load that ended without its marker."""
    from vecstore.jobs.store import JobStore

    try:
        job = JobStore(store, index).get(load_id)
    except NotFoundError:
        return  # not created yet, or gone: keep (counts for nothing without a marker)
    except VecstoreError:
        return
    if job.done and not store.exists(layout.commit_marker_key(index, load_id)):
        store.delete(key)


def _compact(store: Store, index: str, state: _State) -> bool:
    if not state.committed:
        return False
    try:
        store.put_if_absent(compacted_key(index, state.seq + 1), _to_parquet(state.table))
    except AlreadyExistsError:
        return False  # another compaction won; it folds what we would have
    for key in [*state.committed, *state.stale]:
        store.delete(key)
    for key in state.older:  # keep the one we read: readers may still be on it
        store.delete(key)
    return True


def _entries(file: pa.Array, size: pa.Array, version: pa.Array) -> pa.Array:
    """One string per record: ``file NUL size NUL version``."""
    return pc.binary_join_element_wise(file, pc.cast(size, pa.string()), version, "\x00")


def _to_parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=["load_id", "version"])
    return buf.getvalue()


def _from_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data)).select(HISTORY_SCHEMA.names).cast(HISTORY_SCHEMA)
