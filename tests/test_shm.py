"""Shared memory objects against SPEC section 13: R-SHM-1 .. R-SHM-7.

Expectations come from SPEC.md: names (R-SHM-1), errors of shm_open (R-SHM-2), new objects
and O_TRUNC and close-on-exec (R-SHM-3), shm_unlink and object lifetime (R-SHM-4, R-OBJ-2),
ftruncate and its accounting (R-SHM-5, R-OBJ-3, R-OBJ-6) and shm_ctl (R-SHM-6, R-SHM-7;
the revision-2 rules have their own module, test_shm_rev2.py).
"""

from __future__ import annotations

import pytest
from support import PS, RW, expect_error

import qnxsim.abilities
from qnxsim import Kernel, MemoryFault, Process
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.pathspace import S_IFNAM

CREATE = C.O_RDWR | C.O_CREAT
S_IFMT = 0o170000
DEVICE_START = 0xF000_0000  # R-SYS-5
PHYS_END = 0x1_0000_0000  # R-SYS-5: the end of the device range, above 64 MiB of RAM


def kernel(ram: int = 64 << 20) -> Kernel:
    return Kernel(ram=ram)


def allow(proc: Process, aid: int) -> None:
    """Grant ``aid`` to ``proc`` in the non-root domain."""
    proc.abilities.set(aid, qnxsim.abilities.NONROOT, qnxsim.abilities.DomainEntry(True))


def deny(proc: Process, aid: int) -> None:
    """Deny ``aid`` to ``proc`` in the root domain."""
    proc.abilities.set(aid, qnxsim.abilities.ROOT, qnxsim.abilities.DomainEntry(False))


def fragment(p: Process, pages: int) -> None:
    """Leave every other page of the lowest ``2 * pages`` RAM pages free, one page each."""
    ps = [p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0) for _ in range(2 * pages)]
    for addr in ps[::2]:
        p.munmap(addr, PS)


# -- R-SHM-1: names --------------------------------------------------------------------------


def test_R_SHM_1_slash_name_is_dev_shmem() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/buf", CREATE, 0o600)
    p.write(fd, b"through shm_open")
    other = p.open("/dev/shmem/buf", C.O_RDONLY)
    assert p.read(other, 100) == b"through shm_open"
    assert p.fstat(fd).st_ino == p.fstat(other).st_ino
    assert p.fstat(fd).st_mode & S_IFMT == S_IFNAM
    k.check_invariants()


def test_R_SHM_1_other_names_are_paths_of_the_filesystem() -> None:
    k = kernel()
    k.create_file("/etc/data", b"a regular file")
    p = k.spawn(image=False)
    fd = p.shm_open("etc/data", C.O_RDONLY)  # relative to "/"
    assert p.read(fd, 100) == b"a regular file"
    fd2 = p.shm_open("/etc/data", C.O_RDONLY)  # a further "/": a path, not /dev/shmem
    assert p.fstat(fd2).st_ino == p.fstat(fd).st_ino
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "/etc/missing", C.O_RDONLY)
    # "/dev/shmem/x" as a path names the same object as "/x"
    a = p.shm_open("/dev/shmem/x", CREATE, 0o600)
    b = p.shm_open("/x", C.O_RDONLY)
    assert p.fstat(a).st_ino == p.fstat(b).st_ino
    k.check_invariants()


def test_R_SHM_1_shm_anon_makes_an_unnamed_object() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open(C.SHM_ANON, C.O_RDWR | C.O_CREAT, 0o600)
    st = p.fstat(fd)
    assert (st.st_size, st.st_nlink) == (0, 0)
    p.ftruncate(fd, PS)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    assert p.mapping_at(a).kind == "shm"  # type: ignore[union-attr]
    assert p.mapping_at(a).name is None  # type: ignore[union-attr]
    second = p.shm_open(C.SHM_ANON, C.O_RDWR | C.O_CREAT, 0o600)
    assert p.fstat(second).st_ino != st.st_ino  # every SHM_ANON call: a new object
    k.check_invariants()


