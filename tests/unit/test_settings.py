"""vecstore.settings: every environment variable in one typed object, read when used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from vecstore import kmeans
from vecstore.cli import main
from vecstore.errors import InvalidArgumentError
from vecstore.jobs import policy
from vecstore.jobs.kinds import kind_of
from vecstore.pipelines import discover, plan, runner
from vecstore.query import cache
from vecstore.settings import EXTERNAL, Settings, external, settings
from vecstore.settings.docs import render_doc

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIRS = [REPO / "vecstore", REPO / "schemas", REPO / "pipelines"]
SETTINGS_DIR = REPO / "vecstore" / "settings"


@pytest.fixture(autouse=True)
def _no_vecstore_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.env_names():
        monkeypatch.delenv(name, raising=False)


def _sources() -> list[Path]:
    found = set()
    for folder in PACKAGE_DIRS:
        for path in folder.rglob("*.py"):
            real = path.resolve()
            if SETTINGS_DIR not in real.parents:
                found.add(real)
    return sorted(found)


def test_no_module_but_settings_reads_the_environment() -> None:
    reads = re.compile(r"os\.environ|getenv|putenv|from os import .*environ")
    offenders = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in _sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if reads.search(line)
    ]
    assert offenders == [], "read the environment through vecstore.settings:\n" + "\n".join(
        offenders
    )


def test_every_vecstore_variable_named_in_code_is_a_setting() -> None:
    known = set(Settings.env_names())
    named = {
        name
        for path in _sources()
        for name in re.findall(r"VECSTORE_[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8"))
    }
    assert named - known == set()
    assert len(known) == len(Settings.model_fields)  # one variable per field


def test_every_field_is_documented() -> None:
    for name, field in Settings.model_fields.items():
        assert field.alias == "VECSTORE_" + name.upper(), name
        assert field.description and field.description.endswith("."), name
        assert isinstance(field.json_schema_extra, dict) and field.json_schema_extra["group"]


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.store == "./vecstore-data"
    assert (s.scheduler, s.config, s.integrations, s.query_cache_dir) == (None,) * 4
    assert s.heartbeat_seconds == 1.0 and s.stale_seconds == 30.0 and s.max_attempts == 3
    assert s.workers == 2 and s.worker_memory == "6GB"
    # the same values as the constants of the modules that use them
    assert s.chunk_bytes == plan.CHUNK_BYTES
    assert s.bucket_bytes == plan.BUCKET_BYTES
    assert s.partition_rows == plan.PARTITION_ROWS
    assert s.records_per_cluster == kmeans.TARGET_PER_CLUSTER
    assert s.query_cache_bytes == cache.DEFAULT_CACHE_BYTES
    assert s.limits() == {
        "max_namespaces": discover.MAX_NAMESPACES,
        "max_files": discover.MAX_FILES,
        "max_file_bytes": discover.MAX_FILE_BYTES,
        "max_namespace_bytes": discover.MAX_NAMESPACE_BYTES,
    }
    assert s.runner is None  # the runner the job's kind registers
    module, _, attr = kind_of("import").runner.partition(":")
    assert module == runner.__name__ and hasattr(runner, attr)


def test_read_when_used_not_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from vecstore.pipelines import driver

    assert not hasattr(driver, "HEARTBEAT_SECONDS")  # no knob frozen at import time
    assert plan.chunk_bytes() == plan.CHUNK_BYTES
    monkeypatch.setenv("VECSTORE_CHUNK_BYTES", "1")
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "2.5")
    monkeypatch.setenv("VECSTORE_MAX_FILES", "7")
    monkeypatch.setenv("VECSTORE_HEARTBEAT_SECONDS", "0.1")
    assert plan.chunk_bytes() == 1
    assert policy.stale_seconds() == 2.5
    assert plan.limits()["max_files"] == 7
    assert settings().heartbeat_seconds == 0.1
    monkeypatch.delenv("VECSTORE_CHUNK_BYTES")
    assert plan.chunk_bytes() == plan.CHUNK_BYTES


@pytest.mark.parametrize("blank", ["", "   "])
def test_empty_means_default(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    monkeypatch.setenv("VECSTORE_WORKERS", blank)
    monkeypatch.setenv("VECSTORE_STORE", blank)
    assert settings().workers == 2 and settings().store == "./vecstore-data"


def test_values_are_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_PARTITION_ROWS", " 700 ")
    assert plan.partition_rows() == 700


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("VECSTORE_WORKERS", "two", "VECSTORE_WORKERS must be an integer >= 1, got 'two'"),
        ("VECSTORE_CHUNK_BYTES", "0", "VECSTORE_CHUNK_BYTES must be an integer >= 1, got '0'"),
        ("VECSTORE_MAX_FILES", "1.5", "VECSTORE_MAX_FILES must be an integer >= 1, got '1.5'"),
        ("VECSTORE_STALE_SECONDS", "-1", "VECSTORE_STALE_SECONDS must be a number > 0, got '-1'"),
        ("VECSTORE_HEARTBEAT_SECONDS", "nan", "VECSTORE_HEARTBEAT_SECONDS must be a number > 0"),
        ("VECSTORE_QUERY_CACHE_BYTES", "2GB", "VECSTORE_QUERY_CACHE_BYTES must be an integer >= 0"),
    ],
)
def test_malformed_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(InvalidArgumentError) as err:
        settings()
    assert str(err.value).startswith(f"Environment variable {message}")
    assert err.value.variable == name


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = '{"integrations": {"s3": {"secret": "hunter2"}}}'
    monkeypatch.setenv("VECSTORE_INTEGRATIONS", secret)
    assert "hunter2" not in repr(settings()) and "hunter2" not in str(settings())
    assert settings().integrations == secret


def test_external_variables_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", "/tmp/xdg")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    assert external("XDG_CACHE_HOME") == "/tmp/xdg"
    assert external("AWS_ENDPOINT_URL") is None
    with pytest.raises(KeyError):
        external("HOME")
    text = "\n".join(p.read_text(encoding="utf-8") for p in _sources())
    for name in EXTERNAL:
        assert f'external("{name}")' in text, f"{name} is listed but not read: drop it"


def test_docs_table_is_up_to_date() -> None:
    doc = REPO / "docs" / "settings.md"
    text = doc.read_text(encoding="utf-8")
    assert render_doc(text) == text, "run: python -m vecstore.settings --write docs/settings.md"
    for name in [*Settings.env_names(), *EXTERNAL]:
        assert f"`{name}`" in text


def test_docs_command(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-W", "error", "-m", "vecstore.settings", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
        )

    shown = run("--markdown")
    assert shown.returncode == 0, shown.stderr
    assert "| `VECSTORE_HEARTBEAT_SECONDS` | a number > 0 | 1 |" in shown.stdout
    stale = tmp_path / "settings.md"
    stale.write_text(
        "# x\n<!-- BEGIN generated by `python -m vecstore.settings --write docs/settings.md` -->"
        "\nold\n<!-- END generated -->\n"
    )
    assert run("--check", str(stale)).returncode == 1
    assert run("--write", str(stale)).returncode == 0
    assert run("--check", str(stale)).returncode == 0
    assert "VECSTORE_WORKERS" in stale.read_text()


def test_cli_help_lists_the_cli_variables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for line in (
        "  VECSTORE_STORE        store root (instead of --store)",
        "  VECSTORE_INTEGRATIONS integrations as inline JSON",
    ):
        assert line in out


def test_without_secrets_keeps_every_other_knob(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a task may carry to the workers (a fold task's planning knobs)."""
    import pickle

    monkeypatch.setenv("VECSTORE_INTEGRATIONS", '{"integrations": {"s3": {"secret": "hunter2"}}}')
    monkeypatch.setenv("VECSTORE_PACK_ROWS", "123")
    safe = settings().without_secrets()
    assert b"hunter2" not in pickle.dumps(safe) and safe.integrations is None
    assert safe.model_dump(exclude={"integrations"}) == settings().model_dump(
        exclude={"integrations"}
    )
    assert safe.pack_rows == 123
