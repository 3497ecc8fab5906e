"""Property-based tests of the whole kernel, each against a model written from SPEC.md.

(a) A random walk over a Kernel (spawn, fork, exit/waitpid, mmap in every flavour,
    mmap_peer, munmap, mprotect, setrlimit, set*uid, memory reads and writes) against a
    page-by-page model: which pages each process maps, with what prot/kind/flags, and
    what they hold.  Failing calls must change nothing (R-CALL-5).
(b) Fuzzed integers for every public call: QnxError (or MemoryFault) only (R-CALL-2).
(c) Wrong Python types: TypeError and no change; ``bool`` counts as an int (R-CALL-2).
(d) ``process.libc``: the method's result or the C failure value and errno (R-CALL-1).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import PROGRAM_BASE, PS, SHMEM_BASE, SO_BASE

from qnxsim import Kernel, Mapping, MemoryFault, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.arch import ARCHES
from qnxsim.calls import CALLS as ROWS
from qnxsim.profile import PROFILES
from qnxsim.refmodel import hole_above, hole_below

MIB = 1 << 20
R, W, X = C.PROT_READ, C.PROT_WRITE, C.PROT_EXEC
READABLE = R | W | X  # R-FAULT-3

#: Every (version, arch) pair (SPEC 19, R-SYS-2); the first is the default kernel.
PAIRS = [(v, a) for v in PROFILES for a in ARCHES]

# The kernel under test's layout and profile.  ``use(k)`` sets them from the Kernel the
# walk or the fuzz world has just made, so the model's helpers below read that kernel's
# arch (R-SYS-3, R-SYS-4, SPEC 18) and version (SPEC 19).  The values here are the
# default kernel's (8.0 on x86_64), which the strategies built at import time use.
USER_START = PS  # R-SYS-3
USER_END = (1 << 39) - PS
BITS = 64
ADDR_MAX = (1 << 64) - 1
INF = C.RLIM_INFINITY
SLACK = 0  # SPEC 19: what a hole must hold beyond the size (6.4: one page)
NOINHERIT = C.MAP_NOINHERIT  # SPEC 19: 0 where the version has none (6.4)
#: The optional flags the walk's requests add, by name; ``EXTRA`` holds their values.
EXTRA_NAMES = ("MAP_LAZY", "MAP_NOINHERIT", "MAP_ANON", "MAP_BELOW", "MAP_ELF", "MAP_NOINIT")
EXTRA = tuple(PROFILES["8.0"].flag(n) for n in EXTRA_NAMES)


def use(k: Kernel) -> None:
    """Read the model's layout and profile values from ``k`` (see above)."""
    global PS, USER_START, USER_END, BITS, ADDR_MAX, PROGRAM_BASE, SHMEM_BASE, SO_BASE
    global INF, SLACK, NOINHERIT, EXTRA
    m, arch, profile = k.machine, k.machine.arch, k.profile
    PS, USER_START, USER_END = k.page_size, m.user_start, m.user_end
    BITS, ADDR_MAX = arch.bits, m.addr_max
    PROGRAM_BASE, SHMEM_BASE, SO_BASE = arch.program_base, arch.shmem_base, arch.so_base
    INF = arch.rlim_infinity
    SLACK = profile.hole_slack_pages * PS
    NOINHERIT = profile.flag("MAP_NOINHERIT")
    EXTRA = tuple(profile.flag(n) for n in EXTRA_NAMES)


