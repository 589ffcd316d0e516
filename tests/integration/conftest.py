"""Fixtures for the import integration tests on a real Dask cluster.

One embedded LocalCluster (2 worker processes, 1 thread each) is started for
the whole session through :func:`vecstore.runners.get_runner`, the runner the
public API uses, and closed at the end with :func:`close_runners`. Every test
gets its own local store and import directory under ``tmp_path``.

This file does not depend on ``tests/conftest.py`` (storage emulators).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from datagen import VENV_BIN, free_port, stop_process, wait_for_port

from vecstore import VecStore
from vecstore.api import Index

# Knobs of pipelines.plan / pipelines.runner read from the environment at call
# time; a test sets some with monkeypatch.setenv, and they must never leak.
TUNING_ENV = (
    "VECSTORE_CHUNK_BYTES",
    "VECSTORE_BUCKET_BYTES",
    "VECSTORE_PARTITION_ROWS",
    "VECSTORE_MAX_NAMESPACES",
    "VECSTORE_MAX_FILES",
    "VECSTORE_MAX_FILE_BYTES",
    "VECSTORE_MAX_NAMESPACE_BYTES",
    "VECSTORE_STALE_SECONDS",
    "VECSTORE_MAX_ATTEMPTS",
    "VECSTORE_SCHEDULER",
)


@pytest.fixture(scope="session")
def dask_runner() -> Iterator[Any]:
    """The process-wide import runner with its LocalCluster started."""
    from vecstore.runners import close_runners, get_runner

    saved = {k: os.environ.get(k) for k in ("VECSTORE_WORKERS", "VECSTORE_SCHEDULER")}
    os.environ["VECSTORE_WORKERS"] = "2"
    os.environ.pop("VECSTORE_SCHEDULER", None)
    try:
        runner = get_runner()
        runner.client  # noqa: B018 - start the cluster now, not inside the first test
        yield runner
    finally:
        close_runners()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(autouse=True)
def _clean_tuning_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TUNING_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """The import directory of the test (its namespaces are sub-directories)."""
    p = tmp_path / "import"
    p.mkdir()
    return p


@pytest.fixture
def vs(dask_runner: Any, store_root: Path) -> VecStore:
    return VecStore(str(store_root))


@pytest.fixture
def make_index(vs: VecStore) -> Callable[..., Index]:
    def make(name: str = "docs", dimension: int | None = 8, **kwargs: Any) -> Index:
        if kwargs.get("vector_type") == "sparse":
            dimension = None
            kwargs.setdefault("metric", "dotproduct")
        vs.create_index(name=name, dimension=dimension, **kwargs)
        return vs.Index(name)

    return make


# ------------------------------------------------------------ subprocesses


@pytest.fixture(scope="module")
def external_scheduler() -> Iterator[str]:
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1; yields the address."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = str(VENV_BIN / "dask")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            )
        )
        wait_for_port(port, procs)
        worker = [dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                  "--no-dashboard", "--host", "127.0.0.1", "--memory-limit", "2GB"]
        procs.extend(
            subprocess.Popen(worker, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            for _ in range(2)
        )
        from distributed import Client

        with Client(address, set_as_default=False, timeout=30) as c:
            c.wait_for_workers(2, timeout=60)
        yield address
    finally:
        from vecstore.runners import get_runner

        # disconnect the runner of this address before its cluster goes away
        get_runner(address).close()
        for p in reversed(procs):
            stop_process(p)
