"""Load history benchmark (issue 12 item 3, docs/loads.md "Load history"):
``loadhistory.filter_new`` on an index that has loaded N files (default
100,000, in loads of 1,000, like an hourly export), asked about the whole
export directory again (the N old files plus one new hour), on a local disk
and on S3 (moto's server in its own process: every request a real HTTP round
trip), with the object requests it made counted.

    .venv/bin/python benchmarks/loadhistory_bench.py
    .venv/bin/python benchmarks/loadhistory_bench.py --files 20000 --store local
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vecstore import layout, loadhistory
from vecstore.storage import Store

INDEX = "docs"
SOURCE = "s3://exports/embeddings"
CALLS = ("read_bytes", "exists", "walk_files", "open_input", "write_bytes", "put_if_absent", "delete")


@dataclass(frozen=True)
class File:
    key: str
    size: int
    version: str
    namespace: str = "books"


def hour_files(hour: int, n: int) -> list[File]:
    day, h = divmod(hour, 24)
    run = uuid.UUID(hashlib.md5(f"run-{hour}".encode()).hexdigest())  # Spark: one per write
    return [
        File(
            f"books/date=2026-{1 + day // 28:02d}-{1 + day % 28:02d}/hour={h:02d}/"
            f"part-{i:05d}-{run}.c000.zstd.parquet",
            10_000_000 + hash((hour, i)) % 1_000_000,
            f"etag:{hashlib.md5(f'{hour}-{i}'.encode()).hexdigest()}",
        )
        for i in range(n)
    ]


class Counting:
    def __init__(self, store: Store) -> None:
        self.calls: Counter[str] = Counter()
        for name in CALLS:
            setattr(store, name, self._wrap(name, getattr(store, name)))

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*a: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            return fn(*a, **kw)

        return counted


@contextlib.contextmanager
def fresh_store(kind: str) -> Iterator[Store]:
    if kind == "s3":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from servers import Bucket, run_moto, unique_name  # type: ignore[import-not-found]

        with run_moto(in_process=False) as server:
            bucket = unique_name("lh")
            server.create_bucket(bucket)
            yield Bucket(server, bucket).store()
        return
    tmp = tempfile.mkdtemp(prefix="loadhistory-bench-")
    try:
        yield Store(f"{tmp}/store")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(kind: str, total: int, per_load: int, repeat: int) -> None:
    loads = total // per_load
    with fresh_store(kind) as store:
        t0 = time.perf_counter()
        history: list[File] = []
        for hour in range(loads):
            files = hour_files(hour, per_load)
            history += files
            load_id = f"L{hour:06d}"
            loadhistory.stage(store, INDEX, load_id, files, source_uri=SOURCE)
            store.put_if_absent(layout.commit_marker_key(INDEX, load_id), b"committed\n")
            if hour % loadhistory.COMPACT_AFTER == loadhistory.COMPACT_AFTER - 1:
                loadhistory.compact(store, INDEX)
        loadhistory.compact(store, INDEX)
        build = time.perf_counter() - t0
        prefix = loadhistory.history_prefix(INDEX)
        listed = store.walk_files(prefix)
        compacted = [size for key, size in listed if "/compacted/" in key]

        probe = [*history, *hour_files(loads, per_load)]  # the directory, one hour later
        counting = Counting(store)
        times: list[float] = []
        for _ in range(repeat):
            t = time.perf_counter()
            to_load, skipped = loadhistory.filter_new(store, INDEX, probe, source_uri=SOURCE)
            times.append(time.perf_counter() - t)
        assert len(to_load) == per_load and len(skipped) == total, (len(to_load), len(skipped))
        requests = {k: v // repeat for k, v in sorted(counting.calls.items())}

        # the same with COMPACT_AFTER - 1 committed loads not folded yet
        for extra in range(loadhistory.COMPACT_AFTER - 1):
            load_id = f"X{extra:06d}"
            loadhistory.stage(
                store, INDEX, load_id, hour_files(loads + 1 + extra, per_load), source_uri=SOURCE
            )
            store.put_if_absent(layout.commit_marker_key(INDEX, load_id), b"committed\n")
        counting.calls.clear()
        t = time.perf_counter()
        loadhistory.filter_new(store, INDEX, probe, source_uri=SOURCE)
        unfolded = time.perf_counter() - t
        unfolded_requests = dict(sorted(counting.calls.items()))

        t = time.perf_counter()
        loadhistory.stage(store, INDEX, "S", hour_files(10_000, per_load), source_uri=SOURCE)
        stage_s = time.perf_counter() - t

    print(
        f"{kind}: {total:,} loaded files ({loads} loads of {per_load:,}), "
        f"{len(probe):,} candidates; built in {build:.1f} s"
    )
    print(f"  compacted file: {compacted[-1] / 1e6:.2f} MB")
    print(
        f"  filter_new: median {statistics.median(times) * 1000:.0f} ms, "
        f"min {min(times) * 1000:.0f} ms over {repeat}; requests {requests}"
    )
    print(
        f"  filter_new with {loadhistory.COMPACT_AFTER - 1} committed loads not folded: "
        f"{unfolded * 1000:.0f} ms; requests {unfolded_requests}"
    )
    print(f"  stage({per_load:,} files): {stage_s * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--per-load", type=int, default=1_000)
    ap.add_argument("--store", choices=["local", "s3", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    kinds = ["local", "s3"] if args.store == "both" else [args.store]
    for kind in kinds:
        run(kind, args.files, args.per_load, args.repeat)


if __name__ == "__main__":
    main()
