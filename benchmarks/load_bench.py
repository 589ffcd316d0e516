"""Batch loads, rebuilds and the quality figures (issue 12): every figure
beside its baseline from the same run.

Cases (``--cases``, comma separated; default all):

- ``quality``: the cost of the quality figures an import keeps in its record
  (``report["quality"]``, docs/quality.md): an import of ``--quality-records``
  (200,000) x 128 into one namespace and one of ``--quality-namespaces``
  (1,000) small namespaces; import wall time beside the seconds of the
  quality task, and the estimated recall@10 beside the recall@10 measured
  with real queries at default settings.
- ``load``: load ``--load`` (100,000) records, half new ids and half
  overwrites, into a ``--base`` (1,000,000) x 128 namespace
  (``start_import(uri, mode="upsert")``); baseline: the import of the base
  afresh. Target: <= 0.25x, and recall@10 at default settings >= 0.95 after.
- ``rebuild``: rebuild of the base namespace beside its fresh import; peak
  memory of all processes (driver + Dask workers, summed RSS). Targets:
  <= 1.0x, <= 2.5 GB.
- ``drift``: ten consecutive loads of 10% of the base each (new ids from a
  shifted distribution: the clusters drift), then a rebuild: recall@10, query
  p50 and the largest-cluster ratio before and after the rebuild.

    .venv/bin/python benchmarks/load_bench.py            # the issue's sizes
    .venv/bin/python benchmarks/load_bench.py --small    # ~10x smaller, a quick run
    .venv/bin/python benchmarks/load_bench.py --cases quality --small

``load``, ``rebuild`` and ``drift`` need batch loads (``mode="upsert"``);
``quality`` runs on any vecstore with the import quality report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
DIM = 128
FILES = 10
NS = "bench"
CASES = ("quality", "load", "rebuild", "drift")


# ------------------------------------------------------------------ data
def centers(seed: int) -> np.ndarray:
    """1,000 centres (import_bench's distribution; another seed: drifted data)."""
    return np.random.default_rng(seed).normal(scale=4.0, size=(1000, DIM)).astype(np.float32)


def draw(rng: np.random.Generator, cents: np.ndarray, n: int) -> np.ndarray:
    which = rng.integers(0, len(cents), n)
    return (cents[which] + rng.normal(size=(n, DIM))).astype(np.float32)


def table(ids: Sequence[str], x: np.ndarray) -> pa.Table:
    values = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), DIM)
    return pa.table({"id": pa.array(list(ids)), "values": values.cast(pa.list_(pa.float32()))})


def write_dir(root: Path, ids: Sequence[str], x: np.ndarray, files: int = FILES) -> Path:
    """``root/<NS>/part-XX.parquet``: ``ids`` / ``x`` in ``files`` files."""
    shutil.rmtree(root, ignore_errors=True)
    (root / NS).mkdir(parents=True)
    bounds = np.linspace(0, len(ids), files + 1).astype(int)
    for f, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        pq.write_table(table(ids[a:b], x[a:b]), root / NS / f"part-{f:02d}.parquet")
    return root


class Truth:
    """The namespace's records (id -> row of a matrix), for exact neighbours."""

    def __init__(self) -> None:
        self.row: dict[str, int] = {}
        self.x = np.zeros((0, DIM), np.float32)
        self._parked = Path()

    def upsert(self, ids: Sequence[str], x: np.ndarray) -> None:
        fresh = [i for i in ids if i not in self.row]
        base = len(self.x)
        self.x = np.concatenate([self.x, np.zeros((len(fresh), DIM), np.float32)])
        for n, i in enumerate(fresh):
            self.row[i] = base + n
        self.x[[self.row[i] for i in ids]] = x

    def park(self, path: Path) -> None:
        """Move the matrix to disk (out of the peak RSS a measurement sums)."""
        np.save(path, self.x)
        self.x = np.zeros((0, DIM), np.float32)
        self._parked = path

    def unpark(self) -> None:
        self.x = np.load(self._parked)

    def neighbours(self, q: np.ndarray, k: int = 10) -> list[set[str]]:
        names = np.empty(len(self.row), dtype=object)
        for i, n in self.row.items():
            names[n] = i
        norms = np.einsum("ij,ij->i", self.x, self.x)
        out = []
        for v in q:
            top = np.argpartition(norms - 2 * (self.x @ v), k)[:k]
            out.append(set(names[top].tolist()))
        return out


