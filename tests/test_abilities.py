"""procmgr abilities (SPEC 16: R-ABLE-1..4) and the ability checks inside the memory calls.

Each memory call that SPEC ties to an ability is exercised with the ability denied, allowed,
and allowed with subranges that do and do not hold the checked range:
MEM_PEER (pid, R-PEER-3), MAP_FIXED (vaddr, R-MMAP-10), PROT_EXEC and
PROT_WRITE_AND_EXEC (vaddr, R-MMAP-9 and R-MPROT-3), MEM_PHYS (paddr, R-MMAP-11,
R-MMAP-22, R-MOFF-3, R-SHM-7), MEM_LOCK (vaddr, R-LOCK-1) and MEM_GLOBAL (R-SHM-7).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import ANON, PROGRAM_BASE, PS, RW, RX, R
from support import expect_error as expect

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.abilities import KNOWN_IDS, NONROOT, ROOT, Abilities, DomainEntry

RWX = RW | C.PROT_EXEC
DEVICE = 0xF000_0000  # R-SYS-5: device memory
NO_SUCH_PID = 99999

ADN_ROOT = C.PROCMGR_ADN_ROOT
ADN_NONROOT = C.PROCMGR_ADN_NONROOT
ALLOW = C.PROCMGR_AOP_ALLOW
DENY = C.PROCMGR_AOP_DENY
SUBRANGE = C.PROCMGR_AOP_SUBRANGE
LOCK = C.PROCMGR_AOP_LOCK
INHERIT_NO = C.PROCMGR_AOP_INHERIT_NO
INHERIT_YES = C.PROCMGR_AOP_INHERIT_YES

#: R-ABLE-3, verbatim: name, id, root allowed, nonroot allowed.
DEFAULTS = [
    ("PROCMGR_AID_MEM_ADD", 15, True, False),
    ("PROCMGR_AID_MEM_PHYS", 16, True, False),
    ("PROCMGR_AID_MEM_SPECIAL", 17, True, False),
    ("PROCMGR_AID_MEM_GLOBAL", 18, True, False),
    ("PROCMGR_AID_MEM_PEER", 19, True, False),
    ("PROCMGR_AID_MEM_LOCK", 20, True, False),
    ("PROCMGR_AID_PROT_EXEC", 23, True, True),
    ("PROCMGR_AID_MAP_FIXED", 39, True, True),
    ("PROCMGR_AID_PROT_WRITE_AND_EXEC", 53, True, True),
    ("PROCMGR_AID_XPROCESS_ABLE", 62, True, False),
]


def kernel() -> Kernel:
    return Kernel(ram=64 << 20)


def kernel_71() -> Kernel:
    """7.1: mlock checks PROCMGR_AID_MEM_LOCK (R-LOCK-1); 8.0's mlock checks none (R-LOCK-5)."""
    return Kernel(version="7.1", ram=64 << 20)


def state(k: Kernel) -> tuple[object, ...]:
    return (tuple((p.pid, p.mappings()) for p in k.processes()), k.meminfo())


def table(p: Process) -> dict[tuple[int, int], DomainEntry]:
    """Every known ability's entry in both domains: what procmgr_ability may change."""
    return {(aid, d): p.abilities.entry(aid, d) for aid in KNOWN_IDS for d in (ROOT, NONROOT)}


def put(
    p: Process, aid: int, domain: int, allowed: bool, subranges: tuple[tuple[int, int], ...] = ()
) -> None:
    p.abilities.set(aid, domain, DomainEntry(allowed, subranges))


def anon(p: Process, pages: int = 1, prot: int = RW) -> int:
    return p.mmap(0, pages * PS, prot, ANON, C.NOFD, 0)


def exe_file(k: Kernel, p: Process, path: str = "/lib/libx.so") -> int:
    k.create_file(path, b"\x7fELF" + bytes(2 * PS - 4), mode=0o755)
    return p.open(path, C.O_RDONLY)


# == R-ABLE-1: the domain is the current euid's =============================================


def test_R_ABLE_1_root_that_seteuids_loses_root_domain_mem_peer() -> None:
    k = kernel()
    p = k.spawn(image=False)  # root
    target = k.spawn(uid=2000, image=False)
    assert p.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    p.seteuid(1000)  # ruid and suid stay 0; the domain follows euid
    assert (p.ruid, p.euid, p.suid) == (0, 1000, 0)
    before = state(k)
    expect(qerrno.EPERM, "R-PEER-3", p.mmap_peer, target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert state(k) == before
    p.seteuid(0)
    assert p.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)


def test_R_ABLE_1_root_that_seteuids_loses_mem_lock_and_mem_phys() -> None:
    k = kernel_71()
    p = k.spawn(image=False)
    a = anon(p)
    p.seteuid(1000)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)
    expect(qerrno.EPERM, "R-MMAP-11", p.mmap, 0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, DEVICE)
    p.seteuid(0)
    assert p.mlock(a, PS) == 0
    assert p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, DEVICE)
    k.check_invariants()


def test_R_ABLE_1_domain_follows_euid_not_ruid() -> None:
    """Root's domain denied and nonroot's allowed: a root process may mlock only while
    its euid is not 0."""
    k = kernel_71()
    p = k.spawn(image=False)
    a = anon(p)
    put(p, C.PROCMGR_AID_MEM_LOCK, ROOT, False)
    put(p, C.PROCMGR_AID_MEM_LOCK, NONROOT, True)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)
    p.seteuid(1000)
    assert p.mlock(a, PS) == 0


