"""Shared memory handles (SPEC 13.3): shm_create_handle, shm_open_handle, mmap_handle,
shm_delete_handle and shm_revoke, and the kernel's table of unused handles.

A handle names one shm object for one recipient pid and holds a reference on it until it
is used, deleted or revoked, or its recipient exits (R-HANDLE-5).  Mapping is vmm's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

import attrs

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.addrspace import AddressSpace
from qnxsim.errno import QnxError
from qnxsim.files import FileUser, check_fd_room, get_open, release_if_dead
from qnxsim.objects import MemObject
from qnxsim.pathspace import OpenFile
from qnxsim.physmem import PhysMem
from qnxsim.profile import Profile
from qnxsim.vmm import Caller, mmap

#: R-HANDLE-1 [SIM]: handles are non-zero unsigned 32-bit values, never reused.
FIRST_HANDLE = 1
LAST_HANDLE = 0xFFFFFFFF
#: R-HANDLE-1: the only option shm_create_handle() takes ("currently the only supported").
OPTIONS = C.SHM_CREATE_HANDLE_OPT_NOFD
_ACCESS_NAMES = {C.O_RDONLY: "O_RDONLY", C.O_WRONLY: "O_WRONLY", C.O_RDWR: "O_RDWR"}


@attrs.define
class Handle:
    """An unused handle: the object, who made it, who may use it, and how."""

    obj: MemObject
    creator: int
    recipient: int
    access: int  # O_RDONLY, O_WRONLY or O_RDWR
    nofd: bool  # SHM_CREATE_HANDLE_OPT_NOFD: never becomes an fd (R-HANDLE-2)


class HandleTable:
    """Every unused handle of one kernel, by value (R-HANDLE-1, R-HANDLE-5).

    Methods: ``add`` (a new handle), ``drop`` (used, deleted or revoked), ``get``,
    ``drop_recipient`` (its process exited), iteration over ``(value, Handle)``.
    Each entry counts once in its object's ``handles`` (``Kernel.check_invariants``).
    """

    __slots__ = ("live", "next_value")

    def __init__(self) -> None:
        self.live: dict[int, Handle] = {}
        self.next_value = FIRST_HANDLE

    def __iter__(self) -> Iterator[tuple[int, Handle]]:
        return iter(sorted(self.live.items()))

    def __len__(self) -> int:
        return len(self.live)

    def get(self, value: int) -> Handle | None:
        return self.live.get(value)

    def add(self, handle: Handle, call: str) -> int:
        value = self.next_value
        if value > LAST_HANDLE:
            raise QnxError(E.EAGAIN, "R-HANDLE-1: [SIM] every 32-bit handle is used up", call=call)
        self.next_value = value + 1
        self.live[value] = handle
        handle.obj.handles += 1
        return value

    def drop(self, pm: PhysMem, value: int) -> None:
        handle = self.live.pop(value)
        handle.obj.handles -= 1
        release_if_dead(pm, handle.obj)

    def drop_recipient(self, pm: PhysMem, pid: int) -> None:
        """R-HANDLE-5: the handles given to ``pid`` go when it exits."""
        for value in [v for v, h in self.live.items() if h.recipient == pid]:
            self.drop(pm, value)


class Target(Protocol):
    """What the calls need of the process a handle names: its address space."""

    @property
    def space(self) -> AddressSpace: ...


#: Finds a running process by pid (None for no such pid, a zombie or an exiting one).
FindRunning = Callable[[int], Target | None]


def _err(errno: int, reason: str, call: str) -> QnxError:
    return QnxError(errno, reason, call=call)


def check_available(user: Who, call: str) -> None:
    """SPEC 19: handles, mmap_handle and shm_revoke are 7.1+; [SIM] ENOSYS before."""
    if not user.profile.handles:
        raise _err(
            E.ENOSYS,
            f"R-HANDLE-1 [SPEC 19]: QNX {user.profile.version} has no {call}() (7.1+)",
            call,
        )


def _access_name(access: int) -> str:
    return _ACCESS_NAMES.get(access, hex(access))


def _grants(have: int, want: int) -> bool:
    """Does access mode ``have`` include every right of ``want``?"""
    need_read = want in (C.O_RDONLY, C.O_RDWR)
    need_write = want in (C.O_WRONLY, C.O_RDWR)
    return (not need_read or have in (C.O_RDONLY, C.O_RDWR)) and (
        not need_write or have in (C.O_WRONLY, C.O_RDWR)
    )


class Who(Protocol):
    """The least a handle call needs of its caller: its pid and version profile."""

    @property
    def pid(self) -> int: ...
    @property
    def profile(self) -> Profile: ...


class MapUser(Caller, Protocol):
    """The caller of mmap_handle: what mmap needs (its fds, abilities) and its pid."""

    @property
    def pid(self) -> int: ...


def create(table: HandleTable, user: FileUser, find: FindRunning, fd: int, pid: int, flags: int,
           options: int) -> int:  # fmt: skip
    """R-HANDLE-1: a new handle on the shm object of ``fd`` for process ``pid``."""
    call = "shm_create_handle"
    check_available(user, call)
    of = get_open(user, fd, call, "R-HANDLE-1")
    if of.obj.kind != "shm":
        raise _err(E.EINVAL, f"R-HANDLE-1: fd {fd} is no shared memory object ({of.obj.kind})",
                   call)  # fmt: skip
    access = flags & C.O_ACCMODE
    if flags & ~C.O_ACCMODE or access not in _ACCESS_NAMES:
        raise _err(
            E.EINVAL, f"R-HANDLE-1: flags {flags:#o} are not O_RDONLY, O_WRONLY or O_RDWR", call
        )
    if options & ~OPTIONS:
        raise _err(
            E.EINVAL,
            f"R-HANDLE-1: options {options:#x} are not 0 or SHM_CREATE_HANDLE_OPT_NOFD",
            call,
        )
    fd_access = of.flags & C.O_ACCMODE
    if not _grants(fd_access, access):
        raise _err(
            E.EACCES,
            f"R-HANDLE-1: {_access_name(access)} asks for more than fd {fd} allows "
            f"({_access_name(fd_access)})",
            call,
        )
    if find(pid) is None:
        raise _err(E.ESRCH, f"R-HANDLE-1: pid {pid} does not exist or has exited", call)
    handle = Handle(of.obj, user.pid, pid, access, bool(options & OPTIONS))
    return table.add(handle, call)


def usable(table: HandleTable, user: Who, value: int, call: str, rule: str) -> Handle:
    """The caller's unused handle ``value``; EBADF when there is none (R-HANDLE-2, 3)."""
    handle = table.get(value)
    if handle is None:
        raise _err(
            E.EBADF,
            f"{rule}: handle {value} does not exist (never made, used, deleted or revoked)",
            call,
        )
    if handle.recipient != user.pid:
        raise _err(
            E.EBADF,
            f"{rule}: handle {value} was made for pid {handle.recipient}, not pid {user.pid}",
            call,
        )
    return handle


