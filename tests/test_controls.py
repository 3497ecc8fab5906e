"""msync (SPEC 9), mlock/munlock/mlockall/munlockall (SPEC 10) and posix_madvise (SPEC 11).

Expectations come from SPEC.md: R-MSYNC-1..4, R-LOCK-1..4, R-MADV-1..3, with the 8.0
column of section 19.  The 7.1 behaviour of R-LOCK-3 is exercised by replacing the kernel's
profile with one whose ``mlockall_noop`` is False.
"""

from __future__ import annotations

import attrs
import pytest
from support import ANON, PS, RW, SHARED_ANON
from support import expect_error as expect

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.abilities import NONROOT, ROOT, DomainEntry

LAZY_ANON = ANON | C.MAP_LAZY
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


def kernel_71_locks() -> Kernel:
    """A kernel whose mlockall/munlockall follow R-LOCK-3 (the 7.1 column of SPEC 19)."""
    k = kernel()
    k.profile = attrs.evolve(k.profile, mlockall_noop=False)
    return k


def state(k: Kernel) -> tuple[object, ...]:
    return (
        tuple((p.pid, p.mappings(), p.space.lock_future) for p in k.processes()),
        k.meminfo(),
    )


def anon(p: Process, pages: int, prot: int = RW, flags: int = ANON) -> int:
    return p.mmap(0, pages * PS, prot, flags, C.NOFD, 0)


def locked_pages(p: Process) -> set[int]:
    """Page addresses whose mapping record says ``locked`` (R-MAP-1)."""
    return {
        page for m in p.mappings() if m.locked for page in range(m.start, m.end, PS)
    }  # fmt: skip


def grant(p: Process, aid: int, subranges: tuple[tuple[int, int], ...] = ()) -> None:
    p.abilities.set(aid, NONROOT, DomainEntry(True, subranges))


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


def test_R_MSYNC_3_invalidate_over_a_locked_page_is_ebusy() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 3)
    p.mlock(a + PS, PS)
    before = state(k)
    expect(qerrno.EBUSY, "R-MSYNC-3", p.msync, a, 3 * PS, C.MS_INVALIDATE)
    expect(qerrno.EBUSY, "R-MSYNC-3", p.msync, a + PS, 1, C.MS_INVALIDATE | C.MS_SYNC)
    assert state(k) == before
    # Pages next to the locked one, and other flags over it, are fine.
    assert p.msync(a, PS, C.MS_INVALIDATE) == 0
    assert p.msync(a + 2 * PS, PS, C.MS_INVALIDATE) == 0
    assert p.msync(a, 3 * PS, C.MS_SYNC) == 0
    assert p.msync(a, 3 * PS, C.MS_ASYNC | C.MS_INVALIDATE_ICACHE) == 0
    p.munlock(a + PS, PS)
    assert p.msync(a, 3 * PS, C.MS_INVALIDATE) == 0


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


# == mlock, munlock (R-LOCK-1, R-LOCK-2) =====================================================


def test_R_LOCK_1_root_may_mlock_and_the_record_says_locked() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 4)
    assert p.mlock(a + PS, 2 * PS) == 0
    assert locked_pages(p) == {a + PS, a + 2 * PS}
    records = [(m.start, m.end, m.locked) for m in p.mappings()]
    assert records == [
        (a, a + PS, False),
        (a + PS, a + 3 * PS, True),
        (a + 3 * PS, a + 4 * PS, False),
    ]
    k.check_invariants()


def test_R_LOCK_1_unaligned_range_is_widened_to_pages() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 3)
    assert p.mlock(a + PS - 1, 2) == 0  # touches the last byte of page 0 and first of page 1
    assert locked_pages(p) == {a, a + PS}


def test_R_LOCK_1_non_root_without_mem_lock_is_eperm() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    a = anon(p, 2)
    before = state(k)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)
    assert p.libc.mlock(a, PS) == -1 and p.libc.errno == qerrno.EPERM
    assert state(k) == before and not locked_pages(p)


def test_R_LOCK_1_root_with_mem_lock_denied_is_eperm() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 1)
    p.abilities.set(C.PROCMGR_AID_MEM_LOCK, ROOT, DomainEntry(False))
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)


def test_R_LOCK_1_granted_with_a_covering_vaddr_subrange() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    a = anon(p, 4)
    grant(p, C.PROCMGR_AID_MEM_LOCK, ((a + PS, a + 3 * PS - 1),))
    assert p.mlock(a + PS, 2 * PS) == 0
    assert p.mlock(a + PS + 10, 20) == 0  # widened to one page, still inside
    assert locked_pages(p) == {a + PS, a + 2 * PS}
    k.check_invariants()


