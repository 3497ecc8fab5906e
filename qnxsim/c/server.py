"""The kernel server: one ``Kernel`` serving C processes over a private Unix socket.

Each C process (the client library, ``src/qnxsim_client.c``) connects once per host
process and binds to one simulated pid with a one-time token; a second connection carries
shootdowns.  Requests are simulated calls, page faults of the memory mirror and the
handshake.  The server keeps, per process, what the host has mapped of the shared RAM file
(the mirror) and takes back whatever a call makes stale: in the reply for the caller, by a
signal and an acknowledgement for any other process.  It runs as a thread of any Python
process (``Server(kernel).start()``) or as ``qnxsim serve``.

Wire format (native byte order; the client and the server share one host):
request ``u32 size | u8 namelen | name | u16 nargs | i64 args[] | u32 bloblen | blob``;
reply ``u32 size | i32 err | u16 nvals | u16 nranges | u32 bloblen | i64 vals[] |
i64 ranges[4 * nranges] | blob``, a range being ``lo, hi, RAM file offset, host prot``
(prot -1: take it back).  ``err`` is a QNX errno, -1 for "die by signal vals[0]" or, for
a fault, -3 for "run the program's handler for signal vals[0], code vals[1]" (the process
lives on).
"""

from __future__ import annotations

import contextlib
import functools
import mmap
import os
import secrets
import signal
import socket
import struct
import tempfile
import threading
from collections.abc import Callable
from typing import Any

from qnxsim import access, lifecycle
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.access import MemoryFault
from qnxsim.addrspace import AddressSpace
from qnxsim.c.generate import generated_rows, unsigned_args
from qnxsim.errno import QnxError
from qnxsim.intervals import IntervalMap
from qnxsim.kernel import Kernel
from qnxsim.pathspace import SHMEM_DIR, normalize
from qnxsim.process import Process
from qnxsim.trace import TraceEvent

#: Host mappings a mirror may hold before it is emptied and refilled on demand: well below
#: Linux's default vm.max_map_count (65530), which counts the host's own mappings too.
MAX_MIRROR_RUNS = 30000
GRANT_AHEAD = 256  # pages a fault may map beyond the faulting one, when they are ready
SHOOTDOWN_TIMEOUT = 5.0  # seconds a process has to acknowledge; then it is killed
MAX_REQUEST = (1 << 20) + 65536
RECV_BUFFER = 65536  # a connection's receive buffer; grows for a larger request
NOT_SIMULATED = -2  # open(): the path is the host's
DIE = -1
DELIVER = -3  # fault reply: the program's own handler takes the signal
QNX_SIGKILL = 9  # QNX <signal.h>

_HDR = struct.Struct("=iHHI")
_U32 = struct.Struct("=I")
_U16 = struct.Struct("=H")
_ANY_ACCESS = C.PROT_READ | C.PROT_WRITE | C.PROT_EXEC


def host_prot(prot: int, writable: bool) -> int:
    """The host protection of a mirrored page of QNX protection ``prot`` (R-FAULT-3: any
    of read, write, exec lets a page be read)."""
    out = mmap.PROT_READ if prot & _ANY_ACCESS else 0
    if prot & C.PROT_WRITE and writable:
        out |= mmap.PROT_WRITE
    if prot & C.PROT_EXEC:
        out |= mmap.PROT_EXEC
    return out


def peek(space: AddressSpace, page: int) -> tuple[int, int] | None:
    """``(paddr, host prot)`` of a page the host may map as it is now, allocating nothing;
    None when an access would first need the simulator (a fault).  O(log n)."""
    hit = space.map.find(page)
    if hit is None or page >= space.m.user_end:
        return None
    s, _, entry = hit
    if not entry.prot & _ANY_ACCESS:
        return None
    obj, anon = entry.obj, space.anon
    obj_off = entry.offset + (page - s)
    if obj is not anon and obj.size is not None and obj_off >= obj.size:
        return None
    if entry.private:
        own = anon.frame(page)
        if own is not None:
            return own, host_prot(entry.prot, True)
        if obj is anon:
            return None
        shared = obj.frame(obj_off)  # R-OBJ-4: read in place until the first write
        return (shared, host_prot(entry.prot, False)) if shared is not None else None
    frame = obj.frame(obj_off)
    return (frame, host_prot(entry.prot, True)) if frame is not None else None


def _split(value: tuple[int, int], start: int, at: int) -> tuple[int, int]:
    return value[0] + (at - start), value[1]