@pytest.mark.parametrize(
    "oflag",
    [C.O_RDWR, C.O_RDONLY | C.O_CREAT, C.O_WRONLY | C.O_CREAT, C.O_CREAT],
    ids=["no-O_CREAT", "O_RDONLY", "O_WRONLY", "O_CREAT-only"],
)
def test_R_SHM_1_shm_anon_needs_O_CREAT_and_O_RDWR(oflag: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_error(qerrno.EINVAL, "R-SHM-1", p.shm_open, C.SHM_ANON, oflag, 0o600)
    assert not p.fdt.fds
    k.check_invariants()


# -- R-SHM-2: errors -------------------------------------------------------------------------


def test_R_SHM_2_empty_name_is_ENOENT() -> None:
    p = kernel().spawn(image=False)
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "", CREATE, 0o600)
    expect_error(qerrno.ENOENT, "R-SHM-4", p.shm_unlink, "")


def test_R_SHM_2_name_longer_than_NAME_MAX_is_ENAMETOOLONG() -> None:
    """[decision] NAME_MAX applies to the name after the leading "/" (a path component)."""
    k = kernel()
    p = k.spawn(image=False)
    too_long = "/" + "n" * (C.NAME_MAX + 1)
    expect_error(qerrno.ENAMETOOLONG, "R-SHM-2", p.shm_open, too_long, CREATE, 0o600)
    expect_error(qerrno.ENAMETOOLONG, "R-SHM-2", p.shm_unlink, too_long)
    longest = "/" + "n" * C.NAME_MAX
    fd = p.shm_open(longest, CREATE, 0o600)
    assert p.fstat(fd).st_size == 0
    assert p.shm_unlink(longest) == 0
    k.check_invariants()


def test_R_SHM_2_exists_with_O_CREAT_O_EXCL_is_EEXIST() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.shm_open("/e", CREATE, 0o600)
    expect_error(qerrno.EEXIST, "R-SHM-2", p.shm_open, "/e", CREATE | C.O_EXCL, 0o600)
    assert len(p.fdt.fds) == 1
    k.check_invariants()


def test_R_SHM_2_missing_without_O_CREAT_is_ENOENT() -> None:
    p = kernel().spawn(image=False)
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "/absent", C.O_RDWR)
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "/absent", C.O_RDONLY)


def test_R_SHM_2_permission_against_uid_gid_mode_is_EACCES() -> None:
    k = kernel()
    owner = k.spawn(uid=1000, gid=100, image=False)
    owner.shm_open("/perm", CREATE, 0o640)
    group = k.spawn(uid=2000, gid=100, image=False)
    other = k.spawn(uid=3000, gid=300, image=False)
    root = k.spawn(image=False)
    assert group.shm_open("/perm", C.O_RDONLY) >= 0
    expect_error(qerrno.EACCES, "R-SHM-2", group.shm_open, "/perm", C.O_RDWR)
    expect_error(qerrno.EACCES, "R-SHM-2", other.shm_open, "/perm", C.O_RDONLY)
    expect_error(qerrno.EACCES, "R-SHM-2", other.shm_open, "/perm", CREATE, 0o666)
    assert root.shm_open("/perm", C.O_RDWR) >= 0  # euid 0 passes
    k.check_invariants()


def test_R_SHM_2_more_than_RLIMIT_NOFILE_fds_is_EMFILE() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_NOFILE, 2, 2)
    p.shm_open("/one", CREATE, 0o600)
    p.shm_open("/two", CREATE, 0o600)
    expect_error(qerrno.EMFILE, "R-SHM-2", p.shm_open, "/three", CREATE, 0o600)
    expect_error(qerrno.EMFILE, "R-SHM-2", p.shm_open, C.SHM_ANON, CREATE, 0o600)
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "/three", C.O_RDONLY)  # not created
    k.check_invariants()


# -- R-SHM-3: new objects, O_TRUNC, close-on-exec ------------------------------------------------


def test_R_SHM_3_new_object_size_0_owner_euid_egid_mode_masked() -> None:
    k = kernel()
    p = k.spawn(uid=0, gid=0, image=False)
    p.setegid(77)
    p.seteuid(1234)
    fd = p.shm_open("/fresh", CREATE, 0o666)
    st = p.fstat(fd)
    assert (st.st_size, st.st_uid, st.st_gid) == (0, 1234, 77)
    assert st.st_mode & 0o7777 == 0o644  # mode & ~umask, umask 0o022 by default
    assert st.st_mode & S_IFMT == S_IFNAM
    p.umask = 0o027
    fd2 = p.shm_open("/fresh2", CREATE, 0o777)
    assert p.fstat(fd2).st_mode & 0o7777 == 0o750
    anon = p.shm_open(C.SHM_ANON, CREATE, 0o666)
    assert p.fstat(anon).st_mode & 0o7777 == 0o640
    assert (p.fstat(anon).st_uid, p.fstat(anon).st_gid) == (1234, 77)
    k.check_invariants()


