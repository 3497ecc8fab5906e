"""Memory objects and their mappings against SPEC sections 3, 5, 6, 8, 12, 14 and 15.

Expectations come from SPEC.md: the object kinds and their lifetime and accounting
(R-OBJ-1 .. R-OBJ-6), the fd-backed rules of mmap (R-MMAP-11 .. 13, 15, 20 .. 25, F2, F3),
R-MPROT-5 with a real read-only fd, mem_offset and device memory (R-MOFF-1 .. 3), the
contexts of a peer mapping of an object (R-PEER-4) and fork of object mappings (R-PROC-2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import ANON, PROGRAM_BASE, PS, RW, SHARED_ANON, SHMEM_BASE, expect_error

import qnxsim.abilities
from qnxsim import Kernel, Mapping, MemoryFault, Process
from qnxsim import constants as C
from qnxsim import errno as qerrno

CREATE = C.O_RDWR | C.O_CREAT
DEVICE_START = 0xF000_0000  # R-SYS-5
PHYS_END = 0x1_0000_0000  # R-SYS-5 with RAM well below the device range
OFFSET_LIMIT = 1 << 44  # R-MMAP-15


def kernel(ram: int = 64 << 20) -> Kernel:
    return Kernel(ram=ram)


def expect_fault(signo: int, code: int, fn: Callable[..., Any], *args: Any) -> MemoryFault:
    with pytest.raises(MemoryFault) as info:
        fn(*args)
    assert (info.value.signo, info.value.code) == (signo, code), str(info.value)
    return info.value


def allow(proc: Process, aid: int) -> None:
    """Grant ``aid`` to ``proc`` in the non-root domain."""
    proc.abilities.set(aid, qnxsim.abilities.NONROOT, qnxsim.abilities.DomainEntry(True))


def shm(p: Process, name: str, size: int, data: bytes = b"") -> int:
    """A shm object of ``size`` bytes opened O_RDWR, with ``data`` at offset 0."""
    fd = p.shm_open(name, CREATE, 0o666)
    p.ftruncate(fd, size)
    if data:
        p.pwrite(fd, data, 0)
    return fd


def roundup_pages(n: int) -> int:
    return -(-n // PS) * PS


def only(p: Process) -> Mapping:
    (m,) = p.mappings()
    return m


def fragment(p: Process, pages: int) -> None:
    """Leave every other page of the lowest ``2 * pages`` RAM pages free, one page each."""
    addrs = [p.mmap(0, PS, RW, ANON, C.NOFD, 0) for _ in range(2 * pages)]
    for addr in addrs[::2]:
        p.munmap(addr, PS)


# -- R-OBJ-1: kinds ---------------------------------------------------------------------------


def test_R_OBJ_1_kinds_in_mappings() -> None:
    k = kernel()
    k.create_file("/lib/data.bin", b"d" * PS)
    p = k.spawn(image=False)
    fd = shm(p, "/obj", PS)
    f = p.open("/lib/data.bin", C.O_RDONLY)
    z = p.open("/dev/zero", C.O_RDWR)
    mem = p.open("/dev/mem", C.O_RDWR)
    cases = [
        (p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0), "shm", "/dev/shmem/obj"),
        (p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, f, 0), "file", "/lib/data.bin"),
        (p.mmap(0, PS, RW, C.MAP_PRIVATE, f, 0), "file", "/lib/data.bin"),
        (p.mmap(0, PS, RW, C.MAP_SHARED, z, 0), "zero", "/dev/zero"),
        (p.mmap(0, PS, RW, C.MAP_PRIVATE, z, 0), "zero", "/dev/zero"),
        (p.mmap(0, PS, RW, C.MAP_SHARED, mem, DEVICE_START), "phys", "/dev/mem"),
        (p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, DEVICE_START), "phys", "/dev/mem"),
        (p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0), "shared-anon", None),
        (p.mmap(0, PS, RW, ANON, C.NOFD, 0), "anon", None),
    ]
    for addr, kind, name in cases:
        rec = p.mapping_at(addr)
        assert rec is not None
        assert (rec.kind, rec.name) == (kind, name), rec
    k.check_invariants()


# -- R-OBJ-2: references and lifetime -------------------------------------------------------------


def test_R_OBJ_2_mapping_outlives_fd_and_name() -> None:
    k = kernel()
    p = k.spawn(image=False)
    before = k.meminfo()
    fd = shm(p, "/ref", 2 * PS, b"kept")
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    p.close(fd)
    p.shm_unlink("/ref")
    k.check_invariants()
    assert p.read_memory(a, 4) == b"kept"
    p.write_memory(a + PS, b"more")
    assert p.read_memory(a + PS, 4) == b"more"
    assert k.meminfo().allocated == before.allocated + 2 * PS
    p.munmap(a, 2 * PS)
    assert k.meminfo() == before
    k.check_invariants()


@pytest.mark.parametrize("size", [1, PS + 1, 3 * PS - 1])
def test_R_OBJ_2_unaligned_size_object_frees_every_frame_with_its_last_mapping(size: int) -> None:
    k = kernel()
    p = k.spawn(image=False)
    before = k.meminfo()
    fd = shm(p, "/odd", size)
    a = p.mmap(0, roundup_pages(size), RW, C.MAP_SHARED, fd, 0)
    p.close(fd)
    p.shm_unlink("/odd")
    p.munmap(a, roundup_pages(size))
    assert k.meminfo() == before
    k.check_invariants()


def test_R_OBJ_2_replaced_file_lives_while_mapped() -> None:
    k = kernel()
    k.create_file("/cfg", b"old" + bytes(PS - 3))
    p = k.spawn(image=False)
    fd = p.open("/cfg", C.O_RDONLY)
    a = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    p.close(fd)
    k.create_file("/cfg", b"new")  # the name now names another file
    k.check_invariants()
    assert p.read_memory(a, 3) == b"old"
    assert k.meminfo().allocated == 2 * PS
    p.munmap(a, PS)
    assert k.meminfo().allocated == PS  # only the new file's page is left
    k.check_invariants()


def test_R_OBJ_2_shm_anon_destroyed_with_its_last_reference() -> None:
    k = kernel()
    p = k.spawn(image=False)
    before = k.meminfo()
    fd = p.shm_open(C.SHM_ANON, CREATE, 0o600)
    p.ftruncate(fd, 3 * PS)
    a = p.mmap(0, 3 * PS, RW, C.MAP_SHARED, fd, 0)
    d = p.dup(fd)
    p.close(fd)
    p.munmap(a, 3 * PS)
    assert k.meminfo().allocated == before.allocated + 3 * PS  # the dup'd fd holds it
    p.close(d)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_OBJ_2_mapping_outlives_the_caller_that_made_it() -> None:
    k = kernel()
    maker = k.spawn(image=False)
    holder = k.spawn(image=False)
    fd = shm(maker, "/m", PS, b"made")
    addr = maker.mmap_peer(holder.pid, 0, PS, RW, C.MAP_SHARED, fd, 0)
    maker.shm_unlink("/m")
    maker.exit(0)
    k.check_invariants()
    assert holder.read_memory(addr, 4) == b"made"
    holder.exit(0)
    assert k.meminfo().allocated == 0
    k.check_invariants()


# -- R-OBJ-3 / R-MMAP-20: accounting --------------------------------------------------------------


def test_R_OBJ_3_private_file_mapping_reserves_and_privatises_from_the_reserve() -> None:
    k = kernel()
    k.create_file("/f", b"f" * 3 * PS)
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDONLY)
    base = k.meminfo()
    a = p.mmap(0, 4 * PS, RW, C.MAP_PRIVATE, fd, 0)  # one page past EOF: still reserved
    m1 = k.meminfo()
    assert m1.reserved == base.reserved + 4 * PS
    assert m1.allocated == base.allocated
    assert m1.free == base.free - 4 * PS
    p.write_memory(a + PS, b"mine")
    m2 = k.meminfo()
    assert m2.reserved == m1.reserved - PS  # the private copy used the reservation
    assert m2.allocated == m1.allocated + PS
    assert m2.free == m1.free
    p.write_memory(a + PS + 10, b"again")  # the page is private already
    assert k.meminfo() == m2
    p.munmap(a, 4 * PS)
    assert k.meminfo() == base
    k.check_invariants()


def test_R_OBJ_3_private_shm_mapping_reserves_size_bytes() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/s", 2 * PS)
    base = k.meminfo()
    p.mmap(0, 2 * PS, C.PROT_READ, C.MAP_PRIVATE, fd, 0)
    assert k.meminfo().reserved == base.reserved + 2 * PS
    p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)  # a shared mapping needs nothing new
    assert k.meminfo().reserved == base.reserved + 2 * PS
    assert k.meminfo().allocated == base.allocated
    k.check_invariants()


def test_R_OBJ_3_lazy_private_mapping_reserves_nothing() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/s", 2 * PS)
    base = k.meminfo()
    a = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE | C.MAP_LAZY, fd, 0)
    assert k.meminfo() == base
    p.write_memory(a, b"x")
    assert k.meminfo().allocated == base.allocated + PS
    assert k.meminfo().reserved == base.reserved
    k.check_invariants()


def test_R_OBJ_3_shared_anonymous_and_private_anonymous_allocate_at_once() -> None:
    k = kernel()
    p = k.spawn(image=False)
    base = k.meminfo()
    p.mmap(0, 3 * PS, RW, SHARED_ANON, C.NOFD, 0)
    p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    m = k.meminfo()
    assert (m.allocated, m.reserved) == (base.allocated + 5 * PS, base.reserved)
    k.check_invariants()


def test_R_MMAP_20_reservation_beyond_RAM_is_ENOMEM() -> None:
    k = kernel(ram=16 * PS)
    k.create_file("/f", b"x")
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDONLY)
    base = k.meminfo()
    assert base.free == 15 * PS
    expect_error(qerrno.ENOMEM, "R-MMAP-20", p.mmap, 0, 16 * PS, C.PROT_READ, C.MAP_PRIVATE, fd, 0)
    assert k.meminfo() == base and p.mappings() == ()
    a = p.mmap(0, 15 * PS, RW, C.MAP_PRIVATE, fd, 0)  # exactly what is left
    assert k.meminfo().free == 0
    # reservation + allocation never exceed RAM: nothing more may be allocated or reserved
    expect_error(qerrno.ENOMEM, "R-MMAP-20", p.mmap, 0, PS, RW, ANON, C.NOFD, 0)
    expect_error(qerrno.ENOMEM, "R-MMAP-20", p.mmap, 0, PS, RW, C.MAP_PRIVATE, fd, 0)
    s = p.shm_open("/s", CREATE, 0o600)
    expect_error(qerrno.ENOMEM, "R-SHM-5", p.ftruncate, s, PS)
    p.write_memory(a + 10, b"reserved frames are sure")  # privatises from the reserve
    assert p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 0) > 0  # shared: nothing needed
    p.munmap(a, 15 * PS)
    assert k.meminfo().free == 15 * PS
    k.check_invariants()


# -- R-OBJ-4: MAP_PRIVATE of an object ----------------------------------------------------------


def test_R_OBJ_4_private_sees_object_until_written_then_own_copy() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/o", 2 * PS, b"A" * 2 * PS)
    priv = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, fd, 0)
    shared = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    assert p.read_memory(priv, 2) == b"AA"
    p.pwrite(fd, b"B", 0)  # not yet written privately: the object's current contents
    p.write_memory(shared + PS, b"C")
    assert p.read_memory(priv, 1) == b"B"
    assert p.read_memory(priv + PS, 1) == b"C"
    p.write_memory(priv + 1, b"p")  # privatise page 0
    assert p.read_memory(priv, 2) == b"Bp"
    assert p.pread(fd, 2, 0) == b"BA"  # writes never reach the object
    assert p.read_memory(shared, 2) == b"BA"
    p.pwrite(fd, b"Z", 0)
    p.pwrite(fd, b"Y", PS)
    assert p.read_memory(priv, 1) == b"B"  # page 0 is private now
    assert p.read_memory(priv + PS, 1) == b"Y"  # page 1 still follows the object
    k.check_invariants()


def test_R_OBJ_4_private_of_a_read_only_file_is_writable_and_the_file_unchanged() -> None:
    k = kernel()
    k.create_file("/ro", b"file bytes", mode=0o444, uid=5)
    p = k.spawn(uid=1000, image=False)
    fd = p.open("/ro", C.O_RDONLY)
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE, fd, 0)  # R-MMAP-12: MAP_PRIVATE + PROT_WRITE is fine
    p.write_memory(a, b"FILE")
    assert p.read_memory(a, 10) == b"FILE bytes"
    assert p.pread(fd, 10, 0) == b"file bytes"
    other = k.spawn(image=False)
    assert other.pread(other.open("/ro", C.O_RDONLY), 10, 0) == b"file bytes"
    k.check_invariants()


# -- R-OBJ-5: MAP_SHARED coherence ----------------------------------------------------------------


def test_R_OBJ_5_shared_mapping_coherent_with_read_and_write() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/c", 2 * PS)
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a + PS - 2, b"span")  # across a page boundary
    assert p.pread(fd, 4, PS - 2) == b"span"
    p.pwrite(fd, b"back", 10)
    assert p.read_memory(a + 10, 4) == b"back"
    p.lseek(fd, 100, C.SEEK_SET)
    p.write(fd, b"via write")
    assert p.read_memory(a + 100, 9) == b"via write"
    k.check_invariants()


def test_R_OBJ_5_shared_mapping_coherent_across_processes() -> None:
    k = kernel()
    a = k.spawn(image=False)
    b = k.spawn(uid=1000, image=False)
    a.umask = 0
    fa = shm(a, "/x", PS)
    fb = b.shm_open("/x", C.O_RDWR)
    ma = a.mmap(0, PS, RW, C.MAP_SHARED, fa, 0)
    mb = b.mmap(0, PS, RW, C.MAP_SHARED, fb, 0)
    a.write_memory(ma, b"from a")
    assert b.read_memory(mb, 6) == b"from a"
    b.write_memory(mb + 6, b" and b")
    assert a.read_memory(ma, 12) == b"from a and b"
    assert b.pread(fb, 12, 0) == b"from a and b"
    k.create_file("/file", bytes(PS), mode=0o666)
    f1 = a.open("/file", C.O_RDWR)
    f2 = b.open("/file", C.O_RDWR)
    m1 = a.mmap(0, PS, RW, C.MAP_SHARED, f1, 0)
    m2 = b.mmap(0, PS, RW, C.MAP_SHARED, f2, 0)
    a.write_memory(m1 + 5, b"file")
    assert b.read_memory(m2 + 5, 4) == b"file"
    k.check_invariants()


# -- R-OBJ-6: zero pages and shrinking ------------------------------------------------------------


def test_R_OBJ_6_new_pages_read_zero() -> None:
    k = kernel()
    p = k.spawn(image=False)
    # make frames dirty, then free them, so reuse would show stale bytes
    junk = p.mmap(0, 8 * PS, RW, ANON, C.NOFD, 0)
    p.write_memory(junk, b"\xee" * 8 * PS)
    p.munmap(junk, 8 * PS)
    fd = shm(p, "/z", 2 * PS)
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    assert p.read_memory(a, 2 * PS) == bytes(2 * PS)
    b = p.mmap(0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
    assert p.read_memory(b, 2 * PS) == bytes(2 * PS)
    c = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert p.read_memory(c, 2 * PS) == bytes(2 * PS)
    p.ftruncate(fd, 4 * PS)
    assert p.pread(fd, 2 * PS, 2 * PS) == bytes(2 * PS)


def test_R_OBJ_6_shrink_gives_SIGBUS_BUS_OBJERR_past_the_end_mappings_stay() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/s", 3 * PS, b"\x11" * 3 * PS)
    a = p.mmap(0, 3 * PS, RW, C.MAP_SHARED, fd, 0)
    priv = p.mmap(0, 3 * PS, RW, C.MAP_PRIVATE, fd, 0)
    before = p.mappings()
    p.ftruncate(fd, PS)
    assert p.mappings() == before
    for base in (a, priv):
        fault = expect_fault(C.SIGBUS, C.BUS_OBJERR, p.read_memory, base + PS, 1)
        assert fault.addr == base + PS
        fault = expect_fault(C.SIGBUS, C.BUS_OBJERR, p.write_memory, base + PS - 2, b"abcd")
        assert fault.addr == base + PS  # the first faulting byte
        assert p.read_memory(base + PS - 2, 2) == b"\x11\x11"  # no byte moved
    p.ftruncate(fd, 3 * PS)  # growing again makes the pages accessible, zero-filled
    assert p.read_memory(a + PS, PS) == bytes(PS)
    k.check_invariants()


# -- R-MMAP-11 / R-MMAP-12 / R-MMAP-13 / R-MMAP-15 -----------------------------------------------


def test_R_MMAP_11_MAP_PHYS_with_fd_is_EINVAL() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.open("/dev/mem", C.O_RDWR)
    flags = C.MAP_SHARED | C.MAP_PHYS
    expect_error(qerrno.EINVAL, "R-MMAP-11", p.mmap, 0, PS, RW, flags, fd, DEVICE_START)


def test_R_MMAP_11_MAP_PHYS_needs_MEM_PHYS_and_a_physical_range() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    flags = C.MAP_SHARED | C.MAP_PHYS
    expect_error(qerrno.EPERM, "R-MMAP-11", user.mmap, 0, PS, RW, flags, C.NOFD, DEVICE_START)
    root = k.spawn(image=False)
    expect_error(qerrno.EINVAL, "R-MMAP-11", root.mmap, 0, 2 * PS, RW, flags, C.NOFD, PHYS_END - PS)
    assert root.mmap(0, PS, RW, flags, C.NOFD, PHYS_END - PS) > 0
    k.check_invariants()


def test_R_MMAP_12_closed_or_negative_fd_is_EBADF() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/b", PS)
    p.close(fd)
    for bad in (fd, 42, -2, -100):
        expect_error(qerrno.EBADF, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, C.MAP_SHARED, bad, 0)
    assert p.mappings() == ()


def test_R_MMAP_12_directory_fd_is_ENOTSUP() -> None:
    k = kernel()
    p = k.spawn(image=False)
    d = p.open("/dev/shmem", C.O_RDONLY)
    expect_error(qerrno.ENOTSUP, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, C.MAP_SHARED, d, 0)
    expect_error(qerrno.ENOTSUP, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, C.MAP_PRIVATE, d, 0)


def test_R_MMAP_12_O_WRONLY_fd_is_EACCES() -> None:
    k = kernel()
    p = k.spawn(image=False)
    shm(p, "/w", PS)
    wo = p.shm_open("/w", C.O_WRONLY)
    for flags in (C.MAP_SHARED, C.MAP_PRIVATE):
        for prot in (C.PROT_READ, C.PROT_WRITE, C.PROT_NONE):
            expect_error(qerrno.EACCES, "R-MMAP-12", p.mmap, 0, PS, prot, flags, wo, 0)


def test_R_MMAP_12_shared_write_on_read_only_fd_is_EACCES_private_is_fine() -> None:
    k = kernel()
    p = k.spawn(image=False)
    shm(p, "/r", PS)
    ro = p.shm_open("/r", C.O_RDONLY)
    expect_error(qerrno.EACCES, "R-MMAP-12", p.mmap, 0, PS, RW, C.MAP_SHARED, ro, 0)
    expect_error(qerrno.EACCES, "R-MMAP-12", p.mmap, 0, PS, C.PROT_WRITE, C.MAP_SHARED, ro, 0)
    assert p.mappings() == ()
    assert p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, ro, 0) > 0
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE, ro, 0) > 0
    k.check_invariants()


def test_R_MMAP_12_checks_come_in_order() -> None:
    """EBADF before ENOTSUP before EACCES; R-MMAP-12 comes before R-MMAP-13."""
    k = kernel()
    p = k.spawn(image=False)
    shm(p, "/o", PS)
    wo = p.shm_open("/o", C.O_WRONLY)
    expect_error(qerrno.EBADF, "R-MMAP-12", p.mmap, 0, PS, RW, C.MAP_SHARED, 99, -PS)
    expect_error(qerrno.EACCES, "R-MMAP-12", p.mmap, 0, PS, RW, C.MAP_SHARED, wo, -PS)


def test_R_MMAP_13_negative_offset_for_an_object_is_EINVAL() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/n", PS)
    for off in (-PS, -1):
        expect_error(qerrno.EINVAL, "R-MMAP-13", p.mmap, 0, PS, RW, C.MAP_SHARED, fd, off)
        expect_error(qerrno.EINVAL, "R-MMAP-13", p.mmap64, 0, PS, RW, C.MAP_PRIVATE, fd, off)
    flags = C.MAP_SHARED | C.MAP_PHYS
    expect_error(qerrno.EINVAL, "R-MMAP-13", p.mmap, 0, PS, RW, flags, C.NOFD, -PS)
    assert p.mappings() == ()


def test_R_MMAP_14_unaligned_offset_keeps_the_page_offset() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/u", 2 * PS)
    p.pwrite(fd, b"here", PS + 123)
    addr = p.mmap(0, 10, C.PROT_READ, C.MAP_SHARED, fd, PS + 123)
    assert addr % PS == 123
    assert p.read_memory(addr, 4) == b"here"
    rec = only(p)
    assert (rec.offset, rec.size) == (PS, PS)


def test_R_MMAP_15_object_offset_past_2_44_is_ENXIO() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/far", PS)
    expect_error(
        qerrno.ENXIO,
        "R-MMAP-15",
        p.mmap,
        0,
        2 * PS,
        C.PROT_READ,
        C.MAP_SHARED,
        fd,
        OFFSET_LIMIT - PS,
    )
    expect_error(
        qerrno.ENXIO, "R-MMAP-15", p.mmap, 0, PS, C.PROT_READ, C.MAP_SHARED, fd, OFFSET_LIMIT
    )
    expect_error(
        qerrno.ENXIO,
        "R-MMAP-15",
        p.mmap,
        0,
        PS,
        C.PROT_READ,
        C.MAP_PRIVATE,
        fd,
        OFFSET_LIMIT - PS + 1,
    )
    a = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, OFFSET_LIMIT - PS)  # ends at 2^44: fine
    expect_fault(C.SIGBUS, C.BUS_OBJERR, p.read_memory, a, 1)  # far past the object's end
    k.check_invariants()


# -- R-MMAP-21: /dev/zero ----------------------------------------------------------------------


def test_R_MMAP_21_dev_zero_private_is_private_anonymous() -> None:
    k = kernel()
    p = k.spawn(image=False)
    z = p.open("/dev/zero", C.O_RDWR)
    base = k.meminfo()
    a = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, z, 0)
    assert a == PROGRAM_BASE  # R-PLACE-1: placed as private anonymous memory
    assert k.meminfo().allocated == base.allocated + 2 * PS  # allocated, not reserved
    assert k.meminfo().reserved == base.reserved
    b = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, z, 0)
    p.write_memory(a, b"one")
    assert p.read_memory(b, 3) == bytes(3)  # two private mappings share nothing
    child = k.process(p.fork())
    child.write_memory(a, b"two")
    assert p.read_memory(a, 3) == b"one"  # fork copies it
    k.check_invariants()


def test_R_MMAP_21_dev_zero_private_counts_as_data() -> None:
    """R-MMAP-18: RLIMIT_DATA counts private anonymous memory, /dev/zero's included."""
    k = kernel()
    p = k.spawn(image=False)
    z = p.open("/dev/zero", C.O_RDONLY)
    p.setrlimit(C.RLIMIT_DATA, 2 * PS, 2 * PS)
    p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, z, 0)
    expect_error(qerrno.ENOMEM, "R-MMAP-18", p.mmap, 0, PS, RW, C.MAP_PRIVATE, z, 0)
    assert p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0) > 0  # shared: no data


