"""The file and shared-memory calls' rules (SPEC 13): open, shm_open, shm_unlink, close,
dup, dup2, read, write, pread, pwrite, lseek, fstat, ftruncate, shm_ctl.

Each function checks in order and raises ``QnxError`` naming the rule; nothing changes
before every check has passed (R-CALL-5).  Paths and descriptors live in ``pathspace.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.errno import QnxError
from qnxsim.objects import MemObject
from qnxsim.pathspace import (
    DEV_MEM,
    SHMEM_DIR,
    FdTable,
    OpenFile,
    PathSpace,
    Stat,
    may_access,
    normalize,
    shm_path,
)
from qnxsim.physmem import PhysMem
from qnxsim.profile import Profile

#: What QNX 8.0's shm_ctl accepts (R-SHM-6): every defined SHMCTL_* bit.
SHMCTL_KNOWN = C.SHMCTL_FLAG_MASK
#: The largest file or shm object (POSIX: EFBIG/EINVAL past off_t); [SIM] 2^44 as R-MMAP-15.
MAX_OBJECT_SIZE = 1 << 44


class FileUser(Protocol):
    """What the rules need of the calling process."""

    @property
    def euid(self) -> int: ...
    @property
    def egid(self) -> int: ...
    @property
    def umask(self) -> int: ...
    @property
    def fdt(self) -> FdTable: ...
    @property
    def rlimits(self) -> Mapping[int, tuple[int, int]]: ...
    @property
    def profile(self) -> Profile: ...

    def able(self, aid: int, lo: int | None, hi: int | None) -> bool: ...


def _err(errno: int, reason: str, call: str) -> QnxError:
    return QnxError(errno, reason, call=call)


def open_file(ps: PathSpace, pm: PhysMem, user: FileUser, path: str, oflag: int, mode: int,
              *, call: str = "open", shm: bool = False) -> int:  # fmt: skip
    """R-FS-2 / R-SHM-1..3: open or create ``path``; returns the lowest free fd."""
    if path == "":
        raise _err(E.ENOENT if not shm else E.EINVAL, f"{_rule(shm, 2)}: empty name", call)
    full = shm_path(path) if shm else normalize(path)
    longest = max((len(part) for part in full.split("/")), default=0)
    if longest > C.NAME_MAX:
        raise _err(
            E.ENAMETOOLONG, f"{_rule(shm, 2)}: a name component is longer than NAME_MAX", call
        )
    acc = oflag & C.O_ACCMODE
    want_read = acc in (C.O_RDONLY, C.O_RDWR)
    want_write = acc in (C.O_WRONLY, C.O_RDWR)
    if ps.parent_is_file(full):
        raise _err(E.ENOTDIR, f"R-FS-2: a leading part of {full!r} is a file", call)
    obj = ps.lookup(full)
    if obj is None and ps.is_dir(full):
        if oflag & C.O_CREAT or want_write:
            raise _err(E.EISDIR, f"R-FS-2: {full!r} is a directory", call)
        obj = MemObject("dir", name=full)
        obj.mode = 0o755
    created = False
    if obj is not None and oflag & C.O_CREAT and oflag & C.O_EXCL:
        raise _err(E.EEXIST, f"{_rule(shm, 2)}: {full!r} exists (O_CREAT|O_EXCL)", call)
    if obj is None:
        if not oflag & C.O_CREAT:
            raise _err(E.ENOENT, f"{_rule(shm, 2)}: {full!r} does not exist", call)
        created = True
    elif not may_access(obj, user.euid, user.egid, want_read, want_write):
        raise _err(
            E.EACCES,
            f"{_rule(shm, 2)}: mode {obj.mode:o} (uid {obj.uid}, gid {obj.gid}) refuses "
            f"{'read' if want_read else ''}{'+' if want_read and want_write else ''}"
            f"{'write' if want_write else ''} to euid {user.euid}",
            call,
        )
    fd = _check_fd_room(user, call, rule=_rule(shm, 2))
    if created:
        kind = "shm" if full.startswith(SHMEM_DIR + "/") else "file"
        obj = MemObject(kind, name=full, size=0)
        obj.uid, obj.gid = user.euid, user.egid
        obj.mode = mode & 0o7777 & ~user.umask  # R-SHM-3
        ps.add(full, obj)
    assert obj is not None
    if oflag & C.O_TRUNC and not created and obj.kind in ("file", "shm") and obj.ctl is None:
        obj.resize(pm, 0, eager=False)  # R-SHM-3: even with O_RDONLY
    of = OpenFile(obj, oflag)
    cloexec = bool(oflag & C.O_CLOEXEC) or shm  # R-SHM-3: shm fds are close-on-exec
    user.fdt.install(fd, of, cloexec)
    return fd


def _rule(shm: bool, n: int) -> str:
    return f"R-SHM-{n}" if shm else "R-FS-2"


def _check_fd_room(user: FileUser, call: str, start: int = 0, rule: str = "R-SHM-2") -> int:
    fd = user.fdt.lowest_free(start)
    limit = user.rlimits[C.RLIMIT_NOFILE][0]
    if fd >= limit:
        raise _err(E.EMFILE, f"{rule}: RLIMIT_NOFILE ({limit}) descriptors are open", call)
    return fd


def shm_anon(ps: PathSpace, user: FileUser, oflag: int, mode: int) -> int:
    """R-SHM-1: SHM_ANON makes an unnamed object; O_CREAT and O_RDWR are required.

    SPEC 19: SHM_ANON is 7.1+; on a profile without it (6.4) the call is EINVAL [SIM].
    """
    call = "shm_open"
    profile = user.profile
    if not profile.shm_anon:
        raise _err(
            E.EINVAL,
            f"R-SHM-1 [SIM]: QNX {profile.version} has no SHM_ANON (7.1+); its value, the "
            "pointer (const char *)1, is no valid path",
            call,
        )
    if not oflag & C.O_CREAT or oflag & C.O_ACCMODE != C.O_RDWR:
        raise _err(E.EINVAL, "R-SHM-1: SHM_ANON needs O_CREAT and O_RDWR", call)
    fd = _check_fd_room(user, call)
    obj = MemObject("shm", name=None, size=0)
    obj.uid, obj.gid = user.euid, user.egid
    obj.mode = mode & 0o7777 & ~user.umask
    obj.ino = ps.new_ino()
    user.fdt.install(fd, OpenFile(obj, oflag), True)
    return fd


def shm_unlink(ps: PathSpace, pm: PhysMem, user: FileUser, name: str) -> int:
    """R-SHM-4: the name goes at once; the object lives while fds or mappings hold it."""
    call = "shm_unlink"
    if name == "":
        raise _err(E.EINVAL, "R-SHM-2: empty name", call)
    full = shm_path(name)
    if any(len(p) > C.NAME_MAX for p in full.split("/")):
        raise _err(E.ENAMETOOLONG, "R-SHM-2: a name component is longer than NAME_MAX", call)
    obj = ps.lookup(full)
    if obj is None or full in (DEV_MEM, "/dev/zero"):
        raise _err(E.ENOENT, f"R-SHM-4: {full!r} does not exist", call)
    if user.euid != 0 and user.euid != obj.uid:
        raise _err(
            E.EPERM, f"R-SHM-4: euid {user.euid} is not the owner ({obj.uid}) nor root", call
        )
    ps.unlink(full)
    release_if_dead(pm, obj)
    return 0


def release_if_dead(pm: PhysMem, obj: MemObject) -> None:
    """R-OBJ-2: an object with no name, fd or mapping gives its frames back."""
    if not obj.alive and obj.phys_base is None:
        obj.release(pm, 0, 1 << 64)


def get_open(user: FileUser, fd: int, call: str, rule: str = "R-FS-2") -> OpenFile:
    of = user.fdt.get(fd) if fd >= 0 else None
    if of is None:
        raise _err(E.EBADF, f"{rule}: fd {fd} is not open", call)
    return of


def close(pm: PhysMem, user: FileUser, fd: int) -> int:
    of = get_open(user, fd, "close")
    user.fdt.remove(fd)
    release_if_dead(pm, of.obj)
    return 0


def dup(user: FileUser, fd: int) -> int:
    of = get_open(user, fd, "dup")
    new = _check_fd_room(user, "dup", rule="R-FS-2")
    user.fdt.install(new, of, False)  # POSIX: the new fd is not close-on-exec
    return new


def dup2(pm: PhysMem, user: FileUser, fd: int, fd2: int) -> int:
    of = get_open(user, fd, "dup2")
    limit = user.rlimits[C.RLIMIT_NOFILE][0]
    if fd2 < 0 or fd2 >= limit:
        raise _err(E.EBADF, f"R-FS-2: fd2 {fd2} is outside [0, RLIMIT_NOFILE)", "dup2")
    if fd2 == fd:
        return fd2
    old = user.fdt.get(fd2)
    if old is not None:
        user.fdt.remove(fd2)
        release_if_dead(pm, old.obj)
    user.fdt.install(fd2, of, False)
    return fd2


def _check_data_object(of: OpenFile, fd: int, call: str) -> None:
    if of.obj.kind == "dir":
        raise _err(E.EISDIR, f"R-FS-2: fd {fd} is a directory", call)


def read(pm: PhysMem, user: FileUser, fd: int, n: int, at: int | None = None) -> bytes:
    """read() / pread(): up to ``n`` bytes from the file offset (or ``at``)."""
    call = "read" if at is None else "pread"
    of = get_open(user, fd, call)
    if not of.readable:
        raise _err(E.EBADF, f"R-FS-2: fd {fd} is not open for reading", call)
    _check_data_object(of, fd, call)
    if at is not None and at < 0:
        raise _err(E.EINVAL, f"R-FS-2: offset {at} is negative", call)
    pos = of.offset if at is None else at
    obj = of.obj
    if obj.kind == "zero":
        data = bytes(n)
    elif obj.kind == "phys":
        data = pm.read(pos, n) if pm.is_physical(pos, n) else b""
    else:
        data = obj.read_bytes(pm, pos, n)
    if at is None:
        of.offset = pos + len(data)
    return data


def write(pm: PhysMem, user: FileUser, fd: int, data: bytes, at: int | None = None) -> int:
    """write() / pwrite(): writing past the end grows a file or shm object (R-FS-2)."""
    call = "write" if at is None else "pwrite"
    of = get_open(user, fd, call)
    if not of.writable:
        raise _err(E.EBADF, f"R-FS-2: fd {fd} is not open for writing", call)
    _check_data_object(of, fd, call)
    if at is not None and at < 0:
        raise _err(E.EINVAL, f"R-FS-2: offset {at} is negative", call)
    obj = of.obj
    if obj.kind == "zero":
        return len(data)
    if obj.kind == "phys":
        pos = of.offset if at is None else at
        if not pm.is_physical(pos, len(data)):
            raise _err(E.ENXIO, f"R-FS-2: [{pos:#x}, +{len(data):#x}) is no physical memory", call)
        pm.write(pos, data)
        if at is None:
            of.offset = pos + len(data)
        return len(data)
    size = obj.size or 0
    pos = size if at is None and of.flags & C.O_APPEND else (of.offset if at is None else at)
    end = pos + len(data)
    if end > MAX_OBJECT_SIZE:
        raise _err(E.EFBIG, f"R-FS-2: the object would end at {end:#x}, past 2^44", call)
    if obj.phys_base is not None and end > size:
        raise _err(E.ENOSPC, "R-SHM-6: a physical shm object cannot grow", call)
    if not data:
        return 0
    page = pm.page_size
    lo, hi = pos - pos % page, -(-end // page) * page
    if obj.kind == "shm" and not obj.lazy and end > size:
        lo = min(lo, -(-size // page) * page)  # eager growth gives the new pages frames
    if obj.missing(lo, hi) > pm.free_bytes:
        raise _err(E.ENOSPC, "R-SYS-6: no RAM for the pages written", call)
    if end > size:
        obj.resize(pm, end, eager=obj.kind == "shm" and not obj.lazy)
    obj.write_bytes(pm, pos, data)
    if at is None:
        of.offset = end
    return len(data)


def lseek(user: FileUser, fd: int, off: int, whence: int) -> int:
    of = get_open(user, fd, "lseek")
    if whence == C.SEEK_SET:
        base = 0
    elif whence == C.SEEK_CUR:
        base = of.offset
    elif whence == C.SEEK_END:
        base = of.obj.size or 0
    else:
        raise _err(E.EINVAL, f"R-FS-2: whence {whence} is not SEEK_SET/CUR/END", "lseek")
    new = base + off
    if new < 0:
        raise _err(E.EINVAL, f"R-FS-2: the resulting offset {new} is negative", "lseek")
    if new >= 1 << 63:
        raise _err(E.EOVERFLOW, "R-FS-2: the resulting offset does not fit off_t", "lseek")
    of.offset = new
    return new


def fstat(ps: PathSpace, user: FileUser, fd: int) -> Stat:
    return ps.stat(get_open(user, fd, "fstat").obj)


def ftruncate(pm: PhysMem, user: FileUser, fd: int, length: int) -> int:
    """R-SHM-5: size a file or shm object; shm grows with frames unless SHMCTL_LAZY."""
    call = "ftruncate"
    if length < 0:
        raise _err(E.EINVAL, f"R-SHM-5: length {length} is negative", call)
    of = get_open(user, fd, call, "R-SHM-5")
    obj = of.obj
    if not of.writable:
        raise _err(E.EINVAL, f"R-SHM-5: fd {fd} is not open for writing", call)
    if obj.kind not in ("file", "shm"):
        raise _err(E.EINVAL, f"R-SHM-5: fd {fd} is no file or shm object", call)
    if obj.ctl is not None:
        raise _err(E.EINVAL, "R-SHM-5: the object was configured by shm_ctl", call)
    if length > MAX_OBJECT_SIZE:
        raise _err(E.EFBIG, f"R-SHM-5: length {length:#x} is past 2^44", call)
    eager = obj.kind == "shm" and not obj.lazy
    if not obj.resize(pm, length, eager=eager):
        raise _err(E.ENOMEM, f"R-SHM-5: no RAM for {length:#x} bytes of shared memory", call)
    return 0


def shm_ctl(pm: PhysMem, user: FileUser, fd: int, flags: int, paddr: int, size: int) -> int:
    """R-SHM-6: configure a shm object once, before it has a size."""
    call = "shm_ctl"
    of = get_open(user, fd, call, "R-SHM-6")
    obj = of.obj
    page = pm.page_size
    if flags & ~SHMCTL_KNOWN:
        raise _err(E.EINVAL, f"R-SHM-6: unknown flag bits {flags & ~SHMCTL_KNOWN:#x}", call)
    anon, phys, lazy = (bool(flags & f) for f in (C.SHMCTL_ANON, C.SHMCTL_PHYS, C.SHMCTL_LAZY))
    if anon and phys and lazy:
        raise _err(E.EINVAL, "R-SHM-6: SHMCTL_ANON, SHMCTL_PHYS and SHMCTL_LAZY together", call)
    if not anon and not phys:
        raise _err(E.EINVAL, "R-SHM-6: [SIM] neither SHMCTL_ANON nor SHMCTL_PHYS given", call)
    if obj.kind != "shm":
        raise _err(E.EINVAL, f"R-SHM-6: fd {fd} is no shared memory object", call)
    if obj.ctl is not None or obj.size:
        raise _err(E.EINVAL, "R-SHM-6: the object is already configured or sized", call)
    if flags & C.SHMCTL_GLOBAL and not user.able(C.PROCMGR_AID_MEM_GLOBAL, None, None):
        raise _err(E.EPERM, "R-SHM-6: SHMCTL_GLOBAL needs PROCMGR_AID_MEM_GLOBAL", call)
    if size <= 0 or size > MAX_OBJECT_SIZE:
        raise _err(E.EINVAL, f"R-SHM-6: size {size:#x} is not valid", call)
    if phys and not anon:
        if not user.able(C.PROCMGR_AID_MEM_PHYS, paddr, paddr + size - 1):
            raise _err(
                E.EPERM,
                f"R-SHM-6: SHMCTL_PHYS needs PROCMGR_AID_MEM_PHYS for "
                f"[{paddr:#x}, {paddr + size - 1:#x}]",
                call,
            )
        if paddr % page or size % page or paddr < 0 or paddr + size > pm.phys_end:
            raise _err(
                E.EINVAL,
                f"R-SHM-6: physical range [{paddr:#x}, +{size:#x}) must be page-aligned and "
                f"inside [0, PHYS_END {pm.phys_end:#x})",
                call,
            )
        obj.phys_base = paddr
        obj.size = size
        obj.ctl = flags
        return 0
    rounded = -(-size // page) * page
    if not lazy:
        if phys and not pm.has_run(rounded):
            raise _err(E.ENOMEM, f"R-SHM-6: no contiguous run of {rounded:#x} bytes", call)
        if not obj.populate(pm, 0, rounded, contiguous=phys):
            raise _err(E.ENOMEM, f"R-SHM-6: no RAM for {rounded:#x} bytes", call)
    obj.lazy = lazy
    obj.size = size
    obj.ctl = flags
    return 0
