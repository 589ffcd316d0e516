"""The seed's Pinecone Local example ("CI/CD with Pinecone Local", "1. Write
your tests") against ``vecstore serve``: in Python with the pinecone SDK's
REST client, and in JavaScript with the official npm package under node.

Until the write path is installed the upserts of the example are replaced
by an import of the same records from local Parquet files (the rest of the
example runs as written); the example with its own upserts then skips."""

from __future__ import annotations

import hashlib
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
from serverutil import NODE_MODULES, REPO, serve, wait_import

pytestmark = pytest.mark.dask

SEED_JS = Path(__file__).parent / "seed" / "pinecone_local_example.mjs"
SEED_JS_VERBATIM = Path(__file__).parent / "seed" / "pinecone_local_seed.mjs"
JS_SDK = NODE_MODULES / "@pinecone-database" / "pinecone"  # 9.0.0
JS_SDK6 = NODE_MODULES / "pinecone-sdk6"  # npm alias of @pinecone-database/pinecone@6.1.4
SEED_TITLES = (
    "Dense index model:", "Sparse index model:", "Dense index stats:", "Sparse index stats:",
    "Dense query response:", "Sparse query response:",
)


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


def need_node(sdk: Path) -> None:
    """Skip without node or the npm package (``make install`` installs it);
    CI sets VECSTORE_REQUIRE_NODE=1, and there a missing one fails."""
    missing = (
        "node is not installed" if shutil.which("node") is None
        else f"run `make install` (npm: {sdk.relative_to(NODE_MODULES)})" if not sdk.exists()
        else None
    )
    if missing is not None:
        if os.environ.get("VECSTORE_REQUIRE_NODE") == "1":
            pytest.fail(missing)
        pytest.skip(missing)


def seed_js_block(seed: str) -> str:
    """The seed's JavaScript example: the fenced block that opens the client
    with ``controllerHostUrl``, de-indented."""
    lines = seed.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("```javascript") and any(
            "controllerHostUrl" in x for x in lines[i : i + 15]
        ):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
            block = lines[i + 1 : end]
            cut = min(len(x) - len(x.lstrip()) for x in block if x.strip())
            return "\n".join(x[cut:] for x in block) + "\n"
    raise AssertionError("no JavaScript example with controllerHostUrl in the seed")


# SHA-256 of the seed's JavaScript block (000_*.txt, "1. Write your tests")
SEED_JS_SHA256 = "dda92d0fbb24fdf2587520af7c2b2274da270eca7daf52581b5078c39e3a9670"


def test_seed_javascript_copy_is_verbatim() -> None:
    """``seed/pinecone_local_seed.mjs`` is the seed's block byte for byte:
    its hash is the block's, recorded here; where the seed documents are at
    hand (../shared/seeds next to the checkout) the block itself is
    compared too."""
    copy = SEED_JS_VERBATIM.read_text()
    assert hashlib.sha256(copy.encode()).hexdigest() == SEED_JS_SHA256
    seeds = sorted((REPO.parent / "shared" / "seeds").glob("000_*.txt"))
    if seeds:
        assert copy == seed_js_block(seeds[0].read_text())


def inspected_section(stdout: str, title: str) -> str:
    """What the seed's ``console.log(title, obj)`` printed, up to the next title."""
    start = stdout.index(title) + len(title)
    nxt = [stdout.find(t, start) for t in SEED_TITLES if stdout.find(t, start) > 0]
    return stdout[start : min(nxt, default=len(stdout))]


