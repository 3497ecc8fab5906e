"""mlock, munlock, mlockall, munlockall (SPEC 10), msync's EBUSY (R-MSYNC-3), R-MMAP-19.

8.0 keeps no lock state: mlock only checks its range (R-LOCK-5), munlock returns 0
(R-LOCK-6), mlockall/munlockall do nothing (R-LOCK-3).  7.1 and 6.4 lock (R-LOCK-1..4).
A test that runs on every profile reads its expectation from the profile (SPEC 19):
``lock_state`` and ``memlock_errno``.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import ANON, LAZY_ANON, PS, RW, SHARED_ANON, anon
from support import expect_error as expect

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.abilities import NONROOT, ROOT, DomainEntry
from qnxsim.profile import Profile
from qnxsim.refmodel import KernelModel, Layout, ObjectModel

VERSIONS = ("8.0", "7.1", "6.4")
LOCKING = ("7.1", "6.4")  # the profiles with lock state (SPEC 19)


def kernel(version: str = "8.0") -> Kernel:
    """64 MiB on x86_64, whatever the version (6.4's default arch is x86)."""
    return Kernel(version=version, arch="x86_64", ram=64 << 20)


def state(k: Kernel) -> tuple[object, ...]:
    procs = tuple(
        (p.pid, p.mappings(), p.space.lock_future, p.space.locked_bytes,
         tuple(p.space.anon.pages))
        for p in k.processes()
    )  # fmt: skip
    return procs, k.meminfo()


def one_process(version: str, pages: int, uid: int = 0) -> tuple[Kernel, Process, int]:
    """A kernel of ``version`` with one process of ``uid`` that has ``pages`` read-write
    anonymous pages at the address returned."""
    k = kernel(version)
    p = k.spawn(uid=uid, image=False)
    return k, p, anon(p, pages)


def locked_pages(p: Process) -> set[int]:
    """Page addresses whose mapping record says ``locked`` (R-MAP-1)."""
    return {page for m in p.mappings() if m.locked for page in range(m.start, m.end, PS)}


def grant(p: Process, aid: int, subranges: tuple[tuple[int, int], ...] = ()) -> None:
    p.abilities.set(aid, NONROOT, DomainEntry(True, subranges))


# == every profile: the SPEC 19 rows, expectations from the profile ============================


def test_SPEC_19_lock_profile_data() -> None:
    """The values the tests below read: 8.0 has no lock state; 7.1 ENOMEM; 6.4 EAGAIN."""
    want = {"8.0": (False, True), "7.1": (True, False), "6.4": (True, False)}
    for version, (lock_state, noop) in want.items():
        profile = kernel(version).profile
        assert (profile.lock_state, profile.mlockall_noop) == (lock_state, noop)
    assert kernel("7.1").profile.memlock_errno == qerrno.ENOMEM
    assert kernel("6.4").profile.memlock_errno == qerrno.EAGAIN


#: What a call gives: ``(errno, the rule its reason cites)``, or None when it returns 0.
Outcome = tuple[int, str] | None


def refused_where_locking(rule: str, errno: int | None = None) -> Callable[[Profile], Outcome]:
    """7.1 and 6.4 refuse by ``rule`` with ``errno`` (None: the profile's RLIMIT_MEMLOCK
    errno, R-LOCK-1); 8.0, without lock state, returns 0 (R-LOCK-5, R-LOCK-6)."""

    def outcome(profile: Profile) -> Outcome:
        if not profile.lock_state:
            return None
        return (profile.memlock_errno if errno is None else errno), rule

    return outcome


def enomem_everywhere(profile: Profile) -> Outcome:
    """ENOMEM on every profile, by R-LOCK-1 where pages lock and R-LOCK-5 on 8.0."""
    return qerrno.ENOMEM, ("R-LOCK-1" if profile.lock_state else "R-LOCK-5")


def deny_mem_lock(p: Process, a: int) -> None:
    p.abilities.set(C.PROCMGR_AID_MEM_LOCK, NONROOT, DomainEntry(False))


@attrs.frozen
class LockCase:
    """``call`` (mlock or munlock) over each of ``ranges(a)`` in a process of ``uid`` with
    ``pages`` anonymous pages at ``a``, after ``prepare(p, a)``; ``outcome`` reads what
    every call gives from the profile."""

    call: str
    ranges: Callable[[int], list[tuple[int, int]]]
    outcome: Callable[[Profile], Outcome]
    pages: int = 1
    uid: int = 0
    prepare: Callable[[Process, int], object] = lambda p, a: None


LOCK_CASES = {
    "mlock_len_0": LockCase("mlock", lambda a: [(a, 0)], enomem_everywhere),
    "munlock_len_0": LockCase(
        "munlock", lambda a: [(a, 0)], refused_where_locking("R-LOCK-2", qerrno.ENOMEM)
    ),
    # over RLIMIT_MEMLOCK: ENOMEM on 7.1, EAGAIN on 6.4; 8.0 ignores the limit
    "over_rlimit_memlock": LockCase(
        "mlock", lambda a: [(a, 3 * PS)], refused_where_locking("R-LOCK-1"), pages=3,
        prepare=lambda p, a: p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS),
    ),
    # 7.1 needs PROCMGR_AID_MEM_LOCK, 6.4 euid 0; 8.0 checks no ability at all
    "without_privilege": LockCase(
        "mlock", lambda a: [(a, PS)], refused_where_locking("R-LOCK-1", qerrno.EPERM),
        uid=1000, prepare=deny_mem_lock,
    ),
    # a PROT_NONE page cannot be locked (R-LOCK-1) but is backed (R-LOCK-5)
    "over_prot_none": LockCase(
        "mlock", lambda a: [(a, 2 * PS)], refused_where_locking("R-LOCK-1", qerrno.ENOMEM),
        pages=2, prepare=lambda p, a: p.mprotect(a + PS, PS, C.PROT_NONE),
    ),
    # a hole in the middle, nothing mapped, running off the end, above USER_END (R-SYS-3)
    "mlock_unmapped": LockCase(
        "mlock",
        lambda a: [(a, 3 * PS), (a + 16 * PS, PS), (a + 2 * PS, 2 * PS), (0x7F_FFFF_F000, PS)],
        enomem_everywhere, pages=3, prepare=lambda p, a: p.munmap(a + PS, PS),
    ),
    # past the mapping, nothing mapped, len 0, and len 0 after the cut at ADDR_MAX
    "munlock_unmapped": LockCase(
        "munlock", lambda a: [(a, 3 * PS), (a + 8 * PS, PS), (0, 0), (2**64 - 1, 1)],
        refused_where_locking("R-LOCK-2", qerrno.ENOMEM), pages=2, uid=1000,
    ),
}  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", LOCK_CASES.values(), ids=LOCK_CASES.keys())
def test_R_LOCK_1_R_LOCK_2_R_LOCK_5_R_LOCK_6_outcome_is_the_profiles(
    version: str, case: LockCase
) -> None:
    """The same calls on every profile, each outcome read from the profile (SPEC 19):
    7.1 and 6.4 judge ranges and lock state (R-LOCK-1, R-LOCK-2); 8.0 only checks that
    mlock's range is mapped and backed (R-LOCK-5) and munlock returns 0 (R-LOCK-6).
    The Python method and libc agree, and nothing changes either way."""
    k, p, a = one_process(version, case.pages, uid=case.uid)
    case.prepare(p, a)
    outcome = case.outcome(k.profile)
    method, c_call = getattr(p, case.call), getattr(p.libc, case.call)
    before = state(k)
    for addr, length in case.ranges(a):
        if outcome is None:
            assert method(addr, length) == 0 and c_call(addr, length) == 0
        else:
            errno, rule = outcome
            expect(errno, rule, method, addr, length)
            assert c_call(addr, length) == -1 and p.libc.errno == errno
    assert state(k) == before


