"""msync (SPEC 9) and posix_madvise (SPEC 11); the lock calls (SPEC 10) are in test_locks.py.

Expectations come from SPEC.md: R-MSYNC-1, R-MSYNC-2, R-MSYNC-4, R-MADV-1..3, with the 8.0
column of section 19.
"""

from __future__ import annotations

import attrs
import pytest
from support import LAZY_ANON, PS, RW, SHARED_ANON, anon
from support import expect_error as expect

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim import errno as qerrno

USER_END = 0x7F_FFFF_F000  # R-SYS-3, x86_64 with 4 KiB pages

VALID_MS = (
    C.MS_ASYNC,
    C.MS_SYNC,
    C.MS_INVALIDATE,
    C.MS_INVALIDATE_LOCKED,
    C.MS_INVALIDATE_ICACHE,
    C.MS_CACHE_ONLY,
    C.MS_CLEAN_ONLY,
    C.MS_SYNC_FULL,
)
ALL_VALID_MS = 0
for _bit in VALID_MS:
    ALL_VALID_MS |= _bit
UNKNOWN_MS_BITS = tuple(1 << i for i in range(32) if not (1 << i) & ALL_VALID_MS)
ADVICE = (
    C.POSIX_MADV_NORMAL,
    C.POSIX_MADV_SEQUENTIAL,
    C.POSIX_MADV_RANDOM,
    C.POSIX_MADV_WILLNEED,
    C.POSIX_MADV_DONTNEED,
    C.POSIX_MADV_DISCARD_NP,
)


def kernel() -> Kernel:
    return Kernel(ram=64 << 20)


def state(k: Kernel) -> tuple[object, ...]:
    return (
        tuple((p.pid, p.mappings(), p.space.lock_future) for p in k.processes()),
        k.meminfo(),
    )


# == msync (SPEC 9) ==========================================================================


@pytest.mark.parametrize("flags", [0, *VALID_MS], ids=hex)
def test_R_MSYNC_1_each_valid_flag_is_accepted(flags: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2, flags=SHARED_ANON)
    assert p.msync(a, 2 * PS, flags) == 0
    assert p.libc.msync(a, 2 * PS, flags) == 0
    k.check_invariants()


def test_R_MSYNC_1_all_valid_bits_but_async_together() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    assert p.msync(a, PS, ALL_VALID_MS & ~C.MS_ASYNC) == 0
    assert p.msync(a, PS, ALL_VALID_MS & ~C.MS_SYNC) == 0


def test_R_MSYNC_1_ms_sync_full_is_valid_on_8_0_only() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    assert k.version == "8.0" and p.msync(a, PS, C.MS_SYNC_FULL) == 0
    k.profile = attrs.evolve(k.profile, ms_sync_full=False)  # a profile without it (SPEC 19)
    expect(qerrno.EINVAL, "R-MSYNC-1", p.msync, a, PS, C.MS_SYNC_FULL)


@pytest.mark.parametrize("bit", UNKNOWN_MS_BITS, ids=hex)
def test_R_MSYNC_1_unknown_bit_is_einval(bit: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    expect(qerrno.EINVAL, "R-MSYNC-1", p.msync, a, PS, bit)
    expect(qerrno.EINVAL, "R-MSYNC-1", p.msync, a, PS, bit | C.MS_SYNC)
    assert p.libc.msync(a, PS, bit) == -1 and p.libc.errno == qerrno.EINVAL


def test_R_MSYNC_1_sync_with_async_is_einval() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    expect(qerrno.EINVAL, "R-MSYNC-1", p.msync, a, PS, C.MS_SYNC | C.MS_ASYNC)
    expect(qerrno.EINVAL, "R-MSYNC-1", p.msync, a, PS, C.MS_SYNC | C.MS_ASYNC | C.MS_INVALIDATE)


def test_R_MSYNC_1_flags_are_checked_before_the_range() -> None:
    p = kernel().spawn(image=False)
    expect(qerrno.EINVAL, "R-MSYNC-1", p.msync, 0x1000_0000, PS, C.MS_SYNC | C.MS_ASYNC)
    expect(qerrno.EINVAL, "R-MSYNC-1", p.msync, 0x1000_0000, 0, UNKNOWN_MS_BITS[0])


def test_R_MSYNC_2_unmapped_range_is_enomem() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, a + 16 * PS, PS, C.MS_SYNC)
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, a, 2 * PS, C.MS_SYNC)  # second page unmapped
    p.munmap(a, PS)
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, a, PS, C.MS_ASYNC)


def test_R_MSYNC_2_hole_in_the_middle_is_enomem() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 3)
    p.munmap(a + PS, PS)
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, a, 3 * PS, C.MS_SYNC)


def test_R_MSYNC_2_len_0_is_enomem() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 1)
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, a, 0, C.MS_SYNC)


