"""Small files on a remote source (issue 9, "many small files", on S3):
an import of many small Parquet files from S3 (moto's server in its own
process) behind a proxy that adds a fixed latency to every request, as a
real object store has, read one file at a time per task
(``VECSTORE_SOURCE_READS=1``, the baseline: what every task did before)
against the default read-ahead (``VECSTORE_SOURCE_READS`` unset: 16 whole-
file reads in flight per task, pipelines/readahead.py), in the same run.

The source: ``--big`` namespaces of ``--files`` files each (unpacked: footer
inspection, the k-means sample and the scan read them) and ``--tiny``
namespaces of one file each (packed tasks), 10 records x 64-d per file. The
index store is a local folder.

    .venv/bin/python benchmarks/remote_files_bench.py [--latency 0.02] [--files 200] [--tiny 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DIM = 64
ROWS = 10


def dataset(root: Path, big: int, files: int, tiny: int) -> list[Path]:
    rng = np.random.default_rng(7)
    out = []
    names = [(f"big{b}", files) for b in range(big)] + [(f"t{t:04d}", 1) for t in range(tiny)]
    n = 0
    for ns, count in names:
        (root / ns).mkdir(parents=True)
        for f in range(count):
            vals = rng.normal(size=(ROWS, DIM)).astype(np.float32)
            t = pa.table({
                "id": pa.array([f"r{n + i}" for i in range(ROWS)]),
                "values": pa.FixedSizeListArray.from_arrays(pa.array(vals.reshape(-1)), DIM),
            })
            n += ROWS
            p = root / ns / f"{f:05d}.parquet"
            pq.write_table(t, p)
            out.append(p)
    return out


def run(vs: Any, uri: str, reads: int | None) -> float:
    if reads is None:
        os.environ.pop("VECSTORE_SOURCE_READS", None)
    else:
        os.environ["VECSTORE_SOURCE_READS"] = str(reads)
    name = f"r{reads or 'default'}-{time.monotonic_ns()}"
    vs.create_index(name=name, dimension=DIM, metric="euclidean", cloud="aws")
    index = vs.Index(name)
    t0 = time.perf_counter()
    job = index.wait_for_import(index.start_import(uri=uri, integration_id="src").id)
    wall = time.perf_counter() - t0
    if job.status != "Completed":
        raise SystemExit(f"import {job.status}: {job.error}")
    return wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.02, help="seconds added per request")
    ap.add_argument("--big", type=int, default=2, help="namespaces of many files")
    ap.add_argument("--files", type=int, default=200, help="files per big namespace")
    ap.add_argument("--tiny", type=int, default=200, help="namespaces of one file")
    ap.add_argument("--repeat", type=int, default=1)
    a = ap.parse_args()

    here = Path(__file__).resolve().parents[1] / "tests"
    sys.path[:0] = [str(here), str(here / "integration")]
    from cloudgen import counting_proxy  # type: ignore[import-not-found]
    from servers import run_moto, unique_name  # type: ignore[import-not-found]

    from vecstore import VecStore
    from vecstore.runners import close_runners, get_runner
    from vecstore.storage import Store

    tmp = Path(tempfile.mkdtemp(prefix="remote-files-"))
    try:
        paths = dataset(tmp / "src", a.big, a.files, a.tiny)
        with run_moto(in_process=False) as server:
            bucket = unique_name("rfb")
            server.create_bucket(bucket)
            up = Store(server.uri(bucket), server.options())
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(lambda p: up.write_bytes(
                    "import/" + p.relative_to(tmp / "src").as_posix(), p.read_bytes()), paths))
            proxy = counting_proxy(server).start()
            try:
                vs = VecStore(str(tmp / "store"),
                              integrations={"src": server.options_via(proxy.endpoint)})
                get_runner(None).client  # noqa: B018 - the cluster starts outside the timing
                proxy.latency = a.latency
                print(f"{len(paths):,} files ({a.big} namespaces x {a.files} files, {a.tiny} "
                      f"one-file namespaces), {ROWS} records x {DIM}-d each, "
                      f"{a.latency * 1000:.0f} ms per request; load {os.getloadavg()[0]:.1f}")
                for _ in range(a.repeat):
                    base = run(vs, server.uri(bucket, "import"), 1)
                    proxy.peak_in_flight = 0
                    ahead = run(vs, server.uri(bucket, "import"), None)
                    print(f"one read at a time per task: {base:6.1f} s")
                    print(f"read ahead (default):        {ahead:6.1f} s  "
                          f"({base / ahead:.2f}x faster; at most {proxy.peak_in_flight} "
                          f"requests at once)")
            finally:
                proxy.stop()
                close_runners()
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
