"""The memory mirror of a running C process stays fresh when the Python API changes its
memory: the change is taken back from the host before the Python call returns (the C
bridge's memory model: the host mapping is only a cache of the simulated one)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from c_support import needs_c

from qnxsim import Kernel, MemoryFault
from qnxsim import constants as C
from qnxsim.c.load import load

pytestmark = needs_c

SOURCE = r"""
#include <stdint.h>
int peek(uintptr_t addr);
void poke(uintptr_t addr, int value);
int peek(uintptr_t addr) { return *(volatile unsigned char *)addr; }
void poke(uintptr_t addr, int value) { *(volatile unsigned char *)addr = (unsigned char)value; }
"""
CDEF = "int peek(uintptr_t addr); void poke(uintptr_t addr, int value);"
RW = C.PROT_READ | C.PROT_WRITE


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    src = tmp_path_factory.mktemp("c") / "mirror.c"
    src.write_text(SOURCE)
    lib = load([Path(src)], cdef=CDEF)
    yield lib
    lib.close()


@pytest.fixture
def lib(loaded: Any) -> Iterator[Any]:
    """The module's library; its call hosts end with each test, even one that fails."""
    yield loaded
    loaded.close()


def test_R_FAULT_1_python_munmap_of_a_c_process_page_faults_its_next_access(lib: Any) -> None:
    k = Kernel()
    p = k.spawn()
    a = p.mmap(0, 4096, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    lib.poke.as_process(p, a, 7)
    assert lib.peek.as_process(p, a) == 7  # mirrored now
    p.munmap(a, 4096)
    with pytest.raises(MemoryFault) as fault:
        lib.peek.as_process(p, a)
    assert (fault.value.signo, fault.value.code, fault.value.addr) == (
        C.SIGSEGV,
        C.SEGV_MAPERR,
        a,
    )
    lib.close()
    k.check_invariants()


def test_R_MPROT_4_R_FAULT_1_python_mprotect_of_a_c_process_page_is_enforced_at_once(
    lib: Any,
) -> None:
    k = Kernel()
    p = k.spawn()
    a = p.mmap(0, 4096, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    lib.poke.as_process(p, a, 1)
    p.mprotect(a, 4096, C.PROT_READ)
    assert lib.peek.as_process(p, a) == 1
    with pytest.raises(MemoryFault) as fault:
        lib.poke.as_process(p, a, 2)
    assert (fault.value.signo, fault.value.code) == (C.SIGSEGV, C.SEGV_ACCERR)
    lib.close()


def test_R_OBJ_4_R_FAULT_4_python_write_that_privatises_a_c_process_page_is_seen_by_it(
    lib: Any,
) -> None:
    """A private mapping of a shm object mirrors the object's frame until the first write;
    a Python write gives the page a frame of its own, which the C code must read next."""
    k = Kernel()
    p = k.spawn()
    fd = p.shm_open("/mirror", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, 4096)
    p.pwrite(fd, b"\x01", 0)
    a = p.mmap(0, 4096, RW, C.MAP_PRIVATE, fd, 0)
    assert lib.peek.as_process(p, a) == 1  # mirrors the object's frame, read-only
    p.write_memory(a, b"\x09")
    assert lib.peek.as_process(p, a) == 9
    assert p.pread(fd, 1, 0) == b"\x01"
    lib.close()
    k.check_invariants()


def test_R_PROC_4_python_exit_of_a_c_process_ends_its_host_process(lib: Any) -> None:
    k = Kernel()
    p = k.spawn()
    a = p.mmap(0, 4096, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    lib.poke.as_process(p, a, 3)
    host = lib._hosts[id(p)]
    p.exit(0)
    assert host.popen.wait(10) == -signal.SIGKILL  # killed: its mirror maps freed frames
    assert k.meminfo().allocated == 0
    with pytest.raises(ProcessLookupError, match="has ended"):
        lib.peek.as_process(p, a)
    lib.close()
    k.check_invariants()
