"""Placement of non-fixed mappings (SPEC 4.1) and MAP_FIXED (SPEC 4.2).

Rules: R-PLACE-1 .. R-PLACE-5, R-MMAP-16, R-MMAP-17 (= R-MMAP-F1 .. R-MMAP-F4), the user
range R-SYS-3 and the placement hints and ASLR determinism of R-SYS-4.  Addresses are SPEC
values; layouts are built with MAP_FIXED (and MAP_LAZY, so that large ranges need no RAM).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import (
    ANON,
    PROGRAM_BASE,
    PS,
    RW,
    SHARED_ANON,
    SHMEM_BASE,
    SO_BASE,
    expect_error,
    expect_fail,
)

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.abilities import ROOT, DomainEntry
from qnxsim.profile import PROFILES
from qnxsim.refmodel import Layout

LAZY = ANON | C.MAP_LAZY
FIXED = ANON | C.MAP_FIXED
PHYS = C.MAP_SHARED | C.MAP_PHYS
BELOW = ANON | C.MAP_BELOW
USER_START = PS  # R-SYS-3 [SIM]: page 0 is never handed out
USER_END = 0x7F_FFFF_F000  # R-SYS-3: 2^39 - page_size on x86_64
DEVICE_START = 0xF000_0000  # R-SYS-5
H = 0x4000_0000  # a hint in the middle of nowhere

MmapCall = Callable[[int, int, int, int, int, int], int]


def occupy(p: Process, start: int, end: int) -> None:
    """A lazy MAP_FIXED mapping of ``[start, end)``: takes the addresses, needs no RAM."""
    assert p.mmap(start, end - start, C.PROT_NONE, LAZY | C.MAP_FIXED, C.NOFD, 0) == start


def spans(p: Process) -> list[tuple[int, int]]:
    return [(r.start, r.end) for r in p.mappings()]


# -- R-SYS-3: the user range -----------------------------------------------------------------


def test_R_SYS_3_user_end_on_x86_64_is_0x7f_ffff_f000() -> None:
    assert USER_END == 2**39 - PS
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    assert p.mmap(USER_END - PS, PS, RW, FIXED, C.NOFD, 0) == USER_END - PS
    expect_fail(k, p, E.EINVAL, "R-MMAP-F1", p.mmap, USER_END, PS, RW, FIXED, C.NOFD, 0)


@pytest.mark.parametrize(
    ("arch", "ps"), [("x86_64", 4096), ("aarch64", 4096), ("aarch64", 16384), ("aarch64", 65536)]
)
def test_R_SYS_3_user_range_is_page_size_to_2_39_minus_page_size(arch: str, ps: int) -> None:
    k = Kernel(arch=arch, page_size=ps, ram=64 << 20)
    p = k.spawn(image=False)
    user_end = 2**39 - ps
    assert p.mmap(ps, ps, RW, FIXED, C.NOFD, 0) == ps  # USER_START = page_size
    assert p.mmap(user_end - ps, ps, RW, FIXED, C.NOFD, 0) == user_end - ps
    expect_fail(k, p, E.EINVAL, "R-MMAP-F1", p.mmap, ps - 1, ps, RW, FIXED, C.NOFD, 0)
    expect_fail(k, p, E.EINVAL, "R-MMAP-F1", p.mmap, user_end, ps, RW, FIXED, C.NOFD, 0)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-F1", p.mmap, user_end - ps, 2 * ps, RW, FIXED, C.NOFD, 0)
    k.check_invariants()


# -- R-SYS-4 / R-PLACE-1: hints by category ----------------------------------------------------


CATEGORY_CASES = [
    ("private-anon", ANON, 0, PROGRAM_BASE),
    ("private-anon-nofd", C.MAP_PRIVATE, 0, PROGRAM_BASE),
    ("private-anon-lazy", LAZY, 0, PROGRAM_BASE),
    ("shared-anon", SHARED_ANON, 0, SHMEM_BASE),
    ("phys", PHYS, DEVICE_START, SHMEM_BASE),
    ("shared-anon-phys", SHARED_ANON | C.MAP_PHYS, 0, SHMEM_BASE),
    ("elf-private-anon", ANON | C.MAP_ELF, 0, SO_BASE),
    ("elf-shared-anon", SHARED_ANON | C.MAP_ELF, 0, SO_BASE),
    ("elf-phys", PHYS | C.MAP_ELF, DEVICE_START, SO_BASE),
]


@pytest.mark.parametrize("arch_ps", [("x86_64", 4096), ("aarch64", 16384)], ids=str)
@pytest.mark.parametrize(
    ("flags", "off", "hint"), [c[1:] for c in CATEGORY_CASES], ids=[c[0] for c in CATEGORY_CASES]
)
def test_R_PLACE_1_hint_by_category(
    arch_ps: tuple[str, int], flags: int, off: int, hint: int
) -> None:
    arch, ps = arch_ps
    k = Kernel(arch=arch, page_size=ps, ram=64 << 20)
    p = k.spawn(image=False)
    assert p.mmap(0, ps, RW, flags, C.NOFD, off) == hint
    k.check_invariants()


def test_R_PLACE_1_private_anon_phys_is_private_anonymous(k: Kernel, p: Process) -> None:
    """[choice] MAP_PRIVATE|MAP_ANON|MAP_PHYS is private anonymous memory: PROGRAM_BASE."""
    assert p.mmap(0, PS, RW, ANON | C.MAP_PHYS, C.NOFD, 0) == PROGRAM_BASE


def test_R_PLACE_1_stack_searches_down_from_program_base(k: Kernel, p: Process) -> None:
    occupy(p, PROGRAM_BASE, PROGRAM_BASE + PS)
    a = p.mmap(0, 4 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    assert a + 4 * PS == PROGRAM_BASE
    k.check_invariants()


def test_R_PLACE_1_new_stack_goes_below_the_image_and_main_stack() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn()  # R-PROC-1: program at PROGRAM_BASE, main stack below it
    below = [r for r in p.mappings() if r.end <= PROGRAM_BASE]
    assert below, "the image has a stack below PROGRAM_BASE"
    assert max(r.end for r in below) == PROGRAM_BASE
    lowest = min(r.start for r in below)
    a = p.mmap(0, 0x10000, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    assert a + 0x10000 == lowest
    k.check_invariants()


@pytest.mark.parametrize(
    ("addr", "expected"), [(H, H), (H + 1, H + PS), (H + PS - 1, H + PS), (H - PS, H - PS)]
)
def test_R_PLACE_1_nonzero_addr_is_rounded_up(
    k: Kernel, p: Process, addr: int, expected: int
) -> None:
    for flags, off in [(ANON, 0), (SHARED_ANON, 0), (PHYS, DEVICE_START)]:
        q = k.spawn(image=False)
        assert q.mmap(addr, PS, RW, flags, C.NOFD, off) == expected
    k.check_invariants()


@pytest.mark.parametrize(("addr", "expected"), [(H, H), (H + 1, H), (H + PS - 1, H)])
def test_R_PLACE_1_map_below_rounds_addr_down(
    k: Kernel, p: Process, addr: int, expected: int
) -> None:
    assert p.mmap(addr, 2 * PS, RW, BELOW, C.NOFD, 0) == expected
    k.check_invariants()


# -- R-SYS-4: ASLR ----------------------------------------------------------------------------


def _aslr_layout(seed: int, aslr: bool = True) -> list[int]:
    k = Kernel(ram=64 << 20, aslr=aslr, seed=seed)
    p = k.spawn(image=False)
    out = [p.mmap(0, PS, RW, ANON, C.NOFD, 0) for _ in range(4)]
    out.append(p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0))
    out.append(p.mmap(0, PS, RW, ANON | C.MAP_ELF, C.NOFD, 0))
    out.append(p.mmap(0, 4 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS))
    out.append(p.mmap(0, PS, RW, PHYS, C.NOFD, DEVICE_START + 0x123))
    k.check_invariants()
    return out


def test_R_SYS_4_aslr_same_seed_gives_same_addresses() -> None:
    assert _aslr_layout(7) == _aslr_layout(7)


def test_R_SYS_4_aslr_different_seed_gives_different_addresses() -> None:
    a, b = _aslr_layout(7), _aslr_layout(8)
    assert all(x != y for x, y in zip(a, b, strict=True))


def test_R_SYS_4_aslr_moves_hints_by_whole_pages_per_mapping() -> None:
    plain = _aslr_layout(7, aslr=False)
    assert plain[:4] == [PROGRAM_BASE + i * PS for i in range(4)]
    moved = _aslr_layout(7)
    assert all(x != y for x, y in zip(moved, plain, strict=True))
    assert [x % PS for x in moved] == [x % PS for x in plain]  # whole pages; 0x123 kept
    # each mapping draws its own move: the private anonymous ones are not packed together
    assert sorted(moved[:4]) != [min(moved[:4]) + i * PS for i in range(4)]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**64))
def test_R_SYS_4_aslr_is_deterministic_for_any_seed(seed: int) -> None:
    assert _aslr_layout(seed) == _aslr_layout(seed)


def test_R_SYS_4_aslr_does_not_move_map_fixed() -> None:
    k = Kernel(ram=64 << 20, aslr=True, seed=3)
    p = k.spawn(image=False)
    assert p.mmap(H + 0x10, PS, RW, FIXED, C.NOFD, 0) == H + 0x10


# -- R-PLACE-2: upward search -------------------------------------------------------------------


def test_R_PLACE_2_hint_inside_a_fitting_hole_is_used(k: Kernel, p: Process) -> None:
    occupy(p, H - PS, H)
    occupy(p, H + 2 * PS, H + 3 * PS)
    assert p.mmap(H, 2 * PS, RW, ANON, C.NOFD, 0) == H  # fills [H, H + 2 pages) exactly
    k.check_invariants()


def test_R_PLACE_2_hint_inside_a_mapping_goes_to_the_next_hole(k: Kernel, p: Process) -> None:
    occupy(p, H, H + 3 * PS)
    assert p.mmap(H + PS, PS, RW, ANON, C.NOFD, 0) == H + 3 * PS
    k.check_invariants()


def test_R_PLACE_2_hint_whose_hole_is_too_short_above_it_goes_up(k: Kernel, p: Process) -> None:
    """The hole around the hint is big, but not from the hint: the next hole above wins."""
    occupy(p, H + PS, H + 2 * PS)
    assert p.mmap(H, 2 * PS, RW, ANON, C.NOFD, 0) == H + 2 * PS
    k.check_invariants()


def test_R_PLACE_2_lowest_fitting_hole_above_the_hint(k: Kernel, p: Process) -> None:
    occupy(p, H, H + PS)
    occupy(p, H + 2 * PS, H + 3 * PS)  # a one-page hole at H + PS
    occupy(p, H + 5 * PS, H + 6 * PS)  # a two-page hole at H + 3 pages
    assert p.mmap(H, 3 * PS, RW, LAZY, C.NOFD, 0) == H + 6 * PS
    assert p.mmap(H, 2 * PS, RW, LAZY, C.NOFD, 0) == H + 3 * PS
    assert p.mmap(H, PS, RW, LAZY, C.NOFD, 0) == H + PS
    k.check_invariants()


def test_R_PLACE_2_nothing_above_uses_the_highest_fitting_hole_below(k: Kernel, p: Process) -> None:
    a, b = 0x1000_0000, 0x3800_0000
    occupy(p, H, USER_END)  # nothing above the hint
    occupy(p, a, a + PS)
    occupy(p, b, b + PS)
    # holes below: [USER_START, a), [a + 1 page, b) (~640 MiB), [b + 1 page, H) (~128 MiB)
    assert p.mmap(H + PS, PS, C.PROT_NONE, LAZY, C.NOFD, 0) == b + PS  # at the hole's start
    assert p.mmap(H + PS, 0x1000_0000, C.PROT_NONE, LAZY, C.NOFD, 0) == a + PS
    assert p.mmap(H + PS, 0x1000_0000, C.PROT_NONE, LAZY, C.NOFD, 0) == a + PS + 0x1000_0000
    # now no hole holds 0x1000_0000 bytes: [USER_START, a) is one page short
    expect_fail(
        k, p, E.ENOMEM, "R-MMAP-16", p.mmap, H + PS, 0x1000_0000, C.PROT_NONE, LAZY, C.NOFD, 0
    )
    k.check_invariants()


def test_R_PLACE_2_hint_near_user_end_never_runs_past_it(k: Kernel, p: Process) -> None:
    """Nothing fits from the hint up to USER_END: the highest fitting hole below is the one
    hole of the empty space, so the mapping goes to its start, USER_START."""
    assert p.mmap(USER_END - PS, 2 * PS, RW, ANON, C.NOFD, 0) == USER_START
    k.check_invariants()


# -- R-PLACE-3: downward search (MAP_BELOW, MAP_STACK) ------------------------------------------


def test_R_PLACE_3_free_hint_is_used(k: Kernel, p: Process) -> None:
    occupy(p, H + 2 * PS, H + 3 * PS)
    assert p.mmap(H, 2 * PS, RW, BELOW, C.NOFD, 0) == H
    k.check_invariants()


def test_R_PLACE_3_hint_inside_a_mapping_goes_to_the_top_of_the_hole_below(
    k: Kernel, p: Process
) -> None:
    occupy(p, H, H + 16 * PS)
    assert p.mmap(H + 8 * PS, 2 * PS, RW, BELOW, C.NOFD, 0) == H - 2 * PS
    k.check_invariants()


def test_R_PLACE_3_hint_in_a_hole_too_short_from_it_takes_that_holes_top(
    k: Kernel, p: Process
) -> None:
    """[hint, hint + size) is not free; the highest hole at or below the hint that fits is
    the one holding the hint, and the mapping sits at its top (which is above the hint)."""
    occupy(p, H + PS, H + 2 * PS)
    assert p.mmap(H, 2 * PS, RW, BELOW, C.NOFD, 0) == H - PS
    k.check_invariants()


def test_R_PLACE_3_skips_holes_below_that_are_too_small(k: Kernel, p: Process) -> None:
    occupy(p, H, H + PS)
    occupy(p, H - 3 * PS, H - 2 * PS)  # a two-page hole [H - 2 pages, H)
    assert p.mmap(H, 3 * PS, RW, BELOW, C.NOFD, 0) == H - 6 * PS
    assert p.mmap(H, 2 * PS, RW, BELOW, C.NOFD, 0) == H - 2 * PS
    k.check_invariants()


def test_R_PLACE_3_nothing_below_uses_the_top_of_the_lowest_fitting_hole_above(
    k: Kernel, p: Process
) -> None:
    occupy(p, USER_START, H + PS)  # nothing below the hint
    occupy(p, H + 2 * PS, H + 3 * PS)  # holes above: one page at H + PS, then to USER_END
    assert p.mmap(H, 2 * PS, RW, BELOW | C.MAP_LAZY, C.NOFD, 0) == USER_END - 2 * PS
    assert p.mmap(H, PS, RW, BELOW | C.MAP_LAZY, C.NOFD, 0) == H + PS
    k.check_invariants()


def test_R_PLACE_3_stack_is_placed_downward_like_map_below(k: Kernel, p: Process) -> None:
    occupy(p, PROGRAM_BASE - 2 * PS, PROGRAM_BASE + PS)
    occupy(p, PROGRAM_BASE - 5 * PS, PROGRAM_BASE - 4 * PS)  # a two-page hole below
    a = p.mmap(0, 3 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    assert a == PROGRAM_BASE - 8 * PS
    b = p.mmap(0, 2 * PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)
    assert b == PROGRAM_BASE - 4 * PS
    k.check_invariants()


# -- R-PLACE-4: bounds, no overlap, no replacement ----------------------------------------------


def test_R_PLACE_4_whole_user_range_is_one_hole(k: Kernel, p: Process) -> None:
    whole = USER_END - USER_START
    expect_fail(k, p, E.ENOMEM, "R-MMAP-16", p.mmap, 0, whole + PS, RW, LAZY, C.NOFD, 0)
    assert p.mmap(0, whole, RW, LAZY, C.NOFD, 0) == USER_START
    assert spans(p) == [(USER_START, USER_END)]
    for flags, off in [(ANON, 0), (SHARED_ANON, 0), (PHYS, DEVICE_START), (BELOW, 0)]:
        expect_fail(k, p, E.ENOMEM, "R-MMAP-16", p.mmap, 0, PS, RW, flags, C.NOFD, off)
    k.check_invariants()


def test_R_PLACE_4_a_hint_on_a_mapping_never_replaces_it(k: Kernel, p: Process) -> None:
    x = p.mmap(H, 2 * PS, RW, FIXED, C.NOFD, 0)
    p.write_memory(x, b"keep me")
    before = p.mappings()
    for flags in (ANON, SHARED_ANON, BELOW):
        a = p.mmap(x, 2 * PS, RW, flags, C.NOFD, 0)
        assert a + 2 * PS <= x or a >= x + 2 * PS
    assert p.read_memory(x, 7) == b"keep me"
    assert [r for r in p.mappings() if r.start == x] == [before[0]]
    k.check_invariants()


def test_R_PLACE_4_map_below_near_user_start_stays_inside(k: Kernel, p: Process) -> None:
    occupy(p, USER_START, USER_START + 4 * PS)
    a = p.mmap(USER_START + PS, 2 * PS, RW, BELOW, C.NOFD, 0)
    assert a >= USER_START + 4 * PS  # nothing below: the top of the lowest hole above
    assert a + 2 * PS == USER_END
    k.check_invariants()


placement_requests = st.lists(
    st.tuples(
        st.sampled_from([ANON, SHARED_ANON, BELOW, ANON | C.MAP_ELF, PHYS]),
        st.integers(1, 8 * PS),
        st.one_of(st.just(0), st.integers(0, USER_END + PS)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(requests=placement_requests)
def test_R_PLACE_4_placements_never_overlap_or_leave_the_user_range(
    requests: list[tuple[int, int, int]],
) -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    taken: list[tuple[int, int]] = []
    for flags, length, addr in requests:
        off = DEVICE_START if flags == PHYS else 0
        a = p.mmap(addr, length, RW, flags | C.MAP_LAZY, C.NOFD, off)
        lo, hi = a, a + length
        assert lo >= USER_START and hi <= USER_END
        assert all(hi <= s or lo >= e for s, e in taken), "R-PLACE-4: overlaps a mapping"
        taken.append((a - a % PS, -(-hi // PS) * PS))
    mapped = sorted(taken)
    assert sum(e - s for s, e in mapped) == sum(r.size for r in p.mappings())
    k.check_invariants()


# -- R-PLACE-5: cost ----------------------------------------------------------------------------


def _placement_work(holes: int, downward: bool) -> int:
    """Python lines executed by one 2-page placement past ``holes`` one-page holes.

    Counting executed lines (``sys.settrace``) measures the Python-level work of the
    search deterministically, without timing: a walk over the holes executes lines per
    hole, an indexed search a number that grows with log(holes) at most.
    """
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    base = 0x1000_0000
    for i in range(holes):
        occupy(p, base + 2 * i * PS, base + (2 * i + 1) * PS)
    if downward:
        hint, flags = base + 2 * holes * PS - PS, BELOW | C.MAP_LAZY
        occupy(p, USER_START, base)
        occupy(p, base + (2 * holes - 1) * PS, base + 2 * holes * PS + 16 * PS)
    else:
        hint, flags = base, LAZY
    lines = 0

    def tracer(frame: FrameType, event: str, arg: object) -> Callable[..., object]:
        nonlocal lines
        if event == "line":
            lines += 1
        return tracer

    sys.settrace(tracer)
    try:
        a = p.mmap(hint, 2 * PS, RW, flags, C.NOFD, 0)
    finally:
        sys.settrace(None)
    assert a >= base + 2 * holes * PS - 2 * PS or downward, "the request must pass every hole"
    k.check_invariants()
    return lines


@pytest.mark.parametrize("downward", [False, True], ids=["up", "down"])
def test_R_PLACE_5_placement_does_not_scan_every_hole(downward: bool) -> None:
    """50 times more one-page holes in the way must not make a placement do anywhere near
    50 times more Python-level work (a walk over the holes would)."""
    few = _placement_work(100, downward)
    many = _placement_work(5000, downward)
    assert many < 2 * few, f"{few} lines -> {many} lines"


# -- R-MMAP-F1 (R-MMAP-17): the fixed range ----------------------------------------------------


@pytest.mark.parametrize("addr", [0, 1, PS - 1, USER_END, USER_END + PS, 2**63, 2**64 - PS])
def test_R_MMAP_F1_start_outside_the_user_range_is_einval(k: Kernel, p: Process, addr: int) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-F1", p.mmap, addr, PS, RW, FIXED, C.NOFD, 0)


@pytest.mark.parametrize(
    ("addr", "length"),
    [
        (USER_END - PS, PS + 1),
        (USER_END - PS, 2 * PS),
        (USER_START, USER_END),
        (USER_END - PS + 0x10, PS),  # start + roundup(len + page offset) runs past
        (USER_END - PS, 2**64 - 2 * PS),  # start + size wraps
    ],
    ids=["one-byte", "one-page", "whole", "page-offset", "wraps"],
)
def test_R_MMAP_F1_end_past_user_end_is_enomem(
    k: Kernel, p: Process, addr: int, length: int
) -> None:
    expect_fail(k, p, E.ENOMEM, "R-MMAP-F1", p.mmap, addr, length, RW, FIXED, C.NOFD, 0)


def test_R_MMAP_F1_whole_user_range_can_be_mapped_fixed(k: Kernel, p: Process) -> None:
    flags = FIXED | C.MAP_LAZY
    assert p.mmap(USER_START, USER_END - USER_START, RW, flags, C.NOFD, 0) == USER_START
    assert spans(p) == [(USER_START, USER_END)]
    k.check_invariants()


def test_R_MMAP_15_comes_after_R_MMAP_17_and_before_R_MMAP_18(k: Kernel, p: Process) -> None:
    """SPEC 3's order, revision 2: the MAP_FIXED checks (R-MMAP-17, section 4.2) run before
    the object range check (QNX's map_create() places before memobj_offset_check()), and
    R-MMAP-15 runs before the limits."""
    fd = p.shm_open("/fixed", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, PS)
    shared_fixed = C.MAP_SHARED | C.MAP_FIXED
    # F1 (start 0 is outside the user range) and R-MMAP-15 (offset 2^44): F1 first
    expect_fail(k, p, E.EINVAL, "R-MMAP-F1", p.mmap, 0, PS, RW, shared_fixed, fd, 1 << 44)
    # F1's ENOMEM (the range runs past USER_END) and R-MMAP-15: F1 first
    at = USER_END - PS
    expect_fail(k, p, E.ENOMEM, "R-MMAP-F1", p.mmap, at, 2 * PS, RW, shared_fixed, fd, 1 << 44)
    # F2 (addr and off not congruent) and R-MMAP-15: F2 first
    off = (1 << 44) + 0x10
    expect_fail(k, p, E.EINVAL, "R-MMAP-F2", p.mmap, H, PS, RW, shared_fixed, fd, off)
    # a fitting MAP_FIXED range: now R-MMAP-15 decides
    expect_fail(k, p, E.ENXIO, "R-MMAP-15", p.mmap, H, PS, RW, shared_fixed, fd, 1 << 44)
    p.setrlimit(C.RLIMIT_AS, PS, PS)
    # R-MMAP-15 and R-MMAP-18 (two pages over a one-page RLIMIT_AS): R-MMAP-15 first
    expect_fail(k, p, E.ENXIO, "R-MMAP-15", p.mmap, H, 2 * PS, RW, shared_fixed, fd, 1 << 44)
    # F1 and R-MMAP-18: F1 first
    expect_fail(k, p, E.EINVAL, "R-MMAP-F1", p.mmap, 0, 2 * PS, RW, FIXED, C.NOFD, 0)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, H, 2 * PS, RW, FIXED, C.NOFD, 0)


def test_R_MMAP_15_comes_after_R_MMAP_16(k: Kernel, p: Process) -> None:
    """Revision 2: no hole for the mapping (R-MMAP-16) is found before the object range is
    checked, so a request that breaks both is ENOMEM."""
    fd = p.shm_open("/full", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, PS)
    occupy(p, USER_START, USER_END)  # not one free page
    expect_fail(k, p, E.ENOMEM, "R-MMAP-16", p.mmap, 0, PS, RW, C.MAP_SHARED, fd, 1 << 44)
    p.munmap(H, PS)  # one free page: R-MMAP-15 decides
    expect_fail(k, p, E.ENXIO, "R-MMAP-15", p.mmap, 0, PS, RW, C.MAP_SHARED, fd, 1 << 44)
    assert p.mmap(0, PS, RW, C.MAP_SHARED, fd, 0) == H


def test_R_MMAP_11_past_phys_end_is_einval_before_placement_and_R_MMAP_15(
    k: Kernel, p: Process
) -> None:
    """R-MMAP-11's EINVAL for a physical range past PHYS_END stays, in R-MMAP-11's place:
    before placement (R-MMAP-16, R-MMAP-17) and before R-MMAP-15's ENXIO."""
    phys_end = 0x1_0000_0000  # R-SYS-5: the end of the device range
    past = phys_end - PS + 1  # one page past PHYS_END once rounded up
    expect_fail(k, p, E.EINVAL, "R-MMAP-11", p.mmap, 0, PS, RW, PHYS, C.NOFD, past)
    # with MAP_FIXED outside the user range (R-MMAP-F1): R-MMAP-11 first
    expect_fail(k, p, E.EINVAL, "R-MMAP-11", p.mmap, 0, PS, RW, PHYS | C.MAP_FIXED, C.NOFD, past)
    # with an offset past 2^44 as well (R-MMAP-15): R-MMAP-11 first
    far = 1 << 44
    expect_fail(k, p, E.EINVAL, "R-MMAP-11", p.mmap, H, PS, RW, PHYS | C.MAP_FIXED, C.NOFD, far)
    # with no hole left (R-MMAP-16): R-MMAP-11 first
    occupy(p, USER_START, USER_END)
    expect_fail(k, p, E.EINVAL, "R-MMAP-11", p.mmap, 0, PS, RW, PHYS, C.NOFD, past)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-16", p.mmap, 0, PS, RW, PHYS, C.NOFD, DEVICE_START)


# -- R-MMAP-9 against the planned place ------------------------------------------------------

RX = C.PROT_READ | C.PROT_EXEC


def _zero_fd(p: Process) -> int:
    return p.open("/dev/zero", C.O_RDWR)


def _exec_only_in(p: Process, aid: int, lo: int, hi: int) -> None:
    """procmgr_ability SUBRANGE: ``aid`` allowed for root only within ``[lo, hi]``."""
    root = C.PROCMGR_ADN_ROOT
    words = [root | C.PROCMGR_AOP_ALLOW | aid, root | C.PROCMGR_AOP_SUBRANGE | aid, lo, hi]
    assert p.procmgr_ability(0, *words) == 0


@pytest.mark.parametrize("aslr", [False, True], ids=["no-aslr", "aslr"])
def test_R_MMAP_9_private_dev_zero_exec_is_checked_where_it_is_mapped(aslr: bool) -> None:
    """A private ``/dev/zero`` mapping is private anonymous memory (R-MMAP-21), placed from
    PROGRAM_BASE (moved by ASLR); R-MMAP-9 checks that very range, with one ASLR draw."""
    placed = Kernel(ram=64 << 20, aslr=aslr, seed=11)
    q = placed.spawn(image=False)
    where = q.mmap(0, PS, RX, C.MAP_PRIVATE, _zero_fd(q), 0)
    if not aslr:
        assert where == PROGRAM_BASE
    # the same kernel again, with PROT_EXEC allowed only in that one page
    k = Kernel(ram=64 << 20, aslr=aslr, seed=11)
    p = k.spawn(image=False)
    fd = _zero_fd(p)
    _exec_only_in(p, C.PROCMGR_AID_PROT_EXEC, where, where + PS - 1)
    assert p.mmap(0, PS, RX, C.MAP_PRIVATE, fd, 0) == where
    k.check_invariants()


@pytest.mark.parametrize("aslr", [False, True], ids=["no-aslr", "aslr"])
def test_R_MMAP_9_private_dev_zero_exec_outside_the_subrange_is_eperm(aslr: bool) -> None:
    """The subrange holds the place every other placement would give (SHMEM_BASE) but not
    the planned one: EPERM by R-MMAP-9, nothing changed, no ASLR draw used."""
    k = Kernel(ram=64 << 20, aslr=aslr, seed=11)
    p = k.spawn(image=False)
    fd = _zero_fd(p)
    _exec_only_in(p, C.PROCMGR_AID_PROT_EXEC, SHMEM_BASE, SHMEM_BASE + (2 << 30))
    err = expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0, PS, RX, C.MAP_PRIVATE, fd, 0)
    assert "PROCMGR_AID_PROT_EXEC" in err.reason
    # the subrange that holds the planned page admits it, at the same place
    twin = Kernel(ram=64 << 20, aslr=aslr, seed=11)
    q = twin.spawn(image=False)
    where = q.mmap(0, PS, RX, C.MAP_PRIVATE, _zero_fd(q), 0)
    assert where < SHMEM_BASE
    _exec_only_in(p, C.PROCMGR_AID_PROT_EXEC, where, where + PS - 1)
    assert p.mmap(0, PS, RX, C.MAP_PRIVATE, fd, 0) == where