def round_up(n: int) -> int:
    return -(-n // PS) * PS


# -- the page model ----------------------------------------------------------------------------


class Cell:
    """The contents of one page; every alias of the page (shared mapping, fork) holds it."""

    __slots__ = ("data",)

    def __init__(self, data: bytearray | None = None) -> None:
        self.data = data  # None: never written, reads as zero (R-OBJ-6)

    def copy(self) -> Cell:
        return Cell(bytearray(self.data) if self.data is not None else None)

    def read(self, lo: int, hi: int) -> bytes:
        return bytes(self.data[lo:hi]) if self.data is not None else bytes(hi - lo)

    def write(self, lo: int, chunk: bytes) -> None:
        if self.data is None:
            self.data = bytearray(PS)
        self.data[lo : lo + len(chunk)] = chunk


class Page(NamedTuple):
    cell: Cell
    prot: int
    kind: str
    flags: int


class PageTable(dict[int, Page]):
    """A process's pages by address; ``changed`` tells the invariant to compare them again."""

    changed = True

    def __setitem__(self, key: int, value: Page) -> None:
        self.changed = True
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        self.changed = True
        super().__delitem__(key)

    def put_many(self, pages: dict[int, Page]) -> None:
        self.changed = True
        super().update(pages)


class ProcModel:
    """What the model knows of one running process."""

    def __init__(self, pid: int, ppid: int, uid: int) -> None:
        self.pid = pid
        self.ppid = ppid
        self.ruid = self.euid = self.suid = uid
        self.pages = PageTable()
        self.written: set[int] = set()  # addresses whose contents may be non-zero
        self.limits = {C.RLIMIT_AS: (INF, INF), C.RLIMIT_DATA: (INF, INF)}

    def holes(self) -> list[tuple[int, int]]:
        """The free holes of the user range (R-PLACE-4), from the mapped pages."""
        out: list[tuple[int, int]] = []
        pos = USER_START
        for page in sorted(self.pages):
            if page > pos:
                out.append((pos, page))
            pos = page + PS
        if pos < USER_END:
            out.append((pos, USER_END))
        return out

    def mapped_bytes(self, lo: int = 0, hi: int = USER_END) -> int:
        return PS * sum(1 for p in self.pages if lo <= p < hi)

    def data_bytes(self, lo: int = 0, hi: int = USER_END) -> int:
        """RLIMIT_DATA's measure (R-MMAP-18): private anonymous memory that is not stack."""
        return PS * sum(
            1
            for a, p in self.pages.items()
            if lo <= a < hi and p.kind == "anon" and not p.flags & C.MAP_STACK
        )

    def drop(self, lo: int, hi: int) -> None:
        for a in [a for a in self.pages if lo <= a < hi]:
            del self.pages[a]


def expected_hint(addr: int, flags: int) -> tuple[int | None, bool]:
    """R-PLACE-1: ``(hint, downward)``; hint None when SPEC leaves it open (outside the range)."""
    downward = bool(flags & (C.MAP_BELOW | C.MAP_STACK))
    if addr and not flags & C.MAP_STACK:
        hint = addr - addr % PS if flags & C.MAP_BELOW else round_up(addr)
        return (hint if USER_START <= hint < USER_END else None), downward
    if flags & C.MAP_STACK:
        return PROGRAM_BASE, downward
    if flags & C.MAP_ELF:
        return SO_BASE, downward
    if flags & C.MAP_TYPE == C.MAP_PRIVATE:
        return PROGRAM_BASE, downward
    return SHMEM_BASE, downward


class Expect(NamedTuple):
    """A predicted outcome: ``errno`` None means success is required, ``maybe`` allows both."""

    errno: int | None
    maybe: bool = False
    start: int | None = None  # where the new mapping must start (None: not predicted)
    size: int = 0
    guard: int = 0
    pg_off: int = 0


def expect_mmap(
    target: ProcModel, addr: int, length: int, prot: int, flags: int, off: int, free: int
) -> Expect:
    """SPEC 3 / 4 for the anonymous requests the walk makes, checks in table order."""
    fixed = bool(flags & C.MAP_FIXED)
    private = flags & C.MAP_TYPE == C.MAP_PRIVATE
    guard = 0
    if flags & C.MAP_STACK:
        if off % (1 << BITS) >= length:
            return Expect(E.EINVAL)  # R-MMAP-8
        guard, off = round_up(off), 0  # R-MMAP-26
    pg_off = off % PS
    size = round_up(length + pg_off)  # R-MMAP-14
    if fixed:
        start = addr - addr % PS  # R-MMAP-F1
        if start < USER_START or start >= USER_END:
            return Expect(E.EINVAL)
        if start + size > USER_END:
            return Expect(E.ENOMEM)
        if addr % PS != off % PS:  # R-MMAP-F2
            if not private:
                return Expect(E.EINVAL)
            pg_off = addr % PS
            size = round_up(length + pg_off)
            if start + size > USER_END:
                return Expect(E.ENOMEM)
    else:
        hint, downward = expected_hint(addr, flags)
        if hint is None:
            # SPEC is silent on a hint outside the user range: any free place will do.
            return Expect(None, maybe=True, size=size, guard=guard, pg_off=pg_off)
        search = hole_below if downward else hole_above
        placed = search(target.holes(), hint, size, SLACK)
        if placed is None:
            return Expect(E.ENOMEM)  # R-MMAP-16
        start = placed
    end = start + size
    total = target.mapped_bytes() - target.mapped_bytes(start, end) + size
    if total > target.limits[C.RLIMIT_AS][0]:
        return Expect(E.ENOMEM)  # R-MMAP-18
    if private and not flags & C.MAP_STACK:
        data = target.data_bytes() - target.data_bytes(start, end) + size
        if data > target.limits[C.RLIMIT_DATA][0]:
            return Expect(E.ENOMEM)
    need = 0 if flags & C.MAP_LAZY else size - guard  # R-MMAP-20, R-SYS-6
    if need > free:
        replaces = fixed and target.mapped_bytes(start, end) > 0
        errno = None if replaces else E.ENOMEM
        return Expect(errno, replaces, start, size, guard, pg_off)
    return Expect(None, start=start, size=size, guard=guard, pg_off=pg_off)


def expect_fault(model: ProcModel, addr: int, n: int, access: str) -> tuple[int, int, int] | None:
    """R-FAULT-1: the first fault of an access, as ``(signo, code, addr)``, or None."""
    allowed = {"r": READABLE, "w": W, "x": X}[access]
    if n == 0:
        return None  # no page is touched
    page = addr - addr % PS
    while page < addr + n:
        where = max(addr, page)
        p = model.pages.get(page)
        if p is None:
            return C.SIGSEGV, C.SEGV_MAPERR, where
        if not p.prot & allowed:
            return C.SIGSEGV, C.SEGV_ACCERR, where
        page += PS
    return None


def widen(addr: int, length: int) -> tuple[int, int] | None:
    """R-UNMAP-1..3: the page range of a call, or None when ``len`` is 0 after the cut."""
    length = min(length, ADDR_MAX - addr)
    if length == 0:
        return None
    return addr - addr % PS, round_up(addr + length)


# -- observing the kernel ---------------------------------------------------------------------

State = tuple[Any, ...]


def observe(k: Kernel, samples: list[tuple[int, int]]) -> State:
    """What a failing call must leave as it was: processes, mappings, RAM, sample contents."""
    procs = tuple(
        (
            p.pid,
            p.ppid,
            p.state,
            (p.ruid, p.euid, p.suid, p.rgid, p.egid, p.sgid),
            tuple(sorted(p.rlimits.items())),
            p.mappings(),
        )
        for p in k.processes()
    )
    contents = []
    for pid, addr in samples:
        try:
            contents.append(k.process(pid).read_memory(addr, PS))
        except (MemoryFault, LookupError) as gone:  # unmapped or reaped by the call itself
            contents.append(repr(gone).encode())
    return procs, k.meminfo(), tuple(contents)


def pages_of(proc: Process) -> dict[int, tuple[int, str, int]]:
    return {
        a: (m.prot, m.kind, m.flags) for m in proc.mappings() for a in range(m.start, m.end, PS)
    }


# -- (a) the state machine ---------------------------------------------------------------------

PROTS = st.sampled_from([R | W, R, 0, W, R | X, R | W | X, X])
EXTRA_FLAGS = st.sets(st.integers(0, len(EXTRA_NAMES) - 1), max_size=3)  # indexes of EXTRA
PAGE_COUNTS = st.one_of(st.integers(1, 4), st.integers(1, 64), st.sampled_from([1024, 2048, 20000]))


class KernelWalk(RuleBasedStateMachine):
    """A Kernel and its page model, stepped together; ``kernel_options`` choose the
    version and arch."""

    kernel_options: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.k = Kernel(ram=32 * MIB, **self.kernel_options)
        use(self.k)
        self.procs: dict[int, ProcModel] = {}
        self.zombies: dict[int, tuple[int, int]] = {}  # pid -> (ppid, exit status)
        self.next_pid = 2
        self.verified: dict[int, tuple[Mapping, ...]] = {}  # records last found to agree

    # -- helpers ---------------------------------------------------------------------------

    def new_proc(self, proc: Process, ppid: int) -> ProcModel:
        assert proc.pid == self.next_pid, "R-SYS-7: pids ascend and are never reused"
        self.next_pid += 1
        model = ProcModel(proc.pid, ppid, proc.ruid)
        self.procs[proc.pid] = model
        return model

    def pick(self, data: st.DataObject, label: str) -> tuple[Process, ProcModel]:
        pid = data.draw(st.sampled_from(sorted(self.procs)), label=label)
        return self.k.process(pid), self.procs[pid]

    @staticmethod
    def written_pages(model: ProcModel) -> list[tuple[int, Cell]]:
        """The readable pages that hold written bytes, ascending."""
        out: list[tuple[int, Cell]] = []
        for a in sorted(model.written):
            p = model.pages.get(a)
            if p is not None and p.cell.data is not None and p.prot & READABLE:
                out.append((a, p.cell))
        return out

    def samples(self) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for pid, model in sorted(self.procs.items()):
            out.extend((pid, a) for a, _ in self.written_pages(model)[:6])
        return out

    def attempt(
        self, fn: Callable[..., Any], *args: Any, faults: bool = False
    ) -> tuple[Any, BaseException | None]:
        """Call; a failure (QnxError, or MemoryFault for an access) must change nothing."""
        samples = self.samples()
        before = observe(self.k, samples)
        caught: tuple[type[BaseException], ...] = (QnxError, MemoryFault) if faults else (QnxError,)
        name = getattr(fn, "__name__", "call")
        try:
            result = fn(*args)
        except caught as err:
            what = (
                E.errorcode.get(err.errno)
                if isinstance(err, QnxError)
                else str(err).split(" at ")[0]
            )
            event(f"{name}: {what}")
            assert observe(self.k, samples) == before, (
                f"R-CALL-5: failing {getattr(fn, '__name__', fn)}{args} -> {err!r} changed state"
            )
            return None, err
        event(f"{name}: ok")
        return result, None

    def draw_addr(self, data: st.DataObject, model: ProcModel, label: str) -> int:
        """An address in or near a mapping (often a lazy one), a category base, or an edge."""
        where = data.draw(
            st.sampled_from(["mapped", "mapped", "lazy", "base", "edge"]), label=label + " near"
        )
        pages = list(model.pages)
        if where == "lazy":
            pages = [a for a, p in model.pages.items() if p.flags & C.MAP_LAZY and not p.cell.data]
        if where == "base" or not pages:
            base = data.draw(st.sampled_from([PROGRAM_BASE, SHMEM_BASE, SO_BASE]), label=label)
        elif where == "edge":
            base = data.draw(st.sampled_from([USER_START, USER_END - PS, USER_END, 0]), label=label)
        else:
            base = pages[data.draw(st.integers(0, len(pages) - 1), label=label + " page")]
        shift = data.draw(st.one_of(st.just(0), st.integers(-4, 4)), label=label + " pages") * PS
        sub = data.draw(st.sampled_from([0, 0, 0, 1, PS // 2, PS - 1]), label=label + " sub-page")
        return max(0, base + shift + sub)

    def expect_peer(self, caller: ProcModel, pid: int) -> tuple[ProcModel | None, int | None]:
        """R-PEER-1..3: the target's model, or the errno of the refusal."""
        if pid in (0, caller.pid):
            return caller, None
        if pid == 1:
            return None, E.EPERM  # [SIM] procnto owns no user mappings (R-SYS-7)
        target = self.procs.get(pid)
        if target is None:
            return None, E.ESRCH
        may = caller.euid == 0 or bool({caller.ruid, caller.euid} & {target.ruid, target.suid})
        return (target, None) if may else (None, E.EPERM)

    # -- processes --------------------------------------------------------------------------

    @initialize(ram=st.sampled_from([32, 48, 64]))
    def boot(self, ram: int) -> None:
        self.k = Kernel(ram=ram * MIB, **self.kernel_options)
        use(self.k)
        image = self.k.spawn(uid=0, image=True)
        model = self.new_proc(image, 1)
        for a, (prot, kind, flags) in pages_of(image).items():
            model.pages[a] = Page(Cell(), prot, kind, flags)
        self.new_proc(self.k.spawn(uid=1000, image=False), 1)

    @precondition(lambda self: len(self.procs) < 6)
    @rule(data=st.data(), uid=st.sampled_from([0, 1000]), from_parent=st.booleans())
    def spawn(self, data: st.DataObject, uid: int, from_parent: bool) -> None:
        if from_parent and self.procs:
            parent, pm = self.pick(data, "parent")
            child = parent.spawn(image=False)
            model = self.new_proc(child, parent.pid)
            model.ruid, model.euid, model.suid = pm.ruid, pm.euid, pm.suid
            model.limits = dict(pm.limits)
        else:
            child = self.k.spawn(uid=uid, image=False)
            self.new_proc(child, 1)
        assert child.mappings() == ()

    @precondition(lambda self: self.procs and len(self.procs) < 6)
    @rule(data=st.data())
    def fork(self, data: st.DataObject) -> None:
        """R-PROC-2: private pages copied, shared pages shared, MAP_NOINHERIT left out."""
        parent, pm = self.pick(data, "parent")
        free = self.k.meminfo().free
        pid, err = self.attempt(parent.fork)
        if err is not None:
            private = sum(1 for p in pm.pages.values() if p.flags & C.MAP_TYPE == C.MAP_PRIVATE)
            assert err.errno == E.ENOMEM and free < private * PS, f"fork refused: {err}"
            return
        child = self.new_proc(self.k.process(pid), parent.pid)
        child.ruid, child.euid, child.suid = pm.ruid, pm.euid, pm.suid
        child.limits = dict(pm.limits)
        pages: dict[int, Page] = {}
        for a, p in pm.pages.items():
            if p.flags & NOINHERIT:
                continue
            shared = p.flags & C.MAP_TYPE == C.MAP_SHARED
            pages[a] = p._replace(cell=p.cell if shared else p.cell.copy())
        child.pages.put_many(pages)
        child.written = pm.written & pages.keys()

    @precondition(lambda self: len(self.procs) > 1)
    @rule(data=st.data(), status=st.integers(-300, 300), wait=st.booleans())
    def exit(self, data: st.DataObject, status: int, wait: bool) -> None:
        """R-PROC-4: mappings go; a zombie until the parent waits; orphans reaped at once."""
        proc, model = self.pick(data, "exiting")
        proc.exit(status)
        del self.procs[proc.pid]
        for z, (zppid, _) in list(self.zombies.items()):
            if zppid == proc.pid:
                del self.zombies[z]
        for other in self.procs.values():
            if other.ppid == proc.pid:
                other.ppid = 1
        if model.ppid in self.procs:
            self.zombies[proc.pid] = (model.ppid, status & 0xFF)
            if wait:
                parent = self.k.process(model.ppid)
                assert parent.waitpid(proc.pid) == (proc.pid, status & 0xFF)
                del self.zombies[proc.pid]

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), options=st.sampled_from([0, C.WNOHANG]))
    def waitpid(self, data: st.DataObject, options: int) -> None:
        proc, _ = self.pick(data, "waiter")
        kids = {p for p, m in self.procs.items() if m.ppid == proc.pid}
        dead = {z for z, (zppid, _) in self.zombies.items() if zppid == proc.pid}
        pid = data.draw(st.sampled_from([-1, *sorted(kids | dead), 999]), label="pid")
        if pid != -1:
            kids, dead = kids & {pid}, dead & {pid}
        got, err = self.attempt(proc.waitpid, pid, options)
        if not kids and not dead:
            assert err is not None and err.errno == E.ECHILD
        elif dead:
            assert err is None and got[0] in dead and got[1] == self.zombies[got[0]][1]
            del self.zombies[got[0]]
        elif options & C.WNOHANG:
            assert err is None and got == (0, 0)
        else:
            assert err is not None and err.errno == E.EDEADLK  # [SIM] a wait cannot block

    @precondition(lambda self: self.procs)
    @rule(
        data=st.data(),
        call=st.sampled_from(["setuid", "seteuid"]),
        uid=st.sampled_from([0, 1000, 2000]),
    )
    def change_uid(self, data: st.DataObject, call: str, uid: int) -> None:
        """R-PROC-5, POSIX: root sets all (setuid) or euid; others switch to ruid or suid."""
        proc, model = self.pick(data, "proc")
        _, err = self.attempt(getattr(proc, call), uid)
        if model.euid == 0:
            assert err is None
            if call == "setuid":
                model.ruid = model.suid = uid
            model.euid = uid
        elif uid in (model.ruid, model.suid):
            assert err is None
            model.euid = uid
        else:
            assert err is not None and err.errno == E.EPERM

    @precondition(lambda self: self.procs)
    @rule(
        data=st.data(),
        resource=st.sampled_from([C.RLIMIT_AS, C.RLIMIT_DATA]),
        extra=st.one_of(st.integers(0, 64), st.just(None)),
    )
    def setrlimit(self, data: st.DataObject, resource: int, extra: int | None) -> None:
        proc, model = self.pick(data, "proc")
        used = model.mapped_bytes() if resource == C.RLIMIT_AS else model.data_bytes()
        limit = INF if extra is None else used + extra * PS
        _, err = self.attempt(proc.setrlimit, resource, limit, limit)
        if limit > model.limits[resource][1] and model.euid != 0:
            assert err is not None and err.errno == E.EPERM
        else:
            assert err is None
            model.limits[resource] = (limit, limit)

    # -- mapping -----------------------------------------------------------------------------

    def map_into(
        self,
        call: Callable[..., int],
        head: tuple[int, ...],
        target: ProcModel | None,
        refusal: int | None,
        addr: int,
        length: int,
        prot: int,
        flags: int,
        off: int,
    ) -> None:
        free = self.k.meminfo().free
        expect = (
            Expect(refusal)
            if target is None
            else expect_mmap(target, addr, length, prot, flags, off, free)
        )
        got, err = self.attempt(call, *head, addr, length, prot, flags, C.NOFD, off)
        what = f"{call.__name__}{(*head, hex(addr), hex(length), hex(prot), hex(flags), off)}"
        if err is not None:
            assert expect.maybe or expect.errno == err.errno, f"{what}: {err}, expected {expect}"
            return
        assert expect.errno is None, f"{what} succeeded at {got:#x}; expected {expect}"
        assert target is not None
        fixed = bool(flags & C.MAP_FIXED)
        if fixed:
            assert got == addr, "R-MMAP-F4: the result is exactly addr"
        start = got - got % PS
        size, guard = expect.size, expect.guard
        if expect.start is not None:
            assert start == expect.start, f"{what}: placed at {start:#x}, expected {expect}"
            assert got - start == expect.pg_off
        if not fixed:
            assert target.mapped_bytes(start, start + size) == 0, "R-PLACE-4: overlaps"
            assert start >= USER_START and start + size <= USER_END
        target.drop(start, start + size)  # R-MMAP-F3
        flags |= C.MAP_ANON  # R-MMAP-6: NOFD implies MAP_ANON; R-MAP-1 stores it
        body = "anon" if flags & C.MAP_TYPE == C.MAP_PRIVATE else "shared-anon"
        target.pages.put_many(
            {
                a: Page(Cell(), C.PROT_NONE, "stack-guard", flags)
                if a < start + guard
                else Page(Cell(), prot, body, flags)
                for a in range(start, start + size, PS)
            }
        )

    def draw_request(self, data: st.DataObject, model: ProcModel) -> tuple[int, int, int, int, int]:
        kind = data.draw(st.sampled_from(["hint", "fixed", "stack"]), label="placement")
        flags = data.draw(st.sampled_from([C.MAP_PRIVATE, C.MAP_SHARED]), label="type")
        for i in data.draw(EXTRA_FLAGS, label="extra flags"):
            flags |= EXTRA[i]
        pages = data.draw(PAGE_COUNTS, label="pages")
        if flags & C.MAP_LAZY and pages > 64:
            pages = pages % 64 + 1  # keep lazily mapped ranges small: the model is per page
        length = pages * PS - data.draw(st.sampled_from([0, 0, 1, PS - 1]), label="short by")
        prot = data.draw(PROTS, label="prot")
        off = data.draw(st.sampled_from([0, 0, 0, 1, PS, PS + 5]), label="off")
        addr = 0
        if kind == "stack":
            flags |= C.MAP_STACK | C.MAP_ANON  # R-MMAP-8: MAP_STACK needs MAP_ANON
            off = data.draw(st.sampled_from([0, 1, PS, 2 * PS, length]), label="guard")
            if data.draw(st.booleans(), label="fixed stack"):
                flags |= C.MAP_FIXED
                addr = self.draw_addr(data, model, "addr")
        elif kind == "fixed":
            flags |= C.MAP_FIXED
            addr = self.draw_addr(data, model, "addr")
        elif data.draw(st.booleans(), label="with hint"):
            addr = self.draw_addr(data, model, "hint")
        return addr, length, prot, flags, off

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), wide=st.booleans())
    def mmap(self, data: st.DataObject, wide: bool) -> None:
        proc, model = self.pick(data, "proc")
        addr, length, prot, flags, off = self.draw_request(data, model)
        call = proc.mmap64 if wide else proc.mmap
        self.map_into(call, (), model, None, addr, length, prot, flags, off)

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), leave=st.integers(0, 8))
    def fill_ram(self, data: st.DataObject, leave: int) -> None:
        """Map nearly all free RAM: later touches, forks and mappings meet R-SYS-6."""
        proc, model = self.pick(data, "proc")
        length = self.k.meminfo().free - leave * PS
        if length <= 0:
            return
        flags = C.MAP_PRIVATE | C.MAP_ANON
        self.map_into(proc.mmap, (), model, None, 0, length, R | W, flags, 0)

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), wide=st.booleans())
    def mmap_peer(self, data: st.DataObject, wide: bool) -> None:
        """SPEC 6: the target's address space, limits and RAM; ESRCH then EPERM first."""
        caller, cm = self.pick(data, "caller")
        zombies = sorted(self.zombies)
        pid = data.draw(
            st.sampled_from([*sorted(self.procs), 0, *zombies, 1, 9999, -1]), label="target pid"
        )
        target, refusal = self.expect_peer(cm, pid)
        space = target if target is not None else cm
        addr, length, prot, flags, off = self.draw_request(data, space)
        call = caller.mmap64_peer if wide else caller.mmap_peer
        before = pages_of(caller)
        self.map_into(call, (pid,), target, refusal, addr, length, prot, flags, off)
        if target is not cm:
            assert pages_of(caller) == before, "R-PEER-5: the caller's space is unchanged"

    @precondition(lambda self: self.procs)
    @rule(
        data=st.data(),
        how=st.sampled_from(["munmap", "munmap_flags", "munmap_peer"]),
        pages=st.integers(0, 80),
        extra=st.sampled_from([0, 0, 1, -1, PS // 2]),
        special=st.sampled_from([None, None, None, 0, ADDR_MAX]),
    )
    def munmap(
        self, data: st.DataObject, how: str, pages: int, extra: int, special: int | None
    ) -> None:
        """SPEC 7: every mapped page of the widened range goes; the rest is ignored."""
        proc, model = self.pick(data, "proc")
        target, refusal = model, None
        args: tuple[int, ...] = ()
        if how == "munmap_peer":
            pid = data.draw(st.sampled_from([*sorted(self.procs), 0, 1, 9999]), label="pid")
            args = (pid,)
            found, refusal = self.expect_peer(model, pid)
            target = found if found is not None else model
        addr = self.draw_addr(data, target, "addr")
        length = max(0, pages * PS + extra) if special is None else special
        args = (*args, addr, length, 0) if how == "munmap_flags" else (*args, addr, length)
        _, err = self.attempt(getattr(proc, how), *args)
        span = widen(addr, length)
        if refusal is not None:
            assert err is not None and err.errno == refusal
        elif span is None or span[1] > USER_END:
            assert err is not None and err.errno == E.EINVAL  # R-UNMAP-2, R-UNMAP-4
        else:
            assert err is None, f"{how}{args}: {err}"
            target.drop(*span)

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), prot=PROTS, pages=st.integers(0, 12), extra=st.sampled_from([0, 1]))
    def mprotect(self, data: st.DataObject, prot: int, pages: int, extra: int) -> None:
        """SPEC 8: a wholly mapped range gets the prot; stack guards keep theirs (R-MPROT-6)."""
        proc, model = self.pick(data, "proc")
        addr = self.draw_addr(data, model, "addr")
        length = pages * PS + extra
        _, err = self.attempt(proc.mprotect, addr, length, prot)
        span = widen(addr, length)
        if span is None or span[1] > USER_END:
            assert err is not None and err.errno == E.ENOMEM
            return
        lo, hi = span
        if any(a not in model.pages for a in range(lo, hi, PS)):
            assert err is not None and err.errno == E.ENOMEM, "R-MPROT-2: unmapped page"
            return
        assert err is None, f"mprotect({addr:#x}, {length:#x}, {prot:#x}): {err}"
        for a in range(lo, hi, PS):
            p = model.pages[a]
            if p.kind != "stack-guard":
                model.pages[a] = p._replace(prot=prot)

    # -- memory access -----------------------------------------------------------------------

    @staticmethod
    def fault_as_expected(
        err: BaseException | None, fault: tuple[int, int, int] | None, addr: int, n: int, free: int
    ) -> bool:
        """R-FAULT-1, page by page in address order.

        The fault the model predicts, or none; or, when RAM is that short (R-SYS-6), a
        SIGBUS/BUS_ADRERR from a lazy page at or before it.
        """
        if err is None:
            return fault is None
        if not isinstance(err, MemoryFault):
            return False
        if (err.signo, err.code, err.addr) == fault:
            return True
        pages = (round_up(addr + n) - (addr - addr % PS)) // PS
        limit = fault[2] if fault is not None else addr + n
        return (
            (err.signo, err.code) == (C.SIGBUS, C.BUS_ADRERR)
            and addr <= err.addr <= limit
            and free < pages * PS
        )

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), n=st.integers(0, 3 * PS), seed=st.integers(0, 2**16))
    def write_memory(self, data: st.DataObject, n: int, seed: int) -> None:
        proc, model = self.pick(data, "proc")
        addr = self.draw_addr(data, model, "addr")
        payload = random.Random(seed).randbytes(n)
        free = self.k.meminfo().free
        _, err = self.attempt(proc.write_memory, addr, payload, faults=True)
        fault = expect_fault(model, addr, n, "w")
        assert self.fault_as_expected(err, fault, addr, n, free), f"{err!r}, expected {fault}"
        if err is not None:
            return
        pos = addr
        while pos < addr + n:
            page = pos - pos % PS
            hi = min(addr + n, page + PS)
            cell = model.pages[page].cell
            cell.write(pos - page, payload[pos - addr : hi - addr])
            for other in self.procs.values():  # shared pages alias at the same address
                alias = other.pages.get(page)
                if alias is not None and alias.cell is cell:
                    other.written.add(page)
            pos = hi

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), n=st.integers(0, 3 * PS))
    def read_memory(self, data: st.DataObject, n: int) -> None:
        proc, model = self.pick(data, "proc")
        addr = self.draw_addr(data, model, "addr")
        free = self.k.meminfo().free
        got, err = self.attempt(proc.read_memory, addr, n, faults=True)
        fault = expect_fault(model, addr, n, "r")
        assert self.fault_as_expected(err, fault, addr, n, free), f"{err!r}, expected {fault}"
        if err is not None:
            return
        expect = bytearray()
        pos = addr
        while pos < addr + n:
            page = pos - pos % PS
            hi = min(addr + n, page + PS)
            expect += model.pages[page].cell.read(pos - page, hi - page)
            pos = hi
        assert got == bytes(expect)

    @precondition(lambda self: self.procs)
    @rule(data=st.data(), n=st.integers(0, 3 * PS), access=st.sampled_from("rwx"))
    def check_access(self, data: st.DataObject, n: int, access: str) -> None:
        """check_access faults exactly as the access would, and changes nothing either way."""
        proc, model = self.pick(data, "proc")
        addr = self.draw_addr(data, model, "addr")
        samples = self.samples()
        before = observe(self.k, samples)
        fault = expect_fault(model, addr, n, access)
        free = self.k.meminfo().free
        err: MemoryFault | None = None
        try:
            proc.check_access(addr, n, access)
        except MemoryFault as caught:
            err = caught
        assert self.fault_as_expected(err, fault, addr, n, free), f"{err!r}, expected {fault}"
        assert observe(self.k, samples) == before

    # -- after every step --------------------------------------------------------------------

    @invariant()
    def kernel_matches_the_model(self) -> None:
        k = self.k
        k.check_invariants()
        table = {p.pid: p for p in k.processes()}
        alive = {pid for pid, p in table.items() if p.alive and pid != 1}
        assert alive == set(self.procs), "process table"
        zombies = {pid: p.ppid for pid, p in table.items() if not p.alive}
        assert zombies == {z: ppid for z, (ppid, _) in self.zombies.items()}
        for pid, model in self.procs.items():
            proc = table[pid]
            assert proc.ppid == model.ppid
            assert (proc.ruid, proc.euid, proc.suid) == (model.ruid, model.euid, model.suid)
            for resource, limit in model.limits.items():
                assert proc.getrlimit(resource) == limit
            records = proc.mappings()
            if model.pages.changed or self.verified.get(pid) != records:
                expect = {a: (p.prot, p.kind, p.flags) for a, p in model.pages.items()}
                actual = pages_of(proc)
                if actual != expect:
                    diff = sorted(set(actual.items()) ^ set(expect.items()))[:6]
                    raise AssertionError(f"pid {pid}: mapped pages differ from the model: {diff}")
                self.verified[pid] = records  # both sides agree; unchanged, they still do
                model.pages.changed = False
            for a, cell in self.written_pages(model):
                assert proc.read_memory(a, PS) == cell.read(0, PS), f"pid {pid} {a:#x}"
            for a in self.zero_samples(model):
                assert proc.read_memory(a, PS) == bytes(PS), f"pid {pid} {a:#x} is not zero"

    @staticmethod
    def zero_samples(model: ProcModel) -> list[int]:
        """Some never-written pages that a read does not allocate (anonymous, not lazy)."""

        def fits(a: int) -> bool:
            p = model.pages[a]
            return (
                p.cell.data is None
                and p.kind in ("anon", "shared-anon")
                and p.prot & READABLE
                and not p.flags & C.MAP_LAZY
            )

        first = [a for a in itertools.islice(model.pages, 64) if fits(a)][:4]
        last = [a for a in itertools.islice(reversed(model.pages), 64) if fits(a)][:4]
        return first + last