def test_R_MMAP_21_dev_zero_shared_is_a_new_shared_anonymous_object() -> None:
    k = kernel()
    p = k.spawn(image=False)
    z = p.open("/dev/zero", C.O_RDWR)
    base = k.meminfo()
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, z, 0)
    b = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, z, 0)
    assert a >= SHMEM_BASE
    assert k.meminfo().allocated == base.allocated + 4 * PS
    p.write_memory(a, b"first")
    assert p.read_memory(b, 5) == bytes(5)  # each mmap: its own object
    assert p.read(z, 5) == bytes(5)  # /dev/zero itself still reads zero
    child = k.process(p.fork())
    child.write_memory(a + 5, b" from the child")
    assert p.read_memory(a, 20) == b"first from the child"  # shared with the fork child
    child.exit(0)
    p.munmap(a, 2 * PS)
    p.munmap(b, 2 * PS)
    assert k.meminfo() == base
    k.check_invariants()


def test_R_MMAP_21_dev_zero_EACCES_rules_apply() -> None:
    k = kernel()
    p = k.spawn(image=False)
    wo = p.open("/dev/zero", C.O_WRONLY)
    ro = p.open("/dev/zero", C.O_RDONLY)
    expect_error(qerrno.EACCES, "R-MMAP-12", p.mmap, 0, PS, C.PROT_READ, C.MAP_PRIVATE, wo, 0)
    expect_error(qerrno.EACCES, "R-MMAP-12", p.mmap, 0, PS, RW, C.MAP_SHARED, ro, 0)
    assert p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, ro, 0) > 0
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE, ro, 0) > 0
    k.check_invariants()


