"""The kernel server under abuse: killed clients, garbage, forged tokens, clients that
leave without cleaning up, a server that goes away.  The kernel stays consistent, memory
is released, nothing hangs and no host process is left."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from pathlib import Path

from c_support import build, needs_c, session_alive, write_c

from qnxsim import Kernel
from qnxsim.c.run import server_for

pytestmark = needs_c


def until(cond: object, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.01)
    raise AssertionError("timed out")


def released(k: Kernel) -> None:
    k.check_invariants()
    assert [p.pid for p in k.processes()] == [1]
    assert k.meminfo().allocated == 0


STUCK = r"""
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    char *p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, NOFD, 0);
    for (int i = 0; i < (1 << 20); i += 4096) p[i] = 1;
    if (fork() == 0) for (;;) pause();
    int st;
    waitpid(-1, &st, 0);                  /* blocks in the server until killed */
    return 0;
}
"""


def test_client_killed_mid_call_releases_everything(tmp_path: Path) -> None:
    k = Kernel()
    r = k.exec_c(str(build(write_c(tmp_path, "stuck", STUCK))))
    srv = server_for(k)
    until(lambda: len(srv.clients) == 2 and k.meminfo().allocated >= 1 << 20)
    time.sleep(0.1)
    r.kill()
    assert not session_alive(r.popen.pid)
    until(lambda: [p.pid for p in k.processes()] == [1])
    released(k)
    assert set(srv.killed) == {2, 3}


LEAVER = r"""
#include <string.h>
#include <sys/mman.h>
int main(void) {
    char *p = mmap(0, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    memset(p, 1, 1 << 20);
    return 0;                             /* no munmap: exit releases it (R-PROC-4) */
}
"""


def test_R_PROC_4_client_exiting_without_unmapping(tmp_path: Path) -> None:
    k = Kernel()
    r = k.exec_c(str(build(write_c(tmp_path, "leaver", LEAVER))))
    assert r.wait(30) == 0
    released(k)


def _connect(k: Kernel) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(server_for(k).path)
    return s


def dropped(s: socket.socket) -> bool:
    """Did the server close the connection without an answer?"""
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def _request(name: str, args: list[int], blob: bytes) -> bytes:
    body = bytes([len(name)]) + name.encode() + struct.pack(f"=H{len(args)}q", len(args), *args)
    body += struct.pack("=I", len(blob)) + blob
    return struct.pack("=I", len(body)) + body


def test_garbage_and_forged_tokens_are_refused_and_nothing_changes(tmp_path: Path) -> None:
    k = Kernel()
    srv = server_for(k)
    victim = k.spawn()
    before = victim.mappings()
    for junk in (b"\xff" * 64, b"\x07\x00\x00\x00abcdefg", _request("mmap", [0, 4096], b"")):
        s = _connect(k)
        s.sendall(junk)
        assert dropped(s)  # no answer
        s.close()
    forged = _connect(k)
    forged.sendall(_request("@hello", [1, 40], b"0123456789abcdef0123456789abcdef"))
    assert dropped(forged)
    good = srv.token(victim.pid)
    first = _connect(k)
    first.sendall(_request("@hello", [1, 40], good.encode()))
    assert first.recv(4)  # accepted (the reply starts)
    again = _connect(k)
    again.sendall(_request("@hello", [1, 40], good.encode()))  # a token works once
    assert dropped(again)
    until(lambda: len(srv.errors) >= 5)
    assert any("token" in e for e in srv.errors)
    assert victim.mappings() == before and victim.alive
    first.close()  # a bound client that vanishes dies as killed
    until(lambda: not victim.alive)
    k.check_invariants()
    # ... and the server still serves real programs
    from c_support import EXAMPLES

    r = k.exec_c(str(build(EXAMPLES / "peer_page.c")))
    assert r.wait(30) == 0


SLOW = r"""
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    p[0] = 1;
    usleep(300000);                       /* the server goes away meanwhile */
    printf("ppid %d\n", getppid());
    return 0;
}
"""


def test_server_going_away_makes_clients_fail_clearly(tmp_path: Path) -> None:
    k = Kernel()
    r = k.exec_c(str(build(write_c(tmp_path, "slow", SLOW))))
    srv = server_for(k)
    until(lambda: k.meminfo().allocated > 0)
    srv.close()
    status = r.wait(30)
    assert status == 125
    assert r.stderr is not None and b"kernel server went away" in r.stderr
    assert not session_alive(r.popen.pid)


def _reply(s: socket.socket, fds: bool = False) -> tuple[int, list[int], bytes]:
    """One reply: (err, vals, blob); the handshake's carries the RAM file's fd."""
    if fds:
        head, got, _, _ = socket.recv_fds(s, 4, 1)
        for fd in got:
            os.close(fd)
    else:
        head = s.recv(4, socket.MSG_WAITALL)
    (size,) = struct.unpack("=I", head)
    body = s.recv(size, socket.MSG_WAITALL)
    err, nv, nr, _ = struct.unpack_from("=iHHI", body)
    vals = list(struct.unpack_from(f"={nv}q", body, 12))
    return err, vals, body[12 + 8 * nv + 32 * nr :]


def test_R_PROC_4_a_forked_child_whose_host_process_dies_before_it_connects_is_killed(
    tmp_path: Path,
) -> None:
    """The parent waits for the child: the wait ends with SIGKILL, it never hangs."""
    k = Kernel()
    srv = server_for(k)
    parent = k.spawn()
    s = _connect(k)
    s.sendall(_request("@hello", [os.getpid(), 40], srv.token(parent.pid).encode()))
    assert _reply(s, fds=True)[0] == 0
    s.sendall(_request("fork", [], b""))
    err, (child,), _ = _reply(s)
    assert err == 0 and k.process(child).alive
    gone = subprocess.Popen(["true"])  # a host process that has ended
    gone.wait()
    s.sendall(_request("@forkhost", [child, gone.pid], b""))
    assert _reply(s)[0] == 0
    s.settimeout(10)
    s.sendall(_request("waitpid", [child, 0], b""))
    err, vals, _ = _reply(s)
    assert (err, vals) == (0, [child, 1, 9])  # killed by QNX's SIGKILL
    s.close()
    until(lambda: not parent.alive)  # the parent's host hung up: it is gone too
    released(k)
