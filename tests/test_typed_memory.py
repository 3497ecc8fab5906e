"""Typed memory (R-OBJ-1; POSIX 1003.1j as QNX declares it in <sys/mman.h>)."""

from __future__ import annotations

import pytest
from support import PS, RW

from qnxsim import Kernel, QnxError
from qnxsim import constants as C
from qnxsim import errno as E

ALLOC = C.POSIX_TYPED_MEM_ALLOCATE
CONTIG = C.POSIX_TYPED_MEM_ALLOCATE_CONTIG
POOL = (0x20_0000, 0x10_0000)  # 1 MiB of RAM at 2 MiB


def kernel() -> Kernel:
    return Kernel(ram=16 << 20, typed_memory={"/pool": POOL, "/dev": (0xF000_0000, 0x1_0000)})


def test_R_OBJ_1_tflag_values_are_qnx() -> None:
    assert (ALLOC, CONTIG, C.POSIX_TYPED_MEM_MAP_ALLOCATABLE) == (0x1, 0x2, 0x4)


def test_R_OBJ_1_default_pools() -> None:
    k = Kernel(ram=64 << 20)
    assert k.typed_memory["/sysram"] == (0x10_0000, 64 << 20)
    assert k.typed_memory["/sysram/below16M"] == (0x10_0000, 0x100_0000 - 0x10_0000)


def test_R_OBJ_1_allocate_from_pool() -> None:
    k = kernel()
    p = k.spawn()
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)
    assert p.posix_typed_mem_get_info(fd) == POOL[1]
    for flags in (C.MAP_SHARED, C.MAP_PRIVATE):
        a = p.mmap(0, 4 * PS, RW, flags, fd, 0)
        for page in range(4):
            paddr, _ = p.mem_offset64(a + page * PS, C.NOFD, PS)
            assert POOL[0] <= paddr < POOL[0] + POOL[1]
        off, contig, got_fd = p.posix_mem_offset(a, PS)
        assert got_fd == fd and 0 <= off < POOL[1] and contig == PS
    assert p.posix_typed_mem_get_info(fd) == POOL[1] - 8 * PS
    k.check_invariants()


def test_R_OBJ_1_allocate_contig_and_enomem() -> None:
    k = kernel()
    p = k.spawn()
    fd = p.posix_typed_mem_open("/pool", C.O_RDWR, CONTIG)
    a = p.mmap(0, 16 * PS, RW, C.MAP_SHARED, fd, 0)
    assert p.mem_offset64(a, C.NOFD, 16 * PS)[1] == 16 * PS
    assert p.posix_typed_mem_get_info(fd) == POOL[1] - 16 * PS
    before = (p.mappings(), k.meminfo())
    with pytest.raises(QnxError) as info:
        p.mmap(0, POOL[1], RW, C.MAP_SHARED, fd, 0)  # more than the pool has left
    assert info.value.errno == E.ENOMEM and "R-MMAP-20" in info.value.reason
    assert (p.mappings(), k.meminfo()) == before  # R-CALL-5
    k.check_invariants()


def test_R_OBJ_1_map_pool_memory_without_allocate() -> None:
    k = kernel()
    p = k.spawn()
    fd = p.posix_typed_mem_open("/dev", C.O_RDWR, 0)
    assert p.posix_typed_mem_get_info(fd) == 0
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0x2000)
    assert p.mem_offset64(a, C.NOFD, PS)[0] == 0xF000_2000
    assert p.posix_mem_offset(a, PS) == (0x2000, PS, fd)
    with pytest.raises(QnxError) as info:
        p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0x1_0000 - PS)
    assert info.value.errno == E.ENXIO and "R-OBJ-1" in info.value.reason
    user = k.spawn(uid=1000)
    ufd = user.posix_typed_mem_open("/dev", C.O_RDWR, C.POSIX_TYPED_MEM_MAP_ALLOCATABLE)
    with pytest.raises(QnxError) as info:  # physical memory needs PROCMGR_AID_MEM_PHYS
        user.mmap(0, PS, RW, C.MAP_SHARED, ufd, 0)
    assert info.value.errno == E.EPERM and "R-MMAP-11" in info.value.reason


def test_R_OBJ_1_open_errors() -> None:
    k = kernel()
    p = k.spawn()
    with pytest.raises(QnxError) as info:
        p.posix_typed_mem_open("/nope", C.O_RDWR, 0)
    assert info.value.errno == E.ENOENT and "R-OBJ-1" in info.value.reason
    with pytest.raises(QnxError) as info:
        p.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC | CONTIG)
    assert info.value.errno == E.EINVAL and "R-OBJ-1" in info.value.reason
    with pytest.raises(QnxError) as info:
        p.posix_typed_mem_open("/" + "x" * 256, C.O_RDWR, 0)
    assert info.value.errno == E.ENAMETOOLONG


def test_R_OBJ_1_get_info_and_mem_offset_errors() -> None:
    k = kernel()
    p = k.spawn()
    with pytest.raises(QnxError) as info:
        p.posix_typed_mem_get_info(77)
    assert info.value.errno == E.EBADF
    k.create_file("/f", b"x")
    fd = p.open("/f", C.O_RDONLY)
    with pytest.raises(QnxError) as info:
        p.posix_typed_mem_get_info(fd)
    assert info.value.errno == E.ENODEV and "R-OBJ-1" in info.value.reason
    with pytest.raises(QnxError) as info:
        p.posix_mem_offset(PS, PS)  # page 1 is never mapped
    assert info.value.errno == E.EACCES
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    paddr, contig, nofd = p.posix_mem_offset(a, PS)
    assert nofd == C.NOFD and (paddr, contig) == p.mem_offset64(a, C.NOFD, PS)


def test_R_CALL_1_libc_facade() -> None:
    k = kernel()
    p = k.spawn()
    assert p.libc.posix_typed_mem_open("/nope", C.O_RDWR, 0) == -1
    assert p.libc.errno == E.ENOENT
    fd = p.libc.posix_typed_mem_open("/pool", C.O_RDWR, ALLOC)
    assert p.libc.posix_typed_mem_get_info(fd) == (0, POOL[1])
    assert p.libc.posix_mem_offset(PS, PS) == (E.EACCES, None)


def test_R_SYS_1_bad_typed_memory_config() -> None:
    with pytest.raises(ValueError):
        Kernel(typed_memory={"/x": (0x1000_0000_0000, PS)})
    with pytest.raises(ValueError):
        Kernel(typed_memory={"x": (0x10_0000, PS)})
