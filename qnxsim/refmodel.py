"""A reference model of what processes see in memory, for ``strategies.KernelMachine``.

Pages, private copies and shared objects as plain Python data, with the few rules the
model needs (R-OBJ-4..6, R-FAULT-1, R-PROC-2, R-PLACE-2).  It does not check arguments or
decide errno; the state machine predicts those.  Nothing here imports hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs

from qnxsim import constants as C

#: R-FAULT-3: what ``prot`` must hold for each access.
ALLOWED = {
    "r": C.PROT_READ | C.PROT_WRITE | C.PROT_EXEC,
    "w": C.PROT_WRITE,
    "x": C.PROT_EXEC,
}


def round_up(n: int, page_size: int) -> int:
    return -(-n // page_size) * page_size


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

    def __init__(self, page_size: int, *, hole_slack_pages: int = 0) -> None:
        self.page_size = page_size
        #: SPEC 19: what a hole must hold beyond the size, in pages (6.4 quirk: 1).
        self.hole_slack_pages = hole_slack_pages
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

    def place(self, pid: int, hint: int, size: int) -> int:
        """R-PLACE-2 (upward, ASLR off): the lowest start at or above ``hint`` whose
        ``size`` bytes, and ``hole_slack_pages`` more (SPEC 19's hole fit), are all free;
        the mapping goes at that start.  O(mapped pages above the hint)."""
        ps = self.page_size
        pages = self.procs[pid].pages
        n = round_up(size, ps) // ps + self.hole_slack_pages
        v = hint // ps
        while True:
            busy = [w for w in range(v, v + n) if w in pages]
            if not busy:
                return v * ps
            v = busy[-1] + 1

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


__all__ = ["Fault", "KernelModel", "ObjectModel", "PageModel", "ProcessModel"]
