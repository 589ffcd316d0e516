"""Object keys of the on-storage layout (format version 1), relative to the store root.

```
indexes/<index>/index.json
indexes/<index>/namespaces/<ns>/_manifests/<version:020d>.json
indexes/<index>/namespaces/<ns>/data/<uuid>.parquet        segment files
indexes/<index>/namespaces/<ns>/data/<uuid>.centroids      float32 k x d (.npy)
indexes/<index>/namespaces/<ns>/data/<uuid>.ids.parquet    id -> (cluster, row)
indexes/<index>/_catalog/<seq:020d>.json                   namespace catalog snapshots
indexes/<index>/_catalog/intents/<ms:013d>-<uuid>.json     commits in flight (catalog)
indexes/<index>/imports/<import-id>.json                   job records
indexes/<index>/imports/<import-id>/_COMMITTED             the import's commit point
indexes/<index>/imports/<import-id>/rejects/...            reject reports
indexes/<index>/imports/<import-id>/staging/...            scratch, deleted at the end
```

The default namespace "" is stored as ``__default__``; other namespace names
are percent-encoded so any name (1-512 characters) is one path segment.
"""

from __future__ import annotations

import functools
from urllib.parse import quote, unquote

DEFAULT_NAMESPACE_DIR = "__default__"
INDEX_ROOT = "indexes"


@functools.lru_cache(maxsize=1 << 16)  # ~10 us of quoting, 5+ times per namespace of an import
def ns_dir(namespace: str) -> str:
    if namespace == "":
        return DEFAULT_NAMESPACE_DIR
    encoded = quote(namespace, safe="-_.~=+@,")
    if encoded in (".", ".."):  # would name the parent or the directory itself
        encoded = encoded.replace(".", "%2E")
    return encoded


def ns_from_dir(name: str) -> str:
    return "" if name == DEFAULT_NAMESPACE_DIR else unquote(name)


def index_prefix(index: str) -> str:
    return f"{INDEX_ROOT}/{index}"


def index_spec_key(index: str) -> str:
    return f"{index_prefix(index)}/index.json"


def namespaces_prefix(index: str) -> str:
    return f"{index_prefix(index)}/namespaces"


def namespace_prefix(index: str, namespace: str) -> str:
    return f"{namespaces_prefix(index)}/{ns_dir(namespace)}"


def manifests_prefix(index: str, namespace: str) -> str:
    return f"{namespace_prefix(index, namespace)}/_manifests"


def manifest_key(index: str, namespace: str, version: int) -> str:
    return f"{manifests_prefix(index, namespace)}/{version:020d}.json"


def version_of_manifest(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.partition(".")
    if ext != "json" or len(stem) != 20 or not stem.isdigit():
        return None
    return int(stem)


def data_prefix(index: str, namespace: str) -> str:
    return f"{namespace_prefix(index, namespace)}/data"


def written_by(key: str, owner: str) -> bool:
    """Whether the data file ``key`` (a key or a ``data/...`` path) was named
    for ``owner`` -- an import id, or one attempt's ``<id>-a<n>`` -- by
    ``segments.new_name``."""
    return key.rsplit("/", 1)[-1].startswith(f"{owner}-")


def catalog_prefix(index: str) -> str:
    return f"{index_prefix(index)}/_catalog"


def catalog_key(index: str, seq: int) -> str:
    return f"{catalog_prefix(index)}/{seq:020d}.json"


def catalog_intents_prefix(index: str) -> str:
    return f"{catalog_prefix(index)}/intents"


def logged_prefix(index: str) -> str:
    """Markers of the namespaces that have (had) a write log: stats and
    namespace listings ask the log only of these (docs/catalog.md)."""
    return f"{index_prefix(index)}/_logged"


def logged_key(index: str, namespace: str) -> str:
    return f"{logged_prefix(index)}/{ns_dir(namespace)}"


LOGGED_TRACKED = "%TRACKED"
"""Under ``_logged/``: the index tracks its logged namespaces (written when
the index is created; an index from before has none, and its counts ask
every namespace's log). ``ns_dir`` never yields it (``%`` + non-hex)."""


def logged_tracked_key(index: str) -> str:
    return f"{logged_prefix(index)}/{LOGGED_TRACKED}"


def imports_prefix(index: str) -> str:
    return f"{index_prefix(index)}/imports"


def job_key(index: str, job_id: str) -> str:
    return f"{imports_prefix(index)}/{job_id}.json"


def job_dir(index: str, job_id: str) -> str:
    return f"{imports_prefix(index)}/{job_id}"


def commit_marker_key(index: str, job_id: str) -> str:
    return f"{job_dir(index, job_id)}/_COMMITTED"


def cancel_marker_key(index: str, job_id: str) -> str:
    return f"{job_dir(index, job_id)}/_CANCEL"


def claim_key(index: str, job_id: str, attempt: int) -> str:
    return f"{job_dir(index, job_id)}/_attempts/{attempt:06d}"


def rejects_prefix(index: str, job_id: str) -> str:
    return f"{job_dir(index, job_id)}/rejects"


def staging_prefix(index: str, job_id: str) -> str:
    return f"{job_dir(index, job_id)}/staging"
