"""Kernel (one simulated QNX machine, its pid table) and Process (creds, limits, calls).

Every simulated C call is a ``Process`` method with the C name and argument order
(R-CALL-1): it converts its arguments as C would (R-CALL-2), takes the kernel's lock, runs
the rules (``vmm``, ``peer``) and returns the C success value or raises ``QnxError``.
"""

from __future__ import annotations

import copy
import itertools
import random
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from qnxsim import access, files, trace, tymem, vmm
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import peer as peer_calls
from qnxsim.abilities import Abilities, apply_entries
from qnxsim.addrspace import AddressSpace, Entry, Machine, Mapping
from qnxsim.arch import CTypes, check_kernel_config
from qnxsim.errno import QnxError
from qnxsim.files import release_if_dead
from qnxsim.objects import MemObject
from qnxsim.pathspace import (
    DEV_MEM,
    DEV_ZERO,
    SHMEM_DIR,
    FdTable,
    OpenFile,
    PathSpace,
    Stat,
    normalize,
)
from qnxsim.physmem import MemInfo, PhysMem
from qnxsim.profile import PROFILES, ROOT_ONLY_AIDS, Profile
from qnxsim.trace import TraceEvent, TraceList

T = TypeVar("T")

PROCNTO_PID = 1  # R-SYS-7
FIRST_PID = 2
DEFAULT_RLIMITS: dict[int, int] = {C.RLIMIT_NOFILE: 1000}  # others: RLIM_INFINITY (SPEC 18)
RLIMIT_COUNT = 9  # RLIMIT_CPU .. RLIMIT_NPROC (SPEC 18)
WNOHANG = 0x40  # QNX <sys/wait.h>

# R-PROC-1 [SIM]: the realistic image's sizes and names.
IMAGE_TEXT = 0x10000
IMAGE_DATA = 0x4000
LIBC_PATH = "/proc/boot/libc.so.6"
LIBC_TEXT = 0xB0000
LIBC_DATA = 0x4000
STACK_SIZE = 0x80000
STACK_GUARD = 0x1000


_NOT_STATE = ("lock", "_handles")  # what snapshot() leaves out


class _Everything:
    """A caller with every ability and no fds: the kernel itself, building an image."""

    def __init__(self, profile: Profile) -> None:
        self.fdt = FdTable()
        self.profile = profile

    def able(self, aid: int, lo: int | None, hi: int | None) -> bool:
        return True