def test_R_LOCK_1_subrange_that_does_not_cover_the_widened_range_is_eperm() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    a = anon(p, 4)
    grant(p, C.PROCMGR_AID_MEM_LOCK, ((a + PS, a + 3 * PS - 1),))
    before = state(k)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, 2 * PS)  # starts below the subrange
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a + 2 * PS, 2 * PS)  # ends above it
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a + 3 * PS - 1, 2)  # widened past its end
    assert p.mlock(a + 3 * PS - 1, 1) == 0  # widened to the subrange's last page: inside
    p.munlock(a, 4 * PS)
    assert state(k) == before


def test_R_LOCK_1_unmapped_range_is_enomem() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 3)
    p.munmap(a + PS, PS)
    before = state(k)
    expect(qerrno.ENOMEM, "R-LOCK-1", p.mlock, a, 3 * PS)  # hole in the middle
    expect(qerrno.ENOMEM, "R-LOCK-1", p.mlock, a + 16 * PS, PS)  # nothing mapped
    expect(qerrno.ENOMEM, "R-LOCK-1", p.mlock, a + 2 * PS, 2 * PS)  # runs off the end
    assert state(k) == before


def test_R_LOCK_1_ability_is_checked_before_the_range() -> None:
    p = kernel().spawn(uid=1000, image=False)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, 0x1000_0000, PS)


def test_R_LOCK_1_prot_none_page_is_enomem() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 3)
    p.mprotect(a + 2 * PS, PS, C.PROT_NONE)
    before = state(k)
    expect(qerrno.ENOMEM, "R-LOCK-1", p.mlock, a, 3 * PS)
    expect(qerrno.ENOMEM, "R-LOCK-1", p.mlock, a + 2 * PS, 1)
    assert state(k) == before
    assert p.mlock(a, 2 * PS) == 0  # the readable pages alone are fine


def test_R_LOCK_1_rlimit_memlock_is_eagain() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 4)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    expect(qerrno.EAGAIN, "R-LOCK-1", p.mlock, a, 3 * PS)
    assert p.mlock(a, 2 * PS) == 0  # exactly the limit
    assert p.mlock(a, 2 * PS) == 0  # already locked pages do not count twice
    assert p.mlock(a + PS, PS) == 0
    before = state(k)
    expect(qerrno.EAGAIN, "R-LOCK-1", p.mlock, a + PS, 2 * PS)  # one new page is too many
    assert state(k) == before
    p.munlock(a, PS)
    assert p.mlock(a + 2 * PS, PS) == 0  # room again after munlock
    assert locked_pages(p) == {a + PS, a + 2 * PS}


def test_R_LOCK_1_len_0_decision_succeeds_and_locks_nothing() -> None:
    """[SIM] SPEC 10 is silent on len 0; the simulator follows POSIX (nothing to lock)."""
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 1)
    assert p.mlock(a, 0) == 0 and p.munlock(a, 0) == 0
    assert not locked_pages(p)


def test_R_LOCK_2_munlock_needs_no_privilege() -> None:
    k = kernel()
    p = k.spawn(image=False)  # root
    a = anon(p, 2)
    p.mlock(a, 2 * PS)
    p.setuid(1000)  # now non-root in every uid: MEM_LOCK is denied (R-ABLE-3)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)
    assert p.munlock(a, PS) == 0
    assert locked_pages(p) == {a + PS}
    assert p.libc.munlock(a + PS, PS) == 0
    assert not locked_pages(p)
    k.check_invariants()


def test_R_LOCK_2_munlock_of_unmapped_range_is_enomem() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2)
    p.mlock(a, 2 * PS)
    before = state(k)
    expect(qerrno.ENOMEM, "R-LOCK-2", p.munlock, a, 3 * PS)
    expect(qerrno.ENOMEM, "R-LOCK-2", p.munlock, a + 8 * PS, PS)
    assert state(k) == before and locked_pages(p) == {a, a + PS}


def test_R_LOCK_2_locks_do_not_nest() -> None:
    p = kernel().spawn(image=False)
    a = anon(p, 2)
    for _ in range(3):
        p.mlock(a, 2 * PS)
    assert p.munlock(a, 2 * PS) == 0
    assert not locked_pages(p)
    assert [m.locked for m in p.mappings()] == [False]  # merged again (R-MAP-2)


def test_R_LOCK_2_munlock_of_unlocked_pages_succeeds() -> None:
    p = kernel().spawn(uid=1000, image=False)
    a = anon(p, 2)
    assert p.munlock(a, 2 * PS) == 0


# == mlockall, munlockall (R-LOCK-3) =========================================================


