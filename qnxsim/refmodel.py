"""The reference model: what QNX does, written from SPEC as plainly as possible.

Tests predict the simulator through this one model, never through a copy of their own.
It knows every profile (SPEC 19: 8.0, 7.1 and 6.4, including 6.4's hole fit) through the
profile and arch data, and nothing of how the simulator is built.

- placement (SPEC 4.1): ``hole_above``, ``hole_below`` (R-PLACE-2, R-PLACE-3 word for
  word, over a list of holes) and ``Layout`` (a configuration's user range, hints and
  hole fit; ``Layout.place`` over a list of mapped spans);
- abilities (SPEC 16, R-MMAP-9, SPEC 19): ``ability_allows``, ``exec_abilities``;
- memory: ``KernelModel``, pages, private copies and shared objects as plain Python data
  with the rules they need (R-OBJ-4..6, R-FAULT-1, R-PROC-2), for
  ``strategies.KernelMachine``.

It does not check arguments or decide errno by itself; the state machines predict those
from its answers.  O(pages) or O(holes) everywhere: clear before fast.  Nothing here
imports hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import attrs

from qnxsim import constants as C
from qnxsim.abilities import NONROOT, ROOT
from qnxsim.arch import ARCHES
from qnxsim.profile import PROFILES, ROOT_ONLY_AIDS, Profile

#: R-FAULT-3: what ``prot`` must hold for each access.
ALLOWED = {
    "r": C.PROT_READ | C.PROT_WRITE | C.PROT_EXEC,
    "w": C.PROT_WRITE,
    "x": C.PROT_EXEC,
}


def round_up(n: int, page_size: int) -> int:
    return -(-n // page_size) * page_size


# -- placement (SPEC 4.1) ----------------------------------------------------------------

Span = tuple[int, int]


def hole_above(holes: list[Span], hint: int, size: int, slack: int = 0) -> int | None:
    """R-PLACE-2, literally, over ``holes`` (half-open free ranges, any order).

    The lowest free hole at or above the hint that fits gives the mapping at its start, or
    at the hint itself when the hint lies inside a hole that fits from the hint; if nothing
    fits at or above the hint, the highest fitting hole below it, at its start; else None
    (ENOMEM).  With SPEC 19's hole fit a hole must hold ``slack`` bytes beyond the size.

    >>> hole_above([(0, 10), (30, 100)], 3, 5)
    3
    >>> hole_above([(0, 10), (30, 100)], 3, 5, slack=3)
    30
    """
    need = size + slack
    for lo, hi in holes:
        if lo <= hint < hi and hi - hint >= need:
            return hint
    fitting = [(lo, hi) for lo, hi in holes if hi - lo >= need]
    at_or_above = [lo for lo, _ in fitting if lo >= hint]
    if at_or_above:
        return min(at_or_above)
    below = [lo for lo, _ in fitting if lo < hint]
    return max(below) if below else None


def hole_below(holes: list[Span], hint: int, size: int, slack: int = 0) -> int | None:
    """R-PLACE-3, literally: the highest hole at or below the hint that fits, the mapping
    at its top (or at the hint when ``[hint, hint + size + slack)`` is free); if nothing
    fits below, the lowest fitting hole above, at its top; else None.  With SPEC 19's hole
    fit a hole must hold ``slack`` bytes beyond the size; the mapping still ends at the
    hole's top.

    >>> hole_below([(0, 10), (30, 100)], 21, 5)
    5
    """
    need = size + slack
    for lo, hi in holes:
        if lo <= hint and hint + need <= hi:
            return hint
    fitting = [(lo, hi) for lo, hi in holes if hi - lo >= need]
    at_or_below = [(lo, hi) for lo, hi in fitting if lo <= hint]
    if at_or_below:
        return max(at_or_below)[1] - size
    above = [(lo, hi) for lo, hi in fitting if lo > hint]
    return min(above)[1] - size if above else None


def holes_between(spans: list[Span], lo: int, hi: int) -> list[Span]:
    """The free ranges of ``[lo, hi)`` around the mapped ``spans`` (sorted, disjoint)."""
    out: list[Span] = []
    at = lo
    for s, e in spans:
        if s > at:
            out.append((at, min(s, hi)))
        at = max(at, e)
        if at >= hi:
            break
    if at < hi:
        out.append((at, hi))
    return [(a, b) for a, b in out if a < b]


@attrs.frozen
class Layout:
    """What placement needs of one configuration (R-SYS-3, R-SYS-4, SPEC 19): the user
    range, the category hints and the hole fit of a version on an arch.

    >>> hex(Layout.of("6.4").place([], Layout.of("6.4").shmem_base, 4096))
    '0x40100000'
    """

    profile: Profile
    page_size: int
    user_start: int
    user_end: int
    program_base: int
    shmem_base: int
    so_base: int

    @classmethod
    def of(cls, version: str = "8.0", arch: str | None = None, page_size: int = 4096) -> Layout:
        profile = PROFILES[version]
        a = ARCHES[arch or profile.default_arch]
        return cls(profile, page_size, page_size, a.user_end(page_size), a.program_base,
                   a.shmem_base, a.so_base)  # fmt: skip

    @property
    def slack(self) -> int:
        """SPEC 19: the bytes a hole must hold beyond the size (6.4: one page)."""
        return self.profile.hole_slack_pages * self.page_size

    def category_hint(self, kind: str, flags: int = 0) -> int:
        """R-PLACE-1 with ASLR off: MAP_STACK and private anonymous memory (``kind``
        "anon", or a private "zero") from PROGRAM_BASE, MAP_ELF from SO_BASE, everything
        else from SHMEM_BASE."""
        if flags & C.MAP_STACK:
            return self.program_base
        if flags & C.MAP_ELF:
            return self.so_base
        private = flags & C.MAP_TYPE != C.MAP_SHARED
        if kind == "anon" or (kind == "zero" and private):
            return self.program_base
        return self.shmem_base

    def place(
        self, spans: list[Span], hint: int, size: int, *, downward: bool = False
    ) -> int | None:
        """R-PLACE-2 (or R-PLACE-3 ``downward``) among the holes the mapped ``spans``
        leave in the user range (R-PLACE-4), with the profile's hole fit."""
        holes = holes_between(spans, self.user_start, self.user_end)
        find = hole_below if downward else hole_above
        return find(holes, hint, size, self.slack)


