"""The simulated system and its processes: R-SYS-1, R-SYS-7, R-PROC-1, R-PROC-2, R-PROC-4,
R-PROC-5, and the rlimits of SPEC 18 with their enforcement by mmap (R-MMAP-18).
"""

from __future__ import annotations

import pytest
from support import (
    ANON,
    PROGRAM_BASE,
    PS,
    RLIMITS,
    RW,
    RX,
    SHARED_ANON,
    SO_BASE,
    STACK_GUARD,
    STACK_SIZE,
    creds,
    expect_error,
)

from qnxsim import Kernel, MemoryFault, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

RAM = 64 << 20


def kernel() -> Kernel:
    return Kernel(ram=RAM)


# -- R-SYS-1: configuration ---------------------------------------------------------------------


def test_R_SYS_1_defaults_read_back() -> None:
    k = Kernel()
    assert (k.arch, k.version, k.ram, k.page_size) == ("x86_64", "8.0", 1 << 30, 4096)
    assert k.aslr is False and k.seed == 0
    assert k.meminfo().total == 1 << 30


def test_R_SYS_1_configuration_read_back() -> None:
    k = Kernel(arch="aarch64", ram=32 << 20, page_size=16384, aslr=True, seed=7)
    assert (k.arch, k.version, k.ram, k.page_size) == ("aarch64", "8.0", 32 << 20, 16384)
    assert k.aslr is True and k.seed == 7
    assert Kernel(arch="aarch64", page_size=65536, ram=RAM).page_size == 65536


