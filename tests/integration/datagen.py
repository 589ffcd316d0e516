"""Helpers for the import integration tests: write import directories of real
Parquet files, look at what an import left in a local store, run an import
and wait, and manage helper processes.

Test modules import these from here, never from ``conftest`` (a second
``conftest`` module, tests/conftest.py, shares that module name).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from vecstore import layout
from vecstore.schemas.arrow import SPARSE_TYPE
from vecstore.segments import read_centroids

if TYPE_CHECKING:
    from vecstore.api import Index
    from vecstore.schemas import ImportJob

VENV_BIN = Path(sys.executable).parent
IMPORT_TIMEOUT = 90.0

# ------------------------------------------------------------------ writing

FLOAT32 = pa.float32()
STRING = pa.string()


def vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n`` random float32 vectors (distinct with probability 1)."""
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def clustered_vectors(n: int, dim: int, centers: int, seed: int = 0) -> np.ndarray:
    """Vectors around ``centers`` well-separated points (for clustering tests)."""
    rng = np.random.default_rng(seed)
    c = rng.normal(scale=10.0, size=(centers, dim))
    which = rng.integers(0, centers, size=n)
    return (c[which] + rng.normal(scale=0.5, size=(n, dim))).astype(np.float32)


def list_array(matrix: np.ndarray, value_type: pa.DataType = FLOAT32) -> pa.Array:
    """A ``list<value_type>`` column from an (n, d) matrix, built without per-row Python."""
    m = np.ascontiguousarray(matrix)
    n, d = m.shape
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32) if n else [0], pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(m.reshape(-1)).cast(value_type))


def dense_table(
    ids: Sequence[str],
    values: np.ndarray | pa.Array,
    metadata: Sequence[str | None] | None = None,
    *,
    value_type: pa.DataType = FLOAT32,
    id_type: pa.DataType = STRING,
) -> pa.Table:
    cols: dict[str, Any] = {
        "id": pa.array(list(ids), id_type),
        "values": values if isinstance(values, pa.Array) else list_array(values, value_type),
    }
    if metadata is not None:
        cols["metadata"] = pa.array(list(metadata), pa.string())
    return pa.table(cols)


def sparse_array(rows: Sequence[tuple[Sequence[int], Sequence[float]] | None]) -> pa.Array:
    return pa.array(
        [None if r is None else {"indices": list(r[0]), "values": list(r[1])} for r in rows],
        SPARSE_TYPE,
    )


