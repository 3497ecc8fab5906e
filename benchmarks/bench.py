#!/usr/bin/env python3
"""Per-operation timings of qnxsim's memory calls at 1,000 / 10,000 / 100,000 mappings.

DESIGN.md ("Qualities", Speed) asks that every operation but fork cost, at 100,000
mappings, within 2x of its cost at 1,000 mappings; SPEC R-PLACE-5 asks that placement
never scan every hole.  This script measures and prints; it asserts nothing (the guard
that fails on a ratio is ``benchmarks/check_ratios.py``, ``make bench-check``).

The address spaces, built afresh for each size n (every mapping private anonymous and
MAP_LAZY, so none of them costs RAM; every one made by a MAP_FIXED mmap):

* *population*: n mappings of ``MAP_PAGES`` pages with a one-page hole after each, from
  PROGRAM_BASE (the default hint of private anonymous memory) upwards;
* *top*: n one-page mappings with one-page holes between them, the highest one ending
  at USER_END;
* *caller*: no mappings; it makes the mmap_peer calls into the population;
* *paged*: one private mapping of ``FORK_PAGES`` pages, every page written, whose fork
  gives the cost per written page (the copies of R-PROC-2).

Each operation runs ``rounds`` rounds of ``iters`` iterations; a round's time divided by
``iters`` is one sample.  The rounds are interleaved: round r of an operation runs at every
size (and, for a row with a host column, on the host at that size) before round r + 1,
so a busy spell of the machine falls on every size and on both columns alike instead of
skewing the ratios.  The cyclic garbage collector is off while an operation is measured,
as ``timeit`` does.  Every iteration leaves the address space as it found it.

Beside the timings the script prints:

* a *host kernel* column: on Linux, the same call pairs made to the host's own kernel
  through ctypes (mmap/munmap/mprotect of libc) in an address space of the same shape,
  and qnxsim's time over the host's;
* the Python heap (tracemalloc) per mapping record, of an untouched 1 GiB MAP_LAZY
  mapping, of an untouched 64 MiB mapping that is not lazy, and per touched page;
* the cost of ``Kernel.check_invariants()`` per mapping (it is O(n));
* the throughput of ``qnxsim.strategies.KernelMachine`` under hypothesis, in steps/s.

Usage: ``python benchmarks/bench.py [--quick] [--sizes 1000,10000,100000]
[--rounds R] [--iters N] [--seed S] [--clock wall|cpu] [--no-host] [--only KEYS]
[--no-memory] [--machine-examples E] [--machine-steps S]``
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from qnxsim import constants as C
from qnxsim.kernel import Kernel
from qnxsim.process import Process

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
#: One-page mappings (with one-page holes between them) that one munmap call removes.
RANGE_COUNT = 1_000
#: Written pages of the *paged* process: its fork copies each of them.
FORK_PAGES = 1_000

RW = C.PROT_READ | C.PROT_WRITE
ANON = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_LAZY
FIXED = ANON | C.MAP_FIXED

DEFAULT_SIZES = (1_000, 10_000, 100_000)
QUICK_SIZES = (1_000, 10_000)
DEFAULT_ROUNDS, QUICK_ROUNDS = 5, 3
DEFAULT_ITERS, QUICK_ITERS = 1_000, 200
#: The hypothesis budget of the KernelMachine throughput row (examples × steps at most).
MACHINE_EXAMPLES, QUICK_MACHINE_EXAMPLES = 20, 5
MACHINE_STEPS = 50
#: DESIGN.md targets, printed beside the measurements (never asserted here).
TARGET_RATIO = 2.0
TARGET_RECORD_BYTES = 400
TARGET_STEPS_PER_S = 200

#: Sizes of the memory rows.
LAZY_BIG = 1 << 30
EAGER_BIG = 64 << 20
TOUCH_PAGES = 1_000

Run = Callable[[], None]
Prepare = Callable[["World", random.Random, int], tuple[Run, Run | None]]
Clock = Callable[[], int]


# -- address spaces -----------------------------------------------------------------------


@dataclass
class World:
    """The kernel and processes for one size, and where their mappings are."""

    n: int
    kernel: Kernel
    pop: Process
    top: Process
    caller: Process
    paged: Process
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

    @property
    def range_base(self) -> int:
        """Start of the range row's mappings in the population process: halfway up the
        user address space, far above the population and far below the top process."""
        base = (self.user_end // 2) // PS * PS
        assert base > self.hole(self.n - 1) + PS, "the population reaches the range"
        return base


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


def build_range(proc: Process, base: int, count: int = RANGE_COUNT) -> int:
    """``count`` one-page MAP_FIXED mappings from ``base``, a one-page hole after each but
    the last; returns the length of the range that covers them."""
    mmap = proc.mmap
    for i in range(count):
        mmap(base + 2 * i * PS, PS, RW, FIXED, C.NOFD, 0)
    return (2 * count - 1) * PS


def build_world(n: int, seed: int = 0) -> World:
    """A kernel with the population, top and caller processes for size ``n`` (n >= 2)."""
    if n < 2:
        raise ValueError("a size must be at least 2 mappings")
    kernel = Kernel(ram=RAM)
    pop = kernel.spawn("/proc/boot/population", image=False)
    top = kernel.spawn("/proc/boot/top", image=False)
    caller = kernel.spawn("/proc/boot/caller", image=False)
    paged = kernel.spawn("/proc/boot/paged", image=False)
    paged_base = paged.mmap(0, FORK_PAGES * PS, RW, ANON, C.NOFD, 0)
    for i in range(FORK_PAGES):
        paged.write_memory(paged_base + i * PS, b"\x01")
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
    return World(n, kernel, pop, top, caller, paged, base, user_end, touched, t1 - t0, t2 - t1)


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


def _mappings_of_top_and_population(n: int) -> int:
    return 2 * n


def _mappings_of_population(n: int) -> int:
    return n


@dataclass(frozen=True)
class Op:
    """One measured operation: ``prepare(world, rng, iters)`` gives the timed run and an
    untimed cleanup; ``once`` operations make one call per round.

    ``units``: what one iteration counts for (a sample is µs per unit); ``flat``: DESIGN
    wants its cost at 100,000 mappings within 2x of its cost at 1,000 (the rows that
    ``check_ratios.py`` guards); ``per_mapping``: also print the time divided by this many
    mappings at size n; ``host``: the key of the same call pair in ``HOST_OPS``.
    """

    key: str
    name: str
    prepare: Prepare
    once: bool = False
    units: int = 1
    flat: bool = True
    per_mapping: Callable[[int], int] | None = None
    host: str | None = None


def _mmap_nohint(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    mmap, munmap = w.pop.mmap, w.pop.munmap

    def run() -> None:
        for _ in range(iters):
            munmap(mmap(0, PS, RW, ANON, C.NOFD, 0), PS)

    return run, None


def _mmap_nohint_two(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    mmap, munmap = w.top.mmap, w.top.munmap
    size = 2 * PS

    def run() -> None:
        for _ in range(iters):
            munmap(mmap(0, size, RW, ANON, C.NOFD, 0), size)

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


def _munmap_range(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    base = w.range_base
    span = build_range(w.pop, base)  # untimed: prepare runs before the clock starts
    munmap = w.pop.munmap

    def run() -> None:
        munmap(base, span)

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


def _fork_of(parent_of: Callable[[World], Process]) -> Prepare:
    """Fork the world's ``parent_of(w)``; the children exit and are reaped untimed."""

    def prepare(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
        parent = parent_of(w)
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

    return prepare


def _check_invariants(w: World, rng: random.Random, iters: int) -> tuple[Run, Run | None]:
    check = w.kernel.check_invariants

    def run() -> None:
        check()

    return run, None


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
    Op("mmap2", "mmap 2 pages (no hint) + munmap", _mmap_nohint_two, host="mmap2"),
    Op("mmap_fixed", "mmap MAP_FIXED in a random hole + munmap", _mmap_fixed, host="fixed"),
    Op("munmap_middle", "munmap middle page + MAP_FIXED re-map", _munmap_middle),
    Op(
        "munmap_range",
        "munmap of 1,000 mappings, per mapping",
        _munmap_range,
        once=True,
        units=RANGE_COUNT,
    ),
    Op("mprotect_middle", "mprotect middle page + back", _mprotect_middle, host="mprotect"),
    Op("peer", "mmap_peer + munmap_peer, large target", _peer),
    Op("read", "read_memory 4 KiB", _read),
    Op("write", "write_memory 4 KiB", _write),
    Op("mapping_at", "mapping_at", _mapping_at),
    Op(
        "fork",
        "fork",
        _fork_of(lambda w: w.pop),
        once=True,
        flat=False,
        per_mapping=_mappings_of_population,
    ),
    Op(
        "fork_pages",
        f"fork of {FORK_PAGES:,} written pages, per page",
        _fork_of(lambda w: w.paged),
        once=True,
        units=FORK_PAGES,
        flat=False,
    ),
    Op(
        "check",
        "check_invariants()",
        _check_invariants,
        once=True,
        flat=False,
        per_mapping=_mappings_of_top_and_population,
    ),
    Op("below", "2-page mmap MAP_BELOW, holes below hint", _placement(below_request)),
    Op("above", "2-page mmap, holes above hint (mirror)", _placement(above_request)),
    Op("fallback", "2-page mmap, no fit above, holes below", _placement(fallback_request)),
)
#: The rows DESIGN.md wants flat (every operation but fork; check_invariants is O(n)).
FLAT_OPS: tuple[Op, ...] = tuple(op for op in OPS if op.flat)

