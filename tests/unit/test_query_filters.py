"""The metadata filter language: parsing errors, operator semantics, pruning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from segwriter import records_to_table
from test_query_support import ref_match

from vecstore.errors import FilterError, InvalidArgumentError
from vecstore.metadata import column_stats
from vecstore.query.filters import evaluate, may_match, parse_filter
from vecstore.schemas import IndexSpec

METAS: list[dict[str, Any] | None] = [
    {"genre": "drama", "year": 2019, "rating": 7.5, "tags": ["a", "b"], "flag": True},
    {"genre": "comedy", "year": 2020, "tags": ["b"], "flag": False},
    {"genre": "documentary", "year": 2021.5, "rating": 9, "tags": []},
    {"genre": ["drama", "comedy"], "year": "2020", "flag": True},
    {"year": 2020, "rating": 3},
    None,
    {"genre": "drama", "flag": False, "tags": ["c"]},
    {"genre": 5, "year": 1999},
]

SPEC = IndexSpec(name="f", dimension=2)
TABLE = records_to_table(
    [{"id": f"r{i}", "values": [0.0, 1.0], "metadata": m} for i, m in enumerate(METAS)], SPEC
)


def run(flt: Any) -> list[int]:
    node = parse_filter(flt)
    assert node is not None

    def get(field: str, kind: str) -> pa.Array | None:
        name = f"m.{kind}.{field}"
        return TABLE.column(name).combine_chunks() if name in TABLE.column_names else None

    return np.flatnonzero(evaluate(node, get, TABLE.num_rows)).tolist()


def expected(flt: Any) -> list[int]:
    return [i for i, m in enumerate(METAS) if ref_match(m, flt)]


CASES = [
    {"genre": "drama"},
    {"genre": {"$eq": "drama"}},
    {"genre": {"$ne": "drama"}},
    {"genre": {"$in": ["comedy", "documentary"]}},
    {"genre": {"$nin": ["comedy", "documentary"]}},
    {"genre": {"$eq": 5}},
    {"year": {"$gt": 2019}},
    {"year": {"$gte": 2020}},
    {"year": {"$lt": 2020}},
    {"year": {"$lte": 2020.0}},
    {"year": {"$gte": 2019, "$lt": 2021}},
    {"year": 2020},
    {"year": {"$in": [2020, 1999]}},
    {"year": {"$eq": "2020"}},
    {"rating": {"$exists": True}},
    {"rating": {"$exists": False}},
    {"tags": "b"},
    {"tags": {"$in": ["c", "a"]}},
    {"tags": {"$nin": ["b"]}},
    {"tags": {"$ne": "b"}},
    {"tags": {"$exists": True}},
    {"flag": True},
    {"flag": {"$ne": True}},
    {"flag": {"$eq": False}},
    {"flag": {"$in": [True]}},
    {"genre": "drama", "flag": True},
    {"$and": [{"genre": "drama"}, {"year": {"$lt": 2020}}]},
    {"$or": [{"genre": "comedy"}, {"rating": {"$gte": 9}}]},
    {"$or": [{"$and": [{"genre": "drama"}, {"flag": False}]}, {"year": {"$exists": False}}]},
    {"$and": [{"$or": [{"tags": "a"}, {"tags": "c"}]}, {"genre": {"$nin": ["comedy"]}}]},
    {"missing": {"$ne": "x"}},
    {"missing": {"$nin": ["x"]}},
    {"missing": {"$exists": False}},
]


@pytest.mark.parametrize("flt", CASES, ids=[str(c) for c in CASES])
def test_operator_semantics(flt: Any) -> None:
    assert run(flt) == expected(flt)


def test_semantics_spot_checks() -> None:
    # a list field matches $eq / $in when any element matches
    assert run({"genre": "comedy"}) == [1, 3]
    # $ne / $nin: a record without the field does not match (Pinecone)
    assert 4 not in run({"genre": {"$ne": "drama"}}) and 5 not in run({"genre": {"$ne": "drama"}})
    assert run({"genre": {"$ne": "drama"}}) == [1, 2, 7]
    # kinds never mix: "2020" is not 2020, true is not 1
    assert run({"year": 2020}) == [1, 4]
    assert run({"flag": {"$eq": 1}}) == []
    # numbers are float64: 2021.5 > 2021
    assert run({"year": {"$gt": 2021}}) == [2]
    # an empty list is present
    assert 2 in run({"tags": {"$exists": True}})


@pytest.mark.parametrize(
    ("flt", "needle"),
    [
        ({"genre": {"$foo": 1}}, '"$foo" at "genre"'),
        ({"$foo": [{"a": 1}]}, '"$foo"'),
        ({"genre": {"$in": "drama"}}, '$in needs a list at "genre"'),
        ({"genre": {"$nin": 3}}, '$nin needs a list at "genre"'),
        ({"year": {"$gt": "2019"}}, '$gt needs a number at "year"'),
        ({"year": {"$lte": True}}, '$lte needs a number at "year"'),
        ({"year": {"$gte": None}}, '$gte needs a number at "year"'),
        ({"rating": {"$exists": "yes"}}, '$exists needs true or false at "rating"'),
        ({"$and": {"a": 1}}, "$and needs a non-empty list"),
        ({"$or": []}, "$or needs a non-empty list"),
        ({"$and": [1]}, "$and[0] must be an object"),
        ({"genre": {}}, 'no operator for field "genre"'),
        ({"genre": None}, '"genre"'),
        ({"genre": ["a", "b"]}, "use $in"),
        ({"genre": {"$eq": {"x": 1}}}, '$eq at "genre"'),
        ({"genre": {"$in": [["a"]]}}, 'a value of $in at "genre"'),
        ({"genre": {"$and": [{"a": 1}]}}, '"$and" at "genre"'),
        ({"$or": [{"a": 1}, {"b": {"$gt": "x"}}]}, '$gt needs a number at "b"'),
        ("genre", "expected an object"),
    ],
)
def test_malformed_filters_name_the_bad_part(flt: Any, needle: str) -> None:
    with pytest.raises(FilterError) as err:
        parse_filter(flt)
    assert needle in str(err.value)
    assert isinstance(err.value, InvalidArgumentError)


def test_empty_filter_is_no_filter() -> None:
    assert parse_filter(None) is None
    assert parse_filter({}) is None


# ----------------------------------------------------------------- pruning


def stats_of(metas: list[dict[str, Any] | None]) -> tuple[dict[str, Any], int]:
    t = records_to_table(
        [{"id": str(i), "values": [0.0, 0.0], "metadata": m} for i, m in enumerate(metas)], SPEC
    )
    return column_stats(t), t.num_rows


@pytest.mark.parametrize(
    ("flt", "can"),
    [
        ({"genre": "drama"}, True),
        ({"genre": "horror"}, False),
        ({"genre": {"$in": ["horror", "western"]}}, False),
        ({"genre": {"$in": ["horror", "comedy"]}}, True),
        ({"year": {"$gt": 2021}}, False),
        ({"year": {"$gte": 2021}}, True),
        ({"year": {"$lt": 2019}}, False),
        ({"year": 2022}, False),
        ({"year": 2020.5}, True),
        ({"flag": False}, False),
        ({"flag": True}, True),
        ({"missing": "x"}, False),
        ({"missing": {"$exists": True}}, False),
        ({"missing": {"$exists": False}}, True),
        ({"genre": {"$exists": False}}, False),
        ({"flag": {"$ne": True}}, False),
        ({"genre": {"$ne": "drama"}}, True),
        ({"$or": [{"genre": "horror"}, {"year": 2020}]}, True),
        ({"$and": [{"genre": "drama"}, {"year": {"$gt": 3000}}]}, False),
    ],
)
def test_may_match_from_stats(flt: Any, can: bool) -> None:
    metas: list[dict[str, Any] | None] = [
        {"genre": "drama", "year": 2019, "flag": True},
        {"genre": "comedy", "year": 2021, "flag": True},
    ]
    stats, n = stats_of(metas)
    node = parse_filter(flt)
    assert node is not None
    assert may_match(node, stats, n) is can


# --------------------------------------------------------------- property

values = st.one_of(
    st.sampled_from(["a", "b", "c"]),
    st.integers(0, 3),
    st.booleans(),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3),
)
metas_st = st.lists(
    st.one_of(st.none(), st.dictionaries(st.sampled_from(["x", "y", "z"]), values, max_size=3)),
    min_size=1,
    max_size=12,
)
scalar = st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 3), st.booleans())
leaf = st.one_of(
    st.builds(lambda f, v: {f: v}, st.sampled_from(["x", "y", "z"]), scalar),
    st.builds(
        lambda f, op, v: {f: {op: v}},
        st.sampled_from(["x", "y", "z"]),
        st.sampled_from(["$eq", "$ne"]),
        scalar,
    ),
    st.builds(
        lambda f, op, v: {f: {op: v}},
        st.sampled_from(["x", "y", "z"]),
        st.sampled_from(["$gt", "$gte", "$lt", "$lte"]),
        st.integers(0, 3),
    ),
    st.builds(
        lambda f, op, v: {f: {op: v}},
        st.sampled_from(["x", "y", "z"]),
        st.sampled_from(["$in", "$nin"]),
        st.lists(scalar, max_size=3),
    ),
    st.builds(lambda f, v: {f: {"$exists": v}}, st.sampled_from(["x", "y", "z"]), st.booleans()),
)
filters_st = st.recursive(
    leaf,
    lambda inner: st.builds(
        lambda op, items: {op: items},
        st.sampled_from(["$and", "$or"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(metas=metas_st, flt=filters_st)
def test_evaluate_and_pruning_agree_with_reference(
    metas: list[dict[str, Any] | None], flt: Any
) -> None:
    t = records_to_table(
        [{"id": str(i), "values": [0.0, 0.0], "metadata": m} for i, m in enumerate(metas)], SPEC
    )
    node = parse_filter(flt)
    assert node is not None

    def get(field: str, kind: str) -> pa.Array | None:
        name = f"m.{kind}.{field}"
        return t.column(name).combine_chunks() if name in t.column_names else None

    mask = evaluate(node, get, t.num_rows)
    want = [ref_match(m, flt) for m in metas]
    assert mask.tolist() == want
    if any(want):  # pruning never drops a cluster holding a match
        assert may_match(node, column_stats(t), t.num_rows)