@pytest.mark.parametrize("flags", [0, C.MCL_CURRENT, C.MCL_FUTURE, 3, 4, -1, 0x100])
def test_R_LOCK_3_8_0_mlockall_returns_0_and_does_nothing(flags: int) -> None:
    k = kernel()
    assert k.profile.mlockall_noop
    p = k.spawn(image=False)
    n = k.spawn(uid=1000, image=False)
    for proc in (p, n):
        anon(proc, 2)
    before = state(k)
    assert p.mlockall(flags) == 0 and n.mlockall(flags) == 0
    assert p.libc.mlockall(flags) == 0 and n.libc.mlockall(flags) == 0
    assert state(k) == before
    anon(p, 1)  # no MCL_FUTURE took effect
    assert not locked_pages(p) and not locked_pages(n)


def test_R_LOCK_3_8_0_munlockall_returns_0_and_does_nothing() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2)
    p.mlock(a, PS)
    before = state(k)
    assert p.munlockall() == 0 and p.libc.munlockall() == 0
    assert state(k) == before and locked_pages(p) == {a}  # mlock's lock stays


@pytest.mark.parametrize("flags", [0, 4, C.MCL_CURRENT | 4, 0x100, -1])
def test_R_LOCK_3_7_1_bad_flags_are_einval(flags: int) -> None:
    k = kernel_71_locks()
    p = k.spawn(image=False)
    anon(p, 1)
    before = state(k)
    expect(qerrno.EINVAL, "R-LOCK-3", p.mlockall, flags)
    assert state(k) == before


def test_R_LOCK_3_7_1_flags_are_checked_before_the_ability() -> None:
    p = kernel_71_locks().spawn(uid=1000, image=False)
    expect(qerrno.EINVAL, "R-LOCK-3", p.mlockall, 0)


def test_R_LOCK_3_7_1_non_root_without_mem_lock_is_eperm() -> None:
    k = kernel_71_locks()
    p = k.spawn(uid=1000, image=False)
    anon(p, 1)
    before = state(k)
    for flags in (C.MCL_CURRENT, C.MCL_FUTURE, C.MCL_CURRENT | C.MCL_FUTURE):
        expect(qerrno.EPERM, "R-LOCK-3", p.mlockall, flags)
        assert p.libc.mlockall(flags) == -1 and p.libc.errno == qerrno.EPERM
    assert state(k) == before


def test_R_LOCK_3_7_1_granted_non_root_may_mlockall() -> None:
    p = kernel_71_locks().spawn(uid=1000, image=False)
    a = anon(p, 1)
    grant(p, C.PROCMGR_AID_MEM_LOCK)
    assert p.mlockall(C.MCL_CURRENT) == 0
    assert locked_pages(p) == {a}


def test_R_LOCK_3_7_1_mcl_current_locks_current_mappings_only() -> None:
    k = kernel_71_locks()
    p = k.spawn(image=False)
    a = anon(p, 2)
    b = anon(p, 1, flags=SHARED_ANON)
    assert p.mlockall(C.MCL_CURRENT) == 0
    assert locked_pages(p) == {a, a + PS, b}
    c = anon(p, 1)
    assert c not in locked_pages(p)
    k.check_invariants()


def test_R_LOCK_3_7_1_mcl_current_leaves_prot_none_pages_unlocked() -> None:
    """[SIM] PROT_NONE pages cannot be locked (R-LOCK-1); mlockall passes over them."""
    p = kernel_71_locks().spawn(image=False)
    a = anon(p, 2)
    p.mprotect(a + PS, PS, C.PROT_NONE)
    assert p.mlockall(C.MCL_CURRENT) == 0
    assert locked_pages(p) == {a}


def test_R_LOCK_3_7_1_mcl_future_locks_later_mappings() -> None:
    k = kernel_71_locks()
    p = k.spawn(image=False)
    a = anon(p, 1)
    assert p.mlockall(C.MCL_FUTURE) == 0
    assert not locked_pages(p)  # current mappings stay as they are
    b = anon(p, 2)
    c = anon(p, 1, flags=SHARED_ANON)
    assert locked_pages(p) == {b, b + PS, c}
    assert a not in locked_pages(p)
    k.check_invariants()


def test_R_LOCK_3_7_1_mcl_future_applies_to_peer_made_mappings() -> None:
    """R-PEER-4: mlockall(MCL_FUTURE) is the target's."""
    k = kernel_71_locks()
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    client.mlockall(C.MCL_FUTURE)
    peer = server.mmap_peer(client.pid, 0, PS, RW, ANON, C.NOFD, 0)
    own = anon(server, 1)
    assert locked_pages(client) == {peer}
    assert not locked_pages(server) and own


def test_R_LOCK_3_R_MMAP_19_mcl_future_over_rlimit_memlock_is_eagain() -> None:
    k = kernel_71_locks()
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, 3 * PS, 3 * PS)
    p.mlockall(C.MCL_FUTURE)
    anon(p, 2)
    before = state(k)
    expect(qerrno.EAGAIN, "R-MMAP-19", p.mmap, 0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert p.libc.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0) == C.MAP_FAILED
    assert p.libc.errno == qerrno.EAGAIN
    assert state(k) == before
    anon(p, 1)  # exactly the limit
    assert len(locked_pages(p)) == 3


