"""The write path across processes: kill -9 of writers and builders, two
writers and a reader at once, and a write / build cycle on S3 (moto)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import segwriter

from vecstore import builder, manifests, tail, wal, writes
from vecstore.reader import Reader
from vecstore.schemas import IndexSpec
from vecstore.storage import Store

SPEC = IndexSpec(name="ix", dimension=8, metric="cosine")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

_WRITER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from vecstore import writes
    from vecstore.schemas import IndexSpec
    from vecstore.storage import Store
    store, name, batches = Store(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    spec = IndexSpec(name="ix", dimension=8, metric="cosine")
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    for b in range(batches):
        recs = [(f"{name}-{b}-{i}", rng.normal(size=8).tolist(), {"b": b}) for i in range(50)]
        writes.upsert(store, spec, "ns", recs)
        if b % 3 == 2:
            writes.delete(store, spec, "ns", ids=[f"{name}-{b}-0"])
            print(json.dumps({"del": f"{name}-{b}-0"}), flush=True)
        print(json.dumps({"ack": b}), flush=True)
    """
)


def _view(store: Store) -> set[str]:
    wal.clear_caches()
    state = tail.TailReader(store, SPEC, ttl=0).get("ns")
    cluster = [i for page in Reader(store, SPEC).list(namespace="ns") for i in page]
    return set(segwriter.merged_ids(state, cluster))


def _acked(lines: list[str], name: str) -> tuple[set[str], set[str], int]:
    ids: set[str] = set()
    deleted: set[str] = set()
    last = -1
    for line in lines:
        msg = json.loads(line)
        if "ack" in msg:
            last = msg["ack"]
            ids.update(f"{name}-{last}-{i}" for i in range(50))
        else:
            deleted.add(msg["del"])
    return ids - deleted, deleted, last


def test_two_writers_and_a_reader_lose_nothing(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _WRITER, root, name, "12"],
            stdout=subprocess.PIPE,
            env=ENV,
            text=True,
        )
        for name in ("p", "q")
    }
    store = Store(root)
    seen_before: set[str] = set()
    while any(p.poll() is None for p in procs.values()):
        if manifests.load_namespace(store, "ix", "ns") is not None:
            now = _view(store)
            # a reader never sees an acknowledged record vanish unless deleted
            assert {i for i in seen_before if not i.endswith("-0")} <= now
            seen_before = now
        time.sleep(0.2)
    want: set[str] = set()
    for name, p in procs.items():
        out, _ = p.communicate()
        assert p.returncode == 0
        live, _, last = _acked(out.splitlines(), name)
        assert last == 11
        want |= live
    assert _view(store) == want
    assert builder.build(store, SPEC, "ns").status == "built"
    assert _view(store) == want


@pytest.mark.parametrize("delay", [0.6, 1.2, 2.0])
def test_kill_9_of_a_writer_keeps_every_acknowledged_write(tmp_path: Path, delay: float) -> None:
    root = str(tmp_path / "store")
    p = subprocess.Popen(
        [sys.executable, "-c", _WRITER, root, "w", "1000"],
        stdout=subprocess.PIPE,
        env=ENV,
        text=True,
    )
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    out, _ = p.communicate()
    live, deleted, last = _acked(out.splitlines(), "w")
    view = _view(Store(root))
    assert live <= view  # nothing acknowledged is lost
    extra = view - live  # at most the batch in flight, whole or not at all
    assert not (extra & deleted)
    assert all(i.startswith(f"w-{last + 1}-") for i in extra)
    assert len(extra) in (0, 49, 50)


_BUILDER = textwrap.dedent(
    """
    import sys
    from vecstore import builder
    from vecstore.schemas import IndexSpec
    from vecstore.storage import Store
    spec = IndexSpec(name="ix", dimension=8, metric="cosine")
    while True:
        builder.build(Store(sys.argv[1]), spec, "ns", lease_seconds=0.5)
    """
)


@pytest.mark.parametrize("delay", [0.3, 0.9, 1.7])
def test_kill_9_of_a_builder_shows_nothing_half_applied(tmp_path: Path, delay: float) -> None:
    root = str(tmp_path / "store")
    store = Store(root)
    rng = np.random.default_rng(7)
    model: set[str] = set()
    for b in range(20):
        recs = [(f"r{b}-{i}", rng.normal(size=8).tolist()) for i in range(100)]
        writes.upsert(store, SPEC, "ns", recs)
        model |= {r[0] for r in recs}
        writes.delete(store, SPEC, "ns", ids=[f"r{b}-1"])
        model.discard(f"r{b}-1")
    p = subprocess.Popen([sys.executable, "-c", _BUILDER, root], env=ENV)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert _view(store) == model
    time.sleep(0.6)  # the dead builder's lease expires
    result = builder.build(store, SPEC, "ns")
    assert result.status in ("built", "nothing")
    assert _view(store) == model
    m = manifests.load_namespace(store, "ix", "ns")
    assert m is not None and m.applied_lsn == 40 and m.record_count == len(model)


def test_write_and_build_cycle_on_s3(s3_store: Store) -> None:
    wal.clear_caches()
    rng = np.random.default_rng(9)
    writes.upsert(s3_store, SPEC, "ns", [(f"a{i}", rng.normal(size=8).tolist()) for i in range(30)])
    writes.update(s3_store, SPEC, "ns", id="a1", set_metadata={"x": 1})
    writes.delete(s3_store, SPEC, "ns", ids=["a2"])
    assert wal.list_lsns(s3_store, "ix", "ns") == [1, 2, 3]
    assert builder.build(s3_store, SPEC, "ns").status == "built"
    writes.delete(s3_store, SPEC, "ns", filter={"x": 1})
    want = {f"a{i}" for i in range(30)} - {"a1", "a2"}
    assert _view(s3_store) == want
    assert builder.build(s3_store, SPEC, "ns").status == "built"
    assert _view(s3_store) == want
