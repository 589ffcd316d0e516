"""Online writes: upsert, update, delete of records in a namespace.

Each request is validated whole first (limits of ``004_*.txt`` and the
record rules of imports), then written as one log entry
(:mod:`vecstore.wal`); a rejected request writes nothing. Update-by-id is
resolved to the full new record, delete / update by filter to the matching
ids, against the namespace state at one LSN; the entry must then take the
very next LSN, else the resolution is redone (no lost update).

These are the functions ``Index.upsert / update / delete`` call.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from vecstore import commit, layout, manifests, wal
from vecstore.errors import (
    AlreadyExistsError,
    CommitConflictError,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
)
from vecstore.query.filters import canonical, parse_filter
from vecstore.records import validate_batch
from vecstore.resolve import cluster_rows_by_filter, cluster_rows_by_id
from vecstore.schemas import IndexSpec, Manifest
from vecstore.schemas.arrow import SPARSE_TYPE
from vecstore.storage import Store
from vecstore.tail import TailState, tail_cap, tail_reader

MAX_RECORDS = 1_000
MAX_REQUEST_BYTES = 2_000_000  # Pinecone's 2 MB: 4 bytes a dimension plus metadata and id
MAX_DENSE_DIMENSION = 20_000
MAX_DELETE_IDS = 1_000
DATAFRAME_BATCH = 500  # the SDK's upsert_from_dataframe default
RESOLVE_ATTEMPTS = 50

_RECORD_KEYS = frozenset({"id", "values", "sparse_values", "metadata"})
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Raw:
    id: Any
    values: Any
    sparse: Any
    metadata: Any


# ------------------------------------------------------------ normalising


def _bad(i: int, rid: Any, what: str) -> InvalidArgumentError:
    shown = f' (id "{rid}")' if isinstance(rid, str) else ""
    return InvalidArgumentError(f"Invalid record {i}{shown}: {what}", row=i, id=rid)


def _raw(i: int, r: Any) -> _Raw:
    if type(r) is dict or isinstance(r, Mapping):
        if not _RECORD_KEYS.issuperset(r.keys()):
            extra = set(r) - _RECORD_KEYS
            raise _bad(
                i,
                r.get("id"),
                f"unknown field(s) {sorted(map(str, extra))}; a record has id, values, "
                "sparse_values and metadata",
            )
        if "id" not in r:
            raise _bad(i, None, "missing id")
        return _Raw(r["id"], r.get("values"), r.get("sparse_values"), r.get("metadata"))
    if isinstance(r, tuple):
        if len(r) == 2:
            return _Raw(r[0], r[1], None, None)
        if len(r) == 3:
            return _Raw(r[0], r[1], None, r[2])
        raise _bad(
            i, r[0] if r else None, "a tuple record is (id, values) or (id, values, metadata)"
        )
    if hasattr(r, "id"):
        return _Raw(
            r.id,
            getattr(r, "values", None),
            getattr(r, "sparse_values", None),
            getattr(r, "metadata", None),
        )
    raise _bad(i, None, f"expected a dict, a tuple or an object with .id, got {type(r).__name__}")


def _sparse_dict(i: int, rid: Any, sv: Any) -> dict[str, Any] | None:
    if sv is None:
        return None
    if isinstance(sv, Mapping):
        indices, values = sv.get("indices"), sv.get("values")
    else:
        indices, values = getattr(sv, "indices", None), getattr(sv, "values", None)
    if indices is None or values is None:
        raise _bad(i, rid, "sparse_values needs indices and values")
    try:
        return {
            "indices": [int(x) for x in indices],
            "values": [float(x) for x in values],
        }
    except (TypeError, ValueError):
        raise _bad(i, rid, "sparse_values indices must be integers and values numbers") from None


def _values_column(vals: Sequence[Any], ids: Sequence[str], spec: IndexSpec) -> pa.Array:
    if not all(type(v) is list for v in vals):
        for i, v in enumerate(vals):
            if v is not None and isinstance(v, str | bytes | Mapping):
                raise _bad(i, ids[i], f"values must be a list of numbers, got {type(v).__name__}")
    d = int(spec.dimension or 0)
    if all(v is not None for v in vals):
        try:
            mat = np.asarray(vals, dtype=np.float32)
        except (ValueError, TypeError):
            mat = None
        if mat is not None and mat.ndim == 2 and mat.shape[1] == d:
            return pa.FixedSizeListArray.from_arrays(pa.array(mat.reshape(-1)), d)
    out: list[np.ndarray | None] = []
    for i, v in enumerate(vals):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(np.asarray(v, dtype=np.float64).reshape(-1))
        except (ValueError, TypeError):
            raise _bad(i, ids[i], "values must be a list of numbers") from None
    return pa.array(out, pa.list_(pa.float64()))


def _json_encoder() -> Callable[[Any], str]:
    """``_JSON.encode`` for one metadata object, without building an encoder
    per call (the C encoder json.dumps uses; no circular check: a circular
    object ends in RecursionError, reported like any unserialisable one)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has the C accelerator
        return _JSON.encode
    enc = make(
        None, _JSON.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )

    def encode(obj: Any) -> str:
        return "".join(enc(obj, 0))

    return encode


