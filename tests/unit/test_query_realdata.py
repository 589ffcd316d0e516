"""Default probing on the real MiniLM embeddings of shared/data (skipped without them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from segwriter import write_namespace
from test_query_support import memory_store, spec_for

from vecstore.reader import Reader

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pypi-minilm-25k"


def matrix(table: pa.Table) -> np.ndarray:
    col = table.column("values").combine_chunks()
    out: np.ndarray = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float32)
    return out.reshape(len(col), -1)


@pytest.mark.skipif(not DATA.exists(), reason="shared/data/pypi-minilm-25k not present")
def test_default_probing_recall_on_minilm() -> None:
    parts = [
        pq.read_table(p, columns=["id", "values"])
        for p in sorted((DATA / "base").glob("*.parquet"))
    ]
    base = pa.concat_tables(parts)
    ids = base.column("id").to_pylist()
    queries = matrix(pq.read_table(DATA / "queries.parquet", columns=["values"]))[:200]
    gt = np.load(DATA / "gt.npz")["idx"][:200, :10]
    store = memory_store()
    spec = spec_for("cosine", 384)
    table = pa.table(
        {"id": base.column("id"), "values": base.column("values").cast(pa.list_(pa.float32(), 384))}
    )
    write_namespace(store, spec, "ns", table)
    reader = Reader(store, spec)
    pos = {id_: i for i, id_ in enumerate(ids)}
    batch = reader.query_batch(queries, top_k=10, namespace="ns")
    hits = sum(
        len({pos[i] for i, _ in got} & set(g.tolist())) for got, g in zip(batch, gt, strict=True)
    )
    assert hits / gt.size >= 0.95
    one = reader.query(namespace="ns", vector=queries[0], top_k=10)
    assert [m.id for m in one.matches] == [i for i, _ in batch[0]]
