"""Typed memory (SPEC 12.1: R-TYMEM-1..5, R-SYS-1, R-OBJ-1, R-MMAP-18) and posix_mem_offset
(R-MOFF-4, R-CALL-1).  Profile differences (SPEC 19) come from the profile's data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import PS, RW, expect_error, expect_fail

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim import errno as E

ALLOC = C.POSIX_TYPED_MEM_ALLOCATE
CONTIG = C.POSIX_TYPED_MEM_ALLOCATE_CONTIG
ALLOCATABLE = C.POSIX_TYPED_MEM_MAP_ALLOCATABLE
VERSIONS = ("8.0", "7.1", "6.4")
RAM_START = 0x10_0000  # R-SYS-5
DEVICE = (0xF000_0000, 0x1000_0000)  # R-SYS-5: [0xF000_0000, 2^32)
POOL = (0x20_0000, 0x10_0000)  # 1 MiB of RAM at 2 MiB
DEV_POOL = (0xF000_0000, 0x1_0000)


def kernel(version: str = "8.0") -> Kernel:
    pools = {"/pool": POOL, "/dev/win": DEV_POOL, "/memory/ram/sysram": (RAM_START, 16 << 20)}
    return Kernel(version=version, arch="x86_64", ram=16 << 20, typed_memory=pools)


def pool_size(p: Process, fd: int) -> int:
    """The size of the pool an fd is open on (R-TYMEM-5: fstat's st_size)."""
    return p.fstat(fd).st_size


# == R-TYMEM-1, R-SYS-1: pools ===================================================================


def test_SPEC_18_typed_memory_constants() -> None:
    assert (ALLOC, CONTIG, ALLOCATABLE) == (0x1, 0x2, 0x4)


def test_R_TYMEM_1_default_pools() -> None:
    ram = 64 << 20
    k = Kernel(ram=ram)
    assert k.typed_memory == {
        "/memory": (0, 1 << 32),
        "/memory/below4G": (0, 1 << 32),
        "/memory/isa": (0, 16 << 20),
        "/memory/device": DEVICE,
        "/memory/ram": (RAM_START, ram),
        "/memory/ram/sysram": (RAM_START, ram),
    }


def test_R_TYMEM_1_there_is_no_sysram_pool() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    expect_fail(k, p, E.ENOENT, "R-TYMEM-2", p.posix_typed_mem_open, "/sysram", C.O_RDWR, ALLOC)
    fd = p.posix_typed_mem_open("sysram", C.O_RDWR, ALLOC)  # the tail of /memory/ram/sysram
    assert pool_size(p, fd) == 64 << 20


def test_R_SYS_1_typed_memory_replaces_the_defaults() -> None:
    k = kernel()
    assert set(k.typed_memory) == {"/pool", "/dev/win", "/memory/ram/sysram"}
    p = k.spawn(image=False)
    expect_error(E.ENOENT, "R-TYMEM-2", p.posix_typed_mem_open, "/memory", C.O_RDWR, 0)


@pytest.mark.parametrize(
    "pools",
    [
        [("/x", POOL)],  # not a dict
        {"x": POOL},  # no leading "/"
        {"": POOL},
        {"/": POOL},  # an empty component
        {"/a//b": POOL},
        {"/a/": POOL},
        {"/" + "n" * 256: POOL},  # a component past NAME_MAX
        {7: POOL},
        {"/x": (RAM_START + 1, PS)},  # not page-aligned
        {"/x": (RAM_START, PS + 1)},
        {"/x": (RAM_START, 0)},  # empty
        {"/x": (-PS, 2 * PS)},
        {"/x": ((1 << 32) - PS, 2 * PS)},  # past PHYS_END
        {"/x": (RAM_START, PS, 0)},  # not a pair
        {"/x": [RAM_START, PS]},
        {"/x": (True, PS)},
        {"/x": (RAM_START, 4096.0)},
    ],
)
def test_R_SYS_1_bad_typed_memory_is_valueerror(pools: object) -> None:
    with pytest.raises(ValueError, match="typed"):
        Kernel(ram=16 << 20, typed_memory=pools)  # type: ignore[arg-type]


def test_R_SYS_1_any_range_below_phys_end_is_a_pool() -> None:
    """Not only RAM or devices: [0, RAM_START) and the gap below the devices are fine."""
    k = Kernel(ram=16 << 20, typed_memory={"/low": (0, RAM_START), "/top": (0, 1 << 32)})
    assert k.typed_memory["/top"] == (0, 1 << 32)


# == R-TYMEM-2: posix_typed_mem_open =============================================================


@pytest.mark.parametrize("tflag", [ALLOC | CONTIG, ALLOC | ALLOCATABLE, CONTIG | ALLOCATABLE, 7, 8,
                                   0x100, -1])  # fmt: skip
def test_R_TYMEM_2_bad_tflag_is_einval_before_the_name(tflag: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_fail(k, p, E.EINVAL, "R-TYMEM-2", p.posix_typed_mem_open, "/pool", C.O_RDWR, tflag)
    expect_fail(k, p, E.EINVAL, "R-TYMEM-2", p.posix_typed_mem_open, "/none", C.O_RDWR, tflag)
    assert not p.fdt.fds


def test_R_TYMEM_2_leading_slash_matches_exactly() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert pool_size(p, p.posix_typed_mem_open("/pool", C.O_RDWR, 0)) == POOL[1]
    assert pool_size(p, p.posix_typed_mem_open("/dev/win", C.O_RDWR, 0)) == DEV_POOL[1]
    for name in ("/win", "/sysram", "/ram/sysram", "/pool/", "/memory/ram", "//pool"):
        expect_fail(k, p, E.ENOENT, "R-TYMEM-2", p.posix_typed_mem_open, name, C.O_RDWR, 0)


def test_R_TYMEM_2_other_names_match_whole_tail_components() -> None:
    k = kernel()
    p = k.spawn(image=False)
    sysram = 16 << 20
    for name, size in (("pool", POOL[1]), ("win", DEV_POOL[1]), ("dev/win", DEV_POOL[1]),
                       ("sysram", sysram), ("ram/sysram", sysram),
                       ("memory/ram/sysram", sysram)):  # fmt: skip
        assert pool_size(p, p.posix_typed_mem_open(name, C.O_RDWR, 0)) == size, name
    for name in ("", "ool", "in", "ram", "am/sysram", "sysram/", "x/pool", "memory"):
        expect_fail(k, p, E.ENOENT, "R-TYMEM-2", p.posix_typed_mem_open, name, C.O_RDWR, 0)


def test_R_TYMEM_2_default_names() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    want = {"memory": 1 << 32, "below4G": 1 << 32, "isa": 16 << 20, "device": DEVICE[1],
            "ram": 64 << 20, "memory/ram": 64 << 20, "/memory/isa": 16 << 20}  # fmt: skip
    for name, size in want.items():
        assert pool_size(p, p.posix_typed_mem_open(name, C.O_RDONLY, 0)) == size, name


def test_R_TYMEM_2_several_tail_matches_fewest_components_then_byte_order() -> None:
    pools = {"/b/x": (RAM_START, PS), "/a/x": (RAM_START, 2 * PS), "/B/x": (RAM_START, 3 * PS),
             "/c/d/x": (RAM_START, 4 * PS)}  # fmt: skip
    p = Kernel(ram=16 << 20, typed_memory=pools).spawn(image=False)
    assert pool_size(p, p.posix_typed_mem_open("x", C.O_RDWR, 0)) == 3 * PS  # b"/B" < b"/a"
    assert pool_size(p, p.posix_typed_mem_open("d/x", C.O_RDWR, 0)) == 4 * PS
    fewer = {**pools, "/x": (RAM_START, 5 * PS)}
    p = Kernel(ram=16 << 20, typed_memory=fewer).spawn(image=False)
    assert pool_size(p, p.posix_typed_mem_open("x", C.O_RDWR, 0)) == 5 * PS


def test_R_TYMEM_2_component_past_name_max_is_enametoolong() -> None:
    k = kernel()
    p = k.spawn(image=False)
    for name in ("n" * 256, "/" + "n" * 256, "pool/" + "n" * 256, "/dev/" + "n" * 300):
        expect_fail(k, p, E.ENAMETOOLONG, "R-TYMEM-2", p.posix_typed_mem_open, name, C.O_RDWR, 0)
    expect_fail(k, p, E.ENOENT, "R-TYMEM-2", p.posix_typed_mem_open, "n" * 255, C.O_RDWR, 0)


def test_R_TYMEM_2_emfile_comes_after_the_name() -> None:
    k = kernel()
    p = k.spawn(image=False)
    p.setrlimit(C.RLIMIT_NOFILE, 1, 1)
    assert p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC) == 0
    expect_fail(k, p, E.ENOENT, "R-TYMEM-2", p.posix_typed_mem_open, "/none", C.O_RDWR, 0)
    expect_fail(k, p, E.EMFILE, "R-TYMEM-2", p.posix_typed_mem_open, "/pool", C.O_RDWR, 0)
    assert p.libc.posix_typed_mem_open("/pool", C.O_RDWR, 0) == -1 and p.libc.errno == E.EMFILE


@pytest.mark.parametrize("version", VERSIONS)
def test_R_TYMEM_2_SPEC_19_direct_open_by_non_root(version: str) -> None:
    """6.4 refuses a non-root open without ALLOCATE(_CONTIG) (EPERM); 7.1/8.0 allow it."""
    k = kernel(version)
    user = k.spawn(uid=1000, image=False)
    for tflag in (0, ALLOCATABLE):
        if k.profile.tymem_direct_needs_root:
            expect_fail(k, user, E.EPERM, "R-TYMEM-2", user.posix_typed_mem_open, "/pool",
                        C.O_RDWR, tflag)  # fmt: skip
        else:
            assert user.posix_typed_mem_open("/pool", C.O_RDWR, tflag) >= 0
    for tflag in (ALLOC, CONTIG):
        assert user.posix_typed_mem_open("/pool", C.O_RDWR, tflag) >= 0
    root = k.spawn(image=False)
    assert root.posix_typed_mem_open("/pool", C.O_RDWR, 0) >= 0
    expect_error(E.ENOENT, "R-TYMEM-2", user.posix_typed_mem_open, "/none", C.O_RDWR, 0)


def test_SPEC_19_typed_memory_profile_data() -> None:
    assert [kernel(v).profile.tymem_direct_needs_root for v in VERSIONS] == [False, False, True]
    assert [kernel(v).profile.mem_offset_physical for v in VERSIONS] == [True, True, False]


# == R-TYMEM-3: posix_typed_mem_get_info =========================================================


def test_R_TYMEM_3_lengths() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert p.posix_typed_mem_get_info(p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)) == POOL[1]
    assert p.posix_typed_mem_get_info(p.posix_typed_mem_open("/pool", C.O_RDWR, CONTIG)) == POOL[1]
    for tflag in (0, ALLOCATABLE):
        assert p.posix_typed_mem_get_info(p.posix_typed_mem_open("/pool", C.O_RDWR, tflag)) == 0
    dev = p.posix_typed_mem_open("/dev/win", C.O_RDWR, ALLOC)
    assert p.posix_typed_mem_get_info(dev) == 0  # no RAM in a device window


