"""vecstore.loadhistory: what was loaded into an index, on memory:// and local stores.

Real Parquet files, real commit markers and job records (no import engine).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from vecstore import layout, loadhistory
from vecstore.errors import NotFoundError
from vecstore.jobs import JobStore
from vecstore.loadhistory import compact, filter_new, loaded, stage
from vecstore.schemas import ImportJob
from vecstore.storage import Store

INDEX = "docs"
SRC = "s3://exports/emb"


@dataclass(frozen=True)
class F:
    key: str
    size: int = 10
    version: str = "etag:abc"


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest) -> Store:
    s: Store = request.getfixturevalue(f"{request.param}_store")
    return s


def commit(store: Store, load_id: str) -> None:
    store.put_if_absent(layout.commit_marker_key(INDEX, load_id), b"committed\n")


def job(store: Store, load_id: str, status: str) -> None:
    JobStore(store, INDEX).create(
        ImportJob(id=load_id, index=INDEX, uri=SRC, status=status)  # type: ignore[arg-type]
    )


def keys(files: list[F]) -> list[str]:
    return [f.key for f in files]


def test_nothing_loaded_yet(store: Store) -> None:
    files = [F("a/0.parquet"), F("a/1.parquet")]
    assert filter_new(store, INDEX, files, source_uri=SRC) == (files, [])
    assert filter_new(store, INDEX, [], source_uri=SRC) == ([], [])
    assert loaded(store, INDEX).num_rows == 0


def test_staged_counts_only_once_the_marker_exists(store: Store) -> None:
    files = [F("a/0.parquet"), F("a/1.parquet")]
    stage(store, INDEX, "L1", files, source_uri=SRC)
    job(store, "L1", "InProgress")
    assert filter_new(store, INDEX, files, source_uri=SRC) == (files, [])  # no marker yet
    commit(store, "L1")
    new = [F("a/2.parquet")]
    to_load, skipped = filter_new(store, INDEX, [*files, *new], source_uri=SRC)
    assert (to_load, skipped) == (new, files)


def test_key_size_version_and_source_all_count(store: Store) -> None:
    f = F("a/0.parquet", 10, "etag:abc")
    stage(store, INDEX, "L1", [f], source_uri=SRC + "/")  # the trailing slash does not matter
    commit(store, "L1")
    changed = [
        F("a/0.parquet", 11, "etag:abc"),  # size
        F("a/0.parquet", 10, "etag:abd"),  # rewritten in place
        F("b/0.parquet", 10, "etag:abc"),  # another key
    ]
    to_load, skipped = filter_new(store, INDEX, [f, *changed], source_uri=SRC)
    assert (to_load, skipped) == (changed, [f])
    assert filter_new(store, INDEX, [f], source_uri="s3://other/emb") == ([f], [])


def test_restaging_replaces_and_empty_stage_removes(store: Store) -> None:
    stage(store, INDEX, "L1", [F("a/0.parquet")], source_uri=SRC)
    stage(store, INDEX, "L1", [F("a/1.parquet")], source_uri=SRC)  # a resumed attempt
    commit(store, "L1")
    assert keys(
        filter_new(store, INDEX, [F("a/0.parquet"), F("a/1.parquet")], source_uri=SRC)[1]
    ) == ["a/1.parquet"]
    stage(store, INDEX, "L2", [F("a/2.parquet")], source_uri=SRC)
    stage(store, INDEX, "L2", [], source_uri=SRC)
    commit(store, "L2")
    assert loaded(store, INDEX).num_rows == 1


def test_pending_of_a_failed_load_is_dropped_a_running_one_kept(store: Store) -> None:
    stage(store, INDEX, "Lfail", [F("a/0.parquet")], source_uri=SRC)
    job(store, "Lfail", "Failed")
    stage(store, INDEX, "Lrun", [F("a/1.parquet")], source_uri=SRC)
    job(store, "Lrun", "InProgress")
    stage(store, INDEX, "Lnojob", [F("a/2.parquet")], source_uri=SRC)
    assert loaded(store, INDEX).num_rows == 0
    assert not store.exists(loadhistory.pending_key(INDEX, "Lfail"))
    assert store.exists(loadhistory.pending_key(INDEX, "Lrun"))
    assert store.exists(loadhistory.pending_key(INDEX, "Lnojob"))


def _history_keys(store: Store) -> list[str]:
    prefix = loadhistory.history_prefix(INDEX)
    return [k[len(prefix) + 1 :] for k, _ in store.walk_files(prefix)]


def test_compaction_folds_committed_loads(store: Store) -> None:
    everything: list[F] = []
    for i in range(loadhistory.COMPACT_AFTER):
        files = [F(f"a/{i}-{j}.parquet") for j in range(3)]
        everything += files
        stage(store, INDEX, f"L{i}", files, source_uri=SRC)
        commit(store, f"L{i}")
    stage(store, INDEX, "Lrun", [F("a/running.parquet")], source_uri=SRC)
    job(store, "Lrun", "InProgress")
    assert filter_new(store, INDEX, everything, source_uri=SRC) == ([], everything)
    assert _history_keys(store) == [
        "compacted/00000000000000000001.parquet",
        "pending/Lrun.parquet",
    ]
    # next round: one more committed load, then a manual compaction
    stage(store, INDEX, "Lx", [F("b/x.parquet")], source_uri=SRC)
    commit(store, "Lx")
    assert compact(store, INDEX)
    assert not compact(store, INDEX)  # nothing left to fold
    assert _history_keys(store) == [
        "compacted/00000000000000000001.parquet",  # kept: a reader may be on it
        "compacted/00000000000000000002.parquet",
        "pending/Lrun.parquet",
    ]
    assert loaded(store, INDEX).num_rows == len(everything) + 1
    commit(store, "Lrun")
    assert compact(store, INDEX)
    assert _history_keys(store) == [
        "compacted/00000000000000000002.parquet",
        "compacted/00000000000000000003.parquet",
    ]
    probe = [*everything, F("b/x.parquet"), F("a/running.parquet"), F("new.parquet")]
    assert keys(filter_new(store, INDEX, probe, source_uri=SRC)[0]) == ["new.parquet"]


def test_racing_compaction_loses_without_deleting(store: Store) -> None:
    stage(store, INDEX, "L1", [F("a/0.parquet")], source_uri=SRC)
    commit(store, "L1")
    state = loadhistory._read(store, INDEX)
    assert compact(store, INDEX)  # the other process wins
    stage(store, INDEX, "L2", [F("a/1.parquet")], source_uri=SRC)
    commit(store, "L2")
    assert not loadhistory._compact(store, INDEX, state)  # the loser: seq taken
    assert store.exists(loadhistory.pending_key(INDEX, "L2"))
    assert loaded(store, INDEX).num_rows == 2


def test_leftover_pending_of_a_crashed_compaction_is_ignored_then_removed(store: Store) -> None:
    stage(store, INDEX, "L1", [F("a/0.parquet")], source_uri=SRC)
    commit(store, "L1")
    pending = store.read_bytes(loadhistory.pending_key(INDEX, "L1"))
    assert compact(store, INDEX)
    store.write_bytes(loadhistory.pending_key(INDEX, "L1"), pending)  # as if never deleted
    assert loaded(store, INDEX).num_rows == 1  # not counted twice
    stage(store, INDEX, "L2", [F("a/1.parquet")], source_uri=SRC)
    commit(store, "L2")
    assert compact(store, INDEX)
    assert not store.exists(loadhistory.pending_key(INDEX, "L1"))


def test_a_reader_that_loses_a_listed_file_lists_again(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    stage(store, INDEX, "L1", [F("a/0.parquet")], source_uri=SRC)
    commit(store, "L1")
    real = loadhistory._read
    calls = 0

    def racing(s: Store, index: str) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise NotFoundError("gone", key="x")
        return real(s, index)

    monkeypatch.setattr(loadhistory, "_read", racing)
    assert loaded(store, INDEX).num_rows == 1 and calls == 2


def _counting(store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ("read_bytes", "exists", "walk_files", "open_input", "write_bytes"):
        real: Callable[..., Any] = getattr(store, name)

        def counted(*a: Any, _real: Callable[..., Any] = real, _n: str = name, **k: Any) -> Any:
            counts[_n] = counts.get(_n, 0) + 1
            return _real(*a, **k)

        monkeypatch.setattr(store, name, counted)
    return counts


def test_100k_loaded_files_few_reads(local_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store = local_store
    n, per_load = 100_000, 10_000
    for i in range(n // per_load):
        files = [F(f"ns/{i:02d}/{j:05d}.parquet", j, f"etag:{i}-{j}") for j in range(per_load)]
        stage(store, INDEX, f"L{i:02d}", files, source_uri=SRC)
        commit(store, f"L{i:02d}")
    assert compact(store, INDEX)
    probe = [
        F(f"ns/{i:02d}/{j:05d}.parquet", j, f"etag:{i}-{j}")
        for i in range(10)
        for j in range(0, per_load, 10)
    ]
    probe += [F(f"ns/new/{j}.parquet") for j in range(1000)]
    counts = _counting(store, monkeypatch)
    start = time.perf_counter()
    to_load, skipped = filter_new(store, INDEX, probe, source_uri=SRC)
    seconds = time.perf_counter() - start
    assert len(skipped) == 10_000 and len(to_load) == 1000
    assert counts == {"walk_files": 1, "read_bytes": 1}
    assert seconds < 5  # ~0.1 s idle; generous for a loaded 2-core machine
