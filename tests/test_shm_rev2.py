"""Shared memory names and shm_ctl as SPEC revision 2 has them: R-SHM-1, R-SHM-2, R-SHM-4,
R-SHM-5 (sealed objects), R-SHM-6 .. R-SHM-11 and R-FS-1.

Where QNX versions differ (SPEC 19) one test runs on every profile and reads what it expects
from the profile's data (``Kernel.profile``), never from a version string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import PS, RW, expect_error

import qnxsim.abilities
from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.pathspace import S_IFNAM

CREATE = C.O_RDWR | C.O_CREAT
VERSIONS = ("8.0", "7.1", "6.4")
DEVICE_START = 0xF000_0000  # R-SYS-5
RAM_START = 0x10_0000  # R-SYS-5
#: A typed-memory pool of our own (R-SYS-1), so that the tests do not depend on the
#: default pool names: 64 pages of RAM starting 1 MiB into it.
POOL = "/test/pool"
POOL_START = RAM_START + (1 << 20)
POOL_SIZE = 64 * PS
HINTS = (
    C.SHMCTL_PRIV,
    C.SHMCTL_LOWERPROT,
    C.SHMCTL_LAZYWRITE,
    C.SHMCTL_HIGHUSAGE,
    C.SHMCTL_NODEFRAG,
)


def kernel(version: str = "8.0", **kw: Any) -> Kernel:
    return Kernel(version=version, arch="x86_64", ram=64 << 20, **kw)


def typed_kernel(version: str = "8.0") -> Kernel:
    return kernel(version, typed_memory={POOL: (POOL_START, POOL_SIZE)})


def allow(proc: Process, aid: int) -> None:
    proc.abilities.set(aid, qnxsim.abilities.NONROOT, qnxsim.abilities.DomainEntry(True))


def state(k: Kernel, p: Process, fd: int) -> tuple[Any, ...]:
    """What a failing shm_ctl must leave alone (R-CALL-5): size, flags, RAM, mappings."""
    flags = p.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) if k.profile.handles else None
    return p.fstat(fd), flags, k.meminfo(), p.mappings()


def fails_unchanged(k: Kernel, p: Process, fd: int, errno: int, rule: str,
                    call: Callable[..., Any], *args: Any) -> QnxError:  # fmt: skip
    before = state(k, p, fd)
    err = expect_error(errno, rule, call, *args)
    assert state(k, p, fd) == before, "R-CALL-5: a failed call changed state"
    k.check_invariants()
    return err


# -- R-SHM-1 / R-FS-1: names --------------------------------------------------------------------


@pytest.mark.parametrize("oflag", [C.O_RDWR, C.O_WRONLY, C.O_RDWR | C.O_CREAT])
def test_R_SHM_1_slash_alone_is_the_shm_directory_EISDIR_for_writing(oflag: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_error(qerrno.EISDIR, "R-SHM-1", p.shm_open, "/", oflag, 0o600)
    assert p.fdt.fds == {}
    k.check_invariants()


def test_R_SHM_1_slash_alone_read_only_is_a_directory_fd_mmap_is_ENOTSUP() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/", C.O_RDONLY)
    assert p.fstat(fd).st_mode & 0o170000 == 0o040000  # S_IFDIR
    expect_error(qerrno.ENOTSUP, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    p.close(fd)
    k.check_invariants()


@pytest.mark.parametrize(("name", "directory"), [("/..", "/dev"), ("/.", "/dev/shmem")])
def test_R_SHM_1_dot_and_dotdot_resolve_as_open_does(name: str, directory: str) -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_error(qerrno.EISDIR, "R-SHM-1", p.shm_open, name, CREATE, 0o600)
    fd = p.shm_open(name, C.O_RDONLY)
    assert p.fstat(fd).st_mode & 0o170000 == 0o040000
    assert not any(part in (".", "..") for path in k.paths.nodes for part in path.split("/"))
    # "/x/../y" has a further "/": a path, so it names /y, not /dev/shmem/...
    made = p.shm_open("/x/../y", CREATE, 0o600)
    assert p.fstat(made).st_ino == p.fstat(p.open("/y", C.O_RDONLY)).st_ino
    k.check_invariants()


def test_R_SHM_1_R_FS_1_relative_name_with_O_CREAT_is_a_shm_object_at_that_path() -> None:
    """The galcore driver's name: no leading "/", so a path from "/"; procnto makes a shm
    object there, which open() finds and shm_unlink() removes."""
    k = kernel()
    p = k.spawn(image=False)
    name = f"galcore:vidmem:{p.pid}"
    fd = p.shm_open(name, CREATE, 0o600)
    assert p.fstat(fd).st_mode & 0o170000 == S_IFNAM
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, 2 * PS) == 0  # a shm object in every respect
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    rec = p.mapping_at(a)
    assert rec is not None and (rec.kind, rec.name) == ("shm", "/" + name)
    same = p.open("/" + name, C.O_RDONLY)
    assert p.fstat(same).st_ino == p.fstat(fd).st_ino
    assert p.shm_unlink(name) == 0
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, name, C.O_RDONLY)
    k.check_invariants()


def test_R_SHM_1_other_path_without_O_CREAT_is_ENOENT() -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "some/where", C.O_RDWR)
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "/some/where", C.O_RDONLY)
    assert "/some/where" not in k.paths.nodes


def test_R_SHM_1_deep_path_object_makes_its_directories() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/run/app/buf", CREATE, 0o600)
    assert p.fstat(fd).st_mode & 0o170000 == S_IFNAM
    expect_error(qerrno.EISDIR, "R-SHM-1", p.shm_open, "/run/app", C.O_RDWR)
    k.check_invariants()


def test_R_SHM_1_regular_file_path_opens_as_open_does() -> None:
    k = kernel()
    k.create_file("/etc/conf", b"abc")
    p = k.spawn(image=False)
    fd = p.shm_open("/etc/conf", C.O_RDWR)
    assert p.read(fd, 10) == b"abc"
    expect_error(qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON, 0, PS)
    expect_error(qerrno.ENOTDIR, "R-FS-2", p.shm_open, "/etc/conf/x", CREATE, 0o600)


def test_R_SHM_2_path_component_longer_than_NAME_MAX_is_ENAMETOOLONG() -> None:
    p = kernel().spawn(image=False)
    long = "n" * (C.NAME_MAX + 1)
    expect_error(qerrno.ENAMETOOLONG, "R-SHM-2", p.shm_open, f"dir/{long}", CREATE, 0o600)
    expect_error(qerrno.ENAMETOOLONG, "R-SHM-2", p.shm_unlink, f"dir/{long}")
    assert p.shm_open("dir/" + "n" * C.NAME_MAX, CREATE, 0o600) >= 0


@pytest.mark.parametrize("version", VERSIONS)
def test_R_SHM_2_empty_name_is_ENOENT_on_every_profile(version: str) -> None:
    p = kernel(version).spawn(image=False)
    expect_error(qerrno.ENOENT, "R-SHM-2", p.shm_open, "", CREATE, 0o600)
    expect_error(qerrno.ENOENT, "R-SHM-4", p.shm_unlink, "")


def test_R_SHM_4_unlink_resolves_names_as_shm_open() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.shm_open("rel/obj", CREATE, 0o600)
    assert p.shm_unlink("/rel/./obj") == 0
    assert "/rel/obj" not in k.paths.nodes
    p.shm_open("/buf", CREATE, 0o600)
    assert p.shm_unlink("/dev/shmem/buf") == 0  # the object /buf, by its path
    expect_error(qerrno.ENOENT, "R-SHM-4", p.shm_unlink, "/buf")
    k.check_invariants()


def test_R_SHM_4_unlink_of_a_regular_file_removes_its_name() -> None:
    k = kernel()
    k.create_file("/tmp/f", b"data")
    p = k.spawn(image=False)
    fd = p.open("/tmp/f", C.O_RDONLY)
    assert p.shm_unlink("/tmp/f") == 0
    expect_error(qerrno.ENOENT, "R-FS-2", p.open, "/tmp/f", C.O_RDONLY)
    assert p.read(fd, 10) == b"data"  # the file lives on while its fd is open
    k.check_invariants()


def test_R_SHM_4_unlink_of_a_directory_is_EPERM() -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_error(qerrno.EPERM, "R-SHM-4", p.shm_unlink, "/")
    expect_error(qerrno.EPERM, "R-SHM-4", p.shm_unlink, "/..")


def test_R_SHM_1_SHM_ANON_needs_O_CREAT_and_O_RDWR() -> None:
    p = kernel().spawn(image=False)
    for oflag in (C.O_RDWR, C.O_CREAT | C.O_RDONLY, C.O_CREAT | C.O_WRONLY):
        expect_error(qerrno.EINVAL, "R-SHM-1", p.shm_open, C.SHM_ANON, oflag, 0o600)
    assert p.shm_open(C.SHM_ANON, CREATE, 0o600) >= 0


@given(
    parts=st.lists(st.sampled_from(["", ".", "..", "a", "b", "/"]), min_size=1, max_size=5),
    lead=st.booleans(),
)
def test_R_SHM_1_R_SHM_4_property_unlink_finds_what_open_made(parts: list[str], lead: bool) -> None:
    """Whatever the name, shm_unlink resolves it as shm_open did: the object shm_open made
    is the one shm_unlink removes, and no object is ever named "." or "..". A failing
    open changes nothing (R-CALL-5)."""
    k = kernel()
    p = k.spawn(image=False)
    name = ("/" if lead else "") + "/".join(parts)
    paths = set(k.paths.nodes)
    try:
        fd = p.shm_open(name, CREATE, 0o600)
    except QnxError as err:
        assert err.errno in (qerrno.ENOENT, qerrno.EISDIR), err
        assert set(k.paths.nodes) == paths and p.fdt.fds == {}
        return
    made = set(k.paths.nodes) - paths
    assert len(made) == 1
    assert not any(c in (".", "..") for c in next(iter(made)).split("/"))
    assert p.fstat(fd).st_mode & 0o170000 == S_IFNAM
    assert p.shm_unlink(name) == 0
    assert set(k.paths.nodes) == paths
    k.check_invariants()


# -- R-SHM-5 / R-SHM-8: sealing ---------------------------------------------------------------


def test_R_SHM_5_R_SHM_8_sealed_object_cannot_be_resized() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/s", CREATE, 0o600)
    p.ftruncate(fd, PS)
    assert p.shm_ctl(fd, C.SHMCTL_SEAL, 0, 0) == 0  # a separate attribute call
    fails_unchanged(k, p, fd, qerrno.EINVAL, "R-SHM-5", p.ftruncate, fd, 2 * PS)
    fails_unchanged(k, p, fd, qerrno.EINVAL, "R-SHM-5", p.ftruncate, fd, 0)
    fails_unchanged(k, p, fd, qerrno.ENOSPC, "R-SHM-8", p.pwrite, fd, b"x", PS)
    # "A sealed object isn't write-protected"
    assert p.pwrite(fd, b"still writable", 0) == 14
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a + 100, b"here too")
    assert p.pread(fd, 8, 100) == b"here too"
    p.shm_open("/s", C.O_RDWR | C.O_TRUNC)  # O_TRUNC cannot shrink it either
    assert p.fstat(fd).st_size == PS
    k.check_invariants()


def test_R_SHM_8_seal_with_the_memory_call_then_shm_ctl_is_EPERM() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/s", CREATE, 0o600)
    assert p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_SEAL, 0, PS) == 0
    for flags in (C.SHMCTL_ANON, C.SHMCTL_REVOCABLE, C.SHMCTL_SEAL):
        fails_unchanged(k, p, fd, qerrno.EPERM, "R-SHM-7", p.shm_ctl, fd, flags, 0, PS)


def test_R_SHM_8_seal_and_revocable_in_a_separate_call_before_the_memory() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/s", CREATE, 0o600)
    assert p.shm_ctl(fd, C.SHMCTL_REVOCABLE, 0xDEAD, 12345) == 0  # paddr, size ignored
    assert p.fstat(fd).st_size == 0
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, PS) == 0  # memory still to come
    assert p.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) == C.SHMCTL_ANON | C.SHMCTL_REVOCABLE
    assert p.shm_ctl(fd, C.SHMCTL_SEAL, 0, 0) == 0  # after the memory too
    assert p.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) == (
        C.SHMCTL_ANON | C.SHMCTL_REVOCABLE | C.SHMCTL_SEAL
    )
    k.check_invariants()


# -- R-SHM-6: what shm_ctl gives ----------------------------------------------------------------


@pytest.mark.parametrize("hint", HINTS)
def test_R_SHM_6_hints_are_accepted_with_no_effect(hint: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/h", CREATE, 0o600)
    before = k.meminfo()
    assert p.shm_ctl(fd, C.SHMCTL_ANON | hint, 0, 2 * PS) == 0
    assert k.meminfo().allocated == before.allocated + 2 * PS
    assert p.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) == C.SHMCTL_ANON | hint
    k.check_invariants()


def test_R_SHM_6_size_is_rounded_to_pages_st_size_is_exact() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/r", CREATE, 0o600)
    before = k.meminfo()
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, PS + 1) == 0
    assert p.fstat(fd).st_size == PS + 1
    assert k.meminfo().allocated == before.allocated + 2 * PS


# -- R-SHM-7: the order of the checks ---------------------------------------------------------


def test_R_SHM_7_order_ebadf_before_flag_bits() -> None:
    p = kernel().spawn(image=False)
    expect_error(qerrno.EBADF, "R-SHM-7", p.shm_ctl, 9, 0x10000, 0, PS)


def test_R_SHM_7_order_flag_bits_before_not_shm() -> None:
    k = kernel()
    k.create_file("/f")
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDWR)
    err = expect_error(qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, 0x10000 | C.SHMCTL_ANON, 0, PS)
    assert "0x10000" in err.reason
    err = expect_error(qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_GET_FLAGS, 0, 0)
    assert "no shared memory object" in err.reason  # step 3 before GET_FLAGS


def test_R_SHM_7_has_special_given_to_shm_ctl_is_ignored() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/hs", CREATE, 0o600)
    assert p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_HAS_SPECIAL, 0, PS) == 0
    assert p.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) == C.SHMCTL_ANON


@pytest.mark.parametrize("other", [C.SHMCTL_ANON, C.SHMCTL_SEAL, 0x10000 & 0])
def test_R_SHM_7_order_get_flags_before_sealed(other: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/g", CREATE, 0o600)
    p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_SEAL, 0, PS)
    assert p.shm_ctl(fd, C.SHMCTL_GET_FLAGS | other, 5, 7) == C.SHMCTL_ANON | C.SHMCTL_SEAL


def test_R_SHM_7_order_attribute_call_before_combinations_and_EBUSY() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/a", CREATE, 0o600)
    p.shm_ctl(fd, C.SHMCTL_ANON, 0, PS)
    # has memory already (step 8) and GLOBAL would need an ability (step 9): step 6 first
    assert p.shm_ctl(fd, C.SHMCTL_REVOCABLE | C.SHMCTL_GLOBAL, 0, 0) == 0


@pytest.mark.parametrize(
    "flags",
    [
        C.SHMCTL_ANON | C.SHMCTL_PHYS | C.SHMCTL_LAZY,
        C.SHMCTL_TYMEM,
        C.SHMCTL_TYMEM | C.SHMCTL_PHYS,
        C.SHMCTL_ANON | C.SHMCTL_REPEAT,
        C.SHMCTL_LAZY,
        C.SHMCTL_GLOBAL,
        0,
    ],
)
def test_R_SHM_7_order_combinations_EINVAL_before_EBUSY(flags: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/c", CREATE, 0o600)
    p.ftruncate(fd, PS)  # has its memory: step 8 would say EBUSY
    fails_unchanged(k, p, fd, qerrno.EINVAL, "R-SHM-7", p.shm_ctl, fd, flags, 0, PS)


def test_R_SHM_7_order_EBUSY_before_privilege_and_size() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    fd = user.shm_open("/b", CREATE, 0o600)
    user.shm_ctl(fd, C.SHMCTL_ANON, 0, PS)
    flags = C.SHMCTL_ANON | C.SHMCTL_GLOBAL
    fails_unchanged(k, user, fd, qerrno.EBUSY, "R-SHM-7", user.shm_ctl, fd, flags, 0, 1 << 45)
    fails_unchanged(
        k, user, fd, qerrno.EBUSY, "R-SHM-7", user.shm_ctl_special, fd, C.SHMCTL_ANON, 0, PS, 1
    )


def test_R_SHM_7_order_privilege_before_size_before_phys() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    fd = user.shm_open("/p", CREATE, 0o600)
    flags = C.SHMCTL_ANON | C.SHMCTL_GLOBAL
    fails_unchanged(k, user, fd, qerrno.EPERM, "R-SHM-7", user.shm_ctl, fd, flags, 0, 1 << 45)
    # size past 2^44 (step 10) before SHMCTL_PHYS's ability (step 11)
    fails_unchanged(
        k, user, fd, qerrno.EINVAL, "R-SHM-7", user.shm_ctl, fd, C.SHMCTL_PHYS, 0, (1 << 44) + PS
    )
    fails_unchanged(k, user, fd, qerrno.EPERM, "R-SHM-7", user.shm_ctl, fd, C.SHMCTL_PHYS,
                    DEVICE_START, PS)  # fmt: skip
    assert user.shm_ctl(fd, C.SHMCTL_ANON, 0, 1 << 44 >> 30) == 0  # exactly allowed sizes pass


def test_R_SHM_7_size_exactly_2_44_is_not_refused_by_step_10() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/big", CREATE, 0o600)
    # passes step 10, then fails for want of RAM (step 13)
    fails_unchanged(k, p, fd, qerrno.ENOMEM, "R-SHM-7", p.shm_ctl, fd, C.SHMCTL_ANON, 0, 1 << 44)
    assert p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, 1 << 44) == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_R_SHM_7_EBUSY_when_given_memory_per_profile(version: str) -> None:
    """libmetal's sequence: a repeated shm_ctl(ANON|PHYS) is EBUSY; 6.4 says ENOSYS."""
    k = kernel(version)
    p = k.spawn(image=False)
    fd = p.shm_open("/m", CREATE, 0o600)
    flags = C.SHMCTL_ANON | C.SHMCTL_PHYS
    assert p.shm_ctl(fd, flags, 0, PS) == 0
    want = k.profile.shm_ctl_errno or qerrno.EBUSY
    err = expect_error(want, "R-SHM-7", p.shm_ctl, fd, flags, 0, PS)
    assert "already has its memory" in err.reason
    k.check_invariants()


