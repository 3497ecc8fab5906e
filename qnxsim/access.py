"""Memory access and faults (SPEC 14): read_memory, write_memory, check_access.

An access is checked page by page in address order (R-FAULT-1) before a byte moves, so a
faulting access transfers nothing and allocates nothing (R-FAULT-2).  Touching a lazy
page gives it a frame; writing a private object page makes a private copy (R-FAULT-4).
"""

from __future__ import annotations

from qnxsim import constants as C
from qnxsim.addrspace import AddressSpace, Entry


class MemoryFault(Exception):
    """A simulated SIGSEGV or SIGBUS (R-FAULT-2).  The process keeps running."""

    def __init__(self, signo: int, code: int, addr: int, pid: int, access: str) -> None:
        self.signo = signo
        self.code = code
        self.addr = addr
        self.pid = pid
        self.access = access
        super().__init__(str(self))

    def __str__(self) -> str:
        sig = {C.SIGSEGV: "SIGSEGV", C.SIGBUS: "SIGBUS"}.get(self.signo, str(self.signo))
        code = _CODE_NAMES.get((self.signo, self.code), str(self.code))
        return f"{sig}/{code} at {self.addr:#x} (pid {self.pid}, access {self.access!r})"

    def __reduce__(self) -> tuple[type[MemoryFault], tuple[int, int, int, int, str]]:
        return (MemoryFault, (self.signo, self.code, self.addr, self.pid, self.access))


_CODE_NAMES = {
    (C.SIGSEGV, C.SEGV_MAPERR): "SEGV_MAPERR",
    (C.SIGSEGV, C.SEGV_ACCERR): "SEGV_ACCERR",
    (C.SIGBUS, C.BUS_ADRERR): "BUS_ADRERR",
    (C.SIGBUS, C.BUS_OBJERR): "BUS_OBJERR",
    (C.SIGBUS, C.BUS_ADRALN): "BUS_ADRALN",
}

_ALLOWED = {
    "r": C.PROT_READ | C.PROT_WRITE | C.PROT_EXEC,  # R-FAULT-3
    "w": C.PROT_WRITE,
    "x": C.PROT_EXEC,
}

# What a page needs before bytes can move: nothing, a frame for the object page (lazy or
# file page), or a private copy in the process's anonymous memory (R-OBJ-4).
_READY, _OBJECT_FRAME, _PRIVATE_COPY = 0, 1, 2


def check_access_kind(access: object) -> str:
    if not isinstance(access, str):
        raise TypeError(f"access must be a str, not {type(access).__name__}")
    if access not in _ALLOWED:
        raise ValueError(f"access must be 'r', 'w' or 'x', not {access!r}")
    return access


class _Page:
    """One page of an access: where it is and what it needs."""

    __slots__ = ("entry", "need", "obj_off", "vaddr")

    def __init__(self, vaddr: int, entry: Entry, obj_off: int, need: int) -> None:
        self.vaddr = vaddr
        self.entry = entry
        self.obj_off = obj_off
        self.need = need


def plan(space: AddressSpace, pid: int, addr: int, size: int, access: str) -> list[_Page]:
    """R-FAULT-1 for every page of ``[addr, addr+size)``; raises MemoryFault, changes nothing.

    O(p log n) for p pages.
    """
    ps = space.m.page_size
    allowed = _ALLOWED[access]
    pages: list[_Page] = []
    if size <= 0:
        return pages
    pm = space.m.pm
    budget = pm.free_bytes  # frames a lazy touch may still take (R-SYS-6)
    anon = space.anon
    page = addr - addr % ps
    end = addr + size
    hit = None
    while page < end:
        where = max(addr, page)
        if hit is None or not hit[0] <= page < hit[1]:
            hit = space.map.find(page)
        if hit is None or page >= space.m.user_end:
            raise MemoryFault(C.SIGSEGV, C.SEGV_MAPERR, where, pid, access)
        s, _, entry = hit
        if not entry.prot & allowed:
            raise MemoryFault(C.SIGSEGV, C.SEGV_ACCERR, where, pid, access)
        obj = entry.obj
        obj_off = entry.offset + (page - s)
        if obj is not anon and obj.size is not None and obj_off >= obj.size:
            raise MemoryFault(C.SIGBUS, C.BUS_OBJERR, where, pid, access)
        need = _READY
        if obj is anon:
            if anon.frame(page) is None:
                need = _PRIVATE_COPY
        elif entry.private and access == "w" and anon.frame(page) is None:
            need = _PRIVATE_COPY
        elif not (entry.private and anon.frame(page) is not None) and obj.frame(obj_off) is None:
            need = _OBJECT_FRAME
        if need and not (need == _PRIVATE_COPY and obj is not anon and not entry.lazy):
            if budget < ps:  # only reserved private copies are sure of a frame
                raise MemoryFault(C.SIGBUS, C.BUS_ADRERR, where, pid, access)
            budget -= ps
        pages.append(_Page(page, entry, obj_off, need))
        page += ps
    return pages


