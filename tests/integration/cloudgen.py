"""Helpers for the cloud integration tests (``test_cloud_*.py``): where a store
root or an import source lives (an emulator bucket, an Azure container in
either URI form, or a local folder), seeding an import directory there,
checking an import against the records written (exact neighbours, fetch,
stats), and an HTTP proxy that logs every request with its body size.

Test modules import these as ``from cloudgen import ...`` (tests/ and
tests/integration/ are on sys.path); never from ``conftest``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest
from datagen import dense_import
from faultproxy import FaultProxy, _Handler
from servers import AZURITE_ACCOUNT, Emulator, unique_name

from vecstore.storage import Store

if TYPE_CHECKING:
    from vecstore.api import Index
    from vecstore.schemas import ImportJob

DIM = 8
SERVER_OF = {"s3": "s3_server", "gcs": "gcs_server", "azure": "azure_server",
             "azure-https": "azure_server"}
MARK_OF = {"s3": pytest.mark.s3, "gcs": pytest.mark.gcs, "azure": pytest.mark.azure,
           "azure-https": pytest.mark.azure}
CLOUD_OF = {"s3": "aws", "gcs": "gcp", "azure": "azure", "azure-https": "azure", "local": "aws"}


def marks_for(*kinds: str) -> list[Any]:
    """The emulator markers of a parametrised case (fixtures reached through
    ``request.getfixturevalue`` are invisible to the collection hook)."""
    return [MARK_OF[k] for k in dict.fromkeys(kinds) if k in MARK_OF]


def plain_options(server: Emulator, **extra: Any) -> dict[str, Any]:
    """The server's credentials and endpoint, without ``skip_instance_cache``:
    the Stores a Dask worker unpickles per task then share one client, as in
    production (a fresh botocore client per task costs ~0.3 s)."""
    opts = server.options(**extra)
    opts.pop("skip_instance_cache", None)
    return opts


def plain_anon_options(server: Emulator) -> dict[str, Any]:
    opts = server.anon_options()
    opts.pop("anon", None)  # VecStore adds it for sources without an integration
    return opts


# ------------------------------------------------------------------ places
@dataclass
class Place:
    """A bucket or container (or a local folder) holding store roots and
    import directories. ``options`` reach it with full credentials."""

    kind: str  # s3 | gcs | azure | azure-https | local
    base: str
    options: dict[str, Any]
    server: Emulator | None = None
    bucket: str | None = None

    def uri(self, path: str) -> str:
        return f"{self.base}/{path.strip('/')}"

    def store(self, path: str, **extra: Any) -> Store:
        return Store(self.uri(path), {**self.options, **extra})

    @property
    def storage_kind(self) -> str:
        return "azure" if self.kind == "azure-https" else self.kind


def new_place(
    kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    *,
    public: str | None = None,
    options: dict[str, Any] | None = None,
) -> Place:
    """A fresh bucket / container of ``kind`` (``public``: Azure access level)."""
    if kind == "local":
        root = tmp_path / unique_name("local")
        root.mkdir()
        return Place("local", str(root), {})
    server: Emulator = request.getfixturevalue(SERVER_OF[kind])
    name = unique_name(kind.split("-")[0])
    server.create_bucket(name, public=public)
    opts = plain_options(server) if options is None else options
    if kind == "azure-https":
        base = f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{name}"
    else:
        base = server.uri(name)
    return Place(kind, base, opts, server, name)


# ------------------------------------------------------------------ sources
def upload_dir(local: Path, store: Store) -> dict[str, int]:
    """Copy every file below ``local`` to ``store``; {key: size}."""
    sizes = {}
    for p in sorted(local.rglob("*")):
        if p.is_file():
            key = p.relative_to(local).as_posix()
            data = p.read_bytes()
            store.write_bytes(key, data)
            sizes[key] = len(data)
    return sizes


def seed_import(
    place: Place,
    tmp_path: Path,
    namespaces: dict[str, int],
    *,
    path: str = "import",
    dim: int = DIM,
    seed: int = 0,
    files: int = 2,
    row_group_size: int | None = None,
    metadata: bool = True,
) -> tuple[str, dict[str, pa.Table], dict[str, int]]:
    """Write an import directory at ``place``/``path``: (uri, tables by
    namespace directory, {key: size})."""
    local = tmp_path / unique_name("seed")
    tables = dense_import(local, namespaces, dim, files=files, seed=seed,
                          row_group_size=row_group_size, metadata=metadata)
    if place.kind == "local":
        target = Path(place.uri(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        local.rename(target)
        sizes = {p.relative_to(target).as_posix(): p.stat().st_size
                 for p in target.rglob("*") if p.is_file()}
    else:
        sizes = upload_dir(local, place.store(path))
    return place.uri(path), tables, sizes


def ns_of(directory: str) -> str:
    return "" if directory == "__default__" else directory


# ------------------------------------------------------------------ checking
def matrix_of(table: pa.Table) -> np.ndarray:
    values = table.column("values").combine_chunks()
    n = len(values)
    return np.asarray(values.flatten().to_numpy(zero_copy_only=False), np.float32).reshape(n, -1)


def exact_top(table: pa.Table, q: np.ndarray, metric: str, k: int) -> list[str]:
    """The ids of the ``k`` best records of ``table`` for ``q`` (brute force)."""
    x = matrix_of(table).astype(np.float64)
    q = np.asarray(q, np.float64)
    if metric == "cosine":
        score = (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    elif metric == "dotproduct":
        score = x @ q
    else:
        score = -((x - q) ** 2).sum(axis=1)
    order = np.argsort(-score, kind="stable")[:k]
    ids = table.column("id").to_pylist()
    return [ids[i] for i in order]


def assert_imported(
    index: Index,
    job: ImportJob,
    tables: dict[str, pa.Table],
    *,
    metric: str,
    queries: int = 3,
    top_k: int = 10,
) -> None:
    """The import completed with exactly ``tables``: counts, stats, exact
    neighbours of random queries and of stored records, fetch, metadata."""
    total = sum(t.num_rows for t in tables.values())
    assert (job.status, job.error) == ("Completed", None), job
    assert job.records_imported == total
    assert job.percent_complete == 100
    stats = index.describe_index_stats()
    assert {ns: s.vector_count for ns, s in stats.namespaces.items()} == {
        ns_of(d): t.num_rows for d, t in tables.items()
    }
    assert stats.total_vector_count == total
    rng = np.random.default_rng(7)
    for directory, table in sorted(tables.items()):
        ns = ns_of(directory)
        state = index.reader.namespace_state(ns)
        assert state is not None and state.k >= 1
        probes = state.k  # every cluster: the answer must be exact
        x = matrix_of(table)
        picks = [rng.normal(size=x.shape[1]).astype(np.float32) for _ in range(queries)]
        picks.append(x[int(rng.integers(len(x)))])
        for q in picks:
            res = index.query(namespace=ns, vector=q.tolist(), top_k=top_k, nprobe=probes)
            got = [m.id for m in res.matches]
            assert got == exact_top(table, q, metric, top_k), (ns, got)
        ids = table.column("id").to_pylist()
        i = int(rng.integers(table.num_rows))
        by_id = index.query(namespace=ns, id=ids[i], top_k=top_k, nprobe=probes)
        assert [m.id for m in by_id.matches] == exact_top(table, x[i], metric, top_k)
        want = [ids[int(i)] for i in rng.choice(len(ids), size=5, replace=False)]
        fetched = index.fetch(ids=[*want, "no-such-id"], namespace=ns).vectors
        assert sorted(fetched) == sorted(want)
        pos = {v: i for i, v in enumerate(ids)}
        metas = table.column("metadata").to_pylist() if "metadata" in table.column_names else None
        for rid in want:
            np.testing.assert_array_equal(
                np.asarray(fetched[rid].values, np.float32), x[pos[rid]]
            )
            if metas is not None:
                assert fetched[rid].metadata == json.loads(metas[pos[rid]])


def records_of(index: Index, tables: dict[str, pa.Table]) -> dict[str, dict[str, list[float]]]:
    """Every stored record of the namespaces of ``tables``: {ns: {id: values}}."""
    out: dict[str, dict[str, list[float]]] = {}
    for directory, table in tables.items():
        ns = ns_of(directory)
        ids = table.column("id").to_pylist()
        got = index.fetch(ids=ids, namespace=ns).vectors
        out[ns] = {i: list(np.asarray(v.values, np.float32)) for i, v in got.items()}
    return out


def store_files(store: Store, prefix: str = "") -> list[str]:
    return [k for k, _ in store.walk_files(prefix)]


# ------------------------------------------------------------------ proxy
@dataclass
class Request:
    """One request, logged when it arrives (so the log is in arrival order);
    its ``fate`` and ``length`` are filled in before the answer is sent."""

    at: float
    method: str
    path: str
    range: str | None
    length: int | None = None  # body bytes of the response (None: none sent)
    fate: str = "forward"


class _CountingHandler(_Handler):
    """FaultProxy's handler, recording each request and its response size."""

    _entry: Request

    def _count(self) -> None:
        proxy = self.server.proxy
        assert isinstance(proxy, CountingProxy)
        self._entry = Request(time.monotonic(), self.command, self.path, self.headers.get("Range"))
        proxy._local.entry = self._entry
        proxy.record(self._entry)
        self._handle()

    def send_header(self, keyword: str, value: str) -> None:
        # before the body is sent: the client cannot see the answer before the log does
        if keyword.lower() == "content-length" and self.command != "HEAD":
            self._entry.length = int(value)
        super().send_header(keyword, value)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _count  # noqa: N815


