"""The rules of a process's life apart from its address space: fork, exec, exit, waitpid,
the set*id credentials and the rlimits (SPEC 15, 18).

The address space's own rules are ``vmm``'s; the pid table is the ``Kernel``'s, reached
only through its public methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import files
from qnxsim.addrspace import AddressSpace
from qnxsim.constants import PROCNTO_PID, WNOHANG
from qnxsim.errno import QnxError
from qnxsim.pathspace import check_path_length

if TYPE_CHECKING:
    from qnxsim.process import Process

DEFAULT_RLIMITS: dict[int, int] = {C.RLIMIT_NOFILE: 1000}  # others: RLIM_INFINITY (SPEC 18)
RLIMIT_COUNT = 9  # RLIMIT_CPU .. RLIMIT_NPROC (SPEC 18)


def default_rlimits(rlim_infinity: int) -> dict[int, tuple[int, int]]:
    """A new process's ``(soft, hard)`` limits, by resource (SPEC 18)."""
    return {r: (DEFAULT_RLIMITS.get(r, rlim_infinity),) * 2 for r in range(RLIMIT_COUNT)}


# -- fork, exec, exit, waitpid (SPEC 15) --------------------------------------------------


def fork(proc: Process) -> int:
    """R-PROC-2: a child with a copy of the address space; returns the child's pid."""
    k = proc.kernel
    space = proc.space
    noinherit = k.profile.flag("MAP_NOINHERIT")  # SPEC 19: 6.4 has none
    inherit = [(s, e, v) for s, e, v in space.map if not v.flags & noinherit]
    need = space.fork_cost(inherit)
    if need > k.pm.free_bytes:
        raise QnxError(
            E.ENOMEM,
            f"R-PROC-2: the child's private copies need {need:#x} bytes of RAM, "
            f"{k.pm.free_bytes:#x} are free",
            call="fork",
        )
    child = k.new_process(proc.pid, proc.path, proc.ruid, proc.rgid)
    child.euid, child.suid = proc.euid, proc.suid
    child.egid, child.sgid = proc.egid, proc.sgid
    child.umask = proc.umask
    child.abilities = proc.abilities.copy()
    child.rlimits = dict(proc.rlimits)
    child.fdt = proc.fdt.copy()  # R-PROC-2: the same open file descriptions
    space.fork_into(child.space, inherit)
    k.add_process(child)
    return child.pid


def exec_image(proc: Process, path: str) -> int:
    """R-PROC-3: mappings and locks go, close-on-exec fds close, a new image is mapped.

    As QNX's exec (a spawn that then takes the caller's place), the new image is built in
    a new address space first, beside the old one; only when it is complete does it
    replace the old image (R-CALL-5: a failing exec leaves image, path and fds alone).
    """
    k = proc.kernel
    check_path_length(path, "R-PROC-3", "exec")
    space = AddressSpace(k.machine)  # R-LOCK-4: no locks and no MCL_FUTURE in it
    k.build_image(space, proc.rlimits, path, "exec", "R-PROC-3")
    old = proc.space
    old.remove(old.m.user_start, old.m.user_end)
    proc.space = space
    for fd, (_, cloexec) in sorted(proc.fdt.fds.items()):
        if cloexec:
            files.close(k.pm, proc, fd)
    proc.path = path
    return 0


def exit_process(proc: Process, status: int) -> None:
    """R-PROC-4: a zombie until the parent waits; its zombie children go, the running
    ones become procnto's; an orphan is reaped at once."""
    k = proc.kernel  # procnto never gets here: it makes no calls (R-PROC-6)
    k.release(proc)
    k.shm_handles.drop_recipient(k.pm, proc.pid)  # R-HANDLE-5
    proc.state = "zombie"
    proc.exit_status = status & 0xFF
    for child in k.processes():
        if child.ppid == proc.pid:
            if child.state == "zombie":
                k.reap(child.pid)
            else:
                child.ppid = PROCNTO_PID
    parent = k.lookup(proc.ppid)
    if parent is None or parent.pid == PROCNTO_PID or not parent.alive:
        k.reap(proc.pid)  # an orphan is reaped at once


def waitpid(proc: Process, pid: int, options: int) -> tuple[int, int]:
    """R-PROC-4: reap a zombie child; ``pid`` -1 means any child."""
    k = proc.kernel
    kids = [p for p in k.processes() if p.ppid == proc.pid and p.pid != proc.pid]
    if pid != -1:
        kids = [p for p in kids if p.pid == pid]
    if not kids:
        raise QnxError(
            E.ECHILD, f"R-PROC-4: pid {pid} is not a child of pid {proc.pid}", call="waitpid"
        )
    for child in kids:  # ascending by pid
        if child.state == "zombie":
            k.reap(child.pid)
            return child.pid, child.exit_status or 0
    if options & WNOHANG:
        return 0, 0
    raise QnxError(
        E.EDEADLK,
        "[SIM] the child is still running and a simulated wait cannot block; "
        "pass WNOHANG or exit the child first",
        call="waitpid",
    )


# -- credentials (R-PROC-5) ---------------------------------------------------------------


def set_id(proc: Process, which: str, value: int, *, every: bool) -> int:
    """POSIX set[e]uid / set[e]gid (``which`` is "uid" or "gid"; ``every``: all three)."""
    call = ("set" if every else "sete") + which
    if value < 0:
        raise QnxError(E.EINVAL, f"R-PROC-5: {which} {value} is not valid", call=call)
    real, saved = getattr(proc, "r" + which), getattr(proc, "s" + which)
    if proc.euid == 0:
        if every:
            setattr(proc, "r" + which, value)
            setattr(proc, "s" + which, value)
        setattr(proc, "e" + which, value)
        return 0
    if value in (real, saved):
        setattr(proc, "e" + which, value)
        return 0
    raise QnxError(
        E.EPERM,
        f"R-PROC-5: euid {proc.euid} is not root and {which} {value} is neither the real "
        f"({real}) nor the saved ({saved}) {which}",
        call=call,
    )


# -- rlimits (SPEC 18) --------------------------------------------------------------------


def getrlimit(proc: Process, resource: int, call: str = "getrlimit") -> tuple[int, int]:
    if not 0 <= resource < RLIMIT_COUNT:
        raise QnxError(
            E.EINVAL,
            f"[SIM] SPEC 18 limits: resource {resource} is not an RLIMIT_*",
            call=call,
        )
    return proc.rlimits[resource]


def setrlimit(proc: Process, resource: int, soft: int, hard: int) -> int:
    call = "setrlimit"
    old_hard = getrlimit(proc, resource, call)[1]
    inf = proc.kernel.machine.arch.rlim_infinity  # SPEC 18: no limit
    if soft > hard and hard != inf:
        raise QnxError(
            E.EINVAL,
            f"[SIM] SPEC 18 limits (POSIX): soft limit {soft:#x} above hard limit {hard:#x}",
            call=call,
        )
    raising = hard != old_hard and old_hard != inf and (hard > old_hard or hard == inf)
    if raising and proc.euid != 0:
        raise QnxError(
            E.EPERM,
            f"[SIM] SPEC 18 limits (POSIX): raising the hard limit above {old_hard:#x} "
            "needs euid 0",
            call=call,
        )
    proc.rlimits[resource] = (soft, hard)
    return 0