# -- R-MMAP-22: /dev/mem ------------------------------------------------------------------------


def test_R_MMAP_22_dev_mem_needs_MEM_PHYS() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    fd = user.open("/dev/mem", C.O_RDWR)
    expect_error(qerrno.EPERM, "R-MMAP-11", user.mmap, 0, PS, RW, C.MAP_SHARED, fd, DEVICE_START)
    assert user.mappings() == ()
    allow(user, C.PROCMGR_AID_MEM_PHYS)
    assert user.mmap(0, PS, RW, C.MAP_SHARED, fd, DEVICE_START) > 0
    k.check_invariants()


def test_R_MMAP_22_dev_mem_range_past_PHYS_END_is_EINVAL() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = p.open("/dev/mem", C.O_RDWR)
    expect_error(qerrno.EINVAL, "R-MMAP-11", p.mmap, 0, 2 * PS, RW, C.MAP_SHARED, fd, PHYS_END - PS)


def test_R_MMAP_22_dev_mem_private_is_EINVAL() -> None:
    """[SIM] /dev/mem maps only MAP_SHARED (SPEC gives no meaning to a private copy)."""
    k = kernel()
    p = k.spawn(image=False)
    fd = p.open("/dev/mem", C.O_RDWR)
    expect_error(qerrno.EINVAL, "R-MMAP-22", p.mmap, 0, PS, RW, C.MAP_PRIVATE, fd, DEVICE_START)


