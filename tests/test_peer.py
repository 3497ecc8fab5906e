"""mmap_peer, mmap64_peer and munmap_peer against SPEC section 6 and R-UNMAP-7.

Expectations come from SPEC.md: R-PEER-1 (pid 0 / own pid), R-PEER-2 (ESRCH first),
R-PEER-3 (MEM_PEER ability or the uid rule, else EPERM), R-PEER-4 (whose context each rule
uses), R-PEER-5 (an ordinary mapping of the target afterwards), R-PEER-6 (mmap64_peer).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ANON, PROGRAM_BASE, PS, RW, SHARED_ANON

import qnxsim.abilities
from qnxsim import Kernel, MemoryFault, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

NO_SUCH_PID = 99999


def kernel() -> Kernel:
    return Kernel(ram=64 << 20)


def allow_mem_peer(proc: Process, subranges: tuple[tuple[int, int], ...] = ()) -> None:
    """Grant PROCMGR_AID_MEM_PEER to ``proc`` in the non-root domain (R-ABLE-3: denied there)."""
    proc.abilities.set(
        C.PROCMGR_AID_MEM_PEER,
        qnxsim.abilities.NONROOT,
        qnxsim.abilities.DomainEntry(True, subranges),
    )


def deny(proc: Process, aid: int, domain: int = qnxsim.abilities.ROOT) -> None:
    proc.abilities.set(aid, domain, qnxsim.abilities.DomainEntry(False))


def zombie_child(k: Kernel, uid: int = 0) -> tuple[Process, int]:
    """A parent and the pid of its exited, not yet waited-for child (R-PROC-4)."""
    parent = k.spawn(uid=uid, image=False)
    child = parent.spawn(image=False)
    child.exit(0)
    assert not child.alive
    return parent, child.pid


def state(k: Kernel) -> tuple[object, ...]:
    return (*tuple((p.pid, p.mappings()) for p in k.processes()), k.meminfo())


# -- DESIGN.md seed example -------------------------------------------------------------------


def test_R_PEER_design_seed_example_exact() -> None:
    """The DESIGN.md "Public API" example: its body verbatim, imports cut to the names it uses."""
    from qnxsim import Kernel, QnxError
    from qnxsim import errno as qerrno
    from qnxsim.constants import (
        MAP_FAILED,
        MAP_SHARED,
        O_CREAT,
        O_RDWR,
        PROT_READ,
        PROT_WRITE,
    )

    k = Kernel()  # arch="x86_64", version="8.0", ram=1 GiB
    server = k.spawn(uid=0)  # Process
    client = k.spawn(uid=1000)
    fd = server.shm_open("/buf", O_RDWR | O_CREAT, 0o600)
    server.ftruncate(fd, 8192)
    a = server.mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    p = server.mmap_peer(client.pid, 0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    server.write_memory(a, b"hello")
    assert client.read_memory(p, 5) == b"hello"
    try:
        server.mmap_peer(99999, 0, 4096, PROT_READ, MAP_SHARED, fd, 0)
    except QnxError as e:
        assert e.errno == qerrno.ESRCH and "R-PEER-2" in e.reason
    assert (
        client.libc.mmap_peer(99999, 0, 4096, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED
    )  # C style
    print(k.pidin("mem"))
    k.check_invariants()


def test_R_PEER_design_seed_flow_with_shared_anon_memory() -> None:
    """The seed example's flow with MAP_SHARED|MAP_ANON memory instead of a shm object.

    The server (root) maps a shared anonymous buffer into the client; the client sees and
    uses it at the returned address, the server's own address space does not change.
    """
    k = Kernel()
    server = k.spawn(uid=0)
    client = k.spawn(uid=1000)
    server_before = server.mappings()
    p = server.mmap_peer(client.pid, 0, 8192, RW, SHARED_ANON, C.NOFD, 0)
    rec = client.mapping_at(p)
    assert rec is not None and rec.kind == "shared-anon" and rec.size == 8192
    client.write_memory(p, b"hello")
    assert client.read_memory(p, 5) == b"hello"
    assert server.mappings() == server_before
    with pytest.raises(QnxError) as info:
        server.mmap_peer(NO_SUCH_PID, 0, 4096, C.PROT_READ, SHARED_ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.ESRCH and "R-PEER-2" in info.value.reason
    assert client.libc.mmap_peer(NO_SUCH_PID, 0, 4096, C.PROT_READ, SHARED_ANON, C.NOFD, 0) == (
        C.MAP_FAILED
    )
    assert client.libc.errno == qerrno.ESRCH
    text = k.pidin("mem")
    assert f"@{p:x}" in text
    k.check_invariants()


# -- R-PEER-1: pid 0 and the caller's own pid ----------------------------------------------------


@pytest.mark.parametrize("which", ["zero", "own"])
def test_R_PEER_1_pid_zero_or_own_pid_maps_into_caller_without_permission(which: str) -> None:
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    other = k.spawn(uid=1000, image=False)
    deny(caller, C.PROCMGR_AID_MEM_PEER, qnxsim.abilities.NONROOT)
    pid = 0 if which == "zero" else caller.pid
    addr = caller.mmap_peer(pid, 0, 2 * PS, RW, ANON, C.NOFD, 0)
    rec = caller.mapping_at(addr)
    assert rec is not None and rec.start == addr and rec.size == 2 * PS and rec.prot == RW
    assert other.mappings() == ()
    caller.write_memory(addr, b"mine")
    assert caller.read_memory(addr, 4) == b"mine"
    k.check_invariants()


def test_R_PEER_1_pid_zero_is_exactly_mmap_on_caller() -> None:
    """Two identical kernels: mmap_peer(0, ...) and mmap(...) give the same result."""
    results = []
    for use_peer in (False, True):
        k = kernel()
        p = k.spawn(uid=1000, image=False)
        p.mmap(0, PS, RW, ANON, C.NOFD, 0)
        if use_peer:
            addr = p.mmap_peer(0, 0, 3 * PS, C.PROT_READ, SHARED_ANON, C.NOFD, 0)
        else:
            addr = p.mmap(0, 3 * PS, C.PROT_READ, SHARED_ANON, C.NOFD, 0)
        results.append((addr, p.mappings(), k.meminfo()))
    assert results[0] == results[1]


def test_R_PEER_1_own_pid_errors_are_mmap_errors() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    with pytest.raises(QnxError) as info:
        p.mmap_peer(p.pid, 0, 0, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EINVAL and "R-MMAP-2" in info.value.reason


def test_R_UNMAP_7_munmap_peer_pid_zero_acts_on_caller() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    assert p.munmap_peer(0, a + PS, PS) == 0
    assert [(m.start, m.end) for m in p.mappings()] == [(a, a + PS), (a + 2 * PS, a + 3 * PS)]
    assert p.munmap_peer(p.pid, a, 3 * PS) == 0
    assert p.mappings() == ()
    k.check_invariants()


# -- R-PEER-2: ESRCH, checked first ----------------------------------------------------------


def test_R_PEER_2_missing_pid_is_esrch() -> None:
    k = kernel()
    caller = k.spawn(image=False)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(NO_SUCH_PID, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.ESRCH
    assert "R-PEER-2" in info.value.reason


def test_R_PEER_2_zombie_is_esrch() -> None:
    k = kernel()
    parent, zpid = zombie_child(k)
    assert k.process(zpid) is not None  # still in the pid table: a zombie
    with pytest.raises(QnxError) as info:
        parent.mmap_peer(zpid, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.ESRCH
    assert "R-PEER-2" in info.value.reason
    assert parent.libc.mmap_peer(zpid, 0, PS, RW, ANON, C.NOFD, 0) == C.MAP_FAILED
    assert parent.libc.errno == qerrno.ESRCH
    k.check_invariants()


def test_R_PEER_2_reaped_pid_is_esrch() -> None:
    k = kernel()
    parent, zpid = zombie_child(k)
    assert parent.waitpid(zpid)[0] == zpid
    with pytest.raises(QnxError) as info:
        parent.mmap_peer(zpid, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.ESRCH and "R-PEER-2" in info.value.reason


def test_R_PEER_2_esrch_is_checked_before_eperm() -> None:
    """A non-root caller with no right over anyone: a zombie of another user gives ESRCH."""
    k = kernel()
    _, zpid = zombie_child(k, uid=2000)
    caller = k.spawn(uid=1000, image=False)
    for pid in (zpid, NO_SUCH_PID):
        with pytest.raises(QnxError) as info:
            caller.mmap_peer(pid, 0, PS, RW, ANON, C.NOFD, 0)
        assert info.value.errno == qerrno.ESRCH and "R-PEER-2" in info.value.reason
        with pytest.raises(QnxError) as info:
            caller.munmap_peer(pid, PROGRAM_BASE, PS)
        assert info.value.errno == qerrno.ESRCH and "R-PEER-2" in info.value.reason


def test_R_PEER_2_esrch_is_checked_before_the_mmap_rules() -> None:
    k = kernel()
    caller = k.spawn(image=False)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(NO_SUCH_PID, 0, 0, RW, 0, C.NOFD, 0)  # len 0 and no MAP_TYPE
    assert info.value.errno == qerrno.ESRCH and "R-PEER-2" in info.value.reason


def test_R_UNMAP_7_munmap_peer_zombie_is_esrch() -> None:
    k = kernel()
    parent, zpid = zombie_child(k)
    with pytest.raises(QnxError) as info:
        parent.munmap_peer(zpid, PROGRAM_BASE, PS)
    assert info.value.errno == qerrno.ESRCH and "R-PEER-2" in info.value.reason
    assert parent.libc.munmap_peer(zpid, PROGRAM_BASE, PS) == -1
    assert parent.libc.errno == qerrno.ESRCH


# -- R-PEER-3: permission --------------------------------------------------------------------


def test_R_PEER_3_non_root_caller_and_other_users_process_is_eperm() -> None:
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=2000, image=False)
    before = state(k)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM
    assert "R-PEER-3" in info.value.reason
    assert state(k) == before
    k.check_invariants()


def test_R_PEER_3_eperm_is_checked_before_the_mmap_rules() -> None:
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=2000, image=False)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, 0, RW, 0, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-PEER-3" in info.value.reason


def test_R_PEER_3_root_caller_may_map_into_any_process() -> None:
    k = kernel()
    root = k.spawn(uid=0, image=False)
    target = k.spawn(uid=2000, image=False)
    addr = root.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None
    k.check_invariants()


def test_R_PEER_3_same_uid_allows() -> None:
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=1000, image=False)
    addr = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None
    assert caller.mappings() == ()


def test_R_PEER_3_caller_euid_equal_to_target_ruid_allows() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    caller.seteuid(1000)  # ruid 0, euid 1000: the non-root domain, MEM_PEER denied
    target = k.spawn(uid=1000, image=False)
    other = k.spawn(uid=2000, image=False)
    addr = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None
    with pytest.raises(QnxError) as info:  # neither of the caller's uids is 2000
        caller.mmap_peer(other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-PEER-3" in info.value.reason


def test_R_PEER_3_caller_ruid_equal_to_target_ruid_allows() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    caller.seteuid(2000)  # ruid 0 stays; euid 2000 is non-root
    target = k.spawn(uid=0, image=False)  # ruid 0
    addr = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None


def test_R_PEER_3_target_suid_matches_caller_uid_allows() -> None:
    """The uid rule also matches the target's saved uid.

    No modelled call yet gives ruid != suid (setreuid is not simulated), so the target's
    credentials are set directly, as after a set-uid program changed its real uid.
    """
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=2000, image=False)
    target.suid = 1000
    addr = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None
    k.check_invariants()


def test_R_PEER_3_target_euid_alone_does_not_match() -> None:
    """Only the target's ruid and suid count: its euid matching the caller is not enough."""
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=0, image=False)
    target.seteuid(1000)  # ruid 0, euid 1000, suid 0
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-PEER-3" in info.value.reason


