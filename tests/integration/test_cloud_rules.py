"""The cloud rules of Pinecone's import guide, as argument errors of
``start_import`` (no job record, no runner): the whole index-cloud x
source matrix, S3 Express One Zone buckets in every spelling, URIs that
name no bucket. No emulator and no Dask: a stand-in runner records what
would have run. (tests/unit/test_api.py checks the basic refusals; this
covers the accepted cells and the variants.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vecstore import VecStore, layout
from vecstore.errors import InvalidArgumentError
from vecstore.schemas import ImportJob, IndexSpec
from vecstore.storage import Store

SOURCES = {
    "s3": "s3://bucket/import",
    "s3a": "s3a://bucket/import",
    "gs": "gs://bucket/import",
    "gcs": "gcs://bucket/import",
    "az": "az://container/import",
    "abfs": "abfs://container/import",
    "https": "https://acct.blob.core.windows.net/container/import",
}
KIND = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
        "https": "azure"}
REFUSED = {("gcp", "s3"), ("gcp", "s3a"), ("azure", "s3"), ("azure", "s3a")}
# one credential set per kind (never used: nothing is read here)
INTEGRATIONS = {
    "s3": {"key": "AKIAEXAMPLE", "secret": "s3cr3t-value"},
    "gcs": {"token": "anon", "project": "p"},
    "azure": {"account_name": "acct", "account_key": "a2V5LWZvci1hLXRlc3Q="},
}


class Recorder:
    def __init__(self) -> None:
        self.submitted: list[tuple[IndexSpec, ImportJob, Store]] = []

    def submit(self, store: Store, spec: IndexSpec, job: ImportJob, source: Store) -> None:
        self.submitted.append((spec, job, source))

    def recover(self, store: Store, index: str, source_for: Any = None) -> list[str]:
        return []

    def close(self, *, abandon: bool = False) -> None:
        pass


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    r = Recorder()
    monkeypatch.setattr("vecstore.api.get_runner", lambda *a, **k: r)
    for var in ("VECSTORE_CONFIG", "VECSTORE_INTEGRATIONS"):
        monkeypatch.delenv(var, raising=False)
    return r


@pytest.fixture
def vs(tmp_path: Path, runner: Recorder) -> VecStore:
    vs = VecStore(str(tmp_path / "store"), integrations=INTEGRATIONS)
    for cloud in ("aws", "gcp", "azure"):
        vs.create_index(name=cloud, dimension=4, cloud=cloud)
    return vs


def _jobs(vs: VecStore, index: str) -> list[str]:
    return [k for k, _ in vs.store.walk_files(layout.imports_prefix(index))]


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_cloud_matrix(vs: VecStore, runner: Recorder, cloud: str, source: str) -> None:
    """aws imports from S3, GCS and Azure; gcp and azure from GCS and Azure."""
    index = vs.Index(cloud)
    uri = SOURCES[source]
    kind = KIND[source]
    if (cloud, source) in REFUSED:
        with pytest.raises(InvalidArgumentError) as info:
            index.start_import(uri=uri, integration_id=kind)
        hosted = "GCP" if cloud == "gcp" else "Azure"
        assert str(info.value) == (
            f'Cannot import from Amazon S3 ("{uri}") into index "{cloud}" hosted on {hosted}: '
            "an index on GCP or Azure imports only from Google Cloud Storage or Azure Blob Storage"
        )
        assert runner.submitted == [] and _jobs(vs, cloud) == []
        return
    op = index.start_import(uri=uri, integration_id=kind)
    (spec, job, src), = runner.submitted
    assert (spec.cloud, job.id, job.uri, job.status) == (cloud, op.id, uri, "Pending")
    assert (src.kind, src.uri, src.storage_options) == (kind, uri, INTEGRATIONS[kind])
    if source == "https":  # Pinecone's Azure form reaches adlfs as az:// + the account
        assert src.root == "container/import" and src.fs.account_name == "acct"
    assert _jobs(vs, cloud) == [layout.job_key(cloud, op.id)]


@pytest.mark.parametrize(
    "uri",
    [
        "s3://my-bucket--usw2-az1--x-s3/import",
        "s3://my-bucket--usw2-az1--x-s3",
        "s3://my-bucket--usw2-az1--x-s3/",
        "s3a://data--use1-az4--x-s3/a/b/",
    ],
)
@pytest.mark.parametrize("integration", [None, "s3"])
def test_s3_express_one_zone_is_refused(
    vs: VecStore, runner: Recorder, uri: str, integration: str | None
) -> None:
    bucket = uri.split("://", 1)[1].split("/", 1)[0]
    with pytest.raises(InvalidArgumentError) as info:
        vs.Index("aws").start_import(uri=uri, integration_id=integration)
    assert str(info.value) == (
        f'Cannot import from S3 Express One Zone bucket "{bucket}": directory buckets (names '
        "ending in --x-s3) are not supported; use a general purpose bucket"
    )
    assert runner.submitted == [] and _jobs(vs, "aws") == []


@pytest.mark.parametrize(
    "uri", ["s3://my-bucket--x-s3-archive/import", "s3://x-s3/import", "gs://b--x-s3/import"]
)
def test_names_that_only_look_like_express_are_fine(
    vs: VecStore, runner: Recorder, uri: str
) -> None:
    vs.Index("aws").start_import(uri=uri)
    assert len(runner.submitted) == 1


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("s3://", 'Import uri "s3://" names no bucket: expected s3://BUCKET/IMPORT_DIR'),
        ("s3:///import", 'Import uri "s3:///import" names no bucket: expected s3://BUCKET/'),
        ("gs://", 'Import uri "gs://" names no bucket: expected gs://BUCKET/IMPORT_DIR'),
        ("az:///x", 'Import uri "az:///x" names no container: expected az://CONTAINER/'),
        ("https://acct.blob.core.windows.net/", "names no container"),
    ],
)
def test_uri_without_bucket_is_an_argument_error(
    vs: VecStore, runner: Recorder, uri: str, message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        vs.Index("aws").start_import(uri=uri)
    assert message in str(info.value)
    assert runner.submitted == [] and _jobs(vs, "aws") == []


def test_rules_hold_for_an_index_opened_elsewhere(tmp_path: Path, runner: Recorder) -> None:
    """The cloud comes from the stored index.json, not from the VecStore
    object that created it."""
    VecStore(str(tmp_path / "store")).create_index(name="g", dimension=4, cloud="gcp")
    index: Any = VecStore(str(tmp_path / "store")).Index("g")
    with pytest.raises(InvalidArgumentError, match="hosted on GCP"):
        index.start_import(uri="s3://bucket/import")
    index.start_import(uri="gs://bucket/import")
    assert len(runner.submitted) == 1
