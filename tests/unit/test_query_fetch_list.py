"""fetch, list and list_paginated through the id lookup files."""

from __future__ import annotations

import numpy as np
import pytest
from test_query_support import clustered, memory_store, spec_for, write

from vecstore.errors import InvalidArgumentError
from vecstore.reader import Reader
from vecstore.schemas import FetchResponse, ListResponse

D = 6


@pytest.fixture(scope="module")
def setup() -> tuple[Reader, np.ndarray, list[str]]:
    store = memory_store()
    spec = spec_for("cosine", D)
    x = clustered(500, D, 5, seed=1)
    ids = [f"{['alpha', 'beta', 'gamma'][i % 3]}-{i:04d}" for i in range(500)]
    recs = [
        {"id": ids[i], "values": x[i].tolist(), "metadata": {"i": i} if i % 4 else None}
        for i in range(500)
    ]
    write(store, spec, recs, per_cluster=60)
    return Reader(store, spec), x, ids


def test_fetch(setup: tuple[Reader, np.ndarray, list[str]]) -> None:
    reader, x, ids = setup
    want = [ids[5], ids[123], "missing", ids[5], ids[499], ids[8]]
    res = reader.fetch(want, namespace="ns")
    assert isinstance(res, FetchResponse) and res.namespace == "ns"
    assert list(res.vectors) == [ids[5], ids[123], ids[499], ids[8]]
    v = res.vectors[ids[123]]
    assert v.id == ids[123]
    assert v.values == pytest.approx(x[123].tolist())
    assert v.metadata == {"i": 123}
    assert res.vectors[ids[8]].metadata is None
    assert reader.fetch([], namespace="ns").vectors == {}
    assert reader.fetch([ids[1]], namespace="nope").vectors == {}
    with pytest.raises(InvalidArgumentError):
        reader.fetch(ids[1], namespace="ns")  # type: ignore[arg-type]


def test_list_paginated_walks_all_ids_in_order(setup: tuple[Reader, np.ndarray, list[str]]) -> None:
    reader, _, ids = setup
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        page = reader.list_paginated(limit=64, pagination_token=token, namespace="ns")
        assert isinstance(page, ListResponse) and page.namespace == "ns"
        seen += [v.id for v in page.vectors]
        pages += 1
        if page.pagination is None:
            break
        assert page.pagination.next  # never an empty token
        token = page.pagination.next
    assert seen == sorted(ids)
    assert pages == 8


def test_list_with_prefix(setup: tuple[Reader, np.ndarray, list[str]]) -> None:
    reader, _, ids = setup
    beta = sorted(i for i in ids if i.startswith("beta-00"))
    page = reader.list_paginated(prefix="beta-00", limit=1000, namespace="ns")
    assert [v.id for v in page.vectors] == beta and page.pagination is None
    exact = reader.list_paginated(
        prefix="beta-", limit=len([i for i in ids if i.startswith("beta-")]), namespace="ns"
    )
    assert exact.pagination is None  # the last page, even when exactly full
    pages = list(reader.list(prefix="gamma", limit=50, namespace="ns"))
    assert [len(p) for p in pages] == [50, 50, 50, 16]
    assert [i for p in pages for i in p] == sorted(i for i in ids if i.startswith("gamma"))
    assert list(reader.list(prefix="zzz", namespace="ns")) == []
    assert reader.list_paginated(namespace="missing").vectors == []


def test_list_rejects_bad_arguments(setup: tuple[Reader, np.ndarray, list[str]]) -> None:
    reader, _, _ = setup
    with pytest.raises(InvalidArgumentError):
        reader.list_paginated(limit=0, namespace="ns")
    with pytest.raises(InvalidArgumentError):
        reader.list_paginated(pagination_token="not-a-token", namespace="ns")
