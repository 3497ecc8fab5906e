"""mmap() and mmap64(): the checks of SPEC section 3, one by one and in their order.

Rules: R-MMAP-1 .. R-MMAP-20, R-MMAP-23, R-MMAP-24, R-MMAP-26, R-MMAP-27, the "Result"
paragraph (an unaligned ``off`` is accepted and the returned address keeps its page offset),
and the check order (where two rules would fail, the earlier one decides).  Every failure
also checks R-CALL-5: nothing changed.  File descriptors are not used here: for R-MMAP-12
only "fd not open -> EBADF" is checked.  Placement and MAP_FIXED are in test_placement.py.

Addresses are SPEC values (R-SYS-3, R-SYS-4, R-SYS-5), never read back from the code.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ANON, PROGRAM_BASE, PS, RW, RX, SHARED_ANON, SHMEM_BASE, SO_BASE, expect_fail

from qnxsim import Kernel, MemoryFault, Process, vmm
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.abilities import NONROOT, ROOT, DomainEntry

SIZE_MAX = 2**64 - 1
PHYS = C.MAP_SHARED | C.MAP_PHYS  # physical memory at ``off`` (MAP_PHYS without MAP_ANON)
USER_END = 0x7F_FFFF_F000  # R-SYS-3, x86_64 with 4 KiB pages
RAM_START = 0x0010_0000  # R-SYS-5
DEVICE_START = 0xF000_0000  # R-SYS-5: device memory [0xF000_0000, 0x1_0000_0000)
PHYS_END = 0x1_0000_0000  # R-SYS-5: end of the highest range (RAM here ends far below)
BAD_FD = 3  # no descriptor is open in these processes

MmapCall = Callable[[int, int, int, int, int, int], int]


def deny(p: Process, aid: int, domain: int = ROOT) -> None:
    p.abilities.set(aid, domain, DomainEntry(False))


def allow_only(p: Process, aid: int, lo: int, hi: int, domain: int = ROOT) -> None:
    p.abilities.set(aid, domain, DomainEntry(True, ((lo, hi),)))


def paddr_of(p: Process, addr: int) -> int:
    """The physical address behind ``addr`` (looked up in the address space directly)."""
    hit = p.space.map.find(addr)
    assert hit is not None, f"{addr:#x} is not mapped"
    start, _, entry = hit
    frame = entry.obj.frame(entry.offset + (addr - start))
    assert frame is not None, f"no frame behind {addr:#x}"
    return frame


# -- R-MMAP-1: exactly one of MAP_SHARED and MAP_PRIVATE ---------------------------------


@pytest.mark.parametrize("mtype", [0, C.MAP_SHARED | C.MAP_PRIVATE], ids=["neither", "both"])
def test_R_MMAP_1_map_type_neither_or_both_is_einval(k: Kernel, p: Process, mtype: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-1", p.mmap, 0, PS, RW, mtype | C.MAP_ANON, C.NOFD, 0)


@pytest.mark.parametrize("mtype", [C.MAP_SHARED, C.MAP_PRIVATE])
def test_R_MMAP_1_one_map_type_is_accepted(k: Kernel, p: Process, mtype: int) -> None:
    a = p.mmap(0, PS, RW, mtype | C.MAP_ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.flags & C.MAP_TYPE == mtype
    k.check_invariants()


def test_R_MMAP_1_map_anon_alone_has_no_type(k: Kernel, p: Process) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-1", p.mmap, 0, PS, RW, C.MAP_ANON, C.NOFD, 0)


# -- R-MMAP-2: len 0 -----------------------------------------------------------------------


@pytest.mark.parametrize("extra", [0, C.MAP_FIXED], ids=["placed", "fixed"])
def test_R_MMAP_2_len_zero_is_einval(k: Kernel, p: Process, extra: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-2", p.mmap, PROGRAM_BASE, 0, RW, ANON | extra, C.NOFD, 0)


def test_R_MMAP_2_len_one_maps_a_whole_page(k: Kernel, p: Process) -> None:
    a = p.mmap(0, 1, RW, ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and (rec.start, rec.end) == (a, a + PS)
    k.check_invariants()


# -- R-MMAP-3: prot bits outside PROT_MASK -------------------------------------------------


@pytest.mark.parametrize("prot", [0x1, 0x2, 0x4, 0x1000, 0x8000_0000, -1, C.PROT_READ | 0x10])
def test_R_MMAP_3_prot_bits_outside_mask_are_einval(k: Kernel, p: Process, prot: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-3", p.mmap, 0, PS, prot, ANON, C.NOFD, 0)


@pytest.mark.parametrize("prot", [C.PROT_NONE, C.PROT_READ, RW, C.PROT_MASK])
def test_R_MMAP_3_prot_inside_mask_is_accepted(k: Kernel, p: Process, prot: int) -> None:
    a = p.mmap(0, PS, prot, ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.prot == prot
    k.check_invariants()


@settings(max_examples=100, deadline=None)
@given(bits=st.integers(0, 2**32 - 1).filter(lambda b: b & ~C.PROT_MASK))
def test_R_MMAP_3_any_prot_with_a_bit_outside_mask_is_einval(bits: int) -> None:
    k = Kernel(ram=1 << 20)
    p = k.spawn(image=False)
    expect_fail(k, p, E.EINVAL, "R-MMAP-3", p.mmap, 0, PS, bits, ANON, C.NOFD, 0)


# -- R-MMAP-4: PROT bits, reserved bits and undefined bits in flags -----------------------

#: Every MAP_* bit QNX 8.0 defines (SPEC 18), plus PROT_NOCACHE which R-MMAP-4 moves to prot.
DEFINED_FLAG_BITS = (
    C.MAP_SHARED | C.MAP_PRIVATE | C.MAP_FIXED | C.MAP_ELF | C.MAP_LAZY | C.MAP_STACK
    | C.MAP_BELOW | C.MAP_NOINIT | C.MAP_PHYS | C.MAP_NOINHERIT | C.MAP_HANDLE | C.MAP_ANON
    | C.PROT_NOCACHE
)  # fmt: skip
UNDEFINED_FLAG_BITS = [1 << i for i in range(32) if not (1 << i) & DEFINED_FLAG_BITS]


def test_R_MMAP_4_prot_nocache_in_flags_moves_to_prot(k: Kernel, p: Process) -> None:
    a = p.mmap(0, PS, RW, ANON | C.PROT_NOCACHE, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None
    assert rec.prot == RW | C.PROT_NOCACHE
    assert rec.flags & C.PROT_MASK == 0  # R-MAP-1: no PROT bits in the stored flags
    k.check_invariants()


@pytest.mark.parametrize("bit", [C.PROT_READ, C.PROT_WRITE, C.PROT_EXEC])
def test_R_MMAP_4_other_prot_bits_in_flags_are_einval(k: Kernel, p: Process, bit: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-4", p.mmap, 0, PS, RW, ANON | bit, C.NOFD, 0)


@pytest.mark.parametrize("bit", [C.MAP_SYSRAM, 0x0010_0000, 0x8000_0000, C.MAP_RESERVMASK], ids=hex)
def test_R_MMAP_4_reserved_bits_are_einval(k: Kernel, p: Process, bit: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-4", p.mmap, 0, PS, RW, ANON | bit, C.NOFD, 0)


@pytest.mark.parametrize("bit", [0x4, 0x8, 0x40, 0x8000], ids=hex)
def test_R_MMAP_4_undefined_flag_bits_are_einval(k: Kernel, p: Process, bit: int) -> None:
    """0x40 is MAP_NOSYNCFILE in 7.1 only; 8.0 defines MAP_NOSYNCFILE as 0 (SPEC 18)."""
    assert bit in UNDEFINED_FLAG_BITS
    expect_fail(k, p, E.EINVAL, "R-MMAP-4", p.mmap, 0, PS, RW, ANON | bit, C.NOFD, 0)


@settings(max_examples=100, deadline=None)
@given(
    bad=st.sets(st.sampled_from(UNDEFINED_FLAG_BITS), min_size=1),
    mtype=st.sampled_from([C.MAP_SHARED, C.MAP_PRIVATE]),
    extra=st.sets(st.sampled_from([C.MAP_ANON, C.MAP_LAZY, C.MAP_NOINIT, C.MAP_FIXED])),
)
def test_R_MMAP_4_any_flags_with_an_undefined_bit_are_einval(
    bad: set[int], mtype: int, extra: set[int]
) -> None:
    k = Kernel(ram=1 << 20)
    p = k.spawn(image=False)
    flags = mtype | sum(bad) | sum(extra)
    expect_fail(k, p, E.EINVAL, "R-MMAP-4", p.mmap, PROGRAM_BASE, PS, RW, flags, C.NOFD, 0)


# -- R-MMAP-5: MAP_HANDLE ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mmap", "mmap64"])
def test_R_MMAP_5_map_handle_is_einval(k: Kernel, p: Process, name: str) -> None:
    call = getattr(p, name)
    expect_fail(k, p, E.EINVAL, "R-MMAP-5", call, 0, PS, RW, ANON | C.MAP_HANDLE, C.NOFD, 0)


# -- R-MMAP-6: NOFD implies MAP_ANON; MAP_ANON needs NOFD ---------------------------------


@pytest.mark.parametrize(
    ("mtype", "kind"), [(C.MAP_PRIVATE, "anon"), (C.MAP_SHARED, "shared-anon")]
)
def test_R_MMAP_6_nofd_implies_map_anon(k: Kernel, p: Process, mtype: int, kind: str) -> None:
    a = p.mmap(0, PS, RW, mtype, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None
    assert rec.flags & C.MAP_ANON, "R-MAP-1: MAP_ANON is stored when NOFD implies it"
    assert rec.kind == kind
    k.check_invariants()


def test_R_MMAP_6_nofd_with_map_phys_is_not_anonymous(k: Kernel, p: Process) -> None:
    a = p.mmap(0, PS, RW, PHYS, C.NOFD, DEVICE_START)
    rec = p.mapping_at(a)
    assert rec is not None and rec.kind == "phys" and not rec.flags & C.MAP_ANON
    k.check_invariants()


@pytest.mark.parametrize("fd", [0, BAD_FD, -2])
@pytest.mark.parametrize("mtype", [C.MAP_PRIVATE, C.MAP_SHARED])
def test_R_MMAP_6_map_anon_with_an_fd_is_einval(k: Kernel, p: Process, fd: int, mtype: int) -> None:
    flags = mtype | C.MAP_ANON
    expect_fail(k, p, E.EINVAL, "R-MMAP-6", p.mmap, 0, PS, RW, flags, fd, 0)


# -- R-MMAP-7: MAP_ANON + MAP_PHYS + MAP_LAZY ----------------------------------------------


@pytest.mark.parametrize("mtype", [C.MAP_PRIVATE, C.MAP_SHARED])
def test_R_MMAP_7_anon_phys_lazy_together_is_einval(k: Kernel, p: Process, mtype: int) -> None:
    flags = mtype | C.MAP_ANON | C.MAP_PHYS | C.MAP_LAZY
    expect_fail(k, p, E.EINVAL, "R-MMAP-7", p.mmap, 0, PS, RW, flags, C.NOFD, 0)


@pytest.mark.parametrize(
    ("flags", "off"),
    [
        (ANON | C.MAP_PHYS, 0),
        (ANON | C.MAP_LAZY, 0),
        (PHYS | C.MAP_LAZY, DEVICE_START),  # NOFD with MAP_PHYS does not imply MAP_ANON
    ],
    ids=["anon-phys", "anon-lazy", "phys-lazy"],
)
def test_R_MMAP_7_two_of_the_three_are_accepted(
    k: Kernel, p: Process, flags: int, off: int
) -> None:
    p.mmap(0, PS, RW, flags, C.NOFD, off)
    k.check_invariants()


# -- R-MMAP-8: MAP_STACK needs MAP_ANON and off < len --------------------------------------


@pytest.mark.parametrize(
    ("flags", "fd", "off"),
    [
        (C.MAP_PRIVATE | C.MAP_STACK | C.MAP_PHYS, C.NOFD, 0),  # NOFD+MAP_PHYS: no MAP_ANON
        (C.MAP_PRIVATE | C.MAP_STACK, BAD_FD, 0),
    ],
    ids=["phys", "fd"],
)
def test_R_MMAP_8_stack_without_map_anon_is_einval(
    k: Kernel, p: Process, flags: int, fd: int, off: int
) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-8", p.mmap, 0, 4 * PS, RW, flags, fd, off)


@pytest.mark.parametrize("off", [4 * PS, 4 * PS + 1, 1 << 40, -1, -PS], ids=hex)
def test_R_MMAP_8_stack_guard_not_below_len_is_einval(k: Kernel, p: Process, off: int) -> None:
    """off is the guard size; C compares it with len as unsigned, so a negative off is huge."""
    flags = ANON | C.MAP_STACK
    expect_fail(k, p, E.EINVAL, "R-MMAP-8", p.mmap, 0, 4 * PS, RW, flags, C.NOFD, off)


def test_R_MMAP_8_stack_guard_just_below_len_is_accepted(k: Kernel, p: Process) -> None:
    a = p.mmap(0, 4 * PS, RW, ANON | C.MAP_STACK, C.NOFD, 4 * PS - 1)
    assert a % PS == 0
    k.check_invariants()


# -- R-MMAP-9: PROT_EXEC abilities, checked for the final range ---------------------------


@pytest.mark.parametrize("prot", [RX, RW | C.PROT_EXEC])
def test_R_MMAP_9_anon_exec_needs_prot_write_and_exec(k: Kernel, p: Process, prot: int) -> None:
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0, PS, prot, ANON, C.NOFD, 0)


def test_R_MMAP_9_anon_exec_does_not_use_prot_exec_ability(k: Kernel, p: Process) -> None:
    """With fd == NOFD the rule asks for PROT_WRITE_AND_EXEC, not PROT_EXEC."""
    deny(p, C.PROCMGR_AID_PROT_EXEC)
    a = p.mmap(0, PS, RX, ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.prot == RX
    k.check_invariants()


def test_R_MMAP_9_fd_exec_without_write_needs_prot_exec(k: Kernel, p: Process) -> None:
    """fd != NOFD and no PROT_WRITE: PROT_EXEC decides, and before the fd is looked up."""
    deny(p, C.PROCMGR_AID_PROT_EXEC)
    expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0, PS, RX, C.MAP_PRIVATE, BAD_FD, 0)


def test_R_MMAP_9_fd_exec_without_write_ignores_write_and_exec(k: Kernel, p: Process) -> None:
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    expect_fail(k, p, E.EBADF, "R-MMAP-12", p.mmap, 0, PS, RX, C.MAP_PRIVATE, BAD_FD, 0)


def test_R_MMAP_9_fd_write_and_exec_needs_write_and_exec(k: Kernel, p: Process) -> None:
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    prot = RW | C.PROT_EXEC
    expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0, PS, prot, C.MAP_PRIVATE, BAD_FD, 0)
    # ... and then PROT_EXEC does not matter: denying it alone lets the call reach R-MMAP-12
    q = k.spawn(image=False)
    deny(q, C.PROCMGR_AID_PROT_EXEC)
    expect_fail(k, q, E.EBADF, "R-MMAP-12", q.mmap, 0, PS, prot, C.MAP_PRIVATE, BAD_FD, 0)


def test_R_MMAP_9_checked_against_the_placed_range(k: Kernel, p: Process) -> None:
    """The subrange holds the first placement (at PROGRAM_BASE) but not the second."""
    size = 0x10000
    allow_only(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, PROGRAM_BASE, PROGRAM_BASE + size - 1)
    assert p.mmap(0, size, RX, ANON, C.NOFD, 0) == PROGRAM_BASE  # R-PLACE-1
    expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0, size, RX, ANON, C.NOFD, 0)
    # a non-executable mapping there is not affected
    assert p.mmap(0, size, C.PROT_READ, ANON, C.NOFD, 0) == PROGRAM_BASE + size
    k.check_invariants()


def test_R_MMAP_9_fixed_range_includes_the_r_mmap_f2_growth(k: Kernel, p: Process) -> None:
    """MAP_FIXED at addr = X + 0x800 with off 0, len one page, covers [X, X + 2 pages)
    (R-MMAP-F2): the ability must hold that whole range, not just one page."""
    x = 0x2000_0000
    allow_only(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, x, x + PS - 1)
    flags = ANON | C.MAP_FIXED
    expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, x + 0x800, PS, RX, flags, C.NOFD, 0)
    assert p.mmap(x, PS, RX, flags, C.NOFD, 0) == x
    k.check_invariants()


def test_R_MMAP_9_uses_the_domain_of_the_current_euid(k: Kernel) -> None:
    user = k.spawn(uid=1000, image=False)
    deny(user, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT)
    expect_fail(k, user, E.EPERM, "R-MMAP-9", user.mmap, 0, PS, RX, ANON, C.NOFD, 0)
    root = k.spawn(image=False)
    deny(root, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT)  # the root domain still allows
    root.mmap(0, PS, RX, ANON, C.NOFD, 0)
    k.check_invariants()


def test_R_MMAP_9_nonroot_may_exec_by_default(k: Kernel) -> None:
    user = k.spawn(uid=1000, image=False)
    user.mmap(0, PS, RW | C.PROT_EXEC, ANON, C.NOFD, 0)  # R-ABLE-3: allowed for nonroot
    k.check_invariants()


# -- R-MMAP-10: MAP_FIXED needs PROCMGR_AID_MAP_FIXED -------------------------------------


def test_R_MMAP_10_map_fixed_denied_is_eperm(k: Kernel, p: Process) -> None:
    deny(p, C.PROCMGR_AID_MAP_FIXED)
    flags = ANON | C.MAP_FIXED
    expect_fail(k, p, E.EPERM, "R-MMAP-10", p.mmap, 0x2000_0000, PS, RW, flags, C.NOFD, 0)
    p.mmap(0x2000_0000, PS, RW, ANON, C.NOFD, 0)  # a hint needs no ability
    k.check_invariants()


def test_R_MMAP_10_ability_must_cover_addr_to_addr_plus_len(k: Kernel, p: Process) -> None:
    x = 0x2000_0000
    allow_only(p, C.PROCMGR_AID_MAP_FIXED, x, x + 2 * PS - 1)
    flags = ANON | C.MAP_FIXED
    expect_fail(k, p, E.EPERM, "R-MMAP-10", p.mmap, x + PS, 2 * PS, RW, flags, C.NOFD, 0)
    expect_fail(k, p, E.EPERM, "R-MMAP-10", p.mmap, x - PS, 2 * PS, RW, flags, C.NOFD, 0)
    assert p.mmap(x, 2 * PS, RW, flags, C.NOFD, 0) == x
    k.check_invariants()


def test_R_MMAP_10_nonroot_may_map_fixed_by_default(k: Kernel) -> None:
    user = k.spawn(uid=1000, image=False)
    x = 0x2000_0000
    assert user.mmap(x, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0) == x
    k.check_invariants()


# -- R-MMAP-11: MAP_PHYS without MAP_ANON ---------------------------------------------------


@pytest.mark.parametrize("fd", [0, BAD_FD, -2])
def test_R_MMAP_11_phys_with_an_fd_is_einval(k: Kernel, p: Process, fd: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-11", p.mmap, 0, PS, RW, PHYS, fd, DEVICE_START)


def test_R_MMAP_11_phys_needs_mem_phys_ability(k: Kernel) -> None:
    user = k.spawn(uid=1000, image=False)  # R-ABLE-3: nonroot is denied MEM_PHYS
    expect_fail(k, user, E.EPERM, "R-MMAP-11", user.mmap, 0, PS, RW, PHYS, C.NOFD, DEVICE_START)


def test_R_MMAP_11_mem_phys_must_cover_off_to_off_plus_len(k: Kernel, p: Process) -> None:
    allow_only(p, C.PROCMGR_AID_MEM_PHYS, DEVICE_START, DEVICE_START + 0x10000 - 1)
    off = DEVICE_START + 0xF000
    expect_fail(k, p, E.EPERM, "R-MMAP-11", p.mmap, 0, 2 * PS, RW, PHYS, C.NOFD, off)
    p.mmap(0, PS, RW, PHYS, C.NOFD, off)
    k.check_invariants()


@pytest.mark.parametrize(
    ("off", "length"),
    [
        (PHYS_END - PS, PS + 1),  # rounds up past PHYS_END
        (PHYS_END, PS),
        (PHYS_END - 1, 2),
        (2**63 - PS, 2**64 - PS),  # off + len wraps a 64-bit size
    ],
    ids=["roundup", "at-end", "straddle", "wraps"],
)
def test_R_MMAP_11_phys_past_phys_end_is_einval(
    k: Kernel, p: Process, off: int, length: int
) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-11", p.mmap, 0, length, RW, PHYS, C.NOFD, off)


def test_R_MMAP_11_phys_up_to_phys_end_is_accepted(k: Kernel, p: Process) -> None:
    a = p.mmap(0, PS, RW, PHYS, C.NOFD, PHYS_END - PS)
    rec = p.mapping_at(a)
    assert rec is not None
    assert (rec.kind, rec.name, rec.offset) == ("phys", "/dev/mem", PHYS_END - PS)
    assert k.meminfo().allocated == 0  # physical memory is mapped, not allocated
    k.check_invariants()


def test_R_MMAP_11_two_mappings_of_a_device_address_share_bytes(k: Kernel, p: Process) -> None:
    """R-SYS-5: device memory reads zero at start and every mapping of a frame sees it."""
    a = p.mmap(0, PS, RW, PHYS, C.NOFD, DEVICE_START)
    b = p.mmap(0, PS, C.PROT_READ, PHYS, C.NOFD, DEVICE_START)
    assert a != b
    assert p.read_memory(b, 4) == bytes(4)
    p.write_memory(a + 8, b"qnx!")
    assert p.read_memory(b + 8, 4) == b"qnx!"
    k.check_invariants()


def test_R_MMAP_11_phys_of_ram_sees_an_anon_phys_buffer(k: Kernel, p: Process) -> None:
    buf = p.mmap(0, PS, RW, ANON | C.MAP_PHYS, C.NOFD, 0)
    p.write_memory(buf, b"contiguous")
    paddr = paddr_of(p, buf)
    assert RAM_START <= paddr < RAM_START + k.ram
    view = p.mmap(0, PS, C.PROT_READ, PHYS, C.NOFD, paddr)
    assert p.read_memory(view, 10) == b"contiguous"
    k.check_invariants()


# -- R-MMAP-12: fd not open ----------------------------------------------------------------


@pytest.mark.parametrize("fd", [0, 1, BAD_FD, 999, -2, -(2**31)])
@pytest.mark.parametrize("mtype", [C.MAP_PRIVATE, C.MAP_SHARED])
def test_R_MMAP_12_fd_not_open_is_ebadf(k: Kernel, p: Process, fd: int, mtype: int) -> None:
    expect_fail(k, p, E.EBADF, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, mtype, fd, 0)


def test_R_MMAP_12_ebadf_even_with_a_negative_off(k: Kernel, p: Process) -> None:
    """R-MMAP-12 comes before R-MMAP-13 (off < 0 for an object)."""
    expect_fail(k, p, E.EBADF, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, C.MAP_SHARED, BAD_FD, -PS)


# -- R-MMAP-13: off < 0 for an object -------------------------------------------------------


@pytest.mark.parametrize("off", [-PS, -1, -(2**63)])
def test_R_MMAP_13_negative_phys_offset_is_einval(k: Kernel, p: Process, off: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-13", p.mmap, 0, PS, RW, PHYS, C.NOFD, off)


def test_R_MMAP_13_does_not_apply_to_anonymous_memory(k: Kernel, p: Process) -> None:
    a = p.mmap(0, PS, RW, ANON, C.NOFD, -PS)  # -PS is page-aligned: no page offset
    assert a == PROGRAM_BASE
    b = p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, -PS)
    assert b == SHMEM_BASE
    k.check_invariants()


# -- R-MMAP-14: size overflows size_t -------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "off"),
    [(SIZE_MAX, 0), (-1, 0), (SIZE_MAX - PS + 2, 0), (2**64 - PS, 1), (2**64 - PS, PS - 1)],
    ids=["SIZE_MAX", "minus-1", "rounds-up", "page-offset-1", "page-offset-max"],
)
def test_R_MMAP_14_size_overflow_is_enomem(k: Kernel, p: Process, length: int, off: int) -> None:
    expect_fail(k, p, E.ENOMEM, "R-MMAP-14", p.mmap, 0, length, RW, ANON, C.NOFD, off)


def test_R_MMAP_14_largest_size_without_overflow_goes_on_to_placement(
    k: Kernel, p: Process
) -> None:
    """2^64 - page_size with no page offset fits size_t; it then finds no hole."""
    flags = ANON | C.MAP_LAZY
    expect_fail(k, p, E.ENOMEM, "R-MMAP-16", p.mmap, 0, 2**64 - PS, RW, flags, C.NOFD, 0)


# -- R-MMAP-15: object offset range --------------------------------------------------------


def test_R_MMAP_15_object_range_past_2_44_is_enxio(
    k: Kernel, p: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without fds, MAP_PHYS is the only object mapping, and R-MMAP-11 keeps its offsets below
    PHYS_END; R-MMAP-11's checks are switched off here to reach R-MMAP-15's arithmetic."""
    monkeypatch.setattr(vmm, "check_phys", lambda *args: None)
    limit = 1 << 44
    expect_fail(k, p, E.ENXIO, "R-MMAP-15", p.mmap, 0, PS, RW, PHYS, C.NOFD, limit)
    # (off - pg_off) + size: off one byte into the last page below 2^44, two pages long
    expect_fail(k, p, E.ENXIO, "R-MMAP-15", p.mmap, 0, PS, RW, PHYS, C.NOFD, limit - PS + 1)
    a = p.mmap(0, PS, RW, PHYS, C.NOFD, limit - PS)  # ends exactly at 2^44
    rec = p.mapping_at(a)
    assert rec is not None and rec.offset == limit - PS
    k.check_invariants()


