"""The one bit-packing of row references: ``high << row_bits | row`` in an int64.

Two packings use it:

- :data:`CLUSTER_ROW`: a query's reference to a stored row, ``cluster
  position << 32 | row`` (the position of the cluster in the pinned
  manifest's cluster list; a segment holds fewer than 2**32 rows).
- :data:`FILE_ROW`: an import's dedup key of a source record, ``file index
  << 40 | row`` (a source file holds fewer than 2**40 rows; 2**23 files).

References sort by (high, row) as int64 numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RefPacking:
    """``high << row_bits | row`` as int64, for arrays and for plain ints."""

    row_bits: int

    @property
    def row_mask(self) -> int:
        return (1 << self.row_bits) - 1

    def pack(self, high: np.ndarray | int, rows: np.ndarray) -> np.ndarray:
        """References of ``rows`` (an array) under ``high`` (one value or an array)."""
        hi = np.asarray(high, dtype=np.int64)
        out: np.ndarray = (hi << self.row_bits) | np.asarray(rows).astype(np.int64, copy=False)
        return out

    def split(self, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(high, rows) int64 arrays of an array of references."""
        r = np.asarray(refs, dtype=np.int64)
        return r >> self.row_bits, r & self.row_mask

    def pack_one(self, high: int, row: int) -> int:
        return (high << self.row_bits) | row

    def split_one(self, ref: int) -> tuple[int, int]:
        return ref >> self.row_bits, ref & self.row_mask


CLUSTER_ROW = RefPacking(row_bits=32)
FILE_ROW = RefPacking(row_bits=40)
