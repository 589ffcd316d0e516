"""Every environment variable vecstore reads, in one typed object.

:class:`Settings` holds the ``VECSTORE_*`` knobs: each field names its variable
(the field's alias), its type and bounds, its default and what it does.
:func:`settings` reads them from the environment *when called*, never at import
time, so a process (or a test) may set a variable after importing vecstore;
call it where the value is used. A malformed value raises
:class:`~vecstore.errors.InvalidArgumentError` naming the variable.

Variables that belong to other tools but that vecstore also consults (an S3
endpoint, the XDG cache home...) are read through :func:`external`, which only
knows the names listed in :data:`EXTERNAL`. No other module reads
``os.environ`` (a test checks).

``docs/settings.md`` is generated from this class (:mod:`vecstore.settings.docs`)::

    python -m vecstore.settings --markdown            # print the tables
    python -m vecstore.settings --write docs/settings.md
    python -m vecstore.settings --check docs/settings.md
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from vecstore.errors import InvalidArgumentError

__all__ = ["EXTERNAL", "Settings", "external", "settings"]

MiB = 1024 * 1024

# groups, in the order the docs show them
CLI, IMPORT, RECOVERY, LIMITS, QUERY, WRITES = (
    "Command line and API",
    "Import planning",
    "Import runner and recovery",
    "Import limits",
    "Queries",
    "Writes (log, freshness tail, builder)",
)


def _knob(
    env: str,
    default: Any,
    description: str,
    *,
    group: str,
    short: str | None = None,
    secret: bool = False,
    default_text: str | None = None,
    **bounds: Any,
) -> Any:
    """A field read from ``env``. ``short``: its line in ``vecstore --help``."""
    extra: dict[str, Any] = {"group": group, "secret": secret}
    if short is not None:
        extra["short"] = short
    if default_text is not None:
        extra["default_text"] = default_text
    return Field(
        default,
        alias=env,
        description=description,
        repr=not secret,
        json_schema_extra=extra,
        **bounds,
    )


class Settings(BaseModel):
    """The ``VECSTORE_*`` environment variables. Unset or empty: the default."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # ------------------------------------------------------------ CLI and API
    store: str = _knob(
        "VECSTORE_STORE",
        "./vecstore-data",
        "The store root of the `vecstore` command when `--store` is not given: a local "
        "folder or an fsspec URL (`s3://bucket/prefix`, `gs://…`, `az://…`).",
        group=CLI,
        short="store root (instead of --store)",
    )
    scheduler: str | None = _knob(
        "VECSTORE_SCHEDULER",
        None,
        "The Dask scheduler imports run on (`tcp://host:8786`) when none is passed "
        "(`--scheduler`, `VecStore(scheduler_address=)`). Unset: a `LocalCluster` "
        "started by the process.",
        group=CLI,
        short="Dask scheduler address (instead of --scheduler)",
    )
    config: str | None = _knob(
        "VECSTORE_CONFIG",
        None,
        "The integrations config file (credentials for import sources) when none is "
        'passed (`--config`, `VecStore(config_path=)`): JSON `{"integrations": {ID: {options}}}`.',
        group=CLI,
        short="integrations config file (instead of --config)",
    )
    integrations: str | None = _knob(
        "VECSTORE_INTEGRATIONS",
        None,
        "Integrations as inline JSON, the same form as the config file; read in "
        "addition to it. Holds credentials: never printed.",
        group=CLI,
        short="integrations as inline JSON",
        secret=True,
    )
    runner: str | None = _knob(
        "VECSTORE_RUNNER",
        None,
        "The job runner, as `module:attribute` of a factory taking "
        "`scheduler_address=` (tests put a stand-in here).",
        group=CLI,
        default_text="the runner its job kind registers (`vecstore.pipelines.runner:DaskRunner` "
        "for imports)",
    )

    # -------------------------------------------------------- import planning
    chunk_bytes: int = _knob(
        "VECSTORE_CHUNK_BYTES",
        96 * MiB,
        "Bytes of whole row groups one scan task reads (a Parquet file is split into "
        "chunks of about this size).",
        group=IMPORT,
        ge=1,
    )
    bucket_bytes: int = _knob(
        "VECSTORE_BUCKET_BYTES",
        96 * MiB,
        "Bytes of decoded rows one gather (write) task holds.",
        group=IMPORT,
        ge=1,
    )
    partition_rows: int = _knob(
        "VECSTORE_PARTITION_ROWS",
        2_000_000,
        "Rows per duplicate-detection partition.",
        group=IMPORT,
        ge=1,
    )
    pack_rows: int = _knob(
        "VECSTORE_PACK_ROWS",
        50_000,
        "Namespaces of at most this many records (and at most 64 files) are packed: one "
        "task validates, deduplicates, clusters and writes many of them (0: never).",
        group=IMPORT,
        ge=0,
    )
    records_per_cluster: int = _knob(
        "VECSTORE_RECORDS_PER_CLUSTER",
        4096,
        "The top of the records-per-cluster band: clusters are kept between a quarter "
        "of it and it.",
        group=IMPORT,
        ge=1,
    )

    source_reads: int = _knob(
        "VECSTORE_SOURCE_READS",
        16,
        "Small source files (at most 1 MiB) one task keeps reading at once from a remote "
        "source (S3, GCS, Azure), so that their request latencies overlap (1: one at a "
        "time). Local disks are read one file at a time.",
        group=IMPORT,
        ge=1,
        le=256,
    )

    # --------------------------------------------------- runner and recovery
    workers: int = _knob(
        "VECSTORE_WORKERS",
        2,
        "Worker processes of the `LocalCluster` an import starts when no scheduler is given.",
        group=RECOVERY,
        ge=1,
    )
    worker_memory: str = _knob(
        "VECSTORE_WORKER_MEMORY",
        "6GB",
        "Memory limit of each `LocalCluster` worker, in Dask's form (`6GB`, `auto`, `0` for none).",
        group=RECOVERY,
    )
    heartbeat_seconds: float = _knob(
        "VECSTORE_HEARTBEAT_SECONDS",
        1.0,
        "How often a running import persists its heartbeat and progress.",
        group=RECOVERY,
        gt=0,
        allow_inf_nan=False,
    )
    stale_seconds: float = _knob(
        "VECSTORE_STALE_SECONDS",
        30.0,
        "A running job whose heartbeat is older than this is taken as lost: the next "
        "recovery resumes or fails it.",
        group=RECOVERY,
        gt=0,
        allow_inf_nan=False,
    )
    record_retry_seconds: float = _knob(
        "VECSTORE_RECORD_RETRY_SECONDS",
        3600.0,
        "How long a runner keeps retrying to write a final job record (or to clean up) "
        "while the store refuses writes.",
        group=RECOVERY,
        gt=0,
        allow_inf_nan=False,
    )
    max_attempts: int = _knob(
        "VECSTORE_MAX_ATTEMPTS",
        3,
        "Most attempts a job gets: recovery resumes a lost job that has had fewer, "
        "and fails it otherwise.",
        group=RECOVERY,
        ge=1,
    )

    # ----------------------------------------------------------- import limits
    max_namespaces: int = _knob(
        "VECSTORE_MAX_NAMESPACES",
        10_000,
        "Most namespaces one import may create.",
        group=LIMITS,
        ge=1,
    )
    max_files: int = _knob(
        "VECSTORE_MAX_FILES", 100_000, "Most files one import may read.", group=LIMITS, ge=1
    )
    max_file_bytes: int = _knob(
        "VECSTORE_MAX_FILE_BYTES",
        10 * 10**9,
        "Largest file an import accepts, in bytes.",
        group=LIMITS,
        ge=1,
    )
    max_namespace_bytes: int = _knob(
        "VECSTORE_MAX_NAMESPACE_BYTES",
        500 * 10**9,
        "Largest namespace an import accepts (the sum of its files), in bytes.",
        group=LIMITS,
        ge=1,
    )

    # ------------------------------------------------------------------ queries
    query_cache_bytes: int = _knob(
        "VECSTORE_QUERY_CACHE_BYTES",
        2 << 30,
        "Size of each reader's in-memory segment cache, in bytes, when `cache_bytes` "
        "is not passed.",
        group=QUERY,
        ge=0,
    )
    query_cache_dir: str | None = _knob(
        "VECSTORE_QUERY_CACHE_DIR",
        None,
        "The local disk cache for segments read from object storage, when `cache_dir` "
        "is not passed.",
        group=QUERY,
        default_text="`$XDG_CACHE_HOME/vecstore/segments`, else `~/.cache/vecstore/segments`",
    )

    # ------------------------------------------------------------------- writes
    tail_cap: int = _knob(
        "VECSTORE_TAIL_CAP",
        2_000_000,
        "Records (upserts plus deleted ids) a namespace may hold in its log beyond its "
        "clusters; past it writes are refused (rate limited) until the builder catches up.",
        group=WRITES,
        ge=1,
    )
    build_in_background: bool = _knob(
        "VECSTORE_BUILD_IN_BACKGROUND",
        True,
        "Whether a process that writes folds its namespaces' tails into their clusters "
        "in a background thread (else only `Index.build()` / `vecstore build` do).",
        group=WRITES,
    )
    build_tail_records: int = _knob(
        "VECSTORE_BUILD_TAIL_RECORDS",
        10_000,
        "The background builder folds a namespace once its tail holds this many records.",
        group=WRITES,
        ge=1,
    )
    build_tail_seconds: float = _knob(
        "VECSTORE_BUILD_TAIL_SECONDS",
        10.0,
        "... or once its oldest unfolded write is this many seconds old.",
        group=WRITES,
        gt=0,
    )
    retention_seconds: float = _knob(
        "VECSTORE_RETENTION_SECONDS",
        3600.0,
        "How long files a newer version superseded are kept for readers that may still "
        "hold the old version; `vacuum` deletes them only after this (docs/rebuild.md).",
        group=WRITES,
        ge=0,
    )

    @classmethod
    def env_names(cls) -> tuple[str, ...]:
        return tuple(str(f.alias) for f in cls.model_fields.values())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default ``os.environ``) describes."""
        source = os.environ if environ is None else environ
        return _parse(tuple(source.get(name) for name in cls.env_names()))

    def without_secrets(self) -> Settings:
        """These settings with every secret (inline integrations: credentials)
        unset: what may travel in a task's arguments to the workers."""
        secret = [n for n, f in type(self).model_fields.items() if extra(f).get("secret")]
        return self.model_copy(update=dict.fromkeys(secret))

    def limits(self) -> dict[str, int]:
        """The import limits, as keyword arguments of ``pipelines.discover.discover``."""
        return {
            "max_namespaces": self.max_namespaces,
            "max_files": self.max_files,
            "max_file_bytes": self.max_file_bytes,
            "max_namespace_bytes": self.max_namespace_bytes,
        }