def open_handle(table: HandleTable, pm: PhysMem, user: FileUser, value: int, flags: int) -> int:
    """R-HANDLE-2: an fd on the handle's object; the handle is used up on success."""
    call = "shm_open_handle"
    check_available(user, call)
    access = flags & C.O_ACCMODE
    if flags & ~(C.O_ACCMODE | C.O_CLOEXEC) or access not in _ACCESS_NAMES:
        raise _err(
            E.EINVAL,
            f"R-HANDLE-2: flags {flags:#o} are not one access mode (optionally with O_CLOEXEC)",
            call,
        )
    handle = usable(table, user, value, call, "R-HANDLE-2")
    if handle.nofd:
        raise _err(
            E.EPERM,
            f"R-HANDLE-2: handle {value} was made with SHM_CREATE_HANDLE_OPT_NOFD",
            call,
        )
    if not _grants(handle.access, access):
        raise _err(
            E.EACCES,
            f"R-HANDLE-2: {_access_name(access)} asks for more than the handle gives "
            f"({_access_name(handle.access)})",
            call,
        )
    fd = check_fd_room(user, call, rule="R-HANDLE-2")
    user.fdt.install(fd, OpenFile(handle.obj, access), True)  # always close-on-exec
    table.drop(pm, value)
    return fd


