"""The memory calls' rules: mmap (SPEC 3), munmap (SPEC 7) and mprotect (SPEC 8).

Each function runs the checks of its SPEC table in order, raising ``QnxError`` with the
rule id at the first that fails, and changes the address space only after every check
has passed (R-CALL-5).  Arguments arrive already converted to C values (R-CALL-2).
Placement and MAP_FIXED rules are in ``placement.py``; the page-level work is in
``addrspace.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import hints
from qnxsim.access import touch_page
from qnxsim.addrspace import AddressSpace, Entry
from qnxsim.arch import page_round_up
from qnxsim.errno import QnxError
from qnxsim.objects import MappingKind, MemObject
from qnxsim.pathspace import FdTable, OpenFile
from qnxsim.physmem import BELOW_16M, WINDOW_64K
from qnxsim.placement import (
    RngState,
    aslr_shift,
    check_fixed_congruence,
    check_fixed_range,
    choose_place,
    commit_aslr,
    fixed_place,
)
from qnxsim.profile import PROFILES, Profile, normalize_map_type
from qnxsim.tymem import TypedMemory

#: R-MMAP-15: the object offset range the memory manager accepts.
OBJECT_OFFSET_LIMIT = 1 << 44


class Caller(Protocol):
    """What the rules need of the calling process (R-PEER-4: its fds and abilities)."""

    fdt: FdTable

    @property
    def profile(self) -> Profile:
        """The kernel's version profile (SPEC 19)."""
        ...

    def able(self, aid: int, lo: int | None, hi: int | None) -> bool: ...


Limits = Mapping[int, tuple[int, int]]
#: What an fd names when not the caller's table says it (mmap_handle, R-HANDLE-3).
Opened = Callable[[int], OpenFile | None]


def fail(errno: int, reason: str, call: str) -> QnxError:
    return QnxError(errno, reason, call=call)


# -- mmap ---------------------------------------------------------------------------------


def check_map_type(flags: int, call: str) -> None:
    """R-MMAP-1: exactly one of MAP_SHARED and MAP_PRIVATE."""
    t = flags & C.MAP_TYPE
    if t not in (C.MAP_SHARED, C.MAP_PRIVATE):
        what = "neither" if t == 0 else "both"
        raise fail(
            E.EINVAL,
            f"R-MMAP-1: flags & MAP_TYPE is {t:#x} ({what} of MAP_SHARED and MAP_PRIVATE); "
            "exactly one is required",
            call,
        )


def check_flag_bits(
    prot: int, flags: int, call: str, profile: Profile = PROFILES["8.0"]
) -> tuple[int, int]:
    """R-MMAP-3 and R-MMAP-4; returns ``(prot, flags)`` with PROT_NOCACHE moved to prot.

    The reserved mask and the defined flags are the profile's (SPEC 19).
    """
    reserved = profile.reserved_mask
    known = profile.known_map_flags
    if prot & ~C.PROT_MASK:
        raise fail(E.EINVAL, hints.prot_outside_mask("R-MMAP-3", prot), call)
    if flags & C.PROT_NOCACHE:
        flags &= ~C.PROT_NOCACHE
        prot |= C.PROT_NOCACHE
    if flags & C.PROT_MASK:
        bits = flags & C.PROT_MASK
        raise fail(
            E.EINVAL,
            f"R-MMAP-4: flags holds PROT bits {bits:#x}{hints.linux_map_flags(bits)}",
            call,
        )
    if flags & reserved:
        raise fail(
            E.EINVAL,
            f"R-MMAP-4: flags holds reserved bits {flags & reserved:#x} "
            f"(reserved mask {reserved:#x}, which includes MAP_SYSRAM)"
            f"{hints.linux_map_flags(flags & reserved)}",
            call,
        )
    if flags & ~known:
        raise fail(
            E.EINVAL,
            f"R-MMAP-4: flags holds bits {flags & ~known:#x} that are no MAP_* flag "
            f"of QNX {profile.version}{hints.linux_map_flags(flags & ~known)}",
            call,
        )
    return prot, flags


def exec_ability(prot: int, object_backed: bool) -> int:
    """R-MMAP-9 / R-MPROT-3: which ability PROT_EXEC needs (8.0)."""
    if object_backed and not prot & C.PROT_WRITE:
        return C.PROCMGR_AID_PROT_EXEC
    return C.PROCMGR_AID_PROT_WRITE_AND_EXEC


