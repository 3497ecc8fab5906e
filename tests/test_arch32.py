"""Arches (R-SYS-2..5): 32-bit x86 and armle-v7, mmap vs mmap64 (R-CALL-3, R-PEER-6),
mem_offset's EOVERFLOW (R-MOFF-2), RLIM_INFINITY (SPEC 18), aarch64's large pages, and a
random-call property run for every (version, arch) pair."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import PS, RW

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as E

GIB = 1 << 30
ARCHES32 = ("x86", "armle-v7")
USER_END = {"x86": 0xBFFFF000, "armle-v7": 0x7FFFF000}
SHMEM_BASE = {"x86": 0x40100000, "armle-v7": 0x28000000}
PROGRAM_BASE = {"x86": 0x08048000, "armle-v7": 0x00100000}


def kernel(arch: str, version: str = "8.0") -> Kernel:
    return Kernel(arch=arch, version=version, ram=64 << 20)


def big_file(k: Kernel, p: Process) -> int:
    """A 6 GiB file with a marker at 1 GiB and at 5 GiB (pages exist only where written)."""
    k.create_file("/data/big", b"")
    fd = p.open("/data/big", C.O_RDWR)
    assert p.ftruncate(fd, 6 * GIB) == 0
    p.pwrite(fd, b"at 1 GiB", 1 * GIB)
    p.pwrite(fd, b"at 5 GiB", 5 * GIB)
    return fd


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_CALL_3_mmap64_maps_5gib_offset_mmap_zero_extends(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    fd = big_file(k, p)
    a64 = p.mmap64(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 5 * GIB)
    assert p.read_memory(a64, 8) == b"at 5 GiB"
    assert p.mapping_at(a64).offset == 5 * GIB  # type: ignore[union-attr]
    # mmap's off_t is 32 bits: 5 GiB becomes 5 GiB mod 2^32 = 1 GiB (R-CALL-3).
    a32 = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, 5 * GIB)
    assert p.mapping_at(a32).offset == 1 * GIB  # type: ignore[union-attr]
    assert p.read_memory(a32, 8) == b"at 1 GiB"
    k.check_invariants()


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_PEER_6_mmap64_peer_vs_mmap_peer(arch: str) -> None:
    k = kernel(arch)
    server = k.spawn(image=False)
    client = k.spawn(image=False)
    fd = big_file(k, server)
    a64 = server.mmap64_peer(client.pid, 0, PS, C.PROT_READ, C.MAP_SHARED, fd, 5 * GIB)
    assert client.read_memory(a64, 8) == b"at 5 GiB"
    a32 = server.mmap_peer(client.pid, 0, PS, C.PROT_READ, C.MAP_SHARED, fd, 5 * GIB)
    assert client.read_memory(a32, 8) == b"at 1 GiB"
    assert server.mappings() == ()
    k.check_invariants()


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_CALL_3_negative_off_is_zero_extended(arch: str) -> None:
    """``off=-4096`` is 0xFFFF_F000 for mmap, but negative (R-MMAP-13) for mmap64."""
    k = kernel(arch)
    p = k.spawn(image=False)
    fd = big_file(k, p)
    a = p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED, fd, -PS)
    assert p.mapping_at(a).offset == 0xFFFF_F000  # type: ignore[union-attr]
    with pytest.raises(QnxError) as info:
        p.mmap64(0, PS, C.PROT_READ, C.MAP_SHARED, fd, -PS)
    assert info.value.errno == E.EINVAL and "R-MMAP-13" in info.value.reason


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_CALL_2_size_t_is_32_bits(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    # len -1 is 0xFFFFFFFF: rounding it up to a page overflows a 32-bit size_t.
    with pytest.raises(QnxError) as info:
        p.mmap(0, -1, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    assert info.value.errno == E.ENOMEM and "R-MMAP-14" in info.value.reason
    # an address wraps modulo 2^32
    assert p.mapping_at(2**32 + PROGRAM_BASE[arch]) is None


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_SYS_3_user_range(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    fixed = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_FIXED
    end = USER_END[arch]
    assert p.mmap(end - PS, PS, RW, fixed, C.NOFD, 0) == end - PS
    with pytest.raises(QnxError) as info:
        p.mmap(end, PS, RW, fixed, C.NOFD, 0)
    assert info.value.errno == E.EINVAL and "R-MMAP-F1" in info.value.reason
    with pytest.raises(QnxError) as info:
        p.mmap(end - PS, 2 * PS, RW, fixed, C.NOFD, 0)
    assert info.value.errno == E.ENOMEM and "R-MMAP-F1" in info.value.reason


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_SYS_4_hints(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0) == PROGRAM_BASE[arch]
    assert p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0) == SHMEM_BASE[arch]
    image = k.spawn()  # R-PROC-1 on a 32-bit arch: text at PROGRAM_BASE
    assert image.mappings()[-1].end <= USER_END[arch]
    k.check_invariants()


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_MOFF_2_mem_offset_eoverflow_above_2gib(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, 0xF000_0000)
    assert p.mem_offset64(a, C.NOFD, PS) == (0xF000_0000, PS)
    with pytest.raises(QnxError) as info:
        p.mem_offset(a, C.NOFD, PS)
    assert info.value.errno == E.EOVERFLOW and "R-MOFF-2" in info.value.reason
    b = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    assert p.mem_offset(b, C.NOFD, PS)[0] < 0x8000_0000  # RAM is low: no overflow


def test_R_MOFF_2_64_bit_mem_offset_has_no_overflow() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, 0xF000_0000)
    assert p.mem_offset(a, C.NOFD, PS) == (0xF000_0000, PS)


@pytest.mark.parametrize("arch", ARCHES32)
def test_SPEC_18_rlim_infinity_32(arch: str) -> None:
    k = kernel(arch)
    p = k.spawn(image=False)
    assert p.getrlimit(C.RLIMIT_AS) == (C.RLIM_INFINITY_32, C.RLIM_INFINITY_32)
    # RLIM_INFINITY is no limit: 2.5 GiB of lazy memory exceeds 0x7FFFFFFF bytes.
    size = 0xA000_0000 if arch == "x86" else 0x7000_0000
    assert p.mmap(0, size, RW, C.MAP_PRIVATE | C.MAP_ANON | C.MAP_LAZY, C.NOFD, 0) > 0
    # a finite limit still applies
    p.setrlimit(C.RLIMIT_AS, size + PS, C.RLIM_INFINITY_32)
    with pytest.raises(QnxError) as info:
        p.mmap(0, 2 * PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    assert info.value.errno == E.ENOMEM and "R-MMAP-18" in info.value.reason


@pytest.mark.parametrize("arch", ARCHES32)
def test_R_SYS_5_ram_below_device_range(arch: str) -> None:
    assert Kernel(arch=arch, ram=0xF000_0000 - 0x10_0000, page_size=PS).ram > 0
    with pytest.raises(ValueError):
        Kernel(arch=arch, ram=0xF000_0000)


@pytest.mark.parametrize("page_size", [16384, 65536])
def test_R_SYS_1_aarch64_large_pages(page_size: int) -> None:
    k = Kernel(arch="aarch64", page_size=page_size, ram=64 << 20)
    p = k.spawn()
    a = p.mmap(0, 1, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and a % page_size == 0 and rec.size == page_size
    assert p.mapping_at(0).__class__ is type(None)  # page 0 is never handed out
    k.create_file("/f", b"x" * (3 * page_size))
    fd = p.open("/f", C.O_RDONLY)
    b = p.mmap(0, 10, C.PROT_READ, C.MAP_SHARED, fd, page_size + 5)
    assert b % page_size == 5 and p.read_memory(b, 3) == b"xxx"
    assert p.munmap(a + 1, 1) == 0 and p.mapping_at(a) is None
    end = (1 << 39) - page_size  # R-SYS-3
    fixed = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_FIXED
    assert p.mmap(end - page_size, page_size, RW, fixed, C.NOFD, 0) == end - page_size
    k.check_invariants()


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", *ARCHES32])
def test_R_SYS_2_widths(arch: str) -> None:
    k = kernel(arch)
    bits = k.machine.arch.bits
    assert bits == (32 if arch in ARCHES32 else 64)
    assert k.ctypes.size_t("len", -1) == 2**bits - 1
    assert k.ctypes.off64_t("off", 2**63) == -(2**63)


# -- a random mmap/munmap/mprotect sequence for every (version, arch) pair ------------------

VERSIONS = ("8.0", "7.1", "6.4")
PAIRS = [(v, a) for v in VERSIONS for a in ("x86_64", "aarch64", *ARCHES32)]

calls = st.lists(
    st.tuples(
        st.sampled_from(["mmap", "mmap_fixed", "munmap", "mprotect"]),
        st.integers(0, 63),  # page index near the base
        st.integers(1, 6),  # pages
        st.sampled_from([C.PROT_NONE, C.PROT_READ, RW, C.PROT_READ | C.PROT_EXEC]),
        st.sampled_from([C.MAP_PRIVATE, C.MAP_SHARED, 0, 3, C.MAP_PRIVATE | C.MAP_LAZY]),
    ),
    max_size=12,
)


@pytest.mark.parametrize(("version", "arch"), PAIRS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seq=calls)
def test_R_CALL_5_random_calls_every_profile_and_arch(
    version: str, arch: str, seq: list[tuple[str, int, int, int, int]]
) -> None:
    """Invariants hold after every call and a failing call changes nothing (R-CALL-5)."""
    k = Kernel(version=version, arch=arch, ram=8 << 20)
    p = k.spawn(uid=1000)
    base = 0x2000_0000
    for name, page, pages, prot, flags in seq:
        addr, size = base + page * PS, pages * PS
        before = (p.mappings(), k.meminfo())
        try:
            if name == "mmap":
                p.mmap(addr, size, prot, flags | C.MAP_ANON, C.NOFD, 0)
            elif name == "mmap_fixed":
                p.mmap(addr, size, prot, flags | C.MAP_ANON | C.MAP_FIXED, C.NOFD, 0)
            elif name == "munmap":
                p.munmap(addr, size)
            else:
                p.mprotect(addr, size, prot)
        except QnxError as err:
            assert err.reason.startswith("R-"), err.reason
            if name != "mprotect":  # R-MPROT-5 is the documented exception
                assert (p.mappings(), k.meminfo()) == before, f"R-CALL-5: {err}"
        k.check_invariants()