_encode_json = _json_encoder()


def _metadata_text(i: int, rid: Any, meta: Any) -> str | None:
    if meta is None:
        return None
    if type(meta) is not dict:
        if not isinstance(meta, Mapping):
            raise _bad(i, rid, f"metadata must be an object, got {type(meta).__name__}")
        meta = dict(meta)
    try:
        return _encode_json(meta)
    except (TypeError, ValueError, RecursionError) as exc:
        if isinstance(exc, RecursionError):
            exc = ValueError("Circular reference detected")
        raise _bad(i, rid, f"metadata is not JSON-serialisable: {exc}") from None


def _metadata_texts(ids: Sequence[str], metas: Sequence[Any]) -> list[str | None]:
    if all(m is None or type(m) is dict for m in metas):
        try:  # the common case in one comprehension; errors are named below
            return [None if m is None else _encode_json(m) for m in metas]
        except (TypeError, ValueError, RecursionError):
            pass
    return [_metadata_text(i, rid, m) for i, (rid, m) in enumerate(zip(ids, metas, strict=True))]


def _request_bytes(
    ids: Sequence[str],
    vals: Sequence[Any],
    sparse: Sequence[dict[str, Any] | None],
    metas: Sequence[str | None],
) -> int:
    """Pinecone's request size: 4 bytes a dimension, 8 per sparse non-zero,
    plus ids and metadata JSON (characters: a lower bound of UTF-8 bytes)."""
    total = sum(map(len, ids)) + sum(len(m) for m in metas if m is not None)
    with contextlib.suppress(TypeError):  # not a list: the values column names the record
        total += 4 * sum(len(v) for v in vals if v is not None)
    total += 8 * sum(len(s["indices"]) for s in sparse if s is not None)
    return total


@dataclass(frozen=True, slots=True)
class _Columns:
    ids: list[str]
    values: list[Any]
    sparse: list[dict[str, Any] | None]
    metadata: list[Any]


def _fast_columns(records: Sequence[Any], spec: IndexSpec) -> _Columns | None:
    """The columns of a request of plain dicts in one pass per field, or None
    when any record needs the per-record path (which names the error)."""
    if not all(type(r) is dict for r in records):
        return None
    if not all(r.keys() <= _RECORD_KEYS and "id" in r for r in records):
        return None
    ids = [r["id"] for r in records]
    if not all(type(x) is str for x in ids):
        return None
    values = [r.get("values") for r in records]
    raw_sparse = [r.get("sparse_values") for r in records]
    has_sparse = any(s is not None for s in raw_sparse)
    if spec.record_layout == "dense" and has_sparse:
        return None
    try:
        if spec.record_layout == "sparse" and any(v is not None and len(v) for v in values):
            return None
    except TypeError:
        return None
    sparse: list[dict[str, Any] | None] = (
        [
            None if sv is None else _sparse_dict(i, rid, sv)
            for i, (rid, sv) in enumerate(zip(ids, raw_sparse, strict=True))
        ]
        if has_sparse
        else raw_sparse
    )
    return _Columns(ids, values, sparse, [r.get("metadata") for r in records])