# -- R-SHM-9: SHMCTL_GET_FLAGS ----------------------------------------------------------------


def test_R_SHM_9_get_flags_of_a_new_object_is_0_and_changes_nothing() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/n", CREATE, 0o600)
    before = (p.fstat(fd), k.meminfo())
    assert p.shm_ctl(fd, C.SHMCTL_GET_FLAGS | C.SHMCTL_ANON, 0x1000, PS) == 0
    assert (p.fstat(fd), k.meminfo()) == before
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, PS) == 0  # the query gave it nothing


def test_R_SHM_9_get_flags_reports_lazy_phys_and_has_special() -> None:
    k = kernel()
    p = k.spawn(image=False)
    lazy = p.shm_open("/l", CREATE, 0o600)
    p.shm_ctl(lazy, C.SHMCTL_ANON | C.SHMCTL_LAZY, 0, PS)
    assert p.shm_ctl(lazy, C.SHMCTL_GET_FLAGS, 0, 0) == C.SHMCTL_ANON | C.SHMCTL_LAZY
    phys = p.shm_open("/ph", CREATE, 0o600)
    p.shm_ctl_special(phys, C.SHMCTL_PHYS, DEVICE_START, PS, 0x3)
    assert p.shm_ctl(phys, C.SHMCTL_GET_FLAGS, 0, 0) == C.SHMCTL_PHYS | C.SHMCTL_HAS_SPECIAL


