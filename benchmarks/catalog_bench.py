"""Read-side benchmark (issue 9 item 6, docs/catalog.md): describe_index_stats
and list_namespaces on an index of N namespaces (default 10,000), before (one
manifest listing + read per namespace, ``manifests.list_namespaces``: what
both calls did) and after (the namespace catalog), on a local disk and on S3
(moto's server in its own process, every request a real HTTP round trip,
counted by a pass-through proxy).

The index is built quickly through the commit module: one
``commit.apply(CreateNamespaces)`` of N empty manifests on a local disk (as a
10,000-namespace import commits), copied to the bucket for the S3 case.

    .venv/bin/python benchmarks/catalog_bench.py
    .venv/bin/python benchmarks/catalog_bench.py --namespaces 2000 --store local
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vecstore import VecStore, catalog, commit, manifests
from vecstore.commit import CreateNamespaces
from vecstore.schemas import Manifest
from vecstore.storage import Store

INDEX = "tenants"
CALLS = ("read_bytes", "read_range", "ls", "walk_files", "exists", "isdir", "size", "open_input")


class Counting:
    """Object operations made through one Store (each one request, except a
    listing: one request per 1,000 keys on S3)."""

    def __init__(self, store: Store) -> None:
        self.calls: Counter[str] = Counter()
        for name in CALLS:
            setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*a: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            return fn(*a, **kw)

        return counted


def build(root: Path, n: int) -> float:
    vs = VecStore(str(root))
    vs.create_index(INDEX, dimension=8, metric="cosine")
    ms = tuple(
        Manifest(index=INDEX, namespace=f"tenant-{i:05d}", version=1, record_count=20)
        for i in range(n)
    )
    t = time.perf_counter()
    commit.apply(vs.store, INDEX, CreateNamespaces(import_id=uuid.uuid4().hex, manifests=ms))
    return time.perf_counter() - t


def upload(local: Path, remote: Store) -> None:
    files = [p for p in sorted(local.rglob("*")) if p.is_file()]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda p: remote.write_bytes(p.relative_to(local).as_posix(),
                                                   p.read_bytes()), files))


def before_sampled(store: Store, sample: int, n: int) -> int:
    """The per-namespace scan over the first ``sample`` namespaces only (the
    full one takes ~30 min on moto at 10,000): scaled by the caller."""
    keys = store.ls(f"indexes/{INDEX}/namespaces")[:sample]
    for key in keys:
        manifests.load_namespace(store, INDEX, key.rsplit("/", 1)[-1])
    return n


def cases(vs: VecStore, sample: int | None, n: int) -> dict[str, Callable[[], int]]:
    store, index = vs.store, vs.Index(INDEX)
    index.list_namespaces(limit=1)  # warm: imports, clients
    if sample is not None and sample < n:
        name = f"before: per-namespace (x{n / sample:.0f})"
        first: Callable[[], int] = lambda: before_sampled(store, sample, n)  # noqa: E731
    else:
        name = "before: per-namespace manifests"
        first = lambda: len(manifests.list_namespaces(store, INDEX))  # noqa: E731
    return {
        name: first,
        "after: describe_index_stats": lambda: len(index.describe_index_stats().namespaces),
        "after: list_namespaces": lambda: len(index.list_namespaces()),
        "after: catalog.namespaces": lambda: len(catalog.namespaces(store, INDEX)),
    }


def measure(
    label: str, vs: VecStore, http: Any, repeat: int, n: int, sample: int | None = None
) -> None:
    rows = []
    store = vs.store
    scale = 1.0 if sample is None or sample >= n else n / sample
    for name, fn in cases(vs, sample, n).items():
        reps = 1 if name.startswith("before") and http is not None else repeat
        times, ops, reqs = [], 0, 0
        for _ in range(reps):
            counting = Counting(store)
            mark = http.mark() if http is not None else 0
            t = time.perf_counter()
            got = fn()
            times.append(time.perf_counter() - t)
            ops = sum(counting.calls.values())
            reqs = len(http.since(mark)) if http is not None else 0
            for c in CALLS:  # unwrap
                store.__dict__.pop(c, None)
            assert got == n, (name, got)
        f = scale if name.startswith("before") else 1.0
        rows.append((name, statistics.median(times) * f, round(ops * f), round(reqs * f)))
    base = rows[0]
    print(f"\n[{label}] {n:,} namespaces; load {os.getloadavg()[0]:.1f}"
          + (f"; 'before' measured on {sample:,} namespaces, scaled" if scale > 1 else ""))
    head = f"{'':34}{'time (s)':>10}{'store ops':>11}"
    print(head + (f"{'HTTP req':>10}" if http is not None else "") + f"{'time ratio':>12}")
    for name, t, ops, reqs in rows:
        line = f"{name:34}{t:10.3f}{ops:11,}"
        if http is not None:
            line += f"{reqs:10,}"
        print(line + f"{base[1] / t:11.0f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--namespaces", type=int, default=10_000)
    ap.add_argument("--store", choices=["local", "s3", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--s3-before-sample", type=int, default=500,
                    help="S3 'before': time this many namespaces and scale to N")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    try:
        t = build(tmp / "built", args.namespaces)
        print(f"built {args.namespaces:,} namespaces through commit.apply in {t:.1f} s")
        if args.store in ("local", "both"):
            measure("local disk", VecStore(str(tmp / "built")), None, args.repeat, args.namespaces)
        if args.store in ("s3", "both"):
            here = Path(__file__).resolve().parents[1] / "tests"
            sys.path[:0] = [str(here), str(here / "integration")]
            from cloudgen import counting_proxy  # type: ignore[import-not-found]
            from servers import run_moto, unique_name  # type: ignore[import-not-found]

            with run_moto(in_process=False) as server:
                bucket = unique_name("catb")
                server.create_bucket(bucket)
                t = time.perf_counter()
                upload(tmp / "built", Store(server.uri(bucket), server.options()))
                print(f"copied to moto in {time.perf_counter() - t:.0f} s")
                proxy = counting_proxy(server).start()
                try:
                    opts = server.options_via(proxy.endpoint)
                    vs = VecStore(server.uri(bucket), storage_options=opts)
                    measure("S3 (moto)", vs, proxy, args.repeat, args.namespaces,
                            args.s3_before_sample)
                finally:
                    proxy.stop()
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
