"""Shared memory handles, SPEC 13.3: R-HANDLE-1 .. R-HANDLE-6.

A server makes a handle on a shm object for one client; the client turns it into an fd
(shm_open_handle) or a mapping (mmap_handle), once.  Profiles without handles (SPEC 19)
are read from the profile's data.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import PS, RW, expect_error

from qnxsim import Kernel, MemoryFault, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.calls import CALLS
from qnxsim.testing import kernel_report
from qnxsim.trace import call_text, explain, format_arg

CREATE = C.O_RDWR | C.O_CREAT
NOFD_OPT = C.SHM_CREATE_HANDLE_OPT_NOFD
VERSIONS = ("8.0", "7.1", "6.4")


def kernel(version: str = "8.0", **kw: Any) -> Kernel:
    return Kernel(version=version, arch="x86_64", ram=64 << 20, **kw)


def server_client(version: str = "8.0", **kw: Any) -> tuple[Kernel, Process, Process, int]:
    """A root server with a 2-page shm object "/buf" holding b"hello", and a client."""
    k = kernel(version, **kw)
    server = k.spawn(image=False)
    client = k.spawn(uid=1000, image=False)
    fd = server.shm_open("/buf", CREATE, 0o600)
    server.ftruncate(fd, 2 * PS)
    server.pwrite(fd, b"hello", 0)
    return k, server, client, fd


def unchanged(k: Kernel) -> tuple[Any, ...]:
    """What a failing handle call must leave alone (R-CALL-5)."""
    procs = tuple((p.pid, p.mappings(), tuple(sorted(p.fdt.fds))) for p in k.processes())
    return procs, k.meminfo(), tuple((v, h.recipient) for v, h in k.shm_handles)


def fails(k: Kernel, errno: int, rule: str, call: Any, *args: Any) -> QnxError:
    before = unchanged(k)
    err = expect_error(errno, rule, call, *args)
    assert unchanged(k) == before, "R-CALL-5: a failed call changed state"
    k.check_invariants()
    return err


# -- R-HANDLE-1: shm_create_handle --------------------------------------------------------------


def test_R_HANDLE_1_handle_is_a_nonzero_32_bit_value_never_reused() -> None:
    k, server, client, fd = server_client()
    h1 = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    h2 = server.shm_create_handle(fd, client.pid, C.O_RDONLY, 0)
    assert 0 < h1 < 1 << 32 and 0 < h2 < 1 << 32 and h1 != h2
    server.shm_delete_handle(h1)
    h3 = server.shm_create_handle(fd, client.pid, C.O_RDONLY, 0)
    assert h3 not in (h1, h2)
    k.check_invariants()


def test_R_HANDLE_1_bad_fd_is_EBADF() -> None:
    k, server, client, _ = server_client()
    fails(k, qerrno.EBADF, "R-HANDLE-1", server.shm_create_handle, 77, client.pid, C.O_RDWR, 0)
    fails(k, qerrno.EBADF, "R-HANDLE-1", server.shm_create_handle, -1, client.pid, C.O_RDWR, 0)


def test_R_HANDLE_1_not_a_shm_object_is_EINVAL() -> None:
    k, server, client, _ = server_client()
    k.create_file("/f", b"x")
    ffd = server.open("/f", C.O_RDWR)
    fails(k, qerrno.EINVAL, "R-HANDLE-1", server.shm_create_handle, ffd, client.pid, C.O_RDWR, 0)
    zfd = server.open("/dev/zero", C.O_RDWR)
    fails(k, qerrno.EINVAL, "R-HANDLE-1", server.shm_create_handle, zfd, client.pid, C.O_RDWR, 0)


@pytest.mark.parametrize("flags", [C.O_EXEC, C.O_RDWR | C.O_CREAT, C.O_RDONLY | C.O_CLOEXEC, 7])
def test_R_HANDLE_1_flags_other_than_an_access_mode_are_EINVAL(flags: int) -> None:
    k, server, client, fd = server_client()
    fails(k, qerrno.EINVAL, "R-HANDLE-1", server.shm_create_handle, fd, client.pid, flags, 0)


@pytest.mark.parametrize("options", [C.SHM_CREATE_HANDLE_OPT_SUBRANGE, 0x4, 0x80000000])
def test_R_HANDLE_1_options_other_than_0_or_NOFD_are_EINVAL(options: int) -> None:
    k, server, client, fd = server_client()
    fails(k, qerrno.EINVAL, "R-HANDLE-1", server.shm_create_handle, fd, client.pid, C.O_RDWR,
          options)  # fmt: skip


def test_R_HANDLE_1_more_access_than_the_fd_is_EACCES() -> None:
    k, server, client, _ = server_client()
    ro = server.shm_open("/buf", C.O_RDONLY)
    for flags in (C.O_RDWR, C.O_WRONLY):
        fails(k, qerrno.EACCES, "R-HANDLE-1", server.shm_create_handle, ro, client.pid, flags, 0)
    assert server.shm_create_handle(ro, client.pid, C.O_RDONLY, 0)


def test_R_HANDLE_1_no_such_pid_or_zombie_is_ESRCH_checked_last() -> None:
    k, server, _client, fd = server_client()
    fails(k, qerrno.ESRCH, "R-HANDLE-1", server.shm_create_handle, fd, 9999, C.O_RDWR, 0)
    child = server.spawn(image=False)
    child.exit(0)  # a zombie until the server waits
    fails(k, qerrno.ESRCH, "R-HANDLE-1", server.shm_create_handle, fd, child.pid, C.O_RDWR, 0)
    # EACCES is checked before ESRCH
    ro = server.shm_open("/buf", C.O_RDONLY)
    fails(k, qerrno.EACCES, "R-HANDLE-1", server.shm_create_handle, ro, 9999, C.O_RDWR, 0)


def test_R_HANDLE_1_the_caller_may_be_the_recipient() -> None:
    _k, server, _, fd = server_client()
    h = server.shm_create_handle(fd, server.pid, C.O_RDWR, 0)
    fd2 = server.shm_open_handle(h, C.O_RDWR)
    assert server.pread(fd2, 5, 0) == b"hello"


# -- R-HANDLE-2: shm_open_handle ----------------------------------------------------------------


def test_R_HANDLE_2_open_handle_gives_a_cloexec_fd_and_uses_the_handle_up() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    cfd = client.shm_open_handle(h, C.O_RDWR)
    assert cfd == 0  # the lowest free fd
    assert client.fdt.fds[cfd][1] is True  # close-on-exec
    assert client.pread(cfd, 5, 0) == b"hello"
    client.pwrite(cfd, b"HE", 0)
    assert server.pread(fd, 5, 0) == b"HEllo"
    fails(k, qerrno.EBADF, "R-HANDLE-2", client.shm_open_handle, h, C.O_RDWR)
    k.check_invariants()


@pytest.mark.parametrize("flags", [C.O_RDWR | C.O_CREAT, C.O_EXEC, C.O_RDONLY | C.O_TRUNC])
def test_R_HANDLE_2_flags_other_than_access_mode_and_cloexec_are_EINVAL(flags: int) -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    fails(k, qerrno.EINVAL, "R-HANDLE-2", client.shm_open_handle, h, flags)
    assert client.shm_open_handle(h, C.O_RDONLY | C.O_CLOEXEC) >= 0


def test_R_HANDLE_2_unknown_or_other_process_handle_is_EBADF() -> None:
    k, server, client, fd = server_client()
    fails(k, qerrno.EBADF, "R-HANDLE-2", client.shm_open_handle, 0, C.O_RDWR)
    fails(k, qerrno.EBADF, "R-HANDLE-2", client.shm_open_handle, 0xFFFFFFFF, C.O_RDWR)
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    other = k.spawn(uid=1000, image=False)
    fails(k, qerrno.EBADF, "R-HANDLE-2", other.shm_open_handle, h, C.O_RDWR)
    fails(k, qerrno.EBADF, "R-HANDLE-2", server.shm_open_handle, h, C.O_RDWR)  # the creator
    assert client.shm_open_handle(h, C.O_RDWR) >= 0  # failures left it usable


def test_R_HANDLE_2_NOFD_handle_is_EPERM_but_maps() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, NOFD_OPT)
    fails(k, qerrno.EPERM, "R-HANDLE-2", client.shm_open_handle, h, C.O_RDONLY)
    a = client.mmap_handle(0, PS, C.PROT_READ, C.MAP_SHARED, h, 0)
    assert client.read_memory(a, 5) == b"hello"


def test_R_HANDLE_2_more_access_than_the_handle_is_EACCES() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDONLY, 0)
    fails(k, qerrno.EACCES, "R-HANDLE-2", client.shm_open_handle, h, C.O_RDWR)
    fails(k, qerrno.EACCES, "R-HANDLE-2", client.shm_open_handle, h, C.O_WRONLY)
    assert client.shm_open_handle(h, C.O_RDONLY) >= 0


def test_R_HANDLE_2_no_free_fd_is_EMFILE() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    client.setrlimit(C.RLIMIT_NOFILE, 0, client.getrlimit(C.RLIMIT_NOFILE)[1])
    fails(k, qerrno.EMFILE, "R-HANDLE-2", client.shm_open_handle, h, C.O_RDWR)


# -- R-HANDLE-3: mmap_handle --------------------------------------------------------------------


def test_R_HANDLE_3_mmap_handle_maps_into_the_caller_once() -> None:
    k, server, client, fd = server_client(trace=True)
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    server_layout = server.mappings()
    a = client.mmap_handle(0, 2 * PS, RW, C.MAP_SHARED, h, 0)
    rec = client.mapping_at(a)
    assert rec is not None and (rec.kind, rec.name, rec.size) == ("shm", "/dev/shmem/buf", 2 * PS)
    assert server.mappings() == server_layout  # nobody changed the server's layout
    client.write_memory(a + 5, b" world")
    assert server.pread(fd, 11, 0) == b"hello world"
    fails(k, qerrno.EBADF, "R-HANDLE-3", client.mmap_handle, 0, PS, RW, C.MAP_SHARED, h, 0)
    mapped = next(e for e in k.trace if e.call == "mmap_handle" and not e.errno)
    text = explain(mapped)
    assert f"returned {a:#x}" in text and "shm, /dev/shmem/buf" in text
    assert f"mmap_handle(0, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, {h}, 0)" in text
    k.check_invariants()


def test_R_HANDLE_3_access_mode_of_the_handle_is_what_mmap_checks() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDONLY, 0)
    fails(k, qerrno.EACCES, "R-MMAP-12", client.mmap_handle, 0, PS, RW, C.MAP_SHARED, h, 0)
    a = client.mmap_handle(0, PS, RW, C.MAP_PRIVATE, h, 0)  # private copies are fine
    client.write_memory(a, b"J")
    assert server.pread(fd, 1, 0) == b"h"
    w = server.shm_create_handle(fd, client.pid, C.O_WRONLY, 0)
    fails(k, qerrno.EACCES, "R-MMAP-12", client.mmap_handle, 0, PS, C.PROT_READ, C.MAP_SHARED,
          w, 0)  # fmt: skip


def test_R_HANDLE_3_mmap_rules_run_in_order_before_the_handle_check() -> None:
    """The handle stands where R-MMAP-12's fd checks stand: earlier rules win."""
    k, _server, client, _ = server_client()
    fails(k, qerrno.EINVAL, "R-MMAP-2", client.mmap_handle, 0, 0, RW, C.MAP_SHARED, 42, 0)
    fails(k, qerrno.EINVAL, "R-MMAP-1", client.mmap_handle, 0, PS, RW, 0, 42, 0)
    fails(k, qerrno.EBADF, "R-HANDLE-3", client.mmap_handle, 0, PS, RW, C.MAP_SHARED, 42, 0)