# -- abilities (SPEC 16, R-MMAP-9, SPEC 19) ------------------------------------------------

#: R-ABLE-3: (root, nonroot) defaults of the memory abilities.
ABILITY_DEFAULTS: dict[int, tuple[bool, bool]] = {
    C.PROCMGR_AID_MEM_ADD: (True, False),
    C.PROCMGR_AID_MEM_PHYS: (True, False),
    C.PROCMGR_AID_MEM_SPECIAL: (True, False),
    C.PROCMGR_AID_MEM_GLOBAL: (True, False),
    C.PROCMGR_AID_MEM_PEER: (True, False),
    C.PROCMGR_AID_MEM_LOCK: (True, False),
    C.PROCMGR_AID_PROT_EXEC: (True, True),
    C.PROCMGR_AID_MAP_FIXED: (True, True),
    C.PROCMGR_AID_PROT_WRITE_AND_EXEC: (True, True),
    C.PROCMGR_AID_XPROCESS_ABLE: (True, False),
}


class AbilityEntry(Protocol):
    """What ``ability_allows`` reads of a table entry (``abilities.DomainEntry`` fits)."""

    @property
    def allowed(self) -> bool: ...

    @property
    def subranges(self) -> tuple[tuple[int, int], ...]: ...


def ability_allows(
    profile: Profile,
    table: Mapping[tuple[int, int], AbilityEntry],
    aid: int,
    euid: int,
    lo: int,
    hi: int,
) -> bool:
    """R-ABLE-1/2 on ``table`` ((aid, domain) -> entry; missing: R-ABLE-3's default).

    The domain is the current euid's; denied: no; allowed without subranges: yes; with
    subranges: yes only when one holds all of ``[lo, hi]``.  SPEC 19: a profile without
    abilities (6.4) answers "euid 0" for the abilities that deny non-root by default and
    lets every other check pass, whatever the table says.
    """
    if not profile.abilities:
        return euid == 0 if aid in ROOT_ONLY_AIDS else True
    domain = ROOT if euid == 0 else NONROOT
    entry = table.get((aid, domain))
    if entry is None:
        root, nonroot = ABILITY_DEFAULTS[aid]
        return root if domain == ROOT else nonroot
    if not entry.allowed:
        return False
    if not entry.subranges:
        return True
    return any(a <= lo and hi <= b for a, b in entry.subranges)


