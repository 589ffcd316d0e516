"""Any other filesystem fsspec knows: the generic backend, for URL schemes
no backend in the registry claims. Its kind is its URL scheme. Its
``put_if_absent`` is serialised within the process (so threads race
correctly whatever the filesystem does) and, between processes, as atomic
as the filesystem's ``"create"`` write mode."""

from __future__ import annotations

from typing import Any, ClassVar

from vecstore.errors import InvalidArgumentError
from vecstore.storage.base import protocol_of
from vecstore.storage.objectstore import ObjectStore
from vecstore.storage.scrub import scrub


class FsspecStore(ObjectStore):
    """Any other filesystem fsspec knows (its kind is its URL scheme)."""

    import_source: ClassVar[bool] = False

    @classmethod
    def kind_of(cls, uri: str) -> str:
        return protocol_of(uri)

    def _self_conditional(self, key: str) -> bool:
        # an unknown filesystem's "create" mode may check, then write
        # (fsspec's memory filesystem does): serialise within the process
        return False

    @classmethod
    def translate(cls, uri: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if protocol_of(uri) in ("http", "https"):
            shown = scrub(uri)
            raise InvalidArgumentError(
                f'Unsupported URI "{shown}": expected a local path, file://, memory://, s3://, '
                "gs://, az://, abfs:// or https://ACCOUNT.blob.core.windows.net/CONTAINER/DIR",
                uri=shown,
            )
        return uri, dict(options)
