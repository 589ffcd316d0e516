"""The id lookup of one namespace version (``manifest.id_files``).

Each id file is a Parquet table ``(id, cluster, row)`` sorted by id
(``writer.write_id_file``), or the segment of a small one-cluster namespace,
whose ``id`` column is the lookup (``segments.segment_cluster``). Its
columns are read once and cached; an id is found by binary search over the sorted Arrow string array (about 20 string
reads for a million ids), so looking up 100 ids costs a few milliseconds
with no per-row Python objects built for the other ids. Listing walks the
ids in order (several files are merged once, then sliced).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vecstore.query.planner import NamespaceState
from vecstore.query.segdata import SegmentSource, StringColumn
from vecstore.refs import CLUSTER_ROW
from vecstore.segments import segment_cluster, segment_id_rows


class _Bytes(Sequence[bytes]):
    """The UTF-8 bytes of an Arrow string array, for ``bisect`` (UTF-8 byte
    order is code point order, and Arrow sorts strings by their bytes)."""

    def __init__(self, arr: pa.Array) -> None:
        self._col = StringColumn(arr)

    def __len__(self) -> int:
        return len(self._col)

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[bytes]: ...
    def __getitem__(self, i: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._col.raw(i)


class _Strings(Sequence[str]):
    """A read-only str view of an Arrow string array, for ``bisect``."""

    def __init__(self, arr: pa.Array) -> None:
        self._arr = arr

    def __len__(self) -> int:
        return len(self._arr)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        if isinstance(i, slice):
            return list(self._arr[i].to_pylist())
        return str(self._arr[i].as_py())


SPARSE_STEP = 64  # every 64th id of a file is kept as Python bytes: the first search level


@dataclass(frozen=True, slots=True)
class IdFile:
    ids: pa.Array  # sorted
    refs: np.ndarray  # int64 ref (cluster position, row) of each id
    keys: _Bytes = field(init=False, compare=False)
    sample: list[bytes] = field(init=False, compare=False)  # keys[::SPARSE_STEP]

    def __post_init__(self) -> None:
        keys = _Bytes(self.ids)
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "sample", [keys[i] for i in range(0, len(keys), SPARSE_STEP)])

    def find(self, raw: bytes) -> int:
        """Position of the id with UTF-8 bytes ``raw``, or -1."""
        block = bisect.bisect_right(self.sample, raw) - 1
        if block < 0:
            return -1
        lo = block * SPARSE_STEP
        hi = min(lo + SPARSE_STEP, len(self.keys))
        i = bisect.bisect_left(self.keys, raw, lo, hi)
        return i if i < hi and self.keys[i] == raw else -1

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + self.refs.nbytes + 48 * len(self.sample))


@dataclass
class IdIndex:
    files: list[IdFile]
    _sorted: pa.Array | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def nbytes(self) -> int:
        return sum(f.nbytes for f in self.files)

    def lookup(self, ids: Iterable[str]) -> dict[str, int]:
        """id -> ref for the ids present (a binary search per id and file)."""
        out: dict[str, int] = {}
        wanted = [(id_, id_.encode()) for id_ in ids]
        for f in self.files:
            for id_, raw in wanted:
                if id_ in out:
                    continue
                i = f.find(raw)
                if i >= 0:
                    out[id_] = int(f.refs[i])
        return out

    def sorted_ids(self) -> pa.Array:
        if len(self.files) == 1:
            return self.files[0].ids
        with self._lock:
            if self._sorted is None:
                merged = (
                    pa.concat_arrays([f.ids for f in self.files])
                    if self.files
                    else pa.array([], pa.string())
                )
                self._sorted = merged.take(pc.sort_indices(merged))
            return self._sorted

    def page(self, prefix: str, after: str | None, limit: int) -> tuple[list[str], bool]:
        """Up to ``limit`` ids starting with ``prefix`` after ``after``; and whether more follow."""
        arr = self.sorted_ids()
        seq = _Strings(arr)
        start = bisect.bisect_left(seq, prefix)
        if after is not None:
            start = max(start, bisect.bisect_right(seq, after))
        chunk = arr[start : start + limit + 1].to_pylist()
        if prefix:
            ends = [i for i, v in enumerate(chunk) if not v.startswith(prefix)]
            if ends:
                chunk = chunk[: ends[0]]
        return chunk[:limit], len(chunk) > limit


def load_id_index(source: SegmentSource, state: NamespaceState) -> IdIndex:
    """The id index of a namespace version, through the source's byte cache."""
    rels = state.manifest.id_files
    keys = tuple(state.key(rel) for rel in rels)

    def load() -> tuple[IdIndex, int]:
        lut = np.full(max(state.position_of, default=0) + 1, -1, dtype=np.int64)
        for cid, pos in state.position_of.items():
            lut[cid] = pos
        files = []
        for rel, key in zip(rels, keys, strict=True):
            in_segment = segment_cluster(state.manifest, rel)
            if in_segment is None:
                t = source.read_columns(key, ["id", "cluster", "row"])
            else:  # a small namespace's lookup: its segment's ids
                ids = source.read_columns(key, ["id"]).column("id")
                t = segment_id_rows(ids, in_segment)
            ids = t.column("id").combine_chunks()
            cl = np.asarray(t.column("cluster").to_numpy(), dtype=np.int64)
            rows = np.asarray(t.column("row").to_numpy(), dtype=np.int64)
            files.append(IdFile(ids, CLUSTER_ROW.pack(lut[cl], rows)))
        index = IdIndex(files)
        return index, index.nbytes + 64

    return source.cache.get_or_load(("idindex", keys), load)


__all__ = ["IdIndex", "load_id_index"]