def random_sparse(n: int, seed: int = 0, nnz: int = 8, space: int = 10_000) -> list[tuple[list[int], list[float]]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        idx = np.sort(rng.choice(space, size=nnz, replace=False)).tolist()
        out.append((idx, rng.random(nnz).astype(np.float32).tolist()))
    return out


def write(path: str | os.PathLike[str], table: pa.Table, row_group_size: int | None = None) -> str:
    """Write ``table`` as a Parquet file at ``path`` (parents created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, p, row_group_size=row_group_size)
    return str(p)


def split_write(
    directory: str | os.PathLike[str],
    table: pa.Table,
    files: int,
    *,
    row_group_size: int | None = None,
    prefix: str = "part",
) -> list[str]:
    """Write ``table`` as ``files`` files of consecutive rows, named in row order."""
    n = table.num_rows
    bounds = np.linspace(0, n, files + 1).astype(int)
    return [
        write(Path(directory) / f"{prefix}-{i:03d}.parquet", table.slice(a, b - a), row_group_size)
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]


def dense_import(
    root: str | os.PathLike[str],
    namespaces: dict[str, int],
    dim: int,
    *,
    files: int = 1,
    seed: int = 0,
    row_group_size: int | None = None,
    metadata: bool = False,
) -> dict[str, pa.Table]:
    """An import directory with ``namespaces`` {dir name: rows} of random dense
    records, ids ``<dir>-<i>``; returns the table written per directory."""
    out = {}
    for k, (ns, n) in enumerate(sorted(namespaces.items())):
        ids = [f"{ns}-{i}" for i in range(n)]
        meta = [json.dumps({"i": i, "g": "ab"[i % 2]}) for i in range(n)] if metadata else None
        t = dense_table(ids, vectors(n, dim, seed * 1000 + k), meta)
        split_write(Path(root) / ns, t, files, row_group_size=row_group_size)
        out[ns] = t
    return out


# ---------------------------------------------------------------- inspecting


def index_dir(store_root: str | os.PathLike[str], index: str) -> Path:
    return Path(store_root) / layout.index_prefix(index)


def files_under(path: str | os.PathLike[str]) -> list[str]:
    """Every file below ``path`` (relative, sorted); [] if it does not exist."""
    base = Path(path)
    if not base.exists():
        return []
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())


def leftovers(store_root: str | os.PathLike[str], index: str, job_id: str) -> dict[str, list[str]]:
    """What a failed or cancelled import must not leave: manifests and data
    files under ``namespaces/`` (of any namespace) and staging files of the job."""
    d = index_dir(store_root, index)
    return {
        "namespaces": files_under(d / "namespaces"),
        "staging": files_under(Path(store_root) / layout.staging_prefix(index, job_id)),
        "committed": (
            ["_COMMITTED"]
            if (Path(store_root) / layout.commit_marker_key(index, job_id)).exists()
            else []
        ),
    }


NOTHING_LEFT = {"namespaces": [], "staging": [], "committed": []}


def read_rejects(rejects_uri: str) -> list[dict[str, Any]]:
    """Every row of a job's reject report files, sorted by (namespace, file, row, code)."""
    paths = sorted(Path(rejects_uri).rglob("*.parquet"))
    rows: list[dict[str, Any]] = []
    for p in paths:
        rows.extend(pq.read_table(p).to_pylist())
    return sorted(rows, key=lambda r: (r["namespace"], r["file"], r["row"], r["code"]))


def namespace_dir(store_root: str | os.PathLike[str], index: str, ns: str) -> Path:
    return Path(store_root) / layout.namespace_prefix(index, ns)


def load_namespace_data(store_root: str | os.PathLike[str], index: str, ns: str) -> tuple[Any, list[tuple[int, pa.Table]], np.ndarray | None]:
    """(visible manifest, [(cluster id, segment table)], centroids or None)."""
    from vecstore import manifests
    from vecstore.storage import Store

    store = Store(str(store_root))
    m = manifests.load_namespace(store, index, ns)
    assert m is not None, f"namespace {ns!r} is not visible"
    prefix = layout.namespace_prefix(index, ns)
    segs = [(c.id, pq.read_table(Path(store_root) / prefix / c.segment)) for c in m.clusters]
    cents = read_centroids(store, f"{prefix}/{m.centroids}") if m.centroids else None
    return m, segs, cents


def ids_of(store_root: str | os.PathLike[str], index: str, ns: str) -> list[str]:
    """Every record id stored in a visible namespace (sorted)."""
    _, segs, _ = load_namespace_data(store_root, index, ns)
    return sorted(i for _, t in segs for i in t.column("id").to_pylist())


# ------------------------------------------------------------------ running


def run_import(
    index: Index, uri: str | os.PathLike[str], error_mode: str = "continue",
    timeout: float = IMPORT_TIMEOUT,
) -> ImportJob:
    """Start an import and wait for its final status."""
    op = index.start_import(uri=str(uri), error_mode=error_mode)
    return index.wait_for_import(op.id, timeout=timeout)


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------ subprocesses


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, procs: list[subprocess.Popen[bytes]], timeout: float = 30.0) -> None:
    """Wait until 127.0.0.1:port accepts connections; fail early if a process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args!r} exited with {p.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def stop_process(p: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child we started (its whole session if it has one), then kill."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout)