# -- R-SHM-10: SHMCTL_TYMEM -------------------------------------------------------------------


def test_R_SHM_10_tymem_allocates_from_the_typed_fd_in_paddr() -> None:
    k = typed_kernel()
    p = k.spawn(image=False)
    typed = p.posix_typed_mem_open(POOL, C.O_RDWR, C.POSIX_TYPED_MEM_ALLOCATE)
    fd = p.shm_open("/t", CREATE, 0o600)
    before = k.meminfo()
    assert p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_TYMEM, typed, 4 * PS) == 0
    assert k.meminfo().allocated == before.allocated + 4 * PS
    p.close(typed)  # the object keeps its memory
    a = p.mmap(0, 4 * PS, RW, C.MAP_SHARED, fd, 0)
    for page in range(4):
        paddr, _ = p.mem_offset64(a + page * PS, C.NOFD, PS)
        assert POOL_START <= paddr < POOL_START + POOL_SIZE
    flags = p.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0)
    assert flags == C.SHMCTL_ANON | C.SHMCTL_TYMEM
    k.check_invariants()


def test_R_SHM_10_tymem_phys_or_allocate_contig_is_one_run() -> None:
    k = typed_kernel()
    p = k.spawn(image=False)
    for tflag, extra in (
        (C.POSIX_TYPED_MEM_ALLOCATE, C.SHMCTL_PHYS),
        (C.POSIX_TYPED_MEM_ALLOCATE_CONTIG, 0),
    ):
        typed = p.posix_typed_mem_open(POOL, C.O_RDWR, tflag)
        fd = p.shm_open(f"/c{tflag}", CREATE, 0o600)
        assert p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_TYMEM | extra, typed, 8 * PS) == 0
        a = p.mmap(0, 8 * PS, RW, C.MAP_SHARED, fd, 0)
        assert p.mem_offset64(a, C.NOFD, 8 * PS)[1] == 8 * PS
    k.check_invariants()


