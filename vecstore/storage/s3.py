"""Amazon S3 and S3-compatible stores (s3fs, the ``s3`` extra).

``put_if_absent``: ``If-None-Match: *``. The Store is the retry layer, so
botocore gets ``retries={"total_max_attempts": 1}`` and s3fs's own retry loop
one try, unless the caller configured retries.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from vecstore.errors import InvalidArgumentError
from vecstore.settings import external
from vecstore.storage.objectstore import PUT_ID, ObjectStore


class S3Store(ObjectStore):
    name: ClassVar[str] = "s3"
    schemes: ClassVar[tuple[str, ...]] = ("s3", "s3a")
    extra: ClassVar[str | None] = "s3"
    has_buckets: ClassVar[bool] = True

    @classmethod
    def anonymous_options(cls, base: dict[str, Any] | None = None) -> dict[str, Any]:
        opts = dict(base or {})
        opts.setdefault("anon", True)
        return opts

    @classmethod
    def check_import_source(cls, uri: str, cloud: str, index: str) -> None:
        super().check_import_source(uri, cloud, index)
        if cloud in ("gcp", "azure"):
            raise InvalidArgumentError(
                f'Cannot import from Amazon S3 ("{uri}") into index "{index}" hosted on '
                f"{cloud.upper() if cloud == 'gcp' else 'Azure'}: an index on GCP or "
                "Azure imports only from Google Cloud Storage or Azure Blob Storage"
            )
        bucket = uri.split("://", 1)[1].split("/", 1)[0]
        if bucket.endswith("--x-s3"):
            raise InvalidArgumentError(
                f'Cannot import from S3 Express One Zone bucket "{bucket}": directory buckets '
                "(names ending in --x-s3) are not supported; use a general purpose bucket"
            )

    @classmethod
    def endpoint(cls, options: dict[str, Any]) -> str | None:
        client_kwargs = options.get("client_kwargs") or {}
        ep = (
            options.get("endpoint_url")
            or client_kwargs.get("endpoint_url")
            or external("AWS_ENDPOINT_URL_S3")
            or external("AWS_ENDPOINT_URL")
        )
        return str(ep) if ep else None

    @classmethod
    def backend_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        opts.setdefault("use_listings_cache", False)
        config = dict(opts.get("config_kwargs") or {})
        config.setdefault("retries", {"total_max_attempts": 1, "mode": "standard"})
        opts["config_kwargs"] = config
        return opts

    def _tune(self, options: dict[str, Any]) -> None:
        if "retries" not in (options.get("config_kwargs") or {}):
            # s3fs retries dropped connections 5 times on its own; the Store
            # retries them (the instance is the Store's own: the options it
            # adds are part of fsspec's instance-cache key).
            self.fs.retries = 1
        self._cat_kwargs = _whole_object_kwargs(self.fs)

    def _create(self, path: str, data: bytes, put_id: str) -> None:
        self.fs.pipe_file(path, data, mode="create", Metadata={PUT_ID: put_id})

    def _metadata(self, path: str) -> dict[str, Any]:
        meta: dict[str, Any] = self.fs.metadata(path, refresh=True)
        return meta


def _whole_object_kwargs(fs: Any) -> dict[str, Any]:
    """``cat_file`` options for reading a whole object in one GET. Recent
    s3fs sends a HEAD first, to decide whether to download a large object in
    concurrent parts: a round trip more for every manifest, job record,
    centroid and segment file read; ``max_concurrency=1`` skips it."""
    try:
        params = inspect.signature(fs._cat_file).parameters
    except (AttributeError, TypeError, ValueError):  # pragma: no cover - other s3fs
        return {}
    return {"max_concurrency": 1} if "max_concurrency" in params else {}