def test_R_MMAP_15_does_not_apply_to_anonymous_memory(k: Kernel, p: Process) -> None:
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 1 << 45)
    assert a == PROGRAM_BASE
    k.check_invariants()


# -- R-MMAP-16: no hole ---------------------------------------------------------------------


@pytest.mark.parametrize("flags", [ANON | C.MAP_LAZY, SHARED_ANON | C.MAP_LAZY, PHYS])
def test_R_MMAP_16_larger_than_the_user_range_is_enomem(k: Kernel, p: Process, flags: int) -> None:
    length = USER_END  # the user range [page_size, USER_END) is one page shorter
    off = 0 if flags & C.MAP_ANON else DEVICE_START
    if not flags & C.MAP_ANON:
        length = PS * 2  # MAP_PHYS is bounded by PHYS_END; fill the space first instead
        p.mmap(PS, USER_END - PS, C.PROT_NONE, ANON | C.MAP_LAZY | C.MAP_FIXED, C.NOFD, 0)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-16", p.mmap, 0, length, RW, flags, C.NOFD, off)


# -- R-MMAP-17 (section 4.2) is tested in test_placement.py --------------------------------

# -- R-MMAP-18: RLIMIT_AS and RLIMIT_DATA of the target ------------------------------------


@pytest.mark.parametrize("resource", [C.RLIMIT_AS, C.RLIMIT_VMEM])
def test_R_MMAP_18_rlimit_as_counts_all_mapped_bytes(k: Kernel, p: Process, resource: int) -> None:
    p.setrlimit(resource, 4 * PS, C.RLIM_INFINITY)
    p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    p.mmap(0, PS, RW, PHYS, C.NOFD, DEVICE_START)
    for flags, off in [(ANON, 0), (SHARED_ANON, 0), (PHYS, DEVICE_START)]:
        expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, 0, 2 * PS, RW, flags, C.NOFD, off)
    p.mmap(0, PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)  # exactly at the limit
    expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, 0, 1, RW, ANON, C.NOFD, 0)
    k.check_invariants()