def test_R_MMAP_22_dev_mem_aliases_a_MAP_ANON_MAP_PHYS_buffer() -> None:
    k = kernel()
    p = k.spawn(image=False)
    buf = p.mmap(0, 2 * PS, RW, ANON | C.MAP_PHYS, C.NOFD, 0)
    paddr, length = p.mem_offset64(buf, C.NOFD, 2 * PS)
    assert length == 2 * PS
    mem = p.open("/dev/mem", C.O_RDWR)
    alias = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, mem, paddr)
    assert p.mapping_at(alias).kind == "phys"  # type: ignore[union-attr]
    p.write_memory(buf + 100, b"through the buffer")
    assert p.read_memory(alias + 100, 18) == b"through the buffer"
    p.write_memory(alias + PS, b"through /dev/mem")
    assert p.read_memory(buf + PS, 16) == b"through /dev/mem"
    before = k.meminfo()
    p.mmap(0, PS, RW, C.MAP_SHARED, mem, paddr)  # mapping physical memory allocates nothing
    assert k.meminfo() == before
    k.check_invariants()


def test_R_MMAP_22_dev_mem_device_range_reads_back_what_was_written() -> None:
    k = kernel()
    p = k.spawn(image=False)
    mem = p.open("/dev/mem", C.O_RDWR)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, mem, DEVICE_START)
    b = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, mem, DEVICE_START)
    assert p.read_memory(a, 4) == bytes(4)  # zero at start (R-SYS-5)
    p.write_memory(a, b"regs")
    assert p.read_memory(b, 4) == b"regs"
    assert p.pread(mem, 4, DEVICE_START) == b"regs"


# -- R-MMAP-23 / R-MMAP-24 ------------------------------------------------------------------------


