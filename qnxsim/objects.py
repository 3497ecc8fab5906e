"""Memory objects (R-OBJ-1): what a mapping maps, and which frames hold its pages.

Each object keeps an ``IntervalMap`` from object offset to physical address.  A process's
private anonymous memory is one object whose offsets are virtual addresses (R-MAP-2);
private copies of object pages (R-OBJ-4) live there too.  No mapping logic lives here.
"""

from __future__ import annotations

from typing import Literal, get_args

from qnxsim import constants as C
from qnxsim.intervals import IntervalMap
from qnxsim.physmem import PhysMem

#: Kinds of mapping record (R-MAP-1); an object's kind is one of the first six.
MappingKind = Literal["anon", "shared-anon", "shm", "file", "zero", "phys", "stack-guard", "elf"]
KINDS: tuple[MappingKind, ...] = get_args(MappingKind)
#: Kinds of memory object: the first six mapping kinds, a directory (the shm directory
#: open for reading) and a typed memory pool.
ObjectKind = Literal["anon", "shared-anon", "shm", "file", "zero", "phys", "dir", "tymem"]


def _split_run(paddr: int, start: int, at: int) -> int:
    return paddr + (at - start)


def _join_run(left: int, ls: int, le: int, right: int) -> int | None:
    return left if left + (le - ls) == right else None


