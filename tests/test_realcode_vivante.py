"""Real code: the Vivante galcore GPU driver's QNX port (the QNX kernel layer of the
driver in torvalds/linux drivers/staging/rk29/vivante/hal/os/qnx/kernel).

The driver names its video-memory pool per client without a leading "/", as
"galcore:vidmem:<pid>", opens it with O_CREAT, gives it contiguous memory with
shm_ctl_special() (a non-zero special value: page-table attributes), maps it with mmap64()
into itself and with mmap64_peer() into the client, asks mem_offset64() for the physical
address to program into the GPU, and takes the client's mapping away with munmap_peer().
procnto makes a shm object at such a path (R-SHM-1, R-FS-1).
"""

from __future__ import annotations

from support import PS, RW

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim import errno as qerrno

SIZE = 16 * PS
SPECIAL = 0x3  # a processor-specific attribute value; the simulator only records it


def test_R_SHM_1_R_SHM_11_galcore_vidmem_pool() -> None:
    k = Kernel(ram=64 << 20)
    driver = k.spawn("/proc/boot/galcore", image=False)
    client = k.spawn("/usr/bin/gles-app", uid=1000, image=False)
    name = f"galcore:vidmem:{client.pid}"
    fd = driver.libc.shm_open(name, C.O_RDWR | C.O_CREAT, 0o777)
    assert fd >= 0, driver.libc.errno
    flags = C.SHMCTL_ANON | C.SHMCTL_PHYS
    assert driver.libc.shm_ctl_special(fd, flags, 0, SIZE, SPECIAL) == 0, driver.libc.errno
    assert driver.shm_ctl(fd, C.SHMCTL_GET_FLAGS, 0, 0) == flags | C.SHMCTL_HAS_SPECIAL
    mine = driver.libc.mmap64(0, SIZE, RW | C.PROT_NOCACHE, C.MAP_SHARED, fd, 0)
    assert mine != C.MAP_FAILED, driver.libc.errno
    paddr, contig = driver.mem_offset64(mine, C.NOFD, SIZE)
    assert contig == SIZE and paddr % PS == 0  # the GPU gets one physical range
    theirs = driver.mmap64_peer(client.pid, 0, SIZE, RW, C.MAP_SHARED, fd, 0)
    rec = client.mapping_at(theirs)
    assert rec is not None and (rec.kind, rec.name) == ("shm", "/" + name)
    driver.write_memory(mine + PS, b"vertex data")
    assert client.read_memory(theirs + PS, 11) == b"vertex data"
    assert driver.libc.munmap_peer(client.pid, theirs, SIZE) == 0
    assert client.mapping_at(theirs) is None
    assert driver.libc.shm_unlink(name) == 0
    k.check_invariants()


def test_R_SHM_11_galcore_as_a_non_root_driver_needs_MEM_SPECIAL() -> None:
    k = Kernel(ram=64 << 20)
    driver = k.spawn("/proc/boot/galcore", uid=500, image=False)
    fd = driver.shm_open("galcore:vidmem:9", C.O_RDWR | C.O_CREAT, 0o777)
    got = driver.libc.shm_ctl_special(fd, C.SHMCTL_ANON | C.SHMCTL_PHYS, 0, SIZE, SPECIAL)
    assert (got, driver.libc.errno) == (-1, qerrno.EPERM)  # R-SHM-11
    assert driver.libc.shm_ctl_special(fd, C.SHMCTL_ANON | C.SHMCTL_PHYS, 0, SIZE, 0) == 0
