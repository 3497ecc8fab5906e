"""check_invariants: every invariant of the design, checked over a whole Kernel (DESIGN:
Invariants): mappings, objects, frames, RAM accounting, zombies and procnto.

It only reads, through the kernel's and the processes' public state.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from qnxsim.constants import PROCNTO_PID
from qnxsim.objects import MemObject

if TYPE_CHECKING:
    from qnxsim.kernel import Kernel


def check_invariants(k: Kernel) -> None:
    """The body of ``Kernel.check_invariants`` (DESIGN: Invariants)."""
    pm = k.pm
    ps = k.page_size
    mapped: dict[int, tuple[MemObject, int]] = {}
    descriptions: dict[int, tuple[MemObject, set[int]]] = {}
    owned: list[tuple[int, int]] = []
    objects: dict[int, MemObject] = {id(o): o for o in k.paths.nodes.values()}
    reserved = 0
    for proc in k.processes():
        space = proc.space
        space.map.check()
        total = data = 0
        if not proc.alive:
            assert len(space.map) == 0, f"zombie pid {proc.pid} still has mappings"
            assert not proc.fdt.fds, f"zombie pid {proc.pid} still has fds"
        if proc.pid == PROCNTO_PID:
            assert len(space.map) == 0, "procnto owns no user mappings (R-SYS-7)"
        for s, e, v in space.map:
            assert s % ps == 0 and e % ps == 0, f"pid {proc.pid}: unaligned {s:#x}-{e:#x}"
            assert space.m.user_start <= s and e <= space.m.user_end, "outside the user range"
            total += e - s
            if space.counts_as_data(v):
                data += e - s
            if v.obj is space.anon:
                assert v.offset == s, "private anonymous offset must be its address (R-MAP-2)"
            else:
                prev = mapped.get(id(v.obj), (v.obj, 0))[1]
                mapped[id(v.obj)] = (v.obj, prev + e - s)
                if v.private and not v.lazy:
                    reserved += (e - s) - space.private_copies(s, e)
        assert total == space.total_bytes, f"pid {proc.pid}: mapped-bytes counter is off"
        assert data == space.data_bytes, f"pid {proc.pid}: data-bytes counter is off"
        for lo, hi, paddr in space.anon.pages:
            hit = space.map.overlapping(lo, hi)
            assert sum(min(e, hi) - max(s, lo) for s, e, _ in hit) == hi - lo, (
                f"pid {proc.pid}: private frames at {lo:#x}-{hi:#x} outside any mapping"
            )
            owned.append((paddr, hi - lo))
        for fd, (of, _) in proc.fdt.fds.items():
            assert fd >= 0
            descriptions.setdefault(id(of.obj), (of.obj, set()))[1].add(id(of))
            objects[id(of.obj)] = of.obj
    for obj, size in mapped.values():
        assert obj.mapped == size, f"{obj!r}: mapped {obj.mapped:#x}, mappings hold {size:#x}"
        objects[id(obj)] = obj
    held: dict[int, int] = {}  # R-HANDLE-5: each unused handle holds its object
    for _, handle in k.shm_handles:
        objects[id(handle.obj)] = handle.obj
        held[id(handle.obj)] = held.get(id(handle.obj), 0) + 1
    for obj in objects.values():
        opened = len(descriptions.get(id(obj), (obj, set()))[1])
        assert obj.fds == opened, f"{obj!r}: {obj.fds} open descriptions counted, {opened} exist"
        handles_held = held.get(id(obj), 0)
        assert obj.handles == handles_held, (
            f"{obj!r}: {obj.handles} handles counted, {handles_held} exist"
        )
        if id(obj) not in mapped:
            assert obj.mapped == 0, f"{obj!r}: counts mappings that do not exist"
        assert obj.alive, f"{obj!r} is referenced but not alive"
        if obj.size is not None and obj.phys_base is None and obj.kind != "anon":
            end = -(-obj.size // ps) * ps
            assert all(hi <= end for _, hi, _ in obj.pages), f"{obj!r}: frames past its end"
        owned.extend((paddr, hi - lo) for lo, hi, paddr in obj.pages)
    owned.sort()
    for (a, n), (b, _) in itertools.pairwise(owned):
        assert a + n <= b, f"frame {b:#x} belongs to two object pages"
    merged: list[tuple[int, int]] = []
    for a, n in owned:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], a + n)
        else:
            merged.append((a, a + n))
    assert merged == pm.allocated_ranges(), "allocated frames and object pages disagree"
    assert sum(n for _, n in owned) == pm.allocated, "allocation counter is off"
    assert pm.free_bytes >= 0 and pm.reserved >= 0, "over-committed RAM (R-OBJ-3)"
    assert pm.free_bytes + pm.allocated + pm.reserved == pm.ram
    assert reserved == pm.reserved, f"reserved {pm.reserved:#x}, mappings need {reserved:#x}"


__all__ = ["check_invariants"]
