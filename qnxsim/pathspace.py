"""The simulated path space (R-FS-1) and file descriptors (R-FS-2).

Regular files, shared memory objects (``/dev/shmem/NAME``, or any other path that
shm_open created, R-SHM-1), ``/dev/zero`` and ``/dev/mem``,
with owner, group and mode; directories exist implicitly.  Open file descriptions are
shared by ``dup`` and ``fork``; each process has its own fd table.  The calls' rules
(which errno, when) are in ``files.py``.
"""

from __future__ import annotations

import posixpath

import attrs

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.errno import QnxError
from qnxsim.objects import MemObject, ObjectKind

SHMEM_DIR = "/dev/shmem"
DEV_ZERO = "/dev/zero"
DEV_MEM = "/dev/mem"
S_IFREG = 0o100000
S_IFDIR = 0o040000
S_IFCHR = 0o020000
S_IFNAM = 0o050000  # QNX: shared memory objects are "named special" files


@attrs.frozen
class Stat:
    """``fstat`` result (R-FS-2)."""

    st_size: int
    st_mode: int
    st_uid: int
    st_gid: int
    st_ino: int
    st_nlink: int


def normalize(path: str) -> str:
    """An absolute, normalised path: names are taken relative to ``/`` (R-SHM-1)."""
    norm = posixpath.normpath("/" + path)
    return "/" + norm.lstrip("/")


PATH_MAX = 1024  # QNX <limits.h>: bytes of a path name, its terminating NUL included


def path_too_long(path: str) -> str:
    """Why ``path`` is too long for QNX (PATH_MAX, NAME_MAX, counted in UTF-8 bytes as a
    C string is), or "" when it is not."""
    raw = path.encode("utf-8", "surrogateescape")
    if len(raw) >= PATH_MAX:
        return f"the path is {len(raw)} bytes; PATH_MAX {PATH_MAX} counts its NUL"
    longest = max(len(part) for part in raw.split(b"/"))
    if longest > C.NAME_MAX:
        return f"a component is {longest} bytes, longer than NAME_MAX {C.NAME_MAX}"
    return ""


def check_path_length(path: str, rule: str, call: str) -> None:
    """ENAMETOOLONG for a path that ``path_too_long`` refuses."""
    too_long = path_too_long(path)
    if too_long:
        raise QnxError(E.ENAMETOOLONG, f"{rule}: {too_long}", call=call)


def shm_path(name: str) -> str:
    """R-SHM-1 / R-SHM-4: the path a shm name resolves to, as QNX's libc resolves it.

    ``/X`` with no further ``/`` names ``/dev/shmem/X`` and ``/`` alone the shm directory;
    any other name is a path taken from ``/``.  [SIM] ``.`` and ``..`` resolve as open()
    resolves them, so ``/..`` is ``/dev``, never an object named ``..``.

    >>> shm_path("/buf"), shm_path("/"), shm_path("/.."), shm_path("galcore:vidmem:7")
    ('/dev/shmem/buf', '/dev/shmem', '/dev', '/galcore:vidmem:7')
    """
    if name.startswith("/") and "/" not in name[1:]:
        return normalize(f"{SHMEM_DIR}/{name[1:]}")
    return normalize(name)


class OpenFile:
    """An open file description: object, access mode, status flags and file offset."""

    __slots__ = ("flags", "obj", "offset", "refs")

    def __init__(self, obj: MemObject, flags: int) -> None:
        self.obj = obj
        self.flags = flags
        self.offset = 0
        self.refs = 0  # fds (in every process) that refer to this description

    @property
    def readable(self) -> bool:
        return self.flags & C.O_ACCMODE in (C.O_RDONLY, C.O_RDWR)

    @property
    def writable(self) -> bool:
        return self.flags & C.O_ACCMODE in (C.O_WRONLY, C.O_RDWR)


class FdTable:
    """One process's descriptors: fd -> (open file description, close-on-exec)."""

    __slots__ = ("fds",)

    def __init__(self) -> None:
        self.fds: dict[int, tuple[OpenFile, bool]] = {}

    def get(self, fd: int) -> OpenFile | None:
        hit = self.fds.get(fd)
        return hit[0] if hit is not None else None

    def lowest_free(self, start: int = 0) -> int:
        fd = start
        while fd in self.fds:
            fd += 1
        return fd

    def install(self, fd: int, of: OpenFile, cloexec: bool) -> None:
        """Put ``of`` at ``fd`` (which must be free)."""
        if of.refs == 0:
            of.obj.fds += 1
        of.refs += 1
        self.fds[fd] = (of, cloexec)

    def remove(self, fd: int) -> None:
        of, _ = self.fds.pop(fd)
        of.refs -= 1
        if of.refs == 0:
            of.obj.fds -= 1

    def copy(self) -> FdTable:
        """The table a fork child gets: the same descriptions (R-PROC-2)."""
        new = FdTable()
        for fd, (of, cloexec) in self.fds.items():
            new.install(fd, of, cloexec)
        return new


class PathSpace:
    """Every named object of the machine, by absolute path (R-FS-1)."""

    __slots__ = ("_next_ino", "dev_mem", "dev_zero", "nodes")

    def __init__(self) -> None:
        self.nodes: dict[str, MemObject] = {}
        self._next_ino = 1
        self.dev_zero: MemObject
        self.dev_mem: MemObject
        self.dev_zero = self._device(DEV_ZERO, "zero", None)
        self.dev_mem = self._device(DEV_MEM, "phys", 0)

    def _device(self, path: str, kind: ObjectKind, phys_base: int | None) -> MemObject:
        obj = MemObject(kind, name=path, phys_base=phys_base, named=True)
        obj.mode = 0o666  # [SIM] the MEM_PHYS ability, not the mode, guards /dev/mem
        obj.ino = self.new_ino()
        self.nodes[path] = obj
        return obj

    def lookup(self, path: str) -> MemObject | None:
        return self.nodes.get(path)

    def is_dir(self, path: str) -> bool:
        """Directories exist implicitly: ``/``, ``/dev/shmem`` and every path prefix."""
        if path in ("/", "/dev", SHMEM_DIR):
            return True
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self.nodes)

    def parent_is_file(self, path: str) -> bool:
        """True when some leading part of ``path`` names a file (ENOTDIR)."""
        parts = path.split("/")
        return any("/".join(parts[:i]) in self.nodes for i in range(2, len(parts)))

    def add(self, path: str, obj: MemObject) -> None:
        self.nodes[path] = obj
        obj.named = True
        obj.ino = self.new_ino()

    def unlink(self, path: str) -> MemObject:
        obj = self.nodes.pop(path)
        obj.named = False
        return obj

    def new_ino(self) -> int:
        ino = self._next_ino
        self._next_ino += 1
        return ino

    def stat(self, obj: MemObject) -> Stat:
        kind = {"file": S_IFREG, "shm": S_IFNAM, "dir": S_IFDIR}.get(obj.kind, S_IFCHR)
        return Stat(obj.size or 0, kind | obj.mode, obj.uid, obj.gid, obj.ino,
                    1 if obj.named else 0)  # fmt: skip


def may_access(obj: MemObject, euid: int, egid: int, want_read: bool, want_write: bool) -> bool:
    """R-FS-2 / R-SHM-2: owner, group, other bits against euid/egid; euid 0 passes."""
    if euid == 0:
        return True
    if euid == obj.uid:
        bits = obj.mode >> 6
    elif egid == obj.gid:
        bits = obj.mode >> 3
    else:
        bits = obj.mode
    return (not want_read or bool(bits & 0o4)) and (not want_write or bool(bits & 0o2))
