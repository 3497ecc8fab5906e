"""The simulated filesystem and file descriptors against SPEC section 13 (R-FS-1, R-FS-2).

Expectations come from SPEC.md: R-FS-1 (``Kernel.create_file``, ``/dev/zero`` and ``/dev/mem``
always exist, directories exist implicitly) and R-FS-2 (open, close, dup, dup2, read, write,
pread, pwrite, lseek and fstat follow POSIX with QNX errno numbers; permission by euid/egid,
euid 0 passes).  RLIMIT_NOFILE gives EMFILE (SPEC 18, R-SHM-2).  Fork shares open file
descriptions (R-PROC-2).
"""

from __future__ import annotations

from typing import Any

import pytest
from support import PS, expect_error

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.pathspace import S_IFCHR, S_IFDIR, S_IFREG

S_IFMT = 0o170000


def kernel() -> Kernel:
    return Kernel(ram=64 << 20)


def root_and_user(k: Kernel, uid: int = 1000, gid: int = 100) -> tuple[Process, Process]:
    return k.spawn(image=False), k.spawn(uid=uid, gid=gid, image=False)


# -- R-FS-1: the filesystem ------------------------------------------------------------------


def test_R_FS_1_create_file_contents_owner_mode() -> None:
    k = kernel()
    k.create_file("/etc/app.conf", b"key=value\n", mode=0o640, uid=7, gid=8)
    p = k.spawn(image=False)
    fd = p.open("/etc/app.conf", C.O_RDONLY)
    assert p.read(fd, 100) == b"key=value\n"
    st = p.fstat(fd)
    assert st.st_size == 10
    assert st.st_mode & S_IFMT == S_IFREG
    assert st.st_mode & 0o7777 == 0o640
    assert (st.st_uid, st.st_gid, st.st_nlink) == (7, 8, 1)
    k.check_invariants()


def test_R_FS_1_create_file_replaces_an_existing_file() -> None:
    k = kernel()
    k.create_file("/data", b"old contents")
    k.create_file("/data", b"new")
    p = k.spawn(image=False)
    fd = p.open("/data", C.O_RDONLY)
    assert p.read(fd, 100) == b"new"
    assert p.fstat(fd).st_size == 3
    k.check_invariants()


def test_R_FS_1_create_file_rejects_devices_shm_and_directories() -> None:
    k = kernel()
    k.create_file("/dir/file", b"x")
    for path in ("/dev/zero", "/dev/mem", "/dev/shmem/x", "/dir", "/dir/file/below"):
        with pytest.raises(ValueError):
            k.create_file(path, b"")
    with pytest.raises(TypeError):
        k.create_file("/t", "text")  # type: ignore[arg-type]
    k.check_invariants()


def test_R_FS_1_dev_zero_and_dev_mem_always_exist() -> None:
    k = kernel()
    p = k.spawn(image=False)
    z = p.open("/dev/zero", C.O_RDWR)
    assert p.read(z, 16) == bytes(16)
    assert p.write(z, b"discarded") == 9
    assert p.read(z, 4) == bytes(4)
    m = p.open("/dev/mem", C.O_RDWR)
    for fd in (z, m):
        st = p.fstat(fd)
        assert st.st_mode & S_IFMT == S_IFCHR
        assert st.st_nlink == 1
    k.check_invariants()


def test_R_FS_1_directories_exist_implicitly() -> None:
    k = kernel()
    k.create_file("/a/b/c.txt", b"c")
    p = k.spawn(image=False)
    for path in ("/", "/dev", "/dev/shmem", "/a", "/a/b", "a/b/"):
        fd = p.open(path, C.O_RDONLY)
        assert p.fstat(fd).st_mode & S_IFMT == S_IFDIR, path
        p.close(fd)
    expect_error(qerrno.ENOENT, "R-FS-2", p.open, "/a/x", C.O_RDONLY)
    k.check_invariants()


def test_R_FS_1_relative_paths_are_taken_from_the_root() -> None:
    k = kernel()
    k.create_file("/srv/data", b"rooted")
    p = k.spawn(image=False)
    fd = p.open("srv/data", C.O_RDONLY)
    assert p.read(fd, 10) == b"rooted"


# -- R-FS-2: open --------------------------------------------------------------------------


