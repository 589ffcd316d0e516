"""Helpers for the server tests: a ``vecstore serve`` subprocess on a free
127.0.0.1 port, import directories, and waiting for imports over the SDK.

Test modules import these from here (not from ``conftest``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from datagen import free_port, stop_process, wait_for_port

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / ".tools" / "node_modules"
IMPORT_TIMEOUT = 120.0

pinecone = pytest.importorskip("pinecone", reason="the pinecone SDK (test extra) is not installed")


@dataclass
class Served:
    """A running server: its URL, store, process and log file."""

    url: str
    port: int
    store: Path
    proc: subprocess.Popen[bytes]
    log: Path
    started_in: float

    def client(self, api_key: str = "pclocal") -> Any:
        return pinecone.Pinecone(api_key=api_key, host=self.url)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("VECSTORE_WORKERS", "1")
    env.pop("VECSTORE_SCHEDULER", None)
    env.update(extra or {})
    return env


@contextmanager
def serve(
    store: Path,
    *,
    log_level: str = "debug",
    config: Path | None = None,
    env: dict[str, str] | None = None,
    workers: int = 1,
) -> Iterator[Served]:
    """Start ``vecstore serve`` (the CLI) on a free port; stop it at the end."""
    port = free_port()
    log = store.parent / f"server-{port}.log"
    args = [
        sys.executable, "-m", "vecstore.cli", "--store", str(store), "serve",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", log_level,
    ]
    if config is not None:
        args += ["--config", str(config)]
    if workers != 1:
        args += ["--workers", str(workers)]
    with open(log, "wb") as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=server_env(env))
        try:
            wait_for_port(port, [proc], timeout=60)
            started = time.monotonic() - t0
            yield Served(f"http://127.0.0.1:{port}", port, store, proc, log, started)
        finally:
            stop_process(proc, timeout=30)


def write_dense_import(root: Path, namespaces: dict[str, int], dim: int, seed: int = 0) -> dict[str, Any]:
    """An import directory of dense records with metadata ``{"i": n, "g": "a"|"b"}``."""
    from datagen import dense_import

    return dense_import(root, namespaces, dim, seed=seed, metadata=True)


def wait_import(index: Any, import_id: str, timeout: float = IMPORT_TIMEOUT) -> Any:
    """Poll ``describe_import`` over the SDK until a final status."""
    deadline = time.monotonic() + timeout
    while True:
        job = index.describe_import(id=import_id)
        if job.status in ("Completed", "Failed", "Cancelled"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"import {import_id} still {job.status} after {timeout} s")
        time.sleep(0.3)


def store_files(store: Path) -> list[str]:
    """Every file under a local store (relative), for "nothing written" checks."""
    if not store.exists():
        return []
    return sorted(str(p.relative_to(store)) for p in store.rglob("*") if p.is_file())


def run_cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vecstore.cli", "--store", str(store), "--json", *args],
        capture_output=True, text=True, env=server_env(), timeout=120, check=False,
    )


def create_key(store: Path, project: str, role: str = "ReadWrite") -> str:
    res = run_cli(store, "api-keys", "create", "--project", project, "--role", role)
    assert res.returncode == 0, res.stderr
    return str(json.loads(res.stdout)["key"])