@pytest.mark.parametrize("kind", ["anon", "shared-anon", "shm"])
def test_R_MMAP_9_subrange_ability_gives_eperm_exactly_outside_the_planned_range(
    kind: str,
) -> None:
    """For every page of a window around the planned place, a one-page subrange admits the
    request exactly when it is the planned page."""
    for shift in range(-2, 3):
        k = Kernel(ram=64 << 20)
        p = k.spawn(image=False)
        occupy(p, PROGRAM_BASE, PROGRAM_BASE + 3 * PS)  # the planned place moves up
        occupy(p, SHMEM_BASE, SHMEM_BASE + 3 * PS)
        planned = (PROGRAM_BASE if kind == "anon" else SHMEM_BASE) + 3 * PS
        if kind == "shm":
            fd = p.shm_open("/x", C.O_RDWR | C.O_CREAT, 0o600)
            p.ftruncate(fd, PS)
            args = (0, PS, RX, C.MAP_SHARED, fd, 0)
            aid = C.PROCMGR_AID_PROT_EXEC  # fd-backed without PROT_WRITE
        else:
            args = (0, PS, RX, ANON if kind == "anon" else SHARED_ANON, C.NOFD, 0)
            aid = C.PROCMGR_AID_PROT_WRITE_AND_EXEC
        lo = planned + shift * PS
        _exec_only_in(p, aid, lo, lo + PS - 1)
        if shift == 0:
            assert p.mmap(*args) == planned
        else:
            expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, *args)


