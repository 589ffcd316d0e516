"""The generation table the workers of ``vecstore serve --workers N`` share
(vecstore.server.fresh), with real processes on one mapped file."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")

from vecstore.server.fresh import SLOTS, Generations  # noqa: E402


def test_a_bump_is_seen_once_by_another_worker(tmp_path: Path) -> None:
    path = Generations.create(str(tmp_path))
    a, b = Generations(path), Generations(path)
    assert a.shared and b.shared
    assert b.stale("ns", "p", "docs", "n1") is None  # nothing written yet
    a.bump("ns", "p", "docs", "n1")
    assert a.stale("ns", "p", "docs", "n1") is None  # its own write: already fresh
    token = b.stale("ns", "p", "docs", "n1")
    assert token is not None
    assert b.stale("ns", "p", "docs", "n1") is not None  # until refreshed
    b.refreshed(token)
    assert b.stale("ns", "p", "docs", "n1") is None
    assert b.stale("ns", "p", "docs", "n2") is None or Generations.slot(
        "ns", "p", "docs", "n2"
    ) == Generations.slot("ns", "p", "docs", "n1")  # another key: fresh unless it collides


def test_a_write_of_another_worker_between_own_writes_is_not_missed(tmp_path: Path) -> None:
    path = Generations.create(str(tmp_path))
    a, b = Generations(path), Generations(path)
    key = ("ns", None, "docs", "")
    a.bump(*key)
    b.bump(*key)  # b never saw a's write: it must still look
    assert b.stale(*key) is not None
    assert a.stale(*key) is not None


def test_one_process_has_no_table() -> None:
    g = Generations(None)
    g.bump("ns", None, "docs", "")
    assert not g.shared and g.stale("ns", None, "docs", "") is None


def _bump_many(path: str, n: int) -> None:
    g = Generations(path)
    for _ in range(n):
        g.bump("ns", None, "docs", "hot")
    g.close()


def test_concurrent_bumps_from_processes_are_all_counted(tmp_path: Path) -> None:
    path = Generations.create(str(tmp_path))
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_bump_many, args=(path, 500)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    raw = Path(path).read_bytes()
    assert len(raw) == SLOTS * 8
    i = Generations.slot("ns", None, "docs", "hot")
    assert int.from_bytes(raw[i * 8 : i * 8 + 8], "little") == 1_500