def test_R_FS_2_open_missing_is_ENOENT() -> None:
    p = kernel().spawn(image=False)
    expect_error(qerrno.ENOENT, "R-FS-2", p.open, "/no/such/file", C.O_RDONLY)
    expect_error(qerrno.ENOENT, "R-FS-2", p.open, "/nofile", C.O_RDWR)
    expect_error(qerrno.ENOENT, "R-FS-2", p.open, "", C.O_RDONLY)  # POSIX: empty path


def test_R_FS_2_open_creat_excl_existing_is_EEXIST() -> None:
    k = kernel()
    k.create_file("/f", b"keep")
    p = k.spawn(image=False)
    expect_error(qerrno.EEXIST, "R-FS-2", p.open, "/f", C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o644)
    fd = p.open("/f", C.O_RDWR | C.O_CREAT, 0o600)  # without O_EXCL it just opens
    assert p.read(fd, 10) == b"keep"
    assert p.fstat(fd).st_mode & 0o777 == 0o644  # an existing file keeps its mode


def test_R_FS_2_open_creat_owner_is_euid_egid_and_umask_applies() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert p.setegid(50) == 0
    assert p.seteuid(1000) == 0
    fd = p.open("/new", C.O_RDWR | C.O_CREAT, 0o666)
    st = p.fstat(fd)
    assert (st.st_size, st.st_uid, st.st_gid) == (0, 1000, 50)
    assert st.st_mode & 0o7777 == 0o644  # default umask 0o022
    assert st.st_mode & S_IFMT == S_IFREG
    p.umask = 0o077
    fd2 = p.open("/newer", C.O_WRONLY | C.O_CREAT, 0o777)
    assert p.fstat(fd2).st_mode & 0o7777 == 0o700
    k.check_invariants()


def test_R_FS_2_open_EACCES_by_owner_group_other_bits() -> None:
    k = kernel()
    k.create_file("/owned", b"x", mode=0o640, uid=1000, gid=100)
    owner = k.spawn(uid=1000, gid=999, image=False)
    group = k.spawn(uid=2000, gid=100, image=False)
    other = k.spawn(uid=3000, gid=300, image=False)
    assert owner.open("/owned", C.O_RDWR) >= 0
    assert group.open("/owned", C.O_RDONLY) >= 0
    expect_error(qerrno.EACCES, "R-FS-2", group.open, "/owned", C.O_WRONLY)
    expect_error(qerrno.EACCES, "R-FS-2", group.open, "/owned", C.O_RDWR)
    expect_error(qerrno.EACCES, "R-FS-2", other.open, "/owned", C.O_RDONLY)
    # the owner class decides for the owner, even when the group bits would allow more
    k.create_file("/locked", b"x", mode=0o077, uid=1000, gid=100)
    owner2 = k.spawn(uid=1000, gid=100, image=False)
    expect_error(qerrno.EACCES, "R-FS-2", owner2.open, "/locked", C.O_RDONLY)
    k.check_invariants()


def test_R_FS_2_permission_uses_euid_and_euid_0_passes() -> None:
    k = kernel()
    k.create_file("/secret", b"s", mode=0o000, uid=5, gid=5)
    p = k.spawn(image=False)
    fd = p.open("/secret", C.O_RDWR)  # euid 0 passes whatever the mode
    assert p.read(fd, 1) == b"s"
    p.seteuid(1000)  # ruid stays 0: the check must use euid
    expect_error(qerrno.EACCES, "R-FS-2", p.open, "/secret", C.O_RDONLY)
    p.seteuid(0)
    assert p.open("/secret", C.O_RDONLY) >= 0


def test_R_FS_2_EISDIR_for_write_create_and_data_calls_on_a_directory() -> None:
    k = kernel()
    k.create_file("/d/file", b"")
    p = k.spawn(image=False)
    expect_error(qerrno.EISDIR, "R-FS-2", p.open, "/d", C.O_RDWR)
    expect_error(qerrno.EISDIR, "R-FS-2", p.open, "/d", C.O_WRONLY)
    expect_error(qerrno.EISDIR, "R-FS-2", p.open, "/d", C.O_RDONLY | C.O_CREAT, 0o644)
    fd = p.open("/d", C.O_RDONLY)
    expect_error(qerrno.EISDIR, "R-FS-2", p.read, fd, 1)
    expect_error(qerrno.EISDIR, "R-FS-2", p.pread, fd, 1, 0)