def test_R_ABLE_1_setuid_to_non_root_keeps_only_the_nonroot_domain() -> None:
    k = kernel()
    p = k.spawn(image=False)
    target = k.spawn(uid=2000, image=False)
    p.setuid(1000)  # every uid is now 1000: the nonroot domain for good
    expect(qerrno.EPERM, "R-PEER-3", p.mmap_peer, target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert p.libc.seteuid(0) == -1 and p.libc.errno == qerrno.EPERM


# == R-ABLE-2: denied / allowed / subranges ==================================================


@pytest.mark.parametrize(
    ("entry", "lo", "hi", "ok"),
    [
        (DomainEntry(False), 5, 5, False),
        (DomainEntry(False, ((0, 100),)), 5, 5, False),  # subranges do not allow a denied one
        (DomainEntry(True), 5, 5, True),
        (DomainEntry(True), 0, 2**64 - 1, True),
        (DomainEntry(True, ((10, 20),)), 10, 20, True),
        (DomainEntry(True, ((10, 20),)), 15, 15, True),
        (DomainEntry(True, ((10, 20),)), 9, 15, False),
        (DomainEntry(True, ((10, 20),)), 15, 21, False),
        (DomainEntry(True, ((10, 20),)), 30, 30, False),
        (DomainEntry(True, ((10, 20), (21, 30))), 15, 25, False),  # must fit in one subrange
        (DomainEntry(True, ((10, 20), (0, 100))), 15, 25, True),
        (DomainEntry(True, ((10, 20), (21, 30))), 21, 30, True),
    ],
)
def test_R_ABLE_2_check(entry: DomainEntry, lo: int, hi: int, ok: bool) -> None:
    a = Abilities()
    a.set(C.PROCMGR_AID_MEM_LOCK, NONROOT, entry)
    assert a.check(C.PROCMGR_AID_MEM_LOCK, 1000, lo, hi) is ok
    assert a.check(C.PROCMGR_AID_MEM_LOCK, 0, lo, hi) is True  # the root domain is untouched


def test_R_ABLE_2_whole_range_must_lie_in_one_subrange_mlock() -> None:
    k = kernel_71()
    p = k.spawn(uid=1000, image=False)
    a = anon(p, 2)
    put(p, C.PROCMGR_AID_MEM_LOCK, NONROOT, True, ((a, a + PS - 1), (a + PS, a + 2 * PS - 1)))
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, 2 * PS)  # the union covers it; no one does
    assert p.mlock(a, PS) == 0
    assert p.mlock(a + PS, PS) == 0
    k.check_invariants()


def test_R_ABLE_2_denied_with_subranges_is_eperm() -> None:
    p = kernel_71().spawn(image=False)
    a = anon(p)
    put(p, C.PROCMGR_AID_MEM_LOCK, ROOT, False, ((0, 2**64 - 1),))
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a, PS)


# == R-ABLE-3: defaults ======================================================================


@pytest.mark.parametrize(("name", "aid", "root", "nonroot"), DEFAULTS, ids=[d[0] for d in DEFAULTS])
def test_R_ABLE_3_defaults(name: str, aid: int, root: bool, nonroot: bool) -> None:
    k = kernel()
    assert getattr(C, name) == aid  # SPEC 18: the ids of R-ABLE-3
    r = k.spawn(uid=0, image=False)
    n = k.spawn(uid=1000, image=False)
    for p in (r, n):
        assert p.abilities.entry(aid, ROOT) == DomainEntry(root)  # no subranges, unlocked
        assert p.abilities.entry(aid, NONROOT) == DomainEntry(nonroot)
    assert r.able(aid, 1, 1) is root and r.able(aid, 0, 2**64 - 1) is root
    assert n.able(aid, 1, 1) is nonroot and n.able(aid, 0, 2**64 - 1) is nonroot


def test_R_ABLE_3_non_root_defaults_in_the_memory_calls() -> None:
    """Nonroot: PROT_EXEC, WRITE_AND_EXEC and MAP_FIXED allowed; PHYS, LOCK, PEER denied."""
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    other = k.spawn(uid=2000, image=False)
    a = n.mmap(0, PS, RWX, ANON, C.NOFD, 0)
    assert n.mmap(a + 4 * PS, PS, RWX, ANON | C.MAP_FIXED, C.NOFD, 0) == a + 4 * PS
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap, 0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, DEVICE)
    assert not n.able(C.PROCMGR_AID_MEM_LOCK, a, a + PS - 1)  # mlock's, on 7.1 (R-LOCK-1)
    expect(qerrno.EPERM, "R-PEER-3", n.mmap_peer, other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    k.check_invariants()


# == R-ABLE-4: procmgr_ability ===============================================================


def test_R_ABLE_4_returns_errno_in_both_forms_and_leaves_libc_errno() -> None:
    p = kernel().spawn(uid=1000, image=False)
    p.libc.errno = qerrno.EINTR
    word = ADN_NONROOT | DENY | C.PROCMGR_AID_MAP_FIXED
    assert p.procmgr_ability(0, word) == 0
    assert p.libc.procmgr_ability(p.pid, word) == 0
    assert p.procmgr_ability(NO_SUCH_PID, word) == qerrno.ESRCH
    assert p.libc.procmgr_ability(NO_SUCH_PID, word) == qerrno.ESRCH
    assert p.libc.errno == qerrno.EINTR


def test_R_ABLE_4_pid_0_and_own_pid_are_the_caller() -> None:
    p = kernel().spawn(image=False)
    assert p.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_LOCK) == 0
    assert p.abilities.entry(C.PROCMGR_AID_MEM_LOCK, NONROOT).allowed
    assert p.procmgr_ability(p.pid, ADN_NONROOT | DENY | C.PROCMGR_AID_MEM_LOCK) == 0
    assert not p.abilities.entry(C.PROCMGR_AID_MEM_LOCK, NONROOT).allowed