def _join(
    left: tuple[int, int], ls: int, le: int, right: tuple[int, int]
) -> tuple[int, int] | None:
    if left[1] == right[1] and left[0] + (le - ls) == right[0]:
        return left
    return None


class Mirror:
    """What one host process has mapped of the RAM file: ``[lo, hi) -> (paddr, prot)``."""

    def __init__(self) -> None:
        self.map = IntervalMap[tuple[int, int]](split=_split, join=_join)

    def grant(self, lo: int, hi: int, paddr: int, prot: int) -> None:
        """Record ``[lo, hi)`` as mapped to ``paddr`` (it replaces what was there)."""
        self.map.remove(lo, hi)
        self.map.insert(lo, hi, (paddr, prot))

    def drop(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Forget ``[lo, hi)``; returns the mirrored pieces it held.  O(log n + k)."""
        return [(s, e) for s, e, _ in self.map.remove(lo, hi)]

    def stale(self, space: AddressSpace, ps: int) -> list[tuple[int, int]]:
        """Pieces whose pages no longer map as mirrored (checked page by page)."""
        out: list[tuple[int, int]] = []
        for s, e, (paddr, prot) in list(self.map):
            for page in range(s, e, ps):
                if peek(space, page) != (paddr + (page - s), prot):
                    out.append((page, page + ps))
        for lo, hi in out:
            self.map.remove(lo, hi)
        return out


class Client:
    """One connected host process, bound to simulated pid ``pid``."""

    def __init__(self, server: Server, proc: Process, sock: socket.socket, hostpid: int) -> None:
        self.server = server
        self.proc = proc
        self.pid = proc.pid
        self.sock = sock
        self.sd: socket.socket | None = None
        self.hostpid = hostpid
        self.sdsig = 0
        self.mirror = Mirror()
        self.gone = False  # exited, exec'd or killed: its disconnect is no death
        self.pending: list[tuple[int, int, int, int]] = []  # ranges for the next reply
        self.cpus: set[int] = set()  # the CPUs its host process may use (``_colocate``)
        self.cpu: int | None = None  # the one it and its serving thread run on


# A request handler: (server, client, args, blob) -> (vals, blob).
Handler = Callable[["Server", Client, list[int], bytes], tuple[list[int], bytes]]


class Server:
    """Serve ``kernel`` to C processes.

    Methods: ``start``, ``close``, ``token`` (a one-time handshake token for a pid),
    ``path`` (the socket), ``killed`` (pid -> QNX signal of the processes that died by one).
    """

    def __init__(self, kernel: Kernel, *, directory: str | None = None) -> None:
        if not isinstance(kernel, Kernel):
            raise TypeError(f"kernel must be a Kernel, not {type(kernel).__name__}")
        if kernel.pm.ram_file() is None:
            raise RuntimeError("the host has no memfd_create: C programs cannot run here")
        self.kernel = kernel
        self._dir = tempfile.mkdtemp(prefix="qnxsim-", dir=directory)  # mode 0700
        os.chmod(self._dir, 0o700)
        self.path = os.path.join(self._dir, "kernel.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        self._tokens: dict[str, int] = {}
        self._sd_tokens: dict[str, Client] = {}
        self.clients: dict[int, Client] = {}
        self.killed: dict[int, int] = {}
        #: pid -> the MemoryFault that killed it (read by ``qnxsim.c.load``)
        self.faults: dict[int, MemoryFault] = {}
        self.cond = threading.Condition(kernel.lock)
        self._closed = False
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []  # protocol errors seen (garbage, bad tokens)
        self.evictions = 0  # mirrors emptied to stay below the host's map count
        self.runs = 0  # programs started by qnxsim.c.run and not yet waited for
        self._local = threading.local()  # .serving: this thread serves a connection
        #: forked pid -> its host process, until that process connects (``_bury_unborn``)
        self._unborn: dict[int, int] = {}
        self.pin = os.environ.get("QNXSIM_PIN", "1") != "0"  # ``_colocate``
        self._next_cpu = 0

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Server:
        self.kernel.watch(self._after_change)
        t = threading.Thread(target=self._accept_loop, name="qnxsim-server", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def close(self) -> None:
        """Stop serving: every client's next request fails with a clear message."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(ValueError):  # never started
            self.kernel.unwatch(self._after_change)
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for c in list(self.clients.values()):
            for s in (c.sock, c.sd):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
            os.rmdir(self._dir)
        with self.cond:
            self.cond.notify_all()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def token(self, pid: int) -> str:
        """A one-time token that binds the next connection presenting it to ``pid``."""
        tok = secrets.token_hex(16)
        with self.kernel.lock:
            self._tokens[tok] = pid
        return tok

    def clients_in_group(self, pgid: int) -> list[Client]:
        """The connected clients whose host process is in process group ``pgid`` (a
        program's session, or a call host and what its C code forked)."""
        found = []
        for client in list(self.clients.values()):
            with contextlib.suppress(OSError):  # a host process that is gone
                if os.getpgid(client.hostpid) == pgid:
                    found.append(client)
        return found

    def _tokens_for(self, pid: int) -> str:
        return self.token(pid)

    # -- connections --------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            t.start()

    def _serve(self, sock: socket.socket) -> None:
        client: Client | None = None
        keep = False  # a shootdown channel outlives this thread
        self._local.serving = True  # calls made here take back what they make stale
        reader = _Reader(sock)
        try:
            first = reader.request()
            if first is None:
                return
            name, args, blob = first
            if name == "@sd":
                self._attach_shootdown(sock, blob)
                keep = True
                return
            if name != "@hello":
                raise _Garbage(f"first request {name!r} is not a handshake")
            client = self._hello(sock, args, blob)
            while True:
                req = reader.request()
                if req is None:
                    break
                self._handle(client, *req)
        except _Garbage as g:
            self.errors.append(str(g))
        except OSError:
            pass
        except Exception as e:  # a bug must not take the thread down silently
            self.errors.append(f"internal error: {e!r}")
        finally:
            if client is not None:
                self._disconnected(client)
            if not keep:
                sock.close()

    def _hello(self, sock: socket.socket, args: list[int], blob: bytes) -> Client:
        k = self.kernel
        with k.lock:
            pid = self._tokens.pop(blob.decode("ascii", "replace"), None)
            proc = k.lookup(pid) if pid is not None else None
            if pid is None or proc is None or not proc.alive or len(args) < 2:
                raise _Garbage("a handshake with a bad or used token")
            old = self.clients.get(pid)
            if old is not None:
                old.gone = True  # exec: the new image takes over the pid
            self._unborn.pop(pid, None)
            client = Client(self, proc, sock, args[0])
            client.sdsig = args[1]
            self.clients[pid] = client
            self._colocate(client, old or self.clients.get(proc.ppid))
            sd_tok = secrets.token_hex(16)
            self._sd_tokens[sd_tok] = client
            m = k.machine
            reply = _pack_reply(0, [pid, m.user_start, m.user_end], [], sd_tok.encode())
        ramfd = k.pm.ram_file()
        assert ramfd is not None
        socket.send_fds(sock, [reply[:4]], [ramfd])
        sock.sendall(reply[4:])
        return client

    def _colocate(self, client: Client, family: Client | None) -> None:
        """Run the connection's host process and the thread serving it on one CPU.

        Every call is a round trip in which one side sleeps while the other runs.  On one
        CPU each hand-over is a plain switch; on two it wakes the other, often idle, CPU,
        which costs more than the Python work of a small call (benchmarks/c_bench.py).
        Connections take the CPUs in turn, so simulated processes still run in parallel
        with one another.  A process's CPUs are those its host process could use before it
        was pinned: a forked child or an exec'd image, which inherit a single CPU, take
        the set of ``family`` (the parent, or the image it replaces).
        ``QNXSIM_PIN=0`` in the server's environment leaves placement to the host.
        """
        if not self.pin:
            return
        try:
            cpus = family.cpus if family is not None and family.cpus else None
            if cpus is None:
                cpus = os.sched_getaffinity(client.hostpid)
            mine = os.sched_getaffinity(0)
            usable = sorted(cpus & mine)
            if not usable:
                return
            cpu = usable[self._next_cpu % len(usable)]
            self._next_cpu += 1
            os.sched_setaffinity(client.hostpid, {cpu})
            os.sched_setaffinity(0, {cpu})  # Linux: this thread only
        except OSError:  # not allowed, or the process is gone: placement stays the host's
            return
        client.cpus, client.cpu = cpus, cpu

    def _attach_shootdown(self, sock: socket.socket, blob: bytes) -> None:
        with self.kernel.lock:
            client = self._sd_tokens.pop(blob.decode("ascii", "replace"), None)
            if client is None:
                raise _Garbage("a shootdown channel with a bad token")
            client.sd = sock
            sock.settimeout(SHOOTDOWN_TIMEOUT)
            sock.sendall(b"\x01")

    def _disconnected(self, client: Client) -> None:
        """The host process is gone: unless it exited or exec'd, it died (SIGKILL)."""
        with self.cond:
            if not client.gone and client.proc.alive:
                self._kill(client.proc, QNX_SIGKILL, "disconnected")
            client.gone = True
            if self.clients.get(client.pid) is client:
                del self.clients[client.pid]
            if client.sd is not None:
                client.sd.close()
            self.cond.notify_all()

    def _bury_unborn(self, procs: list[Process]) -> None:
        """Kill (SIGKILL) each of ``procs`` whose host process ended before it connected, so
        that a wait for it ends instead of waiting for a process that can never run."""
        for p in procs:
            host = self._unborn.get(p.pid)
            if host is not None and p.alive and not _host_alive(host):
                del self._unborn[p.pid]
                self._kill(p, QNX_SIGKILL, "its host process ended before it connected")

    def _kill(self, proc: Process, signo: int, why: str, fault: MemoryFault | None = None) -> None:
        """End ``proc`` as killed by QNX signal ``signo``: its memory is released (R-PROC-4)."""
        k = self.kernel
        self.killed[proc.pid] = signo
        if fault is not None:
            self.faults[proc.pid] = fault
        before = {proc.pid: proc.space.records()} if k.tracing else None
        lifecycle.exit_process(proc, 0)
        if before is not None:
            self._trace(proc, "MemoryFault" if fault else "kill", signo, fault, why, before)
        self.cond.notify_all()

    def _record_fault(self, proc: Process, fault: MemoryFault, why: str) -> None:
        """Trace a fault that a handler of the program takes (the process lives on)."""
        if self.kernel.tracing:
            before = {proc.pid: proc.space.records()}
            self._trace(proc, "MemoryFault", fault.signo, fault, why, before)

    def _trace(
        self,
        proc: Process,
        call: str,
        signo: int,
        fault: MemoryFault | None,
        why: str,
        before: dict[int, Any],
    ) -> None:
        from qnxsim import trace

        k = self.kernel
        args: tuple[Any, ...] = (fault.addr, fault.access) if fault is not None else ()
        reason = f"{fault}: {why}" if fault is not None and why != "fault" else str(fault or why)
        ev = trace.record(k, call, proc.pid, args, before)
        k.trace.append(
            TraceEvent(
                ev.call,
                ev.pid,
                args,
                signo,
                0,
                reason,
                ev.added,
                ev.removed,
                ev.changed,
                ev.version,
            )
        )

    # -- requests -----------------------------------------------------------------------

    def _handle(self, client: Client, name: str, args: list[int], blob: bytes) -> None:
        if name == "@fault":
            self._fault(client, args)
            return
        entry = CALLS.get(name)
        k = self.kernel
        with self.cond:
            if entry is None:
                raise _Garbage(f"unknown call {name!r}")
            handler, invalidate = entry
            try:
                vals, out = handler(self, client, args, blob)
                err = 0
            except QnxError as e:
                vals, out, err = [], b"", e.errno
            except (TypeError, ValueError, IndexError) as e:
                raise _Garbage(f"{name}: bad arguments {args!r}: {e}") from None
            if not err:
                invalidate(self, client, args, vals)
            ranges, client.pending = client.pending, []
            reply = _pack_reply(err, vals, ranges, out)
        client.sock.sendall(reply)
        if name == "exit" and not err:
            client.gone = True
        del k

    def _fault(self, client: Client, args: list[int]) -> None:
        """A page fault of the mirror: grant frames, or kill by QNX's signal (SPEC 14)."""
        addr, write = args[0], bool(args[1])
        caught = args[2] if len(args) > 2 else 0  # 1: SIGSEGV, 2: SIGBUS has a handler
        k = self.kernel
        ps = k.page_size
        kind = "w" if write else "r"
        with self.cond:
            proc = client.proc
            space = proc.space
            try:
                if not proc.alive:
                    raise MemoryFault(C.SIGSEGV, C.SEGV_MAPERR, addr, proc.pid, kind)
                pages = access.plan(space, proc.pid, addr, 1, kind)
                access._resolve(space, pages[0])
            except MemoryFault as f:
                bit = {C.SIGSEGV: 1, C.SIGBUS: 2}.get(f.signo, 0)
                if proc.alive and caught & bit:  # the program's handler takes it
                    self._record_fault(proc, f, "delivered to the program's handler")
                    client.sock.sendall(_pack_reply(DELIVER, [f.signo, f.code], [], b""))
                    return
                if proc.alive:
                    self._kill(proc, f.signo, "fault", f)
                client.gone = True
                client.sock.sendall(_pack_reply(DIE, [f.signo, f.code], [], b""))
                return
            page = addr - addr % ps
            first = peek(space, page)
            assert first is not None, "the page was just resolved"
            paddr, prot = first
            end = page + ps
            hit = space.map.find(page)
            assert hit is not None
            limit = min(hit[1], page + GRANT_AHEAD * ps)
            while end < limit and peek(space, end) == (paddr + (end - page), prot):
                end += ps
            ranges: list[tuple[int, int, int, int]] = []
            if len(client.mirror.map) >= MAX_MIRROR_RUNS:  # evict all: cold pages refault
                self.evictions += 1
                m = k.machine
                client.mirror.drop(m.user_start, m.user_end)
                # one range for the whole user range: a reply listing every run would not
                # fit the client's fault buffer
                ranges = [(m.user_start, m.user_end, 0, -1)]
            client.mirror.grant(page, end, paddr, prot)
            ranges.append((page, end, paddr, prot))
            reply = _pack_reply(0, [], ranges, b"")
        client.sock.sendall(reply)

    # -- invalidation -------------------------------------------------------------------

    def take_back(self, caller: Client, pid: int, lo: int, hi: int) -> None:
        """Unmirror ``[lo, hi)`` of ``pid`` (rounded out to pages)."""
        ps = self.kernel.page_size
        lo, hi = lo - lo % ps, -(-hi // ps) * ps
        target = self.clients.get(pid)
        if target is None:
            return
        pieces = target.mirror.drop(lo, hi)
        self._send_back(caller, target, pieces)

    def take_back_stale(self, caller: Client | None) -> None:
        """Unmirror every page of every live process that no longer maps as mirrored
        (``caller``: the C process whose call this is, None for a Python-API call)."""
        ps = self.kernel.page_size
        for target in list(self.clients.values()):
            if target.proc.alive and not target.gone:
                self._send_back(caller, target, target.mirror.stale(target.proc.space, ps))

    def _after_change(self) -> None:
        """A call made through the Python API (not by a C process) may have changed what a
        running C process mirrors: take back every stale page before that call returns; a
        process that the call ended loses its host process (SIGKILL).  O(mirrored pages)."""
        if getattr(self._local, "serving", False):
            return  # a C process's call: its handler takes back what it made stale
        for target in list(self.clients.values()):
            if not target.gone and not target.proc.alive:
                target.gone = True
                with contextlib.suppress(OSError):
                    os.kill(target.hostpid, signal.SIGKILL)
        self.take_back_stale(None)

    def _send_back(
        self, caller: Client | None, target: Client, pieces: list[tuple[int, int]]
    ) -> None:
        if not pieces:
            return
        if target is caller:
            caller.pending.extend((lo, hi, 0, -1) for lo, hi in pieces)
            return
        self._shootdown(target, pieces)

    def _shootdown(self, target: Client, pieces: list[tuple[int, int]]) -> None:
        """Make ``target`` unmap ``pieces`` before the call returns (signal + ack)."""
        sd = target.sd
        if target.gone or sd is None:
            return
        msg = _U32.pack(len(pieces)) + b"".join(struct.pack("=qq", lo, hi) for lo, hi in pieces)
        try:
            sd.sendall(msg)
            os.kill(target.hostpid, target.sdsig)
            if sd.recv(1) != b"\x01":
                raise OSError("no acknowledgement")
        except OSError:  # dead, stuck or lying: it must not keep stale memory
            with contextlib.suppress(OSError):
                os.kill(target.hostpid, signal.SIGKILL)
            if target.proc.alive:
                self._kill(target.proc, QNX_SIGKILL, "did not acknowledge a shootdown")
            target.gone = True


class _Garbage(Exception):
    """A request that breaks the protocol: the connection is dropped."""


def _hung_up(sock: socket.socket) -> bool:
    """Has the peer closed its end (nothing more will come)?"""
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class _Reader:
    """Requests from one connection: one ``recv_into`` a request when it arrives whole (as
    it does: the client sends each in one write and waits for the reply)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray(RECV_BUFFER)
        self.view = memoryview(self.buf)
        self.have = 0  # bytes received and not yet consumed, from buf[0]

    def _fill(self, want: int) -> bool:
        """Receive until ``want`` bytes are in the buffer; False at end of stream."""
        if want > len(self.buf):  # a bytearray cannot grow while a view of it exists
            self.view.release()
            self.buf.extend(bytes(want - len(self.buf)))
            self.view = memoryview(self.buf)
        while self.have < want:
            n = self.sock.recv_into(self.view[self.have :])
            if not n:
                return False
            self.have += n
        return True

    def request(self) -> tuple[str, list[int], bytes] | None:
        if not self._fill(4):
            return None
        (size,) = _U32.unpack_from(self.buf)
        if size > MAX_REQUEST or size < 7:
            raise _Garbage(f"a request of {size} bytes")
        end = 4 + size
        if not self._fill(end):
            return None
        req = _parse(self.buf, size)
        if self.have > end:  # never while the client waits for each reply; kept anyway
            self.buf[: self.have - end] = self.buf[end : self.have]
        self.have -= end
        return req


#: Request name bytes -> name, for every name the server knows (filled below CALLS).
_NAMES: dict[bytes, str] = {}


def _parse(buf: bytearray, size: int) -> tuple[str, list[int], bytes]:
    """The request whose body is ``buf[4:4 + size]``."""
    nl = buf[4]
    pos = 5 + nl
    raw = bytes(buf[5:pos])
    try:
        name = _NAMES.get(raw) or raw.decode("ascii")
        (nargs,) = _U16.unpack_from(buf, pos)
        pos += 2
        args = list(_args_struct(nargs).unpack_from(buf, pos))
        pos += 8 * nargs
        (bl,) = _U32.unpack_from(buf, pos)
        pos += 4
    except (UnicodeDecodeError, struct.error) as e:
        raise _Garbage(f"a malformed request: {e}") from None
    if pos + bl != 4 + size:
        raise _Garbage("a request whose sizes disagree")
    return name, args, bytes(buf[pos : pos + bl]) if bl else b""


@functools.cache
def _args_struct(n: int) -> struct.Struct:
    """The layout of ``n`` request arguments."""
    return struct.Struct(f"={n}q")


@functools.cache
def _reply_struct(nv: int) -> struct.Struct:
    """The layout of a reply of ``nv`` values, no ranges and no blob (the common one)."""
    return struct.Struct(f"=IiHHI{nv}q")


def _s64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >= 1 << 63 else v


def _pack_reply(
    err: int, vals: list[int], ranges: list[tuple[int, int, int, int]], blob: bytes
) -> bytes:
    nv, nr = len(vals), len(ranges)
    if nr == 0 and not blob:  # the common reply: a result and nothing to map
        try:
            return _reply_struct(nv).pack(12 + 8 * nv, err, nv, 0, 0, *vals)
        except struct.error:  # an unsigned word above 2**63: sent as its bit pattern
            pass
    body = _HDR.pack(err, nv, nr, len(blob))
    body += struct.pack(f"={nv}q", *map(_s64, vals))
    body += b"".join(struct.pack("=4q", *r) for r in ranges)
    body += blob
    return _U32.pack(len(body)) + body


# -- the calls -----------------------------------------------------------------------------


def _u(v: int) -> int:
    """An address or size as C passes it (an unsigned 64-bit word)."""
    return v & ((1 << 64) - 1)


def _name(blob: bytes) -> str:
    return blob.decode("utf-8", "surrogateescape")


def _none(server: Server, caller: Client, args: list[int], vals: list[int]) -> None:
    return None


def _all(server: Server, caller: Client, args: list[int], vals: list[int]) -> None:
    server.take_back_stale(caller)


def _own_range(a: int, n: int) -> Callable[[Server, Client, list[int], list[int]], None]:
    def inv(server: Server, caller: Client, args: list[int], vals: list[int]) -> None:
        server.take_back(caller, caller.pid, _u(args[a]), _u(args[a]) + _u(args[n]))

    return inv


def _mmap_fixed(server: Server, caller: Client, args: list[int], vals: list[int]) -> None:
    if args[3] & C.MAP_FIXED:
        server.take_back(caller, caller.pid, _u(vals[0]), _u(vals[0]) + _u(args[1]))


def _peer_range(server: Server, caller: Client, args: list[int], vals: list[int]) -> None:
    pid = args[0] or caller.pid
    server.take_back(caller, pid, _u(args[1]), _u(args[1]) + _u(args[2]))


def _peer_fixed(server: Server, caller: Client, args: list[int], vals: list[int]) -> None:
    if args[4] & C.MAP_FIXED:
        pid = args[0] or caller.pid
        server.take_back(caller, pid, _u(vals[0]), _u(vals[0]) + _u(args[2]))


def _whole(server: Server, caller: Client, args: list[int], vals: list[int]) -> None:
    m = server.kernel.machine
    server.take_back(caller, caller.pid, m.user_start, m.user_end)


def _ret(v: int) -> tuple[list[int], bytes]:
    return [v], b""


def _fork(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    child = c.proc.fork()
    return [child], server._tokens_for(child).encode()


def _forkfailed(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    child = server.kernel.lookup(args[0])
    if child is not None and child.ppid == c.pid and child.alive:
        server._kill(child, 9, "the host could not fork")
    return [0], b""


def _forkhost(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    """The host process of a forked child: kept until it connects (``_bury_unborn``)."""
    child = server.kernel.lookup(args[0])
    if child is not None and child.ppid == c.pid and child.alive and args[0] not in server.clients:
        server._unborn[args[0]] = args[1]
    return [0], b""


def _host_alive(hostpid: int) -> bool:
    """Is host process ``hostpid`` there and not a zombie (Linux: /proc)?"""
    try:
        with open(f"/proc/{hostpid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x")


def _exec(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    c.proc.exec(_name(blob))
    c.gone = True
    return [0], server._tokens_for(c.pid).encode()


def _exit(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    if c.proc.alive:
        c.proc.exit(args[0])
        server.cond.notify_all()
    c.gone = True  # under the lock: no Python-API call can take it for killed meanwhile
    return [0], b""


def _waitpid(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    pid, options = args[0], args[1]
    k = server.kernel
    me = c.proc
    while not options & k.constants.WNOHANG and me.alive and not server._closed:
        kids = [p for p in k.processes() if p.ppid == me.pid and p.pid != me.pid]
        if pid != -1:
            kids = [p for p in kids if p.pid == pid]
        server._bury_unborn(kids)
        if not kids or any(p.state == "zombie" for p in kids):
            break
        if _hung_up(c.sock):  # killed while it waited: it dies, the wait ends
            server._kill(me, QNX_SIGKILL, "disconnected while waiting")
            c.gone = True
            raise OSError("the client hung up")
        server.cond.wait(0.2)  # a simulated child is running: block, as QNX does
    got, status = me.waitpid(pid, options)
    sig = server.killed.get(got) if got > 0 else None
    return ([got, 1, sig] if sig is not None else [got, 0, status]), b""


def _open(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    path = _name(blob)
    k = server.kernel
    norm = normalize(path) if path else path
    if not path or (k.paths.lookup(norm) is None and not norm.startswith(SHMEM_DIR + "/")):
        return [NOT_SIMULATED], b""
    return _ret(c.proc.open(path, args[0], args[1]))


def _shm_open(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    name: Any = C.SHM_ANON if args[2] else _name(blob)
    return _ret(c.proc.shm_open(name, args[0], args[1]))


def _fstat(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    st = c.proc.fstat(args[0])
    return [st.st_size, st.st_mode, st.st_uid, st.st_gid, st.st_ino, st.st_nlink], b""


def _pair(v: tuple[int, ...]) -> tuple[list[int], bytes]:
    return list(v), b""


def _call(method: str) -> Handler:
    """A handler that calls ``Process.<method>`` with the integer arguments (those the call
    table types as addresses, sizes and unsigned words read as unsigned) and returns its
    int result, or the items of its tuple result."""
    addr_args = unsigned_args(method)

    def handler(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
        conv = [_u(a) if i in addr_args else a for i, a in enumerate(args)]
        result = getattr(c.proc, method)(*conv)
        if isinstance(result, tuple):
            return list(result), b""
        return [int(result) if result is not None else 0], b""

    return handler


def _attr(name: str) -> Handler:
    def handler(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
        return [getattr(c.proc, name)], b""

    return handler


def _read(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    if len(args) == 3:
        data = c.proc.pread(args[0], _u(args[1]), args[2])
    else:
        data = c.proc.read(args[0], _u(args[1]))
    return [len(data)], data


def _write(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    if len(args) == 2:
        return _ret(c.proc.pwrite(args[0], blob, args[1]))
    return _ret(c.proc.write(args[0], blob))


def _named(method: str) -> Handler:
    def handler(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
        return _ret(getattr(c.proc, method)(_name(blob), *args))

    return handler


def _typed_open(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    return _ret(c.proc.posix_typed_mem_open(_name(blob), args[0], args[1]))


def _ability(server: Server, c: Client, args: list[int], blob: bytes) -> tuple[list[int], bytes]:
    return _ret(c.proc.procmgr_ability(args[0], *[_u(a) for a in args[1:]]))


Inval = Callable[[Server, Client, list[int], list[int]], None]

#: Call name -> (handler, what it may take away from mirrors).
CALLS: dict[str, tuple[Handler, Inval]] = {
    "mmap": (_call("mmap"), _mmap_fixed),
    "mmap64": (_call("mmap64"), _mmap_fixed),
    "mmap_peer": (_call("mmap_peer"), _peer_fixed),
    "mmap64_peer": (_call("mmap64_peer"), _peer_fixed),
    "munmap": (_call("munmap"), _own_range(0, 1)),
    "munmap_flags": (_call("munmap_flags"), _own_range(0, 1)),
    "munmap_peer": (_call("munmap_peer"), _peer_range),
    "mprotect": (_call("mprotect"), _own_range(0, 1)),
    "msync": (_call("msync"), _all),
    "mlock": (_call("mlock"), _own_range(0, 1)),
    "munlock": (_call("munlock"), _none),
    "mlockall": (_call("mlockall"), _all),
    "munlockall": (_call("munlockall"), _none),
    "posix_madvise": (_call("posix_madvise"), _all),
    "mem_offset": (_call("mem_offset"), _own_range(0, 2)),
    "mem_offset64": (_call("mem_offset64"), _own_range(0, 2)),
    "mmap_device_memory": (_call("mmap_device_memory"), _own_range(0, 1)),
    "munmap_device_memory": (_call("munmap_device_memory"), _own_range(0, 1)),
    "shm_open": (_shm_open, _none),
    "shm_unlink": (_named("shm_unlink"), _none),
    "shm_ctl": (_call("shm_ctl"), _all),
    "shm_create_handle": (_call("shm_create_handle"), _none),
    "posix_typed_mem_open": (_typed_open, _none),
    "posix_typed_mem_get_info": (_call("posix_typed_mem_get_info"), _none),
    "posix_mem_offset": (_call("posix_mem_offset"), _own_range(0, 1)),
    "posix_mem_offset64": (_call("posix_mem_offset64"), _own_range(0, 1)),
    "ftruncate": (_call("ftruncate"), _all),
    "open": (_open, _none),
    "close": (_call("close"), _none),
    "dup": (_call("dup"), _none),
    "dup2": (_call("dup2"), _none),
    "read": (_read, _none),
    "pread": (_read, _none),
    "write": (_write, _none),
    "pwrite": (_write, _none),
    "lseek": (_call("lseek"), _none),
    "fstat": (_fstat, _none),
    "procmgr_ability": (_ability, _none),
    "getppid": (_attr("ppid"), _none),
    "getuid": (_attr("ruid"), _none),
    "geteuid": (_attr("euid"), _none),
    "getgid": (_attr("rgid"), _none),
    "getegid": (_attr("egid"), _none),
    "setuid": (_call("setuid"), _none),
    "seteuid": (_call("seteuid"), _none),
    "setgid": (_call("setgid"), _none),
    "setegid": (_call("setegid"), _none),
    "getrlimit": (_call("getrlimit"), _none),
    "setrlimit": (_call("setrlimit"), _none),
    "fork": (_fork, _none),
    "@forkfailed": (_forkfailed, _none),
    "@forkhost": (_forkhost, _none),
    "exec": (_exec, _whole),
    "exit": (_exit, _none),
    "waitpid": (_waitpid, _none),
}
# Every other row of the call table of a simple shape (qnxsim.c.generate): what it may take
# from a mirror is not known here, so every mirror is checked after it (``_all``).
CALLS.update({row.name: (_call(row.name), _all) for row in generated_rows()})
_NAMES.update({n.encode(): n for n in (*CALLS, "@hello", "@sd", "@fault")})


def serve_forever(kernel: Kernel) -> Server:
    """Start a server for ``kernel`` in this process (``qnxsim serve``); returns it."""
    return Server(kernel).start()


__all__ = ["CALLS", "E", "Mirror", "Server", "host_prot", "peek", "serve_forever"]