def test_seed_javascript_example_verbatim_with_the_sdk_it_was_written_for(tmp_path: Path) -> None:
    """The seed's JavaScript, byte for byte but for the server's URL (the
    seed's ``http://localhost:5080``), with the official Node.js SDK 6.1.4:
    the seed targets SDK 5 / 6 (its ``upsert([...])`` takes an array, which
    SDK 7 and later refuse) and Pinecone Local's hosts without a scheme
    (``'http://' + host``). It upserts, reads, queries and deletes its two
    indexes; its printed objects are checked."""
    need_node(JS_SDK6)
    work = tmp_path / "js"
    (work / "node_modules" / "@pinecone-database").mkdir(parents=True)
    (work / "node_modules" / "@pinecone-database" / "pinecone").symlink_to(JS_SDK6)
    code = SEED_JS_VERBATIM.read_text()
    assert code.count("http://localhost:5080") == 1
    with serve(tmp_path / "store") as s:
        (work / "seed.mjs").write_text(code.replace("http://localhost:5080", s.url))
        res = subprocess.run(["node", "seed.mjs"], cwd=work, capture_output=True, text=True,
                             timeout=240, check=False)
        assert res.returncode == 0, res.stderr[-3000:] + "\n--- server log ---\n" + s.log_text()[-3000:]
        assert s.client().list_indexes().names() == []  # the seed deletes its indexes
        log = s.log_text()
    out = res.stdout
    for title in SEED_TITLES:
        assert title in out, title
    dense_model = inspected_section(out, "Dense index model:")
    assert "name: 'dense-index'" in dense_model and "environment: 'development'" in dense_model
    assert "vectorType: 'sparse'" in inspected_section(out, "Sparse index model:")
    for title in ("Dense index stats:", "Sparse index stats:"):
        assert "'example-namespace': { recordCount: 3 }" in inspected_section(out, title), title
        assert "totalRecordCount: 3" in inspected_section(out, title), title
    for title in ("Dense query response:", "Sparse query response:"):
        section = inspected_section(out, title)
        assert section.count("id: ") == 1 and "id: 'vec2'" in section, section  # topK 1
    assert "score: 1," in inspected_section(out, "Dense query response:")  # cosine of vec2 and itself
    # every call answered, none refused
    statuses = [int(line.split()[-2]) for line in log.splitlines() if "DEBUG vecstore.server:" in line]
    assert len(statuses) >= 12 and all(st < 400 for st in statuses), log[-2000:]


def test_seed_javascript_example(tmp_path: Path) -> None:
    need_node(JS_SDK)
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


NODE_RESOLVES_HOST = """
import { Pinecone } from '@pinecone-database/pinecone';
const pc = new Pinecone({ apiKey: 'k', controllerHostUrl: process.env.VECSTORE_URL });
await pc.createIndex({ name: 'resolved', dimension: 2, metric: 'euclidean',
  spec: { serverless: { cloud: 'aws', region: 'us-east-1' } } });
const described = await pc.describeIndex('resolved');
const index = pc.index({ name: 'resolved', namespace: 'ns' });  // the SDK resolves the host
await index.upsert({ records: [{ id: 'a', values: [0, 0] }, { id: 'b', values: [5, 5] }] });
const res = await index.query({ vector: [4, 4], topK: 1 });
console.log(JSON.stringify({ host: described.host, privateHost: described.privateHost,
  ids: res.matches.map((m) => m.id) }));
"""


def test_node_sdk_resolves_an_index_host_itself(tmp_path: Path) -> None:
    """``pc.index({ name })`` without a host: SDK 9 describes the index and
    uses its ``private_host`` (``http://``) rather than the bare ``host``,
    which it would turn into https."""
    need_node(JS_SDK)
    work = tmp_path / "js"
    work.mkdir()
    (work / "node_modules").symlink_to(NODE_MODULES)
    (work / "resolve.mjs").write_text(NODE_RESOLVES_HOST)
    with serve(tmp_path / "store") as s:
        res = subprocess.run(["node", "resolve.mjs"], cwd=work, capture_output=True, text=True,
                             timeout=120, check=False, env={**os.environ, "VECSTORE_URL": s.url})
        assert res.returncode == 0, res.stderr[-3000:] + "\n--- server log ---\n" + s.log_text()[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["host"] == f"{s.url}/idx/resolved".removeprefix("http://")
    assert out["privateHost"] == f"{s.url}/idx/resolved"
    assert out["ids"] == ["b"]