def test_R_SHM_3_O_TRUNC_truncates_even_O_RDONLY() -> None:
    k = kernel()
    p = k.spawn(image=False)
    before = k.meminfo()
    fd = p.shm_open("/t", CREATE, 0o644)
    p.ftruncate(fd, 3 * PS)
    p.pwrite(fd, b"content", 0)
    assert k.meminfo().allocated == before.allocated + 3 * PS
    ro = p.shm_open("/t", C.O_RDONLY | C.O_TRUNC)
    assert p.fstat(ro).st_size == 0
    assert p.pread(fd, 10, 0) == b""
    assert k.meminfo() == before  # the frames went with the pages
    k.check_invariants()


def test_R_SHM_3_O_TRUNC_only_after_the_permission_check() -> None:
    k = kernel()
    owner = k.spawn(image=False)
    fd = owner.shm_open("/t", CREATE, 0o600)
    owner.ftruncate(fd, PS)
    other = k.spawn(uid=1000, image=False)
    expect_error(qerrno.EACCES, "R-SHM-2", other.shm_open, "/t", C.O_RDONLY | C.O_TRUNC)
    assert owner.fstat(fd).st_size == PS  # R-CALL-5: nothing truncated
    k.check_invariants()


def test_R_SHM_3_shm_fd_is_close_on_exec() -> None:
    k = kernel()
    k.create_file("/plain", b"")
    parent = k.spawn(image=False)
    shm = parent.shm_open("/c", CREATE, 0o600)
    anon = parent.shm_open(C.SHM_ANON, CREATE, 0o600)
    plain = parent.open("/plain", C.O_RDONLY)
    cloexec = parent.open("/plain", C.O_RDONLY | C.O_CLOEXEC)
    duped = parent.dup(shm)  # POSIX: dup clears close-on-exec
    child = parent.spawn(image=False)
    expect_error(qerrno.EBADF, "R-FS-2", child.fstat, shm)
    expect_error(qerrno.EBADF, "R-FS-2", child.fstat, anon)
    expect_error(qerrno.EBADF, "R-FS-2", child.fstat, cloexec)
    assert child.fstat(plain).st_size == 0  # R-PROC-1: other fds are inherited
    assert child.fstat(duped).st_ino == parent.fstat(shm).st_ino
    forked = k.process(parent.fork())  # fork keeps close-on-exec fds (R-PROC-2)
    assert forked.fstat(shm).st_ino == parent.fstat(shm).st_ino
    k.check_invariants()


# -- R-SHM-4: shm_unlink and lifetime ---------------------------------------------------------


def test_R_SHM_4_unlink_missing_is_ENOENT() -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_error(qerrno.ENOENT, "R-SHM-4", p.shm_unlink, "/never")
    p.shm_open("/once", CREATE, 0o600)
    assert p.shm_unlink("/once") == 0
    expect_error(qerrno.ENOENT, "R-SHM-4", p.shm_unlink, "/once")


def test_R_SHM_4_unlink_by_non_owner_non_root_is_EPERM() -> None:
    k = kernel()
    owner = k.spawn(uid=1000, image=False)
    owner.shm_open("/mine", CREATE, 0o666)
    stranger = k.spawn(uid=2000, image=False)
    expect_error(qerrno.EPERM, "R-SHM-4", stranger.shm_unlink, "/mine")
    assert stranger.shm_open("/mine", C.O_RDONLY) >= 0  # the name is still there
    assert owner.shm_unlink("/mine") == 0
    owner.shm_open("/again", CREATE, 0o600)
    root = k.spawn(image=False)
    assert root.shm_unlink("/again") == 0  # euid 0 may unlink anything
    k.check_invariants()