@pytest.mark.parametrize("caller_uid", [0, 1000])
def test_R_ABLE_4_esrch_first_for_missing_and_zombie_pids(caller_uid: int) -> None:
    k = kernel()
    p = k.spawn(uid=caller_uid, image=False)
    parent = k.spawn(uid=1000, image=False)
    child = parent.spawn(image=False)
    child.exit(0)
    word = ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_PEER  # would be EPERM for non-root anyway
    assert p.procmgr_ability(NO_SUCH_PID, word) == qerrno.ESRCH
    assert p.procmgr_ability(child.pid, word) == qerrno.ESRCH


def test_R_ABLE_4_another_pid_needs_xprocess_able() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=1000, image=False)  # same uid: no uid rule for abilities
    before = table(target)
    word = ADN_NONROOT | DENY | C.PROCMGR_AID_MAP_FIXED  # a change p could make to itself
    assert p.procmgr_ability(target.pid, word) == qerrno.EPERM
    assert table(target) == before
    put(p, C.PROCMGR_AID_XPROCESS_ABLE, NONROOT, True, ((target.pid + 1, target.pid + 9),))
    assert p.procmgr_ability(target.pid, word) == qerrno.EPERM  # subrange excludes target
    put(p, C.PROCMGR_AID_XPROCESS_ABLE, NONROOT, True, ((target.pid, target.pid),))
    assert p.procmgr_ability(target.pid, word) == 0
    assert not target.abilities.entry(C.PROCMGR_AID_MAP_FIXED, NONROOT).allowed
    assert p.abilities.entry(C.PROCMGR_AID_MAP_FIXED, NONROOT).allowed  # caller unchanged


def test_R_ABLE_4_root_changes_another_process() -> None:
    k = kernel()
    root = k.spawn(image=False)
    n = k.spawn(uid=1000, image=False)
    other = k.spawn(uid=2000, image=False)
    word = ADN_NONROOT | ALLOW | SUBRANGE | C.PROCMGR_AID_MEM_PEER
    assert root.procmgr_ability(n.pid, word, other.pid, other.pid) == 0
    assert n.mmap_peer(other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    k.check_invariants()


def test_R_ABLE_4_locked_ability_cannot_change() -> None:
    k = kernel()
    p = k.spawn(image=False)
    aid = C.PROCMGR_AID_MEM_PEER
    assert p.procmgr_ability(0, ADN_NONROOT | DENY | LOCK | aid) == 0
    assert p.abilities.entry(aid, NONROOT) == DomainEntry(False, locked=True)
    before = table(p)
    for ops in (ALLOW, DENY, LOCK, INHERIT_NO, ALLOW | LOCK):
        assert p.procmgr_ability(0, ADN_NONROOT | ops | aid) == qerrno.EPERM  # even root
    assert p.procmgr_ability(0, ADN_NONROOT | SUBRANGE | aid, 1, 2) == qerrno.EPERM
    assert table(p) == before
    assert p.procmgr_ability(0, ADN_ROOT | DENY | aid) == 0  # the other domain is not locked


def test_R_ABLE_4_locked_by_another_process_blocks_the_owner_too() -> None:
    k = kernel()
    root = k.spawn(image=False)
    n = k.spawn(uid=1000, image=False)
    aid = C.PROCMGR_AID_MAP_FIXED
    assert root.procmgr_ability(n.pid, ADN_NONROOT | ALLOW | LOCK | aid) == 0
    assert n.procmgr_ability(0, ADN_NONROOT | DENY | aid) == qerrno.EPERM
    assert n.abilities.entry(aid, NONROOT).allowed


def test_R_ABLE_4_non_root_may_allow_only_what_it_holds() -> None:
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    before = table(n)
    assert n.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_PEER) == qerrno.EPERM
    assert n.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_PHYS) == qerrno.EPERM
    assert table(n) == before
    assert n.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_PROT_EXEC) == 0  # held
    assert n.procmgr_ability(0, ADN_NONROOT | DENY | C.PROCMGR_AID_PROT_EXEC) == 0
    # Once denied it is no longer held, so the caller cannot take it back.
    assert n.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_PROT_EXEC) == qerrno.EPERM
    assert not n.abilities.entry(C.PROCMGR_AID_PROT_EXEC, NONROOT).allowed


