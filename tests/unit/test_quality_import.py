"""Quality figures of an import or load (vecstore.quality.import_report):
balance from the manifests, recall@10 estimated on a bounded sample of the
namespace's own vectors, failures leave the figure missing. Real local stores,
namespaces written by tests/segwriter.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from segwriter import records_to_table, write_namespace

from vecstore import VecStore, layout, manifests, quality
from vecstore.schemas import IndexSpec
from vecstore.segments import fixed_list
from vecstore.storage import Store

D = 128


def _spec(tmp_path: Path, metric: str = "euclidean") -> tuple[Store, IndexSpec]:
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index(name="q", dimension=D, metric=metric)
    idx = vs.Index("q")
    return idx.store, idx.spec


def _blobs(n: int, centers: int, seed: int, spread: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, D)).astype(np.float32) * 4
    return (c[rng.integers(0, centers, n)] + spread * rng.normal(size=(n, D))).astype(np.float32)


def _write(store: Store, spec: IndexSpec, ns: str, x: np.ndarray, per: int = 256) -> Any:
    t = pa.table({"id": pa.array([f"{ns}-{i}" for i in range(len(x))]), "values": fixed_list(x)})
    return write_namespace(store, spec, ns, t, target_per_cluster=per)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "dotproduct"])
def test_clustered_namespace_has_high_recall_and_manifest_balance(
    tmp_path: Path, metric: str
) -> None:
    store, spec = _spec(tmp_path, metric)
    m = _write(store, spec, "big", _blobs(20_000, 40, 0))
    rep = quality.import_report(store, spec, ["big"])
    assert rep["namespaces"] == 1 and rep["recall_namespaces"] == 1
    ns = rep["by_namespace"]["big"]
    sizes = [c.row_count for c in m.clusters]
    assert ns["records"] == 20_000 == sum(sizes)
    assert ns["clusters"] == len(sizes) > quality.default_probe(len(sizes))
    assert (ns["largest"], ns["smallest"]) == (max(sizes), min(sizes))
    assert ns["ratio"] == pytest.approx(max(sizes) / np.mean(sizes), abs=1e-3)
    assert ns["nprobe"] == quality.default_probe(len(sizes)) and not ns.get("exact")
    assert 0.9 <= ns["recall_at_10"] <= 1.0
    assert 0.9 * quality.IMPORT_QUERIES <= ns["queries"] <= quality.IMPORT_QUERIES
    assert 0 < ns["sampled"] <= quality.IMPORT_SAMPLE + quality.ROWS_PER_GROUP
    assert rep["recall_at_10"] == {"min": ns["recall_at_10"]} | {
        "median": ns["recall_at_10"],
        "max": ns["recall_at_10"],
    }
    # same seed, same figures
    again = quality.import_report(store, spec, ["big"])
    assert again["by_namespace"] == rep["by_namespace"]


def test_uniform_data_recall_lower_than_clustered(tmp_path: Path) -> None:
    store, spec = _spec(tmp_path)
    _write(store, spec, "u", np.random.default_rng(1).normal(size=(20_000, D)).astype(np.float32))
    r = quality.namespace_recall(store, spec, manifests.load_namespace(store, "q", "u"))  # type: ignore[arg-type]
    assert r["recall_at_10"] is not None and 0.0 < r["recall_at_10"] < 0.99


def test_small_namespace_is_exact_and_many_namespaces_are_summarised(tmp_path: Path) -> None:
    store, spec = _spec(tmp_path)
    names = [f"n{i:02d}" for i in range(14)]
    for i, ns in enumerate(names):
        # n13 largest ... n00 smallest; all but the largest few scan every cluster
        _write(store, spec, ns, _blobs(300 + 400 * i, 8, i), per=256)
    rep = quality.import_report(store, spec, [*names, "missing"], recall_namespaces=3)
    assert rep["namespaces"] == 14 and rep["recall_namespaces"] == 3
    assert list(rep["by_namespace"]) == ["n13", "n12", "n11"]  # the largest
    ratios = [
        quality.namespace_balance(manifests.load_namespace(store, "q", ns))["ratio"]  # type: ignore[arg-type]
        for ns in names
    ]
    assert rep["balance_ratio"]["min"] == pytest.approx(min(ratios), abs=1e-3)
    assert rep["balance_ratio"]["max"] == pytest.approx(max(ratios), abs=1e-3)
    for f in rep["by_namespace"].values():
        assert 0.0 <= f["recall_at_10"] <= 1.0
    small = quality.namespace_recall(store, spec, manifests.load_namespace(store, "q", "n00"))  # type: ignore[arg-type]
    assert small == {
        "recall_at_10": 1.0,
        "nprobe": small["clusters"],
        "clusters": small["clusters"],
        "exact": True,
    }


def test_balances_in_hand_give_the_same_report_without_reading_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver passes the balance of the namespaces it just committed: the
    report is the same, and only the estimated namespaces' manifests are read."""
    store, spec = _spec(tmp_path)
    names = [f"n{i:02d}" for i in range(6)]
    for i, ns in enumerate(names):
        _write(store, spec, ns, _blobs(300 + 400 * i, 8, i), per=256)
    plain = quality.import_report(store, spec, names, recall_namespaces=2)
    held = {ns: quality.namespace_balance(manifests.load_namespace(store, "q", ns))  # type: ignore[arg-type]
            for ns in names}
    read: list[str] = []
    real = manifests.load_namespace

    def counting(store_: object, index: str, ns: str) -> object:
        if store_ is store and index == "q":  # (other threads of the process read too)
            read.append(ns)
        return real(store_, index, ns)  # type: ignore[arg-type]

    monkeypatch.setattr(quality.manifests, "load_namespace", counting)
    given = quality.import_report(store, spec, names, recall_namespaces=2, balances=held)
    assert sorted(read) == ["n04", "n05"]  # the two largest, estimated
    for key in ("namespaces", "balance_ratio", "recall_at_10", "recall_namespaces", "by_namespace"):
        assert given[key] == plain[key], key