def test_R_FS_2_ENOTDIR_when_a_leading_part_is_a_file() -> None:
    k = kernel()
    k.create_file("/plain", b"x")
    p = k.spawn(image=False)
    expect_error(qerrno.ENOTDIR, "R-FS-2", p.open, "/plain/below", C.O_RDONLY)
    expect_error(qerrno.ENOTDIR, "R-FS-2", p.open, "/plain/a/b", C.O_RDWR | C.O_CREAT, 0o644)
    k.check_invariants()


def test_R_FS_2_open_returns_the_lowest_free_fd() -> None:
    k = kernel()
    k.create_file("/f", b"")
    p = k.spawn(image=False)
    fds = [p.open("/f", C.O_RDONLY) for _ in range(4)]
    assert fds == [0, 1, 2, 3]
    p.close(1)
    assert p.open("/f", C.O_RDONLY) == 1
    assert p.open("/f", C.O_RDONLY) == 4


def test_R_FS_2_open_trunc_empties_a_file() -> None:
    k = kernel()
    k.create_file("/t", b"x" * 10000)
    p = k.spawn(image=False)
    fd = p.open("/t", C.O_RDWR | C.O_TRUNC)
    assert p.fstat(fd).st_size == 0
    assert p.read(fd, 10) == b""
    assert k.meminfo().allocated == 0  # the file's frames went with its pages
    k.check_invariants()


# -- R-FS-2: read, write, lseek, pread, pwrite -------------------------------------------------


def test_R_FS_2_read_and_write_move_the_offset() -> None:
    k = kernel()
    k.create_file("/f", b"0123456789")
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDWR)
    assert p.read(fd, 4) == b"0123"
    assert p.read(fd, 4) == b"4567"
    assert p.write(fd, b"AB") == 2
    assert p.lseek(fd, 0, C.SEEK_CUR) == 10
    assert p.read(fd, 4) == b""  # at end of file
    assert p.pread(fd, 100, 0) == b"01234567AB"
    k.check_invariants()


def test_R_FS_2_write_past_the_end_grows_the_file_with_a_zero_gap() -> None:
    k = kernel()
    k.create_file("/g", b"abc")
    p = k.spawn(image=False)
    fd = p.open("/g", C.O_RDWR)
    assert p.lseek(fd, 2 * PS + 5, C.SEEK_SET) == 2 * PS + 5
    assert p.fstat(fd).st_size == 3  # seeking alone does not grow the file
    assert p.write(fd, b"Z") == 1
    assert p.fstat(fd).st_size == 2 * PS + 6
    data = p.pread(fd, 3 * PS, 0)
    assert data == b"abc" + bytes(2 * PS + 2) + b"Z"
    assert p.pwrite(fd, b"tail", 3 * PS) == 4
    assert p.fstat(fd).st_size == 3 * PS + 4
    assert p.pread(fd, 10, 3 * PS - 2) == b"\0\0tail"
    k.check_invariants()


def test_R_FS_2_O_APPEND_writes_at_the_end() -> None:
    k = kernel()
    k.create_file("/log", b"one ")
    p = k.spawn(image=False)
    fd = p.open("/log", C.O_WRONLY | C.O_APPEND)
    p.lseek(fd, 0, C.SEEK_SET)
    assert p.write(fd, b"two ") == 4
    assert p.lseek(fd, 0, C.SEEK_CUR) == 8
    other = p.open("/log", C.O_RDWR)
    p.write(other, b"ONE ")  # a plain write at offset 0 of another description
    p.lseek(fd, 1, C.SEEK_SET)
    p.write(fd, b"three")
    assert p.pread(other, 100, 0) == b"ONE two three"
    k.check_invariants()


def test_R_FS_2_pwrite_ignores_O_APPEND_as_POSIX_requires() -> None:
    """[decision] POSIX: O_APPEND has no effect on where pwrite() writes."""
    k = kernel()
    k.create_file("/log", b"abcdef")
    p = k.spawn(image=False)
    fd = p.open("/log", C.O_RDWR | C.O_APPEND)
    assert p.pwrite(fd, b"X", 1) == 1
    assert p.pread(fd, 10, 0) == b"aXcdef"
    assert p.lseek(fd, 0, C.SEEK_CUR) == 0  # pwrite leaves the offset alone


