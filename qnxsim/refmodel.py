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
  ``strategies.KernelMachine`` and the kernel walk of the test suite; with ``ram``, the
  RAM they use (R-OBJ-3, R-SYS-6): frames, reservations, lazy touches and BUS_ADRERR, what
  a mapping or a fork needs (R-MMAP-20, R-PROC-2);
- processes: parents, zombies and waitpid (R-PROC-4), credentials (R-PROC-5), limits
  (SPEC 18, R-MMAP-18), peer permission (R-PEER-1..3), and the plan of an anonymous mmap
  (``plan_anon_mmap``: SPEC 3 and 4 from R-MMAP-8 on);
- locks (SPEC 10): mlock, munlock, mlockall, munlockall and MCL_FUTURE by profile
  (R-LOCK-1..7, R-MMAP-19), what R-LOCK-5 calls backed.

It does not check arguments (R-MMAP-1..7) by itself; the state machines predict those.
Where it names an errno it returns it; it never raises one.  O(pages) or O(holes)
everywhere: clear before fast.  Nothing here imports hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

import attrs

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.abilities import NONROOT, ROOT
from qnxsim.arch import ARCHES
from qnxsim.profile import PROFILES, ROOT_ONLY_AIDS, Profile

#: R-FAULT-3: what ``prot`` must hold for each access.
ALLOWED = {
    "r": C.PROT_READ | C.PROT_WRITE | C.PROT_EXEC,
    "w": C.PROT_WRITE,
    "x": C.PROT_EXEC,
}


_RW = C.PROT_READ | C.PROT_WRITE


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
    #: R-SYS-2: the arch's address width (addr and size_t wrap modulo 2^bits).
    bits: int = 64
    #: SPEC 18: RLIM_INFINITY of the arch (no limit).
    rlim_infinity: int = 2**64 - 3

    @classmethod
    def of(cls, version: str = "8.0", arch: str | None = None, page_size: int = 4096) -> Layout:
        profile = PROFILES[version]
        a = ARCHES[arch or profile.default_arch]
        return cls(profile, page_size, page_size, a.user_end(page_size), a.program_base,
                   a.shmem_base, a.so_base, a.bits, a.rlim_infinity)  # fmt: skip

    @property
    def addr_max(self) -> int:
        """R-UNMAP-1: ADDR_MAX, the highest address of the arch."""
        return (1 << self.bits) - 1

    def widen(self, addr: int, length: int) -> Span | None:
        """R-UNMAP-1..3: the page range a munmap/mprotect-style call covers: ``len`` cut to
        ``ADDR_MAX - addr``, then None when it is 0 (EINVAL or ENOMEM by the call), else
        ``[rounddown(addr), roundup(addr + len))``."""
        length = min(length, self.addr_max - addr)
        if length == 0:
            return None
        ps = self.page_size
        return addr - addr % ps, round_up(addr + length, ps)

    def hint(self, addr: int, flags: int, kind: str = "anon") -> tuple[int | None, bool]:
        """R-PLACE-1 with ASLR off: ``(hint, downward)``.  A non-zero ``addr`` (ignored for
        MAP_STACK, R-MMAP-26) is rounded up to a page, down with MAP_BELOW; else the
        category's base (``category_hint``).  Downward for MAP_BELOW and MAP_STACK
        (R-PLACE-3).  The hint is None for an ``addr`` outside the user range: SPEC does
        not say where such a request goes, only that it goes in a free place."""
        ps = self.page_size
        downward = bool(flags & (C.MAP_BELOW | C.MAP_STACK))
        if addr and not flags & C.MAP_STACK:
            hint = addr - addr % ps if flags & C.MAP_BELOW else round_up(addr, ps)
            return (hint if self.user_start <= hint < self.user_end else None), downward
        return self.category_hint(kind, flags), downward

    def fixed_errno(self, start: int, size: int) -> int | None:
        """R-MMAP-F1: a MAP_FIXED range starting at page ``start``: EINVAL when the start
        lies outside the user range, ENOMEM when the end passes USER_END; else None."""
        if start < self.user_start or start >= self.user_end:
            return E.EINVAL
        if start + size > self.user_end:
            return E.ENOMEM
        return None

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

#: What a page needs before an access can move bytes (R-SYS-6, R-OBJ-3, R-FAULT-4): nothing,
#: a new frame from free RAM, or a private copy taken from the mapping's reservation.
READY, FRAME, FROM_RESERVE = 0, 1, 2