NOTES = (
    "Each row's time is one iteration: a pair of calls where the name gives two.",
    "mmap (no hint): one page, lands in the first one-page hole above PROGRAM_BASE.",
    "mmap 2 pages (no hint): in the top process, whose n mappings lie below USER_END.",
    "MAP_FIXED: one PROT_READ page into a random one-page hole (no merge with neighbours).",
    "munmap middle: splits a 3-page mapping; the MAP_FIXED re-map merges it back.",
    f"munmap of {RANGE_COUNT:,} mappings: one munmap of a range holding {RANGE_COUNT:,} "
    "one-page mappings",
    "  with one-page holes, far from the population (same process); they are re-made",
    "  outside the timing; µs per removed mapping, one call per round.",
    "mmap_peer: a second process maps one page into the population process.",
    "read/write_memory: one page-aligned 4 KiB access to one of 256 resident pages.",
    "fork: the child is exited and reaped outside the timing; one fork per round.",
    f"fork of {FORK_PAGES:,} written pages: a process with one mapping whose every page",
    "  holds data, so the fork copies each (R-PROC-2); µs per page, fork overhead included.",
    "check_invariants: the whole kernel, one call per round; per mapping of the population",
    "  and top processes (2n mappings).",
    "2-page rows: n - 1 one-page holes lie between the hint and the first fit (R-PLACE-5);",
    "  'no fit above' is an upward request with every hole above the hint too small.",
)