def test_R_TYMEM_3_errors_and_the_libc_form() -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_fail(k, p, E.EBADF, "R-TYMEM-3", p.posix_typed_mem_get_info, 5)
    expect_fail(k, p, E.EBADF, "R-TYMEM-3", p.posix_typed_mem_get_info, -1)
    shm = p.shm_open("/s", C.O_RDWR | C.O_CREAT, 0o600)
    expect_fail(k, p, E.ENODEV, "R-TYMEM-3", p.posix_typed_mem_get_info, shm)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)
    p.libc.errno = 0
    assert p.libc.posix_typed_mem_get_info(fd) == (0, POOL[1])
    assert p.libc.posix_typed_mem_get_info(shm) == (E.ENODEV, None)
    assert p.libc.posix_typed_mem_get_info(99) == (E.EBADF, None)
    assert p.libc.errno == 0  # R-CALL-1: the error number is returned, errno untouched


def test_R_TYMEM_3_free_ram_is_what_an_allocation_may_take() -> None:
    """[SIM] Reserved RAM is not free: the length never exceeds the machine's free RAM."""
    k = Kernel(ram=16 << 20, typed_memory={"/all": (RAM_START, 16 << 20)})
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/all", C.O_RDWR, ALLOC)
    k.create_file("/f", b"x" * (8 << 20))
    f = p.open("/f", C.O_RDONLY)
    p.mmap(0, 8 << 20, C.PROT_READ, C.MAP_PRIVATE, f, 0)  # reserves 8 MiB (R-OBJ-3)
    assert p.posix_typed_mem_get_info(fd) == k.meminfo().free


