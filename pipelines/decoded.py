"""Small source files decoded once, at inspection (docs/scale.md "Decoded once").

A file of at most ``FOOTER_BYTES`` is read whole to inspect it. The
inspection task then also decodes it, and writes the decoded rows of its
batch's small files as one Arrow IPC file under the attempt's staging
prefix (one per schema met). Each file's :class:`~.discover.FileInfo`, and
then its whole-file :class:`~.plan.Chunk`, carries where its rows are: that
file's key and the first row. The k-means sample, the scan and the pack
tasks then slice those rows (:func:`rows`) instead of reading, parsing and
decoding the source file again: 100,000 files of 10 rows were each opened
and decoded three times before (inspection, sample, scan).

The decoded rows are exactly what :func:`~.reading.read_whole` returns for
the whole file (page checksums verified the same way), so every later step
(validation, rejects and their messages, the batched paths' fallbacks) sees
the same table. A file that does not decode is not kept: the later steps read
it as before and raise what they raise. Types that do not travel unchanged
through an IPC file (dictionaries, extension types) are not kept either. A
decoded file that cannot be read back is not an error: the source is read.

The staging files go with the attempt's staging prefix (success, failure,
cancel or a superseded attempt), like the scan's scratch files.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq

from vecstore.errors import CancelledError, VecstoreError
from vecstore.pipelines import plan as P
from vecstore.pipelines.discover import FileInfo

__all__ = ["keep", "rows", "session"]

SUFFIX = ".arrow"
# tables a task keeps read at once (a unit's chunks come from one or two)
SESSION_TABLES = 2
# rows of at most about this many bytes per decoded file
FILE_BYTES = 32 * 1024 * 1024

_local = threading.local()
log = logging.getLogger(__name__)


def keep(
    ctx: P.Context, infos: list[FileInfo], opened: dict[str, pq.ParquetFile]
) -> list[FileInfo]:
    """``infos`` (inspected, in order), each small one that inspection
    ``opened`` in memory (discover.inspect_file; taken out of ``opened``
    as it is decoded) decoded and written to staging: returned with
    :attr:`FileInfo.decoded` set. Others are returned unchanged. A decoded
    file holds at most FILE_BYTES of rows: a task's memory stays bounded."""
    out = list(infos)
    groups: list[_Group] = []  # per schema met
    for i, info in enumerate(infos):
        pf = opened.pop(info.key, None)
        if pf is None or not 0 < info.num_rows <= P.BATCH_ROWS:
            continue
        try:  # what reading.read_whole returns for the whole file
            t = pf.read(use_threads=False)
        except Exception:  # noqa: BLE001 - the scan reads it again and says why
            continue
        if t.num_rows != info.num_rows:
            continue
        g = next((g for g in groups if g.schema.equals(t.schema)), None)
        if g is None:
            g = _Group(t.schema, _travels(t.schema))
            groups.append(g)
        if not g.travels:
            continue
        g.members.append((i, t))
        g.nbytes += t.nbytes
        if g.nbytes >= FILE_BYTES:
            g.flush(ctx, out)
    for g in groups:
        g.flush(ctx, out)
    return out


@dataclasses.dataclass
class _Group:
    """An inspection task's decoded files of one schema, not written yet."""

    schema: pa.Schema
    travels: bool
    members: list[tuple[int, pa.Table]] = dataclasses.field(default_factory=list)
    nbytes: int = 0

    def flush(self, ctx: P.Context, out: list[FileInfo]) -> None:
        if self.members:
            try:
                _write(ctx, self.schema, self.members, out)
            except CancelledError:
                raise
            except VecstoreError as exc:  # a cache: its files are read from the source
                log.debug("decoded rows not kept (%s)", exc)
        self.members, self.nbytes = [], 0


def _write(
    ctx: P.Context, schema: pa.Schema, members: list[tuple[int, pa.Table]], out: list[FileInfo]
) -> None:
    """One decoded file of ``members``' rows; their infos in ``out`` updated."""
    key = f"{ctx.staging}/decoded/{uuid.uuid4().hex}{SUFFIX}"
    # one record batch: a chunk's rows are then a zero-copy slice of it
    table = pa.concat_tables([t for _, t in members]).combine_chunks()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, schema) as w:
        w.write_table(table, max_chunksize=max(1, table.num_rows))
    del table
    ctx.store.write_bytes(key, sink.getvalue().to_pybytes())
    first = 0
    for i, t in members:
        f = out[i]
        out[i] = FileInfo(f.key, f.namespace, f.size, f.num_rows, f.row_groups, (key, first))
        first += t.num_rows


def _travels(schema: pa.Schema) -> bool:
    """No dictionary or extension type (an IPC file would not give them back
    as they were read: dictionaries may differ between the files, an
    extension type unknown to the reading process comes back as its storage)."""

    def plain(t: pa.DataType) -> bool:
        if isinstance(t, pa.ExtensionType) or pa.types.is_dictionary(t):
            return False
        return all(plain(t.field(j).type) for j in range(t.num_fields))

    return all(plain(f.type) for f in schema)


@contextmanager
def session() -> Iterator[None]:
    """A task's reads of decoded files: each read once (the last few kept)
    while the task runs, nothing kept after it."""
    prev = getattr(_local, "tables", None)
    _local.tables = {}
    try:
        yield
    finally:
        _local.tables = prev


def rows(ctx: P.Context, chunk: P.Chunk, columns: Sequence[str] | None = None) -> pa.Table | None:
    """The whole-file chunk's rows (``columns`` of them) from its decoded
    file, or None: not decoded, or the decoded file could not be read (the
    caller reads the source)."""
    where = chunk.decoded
    if where is None:
        return None
    key, first = where
    tables: dict[str, pa.Table] | None = getattr(_local, "tables", None)
    t = tables.get(key) if tables is not None else None
    if t is None:
        try:
            t = pa.ipc.open_file(pa.py_buffer(ctx.store.read_bytes(key))).read_all()
        except CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the source is still there
            return None
        if tables is not None:
            while len(tables) >= SESSION_TABLES:
                del tables[next(iter(tables))]
            tables[key] = t
    if first + chunk.num_rows > t.num_rows:
        return None
    part = t.slice(first, chunk.num_rows)
    return part.select(list(columns)) if columns is not None else part