def test_R_PEER_3_root_with_mem_peer_denied_and_no_uid_match_is_eperm() -> None:
    """[SIM] 8.0 replaces 6.4's "euid == 0" clause with the ability: root needs MEM_PEER too."""
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    deny(caller, C.PROCMGR_AID_MEM_PEER, qnxsim.abilities.ROOT)
    target = k.spawn(uid=2000, image=False)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-PEER-3" in info.value.reason


def test_R_PEER_3_mem_peer_ability_lets_non_root_caller_map() -> None:
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=2000, image=False)
    allow_mem_peer(caller)
    addr = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None
    assert caller.munmap_peer(target.pid, addr, PS) == 0
    assert target.mappings() == ()
    k.check_invariants()


def test_R_PEER_3_mem_peer_subrange_excluding_target_denies() -> None:
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=2000, image=False)
    allow_mem_peer(caller, ((target.pid + 1, target.pid + 100),))
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-PEER-3" in info.value.reason
    allow_mem_peer(caller, ((target.pid, target.pid),))
    addr = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None


def test_R_UNMAP_7_munmap_peer_needs_permission() -> None:
    k = kernel()
    caller = k.spawn(uid=1000, image=False)
    target = k.spawn(uid=2000, image=False)
    a = target.mmap(0, PS, RW, ANON, C.NOFD, 0)
    with pytest.raises(QnxError) as info:
        caller.munmap_peer(target.pid, a, PS)
    assert info.value.errno == qerrno.EPERM and "R-PEER-3" in info.value.reason
    assert target.mapping_at(a) is not None
    assert caller.libc.munmap_peer(target.pid, a, PS) == -1
    assert caller.libc.errno == qerrno.EPERM


