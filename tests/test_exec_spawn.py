"""spawn (R-PROC-1), exec (R-PROC-3) and resource limits (SPEC 18, R-MMAP-18, R-MMAP-19,
R-LOCK-1, R-SHM-2).

What a spawned child gets: credentials, umask, abilities (by their inherit flags), the fds
that are not close-on-exec, its own rlimits copy; no mappings and no locks.  What exec keeps
and drops.  The soft/hard rules of setrlimit and where the limits are enforced.
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
    STACK_GUARD,
    STACK_SIZE,
    R,
    creds,
)
from support import expect_error as expect

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.abilities import NONROOT, DomainEntry

RAM = 64 << 20


def kernel() -> Kernel:
    return Kernel(ram=RAM)


def layout(p: Process) -> list[tuple[int, int, int, int, str, str | None, bool]]:
    return [(m.start, m.end, m.prot, m.flags, m.kind, m.name, m.locked) for m in p.mappings()]


def state(k: Kernel) -> tuple[object, ...]:
    return (tuple((p.pid, p.mappings()) for p in k.processes()), k.meminfo())


# == R-PROC-1: spawn =========================================================================


def test_R_PROC_1_spawn_inherits_credentials() -> None:
    k = kernel()
    parent = k.spawn(uid=0, gid=0, image=False)
    parent.setegid(100)
    parent.seteuid(1000)
    for child in (parent.spawn(image=False), parent.spawn()):
        assert child.ppid == parent.pid
        assert creds(child) == creds(parent) == (0, 1000, 0, 0, 100, 0)
    plain = k.spawn(uid=1000, gid=100, image=False).spawn(image=False)
    assert creds(plain) == (1000, 1000, 1000, 100, 100, 100)


def test_R_PROC_1_spawn_inherits_umask() -> None:
    """[SIM] There is no umask() call; the attribute is set directly (R-SHM-3 uses it)."""
    k = kernel()
    parent = k.spawn(uid=1000, image=False)
    parent.umask = 0o077
    child = parent.spawn(image=False)
    assert child.umask == 0o077
    fd = child.shm_open("/made-by-child", C.O_RDWR | C.O_CREAT, 0o666)
    assert child.fstat(fd).st_mode & 0o777 == 0o600
    assert k.spawn(uid=1000, image=False).umask == 0o022  # a child of procnto: the default
    assert k.spawn(parent=parent, image=False).umask == 0o077


def test_R_PROC_1_spawn_inherits_abilities_by_their_inherit_flag() -> None:
    k = Kernel(version="7.1", ram=64 << 20)  # where mlock checks PROCMGR_AID_MEM_LOCK
    parent = k.spawn(image=False)
    words = [
        C.PROCMGR_ADN_NONROOT | C.PROCMGR_AOP_ALLOW | C.PROCMGR_AID_MEM_LOCK,
        C.PROCMGR_ADN_NONROOT | C.PROCMGR_AOP_ALLOW | C.PROCMGR_AOP_INHERIT_NO
        | C.PROCMGR_AID_MEM_PHYS,
        C.PROCMGR_ADN_ROOT | C.PROCMGR_AOP_DENY | C.PROCMGR_AID_MAP_FIXED,
    ]  # fmt: skip
    assert parent.procmgr_ability(0, *words) == 0
    child = parent.spawn(image=False)
    entry = child.abilities.entry
    assert entry(C.PROCMGR_AID_MEM_LOCK, NONROOT).allowed  # inherited
    assert not entry(C.PROCMGR_AID_MEM_PHYS, NONROOT).allowed  # INHERIT_NO: the default
    expect(qerrno.EPERM, "R-MMAP-10", child.mmap, PROGRAM_BASE, PS, RW, ANON | C.MAP_FIXED,
           C.NOFD, 0)  # fmt: skip
    child.setuid(1000)
    a = child.mmap(0, PS, RW, ANON, C.NOFD, 0)
    assert child.mlock(a, PS) == 0
    expect(qerrno.EPERM, "R-MMAP-11", child.mmap, 0, PS, RW, C.MAP_SHARED | C.MAP_PHYS,
           C.NOFD, 0xF000_0000)  # fmt: skip
    # The child's table is its own.
    child.abilities.set(C.PROCMGR_AID_MEM_PEER, NONROOT, DomainEntry(True))
    assert not parent.abilities.entry(C.PROCMGR_AID_MEM_PEER, NONROOT).allowed


def test_R_PROC_1_spawn_inherits_fds_without_close_on_exec() -> None:
    k = kernel()
    k.create_file("/a", b"0123456789")
    k.create_file("/b", b"bbbb")
    parent = k.spawn(image=False)
    fa = parent.open("/a", C.O_RDONLY)
    fb = parent.open("/b", C.O_RDONLY | C.O_CLOEXEC)
    fs = parent.shm_open("/s", C.O_RDWR | C.O_CREAT, 0o600)  # always close-on-exec (R-SHM-3)
    fd = parent.dup(fb)  # dup's fd is not close-on-exec
    assert (fa, fb, fs, fd) == (0, 1, 2, 3)
    child = parent.spawn(image=False)
    assert sorted(child.fdt.fds) == [fa, fd]
    expect(qerrno.EBADF, "R-FS-2", child.read, fb, 1)
    expect(qerrno.EBADF, "R-FS-2", child.fstat, fs)
    # The same open file description: one file offset.
    parent.lseek(fa, 5, C.SEEK_SET)
    assert child.read(fa, 2) == b"56"
    assert parent.read(fa, 2) == b"78"
    assert child.read(fd, 4) == b"bbbb"
    child.close(fa)
    assert parent.read(fa, 1) == b"9"  # the parent's fd stays open
    k.check_invariants()


def test_R_PROC_1_spawn_child_has_no_mappings_of_the_parent() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    a = parent.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    s = parent.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    parent.write_memory(s, b"shared")
    empty = parent.spawn(image=False)
    assert empty.mappings() == ()
    imaged = parent.spawn("/proc/boot/child")
    assert imaged.mapping_at(a) is not None  # the image's text sits at PROGRAM_BASE ...
    assert imaged.mapping_at(a).kind == "elf"  # ... but it is the child's own image
    assert imaged.mapping_at(s) is None
    assert {m.kind for m in imaged.mappings()} == {"elf", "anon", "stack-guard"}
    k.check_invariants()


def test_R_PROC_1_spawn_child_has_no_locks() -> None:
    k = Kernel(version="7.1", ram=64 << 20)  # 8.0 records no locks (R-LOCK-7)
    parent = k.spawn(image=False)
    parent.mmap(0, PS, RW, ANON, C.NOFD, 0)
    assert parent.mlock(PROGRAM_BASE, PS) == 0 and parent.space.locked_bytes == PS
    child = parent.spawn()
    assert child.mappings() and not any(m.locked for m in child.mappings())
    assert child.space.locked_bytes == 0


def test_R_PROC_1_spawn_child_gets_a_copy_of_the_rlimits() -> None:
    k = kernel()
    parent = k.spawn(uid=1000, image=False)
    parent.setrlimit(C.RLIMIT_AS, 4 * PS, 8 * PS)
    child = parent.spawn(image=False)
    assert child.getrlimit(C.RLIMIT_AS) == (4 * PS, 8 * PS)
    child.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    expect(qerrno.ENOMEM, "R-MMAP-18", child.mmap, 0, PS, RW, ANON, C.NOFD, 0)
    child.setrlimit(C.RLIMIT_AS, 8 * PS, 8 * PS)
    assert parent.getrlimit(C.RLIMIT_AS) == (4 * PS, 8 * PS)


def test_R_PROC_1_spawn_from_a_zombie_is_esrch() -> None:
    """[SIM] A process that has exited makes no calls."""
    k = kernel()
    parent = k.spawn(image=False)
    child = parent.spawn(image=False)
    child.exit(0)
    before = len(k.processes())
    for spawn in (lambda: child.spawn(image=False), lambda: k.spawn(parent=child, image=False)):
        with pytest.raises(QnxError) as info:
            spawn()
        assert info.value.errno == qerrno.ESRCH
    assert len(k.processes()) == before


# == R-PROC-3: exec ==========================================================================


def test_R_PROC_3_exec_replaces_the_address_space_with_a_new_image() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    s = p.mmap(0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
    lazy = p.mmap(0, 2 * PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    p.write_memory(lazy, b"touched")
    pid, ppid, ids = p.pid, p.ppid, creds(p)
    assert p.exec("/proc/boot/next") == 0
    assert (p.pid, p.ppid, creds(p)) == (pid, ppid, ids)
    assert p.path == "/proc/boot/next"
    assert p.mapping_at(s) is None
    assert p.mapping_at(a).kind == p.mapping_at(lazy).kind == "elf"  # the new text is there
    # The same image as a fresh spawn of that path, and the same RAM use.
    fresh_k = kernel()
    fresh = fresh_k.spawn("/proc/boot/next")
    assert layout(p) == layout(fresh)
    assert k.meminfo() == fresh_k.meminfo()
    text = p.mapping_at(PROGRAM_BASE)
    assert text.prot == RX and text.name == "/proc/boot/next" and text.flags & C.MAP_ELF
    stack = [m for m in p.mappings() if m.flags & C.MAP_STACK]
    assert [m.size for m in stack] == [STACK_GUARD, STACK_SIZE - STACK_GUARD]
    k.check_invariants()


def test_R_PROC_3_exec_closes_close_on_exec_fds_and_keeps_the_others() -> None:
    k = kernel()
    k.create_file("/a", b"abcdef")
    k.create_file("/b", b"b")
    p = k.spawn(image=False)
    fa = p.open("/a", C.O_RDONLY)
    fb = p.open("/b", C.O_RDONLY | C.O_CLOEXEC)
    fs = p.shm_open("/s", C.O_RDWR | C.O_CREAT, 0o600)
    fd = p.dup(fs)  # not close-on-exec
    p.read(fa, 2)
    p.exec("/proc/boot/next")
    assert sorted(p.fdt.fds) == [fa, fd]
    assert p.read(fa, 2) == b"cd"  # the same description, offset kept
    expect(qerrno.EBADF, "R-FS-2", p.read, fb, 1)
    expect(qerrno.EBADF, "R-FS-2", p.close, fs)
    assert p.fstat(fd).st_size == 0  # the shm object lives on through the dup
    k.check_invariants()


def test_R_PROC_3_exec_drops_locks() -> None:
    k = Kernel(version="7.1", ram=64 << 20)  # 8.0 records no locks (R-LOCK-7)
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, 2 * PS, 2 * PS)
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    p.mlock(a, 2 * PS)
    assert p.space.locked_bytes == 2 * PS
    p.exec("/proc/boot/next")
    assert not any(m.locked for m in p.mappings())
    b = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert p.mlock(b, 2 * PS) == 0  # the old locks no longer count against the limit
    k.check_invariants()


def test_R_PROC_3_exec_drops_mcl_future() -> None:
    k = Kernel(version="7.1", ram=64 << 20)  # R-LOCK-3: 8.0's mlockall does nothing
    p = k.spawn(image=False)
    p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE)
    p.exec("/proc/boot/next")
    p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    assert not any(m.locked for m in p.mappings())


def test_R_PROC_3_exec_leaves_shared_objects_to_their_other_users() -> None:
    k = kernel()
    p = k.spawn(image=False)
    s = p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    p.write_memory(s, b"still here")
    child = k.process(p.fork())  # R-PROC-2: maps the same object
    child.exec("/proc/boot/next")
    assert child.mapping_at(s) is None
    assert p.read_memory(s, 10) == b"still here"
    k.check_invariants()


def test_R_PROC_3_exec_removes_peer_made_mappings() -> None:
    """R-PEER-5: a mapping made by a peer is an ordinary mapping of the target."""
    k = kernel()
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    a = server.mmap_peer(client.pid, 0, PS, RW, SHARED_ANON, C.NOFD, 0)
    client.exec("/proc/boot/next")
    assert client.mapping_at(a) is None
    assert server.mappings() == ()
    k.check_invariants()


def test_R_PROC_3_exec_keeps_rlimits_abilities_and_umask() -> None:
    """[SIM] SPEC is silent; POSIX exec keeps the resource limits, and so does QNX."""
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    p.setrlimit(C.RLIMIT_AS, 1 << 30, 1 << 31)
    p.umask = 0o027
    p.abilities.set(C.PROCMGR_AID_MEM_LOCK, NONROOT, DomainEntry(True))
    p.exec("/proc/boot/next")
    assert p.getrlimit(C.RLIMIT_AS) == (1 << 30, 1 << 31)
    assert p.umask == 0o027
    assert p.abilities.entry(C.PROCMGR_AID_MEM_LOCK, NONROOT).allowed


def test_R_PROC_3_exec_by_a_zombie_is_esrch_and_libc_form() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert p.libc.exec("/proc/boot/next") == 0
    child = p.spawn(image=False)
    child.exit(0)
    assert child.libc.exec("/proc/boot/next") == -1
    assert child.libc.errno == qerrno.ESRCH


# == SPEC 18: rlimits ========================================================================


@pytest.mark.parametrize("resource", RLIMITS)
def test_SPEC_18_rlimit_defaults(resource: int) -> None:
    p = kernel().spawn(image=False)
    want = 1000 if resource == C.RLIMIT_NOFILE else C.RLIM_INFINITY
    assert p.getrlimit(resource) == (want, want)
    assert C.RLIM_INFINITY == 2**64 - 3
    assert C.RLIMIT_VMEM == C.RLIMIT_AS == C.RLIMIT_RSS == 6


def test_SPEC_18_rlimit_vmem_is_rlimit_as() -> None:
    p = kernel().spawn(image=False)
    p.setrlimit(C.RLIMIT_VMEM, 2 * PS, 4 * PS)
    assert p.getrlimit(C.RLIMIT_AS) == (2 * PS, 4 * PS)
    p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    expect(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, ANON, C.NOFD, 0)


@pytest.mark.parametrize("uid", [0, 1000])
def test_SPEC_18_soft_above_hard_is_einval(uid: int) -> None:
    p = kernel().spawn(uid=uid, image=False)
    p.setrlimit(C.RLIMIT_DATA, 4 * PS, 8 * PS)
    with pytest.raises(QnxError) as info:
        p.setrlimit(C.RLIMIT_DATA, 8 * PS + 1, 8 * PS)
    assert info.value.errno == qerrno.EINVAL
    assert p.getrlimit(C.RLIMIT_DATA) == (4 * PS, 8 * PS)
    assert p.libc.setrlimit(C.RLIMIT_DATA, 2, 1) == -1 and p.libc.errno == qerrno.EINVAL


def test_SPEC_18_non_root_may_lower_both_and_raise_soft_up_to_hard() -> None:
    p = kernel().spawn(uid=1000, image=False)
    assert p.setrlimit(C.RLIMIT_NOFILE, 10, 500) == 0
    assert p.setrlimit(C.RLIMIT_NOFILE, 500, 500) == 0
    assert p.setrlimit(C.RLIMIT_NOFILE, 20, 100) == 0
    with pytest.raises(QnxError) as info:
        p.setrlimit(C.RLIMIT_NOFILE, 20, 101)
    assert info.value.errno == qerrno.EPERM
    assert p.getrlimit(C.RLIMIT_NOFILE) == (20, 100)


def test_SPEC_18_raising_hard_needs_euid_0_not_ruid_0() -> None:
    p = kernel().spawn(uid=0, image=False)
    p.setrlimit(C.RLIMIT_MEMLOCK, PS, PS)
    p.seteuid(1000)
    with pytest.raises(QnxError) as info:
        p.setrlimit(C.RLIMIT_MEMLOCK, PS, 2 * PS)
    assert info.value.errno == qerrno.EPERM
    p.seteuid(0)
    assert p.setrlimit(C.RLIMIT_MEMLOCK, C.RLIM_INFINITY, C.RLIM_INFINITY) == 0


@pytest.mark.parametrize("resource", [-1, 9, 100])
def test_SPEC_18_unknown_resource_is_einval(resource: int) -> None:
    """[SIM] POSIX: an invalid resource is EINVAL."""
    p = kernel().spawn(image=False)
    for call in (lambda: p.getrlimit(resource), lambda: p.setrlimit(resource, 1, 1)):
        with pytest.raises(QnxError) as info:
            call()
        assert info.value.errno == qerrno.EINVAL


def test_SPEC_18_limits_are_inherited_by_fork_and_spawn() -> None:
    k = kernel()
    p = k.spawn(uid=1000, image=False)
    p.setrlimit(C.RLIMIT_DATA, 2 * PS, 2 * PS)
    p.setrlimit(C.RLIMIT_NOFILE, 1, 1)
    p.setrlimit(C.RLIMIT_MEMLOCK, 0, 0)
    kids = [k.process(p.fork()), p.spawn(image=False), k.spawn(uid=1000, parent=p, image=False)]
    for kid in kids:
        assert kid.getrlimit(C.RLIMIT_DATA) == (2 * PS, 2 * PS)
        expect(qerrno.ENOMEM, "R-MMAP-18", kid.mmap, 0, 3 * PS, RW, ANON, C.NOFD, 0)
        assert kid.getrlimit(C.RLIMIT_NOFILE) == (1, 1)
        assert kid.getrlimit(C.RLIMIT_MEMLOCK) == (0, 0)
        with pytest.raises(QnxError) as info:  # [SIM] euid 1000 cannot raise it back
            kid.setrlimit(C.RLIMIT_DATA, 4 * PS, 4 * PS)
        assert info.value.errno == qerrno.EPERM
    assert k.spawn(uid=1000, image=False).getrlimit(C.RLIMIT_DATA)[0] == C.RLIM_INFINITY
    k.check_invariants()


def test_R_MMAP_18_rlimit_as_counts_every_kind_of_mapping() -> None:
    k = kernel()
    k.create_file("/f", bytes(PS))
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_AS, 6 * PS, 6 * PS)
    fd = p.open("/f", C.O_RDONLY)
    p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    p.mmap(0, PS, R, C.MAP_SHARED, fd, 0)
    p.mmap(0, PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    p.mmap(0, 2 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)  # the guard page counts too
    before = state(k)
    for args in (
        (0, PS, RW, ANON, C.NOFD, 0),
        (0, PS, R, C.MAP_SHARED, fd, 0),
        (0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, 0xF000_0000),
    ):
        expect(qerrno.ENOMEM, "R-MMAP-18", p.mmap, *args)
    assert state(k) == before
    k.check_invariants()


def test_R_MMAP_18_rlimit_data_counts_private_anonymous_memory_only() -> None:
    k = kernel()
    k.create_file("/f", bytes(4 * PS))
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_DATA, 2 * PS, 2 * PS)
    fd = p.open("/f", C.O_RDONLY)
    zero = p.open("/dev/zero", C.O_RDWR)
    assert p.mmap(0, 4 * PS, RW, C.MAP_PRIVATE, fd, 0)  # a private file mapping: not data
    assert p.mmap(0, 4 * PS, RW, SHARED_ANON, C.NOFD, 0)
    assert p.mmap(0, 4 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE, zero, 0)  # /dev/zero private: anonymous (R-MMAP-21)
    assert p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    expect(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, C.MAP_PRIVATE, zero, 0)
    expect(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    k.check_invariants()


def test_R_MMAP_18_limits_of_the_target_for_a_peer_call() -> None:
    """R-PEER-4: rlimits are the target's, not the caller's."""
    k = kernel()
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    server.setrlimit(C.RLIMIT_AS, PS, PS)
    client.setrlimit(C.RLIMIT_AS, 2 * PS, 2 * PS)
    assert server.mmap_peer(client.pid, 0, 2 * PS, RW, ANON, C.NOFD, 0)  # server's limit: no
    before = state(k)
    expect(qerrno.ENOMEM, "R-MMAP-18", server.mmap_peer, client.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert state(k) == before
    assert client.mmap_peer(server.pid, 0, PS, RW, ANON, C.NOFD, 0)
    expect(qerrno.ENOMEM, "R-MMAP-18", client.mmap_peer, server.pid, 0, PS, RW, ANON, C.NOFD, 0)


@pytest.mark.parametrize("version", ["7.1", "6.4"])
def test_R_LOCK_1_rlimit_memlock_zero_refuses_any_lock(version: str) -> None:
    k = Kernel(version=version, arch="x86_64", ram=64 << 20)
    errno = k.profile.memlock_errno  # SPEC 19: ENOMEM on 7.1, EAGAIN on 6.4
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    p.setrlimit(C.RLIMIT_MEMLOCK, 0, 0)
    expect(errno, "R-LOCK-1", p.mlock, a, PS)
    child = p.spawn(image=False)  # the limit is inherited (SPEC 18)
    b = child.mmap(0, PS, RW, ANON, C.NOFD, 0)
    expect(errno, "R-LOCK-1", child.mlock, b, PS)


def test_R_MMAP_19_mcl_future_uses_the_memlock_limit_of_the_target() -> None:
    k = Kernel(version="7.1", ram=64 << 20)  # R-MMAP-19 cannot fire on 8.0 (R-LOCK-7)
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    client.setrlimit(C.RLIMIT_MEMLOCK, PS, PS)
    client.mlockall(C.MCL_FUTURE)
    assert server.mmap_peer(client.pid, 0, PS, RW, ANON, C.NOFD, 0)
    expect(qerrno.EAGAIN, "R-MMAP-19", server.mmap_peer, client.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert server.mmap(0, PS, RW, ANON, C.NOFD, 0)  # the server has no MCL_FUTURE


def test_R_SHM_2_rlimit_nofile_is_emfile() -> None:
    k = kernel()
    k.create_file("/f")
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_NOFILE, 2, 2)
    assert p.open("/f", C.O_RDONLY) == 0
    assert p.shm_open("/one", C.O_RDWR | C.O_CREAT, 0o600) == 1
    before = state(k)
    expect(qerrno.EMFILE, "R-SHM-2", p.shm_open, "/two", C.O_RDWR | C.O_CREAT, 0o600)
    assert k.paths.lookup("/dev/shmem/two") is None  # nothing was created (R-CALL-5)
    with pytest.raises(QnxError) as info:
        p.open("/f", C.O_RDONLY)
    assert info.value.errno == qerrno.EMFILE
    with pytest.raises(QnxError) as info:
        p.dup(0)
    assert info.value.errno == qerrno.EMFILE
    assert state(k) == before
    p.close(0)
    assert p.open("/f", C.O_RDONLY) == 0
    k.check_invariants()


def test_R_SHM_2_rlimit_nofile_lowered_below_open_fds_keeps_them() -> None:
    k = kernel()
    k.create_file("/f")
    p = k.spawn(image=False)
    for _ in range(3):
        p.open("/f", C.O_RDONLY)
    p.setrlimit(C.RLIMIT_NOFILE, 1, 1)
    assert sorted(p.fdt.fds) == [0, 1, 2]
    with pytest.raises(QnxError) as info:
        p.open("/f", C.O_RDONLY)
    assert info.value.errno == qerrno.EMFILE
    p.close(0)
    assert p.open("/f", C.O_RDONLY) == 0  # fd 0 is below the limit