def test_R_ABLE_4_root_may_allow_anything_unlocked() -> None:
    k = kernel()
    p = k.spawn(image=False)
    other = k.spawn(uid=2000, image=False)
    assert p.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_PEER) == 0
    p.setuid(1000)  # nonroot from now on, with MEM_PEER allowed there
    assert p.mmap_peer(other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    k.check_invariants()


def test_R_ABLE_4_non_root_may_deny_subrange_and_lock() -> None:
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    # DENY: anonymous PROT_EXEC needs PROT_WRITE_AND_EXEC (R-MMAP-9).
    assert n.procmgr_ability(0, ADN_NONROOT | DENY | C.PROCMGR_AID_PROT_WRITE_AND_EXEC) == 0
    expect(qerrno.EPERM, "R-MMAP-9", n.mmap, 0, PS, RX, ANON, C.NOFD, 0)
    # SUBRANGE: MAP_FIXED only inside [lo, hi].
    lo, hi = 0x4000_0000, 0x4000_0000 + 4 * PS - 1
    assert n.procmgr_ability(0, ADN_NONROOT | SUBRANGE | C.PROCMGR_AID_MAP_FIXED, lo, hi) == 0
    assert n.mmap(lo, 4 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0) == lo
    expect(qerrno.EPERM, "R-MMAP-10", n.mmap, lo + PS, 4 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    # SUBRANGE on a denied ability does not allow it (R-ABLE-2).
    word = ADN_NONROOT | SUBRANGE | C.PROCMGR_AID_MEM_PHYS
    assert n.procmgr_ability(0, word, 0, 2**63) == 0
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap, 0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, DEVICE)
    # LOCK: no further change, not even the caller's own.
    assert n.procmgr_ability(0, ADN_NONROOT | LOCK | C.PROCMGR_AID_PROT_EXEC) == 0
    assert n.procmgr_ability(0, ADN_NONROOT | DENY | C.PROCMGR_AID_PROT_EXEC) == qerrno.EPERM
    k.check_invariants()


def test_R_ABLE_4_subrange_entries_accumulate() -> None:
    p = kernel().spawn(image=False)
    aid = C.PROCMGR_AID_MEM_PEER
    assert p.procmgr_ability(0, ADN_NONROOT | ALLOW | SUBRANGE | aid, 10, 20) == 0
    assert p.procmgr_ability(0, ADN_NONROOT | SUBRANGE | aid, 30, 40) == 0
    assert p.abilities.entry(aid, NONROOT).subranges == ((10, 20), (30, 40))
    p.seteuid(1000)
    assert [p.able(aid, v, v) for v in (15, 25, 35)] == [True, False, True]


def test_R_ABLE_4_both_domain_bits_change_both_domains() -> None:
    p = kernel().spawn(image=False)
    assert p.procmgr_ability(0, ADN_ROOT | ADN_NONROOT | DENY | C.PROCMGR_AID_MAP_FIXED) == 0
    assert not p.abilities.entry(C.PROCMGR_AID_MAP_FIXED, ROOT).allowed
    assert not p.abilities.entry(C.PROCMGR_AID_MAP_FIXED, NONROOT).allowed


def test_R_ABLE_4_eol_applies_to_every_unlocked_unlisted_ability() -> None:
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    assert n.procmgr_ability(0, ADN_NONROOT | LOCK | C.PROCMGR_AID_PROT_EXEC) == 0
    lo, hi = 0x4000_0000, 0x4000_0000 + 2 * PS - 1
    rc = n.procmgr_ability(
        0,
        ADN_NONROOT | SUBRANGE | C.PROCMGR_AID_MAP_FIXED,
        lo,
        hi,
        ADN_NONROOT | DENY | C.PROCMGR_AID_EOL,
    )
    assert rc == 0
    entry = n.abilities.entry
    assert entry(C.PROCMGR_AID_MAP_FIXED, NONROOT) == DomainEntry(True, ((lo, hi),))  # listed
    assert entry(C.PROCMGR_AID_PROT_EXEC, NONROOT) == DomainEntry(True, locked=True)  # locked
    assert not entry(C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT).allowed  # unlisted: denied
    for aid in KNOWN_IDS:
        if aid not in (C.PROCMGR_AID_MAP_FIXED, C.PROCMGR_AID_PROT_EXEC):
            assert not entry(aid, NONROOT).allowed, aid
        assert entry(aid, ROOT) == DomainEntry(True), aid  # root domain untouched
    assert n.mmap(lo, 2 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0) == lo
    expect(qerrno.EPERM, "R-MMAP-9", n.mmap, 0, PS, RX, ANON, C.NOFD, 0)
    k.check_invariants()


def test_R_ABLE_4_eol_by_root_allows_every_unlocked_ability() -> None:
    p = kernel().spawn(image=False)
    assert p.procmgr_ability(0, ADN_NONROOT | DENY | LOCK | C.PROCMGR_AID_MEM_PEER) == 0
    assert p.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_EOL) == 0
    for aid in KNOWN_IDS:
        assert p.abilities.entry(aid, NONROOT).allowed is (aid != C.PROCMGR_AID_MEM_PEER), aid