def test_R_MMAP_23_shared_anonymous_object_shared_with_fork_freed_with_last_mapping() -> None:
    k = kernel()
    p = k.spawn(image=False)
    base = k.meminfo()
    a = p.mmap(0, 3 * PS, RW, SHARED_ANON, C.NOFD, 0)
    rec = only(p)
    assert (rec.kind, rec.name, rec.size, rec.offset) == ("shared-anon", None, 3 * PS, 0)
    assert rec.flags & C.MAP_ANON
    assert k.meminfo().allocated == base.allocated + 3 * PS
    child = k.process(p.fork())
    child.write_memory(a + PS, b"child")
    assert p.read_memory(a + PS, 5) == b"child"
    p.munmap(a, 3 * PS)
    assert k.meminfo().allocated == base.allocated + 3 * PS  # the child still maps it
    child.munmap(a, PS)
    assert child.read_memory(a + PS, 5) == b"child"
    child.exit(0)
    assert k.meminfo() == base
    k.check_invariants()


def test_R_MMAP_24_MAP_ANON_MAP_PHYS_is_contiguous() -> None:
    k = kernel(ram=64 * PS)
    p = k.spawn(image=False)
    fragment(p, 8)
    scattered = p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    assert p.mem_offset64(scattered, C.NOFD, 4 * PS)[1] == PS
    for flags in (ANON | C.MAP_PHYS, SHARED_ANON | C.MAP_PHYS):
        a = p.mmap(0, 4 * PS, RW, flags, C.NOFD, 0)
        assert p.mem_offset64(a, C.NOFD, 4 * PS)[1] == 4 * PS
    k.check_invariants()


def test_R_MMAP_24_no_contiguous_run_is_ENOMEM() -> None:
    k = kernel(ram=16 * PS)
    p = k.spawn(image=False)
    fragment(p, 8)
    before = (k.meminfo(), p.mappings())
    expect_error(qerrno.ENOMEM, "R-MMAP-20", p.mmap, 0, 2 * PS, RW, ANON | C.MAP_PHYS, C.NOFD, 0)
    assert (k.meminfo(), p.mappings()) == before
    assert p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0) > 0


# -- R-MMAP-25: beyond the end of the object -------------------------------------------------------


def test_R_MMAP_25_mapping_beyond_EOF_allowed_touch_past_is_SIGBUS() -> None:
    k = kernel()
    k.create_file("/small", b"s" * 100)
    p = k.spawn(image=False)
    fd = p.open("/small", C.O_RDONLY)
    a = p.mmap(0, 4 * PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    assert p.read_memory(a, 100) == b"s" * 100
    assert p.read_memory(a + 100, PS - 100) == bytes(PS - 100)  # rest of the last page
    for page in (1, 2, 3):
        fault = expect_fault(C.SIGBUS, C.BUS_OBJERR, p.read_memory, a + page * PS + 7, 1)
        assert fault.addr == a + page * PS + 7
    expect_fault(C.SIGBUS, C.BUS_OBJERR, p.check_access, a + PS, 1, "r")
    b = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 8 * PS)  # wholly beyond: still allowed
    expect_fault(C.SIGBUS, C.BUS_OBJERR, p.read_memory, b, 1)
    k.check_invariants()


def test_R_MMAP_25_protection_is_checked_first() -> None:
    k = kernel()
    k.create_file("/empty", b"")
    p = k.spawn(image=False)
    fd = p.open("/empty", C.O_RDONLY)
    none = p.mmap(0, PS, C.PROT_NONE, C.MAP_SHARED, fd, 0)
    expect_fault(C.SIGSEGV, C.SEGV_ACCERR, p.read_memory, none, 1)
    ro = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    expect_fault(C.SIGSEGV, C.SEGV_ACCERR, p.write_memory, ro, b"x")
    expect_fault(C.SIGBUS, C.BUS_OBJERR, p.read_memory, ro, 1)


def test_R_MMAP_25_bytes_past_EOF_in_the_last_page_never_reach_the_file() -> None:
    k = kernel()
    k.create_file("/f", b"x" * 100, mode=0o666)
    p = k.spawn(image=False)
    fd = p.open("/f", C.O_RDWR)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a + 200, b"stray")
    assert p.read_memory(a + 200, 5) == b"stray"  # the page holds them for now
    assert p.fstat(fd).st_size == 100
    assert p.pread(fd, PS, 0) == b"x" * 100
    p.ftruncate(fd, 300)
    assert p.pread(fd, 10, 198) == bytes(10)  # growth shows zeros, not the stray bytes
    assert p.read_memory(a + 200, 5) == bytes(5)


def test_R_MMAP_25_write_growth_also_shows_zeros() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/g", 100, b"y" * 100)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    p.write_memory(a + 150, b"stray")
    p.pwrite(fd, b"end", 400)
    assert p.pread(fd, 10, 148) == bytes(10)
    assert p.pread(fd, 3, 400) == b"end"
    assert p.fstat(fd).st_size == 403
    k.check_invariants()


# -- R-MPROT-5 with a read-only fd ----------------------------------------------------------------


def test_R_MPROT_5_read_only_fd_refuses_PROT_WRITE_pieces_below_keep_it() -> None:
    k = kernel()
    p = k.spawn(image=False)
    shm(p, "/r", PS)
    ro = p.shm_open("/r", C.O_RDONLY)
    low = p.mmap(0, 2 * PS, C.PROT_READ, ANON, C.NOFD, 0)
    p.mmap(low + 2 * PS, PS, C.PROT_READ, C.MAP_SHARED | C.MAP_FIXED, ro, 0)
    p.mmap(low + 3 * PS, PS, C.PROT_READ, ANON | C.MAP_FIXED, C.NOFD, 0)
    expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, low, 4 * PS, RW)
    prots = [(m.start - low, m.prot) for m in p.mappings()]
    assert prots == [(0, RW), (2 * PS, C.PROT_READ), (3 * PS, C.PROT_READ)]
    p.write_memory(low, b"ok")  # the piece below really is writable now
    expect_fault(C.SIGSEGV, C.SEGV_ACCERR, p.write_memory, low + 2 * PS, b"no")
    assert p.mprotect(low + 2 * PS, PS, C.PROT_READ) == 0  # without PROT_WRITE: fine
    k.check_invariants()


def test_R_MPROT_5_private_or_writable_fd_may_add_PROT_WRITE() -> None:
    k = kernel()
    p = k.spawn(image=False)
    rw = shm(p, "/w", PS)
    ro = p.shm_open("/w", C.O_RDONLY)
    priv = p.mmap(0, PS, C.PROT_READ, C.MAP_PRIVATE, ro, 0)
    shared = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, rw, 0)
    assert p.mprotect(priv, PS, RW) == 0
    assert p.mprotect(shared, PS, RW) == 0
    p.close(rw)  # the mapping remembers how the object was opened, not the fd
    assert p.mprotect(shared, PS, C.PROT_READ) == 0
    assert p.mprotect(shared, PS, RW) == 0
    k.check_invariants()


# -- R-MMAP-F2 / R-MMAP-F3 with objects ----------------------------------------------------------