@pytest.mark.parametrize("version", VERSIONS)
def test_R_LOCK_7_records_lock_state_only_where_the_profile_has_it(version: str) -> None:
    k, p, a = one_process(version, 4)
    assert p.mlock(a + PS, 2 * PS) == 0
    want = {a + PS, a + 2 * PS} if k.profile.lock_state else set()
    assert locked_pages(p) == want
    assert p.space.locked_bytes == len(want) * PS
    assert p.munlock(a, 4 * PS) == 0
    assert not locked_pages(p)
    k.check_invariants()


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MSYNC_3_invalidate_over_a_locked_page(version: str) -> None:
    """EBUSY where pages can be locked; never on 8.0 (R-LOCK-7)."""
    k, p, a = one_process(version, 3)
    assert p.mlock(a + PS, PS) == 0
    before = state(k)
    if k.profile.lock_state:
        expect(qerrno.EBUSY, "R-MSYNC-3", p.msync, a, 3 * PS, C.MS_INVALIDATE)
        expect(qerrno.EBUSY, "R-MSYNC-3", p.msync, a + PS, 1, C.MS_INVALIDATE | C.MS_SYNC)
        assert state(k) == before
        # pages next to the locked one, and other flags over it, are fine
        assert p.msync(a, PS, C.MS_INVALIDATE) == 0
        assert p.msync(a + 2 * PS, PS, C.MS_INVALIDATE) == 0
        assert p.msync(a, 3 * PS, C.MS_SYNC) == 0
        p.munlock(a + PS, PS)
    assert p.msync(a, 3 * PS, C.MS_INVALIDATE) == 0
    assert p.msync(a + PS, 1, C.MS_INVALIDATE | C.MS_SYNC) == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MMAP_19_mcl_future_over_rlimit_memlock(version: str) -> None:
    """EAGAIN where MCL_FUTURE exists; it cannot fire on 8.0 (R-LOCK-7)."""
    k = kernel(version)
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, 3 * PS, 3 * PS)
    assert p.mlockall(C.MCL_FUTURE) == 0
    anon(p, 2)
    if k.profile.lock_state:
        before = state(k)
        expect(qerrno.EAGAIN, "R-MMAP-19", p.mmap, 0, 2 * PS, RW, ANON, C.NOFD, 0)
        assert p.libc.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0) == C.MAP_FAILED
        assert p.libc.errno == qerrno.EAGAIN
        assert state(k) == before
        anon(p, 1)  # exactly the limit
        assert len(locked_pages(p)) == 3
    else:
        anon(p, 8)
        assert not locked_pages(p) and not p.space.lock_future
    k.check_invariants()


