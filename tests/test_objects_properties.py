"""Random call sequences over shm objects and several processes, against a reference model.

The state machine drives shm_open, ftruncate, mmap (shared and private), munmap, pwrite,
pread, write_memory and read_memory, fork, exit, close and shm_unlink, and checks after
every step that:

- ``Kernel.check_invariants()`` holds (DESIGN: Invariants);
- the bytes every process sees agree with a reference model: one page-rounded bytearray
  per shm object (R-OBJ-5, R-OBJ-6, R-MMAP-25) and, for MAP_PRIVATE mappings, a copy of
  a page made on its first write (R-OBJ-4, R-PROC-2);
- frames and reservations match the model (R-OBJ-3): allocated = every live object's
  pages + every private copy; reserved = every non-lazy private page not yet copied;
- a failing call changes nothing, objects included (R-CALL-5);
- when every process has exited and every name is unlinked, no frame leaks (R-OBJ-2).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support import PS, RW

from qnxsim import Kernel, MemoryFault, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

RAM = 16 << 20
NAMES = ("/a", "/b", "/c")
SIZES = (0, 100, PS, PS + 100, 2 * PS, 3 * PS + 1)
OFFSETS = (0, 50, PS - 3, PS, 2 * PS + 10, 3 * PS)
IN_PAGE = (0, 7, PS - 5)
MAX_PROCS = 5

# Small named strategies; each shrinks towards the first choice ("one process, one page").
selectors = st.integers(min_value=0, max_value=1 << 16)
payloads = st.binary(min_size=1, max_size=16)
sizes = st.sampled_from(SIZES)
offsets = st.sampled_from(OFFSETS)
page_counts = st.integers(min_value=1, max_value=3)
page_offsets = st.integers(min_value=0, max_value=2)


def roundup(n: int) -> int:
    return -(-n // PS) * PS


class ObjModel:
    """A shm object: its size and its pages' bytes (``len(buf) == roundup(size)``)."""

    def __init__(self, oid: int, name: str) -> None:
        self.oid = oid
        self.name = name
        self.path = f"/dev/shmem{name}"  # R-SHM-1
        self.size = 0
        self.buf = bytearray()

    def resize(self, new: int) -> None:
        """R-OBJ-6 / R-SHM-5: past the old end reads zero; shrinking clears the tail."""
        if new > self.size:
            self.buf[self.size :] = bytes(len(self.buf) - self.size)
            self.buf.extend(bytes(roundup(new) - len(self.buf)))
        else:
            del self.buf[roundup(new) :]
            self.buf[new:] = bytes(len(self.buf) - new)
        self.size = new

    def write(self, off: int, data: bytes) -> None:
        if off + len(data) > self.size:
            self.resize(off + len(data))
        self.buf[off : off + len(data)] = data

    def read(self, off: int, n: int) -> bytes:
        return bytes(self.buf[off : max(off, min(self.size, off + n))])


class MapModel:
    """One mapping of a shm object; ``private`` holds the pages copied on first write."""

    def __init__(self, addr: int, pages: int, oid: int, off: int, shared: bool, lazy: bool):
        self.addr = addr
        self.pages = pages
        self.oid = oid
        self.off = off
        self.shared = shared
        self.lazy = lazy
        self.private: dict[int, bytearray] = {}


class ProcModel:
    def __init__(self, proc: Process) -> None:
        self.proc = proc
        self.fds: dict[int, tuple[int, bool]] = {}  # fd -> (object id, writable)
        self.maps: list[MapModel] = []


