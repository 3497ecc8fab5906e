"""Wording for rejected bits: which bits, against which mask, and Linux look-alikes.

Code ported from Linux often passes Linux's numbers (``PROT_READ`` is 1 there, 0x100 on
QNX).  The reasons built here name the offending bits and, where a value matches a Linux
constant that QNX numbers differently, say so.  Nothing here decides a rule.
"""

from __future__ import annotations

from qnxsim import constants as C

#: Linux's PROT_* values (asm-generic/mman-common.h), each with QNX's name for the same idea.
LINUX_PROT: dict[int, str] = {0x1: "PROT_READ", 0x2: "PROT_WRITE", 0x4: "PROT_EXEC"}

#: Linux MAP_* values that mean something else (or nothing) on QNX and that QNX rejects.
#: MAP_SHARED, MAP_PRIVATE and MAP_FIXED have the same values on both and are not listed.
LINUX_MAP: dict[int, str] = {
    0x100: "MAP_GROWSDOWN",
    0x8000: "MAP_POPULATE",
    0x100000: "MAP_FIXED_NOREPLACE",
    0x200000: "MAP_UNINITIALIZED",
}


def _names(bits: int, table: dict[int, str]) -> list[str]:
    return [name for value, name in table.items() if bits & value]


def prot_outside_mask(rule: str, prot: int) -> str:
    """A reason for a prot with bits outside PROT_MASK (R-MMAP-3, R-MPROT-1).

    >>> reason = prot_outside_mask("R-MPROT-1", 0x1)
    >>> for part in reason.split("; "):
    ...     print(part)
    R-MPROT-1: prot 0x1 has bits 0x1 outside PROT_MASK (0xf00)
    0x1 looks like Linux's PROT_READ (1): QNX's PROT_READ is 0x100
    """
    stray = prot & ~C.PROT_MASK
    text = f"{rule}: prot {prot:#x} has bits {stray:#x} outside PROT_MASK ({C.PROT_MASK:#x})"
    if stray & ~0x7 == 0:
        names = _names(stray, LINUX_PROT)
        linux = "|".join(names)
        qnx = ", ".join(f"{n} is {getattr(C, n):#x}" for n in names)
        text += f"; {stray:#x} looks like Linux's {linux} ({stray}): QNX's {qnx}"
    return text


def linux_map_flags(bits: int) -> str:
    """``"; ..."`` naming the Linux MAP_* flags among rejected ``bits``, or ``""``.

    >>> linux_map_flags(0x100)
    "; 0x100 is Linux's MAP_GROWSDOWN, which QNX does not have"
    >>> linux_map_flags(0x40)
    ''
    """
    names = [f"{v:#x} is Linux's {n}" for v, n in LINUX_MAP.items() if bits & v]
    if not names:
        return ""
    return (
        "; "
        + ", ".join(names)
        + (", which QNX does not have" if len(names) == 1 else "; QNX has none of them")
    )


__all__ = ["LINUX_MAP", "LINUX_PROT", "linux_map_flags", "prot_outside_mask"]