# -- R-CALL-5 with ASLR: a failing call draws nothing ------------------------------------------


def _aslr_addresses(fail_between: Callable[[Process], None] | None) -> list[int]:
    k = Kernel(ram=64 << 20, aslr=True, seed=5)
    p = k.spawn(image=False)
    out = [p.mmap(0, PS, RW, ANON, C.NOFD, 0)]
    if fail_between is not None:
        before = (p.mappings(), k.meminfo())
        fail_between(p)
        assert (p.mappings(), k.meminfo()) == before
    out.append(p.mmap(0, PS, RW, ANON, C.NOFD, 0))
    out.append(p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0))
    return out


FAILING_AFTER_PLACEMENT = {
    # refused by each check that runs once the place is known
    "R-MMAP-9": lambda p: (
        p.abilities.set(C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, DomainEntry(False)),
        expect_error(E.EPERM, "R-MMAP-9:", p.mmap, 0, PS, RX, ANON, C.NOFD, 0),
    ),
    "R-MMAP-12": lambda p: expect_error(
        E.EBADF, "R-MMAP-12:", p.mmap, 0, PS, RW, C.MAP_SHARED, 7, 0
    ),
    "R-MMAP-16": lambda p: expect_error(
        E.ENOMEM, "R-MMAP-16:", p.mmap, 0, USER_END, RW, LAZY, C.NOFD, 0
    ),
    "R-MMAP-18": lambda p: (
        p.setrlimit(C.RLIMIT_AS, PS, C.RLIM_INFINITY),  # one page is mapped
        expect_error(E.ENOMEM, "R-MMAP-18:", p.mmap, 0, PS, RW, ANON, C.NOFD, 0),
        p.setrlimit(C.RLIMIT_AS, C.RLIM_INFINITY, C.RLIM_INFINITY),
    ),
    "R-MMAP-20": lambda p: expect_error(
        E.ENOMEM, "R-MMAP-20:", p.mmap, 0, 128 << 20, RW, ANON, C.NOFD, 0
    ),
}