@pytest.mark.parametrize("version", VERSIONS)
def test_R_LOCK_3_mlockall_and_munlockall(version: str) -> None:
    k, p, a = one_process(version, 2)
    if not k.profile.lock_state:
        before = state(k)
        for flags in (0, C.MCL_CURRENT, C.MCL_FUTURE, 3, 4, -1, 0x100):
            assert p.mlockall(flags) == 0 and p.libc.mlockall(flags) == 0
        assert p.munlockall() == 0 and p.libc.munlockall() == 0
        assert state(k) == before
        anon(p, 1)  # no MCL_FUTURE took effect
        assert not locked_pages(p)
        return
    expect(qerrno.EINVAL, "R-LOCK-3", p.mlockall, 0)
    assert p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE) == 0
    b = anon(p, 1, flags=SHARED_ANON)
    assert locked_pages(p) == {a, a + PS, b}
    assert p.munlockall() == 0
    assert not locked_pages(p)
    k.check_invariants()


# == 8.0: R-LOCK-5 (mapped and backed), R-LOCK-6, R-LOCK-7 ===================================


def test_R_LOCK_5_untouched_lazy_page_is_not_backed_and_the_check_touches_nothing() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 3, flags=LAZY_ANON)
    before = state(k)
    err = expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, a, 3 * PS)
    assert f"{a:#x}" in err.reason
    assert state(k) == before  # nothing allocated by the check
    p.write_memory(a + PS, b"x")  # touch the middle page
    assert p.mlock(a + PS, PS) == 0
    err = expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, a + PS, 2 * PS)
    assert f"{a + 2 * PS:#x}" in err.reason
    p.read_memory(a, PS)
    p.read_memory(a + 2 * PS, PS)
    before = state(k)
    assert p.mlock(a, 3 * PS) == 0
    assert state(k) == before and not locked_pages(p)