@pytest.mark.parametrize("flag", [C.MAP_ANON, C.MAP_PHYS])
def test_R_HANDLE_3_MAP_ANON_or_MAP_PHYS_is_EINVAL(flag: int) -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    fails(k, qerrno.EINVAL, "R-HANDLE-3", client.mmap_handle, 0, PS, RW, C.MAP_SHARED | flag,
          h, 0)  # fmt: skip


def test_R_HANDLE_3_MAP_HANDLE_is_accepted_there_and_refused_by_plain_mmap() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    a = client.mmap_handle(0, PS, RW, C.MAP_SHARED | C.MAP_HANDLE, h, 0)
    rec = client.mapping_at(a)
    assert rec is not None and not rec.flags & C.MAP_HANDLE
    fails(k, qerrno.EINVAL, "R-MMAP-5", server.mmap, 0, PS, RW, C.MAP_SHARED | C.MAP_HANDLE,
          fd, 0)  # fmt: skip


def test_R_HANDLE_3_failure_leaves_the_handle_usable() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    client.setrlimit(C.RLIMIT_AS, PS, client.getrlimit(C.RLIMIT_AS)[1])
    fails(k, qerrno.ENOMEM, "R-MMAP-18", client.mmap_handle, 0, 2 * PS, RW, C.MAP_SHARED, h, 0)
    assert client.mmap_handle(0, PS, RW, C.MAP_SHARED, h, PS) > 0
    k.check_invariants()


