"""Process: the facade through which a simulated process makes its calls.

Every simulated C call is a ``Process`` method with the C name and argument order
(R-CALL-1): it converts its arguments as C would (R-CALL-2) and has the kernel run the
rules (``vmm``, ``files``, ``peer``, ``lifecycle``) under its lock, returning the C success
value or raising ``QnxError``.  The ``Kernel`` (``qnxsim.kernel``) makes the objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from qnxsim import access, calls, files, handles, lifecycle, tymem, vmm
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import peer as peer_calls
from qnxsim.abilities import Abilities, apply_entries
from qnxsim.addrspace import AddressSpace, Mapping
from qnxsim.constants import PROCNTO_PID, WNOHANG
from qnxsim.errno import QnxError
from qnxsim.lifecycle import DEFAULT_RLIMITS, RLIMIT_COUNT
from qnxsim.pathspace import FdTable, OpenFile, Stat
from qnxsim.profile import ROOT_ONLY_AIDS, Profile
from qnxsim.trace import TraceEvent

if TYPE_CHECKING:
    from qnxsim.kernel import Kernel

T = TypeVar("T")
#: A process runs until it exits, then is a zombie until its parent reaps it (R-PROC-4).
ProcessState = Literal["running", "zombie"]


class Process:
    """A simulated process: credentials, limits, abilities, an address space, the calls.

    Every call has the C name and argument order, converts its arguments by its row of the
    call table (``qnxsim.calls``) and states its cost; ``libc`` gives the same calls with C
    conventions.  Methods by purpose --

    mapping: ``mmap``, ``mmap64``, ``mmap_peer``, ``mmap64_peer``, ``mmap_device_memory``,
    ``munmap``, ``munmap_flags``, ``munmap_peer``, ``munmap_device_memory``, ``mprotect``;
    controlling mappings: ``msync``, ``mlock``, ``munlock``, ``mlockall``, ``munlockall``,
    ``posix_madvise``;
    physical memory: ``mem_offset``, ``mem_offset64``, ``posix_mem_offset``,
    ``posix_mem_offset64``, ``mmap_device_io``, ``munmap_device_io``;
    files: ``open``, ``close``, ``dup``, ``dup2``, ``read``, ``pread``, ``write``, ``pwrite``,
    ``lseek``, ``fstat``, ``ftruncate``;
    shared memory: ``shm_open``, ``shm_unlink``, ``shm_ctl``, ``shm_ctl_special``, and its
    handles ``shm_create_handle``, ``shm_open_handle``, ``mmap_handle``,
    ``shm_delete_handle``, ``shm_revoke`` (SPEC 13);
    typed memory: ``posix_typed_mem_open``, ``posix_typed_mem_get_info``;
    memory access: ``read_memory``, ``write_memory``, ``check_access``;
    introspection: ``mappings``, ``mapping_at``;
    processes: ``fork``, ``spawn``, ``exec``, ``exit``, ``waitpid``;
    credentials, limits and abilities: ``setuid``, ``seteuid``, ``setgid``, ``setegid``,
    ``getrlimit``, ``setrlimit``, ``procmgr_ability``, ``able`` (the check the rules make).
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
        self.state: ProcessState = "running"
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
        """The address space as frozen records, ascending (R-MAP-1, R-MAP-2).

        Cost: O(n) in mappings.
        """
        with self.kernel.lock:
            return self.space.records()

    def mapping_at(self, addr: int) -> Mapping | None:
        """The record holding ``addr``, or None.

        Cost: O(log n) in mappings.
        """
        (addr,) = self._args("mapping_at", addr)
        with self.kernel.lock:
            return self.space.record_at(addr)

    # -- memory access (SPEC 14) --------------------------------------------------------

    def read_memory(self, addr: int, size: int) -> bytes:
        """Read as the process would; MemoryFault on a fault, with no bytes moved.

        ``size`` is a Python-level count: ValueError when it is negative or wider than the
        address space (it is not a C ``size_t`` and does not wrap).

        Cost: O(log n) in mappings, plus O(pages touched).
        """
        _python_size(self.kernel, "size", size, "read_memory")
        addr, size = self._args("read_memory", addr, size)
        with self.kernel.lock:
            return access.read(self.space, self.pid, addr, size)

    def write_memory(self, addr: int, data: bytes) -> None:
        """Write as the process would; MemoryFault on a fault, with no bytes moved.

        Cost: O(log n) in mappings, plus O(pages touched).
        """
        addr, buf = self._args("write_memory", addr, data)
        with self.kernel.lock:
            access.write(self.space, self.pid, addr, buf)
            self.kernel.changed()  # a first write may have given a page a frame of its own

    def check_access(self, addr: int, size: int, access_kind: str) -> None:
        """Raise MemoryFault if the access would fault; change nothing either way.

        ``size`` is a Python-level count, as for ``read_memory``.

        Cost: O(log n) in mappings, plus O(pages touched).
        """
        _python_size(self.kernel, "size", size, "check_access")
        addr, size, access_kind = self._args("check_access", addr, size, access_kind)
        kind = access.check_access_kind(access_kind)
        with self.kernel.lock:
            access.plan(self.space, self.pid, addr, size, kind)

    # -- memory calls -------------------------------------------------------------------

    def _args(self, call: str, *values: object) -> tuple[Any, ...]:
        """``values`` converted as the C parameters of ``call`` convert them (R-CALL-2),
        by its row in ``qnxsim.calls``."""
        return calls.convert(self.kernel.ctypes, call, values)

    def _run(self, call: str, args: tuple[Any, ...], fn: Callable[[], T]) -> T:
        return self.kernel.run_call(call, self, args, fn)

    def mmap(self, addr: int, len: int, prot: int, flags: int, fd: int, off: int) -> int:
        """SPEC 3: map memory into this process; returns the address.

        Cost: O(log n) in mappings, plus O(pages) to allocate memory that is not lazy.
        """
        args = self._args("mmap", addr, len, prot, flags, fd, off)
        return self._run("mmap", args, lambda: self._mmap(args, "mmap"))

    def mmap64(self, addr: int, len: int, prot: int, flags: int, fd: int, off: int) -> int:
        """SPEC 3 with a 64-bit offset (R-CALL-3).

        Cost: O(log n) in mappings, plus O(pages) to allocate memory that is not lazy.
        """
        args = self._args("mmap64", addr, len, prot, flags, fd, off)
        return self._run("mmap64", args, lambda: self._mmap(args, "mmap64"))

    def _mmap(self, args: tuple[int, ...], call: str) -> int:
        addr, length, prot, flags, fd, off = args
        return vmm.mmap(self.space, self.rlimits, self, addr, length, prot, flags & 0xFFFFFFFF,
                        fd, off, call=call)  # fmt: skip

    def mmap_peer(
        self, pid: int, addr: int, len: int, prot: int, flags: int, fd: int, off: int
    ) -> int:
        """SPEC 6: map into process ``pid``; the address is meaningful only there.

        Cost: O(log n) in mappings of the target, plus O(pages) to allocate memory that is
        not lazy.
        """
        args = self._args("mmap_peer", pid, addr, len, prot, flags, fd, off)
        return self._run("mmap_peer", args, lambda: self._mmap_peer(args, "mmap_peer"))

    def mmap64_peer(
        self, pid: int, addr: int, len: int, prot: int, flags: int, fd: int, off: int
    ) -> int:
        """R-PEER-6: mmap_peer with a 64-bit offset.

        Cost: O(log n) in mappings of the target, plus O(pages) to allocate memory that is
        not lazy.
        """
        args = self._args("mmap64_peer", pid, addr, len, prot, flags, fd, off)
        return self._run("mmap64_peer", args, lambda: self._mmap_peer(args, "mmap64_peer"))

    def _mmap_peer(self, args: tuple[int, ...], call: str) -> int:
        pid, addr, length, prot, flags, fd, off = args
        return peer_calls.mmap_peer(self, self.kernel.lookup, pid, addr, length, prot,
                                    flags & 0xFFFFFFFF, fd, off, call)  # fmt: skip

    def munmap(self, addr: int, len: int) -> int:
        """SPEC 7: unmap every mapped page of the range.

        Cost: O(log n + k) in mappings, k the records in the range, plus O(frames freed).
        """
        args = self._args("munmap", addr, len)
        return self._run("munmap", args, lambda: vmm.munmap(self.space, *args))

    def munmap_flags(self, addr: int, len: int, flags: int) -> int:
        """R-UNMAP-6: munmap with flags (which must be 0 in 8.0).

        Cost: O(log n + k) in mappings, k the records in the range, plus O(frames freed).
        """
        args = self._args("munmap_flags", addr, len, flags)
        return self._run("munmap_flags", args, lambda: vmm.munmap_flags(self.space, *args))

    def munmap_peer(self, pid: int, addr: int, len: int) -> int:
        """R-UNMAP-7: munmap in process ``pid``.

        Cost: O(log n + k) in the target's mappings, k the records in the range, plus
        O(frames freed).
        """
        args = self._args("munmap_peer", pid, addr, len)
        return self._run(
            "munmap_peer",
            args,
            lambda: peer_calls.munmap_peer(self, self.kernel.lookup, *args),
        )

    def mprotect(self, addr: int, len: int, prot: int) -> int:
        """SPEC 8: change the protection of a wholly mapped range.

        Cost: O(log n + k) in mappings, k the records in the range.
        """
        args = self._args("mprotect", addr, len, prot)
        return self._run("mprotect", args, lambda: vmm.mprotect(self.space, self, *args))

    def mem_offset64(self, addr: int, fd: int, length: int) -> tuple[int, int]:
        """R-MOFF-1: ``(physical address, contiguous length)`` behind ``addr``.

        Cost: O(log n) in mappings, plus O(1) to allocate the page behind ``addr`` if it has
        none.
        """
        addr, fd, length = args = self._args("mem_offset64", addr, fd, length)
        return self._run(
            "mem_offset64",
            args,
            lambda: vmm.mem_offset64(self.space, addr, fd, length, "mem_offset64"),
        )

    def mem_offset(self, addr: int, fd: int, length: int) -> tuple[int, int]:
        """R-MOFF-2: mem_offset64 with an ``off_t`` result (the same on 64-bit arches).

        Cost: O(log n) in mappings, plus O(1) to allocate the page behind ``addr`` if it has
        none.
        """
        addr, fd, length = args = self._args("mem_offset", addr, fd, length)

        def run() -> tuple[int, int]:
            if self.kernel.machine.arch.bits == 32:
                self._check_off_t(addr, fd, length)
            return vmm.mem_offset64(self.space, addr, fd, length, "mem_offset")

        return self._run("mem_offset", args, run)

    def _check_off_t(self, addr: int, fd: int, length: int) -> None:
        """R-MOFF-2 on a 32-bit arch, checked before a frame is given (R-CALL-5): EOVERFLOW
        when the physical address mem_offset64 would give does not fit ``off_t``.  What
        mem_offset64 itself refuses (fd, unmapped, no memory) is left to it."""
        space = self.space
        ps = space.m.page_size
        page = addr - addr % ps
        if fd != C.NOFD or space.map.find(page) is None:
            return
        frame = access.touch_frame(space, page)
        if frame is not None and frame + addr % ps > 0x7FFFFFFF:
            paddr = frame + addr % ps
            raise QnxError(E.EOVERFLOW, f"R-MOFF-2: physical address {paddr:#x} does not fit off_t")

    def mmap_device_memory(self, addr: int, len: int, prot: int, flags: int, physical: int) -> int:
        """R-MOFF-3: ``mmap64(addr, len, prot, flags & ~MAP_TYPE | MAP_PHYS | MAP_SHARED,
        NOFD, physical)``.

        Cost: O(log n) in mappings.
        """
        args = self._args("mmap_device_memory", addr, len, prot, flags, physical)
        a, n, pr, fl, phys = args
        fl = (fl & ~C.MAP_TYPE) | C.MAP_PHYS | C.MAP_SHARED
        return self._run(
            "mmap_device_memory",
            args,
            lambda: self._mmap((a, n, pr, fl, C.NOFD, phys), "mmap_device_memory"),
        )

    def munmap_device_memory(self, addr: int, len: int) -> int:
        """R-MOFF-3: munmap.

        Cost: O(log n + k) in mappings, k the records in the range.
        """
        args = self._args("munmap_device_memory", addr, len)
        return self._run(
            "munmap_device_memory",
            args,
            lambda: vmm.munmap(self.space, *args, call="munmap_device_memory"),
        )

    def mmap_device_io(self, len: int, io: int) -> int:
        """R-DEVIO-1: a handle for in*()/out*(): ``io`` itself on x86/x86_64, else a
        MAP_PHYS mapping of ``io`` (PROCMGR_AID_MEM_PHYS).

        Cost: O(1) on x86/x86_64; else mmap's, O(log n) in mappings.
        """
        args = self._args("mmap_device_io", len, io)
        return self._run("mmap_device_io", args, lambda: vmm.mmap_device_io(
            self.space, self.rlimits, self, *args))  # fmt: skip

    def munmap_device_io(self, io: int, len: int) -> int:
        """R-DEVIO-2: munmap on arches where mmap_device_io maps; 0 on x86/x86_64.

        Cost: O(1) on x86/x86_64; else munmap's, O(log n + k) in mappings.
        """
        args = self._args("munmap_device_io", io, len)
        return self._run("munmap_device_io", args, lambda: vmm.munmap_device_io(self.space, *args))

    # -- files and shared memory (SPEC 13) ----------------------------------------------

    def open(self, path: str, oflag: int, mode: int = 0) -> int:
        """R-FS-2: open (or with O_CREAT create) a file; returns the lowest free fd.

        Cost: O(path length + fds); independent of the mappings.
        """
        args = self._args("open", path, oflag, mode)
        k = self.kernel
        return self._run("open", args, lambda: files.open_file(k.paths, k.pm, self, *args))

    def shm_open(self, name: object, oflag: int, mode: int = 0) -> int:
        """R-SHM-1..3: open a shared memory object (``/X`` is ``/dev/shmem/X``).

        ``name`` is a str, or ``constants.SHM_ANON`` for an unnamed object (7.1+).

        Cost: O(name length + fds); independent of the mappings.
        """
        args = self._args("shm_open", name, oflag, mode)
        name, oflag, mode = args
        k = self.kernel
        if name is C.SHM_ANON:
            return self._run("shm_open", args, lambda: files.shm_anon(k.paths, self, oflag, mode))
        path = calls.check_str("name", name)
        return self._run(
            "shm_open",
            (path, oflag, mode),
            lambda: files.open_file(
                k.paths, k.pm, self, path, oflag, mode, call="shm_open", shm=True
            ),
        )

    def shm_unlink(self, name: str) -> int:
        """R-SHM-4: remove the name; the object lives while referenced.

        Cost: O(name length), plus O(frames) when the last reference goes.
        """
        (path,) = self._args("shm_unlink", name)
        k = self.kernel
        return self._run("shm_unlink", (path,), lambda: files.shm_unlink(k.paths, k.pm, self, path))

    def close(self, fd: int) -> int:
        """Close ``fd``; the object goes with its last reference (R-FS-2).

        Cost: O(1), plus O(frames) of the object when the last reference goes.
        """
        (fd,) = self._args("close", fd)
        return self._run("close", (fd,), lambda: files.close(self.kernel.pm, self, fd))

    def dup(self, fd: int) -> int:
        """A copy of ``fd`` at the lowest free fd, sharing its open file description.

        Cost: O(fds).
        """
        (fd,) = self._args("dup", fd)
        return self._run("dup", (fd,), lambda: files.dup(self, fd))

    def dup2(self, fd: int, fd2: int) -> int:
        """A copy of ``fd`` at ``fd2``, closing what ``fd2`` held first.

        Cost: O(1), plus O(frames) of an object whose last reference ``fd2`` held.
        """
        args = self._args("dup2", fd, fd2)
        return self._run("dup2", args, lambda: files.dup2(self.kernel.pm, self, *args))

    def read(self, fd: int, n: int) -> bytes:
        """Up to ``n`` bytes from the file offset (R-FS-2).

        ``n`` is the size of the caller's buffer, a Python-level count (ValueError when
        negative); the result holds at most what exists, as C's read is bounded by its
        buffer (README, "Bad input").

        Cost: O(bytes read).
        """
        _python_size(self.kernel, "n", n, "read")
        args = self._args("read", fd, n)
        return self._run("read", args, lambda: files.read(self.kernel.pm, self, *args))

    def pread(self, fd: int, n: int, offset: int) -> bytes:
        """Up to ``n`` bytes from ``offset``; the file offset does not move (R-FS-2).

        Cost: O(bytes read).
        """
        _python_size(self.kernel, "n", n, "pread")
        args = self._args("pread", fd, n, offset)
        return self._run("pread", args, lambda: files.read(self.kernel.pm, self, *args))

    def write(self, fd: int, data: bytes) -> int:
        """Write ``data`` at the file offset; past the end it grows the object (R-FS-2).

        Cost: O(bytes written), plus O(pages) the object grows by.
        """
        fd, buf = args = self._args("write", fd, data)
        return self._run("write", args, lambda: files.write(self.kernel.pm, self, fd, buf))

    def pwrite(self, fd: int, data: bytes, offset: int) -> int:
        """Write ``data`` at ``offset``; the file offset does not move (R-FS-2).

        Cost: O(bytes written), plus O(pages) the object grows by.
        """
        fd, buf, off = args = self._args("pwrite", fd, data, offset)
        return self._run("pwrite", args, lambda: files.write(self.kernel.pm, self, fd, buf, off))

    def lseek(self, fd: int, offset: int, whence: int) -> int:
        """Move the file offset of ``fd`` (SEEK_SET, SEEK_CUR, SEEK_END).

        Cost: O(1).
        """
        args = self._args("lseek", fd, offset, whence)
        return self._run("lseek", args, lambda: files.lseek(self, *args))

    def fstat(self, fd: int) -> Stat:
        """The ``Stat`` record of the object behind ``fd``.

        Cost: O(1).
        """
        (fd,) = self._args("fstat", fd)
        return self._run("fstat", (fd,), lambda: files.fstat(self.kernel.paths, self, fd))

    def ftruncate(self, fd: int, length: int) -> int:
        """R-SHM-5: size a file or shm object.

        Cost: O(pages) added or released.
        """
        args = self._args("ftruncate", fd, length)
        return self._run("ftruncate", args, lambda: files.ftruncate(self.kernel.pm, self, *args))

    def shm_ctl(self, fd: int, flags: int, paddr: int, size: int) -> int:
        """R-SHM-6..10: give a shm object its memory (once) and its attributes.

        Cost: O(pages) the object is given.
        """
        args = self._args("shm_ctl", fd, flags, paddr, size)
        return self._run("shm_ctl", args, lambda: files.shm_ctl(self.kernel.pm, self, *args))

    def shm_ctl_special(self, fd: int, flags: int, paddr: int, size: int, special: int) -> int:
        """R-SHM-11: shm_ctl with a processor-specific ``special`` value (0: shm_ctl).

        Cost: O(pages) the object is given.
        """
        args = self._args("shm_ctl_special", fd, flags, paddr, size, special)
        return self._run(
            "shm_ctl_special", args, lambda: files.shm_ctl(self.kernel.pm, self, *args)
        )

    # -- shared memory handles (SPEC 13.3; the rules are in handles.py) -----------------

    def shm_create_handle(self, fd: int, pid: int, flags: int, options: int) -> int:
        """R-HANDLE-1: a handle for ``pid`` on the shm object of ``fd`` (C: ``*handlep``).

        Cost: O(1); independent of the mappings.
        """
        args = self._args("shm_create_handle", fd, pid, flags, options)
        k = self.kernel
        return self._run(
            "shm_create_handle", args, lambda: handles.create(k.shm_handles, self, k.running, *args)
        )

    def shm_open_handle(self, handle: int, flags: int) -> int:
        """R-HANDLE-2: an fd on the handle's object; uses the handle up.

        Cost: O(fds).
        """
        args = self._args("shm_open_handle", handle, flags)
        k = self.kernel
        return self._run(
            "shm_open_handle", args, lambda: handles.open_handle(k.shm_handles, k.pm, self, *args)
        )

    def mmap_handle(self, addr: int, len: int, prot: int, flags: int, handle: int, off: int) -> int:
        """R-HANDLE-3: map the handle's object here, as mmap would; uses the handle up.

        Cost: O(log n) in mappings, plus O(pages) to allocate memory that is not lazy.
        """
        args = self._args("mmap_handle", addr, len, prot, flags, handle, off)
        return self._run("mmap_handle", args, lambda: self._mmap_handle(*args))

    def _mmap_handle(self, addr: int, len: int, prot: int, flags: int, h: int, off: int) -> int:
        k = self.kernel
        return handles.map_handle(k.shm_handles, k.pm, self.space, self.rlimits, self, addr,
                                  len, prot, flags & 0xFFFFFFFF, h, off)  # fmt: skip

    def shm_delete_handle(self, handle: int) -> int:
        """R-HANDLE-4: delete an unused handle this process made or was given.

        Cost: O(1).
        """
        args = self._args("shm_delete_handle", handle)
        k = self.kernel
        return self._run(
            "shm_delete_handle", args, lambda: handles.delete(k.shm_handles, k.pm, self, *args)
        )

    def shm_revoke(self, fd: int, pid: int) -> int:
        """R-HANDLE-6: take the object of ``fd`` away from ``pid`` (creator only).

        Cost: O(n) in the target's mappings, plus O(frames freed).
        """
        args = self._args("shm_revoke", fd, pid)
        k = self.kernel
        return self._run(
            "shm_revoke", args, lambda: handles.revoke(k.shm_handles, k.pm, self, k.running, *args)
        )

    # -- typed memory (SPEC 12.1; POSIX 1003.1j) ---------------------------------------

    def posix_typed_mem_open(self, name: str, oflag: int, tflag: int) -> int:
        """R-TYMEM-2: an fd on the typed memory pool ``name`` (exact with a leading "/",
        else the tail of a pool name), open with ``oflag``'s access mode.

        Cost: O(pools + fds).
        """
        args = self._args("posix_typed_mem_open", name, oflag, tflag)
        return self._run("posix_typed_mem_open", args, lambda: self._typed_open(*args))

    def _typed_open(self, name: str, oflag: int, tflag: int) -> int:
        k = self.kernel
        obj = tymem.open_pool(k.typed_memory, name, tflag, euid=self.euid,
                              direct_needs_root=k.profile.tymem_direct_needs_root)  # fmt: skip
        fd = files._check_fd_room(self, "posix_typed_mem_open", rule="R-TYMEM-2")
        obj.ino = k.paths.new_ino()
        self.fdt.install(fd, OpenFile(obj, oflag), False)
        return fd

    def posix_typed_mem_get_info(self, fd: int) -> int:
        """R-TYMEM-3: ``posix_tmi_length`` of a typed memory fd (EBADF, ENODEV).  C returns
        the error number; ``libc`` gives ``(errno, length)`` (R-CALL-1).

        Cost: O(free runs of RAM in the pool).
        """
        (fd,) = self._args("posix_typed_mem_get_info", fd)

        def run() -> int:
            call = "posix_typed_mem_get_info"
            of = files.get_open(self, fd, call, "R-TYMEM-3")
            if not isinstance(of.obj, tymem.TypedMemory):
                raise QnxError(E.ENODEV, f"R-TYMEM-3: fd {fd} is no typed memory object", call=call)
            return tymem.tmi_length(self.kernel.pm, of.obj)

        return self._run("posix_typed_mem_get_info", (fd,), run)

    def posix_mem_offset(self, addr: int, len: int) -> tuple[int, int, int]:
        """R-MOFF-4: ``(off, contig_len, fd)`` of the memory at ``addr``: the physical
        address (7.1, 8.0), how much of ``len`` is contiguous, and the lowest fd open on
        the mapping's object or typed-memory pool (else NOFD).  C returns the error
        number; ``libc`` gives ``(errno, result)`` (R-CALL-1).

        Cost: O(log n) in mappings, plus O(fds).
        """
        args = a, n = self._args("posix_mem_offset", addr, len)
        bits = self.kernel.machine.arch.bits
        return self._run("posix_mem_offset", args, lambda: vmm.posix_mem_offset(
            self.space, self.fdt, self.profile, a, n, "posix_mem_offset", bits))  # fmt: skip

    def posix_mem_offset64(self, addr: int, len: int) -> tuple[int, int, int]:
        """R-MOFF-4 with an ``off64_t`` result (the same as posix_mem_offset on 64-bit).

        Cost: O(log n) in mappings, plus O(fds).
        """
        args = a, n = self._args("posix_mem_offset64", addr, len)
        return self._run("posix_mem_offset64", args, lambda: vmm.posix_mem_offset(
            self.space, self.fdt, self.profile, a, n, "posix_mem_offset64", 64))  # fmt: skip

    # -- control calls (SPEC 9, 10, 11, 16) ---------------------------------------------

    def msync(self, addr: int, len: int, flags: int) -> int:
        """SPEC 9: validate a sync request (shared memory is always coherent).

        Cost: O(log n + k) in mappings, k the records in the range.
        """
        args = self._args("msync", addr, len, flags)
        return self._run("msync", args, lambda: vmm.msync(self.space, self.kernel.profile, *args))

    def mlock(self, addr: int, len: int) -> int:
        """SPEC 10: 8.0 checks the range is mapped and backed (R-LOCK-5); 7.1 and 6.4 lock
        it (R-LOCK-1, PROCMGR_AID_MEM_LOCK).

        Cost: O(log n + k) in mappings, k the records (and runs of frames) in the range.
        """
        args = self._args("mlock", addr, len)
        return self._run("mlock", args, lambda: vmm.mlock(self.space, self, self.rlimits, *args))

    def munlock(self, addr: int, len: int) -> int:
        """SPEC 10: 8.0 returns 0 (R-LOCK-6); 7.1 and 6.4 unlock a wholly mapped range.

        Cost: O(1) on 8.0; else O(log n + k) in mappings, k the records in the range.
        """
        args = self._args("munlock", addr, len)
        return self._run("munlock", args, lambda: vmm.munlock(self.space, self.profile, *args))

    def mlockall(self, flags: int) -> int:
        """R-LOCK-3 (a no-op returning 0 on QNX 8.0).

        Cost: O(1) on 8.0; O(n) in mappings where the profile records locks.
        """
        (flags,) = self._args("mlockall", flags)
        k = self.kernel
        return self._run(
            "mlockall",
            (flags,),
            lambda: vmm.mlockall(self.space, self, self.rlimits, k.profile, flags),
        )

    def munlockall(self) -> int:
        """R-LOCK-3 (a no-op returning 0 on QNX 8.0).

        Cost: O(1) on 8.0; O(n) in mappings where the profile records locks.
        """
        return self._run("munlockall", (), lambda: vmm.munlockall(self.space, self.kernel.profile))

    def posix_madvise(self, addr: int, len: int, advice: int) -> int:
        """SPEC 11: returns the error number (0 on success) and never raises (R-MADV-1).

        Cost: O(log n + k) in mappings, k the records in the range, plus O(frames
        discarded).
        """
        args = self._args("posix_madvise", addr, len, advice)
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
        """R-ABLE-4: change the abilities of ``pid`` (0: this process); returns an errno.

        Cost: O(e x a): e the entries given, a the entries of the target's table.
        """
        args = self._args("procmgr_ability", pid, *entries)
        pid, words = args[0], args[1:]

        def run() -> int:
            try:
                target = self._ability_target(pid)
                apply_entries(target.abilities, words, self.abilities, self.euid)
            except QnxError as err:
                return err.errno
            return 0

        try:
            return self._run("procmgr_ability", args, run)
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
        """R-PROC-2: a child with a copy of this address space; returns the child's pid.

        Cost: O(n) in mappings (the child's copy), plus O(fds).
        """
        return self._run("fork", (), lambda: lifecycle.fork(self))

    def spawn(self, path: str = "/proc/boot/app", *, image: bool = True) -> Process:
        """R-PROC-1: a child process of this one, with this one's credentials.

        Cost: O(fds) inherited, plus the image's few mappings.
        """
        self.kernel.check_caller(self, "spawn")
        child = self.kernel.spawn(path, uid=self.euid, gid=self.egid, parent=self, image=image)
        child.ruid, child.euid, child.suid = self.ruid, self.euid, self.suid
        child.rgid, child.egid, child.sgid = self.rgid, self.egid, self.sgid
        return child

    def exec(self, path: str) -> int:
        """R-PROC-3: replace the image: mappings and locks go, close-on-exec fds close.

        Cost: O(n) in mappings and O(fds): everything of the old image goes.
        """
        (path,) = args = self._args("exec", path)
        return self._run("exec", args, lambda: lifecycle.exec_image(self, path))

    def exit(self, status: int = 0) -> None:
        """R-PROC-4: unmap everything; a zombie until the parent waits (orphans go at once).

        Cost: O(n) in mappings, O(fds) and O(processes) (the children are re-parented).
        """
        (status,) = self._args("exit", status)
        self._run("exit", (status,), lambda: lifecycle.exit_process(self, status))

    def waitpid(self, pid: int, options: int = 0) -> tuple[int, int]:
        """Reap an exited child: ``(pid, exit status)``; ``pid`` -1 means any child.

        ECHILD when there is no such child.  A child still running gives ``(0, 0)`` with
        WNOHANG and [SIM] EDEADLK without it (a simulated wait cannot block).

        Cost: O(processes).
        """
        args = self._args("waitpid", pid, options)
        return self._run("waitpid", args, lambda: lifecycle.waitpid(self, *args))

    # -- credentials (R-PROC-5) ---------------------------------------------------------

    def setuid(self, uid: int) -> int:
        """POSIX setuid: root sets all three uids; others may set euid to ruid or suid.

        Cost: O(1).
        """
        (uid,) = self._args("setuid", uid)
        return self._run("setuid", (uid,), lambda: lifecycle.set_id(self, "uid", uid, every=True))

    def seteuid(self, uid: int) -> int:
        """POSIX seteuid: root sets any euid; others only the real or saved uid.

        Cost: O(1).
        """
        (uid,) = self._args("seteuid", uid)
        return self._run("seteuid", (uid,), lambda: lifecycle.set_id(self, "uid", uid, every=False))

    def setgid(self, gid: int) -> int:
        """POSIX setgid: root sets all three gids; others may set egid to rgid or sgid.

        Cost: O(1).
        """
        (gid,) = self._args("setgid", gid)
        return self._run("setgid", (gid,), lambda: lifecycle.set_id(self, "gid", gid, every=True))

    def setegid(self, gid: int) -> int:
        """POSIX setegid: root sets any egid; others only the real or saved gid.

        Cost: O(1).
        """
        (gid,) = self._args("setegid", gid)
        return self._run("setegid", (gid,), lambda: lifecycle.set_id(self, "gid", gid, every=False))

    # -- rlimits (SPEC 18) --------------------------------------------------------------

    def getrlimit(self, resource: int) -> tuple[int, int]:
        """``(soft, hard)`` of limit ``resource`` (SPEC 18).

        Cost: O(1).
        """
        (resource,) = self._args("getrlimit", resource)
        return self._run("getrlimit", (resource,), lambda: lifecycle.getrlimit(self, resource))

    def setrlimit(self, resource: int, soft: int, hard: int) -> int:
        """Set limit ``resource``; raising the hard limit needs euid 0 (SPEC 18).

        Cost: O(1).
        """
        args = self._args("setrlimit", resource, soft, hard)
        return self._run("setrlimit", args, lambda: lifecycle.setrlimit(self, *args))


def __getattr__(name: str) -> object:
    """``from qnxsim.process import Kernel`` keeps working for users: ``Kernel`` moved to
    ``qnxsim.kernel``, a layer above, so it is imported only when asked for."""
    if name == "Kernel":
        from qnxsim.kernel import Kernel

        return Kernel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_RLIMITS",
    "PROCNTO_PID",
    "RLIMIT_COUNT",
    "WNOHANG",
    "Process",
    "TraceEvent",
]


def _python_size(kernel: Kernel, name: str, value: object, call: str) -> int:
    """A byte count a Python caller gives (``read_memory``, ``read``): an int from 0 to the
    largest address; ValueError outside that range, since a Python size does not wrap."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{call}: {name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= kernel.ctypes.word_max:
        raise ValueError(
            f"{call}: {name} {value} is not a byte count from 0 to {kernel.ctypes.word_max:#x}"
            " (a Python-level size; it does not wrap as a C size_t would)"
        )
    return value