@pytest.mark.parametrize(
    "config",
    [
        {"arch": "mips"},
        {"arch": "X86_64"},
        {"version": "9.9"},
        {"ram": 0},
        {"ram": -4096},
        {"page_size": 8192},
        {"page_size": 16384},  # only aarch64 accepts 16 KiB pages
        {"arch": "aarch64", "page_size": 2048},
    ],
)
def test_R_SYS_1_invalid_configuration_is_value_error(config: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Kernel(**config)  # type: ignore[arg-type]


def test_R_SYS_1_aslr_same_seed_same_addresses() -> None:
    def layout(seed: int) -> list[int]:
        k = Kernel(ram=RAM, aslr=True, seed=seed)
        p = k.spawn(image=False)
        return [p.mmap(0, PS, RW, ANON, C.NOFD, 0) for _ in range(4)]

    assert layout(3) == layout(3)
    assert layout(3) != layout(4)


# -- R-SYS-7: pids -----------------------------------------------------------------------------


def test_R_SYS_7_procnto_is_pid_1_and_owns_no_mappings() -> None:
    k = kernel()
    procnto = k.process(1)
    assert procnto.pid == 1 and procnto.alive
    assert procnto.mappings() == ()
    assert [p.pid for p in k.processes()] == [1]
    k.spawn(image=True)
    assert k.process(1).mappings() == ()
    with pytest.raises(QnxError) as info:
        procnto.exit(0)
    assert info.value.errno == qerrno.EPERM


def test_R_SYS_7_pids_increase_from_2_and_are_never_reused() -> None:
    k = kernel()
    a = k.spawn(image=False)
    b = a.spawn(image=False)
    assert (a.pid, b.pid) == (2, 3)
    c = k.process(b.fork())
    assert c.pid == 4
    c.exit(0)
    b.exit(0)
    a.waitpid(b.pid)
    seen = {2, 3, 4}
    for _ in range(5):
        d = k.spawn(image=False)
        assert d.pid not in seen and d.pid > max(seen)
        seen.add(d.pid)
        d.exit(0)
    assert max(seen) == 9
    with pytest.raises(LookupError):
        k.process(3)


# -- R-PROC-1: spawn and the process image -------------------------------------------------------


def test_R_PROC_1_image_false_is_empty() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert p.mappings() == ()
    assert p.ppid == 1


def test_R_PROC_1_image_text_and_data_at_program_base() -> None:
    k = kernel()
    p = k.spawn("/proc/boot/server", image=True)
    text = p.mapping_at(PROGRAM_BASE)
    assert text is not None and text.start == PROGRAM_BASE
    assert text.prot == RX
    assert text.flags & C.MAP_ELF and text.flags & C.MAP_TYPE == C.MAP_PRIVATE
    assert text.name == "/proc/boot/server"
    data = p.mapping_at(text.end)
    assert data is not None and data.start == text.end
    assert data.prot == RW and data.name == "/proc/boot/server"
    assert data.flags & C.MAP_TYPE == C.MAP_PRIVATE


def test_R_PROC_1_libc_near_so_base() -> None:
    k = kernel()
    p = k.spawn(image=True)
    libc = [m for m in p.mappings() if m.name and "libc" in m.name]
    assert len(libc) == 2
    text, data = libc
    assert SO_BASE <= text.start < SO_BASE + (1 << 30)
    assert text.prot == RX and text.flags & C.MAP_ELF
    assert data.prot == RW and data.start == text.end


def test_R_PROC_1_main_stack_with_guard_below_program_base() -> None:
    """512 KiB main stack mapped as MAP_STACK with a 4 KiB guard (the guard's record is the
    lowest 4 KiB of the 512 KiB, as mmap's guard-in-``off`` rule R-MMAP-26 makes it)."""
    k = kernel()
    p = k.spawn(image=True)
    stack = [m for m in p.mappings() if m.flags & C.MAP_STACK]
    assert len(stack) == 2
    guard, body = stack
    assert guard.kind == "stack-guard" and guard.prot == C.PROT_NONE
    assert guard.size == STACK_GUARD and guard.end == body.start
    assert body.prot == RW and body.flags & C.MAP_ANON
    assert guard.size + body.size == STACK_SIZE
    assert body.end <= PROGRAM_BASE
    assert PROGRAM_BASE - body.end < (1 << 20)  # right below, as a downward search puts it
    p.write_memory(body.end - 8, b"retaddr!")
    assert p.read_memory(body.end - 8, 8) == b"retaddr!"
    assert fault_code(p, guard.start) == C.SEGV_ACCERR


def fault_code(p: Process, addr: int) -> int:
    with pytest.raises(MemoryFault) as info:
        p.read_memory(addr, 1)
    return info.value.code


def test_R_PROC_1_spawn_child_inherits_creds_and_not_mappings() -> None:
    k = kernel()
    parent = k.spawn(uid=1000, gid=100, image=False)
    parent.mmap(0, PS, RW, ANON, C.NOFD, 0)
    child = parent.spawn(image=False)
    assert child.ppid == parent.pid
    assert creds(child) == creds(parent)
    assert child.mappings() == ()
    k.check_invariants()


def test_R_PROC_1_spawn_child_keeps_real_and_effective_ids_apart() -> None:
    """A parent with ruid 0 and euid 1000: the child has the same real and effective ids."""
    k = kernel()
    parent = k.spawn(uid=0, gid=0, image=False)
    parent.setegid(100)
    parent.seteuid(1000)
    child = parent.spawn(image=False)
    assert (child.ruid, child.euid, child.rgid, child.egid) == (0, 1000, 0, 100)
    assert creds(child) == creds(parent)
    assert child.seteuid(0) == 0  # its real uid is still 0, so it may go back


# -- R-PROC-2: fork -------------------------------------------------------------------------------


def test_R_PROC_2_fork_copies_private_anon_memory() -> None:
    k = kernel()
    parent = k.spawn(uid=1000, image=False)
    a = parent.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    parent.write_memory(a, b"before")
    before = k.meminfo()
    child = k.process(parent.fork())
    assert child.ppid == parent.pid and child.pid != parent.pid
    assert child.mappings() == parent.mappings()
    assert k.meminfo().allocated == before.allocated + 2 * PS  # copies, not sharing
    assert child.read_memory(a, 6) == b"before"
    child.write_memory(a, b"child!")
    assert parent.read_memory(a, 6) == b"before"
    parent.write_memory(a + PS, b"parent")
    assert child.read_memory(a + PS, 6) == bytes(6)
    k.check_invariants()


def test_R_PROC_2_fork_shares_shared_anon_memory() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    a = parent.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    before = k.meminfo()
    child = k.process(parent.fork())
    assert k.meminfo() == before  # the same object: no new frames
    child.write_memory(a, b"from child")
    assert parent.read_memory(a, 10) == b"from child"
    parent.write_memory(a, b"from paren")
    assert child.read_memory(a, 10) == b"from paren"
    parent.munmap(a, PS)  # the object lives on in the child
    assert child.read_memory(a, 10) == b"from paren"
    k.check_invariants()


def test_R_PROC_2_fork_skips_map_noinherit() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    keep = parent.mmap(0, PS, RW, ANON, C.NOFD, 0)
    skip = parent.mmap(0, PS, RW, ANON | C.MAP_NOINHERIT, C.NOFD, 0)
    child = k.process(parent.fork())
    assert child.mapping_at(keep) is not None
    assert child.mapping_at(skip) is None
    assert parent.mapping_at(skip) is not None
    k.check_invariants()


def test_R_PROC_2_fork_copies_creds_limits_and_image() -> None:
    k = kernel()
    parent = k.spawn(uid=0, image=True)
    parent.seteuid(1000)
    parent.setrlimit(C.RLIMIT_AS, 64 << 20, 128 << 20)
    child = k.process(parent.fork())
    assert creds(child) == creds(parent)
    assert child.getrlimit(C.RLIMIT_AS) == (64 << 20, 128 << 20)
    assert child.mappings() == parent.mappings()
    k.check_invariants()


def test_R_PROC_2_fork_enomem_when_copies_do_not_fit() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    parent.mmap(0, 40 << 20, RW, ANON, C.NOFD, 0)  # more than what is left for a copy
    procs = [p.pid for p in k.processes()]
    mem = k.meminfo()
    expect_error(qerrno.ENOMEM, "R-PROC-2", parent.fork)
    assert [p.pid for p in k.processes()] == procs
    assert k.meminfo() == mem
    assert parent.libc.fork() == -1 and parent.libc.errno == qerrno.ENOMEM
    k.check_invariants()


def test_R_PROC_2_fork_of_lazy_untouched_memory_needs_no_ram() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    parent.mmap(0, 40 << 20, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    parent.mmap(0, 40 << 20, RW, ANON, C.NOFD, 0)
    expect_error(qerrno.ENOMEM, "R-PROC-2", parent.fork)
    parent.munmap(PROGRAM_BASE, 100 << 20)
    parent.mmap(0, 40 << 20, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    assert k.process(parent.fork()).alive


# -- R-PROC-4: exit and waitpid ----------------------------------------------------------------


def test_R_PROC_4_exit_makes_zombie_until_waitpid() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    child = parent.spawn(image=True)
    before = k.meminfo()
    assert child.mappings()
    child.exit(7)
    assert not child.alive
    assert child.mappings() == ()
    assert k.process(child.pid) is child  # still in the pid table
    assert k.meminfo().reserved < before.reserved  # its image reservation went back
    k.check_invariants()
    assert parent.waitpid(child.pid) == (child.pid, 7)
    with pytest.raises(LookupError):
        k.process(child.pid)
    expect_error(qerrno.ECHILD, "R-PROC-4", parent.waitpid, child.pid)
    k.check_invariants()


def test_R_PROC_4_waitpid_any_child() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    first = parent.spawn(image=False)
    second = k.process(parent.fork())
    second.exit(2)
    assert parent.waitpid(-1) == (second.pid, 2)
    first.exit(1)
    assert parent.waitpid(-1) == (first.pid, 1)
    expect_error(qerrno.ECHILD, "R-PROC-4", parent.waitpid, -1)


def test_R_PROC_4_waitpid_of_non_child_is_echild() -> None:
    k = kernel()
    a = k.spawn(image=False)
    b = k.spawn(image=False)
    expect_error(qerrno.ECHILD, "R-PROC-4", a.waitpid, b.pid)
    assert a.libc.waitpid(b.pid, 0) == -1 and a.libc.errno == qerrno.ECHILD


def test_R_PROC_4_orphan_is_reaped_at_once() -> None:
    k = kernel()
    p = k.spawn(image=False)  # a child of procnto
    p.exit(0)
    with pytest.raises(LookupError):
        k.process(p.pid)


def test_R_PROC_4_children_of_an_exiting_parent() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    zombie = parent.spawn(image=False)
    running = parent.spawn(image=False)
    zombie.exit(0)
    parent.exit(0)
    with pytest.raises(LookupError):  # its zombie child is reaped with it
        k.process(zombie.pid)
    assert running.alive and running.ppid == 1
    running.exit(0)  # now an orphan: reaped at once
    with pytest.raises(LookupError):
        k.process(running.pid)
    k.check_invariants()


def test_R_PROC_4_exit_frees_memory_and_zombie_makes_no_calls() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    before = k.meminfo()
    child = parent.spawn(image=False)
    a = child.mmap(0, 8 * PS, RW, ANON, C.NOFD, 0)
    child.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    child.exit(0)
    assert k.meminfo() == before
    e = expect_error(qerrno.ESRCH, "[SIM]", child.mmap, a, PS, RW, ANON, C.NOFD, 0)
    assert e.pid == child.pid
    expect_error(qerrno.ESRCH, "[SIM]", child.exit, 0)


# -- R-PROC-5: credentials ---------------------------------------------------------------------


def test_R_PROC_5_spawn_credentials() -> None:
    k = kernel()
    p = k.spawn(uid=1000, gid=100, image=False)
    assert creds(p) == (1000, 1000, 1000, 100, 100, 100)
    assert (p.uid, p.gid) == (1000, 100)


def test_R_PROC_5_root_setuid_sets_all_three() -> None:
    k = kernel()
    p = k.spawn(uid=0, image=False)
    assert p.setuid(1000) == 0
    assert (p.ruid, p.euid, p.suid) == (1000, 1000, 1000)
    expect_error(qerrno.EPERM, "R-PROC-5", p.setuid, 0)  # no way back
    expect_error(qerrno.EPERM, "R-PROC-5", p.seteuid, 0)


def test_R_PROC_5_root_seteuid_sets_only_euid_and_can_come_back() -> None:
    k = kernel()
    p = k.spawn(uid=0, image=False)
    assert p.seteuid(1000) == 0
    assert (p.ruid, p.euid, p.suid) == (0, 1000, 0)
    expect_error(qerrno.EPERM, "R-PROC-5", p.seteuid, 2000)  # not root any more
    assert p.seteuid(0) == 0  # the real (and saved) uid
    assert (p.ruid, p.euid, p.suid) == (0, 0, 0)
    p.seteuid(1000)
    assert p.setuid(0) == 0  # non-root setuid to the real uid: euid only
    assert (p.ruid, p.euid, p.suid) == (0, 0, 0)


def test_R_PROC_5_non_root_setuid_changes_euid_only() -> None:
    k = kernel()
    p = k.spawn(uid=0, image=False)
    p.seteuid(1000)  # (0, 1000, 0)
    p.setuid(0)
    assert (p.ruid, p.euid, p.suid) == (0, 0, 0)
    q = k.spawn(uid=1000, image=False)
    assert q.setuid(1000) == 0
    expect_error(qerrno.EPERM, "R-PROC-5", q.setuid, 0)
    expect_error(qerrno.EPERM, "R-PROC-5", q.setuid, 2000)
    expect_error(qerrno.EPERM, "R-PROC-5", q.seteuid, 0)
    assert q.libc.setuid(0) == -1 and q.libc.errno == qerrno.EPERM
    assert creds(q)[:3] == (1000, 1000, 1000)


def test_R_PROC_5_gids_follow_the_same_rules() -> None:
    k = kernel()
    root = k.spawn(uid=0, gid=0, image=False)
    assert root.setegid(50) == 0
    assert (root.rgid, root.egid, root.sgid) == (0, 50, 0)
    assert root.setgid(60) == 0
    assert (root.rgid, root.egid, root.sgid) == (60, 60, 60)
    user = k.spawn(uid=1000, gid=100, image=False)
    expect_error(qerrno.EPERM, "R-PROC-5", user.setgid, 0)
    expect_error(qerrno.EPERM, "R-PROC-5", user.setegid, 200)
    assert user.setegid(100) == 0 and user.setgid(100) == 0
    assert (user.rgid, user.egid, user.sgid) == (100, 100, 100)


def test_R_PROC_5_credential_failure_changes_nothing() -> None:
    k = kernel()
    p = k.spawn(uid=1000, gid=100, image=False)
    before = creds(p)
    for fn in (p.setuid, p.seteuid, p.setgid, p.setegid):
        with pytest.raises(QnxError):
            fn(5)
    assert creds(p) == before


# -- rlimits (SPEC 18) ---------------------------------------------------------------------------


def test_R_PROC_5_rlimit_defaults() -> None:
    k = kernel()
    p = k.spawn(image=False)
    for r in RLIMITS:
        expected = 1000 if r == C.RLIMIT_NOFILE else C.RLIM_INFINITY
        assert p.getrlimit(r) == (expected, expected)
    assert C.RLIMIT_VMEM == C.RLIMIT_AS


def test_R_PROC_5_setrlimit_soft_above_hard_is_einval() -> None:
    k = kernel()
    p = k.spawn(image=False)
    with pytest.raises(QnxError) as info:
        p.setrlimit(C.RLIMIT_AS, 2 * PS, PS)
    assert info.value.errno == qerrno.EINVAL
    assert p.getrlimit(C.RLIMIT_AS) == (C.RLIM_INFINITY, C.RLIM_INFINITY)


def test_R_PROC_5_raising_hard_limit_needs_euid_0() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    assert p.setrlimit(C.RLIMIT_DATA, 8 * PS, 16 * PS) == 0
    assert p.setrlimit(C.RLIMIT_DATA, 16 * PS, 16 * PS) == 0  # soft up to hard: fine
    assert p.setrlimit(C.RLIMIT_DATA, 4 * PS, 8 * PS) == 0  # lowering: fine
    with pytest.raises(QnxError) as info:
        p.setrlimit(C.RLIMIT_DATA, 4 * PS, 16 * PS)
    assert info.value.errno == qerrno.EPERM
    assert p.getrlimit(C.RLIMIT_DATA) == (4 * PS, 8 * PS)
    assert p.libc.setrlimit(C.RLIMIT_DATA, 4 * PS, 16 * PS) == -1
    assert p.libc.errno == qerrno.EPERM
    root = k.spawn(uid=0, image=False)
    root.setrlimit(C.RLIMIT_DATA, PS, PS)
    assert root.setrlimit(C.RLIMIT_DATA, C.RLIM_INFINITY, C.RLIM_INFINITY) == 0


def test_R_PROC_5_rlimits_inherited_by_fork_and_spawn() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    p.setrlimit(C.RLIMIT_AS, 32 * PS, 64 * PS)
    p.setrlimit(C.RLIMIT_NOFILE, 10, 20)
    kids = [k.process(p.fork()), p.spawn(image=False), k.spawn(parent=p, image=False)]
    for kid in kids:
        assert kid.getrlimit(C.RLIMIT_AS) == (32 * PS, 64 * PS)
        assert kid.getrlimit(C.RLIMIT_NOFILE) == (10, 20)
    kids[0].setrlimit(C.RLIMIT_AS, PS, PS)  # a copy, not a shared table
    assert p.getrlimit(C.RLIMIT_AS) == (32 * PS, 64 * PS)


def test_R_MMAP_18_rlimit_as_counts_every_mapping() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_AS, 8 * PS, 8 * PS)
    a = p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    p.mmap(0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
    p.mmap(0, 2 * PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    before = (p.mappings(), k.meminfo())
    expect_error(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, ANON, C.NOFD, 0)
    assert (p.mappings(), k.meminfo()) == before
    p.munmap(a, PS)
    assert p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    # MAP_FIXED over an existing mapping counts only the growth.
    assert p.mmap(a, 4 * PS, C.PROT_READ, ANON | C.MAP_FIXED, C.NOFD, 0) == a
    k.check_invariants()


def test_R_MMAP_18_rlimit_data_counts_private_anon_but_not_stack_or_shared() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_DATA, 4 * PS, 4 * PS)
    p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    expect_error(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, ANON, C.NOFD, 0)
    expect_error(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    assert p.mmap(0, 4 * PS, RW, SHARED_ANON, C.NOFD, 0)
    assert p.mmap(0, 8 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    k.check_invariants()


def test_R_MMAP_18_limit_set_below_current_use_blocks_new_mappings() -> None:
    k = kernel()
    p = k.spawn(image=True)
    used = sum(m.size for m in p.mappings())
    p.setrlimit(C.RLIMIT_AS, used, used)
    expect_error(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, ANON, C.NOFD, 0)
    assert p.munmap(PROGRAM_BASE, PS) == 0
    assert p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)


def test_entries_made_with_equal_flags_share_one_flags_word(p: Process) -> None:
    """Memory per mapping record (bench, target < 400 bytes): entries hold one shared int
    per distinct flags word, however the caller computed it; other flags stay apart."""
    flags = [int(str(ANON)) for _ in range(3)]  # equal values, three distinct int objects
    assert flags[0] is not flags[1]
    for i, f in enumerate(flags):
        p.mmap(PROGRAM_BASE + 2 * i * PS, PS, RW, f | C.MAP_FIXED, C.NOFD, 0)
    p.mmap(PROGRAM_BASE + 8 * PS, PS, RW, ANON | C.MAP_FIXED | C.MAP_LAZY, C.NOFD, 0)
    entries = [v for _, _, v in p.space.map]
    assert len(entries) == 4
    assert entries[0].flags is entries[1].flags is entries[2].flags
    assert entries[3].flags != entries[0].flags