WALK_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@pytest.mark.parametrize(("version", "arch"), PAIRS)
def test_R_CALL_5_R_PLACE_R_PROC_R_FAULT_kernel_walk_matches_the_page_model(
    version: str, arch: str
) -> None:
    """(a) Every step agrees with the model; every failing call changes nothing (R-CALL-5).
    On every version and arch (SPEC 19, R-SYS-2): the default kernel gets the long run."""
    options = {"version": version, "arch": arch}
    walk = type(f"KernelWalk_{version}_{arch}", (KernelWalk,), {"kernel_options": options})
    examples = WALK_SETTINGS.max_examples if (version, arch) == PAIRS[0] else 8
    run_state_machine_as_test(walk, settings=settings(WALK_SETTINGS, max_examples=examples))


# -- (b), (c), (d): every public call, one call per example ----------------------------------

#: The public calls and their parameters, in C order.  "data" is bytes, "access" a str.
SIGNATURES: dict[str, tuple[str, ...]] = {
    "mmap": ("addr", "len", "prot", "flags", "fd", "off"),
    "mmap64": ("addr", "len", "prot", "flags", "fd", "off"),
    "mmap_peer": ("pid", "addr", "len", "prot", "flags", "fd", "off"),
    "mmap64_peer": ("pid", "addr", "len", "prot", "flags", "fd", "off"),
    "munmap": ("addr", "len"),
    "munmap_flags": ("addr", "len", "flags"),
    "munmap_peer": ("pid", "addr", "len"),
    "mprotect": ("addr", "len", "prot"),
    "read_memory": ("addr", "size"),
    "write_memory": ("addr", "data"),
    "check_access": ("addr", "size", "access"),
    "setrlimit": ("resource", "soft", "hard"),
    "getrlimit": ("resource",),
    "setuid": ("uid",),
    "seteuid": ("uid",),
    "setgid": ("gid",),
    "setegid": ("gid",),
    "waitpid": ("pid", "options"),
    "mapping_at": ("addr",),
}
MEMORY_ACCESS = ("read_memory", "write_memory", "check_access")
NOT_INT = ("data", "access")