def test_R_SHM_10_tymem_phys_needs_no_MEM_PHYS() -> None:
    k = typed_kernel()
    user = k.spawn(uid=1000, image=False)
    typed = user.posix_typed_mem_open(POOL, C.O_RDWR, C.POSIX_TYPED_MEM_ALLOCATE)
    fd = user.shm_open("/u", CREATE, 0o600)
    flags = C.SHMCTL_ANON | C.SHMCTL_PHYS | C.SHMCTL_TYMEM
    assert user.shm_ctl(fd, flags, typed, PS) == 0


@pytest.mark.parametrize("paddr", [7, 1 << 31, (1 << 64) - 1, -1])
def test_R_SHM_10_tymem_paddr_not_an_open_fd_is_EBADF(paddr: int) -> None:
    k = typed_kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/t", CREATE, 0o600)
    flags = C.SHMCTL_ANON | C.SHMCTL_TYMEM
    fails_unchanged(k, p, fd, qerrno.EBADF, "R-SHM-10", p.shm_ctl, fd, flags, paddr, PS)


def test_R_SHM_10_tymem_fd_that_is_not_typed_memory_is_EINVAL() -> None:
    k = typed_kernel()
    p = k.spawn(image=False)
    fd = p.shm_open("/t", CREATE, 0o600)
    other = p.shm_open("/other", CREATE, 0o600)
    flags = C.SHMCTL_ANON | C.SHMCTL_TYMEM
    fails_unchanged(k, p, fd, qerrno.EINVAL, "R-SHM-10", p.shm_ctl, fd, flags, other, PS)


