"""``vecstore load``: arguments, the call it makes, its output and exit statuses.

Run in-process through ``main(argv)`` against a tmp_path store. The tests
wrap ``start_import`` to record the keywords the command passes and start
the job on a scripted runner (``jobstate`` driven in a thread, as in
test_cli.py), so every exit status is reached; real loads run end to end in
tests/integration/test_load*.py and test_hourly_load.py.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import vecstore.api
from vecstore import jobstate
from vecstore.cli import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    main,
    waiting,
)
from vecstore.cli.commands import load as load_cmd
from vecstore.jobs import JobStore
from vecstore.schemas import ImportJob, IndexSpec
from vecstore.storage import Store

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VECSTORE_STORE", "VECSTORE_CONFIG", "VECSTORE_INTEGRATIONS", "VECSTORE_SCHEDULER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(waiting, "POLL_INTERVAL", 0.01)


@pytest.fixture
def run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    root = str(tmp_path / "store")

    def go(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--store", root, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return go


@pytest.fixture
def index(run: Run) -> str:
    code, _, err = run("indexes", "create", "docs", "--dimension", "4")
    assert code == 0, err
    return "docs"


class Scripted:
    """Runs a job to ``outcome`` (complete, fail, cancelled-elsewhere, hang) in a thread."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.threads: list[threading.Thread] = []

    def submit(self, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        t = threading.Thread(target=self._run, args=(store, job), daemon=True)
        self.threads.append(t)
        t.start()

    def recover(self, store: Store, index: str, source_for: Any = None) -> list[str]:
        return []

    def close(self, *, abandon: bool = False) -> None:
        for t in self.threads:
            t.join(5)

    def _run(self, store: Store, job: ImportJob) -> None:
        jobs = JobStore(store, job.index)

        def step(event: jobstate.Event) -> None:
            nonlocal job
            job, actions = jobstate.apply(job, event)
            for action in actions:
                if isinstance(action, jobstate.Persist):
                    jobs.save(action.job)

        def now() -> datetime:
            return datetime.now(UTC)

        step(jobstate.Start(runner="scripted", now=now()))
        step(jobstate.Progress(phase="scan", fraction=0.5, records_imported=10, now=now()))
        time.sleep(0.1)  # long enough for the CLI's poll to see the phase
        if self.outcome == "complete":
            step(
                jobstate.Committed(
                    records_imported=20, records_skipped={}, namespaces={}, now=now()
                )
            )
        elif self.outcome == "fail":
            step(jobstate.Fail(error='delete file "x", row 3: null "id"', now=now()))
        elif self.outcome == "cancelled-elsewhere":
            jobs.request_cancel(job.id)
            step(jobstate.WorkStopped(now=now()))
        else:
            deadline = time.monotonic() + 10
            while not jobs.cancel_requested(job.id) and time.monotonic() < deadline:
                time.sleep(0.01)
                step(jobstate.Heartbeat(now=now()))
            step(jobstate.WorkStopped(now=now()))


@pytest.fixture
def load_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """``load_api(outcome)``: start_import takes mode/force (recorded) and runs on Scripted."""
    runners: list[Scripted] = []

    def install(outcome: str) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []
        runner = Scripted(outcome)
        runners.append(runner)
        monkeypatch.setattr(vecstore.api, "get_runner", lambda *a, **k: runner)
        original = vecstore.api.Index.start_import

        def start_import(
            self: vecstore.api.Index,
            uri: str,
            integration_id: str | None = None,
            error_mode: str = "continue",
            mode: str = "create",
            force: bool = False,
        ) -> Any:
            calls.append(
                {
                    "uri": uri,
                    "integration_id": integration_id,
                    "error_mode": error_mode,
                    "mode": mode,
                    "force": force,
                }
            )
            return original(self, uri=uri, integration_id=integration_id, error_mode=error_mode)

        monkeypatch.setattr(vecstore.api.Index, "start_import", start_import)
        return calls

    yield install
    for r in runners:
        r.close()


def test_start_import_has_the_load_keywords() -> None:
    params = inspect.signature(vecstore.api.Index.start_import).parameters
    assert "mode" in params and "force" in params


def test_completed_exits_0_and_calls_an_upsert(run: Run, index: str, load_api: Any) -> None:
    calls = load_api("complete")
    code, out, err = run(
        "load",
        "s3://b/d",
        "--index",
        index,
        "--wait",
        "--integration",
        "x",
        "--error-mode",
        "abort",
    )
    assert code == EXIT_USAGE and 'Unknown integration_id "x"' in err  # checked like import's
    code, out, err = run("load", "s3://b/d", "--index", index, "--wait", "--error-mode", "abort")
    assert code == EXIT_OK, err
    assert calls[-1] == {
        "uri": "s3://b/d",
        "integration_id": None,
        "error_mode": "abort",
        "mode": "upsert",
        "force": False,
    }
    lines = out.splitlines()
    assert lines[0].startswith("Load started: ")
    job_id = lines[0].split(": ")[1]
    assert f"Load {job_id}" in out and "Completed" in out and "20" in out
    assert "records" in err  # plain progress lines on stderr


def test_force_and_integration_id_alias(run: Run, index: str, load_api: Any) -> None:
    calls = load_api("complete")
    code, _, _ = run("load", "s3://b/d", "--index", index, "--force")
    assert code == EXIT_OK and calls[-1]["force"] is True and calls[-1]["error_mode"] == "continue"


@pytest.mark.parametrize(
    ("outcome", "code"),
    [("fail", EXIT_FAILED), ("cancelled-elsewhere", EXIT_CANCELLED)],
)
def test_wait_exit_statuses(run: Run, index: str, load_api: Any, outcome: str, code: int) -> None:
    load_api(outcome)
    got, out, _ = run("load", "s3://b/d", "--index", index, "--wait", "--no-progress")
    assert got == code
    # without --wait: 0 once the load reached any final status, as import
    got, out, err = run("load", "s3://b/d", "--index", index)
    assert got == EXIT_OK and out.splitlines()[-1].startswith("Load ") and err == ""


def test_failed_summary_shows_the_error(run: Run, index: str, load_api: Any) -> None:
    load_api("fail")
    _, out, _ = run("load", "s3://b/d", "--index", index, "--wait", "--no-progress")
    assert 'error             delete file "x", row 3: null "id"' in out


def test_timeout_cancels_and_exits_3(run: Run, index: str, load_api: Any) -> None:
    load_api("hang")
    code, out, err = run(
        "load", "s3://b/d", "--index", index, "--wait", "--timeout", "0.2", "--json"
    )
    assert code == EXIT_TIMEOUT and "Timed out" in err and "load" in err
    assert ImportJob.model_validate(json.loads(out)).status == "Cancelled"


@pytest.mark.parametrize(
    "argv",
    [
        ["s3://b/d"],  # no --index
        ["s3://b/d", "--index", "docs", "--error-mode", "skip"],
        ["--index", "docs"],  # no URI
        ["s3://b/d", "--index", "docs", "--timeout", "-1"],
    ],
)
def test_argument_errors_exit_64(run: Run, index: str, argv: list[str]) -> None:
    code, _, err = run("load", *argv)
    assert code == EXIT_USAGE and "usage:" in err


def test_unknown_index_exits_64(run: Run) -> None:
    code, _, err = run("load", "s3://b/d", "--index", "nope", "--wait")
    assert code == EXIT_USAGE and "nope" in err


def test_summary_rows_show_load_counts() -> None:
    job = ImportJob(
        id="j",
        index="docs",
        uri="s3://b/d",
        status="Completed",
        records_imported=5,
        report={"files_skipped": 7, "ids_deleted": 3, "recall": 0.97},
    )
    rows = dict(load_cmd.summary_rows(job))
    assert rows["files skipped (loaded before)"] == "7" and rows["ids deleted"] == "3"
    assert list(rows).index("ids deleted") == list(rows).index("records skipped") + 2


def test_help_lists_load(run: Run) -> None:
    code, out, _ = run("load", "--help")
    assert code == 0 and "--force" in out and "--integration" in out and "deletes/" in out


def _hourly_load() -> Any:
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[2] / "examples" / "hourly_load.py"
    spec = importlib.util.spec_from_file_location("hourly_load", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["hourly_load"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("outcome", "code"), [("complete", EXIT_OK), ("fail", EXIT_FAILED)])
def test_example_run_load_returns_the_cli_exit_status(
    tmp_path: Path, index: str, load_api: Any, outcome: str, code: int
) -> None:
    calls = load_api(outcome)
    mod = _hourly_load()
    store = str(tmp_path / "store")  # the store the `index` fixture created the index in
    assert mod.run_load("s3://b/d", index, store=store, force=True, timeout=60) == code
    assert calls == [
        {
            "uri": "s3://b/d",
            "integration_id": None,
            "error_mode": "continue",
            "mode": "upsert",
            "force": True,
        }
    ]
    assert mod.main(["s3://b/d", "--index", index, "--store", store]) == code