def test_R_LOCK_3_7_1_mcl_current_over_rlimit_memlock_is_eagain() -> None:
    """[SIM] SPEC 10 gives mlockall no errno for the limit; the simulator uses mlock's."""
    k = kernel_71_locks()
    p = k.spawn(image=False)
    anon(p, 3)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    before = state(k)
    expect(qerrno.EAGAIN, "R-LOCK-3", p.mlockall, C.MCL_CURRENT)
    assert state(k) == before


def test_R_LOCK_3_7_1_munlockall_unlocks_everything_and_ends_mcl_future() -> None:
    k = kernel_71_locks()
    p = k.spawn(uid=1000, image=False)
    grant(p, C.PROCMGR_AID_MEM_LOCK)
    a = anon(p, 2)
    p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE)
    b = anon(p, 1)
    assert locked_pages(p) == {a, a + PS, b}
    p.abilities.set(C.PROCMGR_AID_MEM_LOCK, NONROOT, DomainEntry(False))
    assert p.munlockall() == 0  # needs no privilege, like munlock (R-LOCK-2)
    assert not locked_pages(p)
    anon(p, 1)
    assert not locked_pages(p)
    k.check_invariants()


# == R-LOCK-4: what drops locks =============================================================


def test_R_LOCK_4_munmap_drops_the_lock_and_its_rlimit_share() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, PS, PS)
    a = anon(p, 1)
    p.mlock(a, PS)
    p.munmap(a, PS)
    b = p.mmap(a, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert b == a and not locked_pages(p)
    assert p.mlock(b, PS) == 0  # the old lock no longer counts against RLIMIT_MEMLOCK
    k.check_invariants()


def test_R_LOCK_4_map_fixed_replacement_drops_the_lock() -> None:
    """R-MMAP-F3 removes replaced pages exactly as munmap would (R-UNMAP-5)."""
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2)
    p.mlock(a, 2 * PS)
    p.mmap(a, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert locked_pages(p) == {a + PS}
    k.check_invariants()


def test_R_LOCK_4_exec_drops_locks() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2)
    p.mlock(a, 2 * PS)
    assert p.exec("/proc/boot/other") == 0
    assert not locked_pages(p)
    assert p.space.locked_bytes == 0
    k.check_invariants()


def test_R_LOCK_4_exec_ends_mcl_future() -> None:
    k = kernel_71_locks()
    p = k.spawn(image=False)
    p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE)
    p.exec("/proc/boot/other")
    assert not locked_pages(p)  # the new image is not locked either
    anon(p, 1)
    assert not locked_pages(p)


def test_R_LOCK_4_fork_child_has_no_locks() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2)
    p.write_memory(a, b"locked data")
    p.mlock(a, 2 * PS)
    child = k.process(p.fork())
    assert [m.start for m in child.mappings()] == [a]
    assert not locked_pages(child)
    assert child.read_memory(a, 11) == b"locked data"
    assert locked_pages(p) == {a, a + PS}  # the parent keeps its locks
    k.check_invariants()


def test_R_LOCK_4_fork_child_does_not_inherit_mcl_future() -> None:
    k = kernel_71_locks()
    p = k.spawn(image=False)
    p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE)
    anon(p, 1)
    child = k.process(p.fork())
    assert not locked_pages(child)
    anon(child, 1)
    assert not locked_pages(child)


def test_R_LOCK_4_spawn_child_has_no_locks() -> None:
    k = kernel_71_locks()
    p = k.spawn(image=False)
    a = anon(p, 1)
    p.mlock(a, PS)
    p.mlockall(C.MCL_FUTURE)
    child = p.spawn()
    assert child.mappings() and not locked_pages(child)
    anon(child, 1)
    assert not locked_pages(child)


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
    assert p.mlock(top, PS) == 0 and p.munlock(top, PS) == 0  # [SIM] len 0: nothing to do


def test_R_MMAP_19_counts_only_what_mcl_future_locks() -> None:
    """A stack guard and a PROT_NONE mapping are not locked by MCL_FUTURE ([SIM], as
    R-LOCK-1 cannot lock PROT_NONE pages), so they do not count against RLIMIT_MEMLOCK."""
    k = kernel_71_locks()
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    p.mlockall(C.MCL_FUTURE)
    stack = p.mmap(0, 3 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)  # guard + two locked pages
    assert locked_pages(p) == {stack + PS, stack + 2 * PS}
    none = p.mmap(0, 3 * PS, C.PROT_NONE, ANON, C.NOFD, 0)
    assert none not in locked_pages(p)
    expect(qerrno.EAGAIN, "R-MMAP-19", p.mmap, 0, PS, C.PROT_READ, ANON, C.NOFD, 0)
    k.check_invariants()