def test_R_FS_2_pread_pwrite_leave_the_offset() -> None:
    k = kernel()
    k.create_file("/f", b"hello world")
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDWR)
    p.lseek(fd, 3, C.SEEK_SET)
    assert p.pread(fd, 5, 6) == b"world"
    assert p.pwrite(fd, b"W", 6) == 1
    assert p.lseek(fd, 0, C.SEEK_CUR) == 3
    assert p.read(fd, 20) == b"lo World"
    assert p.pread(fd, 5, 100) == b""  # past the end: nothing
    expect_error(qerrno.EINVAL, "R-FS-2", p.pread, fd, 1, -1)
    expect_error(qerrno.EINVAL, "R-FS-2", p.pwrite, fd, b"x", -1)


def test_R_FS_2_lseek_whence_and_errors() -> None:
    k = kernel()
    k.create_file("/f", b"x" * 100)
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDONLY)
    assert p.lseek(fd, 10, C.SEEK_SET) == 10
    assert p.lseek(fd, 5, C.SEEK_CUR) == 15
    assert p.lseek(fd, -1, C.SEEK_END) == 99
    assert p.lseek(fd, 1000, C.SEEK_END) == 1100  # past the end is allowed
    assert p.fstat(fd).st_size == 100
    expect_error(qerrno.EINVAL, "R-FS-2", p.lseek, fd, -1, C.SEEK_SET)
    expect_error(qerrno.EINVAL, "R-FS-2", p.lseek, fd, -101, C.SEEK_END)
    expect_error(qerrno.EINVAL, "R-FS-2", p.lseek, fd, 0, 3)
    assert p.lseek(fd, 0, C.SEEK_CUR) == 1100  # a failed lseek moves nothing (R-CALL-5)


def test_R_FS_2_read_needs_read_access_and_write_needs_write_access() -> None:
    k = kernel()
    k.create_file("/f", b"data")
    p = k.spawn(image=False)
    wo = p.open("/f", C.O_WRONLY)
    ro = p.open("/f", C.O_RDONLY)
    expect_error(qerrno.EBADF, "R-FS-2", p.read, wo, 1)
    expect_error(qerrno.EBADF, "R-FS-2", p.pread, wo, 1, 0)
    expect_error(qerrno.EBADF, "R-FS-2", p.write, ro, b"x")
    expect_error(qerrno.EBADF, "R-FS-2", p.pwrite, ro, b"x", 0)
    assert p.pread(ro, 10, 0) == b"data"


# -- R-FS-2: close, dup, dup2, EBADF -----------------------------------------------------------

CLOSED_FD_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("close", ()),
    ("dup", ()),
    ("read", (1,)),
    ("write", (b"x",)),
    ("pread", (1, 0)),
    ("pwrite", (b"x", 0)),
    ("lseek", (0, C.SEEK_SET)),
    ("fstat", ()),
]


@pytest.mark.parametrize(("call", "rest"), CLOSED_FD_CALLS, ids=[c for c, _ in CLOSED_FD_CALLS])
def test_R_FS_2_EBADF_on_closed_and_negative_fds(call: str, rest: tuple[Any, ...]) -> None:
    k = kernel()
    k.create_file("/f", b"data")
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDWR)
    p.close(fd)
    for bad in (fd, -1, -5, 999):
        expect_error(qerrno.EBADF, "R-FS-2", getattr(p, call), bad, *rest)
    k.check_invariants()


def test_R_FS_2_dup2_EBADF_for_a_closed_source() -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_error(qerrno.EBADF, "R-FS-2", p.dup2, 3, 4)


def test_R_FS_2_close_twice_is_EBADF() -> None:
    k = kernel()
    k.create_file("/f", b"")
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDONLY)
    assert p.close(fd) == 0
    expect_error(qerrno.EBADF, "R-FS-2", p.close, fd)


def test_R_FS_2_dup_shares_the_offset_and_takes_the_lowest_fd() -> None:
    k = kernel()
    k.create_file("/f", b"abcdefgh")
    p = k.spawn(image=False)
    spare = p.open("/f", C.O_RDONLY)
    fd = p.open("/f", C.O_RDWR)
    p.close(spare)
    d = p.dup(fd)
    assert d == spare  # the lowest free fd
    assert p.read(fd, 3) == b"abc"
    assert p.read(d, 3) == b"def"  # one open file description, one offset
    p.lseek(d, 0, C.SEEK_SET)
    assert p.read(fd, 2) == b"ab"
    p.close(fd)
    assert p.read(d, 2) == b"cd"  # the description lives while one fd refers to it
    k.check_invariants()


