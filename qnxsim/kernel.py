"""Kernel: one simulated QNX machine, its pid table, its lock and how a call is run.

It owns physical memory, the path space and the pid table; it spawns processes and loads
their images, takes snapshots and gives whole-system views.  The rules of the calls live
below it (``vmm``, ``files``, ``peer``, ``lifecycle``), and so does the ``Process`` facade
whose objects it makes (README, "Layers").
"""

from __future__ import annotations

import copy
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import files, trace, tymem, vmm
from qnxsim.addrspace import Entry, Machine
from qnxsim.arch import CTypes, check_kernel_config
from qnxsim.constants import PROCNTO_PID
from qnxsim.errno import QnxError
from qnxsim.files import release_if_dead
from qnxsim.handles import HandleTable
from qnxsim.objects import MemObject
from qnxsim.pathspace import DEV_MEM, DEV_ZERO, SHMEM_DIR, FdTable, PathSpace, normalize
from qnxsim.physmem import MemInfo, PhysMem
from qnxsim.process import Process
from qnxsim.profile import PROFILES, Profile
from qnxsim.trace import TraceList

if TYPE_CHECKING:
    from qnxsim.c.run import CRun

T = TypeVar("T")

FIRST_PID = 2

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

    Methods by purpose --
    processes: ``spawn``, ``exec_c``, ``process``, ``processes``, ``lookup``, ``running``;
    files: ``create_file``;
    whole-system views: ``meminfo``, ``pidin``, ``check_invariants``;
    state: ``snapshot``, ``restore``;
    for the layers below (the pid table and how a call runs): ``new_process``,
    ``add_process``, ``reap``, ``release``, ``check_caller``, ``load_image``, ``run_call``,
    ``record``.
    Read-only configuration: ``arch``, ``version``, ``ram``, ``page_size``, ``aslr``,
    ``seed``, ``constants``.

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
        self._next_pid = PROCNTO_PID
        # Every Process object ever made, by pid (pids are never reused), so that
        # ``restore`` can bring the caller's own handles back to their old state.
        self._handles: dict[int, Process] = {}
        self.shm_handles = HandleTable()  # unused shared memory handles (SPEC 13.3)
        self.add_process(self.new_process(0, "procnto", 0, 0))

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

    # -- the pid table ------------------------------------------------------------------

    def process(self, pid: int) -> Process:
        """The process with this pid (running or zombie); LookupError if there is none."""
        proc = self._procs.get(pid)
        if proc is None:
            raise LookupError(f"no process with pid {pid}")
        return proc

    def processes(self) -> tuple[Process, ...]:
        """Every process in the pid table (zombies included), ascending by pid.  O(n log n)."""
        with self.lock:
            return tuple(self._procs[pid] for pid in sorted(self._procs))

    def lookup(self, pid: int) -> Process | None:
        """The process with this pid (running or zombie), or None.  O(1)."""
        return self._procs.get(pid)

    def new_process(self, ppid: int, path: str, uid: int, gid: int) -> Process:
        """A process for the next pid, not yet in the pid table (``add_process`` puts it
        there): a call that fails before then uses up no pid (R-CALL-5)."""
        return Process(self, self._next_pid, ppid, path, uid, gid)

    def add_process(self, proc: Process) -> None:
        """Put ``proc`` into the pid table; its pid is used up (R-SYS-7: never reused)."""
        self._procs[proc.pid] = proc
        self._handles[proc.pid] = proc
        self._next_pid = max(self._next_pid, proc.pid + 1)

    def running(self, pid: int) -> Process | None:
        """The process ``pid`` if it is in the table and running (not a zombie)."""
        proc = self._procs.get(pid)
        return proc if proc is not None and proc.alive else None

    def reap(self, pid: int) -> None:
        """Take ``pid`` out of the pid table (R-PROC-4); its pid is not given again."""
        del self._procs[pid]

    def release(self, proc: Process) -> None:
        """Unmap everything of ``proc`` and close every fd (exit, failed spawn)."""
        proc.space.remove(proc.space.m.user_start, proc.space.m.user_end)
        for fd in sorted(proc.fdt.fds):
            files.close(self.pm, proc, fd)

    def check_caller(self, proc: Process, call: str) -> None:
        """ESRCH unless ``proc`` is running: an exited process makes no calls."""
        if proc.state != "running":
            raise QnxError(
                E.ESRCH, f"[SIM] pid {proc.pid} has exited; it makes no calls", call=call
            )

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
                self.check_caller(parent, "spawn")  # [SIM] an exited process has no children
            ppid = parent.pid if parent is not None else PROCNTO_PID
            proc = self.new_process(ppid, path, uid, gid)
            if parent is not None:
                proc.umask = parent.umask
                proc.abilities = parent.abilities.inherited()
                proc.rlimits = dict(parent.rlimits)
                for fd, (of, cloexec) in parent.fdt.fds.items():
                    if not cloexec:  # R-PROC-1: fds without close-on-exec are inherited
                        proc.fdt.install(fd, of, False)
            self.add_process(proc)
            if image:
                try:
                    self.load_image(proc, path)
                except QnxError:
                    self.release(proc)
                    self.reap(proc.pid)
                    raise
            self.record("spawn", PROCNTO_PID if parent is None else parent.pid, (path,), proc.pid)
            return proc

    def exec_c(
        self,
        prog: str,
        argv: tuple[str, ...] | list[str] = (),
        *,
        uid: int = 0,
        gid: int = 0,
        parent: Process | None = None,
        capture: bool = True,
    ) -> CRun:
        """Run the C program ``prog`` (built by ``qnxsim.c.build``) as a new process.

        Returns a handle with ``.pid``, ``.wait()`` and, when ``capture``, ``.stdout`` and
        ``.stderr``.  Linux x86_64/aarch64 hosts only, with the host's arch (``qnxsim.c``).
        """
        from qnxsim.c.run import exec_c  # the C bridge sits above the kernel

        return exec_c(self, prog, argv, uid=uid, gid=gid, parent=parent, capture=capture)

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

    def load_image(self, proc: Process, path: str) -> None:
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

    def record(self, call: str, pid: int, args: tuple[Any, ...], result: Any) -> None:
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
                    self.check_caller(proc, call)
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
        from qnxsim.invariants import check_invariants

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
                    handle.__setstate__(fresh.__getstate__())
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


__all__ = ["FIRST_PID", "PROCNTO_PID", "Kernel"]