#: Integers a C caller can pass that sit on some boundary.
EDGE_INTS = [
    *(0, 1, -1, 2, PS - 1, PS, PS + 1, 0x7F, 0xFF, 0xFFFF),
    *(2**31 - 1, 2**31, -(2**31), 2**32 - 1, 2**32, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1),
    *(2**64 - 1, 2**64, 2**64 + 1, 2**128 - 1, -(2**128), 2**200),
    *(USER_END, USER_END - PS, USER_END + PS, ADDR_MAX - PS + 1, 1 << 39, 1 << 44),
    *(C.PROT_MASK, C.MAP_RESERVMASK, 0xFFFFFFFF, ~C.MAP_TYPE),
]


class World(NamedTuple):
    """A small machine to call into: a root image, a user process, a zombie, two fds."""

    k: Kernel
    root: Process
    user: Process
    anon: int  # the user's private anonymous pages (written)
    lazy: int  # the user's lazy pages
    shared: int  # the root's shared anonymous pages (written)
    zero_fd: int  # the root's /dev/zero, O_RDWR
    file_fd: int  # the user's /data/file, O_RDONLY
    zombie: int
    samples: list[tuple[int, int]]


def fuzz_world(version: str = "8.0", arch: str = "x86_64") -> World:
    k = Kernel(ram=32 * MIB, version=version, arch=arch)
    use(k)
    root = k.spawn(uid=0, image=True)
    user = k.spawn(uid=1000, gid=1000, image=False)
    anon = user.mmap(0, 4 * PS, R | W, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    user.write_memory(anon + 5, b"user bytes")
    lazy = user.mmap(0, 8 * PS, R | W, C.MAP_PRIVATE | C.MAP_LAZY, C.NOFD, 0)
    shared = root.mmap(0, 2 * PS, R | W, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    root.write_memory(shared, b"shared bytes")
    k.create_file("/data/file", b"file contents", mode=0o644)
    zero_fd = root.open("/dev/zero", C.O_RDWR)
    file_fd = user.open("/data/file", C.O_RDONLY)
    zombie = k.process(root.fork())
    zombie.exit(7)
    samples = [(user.pid, anon), (root.pid, shared)]
    return World(k, root, user, anon, lazy, shared, zero_fd, file_fd, zombie.pid, samples)


def plausible(name: str, w: World) -> st.SearchStrategy[int]:
    """Values of a parameter that often make a call succeed (or fail late)."""
    table: dict[str, list[int]] = {
        "addr": [0, w.anon, w.anon + 1, w.lazy, w.shared, PROGRAM_BASE, SHMEM_BASE, PS],
        "len": [1, PS, 2 * PS, 8 * PS, 64 * MIB],
        "size": [0, 1, PS, 2 * PS, 8 * PS + 3],
        "prot": [0, R, R | W, R | X, R | W | X, W, C.PROT_NOCACHE | R],
        "flags": [
            *(0, C.MAP_PRIVATE | C.MAP_ANON, C.MAP_SHARED | C.MAP_ANON, C.MAP_PRIVATE),
            *(C.MAP_SHARED, C.MAP_PRIVATE | C.MAP_FIXED, C.MAP_SHARED | C.MAP_FIXED),
            *(C.MAP_PRIVATE | C.MAP_ANON | C.MAP_STACK, C.MAP_PRIVATE | C.MAP_LAZY),
            *(C.MAP_SHARED | C.MAP_PHYS, C.MAP_PRIVATE | C.MAP_ANON | C.MAP_PHYS),
            *(C.MAP_PRIVATE | C.MAP_ELF, C.MAP_SHARED | C.MAP_NOINHERIT, C.MAP_BELOW | 2),
        ],
        "fd": [C.NOFD, w.zero_fd, w.file_fd, 0, 1, 2, 99],
        "off": [0, PS, 0x10_0000, 0xF000_0000, 2 * PS + 1],
        "pid": [0, 1, w.root.pid, w.user.pid, w.zombie, 9999, -1],
        "resource": list(range(10)),
        "soft": [INF, 0, PS, 1 << 40],
        "hard": [INF, 0, PS, 1 << 40],
        "uid": [0, 1000, 1001],
        "gid": [0, 1000, 1001],
        "options": [0, C.WNOHANG],
    }
    return st.sampled_from(table[name])


def c_ints(name: str, w: World) -> st.SearchStrategy[int]:
    """Mostly plausible values (so later rules are reached), else anything a C caller has."""
    wild = st.one_of(
        st.sampled_from(EDGE_INTS),
        st.integers(-16, 16),
        st.integers(0, 2**64 - 1),
        st.integers(-(2**70), 2**70),
    )
    good = plausible(name, w)
    # Three in four plausible: hypothesis's one_of does not weight repeated branches.
    return st.integers(0, 3).flatmap(lambda pick: wild if pick == 3 else good)


def draw_args(data: st.DataObject, call: str, w: World) -> list[Any]:
    args: list[Any] = []
    for name in SIGNATURES[call]:
        if name == "data":
            args.append(data.draw(st.binary(max_size=3 * PS), label=name))
        elif name == "access":
            args.append(data.draw(st.sampled_from("rwx"), label=name))
        else:
            args.append(data.draw(c_ints(name, w), label=name))
    return args


def valid_args(call: str, w: World) -> tuple[str, list[Any]]:
    """A call that works on a fresh world, as ``(caller: "root" | "user", args)``."""
    u, a = w.user.pid, w.anon
    table: dict[str, tuple[str, list[Any]]] = {
        "mmap": ("user", [0, PS, R | W, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0]),
        "mmap64": ("user", [0, PS, R | W, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0]),
        "mmap_peer": ("root", [u, 0, PS, R | W, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0]),
        "mmap64_peer": ("root", [u, 0, PS, R, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0]),
        "munmap": ("user", [a, PS]),
        "munmap_flags": ("user", [a, PS, 0]),
        "munmap_peer": ("root", [u, a, PS]),
        "mprotect": ("user", [a, PS, R]),
        "read_memory": ("user", [a, 16]),
        "write_memory": ("user", [a, b"new bytes"]),
        "check_access": ("user", [a, 16, "w"]),
        "setrlimit": ("user", [C.RLIMIT_AS, 64 * MIB, 64 * MIB]),
        "getrlimit": ("user", [C.RLIMIT_DATA]),
        "setuid": ("root", [1000]),
        "seteuid": ("user", [1000]),
        "setgid": ("root", [5]),
        "setegid": ("user", [1000]),
        "waitpid": ("root", [w.zombie, 0]),
        "mapping_at": ("user", [a]),
    }
    return table[call]


def outcome(fn: Callable[..., Any], args: list[Any]) -> tuple[str, Any]:
    """What a call did: ``("ok", result)``, ``("errno", n)`` or ``("fault", ...)``."""
    try:
        return "ok", fn(*args)
    except QnxError as err:
        return "errno", err.errno
    except MemoryFault as fault:
        return "fault", (fault.signo, fault.code, fault.addr)


CALLS = sorted(SIGNATURES)
ONE_CALL = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: The fuzz on the kernels other than the default (11 pairs, so fewer examples each).
OTHER_PAIR = settings(ONE_CALL, max_examples=15)


def fuzz_one(version: str, arch: str, call: str, data: st.DataObject) -> None:
    """(b) on a kernel of ``version`` for ``arch``."""
    w = fuzz_world(version, arch)
    caller = data.draw(st.sampled_from([w.root, w.user]), label="caller")
    args = draw_args(data, call, w)
    before = observe(w.k, w.samples)
    try:
        getattr(caller, call)(*args)
        event("ok")
    except QnxError as err:
        event(E.errorcode.get(err.errno, "?"))
        assert err.errno in E.errorcode, f"{err!r} carries no QNX errno"
        assert err.reason, "R-CALL-4: every failure names its rule"
        assert observe(w.k, w.samples) == before, f"R-CALL-5: {call}{tuple(args)} -> {err}"
    except MemoryFault as fault:
        event(str(fault).split(" at ")[0])
        assert call in MEMORY_ACCESS
        assert observe(w.k, w.samples) == before, "R-FAULT-2: a fault moves nothing"
    except ValueError as err:  # DESIGN: a Python-level size (read_memory, read) out of range
        event("ValueError")
        assert call in PYTHON_SIZES and "is not a byte count" in str(err), err
        assert observe(w.k, w.samples) == before
    w.k.check_invariants()


#: Calls whose size is a Python-level count (ValueError outside [0, ADDR_MAX], no wrap).
PYTHON_SIZES = ("read_memory", "check_access", "read", "pread")


@pytest.mark.parametrize("call", CALLS)
@ONE_CALL
@given(data=st.data())
def test_R_CALL_2_fuzzed_ints_give_qnx_errors_only(call: str, data: st.DataObject) -> None:
    """(b) Any int for any parameter: success, QnxError (MemoryFault for an access) only.

    A failure changes nothing (R-CALL-5), and the invariants hold afterwards.
    """
    fuzz_one(*PAIRS[0], call, data)


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("version", "arch"), PAIRS[1:])
@OTHER_PAIR
@given(data=st.data())
def test_R_CALL_2_fuzzed_ints_give_qnx_errors_only_on_every_profile_and_arch(
    version: str, arch: str, call: str, data: st.DataObject
) -> None:
    """(b) on every other version and arch (SPEC 19, R-SYS-2): their flag bits, widths and
    user ranges change which rule refuses a value, never that a QnxError does."""
    fuzz_one(version, arch, call, data)


BAD_INTS = [1.0, 0.0, float("nan"), None, "1", b"1", bytearray(b"1"), Decimal(1), 1j, [1], (1,)]
BAD_VALUES = {
    "data": [1, 0, None, "text", 1.0, [1, 2], (1,)],
    "access": [1, None, b"r", ord("r")],
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("version", "arch"), PAIRS)
@OTHER_PAIR
@given(data=st.data())
def test_R_CALL_2_wrong_types_raise_type_error_and_change_nothing(
    version: str, arch: str, call: str, data: st.DataObject
) -> None:
    """(c) A float, None, str or bytes where an int goes (an int where bytes go): TypeError,
    on every version and arch."""
    w = fuzz_world(version, arch)
    who, args = valid_args(call, w)
    caller = w.root if who == "root" else w.user
    names = SIGNATURES[call]
    i = data.draw(st.integers(0, len(names) - 1), label="position")
    args[i] = data.draw(st.sampled_from(BAD_VALUES.get(names[i], BAD_INTS)), label=names[i])
    before = observe(w.k, w.samples)
    with pytest.raises(TypeError):
        getattr(caller, call)(*args)
    assert observe(w.k, w.samples) == before
    w.k.check_invariants()


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("version", "arch"), PAIRS)
@OTHER_PAIR
@given(data=st.data())
def test_R_CALL_2_bool_is_refused_as_type_error(
    version: str, arch: str, call: str, data: st.DataObject
) -> None:
    """(c) ``True``/``False`` in an int parameter are a TypeError that changes nothing, on
    every version and arch ([SIM] decision, README "Bad input": C has no bool parameter
    here, and ``mmap(0, True, ...)`` is a caller's bug)."""
    names = SIGNATURES[call]
    positions = [i for i, n in enumerate(names) if n not in NOT_INT]
    i = data.draw(st.sampled_from(positions), label="position")
    flag = data.draw(st.booleans(), label="bool")
    w = fuzz_world(version, arch)
    who, args = valid_args(call, w)
    args[i] = flag
    before = observe(w.k, w.samples)
    with pytest.raises(TypeError, match="bool"):
        getattr(w.root if who == "root" else w.user, call)(*args)
    assert observe(w.k, w.samples) == before
    w.k.check_invariants()


