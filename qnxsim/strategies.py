"""Hypothesis strategies for qnxsim, and ``KernelMachine``, a ready state machine.

The strategies compose from small named pieces and shrink towards "one process, one page":
``one_of`` branches come simplest first, integers count up from the smallest and flag sets
shrink to no flags.  Values follow the QNX 8.0 profile (SPEC 18, 19) unless given a Kernel
(or a ``profile``), whose version's flags they then use; ``KernelMachine`` reads its
kernel's profile.

This module imports hypothesis.  Nothing else in qnxsim imports it, so ``import qnxsim``
works without the ``test`` extra.
"""

from __future__ import annotations

import copy
import functools
import operator
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, TypeVar

import attrs

try:
    from hypothesis import HealthCheck, Phase, settings
    from hypothesis import strategies as st
    from hypothesis.stateful import (
        Bundle,
        MultipleResults,
        RuleBasedStateMachine,
        consumes,
        initialize,
        multiple,
        precondition,
        rule,
    )
except ModuleNotFoundError as missing:  # pragma: no cover - exercised in a subprocess test
    raise ModuleNotFoundError(
        "qnxsim.strategies needs hypothesis, which comes with the test extra: "
        "pip install 'qnxsim[test]'",
        name=missing.name,
    ) from missing

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.access import MemoryFault
from qnxsim.errno import QnxError
from qnxsim.kernel import Kernel
from qnxsim.process import Process
from qnxsim.profile import PROFILES, Profile
from qnxsim.refmodel import Fault, HandleModel, KernelModel, Layout, ObjectModel, round_up
from qnxsim.render import process_lines

T = TypeVar("T")

#: What the strategies accept to learn the page size and address range from.
KernelOrPageSize = Kernel | Process | int

#: R-SYS-3: the top of a 64-bit user address space (USER_END is this minus one page).
USER_TOP_64 = 1 << 39
#: R-SYS-4: PROGRAM_BASE on the 64-bit arches.
PROGRAM_BASE_64 = 0x0800_0000

#: Valid PROT_* bits (R-MMAP-3 accepts any OR of them).
PROT_BITS = (C.PROT_READ, C.PROT_WRITE, C.PROT_EXEC, C.PROT_NOCACHE)
#: Bits outside PROT_MASK: any of them makes a prot invalid (R-MMAP-3, R-MPROT-1).
STRAY_PROT_BITS = tuple(1 << b for b in range(32) if not (1 << b) & C.PROT_MASK)
#: The flags a valid ``map_flags()`` may add to its type, simplest first.  MAP_HANDLE is
#: a known flag but left out: plain mmap refuses it (R-MMAP-5).
OPTIONAL_MAP_FLAG_NAMES = (
    "MAP_ANON", "MAP_NOINHERIT", "MAP_LAZY", "MAP_NOINIT", "MAP_FIXED", "MAP_BELOW",
    "MAP_ELF", "MAP_STACK", "MAP_PHYS",
)  # fmt: skip
#: Their values in QNX 8.0 (``optional_map_flags(profile)`` gives another version's).
OPTIONAL_MAP_FLAGS = tuple(PROFILES["8.0"].flag(n) for n in OPTIONAL_MAP_FLAG_NAMES)
#: R-MMAP-4: PROT bits other than PROT_NOCACHE (which mmap moves to prot) refused in flags.
PROT_BITS_IN_FLAGS = (C.PROT_READ, C.PROT_WRITE, C.PROT_EXEC)
#: R-MMAP-4: the reserved bits (MAP_RESERVMASK) of QNX 8.0, MAP_SYSRAM first
#: (``invalid_map_bits(profile)`` gives another version's).
RESERVED_MAP_BITS = (C.MAP_SYSRAM, *(1 << b for b in range(20, 32) if 1 << b != C.MAP_SYSRAM))
#: R-MMAP-4: bits below the reserved mask that are no MAP_* flag of QNX 8.0 and no PROT
#: bit (0x40 is MAP_NOSYNCFILE in 7.1 but nothing in 8.0; see ``invalid_map_bits``).
UNDEFINED_MAP_BITS = (0x4, 0x8, 0x40, 0x8000)
#: The flags ``mmap_args()`` draws by default: those a fresh process always accepts for
#: anonymous memory (no MAP_STACK, MAP_PHYS, whose extra rules need more than flags).
MMAP_ARGS_FLAG_NAMES = (
    "MAP_NOINHERIT", "MAP_LAZY", "MAP_NOINIT", "MAP_FIXED", "MAP_BELOW", "MAP_ELF",
)  # fmt: skip
MMAP_ARGS_FLAGS = tuple(PROFILES["8.0"].flag(n) for n in MMAP_ARGS_FLAG_NAMES)


# -- small pieces -------------------------------------------------------------------------


def _or_all(bits: Iterable[int]) -> int:
    return functools.reduce(operator.or_, bits, 0)


def _bit_sets(bits: Sequence[int], *, min_size: int = 0) -> st.SearchStrategy[int]:
    """Any OR of ``bits`` (each at most once); shrinks towards no bits."""
    if not bits:
        if min_size:
            raise ValueError("no bits to choose from")
        return st.just(0)
    return st.lists(st.sampled_from(bits), unique=True, min_size=min_size).map(_or_all)


def page_size_of(kernel_or_page_size: KernelOrPageSize) -> int:
    """The page size of a Kernel or Process, or the int given (a power of two)."""
    x = kernel_or_page_size
    if isinstance(x, Process):
        return x.kernel.page_size
    if isinstance(x, Kernel):
        return x.page_size
    if isinstance(x, bool) or not isinstance(x, int):
        raise TypeError(f"expected a Kernel, a Process or a page size, not {type(x).__name__}")
    if x <= 0 or x & (x - 1):
        raise ValueError(f"page size {x} is not a power of two")
    return x


def _user_range(kernel_or_page_size: KernelOrPageSize) -> tuple[int, int]:
    """``[USER_START, USER_END)`` of the kernel, or of a 64-bit arch for a bare page size."""
    x = kernel_or_page_size
    kernel = x.kernel if isinstance(x, Process) else x
    if isinstance(kernel, Kernel):
        return kernel.machine.user_start, kernel.machine.user_end
    ps = page_size_of(x)
    return ps, USER_TOP_64 - ps


def _program_base(kernel_or_page_size: KernelOrPageSize) -> int:
    x = kernel_or_page_size
    kernel = x.kernel if isinstance(x, Process) else x
    if isinstance(kernel, Kernel):
        return kernel.machine.arch.program_base
    return PROGRAM_BASE_64


# -- value strategies ---------------------------------------------------------------------


def prot_values(
    *, valid: bool = True, with_exec: bool = True, with_nocache: bool = True
) -> st.SearchStrategy[int]:
    """PROT_* values for mmap and mprotect.

    ``valid=True``: any OR of PROT_READ, PROT_WRITE and (unless left out) PROT_EXEC and
    PROT_NOCACHE, all of which R-MMAP-3 accepts; shrinks towards PROT_NONE.
    ``valid=False``: such a value plus at least one bit outside PROT_MASK, which mmap
    (R-MMAP-3) and mprotect (R-MPROT-1) refuse with EINVAL.

    >>> from hypothesis import find
    >>> find(prot_values(), lambda p: True)
    0
    >>> hex(find(prot_values(valid=False), lambda p: True))
    '0x1'
    """
    bits = [C.PROT_READ, C.PROT_WRITE]
    if with_exec:
        bits.append(C.PROT_EXEC)
    if with_nocache:
        bits.append(C.PROT_NOCACHE)
    good = _bit_sets(bits)
    if valid:
        return good
    return st.builds(operator.or_, good, _bit_sets(STRAY_PROT_BITS, min_size=1))


def page_counts(*, max_pages: int = 16, min_pages: int = 1) -> st.SearchStrategy[int]:
    """A number of pages in ``[min_pages, max_pages]``; shrinks towards ``min_pages``."""
    if not 0 <= min_pages <= max_pages:
        raise ValueError(f"need 0 <= min_pages ({min_pages}) <= max_pages ({max_pages})")
    return st.integers(min_pages, max_pages)