def test_R_ABLE_4_inherit_no_is_not_inherited_by_spawn_but_fork_copies() -> None:
    k = kernel()
    p = k.spawn(image=False)
    other = k.spawn(uid=2000, image=False)
    assert p.procmgr_ability(0, ADN_NONROOT | ALLOW | INHERIT_NO | C.PROCMGR_AID_MEM_PEER) == 0
    assert p.procmgr_ability(0, ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_LOCK) == 0
    assert p.procmgr_ability(0, ADN_NONROOT | DENY | INHERIT_NO | C.PROCMGR_AID_MAP_FIXED) == 0
    spawned = p.spawn(image=False)
    forked = k.process(p.fork())
    for child in (spawned, forked):
        child.setuid(1000)
    # spawn: INHERIT_NO entries fall back to the R-ABLE-3 defaults; the others are inherited.
    assert not spawned.abilities.entry(C.PROCMGR_AID_MEM_PEER, NONROOT).allowed
    assert spawned.abilities.entry(C.PROCMGR_AID_MAP_FIXED, NONROOT).allowed
    assert spawned.abilities.entry(C.PROCMGR_AID_MEM_LOCK, NONROOT).allowed
    expect(qerrno.EPERM, "R-PEER-3", spawned.mmap_peer, other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    # fork copies the whole table.
    assert forked.abilities.entry(C.PROCMGR_AID_MEM_PEER, NONROOT).allowed
    assert not forked.abilities.entry(C.PROCMGR_AID_MAP_FIXED, NONROOT).allowed
    assert forked.mmap_peer(other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    # Kernel.spawn with a parent follows the same inherit flags.
    again = k.spawn(uid=1000, parent=p, image=False)
    assert not again.abilities.entry(C.PROCMGR_AID_MEM_PEER, NONROOT).allowed
    assert again.abilities.entry(C.PROCMGR_AID_MEM_LOCK, NONROOT).allowed
    k.check_invariants()


def test_R_ABLE_4_inherit_yes_restores_inheritance() -> None:
    k = kernel()
    p = k.spawn(image=False)
    aid = C.PROCMGR_AID_MEM_PEER
    assert p.procmgr_ability(0, ADN_NONROOT | ALLOW | INHERIT_NO | aid) == 0
    assert p.procmgr_ability(0, ADN_NONROOT | INHERIT_YES | aid) == 0
    assert p.spawn(image=False).abilities.entry(aid, NONROOT).allowed


def test_R_ABLE_4_a_refused_call_changes_nothing() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert p.procmgr_ability(0, ADN_NONROOT | DENY | LOCK | C.PROCMGR_AID_MEM_LOCK) == 0
    before = table(p)
    rc = p.procmgr_ability(
        0,
        ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_PEER,  # fine on its own
        ADN_ROOT | DENY | C.PROCMGR_AID_MAP_FIXED,  # fine on its own
        ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_LOCK,  # locked: refused
    )
    assert rc == qerrno.EPERM
    assert table(p) == before
    n = k.spawn(uid=1000, image=False)
    before = table(n)
    rc = n.procmgr_ability(
        0,
        ADN_NONROOT | DENY | C.PROCMGR_AID_PROT_EXEC,
        ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_PHYS,  # not held: refused
    )
    assert rc == qerrno.EPERM
    assert table(n) == before


def test_R_ABLE_4_an_eol_refusal_changes_nothing() -> None:
    """A non-root EOL ALLOW reaches abilities it does not hold: the whole call is refused."""
    n = kernel().spawn(uid=1000, image=False)
    before = table(n)
    rc = n.procmgr_ability(
        0, ADN_NONROOT | DENY | C.PROCMGR_AID_PROT_EXEC, ADN_NONROOT | ALLOW | C.PROCMGR_AID_EOL
    )
    assert rc == qerrno.EPERM
    assert table(n) == before


def test_R_ABLE_4_bare_eol_only_ends_the_list() -> None:
    """The usual C call ``procmgr_ability(pid, entry, PROCMGR_AID_EOL)`` works."""
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    before = table(n)
    assert (
        n.procmgr_ability(0, ADN_NONROOT | DENY | C.PROCMGR_AID_MAP_FIXED, C.PROCMGR_AID_EOL) == 0
    )
    assert n.libc.procmgr_ability(0, C.PROCMGR_AID_EOL) == 0 and n.libc.errno == 0
    changed = {key for key, entry in table(n).items() if before[key] != entry}
    assert changed == {(C.PROCMGR_AID_MAP_FIXED, NONROOT)}  # nothing else, not even by EOL
    expect(qerrno.EPERM, "R-MMAP-10", n.mmap, 0x4000_0000, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)


def test_R_ABLE_4_arguments_after_eol_are_ignored() -> None:
    n = kernel().spawn(uid=1000, image=False)
    before = table(n)
    rc = n.procmgr_ability(
        0,
        C.PROCMGR_AID_EOL,
        ADN_NONROOT | DENY | C.PROCMGR_AID_MAP_FIXED,  # after the end: ignored
        0xDEAD_0000,  # not even a valid word: ignored
    )
    assert rc == 0 and table(n) == before
    rc = n.procmgr_ability(
        0, ADN_NONROOT | DENY | C.PROCMGR_AID_EOL, ADN_NONROOT | ALLOW | C.PROCMGR_AID_MEM_PHYS
    )
    assert rc == 0  # the EOL entry applies, the refused ALLOW after it never runs
    assert not any(e.allowed for (aid, d), e in table(n).items() if d == NONROOT)


def test_R_ABLE_4_entry_or_eol_with_operations_but_no_domain_is_einval() -> None:
    n = kernel().spawn(uid=1000, image=False)
    before = table(n)
    for words in (
        (DENY | C.PROCMGR_AID_MAP_FIXED,),
        (DENY | C.PROCMGR_AID_EOL,),
        (ADN_NONROOT | DENY | C.PROCMGR_AID_MAP_FIXED, LOCK | C.PROCMGR_AID_EOL),
    ):
        assert n.procmgr_ability(0, *words) == qerrno.EINVAL, words
        assert n.libc.procmgr_ability(0, *words) == qerrno.EINVAL
    assert table(n) == before  # R-CALL-5


def test_R_ABLE_4_eol_with_domain_but_no_operation_changes_nothing() -> None:
    n = kernel().spawn(uid=1000, image=False)
    before = table(n)
    assert n.procmgr_ability(0, ADN_NONROOT | ADN_ROOT | C.PROCMGR_AID_EOL) == 0
    assert table(n) == before


ABILITY_IDS = st.sampled_from([aid for _, aid, _, _ in DEFAULTS])
WORDS = st.builds(
    lambda aid, op, dom: aid | op | dom,
    ABILITY_IDS,
    st.sampled_from([DENY, ALLOW, LOCK, INHERIT_NO, DENY | LOCK]),
    st.sampled_from([ADN_ROOT, ADN_NONROOT, ADN_ROOT | ADN_NONROOT]),
)


@given(
    head=st.lists(WORDS, max_size=4),
    tail=st.lists(st.one_of(WORDS, st.integers(0, 2**32 - 1)), max_size=4),
    uid=st.sampled_from([0, 1000]),
)
def test_R_ABLE_4_property_the_list_ends_at_the_first_bare_eol(
    head: list[int], tail: list[int], uid: int
) -> None:
    """Whatever follows a bare PROCMGR_AID_EOL, the call does what the entries before it
    do alone: same result, same table; a refused call changes nothing (R-CALL-5)."""
    k = kernel()
    alone = k.spawn(uid=uid, image=False)
    ended = k.spawn(uid=uid, image=False)
    before = table(alone)
    rc = alone.procmgr_ability(0, *head)
    assert ended.procmgr_ability(0, *head, C.PROCMGR_AID_EOL, *tail) == rc
    assert table(ended) == table(alone)
    if rc:
        assert table(alone) == before


# == Ability checks inside memory calls ======================================================


def test_R_PEER_3_mem_peer_pid_subrange() -> None:
    k = kernel()
    n = k.spawn(uid=2000, image=False)
    target = k.spawn(uid=1000, image=False)
    put(n, C.PROCMGR_AID_MEM_PEER, NONROOT, True, ((target.pid + 1, target.pid + 10),))
    before = state(k)
    expect(qerrno.EPERM, "R-PEER-3", n.mmap_peer, target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    expect(qerrno.EPERM, "R-PEER-3", n.munmap_peer, target.pid, PROGRAM_BASE, PS)
    assert state(k) == before
    put(n, C.PROCMGR_AID_MEM_PEER, NONROOT, True, ((target.pid - 1, target.pid + 1),))
    a = n.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(a) is not None
    assert n.munmap_peer(target.pid, a, PS) == 0
    k.check_invariants()


def test_R_MMAP_10_map_fixed_denied_is_eperm() -> None:
    k = kernel()
    p = k.spawn(image=False)
    put(p, C.PROCMGR_AID_MAP_FIXED, ROOT, False)
    before = state(k)
    expect(qerrno.EPERM, "R-MMAP-10", p.mmap, PROGRAM_BASE, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert state(k) == before
    assert p.mmap(PROGRAM_BASE, PS, RW, ANON, C.NOFD, 0) == PROGRAM_BASE  # a hint is fine


def test_R_MMAP_10_map_fixed_vaddr_subrange() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    base = 0x4000_0000
    put(p, C.PROCMGR_AID_MAP_FIXED, NONROOT, True, ((base, base + 2 * PS - 1),))
    fixed = ANON | C.MAP_FIXED
    before = state(k)
    expect(qerrno.EPERM, "R-MMAP-10", p.mmap, base, 3 * PS, RW, fixed, C.NOFD, 0)
    expect(qerrno.EPERM, "R-MMAP-10", p.mmap, base + PS, 2 * PS, RW, fixed, C.NOFD, 0)
    expect(qerrno.EPERM, "R-MMAP-10", p.mmap, base - PS, PS, RW, fixed, C.NOFD, 0)
    assert state(k) == before
    assert p.mmap(base, 2 * PS, RW, fixed, C.NOFD, 0) == base
    assert p.mmap(base + PS, PS, RW, fixed, C.NOFD, 0) == base + PS  # replacing, inside
    k.check_invariants()


def test_R_MMAP_9_file_backed_read_exec_needs_prot_exec_only() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    fd = exe_file(k, p)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, False)
    a = p.mmap(0, 2 * PS, RX, C.MAP_PRIVATE, fd, 0)
    assert p.mapping_at(a).prot == RX
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, True)
    put(p, C.PROCMGR_AID_PROT_EXEC, NONROOT, False)
    before = state(k)
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, 2 * PS, RX, C.MAP_PRIVATE, fd, 0)
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, PS, C.PROT_EXEC, C.MAP_SHARED, fd, 0)
    assert state(k) == before
    k.check_invariants()


