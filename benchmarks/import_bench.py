"""Import benchmark: N x 128-d clustered float32 vectors in 10 Parquet files
with JSON metadata, imported into a local store on the embedded LocalCluster.

Prints wall time, records/s and the peak memory of all processes together
(driver + Dask workers, summed RSS sampled every 50 ms), beside the floor
measured in the same run: pyarrow reading every file and writing it back once.

    .venv/bin/python benchmarks/import_bench.py                 # 1,000,000 records
    .venv/bin/python benchmarks/import_bench.py --records 2000000

Targets on 2 cores (issue 3): import <= 8x the floor; peak memory <= 2.5 GB,
and the same at 2,000,000 records.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

CACHE = Path(__file__).resolve().parent / ".cache"
DIM = 128
FILES = 10


def dataset(records: int, seed: int = 7) -> Path:
    """Generate (once) the import directory: <cache>/import-<records>/bench/part-XX.parquet."""
    root = CACHE / f"import-{records}"
    ns_dir = root / "bench"
    done = root / "_READY"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    ns_dir.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(1000, DIM)).astype(np.float32)
    per = records // FILES
    genres = np.array(["drama", "comedy", "news", "sport", "music", "tech", "food", "travel"])
    for f in range(FILES):
        n = per if f < FILES - 1 else records - per * (FILES - 1)
        which = rng.integers(0, len(centers), n)
        vals = centers[which] + rng.normal(size=(n, DIM)).astype(np.float32)
        start = f * per
        ids = pa.array([f"doc-{i}" for i in range(start, start + n)])
        years = rng.integers(1990, 2025, n)
        g = genres[rng.integers(0, len(genres), n)]
        meta = pa.array(
            [json.dumps({"year": int(y), "genre": str(s)}) for y, s in zip(years, g, strict=True)]
        )
        values = pa.FixedSizeListArray.from_arrays(pa.array(vals.reshape(-1)), DIM)
        values = values.cast(pa.list_(pa.float32()))
        table = pa.table({"id": ids, "values": values, "metadata": meta})
        pq.write_table(table, ns_dir / f"part-{f:02d}.parquet", row_group_size=50_000)
    done.touch()
    return root


class PeakRSS:
    """Peak of the summed RSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def floor(src: Path, out: Path) -> float:
    """pyarrow: read every file and write it back once."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for f in sorted((src / "bench").glob("*.parquet")):
        pq.write_table(pq.read_table(f), out / f.name)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the store (prints its path)")
    args = ap.parse_args()

    from vecstore import VecStore
    from vecstore.runners import close_runners, get_runner

    print(f"dataset: {args.records:,} x {DIM}-d float32 in {FILES} files (generating once)...")
    src = dataset(args.records)
    work = Path(tempfile.mkdtemp(prefix="vecstore-bench-"))
    try:
        floor_s = min(floor(src, work / f"floor{i}") for i in range(2))
        shutil.rmtree(work / "floor0", ignore_errors=True)
        shutil.rmtree(work / "floor1", ignore_errors=True)

        vs = VecStore(str(work / "store"))
        vs.create_index("bench", dimension=DIM, metric="euclidean")
        index = vs.Index("bench")
        get_runner().client  # noqa: B018 - start the LocalCluster outside the timing
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            op = index.start_import(str(src), error_mode="continue")
            job = index.wait_for_import(op.id, poll_interval=0.05)
            wall = time.perf_counter() - t0
        if job.status != "Completed":
            print(f"import {job.status}: {job.error}", file=sys.stderr)
            return 1
        stats = index.describe_index_stats()
        m = next(iter(stats.namespaces.values()))
        ratio = wall / floor_s
        peak_gb = mem.peak / 1e9
        print()
        print(f"{'':28}{'vecstore':>12}{'floor':>12}{'ratio':>8}  target")
        print(f"{'wall time (s)':28}{wall:12.2f}{floor_s:12.2f}{ratio:7.2f}x  <= 8x")
        print(f"{'records/s':28}{args.records / wall:12,.0f}{args.records / floor_s:12,.0f}")
        print(f"{'peak RSS, all processes (GB)':28}{peak_gb:12.2f}{'':12}{'':8}  <= 2.5 GB")
        print(f"records imported: {job.records_imported:,} (stats: {m.vector_count:,}); "
              f"skipped: {job.records_skipped}")
        man = __import__("vecstore.manifests", fromlist=["load_namespace"]).load_namespace(
            vs.store, "bench", "bench"
        )
        print(f"clusters: {len(man.clusters)}; segment bytes: {man.byte_size / 1e6:.0f} MB")
        if args.keep:
            print(f"store kept at {work / 'store'}")
        return 0
    finally:
        close_runners()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
