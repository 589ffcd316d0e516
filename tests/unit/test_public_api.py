"""The public Python API: ``__all__``, Pinecone's names, keyword-only arguments.

Every public method of ``VecStore`` and the data plane of ``Index`` rejects an
unknown keyword with a ``TypeError`` (never ignores it).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_query_support import clustered, write

import vecstore
from vecstore import (
    FetchResponse,
    Index,
    IndexStats,
    InvalidArgumentError,
    ListResponse,
    QueryResponse,
    VecStore,
)

D = 4


# ------------------------------------------------------------------ __all__
def test_all_is_sorted_and_complete() -> None:
    names = vecstore.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(vecstore, name), name
    public = {
        n
        for n in dir(vecstore)
        if not n.startswith("_") and not isinstance(getattr(vecstore, n), types.ModuleType)
    }
    assert public <= set(names), sorted(public - set(names))


def test_all_exports_the_models_and_every_error() -> None:
    for name in ("QueryResponse", "FetchResponse", "ListResponse", "IndexStats", "Metric"):
        assert name in vecstore.__all__
    errors = {
        n
        for n, v in vars(vecstore.errors).items()
        if isinstance(v, type) and issubclass(v, vecstore.VecstoreError)
    }
    assert errors <= set(vecstore.__all__), sorted(errors - set(vecstore.__all__))


def test_star_import_gives_exactly_all() -> None:
    ns: dict[str, Any] = {}
    exec("from vecstore import *", ns)  # noqa: S102 - the point of the test
    assert set(ns) - {"__builtins__"} == set(vecstore.__all__)


# --------------------------------------------------------------- signatures
def _params(fn: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(fn).parameters)


def test_query_signature_follows_pinecone() -> None:
    params = _params(Index.query)
    assert list(params) == [
        "self",
        "top_k",
        "vector",
        "id",
        "namespace",
        "filter",
        "include_values",
        "include_metadata",
        "sparse_vector",
        "nprobe",
    ]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in params.items() if n != "self")
    assert params["top_k"].default is inspect.Parameter.empty  # required, as in the SDK


@pytest.mark.parametrize(
    ("method", "keyword_only"),
    [
        (Index.list_paginated, ["prefix", "limit", "pagination_token", "namespace"]),
        (Index.list, ["prefix", "limit", "pagination_token", "namespace"]),
        (Index.describe_index_stats, ["filter"]),
        (Index.list_namespaces, ["prefix", "limit"]),
        (Index.upsert, ["namespace", "batch_size", "show_progress"]),
        (Index.upsert_from_dataframe, ["namespace", "batch_size", "show_progress"]),
        (
            Index.update,
            ["values", "sparse_values", "set_metadata", "namespace", "filter", "dry_run"],
        ),
        (Index.delete, ["delete_all", "namespace", "filter"]),
        (Index.build, ["namespace", "wait"]),
    ],
)
def test_keyword_only_signatures(method: Callable[..., Any], keyword_only: list[str]) -> None:
    params = _params(method)
    assert [n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY] == (
        keyword_only
    )
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def test_no_public_method_swallows_keywords() -> None:
    """No ``**kwargs`` on the methods this API owns (import jobs excepted: their
    own module decides their signatures)."""
    owned = {
        VecStore: [
            "create_index",
            "describe_index",
            "has_index",
            "list_indexes",
            "delete_index",
            "Index",
        ],
        Index: [
            "query",
            "fetch",
            "list",
            "list_paginated",
            "describe_index_stats",
            "list_namespaces",
            "describe_namespace",
            "upsert",
            "upsert_from_dataframe",
            "update",
            "delete",
            "build",
        ],
    }
    for cls, names in owned.items():
        for name in names:
            params = _params(getattr(cls, name)).values()
            assert not any(
                p.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
                for p in params
            ), f"{cls.__name__}.{name}"


# ----------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    vs = VecStore(str(tmp_path_factory.mktemp("store")))
    spec = vs.create_index(name="docs", dimension=D, metric="euclidean")
    x = clustered(60, D, 3, seed=2)
    recs = [{"id": f"r{i:03d}", "values": x[i].tolist(), "metadata": {"i": i}} for i in range(60)]
    write(vs.store, spec, recs, namespace="ns", per_cluster=20)
    return vs.Index("docs")


def _calls(index: Index) -> dict[str, Callable[..., Any]]:
    """Every owned public method, called with valid arguments and a misspelt keyword."""
    vs = index._vs
    return {
        "create_index": lambda **kw: vs.create_index(name="other", dimension=D, **kw),
        "describe_index": lambda **kw: vs.describe_index("docs", **kw),
        "has_index": lambda **kw: vs.has_index("docs", **kw),
        "list_indexes": lambda **kw: vs.list_indexes(**kw),
        "delete_index": lambda **kw: vs.delete_index("docs", **kw),
        "Index": lambda **kw: vs.Index("docs", **kw),
        "query": lambda **kw: index.query(vector=[0.0] * D, top_k=3, namespace="ns", **kw),
        "fetch": lambda **kw: index.fetch(["r001"], namespace="ns", **kw),
        "list_paginated": lambda **kw: index.list_paginated(namespace="ns", **kw),
        "list": lambda **kw: index.list(namespace="ns", **kw),
        "describe_index_stats": lambda **kw: index.describe_index_stats(**kw),
        "list_namespaces": lambda **kw: index.list_namespaces(**kw),
        "describe_namespace": lambda **kw: index.describe_namespace("ns", **kw),
        "upsert": lambda **kw: index.upsert([("w", [0.0] * D)], namespace="ns", **kw),
        "upsert_from_dataframe": lambda **kw: index.upsert_from_dataframe(
            [("w", [0.0] * D)], namespace="ns", **kw
        ),
        "update": lambda **kw: index.update("r001", set_metadata={"a": 1}, namespace="ns", **kw),
        "delete": lambda **kw: index.delete(ids=["r002"], namespace="ns", **kw),
        "build": lambda **kw: index.build(namespace="ns", **kw),
    }


@pytest.mark.parametrize(
    "name",
    [
        "create_index",
        "describe_index",
        "has_index",
        "list_indexes",
        "delete_index",
        "Index",
        "query",
        "fetch",
        "list_paginated",
        "list",
        "describe_index_stats",
        "list_namespaces",
        "describe_namespace",
        "upsert",
        "upsert_from_dataframe",
        "update",
        "delete",
        "build",
    ],
)
def test_unknown_keyword_is_a_type_error(index: Index, name: str) -> None:
    call = _calls(index)[name]
    with pytest.raises(TypeError, match="unexpected keyword argument 'namepsace'"):
        call(namepsace="ns")  # the typo the issue is about
    assert index._vs.has_index("docs")  # nothing happened
    assert index.describe_index_stats().total_vector_count == 60  # nothing written


def test_write_signatures_follow_pinecone() -> None:
    """The SDK's positional first arguments (vectors, id, ids) and types."""
    assert list(_params(Index.upsert))[:2] == ["self", "vectors"]
    assert list(_params(Index.update))[:2] == ["self", "id"]
    assert list(_params(Index.delete))[:2] == ["self", "ids"]
    assert _params(Index.upsert_from_dataframe)["batch_size"].default == 500
    for method in (Index.upsert, Index.update, Index.delete, Index.build):
        hints = inspect.signature(method)
        assert all(
            p.annotation is not inspect.Parameter.empty
            for n, p in hints.parameters.items()
            if n != "self"
        ), method.__name__
        assert hints.return_annotation is not inspect.Signature.empty