def test_R_MMAP_9_shm_read_exec_needs_prot_exec() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/code", C.O_RDWR | C.O_CREAT, 0o700)
    p.ftruncate(fd, PS)
    put(p, C.PROCMGR_AID_PROT_EXEC, ROOT, False)
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, PS, RX, C.MAP_SHARED, fd, 0)
    put(p, C.PROCMGR_AID_PROT_EXEC, ROOT, True)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, False)
    assert p.mmap(0, PS, RX, C.MAP_SHARED, fd, 0)


def test_R_MMAP_9_file_backed_writable_exec_needs_write_and_exec() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    fd = exe_file(k, p)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, False)  # PROT_EXEC stays allowed
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, PS, RWX, C.MAP_PRIVATE, fd, 0)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, True)
    put(p, C.PROCMGR_AID_PROT_EXEC, NONROOT, False)  # not what W+X needs
    assert p.mmap(0, PS, RWX, C.MAP_PRIVATE, fd, 0)


@pytest.mark.parametrize("prot", [RX, C.PROT_EXEC, RWX])
def test_R_MMAP_9_anonymous_exec_needs_write_and_exec(prot: int) -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    put(p, C.PROCMGR_AID_PROT_EXEC, NONROOT, False)  # not what anonymous memory needs
    a = p.mmap(0, PS, prot, ANON, C.NOFD, 0)
    b = p.mmap(0, PS, prot, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    assert a and b
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, False)
    before = state(k)
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, PS, prot, ANON, C.NOFD, 0)
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, PS, prot, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    assert state(k) == before


def test_R_MMAP_9_map_phys_exec_needs_write_and_exec() -> None:
    """MAP_PHYS has fd == NOFD, so it is the "otherwise" case of R-MMAP-9."""
    k = kernel()
    p = k.spawn(image=False)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, False)
    flags = C.MAP_SHARED | C.MAP_PHYS
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, PS, RX, flags, C.NOFD, DEVICE)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, True)
    put(p, C.PROCMGR_AID_PROT_EXEC, ROOT, False)
    assert p.mmap(0, PS, RX, flags, C.NOFD, DEVICE)


