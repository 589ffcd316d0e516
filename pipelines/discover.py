"""Discovery of an import directory: what will be imported, before any data is read.

:func:`discover` lists the import URI once and turns the listing into a
:class:`Discovery` (namespaces -> data files) or fails the whole import with
the messages of Pinecone's import guide. :func:`inspect_file` reads one
file's Parquet footer (never its data) and checks its schema.

Messages are stored *without* Pinecone's ``User error:`` prefix; the runner
that writes the job record decides the prefix.

Listing rules (decisions recorded here):

- Keys are relative to the import URI. A key with any path component that
  starts with ``_`` or ``.`` is hidden and ignored (``_SUCCESS``, ``_temporary/``,
  ``.part-0.parquet.crc``, ``_delta_log/``...), except that the first
  component may be ``__default__``, the directory of the default namespace
  ``""``. A namespace whose name starts with ``_`` or ``.`` can still be
  imported by percent-encoding its directory name (``%5Fdrafts`` -> ``_drafts``),
  the same encoding the store itself uses (:mod:`vecstore.layout`).
- Only files whose name ends with ``.parquet`` (any letter case) are data.
  Other visible files (``README.md``, ``schema.json``, ``*.crc``...) are
  ignored silently: they are common next to exported Parquet data.
- Each direct sub-directory of the URI that holds data files is a namespace,
  its name the directory name decoded with :func:`vecstore.layout.ns_from_dir`.
  A name whose percent-decoded bytes are not UTF-8 (``caf%E9``, Latin-1) is
  refused (:class:`~vecstore.errors.IngestError` ``Invalid namespace
  directory ...``), never decoded with replacement characters.
  Files are found recursively below the namespace directory
  (``ns/part=1/x.parquet`` belongs to ``ns``), as Spark and Hive write them.
  A sub-directory without data files is not a namespace (it is not reported).
- Namespaces are sorted by name, the files of a namespace by key: this is the
  "file path order" that makes duplicate detection deterministic.
- Delete files (loads, docs/loads.md): data files whose second path
  component is ``deletes`` (``<ns>/deletes/**.parquet``) hold ids and id
  prefixes to delete from namespace ``<ns>``. ``mode="upsert"`` returns them
  apart (:attr:`Discovery.deletes`); ``mode="create"`` refuses them.
- Every file carries the listing's ``version`` (etag, else modification
  time) for the load history (:mod:`vecstore.loadhistory`).

Whole-import failures, checked in this order:

1. The URI is itself a ``.parquet`` file -> the "complete path" message. (An
   object at the URI's own key beside other objects, like the zero-byte
   "folder" object an S3 console creates, is ignored.)
2. No data files at all (also: the URI does not exist, or is a file that is
   not Parquet) -> ``No Parquet files found under "<uri>". ...``.
3. Data files directly under the URI:

   - and no namespace directory holds data files: the URI is a namespace
     directory (or a folder of files) -> the "complete path" message;
   - and some namespace directories hold data files too -> the
     ``No namespace detected`` message.

   Both name the first such file (in key order).
4. A namespace name decoded to more than 512 characters, or two directories
   that decode to the same namespace -> :class:`~vecstore.errors.IngestError`.
5. Delete files with ``mode="create"`` -> ``"<path>": Delete files ... are
   only allowed in a load ...``, naming the first.
6. ``mode="create"`` only: a namespace that already exists in the index
   (``existing_namespaces``; pass ``""`` when the default namespace holds
   records) -> the "already exists" message; the default namespace is shown
   as ``__default__``.
7. Limits (:class:`~vecstore.errors.LimitExceededError`, message starting
   ``Exceeds system limit: ``): namespaces per import, files per import,
   bytes per file, bytes per namespace (delete files count as files). Sizes
   are decimal: 1 GB = 10**9 bytes.

Files are named in messages by their path as Pinecone shows it: the object's
key inside its bucket or container (``test-import/0.parquet`` for
``s3://bucket/test-import/0.parquet``); on local disks and ``memory://`` the
file's full path.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from vecstore.errors import IngestError, InvalidArgumentError, LimitExceededError, SchemaError
from vecstore.layout import DEFAULT_NAMESPACE_DIR, ns_from_dir
from vecstore.pipelines.reading import FOOTER_BYTES, clean_text, footer_error
from vecstore.schemas.arrow import REQUIRED_COLUMNS, ImportKind, is_string_type
from vecstore.storage import Store

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_NAMESPACES",
    "MAX_NAMESPACE_BYTES",
    "MAX_NAMESPACE_CHARS",
    "DELETES_DIR",
    "Discovery",
    "FileInfo",
    "SourceFile",
    "discover",
    "display_path",
    "inspect_file",
    "is_delete_key",
    "listed_version",
    "type_name",
]

MAX_NAMESPACES = 10_000
MAX_FILES = 100_000
MAX_FILE_BYTES = 10 * 10**9
MAX_NAMESPACE_BYTES = 500 * 10**9
MAX_NAMESPACE_CHARS = 512

DATA_SUFFIX = ".parquet"
DELETES_DIR = "deletes"
MODES = ("create", "upsert")
DOCS_URL = "https://docs.pinecone.io/guides/data/understanding-imports#directory-structure"


class _Fields:
    """A slots dataclass pickled as its fields, in order: 100,000 of them go
    to the inspection tasks and come back (the dataclass's own state calls
    ``fields()`` per object: 4-4.5 us against 0.8-1.25 us)."""

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), tuple(map(self.__getattribute__, self.__slots__))


@dataclass(frozen=True, slots=True)
class SourceFile(_Fields):
    """One file of an import: ``key`` is relative to the import URI.

    ``version`` is what the listing says about the object's content besides
    its size: ``etag:<ETag>`` where the store lists one (S3, GCS, Azure),
    else ``mtime:<modification time>`` (local disks, ``memory://``), else
    ``""``. The load history keys files by (URI, key, size, version).
    """

    key: str
    size: int
    namespace: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class Discovery:
    """What an import will read: namespace -> its data files, both sorted.

    ``deletes`` (loads only, ``mode="upsert"``): namespace -> its delete
    files (``<ns>/deletes/**.parquet``, docs/loads.md), sorted by key. A
    namespace may have delete files and no data files; it is then in
    ``deletes`` only. ``files``, ``num_files`` and ``total_bytes`` count data
    files only; ``delete_files`` lists the others.
    """

    namespaces: dict[str, list[SourceFile]]
    total_bytes: int
    deletes: dict[str, list[SourceFile]] = field(default_factory=dict)

    @property
    def delete_files(self) -> list[SourceFile]:
        """Every delete file, namespace by namespace, in key order."""
        return [f for files in self.deletes.values() for f in files]

    @property
    def files(self) -> list[SourceFile]:
        """Every file, namespace by namespace, in key order."""
        return [f for files in self.namespaces.values() for f in files]

    @property
    def num_files(self) -> int:
        return sum(len(files) for files in self.namespaces.values())


@dataclass(frozen=True, slots=True)
class FileInfo(_Fields):
    """A data file's footer facts: rows in all and per row group."""

    key: str
    namespace: str
    size: int
    num_rows: int
    row_groups: list[int]
    # a small file decoded at inspection: (staging key, first row) of its rows (decoded.py)
    decoded: tuple[str, int] | None = None


# ----------------------------------------------------------------- discovery


def discover(
    source: Store,
    uri: str,
    existing_namespaces: set[str],
    *,
    mode: str = "create",
    max_namespaces: int = MAX_NAMESPACES,
    max_files: int = MAX_FILES,
    max_file_bytes: int = MAX_FILE_BYTES,
    max_namespace_bytes: int = MAX_NAMESPACE_BYTES,
) -> Discovery:
    """List the import directory ``source`` (rooted at ``uri``); see the module doc.

    ``mode="create"`` (an import): every namespace must be new, and delete
    files are refused. ``mode="upsert"`` (a load): namespaces may exist, and
    the delete files of each namespace are returned in ``Discovery.deletes``.
    """
    if mode not in MODES:
        raise InvalidArgumentError(
            f'Invalid mode "{mode}": expected one of {", ".join(MODES)}', mode=mode
        )
    listing = source.walk_file_infos()
    if [key for key, _ in listing] == [""]:  # the URI names a single object
        if _is_data(source.uri.rstrip("/").rsplit("/", 1)[-1]):
            raise IngestError(_complete_path_message(display_path(source, "")), uri=uri)
        raise IngestError(_no_files_message(uri), uri=uri)
    found = [
        (k, int(info.get("size") or 0), listed_version(info))
        for k, info in listing
        if k and _is_data(k) and not _is_hidden(k)
    ]
    if not found:
        raise IngestError(_no_files_message(uri), uri=uri)
    _check_structure(source, uri, [key for key, _, _ in found])
    dirs: dict[str, str] = {}
    namespaces = _group([f for f in found if not is_delete_key(f[0])], dirs)
    deletes = _group([f for f in found if is_delete_key(f[0])], dirs)
    if deletes and mode != "upsert":
        first = min(f.key for files in deletes.values() for f in files)
        raise IngestError(
            _deletes_in_create_message(display_path(source, first)), uri=uri, file=first
        )
    if mode == "create":
        _check_existing(namespaces, existing_namespaces, uri)
    _check_limits(
        source,
        _merged(namespaces, deletes),
        max_namespaces=max_namespaces,
        max_files=max_files,
        max_file_bytes=max_file_bytes,
        max_namespace_bytes=max_namespace_bytes,
    )
    return Discovery(
        namespaces=namespaces,
        total_bytes=sum(f.size for files in namespaces.values() for f in files),
        deletes=deletes,
    )


def is_delete_key(key: str) -> bool:
    """``key`` (relative to the URI) is in the ``deletes`` directory of a
    namespace directory: ``<ns>/deletes/...``."""
    parts = key.split("/")
    return len(parts) >= 3 and parts[1] == DELETES_DIR


def listed_version(info: Mapping[str, Any]) -> str:
    """:attr:`SourceFile.version` from a listing's info dict."""
    for name in ("ETag", "etag", "e_tag"):
        tag = info.get(name)
        if tag:
            return f"etag:{str(tag).strip(chr(34))}"
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        when = info.get(name)
        if isinstance(when, datetime):
            return f"mtime:{when.isoformat()}"
        if when is not None and when != "":
            return f"mtime:{when}"
    return ""


def _merged(
    a: Mapping[str, list[SourceFile]], b: Mapping[str, list[SourceFile]]
) -> dict[str, list[SourceFile]]:
    out = {ns: list(files) for ns, files in a.items()}
    for ns, files in b.items():
        out.setdefault(ns, []).extend(files)
    return out


def _deletes_in_create_message(path: str) -> str:
    return (
        f'"{path}": Delete files (a "{DELETES_DIR}" directory in a namespace directory) are only '
        'allowed in a load (mode="upsert", `vecstore load`): an import only creates new '
        "namespaces and has nothing to delete"
    )


def display_path(source: Store, key: str) -> str:
    """How messages name ``key``: its key in the bucket, else its full path."""
    path = source.path(key)
    if source.has_buckets and "/" in path:
        return path.split("/", 1)[1]
    return path


def _is_data(key: str) -> bool:
    return key.lower().endswith(DATA_SUFFIX)


def _is_hidden(key: str) -> bool:
    parts = key.split("/")
    if len(parts) > 1 and parts[0] == DEFAULT_NAMESPACE_DIR:
        parts = parts[1:]
    return any(p.startswith(("_", ".")) for p in parts)


def _no_files_message(uri: str) -> str:
    return f'No Parquet files found under "{uri}". Files must be stored with the specified bucket prefix.'


def _complete_path_message(path: str) -> str:
    return (
        f'"{path}": It looks like you specified a complete path to a parquet file as the URI '
        "prefix to import from. Note that the URI prefix should give an ancestor directory with "
        f"subdirectories to specify each namespace to import into. See {DOCS_URL}."
    )


def _no_namespace_message(path: str) -> str:
    return (
        f'"{path}": No namespace detected. Each file should be nested under a subdirectory of '
        "the URI prefix. This indicates which namespace it should be imported into."
    )


def _check_structure(source: Store, uri: str, keys: list[str]) -> None:
    top = sorted(k for k in keys if "/" not in k)
    if not top:
        return
    nested = len(top) < len(keys)
    path = display_path(source, top[0])
    message = _no_namespace_message(path) if nested else _complete_path_message(path)
    raise IngestError(message, uri=uri, file=top[0])


def _group(
    data: Iterable[tuple[str, int, str]], dirs: dict[str, str]
) -> dict[str, list[SourceFile]]:
    """Files by namespace; ``dirs`` (namespace -> the directory naming it) is
    shared by the data and the delete files of one listing."""
    grouped: dict[str, list[SourceFile]] = {}
    names: dict[str, str] = {}  # directory -> namespace: decoded once, not per file
    for key, size, version in sorted(data):
        directory = key.split("/", 1)[0]
        namespace = names.get(directory)
        if namespace is None:
            namespace = names[directory] = _namespace_of(directory)
        seen = dirs.setdefault(namespace, directory)
        if seen != directory:
            raise IngestError(
                f'Directories "{seen}" and "{directory}" both name the namespace "{namespace}": '
                "rename one of them",
                namespace=namespace,
            )
        if len(namespace) > MAX_NAMESPACE_CHARS:
            raise IngestError(
                f'Invalid namespace name from directory "{directory}": a namespace name has '
                f"1-{MAX_NAMESPACE_CHARS} characters, got {len(namespace)}",
                namespace=namespace,
            )
        grouped.setdefault(namespace, []).append(SourceFile(key, size, namespace, version))
    return {ns: grouped[ns] for ns in sorted(grouped)}


def _namespace_of(directory: str) -> str:
    """The namespace a directory names, refusing names that are not UTF-8
    once percent-decoded (``caf%E9``: Latin-1) instead of replacing bytes."""
    try:
        unquote(directory, errors="strict").encode("utf-8")
    except UnicodeError:
        raise IngestError(
            f'Invalid namespace directory "{_printable(directory)}": its name is not valid UTF-8 '
            "once percent-decoded. Name the directory in UTF-8 (percent-encode UTF-8 bytes, "
            '"caf%C3%A9" for "café")',
            directory=_printable(directory),
        ) from None
    return ns_from_dir(directory)


def _printable(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes of a local file name)
    and control characters shown as escapes."""
    return clean_text(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _shown(namespace: str) -> str:
    return DEFAULT_NAMESPACE_DIR if namespace == "" else namespace


def _check_existing(
    namespaces: Mapping[str, list[SourceFile]], existing: set[str], uri: str
) -> None:
    for namespace in namespaces:
        if namespace in existing:
            raise IngestError(
                f'The namespace "{_shown(namespace)}" already exists. Imports are only allowed '
                "into nonexistent namespaces.",
                uri=uri,
                namespace=namespace,
            )


def _check_limits(
    source: Store,
    namespaces: Mapping[str, list[SourceFile]],
    *,
    max_namespaces: int,
    max_files: int,
    max_file_bytes: int,
    max_namespace_bytes: int,
) -> None:
    prefix = "Exceeds system limit: "
    if len(namespaces) > max_namespaces:
        raise LimitExceededError(
            f"{prefix}{len(namespaces)} namespaces in one import (max {max_namespaces})"
        )
    num_files = sum(len(files) for files in namespaces.values())
    if num_files > max_files:
        raise LimitExceededError(f"{prefix}{num_files} files in one import (max {max_files})")
    for namespace, files in namespaces.items():
        for f in files:
            if f.size > max_file_bytes:
                raise LimitExceededError(
                    f'{prefix}file "{display_path(source, f.key)}" has {f.size} bytes '
                    f"(max {max_file_bytes} bytes per file)",
                    file=f.key,
                )
        total = sum(f.size for f in files)
        if total > max_namespace_bytes:
            raise LimitExceededError(
                f'{prefix}namespace "{_shown(namespace)}" has {total} bytes '
                f"(max {max_namespace_bytes} bytes per namespace)",
                namespace=namespace,
            )


# ------------------------------------------------------------ file schemas

_STRING = "STRING"
_VALUES = "LIST<FLOAT>"
_SPARSE = "STRUCT<indices: LIST<UINT32>, values: LIST<FLOAT>>"


def inspect_file(
    source: Store,
    f: SourceFile,
    kind: ImportKind,
    dimension: int | None,
    *,
    opened: dict[str, pq.ParquetFile] | None = None,
) -> FileInfo:
    """Read ``f``'s Parquet footer (not its data; a file of at most 64 KiB is
    read whole, in one call) and check its schema. ``opened``: receives a
    file read whole, by key, opened in memory with page checksums verified
    (its rows decode without reading or parsing it again: :mod:`.decoded`).

    Raises :class:`~vecstore.errors.SchemaError` with Pinecone's messages
    prefixed by ``file "<path>": `` (:func:`display_path`, as record errors
    name files) and context ``file`` and ``column``;
    checked in this order: the footer parses, required columns
    (:data:`vecstore.schemas.arrow.REQUIRED_COLUMNS`) are present, every column is
    allowed (those of :func:`vecstore.schemas.arrow.import_schema`) and appears once,
    column types. Accepted types:

    - ``id``: string, large_string or string_view (also dictionary-encoded,
      or a JSON extension column over one of them:
      :func:`vecstore.schemas.arrow.is_string_type`);
    - ``values``: list, large_list or fixed_size_list of any float or integer;
    - ``sparse_values``: struct of exactly ``indices`` (a list of any integer)
      and ``values`` (a list of any float or integer);
    - ``metadata``: the same string types as ``id``; DuckDB writes its
      ``JSON`` type as a string column with the ``arrow.json`` extension type.

    Writer defaults that are rejected get a hint after Pinecone's message: a
    pandas index column (``__index_level_0__``: write with ``index=False``), a
    list of decimals (DuckDB's ``[0.1, 0.2]``: cast to ``FLOAT[]``), metadata
    as a struct or map (serialise it to a JSON string).

    An optional column (``metadata``; ``sparse_values`` in hybrid) may also
    have Arrow's null type: a column of nulls only. A fixed_size_list whose
    size differs from ``dimension`` is not a schema error: each of its rows is
    a record error (``dimension``), as for any other list.
    """
    if kind != "sparse" and dimension is None:
        raise InvalidArgumentError(f"A {kind} index needs a dimension", kind=kind)
    shown = display_path(source, f.key)  # messages name files as record errors do
    schema, row_groups, pf = _read_footer(source, f.key, shown, f.size)
    _check_columns(shown, schema, kind)
    if opened is not None and pf is not None:
        opened[f.key] = pf
    return FileInfo(
        key=f.key,
        namespace=f.namespace,
        size=f.size,
        num_rows=sum(row_groups),
        row_groups=row_groups,
    )


def _read_footer(
    source: Store, key: str, shown: str, size: int | None = None
) -> tuple[pa.Schema, list[int], pq.ParquetFile | None]:
    """A file listed at most FOOTER_BYTES (what pyarrow reads of its tail
    anyway) is read in one call and its footer parsed from memory: one GET
    and no HEAD on an object store; on a local disk, 60% of the CPU of a
    file handle's seeks and reads (100,000 small files are inspected). That
    file is returned opened (page checksums verified, as reading.read_whole
    opens it); None for a file that was not read whole."""
    try:
        # a size the listing did not give (0) is not taken for a small file
        whole = size is not None and 0 < size <= FOOTER_BYTES
        opened = (
            contextlib.nullcontext(pa.BufferReader(source.read_bytes(key)))
            if whole
            else source.open_input(key)
        )
        with opened as fh:
            pf = pq.ParquetFile(fh, page_checksum_verification=whole)
            meta = pf.metadata
            groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
            return pf.schema_arrow, groups, pf if whole else None
    except (FileNotFoundError, PermissionError, ConnectionError, TimeoutError):
        raise  # the store failed, not the file
    except (pa.ArrowException, ValueError, OSError) as exc:  # thrift errors are plain OSError
        raise footer_error(shown) from exc


def _allowed_columns(kind: ImportKind) -> tuple[str, ...]:
    if kind == "dense":
        return ("id", "values", "metadata")
    if kind == "sparse":
        return ("id", "sparse_values", "metadata")
    return ("id", "values", "sparse_values", "metadata")


# schemas that passed _check_columns, by kind: the files of one import mostly
# share one, and a lookup costs a fifth of the check (100,000 files inspected)
_PASSED: set[tuple[str, pa.Schema]] = set()
_PASSED_MAX = 256


def _check_columns(key: str, schema: pa.Schema, kind: ImportKind) -> None:
    # whether a schema passes depends on its names and types only (Schema's
    # equality); the messages of one that fails name the file: never cached
    if (kind, schema) in _PASSED:
        return
    _check_schema(key, schema, kind)
    if len(_PASSED) >= _PASSED_MAX:
        _PASSED.clear()
    _PASSED.add((kind, schema))


def _check_schema(key: str, schema: pa.Schema, kind: ImportKind) -> None:
    names = list(schema.names)
    for name in REQUIRED_COLUMNS[kind]:
        if name not in names:
            _fail(key, name, f'Missing required column "{name}"')
    allowed = _allowed_columns(kind)
    pandas_index = _pandas_index_columns(schema)
    for name in names:
        if name not in allowed:
            hint = _INDEX_HINT if name in pandas_index else ""
            _fail(key, name, f'Unsupported column "{name}"{hint}')
        if names.count(name) > 1:
            _fail(key, name, f'Duplicate column "{name}"')
    for name in names:
        _check_type(key, name, schema.field(name).type, optional=name not in REQUIRED_COLUMNS[kind])


def _check_type(key: str, name: str, t: pa.DataType, *, optional: bool) -> None:
    if optional and pa.types.is_null(t):
        return
    if name == "metadata":
        if not is_string_type(t):
            hint = _STRUCT_HINT if pa.types.is_struct(t) or pa.types.is_map(t) else ""
            _fail(
                key,
                name,
                "The expected data type for metadata is a JSON encoded string in UTF-8 format, "
                f'but got "{type_name(t)}"{hint}',
            )
        return
    ok, expected = {
        "id": (is_string_type, _STRING),
        "values": (_is_number_list, _VALUES),
        "sparse_values": (_is_sparse, _SPARSE),
    }[name]
    if not ok(t):
        hint = _DECIMAL_HINT if _has_decimal_list(t) else ""
        _fail(
            key,
            name,
            f'The expected data type for column "{name}" is "{expected}", but got '
            f'"{type_name(t)}"{hint}',
        )


# Hints for what common writers produce by default (Pinecone's rule stands:
# the file is rejected; the message says how to write it instead).
_INDEX_HINT = (
    ". It holds the index of a pandas DataFrame: write the file with "
    "DataFrame.to_parquet(..., index=False)"
)
_DECIMAL_HINT = (
    ". Decimal lists are what DuckDB writes for list literals such as [0.1, 0.2]: cast the "
    "column to FLOAT[] (values::FLOAT[])"
)
_STRUCT_HINT = (
    ". Serialise the metadata to a JSON string (json.dumps in Python, to_json(metadata) in "
    "DuckDB)"
)
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def _pandas_index_columns(schema: pa.Schema) -> set[str]:
    """Columns holding a pandas index: named ``__index_level_<n>__``, or listed
    as ``index_columns`` in the schema's ``pandas`` metadata."""
    out = {name for name in schema.names if _PANDAS_INDEX.fullmatch(name)}
    raw = (schema.metadata or {}).get(b"pandas")
    if raw:
        try:
            listed = json.loads(raw).get("index_columns", [])
        except (ValueError, AttributeError):
            listed = []
        out.update(c for c in listed if isinstance(c, str))  # a RangeIndex is a dict: no column
    return out


def _has_decimal_list(t: pa.DataType) -> bool:
    """A list of decimals, or a sparse struct whose values are one."""
    if _is_list(t):
        return bool(pa.types.is_decimal(t.value_type))
    if pa.types.is_struct(t) and t.get_field_index("values") >= 0:
        return _has_decimal_list(t.field("values").type)
    return False


def _fail(key: str, column: str, message: str) -> None:
    raise SchemaError(f'file "{key}": {message}', file=key, column=column)


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _is_number_list(t: pa.DataType) -> bool:
    if not _is_list(t):
        return False
    v = t.value_type
    return bool(pa.types.is_floating(v) or pa.types.is_integer(v))


def _is_sparse(t: pa.DataType) -> bool:
    if not pa.types.is_struct(t) or sorted(t.field(i).name for i in range(t.num_fields)) != [
        "indices",
        "values",
    ]:
        return False
    indices = t.field("indices").type
    return (
        _is_list(indices)
        and bool(pa.types.is_integer(indices.value_type))
        and _is_number_list(t.field("values").type)
    )


def type_name(t: pa.DataType) -> str:
    """A type the way the import messages spell it: ``LIST<DOUBLE>``, ``STRING``."""
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        outer = "LIST" if pa.types.is_list(t) else "LARGE_LIST"
        return f"{outer}<{type_name(t.value_type)}>"
    if pa.types.is_fixed_size_list(t):
        return f"FIXED_SIZE_LIST<{type_name(t.value_type)}, {t.list_size}>"
    if pa.types.is_map(t):
        return f"MAP<{type_name(t.key_type)}, {type_name(t.item_type)}>"
    if pa.types.is_struct(t):
        inner = ", ".join(
            f"{t.field(i).name}: {type_name(t.field(i).type)}" for i in range(t.num_fields)
        )
        return f"STRUCT<{inner}>"
    if pa.types.is_dictionary(t):
        return f"DICTIONARY<{type_name(t.value_type)}>"
    return str(t).upper()
