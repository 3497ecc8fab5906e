"""Real code: Eclipse S-CORE baselibs, its QNX tests (eclipse-score/baselibs,
score/os/test/mmanTest.cpp and score/os/test/qnx/mman_test.cpp), which run in CI on
QNX SDP 8.0.

What those tests call and what they expect back, each as one test here:
shm_unlink("") fails with ENOENT (R-SHM-2, R-SHM-4); shm_ctl() on a fresh object with size
0 succeeds (R-SHM-6); shm_create_handle() with a bad fd fails with EBADF (R-HANDLE-1);
shm_open_handle() with a handle nobody made fails (R-HANDLE-2); posix_typed_mem_open() of
"/memory" gives an fd that maps the machine's physical memory (R-TYMEM-1, R-TYMEM-2);
mmap_device_io(1, 0x60) and munmap_device_io() both succeed (R-DEVIO-1, R-DEVIO-2).
"""

from __future__ import annotations

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim import errno as qerrno


def kernel() -> Kernel:
    return Kernel(ram=64 << 20)


def test_R_SHM_2_baselibs_shm_unlink_of_the_empty_name_is_ENOENT() -> None:
    p = kernel().spawn(image=False)
    assert p.libc.shm_unlink("") == -1
    assert p.libc.errno == qerrno.ENOENT


def test_R_SHM_6_baselibs_shm_ctl_with_size_0_succeeds() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.libc.shm_open("/baselibs_shm_ctl", C.O_RDWR | C.O_CREAT, 0o600)
    assert fd >= 0
    assert p.libc.shm_ctl(fd, C.SHMCTL_ANON, 0, 0) == 0, p.libc.errno
    assert p.libc.shm_unlink("/baselibs_shm_ctl") == 0
    k.check_invariants()


def test_R_HANDLE_1_baselibs_create_handle_with_a_bad_fd_is_EBADF() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert p.libc.shm_create_handle(-1, p.pid, C.O_RDWR, 0) == -1
    assert p.libc.errno == qerrno.EBADF


def test_R_HANDLE_2_baselibs_open_handle_of_an_invalid_handle_fails() -> None:
    k = kernel()
    p = k.spawn(image=False)
    assert p.libc.shm_open_handle(0x1234, C.O_RDWR) == -1
    assert p.libc.errno == qerrno.EBADF


def test_R_TYMEM_1_baselibs_opens_typed_memory_by_the_name_memory() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.libc.posix_typed_mem_open("/memory", C.O_RDWR, 0)
    assert fd >= 0, p.libc.errno
    addr = p.libc.mmap(0, 4096, C.PROT_READ, C.MAP_SHARED, fd, 0x100000)  # RAM's first page
    assert addr != C.MAP_FAILED, p.libc.errno
    assert p.mapping_at(addr) is not None and p.mapping_at(addr).kind == "phys"
    assert p.libc.posix_typed_mem_open("/sysram", C.O_RDWR, 0) == -1  # no such pool
    assert p.libc.errno == qerrno.ENOENT
    k.check_invariants()


def test_R_DEVIO_1_baselibs_maps_and_unmaps_device_io() -> None:
    k = kernel()
    p = k.spawn(image=False)
    handle = p.libc.mmap_device_io(1, 0x60)
    assert handle != C.MAP_FAILED, p.libc.errno
    assert p.libc.munmap_device_io(handle, 1) == 0, p.libc.errno  # R-DEVIO-2
    assert p.mappings() == ()
    k.check_invariants()