def exec_abilities(profile: Profile, prot: int, object_backed: bool) -> tuple[int, ...]:
    """The abilities PROT_EXEC needs under the profile's rule (SPEC 19), in check order.

    "8.0": R-MMAP-9; "7.1": PROCMGR_AID_PROT_EXEC, and with PROT_WRITE also
    PROCMGR_AID_PROT_WRITE_AND_EXEC; "none" (6.4): nothing.
    """
    if profile.exec_rule == "none":
        return ()
    if profile.exec_rule == "7.1":
        if prot & C.PROT_WRITE:
            return (C.PROCMGR_AID_PROT_EXEC, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
        return (C.PROCMGR_AID_PROT_EXEC,)
    return (exec_ability(prot, object_backed),)


def soft_limit(space: AddressSpace, limits: Limits, resource: int) -> int | None:
    """The soft limit of ``resource``; None for the arch's RLIM_INFINITY (SPEC 18)."""
    value = limits[resource][0]
    return None if value == space.m.rlim_infinity else value


def _aid_name(aid: int) -> str:
    names = {
        C.PROCMGR_AID_PROT_EXEC: "PROCMGR_AID_PROT_EXEC",
        C.PROCMGR_AID_PROT_WRITE_AND_EXEC: "PROCMGR_AID_PROT_WRITE_AND_EXEC",
    }
    return names.get(aid, str(aid))


class _Request:
    """The plan of one mmap call: the decoded options (what it maps, its kind and size)
    and its place, made before any check that needs them and changed by none.

    ``private``, ``anonymous`` and ``private_anon`` are plain attributes, kept in step
    with ``kind`` by its setter (the rules read them many times per call).  ``start`` is
    the planned start (None: no hole fits, or the size overflows); ``aslr_state`` the
    generator state the commit installs (R-SYS-4, R-CALL-5).
    """

    __slots__ = (
        "_kind",
        "addr",
        "anonymous",
        "aslr_state",
        "contig",
        "fd",
        "flags",
        "guard",
        "length",
        "obj",
        "off",
        "open_file",
        "pg_off",
        "phys_flag",
        "private",
        "private_anon",
        "prot",
        "replace",
        "size",
        "sized",
        "start",
        "typed",
        "user_off",
        "window",
        "within",
    )  # fmt: skip

    def __init__(
        self, addr: int, length: int, prot: int, flags: int, fd: int, off: int, ps: int,
        bits: int,
    ) -> None:  # fmt: skip
        self.addr = addr
        self.length = length
        self.prot = prot
        self.flags = flags
        self.fd = fd
        self.user_off = off  # as the caller gave it (R-MMAP-13, R-MMAP-15)
        self.guard = 0
        if flags & C.MAP_STACK:
            self.guard = page_round_up(off % (1 << bits), ps)
            off = 0  # R-MMAP-26: off counts as 0 once the guard is taken from it
        self.off = off
        # R-MMAP-14's arithmetic: page offset and rounded size; the error comes later
        self.pg_off = off & (ps - 1)
        self.size = page_round_up(length + self.pg_off, ps)
        self.sized = self.size < (1 << bits)
        self.private = private = flags & C.MAP_TYPE == C.MAP_PRIVATE
        # MAP_PHYS without MAP_ANON: physical memory at off (R-MMAP-11)
        self.phys_flag = flags & (C.MAP_PHYS | C.MAP_ANON) == C.MAP_PHYS
        # The record kind (R-MAP-1); an fd-backed request learns its own from the object.
        if flags & C.MAP_ANON:
            self.kind = "anon" if private else "shared-anon"
        elif self.phys_flag:
            self.kind = "phys"
        else:
            self.kind = "file"
        self.open_file: OpenFile | None = None  # the caller's description (R-PEER-4)
        self.obj: MemObject | None = None
        self.typed: TypedMemory | None = None  # the typed memory object the fd names
        self.within: tuple[int, int] | None = None  # physical range for the frames
        self.window: int | None = None  # frames in one run crossing no multiple of this
        self.contig = False  # physically contiguous (POSIX_TYPED_MEM_ALLOCATE_CONTIG)
        self.start: int | None = None
        self.aslr_state: RngState | None = None
        self.replace = False  # MAP_FIXED over existing mappings (R-MMAP-F3)

    @property
    def pool(self) -> str | None:
        """The typed-memory pool the request maps (R-TYMEM-4), by name."""
        return self.typed.name if self.typed is not None else None

    @property
    def kind(self) -> MappingKind:
        """The record kind the request makes (R-MAP-1)."""
        return self._kind

    @kind.setter
    def kind(self, kind: MappingKind) -> None:
        self._kind = kind
        self.anonymous = kind in ("anon", "shared-anon", "zero")
        # private anonymous memory: MAP_ANON or /dev/zero, MAP_PRIVATE (R-MMAP-21)
        self.private_anon = self.private and kind in ("anon", "zero")

    @property
    def fd_backed(self) -> bool:
        """The request maps the object of its fd (R-MMAP-12), not MAP_ANON or MAP_PHYS."""
        return not self.flags & C.MAP_ANON and not self.phys_flag


def mmap(
    space: AddressSpace,
    limits: Limits,
    caller: Caller,
    addr: int,
    length: int,
    prot: int,
    flags: int,
    fd: int,
    off: int,
    *,
    call: str = "mmap",
    opened: Opened | None = None,
) -> int:
    """Map into ``space`` by the rules of SPEC section 3, in order; returns the address.

    Decide, check, then act: ``plan_mmap`` decodes the request and finds its place once
    (changing nothing), ``check_mmap`` runs SPEC 3's checks in their order against that
    planned range, and ``commit_mmap`` makes exactly the planned mapping.
    ``space`` and ``limits`` are the target's; ``caller`` gives the abilities (R-PEER-4).
    ``opened`` replaces the caller's fd table as what ``fd`` names (mmap_handle: the
    handle's object, R-HANDLE-3).
    Cost: O(log n) for placement and checks, plus O(k) for k mappings MAP_FIXED replaces.
    """
    req = plan_mmap(space, caller, addr, length, prot, flags, fd, off, call, opened)
    check_mmap(space, limits, caller, req, call)
    # Every check has passed: from here on nothing fails (R-CALL-5).
    return commit_mmap(space, req)


def plan_mmap(
    space: AddressSpace,
    caller: Caller,
    addr: int,
    length: int,
    prot: int,
    flags: int,
    fd: int,
    off: int,
    call: str,
    opened: Opened | None = None,
) -> _Request:
    """The argument checks R-MMAP-1..8, then the plan: the decoded request and its place.

    Changes nothing, not even the ASLR generator (the draw is kept for the commit).
    """
    m = space.m
    ps = m.page_size
    bits = m.arch.bits
    profile = caller.profile
    flags = normalize_map_type(flags, profile)  # SPEC 19: 6.4's compatibility types
    check_map_type(flags, call)  # R-MMAP-1
    if length == 0:
        raise fail(E.EINVAL, "R-MMAP-2: len is 0", call)
    prot, flags = check_flag_bits(prot, flags, call, profile=profile)  # R-MMAP-3, R-MMAP-4
    rare = flags & profile.rare_map_flags  # flags that most requests do not carry
    if rare and rare & profile.flag("MAP_HANDLE"):
        raise fail(E.EINVAL, "R-MMAP-5: MAP_HANDLE is not valid with plain mmap", call)
    if fd == C.NOFD and not flags & C.MAP_PHYS:
        flags |= C.MAP_ANON  # R-MMAP-6: NOFD implies MAP_ANON
    if flags & C.MAP_ANON and fd != C.NOFD:
        raise fail(
            E.EINVAL,
            f"R-MMAP-6: MAP_ANON given with fd {fd}; anonymous memory needs fd == NOFD",
            call,
        )
    if flags & (C.MAP_ANON | C.MAP_PHYS | C.MAP_LAZY) == C.MAP_ANON | C.MAP_PHYS | C.MAP_LAZY:
        raise fail(E.EINVAL, "R-MMAP-7: MAP_ANON, MAP_PHYS and MAP_LAZY together", call)
    if flags & C.MAP_STACK:
        check_stack(flags, off, length, bits, call)  # R-MMAP-8
    req = _Request(addr, length, prot, flags, fd, off, ps, bits)
    if rare:
        if rare & profile.flag("MAP_BELOW16M"):  # SPEC 19 (6.4): physical placement only
            req.within = (0, BELOW_16M)
        if rare & profile.flag("MAP_NOX64K"):
            req.window = WINDOW_64K
    if req.fd_backed:
        bind_object(caller, req, ps, bits, opened)
    plan_place(space, req, profile)
    return req


def bind_object(
    caller: Caller, req: _Request, ps: int, bits: int, opened: Opened | None = None
) -> None:
    """Decode what the request's fd maps, from the **caller's** table (R-PEER-4) or from
    ``opened``: its open file, object and record kind (R-MMAP-21, R-MMAP-22, typed memory).
    Judges nothing: an fd that is not open, or not mappable, fails R-MMAP-12 at its turn."""
    fd = req.fd
    lookup = opened if opened is not None else caller.fdt.get
    of = lookup(fd) if fd >= 0 else None
    if of is None:
        return
    req.open_file = of
    obj = of.obj
    if obj.kind == "dir":
        return
    req.obj = obj
    # "file", "shm", "zero" or "phys" (/dev/mem); map_typed_memory decides typed memory's
    req.kind = "phys" if obj.kind == "tymem" else obj.kind
    if isinstance(obj, TypedMemory):
        map_typed_memory(req, obj, ps, bits)


def plan_place(space: AddressSpace, req: _Request, profile: Profile) -> None:
    """Where the mapping goes (section 4), found once: ``req.start`` (None when no hole
    fits or the size overflows), and for MAP_FIXED the page offset and size R-MMAP-F2
    gives.  The ASLR draw is made here and kept in ``req.aslr_state`` (R-SYS-4)."""
    m = space.m
    if req.flags & C.MAP_FIXED:
        # R-MMAP-F1/F2 decide this range; check_mmap judges it at R-MMAP-17's turn
        req.start, req.pg_off, req.size = fixed_place(
            m, req.addr, req.off, req.length, req.private_anon
        )
        return
    if not req.sized:
        return  # R-MMAP-14 refuses it
    # R-MMAP-21: /dev/zero MAP_PRIVATE is private anonymous memory, placed as such
    hint_flags = req.flags | C.MAP_ANON if req.private_anon else req.flags
    shift, req.aslr_state = aslr_shift(m, req.addr, hint_flags)  # R-SYS-4
    slack = profile.hole_slack_pages * m.page_size  # SPEC 19: 6.4's hole fit
    req.start = choose_place(space, req.addr, req.size, hint_flags, slack, shift)


def check_mmap(
    space: AddressSpace, limits: Limits, caller: Caller, req: _Request, call: str
) -> None:
    """SPEC 3's checks from R-MMAP-9 on, in the table's order, against the planned range:
    9, 10, 11, 12, 13, 14, 16 / 17 (placement, MAP_FIXED), 15, 18, 19, 20."""
    m = space.m
    ps = m.page_size
    bits = m.arch.bits
    profile = caller.profile
    flags, prot, fd, off = req.flags, req.prot, req.fd, req.user_off
    start = req.start
    # R-MMAP-9 (SPEC 19 for 7.1 and 6.4), against the planned range
    for aid in exec_abilities(profile, prot, fd != C.NOFD) if prot & C.PROT_EXEC else ():
        lo = hi = None
        if start is not None and req.sized:
            lo, hi = start, min(start + req.size - 1, m.addr_max)
        if not caller.able(aid, lo, hi):
            where = f" for [{lo:#x}, {hi:#x}]" if lo is not None and hi is not None else ""
            raise fail(
                E.EPERM,
                f"R-MMAP-9: PROT_EXEC needs {_aid_name(aid)}{where}, which the caller lacks",
                call,
            )
    if flags & C.MAP_FIXED:  # R-MMAP-10
        addr = req.addr
        last = min(addr + req.length - 1, m.addr_max)
        if not caller.able(C.PROCMGR_AID_MAP_FIXED, addr, last):
            raise fail(
                E.EPERM,
                f"R-MMAP-10: MAP_FIXED needs PROCMGR_AID_MAP_FIXED for [{addr:#x}, {last:#x}]",
                call,
            )
    if req.phys_flag:
        if fd != C.NOFD:
            raise fail(
                E.EINVAL, f"R-MMAP-11: MAP_PHYS without MAP_ANON needs NOFD, not fd {fd}", call
            )
        check_phys(req, caller, m.pm.phys_end, ps, bits, call)  # R-MMAP-11
    if req.fd_backed:
        open_for_mapping(req, call)  # R-MMAP-12, R-MMAP-21, R-MMAP-22
        if req.kind == "phys":
            check_phys(req, caller, m.pm.phys_end, ps, bits, call)  # R-MMAP-22 as MAP_PHYS
    if (fd != C.NOFD or req.phys_flag) and off < 0:
        raise fail(E.EINVAL, f"R-MMAP-13: offset {off} is negative for an object", call)
    if not req.sized:
        raise fail(
            E.ENOMEM,
            f"R-MMAP-14: len {req.length:#x} plus the page offset rounds past SIZE_MAX",
            call,
        )
    if flags & C.MAP_FIXED:  # R-MMAP-17
        check_fixed_range(m, req.addr, req.size, call)  # R-MMAP-F1
        check_fixed_congruence(m, req.addr, req.off, req.private_anon, call)  # R-MMAP-F2
    elif start is None:
        raise fail(
            E.ENOMEM, f"R-MMAP-16: no hole of {req.size:#x} bytes in the address space", call
        )
    assert start is not None
    # R-MMAP-15 after placement (revision 2): QNX places before memobj_offset_check()
    if not req.anonymous and (off - req.pg_off) + req.size > OBJECT_OFFSET_LIMIT:
        raise fail(
            E.ENXIO,
            f"R-MMAP-15: object range ends at {(off - req.pg_off) + req.size:#x}, past 2^44",
            call,
        )
    end = start + req.size
    req.replace = bool(flags & C.MAP_FIXED) and not space.map.is_free(start, end)
    check_limits(space, limits, req, start, end, req.replace, call)  # R-MMAP-18, R-MMAP-19
    check_memory(space, req, start, end, call)  # R-MMAP-20


def check_memory(space: AddressSpace, req: _Request, start: int, end: int, call: str) -> None:
    """R-MMAP-20: the RAM the request allocates or reserves at once is there (with
    MAP_FIXED, counting what the replaced mappings give back)."""
    pm = space.m.pm
    flags = req.flags
    need = memory_needed(req)
    available = pm.free_bytes + (space.reclaimable(start, end) if req.replace else 0)
    contiguous = (bool(flags & C.MAP_PHYS) and req.kind != "phys") or req.contig  # R-MMAP-24
    if req.within is not None or req.window is not None:
        short = bool(need) and pm.constrained_extents(need, contiguous, req.within,
                                                      req.window) is None  # fmt: skip
    else:
        short = contiguous and not pm.has_run(req.size)
    if need > available or short:
        where = " (within MAP_BELOW16M/MAP_NOX64K's limits)" if req.within or req.window else ""
        raise fail(
            E.ENOMEM,
            f"R-MMAP-20: {need:#x} bytes of RAM needed, {available:#x} available"
            + (" (physically contiguous)" if flags & C.MAP_PHYS else "")
            + where,
            call,
        )


def commit_mmap(space: AddressSpace, req: _Request) -> int:
    """Make the planned mapping, whose checks have all passed; returns its address."""
    start = req.start
    assert start is not None, "check_mmap refuses a request without a place"
    end = start + req.size
    if req.replace:
        space.remove(start, end)  # R-MMAP-F3
    commit(space, req, start, end)
    if space.lock_future:  # R-MMAP-19, R-LOCK-3: mlockall(MCL_FUTURE) locks new mappings
        space.replace_entries(start, end, _lock_future)
    commit_aslr(space.m, req.aslr_state)  # R-SYS-4: the draw is used only now (R-CALL-5)
    if req.flags & C.MAP_FIXED:
        return req.addr  # R-MMAP-F4
    return start + req.pg_off


def _lock_future(entry: Entry) -> Entry:
    """MCL_FUTURE locks what a new mapping maps; [SIM] a PROT_NONE stack guard stays out."""
    if entry.locked or entry.prot == C.PROT_NONE:
        return entry
    return entry.with_locked(True)


def check_stack(flags: int, off: int, length: int, bits: int, call: str) -> None:
    """R-MMAP-8: MAP_STACK needs MAP_ANON, and its guard size (``off``) below ``len``."""
    if not flags & C.MAP_ANON:
        raise fail(E.EINVAL, "R-MMAP-8: MAP_STACK without MAP_ANON", call)
    if off % (1 << bits) >= length:  # C compares off_t with size_t unsigned
        raise fail(
            E.EINVAL,
            f"R-MMAP-8: MAP_STACK guard size (off {off:#x}) is not below len {length:#x}",
            call,
        )


def open_for_mapping(req: _Request, call: str) -> None:
    """R-MMAP-12: the fd open in the **caller's** table (R-PEER-4, ``bind_object``),
    mappable, open for reading, and for writing when MAP_SHARED|PROT_WRITE; then the
    object's own rules (R-MMAP-22, typed memory's range)."""
    fd = req.fd
    of = req.open_file
    if of is None:
        raise fail(E.EBADF, f"R-MMAP-12: fd {fd} is not open in the caller", call)
    obj = of.obj
    if obj.kind == "dir":
        raise fail(E.ENOTSUP, f"R-MMAP-12: fd {fd} is a directory, which cannot be mapped", call)
    if not of.readable:
        raise fail(E.EACCES, f"R-MMAP-12: fd {fd} is not open for reading (O_WRONLY)", call)
    if not req.private and req.prot & C.PROT_WRITE and not of.writable:
        raise fail(
            E.EACCES,
            f"R-MMAP-12: MAP_SHARED with PROT_WRITE needs fd {fd} open for writing",
            call,
        )
    if obj.kind == "phys" and req.private:
        raise fail(E.EINVAL, "R-MMAP-22: [SIM] /dev/mem maps only MAP_SHARED", call)
    if req.typed is not None:
        check_typed_range(req, req.typed, call)


def map_typed_memory(req: _Request, obj: TypedMemory, ps: int, bits: int) -> None:
    """R-TYMEM-4, decoded: with POSIX_TYPED_MEM_ALLOCATE(_CONTIG) the mapping is new
    anonymous memory whose frames come from the pool (contiguous for _CONTIG), and ``off``
    is not used: the mapping starts at the page of ``addr`` (MAP_FIXED: the result is
    ``addr``, with no R-MMAP-F2 congruence).  Without, it maps the pool's physical memory
    at ``off`` (as MAP_PHYS, R-MMAP-11), and ``check_typed_range`` refuses a range outside
    the pool."""
    req.typed = obj
    if obj.allocating:
        req.kind = "anon" if req.private else "shared-anon"
        req.within = (obj.pool_start, obj.pool_end)
        req.contig = bool(obj.tflag & C.POSIX_TYPED_MEM_ALLOCATE_CONTIG)
        req.pg_off = req.addr % ps if req.flags & C.MAP_FIXED else 0
        req.off = req.pg_off  # congruent with addr by construction
        req.size = page_round_up(req.length + req.pg_off, ps)
        req.sized = req.size < (1 << bits)
        return
    req.kind = "phys"
    req.off += obj.pool_start


def check_typed_range(req: _Request, obj: TypedMemory, call: str) -> None:
    """Typed memory without ALLOCATE: a range past the pool's end is ENXIO (POSIX mmap)."""
    if obj.allocating:
        return
    pool_size = obj.pool_end - obj.pool_start
    off = req.off - obj.pool_start  # as the caller gave it
    if off < 0 or off - req.pg_off + req.size > pool_size:
        raise fail(
            E.ENXIO,
            f"R-TYMEM-4: [{off:#x}, +{req.length:#x}) is outside typed memory "
            f"{obj.name} of {pool_size:#x} bytes",
            call,
        )


def check_phys(req: _Request, caller: Caller, phys_end: int, ps: int, bits: int, call: str) -> None:
    """R-MMAP-11: MAP_PHYS without MAP_ANON maps physical memory at ``off``."""
    off = req.off % (1 << bits)
    last = min(off + req.length - 1, (1 << bits) - 1)
    if not caller.able(C.PROCMGR_AID_MEM_PHYS, off, last):
        raise fail(
            E.EPERM,
            f"R-MMAP-11: MAP_PHYS needs PROCMGR_AID_MEM_PHYS for [{off:#x}, {last:#x}]",
            call,
        )
    if req.off >= 0:
        end = page_round_up(req.off + req.length, ps)
        if end > phys_end or end >= (1 << bits):
            raise fail(
                E.EINVAL,
                f"R-MMAP-11: physical range ends at {end:#x}, past PHYS_END {phys_end:#x}",
                call,
            )


def check_limits(
    space: AddressSpace,
    limits: Limits,
    req: _Request,
    start: int,
    end: int,
    replace: bool,
    call: str,
) -> None:
    """R-MMAP-18 (RLIMIT_AS, RLIMIT_DATA) and R-MMAP-19 (MCL_FUTURE vs RLIMIT_MEMLOCK)."""
    size = end - start
    gone = gone_data = gone_locked = 0
    if replace:
        for s, e, entry in space.entries(start, end):
            piece = min(e, end) - max(s, start)
            gone += piece
            if space.counts_as_data(entry):
                gone_data += piece
            if entry.locked:
                gone_locked += piece
    total = space.total_bytes - gone + size
    as_limit = soft_limit(space, limits, C.RLIMIT_AS)
    if as_limit is not None and total > as_limit:
        raise fail(
            E.ENOMEM,
            f"R-MMAP-18: {total:#x} mapped bytes would exceed RLIMIT_AS {as_limit:#x}",
            call,
        )
    # /dev/zero private too (R-MMAP-21); typed memory never (R-MMAP-18, R-TYMEM-4)
    if req.private_anon and not req.flags & C.MAP_STACK and req.pool is None:
        data = space.data_bytes - gone_data + size
        data_limit = soft_limit(space, limits, C.RLIMIT_DATA)
        if data_limit is not None and data > data_limit:
            raise fail(
                E.ENOMEM,
                f"R-MMAP-18: {data:#x} bytes of private anonymous memory would exceed "
                f"RLIMIT_DATA {data_limit:#x}",
                call,
            )
    if space.lock_future:
        # Only what _lock_future will lock: not a PROT_NONE mapping, not a stack guard.
        new_locked = 0 if req.prot == C.PROT_NONE else size - req.guard
        locked = space.locked_bytes - gone_locked + new_locked
        lock_limit = soft_limit(space, limits, C.RLIMIT_MEMLOCK)
        if lock_limit is not None and locked > lock_limit:
            raise fail(
                E.EAGAIN,
                f"R-MMAP-19: mlockall(MCL_FUTURE) would lock {locked:#x} bytes, over "
                f"RLIMIT_MEMLOCK {lock_limit:#x}",
                call,
            )


def memory_needed(req: _Request) -> int:
    """R-MMAP-20 / R-SYS-6 / R-OBJ-3: bytes of RAM a request allocates or reserves at once.

    Anonymous memory is allocated; a private mapping of an object reserves its future
    private copies; a shared mapping of an object or of physical memory needs nothing new.
    """
    if req.flags & C.MAP_LAZY or req.kind == "phys":
        return 0
    if req.anonymous or req.private:
        return req.size - req.guard
    return 0


def commit(space: AddressSpace, req: _Request, start: int, end: int) -> None:
    """Create the mapping whose checks have all passed: object, memory, record."""
    pm = space.m.pm
    flags = req.flags
    lazy = bool(flags & C.MAP_LAZY)
    contiguous = bool(flags & C.MAP_PHYS) or req.contig
    if req.private_anon:
        obj = space.anon
        body = start + req.guard
        if req.guard:
            guard = Entry(C.PROT_NONE, flags, obj, start, "stack-guard")
            space.add(start, body, guard)  # R-MMAP-26: a record of its own
        if body < end:
            if not lazy:
                ok = obj.populate(pm, body, end, contiguous=contiguous, within=req.within,
                                  window=req.window)  # fmt: skip
                assert ok, "R-MMAP-20 was checked"
            space.add(body, end, Entry(req.prot, flags, obj, body, req.kind, pool=req.pool))
        return
    if req.anonymous:  # R-MMAP-23 (and /dev/zero shared, R-MMAP-21): a new unnamed object
        name = "/dev/zero" if req.kind == "zero" else None
        body = start + req.guard
        if req.guard:  # R-MMAP-26: MAP_SHARED|MAP_STACK has its guard record too
            guard = Entry(C.PROT_NONE, flags, space.anon, start, "stack-guard")
            space.add(start, body, guard)
        if body == end:
            return
        obj = MemObject("shared-anon", name=name, size=end - body, lazy=lazy)
        if not lazy:  # the object holds the body only: memory_needed is size - guard
            ok = obj.populate(pm, 0, end - body, contiguous=contiguous, within=req.within,
                              window=req.window)  # fmt: skip
            assert ok, "R-MMAP-20 was checked"
        # R-MMAP-21: shared /dev/zero from a fd without write access never gains PROT_WRITE
        shared_ro = req.open_file is not None and not req.open_file.writable
        entry = Entry(req.prot, flags, obj, 0, req.kind, shared_ro=shared_ro, pool=req.pool)
        space.add(body, end, entry)
        return
    base = req.off - req.pg_off
    if req.kind == "phys":  # physical memory itself, offset = paddr (R-MMAP-11, R-MMAP-22)
        entry = Entry(req.prot, flags, space.m.dev_mem, base, "phys", pool=req.pool)
        space.add(start, end, entry)
        return
    target = req.obj  # a file or shm object through the caller's fd (R-PEER-4)
    assert target is not None and req.open_file is not None
    if req.private and not lazy:
        reserved = pm.reserve(req.size)  # R-OBJ-3
        assert reserved, "R-MMAP-20 was checked"
    shared_ro = not req.private and not req.open_file.writable  # R-MPROT-5
    space.add(start, end, Entry(req.prot, flags, target, base, req.kind, shared_ro=shared_ro))


# -- mem_offset (SPEC 12) ----------------------------------------------------------------


def mem_offset64(
    space: AddressSpace, addr: int, fd: int, length: int, call: str
) -> tuple[int, int]:
    """R-MOFF-1: ``(physical address of addr, bytes physically contiguous from it)``.

    Pages are given frames first, as a touch would.  O(p log n) for the p pages examined.
    """
    if fd != C.NOFD:
        raise fail(E.ENODEV, f"R-MOFF-1: fd {fd} given; only NOFD is supported", call)
    ps = space.m.page_size
    page = addr - addr % ps
    if space.map.find(page) is None:
        raise fail(E.EACCES, f"R-MOFF-1: {addr:#x} is not in a mapping", call)
    first = touch_page(space, page)
    if first is None:
        raise fail(E.EACCES, f"R-MOFF-1: no memory backs {addr:#x}", call)
    contig = ps - addr % ps
    nxt = page + ps
    while contig < length and space.map.find(nxt) is not None:
        if touch_page(space, nxt) != first + (nxt - page):
            break
        contig += ps
        nxt += ps
    return first + addr % ps, min(length, contig)


def posix_mem_offset(
    space: AddressSpace, fdt: FdTable, profile: Profile, addr: int, length: int, call: str,
    off_bits: int,
) -> tuple[int, int, int]:  # fmt: skip
    """R-MOFF-4: ``(off, contig_len, fd)``.  ``off`` and ``contig_len`` are mem_offset64's
    (R-MOFF-1: EACCES, lazy pages allocated); ``fd`` [SIM] is the lowest fd open on the
    mapping's object, or for typed memory on its pool (R-TYMEM-5), else NOFD.  SPEC 19
    (6.4 [SIM]): ``off`` is the offset in the pool when the memory is typed memory and
    such an fd exists.  ``off`` past ``off_bits``'s off_t is EOVERFLOW (R-MOFF-2).
    O(log n + f) for f open fds.
    """
    paddr, contig = mem_offset64(space, addr, C.NOFD, length, call)
    hit = space.map.find(addr)
    assert hit is not None, "mem_offset64 found it"
    entry = hit[2]
    fd, off = C.NOFD, paddr
    for n in sorted(fdt.fds):
        obj = fdt.fds[n][0].obj
        if entry.pool is not None:
            if isinstance(obj, TypedMemory) and obj.name == entry.pool:
                fd = n
                if not profile.mem_offset_physical:  # SPEC 19 (6.4)
                    off = paddr - obj.pool_start
                    contig = min(contig, obj.pool_end - paddr)
                break
        elif obj is entry.obj and obj is not space.anon:
            fd = n
            break
    if off > (1 << (off_bits - 1)) - 1:
        raise fail(E.EOVERFLOW, f"R-MOFF-4: off {off:#x} does not fit a {off_bits}-bit off_t "
                   "(as R-MOFF-2)", call)  # fmt: skip
    return off, contig, fd


# -- mmap_device_io, munmap_device_io (R-DEVIO-1, R-DEVIO-2) ------------------------------

#: R-DEVIO-1: the arches whose device I/O is port I/O (in*()/out*() take the port itself).
PORT_IO_ARCHES = frozenset({"x86", "x86_64"})
#: R-DEVIO-1: what mmap_device_io() maps elsewhere.
DEVICE_IO_PROT = C.PROT_NOCACHE | C.PROT_READ | C.PROT_WRITE
DEVICE_IO_FLAGS = C.MAP_SHARED | C.MAP_PHYS


def mmap_device_io(
    space: AddressSpace, limits: Limits, caller: Caller, length: int, io: int
) -> int:
    """R-DEVIO-1: on x86/x86_64 the port ``io`` itself, with no check and no mapping;
    elsewhere ``mmap64(0, len, PROT_NOCACHE|PROT_READ|PROT_WRITE, MAP_SHARED|MAP_PHYS,
    NOFD, io)`` with all of mmap's checks.  ``io`` arrives as a uint64_t."""
    m = space.m
    if m.arch.name in PORT_IO_ARCHES:
        return io & m.addr_max  # returned as uintptr_t
    off = io - (1 << 64) if io >= 1 << 63 else io  # mmap64's off64_t
    return mmap(space, limits, caller, 0, length, DEVICE_IO_PROT, DEVICE_IO_FLAGS, C.NOFD, off,
                call="mmap_device_io")  # fmt: skip


def munmap_device_io(space: AddressSpace, io: int, length: int) -> int:
    """R-DEVIO-2: 0 and nothing changes on x86/x86_64; elsewhere munmap(io, len)."""
    if space.m.arch.name in PORT_IO_ARCHES:
        return 0
    return munmap(space, io, length, call="munmap_device_io")


# -- munmap -------------------------------------------------------------------------------


def cut_len(space: AddressSpace, addr: int, length: int) -> int:
    """R-UNMAP-1: ``len`` is first cut to ``ADDR_MAX - addr`` (sections 7 to 11)."""
    return min(length, space.m.addr_max - addr)


def widen(
    space: AddressSpace, addr: int, length: int, zero: tuple[int, str], call: str
) -> tuple[int, int]:
    """R-UNMAP-1..3: cut ``len``, refuse 0 (with ``zero``'s errno and rule), widen to pages."""
    length = cut_len(space, addr, length)
    if length == 0:
        errno, rule = zero
        raise fail(errno, f"{rule}: len is 0 (after the R-UNMAP-1 cut at ADDR_MAX)", call)
    ps = space.m.page_size
    return addr - addr % ps, page_round_up(addr + length, ps)


def munmap(space: AddressSpace, addr: int, length: int, *, call: str = "munmap") -> int:
    """SPEC 7: remove every mapped page of the range; unmapped pages are ignored.

    O(log n + k) for k mappings in the range.
    """
    start, end = widen(space, addr, length, (E.EINVAL, "R-UNMAP-2"), call)
    if end > space.m.user_end:
        raise fail(
            E.EINVAL,
            f"R-UNMAP-4: range [{start:#x}, {end:#x}) ends above USER_END {space.m.user_end:#x}",
            call,
        )
    space.remove(start, end)  # R-UNMAP-5
    return 0


def munmap_flags(space: AddressSpace, addr: int, length: int, flags: int) -> int:
    """R-UNMAP-6: 8.0 defines no flags."""
    if flags != 0:
        raise fail(E.EINVAL, f"R-UNMAP-6: flags {flags:#x} given; 8.0 defines none", "munmap_flags")
    return munmap(space, addr, length, call="munmap_flags")


# -- mprotect -----------------------------------------------------------------------------


def check_range_mapped(
    space: AddressSpace, addr: int, length: int, rule: str, call: str
) -> tuple[int, int, list[tuple[int, int, Entry]]]:
    """R-MPROT-2 (and the calls that share it, citing ``rule``): ``len`` 0, or a widened
    range with a page outside ``[0, USER_END)`` or not mapped, is ENOMEM.

    Returns the widened range and the mappings in it (unclipped), ascending.
    """
    start, end = widen(space, addr, length, (E.ENOMEM, rule), call)
    if end > space.m.user_end:
        raise fail(
            E.ENOMEM, f"{rule}: range [{start:#x}, {end:#x}) lies outside [0, USER_END)", call
        )
    pieces = space.map.covering(start, end)
    if pieces is None:
        raise fail(
            E.ENOMEM, f"{rule}: range [{start:#x}, {end:#x}) holds pages that are not mapped", call
        )
    return start, end, pieces


def mprotect(space: AddressSpace, caller: Caller, addr: int, length: int, prot: int) -> int:
    """SPEC 8: change the protection of every page in the range.  O(log n + k)."""
    call = "mprotect"
    if prot & ~C.PROT_MASK:
        raise fail(E.EINVAL, hints.prot_outside_mask("R-MPROT-1", prot), call)
    start, end, pieces = check_range_mapped(space, addr, length, "R-MPROT-2", call)
    if prot & C.PROT_EXEC:  # R-MPROT-3, before any change
        for s, e, entry in pieces:
            if entry.kind == "stack-guard":
                continue
            lo, hi = max(s, start), min(e, end)
            backed = entry.kind in ("file", "shm", "elf")
            for aid in exec_abilities(caller.profile, prot, backed):  # SPEC 19 per profile
                if not caller.able(aid, lo, hi - 1):
                    raise fail(
                        E.EPERM,
                        f"R-MPROT-3: PROT_EXEC needs {_aid_name(aid)} for [{lo:#x}, {hi - 1:#x}]",
                        call,
                    )
    refused: tuple[int, int] | None = None
    if prot & C.PROT_WRITE:  # R-MPROT-5: pieces below the refused one keep their change
        for s, e, entry in pieces:
            if entry.shared_ro:
                refused = (max(s, start), min(e, end))
                break
    stop = refused[0] if refused is not None else end
    if start < stop:
        space.replace_entries(start, stop, _set_prot(prot))  # R-MPROT-4
    if refused is not None:
        raise fail(
            E.EACCES,
            f"R-MPROT-5: PROT_WRITE refused at {refused[0]:#x}: a MAP_SHARED mapping of an "
            "object (or of /dev/zero, R-MMAP-21) opened without write access (pages below it "
            "keep their new protection)",
            call,
        )
    return 0


def _set_prot(prot: int) -> Callable[[Entry], Entry]:
    def make(entry: Entry) -> Entry:
        if entry.kind == "stack-guard" or entry.prot == prot:
            return entry  # R-MPROT-6: guard pages stay as they are
        return entry.with_prot(prot)

    return make


# -- msync (SPEC 9) -----------------------------------------------------------------------

MSYNC_FLAGS = (
    C.MS_ASYNC | C.MS_SYNC | C.MS_INVALIDATE | C.MS_INVALIDATE_ICACHE | C.MS_CACHE_ONLY
    | C.MS_CLEAN_ONLY | C.MS_INVALIDATE_LOCKED
)  # fmt: skip


def msync(space: AddressSpace, profile: Profile, addr: int, length: int, flags: int) -> int:
    """SPEC 9: validate; shared mappings are always coherent, so no data moves (R-MSYNC-4)."""
    call = "msync"
    valid = MSYNC_FLAGS | (C.MS_SYNC_FULL if profile.ms_sync_full else 0)
    if flags & ~valid:
        raise fail(E.EINVAL, f"R-MSYNC-1: flags {flags:#x} has unknown bits {flags & ~valid:#x}",
                   call)  # fmt: skip
    if flags & C.MS_SYNC and flags & C.MS_ASYNC:
        raise fail(E.EINVAL, "R-MSYNC-1: MS_SYNC together with MS_ASYNC", call)
    start, _, pieces = check_range_mapped(space, addr, length, "R-MSYNC-2", call)
    if flags & C.MS_INVALIDATE:  # never on 8.0, where no page is locked (R-LOCK-7)
        for s, _, entry in pieces:
            if entry.locked:
                where = max(s, start)
                raise fail(E.EBUSY, f"R-MSYNC-3: MS_INVALIDATE over locked page {where:#x}", call)
    return 0


# -- mlock, munlock, mlockall, munlockall (SPEC 10) ---------------------------------------


def _set_locked(locked: bool) -> Callable[[Entry], Entry]:
    def make(entry: Entry) -> Entry:
        return entry if entry.locked == locked else entry.with_locked(locked)

    return make


def _lock_pieces(
    space: AddressSpace, start: int, end: int, rule: str, call: str
) -> list[tuple[int, int, Entry]]:
    """R-LOCK-1 / R-LOCK-2 / R-LOCK-5: the records over ``[start, end)`` (a range that
    ``widen`` made, ``len`` 0 refused there with ENOMEM); it must lie below USER_END and
    be wholly mapped (ENOMEM)."""
    pieces = space.map.covering(start, end) if end <= space.m.user_end else None
    if pieces is None:
        raise fail(E.ENOMEM, f"{rule}: [{start:#x}, {end:#x}) is not wholly mapped", call)
    return pieces


def first_unbacked(space: AddressSpace, s: int, entry: Entry, lo: int, hi: int) -> int | None:
    """R-LOCK-5 [SIM]: the first page of ``[lo, hi)``, inside the mapping that starts at
    ``s`` with ``entry``, that is not *backed*; None when every page is.  Not backed: a
    stack guard page, a page wholly past the end of its object (R-MMAP-25), or a lazy page
    (MAP_LAZY, SHMCTL_LAZY) with no frame yet.  PROT_NONE alone does not matter.  It only
    reads: nothing is touched or allocated.  O(log n + k) for k runs of frames in the range.
    """
    if entry.kind == "stack-guard":
        return lo
    if entry.kind == "phys":
        return None  # physical memory itself is always there
    anon = space.anon
    obj = entry.obj
    past_end = None
    if obj is not anon and obj.size is not None:
        # the first page whose object offset is at or past the end (offsets are page-aligned)
        at = s + page_round_up(obj.size, space.m.page_size) - entry.offset
        if at < hi:
            past_end = max(at, lo)
            hi = past_end
    if lo < hi and (entry.lazy or obj.lazy):
        if obj is anon:
            for gap, _ in anon.pages.gaps(lo, hi):
                return gap
        else:
            # backed by a private copy (private mappings) or by the object's own frame
            holes = anon.pages.gaps(lo, hi) if entry.private else iter(((lo, hi),))
            for a, b in holes:
                base = entry.offset + (a - s)
                for gap, _ in obj.pages.gaps(base, base + (b - a)):
                    return s + (gap - entry.offset)
    return past_end


def mlock(space: AddressSpace, caller: Caller, limits: Limits, addr: int, length: int) -> int:
    """SPEC 10 by profile: R-LOCK-5 on 8.0 (check only), else R-LOCK-1.  O(log n + k)."""
    call = "mlock"
    profile = caller.profile
    if not profile.lock_state:  # R-LOCK-5: mapped and backed, nothing recorded (R-LOCK-7)
        start, end = widen(space, addr, length, (E.ENOMEM, "R-LOCK-5"), call)
        pieces = _lock_pieces(space, start, end, "R-LOCK-5", call)
        for s, e, entry in pieces:
            bad = first_unbacked(space, s, entry, max(s, start), min(e, end))
            if bad is not None:
                raise fail(E.ENOMEM, f"R-LOCK-5: page {bad:#x} is not backed (a stack guard, "
                           "past the end of its object, or lazy and never touched)",
                           call)  # fmt: skip
        return 0
    # R-LOCK-1: len 0, ability, wholly mapped, no PROT_NONE page, RLIMIT_MEMLOCK; in order
    start, end = widen(space, addr, length, (E.ENOMEM, "R-LOCK-1"), call)
    if not caller.able(C.PROCMGR_AID_MEM_LOCK, start, end - 1):
        raise fail(E.EPERM, f"R-LOCK-1: mlock needs PROCMGR_AID_MEM_LOCK for [{start:#x}, "
                   f"{end - 1:#x}]", call)  # fmt: skip
    pieces = _lock_pieces(space, start, end, "R-LOCK-1", call)
    total = space.locked_bytes
    for s, e, entry in pieces:
        if entry.prot == C.PROT_NONE:
            raise fail(E.ENOMEM, f"R-LOCK-1: page {max(s, start):#x} is PROT_NONE", call)
        if not entry.locked:
            total += min(e, end) - max(s, start)
    limit = soft_limit(space, limits, C.RLIMIT_MEMLOCK)
    if limit is not None and total > limit:
        raise fail(profile.memlock_errno, f"R-LOCK-1: {total:#x} locked bytes would exceed "
                   f"RLIMIT_MEMLOCK {limit:#x}", call)  # fmt: skip
    space.replace_entries(start, end, _set_locked(True))
    return 0


def munlock(space: AddressSpace, profile: Profile, addr: int, length: int) -> int:
    """R-LOCK-2: len 0 or a range not wholly mapped is ENOMEM; one munlock undoes any
    number of mlocks.  8.0: always 0, nothing changes (R-LOCK-6)."""
    if not profile.lock_state:
        return 0  # R-LOCK-6
    start, end = widen(space, addr, length, (E.ENOMEM, "R-LOCK-2"), "munlock")
    _lock_pieces(space, start, end, "R-LOCK-2", "munlock")
    space.replace_entries(start, end, _set_locked(False))
    return 0


def mlockall(
    space: AddressSpace, caller: Caller, limits: Limits, profile: Profile, flags: int
) -> int:
    """R-LOCK-3: flags, then MEM_LOCK; 8.0 does nothing and returns 0."""
    call = "mlockall"
    if profile.mlockall_noop:
        return 0
    known = C.MCL_CURRENT | C.MCL_FUTURE
    if flags == 0 or flags & ~known:
        raise fail(E.EINVAL, f"R-LOCK-3: flags {flags:#x} must be MCL_CURRENT|MCL_FUTURE bits",
                   call)  # fmt: skip
    lo, hi = space.m.user_start, space.m.user_end
    if not caller.able(C.PROCMGR_AID_MEM_LOCK, lo, hi - 1):
        raise fail(E.EPERM, "R-LOCK-3: mlockall needs PROCMGR_AID_MEM_LOCK", call)
    if flags & C.MCL_CURRENT:
        pieces = [(s, e) for s, e, v in space.map if v.prot != C.PROT_NONE and not v.locked]
        total = space.locked_bytes + sum(e - s for s, e in pieces)
        lock_limit = soft_limit(space, limits, C.RLIMIT_MEMLOCK)
        if lock_limit is not None and total > lock_limit:  # [SIM] mlock's errno (R-LOCK-1)
            raise fail(profile.memlock_errno, "R-LOCK-3: locking every mapping would exceed "
                       "RLIMIT_MEMLOCK", call)  # fmt: skip
        for s, e in pieces:
            space.replace_entries(s, e, _set_locked(True))
    if flags & C.MCL_FUTURE:
        space.lock_future = True  # R-MMAP-19 checks later mappings against RLIMIT_MEMLOCK
    return 0


def munlockall(space: AddressSpace, profile: Profile) -> int:
    """R-LOCK-3: unlock everything and stop MCL_FUTURE; 8.0 does nothing and returns 0."""
    if profile.mlockall_noop:
        return 0
    space.replace_entries(space.m.user_start, space.m.user_end, _set_locked(False))
    space.lock_future = False
    return 0


# -- posix_madvise (SPEC 11) --------------------------------------------------------------


def posix_madvise(
    space: AddressSpace, profile: Profile, addr: int, length: int, advice: int
) -> int:
    """SPEC 11 (raising; the caller turns the error into a returned number, R-MADV-1)."""
    call = "posix_madvise"
    length = cut_len(space, addr, length)
    if not C.POSIX_MADV_NORMAL <= advice <= C.POSIX_MADV_DISCARD_NP:
        raise fail(E.EINVAL, f"R-MADV-2: advice {advice} is not POSIX_MADV_NORMAL.."
                   "POSIX_MADV_DISCARD_NP", call)  # fmt: skip
    if length == 0:
        if profile.madvise_len0_einval:
            raise fail(E.EINVAL, "R-MADV-2: len is 0", call)
        return 0
    start, end, pieces = check_range_mapped(space, addr, length, "R-MADV-2", call)
    if advice == C.POSIX_MADV_DISCARD_NP:  # R-MADV-3
        for s, e, entry in pieces:
            if entry.private and entry.lazy:
                space.anon.release(space.m.pm, max(s, start), min(e, end))
    return 0
