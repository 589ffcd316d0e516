"""benchmarks/load_bench.py stays importable and its options parse (it needs
batch loads to run its load cases; the quality case runs on any import)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_load_bench_help() -> None:
    r = subprocess.run(
        [sys.executable, str(BENCH / "load_bench.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    for opt in ("--small", "--cases", "--base", "--load", "--keep"):
        assert opt in r.stdout


def test_load_bench_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    import load_bench

    full = load_bench.parse([])
    assert (full.base, full.load, full.quality_records, full.quality_namespaces) == (
        1_000_000,
        100_000,
        200_000,
        1_000,
    )
    assert full.case_set == set(load_bench.CASES)
    small = load_bench.parse(["--small", "--cases", "load,drift"])
    assert (small.base, small.load) == (100_000, 10_000)
    assert small.case_set == {"load", "drift"}
    with pytest.raises(SystemExit):
        load_bench.parse(["--cases", "nope"])
