"""munmap / munmap_flags (SPEC 7), mprotect (SPEC 8) and mapping records (SPEC 17).

Rules: R-UNMAP-1..6, R-MPROT-1..6, R-MAP-1 (record fields, frozen, ascending) and R-MAP-2
(canonical merged form).  Addresses and sizes below are SPEC values (R-SYS-3, R-SYS-4).
"""

from __future__ import annotations

import itertools

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ANON, PROGRAM_BASE, PS, RW, RX, SHARED_ANON, expect_error

import qnxsim.abilities
from qnxsim import Kernel, Mapping, MemoryFault, Process
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.addrspace import Entry
from qnxsim.objects import MemObject

ADDR_MAX = 2**64 - 1  # R-UNMAP-1: 2^bits - 1 on x86_64
SIZE_MAX = 2**64 - 1
USER_END = 2**39 - PS  # R-SYS-3, 4 KiB pages


def setup(pages: int = 4, prot: int = RW, flags: int = ANON) -> tuple[Kernel, Process, int]:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, pages * PS, prot, flags, C.NOFD, 0)
    return k, p, a


def spans(p: Process) -> list[tuple[int, int, int]]:
    return [(m.start, m.end, m.prot) for m in p.mappings()]


def deny(proc: Process, aid: int, subranges: tuple[tuple[int, int], ...] | None = None) -> None:
    """Deny ``aid`` to a root process, or (with ``subranges``) allow it only there."""
    entry = qnxsim.abilities.DomainEntry(subranges is not None, subranges or ())
    proc.abilities.set(aid, qnxsim.abilities.ROOT, entry)


# -- R-UNMAP-1, R-UNMAP-2: the cut at ADDR_MAX, then len 0 ----------------------------------------


def test_R_UNMAP_2_len_zero_is_einval() -> None:
    _k, p, a = setup()
    before = p.mappings()
    expect_error(qerrno.EINVAL, "R-UNMAP-2", p.munmap, a, 0)
    assert p.mappings() == before
    assert p.libc.munmap(a, 0) == -1 and p.libc.errno == qerrno.EINVAL


def test_R_UNMAP_1_addr_minus_one_len_one_is_cut_to_zero() -> None:
    """munmap((void*)-1, 1): len is cut to ADDR_MAX - addr = 0, so R-UNMAP-2 fires."""
    _k, p, _ = setup()
    expect_error(qerrno.EINVAL, "R-UNMAP-2", p.munmap, ADDR_MAX, 1)
    expect_error(qerrno.EINVAL, "R-UNMAP-2", p.munmap, -1, 1)  # R-CALL-2: -1 is ADDR_MAX
    expect_error(qerrno.EINVAL, "R-UNMAP-2", p.munmap, ADDR_MAX, SIZE_MAX)


def test_R_UNMAP_1_top_page_is_einval_above_user_end() -> None:
    """munmap(-1 & ~(PS-1), 1): len fits, the page ends above USER_END (R-UNMAP-4)."""
    _k, p, _ = setup()
    top = ADDR_MAX & ~(PS - 1)
    expect_error(qerrno.EINVAL, "R-UNMAP-4", p.munmap, top, 1)
    expect_error(qerrno.EINVAL, "R-UNMAP-4", p.munmap, top, PS)  # cut to PS - 1


def test_R_UNMAP_1_wrapping_len_is_cut_not_wrapped() -> None:
    """addr + len would wrap past 2^64 to just after addr; the cut makes it end at ADDR_MAX."""
    k, p, a = setup()
    before = p.mappings()
    expect_error(qerrno.EINVAL, "R-UNMAP-4", p.munmap, a, 2**64 - a + PS)
    expect_error(qerrno.EINVAL, "R-UNMAP-4", p.munmap, a, SIZE_MAX)
    assert p.mappings() == before
    k.check_invariants()


def test_R_UNMAP_1_mprotect_gets_the_same_cut() -> None:
    _k, p, _ = setup()
    expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, ADDR_MAX, 1, C.PROT_READ)


# -- R-UNMAP-3, R-UNMAP-4: widening and USER_END ---------------------------------------------


