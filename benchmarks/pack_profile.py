"""Profile one packed task in-process (issue 9: worker CPU per tiny namespace).

Writes N tiny namespaces (R records x 64-d, one file each), plans them as the
driver does, and runs ``tasks.pack`` on them in this process (no Dask), under
cProfile with ``--profile``. Prints the CPU seconds per namespace (the second
of two runs: the first warms imports and caches).

    .venv/bin/python benchmarks/pack_profile.py --namespaces 500 [--profile] [--memory]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DIM = 64


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--namespaces", type=int, default=500)
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write-threads", type=int, default=None)
    ap.add_argument("--memory", action="store_true",
                    help="index store in memory:// (the code's CPU without the disk's)")
    ap.add_argument("--dir", default=None,
                    help="where the files go (default: the temporary directory; /dev/shm: "
                         "without the disk's file creation)")
    a = ap.parse_args()

    from vecstore import VecStore
    from vecstore.pipelines import plan as P
    from vecstore.pipelines import tasks
    from vecstore.pipelines.discover import SourceFile, inspect_file
    from vecstore.storage import Store

    if a.write_threads and hasattr(tasks, "WRITE_THREADS"):
        tasks.WRITE_THREADS = a.write_threads
        if hasattr(tasks, "PREPARE_THREADS"):
            tasks.PREPARE_THREADS = a.write_threads
        if hasattr(Store, "io_threads"):  # the count as given, whatever the store
            Store.io_threads = lambda self, wanted: wanted  # type: ignore[method-assign]
    work = Path(tempfile.mkdtemp(prefix="packprof-", dir=a.dir))
    try:
        src = work / "src"
        rng = np.random.default_rng(7)
        for i in range(a.namespaces):
            d = src / f"ns{i:05d}"
            d.mkdir(parents=True)
            vals = rng.normal(size=(a.records, DIM)).astype(np.float32)
            t = pa.table({
                "id": pa.array([f"r{j}" for j in range(a.records)]),
                "values": pa.FixedSizeListArray.from_arrays(
                    pa.array(vals.reshape(-1)), DIM).cast(pa.list_(pa.float32())),
            })
            pq.write_table(t, d / "part-000000.parquet")
        vs = VecStore(f"memory://packprof-{work.name}" if a.memory else str(work / "store"))
        source = Store(str(src))
        infos = []
        for i in range(a.namespaces):
            key = f"ns{i:05d}/part-000000.parquet"
            infos.append((key, f"ns{i:05d}", (src / key).stat().st_size))
        best = None
        best_wall = float("inf")
        for run in range(a.runs):
            # a new index per run: its namespaces are new, as in an import (a
            # second run into the same index would meet the first's manifests)
            vs.create_index(f"bench{run}", dimension=DIM, metric="euclidean")
            spec = vs.Index(f"bench{run}").spec
            plans = []
            for key, ns, size in infos:
                info = inspect_file(source, SourceFile(key=key, namespace=ns, size=size),
                                    spec.record_layout, spec.dimension)
                plans.append(P.plan_namespace(info.namespace, [(info.key, info.size,
                                                                list(info.row_groups))], spec))
            ctx = P.Context.make(source, vs.store, spec, f"job{run}", "continue")
            prof = cProfile.Profile(time.process_time) if a.profile and run == a.runs - 1 else None
            c0 = time.process_time()
            w0 = time.perf_counter()
            if prof:
                prof.enable()
            out = tasks.pack(ctx, plans).get()
            if prof:
                prof.disable()
            cpu = time.process_time() - c0
            wall = time.perf_counter() - w0
            assert sum(r.valid for r in out) == a.namespaces * a.records
            assert all(getattr(r, "commit_error", None) is None for r in out)
            if run == 0:
                import pickle

                blob = pickle.dumps(out)
                t0 = time.process_time()
                for _ in range(5):
                    pickle.loads(blob)
                per = (time.process_time() - t0) / 5 / a.namespaces
                print(f"results: {len(blob) / a.namespaces:.0f} bytes and "
                      f"{1e6 * per:.0f} us to unpickle per namespace")
            print(f"run {run}: {cpu:.3f} s CPU, {1000 * cpu / a.namespaces:.2f} ms per namespace"
                  f" ({1000 * wall / a.namespaces:.2f} ms wall)")
            best = cpu if best is None else min(best, cpu)
            best_wall = min(best_wall, wall)
            if prof:
                st = pstats.Stats(prof)
                st.sort_stats("cumulative").print_stats(45)
                st.sort_stats("tottime").print_stats(30)
        assert best is not None
        print(f"best: {1000 * best / a.namespaces:.2f} ms CPU per namespace"
              f" (wall: best {1000 * best_wall / a.namespaces:.2f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