def test_R_MMAP_18_rlimit_data_counts_private_anonymous_only(k: Kernel, p: Process) -> None:
    p.setrlimit(C.RLIMIT_DATA, 2 * PS, C.RLIM_INFINITY)
    for flags in (ANON, ANON | C.MAP_LAZY):
        expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, 0, 3 * PS, RW, flags, C.NOFD, 0)
    p.mmap(0, 3 * PS, RW, SHARED_ANON, C.NOFD, 0)
    p.mmap(0, 3 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    p.mmap(0, 3 * PS, RW, PHYS, C.NOFD, DEVICE_START)
    p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)  # exactly at the limit
    expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, ANON, C.NOFD, 0)
    k.check_invariants()


# -- R-MMAP-19: mlockall(MCL_FUTURE) and RLIMIT_MEMLOCK ------------------------------------


def test_R_MMAP_19_mcl_future_over_rlimit_memlock_is_eagain(k: Kernel, p: Process) -> None:
    p.setrlimit(C.RLIMIT_MEMLOCK, 3 * PS, C.RLIM_INFINITY)
    p.space.lock_future = True
    expect_fail(k, p, E.EAGAIN, "R-MMAP-19", p.mmap, 0, 4 * PS, RW, ANON, C.NOFD, 0)
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.locked, "R-LOCK-3: MCL_FUTURE locks later mappings"
    # the locked total counts: 2 pages are locked, 2 more would make 4 > 3
    expect_fail(k, p, E.EAGAIN, "R-MMAP-19", p.mmap, 0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
    p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)  # exactly at the limit
    expect_fail(k, p, E.EAGAIN, "R-MMAP-19", p.mmap, 0, 1, RW, ANON, C.NOFD, 0)
    k.check_invariants()