def page_aligned_addresses(
    kernel_or_page_size: KernelOrPageSize = 4096,
    *,
    min_value: int | None = None,
    max_value: int | None = None,
) -> st.SearchStrategy[int]:
    """Page-aligned addresses of pages inside the user range (R-SYS-3).

    From a Kernel (or Process) the range is that kernel's ``[USER_START, USER_END)``;
    from a bare page size it is a 64-bit arch's.  ``min_value``/``max_value`` narrow it
    (rounded inwards to pages).  Shrinks towards the lowest address.

    >>> from hypothesis import find
    >>> hex(find(page_aligned_addresses(4096), lambda a: True))
    '0x1000'
    """
    ps = page_size_of(kernel_or_page_size)
    lo, end = _user_range(kernel_or_page_size)
    hi = end - ps
    if min_value is not None:
        lo = max(lo, round_up(min_value, ps))
    if max_value is not None:
        hi = min(hi, max_value - max_value % ps)
    if lo > hi:
        raise ValueError(f"no page-aligned address in [{lo:#x}, {hi:#x}]")
    return st.integers(lo // ps, hi // ps).map(lambda n: n * ps)


def _profile_of(profile: Profile | Kernel | Process | str | None) -> Profile:
    """The profile of a Kernel or Process, the named version's, or 8.0's for None."""
    if profile is None:
        return PROFILES["8.0"]
    if isinstance(profile, str):
        if profile not in PROFILES:
            raise ValueError(
                f"unknown QNX version {profile!r} for profile=; known: {sorted(PROFILES)}"
            )
        return PROFILES[profile]
    if isinstance(profile, Process):
        return profile.kernel.profile
    if isinstance(profile, Kernel):
        return profile.profile
    return profile


def optional_map_flags(
    profile: Profile | Kernel | Process | str | None = None,
    names: Sequence[str] = OPTIONAL_MAP_FLAG_NAMES,
) -> tuple[int, ...]:
    """The values of the MAP_* flags ``names`` that ``profile`` defines (SPEC 19), in order:
    6.4 has no MAP_NOINHERIT, so it is left out there (its bit 0x20000 is MAP_NOX64K)."""
    prof = _profile_of(profile)
    return tuple(v for v in (prof.flag(n) for n in names) if v)


def invalid_map_bits(
    profile: Profile | Kernel | Process | str | None = None,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """R-MMAP-4 for ``profile`` (SPEC 19): ``(reserved bits, MAP_SYSRAM first; bits that
    are no MAP_* flag of the version and no PROT bit)``."""
    prof = _profile_of(profile)
    reserved = [1 << b for b in range(32) if (1 << b) & prof.reserved_mask & ~C.PROT_MASK]
    reserved.sort(key=lambda bit: bit != C.MAP_SYSRAM)
    taken = prof.known_map_flags | prof.reserved_mask | C.PROT_MASK
    undefined = tuple(1 << b for b in range(32) if not (1 << b) & taken)
    return tuple(reserved), undefined


def map_flags(
    valid: bool = True,
    *,
    types: Sequence[int] = (C.MAP_PRIVATE, C.MAP_SHARED),
    optional: Sequence[int] | None = None,
    profile: Profile | Kernel | Process | str | None = None,
) -> st.SearchStrategy[int]:
    """MAP_* flag words of QNX ``profile`` (a Profile, Kernel, Process or version; default
    8.0, SPEC 19).

    ``valid=True``: exactly one of ``types`` (MAP_PRIVATE first) ORed with any of
    ``optional`` (known MAP_* flags; default ``optional_map_flags(profile)``; MAP_HANDLE
    is not among them, R-MMAP-5).  Such flags pass R-MMAP-1 and R-MMAP-4.  Shrinks
    towards ``MAP_PRIVATE``.

    ``valid=False``: flags that mmap refuses with EINVAL by R-MMAP-1 or R-MMAP-4, one kind
    of fault per value, simplest kind first: a MAP_TYPE field that is neither or both of
    MAP_SHARED and MAP_PRIVATE (R-MMAP-1; not on 6.4, whose every type value is valid);
    valid flags plus a PROT bit other than PROT_NOCACHE, plus a reserved bit (the
    profile's MAP_RESERVMASK, MAP_SYSRAM first), or plus a bit that is no MAP_* flag of
    the profile (R-MMAP-4).

    >>> from hypothesis import find
    >>> find(map_flags(), lambda f: True) == C.MAP_PRIVATE
    True
    >>> find(map_flags(valid=False), lambda f: True)
    0
    >>> hex(find(map_flags(valid=False, profile="6.4"), lambda f: True))
    '0x102'
    """
    prof = _profile_of(profile)
    if optional is None:
        optional = optional_map_flags(prof)
    if not types or any(t not in (C.MAP_PRIVATE, C.MAP_SHARED) for t in types):
        raise ValueError("types must be MAP_PRIVATE and/or MAP_SHARED")
    not_optional = prof.map_type_mask | C.PROT_MASK | prof.reserved_mask | ~prof.known_map_flags
    if any(f & not_optional for f in optional):
        raise ValueError(f"optional flags must be MAP_* flags of QNX {prof.version} other "
                         "than the type")  # fmt: skip
    good = st.builds(operator.or_, st.sampled_from(tuple(types)), _bit_sets(optional))
    if valid:
        return good

    def plus(bits: Sequence[int]) -> st.SearchStrategy[int]:
        return st.builds(operator.or_, good, st.sampled_from(bits))

    reserved, undefined = invalid_map_bits(prof)
    kinds = [plus(PROT_BITS_IN_FLAGS), plus(reserved)]
    if undefined:
        kinds.append(plus(undefined))
    if not prof.map_type_compat and prof.map_type_other is None:
        mask = prof.map_type_mask
        kinds.insert(0, st.builds(operator.or_, st.sampled_from((0, mask)), _bit_sets(optional)))
    return st.one_of(kinds)


MmapArgs = tuple[int, int, int, int, int, int]


def mmap_args(
    kernel_or_page_size: KernelOrPageSize = 4096,
    *,
    max_pages: int = 16,
    fd: int | st.SearchStrategy[int] = C.NOFD,
    flags: st.SearchStrategy[int] | None = None,
    prot: st.SearchStrategy[int] | None = None,
    addresses: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[MmapArgs]:
    """``(addr, len, prot, flags, fd, off)`` tuples that mmap accepts.

    With ``fd`` NOFD (the default) the tuple maps anonymous memory (MAP_ANON set, ``off``
    0) and a fresh process with the RAM for ``max_pages`` pages accepts every one.  With
    an fd (an int or a strategy), MAP_ANON is never set and ``off`` is a page multiple
    below ``max_pages`` pages; the fd must be open for reading and writing.

    ``len`` is a whole number of pages (up to ``max_pages``) first, then any byte count up
    to that.  ``flags`` default to valid ``map_flags`` with MAP_NOINHERIT, MAP_LAZY,
    MAP_NOINIT, MAP_FIXED, MAP_BELOW or MAP_ELF (those the kernel's profile defines;
    8.0's for a bare page size); ``prot`` to ``prot_values()``.
    ``addr``: with MAP_FIXED, one of ``addresses`` (default: page-aligned addresses that
    leave room for ``len``); otherwise 0 (no hint) first, then one of them as a hint.

    Shrinks to ``(0, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANON, NOFD, 0)``.
    """
    ps = page_size_of(kernel_or_page_size)
    _, end = _user_range(kernel_or_page_size)
    if addresses is None:
        addresses = page_aligned_addresses(kernel_or_page_size, max_value=end - max_pages * ps)
    if flags is None:
        x = kernel_or_page_size
        prof = _profile_of(x if isinstance(x, Kernel | Process) else None)
        flags = map_flags(optional=optional_map_flags(prof, MMAP_ARGS_FLAG_NAMES), profile=prof)
    flag_words = flags
    prots = prot if prot is not None else prot_values()
    fds = fd if isinstance(fd, st.SearchStrategy) else st.just(fd)
    lengths = st.one_of(
        page_counts(max_pages=max_pages).map(lambda n: n * ps), st.integers(1, max_pages * ps)
    )
    hints = st.one_of(st.just(0), addresses)

    @st.composite
    def build(draw: st.DrawFn) -> MmapArgs:
        length = draw(lengths)
        p = draw(prots)
        f = draw(flag_words)
        fdv = draw(fds)
        if fdv == C.NOFD:
            f |= C.MAP_ANON
            off = 0
        else:
            f &= ~C.MAP_ANON
            off = draw(st.integers(0, max_pages - 1)) * ps
        addr = draw(addresses if f & C.MAP_FIXED else hints)
        return addr, length, p, f, fdv, off

    return build()


# -- call sequences -----------------------------------------------------------------------


@attrs.frozen
class Call:
    """One step of a call sequence: process number ``proc`` makes call ``name``.

    ``proc`` (and ``target`` in ``args``) index the processes made so far, modulo their
    count, so any value names a live process.  ``args`` by ``name``:

    - ``mmap``: an ``mmap_args()`` tuple; ``mmap_peer``: ``(target, *mmap_args)``;
    - ``munmap``: ``(mapping, page, pages)``; ``munmap_peer``: ``(target, mapping, page,
      pages)``; ``mprotect``: ``(mapping, page, pages, prot)``: the range starts ``page``
      pages into mapping number ``mapping`` of the process (modulo their count; at
      PROGRAM_BASE when it has none);
    - ``write_memory``: ``(mapping, page, value)`` stores 8 bytes of ``value`` there;
      ``read_memory``: ``(mapping, page)`` reads 8 bytes;
    - ``fork``, ``exit``: ``()``; ``spawn``: ``(uid,)``, a new process with an empty
      address space.
    """

    name: str
    proc: int = 0
    args: tuple[int, ...] = ()


#: Every call ``run_calls`` knows, in the order ``calls()`` tries them (simplest first).
CALL_NAMES = (
    "mmap", "write_memory", "read_memory", "munmap", "mprotect", "fork", "spawn",
    "mmap_peer", "munmap_peer", "exit",
)  # fmt: skip


def calls(
    kernel_or_page_size: KernelOrPageSize = 4096,
    *,
    max_pages: int = 4,
    max_processes: int = 3,
    names: Sequence[str] = CALL_NAMES,
) -> st.SearchStrategy[Call]:
    """One ``Call`` among ``names``; shrinks towards a one-page mmap by process 0.

    MAP_FIXED and hint addresses lie in the 64 pages from PROGRAM_BASE, where private
    anonymous memory goes, so that calls meet each other's mappings.
    """
    unknown = set(names) - set(CALL_NAMES)
    if unknown or not names:
        raise ValueError(f"unknown call names {sorted(unknown)}; known: {CALL_NAMES}")
    ps = page_size_of(kernel_or_page_size)
    base = _program_base(kernel_or_page_size)
    window = page_aligned_addresses(
        kernel_or_page_size, min_value=base, max_value=base + (64 - max_pages) * ps
    )
    args = mmap_args(kernel_or_page_size, max_pages=max_pages, addresses=window)
    proc = st.integers(0, max_processes - 1)
    mapping = st.integers(0, 7)
    page = st.integers(0, max_pages)
    pages = page_counts(max_pages=max_pages)

    def call(name: str, *parts: st.SearchStrategy[Any]) -> st.SearchStrategy[Call]:
        def make(p: int, *values: Any) -> Call:
            flat: list[int] = []
            for v in values:
                flat.extend(v if isinstance(v, tuple) else (v,))
            return Call(name, p, tuple(flat))

        return st.builds(make, proc, *parts)

    table: dict[str, st.SearchStrategy[Call]] = {
        "mmap": call("mmap", args),
        "write_memory": call("write_memory", mapping, page, st.integers(1, 255)),
        "read_memory": call("read_memory", mapping, page),
        "munmap": call("munmap", mapping, page, pages),
        "mprotect": call("mprotect", mapping, page, pages, prot_values()),
        "fork": call("fork"),
        "spawn": call("spawn", st.sampled_from((0, 1000))),
        "mmap_peer": call("mmap_peer", proc, args),
        "munmap_peer": call("munmap_peer", proc, mapping, page, pages),
        "exit": call("exit"),
    }
    return st.one_of([table[n] for n in CALL_NAMES if n in names])


def call_sequences(
    kernel_or_page_size: KernelOrPageSize = 4096,
    *,
    max_calls: int = 20,
    max_pages: int = 4,
    max_processes: int = 3,
    names: Sequence[str] = CALL_NAMES,
) -> st.SearchStrategy[list[Call]]:
    """Lists of up to ``max_calls`` ``Call`` for ``run_calls``, each beginning with an mmap
    by process 0, so that they shrink towards one process mapping one page:
    ``[Call("mmap", 0, (0, page_size, PROT_NONE, MAP_PRIVATE | MAP_ANON, NOFD, 0))]``.
    """
    if max_calls < 1:
        raise ValueError("max_calls must be at least 1")
    first = calls(kernel_or_page_size, max_pages=max_pages, max_processes=1, names=("mmap",))
    rest = calls(kernel_or_page_size, max_pages=max_pages, max_processes=max_processes, names=names)
    return st.builds(
        lambda head, tail: [head, *tail], first, st.lists(rest, max_size=max_calls - 1)
    )


Outcome = int | bytes | Process | QnxError | MemoryFault | None


def run_calls(kernel: Kernel, calls: Iterable[Call], *, uid: int = 0) -> list[Outcome]:
    """Spawn process 0 (``uid``, empty address space) in ``kernel``, then run ``calls``.

    Returns one outcome per call: the call's result, the ``QnxError`` or ``MemoryFault``
    it raised, or None for an ``exit`` of the last live process (skipped, so that a
    sequence always has a process to run the next call).  Any other exception propagates.
    """
    procs = [kernel.spawn(uid=uid, image=False)]
    outcomes: list[Outcome] = []
    for call in calls:
        proc = procs[call.proc % len(procs)]
        try:
            outcomes.append(_run_call(kernel, procs, proc, call))
        except (QnxError, MemoryFault) as err:
            outcomes.append(err)
    return outcomes


def _call_address(proc: Process, mapping: int, page: int) -> int:
    records = proc.mappings()
    if records:
        start = records[mapping % len(records)].start
    else:
        start = proc.kernel.machine.arch.program_base
    return start + page * proc.kernel.page_size


def _run_call(kernel: Kernel, procs: list[Process], proc: Process, call: Call) -> Outcome:
    ps = kernel.page_size
    a = call.args
    name = call.name
    if name == "mmap":
        return proc.mmap(*a)
    if name == "mmap_peer":
        return proc.mmap_peer(procs[a[0] % len(procs)].pid, *a[1:])
    if name == "munmap":
        return proc.munmap(_call_address(proc, a[0], a[1]), a[2] * ps)
    if name == "munmap_peer":
        target = procs[a[0] % len(procs)]
        return proc.munmap_peer(target.pid, _call_address(target, a[1], a[2]), a[3] * ps)
    if name == "mprotect":
        return proc.mprotect(_call_address(proc, a[0], a[1]), a[2] * ps, a[3])
    if name == "write_memory":
        proc.write_memory(_call_address(proc, a[0], a[1]), bytes([a[2]]) * 8)
        return None
    if name == "read_memory":
        return proc.read_memory(_call_address(proc, a[0], a[1]), 8)
    if name == "fork":
        child = kernel.process(proc.fork())
        procs.append(child)
        return child
    if name == "spawn":
        child = kernel.spawn(uid=a[0], image=False)
        procs.append(child)
        return child
    if name == "exit":
        if len(procs) == 1:
            return None
        procs.remove(proc)
        proc.exit(0)
        return None
    raise ValueError(f"unknown call {name!r}")


# -- the state machine --------------------------------------------------------------------

#: Rule arguments.  Indexes are taken modulo what exists, so every value is usable and
#: each shrinks to 0: the first process, the lowest mapped page (for an access, the first
#: page of the newest mapping), the first fd.  A few
#: lean on their simplest value (``one_of`` it and the full range) so that most steps
#: act on memory that is there: a page of the mapping, readable and writable.
PROCESS = st.integers(0, 7)
PAGES = page_counts(max_pages=4)
WHERE = st.integers(0, 63)
DELTA = st.one_of(st.just(0), st.integers(-1, 2))
FIXED = st.none() | st.integers(0, 31)
FD = st.integers(0, 3)
BYTE = st.integers(1, 255)
LENGTH = st.integers(1, 64)
IN_PAGE = st.integers(0, 63)
MAP_PROT = st.one_of(st.just(C.PROT_READ | C.PROT_WRITE), prot_values())


def newest_first(pages: Iterable[int]) -> list[int]:
    """Page numbers given in the order they were mapped (the model's dict order: a new
    mapping's pages go last, ascending), regrouped newest mapping first; each run of
    consecutive pages keeps its ascending order.  O(pages).

    >>> newest_first([16, 17, 18, 40, 41, 8])
    [8, 40, 41, 16, 17, 18]
    """
    runs: list[list[int]] = []
    for v in pages:
        if runs and runs[-1][-1] == v - 1:
            runs[-1].append(v)
        else:
            runs.append([v])
    return [v for run in reversed(runs) for v in run]


class _Named(int):
    """An int that prints by name in a step log; it is passed to the calls as the int."""

    NAMES: ClassVar[dict[int, str]] = {}

    def __repr__(self) -> str:
        return C.flag_names(int(self), self.NAMES)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's step log
        printer.text(repr(self))


class Prot(_Named):
    """A prot value that prints as ``PROT_READ|PROT_WRITE``.

    >>> Prot(0x300), Prot(0)
    (PROT_READ|PROT_WRITE, PROT_NONE)
    """

    NAMES = C.PROT_NAMES

    def __repr__(self) -> str:
        return super().__repr__() if self else "PROT_NONE"


class MapFlags(_Named):
    """A flags value that prints as ``MAP_PRIVATE|MAP_ANON``.

    >>> MapFlags(C.MAP_PRIVATE | C.MAP_ANON | 0x100000)
    MAP_PRIVATE|MAP_ANON|0x100000
    """

    NAMES = C.MAP_FLAG_NAMES


#: The machine's prot values: MAP_PROT / prot_values(), printed symbolically.
MACHINE_PROT = MAP_PROT.map(Prot)
ANY_PROT = prot_values().map(Prot)

#: Settings for running ``KernelMachine`` (or a subclass): no deadline (a step may take a
#: while on a big kernel); no ``Phase.explain``, which replays a failing run dozens of
#: times to comment on each step and took most of the time of a small failure; and
#: ``report_multiple_bugs=False``: after the first failure hypothesis would otherwise go
#: on generating (up to 10 s or 1000 more runs) for failures of another kind, then shrink
#: each.  The first failure is reported alone; fix it and run again for the next.  A
#: failing run shrinks to its few essential steps in seconds
#: (``benchmarks/machine_shrink.py`` measures it).  Use as a decorator::
#:
#:     @MACHINE_SETTINGS
#:     class MyMachine(KernelMachine): ...
#:
#: or ``MACHINE_SETTINGS(MyMachine)``, or start from it:
#: ``settings(MACHINE_SETTINGS, max_examples=200)``.
MACHINE_SETTINGS = settings(
    deadline=None,
    stateful_step_count=30,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow],
)


@functools.cache
def _invalid_machine_flags(version: str) -> st.SearchStrategy[int]:
    """``map_flags(valid=False)`` of QNX ``version``, printed by name: built once per
    version, not per run (a new strategy is validated again on its first draw)."""
    return map_flags(valid=False, profile=version).map(MapFlags)


#: The kinds of mapping ``KernelMachine.check_mmap`` makes.
MAPPING_KINDS = ("private-anon", "shared-anon", "shm-shared", "shm-private")
MAPPING_KIND = st.one_of(st.just(MAPPING_KINDS[0]), st.sampled_from(MAPPING_KINDS))


class KernelMachine(RuleBasedStateMachine):
    """A hypothesis state machine that drives a ``Kernel`` and checks it after every step.

    Every run starts with one process (``uids[0]``, an empty address space) and one
    private anonymous mapping in it (``first_mapping``).  Rules name processes through
    the ``procs`` bundle of live processes, so a failing run shrinks to the steps that
    matter (a fork and exit that play no part vanish together).  Rules by purpose --
    processes: ``spawn``, ``fork``, ``exit``;
    mappings: ``mmap``, ``mmap_peer``, ``munmap``, ``munmap_peer``, ``mprotect``;
    memory: ``write_memory``, ``read_memory``;
    shm objects: ``shm_open``, ``ftruncate``, ``pwrite``, ``pread``, ``close``,
    ``shm_unlink``;
    locks (SPEC 10, by profile): ``lock_range`` (mlock, munlock), ``lock_all`` (mlockall),
    ``unlock_all`` (munlockall), ``set_memlock_limit`` (setrlimit of RLIMIT_MEMLOCK);
    typed memory: ``typed_memory_mmap``;
    shm handles: ``shm_create_handle``, ``use_handle``;
    whole images and machines: ``exec_image``, ``snapshot``, ``restore``;
    calls that must fail: ``mmap_invalid_flags``, ``peer_call_to_exited``.

    The machine predicts each call's outcome from a reference model
    (``qnxsim.refmodel``): the errno of a failure (and that it changed nothing,
    R-CALL-5), the address of a mapping, the fault of an access, the bytes a read
    returns.

    After every step (``after_step``, silent in the step log) it runs
    ``Kernel.check_invariants()``, compares every process's pages and locked pages with the
    model and, with ``check_contents_every_step``, reads every readable page back.  Prot
    and flags print by name in the step log.

    Run it under pytest with ``TestKernel = MACHINE_SETTINGS(KernelMachine).TestCase``, or
    with ``hypothesis.stateful.run_state_machine_as_test(KernelMachine,
    settings=MACHINE_SETTINGS)``; ``MACHINE_SETTINGS`` leaves out the slow explain phase
    and reports the first failure only (no search for failures of other kinds before
    shrinking), with 30 steps a run.

    Shrinking: a failing run shrinks to the steps that matter (about four for "mmap shared
    memory, write, fork").  What helps it: rules name processes through the ``procs``
    bundle; for a memory access ``where=0`` is the first page of the newest mapping, so it
    shrinks to touch what was just mapped; a ``snapshot`` or ``restore`` right after
    another one skips its copy (nothing can have changed), which keeps runs that repeat
    them cheap.

    Attributes for rules and invariants of your own --
    ``kernel``: the Kernel; ``processes``: its live processes (oldest first; never
    empty); ``model``: the ``KernelModel`` (``model.procs[pid]`` has the pages, private
    copies and fds the machine expects); ``page_size``, ``program_base``, ``shmem_base``.

    Class attributes to override --
    ``kernel_options`` (``Kernel(**kernel_options)``, default ``{"ram": 64 << 20}``),
    ``max_processes`` (live processes, default 4), ``uids`` (for spawn; the first is the
    first process's), ``shm_names``, ``check_contents_every_step`` (False: read contents
    back only at teardown, for long runs), ``typed_pool`` (the typed-memory name the
    ``typed_memory_mmap`` rule opens), ``check_leaks_at_teardown`` (at the end every
    process exits and every shm name goes: then no frame may stay allocated or reserved
    beyond what the filesystem's files hold).

    Helpers that keep the model in step (use them in your rules): ``check_mmap``,
    ``check_munmap``, ``check_write``, ``check_read``, ``check_contents``, ``process``,
    ``process_with_memory``, ``add_process``, ``expect_failure``; ``procs`` (the bundle:
    ``@rule(client=KernelMachine.procs)`` gives a live Process).  A rule that changes
    memory behind the model's back makes the next comparison fail.  To drop a rule,
    override it with a plain method; to add checks after every step, override
    ``after_step`` (calling ``super()``) or add an ``@invariant``.

    Subclassing, for example to test a server that maps a client's buffer::

        from hypothesis import settings
        from hypothesis.stateful import invariant, rule
        from qnxsim.constants import PROT_READ, PROT_WRITE
        from qnxsim.strategies import MACHINE_SETTINGS, PAGES, KernelMachine

        class ServerMachine(KernelMachine):
            kernel_options = {"ram": 32 << 20, "arch": "aarch64"}
            max_processes = 3

            @rule(client=KernelMachine.procs, pages=PAGES)
            def server_maps_client_buffer(self, client, pages):
                server = self.processes[0]  # root: may map into anyone (R-PEER-3)
                self.check_mmap(server, client, pages, PROT_READ | PROT_WRITE, "shared-anon")

            @invariant()
            def no_process_maps_more_than_a_megabyte(self):
                for proc in self.processes:
                    assert sum(m.size for m in proc.mappings()) <= 1 << 20

        TestServer = settings(MACHINE_SETTINGS, max_examples=30)(ServerMachine).TestCase
    """

    kernel_options: ClassVar[dict[str, Any]] = {"ram": 64 << 20}
    max_processes: ClassVar[int] = 4
    uids: ClassVar[tuple[int, ...]] = (0, 1000, 1001)
    shm_names: ClassVar[tuple[str, ...]] = ("/qnxsim-machine-a", "/qnxsim-machine-b")
    check_contents_every_step: ClassVar[bool] = True
    typed_pool: ClassVar[str] = "sysram"
    check_leaks_at_teardown: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.kernel = Kernel(**self.kernel_options)
        self.page_size = self.kernel.page_size
        arch = self.kernel.machine.arch
        self.program_base = arch.program_base
        self.shmem_base = arch.shmem_base
        self.profile = self.kernel.profile
        #: SPEC 19: MAP_NOINHERIT of the kernel's version (0: 6.4 defines none).
        self.map_noinherit = self.profile.flag("MAP_NOINHERIT")
        self.invalid_flags = _invalid_machine_flags(self.profile.version)
        k = self.kernel
        self.model = KernelModel(self.page_size, layout=Layout.of(k.version, k.arch, k.page_size))
        self.processes: list[Process] = []
        self.add_process(self.kernel.spawn(uid=self.uids[0], image=False))
        #: Unused shm handles, as the machine expects them (R-HANDLE-1, R-HANDLE-5).
        self.handles: list[HandleModel] = []
        #: The last ``snapshot``: the kernel's, the model and handles, the live pids then.
        self.saved: tuple[object, tuple[KernelModel, list[HandleModel]], list[int]] | None = None
        #: A process made since the snapshot: restoring would leave its handle, still in
        #: the ``procs`` bundle, stale (R-PROC-6), so ``restore`` waits for a new snapshot.
        self.grown_since_snapshot = False
        #: Steps run so far, and their count when the last ``snapshot`` or ``restore``
        #: ran: another of them right away would only repeat its copy of the machine.
        self.steps_run = 0
        self.saved_at_step = -2

    # -- helpers ------------------------------------------------------------------------

    def process(self, index: int) -> Process:
        """The live process number ``index`` (modulo their count)."""
        return self.processes[index % len(self.processes)]

    def process_with_memory(self, index: int) -> Process:
        """Number ``index`` among the live processes that map something (modulo their
        count); any live process when none does."""
        mapped = [p for p in self.processes if self.model.procs[p.pid].pages]
        return mapped[index % len(mapped)] if mapped else self.process(index)

    def add_process(self, proc: Process, *, forked_from: Process | None = None) -> None:
        """Start tracking a new process (spawned empty, or forked from a tracked one)."""
        if forked_from is not None:
            self.model.fork(forked_from.pid, proc.pid)
        else:
            assert not proc.mappings(), "the model starts a spawned process empty"
            self.model.spawn(proc.pid, proc.euid)
        self.processes.append(proc)
        self.grown_since_snapshot = True

    def _observe(self) -> object:
        """What a failing call must leave as it was (R-CALL-5)."""
        k = self.kernel
        return tuple((p.pid, p.state, p.mappings()) for p in k.processes()), k.meminfo()

    def expect_failure(self, errno: int, call: Callable[[], object], what: str) -> QnxError:
        """Run ``call``; it must raise QnxError ``errno`` and change nothing (R-CALL-5)."""
        before = self._observe()
        name = E.errorcode.get(errno, str(errno))
        try:
            result = call()
        except QnxError as err:
            assert err.errno == errno, f"{what}: expected {name} ({errno}), got {err}"
            assert self._observe() == before, f"{what}: failed ({err}) but changed state"
            return err
        raise AssertionError(f"{what}: expected {name} ({errno}), but it returned {result!r}")

    def _expect_success(
        self, call: Callable[[], T], what: str, need: int = 0, short: int = E.ENOMEM
    ) -> T | None:
        """Run ``call``; it must succeed, except that QnxError ``short`` is allowed when
        fewer than ``need`` bytes of RAM are free (and then it must change nothing)."""
        before = self._observe() if need else None
        try:
            return call()
        except QnxError as err:
            free = self.kernel.meminfo().free
            if err.errno == short and free < need:
                assert self._observe() == before, f"{what}: failed ({err}) but changed state"
                return None
            raise AssertionError(f"{what}: expected success, got {err}") from err

    def _pick_address(self, proc: Process, where: int, delta: int, *, newest: bool = False) -> int:
        """A page address near the process's mappings: mapped page number ``where``
        (modulo their count) moved by ``delta`` pages; near PROGRAM_BASE when none.

        Pages count up by address (``where=0``, the lowest page: unmapping there leaves a
        hole below the other mappings, which placement must then respect), or with
        ``newest`` from the first page of what was mapped last, so that an access shrinks
        to touch what the step before it mapped, whatever lies below (by address, an older
        mapping would take ``where=0`` and the shrinker would have to change two steps at
        once)."""
        pages = self.model.procs[proc.pid].pages
        order = newest_first(pages) if newest else sorted(pages)
        base = order[where % len(order)] * self.page_size if order else self.program_base
        return max(0, base + delta * self.page_size)

    def _fd(self, proc: Process, index: int) -> tuple[int, ObjectModel | None]:
        """One of the process's open fds, or (as the last choice) one that is not open."""
        pm = self.model.procs[proc.pid]
        choices = [*sorted(pm.fds), pm.lowest_free_fd()]
        fd = choices[index % len(choices)]
        return fd, pm.fds.get(fd)

    def _may_map_into(self, caller: Process, target: Process) -> bool:
        """R-PEER-3 with default abilities (PROCMGR_AID_MEM_PEER: root only), or SPEC 19's
        rule of a profile without abilities (6.4: euid 0): root, or a shared uid."""
        if caller.pid == target.pid or caller.euid == 0:
            return True
        return bool({caller.ruid, caller.euid} & {target.ruid, target.suid})

    def _may_lock(self, proc: Process, lo: int, hi: int) -> bool:
        """R-LOCK-1, R-LOCK-3: PROCMGR_AID_MEM_LOCK for ``[lo, hi)`` with the default
        abilities (root only; 6.4: euid 0).  A machine that changes abilities overrides
        this."""
        return self.model.may_lock(proc.pid)

    def _may_use(self, proc: Process, obj: ObjectModel) -> bool:
        """R-SHM-2, R-SHM-4 for mode 0600 objects: the owner or root."""
        return proc.euid in (0, obj.owner)

    def check_mmap(
        self,
        caller: Process,
        target: Process,
        pages: int,
        prot: int,
        kind: str,
        *,
        fd_index: int = 0,
        off_pages: int = 0,
        fixed: int | None = None,
        noinherit: bool = False,
    ) -> int | None:
        """mmap (``caller is target``) or mmap_peer of ``pages`` pages of ``kind`` (one of
        ``MAPPING_KINDS``); predicts the outcome and updates the model.

        ``fixed``: MAP_FIXED at that many pages above PROGRAM_BASE (private anonymous) or
        SHMEM_BASE (the others).  Returns the address, or None when the call failed.
        """
        ps = self.page_size
        size = pages * ps
        shared = kind in ("shared-anon", "shm-shared")
        flags = C.MAP_SHARED if shared else C.MAP_PRIVATE
        noinherit = noinherit and bool(self.map_noinherit)  # SPEC 19: none in 6.4
        if noinherit:
            flags |= self.map_noinherit
        obj: ObjectModel | None = None
        if kind in ("private-anon", "shared-anon"):
            flags |= C.MAP_ANON
            fd, off = C.NOFD, 0
        else:
            fd, obj = self._fd(caller, fd_index)
            off = off_pages * ps
        base = self.program_base if kind == "private-anon" else self.shmem_base
        addr = 0
        if fixed is not None:
            flags |= C.MAP_FIXED
            addr = base + fixed * ps
        peer = caller.pid != target.pid

        def call() -> int:
            if peer:
                return caller.mmap_peer(target.pid, addr, size, prot, flags, fd, off)
            return caller.mmap(addr, size, prot, flags, fd, off)

        what = f"{'mmap_peer' if peer else 'mmap'} of {pages} page(s) of {kind}"
        if peer and not self._may_map_into(caller, target):
            self.expect_failure(E.EPERM, call, what)  # R-PEER-3
            return None
        if kind.startswith("shm") and obj is None:
            self.expect_failure(E.EBADF, call, what)  # R-MMAP-12
            return None
        if self._future_lock_fails(target, addr, size, prot, fixed=fixed is not None):
            self.expect_failure(E.EAGAIN, call, what)  # R-MMAP-19
            return None
        need = 0 if kind == "shm-shared" else size  # R-MMAP-20: allocate or reserve
        start = self._expect_success(call, what, need)
        if start is None:
            return None
        assert start % ps == 0, f"{what}: returned unaligned {start:#x}"
        if fixed is not None:
            assert start == addr, f"{what}: MAP_FIXED at {addr:#x} returned {start:#x}"
        elif not self.kernel.aslr:
            expected = self.model.place(target.pid, base, size)  # R-PLACE-1, R-PLACE-2
            assert start == expected, f"{what}: placed at {start:#x}, expected {expected:#x}"
        else:
            assert self.model.is_free(target.pid, start, start + size), (
                f"{what}: placed at {start:#x} over existing mappings (R-PLACE-4)"
            )
        if kind == "shared-anon":
            obj = ObjectModel("shared-anon", ps, size)
        record = {"private-anon": "anon", "shared-anon": "shared-anon"}.get(kind, "shm")
        self.model.map(target.pid, start, size, prot, record, obj, off // ps,
                       private=not shared, noinherit=noinherit)  # fmt: skip
        return start

    def _future_lock_fails(
        self, target: Process, addr: int, size: int, prot: int, *, fixed: bool = False
    ) -> bool:
        """R-MMAP-19: would mlockall(MCL_FUTURE) of ``target`` refuse this new mapping?"""
        replace = fixed and not self.model.is_free(target.pid, addr, addr + size)
        return bool(self.model.future_lock_errno(target.pid, addr, size, prot, 0, replace=replace))

    def check_munmap(self, caller: Process, target: Process, addr: int, size: int) -> None:
        """munmap or munmap_peer; predicts the outcome and updates the model."""
        peer = caller.pid != target.pid

        def call() -> int:
            if peer:
                return caller.munmap_peer(target.pid, addr, size)
            return caller.munmap(addr, size)

        what = f"{'munmap_peer' if peer else 'munmap'}({addr:#x}, {size:#x})"
        if peer and not self._may_map_into(caller, target):
            self.expect_failure(E.EPERM, call, what)  # R-UNMAP-7
            return
        assert self._expect_success(call, what) == 0
        self.model.unmap(target.pid, addr, addr + size)  # R-UNMAP-5

    def _check_fault(self, fault: Fault, call: Callable[[], object], what: str) -> None:
        try:
            result = call()
        except MemoryFault as err:
            got = (err.signo, err.code, err.addr)
            assert got == (fault.signo, fault.code, fault.addr), f"{what}: {err}, expected {fault}"
            return
        raise AssertionError(f"{what}: expected {fault}, but it returned {result!r}")

    def check_write(self, proc: Process, addr: int, data: bytes) -> None:
        """write_memory, with its fault or its effect predicted (R-FAULT-1, R-OBJ-4/5)."""
        what = f"pid {proc.pid} write_memory({addr:#x}, {len(data)} bytes)"
        fault = self.model.fault(proc.pid, addr, len(data), "w")
        if fault is not None:
            self._check_fault(fault, lambda: proc.write_memory(addr, data), what)
            return
        try:
            proc.write_memory(addr, data)
        except MemoryFault as err:
            short = self.kernel.meminfo().free < 2 * self.page_size
            if (err.signo, err.code) == (C.SIGBUS, C.BUS_ADRERR) and short:
                return  # R-SYS-6: no frame for a new page
            raise AssertionError(f"{what}: unexpected {err}") from err
        self.model.write(proc.pid, addr, data)

    def check_read(self, proc: Process, addr: int, size: int) -> None:
        """read_memory, with its fault or the bytes predicted."""
        what = f"pid {proc.pid} read_memory({addr:#x}, {size})"
        fault = self.model.fault(proc.pid, addr, size, "r")
        if fault is not None:
            self._check_fault(fault, lambda: proc.read_memory(addr, size), what)
            return
        got = proc.read_memory(addr, size)
        expected = self.model.read(proc.pid, addr, size)
        assert got == expected, f"{what}: read {got[:32]!r}..., expected {expected[:32]!r}..."

    def check_contents(self) -> None:
        """Read back every readable page of every process and compare with the model."""
        for proc in self.processes:
            for addr, expected in self.model.readable_runs(proc.pid):
                got = proc.read_memory(addr, len(expected))
                if got != expected:
                    bad = next(i for i, (a, b) in enumerate(zip(got, expected, strict=True))
                               if a != b)  # fmt: skip
                    raise AssertionError(
                        f"pid {proc.pid}: byte at {addr + bad:#x} reads {got[bad]:#04x}, the "
                        f"model expects {expected[bad]:#04x}\n" + "\n".join(process_lines(proc))
                    )

    # -- processes ----------------------------------------------------------------------
    #
    # Rules name processes through the ``procs`` bundle (the live processes), never by a
    # position among them: deleting a fork/exit pair while shrinking then leaves every
    # other step naming the same process, so useless pairs disappear.

    procs = Bundle("procs")

    def _room(self) -> bool:
        return len(self.processes) < self.max_processes

    @initialize(target=procs, pages=PAGES, prot=MACHINE_PROT)
    def first_mapping(self, pages: int, prot: int) -> Process:
        """Every run starts with one private anonymous mapping in the first process."""
        first = self.processes[0]
        self.check_mmap(first, first, pages, prot, "private-anon")
        return first

    @precondition(lambda self: self._room())
    @rule(target=procs, uid=st.integers(0, 3))
    def spawn(self, uid: int) -> Process:
        """R-PROC-1: a new process with an empty address space."""
        proc = self.kernel.spawn(uid=self.uids[uid % len(self.uids)], image=False)
        self.add_process(proc)
        return proc

    @precondition(lambda self: self._room())
    @rule(target=procs, proc=procs)
    def fork(self, proc: Process) -> Process | MultipleResults[Process]:
        """R-PROC-2: the child's pages are the parent's, private ones copied."""
        need = sum(m.size for m in proc.mappings())
        pid = self._expect_success(proc.fork, f"pid {proc.pid} fork", need)
        if pid is None:
            return multiple()
        child = self.kernel.process(pid)
        self.add_process(child, forked_from=proc)
        return child

    @precondition(lambda self: len(self.processes) > 1)
    @rule(proc=consumes(procs))
    def exit(self, proc: Process) -> None:
        """R-PROC-4: mappings and fds go; the pid gives ESRCH to peers from now on.
        (The bundle offers the youngest process first, so that a forked child exits
        before its parent and stays a zombie while the parent lives.)"""
        proc.exit(0)
        self.processes.remove(proc)
        self.model.exit(proc.pid)
        self.handles = [h for h in self.handles if h.recipient != proc.pid]  # R-HANDLE-5

    @precondition(lambda self: bool(self.model.dead))
    @rule(proc=procs, which=st.integers(0, 7), unmap=st.booleans())
    def peer_call_to_exited(self, proc: Process, which: int, unmap: bool) -> None:
        """R-PEER-2: a pid that has exited gives ESRCH, before any other check."""
        caller = proc
        pid = self.model.dead[-1 - which % len(self.model.dead)]  # the latest first
        ps = self.page_size
        if unmap:
            self.expect_failure(E.ESRCH, lambda: caller.munmap_peer(pid, self.program_base, ps),
                                f"munmap_peer to exited pid {pid}")  # fmt: skip
        else:
            flags = C.MAP_PRIVATE | C.MAP_ANON
            self.expect_failure(
                E.ESRCH,
                lambda: caller.mmap_peer(pid, 0, ps, C.PROT_READ, flags, C.NOFD, 0),
                f"mmap_peer to exited pid {pid}",
            )

    # -- mappings -----------------------------------------------------------------------

    @rule(
        proc=procs, pages=PAGES, prot=MACHINE_PROT, kind=MAPPING_KIND, fd=FD,
        off=st.integers(0, 3), fixed=FIXED, noinherit=st.booleans(),
    )  # fmt: skip
    def mmap(
        self, proc: Process, pages: int, prot: int, kind: str, fd: int, off: int,
        fixed: int | None, noinherit: bool,
    ) -> None:  # fmt: skip
        self.check_mmap(proc, proc, pages, prot, kind, fd_index=fd, off_pages=off, fixed=fixed,
                        noinherit=noinherit)  # fmt: skip

    @rule(
        proc=procs, peer=procs, pages=PAGES, prot=MACHINE_PROT, kind=MAPPING_KIND, fd=FD,
        fixed=FIXED,
    )  # fmt: skip
    def mmap_peer(
        self, proc: Process, peer: Process, pages: int, prot: int, kind: str, fd: int,
        fixed: int | None,
    ) -> None:  # fmt: skip
        """SPEC 6: the caller's fd and abilities, the peer's address space.  (Rule
        arguments cannot be called ``target``: hypothesis keeps that name for bundles.)"""
        self.check_mmap(proc, peer, pages, prot, kind, fd_index=fd, fixed=fixed)

    @rule(proc=procs, data=st.data(), prot=ANY_PROT, pages=PAGES)
    def mmap_invalid_flags(self, proc: Process, data: st.DataObject, prot: int, pages: int) -> None:
        """R-MMAP-1, R-MMAP-4: EINVAL, whatever else the call asks.  The flags are invalid
        in the kernel's profile (SPEC 19: 0x40 is MAP_NOSYNCFILE in 7.1, every MAP_TYPE
        value is valid in 6.4)."""
        flags = data.draw(self.invalid_flags, label="flags")
        size = pages * self.page_size
        err = self.expect_failure(
            E.EINVAL,
            lambda: proc.mmap(0, size, prot, flags, C.NOFD, 0),
            f"mmap with invalid flags {flags!r} ({flags:#x})",
        )
        assert err.reason.startswith(("R-MMAP-1:", "R-MMAP-4:")), (
            f"mmap with invalid flags {flags:#x}: EINVAL, but by the wrong rule: {err}"
        )

    @rule(proc=procs, where=WHERE, delta=DELTA, pages=PAGES)
    def munmap(self, proc: Process, where: int, delta: int, pages: int) -> None:
        addr = self._pick_address(proc, where, delta)
        self.check_munmap(proc, proc, addr, pages * self.page_size)

    @rule(proc=procs, peer=procs, where=WHERE, delta=DELTA, pages=PAGES)
    def munmap_peer(self, proc: Process, peer: Process, where: int, delta: int, pages: int) -> None:
        addr = self._pick_address(peer, where, delta)
        self.check_munmap(proc, peer, addr, pages * self.page_size)

    @rule(proc=procs, where=WHERE, delta=DELTA, pages=PAGES, prot=ANY_PROT)
    def mprotect(self, proc: Process, where: int, delta: int, pages: int, prot: int) -> None:
        """R-MPROT-2: the range must be wholly mapped (ENOMEM); R-MPROT-4."""
        p = proc
        addr = self._pick_address(p, where, delta)
        size = pages * self.page_size
        what = f"pid {p.pid} mprotect({addr:#x}, {size:#x}, {prot!r})"
        call = functools.partial(p.mprotect, addr, size, prot)
        if not self.model.is_mapped(p.pid, addr, addr + size):
            self.expect_failure(E.ENOMEM, call, what)
            return
        assert self._expect_success(call, what) == 0
        self.model.protect(p.pid, addr, addr + size, prot)

    # -- memory -------------------------------------------------------------------------

    def _access_address(self, proc: Process, where: int, delta: int, at_end: bool, x: int) -> int:
        page = self._pick_address(proc, where, delta, newest=True)
        return page + (self.page_size - 64 + x if at_end else x)

    @rule(
        proc=procs, where=WHERE, delta=DELTA, at_end=st.booleans(), x=IN_PAGE, value=BYTE,
        length=LENGTH,
    )  # fmt: skip
    def write_memory(
        self, proc: Process, where: int, delta: int, at_end: bool, x: int, value: int,
        length: int,
    ) -> None:  # fmt: skip
        self.check_write(proc, self._access_address(proc, where, delta, at_end, x),
                         bytes([value]) * length)  # fmt: skip

    @rule(proc=procs, where=WHERE, delta=DELTA, at_end=st.booleans(), x=IN_PAGE, length=LENGTH)
    def read_memory(
        self, proc: Process, where: int, delta: int, at_end: bool, x: int, length: int
    ) -> None:
        self.check_read(proc, self._access_address(proc, where, delta, at_end, x), length)

    # -- shared memory objects ----------------------------------------------------------

    @rule(proc=procs, name=st.integers(0, 3))
    def shm_open(self, proc: Process, name: int) -> None:
        """R-SHM-1..3: mode 0600, O_RDWR|O_CREAT; the lowest free fd."""
        p = proc
        path = self.shm_names[name % len(self.shm_names)]
        pm = self.model.procs[p.pid]
        obj = self.model.names.get(path)
        call = functools.partial(p.shm_open, path, C.O_RDWR | C.O_CREAT, 0o600)
        what = f"pid {p.pid} shm_open({path!r})"
        if obj is not None and not self._may_use(p, obj):
            self.expect_failure(E.EACCES, call, what)
            return
        fd = self._expect_success(call, what)
        assert fd == pm.lowest_free_fd(), f"{what}: fd {fd}, expected {pm.lowest_free_fd()}"
        if obj is None:
            obj = ObjectModel("shm", self.page_size, 0, path, p.euid)
            self.model.names[path] = obj
        pm.fds[fd] = obj

    @rule(proc=procs, fd=FD, pages=st.integers(0, 5), extra=st.sampled_from((0, 1, 100)))
    def ftruncate(self, proc: Process, fd: int, pages: int, extra: int) -> None:
        """R-SHM-5, R-OBJ-6."""
        p = proc
        fdv, obj = self._fd(p, fd)
        size = pages * self.page_size + extra
        call = functools.partial(p.ftruncate, fdv, size)
        what = f"pid {p.pid} ftruncate({fdv}, {size:#x})"
        if obj is None:
            self.expect_failure(E.EBADF, call, what)
            return
        grow = round_up(size, self.page_size) - round_up(obj.size, self.page_size)
        if self._expect_success(call, what, max(grow, 0)) is not None:
            obj.resize(size)

    @rule(proc=procs, fd=FD, offset=st.integers(0, 5 * 4096), value=BYTE, length=LENGTH)
    def pwrite(self, proc: Process, fd: int, offset: int, value: int, length: int) -> None:
        """R-FS-2, R-OBJ-5: writes through the fd show in every shared mapping."""
        p = proc
        fdv, obj = self._fd(p, fd)
        data = bytes([value]) * length
        call = functools.partial(p.pwrite, fdv, data, offset)
        what = f"pid {p.pid} pwrite({fdv}, {length} bytes, {offset:#x})"
        if obj is None:
            self.expect_failure(E.EBADF, call, what)
            return
        ps = self.page_size
        need = max(0, round_up(offset + length, ps) - round_up(obj.size, ps)) + 2 * ps
        done = self._expect_success(call, what, need, short=E.ENOSPC)
        if done is not None:
            assert done == length, f"{what}: wrote {done}"
            obj.pwrite(offset, data)

    @rule(proc=procs, fd=FD, offset=st.integers(0, 5 * 4096), length=st.integers(1, 256))
    def pread(self, proc: Process, fd: int, offset: int, length: int) -> None:
        """R-FS-2, R-OBJ-5: reads through the fd see what mappings wrote."""
        p = proc
        fdv, obj = self._fd(p, fd)
        call = functools.partial(p.pread, fdv, length, offset)
        what = f"pid {p.pid} pread({fdv}, {length}, {offset:#x})"
        if obj is None:
            self.expect_failure(E.EBADF, call, what)
            return
        got = self._expect_success(call, what)
        assert got == obj.pread(offset, length), f"{what}: read {got!r}"

    @rule(proc=procs, fd=FD)
    def close(self, proc: Process, fd: int) -> None:
        """R-OBJ-2: closing the fd does not end the mappings."""
        p = proc
        fdv, obj = self._fd(p, fd)
        call = functools.partial(p.close, fdv)
        if obj is None:
            self.expect_failure(E.EBADF, call, f"pid {p.pid} close({fdv})")
            return
        assert self._expect_success(call, f"pid {p.pid} close({fdv})") == 0
        del self.model.procs[p.pid].fds[fdv]

    @rule(proc=procs, name=st.integers(0, 3))
    def shm_unlink(self, proc: Process, name: int) -> None:
        """R-SHM-4: the name goes at once; the object lives while referenced."""
        p = proc
        path = self.shm_names[name % len(self.shm_names)]
        obj = self.model.names.get(path)
        call = functools.partial(p.shm_unlink, path)
        what = f"pid {p.pid} shm_unlink({path!r})"
        if obj is None:
            self.expect_failure(E.ENOENT, call, what)
        elif not self._may_use(p, obj):
            self.expect_failure(E.EPERM, call, what)
        else:
            assert self._expect_success(call, what) == 0
            del self.model.names[path]

    # -- locks (SPEC 10) ----------------------------------------------------------------

    @rule(proc=procs, where=WHERE, delta=DELTA, pages=st.integers(0, 2), unlock=st.booleans())
    def lock_range(self, proc: Process, where: int, delta: int, pages: int, unlock: bool) -> None:
        """mlock or munlock of pages near the process's mappings (``pages`` 0: len 0), as
        the profile has them: R-LOCK-1, R-LOCK-2 with lock state, else R-LOCK-5, R-LOCK-6."""
        p = proc
        addr = self._pick_address(p, where, delta)
        size = pages * self.page_size
        name = "munlock" if unlock else "mlock"
        what = f"pid {p.pid} {name}({addr:#x}, {size:#x})"
        if unlock:
            errno = self.model.munlock(p.pid, addr, size)
        else:
            span = self.model.config.widen(addr, size) if self.model.config else None
            allowed = self._may_lock(p, *span) if span is not None else True
            errno = self.model.mlock(p.pid, addr, size, allowed=allowed)
        self._expect(errno, functools.partial(getattr(p, name), addr, size), what)

    @rule(proc=procs, flags=st.sampled_from((1, 2, 3, 0, 4)))
    def lock_all(self, proc: Process, flags: int) -> None:
        """R-LOCK-3 (MCL_CURRENT 1, MCL_FUTURE 2; 0 and 4 are invalid on profiles with lock state);
        MCL_FUTURE then reaches every later mapping of the process (R-MMAP-19)."""
        p = proc
        what = f"pid {p.pid} mlockall({flags:#x})"
        m = self.kernel.machine
        allowed = self._may_lock(p, m.user_start, m.user_end)
        self._expect(self.model.mlockall(p.pid, flags, allowed=allowed),
                     functools.partial(p.mlockall, flags), what)  # fmt: skip

    @rule(proc=procs)
    def unlock_all(self, proc: Process) -> None:
        self.model.munlockall(proc.pid)
        assert self._expect_success(proc.munlockall, f"pid {proc.pid} munlockall") == 0

    @rule(proc=procs, pages=st.integers(0, 8))
    def set_memlock_limit(self, proc: Process, pages: int) -> None:
        """SPEC 18: RLIMIT_MEMLOCK (soft and hard) to ``pages`` pages, for R-LOCK-1,
        R-LOCK-3 and R-MMAP-19 to meet."""
        p = proc
        n = pages * self.page_size
        what = f"pid {p.pid} setrlimit(RLIMIT_MEMLOCK, {n:#x})"
        call = functools.partial(p.setrlimit, C.RLIMIT_MEMLOCK, n, n)
        self._expect(self.model.setrlimit(p.pid, C.RLIMIT_MEMLOCK, n, n), call, what)

    def _expect(self, errno: int | None, call: Callable[[], object], what: str) -> None:
        """The model's answer for a call that returns 0: ``errno`` (and nothing changes),
        or success."""
        if errno is not None:
            self.expect_failure(errno, call, what)
        else:
            assert self._expect_success(call, what) == 0, f"{what}: not 0"

    # -- typed memory (SPEC 12.1) -------------------------------------------------------

    @rule(proc=procs, pages=PAGES, prot=MACHINE_PROT, shared=st.booleans(), contig=st.booleans())
    def typed_memory_mmap(
        self, proc: Process, pages: int, prot: int, shared: bool, contig: bool
    ) -> None:
        """R-TYMEM-2..4: open ``typed_pool`` with POSIX_TYPED_MEM_ALLOCATE(_CONTIG) (the
        lowest free fd), map it (new zeroed memory, placed as anonymous memory; it succeeds
        exactly when posix_typed_mem_get_info says the pool has room, R-TYMEM-3), check
        posix_mem_offset names that fd (R-MOFF-4), and close the fd (R-TYMEM-5: the mapping
        stays)."""
        p = proc
        pm = self.model.procs[p.pid]
        # R-MMAP-9's abilities are the mmap rule's business, not this one's
        prot = Prot(prot & ~C.PROT_EXEC)
        tflag = C.POSIX_TYPED_MEM_ALLOCATE_CONTIG if contig else C.POSIX_TYPED_MEM_ALLOCATE
        what = f"pid {p.pid} posix_typed_mem_open({self.typed_pool!r}, {tflag})"
        fd = self._expect_success(
            lambda: p.posix_typed_mem_open(self.typed_pool, C.O_RDWR, tflag), what
        )
        assert fd == pm.lowest_free_fd(), f"{what}: fd {fd}, expected {pm.lowest_free_fd()}"
        size = pages * self.page_size
        room = p.posix_typed_mem_get_info(fd)
        flags = C.MAP_SHARED if shared else C.MAP_PRIVATE
        call = functools.partial(p.mmap, 0, size, prot, flags, fd, 0)
        what = f"pid {p.pid} mmap of {pages} page(s) of typed memory ({flags:#x})"
        if self._future_lock_fails(p, 0, size, prot):
            self.expect_failure(E.EAGAIN, call, what)  # R-MMAP-19, before R-MMAP-20
        elif size > room:
            self.expect_failure(E.ENOMEM, call, what)  # R-MMAP-20: the pool is short
        else:
            start = call()
            base = self.shmem_base if shared else self.program_base
            if not self.kernel.aslr:
                expected = self.model.place(p.pid, base, size)
                assert start == expected, f"{what}: at {start:#x}, expected {expected:#x}"
            kind = "shared-anon" if shared else "anon"
            obj = ObjectModel("shared-anon", self.page_size, size) if shared else None
            self.model.map(p.pid, start, size, prot, kind, obj, 0, private=not shared,
                           noinherit=False)  # fmt: skip
            got = p.posix_mem_offset(start, size)
            assert got[2] == fd, f"{what}: posix_mem_offset gives fd {got[2]}, not {fd}"
            after = p.posix_typed_mem_get_info(fd)  # the free RAM, or the largest free run
            assert after == room - size if not contig else after <= room, f"{what}: room"
        assert p.close(fd) == 0

    # -- shared memory handles (SPEC 13.3) ----------------------------------------------

    @rule(proc=procs, peer=procs, fd=FD, readonly=st.booleans())
    def shm_create_handle(self, proc: Process, peer: Process, fd: int, readonly: bool) -> None:
        """R-HANDLE-1: a handle for ``peer`` on the shm object of one of the caller's fds
        (a new non-zero value); EBADF for an fd that is not open; ENOSYS on a profile
        without handles (SPEC 19)."""
        p, t = proc, peer
        fdv, obj = self._fd(p, fd)
        access = C.O_RDONLY if readonly else C.O_RDWR
        call = functools.partial(p.shm_create_handle, fdv, t.pid, access, 0)
        what = f"pid {p.pid} shm_create_handle({fdv}, {t.pid}, {access})"
        if not self.profile.handles:
            self.expect_failure(E.ENOSYS, call, what)
            return
        if obj is None:
            self.expect_failure(E.EBADF, call, what)
            return
        value = self._expect_success(call, what)
        assert value, f"{what}: handle 0"
        assert all(h.value != value for h in self.handles), f"{what}: {value} reused"
        self.handles.append(HandleModel(value, obj, t.pid, access))

    @precondition(lambda self: bool(self.handles))
    @rule(proc=procs, which=st.integers(0, 7), pages=PAGES, as_fd=st.booleans())
    def use_handle(self, proc: Process, which: int, pages: int, as_fd: bool) -> None:
        """R-HANDLE-2, R-HANDLE-3: only the recipient can use a handle, and once:
        shm_open_handle gives the lowest free fd on the object (a read-only one refuses
        ftruncate, R-SHM-5, and is closed again), mmap_handle maps it shared as mmap
        would; for any other process it is EBADF and the handle stays."""
        h = self.handles[which % len(self.handles)]
        p = proc
        size = pages * self.page_size
        prot = C.PROT_READ | (C.PROT_WRITE if h.access == C.O_RDWR else 0)
        if as_fd:
            call = functools.partial(p.shm_open_handle, h.value, h.access)
        else:
            call = functools.partial(p.mmap_handle, 0, size, prot, C.MAP_SHARED, h.value, 0)
        what = f"pid {p.pid} {'shm_open_handle' if as_fd else 'mmap_handle'}({h.value})"
        if p.pid != h.recipient:
            self.expect_failure(E.EBADF, call, what)
            return
        pm = self.model.procs[p.pid]
        if as_fd:
            fd = self._expect_success(call, what)
            assert fd == pm.lowest_free_fd(), f"{what}: fd {fd}, expected {pm.lowest_free_fd()}"
            if h.access == C.O_RDWR:
                pm.fds[fd] = h.obj
            else:
                # The fd rules expect fds open for writing: a read-only one is checked
                # here (R-SHM-5: not open for writing, EINVAL) and closed at once.
                self.expect_failure(E.EINVAL, functools.partial(p.ftruncate, fd, 0),
                                    f"pid {p.pid} ftruncate({fd}) of a read-only fd")  # fmt: skip
                assert p.close(fd) == 0
        elif self._future_lock_fails(p, 0, size, prot):
            self.expect_failure(E.EAGAIN, call, what)  # R-MMAP-19: the handle stays
            return
        else:
            start = self._expect_success(call, what)
            assert start is not None
            if not self.kernel.aslr:
                expected = self.model.place(p.pid, self.shmem_base, size)
                assert start == expected, f"{what}: at {start:#x}, expected {expected:#x}"
            self.model.map(p.pid, start, size, prot, "shm", h.obj, 0, private=False,
                           noinherit=False)  # fmt: skip
        self.handles.remove(h)

    # -- whole images and machines ------------------------------------------------------

    @rule(proc=procs)
    def exec_image(self, proc: Process) -> None:
        """R-PROC-3: exec removes every mapping and closes the close-on-exec fds (every
        shm fd is one, R-SHM-3); then the new image is unmapped, so the process is empty
        again as the model says.  A failing exec (no RAM for the image) changes nothing."""
        p = proc
        what = f"pid {p.pid} exec"
        if self._expect_success(lambda: p.exec("/proc/boot/next"), what, 1 << 20) is None:
            return
        m = self.kernel.machine
        assert p.munmap(m.user_start, m.user_end - m.user_start) == 0
        self.model.exec(p.pid)

    def _moved_since_saved(self) -> bool:
        """A step other than ``snapshot`` and ``restore`` ran since the last of them."""
        return self.steps_run > self.saved_at_step + 1

    @rule()
    def snapshot(self) -> None:
        """``Kernel.snapshot()``: remember the machine, the model and the live pids.  Right
        after a snapshot or restore the state is the one saved: it is kept, not copied
        again (a deep copy of the machine is the most expensive step)."""
        if self.saved is None or self._moved_since_saved() or self.grown_since_snapshot:
            state = copy.deepcopy((self.model, self.handles))  # one copy: objects stay shared
            self.saved = (self.kernel.snapshot(), state, [p.pid for p in self.processes])
        self.grown_since_snapshot = False
        self.saved_at_step = self.steps_run

    @rule()
    def restore(self) -> None:
        """``Kernel.restore()``: back to the last snapshot; the handles of the processes
        live then work again, with their old address spaces (the model is restored too).
        Right after a snapshot or restore, when nothing can have changed, it copies
        nothing: repeated restores, cheap to draw, were most of them, each a deep copy of
        the machine.  (A later restore still brings the snapshot back again.)

        Without a snapshot, or once a process was made since it (its handle, still in
        the ``procs`` bundle, would go stale, R-PROC-6), it does nothing.  That is no
        precondition on purpose: ``restore`` comes first among the rules, the choice the
        shrinker tries every step as, and a rule that is not always allowed makes such a
        try redraw, which shifts every later step and so fails."""
        if self.saved is None or self.grown_since_snapshot:
            return
        if self._moved_since_saved():
            snap, state, pids = self.saved
            self.kernel.restore(snap)
            self.model, self.handles = copy.deepcopy(state)
            self.processes = [self.kernel.process(pid) for pid in pids]
        self.saved_at_step = self.steps_run

    def check_no_leaks(self) -> None:
        """Every process exits and every shm name goes: then no frame may stay allocated
        or reserved beyond what the filesystem's files hold (R-OBJ-2, R-OBJ-3)."""
        if not self.processes:
            return
        root = self.processes[0]
        if root.euid == 0:
            for path in list(self.model.names):
                root.shm_unlink(path)
                del self.model.names[path]
        if self.model.names:
            return  # no root to remove the names: the objects may live on
        for proc in reversed(self.processes):
            proc.exit(0)
            self.model.exit(proc.pid)
        self.processes = []
        self.handles = []  # their recipients exited (R-HANDLE-5)
        self.kernel.check_invariants()
        info = self.kernel.meminfo()
        files = sum(obj.allocated() for obj in self.kernel.paths.nodes.values())
        assert (info.allocated, info.reserved) == (files, 0), (
            f"after every process exited: {info.allocated:#x} bytes allocated (files hold "
            f"{files:#x}), {info.reserved:#x} reserved"
        )

    # -- checks after every step --------------------------------------------------------

    def check_invariants(self, *args: Any, **kwargs: Any) -> None:
        """After every step: the machine's own checks, silently (a failing run's log lists
        the steps, not three check lines after each), then any ``@invariant`` of a
        subclass, which hypothesis prints as usual."""
        if not self._initialize_rules_to_run:
            self.steps_run += 1
            self.after_step()
        super().check_invariants(*args, **kwargs)

    def after_step(self) -> None:
        """The checks after every step; override to add to them (call ``super()``)."""
        self.kernel_invariants_hold()
        self.layout_matches_model()
        self.handles_match_model()
        self.contents_match_model()

    def kernel_invariants_hold(self) -> None:
        self.kernel.check_invariants()

    def layout_matches_model(self) -> None:
        """Every live process maps exactly the model's pages, with its prot and kind;
        processes that exited are gone or zombies."""
        ps = self.page_size
        for proc in self.processes:
            got = [
                (page, m.prot, m.kind)
                for m in proc.mappings()
                for page in range(m.start, m.end, ps)
            ]
            locked = {
                page for m in proc.mappings() if m.locked for page in range(m.start, m.end, ps)
            }
            want = self.model.locked_pages(proc.pid)
            assert locked == want, (
                f"pid {proc.pid}: locked pages {sorted(map(hex, locked))}, the model says "
                f"{sorted(map(hex, want))} (R-LOCK-1..4, R-MMAP-19)"
            )
            expected = self.model.layout(proc.pid)
            if got != expected:
                diff = sorted(set(got) ^ set(expected))[:4]
                raise AssertionError(
                    f"pid {proc.pid}: pages differ from the model, first (page, prot, kind) "
                    f"in only one of them: {[(hex(a), hex(p), k) for a, p, k in diff]}\n"
                    + "\n".join(process_lines(proc))
                )
        for pid in self.model.dead:
            try:
                state = self.kernel.process(pid).state
            except LookupError:
                continue
            assert state == "zombie", f"pid {pid} exited but is {state}"

    def handles_match_model(self) -> None:
        """The kernel holds exactly the unused handles the machine expects, each for its
        recipient with its access mode, on an object of the expected size (R-HANDLE-1..5)."""
        got = {v: (h.recipient, h.access, h.obj.size) for v, h in self.kernel.shm_handles}
        want = {h.value: (h.recipient, h.access, h.obj.size) for h in self.handles}
        assert got == want, f"unused handles {got}, the machine expects {want}"

    def contents_match_model(self) -> None:
        if self.check_contents_every_step:
            self.check_contents()

    def teardown(self) -> None:
        if not self.check_contents_every_step:
            self.check_contents()
        if self.check_leaks_at_teardown and sys.exc_info()[0] is None:
            self.check_no_leaks()  # only after a run that passed: never hide its failure


__all__ = [
    "CALL_NAMES",
    "MACHINE_SETTINGS",
    "Call",
    "KernelMachine",
    "MapFlags",
    "Prot",
    "call_sequences",
    "calls",
    "map_flags",
    "mmap_args",
    "page_aligned_addresses",
    "page_counts",
    "prot_values",
    "run_calls",
]
