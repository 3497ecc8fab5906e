#!/usr/bin/env python3
"""Regression guard for DESIGN.md ("Speed"): fail when a flat operation's cost grows.

Measures the flat rows of ``bench.py`` (every operation DESIGN.md wants within 2x between
1,000 and 100,000 mappings: all but fork and check_invariants) at the given sizes, prints
the table, and exits 1 if any row's median at the largest size over its median at the
smallest exceeds ``--max-ratio``.  A separate command (``make bench-check``), not part of
``make test``: timings on a shared machine are noisy, so no unit test asserts on them.

Unlike ``bench.py``, which measures one size after the other, the guard builds every size
first and then alternates between them round by round, so that a change in the machine's
load while it runs lands on every size alike instead of on one side of the ratio.

Usage: ``python benchmarks/check_ratios.py [--sizes 1000,100000] [--max-ratio 2.0]
[--rounds R] [--iters N] [--seed S] [--clock cpu|wall]``
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
from collections.abc import Sequence
from typing import TextIO

import bench

DEFAULT_SIZES = (1_000, 100_000)
DEFAULT_MAX_RATIO = 2.0
DEFAULT_ROUNDS = 5
DEFAULT_ITERS = 300


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument(
        "--sizes",
        type=bench.parse_sizes,
        default=DEFAULT_SIZES,
        help="comma-separated sizes, at least two (default 1000,100000)",
    )
    p.add_argument(
        "--max-ratio",
        type=float,
        default=DEFAULT_MAX_RATIO,
        help=f"largest allowed median ratio, largest size / smallest (default {DEFAULT_MAX_RATIO})",
    )
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds per row and size")
    p.add_argument("--iters", type=int, default=DEFAULT_ITERS, help="iterations per round")
    p.add_argument("--seed", type=int, default=0, help="seed of the random targets")
    p.add_argument(
        "--clock",
        choices=sorted(bench.CLOCKS),
        default="cpu",
        help="CPU time of the thread (default; steadier on a busy machine) or elapsed time",
    )
    args = p.parse_args(argv)
    if len(args.sizes) < 2:
        p.error("--sizes needs at least two different sizes")
    if args.rounds < 1 or args.iters < 1:
        p.error("--rounds and --iters must be at least 1")
    if args.max_ratio <= 0:
        p.error("--max-ratio must be positive")
    return args


def measure_interleaved(
    sizes: Sequence[int],
    rounds: int,
    iters: int,
    seed: int = 0,
    out: TextIO | None = None,
    clock: str = "cpu",
    ops: Sequence[bench.Op] = bench.FLAT_OPS,
) -> bench.Results:
    """Build a world for every size, then measure each row one round at a time, going
    through the sizes in turn; ``rounds`` samples per row and size."""
    res = bench.Results(
        tuple(sizes), rounds, iters, clock, {op.key: {} for op in ops}, {}, ops=tuple(ops)
    )
    worlds: dict[int, bench.World] = {}
    for n in res.sizes:
        if out is not None:
            print(f"[n={n:,}] building ...", file=out, flush=True)
        worlds[n] = bench.build_world(n, seed)
        res.build[n] = (worlds[n].pop_seconds, worlds[n].top_seconds)
    rngs = {n: random.Random(seed) for n in res.sizes}
    tick = bench.CLOCKS[clock]
    for op in ops:
        for n in res.sizes:
            res.samples[op.key][n] = []
        for _ in range(rounds):
            for n in res.sizes:
                got = bench.measure(op, worlds[n], 1, iters, rngs[n], tick)
                res.samples[op.key][n] += got
        if out is not None:
            medians = ", ".join(
                f"{bench.fmt(statistics.median(res.samples[op.key][n]))} µs at {n:,}"
                for n in res.sizes
            )
            print(f"{op.name}: {medians}", file=out, flush=True)
    worlds.clear()
    gc.collect()
    return res


def verdict(res: bench.Results, max_ratio: float) -> tuple[list[str], bool]:
    """The lines that judge each flat row, and whether every row passed."""
    ratios = bench.flat_ratios(res)
    label = f"{bench.size_label(res.sizes[-1])}/{bench.size_label(res.sizes[0])}"
    over = [op for op in res.ops if op.flat and ratios[op.key] > max_ratio]
    lines = [f"Median ratio {label} of each flat row (limit {max_ratio:.2f}):"]
    width = max(len(op.name) for op in res.ops)
    for op in res.ops:
        if op.flat:
            mark = "FAIL" if op in over else "ok"
            lines.append(f"  {op.name:<{width}} {ratios[op.key]:>7.2f}  {mark}")
    if over:
        lines.append(f"FAIL: {len(over)} of {len(ratios)} rows over {max_ratio:.2f}")
    else:
        lines.append(f"OK: all {len(ratios)} rows within {max_ratio:.2f}")
    return lines, not over


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    stream = out if out is not None else sys.stdout
    title = "qnxsim ratio check"
    print(bench.banner(title, args.sizes, args.rounds, args.iters, args.clock), file=stream)
    res = measure_interleaved(args.sizes, args.rounds, args.iters, args.seed, stream, args.clock)
    lines, passed = verdict(res, args.max_ratio)
    what = "elapsed time" if args.clock == "wall" else "CPU time of the thread"
    head = f"Per-operation {what} (µs per iteration; gc off while timing):"
    stream.write("\n".join(["", head, *bench.table(res), "", *lines]) + "\n")
    stream.flush()
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
