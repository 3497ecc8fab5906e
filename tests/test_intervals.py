"""IntervalMap against brute-force models (DESIGN: "Test it on its own with hypothesis").

The reference model is a dict of unit cells over a small universe plus the set of interval
starts; the placement searches are checked against naive full scans written from the text of
SPEC R-PLACE-2 and R-PLACE-3.  Values are ``(tag, offset)`` pairs: a split moves the offset,
and two touching intervals join when their tags match and their offsets are contiguous.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from qnxsim import intervals
from qnxsim.intervals import IntervalMap
from qnxsim.refmodel import hole_above as naive_hole_above
from qnxsim.refmodel import hole_below as naive_hole_below

Value = tuple[str, int]
Interval = tuple[int, int, Value]

LO, HI = 8, 248  # bounds of the maps under test
U_LO, U_HI = 0, 256  # the universe the queries range over: the bounds and a margin
TAGS = ("a", "b", "c")


def split_value(value: Value, start: int, at: int) -> Value:
    return value[0], value[1] + (at - start)


def join_values(left: Value, ls: int, le: int, right: Value) -> Value | None:
    if left[0] == right[0] and left[1] + (le - ls) == right[1]:
        return left
    return None


def new_map(bounded: bool = True) -> IntervalMap[Value]:
    return IntervalMap[Value](
        split=split_value, join=join_values, bounds=(LO, HI) if bounded else None
    )


@contextmanager
def gap_load(load: int | None) -> Iterator[None]:
    """Run with the hole index's chunk size and the start index's sublist size set to
    ``load`` (None: the shipped values), so that small maps take the paths across chunks."""
    if load is None:
        yield
        return
    with (
        mock.patch.object(intervals, "_GAP_LOAD", load),
        mock.patch.object(intervals._Index, "DEFAULT_LOAD_FACTOR", load),
    ):
        yield


def check_structure(m: IntervalMap[Value], canonical: bool) -> None:
    """``m.check()``; a map left uncanonical on purpose (split_at, replace) skips R-MAP-2."""
    if canonical:
        m.check()
        return
    join = m._join
    m._join = None  # the merge rule alone is off: order, bounds and hole index still checked
    try:
        m.check()
    finally:
        m._join = join


# -- the brute-force model -------------------------------------------------------------------


class CellModel:
    """Unit cells ``x -> (tag, offset of x)`` plus the set of interval starts."""

    def __init__(self, bounds: tuple[int, int] | None) -> None:
        self.bounds = bounds
        self.cells: dict[int, Value] = {}
        self.starts: set[int] = set()

    def copy(self) -> CellModel:
        new = CellModel(self.bounds)
        new.cells = dict(self.cells)
        new.starts = set(self.starts)
        return new

    def intervals(self) -> list[Interval]:
        out: list[Interval] = []
        run_start = prev = None
        for x in sorted(self.cells):
            if run_start is None or x != prev + 1 or x in self.starts:
                if run_start is not None:
                    out.append((run_start, prev + 1, self.cells[run_start]))
                run_start = x
            prev = x
        if run_start is not None:
            out.append((run_start, prev + 1, self.cells[run_start]))
        return out

    def find(self, x: int) -> Interval | None:
        for s, e, v in self.intervals():
            if s <= x < e:
                return s, e, v
        return None

    def joinable_at(self, b: int) -> bool:
        """Would the intervals either side of boundary ``b`` merge?"""
        left, right = self.cells.get(b - 1), self.cells.get(b)
        return left is not None and right is not None and join_values(left, 0, 1, right) is not None

    def canonical(self) -> bool:
        return not any(self.joinable_at(b) for b in self.starts)

    def is_free(self, s: int, e: int) -> bool:
        return all(x not in self.cells for x in range(s, e))

    def free_runs(self, s: int, e: int) -> list[tuple[int, int]]:
        """Maximal free runs inside ``[s, e)``, ascending."""
        out: list[tuple[int, int]] = []
        x = s
        while x < e:
            if x in self.cells:
                x += 1
                continue
            y = x
            while y < e and y not in self.cells:
                y += 1
            out.append((x, y))
            x = y
        return out

    def holes(self) -> list[tuple[int, int]]:
        assert self.bounds is not None
        return self.free_runs(*self.bounds)

    def put(self, s: int, e: int, value: Value) -> None:
        for x in range(s, e):
            self.cells[x] = (value[0], value[1] + (x - s))
        self.starts.add(s)
        if e in self.cells:
            self.starts.add(e)

    def split(self, x: int) -> None:
        if x in self.cells:
            self.starts.add(x)

    def remove(self, s: int, e: int) -> list[Interval]:
        if s >= e:
            return []
        self.split(s)
        self.split(e)
        gone = [(max(a, s), min(b, e), v) for a, b, v in self.intervals() if a < e and b > s]
        for x in range(s, e):
            self.cells.pop(x, None)
            self.starts.discard(x)
        return gone

    def tidy(self) -> None:
        """Forget starts that are no boundary any more (the cell left of them is free)."""
        self.starts = {x for x in self.starts if x in self.cells and x - 1 in self.cells}


def adopt_coalesce(m: IntervalMap[Value], model: CellModel, s: int, e: int) -> None:
    """Adopt the map's starts after a coalesce over ``[s, e)``, checking the merge rule.

    A start may go only if its two sides join; every joinable start in ``[s, e]`` must go.
    """
    model.tidy()
    after = {a for a, _, _ in m}
    for a in after:
        assert a in model.cells and (a - 1 not in model.cells or a in model.starts), (
            f"an interval starts at {a}, which was no boundary"
        )
    for b in model.starts - after:
        assert model.joinable_at(b), f"merged at {b} though the values do not join"
    for b in after:
        if s <= b <= e:
            assert not model.joinable_at(b), f"left a joinable boundary at {b}"
    model.starts = after
    model.tidy()


# -- naive placement (tests/support.py), checked against SPEC's examples --------------------


def test_naive_scans_follow_the_spec_examples() -> None:
    """The naive scans themselves, on a hand-made layout: holes [0,10) [20,22) [30,100)."""
    holes = [(0, 10), (20, 22), (30, 100)]
    assert naive_hole_above(holes, 3, 5) == 3  # fits from the hint
    assert naive_hole_above(holes, 8, 5) == 30  # lowest fitting hole above
    assert naive_hole_above(holes, 95, 10) == 30  # nothing above: highest below, its start
    assert naive_hole_above(holes, 0, 200) is None
    assert naive_hole_below(holes, 21, 5) == 5  # top of the highest fitting hole below
    assert naive_hole_below(holes, 40, 5) == 40  # the hint itself
    assert naive_hole_below(holes, 5, 50) == 50  # nothing below: lowest above, at its top
    # SPEC 19's hole fit: 3 units beyond the size; the mapping's place follows the same rules
    assert naive_hole_above(holes, 3, 5, slack=3) == 30  # [3, 10) holds 7 < 8
    assert naive_hole_below(holes, 21, 5, slack=3) == 5  # [0, 10) holds 8: top is still 10
    assert naive_hole_below(holes, 97, 5, slack=3) == 95  # [97, 100) is short: top of [30, 100)


# -- strategies --------------------------------------------------------------------------------

values = st.tuples(st.sampled_from(TAGS), st.integers(0, 64))
points = st.integers(U_LO, U_HI)
in_bounds = st.integers(LO, HI - 1)
lengths = st.integers(1, 16)
sizes = st.one_of(st.integers(1, 8), st.integers(1, HI - LO + 2))


# -- the state machine -------------------------------------------------------------------------


class IntervalMapMachine(RuleBasedStateMachine):
    """Random insert/remove/split_at/replace/coalesce against the cell model."""

    bounded = True
    load: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self._patch = gap_load(self.load)
        self._patch.__enter__()
        self.m = new_map(self.bounded)
        self.model = CellModel((LO, HI) if self.bounded else None)
        self.copies: list[tuple[IntervalMap[Value], CellModel]] = []

    def teardown(self) -> None:
        self._patch.__exit__(None, None, None)

    # -- changing ------------------------------------------------------------------------

    @rule(s=in_bounds, length=lengths, value=values)
    def insert(self, s: int, length: int, value: Value) -> None:
        e = min(s + length, HI) if self.bounded else s + length
        if self.model.is_free(s, e):
            self.m.insert(s, e, value)
            self.model.put(s, e, value)
            self.model.tidy()
            adopt_coalesce(self.m, self.model, s, e)
        else:
            with pytest.raises(ValueError):
                self.m.insert(s, e, value)

    @rule(s=in_bounds, width=st.integers(1, 3), spaces=st.lists(st.integers(1, 6), max_size=80))
    def insert_comb(self, s: int, width: int, spaces: list[int]) -> None:
        """Many small intervals with small holes between: a hole index of several chunks."""
        a = s
        for i, space in enumerate(spaces):
            b = a + width
            if b > HI:
                break
            if self.model.is_free(a, b):
                value = (TAGS[i % len(TAGS)], i * 100)  # never joins its neighbours
                self.m.insert(a, b, value)
                self.model.put(a, b, value)
                adopt_coalesce(self.m, self.model, a, b)
            a = b + space

    @rule(s=in_bounds, e=in_bounds, value=values)
    def insert_overlapping_or_empty_fails(self, s: int, e: int, value: Value) -> None:
        if s < e and self.model.is_free(s, e):
            return
        before = list(self.m)
        with pytest.raises(ValueError):
            self.m.insert(s, e, value)
        assert list(self.m) == before

    @rule(s=points, length=st.integers(0, 64))
    def remove(self, s: int, length: int) -> None:
        e = s + length
        got = self.m.remove(s, e)
        assert got == self.model.remove(s, e)
        self.model.tidy()

    @precondition(lambda self: self.model.cells)
    @rule(data=st.data())
    def remove_one_whole_interval(self, data: st.DataObject) -> None:
        """The path of munmap of a whole mapping: no split, its neighbours' hole merged."""
        s, e, value = data.draw(st.sampled_from(self.model.intervals()), label="interval")
        assert self.m.remove(s, e) == [(s, e, value)]
        assert self.model.remove(s, e) == [(s, e, value)]
        self.model.tidy()

    @rule(x=points)
    def split_at(self, x: int) -> None:
        self.m.split_at(x)
        self.model.split(x)

    @precondition(lambda self: self.model.cells)
    @rule(data=st.data(), value=values)
    def replace(self, data: st.DataObject, value: Value) -> None:
        s, e, _ = data.draw(st.sampled_from(self.model.intervals()), label="interval")
        self.m.replace(s, value)
        self.model.put(s, e, value)

    @rule(
        s=points,
        length=st.integers(0, 64),
        frm=st.sampled_from(TAGS),
        to=st.sampled_from(TAGS),
    )
    def update(self, s: int, length: int, frm: str, to: str) -> None:
        """Retag the pieces tagged ``frm``: only they are cut out, then merged around."""
        e = s + length

        def make(v: Value) -> Value:
            return (to, v[1]) if v[0] == frm and frm != to else v

        expected = [
            (lo, hi, (v[0], v[1] + (lo - a)), (to, v[1] + (lo - a)))
            for a, b, v in self.model.intervals()
            if a < e and b > s and s < e and v[0] == frm and frm != to
            for lo, hi in [(max(a, s), min(b, e))]
        ]
        before = list(self.m)
        assert self.m.update(s, e, make) == expected
        if not expected:
            assert list(self.m) == before  # nothing changes: no cut, no merge
            return
        for lo, hi, _, _ in expected:
            self.model.split(lo)
            self.model.split(hi)
            for x in range(lo, hi):
                self.model.cells[x] = (to, self.model.cells[x][1])
        adopt_coalesce(self.m, self.model, s, e)

    @rule(s=points, length=st.integers(0, 64))
    def coalesce(self, s: int, length: int) -> None:
        self.m.coalesce(s, s + length)
        adopt_coalesce(self.m, self.model, s, s + length)

    @precondition(lambda self: len(self.copies) < 3)
    @rule(s=points, length=st.integers(1, 32), value=values)
    def copy_is_independent(self, s: int, length: int, value: Value) -> None:
        c = self.m.copy()
        cm = self.model.copy()
        assert list(c) == list(self.m)
        check_structure(c, cm.canonical())
        # Change the copy: the original must not see it.
        assert c.remove(s, s + length) == cm.remove(s, s + length)
        cm.tidy()
        hole = next(iter(cm.free_runs(LO, HI)), None)
        if hole is not None:
            c.insert(hole[0], hole[0] + 1, value)
            cm.put(hole[0], hole[0] + 1, value)
            cm.tidy()
            adopt_coalesce(c, cm, hole[0], hole[0] + 1)
        self.copies.append((c, cm))

    # -- looking up ----------------------------------------------------------------------

    @rule(s=points, length=st.integers(0, 48))
    def range_queries(self, s: int, length: int) -> None:
        e = s + length
        model = self.model
        expect_overlap = [(a, b, v) for a, b, v in model.intervals() if a < e and b > s]
        assert self.m.overlapping(s, e) == (expect_overlap if s < e else [])
        assert self.m.is_free(s, e) == model.is_free(s, e)
        covered = all(x in model.cells for x in range(s, e))
        assert self.m.is_covered(s, e) == covered
        assert list(self.m.gaps(s, e)) == model.free_runs(s, e)

    @precondition(lambda self: self.bounded)
    @rule(hint=points, size=sizes)
    def find_hole_above(self, hint: int, size: int) -> None:
        holes = self.model.holes()
        assert self.m.find_hole_above(hint, size) == naive_hole_above(holes, hint, size)

    @precondition(lambda self: self.bounded)
    @rule(hint=points, size=sizes)
    def find_hole_below(self, hint: int, size: int) -> None:
        holes = self.model.holes()
        assert self.m.find_hole_below(hint, size) == naive_hole_below(holes, hint, size)

    @precondition(lambda self: self.bounded and len(self.model.holes()) > 1)
    @rule(data=st.data())
    def hole_searches_at_every_hole_edge(self, data: st.DataObject) -> None:
        """R-PLACE-2/3 with a size that only some holes fit, from every hole's edges."""
        holes = self.model.holes()
        width = data.draw(st.sampled_from(sorted({b - a for a, b in holes})), label="width")
        size = width + data.draw(st.integers(-1, 1), label="size - width")
        if size < 1:
            return
        for a, b in holes:
            for hint in (a - 1, a, b - 1, b):
                assert self.m.find_hole_above(hint, size) == naive_hole_above(holes, hint, size)
                assert self.m.find_hole_below(hint, size) == naive_hole_below(holes, hint, size)

    @rule(hint=points, size=st.integers(-2, 0))
    def hole_search_needs_a_bounded_map_and_a_positive_size(self, hint: int, size: int) -> None:
        with pytest.raises(ValueError):
            self.m.find_hole_above(hint, size)
        with pytest.raises(ValueError):
            self.m.find_hole_below(hint, size)
        if not self.bounded:
            with pytest.raises(ValueError):
                self.m.find_hole_above(hint, 1)
            with pytest.raises(ValueError):
                self.m.gap_at(hint)

    # -- after every step ------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        model = self.model
        expect = model.intervals()
        assert list(self.m) == expect
        assert len(self.m) == len(expect)
        check_structure(self.m, model.canonical())
        by_cell = {x: (s, e, v) for s, e, v in expect for x in range(s, e)}
        for x in range(U_LO, U_HI + 1):
            assert self.m.find(x) == by_cell.get(x)
        if self.bounded:
            holes = model.holes()
            by_hole = {x: (lo, hi) for lo, hi in holes for x in range(lo, hi)}
            for x in range(U_LO, U_HI + 1):
                assert self.m.gap_at(x) == by_hole.get(x)

    @invariant()
    def copies_stay_independent(self) -> None:
        for c, cm in self.copies:
            assert list(c) == cm.intervals()
            check_structure(c, cm.canonical())