def test_R_MMAP_9_checked_against_the_final_placement() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    aid = C.PROCMGR_AID_PROT_WRITE_AND_EXEC
    put(p, aid, NONROOT, True, ((PROGRAM_BASE, PROGRAM_BASE + PS - 1),))
    assert p.mmap(0, PS, RX, ANON, C.NOFD, 0) == PROGRAM_BASE  # R-PLACE-1: PROGRAM_BASE
    before = state(k)
    err = expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0, PS, RX, ANON, C.NOFD, 0)
    assert hex(PROGRAM_BASE + PS) in err.reason  # the place it would have had
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, 0x2000_0000, PS, RX, ANON, C.NOFD, 0)
    assert state(k) == before
    assert p.mmap(0, PS, RW, ANON, C.NOFD, 0) == PROGRAM_BASE + PS  # no exec: no check
    k.check_invariants()


def test_R_MMAP_9_before_R_MMAP_10() -> None:
    p = kernel().spawn(image=False)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, False)
    put(p, C.PROCMGR_AID_MAP_FIXED, ROOT, False)
    expect(qerrno.EPERM, "R-MMAP-9", p.mmap, PROGRAM_BASE, PS, RX, ANON | C.MAP_FIXED, C.NOFD, 0)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, True)
    expect(qerrno.EPERM, "R-MMAP-10", p.mmap, PROGRAM_BASE, PS, RX, ANON | C.MAP_FIXED, C.NOFD, 0)


def test_R_PEER_4_exec_and_fixed_abilities_are_the_callers() -> None:
    k = kernel()
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    put(server, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, False)
    put(server, C.PROCMGR_AID_MAP_FIXED, ROOT, False)
    put(client, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, True)
    before = state(k)
    expect(qerrno.EPERM, "R-MMAP-9", server.mmap_peer, client.pid, 0, PS, RX, ANON, C.NOFD, 0)
    expect(
        qerrno.EPERM, "R-MMAP-10",
        server.mmap_peer, client.pid, PROGRAM_BASE, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0,
    )  # fmt: skip
    assert state(k) == before
    assert client.mmap_peer(server.pid, 0, PS, RX, ANON, C.NOFD, 0)  # the other way round


def test_R_MPROT_3_anonymous_exec_needs_write_and_exec() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    put(p, C.PROCMGR_AID_PROT_EXEC, NONROOT, False)
    assert p.mprotect(a, PS, RX) == 0
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, False)
    put(p, C.PROCMGR_AID_PROT_EXEC, NONROOT, True)
    before = state(k)
    expect(qerrno.EPERM, "R-MPROT-3", p.mprotect, a, 2 * PS, RX)
    expect(qerrno.EPERM, "R-MPROT-3", p.mprotect, a + PS, PS, C.PROT_EXEC)
    assert state(k) == before
    assert p.mprotect(a, 2 * PS, R) == 0


def test_R_MPROT_3_file_mapping_read_exec_needs_prot_exec() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    fd = exe_file(k, p)
    a = p.mmap(0, 2 * PS, R, C.MAP_PRIVATE, fd, 0)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, False)
    assert p.mprotect(a, PS, RX) == 0  # read+exec of a file: PROT_EXEC
    expect(qerrno.EPERM, "R-MPROT-3", p.mprotect, a, PS, RWX)  # writable: W+X
    put(p, C.PROCMGR_AID_PROT_EXEC, NONROOT, False)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, True)
    before = state(k)
    expect(qerrno.EPERM, "R-MPROT-3", p.mprotect, a + PS, PS, RX)
    assert state(k) == before
    assert p.mprotect(a + PS, PS, RWX) == 0


def test_R_MPROT_3_image_text_counts_as_a_file_mapping() -> None:
    k = kernel()
    p = k.spawn(uid=1000)  # image=True: text r-x at PROGRAM_BASE (R-PROC-1)
    assert p.mapping_at(PROGRAM_BASE).prot == RX
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, False)
    assert p.mprotect(PROGRAM_BASE, PS, R) == 0
    assert p.mprotect(PROGRAM_BASE, PS, RX) == 0
    expect(qerrno.EPERM, "R-MPROT-3", p.mprotect, PROGRAM_BASE, PS, RWX)


def test_R_MPROT_3_vaddr_subrange() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    put(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT, True, ((a + PS, a + 2 * PS - 1),))
    assert p.mprotect(a + PS, PS, RX) == 0
    before = state(k)
    expect(qerrno.EPERM, "R-MPROT-3", p.mprotect, a, 2 * PS, RX)
    assert state(k) == before


def test_R_MMAP_11_map_phys_needs_mem_phys_for_the_paddr_range() -> None:
    k = kernel()
    root = k.spawn(image=False)
    n = k.spawn(uid=1000, image=False)
    flags = C.MAP_SHARED | C.MAP_PHYS
    assert root.mmap(0, PS, RW, flags, C.NOFD, DEVICE)
    before = state(k)
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap, 0, PS, RW, flags, C.NOFD, DEVICE)
    put(n, C.PROCMGR_AID_MEM_PHYS, NONROOT, True, ((DEVICE, DEVICE + 2 * PS - 1),))
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap, 0, 2 * PS, RW, flags, C.NOFD, DEVICE + PS)
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap, 0, PS, RW, flags, C.NOFD, DEVICE - PS)
    assert state(k) == before
    a = n.mmap(0, 2 * PS, RW, flags, C.NOFD, DEVICE)
    root_view = root.mmap(0, PS, RW, flags, C.NOFD, DEVICE + PS)
    n.write_memory(a + PS, b"device")
    assert root.read_memory(root_view, 6) == b"device"  # R-SYS-5: the same frame
    k.check_invariants()