# == R-TYMEM-5: fstat, dup, close ===============================================================


def test_R_TYMEM_5_fstat_dup_dup2_close() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)
    assert p.fstat(fd).st_size == POOL[1]
    twin = p.dup(fd)
    assert p.posix_typed_mem_get_info(twin) == POOL[1]
    assert p.dup2(fd, 9) == 9 and p.fstat(9) == p.fstat(fd)
    assert p.close(fd) == 0 and p.close(twin) == 0
    assert p.fstat(9).st_size == POOL[1]
    assert p.close(9) == 0
    expect_fail(k, p, E.EBADF, "R-TYMEM-3", p.posix_typed_mem_get_info, 9)
    k.check_invariants()


# == R-MOFF-4: posix_mem_offset ==================================================================


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MOFF_4_anonymous_memory_physical_address_and_nofd(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    a = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    paddr, contig = p.mem_offset64(a + 5, C.NOFD, 2 * PS)
    assert p.posix_mem_offset(a + 5, 2 * PS) == (paddr, contig, C.NOFD)
    assert p.posix_mem_offset64(a + 5, 2 * PS) == (paddr, contig, C.NOFD)


def test_R_MOFF_4_fd_is_the_lowest_open_on_the_mapped_object() -> None:
    k = kernel()
    p = k.spawn(image=False)
    first = p.shm_open("/s", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(first, PS)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, first, 0)
    p.open("/dev/zero", C.O_RDONLY)
    again = p.shm_open("/s", C.O_RDONLY)
    paddr = p.mem_offset64(a, C.NOFD, PS)[0]
    assert p.posix_mem_offset(a, PS) == (paddr, PS, first)
    p.close(first)
    assert p.posix_mem_offset(a, PS) == (paddr, PS, again)
    p.close(again)
    assert p.posix_mem_offset(a, PS) == (paddr, PS, C.NOFD)
    mem = p.open("/dev/mem", C.O_RDWR)
    d = p.mmap(0, PS, RW, C.MAP_SHARED, mem, 0xF000_0000)
    assert p.posix_mem_offset(d + 8, 16) == (0xF000_0008, 16, mem)


def test_R_MOFF_4_errors_are_returned_by_libc() -> None:
    k = kernel()
    p = k.spawn(image=False)
    expect_fail(k, p, E.EACCES, "R-MOFF-1", p.posix_mem_offset, 0x1000_0000, PS)
    p.libc.errno = 0
    assert p.libc.posix_mem_offset(0x1000_0000, PS) == (E.EACCES, None)
    assert p.libc.posix_mem_offset64(0x1000_0000, PS) == (E.EACCES, None)
    assert p.libc.errno == 0
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    assert p.libc.posix_mem_offset(a, PS)[0] == 0


@pytest.mark.parametrize("arch", ["x86", "armle-v7"])
def test_R_MOFF_4_32_bit_off_t_overflow(arch: str) -> None:
    k = Kernel(arch=arch, ram=16 << 20)
    p = k.spawn(image=False)
    d = p.mmap_device_memory(0, PS, RW, C.MAP_SHARED, 0xF000_0000)
    expect_fail(k, p, E.EOVERFLOW, "R-MOFF-4", p.posix_mem_offset, d, PS)
    assert p.posix_mem_offset64(d, PS) == (0xF000_0000, PS, C.NOFD)
    assert p.libc.posix_mem_offset(d, PS) == (E.EOVERFLOW, None)


@given(pages=st.integers(1, 4), offset=st.integers(0, 4 * PS - 1), length=st.integers(0, 5 * PS))
def test_R_MOFF_4_property_off_and_contig_are_mem_offset64s(
    pages: int, offset: int, length: int
) -> None:
    """On 8.0 ``(off, contig_len)`` is what mem_offset64 gives for the same address, the
    fd is NOFD for anonymous memory, and a repeated call gives the same answer."""
    k = kernel()
    p = k.spawn(image=False)
    a = p.mmap(0, pages * PS, RW, C.MAP_PRIVATE | C.MAP_ANON | C.MAP_LAZY, C.NOFD, 0)
    addr = a + offset % (pages * PS)
    got = p.posix_mem_offset(addr, length)
    assert got == (*p.mem_offset64(addr, C.NOFD, length), C.NOFD)
    assert p.posix_mem_offset(addr, length) == got
    k.check_invariants()


# == R-TYMEM-4, R-MMAP-18: mmap of typed memory ==================================================


def frames(p: Process, addr: int, pages: int) -> list[int]:
    return [p.mem_offset64(addr + i * PS, C.NOFD, PS)[0] for i in range(pages)]


@pytest.mark.parametrize("tflag", [ALLOC, CONTIG])
@pytest.mark.parametrize(
    ("flags", "kind"), [(C.MAP_SHARED, "shared-anon"), (C.MAP_PRIVATE, "anon")]
)
def test_R_TYMEM_4_allocation_is_new_zeroed_memory_inside_the_pool(
    tflag: int, flags: int, kind: str
) -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, tflag)
    before = k.meminfo().allocated
    a = p.mmap(0, 4 * PS, RW, flags, fd, 0)
    assert k.meminfo().allocated == before + 4 * PS
    m = p.mapping_at(a)
    assert m is not None and (m.kind, m.size) == (kind, 4 * PS)
    assert p.read_memory(a, 4 * PS) == bytes(4 * PS)
    got = frames(p, a, 4)
    assert all(POOL[0] <= f < POOL[0] + POOL[1] for f in got)
    if tflag == CONTIG:
        assert got == [got[0] + i * PS for i in range(4)]
    assert p.posix_typed_mem_get_info(fd) == POOL[1] - 4 * PS
    assert p.posix_mem_offset(a, PS) == (got[0], PS, fd)  # R-MOFF-4: the pool's fd
    p.munmap(a, 4 * PS)
    assert p.posix_typed_mem_get_info(fd) == POOL[1]
    k.check_invariants()


