"""Retention (issue 12 item 5): vacuum deletes only what no protected version,
running job or unapplied log entry needs, and only after the retention
period; a reader pinned to an old version keeps answering within it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vecstore import Index, VecStore, layout, manifests, wal
from vecstore.cli.app import main
from vecstore.cli.exitcodes import EXIT_OK, EXIT_USAGE
from vecstore.jobs import JobStore, new_job_id
from vecstore.reader import Reader
from vecstore.schemas import ImportJob

D = 8
NS = "ns"


@pytest.fixture(autouse=True)
def _no_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")


def _index(root: str) -> Index:
    vs = VecStore(root)
    if not vs.has_index("m"):
        vs.create_index(name="m", dimension=D, metric="euclidean")
    return vs.Index("m")


def _upsert(index: Index, prefix: str, n: int, seed: int) -> dict[str, list[float]]:
    x = np.random.default_rng(seed).normal(size=(n, D)).astype(np.float32)
    recs = [(f"{prefix}{j}", x[j].tolist()) for j in range(n)]
    for s in range(0, n, 500):
        index.upsert(recs[s : s + 500], namespace=NS)
    return dict(recs)


def _files(index: Index) -> set[str]:
    return {k for k, _ in index.store.walk_files(layout.namespace_prefix("m", NS))}


def _ns_key(rel: str) -> str:
    return f"{layout.namespace_prefix('m', NS)}/{rel}"


def test_vacuum_keeps_a_pinned_reader_alive_within_retention(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    index = _index(root)
    model = _upsert(index, "a", 1500, 0)
    index.build(namespace=NS)
    old = manifests.load_namespace(index.store, "m", NS)
    assert old is not None
    pinned = Reader(index.store, index.spec, manifest_ttl=1e9)  # caches the old manifest
    q = model["a7"]
    assert pinned.query(vector=q, top_k=1, namespace=NS).matches[0].id == "a7"

    other = _index(root)  # another client: overwrite a7, rebuild
    other.upsert([("a7", [9.0] * D)], namespace=NS)
    other.build(namespace=NS)
    [job] = other.rebuild(NS)
    assert job.status == "Completed"
    new = manifests.load_namespace(index.store, "m", NS)
    assert new is not None and new.version > old.version

    report = other.vacuum()  # default retention 1 h: the old version is kept
    assert report.data_files == report.manifests == report.log_entries == 0
    assert set(old.files()) <= {k.split(f"/{NS}/", 1)[1] for k in _files(index)}
    # the pinned reader still answers from the old version: its cluster files
    # (read now) plus the log entries after it (kept), so it sees the overwrite
    pinned.cache.clear()
    assert pinned.namespace_state(NS).version == old.version  # type: ignore[union-attr]
    assert pinned.query(vector=[9.0] * D, top_k=1, namespace=NS).matches[0].id == "a7"
    assert pinned.query(vector=q, top_k=1, namespace=NS).matches[0].id != "a7"
    assert pinned.query(vector=model["a9"], top_k=1, namespace=NS).matches[0].id == "a9"

    report = other.vacuum(older_than=0)  # past retention: the old files go
    assert report.manifests >= 1 and report.data_files >= len(old.files())
    left = _files(index)
    assert not any(_ns_key(rel) in left for rel in old.files())
    assert all(_ns_key(rel) in left for rel in new.files())
    assert manifests.manifest_versions(index.store, "m", NS) == [new.version]
    # a reader that re-reads finds the new version; nothing lost
    fresh = Reader(index.store, index.spec)
    res = fresh.query(vector=[9.0] * D, top_k=1, namespace=NS)
    assert res.matches[0].id == "a7"
    pinned.tracker.invalidate(NS)
    assert pinned.query(vector=[9.0] * D, top_k=1, namespace=NS).matches[0].id == "a7"


def test_vacuum_never_deletes_the_visible_version_or_unapplied_entries(tmp_path: Path) -> None:
    index = _index(str(tmp_path / "store"))
    model = _upsert(index, "a", 1000, 0)
    index.build(namespace=NS)
    model.update(_upsert(index, "b", 300, 1))  # unbuilt: only in the log
    index.delete(ids=["a1", "a2"], namespace=NS)
    model.pop("a1"), model.pop("a2")
    visible = manifests.load_namespace(index.store, "m", NS)
    assert visible is not None
    pending = [n for n in wal.list_lsns(index.store, "m", NS) if n > (visible.applied_lsn or 0)]
    assert pending
    # an orphan of a losing builder (older than retention) and a running job's file
    index.store.write_bytes(_ns_key("data/b99-orphan.parquet"), b"x")
    job = ImportJob(
        id=new_job_id(),
        kind="rebuild",
        index="m",
        uri=index.store.uri,
        status="InProgress",
        report={"namespace": NS, "base_version": visible.version},
    )
    JobStore(index.store, "m").create(job)
    index.store.write_bytes(_ns_key(f"data/{job.id}-x.parquet"), b"x")

    index.vacuum(older_than=0)
    left = _files(index)
    assert all(_ns_key(rel) in left for rel in visible.files())
    assert _ns_key("data/b99-orphan.parquet") not in left
    assert _ns_key(f"data/{job.id}-x.parquet") in left
    assert set(pending) <= set(wal.list_lsns(index.store, "m", NS))
    assert not [n for n in wal.list_lsns(index.store, "m", NS) if n <= (visible.applied_lsn or 0)]
    wal.clear_caches()
    fresh = _index(str(tmp_path / "store"))
    ids = sorted(i for page in fresh.list(namespace=NS) for i in page)
    assert ids == sorted(model)
    fresh.build(namespace=NS)  # the build works after vacuum ...
    # the running rebuild's base keeps its log entries; once it is over, the log
    # empties and the next LSN follows the visible manifest's applied_lsn
    assert wal.list_lsns(index.store, "m", NS)
    JobStore(index.store, "m").save(job.model_copy(update={"status": "Failed"}))
    fresh.vacuum(older_than=0)
    assert wal.list_lsns(index.store, "m", NS) == []
    wal.clear_caches()
    fresh = _index(str(tmp_path / "store"))
    fresh.upsert([("z", [0.5] * D)], namespace=NS)
    assert fresh.fetch(["z", "b3"], namespace=NS).vectors.keys() == {"z", "b3"}


def test_vacuum_keeps_recent_files_and_a_running_rebuilds_base(tmp_path: Path) -> None:
    index = _index(str(tmp_path / "store"))
    _upsert(index, "a", 800, 0)
    index.build(namespace=NS)
    base = manifests.load_namespace(index.store, "m", NS)
    assert base is not None
    job = ImportJob(
        id=new_job_id(),
        kind="rebuild",
        index="m",
        uri=index.store.uri,
        status="InProgress",
        report={"namespace": NS, "base_version": base.version},
    )
    JobStore(index.store, "m").create(job)
    _upsert(index, "b", 800, 1)
    index.build(namespace=NS)
    report = index.vacuum(older_than=0)
    assert base.version in report.kept_versions[NS]  # the running rebuild reads it
    assert all(_ns_key(rel) in _files(index) for rel in base.files())
    # within retention nothing superseded goes (files are seconds old)
    r2 = index.vacuum(older_than=3600)
    assert r2.data_files == r2.manifests == r2.log_entries == 0


def test_cli_rebuild_vacuum_stats_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(tmp_path / "store")
    index = _index(root)
    _upsert(index, "a", 1500, 0)
    index.build(namespace=NS)
    _upsert(index, "b", 1500, 1)
    index.build(namespace=NS)
    assert main(["--store", root, "stats", "--index", "m"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "advised" in out and f"vecstore rebuild --index m --namespace {NS}" in out
    assert (
        main(["--store", root, "rebuild", "--index", "m", "--namespace", NS, "--wait"]) == EXIT_OK
    )
    out = capsys.readouterr().out
    assert "Completed" in out and "RECALL@10" in out
    assert (
        main(["--store", root, "rebuild", "--index", "m", "--namespace", "nope", "--wait"])
        == EXIT_USAGE
    )
    assert main(["--store", root, "rebuild", "--index", "nope"]) == EXIT_USAGE
    assert main(["--store", root, "vacuum", "--index", "m", "--older-than", "-1"]) == EXIT_USAGE
    capsys.readouterr()
    assert main(["--store", root, "vacuum", "--index", "m", "--older-than", "0"]) == EXIT_OK
    assert "data files deleted" in capsys.readouterr().out
    assert main(["--store", root, "stats", "--index", "m"]) == EXIT_OK
    assert "hint:" not in capsys.readouterr().out