def test_R_MSYNC_2_range_above_user_end_is_enomem() -> None:
    p = kernel().spawn(image=False)
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, USER_END, PS, C.MS_SYNC)


def test_R_MSYNC_2_unaligned_range_is_widened_to_pages() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 2)
    assert p.msync(a + 100, PS, C.MS_SYNC) == 0  # widened to both pages, both mapped
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, a + PS + 100, PS, C.MS_SYNC)


def test_R_MSYNC_4_msync_changes_no_data() -> None:
    k = kernel()
    k.create_file("/data", b"F" * (2 * PS))
    p = k.spawn(image=False)
    q = k.spawn(image=False)
    fd = p.open("/data", C.O_RDWR)
    shared = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    private = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, fd, 0)
    own = anon(p, 2)
    p.write_memory(shared, b"shared")
    p.write_memory(private, b"private")  # privatises page 0 of the private mapping (R-OBJ-4)
    p.write_memory(own, b"anon")
    peer_view = p.mmap_peer(q.pid, 0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    snap = [p.read_memory(x, 2 * PS) for x in (shared, private, own)]
    before = state(k)
    for flags in (*VALID_MS, C.MS_SYNC | C.MS_INVALIDATE, ALL_VALID_MS & ~C.MS_ASYNC):
        for addr in (shared, private, own):
            assert p.msync(addr, 2 * PS, flags) == 0
    assert [p.read_memory(x, 2 * PS) for x in (shared, private, own)] == snap
    assert q.read_memory(peer_view, 6) == b"shared"
    assert p.pread(fd, 8, 0) == b"sharedFF"  # the object never saw the private write
    assert state(k) == before
    k.check_invariants()


# == posix_madvise (SPEC 11) =================================================================


def test_R_MADV_1_returns_the_error_number_and_never_raises() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    assert p.posix_madvise(a, PS, C.POSIX_MADV_NORMAL) == 0
    assert p.posix_madvise(a + 8 * PS, PS, C.POSIX_MADV_NORMAL) == qerrno.ENOMEM
    assert p.posix_madvise(a, PS, 6) == qerrno.EINVAL
    assert p.posix_madvise(a, 0, C.POSIX_MADV_NORMAL) == qerrno.EINVAL


def test_R_MADV_1_libc_form_returns_the_same_and_leaves_errno() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 1)
    p.libc.errno = qerrno.EINTR  # a stale value the call must not touch
    cases = [
        ((a, PS, C.POSIX_MADV_WILLNEED), 0),
        ((a + 8 * PS, PS, C.POSIX_MADV_WILLNEED), qerrno.ENOMEM),
        ((a, PS, -1), qerrno.EINVAL),
        ((a, 0, C.POSIX_MADV_DONTNEED), qerrno.EINVAL),
    ]
    for args, want in cases:
        assert p.libc.posix_madvise(*args) == want == p.posix_madvise(*args)
        assert p.libc.errno == qerrno.EINTR


@pytest.mark.parametrize("advice", ADVICE)
def test_R_MADV_2_each_advice_in_range_is_accepted(advice: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2)
    assert p.posix_madvise(a, 2 * PS, advice) == 0
    assert p.posix_madvise(a + 1, 1, advice) == 0  # widened to one mapped page
    k.check_invariants()


@pytest.mark.parametrize("advice", [-1, 6, 7, 100, 2**31 - 1, -(2**31)])
def test_R_MADV_2_advice_outside_0_to_5_is_einval(advice: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    before = state(k)
    assert p.posix_madvise(a, PS, advice) == qerrno.EINVAL
    assert p.posix_madvise(a + 8 * PS, PS, advice) == qerrno.EINVAL  # advice before range
    assert state(k) == before


def test_R_MADV_2_len_0_is_einval_on_8_0() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 1)
    for advice in ADVICE:
        assert p.posix_madvise(a, 0, advice) == qerrno.EINVAL
    assert p.posix_madvise(0x1000_0000, 0, C.POSIX_MADV_NORMAL) == qerrno.EINVAL


def test_R_MADV_2_len_0_succeeds_without_the_8_0_rule() -> None:
    k = kernel()
    k.profile = attrs.evolve(k.profile, madvise_len0_einval=False)  # 7.1 / 6.4 (SPEC 19)
    p = k.spawn(image=False)
    a = anon(p, 1)
    assert p.posix_madvise(a, 0, C.POSIX_MADV_NORMAL) == 0
    assert p.posix_madvise(0x1000_0000, 0, C.POSIX_MADV_DISCARD_NP) == 0  # nothing to check
    assert p.posix_madvise(a, 0, 6) == qerrno.EINVAL  # advice is still checked


