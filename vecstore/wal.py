"""The write-ahead log of a namespace: the truth every write goes through.

Each write (an upsert batch, a delete, an update resolved to full records)
is one immutable log entry::

    indexes/<index>/namespaces/<ns>/_wal/<lsn:020d>.arrow

written with a write-if-absent put. The entry's log sequence number (LSN) is
taken by that put: two writers racing for the same LSN, exactly one wins and
the other retries on the next one. A write is durable, and acknowledged,
when its entry exists; LSNs give the order in which writes apply.

An entry is one Arrow IPC stream: the upserted records in the segment column
layout (:func:`vecstore.schemas.arrow.segment_schema`: ``id``, ``values``,
``sparse_values``, ``metadata`` JSON text, shredded ``m.<kind>.<field>``
columns), uncompressed (float vectors do not compress; 1,000 x 128-d encode
and decode in well under a millisecond), and a JSON header in the schema
metadata (key ``vecstore.wal``) with the deleted ids and ``delete_all``.
Within an entry, ``delete_all`` applies first, then the deleted ids, then
the upserts.

A batch load's entry (op ``load``, entry format 2, so that an older vecstore
refuses it rather than misreading it) holds no rows itself: its header names
the load (``load_id``), the staged segment files the load's workers wrote
(``segments``: cluster id and path relative to the namespace folder), the
centroids file they were assigned against, and the ids it deletes. Reading
it resolves the segments into ``Entry.upserts`` with each row's cluster in
``Entry.clusters``; to every reader and to the builder it is one upsert of
those rows (docs/loads.md).

Entries are immutable, so reads are cached by (store, index, namespace, LSN).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from vecstore import layout
from vecstore.errors import AlreadyExistsError, CommitConflictError, FormatError, NotFoundError
from vecstore.schemas import ClusterEntry
from vecstore.storage import Store

WAL_DIR = "_wal"
HEADER_KEY = b"vecstore.wal"
ENTRY_FORMAT = 1  # what ordinary entries are written with
LOAD_ENTRY_FORMAT = 2  # a batch load's entry (staged segments by reference)
READ_FORMAT = LOAD_ENTRY_FORMAT  # the newest entry format this vecstore reads
CACHE_BYTES = 512 * 1024 * 1024  # decoded entries kept per process
MAX_APPEND_ATTEMPTS = 10_000


def wal_prefix(index: str, namespace: str) -> str:
    return f"{layout.namespace_prefix(index, namespace)}/{WAL_DIR}"


def entry_key(index: str, namespace: str, lsn: int) -> str:
    return f"{wal_prefix(index, namespace)}/{lsn:020d}.arrow"


def lsn_of(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    stem, _, ext = name.partition(".")
    if ext != "arrow" or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


@dataclass(frozen=True, eq=False)
class Entry:
    """One log entry. ``upserts``: full records in segment columns."""

    lsn: int
    upserts: pa.Table
    deletes: tuple[str, ...] = ()
    delete_all: bool = False
    op: str = "upsert"
    created_at: float = field(default_factory=time.time)
    # a batch load's entry (op "load"): see the module doc
    load_id: str | None = None
    segments: tuple[tuple[int, str], ...] = ()
    centroids: str | None = None
    staged: tuple[ClusterEntry, ...] = ()  # the segments' cluster entries (if recorded)
    records: int = -1  # rows of the staged segments (known before they are read)
    clusters: np.ndarray | None = None  # cluster of each upserted row (a resolved load)

    @property
    def size(self) -> int:
        """Records this entry adds to the tail (upserts plus deleted ids)."""
        rows = self.records if self.records >= 0 else int(self.upserts.num_rows)
        return rows + len(self.deletes)

    @property
    def unresolved(self) -> bool:
        """A load entry whose staged segments have not been read into it."""
        return bool(self.segments) and self.upserts.num_rows == 0 and self.records > 0

    @property
    def nbytes(self) -> int:
        return int(self.upserts.nbytes) + sum(len(d) + 50 for d in self.deletes) + 200


def encode(
    upserts: pa.Table | None,
    deletes: Sequence[str] = (),
    *,
    delete_all: bool = False,
    op: str = "upsert",
) -> bytes:
    """The bytes of a log entry (see the module doc)."""
    table = upserts if upserts is not None else pa.table({"id": pa.array([], pa.string())})
    header = {
        "format": ENTRY_FORMAT,
        "op": op,
        "deletes": list(deletes),
        "delete_all": bool(delete_all),
        "created_at": time.time(),
    }
    meta = dict(table.schema.metadata or {})
    meta[HEADER_KEY] = json.dumps(header, separators=(",", ":")).encode()
    table = table.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def encode_load(
    load_id: str,
    segments: Sequence[tuple[int, str]],
    *,
    entries: Sequence[ClusterEntry] = (),
    centroids: str | None,
    records: int,
    deletes: Sequence[str] = (),
) -> bytes:
    """The bytes of a batch load's entry (see the module doc)."""
    table = pa.table({"id": pa.array([], pa.string())})
    header = {
        "format": LOAD_ENTRY_FORMAT,
        "op": "load",
        "load_id": load_id,
        "segments": [[int(c), str(rel)] for c, rel in segments],
        "entries": [e.model_dump(mode="json") for e in entries],
        "centroids": centroids,
        "records": int(records),
        "deletes": list(deletes),
        "delete_all": False,
        "created_at": time.time(),
    }
    table = table.replace_schema_metadata(
        {HEADER_KEY: json.dumps(header, separators=(",", ":")).encode()}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode(lsn: int, data: bytes, *, where: str = "") -> Entry:
    try:
        with pa.ipc.open_stream(pa.py_buffer(data)) as r:
            table = r.read_all()
        raw = (table.schema.metadata or {}).get(HEADER_KEY)
        if raw is None:
            raise ValueError("no vecstore.wal header")
        header = json.loads(raw)
    except (pa.ArrowInvalid, ValueError) as exc:
        raise FormatError(f'Log entry "{where or lsn}" is not valid: {exc}', lsn=lsn) from exc
    if int(header.get("format", 0)) > READ_FORMAT:
        raise FormatError(
            f'Log entry "{where or lsn}" has format {header["format"]}; this vecstore reads up to '
            f"{READ_FORMAT}: upgrade vecstore",
            lsn=lsn,
        )
    table = table.replace_schema_metadata(None)
    return Entry(
        lsn=lsn,
        upserts=table,
        deletes=tuple(header.get("deletes", ())),
        delete_all=bool(header.get("delete_all", False)),
        op=str(header.get("op", "upsert")),
        created_at=float(header.get("created_at", 0.0)),
        load_id=header.get("load_id"),
        segments=tuple((int(c), str(rel)) for c, rel in header.get("segments", ())),
        centroids=header.get("centroids"),
        staged=tuple(ClusterEntry.model_validate(e) for e in header.get("entries", ())),
        records=int(header.get("records", -1)),
    )


def _resolve(store: Store, index: str, namespace: str, entry: Entry) -> Entry:
    """A load entry with its staged segments read (rows in the listed order)."""
    if not entry.segments:
        return entry
    from concurrent.futures import ThreadPoolExecutor

    from vecstore.segments import read_table  # (pyarrow.parquet: only when a load is read)

    prefix = layout.namespace_prefix(index, namespace)
    keys = [f"{prefix}/{rel}" for _, rel in entry.segments]
    with ThreadPoolExecutor(
        max_workers=min(8, len(keys)), thread_name_prefix="vecstore-wal"
    ) as pool:
        parts = list(pool.map(lambda k: read_table(store, k), keys))  # (reads release the GIL)
    clusters = [
        np.full(t.num_rows, cid, dtype=np.int32)
        for (cid, _), t in zip(entry.segments, parts, strict=True)
    ]
    table = pa.concat_tables(parts, promote_options="permissive") if parts else entry.upserts
    return dataclasses.replace(
        entry,
        upserts=table,
        clusters=np.concatenate(clusters) if clusters else None,
        records=table.num_rows,
    )


# ------------------------------------------------------------------ caches

_lock = threading.Lock()
_entries: OrderedDict[tuple[str, str, str, int], Entry] = OrderedDict()
_entries_bytes = 0
_next_hint: dict[tuple[str, str, str], int] = {}  # next LSN to try, per namespace
_written: dict[tuple[str, str, str], int] = {}  # highest LSN this process wrote
_sizes: dict[tuple[str, str, str, int], int] = {}  # Entry.size by LSN
_counted: dict[tuple[str, str, str, int], tuple[float, int, int]] = {}  # pending(): at, high, total


def _ns_key(store: Store, index: str, namespace: str) -> tuple[str, str, str]:
    return (store.uri, index, namespace)


def _remember(key: tuple[str, str, str, int], entry: Entry) -> None:
    global _entries_bytes
    with _lock:
        if key in _entries:
            return
        _entries[key] = entry
        _entries_bytes += entry.nbytes
        while _entries_bytes > CACHE_BYTES and len(_entries) > 1:
            _, old = _entries.popitem(last=False)
            _entries_bytes -= old.nbytes


def last_written(store: Store, index: str, namespace: str) -> int:
    """The highest LSN this process appended to the namespace (0: none)."""
    return _written.get(_ns_key(store, index, namespace), 0)


def clear_caches() -> None:
    global _entries_bytes
    with _lock:
        _entries.clear()
        _entries_bytes = 0
        _next_hint.clear()
        _written.clear()
        _sizes.clear()
        _counted.clear()


# ------------------------------------------------------------------ access


def list_lsns(store: Store, index: str, namespace: str) -> list[int]:
    """Every LSN present in the log, ascending (one listing)."""
    keys = store.ls(wal_prefix(index, namespace))
    return sorted(n for n in (lsn_of(k) for k in keys) if n is not None)


def last_lsn(store: Store, index: str, namespace: str) -> int:
    lsns = list_lsns(store, index, namespace)
    return lsns[-1] if lsns else 0


_marked: set[tuple[str, str, str]] = set()


def mark_logged(store: Store, index: str, namespace: str) -> None:
    """Record (once) that ``namespace`` has a write log, so that stats and
    namespace listings know which namespaces' counts need the log's tail
    and which the catalog alone answers (an import-only namespace)."""
    key = (store.uri, index, namespace)
    if key in _marked:
        return
    with contextlib.suppress(AlreadyExistsError):
        store.put_if_absent(layout.logged_key(index, namespace), b"")
    with _lock:
        _marked.add(key)


def logged_namespaces(store: Store, index: str) -> set[str] | None:
    """The namespaces that have (had) a write log, from one listing; None for
    an index that does not track them (created before markers existed)."""
    names = {k.rsplit("/", 1)[1] for k in store.ls(layout.logged_prefix(index))}
    if layout.LOGGED_TRACKED not in names:
        return None
    return {layout.ns_from_dir(n) for n in names if n != layout.LOGGED_TRACKED}


def append(
    store: Store,
    index: str,
    namespace: str,
    data: bytes,
    *,
    floor: int = 0,
    expect_lsn: int | None = None,
    size: int | None = None,
) -> int:
    """Write one encoded entry at the namespace's next LSN; returns the LSN.

    The next LSN is one past the highest present (and past ``floor``, the
    LSN the visible manifest applied, in case old entries were removed). A
    lost race retries on the following LSN. With ``expect_lsn`` the entry
    must land exactly there (a write resolved against the state up to
    ``expect_lsn - 1``): CommitConflictError if another write took it.
    ``size``: the entry's :attr:`Entry.size`, remembered for :func:`pending`.
    """
    nk = _ns_key(store, index, namespace)
    mark_logged(store, index, namespace)  # before the entry: readers of stats see it
    if expect_lsn is not None:
        lsn = expect_lsn
    else:
        hint = _next_hint.get(nk)
        lsn = max(hint, floor + 1) if hint else max(floor, last_lsn(store, index, namespace)) + 1
    for attempt in range(MAX_APPEND_ATTEMPTS):
        try:
            store.put_if_absent(entry_key(index, namespace, lsn), data)
        except AlreadyExistsError:
            if expect_lsn is not None:
                raise CommitConflictError(
                    f'Log position {lsn} of namespace "{namespace}" in index "{index}" was '
                    "taken by another write",
                    index=index,
                    namespace=namespace,
                    lsn=lsn,
                ) from None
            # another writer took it: skip ahead to the end of the log now
            # and then (a cheap LIST instead of one failed put per entry)
            lsn = (
                lsn + 1 if attempt % 8 < 7 else max(lsn + 1, last_lsn(store, index, namespace) + 1)
            )
            continue
        with _lock:
            _next_hint[nk] = max(_next_hint.get(nk, 0), lsn + 1)
            _written[nk] = max(_written.get(nk, 0), lsn)
            if size is not None:
                _sizes[(*nk, lsn)] = size
        return lsn
    raise CommitConflictError(  # pragma: no cover - needs thousands of concurrent writers
        f'Could not take a log position in namespace "{namespace}" of index "{index}"',
        index=index,
        namespace=namespace,
    )


def read_entry(store: Store, index: str, namespace: str, lsn: int) -> Entry:
    ck = (store.uri, index, namespace, lsn)
    hit = _entries.get(ck)
    if hit is not None:
        return hit
    key = entry_key(index, namespace, lsn)
    entry = decode(lsn, store.read_bytes(key), where=store.url(key))
    _sizes[ck] = entry.size
    entry = _resolve(store, index, namespace, entry)
    _remember(ck, entry)
    return entry


def read_header(store: Store, index: str, namespace: str, lsn: int) -> Entry:
    """The entry without a load's staged rows (its header and inline rows)."""
    hit = _entries.get((store.uri, index, namespace, lsn))
    if hit is not None:
        return hit
    key = entry_key(index, namespace, lsn)
    entry = decode(lsn, store.read_bytes(key), where=store.url(key))
    _sizes[(store.uri, index, namespace, lsn)] = entry.size
    return entry


def pending(store: Store, index: str, namespace: str, after: int, *, max_age: float = 0.0) -> int:
    """Records (upserts plus deleted ids) logged after ``after``: one listing;
    entries are read only if this process neither wrote nor read them yet.

    ``max_age`` > 0: a count listed less than ``max_age`` seconds ago is
    reused, plus this process's own appends since (so a writer lists once per
    ``max_age``, not per request; other processes' entries of the last
    ``max_age`` seconds may be missed: the tail cap is back-pressure, not a
    hard bound)."""
    nk = _ns_key(store, index, namespace)
    ck = (*nk, after)
    now = time.monotonic()
    hit = _counted.get(ck)
    if max_age > 0 and hit is not None and now - hit[0] < max_age:
        _, high, total = hit
        mine = _written.get(nk, 0)
        return total + sum(_sizes.get((*nk, lsn), 0) for lsn in range(high + 1, mine + 1))
    total = 0
    high = after
    for lsn in list_lsns(store, index, namespace):
        if lsn <= after:
            continue
        high = lsn
        size = _sizes.get((store.uri, index, namespace, lsn))
        if size is None:
            try:
                size = read_header(store, index, namespace, lsn).size
            except NotFoundError:
                continue
        total += size
    with _lock:
        _counted[ck] = (now, high, total)
    return total


def read_after(
    store: Store, index: str, namespace: str, after: int, *, upto: int | None = None
) -> list[Entry]:
    """Every entry with ``after < lsn (<= upto)``, in LSN order: one listing
    plus a read per entry not cached yet. Entries removed by retention
    after a newer manifest applied them are skipped (NotFoundError)."""
    out = []
    for lsn in list_lsns(store, index, namespace):
        if lsn <= after or (upto is not None and lsn > upto):
            continue
        try:
            out.append(read_entry(store, index, namespace, lsn))
        except NotFoundError:
            continue
    return out