# -- the host kernel ------------------------------------------------------------------------

#: The HOST kernel's constants (Linux's own values), used only to call the host's mmap,
#: munmap and mprotect through ctypes for the comparison column.  They are not QNX's
#: (qnxsim.constants holds those) and never reach qnxsim.
HOST_PROT_READ = 0x1
HOST_PROT_WRITE = 0x2
HOST_MAP_PRIVATE = 0x2
HOST_MAP_ANONYMOUS = 0x20
HOST_MAP_FIXED = 0x10
HOST_RW = HOST_PROT_READ | HOST_PROT_WRITE
HOST_ANON = HOST_MAP_PRIVATE | HOST_MAP_ANONYMOUS
#: Linux's default vm.max_map_count, when /proc does not tell.
HOST_DEFAULT_MAX_MAP_COUNT = 65_530


class HostKernel:
    """The host's mmap, munmap and mprotect, called through ctypes (Linux only)."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self.mmap = libc.mmap
        self.mmap.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_long,
        ]
        self.mmap.restype = ctypes.c_void_p
        self.munmap = libc.munmap
        self.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        self.munmap.restype = ctypes.c_int
        self.mprotect = libc.mprotect
        self.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        self.mprotect.restype = ctypes.c_int
        #: MAP_FAILED, ``(void *) -1``, as ctypes returns it.
        self.failed = ctypes.c_void_p(-1).value
        self.page_size = os.sysconf("SC_PAGESIZE")

    @staticmethod
    def open() -> tuple[HostKernel | None, str]:
        """The host kernel, or None and why it cannot be used."""
        if not sys.platform.startswith("linux"):
            return None, f"not Linux ({sys.platform})"
        try:
            return HostKernel(ctypes.CDLL(None, use_errno=True)), "ok"
        except (OSError, AttributeError, ValueError) as err:
            return None, f"ctypes cannot find libc ({err})"

    def error(self, call: str) -> OSError:
        errno = ctypes.get_errno()
        return OSError(errno, f"host {call}: {os.strerror(errno)}")

    def map(self, addr: int, size: int, prot: int, flags: int) -> int:
        got = self.mmap(addr or None, size, prot, flags, -1, 0)
        if got is None or got == self.failed:
            raise self.error("mmap")
        return int(got)

    def unmap(self, addr: int, size: int) -> None:
        if self.munmap(addr, size) != 0:
            raise self.error("munmap")

    @staticmethod
    def mapping_cap() -> int:
        """How many mappings a host layout may have: half of vm.max_map_count, leaving the
        rest to the Python process itself and to the splits the rows make."""
        try:
            limit = int(Path("/proc/sys/vm/max_map_count").read_text())
        except (OSError, ValueError):
            limit = HOST_DEFAULT_MAX_MAP_COUNT
        return max(2, limit // 2)


@dataclass
class HostLayout:
    """The population's shape in the host process: ``count`` mappings of MAP_PAGES host
    pages, a one-page hole after each, cut out of one anonymous reservation."""

    host: HostKernel
    base: int
    count: int

    @property
    def stride(self) -> int:
        return (MAP_PAGES + 1) * self.host.page_size

    def mapping(self, i: int) -> int:
        return self.base + i * self.stride

    def hole(self, i: int) -> int:
        return self.mapping(i) + MAP_PAGES * self.host.page_size

    def close(self) -> None:
        self.host.unmap(self.base, self.count * self.stride)


def build_host_layout(host: HostKernel, n: int, layouts: int = 1) -> HostLayout:
    """A private anonymous reservation of ``count`` strides (untouched, so it costs no
    RAM) with the last page of each stride unmapped: ``count = min(n, mapping_cap() //
    layouts)`` when ``layouts`` of them exist at once."""
    count = max(2, min(n, HostKernel.mapping_cap() // layouts))
    stride = (MAP_PAGES + 1) * host.page_size
    base = host.map(0, count * stride, HOST_RW, HOST_ANON)
    layout = HostLayout(host, base, count)
    try:
        for i in range(count):
            host.unmap(layout.hole(i), host.page_size)
    except OSError:
        layout.close()
        raise
    return layout


HostPrepare = Callable[[HostLayout, random.Random, int], Run]


def _host_mmap2(lay: HostLayout, rng: random.Random, iters: int) -> Run:
    mmap, munmap, failed = lay.host.mmap, lay.host.munmap, lay.host.failed
    size = 2 * lay.host.page_size

    def run() -> None:
        for _ in range(iters):
            addr = mmap(None, size, HOST_RW, HOST_ANON, -1, 0)
            if addr is None or addr == failed or munmap(addr, size) != 0:
                raise lay.host.error("mmap/munmap")

    return run


def _host_fixed(lay: HostLayout, rng: random.Random, iters: int) -> Run:
    mmap, munmap, failed = lay.host.mmap, lay.host.munmap, lay.host.failed
    ps = lay.host.page_size
    flags = HOST_ANON | HOST_MAP_FIXED
    addrs = [lay.hole(rng.randrange(lay.count - 1)) for _ in range(iters)]

    def run() -> None:
        for a in addrs:  # PROT_READ: the new page does not merge with its neighbours
            got = mmap(a, ps, HOST_PROT_READ, flags, -1, 0)
            if got == failed or munmap(a, ps) != 0:
                raise lay.host.error("mmap MAP_FIXED/munmap")

    return run


def _host_mprotect(lay: HostLayout, rng: random.Random, iters: int) -> Run:
    mprotect = lay.host.mprotect
    ps = lay.host.page_size
    addrs = [lay.mapping(rng.randrange(lay.count)) + ps for _ in range(iters)]

    def run() -> None:
        for a in addrs:
            if mprotect(a, ps, HOST_PROT_READ) != 0 or mprotect(a, ps, HOST_RW) != 0:
                raise lay.host.error("mprotect")

    return run


#: The host's versions of the rows whose ``Op.host`` names them.
HOST_OPS: dict[str, HostPrepare] = {
    "mmap2": _host_mmap2,
    "fixed": _host_fixed,
    "mprotect": _host_mprotect,
}


# -- measuring ------------------------------------------------------------------------------


#: The clocks ``--clock`` chooses from: elapsed time, or this thread's CPU time (steadier on
#: a busy machine: time spent descheduled does not count).
CLOCKS: dict[str, Clock] = {"wall": time.perf_counter_ns, "cpu": time.thread_time_ns}


def sample(
    prepare: Callable[[int], tuple[Run, Run | None]],
    rounds: int,
    iters: int,
    clock: Clock = time.perf_counter_ns,
    *,
    once: bool = False,
    units: int = 1,
) -> list[float]:
    """Microseconds per unit, one sample per round (garbage collector off).

    ``prepare(iters)`` gives the run to time and an untimed cleanup; ``once`` makes one
    call per round and skips the warm-up."""
    iters = 1 if once else iters
    samples: list[float] = []
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        if not once:  # warm up
            run, cleanup = prepare(min(iters, 20))
            run()
            if cleanup is not None:
                cleanup()
        for _ in range(rounds):
            run, cleanup = prepare(iters)
            t0 = clock()
            run()
            t1 = clock()
            if cleanup is not None:
                cleanup()
            samples.append((t1 - t0) / 1000 / iters / units)
    finally:
        if was_enabled:
            gc.enable()
    return samples


def measure(
    op: Op,
    w: World,
    rounds: int,
    iters: int,
    rng: random.Random,
    clock: Clock = time.perf_counter_ns,
) -> list[float]:
    """Microseconds per iteration (per unit) of ``op`` on ``w``, one sample per round."""
    return sample(
        lambda k: op.prepare(w, rng, k), rounds, iters, clock, once=op.once, units=op.units
    )


def measure_host(
    key: str,
    lay: HostLayout,
    rounds: int,
    iters: int,
    rng: random.Random,
    clock: Clock = time.perf_counter_ns,
) -> list[float]:
    """Microseconds per call pair of the host's ``HOST_OPS[key]``, one sample per round."""
    prepare = HOST_OPS[key]
    return sample(lambda k: (prepare(lay, rng, k), None), rounds, iters, clock)