@pytest.mark.parametrize("rule", list(FAILING_AFTER_PLACEMENT))
def test_R_CALL_5_failing_mmap_under_aslr_leaves_the_next_address_unchanged(rule: str) -> None:
    """R-CALL-5, R-SYS-4: a call that fails consumes no ASLR draw, whichever check refuses
    it, so the successful calls after it land where they would have without it."""
    assert _aslr_addresses(FAILING_AFTER_PLACEMENT[rule]) == _aslr_addresses(None)


def test_R_SYS_4_aslr_draws_nothing_for_a_usable_addr_hint() -> None:
    """Only a mapping placed from its category hint draws: one at a usable ``addr`` hint,
    or MAP_FIXED, leaves the next category placement where it would have been."""
    plain = _aslr_addresses(None)
    k = Kernel(ram=64 << 20, aslr=True, seed=5)
    p = k.spawn(image=False)
    got = [p.mmap(0, PS, RW, ANON, C.NOFD, 0)]
    assert p.mmap(H, PS, RW, ANON, C.NOFD, 0) == H
    assert p.mmap(H + 4 * PS, PS, RW, FIXED, C.NOFD, 0) == H + 4 * PS
    got.append(p.mmap(0, PS, RW, ANON, C.NOFD, 0))
    got.append(p.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0))
    assert got == plain


