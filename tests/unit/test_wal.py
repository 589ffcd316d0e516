"""vecstore.wal: log entries, LSNs by write-if-absent, concurrent appenders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from vecstore import wal
from vecstore.errors import CommitConflictError, FormatError
from vecstore.schemas import IndexSpec
from vecstore.storage import Store
from vecstore.writes import normalize

SPEC = IndexSpec(name="ix", dimension=4, metric="cosine")


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    wal.clear_caches()


def _table(ids: list[str]) -> pa.Table:
    return normalize([(i, [1.0, 2.0, 3.0, float(n)], {"n": n}) for n, i in enumerate(ids)], SPEC)


def test_entry_round_trip_keeps_columns_deletes_and_flags() -> None:
    t = _table(["a", "b"])
    e = wal.decode(7, wal.encode(t, ["x", "y"], delete_all=True, op="upsert"))
    assert e.lsn == 7 and e.deletes == ("x", "y") and e.delete_all
    assert e.upserts.column("id").to_pylist() == ["a", "b"]
    assert e.upserts.schema == t.schema  # the segment layout, shredded metadata included
    assert "m.num.n" in e.upserts.column_names
    assert e.size == 4


def test_deletes_only_entry() -> None:
    e = wal.decode(1, wal.encode(None, ["a"], op="delete"))
    assert e.upserts.num_rows == 0 and e.deletes == ("a",) and e.op == "delete"


def test_bad_entry_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="not valid"):
        wal.decode(3, b"not arrow")


def test_append_takes_consecutive_lsns_and_reads_back_in_order(memory_store: Store) -> None:
    lsns = [wal.append(memory_store, "ix", "ns", wal.encode(_table([f"r{i}"]))) for i in range(5)]
    assert lsns == [1, 2, 3, 4, 5]
    got = wal.read_after(memory_store, "ix", "ns", 2)
    assert [e.lsn for e in got] == [3, 4, 5]
    assert [e.upserts.column("id")[0].as_py() for e in got] == ["r2", "r3", "r4"]
    assert wal.read_after(memory_store, "ix", "ns", 3, upto=4)[0].lsn == 4
    assert wal.last_written(memory_store, "ix", "ns") == 5


def test_loser_of_a_race_takes_the_next_lsn(local_store: Store) -> None:
    wal.append(local_store, "ix", "ns", wal.encode(_table(["a"])))
    # another process wrote 2 and 3 behind this process's back
    for lsn in (2, 3):
        local_store.put_if_absent(wal.entry_key("ix", "ns", lsn), wal.encode(_table(["o"])))
    assert wal.append(local_store, "ix", "ns", wal.encode(_table(["b"]))) == 4


def test_floor_skips_applied_positions(memory_store: Store) -> None:
    assert wal.append(memory_store, "ix", "ns", wal.encode(None, ["a"]), floor=41) == 42


def test_expect_lsn_conflicts_when_taken(memory_store: Store) -> None:
    wal.append(memory_store, "ix", "ns", wal.encode(None, ["a"]))
    with pytest.raises(CommitConflictError, match="taken by another write"):
        wal.append(memory_store, "ix", "ns", wal.encode(None, ["b"]), expect_lsn=1)
    assert wal.append(memory_store, "ix", "ns", wal.encode(None, ["b"]), expect_lsn=2) == 2


def test_entries_are_cached_by_lsn(memory_store: Store) -> None:
    wal.append(memory_store, "ix", "ns", wal.encode(None, ["a"]))
    first = wal.read_entry(memory_store, "ix", "ns", 1)
    assert wal.read_entry(memory_store, "ix", "ns", 1) is first


def test_thousand_by_128_entry_is_compact() -> None:
    spec = IndexSpec(name="ix", dimension=128)
    rng = np.random.default_rng(0)
    t = normalize([(f"id-{i}", rng.random(128).tolist(), {"k": i}) for i in range(1000)], spec)
    data = wal.encode(t)
    assert len(data) < 1000 * 128 * 4 * 1.2
    assert wal.decode(1, data).upserts.equals(t)


_WRITER = textwrap.dedent(
    """
    import json, sys
    from vecstore import wal
    from vecstore.storage import Store
    store = Store(sys.argv[1])
    out = []
    for i in range(int(sys.argv[3])):
        data = wal.encode(None, [f"{sys.argv[2]}-{i}"], op="delete")
        out.append(wal.append(store, "ix", "ns", data))
    print(json.dumps(out))
    """
)


def test_two_processes_append_concurrently_without_loss(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    n = 40
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, root, name, str(n)],
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for name in ("p", "q")
    ]
    acks = {}
    for name, p in zip(("p", "q"), procs, strict=True):
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0
        acks[name] = json.loads(out)
    store = Store(root)
    entries = wal.read_after(store, "ix", "ns", 0)
    assert [e.lsn for e in entries] == list(range(1, 2 * n + 1))  # none lost, no gap
    by_lsn = {e.lsn: e.deletes[0] for e in entries}
    for name, lsns in acks.items():
        assert lsns == sorted(lsns)  # each writer's acknowledged order holds
        assert [by_lsn[lsn] for lsn in lsns] == [f"{name}-{i}" for i in range(n)]


def test_pending_reuses_a_recent_count_plus_own_appends(memory_store: Store) -> None:
    def put(ids: list[str], *, size: bool = True) -> int:
        return wal.append(
            memory_store, "ix", "ns", wal.encode(_table(ids)), size=len(ids) if size else None
        )

    put(["a", "b"])
    assert wal.pending(memory_store, "ix", "ns", 0, max_age=60) == 2  # listed
    put(["c"])  # this process: counted without listing
    assert wal.pending(memory_store, "ix", "ns", 0, max_age=60) == 3
    # another process's entry (written behind this process's back) ...
    other = wal.entry_key("ix", "ns", 3)
    memory_store.put_if_absent(other, wal.encode(_table(["x", "y", "z"])))
    assert wal.pending(memory_store, "ix", "ns", 0, max_age=60) == 3  # ... unseen within max_age
    assert wal.pending(memory_store, "ix", "ns", 0) == 6  # an exact count lists again
    assert wal.pending(memory_store, "ix", "ns", 2, max_age=60) == 3  # per applied LSN (3: x y z)
