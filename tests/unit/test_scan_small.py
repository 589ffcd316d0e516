"""Many small files of one namespace (tasks._scan_small and the one-call
reads of small files, issue 9): the k-means sample and a scan unit's
scratch, rejects, counts and errors are the same as the file-by-file path
(reads through ``iter_batches``), on real Parquet files, in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vecstore import VecStore, kmeans
from vecstore.errors import VecstoreError
from vecstore.pipelines import plan as P
from vecstore.pipelines import tasks
from vecstore.pipelines.discover import SourceFile, inspect_file
from vecstore.storage import Store

DIM = 8


def _write(path: Path, ids: list[str], vals: np.ndarray, meta: list[str] | None = None,
           double: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols: dict[str, Any] = {
        "id": pa.array(ids),
        "values": pa.array([list(map(float, v)) for v in vals],
                           pa.list_(pa.float64() if double else pa.float32())),
    }
    if meta is not None:
        cols["metadata"] = pa.array(meta)
    pq.write_table(pa.table(cols), path)


def _dataset(src: Path, files: int, *, nan: set[int] = frozenset(), meta: bool = False,
             double: set[int] = frozenset(), dups: bool = True) -> None:
    """``files`` files of 10 records in namespace ``n``; with ``dups`` file 7
    repeats an id of file 2 and file 9 a vector of file 3; ``meta``: every
    file has metadata, the keys differing by file."""
    rng = np.random.default_rng(5)
    kept: dict[int, tuple[list[str], np.ndarray]] = {}
    for f in range(files):
        ids = [f"f{f}-r{j}" for j in range(10)]
        vals = rng.normal(size=(10, DIM)).astype(np.float32)
        if dups and f == 7:
            ids[4] = kept[2][0][1]
        if dups and f == 9:
            vals[6] = kept[3][1][0]
        if f in nan:
            vals[3, 2] = np.nan
        kept[f] = (ids, vals)
        m = [f'{{"k{f % 3}": {j}, "s": "x{j}"}}' for j in range(10)] if meta else None
        _write(src / "n" / f"{f:04d}.parquet", ids, vals, m, double=f in double)


def _scratch(store: Store, root: str) -> dict[str, list[dict[str, Any]]]:
    """The scan's scratch files (not the files decoded at inspection)."""
    base = Path(store.path(root))
    out = {}
    for p in sorted(base.rglob("*.arrow")):
        if p.relative_to(base).parts[0] == "decoded":
            continue
        out[str(p.relative_to(base))] = pa.ipc.open_file(pa.py_buffer(p.read_bytes())).read_all().to_pylist()
    return out


def _run(tmp_path: Path, src: Path, mode: str, batched: bool,
         monkeypatch: pytest.MonkeyPatch, decode: bool = False) -> Any:
    """(sample, scan results, scratch, rejects, small runs used) or the error.
    ``decode``: inspected by ``inspect_many`` (the small files decoded
    there, pipelines/decoded.py), and then no source file is read again."""
    name = f"s{len(list(tmp_path.glob('store*')))}"
    vs = VecStore(str(tmp_path / f"store{name}"))
    vs.create_index("docs", dimension=DIM, metric="euclidean")
    spec = vs.Index("docs").spec
    source = Store(str(src))
    ctx = P.Context.make(source, vs.store, spec, f"job{name}", mode)
    files = [SourceFile(key=f"n/{f.name}", size=f.stat().st_size, namespace="n")
             for f in sorted((src / "n").iterdir())]
    if decode:
        infos = [i for b in (files[:25], files[25:]) for i in tasks.inspect_many(ctx, b).get()]
    else:
        infos = [inspect_file(source, f, spec.record_layout, spec.dimension) for f in files]
    # a sample of 160 of the 600 rows: each small file drawn whole with p = 0.27
    monkeypatch.setattr(kmeans, "POINTS_PER_CENTROID", 40)
    plan = P.plan_inspected("n", infos, spec, target_per_cluster=150)
    assert plan.k > 1 and plan.sample_fraction < 1.0 and all(c.whole for c in plan.chunks)
    used = {"runs": 0, "source reads": 0, "decoded": sum(c.decoded is not None for c in plan.chunks)}
    real_read, real_open = type(source).read_bytes, type(source).open_input

    def read_bytes(self: Store, key: str) -> bytes:
        used["source reads"] += self is source
        return real_read(self, key)

    def open_input(self: Store, key: str, **kw: Any) -> Any:
        used["source reads"] += self is source
        return real_open(self, key, **kw)

    monkeypatch.setattr(type(source), "read_bytes", read_bytes)
    monkeypatch.setattr(type(source), "open_input", open_input)
    real = tasks._scan_small

    def spy(*a: Any) -> Any:
        got = real(*a)
        used["runs"] += got is not None
        return got

    with monkeypatch.context() as m:
        m.setattr(tasks, "_scan_small", spy)
        if not batched:  # the reference: every file through open_parquet + iter_batches
            m.setattr(tasks, "SMALL_FILE_BYTES", 0)
        units = [plan.chunks[:30], plan.chunks[30:]]
        sample = np.concatenate([tasks.sample_unit(ctx, u, plan.sample_fraction) for u in units])
        cents = tasks.train(ctx, plan.k, plan.buckets, sample)
        try:
            results = [r for u in units for r in tasks.scan_unit(ctx, u, plan.sizing, cents)]
        except VecstoreError as exc:
            return ("error", type(exc).__name__, str(exc)), used
    fields: dict[str, set[str]] = {}
    for r in results:  # the driver's view: the namespace's fields, any chunk
        for k, v in r.meta_fields.items():
            fields.setdefault(k, set()).update(v)
    plain = [(r.chunk, r.rows_read, r.valid, r.skipped, r.nbytes) for r in results]
    rej = Path(vs.store.path(ctx.rejects))
    rejects = {
        str(p.relative_to(rej)): pq.read_table(p).to_pylist() for p in sorted(rej.rglob("*.parquet"))
    } if rej.exists() else {}
    return (sample.tobytes(), plain, fields, _scratch(vs.store, ctx.staging), rejects), used