def test_R_UNMAP_7_munmap_peer_runs_munmap_rules_on_target() -> None:
    k = kernel()
    root = k.spawn(uid=0, image=False)
    target = k.spawn(uid=2000, image=False)
    a = target.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    mine = root.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    assert mine == a  # same address in both spaces
    assert root.munmap_peer(target.pid, a + PS + 5, PS) == 0  # R-UNMAP-3 widening
    assert [(m.start, m.end) for m in target.mappings()] == [
        (a, a + PS),
        (a + 3 * PS, a + 4 * PS),
    ]
    assert [(m.start, m.end) for m in root.mappings()] == [(a, a + 4 * PS)]
    with pytest.raises(QnxError) as info:
        root.munmap_peer(target.pid, a, 0)
    assert info.value.errno == qerrno.EINVAL and "R-UNMAP-2" in info.value.reason
    k.check_invariants()


# -- R-PEER-4: whose context ------------------------------------------------------------------


def test_R_PEER_4_placement_is_in_target_address_space() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    t0 = target.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert t0 == PROGRAM_BASE
    addr = caller.mmap_peer(target.pid, 0, PS, C.PROT_READ, ANON, C.NOFD, 0)
    assert addr == PROGRAM_BASE + 2 * PS  # the next hole in the target, not in the caller
    assert caller.mappings() == ()