# -- R-HANDLE-4: shm_delete_handle --------------------------------------------------------------


def test_R_HANDLE_4_creator_or_recipient_deletes_others_get_ESRCH() -> None:
    k, server, client, fd = server_client()
    h1 = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    h2 = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    other = k.spawn(image=False)
    fails(k, qerrno.ESRCH, "R-HANDLE-4", other.shm_delete_handle, h1)
    assert server.shm_delete_handle(h1) == 0
    assert client.shm_delete_handle(h2) == 0
    fails(k, qerrno.ESRCH, "R-HANDLE-4", server.shm_delete_handle, h1)
    fails(k, qerrno.EBADF, "R-HANDLE-2", client.shm_open_handle, h2, C.O_RDWR)
    assert len(k.shm_handles) == 0
    k.check_invariants()


# -- how handles and options read in reasons and traces ----------------------------------------


def test_R_HANDLE_1_reasons_name_the_handle_in_decimal_as_the_trace_does() -> None:
    """C prints a ``shm_handle_t`` with ``%u``: a reason spells the handle as the trace does."""
    k, server, client, fd = server_client(trace=True)
    k.shm_handles.next_value = 70000  # hex 0x11170: the two spellings differ
    h = server.shm_create_handle(fd, client.pid, C.O_RDONLY, NOFD_OPT)
    other = k.spawn(uid=1000, image=False)
    cases: list[tuple[int, str, Any, tuple[int, ...], int]] = [
        (qerrno.EPERM, "R-HANDLE-2", client.shm_open_handle, (h, C.O_RDONLY), 0),
        (qerrno.EBADF, "R-HANDLE-2", other.shm_open_handle, (h, C.O_RDONLY), 0),
        (qerrno.EBADF, "R-HANDLE-3", client.mmap_handle, (0, PS, RW, C.MAP_SHARED, h + 1, 0), 4),
        (qerrno.EACCES, "R-MMAP-12", client.mmap_handle, (0, PS, RW, C.MAP_SHARED, h, 0), 4),
        (qerrno.ESRCH, "R-HANDLE-4", other.shm_delete_handle, (h,), 0),
    ]
    for errno, rule, call, args, at in cases:
        err = fails(k, errno, rule, call, *args)
        event = k.trace[-1]
        assert (event.call, event.errno) == (call.__name__, errno)
        shown = format_arg(CALLS[event.call].args[at].kind, event.args[at])
        assert shown == str(args[at]) and shown in call_text(event)
        assert f"handle {shown} " in err.reason and hex(args[at]) not in err.reason, err.reason
    made = next(e for e in k.trace if e.call == "shm_create_handle")
    assert f"returned {h}." in explain(made)