def test_R_MMAP_19_without_mcl_future_rlimit_memlock_does_not_apply(k: Kernel, p: Process) -> None:
    p.setrlimit(C.RLIMIT_MEMLOCK, 0, C.RLIM_INFINITY)
    a = p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and not rec.locked
    k.check_invariants()


def test_R_MMAP_19_fixed_replacement_of_locked_pages_is_not_counted_twice(
    k: Kernel, p: Process
) -> None:
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, C.RLIM_INFINITY)
    p.space.lock_future = True
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert p.mmap(a, PS, C.PROT_READ, ANON | C.MAP_FIXED, C.NOFD, 0) == a
    assert all(r.locked for r in p.mappings())
    k.check_invariants()


# -- R-MMAP-20: physical memory -------------------------------------------------------------


@pytest.mark.parametrize("flags", [ANON, SHARED_ANON, ANON | C.MAP_STACK])
def test_R_MMAP_20_more_than_free_ram_is_enomem(k: Kernel, p: Process, flags: int) -> None:
    length = k.meminfo().free + PS
    expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, 0, length, RW, flags, C.NOFD, 0)


def test_R_MMAP_20_all_free_ram_can_be_mapped_then_no_more(k: Kernel, p: Process) -> None:
    free = k.meminfo().free
    assert free == 64 << 20
    p.mmap(0, free, RW, ANON, C.NOFD, 0)
    info = k.meminfo()
    assert (info.free, info.allocated) == (0, free)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, 0, PS, RW, SHARED_ANON, C.NOFD, 0)
    # lazy memory and physical memory need no free RAM now (R-SYS-6)
    p.mmap(0, 2 * free, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    p.mmap(0, PS, RW, PHYS, C.NOFD, DEVICE_START)
    assert k.meminfo() == info
    k.check_invariants()


def test_R_MMAP_20_failure_frees_nothing_it_took(k: Kernel, p: Process) -> None:
    """A large request that fails for RAM leaves the free count exactly as it was."""
    p.mmap(0, 32 << 20, RW, ANON, C.NOFD, 0)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, 0, 33 << 20, RW, ANON, C.NOFD, 0)
    assert k.meminfo().free == 32 << 20


