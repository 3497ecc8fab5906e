"""Property-based tests of the whole kernel, predicted by the reference model
(qnxsim.refmodel).

(a) A random walk over a Kernel (spawn, fork, exit/waitpid, mmap in every flavour,
    mmap_peer, munmap, mprotect, setrlimit, set*uid, memory reads and writes, RAM filled
    to the brim) whose every outcome ``refmodel.KernelModel`` predicts: the errno of a
    failure, where a mapping goes, which pages each process maps with what prot, kind and
    flags, what they hold, which fault an access raises, the processes, zombies,
    credentials and limits.  Failing calls must change nothing (R-CALL-5).
(b) Fuzzed integers for every public call: QnxError (or MemoryFault) only (R-CALL-2).
(c) Wrong Python types: TypeError and no change; ``bool`` counts as an int (R-CALL-2).
(d) ``process.libc``: the method's result or the C failure value and errno (R-CALL-1).
"""

from __future__ import annotations

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

from qnxsim import Kernel, MemoryFault, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.arch import ARCHES
from qnxsim.calls import CALLS as ROWS
from qnxsim.profile import PROFILES
from qnxsim.refmodel import READY, Fault, KernelModel, Layout, ObjectModel

MIB = 1 << 20
R, W, X = C.PROT_READ, C.PROT_WRITE, C.PROT_EXEC

#: Every (version, arch) pair (SPEC 19, R-SYS-2); the first is the default kernel.
PAIRS = [(v, a) for v in PROFILES for a in ARCHES]

# The kernel under test's page size and user range, for the fuzz values below.  ``use(k)``
# sets them from the Kernel the fuzz world has just made; the values here are the default
# kernel's (8.0 on x86_64), which the strategies built at import time use.
USER_END = (1 << 39) - PS
ADDR_MAX = (1 << 64) - 1
INF = C.RLIM_INFINITY
#: The optional flags the walk's requests add, by name (values: the kernel's profile's).
EXTRA_NAMES = ("MAP_LAZY", "MAP_NOINHERIT", "MAP_ANON", "MAP_BELOW", "MAP_ELF", "MAP_NOINIT")


def use(k: Kernel) -> None:
    """Read the page size, user range and bases of ``k`` (see above)."""
    global PS, USER_END, ADDR_MAX, PROGRAM_BASE, SHMEM_BASE, SO_BASE, INF
    m, arch = k.machine, k.machine.arch
    PS, USER_END, ADDR_MAX = k.page_size, m.user_end, m.addr_max
    PROGRAM_BASE, SHMEM_BASE, SO_BASE = arch.program_base, arch.shmem_base, arch.so_base
    INF = arch.rlim_infinity


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
    ps = proc.kernel.page_size
    return {
        a: (m.prot, m.kind, m.flags) for m in proc.mappings() for a in range(m.start, m.end, ps)
    }


# -- (a) the state machine ---------------------------------------------------------------------

PROTS = st.sampled_from([R | W, R, 0, W, R | X, R | W | X, X])
EXTRA_FLAGS = st.sets(st.integers(0, len(EXTRA_NAMES) - 1), max_size=3)  # indexes of EXTRA
PAGE_COUNTS = st.one_of(st.integers(1, 4), st.integers(1, 64), st.sampled_from([256, 512, 20000]))


#: Bytes an access moves: mostly a few (inside the page drawn, so that most accesses
#: reach memory), at times up to three pages (across pages and off a mapping's end).
ACCESS_SIZES = st.one_of(st.integers(0, 64), st.integers(0, 3 * 4096))