@pytest.mark.parametrize(
    ("version", "options", "shown"),
    [
        ("8.0", 0, "0"),
        ("8.0", NOFD_OPT, "SHM_CREATE_HANDLE_OPT_NOFD"),
        ("8.0", C.SHM_CREATE_HANDLE_OPT_SUBRANGE, "SHM_CREATE_HANDLE_OPT_SUBRANGE"),
        ("8.0", NOFD_OPT | 0x30, "SHM_CREATE_HANDLE_OPT_NOFD|0x30"),
        ("7.1", NOFD_OPT, "SHM_CREATE_HANDLE_OPT_NOFD"),
        ("7.1", NOFD_OPT | C.SHM_CREATE_HANDLE_OPT_SUBRANGE, "SHM_CREATE_HANDLE_OPT_NOFD|0x2"),
        ("6.4", NOFD_OPT, "0x1"),
    ],
)
def test_R_HANDLE_1_options_read_by_the_names_the_version_defines(
    version: str, options: int, shown: str
) -> None:
    """SPEC 18: SUBRANGE is 8.0's, 7.1 has only NOFD, 6.4 none; other bits stay in hex."""
    k = kernel(version, trace=True)
    server = k.spawn(image=False)
    fd = server.shm_open("/buf", CREATE, 0o600)
    with contextlib.suppress(QnxError):
        server.shm_create_handle(fd, server.pid, C.O_RDONLY, options)
    event = k.trace[-1]
    call = f"shm_create_handle({fd}, {server.pid}, O_RDONLY, {shown})"
    assert call_text(event) == call
    assert f"called {call} and it" in explain(event)
    assert f"pid {server.pid} {call} -> " in kernel_report(k)