def heap_delta(fn: Callable[[], object]) -> int:
    """Bytes of Python heap that ``fn()`` leaves allocated (tracemalloc must be on)."""
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    fn()
    gc.collect()
    return tracemalloc.get_traced_memory()[0] - before


def heap_per_mapping(n: int) -> float:
    """Bytes of Python heap (tracemalloc) per mapping when n population mappings exist."""
    gc.collect()
    tracemalloc.start()
    try:
        kernel = Kernel(ram=RAM)
        proc = kernel.spawn("/proc/boot/population", image=False)
        base = kernel.machine.arch.program_base
        grown = heap_delta(lambda: build_population(proc, base, n))
        assert len(proc.space.map) == n
    finally:
        tracemalloc.stop()
    return grown / n


@dataclass
class Memory:
    """Python heap (tracemalloc) figures, in bytes."""

    n: int
    per_record: float
    lazy_big: int
    eager_big: int
    per_touched_page: float


def measure_memory(n: int) -> Memory:
    """The memory rows: per mapping record at n mappings, an untouched LAZY_BIG MAP_LAZY
    mapping, an untouched EAGER_BIG mapping without MAP_LAZY, and per page when one byte
    is written to each of TOUCH_PAGES pages of a lazy mapping."""
    per_record = heap_per_mapping(n)
    gc.collect()
    tracemalloc.start()
    try:
        kernel = Kernel(ram=RAM)
        proc = kernel.spawn("/proc/boot/memory", image=False)
        eager = C.MAP_PRIVATE | C.MAP_ANON
        for flags in (ANON, eager):  # warm up: first-use caches are not the calls' cost
            addr = proc.mmap(0, 2 * PS, RW, flags, C.NOFD, 0)
            proc.write_memory(addr, b"\x01")
            proc.munmap(addr, 2 * PS)
        got: list[int] = []

        def map_untouched(size: int, flags: int) -> None:
            got.append(proc.mmap(0, size, RW, flags, C.NOFD, 0))

        lazy_big = heap_delta(lambda: map_untouched(LAZY_BIG, ANON))
        proc.munmap(got.pop(), LAZY_BIG)
        eager_big = heap_delta(lambda: map_untouched(EAGER_BIG, eager))
        proc.munmap(got.pop(), EAGER_BIG)
        map_untouched(TOUCH_PAGES * PS, ANON)
        base = got.pop()
        write = proc.write_memory

        def touch() -> None:
            for i in range(TOUCH_PAGES):
                write(base + i * PS, b"\x01")

        touched = heap_delta(touch)
        proc.munmap(base, TOUCH_PAGES * PS)
    finally:
        tracemalloc.stop()
    return Memory(n, per_record, lazy_big, eager_big, touched / TOUCH_PAGES)


