"""Process: the facade through which a simulated process makes its calls.

Every simulated C call is a ``Process`` method with the C name and argument order
(R-CALL-1): it converts its arguments as C would (R-CALL-2) and has the kernel run the
rules (``vmm``, ``files``, ``peer``, ``lifecycle``) under its lock, returning the C success
value or raising ``QnxError``.  ``Kernel`` (``qnxsim.kernel``) is re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from qnxsim import access, files, lifecycle, tymem, vmm
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import peer as peer_calls
from qnxsim.abilities import Abilities, apply_entries
from qnxsim.addrspace import AddressSpace, Mapping
from qnxsim.errno import QnxError
from qnxsim.kernel import FIRST_PID, PROCNTO_PID, Kernel
from qnxsim.lifecycle import DEFAULT_RLIMITS, RLIMIT_COUNT, WNOHANG
from qnxsim.pathspace import FdTable, OpenFile, Stat
from qnxsim.profile import ROOT_ONLY_AIDS, Profile
from qnxsim.trace import TraceEvent

T = TypeVar("T")


class Process:
    """A simulated process: credentials, limits, abilities, an address space, the calls.

    Methods by purpose --
    memory calls: ``mmap``, ``mmap64``, ``mmap_peer``, ``mmap64_peer``, ``munmap``,
    ``munmap_flags``, ``munmap_peer``, ``mprotect``;
    memory access: ``read_memory``, ``write_memory``, ``check_access``;
    introspection: ``mappings``, ``mapping_at``;
    processes: ``fork``, ``spawn``, ``exit``, ``waitpid``;
    credentials and limits: ``setuid``, ``seteuid``, ``setgid``, ``setegid``, ``getrlimit``,
    ``setrlimit``.  ``libc`` gives the same calls with C conventions.
    """

    def __init__(self, kernel: Kernel, pid: int, ppid: int, path: str, uid: int, gid: int) -> None:
        from qnxsim.libc import Libc

        self.kernel = kernel
        self.pid = pid
        self.ppid = ppid
        self.path = path
        self.ruid = self.euid = self.suid = uid
        self.rgid = self.egid = self.sgid = gid
        self.umask = 0o022
        self.abilities = Abilities()
        self.rlimits = lifecycle.default_rlimits(kernel.machine.arch.rlim_infinity)
        self.space = AddressSpace(kernel.machine)
        self.fdt = FdTable()
        self.state = "running"
        self.exit_status: int | None = None
        self.libc = Libc(self)

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} {self.path} uid={self.ruid} {self.state}>"

    def __getstate__(self) -> dict[str, Any]:
        """What a snapshot copies: all but ``libc``, a view whose errno belongs to its thread."""
        return {k: v for k, v in self.__dict__.items() if k != "libc"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Take ``state`` (a restored snapshot's), keeping this handle's ``libc``."""
        from qnxsim.libc import Libc

        self.__dict__.update(state)
        if "libc" not in self.__dict__:
            self.libc = Libc(self)

    def _repr_html_(self) -> str:
        """Jupyter: the address space as a picture and a table (``html.py``)."""
        from qnxsim.html import process_html

        with self.kernel.lock:
            return process_html(self)

    @property
    def uid(self) -> int:
        return self.ruid

    @property
    def gid(self) -> int:
        return self.rgid

    @property
    def name(self) -> str:
        return self.path

    @property
    def alive(self) -> bool:
        return self.state == "running"

    @property
    def profile(self) -> Profile:
        """The kernel's version profile (SPEC 19); the rules read it through the caller."""
        return self.kernel.profile

    def able(self, aid: int, lo: int | None, hi: int | None) -> bool:
        """R-ABLE-2 against this process's table, in the domain of its current euid.

        SPEC 19: a profile without abilities (6.4) checks euid 0 for the abilities that
        deny non-root by default, and lets every other check pass.
        """
        profile = self.kernel.profile
        if not profile.abilities:
            return self.euid == 0 if aid in ROOT_ONLY_AIDS else True
        return self.abilities.check(aid, self.euid, lo, hi)

    # -- introspection ------------------------------------------------------------------

    def mappings(self) -> tuple[Mapping, ...]:
        """The address space as frozen records, ascending (R-MAP-1, R-MAP-2).  O(n)."""
        with self.kernel.lock:
            return self.space.records()

    def mapping_at(self, addr: int) -> Mapping | None:
        """The record holding ``addr``, or None.  O(log n)."""
        addr = self.kernel.ctypes.addr("addr", addr)
        with self.kernel.lock:
            return self.space.record_at(addr)

    # -- memory access (SPEC 14) --------------------------------------------------------

    def read_memory(self, addr: int, size: int) -> bytes:
        """Read as the process would; MemoryFault on a fault, with no bytes moved."""
        addr = self.kernel.ctypes.addr("addr", addr)
        size = self.kernel.ctypes.size_t("size", size)
        with self.kernel.lock:
            return access.read(self.space, self.pid, addr, size)

    def write_memory(self, addr: int, data: bytes) -> None:
        """Write as the process would; MemoryFault on a fault, with no bytes moved."""
        addr = self.kernel.ctypes.addr("addr", addr)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        with self.kernel.lock:
            access.write(self.space, self.pid, addr, bytes(data))

    def check_access(self, addr: int, size: int, access_kind: str) -> None:
        """Raise MemoryFault if the access would fault; change nothing either way."""
        addr = self.kernel.ctypes.addr("addr", addr)
        size = self.kernel.ctypes.size_t("size", size)
        kind = access.check_access_kind(access_kind)
        with self.kernel.lock:
            access.plan(self.space, self.pid, addr, size, kind)

    # -- memory calls -------------------------------------------------------------------

    def _run(self, call: str, args: tuple[Any, ...], fn: Callable[[], T]) -> T:
        return self.kernel.run_call(call, self, args, fn)

    def mmap(self, addr: int, len: int, prot: int, flags: int, fd: int, off: int) -> int:
        """SPEC 3: map memory into this process; returns the address."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len), c.int_("prot", prot),
                c.int_("flags", flags), c.int_("fd", fd), c.off_t("off", off))  # fmt: skip
        return self._run("mmap", args, lambda: self._mmap(args, "mmap"))

    def mmap64(self, addr: int, len: int, prot: int, flags: int, fd: int, off: int) -> int:
        """SPEC 3 with a 64-bit offset (R-CALL-3)."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len), c.int_("prot", prot),
                c.int_("flags", flags), c.int_("fd", fd), c.off64_t("off", off))  # fmt: skip
        return self._run("mmap64", args, lambda: self._mmap(args, "mmap64"))

    def _mmap(self, args: tuple[int, ...], call: str) -> int:
        addr, length, prot, flags, fd, off = args
        return vmm.mmap(self.space, self.rlimits, self, addr, length, prot, flags & 0xFFFFFFFF,
                        fd, off, call=call)  # fmt: skip

    def mmap_peer(
        self, pid: int, addr: int, len: int, prot: int, flags: int, fd: int, off: int
    ) -> int:
        """SPEC 6: map into process ``pid``; the address is meaningful only there."""
        c = self.kernel.ctypes
        args = (c.pid_t("pid", pid), c.addr("addr", addr), c.size_t("len", len),
                c.int_("prot", prot), c.int_("flags", flags), c.int_("fd", fd),
                c.off_t("off", off))  # fmt: skip
        return self._run("mmap_peer", args, lambda: self._mmap_peer(args, "mmap_peer"))

    def mmap64_peer(
        self, pid: int, addr: int, len: int, prot: int, flags: int, fd: int, off: int
    ) -> int:
        """R-PEER-6: mmap_peer with a 64-bit offset."""
        c = self.kernel.ctypes
        args = (c.pid_t("pid", pid), c.addr("addr", addr), c.size_t("len", len),
                c.int_("prot", prot), c.int_("flags", flags), c.int_("fd", fd),
                c.off64_t("off", off))  # fmt: skip
        return self._run("mmap64_peer", args, lambda: self._mmap_peer(args, "mmap64_peer"))

    def _mmap_peer(self, args: tuple[int, ...], call: str) -> int:
        pid, addr, length, prot, flags, fd, off = args
        return peer_calls.mmap_peer(self, self.kernel.lookup, pid, addr, length, prot,
                                    flags & 0xFFFFFFFF, fd, off, call)  # fmt: skip

    def munmap(self, addr: int, len: int) -> int:
        """SPEC 7: unmap every mapped page of the range."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len))
        return self._run("munmap", args, lambda: vmm.munmap(self.space, *args))

    def munmap_flags(self, addr: int, len: int, flags: int) -> int:
        """R-UNMAP-6: munmap with flags (which must be 0 in 8.0)."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len), c.unsigned_int("flags", flags))
        return self._run("munmap_flags", args, lambda: vmm.munmap_flags(self.space, *args))

    def munmap_peer(self, pid: int, addr: int, len: int) -> int:
        """R-UNMAP-7: munmap in process ``pid``."""
        c = self.kernel.ctypes
        args = (c.pid_t("pid", pid), c.addr("addr", addr), c.size_t("len", len))
        return self._run(
            "munmap_peer",
            args,
            lambda: peer_calls.munmap_peer(self, self.kernel.lookup, *args),
        )

    def mprotect(self, addr: int, len: int, prot: int) -> int:
        """SPEC 8: change the protection of a wholly mapped range."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len), c.int_("prot", prot))
        return self._run("mprotect", args, lambda: vmm.mprotect(self.space, self, *args))

    def mem_offset64(self, addr: int, fd: int, length: int) -> tuple[int, int]:
        """R-MOFF-1: ``(physical address, contiguous length)`` behind ``addr``."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.int_("fd", fd), c.size_t("length", length))
        return self._run(
            "mem_offset64", args, lambda: vmm.mem_offset64(self.space, *args, "mem_offset64")
        )

    def mem_offset(self, addr: int, fd: int, length: int) -> tuple[int, int]:
        """R-MOFF-2: mem_offset64 with an ``off_t`` result (the same on 64-bit arches)."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.int_("fd", fd), c.size_t("length", length))

        def run() -> tuple[int, int]:
            paddr, contig = vmm.mem_offset64(self.space, *args, "mem_offset")
            if self.kernel.machine.arch.bits == 32 and paddr > 0x7FFFFFFF:
                raise QnxError(
                    E.EOVERFLOW, f"R-MOFF-2: physical address {paddr:#x} does not fit off_t"
                )
            return paddr, contig

        return self._run("mem_offset", args, run)

    def mmap_device_memory(self, addr: int, len: int, prot: int, flags: int, physical: int) -> int:
        """R-MOFF-3: ``mmap64(addr, len, prot, flags & ~MAP_TYPE | MAP_PHYS | MAP_SHARED,
        NOFD, physical)``."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len), c.int_("prot", prot),
                c.int_("flags", flags), c.off64_t("physical", physical))  # fmt: skip
        a, n, pr, fl, phys = args
        fl = (fl & ~C.MAP_TYPE) | C.MAP_PHYS | C.MAP_SHARED
        return self._run(
            "mmap_device_memory",
            args,
            lambda: self._mmap((a, n, pr, fl, C.NOFD, phys), "mmap_device_memory"),
        )

    def munmap_device_memory(self, addr: int, len: int) -> int:
        """R-MOFF-3: munmap."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len))
        return self._run(
            "munmap_device_memory",
            args,
            lambda: vmm.munmap(self.space, *args, call="munmap_device_memory"),
        )

    # -- files and shared memory (SPEC 13) ----------------------------------------------

    def _path(self, name: str, value: object) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, not {type(value).__name__}")
        return value

    def open(self, path: str, oflag: int, mode: int = 0) -> int:
        """R-FS-2: open (or with O_CREAT create) a file; returns the lowest free fd."""
        c = self.kernel.ctypes
        args = (self._path("path", path), c.int_("oflag", oflag), c.unsigned_int("mode", mode))
        k = self.kernel
        return self._run("open", args, lambda: files.open_file(k.paths, k.pm, self, *args))

    def shm_open(self, name: object, oflag: int, mode: int = 0) -> int:
        """R-SHM-1..3: open a shared memory object (``/X`` is ``/dev/shmem/X``).

        ``name`` is a str, or ``constants.SHM_ANON`` for an unnamed object (7.1+).
        """
        c = self.kernel.ctypes
        oflag = c.int_("oflag", oflag)
        mode = c.unsigned_int("mode", mode)
        k = self.kernel
        if name is C.SHM_ANON:
            args: tuple[Any, ...] = (name, oflag, mode)
            return self._run("shm_open", args, lambda: files.shm_anon(k.paths, self, oflag, mode))
        path = self._path("name", name)
        return self._run(
            "shm_open",
            (path, oflag, mode),
            lambda: files.open_file(
                k.paths, k.pm, self, path, oflag, mode, call="shm_open", shm=True
            ),
        )

    def shm_unlink(self, name: str) -> int:
        """R-SHM-4: remove the name; the object lives while referenced."""
        path = self._path("name", name)
        k = self.kernel
        return self._run("shm_unlink", (path,), lambda: files.shm_unlink(k.paths, k.pm, self, path))

    def close(self, fd: int) -> int:
        fd = self.kernel.ctypes.int_("fd", fd)
        return self._run("close", (fd,), lambda: files.close(self.kernel.pm, self, fd))

    def dup(self, fd: int) -> int:
        fd = self.kernel.ctypes.int_("fd", fd)
        return self._run("dup", (fd,), lambda: files.dup(self, fd))

    def dup2(self, fd: int, fd2: int) -> int:
        c = self.kernel.ctypes
        args = (c.int_("fd", fd), c.int_("fd2", fd2))
        return self._run("dup2", args, lambda: files.dup2(self.kernel.pm, self, *args))

    def read(self, fd: int, n: int) -> bytes:
        """Up to ``n`` bytes from the file offset (R-FS-2)."""
        c = self.kernel.ctypes
        args = (c.int_("fd", fd), c.size_t("n", n))
        return self._run("read", args, lambda: files.read(self.kernel.pm, self, *args))

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        c = self.kernel.ctypes
        args = (c.int_("fd", fd), c.size_t("n", n), c.off64_t("offset", offset))
        return self._run("pread", args, lambda: files.read(self.kernel.pm, self, *args))

    def write(self, fd: int, data: bytes) -> int:
        """Write ``data`` at the file offset; past the end it grows the object (R-FS-2)."""
        fd = self.kernel.ctypes.int_("fd", fd)
        buf = _bytes("data", data)
        return self._run("write", (fd, buf), lambda: files.write(self.kernel.pm, self, fd, buf))

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        c = self.kernel.ctypes
        fd, off = c.int_("fd", fd), c.off64_t("offset", offset)
        buf = _bytes("data", data)
        return self._run(
            "pwrite", (fd, buf, off), lambda: files.write(self.kernel.pm, self, fd, buf, off)
        )

    def lseek(self, fd: int, offset: int, whence: int) -> int:
        c = self.kernel.ctypes
        args = (c.int_("fd", fd), c.off64_t("offset", offset), c.int_("whence", whence))
        return self._run("lseek", args, lambda: files.lseek(self, *args))

    def fstat(self, fd: int) -> Stat:
        fd = self.kernel.ctypes.int_("fd", fd)
        return self._run("fstat", (fd,), lambda: files.fstat(self.kernel.paths, self, fd))

    def ftruncate(self, fd: int, length: int) -> int:
        """R-SHM-5: size a file or shm object."""
        c = self.kernel.ctypes
        args = (c.int_("fd", fd), c.off64_t("length", length))
        return self._run("ftruncate", args, lambda: files.ftruncate(self.kernel.pm, self, *args))

    def shm_ctl(self, fd: int, flags: int, paddr: int, size: int) -> int:
        """R-SHM-6: configure a shm object (once, before it has a size)."""
        c = self.kernel.ctypes
        args = (c.int_("fd", fd), c.int_("flags", flags), c.unsigned("paddr", paddr, 64),
                c.unsigned("size", size, 64))  # fmt: skip
        return self._run("shm_ctl", args, lambda: self._shm_ctl(*args))

    def _shm_ctl(self, fd: int, flags: int, paddr: int, size: int) -> int:
        try:
            return files.shm_ctl(self.kernel.pm, self, fd, flags, paddr, size)
        except QnxError as err:
            errno = self.kernel.profile.shm_ctl_errno
            if errno is None:
                raise
            raise QnxError(  # SPEC 19 (6.4 libc): every shm_ctl failure reports ENOSYS
                errno,
                f"R-SHM-6 [6.4]: every shm_ctl failure is {E.errorcode[errno]} on this profile "
                f"(the rule that failed: {E.errorcode[err.errno]}, {err.reason})",
                call="shm_ctl",
            ) from None

    # -- typed memory (R-OBJ-1; POSIX 1003.1j) -----------------------------------------

    def posix_typed_mem_open(self, name: str, oflag: int, tflag: int) -> int:
        """Open the typed memory pool ``name``; returns an fd to map (R-OBJ-1).

        ``tflag``: at most one of POSIX_TYPED_MEM_ALLOCATE, _ALLOCATE_CONTIG,
        _MAP_ALLOCATABLE (else EINVAL); an unknown pool is ENOENT.
        """
        c = self.kernel.ctypes
        args = (self._path("name", name), c.int_("oflag", oflag), c.int_("tflag", tflag))
        return self._run("posix_typed_mem_open", args, lambda: self._typed_open(*args))

    def _typed_open(self, name: str, oflag: int, tflag: int) -> int:
        obj = tymem.open_pool(self.kernel.typed_memory, name, tflag)
        fd = files._check_fd_room(self, "posix_typed_mem_open", rule="R-OBJ-1")
        obj.ino = self.kernel.paths.new_ino()
        self.fdt.install(fd, OpenFile(obj, oflag), False)
        return fd

    def posix_typed_mem_get_info(self, fd: int) -> int:
        """``posix_tmi_length`` of a typed memory fd: EBADF, or ENODEV for another object."""
        fd = self.kernel.ctypes.int_("fd", fd)

        def run() -> int:
            of = files.get_open(self, fd, "posix_typed_mem_get_info", "R-OBJ-1")
            if not isinstance(of.obj, tymem.TypedMemory):
                raise QnxError(E.ENODEV, f"R-OBJ-1: fd {fd} is no typed memory object",
                               call="posix_typed_mem_get_info")  # fmt: skip
            return tymem.tmi_length(self.kernel.pm, of.obj)

        return self._run("posix_typed_mem_get_info", (fd,), run)

    def posix_mem_offset(self, addr: int, len: int) -> tuple[int, int, int]:
        """``(off, contig_len, fd)`` of the memory at ``addr`` (R-OBJ-1, R-MOFF-1).

        Not mapped: EACCES.  [SIM] When a typed memory fd open in this process has a pool
        holding the physical address, ``off`` is the offset in that pool and ``fd`` the
        lowest such fd; otherwise ``off`` is the physical address and ``fd`` is NOFD.
        """
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len))

        def run() -> tuple[int, int, int]:
            paddr, contig = vmm.mem_offset64(self.space, args[0], C.NOFD, args[1],
                                             "posix_mem_offset")  # fmt: skip
            for fd in sorted(self.fdt.fds):
                obj = self.fdt.fds[fd][0].obj
                if isinstance(obj, tymem.TypedMemory) and obj.pool_start <= paddr < obj.pool_end:
                    return paddr - obj.pool_start, min(contig, obj.pool_end - paddr), fd
            return paddr, contig, C.NOFD

        return self._run("posix_mem_offset", args, run)

    # -- control calls (SPEC 9, 10, 11, 16) ---------------------------------------------

    def msync(self, addr: int, len: int, flags: int) -> int:
        """SPEC 9: validate a sync request (shared memory is always coherent)."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len), c.int_("flags", flags))
        return self._run("msync", args, lambda: vmm.msync(self.space, self.kernel.profile, *args))

    def mlock(self, addr: int, len: int) -> int:
        """R-LOCK-1: lock a wholly mapped range (PROCMGR_AID_MEM_LOCK)."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len))
        return self._run("mlock", args, lambda: vmm.mlock(self.space, self, self.rlimits, *args))

    def munlock(self, addr: int, len: int) -> int:
        """R-LOCK-2: unlock a wholly mapped range."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len))
        return self._run("munlock", args, lambda: vmm.munlock(self.space, *args))

    def mlockall(self, flags: int) -> int:
        """R-LOCK-3 (a no-op returning 0 on QNX 8.0)."""
        flags = self.kernel.ctypes.int_("flags", flags)
        k = self.kernel
        return self._run(
            "mlockall",
            (flags,),
            lambda: vmm.mlockall(self.space, self, self.rlimits, k.profile, flags),
        )

    def munlockall(self) -> int:
        """R-LOCK-3 (a no-op returning 0 on QNX 8.0)."""
        return self._run("munlockall", (), lambda: vmm.munlockall(self.space, self.kernel.profile))

    def posix_madvise(self, addr: int, len: int, advice: int) -> int:
        """SPEC 11: returns the error number (0 on success) and never raises (R-MADV-1)."""
        c = self.kernel.ctypes
        args = (c.addr("addr", addr), c.size_t("len", len), c.int_("advice", advice))
        k = self.kernel

        def run() -> int:
            try:
                return vmm.posix_madvise(self.space, k.profile, *args)
            except QnxError as err:
                return err.errno

        try:
            return self._run("posix_madvise", args, run)
        except QnxError as err:  # R-MADV-1 / R-CALL-1: returned, never raised (a zombie: ESRCH)
            return err.errno

    def procmgr_ability(self, pid: int, *entries: int) -> int:
        """R-ABLE-4: change the abilities of ``pid`` (0: this process); returns an errno."""
        c = self.kernel.ctypes
        pid = c.pid_t("pid", pid)
        words = tuple(c.unsigned("entry", e, 64) for e in entries)

        def run() -> int:
            try:
                target = self._ability_target(pid)
                apply_entries(target.abilities, words, self.abilities, self.euid)
            except QnxError as err:
                return err.errno
            return 0

        try:
            return self._run("procmgr_ability", (pid, *words), run)
        except QnxError as err:  # R-CALL-1: returned, never raised (a zombie caller: ESRCH)
            return err.errno

    def _ability_target(self, pid: int) -> Process:
        """R-ABLE-4: ESRCH first, then PROCMGR_AID_XPROCESS_ABLE for another pid."""
        call = "procmgr_ability"
        if pid == 0 or pid == self.pid:
            return self
        target = self.kernel.lookup(pid)
        if target is None or not target.alive:
            raise QnxError(E.ESRCH, f"R-ABLE-4: pid {pid} does not exist or has exited", call=call)
        if not self.able(C.PROCMGR_AID_XPROCESS_ABLE, pid, pid):
            raise QnxError(
                E.EPERM, f"R-ABLE-4: changing pid {pid} needs PROCMGR_AID_XPROCESS_ABLE", call=call
            )
        return target

    # -- processes (SPEC 15) ------------------------------------------------------------

    def fork(self) -> int:
        """R-PROC-2: a child with a copy of this address space; returns the child's pid."""
        return self._run("fork", (), lambda: lifecycle.fork(self))

    def spawn(self, path: str = "/proc/boot/app", *, image: bool = True) -> Process:
        """R-PROC-1: a child process of this one, with this one's credentials."""
        self.kernel.check_caller(self, "spawn")
        child = self.kernel.spawn(path, uid=self.euid, gid=self.egid, parent=self, image=image)
        child.ruid, child.euid, child.suid = self.ruid, self.euid, self.suid
        child.rgid, child.egid, child.sgid = self.rgid, self.egid, self.sgid
        return child

    def exec(self, path: str) -> int:
        """R-PROC-3: replace the image: mappings and locks go, close-on-exec fds close."""
        path = self._path("path", path)
        return self._run("exec", (path,), lambda: lifecycle.exec_image(self, path))

    def exit(self, status: int = 0) -> None:
        """R-PROC-4: unmap everything; a zombie until the parent waits (orphans go at once)."""
        status = self.kernel.ctypes.int_("status", status)
        self._run("exit", (status,), lambda: lifecycle.exit_process(self, status))

    def waitpid(self, pid: int, options: int = 0) -> tuple[int, int]:
        """Reap an exited child: ``(pid, exit status)``; ``pid`` -1 means any child.

        ECHILD when there is no such child.  A child still running gives ``(0, 0)`` with
        WNOHANG and [SIM] EDEADLK without it (a simulated wait cannot block).
        """
        c = self.kernel.ctypes
        args = (c.pid_t("pid", pid), c.int_("options", options))
        return self._run("waitpid", args, lambda: lifecycle.waitpid(self, *args))

    # -- credentials (R-PROC-5) ---------------------------------------------------------

    def setuid(self, uid: int) -> int:
        """POSIX setuid: root sets all three uids; others may set euid to ruid or suid."""
        uid = self.kernel.ctypes.signed("uid", uid, 32)
        return self._run("setuid", (uid,), lambda: lifecycle.set_id(self, "uid", uid, every=True))

    def seteuid(self, uid: int) -> int:
        uid = self.kernel.ctypes.signed("uid", uid, 32)
        return self._run("seteuid", (uid,), lambda: lifecycle.set_id(self, "uid", uid, every=False))

    def setgid(self, gid: int) -> int:
        gid = self.kernel.ctypes.signed("gid", gid, 32)
        return self._run("setgid", (gid,), lambda: lifecycle.set_id(self, "gid", gid, every=True))

    def setegid(self, gid: int) -> int:
        gid = self.kernel.ctypes.signed("gid", gid, 32)
        return self._run("setegid", (gid,), lambda: lifecycle.set_id(self, "gid", gid, every=False))

    # -- rlimits (SPEC 18) --------------------------------------------------------------

    def getrlimit(self, resource: int) -> tuple[int, int]:
        resource = self.kernel.ctypes.int_("resource", resource)
        return self._run("getrlimit", (resource,), lambda: lifecycle.getrlimit(self, resource))

    def setrlimit(self, resource: int, soft: int, hard: int) -> int:
        c = self.kernel.ctypes
        args = (c.int_("resource", resource), c.rlim_t("soft", soft), c.rlim_t("hard", hard))
        return self._run("setrlimit", args, lambda: lifecycle.setrlimit(self, *args))


def _bytes(name: str, data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes-like, not {type(data).__name__}")
    return bytes(data)


__all__ = [
    "DEFAULT_RLIMITS",
    "FIRST_PID",
    "PROCNTO_PID",
    "RLIMIT_COUNT",
    "WNOHANG",
    "Kernel",
    "Process",
    "TraceEvent",
]