class ShmObjectsMachine(RuleBasedStateMachine):
    #: The profile and arch the machine runs on (None: the profile's default arch).
    version = "8.0"
    arch: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.k = Kernel(ram=RAM, version=self.version, arch=self.arch)
        self.procs: list[ProcModel] = []
        self.objs: dict[int, ObjModel] = {}
        self.names: dict[str, int] = {}
        self.next_oid = 0
        self._spawn()

    # -- helpers ------------------------------------------------------------------------

    def _spawn(self) -> None:
        self.procs.append(ProcModel(self.k.spawn(image=False)))

    def pick(self, sel: int) -> ProcModel:
        return self.procs[sel % len(self.procs)]

    def collect(self) -> None:
        """R-OBJ-2: an object with no name, no fd and no mapping is gone."""
        used = set(self.names.values())
        for pm in self.procs:
            used.update(oid for oid, _ in pm.fds.values())
            used.update(m.oid for m in pm.maps)
        for oid in list(self.objs):
            if oid not in used:
                del self.objs[oid]

    def observe(self) -> Any:
        """Everything a failing call must leave alone (R-CALL-5)."""
        seen: list[Any] = [self.k.meminfo(), tuple(p.pid for p in self.k.processes())]
        for pm in self.procs:
            p = pm.proc
            fds = []
            for fd in sorted(p.fdt.fds):
                st_ = p.fstat(fd)
                fds.append((fd, st_, p.pread(fd, st_.st_size + PS, 0)))
            seen.append((p.pid, p.mappings(), tuple(fds)))
            for m in pm.maps:
                obj = self.objs[m.oid]
                for i in range(m.pages):
                    if m.off + i * PS < obj.size:
                        seen.append(p.read_memory(m.addr + i * PS, PS))
        return seen

    def expect_failure(self, errno: int, fn: Any, *args: Any) -> None:
        before = self.observe()
        try:
            fn(*args)
        except QnxError as err:
            assert err.errno == errno, (qerrno.errorcode[err.errno], err.reason)
            assert "R-" in err.reason, err.reason
        else:
            raise AssertionError(f"{fn.__name__}{args} did not fail")
        assert self.observe() == before
        self.k.check_invariants()

    def fd_of(self, pm: ProcModel, sel: int, writable: bool | None = None) -> int | None:
        fds = sorted(fd for fd, (_, w) in pm.fds.items() if writable is None or w == writable)
        return fds[sel % len(fds)] if fds else None

    def page_bytes(self, m: MapModel, page: int) -> bytes:
        if page in m.private:
            return bytes(m.private[page])
        off = m.off + page * PS
        return bytes(self.objs[m.oid].buf[off : off + PS])

    def first_fault(self, m: MapModel, rel: int, n: int) -> int | None:
        """R-MMAP-25 / R-FAULT-1: the first byte of a page wholly past the object's end."""
        size = self.objs[m.oid].size
        for page in range(rel // PS, (rel + n - 1) // PS + 1):
            if m.off + page * PS >= size:
                return m.addr + max(rel, page * PS)
        return None

    def mapping_and_range(self, pm: ProcModel, msel: int, page: int, at: int, n: int) -> Any:
        m = pm.maps[msel % len(pm.maps)]
        rel = min((page % m.pages) * PS + at, m.pages * PS - 1)
        return m, rel, min(n, m.pages * PS - rel)

    # -- processes ----------------------------------------------------------------------

    @precondition(lambda self: len(self.procs) < MAX_PROCS)
    @rule()
    def spawn(self) -> None:
        self._spawn()

    @precondition(lambda self: 0 < len(self.procs) < MAX_PROCS)
    @rule(sel=selectors)
    def fork(self, sel: int) -> None:
        pm = self.pick(sel)
        child = ProcModel(self.k.process(pm.proc.fork()))
        child.fds = dict(pm.fds)  # R-PROC-2: the same open file descriptions
        child.maps = copy.deepcopy(pm.maps)  # privatised pages are copied
        self.procs.append(child)

    @precondition(lambda self: self.procs)
    @rule(sel=selectors)
    def exit(self, sel: int) -> None:
        pm = self.pick(sel)
        pm.proc.exit(0)
        self.procs.remove(pm)
        self.collect()

    # -- names and fds ------------------------------------------------------------------

    @precondition(lambda self: self.procs)
    @rule(sel=selectors, name=st.sampled_from(NAMES), writable=st.booleans(), trunc=st.booleans())
    def shm_open(self, sel: int, name: str, writable: bool, trunc: bool) -> None:
        self.do_shm_open(self.pick(sel), name, writable, trunc)

    def do_shm_open(self, pm: ProcModel, name: str, writable: bool, trunc: bool) -> int:
        writable = writable or name not in self.names  # creating needs O_RDWR here
        oflag = (C.O_RDWR | C.O_CREAT if writable else C.O_RDONLY) | (C.O_TRUNC if trunc else 0)
        fd = pm.proc.shm_open(name, oflag, 0o600)
        assert fd == min(set(range(len(pm.fds) + 1)) - set(pm.fds))  # the lowest free fd
        if name not in self.names:
            self.objs[self.next_oid] = ObjModel(self.next_oid, name)
            self.names[name] = self.next_oid
            self.next_oid += 1
        obj = self.objs[self.names[name]]
        if trunc:
            obj.resize(0)  # R-SHM-3: even with O_RDONLY
        pm.fds[fd] = (obj.oid, writable)
        return fd

    @precondition(lambda self: self.procs)
    @rule(
        sel=selectors,
        name=st.sampled_from(NAMES),
        size=st.sampled_from(SIZES[2:]),
        pages=page_counts,
        shared=st.booleans(),
    )
    def open_size_and_map(self, sel: int, name: str, size: int, pages: int, shared: bool) -> None:
        """shm_open + ftruncate + mmap in one step: most sequences then touch memory."""
        pm = self.pick(sel)
        fd = self.do_shm_open(pm, name, True, False)
        self.do_ftruncate(pm, fd, size)
        self.do_mmap(pm, fd, pages, 0, shared, False)

    @precondition(lambda self: any(pm.fds for pm in self.procs))
    @rule(sel=selectors, fsel=selectors)
    def close(self, sel: int, fsel: int) -> None:
        pm = self.pick(sel)
        fd = self.fd_of(pm, fsel)
        if fd is None:
            return
        pm.proc.close(fd)
        del pm.fds[fd]
        self.collect()

    @precondition(lambda self: self.procs and self.names)
    @rule(sel=selectors, name=st.sampled_from(NAMES))
    def shm_unlink(self, sel: int, name: str) -> None:
        pm = self.pick(sel)
        if name not in self.names:
            self.expect_failure(qerrno.ENOENT, pm.proc.shm_unlink, name)
            return
        pm.proc.shm_unlink(name)
        self.names.pop(name)
        self.collect()

    # -- size and contents through fds ----------------------------------------------------

    @precondition(lambda self: any(pm.fds for pm in self.procs))
    @rule(sel=selectors, fsel=selectors, size=sizes)
    def ftruncate(self, sel: int, fsel: int, size: int) -> None:
        pm = self.pick(sel)
        fd = self.fd_of(pm, fsel, writable=True)
        if fd is not None:
            self.do_ftruncate(pm, fd, size)

    def do_ftruncate(self, pm: ProcModel, fd: int, size: int) -> None:
        pm.proc.ftruncate(fd, size)
        self.objs[pm.fds[fd][0]].resize(size)

    @precondition(lambda self: any(pm.fds for pm in self.procs))
    @rule(sel=selectors, fsel=selectors, off=offsets, data=payloads)
    def pwrite(self, sel: int, fsel: int, off: int, data: bytes) -> None:
        pm = self.pick(sel)
        fd = self.fd_of(pm, fsel, writable=True)
        if fd is None:
            return
        assert pm.proc.pwrite(fd, data, off) == len(data)
        self.objs[pm.fds[fd][0]].write(off, data)

    @precondition(lambda self: any(pm.fds for pm in self.procs))
    @rule(sel=selectors, fsel=selectors, off=offsets, n=st.integers(1, 2 * PS))
    def pread(self, sel: int, fsel: int, off: int, n: int) -> None:
        pm = self.pick(sel)
        fd = self.fd_of(pm, fsel)
        if fd is None:
            return
        assert pm.proc.pread(fd, n, off) == self.objs[pm.fds[fd][0]].read(off, n)

    # -- mappings ---------------------------------------------------------------------------

    @precondition(lambda self: any(pm.fds for pm in self.procs))
    @rule(
        sel=selectors,
        fsel=selectors,
        pages=page_counts,
        page_off=page_offsets,
        shared=st.booleans(),
        lazy=st.booleans(),
    )
    def mmap(
        self, sel: int, fsel: int, pages: int, page_off: int, shared: bool, lazy: bool
    ) -> None:
        pm = self.pick(sel)
        fd = self.fd_of(pm, fsel)
        if fd is not None:
            self.do_mmap(pm, fd, pages, page_off, shared, lazy)

    def do_mmap(
        self, pm: ProcModel, fd: int, pages: int, page_off: int, shared: bool, lazy: bool
    ) -> None:
        oid, writable = pm.fds[fd]
        shared = shared and writable  # read-only fds: private mappings (R-MMAP-12)
        flags = (C.MAP_SHARED if shared else C.MAP_PRIVATE) | (C.MAP_LAZY if lazy else 0)
        addr = pm.proc.mmap(0, pages * PS, RW, flags, fd, page_off * PS)
        assert addr % PS == 0
        pm.maps.append(MapModel(addr, pages, oid, page_off * PS, shared, lazy))

    @precondition(lambda self: any(pm.maps for pm in self.procs))
    @rule(sel=selectors, msel=selectors)
    def munmap(self, sel: int, msel: int) -> None:
        pm = self.pick(sel)
        if not pm.maps:
            return
        m = pm.maps.pop(msel % len(pm.maps))
        assert pm.proc.munmap(m.addr, m.pages * PS) == 0
        self.collect()

    @precondition(lambda self: any(pm.maps for pm in self.procs))
    @rule(
        sel=selectors,
        msel=selectors,
        page=st.integers(0, 2),
        at=st.sampled_from(IN_PAGE),
        data=payloads,
    )
    def write_memory(self, sel: int, msel: int, page: int, at: int, data: bytes) -> None:
        pm = self.pick(sel)
        if not pm.maps:
            return
        m, rel, n = self.mapping_and_range(pm, msel, page, at, len(data))
        data = data[:n]
        fault = self.first_fault(m, rel, n)
        if fault is not None:
            before = self.observe()
            try:
                pm.proc.write_memory(m.addr + rel, data)
            except MemoryFault as f:
                assert (f.signo, f.code, f.addr) == (C.SIGBUS, C.BUS_OBJERR, fault)
            else:
                raise AssertionError("write past the end of the object did not fault")
            assert self.observe() == before  # R-FAULT-2: no byte moved
            return
        pm.proc.write_memory(m.addr + rel, data)
        obj = self.objs[m.oid]
        pos = 0
        while pos < n:
            page_no, in_page = divmod(rel + pos, PS)
            chunk = data[pos : pos + PS - in_page]
            if m.shared:
                start = m.off + page_no * PS + in_page
                obj.buf[start : start + len(chunk)] = chunk
            else:
                if page_no not in m.private:  # R-OBJ-4: the first write copies the page
                    m.private[page_no] = bytearray(self.page_bytes(m, page_no))
                m.private[page_no][in_page : in_page + len(chunk)] = chunk
            pos += len(chunk)

    @precondition(lambda self: any(pm.maps for pm in self.procs))
    @rule(
        sel=selectors,
        msel=selectors,
        page=st.integers(0, 2),
        at=st.sampled_from(IN_PAGE),
        n=st.integers(1, PS + 10),
    )
    def read_memory(self, sel: int, msel: int, page: int, at: int, n: int) -> None:
        pm = self.pick(sel)
        if not pm.maps:
            return
        m, rel, n = self.mapping_and_range(pm, msel, page, at, n)
        fault = self.first_fault(m, rel, n)
        if fault is not None:
            try:
                pm.proc.read_memory(m.addr + rel, n)
            except MemoryFault as f:
                assert (f.signo, f.code, f.addr) == (C.SIGBUS, C.BUS_OBJERR, fault)
            else:
                raise AssertionError("read past the end of the object did not fault")
            return
        want = b"".join(self.page_bytes(m, i) for i in range(rel // PS, (rel + n - 1) // PS + 1))
        start = rel % PS
        assert pm.proc.read_memory(m.addr + rel, n) == want[start : start + n]

    # -- failing calls change nothing (R-CALL-5) ----------------------------------------------

    @precondition(lambda self: self.procs)
    @rule(sel=selectors, fsel=selectors, which=st.integers(0, 11))
    def failing_call(self, sel: int, fsel: int, which: int) -> None:
        pm = self.pick(sel)
        p = pm.proc
        fd = self.fd_of(pm, fsel)
        ro = self.fd_of(pm, fsel, writable=False)
        rw = self.fd_of(pm, fsel, writable=True)
        missing = next((n for n in NAMES if n not in self.names), None)
        present = next(iter(self.names), None)
        if which == 0 and fd is not None:
            self.expect_failure(qerrno.EINVAL, p.ftruncate, fd, -1)
        elif which == 1 and ro is not None:
            self.expect_failure(qerrno.EINVAL, p.ftruncate, ro, PS)
        elif which == 2 and ro is not None:
            self.expect_failure(qerrno.EACCES, p.mmap, 0, PS, RW, C.MAP_SHARED, ro, 0)
        elif which == 3 and ro is not None:
            self.expect_failure(qerrno.EBADF, p.pwrite, ro, b"x", 0)
        elif which == 4 and fd is not None:
            # mmap64: a 32-bit mmap zero-extends its off_t (R-CALL-3), so -PS is not negative
            self.expect_failure(qerrno.EINVAL, p.mmap64, 0, PS, RW, C.MAP_PRIVATE, fd, -PS)
        elif which == 5:
            self.expect_failure(qerrno.EBADF, p.mmap, 0, PS, RW, C.MAP_SHARED, 999, 0)
        elif which == 6 and present is not None:
            self.expect_failure(qerrno.EEXIST, p.shm_open, present, C.O_RDWR | C.O_CREAT | C.O_EXCL)
        elif which == 7 and missing is not None:
            self.expect_failure(qerrno.ENOENT, p.shm_open, missing, C.O_RDWR)
        elif which == 8 and rw is not None:
            self.expect_failure(qerrno.ENOMEM, p.ftruncate, rw, 2 * RAM)
        elif which == 9 and fd is not None:
            self.expect_failure(qerrno.ENOMEM, p.mmap, 0, 2 * RAM, RW, C.MAP_PRIVATE, fd, 0)
        elif which == 10 and rw is not None:
            bad = C.SHMCTL_ANON | C.SHMCTL_PHYS | C.SHMCTL_LAZY
            errno = self.k.profile.shm_ctl_errno or qerrno.EINVAL  # SPEC 19: 6.4 says ENOSYS
            self.expect_failure(errno, p.shm_ctl, rw, bad, 0, PS)
        elif which == 11 and fd is not None and pm.maps:
            m = pm.maps[fsel % len(pm.maps)]  # MAP_FIXED over it, not congruent (R-MMAP-F2)
            kind = C.MAP_SHARED if pm.fds[fd][1] else C.MAP_PRIVATE
            flags = kind | C.MAP_FIXED
            self.expect_failure(qerrno.EINVAL, p.mmap, m.addr + 1, PS, RW, flags, fd, 0)

    # -- invariants ------------------------------------------------------------------------

    @invariant()
    def kernel_invariants_hold(self) -> None:
        self.k.check_invariants()

    @invariant()
    def accounting_matches_the_model(self) -> None:
        """R-OBJ-3: shm pages are allocated; private copies use their reservation."""
        copies = sum(len(m.private) for pm in self.procs for m in pm.maps)
        reserved = sum(
            m.pages - len(m.private)
            for pm in self.procs
            for m in pm.maps
            if not m.shared and not m.lazy
        )
        info = self.k.meminfo()
        assert info.allocated == sum(roundup(o.size) for o in self.objs.values()) + copies * PS
        assert info.reserved == reserved * PS
        assert info.free + info.allocated + info.reserved == info.total

    @invariant()
    def mappings_match_the_model(self) -> None:
        for pm in self.procs:
            p = pm.proc
            assert sum(r.size for r in p.mappings()) == sum(m.pages * PS for m in pm.maps)
            for m in pm.maps:
                for i in range(m.pages):
                    rec = p.mapping_at(m.addr + i * PS)
                    assert rec is not None and rec.kind == "shm"
                    assert rec.name == self.objs[m.oid].path  # kept after shm_unlink
                    assert rec.offset + (m.addr + i * PS - rec.start) == m.off + i * PS
                    assert rec.flags & C.MAP_TYPE == (C.MAP_SHARED if m.shared else C.MAP_PRIVATE)

    @invariant()
    def open_fds_match_the_model(self) -> None:
        for pm in self.procs:
            assert sorted(pm.proc.fdt.fds) == sorted(pm.fds)
            for fd, (oid, _) in pm.fds.items():
                assert pm.proc.fstat(fd).st_size == self.objs[oid].size

    def teardown(self) -> None:
        """R-OBJ-2: with every process gone and every name unlinked, no frame is left."""
        for pm in list(self.procs):
            pm.proc.exit(0)
        self.procs.clear()
        helper = self.k.spawn(image=False)
        for name in list(self.names):
            helper.shm_unlink(name)
        helper.exit(0)
        self.k.check_invariants()
        info = self.k.meminfo()
        assert info.free == info.total, info
        assert (info.allocated, info.reserved) == (0, 0)


ShmObjectsMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=40, deadline=None
)
test_R_OBJ_2_to_6_R_CALL_5_shm_objects_state_machine = ShmObjectsMachine.TestCase


def _on(version: str, arch: str) -> type[ShmObjectsMachine]:
    """The same machine on another profile and arch (SPEC 19, R-SYS-2..4), fewer examples."""
    machine = type(
        f"ShmObjectsMachine_{version}_{arch}",
        (ShmObjectsMachine,),
        {"version": version, "arch": arch},
    )
    machine.TestCase.settings = settings(max_examples=10, stateful_step_count=30, deadline=None)
    return machine


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "x86", "armle-v7"])
@pytest.mark.parametrize("version", ["8.0", "7.1", "6.4"])
def test_SPEC_19_shm_objects_state_machine_on_every_profile_and_arch(
    version: str, arch: str
) -> None:
    machine = _on(version, arch)
    run_state_machine_as_test(machine, settings=machine.TestCase.settings)
