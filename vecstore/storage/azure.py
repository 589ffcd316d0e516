"""Azure Blob Storage (adlfs, the ``azure`` extra): ``az://``, ``abfs://``
and Pinecone's form ``https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR``,
translated to ``az://CONTAINER/DIR`` with ``account_name=ACCOUNT`` (the
caller's other options, e.g. a ``connection_string``, are kept).

``put_if_absent``: ``If-None-Match: *``, with the put id in the blob's
metadata. The Azure SDK's retry policy (15 s, 18 s, 24 s backoffs by default)
is turned off: the Store retries, on its schedule.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from vecstore.errors import InvalidArgumentError
from vecstore.settings import external
from vecstore.storage.objectstore import PUT_ID, ObjectStore

_AZURE_HTTPS = re.compile(
    r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/(?P<rest>[^?#]*)$"
)


class AzureStore(ObjectStore):
    name: ClassVar[str] = "azure"
    schemes: ClassVar[tuple[str, ...]] = ("az", "abfs", "abfss")
    extra: ClassVar[str | None] = "azure"
    has_buckets: ClassVar[bool] = True
    bucket_word: ClassVar[str] = "container"

    @classmethod
    def claims(cls, uri: str) -> bool:
        return super().claims(uri) or _AZURE_HTTPS.match(uri) is not None

    @classmethod
    def translate(cls, uri: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        opts = dict(options)
        m = _AZURE_HTTPS.match(uri)
        if not m:
            return uri, opts
        opts.setdefault("account_name", m.group("account"))
        rest = m.group("rest").strip("/")
        if not rest:
            raise InvalidArgumentError(
                f'Azure URI "{uri}" names no container: expected '
                "https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR",
                uri=uri,
            )
        return f"az://{rest}", opts

    @classmethod
    def anonymous_options(cls, base: dict[str, Any] | None = None) -> dict[str, Any]:
        opts = dict(base or {})
        opts.setdefault("anon", True)
        return opts

    @classmethod
    def endpoint(cls, options: dict[str, Any]) -> str | None:
        conn = options.get("connection_string") or (
            external("AZURE_STORAGE_CONNECTION_STRING") or ""
        )
        for part in str(conn).split(";"):
            name, _, value = part.partition("=")
            if name.strip().lower() == "blobendpoint" and value.strip():
                ep = value.strip()
                return None if ".blob.core.windows.net" in ep else ep
        host = options.get("account_host")
        if host and ".blob.core.windows.net" not in str(host):
            return str(host)
        return None

    @classmethod
    def backend_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        opts.setdefault("use_listings_cache", False)
        return opts

    def _described(self) -> str:
        if _AZURE_HTTPS.match(self.uri):
            return "https://ACCOUNT.blob.core.windows.net"
        return super()._described()

    def _tune(self, options: dict[str, Any]) -> None:
        client = getattr(self.fs, "service_client", None)
        policy = getattr(getattr(client, "_config", None), "retry_policy", None)
        if policy is not None and hasattr(policy, "total_retries"):
            policy.total_retries = 0

    def _create(self, path: str, data: bytes, put_id: str) -> None:
        _azure_create(self.fs, path, data, {PUT_ID: put_id})

    def _delete_files(self, files: list[str], path: str) -> None:
        # adlfs would first check each file's existence, one request after
        # the other; and when one delete of the batch finds its blob gone (a
        # retry after a lost response) it returns without reporting the
        # others' failures: check what is left instead
        self.fs.rm(files, expand_path=False)
        left = self.fs.find(path)
        if left:
            raise ConnectionError(f"{len(left)} objects were not deleted")


def _azure_create(fs: Any, path: str, data: bytes, metadata: dict[str, str]) -> None:
    """A conditional (If-None-Match: *) blob upload with metadata; adlfs's
    pipe_file cannot take metadata."""
    from fsspec.asyn import sync

    container, blob, _ = fs.split_path(path)

    async def go() -> None:
        from azure.core.exceptions import ResourceExistsError

        async with fs.service_client.get_blob_client(container=container, blob=blob) as bc:
            try:
                await bc.upload_blob(
                    data=data,
                    overwrite=False,
                    metadata={"is_directory": "false", **metadata},
                )
            except ResourceExistsError:
                raise FileExistsError(path) from None

    sync(fs.loop, go)
    fs.invalidate_cache(path)
