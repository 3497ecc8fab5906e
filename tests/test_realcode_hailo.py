"""Real code: HailoRT's DMA-able buffers on QNX (hailo-ai/hailort,
hailort/libhailort/src/vdma/memory/dma_able_buffer.cpp).

The library opens a typed-memory pool with POSIX_TYPED_MEM_ALLOCATE_CONTIG, makes an
anonymous shm object (SHM_ANON), gives it memory from the pool with
shm_ctl(SHMCTL_ANON | SHMCTL_TYMEM) passing the typed fd, cast to uint64_t, in ``paddr``
(R-SHM-10), closes the typed fd, maps the object and hands the physical address of the
buffer to the device.
"""

from __future__ import annotations

from support import PS, RW

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim import errno as qerrno

RAM_START = 0x10_0000  # R-SYS-5
#: A pool of our own below 4 GiB (the library wants DMA-reachable RAM); configured
#: explicitly (R-SYS-1) so the test does not lean on default pool names.
POOL = "/memory/below4G/ram/sysram"
POOL_START = RAM_START + (4 << 20)
POOL_SIZE = 8 << 20
SIZE = 32 * PS


def test_R_SHM_10_hailo_dma_buffer_from_typed_memory() -> None:
    k = Kernel(ram=64 << 20, typed_memory={POOL: (POOL_START, POOL_SIZE)})
    p = k.spawn("/usr/bin/hailortcli", image=False)
    typed = p.libc.posix_typed_mem_open(POOL, C.O_RDWR, C.POSIX_TYPED_MEM_ALLOCATE_CONTIG)
    assert typed >= 0, p.libc.errno
    fd = p.libc.shm_open(C.SHM_ANON, C.O_RDWR | C.O_CREAT, 0o777)
    assert fd >= 0, p.libc.errno
    assert p.libc.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_TYMEM, typed, SIZE) == 0, p.libc.errno
    assert p.libc.close(typed) == 0  # the object keeps its memory
    addr = p.libc.mmap(0, SIZE, RW, C.MAP_SHARED, fd, 0)
    assert addr != C.MAP_FAILED, p.libc.errno
    paddr, contig = p.mem_offset64(addr, C.NOFD, SIZE)
    assert paddr >= POOL_START and paddr + SIZE <= POOL_START + POOL_SIZE
    assert contig == SIZE  # ALLOCATE_CONTIG: one run the device can walk
    p.write_memory(addr, b"descriptor")
    assert p.pread(fd, 10, 0) == b"descriptor"
    k.check_invariants()


def test_R_SHM_10_hailo_passing_a_closed_typed_fd_is_EBADF() -> None:
    k = Kernel(ram=64 << 20, typed_memory={POOL: (POOL_START, POOL_SIZE)})
    p = k.spawn(image=False)
    fd = p.shm_open(C.SHM_ANON, C.O_RDWR | C.O_CREAT, 0o777)
    assert p.libc.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_TYMEM, 42, SIZE) == -1
    assert p.libc.errno == qerrno.EBADF
    assert p.fstat(fd).st_size == 0