def _columns(records: Sequence[Any], spec: IndexSpec) -> _Columns:
    """The request's fields, checked record by record (errors name the first bad record)."""
    fast = _fast_columns(records, spec)
    if fast is not None:
        return fast
    cols = _Columns([], [], [], [])
    for i, r in enumerate(records):
        raw = _raw(i, r)
        if not isinstance(raw.id, str):
            raise _bad(i, None, f"id must be a string, got {type(raw.id).__name__}")
        sparse = None if raw.sparse is None else _sparse_dict(i, raw.id, raw.sparse)
        if spec.record_layout == "sparse" and raw.values is not None and len(raw.values):
            raise _bad(i, raw.id, "Upserting dense vectors is not supported for sparse indexes")
        if spec.record_layout == "dense" and sparse is not None:
            raise _bad(
                i,
                raw.id,
                f'sparse_values need an index with metric dotproduct; index "{spec.name}" uses '
                f"{spec.metric}",
            )
        cols.ids.append(raw.id)
        cols.values.append(raw.values)
        cols.sparse.append(sparse)
        cols.metadata.append(raw.metadata)
    return cols


def normalize(
    records: Sequence[Any], spec: IndexSpec, *, what: str = "upsert", limits: bool = True
) -> pa.Table:
    """Validate one request's records; their segment table (all or an error).

    Errors name the record (its position in the request and its id).
    ``limits=False``: no request-size limits (records the system resolved
    itself, e.g. an update by filter). Plain dict records take a columnar
    path (no per-record Python beyond one comprehension per field); any
    other form, or any record in error, the per-record one."""
    n = len(records)
    if limits and n > MAX_RECORDS:
        raise InvalidArgumentError(
            f"An {what} request takes at most {MAX_RECORDS:,} records, got {n:,}: "
            "pass batch_size to split it",
            limit=MAX_RECORDS,
        )
    if spec.record_layout != "sparse" and int(spec.dimension or 0) > MAX_DENSE_DIMENSION:
        raise InvalidArgumentError(f"Dense dimension above {MAX_DENSE_DIMENSION:,}")
    c = _columns(records, spec)
    metas = _metadata_texts(c.ids, c.metadata)
    if limits:
        size = _request_bytes(c.ids, c.values, c.sparse, metas)
        if size > MAX_REQUEST_BYTES:
            raise InvalidArgumentError(
                f"An {what} request is at most 2 MB; these {n:,} records are about {size:,} "
                "bytes: use smaller batches",
                limit=MAX_REQUEST_BYTES,
            )
    cols: dict[str, pa.Array] = {"id": pa.array(c.ids, pa.string())}
    if spec.record_layout != "sparse":
        cols["values"] = _values_column(c.values, c.ids, spec)
    if spec.record_layout != "dense":
        cols["sparse_values"] = pa.array(
            c.sparse,
            pa.struct([("indices", pa.list_(pa.int64())), ("values", pa.list_(pa.float64()))]),
        )
    cols["metadata"] = pa.array(metas, pa.string())
    batch = pa.RecordBatch.from_pydict(cols)
    checked = validate_batch(batch, spec.record_layout, spec.dimension, f"{what} request", 0)
    if checked.rejects:
        rej = checked.rejects[0]
        more = len(checked.rejects) - 1
        tail = f" ({more} more invalid record{'s' if more > 1 else ''})" if more else ""
        raise InvalidArgumentError(
            f'Invalid record {rej.row} (id "{rej.id}"): {rej.message}{tail}; nothing was written',
            row=rej.row,
            id=rej.id,
            code=rej.code,
        )
    table: pa.Table = checked.table
    if spec.record_layout != "dense" and "sparse_values" in table.column_names:
        table = table.set_column(
            table.schema.get_field_index("sparse_values"),
            "sparse_values",
            table.column("sparse_values").cast(SPARSE_TYPE),
        )
    return table