class KernelWalk(RuleBasedStateMachine):
    """A Kernel and its reference model, stepped together; ``kernel_options`` choose the
    version and arch."""

    kernel_options: ClassVar[dict[str, Any]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.boot_kernel(4)

    # -- helpers ---------------------------------------------------------------------------

    def boot_kernel(self, ram_mib: int) -> None:
        """A kernel with a root process (a realistic image, R-PROC-1) and an empty user
        process, and the model of both."""
        self.k = k = Kernel(ram=ram_mib * MIB, **self.kernel_options)
        use(k)
        self.ps = k.page_size
        self.layout = Layout.of(k.version, k.arch, k.page_size)
        self.model = KernelModel(k.page_size, layout=self.layout, ram=k.meminfo().total)
        self.extra = tuple(k.profile.flag(n) for n in EXTRA_NAMES)
        self.noinherit = k.profile.flag("MAP_NOINHERIT")  # SPEC 19: 0 in 6.4
        self.next_pid = 2
        self.written: set[int] = set()  # page numbers the walk wrote, in any process
        self.verified: dict[int, Any] = {}  # records last found to agree with the model
        image = k.spawn(uid=0, image=True)
        self.new_proc(image, 1)
        self.adopt_image(image)
        self.new_proc(k.spawn(uid=1000, image=False), 1)

    def adopt_image(self, proc: Process) -> None:
        """Describe R-PROC-1's image to the model: private mappings of its files (a file's
        pages get frames when touched, R-SHM-5), a lazy stack below its guard page."""
        ps = self.ps
        for m in proc.mappings():
            lazy = bool(m.flags & C.MAP_LAZY)
            if m.kind == "stack-guard":
                self.model.map(proc.pid, m.start, m.size, C.PROT_NONE, "anon", None, 0,
                               private=True, noinherit=False, lazy=True, flags=m.flags,
                               guard=m.size)  # fmt: skip
                continue
            obj = None
            if m.name is not None:
                fd = proc.open(m.name, C.O_RDONLY)
                size = proc.fstat(fd).st_size
                obj = self.model.files.get(m.name)
                if obj is None:
                    obj = ObjectModel("file", ps, size, m.name, lazy=True)
                    obj.data[:size] = proc.pread(fd, size, 0)
                    self.model.files[m.name] = obj
                proc.close(fd)
            self.model.map(proc.pid, m.start, m.size, m.prot, m.kind, obj, m.offset // ps,
                           private=True, noinherit=False, lazy=lazy, flags=m.flags)  # fmt: skip

    def new_proc(self, proc: Process, ppid: int) -> None:
        assert proc.pid == self.next_pid, "R-SYS-7: pids ascend and are never reused"
        self.next_pid += 1
        if proc.pid not in self.model.procs:
            self.model.spawn(proc.pid, proc.ruid, ppid=ppid)

    def pick(self, data: st.DataObject, label: str) -> Process:
        pid = data.draw(st.sampled_from(sorted(self.model.procs)), label=label)
        return self.k.process(pid)

    def samples(self) -> list[tuple[int, int]]:
        """A few readable pages of each process that a read leaves as they are."""
        out: list[tuple[int, int]] = []
        for pid in sorted(self.model.procs):
            out.extend((pid, a) for a in self.check_pages(pid)[:6])
        return out

    def check_pages(self, pid: int) -> list[int]:
        """The pages to read back: those the walk wrote, and the first and last four of
        the process's, that are readable and a read does not touch (R-FAULT-4)."""
        ps = self.ps
        pages = self.model.procs[pid].pages

        def fits(v: int) -> bool:
            page = pages[v]
            return (
                bool(page.prot & (R | W | X))
                and self.model.fault(pid, v * ps, 1, "r", free=0) is None
                and self.model.needs(pid, v, "r") == READY
            )

        mapped = sorted(pages)
        chosen = {*(v for v in self.written if v in pages), *mapped[:4], *mapped[-4:]}
        return [v * ps for v in sorted(chosen) if fits(v)]

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
                f"R-CALL-5: failing {name}{args} -> {err!r} changed state"
            )
            return None, err
        event(f"{name}: ok")
        return result, None

    def draw_addr(self, data: st.DataObject, pid: int, label: str) -> int:
        """An address in or near a mapping (often a lazy one), a category base, or an edge."""
        ps = self.ps
        where = data.draw(
            st.sampled_from(["mapped", "mapped", "lazy", "base", "edge"]), label=label + " near"
        )
        proc = self.model.procs[pid]
        pages = list(proc.pages)
        if where == "lazy":
            pages = [v for v, p in proc.pages.items() if p.lazy and v not in proc.copies]
        if where == "base" or not pages:
            base = data.draw(st.sampled_from([PROGRAM_BASE, SHMEM_BASE, SO_BASE]), label=label)
        elif where == "edge":
            edges = [self.layout.user_start, USER_END - ps, USER_END, 0]
            base = data.draw(st.sampled_from(edges), label=label)
        else:
            base = pages[data.draw(st.integers(0, len(pages) - 1), label=label + " page")] * ps
        shift = data.draw(st.one_of(st.just(0), st.integers(-4, 4)), label=label + " pages") * ps
        sub = data.draw(st.sampled_from([0, 0, 0, 1, ps // 2, ps - 1]), label=label + " sub-page")
        return max(0, base + shift + sub)

    def check_fault(self, err: BaseException | None, fault: Fault | None, what: str) -> None:
        """R-FAULT-1/2: the access raised exactly the fault the model predicts (with its
        RAM: a lazy page and no free frame is SIGBUS/BUS_ADRERR, R-SYS-6), or none."""
        if fault is None:
            assert err is None, f"{what}: {err!r}, the model expects no fault"
            return
        assert isinstance(err, MemoryFault), f"{what}: {err!r}, the model expects {fault}"
        got = (err.signo, err.code, err.addr)
        assert got == (fault.signo, fault.code, fault.addr), f"{what}: {err}, expected {fault}"

    # -- processes --------------------------------------------------------------------------

    @initialize(ram=st.sampled_from([4, 6, 8]))
    def boot(self, ram: int) -> None:
        self.boot_kernel(ram)

    @precondition(lambda self: len(self.model.procs) < 6)
    @rule(data=st.data(), uid=st.sampled_from([0, 1000]), from_parent=st.booleans())
    def spawn(self, data: st.DataObject, uid: int, from_parent: bool) -> None:
        """R-PROC-1: a child of a process inherits its creds and limits; of the kernel,
        the uid given."""
        if from_parent:
            parent = self.pick(data, "parent")
            child = parent.spawn(image=False)
            self.model.spawn(child.pid, parent.ruid, ppid=parent.pid)
            self.new_proc(child, parent.pid)
        else:
            child = self.k.spawn(uid=uid, image=False)
            self.new_proc(child, 1)
        assert child.mappings() == ()

    @precondition(lambda self: len(self.model.procs) < 6)
    @rule(data=st.data())
    def fork(self, data: st.DataObject) -> None:
        """R-PROC-2: private pages copied, shared pages shared, MAP_NOINHERIT left out;
        ENOMEM exactly when RAM cannot hold the copies and reservations."""
        parent = self.pick(data, "parent")
        need, free = self.model.fork_need(parent.pid), self.model.free()
        pid, err = self.attempt(parent.fork)
        if need > free:
            assert err is not None and err.errno == E.ENOMEM, f"fork needs {need:#x}: {err!r}"
            return
        assert err is None, f"fork needs {need:#x} of {free:#x} free: {err!r}"
        self.model.fork(parent.pid, pid)
        self.new_proc(self.k.process(pid), parent.pid)

    @precondition(lambda self: len(self.model.procs) > 1)
    @rule(data=st.data(), status=st.integers(-300, 300), wait=st.booleans())
    def exit(self, data: st.DataObject, status: int, wait: bool) -> None:
        """R-PROC-4: mappings go; a zombie until the parent waits; orphans reaped at once."""
        proc = self.pick(data, "exiting")
        proc.exit(status)
        self.model.exit(proc.pid, status)
        if wait and proc.pid in self.model.zombies:
            parent = self.model.zombies[proc.pid][0]
            expected = self.model.waitpid(parent, proc.pid, 0)
            assert (None, self.k.process(parent).waitpid(proc.pid)) == expected

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), options=st.sampled_from([0, C.WNOHANG]))
    def waitpid(self, data: st.DataObject, options: int) -> None:
        """R-PROC-4: a zombie child is reaped; none → ECHILD; running ones → (0, 0) with
        WNOHANG, else EDEADLK ([SIM])."""
        proc = self.pick(data, "waiter")
        kids = {p for p, m in self.model.procs.items() if m.ppid == proc.pid}
        dead = {z for z, (ppid, _) in self.model.zombies.items() if ppid == proc.pid}
        pid = data.draw(st.sampled_from([-1, *sorted(kids | dead), 999]), label="pid")
        got, err = self.attempt(proc.waitpid, pid, options)
        errno, result = self.model.waitpid(proc.pid, pid, options)
        if errno is not None:
            assert err is not None and err.errno == errno, f"waitpid({pid}): {err!r}"
        else:
            assert err is None and got == result, f"waitpid({pid}): {got} {err!r}, not {result}"

    @precondition(lambda self: bool(self.model.procs))
    @rule(
        data=st.data(),
        call=st.sampled_from(["setuid", "seteuid"]),
        uid=st.sampled_from([0, 1000, 2000]),
    )
    def change_uid(self, data: st.DataObject, call: str, uid: int) -> None:
        """R-PROC-5, POSIX: root sets all (setuid) or euid; others switch to ruid or suid."""
        proc = self.pick(data, "proc")
        _, err = self.attempt(getattr(proc, call), uid)
        errno = self.model.set_id(proc.pid, "uid", uid, every=call == "setuid")
        assert (err.errno if isinstance(err, QnxError) else None) == errno, f"{call}: {err!r}"

    @precondition(lambda self: bool(self.model.procs))
    @rule(
        data=st.data(),
        resource=st.sampled_from([C.RLIMIT_AS, C.RLIMIT_DATA]),
        extra=st.one_of(st.integers(0, 64), st.just(None)),
    )
    def setrlimit(self, data: st.DataObject, resource: int, extra: int | None) -> None:
        """SPEC 18: a limit just above what the process uses (R-MMAP-18 then bites);
        raising a hard limit needs euid 0."""
        proc = self.pick(data, "proc")
        pm = self.model.procs[proc.pid]
        used = pm.mapped_bytes(self.ps) if resource == C.RLIMIT_AS else pm.data_bytes(self.ps)
        limit = INF if extra is None else used + extra * self.ps
        _, err = self.attempt(proc.setrlimit, resource, limit, limit)
        errno = self.model.setrlimit(proc.pid, resource, limit, limit)
        assert (err.errno if isinstance(err, QnxError) else None) == errno, f"{err!r}"

    # -- mapping -----------------------------------------------------------------------------

    def map_into(
        self,
        call: Callable[..., int],
        head: tuple[int, ...],
        target: int | None,
        refusal: int | None,
        addr: int,
        length: int,
        prot: int,
        flags: int,
        off: int,
    ) -> None:
        """An anonymous request into ``target``'s space (``refusal``: R-PEER-2/3's errno)."""
        ps = self.ps
        plan = None if target is None else self.model.plan_anon_mmap(target, addr, length,
                                                                      flags, off)  # fmt: skip
        got, err = self.attempt(call, *head, addr, length, prot, flags, C.NOFD, off)
        what = f"{call.__name__}{(*head, hex(addr), hex(length), hex(prot), hex(flags), off)}"
        if plan is None or plan.errno is not None:
            errno = refusal if plan is None else plan.errno
            rule_id = "R-PEER" if plan is None else plan.rule
            assert err is not None and err.errno == errno, f"{what}: {err!r}, {rule_id} expected"
            return
        if plan.start is None and err is not None:  # unplaced by SPEC: only no room at all
            nowhere = self.model.place(target, self.layout.user_start, plan.size) is None
            assert err.errno == E.ENOMEM and nowhere, f"{what}: {err!r}, {plan}"
            return
        assert err is None, f"{what}: {err!r}, the model expects success: {plan}"
        assert target is not None
        if flags & C.MAP_FIXED:
            assert got == addr, "R-MMAP-F4: the result is exactly addr"
        start = got - got % ps
        if plan.start is not None:
            assert (start, got - start) == (plan.start, plan.pg_off), f"{what}: {got:#x} {plan}"
        else:
            assert self.model.is_free(target, start, start + plan.size), "R-PLACE-4: overlaps"
            assert start >= self.layout.user_start and start + plan.size <= USER_END
        private = flags & C.MAP_TYPE == C.MAP_PRIVATE
        lazy = bool(flags & C.MAP_LAZY)
        obj = None if private else ObjectModel("shared-anon", ps, plan.size - plan.guard,
                                               lazy=lazy)  # fmt: skip
        self.model.map(target, start, plan.size, prot, "anon" if private else "shared-anon",
                       obj, 0, private=private, noinherit=bool(flags & self.noinherit),
                       lazy=lazy, flags=flags | C.MAP_ANON,  # R-MMAP-6, R-MAP-1
                       guard=plan.guard)  # fmt: skip

    def draw_request(self, data: st.DataObject, pid: int) -> tuple[int, int, int, int, int]:
        ps = self.ps
        kind = data.draw(st.sampled_from(["hint", "fixed", "stack"]), label="placement")
        flags = data.draw(st.sampled_from([C.MAP_PRIVATE, C.MAP_SHARED]), label="type")
        for i in data.draw(EXTRA_FLAGS, label="extra flags"):
            flags |= self.extra[i]
        pages = data.draw(PAGE_COUNTS, label="pages")
        if flags & C.MAP_LAZY and pages > 64:
            pages = pages % 64 + 1  # keep lazily mapped ranges small: the model is per page
        length = pages * ps - data.draw(st.sampled_from([0, 0, 1, ps - 1]), label="short by")
        prot = data.draw(PROTS, label="prot")
        off = data.draw(st.sampled_from([0, 0, 0, 1, ps, ps + 5]), label="off")
        addr = 0
        if kind == "stack":
            flags |= C.MAP_STACK | C.MAP_ANON  # R-MMAP-8: MAP_STACK needs MAP_ANON
            off = data.draw(st.sampled_from([0, 1, ps, 2 * ps, length]), label="guard")
            if data.draw(st.booleans(), label="fixed stack"):
                flags |= C.MAP_FIXED
                addr = self.draw_addr(data, pid, "addr")
        elif kind == "fixed":
            flags |= C.MAP_FIXED
            addr = self.draw_addr(data, pid, "addr")
        elif data.draw(st.booleans(), label="with hint"):
            addr = self.draw_addr(data, pid, "hint")
        return addr, length, prot, flags, off

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), wide=st.booleans())
    def mmap(self, data: st.DataObject, wide: bool) -> None:
        proc = self.pick(data, "proc")
        addr, length, prot, flags, off = self.draw_request(data, proc.pid)
        call = proc.mmap64 if wide else proc.mmap
        self.map_into(call, (), proc.pid, None, addr, length, prot, flags, off)

    @precondition(lambda self: bool(self.model.procs))
    @rule(
        data=st.data(),
        resource=st.sampled_from([C.RLIMIT_AS, C.RLIMIT_DATA]),
        extra=st.integers(0, 8),
    )
    def mmap_near_limit(self, data: st.DataObject, resource: int, extra: int) -> None:
        """R-MMAP-18: a limit a few pages above what the process uses, then a request of
        any kind against it (stacks and shared memory never count in RLIMIT_DATA)."""
        self.setrlimit(data, resource, extra)
        self.mmap(data, False)

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), leave=st.integers(0, 8))
    def fill_ram(self, data: st.DataObject, leave: int) -> None:
        """Map nearly all free RAM: later touches, forks and mappings meet R-SYS-6."""
        proc = self.pick(data, "proc")
        length = self.model.free() - leave * self.ps
        if length <= 0:
            return
        flags = C.MAP_PRIVATE | C.MAP_ANON
        self.map_into(proc.mmap, (), proc.pid, None, 0, length, R | W, flags, 0)

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), wide=st.booleans())
    def mmap_peer(self, data: st.DataObject, wide: bool) -> None:
        """SPEC 6: the target's address space, limits and RAM; ESRCH then EPERM first."""
        caller = self.pick(data, "caller")
        zombies = sorted(self.model.zombies)
        pid = data.draw(
            st.sampled_from([*sorted(self.model.procs), 0, *zombies, 1, 9999, -1]),
            label="target pid",
        )
        target, refusal = self.model.peer(caller.pid, pid)
        addr, length, prot, flags, off = self.draw_request(data, target or caller.pid)
        call = caller.mmap64_peer if wide else caller.mmap_peer
        before = pages_of(caller)
        self.map_into(call, (pid,), target, refusal, addr, length, prot, flags, off)
        if target != caller.pid:
            assert pages_of(caller) == before, "R-PEER-5: the caller's space is unchanged"

    @precondition(lambda self: bool(self.model.procs))
    @rule(
        data=st.data(),
        how=st.sampled_from(["munmap", "munmap_flags", "munmap_peer"]),
        pages=st.integers(0, 80),
        extra=st.sampled_from([0, 0, 1, -1, 2048]),
        special=st.sampled_from([None, None, None, 0, (1 << 64) - 1]),  # R-UNMAP-1 cuts it
    )
    def munmap(
        self, data: st.DataObject, how: str, pages: int, extra: int, special: int | None
    ) -> None:
        """SPEC 7: every mapped page of the widened range goes; the rest is ignored."""
        proc = self.pick(data, "proc")
        target, refusal = proc.pid, None
        args: tuple[int, ...] = ()
        if how == "munmap_peer":
            pid = data.draw(st.sampled_from([*sorted(self.model.procs), 0, 1, 9999]), label="pid")
            args = (pid,)
            found, refusal = self.model.peer(proc.pid, pid)
            target = found if found is not None else proc.pid
        addr = self.draw_addr(data, target, "addr")
        length = max(0, pages * self.ps + extra) if special is None else special
        args = (*args, addr, length, 0) if how == "munmap_flags" else (*args, addr, length)
        _, err = self.attempt(getattr(proc, how), *args)
        span = self.layout.widen(addr, length)
        if refusal is not None:
            assert err is not None and err.errno == refusal, f"{how}{args}: {err!r}"
        elif span is None or span[1] > USER_END:
            assert err is not None and err.errno == E.EINVAL  # R-UNMAP-2, R-UNMAP-4
        else:
            assert err is None, f"{how}{args}: {err}"
            self.model.unmap(target, *span)

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), prot=PROTS, pages=st.integers(0, 12), extra=st.sampled_from([0, 1]))
    def mprotect(self, data: st.DataObject, prot: int, pages: int, extra: int) -> None:
        """SPEC 8: a wholly mapped range gets the prot; stack guards keep theirs (R-MPROT-6)."""
        proc = self.pick(data, "proc")
        addr = self.draw_addr(data, proc.pid, "addr")
        length = pages * self.ps + extra
        _, err = self.attempt(proc.mprotect, addr, length, prot)
        span = self.layout.widen(addr, length)
        if span is None or span[1] > USER_END or not self.model.is_mapped(proc.pid, *span):
            assert err is not None and err.errno == E.ENOMEM, "R-MPROT-2"
            return
        assert err is None, f"mprotect({addr:#x}, {length:#x}, {prot:#x}): {err}"
        self.model.protect(proc.pid, *span, prot)

    # -- memory access -----------------------------------------------------------------------

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), n=ACCESS_SIZES, seed=st.integers(0, 2**16))
    def write_memory(self, data: st.DataObject, n: int, seed: int) -> None:
        proc = self.pick(data, "proc")
        addr = self.draw_addr(data, proc.pid, "addr")
        payload = random.Random(seed).randbytes(n)
        fault = self.model.fault(proc.pid, addr, n, "w")
        _, err = self.attempt(proc.write_memory, addr, payload, faults=True)
        self.check_fault(err, fault, f"write_memory({addr:#x}, {n})")
        if err is None:
            self.model.write(proc.pid, addr, payload)
            self.written.update(self.model.page_numbers(addr, addr + n))

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), n=ACCESS_SIZES)
    def read_memory(self, data: st.DataObject, n: int) -> None:
        proc = self.pick(data, "proc")
        addr = self.draw_addr(data, proc.pid, "addr")
        fault = self.model.fault(proc.pid, addr, n, "r")
        got, err = self.attempt(proc.read_memory, addr, n, faults=True)
        self.check_fault(err, fault, f"read_memory({addr:#x}, {n})")
        if err is None:
            assert got == self.model.read(proc.pid, addr, n), f"read_memory({addr:#x}, {n})"

    @precondition(lambda self: bool(self.model.procs))
    @rule(data=st.data(), n=ACCESS_SIZES, access=st.sampled_from("rwx"))
    def check_access(self, data: st.DataObject, n: int, access: str) -> None:
        """check_access faults exactly as the access would, and changes nothing either way."""
        proc = self.pick(data, "proc")
        addr = self.draw_addr(data, proc.pid, "addr")
        samples = self.samples()
        before = observe(self.k, samples)
        fault = self.model.fault(proc.pid, addr, n, access)
        err: MemoryFault | None = None
        try:
            proc.check_access(addr, n, access)
        except MemoryFault as caught:
            err = caught
        self.check_fault(err, fault, f"check_access({addr:#x}, {n}, {access!r})")
        assert observe(self.k, samples) == before

    # -- after every step --------------------------------------------------------------------

    @invariant()
    def kernel_matches_the_model(self) -> None:
        k = self.k
        k.check_invariants()
        model = self.model
        info = k.meminfo()
        assert (info.allocated, info.reserved) == (model.allocated(), model.reserved()), (
            f"R-OBJ-3: {info}, the model expects {model.allocated():#x} allocated, "
            f"{model.reserved():#x} reserved"
        )
        table = {p.pid: p for p in k.processes()}
        alive = {pid for pid, p in table.items() if p.alive and pid != 1}
        assert alive == set(model.procs), "process table"
        zombies = {pid: p.ppid for pid, p in table.items() if not p.alive}
        assert zombies == {z: ppid for z, (ppid, _) in model.zombies.items()}, "R-PROC-4"
        for pid, pm in model.procs.items():
            proc = table[pid]
            assert proc.ppid == pm.ppid
            assert (proc.ruid, proc.euid, proc.suid) == (pm.ruid, pm.euid, pm.suid), "R-PROC-5"
            for resource in (C.RLIMIT_AS, C.RLIMIT_DATA):
                assert proc.getrlimit(resource) == pm.limits[resource], "SPEC 18"
            records = proc.mappings()
            if self.verified.get(pid) != (records, id(pm.pages), len(pm.pages)):
                expect = model.page_table(pid)
                actual = pages_of(proc)
                if actual != expect:
                    diff = sorted(set(actual.items()) ^ set(expect.items()))[:6]
                    raise AssertionError(f"pid {pid}: mapped pages differ from the model: {diff}")
                self.verified[pid] = (records, id(pm.pages), len(pm.pages))
            for a in self.check_pages(pid):
                assert proc.read_memory(a, self.ps) == model.read(pid, a, self.ps), (
                    f"pid {pid} {a:#x}"
                )


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
    """(a) Every step agrees with the reference model; every failing call changes nothing
    (R-CALL-5).  Rules it exercises: R-MMAP-6/8/14/16/18/20/26, R-MMAP-F1..F4, R-PLACE-1..4,
    R-UNMAP-1..5, R-MPROT-2/4/6, R-PEER-1..5, R-FAULT-1..4, R-SYS-6/7, R-OBJ-3/6,
    R-PROC-1/2/4/5, R-MAP-1, SPEC 18.  On every version and arch (SPEC 19, R-SYS-2): the
    default kernel gets the long run."""
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