# -- R-HANDLE-5: lifetime -----------------------------------------------------------------------


def test_R_HANDLE_5_unused_handle_keeps_the_object_alive_until_used() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    before = k.meminfo()
    server.shm_unlink("/buf")
    server.exit(0)  # the creator's fd, name and process all go
    assert k.meminfo() == before  # the handle still holds the object's frames
    k.check_invariants()
    cfd = client.shm_open_handle(h, C.O_RDONLY)
    assert client.pread(cfd, 5, 0) == b"hello"
    client.close(cfd)
    assert k.meminfo().allocated == before.allocated - 2 * PS  # last reference gone
    k.check_invariants()


def test_R_HANDLE_5_deleting_the_last_reference_frees_the_object() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    server.shm_unlink("/buf")
    server.close(fd)
    allocated = k.meminfo().allocated
    server.shm_delete_handle(h)
    assert k.meminfo().allocated == allocated - 2 * PS
    k.check_invariants()


def test_R_HANDLE_5_recipient_exit_drops_its_handles() -> None:
    k, server, client, fd = server_client()
    server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    kept = server.shm_create_handle(fd, server.pid, C.O_RDWR, 0)
    server.shm_unlink("/buf")
    server.close(fd)
    client.exit(0)
    assert [v for v, _ in k.shm_handles] == [kept]
    k.check_invariants()


def test_R_HANDLE_5_survives_exec_fork_and_spawn_children_cannot_use_it() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    child_pid = client.fork()
    child = k.process(child_pid)
    fails(k, qerrno.EBADF, "R-HANDLE-2", child.shm_open_handle, h, C.O_RDWR)
    spawned = client.spawn(image=False)
    fails(k, qerrno.EBADF, "R-HANDLE-3", spawned.mmap_handle, 0, PS, RW, C.MAP_SHARED, h, 0)
    client.exec("/proc/boot/other")
    assert client.shm_open_handle(h, C.O_RDWR) >= 0  # same pid after exec
    k.check_invariants()


