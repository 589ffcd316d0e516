"""Small files decoded once at inspection (pipelines/decoded.py): what is
kept, what is not, and that a lost decoded file only means reading the
source again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore import VecStore
from vecstore.errors import StorageError
from vecstore.pipelines import decoded, tasks
from vecstore.pipelines import plan as P
from vecstore.pipelines.discover import SourceFile
from vecstore.storage import Store

DIM = 4


def _ctx(tmp_path: Path, src: Path) -> P.Context:
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index("docs", dimension=DIM, metric="euclidean")
    return P.Context.make(Store(str(src)), vs.store, vs.Index("docs").spec, "job", "continue")


def _file(path: Path, start: int, rows: int, *, dictionary: bool = False) -> SourceFile:
    ids = pa.array([f"r{start + i}" for i in range(rows)])
    vals = np.arange(start * DIM, (start + rows) * DIM, dtype=np.float32).reshape(rows, DIM)
    table = pa.table({
        "id": ids.dictionary_encode() if dictionary else ids,
        "values": pa.array(list(vals), pa.list_(pa.float32())),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return SourceFile(key=f"n/{path.name}", size=path.stat().st_size, namespace="n")


def test_rows_are_the_files_rows_and_unsure_types_are_not_kept(tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = [_file(src / "n" / f"{i}.parquet", 10 * i, 10 + i, dictionary=i == 2)
             for i in range(5)]
    ctx = _ctx(tmp_path, src)
    infos = tasks.inspect_many(ctx, files).get()
    assert [i.decoded is not None for i in infos] == [True, True, False, True, True]
    keys = {i.decoded[0] for i in infos if i.decoded}
    assert len(keys) == 1 and all(ctx.store.exists(k) for k in keys)
    plan = P.plan_inspected("n", infos, ctx.spec)
    with decoded.session():
        for c in plan.chunks:
            got = decoded.rows(ctx, c)
            if c.key.endswith("2.parquet"):
                assert got is None
                continue
            assert got is not None
            want = pq.read_table(src / c.key)
            assert got.equals(want), c.key
            assert decoded.rows(ctx, c, ["values"]).equals(want.select(["values"]))


def test_a_lost_decoded_file_means_reading_the_source(tmp_path: Path) -> None:
    src = tmp_path / "src"
    files = [_file(src / "n" / f"{i}.parquet", 10 * i, 10) for i in range(6)]
    ctx = _ctx(tmp_path, src)
    plan = P.plan_inspected("n", tasks.inspect_many(ctx, files).get(), ctx.spec)
    assert all(c.decoded is not None for c in plan.chunks)
    sample = tasks.sample_unit(ctx, plan.chunks, 1.0)
    cents = tasks.train(ctx, plan.k, plan.buckets, sample)
    ctx.store.delete_prefix(f"{ctx.staging}/decoded")
    assert decoded.rows(ctx, plan.chunks[0]) is None
    again = tasks.sample_unit(ctx, plan.chunks, 1.0)
    assert again.tobytes() == sample.tobytes()  # read from the source
    (r,) = tasks.scan_unit(ctx, plan.chunks, plan.sizing, cents)
    assert (r.rows_read, r.valid, r.skipped) == (60, 60, {})


def test_decoded_files_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoded file holds at most about FILE_BYTES of rows: an inspection
    task of many small files writes several, each file's rows in one."""
    src = tmp_path / "src"
    files = [_file(src / "n" / f"{i}.parquet", 10 * i, 10) for i in range(9)]
    one = pq.read_table(src / files[0].key).nbytes
    monkeypatch.setattr(decoded, "FILE_BYTES", 3 * one)
    ctx = _ctx(tmp_path, src)
    infos = tasks.inspect_many(ctx, files).get()
    keys = [i.decoded[0] for i in infos if i.decoded]
    assert len(keys) == 9 and len(set(keys)) == 3  # three files of three
    assert [i.decoded[1] for i in infos if i.decoded] == [0, 10, 20] * 3
    plan = P.plan_inspected("n", infos, ctx.spec)
    with decoded.session():
        for c in plan.chunks:
            assert decoded.rows(ctx, c).equals(pq.read_table(src / c.key))


def test_a_store_that_cannot_take_them_means_reading_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoded files are a cache: a store refusing the write leaves the
    files undecoded (the scan reads the source), not a failed inspection."""
    src = tmp_path / "src"
    files = [_file(src / "n" / f"{i}.parquet", 10 * i, 10) for i in range(3)]
    ctx = _ctx(tmp_path, src)

    def refuse(key: str, data: bytes) -> None:
        raise StorageError(f'Storage failed to write "{key}"', key=key)

    monkeypatch.setattr(ctx.store, "write_bytes", refuse)
    infos = tasks.inspect_many(ctx, files).get()
    assert [i.num_rows for i in infos] == [10, 10, 10]
    assert all(i.decoded is None for i in infos)