# -- R-MMAP-F2 (R-MMAP-17): congruence of addr and off -----------------------------------------


def test_R_MMAP_F2_private_anon_ignores_the_sub_page_part_of_off(k: Kernel, p: Process) -> None:
    """addr = H + 0xF00, off = 0x100, len = 0x200: the mapping must hold [addr, addr+len),
    so it is two pages from H (off's page offset would give only one)."""
    addr = H + 0xF00
    assert p.mmap(addr, 0x200, RW, FIXED, C.NOFD, 0x100) == addr  # R-MMAP-F4
    assert spans(p) == [(H, H + 2 * PS)]
    p.write_memory(addr, bytes(0x200))
    k.check_invariants()


@pytest.mark.parametrize(
    ("flags", "off"),
    [(SHARED_ANON | C.MAP_FIXED, 0), (PHYS | C.MAP_FIXED, DEVICE_START)],
    ids=["shared-anon", "phys"],
)
@pytest.mark.parametrize("delta", [0x10, 0xFFF])
def test_R_MMAP_F2_object_mapping_must_be_congruent(
    k: Kernel, p: Process, flags: int, off: int, delta: int
) -> None:
    expect_fail(k, p, E.EINVAL, "R-MMAP-F2", p.mmap, H + delta, PS, RW, flags, C.NOFD, off)
    expect_fail(k, p, E.EINVAL, "R-MMAP-F2", p.mmap, H, PS, RW, flags, C.NOFD, off + delta)


