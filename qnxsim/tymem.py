"""Typed memory (SPEC 12.1; POSIX 1003.1j, QNX <sys/mman.h>): named pools of physical memory.

A ``Kernel`` is configured with pools, asinfo path -> ``(physical start, size)``
(R-TYMEM-1).  ``posix_typed_mem_open`` finds a pool by name (R-TYMEM-2) and gives an fd
on a ``TypedMemory`` object; mapping it (R-TYMEM-4, in ``vmm``) allocates frames from the
pool with POSIX_TYPED_MEM_ALLOCATE(_CONTIG), and without either maps the pool's physical
memory at ``off``.  Nothing here maps anything.
"""

from __future__ import annotations

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.errno import QnxError
from qnxsim.objects import MemObject
from qnxsim.physmem import DEVICE_END, DEVICE_START, RAM_START, PhysMem

TFLAGS = (
    C.POSIX_TYPED_MEM_ALLOCATE | C.POSIX_TYPED_MEM_ALLOCATE_CONTIG
    | C.POSIX_TYPED_MEM_MAP_ALLOCATABLE
)  # fmt: skip
ALLOCATING = C.POSIX_TYPED_MEM_ALLOCATE | C.POSIX_TYPED_MEM_ALLOCATE_CONTIG
BELOW_4G = 1 << 32  # R-TYMEM-1: /memory/below4G
ISA_END = 16 << 20  # R-TYMEM-1: /memory/isa


class TypedMemory(MemObject):
    """An open typed memory object: its pool ``[pool_start, pool_end)`` and the tflag."""

    __slots__ = ("pool_end", "pool_start", "tflag")

    def __init__(self, name: str, start: int, size: int, tflag: int) -> None:
        super().__init__("tymem", name=name, size=size)
        self.pool_start = start
        self.pool_end = start + size
        self.tflag = tflag
        self.mode = 0o666

    @property
    def allocating(self) -> bool:
        return bool(self.tflag & ALLOCATING)


def default_pools(ram: int) -> dict[str, tuple[int, int]]:
    """R-TYMEM-1: the asinfo entries of a machine with ``ram`` bytes of RAM (R-SYS-5).

    >>> pools = default_pools(1 << 30)
    >>> hex(pools["/memory"][1]), hex(pools["/memory/ram/sysram"][0]), "/sysram" in pools
    ('0x100000000', '0x100000', False)
    """
    end = max(RAM_START + ram, DEVICE_END)  # PHYS_END
    return {
        "/memory": (0, end),
        "/memory/below4G": (0, min(end, BELOW_4G)),
        "/memory/isa": (0, ISA_END),
        "/memory/device": (DEVICE_START, DEVICE_END - DEVICE_START),
        "/memory/ram": (RAM_START, ram),
        "/memory/ram/sysram": (RAM_START, ram),
    }


def _components(name: str) -> list[str]:
    return name.split("/")[1:] if name.startswith("/") else name.split("/")


def check_pools(pools: object, pm: PhysMem) -> dict[str, tuple[int, int]]:
    """Validate ``Kernel(typed_memory=...)`` (R-SYS-1, R-TYMEM-1): a dict of name ->
    ``(start, size)``; each name starts with "/" and has non-empty components of at most
    NAME_MAX bytes [SIM]; each range is page-aligned, of non-zero size, below PHYS_END."""
    if not isinstance(pools, dict):
        raise ValueError(
            f"typed_memory must be a dict of name -> (start, size), not {type(pools).__name__}"
        )
    out: dict[str, tuple[int, int]] = {}
    ps = pm.page_size
    for name, rng in pools.items():
        if not isinstance(name, str) or not name.startswith("/"):
            raise ValueError(f"typed memory name {name!r} must be a str starting with '/'")
        if any(not part or len(part) > C.NAME_MAX for part in _components(name)):
            raise ValueError(
                f"typed memory name {name!r}: every component must hold 1 to NAME_MAX "
                f"({C.NAME_MAX}) characters"
            )
        ok = isinstance(rng, tuple) and len(rng) == 2 and all(type(v) is int for v in rng)
        if not ok:
            raise ValueError(f"typed memory {name}: {rng!r} is not a (start, size) pair of ints")
        start, size = rng
        if start < 0 or size <= 0 or start % ps or size % ps:
            raise ValueError(
                f"typed memory {name}: start {start:#x} and size {size:#x} must be "
                f"{ps:#x}-aligned, start >= 0 and size > 0"
            )
        if start + size > pm.phys_end:
            raise ValueError(
                f"typed memory {name}: [{start:#x}, {start + size:#x}) ends past PHYS_END "
                f"{pm.phys_end:#x}"
            )
        out[name] = (start, size)
    return out