def exec_abilities(profile: Profile, object_backed: bool, write: bool) -> tuple[int, ...]:
    """The abilities PROT_EXEC needs, in check order (R-MMAP-9, R-MPROT-3, SPEC 19).

    8.0: PROT_EXEC for an object mapping without PROT_WRITE, else PROT_WRITE_AND_EXEC;
    7.1: PROT_EXEC, and with PROT_WRITE also PROT_WRITE_AND_EXEC; 6.4: none.
    """
    if profile.exec_rule == "none":
        return ()
    if profile.exec_rule == "7.1":
        if write:
            return (C.PROCMGR_AID_PROT_EXEC, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
        return (C.PROCMGR_AID_PROT_EXEC,)
    if object_backed and not write:
        return (C.PROCMGR_AID_PROT_EXEC,)
    return (C.PROCMGR_AID_PROT_WRITE_AND_EXEC,)


# -- memory -------------------------------------------------------------------------------


class ObjectModel:
    """A shm object or an unnamed shared anonymous object: its bytes and its size.

    ``data`` always holds whole pages: ``round_up(size)`` bytes, so bytes written through a
    mapping into the last page past ``size`` are kept, as the object's frame keeps them.
    """

    __slots__ = ("data", "kind", "name", "owner", "page_size", "size")

    def __init__(
        self, kind: str, page_size: int, size: int = 0, name: str | None = None, owner: int = 0
    ) -> None:
        self.kind = kind
        self.page_size = page_size
        self.size = size
        self.name = name
        self.owner = owner
        self.data = bytearray(round_up(size, page_size))

    def __repr__(self) -> str:
        return f"<ObjectModel {self.kind} {self.name or ''} size={self.size:#x}>"

    def _clear_tail(self, size: int) -> None:
        end = round_up(size, self.page_size)
        self.data[size:end] = bytes(end - size)

    def resize(self, new_size: int) -> None:
        """R-OBJ-6 and R-SHM-5: shrink frees whole pages and zeroes the new last page's
        tail; growth zeroes the old last page's tail and adds zero pages."""
        ps = self.page_size
        if new_size > self.size:
            self._clear_tail(self.size)
            self.data.extend(bytes(round_up(new_size, ps) - len(self.data)))
        else:
            del self.data[round_up(new_size, ps) :]
            self._clear_tail(new_size)
        self.size = new_size

    def pread(self, offset: int, n: int) -> bytes:
        """R-FS-2: up to ``n`` bytes from ``offset``, clipped at the size."""
        n = max(0, min(n, self.size - offset))
        return bytes(self.data[offset : offset + n])

    def pwrite(self, offset: int, data: bytes) -> None:
        """R-FS-2: writing past the end grows the object first."""
        end = offset + len(data)
        if end > self.size:
            self.resize(end)
        self.data[offset:end] = data

    def page(self, index: int) -> memoryview:
        ps = self.page_size
        return memoryview(self.data)[index * ps : (index + 1) * ps]


@attrs.define(slots=True)
class PageModel:
    """One mapped page of a process.

    ``obj`` is None for private anonymous memory; otherwise the page shows page ``index``
    of ``obj`` (a private mapping only until the process writes it, R-OBJ-4).
    """

    prot: int
    kind: str  # the record kind: "anon", "shared-anon" or "shm"
    obj: ObjectModel | None
    index: int
    private: bool
    noinherit: bool


class ProcessModel:
    """What one process has: pages by page number, private page contents, open fds."""

    __slots__ = ("copies", "fds", "pages", "pid", "uid")

    def __init__(self, pid: int, uid: int) -> None:
        self.pid = pid
        self.uid = uid
        self.pages: dict[int, PageModel] = {}
        #: Page number -> contents of a private page (anonymous, or a private copy).
        self.copies: dict[int, bytearray] = {}
        self.fds: dict[int, ObjectModel] = {}

    def lowest_free_fd(self) -> int:
        fd = 0
        while fd in self.fds:
            fd += 1
        return fd


@attrs.frozen
class HandleModel:
    """An unused shared memory handle (R-HANDLE-1): its value, object, recipient pid and
    access mode (O_RDONLY or O_RDWR).  It goes when used, or when its recipient exits."""

    value: int
    obj: ObjectModel
    recipient: int
    access: int


@attrs.frozen
class Fault:
    """The fault an access should raise (R-FAULT-1)."""

    signo: int
    code: int
    addr: int

    def __str__(self) -> str:
        names = {
            (C.SIGSEGV, C.SEGV_MAPERR): "SIGSEGV/SEGV_MAPERR",
            (C.SIGSEGV, C.SEGV_ACCERR): "SIGSEGV/SEGV_ACCERR",
            (C.SIGBUS, C.BUS_OBJERR): "SIGBUS/BUS_OBJERR",
        }
        what = names.get((self.signo, self.code), f"signal {self.signo} code {self.code}")
        return f"{what} at {self.addr:#x}"


class KernelModel:
    """Every live process's pages and fds, shm names, and the pids that have exited.

    Methods by purpose --
    mappings: ``map``, ``unmap``, ``protect``, ``is_mapped``, ``is_free``, ``place``;
    memory: ``fault``, ``read``, ``write``, ``readable_runs``;
    processes: ``spawn``, ``fork``, ``exit``;
    views: ``layout``, ``page_numbers``.
    """

    def __init__(
        self, page_size: int, *, hole_slack_pages: int = 0, layout: Layout | None = None
    ) -> None:
        self.page_size = page_size
        #: The configuration's user range, hints and hole fit (``Layout.of``); without
        #: one, the user range is [page_size, 2^64) and the hole fit ``hole_slack_pages``.
        self.config = layout
        #: SPEC 19: what a hole must hold beyond the size, in pages (6.4 quirk: 1).
        self.hole_slack_pages = layout.profile.hole_slack_pages if layout else hole_slack_pages
        self.procs: dict[int, ProcessModel] = {}
        self.names: dict[str, ObjectModel] = {}
        self.dead: list[int] = []

    # -- processes ----------------------------------------------------------------------

    def spawn(self, pid: int, uid: int) -> ProcessModel:
        proc = ProcessModel(pid, uid)
        self.procs[pid] = proc
        return proc

    def fork(self, parent_pid: int, child_pid: int) -> ProcessModel:
        """R-PROC-2: pages without MAP_NOINHERIT at the same addresses; private pages are
        copied, shared ones show the same object; the fd table is duplicated."""
        parent = self.procs[parent_pid]
        child = self.spawn(child_pid, parent.uid)
        for vpage, page in parent.pages.items():
            if page.noinherit:
                continue
            child.pages[vpage] = attrs.evolve(page)
            if vpage in parent.copies:
                child.copies[vpage] = bytearray(parent.copies[vpage])
        child.fds = dict(parent.fds)
        return child

    def exit(self, pid: int) -> None:
        """R-PROC-4: mappings and fds go; peer calls to the pid now give ESRCH."""
        del self.procs[pid]
        self.dead.append(pid)

    # -- mappings -----------------------------------------------------------------------

    def page_numbers(self, start: int, end: int) -> range:
        ps = self.page_size
        return range(start // ps, round_up(end, ps) // ps)

    def is_mapped(self, pid: int, start: int, end: int) -> bool:
        pages = self.procs[pid].pages
        return all(v in pages for v in self.page_numbers(start, end))

    def is_free(self, pid: int, start: int, end: int) -> bool:
        pages = self.procs[pid].pages
        return not any(v in pages for v in self.page_numbers(start, end))

    def spans(self, pid: int) -> list[Span]:
        """The process's mapped ranges, runs of consecutive pages merged, ascending."""
        ps = self.page_size
        out: list[Span] = []
        for v in sorted(self.procs[pid].pages):
            if out and out[-1][1] == v * ps:
                out[-1] = (out[-1][0], (v + 1) * ps)
            else:
                out.append((v * ps, (v + 1) * ps))
        return out

    def place(self, pid: int, hint: int, size: int, *, downward: bool = False) -> int | None:
        """R-PLACE-2 (R-PLACE-3 ``downward``) with ASLR off, over the process's holes in
        the user range, with SPEC 19's hole fit; None when nothing fits (R-MMAP-16)."""
        ps = self.page_size
        size = round_up(size, ps)
        layout = self.config
        if layout is not None:
            return layout.place(self.spans(pid), hint, size, downward=downward)
        holes = holes_between(self.spans(pid), ps, 1 << 64)
        find = hole_below if downward else hole_above
        return find(holes, hint, size, self.hole_slack_pages * ps)

    def map(
        self,
        pid: int,
        start: int,
        size: int,
        prot: int,
        kind: str,
        obj: ObjectModel | None,
        first_index: int,
        *,
        private: bool,
        noinherit: bool,
    ) -> None:
        """A new mapping; whatever it covers is replaced (R-MMAP-F3)."""
        self.unmap(pid, start, start + size)
        proc = self.procs[pid]
        for i, v in enumerate(self.page_numbers(start, start + size)):
            proc.pages[v] = PageModel(prot, kind, obj, first_index + i, private, noinherit)
            if obj is None:
                proc.copies[v] = bytearray(self.page_size)  # R-OBJ-6: new memory is zero

    def unmap(self, pid: int, start: int, end: int) -> None:
        """R-UNMAP-5: every mapped page of the range goes, with its private copy."""
        proc = self.procs[pid]
        for v in self.page_numbers(start, end):
            proc.pages.pop(v, None)
            proc.copies.pop(v, None)

    def protect(self, pid: int, start: int, end: int, prot: int) -> None:
        """R-MPROT-4: the new prot applies to every page of the (mapped) range."""
        pages = self.procs[pid].pages
        for v in self.page_numbers(start, end):
            pages[v].prot = prot

    # -- memory -------------------------------------------------------------------------

    def _past_end(self, page: PageModel) -> bool:
        """R-MMAP-25: the page lies wholly past the end of its object."""
        obj = page.obj
        return obj is not None and page.index * self.page_size >= obj.size

    def fault(self, pid: int, addr: int, size: int, access: str) -> Fault | None:
        """R-FAULT-1: the first fault of an access, checking pages in address order."""
        ps = self.page_size
        pages = self.procs[pid].pages
        allowed = ALLOWED[access]
        for v in self.page_numbers(addr, addr + size):
            where = max(addr, v * ps)
            page = pages.get(v)
            if page is None:
                return Fault(C.SIGSEGV, C.SEGV_MAPERR, where)
            if not page.prot & allowed:
                return Fault(C.SIGSEGV, C.SEGV_ACCERR, where)
            if self._past_end(page):
                return Fault(C.SIGBUS, C.BUS_OBJERR, where)
        return None

    def _view(self, proc: ProcessModel, v: int, *, writing: bool) -> memoryview:
        page = proc.pages[v]
        copy = proc.copies.get(v)
        if copy is not None:
            return memoryview(copy)
        assert page.obj is not None
        if page.private and writing:  # R-OBJ-4: the first write makes a private copy
            proc.copies[v] = bytearray(page.obj.page(page.index))
            return memoryview(proc.copies[v])
        return page.obj.page(page.index)

    def read(self, pid: int, addr: int, size: int) -> bytes:
        """The bytes a fault-free read returns (check ``fault`` first)."""
        ps = self.page_size
        proc = self.procs[pid]
        out = bytearray()
        for v in self.page_numbers(addr, addr + size):
            lo, hi = max(addr, v * ps), min(addr + size, (v + 1) * ps)
            out += self._view(proc, v, writing=False)[lo - v * ps : hi - v * ps]
        return bytes(out)

    def write(self, pid: int, addr: int, data: bytes) -> None:
        """Store a fault-free write (check ``fault`` first)."""
        ps = self.page_size
        proc = self.procs[pid]
        end = addr + len(data)
        for v in self.page_numbers(addr, end):
            lo, hi = max(addr, v * ps), min(end, (v + 1) * ps)
            self._view(proc, v, writing=True)[lo - v * ps : hi - v * ps] = data[
                lo - addr : hi - addr
            ]

    def readable_runs(self, pid: int) -> Iterator[tuple[int, bytes]]:
        """``(address, expected bytes)`` for each run of pages a read would not fault on."""
        ps = self.page_size
        proc = self.procs[pid]
        run: list[int] = []
        for v in sorted(proc.pages):
            page = proc.pages[v]
            ok = bool(page.prot & ALLOWED["r"]) and not self._past_end(page)
            if ok and run and run[-1] == v - 1:
                run.append(v)
                continue
            if run:
                yield run[0] * ps, self.read(pid, run[0] * ps, len(run) * ps)
            run = [v] if ok else []
        if run:
            yield run[0] * ps, self.read(pid, run[0] * ps, len(run) * ps)

    # -- views --------------------------------------------------------------------------

    def layout(self, pid: int) -> list[tuple[int, int, str]]:
        """``(page address, prot, kind)`` for every mapped page, ascending."""
        ps = self.page_size
        pages = self.procs[pid].pages
        return [(v * ps, pages[v].prot, pages[v].kind) for v in sorted(pages)]


__all__ = [
    "ABILITY_DEFAULTS",
    "Fault",
    "KernelModel",
    "Layout",
    "ObjectModel",
    "PageModel",
    "ProcessModel",
    "ability_allows",
    "exec_abilities",
    "hole_above",
    "hole_below",
    "holes_between",
]
