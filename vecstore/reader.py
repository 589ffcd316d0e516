"""The query reader (filled in by the query engine)."""

from __future__ import annotations

from typing import Any

from schemas import IndexSpec
from vecstore.errors import NotImplementedYet
from vecstore.storage import Store


class Reader:
    def __init__(self, store: Store, spec: IndexSpec) -> None:
        self.store = store
        self.spec = spec

    def _todo(self, *_: Any, **__: Any) -> Any:
        raise NotImplementedYet("The query reader is not available yet")

    query = fetch = list = list_paginated = _todo
