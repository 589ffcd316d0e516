"""vecstore.refs: the one (high, row) bit-packing."""

from __future__ import annotations

import numpy as np
import pytest

from vecstore.refs import CLUSTER_ROW, FILE_ROW, RefPacking


@pytest.mark.parametrize("packing", [CLUSTER_ROW, FILE_ROW])
def test_round_trip_arrays_and_ints(packing: RefPacking) -> None:
    high = np.array([0, 1, 7, 4095], dtype=np.int64)
    rows = np.array([0, 5, packing.row_mask, 123], dtype=np.int64)
    refs = packing.pack(high, rows)
    assert refs.dtype == np.int64
    h, r = packing.split(refs)
    assert h.tolist() == high.tolist() and r.tolist() == rows.tolist()
    for a, b, ref in zip(high.tolist(), rows.tolist(), refs.tolist(), strict=True):
        assert packing.pack_one(a, b) == ref
        assert packing.split_one(ref) == (a, b)


def test_scalar_high_and_order() -> None:
    refs = CLUSTER_ROW.pack(3, np.arange(4, dtype=np.int32))
    assert refs.tolist() == [(3 << 32) | i for i in range(4)]
    # refs sort by (high, row)
    a, b = CLUSTER_ROW.pack_one(1, CLUSTER_ROW.row_mask), CLUSTER_ROW.pack_one(2, 0)
    assert a < b


def test_widths() -> None:
    assert (CLUSTER_ROW.row_bits, FILE_ROW.row_bits) == (32, 40)
