"""`make demo`: the main job on the embedded default (a local store, a LocalCluster).

1. Writes a small import directory under examples/data/import: three
   namespaces (news, sports and the default one) of real Parquet files with
   JSON metadata, plus a few bad records (a NaN, a wrong dimension, broken
   metadata) and duplicates, as real exports have.
2. Imports it with the `vecstore` CLI into ./vecstore-data (error mode
   continue: bad records are skipped and reported, not fatal).
3. Shows the job, the reject report and a filtered query.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "import"
STORE = Path.cwd() / "vecstore-data"
DIM = 32
CLI = [sys.executable, "-m", "vecstore.cli", "--store", str(STORE)]


def write_dataset() -> None:
    shutil.rmtree(DATA, ignore_errors=True)
    rng = np.random.default_rng(42)
    topics = {"news": ["politics", "economy", "science"], "sports": ["football", "tennis"],
              "__default__": ["misc"]}
    for ns, genres in topics.items():
        (DATA / ns).mkdir(parents=True)
        centers = rng.normal(scale=3, size=(8, DIM))
        for part in range(2):
            n = 1500
            vals = (centers[rng.integers(0, 8, n)] + rng.normal(size=(n, DIM))).astype(np.float32)
            rows = [list(map(float, v)) for v in vals]
            ids = [f"{ns}-{part}-{i}" for i in range(n)]
            meta = [
                json.dumps({"genre": genres[i % len(genres)], "year": 2000 + i % 25,
                            "tags": ["demo", ns]})
                for i in range(n)
            ]
            if ns == "news" and part == 1:
                rows[3][0] = float("nan")      # non-finite value
                rows[10] = rows[10][:-1]       # wrong dimension
                meta[20] = "{not json"          # broken metadata
                rows[30] = list(rows[31])       # identical vector: a duplicate
                ids[40] = ids[41]               # repeated id: a duplicate
            table = pa.table({"id": ids, "values": pa.array(rows, pa.list_(pa.float32())),
                              "metadata": meta})
            pq.write_table(table, DATA / ns / f"part-{part}.parquet", row_group_size=500)
    (DATA / "_SUCCESS").touch()  # marker files are ignored


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    shown = " ".join(a if len(a) <= 60 else f"'{a[:40]}...'" for a in args)
    print(f"\n$ vecstore {shown}", flush=True)
    proc = subprocess.run([*CLI, *args], text=True)
    if check and proc.returncode != 0:
        sys.exit(f"demo: `vecstore {' '.join(args)}` exited {proc.returncode}")
    return proc


def main() -> None:
    write_dataset()
    print(f"wrote {DATA} (3 namespaces, 6 Parquet files, 5 bad or duplicate records)")
    if (STORE / "indexes" / "demo").exists():
        run("indexes", "delete", "demo", "--yes")
    run("indexes", "create", "demo", "--dimension", str(DIM), "--metric", "cosine")
    run("import", str(DATA), "--index", "demo", "--error-mode", "continue", "--wait")
    run("imports", "list", "--index", "demo")
    run("stats", "--index", "demo")
    probe = pq.read_table(DATA / "news" / "part-0.parquet").column("values")[0].as_py()
    run("query", "--index", "demo", "--namespace", "news", "--vector", json.dumps(probe),
        "--top-k", "3", "--filter", json.dumps({"genre": {"$in": ["science", "economy"]}}),
        "--include-metadata")
    print(f"\nThe store is in {STORE}; rejected records are listed in the import's reject "
          "report (see `vecstore imports describe ID --index demo`).")


if __name__ == "__main__":
    main()