def _resolve(space: AddressSpace, p: _Page) -> int:
    """Give a planned page what it needs; returns the physical address of the page."""
    pm = space.m.pm
    ps = space.m.page_size
    anon = space.anon
    entry = p.entry
    obj = entry.obj
    if p.need == _PRIVATE_COPY:
        from_reserve = obj is not anon and not entry.lazy
        ok = anon.populate(pm, p.vaddr, p.vaddr + ps, from_reserve=from_reserve)
        assert ok, "plan() counted the frames"
        dst = anon.frame(p.vaddr)
        assert dst is not None
        if obj is not anon:
            src = obj.frame(p.obj_off)
            if src is not None:
                pm.copy_frames(src, dst, ps)
        return dst
    if p.need == _OBJECT_FRAME:
        ok = obj.populate(pm, p.obj_off, p.obj_off + ps)
        assert ok, "plan() counted the frames"
    if entry.private:
        private = anon.frame(p.vaddr)
        if private is not None:
            return private
    frame = obj.frame(p.obj_off)
    assert frame is not None
    return frame


def read(space: AddressSpace, pid: int, addr: int, size: int) -> bytes:
    """``size`` bytes at ``addr`` as the process reads them.  O(p log n)."""
    ps = space.m.page_size
    pm = space.m.pm
    out = bytearray()
    for p in plan(space, pid, addr, size, "r"):
        lo = max(addr, p.vaddr)
        hi = min(addr + size, p.vaddr + ps)
        out += pm.read(_resolve(space, p) + (lo - p.vaddr), hi - lo)
    return bytes(out)


def write(space: AddressSpace, pid: int, addr: int, data: bytes) -> None:
    """Store ``data`` at ``addr`` as the process writes it.  O(p log n)."""
    ps = space.m.page_size
    pm = space.m.pm
    end = addr + len(data)
    for p in plan(space, pid, addr, len(data), "w"):
        lo = max(addr, p.vaddr)
        hi = min(end, p.vaddr + ps)
        pm.write(_resolve(space, p) + (lo - p.vaddr), data[lo - addr : hi - addr])


def touch_page(space: AddressSpace, page: int) -> int | None:
    """The frame behind a mapped page, made as a write touch would make it, whatever
    the protection: a lazy page gets a frame, a private object page its private copy
    (R-MOFF-1).  None when the page has no memory (a stack guard, past the end of its
    object) or RAM is short.  ``page`` must be page-aligned and mapped.
    """
    planned = _touch_plan(space, page)
    return None if planned is None else _resolve(space, planned)


def touch_frame(space: AddressSpace, page: int) -> int | None:
    """What ``touch_page`` would return, changing nothing: the page's frame, or for a page
    that would be given one, the frame the allocation would take (R-CALL-5: a call can
    check it before it allocates).  O(log n)."""
    planned = _touch_plan(space, page)
    if planned is None:
        return None
    if planned.need == _READY:
        return _resolve(space, planned)  # nothing to give: a lookup
    return space.m.pm.next_frame()


def _touch_plan(space: AddressSpace, page: int) -> _Page | None:
    hit = space.map.find(page)
    assert hit is not None
    s, _, entry = hit
    obj = entry.obj
    anon = space.anon
    obj_off = entry.offset + (page - s)
    if entry.kind == "stack-guard":
        return None
    if obj is not anon and obj.size is not None and obj_off >= obj.size:
        return None
    need = _READY
    if entry.private:
        if anon.frame(page) is None:
            need = _PRIVATE_COPY
    elif obj.frame(obj_off) is None:
        need = _OBJECT_FRAME
    reserved = need == _PRIVATE_COPY and obj is not anon and not entry.lazy
    if need and not reserved and space.m.pm.free_bytes < space.m.page_size:
        return None
    return _Page(page, entry, obj_off, need)
