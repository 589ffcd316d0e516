"""Record-level validation of import batches: a re-export of :mod:`vecstore.records`.

The rules live at the ``vecstore`` level (writes use them too, and
``vecstore`` must not import ``vecstore.pipelines``); import them from
:mod:`vecstore.records` in new code.
"""

from __future__ import annotations

from vecstore.records import (
    MAX_ID_BYTES,
    MAX_METADATA_BYTES,
    MAX_SPARSE_INDEX,
    MAX_SPARSE_NNZ,
    REASON_CODES,
    Reject,
    ValidatedBatch,
    format_record_error,
    record_error,
    validate_batch,
)

__all__ = [
    "MAX_ID_BYTES",
    "MAX_METADATA_BYTES",
    "MAX_SPARSE_INDEX",
    "MAX_SPARSE_NNZ",
    "REASON_CODES",
    "Reject",
    "ValidatedBatch",
    "format_record_error",
    "record_error",
    "validate_batch",
]
