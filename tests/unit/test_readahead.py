"""pipelines/readahead.py: whole-file reads issued ahead, served in order,
errors where the plain read would raise them, nothing read twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from vecstore.errors import NotFoundError
from vecstore.pipelines.readahead import ReadAhead, read_ahead
from vecstore.storage import Store


class Slow:
    """A local store whose reads take ``delay`` s, counted, with their concurrency."""

    is_remote = True

    def __init__(self, root: Path, delay: float = 0.02) -> None:
        self.store = Store(str(root))
        self.delay = delay
        self.calls: Counter[str] = Counter()
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def read_bytes(self, key: str) -> bytes:
        with self.lock:
            self.calls[key] += 1
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            time.sleep(self.delay)
            return self.store.read_bytes(key)
        finally:
            with self.lock:
                self.now -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.fixture
def slow(tmp_path: Path) -> Slow:
    s = Slow(tmp_path / "src")
    for i in range(40):
        s.store.write_bytes(f"f{i:02d}", f"data {i}".encode())
    return s


def _ahead(slow: Slow, keys: list[str], threads: int = 4) -> ReadAhead:
    return ReadAhead(cast(Store, slow), keys, threads)


def test_reads_come_back_in_order_with_several_in_flight(slow: Slow) -> None:
    keys = [f"f{i:02d}" for i in range(40)]
    with _ahead(slow, keys) as ahead:
        got = [ahead.read_bytes(k) for k in keys]
    assert got == [f"data {i}".encode() for i in range(40)]
    assert slow.calls == Counter(keys)  # each once
    assert 2 <= slow.peak <= 4  # latencies overlapped, on the pool's threads only


def test_an_error_is_raised_where_its_read_is_asked_for(slow: Slow) -> None:
    keys = ["f00", "missing", "f01"]
    with _ahead(slow, keys) as ahead:
        assert ahead.read_bytes("f00") == b"data 0"
        with pytest.raises(NotFoundError):
            ahead.read_bytes("missing")
        assert ahead.read_bytes("f01") == b"data 1"


def test_a_key_asked_out_of_order_or_unplanned_is_read_once(slow: Slow) -> None:
    keys = [f"f{i:02d}" for i in range(30)]
    with _ahead(slow, keys, threads=2) as ahead:  # window of 4
        assert ahead.read_bytes("f20") == b"data 20"  # beyond the window: read now
        assert ahead.read_bytes("f39") == b"data 39"  # not planned: read now
        for k in keys:
            if k != "f20":
                assert ahead.read_bytes(k) == f"data {int(k[1:])}".encode()
    assert slow.calls == Counter([*keys, "f39"])


def test_close_drops_what_was_not_asked_for(slow: Slow) -> None:
    keys = [f"f{i:02d}" for i in range(40)]
    ahead = _ahead(slow, keys, threads=2)
    ahead.read_bytes("f00")
    ahead.close()
    time.sleep(5 * slow.delay)  # reads already running finish
    started = sum(slow.calls.values())
    time.sleep(5 * slow.delay)
    assert sum(slow.calls.values()) == started <= 1 + 4  # the first, then one window
    assert ahead.read_bytes("f30") == b"data 30"  # still a source: read directly


def test_only_remote_stores_read_ahead(tmp_path: Path, slow: Slow) -> None:
    assert read_ahead(Store(str(tmp_path)), ["a"], 16) is None  # local disk
    assert read_ahead(cast(Store, slow), ["a"], 1) is None  # one at a time asked for
    assert isinstance(read_ahead(cast(Store, slow), ["a"], 16), ReadAhead)