def test_misspelt_pagination_keyword_is_a_type_error(index: Index) -> None:
    with pytest.raises(TypeError):
        index.list_paginated(namespace="ns", paginationToken="x")  # type: ignore[call-arg]


def test_query_takes_keywords_only_and_needs_top_k(index: Index) -> None:
    with pytest.raises(TypeError):
        index.query([0.0] * D, 3)  # type: ignore[misc]
    with pytest.raises(TypeError, match="top_k"):
        index.query(vector=[0.0] * D, namespace="ns")  # type: ignore[call-arg]


def test_typed_results(index: Index) -> None:
    res = index.query(vector=[0.0] * D, top_k=3, namespace="ns", include_metadata=True)
    assert isinstance(res, QueryResponse) and len(res.matches) == 3
    assert isinstance(index.fetch(["r001"], namespace="ns"), FetchResponse)
    page = index.list_paginated(namespace="ns", limit=25)
    assert isinstance(page, ListResponse) and len(page.vectors) == 25
    pages = list(index.list(namespace="ns", limit=25))
    assert [len(p) for p in pages] == [25, 25, 10]
    assert all(isinstance(i, str) for p in pages for i in p)
    stats = index.describe_index_stats()
    assert isinstance(stats, IndexStats) and stats.total_vector_count == 60
    assert stats.metric == vecstore.Metric.EUCLIDEAN and stats.metric == "euclidean"


def test_describe_index_stats_rejects_a_filter(index: Index) -> None:
    with pytest.raises(InvalidArgumentError, match="filter"):
        index.describe_index_stats(filter={"i": {"$gt": 3}})


def test_list_namespaces_prefix_and_limit(tmp_path: Path) -> None:
    vs = VecStore(str(tmp_path))
    spec = vs.create_index(name="docs", dimension=D)
    x = np.eye(D, dtype=np.float32)
    for ns in ("b-1", "a-1", "a-2", "a-3"):
        recs = [{"id": f"r{i}", "values": x[i].tolist()} for i in range(D)]
        write(vs.store, spec, recs, namespace=ns, per_cluster=4)
    index = vs.Index("docs")
    assert [n.name for n in index.list_namespaces()] == ["a-1", "a-2", "a-3", "b-1"]
    assert [n.name for n in index.list_namespaces(prefix="a-", limit=2)] == ["a-1", "a-2"]
    with pytest.raises(InvalidArgumentError):
        index.list_namespaces(limit=0)


def test_create_index_pinecone_keywords(tmp_path: Path) -> None:
    vs = VecStore(str(tmp_path))
    spec = vs.create_index(
        name="a",
        dimension=D,
        spec={"cloud": "gcp", "region": "us-central1"},
        timeout=10,
        deletion_protection="disabled",
    )
    assert (spec.cloud, spec.region) == ("gcp", "us-central1")
    assert spec.cloud is vecstore.Cloud.GCP and spec.metric is vecstore.Metric.COSINE
    with pytest.raises(InvalidArgumentError, match="deletion_protection"):
        vs.create_index(name="b", dimension=D, deletion_protection="enabled")
    with pytest.raises(TypeError):
        vs.create_index("c", D)  # type: ignore[misc]  # dimension is a keyword
    with pytest.raises(InvalidArgumentError, match="Invalid metric 'manhattan'"):
        vs.create_index(name="d", dimension=D, metric="manhattan")
    with pytest.raises(InvalidArgumentError, match="Invalid cloud"):
        vs.create_index(name="d", dimension=D, cloud="ibm")
