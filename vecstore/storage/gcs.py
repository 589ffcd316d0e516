"""Google Cloud Storage (gcsfs, the ``gcs`` extra).

``put_if_absent``: ``ifGenerationMatch=0``. gcsfs retries internally on a
fixed schedule that cannot be configured (6 tries over ~30 s); the Store's
deadline keeps it from stacking its own retries on top.
"""

from __future__ import annotations

from typing import Any, ClassVar

from vecstore.settings import external
from vecstore.storage.objectstore import PUT_ID, ObjectStore


class GCSStore(ObjectStore):
    name: ClassVar[str] = "gcs"
    schemes: ClassVar[tuple[str, ...]] = ("gs", "gcs")
    extra: ClassVar[str | None] = "gcs"
    has_buckets: ClassVar[bool] = True

    @classmethod
    def anonymous_options(cls, base: dict[str, Any] | None = None) -> dict[str, Any]:
        opts = dict(base or {})
        opts.setdefault("token", "anon")
        return opts

    @classmethod
    def endpoint(cls, options: dict[str, Any]) -> str | None:
        ep = options.get("endpoint_url") or external("STORAGE_EMULATOR_HOST")
        if ep and "storage.googleapis.com" not in str(ep):
            return str(ep)
        return None

    @classmethod
    def backend_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        opts = dict(options)
        opts.setdefault("use_listings_cache", False)
        return opts

    def _create(self, path: str, data: bytes, put_id: str) -> None:
        self.fs.pipe_file(path, data, mode="create", metadata={PUT_ID: put_id})