def test_R_MMAP_11_anonymous_map_phys_needs_no_mem_phys() -> None:
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    assert n.mmap(0, 2 * PS, RW, ANON | C.MAP_PHYS, C.NOFD, 0)  # R-MMAP-24: contiguous RAM
    k.check_invariants()


def test_R_MMAP_22_dev_mem_needs_mem_phys() -> None:
    k = kernel()
    root = k.spawn(image=False)
    n = k.spawn(uid=1000, image=False)
    fd_root = root.open("/dev/mem", C.O_RDWR)
    assert root.mmap(0, PS, RW, C.MAP_SHARED, fd_root, DEVICE)
    fd = n.open("/dev/mem", C.O_RDWR)
    before = state(k)
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap, 0, PS, RW, C.MAP_SHARED, fd, DEVICE)
    assert state(k) == before
    put(n, C.PROCMGR_AID_MEM_PHYS, NONROOT, True, ((DEVICE, DEVICE + PS - 1),))
    assert n.mmap(0, PS, RW, C.MAP_SHARED, fd, DEVICE)
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap, 0, PS, RW, C.MAP_SHARED, fd, DEVICE + PS)
    k.check_invariants()


def test_R_MOFF_3_mmap_device_memory_needs_mem_phys() -> None:
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    expect(qerrno.EPERM, "R-MMAP-11", n.mmap_device_memory, 0, PS, RW, 0, DEVICE)
    assert n.libc.mmap_device_memory(0, PS, RW, 0, DEVICE) == C.MAP_FAILED
    assert n.libc.errno == qerrno.EPERM
    put(n, C.PROCMGR_AID_MEM_PHYS, NONROOT, True)
    assert n.mmap_device_memory(0, PS, RW, 0, DEVICE)


def test_R_SHM_7_shmctl_phys_needs_mem_phys() -> None:
    k = kernel()
    n = k.spawn(uid=1000, image=False)
    fd = n.shm_open("/regs", C.O_RDWR | C.O_CREAT, 0o600)
    expect(qerrno.EPERM, "R-SHM-7", n.shm_ctl, fd, C.SHMCTL_PHYS, DEVICE, PS)
    put(n, C.PROCMGR_AID_MEM_PHYS, NONROOT, True, ((DEVICE + PS, DEVICE + 4 * PS - 1),))
    expect(qerrno.EPERM, "R-SHM-7", n.shm_ctl, fd, C.SHMCTL_PHYS, DEVICE, 2 * PS)
    assert n.shm_ctl(fd, C.SHMCTL_PHYS, DEVICE + PS, 2 * PS) == 0
    k.check_invariants()


def test_R_SHM_7_shmctl_global_needs_mem_global() -> None:
    k = kernel()
    root = k.spawn(image=False)
    n = k.spawn(uid=1000, image=False)
    fd = n.shm_open("/g", C.O_RDWR | C.O_CREAT, 0o600)
    before = state(k)
    expect(qerrno.EPERM, "R-SHM-7", n.shm_ctl, fd, C.SHMCTL_ANON | C.SHMCTL_GLOBAL, 0, PS)
    assert state(k) == before
    assert n.shm_ctl(fd, C.SHMCTL_ANON, 0, PS) == 0  # without GLOBAL: no ability needed
    fd2 = n.shm_open("/g2", C.O_RDWR | C.O_CREAT, 0o600)
    put(n, C.PROCMGR_AID_MEM_GLOBAL, NONROOT, True)
    assert n.shm_ctl(fd2, C.SHMCTL_ANON | C.SHMCTL_GLOBAL, 0, PS) == 0
    fd3 = root.shm_open("/g3", C.O_RDWR | C.O_CREAT, 0o600)
    assert root.shm_ctl(fd3, C.SHMCTL_ANON | C.SHMCTL_GLOBAL, 0, PS) == 0
    put(root, C.PROCMGR_AID_MEM_GLOBAL, ROOT, False)
    fd4 = root.shm_open("/g4", C.O_RDWR | C.O_CREAT, 0o600)
    expect(qerrno.EPERM, "R-SHM-7", root.shm_ctl, fd4, C.SHMCTL_ANON | C.SHMCTL_GLOBAL, 0, PS)
    k.check_invariants()


def test_R_LOCK_1_mem_lock_vaddr_subrange() -> None:
    k = kernel_71()
    p = k.spawn(uid=1000, image=False)
    a = anon(p, 4)
    put(p, C.PROCMGR_AID_MEM_LOCK, NONROOT, True, ((a, a + 2 * PS - 1),))
    assert p.mlock(a, 2 * PS) == 0
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a + PS, 2 * PS)
    expect(qerrno.EPERM, "R-LOCK-1", p.mlock, a + 3 * PS, PS)


def test_R_ABLE_4_a_zombie_caller_gets_esrch_returned() -> None:
    """R-CALL-1: procmgr_ability returns its error number in both forms, whatever the error."""
    k = kernel()
    parent = k.spawn(image=False)
    child = parent.spawn(image=False)
    child.exit(0)
    word = ADN_NONROOT | DENY | C.PROCMGR_AID_MAP_FIXED
    assert child.procmgr_ability(0, word) == qerrno.ESRCH
    assert child.libc.procmgr_ability(0, word) == qerrno.ESRCH
    assert child.libc.errno == 0