def test_an_error_in_one_estimate_leaves_that_figure_missing(tmp_path: Path) -> None:
    store, spec = _spec(tmp_path)
    m = _write(store, spec, "a", _blobs(20_000, 40, 2))
    _write(store, spec, "b", _blobs(20_000, 40, 3))
    # a segment of "a" is gone: its recall cannot be estimated, the rest can
    for c in m.clusters:
        store.delete(f"{layout.namespace_prefix('q', 'a')}/{c.segment}")
    rep = quality.import_report(store, spec, ["a", "b"])
    a, b = rep["by_namespace"]["a"], rep["by_namespace"]["b"]
    assert a["recall_at_10"] is None and "error" in a and a["records"] == 20_000
    assert b["recall_at_10"] is not None and rep["recall_namespaces"] == 1
    assert rep["balance_ratio"] is not None


def test_deleted_rows_are_not_sampled(tmp_path: Path) -> None:
    store, spec = _spec(tmp_path, metric="cosine")
    vs = VecStore(str(tmp_path / "store"))
    idx = vs.Index("q")
    x = _blobs(12_000, 30, 4)
    for s in range(0, len(x), 1000):
        idx.upsert([(f"v{j}", x[j].tolist()) for j in range(s, s + 1000)], namespace="w")
    idx.build(namespace="w")
    idx.delete(ids=[f"v{j}" for j in range(0, 12_000, 20)], namespace="w")  # 5%
    idx.build(namespace="w")
    m = manifests.load_namespace(store, "q", "w")
    assert m is not None and any(c.deleted for c in m.clusters)
    rep = quality.import_report(store, spec, ["w"])
    f = rep["by_namespace"]["w"]
    assert f["records"] == 11_400 == sum(c.row_count - c.deleted_count for c in m.clusters)
    assert f["recall_at_10"] is None or 0.0 <= f["recall_at_10"] <= 1.0
    # no sampled row is a deleted one (sampled widely: every row group of every file)
    groups = quality._sample_groups(
        store, layout.namespace_prefix("q", "w"), m, 5000, np.random.default_rng(0)
    )
    got = np.concatenate([g for _, g in groups])
    dead = x[::20]
    live = np.delete(x, np.arange(0, 12_000, 20), axis=0)
    d_dead = (got**2).sum(1)[:, None] + (dead**2).sum(1)[None, :] - 2 * got @ dead.T
    assert len(got) > 1000 and float(d_dead.min()) > 1e-3
    assert all(((live - g) ** 2).sum(1).min() < 1e-6 for g in got[:50])


def test_sparse_namespace_has_balance_and_no_recall(tmp_path: Path) -> None:
    vs = VecStore(str(tmp_path / "store"))
    vs.create_index(name="s", vector_type="sparse", metric="dotproduct")
    idx = vs.Index("s")
    rows = [
        {"id": f"r{i}", "sparse_values": {"indices": [i % 50, 100 + i % 7], "values": [1.0, 0.5]}}
        for i in range(3000)
    ]
    write_namespace(
        idx.store, idx.spec, "sp", records_to_table(rows, idx.spec), target_per_cluster=1000
    )
    rep = quality.import_report(idx.store, idx.spec, ["sp"])
    f = rep["by_namespace"]["sp"]
    assert f["records"] == 3000 and f["clusters"] == 3 and f["recall_at_10"] is None
    assert rep["recall_at_10"] is None and rep["recall_namespaces"] == 0
    assert rep["balance_ratio"] == {"min": 1.0, "median": 1.0, "max": 1.0}


def test_one_cluster_without_centroids_is_exact(tmp_path: Path) -> None:
    """A packed tiny namespace has one cluster and no centroids file: every
    query scans that cluster, so its recall is exact (a manifest of several
    clusters and no centroids cannot be estimated)."""
    store, spec = _spec(tmp_path)
    m = _write(store, spec, "tiny", _blobs(40, 2, 5), per=1000)
    assert len(m.clusters) == 1
    one = m.model_copy(update={"centroids": None})
    assert quality.namespace_recall(store, spec, one) == {
        "recall_at_10": 1.0, "nprobe": 1, "clusters": 1, "exact": True,
    }
    many = _write(store, spec, "many", _blobs(2_000, 8, 6), per=256)
    assert len(many.clusters) > 1
    got = quality.namespace_recall(store, spec, many.model_copy(update={"centroids": None}))
    assert got == {"recall_at_10": None, "why": "no centroids"}


@pytest.mark.parametrize(("rows", "deleted"), [(1, 0), (7, 2), (512, 0), (5, 5)])
def test_one_cluster_balance_is_the_general_rule(rows: int, deleted: int) -> None:
    """namespace_balance's one-cluster shortcut gives what balance() gives."""
    from vecstore.schemas import ClusterEntry, Manifest

    m = Manifest(
        index="q", namespace="a", version=1,
        clusters=[ClusterEntry(id=0, segment="s", row_count=rows, byte_size=1,
                               deleted_count=deleted)],
    )
    live = rows - deleted
    assert quality.namespace_balance(m) == {"records": live, **quality.balance([live]).as_dict()}