# ------------------------------------------------------------ measuring
class PeakRSS:
    """Peak of the summed RSS of this process and all its descendants."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self.pid: int | None = None  # the root of the tree measured (None: this process)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        try:
            me = psutil.Process(self.pid)
        except psutil.Error:
            return 0
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


def measure(index: Any, q: np.ndarray, truth: list[set[str]], ns: str = NS) -> tuple[float, float]:
    """Query p50 (ms) and recall@10 at default settings, in this process."""
    for v in q[:20]:  # warm: manifest, centroids
        index.query(vector=v.tolist(), top_k=10, namespace=ns)
    lat, hits = [], 0
    for v, want in zip(q, truth, strict=True):
        t0 = time.perf_counter()
        res = index.query(vector=v.tolist(), top_k=10, namespace=ns)
        lat.append(time.perf_counter() - t0)
        hits += len({m.id for m in res.matches} & want)
    return float(np.percentile(lat, 50) * 1e3), hits / (10 * len(q))


def timed_import(index: Any, src: Path, **kwargs: Any) -> tuple[float, Any, int]:
    """(wall seconds, final job record, peak RSS of all processes) of an import or load."""
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        op = index.start_import(uri=str(src), error_mode="continue", **kwargs)
        job = index.wait_for_import(op.id, poll_interval=0.05)
        wall = time.perf_counter() - t0
    if job.status != "Completed":
        raise SystemExit(f"import {job.status}: {job.error}")
    return wall, job, mem.peak


def largest_ratio(index: Any) -> float:
    return float(index.drift(NS)[NS]["largest_ratio"])


def line(what: str, value: str, base: str = "", target: str = "") -> None:
    print(f"  {what:<44} {value:>18}  {base:<28} {target}")


def gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


# ----------------------------------------------------------------- cases
def new_index(work: Path, name: str) -> Any:
    from vecstore import VecStore

    vs = VecStore(str(work / f"store-{name}"))
    vs.create_index(name, dimension=DIM, metric="euclidean")
    return vs.Index(name)


def base_data(n: int, uniform: bool = False) -> tuple[Path, list[str], np.ndarray]:
    """``n`` records around import_bench's centres (or plain N(0, 1): no structure)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, DIM)).astype(np.float32) if uniform else draw(rng, centers(7), n)
    ids = [f"doc-{i}" for i in range(n)]
    root = CACHE / f"load-{'uniform' if uniform else 'base'}-{n}"
    if not (root / "_READY").exists():
        write_dir(root, ids, x)
        (root / "_READY").touch()
    return root, ids, x


def case_quality(work: Path, records: int, namespaces: int, ns_records: int) -> None:
    print(f"\nquality figures of an import ({records:,} x {DIM}; {namespaces:,} namespaces)")
    for uniform in (False, True):
        quality_one(work, records, uniform)
    quality_many(work, namespaces, ns_records)


