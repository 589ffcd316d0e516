"""k-means training at scale (issue 9 item 5, docs/kmeans.md).

Three measurements, all seeded, 32-d float32 (a smaller dimension so 10M
records fit this machine's disk and time; flops scale linearly in d):

1. ``--part train``: the training step alone, in one process, at the k the
   import chooses for 10M records (kmeans.choose_k(10M) = 2,441, sample
   625k): flat vs hierarchical, time and inertia on the sample.
2. ``--part big``: a 10M-row sample, i.e. the sample of k = 39,062 (256 per
   centroid): the k of a 500 GB namespace of 768-d vectors (163M records /
   4,096). Hierarchical fit timed; the flat fit is projected from a measured
   flat Lloyd iteration (it would take hours).
3. ``--part import``: an end-to-end import of 10M x 32-d records (10 Parquet
   files generated with numpy) on the embedded LocalCluster: the
   hierarchical path runs as coarse + cell tasks on the workers.

    .venv/bin/python benchmarks/kmeans_bench.py --part train
    .venv/bin/python benchmarks/kmeans_bench.py --part big
    .venv/bin/python benchmarks/kmeans_bench.py --part import --records 10000000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CACHE = Path(__file__).resolve().parent / ".cache"
DIM = 32


def mixture(n: int, seed: int = 0, blobs: int = 20_000) -> np.ndarray:
    """Gaussian blobs of varied spread (an embedding-like, multi-scale cloud)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(blobs, DIM)).astype(np.float32) * 3
    scale = rng.uniform(0.3, 1.5, size=blobs).astype(np.float32)
    out = np.empty((n, DIM), np.float32)
    step = 1_000_000
    for s in range(0, n, step):
        m = min(step, n - s)
        lab = rng.integers(0, blobs, m)
        out[s : s + m] = centers[lab] + rng.standard_normal((m, DIM), np.float32) * scale[lab, None]
    return out


def load() -> str:
    return os.getloadavg().__repr__()


def part_train() -> None:
    from vecstore import kmeans

    n = 10_000_000
    k = kmeans.choose_k(n)
    sample = mixture(kmeans.sample_size(k), seed=1)
    parts = np.array_split(sample, 40)  # as ~40 chunk samples
    print(f"10M records -> k = {k}, sample {len(sample):,} x {DIM}; load {load()}")
    t = time.perf_counter()
    flat = kmeans.fit_flat(sample, k, seed=0)
    t_flat = time.perf_counter() - t
    t = time.perf_counter()
    hier = kmeans.fit_parts(parts, k, seed=0)
    t_hier = time.perf_counter() - t
    i_flat, i_hier = kmeans.inertia(sample, flat), kmeans.inertia(sample, hier)
    print(f"flat:         {t_flat:8.1f} s  inertia {i_flat:.4g}  ({len(flat)} centroids)")
    print(f"hierarchical: {t_hier:8.1f} s  inertia {i_hier:.4g}  ({len(hier)} centroids)"
          f"  time x{t_flat / t_hier:.1f} faster, inertia x{i_hier / i_flat:.3f}")


def part_big(flat: bool) -> None:
    from sklearn.cluster import KMeans

    from vecstore import kmeans

    k = 39_062
    n = kmeans.sample_size(k)
    t = time.perf_counter()
    sample = mixture(n, seed=2)
    print(f"sample {n:,} x {DIM} (k = {k}) generated in {time.perf_counter() - t:.1f} s; "
          f"load {load()}")
    parts = np.array_split(sample, 400)
    t, cpu = time.perf_counter(), time.process_time()
    hier = kmeans.fit_parts(parts, k, seed=0)
    t_hier, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(f"hierarchical fit k={k}: {t_hier:.1f} s wall, {cpu:.0f} s CPU, {len(hier)} centroids, "
          f"one process; load {load()}")
    if not flat:
        return
    # flat: one Lloyd iteration on a 1/16 slice at full k, scaled (cost ~ n * k * d)
    sub = sample[: n // 16]
    t = time.perf_counter()
    KMeans(n_clusters=k, init="random", n_init=1, max_iter=1, random_state=0,
           algorithm="lloyd").fit(sub)
    t_it = (time.perf_counter() - t) * 16
    print(f"flat k={k}: one Lloyd iteration on the full sample ~{t_it:.0f} s (measured on 1/16, "
          f"x16); {kmeans.MAX_ITER} iterations ~{t_it * kmeans.MAX_ITER / 60:.0f} min")


def dataset(records: int, files: int = 10) -> Path:
    root = CACHE / f"kmeans-{records}"
    if (root / "_READY").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "big").mkdir(parents=True)
    per = records // files
    for f in range(files):
        n = per if f < files - 1 else records - per * (files - 1)
        x = mixture(n, seed=100 + f)
        ids = pa.array([f"r{f}-{i}" for i in range(n)])
        values = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)
        pq.write_table(pa.table({"id": ids, "values": values}),
                       root / "big" / f"part-{f:02d}.parquet", row_group_size=100_000)
    (root / "_READY").touch()
    return root


def part_import(records: int, flat_max_k: int | None) -> int:
    from vecstore import VecStore, kmeans
    from vecstore.runners import close_runners, get_runner

    if flat_max_k is not None:  # the driver (this process) chooses the path
        kmeans.FLAT_MAX_K = flat_max_k
    path = "flat" if kmeans.choose_k(records) <= kmeans.FLAT_MAX_K else "hierarchical"
    t = time.perf_counter()
    src = dataset(records)
    print(f"dataset {records:,} x {DIM}: {time.perf_counter() - t:.0f} s (cached after); "
          f"k = {kmeans.choose_k(records)} ({path} training); load {load()}")
    work = Path(tempfile.mkdtemp(prefix="vecstore-kmbench-"))
    try:
        vs = VecStore(str(work / "store"))
        vs.create_index("big", dimension=DIM, metric="euclidean")
        index = vs.Index("big")
        get_runner().client  # noqa: B018 - start the LocalCluster outside the timing
        t0 = time.perf_counter()
        op = index.start_import(str(src), error_mode="continue")
        job = index.wait_for_import(op.id, poll_interval=0.5, timeout=7200)
        wall = time.perf_counter() - t0
        print(f"import {job.status} in {wall:.0f} s: {job.records_imported:,} records; "
              f"load {load()}")
        if job.status != "Completed":
            print(job.error, file=sys.stderr)
            return 1
        m = __import__("vecstore.manifests", fromlist=["x"]).load_namespace(vs.store, "big", "big")
        print(f"clusters: {len(m.clusters)}")
        return 0
    finally:
        close_runners()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["train", "big", "import"], required=True)
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--no-flat", action="store_true", help="big: skip the flat projection")
    ap.add_argument("--flat-max-k", type=int, default=None,
                    help="import: kmeans.FLAT_MAX_K for this run (e.g. 4096: the flat path)")
    args = ap.parse_args()
    if args.part == "train":
        part_train()
    elif args.part == "big":
        part_big(not args.no_flat)
    else:
        return part_import(args.records, args.flat_max_k)
    return 0


if __name__ == "__main__":
    sys.exit(main())