def test_R_SHM_4_name_goes_at_once_object_lives_on_fd() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/live", CREATE, 0o600)
    p.ftruncate(fd, PS)
    p.pwrite(fd, b"still here", 0)
    ino = p.fstat(fd).st_ino
    p.shm_unlink("/live")
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "/live", C.O_RDONLY)
    assert p.pread(fd, 10, 0) == b"still here"
    assert p.fstat(fd).st_nlink == 0
    fresh = p.shm_open("/live", CREATE, 0o600)  # the name can be reused: a new object
    assert p.fstat(fresh).st_ino != ino
    assert p.fstat(fresh).st_size == 0
    assert p.pread(fd, 10, 0) == b"still here"
    k.check_invariants()


def test_R_SHM_4_object_lives_on_mapping_then_frames_freed() -> None:
    k = kernel()
    p = k.spawn(image=False)
    before = k.meminfo()
    fd = p.shm_open("/m", CREATE, 0o600)
    p.ftruncate(fd, 4 * PS)
    a = p.mmap(0, 4 * PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a + 3 * PS, b"mapped")
    p.close(fd)
    p.shm_unlink("/m")
    k.check_invariants()
    assert k.meminfo().allocated == before.allocated + 4 * PS  # the mapping holds it
    assert p.read_memory(a + 3 * PS, 6) == b"mapped"
    p.munmap(a, 2 * PS)
    assert k.meminfo().allocated == before.allocated + 4 * PS  # still one mapping left
    p.munmap(a + 2 * PS, 2 * PS)
    assert k.meminfo() == before  # last reference gone: frames back (R-OBJ-2)
    k.check_invariants()


def test_R_SHM_4_frames_freed_when_the_last_process_exits() -> None:
    k = kernel()
    before = k.meminfo()
    a = k.spawn(image=False)
    b = k.spawn(image=False)
    fd = a.shm_open("/x", CREATE, 0o600)
    a.ftruncate(fd, 2 * PS)
    a.mmap_peer(b.pid, 0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    a.shm_unlink("/x")
    a.exit(0)
    k.check_invariants()
    assert k.meminfo().allocated == before.allocated + 2 * PS
    b.exit(0)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_SHM_4_unlink_with_no_reference_frees_at_once() -> None:
    k = kernel()
    p = k.spawn(image=False)
    before = k.meminfo()
    fd = p.shm_open("/y", CREATE, 0o600)
    p.ftruncate(fd, 5 * PS)
    p.close(fd)
    assert k.meminfo().allocated == before.allocated + 5 * PS  # the name holds it
    p.shm_unlink("/y")
    assert k.meminfo() == before
    k.check_invariants()


# -- R-SHM-5: ftruncate --------------------------------------------------------------------


def test_R_SHM_5_negative_length_is_EINVAL() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/n", CREATE, 0o600)
    expect_error(qerrno.EINVAL, "R-SHM-5", p.ftruncate, fd, -1)
    assert p.fstat(fd).st_size == 0


def test_R_SHM_5_bad_fd_is_EBADF() -> None:
    p = kernel().spawn(image=False)
    expect_error(qerrno.EBADF, "R-SHM-5", p.ftruncate, 3, PS)
    expect_error(qerrno.EBADF, "R-SHM-5", p.ftruncate, -2, PS)


def test_R_SHM_5_fd_not_open_for_writing_is_EINVAL() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.shm_open("/ro", CREATE, 0o600)
    ro = p.shm_open("/ro", C.O_RDONLY)
    expect_error(qerrno.EINVAL, "R-SHM-5", p.ftruncate, ro, PS)
    assert p.fstat(ro).st_size == 0


def test_R_SHM_5_after_shm_ctl_is_EINVAL() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/c", CREATE, 0o600)
    p.shm_ctl(fd, C.SHMCTL_ANON, 0, 2 * PS)
    expect_error(qerrno.EINVAL, "R-SHM-5", p.ftruncate, fd, 4 * PS)
    expect_error(qerrno.EINVAL, "R-SHM-5", p.ftruncate, fd, 0)
    assert p.fstat(fd).st_size == 2 * PS


def test_R_SHM_5_growing_allocates_frames_at_once() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/g", CREATE, 0o600)
    before = k.meminfo()
    p.ftruncate(fd, 3 * PS + 1)  # rounds up to whole pages
    after = k.meminfo()
    assert after.allocated == before.allocated + 4 * PS
    assert after.free == before.free - 4 * PS
    assert p.fstat(fd).st_size == 3 * PS + 1
    assert p.pread(fd, 3 * PS + 10, 0) == bytes(3 * PS + 1)  # new pages read zero
    k.check_invariants()


def test_R_SHM_5_growing_when_RAM_is_short_is_ENOMEM() -> None:
    k = kernel(ram=16 * PS)
    p = k.spawn(image=False)
    fd = p.shm_open("/big", CREATE, 0o600)
    p.ftruncate(fd, 8 * PS)
    before = k.meminfo()
    expect_error(qerrno.ENOMEM, "R-SHM-5", p.ftruncate, fd, 17 * PS)
    assert k.meminfo() == before  # R-CALL-5
    assert p.fstat(fd).st_size == 8 * PS
    p.ftruncate(fd, 16 * PS)  # exactly what is left fits
    assert k.meminfo().free == 0
    k.check_invariants()


def test_R_SHM_5_growing_a_file_only_changes_its_size() -> None:
    k = kernel()
    k.create_file("/file", b"")
    p = k.spawn(image=False)
    fd = p.open("/file", C.O_RDWR)
    before = k.meminfo()
    p.ftruncate(fd, 100 * PS)
    assert k.meminfo() == before
    assert p.fstat(fd).st_size == 100 * PS
    assert p.pread(fd, 8, 50 * PS) == bytes(8)
    a = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 7 * PS)
    assert k.meminfo() == before  # mapping MAP_SHARED allocates nothing
    assert p.read_memory(a, 4) == bytes(4)  # a touch gives the page a frame
    assert k.meminfo().allocated == before.allocated + PS
    k.check_invariants()