def test_R_TYMEM_4_allocation_ignores_off_and_needs_no_congruence() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0x1234_5678)
    assert a % PS == 0 and p.mapping_at(a).offset == 0  # type: ignore[union-attr]
    fixed = 0x3000_0000 + 0x10
    assert p.mmap(fixed, PS, RW, C.MAP_SHARED | C.MAP_FIXED, fd, 0x2000) == fixed
    assert p.mmap(fixed + 4 * PS, PS, RW, C.MAP_PRIVATE | C.MAP_FIXED, fd, 5) == fixed + 4 * PS
    k.check_invariants()


def test_R_TYMEM_4_pool_short_is_enomem() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, CONTIG)
    p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, 0, POOL[1], RW, C.MAP_SHARED, fd, 0)
    dev = p.posix_typed_mem_open("/dev/win", C.O_RDWR, ALLOC)  # no RAM in that pool
    expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, 0, PS, RW, C.MAP_PRIVATE, dev, 0)


def test_R_TYMEM_4_without_allocate_maps_the_pools_physical_memory() -> None:
    k = kernel()
    p = k.spawn(image=False)
    lowest = None
    for tflag in (0, ALLOCATABLE):
        fd = p.posix_typed_mem_open("/dev/win", C.O_RDWR, tflag)
        lowest = fd if lowest is None else lowest
        a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0x2000)
        m = p.mapping_at(a)
        assert m is not None and (m.kind, m.offset) == ("phys", DEV_POOL[0] + 0x2000)
        assert p.posix_mem_offset(a, PS) == (DEV_POOL[0] + 0x2000, PS, lowest)
        p.write_memory(a, b"dev")
        mem = p.open("/dev/mem", C.O_RDWR)
        view = p.mmap(0, PS, RW, C.MAP_SHARED, mem, DEV_POOL[0] + 0x2000)
        assert p.read_memory(view, 3) == b"dev"
    k.check_invariants()


