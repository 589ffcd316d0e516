"""Imports on an existing Dask cluster: a `dask scheduler` and two `dask worker`
processes started by the test (conftest.external_scheduler), used through
VecStore(scheduler_address=...) and through VECSTORE_SCHEDULER."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from datagen import dense_import, ids_of, run_import

from vecstore import VecStore
from vecstore.runners import get_runner

pytestmark = pytest.mark.dask


def scheduler_task_prefixes(address: str) -> dict[str, int]:
    from distributed import Client

    def prefixes(dask_scheduler: Any) -> dict[str, int]:
        return {name: sum(p.state_counts.values()) for name, p in dask_scheduler.task_prefixes.items()}

    with Client(address, set_as_default=False, timeout=30) as c:
        result: dict[str, int] = c.run_on_scheduler(prefixes)
        return result


def test_import_on_external_scheduler(
    external_scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_PACK_ROWS", "0")  # every phase's tasks, not packed ones
    src = tmp_path / "import"
    dense_import(src, {"a": 5000, "__default__": 3000}, dim=16, files=2)
    vs = VecStore(str(tmp_path / "store"), scheduler_address=external_scheduler)
    vs.create_index(name="ext", dimension=16, metric="euclidean")
    index = vs.Index("ext")
    job = run_import(index, src, "abort")
    assert (job.status, job.error, job.records_imported) == ("Completed", None, 8000), job
    assert ids_of(tmp_path / "store", "ext", "a") == sorted(f"a-{i}" for i in range(5000))
    assert index.describe_index_stats().namespaces[""].vector_count == 3000
    # the work ran on that cluster (not on an embedded LocalCluster)
    assert get_runner(external_scheduler).client.scheduler.address == external_scheduler
    ran = scheduler_task_prefixes(external_scheduler)
    assert {"inspect_many", "sample_unit", "train", "scan_unit", "dedup", "gather"} <= set(ran), ran
    # the quality report: its steps as tasks (recall estimates one per namespace)
    assert {"report_figures", "detail_recall", "assemble_report"} <= set(ran), ran
    # every worker got the warm-up plugin, and its imports are done (k-means
    # is not imported inside the one training task the others wait for)
    from vecstore.pipelines.warm import MODULES

    def warmed(dask_worker: Any) -> bool:
        import sys

        return "vecstore-warm" in dask_worker.plugins and all(m in sys.modules for m in MODULES)

    client = get_runner(external_scheduler).client
    deadline = time.monotonic() + 60
    while not all((states := client.run(warmed)).values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(states) == 2 and all(states.values()), states
    # a failing import reports its error from the external workers too
    bad = tmp_path / "bad"
    (bad / "ns").mkdir(parents=True)
    (bad / "ns" / "0.parquet").write_bytes(b"not parquet at all")
    job = run_import(index, bad)
    assert job.status == "Failed"
    assert job.error == (
        f'file "{bad / "ns" / "0.parquet"}": Parquet footer could not be parsed. '
        "Are you sure this is valid parquet?"
    )


def test_import_via_environment_variable(
    external_scheduler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_SCHEDULER", external_scheduler)
    def packed() -> int:  # a small namespace: a fold task (tiny by its listing) or a pack task
        done = scheduler_task_prefixes(external_scheduler)
        return done.get("pack", 0) + done.get("fold", 0)

    before = packed()
    src = tmp_path / "import"
    dense_import(src, {"env": 2000}, dim=8)
    vs = VecStore(str(tmp_path / "store"))  # no address: VECSTORE_SCHEDULER
    vs.create_index(name="env", dimension=8)
    job = run_import(vs.Index("env"), src)
    assert (job.status, job.records_imported) == ("Completed", 2000), job
    assert packed() > before
