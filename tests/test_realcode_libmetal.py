"""Real code: OpenAMP libmetal's QNX 8 port (qnx-ports/libmetal, lib/system/qnx/shmem.c).

What the port does to get a shared, physically contiguous buffer by name: it opens the
name with O_CREAT, asks shm_ctl() for anonymous contiguous memory (SHMCTL_ANON |
SHMCTL_PHYS), and maps the object.  The second user of the same name repeats the shm_ctl()
call; the port goes on only when that repeat fails with EBUSY (any other errno is an error
to it), then maps the memory the first user gave the object (R-SHM-7 step 8).
"""

from __future__ import annotations

import pytest
from support import PS, RW

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

SIZE = 4 * PS
NAME = "/metal-shm"


def metal_shmem_open(p: Process, name: str, size: int) -> tuple[int, int]:
    """The port's sequence, step by step as its C code runs it; returns (fd, address)."""
    fd = p.libc.shm_open(name, C.O_RDWR | C.O_CREAT, 0o600)
    assert fd >= 0, p.libc.errno
    if p.libc.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_PHYS, 0, size) < 0:
        # the only failure the port accepts: someone gave the object its memory already
        assert p.libc.errno == qerrno.EBUSY, p.libc.errno
    addr = p.libc.mmap(0, size, RW, C.MAP_SHARED, fd, 0)
    assert addr != C.MAP_FAILED, p.libc.errno
    return fd, addr


def test_R_SHM_7_libmetal_first_and_second_user_share_contiguous_memory() -> None:
    k = Kernel(ram=64 << 20)
    first = k.spawn(image=False)
    second = k.spawn(image=False)
    _, a = metal_shmem_open(first, NAME, SIZE)
    _, b = metal_shmem_open(second, NAME, SIZE)
    assert second.libc.errno == qerrno.EBUSY  # the repeat failed the way the port expects
    first.write_memory(a, b"rpmsg vring")
    assert second.read_memory(b, 11) == b"rpmsg vring"
    paddr, contig = first.mem_offset64(a, C.NOFD, SIZE)
    assert contig == SIZE  # SHMCTL_PHYS: one physical run, as the remote core needs
    assert second.mem_offset64(b, C.NOFD, SIZE) == (paddr, SIZE)
    k.check_invariants()


def test_R_SHM_7_libmetal_repeat_is_EBUSY_not_EINVAL_and_changes_nothing() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    fd, _ = metal_shmem_open(p, NAME, SIZE)
    before = (p.fstat(fd), k.meminfo())
    with pytest.raises(QnxError) as info:
        p.shm_ctl(fd, C.SHMCTL_ANON | C.SHMCTL_PHYS, 0, SIZE)
    assert info.value.errno == qerrno.EBUSY
    assert (p.fstat(fd), k.meminfo()) == before
