"""mmap_device_io() and munmap_device_io() (R-DEVIO-1, R-DEVIO-2): port I/O on x86 and
x86_64, a MAP_PHYS mapping with mmap's checks elsewhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import PS, RW, expect_fail

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim import errno as E

PORT_IO = ("x86_64", "x86")
MAPPED = ("aarch64", "armle-v7")
DEVICE = 0xF000_0000  # R-SYS-5
NOCACHE_RW = C.PROT_NOCACHE | C.PROT_READ | C.PROT_WRITE


def kernel(arch: str) -> Kernel:
    return Kernel(arch=arch, ram=16 << 20)


def test_SPEC_18_map_device_failed_is_map_failed() -> None:
    assert C.MAP_DEVICE_FAILED == C.MAP_FAILED == -1


@pytest.mark.parametrize("arch", PORT_IO)
def test_R_DEVIO_1_R_DEVIO_2_port_io_returns_io_and_maps_nothing(arch: str) -> None:
    """The real-code pair: ``mmap_device_io(1, 0x60)`` then ``munmap_device_io(0x60, 1)``."""
    k = kernel(arch)
    user = k.spawn(uid=1000, image=False)  # no ability is checked
    before = (user.mappings(), k.meminfo())
    assert user.mmap_device_io(1, 0x60) == 0x60
    assert user.libc.mmap_device_io(0x60, 0x3F8) == 0x3F8
    assert user.mmap_device_io(0, 0x60) == 0x60  # no check at all, not even len
    assert user.munmap_device_io(0x60, 1) == 0
    assert user.munmap_device_io(0, 0) == 0 and user.libc.munmap_device_io(0x60, 0) == 0
    assert (user.mappings(), k.meminfo()) == before
    k.check_invariants()


def test_R_DEVIO_1_x86_result_is_a_32_bit_uintptr_t() -> None:
    p = kernel("x86").spawn(image=False)
    assert p.mmap_device_io(1, 0x1_0000_0060) == 0x60
    assert kernel("x86_64").spawn(image=False).mmap_device_io(1, 2**64 - 1) == 2**64 - 1


@pytest.mark.parametrize("arch", MAPPED)
def test_R_DEVIO_1_elsewhere_a_nocache_shared_phys_mapping(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    a = p.mmap_device_io(PS, DEVICE + 0x10)
    m = p.mapping_at(a)
    assert m is not None and a % PS == 0x10
    assert (m.kind, m.prot, m.flags, m.offset) == (
        "phys", NOCACHE_RW, C.MAP_SHARED | C.MAP_PHYS, DEVICE,
    )  # fmt: skip
    p.write_memory(a, b"reg")
    fd = p.open("/dev/mem", C.O_RDWR)
    view = p.mmap(0, PS, RW, C.MAP_SHARED, fd, DEVICE)
    assert p.read_memory(view + 0x10, 3) == b"reg"  # the same device memory (R-SYS-5)
    assert p.munmap_device_io(a, PS) == 0
    assert p.mapping_at(a) is None
    k.check_invariants()


@pytest.mark.parametrize("arch", MAPPED)
def test_R_DEVIO_1_mmap_checks_and_errnos(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    expect_fail(k, p, E.EINVAL, "R-MMAP-2", p.mmap_device_io, 0, DEVICE)
    expect_fail(k, p, E.EINVAL, "R-MMAP-11", p.mmap_device_io, PS, 1 << 40)  # past PHYS_END
    user = k.spawn(uid=1000, image=False)
    expect_fail(k, user, E.EPERM, "R-MMAP-11", user.mmap_device_io, PS, DEVICE)
    assert user.libc.mmap_device_io(PS, DEVICE) == C.MAP_DEVICE_FAILED
    assert user.libc.errno == E.EPERM


@pytest.mark.parametrize("arch", MAPPED)
def test_R_DEVIO_2_elsewhere_munmap_device_io_is_munmap(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    a = p.mmap_device_io(2 * PS, DEVICE)
    expect_fail(k, p, E.EINVAL, "R-UNMAP-2", p.munmap_device_io, a, 0)
    assert p.libc.munmap_device_io(a, 0) == -1 and p.libc.errno == E.EINVAL
    assert p.munmap_device_io(a + PS, 1) == 0  # widened to the page, as munmap
    assert [(m.start, m.end) for m in p.mappings()] == [(a, a + PS)]
    assert p.munmap_device_io(0x10_0000, PS) == 0  # nothing mapped there: fine
    k.check_invariants()


def twin(arch: str, uid: int) -> tuple[Kernel, Process]:
    k = kernel(arch)
    return k, k.spawn(uid=uid, image=False)


@pytest.mark.parametrize("arch", MAPPED)
@given(
    length=st.sampled_from([0, 1, PS, 3 * PS + 5, 2**32]),
    io=st.sampled_from(
        [0, DEVICE, DEVICE + 5, DEVICE + 0x0FFF_F000, 0x10_0000, 1 << 33, 2**64 - PS]
    ),
    uid=st.sampled_from([0, 1000]),
)
def test_R_DEVIO_1_property_is_mmap64_of_the_device_io_arguments(
    arch: str, length: int, io: int, uid: int
) -> None:
    """Same result or errno, and the same mappings, as the mmap64 call R-DEVIO-1 names,
    made on an identical machine."""
    k1, p1 = twin(arch, uid)
    k2, p2 = twin(arch, uid)
    got = p1.libc.mmap_device_io(length, io)
    off = io - (1 << 64) if io >= 1 << 63 else io
    want = p2.libc.mmap64(0, length, NOCACHE_RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, off)
    assert got == want
    assert p1.libc.errno == p2.libc.errno
    assert p1.mappings() == p2.mappings()
    assert k1.meminfo() == k2.meminfo()
    k1.check_invariants()


@pytest.mark.parametrize("arch", PORT_IO)
@given(length=st.integers(0, 2**64 - 1), io=st.integers(0, 2**64 - 1))
def test_R_DEVIO_1_property_port_io_is_the_identity_and_changes_nothing(
    arch: str, length: int, io: int
) -> None:
    k = kernel(arch)
    p = k.spawn(uid=1000, image=False)
    bits = 64 if arch == "x86_64" else 32
    assert p.mmap_device_io(length % (1 << bits), io) == io % (1 << bits)
    assert p.munmap_device_io(io % (1 << bits), length % (1 << bits)) == 0
    assert p.mappings() == () and k.meminfo().allocated == 0