def test_R_LOCK_5_lazy_shared_objects_and_shmctl_lazy() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = anon(p, 2, flags=SHARED_ANON | C.MAP_LAZY)
    expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, a, 2 * PS)
    p.write_memory(a, b"x")
    assert p.mlock(a, PS) == 0
    expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, a, 2 * PS)
    fd = p.shm_open("/lazy", C.O_RDWR | C.O_CREAT, 0o600)
    p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, 2 * PS)
    for flags in (C.MAP_SHARED, C.MAP_PRIVATE):
        b = p.mmap(0, 2 * PS, RW, flags, fd, 0)
        expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, b, PS)
    b = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(b + PS, b"y")  # the object's second page gets its frame
    assert p.mlock(b + PS, PS) == 0
    c = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, fd, 0)
    assert p.mlock(c + PS, PS) == 0  # sees the object's frame
    expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, c, PS)
    k.check_invariants()


def test_R_LOCK_5_pages_wholly_past_the_object_end_are_not_backed() -> None:
    k = kernel()
    k.create_file("/f", b"F" * (PS + 1))  # two pages, the second partly
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDONLY)
    a = p.mmap(0, 4 * PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    assert p.mlock(a, 2 * PS) == 0  # the partial last page is backed
    err = expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, a, 3 * PS)
    assert f"{a + 2 * PS:#x}" in err.reason
    b = p.mmap(0, 2 * PS, C.PROT_READ, C.MAP_PRIVATE, fd, PS)  # starts at object page 1
    assert p.mlock(b, PS) == 0
    expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, b + PS, PS)


def test_R_LOCK_5_stack_guard_is_not_backed() -> None:
    k = kernel()
    p = k.spawn(image=False)
    s = p.mmap(0, 4 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    assert p.mlock(s + PS, 3 * PS) == 0
    err = expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, s, 2 * PS)
    assert f"{s:#x}" in err.reason
    expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, s + PS - 1, 2)  # widened onto the guard


def test_R_LOCK_5_phys_and_prot_none_are_backed() -> None:
    k = kernel()
    p = k.spawn(image=False)
    d = p.mmap(0, 2 * PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, 0xF000_0000)
    n = anon(p, 2, prot=C.PROT_NONE)
    assert p.mlock(d, 2 * PS) == 0 and p.mlock(n, 2 * PS) == 0


def test_R_LOCK_5_cut_at_addr_max_leaves_len_0() -> None:
    p = kernel().spawn(image=False)
    expect(qerrno.ENOMEM, "R-LOCK-5", p.mlock, 2**64 - 1, PS)


def test_R_LOCK_6_munlock_is_0_after_mlock_and_changes_nothing() -> None:
    k, p, a = one_process("8.0", 2)
    p.mlock(a, 2 * PS)
    before = state(k)
    assert p.munlock(a, PS) == 0 and p.munlock(a + 100 * PS, 5 * PS) == 0
    assert state(k) == before


def test_R_LOCK_7_fork_exec_and_mlockall_record_nothing() -> None:
    k, p, a = one_process("8.0", 2)
    p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE)
    p.mlock(a, 2 * PS)
    child = k.process(p.fork())
    assert not locked_pages(child) and not locked_pages(p)
    p.exec("/proc/boot/other")
    assert all(not m.locked for m in p.mappings())
    k.check_invariants()


