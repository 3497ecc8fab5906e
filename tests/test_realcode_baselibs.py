"""Real code: Eclipse S-CORE baselibs, its QNX tests (eclipse-score/baselibs,
score/os/test/mmanTest.cpp and score/os/test/qnx/mman_test.cpp), which run in CI on
QNX SDP 8.0.

What those tests call and what they expect back, each as one test here:
shm_unlink("") fails with ENOENT (R-SHM-2, R-SHM-4); shm_ctl() on a fresh object with size
0 succeeds (R-SHM-6); shm_create_handle() with a bad fd fails with EBADF (R-HANDLE-1);
shm_open_handle() with a handle nobody made fails (R-HANDLE-2).
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
