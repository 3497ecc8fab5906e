"""Calling functions of a C port from Python, each call inside a simulated process.

``load(sources, cdef=...)`` builds the sources as a shared object (host cc, the generated
QNX headers, cached by content) and returns a ``CLibrary``; ``lib.NAME.as_process(proc,
*args)`` runs the C function ``NAME`` in a host process bound to the simulated process
``proc`` (the call host, ``src/qnxsim_host.c``, linked with the client library), so its
mmap, mmap_peer, shm_open... are the simulator's and its memory is the simulator's RAM.
The host process stays for the next call of the same process; ``lib.close()`` ends it
(the simulated process then exits with status 0).

Arguments: ``int`` (integers and simulated addresses), ``None`` (a null pointer),
``bytes`` (a read-only copy, passed as a host pointer), ``bytearray`` (the same, copied
back after the call) and ``out(ctype)`` (zeroed storage for one value, read back as
``.value``).  After a call, ``fn.errno`` is QNX's errno name (None when C left errno 0)
and ``fn.last`` the whole ``CallResult``.  A function that faults raises ``MemoryFault``
(its process has died by it; the next call of another process is unaffected); one that
does not return within ``timeout`` seconds raises ``CallTimeout`` (its process is killed).
Declarations are parsed with pycparser (the ``c`` extra).
"""

from __future__ import annotations

import contextlib
import errno as host_errno
import importlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.access import MemoryFault
from qnxsim.c.build import (
    BuildError,
    _digest,
    _publish,
    _run_cc,
    build,
    cache_dir,
    find_cc,
    host_arch,
    include_dir,
)
from qnxsim.c.run import _servers_lock, release_server, server_for
from qnxsim.process import Process
from qnxsim.trace import note_c

#: Seconds a call may take before its process is killed (``as_process(timeout=)``).
DEFAULT_TIMEOUT = 30.0
MAX_ARGS = 8
#: Typedefs the declarations may use, as (bits, signed); pointers are unsigned 64-bit.
TYPEDEFS: dict[str, tuple[int, bool]] = {
    "pid_t": (32, True), "uid_t": (32, False), "gid_t": (32, False), "mode_t": (32, False),
    "size_t": (64, False), "ssize_t": (64, True), "off_t": (64, True), "off64_t": (64, True),
    "intptr_t": (64, True), "uintptr_t": (64, False), "paddr_t": (64, False),
    "int8_t": (8, True), "uint8_t": (8, False), "int16_t": (16, True),
    "uint16_t": (16, False), "int32_t": (32, True), "uint32_t": (32, False),
    "int64_t": (64, True), "uint64_t": (64, False), "_Bool": (8, False), "bool": (8, False),
}  # fmt: skip
_BASE = {"char": 8, "short": 16, "int": 32, "long": 64}


class CallTimeout(TimeoutError):
    """A C function did not return in time; its simulated process was killed (SIGKILL)."""


@dataclass(frozen=True)
class CType:
    """A parameter or result type: ``bits`` wide, ``signed`` or not; ``pointer`` for any
    pointer; ``void`` for a void result."""

    text: str
    bits: int = 64
    signed: bool = False
    pointer: bool = False
    void: bool = False

    def convert(self, raw: int) -> int | None:
        """The value of this type held in the low ``bits`` of the 64-bit ``raw``."""
        if self.void:
            return None
        v = raw & ((1 << self.bits) - 1)
        if self.signed and v >> (self.bits - 1):
            v -= 1 << self.bits
        return v


@dataclass(frozen=True)
class CallResult:
    """What one call returned: ``value``, and C's errno after it (QNX number and name)."""

    value: int | None
    errno: int
    errno_name: str | None