# == 7.1 and 6.4: R-LOCK-1..4 ===================================================================


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_1_unaligned_range_is_widened_to_pages(version: str) -> None:
    p = kernel(version).spawn(image=False)
    a = anon(p, 3)
    assert p.mlock(a + PS - 1, 2) == 0  # the last byte of page 0 and the first of page 1
    assert locked_pages(p) == {a, a + PS}


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_1_records_split_and_say_locked(version: str) -> None:
    k, p, a = one_process(version, 4)
    assert p.mlock(a + PS, 2 * PS) == 0
    records = [(m.start, m.end, m.locked) for m in p.mappings()]
    assert records == [
        (a, a + PS, False),
        (a + PS, a + 3 * PS, True),
        (a + 3 * PS, a + 4 * PS, False),
    ]
    k.check_invariants()


def test_R_LOCK_1_root_with_mem_lock_denied_is_eperm() -> None:
    p = kernel("7.1").spawn(image=False)
    a = anon(p, 1)
    p.abilities.set(C.PROCMGR_AID_MEM_LOCK, ROOT, DomainEntry(False))
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)


def test_R_LOCK_1_6_4_is_euid_0_whatever_the_ability_table_says() -> None:
    k = kernel("6.4")
    p = k.spawn(image=False)
    a = anon(p, 1)
    p.abilities.set(C.PROCMGR_AID_MEM_LOCK, ROOT, DomainEntry(False))
    assert p.mlock(a, PS) == 0
    u = k.spawn(uid=1000, image=False)
    b = anon(u, 1)
    grant(u, C.PROCMGR_AID_MEM_LOCK)
    expect(qerrno.EPERM, "R-LOCK-1", u.mlock, b, PS)


def test_R_LOCK_1_granted_with_a_covering_vaddr_subrange() -> None:
    k, p, a = one_process("7.1", 4, uid=1000)
    grant(p, C.PROCMGR_AID_MEM_LOCK, ((a + PS, a + 3 * PS - 1),))
    assert p.mlock(a + PS, 2 * PS) == 0
    assert p.mlock(a + PS + 10, 20) == 0  # widened to one page, still inside
    assert locked_pages(p) == {a + PS, a + 2 * PS}
    before = state(k)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, 2 * PS)  # starts below the subrange
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a + 2 * PS, 2 * PS)  # ends above it
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a + 3 * PS - 1, 2)  # widened past its end
    assert state(k) == before
    k.check_invariants()


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_1_check_order(version: str) -> None:
    """len 0 first, then the ability, then the range, then PROT_NONE, then the limit."""
    k = kernel(version)
    u = k.spawn(uid=1000, image=False)
    expect(qerrno.ENOMEM, "R-LOCK-1", u.mlock, 0x1000_0000, 0)
    expect(qerrno.EPERM, "R-LOCK-1", u.mlock, 0x1000_0000, PS)  # unmapped, but EPERM first
    p = k.spawn(image=False)
    a = anon(p, 2, prot=C.PROT_NONE)
    p.setrlimit(C.RLIMIT_MEMLOCK, 0, 0)
    expect(qerrno.ENOMEM, "R-LOCK-1: [", p.mlock, a, 3 * PS)  # not wholly mapped
    err = expect(qerrno.ENOMEM, "R-LOCK-1", p.mlock, a, 2 * PS)
    assert "PROT_NONE" in err.reason


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_1_already_locked_pages_do_not_count_twice(version: str) -> None:
    k, p, a = one_process(version, 4)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    errno = k.profile.memlock_errno
    expect(errno, "R-LOCK-1", p.mlock, a, 3 * PS)
    assert p.mlock(a, 2 * PS) == 0  # exactly the limit
    assert p.mlock(a, 2 * PS) == 0
    assert p.mlock(a + PS, PS) == 0
    before = state(k)
    expect(errno, "R-LOCK-1", p.mlock, a + PS, 2 * PS)  # one new page is too many
    assert p.libc.mlock(a + PS, 2 * PS) == -1 and p.libc.errno == errno
    assert state(k) == before
    p.munlock(a, PS)
    assert p.mlock(a + 2 * PS, PS) == 0  # room again after munlock
    assert locked_pages(p) == {a + PS, a + 2 * PS}


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_2_munlock_needs_no_privilege_and_locks_do_not_nest(version: str) -> None:
    k, p, a = one_process(version, 2)
    for _ in range(3):
        p.mlock(a, 2 * PS)
    p.setuid(1000)  # non-root in every uid now
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)
    assert p.munlock(a, PS) == 0
    assert locked_pages(p) == {a + PS}
    assert p.libc.munlock(a + PS, PS) == 0
    assert not locked_pages(p)
    assert [m.locked for m in p.mappings()] == [False]  # merged again (R-MAP-2)
    k.check_invariants()


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_3_flags_before_the_ability(version: str) -> None:
    k = kernel(version)
    p = k.spawn(uid=1000, image=False)
    anon(p, 1)
    before = state(k)
    for flags in (0, 4, C.MCL_CURRENT | 4, 0x100, -1):
        expect(qerrno.EINVAL, "R-LOCK-3", p.mlockall, flags)
    for flags in (C.MCL_CURRENT, C.MCL_FUTURE, C.MCL_CURRENT | C.MCL_FUTURE):
        expect(qerrno.EPERM, "R-LOCK-3", p.mlockall, flags)
        assert p.libc.mlockall(flags) == -1 and p.libc.errno == qerrno.EPERM
    assert state(k) == before