def test_R_SHM_5_SHMCTL_LAZY_allocates_on_touch() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/lazy", CREATE, 0o600)
    before = k.meminfo()
    p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, 8 * PS)
    assert k.meminfo() == before
    assert p.fstat(fd).st_size == 8 * PS
    a = p.mmap(0, 8 * PS, RW, C.MAP_SHARED, fd, 0)
    assert k.meminfo() == before
    p.write_memory(a + 2 * PS, b"touched")
    assert k.meminfo().allocated == before.allocated + PS
    assert p.read_memory(a + 5 * PS, 1) == b"\0"  # a read touch allocates too
    assert k.meminfo().allocated == before.allocated + 2 * PS
    assert p.pread(fd, 7, 2 * PS) == b"touched"
    p.pwrite(fd, b"w", 7 * PS)  # write() gives just the written page a frame
    assert k.meminfo().allocated == before.allocated + 3 * PS
    k.check_invariants()


def test_R_SHM_5_SHMCTL_LAZY_touch_without_RAM_is_SIGBUS_BUS_ADRERR() -> None:
    k = kernel(ram=4 * PS)
    p = k.spawn(image=False)
    fd = p.shm_open("/lazy", CREATE, 0o600)
    p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, 8 * PS)
    a = p.mmap(0, 8 * PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a, b"x" * 4 * PS)
    with pytest.raises(MemoryFault) as info:
        p.read_memory(a + 4 * PS, 1)
    assert (info.value.signo, info.value.code) == (C.SIGBUS, C.BUS_ADRERR)
    k.check_invariants()


def test_R_SHM_5_shrinking_zeroes_the_tail_and_frees_whole_pages() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/s", CREATE, 0o600)
    p.ftruncate(fd, 4 * PS)
    p.pwrite(fd, b"\xaa" * 4 * PS, 0)
    before = k.meminfo()
    a = p.mmap(0, 4 * PS, RW, C.MAP_SHARED, fd, 0)
    p.ftruncate(fd, PS + 100)
    assert k.meminfo().allocated == before.allocated - 2 * PS
    assert p.fstat(fd).st_size == PS + 100
    assert p.pread(fd, 4 * PS, 0) == b"\xaa" * (PS + 100)
    # the rest of the new last page reads zero through the mapping
    assert p.read_memory(a + PS, PS) == b"\xaa" * 100 + bytes(PS - 100)
    p.ftruncate(fd, 4 * PS)
    assert p.pread(fd, 4 * PS, 0) == b"\xaa" * (PS + 100) + bytes(3 * PS - 100)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_SHM_5_shrinking_to_zero_frees_everything() -> None:
    k = kernel()
    p = k.spawn(image=False)
    before = k.meminfo()
    fd = p.shm_open("/z", CREATE, 0o600)
    p.ftruncate(fd, 6 * PS)
    p.ftruncate(fd, 0)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_SHM_5_ftruncate_of_dev_zero_is_EINVAL() -> None:
    """[decision] Only files and shm objects have a size that ftruncate can set."""
    p = kernel().spawn(image=False)
    z = p.open("/dev/zero", C.O_RDWR)
    expect_error(qerrno.EINVAL, "R-SHM-5", p.ftruncate, z, PS)


