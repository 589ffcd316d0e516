"""The ``vecstore`` CLI, run in-process through ``main(argv)`` against a tmp_path store.

Import jobs are made without the import engine: records written through
``JobStore``, or a scripted runner (``ScriptedRunner``) that walks a job
through the state machine in a thread, standing in for ``pipelines``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import vecstore.api
from vecstore import jobstate, manifests
from vecstore.cli import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    app,
    build_parser,
    command_paths,
    commands,
    exit_code_for,
    exit_code_for_error,
    exitcodes,
    main,
    open_store,
    output,
    waiting,
)
from vecstore.cli.app import planned_commands
from vecstore.errors import (
    AlreadyExistsError,
    CommitConflictError,
    FormatError,
    InvalidArgumentError,
    NotFoundError,
    NotImplementedYet,
    StorageError,
    WaitTimeoutError,
)
from vecstore.jobs import JobStore, new_job_id
from vecstore.progress import (
    LogDisplay,
    ProgressTracker,
    RichDisplay,
    Sample,
    format_duration,
    format_rate,
    progress_fields,
    records_processed,
)
from vecstore.schemas import (
    ImportJob,
    IndexSpec,
    Manifest,
    NamespaceProgress,
    QueryResponse,
    ScoredVector,
)
from vecstore.storage import Store

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "VECSTORE_STORE",
        "VECSTORE_CONFIG",
        "VECSTORE_INTEGRATIONS",
        "VECSTORE_SCHEDULER",
        "VECSTORE_RUNNER",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(waiting, "POLL_INTERVAL", 0.01)


@pytest.fixture
def root(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def run(root: str, capsys: pytest.CaptureFixture[str]) -> Run:
    """``run("indexes", "list")`` -> (exit code, stdout, stderr), against ``root``."""

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


def _jobs(root: str, index: str = "docs") -> JobStore:
    return JobStore(Store(root), index)


def _job(index: str = "docs", **update: Any) -> ImportJob:
    return ImportJob(id=new_job_id(), index=index, uri="s3://bucket/import", **update)


def _completed(index: str = "docs") -> ImportJob:
    created = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    return _job(
        index,
        status="Completed",
        phase="done",
        percent_complete=100.0,
        records_imported=1234,
        records_skipped={"duplicate": 3, "dimension": 2},
        bytes_total=4096,
        bytes_read=4096,
        rejects_uri="file:///store/indexes/docs/imports/x/rejects",
        created_at=created,
        finished_at=created + timedelta(seconds=75),
        namespaces={
            "": NamespaceProgress(
                files=2, records_read=1000, records_imported=998, status="Committed"
            ),
            "books": NamespaceProgress(files=1, records_read=239, records_imported=236),
        },
    )


# ================================================================== indexes


def test_indexes_create_list_describe_delete(run: Run) -> None:
    code, out, _ = run("indexes", "create", "docs", "--dimension", "384", "--metric", "euclidean")
    assert code == EXIT_OK
    assert 'Created index "docs"' in out and "384" in out and "euclidean" in out

    code, out, _ = run("indexes", "create", "kw", "--vector-type", "sparse", "--cloud", "gcp")
    assert code == EXIT_OK and "sparse" in out

    code, out, _ = run("indexes", "list")
    assert code == EXIT_OK
    assert "docs" in out and "kw" in out and "NAME" in out

    code, out, _ = run("indexes", "describe", "docs")
    assert code == EXIT_OK
    for field in ("name", "dimension", "metric", "vector_type", "cloud", "created_at", "kind"):
        assert field in out
    assert "euclidean" in out

    code, out, _ = run("indexes", "delete", "docs", "--yes")
    assert code == EXIT_OK and 'Deleted index "docs"' in out
    code, out, _ = run("indexes", "list", "--json")
    assert [s["name"] for s in json.loads(out)] == ["kw"]


def test_indexes_json_outputs(run: Run) -> None:
    code, out, _ = run("--json", "indexes", "create", "docs", "--dimension", "8")
    assert code == 0
    created = IndexSpec.model_validate(json.loads(out))
    assert (created.name, created.dimension, created.metric) == ("docs", 8, "cosine")

    _, out, _ = run("indexes", "describe", "docs", "--json")
    assert IndexSpec.model_validate(json.loads(out)) == created
    _, out, _ = run("indexes", "list", "--json")
    assert json.loads(out) == [created.model_dump(mode="json")]
    _, out, _ = run("indexes", "delete", "docs", "--yes", "--json")
    assert json.loads(out) == {"deleted": "docs"}


def test_empty_store_lists_nothing(run: Run) -> None:
    code, out, _ = run("indexes", "list")
    assert code == 0 and "No indexes" in out
    assert json.loads(run("indexes", "list", "--json")[1]) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["indexes", "create", "Bad_Name", "--dimension", "4"], "Invalid index name"),
        (["indexes", "create", "docs"], "dimension"),
        (["indexes", "create", "docs", "--dimension", "0"], "Invalid dimension"),
        (["indexes", "create", "kw", "--vector-type", "sparse", "--dimension", "4"], "sparse"),
        (
            ["indexes", "create", "kw", "--vector-type", "sparse", "--metric", "cosine"],
            "sparse indexes use 'dotproduct'",
        ),
    ],
)
def test_invalid_index_arguments_exit_64(run: Run, argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == EXIT_USAGE
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["indexes", "create", "docs", "--dimension", "four"],
        ["indexes", "create", "docs", "--dimension", "4", "--metric", "hamming"],
        ["indexes", "create"],
        ["indexes"],
        [],
        ["frobnicate"],
        ["imports", "list"],  # --index is required
        ["import", "s3://b/x", "--index", "docs", "--timeout", "-1"],
        ["imports", "list", "--index", "docs", "--limit", "0"],
        ["imports", "list", "--index", "docs", "--limit", "3", "--all"],
        ["query", "--index", "docs", "--vector", "[1, 2"],
        ["--storage-option", "no-equals-sign", "indexes", "list"],
    ],
)
def test_argument_errors_exit_64(run: Run, argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == EXIT_USAGE
    assert "usage:" in err and "error:" in err and out == ""


def test_existing_index_exit_64(run: Run, index: str) -> None:
    code, _, err = run("indexes", "create", index, "--dimension", "4")
    assert code == EXIT_USAGE and err == 'error: Index "docs" already exists\n'


@pytest.mark.parametrize(
    "argv",
    [
        ["indexes", "describe", "nope"],
        ["indexes", "delete", "nope", "--yes"],
        ["imports", "list", "--index", "nope"],
        ["imports", "describe", "123", "--index", "nope"],
        ["import", "s3://bucket/dir", "--index", "nope"],
        ["query", "--index", "nope", "--id", "a"],
        ["stats", "--index", "nope"],
        ["namespaces", "list", "--index", "nope"],
    ],
)
def test_unknown_index_exit_64(run: Run, argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == EXIT_USAGE
    assert err == 'error: Index "nope" not found\n' and out == ""


def test_delete_needs_yes_without_a_terminal(run: Run, index: str) -> None:
    code, _, err = run("indexes", "delete", index)
    assert code == EXIT_USAGE and "--yes" in err
    assert run("indexes", "describe", index)[0] == EXIT_OK  # still there


def test_global_options_before_or_after_the_command(root: str, run: Run, index: str) -> None:
    code, out, _ = run("indexes", "list", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == index
    # the store given after the command wins over the one before it
    code, out, _ = run("indexes", "list", "--json", "--store", root + "-other")
    assert code == 0 and json.loads(out) == []


def test_store_from_environment(
    root: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VECSTORE_STORE", root)
    assert main(["indexes", "create", "docs", "--dimension", "2"]) == 0
    assert Store(root).exists("indexes/docs/index.json")


def test_storage_options_parse_as_json_and_merge() -> None:
    args = build_parser().parse_args(
        [
            "--store",
            "memory://cli-opts",
            "--storage-option",
            "anon=true",
            "indexes",
            "list",
            "--storage-option",
            'client_kwargs={"region_name": "eu-west-1"}',
            "--storage-option",
            "key=abc=def",
        ]
    )
    vs = open_store(args)
    assert vs.store.storage_options == {
        "anon": True,
        "client_kwargs": {"region_name": "eu-west-1"},
        "key": "abc=def",
    }


def test_secrets_are_never_printed(run: Run, index: str) -> None:
    for argv in (
        ["--storage-option", "secret=hunter2", "indexes", "list"],
        ["--storage-option", "secret=hunter2", "indexes", "describe", "nope"],
        ["--storage-option", "hunter2", "indexes", "list"],
    ):
        _, out, err = run(*argv)
        assert "hunter2" not in out + err


def test_urls_lose_their_userinfo() -> None:
    assert output.without_userinfo("s3://AKIA:hunter2@bucket/root") == "s3://bucket/root"
    assert output.without_userinfo("/srv/store") == "/srv/store"


def test_integrations_config_errors_exit_64(run: Run, tmp_path: Path, index: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run("--config", str(bad), "indexes", "list")
    assert code == EXIT_USAGE and "is not JSON" in err

    good = tmp_path / "cfg.json"
    good.write_text(json.dumps({"integrations": {"my-s3": {"key": "AKIA", "secret": "hunter2"}}}))
    code, out, err = run(
        "--config", str(good), "import", "s3://b/d", "--index", index, "--integration-id", "other"
    )
    assert code == EXIT_USAGE
    assert 'Unknown integration_id "other" (known: my-s3)' in err
    assert "hunter2" not in out + err and "AKIA" not in out + err


# ================================================================== imports


def test_imports_list_newest_first(root: str, run: Run, index: str) -> None:
    jobs = _jobs(root)
    older = jobs.create(_completed())
    newer = jobs.create(_job(status="Failed", phase="failed", error="No Parquet files found"))

    code, out, _ = run("imports", "list", "--index", index)
    assert code == 0
    assert out.index(newer.id) < out.index(older.id)
    assert "Completed" in out and "Failed" in out and "1,234" in out

    code, out, _ = run("imports", "list", "--index", index, "--json")
    assert [j["id"] for j in json.loads(out)] == [newer.id, older.id]

    code, out, _ = run("imports", "list", "--index", index, "--limit", "1")
    assert newer.id in out and older.id not in out and "--all" in out
    code, out, _ = run("imports", "list", "--index", index, "--all", "--json")
    assert len(json.loads(out)) == 2


def test_imports_list_empty(run: Run, index: str) -> None:
    code, out, _ = run("imports", "list", "--index", index)
    assert code == 0 and "No imports" in out


def test_imports_describe_shows_every_field(root: str, run: Run, index: str) -> None:
    job = _jobs(root).create(_completed())
    code, out, _ = run("imports", "describe", job.id, "--index", index)
    assert code == 0
    for name in ImportJob.model_fields:
        assert name in out, name
    assert "5 (dimension: 2, duplicate: 3)" in out
    assert "1m15s" in out  # duration
    assert job.rejects_uri is not None and job.rejects_uri in out
    assert "__default__" in out and "books" in out  # per-namespace progress
    assert "Committed" in out

    code, out, _ = run("imports", "describe", job.id, "--index", index, "--json")
    assert ImportJob.model_validate(json.loads(out)) == job


def test_imports_describe_failed_shows_error(root: str, run: Run, index: str) -> None:
    job = _jobs(root).create(
        _job(status="Failed", error='The namespace "a" already exists.', phase="failed")
    )
    _, out, _ = run("imports", "describe", job.id, "--index", index)
    assert 'The namespace "a" already exists.' in out


def test_imports_describe_unknown_id(run: Run, index: str) -> None:
    code, _, err = run("imports", "describe", "0000000000000000deadbeef", "--index", index)
    assert code == EXIT_USAGE and "not found" in err


def test_imports_cancel(root: str, run: Run, index: str) -> None:
    jobs = _jobs(root)
    # created 10 s ago and no runner picked it up: cancelled at once (a job
    # older than VECSTORE_STALE_SECONDS would be taken over by the describe first)
    pending = jobs.create(_job(created_at=datetime.now(UTC) - timedelta(seconds=10)))
    code, out, _ = run("imports", "cancel", pending.id, "--index", index)
    assert code == 0 and "Cancelled" in out
    assert jobs.get(pending.id).status == "Cancelled"

    done = jobs.create(_completed())
    code, out, _ = run("imports", "cancel", done.id, "--index", index)
    assert code == 0 and "nothing to cancel" in out
    assert jobs.get(done.id).status == "Completed"

    running = jobs.create(
        _job(status="InProgress", runner="elsewhere", heartbeat_at=datetime.now(UTC))
    )
    code, out, _ = run("imports", "cancel", running.id, "--index", index, "--json")
    assert code == 0
    assert json.loads(out)["cancel_requested"] is True
    assert jobs.cancel_requested(running.id)


# =========================================================== exit code maps


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("Completed", 0),
        ("Failed", 1),
        ("Cancelled", 2),
        ("InProgress", 3),
        ("Pending", 3),
    ],
)
def test_exit_code_for_job(status: str, code: int) -> None:
    assert exit_code_for(_job(status=status)) == code


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InvalidArgumentError("x"), EXIT_USAGE),
        (NotFoundError("x"), EXIT_USAGE),
        (AlreadyExistsError("x"), EXIT_USAGE),
        (CommitConflictError("x"), EXIT_USAGE),
        (NotImplementedYet("x"), EXIT_UNAVAILABLE),
        (WaitTimeoutError("x"), EXIT_TIMEOUT),
        (StorageError("x"), EXIT_FAILED),
        (FormatError("x"), EXIT_FAILED),
    ],
)
def test_exit_code_for_error(error: Exception, code: int) -> None:
    assert exit_code_for_error(error) == code  # type: ignore[arg-type]


# ============================================== import, with a scripted runner


class ScriptedRunner:
    """Stands in for the Dask runner: drives the job through ``jobstate`` in a thread.

    ``outcome``: ``complete``, ``fail``, ``cancelled-elsewhere`` (someone else
    cancels it) or ``hang`` (runs until it is asked to cancel).
    """

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
        for i in range(1, 4):
            time.sleep(0.02)
            step(
                jobstate.Progress(phase="scan", fraction=i / 5, records_imported=100 * i, now=now())
            )
        if self.outcome == "complete":
            step(
                jobstate.Committed(
                    records_imported=500, records_skipped={"nan": 1}, namespaces={}, now=now()
                )
            )
        elif self.outcome == "fail":
            step(jobstate.Fail(error='No Parquet files found under "s3://b/d"', now=now()))
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
def use_runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ScriptedRunner]]:
    made: list[ScriptedRunner] = []

    def install(outcome: str) -> ScriptedRunner:
        runner = ScriptedRunner(outcome)
        made.append(runner)
        monkeypatch.setattr(vecstore.api, "get_runner", lambda *a, **k: runner)
        return runner

    yield install
    for r in made:
        r.close()


def test_import_wait_completed_exits_0(run: Run, index: str, use_runner: Any) -> None:
    use_runner("complete")
    code, out, err = run("import", "s3://b/d", "--index", index, "--wait")
    assert code == EXIT_OK, err
    first = out.splitlines()[0]
    assert first.startswith("Import started: ")
    job_id = first.split(": ")[1]
    assert f"Import {job_id}" in out
    assert "Completed" in out and "500" in out and "1 (nan: 1)" in out
    assert "rejects" in out  # records were skipped: where the report is
    assert "scan" in err  # progress lines (stderr is not a terminal here)


def test_import_wait_failed_exits_1(run: Run, index: str, use_runner: Any) -> None:
    use_runner("fail")
    code, out, _ = run("import", "s3://b/d", "--index", index, "--wait", "--no-progress")
    assert code == EXIT_FAILED
    assert "Failed" in out and 'No Parquet files found under "s3://b/d"' in out


def test_import_wait_cancelled_elsewhere_exits_2(run: Run, index: str, use_runner: Any) -> None:
    use_runner("cancelled-elsewhere")
    code, out, _ = run("import", "s3://b/d", "--index", index, "--wait", "--no-progress")
    assert code == EXIT_CANCELLED and "Cancelled" in out


def test_import_timeout_cancels_and_exits_3(
    root: str, run: Run, index: str, use_runner: Any
) -> None:
    use_runner("hang")
    code, out, err = run(
        "import", "s3://b/d", "--index", index, "--wait", "--timeout", "0.2", "--json"
    )
    assert code == EXIT_TIMEOUT
    job = ImportJob.model_validate(json.loads(out))
    assert job.status == "Cancelled"
    assert "Timed out" in err
    assert _jobs(root).get(job.id).status == "Cancelled"


def test_import_ctrl_c_cancels_and_exits_130(
    run: Run, index: str, use_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_runner("hang")
    calls = 0

    def pause(seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyboardInterrupt
        time.sleep(seconds)

    monkeypatch.setattr(waiting, "pause", pause)
    code, out, err = run("import", "s3://b/d", "--index", index, "--wait")
    assert code == EXIT_INTERRUPTED
    assert "cancelling import" in err and "Cancelled" in out


def test_import_sigterm_cancels_and_exits_143(
    run: Run, index: str, use_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_runner("hang")
    sent = False

    def pause(seconds: float) -> None:
        nonlocal sent
        if not sent:
            sent = True
            os.kill(os.getpid(), signal.SIGTERM)  # the CLI's handler raises in this thread
        time.sleep(seconds)

    monkeypatch.setattr(waiting, "pause", pause)
    previous = signal.getsignal(signal.SIGTERM)
    code, out, err = run("import", "s3://b/d", "--index", index, "--no-progress")
    assert code == EXIT_TERMINATED
    assert "Terminated: cancelling import" in err and "Cancelled" in out
    assert signal.getsignal(signal.SIGTERM) == previous  # handler restored


def test_import_without_wait_blocks_and_exits_0_on_any_final_status(
    run: Run, index: str, use_runner: Any
) -> None:
    use_runner("fail")
    code, out, err = run("import", "s3://b/d", "--index", index)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0].startswith("Import started: ")
    assert "Failed: No Parquet files found" in lines[-1]
    assert err == ""  # no progress without --wait


def test_import_json_is_the_final_record(run: Run, index: str, use_runner: Any) -> None:
    use_runner("complete")
    code, out, _ = run("--json", "import", "s3://b/d", "--index", index, "--wait")
    assert code == EXIT_OK
    job = ImportJob.model_validate(json.loads(out))
    assert job.status == "Completed" and job.records_imported == 500


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["https://example.com/data"], "Unsupported URI"),
        (["s3://bucket--x-s3/d"], "S3 Express One Zone"),
        (["s3://b/d", "--integration-id", "nope"], 'Unknown integration_id "nope"'),
    ],
)
def test_import_argument_errors_exit_64(
    run: Run, index: str, use_runner: Any, argv: list[str], message: str
) -> None:
    use_runner("complete")
    code, _, err = run("import", *argv, "--index", index, "--wait")
    assert code == EXIT_USAGE and message in err


# ============================================ query, namespaces and stats


def _namespace(root: str, name: str, count: int, index: str = "docs") -> None:
    store = Store(root)
    manifests.commit(
        store,
        Manifest(
            index=index,
            namespace=name,
            version=manifests.next_version(store, index, name),
            dimension=4,
            record_count=count,
        ),
    )


def test_namespaces_and_stats(root: str, run: Run, index: str) -> None:
    code, out, _ = run("namespaces", "list", "--index", index)
    assert code == 0 and "No namespaces" in out

    _namespace(root, "", 10)
    _namespace(root, "books", 5)
    code, out, _ = run("namespaces", "list", "--index", index)
    assert code == 0 and "__default__" in out and "books" in out
    _, out, _ = run("namespaces", "list", "--index", index, "--json")
    assert json.loads(out) == [
        {"name": "", "record_count": 10},
        {"name": "books", "record_count": 5},
    ]

    code, out, _ = run("stats", "--index", index)
    assert code == 0 and "15" in out and "books" in out and "cosine" in out
    _, out, _ = run("stats", "--index", index, "--json")
    assert json.loads(out)["total_vector_count"] == 15

    code, _, err = run("namespaces", "delete", "books", "--index", index)
    assert code == EXIT_USAGE and "--yes" in err
    code, out, _ = run("namespaces", "delete", "books", "--index", index, "--yes")
    assert code == 0 and 'Deleted namespace "books"' in out
    code, out, _ = run("namespaces", "delete", "__default__", "--index", index, "--yes")
    assert code == 0
    assert json.loads(run("namespaces", "list", "--index", index, "--json")[1]) == []

    code, _, err = run("namespaces", "delete", "books", "--index", index, "--yes")
    assert code == EXIT_USAGE and "not found" in err


@pytest.fixture
def fake_query(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def query(self: vecstore.api.Index, **kwargs: Any) -> QueryResponse:
        calls.append(kwargs)
        return QueryResponse(
            namespace=kwargs["namespace"],
            matches=[
                ScoredVector(id="a", score=0.99, values=[1, 2, 3, 4, 5], metadata={"g": "[x]"}),
                ScoredVector(id="b", score=0.5, values=[0, 0, 0, 1], metadata={"g": "y"}),
            ],
        )

    monkeypatch.setattr(vecstore.api.Index, "query", query)
    return calls


def test_query_table_and_json(
    run: Run, index: str, fake_query: list[dict[str, Any]], tmp_path: Path
) -> None:
    vector = tmp_path / "q.json"
    vector.write_text("[0.1, 0.2, 0.3, 0.4]")
    code, out, _ = run(
        "query",
        "--index",
        index,
        "--namespace",
        "books",
        "--vector",
        f"@{vector}",
        "--top-k",
        "2",
        "--filter",
        '{"g": {"$eq": "y"}}',
        "--include-values",
        "--include-metadata",
        "--nprobe",
        "3",
    )
    assert code == 0
    assert fake_query[-1] == {
        "namespace": "books",
        "vector": [0.1, 0.2, 0.3, 0.4],
        "top_k": 2,
        "filter": {"g": {"$eq": "y"}},
        "include_values": True,
        "include_metadata": True,
        "nprobe": 3,
    }
    rows = [line.split() for line in out.splitlines()[1:]]
    assert [r[:3] for r in rows] == [["1", "a", "0.990000"], ["2", "b", "0.500000"]]
    assert "0.990000" in out and '{"g": "[x]"}' in out and "…" in out

    code, out, _ = run("query", "--index", index, "--id", "a", "--json")
    assert code == 0
    assert fake_query[-1] == {
        "namespace": "",
        "id": "a",
        "top_k": 10,
        "include_values": False,
        "include_metadata": False,
    }
    assert [m["id"] for m in json.loads(out)["matches"]] == ["a", "b"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "needs --vector, --sparse or --id"),
        (["--id", "a", "--vector", "[1, 2, 3, 4]"], "not both"),
        (["--vector", '{"a": 1}'], "--vector must be a JSON list"),
        (["--sparse", "[1]"], "--sparse must be a JSON object"),
        (["--id", "a", "--filter", "[1]"], "--filter must be a JSON object"),
    ],
)
def test_query_argument_errors(
    run: Run, index: str, fake_query: list[dict[str, Any]], argv: list[str], message: str
) -> None:
    code, _, err = run("query", "--index", index, *argv)
    assert code == EXIT_USAGE and message in err
    assert fake_query == []


# ======================================================== progress model


def _at(percent: float, records: int, **update: Any) -> ImportJob:
    fields: dict[str, Any] = {"status": "InProgress", "phase": "scan"}
    return _job(**fields | update, percent_complete=percent, records_imported=records)


def test_progress_rate_and_eta() -> None:
    fields = progress_fields([Sample(0.0, _at(10, 0)), Sample(2.0, _at(20, 1000))])
    assert fields.records_per_second == pytest.approx(500.0)
    assert fields.eta_seconds == pytest.approx(16.0)  # 80 % left at 5 %/s
    assert (fields.phase, fields.percent, fields.records) == ("scan", 20, 1000)
    assert fields.elapsed_seconds == 2.0


def test_progress_unknown_until_two_samples_and_movement() -> None:
    fields = progress_fields([Sample(5.0, _at(0, 0))])
    assert fields.records_per_second is None and fields.eta_seconds is None
    assert fields.rate_text == "– rec/s" and fields.eta_text == "–"
    stalled = progress_fields([Sample(0.0, _at(30, 10)), Sample(3.0, _at(30, 10))])
    assert stalled.records_per_second == 0.0 and stalled.eta_seconds is None


def test_progress_uses_a_recent_window() -> None:
    samples = [
        Sample(0.0, _at(0, 0)),
        Sample(100.0, _at(50, 100_000)),
        Sample(110.0, _at(60, 101_000)),
    ]
    fields = progress_fields(samples, window_seconds=15)
    assert fields.records_per_second == pytest.approx(100.0)  # last 10 s, not the average
    assert fields.eta_seconds == pytest.approx(40.0)
    assert fields.elapsed_seconds == 110.0
    # nothing inside the window but the last sample: the one just before is the baseline
    fields = progress_fields(samples[:2], window_seconds=15)
    assert fields.records_per_second == pytest.approx(1000.0)


def test_progress_counts_skipped_and_namespace_reads() -> None:
    job = _at(
        40,
        10,
        records_skipped={"nan": 5},
        namespaces={
            "a": NamespaceProgress(records_read=700),
            "b": NamespaceProgress(records_read=300),
        },
    )
    assert records_processed(job) == 1000
    assert records_processed(_at(40, 10, records_skipped={"nan": 5})) == 15


def test_progress_final_states() -> None:
    done = _job(status="Completed", percent_complete=100.0, records_imported=10)
    assert progress_fields([Sample(0, _at(90, 9)), Sample(1, done)]).eta_seconds == 0.0
    failed = _job(status="Failed", percent_complete=40.0)
    assert progress_fields([Sample(0, _at(10, 0)), Sample(1, failed)]).eta_seconds is None


def test_progress_tracker_keeps_a_bounded_window() -> None:
    tracker = ProgressTracker(window_seconds=10)
    for t in range(0, 1000):
        fields = tracker.update(float(t), _at(min(99, t / 10), t * 10))
    assert len(tracker._recent) <= 12
    assert fields.records_per_second == pytest.approx(10.0)
    assert fields.elapsed_seconds == 999.0


def test_formats() -> None:
    assert format_duration(None) == "–"
    assert format_duration(42.4) == "42s"
    assert format_duration(185) == "3m05s"
    assert format_duration(3720) == "1h02m"
    assert format_rate(12.34) == "12.3 rec/s"
    assert format_rate(1234) == "1,234 rec/s"
    assert format_rate(25_000) == "25k rec/s"


def test_renderers(capsys: pytest.CaptureFixture[str]) -> None:
    tracker = ProgressTracker()
    snapshots = [_at(10, 0), _at(20, 500), _at(30, 1000, phase="write", bytes_total=2048)]
    with LogDisplay() as log:
        for t, job in enumerate(snapshots):
            log.update(tracker.update(float(t), job))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2  # one per phase (and every 30 s)
    assert "scan" in lines[0] and "write" in lines[1] and "500 rec/s" in lines[1]
    assert "ETA 7s" in lines[1] and "2.0 KB" in lines[1]

    with RichDisplay("job") as bar:
        bar.update(tracker.update(3.0, _job(status="Completed", percent_complete=100.0)))
    assert "100.0%" in capsys.readouterr().err


# =============================================================== help


def test_every_help_renders(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(command_paths(build_parser()))
    assert ["indexes", "create"] in paths and ["imports", "cancel"] in paths
    for path in [[], *paths]:
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert out.startswith("usage: vecstore"), path
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    for text in ("examples:", "exit codes:", "VECSTORE_STORE", "import", "load"):
        assert text in top
    assert "69   not available (an engine that is not installed)" in top
    assert planned_commands() == []


def test_not_available_yet_exit_69(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism for announced commands (none at the moment: `load` is available)."""
    from vecstore.cli.commands import planned

    monkeypatch.setattr(
        planned, "register", lambda commands: commands.planned("later", "comes later")
    )
    assert planned_commands() == ["later"]
    code, out, err = run("later", "--anything")
    assert code == EXIT_UNAVAILABLE
    assert err == "error: `vecstore later` is not available yet\n" and out == ""
    assert main(["--help"]) == 0


