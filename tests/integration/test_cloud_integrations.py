"""Storage integrations: an ``integration_id`` names a stored credential set
for the import source, configured through ``VecStore(integrations=...)``, a
config file (``VecStore(config_path=...)``, ``VECSTORE_CONFIG``, the CLI's
``--config``) or ``VECSTORE_INTEGRATIONS``. Without one the source is read
anonymously: a public Azurite container imports, a private one fails the
job (not ``start_import``) with an access-denied error. An unknown id is an
argument error. Credentials never show: not in logs (DEBUG, driver and Dask
workers), job records, reject reports, any file of the store, error
messages, reprs or CLI output."""

from __future__ import annotations

import base64
import json
import logging
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cloudgen import (
    Place,
    assert_imported,
    new_place,
    plain_anon_options,
    plain_options,
    seed_import,
    store_files,
    upload_dir,
    worker_logs,
)
from datagen import IMPORT_TIMEOUT, NOTHING_LEFT, VENV_BIN, dense_table, leftovers, vectors, write
from servers import AZURITE_ACCOUNT, AZURITE_KEY, Emulator, azurite_connection_string

from vecstore import VecStore, layout
from vecstore.errors import InvalidArgumentError, StorageError
from vecstore.integrations import CONFIG_ENV, INLINE_ENV

pytestmark = pytest.mark.dask

S3_KEY_ID = "AKIAVECSTORELEAKTEST"  # botocore DEBUG logs show the key id: fine
S3_SECRET = "vecstoreLEAK/s3+Secret0123456789abcdefXYZ"
WRONG_AZURE_KEY = base64.b64encode(b"vecstore-LEAK-wrong-azure-account-key!").decode()
SECRETS = (S3_SECRET, AZURITE_KEY, WRONG_AZURE_KEY)


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (CONFIG_ENV, INLINE_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VECSTORE_QUERY_CACHE_DIR", str(tmp_path / "query-cache"))


@pytest.fixture
def private(request: pytest.FixtureRequest, tmp_path: Path, azure_server: Emulator) -> Place:
    """A private Azurite container holding an import directory."""
    return new_place("azure", request, tmp_path)


def _leaks(text: str | bytes) -> list[str]:
    """Which secrets (raw or percent-encoded) occur in ``text``."""
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [s for s in SECRETS
            if any(form.encode() in raw for form in {s, quote(s, safe=""), quote(s)})]


# ------------------------------------------------------------ three ways
def test_integration_from_each_configuration_source(
    dask_runner: Any, private: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same private source imports with its credentials named by id from
    VecStore(integrations=...), a config file (argument and VECSTORE_CONFIG)
    and VECSTORE_INTEGRATIONS; the explicit mapping wins over the file, the
    file over the inline variable."""
    uri, tables, _ = seed_import(private, tmp_path, {"docs": 300}, files=1)
    good = {"az-private": private.options}
    wrong = {"az-private": {**private.options, "connection_string": azurite_connection_string(
        private.server.endpoint if private.server else "", key=WRONG_AZURE_KEY)}}
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"integrations": good}))
    wrong_cfg = tmp_path / "wrong.json"
    wrong_cfg.write_text(json.dumps({"integrations": wrong}))
    root = str(tmp_path / "store")

    def import_with(name: str, vs: VecStore) -> None:
        vs.create_index(name=name, dimension=8, metric="euclidean", cloud="azure")
        index = vs.Index(name)
        op = index.start_import(uri=uri, integration_id="az-private")
        job = index.wait_for_import(op.id, timeout=IMPORT_TIMEOUT)
        assert job.integration_id == "az-private"
        assert_imported(index, job, tables, metric="euclidean", queries=1)

    import_with("explicit", VecStore(root, integrations=good, config_path=str(wrong_cfg)))
    import_with("config-arg", VecStore(root, config_path=str(cfg)))
    monkeypatch.setenv(CONFIG_ENV, str(cfg))
    monkeypatch.setenv(INLINE_ENV, json.dumps({"integrations": wrong}))
    import_with("config-env", VecStore(root))
    monkeypatch.delenv(CONFIG_ENV)
    monkeypatch.setenv(INLINE_ENV, json.dumps({"integrations": good}))
    import_with("inline-env", VecStore(root))
    # the bare form {"<id>": {...}} is accepted too
    monkeypatch.setenv(INLINE_ENV, json.dumps(good))
    assert VecStore(root).integrations.ids() == ["az-private"]


def test_unknown_integration_is_an_argument_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No job, no runner; the message lists the ids known from all sources."""
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"integrations": {"from-file": {"secret": S3_SECRET}}}))
    monkeypatch.setenv(INLINE_ENV, json.dumps({"integrations": {"from-env": {"secret": S3_SECRET}}}))
    vs = VecStore(str(tmp_path / "store"), integrations={"given": {"secret": S3_SECRET}},
                  config_path=str(cfg))
    vs.create_index(name="docs", dimension=8)
    index = vs.Index("docs")
    with pytest.raises(InvalidArgumentError) as info:
        index.start_import(uri="az://container/import", integration_id="nope")
    assert str(info.value) == 'Unknown integration_id "nope" (known: from-env, from-file, given)'
    assert index.jobs.ids() == []
    assert store_files(vs.store, layout.imports_prefix("docs")) == []
    assert not _leaks(repr(vs.integrations) + repr(vs) + repr(index) + repr(info.value.context))