def test_R_MMAP_F3_fixed_over_an_object_mapping_replaces_it() -> None:
    k = kernel()
    p = k.spawn(image=False)
    base = k.meminfo()
    fd = p.shm_open(C.SHM_ANON, CREATE, 0o600)
    p.ftruncate(fd, 4 * PS)
    a = p.mmap(0, 4 * PS, RW, C.MAP_SHARED, fd, 0)
    p.close(fd)
    p.write_memory(a, b"object")
    fresh = p.mmap(a + PS, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert fresh == a + PS
    kinds = [(m.start - a, m.size, m.kind, m.offset) for m in p.mappings()]
    assert kinds == [(0, PS, "shm", 0), (PS, PS, "anon", a + PS), (2 * PS, 2 * PS, "shm", 2 * PS)]
    assert p.read_memory(a, 6) == b"object"
    assert p.read_memory(a + PS, 6) == bytes(6)
    k.check_invariants()
    p.mmap(a, 4 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)  # covers the rest: the object goes
    assert k.meminfo().allocated == base.allocated + 4 * PS
    k.check_invariants()


def test_R_MMAP_F3_fixed_object_mapping_over_another() -> None:
    k = kernel()
    p = k.spawn(image=False)
    f1 = shm(p, "/one", 2 * PS, b"1" * 2 * PS)
    f2 = shm(p, "/two", 2 * PS, b"2" * 2 * PS)
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, f1, 0)
    assert p.mmap(a, PS, RW, C.MAP_SHARED | C.MAP_FIXED, f2, PS) == a
    assert [(m.name, m.offset) for m in p.mappings()] == [
        ("/dev/shmem/two", PS),
        ("/dev/shmem/one", PS),
    ]
    p.write_memory(a, b"X")
    assert p.pread(f2, 1, PS) == b"X"
    assert p.pread(f1, 1, 0) == b"1"
    k.check_invariants()


def test_R_MMAP_F3_failed_fixed_mapping_leaves_the_old_one() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/keep", 2 * PS, b"keep")
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    ro = p.shm_open("/keep", C.O_RDONLY)
    before = (p.mappings(), k.meminfo())
    expect_error(qerrno.EACCES, "R-MMAP-12", p.mmap, a, PS, RW, C.MAP_SHARED | C.MAP_FIXED, ro, 0)
    expect_error(
        qerrno.ENXIO, "R-MMAP-15", p.mmap, a, PS, RW, C.MAP_SHARED | C.MAP_FIXED, fd, OFFSET_LIMIT
    )
    assert (p.mappings(), k.meminfo()) == before
    assert p.read_memory(a, 4) == b"keep"


@pytest.mark.parametrize("kind", ["shm", "file", "shared-anon", "zero-shared", "phys"])
def test_R_MMAP_F2_non_congruent_object_offset_is_EINVAL(kind: str) -> None:
    k = kernel()
    k.create_file("/file", bytes(2 * PS))
    p = k.spawn(image=False)
    target = p.mmap(0, 4 * PS, C.PROT_READ, ANON, C.NOFD, 0)
    fixed = C.MAP_FIXED
    args = {
        "shm": (C.MAP_SHARED, shm(p, "/s", 2 * PS), 0),
        "file": (C.MAP_PRIVATE, p.open("/file", C.O_RDONLY), 0),
        "shared-anon": (SHARED_ANON, C.NOFD, 0),
        "zero-shared": (C.MAP_SHARED, p.open("/dev/zero", C.O_RDWR), 0),
        "phys": (C.MAP_SHARED | C.MAP_PHYS, C.NOFD, DEVICE_START),
    }[kind]
    flags, fd, off = args
    before = p.mappings()
    expect_error(
        qerrno.EINVAL, "R-MMAP-F2", p.mmap, target + 1, PS, C.PROT_READ, flags | fixed, fd, off
    )
    expect_error(
        qerrno.EINVAL, "R-MMAP-F2", p.mmap, target, PS, C.PROT_READ, flags | fixed, fd, off + 5
    )
    assert p.mappings() == before
    # congruent sub-page parts are fine: the result is exactly addr (R-MMAP-F4)
    assert p.mmap(target + 5, PS, C.PROT_READ, flags | fixed, fd, off + 5) == target + 5
    k.check_invariants()


def test_R_MMAP_F2_private_anonymous_and_dev_zero_private_may_differ() -> None:
    k = kernel()
    p = k.spawn(image=False)
    target = p.mmap(0, 4 * PS, C.PROT_READ, ANON, C.NOFD, 0)
    z = p.open("/dev/zero", C.O_RDONLY)
    assert p.mmap(target + 1, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0) == target + 1
    assert p.mmap(target + 2 * PS + 9, PS, RW, C.MAP_PRIVATE | C.MAP_FIXED, z, 3) == (
        target + 2 * PS + 9
    )
    k.check_invariants()


# -- R-MOFF-1 / R-MOFF-2 / R-MOFF-3 ------------------------------------------------------------


def test_R_MOFF_1_fd_other_than_NOFD_is_ENODEV() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/m", PS)
    a = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    expect_error(qerrno.ENODEV, "R-MOFF-1", p.mem_offset64, a, fd, PS)
    expect_error(qerrno.ENODEV, "R-MOFF-1", p.mem_offset64, a, 77, PS)
    expect_error(qerrno.ENODEV, "R-MOFF-1", p.mem_offset, a, fd, PS)


def test_R_MOFF_1_unmapped_address_is_EACCES() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    expect_error(qerrno.EACCES, "R-MOFF-1", p.mem_offset64, a + PS, C.NOFD, 1)
    expect_error(qerrno.EACCES, "R-MOFF-1", p.mem_offset64, 0, C.NOFD, 1)
    p.munmap(a, PS)
    expect_error(qerrno.EACCES, "R-MOFF-1", p.mem_offset64, a, C.NOFD, 1)


def test_R_MOFF_1_keeps_the_page_offset_and_clips_the_length() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/m", 4 * PS)
    a = p.mmap(0, 4 * PS, RW, C.MAP_SHARED, fd, 0)
    paddr, length = p.mem_offset64(a + PS + 0x123, C.NOFD, 10)
    assert paddr % PS == 0x123
    assert length == 10
    paddr0, _ = p.mem_offset64(a + PS, C.NOFD, 1)
    assert paddr == paddr0 + 0x123
    # the contiguous length from an unaligned address: to the end of the run
    _, run = p.mem_offset64(a + 0x10, C.NOFD, 1 << 30)
    assert run == 4 * PS - 0x10  # a fresh 4-page object in empty RAM is one run


def test_R_MOFF_1_contiguous_length_stops_at_a_physical_break() -> None:
    k = kernel(ram=64 * PS)
    p = k.spawn(image=False)
    fragment(p, 4)
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    paddr, length = p.mem_offset64(a + 8, C.NOFD, 3 * PS)
    assert length == PS - 8
    second, _ = p.mem_offset64(a + PS, C.NOFD, 1)
    assert second != paddr - 8 + PS


def test_R_MOFF_1_allocates_a_lazy_page_first() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = p.mmap(0, 4 * PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    base = k.meminfo()
    paddr, length = p.mem_offset64(a + 2 * PS + 5, C.NOFD, 1)
    assert length == 1
    assert k.meminfo().allocated == base.allocated + PS
    p.write_memory(a + 2 * PS + 5, b"L")
    assert k.meminfo().allocated == base.allocated + PS  # the page was already there
    alias = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, paddr - paddr % PS)
    assert p.read_memory(alias + 5, 1) == b"L"
    k.check_invariants()