# -- R-MMAP-23: MAP_ANON|MAP_SHARED is a new unnamed shared object --------------------------


def test_R_MMAP_23_shared_anon_allocates_and_is_freed_with_its_last_mapping(
    k: Kernel, p: Process
) -> None:
    before = k.meminfo()
    a = p.mmap(0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.kind == "shared-anon" and rec.size == 2 * PS
    assert k.meminfo().allocated == before.allocated + 2 * PS
    p.munmap(a, PS)  # the object keeps its size while a mapping remains
    assert k.meminfo().allocated == before.allocated + 2 * PS
    k.check_invariants()
    p.munmap(a + PS, PS)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_MMAP_23_shared_anon_is_shared_with_fork_children(k: Kernel, p: Process) -> None:
    shared = p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    private = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    child = k.process(p.fork())
    child.write_memory(shared, b"from child")
    child.write_memory(private, b"from child")
    assert p.read_memory(shared, 10) == b"from child"
    assert p.read_memory(private, 10) == bytes(10)
    p.munmap(shared, PS)  # the child still maps the object
    assert child.read_memory(shared, 10) == b"from child"
    k.check_invariants()


def test_R_MMAP_23_each_call_makes_a_new_object(k: Kernel, p: Process) -> None:
    a = p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    b = p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    p.write_memory(a, b"a")
    assert p.read_memory(b, 1) == b"\0"
    assert k.meminfo().allocated == 2 * PS
    k.check_invariants()


# -- R-MMAP-24: MAP_ANON|MAP_PHYS is physically contiguous ---------------------------------


@pytest.mark.parametrize("mtype", [C.MAP_PRIVATE, C.MAP_SHARED])
def test_R_MMAP_24_anon_phys_frames_are_contiguous(k: Kernel, p: Process, mtype: int) -> None:
    # scatter the free list first: allocate 8 pages, give back every other one
    scatter = p.mmap(0, 8 * PS, RW, ANON, C.NOFD, 0)
    for i in range(0, 8, 2):
        p.munmap(scatter + i * PS, PS)
    pages = 6
    a = p.mmap(0, pages * PS, RW, mtype | C.MAP_ANON | C.MAP_PHYS, C.NOFD, 0)
    first = paddr_of(p, a)
    assert [paddr_of(p, a + i * PS) for i in range(pages)] == [first + i * PS for i in range(pages)]
    k.check_invariants()


def test_R_MMAP_24_no_contiguous_run_is_enomem() -> None:
    k = Kernel(ram=1 << 20)
    p = k.spawn(image=False)
    pages = (1 << 20) // PS
    a = p.mmap(0, pages * PS, RW, ANON, C.NOFD, 0)  # every frame
    freed = [paddr_of(p, a + i * PS) for i in range(0, pages, 2)]
    for i in range(0, pages, 2):
        p.munmap(a + i * PS, PS)
    freed.sort()
    assert all(y - x > PS for x, y in itertools.pairwise(freed)), "setup: no runs"
    assert k.meminfo().free == len(freed) * PS
    for mtype in (C.MAP_PRIVATE, C.MAP_SHARED):
        flags = mtype | C.MAP_ANON | C.MAP_PHYS
        expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, 0, 2 * PS, RW, flags, C.NOFD, 0)
    p.mmap(0, PS, RW, ANON | C.MAP_PHYS, C.NOFD, 0)  # one page is always a run
    p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)  # without MAP_PHYS any frames do
    k.check_invariants()