def test_R_SHM_10_tymem_pool_short_is_ENOMEM() -> None:
    k = typed_kernel()
    p = k.spawn(image=False)
    typed = p.posix_typed_mem_open(POOL, C.O_RDWR, C.POSIX_TYPED_MEM_ALLOCATE)
    fd = p.shm_open("/t", CREATE, 0o600)
    flags = C.SHMCTL_ANON | C.SHMCTL_TYMEM
    fails_unchanged(k, p, fd, qerrno.ENOMEM, "R-SHM-10", p.shm_ctl, fd, flags, typed,
                    POOL_SIZE + PS)  # fmt: skip
    assert p.shm_ctl(fd, flags, typed, POOL_SIZE) == 0  # the whole pool fits


# -- R-SHM-11: shm_ctl_special ----------------------------------------------------------------


def test_R_SHM_11_special_0_is_shm_ctl_even_for_non_root() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    fd = user.shm_open("/s0", CREATE, 0o600)
    assert user.shm_ctl_special(fd, C.SHMCTL_ANON, 0, PS, 0) == 0
    assert user.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) == C.SHMCTL_ANON


def test_R_SHM_11_special_needs_MEM_SPECIAL_and_sets_HAS_SPECIAL() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    fd = user.shm_open("/s1", CREATE, 0o600)
    fails_unchanged(k, user, fd, qerrno.EPERM, "R-SHM-11", user.shm_ctl_special, fd,
                    C.SHMCTL_ANON, 0, PS, 0x8)  # fmt: skip
    allow(user, C.PROCMGR_AID_MEM_SPECIAL)
    assert user.shm_ctl_special(fd, C.SHMCTL_ANON, 0, PS, 0x8) == 0
    assert user.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) == C.SHMCTL_ANON | C.SHMCTL_HAS_SPECIAL
    k.check_invariants()


