"""Architectures as data (R-SYS-2..4) and the C argument conversions of R-CALL-2.

An ``Arch`` knows its word size, user address range and placement hints; ``CTypes`` turns
Python ints into what a C caller's arguments become on that arch.
"""

from __future__ import annotations

import threading

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
#: Per thread: the conversions that changed a value since ``CTypes.take_notes`` last ran
#: (one store for every CTypes, whose bound methods the call table caches per width).
_NOTES = threading.local()
_OFF64_MIN, _OFF64_MAX = -(1 << 63), (1 << 63) - 1


def _check_int(name: str, value: object) -> int:
    """An int, or TypeError naming the argument.

    ``bool`` is refused too: no simulated C parameter is a ``bool``, and ``mmap(0, True,
    ...)`` meaning a one-byte length is a bug in the caller, not a length (README, "Bad
    input").
    """
    if isinstance(value, bool):
        raise TypeError(
            f"{name} must be an int, not bool ({value!r}); this C parameter is an integer, "
            f"pass {int(value)} if that is what you mean"
        )
    if not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    return int(value)


def show_int(value: int) -> str:
    """An argument as a reader wrote it: small ints in decimal, powers of two as ``2**n``,
    other large ones in hex.

    >>> show_int(-4096), show_int(2**70), show_int(0x1234_5678_9ABC)
    ('-4096', '2**70', '0x123456789abc')
    """
    if -0x10000 < value < 0x10000:
        return str(value)
    mag = -value if value < 0 else value
    sign = "-" if value < 0 else ""
    if mag & (mag - 1) == 0:
        return f"{sign}2**{mag.bit_length() - 1}"
    return f"{sign}{mag:#x}"


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

    # Configuration plus per-thread scratch: a copy (a kernel snapshot) shares it, and a
    # pickle carries only the width.
    def __copy__(self) -> CTypes:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> CTypes:
        return self

    def __reduce__(self) -> tuple[type[CTypes], tuple[int]]:
        return (CTypes, (self.bits,))

    # Each conversion returns an ``int`` already in range as it is (the common case, one
    # call deep); anything else goes through the general ``unsigned``/``signed``, which
    # remember a value that the conversion changed, so that a failing call's reason can
    # say what the argument became (``take_notes``).

    def unsigned(self, name: str, value: object, bits: int, ctype: str = "") -> int:
        v = _check_int(name, value)
        out = v & ((1 << bits) - 1)
        if out != v:
            self._note(name, v, out, ctype or f"{bits}-bit unsigned int", bits)
        return out

    def signed(self, name: str, value: object, bits: int, ctype: str = "") -> int:
        v = _check_int(name, value)
        out = v & ((1 << bits) - 1)
        if out >> (bits - 1):
            out -= 1 << bits
        if out != v:
            self._note(name, v, out, ctype or f"{bits}-bit int", bits)
        return out

    def _note(self, name: str, before: int, after: int, ctype: str, bits: int) -> None:
        notes: list[tuple[int, str]] | None = getattr(_NOTES, "items", None)
        if notes is None:
            notes = _NOTES.items = []
        if len(notes) >= 16:  # conversions outside a call are never taken: keep it bounded
            del notes[:8]
        shown = str(after) if -(1 << 32) < after < 1 << 32 else hex(after)
        why = f"C keeps only the low {bits} bits" + (", two's complement" if before < 0 else "")
        notes.append(
            (after, f"{name} {show_int(before)} is {shown} as a {bits}-bit {ctype}: {why}")
        )

    def take_notes(self, converted: tuple[object, ...] | None = None) -> list[str]:
        """What this thread's conversions changed since the last call, and forget them.

        With ``converted``, only notes whose result is one of those values (the arguments
        of the call being made) are kept.  The conversion stays C's (R-CALL-2); the notes
        only say it in a failing call's reason.

        >>> c = CTypes(64)
        >>> _ = c.take_notes()  # forget what earlier conversions in this thread noted
        >>> c.size_t("len", 2**70), c.take_notes()
        (0, ['len 2**70 is 0 as a 64-bit size_t: C keeps only the low 64 bits'])
        >>> c.size_t("len", -4096) == 2**64 - 4096, c.take_notes()[0].split(":")[0]
        (True, 'len -4096 is 0xfffffffffffff000 as a 64-bit size_t')
        """
        notes: list[tuple[int, str]] | None = getattr(_NOTES, "items", None)
        if not notes:
            return []
        _NOTES.items = []
        return [text for after, text in notes if converted is None or after in converted]

    def addr(self, name: str, value: object) -> int:
        if type(value) is int and 0 <= value <= self.word_max:
            return value
        return self.unsigned(name, value, self.bits, "address")

    def size_t(self, name: str, value: object) -> int:
        if type(value) is int and 0 <= value <= self.word_max:
            return value
        return self.unsigned(name, value, self.bits, "size_t")

    def int_(self, name: str, value: object) -> int:
        if type(value) is int and _INT_MIN <= value <= _INT_MAX:
            return value
        return self.signed(name, value, 32, "int")

    def pid_t(self, name: str, value: object) -> int:
        if type(value) is int and _INT_MIN <= value <= _INT_MAX:
            return value
        return self.signed(name, value, 32, "pid_t")

    def unsigned_int(self, name: str, value: object) -> int:
        return self.unsigned(name, value, 32, "unsigned int")

    def uint64_t(self, name: str, value: object) -> int:
        return self.unsigned(name, value, 64)

    def off_t(self, name: str, value: object) -> int:
        """``off_t`` for plain mmap: 32-bit on 32-bit arches, zero-extended (R-CALL-3)."""
        if self.bits == 32:
            return self.unsigned(name, value, 32, "off_t (zero-extended, R-CALL-3)")
        return self.off64_t(name, value)

    def off64_t(self, name: str, value: object) -> int:
        if type(value) is int and _OFF64_MIN <= value <= _OFF64_MAX:
            return value
        return self.signed(name, value, 64, "off64_t")

    def rlim_t(self, name: str, value: object) -> int:
        """``rlim_t``: as wide as the arch's ``long`` (SPEC 18: RLIM_INFINITY 0x7FFFFFFF)."""
        return self.unsigned(name, value, self.bits, "rlim_t")