def test_R_UNMAP_3_unaligned_addr_is_accepted_and_widened() -> None:
    k, p, a = setup(4)
    assert p.munmap(a + 100, 1) == 0  # removes the whole first page
    assert spans(p) == [(a + PS, a + 4 * PS, RW)]
    assert p.munmap(a + 2 * PS - 1, 2) == 0  # touches two pages: both go
    assert spans(p) == [(a + 3 * PS, a + 4 * PS, RW)]
    k.check_invariants()


def test_R_UNMAP_4_range_ending_above_user_end_is_einval() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    top = p.mmap(USER_END - PS, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert top == USER_END - PS
    expect_error(qerrno.EINVAL, "R-UNMAP-4", p.munmap, USER_END, PS)
    expect_error(qerrno.EINVAL, "R-UNMAP-4", p.munmap, USER_END - PS, PS + 1)
    assert p.mapping_at(top) is not None  # nothing changed
    assert p.munmap(USER_END - PS, PS) == 0  # ends exactly at USER_END: fine
    assert p.mappings() == ()
    k.check_invariants()


def test_R_UNMAP_4_below_user_start_is_not_an_error() -> None:
    _k, p, a = setup()
    assert p.munmap(0, PS) == 0
    assert p.munmap(0, a) == 0  # everything below the mapping: nothing mapped there
    assert spans(p) == [(a, a + 4 * PS, RW)]


# -- R-UNMAP-5: partial unmapping ---------------------------------------------------------------


def test_R_UNMAP_5_middle_pages_split_the_mapping() -> None:
    k, p, a = setup(4)
    p.write_memory(a, b"A" * PS + b"B" * PS + b"C" * PS + b"D" * PS)
    before = k.meminfo()
    assert p.munmap(a + PS, 2 * PS) == 0
    recs = p.mappings()
    assert [(m.start, m.end) for m in recs] == [(a, a + PS), (a + 3 * PS, a + 4 * PS)]
    assert [m.offset for m in recs] == [a, a + 3 * PS]  # R-MAP-2: anon offset = address
    assert p.read_memory(a, 1) == b"A" and p.read_memory(a + 3 * PS, 1) == b"D"
    with pytest.raises(MemoryFault) as fault:
        p.read_memory(a + PS, 1)
    assert fault.value.code == C.SEGV_MAPERR
    after = k.meminfo()
    assert after.allocated == before.allocated - 2 * PS
    assert after.free == before.free + 2 * PS
    k.check_invariants()


def test_R_UNMAP_5_shared_anon_split_keeps_object_offsets() -> None:
    k, p, a = setup(4, flags=SHARED_ANON)
    assert p.munmap(a + PS, PS) == 0
    recs = p.mappings()
    assert [(m.start, m.end, m.offset) for m in recs] == [
        (a, a + PS, 0),
        (a + 2 * PS, a + 4 * PS, 2 * PS),
    ]
    assert all(m.kind == "shared-anon" for m in recs)
    k.check_invariants()


def test_R_UNMAP_5_unmapped_pages_in_range_are_ignored() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    b = p.mmap(a + 4 * PS, 2 * PS, C.PROT_READ, ANON, C.NOFD, 0)
    assert b == a + 4 * PS
    c = p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    assert p.munmap(a + PS, 4 * PS) == 0  # over a hole of two pages
    assert spans(p) == [(a, a + PS, RW), (a + 5 * PS, a + 6 * PS, C.PROT_READ), (c, c + PS, RW)]
    k.check_invariants()


def test_R_UNMAP_5_nothing_mapped_succeeds() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    before = k.meminfo()
    assert p.munmap(PROGRAM_BASE, 16 * PS) == 0
    assert p.libc.munmap(PROGRAM_BASE, PS) == 0
    assert p.mappings() == () and k.meminfo() == before


def test_R_UNMAP_5_last_shared_anon_mapping_frees_the_object() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    before = k.meminfo()
    a = p.mmap(0, 4 * PS, RW, SHARED_ANON, C.NOFD, 0)
    assert k.meminfo().allocated == before.allocated + 4 * PS
    p.munmap(a, PS)
    assert k.meminfo().allocated == before.allocated + 4 * PS  # object still mapped
    p.munmap(a, 4 * PS)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_UNMAP_5_whole_address_space() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=True)
    assert p.mappings()
    assert p.munmap(PS, USER_END - PS) == 0
    assert p.mappings() == ()
    k.check_invariants()