def test_R_HANDLE_5_handles_survive_snapshot_and_restore() -> None:
    k, server, client, fd = server_client()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    snap = k.snapshot()
    client.shm_open_handle(h, C.O_RDWR)
    server.shm_unlink("/buf")
    server.close(fd)
    k.restore(snap)
    k.check_invariants()
    a = client.mmap_handle(0, PS, C.PROT_READ, C.MAP_SHARED, h, 0)
    assert client.read_memory(a, 5) == b"hello"
    assert server.pread(fd, 5, 0) == b"hello"  # the same object as the server's fd
    nxt = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    assert nxt > h  # the counter came back too, and moves on
    k.check_invariants()


# -- R-HANDLE-6: shm_revoke ---------------------------------------------------------------------


def revocable(version: str = "8.0") -> tuple[Kernel, Process, Process, int]:
    k, server, client, fd = server_client(version)
    if k.profile.handles:
        server.shm_ctl(fd, C.SHMCTL_REVOCABLE, 0, 0)
    return k, server, client, fd


def test_R_HANDLE_6_revoke_removes_the_recipients_mappings_and_handles() -> None:
    k, server, client, fd = revocable()
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    a = client.mmap_handle(0, 2 * PS, RW, C.MAP_SHARED, h, 0)
    h2 = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    hfd_handle = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    cfd = client.shm_open_handle(hfd_handle, C.O_RDWR)
    anon = client.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    mine = server.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    assert server.shm_revoke(fd, client.pid) == 0
    with pytest.raises(MemoryFault) as info:
        client.read_memory(a, 1)
    assert (info.value.signo, info.value.code) == (C.SIGSEGV, C.SEGV_MAPERR)
    assert client.mapping_at(anon) is not None  # other mappings stay
    assert server.read_memory(mine, 5) == b"hello"  # the creator's stay
    fails(k, qerrno.EBADF, "R-HANDLE-2", client.shm_open_handle, h2, C.O_RDWR)
    b = client.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, cfd, 0)  # its fd still maps
    assert client.read_memory(b, 5) == b"hello"
    k.check_invariants()


def test_R_HANDLE_6_checks_in_order() -> None:
    k, server, client, fd = server_client()
    fails(k, qerrno.EBADF, "R-HANDLE-6", server.shm_revoke, 55, 9999)
    k.create_file("/f")
    ffd = server.open("/f", C.O_RDONLY)
    fails(k, qerrno.EINVAL, "R-HANDLE-6", server.shm_revoke, ffd, 9999)
    fails(k, qerrno.EINVAL, "R-HANDLE-6", server.shm_revoke, fd, 9999)  # not revocable
    server.shm_ctl(fd, C.SHMCTL_REVOCABLE, 0, 0)
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    cfd = client.shm_open_handle(h, C.O_RDWR)
    fails(k, qerrno.EPERM, "R-HANDLE-6", client.shm_revoke, cfd, 9999)  # not the creator
    fails(k, qerrno.ESRCH, "R-HANDLE-6", server.shm_revoke, fd, 9999)
    assert server.shm_revoke(fd, client.pid) == 0


# -- SPEC 19: handles per profile ---------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_SPEC_19_handle_calls_per_profile(version: str) -> None:
    """7.1 and 8.0 have every handle call; 6.4 answers ENOSYS for each (profile data)."""
    k, server, client, fd = server_client(version)
    calls = [
        (server.shm_create_handle, (fd, client.pid, C.O_RDWR, 0)),
        (client.shm_open_handle, (1, C.O_RDWR)),
        (client.mmap_handle, (0, PS, RW, C.MAP_SHARED, 1, 0)),
        (server.shm_delete_handle, (1,)),
        (server.shm_revoke, (fd, client.pid)),
    ]
    if not k.profile.handles:
        for call, args in calls:
            fails(k, qerrno.ENOSYS, "R-HANDLE-1", call, *args)
            assert call.__self__.libc.__getattr__(call.__name__)(*args) in (-1, C.MAP_FAILED)
        assert not hasattr(k.constants, "SHM_CREATE_HANDLE_OPT_NOFD")
        return
    h = server.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    assert client.mmap_handle(0, PS, RW, C.MAP_SHARED, h, 0) > 0
    assert k.constants.SHM_CREATE_HANDLE_OPT_NOFD == 1
    subrange = getattr(k.constants, "SHM_CREATE_HANDLE_OPT_SUBRANGE", None)
    assert subrange == (2 if k.profile.handle_options[-1][1] == 2 else None)


