"""Generate the golden store of manifest format 3 (``tests/golden/v3/store``).

Run ONCE, commit the output, and never regenerate it casually::

    .venv/bin/python tests/golden/make_golden_v3.py

Format 3 is delta segments (docs/write-path.md "Delta segments"): a cluster
whose build appended a delta segment and a deletion list instead of
rewriting its segment. ``tests/unit/test_golden_v3.py`` reads these files with
the current code; v1 and v2 stay as they are.

Through the package's own code paths (``writes.upsert`` / ``delete``,
``builder.build``) into a ``memory://`` store, copied to disk, with the v2
generator's pins (file names, log clock, lease owner, manifest timestamps)
and a fixed build tag.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, when run as a script
sys.path.insert(0, str(HERE))

from make_golden import fixed_names, write_index  # noqa: E402
from make_golden_v2 import CLOCK0, CREATED, pin_manifests  # noqa: E402

from vecstore import builder, wal, writes  # noqa: E402
from vecstore.schemas import IndexSpec  # noqa: E402
from vecstore.storage import Store  # noqa: E402

OUT = HERE / "v3" / "store"
ROOT = "memory://golden-v3"
INDEX = "golden"
NAMESPACE = "docs"
OWNER = "golden-builder"
TAG = "golden"

SPEC = IndexSpec(
    name=INDEX,
    dimension=4,
    metric="euclidean",
    vector_type="dense",
    cloud="aws",
    region="local",
    created_at=CREATED,
)


@contextlib.contextmanager
def fixed_clock() -> Iterator[None]:
    """Log entry headers stamped CLOCK0 + 1, + 2, ... (monotonic stays real)."""
    ticks = iter(range(1, 1_000))
    original = wal.time
    wal.time = types.SimpleNamespace(  # type: ignore[assignment]
        time=lambda: CLOCK0 + next(ticks), monotonic=time.monotonic
    )
    try:
        yield
    finally:
        wal.time = original


def base_records() -> list[dict[str, object]]:
    """40 records, exact binary fractions (deterministic k-means)."""
    return [
        {
            "id": f"r{i:02d}",
            "values": [float(i % 5), float(i // 5) * 0.5, 1.0, -0.25 * (i % 3)],
            "metadata": {"i": i, "g": "old"},
        }
        for i in range(40)
    ]


def build(store: Store) -> None:
    write_index(store, SPEC)
    assert writes.upsert(store, SPEC, NAMESPACE, base_records()) == 40  # LSN 1
    done = builder.build(store, SPEC, NAMESPACE, owner=OWNER, tag=TAG)  # manifest 2 (fresh)
    assert done.status == "built" and done.manifest is not None
    assert len(done.manifest.clusters) == 1, done.manifest.clusters
    more = [
        {"id": "n1", "values": [0.5, 0.5, 0.5, 0.5], "metadata": {"g": "new"}},
        {"id": "n2", "values": [4.0, 0.0, 1.0, 0.0], "metadata": {"g": "new", "x": True}},
        {"id": "r03", "values": [3.0, 3.0, 3.0, 3.0], "metadata": {"i": 3, "g": "moved"}},
    ]
    assert writes.upsert(store, SPEC, NAMESPACE, more) == 3  # LSN 2
    writes.delete(store, SPEC, NAMESPACE, ids=["r05", "absent"])  # LSN 3
    done = builder.build(store, SPEC, NAMESPACE, owner=OWNER, tag=TAG)  # manifest 3: a delta
    assert done.status == "built" and done.manifest is not None
    (c,) = done.manifest.clusters
    assert c.deltas and c.deleted and c.deleted_count == 2 and c.delta_rows == 3, c
    assert done.manifest.format_version == 3
    assert writes.delete(store, SPEC, NAMESPACE, ids=["r07"]) == 4  # LSN 4: a tail not folded
    pin_manifests(store, INDEX, NAMESPACE)


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
