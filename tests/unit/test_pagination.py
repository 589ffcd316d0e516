"""The one pagination-token format (id lists and import job pages)."""

from __future__ import annotations

import base64
import json

import pytest
from test_query_support import memory_store, spec_for, write

from vecstore import pagination
from vecstore.errors import InvalidArgumentError
from vecstore.jobs import decode_token, encode_token
from vecstore.reader import Reader


@pytest.mark.parametrize("after", ["", "a", "doc-1#chunk/2", "é✓ ids", "x" * 600, "a=b=="])
def test_round_trip(after: str) -> None:
    token = pagination.encode(after)
    assert token and "=" not in token and "/" not in token and "+" not in token
    assert pagination.decode(token) == after


def test_format_is_versioned_json() -> None:
    token = pagination.encode("r42")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert json.loads(raw) == {"v": 1, "after": "r42"}


def test_none_is_the_first_page() -> None:
    assert pagination.decode(None) is None


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        "not-a-token",
        "Li4vZXRj",  # base64 of "../etc": not a token
        base64.urlsafe_b64encode(b'{"v":2,"after":"x"}').decode(),  # unknown version
        base64.urlsafe_b64encode(b'{"v":1,"after":3}').decode(),
        base64.urlsafe_b64encode(b'{"v":1}').decode(),
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        12,
    ],
)
def test_bad_tokens(token: object) -> None:
    with pytest.raises(InvalidArgumentError, match="Invalid pagination token"):
        pagination.decode(token)


def test_jobs_and_lists_share_the_format() -> None:
    job_token = encode_token("17357870450000000badc0de")
    assert pagination.decode(job_token) == "17357870450000000badc0de"
    assert decode_token(pagination.encode("17357870450000000badc0de")) == (
        "17357870450000000badc0de"
    )
    with pytest.raises(InvalidArgumentError):
        decode_token(pagination.encode("../etc"))  # a job id is alphanumeric

    store = memory_store()
    spec = spec_for("cosine", 2)
    write(store, spec, [{"id": f"r{i}", "values": [1.0, float(i)]} for i in range(5)])
    page = Reader(store, spec).list_paginated(namespace="ns", limit=2)
    assert page.pagination is not None
    assert pagination.decode(page.pagination.next) == "r1"