def test_R_UNMAP_5_locks_go_with_removed_pages() -> None:
    k = Kernel(version="7.1", ram=64 << 20)  # 8.0 records no locks (R-LOCK-7)
    p = k.spawn(image=False)
    a = p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    assert p.mlock(a, 2 * PS) == 0
    assert [m.locked for m in p.mappings()] == [True, False]  # R-MAP-1: the locked field
    expect_error(qerrno.ENOMEM, "R-LOCK-1", p.mlock, a + 2 * PS, PS)
    assert p.munmap(a, 2 * PS) == 0
    assert [m.locked for m in p.mappings()] == [False]
    assert p.mlock(a + 2 * PS, 2 * PS) == 0  # the locked total went with the pages
    k.check_invariants()


# -- R-UNMAP-6: munmap_flags ------------------------------------------------------------------


@pytest.mark.parametrize("flags", [1, 2, 0x100, 0x8000_0000])
def test_R_UNMAP_6_nonzero_flags_is_einval(flags: int) -> None:
    _k, p, a = setup()
    before = p.mappings()
    expect_error(qerrno.EINVAL, "R-UNMAP-6", p.munmap_flags, a, PS, flags)
    expect_error(qerrno.EINVAL, "R-UNMAP-6", p.munmap_flags, a, 0, flags)  # flags first
    assert p.mappings() == before
    assert p.libc.munmap_flags(a, PS, flags) == -1 and p.libc.errno == qerrno.EINVAL


def test_R_UNMAP_6_zero_flags_is_munmap() -> None:
    k, p, a = setup(3)
    assert p.munmap_flags(a + PS, PS, 0) == 0
    assert spans(p) == [(a, a + PS, RW), (a + 2 * PS, a + 3 * PS, RW)]
    expect_error(qerrno.EINVAL, "R-UNMAP-2", p.munmap_flags, a, 0, 0)
    expect_error(qerrno.EINVAL, "R-UNMAP-4", p.munmap_flags, USER_END, PS, 0)
    k.check_invariants()


# -- R-MPROT-1, R-MPROT-2 -------------------------------------------------------------------


@pytest.mark.parametrize("prot", [0x1, 0x80, 0x1000, 0x1100, -1])
def test_R_MPROT_1_bits_outside_prot_mask_is_einval(prot: int) -> None:
    _k, p, a = setup()
    before = p.mappings()
    expect_error(qerrno.EINVAL, "R-MPROT-1", p.mprotect, a, PS, prot)
    expect_error(qerrno.EINVAL, "R-MPROT-1", p.mprotect, a, 0, prot)  # before R-MPROT-2
    expect_error(qerrno.EINVAL, "R-MPROT-1", p.mprotect, PS, PS, prot)  # before unmapped
    assert p.mappings() == before


def test_R_MPROT_1_prot_nocache_is_inside_the_mask() -> None:
    _k, p, a = setup()
    assert p.mprotect(a, PS, C.PROT_READ | C.PROT_NOCACHE) == 0
    assert p.mappings()[0].prot == C.PROT_READ | C.PROT_NOCACHE


def test_R_MPROT_2_len_zero_is_enomem() -> None:
    _k, p, a = setup()
    expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, a, 0, C.PROT_READ)
    assert p.libc.mprotect(a, 0, C.PROT_READ) == -1 and p.libc.errno == qerrno.ENOMEM


def test_R_MPROT_2_unmapped_page_in_range_is_enomem_and_changes_nothing() -> None:
    k, p, a = setup(4)
    p.munmap(a + 2 * PS, PS)
    before = p.mappings()
    expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, a, 4 * PS, C.PROT_READ)
    expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, a - PS, 2 * PS, C.PROT_READ)
    expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, a + 3 * PS, 2 * PS, C.PROT_READ)
    assert p.mappings() == before
    k.check_invariants()


