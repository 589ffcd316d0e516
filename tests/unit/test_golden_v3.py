"""Golden files of manifest format 3 (delta segments), read with today's code.

``tests/golden/v3/store`` was written once by ``tests/golden/make_golden_v3.py``:
a namespace built fresh (one cluster), then a build that appended a delta
segment (n1, n2, r03 moved) and a deletion list (r03's old row, r05) to it,
then a log entry not folded (delete r07). A failing test means the code no
longer reads or writes format 3 the same way: a format change needs a new
version, never an edit of these files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from vecstore import VecStore, layout, manifests, wal
from vecstore.schemas import Manifest
from vecstore.segments import read_deleted
from vecstore.storage import Store

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "v3" / "store"
INDEX, NS = "golden", "docs"
DATA = "data/b{}-golden-{:032x}{}"


@pytest.fixture
def copy(tmp_path: Path) -> VecStore:
    shutil.copytree(GOLDEN, tmp_path / "store")
    wal.clear_caches()
    return VecStore(str(tmp_path / "store"))


def _raw(version: int) -> bytes:
    return (GOLDEN / layout.manifest_key(INDEX, NS, version)).read_bytes()


def test_manifest_3_exact() -> None:
    m = Manifest.model_validate_json(_raw(3))
    assert (m.format_version, m.version, m.parent_version, m.applied_lsn) == (3, 3, 2, 3)
    assert m.record_count == 41
    (c,) = m.clusters
    assert c.segment == DATA.format(1, 2, ".parquet")
    assert c.deltas == [DATA.format(3, 4, ".parquet")]
    assert c.deleted == DATA.format(3, 5, ".deleted.npy")
    assert (c.row_count, c.delta_rows, c.deleted_count, c.live_count) == (43, 3, 2, 41)
    assert c.stats["g"].values == ["moved", "new", "old"] and c.stats["x"].bool_true == 1
    assert m.id_files == [DATA.format(3, 6, ".ids.parquet")]
    assert sorted(m.files()) == sorted(
        [c.segment, *c.deltas, c.deleted, m.centroids, *m.id_files]
    )
    # manifests 1 and 2 have no deltas: their clusters serialise without the fields
    m2 = _raw(2).decode()
    assert '"deltas"' not in m2 and '"deleted_count"' not in m2 and '"format_version": 2' in m2


@pytest.mark.parametrize("version", [1, 2, 3])
def test_commit_writes_identical_json(version: int) -> None:
    raw = _raw(version)
    assert Manifest.model_validate_json(raw).model_dump_json(indent=1).encode() == raw


def test_deleted_rows_file() -> None:
    s = Store(str(GOLDEN))
    rows = read_deleted(s, f"{layout.namespace_prefix(INDEX, NS)}/{DATA.format(3, 5, '.deleted.npy')}")
    assert rows.tolist() == [3, 5] and rows.dtype == np.int32


def test_reads_segment_delta_deleted_and_tail(copy: VecStore) -> None:
    index = copy.Index(INDEX)
    want = sorted({f"r{i:02d}" for i in range(40)} - {"r05", "r07"} | {"n1", "n2"})
    assert sorted(i for page in index.list(namespace=NS) for i in page) == want
    assert index.describe_index_stats().namespaces[NS].vector_count == 40
    got = index.fetch(ids=["r03", "r05", "r07", "n2", "r04"], namespace=NS).vectors
    assert sorted(got) == ["n2", "r03", "r04"]
    assert got["r03"].values == [3.0, 3.0, 3.0, 3.0] and got["r03"].metadata == {
        "i": 3,
        "g": "moved",
    }
    assert got["n2"].metadata == {"g": "new", "x": True}
    assert got["r04"].values == [4.0, 0.0, 1.0, -0.25]
    top = index.query(vector=[3.0, 3.0, 3.0, 3.0], top_k=1, namespace=NS)
    assert top.matches[0].id == "r03"
    res = index.query(vector=[0.0, 0.0, 1.0, 0.0], top_k=40, namespace=NS)
    assert sorted(m.id for m in res.matches) == sorted(set(want))  # no deleted row comes back
    new = index.query(vector=[0.0] * 4, top_k=5, namespace=NS, filter={"g": {"$eq": "new"}})
    assert sorted(m.id for m in new.matches) == ["n1", "n2"]


def test_building_the_golden_tail_keeps_the_delta(copy: VecStore) -> None:
    index = copy.Index(INDEX)
    res = index.build(namespace=NS)[NS]
    assert res.status == "built" and res.manifest is not None
    (c,) = res.manifest.clusters
    assert c.segment == DATA.format(1, 2, ".parquet") and c.deleted_count == 3
    m = manifests.load_namespace(index.store, INDEX, NS)
    assert m is not None and m.record_count == 40 and m.format_version == 3
    assert index.describe_index_stats().namespaces[NS].vector_count == 40
