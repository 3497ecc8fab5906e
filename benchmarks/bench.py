#!/usr/bin/env python3
"""Per-operation timings of qnxsim's memory calls at 1,000 / 10,000 / 100,000 mappings.

DESIGN.md ("Qualities", Speed) asks that every operation but fork cost, at 100,000
mappings, within 2x of its cost at 1,000 mappings; SPEC R-PLACE-5 asks that placement
never scan every hole.  This script measures and prints; it asserts nothing.

The address spaces, built afresh for each size n (every mapping private anonymous and
MAP_LAZY, so none of them costs RAM; every one made by a MAP_FIXED mmap):

* *population*: n mappings of ``MAP_PAGES`` pages with a one-page hole after each, from
  PROGRAM_BASE (the default hint of private anonymous memory) upwards;
* *top*: n one-page mappings with one-page holes between them, the highest one ending
  at USER_END;
* *caller*: no mappings; it makes the mmap_peer calls into the population.

Each operation runs ``rounds`` rounds of ``iters`` iterations; a round's time divided by
``iters`` is one sample.  The cyclic garbage collector is off while an operation is
measured, as ``timeit`` does.  Every iteration leaves the address space as it found it.

Usage: ``python benchmarks/bench.py [--quick] [--sizes 1000,10000,100000]
[--rounds R] [--iters N] [--seed S] [--clock wall|cpu]``
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from qnxsim import constants as C
from qnxsim.process import Kernel, Process

PS = 4096
#: RAM of every kernel: ample for the touched pages and fork copies (below R-SYS-5's limit).
RAM = 1 << 31
#: Pages per population mapping: enough for a middle page.
MAP_PAGES = 3
#: Distance between population mappings: the mapping and its one-page hole.
STRIDE = (MAP_PAGES + 1) * PS
#: Population pages given a frame (and contents) before the read/write measurements.
TOUCHED = 256
#: The bytes of one 4 KiB write_memory.
PATTERN = bytes(range(256)) * (PS // 256)

RW = C.PROT_READ | C.PROT_WRITE
ANON = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_LAZY
FIXED = ANON | C.MAP_FIXED

DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
DEFAULT_ROUNDS, QUICK_ROUNDS = 5, 3
DEFAULT_ITERS, QUICK_ITERS = 1_000, 200

Run = Callable[[], None]
Prepare = Callable[["World", random.Random, int], tuple[Run, Run | None]]


# -- address spaces -----------------------------------------------------------------------


@dataclass
class World:
    """The kernel and processes for one size, and where their mappings are."""

    n: int
    kernel: Kernel
    pop: Process
    top: Process
    caller: Process
    pop_base: int
    user_end: int
    touched: list[int]
    pop_seconds: float
    top_seconds: float

    def mapping(self, i: int) -> int:
        """Start of the i-th population mapping."""
        return self.pop_base + i * STRIDE

    def hole(self, i: int) -> int:
        """The one-page hole after the i-th population mapping; for ``i = n - 1`` the start
        of the free space above the population."""
        return self.mapping(i) + MAP_PAGES * PS

    @property
    def top_low(self) -> int:
        """Start of the lowest mapping of the top process."""
        return self.user_end - (2 * self.n - 1) * PS


def build_population(proc: Process, base: int, n: int) -> None:
    """n MAP_FIXED mappings of MAP_PAGES pages from ``base``, a one-page hole after each."""
    mmap = proc.mmap
    size = MAP_PAGES * PS
    for i in range(n):
        mmap(base + i * STRIDE, size, RW, FIXED, C.NOFD, 0)


def build_top(proc: Process, user_end: int, n: int) -> None:
    """n one-page MAP_FIXED mappings below ``user_end``, one-page holes between them."""
    mmap = proc.mmap
    for i in range(n):
        mmap(user_end - (2 * i + 1) * PS, PS, RW, FIXED, C.NOFD, 0)


def build_world(n: int, seed: int = 0) -> World:
    """A kernel with the population, top and caller processes for size ``n`` (n >= 2)."""
    if n < 2:
        raise ValueError("a size must be at least 2 mappings")
    kernel = Kernel(ram=RAM)
    pop = kernel.spawn("/proc/boot/population", image=False)
    top = kernel.spawn("/proc/boot/top", image=False)
    caller = kernel.spawn("/proc/boot/caller", image=False)
    base = kernel.machine.arch.program_base
    user_end = kernel.machine.user_end
    t0 = time.perf_counter()
    build_population(pop, base, n)
    t1 = time.perf_counter()
    build_top(top, user_end, n)
    t2 = time.perf_counter()
    rng = random.Random(seed)
    picks = sorted(rng.sample(range(n), min(TOUCHED, n)))
    touched = [base + i * STRIDE + PS for i in picks]
    for addr in touched:
        pop.write_memory(addr, PATTERN)
    return World(n, kernel, pop, top, caller, base, user_end, touched, t1 - t0, t2 - t1)


# -- the adversarial placement requests ----------------------------------------------------


def below_request(w: World) -> tuple[Process, int, int]:
    """MAP_BELOW from inside the highest population mapping: n - 1 one-page holes lie
    below the hint, and the first two-page hole is the one below the whole population."""
    return w.pop, w.mapping(w.n - 1) + PS, ANON | C.MAP_BELOW


def above_request(w: World) -> tuple[Process, int, int]:
    """The mirror: upward from inside the lowest population mapping, n - 1 one-page holes
    above the hint, the first two-page hole above the whole population."""
    return w.pop, w.mapping(0) + PS, ANON


def fallback_request(w: World) -> tuple[Process, int, int]:
    """Upward from inside the top process's highest mapping: nothing fits above the hint,
    so the search falls back below it (R-PLACE-2), past n - 1 one-page holes."""
    return w.top, w.user_end - PS, ANON


# -- operations -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Op:
    """One measured operation: ``prepare(world, rng, iters)`` gives the timed run and an
    untimed cleanup; ``once`` operations make one call per round."""

    key: str
    name: str
    prepare: Prepare
    once: bool = False


def _mmap_nohint(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    mmap, munmap = w.pop.mmap, w.pop.munmap

    def run() -> None:
        for _ in range(iters):
            munmap(mmap(0, PS, RW, ANON, C.NOFD, 0), PS)

    return run, None


def _mmap_fixed(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    mmap, munmap = w.pop.mmap, w.pop.munmap
    addrs = [w.hole(rng.randrange(w.n - 1)) for _ in range(iters)]

    def run() -> None:
        for a in addrs:  # PROT_READ: the new page does not merge with its neighbours
            mmap(a, PS, C.PROT_READ, FIXED, C.NOFD, 0)
            munmap(a, PS)

    return run, None


def _munmap_middle(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    mmap, munmap = w.pop.mmap, w.pop.munmap
    addrs = [w.mapping(rng.randrange(w.n)) + PS for _ in range(iters)]

    def run() -> None:
        for a in addrs:  # the re-map merges the three pieces into one mapping again
            munmap(a, PS)
            mmap(a, PS, RW, FIXED, C.NOFD, 0)

    return run, None


def _mprotect_middle(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    mprotect = w.pop.mprotect
    addrs = [w.mapping(rng.randrange(w.n)) + PS for _ in range(iters)]

    def run() -> None:
        for a in addrs:
            mprotect(a, PS, C.PROT_READ)
            mprotect(a, PS, RW)

    return run, None


def _peer(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    pid = w.pop.pid
    mmap_peer, munmap_peer = w.caller.mmap_peer, w.caller.munmap_peer

    def run() -> None:
        for _ in range(iters):
            munmap_peer(pid, mmap_peer(pid, 0, PS, RW, ANON, C.NOFD, 0), PS)

    return run, None


def _read(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    read = w.pop.read_memory
    addrs = [rng.choice(w.touched) for _ in range(iters)]

    def run() -> None:
        for a in addrs:
            read(a, PS)

    return run, None


def _write(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    write = w.pop.write_memory
    addrs = [rng.choice(w.touched) for _ in range(iters)]

    def run() -> None:
        for a in addrs:
            write(a, PATTERN)

    return run, None


def _mapping_at(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    mapping_at = w.pop.mapping_at
    span = MAP_PAGES * PS
    addrs = [w.mapping(rng.randrange(w.n)) + rng.randrange(span) for _ in range(iters)]

    def run() -> None:
        for a in addrs:
            mapping_at(a)

    return run, None


def _fork(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    parent = w.pop
    children: list[int] = []

    def run() -> None:
        for _ in range(iters):
            children.append(parent.fork())

    def cleanup() -> None:
        for pid in children:
            w.kernel.process(pid).exit(0)
            parent.waitpid(pid)
        children.clear()

    return run, cleanup


def _placement(request: Callable[[World], tuple[Process, int, int]]) -> Prepare:
    def prepare(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
        proc, hint, flags = request(w)
        mmap, munmap = proc.mmap, proc.munmap
        size = 2 * PS

        def run() -> None:
            for _ in range(iters):
                munmap(mmap(hint, size, RW, flags, C.NOFD, 0), size)

        return run, None

    return prepare


OPS: tuple[Op, ...] = (
    Op("mmap", "mmap (no hint) + munmap", _mmap_nohint),
    Op("mmap_fixed", "mmap MAP_FIXED in a random hole + munmap", _mmap_fixed),
    Op("munmap_middle", "munmap middle page + MAP_FIXED re-map", _munmap_middle),
    Op("mprotect_middle", "mprotect middle page + back", _mprotect_middle),
    Op("peer", "mmap_peer + munmap_peer", _peer),
    Op("read", "read_memory 4 KiB", _read),
    Op("write", "write_memory 4 KiB", _write),
    Op("mapping_at", "mapping_at", _mapping_at),
    Op("fork", "fork", _fork, once=True),
    Op("below", "2-page mmap MAP_BELOW, holes below hint", _placement(below_request)),
    Op("above", "2-page mmap, holes above hint (mirror)", _placement(above_request)),
    Op("fallback", "2-page mmap, no fit above, holes below", _placement(fallback_request)),
)

NOTES = (
    "Each row's time is one iteration: a pair of calls where the name gives two.",
    "mmap (no hint): one page, lands in the first one-page hole above PROGRAM_BASE.",
    "MAP_FIXED: one PROT_READ page into a random one-page hole (no merge with neighbours).",
    "munmap middle: splits a 3-page mapping; the MAP_FIXED re-map merges it back.",
    "mmap_peer: a second process maps one page into the population process.",
    "read/write_memory: one page-aligned 4 KiB access to one of 256 resident pages.",
    "fork: the child is exited and reaped outside the timing; one fork per round.",
    "2-page rows: n - 1 one-page holes lie between the hint and the first fit (R-PLACE-5);",
    "  'no fit above' is an upward request with every hole above the hint too small.",
)


# -- measuring ------------------------------------------------------------------------------


#: The clocks ``--clock`` chooses from: elapsed time, or this thread's CPU time (steadier on
#: a busy machine: time spent descheduled does not count).
CLOCKS: dict[str, Callable[[], int]] = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


def measure(
    op: Op,
    w: World,
    rounds: int,
    iters: int,
    rng: random.Random,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> list[float]:
    """Microseconds per iteration, one sample per round (garbage collector off)."""
    iters = 1 if op.once else iters
    samples: list[float] = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if not op.once:  # warm up
            run, cleanup = op.prepare(w, rng, min(iters, 20))
            run()
            if cleanup is not None:
                cleanup()
        for _ in range(rounds):
            run, cleanup = op.prepare(w, rng, iters)
            t0 = clock()
            run()
            t1 = clock()
            if cleanup is not None:
                cleanup()
            samples.append((t1 - t0) / 1000 / iters)
    finally:
        if was_enabled:
            gc.enable()
    return samples


def heap_per_mapping(n: int) -> float:
    """Bytes of Python heap (tracemalloc) per mapping when n population mappings exist."""
    gc.collect()
    tracemalloc.start()
    try:
        kernel = Kernel(ram=RAM)
        proc = kernel.spawn("/proc/boot/population", image=False)
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        build_population(proc, kernel.machine.arch.program_base, n)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        assert len(proc.space.map) == n
    finally:
        tracemalloc.stop()
    return (after - before) / n


# -- output ---------------------------------------------------------------------------------


def fmt(us: float) -> str:
    if us >= 1000:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


@dataclass
class Results:
    sizes: tuple[int, ...]
    rounds: int
    iters: int
    clock: str
    samples: dict[str, dict[int, list[float]]]
    build: dict[int, tuple[float, float]]
    heap_n: int = 0
    heap_bytes: float = 0.0


def table(res: Results) -> list[str]:
    sizes = res.sizes
    ratio_head = f"ratio {size_label(sizes[-1])}/{size_label(sizes[0])}"
    head = (
        f"{'operation':<42} {'mappings':>9} {'min µs':>11} {'median µs':>11} "
        f"{'max µs':>11} {'rounds×iters':>13} {ratio_head:>14}"
    )
    lines = [head, "-" * len(head)]
    rows: list[tuple[str, dict[int, list[float]], bool]] = []
    for op in OPS:
        per = res.samples[op.key]
        rows.append((op.name, per, op.once))
        if op.key == "fork":
            per_map = {n: [s / n for s in per[n]] for n in sizes}
            rows.append(("fork, per mapping", per_map, True))
    for name, per, once in rows:
        for j, n in enumerate(sizes):
            s = per[n]
            ratio = ""
            if j == len(sizes) - 1 and len(sizes) > 1:
                ratio = f"{statistics.median(s) / statistics.median(per[sizes[0]]):.2f}"
            shape = f"{len(s)}×{1 if once else res.iters}"
            line = (
                f"{name if j == 0 else '':<42} {n:>9,} {fmt(min(s)):>11} "
                f"{fmt(statistics.median(s)):>11} {fmt(max(s)):>11} {shape:>13} {ratio:>14}"
            )
            lines.append(line.rstrip())
    return lines


def report(res: Results, out: TextIO) -> None:
    lines = ["", "Construction (n MAP_FIXED mmap calls per process, timed as a whole):"]
    lines.append(f"{'mappings':>9} {'population s':>13} {'µs/mmap':>9} {'top s':>8} {'µs/mmap':>9}")
    for n in res.sizes:
        pop_s, top_s = res.build[n]
        lines.append(
            f"{n:>9,} {pop_s:>13.2f} {pop_s / n * 1e6:>9.1f} {top_s:>8.2f} {top_s / n * 1e6:>9.1f}"
        )
    what = "elapsed time" if res.clock == "wall" else "CPU time of the thread"
    lines += ["", f"Per-operation {what} (µs per iteration; gc off while timing):", *table(res)]
    lines += [
        "",
        f"Python heap per mapping (tracemalloc, {res.heap_n:,} population mappings): "
        f"{res.heap_bytes:.0f} bytes",
        "",
        "Notes:",
        *(f"  {note}" for note in NOTES),
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


# -- command line ---------------------------------------------------------------------------


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"sizes must be integers: {text!r}") from err
    if not sizes or any(n < 2 for n in sizes):
        raise argparse.ArgumentTypeError("every size must be at least 2")
    return tuple(sorted(set(sizes)))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="sizes 1,000 and 10,000, fewer rounds")
    p.add_argument("--sizes", type=parse_sizes, default=None, help="comma-separated sizes")
    p.add_argument("--rounds", type=int, default=None, help="rounds per operation and size")
    p.add_argument("--iters", type=int, default=None, help="iterations per round")
    p.add_argument("--seed", type=int, default=0, help="seed of the random targets")
    p.add_argument(
        "--clock", choices=sorted(CLOCKS), default="wall", help="elapsed (wall) or CPU time"
    )
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.iters is None:
        args.iters = QUICK_ITERS if args.quick else DEFAULT_ITERS
    if args.rounds < 1 or args.iters < 1:
        p.error("--rounds and --iters must be at least 1")
    return args


def run_benchmark(
    sizes: Sequence[int],
    rounds: int,
    iters: int,
    seed: int = 0,
    out: TextIO | None = None,
    clock: str = "wall",
) -> Results:
    """Build each size, measure every operation on it, and the heap at the largest size."""
    res = Results(tuple(sizes), rounds, iters, clock, {op.key: {} for op in OPS}, {})
    for n in sizes:
        if out is not None:
            print(f"[n={n:,}] building ...", file=out, flush=True)
        w = build_world(n, seed)
        res.build[n] = (w.pop_seconds, w.top_seconds)
        rng = random.Random(seed)
        for op in OPS:
            res.samples[op.key][n] = measure(op, w, rounds, iters, rng, CLOCKS[clock])
            if out is not None:
                med = statistics.median(res.samples[op.key][n])
                print(f"[n={n:,}] {op.name}: {fmt(med)} µs", file=out, flush=True)
        del w
        gc.collect()
    res.heap_n = max(sizes)
    res.heap_bytes = heap_per_mapping(res.heap_n)
    return res


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    stream = out if out is not None else sys.stdout
    print(
        f"qnxsim benchmark: Python {platform.python_version()} ({platform.machine()}), "
        f"sizes {', '.join(f'{n:,}' for n in args.sizes)}, "
        f"{args.rounds} rounds × {args.iters} iterations, {args.clock} clock",
        file=stream,
    )
    res = run_benchmark(args.sizes, args.rounds, args.iters, args.seed, stream, args.clock)
    report(res, stream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