def test_console_script_entry_point(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "vecstore"
    assert script.exists(), "run `.venv/bin/pip install -e .` to install the entry point"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
    proc = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: vecstore" in proc.stdout and "exit codes:" in proc.stdout
    proc = subprocess.run(
        [str(script), "--store", str(tmp_path), "indexes", "describe", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == EXIT_USAGE
    assert proc.stderr == 'error: Index "nope" not found\n'


# ===================================================== structure of the CLI


DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_exit_code_table_is_written_once_and_documented() -> None:
    codes = [e.code for e in exitcodes.TABLE]
    assert len(set(codes)) == len(codes)
    constants = {v for k, v in vars(exitcodes).items() if k.startswith("EXIT_")}
    assert constants == set(codes)
    table = exitcodes.markdown(planned_commands())
    assert table in DOCS.read_text(encoding="utf-8"), (
        "docs/cli.md's exit-code table is out of date; it should read:\n" + table
    )


def test_every_command_module_is_registered() -> None:
    folder = Path(commands.__file__).parent
    found = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    assert found == set(commands.MODULES)


def test_adding_a_command_is_one_module_and_one_line(
    monkeypatch: pytest.MonkeyPatch, root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A module with ``register`` and its name in ``MODULES``: the command gets the
    global options, help, exit codes and error handling of every other."""
    module = types.ModuleType("vecstore.cli.commands.hello")

    def hello(args: Any) -> int:
        if args.name == "nope":
            raise NotFoundError('Index "nope" not found')
        print(json.dumps({"hello": args.name, "store": args.store}) if args.json else args.name)
        return EXIT_OK

    def register(commands: Any) -> None:
        commands.command("hello", hello, "say hello").add_argument("name")

    module.register = register  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(app, "MODULES", (*commands.MODULES, "hello"))

    assert main(["hello", "you", "--store", root, "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"hello": "you", "store": root}
    assert main(["hello", "nope"]) == EXIT_USAGE
    assert capsys.readouterr().err == 'error: Index "nope" not found\n'
    assert main(["hello", "--help"]) == EXIT_OK
    assert "global options" in capsys.readouterr().out
    assert ["hello"] in list(command_paths(build_parser()))


def test_a_malformed_setting_exits_64(
    run: Run, index: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VECSTORE_QUERY_CACHE_BYTES", "lots")
    code, out, err = run("query", "--index", index, "--id", "a")
    assert code == EXIT_USAGE and out == ""
    assert err == (
        "error: Environment variable VECSTORE_QUERY_CACHE_BYTES must be an integer >= 0, "
        "got 'lots'\n"
    )