def test_R_MPROT_2_outside_user_range_is_enomem() -> None:
    _k, p, _ = setup()
    expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, USER_END, PS, C.PROT_READ)
    expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, 2**48, PS, C.PROT_READ)


def test_R_MPROT_2_unaligned_addr_is_widened() -> None:
    k, p, a = setup(3)
    assert p.mprotect(a + PS + 7, 1, C.PROT_READ) == 0
    assert spans(p) == [
        (a, a + PS, RW),
        (a + PS, a + 2 * PS, C.PROT_READ),
        (a + 2 * PS, a + 3 * PS, RW),
    ]
    assert p.mprotect(a + PS - 1, 2, C.PROT_NONE) == 0  # straddles two pages
    assert spans(p) == [(a, a + 2 * PS, C.PROT_NONE), (a + 2 * PS, a + 3 * PS, RW)]
    k.check_invariants()


# -- R-MPROT-3: PROT_EXEC abilities, before any change ------------------------------------------


def test_R_MPROT_3_anon_exec_needs_prot_write_and_exec() -> None:
    _k, p, a = setup(2)
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    before = p.mappings()
    expect_error(qerrno.EPERM, "R-MPROT-3", p.mprotect, a, 2 * PS, RX)
    assert p.mappings() == before
    deny(p, C.PROCMGR_AID_PROT_EXEC)  # irrelevant for anonymous memory
    p.abilities.set(
        C.PROCMGR_AID_PROT_WRITE_AND_EXEC,
        qnxsim.abilities.ROOT,
        qnxsim.abilities.DomainEntry(True),
    )
    assert p.mprotect(a, 2 * PS, RX) == 0
    assert spans(p) == [(a, a + 2 * PS, RX)]


def test_R_MPROT_3_file_mapping_exec_needs_prot_exec() -> None:
    """The image's text is a file (MAP_ELF) mapping: R+X needs PROT_EXEC, W+X needs W_AND_X."""
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=True)
    text = p.mapping_at(PROGRAM_BASE)
    assert text is not None and text.prot == RX
    deny(p, C.PROCMGR_AID_PROT_EXEC)
    expect_error(qerrno.EPERM, "R-MPROT-3", p.mprotect, text.start, PS, RX)
    assert p.mprotect(text.start, PS, RX | C.PROT_WRITE) == 0  # W+X: the other ability
    assert p.mapping_at(text.start).prot == RX | C.PROT_WRITE
    p2 = k.spawn(image=True)
    deny(p2, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    assert p2.mprotect(PROGRAM_BASE, PS, RX) == 0
    expect_error(qerrno.EPERM, "R-MPROT-3", p2.mprotect, PROGRAM_BASE, PS, RX | C.PROT_WRITE)
    k.check_invariants()


def test_R_MPROT_3_refusal_anywhere_in_range_changes_nothing() -> None:
    """Allowed for the first page only: the first page must not change either."""
    _k, p, a = setup(3)
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ((a, a + PS - 1),))
    before = p.mappings()
    expect_error(qerrno.EPERM, "R-MPROT-3", p.mprotect, a, 3 * PS, RX)
    assert p.mappings() == before
    assert p.mprotect(a, PS, RX) == 0
    assert spans(p) == [(a, a + PS, RX), (a + PS, a + 3 * PS, RW)]


# -- R-MPROT-4: split and merge -------------------------------------------------------------


def test_R_MPROT_4_middle_split_then_merge_back() -> None:
    k, p, a = setup(5)
    p.write_memory(a + 2 * PS, b"keep")
    assert p.mprotect(a + PS, 3 * PS, C.PROT_READ) == 0
    assert spans(p) == [
        (a, a + PS, RW),
        (a + PS, a + 4 * PS, C.PROT_READ),
        (a + 4 * PS, a + 5 * PS, RW),
    ]
    with pytest.raises(MemoryFault) as fault:
        p.write_memory(a + 2 * PS, b"x")
    assert fault.value.code == C.SEGV_ACCERR
    assert p.mprotect(a + PS, 3 * PS, RW) == 0
    assert spans(p) == [(a, a + 5 * PS, RW)]
    assert p.read_memory(a + 2 * PS, 4) == b"keep"  # data survives protection changes
    k.check_invariants()