class CountingProxy(FaultProxy):
    """A :class:`FaultProxy` that also logs every request (``requests``):
    method, path, Range header, response body size and fate. With no fault
    rates it is a pass-through request counter."""

    def __init__(self, upstream: str, **kwargs: Any) -> None:
        super().__init__(upstream, **kwargs)
        self._server.RequestHandlerClass = _CountingHandler
        self._local = threading.local()
        self.requests: list[Request] = []

    def _fate(self, method: str, path: str) -> str:
        fate = super()._fate(method, path)
        self._local.entry.fate = fate
        return fate

    def record(self, r: Request) -> None:
        with self._lock:
            self.requests.append(r)

    def mark(self) -> int:
        """A position in the log (for :meth:`since`)."""
        with self._lock:
            return len(self.requests)

    def since(self, mark: int = 0) -> list[Request]:
        with self._lock:
            return list(self.requests[mark:])


def counting_proxy(server: Emulator, **kwargs: Any) -> CountingProxy:
    return CountingProxy(f"http://{server.host}:{server.port}", **kwargs)


def is_listing(r: Request) -> bool:
    """A LIST request (S3 list-type=2, GCS objects list, Azure comp=list)."""
    return ("list-type=" in r.path or "comp=list" in r.path
            or ("/o?" in r.path and "alt=media" not in r.path) or r.path.endswith("/o"))


