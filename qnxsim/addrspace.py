"""A process's address space: mapping entries in an IntervalMap, and what they hold.

Here live the primitives every call builds on: add a mapping, remove a range (as munmap
does, R-UNMAP-5), change protection of a range, copy for fork (R-PROC-2), and the public
mapping records (R-MAP-1) in canonical merged form (R-MAP-2).  The rules that decide
*whether* a call may do these things live in ``vmm.py`` and ``placement.py``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import attrs

from qnxsim.arch import Arch
from qnxsim.constants import MAP_LAZY, MAP_PRIVATE, MAP_STACK, MAP_TYPE
from qnxsim.intervals import IntervalMap
from qnxsim.objects import MappingKind, MemObject
from qnxsim.physmem import PhysMem

#: One int object per distinct flags word, shared by every entry that has it: 100,000
#: mappings made with the same flags hold one int, not 100,000 (32 bytes each), and
#: reading a record does not touch a separate int per mapping.
_FLAG_WORDS: dict[int, int] = {}


@attrs.frozen
class Mapping:
    """One record of ``Process.mappings()`` (R-MAP-1)."""

    start: int
    end: int
    size: int
    prot: int
    flags: int
    offset: int
    kind: MappingKind
    name: str | None
    locked: bool

    def __repr__(self) -> str:
        return (
            f"Mapping({self.start:#x}-{self.end:#x} prot={self.prot:#x} flags={self.flags:#x}"
            f" {self.kind} {self.name or ''} off={self.offset:#x}"
            f"{' locked' if self.locked else ''})"
        )


class Entry:
    """The value of one address-space interval: how ``[start, end)`` maps its object.

    ``offset`` is the object offset of the interval's start.  Private anonymous memory and
    stack guards use the process's own anonymous object with offset = virtual address.
    ``shared_ro`` marks a MAP_SHARED mapping of an object whose fd was not writable
    (R-MPROT-5).  ``pool`` names the typed-memory pool the memory came from (R-TYMEM-4):
    such memory never counts against RLIMIT_DATA (R-MMAP-18), and posix_mem_offset finds
    its fd by the pool (R-MOFF-4).  Entries are never changed in place; a change makes a
    new one.
    """

    __slots__ = ("flags", "kind", "locked", "obj", "offset", "pool", "prot", "shared_ro")

    def __init__(
        self,
        prot: int,
        flags: int,
        obj: MemObject,
        offset: int,
        kind: MappingKind,
        *,
        locked: bool = False,
        shared_ro: bool = False,
        pool: str | None = None,
    ) -> None:
        self.prot = prot
        self.flags = _FLAG_WORDS.setdefault(flags, flags)
        self.obj = obj
        self.offset = offset
        self.kind = kind
        self.locked = locked
        self.shared_ro = shared_ro
        self.pool = pool

    def copy(self) -> Entry:
        new = Entry.__new__(Entry)
        new.prot = self.prot
        new.flags = self.flags
        new.obj = self.obj
        new.offset = self.offset
        new.kind = self.kind
        new.locked = self.locked
        new.shared_ro = self.shared_ro
        new.pool = self.pool
        return new

    def with_prot(self, prot: int) -> Entry:
        new = self.copy()
        new.prot = prot
        return new

    def with_locked(self, locked: bool) -> Entry:
        new = self.copy()
        new.locked = locked
        return new

    @property
    def private(self) -> bool:
        """MAP_PRIVATE with private copies.  A physical mapping (MAP_PHYS without MAP_ANON)
        maps the memory itself even with MAP_PRIVATE, as QNX 6.4's vmm_mmap does (R-MMAP-11):
        no reservation and no copies, writes reach the physical memory (R-SYS-5)."""
        return self.flags & MAP_TYPE == MAP_PRIVATE and self.kind != "phys"

    @property
    def lazy(self) -> bool:
        return bool(self.flags & MAP_LAZY)


def _split_entry(e: Entry, start: int, at: int) -> Entry:
    new = e.copy()
    new.offset += at - start
    return new


def _join_entry(left: Entry, ls: int, le: int, right: Entry) -> Entry | None:
    """R-MAP-2: same object, contiguous offsets, same prot, flags, kind and lock state."""
    if (
        left.obj is right.obj
        and left.offset + (le - ls) == right.offset
        and left.prot == right.prot
        and left.flags == right.flags
        and left.kind == right.kind
        and left.locked == right.locked
        and left.shared_ro == right.shared_ro
        and left.pool == right.pool
    ):
        return left
    return None


@attrs.frozen
class Machine:
    """What an address space needs to know of its kernel: arch, page size, ranges, ASLR,
    and the object that *is* physical memory (``/dev/mem``, MAP_PHYS)."""

    arch: Arch
    page_size: int
    pm: PhysMem
    rng: random.Random | None
    dev_mem: MemObject
    #: R-SYS-3 [SIM]: page 0 is never handed out.  (Derived from arch and page size, as
    #: are the fields below.)
    user_start: int = attrs.field(init=False)
    #: End of the user address range (R-SYS-3).
    user_end: int = attrs.field(init=False)
    #: ADDR_MAX: the highest address of the arch (R-UNMAP-1).
    addr_max: int = attrs.field(init=False)
    #: RLIM_INFINITY of the arch (SPEC 18).
    rlim_infinity: int = attrs.field(init=False)

    @user_start.default
    def _user_start(self) -> int:
        return self.page_size

    @user_end.default
    def _user_end(self) -> int:
        return self.arch.user_end(self.page_size)

    @addr_max.default
    def _addr_max(self) -> int:
        return (1 << self.arch.bits) - 1

    @rlim_infinity.default
    def _rlim_infinity(self) -> int:
        return self.arch.rlim_infinity


class AddressSpace:
    """The mappings of one process and the counters its limits are checked against.

    Methods: ``add``, ``remove``, ``protect``, ``records``, ``record_at``, ``entries``,
    ``reclaimable``, ``fork_into``, ``check``.
    """

    __slots__ = ("anon", "data_bytes", "lock_future", "locked_bytes", "m", "map", "total_bytes")

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.map = IntervalMap[Entry](
            split=_split_entry, join=_join_entry, bounds=(machine.user_start, machine.user_end)
        )
        self.anon = MemObject("anon", named=True)  # lives as long as the process
        self.total_bytes = 0  # RLIMIT_AS
        self.data_bytes = 0  # RLIMIT_DATA: private anonymous memory that is not stack
        self.locked_bytes = 0  # RLIMIT_MEMLOCK
        self.lock_future = False  # mlockall(MCL_FUTURE) in force (R-MMAP-19)

    # -- reading ------------------------------------------------------------------------

    def entries(self, start: int, end: int) -> list[tuple[int, int, Entry]]:
        return self.map.overlapping(start, end)

    def record(self, s: int, e: int, entry: Entry) -> Mapping:
        if entry.obj is not self.anon:
            name = entry.obj.name
        else:
            name = "/dev/zero" if entry.kind == "zero" else None
        return Mapping(
            s, e, e - s, entry.prot, entry.flags, entry.offset, entry.kind, name, entry.locked
        )

    def records(self) -> tuple[Mapping, ...]:
        """Every mapping, ascending (R-MAP-1), in canonical merged form (R-MAP-2).  O(n)."""
        return tuple(self.record(s, e, v) for s, e, v in self.map)

    def record_at(self, addr: int) -> Mapping | None:
        """The record holding ``addr``, or None.  O(log n)."""
        hit = self.map.find(addr)
        return self.record(*hit) if hit is not None else None

    @staticmethod
    def counts_as_data(entry: Entry) -> bool:
        """RLIMIT_DATA counts private anonymous memory (/dev/zero too) that is no stack and
        not typed memory (R-MMAP-18)."""
        return (
            entry.kind in ("anon", "zero")
            and entry.private
            and not entry.flags & MAP_STACK
            and entry.pool is None
        )

    # -- changing -----------------------------------------------------------------------

    def add(self, start: int, end: int, entry: Entry) -> None:
        """Insert a mapping whose memory is already populated or reserved."""
        size = end - start
        self.map.insert(start, end, entry)
        entry.obj.mapped += size
        self.total_bytes += size
        if self.counts_as_data(entry):
            self.data_bytes += size
        if entry.locked:
            self.locked_bytes += size

    def private_copies(self, start: int, end: int) -> int:
        """Bytes of private pages (anonymous or privatised) backed by frames in a range."""
        runs = self.anon.pages.overlapping(start, end)  # unclipped: one run may be wider
        return sum(min(hi, end) - max(lo, start) for lo, hi, _ in runs)

    def remove(self, start: int, end: int) -> list[tuple[int, int, Entry]]:
        """Remove every mapped page of ``[start, end)`` as munmap does (R-UNMAP-5).

        Private pages are freed, reservations released, and an object that loses its last
        mapping and has no other reference is destroyed (R-OBJ-2).  O(log n + k).
        """
        pm = self.m.pm
        removed = self.map.remove(start, end)
        for s, e, entry in removed:
            size = e - s
            obj = entry.obj
            if entry.private:
                copies = self.anon.release(pm, s, e)
                if obj is not self.anon and not entry.lazy:
                    pm.unreserve(size - copies)
            obj.mapped -= size
            if obj is not self.anon and not obj.alive:
                obj.release(pm, 0, 1 << 64)  # R-OBJ-2: every frame, the last partial page too
            self.total_bytes -= size
            if self.counts_as_data(entry):
                self.data_bytes -= size
            if entry.locked:
                self.locked_bytes -= size
        return removed

    def reclaimable(self, start: int, end: int) -> int:
        """Bytes of RAM that removing ``[start, end)`` would give back (frames and reserve)."""
        freed = self.private_copies(start, end)
        lost: dict[int, tuple[MemObject, int]] = {}
        for s, e, entry in self.map.overlapping(start, end):
            lo, hi = max(s, start), min(e, end)
            obj = entry.obj
            if entry.private and obj is not self.anon and not entry.lazy:
                freed += (hi - lo) - self.private_copies(lo, hi)
            if obj is not self.anon:
                prev = lost.get(id(obj), (obj, 0))[1]
                lost[id(obj)] = (obj, prev + hi - lo)
        for obj, size in lost.values():
            if not obj.outlives(size):
                freed += obj.allocated()
        return freed

    def replace_entries(self, start: int, end: int, make: Callable[[Entry], Entry]) -> None:
        """Give each piece of ``[start, end)`` the entry ``make(piece)``, then merge again.

        ``make`` returns the entry itself where nothing changes; only a changed mapping is
        cut at ``start``/``end``.  O(log n + k).
        """
        for s, e, old, new in self.map.update(start, end, make):
            if new.locked != old.locked:
                self.locked_bytes += (e - s) if new.locked else -(e - s)

    # -- fork ---------------------------------------------------------------------------

    def fork_cost(self, inherit: list[tuple[int, int, Entry]]) -> int:
        """RAM a fork child needs for copies and reservations of ``inherit`` (R-PROC-2)."""
        need = 0
        for s, e, entry in inherit:
            if entry.private:
                copies = self.private_copies(s, e)
                need += copies
                if entry.obj is not self.anon and not entry.lazy:
                    need += (e - s) - copies
        return need

    def fork_into(self, child: AddressSpace, inherit: list[tuple[int, int, Entry]]) -> None:
        """Recreate ``inherit`` in ``child`` (R-PROC-2); the caller checked ``fork_cost``.

        O(n + m) for n mappings and m runs of private pages: the child's map is a copy of
        this one (no insertion one by one), and private pages are copied run by run.
        """
        pm = self.m.pm
        kept = {s for s, _, _ in inherit}  # the caller chose them by its profile's MAP_NOINHERIT
        skipped = [(s, e) for s, e, _ in self.map if s not in kept]
        for run_lo, run_hi, paddr in self.anon.pages:  # R-PROC-2: private memory is copied
            for lo, hi in _minus(run_lo, run_hi, skipped):
                src = paddr + (lo - run_lo)
                ok = child.anon.populate(pm, lo, hi)
                assert ok, "fork_cost was checked"
                for c_lo, c_hi, c_paddr in child.anon.pages.overlapping(lo, hi):
                    a, b = max(c_lo, lo), min(c_hi, hi)
                    pm.copy_frames(src + (a - lo), c_paddr + (a - c_lo), b - a)
        for s, e, entry in inherit:
            if entry.private and entry.obj is not self.anon and not entry.lazy:
                ok = pm.reserve((e - s) - self.private_copies(s, e))
                assert ok, "fork_cost was checked"
        m = self.map.copy()
        for s, e in skipped:
            m.remove(s, e)
        unlocked = False
        for s, e, entry in m:
            new = _rebind(entry, child.anon if entry.obj is self.anon else entry.obj)
            if new.locked:
                new = new.with_locked(False)  # R-LOCK-4: locks are not inherited
                unlocked = True
            if new is not entry:
                m.replace(s, new)
            size = e - s
            new.obj.mapped += size
            child.total_bytes += size
            if self.counts_as_data(new):
                child.data_bytes += size
        if unlocked:
            m.coalesce(self.m.user_start, self.m.user_end)
        child.map = m


def _minus(lo: int, hi: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[lo, hi)`` without the ranges in ``holes`` (sorted, disjoint)."""
    out = []
    for h_lo, h_hi in holes:
        if h_hi <= lo or h_lo >= hi:
            continue
        if h_lo > lo:
            out.append((lo, h_lo))
        lo = max(lo, h_hi)
    if lo < hi:
        out.append((lo, hi))
    return out


def _rebind(entry: Entry, obj: MemObject) -> Entry:
    if entry.obj is obj:
        return entry
    new = entry.copy()
    new.obj = obj
    return new


def iter_entries(space: AddressSpace) -> Iterator[tuple[int, int, Entry]]:
    return iter(space.map)
