"""Architectures as data (R-SYS-2..4) and the C argument conversions of R-CALL-2.

An ``Arch`` knows its word size, user address range and placement hints; ``CTypes`` turns
Python ints into what a C caller's arguments become on that arch.
"""

from __future__ import annotations

import attrs

from qnxsim.profile import PROFILES


@attrs.frozen
class Arch:
    """One CPU architecture's memory-manager facts."""

    name: str
    bits: int
    page_sizes: tuple[int, ...]
    user_end_4k: int | None  # fixed USER_END (32-bit); None: 2**39 - page_size
    program_base: int
    shmem_base: int
    so_base: int

    @property
    def rlim_infinity(self) -> int:
        """SPEC 18: RLIM_INFINITY, 2^64 - 3 on 64-bit arches and 0x7FFFFFFF on 32-bit ones."""
        return 0x7FFFFFFF if self.bits == 32 else 2**64 - 3

    def user_end(self, page_size: int) -> int:
        """End of the user address range (R-SYS-3)."""
        if self.user_end_4k is not None:
            return self.user_end_4k
        return (1 << 39) - page_size


ARCHES: dict[str, Arch] = {
    "x86_64": Arch(
        "x86_64", 64, (4096,), None, 0x0000_0000_0800_0000, 0x0000_0010_0000_0000,
        0x0000_0070_0000_0000,
    ),
    "aarch64": Arch(
        "aarch64", 64, (4096, 16384, 65536), None, 0x0000_0000_0800_0000,
        0x0000_0010_0000_0000, 0x0000_0070_0000_0000,
    ),
    "x86": Arch("x86", 32, (4096,), 0xBFFFF000, 0x08048000, 0x40100000, 0xB8200000),
    "armle-v7": Arch("armle-v7", 32, (4096,), 0x7FFFF000, 0x00100000, 0x28000000, 0x78000000),
}  # fmt: skip

#: Arches whose whole model is implemented (R-SYS-1, R-SYS-2).
SUPPORTED_ARCHES = ("x86_64", "aarch64", "x86", "armle-v7")


_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_OFF64_MIN, _OFF64_MAX = -(1 << 63), (1 << 63) - 1


def _check_int(name: str, value: object) -> int:
    """R-CALL-2: ints (and bools) only; anything else is a TypeError."""
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return int(value)


@attrs.frozen
class CTypes:
    """C argument conversion for one arch (R-CALL-2, R-CALL-3).

    >>> c = CTypes(64)
    >>> c.size_t("len", -1) == 2**64 - 1, c.int_("fd", 2**32 - 1), c.off_t("off", 2**63)
    (True, -1, -9223372036854775808)
    """

    bits: int
    #: Derived: the largest value of an unsigned word (``size_t``, an address).
    word_max: int = attrs.field(init=False, repr=False)

    @word_max.default
    def _word_max(self) -> int:
        return (1 << self.bits) - 1

    # Each conversion returns an ``int`` already in range as it is (the common case, one
    # call deep); anything else goes through the general ``unsigned``/``signed``.

    def unsigned(self, name: str, value: object, bits: int) -> int:
        return _check_int(name, value) & ((1 << bits) - 1)

    def signed(self, name: str, value: object, bits: int) -> int:
        v = _check_int(name, value) & ((1 << bits) - 1)
        return v - (1 << bits) if v >> (bits - 1) else v

    def addr(self, name: str, value: object) -> int:
        if type(value) is int and 0 <= value <= self.word_max:
            return value
        return self.unsigned(name, value, self.bits)

    size_t = addr

    def int_(self, name: str, value: object) -> int:
        if type(value) is int and _INT_MIN <= value <= _INT_MAX:
            return value
        return self.signed(name, value, 32)

    pid_t = int_

    def unsigned_int(self, name: str, value: object) -> int:
        return self.unsigned(name, value, 32)

    def uint64_t(self, name: str, value: object) -> int:
        return self.unsigned(name, value, 64)

    def off_t(self, name: str, value: object) -> int:
        """``off_t`` for plain mmap: 32-bit on 32-bit arches, zero-extended (R-CALL-3)."""
        if self.bits == 32:
            return self.unsigned(name, value, 32)
        return self.off64_t(name, value)

    def off64_t(self, name: str, value: object) -> int:
        if type(value) is int and _OFF64_MIN <= value <= _OFF64_MAX:
            return value
        return self.signed(name, value, 64)

    def rlim_t(self, name: str, value: object) -> int:
        """``rlim_t``: as wide as the arch's ``long`` (SPEC 18: RLIM_INFINITY 0x7FFFFFFF)."""
        return self.unsigned(name, value, self.bits)


def page_round_up(value: int, page_size: int) -> int:
    return -(-value // page_size) * page_size


def check_kernel_config(arch: str, version: str, ram: int, page_size: int) -> Arch:
    """Validate ``Kernel(...)`` configuration (R-SYS-1); ValueError when it is bad."""
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHES)}")
    if arch not in SUPPORTED_ARCHES:
        raise ValueError(f"arch {arch!r} is not simulated yet; use one of {SUPPORTED_ARCHES}")
    if version not in PROFILES:
        raise ValueError(f"unknown QNX version {version!r}; expected one of {sorted(PROFILES)}")
    spec = ARCHES[arch]
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise ValueError("page_size must be an int")
    if page_size not in spec.page_sizes:
        raise ValueError(f"page_size {page_size} is not valid for {arch}: {spec.page_sizes}")
    if isinstance(ram, bool) or not isinstance(ram, int) or ram <= 0 or ram % page_size:
        raise ValueError("ram must be a positive multiple of the page size")
    if ram > RAM_LIMIT:
        raise ValueError("ram does not fit below the device range (R-SYS-5)")
    return spec


RAM_LIMIT = 0xF000_0000 - 0x0010_0000  # RAM must end below the device range (R-SYS-5)
