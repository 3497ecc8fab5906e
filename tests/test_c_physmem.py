"""Physical RAM in a shared file (memfd): the bytes Python, C processes and /dev/mem see."""

from __future__ import annotations

import copy
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim.physmem import RAM_START, PhysMem

PS = 4096
shared = pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="the host has no memfd")


def plain(pm: PhysMem) -> PhysMem:
    """The pure-Python storage, as on a host without memfd."""
    pm._shareable = False
    return pm


@shared
def test_ram_file_holds_the_bytes_at_their_physical_address() -> None:
    pm = PhysMem(ram=1 << 20, page_size=PS)
    ((paddr, _),) = pm.allocate(2 * PS)
    pm.write(paddr + PS - 2, b"span")
    fd = pm.ram_file()
    assert fd is not None
    assert os.pread(fd, 4, paddr + PS - 2) == b"span"
    assert pm.written_frames() == 2


@shared
def test_R_OBJ_6_freed_frames_read_as_zero_and_cost_nothing() -> None:
    pm = PhysMem(ram=1 << 20, page_size=PS)
    ((paddr, _),) = pm.allocate(PS)
    pm.write(paddr, b"\xff" * PS)
    pm.free(paddr, PS)
    assert pm.written_frames() == 0
    ((again, _),) = pm.allocate(PS)
    assert again == paddr and pm.read(again, PS) == bytes(PS)


@shared
def test_snapshot_copies_the_ram_file() -> None:
    k = Kernel(ram=16 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    p.write_memory(a, b"before")
    snap = k.snapshot()
    p.write_memory(a, b"after!")
    k.restore(snap)
    assert p.read_memory(a, 6) == b"before"
    assert k.pm.ram_file() is not None
    copy_pm = copy.deepcopy(k.pm)
    assert copy_pm.ram_file() != k.pm.ram_file()


@shared
def test_dev_mem_alias_sees_the_same_bytes() -> None:
    k = Kernel(ram=16 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    p.write_memory(a, b"alias")
    paddr, _ = p.mem_offset(a, C.NOFD, PS)
    fd = k.pm.ram_file()
    assert fd is not None and os.pread(fd, 5, paddr) == b"alias"


def test_without_memfd_contents_stay_in_python() -> None:
    pm = plain(PhysMem(ram=1 << 20, page_size=PS))
    ((paddr, _),) = pm.allocate(PS)
    pm.write(paddr, b"xyz")
    assert pm.ram_file() is None and pm.read(paddr, 3) == b"xyz"
    assert pm.written_frames() == 1


@given(st.lists(st.tuples(st.integers(0, 8 * PS - 1), st.binary(min_size=1, max_size=64))))
def test_shared_and_plain_storage_read_alike(writes: list[tuple[int, bytes]]) -> None:
    a, b = PhysMem(ram=1 << 20, page_size=PS), plain(PhysMem(ram=1 << 20, page_size=PS))
    for pm in (a, b):
        pm.allocate(8 * PS)
    for off, data in writes:
        for pm in (a, b):
            pm.write(RAM_START + off, data)
    assert a.read(RAM_START, 9 * PS) == b.read(RAM_START, 9 * PS)
    a.free(RAM_START, 4 * PS)
    b.free(RAM_START, 4 * PS)
    assert a.read(RAM_START, 9 * PS) == b.read(RAM_START, 9 * PS)


def test_server_refuses_a_kernel_without_a_ram_file() -> None:
    from qnxsim.c.server import Server

    k = Kernel(ram=16 << 20)
    plain(k.pm)
    with pytest.raises(RuntimeError, match="memfd"):
        Server(k)
