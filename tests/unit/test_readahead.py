"""pipelines/readahead.py: whole-file reads issued ahead, served in order,
errors where the plain read would raise them, nothing read twice."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from vecstore.errors import NotFoundError
from vecstore.pipelines.readahead import HintAhead, ReadAhead, read_ahead
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


def test_remote_stores_use_threads_local_disks_hints(tmp_path: Path, slow: Slow) -> None:
    assert isinstance(read_ahead(cast(Store, slow), ["a"], 16), ReadAhead)
    assert isinstance(read_ahead(Store(str(tmp_path)), ["a"], 16), HintAhead)
    assert read_ahead(Store("memory://readahead"), ["a"], 16) is None  # nothing to hint
    assert read_ahead(cast(Store, slow), ["a"], 1) is None  # one at a time asked for
    assert read_ahead(Store(str(tmp_path)), ["a"], 1) is None


def test_hinted_local_reads_are_the_plain_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel is asked to read the next files ahead (each once, a window
    ahead of the reads); the reads (and a missing file's error) are those of
    the store, each file read once."""
    hinted: list[str] = []
    real_fadvise = os.posix_fadvise

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        assert advice == os.POSIX_FADV_WILLNEED
        hinted.append(os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[1])
        real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", fadvise)
    store = Store(str(tmp_path))
    keys = [f"d/f{i:03d}" for i in range(100)]
    for i, k in enumerate(keys):
        store.write_bytes(k, f"data {i}".encode())
    planned = [*keys[:50], "d/missing", *keys[50:]]
    ahead = read_ahead(store, planned, 4)
    assert isinstance(ahead, HintAhead)
    calls: Counter[str] = Counter()
    real = store.read_bytes

    def counted(key: str) -> bytes:
        calls[key] += 1
        return real(key)

    store.read_bytes = counted  # type: ignore[method-assign]
    with ahead:
        assert ahead.read_bytes(keys[0]) == b"data 0"
        assert hinted == [k.split("/")[1] for k in keys[:16]]  # a window of 4 x 4 ahead
        for i, k in enumerate(keys[1:50], 1):
            assert ahead.read_bytes(k) == f"data {i}".encode()
        with pytest.raises(NotFoundError):
            ahead.read_bytes("d/missing")
        for i, k in enumerate(keys[50:], 50):
            assert ahead.read_bytes(k) == f"data {i}".encode()
    assert calls == Counter(planned)
    assert hinted == [k.split("/")[1] for k in keys]  # the missing file: nothing to hint