# -- R-SHM-6: shm_ctl ----------------------------------------------------------------------


def shm_fd(p: Process, name: str = "/ctl") -> int:
    return p.shm_open(name, CREATE, 0o600)


def test_R_SHM_7_1_bad_fd_is_EBADF() -> None:
    p = kernel().spawn(image=False)
    expect_error(qerrno.EBADF, "R-SHM-7", p.shm_ctl, 5, C.SHMCTL_ANON, 0, PS)


@pytest.mark.parametrize(
    "flags",
    [0x10000, 0x80000000, C.SHMCTL_ANON | 0x20000],
    ids=["0x10000", "top-bit", "ANON+0x20000"],
)
def test_R_SHM_7_2_unknown_flag_bits_are_EINVAL(flags: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    before = k.meminfo()
    expect_error(qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, flags, 0, PS)
    assert k.meminfo() == before
    assert p.fstat(fd).st_size == 0


def test_R_SHM_7_7_ANON_PHYS_LAZY_together_is_EINVAL() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    flags = C.SHMCTL_ANON | C.SHMCTL_PHYS | C.SHMCTL_LAZY
    expect_error(qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, flags, 0, PS)
    assert p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, PS) == 0  # two of them are fine


def test_R_SHM_7_8_already_sized_is_EBUSY() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    p.ftruncate(fd, PS)
    before = k.meminfo()
    expect_error(qerrno.EBUSY, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON, 0, 2 * PS)
    assert k.meminfo() == before
    assert p.fstat(fd).st_size == PS


def test_R_SHM_7_8_already_given_memory_is_EBUSY() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, PS) == 0
    before = k.meminfo()
    expect_error(qerrno.EBUSY, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON, 0, 2 * PS)
    lazy = shm_fd(p, "/lazy")
    p.shm_ctl(lazy, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, PS)  # configured, still no frames
    expect_error(qerrno.EBUSY, "R-SHM-7", p.shm_ctl, lazy, C.SHMCTL_ANON, 0, PS)
    assert k.meminfo() == before
    assert p.fstat(fd).st_size == PS


def test_R_SHM_6_size_zero_is_accepted_and_counts_as_given() -> None:
    """size 0 is accepted; the object is empty but has its memory ([SIM]): EBUSY after."""
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    before = k.meminfo()
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, 0) == 0
    assert p.fstat(fd).st_size == 0 and k.meminfo() == before
    expect_error(qerrno.EBUSY, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON, 0, PS)
    k.check_invariants()


def test_R_SHM_7_3_on_a_regular_file_is_EINVAL() -> None:
    k = kernel()
    k.create_file("/f", b"")
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDWR)
    expect_error(qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON, 0, PS)


def test_R_SHM_7_9_GLOBAL_needs_MEM_GLOBAL_EPERM_for_non_root() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    fd = shm_fd(user)
    before = k.meminfo()
    flags = C.SHMCTL_ANON | C.SHMCTL_GLOBAL
    expect_error(qerrno.EPERM, "R-SHM-7", user.shm_ctl, fd, flags, 0, PS)
    assert k.meminfo() == before
    assert user.fstat(fd).st_size == 0
    allow(user, C.PROCMGR_AID_MEM_GLOBAL)
    assert user.shm_ctl(fd, flags, 0, PS) == 0
    root = k.spawn(image=False)
    assert root.shm_ctl(shm_fd(root, "/g2"), flags, 0, PS) == 0


def test_R_SHM_7_11_PHYS_needs_MEM_PHYS_EPERM() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    fd = shm_fd(user)
    expect_error(qerrno.EPERM, "R-SHM-7", user.shm_ctl, fd, C.SHMCTL_PHYS, DEVICE_START, PS)
    root = k.spawn(image=False)
    deny(root, C.PROCMGR_AID_MEM_PHYS)
    rfd = shm_fd(root, "/r")
    expect_error(qerrno.EPERM, "R-SHM-7", root.shm_ctl, rfd, C.SHMCTL_PHYS, DEVICE_START, PS)
    assert root.fstat(rfd).st_size == 0
    allow(user, C.PROCMGR_AID_MEM_PHYS)
    assert user.shm_ctl(fd, C.SHMCTL_PHYS, DEVICE_START, PS) == 0