def test_R_MMAP_F2_congruent_phys_maps_addr_exactly(k: Kernel, p: Process) -> None:
    whole = p.mmap(0, PS, RW, PHYS, C.NOFD, DEVICE_START)
    p.write_memory(whole + 0x10, b"dev")
    a = p.mmap(H + 0x10, PS, C.PROT_READ, PHYS | C.MAP_FIXED, C.NOFD, DEVICE_START + 0x10)
    assert a == H + 0x10
    rec = p.mapping_at(a)
    assert rec is not None
    assert (rec.start, rec.end, rec.offset) == (H, H + 2 * PS, DEVICE_START)
    assert p.read_memory(a, 3) == b"dev"
    k.check_invariants()


def test_R_MMAP_F2_congruent_shared_anon_is_accepted(k: Kernel, p: Process) -> None:
    a = p.mmap(H + 0x10, PS, RW, SHARED_ANON | C.MAP_FIXED, C.NOFD, 0x10)
    assert a == H + 0x10
    assert spans(p) == [(H, H + 2 * PS)]
    k.check_invariants()


# -- R-MMAP-F3 (R-MMAP-17): silent replacement, only after every check --------------------------


def test_R_MMAP_F3_replaces_and_splits_what_it_covers(k: Kernel, p: Process) -> None:
    x = p.mmap(H, 3 * PS, RW, FIXED, C.NOFD, 0)
    p.write_memory(x, b"A" * 3 * PS)
    assert p.mmap(x + PS, PS, C.PROT_READ, FIXED, C.NOFD, 0) == x + PS
    assert [(r.start, r.end, r.prot) for r in p.mappings()] == [
        (x, x + PS, RW),
        (x + PS, x + 2 * PS, C.PROT_READ),
        (x + 2 * PS, x + 3 * PS, RW),
    ]
    assert p.read_memory(x, 3 * PS) == b"A" * PS + bytes(PS) + b"A" * PS  # new page is zero
    assert k.meminfo().allocated == 3 * PS  # the replaced page's frame went back
    k.check_invariants()


