"""Memory access and faults (SPEC 14), no overcommit (R-SYS-6), accounting (R-OBJ-3, R-OBJ-6).

Tests touch memory through ``read_memory``, ``write_memory`` and ``check_access`` and read
RAM use through ``Kernel.meminfo()``.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ANON, PS, RW, SHARED_ANON

from qnxsim import Kernel, MemInfo, MemoryFault, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

RAM = 64 << 20


def setup(image: bool = False) -> tuple[Kernel, Process]:
    k = Kernel(ram=RAM)
    return k, k.spawn(image=image)


def fault(fn: object, *args: object) -> MemoryFault:
    assert callable(fn)
    with pytest.raises(MemoryFault) as info:
        fn(*args)
    return info.value


def balanced(m: MemInfo) -> bool:
    return m.free + m.allocated + m.reserved == m.total


def three_pages(p: Process, middle_prot: int | None) -> int:
    """Pages a (RW), a+1 (``middle_prot``, or unmapped when None), a+2 (RW)."""
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    if middle_prot is None:
        p.munmap(a + PS, PS)
    else:
        p.mprotect(a + PS, PS, middle_prot)
    return a


# -- R-FAULT-1, R-FAULT-2: SIGSEGV and its details --------------------------------------------


@pytest.mark.parametrize("kind", ["r", "w", "x"])
def test_R_FAULT_1_unmapped_is_segv_maperr(kind: str) -> None:
    _k, p = setup()
    addr = 0x0800_0000 + 123
    if kind == "r":
        f = fault(p.read_memory, addr, 4)
    elif kind == "w":
        f = fault(p.write_memory, addr, b"abcd")
    else:
        f = fault(p.check_access, addr, 4, "x")
    assert (f.signo, f.code) == (C.SIGSEGV, C.SEGV_MAPERR)
    assert f.addr == addr and f.pid == p.pid and f.access == kind
    assert isinstance(f, Exception) and not isinstance(f, QnxError)


def test_R_FAULT_1_page_zero_is_segv_maperr() -> None:
    _k, p = setup()
    f = fault(p.read_memory, 0, 1)
    assert (f.signo, f.code, f.addr) == (C.SIGSEGV, C.SEGV_MAPERR, 0)


def test_R_FAULT_1_prot_none_is_segv_accerr() -> None:
    _k, p = setup()
    a = p.mmap(0, PS, C.PROT_NONE, ANON, C.NOFD, 0)
    for kind in ("r", "w", "x"):
        f = fault(p.check_access, a + 8, 1, kind)
        assert (f.signo, f.code, f.addr, f.access) == (C.SIGSEGV, C.SEGV_ACCERR, a + 8, kind)
    f = fault(p.read_memory, a, 1)
    assert f.code == C.SEGV_ACCERR


def test_R_FAULT_1_first_faulting_page_decides_accerr() -> None:
    """Good page, PROT_NONE page, unmapped page: the PROT_NONE page is met first."""
    _k, p = setup()
    a = three_pages(p, C.PROT_NONE)
    p.munmap(a + 2 * PS, PS)
    f = fault(p.read_memory, a, 3 * PS)
    assert (f.signo, f.code, f.addr) == (C.SIGSEGV, C.SEGV_ACCERR, a + PS)


def test_R_FAULT_1_first_faulting_page_decides_maperr() -> None:
    """Good page, unmapped page, PROT_NONE page: the hole is met first."""
    _k, p = setup()
    a = three_pages(p, None)
    p.mprotect(a + 2 * PS, PS, C.PROT_NONE)
    f = fault(p.write_memory, a + 10, b"x" * (3 * PS - 20))
    assert (f.signo, f.code, f.addr) == (C.SIGSEGV, C.SEGV_MAPERR, a + PS)


def test_R_FAULT_2_fault_address_is_first_faulting_byte() -> None:
    _k, p = setup()
    a = three_pages(p, C.PROT_READ)
    f = fault(p.write_memory, a + PS + 100, b"zz")  # starts inside the bad page
    assert f.addr == a + PS + 100
    f = fault(p.write_memory, a + PS - 3, b"0123456789")  # starts in a good page
    assert f.addr == a + PS
    assert f.code == C.SEGV_ACCERR


def test_R_FAULT_2_no_bytes_transferred_on_fault() -> None:
    k, p = setup()
    a = three_pages(p, C.PROT_READ)
    p.write_memory(a, b"\x11" * PS)
    before = k.meminfo()
    fault(p.write_memory, a, b"\xee" * (2 * PS))
    assert p.read_memory(a, PS) == b"\x11" * PS  # the good first page kept its bytes
    assert p.read_memory(a + PS, PS) == bytes(PS)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_FAULT_2_faulting_access_allocates_no_lazy_page() -> None:
    k, p = setup()
    a = p.mmap(0, 2 * PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    p.mprotect(a + PS, PS, C.PROT_NONE)
    before = k.meminfo()
    fault(p.write_memory, a, b"x" * (2 * PS))
    fault(p.read_memory, a, 2 * PS)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_FAULT_2_process_keeps_running_after_fault() -> None:
    _k, p = setup()
    fault(p.read_memory, 0x1000_0000, 1)
    assert p.alive
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    p.write_memory(a, b"ok")
    assert p.read_memory(a, 2) == b"ok"


def test_R_FAULT_1_fault_in_last_page_of_long_access() -> None:
    _k, p = setup()
    a = p.mmap(0, 8 * PS, RW, ANON, C.NOFD, 0)
    f = fault(p.read_memory, a, 8 * PS + 1)
    assert (f.code, f.addr) == (C.SEGV_MAPERR, a + 8 * PS)


# -- R-FAULT-1: the object rules -------------------------------------------------------------


def test_R_FAULT_1_page_past_end_of_object_is_sigbus_objerr() -> None:
    _k, p = setup()
    fd = p.shm_open("/small", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, PS)
    a = p.mmap(0, 3 * PS, RW, C.MAP_SHARED, fd, 0)  # R-MMAP-25: beyond the end is allowed
    p.write_memory(a, b"in")
    f = fault(p.read_memory, a + PS - 1, 2)
    assert (f.signo, f.code, f.addr) == (C.SIGBUS, C.BUS_OBJERR, a + PS)
    f = fault(p.write_memory, a + 2 * PS + 5, b"x")
    assert (f.signo, f.code, f.addr) == (C.SIGBUS, C.BUS_OBJERR, a + 2 * PS + 5)
    assert p.read_memory(a, 2) == b"in"


def test_R_FAULT_1_protection_is_checked_before_end_of_object() -> None:
    """A PROT_NONE mapping of an empty object gives SIGSEGV, not SIGBUS."""
    _k, p = setup()
    fd = p.shm_open("/empty", C.O_RDWR | C.O_CREAT, 0o600)
    a = p.mmap(0, PS, C.PROT_NONE, C.MAP_SHARED, fd, 0)
    f = fault(p.read_memory, a, 1)
    assert (f.signo, f.code) == (C.SIGSEGV, C.SEGV_ACCERR)
    b = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    f = fault(p.read_memory, b, 1)
    assert (f.signo, f.code) == (C.SIGBUS, C.BUS_OBJERR)
    f = fault(p.write_memory, b, b"x")  # read-only: protection first again
    assert (f.signo, f.code) == (C.SIGSEGV, C.SEGV_ACCERR)


def test_R_FAULT_1_lazy_touch_without_free_frame_is_sigbus_adrerr() -> None:
    k, p = setup()
    lazy = p.mmap(0, 4 * PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    p.write_memory(lazy, b"first")  # one page allocated while RAM is free
    p.mmap(0, k.meminfo().free, RW, ANON, C.NOFD, 0)  # take the rest of RAM
    assert k.meminfo().free == 0
    before = k.meminfo()
    f = fault(p.read_memory, lazy + PS + 1, 1)
    assert (f.signo, f.code, f.addr) == (C.SIGBUS, C.BUS_ADRERR, lazy + PS + 1)
    f = fault(p.write_memory, lazy, b"x" * (2 * PS))  # good first page, then no frame
    assert (f.signo, f.code, f.addr) == (C.SIGBUS, C.BUS_ADRERR, lazy + PS)
    assert p.read_memory(lazy, 5) == b"first"  # the touched page still works
    assert k.meminfo() == before
    k.check_invariants()


def test_R_FAULT_1_lazy_shared_anon_touch_without_frame_is_sigbus_adrerr() -> None:
    k, p = setup()
    lazy = p.mmap(0, 2 * PS, RW, SHARED_ANON | C.MAP_LAZY, C.NOFD, 0)
    p.mmap(0, k.meminfo().free, RW, ANON, C.NOFD, 0)
    f = fault(p.write_memory, lazy, b"x")
    assert (f.signo, f.code) == (C.SIGBUS, C.BUS_ADRERR)
    k.check_invariants()


# -- R-FAULT-3: what each protection allows -------------------------------------------------


@pytest.mark.parametrize(
    ("prot", "allowed"),
    [
        (C.PROT_NONE, ""),
        (C.PROT_READ, "r"),
        (C.PROT_WRITE, "rw"),
        (C.PROT_EXEC, "rx"),
        (RW, "rw"),
        (C.PROT_READ | C.PROT_EXEC, "rx"),
        (C.PROT_WRITE | C.PROT_EXEC, "rwx"),
        (RW | C.PROT_EXEC, "rwx"),
    ],
)
def test_R_FAULT_3_readable_writable_executable(prot: int, allowed: str) -> None:
    _k, p = setup()
    a = p.mmap(0, PS, prot, ANON, C.NOFD, 0)
    for kind in "rwx":
        if kind in allowed:
            p.check_access(a, PS, kind)
        else:
            f = fault(p.check_access, a, PS, kind)
            assert (f.signo, f.code, f.access) == (C.SIGSEGV, C.SEGV_ACCERR, kind)
    if "r" in allowed:
        assert p.read_memory(a, 4) == bytes(4)
    if "w" in allowed:
        p.write_memory(a, b"data")
        if "r" in allowed:
            assert p.read_memory(a, 4) == b"data"


def test_R_FAULT_3_image_text_is_executable_data_is_not() -> None:
    _k, p = setup(image=True)
    text = p.mapping_at(0x0800_0000)
    assert text is not None
    p.check_access(text.start, text.size, "x")
    p.check_access(text.start, text.size, "r")
    assert fault(p.write_memory, text.start, b"x").code == C.SEGV_ACCERR
    data = p.mapping_at(text.end)
    assert data is not None and data.prot == RW
    assert fault(p.check_access, data.start, 1, "x").code == C.SEGV_ACCERR


def test_R_FAULT_2_check_access_rejects_unknown_kinds() -> None:
    _k, p = setup()
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    with pytest.raises(ValueError):
        p.check_access(a, 1, "rw")
    with pytest.raises(TypeError):
        p.check_access(a, 1, None)  # type: ignore[arg-type]


# -- R-FAULT-4: touching lazy pages and private object pages --------------------------------


def test_R_FAULT_4_lazy_page_allocated_on_first_touch() -> None:
    k, p = setup()
    before = k.meminfo()
    a = p.mmap(0, 4 * PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    assert k.meminfo() == before  # R-SYS-6: lazy memory is not charged when mapped
    assert p.read_memory(a + PS + 10, 4) == bytes(4)  # a read is a touch
    m1 = k.meminfo()
    assert m1.allocated == before.allocated + PS and m1.free == before.free - PS
    p.write_memory(a + PS, b"again")  # the same page: nothing new
    assert k.meminfo() == m1
    p.write_memory(a + 3 * PS - 1, b"ab")  # straddles pages 2 and 3
    assert k.meminfo().allocated == before.allocated + 3 * PS
    assert balanced(k.meminfo())
    p.munmap(a, 4 * PS)
    assert k.meminfo() == before
    k.check_invariants()


def test_R_FAULT_4_write_to_private_file_page_privatises() -> None:
    k, p = setup()
    k.create_file("/data/f", b"original" + bytes(PS - 8) + b"second")
    fd = p.open("/data/f", C.O_RDONLY)
    a = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, fd, 0)
    m0 = k.meminfo()
    assert m0.reserved >= 2 * PS  # R-OBJ-3: non-lazy MAP_PRIVATE of a file reserves
    assert p.read_memory(a, 8) == b"original"
    m1 = k.meminfo()
    assert m1.reserved == m0.reserved  # a read does not privatise
    p.write_memory(a + 1, b"X")
    m2 = k.meminfo()
    assert m2.reserved == m1.reserved - PS  # the copy uses the reservation
    assert m2.allocated == m1.allocated + PS
    assert m2.free == m1.free
    assert p.read_memory(a, 8) == b"oXiginal"
    assert p.pread(fd, 8, 0) == b"original"  # R-OBJ-4: writes never reach the object
    assert balanced(m2)
    k.check_invariants()


# -- R-SYS-6: no overcommit ---------------------------------------------------------------------


def test_R_SYS_6_non_lazy_mmap_fails_when_ram_is_short() -> None:
    k, p = setup()
    a = p.mmap(0, RAM - 4 * PS, RW, ANON, C.NOFD, 0)
    before = (k.meminfo(), p.mappings())
    for flags in (ANON, SHARED_ANON):
        with pytest.raises(QnxError) as info:
            p.mmap(0, 5 * PS, RW, flags, C.NOFD, 0)
        assert info.value.errno == qerrno.ENOMEM and "R-MMAP-20" in info.value.reason
    assert (k.meminfo(), p.mappings()) == before
    assert p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)  # exactly what is left
    assert k.meminfo().free == 0
    p.munmap(a, RAM - 4 * PS)
    k.check_invariants()


def test_R_SYS_6_private_file_mapping_needs_its_reservation() -> None:
    k, p = setup()
    k.create_file("/data/big", bytes(4 * PS))
    fd = p.open("/data/big", C.O_RDONLY)
    p.mmap(0x4000_0000, k.meminfo().free - 2 * PS, RW, ANON, C.NOFD, 0)
    before = (k.meminfo(), p.mappings())
    with pytest.raises(QnxError) as info:
        p.mmap(0, 4 * PS, RW, C.MAP_PRIVATE, fd, 0)  # would reserve 4 pages, 2 are free
    assert info.value.errno == qerrno.ENOMEM and "R-MMAP-20" in info.value.reason
    assert (k.meminfo(), p.mappings()) == before
    a = p.mmap(0, 4 * PS, C.PROT_READ, C.MAP_PRIVATE | C.MAP_LAZY, fd, 0)  # no reservation
    b = p.mmap(0, 4 * PS, C.PROT_READ, C.MAP_SHARED, fd, 0)  # no private copies
    assert k.meminfo().reserved == before[0].reserved
    assert p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE, fd, 0)  # exactly what is free
    assert k.meminfo().free == 0
    assert p.read_memory(a, 4) == bytes(4) and p.read_memory(b, 4) == bytes(4)
    k.check_invariants()


def test_R_SYS_6_lazy_mmap_is_not_charged_until_touched() -> None:
    k, p = setup()
    before = k.meminfo()
    a = p.mmap(0, 2 * RAM, RW, ANON | C.MAP_LAZY, C.NOFD, 0)  # more than all of RAM
    b = p.mmap(0, 2 * RAM, RW, SHARED_ANON | C.MAP_LAZY, C.NOFD, 0)
    assert k.meminfo() == before
    p.write_memory(a + RAM, b"x")
    p.write_memory(b + RAM, b"y")
    assert k.meminfo().allocated == before.allocated + 2 * PS
    k.check_invariants()


def test_R_SYS_6_spawn_image_is_reserved_not_allocated() -> None:
    k = Kernel(ram=RAM)
    before = k.meminfo()
    p = k.spawn(image=True)
    m = k.meminfo()
    elf = sum(r.size for r in p.mappings() if r.kind == "elf")
    assert m.reserved == before.reserved + elf
    assert m.allocated == before.allocated  # the stack is lazy
    assert balanced(m)


# -- R-OBJ-3: meminfo ------------------------------------------------------------------------


def test_R_OBJ_3_fresh_kernel_meminfo() -> None:
    k = Kernel(ram=RAM)
    m = k.meminfo()
    assert isinstance(m, MemInfo)
    assert (m.total, m.free, m.allocated, m.reserved) == (RAM, RAM, 0, 0)


def test_R_OBJ_3_meminfo_tracks_anonymous_memory() -> None:
    k, p = setup()
    a = p.mmap(0, 8 * PS, RW, ANON, C.NOFD, 0)
    m = k.meminfo()
    assert (m.total, m.free, m.allocated, m.reserved) == (RAM, RAM - 8 * PS, 8 * PS, 0)
    b = p.mmap(0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
    assert k.meminfo().allocated == 10 * PS
    p.munmap(a, 8 * PS)
    p.munmap(b, 2 * PS)
    assert k.meminfo() == MemInfo(RAM, RAM, 0, 0)


def test_R_OBJ_3_shm_ftruncate_allocates_and_private_mapping_reserves() -> None:
    k, p = setup()
    fd = p.shm_open("/acct", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, 3 * PS)
    m1 = k.meminfo()
    assert m1.allocated == 3 * PS and m1.reserved == 0
    p.mmap(0, 3 * PS, RW, C.MAP_SHARED, fd, 0)
    assert k.meminfo() == m1  # a shared mapping adds nothing
    priv = p.mmap(0, 3 * PS, RW, C.MAP_PRIVATE, fd, 0)
    m2 = k.meminfo()
    assert m2.reserved == 3 * PS and m2.allocated == 3 * PS
    p.munmap(priv, 3 * PS)
    assert k.meminfo() == m1
    p.mmap(0, 3 * PS, RW, C.MAP_PRIVATE | C.MAP_LAZY, fd, 0)
    assert k.meminfo() == m1  # lazy: no reservation
    k.check_invariants()


def test_R_OBJ_3_private_phys_mapping_reserves_nothing_and_maps_the_memory() -> None:
    """MAP_PHYS without MAP_ANON maps physical memory itself, MAP_PRIVATE or not (QNX 6.4
    vmm_mmap: a direct mapping, no private copies): no RAM is reserved or allocated, and a
    write through it is seen by every other mapping of that memory (R-SYS-5)."""
    k, p = setup()
    before = k.meminfo()
    dev = 0xF000_0000  # R-SYS-5 device memory
    priv = p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE | C.MAP_PHYS, C.NOFD, dev)
    shared = p.mmap(0, 2 * PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, dev)
    assert k.meminfo() == before
    p.write_memory(priv + PS, b"device")
    assert p.read_memory(shared + PS, 6) == b"device"
    assert k.meminfo() == before
    k.check_invariants()
    p.munmap(priv, 2 * PS)
    p.munmap(shared, 2 * PS)
    assert k.meminfo() == before
    k.check_invariants()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["map", "lazy", "shared", "touch", "unmap"]),
            st.integers(1, 8),
        ),
        max_size=15,
    )
)
def test_R_OBJ_3_free_allocated_reserved_sum_to_total(ops: list[tuple[str, int]]) -> None:
    k = Kernel(ram=RAM)
    p = k.spawn(image=True)
    maps: list[tuple[int, int]] = []
    for op, n in ops:
        if op == "map":
            maps.append((p.mmap(0, n * PS, RW, ANON, C.NOFD, 0), n))
        elif op == "lazy":
            maps.append((p.mmap(0, n * PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0), n))
        elif op == "shared":
            maps.append((p.mmap(0, n * PS, RW, SHARED_ANON, C.NOFD, 0), n))
        elif maps and op == "touch":
            a, size = maps[n % len(maps)]
            p.write_memory(a + (n % size) * PS, b"t")
        elif maps:
            a, size = maps.pop(n % len(maps))
            p.munmap(a, size * PS)
        m = k.meminfo()
        assert m.total == RAM and balanced(m)
        assert min(m.free, m.allocated, m.reserved) >= 0
    k.check_invariants()


# -- R-OBJ-6: new memory reads zero -----------------------------------------------------------


@pytest.mark.parametrize("flags", [ANON, ANON | C.MAP_LAZY, SHARED_ANON, SHARED_ANON | C.MAP_LAZY])
def test_R_OBJ_6_new_anonymous_memory_reads_zero(flags: int) -> None:
    _k, p = setup()
    a = p.mmap(0, 3 * PS, RW, flags, C.NOFD, 0)
    assert p.read_memory(a, 3 * PS) == bytes(3 * PS)


def test_R_OBJ_6_reused_frames_read_zero() -> None:
    """Frames freed by munmap come back zeroed in a new mapping, and in another process."""
    k, p = setup()
    a = p.mmap(0, RAM, RW, ANON, C.NOFD, 0)  # every frame of RAM
    p.write_memory(a, b"\xaa" * (4 * PS))
    p.write_memory(a + RAM - PS, b"\xbb" * PS)
    p.munmap(a, RAM)
    q = k.spawn(image=False)
    b = q.mmap(0, RAM, RW, ANON, C.NOFD, 0)
    assert q.read_memory(b, 4 * PS) == bytes(4 * PS)
    assert q.read_memory(b + RAM - PS, PS) == bytes(PS)
    k.check_invariants()


def test_R_OBJ_6_map_fixed_replacement_reads_zero() -> None:
    k, p = setup()
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    p.write_memory(a, b"old" * 100)
    assert p.mmap(a, 2 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0) == a
    assert p.read_memory(a, 300) == bytes(300)
    k.check_invariants()


def test_R_OBJ_6_shm_grown_by_ftruncate_reads_zero() -> None:
    _k, p = setup()
    fd = p.shm_open("/z", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, 2 * PS)
    a = p.mmap(0, 2 * PS, C.PROT_READ, C.MAP_SHARED, fd, 0)
    assert p.read_memory(a, 2 * PS) == bytes(2 * PS)