def batches(vectors: Any, batch_size: int | None) -> Iterator[list[Any]]:
    """Split records, a pyarrow Table or a pandas DataFrame into request batches."""
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise InvalidArgumentError(f"batch_size must be a positive integer, got {batch_size}")
    if isinstance(vectors, pa.Table | pa.RecordBatch):
        size = batch_size or DATAFRAME_BATCH
        for start in range(0, vectors.num_rows, size):
            yield _table_records(vectors.slice(start, size))
        return
    if hasattr(vectors, "to_dict") and hasattr(vectors, "iloc"):  # pandas, without importing it
        size = batch_size or DATAFRAME_BATCH
        for start in range(0, len(vectors), size):
            yield [_clean(r) for r in vectors.iloc[start : start + size].to_dict("records")]
        return
    if isinstance(vectors, str | bytes | Mapping) or not isinstance(vectors, Iterable):
        raise InvalidArgumentError(
            "vectors must be a list of records, a pyarrow Table or a pandas DataFrame"
        )
    items = list(vectors)
    if batch_size is None:
        yield items
        return
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def _clean(r: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in r.items():
        if isinstance(v, float) and math.isnan(v) and k in ("sparse_values", "metadata"):
            v = None  # pandas fills absent objects with NaN
        if isinstance(v, np.ndarray):
            v = v.tolist() if k != "values" else v
        out[str(k)] = v
    return out


def _table_records(t: pa.Table | pa.RecordBatch) -> list[Any]:
    rows: list[dict[str, Any]] = t.to_pylist()
    for r in rows:
        m = r.get("metadata")
        if isinstance(m, str):
            with contextlib.suppress(ValueError):  # else kept as text: not an object
                r["metadata"] = json.loads(m)
        elif isinstance(m, list):  # a map column
            r["metadata"] = dict(m)
    return rows


# ------------------------------------------------------------ namespace


# the newest live manifest read, per namespace, with the listing's stamp of its file
_newest: dict[tuple[str, str, str], tuple[int, tuple[Any, ...], Manifest]] = {}
_STAMP_KEYS = ("size", "ETag", "etag", "LastModified", "last_modified", "mtime", "ino", "created")


def _listing(store: Store, spec: IndexSpec, namespace: str) -> tuple[list[int], tuple[Any, ...]]:
    """Manifest versions (ascending) and the stamp (size, ETag / mtime...) of the newest."""
    found: dict[int, tuple[Any, ...]] = {}
    for info in store.ls(layout.manifests_prefix(spec.name, namespace), detail=True):
        version = layout.version_of_manifest(info["key"])
        if version is not None:
            found[version] = tuple(str(info.get(k)) for k in _STAMP_KEYS)
    versions = sorted(found)
    return versions, (found[versions[-1]] if versions else ())


def _visible(
    store: Store, spec: IndexSpec, namespace: str, versions: list[int], stamp: tuple[Any, ...]
) -> Manifest | None:
    """``manifests.latest_visible`` on a listing already made (one LIST per
    write, not two). The newest live manifest is remembered with its file's
    stamp, so a writer reads it once per version."""
    nk = (store.uri, spec.name, namespace)
    hit = _newest.get(nk)
    if hit is not None and versions and hit[0] == versions[-1] and hit[1] == stamp:
        return hit[2]
    for version in reversed(versions):
        try:
            m = manifests.read_manifest(store, spec.name, namespace, version)
        except NotFoundError:  # deleted under us by garbage collection
            continue
        if manifests.is_visible(store, m):
            if version == versions[-1] and not m.deleted:
                _newest[nk] = (version, stamp, m)
            return m
    return None


def ensure_namespace(store: Store, spec: IndexSpec, namespace: str) -> Manifest:
    """The visible manifest of ``namespace``, creating an empty one if needed.

    A namespace created by a write gets a format-2 manifest with no clusters
    whose ``applied_lsn`` is the end of the log (a namespace deleted before
    leaves its old entries applied). An import still creating the namespace
    (a newer manifest not visible yet) makes the write fail."""
    for _ in range(RESOLVE_ATTEMPTS):
        versions, stamp = _listing(store, spec, namespace)
        current = _visible(store, spec, namespace, versions, stamp)
        if current is not None and not current.deleted:
            return current
        if versions and (current is None or current.version != versions[-1]):
            raise AlreadyExistsError(
                f'Namespace "{namespace}" of index "{spec.name}" is being created by an import; '
                "write to it once the import has finished",
                index=spec.name,
                namespace=namespace,
            )
        fresh = Manifest(
            format_version=2,
            index=spec.name,
            namespace=namespace,
            version=(versions[-1] + 1) if versions else 1,
            vector_type=spec.vector_type,
            metric=spec.metric,
            dimension=spec.dimension,
            applied_lsn=commit.start_lsn(store, spec.name, namespace, current),
            parent_version=current.version if current is not None else None,
        )
        change = commit.ApplyLog(
            namespace=namespace,
            base_version=current.version if current is not None else None,
            applied_lsn=fresh.applied_lsn or 0,
            manifest=fresh,
        )
        try:
            done = commit.apply(store, spec.name, change, retry=commit.RetryPolicy(attempts=1))
        except CommitConflictError:
            continue
        return done.manifests[namespace]
    raise CommitConflictError(f'Could not create namespace "{namespace}"', namespace=namespace)


def _check_cap(current: int, adding: int, namespace: str, cap: int | None) -> None:
    limit = tail_cap() if cap is None else cap
    if current + adding > limit:
        raise RateLimitedError(
            f'Namespace "{namespace}" has {current:,} logged records not yet indexed (the limit '
            f"is {limit:,}): writes are refused until the index builder catches up; retry later",
            namespace=namespace,
            tail=current,
            limit=limit,
        )


PENDING_MAX_AGE = 1.0  # seconds a writer reuses its count of the tail (see wal.pending)


def _pending(store: Store, spec: IndexSpec, namespace: str, manifest: Manifest) -> int:
    return wal.pending(
        store, spec.name, namespace, manifest.applied_lsn or 0, max_age=PENDING_MAX_AGE
    )


def _state(store: Store, spec: IndexSpec, namespace: str) -> tuple[Manifest, TailState]:
    m = ensure_namespace(store, spec, namespace)
    return m, tail_reader(store, spec).get(namespace, m, force=True)


# ---------------------------------------------------------------- writes


def upsert(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    vectors: Any,
    batch_size: int | None = None,
    show_progress: bool = False,
    *,
    cap: int | None = None,
) -> int:
    """Upsert records (one log entry per batch); returns the count upserted.

    Every batch is validated before the first is written, so an invalid
    record anywhere writes nothing."""
    tables = [normalize(b, spec) for b in batches(vectors, batch_size) if b]
    total = int(sum(t.num_rows for t in tables))
    if not tables:
        return 0
    # the writer only counts the tail (no fold): queries fold it when they need it
    manifest = ensure_namespace(store, spec, namespace)
    _check_cap(_pending(store, spec, namespace, manifest), total, namespace, cap)
    with _progress(show_progress, total) as advance:
        for t in tables:
            wal.append(
                store,
                spec.name,
                namespace,
                wal.encode(t),
                floor=manifest.applied_lsn or 0,
                size=t.num_rows,
            )
            advance(t.num_rows)
    return total


@contextlib.contextmanager
def _progress(show: bool, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr (rich) when ``show``, else a no-op."""
    if not show:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("upserted", total=total)
        yield lambda n: bar.update(task, advance=n)


def delete(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    ids: Sequence[str] | None = None,
    delete_all: bool = False,
    filter: Mapping[str, Any] | None = None,  # noqa: A002 - Pinecone's name
    *,
    cap: int | None = None,
) -> int:
    """Delete ids, everything (the namespace stays) or the records matching
    a filter. Unknown ids are no error. Returns the LSN written (0: none)."""
    given = (ids is not None) + (filter is not None) + bool(delete_all)
    if given != 1:
        raise InvalidArgumentError("delete takes exactly one of ids, delete_all=True or filter")
    if manifests.load_namespace(store, spec.name, namespace) is None:
        return 0  # nothing to delete; Pinecone answers a missing namespace alike
    if ids is not None:
        if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
            raise InvalidArgumentError("ids must be a list of strings")
        if len(ids) > MAX_DELETE_IDS:
            raise InvalidArgumentError(f"delete takes at most {MAX_DELETE_IDS:,} ids per request")
        if not ids:
            return 0
        manifest = ensure_namespace(store, spec, namespace)
        unique = list(dict.fromkeys(ids))
        _check_cap(_pending(store, spec, namespace, manifest), len(unique), namespace, cap)
        data = wal.encode(None, unique, op="delete")
        floor = manifest.applied_lsn or 0
        return int(wal.append(store, spec.name, namespace, data, floor=floor, size=len(unique)))
    if delete_all:
        manifest = ensure_namespace(store, spec, namespace)
        data = wal.encode(None, delete_all=True, op="delete_all")
        return wal.append(store, spec.name, namespace, data, floor=manifest.applied_lsn or 0)
    node = parse_filter(filter)
    if node is None:
        raise InvalidArgumentError("delete by filter needs a non-empty filter")

    def entry(manifest: Manifest, state: TailState) -> bytes | None:
        rows = matching_rows(store, spec, manifest, state, filter)
        if rows is None or rows.num_rows == 0:
            return None
        _check_cap(state.size, rows.num_rows, namespace, cap)
        return wal.encode(None, rows.column("id").to_pylist(), op="delete_by_filter")

    return resolved_append(store, spec, namespace, entry)


def resolved_append(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    make: Callable[[Manifest, TailState], bytes | None],
) -> int:
    """Resolve against the state at LSN L and append at exactly L + 1 (else redo)."""
    for _ in range(RESOLVE_ATTEMPTS):
        manifest, state = _state(store, spec, namespace)
        with state.lock:
            at = state.last_lsn
            data = make(manifest, state)
        if data is None:
            return 0
        try:
            return wal.append(store, spec.name, namespace, data, expect_lsn=at + 1)
        except CommitConflictError:
            continue
    raise CommitConflictError(
        f'Too many concurrent writes to namespace "{namespace}"; retry', namespace=namespace
    )


def matching_rows(
    store: Store,
    spec: IndexSpec,
    manifest: Manifest,
    state: TailState,
    flt: Mapping[str, Any] | None,
) -> pa.Table | None:
    """Full segment rows of every live record matching ``flt`` (clusters and tail)."""
    node = parse_filter(flt)
    canon = canonical(node)
    parts = []
    if not state.hide_clusters:
        rows = cluster_rows_by_filter(store, spec, manifest, node, exclude=state.shadows)
        if rows is not None and rows.num_rows:
            parts.append(rows)
    t = state.matching(node, canon)
    if t is not None and t.num_rows:
        parts.append(t)
    if not parts:
        return None
    return pa.concat_tables(parts, promote_options="permissive")


def _current(
    store: Store, spec: IndexSpec, manifest: Manifest, state: TailState, id_: str
) -> dict[str, Any] | None:
    got = state.lookup([id_])
    if id_ in got:
        rec = got[id_]
        if rec is None:
            return None
        return {
            "id": rec.id,
            "values": rec.values,
            "sparse_values": rec.sparse_values,
            "metadata": rec.metadata,
        }
    if state.hide_clusters:
        return None
    rows = cluster_rows_by_id(store, spec, manifest, [id_])
    return _row_records(rows)[0] if rows is not None and rows.num_rows else None


def _row_records(t: pa.Table) -> list[dict[str, Any]]:
    names = [c for c in ("id", "values", "sparse_values", "metadata") if c in t.column_names]
    out: list[dict[str, Any]] = t.select(names).to_pylist()
    for r in out:
        m = r.get("metadata")
        r["metadata"] = None if m is None else json.loads(m)
    return out


def update(
    store: Store,
    spec: IndexSpec,
    namespace: str,
    id: str | None = None,  # noqa: A002 - Pinecone's name
    values: Sequence[float] | None = None,
    sparse_values: Any = None,
    set_metadata: Mapping[str, Any] | None = None,
    filter: Mapping[str, Any] | None = None,  # noqa: A002 - Pinecone's name
    dry_run: bool = False,
    *,
    cap: int | None = None,
) -> int:
    """Partial update of one record (metadata keys merged), or of the
    metadata of every record matching ``filter``. Returns the number of
    records matched (updated unless ``dry_run``); an unknown id matches 0."""
    if (id is None) == (filter is None):
        raise InvalidArgumentError("update takes either id or filter")
    if set_metadata is not None and not isinstance(set_metadata, Mapping):
        raise InvalidArgumentError("set_metadata must be an object")
    if manifests.load_namespace(store, spec.name, namespace) is None:
        return 0
    if id is not None:
        if not isinstance(id, str) or not id:
            raise InvalidArgumentError(f"Invalid id {id!r}: expected a non-empty string")
        if values is None and sparse_values is None and set_metadata is None:
            raise InvalidArgumentError("update needs values, sparse_values or set_metadata")
        count = 0

        def one(manifest: Manifest, state: TailState) -> bytes | None:
            nonlocal count
            cur = _current(store, spec, manifest, state, id)
            count = 0 if cur is None else 1
            if cur is None or dry_run:
                return None
            if values is not None:
                cur["values"] = list(values)
            if sparse_values is not None:
                cur["sparse_values"] = sparse_values
            if set_metadata is not None:
                cur["metadata"] = {**(cur.get("metadata") or {}), **dict(set_metadata)}
            _check_cap(state.size, 1, namespace, cap)
            return wal.encode(normalize([cur], spec, what="update"), op="update")

        resolved_append(store, spec, namespace, one)
        return count
    if values is not None or sparse_values is not None:
        raise InvalidArgumentError("update by filter changes metadata only (set_metadata)")
    if parse_filter(filter) is None:
        raise InvalidArgumentError("update by filter needs a non-empty filter")
    if not set_metadata and not dry_run:
        raise InvalidArgumentError("update by filter needs set_metadata")
    matched = 0

    def many(manifest: Manifest, state: TailState) -> bytes | None:
        nonlocal matched
        rows = matching_rows(store, spec, manifest, state, filter)
        matched = 0 if rows is None else rows.num_rows
        if rows is None or dry_run or matched == 0:
            return None
        recs = _row_records(rows)
        for r in recs:
            r["metadata"] = {**(r.get("metadata") or {}), **dict(set_metadata or {})}
        _check_cap(state.size, len(recs), namespace, cap)
        return wal.encode(normalize(recs, spec, what="update", limits=False), op="update")

    resolved_append(store, spec, namespace, many)
    return matched


__all__ = [
    "MAX_RECORDS",
    "MAX_REQUEST_BYTES",
    "batches",
    "delete",
    "ensure_namespace",
    "matching_rows",
    "normalize",
    "update",
    "upsert",
]