def quality_one(work: Path, records: int, uniform: bool) -> None:
    src, ids, x = base_data(records, uniform)
    print(f" {'N(0, 1) vectors' if uniform else 'clustered vectors (1,000 centres)'}")
    index = new_index(work, "uniform" if uniform else "quality")
    wall, job, _ = timed_import(index, src)
    q = (job.report or {}).get("quality", {})
    f = q.get("by_namespace", {}).get(NS, {})
    truth = Truth()
    truth.upsert(ids, x)
    rng = np.random.default_rng(99)
    queries = (
        rng.normal(size=(200, DIM)).astype(np.float32) if uniform else draw(rng, centers(7), 200)
    )
    p50, recall = measure(index, queries, truth.neighbours(queries))
    line("import wall", f"{wall:.1f} s")
    line(
        "quality task",
        f"{q.get('seconds', float('nan')):.2f} s",
        f"{q.get('seconds', 0) / wall:.1%} of the import",
    )
    line(
        "estimated recall@10 (sample)",
        f"{f.get('recall_at_10')}",
        f"measured {recall:.3f} (200 queries)",
        f"nprobe {f.get('nprobe')} of {f.get('clusters')}",
    )
    line("largest / mean cluster", f"{f.get('ratio')}", f"rows sampled {f.get('sampled')}")
    shutil.rmtree(work / f"store-{'uniform' if uniform else 'quality'}", ignore_errors=True)


def quality_many(work: Path, namespaces: int, ns_records: int) -> None:

    root = CACHE / f"load-many-{namespaces}x{ns_records}"
    if not (root / "_READY").exists():
        shutil.rmtree(root, ignore_errors=True)
        rng = np.random.default_rng(3)
        for i in range(namespaces):
            n = ns_records * (50 if i % 100 == 0 else 1)  # every 100th: 50x larger
            d = root / f"ns-{i:05d}"
            d.mkdir(parents=True)
            pq.write_table(
                table([f"r{j}" for j in range(n)], draw(rng, centers(7), n)),
                d / "part-0.parquet",
            )
        (root / "_READY").touch()
    index = new_index(work, "many")
    wall, job, _ = timed_import(index, root)
    q = (job.report or {}).get("quality", {})
    line(f"import wall ({namespaces:,} namespaces)", f"{wall:.1f} s")
    line(
        "quality task",
        f"{q.get('seconds', float('nan')):.2f} s",
        f"{q.get('seconds', 0) / wall:.1%} of the import",
    )
    line(
        "recall@10 (min/median/max)",
        json.dumps(q.get("recall_at_10")),
        f"{q.get('recall_namespaces')} ns",
    )
    line("largest/mean (min/median/max)", json.dumps(q.get("balance_ratio")))