class SmallChunksMachine(IntervalMapMachine):
    """The same, with a hole index of 4-hole chunks (splits at 9): many chunks, every path."""

    load = 4


class UnboundedMachine(IntervalMapMachine):
    """An unbounded map (as object page tables use): no hole index, no placement."""

    bounded = False


machine_settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TestR_PLACE_2_3_interval_map_machine = IntervalMapMachine.TestCase
TestR_PLACE_2_3_interval_map_machine.settings = machine_settings
TestR_PLACE_2_3_interval_map_machine_small_chunks = SmallChunksMachine.TestCase
TestR_PLACE_2_3_interval_map_machine_small_chunks.settings = machine_settings
TestUnboundedIntervalMapMachine = UnboundedMachine.TestCase
TestUnboundedIntervalMapMachine.settings = settings(machine_settings, max_examples=60)


# -- placement on maps with many small holes ---------------------------------------------------

layouts = st.lists(
    st.tuples(st.integers(1, 6), st.integers(1, 9)),  # (interval width, hole width after it)
    min_size=1,
    max_size=120,
)


def build(first_hole: int, layout: list[tuple[int, int]], hi: int) -> IntervalMap[Value]:
    m = IntervalMap[Value](split=split_value, join=join_values, bounds=(0, hi))
    pos = first_hole
    for i, (width, hole) in enumerate(layout):
        if pos + width > hi:
            break
        m.insert(pos, pos + width, ("x", i * 1000))
        pos += width + hole
    return m


