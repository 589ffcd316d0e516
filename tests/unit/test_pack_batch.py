"""Tiny namespaces imported a batch at a time (tasks._pack_batch, issue 9):
the same files, rejects, counts and errors as the per-namespace path of a
packed task (tasks._pack_one), run in-process on real Parquet files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore import VecStore, layout
from vecstore.errors import IngestError
from vecstore.pipelines import plan as P
from vecstore.pipelines import tasks
from vecstore.pipelines.discover import SourceFile, inspect_file
from vecstore.segments import read_centroids
from vecstore.storage import Store

DIM = 4


def _write(path: Path, ids: list[str], vals: np.ndarray, meta: list[str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols: dict[str, Any] = {
        "id": pa.array(ids),
        "values": pa.array([list(map(float, v)) for v in vals], pa.list_(pa.float32())),
    }
    if meta is not None:
        cols["metadata"] = pa.array(meta)
    pq.write_table(pa.table(cols), path)


def _dataset(src: Path, n: int, *, nan: set[int] = frozenset(), meta: set[int] = frozenset(),
             files: int = 1) -> None:
    """``n`` namespaces of 6 records: i % 7 == 3 repeat an id, i % 5 == 2
    repeat a vector (another id), i % 9 == 4 both on one record; ``nan``:
    namespaces with a NaN vector; ``meta``: with a metadata column."""
    rng = np.random.default_rng(11)
    for i in range(n):
        ns = f"t{i:03d}"
        ids = [f"{ns}-r{j}" for j in range(6)]
        vals = rng.normal(size=(6, DIM)).astype(np.float32)
        if i % 7 == 3:
            ids[5] = ids[0]
        if i % 5 == 2:
            vals[4] = vals[1]
        if i % 9 == 4:
            ids[3], vals[3] = ids[2], vals[2]
        if i in nan:
            vals[2, 1] = np.nan
        m = [f'{{"k": {j}}}' for j in range(6)] if i in meta else None
        per = 6 // files
        for f in range(files):
            sl = slice(f * per, (f + 1) * per)
            _write(src / ns / f"{f}.parquet", ids[sl], vals[sl], m[sl] if m else None)


def _plans(source: Store, src: Path, spec: Any) -> list[P.NamespacePlan]:
    out = []
    for d in sorted(src.iterdir()):
        fs = []
        for f in sorted(d.iterdir()):
            key = f"{d.name}/{f.name}"
            info = inspect_file(
                source, SourceFile(key=key, size=f.stat().st_size, namespace=d.name),
                spec.record_layout, spec.dimension,
            )
            fs.append((info.key, info.size, list(info.row_groups)))
        out.append(P.plan_namespace(d.name, fs, spec))
    return out


def _snapshot(vs: VecStore, ctx: P.Context, results: list[tasks.PackResult]) -> list[Any]:
    """Everything a pack task produced, file names left out: per namespace
    its counts, errors, segments, id files and centroids, and the rejects."""
    store = vs.store
    out: list[Any] = []
    for r in results:
        prefix = layout.namespace_prefix(ctx.spec.name, r.ns)
        buckets = []
        # a prepared namespace carries its manifest (clusters, id files) instead
        parts = [(b.bucket, b.rows, b.clusters, b.id_file) for b in r.buckets] if r.buckets else (
            [(0, r.manifest.record_count, r.manifest.clusters, (r.manifest.id_files or [None])[0])]
            if r.manifest is not None else []
        )
        for bucket, rows, clusters, id_file in parts:
            segs = [
                (c.id, c.row_count, c.byte_size, c.stats,
                 pq.read_table(store.path(f"{prefix}/{c.segment}")).to_pylist())
                for c in clusters
            ]
            ids = pq.read_table(store.path(f"{prefix}/{id_file}")).to_pylist() if id_file else None
            buckets.append((bucket, rows, segs, ids))
        cents = read_centroids(store, f"{prefix}/{r.centroids}").tobytes() if r.centroids else None
        out.append((r.ns, r.chunks, r.dups, r.dup_error, buckets, cents))
    rej = Path(store.path(ctx.rejects))
    rejects = {
        str(p.relative_to(rej)): pq.read_table(p).to_pylist() for p in sorted(rej.rglob("*.parquet"))
    } if rej.exists() else {}
    out.append(rejects)
    return out


Run = Callable[..., Any]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """run(src, mode, batched) -> (snapshot, batches, fallbacks) or the error raised."""

    def go(src: Path, mode: str, batched: bool) -> Any:
        name = f"s{len(list(tmp_path.glob('store*')))}"
        vs = VecStore(str(tmp_path / f"store{name}"))
        vs.create_index("docs", dimension=DIM, metric="euclidean")
        spec = vs.Index("docs").spec
        source = Store(str(src))
        plans = _plans(source, src, spec)
        ctx = P.Context.make(source, vs.store, spec, f"job{name}", mode)
        calls = {"batch": 0, "direct": 0}
        real_batch, real_direct = tasks._pack_batch, tasks._pack_direct

        def batch(c: P.Context, ps: Any) -> Any:
            calls["batch"] += 1
            return real_batch(c, ps)

        def direct(c: P.Context, p: P.NamespacePlan) -> Any:
            calls["direct"] += 1
            return real_direct(c, p)

        with monkeypatch.context() as m:
            m.setattr(tasks, "_pack_batch", batch)
            m.setattr(tasks, "_pack_direct", direct)
            if not batched:  # the reference: every namespace through _pack_one
                m.setattr(tasks, "_batchable", lambda c, p: False)
                m.setattr(tasks, "_pack_direct", tasks._pack_one)
            try:
                results = tasks.pack(ctx, plans).get()
            except IngestError as exc:
                return ("error", str(exc), type(exc).__name__, getattr(exc, "row", None)), calls
        return _snapshot(vs, ctx, results), calls

    return go


@pytest.mark.parametrize("mode", ["continue", "abort"])
def test_batched_equals_per_namespace(tmp_path: Path, run: Run, mode: str) -> None:
    src = tmp_path / "src"
    _dataset(src, 40)
    got, calls = run(src, mode, True)
    want, ref = run(src, mode, False)
    assert calls == {"batch": 1, "direct": 0}  # one batch, no fallback
    assert ref["batch"] == 0
    assert got == want
    by_ns = {x[0]: x for x in got[:-1]}
    if mode == "continue":
        assert by_ns["t003"][2] == {"duplicate_id": 1}
        assert by_ns["t002"][2] == {"duplicate_values": 1}
        assert by_ns["t004"][2] == {"duplicate_id": 1}  # id and vector: counted once
        assert by_ns["t004"][4][0][1] == 5
        assert "t003/duplicates.parquet" in got[-1]
    else:
        assert by_ns["t002"][3].startswith('error reading record (file "')
        assert by_ns["t001"][3] is None and by_ns["t001"][4][0][1] == 6


@pytest.mark.parametrize("mode", ["continue", "abort"])
def test_rejects_metadata_and_files_fall_back(
    tmp_path: Path, run: Run, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of about 10 namespaces: one with a NaN vector (a reject), one
    with a metadata column, the rest plain; namespaces of two files."""
    src = tmp_path / "src"
    _dataset(src, 40, nan={15, 27}, meta={33}, files=2)
    size = sum(f.stat().st_size for f in (src / "t000").iterdir())
    monkeypatch.setattr(tasks, "BATCH_BYTES", 10 * size)
    got, calls = run(src, mode, True)
    want, _ = run(src, mode, False)
    assert got == want
    if mode == "continue":
        # the batches holding t015, t027 and t033 fall back, the others do not
        assert calls["batch"] >= 4 and 3 <= calls["direct"] <= 33, calls
        assert got[-1]["t015/000000.parquet"][0]["code"] == "non_finite"
    else:  # the first bad record is raised; the batches before it were plain
        assert got[0] == "error" and "t015/0.parquet" in got[1] and got[3] == 2
        assert calls["batch"] == 2 and 1 <= calls["direct"] <= 11, calls


@pytest.mark.parametrize("nan", [True, False])
def test_corrupt_file_raises_as_before(tmp_path: Path, run: Run, nan: bool) -> None:
    """A file that does not read: the batch falls back, and the error is the
    per-namespace path's: the record error of an earlier namespace first,
    else the file's."""
    src = tmp_path / "src"
    _dataset(src, 12, nan={2} if nan else set())
    bad = src / "t009" / "0.parquet"
    data = bytearray(bad.read_bytes())
    data[4:60] = b"\xff" * 56  # the first data page
    bad.write_bytes(bytes(data))
    got, calls = run(src, "abort", True)
    want, _ = run(src, "abort", False)
    assert got == want and calls == {"batch": 1, "direct": 3 if nan else 10}
    if nan:
        assert got[0] == "error" and "t002/0.parquet" in got[1] and got[2] == "RecordError"
    else:
        assert got[0] == "error" and "t009/0.parquet" in got[1] and got[2] == "SchemaError"