def test_R_TYMEM_4_direct_range_outside_the_pool_is_enxio() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/dev/win", C.O_RDWR, 0)
    last = DEV_POOL[1] - PS
    assert p.mmap(0, PS, RW, C.MAP_SHARED, fd, last)
    expect_fail(k, p, E.ENXIO, "R-TYMEM-4", p.mmap, 0, 2 * PS, RW, C.MAP_SHARED, fd, last)
    expect_fail(k, p, E.ENXIO, "R-TYMEM-4", p.mmap, 0, PS, RW, C.MAP_SHARED, fd, DEV_POOL[1])


def test_R_TYMEM_4_direct_needs_congruence_and_mem_phys() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/dev/win", C.O_RDWR, 0)
    fixed = 0x3000_0000 + 0x10
    expect_fail(k, p, E.EINVAL, "R-MMAP-F2", p.mmap, fixed, PS, RW, C.MAP_SHARED | C.MAP_FIXED,
                fd, 0x2000)  # fmt: skip
    assert p.mmap(fixed, PS, RW, C.MAP_SHARED | C.MAP_FIXED, fd, 0x2010) == fixed
    user = k.spawn(uid=1000, image=False)
    ufd = user.posix_typed_mem_open("/dev/win", C.O_RDWR, 0)
    expect_fail(k, user, E.EPERM, "R-MMAP-11", user.mmap, 0, PS, RW, C.MAP_SHARED, ufd, 0)


