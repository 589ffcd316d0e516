"""What each server does with conditional writes, and what the Store makes of it.

moto honours ``If-None-Match: *`` and Azurite ``If-None-Match: *`` (adlfs's
``overwrite=False``); gcp-storage-emulator ignores ``ifGenerationMatch=0`` and
overwrites. The Store probes a custom endpoint once and, where conditional
writes are ignored, serialises ``put_if_absent`` with a process-wide lock.
If an emulator release starts honouring preconditions, the raw-server test
below fails and this table needs updating.
"""

from __future__ import annotations

import fsspec
import pytest
from servers import Bucket

from vecstore import storage
from vecstore.errors import AlreadyExistsError

SUPPORT = [
    pytest.param("s3", True, marks=pytest.mark.s3),
    pytest.param("gcs", False, marks=pytest.mark.gcs),
    pytest.param("azure", True, marks=pytest.mark.azure),
]


@pytest.fixture
def bucket(request: pytest.FixtureRequest) -> Bucket:
    fixture = {"s3": "s3_bucket", "gcs": "gcs_bucket", "azure": "azure_container"}[request.param]
    found: Bucket = request.getfixturevalue(fixture)
    return found


@pytest.mark.parametrize(("bucket", "honours"), SUPPORT, indirect=["bucket"])
def test_raw_server_conditional_write_support(bucket: Bucket, honours: bool) -> None:
    fs = fsspec.filesystem(bucket.server.scheme, **bucket.options())
    path = f"{bucket.name}/raw/key"
    fs.pipe_file(path, b"first", mode="create")
    if honours:
        with pytest.raises(FileExistsError):
            fs.pipe_file(path, b"second", mode="create")
        assert fs.cat_file(path) == b"first"
    else:
        fs.pipe_file(path, b"second", mode="create")  # silently overwrites
        assert fs.cat_file(path) == b"second"


@pytest.mark.parametrize(("bucket", "honours"), SUPPORT, indirect=["bucket"])
def test_store_probes_the_server_and_stays_correct(bucket: Bucket, honours: bool) -> None:
    store = bucket.store()
    store.put_if_absent("m/1", b"first")
    with pytest.raises(AlreadyExistsError):
        store.put_if_absent("m/1", b"second")
    assert store.read_bytes("m/1") == b"first"
    assert storage._CONDITIONAL_SUPPORT[(store.kind, bucket.server.endpoint)] is honours
    assert store.walk_files() == [("m/1", 5)]  # the probe object is gone