def test_R_CALL_1_libc_failure_values_for_handle_calls() -> None:
    _k, server, client, fd = server_client()
    assert server.libc.shm_create_handle(99, client.pid, C.O_RDWR, 0) == -1
    assert server.libc.errno == qerrno.EBADF
    assert client.libc.mmap_handle(0, PS, RW, C.MAP_SHARED, 5, 0) == C.MAP_FAILED
    assert client.libc.errno == qerrno.EBADF
    h = server.libc.shm_create_handle(fd, client.pid, C.O_RDWR, 0)
    assert h > 0 and client.libc.shm_open_handle(h, C.O_RDWR) == 0
    assert client.libc.shm_delete_handle(h) == -1 and client.libc.errno == qerrno.ESRCH
    assert server.libc.shm_revoke(fd, client.pid) == -1 and server.libc.errno == qerrno.EINVAL


# -- property tests -----------------------------------------------------------------------------

_STEP = st.tuples(
    st.sampled_from(["create", "open", "map", "delete", "exit", "close", "unlink"]),
    st.integers(0, 2),  # which process (0: the server)
    st.integers(0, 4),  # which handle (index into those made so far) or access mode
    st.booleans(),  # NOFD
)


@settings(max_examples=60)
@given(steps=st.lists(_STEP, max_size=12))
def test_R_HANDLE_property_refcounts_and_single_use(
    steps: list[tuple[str, int, int, bool]],
) -> None:
    """Random handle traffic: every failure changes nothing, a handle that was used,
    deleted or dropped never works again, and check_invariants (which counts each unused
    handle as a reference on its object) holds after every step."""
    k, server, client, fd = server_client()
    other = k.spawn(uid=1000, image=False)
    procs = [server, client, other]
    made: list[int] = []
    gone: set[int] = set()
    for op, who, which, nofd in steps:
        p = procs[who]
        handle = made[which % len(made)] if made else 1
        before = unchanged(k)
        try:
            if op == "create":
                made.append(server.shm_create_handle(fd, p.pid, C.O_RDWR, NOFD_OPT * nofd))
            elif op == "open":
                p.shm_open_handle(handle, C.O_RDONLY)
                gone.add(handle)
            elif op == "map":
                p.mmap_handle(0, PS, C.PROT_READ, C.MAP_SHARED, handle, 0)
                gone.add(handle)
            elif op == "delete":
                p.shm_delete_handle(handle)
                gone.add(handle)
            elif op == "exit" and p is not server:
                p.exit(0)
                gone.update(v for v in made if v not in dict(k.shm_handles))
            elif op == "close":
                server.close(fd)
            elif op == "unlink":
                server.shm_unlink("/buf")
        except QnxError:
            assert unchanged(k) == before
        alive = {v for v, _ in k.shm_handles}
        assert not alive & gone, "a used, deleted or dropped handle came back"
        k.check_invariants()


def test_demo_gives_a_client_a_buffer_both_ways() -> None:
    """`qnxsim demo` shows mmap_peer and a handle (shm_create_handle, mmap_handle)."""
    import io

    from qnxsim.__main__ import demo

    out = io.StringIO()
    assert demo(out) == 0
    text = out.getvalue()
    assert "mmap_peer(" in text and "shm_create_handle(fd, " in text
    assert "mmap_handle(0, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, h, 0)" in text
    assert "the client reads b'request #2'" in text
    assert "EBADF (9): mmap_handle: R-HANDLE-3" in text