def test_R_LOCK_3_granted_non_root_and_munlockall_needs_nothing() -> None:
    k = kernel("7.1")
    p = k.spawn(uid=1000, image=False)
    grant(p, C.PROCMGR_AID_MEM_LOCK)
    a = anon(p, 2)
    p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE)
    b = anon(p, 1)
    assert locked_pages(p) == {a, a + PS, b}
    p.abilities.set(C.PROCMGR_AID_MEM_LOCK, NONROOT, DomainEntry(False))
    assert p.munlockall() == 0
    assert not locked_pages(p)
    anon(p, 1)
    assert not locked_pages(p)  # MCL_FUTURE ended
    k.check_invariants()


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_3_mcl_current_skips_prot_none_and_obeys_the_limit(version: str) -> None:
    """[SIM] mlockall passes over PROT_NONE pages, and over RLIMIT_MEMLOCK fails with
    mlock's errno (the profile's, R-LOCK-1)."""
    k, p, a = one_process(version, 2)
    p.mprotect(a + PS, PS, C.PROT_NONE)
    anon(p, 2)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    before = state(k)
    expect(k.profile.memlock_errno, "R-LOCK-3", p.mlockall, C.MCL_CURRENT)
    assert state(k) == before
    p.setrlimit(C.RLIMIT_MEMLOCK, 3 * PS, 3 * PS)
    assert p.mlockall(C.MCL_CURRENT) == 0
    assert len(locked_pages(p)) == 3 and a + PS not in locked_pages(p)


def test_R_LOCK_3_mcl_future_applies_to_peer_made_mappings() -> None:
    """R-PEER-4: mlockall(MCL_FUTURE) is the target's."""
    k = kernel("7.1")
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    client.mlockall(C.MCL_FUTURE)
    peer = server.mmap_peer(client.pid, 0, PS, RW, ANON, C.NOFD, 0)
    anon(server, 1)
    assert locked_pages(client) == {peer}
    assert not locked_pages(server)