# -- R-MMAP-26: MAP_STACK -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("off", "guard"), [(PS, PS), (1, PS), (PS + 1, 2 * PS), (3 * PS, 3 * PS)], ids=str
)
def test_R_MMAP_26_stack_guard_is_a_prot_none_record_at_the_bottom(
    k: Kernel, p: Process, off: int, guard: int
) -> None:
    p.mmap(PROGRAM_BASE, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)  # occupy the hint
    size = 0x10000
    a = p.mmap(0, size, RW, ANON | C.MAP_STACK, C.NOFD, off)
    assert a == PROGRAM_BASE - size  # R-PLACE-3: top of the hole below PROGRAM_BASE
    g, body = p.mappings()[:2]
    assert (g.start, g.end, g.prot, g.kind) == (a, a + guard, C.PROT_NONE, "stack-guard")
    assert g.flags & C.MAP_STACK
    assert (body.start, body.end, body.prot, body.kind) == (a + guard, a + size, RW, "anon")
    assert body.flags & C.MAP_STACK
    with pytest.raises(MemoryFault) as fault:
        p.check_access(a + guard - 1, 1, "r")
    assert (fault.value.signo, fault.value.code) == (C.SIGSEGV, C.SEGV_ACCERR)
    p.write_memory(a + guard, b"top of guard")
    k.check_invariants()


def test_R_MMAP_26_zero_guard_makes_no_guard_record(k: Kernel, p: Process) -> None:
    a = p.mmap(0, 4 * PS, RW, ANON | C.MAP_STACK, C.NOFD, 0)
    (rec,) = p.mappings()
    assert (rec.start, rec.end, rec.kind, rec.prot) == (a, a + 4 * PS, "anon", RW)
    k.check_invariants()


def test_R_MMAP_26_addr_is_ignored_without_map_fixed(k: Kernel) -> None:
    plain = k.spawn(image=False)
    hinted = k.spawn(image=False)
    flags = ANON | C.MAP_STACK
    a = plain.mmap(0, 4 * PS, RW, flags, C.NOFD, PS)
    b = hinted.mmap(0x3000_0000, 4 * PS, RW, flags, C.NOFD, PS)
    assert a == b != 0x3000_0000
    k.check_invariants()


def test_R_MMAP_26_fixed_stack_returns_addr_with_guard_at_the_bottom(k: Kernel, p: Process) -> None:
    x = 0x3000_0000
    assert p.mmap(x, 4 * PS, RW, ANON | C.MAP_STACK | C.MAP_FIXED, C.NOFD, PS) == x
    g, body = p.mappings()
    assert (g.start, g.end, g.kind) == (x, x + PS, "stack-guard")
    assert (body.start, body.end) == (x + PS, x + 4 * PS)
    k.check_invariants()


def test_R_MMAP_26_fixed_stack_off_counts_as_zero_for_congruence(k: Kernel, p: Process) -> None:
    """addr = X + 0x10 and off = 0x10: the guard takes off, which then counts as 0, so addr
    and off are not congruent (R-MMAP-F2, private anonymous: allowed) and the mapping must
    still cover [addr, addr + len)."""
    x = 0x3000_0000
    length = 2 * PS
    flags = ANON | C.MAP_STACK | C.MAP_FIXED
    assert p.mmap(x + 0x10, length, RW, flags, C.NOFD, 0x10) == x + 0x10  # R-MMAP-F4
    g, body = p.mappings()
    assert (g.start, g.end) == (x, x + PS)
    assert (body.start, body.end) == (x + PS, x + 3 * PS)
    p.write_memory(x + 0x10 + length - 1, b"!")
    k.check_invariants()


# -- R-MMAP-27: accepted flags with no effect; MAP_ELF, MAP_NOINHERIT, MAP_LAZY ------------


