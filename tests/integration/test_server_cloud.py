"""`vecstore serve --config cfg.json` imports from the clouds (issue 13,
items 2 and 4), over the official pinecone SDK: s3:// (moto), gs:// (the GCS
emulator) and Azure's https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR
form (a private Azurite container, the account key in the integration) each
complete and answer queries; a wrong or keyless integration on the private
container ends the job Failed with an access error (not an HTTP 500). With
API keys on and real secrets in the integrations, neither the API keys'
secrets nor the integration secrets show in the server's DEBUG log, a
response body, a job record, any file of the store or `api-keys list`.

Remote store and compute: `vecstore serve --store s3://...` (moto; the
credentials in the environment, not on the command line) keeps an index
across a restart, and `vecstore serve --scheduler tcp://...` runs its
imports on that external Dask cluster."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fsspec
import httpx
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cloudgen import Place, matrix_of, new_place, plain_options, seed_import
from datagen import free_port, stop_process, wait_for_port, wait_until
from pinecone import Pinecone, ServerlessSpec
from servers import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    S3_REGION,
    Bucket,
    azurite_connection_string,
)
from servers import S3_KEY as MOTO_KEY
from servers import S3_SECRET as MOTO_SECRET
from serverutil import (
    Served,
    create_key,
    run_cli,
    serve,
    server_env,
    wait_import,
    write_dense_import,
)

pytestmark = pytest.mark.dask

DIM = 8
SPEC = ServerlessSpec(cloud="aws", region="us-east-1")
S3_KEY_ID = "AKIAVECSTORESRVLEAK0"
S3_SECRET = "vecstoreSRV/leak+S3secret0123456789abcdefQ"
WRONG_AZURE_KEY = "dmVjc3RvcmUtU1JWLXdyb25nLWF6dXJlLWFjY291bnQta2V5IQ=="


def _config(tmp_path: Path, integrations: dict[str, Any]) -> Path:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"integrations": integrations}))
    return cfg


def _https(place: Place, uri: str) -> str:
    """Pinecone's Azure form of an az:// URI of ``place``."""
    return uri.replace(f"az://{place.bucket}",
                       f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{place.bucket}")


def _wrong_key(place: Place) -> dict[str, Any]:
    assert place.server is not None
    return {**place.options, "connection_string": azurite_connection_string(
        place.server.endpoint, key=WRONG_AZURE_KEY)}


def _assert_queryable(idx: Any, tables: dict[str, pa.Table]) -> None:
    """Counts per namespace, and a stored vector finds itself first."""
    stats = idx.describe_index_stats()
    assert {ns: s.vector_count for ns, s in stats.namespaces.items()} == {
        ns: t.num_rows for ns, t in tables.items()}
    for ns, t in tables.items():
        x = matrix_of(t)
        for row in (0, t.num_rows - 1):
            res = idx.query(vector=x[row].tolist(), top_k=3, namespace=ns, include_metadata=True)
            assert res.matches[0].id == t.column("id")[row].as_py()
            assert res.matches[0].metadata["i"] == row


def _index(s: Served, name: str, api_key: str = "pclocal") -> Any:
    pc = s.client(api_key)
    m = pc.create_index(name=name, dimension=DIM, metric="euclidean", spec=SPEC)
    return pc.Index(host=m.host)


# ------------------------------------------------------- item 2: each cloud
@pytest.mark.parametrize("kind", [
    pytest.param("s3", marks=pytest.mark.s3),
    pytest.param("gcs", marks=[pytest.mark.gcs, pytest.mark.slow]),  # CI: make test-slow
    pytest.param("azure-https", marks=[pytest.mark.azure, pytest.mark.slow]),
])
def test_import_from_cloud_through_server(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """The source's credentials come only from the --config integration (the
    Azure container is private); the import completes and is queryable."""
    place = new_place("azure" if kind == "azure-https" else kind, request, tmp_path)
    uri, tables, _ = seed_import(place, tmp_path, {"a": 300, "b": 120}, files=2)
    if kind == "azure-https":
        uri = _https(place, uri)
    cfg = _config(tmp_path, {"src": place.options})
    with serve(tmp_path / "store", config=cfg, log_level="info") as s:
        idx = _index(s, "docs")
        op = idx.start_import(uri=uri, integration_id="src")
        job = wait_import(idx, op.id)
        assert (job.status, job.error) == ("Completed", None), job
        assert job.records_imported == 420 and job.percent_complete == 100.0
        assert job.uri == uri
        _assert_queryable(idx, tables)


@pytest.mark.azure
def test_private_azure_with_wrong_or_keyless_integration_fails(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A wrong account key, or an integration naming the endpoint but no key:
    start_import is accepted (200), the job ends Failed with an access error,
    nothing is imported and no request answers 500."""
    place = new_place("azure", request, tmp_path)
    uri, _, _ = seed_import(place, tmp_path, {"a": 50}, files=1)
    uri = _https(place, uri)
    assert place.server is not None
    keyless = {"account_name": AZURITE_ACCOUNT,
               "connection_string": f"BlobEndpoint={place.server.endpoint};"}
    cfg = _config(tmp_path, {"az-wrong": _wrong_key(place), "az-keyless": keyless})
    with serve(tmp_path / "store", config=cfg, log_level="info") as s:
        idx = _index(s, "docs")
        for integration in ("az-wrong", "az-keyless"):
            r = httpx.post(f"{s.url}/idx/docs/bulk/imports", timeout=60,
                           json={"uri": uri, "integrationId": integration})
            assert r.status_code == 200, r.text
            job = wait_import(idx, r.json()["id"])
            assert job.status == "Failed", job
            assert job.error and job.error.startswith(f'Access denied to "{uri}"'), job.error
            assert "500" not in job.error and "Traceback" not in job.error
            raw = httpx.get(f"{s.url}/idx/docs/bulk/imports/{job.id}", timeout=30)
            assert raw.status_code == 200 and raw.json()["status"] == "Failed"
        assert idx.describe_index_stats().total_vector_count == 0
        assert "Traceback" not in s.log_text()


# ------------------------------------------------------------ item 4: leaks
def _leaks(secrets: dict[str, str], text: str | bytes) -> list[str]:
    raw = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [name for name, s in secrets.items()
            if any(form.encode() in raw for form in {s, quote(s, safe=""), quote(s)})]


def _store_texts(store: Path) -> list[tuple[str, bytes]]:
    """Every file of the store, raw, plus the decoded rows of Parquet files."""
    out = []
    for p in sorted(store.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        out.append((str(p.relative_to(store)), data))
        if p.suffix == ".parquet":
            rows = pq.read_table(pa.BufferReader(data)).to_pylist()
            out.append((f"{p.name} (rows)", json.dumps(rows, default=str).encode()))
    return out


@pytest.mark.slow  # long: CI runs it (make test-slow)
@pytest.mark.s3
@pytest.mark.azure
def test_no_secret_leaks_through_server(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    s3 = new_place("s3", request, tmp_path, options=plain_options(
        request.getfixturevalue("s3_server"), key=S3_KEY_ID, secret=S3_SECRET))
    s3_uri, s3_tables, _ = seed_import(s3, tmp_path, {"a": 200}, files=1)
    private = new_place("azure", request, tmp_path)
    az_uri, az_tables, _ = seed_import(private, tmp_path, {"b": 100}, files=1, path="imp-az")
    az_uri = _https(private, az_uri)
    assert AZURITE_KEY in private.options["connection_string"]
    cfg = _config(tmp_path, {"s3-leak": s3.options, "az-key": private.options,
                             "az-wrong": _wrong_key(private)})
    store = tmp_path / "store"
    assert run_cli(store, "projects", "create", "leaky").returncode == 0
    rw = create_key(store, "leaky", "ReadWrite")
    ro = create_key(store, "leaky", "ReadOnly")
    secrets = {"s3": S3_SECRET, "azure": AZURITE_KEY, "azure-wrong": WRONG_AZURE_KEY,
               "rw": rw.split("_", 2)[2], "ro": ro.split("_", 2)[2]}

    bodies: list[tuple[str, str]] = []
    with serve(store, config=cfg, log_level="debug") as s:
        hdr = {"Api-Key": rw}

        def call(method: str, path: str, **kw: Any) -> httpx.Response:
            r = httpx.request(method, f"{s.url}{path}", headers=kw.pop("headers", hdr),
                              timeout=60, **kw)
            bodies.append((f"{method} {path} {r.status_code}", r.text + json.dumps(dict(r.headers))))
            assert r.status_code < 500, (path, r.text)
            return r

        idx = _index(s, "docs", rw)
        ok = []
        for uri, integration in ((s3_uri, "s3-leak"), (az_uri, "az-key")):
            op = idx.start_import(uri=uri, integration_id=integration)
            ok.append(wait_import(idx, op.id))
        assert [j.status for j in ok] == ["Completed", "Completed"], ok
        _assert_queryable(idx, {**s3_tables, **az_tables})
        r = call("POST", "/idx/docs/bulk/imports",
                 json={"uri": az_uri.replace("imp-az", "imp-az2"), "integrationId": "az-wrong"})
        failed = wait_import(idx, r.json()["id"])
        assert failed.status == "Failed" and "Access denied" in (failed.error or "")
        # the same flows over raw HTTP, so every body is seen: jobs, listing,
        # queries, stats, errors (unknown integration, bad key, read-only key)
        for job in (*ok, failed):
            call("GET", f"/idx/docs/bulk/imports/{job.id}")
        call("GET", "/idx/docs/bulk/imports")
        call("POST", "/idx/docs/query", json={"topK": 3, "namespace": "a", "vector": [0.1] * DIM,
                                              "includeMetadata": True, "includeValues": True})
        call("POST", "/idx/docs/describe_index_stats", json={})
        call("GET", "/indexes")
        call("GET", "/indexes/docs")
        call("POST", "/idx/docs/bulk/imports", json={"uri": s3_uri, "integrationId": "typo"})
        call("POST", "/idx/docs/bulk/imports", headers={"Api-Key": ro},
             json={"uri": s3_uri, "integrationId": "s3-leak"})
        call("GET", "/indexes", headers={"Api-Key": rw + "x"})
        call("GET", "/indexes", headers={})
        assert any(" 400" in w for w, _ in bodies) and any(" 401" in w for w, _ in bodies)
        assert any(" 403" in w for w, _ in bodies)
    log = s.log_text()
    assert "DEBUG vecstore.server: POST /idx/docs/bulk/imports 200" in log
    listing = run_cli(store, "api-keys", "list")
    assert listing.returncode == 0 and len(json.loads(listing.stdout)) == 2

    shown: list[tuple[str, str | bytes]] = [("server log", log),
                                           ("api-keys list", listing.stdout + listing.stderr)]
    shown += [(f"job {j.id}", str(j)) for j in (*ok, failed)]
    shown += bodies
    files = _store_texts(store)
    assert any(name.startswith("_auth") for name, _ in files)
    assert sum(name.endswith(".parquet") for name, _ in files) > 0
    shown += files
    leaks = [(where, _leaks(secrets, text)) for where, text in shown if _leaks(secrets, text)]
    assert leaks == []
    print(f"leak scan: {len(files)} store entries, {len(bodies)} response bodies, "
          f"{len(log.splitlines())} log lines, {len(secrets)} secrets: none found")


# ------------------------------------- remote store and external scheduler
@contextmanager
def _serve_cli(
    store: str, log: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[tuple[Any, subprocess.Popen[bytes]]]:
    """``vecstore --store STORE serve ARGS`` on a free port (serverutil.serve
    takes a local store and no other option); yields (SDK client, process)."""
    port = free_port()
    cmd = [sys.executable, "-m", "vecstore.cli", "--store", store, "serve", "--host",
           "127.0.0.1", "--port", str(port), "--log-level", "info", *args]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=server_env(env),
                                cwd=cwd)
        try:
            wait_for_port(port, [proc], timeout=60)
            yield Pinecone(api_key="pclocal", host=f"http://127.0.0.1:{port}"), proc
        finally:
            stop_process(proc, timeout=30)


def _import_checked(pc: Any, src: Path, tables: dict[str, pa.Table]) -> str:
    """Index "docs" created over ``pc``, ``src`` imported into it (Completed,
    every record) and queryable; the import's id."""
    m = pc.create_index(name="docs", dimension=DIM, metric="euclidean", spec=SPEC)
    idx = pc.Index(host=m.host)
    op = idx.start_import(uri=str(src))
    job = wait_import(idx, op.id)
    n = sum(t.num_rows for t in tables.values())
    assert (job.status, job.error, job.records_imported) == ("Completed", None, n), job
    _assert_queryable(idx, tables)
    return str(op.id)


def _reads(pc: Any, tables: dict[str, pa.Table]) -> dict[str, Any]:
    """What a client reads of index "docs": its model, stats, namespaces,
    imports, queries (ids, scores, metadata) and fetched vectors."""
    model = pc.describe_index("docs")
    idx = pc.Index(host=model.host)
    out: dict[str, Any] = {
        "indexes": sorted(i.name for i in pc.list_indexes()),
        "model": (model.dimension, model.metric, model.vector_type),
        "stats": {ns: s.vector_count for ns, s in idx.describe_index_stats().namespaces.items()},
        "namespaces": {n.name: n.record_count for page in idx.list_namespaces()
                       for n in page.namespaces},
        "imports": [(j.id, j.status, j.records_imported) for j in idx.list_imports()],
    }
    for ns, t in tables.items():
        x, ids = matrix_of(t), t.column("id").to_pylist()
        for row in (0, t.num_rows // 2, t.num_rows - 1):
            res = idx.query(vector=x[row].tolist(), top_k=5, namespace=ns, include_metadata=True)
            out[f"query {ns} {row}"] = [(m.id, round(m.score, 4), m.metadata) for m in res.matches]
        got = idx.fetch(ids=ids[:3], namespace=ns).vectors
        out[f"fetch {ns}"] = {i: [round(v, 5) for v in got[i].values] for i in sorted(got)}
    return out


@pytest.mark.slow  # ~13 s: two servers, the first import starts a Dask cluster
@pytest.mark.s3
def test_serve_on_an_s3_store_survives_a_restart(
    s3_bucket: Bucket, tmp_path: Path
) -> None:
    """``vecstore --store s3://BUCKET/root serve`` (moto; credentials and
    endpoint in the AWS_* environment, none on the command line): create an
    index, import, query; SIGTERM (exit 0); a new server on the same store
    (with an empty query cache) reads the same index, namespaces, import,
    query results and vectors, all from the bucket."""
    store = s3_bucket.uri("root")
    tables = write_dense_import(tmp_path / "src", {"a": 300, "b": 120}, DIM)
    env = {"AWS_ACCESS_KEY_ID": MOTO_KEY, "AWS_SECRET_ACCESS_KEY": MOTO_SECRET,
           "AWS_ENDPOINT_URL_S3": s3_bucket.server.endpoint, "AWS_DEFAULT_REGION": S3_REGION}
    log, cwd = tmp_path / "server.log", tmp_path / "cwd"
    cwd.mkdir()
    with _serve_cli(store, log, env={**env, "VECSTORE_QUERY_CACHE_DIR": str(tmp_path / "c1")},
                    cwd=cwd) as (pc, proc):
        assert not any(MOTO_SECRET in a or "storage-option" in a for a in map(str, proc.args))
        import_id = _import_checked(pc, tmp_path / "src", tables)
        before = _reads(pc, tables)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert before["stats"] == before["namespaces"] == {"a": 300, "b": 120}
    assert before["imports"] == [(import_id, "Completed", 420)]
    # the index lives in the bucket; nothing was written where the server ran
    keys = fsspec.filesystem("s3", **s3_bucket.options()).find(f"{s3_bucket.name}/root")
    assert any(k.endswith("/index.json") for k in keys), keys
    assert any(k.endswith(".parquet") for k in keys), keys
    assert list(cwd.iterdir()) == []
    with _serve_cli(store, log, env={**env, "VECSTORE_QUERY_CACHE_DIR": str(tmp_path / "c2")},
                    cwd=cwd) as (pc, proc):
        after = _reads(pc, tables)
        _assert_queryable(pc.Index(host=pc.describe_index("docs").host), tables)
    assert after == before
    assert list(cwd.iterdir()) == []
    assert "Traceback" not in log.read_text(errors="replace")


def _scheduler_state(address: str) -> tuple[dict[str, int], set[str]]:
    """The tasks the scheduler has run so far, by prefix, and its clients
    other than this one, its workers' own and ``fire-and-forget``."""
    from distributed import Client

    def state(dask_scheduler: Any) -> tuple[dict[str, int], list[str]]:
        prefixes = {name: sum(p.state_counts.values())
                    for name, p in dask_scheduler.task_prefixes.items()}
        return prefixes, list(dask_scheduler.clients)

    with Client(address, set_as_default=False, timeout=30) as c:
        prefixes, clients = c.run_on_scheduler(state)
        others = {i for i in clients if i not in (c.id, "fire-and-forget")
                  and not i.startswith("Client-worker-")}
    return prefixes, others


@pytest.mark.slow  # ~15 s with the scheduler fixture
def test_serve_runs_imports_on_an_external_scheduler(
    external_scheduler: str, tmp_path: Path
) -> None:
    """``vecstore serve --scheduler tcp://...`` (a `dask scheduler` and two
    `dask worker` processes): start_import over the SDK completes and is
    queryable; its tasks ran on that scheduler (its counts of import tasks
    grow; the server is its one client while it runs, gone after) and the
    server started no cluster of its own (no child process)."""
    tables = write_dense_import(tmp_path / "src", {"a": 3000, "b": 800}, DIM)
    tasks_before, clients_before = _scheduler_state(external_scheduler)
    with _serve_cli(str(tmp_path / "store"), tmp_path / "server.log",
                    "--scheduler", external_scheduler) as (pc, proc):
        _import_checked(pc, tmp_path / "src", tables)
        tasks_after, clients = _scheduler_state(external_scheduler)
        assert len(clients - clients_before) == 1, clients  # the server's import runner
        assert psutil.Process(proc.pid).children(recursive=True) == []
    grown = {k: n - tasks_before.get(k, 0) for k, n in tasks_after.items()
             if n > tasks_before.get(k, 0)}
    print("tasks run on the external scheduler:", grown)
    assert grown.keys() & {"fold", "pack", "inspect_many", "scan_unit"}, grown
    wait_until(lambda: _scheduler_state(external_scheduler)[1] == clients_before, timeout=10,
               what="the server's client to leave the scheduler")
