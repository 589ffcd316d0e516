"""Delete files of a load: read and validate one (runs on a worker).

Layout and rules: docs/loads.md "Delete files". A delete file is a Parquet
file in ``<namespace dir>/deletes/`` with exactly one column:

- ``id``: each row deletes the record with exactly that id;
- ``prefix``: each row deletes every record whose id starts with it (all the
  chunks of a document: ``doc-17#``).

The column is a string (``string``, ``large_string``, ``string_view``,
dictionary-encoded, or a JSON extension column over one of these, as for
import ids). Anything ambiguous fails the whole load, in both error modes,
with a message naming the file, the row (counted from 0) and what was
expected: both columns, neither, another column, another type, a null, an
empty id or prefix (an empty prefix would delete the whole namespace), an id
or prefix over 512 bytes (no id is longer). Repeated values are fine.

:func:`read_delete_file` returns ``(ids, prefixes)``: one of them empty,
values unique, in the order of their first row.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from vecstore.errors import IngestError, SchemaError
from vecstore.pipelines.discover import SourceFile, display_path, type_name
from vecstore.pipelines.reading import iter_batches, open_parquet
from vecstore.schemas.arrow import as_string, is_string_type
from vecstore.storage import Store

__all__ = ["DELETE_COLUMNS", "MAX_ID_BYTES", "read_delete_file"]

DELETE_COLUMNS = ("id", "prefix")
MAX_ID_BYTES = 512
BATCH_ROWS = 65_536


def read_delete_file(source_store: Store, file: SourceFile) -> tuple[list[str], list[str]]:
    """``(ids, prefixes)`` of the delete file ``file`` (see the module doc).

    Raises :class:`~vecstore.errors.SchemaError` for the file as a whole
    (footer, columns, type) and :class:`~vecstore.errors.IngestError` with
    context ``file`` and ``row`` for a bad row; both fail the load. Store
    failures pass through unchanged.
    """
    shown = display_path(source_store, file.key)
    with source_store.open_input(file.key, readahead=False) as fh:
        pf = open_parquet(fh, shown)
        column = _column_of(shown, pf.schema_arrow)
        values: list[pa.Array] = []
        first_row = 0
        for batch in iter_batches(
            pf, shown, range(pf.metadata.num_row_groups), batch_size=BATCH_ROWS, columns=[column]
        ):
            array = as_string(batch.column(0))
            _check_rows(shown, column, array, first_row)
            values.append(array)
            first_row += batch.num_rows
    if not values:
        return [], []
    unique = pc.unique(pa.chunked_array(values, pa.string())).to_pylist()
    return (unique, []) if column == "id" else ([], unique)


def _column_of(shown: str, schema: pa.Schema) -> str:
    """The one column of a delete file, checked: name and type."""
    names = list(schema.names)
    present = [n for n in DELETE_COLUMNS if n in names]
    if len(present) == 2:
        _fail(
            shown,
            'has both an "id" and a "prefix" column: a delete file holds exactly one of them '
            '(write exact ids and id prefixes to separate files)',
        )
    others = [n for n in names if n not in DELETE_COLUMNS]
    if others:
        _fail(
            shown,
            f'Unsupported column "{others[0]}" in a delete file: it holds exactly one column, '
            '"id" (ids to delete) or "prefix" (delete every id starting with it)',
            column=others[0],
        )
    if not present:
        _fail(
            shown,
            'Missing column "id" or "prefix": a delete file holds exactly one of them '
            '("id": ids to delete; "prefix": delete every id starting with it)',
        )
    column = present[0]
    if names.count(column) > 1:
        _fail(shown, f'Duplicate column "{column}"', column=column)
    t = schema.field(column).type
    if not is_string_type(t):
        _fail(
            shown,
            f'The expected data type for column "{column}" is "STRING", but got "{type_name(t)}"',
            column=column,
        )
    return column


def _check_rows(shown: str, column: str, array: pa.Array, first_row: int) -> None:
    """Nulls, empty values and values over :data:`MAX_ID_BYTES`, found with
    Arrow kernels; the first bad row is named."""
    lengths = pc.binary_length(array)
    bad = pc.or_kleene(
        pc.is_null(array), pc.or_(pc.equal(lengths, 0), pc.greater(lengths, MAX_ID_BYTES))
    )
    bad = pc.fill_null(bad, True)
    if not pc.any(bad).as_py():
        return
    i = int(pc.index(bad, True).as_py())
    value = array[i].as_py()
    row = first_row + i
    if value is None:
        reason = f'null "{column}": every row needs a value'
    elif value == "":
        reason = (
            'empty "prefix": an empty prefix would delete every record of the namespace '
            "(to empty a namespace, delete it: `vecstore namespaces delete`)"
            if column == "prefix"
            else 'empty "id": ids have 1-512 bytes'
        )
    else:
        size = len(value.encode("utf-8"))
        reason = (
            f'"{column}" of {size} bytes: ids have at most {MAX_ID_BYTES} bytes, so it matches '
            "no record"
        )
    raise IngestError(f'delete file "{shown}", row {row}: {reason}', file=shown, row=row)


def _fail(shown: str, message: str, **context: str) -> None:
    raise SchemaError(f'delete file "{shown}": {message}', file=shown, **context)
