"""Generate the golden store of manifest format 2 (``tests/golden/v2/store``).

Run ONCE, commit the output, and never regenerate it casually::

    .venv/bin/python tests/golden/make_golden_v2.py

Format 2 is the write path's (issue 11, docs/write-path.md): namespaces
created by upserts, log entries (``_wal/<lsn>.arrow``, entry format 1),
manifests with ``applied_lsn`` written by the index builder, builder leases.
``tests/unit/test_golden_v2.py`` reads these files with the current code; the
v1 store (``make_golden.py``) stays as it is.

Everything goes through the package's own code paths (``writes.upsert`` /
``update`` / ``delete``, ``builder.build``) into a ``memory://`` store, then is
copied to disk. Pinned: data file names (``writer.new_name``, a counter as in
v1), the clock of log entry headers (``wal.time``), the builder's lease owner,
and the manifests' ``created_at`` (re-serialised exactly as
``manifests.commit`` writes them, as v1 does for its tombstone).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, when run as a script
sys.path.insert(0, str(HERE))

from make_golden import fixed_names, write_index  # noqa: E402

from vecstore import builder, layout, manifests, wal, writes  # noqa: E402
from vecstore.schemas import IndexSpec, Manifest  # noqa: E402
from vecstore.storage import Store  # noqa: E402

OUT = HERE / "v2" / "store"
ROOT = "memory://golden-v2"

INDEX = "golden"
SPARSE_INDEX = "golden-sparse"
NAMESPACE = "docs"  # hybrid: 4 entries, a build (fresh k-means), 3 entries not folded
SPARSE_NAMESPACE = "terms"  # sparse: build, build (one cluster kept), delete_all not folded
OWNER = "golden-builder"
CREATED = datetime(2025, 6, 7, 8, 9, 10, tzinfo=UTC)
CLOCK0 = CREATED.timestamp()  # log entry i is stamped CLOCK0 + i seconds

SPEC = IndexSpec(
    name=INDEX,
    dimension=4,
    metric="dotproduct",  # a hybrid index
    vector_type="dense",
    cloud="aws",
    region="local",
    created_at=CREATED,
    tags={"team": "search"},
)
SPARSE_SPEC = IndexSpec(
    name=SPARSE_INDEX,
    dimension=None,
    metric="dotproduct",
    vector_type="sparse",
    cloud="gcp",
    region="europe-west4",
    created_at=CREATED,
)

DOCS_BATCHES: list[list[dict[str, object]]] = [
    [
        {
            "id": "a",
            "values": [1.0, 0.25, 0.0, 0.0],
            "sparse_values": {"indices": [1, 7], "values": [0.5, 0.25]},
            "metadata": {"genre": "drama", "year": 2001, "tags": ["x", "y"], "draft": False},
        },
        {"id": "b", "values": [0.0, 1.0, 0.5, 0.0], "metadata": {"genre": "comedy", "year": 1999}},
        {"id": "c", "values": [0.75, 0.0, 0.0, 0.125]},
    ],
    [
        {
            "id": "d",
            "values": [0.0, 0.5, 0.0, -0.5],
            "sparse_values": {"indices": [3], "values": [1.5]},
            "metadata": {"genre": "drama", "year": "unknown", "draft": True},
        },
        {"id": "e", "values": [2.0, -1.0, 0.0, 0.0], "metadata": {"tags": [], "score": 0.5}},
    ],
]
SPARSE_FIRST: list[dict[str, object]] = [
    {"id": "s1", "sparse_values": {"indices": [1, 5], "values": [1.0, 2.0]}, "metadata": {"n": 1}},
    {"id": "s2", "sparse_values": {"indices": [2], "values": [0.5]}},
]
SPARSE_SECOND: list[dict[str, object]] = [
    {"id": "s3", "sparse_values": {"indices": [9, 4], "values": [0.25, 4.0]}, "metadata": {"n": 3}},
]


@contextlib.contextmanager
def fixed_clock() -> Iterator[None]:
    """Log entry headers stamped CLOCK0 + 1, + 2, ... (one tick per read of the clock)."""
    ticks = iter(range(1, 1_000))
    original = wal.time
    wal.time = types.SimpleNamespace(time=lambda: CLOCK0 + next(ticks))  # type: ignore[assignment]
    try:
        yield
    finally:
        wal.time = original


def pin_manifests(store: Store, index: str, namespace: str) -> None:
    """Every manifest of the namespace, re-serialised with created_at = CREATED."""
    for version in manifests.manifest_versions(store, index, namespace):
        key = layout.manifest_key(index, namespace, version)
        m = Manifest.model_validate_json(store.read_bytes(key))
        pinned = m.model_copy(update={"created_at": CREATED})
        store.write_bytes(key, pinned.model_dump_json(indent=1).encode())


def build(store: Store) -> None:
    write_index(store, SPEC)
    write_index(store, SPARSE_SPEC)

    # ---- golden/docs: created by an upsert (manifest 1: empty, applied_lsn 0)
    batch = [r for b in DOCS_BATCHES for r in b]
    assert writes.upsert(store, SPEC, NAMESPACE, batch, batch_size=3) == 5  # LSN 1, 2
    assert writes.update(store, SPEC, NAMESPACE, id="b", set_metadata={"year": 2000}) == 1  # 3
    assert writes.delete(store, SPEC, NAMESPACE, ids=["c", "unknown"]) == 4  # LSN 4
    done = builder.build(store, SPEC, NAMESPACE, owner=OWNER)  # manifest 2, applied_lsn 4
    assert done.status == "built" and done.applied_lsn == 4, done
    # the unfolded tail: overwrite a clustered record, add one, delete by filter
    more = [
        {"id": "a", "values": [0.5, 0.5, 0.5, 0.5], "metadata": {"genre": "drama", "v": 2}},
        {
            "id": "f",
            "values": [0.0, 0.0, 1.0, 0.0],
            "sparse_values": {"indices": [2], "values": [1.0]},
        },
    ]
    assert writes.upsert(store, SPEC, NAMESPACE, more) == 2  # LSN 5
    assert writes.delete(store, SPEC, NAMESPACE, filter={"genre": "comedy"}) == 6  # b
    n = writes.update(store, SPEC, NAMESPACE, filter={"draft": True}, set_metadata={"seen": True})
    assert n == 1  # d, LSN 7
    pin_manifests(store, INDEX, NAMESPACE)

    # ---- golden-sparse/terms: two builds (the second keeps cluster 0), then delete_all
    assert writes.upsert(store, SPARSE_SPEC, SPARSE_NAMESPACE, SPARSE_FIRST) == 2  # LSN 1
    done = builder.build(store, SPARSE_SPEC, SPARSE_NAMESPACE, owner=OWNER)  # manifest 2
    assert done.status == "built" and done.applied_lsn == 1, done
    assert writes.upsert(store, SPARSE_SPEC, SPARSE_NAMESPACE, SPARSE_SECOND) == 1  # LSN 2
    done = builder.build(store, SPARSE_SPEC, SPARSE_NAMESPACE, owner=OWNER)  # manifest 3
    assert done.status == "built" and done.clusters_rewritten == 1, done
    assert writes.delete(store, SPARSE_SPEC, SPARSE_NAMESPACE, delete_all=True) == 3  # LSN 3
    pin_manifests(store, SPARSE_INDEX, SPARSE_NAMESPACE)


def main() -> None:
    store = Store(ROOT)
    with contextlib.suppress(Exception):
        store.fs.rm(store.root, recursive=True)
    wal.clear_caches()
    with fixed_names(), fixed_clock():
        build(store)
    if OUT.exists():
        shutil.rmtree(OUT)
    for key, _size in store.walk_files(""):
        target = OUT / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read_bytes(key))
        print(target)


if __name__ == "__main__":
    main()