class MemObject:
    """A memory object: its kind, size, and the frames that back its pages.

    ``size`` None means unbounded (private anonymous memory).  ``phys_base`` set means the
    object *is* physical memory from that address (MAP_PHYS); it owns no frames then.
    ``mapped`` counts the bytes of mapping records that reference the object, in every
    address space; ``named``, ``fds`` and ``handles`` (unused shared memory handles,
    R-HANDLE-5) are the other reasons it stays alive (R-OBJ-2).
    """

    __slots__ = (
        "creator",
        "ctl",
        "fds",
        "gid",
        "handles",
        "ino",
        "kind",
        "lazy",
        "mapped",
        "marks",
        "mode",
        "name",
        "named",
        "pages",
        "phys_base",
        "size",
        "uid",
    )

    def __init__(
        self,
        kind: ObjectKind,
        *,
        name: str | None = None,
        size: int | None = None,
        lazy: bool = False,
        phys_base: int | None = None,
        named: bool = False,
    ) -> None:
        self.kind = kind
        self.name = name
        self.size = size
        self.lazy = lazy
        self.phys_base = phys_base
        self.named = named
        self.mapped = 0
        self.fds = 0  # open file descriptions that reference the object
        self.ino = 0  # serial number in the path space (fstat)
        self.uid = 0
        self.gid = 0
        self.mode = 0o600
        self.ctl: int | None = None  # flags of the shm_ctl that gave the memory (R-SHM-6)
        self.marks = 0  # SHMCTL_SEAL, _REVOCABLE, _HAS_SPECIAL the object holds (R-SHM-8, 11)
        self.handles = 0  # unused shared memory handles on the object (R-HANDLE-5)
        self.creator: int | None = None  # pid that created it (shm_revoke, R-HANDLE-6)
        self.pages = IntervalMap[int](split=_split_run, join=_join_run)

    def __repr__(self) -> str:
        return f"<MemObject {self.kind} {self.name or ''} size={self.size}>"

    @property
    def alive(self) -> bool:
        """R-OBJ-2: an object lives while it has a name, an open fd or a mapping."""
        return self.outlives(0)

    def outlives(self, unmapped: int) -> bool:
        """R-OBJ-2: would the object still live once ``unmapped`` bytes of its mappings go?"""
        return self.named or self.fds > 0 or self.handles > 0 or self.mapped > unmapped

    @property
    def sealed(self) -> bool:
        """R-SHM-8: SHMCTL_SEAL fixes the layout, flags and size."""
        return bool(self.marks & C.SHMCTL_SEAL)

    def frame(self, offset: int) -> int | None:
        """Physical address of the byte at ``offset``, or None when no frame backs it."""
        if self.phys_base is not None:
            return self.phys_base + offset
        hit = self.pages.find(offset)
        return hit[2] + (offset - hit[0]) if hit is not None else None

    def missing(self, start: int, end: int) -> int:
        """Bytes of ``[start, end)`` that no frame backs yet.  O(log n + k)."""
        if self.phys_base is not None:
            return 0
        return sum(hi - lo for lo, hi in self.pages.gaps(start, end))

    def populate(
        self,
        pm: PhysMem,
        start: int,
        end: int,
        *,
        contiguous: bool = False,
        from_reserve: bool = False,
        within: tuple[int, int] | None = None,
        window: int | None = None,
    ) -> bool:
        """Give every page of ``[start, end)`` a frame.  False, changing nothing, if RAM is short.

        ``within`` and ``window`` constrain where the frames lie (``PhysMem.allocate``).

        ``pages`` has no bounds, so its holes are walked with ``gaps`` (O(log n + k)).
        """
        if self.phys_base is not None:
            return True
        holes = list(self.pages.gaps(start, end))
        need = sum(hi - lo for lo, hi in holes)
        if not need:
            return True
        whole = contiguous and len(holes) == 1
        extents = pm.allocate(
            need, contiguous=whole, from_reserve=from_reserve, within=within, window=window
        )
        if extents is None:
            return False
        ext = iter(extents)
        paddr, avail = next(ext)
        for lo, hi in holes:
            while lo < hi:
                if not avail:
                    paddr, avail = next(ext)
                n = min(hi - lo, avail)
                self.pages.insert(lo, lo + n, paddr)
                lo += n
                paddr += n
                avail -= n
        return True

    def release(self, pm: PhysMem, start: int, end: int) -> int:
        """Free the frames behind ``[start, end)``; returns the bytes freed."""
        if self.phys_base is not None:
            return 0
        freed = 0
        for lo, hi, paddr in self.pages.remove(start, end):
            pm.free(paddr, hi - lo)
            freed += hi - lo
        return freed

    def allocated(self) -> int:
        """Bytes of frames this object owns."""
        return sum(hi - lo for lo, hi, _ in self.pages)

    # -- contents through the object (read()/write(), ftruncate) ------------------------

    def read_bytes(self, pm: PhysMem, offset: int, n: int) -> bytes:
        """``n`` bytes from ``offset``, clipped at the object's size; holes read as zero."""
        if self.size is not None:
            n = max(0, min(n, self.size - offset))
        out = bytearray()
        ps = pm.page_size
        while n > 0:
            chunk = min(n, ps - offset % ps)
            paddr = self.frame(offset)
            out += pm.read(paddr, chunk) if paddr is not None else bytes(chunk)
            offset += chunk
            n -= chunk
        return bytes(out)

    def write_bytes(self, pm: PhysMem, offset: int, data: bytes) -> bool:
        """Store ``data`` at ``offset``, giving pages frames as needed (the caller grows
        ``size`` first).  False, changing nothing, when RAM is short."""
        if not data:
            return True
        ps = pm.page_size
        lo = offset - offset % ps
        hi = -(-(offset + len(data)) // ps) * ps
        if not self.populate(pm, lo, hi):
            return False
        pos = 0
        while pos < len(data):
            chunk = min(len(data) - pos, ps - (offset + pos) % ps)
            paddr = self.frame(offset + pos)
            assert paddr is not None
            pm.write(paddr, data[pos : pos + chunk])
            pos += chunk
        return True

    def clear_tail(self, pm: PhysMem, size: int) -> None:
        """Zero the bytes past ``size`` in its last page (R-OBJ-6; POSIX ftruncate)."""
        ps = pm.page_size
        if size % ps == 0:
            return
        paddr = self.frame(size)
        if paddr is not None:
            pm.write(paddr, bytes(ps - size % ps))

    def resize(self, pm: PhysMem, new_size: int, *, eager: bool) -> bool:
        """Set the size (R-SHM-5, R-OBJ-6).  ``eager`` gives new pages frames at once.

        Shrinking frees whole pages past the end and zeroes the rest of the new last page;
        growing zeroes what lay past the old end in its last page, so bytes written through
        a mapping past the end never become part of the object.  False, changing nothing,
        when RAM is short.
        """
        ps = pm.page_size
        old = self.size or 0
        new_end = -(-new_size // ps) * ps
        if new_size > old:
            if eager and not self.populate(pm, -(-old // ps) * ps, new_end):
                return False
            self.clear_tail(pm, old)
        else:
            self.release(pm, new_end, -(-old // ps) * ps)
            self.clear_tail(pm, new_size)
        self.size = new_size
        return True