class ObjectModel:
    """A shm object, a file or an unnamed shared anonymous object: its bytes and its size.

    ``data`` always holds whole pages: ``round_up(size)`` bytes, so bytes written through a
    mapping into the last page past ``size`` are kept, as the object's frame keeps them.
    A ``lazy`` object (MAP_LAZY shared memory, SHMCTL_LAZY, a file: R-SYS-6, R-SHM-5) has a
    frame only for the pages in ``touched``; any other object has one for every page.
    """

    __slots__ = ("data", "kind", "lazy", "name", "owner", "page_size", "size", "touched")

    def __init__(
        self,
        kind: str,
        page_size: int,
        size: int = 0,
        name: str | None = None,
        owner: int = 0,
        *,
        lazy: bool = False,
    ) -> None:
        self.kind = kind
        self.page_size = page_size
        self.size = size
        self.name = name
        self.owner = owner
        self.lazy = lazy
        self.touched: set[int] = set()
        self.data = bytearray(round_up(size, page_size))

    def __repr__(self) -> str:
        return f"<ObjectModel {self.kind} {self.name or ''} size={self.size:#x}>"

    def frames(self) -> int:
        """R-OBJ-3: how many of the object's pages hold a frame."""
        pages = len(self.data) // self.page_size
        if not self.lazy:
            return pages
        return sum(1 for i in self.touched if i < pages)

    def touch(self, index: int) -> None:
        """R-FAULT-4: touching a page of a lazy object gives it a frame."""
        if self.lazy:
            self.touched.add(index)

    def _clear_tail(self, size: int) -> None:
        end = round_up(size, self.page_size)
        self.data[size:end] = bytes(end - size)

    def resize(self, new_size: int) -> None:
        """R-OBJ-6 and R-SHM-5: shrink frees whole pages and zeroes the new last page's
        tail; growth zeroes the old last page's tail and adds zero pages (each with a
        frame at once, unless the object is lazy)."""
        ps = self.page_size
        if new_size > self.size:
            self._clear_tail(self.size)
            self.data.extend(bytes(round_up(new_size, ps) - len(self.data)))
        else:
            del self.data[round_up(new_size, ps) :]
            self._clear_tail(new_size)
            pages = len(self.data) // ps
            self.touched = {i for i in self.touched if i < pages}
        self.size = new_size

    def pread(self, offset: int, n: int) -> bytes:
        """R-FS-2: up to ``n`` bytes from ``offset``, clipped at the size."""
        n = max(0, min(n, self.size - offset))
        return bytes(self.data[offset : offset + n])

    def pwrite(self, offset: int, data: bytes) -> None:
        """R-FS-2: writing past the end grows the object first; a lazy object's written
        pages get frames (R-SHM-5)."""
        end = offset + len(data)
        if end > self.size:
            self.resize(end)
        self.data[offset:end] = data
        ps = self.page_size
        for i in range(offset // ps, round_up(end, ps) // ps):
            self.touch(i)

    def page(self, index: int) -> memoryview:
        ps = self.page_size
        return memoryview(self.data)[index * ps : (index + 1) * ps]


@attrs.define(slots=True)
class PageModel:
    """One mapped page of a process.

    ``obj`` is None for private anonymous memory (and stack guards); otherwise the page
    shows page ``index`` of ``obj`` (a private mapping only until the process writes it,
    R-OBJ-4).  ``lazy``: MAP_LAZY (R-SYS-6: no frame, or no reservation, until touched);
    ``flags``: the MAP_* flags as the memory manager stores them (R-MAP-1); ``data``: the
    page counts against RLIMIT_DATA (R-MMAP-18); ``locked``: mlock or mlockall locked it
    (R-LOCK-1, R-LOCK-3; never on a profile without lock state, R-LOCK-7).
    """

    prot: int
    kind: str  # the record kind: "anon", "shared-anon", "shm", "file", "stack-guard", ...
    obj: ObjectModel | None
    index: int
    private: bool
    noinherit: bool
    lazy: bool = False
    flags: int = 0
    data: bool = False
    locked: bool = False


#: SPEC 18: the limits that are not RLIM_INFINITY by default.
DEFAULT_LIMITS = {C.RLIMIT_NOFILE: 1000}
#: SPEC 18: RLIMIT_CPU .. RLIMIT_NPROC.
RLIMIT_COUNT = 9


def default_limits(rlim_infinity: int) -> dict[int, tuple[int, int]]:
    """SPEC 18: a new process's ``(soft, hard)`` limit of every resource."""
    return {r: (DEFAULT_LIMITS.get(r, rlim_infinity),) * 2 for r in range(RLIMIT_COUNT)}


class ProcessModel:
    """What one process has: pages by page number, private page contents, open fds, its
    parent, credentials (R-PROC-5), limits (SPEC 18) and whether mlockall(MCL_FUTURE) is
    in force (R-LOCK-3)."""

    __slots__ = (
        "copies", "egid", "euid", "fds", "limits", "lock_future", "pages", "pid", "ppid",
        "rgid", "ruid", "sgid", "suid", "uid",
    )  # fmt: skip

    def __init__(
        self,
        pid: int,
        uid: int,
        *,
        ppid: int = 1,
        gid: int = 0,
        limits: dict[int, tuple[int, int]] | None = None,
    ) -> None:
        self.pid = pid
        self.uid = uid
        self.ppid = ppid
        self.ruid = self.euid = self.suid = uid
        self.rgid = self.egid = self.sgid = gid
        self.limits = dict(limits) if limits is not None else default_limits(2**64 - 3)
        self.pages: dict[int, PageModel] = {}
        #: Page number -> contents of a private page with a frame (anonymous memory that
        #: was populated or touched, or a private copy of an object page).
        self.copies: dict[int, bytearray] = {}
        self.fds: dict[int, ObjectModel] = {}
        self.lock_future = False

    def lowest_free_fd(self) -> int:
        fd = 0
        while fd in self.fds:
            fd += 1
        return fd

    def mapped_bytes(self, page_size: int, lo: int = 0, hi: int | None = None) -> int:
        """RLIMIT_AS's measure (R-MMAP-18): mapped bytes in ``[lo, hi)`` (all by default)."""
        return page_size * sum(
            1 for v in self.pages if lo <= v * page_size and (hi is None or v * page_size < hi)
        )

    def data_bytes(self, page_size: int, lo: int = 0, hi: int | None = None) -> int:
        """RLIMIT_DATA's measure (R-MMAP-18): private anonymous bytes that are no stack and
        no typed memory, in ``[lo, hi)``."""
        return page_size * sum(
            1
            for v, page in self.pages.items()
            if page.data and lo <= v * page_size and (hi is None or v * page_size < hi)
        )


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
            (C.SIGBUS, C.BUS_ADRERR): "SIGBUS/BUS_ADRERR",
        }
        what = names.get((self.signo, self.code), f"signal {self.signo} code {self.code}")
        return f"{what} at {self.addr:#x}"