@pytest.mark.parametrize(
    "extra",
    [C.MAP_NOINIT, C.MAP_NORESERVE, C.MAP_RENAME, C.MAP_FILE, C.MAP_NOSYNCFILE],
    ids=["NOINIT", "NORESERVE", "RENAME", "FILE", "NOSYNCFILE"],
)
def test_R_MMAP_27_flags_without_effect_are_accepted(k: Kernel, extra: int) -> None:
    plain = k.spawn(image=False)
    other = k.spawn(image=False)
    a = plain.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    before = k.meminfo()
    b = other.mmap(0, 2 * PS, RW, ANON | extra, C.NOFD, 0)
    assert b == a
    (ra,), (rb,) = plain.mappings(), other.mappings()
    assert (rb.start, rb.end, rb.prot, rb.kind) == (ra.start, ra.end, ra.prot, ra.kind)
    assert k.meminfo().allocated == before.allocated + 2 * PS  # not lazy
    assert other.read_memory(b, 2 * PS) == bytes(2 * PS)  # MAP_NOINIT: still zeroed
    k.check_invariants()


def test_R_MMAP_27_map_elf_only_changes_placement(k: Kernel, p: Process) -> None:
    a = p.mmap(0, 2 * PS, RW, ANON | C.MAP_ELF, C.NOFD, 0)
    assert a == SO_BASE  # R-PLACE-1
    rec = p.mapping_at(a)
    assert rec is not None and (rec.size, rec.prot, rec.kind) == (2 * PS, RW, "anon")
    assert k.meminfo().allocated == 2 * PS
    k.check_invariants()


def test_R_MMAP_27_map_noinherit_is_not_copied_into_fork_children(k: Kernel, p: Process) -> None:
    keep = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    private = p.mmap(0, PS, RW, ANON | C.MAP_NOINHERIT, C.NOFD, 0)
    shared = p.mmap(0, PS, RW, SHARED_ANON | C.MAP_NOINHERIT, C.NOFD, 0)
    child = k.process(p.fork())
    assert [r.start for r in child.mappings()] == [keep]
    assert child.mapping_at(private) is None and child.mapping_at(shared) is None
    assert len(p.mappings()) == 3
    k.check_invariants()


@pytest.mark.parametrize("mtype", [C.MAP_PRIVATE, C.MAP_SHARED])
def test_R_MMAP_27_map_lazy_allocates_on_first_touch(k: Kernel, p: Process, mtype: int) -> None:
    a = p.mmap(0, 4 * PS, RW, mtype | C.MAP_ANON | C.MAP_LAZY, C.NOFD, 0)
    assert k.meminfo().allocated == 0
    p.write_memory(a + PS + 5, b"x")
    assert k.meminfo().allocated == PS
    assert p.read_memory(a + PS, 6) == b"\0\0\0\0\0x"
    k.check_invariants()


# -- Result: an unaligned off is accepted; the address keeps the page offset ----------------


@pytest.mark.parametrize("name", ["mmap", "mmap64"])
def test_result_unaligned_off_keeps_its_page_offset_for_anon(
    k: Kernel, p: Process, name: str
) -> None:
    call = getattr(p, name)
    a = call(0, PS, RW, ANON, C.NOFD, 0x123)
    assert a == PROGRAM_BASE + 0x123
    rec = p.mapping_at(a)
    assert rec is not None
    # size = roundup(len + pg_off): two pages from the page-aligned start
    assert (rec.start, rec.end) == (PROGRAM_BASE, PROGRAM_BASE + 2 * PS)
    p.write_memory(a, bytes(range(256)) * 16)
    k.check_invariants()


def test_result_unaligned_phys_off_maps_the_page_and_keeps_the_offset(
    k: Kernel, p: Process
) -> None:
    whole = p.mmap(0, PS, RW, PHYS, C.NOFD, DEVICE_START)
    p.write_memory(whole + 0x10, b"register")
    a = p.mmap(0, 8, C.PROT_READ, PHYS, C.NOFD, DEVICE_START + 0x10)
    assert a % PS == 0x10
    rec = p.mapping_at(a)
    assert rec is not None
    assert (rec.start, rec.size, rec.offset) == (a - 0x10, PS, DEVICE_START)
    assert p.read_memory(a, 8) == b"register"
    k.check_invariants()


