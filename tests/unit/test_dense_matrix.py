"""segments.dense_matrix on whole arrays, slices and chunked columns: a
slice's own rows, whatever its offset and length."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from vecstore.errors import FormatError
from vecstore.segments import dense_matrix, fixed_list


def _x(n: int = 6, d: int = 4) -> np.ndarray:
    return np.arange(n * d, dtype=np.float32).reshape(n, d)


def test_whole_array_and_its_slices() -> None:
    x = _x()
    a = fixed_list(x)
    assert np.array_equal(dense_matrix(a, 4), x)
    for start, length in [(0, 2), (0, 5), (1, 2), (3, 3), (5, 1), (0, 0), (2, 0)]:
        got = dense_matrix(a.slice(start, length), 4)
        assert got.shape == (length, 4)
        assert np.array_equal(got, x[start : start + length]), (start, length)


def test_chunked_columns_and_table_slices() -> None:
    x = _x(10)
    t = pa.table({"values": pa.chunked_array([fixed_list(x[:4]), fixed_list(x[4:])])})
    assert np.array_equal(dense_matrix(t.column("values"), 4), x)
    one = pa.table({"values": fixed_list(x)})
    for start, length in [(0, 3), (2, 5), (7, 3)]:
        got = dense_matrix(one.slice(start, length).column("values"), 4)
        assert np.array_equal(got, x[start : start + length])


def test_not_a_fixed_size_list() -> None:
    with pytest.raises(FormatError, match="expected fixed_size_list"):
        dense_matrix(pa.array([[1.0, 2.0]], pa.list_(pa.float32())), 2)