@attrs.frozen
class MmapPlan:
    """What an anonymous mmap request should do (``KernelModel.plan_anon_mmap``).

    ``errno`` set: it fails so.  Else it succeeds with the mapping at ``start`` (page
    aligned, ``size`` bytes, the lowest ``guard`` bytes a stack guard, R-MMAP-26) and
    returns ``start + pg_off`` (MAP_FIXED: ``addr``).  ``start`` None with no errno: SPEC
    does not place the request (a hint outside the user range), which passed the limits
    and the RAM check: any free range, or ENOMEM when no hole anywhere fits.
    """

    errno: int | None
    start: int | None = None
    size: int = 0
    guard: int = 0
    pg_off: int = 0
    rule: str = ""


class KernelModel:
    """Every live process's pages and fds, shm names, files, zombies, and the RAM they
    use (R-OBJ-3).

    Methods by purpose --
    mappings: ``map``, ``unmap``, ``protect``, ``is_mapped``, ``is_free``, ``place``,
    ``plan_anon_mmap``, ``limit_errno``;
    memory: ``fault``, ``read``, ``write``, ``readable_runs``;
    RAM (when ``ram`` is given): ``allocated``, ``reserved``, ``free``, ``map_need``,
    ``reclaimable``, ``fork_need``;
    locks (SPEC 10, needs a ``layout``): ``mlock``, ``munlock``, ``mlockall``,
    ``munlockall``, ``future_lock_errno``, ``backed``, ``locked_bytes``;
    processes: ``spawn``, ``fork``, ``exec``, ``exit``, ``waitpid``, ``set_id``,
    ``setrlimit``, ``peer``;
    views: ``layout``, ``locked_pages``, ``page_table``, ``page_numbers``.
    """

    def __init__(
        self,
        page_size: int,
        *,
        hole_slack_pages: int = 0,
        layout: Layout | None = None,
        ram: int = 0,
    ) -> None:
        self.page_size = page_size
        #: The configuration's user range, hints and hole fit (``Layout.of``); without
        #: one, the user range is [page_size, 2^64) and the hole fit ``hole_slack_pages``.
        self.config = layout
        #: SPEC 19: what a hole must hold beyond the size, in pages (6.4 quirk: 1).
        self.hole_slack_pages = layout.profile.hole_slack_pages if layout else hole_slack_pages
        #: R-SYS-1: bytes of RAM; 0 leaves RAM out of the predictions (no BUS_ADRERR).
        self.ram = ram
        self.rlim_infinity = layout.rlim_infinity if layout else 2**64 - 3
        self.procs: dict[int, ProcessModel] = {}
        self.names: dict[str, ObjectModel] = {}
        #: Files of the filesystem the model's mappings use (R-FS-1); they never go.
        self.files: dict[str, ObjectModel] = {}
        #: Every pid that has exited (R-PEER-2: ESRCH from then on).
        self.dead: list[int] = []
        #: R-PROC-4: zombie pid -> (parent pid, exit status).
        self.zombies: dict[int, tuple[int, int]] = {}

    # -- processes ----------------------------------------------------------------------

    def spawn(self, pid: int, uid: int, *, ppid: int = 1, gid: int = 0) -> ProcessModel:
        """R-PROC-1: an empty process (a child of ``ppid``; procnto for Kernel.spawn).
        A child of another process inherits its credentials and limits."""
        parent = self.procs.get(ppid)
        limits = parent.limits if parent is not None else default_limits(self.rlim_infinity)
        proc = ProcessModel(pid, uid, ppid=ppid, gid=gid, limits=limits)
        if parent is not None:
            for attr in ("ruid", "euid", "suid", "rgid", "egid", "sgid"):
                setattr(proc, attr, getattr(parent, attr))
        self.procs[pid] = proc
        return proc

    def fork(self, parent_pid: int, child_pid: int) -> ProcessModel:
        """R-PROC-2: pages without MAP_NOINHERIT at the same addresses; private pages are
        copied, shared ones show the same object; the fd table is duplicated; creds and
        limits are the parent's; no lock and no MCL_FUTURE is inherited (R-LOCK-4)."""
        parent = self.procs[parent_pid]
        child = self.spawn(child_pid, parent.uid, ppid=parent_pid)
        for vpage, page in parent.pages.items():
            if page.noinherit:
                continue
            child.pages[vpage] = attrs.evolve(page, locked=False)  # R-LOCK-4
            if vpage in parent.copies:
                child.copies[vpage] = bytearray(parent.copies[vpage])
        child.fds = dict(parent.fds)
        return child

    def exit(self, pid: int, status: int = 0) -> None:
        """R-PROC-4: mappings and fds go; peer calls to the pid now give ESRCH; its zombie
        children are reaped and its running ones become procnto's; it stays a zombie while
        its parent lives (an orphan is reaped at once)."""
        proc = self.procs.pop(pid)
        self.dead.append(pid)
        for z, (zppid, _) in list(self.zombies.items()):
            if zppid == pid:
                del self.zombies[z]
        for other in self.procs.values():
            if other.ppid == pid:
                other.ppid = 1
        if proc.ppid in self.procs:
            self.zombies[pid] = (proc.ppid, status & 0xFF)

    def exec(self, pid: int) -> None:
        """R-PROC-3: every mapping goes and the fds close (each shm fd is close-on-exec,
        R-SHM-3); the new image is left out (a machine unmaps it).  Locks and MCL_FUTURE
        end (R-LOCK-4)."""
        proc = self.procs[pid]
        proc.pages.clear()
        proc.copies.clear()
        proc.fds.clear()
        proc.lock_future = False

    def waitpid(self, waiter: int, pid: int, options: int) -> tuple[int | None, tuple[int, int]]:
        """R-PROC-4: ``(errno, (pid, status))`` of ``waitpid(pid, options)`` by ``waiter``
        (``pid`` -1: any child): a zombie child is reaped, the lowest pid first; no such
        child → ECHILD; only running ones → ``(0, 0)`` with WNOHANG, else EDEADLK ([SIM]:
        a simulated wait cannot block)."""
        running = {p for p, m in self.procs.items() if m.ppid == waiter and p != waiter}
        dead = {z for z, (zppid, _) in self.zombies.items() if zppid == waiter}
        if pid != -1:
            running, dead = running & {pid}, dead & {pid}
        if dead:
            z = min(dead)
            _, status = self.zombies.pop(z)
            return None, (z, status)
        if not running:
            return E.ECHILD, (0, 0)
        if options & C.WNOHANG:
            return None, (0, 0)
        return E.EDEADLK, (0, 0)

    def set_id(self, pid: int, which: str, value: int, *, every: bool) -> int | None:
        """R-PROC-5 (POSIX): set[e]uid / set[e]gid (``which`` "uid" or "gid"; ``every``:
        setuid/setgid).  euid 0 sets the effective id (``every``: all three); anyone may
        switch the effective id to the real or saved one; else EPERM.  A negative id is
        EINVAL.  Applies the change; returns the errno, or None."""
        proc = self.procs[pid]
        if value < 0:
            return E.EINVAL
        real, saved = getattr(proc, "r" + which), getattr(proc, "s" + which)
        if proc.euid == 0:
            if every:
                setattr(proc, "r" + which, value)
                setattr(proc, "s" + which, value)
            setattr(proc, "e" + which, value)
            return None
        if value in (real, saved):
            setattr(proc, "e" + which, value)
            return None
        return E.EPERM

    def setrlimit(self, pid: int, resource: int, soft: int, hard: int) -> int | None:
        """SPEC 18 (POSIX): a resource that is no RLIMIT_* → EINVAL [SIM]; soft above a
        finite hard limit → EINVAL; raising the hard limit (to RLIM_INFINITY included)
        without euid 0 → EPERM.  Applies the change; returns the errno, or None."""
        proc = self.procs[pid]
        if not 0 <= resource < RLIMIT_COUNT:
            return E.EINVAL
        inf = self.rlim_infinity
        old_hard = proc.limits[resource][1]
        if soft > hard and hard != inf:
            return E.EINVAL
        raising = hard != old_hard and old_hard != inf and (hard > old_hard or hard == inf)
        if raising and proc.euid != 0:
            return E.EPERM
        proc.limits[resource] = (soft, hard)
        return None

    def peer(self, caller: int, pid: int) -> tuple[int | None, int | None]:
        """R-PEER-1..3 with the default abilities: ``(target pid, None)``, or ``(None,
        errno)``.  pid 0 or the caller's own: the caller, no permission needed; procnto
        (pid 1, R-PROC-6: it owns no user mappings) → EPERM; no live process → ESRCH; else
        allowed to euid 0 (PROCMGR_AID_MEM_PEER is root's by default, R-ABLE-3; 6.4: euid
        0, SPEC 19) or when the caller's ruid or euid is the target's ruid or suid."""
        if pid in (0, caller):
            return caller, None
        if pid == 1:
            return None, E.EPERM
        target = self.procs.get(pid)
        if target is None:
            return None, E.ESRCH
        me = self.procs[caller]
        if me.euid == 0 or {me.ruid, me.euid} & {target.ruid, target.suid}:
            return pid, None
        return None, E.EPERM

    # -- mappings -----------------------------------------------------------------------

    def page_numbers(self, start: int, end: int) -> range:
        """The pages ``[start, end)`` touches (none when it is empty)."""
        ps = self.page_size
        if end <= start:
            return range(0)
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
        lazy: bool = False,
        flags: int = 0,
        guard: int = 0,
        typed: bool = False,
    ) -> None:
        """A new mapping; whatever it covers is replaced (R-MMAP-F3).

        The lowest ``guard`` bytes are a stack guard (R-MMAP-26: PROT_NONE, no memory);
        the rest shows ``obj`` from page ``first_index`` on, or new private anonymous
        memory (``obj`` None), which has its frames at once unless ``lazy`` (R-SYS-6).
        ``typed``: typed memory, never counted in RLIMIT_DATA (R-MMAP-18).  Under
        mlockall(MCL_FUTURE) the new pages are locked, but for PROT_NONE and the guard
        (R-MMAP-19).
        """
        self.unmap(pid, start, start + size)
        proc = self.procs[pid]
        ps = self.page_size
        data = kind in ("anon", "zero") and private and not flags & C.MAP_STACK and not typed
        body = 0
        for v in self.page_numbers(start, start + size):
            if v * ps < start + guard:
                proc.pages[v] = PageModel(C.PROT_NONE, "stack-guard", None, 0, private,
                                          noinherit, True, flags)  # fmt: skip
                continue
            locked = proc.lock_future and prot != C.PROT_NONE  # R-MMAP-19, R-LOCK-3
            proc.pages[v] = PageModel(prot, kind, obj, first_index + body, private, noinherit,
                                      lazy, flags, data, locked)  # fmt: skip
            body += 1
            if obj is None and not lazy:
                proc.copies[v] = bytearray(ps)  # R-OBJ-6: new memory is zero

    def unmap(self, pid: int, start: int, end: int) -> None:
        """R-UNMAP-5: every mapped page of the range goes, with its private copy."""
        proc = self.procs[pid]
        for v in self.page_numbers(start, end):
            proc.pages.pop(v, None)
            proc.copies.pop(v, None)

    def protect(self, pid: int, start: int, end: int, prot: int) -> None:
        """R-MPROT-4: the new prot applies to every page of the (mapped) range, except
        stack guards, which keep theirs (R-MPROT-6)."""
        pages = self.procs[pid].pages
        for v in self.page_numbers(start, end):
            if pages[v].kind != "stack-guard":
                pages[v].prot = prot

    def limit_errno(
        self, pid: int, start: int, size: int, *, data: bool, replace: bool
    ) -> int | None:
        """R-MMAP-18: ENOMEM when a new mapping of ``size`` bytes at ``start`` (replacing
        what it covers when ``replace``) would take the process's mapped bytes over its
        soft RLIMIT_AS, or, for ``data`` (private anonymous, not stack, not typed memory),
        its private anonymous bytes over RLIMIT_DATA.  RLIM_INFINITY is no limit."""
        proc = self.procs[pid]
        ps = self.page_size
        end = start + size
        inf = self.rlim_infinity
        gone = proc.mapped_bytes(ps, start, end) if replace else 0
        limit = proc.limits[C.RLIMIT_AS][0]
        if limit != inf and proc.mapped_bytes(ps) - gone + size > limit:
            return E.ENOMEM
        if data:
            gone = proc.data_bytes(ps, start, end) if replace else 0
            limit = proc.limits[C.RLIMIT_DATA][0]
            if limit != inf and proc.data_bytes(ps) - gone + size > limit:
                return E.ENOMEM
        return None

    # -- locks (SPEC 10) ----------------------------------------------------------------

    def _lock_profile(self) -> Profile:
        assert self.config is not None, "the lock calls need the configuration's Layout"
        return self.config.profile

    def may_lock(self, pid: int) -> bool:
        """PROCMGR_AID_MEM_LOCK with the default abilities: root's (R-ABLE-3); 6.4, which
        has no abilities, asks for euid 0 (SPEC 19).  Both: euid 0."""
        return self.procs[pid].euid == 0

    def locked_bytes(self, pid: int) -> int:
        """What counts against RLIMIT_MEMLOCK: the process's locked pages."""
        return self.page_size * sum(1 for p in self.procs[pid].pages.values() if p.locked)

    def backed(self, pid: int, vpage: int) -> bool:
        """R-LOCK-5 [SIM]: a mapped page is backed unless it is a stack guard, lies wholly
        past the end of its object (R-MMAP-25), or is lazy and has no frame yet (MAP_LAZY
        anonymous memory never touched, an untouched page of a lazy object that the
        process has no private copy of).  PROT_NONE does not matter."""
        proc = self.procs[pid]
        page = proc.pages[vpage]
        if page.kind == "stack-guard" or self._past_end(page):
            return False
        if vpage in proc.copies:
            return True
        if page.obj is None:
            return not page.lazy
        return not page.obj.lazy or page.index in page.obj.touched

    def _lock_range(self, addr: int, length: int) -> range | None:
        """The pages of a lock call's range (R-UNMAP-1 cut, widened), None for len 0."""
        assert self.config is not None
        span = self.config.widen(addr, length)
        return None if span is None else self.page_numbers(*span)

    def _wholly_mapped(self, pid: int, pages: range) -> bool:
        """Every page mapped (so below USER_END too)."""
        mapped = self.procs[pid].pages
        return all(v in mapped for v in pages)

    def _memlock_limit(self, pid: int) -> int | None:
        soft = self.procs[pid].limits[C.RLIMIT_MEMLOCK][0]
        return None if soft == self.rlim_infinity else soft

    def mlock(self, pid: int, addr: int, length: int, *, allowed: bool | None = None) -> int | None:
        """SPEC 10.  With lock state (7.1, 6.4), R-LOCK-1 in its order: ``len`` 0 →
        ENOMEM; no MEM_LOCK ability → EPERM; a page of the (widened) range unmapped or
        above USER_END → ENOMEM; a PROT_NONE page → ENOMEM; the locked total (a page
        counts once) over RLIMIT_MEMLOCK → the profile's errno (ENOMEM, 6.4 EAGAIN); then
        the pages are locked.  8.0 (R-LOCK-5): ``len`` 0, an unmapped or an unbacked page
        → ENOMEM, and nothing is recorded (R-LOCK-7).  ``allowed``: whether the caller
        holds MEM_LOCK for the widened range (None: the default abilities, ``may_lock``).
        Returns the errno, or None."""
        profile = self._lock_profile()
        pages = self._lock_range(addr, length)
        if pages is None:
            return E.ENOMEM
        if not profile.lock_state:
            if not self._wholly_mapped(pid, pages):
                return E.ENOMEM
            return None if all(self.backed(pid, v) for v in pages) else E.ENOMEM
        if not (self.may_lock(pid) if allowed is None else allowed):
            return E.EPERM
        if not self._wholly_mapped(pid, pages):
            return E.ENOMEM
        mapped = self.procs[pid].pages
        if any(mapped[v].prot == C.PROT_NONE for v in pages):
            return E.ENOMEM
        new = sum(1 for v in pages if not mapped[v].locked) * self.page_size
        limit = self._memlock_limit(pid)
        if limit is not None and self.locked_bytes(pid) + new > limit:
            return profile.memlock_errno
        for v in pages:
            mapped[v].locked = True
        return None

    def munlock(self, pid: int, addr: int, length: int) -> int | None:
        """R-LOCK-2: ``len`` 0 or a range not wholly mapped → ENOMEM; else every page of
        it is unlocked (locks do not nest).  8.0: always 0 (R-LOCK-6)."""
        if not self._lock_profile().lock_state:
            return None
        pages = self._lock_range(addr, length)
        if pages is None or not self._wholly_mapped(pid, pages):
            return E.ENOMEM
        mapped = self.procs[pid].pages
        for v in pages:
            mapped[v].locked = False
        return None

    def mlockall(self, pid: int, flags: int, *, allowed: bool | None = None) -> int | None:
        """R-LOCK-3: flags 0 or with a bit beside MCL_CURRENT|MCL_FUTURE → EINVAL; no
        MEM_LOCK ability → EPERM; MCL_CURRENT locks every page but PROT_NONE ones (a stack
        guard is one), refused with mlock's errno when the total would pass RLIMIT_MEMLOCK
        [SIM]; MCL_FUTURE locks later mappings (R-MMAP-19).  8.0: nothing, 0.
        ``allowed``: MEM_LOCK over the whole user range (None: ``may_lock``)."""
        profile = self._lock_profile()
        if profile.mlockall_noop:
            return None
        if flags == 0 or flags & ~(C.MCL_CURRENT | C.MCL_FUTURE):
            return E.EINVAL
        if not (self.may_lock(pid) if allowed is None else allowed):
            return E.EPERM
        proc = self.procs[pid]
        if flags & C.MCL_CURRENT:
            lockable = [p for p in proc.pages.values() if p.prot != C.PROT_NONE]
            total = self.page_size * sum(
                1 for p in proc.pages.values() if p.locked or p.prot != C.PROT_NONE
            )
            limit = self._memlock_limit(pid)
            if limit is not None and total > limit:
                return profile.memlock_errno
            for page in lockable:
                page.locked = True
        if flags & C.MCL_FUTURE:
            proc.lock_future = True
        return None

    def munlockall(self, pid: int) -> None:
        """R-LOCK-3: every page unlocked and MCL_FUTURE ended (8.0: nothing)."""
        if self._lock_profile().mlockall_noop:
            return
        proc = self.procs[pid]
        for page in proc.pages.values():
            page.locked = False
        proc.lock_future = False

    def future_lock_errno(
        self, pid: int, start: int, size: int, prot: int, guard: int, *, replace: bool
    ) -> int | None:
        """R-MMAP-19: EAGAIN when mlockall(MCL_FUTURE) is in force and the new mapping's
        lockable pages (not PROT_NONE, not the guard) would take the locked total, less
        the locked pages it replaces, over RLIMIT_MEMLOCK."""
        proc = self.procs[pid]
        limit = self._memlock_limit(pid)
        if not proc.lock_future or limit is None:
            return None
        gone = 0
        if replace:
            gone = self.page_size * sum(
                1 for v in self.page_numbers(start, start + size)
                if v in proc.pages and proc.pages[v].locked
            )  # fmt: skip
        new = 0 if prot == C.PROT_NONE else size - guard
        return E.EAGAIN if self.locked_bytes(pid) - gone + new > limit else None

    def plan_anon_mmap(
        self, pid: int, addr: int, length: int, flags: int, off: int, prot: int = _RW
    ) -> MmapPlan:
        """SPEC 3 and 4 for an anonymous request (fd NOFD, MAP_SHARED or MAP_PRIVATE) whose
        flags and prot pass R-MMAP-1..7 and whose abilities pass R-MMAP-9/10, in the table's
        order from R-MMAP-8: the stack guard (R-MMAP-8, R-MMAP-26), the size (R-MMAP-14),
        MAP_FIXED (R-MMAP-F1, R-MMAP-F2) or placement (R-PLACE-1..4, R-MMAP-16), the limits
        (R-MMAP-18), mlockall(MCL_FUTURE) (R-MMAP-19, the only reader of ``prot``) and the
        RAM (R-MMAP-20, counting what a MAP_FIXED replacement frees).  Needs a ``layout``."""
        layout = self.config
        assert layout is not None, "plan_anon_mmap needs the configuration's Layout"
        ps = self.page_size
        fixed = bool(flags & C.MAP_FIXED)
        private = flags & C.MAP_TYPE == C.MAP_PRIVATE
        guard = 0
        if flags & C.MAP_STACK:
            if off % (1 << layout.bits) >= length:
                return MmapPlan(E.EINVAL, rule="R-MMAP-8")
            guard, off = round_up(off, ps), 0
        pg_off = off % ps
        size = round_up(length + pg_off, ps)
        if size >= 1 << layout.bits:
            return MmapPlan(E.ENOMEM, rule="R-MMAP-14")
        start: int | None
        if fixed:
            start = addr - addr % ps
            congruent = addr % ps == off % ps
            if not congruent and private:
                # R-MMAP-F2: the result is exactly addr, off's sub-page part is ignored, so
                # the range R-MMAP-F1 judges is [start, roundup(addr + len))
                pg_off = addr % ps
                size = round_up(length + pg_off, ps)
            err = layout.fixed_errno(start, size)
            if err is not None:
                return MmapPlan(err, rule="R-MMAP-F1")
            if not congruent and not private:
                return MmapPlan(E.EINVAL, rule="R-MMAP-F2")
        else:
            hint, downward = layout.hint(addr, flags, "anon" if private else "shared-anon")
            placed = None if hint is None else self.place(pid, hint, size, downward=downward)
            if hint is not None and placed is None:
                return MmapPlan(E.ENOMEM, rule="R-MMAP-16")
            start = placed  # None: SPEC does not place it; the checks below need no start
        at = start if start is not None else 0
        end = at + size
        replace = fixed and not self.is_free(pid, at, end)
        data = private and not flags & C.MAP_STACK
        if self.limit_errno(pid, at, size, data=data, replace=replace) is not None:
            return MmapPlan(E.ENOMEM, rule="R-MMAP-18")
        if self.future_lock_errno(pid, at, size, prot, guard, replace=replace):
            return MmapPlan(E.EAGAIN, rule="R-MMAP-19")
        if self.ram:
            need = self.map_need(size, guard, anonymous=True, private=private,
                                 lazy=bool(flags & C.MAP_LAZY))  # fmt: skip
            available = self.free() + (self.reclaimable(pid, at, end) if replace else 0)
            if need > available:
                return MmapPlan(E.ENOMEM, rule="R-MMAP-20")
        return MmapPlan(None, start, size, guard, pg_off)

    # -- RAM (R-SYS-6, R-OBJ-3) ---------------------------------------------------------

    def live_objects(self, extra: Iterable[ObjectModel] = ()) -> list[ObjectModel]:
        """R-OBJ-2: the objects a name, a file, an fd, a mapping (or ``extra``, for
        example unused handles, R-HANDLE-5) still references."""
        seen: dict[int, ObjectModel] = {}
        for obj in (*self.names.values(), *self.files.values(), *extra):
            seen[id(obj)] = obj
        for proc in self.procs.values():
            for obj in proc.fds.values():
                seen[id(obj)] = obj
            for page in proc.pages.values():
                if page.obj is not None:
                    seen[id(page.obj)] = page.obj
        return list(seen.values())

    def allocated(self, extra: Iterable[ObjectModel] = ()) -> int:
        """R-OBJ-3: bytes of RAM in frames: private pages with a frame (populated anonymous
        memory, private copies) and the frames of every live object."""
        private = sum(len(proc.copies) for proc in self.procs.values())
        shared = sum(obj.frames() for obj in self.live_objects(extra))
        return (private + shared) * self.page_size

    def reserved(self) -> int:
        """R-OBJ-3: bytes reserved for the future private copies of non-lazy MAP_PRIVATE
        object mappings (a copy uses its page's reservation)."""
        return self.page_size * sum(
            1
            for proc in self.procs.values()
            for v, page in proc.pages.items()
            if page.obj is not None and page.private and not page.lazy and v not in proc.copies
        )

    def free(self, extra: Iterable[ObjectModel] = ()) -> int:
        """R-OBJ-3: RAM neither allocated nor reserved."""
        return self.ram - self.allocated(extra) - self.reserved()

    @staticmethod
    def map_need(size: int, guard: int, *, anonymous: bool, private: bool, lazy: bool) -> int:
        """R-MMAP-20, R-SYS-6, R-OBJ-3: bytes of RAM a new mapping allocates or reserves at
        once: new anonymous memory (private or shared) all but its guard; a private
        mapping of an object a reservation of its size; a shared mapping of an object, or
        a MAP_LAZY mapping, nothing."""
        if lazy:
            return 0
        if anonymous:
            return size - guard
        return size if private else 0

    def _references(self, obj: ObjectModel) -> int:
        """How many pages of every process map ``obj``."""
        return sum(
            1 for proc in self.procs.values() for page in proc.pages.values() if page.obj is obj
        )

    def reclaimable(self, pid: int, start: int, end: int, extra: Iterable[ObjectModel] = ()) -> int:
        """Bytes of RAM that unmapping ``[start, end)`` would give back: its private
        frames and reservations, and the frames of objects nothing else references
        (R-OBJ-2) -- what a MAP_FIXED replacement may count on (R-MMAP-20)."""
        proc = self.procs[pid]
        ps = self.page_size
        freed = 0
        lost: dict[int, tuple[ObjectModel, int]] = {}
        for v in self.page_numbers(start, end):
            page = proc.pages.get(v)
            if page is None:
                continue
            if v in proc.copies or (page.obj is not None and page.private and not page.lazy):
                freed += ps
            if page.obj is not None:
                n = lost.get(id(page.obj), (page.obj, 0))[1]
                lost[id(page.obj)] = (page.obj, n + 1)
        if lost:
            held = {id(o) for o in (*self.names.values(), *self.files.values(), *extra)}
            held.update(id(o) for p in self.procs.values() for o in p.fds.values())
            for obj, n in lost.values():
                if id(obj) not in held and self._references(obj) == n:
                    freed += obj.frames() * ps
        return freed

    def fork_need(self, pid: int) -> int:
        """R-PROC-2: bytes of RAM a fork child needs: a copy of every private page with a
        frame and a reservation for every other page of a non-lazy private object mapping,
        among the pages it inherits (not MAP_NOINHERIT)."""
        proc = self.procs[pid]
        return self.page_size * sum(
            1
            for v, page in proc.pages.items()
            if not page.noinherit
            and (v in proc.copies or (page.obj is not None and page.private and not page.lazy))
        )

    # -- memory -------------------------------------------------------------------------

    def _past_end(self, page: PageModel) -> bool:
        """R-MMAP-25: the page lies wholly past the end of its object."""
        obj = page.obj
        return obj is not None and page.index * self.page_size >= obj.size

    def needs(self, pid: int, vpage: int, access: str) -> int:
        """What page ``vpage`` needs before ``access`` moves bytes (R-FAULT-4, R-OBJ-4):
        READY; FRAME (a lazy anonymous page, a lazy object's untouched page, or a
        private copy of a MAP_LAZY mapping's page); FROM_RESERVE (a private copy that
        uses the mapping's reservation)."""
        proc = self.procs[pid]
        page = proc.pages[vpage]
        if vpage in proc.copies:
            return READY
        if page.obj is None:
            return FRAME
        if page.private and access == "w":
            return FRAME if page.lazy else FROM_RESERVE
        if page.obj.lazy and page.index not in page.obj.touched:
            return FRAME
        return READY

    def fault(
        self, pid: int, addr: int, size: int, access: str, *, free: int | None = None
    ) -> Fault | None:
        """R-FAULT-1: the first fault of an access, checking pages in address order.

        With ``free`` (bytes of free RAM; by default ``free()`` when the model has
        ``ram``), a page that needs a new frame when none is left is SIGBUS/BUS_ADRERR
        (R-SYS-6); a private copy that uses a reservation always has its frame.
        """
        ps = self.page_size
        pages = self.procs[pid].pages
        allowed = ALLOWED[access]
        if free is None and self.ram:
            free = self.free()
        for v in self.page_numbers(addr, addr + size):
            where = max(addr, v * ps)
            page = pages.get(v)
            if page is None:
                return Fault(C.SIGSEGV, C.SEGV_MAPERR, where)
            if not page.prot & allowed:
                return Fault(C.SIGSEGV, C.SEGV_ACCERR, where)
            if self._past_end(page):
                return Fault(C.SIGBUS, C.BUS_OBJERR, where)
            if free is not None and self.needs(pid, v, access) == FRAME:
                if free < ps:
                    return Fault(C.SIGBUS, C.BUS_ADRERR, where)
                free -= ps
        return None

    def _view(self, proc: ProcessModel, v: int, *, writing: bool) -> memoryview:
        """The page's bytes as an access sees them, touching it as the access would
        (R-FAULT-4: a lazy page gets its frame; a first write to a private object page
        makes the private copy, R-OBJ-4)."""
        page = proc.pages[v]
        copy = proc.copies.get(v)
        if copy is not None:
            return memoryview(copy)
        if page.obj is None:
            proc.copies[v] = bytearray(self.page_size)
            return memoryview(proc.copies[v])
        if page.private and writing:
            proc.copies[v] = bytearray(page.obj.page(page.index))
            return memoryview(proc.copies[v])
        page.obj.touch(page.index)
        return page.obj.page(page.index)

    def read(self, pid: int, addr: int, size: int) -> bytes:
        """The bytes a fault-free read returns (check ``fault`` first); the pages it
        touches get their frames, as in the kernel."""
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
        """``(address, expected bytes)`` for each run of pages a read would not fault on
        and would not give a frame (so reading them back changes nothing)."""
        ps = self.page_size
        proc = self.procs[pid]
        run: list[int] = []
        for v in sorted(proc.pages):
            page = proc.pages[v]
            ok = (
                bool(page.prot & ALLOWED["r"])
                and not self._past_end(page)
                and self.needs(pid, v, "r") == READY
            )
            if ok and run and run[-1] == v - 1:
                run.append(v)
                continue
            if run:
                yield run[0] * ps, self.read(pid, run[0] * ps, len(run) * ps)
            run = [v] if ok else []
        if run:
            yield run[0] * ps, self.read(pid, run[0] * ps, len(run) * ps)

    # -- views --------------------------------------------------------------------------

    def locked_pages(self, pid: int) -> set[int]:
        """The addresses of the process's locked pages (R-MAP-1's ``locked``)."""
        return {v * self.page_size for v, p in self.procs[pid].pages.items() if p.locked}

    def layout(self, pid: int) -> list[tuple[int, int, str]]:
        """``(page address, prot, kind)`` for every mapped page, ascending."""
        ps = self.page_size
        pages = self.procs[pid].pages
        return [(v * ps, pages[v].prot, pages[v].kind) for v in sorted(pages)]

    def page_table(self, pid: int) -> dict[int, tuple[int, str, int]]:
        """Page address -> ``(prot, kind, flags)`` for every mapped page (R-MAP-1)."""
        ps = self.page_size
        return {v * ps: (p.prot, p.kind, p.flags) for v, p in self.procs[pid].pages.items()}


__all__ = [
    "ABILITY_DEFAULTS",
    "FRAME",
    "FROM_RESERVE",
    "READY",
    "Fault",
    "HandleModel",
    "KernelModel",
    "Layout",
    "MmapPlan",
    "ObjectModel",
    "PageModel",
    "ProcessModel",
    "ability_allows",
    "default_limits",
    "exec_abilities",
    "hole_above",
    "hole_below",
    "holes_between",
]
