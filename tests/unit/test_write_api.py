"""The write path through the public API: upsert / update / delete / list /
build, and every read seeing the writes at once (read-your-writes).

Real local stores throughout; namespaces are imported with the segment
writer (``test_query_support.write``) where a test needs built clusters."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from test_query_support import brute, clustered, write

from vecstore import (
    Index,
    InvalidArgumentError,
    NotFoundError,
    RateLimitedError,
    UpdateResponse,
    UpsertResponse,
    VecStore,
    background,
    manifests,
)
from vecstore.cli.app import main

D = 8


@pytest.fixture(autouse=True)
def _no_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds happen when a test asks (the background builder has its own test)."""
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")


def _index(tmp_path: Path, name: str = "docs", **kw: Any) -> Index:
    vs = VecStore(str(tmp_path / "store"))
    kw.setdefault("dimension", D)
    vs.create_index(name=name, **kw)
    return vs.Index(name)


def _ids(index: Index, ns: str = "ns") -> list[str]:
    return [i for page in index.list(namespace=ns) for i in page]


def _count(index: Index, ns: str = "ns") -> int:
    return index.describe_index_stats().namespaces[ns].vector_count


# --------------------------------------------------------------- upsert forms
def test_upsert_forms_and_read_your_writes(tmp_path: Path) -> None:
    index = _index(tmp_path, metric="euclidean")
    x = np.eye(D, dtype=np.float32)
    obj = SimpleNamespace(id="obj", values=x[3].tolist(), metadata={"kind": "object"})
    res = index.upsert(
        [
            ("t2", x[0].tolist()),
            ("t3", x[1].tolist(), {"kind": "tuple"}),
            {"id": "dict", "values": x[2].tolist(), "metadata": {"kind": "dict", "n": 1}},
            obj,
        ],
        namespace="ns",
    )
    assert isinstance(res, UpsertResponse) and res.upserted_count == 4
    # the namespace exists at once, with its live count
    assert [n.name for n in index.list_namespaces()] == ["ns"]
    assert index.describe_namespace("ns").record_count == 4
    assert _count(index) == 4 and index.describe_index_stats().total_vector_count == 4
    assert _ids(index) == ["dict", "obj", "t2", "t3"]
    got = index.fetch(["dict", "obj", "missing"], namespace="ns").vectors
    assert set(got) == {"dict", "obj"}
    assert got["dict"].metadata == {"kind": "dict", "n": 1}
    assert got["obj"].values == x[3].tolist()
    res_q = index.query(vector=x[2].tolist(), top_k=2, namespace="ns", include_metadata=True)
    assert res_q.matches[0].id == "dict" and res_q.matches[0].score == pytest.approx(0.0)
    assert res_q.matches[0].metadata == {"kind": "dict", "n": 1}
    # filters over the tail
    hits = index.query(vector=x[0].tolist(), top_k=5, namespace="ns", filter={"kind": "tuple"})
    assert [m.id for m in hits.matches] == ["t3"]
    # query by an id that only exists in the tail
    by_id = index.query(id="obj", top_k=1, namespace="ns", include_values=True)
    assert by_id.matches[0].id == "obj" and by_id.matches[0].values == x[3].tolist()