@dataclass
class Throughput:
    """A KernelMachine run: how many examples and steps, in how long; or why it failed."""

    examples: int
    steps: int
    seconds: float
    max_examples: int
    step_count: int
    error: str | None = None

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def machine_throughput(
    max_examples: int = MACHINE_EXAMPLES,
    step_count: int = MACHINE_STEPS,
    clock: Clock = time.perf_counter_ns,
) -> Throughput:
    """Run ``qnxsim.strategies.KernelMachine`` as shipped under
    ``run_state_machine_as_test`` with a fixed, derandomized budget and count its steps.

    The count comes from one more invariant: hypothesis checks invariants after every step
    (and, with an ``initialize`` rule such as KernelMachine's ``first_mapping``, not
    before the first), so its calls are the steps.  Generation only: a failure is
    reported, not shrunk."""
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis.stateful import invariant, run_state_machine_as_test

    from qnxsim.strategies import KernelMachine

    counts = {"examples": 0, "steps": 0}

    class CountingMachine(KernelMachine):
        def __init__(self) -> None:
            super().__init__()
            counts["examples"] += 1

        @invariant()
        def count_step(self) -> None:
            counts["steps"] += 1

    budget = settings(
        max_examples=max_examples,
        stateful_step_count=step_count,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    error = None
    t0 = clock()
    try:
        run_state_machine_as_test(CountingMachine, settings=budget)
    except Exception as err:  # a broken kernel: report it, keep the other rows
        first = str(err).strip().splitlines()
        error = f"{type(err).__name__}: {first[0] if first else ''}"
    seconds = (clock() - t0) / 1e9
    return Throughput(counts["examples"], counts["steps"], seconds, max_examples, step_count, error)


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
class HostResults:
    """The host-kernel column: samples per ``HOST_OPS`` key and size, or why there are
    none (``available`` False: the column prints n/a)."""

    available: bool
    note: str
    samples: dict[str, dict[int, list[float]]] = field(default_factory=dict)
    mappings: dict[int, int] = field(default_factory=dict)


@dataclass
class Results:
    sizes: tuple[int, ...]
    rounds: int
    iters: int
    clock: str
    samples: dict[str, dict[int, list[float]]]
    build: dict[int, tuple[float, float]]
    ops: tuple[Op, ...] = OPS
    host: HostResults | None = None
    memory: Memory | None = None
    machine: Throughput | None = None


def median_ratio(per: dict[int, list[float]], sizes: Sequence[int]) -> float:
    """Median at the largest size over median at the smallest."""
    return statistics.median(per[sizes[-1]]) / statistics.median(per[sizes[0]])


def flat_ratios(res: Results) -> dict[str, float]:
    """The median ratio (largest size / smallest) of every measured flat row, by key."""
    return {
        op.key: median_ratio(res.samples[op.key], res.sizes)
        for op in res.ops
        if op.flat and len(res.sizes) > 1
    }


def table(res: Results) -> list[str]:
    sizes = res.sizes
    host = res.host
    names = [op.name + (", per mapping" if op.per_mapping else "") for op in res.ops]
    width = max(42, *(len(name) for name in names))
    ratio_head = f"ratio {size_label(sizes[-1])}/{size_label(sizes[0])}"
    head = (
        f"{'operation':<{width}} {'mappings':>9} {'min µs':>11} {'median µs':>11} "
        f"{'max µs':>11} {'rounds×iters':>13} {ratio_head:>14}"
    )
    if host is not None:
        head += f" {'host µs':>9} {'qnxsim/host':>11}"
    lines = [head, "-" * len(head)]
    rows: list[tuple[str, dict[int, list[float]], bool, str | None]] = []
    for op in res.ops:
        per = res.samples[op.key]
        rows.append((op.name, per, op.once, op.host))
        if op.per_mapping is not None:
            div = op.per_mapping
            per_map = {n: [s / div(n) for s in per[n]] for n in sizes}
            rows.append((f"{op.name}, per mapping", per_map, True, None))
    for name, per, once, host_key in rows:
        for j, n in enumerate(sizes):
            s = per[n]
            med = statistics.median(s)
            ratio = ""
            if j == len(sizes) - 1 and len(sizes) > 1:
                ratio = f"{median_ratio(per, sizes):.2f}"
            shape = f"{len(s)}×{1 if once else res.iters}"
            line = (
                f"{name if j == 0 else '':<{width}} {n:>9,} {fmt(min(s)):>11} "
                f"{fmt(med):>11} {fmt(max(s)):>11} {shape:>13} {ratio:>14}"
            )
            if host is not None and host_key is not None:
                if host.available:
                    h = statistics.median(host.samples[host_key][n])
                    line += f" {fmt(h):>9} {med / h:>11.1f}"
                else:
                    line += f" {'n/a':>9} {'n/a':>11}"
            lines.append(line.rstrip())
    return lines


def memory_lines(mem: Memory) -> list[str]:
    rec = mem.per_record
    return [
        "Python heap (tracemalloc; bytes left allocated by the calls):",
        f"  per mapping record, {mem.n:,} population mappings: {rec:,.0f} "
        f"(target < {TARGET_RECORD_BYTES})",
        f"  untouched {LAZY_BIG >> 30} GiB private anonymous MAP_LAZY mapping: "
        f"{mem.lazy_big:,} (one mapping record: {rec:,.0f})",
        f"  untouched {EAGER_BIG >> 20} MiB private anonymous mapping, not lazy: "
        f"{mem.eager_big:,} (one mapping record: {rec:,.0f})",
        f"  per touched 4 KiB page (one byte written to each of {TOUCH_PAGES:,} pages): "
        f"{mem.per_touched_page:,.0f} (about {PS:,})",
    ]


def machine_lines(t: Throughput, clock: str) -> list[str]:
    what = "elapsed" if clock == "wall" else "CPU"
    head = (
        "Property-test throughput: KernelMachine under run_state_machine_as_test "
        f"(max_examples={t.max_examples}, stateful_step_count={t.step_count}, derandomize):"
    )
    body = (
        f"  {t.steps:,} steps in {t.examples:,} examples, {t.seconds:.2f} s {what}: "
        f"{t.steps_per_second:,.0f} steps/s (target ≥ {TARGET_STEPS_PER_S})"
    )
    lines = [head, body]
    if t.error is not None:
        lines.append(f"  the run FAILED: {t.error}")
    return lines


def host_lines(res: Results) -> list[str]:
    host = res.host
    if host is None:
        return []
    if not host.available:
        return [f"Host kernel column: n/a, {host.note}."]
    counts = " / ".join(f"{host.mappings[n]:,}" for n in res.sizes)
    return [
        f"Host kernel column: {host.note}; the same call pairs through ctypes, median µs,",
        f"  in a reservation cut into {counts} three-page mappings with one-page holes",
        "  (min(n, vm.max_map_count / 2 / number of sizes)); 2-page mmap without MAP_FIXED",
        "  lands where the host puts it; qnxsim/host is qnxsim's median over the host's at",
        "  that size (their rounds alternate).",
    ]


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
    if res.host is not None:
        lines += ["", *host_lines(res)]
    if res.memory is not None:
        lines += ["", *memory_lines(res.memory)]
    if res.machine is not None:
        lines += ["", *machine_lines(res.machine, res.clock)]
    lines += ["", "Notes:", *(f"  {note}" for note in NOTES)]
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


def parse_ops(text: str) -> tuple[Op, ...]:
    """``--only``: the rows of ``OPS`` with the given keys, in table order."""
    keys = {k.strip() for k in text.split(",") if k.strip()}
    unknown = keys - {op.key for op in OPS}
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"unknown row(s) {', '.join(sorted(unknown)) or '(none given)'}; "
            f"expected some of {', '.join(op.key for op in OPS)}"
        )
    return tuple(op for op in OPS if op.key in keys)


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
    p.add_argument("--no-host", action="store_true", help="leave out the host-kernel column")
    p.add_argument(
        "--only",
        type=parse_ops,
        default=OPS,
        metavar="KEYS",
        help=f"comma-separated rows to measure, of: {', '.join(op.key for op in OPS)}",
    )
    p.add_argument(
        "--no-memory", action="store_true", help="leave out the Python heap measurements"
    )
    p.add_argument(
        "--machine-examples",
        type=int,
        default=None,
        help=f"KernelMachine examples (default {MACHINE_EXAMPLES}; 0 leaves the row out)",
    )
    p.add_argument(
        "--machine-steps",
        type=int,
        default=MACHINE_STEPS,
        help=f"KernelMachine steps per example (default {MACHINE_STEPS})",
    )
    args = p.parse_args(argv)
    if args.sizes is None:
        args.sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if args.rounds is None:
        args.rounds = QUICK_ROUNDS if args.quick else DEFAULT_ROUNDS
    if args.iters is None:
        args.iters = QUICK_ITERS if args.quick else DEFAULT_ITERS
    if args.machine_examples is None:
        args.machine_examples = QUICK_MACHINE_EXAMPLES if args.quick else MACHINE_EXAMPLES
    if args.rounds < 1 or args.iters < 1:
        p.error("--rounds and --iters must be at least 1")
    if args.machine_examples < 0 or args.machine_steps < 1:
        p.error("--machine-examples must be at least 0 and --machine-steps at least 1")
    return args