# -- SPEC 19: the same calls on every profile ---------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    "flags", [C.SHMCTL_SEAL, C.SHMCTL_REVOCABLE, C.SHMCTL_GET_FLAGS, C.SHMCTL_ANON | C.SHMCTL_TYMEM]
)
def test_SPEC_19_7_1_shmctl_flags_per_profile(version: str, flags: int) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    fd = p.shm_open("/v", CREATE, 0o600)
    if flags & ~k.profile.shmctl_flags:
        err = expect_error(k.profile.shm_ctl_errno or 0, "R-SHM-7", p.shm_ctl, fd, flags, 0, PS)
        assert "no SHMCTL_* flag" in err.reason
        assert not hasattr(k.constants, "SHMCTL_SEAL")
    else:
        assert hasattr(k.constants, "SHMCTL_SEAL")
        if flags & C.SHMCTL_TYMEM:  # the fd in paddr must be typed memory
            expect_error(qerrno.EBADF, "R-SHM-10", p.shm_ctl, fd, flags, 99, PS)
        else:
            assert p.shm_ctl(fd, flags, 0, PS) == 0


@pytest.mark.parametrize("version", VERSIONS)
def test_SPEC_19_shm_ctl_special_privilege_per_profile(version: str) -> None:
    """8.0 and 7.1: PROCMGR_AID_MEM_SPECIAL; 6.4: euid 0 (and ENOSYS for every failure)."""
    k = kernel(version)
    user = k.spawn(uid=1000, image=False)
    fd = user.shm_open("/sp", CREATE, 0o600)
    want = k.profile.shm_ctl_errno or qerrno.EPERM
    expect_error(want, "R-SHM-11", user.shm_ctl_special, fd, C.SHMCTL_ANON, 0, PS, 1)
    root = k.spawn(image=False)
    rfd = root.shm_open("/sp2", CREATE, 0o600)
    assert root.shm_ctl_special(rfd, C.SHMCTL_ANON, 0, PS, 1) == 0


