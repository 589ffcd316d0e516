"""Serve benchmark: query latency and throughput over HTTP (``vecstore
serve`` with the official pinecone SDK 10.2 as client) against the same
queries through the Python API, in the same run.

Data: the real MiniLM set (shared/data/pypi-minilm-25k, 25,000 x 384,
cosine), imported once by ``query_bench.imported`` (cached under
``benchmarks/.cache/qbench``). Each server runs as a subprocess (``vecstore
serve``, log level warning) on a free 127.0.0.1 port: one per ``--workers``
value, plus with ``--baseline DIR`` the same for the server of another
checkout (e.g. a ``git worktree`` of an older commit: before / after in the
same run). All run at once.

1. Latency, one client: the 500 held-out queries (top_k 10, namespace
   ``ns``), ``--passes`` times, in blocks of 50 taking turns: the Python
   API (``Index.query``), then each server over HTTP with the SDK, so every
   path shares the machine's load; p50 / p99 of each and the difference to
   the API (the HTTP overhead: SDK encode, HTTP, server parse, JSON answer,
   SDK decode). Results are checked to be the same ids.
2. Throughput, per server: queries/s of 1 client and of 8 concurrent
   clients (each its own process and SDK client), in windows of
   ``--seconds`` taking turns between the servers and the client counts
   (``--windows`` rounds; medians), so that all see the same load; with the
   CPU and context switches per query of the server (all its processes) and
   the CPU per query of the clients, which share the machine's cores.

Targets (issue 13): overhead <= 1 ms at p50; 8 clients >= 1.5x one client.
Other processes share the 2 cores: the load average is printed with every
figure.

    .venv/bin/python benchmarks/serve_bench.py [--workers 1 2] [--baseline DIR]
        [--passes 2] [--seconds 2] [--windows 5] [--rounds 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from query_bench import QCACHE, imported, load, load_real  # noqa: E402

TOP_K = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    store: Path, workers: int, code: Path = ROOT
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(code)}
    extra = ["--workers", str(workers)] if workers != 1 else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecstore.cli", "--store", str(store), "serve", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", *extra],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() - t0 > 60:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    print(f"  server ({workers} worker(s)) port open in {time.monotonic() - t0:.2f} s ({load()})")
    return proc, f"http://127.0.0.1:{port}"


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.array(values) * 1000, p))


def latency(
    urls: dict[str, str], store: Path, queries: np.ndarray, ns: str, passes: int
) -> dict[str, dict[str, float]]:
    """p50 / p99 of the Python API and of each server over HTTP (the SDK),
    the 500 queries ``passes`` times in blocks of 50 taking turns (API, then
    each server), so that every path sees the same load of the machine."""
    from pinecone import Pinecone

    from vecstore import VecStore

    api = VecStore(str(store)).Index("bench")
    https = {k: Pinecone(api_key="bench", host=u).Index(host=f"{u}/idx/bench") for k, u in urls.items()}
    qs = [q.tolist() for q in queries]
    for q in qs[:50]:  # warm every path (segment caches are shared by none)
        api.query(vector=q, top_k=TOP_K, namespace=ns)
        for http in https.values():
            http.query(vector=q, top_k=TOP_K, namespace=ns)
    t_api: list[float] = []
    t_http: dict[str, list[float]] = {k: [] for k in urls}
    same = dict.fromkeys(urls, 0)
    block = 50  # alternate blocks, not single queries: the BLAS threads of an
    # in-process query spin on after it and would slow the next HTTP call
    for _ in range(passes):
        for start in range(0, len(qs), block):
            part = qs[start : start + block]
            api_ids = []
            for q in part:
                t = time.perf_counter()
                a = api.query(vector=q, top_k=TOP_K, namespace=ns)
                t_api.append(time.perf_counter() - t)
                api_ids.append([m.id for m in a.matches])
            for key, http in https.items():
                for q, want in zip(part, api_ids, strict=True):
                    t = time.perf_counter()
                    h = http.query(vector=q, top_k=TOP_K, namespace=ns)
                    t_http[key].append(time.perf_counter() - t)
                    same[key] += [m.id for m in h.matches] == want
    out = {"api": {"p50": pct(t_api, 50), "p99": pct(t_api, 99), "same": 1.0}}
    for key, ts in t_http.items():
        out[key] = {"p50": pct(ts, 50), "p99": pct(ts, 99), "same": same[key] / len(ts)}
    return out


def _client(
    url: str, queries: np.ndarray, ns: str, go: Any, count: Any, cpu: Any, ready: Any
) -> None:
    """One SDK client process: queries back to back while ``go`` is set,
    counting them (and its CPU seconds) in shared values."""
    from pinecone import Pinecone

    idx = Pinecone(api_key="bench", host=url).Index(host=f"{url}/idx/bench")
    qs = [q.tolist() for q in queries]
    for q in qs[:5]:
        idx.query(vector=q, top_k=TOP_K, namespace=ns)
    ready.release()
    n = 0
    while True:
        go.wait()
        idx.query(vector=qs[n % len(qs)], top_k=TOP_K, namespace=ns)
        n += 1
        count.value = n
        cpu.value = time.process_time()


def _tree_cpu(pid: int) -> tuple[float, int]:
    """CPU seconds (user + system) and context switches (voluntary: it waited;
    involuntary: it was preempted) of a process and its children (the workers)."""
    import psutil

    total = 0.0
    switches = 0
    proc = psutil.Process(pid)
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            c = p.num_ctx_switches()
            total += t.user + t.system
            switches += c.voluntary + c.involuntary
        except psutil.Error:
            pass
    return total, switches


def throughput(
    servers: dict[str, tuple[str, int]], queries: np.ndarray, ns: str, clients: int,
    seconds: float, windows: int,
) -> dict[str, dict[str, float]]:
    """Per server (label -> (url, pid)): queries/s of 1 client and of
    ``clients`` concurrent clients (each its own process and SDK client),
    with the CPU and context switches per query of the server (all its
    processes) and the CPU per query of the clients. Windows of ``seconds``
    take turns (per round: each server with 1 client, then with ``clients``),
    ``windows`` rounds, medians: every server and both client counts see the
    same load of the machine."""
    ctx = mp.get_context("spawn")
    ready = ctx.Semaphore(0)
    groups: dict[str, tuple[int, list[Any], list[Any], list[Any]]] = {}
    procs = []
    for label, (url, pid) in servers.items():
        gos = [ctx.Event() for _ in range(clients)]
        counts = [ctx.Value("q", 0, lock=False) for _ in range(clients)]
        cpus = [ctx.Value("d", 0.0, lock=False) for _ in range(clients)]
        groups[label] = (pid, gos, counts, cpus)
        procs += [
            ctx.Process(
                target=_client,
                args=(url, queries[i::clients], ns, gos[i], counts[i], cpus[i], ready),
                daemon=True,
            )
            for i in range(clients)
        ]
    for p in procs:
        p.start()
    for _ in procs:
        if not ready.acquire(timeout=600):
            raise SystemExit("a client did not start")
    keys = ("one", "many", "s1", "c1", "sn", "cn", "x1", "xn")
    out: dict[str, dict[str, list[float]]] = {label: {k: [] for k in keys} for label in groups}
    try:
        for _ in range(windows):
            for label, (pid, gos, counts, cpus) in groups.items():
                for active, key in ((1, "one"), (clients, "many")):
                    for _pid, others, _c, _u in groups.values():
                        for go in others:
                            go.clear()
                    for go in gos[:active]:
                        go.set()
                    time.sleep(0.3)  # let the others finish their query in flight
                    n0 = sum(c.value for c in counts)
                    u0 = sum(c.value for c in cpus)
                    s0, x0 = _tree_cpu(pid)
                    t0 = time.perf_counter()
                    time.sleep(seconds)
                    n = sum(c.value for c in counts) - n0
                    dt = time.perf_counter() - t0
                    s1, x1 = _tree_cpu(pid)
                    tag = "1" if active == 1 else "n"
                    o = out[label]
                    o[key].append(n / dt)
                    o["s" + tag].append((s1 - s0) / max(n, 1) * 1000)
                    o["x" + tag].append((x1 - x0) / max(n, 1))
                    o["c" + tag].append((sum(c.value for c in cpus) - u0) / max(n, 1) * 1000)
    finally:
        for p in procs:
            p.kill()
            p.join(10)
    result: dict[str, dict[str, float]] = {}
    for label, o in out.items():
        med = {k: float(np.median(v)) for k, v in o.items()}
        med["ratio"] = float(
            np.median([m / one for m, one in zip(o["many"], o["one"], strict=True)])
        )
        result[label] = med
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each throughput window")
    ap.add_argument("--windows", type=int, default=5, help="throughput windows of each kind")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the timings")
    ap.add_argument("--passes", type=int, default=2, help="latency: passes over the 500 queries")
    ap.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2],
        help="server processes (`vecstore serve --workers`); one server per value, same run",
    )
    ap.add_argument(
        "--baseline", type=Path, default=None,
        help="also run the server of another checkout of vecstore (e.g. `git worktree` or "
        "`git archive` of an older commit), for each --workers value: before / after in the "
        "same run",
    )
    ap.add_argument("--reimport", action="store_true")
    args = ap.parse_args()

    ds = load_real()
    print(f"{ds.name}: {len(ds.base):,} x {ds.base.shape[1]}, {len(ds.queries)} queries ({load()})")
    _, _, ns = imported(ds, reimport=args.reimport)
    store = QCACHE / f"store-{ds.name}"
    servers: list[tuple[str, int, Path]] = []
    for w in args.workers:
        if args.baseline is not None:
            servers.append((f"before, {w} w", w, args.baseline.resolve()))
        servers.append((f"{w} worker(s)", w, ROOT))
    running = {label: start_server(store, workers, code) for label, workers, code in servers}
    summary: list[str] = []
    try:
        for r in range(args.rounds):
            lat = latency({k: u for k, (_, u) in running.items()}, store, ds.queries, ns, args.passes)
            api = lat["api"]
            print(
                f"[round {r + 1}] latency, 1 client, top_k {TOP_K}, {args.passes} x 500 queries "
                f"per path in turns ({load()}):\n"
                f"  Python API          p50 {api['p50']:.2f} ms  p99 {api['p99']:.2f} ms",
                flush=True,
            )
            for label in running:
                x = lat[label]
                print(
                    f"  HTTP {label:14s} p50 {x['p50']:.2f} ms  p99 {x['p99']:.2f} ms  "
                    f"overhead p50 {x['p50'] - api['p50']:.2f} ms (target <= 1 ms)  "
                    f"same ids {x['same']:.1%}",
                    flush=True,
                )
            tps = throughput(
                {label: (url, proc.pid) for label, (proc, url) in running.items()},
                ds.queries, ns, 8, args.seconds, args.windows,
            )
            print(
                f"  throughput ({args.windows} rounds of {args.seconds:g} s windows taking turns, "
                f"medians; {load()}):",
                flush=True,
            )
            for label, tp in tps.items():
                one, eight, ratio = tp["one"], tp["many"], tp["ratio"]
                print(
                    f"  {label}:\n"
                    f"    1 client : {one:7.1f} queries/s  (CPU per query: server "
                    f"{tp['s1']:.2f} ms, client {tp['c1']:.2f} ms; server context switches "
                    f"per query {tp['x1']:.2f})\n"
                    f"    8 clients: {eight:7.1f} queries/s  (CPU per query: server "
                    f"{tp['sn']:.2f} ms, clients {tp['cn']:.2f} ms; server context switches "
                    f"per query {tp['xn']:.2f})\n"
                    f"    ratio 8 / 1 = {ratio:.2f}x (target >= 1.5x)",
                    flush=True,
                )
                over = lat[label]["p50"] - api["p50"]
                summary.append(
                    f"  {label:14s} round {r + 1}: overhead p50 {over:.2f} ms "
                    f"(API p50 {api['p50']:.2f}) "
                    f"[{'met' if over <= 1.0 else 'missed'}], 1 client {one:.0f} q/s, "
                    f"8 clients {eight:.0f} q/s, {ratio:.2f}x "
                    f"[{'met' if ratio >= 1.5 else 'missed'}]; CPU per query server "
                    f"{tp['s1']:.2f} / {tp['sn']:.2f} ms, clients {tp['c1']:.2f} / {tp['cn']:.2f} ms"
                )
    finally:
        for proc, _ in running.values():
            proc.terminate()
            proc.wait(60)
    print(f"summary ({load()}):")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
