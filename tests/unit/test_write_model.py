"""The write path against a dict model (hypothesis stateful), local store.

See ``tests/write_model.py``; the S3 run is in
``tests/integration/test_write_model_s3.py``."""

from __future__ import annotations

import atexit
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from write_model import machine

from vecstore import VecStore


@pytest.fixture(autouse=True)
def _no_background(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "0")


_BASE = tempfile.mkdtemp(prefix="vecstore-model-")
atexit.register(shutil.rmtree, _BASE, True)


def _open() -> VecStore:
    return VecStore(tempfile.mkdtemp(dir=_BASE))


WriteModelLocal = machine(_open)
WriteModelLocal.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=35,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestWriteModelLocal = WriteModelLocal.TestCase


class TestWriteModelBackgroundBuilds(WriteModelLocal.TestCase):  # type: ignore[name-defined,misc]
    """The same with the background builder folding after a few records or 0.2 s,
    concurrently with the writes and reads of the test."""

    settings = settings(
        max_examples=15,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )

    @pytest.fixture(autouse=True)
    def _background(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("VECSTORE_BUILD_IN_BACKGROUND", "1")
        monkeypatch.setenv("VECSTORE_BUILD_TAIL_RECORDS", "6")
        monkeypatch.setenv("VECSTORE_BUILD_TAIL_SECONDS", "0.2")