class out:
    """Zeroed storage for one value of ``ctype`` (or ``size`` bytes) passed by pointer;
    after the call ``.value`` holds what C stored (an int, or bytes for ``size=``)."""

    def __init__(self, ctype: str | None = None, *, size: int | None = None) -> None:
        if (ctype is None) == (size is None):
            raise TypeError("out() takes a C type or size=, exactly one of them")
        self.ctype = parse_type(ctype) if ctype is not None else None
        self.size = size if size is not None else max(1, (self.ctype or CType("")).bits // 8)
        if self.size <= 0:
            raise ValueError(f"out(size={size}): the size must be positive")
        self.raw = bytes(self.size)

    @property
    def value(self) -> int | bytes | None:
        if self.ctype is None:
            return self.raw
        return self.ctype.convert(int.from_bytes(self.raw, "little" if _LE else "big"))


_LE = struct.pack("=H", 1) == b"\x01\x00"


def _pycparser() -> Any:
    try:
        pycparser = importlib.import_module("pycparser")
        importlib.import_module("pycparser.c_generator")
    except ImportError:  # pragma: no cover - depends on the installation
        raise ImportError(
            "qnxsim.c.load parses C declarations with pycparser: install the 'c' extra "
            "(pip install 'qnxsim[c]')"
        ) from None
    return pycparser


def _preamble() -> str:
    return "".join(f"typedef int {name};\n" for name in TYPEDEFS if name != "_Bool")


def _ctype(node: Any, text: str) -> CType:
    c_ast = _pycparser().c_ast
    if isinstance(node, c_ast.PtrDecl | c_ast.ArrayDecl):
        return CType(text, 64, False, pointer=True)
    if isinstance(node, c_ast.TypeDecl) and isinstance(node.type, c_ast.IdentifierType):
        names = node.type.names
        if names == ["void"]:
            return CType(text, 0, False, void=True)
        if len(names) == 1 and names[0] in TYPEDEFS:
            bits, signed = TYPEDEFS[names[0]]
            return CType(text, bits, signed)
        if any(n in ("float", "double") for n in names):
            raise TypeError(f"{text!r}: floating point arguments and results are not supported")
        signed = "unsigned" not in names
        base = [n for n in names if n not in ("signed", "unsigned", "const", "volatile")]
        bits = 32 if not base else max(_BASE.get(n, 32) for n in base)
        return CType(text, bits, signed)
    raise TypeError(f"{text!r}: only integer and pointer types cross into C")


def parse_type(text: str) -> CType:
    """The ``CType`` of a C type name such as ``"void *"`` or ``"unsigned int"``."""
    if not isinstance(text, str):
        raise TypeError(f"a C type is a str, not {type(text).__name__}")
    decls = parse_cdef(f"void qx_probe({text});")
    return decls["qx_probe"][1][0]


def parse_cdef(cdef: str) -> dict[str, tuple[CType, list[CType]]]:
    """Function declarations -> ``{name: (result type, parameter types)}``; ValueError
    for what pycparser cannot parse (preprocessor lines are dropped first)."""
    pyc = _pycparser()
    body = "\n".join(ln for ln in cdef.splitlines() if not ln.lstrip().startswith("#"))
    try:
        ast = pyc.CParser().parse(_preamble() + body)
    except pyc.c_parser.ParseError as err:
        raise ValueError(f"cannot parse the C declarations: {err}") from None
    gen = pyc.c_generator.CGenerator()
    funcs: dict[str, tuple[CType, list[CType]]] = {}
    for node in ast.ext:
        if not isinstance(node, pyc.c_ast.Decl) or not isinstance(node.type, pyc.c_ast.FuncDecl):
            continue
        fd = node.type
        params: list[CType] = []
        for p in fd.args.params if fd.args is not None else []:
            if isinstance(p, pyc.c_ast.EllipsisParam):
                raise TypeError(f"{node.name}: variadic functions cannot be called")
            t = _ctype(p.type, gen.visit(p.type))
            if not t.void:
                params.append(t)
        if len(params) > MAX_ARGS:
            raise ValueError(f"{node.name} has {len(params)} parameters; at most {MAX_ARGS}")
        funcs[node.name] = (_ctype(fd.type, gen.visit(fd.type)), params)
    return funcs


def _host_source() -> Path:
    return Path(str(resources.files("qnxsim.c").joinpath("src/qnxsim_host.c")))


def build_shared(
    sources: Sequence[str | os.PathLike[str]],
    *,
    cflags: Sequence[str] = (),
    version: str = "8.0",
    cc: str | None = None,
) -> Path:
    """``sources`` compiled into a shared object against the QNX headers (cached)."""
    if isinstance(sources, str | os.PathLike):
        raise TypeError("sources must be a list of paths, not one path")
    compiler = find_cc(cc)
    if compiler is None:
        raise BuildError("no C compiler (cc) on PATH")
    paths = [Path(s) for s in sources]
    inc = include_dir(version)
    cmd = [compiler, "-I", str(inc), *cflags, "-U_FORTIFY_SOURCE", "-D_FORTIFY_SOURCE=0"]
    cmd += ["-shared", "-fPIC"]
    key = _digest(*(p.read_bytes() for p in paths), *cmd, *(p.name for p in paths))
    final = cache_dir() / f"lib-{key}.so"
    if final.exists():
        return final
    tmp = cache_dir() / f".lib-{key}-{os.getpid()}.so"
    try:
        _run_cc([*cmd, *map(str, paths), "-o", str(tmp)], "compiling " + " ".join(map(str, paths)))
        return _publish(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def host_program(version: str = "8.0", cc: str | None = None) -> Path:
    """The call host for ``version`` (built once, cached)."""
    return build([_host_source()], cflags=["-rdynamic"], version=version, cc=cc)


class _Host:
    """One call host process bound to one simulated process."""

    def __init__(self, lib: CLibrary, proc: Process) -> None:
        kernel = proc.kernel
        if kernel.arch != host_arch():
            raise ValueError(
                f"the kernel's arch is {kernel.arch!r}: C functions are called on the "
                f"host's own arch, {host_arch()!r} (programs of another arch run through an "
                "emulator with exec_c)"
            )
        self.proc = proc
        self.server = server_for(kernel)
        with _servers_lock:  # one active run of the server, as exec_c counts them
            self.server.runs += 1
        self.closed = False
        mine, theirs = socket.socketpair()
        self.sock = mine
        m = kernel.machine
        env = dict(
            os.environ, QNXSIM_SOCK=self.server.path, QNXSIM_TOKEN=self.server.token(proc.pid)
        )
        env.pop("QNXSIM_TOP", None)
        argv = [
            str(lib.host),
            str(lib.path),
            str(theirs.fileno()),
            hex(m.user_start),
            hex(m.user_end),
        ]
        try:
            self.popen = subprocess.Popen(
                argv, env=env, pass_fds=[theirs.fileno()], start_new_session=True
            )
        except BaseException:
            self._release()
            raise
        finally:
            theirs.close()

    def _release(self) -> None:
        if not self.closed:
            self.closed = True
            release_server(self.proc.kernel, self.server)

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def call(
        self, name: str, args: list[tuple[int, int | bytes]], timeout: float
    ) -> tuple[int, int, int, list[bytes]]:
        body = [struct.pack("=H", len(name)), name.encode(), struct.pack("=H", len(args))]
        for kind, val in args:
            if kind == 0:
                assert isinstance(val, int)
                body.append(struct.pack("=Bq", 0, val))
            else:
                assert isinstance(val, bytes)
                body.append(struct.pack("=BI", 1, len(val)) + val)
        msg = b"".join(body)
        self.sock.settimeout(timeout)
        try:
            self.sock.sendall(struct.pack("=I", len(msg)) + msg)
            (size,) = struct.unpack("=I", self._recv(4))
            reply = self._recv(size)
        except TimeoutError:
            self.kill()
            raise CallTimeout(
                f"{name}() did not return within {timeout} s: its process (pid "
                f"{self.proc.pid}) was killed (SIGKILL)"
            ) from None
        except (EOFError, OSError):
            self.kill()
            raise self._death(name, None) from None
        status = reply[0]
        if status == 2:
            addr, code = struct.unpack("=qi", reply[1:13])
            self.kill()
            raise self._death(name, (addr, code)) from None
        ret, err = struct.unpack("=qi", reply[1:13])
        bufs, pos = [], 13
        while pos < len(reply):
            (n,) = struct.unpack("=I", reply[pos : pos + 4])
            bufs.append(reply[pos + 4 : pos + 4 + n])
            pos += 4 + n
        return status, ret, err, bufs

    def _death(self, name: str, host_fault: tuple[int, int] | None) -> Exception:
        pid = self.proc.pid
        fault = self.server.faults.get(pid)
        if fault is not None:
            return fault
        if host_fault is not None:
            addr, code = host_fault
            qcode = C.SEGV_ACCERR if code == 2 else C.SEGV_MAPERR
            return MemoryFault(C.SIGSEGV, qcode, addr, pid, "?")
        rc = self.popen.returncode
        return RuntimeError(f"{name}(): the call host of pid {pid} ended (status {rc})")

    def kill(self) -> None:
        """SIGKILL the host and whatever its C code forked; return when the server has
        ended their simulated processes."""
        forked = self._forked()
        with contextlib.suppress(OSError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._settle(forked)

    def close(self) -> None:
        """End the host (the simulated process exits with status 0) and SIGKILL the host
        processes its C code forked and left running, so that none outlives it."""
        if self.closed:
            return
        forked = self._forked()
        self.sock.close()
        self._exited(5)
        with contextlib.suppress(OSError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # what is left of its own session
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._settle(forked)

    def _exited(self, timeout: float) -> None:
        """Wait (``timeout`` s at most) until the host has exited, without reaping it: while
        it is a zombie its pid still names its process group, which killpg then reaches."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
                if os.waitid(os.P_PID, self.popen.pid, flags) is not None:
                    return
            except ChildProcessError:  # already reaped
                return
            time.sleep(0.002)

    def _forked(self) -> list[Process]:
        """The simulated processes of the host processes that the C code forked (they
        stay in the host's process group)."""
        clients = self.server.clients_in_group(self.popen.pid)
        return [c.proc for c in clients if c.proc is not self.proc]

    def _settle(self, forked: Sequence[Process] = ()) -> None:
        """Wait (5 s at most) until the server has seen the host, and ``forked``, go."""
        end = time.monotonic() + 5
        procs = [self.proc, *forked]
        while time.monotonic() < end:
            with self.proc.kernel.lock:
                clients = self.server.clients
                if all(not p.alive or clients.get(p.pid) is None for p in procs):
                    break
            time.sleep(0.002)
        self.sock.close()
        self._release()


class CFunction:
    """A C function of a ``CLibrary``: ``as_process(proc, *args)`` calls it."""

    def __init__(self, lib: CLibrary, name: str, restype: CType, argtypes: list[CType]) -> None:
        self.lib = lib
        self.name = name
        self.restype = restype
        self.argtypes = argtypes
        self.last: CallResult | None = None

    @property
    def errno(self) -> str | None:
        """QNX's errno name after the last call (None: C left errno 0)."""
        return self.last.errno_name if self.last is not None else None

    def __repr__(self) -> str:
        params = ", ".join(t.text for t in self.argtypes)
        return f"<C function {self.restype.text} {self.name}({params})>"

    def as_process(self, proc: Process, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> int | None:
        """Call the function inside simulated process ``proc``; its result converted to
        the declared type (None for void)."""
        return self.call(proc, *args, timeout=timeout).value

    def call(self, proc: Process, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> CallResult:
        """``as_process``, returning the whole ``CallResult``."""
        if not isinstance(proc, Process):
            raise TypeError(
                f"as_process needs the simulated Process first, not {type(proc).__name__}"
            )
        if len(args) != len(self.argtypes):
            raise TypeError(f"{self!r} takes {len(self.argtypes)} arguments, not {len(args)}")
        wire: list[tuple[int, int | bytes]] = []
        for i, (a, t) in enumerate(zip(args, self.argtypes, strict=True)):
            if isinstance(a, bool) or not isinstance(a, int | bytes | bytearray | out | None):
                raise TypeError(
                    f"argument {i + 1} of {self.name}: {type(a).__name__} does not cross into C"
                )
            if isinstance(a, out):
                wire.append((1, a.raw))
            elif isinstance(a, bytes | bytearray):
                wire.append((1, bytes(a)))
            elif a is None:
                if not t.pointer:
                    raise TypeError(f"argument {i + 1} of {self.name}: None for {t.text!r}")
                wire.append((0, 0))
            else:
                if not -(1 << 63) <= a < (1 << 64):
                    raise ValueError(f"argument {i + 1} of {self.name}: {a} does not fit 64 bits")
                wire.append((0, a - (1 << 64) if a >= 1 << 63 else a))
        host = self.lib._host(proc)
        shown = f"{self.name}({', '.join(map(_arg_text, args))})"
        try:
            status, ret, err, bufs = host.call(self.name, wire, timeout)
        except Exception as exc:  # its process died by it, or was killed
            note_c(proc.kernel, proc.pid, f"{shown}: {type(exc).__name__}: {exc}")
            raise
        if status == 1:
            raise AttributeError(f"the shared object has no function {self.name!r}")
        it = iter(bufs)
        for a in args:
            if isinstance(a, out):
                a.raw = next(it)
            elif isinstance(a, bytearray):
                a[:] = next(it)
            elif isinstance(a, bytes):
                next(it)
        name = host_errno.errorcode.get(err) if err else None
        qnum = int(getattr(qerrno, name, -1)) if name else 0
        self.last = CallResult(self.restype.convert(ret), qnum, name)
        note_c(proc.kernel, proc.pid, f"{shown} -> {self._result_text(self.last)}")
        return self.last

    def _result_text(self, result: CallResult) -> str:
        """What came back, for the failure report: a pointer in hex, errno by name."""
        value = result.value
        text = "void" if value is None else hex(value) if self.restype.pointer else str(value)
        return text + (f", errno {result.errno_name}" if result.errno_name else "")


def close_each(closers: Iterable[Callable[[], object]]) -> None:
    """Call every closer, even after one fails; then raise the first error, if any."""
    errors: list[Exception] = []
    for close in closers:
        try:
            close()
        except Exception as err:  # close the others first
            errors.append(err)
    if errors:
        raise errors[0]


def _arg_text(value: Any) -> str:
    """An argument of a C call as the failure report shows it (addresses in hex)."""
    if isinstance(value, out):
        return (
            f"out({value.ctype.text!r})" if value.ctype is not None else f"out(size={value.size})"
        )
    if isinstance(value, bytes | bytearray):
        return f"{type(value).__name__}[{len(value)}]"
    if value is None:
        return "NULL"
    return hex(value) if abs(value) >= 0x10000 else str(value)


class CLibrary:
    """A shared object built by ``load``: one ``CFunction`` per declared function."""

    def __init__(
        self, path: Path, host: Path, funcs: dict[str, tuple[CType, list[CType]]], version: str
    ) -> None:
        self.path = path
        self.host = host
        self.version = version
        self.functions = {n: CFunction(self, n, r, a) for n, (r, a) in funcs.items()}
        self._hosts: dict[int, _Host] = {}

    def __getattr__(self, name: str) -> CFunction:
        funcs = self.__dict__.get("functions", {})
        if name in funcs:
            return funcs[name]  # type: ignore[no-any-return]
        raise AttributeError(f"no function {name!r} was declared (cdef= or header=)")

    def _host(self, proc: Process) -> _Host:
        if proc.kernel.version != self.version:
            raise ValueError(
                f"this library was built for QNX {self.version}, the process's kernel is "
                f"{proc.kernel.version}: load it with version={proc.kernel.version!r}"
            )
        if not proc.alive:  # also when it ended through the Python API, host and all
            raise ProcessLookupError(f"pid {proc.pid} has ended: no call can run in it")
        host = self._hosts.get(id(proc))
        if host is not None and (host.closed or host.proc is not proc):
            host = None
        if host is None:
            host = self._hosts[id(proc)] = _Host(self, proc)
        return host

    def close(self) -> None:
        """End every call host (their simulated processes exit with status 0) and kill the
        host processes their C code forked; every host is closed even when one fails (the
        first error is then raised)."""
        hosts, self._hosts = list(self._hosts.values()), {}
        close_each(h.close for h in hosts)

    def __enter__(self) -> CLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(
    sources: Sequence[str | os.PathLike[str]],
    *,
    cdef: str | None = None,
    header: str | os.PathLike[str] | None = None,
    cflags: Sequence[str] = (),
    version: str = "8.0",
    cc: str | None = None,
) -> CLibrary:
    """Build ``sources`` as a shared object and return a ``CLibrary`` of the functions
    declared in ``cdef`` (C text) or ``header`` (a file; preprocessor lines dropped)."""
    if (cdef is None) == (header is None):
        raise TypeError("load() needs the declarations: cdef= (C text) or header= (a file)")
    text = cdef if cdef is not None else Path(os.fspath(header)).read_text()  # type: ignore[arg-type]
    if not isinstance(text, str):
        raise TypeError(f"cdef must be C text (str), not {type(text).__name__}")
    funcs = parse_cdef(text)
    if not funcs:
        raise ValueError("the declarations name no function")
    path = build_shared(sources, cflags=cflags, version=version, cc=cc)
    return CLibrary(path, host_program(version, cc), funcs, version)


class _CallableModule(types.ModuleType):
    """``import qnxsim.c.load`` then ``qnxsim.c.load(sources, cdef=...)``: the module
    called is ``load``."""

    def __call__(self, *args: Any, **kwargs: Any) -> CLibrary:
        return load(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