def test_R_MOFF_1_privatises_a_private_object_page_first() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/p", PS, b"shared")
    shared = p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0)
    priv = p.mmap(0, PS, C.PROT_READ, C.MAP_PRIVATE, fd, 0)
    base = k.meminfo()
    obj_paddr, _ = p.mem_offset64(shared, C.NOFD, 1)
    assert k.meminfo() == base
    own, _ = p.mem_offset64(priv, C.NOFD, 1)
    assert own != obj_paddr
    m = k.meminfo()
    assert (m.allocated, m.reserved) == (base.allocated + PS, base.reserved - PS)
    p.write_memory(shared, b"SHARED")
    assert p.read_memory(priv, 6) == b"shared"  # from now on the page is private
    k.check_invariants()


def test_R_MOFF_2_mem_offset_equals_mem_offset64_on_x86_64() -> None:
    k = kernel()
    p = k.spawn(image=False)
    fd = shm(p, "/m", 3 * PS)
    a = p.mmap(0, 3 * PS, RW, C.MAP_SHARED, fd, 0)
    b = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    for addr, length in ((a, 1), (a + 77, 3 * PS), (b + PS - 1, 2), (b, 1 << 40)):
        assert p.mem_offset(addr, C.NOFD, length) == p.mem_offset64(addr, C.NOFD, length)
    expect_error(qerrno.EACCES, "R-MOFF-1", p.mem_offset, a + 10 * PS, C.NOFD, 1)
    expect_error(qerrno.ENODEV, "R-MOFF-1", p.mem_offset, a, 0, 1)


def test_R_MOFF_3_mmap_device_memory_is_mmap64_MAP_PHYS_MAP_SHARED() -> None:
    results = []
    for use_device_call in (True, False):
        k = kernel()
        p = k.spawn(image=False)
        calls = [
            (0, PS, RW, 0, DEVICE_START),
            (0, 2 * PS, C.PROT_READ | C.PROT_NOCACHE, C.MAP_PRIVATE, DEVICE_START + PS),
            (0x4000_0010, PS, RW, C.MAP_FIXED, DEVICE_START + 0x10),
        ]
        addrs = []
        for addr, length, prot, flags, phys in calls:
            if use_device_call:
                addrs.append(p.mmap_device_memory(addr, length, prot, flags, phys))
            else:
                fl = (flags & ~C.MAP_TYPE) | C.MAP_PHYS | C.MAP_SHARED
                addrs.append(p.mmap64(addr, length, prot, fl, C.NOFD, phys))
        results.append((addrs, p.mappings(), k.meminfo()))
        k.check_invariants()
    assert results[0] == results[1]
    recs = results[0][1]
    assert all(r.kind == "phys" and r.flags & C.MAP_PHYS and r.flags & C.MAP_SHARED for r in recs)
    assert not any(r.flags & C.MAP_PRIVATE for r in recs)


def test_R_MOFF_3_mmap_device_memory_errors_are_mmap64s() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    expect_error(qerrno.EPERM, "R-MMAP-11", user.mmap_device_memory, 0, PS, RW, 0, DEVICE_START)
    root = k.spawn(image=False)
    expect_error(qerrno.EINVAL, "R-MMAP-2", root.mmap_device_memory, 0, 0, RW, 0, DEVICE_START)
    expect_error(
        qerrno.EINVAL, "R-MMAP-11", root.mmap_device_memory, 0, 2 * PS, RW, 0, PHYS_END - PS
    )
    expect_error(qerrno.EINVAL, "R-MMAP-13", root.mmap_device_memory, 0, PS, RW, 0, -PS)
    assert root.libc.mmap_device_memory(0, 0, RW, 0, DEVICE_START) == C.MAP_FAILED
    assert root.libc.errno == qerrno.EINVAL


def test_R_MOFF_3_munmap_device_memory_is_munmap() -> None:
    k = kernel()
    p = k.spawn(image=False)
    a = p.mmap_device_memory(0, 3 * PS, RW, 0, DEVICE_START)
    assert p.munmap_device_memory(a + PS, PS) == 0
    assert [(m.start - a, m.size) for m in p.mappings()] == [(0, PS), (2 * PS, PS)]
    assert p.munmap_device_memory(a, 3 * PS) == 0
    assert p.mappings() == ()
    assert p.munmap_device_memory(a, PS) == 0  # nothing mapped: still fine (R-UNMAP-5)
    expect_error(qerrno.EINVAL, "R-UNMAP-2", p.munmap_device_memory, a, 0)
    k.check_invariants()


# -- R-PEER-4 with objects ----------------------------------------------------------------------


