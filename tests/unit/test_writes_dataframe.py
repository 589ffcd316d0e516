"""writes.upsert with a pandas DataFrame: the Pinecone SDK's ``upsert_from_dataframe``.

The SDK's frame has the columns ``id``, ``values``, ``sparse_values`` (a dict
``{"indices", "values"}`` or nothing) and ``metadata`` (a dict or nothing);
``batch_size`` (default 500) splits it into requests, ``show_progress`` draws
a bar.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vecstore import wal, writes
from vecstore.errors import InvalidArgumentError
from vecstore.schemas import IndexSpec
from vecstore.storage import Store
from vecstore.tail import TailReader

pd = pytest.importorskip("pandas")

DENSE = IndexSpec(name="ix", dimension=8, metric="cosine")
HYBRID = IndexSpec(name="hy", dimension=8, metric="dotproduct")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    wal.clear_caches()


def _frame(n: int, *, sparse: bool) -> Any:
    """The SDK's shape; numpy vectors, some rows without metadata / sparse values."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {
            "id": f"doc{i}#chunk{i % 3}",
            "values": rng.random(8, dtype=np.float32),
            "metadata": None if i % 5 == 0 else {"doc": f"doc{i}", "n": i, "tags": ["a", "b"]},
        }
        if sparse:
            row["sparse_values"] = (
                None if i % 4 == 0 else {"indices": [i, i + 10], "values": [0.5, 1.5]}
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _entries(store: Store, spec: IndexSpec, ns: str) -> list[wal.Entry]:
    return wal.read_after(store, spec.name, ns, 0)


def test_dense_frame_in_batches_with_progress(
    memory_store: Store, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws its bar although stderr is captured
    df = _frame(1_234, sparse=False)
    n = writes.upsert(memory_store, DENSE, "ns", df, batch_size=500, show_progress=True)
    assert n == 1_234
    sizes = [e.upserts.num_rows for e in _entries(memory_store, DENSE, "ns")]
    assert sizes == [500, 500, 234]  # one request (log entry) per batch, in order
    out, err = capfd.readouterr()
    assert "upserted" in err and out == ""  # the bar goes to stderr, like the SDK's tqdm
    state = TailReader(memory_store, DENSE).get("ns")
    got = state.lookup(["doc0#chunk0", "doc7#chunk1", "doc1233#chunk0"])
    assert got["doc0#chunk0"] is not None and got["doc0#chunk0"].metadata is None
    rec = got["doc7#chunk1"]
    assert rec is not None and rec.metadata == {"doc": "doc7", "n": 7, "tags": ["a", "b"]}
    assert rec.values == pytest.approx(df["values"][7].tolist())
    assert got["doc1233#chunk0"] is not None


def test_frame_default_batch_size_is_the_sdks(memory_store: Store) -> None:
    assert writes.upsert(memory_store, DENSE, "ns", _frame(1_001, sparse=False)) == 1_001
    assert [e.upserts.num_rows for e in _entries(memory_store, DENSE, "ns")] == [500, 500, 1]


def test_hybrid_frame_with_missing_sparse_values(memory_store: Store) -> None:
    df = _frame(40, sparse=True)
    assert writes.upsert(memory_store, HYBRID, "ns", df, batch_size=16, show_progress=True) == 40
    assert len(_entries(memory_store, HYBRID, "ns")) == 3
    got = TailReader(memory_store, HYBRID).get("ns").lookup(["doc4#chunk1", "doc5#chunk2"])
    no_sparse, with_sparse = got["doc4#chunk1"], got["doc5#chunk2"]
    assert no_sparse is not None and not (no_sparse.sparse_values or {}).get("indices")
    assert with_sparse is not None and with_sparse.sparse_values is not None
    assert with_sparse.sparse_values["indices"] == [5, 15]
    assert with_sparse.sparse_values["values"] == pytest.approx([0.5, 1.5])


def test_an_invalid_row_in_a_later_batch_writes_nothing(memory_store: Store) -> None:
    df = _frame(30, sparse=False)
    df.at[27, "values"] = np.ones(7, dtype=np.float32)  # wrong dimension
    with pytest.raises(InvalidArgumentError, match="nothing was written") as info:
        writes.upsert(memory_store, DENSE, "ns", df, batch_size=10, show_progress=True)
    assert "doc27#chunk0" in str(info.value)
    assert _entries(memory_store, DENSE, "ns") == []


def test_bad_batch_size_is_refused(memory_store: Store) -> None:
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        writes.upsert(memory_store, DENSE, "ns", _frame(3, sparse=False), batch_size=0)