@functools.lru_cache(maxsize=16)
def _parse(raw: tuple[str | None, ...]) -> Settings:
    values = {
        name: value.strip()
        for name, value in zip(Settings.env_names(), raw, strict=True)
        if value is not None and value.strip()
    }
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        raise _env_error(exc, values) from None


def _env_error(exc: ValidationError, values: Mapping[str, str]) -> InvalidArgumentError:
    first = exc.errors()[0]
    name = str(first["loc"][0])
    field = _field_by_env(name)
    got = "(value not shown)" if extra(field).get("secret") else f"got {values.get(name)!r}"
    return InvalidArgumentError(
        f"Environment variable {name} must be {type_text(field)}, {got}", variable=name
    )


def settings() -> Settings:
    """The current settings, read from the environment now (cheap: cached per value)."""
    return Settings.from_env()


# ============================================================ other variables

EXTERNAL: dict[str, str] = {
    "AWS_ENDPOINT_URL_S3": "the S3 endpoint botocore uses; vecstore reads it to tell an "
    "emulator or S3-compatible store from AWS",
    "AWS_ENDPOINT_URL": "the same, for every AWS service (after `AWS_ENDPOINT_URL_S3`)",
    "STORAGE_EMULATOR_HOST": "the GCS emulator gcsfs talks to; vecstore reads it the same way",
    "AZURE_STORAGE_CONNECTION_STRING": "adlfs's default connection string; vecstore reads its "
    "`BlobEndpoint` only (the rest holds credentials and is never printed)",
    "XDG_CACHE_HOME": "the base of the default query disk cache (`VECSTORE_QUERY_CACHE_DIR`)",
}


def external(name: str) -> str | None:
    """The value of another tool's variable listed in :data:`EXTERNAL` (unset or empty: None)."""
    if name not in EXTERNAL:
        raise KeyError(f"{name} is not listed in vecstore.settings.EXTERNAL")
    return os.environ.get(name) or None


# ======================================================= for docs and --help


def extra(field: FieldInfo) -> dict[str, Any]:
    """A field's group, help line, secrecy and default text."""
    found = field.json_schema_extra
    return dict(found) if isinstance(found, dict) else {}


def _field_by_env(name: str) -> FieldInfo:
    return next(f for f in Settings.model_fields.values() if f.alias == name)


def type_text(field: FieldInfo) -> str:
    kinds: dict[object, str] = {int: "an integer", float: "a number"}
    kind = kinds.get(field.annotation, "a string")
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Ge):
            kind += f" >= {bound.ge}"
        elif isinstance(bound, annotated_types.Gt):
            kind += f" > {bound.gt}"
    return kind


def cli_lines() -> list[tuple[str, str]]:
    """(variable, short text) of the knobs ``vecstore --help`` lists."""
    return [
        (str(f.alias), str(extra(f)["short"]))
        for f in Settings.model_fields.values()
        if "short" in extra(f)
    ]