@settings(max_examples=100, deadline=None)
@given(
    length=st.integers(1, 64 * PS),
    off=st.integers(0, 2**40),
    mtype=st.sampled_from([C.MAP_PRIVATE, C.MAP_SHARED]),
)
def test_result_any_len_and_off_keep_the_page_offset(length: int, off: int, mtype: int) -> None:
    k = Kernel(ram=1 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, length, RW, mtype | C.MAP_ANON | C.MAP_LAZY, C.NOFD, off)
    pg_off = off % PS
    assert a % PS == pg_off
    rec = p.mapping_at(a)
    assert rec is not None
    assert rec.start == a - pg_off
    assert rec.end == rec.start + -(-(length + pg_off) // PS) * PS
    assert rec.start <= a and a + length <= rec.end
    k.check_invariants()


def test_libc_facade_reports_the_rule_errno(k: Kernel, p: Process) -> None:
    """R-CALL-1 for mmap: MAP_FAILED and errno, for the same failures as above."""
    assert p.libc.mmap(0, 0, RW, ANON, C.NOFD, 0) == C.MAP_FAILED
    assert p.libc.errno == E.EINVAL
    assert p.libc.mmap(0, PS, RW, C.MAP_SHARED, BAD_FD, 0) == C.MAP_FAILED
    assert p.libc.errno == E.EBADF
    assert p.mappings() == ()


# -- Order: where two rules would fail, the earlier one decides -----------------------------


ORDER_CASES = [
    # (winner, errno, args) with args = (addr, len, prot, flags, fd, off)
    ("R-MMAP-1", E.EINVAL, (0, 0, 0x1, C.MAP_ANON | 0x8 | C.MAP_HANDLE, BAD_FD, 0)),
    ("R-MMAP-2", E.EINVAL, (0, 0, 0x1, ANON | C.MAP_SYSRAM, BAD_FD, 0)),
    ("R-MMAP-3", E.EINVAL, (0, PS, 0x1, ANON | C.MAP_SYSRAM | C.MAP_HANDLE, BAD_FD, 0)),
    ("R-MMAP-4", E.EINVAL, (0, PS, RW, ANON | 0x8 | C.MAP_HANDLE, BAD_FD, 0)),
    ("R-MMAP-5", E.EINVAL, (0, PS, RW, ANON | C.MAP_HANDLE, BAD_FD, 0)),
    (
        "R-MMAP-6",
        E.EINVAL,
        (0, PS, RW, ANON | C.MAP_PHYS | C.MAP_LAZY | C.MAP_STACK, BAD_FD, PS),
    ),
    ("R-MMAP-7", E.EINVAL, (0, PS, RW, ANON | C.MAP_PHYS | C.MAP_LAZY | C.MAP_STACK, -1, PS)),
    ("R-MMAP-8", E.EINVAL, (0, PS, RW, C.MAP_PRIVATE | C.MAP_STACK, BAD_FD, 0)),
    ("R-MMAP-8", E.EINVAL, (0, PS, RW, C.MAP_SHARED | C.MAP_STACK | C.MAP_PHYS, -1, -PS)),
    ("R-MMAP-11", E.EINVAL, (0, PS, RW, PHYS, BAD_FD, -PS)),  # not R-MMAP-12 nor R-MMAP-13
    ("R-MMAP-12", E.EBADF, (0, SIZE_MAX, RW, C.MAP_SHARED, BAD_FD, -1)),  # before 13, 14
    ("R-MMAP-13", E.EINVAL, (0, SIZE_MAX, RW, PHYS, C.NOFD, -PS)),  # before 14
    ("R-MMAP-14", E.ENOMEM, (0, SIZE_MAX, RW, ANON | C.MAP_FIXED, C.NOFD, 0)),  # not F1
    ("R-MMAP-F1", E.EINVAL, (0x10, PS, RW, SHARED_ANON | C.MAP_FIXED, C.NOFD, 0)),  # not F2
]


@pytest.mark.parametrize(("rule", "errno", "args"), ORDER_CASES, ids=[c[0] for c in ORDER_CASES])
def test_order_earlier_rule_decides(
    k: Kernel, p: Process, rule: str, errno: int, args: tuple[int, ...]
) -> None:
    expect_fail(k, p, errno, rule, p.mmap, *args)


def test_order_R_MMAP_8_before_R_MMAP_9(k: Kernel, p: Process) -> None:
    deny(p, C.PROCMGR_AID_PROT_EXEC)
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    flags = C.MAP_PRIVATE | C.MAP_STACK
    expect_fail(k, p, E.EINVAL, "R-MMAP-8", p.mmap, 0, PS, RX, flags, BAD_FD, 0)


def test_order_R_MMAP_9_before_R_MMAP_10(k: Kernel, p: Process) -> None:
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    deny(p, C.PROCMGR_AID_MAP_FIXED)
    flags = ANON | C.MAP_FIXED
    expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0x2000_0000, PS, RX, flags, C.NOFD, 0)


def test_order_R_MMAP_10_before_R_MMAP_11_12_and_F1(k: Kernel, p: Process) -> None:
    deny(p, C.PROCMGR_AID_MAP_FIXED)
    fixed = C.MAP_FIXED
    expect_fail(k, p, E.EPERM, "R-MMAP-10", p.mmap, 0, PS, RW, PHYS | fixed, C.NOFD, PHYS_END)
    expect_fail(k, p, E.EPERM, "R-MMAP-10", p.mmap, 0, PS, RW, C.MAP_SHARED | fixed, BAD_FD, 0)
    expect_fail(k, p, E.EPERM, "R-MMAP-10", p.mmap, 0, PS, RW, ANON | fixed, C.NOFD, 0)


def test_order_R_MMAP_11_eperm_before_its_range_and_R_MMAP_13(k: Kernel) -> None:
    user = k.spawn(uid=1000, image=False)
    for off in (PHYS_END, -PS):
        expect_fail(k, user, E.EPERM, "R-MMAP-11", user.mmap, 0, PS, RW, PHYS, C.NOFD, off)


def test_order_R_MMAP_16_before_R_MMAP_18(k: Kernel, p: Process) -> None:
    p.setrlimit(C.RLIMIT_AS, PS, C.RLIM_INFINITY)
    flags = ANON | C.MAP_LAZY
    expect_fail(k, p, E.ENOMEM, "R-MMAP-16", p.mmap, 0, USER_END, RW, flags, C.NOFD, 0)


def test_order_R_MMAP_18_before_R_MMAP_19_and_R_MMAP_20(k: Kernel, p: Process) -> None:
    p.setrlimit(C.RLIMIT_AS, PS, C.RLIM_INFINITY)
    p.setrlimit(C.RLIMIT_MEMLOCK, 0, C.RLIM_INFINITY)
    p.space.lock_future = True
    length = k.ram + PS
    expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, 0, length, RW, ANON, C.NOFD, 0)


def test_order_R_MMAP_19_before_R_MMAP_20(k: Kernel, p: Process) -> None:
    p.setrlimit(C.RLIMIT_MEMLOCK, PS, C.RLIM_INFINITY)
    p.space.lock_future = True
    length = k.ram + PS
    expect_fail(k, p, E.EAGAIN, "R-MMAP-19", p.mmap, 0, length, RW, ANON, C.NOFD, 0)


@settings(max_examples=100, deadline=None)
@given(
    mtype=st.sampled_from([0, C.MAP_SHARED | C.MAP_PRIVATE]),
    length=st.integers(0, SIZE_MAX),
    prot=st.integers(-(2**31), 2**31 - 1),
    flags=st.integers(0, 2**32 - 1),
    fd=st.integers(-(2**31), 2**31 - 1),
    off=st.integers(-(2**63), 2**63 - 1),
)
def test_order_R_MMAP_1_is_checked_first(
    mtype: int, length: int, prot: int, flags: int, fd: int, off: int
) -> None:
    k = Kernel(ram=1 << 20)
    p = k.spawn(image=False)
    flags = (flags & ~C.MAP_TYPE) | mtype
    expect_fail(k, p, E.EINVAL, "R-MMAP-1", p.mmap, 0, length, prot, flags, fd, off)


@settings(max_examples=100, deadline=None)
@given(
    mtype=st.sampled_from([C.MAP_SHARED, C.MAP_PRIVATE]),
    prot=st.integers(-(2**31), 2**31 - 1),
    flags=st.integers(0, 2**32 - 1),
    fd=st.integers(-(2**31), 2**31 - 1),
    off=st.integers(-(2**63), 2**63 - 1),
)
def test_order_R_MMAP_2_follows_only_R_MMAP_1(
    mtype: int, prot: int, flags: int, fd: int, off: int
) -> None:
    k = Kernel(ram=1 << 20)
    p = k.spawn(image=False)
    flags = (flags & ~C.MAP_TYPE) | mtype
    expect_fail(k, p, E.EINVAL, "R-MMAP-2", p.mmap, 0, 0, prot, flags, fd, off)