def case_load_rebuild_drift(work: Path, base: int, load: int, cases: set[str]) -> None:
    src, ids, x = base_data(base)
    print(f"\nbase: {base:,} x {DIM}")
    index = new_index(work, "loads")
    t_import, job, peak_import = timed_import(index, src)
    line("import of the base (baseline)", f"{t_import:.1f} s", f"peak {gb(peak_import)}")
    truth = Truth()
    truth.upsert(ids, x)
    # queries of the data's distribution (the load case); the drift case adds
    # the drifted distribution
    queries = draw(np.random.default_rng(99), centers(7), 200)
    rng = np.random.default_rng(11)
    next_id = base

    if "load" in cases:
        p50_0, recall_0 = measure(index, queries, truth.neighbours(queries))
        half = load // 2
        new_ids = [f"doc-{i}" for i in range(next_id, next_id + half)]
        next_id += half
        old_ids = [ids[i] for i in rng.choice(base, load - half, replace=False)]
        lids = new_ids + old_ids
        lx = draw(rng, centers(7), len(lids))
        wall, job, _ = timed_import(index, write_dir(work / "load-1", lids, lx), mode="upsert")
        truth.upsert(lids, lx)
        p50, recall = measure(index, queries, truth.neighbours(queries))
        line(
            f"load {load:,} (half new, half overwrites)",
            f"{wall:.1f} s",
            f"{wall / t_import:.2f}x the import",
            "target <= 0.25x",
        )
        line(
            "recall@10 after the load", f"{recall:.3f}", f"query p50 {p50:.1f} ms", "target >= 0.95"
        )
        line("recall@10 before the load", f"{recall_0:.3f}", f"query p50 {p50_0:.1f} ms")

    if "rebuild" in cases:
        # `vecstore rebuild --wait` in its own process: the peak is that of the
        # processes that rebuild (not this benchmark's arrays, nor the idle
        # workers the import left)
        cli = [sys.executable, "-m", "vecstore.cli", "rebuild", "--index", index.spec.name,
               "--namespace", NS, "--wait", "--json",
               "--store", index.store.uri]
        mem = PeakRSS()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        mem.pid = proc.pid
        with mem:
            out, err = proc.communicate()
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"rebuild failed ({proc.returncode}): {err[-2000:]}")
        line(
            "rebuild",
            f"{wall:.1f} s",
            f"{wall / t_import:.2f}x the import",
            "target <= 1.0x",
        )
        line(
            "peak memory, all processes",
            gb(mem.peak),
            f"import {gb(peak_import)}",
            "target <= 2.5 GB",
        )

    if "drift" in cases:
        step = max(1, base // 10)
        for i in range(10):
            lids = [f"doc-{j}" for j in range(next_id, next_id + step)]
            next_id += step
            lx = draw(rng, centers(8), step)  # shifted distribution
            timed_import(index, write_dir(work / f"drift-{i}", lids, lx), mode="upsert")
            truth.upsert(lids, lx)
        queries = draw(np.random.default_rng(98), np.concatenate([centers(7), centers(8)]), 200)
        want = truth.neighbours(queries)
        p50_b, recall_b = measure(index, queries, want)
        ratio_b = largest_ratio(index)
        [rb] = index.rebuild(NS, wait=True)
        if rb.status != "Completed":
            raise SystemExit(f"rebuild {rb.status}: {rb.error}")
        p50_a, recall_a = measure(index, queries, want)
        ratio_a = largest_ratio(index)
        line("ten 10% loads: recall@10 before / after rebuild", f"{recall_b:.3f} / {recall_a:.3f}")
        line("query p50 before / after", f"{p50_b:.1f} / {p50_a:.1f} ms")
        line("largest-cluster ratio before / after", f"{ratio_b:.2f} / {ratio_a:.2f}")


# ------------------------------------------------------------------ main
def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--cases", default=",".join(CASES), help="comma separated, of: " + ", ".join(CASES)
    )
    ap.add_argument("--small", action="store_true", help="about 10x smaller sizes: a quick run")
    ap.add_argument("--base", type=int, default=None, help="base namespace (1,000,000)")
    ap.add_argument("--load", type=int, default=None, help="records of the load (100,000)")
    ap.add_argument("--quality-records", type=int, default=None, help="(200,000)")
    ap.add_argument("--quality-namespaces", type=int, default=None, help="(1,000)")
    ap.add_argument("--ns-records", type=int, default=200, help="records per small namespace")
    ap.add_argument("--keep", action="store_true", help="keep the stores (prints the path)")
    args = ap.parse_args(argv)
    scale = 10 if args.small else 1
    args.base = args.base or 1_000_000 // scale
    args.load = args.load or 100_000 // scale
    args.quality_records = args.quality_records or 200_000 // scale
    args.quality_namespaces = args.quality_namespaces or 1_000 // scale
    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    bad = cases - set(CASES)
    if bad:
        ap.error(f"unknown case(s): {', '.join(sorted(bad))}")
    args.case_set = cases
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from vecstore.runners import close_runners, get_runner

    work = Path(tempfile.mkdtemp(prefix="vecstore-load-bench-"))
    try:
        get_runner().client  # type: ignore[attr-defined]  # noqa: B018 - start the cluster first
        if "quality" in args.case_set:
            case_quality(work, args.quality_records, args.quality_namespaces, args.ns_records)
        if args.case_set & {"load", "rebuild", "drift"}:
            case_load_rebuild_drift(work, args.base, args.load, args.case_set)
    finally:
        close_runners()
        if args.keep:
            print(f"stores kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