def test_R_PEER_4_target_rlimit_as_applies() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    target.setrlimit(C.RLIMIT_AS, 2 * PS, 2 * PS)
    before = state(k)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, 3 * PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.ENOMEM and "R-MMAP-18" in info.value.reason
    assert state(k) == before
    assert caller.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)  # the caller has no such limit
    caller.mmap_peer(target.pid, 0, 2 * PS, RW, ANON, C.NOFD, 0)
    k.check_invariants()


def test_R_PEER_4_caller_rlimit_does_not_matter() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    caller.setrlimit(C.RLIMIT_AS, PS, PS)
    caller.setrlimit(C.RLIMIT_DATA, PS, PS)
    addr = caller.mmap_peer(target.pid, 0, 8 * PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(addr) is not None
    with pytest.raises(QnxError) as info:
        caller.mmap(0, 8 * PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.ENOMEM and "R-MMAP-18" in info.value.reason


def test_R_PEER_4_target_rlimit_data_applies() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    target.setrlimit(C.RLIMIT_DATA, PS, PS)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.ENOMEM and "R-MMAP-18" in info.value.reason


def test_R_PEER_4_map_fixed_ability_is_the_callers() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    fixed = ANON | C.MAP_FIXED
    deny(caller, C.PROCMGR_AID_MAP_FIXED)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, PROGRAM_BASE, PS, RW, fixed, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-MMAP-10" in info.value.reason
    assert target.mappings() == ()
    # The target's own ability does not matter: deny it there, allow it in the caller.
    k2 = kernel()
    caller2 = k2.spawn(uid=0, image=False)
    target2 = k2.spawn(uid=0, image=False)
    deny(target2, C.PROCMGR_AID_MAP_FIXED)
    assert caller2.mmap_peer(target2.pid, PROGRAM_BASE, PS, RW, fixed, C.NOFD, 0) == PROGRAM_BASE
    k.check_invariants()
    k2.check_invariants()


def test_R_PEER_4_prot_exec_ability_is_the_callers() -> None:
    """Anonymous memory with PROT_EXEC needs PROT_WRITE_AND_EXEC (R-MMAP-9)."""
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    rx = C.PROT_READ | C.PROT_EXEC
    deny(caller, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, rx, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-MMAP-9" in info.value.reason
    assert target.mappings() == ()
    # Target has the abilities (defaults), caller does not: still EPERM.
    assert target.mmap(0, PS, rx, ANON, C.NOFD, 0)
    # Target denied, caller allowed: fine.
    k2 = kernel()
    caller2 = k2.spawn(uid=0, image=False)
    target2 = k2.spawn(uid=0, image=False)
    deny(target2, C.PROCMGR_AID_PROT_WRITE_AND_EXEC)
    addr = caller2.mmap_peer(target2.pid, 0, PS, rx, ANON, C.NOFD, 0)
    rec = target2.mapping_at(addr)
    assert rec is not None and rec.prot == rx
    target2.check_access(addr, PS, "x")


def test_R_PEER_4_prot_exec_ability_range_is_the_final_range_in_target() -> None:
    """The caller's PROT_WRITE_AND_EXEC subrange is checked against the target's placement."""
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    target.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)  # the target's next hole starts at +4 pages
    lo, hi = PROGRAM_BASE, PROGRAM_BASE + 2 * PS - 1
    caller.abilities.set(
        C.PROCMGR_AID_PROT_WRITE_AND_EXEC,
        qnxsim.abilities.ROOT,
        qnxsim.abilities.DomainEntry(True, ((lo, hi),)),
    )
    rx = C.PROT_READ | C.PROT_EXEC
    assert caller.mmap(0, PS, rx, ANON, C.NOFD, 0) == PROGRAM_BASE  # in range in the caller
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, rx, ANON, C.NOFD, 0)
    assert info.value.errno == qerrno.EPERM and "R-MMAP-9" in info.value.reason


def test_R_PEER_4_fd_is_looked_up_in_callers_table() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    tfd = target.shm_open("/t", C.O_RDWR | C.O_CREAT, 0o600)
    target.ftruncate(tfd, PS)
    assert tfd not in caller.fdt.fds  # the number is open only in the target
    before = state(k)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, RW, C.MAP_SHARED, tfd, 0)
    assert info.value.errno == qerrno.EBADF and "R-MMAP-12" in info.value.reason
    assert state(k) == before
    cfd = caller.shm_open("/t", C.O_RDWR, 0)
    addr = caller.mmap_peer(target.pid, 0, PS, RW, C.MAP_SHARED, cfd, 0)
    target.write_memory(addr, b"via caller fd")
    assert caller.pread(cfd, 13, 0) == b"via caller fd"  # R-OBJ-5: the same object
    k.check_invariants()


