"""Shared helpers of the query tests: building namespaces, brute force,
a reference filter matcher, and a Store that counts segment reads."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import IO, Any

import numpy as np
from segwriter import records_to_table, write_namespace

from vecstore.schemas import IndexSpec, Manifest
from vecstore.storage import Store


class CountingStore(Store):
    """A real Store that counts the objects opened or read, by key."""

    def __init__(self, uri: str, storage_options: dict[str, Any] | None = None) -> None:
        super().__init__(uri, storage_options)
        self.reads: Counter[str] = Counter()
        self._count_lock = threading.Lock()

    def _count(self, key: str) -> None:
        with self._count_lock:
            self.reads[key] += 1

    def read_bytes(self, key: str) -> bytes:
        self._count(key)
        return super().read_bytes(key)

    def open_input(self, key: str, *, readahead: bool = True) -> IO[bytes]:
        self._count(key)
        return super().open_input(key, readahead=readahead)

    def segment_reads(self) -> int:
        return sum(n for k, n in self.reads.items() if k.endswith(".parquet") and ".ids." not in k)


def memory_store(cls: type[Store] = Store) -> Store:
    return cls(f"memory://q-{uuid.uuid4().hex}")


def spec_for(
    metric: str = "cosine", dimension: int | None = 8, vector_type: str = "dense"
) -> IndexSpec:
    return IndexSpec(name="idx", dimension=dimension, metric=metric, vector_type=vector_type)


def write(
    store: Store,
    spec: IndexSpec,
    records: Sequence[Mapping[str, Any]],
    namespace: str = "ns",
    per_cluster: int = 64,
    seed: int = 0,
) -> Manifest:
    return write_namespace(
        store,
        spec,
        namespace,
        records_to_table(records, spec),
        target_per_cluster=per_cluster,
        seed=seed,
    )


def clustered(n: int, d: int, centers: int, seed: int = 0, spread: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centers, d)).astype(np.float32) * 2.0
    lab = rng.integers(0, centers, n)
    out: np.ndarray = (c[lab] + spread * rng.standard_normal((n, d))).astype(np.float32)
    return out


def dense_records(
    x: np.ndarray, metas: Sequence[Mapping[str, Any] | None] | None = None
) -> list[dict[str, Any]]:
    return [
        {"id": f"r{i}", "values": x[i].tolist(), "metadata": None if metas is None else metas[i]}
        for i in range(len(x))
    ]


def brute(x: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """Public scores of every row (float64)."""
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == "cosine":
        out: np.ndarray = (x64 @ q64) / (np.linalg.norm(x64, axis=1) * np.linalg.norm(q64))
        return out
    if metric == "euclidean":
        out = ((x64 - q64) ** 2).sum(axis=1)
        return out
    out = x64 @ q64
    return out


def top_ids(
    scores: np.ndarray, k: int, metric: str, allowed: np.ndarray | None = None
) -> list[str]:
    s = scores if metric != "euclidean" else -scores
    if allowed is not None:
        s = np.where(allowed, s, -np.inf)
    order = np.argsort(-s, kind="stable")
    return [f"r{i}" for i in order if np.isfinite(s[i])][:k]


# ------------------------------------------------------- reference filter


def ref_match(meta: Mapping[str, Any] | None, flt: Mapping[str, Any]) -> bool:
    """An independent, per-record implementation of the filter semantics."""
    meta = meta or {}
    for key, cond in flt.items():
        if key == "$and":
            if not all(ref_match(meta, c) for c in cond):
                return False
        elif key == "$or":
            if not any(ref_match(meta, c) for c in cond):
                return False
        elif isinstance(cond, Mapping):
            for op, v in cond.items():
                if not _ref_op(meta, key, op, v):
                    return False
        elif not _ref_op(meta, key, "$eq", cond):
            return False
    return True


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return isinstance(a, str) and isinstance(b, str) and a == b


def _equals(stored: Any, v: Any) -> bool:
    if isinstance(stored, list):
        return any(_same(e, v) for e in stored)
    return _same(stored, v)


def _ref_op(meta: Mapping[str, Any], field: str, op: str, v: Any) -> bool:
    present = field in meta
    stored = meta.get(field)
    if op == "$exists":
        return bool(present == v)
    if not present:
        return False
    if op == "$eq":
        return _equals(stored, v)
    if op == "$ne":
        return not _equals(stored, v)
    if op == "$in":
        return any(_equals(stored, x) for x in v)
    if op == "$nin":
        return not any(_equals(stored, x) for x in v)
    if isinstance(stored, bool) or not isinstance(stored, int | float):
        return False
    s = float(stored)
    return bool({"$gt": s > v, "$gte": s >= v, "$lt": s < v, "$lte": s <= v}[op])