def _progress(out: TextIO | None, n: int, what: str, samples: list[float]) -> None:
    if out is not None:
        print(f"[n={n:,}] {what}: {fmt(statistics.median(samples))} µs", file=out, flush=True)


def run_benchmark(
    sizes: Sequence[int],
    rounds: int,
    iters: int,
    seed: int = 0,
    out: TextIO | None = None,
    clock: str = "wall",
    *,
    ops: Sequence[Op] = OPS,
    host: bool = True,
    memory: bool = True,
    machine_examples: int = MACHINE_EXAMPLES,
    machine_steps: int = MACHINE_STEPS,
) -> Results:
    """Build each size and measure ``ops`` on it (and, unless turned off, the host's call
    pairs at that size); then the memory rows at the largest size and the KernelMachine
    throughput (``machine_examples`` 0 leaves it out)."""
    res = Results(
        tuple(sizes), rounds, iters, clock, {op.key: {} for op in ops}, {}, ops=tuple(ops)
    )
    tick = CLOCKS[clock]
    host_kernel: HostKernel | None = None
    if host and any(op.host for op in ops):
        host_kernel, why = HostKernel.open()
        if host_kernel is None:
            res.host = HostResults(False, why)
        else:
            res.host = HostResults(True, f"{platform.system()} {platform.release()}")
    worlds: dict[int, World] = {}
    for n in sizes:
        if out is not None:
            print(f"[n={n:,}] building ...", file=out, flush=True)
        worlds[n] = build_world(n, seed)
        res.build[n] = (worlds[n].pop_seconds, worlds[n].top_seconds)
    layouts: dict[int, HostLayout] = {}
    gc.collect()
    gc.freeze()  # the worlds are long-lived: the collections around each round skip them
    try:
        if host_kernel is not None and res.host is not None:
            for n in sizes:
                layouts[n] = build_host_layout(host_kernel, n, len(sizes))
                res.host.mappings[n] = layouts[n].count
        rngs = {n: random.Random(seed) for n in sizes}
        host_rngs = {n: random.Random(seed) for n in sizes}
        for op in ops:
            per_size = res.samples[op.key]
            host_per_size = res.host.samples.setdefault(op.host, {}) if op.host and layouts else {}
            for _ in range(rounds):  # round r at every size (and on the host) before r + 1
                for n in sizes:
                    got = measure(op, worlds[n], 1, iters, rngs[n], tick)
                    per_size.setdefault(n, []).extend(got)
                    if op.host is not None and n in layouts:
                        got = measure_host(op.host, layouts[n], 1, iters, host_rngs[n], tick)
                        host_per_size.setdefault(n, []).extend(got)
            for n in sizes:
                _progress(out, n, op.name, per_size[n])
                if n in host_per_size:
                    _progress(out, n, f"host {op.name}", host_per_size[n])
    finally:
        for lay in layouts.values():
            lay.close()
        worlds.clear()
        gc.unfreeze()
        gc.collect()
    if memory:
        res.memory = measure_memory(max(sizes))
    if machine_examples > 0:
        if out is not None:
            print("KernelMachine throughput ...", file=out, flush=True)
        res.machine = machine_throughput(machine_examples, machine_steps, tick)
    return res


def banner(title: str, sizes: Sequence[int], rounds: int, iters: int, clock: str) -> str:
    """The first line of a report: what ran, on which Python, with which settings."""
    return (
        f"{title}: Python {platform.python_version()} ({platform.machine()}), "
        f"sizes {', '.join(f'{n:,}' for n in sizes)}, "
        f"{rounds} rounds × {iters} iterations, {clock} clock"
    )


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = parse_args(argv)
    stream = out if out is not None else sys.stdout
    title = "qnxsim benchmark"
    print(banner(title, args.sizes, args.rounds, args.iters, args.clock), file=stream)
    res = run_benchmark(
        args.sizes,
        args.rounds,
        args.iters,
        args.seed,
        stream,
        args.clock,
        ops=args.only,
        host=not args.no_host,
        memory=not args.no_memory,
        machine_examples=args.machine_examples,
        machine_steps=args.machine_steps,
    )
    report(res, stream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
