"""Smoke test of benchmarks/bench.py and benchmarks/check_ratios.py at a tiny size.

Nothing here looks at a time: the test proves that the script builds its address spaces,
that each measured operation (and each host-kernel call pair) runs and leaves the address
space as it found it, that the memory and KernelMachine rows run, and that both command
lines print their tables (check_ratios.py's exit status follows its threshold).
"""

from __future__ import annotations

import gc
import io
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import PS, load_script

from qnxsim import constants as C

BENCH_PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
N = 50


CHECK_PATH = BENCH_PATH.parent / "check_ratios.py"
#: The tiny KernelMachine budget of the command-line runs.
MACHINE_ARGS = ["--machine-examples", "1", "--machine-steps", "5"]


bench = load_script("qnxsim_benchmarks_bench", BENCH_PATH)
# check_ratios.py imports its neighbour as ``bench`` (it runs from benchmarks/).
sys.modules.setdefault("bench", bench)
check_ratios = load_script("qnxsim_benchmarks_check_ratios", CHECK_PATH)
OP_KEYS = [op.key for op in bench.OPS]
HOST, HOST_WHY = bench.HostKernel.open()


@pytest.fixture(scope="module", autouse=True)
def _frozen_heap() -> Iterator[None]:
    """The script runs ``gc.collect()`` before every measurement; under pytest the heap
    is large, so freeze what exists already and each collection stays cheap."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


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
    assert [m.size for m in w.paged.mappings()] == [bench.FORK_PAGES * PS]
    paged = w.paged.mappings()[0]
    assert w.paged.space.private_copies(paged.start, paged.end) == bench.FORK_PAGES * PS
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


def test_munmap_range_removes_every_mapping_of_the_range(w: Any) -> None:
    base = w.range_base
    assert base > w.hole(N - 1)
    before = len(w.pop.space.map)
    span = bench.build_range(w.pop, base)
    assert len(w.pop.space.map) == before + bench.RANGE_COUNT
    assert w.pop.mapping_at(base + span - PS) is not None
    assert w.pop.mapping_at(base + PS) is None  # one-page holes: no merging
    w.pop.munmap(base, span)
    assert len(w.pop.space.map) == before


@pytest.mark.skipif(HOST is None, reason=f"no host kernel column: {HOST_WHY}")
@pytest.mark.parametrize("key", sorted(bench.HOST_OPS))
def test_host_call_pair_runs_once(key: str) -> None:
    assert HOST is not None
    lay = bench.build_host_layout(HOST, N)
    try:
        assert lay.count == N
        samples = bench.measure_host(key, lay, 1, 1, random.Random(7))
        assert len(samples) == 1
    finally:
        lay.close()


def test_every_host_row_names_a_host_call_pair() -> None:
    hosted = {op.host for op in bench.OPS if op.host is not None}
    assert hosted == set(bench.HOST_OPS)
    assert len(hosted) == 3


def test_machine_throughput_counts_steps() -> None:
    t = bench.machine_throughput(max_examples=1, step_count=5)
    assert t.error is None
    assert t.examples >= 1
    assert 1 <= t.steps <= 5 * t.examples


def test_command_line_prints_the_table() -> None:
    out = io.StringIO()
    argv = ["--sizes", "20,40", "--rounds", "1", "--iters", "1", "--clock", "cpu", *MACHINE_ARGS]
    assert bench.main(argv, out) == 0
    text = out.getvalue()
    for op in bench.OPS:
        assert op.name in text
    assert "fork, per mapping" in text
    assert f"fork of {bench.FORK_PAGES:,} written pages, per page" in text
    assert "check_invariants(), per mapping" in text
    assert "ratio 40/20" in text
    assert "host µs" in text and "qnxsim/host" in text
    assert ("n/a" in text) == (HOST is None)
    assert "per mapping record, 40 population mappings" in text
    assert "untouched 1 GiB" in text and "untouched 64 MiB" in text
    assert "per touched 4 KiB page" in text and "(target < 400)" in text
    assert "Property-test throughput" in text and "steps/s" in text


def test_no_host_leaves_the_column_out() -> None:
    assert bench.parse_args(["--no-host"]).no_host
    assert not bench.parse_args([]).no_host
    ops = bench.OPS[:2]  # one row without a host pair, one with
    res = bench.run_benchmark((5, 6), 1, 1, ops=ops, host=False, memory=False, machine_examples=0)
    assert res.host is None and res.memory is None and res.machine is None
    out = io.StringIO()
    bench.report(res, out)
    text = out.getvalue()
    assert ops[1].name in text
    assert "host µs" not in text and "Host kernel" not in text
    assert "Property-test throughput" not in text


def test_check_ratios_exit_status_follows_the_threshold() -> None:
    out = io.StringIO()
    argv = ["--sizes", "20,40", "--rounds", "1", "--iters", "1", "--max-ratio", "1e-9"]
    assert check_ratios.main(argv, out) == 1  # every ratio exceeds a tiny limit
    text = out.getvalue()
    for op in bench.FLAT_OPS:
        assert op.name in text
    assert "fork" not in text
    assert "FAIL:" in text
    sizes = (20, 40)
    samples = {op.key: {20: [1.0], 40: [3.0 if op.key == "mmap" else 1.5]} for op in bench.FLAT_OPS}
    res = bench.Results(sizes, 1, 1, "cpu", samples, {}, ops=bench.FLAT_OPS)
    lines, passed = check_ratios.verdict(res, 2.0)
    assert not passed and lines[-1].startswith("FAIL: 1 of")
    lines, passed = check_ratios.verdict(res, 3.0)
    assert passed and lines[-1].startswith("OK")


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
    assert full.machine_examples == bench.MACHINE_EXAMPLES
    assert quick.machine_examples < bench.MACHINE_EXAMPLES
    guard = check_ratios.parse_args([])
    assert guard.sizes == (1_000, 100_000)
    assert guard.max_ratio == 2.0
    assert check_ratios.parse_args(["--sizes", "10,30", "--max-ratio", "3"]).sizes == (10, 30)
    with pytest.raises(SystemExit):
        check_ratios.parse_args(["--sizes", "1000"])


def test_only_measures_the_rows_named_and_no_memory_leaves_the_heap_out() -> None:
    chosen = bench.parse_args(["--only", "mprotect_middle, mmap2"]).only
    assert [op.key for op in chosen] == ["mmap2", "mprotect_middle"]  # table order
    assert bench.parse_args([]).only == bench.OPS
    for bad in ("mmap2,nosuchrow", ","):
        with pytest.raises(SystemExit):
            bench.parse_args(["--only", bad])
    out = io.StringIO()
    argv = ["--sizes", "20,40", "--rounds", "1", "--iters", "1", "--only", "mapping_at"]
    assert bench.main([*argv, "--no-memory", "--no-host", "--machine-examples", "0"], out) == 0
    text = out.getvalue()
    measured = {line.split("] ", 1)[1].split(":")[0] for line in text.splitlines()
                if line.startswith("[n=") and "building" not in line}  # fmt: skip
    assert measured == {"mapping_at"}
    assert "Python heap" not in text