def test_R_PEER_4_fd_comes_from_the_callers_table() -> None:
    k = kernel()
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    fd = shm(server, "/srv", PS, b"server's object")
    assert fd not in client.fdt.fds  # the target need not have it open
    addr = server.mmap_peer(client.pid, 0, PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    assert client.read_memory(addr, 15) == b"server's object"
    # a fd number the target has but the caller has not: EBADF
    for _ in range(3):
        client.open("/dev/zero", C.O_RDONLY)
    other = shm(client, "/cli", PS)
    assert other not in server.fdt.fds
    expect_error(
        qerrno.EBADF,
        "R-MMAP-12",
        server.mmap_peer,
        client.pid,
        0,
        PS,
        C.PROT_READ,
        C.MAP_SHARED,
        other,
        0,
    )
    k.check_invariants()


def test_R_PEER_4_callers_open_mode_decides_EACCES() -> None:
    k = kernel()
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    shm(client, "/obj", PS)  # the target holds it O_RDWR at fd 0
    ro = server.shm_open("/obj", C.O_RDONLY)  # the caller holds it O_RDONLY at fd 0
    assert ro == 0
    expect_error(
        qerrno.EACCES, "R-MMAP-12", server.mmap_peer, client.pid, 0, PS, RW, C.MAP_SHARED, ro, 0
    )
    assert client.mappings() == ()
    assert server.mmap_peer(client.pid, 0, PS, RW, C.MAP_PRIVATE, ro, 0) > 0
    # and the other way round: the caller's O_RDWR fd suffices for a target without it
    rw = client.shm_open("/obj", C.O_RDWR)
    other = k.spawn(image=False)
    other.shm_open("/obj", C.O_RDONLY)
    addr = client.mmap_peer(other.pid, 0, PS, RW, C.MAP_SHARED, rw, 0)
    other.write_memory(addr, b"w")
    k.check_invariants()


def test_R_PEER_4_callers_MEM_PHYS_decides() -> None:
    k = kernel()
    user = k.spawn(uid=1000, image=False)
    root_target = k.spawn(image=False)
    allow(user, C.PROCMGR_AID_MEM_PEER)
    mem = user.open("/dev/mem", C.O_RDWR)
    expect_error(
        qerrno.EPERM,
        "R-MMAP-11",
        user.mmap_peer,
        root_target.pid,
        0,
        PS,
        RW,
        C.MAP_SHARED,
        mem,
        DEVICE_START,
    )
    expect_error(
        qerrno.EPERM,
        "R-MMAP-11",
        user.mmap_peer,
        root_target.pid,
        0,
        PS,
        RW,
        C.MAP_SHARED | C.MAP_PHYS,
        C.NOFD,
        DEVICE_START,
    )
    assert root_target.mappings() == ()
    root = k.spawn(image=False)
    user_target = k.spawn(uid=1000, image=False)
    rmem = root.open("/dev/mem", C.O_RDWR)
    a = root.mmap_peer(user_target.pid, 0, PS, RW, C.MAP_SHARED, rmem, DEVICE_START)
    user_target.write_memory(a, b"dev")  # the target itself could not have mapped it
    expect_error(
        qerrno.EPERM,
        "R-MMAP-11",
        user_target.mmap,
        0,
        PS,
        RW,
        C.MAP_SHARED | C.MAP_PHYS,
        C.NOFD,
        DEVICE_START,
    )
    k.check_invariants()


def test_R_PEER_4_target_mapping_survives_close_unlink_and_caller_exit() -> None:
    k = kernel()
    base = k.meminfo()
    server = k.spawn(image=False)
    client = k.spawn(uid=1000, image=False)
    fd = shm(server, "/gone", 2 * PS, b"persist")
    addr = server.mmap_peer(client.pid, 0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    server.close(fd)
    server.shm_unlink("/gone")
    server.exit(0)
    k.check_invariants()
    assert client.read_memory(addr, 7) == b"persist"
    client.write_memory(addr + PS, b"still mine")
    assert client.read_memory(addr + PS, 10) == b"still mine"
    client.munmap(addr, 2 * PS)
    assert k.meminfo() == base
    k.check_invariants()


def test_R_PEER_4_accounting_is_the_targets() -> None:
    k = kernel()
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    fd = shm(server, "/acct", 4 * PS)
    client.setrlimit(C.RLIMIT_AS, 2 * PS, 2 * PS)
    expect_error(
        qerrno.ENOMEM,
        "R-MMAP-18",
        server.mmap_peer,
        client.pid,
        0,
        4 * PS,
        C.PROT_READ,
        C.MAP_SHARED,
        fd,
        0,
    )
    base = k.meminfo()
    server.mmap_peer(client.pid, 0, 2 * PS, C.PROT_READ, C.MAP_PRIVATE, fd, 0)
    assert k.meminfo().reserved == base.reserved + 2 * PS
    assert server.mappings() == ()
    k.check_invariants()


# -- R-PROC-2 with objects ----------------------------------------------------------------------


def test_R_PROC_2_shared_object_mapping_stays_shared_across_fork() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    fd = shm(parent, "/f", 2 * PS)
    a = parent.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    base = k.meminfo()
    child = k.process(parent.fork())
    assert k.meminfo() == base  # nothing to copy
    assert child.mappings() == parent.mappings()
    child.write_memory(a, b"child wrote")
    assert parent.read_memory(a, 11) == b"child wrote"
    assert parent.pread(fd, 11, 0) == b"child wrote"
    parent.pwrite(fd, b"parent", PS)
    assert child.read_memory(a + PS, 6) == b"parent"
    assert child.pread(fd, 6, PS) == b"parent"  # the fd table was duplicated
    k.check_invariants()


def test_R_PROC_2_private_object_mapping_copies_privatised_pages() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    fd = shm(parent, "/p", 3 * PS, b"O" * 3 * PS)
    a = parent.mmap(0, 3 * PS, RW, C.MAP_PRIVATE, fd, 0)
    parent.write_memory(a, b"parent's copy")
    base = k.meminfo()
    child = k.process(parent.fork())
    m = k.meminfo()
    assert m.allocated == base.allocated + PS  # the privatised page is copied
    assert m.reserved == base.reserved + 2 * PS  # the others are reserved again
    assert child.read_memory(a, 13) == b"parent's copy"
    parent.write_memory(a, b"PARENT")
    assert child.read_memory(a, 6) == b"parent"  # the copies are separate
    parent.pwrite(fd, b"new", PS)
    assert child.read_memory(a + PS, 3) == b"new"  # unprivatised pages follow the object
    assert parent.read_memory(a + PS, 3) == b"new"
    child.write_memory(a + 2 * PS, b"child's")
    assert parent.read_memory(a + 2 * PS, 7) == b"OOOOOOO"
    assert parent.pread(fd, 7, 2 * PS) == b"OOOOOOO"
    k.check_invariants()
    child.exit(0)
    parent.waitpid(child.pid)
    assert k.meminfo() == base
    k.check_invariants()


def test_R_PROC_2_fork_reserves_per_mapping_when_private_copies_are_adjacent() -> None:
    """Private copies of two neighbouring mappings in consecutive frames (R-OBJ-3)."""
    k = kernel()
    parent = k.spawn(image=False)
    a = parent.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, shm(parent, "/x", 2 * PS), 0)
    b = parent.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, shm(parent, "/y", 2 * PS), 0)
    assert b == a + 2 * PS  # two records: different objects
    parent.write_memory(a + PS, b"last page of a")
    parent.write_memory(b, b"first page of b")
    k.check_invariants()
    base = k.meminfo()
    assert base.reserved == 2 * PS  # one untouched page in each mapping
    child = k.process(parent.fork())
    m = k.meminfo()
    assert (m.allocated, m.reserved) == (base.allocated + 2 * PS, base.reserved + 2 * PS)
    k.check_invariants()
    assert child.read_memory(a + PS, 14) == b"last page of a"
    child.exit(0)
    parent.waitpid(child.pid)
    assert k.meminfo() == base
    k.check_invariants()


def test_R_PROC_2_fork_without_RAM_for_the_copies_is_ENOMEM() -> None:
    k = kernel(ram=8 * PS)
    parent = k.spawn(image=False)
    fd = shm(parent, "/p", 2 * PS)
    parent.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, fd, 0)  # reserves 2 pages
    parent.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    before = (k.meminfo(), len(k.processes()))
    assert k.meminfo().free == PS
    expect_error(qerrno.ENOMEM, "R-PROC-2", parent.fork)
    assert (k.meminfo(), len(k.processes())) == before
    k.check_invariants()


def test_R_PROC_2_fork_shares_fd_offsets_and_duplicates_the_table() -> None:
    k = kernel()
    parent = k.spawn(image=False)
    fd = shm(parent, "/o", PS, b"0123456789")
    child = k.process(parent.fork())
    assert child.read(fd, 4) == b"0123"
    assert parent.read(fd, 4) == b"4567"
    child.close(fd)
    assert parent.fstat(fd).st_size == PS
    expect_error(qerrno.EBADF, "R-FS-2", child.fstat, fd)
    k.check_invariants()


def test_R_MMAP_20_R_CALL_5_fixed_replacement_counts_only_frames_it_really_frees() -> None:
    """An unlinked shm object kept alive by an open fd keeps its frames when MAP_FIXED
    replaces its only mapping, so they are not RAM the new mapping may count on."""
    k = kernel(ram=1 << 20)
    p = k.spawn(image=False)
    fd = p.shm_open("/kept", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, 2 * PS)
    p.shm_unlink("/kept")
    a = p.mmap(0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
    p.mmap(0, k.meminfo().free, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    before = (p.mappings(), k.meminfo())
    flags = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_FIXED
    expect_error(qerrno.ENOMEM, "R-MMAP-20", p.mmap, a, 2 * PS, RW, flags, C.NOFD, 0)
    assert (p.mappings(), k.meminfo()) == before
    k.check_invariants()