class Kernel:
    """One simulated QNX machine: physical memory, the pid table, the processes (R-SYS-1).

    >>> k = Kernel()
    >>> p = k.spawn(image=False)
    >>> hex(p.mmap(0, 4096, C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0))
    '0x8000000'
    """

    def __init__(
        self,
        arch: str | None = None,
        version: str = "8.0",
        ram: int = 1 << 30,
        page_size: int = 4096,
        aslr: bool = False,
        seed: int = 0,
        trace: bool = False,
        typed_memory: dict[str, tuple[int, int]] | None = None,
    ) -> None:
        if arch is None and isinstance(version, str) and version in PROFILES:
            arch = PROFILES[version].default_arch  # SPEC 19: the profile's default arch
        if not isinstance(arch, str):
            raise ValueError("arch must be a str (or None for the version's default)")
        spec = check_kernel_config(arch, version, ram, page_size)
        if not isinstance(aslr, bool):
            raise ValueError("aslr must be a bool")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError("seed must be an int")
        self._version = version
        self.profile: Profile = PROFILES[version]
        self._aslr = aslr
        self._seed = seed
        self.pm = PhysMem(ram, page_size)
        # R-OBJ-1: typed memory pools, name -> (physical start, size)
        pools = tymem.default_pools(ram) if typed_memory is None else typed_memory
        self.typed_memory = tymem.check_pools(pools, self.pm)
        self.paths = PathSpace()
        rng = random.Random(seed) if aslr else None
        self.machine = Machine(spec, page_size, self.pm, rng, self.paths.dev_mem)
        self.ctypes = CTypes(spec.bits)
        self.lock = threading.RLock()
        self.tracing = bool(trace)
        self.trace = TraceList()  # TraceEvents, only when tracing (qnxsim.trace)
        self._procs: dict[int, Process] = {}
        self._next_pid = FIRST_PID
        # Every Process object ever made, by pid (pids are never reused), so that
        # ``restore`` can bring the caller's own handles back to their old state.
        self._handles: dict[int, Process] = {}
        self._add_process(Process(self, PROCNTO_PID, 0, "procnto", 0, 0))

    # -- configuration ------------------------------------------------------------------

    @property
    def arch(self) -> str:
        return self.machine.arch.name

    @property
    def version(self) -> str:
        return self._version

    @property
    def ram(self) -> int:
        return self.pm.ram

    @property
    def page_size(self) -> int:
        return self.machine.page_size

    @property
    def aslr(self) -> bool:
        return self._aslr

    @property
    def constants(self) -> Any:
        """This kernel's constants: ``qnxsim.constants`` with the profile's values (SPEC 19)."""
        return self.profile.constants()

    @property
    def seed(self) -> int:
        return self._seed

    def __repr__(self) -> str:
        return (
            f"Kernel(arch={self.arch!r}, version={self.version!r}, ram={self.ram:#x}, "
            f"page_size={self.page_size}, processes={len(self._procs)})"
        )

    # -- processes ----------------------------------------------------------------------

    def process(self, pid: int) -> Process:
        """The process with this pid (running or zombie); LookupError if there is none."""
        proc = self._procs.get(pid)
        if proc is None:
            raise LookupError(f"no process with pid {pid}")
        return proc

    def processes(self) -> tuple[Process, ...]:
        """Every process in the pid table (zombies included), ascending by pid."""
        return tuple(self._procs[pid] for pid in sorted(self._procs))

    def _lookup(self, pid: int) -> Process | None:
        return self._procs.get(pid)

    def spawn(
        self,
        path: str = "/proc/boot/app",
        *,
        uid: int = 0,
        gid: int = 0,
        parent: Process | None = None,
        image: bool = True,
    ) -> Process:
        """A new process (R-PROC-1); ``parent`` None makes it a child of procnto.

        A child of a parent inherits its umask, abilities (those marked inherit) and
        rlimits; ``uid``/``gid`` give its credentials.  ``image=True`` maps a realistic
        program image, libc and a main stack; ``image=False`` leaves it empty.
        """
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        uid = self.ctypes.signed("uid", uid, 32)
        gid = self.ctypes.signed("gid", gid, 32)
        if parent is not None and not isinstance(parent, Process):
            raise TypeError("parent must be a Process or None")
        with self.lock:
            if parent is not None:
                parent._require_alive("spawn")  # [SIM] an exited process has no children
            ppid = parent.pid if parent is not None else PROCNTO_PID
            proc = Process(self, self._new_pid(), ppid, path, uid, gid)
            if parent is not None:
                proc.umask = parent.umask
                proc.abilities = parent.abilities.inherited()
                proc.rlimits = dict(parent.rlimits)
                for fd, (of, cloexec) in parent.fdt.fds.items():
                    if not cloexec:  # R-PROC-1: fds without close-on-exec are inherited
                        proc.fdt.install(fd, of, False)
            self._add_process(proc)
            if image:
                try:
                    self._load_image(proc, path)
                except QnxError:
                    proc._release_all()
                    del self._procs[proc.pid]
                    raise
            self._record("spawn", PROCNTO_PID if parent is None else parent.pid, (path,), proc.pid)
            return proc

    def _add_process(self, proc: Process) -> None:
        self._procs[proc.pid] = proc
        self._handles[proc.pid] = proc

    def _new_pid(self) -> int:
        pid = self._next_pid  # R-SYS-7: never reused within one Kernel
        self._next_pid += 1
        return pid

    def _image_object(self, path: str, size: int) -> MemObject:
        """The executable file at ``path``; made (zero-filled, root's, 0755) if missing."""
        full = normalize(path)
        obj = self.paths.lookup(full)
        if obj is None or obj.kind != "file":
            obj = MemObject("file", name=full, size=size)
            obj.mode = 0o755
            self.paths.add(full, obj)
        return obj

    def create_file(
        self, path: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> None:
        """R-FS-1: put a regular file into the simulated filesystem (replacing any)."""
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        for name, value in (("mode", mode), ("uid", uid), ("gid", gid)):
            self.ctypes.int_(name, value)
        full = normalize(path)
        with self.lock:
            if full in (DEV_ZERO, DEV_MEM) or full.startswith(SHMEM_DIR + "/"):
                raise ValueError(f"{full} is not a regular file path")
            if self.paths.is_dir(full) or self.paths.parent_is_file(full):
                raise ValueError(f"{full} is a directory or lies under a file")
            obj = MemObject("file", name=full, size=0)
            obj.mode, obj.uid, obj.gid = mode & 0o7777, uid, gid
            if not obj.resize(self.pm, len(data), eager=False) or not obj.write_bytes(
                self.pm, 0, bytes(data)
            ):
                obj.release(self.pm, 0, 1 << 64)
                raise QnxError(E.ENOSPC, "R-SYS-6: no RAM for the file's pages", call="create_file")
            old = self.paths.lookup(full)
            if old is not None:
                self.paths.unlink(full)
                release_if_dead(self.pm, old)
            self.paths.add(full, obj)

    def _load_image(self, proc: Process, path: str) -> None:
        """R-PROC-1: text and data of the program and libc, and a main stack with a guard."""
        arch = self.machine.arch
        ps = self.page_size
        shift = 0
        if self.machine.rng is not None:
            shift = self.machine.rng.randrange(1 << 18) * ps

        def pages(n: int) -> int:  # whole pages, for 16 KiB and 64 KiB pages too
            return -(-n // ps) * ps

        text, data = pages(IMAGE_TEXT), pages(IMAGE_DATA)
        so_text, so_data = pages(LIBC_TEXT), pages(LIBC_DATA)
        prog = self._image_object(path, text + data)
        libc = self._image_object(LIBC_PATH, so_text + so_data)
        rx = C.PROT_READ | C.PROT_EXEC
        rw = C.PROT_READ | C.PROT_WRITE
        base = arch.program_base - arch.program_base % ps + shift
        self._map_elf(proc, prog, base, 0, text, rx)
        self._map_elf(proc, prog, base + text, text, data, rw)
        so = arch.so_base - arch.so_base % ps + shift
        self._map_elf(proc, libc, so, 0, so_text, rx)
        self._map_elf(proc, libc, so + so_text, so_text, so_data, rw)
        flags = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_STACK | C.MAP_LAZY
        kernel_caller = _Everything(self.profile)
        vmm.mmap(proc.space, proc.rlimits, kernel_caller, 0, STACK_SIZE, rw, flags, C.NOFD,
                 STACK_GUARD, call="spawn")  # fmt: skip

    def _map_elf(
        self, proc: Process, obj: MemObject, start: int, offset: int, size: int, prot: int
    ) -> None:
        """A MAP_ELF|MAP_PRIVATE mapping of an image object; reserves its private copies."""
        if not self.pm.reserve(size):
            raise QnxError(E.ENOMEM, "R-SYS-6: no RAM to reserve for the image", call="spawn")
        entry = Entry(prot, C.MAP_ELF | C.MAP_PRIVATE, obj, offset, "elf")
        proc.space.add(start, start + size, entry)

    # -- memory -------------------------------------------------------------------------

    def meminfo(self) -> MemInfo:
        """RAM in total, free, allocated and reserved, in bytes (R-OBJ-3)."""
        with self.lock:
            return self.pm.meminfo()

    # -- calls --------------------------------------------------------------------------

    def _record(self, call: str, pid: int, args: tuple[Any, ...], result: Any) -> None:
        if self.tracing:
            self.trace.append(trace.record(self, call, pid, args, {}, result))

    def run_call(self, call: str, proc: Process, args: tuple[Any, ...], fn: Callable[[], T]) -> T:
        """Run one call of ``proc``: serialised by the kernel lock, refused when ``proc`` has
        exited, its errors stamped with call and pid, and traced when tracing is on
        (nothing is copied when it is off)."""
        pid = proc.pid
        with self.lock:
            before = trace.watch(self, call, pid, args) if self.tracing else None
            try:
                if proc.state != "running":
                    proc._require_alive(call)
                result = fn()
            except QnxError as err:
                if not err.call:
                    err.call = call
                err.pid = pid
                if before is not None:
                    self.trace.append(
                        trace.record(self, call, pid, args, before, None, err.errno, err.reason)
                    )
                raise
            if before is not None:
                self.trace.append(trace.record(self, call, pid, args, before, result))
            return result

    # -- whole-system views -------------------------------------------------------------

    def check_invariants(self) -> None:
        """Assert every invariant of the design (mappings, objects, frames, accounting).

        O(n) in mappings, frames runs and processes.  Raises AssertionError on a breach.
        """
        with self.lock:
            check_invariants(self)

    def snapshot(self) -> object:
        """An opaque deep copy of the whole machine state, for ``restore``."""
        with self.lock:
            state = {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}
            return copy.deepcopy(state, {id(self): self})

    def restore(self, snap: object) -> None:
        """Return to a state taken by ``snapshot`` (the snapshot stays reusable)."""
        if not isinstance(snap, dict):
            raise TypeError("restore takes a value returned by snapshot()")
        with self.lock:
            state = copy.deepcopy(snap, {id(self): self})
            procs: dict[int, Process] = state["_procs"]
            for pid, fresh in list(procs.items()):
                handle = self._handles.get(pid)
                if handle is not None:  # keep the caller's Process objects valid
                    handle.__dict__.update(fresh.__dict__)
                    handle.libc._proc = handle
                    procs[pid] = handle
            self.__dict__.update(state)

    def pidin(self, what: str = "mem") -> str:
        """Text in the layout of QNX's ``pidin mem`` (R-MAP-3), or with ``"maps"`` every
        mapping record of every process (``qnxsim.render``)."""
        from qnxsim.render import pidin

        with self.lock:
            text: str = pidin(self, what)
            return text

    def _repr_html_(self) -> str:
        """Jupyter: every process's address space as a picture and a table (``html.py``)."""
        from qnxsim.html import kernel_html

        with self.lock:
            return kernel_html(self)


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
        self.rlimits: dict[int, tuple[int, int]] = {
            r: (DEFAULT_RLIMITS.get(r, kernel.machine.arch.rlim_infinity),) * 2
            for r in range(RLIMIT_COUNT)
        }
        self.space = AddressSpace(kernel.machine)
        self.fdt = FdTable()
        self.state = "running"
        self.exit_status: int | None = None
        self.libc = Libc(self)

    def __repr__(self) -> str:
        return f"<Process pid={self.pid} {self.path} uid={self.ruid} {self.state}>"

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

    def _require_alive(self, call: str) -> None:
        if not self.alive:
            raise QnxError(
                E.ESRCH, f"[SIM] pid {self.pid} has exited; it makes no calls", call=call
            )

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
        return peer_calls.mmap_peer(self, self.kernel._lookup, pid, addr, length, prot,
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
            lambda: peer_calls.munmap_peer(self, self.kernel._lookup, *args),
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
        target = self.kernel._lookup(pid)
        if target is None or not target.alive:
            raise QnxError(E.ESRCH, f"R-ABLE-4: pid {pid} does not exist or has exited", call=call)
        if not self.able(C.PROCMGR_AID_XPROCESS_ABLE, pid, pid):
            raise QnxError(
                E.EPERM, f"R-ABLE-4: changing pid {pid} needs PROCMGR_AID_XPROCESS_ABLE", call=call
            )
        return target

    def _release_all(self) -> None:
        """Unmap everything and close every fd (exit, failed spawn)."""
        self.space.remove(self.space.m.user_start, self.space.m.user_end)
        for fd in sorted(self.fdt.fds):
            files.close(self.kernel.pm, self, fd)

    # -- processes (SPEC 15) ------------------------------------------------------------

    def fork(self) -> int:
        """R-PROC-2: a child with a copy of this address space; returns the child's pid."""
        return self._run("fork", (), self._fork)

    def _fork(self) -> int:
        k = self.kernel
        space = self.space
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
        child = Process(k, k._new_pid(), self.pid, self.path, self.ruid, self.rgid)
        child.euid, child.suid = self.euid, self.suid
        child.egid, child.sgid = self.egid, self.sgid
        child.umask = self.umask
        child.abilities = self.abilities.copy()
        child.rlimits = dict(self.rlimits)
        child.fdt = self.fdt.copy()  # R-PROC-2: the same open file descriptions
        space.fork_into(child.space, inherit)
        k._add_process(child)
        return child.pid

    def spawn(self, path: str = "/proc/boot/app", *, image: bool = True) -> Process:
        """R-PROC-1: a child process of this one, with this one's credentials."""
        self._require_alive("spawn")
        child = self.kernel.spawn(path, uid=self.euid, gid=self.egid, parent=self, image=image)
        child.ruid, child.euid, child.suid = self.ruid, self.euid, self.suid
        child.rgid, child.egid, child.sgid = self.rgid, self.egid, self.sgid
        return child

    def exec(self, path: str) -> int:
        """R-PROC-3: replace the image: mappings and locks go, close-on-exec fds close."""
        path = self._path("path", path)
        return self._run("exec", (path,), lambda: self._exec(path))

    def _exec(self, path: str) -> int:
        k = self.kernel
        self.space.remove(self.space.m.user_start, self.space.m.user_end)
        self.space.lock_future = False  # R-LOCK-4: exec drops every lock
        for fd, (_, cloexec) in sorted(self.fdt.fds.items()):
            if cloexec:
                files.close(k.pm, self, fd)
        self.path = path
        k._load_image(self, path)
        return 0

    def exit(self, status: int = 0) -> None:
        """R-PROC-4: unmap everything; a zombie until the parent waits (orphans go at once)."""
        status = self.kernel.ctypes.int_("status", status)
        self._run("exit", (status,), lambda: self._exit(status))

    def _exit(self, status: int) -> None:
        if self.pid == PROCNTO_PID:
            raise QnxError(E.EPERM, "[SIM] procnto cannot exit", call="exit")
        k = self.kernel
        self._release_all()
        self.state = "zombie"
        self.exit_status = status & 0xFF
        for child in list(k._procs.values()):
            if child.ppid == self.pid:
                if child.state == "zombie":
                    del k._procs[child.pid]
                else:
                    child.ppid = PROCNTO_PID
        parent = k._procs.get(self.ppid)
        if parent is None or parent.pid == PROCNTO_PID or not parent.alive:
            del k._procs[self.pid]  # an orphan is reaped at once

    def waitpid(self, pid: int, options: int = 0) -> tuple[int, int]:
        """Reap an exited child: ``(pid, exit status)``; ``pid`` -1 means any child.

        ECHILD when there is no such child.  A child still running gives ``(0, 0)`` with
        WNOHANG and [SIM] EDEADLK without it (a simulated wait cannot block).
        """
        c = self.kernel.ctypes
        args = (c.pid_t("pid", pid), c.int_("options", options))
        return self._run("waitpid", args, lambda: self._waitpid(*args))

    def _waitpid(self, pid: int, options: int) -> tuple[int, int]:
        k = self.kernel
        kids = [p for p in k._procs.values() if p.ppid == self.pid and p.pid != self.pid]
        if pid != -1:
            kids = [p for p in kids if p.pid == pid]
        if not kids:
            raise QnxError(
                E.ECHILD, f"R-PROC-4: pid {pid} is not a child of pid {self.pid}", call="waitpid"
            )
        for child in sorted(kids, key=lambda p: p.pid):
            if child.state == "zombie":
                del k._procs[child.pid]
                return child.pid, child.exit_status or 0
        if options & WNOHANG:
            return 0, 0
        raise QnxError(
            E.EDEADLK,
            "[SIM] the child is still running and a simulated wait cannot block; "
            "pass WNOHANG or exit the child first",
            call="waitpid",
        )

    # -- credentials (R-PROC-5) ---------------------------------------------------------

    def setuid(self, uid: int) -> int:
        """POSIX setuid: root sets all three uids; others may set euid to ruid or suid."""
        uid = self.kernel.ctypes.signed("uid", uid, 32)
        return self._run("setuid", (uid,), lambda: self._set_id("uid", uid, every=True))

    def seteuid(self, uid: int) -> int:
        uid = self.kernel.ctypes.signed("uid", uid, 32)
        return self._run("seteuid", (uid,), lambda: self._set_id("uid", uid, every=False))

    def setgid(self, gid: int) -> int:
        gid = self.kernel.ctypes.signed("gid", gid, 32)
        return self._run("setgid", (gid,), lambda: self._set_id("gid", gid, every=True))

    def setegid(self, gid: int) -> int:
        gid = self.kernel.ctypes.signed("gid", gid, 32)
        return self._run("setegid", (gid,), lambda: self._set_id("gid", gid, every=False))

    def _set_id(self, which: str, value: int, *, every: bool) -> int:
        call = ("set" if every else "sete") + which
        if value < 0:
            raise QnxError(E.EINVAL, f"R-PROC-5: {which} {value} is not valid", call=call)
        real, saved = getattr(self, "r" + which), getattr(self, "s" + which)
        if self.euid == 0:
            if every:
                setattr(self, "r" + which, value)
                setattr(self, "s" + which, value)
            setattr(self, "e" + which, value)
            return 0
        if value in (real, saved):
            setattr(self, "e" + which, value)
            return 0
        raise QnxError(
            E.EPERM,
            f"R-PROC-5: euid {self.euid} is not root and {which} {value} is neither the real "
            f"({real}) nor the saved ({saved}) {which}",
            call=call,
        )

    # -- rlimits (SPEC 18) --------------------------------------------------------------

    def getrlimit(self, resource: int) -> tuple[int, int]:
        resource = self.kernel.ctypes.int_("resource", resource)
        return self._run("getrlimit", (resource,), lambda: self._getrlimit(resource))

    def _getrlimit(self, resource: int) -> tuple[int, int]:
        if not 0 <= resource < RLIMIT_COUNT:
            raise QnxError(
                E.EINVAL,
                f"[SIM] SPEC 18 limits: resource {resource} is not an RLIMIT_*",
                call="getrlimit",
            )
        return self.rlimits[resource]

    def setrlimit(self, resource: int, soft: int, hard: int) -> int:
        c = self.kernel.ctypes
        args = (c.int_("resource", resource), c.rlim_t("soft", soft), c.rlim_t("hard", hard))
        return self._run("setrlimit", args, lambda: self._setrlimit(*args))

    def _setrlimit(self, resource: int, soft: int, hard: int) -> int:
        call = "setrlimit"
        old_soft, old_hard = self._getrlimit(resource)
        del old_soft
        inf = self.kernel.machine.arch.rlim_infinity  # SPEC 18: no limit
        if soft > hard and hard != inf:
            raise QnxError(
                E.EINVAL,
                f"[SIM] SPEC 18 limits (POSIX): soft limit {soft:#x} above hard limit {hard:#x}",
                call=call,
            )
        raising = hard != old_hard and old_hard != inf and (hard > old_hard or hard == inf)
        if raising and self.euid != 0:
            raise QnxError(
                E.EPERM,
                f"[SIM] SPEC 18 limits (POSIX): raising the hard limit above {old_hard:#x} "
                "needs euid 0",
                call=call,
            )
        self.rlimits[resource] = (soft, hard)
        return 0


def _bytes(name: str, data: object) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes-like, not {type(data).__name__}")
    return bytes(data)


def check_invariants(k: Kernel) -> None:
    """The body of ``Kernel.check_invariants`` (DESIGN: Invariants)."""
    pm = k.pm
    ps = k.page_size
    mapped: dict[int, tuple[MemObject, int]] = {}
    descriptions: dict[int, tuple[MemObject, set[int]]] = {}
    owned: list[tuple[int, int]] = []
    objects: dict[int, MemObject] = {id(o): o for o in k.paths.nodes.values()}
    reserved = 0
    for proc in k._procs.values():
        space = proc.space
        space.map.check()
        total = data = 0
        if not proc.alive:
            assert len(space.map) == 0, f"zombie pid {proc.pid} still has mappings"
            assert not proc.fdt.fds, f"zombie pid {proc.pid} still has fds"
        if proc.pid == PROCNTO_PID:
            assert len(space.map) == 0, "procnto owns no user mappings (R-SYS-7)"
        for s, e, v in space.map:
            assert s % ps == 0 and e % ps == 0, f"pid {proc.pid}: unaligned {s:#x}-{e:#x}"
            assert space.m.user_start <= s and e <= space.m.user_end, "outside the user range"
            total += e - s
            if space.counts_as_data(v):
                data += e - s
            if v.obj is space.anon:
                assert v.offset == s, "private anonymous offset must be its address (R-MAP-2)"
            else:
                prev = mapped.get(id(v.obj), (v.obj, 0))[1]
                mapped[id(v.obj)] = (v.obj, prev + e - s)
                if v.private and not v.lazy:
                    reserved += (e - s) - space.private_copies(s, e)
        assert total == space.total_bytes, f"pid {proc.pid}: mapped-bytes counter is off"
        assert data == space.data_bytes, f"pid {proc.pid}: data-bytes counter is off"
        for lo, hi, paddr in space.anon.pages:
            hit = space.map.overlapping(lo, hi)
            assert sum(min(e, hi) - max(s, lo) for s, e, _ in hit) == hi - lo, (
                f"pid {proc.pid}: private frames at {lo:#x}-{hi:#x} outside any mapping"
            )
            owned.append((paddr, hi - lo))
        for fd, (of, _) in proc.fdt.fds.items():
            assert fd >= 0
            descriptions.setdefault(id(of.obj), (of.obj, set()))[1].add(id(of))
            objects[id(of.obj)] = of.obj
    for obj, size in mapped.values():
        assert obj.mapped == size, f"{obj!r}: mapped {obj.mapped:#x}, mappings hold {size:#x}"
        objects[id(obj)] = obj
    for obj in objects.values():
        opened = len(descriptions.get(id(obj), (obj, set()))[1])
        assert obj.fds == opened, f"{obj!r}: {obj.fds} open descriptions counted, {opened} exist"
        if id(obj) not in mapped:
            assert obj.mapped == 0, f"{obj!r}: counts mappings that do not exist"
        assert obj.alive, f"{obj!r} is referenced but not alive"
        if obj.size is not None and obj.phys_base is None and obj.kind != "anon":
            end = -(-obj.size // ps) * ps
            assert all(hi <= end for _, hi, _ in obj.pages), f"{obj!r}: frames past its end"
        owned.extend((paddr, hi - lo) for lo, hi, paddr in obj.pages)
    owned.sort()
    for (a, n), (b, _) in itertools.pairwise(owned):
        assert a + n <= b, f"frame {b:#x} belongs to two object pages"
    merged: list[tuple[int, int]] = []
    for a, n in owned:
        if merged and merged[-1][1] == a:
            merged[-1] = (merged[-1][0], a + n)
        else:
            merged.append((a, a + n))
    assert merged == pm.allocated_ranges(), "allocated frames and object pages disagree"
    assert sum(n for _, n in owned) == pm.allocated, "allocation counter is off"
    assert pm.free_bytes >= 0 and pm.reserved >= 0, "over-committed RAM (R-OBJ-3)"
    assert pm.free_bytes + pm.allocated + pm.reserved == pm.ram
    assert reserved == pm.reserved, f"reserved {pm.reserved:#x}, mappings need {reserved:#x}"


__all__ = ["Kernel", "Process", "TraceEvent"]