@pytest.mark.parametrize(
    ("paddr", "size"),
    [
        (DEVICE_START + 1, PS),  # unaligned address
        (DEVICE_START, PS + 1),  # unaligned size
        (PHYS_END - PS, 2 * PS),  # runs past PHYS_END
        (PHYS_END, PS),  # starts at PHYS_END
    ],
    ids=["unaligned-paddr", "unaligned-size", "past-end", "at-end"],
)
def test_R_SHM_7_11_PHYS_unaligned_or_out_of_range_is_EINVAL(paddr: int, size: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    expect_error(qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_PHYS, paddr, size)
    assert p.fstat(fd).st_size == 0
    assert p.shm_ctl(fd, C.SHMCTL_PHYS, DEVICE_START, PS) == 0  # still configurable


def test_R_SHM_6_PHYS_object_is_physical_memory() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    before = k.meminfo()
    p.shm_ctl(fd, C.SHMCTL_PHYS, DEVICE_START, 2 * PS)
    assert k.meminfo() == before  # it owns no RAM
    assert p.fstat(fd).st_size == 2 * PS
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a + PS, b"device")
    dev = p.mmap_device_memory(0, PS, RW, 0, DEVICE_START + PS)
    assert p.read_memory(dev, 6) == b"device"
    assert p.mem_offset64(a + PS + 3, C.NOFD, 1) == (DEVICE_START + PS + 3, 1)
    k.check_invariants()


def test_R_SHM_6_ANON_allocates_size_at_once() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm_fd(p)
    before = k.meminfo()
    p.shm_ctl(fd, C.SHMCTL_ANON, 0, 3 * PS)
    assert k.meminfo().allocated == before.allocated + 3 * PS
    assert p.fstat(fd).st_size == 3 * PS
    assert p.pread(fd, 10, 0) == bytes(10)
    k.check_invariants()


def test_R_SHM_6_ANON_PHYS_gives_contiguous_frames() -> None:
    k = kernel(ram=64 * PS)
    p = k.spawn(image=False)
    fragment(p, 8)  # eight one-page holes at the bottom of RAM
    plain = shm_fd(p, "/plain")
    p.shm_ctl(plain, C.SHMCTL_ANON, 0, 4 * PS)
    a = p.mmap(0, 4 * PS, RW, C.MAP_SHARED, plain, 0)
    assert p.mem_offset64(a, C.NOFD, 4 * PS)[1] == PS  # SHMCTL_ANON alone: scattered
    contig = shm_fd(p, "/contig")
    p.shm_ctl(contig, C.SHMCTL_ANON | C.SHMCTL_PHYS, 0, 4 * PS)
    b = p.mmap(0, 4 * PS, RW, C.MAP_SHARED, contig, 0)
    paddr, length = p.mem_offset64(b, C.NOFD, 4 * PS)
    assert length == 4 * PS  # the whole object is one physical run
    assert paddr % PS == 0
    k.check_invariants()


def test_R_SHM_7_13_ANON_PHYS_without_a_contiguous_run_is_ENOMEM() -> None:
    k = kernel(ram=16 * PS)
    p = k.spawn(image=False)
    fragment(p, 8)  # 8 free pages, none next to another
    fd = shm_fd(p)
    before = k.meminfo()
    expect_error(qerrno.ENOMEM, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON | C.SHMCTL_PHYS, 0, 2 * PS)
    assert k.meminfo() == before
    assert p.fstat(fd).st_size == 0
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, 2 * PS) == 0  # scattered frames do exist
    k.check_invariants()


def test_R_SHM_7_13_ANON_without_RAM_is_ENOMEM() -> None:
    k = kernel(ram=8 * PS)
    p = k.spawn(image=False)
    fd = shm_fd(p)
    before = k.meminfo()
    expect_error(qerrno.ENOMEM, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON, 0, 9 * PS)
    assert k.meminfo() == before
    assert p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, 9 * PS) == 0  # lazy: no frames yet
    k.check_invariants()