def find_pool(pools: dict[str, tuple[int, int]], name: str, call: str) -> str:
    """R-TYMEM-2's name rules: the pool ``name`` names, or QnxError.

    A name with a leading "/" matches exactly; any other matches the tail of the pool
    names, whole components only; [SIM] among several, the fewest components, then the
    lowest in byte order.  An empty name or no match is ENOENT; a component longer than
    NAME_MAX is ENAMETOOLONG.  O(p) for p pools.

    >>> pools = {"/memory": (0, 1), "/memory/ram": (0, 1), "/memory/ram/sysram": (0, 1)}
    >>> find_pool(pools, "sysram", "x"), find_pool(pools, "ram", "x")
    ('/memory/ram/sysram', '/memory/ram')
    """
    parts = _components(name)
    if any(len(part) > C.NAME_MAX for part in parts):
        raise QnxError(
            E.ENAMETOOLONG,
            f"R-TYMEM-2: a component of {name[:40]!r}... is longer than NAME_MAX ({C.NAME_MAX})",
            call=call,
        )
    if name.startswith("/"):
        if name in pools:
            return name
        raise QnxError(E.ENOENT, f"R-TYMEM-2: no typed memory pool is named {name!r}", call=call)
    n = len(parts)
    tails = [pool for pool in pools if name and _components(pool)[-n:] == parts]
    if not tails:
        raise QnxError(
            E.ENOENT,
            f"R-TYMEM-2: no typed memory pool name ends with the components of {name!r}",
            call=call,
        )
    return min(tails, key=lambda pool: (len(_components(pool)), pool.encode()))


def open_pool(
    pools: dict[str, tuple[int, int]], name: str, tflag: int, *, direct_needs_root: bool,
    euid: int,
) -> TypedMemory:  # fmt: skip
    """posix_typed_mem_open's checks before the fd (R-TYMEM-2): tflag (EINVAL), the name
    (ENOENT, ENAMETOOLONG), then SPEC 19's 6.4 rule: a non-root opening without
    ALLOCATE(_CONTIG) is EPERM when ``direct_needs_root``."""
    call = "posix_typed_mem_open"
    if tflag & ~TFLAGS or bin(tflag & TFLAGS).count("1") > 1:
        raise QnxError(
            E.EINVAL,
            f"R-TYMEM-2: tflag {tflag:#x} sets more than one of POSIX_TYPED_MEM_ALLOCATE, "
            "_ALLOCATE_CONTIG and _MAP_ALLOCATABLE, or other bits",
            call=call,
        )
    pool = find_pool(pools, name, call)
    if direct_needs_root and euid != 0 and not tflag & ALLOCATING:
        raise QnxError(
            E.EPERM,
            f"R-TYMEM-2: [6.4, SPEC 19] euid {euid} may open typed memory only with "
            "POSIX_TYPED_MEM_ALLOCATE or _ALLOCATE_CONTIG (direct offsets are root's)",
            call=call,
        )
    start, size = pools[pool]
    return TypedMemory(pool, start, size, tflag)


def tmi_length(pm: PhysMem, obj: TypedMemory) -> int:
    """R-TYMEM-3's posix_tmi_length: free RAM of the pool (ALLOCATE), its largest free
    physically contiguous run (ALLOCATE_CONTIG), or 0 for an fd opened without either.
    [SIM] Never more than the free RAM an allocation may take (reservations are not free).
    O(h) for the h free runs in the pool.
    """
    runs = pm.free_runs(obj.pool_start, obj.pool_end)
    if obj.tflag & C.POSIX_TYPED_MEM_ALLOCATE_CONTIG:
        return min(max((hi - lo for lo, hi in runs), default=0), pm.free_bytes)
    if obj.tflag & C.POSIX_TYPED_MEM_ALLOCATE:
        return min(sum(hi - lo for lo, hi in runs), pm.free_bytes)
    return 0