def test_upsert_dataframe_and_arrow_table(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    index = _index(tmp_path)
    x = clustered(30, D, 3, seed=1)
    df = pd.DataFrame(
        {
            "id": [f"p{i}" for i in range(30)],
            "values": [row.tolist() for row in x],
            "metadata": [{"i": i} for i in range(30)],
        }
    )
    res = index.upsert_from_dataframe(df, namespace="ns", batch_size=7, show_progress=False)
    assert res.upserted_count == 30
    table = pa.table(
        {
            "id": [f"a{i}" for i in range(5)],
            "values": [row.tolist() for row in x[:5]],
            "metadata": [json.dumps({"i": i}) for i in range(5)],
        }
    )
    assert index.upsert(table, namespace="ns", batch_size=2).upserted_count == 5
    assert _count(index) == 35
    assert index.fetch(["p29", "a4"], namespace="ns").vectors["a4"].metadata == {"i": 4}


# -------------------------------------------------------------------- limits
def test_limits_name_the_record_and_write_nothing(tmp_path: Path) -> None:
    index = _index(tmp_path)
    ok = [0.0] * D
    with pytest.raises(InvalidArgumentError, match="at most 1,000 records"):
        index.upsert([(f"i{i}", ok) for i in range(1001)], namespace="ns")
    with pytest.raises(InvalidArgumentError, match=r'Invalid record 2 \(id "bad"\).*dimension'):
        index.upsert([("a", ok), ("b", ok), ("bad", [0.0] * (D + 1))], namespace="ns")
    with pytest.raises(InvalidArgumentError, match=r'record 1 \(id "big"\).*(?i:metadata)'):
        index.upsert([("a", ok), ("big", ok, {"t": "x" * 41_000})], namespace="ns")
    with pytest.raises(InvalidArgumentError, match="id"):
        index.upsert([("x" * 513, ok)], namespace="ns")
    # a batched call with one bad record in its last batch writes nothing either
    with pytest.raises(InvalidArgumentError, match='id "last"'):
        index.upsert(
            [(f"i{i}", ok) for i in range(20)] + [("last", [1.0])], namespace="ns", batch_size=5
        )
    assert index.list_namespaces() == []


def test_tail_cap_refuses_writes_with_a_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_TAIL_CAP", "10")
    index = _index(tmp_path)
    index.upsert([(f"i{i}", [1.0] * D) for i in range(8)], namespace="ns")
    with pytest.raises(RateLimitedError, match="not yet indexed"):
        index.upsert([(f"j{i}", [1.0] * D) for i in range(5)], namespace="ns")
    index.build(namespace="ns")
    index.upsert([(f"j{i}", [1.0] * D) for i in range(5)], namespace="ns")
    assert _count(index) == 13


# ------------------------------------------------------- update and delete
def test_update_by_id_and_by_filter(tmp_path: Path) -> None:
    index = _index(tmp_path)
    x = clustered(40, D, 2, seed=3)
    spec = index.spec
    write(
        index.store,
        spec,
        [
            {"id": f"c{i}", "values": x[i].tolist(), "metadata": {"g": i % 2, "n": i}}
            for i in range(30)
        ],
        namespace="ns",
        per_cluster=10,
    )
    index.upsert(
        [(f"t{i}", x[i].tolist(), {"g": i % 2, "n": i}) for i in range(30, 40)], namespace="ns"
    )
    res = index.update("c1", set_metadata={"extra": "yes"}, namespace="ns")
    assert isinstance(res, UpdateResponse) and res.matched_records == 1
    assert index.fetch(["c1"], namespace="ns").vectors["c1"].metadata == {
        "g": 1,
        "n": 1,
        "extra": "yes",
    }
    assert index.update("nope", set_metadata={"a": 1}, namespace="ns").matched_records == 0
    index.update("t31", values=x[0].tolist(), namespace="ns")
    assert index.fetch(["t31"], namespace="ns").vectors["t31"].values == pytest.approx(
        x[0].tolist()
    )
    # by filter: clusters and tail; dry_run counts without writing
    assert index.update(filter={"g": 0}, dry_run=True, namespace="ns").matched_records == 20
    assert (
        index.query(vector=x[0].tolist(), top_k=40, namespace="ns", filter={"flag": True}).matches
        == []
    )
    n = index.update(filter={"g": 0}, set_metadata={"flag": True}, namespace="ns")
    assert n.matched_records == 20
    flagged = index.query(
        vector=x[0].tolist(), top_k=40, namespace="ns", filter={"flag": True}, include_metadata=True
    )
    assert len(flagged.matches) == 20
    assert all(m.metadata is not None and m.metadata["g"] == 0 for m in flagged.matches)
    with pytest.raises(InvalidArgumentError):
        index.update(namespace="ns")


def test_delete_ids_filter_all(tmp_path: Path) -> None:
    index = _index(tmp_path)
    x = clustered(50, D, 3, seed=4)
    write(
        index.store,
        index.spec,
        [{"id": f"c{i:02d}", "values": x[i].tolist(), "metadata": {"g": i % 5}} for i in range(40)],
        namespace="ns",
        per_cluster=10,
    )
    index.upsert(
        [(f"t{i:02d}", x[i].tolist(), {"g": i % 5}) for i in range(40, 50)], namespace="ns"
    )
    index.delete(ids=["c00", "t40", "unknown"], namespace="ns")  # unknown ids: no error
    assert _count(index) == 48
    index.delete(filter={"g": 1}, namespace="ns")  # c01 c06 ... and t41 t46
    assert _count(index) == 38
    live = _ids(index)
    assert "c01" not in live and "t41" not in live and "c02" in live and len(live) == 38
    for i in range(50):
        got = index.query(vector=x[i].tolist(), top_k=50, namespace="ns")
        assert {m.id for m in got.matches} == set(live)
    assert index.query(id="c00", top_k=3, namespace="ns").matches == []
    index.delete(delete_all=True, namespace="ns")
    assert [n.name for n in index.list_namespaces()] == ["ns"]  # the namespace stays
    assert _count(index) == 0 and _ids(index) == []
    assert index.query(vector=x[0].tolist(), top_k=5, namespace="ns").matches == []
    assert index.fetch(["c02"], namespace="ns").vectors == {}
    index.upsert([("again", x[0].tolist())], namespace="ns")
    assert _ids(index) == ["again"]
    index.build()
    assert _ids(index) == ["again"] and _count(index) == 1
    index.delete(ids=["x"], namespace="never-created")  # a missing namespace: no error
    assert [n.name for n in index.list_namespaces()] == ["ns"]


# ---------------------------------------------------------- shadowed rows
def test_overwritten_cluster_rows_never_come_back(tmp_path: Path) -> None:
    """A large tail shadowing most cluster rows: the executor blanks them (no
    over-fetch), every query still returns exactly its true top k."""
    index = _index(tmp_path, metric="cosine")
    rng = np.random.default_rng(5)
    x = clustered(600, D, 6, seed=5)
    write(
        index.store,
        index.spec,
        [{"id": f"r{i:03d}", "values": x[i].tolist(), "metadata": {"i": i}} for i in range(600)],
        namespace="ns",
        per_cluster=50,
    )
    # overwrite 500 of them with other vectors, delete 50 more
    y = x.copy()
    new = rng.standard_normal((500, D)).astype(np.float32)
    for start in range(0, 500, 250):
        index.upsert(
            [(f"r{i:03d}", new[i].tolist(), {"i": -i}) for i in range(start, start + 250)],
            namespace="ns",
        )
    y[:500] = new
    index.delete(ids=[f"r{i:03d}" for i in range(500, 550)], namespace="ns")
    alive = np.r_[0:500, 550:600]
    for q in rng.standard_normal((10, D)).astype(np.float32):
        for flt in (None, {"i": {"$gte": 0}}):
            got = index.query(
                vector=q.tolist(),
                top_k=10,
                namespace="ns",
                nprobe=100,
                filter=flt,
                include_metadata=True,
            )
            pool = alive if flt is None else np.r_[0:1, 550:600]
            scores = brute(y[pool], q, "cosine")
            want = [f"r{pool[j]:03d}" for j in np.argsort(-scores, kind="stable")[:10]]
            assert [m.id for m in got.matches] == want
            for m in got.matches:
                assert m.metadata is not None
                assert m.metadata["i"] == (-int(m.id[1:]) if int(m.id[1:]) < 500 else int(m.id[1:]))
    assert _count(index) == 550
    page = index.list_paginated(namespace="ns", prefix="r5", limit=30)
    assert [v.id for v in page.vectors] == [f"r{i}" for i in range(550, 580)]
    rest = index.list_paginated(
        namespace="ns",
        prefix="r5",
        limit=30,
        pagination_token=page.pagination.next if page.pagination else None,
    )
    assert [v.id for v in rest.vectors] == [f"r{i}" for i in range(580, 600)]
    assert rest.pagination is None
    # folded: the same answers from clusters alone
    assert index.build(namespace="ns")["ns"].status == "built"
    assert _count(index) == 550 and len(_ids(index)) == 550


# ----------------------------------------------------------- sparse, hybrid
def test_sparse_index(tmp_path: Path) -> None:
    index = _index(tmp_path, vector_type="sparse", metric="dotproduct", dimension=None)
    recs = [
        {
            "id": f"s{i}",
            "sparse_values": {"indices": [i, i + 1], "values": [1.0, 0.5 + i / 100]},
            "metadata": {"i": i},
        }
        for i in range(20)
    ]
    index.upsert(recs, namespace="ns")
    q = {"indices": [5], "values": [2.0]}
    got = index.query(sparse_vector=q, top_k=3, namespace="ns")
    assert [(m.id, m.score) for m in got.matches] == [("s5", 2.0), ("s4", pytest.approx(1.08))]
    by_id = index.query(id="s5", top_k=2, namespace="ns")
    assert [m.id for m in by_id.matches] == ["s5", "s6"]  # 0.55 > 0.54 (s4)
    f = index.fetch(["s3"], namespace="ns").vectors["s3"]
    assert f.sparse_values is not None and f.sparse_values.indices == [3, 4] and f.values is None
    index.build()
    index.upsert([{"id": "s5", "sparse_values": {"indices": [9], "values": [1.0]}}], namespace="ns")
    got = index.query(sparse_vector=q, top_k=3, namespace="ns", filter={"i": {"$lt": 100}})
    assert [m.id for m in got.matches] == ["s4"]  # s5 was overwritten (no metadata now)
    assert index.fetch(["s5"], namespace="ns").vectors["s5"].sparse_values.indices == [9]  # type: ignore[union-attr]


def test_hybrid_index(tmp_path: Path) -> None:
    index = _index(tmp_path, metric="dotproduct")
    x = np.eye(D, dtype=np.float32)
    index.upsert(
        [
            {
                "id": "a",
                "values": x[0].tolist(),
                "sparse_values": {"indices": [7], "values": [5.0]},
            },
            {"id": "b", "values": (x[0] * 0.9).tolist()},
        ],
        namespace="ns",
    )
    dense_only = index.query(vector=x[0].tolist(), top_k=2, namespace="ns")
    assert [m.id for m in dense_only.matches] == ["a", "b"]
    hybrid = index.query(
        vector=x[0].tolist(),
        sparse_vector={"indices": [7], "values": [1.0]},
        top_k=2,
        namespace="ns",
        include_values=True,
    )
    assert hybrid.matches[0].id == "a" and hybrid.matches[0].score == pytest.approx(6.0)
    assert hybrid.matches[0].sparse_values is not None
    index.build()
    again = index.query(
        vector=x[0].tolist(),
        sparse_vector={"indices": [7], "values": [1.0]},
        top_k=2,
        namespace="ns",
    )
    assert [(m.id, round(m.score, 4)) for m in again.matches] == [("a", 6.0), ("b", 0.9)]


# ------------------------------------------------------- builds and CLI
def test_build_all_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    index = _index(tmp_path)
    x = clustered(40, D, 2, seed=6)
    index.upsert([(f"a{i}", x[i].tolist()) for i in range(20)], namespace="a")
    index.upsert([(f"b{i}", x[i].tolist()) for i in range(20, 40)], namespace="")
    assert sorted(background.namespaces_with_tail(index.store, index.spec)) == ["", "a"]
    res = index.build(namespace="a")
    assert res["a"].status == "built" and res["a"].manifest is not None
    assert res["a"].manifest.applied_lsn == 1
    root = str(tmp_path / "store")
    assert main(["--store", root, "build", "--index", "docs", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[""]["status"] == "built" and out[""]["entries"] == 1
    assert background.namespaces_with_tail(index.store, index.spec) == []
    assert main(["--store", root, "build", "--index", "docs", "--namespace", "a"]) == 0
    assert "nothing" in capsys.readouterr().out
    assert main(["--store", root, "build", "--index", "docs", "--namespace", "zz"]) == 64
    assert _count(index, "a") == 20 and _count(index, "") == 20
    with pytest.raises(NotFoundError):
        index.build(namespace="zz")


def test_background_builder_folds_past_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "1")
    monkeypatch.setenv("VECSTORE_BUILD_TAIL_RECORDS", "50")
    monkeypatch.setenv("VECSTORE_BUILD_TAIL_SECONDS", "3600")
    index = _index(tmp_path)
    x = clustered(80, D, 2, seed=7)
    index.upsert([(f"i{i}", x[i].tolist()) for i in range(30)], namespace="ns")
    time.sleep(1.2)
    m = manifests.load_namespace(index.store, "docs", "ns")
    assert m is not None and not m.clusters  # below the threshold: not built
    index.upsert([(f"i{i}", x[i].tolist()) for i in range(30, 80)], namespace="ns")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        m = manifests.load_namespace(index.store, "docs", "ns")
        if m is not None and m.applied_lsn == 2:
            break
        time.sleep(0.1)
    assert m is not None and m.applied_lsn == 2 and m.record_count == 80
    assert _count(index) == 80
    background.builder_for(index.store, index.spec).stop()


# ------------------------------------------------------ other processes
def test_another_process_sees_writes_within_a_second(tmp_path: Path) -> None:
    index = _index(tmp_path)
    x = clustered(20, D, 2, seed=8)
    index.upsert([(f"i{i}", x[i].tolist()) for i in range(10)], namespace="ns")
    assert _count(index) == 10  # this process's reader now caches the namespace
    script = textwrap.dedent(
        f"""
        import sys, time
        from vecstore import VecStore
        ix = VecStore({str(tmp_path / "store")!r}).Index("docs")
        ix.upsert([("late", [1.0] * {D})], namespace="ns")
        ix.delete(ids=["i0"], namespace="ns")
        print(time.time(), flush=True)
        """
    )
    env_path = str(Path(__file__).resolve().parents[2])
    # read the acknowledgement as soon as it is printed (not after the
    # writer's interpreter has shut down), then poll from this process
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PYTHONPATH": env_path, "VECSTORE_BUILD_IN_BACKGROUND": "0", "PATH": "/usr/bin"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else ""
        acked = float(line.strip())
        while True:
            ids = _ids(index)
            if "late" in ids and "i0" not in ids:
                break
            assert time.time() - acked < 1.0, "the other process's writes took over 1 s to appear"
            time.sleep(0.02)
    finally:
        proc.communicate(timeout=120)
    seen = time.time() - acked
    assert seen < 1.0
    assert index.fetch(["late"], namespace="ns").vectors
    assert index.query(id="late", top_k=1, namespace="ns").matches[0].id == "late"
    assert _count(index) == 10


def test_query_batch_merges_the_tail(tmp_path: Path) -> None:
    index = _index(tmp_path, metric="euclidean")
    x = clustered(60, D, 3, seed=9)
    write(
        index.store,
        index.spec,
        [{"id": f"c{i}", "values": x[i].tolist()} for i in range(40)],
        namespace="ns",
        per_cluster=10,
    )
    index.upsert([(f"c{i}", x[i + 40].tolist()) for i in range(20)], namespace="ns")
    y = x[:40].copy()
    y[:20] = x[40:60]
    got = index.reader.query_batch(x[:5], top_k=5, namespace="ns", nprobe=100)
    for qi, row in enumerate(got):
        want = np.argsort(brute(y, x[qi], "euclidean"), kind="stable")[:5]
        assert [i for i, _ in row] == [f"c{j}" for j in want]


# ---------------------------------------------------- filtered counts
def test_filtered_count_sees_clusters_and_the_tail(tmp_path: Path) -> None:
    index = _index(tmp_path)
    x = clustered(600, D, 6, seed=21)
    index.upsert(
        [(f"r{i}", x[i].tolist(), {"g": "a" if i % 3 else "b"}) for i in range(600)],
        namespace="ns",
    )
    index.build(namespace="ns")  # into clusters
    want = {f"r{i}": ("a" if i % 3 else "b") for i in range(600)}
    # the tail: overwrite 50 cluster rows with the other genre, delete 30, add 20
    for i in range(0, 100, 2):
        want[f"r{i}"] = "b" if want[f"r{i}"] == "a" else "a"
    index.upsert(
        [(f"r{i}", x[i].tolist(), {"g": want[f"r{i}"]}) for i in range(0, 100, 2)], namespace="ns"
    )
    index.delete(ids=[f"r{i}" for i in range(300, 330)], namespace="ns")
    for i in range(300, 330):
        del want[f"r{i}"]
    index.upsert([(f"n{i}", x[i].tolist(), {"g": "b"}) for i in range(20)], namespace="ns")
    want.update({f"n{i}": "b" for i in range(20)})
    reader = index.reader
    for g in ("a", "b"):
        expect = sum(1 for v in want.values() if v == g)
        assert reader.count("ns", {"g": {"$eq": g}}) == expect
    assert reader.count("ns", {"g": {"$in": ["a", "b"]}}) == len(want) == _count(index)
    assert reader.count("missing", {"g": "a"}) is None
    index.delete(delete_all=True, namespace="ns")
    assert reader.count("ns", {"g": "a"}) == 0


def test_delete_namespace_then_upsert_again_starts_clean(tmp_path: Path) -> None:
    """Upserts, a build, more upserts, delete_namespace, upserts again: the new
    namespace holds only the new records; its log continues past the old one."""
    from vecstore import wal

    index = _index(tmp_path)
    x = clustered(30, D, 2, seed=3)
    index.upsert([(f"old{i}", x[i].tolist()) for i in range(20)], namespace="ns")
    index.build(namespace="ns")
    index.upsert([(f"tail{i}", x[i].tolist()) for i in range(20, 25)], namespace="ns")
    index.delete_namespace("ns")
    assert wal.list_lsns(index.store, index.name, "ns") == []
    index.upsert([("fresh", x[25].tolist())], namespace="ns")
    assert _ids(index) == ["fresh"]
    assert wal.list_lsns(index.store, index.name, "ns") == [3]
    # another process (cold caches) sees the same
    wal.clear_caches()
    other = VecStore(str(tmp_path / "store")).Index("docs")
    assert _ids(other) == ["fresh"] and _count(other) == 1
    assert index.build(namespace="ns")["ns"].status == "built"
    assert _ids(other) == ["fresh"] and _count(index) == 1
    got = index.query(vector=x[0].tolist(), top_k=5, namespace="ns")
    assert [m.id for m in got.matches] == ["fresh"]