def test_R_PEER_4_open_mode_is_the_callers() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    tfd = target.shm_open("/m", C.O_RDWR | C.O_CREAT, 0o666)
    target.ftruncate(tfd, PS)
    cfd = caller.shm_open("/m", C.O_RDONLY, 0)
    with pytest.raises(QnxError) as info:
        caller.mmap_peer(target.pid, 0, PS, RW, C.MAP_SHARED, cfd, 0)
    assert info.value.errno == qerrno.EACCES and "R-MMAP-12" in info.value.reason
    addr = caller.mmap_peer(target.pid, 0, PS, C.PROT_READ, C.MAP_SHARED, cfd, 0)
    assert target.mapping_at(addr) is not None
    k.check_invariants()


def test_R_PEER_4_mem_phys_ability_is_the_callers() -> None:
    """MAP_PHYS of device memory (R-MMAP-11) needs MEM_PHYS, which is checked in the caller."""
    k = kernel()
    user = k.spawn(uid=1000, image=False)  # MEM_PHYS: denied for non-root (R-ABLE-3)
    allow_mem_peer(user)
    root_target = k.spawn(uid=0, image=False)
    phys = C.MAP_SHARED | C.MAP_PHYS
    with pytest.raises(QnxError) as info:
        user.mmap_peer(root_target.pid, 0, PS, RW, phys, C.NOFD, 0xF000_0000)
    assert info.value.errno == qerrno.EPERM and "R-MMAP-11" in info.value.reason
    assert root_target.mappings() == ()
    root = k.spawn(uid=0, image=False)
    user_target = k.spawn(uid=1000, image=False)
    addr = root.mmap_peer(user_target.pid, 0, PS, RW, phys, C.NOFD, 0xF000_0000)
    rec = user_target.mapping_at(addr)
    assert rec is not None and rec.kind == "phys"
    k.check_invariants()


def test_R_PEER_4_accounting_is_charged_to_target_and_ram() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    before = k.meminfo()
    caller.mmap_peer(target.pid, 0, 4 * PS, RW, ANON, C.NOFD, 0)
    after = k.meminfo()
    assert after.allocated == before.allocated + 4 * PS
    assert after.free == before.free - 4 * PS
    target.exit(0)  # the target's memory goes with the target
    assert k.meminfo() == before
    k.check_invariants()


# -- R-PEER-5: an ordinary mapping of the target ----------------------------------------------