def holes_of(m: IntervalMap[Value], hi: int) -> list[tuple[int, int]]:
    """The holes by a walk over the intervals (not through the hole index)."""
    out: list[tuple[int, int]] = []
    pos = 0
    for s, e, _ in m:
        if s > pos:
            out.append((pos, s))
        pos = e
    if pos < hi:
        out.append((pos, hi))
    return out


@pytest.mark.parametrize("load", [None, 4, 2])
@settings(max_examples=200, deadline=None)
@given(
    first_hole=st.integers(0, 12),
    layout=layouts,
    extra=st.integers(0, 40),
    hints=st.lists(st.integers(-4, 1400), max_size=24),
    size_list=st.lists(st.integers(1, 30), max_size=6),
)
def test_R_PLACE_2_and_3_hole_searches_match_naive_scans(
    load: int | None,
    first_hole: int,
    layout: list[tuple[int, int]],
    extra: int,
    hints: list[int],
    size_list: list[int],
) -> None:
    """Every hint around every hole, several sizes, against R-PLACE-2/3 read literally."""
    with gap_load(load):
        hi = first_hole + sum(w + h for w, h in layout) + extra
        m = build(first_hole, layout, hi)
        m.check()
        holes = holes_of(m, hi)
        widths = sorted({b - a for a, b in holes})
        size_set = {1, *size_list, *widths, *(w + 1 for w in widths[-3:]), hi, hi + 1}
        hint_set = {-1, 0, hi - 1, hi, hi + 5, *hints}
        for a, b in holes[:: max(1, len(holes) // 12)]:
            hint_set.update((a - 1, a, a + 1, b - 1, b))
        for size in sorted(size_set):
            for hint in sorted(hint_set):
                assert m.find_hole_above(hint, size) == naive_hole_above(holes, hint, size), (
                    f"find_hole_above({hint}, {size})"
                )
                assert m.find_hole_below(hint, size) == naive_hole_below(holes, hint, size), (
                    f"find_hole_below({hint}, {size})"
                )


@pytest.mark.parametrize("load", [None, 4])
@settings(max_examples=200, deadline=None)
@given(
    layout=layouts,
    removals=st.lists(st.tuples(st.integers(0, 1100), st.integers(1, 80)), max_size=12),
    hints=st.lists(st.integers(0, 1100), min_size=1, max_size=16),
    size_list=st.lists(st.integers(1, 40), min_size=1, max_size=4),
)
def test_R_PLACE_2_and_3_after_removals_merge_holes_across_chunks(
    load: int | None,
    layout: list[tuple[int, int]],
    removals: list[tuple[int, int]],
    hints: list[int],
    size_list: list[int],
) -> None:
    """Removing ranges merges holes (and empties hole-index chunks); searches stay exact."""
    with gap_load(load):
        hi = 1 + sum(w + h for w, h in layout)
        m = build(1, layout, hi)
        for s, n in removals:
            m.remove(s, s + n)
            m.check()
        holes = holes_of(m, hi)
        for size in size_list:
            for hint in hints:
                assert m.find_hole_above(hint, size) == naive_hole_above(holes, hint, size)
                assert m.find_hole_below(hint, size) == naive_hole_below(holes, hint, size)


@settings(max_examples=200, deadline=None)
@given(layout=layouts, s=st.integers(0, 600), n=st.integers(1, 200), value=values)
def test_copy_is_independent_of_the_original(
    layout: list[tuple[int, int]], s: int, n: int, value: Value
) -> None:
    """``copy()``: changing either map leaves the other (and its hole index) as it was."""
    with gap_load(4):
        hi = 1 + sum(w + h for w, h in layout)
        m = build(1, layout, hi)
        before = list(m)
        c = m.copy()
        c.remove(s, s + n)
        hole = m.find_hole_above(0, 1)
        c_hole = c.find_hole_above(0, 1)
        assert c_hole is not None
        c.insert(c_hole, c_hole + 1, value)
        c.check()
        assert list(m) == before
        m.check()
        assert m.find_hole_above(0, 1) == hole
        after_c = list(c)
        m.remove(0, hi)
        m.check()
        assert list(c) == after_c
        c.check()


@settings(max_examples=50, deadline=None)
@given(layout=layouts, s=st.integers(0, 600), n=st.integers(1, 200))
def test_deepcopy_and_pickle_give_an_equal_independent_map(
    layout: list[tuple[int, int]], s: int, n: int
) -> None:
    """``Kernel.snapshot`` deep-copies address spaces: the copy has the same intervals and
    holes, and a change to it leaves the original as it was."""
    with gap_load(4):
        hi = 1 + sum(w + h for w, h in layout)
        m = build(1, layout, hi)
        before = list(m)
        for c in (copy.deepcopy(m), pickle.loads(pickle.dumps(m))):
            c.check()
            assert list(c) == before
            assert list(c.gaps(0, hi)) == list(m.gaps(0, hi))
            c.remove(s, s + n)
            c.check()
            assert list(m) == before
        m.check()


@pytest.mark.parametrize("direction", ["first", "last"])
def test_R_PLACE_5_a_stale_chunk_bound_is_made_exact_by_the_search_it_misleads(
    direction: str,
) -> None:
    """Carving a chunk's largest hole leaves the chunk's bound high (no rescan); a search
    the bound misleads skips the chunk, finds the real fit and makes the bound exact."""
    with gap_load(2):  # chunks split above 4 holes
        g = intervals._GapIndex()
        for start, size in [(0, 1), (10, 5), (20, 1), (30, 1), (40, 1), (50, 3), (60, 1)]:
            g.add(start, size)
        stale = next(i for i, starts in enumerate(g._starts) if 10 in starts)
        far = next(i for i, starts in enumerate(g._starts) if 50 in starts)
        assert stale != far
        g.carve(10, 15, 11, 15)  # the size-5 hole keeps one unit
        assert g._maxes[stale] == 5  # stale: an upper bound, not the maximum
        if direction == "first":
            assert g.first_fit(0, 3) == (50, 3)
        else:
            assert g.last_fit(45, 3) is None  # nothing below 45 holds 3 units
            assert g.last_fit(100, 3) == (50, 3)
        assert g._maxes[stale] == max(g._sizes[stale]) == 1
        assert list(g.items()) == [(0, 1), (10, 1), (20, 1), (30, 1), (40, 1), (50, 3), (60, 1)]


# -- the start index on its own ----------------------------------------------------------------

index_ops = st.lists(
    st.tuples(st.sampled_from(["put", "pop", "pop_exact"]), st.integers(0, 60)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    ops=index_ops,
    probes=st.lists(st.integers(-2, 62), max_size=12),
    load=st.sampled_from([1, 2, 4]),
)
def test_start_index_chunks_match_a_sorted_dict(
    ops: list[tuple[str, int]], probes: list[int], load: int
) -> None:
    """The chunked start index against a plain dict and full scans: puts split chunks,
    ``pop`` and ``pop_exact`` (of the start at a drawn rank) empty and join them; every
    lookup agrees with a scan, and the chunks stay balanced (``check``) after every step."""
    with gap_load(load):
        index = intervals._Index[int]()
        model: dict[int, tuple[int, int]] = {}  # start -> (end, value)

        def triple(s: int | None) -> tuple[int, int, int] | None:
            return None if s is None else (s, *model[s])

        for step, (op, n) in enumerate(ops):
            if op == "put":  # a new start, or a new value for a present one
                index.put(n, n + 1, step)  # unit intervals: disjoint, as in a map
                model[n] = (n + 1, step)
            elif model:
                start = sorted(model)[n % len(model)]
                if op == "pop":
                    assert index.pop(start) == triple(start)
                    del model[start]
                else:  # pop_exact: a wrong end changes nothing, the right one pops
                    end, value = model[start]
                    assert index.pop_exact(start, end + 1) is None
                    del model[start]
                    before = max((k for k in model if k < start), default=None)
                    after = min((k for k in model if k > start), default=None)
                    assert index.pop_exact(start, end) == (value, triple(before), triple(after))
            index.check()
            assert list(index) == [triple(s) for s in sorted(model)]
            assert len(index) == len(model)
            copy = index.copy()
            assert list(copy) == list(index)
        for x in probes:
            floor = max((k for k in model if k <= x), default=None)
            after = min((k for k in model if k > x), default=None)
            assert index.get(x) == (triple(x) if x in model else None)
            assert index.floor(x) == triple(floor)
            assert index.ceil(x) == min((k for k in model if k >= x), default=None)
            assert index.floor_and_next(x) == (triple(floor), triple(after))
            assert index.overlapping(x, x + 9) == [
                triple(k) for k in sorted(model) if k < x + 9 and model[k][0] > x
            ]
        if model:  # a copy is independent of the original
            start = min(model)
            copy.pop(start)
            assert index.get(start) == triple(start)


@pytest.mark.parametrize("start", [-1, 1 << 64])
def test_insert_refuses_a_start_outside_64_bits_and_keeps_its_intervals(start: int) -> None:
    """Interval starts are 64-bit addresses or offsets: ValueError naming the start and
    the range, nothing changed."""
    m = IntervalMap[int](bounds=(0, 1 << 64))
    m.insert(5, 6, 0)
    m.insert(10, 11, 0)
    with pytest.raises(ValueError, match=rf"{start:#x} lies outside \[0, 2\*\*64\)"):
        m.insert(start, start + 1, 1)
    assert list(m) == [(5, 6, 0), (10, 11, 0)]
    m.check()


def test_start_index_pop_of_an_absent_start_is_a_key_error() -> None:
    index = intervals._Index[int]()
    index.put(5, 6, 0)
    with pytest.raises(KeyError):
        index.pop(7)
    with pytest.raises(KeyError):
        index.pop(3)  # below every start
    assert list(index) == [(5, 6, 0)]
