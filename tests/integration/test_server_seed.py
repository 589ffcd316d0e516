"""The seed's Pinecone Local example ("CI/CD with Pinecone Local", "1. Write
your tests") against ``vecstore serve``: in Python with the pinecone SDK's
REST client, and in JavaScript with the official npm package under node.

Until the write path is installed the upserts of the example are replaced
by an import of the same records from local Parquet files (the rest of the
example runs as written); the example with its own upserts then skips."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from datagen import dense_table, sparse_array, write
from seed.pinecone_local_example import DENSE_RECORDS, SPARSE_RECORDS, main
from serverutil import NODE_MODULES, serve, wait_import

pytestmark = pytest.mark.dask

SEED_JS = Path(__file__).parent / "seed" / "pinecone_local_example.mjs"
JS_SDK = NODE_MODULES / "@pinecone-database" / "pinecone"


def write_seed_imports(base: Path) -> tuple[Path, Path]:
    """The seed's records as import directories (namespace ``example-namespace``)."""
    dense_dir, sparse_dir = base / "dense-src", base / "sparse-src"
    ns = "example-namespace"
    write(dense_dir / ns / "part-0.parquet", dense_table(
        [r["id"] for r in DENSE_RECORDS],
        np.array([r["values"] for r in DENSE_RECORDS], dtype=np.float32),
        [json.dumps(r["metadata"]) for r in DENSE_RECORDS],
    ))
    write(sparse_dir / ns / "part-0.parquet", pa.table({
        "id": [r["id"] for r in SPARSE_RECORDS],
        "sparse_values": sparse_array(
            [(r["sparse_values"]["indices"], r["sparse_values"]["values"]) for r in SPARSE_RECORDS]
        ),
        "metadata": pa.array([json.dumps(r["metadata"]) for r in SPARSE_RECORDS], pa.string()),
    }))
    return dense_dir, sparse_dir


def check_results(out: dict[str, Any]) -> None:
    assert out["dense_index_model"].tags == {"environment": "development"}
    assert out["sparse_index_model"].vector_type == "sparse"
    assert out["dense_stats"].namespaces["example-namespace"].vector_count == 3
    assert out["sparse_stats"].namespaces["example-namespace"].vector_count == 3
    (dm,) = out["dense_response"].matches
    assert dm.id == "vec2" and dm.metadata == {"genre": "documentary"}
    assert dm.score == pytest.approx(1.0, abs=1e-5) and not dm.values
    (sm,) = out["sparse_response"].matches
    assert sm.id == "vec2" and sm.metadata["quarter"] == "Q4"
    assert out["left"] == []


def test_seed_python_example_as_written(tmp_path: Path) -> None:
    with serve(tmp_path / "store") as s:
        check_results(main(s.url))


def test_seed_python_example_filled_by_import(tmp_path: Path) -> None:
    dense_dir, sparse_dir = write_seed_imports(tmp_path)

    def fill(dense_index: Any, sparse_index: Any) -> None:
        for index, src in ((dense_index, dense_dir), (sparse_index, sparse_dir)):
            job = wait_import(index, index.start_import(uri=str(src)).id)
            assert job.status == "Completed", job.error

    with serve(tmp_path / "store") as s:
        check_results(main(s.url, fill=fill))


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(not JS_SDK.exists(), reason="run `make install` (npm: @pinecone-database/pinecone@9.0.0)")
def test_seed_javascript_example(tmp_path: Path) -> None:
    dense_dir, sparse_dir = write_seed_imports(tmp_path)
    work = tmp_path / "js"
    work.mkdir()
    (work / "node_modules").symlink_to(NODE_MODULES)  # ESM imports ignore NODE_PATH
    shutil.copy(SEED_JS, work / SEED_JS.name)
    sparse_js = [
        {"id": r["id"], "sparseValues": r["sparse_values"], "metadata": r["metadata"]}
        for r in SPARSE_RECORDS
    ]
    with serve(tmp_path / "store") as s:
        env = {
            **os.environ,
            "VECSTORE_URL": s.url,
            "FILL": "upsert",
            "DENSE_DIR": str(dense_dir),
            "SPARSE_DIR": str(sparse_dir),
            "SPARSE_RECORDS": json.dumps(sparse_js),
        }
        res = subprocess.run(["node", SEED_JS.name], cwd=work, env=env, capture_output=True,
                             text=True, timeout=240, check=False)
        assert res.returncode == 0, res.stderr[-3000:] + "\n--- server log ---\n" + s.log_text()[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["denseIndexModel"]["name"] == "dense-index"
    assert out["denseIndexModel"]["tags"] == {"environment": "development"}
    assert out["denseStats"]["namespaces"]["example-namespace"]["recordCount"] == 3
    assert out["sparseStats"]["namespaces"]["example-namespace"]["recordCount"] == 3
    dm = out["denseQueryResponse"]["matches"][0]
    assert dm["id"] == "vec2" and dm["metadata"] == {"genre": "documentary"}
    sm = out["sparseQueryResponse"]["matches"]
    assert sm[0]["id"] == "vec2"  # the JS query of the seed has no filter: vec2 still ranks first
    assert out["left"] == []