def test_R_MMAP_19_counts_only_what_mcl_future_locks() -> None:
    """[SIM] A stack guard and a PROT_NONE mapping are not locked by MCL_FUTURE, so they
    do not count against RLIMIT_MEMLOCK."""
    k = kernel("7.1")
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    p.mlockall(C.MCL_FUTURE)
    stack = p.mmap(0, 3 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    assert locked_pages(p) == {stack + PS, stack + 2 * PS}
    none = p.mmap(0, 3 * PS, C.PROT_NONE, ANON, C.NOFD, 0)
    assert none not in locked_pages(p)
    expect(qerrno.EAGAIN, "R-MMAP-19", p.mmap, 0, PS, C.PROT_READ, ANON, C.NOFD, 0)
    k.check_invariants()


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_4_munmap_and_map_fixed_drop_locks(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    a = anon(p, 2)
    p.mlock(a, 2 * PS)
    p.mmap(a, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)  # R-MMAP-F3 as munmap
    assert locked_pages(p) == {a + PS}
    p.munmap(a + PS, PS)
    assert not locked_pages(p) and p.space.locked_bytes == 0
    b = anon(p, 2)
    assert p.mlock(b, 2 * PS) == 0  # the old locks no longer count
    k.check_invariants()


@pytest.mark.parametrize("version", LOCKING)
def test_R_LOCK_4_exec_fork_and_spawn_drop_locks(version: str) -> None:
    k, p, a = one_process(version, 2)
    p.write_memory(a, b"locked data")
    p.mlock(a, 2 * PS)
    p.mlockall(C.MCL_FUTURE)
    child = k.process(p.fork())
    assert not locked_pages(child) and locked_pages(p) == {a, a + PS}
    assert child.read_memory(a, 11) == b"locked data"
    anon(child, 1)
    assert not locked_pages(child)  # MCL_FUTURE is not inherited
    spawned = p.spawn()
    assert spawned.mappings() and not locked_pages(spawned)
    p.exec("/proc/boot/other")
    assert not locked_pages(p) and p.space.locked_bytes == 0
    anon(p, 1)
    assert not locked_pages(p)  # exec ended MCL_FUTURE
    k.check_invariants()


# == properties ==================================================================================

PAGES = 12  # a small address space: a run of pages, each mapped one of several ways

#: How one page of the run is mapped: (flags, prot), or None for a hole.
PAGE_KINDS = st.sampled_from(
    [
        (ANON, RW),
        (LAZY_ANON, RW),
        (ANON, C.PROT_NONE),
        (SHARED_ANON | C.MAP_LAZY, RW),
        (SHARED_ANON, C.PROT_READ),
        None,
    ]
)


def build(version: str, kinds: list[tuple[int, int] | None], touched: list[bool]) -> tuple[
    Kernel, Process, int, KernelModel
]:  # fmt: skip
    """A process whose pages ``base + i*PS`` are mapped as ``kinds[i]``; touched pages
    read; and the reference model in the same state."""
    k = kernel(version)
    p = k.spawn(image=False)
    model = KernelModel(PS, layout=Layout.of(version, "x86_64"))
    model.spawn(p.pid, 0)
    base = 0x1000_0000
    for i, kind in enumerate(kinds):
        if kind is None:
            continue
        flags, prot = kind
        addr = base + i * PS
        p.mmap(addr, PS, prot, flags | C.MAP_FIXED, C.NOFD, 0)
        lazy = bool(flags & C.MAP_LAZY)
        if flags & C.MAP_TYPE == C.MAP_SHARED:
            obj = ObjectModel("shared-anon", PS, PS, lazy=lazy)
            model.map(p.pid, addr, PS, prot, "shared-anon", obj, 0, private=False,
                      noinherit=False, lazy=lazy)  # fmt: skip
        else:
            model.map(p.pid, addr, PS, prot, "anon", None, 0, private=True, noinherit=False,
                      lazy=lazy)  # fmt: skip
        if touched[i] and prot:
            assert p.read_memory(addr, 1) == model.read(p.pid, addr, 1)
    return k, p, base, model


#: The lock calls of the 7.1 / 6.4 property (mlockall's flags come from the range).
CALLS = ("mlock", "munlock", "mlock", "mlockall", "munlockall")
page_runs = st.lists(PAGE_KINDS, min_size=PAGES, max_size=PAGES)
touches = st.lists(st.booleans(), min_size=PAGES, max_size=PAGES)
ranges = st.tuples(st.integers(0, PAGES * PS), st.integers(0, 3 * PS))


@given(kinds=page_runs, touched=touches, rng=ranges)
def test_R_LOCK_5_property_a_range_is_fine_when_each_page_is_and_nothing_changes(
    kinds: list[tuple[int, int] | None], touched: list[bool], rng: tuple[int, int]
) -> None:
    """8.0: mlock of a range succeeds exactly when the reference model says so, and when
    mlock of each of its pages does; success or failure, neither mlock nor munlock
    (always 0) changes anything (R-LOCK-6, R-LOCK-7)."""
    k, p, base, model = build("8.0", kinds, touched)
    off, length = rng
    addr = base + off
    before = state(k)
    try:
        whole = p.mlock(addr, length) == 0
    except QnxError as err:
        assert err.errno == qerrno.ENOMEM and "R-LOCK-5" in err.reason
        whole = False
    assert whole == (model.mlock(p.pid, addr, length) is None)
    assert state(k) == before
    assert p.munlock(addr, length) == 0
    first = addr - addr % PS
    pages = range(first, addr + length, PS) if length else range(0)
    each = bool(pages) and all(p.libc.mlock(page, 1) == 0 for page in pages)
    assert whole == each
    assert state(k) == before
    k.check_invariants()


@pytest.mark.parametrize("version", LOCKING)
@given(
    kinds=page_runs,
    calls=st.lists(st.tuples(st.sampled_from(CALLS), ranges), max_size=8),
    limit=st.integers(0, PAGES),
    uid=st.sampled_from((0, 0, 1000)),
)
def test_R_LOCK_1_R_LOCK_2_R_LOCK_3_property_outcomes_are_the_models(
    version: str,
    kinds: list[tuple[int, int] | None],
    calls: list[tuple[str, tuple[int, int]]],
    limit: int,
    uid: int,
) -> None:
    """7.1 / 6.4: every mlock, munlock, mlockall and munlockall gives what the reference
    model predicts (the errno, or 0), a failing one changes nothing (R-CALL-5), the locked
    pages are the model's after each, and the locked total never passes RLIMIT_MEMLOCK;
    then a new mapping under MCL_FUTURE is locked or refused as the model says
    (R-MMAP-19)."""
    k, p, base, model = build(version, kinds, [False] * PAGES)
    p.setrlimit(C.RLIMIT_MEMLOCK, limit * PS, limit * PS)
    assert model.setrlimit(p.pid, C.RLIMIT_MEMLOCK, limit * PS, limit * PS) is None
    if uid:
        assert p.setuid(uid) == 0 and model.set_id(p.pid, "uid", uid, every=True) is None
    for name, (off, length) in calls:
        addr = base + off
        before = state(k)
        if name == "mlockall":
            flags = (off // PS) % 5  # MCL_CURRENT, MCL_FUTURE, both, and 0, 4 (invalid)
            got, want = p.libc.mlockall(flags), model.mlockall(p.pid, flags)
        elif name == "munlockall":
            got, want = p.libc.munlockall(), model.munlockall(p.pid)
        else:
            got = getattr(p.libc, name)(addr, length)
            want = getattr(model, name)(p.pid, addr, length)
        if want is None:
            assert got == 0, f"{name}: -1, errno {p.libc.errno}; the model says 0"
        else:
            assert (got, p.libc.errno) == (-1, want), f"{name}: {got}; the model says {want}"
            assert state(k) == before
        assert locked_pages(p) == model.locked_pages(p.pid)
        assert p.space.locked_bytes == model.locked_bytes(p.pid) <= limit * PS
    plan = model.plan_anon_mmap(p.pid, 0, 2 * PS, ANON, 0, RW)
    if plan.errno is None:
        assert plan.start is not None
        model.map(p.pid, plan.start, 2 * PS, RW, "anon", None, 0, private=True, noinherit=False)
        assert p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0) == plan.start
    else:
        assert plan.errno == qerrno.EAGAIN and plan.rule == "R-MMAP-19"
        expect(qerrno.EAGAIN, "R-MMAP-19", p.mmap, 0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert locked_pages(p) == model.locked_pages(p.pid)
    k.check_invariants()
