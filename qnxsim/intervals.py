"""IntervalMap: the one sorted interval map that every sorted-range need of qnxsim uses.

Address spaces, object page tables, physical frame allocation and frame contents are all
``IntervalMap`` instances.  The intervals live in a ``sortedcontainers.SortedKeyList``; the
free holes of a bounded map in an index of their own.  Nothing in here knows about QNX.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator
from itertools import pairwise
from operator import itemgetter
from typing import Generic, TypeVar

from sortedcontainers import SortedKeyList

V = TypeVar("V")

#: ``split(value, start, at)`` gives the value of the right-hand piece that starts at ``at``
#: when the interval ``[start, end)`` holding ``value`` is cut at ``at``.
SplitFn = Callable[[V, int, int], V]
#: ``join(left, left_start, left_end, right)`` gives the value of the merged interval
#: (which starts at ``left_start``), or None when the two must stay apart.
JoinFn = Callable[[V, int, int, V], "V | None"]

#: Interval starts are 64-bit addresses or offsets: ``insert`` refuses any other.
_KEY_LIMIT = 1 << 64
#: ``_Index.pop_exact``: the removed value, and the intervals before and after it.
_Popped = tuple[V, tuple[int, int, V] | None, tuple[int, int, V] | None]
_GAP_LOAD = 256  # gaps per chunk of the gap index; chunks split at twice this
_start_of = itemgetter(0)  # the key of an interval triple in the start index


def _keep(value: V, start: int, at: int) -> V:
    return value


class _GapIndex:
    """The free holes of an IntervalMap, for first-fit searches without a walk over holes.

    Why a structure of its own: placement asks for the lowest (or highest) hole beyond a
    hint that is at least ``size`` long (R-PLACE-2/3), and must not look at every hole on
    the way (R-PLACE-5).  ``sortedcontainers`` orders by one key and keeps nothing per
    sublist but its last key, so a fit search there would test the holes one by one.

    What it borrows from ``SortedList``: the layout, a list of sorted sublists (chunks) of
    at most ``2 * _GAP_LOAD`` holes, split in two when they grow past that, with a list of
    each chunk's first start bisected to find a chunk.  What it adds: beside each chunk an
    upper bound of its largest hole size (``_maxes``), so that a search skips every chunk
    that cannot hold the request.  A fit search bisects to the chunk, then narrows by
    halving with C-level ``max()`` over slices, so the Python-level work is O(log n)
    steps; the C-level work is O(sqrt n) element reads with small constants.

    The bounds are kept exact on growth and left alone when holes shrink or go: a carve or
    a removal then costs no ``max()`` over a chunk.  A search misled by a stale bound makes
    that bound exact and goes on, so each shrink costs at most one later ``max()``.
    """

    __slots__ = ("_firsts", "_maxes", "_sizes", "_starts")

    def __init__(self) -> None:
        self._starts: list[list[int]] = []
        self._sizes: list[list[int]] = []
        self._firsts: list[int] = []
        self._maxes: list[int] = []

    def __len__(self) -> int:
        return sum(len(c) for c in self._starts)

    def items(self) -> Iterator[tuple[int, int]]:
        for starts, sizes in zip(self._starts, self._sizes, strict=True):
            yield from zip(starts, sizes, strict=True)

    def copy(self) -> _GapIndex:
        """An independent copy.  O(n), in C."""
        new = _GapIndex()
        new._starts = [chunk[:] for chunk in self._starts]
        new._sizes = [chunk[:] for chunk in self._sizes]
        new._firsts = self._firsts[:]
        new._maxes = self._maxes[:]
        return new

    def add(self, start: int, size: int) -> None:
        firsts = self._firsts
        if not firsts:
            self._starts.append([start])
            self._sizes.append([size])
            firsts.append(start)
            self._maxes.append(size)
            return
        ci = bisect_right(firsts, start) - 1
        if ci < 0:
            ci = 0
        starts = self._starts[ci]
        sizes = self._sizes[ci]
        pos = bisect_left(starts, start)
        starts.insert(pos, start)
        sizes.insert(pos, size)
        if pos == 0:
            firsts[ci] = start
        if size > self._maxes[ci]:
            self._maxes[ci] = size
        if len(starts) > 2 * _GAP_LOAD:
            self._split_chunk(ci)

    def _split_chunk(self, ci: int) -> None:
        starts = self._starts[ci]
        sizes = self._sizes[ci]
        right_starts = starts[_GAP_LOAD:]
        right_sizes = sizes[_GAP_LOAD:]
        del starts[_GAP_LOAD:]
        del sizes[_GAP_LOAD:]
        self._starts.insert(ci + 1, right_starts)
        self._sizes.insert(ci + 1, right_sizes)
        self._firsts.insert(ci + 1, right_starts[0])
        self._maxes[ci] = max(sizes)
        self._maxes.insert(ci + 1, max(right_sizes))

    def _drop_chunk(self, ci: int) -> None:
        del self._starts[ci], self._sizes[ci], self._firsts[ci], self._maxes[ci]

    def discard_range(self, lo: int, hi: int) -> None:
        """Remove every hole whose start lies in ``[lo, hi)``."""
        firsts = self._firsts
        ci = max(bisect_right(firsts, lo) - 1, 0)
        while ci < len(firsts) and firsts[ci] < hi:
            starts = self._starts[ci]
            a = bisect_left(starts, lo)
            b = bisect_left(starts, hi)
            if a < b:
                del starts[a:b]
                del self._sizes[ci][a:b]
                if not starts:
                    self._drop_chunk(ci)
                    continue
                firsts[ci] = starts[0]  # the chunk's bound stays an upper bound
            ci += 1

    def carve(self, hole_lo: int, hole_hi: int, start: int, end: int) -> None:
        """The hole ``[hole_lo, hole_hi)`` loses ``[start, end)`` (inside it).  O(log n)."""
        firsts = self._firsts
        ci = bisect_right(firsts, hole_lo) - 1
        starts = self._starts[ci]
        sizes = self._sizes[ci]
        pos = bisect_left(starts, hole_lo)
        assert starts[pos] == hole_lo, "the hole index holds every hole"
        if hole_lo < start:
            sizes[pos] = start - hole_lo  # smaller: the chunk's bound still holds
            if end < hole_hi:
                pos += 1
                starts.insert(pos, end)
                sizes.insert(pos, hole_hi - end)
                if len(starts) > 2 * _GAP_LOAD:
                    self._split_chunk(ci)
        elif end < hole_hi:
            starts[pos] = end
            sizes[pos] = hole_hi - end
            if not pos:
                firsts[ci] = end
        else:
            del starts[pos]
            del sizes[pos]
            if not starts:
                self._drop_chunk(ci)
            elif not pos:
                firsts[ci] = starts[0]

    def merge(self, lo: int, hi: int) -> None:
        """``[lo, hi)`` became one hole: it replaces every hole starting inside it."""
        firsts = self._firsts
        ci = bisect_right(firsts, lo) - 1
        if ci < 0 or (ci + 1 < len(firsts) and firsts[ci + 1] < hi):
            self.discard_range(lo, hi)  # the holes lie in more than one chunk
            self.add(lo, hi - lo)
            return
        starts = self._starts[ci]
        sizes = self._sizes[ci]
        a = bisect_left(starts, lo)
        b = bisect_left(starts, hi, a)
        starts[a:b] = (lo,)
        sizes[a:b] = (hi - lo,)
        if not a:
            firsts[ci] = lo
        if hi - lo > self._maxes[ci]:
            self._maxes[ci] = hi - lo
        if len(starts) > 2 * _GAP_LOAD:
            self._split_chunk(ci)

    def first_fit(self, lo: int, size: int) -> tuple[int, int] | None:
        """The lowest hole starting at or above ``lo`` of at least ``size``, as (start, size)."""
        firsts = self._firsts
        if not firsts:
            return None
        maxes = self._maxes
        ci = max(bisect_right(firsts, lo) - 1, 0)
        starts = self._starts[ci]
        sizes = self._sizes[ci]
        pos = bisect_left(starts, lo)
        if pos < len(sizes) and maxes[ci] >= size:
            hit = _first_at_least(sizes, pos, len(sizes), size)
            if hit >= 0:
                return starts[hit], sizes[hit]
            if not pos:
                maxes[ci] = max(sizes)  # the whole chunk was searched: its bound was stale
        cj = ci + 1
        while (cj := _first_at_least(maxes, cj, len(maxes), size)) >= 0:
            found = self._fit_in_chunk(cj, size, _first_at_least)
            if found is not None:
                return found
            cj += 1
        return None

    def last_fit(self, hi: int, size: int) -> tuple[int, int] | None:
        """The highest hole starting below ``hi`` of at least ``size``, as (start, size)."""
        firsts = self._firsts
        ci = bisect_left(firsts, hi) - 1
        if ci < 0:
            return None
        maxes = self._maxes
        starts = self._starts[ci]
        sizes = self._sizes[ci]
        pos = bisect_left(starts, hi)
        if maxes[ci] >= size:
            hit = _last_at_least(sizes, 0, pos, size)
            if hit >= 0:
                return starts[hit], sizes[hit]
            if pos == len(sizes):
                maxes[ci] = max(sizes)  # the whole chunk was searched: its bound was stale
        cj = ci
        while (cj := _last_at_least(maxes, 0, cj, size)) >= 0:
            found = self._fit_in_chunk(cj, size, _last_at_least)
            if found is not None:
                return found
        return None

    def _fit_in_chunk(
        self, cj: int, size: int, pick: Callable[[list[int], int, int, int], int]
    ) -> tuple[int, int] | None:
        """The hole of chunk ``cj`` that ``pick`` chooses among those of at least ``size``,
        as (start, size); None when the chunk's bound promised one wrongly (the bound is
        then made exact)."""
        sizes = self._sizes[cj]
        hit = pick(sizes, 0, len(sizes), size)
        if hit >= 0:
            return self._starts[cj][hit], sizes[hit]
        self._maxes[cj] = max(sizes)  # a stale bound misled the search: make it exact
        return None


def _first_at_least(values: list[int], lo: int, hi: int, size: int) -> int:
    """Index of the first ``values[i] >= size`` with ``lo <= i < hi``, else -1."""
    if lo >= hi or max(values[lo:hi]) < size:
        return -1
    while hi - lo > 8:
        mid = (lo + hi) // 2
        if max(values[lo:mid]) >= size:
            hi = mid
        else:
            lo = mid
    for i in range(lo, hi):
        if values[i] >= size:
            return i
    return -1  # pragma: no cover - the max() above guarantees a hit


def _last_at_least(values: list[int], lo: int, hi: int, size: int) -> int:
    """Index of the last ``values[i] >= size`` with ``lo <= i < hi``, else -1."""
    if lo >= hi or max(values[lo:hi]) < size:
        return -1
    while hi - lo > 8:
        mid = (lo + hi) // 2
        if max(values[mid:hi]) >= size:
            lo = mid
        else:
            hi = mid
    for i in range(hi - 1, lo - 1, -1):
        if values[i] >= size:
            return i
    return -1  # pragma: no cover - the max() above guarantees a hit


class _Index(SortedKeyList, Generic[V]):  # type: ignore[misc]  # sortedcontainers is untyped
    """The intervals of an IntervalMap in start order: a ``SortedKeyList`` of
    ``(start, end, value)`` triples keyed by their start.

    ``SortedKeyList`` keeps its values in sublists (``_lists``) with their keys beside them
    (``_keys``) and each sublist's last key (``_maxes``).  Its positional API (indexing,
    ``bisect_key_right``) turns a place in a sublist into a global index through a tree
    walked in Python, which costs more than the lookup itself among 100,000 keys.  These
    methods bisect ``_maxes`` and one sublist of keys, both in C, and read the triple at
    the same place: a lookup is one bisect per level and hands back the stored triple, with
    no dict between a start and its interval.  Changes go through ``SortedKeyList``'s own
    ``_expand`` and ``_delete``, which keep its sublists balanced.  Triples are never
    compared, so values need no ordering; ``SortedKeyList`` methods that compare values
    (``remove``, ``discard``, ``in``) are not used.

    Methods for looking up: ``get``, ``floor``, ``ceil``, ``floor_and_next``,
    ``overlapping``, iteration, ``len``.  Methods for changing: ``put``, ``pop``,
    ``pop_exact``.  Other: ``copy``, ``check``.

    >>> ix = _Index(); ix.put(10, 15, "a"); ix.put(20, 25, "b"); ix.put(30, 35, "c")
    >>> ix.floor(22), ix.floor(5), ix.ceil(21), ix.overlapping(12, 30)
    ((20, 25, 'b'), None, 30, [(10, 15, 'a'), (20, 25, 'b')])
    """

    def __init__(self, triples: Iterable[tuple[int, int, V]] | None = None) -> None:
        super().__init__(triples, key=_start_of)

    def __reduce__(self) -> tuple[type[_Index[V]], tuple[list[tuple[int, int, V]]]]:
        """Pickle and ``copy.deepcopy`` (``Kernel.snapshot``) rebuild from the triples."""
        return _Index, (list(self),)

    def copy(self) -> _Index[V]:
        """An independent copy (values shared).  O(n), in C."""
        new: _Index[V] = _Index()
        new._load = self._load
        new._lists = [sub[:] for sub in self._lists]
        new._keys = [sub[:] for sub in self._keys]
        new._maxes = self._maxes[:]
        new._len = self._len
        return new

    # -- looking up ---------------------------------------------------------------------

    def get(self, start: int) -> tuple[int, int, V] | None:
        """The interval that begins at ``start``, or None.  O(log n)."""
        maxes = self._maxes
        pos = bisect_left(maxes, start)
        if pos == len(maxes):
            return None
        keys = self._keys[pos]
        idx = bisect_left(keys, start)
        if keys[idx] != start:
            return None
        hit: tuple[int, int, V] = self._lists[pos][idx]
        return hit

    def floor(self, x: int) -> tuple[int, int, V] | None:
        """The interval with the greatest start ``<= x``, or None.  O(log n)."""
        maxes = self._maxes
        if not maxes:
            return None
        pos = bisect_left(maxes, x)
        if pos == len(maxes):
            last: tuple[int, int, V] = self._lists[-1][-1]
            return last
        idx = bisect_right(self._keys[pos], x)
        if idx:
            hit: tuple[int, int, V] = self._lists[pos][idx - 1]
            return hit
        return self._lists[pos - 1][-1] if pos else None

    def ceil(self, x: int) -> int | None:
        """The least start ``>= x``, or None.  O(log n)."""
        maxes = self._maxes
        pos = bisect_left(maxes, x)
        if pos == len(maxes):
            return None
        keys = self._keys[pos]
        start: int = keys[bisect_left(keys, x)]
        return start

    def floor_and_next(self, x: int) -> tuple[tuple[int, int, V] | None, tuple[int, int, V] | None]:
        """The interval with the greatest start ``<= x`` and the one with the least start
        ``> x`` (None where there is none).  O(log n).

        >>> ix = _Index(); ix.put(10, 15, "a"); ix.put(20, 25, "b")
        >>> ix.floor_and_next(10), ix.floor_and_next(5)
        (((10, 15, 'a'), (20, 25, 'b')), (None, (10, 15, 'a')))
        """
        maxes = self._maxes
        lists = self._lists
        pos = bisect_right(maxes, x)  # the first sublist with a start above x
        if pos == len(maxes):
            return (lists[-1][-1] if maxes else None), None
        sub = lists[pos]
        idx = bisect_right(self._keys[pos], x)
        if idx:
            return sub[idx - 1], sub[idx]
        return (lists[pos - 1][-1] if pos else None), sub[0]

    def overlapping(self, start: int, end: int) -> list[tuple[int, int, V]]:
        """The intervals that overlap ``[start, end)``, ascending.  O(log n + k), sliced in C.

        >>> ix = _Index(); ix.put(0, 2, 0); ix.put(4, 5, 4); ix.put(6, 9, 6)
        >>> ix.overlapping(1, 6), ix.overlapping(2, 4), ix.overlapping(8, 20)
        ([(0, 2, 0), (4, 5, 4)], [], [(6, 9, 6)])
        """
        maxes = self._maxes
        if not maxes or start >= end:
            return []
        lists, keys = self._lists, self._keys
        pos = bisect_left(maxes, start)  # find the interval that may begin before ``start``
        if pos == len(maxes):
            pos -= 1
            idx = len(keys[pos]) - 1
        else:
            idx = bisect_right(keys[pos], start) - 1
            if idx < 0 and pos:
                pos -= 1
                idx = len(keys[pos]) - 1
        sub = lists[pos]
        if idx < 0:
            idx = 0  # every interval begins after ``start``
        elif sub[idx][1] <= start:
            idx += 1  # that interval ends before the range
        stop = bisect_left(keys[pos], end, idx)
        out: list[tuple[int, int, V]] = sub[idx:stop]
        while stop == len(sub) and pos + 1 < len(lists):  # the range goes on past this sublist
            pos += 1
            sub = lists[pos]
            stop = bisect_left(keys[pos], end)
            out += sub[:stop]
        return out

    # -- changing -----------------------------------------------------------------------

    def put(self, start: int, end: int, value: V) -> None:
        """Map ``start`` to ``(end, value)``, replacing an interval that begins there.
        O(log n) plus a move of at most ``2 * load`` pointers.

        >>> ix = _Index(); ix.put(30, 35, "c"); ix.put(10, 15, "a"); ix.put(10, 12, "b")
        >>> list(ix)
        [(10, 12, 'b'), (30, 35, 'c')]
        """
        maxes = self._maxes
        item = (start, end, value)
        pos = bisect_left(maxes, start)
        if pos < len(maxes):
            keys = self._keys[pos]
            idx = bisect_left(keys, start)
            if keys[idx] == start:
                self._lists[pos][idx] = item
                return
            keys.insert(idx, start)
            self._lists[pos].insert(idx, item)
        elif maxes:  # above every start: it ends the last sublist
            pos -= 1
            self._keys[pos].append(start)
            self._lists[pos].append(item)
            maxes[pos] = start
        else:
            self._keys.append([start])
            self._lists.append([item])
            maxes.append(start)
        self._len += 1
        self._expand(pos)  # splits an overlong sublist

    def pop(self, start: int) -> tuple[int, int, V]:
        """Remove and return the interval that begins at ``start``; KeyError if none does.
        O(log n) plus a move of at most ``2 * load`` pointers."""
        maxes = self._maxes
        pos = bisect_left(maxes, start)
        if pos < len(maxes):
            keys = self._keys[pos]
            idx = bisect_left(keys, start)
            if keys[idx] == start:
                hit: tuple[int, int, V] = self._lists[pos][idx]
                self._delete(pos, idx)  # joins a short sublist to a neighbour
                return hit
        raise KeyError(start)

    def pop_exact(self, start: int, end: int) -> _Popped[V] | None:
        """Remove the interval ``[start, end)`` when it is one interval here; returns its
        value and the intervals before and after it, else None with nothing changed.
        O(log n).

        >>> ix = _Index(); ix.put(10, 15, "a"); ix.put(20, 25, "b"); ix.put(30, 35, "c")
        >>> ix.pop_exact(20, 24), ix.pop_exact(20, 25)
        (None, ('b', (10, 15, 'a'), (30, 35, 'c')))
        >>> ix.pop_exact(10, 15)
        ('a', None, (30, 35, 'c'))
        """
        maxes = self._maxes
        pos = bisect_left(maxes, start)
        if pos == len(maxes):
            return None
        lists = self._lists
        sub = lists[pos]
        idx = bisect_left(self._keys[pos], start)
        s, e, v = sub[idx]
        if s != start or e != end:
            return None
        before = sub[idx - 1] if idx else (lists[pos - 1][-1] if pos else None)
        if idx + 1 < len(sub):
            after = sub[idx + 1]
        else:
            after = lists[pos + 1][0] if pos + 1 < len(lists) else None
        self._delete(pos, idx)
        return v, before, after

    def check(self) -> None:
        """Assert the sublist invariants: starts strictly ascending, each key the start of
        the triple beside it, maxima and length exact, every sublist at most twice the load
        and, but for the last (which a bulk load may leave short), longer than half of it."""
        keys, lists, load = self._keys, self._lists, self._load
        assert [len(k) for k in keys] == [len(sub) for sub in lists], "keys out of step"
        flat = [k for ks in keys for k in ks]
        assert flat == [t[0] for sub in lists for t in sub], "a key is not its interval's start"
        assert self._maxes == [k[-1] for k in keys], "sublist maxima out of step"
        assert self._len == len(flat), "length out of step"
        assert all(a < b for a, b in pairwise(flat)), "starts not ascending"
        for ks in keys:
            assert ks and len(ks) <= 2 * load, "sublist too long or empty"
        assert all(len(ks) > load >> 1 for ks in keys[:-1]), "sublist too short"


class IntervalMap(Generic[V]):
    """A map from non-overlapping half-open ranges ``[start, end)`` to values.

    Each interval's value describes the interval from its start; ``split`` tells how the
    value of a right-hand piece is derived when an interval is cut, and ``join`` tells
    whether two touching intervals merge.  With ``bounds=(lo, hi)`` the map also keeps an
    index of the free holes inside the bounds, for placement searches.

    Methods for looking up: ``find``, ``overlapping``, ``is_free``, ``is_covered``, ``covering``,
    ``gap_at``, ``gaps``, iteration, ``len``.
    Methods for changing: ``insert``, ``remove``, ``update``, ``split_at``, ``replace``,
    ``coalesce``.
    Methods for placement (bounded maps only): ``find_hole_above``, ``find_hole_below``.
    Other: ``copy``, ``check``.

    >>> m = IntervalMap[str](bounds=(0, 100))
    >>> m.insert(10, 20, "a"); m.insert(30, 40, "b")
    >>> m.find(15), m.find(25)
    ((10, 20, 'a'), None)
    >>> m.remove(15, 35)
    [(15, 20, 'a'), (30, 35, 'b')]
    >>> list(m)
    [(10, 15, 'a'), (35, 40, 'b')]
    >>> m.find_hole_above(0, 20)
    15
    """

    __slots__ = ("_bounds", "_gaps", "_index", "_join", "_split")

    def __init__(
        self,
        *,
        split: SplitFn[V] | None = None,
        join: JoinFn[V] | None = None,
        bounds: tuple[int, int] | None = None,
    ) -> None:
        self._index: _Index[V] = _Index()
        self._split: SplitFn[V] = split if split is not None else _keep
        self._join = join
        self._bounds = bounds
        self._gaps: _GapIndex | None = None
        if bounds is not None:
            lo, hi = bounds
            if lo >= hi:
                raise ValueError("empty bounds")
            self._gaps = _GapIndex()
            self._gaps.add(lo, hi - lo)

    # -- looking up ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._index)

    def __iter__(self) -> Iterator[tuple[int, int, V]]:
        return iter(self._index)

    def find(self, addr: int) -> tuple[int, int, V] | None:
        """The interval containing ``addr``, or None.  O(log n)."""
        hit = self._index.floor(addr)
        return hit if hit is not None and addr < hit[1] else None

    def overlapping(self, start: int, end: int) -> list[tuple[int, int, V]]:
        """Every interval that overlaps ``[start, end)``, unclipped.  O(log n + k).

        >>> m = IntervalMap[int](); m.insert(0, 10, 1); m.insert(20, 30, 2)
        >>> m.overlapping(5, 21)
        [(0, 10, 1), (20, 30, 2)]
        """
        return self._index.overlapping(start, end)

    def is_free(self, start: int, end: int) -> bool:
        """True when nothing overlaps ``[start, end)``.  O(log n)."""
        if start >= end:
            return True  # an empty range overlaps nothing (as ``overlapping`` says)
        last = self._index.floor(end - 1)  # the last interval that starts before ``end``
        return last is None or last[1] <= start

    def is_covered(self, start: int, end: int) -> bool:
        """True when every point of ``[start, end)`` lies in some interval.  O(log n + k)."""
        return self.covering(start, end) is not None

    def covering(self, start: int, end: int) -> list[tuple[int, int, V]] | None:
        """``overlapping(start, end)`` when those intervals cover every point of the range,
        else None.  O(log n + k)."""
        pieces = self.overlapping(start, end)
        pos = start
        for s, e, _ in pieces:
            if s > pos:
                return None
            pos = e
        return pieces if pos >= end else None

    def gap_at(self, addr: int) -> tuple[int, int] | None:
        """The free hole ``[lo, hi)`` containing ``addr`` inside the bounds, or None."""
        if self._bounds is None:
            raise ValueError("gap_at needs a bounded map")
        lo, hi = self._bounds
        if not lo <= addr < hi:
            return None
        before = self._index.floor(addr)
        if before is not None:
            if before[1] > addr:
                return None
            lo = max(lo, before[1])
        c = self._index.ceil(addr)
        if c is not None:
            hi = min(hi, c)
        return lo, hi

    def gaps(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """The free holes inside ``[start, end)``, clipped, ascending.  O(log n + k)."""
        pos = start
        for s, e, _ in self.overlapping(start, end):
            if s > pos:
                yield pos, s
            pos = max(pos, e)
        if pos < end:
            yield pos, end

    # -- changing -----------------------------------------------------------------------

    def insert(self, start: int, end: int, value: V) -> None:
        """Map ``[start, end)`` to ``value``; the range must be free and ``start`` must lie
        in ``[0, 2**64)`` (ValueError otherwise, with nothing changed).  O(log n).

        The new interval is merged with touching neighbours when ``join`` allows it.
        """
        if not 0 <= start < end or start >= _KEY_LIMIT:
            if start >= end:
                raise ValueError(f"empty interval [{start:#x}, {end:#x})")
            raise ValueError(f"interval start {start:#x} lies outside [0, 2**64)")
        index = self._index
        before, after = index.floor_and_next(start)  # one lookup serves every step below
        before_end = before[1] if before is not None else None
        after_start = after[0] if after is not None else None
        if (before_end is not None and before_end > start) or (
            after_start is not None and after_start < end
        ):
            raise ValueError(f"[{start:#x}, {end:#x}) overlaps an existing interval")
        index.put(start, end, value)
        gaps, bounds = self._gaps, self._bounds
        if gaps is not None and bounds is not None:
            lo, hi = bounds
            if lo <= start and end <= hi:
                hole_lo = before_end if before_end is not None and before_end > lo else lo
                hole_hi = after_start if after_start is not None and after_start < hi else hi
                gaps.carve(hole_lo, hole_hi, start, end)
            else:
                self._refresh_gaps(start, end)
        join = self._join
        if join is None:
            return
        if after is not None and after_start == end:  # merge with the right-hand neighbour
            merged = join(value, start, end, after[2])  # (R-MAP-2 for address spaces)
            if merged is not None:
                index.pop(end)
                end, value = after[1], merged
                index.put(start, end, value)
        if before is not None and before_end == start:  # and with the left-hand one
            merged = join(before[2], before[0], start, value)
            if merged is not None:
                index.pop(start)
                index.put(before[0], end, merged)

    def split_at(self, addr: int) -> None:
        """Make ``addr`` an interval boundary if an interval spans it.  O(log n)."""
        hit = self.find(addr)
        if hit is None or hit[0] == addr:
            return
        s, e, v = hit
        self._index.put(s, addr, v)
        self._index.put(addr, e, self._split(v, s, addr))

    def remove(self, start: int, end: int) -> list[tuple[int, int, V]]:
        """Unmap ``[start, end)``; returns the removed pieces, clipped.  O(log n + k)."""
        if start >= end:
            return []
        index = self._index
        popped = index.pop_exact(start, end)
        if popped is not None:  # exactly one whole interval: no splits
            value, before, after = popped
            after_start = after[0] if after is not None else None
            removed = [(start, end, value)]
        else:
            last = index.floor(end - 1)
            if last is None or last[1] <= start:
                return []  # nothing overlaps the range
            self.split_at(start)
            self.split_at(end)
            removed = self.overlapping(start, end)
            for s, _, _ in removed:
                index.pop(s)
            before, after_start = index.floor(start - 1), index.ceil(end)
        gaps, bounds = self._gaps, self._bounds
        if gaps is not None and bounds is not None:
            # Everything between the neighbours of [start, end) is now one hole.
            lo, hi = bounds
            hole_lo = max(before[1] if before is not None else lo, lo)
            hole_hi = min(after_start if after_start is not None else hi, hi)
            if hole_lo < hole_hi:
                gaps.merge(hole_lo, hole_hi)
        return removed

    def replace(self, start: int, value: V) -> None:
        """Give the interval that starts at ``start`` a new value (no merging).  O(1)."""
        hit = self._index.get(start)
        if hit is None:
            raise KeyError(start)
        self._index.put(start, hit[1], value)

    def update(self, start: int, end: int, make: Callable[[V], V]) -> list[tuple[int, int, V, V]]:
        """Give each piece of ``[start, end)`` the value ``make(value)``, then merge around
        the range.  O(log n + k).

        ``make`` returns its argument itself for a piece that does not change, whatever
        the piece's bounds; only changed intervals are cut at ``start`` and ``end``.
        Returns the changed pieces, clipped, as ``(start, end, old value, new value)``.

        >>> m = IntervalMap[str](join=lambda a, s, e, b: a if a == b else None)
        >>> m.insert(0, 10, "r"); m.insert(10, 20, "w")
        >>> m.update(5, 15, lambda v: "w" if v == "r" else v)
        [(5, 10, 'r', 'w')]
        >>> list(m)
        [(0, 5, 'r'), (5, 20, 'w')]
        """
        index = self._index
        split = self._split
        changed: list[tuple[int, int, V, V]] = []
        for s, e, value in self.overlapping(start, end):
            new = make(value)
            if new is value:
                continue
            lo, hi = max(s, start), min(e, end)
            if lo > s:  # cut off the part left of the range; it keeps its value
                index.put(s, lo, value)
                value = split(value, s, lo)
                new = make(value)
            if hi < e:  # and the part right of it
                index.put(hi, e, split(value, lo, hi))
            index.put(lo, hi, new)
            changed.append((lo, hi, value, new))
        if changed:
            self.coalesce(start, end)
        return changed

    def coalesce(self, start: int, end: int) -> None:
        """Merge touching intervals around and inside ``[start, end)`` where ``join`` allows.

        O(log n + k).  The map stays canonical: no two touching intervals that could merge.
        """
        join = self._join
        if join is None:
            return
        index = self._index
        pieces = index.overlapping(start - 1, end + 1)  # and the neighbours touching it
        if len(pieces) < 2:
            return
        cs, ce, cv = pieces[0]
        for ns, ne, nv in pieces[1:]:
            if ns == ce:
                merged = join(cv, cs, ce, nv)
                if merged is not None:
                    index.pop(ns)
                    index.put(cs, ne, merged)
                    ce, cv = ne, merged
                    continue
            cs, ce, cv = ns, ne, nv

    def _refresh_gaps(self, start: int, end: int) -> None:
        """Rebuild the hole index around ``[start, end)`` after a change there.  O(log n + k)."""
        gaps = self._gaps
        if gaps is None or self._bounds is None:
            return
        lo, hi = self._bounds
        before = self._index.floor(start - 1)
        region_lo = before[1] if before is not None else lo
        region_lo = max(min(region_lo, start), lo)
        after = self._index.ceil(end)  # the first interval at or after ``end`` bounds the region
        region_hi = after if after is not None else hi
        region_hi = min(max(region_hi, end), hi)
        gaps.discard_range(region_lo, region_hi)
        for g_lo, g_hi in self.gaps(region_lo, region_hi):
            gaps.add(g_lo, g_hi - g_lo)

    # -- placement ----------------------------------------------------------------------

    def find_hole_above(self, hint: int, size: int) -> int | None:
        """Upward first fit (SPEC R-PLACE-2).  O(log n) Python steps.

        The hint itself when ``[hint, hint+size)`` is free inside the bounds; else the start
        of the lowest hole above the hint that fits; else the start of the highest fitting
        hole below the hint; else None.

        >>> m = IntervalMap[int](bounds=(0, 100)); m.insert(10, 20, 0); m.insert(22, 30, 0)
        >>> m.find_hole_above(12, 5), m.find_hole_above(12, 80), m.find_hole_above(3, 5)
        (30, None, 3)
        >>> m.find_hole_above(95, 10)
        30
        """
        gaps = self._gaps
        if gaps is None or self._bounds is None or size <= 0:
            raise ValueError("find_hole_above needs a bounded map and a positive size")
        here = self.gap_at(hint)
        if here is not None and here[1] - hint >= size:
            return hint
        hit = gaps.first_fit(hint + 1, size)
        if hit is not None:
            return hit[0]
        hit = gaps.last_fit(hint + 1, size)
        return hit[0] if hit is not None else None

    def find_hole_below(self, hint: int, size: int) -> int | None:
        """Downward fit (SPEC R-PLACE-3).  O(log n) Python steps.

        The hint itself when ``[hint, hint+size)`` is free inside the bounds; else the top of
        the highest hole at or below the hint that fits; else the top of the lowest fitting
        hole above the hint; else None.

        >>> m = IntervalMap[int](bounds=(0, 100)); m.insert(10, 20, 0); m.insert(22, 30, 0)
        >>> m.find_hole_below(21, 5), m.find_hole_below(40, 5), m.find_hole_below(5, 50)
        (5, 40, 50)
        """
        gaps = self._gaps
        if gaps is None or self._bounds is None or size <= 0:
            raise ValueError("find_hole_below needs a bounded map and a positive size")
        here = self.gap_at(hint)
        if here is not None and here[1] - hint >= size:
            return hint
        hit = gaps.last_fit(hint + 1, size)
        if hit is None:
            hit = gaps.first_fit(hint + 1, size)
        if hit is None:
            return None
        return hit[0] + hit[1] - size

    # -- other --------------------------------------------------------------------------

    def copy(self) -> IntervalMap[V]:
        """A new map with the same intervals (values shared, not copied).  O(n)."""
        new = IntervalMap[V](split=self._split, join=self._join, bounds=None)
        new._bounds = self._bounds
        new._index = self._index.copy()
        if self._gaps is not None:
            new._gaps = self._gaps.copy()
        return new

    def check(self) -> None:
        """Assert every internal invariant (sorted, disjoint, canonical, hole index exact)."""
        self._index.check()
        prev_end: int | None = None
        prev: tuple[int, int, V] | None = None
        for s, e, v in self._index:
            assert s < e, f"empty interval at {s:#x}"
            assert prev_end is None or prev_end <= s, f"overlap at {s:#x}"
            if self._bounds is not None:
                assert self._bounds[0] <= s and e <= self._bounds[1], "interval out of bounds"
            if prev is not None and self._join is not None and prev[1] == s:
                assert self._join(prev[2], prev[0], prev[1], v) is None, f"unmerged at {s:#x}"
            prev_end = e
            prev = (s, e, v)
        if self._gaps is not None and self._bounds is not None:
            expected = [(lo, hi - lo) for lo, hi in self.gaps(*self._bounds)]
            assert list(self._gaps.items()) == expected, "hole index out of step"
            g = self._gaps
            for starts_c, sizes_c, first, mx in zip(
                g._starts, g._sizes, g._firsts, g._maxes, strict=True
            ):
                assert starts_c and first == starts_c[0] and mx >= max(sizes_c)
