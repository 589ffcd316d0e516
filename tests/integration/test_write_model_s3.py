"""The write-path model test (``tests/write_model.py``) on S3 (moto): fewer,
shorter runs than the local one (``tests/unit/test_write_model.py``)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from servers import Bucket
from write_model import machine

from vecstore import VecStore


@pytest.mark.s3
def test_write_model_on_s3(s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")
    runs = itertools.count()

    def open_store() -> VecStore:
        return VecStore(s3_bucket.uri(f"run{next(runs)}"), storage_options=s3_bucket.options())

    run_state_machine_as_test(
        machine(open_store),
        settings=settings(
            max_examples=6,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