def test_R_FS_2_dup2_replaces_the_target_and_shares_the_offset() -> None:
    k = kernel()
    k.create_file("/a", b"AAAA")
    k.create_file("/b", b"BBBB")
    p = k.spawn(image=False)
    a = p.open("/a", C.O_RDONLY)
    b = p.open("/b", C.O_RDONLY)
    assert p.dup2(a, b) == b  # b is closed first, then refers to /a
    assert p.read(b, 2) == b"AA"
    assert p.read(a, 2) == b"AA"
    assert p.dup2(a, 10) == 10
    assert p.read(10, 10) == b""  # same offset: at the end
    assert p.dup2(a, a) == a  # same fd: nothing happens
    assert p.read(a, 1) == b""
    k.check_invariants()


def test_R_FS_2_dup2_fd2_out_of_range_is_EBADF() -> None:
    k = kernel()
    k.create_file("/a", b"")
    p = k.spawn(image=False)
    fd = p.open("/a", C.O_RDONLY)
    expect_error(qerrno.EBADF, "R-FS-2", p.dup2, fd, -1)
    limit = p.getrlimit(C.RLIMIT_NOFILE)[0]
    expect_error(qerrno.EBADF, "R-FS-2", p.dup2, fd, limit)
    assert p.dup2(fd, limit - 1) == limit - 1


def test_R_FS_2_fork_shares_open_file_descriptions() -> None:
    k = kernel()
    k.create_file("/f", b"0123456789")
    parent = k.spawn(image=False)
    fd = parent.open("/f", C.O_RDWR)
    child = k.process(parent.fork())
    assert child.read(fd, 3) == b"012"
    assert parent.read(fd, 3) == b"345"  # the child moved the shared offset
    child.close(fd)
    assert parent.read(fd, 2) == b"67"  # closing in the child does not close the parent's
    late = parent.open("/f", C.O_RDONLY)
    expect_error(qerrno.EBADF, "R-FS-2", child.fstat, late)  # tables are separate copies
    k.check_invariants()


def test_R_FS_2_exit_closes_every_fd() -> None:
    k = kernel()
    k.create_file("/f", b"")
    p = k.spawn(image=False)
    for _ in range(3):
        p.open("/f", C.O_RDONLY)
    p.exit(0)
    k.check_invariants()
    assert not p.fdt.fds


# -- RLIMIT_NOFILE ---------------------------------------------------------------------------


def test_R_FS_2_RLIMIT_NOFILE_gives_EMFILE_for_open_and_dup() -> None:
    k = kernel()
    k.create_file("/f", b"")
    p = k.spawn(uid=1000, image=False)
    assert p.getrlimit(C.RLIMIT_NOFILE) == (1000, 1000)  # SPEC 18 default
    p.setrlimit(C.RLIMIT_NOFILE, 3, 3)
    fds = [p.open("/f", C.O_RDONLY) for _ in range(3)]
    assert fds == [0, 1, 2]
    expect_error(qerrno.EMFILE, "R-FS-2", p.open, "/f", C.O_RDONLY)
    expect_error(qerrno.EMFILE, "R-FS-2", p.dup, 0)
    # a failed O_CREAT open creates nothing (R-CALL-5)
    expect_error(qerrno.EMFILE, "R-FS-2", p.open, "/made", C.O_RDWR | C.O_CREAT, 0o644)
    p.close(1)
    assert p.open("/f", C.O_RDONLY) == 1
    p.close(2)
    expect_error(qerrno.ENOENT, "R-FS-2", p.open, "/made", C.O_RDONLY)
    k.check_invariants()


def test_R_FS_2_failed_open_with_O_TRUNC_truncates_nothing() -> None:
    """R-CALL-5: EACCES or EMFILE comes before O_TRUNC does anything."""
    k = kernel()
    k.create_file("/keep", b"precious", mode=0o644, uid=0)
    user = k.spawn(uid=1000, image=False)
    expect_error(qerrno.EACCES, "R-FS-2", user.open, "/keep", C.O_RDWR | C.O_TRUNC)
    root = k.spawn(image=False)
    root.setrlimit(C.RLIMIT_NOFILE, 0, 0)
    expect_error(qerrno.EMFILE, "R-FS-2", root.open, "/keep", C.O_RDONLY | C.O_TRUNC)
    reader = k.spawn(image=False)
    fd = reader.open("/keep", C.O_RDONLY)
    assert reader.read(fd, 100) == b"precious"
    k.check_invariants()
