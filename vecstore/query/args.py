"""Argument checks of the read API, with messages that say what was expected."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vecstore.errors import InvalidArgumentError
from vecstore.schemas import SparseValues

DenseVector = Sequence[float] | np.ndarray
SparseVectorArg = SparseValues | Mapping[str, Sequence[Any]]

DEFAULT_TOP_K = 10
MAX_TOP_K = 10_000
MAX_SPARSE_INDEX = 2**32 - 1
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 10_000
MAX_FETCH_IDS = 1_000


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def top_k(value: Any) -> int:
    if not _is_int(value) or not 1 <= int(value) <= MAX_TOP_K:
        raise InvalidArgumentError(
            f"Invalid top_k {value!r}: expected an integer from 1 to {MAX_TOP_K}", top_k=value
        )
    return int(value)


def nprobe(value: Any) -> int | None:
    if value is None:
        return None
    if not _is_int(value) or int(value) < 1:
        raise InvalidArgumentError(
            f"Invalid nprobe {value!r}: expected a positive integer (clusters to probe)"
        )
    return int(value)


def namespace(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"Invalid namespace {value!r}: expected a string")
    return value


def dense_vector(value: Any, dimension: int | None) -> np.ndarray:
    """A query vector as float32 (d,), checked against the index dimension."""
    if (
        isinstance(value, np.ndarray)
        and value.dtype == np.float32
        and value.ndim == 1
        and (dimension is None or len(value) == dimension)
        and math.isfinite(float(np.dot(value, value)))  # finite: so is every element
    ):
        return value
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError("Invalid query vector: expected a list of numbers") from None
    if arr.ndim != 1:
        raise InvalidArgumentError(
            f"Invalid query vector: expected a flat list of numbers, got shape {arr.shape}"
        )
    if dimension is not None and len(arr) != dimension:
        raise InvalidArgumentError(
            f"Query vector dimension {len(arr)} does not match the dimension of the index {dimension}",
            dimension=dimension,
            query_dimension=len(arr),
        )
    if not np.isfinite(arr).all():
        raise InvalidArgumentError("Invalid query vector: values must be finite (no NaN or inf)")
    return arr.astype(np.float32)


def dense_batch(value: Any, dimension: int | None) -> np.ndarray:
    """A batch of query vectors as float32 (q, d)."""
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidArgumentError("Invalid query vectors: expected a (q, d) array") from None
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"Invalid query vectors: expected a 2-D (q, d) array, got shape {arr.shape}"
        )
    if dimension is not None and arr.shape[1] != dimension:
        raise InvalidArgumentError(
            f"Query vector dimension {arr.shape[1]} does not match the dimension of the index {dimension}",
            dimension=dimension,
            query_dimension=arr.shape[1],
        )
    if not np.isfinite(arr).all():
        raise InvalidArgumentError("Invalid query vectors: values must be finite (no NaN or inf)")
    return np.ascontiguousarray(arr)


def sparse_vector(value: Any) -> tuple[np.ndarray, np.ndarray]:
    """(indices int64 ascending, values float32) of a sparse query vector."""
    if isinstance(value, Mapping):
        indices, values = value.get("indices"), value.get("values")
    else:
        indices, values = getattr(value, "indices", None), getattr(value, "values", None)
    if indices is None or values is None:
        raise InvalidArgumentError(
            'Invalid sparse_vector: expected {"indices": [...], "values": [...]}'
        )
    if len(indices) != len(values):
        raise InvalidArgumentError(
            f"Invalid sparse_vector: {len(indices)} indices but {len(values)} values"
        )
    if any(not _is_int(i) or not 0 <= int(i) <= MAX_SPARSE_INDEX for i in indices):
        raise InvalidArgumentError(
            f"Invalid sparse_vector: indices must be integers from 0 to {MAX_SPARSE_INDEX}"
        )
    try:
        vals = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError("Invalid sparse_vector: values must be numbers") from None
    if vals.ndim != 1 or not np.isfinite(vals).all():
        raise InvalidArgumentError("Invalid sparse_vector: values must be finite numbers")
    idx = np.asarray([int(i) for i in indices], dtype=np.int64)
    order = np.argsort(idx, kind="stable")
    idx, vals = idx[order], vals[order]
    if len(idx) > 1 and (np.diff(idx) == 0).any():
        dup = int(idx[1:][np.diff(idx) == 0][0])
        raise InvalidArgumentError(f"Invalid sparse_vector: duplicate index {dup}")
    return idx, vals.astype(np.float32)


def fetch_ids(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidArgumentError(f"Invalid ids {value!r}: expected a list of id strings")
    if any(not isinstance(i, str) for i in value):
        raise InvalidArgumentError("Invalid ids: every id must be a string")
    if len(value) > MAX_FETCH_IDS:
        raise InvalidArgumentError(f"Too many ids: {len(value)}, at most {MAX_FETCH_IDS} per fetch")
    return list(dict.fromkeys(value))


def list_limit(value: Any) -> int:
    if value is None:
        return DEFAULT_LIST_LIMIT
    if not _is_int(value) or not 1 <= int(value) <= MAX_LIST_LIMIT:
        raise InvalidArgumentError(
            f"Invalid limit {value!r}: expected an integer from 1 to {MAX_LIST_LIMIT}"
        )
    return int(value)


def list_prefix(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgumentError(f"Invalid prefix {value!r}: expected a string")
    return value


def read_units(byte_size: int) -> int:
    """Pinecone-style read units of a query: 1 per GB of namespace, at least 1."""
    return max(1, math.ceil(byte_size / 1e9))
