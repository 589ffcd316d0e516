"""Delta segments (manifest format 3): a build appends a small segment and a
deletion list to each touched cluster instead of rewriting it, and compacts
a cluster whose deltas pass ``builder.DELTA_FRACTION``. Every read (query
with and without filters or tail, fetch, list, stats, update / delete by
filter) sees exactly the model. Real local stores through the public API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_query_support import clustered

from vecstore import Index, VecStore, builder, manifests
from vecstore.schemas import Manifest

D = 8


@pytest.fixture(autouse=True)
def _no_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")


def _index(tmp_path: Path) -> Index:
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index(name="docs", dimension=D, metric="euclidean")
    return vs.Index("docs")


def _manifest(index: Index) -> Manifest:
    m = manifests.load_namespace(index.store, index.name, "ns")
    assert m is not None
    return m


def _check(index: Index, model: dict[str, tuple[list[float], dict[str, Any]]]) -> None:
    ids = sorted(i for page in index.list(namespace="ns") for i in page)
    assert ids == sorted(model)
    assert index.describe_index_stats().namespaces["ns"].vector_count == len(model)
    some = sorted(model)[:: max(1, len(model) // 40)]
    got = index.fetch(ids=some, namespace="ns").vectors
    assert sorted(got) == some
    for k in some:
        np.testing.assert_allclose(got[k].values, model[k][0], rtol=1e-6)
        assert got[k].metadata == model[k][1]
    rng = np.random.default_rng(len(model))
    n_clusters = len(_manifest(index).clusters) or 1
    for _ in range(3):
        q = rng.standard_normal(D).astype(np.float32)
        res = index.query(vector=q.tolist(), top_k=10, namespace="ns", nprobe=n_clusters)
        d = {k: float(np.sum((np.asarray(v) - q) ** 2)) for k, (v, _) in model.items()}
        want = sorted(d, key=lambda k: (d[k], k))[:10]
        np.testing.assert_allclose(
            sorted(d[m.id] for m in res.matches), [d[k] for k in want], rtol=1e-4
        )
        flt = {"g": {"$eq": "new"}}
        res = index.query(
            vector=q.tolist(), top_k=5, namespace="ns", nprobe=n_clusters, filter=flt
        )
        match = sorted((k for k, (_, m) in model.items() if m.get("g") == "new"),
                       key=lambda k: (d[k], k))[:5]
        assert sorted(m.id for m in res.matches) == sorted(match)


def test_builds_append_deltas_then_compact(tmp_path: Path) -> None:
    index = _index(tmp_path)
    x = clustered(12_000, D, 10, seed=4)
    model: dict[str, tuple[list[float], dict[str, Any]]] = {}
    recs = [(f"r{i}", x[i].tolist(), {"g": "old", "i": i}) for i in range(10_000)]
    index.upsert(recs, namespace="ns", batch_size=1000)
    model.update({k: (v, m) for k, v, m in recs})
    index.build(namespace="ns")
    base = _manifest(index)
    assert len(base.clusters) >= 5 and not any(c.deltas for c in base.clusters)
    segments = {c.id: c.segment for c in base.clusters}
    at = 10_000
    for step in range(3):
        more = [(f"n{at + i}", x[at + i].tolist(), {"g": "new", "s": step}) for i in range(300)]
        at += 300
        index.upsert(more, namespace="ns")
        model.update({k: (v, m) for k, v, m in more})
        gone = [f"r{i}" for i in range(step * 50, step * 50 + 40)]
        index.delete(ids=gone, namespace="ns")
        for k in gone:
            model.pop(k)
        moved = f"r{900 + step}"  # an overwrite: its old row becomes a deleted row
        index.upsert([(moved, x[-1 - step].tolist(), {"g": "new"})], namespace="ns")
        model[moved] = (x[-1 - step].tolist(), {"g": "new"})
        _check(index, model)  # a tail over a delta'd version
        res = index.build(namespace="ns")["ns"]
        assert res.status == "built"
        m = _manifest(index)
        assert m.format_version == 3 and m.record_count == len(model)
        assert all(segments[c.id] == c.segment for c in m.clusters)  # nothing rewritten
        assert sum(c.delta_rows for c in m.clusters) == (step + 1) * 301
        assert sum(c.deleted_count for c in m.clusters) == (step + 1) * 41
        _check(index, model)
    # update / delete by filter resolve against segments + deltas minus deleted rows
    assert index.update(
        filter={"g": {"$eq": "new"}}, set_metadata={"u": 1}, namespace="ns"
    ).matched_records == (
        sum(1 for _, mm in model.values() if mm.get("g") == "new")
    )
    for k, (v, mm) in list(model.items()):
        if mm.get("g") == "new":
            model[k] = (v, {**mm, "u": 1})
    index.delete(filter={"s": {"$eq": 0}}, namespace="ns")
    model = {k: vm for k, vm in model.items() if vm[1].get("s") != 0}
    index.build(namespace="ns")
    _check(index, model)
    # past DELTA_FRACTION a cluster is rewritten whole: deltas and deletions go
    big = [(f"z{i}", x[i % 2000].tolist(), {"g": "z"}) for i in range(4000)]
    index.upsert(big, namespace="ns", batch_size=1000)
    model.update({k: (v, m) for k, v, m in big})
    index.build(namespace="ns")
    m = _manifest(index)
    compacted = [c for c in m.clusters if c.segment != segments.get(c.id)]
    assert compacted and all(not c.deltas and not c.deleted for c in compacted)
    _check(index, model)
    # another process (cold caches) reads the same
    other = VecStore(str(tmp_path / "store")).Index("docs")
    _check(other, model)


def test_delta_fraction_zero_rewrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder, "DELTA_FRACTION", 0.0)
    index = _index(tmp_path)
    x = clustered(6000, D, 4, seed=5)
    index.upsert([(f"r{i}", x[i].tolist(), {"g": "old"}) for i in range(5000)], namespace="ns",
                 batch_size=1000)
    index.build(namespace="ns")
    index.upsert([(f"n{i}", x[5000 + i].tolist(), {"g": "new"}) for i in range(50)],
                 namespace="ns")
    index.build(namespace="ns")
    m = _manifest(index)
    assert m.format_version == 2 and not any(c.deltas or c.deleted for c in m.clusters)
    assert '"deltas"' not in m.model_dump_json()