def test_R_PEER_5_target_reads_and_writes_peer_mapping() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=1000, image=False)
    addr = caller.mmap_peer(target.pid, 0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert target.read_memory(addr, 2 * PS) == bytes(2 * PS)  # R-OBJ-6
    target.write_memory(addr + PS - 2, b"abcd")
    assert target.read_memory(addr + PS - 2, 4) == b"abcd"
    with pytest.raises(MemoryFault) as fault:  # the caller has nothing there
        caller.read_memory(addr, 1)
    assert fault.value.signo == C.SIGSEGV and fault.value.code == C.SEGV_MAPERR
    k.check_invariants()


def test_R_PEER_5_target_munmaps_peer_mapping() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=1000, image=False)
    before = k.meminfo()
    addr = caller.mmap_peer(target.pid, 0, 3 * PS, RW, ANON, C.NOFD, 0)
    assert target.munmap(addr, 3 * PS) == 0
    assert target.mappings() == ()
    assert k.meminfo() == before
    k.check_invariants()


def test_R_PEER_5_peer_mapping_merges_with_targets_own() -> None:
    """Ordinary: a peer-made anonymous mapping next to the target's own one is one record."""
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=1000, image=False)
    a = target.mmap(0, PS, RW, ANON, C.NOFD, 0)
    b = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert b == a + PS
    assert [(m.start, m.end) for m in target.mappings()] == [(a, a + 2 * PS)]


def test_R_PEER_5_target_forks_peer_mapping() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=1000, image=False)
    priv = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    shared = caller.mmap_peer(target.pid, 0, PS, RW, SHARED_ANON, C.NOFD, 0)
    target.write_memory(priv, b"private")
    target.write_memory(shared, b"shared")
    child = k.process(target.fork())
    assert child.mappings() == target.mappings()
    assert child.read_memory(priv, 7) == b"private"
    child.write_memory(priv, b"PRIVATE")
    assert target.read_memory(priv, 7) == b"private"  # R-PROC-2: copied
    child.write_memory(shared, b"SHARED")
    assert target.read_memory(shared, 6) == b"SHARED"  # R-PROC-2: same object
    k.check_invariants()


def test_R_PEER_5_caller_address_space_unchanged() -> None:
    k = kernel()
    caller = k.spawn(uid=0, image=True)
    target = k.spawn(uid=0, image=True)
    before = caller.mappings()
    for flags in (ANON, SHARED_ANON, ANON | C.MAP_LAZY):
        caller.mmap_peer(target.pid, 0, 2 * PS, RW, flags, C.NOFD, 0)
    caller.mmap_peer(target.pid, PROGRAM_BASE - 0x100000, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert caller.mappings() == before
    assert len(target.mappings()) > len(before)
    k.check_invariants()


# -- R-PEER-6: mmap64_peer -------------------------------------------------------------------


def _peer_run(use64: bool, off: int, flags: int) -> tuple[object, ...]:
    k = kernel()
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=1000, image=False)
    fn = caller.mmap64_peer if use64 else caller.mmap_peer
    try:
        result: object = fn(target.pid, 0, 3 * PS, RW, flags, C.NOFD, off)
    except QnxError as err:
        result = (err.errno, err.reason)
    return result, target.mappings(), caller.mappings(), k.meminfo()


@pytest.mark.parametrize(
    ("off", "flags"),
    [
        (0, ANON),
        (PS + 12, ANON),
        (-PS, ANON | C.MAP_STACK),
        (PS, ANON | C.MAP_STACK),
        (2**63 - 1, SHARED_ANON),
        (2**64 - PS, ANON),
    ],
)
def test_R_PEER_6_mmap64_peer_equals_mmap_peer_on_x86_64(off: int, flags: int) -> None:
    assert _peer_run(True, off, flags) == _peer_run(False, off, flags)


@settings(max_examples=100, deadline=None)
@given(
    off=st.integers(min_value=-(2**64), max_value=2**64),
    length=st.integers(min_value=0, max_value=8 * PS),
    stack=st.booleans(),
)
def test_R_PEER_6_mmap64_peer_equals_mmap_peer_property(off: int, length: int, stack: bool) -> None:
    flags = ANON | (C.MAP_STACK if stack else 0)
    results = []
    for use64 in (False, True):
        k = kernel()
        caller = k.spawn(uid=0, image=False)
        target = k.spawn(uid=1000, image=False)
        fn = caller.mmap64_peer if use64 else caller.mmap_peer
        try:
            out: object = fn(target.pid, 0, length, RW, flags, C.NOFD, off)
        except QnxError as err:
            out = err.errno
        results.append((out, target.mappings()))
    assert results[0] == results[1]