def test_R_MPROT_4_range_over_several_mappings_gets_one_prot() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    p.mmap(a + PS, PS, C.PROT_NONE, ANON, C.NOFD, 0)
    p.mmap(a + 2 * PS, PS, RX, ANON, C.NOFD, 0)
    assert len(p.mappings()) == 3
    assert p.mprotect(a, 3 * PS, C.PROT_READ) == 0
    assert spans(p) == [(a, a + 3 * PS, C.PROT_READ)]
    k.check_invariants()


# -- R-MPROT-5: write refused on a read-only shared object ------------------------------------


def _with_read_only_shared_page(p: Process, a: int) -> MemObject:
    """Replace page 2 of a 4-page anonymous mapping with a MAP_SHARED read-only-fd object page.

    File descriptors are not simulated yet, so the mapping R-MPROT-5 needs (MAP_SHARED of an
    object opened without write access) is built directly as an address-space entry with
    ``shared_ro=True``.
    """
    p.munmap(a + 2 * PS, PS)
    obj = MemObject("shm", name="/dev/shmem/ro", size=PS, named=True)
    entry = Entry(C.PROT_READ, C.MAP_SHARED, obj, 0, "shm", shared_ro=True)
    p.space.add(a + 2 * PS, a + 3 * PS, entry)
    return obj


def test_R_MPROT_5_pieces_below_the_refused_one_keep_their_change() -> None:
    """Built with a ``shared_ro`` entry because fds cannot produce the mapping yet.

    Pages [a, a+2) are private anonymous and take PROT_WRITE; page a+2 is the read-only
    shared object and is refused with EACCES; page a+3, above it, is left as it was.  This is
    the one documented exception to R-CALL-5.
    """
    k, p, a = setup(4, prot=C.PROT_READ)
    _with_read_only_shared_page(p, a)
    k.check_invariants()
    expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, a, 4 * PS, RW)
    assert spans(p) == [
        (a, a + 2 * PS, RW),
        (a + 2 * PS, a + 3 * PS, C.PROT_READ),
        (a + 3 * PS, a + 4 * PS, C.PROT_READ),
    ]
    p.write_memory(a, b"ok")  # the change below really took effect
    with pytest.raises(MemoryFault):
        p.write_memory(a + 3 * PS, b"no")
    k.check_invariants()


def test_R_MPROT_5_only_adding_write_is_refused() -> None:
    k, p, a = setup(4, prot=C.PROT_READ)
    _with_read_only_shared_page(p, a)
    assert p.mprotect(a, 4 * PS, C.PROT_NONE) == 0
    assert [m.prot for m in p.mappings()] == [C.PROT_NONE] * 3
    assert p.mprotect(a, 4 * PS, C.PROT_READ) == 0
    e = expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, a + 2 * PS, PS, RW)
    assert e.call == "mprotect"
    assert p.mapping_at(a + 2 * PS).prot == C.PROT_READ
    k.check_invariants()


def test_R_MPROT_5_shared_mapping_of_read_only_fd() -> None:
    """The same rule through real calls: a shm object opened O_RDONLY, mapped MAP_SHARED."""
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    fd = p.shm_open("/ro", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, 2 * PS)
    ro = p.shm_open("/ro", C.O_RDONLY, 0)
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    s = p.mmap(a + 2 * PS, 2 * PS, C.PROT_READ, C.MAP_SHARED | C.MAP_FIXED, ro, 0)
    assert s == a + 2 * PS
    expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, s, 2 * PS, RW)
    assert p.mapping_at(s).prot == C.PROT_READ
    p.mprotect(a, 2 * PS, C.PROT_READ)
    expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, a, 4 * PS, RW)
    assert spans(p) == [(a, a + 2 * PS, RW), (s, s + 2 * PS, C.PROT_READ)]
    rw_map = p.mmap(0, 2 * PS, C.PROT_READ, C.MAP_SHARED, fd, 0)  # writable fd: allowed
    assert p.mprotect(rw_map, 2 * PS, RW) == 0
    k.check_invariants()