LIBC_CALLS = [c for c in CALLS if ROWS[c].failure_value is not None]


def test_libc_facade_covers_the_fuzzed_calls() -> None:
    assert set(LIBC_CALLS) == set(CALLS) - {*MEMORY_ACCESS, "mapping_at"}


@pytest.mark.parametrize("call", LIBC_CALLS)
@pytest.mark.parametrize(("version", "arch"), PAIRS)
@OTHER_PAIR
@given(data=st.data())
def test_R_CALL_1_libc_gives_the_result_or_the_c_failure_value(
    version: str, arch: str, call: str, data: st.DataObject
) -> None:
    """(d) ``libc.<call>``: the method's result, or MAP_FAILED/-1 with ``libc.errno`` set,
    on twin machines of every version and arch."""
    worlds = fuzz_world(version, arch), fuzz_world(version, arch)
    use_root = data.draw(st.booleans(), label="caller is root")
    args = draw_args(data, call, worlds[0])
    method = getattr(worlds[0].root if use_root else worlds[0].user, call)
    libc_proc = worlds[1].root if use_root else worlds[1].user
    kind, value = outcome(method, args)
    got = getattr(libc_proc.libc, call)(*args)
    if kind == "errno":
        assert got == ROWS[call].failure_value
        assert libc_proc.libc.errno == value
    else:
        assert kind == "ok"
        assert got == value
    assert observe(worlds[0].k, worlds[0].samples) == observe(worlds[1].k, worlds[1].samples)