def test_R_MMAP_F3_replaces_several_mappings_of_different_kinds(k: Kernel, p: Process) -> None:
    p.mmap(H, PS, RW, FIXED, C.NOFD, 0)
    p.mmap(H + PS, PS, RW, SHARED_ANON | C.MAP_FIXED, C.NOFD, 0)
    p.mmap(H + 2 * PS, PS, RW, PHYS | C.MAP_FIXED, C.NOFD, DEVICE_START)
    assert k.meminfo().allocated == 2 * PS
    assert p.mmap(H - PS, 5 * PS, RW, FIXED | C.MAP_LAZY, C.NOFD, 0) == H - PS
    (rec,) = p.mappings()
    assert (rec.start, rec.end, rec.kind) == (H - PS, H + 4 * PS, "anon")
    assert k.meminfo().allocated == 0  # the shared object lost its last mapping (R-MMAP-23)
    k.check_invariants()


def test_R_MMAP_F3_shared_object_kept_by_another_process_survives(k: Kernel, p: Process) -> None:
    a = p.mmap(H, PS, RW, SHARED_ANON | C.MAP_FIXED, C.NOFD, 0)
    p.write_memory(a, b"shared")
    child = k.process(p.fork())
    p.mmap(H, PS, RW, FIXED, C.NOFD, 0)
    assert p.read_memory(H, 6) == bytes(6)
    assert child.read_memory(H, 6) == b"shared"
    k.check_invariants()


def _fixed_over_existing(p: Process) -> int:
    x = p.mmap(H, 4 * PS, RW, FIXED, C.NOFD, 0)
    p.write_memory(x, b"before")
    return x


