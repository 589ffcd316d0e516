"""vecstore.loadhistory on S3 (moto's server): staging, the marker rule,
compaction (write-if-absent on S3) and the cost of filter_new at 100,000
loaded files, in object requests."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from vecstore import layout, loadhistory
from vecstore.loadhistory import compact, filter_new, loaded, stage
from vecstore.storage import Store

INDEX = "docs"
SRC = "s3://exports/emb"


@dataclass(frozen=True)
class F:
    key: str
    size: int = 10
    version: str = "etag:abc"


def commit(store: Store, load_id: str) -> None:
    store.put_if_absent(layout.commit_marker_key(INDEX, load_id), b"committed\n")


def test_marker_rule_and_compaction(s3_store: Store) -> None:
    store = s3_store
    files = [F(f"a/{i}.parquet") for i in range(5)]
    stage(store, INDEX, "L1", files[:3], source_uri=SRC)
    assert filter_new(store, INDEX, files, source_uri=SRC) == (files, [])
    commit(store, "L1")
    assert filter_new(store, INDEX, files, source_uri=SRC) == (files[3:], files[:3])
    stage(store, INDEX, "L2", files[3:], source_uri=SRC)
    commit(store, "L2")
    assert compact(store, INDEX)
    assert not compact(store, INDEX)
    prefix = loadhistory.history_prefix(INDEX)
    assert [k[len(prefix) + 1 :] for k, _ in store.walk_files(prefix)] == [
        "compacted/00000000000000000001.parquet"
    ]
    assert filter_new(store, INDEX, files, source_uri=SRC) == ([], files)


def test_100k_loaded_files_two_requests(s3_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store = s3_store
    for i in range(10):
        batch = [F(f"ns/{i}/{j:05d}.parquet", j, f"etag:{i}-{j}") for j in range(10_000)]
        stage(store, INDEX, f"L{i}", batch, source_uri=SRC)
        commit(store, f"L{i}")
    assert compact(store, INDEX)
    assert loaded(store, INDEX).num_rows == 100_000
    calls: Counter[str] = Counter()
    for name in ("read_bytes", "exists", "walk_files", "open_input", "read_range"):
        real: Callable[..., Any] = getattr(store, name)

        def counted(*a: Any, _real: Callable[..., Any] = real, _n: str = name, **k: Any) -> Any:
            calls[_n] += 1
            return _real(*a, **k)

        monkeypatch.setattr(store, name, counted)
    probe = [F(f"ns/3/{j:05d}.parquet", j, f"etag:3-{j}") for j in range(10_000)]
    probe.append(F("ns/new.parquet"))
    to_load, skipped = filter_new(store, INDEX, probe, source_uri=SRC)
    assert [f.key for f in to_load] == ["ns/new.parquet"] and len(skipped) == 10_000
    assert calls == {"walk_files": 1, "read_bytes": 1}
