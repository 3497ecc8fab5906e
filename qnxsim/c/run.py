"""Running C programs as simulated processes: ``exec_c`` and the handle it returns.

The program (built by ``qnxsim.c.build``) starts as a host process in its own session with
the server's socket and a one-time token for a fresh simulated pid; its first host process
reaps every descendant, so none is left behind.  One ``Server`` per kernel, started on
first use, in a thread of this process.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence

from qnxsim.c.build import check_arch, emulator, emulator_env, unsupported_reason
from qnxsim.c.server import Server
from qnxsim.kernel import Kernel
from qnxsim.process import Process

#: Run argv[1:] as a child subreaper (prctl 36: PR_SET_CHILD_SUBREAPER).
_SUBREAPER = (
    "import ctypes, os, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:\n"
    "    sys.exit('qnxsim: cannot become a child subreaper: ' + os.strerror(ctypes.get_errno()))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)
_servers: weakref.WeakKeyDictionary[Kernel, Server] = weakref.WeakKeyDictionary()
_servers_lock = threading.Lock()


def release_server(kernel: Kernel, server: Server) -> None:
    """One run of ``kernel`` ended: close its server when no run or client is left."""
    with _servers_lock:
        server.runs -= 1
        if server.runs <= 0 and not any(c.proc.alive for c in list(server.clients.values())):
            server.close()
            if _servers.get(kernel) is server:
                del _servers[kernel]


def server_for(kernel: Kernel) -> Server:
    """The kernel's server, started on first use (RuntimeError on a host that cannot)."""
    reason = unsupported_reason()
    if reason is not None:
        raise RuntimeError(f"qnxsim cannot run C programs here: {reason}")
    check_arch(kernel.arch)
    if kernel.page_size % mmap.PAGESIZE:
        raise ValueError(
            f"the kernel's page_size is {kernel.page_size} but the host maps memory in pages "
            f"of {mmap.PAGESIZE}: use a multiple of it"
        )
    with _servers_lock:
        srv = _servers.get(kernel)
        if srv is None or srv._closed:
            srv = Server(kernel).start()
            _servers[kernel] = srv
        return srv


class CRun:
    """A running C program: ``.pid`` (simulated), ``.wait(timeout)`` (its exit status as a
    shell reports it, 128 + signal when killed), ``.stdout`` / ``.stderr`` (bytes, when
    captured, after ``wait``), ``.kill()``."""

    def __init__(
        self, kernel: Kernel, server: Server, proc: Process, popen: subprocess.Popen[bytes]
    ):
        self.kernel = kernel
        self.server = server
        self.process = proc
        self.pid = proc.pid
        self.popen = popen
        self.stdout: bytes | None = None
        self.stderr: bytes | None = None
        self.returncode: int | None = None
        self._counted = True  # one of the server's active runs until it ends

    def wait(self, timeout: float | None = 60.0) -> int:
        """Wait for the program and every host process it made; TimeoutExpired after
        ``timeout`` seconds (the processes are killed first)."""
        if self.returncode is not None:
            return self.returncode
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        finally:
            self._kill_group()
        self.stdout, self.stderr = out, err
        rc = self.popen.returncode
        self.returncode = 128 - rc if rc < 0 else rc
        self._settle()
        self._done()
        return self.returncode

    def kill(self) -> None:
        """Kill the program and all its host processes.  The processes of the program die
        first, so that its first host process reaps them and ends by itself; then the
        whole session goes (SIGKILL), and this returns when none of it is left."""
        for c in self.server.clients_in_group(self.popen.pid):
            with contextlib.suppress(OSError):
                os.kill(c.hostpid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.communicate(timeout=5)
        self._kill_group()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.communicate(timeout=5)
        self.returncode = self.returncode if self.returncode is not None else -1
        self._settle()
        self._done()

    def _done(self) -> None:
        """The last run of a kernel stops its server (a later one starts another)."""
        if self._counted:
            self._counted = False
            release_server(self.kernel, self.server)

    def _kill_group(self) -> None:
        """SIGKILL to the session; wait (a few seconds at most) until it is empty."""
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except OSError:
                return
            time.sleep(0.01)

    def _settle(self, timeout: float = 5.0) -> None:
        """Let the server see every disconnect (the kernel is final when this returns)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.kernel.lock:
                if not any(c.proc.alive for c in self.server.clients.values()):
                    return
            time.sleep(0.005)


def exec_c(
    kernel: Kernel,
    prog: str | os.PathLike[str],
    argv: Sequence[str] = (),
    *,
    uid: int = 0,
    gid: int = 0,
    parent: Process | None = None,
    capture: bool = True,
    env: dict[str, str] | None = None,
) -> CRun:
    """Start the C program ``prog`` as a new simulated process (``Kernel.exec_c``)."""
    path = os.path.abspath(os.fspath(prog))
    if not os.access(path, os.X_OK):
        raise FileNotFoundError(f"no executable program at {path}")
    if isinstance(argv, str):
        raise TypeError("argv must be a sequence of str, not one str")
    server = server_for(kernel)
    with _servers_lock:
        server.runs += 1
    try:
        proc = kernel.spawn(path, uid=uid, gid=gid, parent=parent)
    except BaseException:
        release_server(kernel, server)
        raise
    token = server.token(proc.pid)
    full_env = dict(os.environ if env is None else env)
    full_env.update(QNXSIM_SOCK=server.path, QNXSIM_TOKEN=token, QNXSIM_TOP="1")
    prefix: list[str] = []
    emu = emulator(kernel.arch)
    if emu is not None:  # another arch's program: through its emulator (build.emulator)
        # qemu-user refuses PR_SET_CHILD_SUBREAPER, so the first host process could not
        # reap the program's orphans: a native process takes the attribute, which execve
        # keeps, and becomes the emulator.
        prefix = [sys.executable, "-I", "-S", "-c", _SUBREAPER, emu]
        full_env.update(emulator_env(kernel.arch, full_env))
    pipe = subprocess.PIPE if capture else None
    popen = subprocess.Popen(
        [*prefix, path, *argv], env=full_env, stdout=pipe, stderr=pipe, start_new_session=True
    )
    return CRun(kernel, server, proc, popen)