@pytest.mark.parametrize("decode", [False, True])
@pytest.mark.parametrize("meta", [False, True])
def test_small_files_batched_equal_file_by_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, meta: bool, decode: bool
) -> None:
    src = tmp_path / "src"
    _dataset(src, 60, meta=meta)
    got, used = _run(tmp_path, src, "continue", True, monkeypatch, decode)
    want, ref = _run(tmp_path, src, "continue", False, monkeypatch)
    assert used["runs"] == 2 and ref["runs"] == 0  # one batch per unit; none in the reference
    assert ref["decoded"] == 0 and ref["source reads"] > 60  # the sample's and the scan's
    # decoded at inspection: the sample and the scan read no source file
    assert (used["decoded"], used["source reads"] == 0) == ((60, True) if decode else (0, False))
    assert got == want
    sample, plain, fields, scratch, rejects = got
    assert len(sample) and sum(p[2] for p in plain) == 600 and not rejects
    assert {k.split("/")[0] for k in scratch} == {"ids", "vals", "shuffle"}
    assert set(fields) == ({"k0", "k1", "k2", "s"} if meta else set())


@pytest.mark.parametrize("mode", ["continue", "abort"])
def test_rejects_and_mixed_types_fall_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """A NaN in file 40 (a reject): its unit is scanned file by file, the
    other unit batched; a file of doubles in the first unit: a schema of its
    own, that unit file by file too. Same results, or the same error."""
    src = tmp_path / "src"
    _dataset(src, 60, nan={40}, double={5})
    want, _ = _run(tmp_path, src, mode, False, monkeypatch)
    got, used = _run(tmp_path, src, mode, True, monkeypatch)
    assert got == want
    assert used["runs"] == 0
    # decoded at inspection (the file of doubles in a file of its schema):
    # the file-by-file fallback reads the decoded rows too
    got, used = _run(tmp_path, src, mode, True, monkeypatch, decode=True)
    assert got == want
    assert (used["runs"], used["decoded"], used["source reads"]) == (0, 60, 0)
    if mode == "continue":
        (rej,) = got[4].values()
        assert [r["code"] for r in rej] == ["non_finite"] and rej[0]["row"] == 3
        assert sum(p[3].get("non_finite", 0) for p in got[1]) == 1
    else:
        assert got[0] == "error" and "0040.parquet" in got[2] and "row 3" in got[2]


def test_corrupt_small_file_raises_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    _dataset(src, 60, dups=False)
    bad = src / "n" / "0033.parquet"
    data = bytearray(bad.read_bytes())
    data[4:60] = b"\xff" * 56  # the first data page
    bad.write_bytes(bytes(data))
    got, _ = _run(tmp_path, src, "continue", True, monkeypatch)
    want, _ = _run(tmp_path, src, "continue", False, monkeypatch)
    assert got == want
    assert got[0] == "error" and "0033.parquet" in got[2] and "row group 0" in got[2]
    # inspection does not decode it (its footer is fine): the scan reads it and fails the same
    got, used = _run(tmp_path, src, "continue", True, monkeypatch, decode=True)
    assert got == want
    assert used["decoded"] == 59 and used["source reads"] >= 1


def test_sample_draws_small_files_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sample_unit over many one-row-group files of 10 rows: each file is
    drawn with probability ``fraction`` and taken whole, so about
    ``fraction`` of the files are read (not three times as many), and the
    sample is about ``fraction`` of the rows, drawn from files spread over
    the unit."""
    src = tmp_path / "src"
    _dataset(src, 400, dups=False)
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index("docs", dimension=DIM, metric="euclidean")
    spec = vs.Index("docs").spec
    source = Store(str(src))
    fs = [(f"n/{f.name}", f.stat().st_size, [10]) for f in sorted((src / "n").iterdir())]
    monkeypatch.setattr(kmeans, "POINTS_PER_CENTROID", 40)
    plan = P.plan_namespace("n", fs, spec, target_per_cluster=400)
    assert 0.1 < plan.sample_fraction < 0.35, plan.sample_fraction
    ctx = P.Context.make(source, vs.store, spec, "job", "continue")
    read: list[str] = []
    real = type(source).read_bytes

    def counted(self: Store, key: str) -> bytes:
        if self is ctx.source:  # not a thread left over from another test
            read.append(key)
        return real(self, key)

    monkeypatch.setattr(type(source), "read_bytes", counted)
    sample = tasks.sample_unit(ctx, plan.chunks, plan.sample_fraction)
    expect = plan.sample_fraction * 400  # files drawn; binomial sd < 10
    assert abs(len(read) - expect) < 40, (len(read), expect)
    assert len(sample) == 10 * len(read)  # each drawn file whole
    drawn = sorted(int(k.split("/")[1][:4]) for k in read)
    assert drawn[0] < 100 and drawn[-1] >= 300  # spread over the unit
    again = tasks.sample_unit(ctx, plan.chunks, plan.sample_fraction)
    assert again.tobytes() == sample.tobytes()  # seeded