def test_R_TYMEM_4_eacces_uses_the_typed_fds_open_mode() -> None:
    k = kernel()
    p = k.spawn(image=False)
    ro = p.posix_typed_mem_open("/pool", C.O_RDONLY, ALLOC)
    expect_fail(k, p, E.EACCES, "R-MMAP-12", p.mmap, 0, PS, RW, C.MAP_SHARED, ro, 0)
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE, ro, 0)
    wo = p.posix_typed_mem_open("/pool", C.O_WRONLY, ALLOC)
    expect_fail(k, p, E.EACCES, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, C.MAP_SHARED, wo, 0)


def test_R_MMAP_18_typed_memory_never_counts_against_rlimit_data() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)
    p.setrlimit(C.RLIMIT_DATA, PS, PS)
    a = p.mmap(0, 8 * PS, RW, C.MAP_PRIVATE, fd, 0)  # well over RLIMIT_DATA
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)  # the data limit is free
    expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON,
                C.NOFD, 0)  # fmt: skip
    p.setrlimit(C.RLIMIT_AS, 10 * PS, 10 * PS)  # but RLIMIT_AS counts it
    expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, 0, 2 * PS, RW, C.MAP_PRIVATE, fd, 0)
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE, fd, 0)
    records = [m for m in p.mappings() if m.start == a]
    assert records and records[0].kind == "anon"
    k.check_invariants()


def test_R_TYMEM_5_mapping_outlives_the_typed_fd() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a, b"kept")
    p.close(fd)
    assert p.read_memory(a, 4) == b"kept"
    assert p.posix_mem_offset(a, PS)[2] == C.NOFD  # no fd on the pool any more
    again = p.posix_typed_mem_open("pool", C.O_RDONLY, 0)  # another fd on the same pool
    assert p.posix_mem_offset(a, PS)[2] == again
    k.check_invariants()


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MOFF_4_SPEC_19_off_for_typed_memory(version: str) -> None:
    """8.0 and 7.1: the physical address; 6.4 [SIM]: the offset in the pool."""
    k = kernel(version)
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, CONTIG)
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    paddr = p.mem_offset64(a, C.NOFD, PS)[0]
    want = paddr if k.profile.mem_offset_physical else paddr - POOL[0]
    assert p.posix_mem_offset(a + 3, 2 * PS) == (want + 3, 2 * PS - 3, fd)


@given(
    tflag=st.sampled_from([ALLOC, CONTIG]),
    calls=st.lists(st.tuples(st.booleans(), st.integers(1, 64), st.booleans()), max_size=6),
)
def test_R_TYMEM_4_property_frames_stay_in_the_pool_and_free_memory_adds_up(
    tflag: int, calls: list[tuple[bool, int, bool]]
) -> None:
    """Whatever is mapped and unmapped, every frame of typed memory lies in its pool, the
    pool's free length falls by what is mapped, a mapping is refused exactly when the
    fd's own posix_typed_mem_get_info says it does not fit (R-TYMEM-3: the free length,
    or for _CONTIG the largest free run), and a refused mapping changes nothing."""
    k = kernel()
    p = k.spawn(image=False)
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, tflag)
    alloc = p.posix_typed_mem_open("/pool", C.O_RDONLY, ALLOC)
    live: list[tuple[int, int]] = []
    for shared, pages, unmap in calls:
        if unmap and live:
            addr, n = live.pop(0)
            p.munmap(addr, n * PS)
            continue
        flags = C.MAP_SHARED if shared else C.MAP_PRIVATE
        free = p.posix_typed_mem_get_info(alloc)
        room = p.posix_typed_mem_get_info(fd)
        before = (p.mappings(), k.meminfo())
        got = p.libc.mmap(0, pages * PS, RW, flags, fd, 0)
        assert (got == C.MAP_FAILED) == (room < pages * PS), (pages, room, p.libc.errno)
        if got == C.MAP_FAILED:
            assert p.libc.errno == E.ENOMEM and (p.mappings(), k.meminfo()) == before
            continue
        live.append((got, pages))
        assert p.posix_typed_mem_get_info(alloc) == free - pages * PS
        assert all(POOL[0] <= f < sum(POOL) for f in frames(p, got, pages))
    used = sum(n for _, n in live) * PS
    assert p.posix_typed_mem_get_info(alloc) == POOL[1] - used
    k.check_invariants()