def object_of(r: Request) -> str:
    """The object key of a request, percent-decoded, without the query string."""
    from urllib.parse import unquote

    path = unquote(r.path.split("?", 1)[0])
    if "/o/" in path:  # GCS JSON API: /storage/v1/b/BUCKET/o/KEY or /download/...
        return path.split("/o/", 1)[1]
    parts = path.lstrip("/").split("/")
    if parts and parts[0] == AZURITE_ACCOUNT:
        parts = parts[1:]
    return "/".join(parts[1:])  # drop the bucket / container


def is_data_get(r: Request) -> bool:
    """A GET of object bytes (not a listing, not object metadata)."""
    if r.method != "GET" or is_listing(r):
        return False
    # GCS object metadata is a GET on /storage/v1/b/BUCKET/o/KEY without alt=media
    return not ("/storage/v1/b/" in r.path and "alt=media" not in r.path)


def bytes_read(requests: Iterable[Request], suffix: str = "") -> int:
    return sum(r.length or 0 for r in requests
               if is_data_get(r) and r.fate == "forward" and object_of(r).endswith(suffix))


def summary(requests: Iterable[Request]) -> Counter[str]:
    """Requests by kind: LIST, GET (bytes), HEAD, PUT..."""
    out: Counter[str] = Counter()
    for r in requests:
        if is_listing(r):
            out["LIST"] += 1
        elif r.method == "GET" and not is_data_get(r):
            out["GET-meta"] += 1
        else:
            out[r.method] += 1
    return out


# ------------------------------------------------------------ worker logs
_CAPTURED: list[str] = []
_HANDLER: list[logging.Handler] = []


class _ListHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            _CAPTURED.append(f"{record.name} {self.format(record)} {record.args!r}")
        except Exception:  # a record that cannot be formatted is still no leak
            _CAPTURED.append(f"{record.name} {record.msg!r} {record.args!r}")


def _start_capture() -> None:
    root = logging.getLogger()
    handler = _ListHandler(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    _HANDLER.append(handler)
    root.addHandler(handler)
    handler.previous_level = root.level  # type: ignore[attr-defined]
    root.setLevel(logging.DEBUG)


def _stop_capture() -> list[str]:
    root = logging.getLogger()
    for handler in _HANDLER:
        root.removeHandler(handler)
        root.setLevel(getattr(handler, "previous_level", logging.WARNING))
    _HANDLER.clear()
    out = list(_CAPTURED)
    _CAPTURED.clear()
    return out


@contextlib.contextmanager
def worker_logs(client: Any, into: list[str]) -> Iterator[None]:
    """Capture every log record (DEBUG and up) on the Dask workers while the
    block runs; the lines are appended to ``into`` at the end."""
    client.run(_start_capture)
    try:
        yield
    finally:
        for lines in client.run(_stop_capture).values():
            into.extend(lines)
