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
from qnxsim.addrspace import AddressSpace, Entry, Machine
from qnxsim.arch import CTypes, check_kernel_config, check_version
from qnxsim.constants import PROCNTO_PID
from qnxsim.errno import QnxError
from qnxsim.files import release_if_dead
from qnxsim.handles import HandleTable
from qnxsim.objects import MemObject
from qnxsim.pathspace import (
    DEV_MEM,
    DEV_ZERO,
    SHMEM_DIR,
    FdTable,
    PathSpace,
    check_path_length,
    normalize,
    path_too_long,
)
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
_NOT_STATE = ("lock", "_handles", "_watchers")  # what snapshot() leaves out


class _Snapshot:
    """What ``Kernel.snapshot`` returns: opaque, restorable only into its own kernel."""

    __slots__ = ("_kernel", "_state")

    def __init__(self, kernel: Kernel, state: dict[str, Any]) -> None:
        self._kernel = kernel
        self._state = state

    def __repr__(self) -> str:
        return f"<qnxsim snapshot of {self._kernel!r}>"


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
    watching for changes (the C bridge's mirrors): ``watch``, ``unwatch``, ``changed``;
    for the layers below (the pid table and how a call runs): ``new_process``,
    ``add_process``, ``reap``, ``release``, ``check_caller``, ``build_image``, ``run_call``,
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
        check_version(version)
        if arch is None:
            arch = PROFILES[version].default_arch  # SPEC 19: the profile's default arch
        spec = check_kernel_config(arch, version, ram, page_size)
        if not isinstance(aslr, bool):
            raise TypeError(f"aslr must be a bool, not {type(aslr).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, not {type(seed).__name__}")
        if not isinstance(trace, bool):
            raise TypeError(f"trace must be a bool, not {type(trace).__name__}")
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
        # Told after every call that may have changed an address space (``watch``).
        self._watchers: list[Callable[[], None]] = []
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
        """The process with this pid (running or zombie); LookupError if there is none,
        TypeError if ``pid`` is not an int."""
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise TypeError(f"pid must be an int, not {type(pid).__name__}")
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
        """Refuse a call through ``proc`` unless it is a running process of the live pid
        table (R-PROC-6): ESRCH for a stale handle or an exited process, EPERM for procnto."""
        pid = proc.pid
        if self._procs.get(pid) is not proc:
            raise QnxError(
                E.ESRCH,
                f"R-PROC-6: this handle of pid {pid} is not in the pid table (reaped, or "
                "made after a snapshot that was restored)",
                call=call,
                pid=pid,
            )
        if pid == PROCNTO_PID:
            raise QnxError(
                E.EPERM, "R-PROC-6: procnto (pid 1) is the kernel; it makes no calls",
                call=call, pid=pid,
            )  # fmt: skip
        if proc.state != "running":
            raise QnxError(
                E.ESRCH, f"[SIM] pid {pid} has exited; it makes no calls", call=call, pid=pid
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

        ENAMETOOLONG past NAME_MAX or PATH_MAX; with an image, EACCES when ``path`` is not a
        regular file (a directory, a device, a shm object), ENOTDIR under a file, ENOMEM
        when the image does not fit.  A failure makes no process, uses up no pid and no
        ASLR draw, and leaves no file (R-CALL-5).
        """
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        uid = self.ctypes.signed("uid", uid, 32)
        gid = self.ctypes.signed("gid", gid, 32)
        if parent is not None and not isinstance(parent, Process):
            raise TypeError("parent must be a Process or None")
        caller = PROCNTO_PID if parent is None else parent.pid
        with self.lock:
            if parent is not None:
                self.check_caller(parent, "spawn")  # [SIM] an exited process has no children
            proc = self.new_process(caller, path, uid, gid)  # R-CALL-5: no pid used yet
            if parent is not None:
                proc.umask = parent.umask
                proc.abilities = parent.abilities.inherited()
                proc.rlimits = dict(parent.rlimits)
            try:
                check_path_length(path, "R-PROC-1", "spawn")
                if image:
                    self.build_image(proc.space, proc.rlimits, path, "spawn", "R-PROC-1")
            except QnxError as err:
                err.call, err.pid = "spawn", caller
                raise
            if parent is not None:
                for fd, (of, cloexec) in parent.fdt.fds.items():
                    if not cloexec:  # R-PROC-1: fds without close-on-exec are inherited
                        proc.fdt.install(fd, of, False)
            self.add_process(proc)
            self.record("spawn", caller, (path,), proc.pid)
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
        ``.stderr``.  Linux x86_64/aarch64 hosts only, with the host's arch, or the other
        one through the emulator ``QNXSIM_C_EMULATOR_<ARCH>`` names (``qnxsim.c.build``).
        """
        from qnxsim.c.run import exec_c  # the C bridge sits above the kernel

        run = exec_c(self, prog, argv, uid=uid, gid=gid, parent=parent, capture=capture)
        trace.note_c(self, run.pid, f"program {' '.join([str(prog), *argv])}")  # for reports
        return run

    def create_file(
        self, path: str, data: bytes = b"", mode: int = 0o644, uid: int = 0, gid: int = 0
    ) -> None:
        """R-FS-1: put a regular file into the simulated filesystem (replacing any).

        A path longer than PATH_MAX or with a component longer than NAME_MAX is a
        ValueError: no call could open or remove such a file.
        """
        if not isinstance(path, str):
            raise TypeError(f"path must be a str, not {type(path).__name__}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data must be bytes-like, not {type(data).__name__}")
        for name, value in (("mode", mode), ("uid", uid), ("gid", gid)):
            self.ctypes.int_(name, value)
        too_long = path_too_long(path)
        if too_long:
            raise ValueError(f"create_file: {too_long}")
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

    # -- program images (R-PROC-1) ------------------------------------------------------

    def build_image(
        self,
        space: AddressSpace,
        rlimits: dict[int, tuple[int, int]],
        path: str,
        call: str,
        rule: str,
    ) -> None:
        """Map the image of ``path`` into the empty ``space``: the program's and libc's
        text and data, and a main stack with a guard (R-PROC-1).

        Plan, then commit (R-CALL-5): the executables are checked first (``rule``'s
        ENOENT, ENOTDIR, EACCES), then mapped; if anything fails ``space`` is emptied again,
        the ASLR draws are given back and the files a success would have made at missing
        paths are not made.  O(1) plus the path space lookups.
        """
        made: dict[str, MemObject] = {}
        ps = self.page_size

        def pages(n: int) -> int:  # whole pages, for 16 KiB and 64 KiB pages too
            return -(-n // ps) * ps

        text, data = pages(IMAGE_TEXT), pages(IMAGE_DATA)
        so_text, so_data = pages(LIBC_TEXT), pages(LIBC_DATA)
        prog = self._executable(path, text + data, made, rule, call)
        libc = self._executable(LIBC_PATH, so_text + so_data, made, rule, call)
        arch = self.machine.arch
        base = arch.program_base - arch.program_base % ps
        so = arch.so_base - arch.so_base % ps
        rng = self.machine.rng
        drawn = rng.getstate() if rng is not None else None
        rx = C.PROT_READ | C.PROT_EXEC
        rw = C.PROT_READ | C.PROT_WRITE
        flags = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_STACK | C.MAP_LAZY
        try:
            shift = self._aslr_shift(so + so_text + so_data)
            base, so = base + shift, so + shift
            self._map_elf(space, prog, base, 0, text, rx, call)
            self._map_elf(space, prog, base + text, text, data, rw, call)
            self._map_elf(space, libc, so, 0, so_text, rx, call)
            self._map_elf(space, libc, so + so_text, so_text, so_data, rw, call)
            vmm.mmap(space, rlimits, _Everything(self.profile), 0, STACK_SIZE, rw, flags,
                     C.NOFD, STACK_GUARD, call=call)  # fmt: skip
        except QnxError:
            space.remove(space.m.user_start, space.m.user_end)
            if rng is not None and drawn is not None:
                rng.setstate(drawn)  # R-CALL-5: a failing call draws nothing
            raise
        for full, obj in made.items():  # R-PROC-1 [SIM]: a missing executable is made
            self.paths.add(full, obj)

    def _aslr_shift(self, image_end: int) -> int:
        """R-SYS-4: the ASLR shift of an image, in whole pages, bounded so that an image
        ending at ``image_end`` unshifted still ends inside the user range."""
        rng = self.machine.rng
        if rng is None:
            return 0
        ps = self.page_size
        room = max(self.machine.user_end - image_end, 0) // ps
        return rng.randrange(min(1 << 18, room + 1)) * ps

    def _executable(
        self, path: str, size: int, made: dict[str, MemObject], rule: str, call: str
    ) -> MemObject:
        """The regular file at ``path`` to map; a zero-filled one (root's, 0755) planned in
        ``made`` when nothing is there.  POSIX execve's errnos for anything else."""
        if path == "":
            raise QnxError(E.ENOENT, f"{rule}: the executable's path is empty", call=call)
        full = normalize(path)
        if self.paths.parent_is_file(full):
            raise QnxError(E.ENOTDIR, f"{rule}: a leading part of {full!r} is a file", call=call)
        obj = self.paths.lookup(full) or made.get(full)
        if obj is None and self.paths.is_dir(full):
            raise QnxError(
                E.EACCES, f"{rule}: {full!r} is a directory, not a regular file", call=call
            )
        if obj is None:
            obj = MemObject("file", name=full, size=size)
            obj.mode = 0o755
            made[full] = obj
        elif obj.kind != "file":
            raise QnxError(
                E.EACCES, f"{rule}: {full!r} is not a regular file ({obj.kind})", call=call
            )
        return obj

    def _map_elf(
        self,
        space: AddressSpace,
        obj: MemObject,
        start: int,
        offset: int,
        size: int,
        prot: int,
        call: str,
    ) -> None:
        """A MAP_ELF|MAP_PRIVATE mapping of an image object; reserves its private copies."""
        if not self.pm.reserve(size):
            raise QnxError(E.ENOMEM, "R-SYS-6: no RAM to reserve for the image", call=call)
        entry = Entry(prot, C.MAP_ELF | C.MAP_PRIVATE, obj, offset, "elf")
        space.add(start, start + size, entry)

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
        """Run one call of ``proc``: serialised by the kernel lock, refused unless ``proc``
        may call (R-PROC-6), its errors stamped with call and pid, and traced when tracing is
        on (nothing is copied when it is off)."""
        pid = proc.pid
        notes = self.ctypes.take_notes(args)  # R-CALL-2 conversions that changed a value
        with self.lock:
            before = trace.watch(self, call, pid, args) if self.tracing else None
            try:
                self.check_caller(proc, call)  # R-PROC-6
                result = fn()
            except QnxError as err:
                if not err.call:
                    err.call = call
                err.pid = pid
                if notes:
                    err.reason = f"{err.reason} ({'; '.join(notes)})"
                if before is not None:
                    self.trace.append(
                        trace.record(self, call, pid, args, before, None, err.errno, err.reason)
                    )
                raise
            if before is not None:  # a success keeps its conversion notes as its reason
                note = "; ".join(notes)
                self.trace.append(trace.record(self, call, pid, args, before, result, 0, note))
            self.changed()
            return result

    def watch(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` under the lock after every call that may have changed an address
        space or a page's frame, before that call returns; ``unwatch`` stops it.  The C
        bridge keeps the host's memory mirrors fresh this way.  O(1)."""
        with self.lock:
            self._watchers.append(fn)

    def unwatch(self, fn: Callable[[], None]) -> None:
        """Stop calling ``fn`` (ValueError if it was not watching).  O(watchers)."""
        with self.lock:
            self._watchers.remove(fn)

    def changed(self) -> None:
        """Tell the watchers that memory may have changed (see ``watch``).  Holds the lock;
        O(watchers) plus what they do; nothing when none watches."""
        if not self._watchers:
            return
        with self.lock:
            for fn in list(self._watchers):
                fn()

    # -- whole-system views -------------------------------------------------------------

    def check_invariants(self) -> None:
        """Assert every invariant of the design (mappings, objects, frames, accounting).

        O(n) in mappings, frames runs and processes.  Raises AssertionError on a breach.
        """
        from qnxsim.invariants import check_invariants

        with self.lock:
            check_invariants(self)

    def snapshot(self) -> object:
        """An opaque deep copy of the whole machine state, for ``restore`` (R-PROC-6)."""
        with self.lock:
            state = {k: v for k, v in self.__dict__.items() if k not in _NOT_STATE}
            return _Snapshot(self, copy.deepcopy(state, {id(self): self}))

    def restore(self, snap: object) -> None:
        """Return to a state taken by this kernel's ``snapshot`` (which stays reusable);
        TypeError for anything else (R-PROC-6).  Handles of processes the snapshot does not
        hold, or holds under another handle, are stale afterwards: their calls give ESRCH.
        """
        if not isinstance(snap, _Snapshot) or snap._kernel is not self:
            raise TypeError(
                f"restore takes a value returned by this kernel's snapshot(), "
                f"not {type(snap).__name__}"
            )
        with self.lock:
            state = copy.deepcopy(snap._state, {id(self): self})
            procs: dict[int, Process] = state["_procs"]
            for pid, fresh in list(procs.items()):
                handle = self._handles.get(pid)
                if handle is not None:  # keep the caller's Process objects valid
                    handle.__setstate__(fresh.__getstate__())
                    procs[pid] = handle
            self.__dict__.update(state)
            self.changed()

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