def test_R_MMAP_F3_nothing_replaced_when_r_mmap_f2_fails(k: Kernel, p: Process) -> None:
    x = _fixed_over_existing(p)
    flags = SHARED_ANON | C.MAP_FIXED
    expect_fail(k, p, E.EINVAL, "R-MMAP-F2", p.mmap, x + 0x10, PS, RW, flags, C.NOFD, 0)
    assert p.read_memory(x, 6) == b"before"


def test_R_MMAP_F3_nothing_replaced_when_r_mmap_f1_fails(k: Kernel, p: Process) -> None:
    x = _fixed_over_existing(p)
    occupy(p, USER_END - PS, USER_END)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-F1", p.mmap, USER_END - PS, 2 * PS, RW, FIXED, C.NOFD, 0)
    assert p.read_memory(x, 6) == b"before"


def test_R_MMAP_F3_nothing_replaced_when_r_mmap_9_fails(k: Kernel, p: Process) -> None:
    x = _fixed_over_existing(p)
    p.abilities.set(C.PROCMGR_AID_PROT_WRITE_AND_EXEC, ROOT, DomainEntry(False))
    prot = C.PROT_READ | C.PROT_EXEC
    expect_fail(k, p, E.EPERM, "R-MMAP-9", p.mmap, x, PS, prot, FIXED, C.NOFD, 0)
    assert p.read_memory(x, 6) == b"before"


def test_R_MMAP_F3_nothing_replaced_when_r_mmap_18_fails(k: Kernel, p: Process) -> None:
    x = _fixed_over_existing(p)
    p.setrlimit(C.RLIMIT_AS, 4 * PS, C.RLIM_INFINITY)
    # inside the old mapping the total stays 4 pages: allowed
    assert p.mmap(x + PS, 2 * PS, RW, FIXED, C.NOFD, 0) == x + PS
    # one page over the end makes 5 pages: refused, and nothing is replaced
    expect_fail(k, p, E.ENOMEM, "R-MMAP-18", p.mmap, x + 3 * PS, 2 * PS, RW, FIXED, C.NOFD, 0)
    assert p.read_memory(x, 6) == b"before"


def test_R_MMAP_F3_nothing_replaced_when_r_mmap_20_fails(k: Kernel, p: Process) -> None:
    x = _fixed_over_existing(p)
    length = k.meminfo().free + 8 * PS  # more than free RAM plus what replacement gives back
    expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, x, length, RW, FIXED, C.NOFD, 0)
    assert p.read_memory(x, 6) == b"before"


def test_R_MMAP_F3_replaced_memory_counts_as_available(k: Kernel, p: Process) -> None:
    """R-MMAP-20 with replacement: the frames the replaced pages give back can be reused."""
    big = 48 << 20
    x = p.mmap(H, big, RW, FIXED, C.NOFD, 0)
    expect_fail(k, p, E.ENOMEM, "R-MMAP-20", p.mmap, x + big, big, RW, FIXED, C.NOFD, 0)
    assert p.mmap(x, big, RW, FIXED, C.NOFD, 0) == x
    assert k.meminfo().allocated == big
    k.check_invariants()


# -- R-MMAP-F4 (R-MMAP-17): the result is exactly addr -----------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    addr=st.integers(USER_START, USER_END - 17 * PS),
    length=st.integers(1, 16 * PS),
    off=st.integers(0, 2**40),
)
def test_R_MMAP_F4_private_anon_fixed_returns_exactly_addr(
    addr: int, length: int, off: int
) -> None:
    k = Kernel(ram=1 << 20)
    p = k.spawn(image=False)
    assert p.mmap(addr, length, RW, FIXED | C.MAP_LAZY, C.NOFD, off) == addr
    (rec,) = p.mappings()
    assert rec.start == addr - addr % PS
    assert rec.end == -(-(addr + length) // PS) * PS  # exactly [addr, addr + len) in pages
    k.check_invariants()


def test_R_MMAP_F4_fixed_result_is_exactly_addr_for_every_kind(k: Kernel, p: Process) -> None:
    assert p.mmap(H + 0x123, PS, RW, FIXED, C.NOFD, 0) == H + 0x123
    y = H + 0x10_0000
    assert p.mmap(y + 0x20, PS, RW, SHARED_ANON | C.MAP_FIXED, C.NOFD, 0x20) == y + 0x20
    z = H + 0x20_0000
    got = p.mmap(z + 0x30, PS, RW, PHYS | C.MAP_FIXED, C.NOFD, DEVICE_START + 0x30)
    assert got == z + 0x30
    k.check_invariants()


# -- SPEC 19: the hole fit, predicted by the reference model -----------------------------------


@pytest.mark.parametrize("version", list(PROFILES))
@pytest.mark.parametrize("hole_pages", [1, 2, 3])
def test_SPEC_19_hole_fit_agrees_with_the_reference_model(version: str, hole_pages: int) -> None:
    """A hole of exactly the size above the hint: 8.0 and 7.1 take it, 6.4 needs one page
    more (SPEC 19) and goes past it; the kernel places where refmodel.Layout says."""
    layout = Layout.of(version, "x86_64")
    k = Kernel(ram=64 << 20, version=version, arch="x86_64")
    p = k.spawn(image=False)
    occupy(p, H, H + PS)
    occupy(p, H + (1 + hole_pages) * PS, H + (2 + hole_pages) * PS)
    spans = [(r.start, r.end) for r in p.mappings()]
    expected = layout.place(spans, H, hole_pages * PS)
    exact = H + PS
    assert expected == (exact if not layout.profile.hole_slack_pages else H + (2 + hole_pages) * PS)
    assert p.mmap(H, hole_pages * PS, RW, LAZY, C.NOFD, 0) == expected
    k.check_invariants()