# ---------------------------------------------------------- anonymous
def test_public_container_imports_without_integration(
    dask_runner: Any, request: pytest.FixtureRequest, tmp_path: Path, azure_server: Emulator
) -> None:
    public = new_place("azure", request, tmp_path, public="container")
    uri, tables, _ = seed_import(public, tmp_path, {"a": 400, "b": 200})
    https = uri.replace(f"az://{public.bucket}",
                        f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{public.bucket}")
    vs = VecStore(str(tmp_path / "store"),
                  source_options={"azure": plain_anon_options(azure_server)})
    source = vs.source_store(https, None)
    assert source.storage_options.get("anon") is True
    assert "AccountKey" not in source.storage_options["connection_string"]
    for name, u in (("az", uri), ("https", https)):
        vs.create_index(name=name, dimension=8, metric="cosine", cloud="gcp")
        index = vs.Index(name)
        job = index.wait_for_import(index.start_import(uri=u).id, timeout=IMPORT_TIMEOUT)
        assert job.integration_id is None
        assert_imported(index, job, tables, metric="cosine", queries=1)


@pytest.mark.parametrize("form", ["az", "https"])
def test_private_container_without_integration_fails_the_job(
    dask_runner: Any, private: Place, tmp_path: Path, azure_server: Emulator, form: str
) -> None:
    uri, _, _ = seed_import(private, tmp_path, {"a": 100}, files=1)
    if form == "https":
        uri = uri.replace(f"az://{private.bucket}",
                          f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{private.bucket}")
    root = tmp_path / "store"
    vs = VecStore(str(root), source_options={"azure": plain_anon_options(azure_server)})
    vs.create_index(name="docs", dimension=8, cloud="azure")
    index = vs.Index("docs")
    op = index.start_import(uri=uri)  # a directory problem, not an argument error
    job = index.wait_for_import(op.id, timeout=IMPORT_TIMEOUT)
    assert job.status == "Failed"
    assert job.error is not None
    assert job.error.startswith(f'Access denied to "{uri}" while trying to list')
    assert "anonymous access was refused: the location is private, so configure a storage " \
           "integration with credentials for it" in job.error
    assert index.describe_index_stats().total_vector_count == 0
    assert leftovers(root, "docs", op.id) == NOTHING_LEFT


# ------------------------------------------------------------- secrets
def _bad_records(n: int) -> pa.Table:
    """``n`` records of which two are rejected (NaN, bad metadata) and one is a
    duplicate: the import writes reject reports."""
    ids = [f"r{i}" for i in range(n)]
    x = vectors(n, 8, seed=11)
    x[5, 2] = np.nan
    x[9] = x[8]
    meta = [json.dumps({"i": i}) for i in range(n)]
    meta[7] = "{not json"
    return dense_table(ids, x, meta)


def _texts_of_store(vs: VecStore) -> list[tuple[str, bytes]]:
    """Every file of the store, raw, plus the decoded rows of Parquet files."""
    out = []
    for key in store_files(vs.store):
        data = vs.store.read_bytes(key)
        out.append((key, data))
        if key.endswith(".parquet"):
            table = pq.read_table(pa.BufferReader(data))
            out.append((f"{key} (rows)", json.dumps(table.to_pylist(), default=str).encode()))
    return out


def _three_imports(
    home: Place, integrations: dict[str, Any], uri_s3: str, uri_az: str
) -> tuple[VecStore, Any, tuple[Any, Any, Any]]:
    """S3 with rejects (Completed), private Azure with the key (Completed),
    private Azure with a wrong key (Failed)."""
    vs = VecStore(home.uri("vs"), storage_options=home.options, integrations=integrations)
    vs.create_index(name="docs", dimension=8, metric="euclidean", cloud="aws")
    index = vs.Index("docs")
    ok = index.wait_for_import(
        index.start_import(uri=uri_s3, integration_id="s3-leak").id,
        timeout=IMPORT_TIMEOUT,
    )
    assert (ok.status, ok.records_imported) == ("Completed", 297), ok
    assert ok.records_skipped == {"duplicate_values": 1, "metadata_parse": 1, "non_finite": 1}
    ok_az = index.wait_for_import(
        index.start_import(uri=uri_az, integration_id="az-key").id, timeout=IMPORT_TIMEOUT
    )
    assert (ok_az.status, ok_az.records_imported) == ("Completed", 200), ok_az
    assert {ns: s.vector_count for ns, s in index.describe_index_stats().namespaces.items()} == {
        "a": 297, "b": 200}
    failed = index.wait_for_import(
        index.start_import(uri=uri_az.replace("/import", "/import2"),
                           integration_id="az-wrong").id,
        timeout=IMPORT_TIMEOUT,
    )
    assert failed.status == "Failed"
    assert failed.error is not None and "Access denied" in failed.error
    assert "check the storage integration" in failed.error

    return vs, index, (ok, ok_az, failed)


def test_credentials_never_leak(
    dask_runner: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    s3_server: Emulator,
    azure_server: Emulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Store on Azurite (the real account key), sources on S3 (an integration
    with a fake secret: moto accepts any) and on a private container (the
    real key, then a wrong key): nothing anywhere shows a secret."""
    home = new_place("azure", request, tmp_path)
    s3 = new_place("s3", request, tmp_path, options=plain_options(
        s3_server, key=S3_KEY_ID, secret=S3_SECRET))
    local = tmp_path / "src"
    write(local / "a" / "part-0.parquet", _bad_records(300))
    upload_dir(local, s3.store("import"))
    private = new_place("azure", request, tmp_path)
    uri_az, _, _ = seed_import(private, tmp_path, {"b": 200}, files=1)
    wrong = {**private.options,
             "connection_string": azurite_connection_string(azure_server.endpoint,
                                                            key=WRONG_AZURE_KEY)}
    integrations = {"s3-leak": s3.options, "az-key": private.options, "az-wrong": wrong}
    assert any(AZURITE_KEY in str(v) for v in home.options.values())

    caplog.set_level(logging.DEBUG)
    worker_lines: list[str] = []
    with worker_logs(dask_runner.client, worker_lines):
        vs, index, jobs = _three_imports(home, integrations, s3.uri("import"), uri_az)
    ok, ok_az, failed = jobs
    assert any(line.startswith(("botocore", "s3fs")) for line in worker_lines)
    assert any(line.startswith(("adlfs", "azure")) for line in worker_lines)
    debug_logs = [*worker_lines, *caplog.text.splitlines()]
    debug_logs.extend(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)

    shown: list[tuple[str, str | bytes]] = []
    # job records as stored, and as the API returns them
    for job in (ok, ok_az, failed):
        shown.append((f"job {job.id}", job.model_dump_json()))
        shown.append((f"raw job {job.id}", vs.store.read_bytes(layout.job_key("docs", job.id))))
    shown.extend(_texts_of_store(vs))
    assert any("rejects" in k for k, _ in shown)
    # errors: a refused source read directly, an unknown id, a bad config
    source = vs.source_store(uri_az, "az-wrong")
    with pytest.raises(StorageError) as denied:
        source.read_bytes("b/part-000.parquet")
    with pytest.raises(InvalidArgumentError) as unknown:
        index.start_import(uri=uri_az, integration_id="typo")
    for exc in (denied.value, unknown.value):
        shown.append(("error", f"{exc} {exc!r} {exc.context!r}"))
        shown.append(("error pickle", pickle.dumps(exc)))
    # reprs
    shown.extend(
        (f"repr {type(obj).__name__}", repr(obj) + str(obj))
        for obj in (vs, index, vs.store, vs.integrations, source, index.reader, dask_runner)
    )

    leaks = [(where, _leaks(text)) for where, text in shown if _leaks(text)]
    assert leaks == []
    assert debug_logs, "no log records were captured"
    joined = "\n".join(debug_logs)
    assert "vecstore" in joined  # the import's own DEBUG/INFO lines were captured
    assert _leaks(joined) == [], [line for line in debug_logs if _leaks(line)][:3]


def test_cli_with_config_file_prints_no_secret(
    dask_runner: Any,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    s3_server: Emulator,
    private: Place,
) -> None:
    """`vecstore --config cfg.json import ... --wait --json` on the shared
    cluster: Completed, exit 0; a refused source: Failed, exit 1; neither
    output shows the secret."""
    s3 = new_place("s3", request, tmp_path, options=plain_options(
        s3_server, key=S3_KEY_ID, secret=S3_SECRET))
    uri, _, _ = seed_import(s3, tmp_path, {"a": 300}, files=1)
    cfg = tmp_path / "cfg.json"
    az_uri, _, _ = seed_import(private, tmp_path, {"b": 100}, files=1)
    assert private.server is not None
    wrong = {"account_name": AZURITE_ACCOUNT, "connection_string": azurite_connection_string(
        private.server.endpoint, key=WRONG_AZURE_KEY)}
    cfg.write_text(json.dumps({"integrations": {"s3-leak": s3.options, "az-wrong": wrong}}))
    store = str(tmp_path / "store")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECSTORE_")}
    env["PYTHONWARNINGS"] = "ignore"
    scheduler = dask_runner.client.scheduler.address

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "vecstore"), "--config", str(cfg), "--store", store,
             "--scheduler", scheduler, *args],
            capture_output=True, text=True, timeout=180, env=env, check=False,
        )

    created = cli("indexes", "create", "docs", "--dimension", "8")
    assert created.returncode == 0, created.stderr
    ok = cli("import", uri, "--index", "docs", "--integration-id", "s3-leak", "--wait", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["records_imported"] == 300
    bad = cli("import", az_uri, "--index", "docs", "--integration-id", "az-wrong",
              "--wait", "--json")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert json.loads(bad.stdout)["status"] == "Failed"
    assert "Access denied" in json.loads(bad.stdout)["error"]
    listing = cli("imports", "list", "--index", "docs", "--all", "--json")
    for r in (created, ok, bad, listing):
        assert _leaks(r.stdout + r.stderr) == [], r.stdout + r.stderr


def test_recovered_import_reads_with_the_integration(
    dask_runner: Any, private: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import whose process died before it ran (a stale Pending record
    naming an integration) is resumed by recover_imports() of another
    VecStore, with that VecStore's credentials for the integration id."""
    from datetime import UTC, datetime, timedelta

    from vecstore.jobs import JobStore, new_job_id
    from vecstore.schemas import ImportJob

    uri, tables, _ = seed_import(private, tmp_path, {"a": 300}, files=1)
    vs = VecStore(str(tmp_path / "store"), integrations={"az-private": private.options})
    vs.create_index(name="docs", dimension=8, metric="euclidean", cloud="azure")
    index = vs.Index("docs")
    job_id = new_job_id()
    JobStore(index.store, "docs").create(ImportJob(
        id=job_id, index="docs", uri=uri, integration_id="az-private",
        created_at=datetime.now(UTC) - timedelta(seconds=10),
    ))
    monkeypatch.setenv("VECSTORE_STALE_SECONDS", "2")
    assert index.recover_imports() == [job_id]
    job = index.wait_for_import(job_id, timeout=IMPORT_TIMEOUT)
    assert job.attempt == 2
    assert_imported(index, job, tables, metric="euclidean", queries=1)
