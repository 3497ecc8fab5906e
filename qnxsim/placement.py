"""Where a new mapping goes: hints and hole search (SPEC 4.1) and MAP_FIXED (SPEC 4.2).

``choose_place`` answers for non-fixed mappings (R-PLACE-1..4); ``check_fixed_range`` and
``check_fixed_congruence`` are the MAP_FIXED rules R-MMAP-F1/F2.  Replacement of what a
MAP_FIXED mapping covers (R-MMAP-F3) is done by ``vmm.mmap`` once every check has passed.
"""

from __future__ import annotations

import random

from qnxsim import errno as E
from qnxsim.addrspace import AddressSpace, Machine
from qnxsim.arch import page_round_up
from qnxsim.constants import MAP_ANON, MAP_BELOW, MAP_ELF, MAP_PRIVATE, MAP_STACK, MAP_TYPE
from qnxsim.errno import QnxError

#: R-SYS-4 [SIM]: with ASLR a category hint moves up by up to this many bytes (whole pages).
ASLR_SPAN = 1 << 30

#: The state of the kernel's ``random.Random`` after an ASLR draw (see ``aslr_shift``).
RngState = tuple[object, ...]


def category_hint(m: Machine, flags: int, shift: int = 0) -> int:
    """R-PLACE-1: the default hint of a mapping's category (R-SYS-4 values), moved up by
    ``shift`` bytes (the ASLR move, ``aslr_shift``).

    MAP_STACK: PROGRAM_BASE; MAP_ELF: SO_BASE; private anonymous: PROGRAM_BASE; everything
    else (shared anonymous, objects, MAP_PHYS): SHMEM_BASE.
    """
    arch = m.arch
    if flags & MAP_STACK:
        base = arch.program_base
    elif flags & MAP_ELF:
        base = arch.so_base
    elif flags & MAP_ANON and flags & MAP_TYPE == MAP_PRIVATE:
        base = arch.program_base
    else:
        base = arch.shmem_base
    return base + shift


def _user_hint(m: Machine, addr: int, flags: int) -> int | None:
    """R-PLACE-1: the hint a non-zero ``addr`` gives (rounded up to a page, down with
    MAP_BELOW), or None when the category hint applies instead: ``addr`` is 0, the request
    is MAP_STACK, or [SIM] ``addr`` lies outside the user range (ignored like 0)."""
    if not addr or flags & MAP_STACK:
        return None
    ps = m.page_size
    hint = addr - addr % ps if flags & MAP_BELOW else -(-addr // ps) * ps
    return hint if m.user_start <= hint < m.user_end else None


def aslr_shift(m: Machine, addr: int, flags: int) -> tuple[int, RngState | None]:
    """R-SYS-4: ``(shift, state)``: how far ASLR moves this request's category hint, and
    the generator's state after that draw; ``(0, None)`` without ASLR or when ``addr``
    gives the hint.

    The draw is made on a copy of the kernel's generator, so nothing is consumed yet:
    the caller installs ``state`` (``commit_aslr``) only once the call has succeeded, and
    a failing call draws nothing (R-CALL-5).
    """
    rng = m.rng
    if rng is None or _user_hint(m, addr, flags) is not None:
        return 0, None
    copy = random.Random()
    copy.setstate(rng.getstate())
    shift = copy.randrange(ASLR_SPAN // m.page_size) * m.page_size
    return shift, copy.getstate()


def commit_aslr(m: Machine, state: RngState | None) -> None:
    """Consume the draw that ``aslr_shift`` made (R-SYS-4), once the call succeeds."""
    if state is not None and m.rng is not None:
        m.rng.setstate(state)


def hint_for(m: Machine, addr: int, flags: int, shift: int = 0) -> tuple[int, bool]:
    """R-PLACE-1: ``(hint, downward)`` for a non-fixed request.

    A non-zero ``addr`` is rounded up to a page (down with MAP_BELOW); MAP_STACK ignores it.
    [SIM] An ``addr`` outside the user range is ignored like 0.  ``shift`` moves the
    category hint only (ASLR, R-SYS-4).
    """
    downward = bool(flags & (MAP_BELOW | MAP_STACK))
    hint = _user_hint(m, addr, flags)
    if hint is None:
        hint = category_hint(m, flags, shift)
    return hint, downward


def choose_place(
    space: AddressSpace, addr: int, size: int, flags: int, slack: int = 0, shift: int = 0
) -> int | None:
    """R-PLACE-1..4: the start of a new non-fixed mapping of ``size`` bytes, or None.

    Pure: it reads the address space and changes nothing.  ``slack`` (SPEC 19, 6.4's
    quirk: one page) is what a hole must hold beyond ``size``; the search asks for
    ``size + slack`` and the rules are otherwise the same: upward, the mapping starts at
    the hole's start (or the hint); downward it ends at the hole's top (or starts at the
    hint).  ``shift`` is the ASLR move of a category hint (``aslr_shift``).  O(log n)
    Python steps: the hole index of the address space's IntervalMap answers without
    walking the holes (R-PLACE-5).
    """
    hint, downward = hint_for(space.m, addr, flags, shift)
    if downward:
        found = space.map.find_hole_below(hint, size + slack)
        if found is None or found == hint:
            return found
        return found + slack  # the top of the hole, not size + slack below it
    return space.map.find_hole_above(hint, size + slack)


def fixed_place(
    m: Machine, addr: int, off: int, length: int, private_anon: bool
) -> tuple[int, int, int]:
    """R-MMAP-F1/F2 without the checks: ``(start, pg_off, size)`` of a MAP_FIXED request.

    ``start`` is ``addr`` rounded down to a page.  A private anonymous request whose
    ``addr`` and ``off`` differ within their pages takes its page offset from ``addr``
    (R-MMAP-F2), so the mapping holds ``[addr, addr + length)``; any other request keeps
    ``off``'s.  ``check_fixed_range`` and ``check_fixed_congruence`` judge the result.
    """
    ps = m.page_size
    pg_off = addr % ps if private_anon else off % ps
    return addr - addr % ps, pg_off, page_round_up(length + pg_off, ps)


def check_fixed_range(m: Machine, addr: int, size: int, call: str) -> int:
    """R-MMAP-F1: the page-aligned start of a MAP_FIXED request, or QnxError."""
    start = addr - addr % m.page_size
    if start < m.user_start or start >= m.user_end:
        raise QnxError(
            E.EINVAL,
            f"R-MMAP-F1: MAP_FIXED address {addr:#x} is outside the user range "
            f"[{m.user_start:#x}, {m.user_end:#x})",
            call=call,
        )
    if start + size > m.user_end:
        raise QnxError(
            E.ENOMEM,
            f"R-MMAP-F1: MAP_FIXED range [{start:#x}, {start + size:#x}) runs past the end "
            f"of the user range {m.user_end:#x}",
            call=call,
        )
    return start


def check_fixed_congruence(m: Machine, addr: int, off: int, private_anon: bool, call: str) -> bool:
    """R-MMAP-F2: may ``addr`` and ``off`` differ within their pages?  True if they do.

    Private anonymous memory: allowed (the sub-page part of ``off`` is ignored).
    Any object mapping: EINVAL.
    """
    ps = m.page_size
    if addr % ps == off % ps:
        return False
    if private_anon:
        return True
    raise QnxError(
        E.EINVAL,
        f"R-MMAP-F2: MAP_FIXED address {addr:#x} and offset {off:#x} differ within the page "
        f"({addr % ps:#x} != {off % ps:#x}); an object mapping needs them congruent",
        call=call,
    )