def map_handle(table: HandleTable, pm: PhysMem, space: AddressSpace,
               limits: Mapping[int, tuple[int, int]], user: MapUser, addr: int, length: int,
               prot: int, flags: int, value: int, off: int) -> int:  # fmt: skip
    """R-HANDLE-3: mmap() of the handle's object into the caller, with the handle's access
    mode standing in for an fd's; success uses the handle up, failure leaves it."""
    call = "mmap_handle"
    check_available(user, call)
    if flags & (C.MAP_ANON | C.MAP_PHYS):
        raise _err(E.EINVAL, f"R-HANDLE-3: flags {flags:#x} hold MAP_ANON or MAP_PHYS", call)
    flags &= ~C.MAP_HANDLE  # [SIM] accepted here, though plain mmap refuses it (R-MMAP-5)

    def open_for_mmap(_fd: int) -> OpenFile | None:  # what R-MMAP-12 then judges
        handle = table.get(value)
        if handle is None or handle.recipient != user.pid:
            return None
        return OpenFile(handle.obj, handle.access)

    try:
        result = mmap(space, limits, user, addr, length, prot, flags, value, off, call=call,
                      opened=open_for_mmap)  # fmt: skip
    except QnxError as err:
        if err.errno == E.EBADF and err.reason.startswith("R-MMAP-12"):
            usable(table, user, value, call, "R-HANDLE-3")  # raises, saying why
        if err.reason.startswith("R-MMAP-12"):  # name the handle, not an fd
            err.reason = err.reason.replace(f"fd {value} ", f"handle {value} ")
        raise
    table.drop(pm, value)
    return result


def delete(table: HandleTable, pm: PhysMem, user: FileUser, value: int) -> int:
    """R-HANDLE-4: only the creator or the recipient may delete an unused handle."""
    call = "shm_delete_handle"
    check_available(user, call)
    handle = table.get(value)
    if handle is None or user.pid not in (handle.creator, handle.recipient):
        why = "does not exist" if handle is None else f"is not pid {user.pid}'s to delete"
        raise _err(E.ESRCH, f"R-HANDLE-4: handle {value} {why}", call)
    table.drop(pm, value)
    return 0


def revoke(table: HandleTable, pm: PhysMem, user: FileUser, find: FindRunning, fd: int,
           pid: int) -> int:  # fmt: skip
    """R-HANDLE-6: the creator takes the object away from ``pid``: its mappings of the
    object and its unused handles on it go; its fds on the object stay."""
    call = "shm_revoke"
    check_available(user, call)
    obj = get_open(user, fd, call, "R-HANDLE-6").obj
    if obj.kind != "shm":
        raise _err(E.EINVAL, f"R-HANDLE-6: fd {fd} is no shared memory object ({obj.kind})",
                   call)  # fmt: skip
    if not obj.marks & C.SHMCTL_REVOCABLE:
        raise _err(E.EINVAL, "R-HANDLE-6: the object is not SHMCTL_REVOCABLE (R-SHM-8)", call)
    if obj.creator != user.pid:
        raise _err(
            E.EPERM,
            f"R-HANDLE-6: pid {user.pid} did not create the object (pid {obj.creator} did)",
            call,
        )
    target = find(pid)
    if target is None:
        raise _err(E.ESRCH, f"R-HANDLE-6: pid {pid} does not exist or has exited", call)
    space = target.space
    for s, e in [(s, e) for s, e, entry in space.map if entry.obj is obj]:
        space.remove(s, e)  # as munmap removes it: a later touch is SIGSEGV/SEGV_MAPERR
    for value in [v for v, h in table.live.items() if h.obj is obj and h.recipient == pid]:
        table.drop(pm, value)
    return 0
