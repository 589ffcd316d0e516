"""Reading import files: every Parquet file an import opens goes through here.

- :func:`open_parquet` opens a file with page checksum verification on: a
  page written with a CRC (``write_page_checksum=True`` in pyarrow, and other
  writers' equivalents) whose bytes no longer match fails to read instead of
  yielding garbage values. Pages without a CRC are read as before.
- :func:`iter_batches` reads record batches of some row groups, and turns a
  failure to decode them (a corrupt compressed page, a bad page header, a
  checksum mismatch...) into a :class:`~vecstore.errors.SchemaError` that
  names the file and the row group, in one line of clean text::

      file "<path>": row group 1 (rows 100-199) could not be read: Corrupt snappy
      compressed data. Are you sure this is valid parquet?

  Like a corrupt footer, this fails the whole import in both error modes.
  Failures of the store itself (``FileNotFoundError``, ``PermissionError``,
  connection errors, vecstore's own errors) pass through unchanged: they are
  not the file's fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vecstore.errors import SchemaError, VecstoreError

__all__ = [
    "clean_text",
    "footer_error",
    "iter_batches",
    "open_parquet",
    "read_error",
    "read_whole",
]

# Not the file's fault: re-raised as they are.
_STORE_ERRORS: tuple[type[BaseException], ...] = (
    FileNotFoundError,
    PermissionError,
    ConnectionError,
    TimeoutError,
    VecstoreError,
)
# A source file of at most this many bytes, one chunk, is read in one call
# (one GET on an object store) by sample and scan (tasks._small).
SMALL_FILE_BYTES = 1024 * 1024
# pyarrow finds a file's footer by reading its last 64 KiB: a file no larger
# is read whole, in one call, to inspect it (the same bytes, one request).
FOOTER_BYTES = 64 * 1024

# What pyarrow raises for bytes it cannot decode (thrift errors are plain OSError).
_READ_ERRORS: tuple[type[BaseException], ...] = (pa.ArrowException, ValueError, OSError)

_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(text: str) -> str:
    """``text`` as one line of printable characters: line breaks become
    ``"; "``, other control characters a visible ``\\xNN`` escape."""
    text = _LINE_BREAKS.sub("; ", text.strip())
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def footer_error(shown: str) -> SchemaError:
    """Pinecone's message for a file whose footer does not parse."""
    return SchemaError(
        f'file "{shown}": Parquet footer could not be parsed. Are you sure this is valid parquet?',
        file=shown,
    )


def open_parquet(fh: Any, shown: str) -> pq.ParquetFile:
    """A ParquetFile over the open file ``fh`` that verifies page checksums."""
    try:
        return pq.ParquetFile(fh, page_checksum_verification=True)
    except _STORE_ERRORS:
        raise
    except _READ_ERRORS as exc:
        raise footer_error(shown) from exc


def read_error(shown: str, row_group: int, first_row: int, num_rows: int, reason: str) -> SchemaError:
    """A row group of ``shown`` that could not be decoded."""
    rows = f"rows {first_row}-{first_row + num_rows - 1}" if num_rows else "no rows"
    why = clean_text(reason).rstrip(".") or "unknown error"
    return SchemaError(
        f'file "{shown}": row group {row_group} ({rows}) could not be read: {why}. '
        "Are you sure this is valid parquet?",
        file=shown,
        row_group=row_group,
    )


def iter_batches(
    pf: pq.ParquetFile,
    shown: str,
    row_groups: Sequence[int],
    *,
    batch_size: int,
    columns: list[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """``pf.iter_batches`` over ``row_groups`` (in order); a decoding failure
    raises :func:`read_error` for the first of them that cannot be read."""
    groups = list(row_groups)
    # use_threads=False: the workers are the parallelism; pyarrow's own pool
    # only adds hand-offs (and GIL round trips on a Python file object): a
    # small file's read cost 3x the CPU with it
    batches = pf.iter_batches(
        batch_size=batch_size, row_groups=groups, columns=columns, use_threads=False
    )
    done = 0  # rows yielded so far
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except _STORE_ERRORS:
            raise
        except _READ_ERRORS as exc:
            raise _locate(pf, shown, groups, columns, done, exc) from exc
        done += batch.num_rows
        yield batch


def _locate(
    pf: pq.ParquetFile,
    shown: str,
    groups: list[int],
    columns: list[str] | None,
    done: int,
    exc: BaseException,
) -> BaseException:
    """The error naming the row group that fails: the batch that failed
    starts in the group holding row ``done`` (of ``groups``) and may span the
    next ones, so those are read one at a time (on this error path only)."""
    meta = pf.metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    starts = [sum(sizes[:g]) for g in range(len(sizes))]
    seen = 0
    candidates: list[int] = []
    for g in groups:
        if seen + sizes[g] > done or candidates:
            candidates.append(g)
        seen += sizes[g]
    if not candidates:  # pragma: no cover - the reader failed after the last row
        candidates = groups[-1:] or [0]
    for g in candidates:
        try:
            pf.read_row_group(g, columns=columns)
        except _STORE_ERRORS:
            raise
        except _READ_ERRORS as again:
            return read_error(shown, g, starts[g], sizes[g], str(again))
    # every group reads on its own (a transient failure?): blame the first candidate
    g = candidates[0]
    return read_error(shown, g, starts[g], sizes[g], str(exc))


def read_whole(
    data: bytes, row_groups: Sequence[int], columns: list[str] | None = None
) -> pa.Table:
    """Row groups of a small file whose bytes were read in one call (one GET
    on an object store instead of a footer read and ranged reads), decoded
    without pyarrow's thread pool, page checksums verified. Errors are
    pyarrow's own: callers fall back to :func:`open_parquet` and
    :func:`iter_batches`, which read again and raise the messages above."""
    pf = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True)
    return pf.read_row_groups(list(row_groups), columns=columns, use_threads=False)
