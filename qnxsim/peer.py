"""mmap_peer, mmap64_peer and munmap_peer (SPEC 6, R-UNMAP-7).

A peer call first resolves the target pid (R-PEER-1, R-PEER-2), then checks the caller's
permission over it (R-PEER-3), then runs the ordinary rules against the target's address
space with the caller's abilities (R-PEER-4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import vmm
from qnxsim.errno import QnxError

if TYPE_CHECKING:
    from qnxsim.process import Process


def resolve_peer(
    caller: Process, pid: int, lookup: Callable[[int], Process | None], call: str
) -> Process:
    """R-PEER-1..3: the process a peer call acts on, or QnxError (ESRCH, then EPERM)."""
    if pid == 0 or pid == caller.pid:
        return caller  # R-PEER-1: exactly the call on the caller, no peer permission
    target = lookup(pid)
    if target is None or not target.alive:
        state = "does not exist" if target is None else "has exited (zombie)"
        raise QnxError(E.ESRCH, f"R-PEER-2: pid {pid} {state}", call=call)
    if pid == C.PROCNTO_PID:
        raise QnxError(
            E.EPERM,
            f"R-PEER-3 [SIM]: pid {pid} is procnto, which owns no user mappings (R-SYS-7)",
            call=call,
        )
    if not may_map_into(caller, target):
        raise QnxError(
            E.EPERM,
            f"R-PEER-3: caller pid {caller.pid} (ruid {caller.ruid}, euid {caller.euid}) lacks "
            f"PROCMGR_AID_MEM_PEER for pid {pid}, and neither of its uids matches the "
            f"target's ruid {target.ruid} or suid {target.suid}",
            call=call,
        )
    return target


def may_map_into(caller: Process, target: Process) -> bool:
    """R-PEER-3: the MEM_PEER ability for the target's pid, or the 6.4 uid rule."""
    if caller.able(C.PROCMGR_AID_MEM_PEER, target.pid, target.pid):
        return True
    return bool({caller.ruid, caller.euid} & {target.ruid, target.suid})


def mmap_peer(
    caller: Process,
    lookup: Callable[[int], Process | None],
    pid: int,
    addr: int,
    length: int,
    prot: int,
    flags: int,
    fd: int,
    off: int,
    call: str,
) -> int:
    """SPEC 6: mmap in ``pid``'s address space; the address is meaningful only there."""
    target = resolve_peer(caller, pid, lookup, call)
    # R-PEER-4: placement, range, limits and accounting are the target's; abilities the caller's.
    return vmm.mmap(target.space, target.rlimits, caller, addr, length, prot, flags, fd, off,
                    call=call)  # fmt: skip


def munmap_peer(
    caller: Process, lookup: Callable[[int], Process | None], pid: int, addr: int, length: int
) -> int:
    """R-UNMAP-7: R-PEER-1..3, then munmap on the target."""
    target = resolve_peer(caller, pid, lookup, "munmap_peer")
    return vmm.munmap(target.space, addr, length, call="munmap_peer")