def test_R_MADV_2_unmapped_range_is_enomem() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 3)
    p.munmap(a + PS, PS)
    assert p.posix_madvise(a, 3 * PS, C.POSIX_MADV_NORMAL) == qerrno.ENOMEM
    assert p.posix_madvise(a + 8 * PS, PS, C.POSIX_MADV_NORMAL) == qerrno.ENOMEM
    assert p.posix_madvise(USER_END, PS, C.POSIX_MADV_NORMAL) == qerrno.ENOMEM
    assert p.posix_madvise(a, PS, C.POSIX_MADV_NORMAL) == 0


def test_R_MADV_3_discard_on_lazy_private_memory_frees_frames_and_reads_zero() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 4, flags=LAZY_ANON)
    free0 = k.meminfo().free
    p.write_memory(a, b"x" * (4 * PS))  # touch: four frames (R-SYS-6)
    assert k.meminfo().free == free0 - 4 * PS
    assert p.posix_madvise(a + PS, 2 * PS, C.POSIX_MADV_DISCARD_NP) == 0
    assert k.meminfo().free == free0 - 2 * PS
    k.check_invariants()
    assert [(m.start, m.end) for m in p.mappings()] == [(a, a + 4 * PS)]  # still mapped
    assert p.read_memory(a, PS) == b"x" * PS  # pages outside the range keep their data
    assert p.read_memory(a + 3 * PS, PS) == b"x" * PS
    assert k.meminfo().free == free0 - 2 * PS
    # The discarded pages read as zero; reading touches them, which allocates (R-FAULT-4).
    assert p.read_memory(a + PS, 2 * PS) == bytes(2 * PS)
    assert k.meminfo().free == free0 - 4 * PS
    k.check_invariants()


def test_R_MADV_3_discard_of_untouched_lazy_memory_is_harmless() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2, flags=LAZY_ANON)
    before = state(k)
    assert p.posix_madvise(a, 2 * PS, C.POSIX_MADV_DISCARD_NP) == 0
    assert state(k) == before


def test_R_MADV_3_discard_on_non_lazy_memory_changes_no_data() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2)
    s = anon(p, 2, flags=SHARED_ANON)
    p.write_memory(a, b"keep" * (PS // 2))
    p.write_memory(s, b"mine" * (PS // 2))
    before = state(k)
    assert p.posix_madvise(a, 2 * PS, C.POSIX_MADV_DISCARD_NP) == 0
    assert p.posix_madvise(s, 2 * PS, C.POSIX_MADV_DISCARD_NP) == 0
    assert p.read_memory(a, 2 * PS) == b"keep" * (PS // 2)
    assert p.read_memory(s, 2 * PS) == b"mine" * (PS // 2)
    assert state(k) == before


@pytest.mark.parametrize("advice", ADVICE[:5])
def test_R_MADV_3_other_advice_changes_no_data_even_on_lazy_memory(advice: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2, flags=LAZY_ANON)
    p.write_memory(a, b"z" * PS)
    before = state(k)
    assert p.posix_madvise(a, 2 * PS, advice) == 0
    assert p.read_memory(a, PS) == b"z" * PS
    assert state(k) == before


def test_R_MADV_3_discard_on_lazy_private_file_mapping_drops_private_copies() -> None:
    """[SIM] SPEC's "read as zero" speaks of anonymous memory; for a lazy private mapping of
    a file the discarded private copies go and the pages show the file again (R-OBJ-4)."""
    k = kernel()
    k.create_file("/f", b"F" * (2 * PS))
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDONLY)
    a = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE | C.MAP_LAZY, fd, 0)
    p.write_memory(a, b"private")
    allocated = k.meminfo().allocated
    assert p.posix_madvise(a, 2 * PS, C.POSIX_MADV_DISCARD_NP) == 0
    assert k.meminfo().allocated == allocated - PS
    assert p.read_memory(a, 7) == b"FFFFFFF"
    k.check_invariants()


def test_R_MADV_1_a_zombie_caller_gets_esrch_returned() -> None:
    """R-CALL-1: posix_madvise returns its error number in both forms, whatever the error."""
    k = kernel()
    parent = k.spawn(image=False)
    child = parent.spawn(image=False)
    child.exit(0)
    assert child.posix_madvise(0x0800_0000, PS, C.POSIX_MADV_NORMAL) == qerrno.ESRCH
    assert child.libc.posix_madvise(0x0800_0000, PS, C.POSIX_MADV_NORMAL) == qerrno.ESRCH
    assert child.libc.errno == 0


def test_R_UNMAP_1_cut_at_addr_max_applies_to_msync_mlock_and_madvise() -> None:
    """R-UNMAP-1: ``len`` is first cut to ADDR_MAX - addr; at ADDR_MAX that leaves 0."""
    p = kernel().spawn(image=False)
    top = 2**64 - 1
    expect(qerrno.ENOMEM, "R-MSYNC-2", p.msync, top, PS, C.MS_SYNC)
    assert p.posix_madvise(top, PS, C.POSIX_MADV_NORMAL) == qerrno.EINVAL  # 8.0: len 0
    expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, top, PS)  # len 0 after the cut
