"""Smoke test of benchmarks/bench.py: every operation runs at a tiny size.

Nothing here looks at a time: the test proves that the script builds its address spaces,
that each measured operation runs and leaves the address space as it found it, and that
the command line prints the table.
"""

from __future__ import annotations

import importlib.util
import io
import random
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from qnxsim import constants as C

BENCH_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
N = 50
PS = 4096


def _load_bench() -> ModuleType:
    name = "qnxsim_benchmarks_bench"
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, BENCH_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
OP_KEYS = [op.key for op in bench.OPS]


@pytest.fixture(scope="module")
def w() -> Any:
    return bench.build_world(N)


def test_world_layout(w: Any) -> None:
    assert len(w.pop.space.map) == N
    assert len(w.top.space.map) == N
    assert w.pop.mapping_at(w.mapping(N - 1)).size == bench.MAP_PAGES * PS
    assert w.pop.mapping_at(w.hole(0)) is None
    assert w.top.mapping_at(w.user_end - PS) is not None
    assert w.top.mapping_at(w.top_low) is not None
    w.kernel.check_invariants()


@pytest.mark.parametrize("key", OP_KEYS)
def test_operation_runs_once_and_restores(w: Any, key: str) -> None:
    op = next(op for op in bench.OPS if op.key == key)
    before_pop = w.pop.mappings()
    before_top = w.top.mappings()
    samples = bench.measure(op, w, 1, 1, random.Random(7))
    assert len(samples) == 1
    assert w.pop.mappings() == before_pop
    assert w.top.mappings() == before_top
    w.kernel.check_invariants()


def test_adversarial_requests_land_past_every_one_page_hole(w: Any) -> None:
    rw = C.PROT_READ | C.PROT_WRITE
    expected = {
        "below": w.pop_base - 2 * PS,  # the top of the hole below the population
        "above": w.hole(N - 1),  # the hole above the population
        "fallback": PS,  # the start of the hole below the top process's mappings
    }
    for key, request in (
        ("below", bench.below_request),
        ("above", bench.above_request),
        ("fallback", bench.fallback_request),
    ):
        proc, hint, flags = request(w)
        addr = proc.mmap(hint, 2 * PS, rw, flags, C.NOFD, 0)
        assert addr == expected[key], key
        proc.munmap(addr, 2 * PS)


def test_command_line_prints_the_table() -> None:
    out = io.StringIO()
    argv = ["--sizes", "20,40", "--rounds", "1", "--iters", "1", "--clock", "cpu"]
    assert bench.main(argv, out) == 0
    text = out.getvalue()
    for op in bench.OPS:
        assert op.name in text
    assert "fork, per mapping" in text
    assert "ratio 40/20" in text
    assert "Python heap per mapping" in text


def test_options() -> None:
    quick = bench.parse_args(["--quick"])
    assert quick.sizes == bench.QUICK_SIZES
    assert quick.rounds < bench.DEFAULT_ROUNDS
    full = bench.parse_args([])
    assert full.sizes == (1_000, 10_000, 100_000)
    assert full.clock == "wall"
    assert bench.parse_args(["--sizes", "100000,1000"]).sizes == (1_000, 100_000)
    with pytest.raises(SystemExit):
        bench.parse_args(["--sizes", "1"])
