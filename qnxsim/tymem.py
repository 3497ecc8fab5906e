"""Typed memory (R-OBJ-1; POSIX 1003.1j, QNX <sys/mman.h>): named pools of physical memory.

A ``Kernel`` is configured with pools, name -> ``(physical start, size)``.
``posix_typed_mem_open`` gives an fd on a ``TypedMemory`` object; mapping it with
POSIX_TYPED_MEM_ALLOCATE(_CONTIG) allocates frames from the pool, without either it maps
the pool's physical memory at ``off`` (``vmm.map_typed_memory``).
"""

from __future__ import annotations

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.errno import QnxError
from qnxsim.objects import MemObject
from qnxsim.physmem import BELOW_16M, DEVICE_END, DEVICE_START, RAM_START, PhysMem

TFLAGS = (
    C.POSIX_TYPED_MEM_ALLOCATE | C.POSIX_TYPED_MEM_ALLOCATE_CONTIG
    | C.POSIX_TYPED_MEM_MAP_ALLOCATABLE
)  # fmt: skip
ALLOCATING = C.POSIX_TYPED_MEM_ALLOCATE | C.POSIX_TYPED_MEM_ALLOCATE_CONTIG
BELOW_4G = 1 << 32


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
    """[SIM] ``/sysram`` is all RAM; ``/sysram/below4G`` and ``/sysram/below16M`` the RAM
    below those addresses; ``/device`` the device range (R-SYS-5)."""
    end = RAM_START + ram
    pools = {
        "/sysram": (RAM_START, ram),
        "/sysram/below4G": (RAM_START, min(end, BELOW_4G) - RAM_START),
        "/device": (DEVICE_START, DEVICE_END - DEVICE_START),
    }
    if RAM_START < BELOW_16M:
        pools["/sysram/below16M"] = (RAM_START, min(end, BELOW_16M) - RAM_START)
    return pools


def check_pools(pools: object, pm: PhysMem) -> dict[str, tuple[int, int]]:
    """Validate ``Kernel(typed_memory=...)``: names ``/X``, ranges inside RAM or devices."""
    if not isinstance(pools, dict):
        raise ValueError("typed_memory must be a dict of name -> (start, size)")
    out: dict[str, tuple[int, int]] = {}
    for name, rng in pools.items():
        if not isinstance(name, str) or not name.startswith("/") or len(name) > 1 + C.NAME_MAX:
            raise ValueError(f"typed memory name {name!r} must be a str starting with '/'")
        ok = isinstance(rng, tuple) and len(rng) == 2 and all(type(v) is int for v in rng)
        if not ok or rng[1] <= 0 or rng[0] % pm.page_size or rng[1] % pm.page_size:
            raise ValueError(f"typed memory {name}: (start, size) page-aligned, size > 0")
        if not pm.is_physical(rng[0], rng[1]):
            raise ValueError(f"typed memory {name}: {rng} is not inside RAM or devices")
        out[name] = rng
    return out


def open_pool(pools: dict[str, tuple[int, int]], name: str, tflag: int) -> TypedMemory:
    """posix_typed_mem_open's checks (POSIX): EINVAL for tflag, ENAMETOOLONG, ENOENT."""
    call = "posix_typed_mem_open"
    if tflag & ~TFLAGS or bin(tflag & TFLAGS).count("1") > 1:
        raise QnxError(
            E.EINVAL,
            f"R-OBJ-1 (POSIX posix_typed_mem_open): tflag {tflag:#x} sets more than one of "
            "POSIX_TYPED_MEM_ALLOCATE, _ALLOCATE_CONTIG and _MAP_ALLOCATABLE, or other bits",
            call=call,
        )
    if any(len(part) > C.NAME_MAX for part in name.split("/")):
        raise QnxError(E.ENAMETOOLONG, "R-OBJ-1: a name component is longer than NAME_MAX",
                       call=call)  # fmt: skip
    if name not in pools:
        raise QnxError(E.ENOENT, f"R-OBJ-1: no typed memory pool named {name!r}", call=call)
    start, size = pools[name]
    return TypedMemory(name, start, size, tflag)


def tmi_length(pm: PhysMem, obj: TypedMemory) -> int:
    """posix_tmi_length: free bytes of the pool (ALLOCATE), its largest free run
    (ALLOCATE_CONTIG), or 0 for an fd opened without either (as QNX's memmgr reports)."""
    runs = pm.free_runs(obj.pool_start, obj.pool_end)
    if obj.tflag & C.POSIX_TYPED_MEM_ALLOCATE_CONTIG:
        return max((hi - lo for lo, hi in runs), default=0)
    if obj.tflag & C.POSIX_TYPED_MEM_ALLOCATE:
        return sum(hi - lo for lo, hi in runs)
    return 0
