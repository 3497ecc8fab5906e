"""The file and shared-memory calls' rules (SPEC 13): open, shm_open, shm_unlink, close,
dup, dup2, read, write, pread, pwrite, lseek, fstat, ftruncate, shm_ctl, shm_ctl_special.

Each function checks in order and raises ``QnxError`` naming the rule; nothing changes
before every check has passed (R-CALL-5).  Paths and descriptors live in ``pathspace.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import tymem
from qnxsim.errno import QnxError
from qnxsim.objects import MemObject, ObjectKind
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
    @property
    def pid(self) -> int: ...

    def able(self, aid: int, lo: int | None, hi: int | None) -> bool: ...


def _err(errno: int, reason: str, call: str) -> QnxError:
    return QnxError(errno, reason, call=call)


def open_file(ps: PathSpace, pm: PhysMem, user: FileUser, path: str, oflag: int, mode: int,
              *, call: str = "open", shm: bool = False) -> int:  # fmt: skip
    """R-FS-2 / R-SHM-1..3: open or create ``path``; returns the lowest free fd.

    With ``shm`` the name is resolved as shm_open resolves it (``shm_path``) and a new
    path becomes a shared memory object wherever it lies (R-SHM-1, R-FS-1).
    """
    if path == "":
        raise _err(E.ENOENT, f"{_rule(shm, 2)}: the empty name names nothing", call)
    longest = max(len(part) for part in path.split("/"))
    if longest > C.NAME_MAX:
        raise _err(
            E.ENAMETOOLONG,
            f"{_rule(shm, 2)}: a name component of {longest} bytes is longer than NAME_MAX "
            f"({C.NAME_MAX})",
            call,
        )
    full = shm_path(path) if shm else normalize(path)
    acc = oflag & C.O_ACCMODE
    want_read = acc in (C.O_RDONLY, C.O_RDWR)
    want_write = acc in (C.O_WRONLY, C.O_RDWR)
    if ps.parent_is_file(full):
        raise _err(E.ENOTDIR, f"R-FS-2: a leading part of {full!r} is a file", call)
    obj = ps.lookup(full)
    if obj is None and ps.is_dir(full):
        if oflag & C.O_CREAT or want_write:
            rule = "R-SHM-1" if shm else "R-FS-2"
            raise _err(E.EISDIR, f"{rule}: {full!r} is a directory (opened for writing)", call)
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
    fd = check_fd_room(user, call, rule=_rule(shm, 2))
    if created:
        # R-SHM-1: shm_open makes a shm object at any new path; open() makes a file
        # except under /dev/shmem.
        kind: ObjectKind = "shm" if shm or full.startswith(SHMEM_DIR + "/") else "file"
        obj = MemObject(kind, name=full, size=0)
        obj.uid, obj.gid = user.euid, user.egid
        obj.mode = mode & 0o7777 & ~user.umask  # R-SHM-3
        obj.creator = user.pid
        ps.add(full, obj)
    assert obj is not None
    truncatable = obj.kind in ("file", "shm") and obj.ctl is None and not obj.sealed
    if oflag & C.O_TRUNC and not created and truncatable:
        obj.resize(pm, 0, eager=False)  # R-SHM-3: even with O_RDONLY
    of = OpenFile(obj, oflag)
    cloexec = bool(oflag & C.O_CLOEXEC) or shm  # R-SHM-3: shm fds are close-on-exec
    user.fdt.install(fd, of, cloexec)
    return fd


def _rule(shm: bool, n: int) -> str:
    return f"R-SHM-{n}" if shm else "R-FS-2"


def check_fd_room(user: FileUser, call: str, start: int = 0, rule: str = "R-SHM-2") -> int:
    """The lowest free fd at or above ``start``; EMFILE past RLIMIT_NOFILE (``rule``)."""
    fd = user.fdt.lowest_free(start)
    limit = user.rlimits[C.RLIMIT_NOFILE][0]
    if fd >= limit:
        raise _err(E.EMFILE, f"{rule}: RLIMIT_NOFILE ({limit}) descriptors are open", call)
    return fd


_check_fd_room = check_fd_room  # the name other modules knew


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
    fd = check_fd_room(user, call)
    obj = MemObject("shm", name=None, size=0)
    obj.uid, obj.gid = user.euid, user.egid
    obj.mode = mode & 0o7777 & ~user.umask
    obj.creator = user.pid
    obj.ino = ps.new_ino()
    user.fdt.install(fd, OpenFile(obj, oflag), True)
    return fd


def shm_unlink(ps: PathSpace, pm: PhysMem, user: FileUser, name: str) -> int:
    """R-SHM-4: the name, resolved as shm_open resolves it (R-SHM-1), goes at once; the
    object lives while fds, mappings or handles hold it.  [SIM] A regular file's name
    goes the same way."""
    call = "shm_unlink"
    if name == "":
        raise _err(E.ENOENT, "R-SHM-4: the empty name names nothing", call)
    longest = max(len(part) for part in name.split("/"))
    if longest > C.NAME_MAX:
        raise _err(
            E.ENAMETOOLONG,
            f"R-SHM-2: a name component of {longest} bytes is longer than NAME_MAX",
            call,
        )
    full = shm_path(name)
    if ps.parent_is_file(full):
        raise _err(E.ENOTDIR, f"R-SHM-4: a leading part of {full!r} is a file", call)
    obj = ps.lookup(full)
    if obj is None and ps.is_dir(full):
        raise _err(E.EPERM, f"R-SHM-4: [SIM] {full!r} is a directory (POSIX unlink)", call)
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
    new = check_fd_room(user, "dup", rule="R-FS-2")
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
    # The caller's buffer is resident memory (no overcommit, R-SYS-6), so no read returns
    # more than RAM holds: a short read, as POSIX allows, never an unbounded bytes object.
    n = min(n, pm.ram)
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
    if obj.sealed and end > size:
        raise _err(E.ENOSPC, "R-SHM-8: [SIM] a sealed object cannot grow by write()", call)
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
        raise _err(E.EINVAL, "R-SHM-5: the object was given its memory by shm_ctl", call)
    if obj.sealed:
        raise _err(E.EINVAL, "R-SHM-5: the object is sealed (SHMCTL_SEAL, R-SHM-8)", call)
    if length > MAX_OBJECT_SIZE:
        raise _err(E.EFBIG, f"R-SHM-5: length {length:#x} is past 2^44", call)
    eager = obj.kind == "shm" and not obj.lazy
    if not obj.resize(pm, length, eager=eager):
        raise _err(E.ENOMEM, f"R-SHM-5: no RAM for {length:#x} bytes of shared memory", call)
    return 0


#: R-SHM-7 step 6: a call with none of these only sets attributes (R-SHM-8).
_MEMORY_FLAGS = (
    C.SHMCTL_ANON | C.SHMCTL_PHYS | C.SHMCTL_LAZY | C.SHMCTL_TYMEM | C.SHMCTL_REPEAT
)  # fmt: skip
#: R-SHM-8: the attribute bits an object keeps apart from the memory call's flags.
_ATTRIBUTES = C.SHMCTL_SEAL | C.SHMCTL_REVOCABLE


def shm_ctl(pm: PhysMem, user: FileUser, fd: int, flags: int, paddr: int, size: int,
            special: int | None = None) -> int:  # fmt: skip
    """R-SHM-6..11: shm_ctl() (``special`` None) or shm_ctl_special().

    SPEC 19: on a profile whose shm_ctl reports every failure as one errno (6.4: ENOSYS)
    the failure keeps its reason and takes that errno.
    """
    call = "shm_ctl" if special is None else "shm_ctl_special"
    try:
        return _shm_ctl(pm, user, fd, flags, paddr, size, special or 0, call)
    except QnxError as err:
        errno = user.profile.shm_ctl_errno
        if errno is None:
            raise
        raise _err(  # SPEC 19 (6.4 libc): every shm_ctl failure reports ENOSYS
            errno,
            f"R-SHM-7 [SPEC 19]: every {call} failure is {E.errorcode[errno]} on QNX "
            f"{user.profile.version} (the rule that failed: {E.errorcode[err.errno]}, "
            f"{err.reason})",
            call,
        ) from None


def _shm_ctl(pm: PhysMem, user: FileUser, fd: int, flags: int, paddr: int, size: int,
             special: int, call: str) -> int:  # fmt: skip
    """R-SHM-7's checks in its order; nothing changes before the last has passed."""
    page = pm.page_size
    obj = get_open(user, fd, call, "R-SHM-7").obj  # 1: EBADF
    defined = user.profile.shmctl_flags
    if flags & ~defined:  # 2
        raise _err(
            E.EINVAL,
            f"R-SHM-7: flags {flags:#x} hold bits {flags & ~defined:#x} that are no SHMCTL_* "
            f"flag of QNX {user.profile.version}",
            call,
        )
    flags &= ~C.SHMCTL_HAS_SPECIAL  # the library clears it (QNX lib/c/qnx/shm_ctl.c)
    if obj.kind != "shm":  # 3
        raise _err(E.EINVAL, f"R-SHM-7: fd {fd} is no shared memory object ({obj.kind})", call)
    if flags & C.SHMCTL_GET_FLAGS:  # 4
        return shm_flags(obj)  # R-SHM-9
    if obj.sealed:  # 5
        raise _err(E.EPERM, "R-SHM-7: the object is sealed (SHMCTL_SEAL, R-SHM-8)", call)
    if flags & _ATTRIBUTES and not flags & _MEMORY_FLAGS:  # 6
        obj.marks |= flags & _ATTRIBUTES  # R-SHM-8: a separate attribute call
        return 0
    check_shm_ctl_combination(flags, call)  # 7
    if obj.ctl is not None or obj.size:  # 8
        how = "an earlier shm_ctl gave it" if obj.ctl is not None else f"its size is {obj.size}"
        raise _err(E.EBUSY, f"R-SHM-7: the object already has its memory ({how})", call)
    if flags & C.SHMCTL_GLOBAL and not user.able(C.PROCMGR_AID_MEM_GLOBAL, None, None):  # 9
        raise _err(E.EPERM, "R-SHM-7: SHMCTL_GLOBAL needs PROCMGR_AID_MEM_GLOBAL", call)
    if special and not user.able(C.PROCMGR_AID_MEM_SPECIAL, None, None):
        raise _err(E.EPERM, f"R-SHM-11: special {special:#x} needs PROCMGR_AID_MEM_SPECIAL", call)
    if size > MAX_OBJECT_SIZE:  # 10
        raise _err(E.EINVAL, f"R-SHM-7: size {size:#x} is past 2^44", call)
    anon, phys, lazy = (bool(flags & f) for f in (C.SHMCTL_ANON, C.SHMCTL_PHYS, C.SHMCTL_LAZY))
    marks = flags & _ATTRIBUTES | (C.SHMCTL_HAS_SPECIAL if special else 0)
    if phys and not anon:  # 11
        check_shm_phys(pm, user, paddr, size, call)
        obj.phys_base = paddr
        give_memory(obj, flags, size, marks)
        return 0
    rounded = -(-size // page) * page
    if flags & C.SHMCTL_TYMEM:  # 12, 13
        pool = typed_pool(user, paddr, call)
        contiguous = phys or bool(pool.tflag & C.POSIX_TYPED_MEM_ALLOCATE_CONTIG)
        within = (pool.pool_start, pool.pool_end)
        if not obj.populate(pm, 0, rounded, contiguous=contiguous, within=within):
            raise _err(
                E.ENOMEM,
                f"R-SHM-10: typed memory {pool.name} has no "
                f"{'contiguous run' if contiguous else 'free RAM'} of {rounded:#x} bytes",
                call,
            )
        give_memory(obj, flags, size, marks)  # [SIM] from the pool at once, LAZY or not
        return 0
    if not lazy:  # 13
        if phys and rounded and not pm.has_run(rounded):
            raise _err(E.ENOMEM, f"R-SHM-7: no contiguous run of {rounded:#x} bytes", call)
        if not obj.populate(pm, 0, rounded, contiguous=phys):
            raise _err(E.ENOMEM, f"R-SHM-7: no RAM for {rounded:#x} bytes", call)
    obj.lazy = lazy
    give_memory(obj, flags, size, marks)
    return 0


def check_shm_ctl_combination(flags: int, call: str) -> None:
    """R-SHM-7 step 7: the memory flags that cannot go together."""
    anon_phys_lazy = C.SHMCTL_ANON | C.SHMCTL_PHYS | C.SHMCTL_LAZY
    if flags & anon_phys_lazy == anon_phys_lazy:
        raise _err(E.EINVAL, "R-SHM-7: SHMCTL_ANON, SHMCTL_PHYS and SHMCTL_LAZY together", call)
    if flags & C.SHMCTL_TYMEM and not flags & C.SHMCTL_ANON:
        raise _err(E.EINVAL, "R-SHM-7: SHMCTL_TYMEM without SHMCTL_ANON", call)
    if flags & C.SHMCTL_REPEAT:
        raise _err(E.EINVAL, "R-SHM-7: [SIM] SHMCTL_REPEAT is not simulated", call)
    if not flags & (C.SHMCTL_ANON | C.SHMCTL_PHYS):
        raise _err(E.EINVAL, "R-SHM-7: [SIM] neither SHMCTL_ANON nor SHMCTL_PHYS given", call)


def check_shm_phys(pm: PhysMem, user: FileUser, paddr: int, size: int, call: str) -> None:
    """R-SHM-7 step 11: SHMCTL_PHYS without SHMCTL_ANON names physical memory."""
    last = paddr + max(size, 1) - 1
    if not user.able(C.PROCMGR_AID_MEM_PHYS, paddr, last):
        raise _err(
            E.EPERM,
            f"R-SHM-7: SHMCTL_PHYS needs PROCMGR_AID_MEM_PHYS for [{paddr:#x}, {last:#x}]",
            call,
        )
    page = pm.page_size
    if paddr % page or size % page or paddr + size > pm.phys_end:
        raise _err(
            E.EINVAL,
            f"R-SHM-7: physical range [{paddr:#x}, +{size:#x}) must be page-aligned and "
            f"inside [0, PHYS_END {pm.phys_end:#x})",
            call,
        )


def typed_pool(user: FileUser, paddr: int, call: str) -> tymem.TypedMemory:
    """R-SHM-10: the typed-memory fd that SHMCTL_TYMEM passes in ``paddr``."""
    of = user.fdt.get(paddr) if paddr < 1 << 31 else None
    if of is None:
        raise _err(E.EBADF, f"R-SHM-10: paddr {paddr:#x} is no fd open in the caller", call)
    if not isinstance(of.obj, tymem.TypedMemory):
        raise _err(E.EINVAL, f"R-SHM-10: fd {paddr} is no typed memory object", call)
    return of.obj


def give_memory(obj: MemObject, flags: int, size: int, marks: int) -> None:
    """The object has its memory: its size and the flags R-SHM-9 reports."""
    obj.size = size
    obj.ctl = flags & ~_ATTRIBUTES
    obj.marks |= marks


def shm_flags(obj: MemObject) -> int:
    """R-SHM-9: the SHMCTL_* bits the object holds (0 if shm_ctl never touched it)."""
    return (obj.ctl or 0) | obj.marks