# -- property tests ---------------------------------------------------------------------------

_FLAG_BITS = st.lists(
    st.sampled_from(
        [
            C.SHMCTL_ANON, C.SHMCTL_PHYS, C.SHMCTL_SEAL, C.SHMCTL_REVOCABLE, C.SHMCTL_GLOBAL,
            C.SHMCTL_PRIV, C.SHMCTL_LAZY, C.SHMCTL_REPEAT, C.SHMCTL_TYMEM, C.SHMCTL_GET_FLAGS,
            C.SHMCTL_HAS_SPECIAL, 0x10000,
        ]
    ),
    max_size=4,
).map(lambda bits: sum(set(bits)))  # fmt: skip
_SIZES = st.sampled_from([0, 1, PS, 3 * PS, 1 << 44, (1 << 44) + 1, 1 << 40])
_PADDRS = st.sampled_from([0, 3, DEVICE_START, DEVICE_START + 1, 1 << 40])


def _prepare(k: Kernel, p: Process, how: str) -> int:
    fd = p.shm_open("/prop", CREATE, 0o600)
    if how == "sized":
        p.ftruncate(fd, PS)
    elif how == "given":
        p.shm_ctl(fd, C.SHMCTL_ANON, 0, PS)
    elif how == "sealed" and k.profile.handles:
        p.shm_ctl(fd, C.SHMCTL_SEAL, 0, 0)
    return fd


@given(
    flags=_FLAG_BITS,
    paddr=_PADDRS,
    size=_SIZES,
    special=st.sampled_from([0, 1]),
    how=st.sampled_from(["new", "sized", "given", "sealed"]),
    uid=st.sampled_from([0, 1000]),
)
def test_R_SHM_7_property_failures_change_nothing_and_6_4_says_ENOSYS(
    flags: int, paddr: int, size: int, special: int, how: str, uid: int
) -> None:
    """The same shm_ctl_special on 8.0 and 6.4: a failure on 8.0 changes nothing
    (R-CALL-5), and 6.4 fails exactly when 8.0 fails or a 7.1 flag is used, always
    with ENOSYS (SPEC 19)."""
    outcome: dict[str, int | None] = {}
    for version in ("8.0", "6.4"):
        k = kernel(version)
        p = k.spawn(uid=uid, image=False)
        fd = _prepare(k, p, how)
        before = (p.fstat(fd), k.meminfo(), p.fdt.fds.keys())
        try:
            p.shm_ctl_special(fd, flags, paddr, size, special)
            outcome[version] = None
        except QnxError as err:
            outcome[version] = err.errno
            assert (p.fstat(fd), k.meminfo(), p.fdt.fds.keys()) == before
        k.check_invariants()
    new_flags = flags & ~k.profile.shmctl_flags
    if outcome["8.0"] is None and not new_flags and how != "sealed":
        assert outcome["6.4"] is None
    elif outcome["6.4"] is not None:
        assert outcome["6.4"] == qerrno.ENOSYS
    if new_flags or (outcome["8.0"] is not None and how != "sealed"):
        assert outcome["6.4"] == qerrno.ENOSYS