# -- R-MPROT-6: stack guard pages ------------------------------------------------------------


def test_R_MPROT_6_guard_page_mprotect_succeeds_and_changes_nothing() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    s = p.mmap(0, 8 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    guard = p.mapping_at(s)
    assert guard is not None and guard.kind == "stack-guard" and guard.size == PS
    assert p.mprotect(s, PS, RW) == 0
    assert p.mapping_at(s) == guard
    assert p.mprotect(s, 8 * PS, C.PROT_READ) == 0  # guard and body: only the body changes
    recs = p.mappings()
    assert recs[0] == guard
    assert (recs[1].start, recs[1].end, recs[1].prot) == (s + PS, s + 8 * PS, C.PROT_READ)
    with pytest.raises(MemoryFault) as fault:
        p.read_memory(s, 1)
    assert fault.value.code == C.SEGV_ACCERR
    k.check_invariants()


def test_R_MPROT_6_guard_is_skipped_by_the_exec_check() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    s = p.mmap(0, 4 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    assert p.mprotect(s, PS, RX) == 0
    assert p.mapping_at(s).prot == C.PROT_NONE


# -- R-MAP-1: records -----------------------------------------------------------------------


def test_R_MAP_1_record_fields() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    # NOFD implies MAP_ANON, PROT_NOCACHE in flags moves to prot (R-MMAP-4, R-MMAP-6).
    a = p.mmap(0, 2 * PS, C.PROT_READ, C.MAP_PRIVATE | C.PROT_NOCACHE, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert isinstance(rec, Mapping)
    assert (rec.start, rec.end, rec.size) == (a, a + 2 * PS, 2 * PS)
    assert rec.prot == C.PROT_READ | C.PROT_NOCACHE
    assert rec.flags == C.MAP_PRIVATE | C.MAP_ANON
    assert rec.flags & C.PROT_MASK == 0
    assert rec.offset == a and rec.kind == "anon" and rec.name is None
    assert rec.locked is False
    assert p.mapping_at(a + 2 * PS) is None
    assert p.mapping_at(a + 2 * PS - 1) == rec


def test_R_MAP_1_records_are_frozen() -> None:
    _k, p, a = setup()
    rec = p.mappings()[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        rec.prot = C.PROT_NONE  # type: ignore[misc]
    assert p.mappings()[0].prot == RW
    assert rec == p.mapping_at(a)  # comparable by value


def test_R_MAP_1_records_ascend_and_do_not_overlap() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=True)
    p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    p.mmap(PS * 16, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    recs = p.mappings()
    assert isinstance(recs, tuple) and len(recs) >= 8
    assert [m.start for m in recs] == sorted(m.start for m in recs)
    for m, n in itertools.pairwise(recs):
        assert m.end <= n.start
    for m in recs:
        assert m.size == m.end - m.start and m.start % PS == 0 and m.end % PS == 0
    kinds = {m.kind for m in recs}
    assert {"anon", "shared-anon", "stack-guard", "elf"} <= kinds


# -- R-MAP-2: canonical merged form ----------------------------------------------------------


def test_R_MAP_2_adjacent_identical_anon_mappings_merge() -> None:
    k, p, a = setup(2)
    b = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    assert b == a + 2 * PS
    assert spans(p) == [(a, a + 5 * PS, RW)]
    assert p.mappings()[0].offset == a
    k.check_invariants()


def test_R_MAP_2_mprotect_back_merges_neighbours() -> None:
    k, p, a = setup(3)
    p.mprotect(a + PS, PS, C.PROT_READ)
    assert len(p.mappings()) == 3
    p.mprotect(a + PS, PS, RW)
    assert spans(p) == [(a, a + 3 * PS, RW)]
    k.check_invariants()


def test_R_MAP_2_different_prot_does_not_merge() -> None:
    _k, p, a = setup(2)
    p.mmap(0, 2 * PS, C.PROT_READ, ANON, C.NOFD, 0)
    assert spans(p) == [(a, a + 2 * PS, RW), (a + 2 * PS, a + 4 * PS, C.PROT_READ)]


def test_R_MAP_2_map_fixed_flag_prevents_merge() -> None:
    k, p, a = setup(2)
    f = p.mmap(a + 2 * PS, 2 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert f == a + 2 * PS
    recs = p.mappings()
    assert [(m.start, m.end) for m in recs] == [(a, a + 2 * PS), (a + 2 * PS, a + 4 * PS)]
    assert recs[1].flags == ANON | C.MAP_FIXED and recs[0].flags == ANON
    g = p.mmap(a + 4 * PS, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)  # same flags: merges
    assert g == a + 4 * PS
    assert [(m.start, m.end) for m in p.mappings()] == [(a, a + 2 * PS), (a + 2 * PS, a + 5 * PS)]
    k.check_invariants()


def test_R_MAP_2_different_objects_do_not_merge() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    b = p.mmap(a + PS, PS, RW, SHARED_ANON, C.NOFD, 0)
    assert b == a + PS
    recs = p.mappings()
    assert len(recs) == 2 and recs[0].offset == 0 and recs[1].offset == 0


def test_R_MAP_2_same_object_needs_contiguous_offsets() -> None:
    """Two touching pieces of one shared object merge only when their offsets continue.

    No call can yet map one object twice at chosen offsets (that needs fds), so the second
    piece is added as an address-space entry on the object of the first.
    """
    for offset, merged in ((PS, True), (0, False), (2 * PS, False)):
        k = Kernel(ram=64 << 20)
        p = k.spawn(image=False)
        a = p.mmap(0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
        p.munmap(a + PS, PS)
        first = p.space.map.find(a)
        assert first is not None
        entry = first[2]
        p.space.add(a + PS, a + 2 * PS, Entry(RW, entry.flags, entry.obj, offset, "shared-anon"))
        recs = p.mappings()
        if merged:
            assert [(m.start, m.end, m.offset) for m in recs] == [(a, a + 2 * PS, 0)]
        else:
            assert [(m.start, m.offset) for m in recs] == [(a, 0), (a + PS, offset)]
        k.check_invariants()


# -- property: munmap and mprotect against a page model ---------------------------------------

PROTS = [C.PROT_NONE, C.PROT_READ, RW, RX, RW | C.PROT_EXEC]
REGION = 16

ops = st.lists(
    st.tuples(
        st.sampled_from(["unmap", "prot"]),
        st.integers(0, REGION - 1),
        st.integers(1, REGION),
        st.sampled_from(PROTS),
    ),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(ops=ops)
def test_R_UNMAP_5_R_MPROT_4_R_MAP_2_page_model(ops: list[tuple[str, int, int, int]]) -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, REGION * PS, RW, ANON, C.NOFD, 0)
    model: dict[int, int] = {i: RW for i in range(REGION)}
    for op, first, count, prot in ops:
        pages = range(first, min(first + count, REGION))
        addr, length = a + first * PS, len(pages) * PS
        if op == "unmap":
            assert p.munmap(addr, length) == 0
            for i in pages:
                model.pop(i, None)
        elif all(i in model for i in pages):
            assert p.mprotect(addr, length, prot) == 0
            model.update(dict.fromkeys(pages, prot))
        else:
            expect_error(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, addr, length, prot)
        k.check_invariants()
    expected: list[tuple[int, int, int]] = []
    for i in sorted(model):
        s = a + i * PS
        if expected and expected[-1][1] == s and expected[-1][2] == model[i]:
            expected[-1] = (expected[-1][0], s + PS, model[i])
        else:
            expected.append((s, s + PS, model[i]))
    assert spans(p) == expected
    assert all(m.offset == m.start for m in p.mappings())
    assert k.meminfo().allocated == len(model) * PS