def page_round_up(value: int, page_size: int) -> int:
    return -(-value // page_size) * page_size


def _type_name(value: object) -> str:
    return type(value).__name__


def check_version(version: object) -> str:
    """A known QNX version (R-SYS-1, SPEC 19): TypeError for a non-str, ValueError else."""
    if not isinstance(version, str):
        raise TypeError(f"version must be a str such as '8.0', not {_type_name(version)}")
    if version not in PROFILES:
        raise ValueError(f"unknown QNX version {version!r}; expected one of {sorted(PROFILES)}")
    return version


def check_kernel_config(arch: object, version: object, ram: object, page_size: object) -> Arch:
    """Validate ``Kernel(...)`` configuration (R-SYS-1): TypeError for a value of the
    wrong type, ValueError for a bad value of the right one."""
    check_version(version)
    if not isinstance(arch, str):
        raise TypeError(f"arch must be a str (or None for the version's default), "
                        f"not {_type_name(arch)}")  # fmt: skip
    if arch not in ARCHES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHES)}")
    if arch not in SUPPORTED_ARCHES:
        raise ValueError(f"arch {arch!r} is not simulated yet; use one of {SUPPORTED_ARCHES}")
    spec = ARCHES[arch]
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise TypeError(f"page_size must be an int, not {_type_name(page_size)}")
    if page_size not in spec.page_sizes:
        raise ValueError(f"page_size {page_size} is not valid for {arch}: {spec.page_sizes}")
    if isinstance(ram, bool) or not isinstance(ram, int):
        raise TypeError(f"ram must be an int (bytes, e.g. 64 << 20), not {_type_name(ram)}")
    if ram <= 0 or ram % page_size:
        raise ValueError(f"ram {ram:#x} must be a positive multiple of the page size {page_size}")
    if ram > RAM_LIMIT:
        raise ValueError(f"ram {ram:#x} does not fit below the device range (R-SYS-5): "
                         f"at most {RAM_LIMIT:#x}")  # fmt: skip
    return spec


RAM_LIMIT = 0xF000_0000 - 0x0010_0000  # RAM must end below the device range (R-SYS-5)
