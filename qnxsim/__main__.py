"""Command line: ``qnxsim demo`` (also ``python -m qnxsim demo``).

The demo walks through QNX's own mmap_peer() example and the errors a porting engineer
meets, printing each step with the rule that decided it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from qnxsim import Kernel, QnxError
from qnxsim.constants import (
    MAP_FLAG_NAMES,
    MAP_SHARED,
    NOFD,
    O_CREAT,
    O_RDWR,
    PROT_READ,
    PROT_WRITE,
    flag_names,
)
from qnxsim.render import HEADER, process_lines


def _attempt(out: TextIO, what: str, fn: Callable[[], int]) -> None:
    try:
        result = fn()
    except QnxError as err:
        out.write(f"  {what}\n    -> fails: {err}\n")
    else:
        out.write(f"  {what}\n    -> returned {result:#x}\n")


def demo(out: TextIO) -> int:
    """QNX's mmap_peer() example, then ESRCH, EPERM and EINVAL with their rules."""
    k = Kernel()
    parent = k.spawn("/proc/boot/server", uid=0)
    child = k.process(parent.fork())
    rw = PROT_READ | PROT_WRITE
    w = out.write
    w("qnxsim demo: mmap_peer() creates a mapping in another process's address space\n\n")
    w(f"{k!r}\n")
    w(f"parent pid {parent.pid} (uid {parent.uid}); it forked child pid {child.pid}\n\n")

    w("1. The child maps one shared page into its parent:\n")
    w(f"   mmap_peer({parent.pid}, 0, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, NOFD, 0)\n")
    addr = child.mmap_peer(parent.pid, 0, 4096, rw, MAP_SHARED, NOFD, 0)
    rec = parent.mapping_at(addr)
    assert rec is not None
    w(f"   returned {addr:#x}: an address in pid {parent.pid}'s address space only\n")
    flags = flag_names(rec.flags, MAP_FLAG_NAMES)
    w(f"   in the parent: {rec.start:#x}-{rec.end:#x} {rec.kind}, flags {flags}\n")
    w(f"   in the child:  {child.mapping_at(addr)!r} (the caller's space is unchanged)\n\n")

    w("2. The parent uses the page like any mapping of its own (R-PEER-5):\n")
    parent.write_memory(addr, b"hello from the peer mapping")
    w(f"   write_memory({addr:#x}, ...); read_memory -> {parent.read_memory(addr, 27)!r}\n\n")

    w(f"3. The child removes it again: munmap_peer({parent.pid}, {addr:#x}, 4096)\n")
    child.munmap_peer(parent.pid, addr, 4096)
    w(f"   parent.mapping_at({addr:#x}) -> {parent.mapping_at(addr)!r}\n\n")

    w("4. What a porting engineer meets:\n")
    missing = 99999
    _attempt(
        out,
        f"a pid that does not exist: mmap_peer({missing}, 0, 4096, ...)",
        lambda: child.mmap_peer(missing, 0, 4096, rw, MAP_SHARED, NOFD, 0),
    )
    stranger = k.spawn("/proc/boot/client", uid=1000)
    other = k.spawn("/proc/boot/other", uid=2000)
    _attempt(
        out,
        f"non-root pid {stranger.pid} (uid 1000) into pid {other.pid} of uid 2000",
        lambda: stranger.mmap_peer(other.pid, 0, 4096, rw, MAP_SHARED, NOFD, 0),
    )
    _attempt(
        out,
        f"len == 0: mmap_peer({parent.pid}, 0, 0, ...)",
        lambda: child.mmap_peer(parent.pid, 0, 0, rw, MAP_SHARED, NOFD, 0),
    )
    libc_result = child.libc.mmap_peer(missing, 0, 4096, rw, MAP_SHARED, NOFD, 0)
    w(f"  the C way: libc.mmap_peer({missing}, ...) == {libc_result} (MAP_FAILED), "
      f"errno {child.libc.errno}\n\n")  # fmt: skip

    w("5. A server shares a named shm object with a client (the usual use of mmap_peer):\n")
    server = k.spawn("/proc/boot/server", uid=0)
    client = k.spawn("/proc/boot/client", uid=1000)
    fd = server.shm_open("/buf", O_RDWR | O_CREAT, 0o600)
    server.ftruncate(fd, 8192)
    mine = server.mmap(0, 8192, rw, MAP_SHARED, fd, 0)
    theirs = server.mmap_peer(client.pid, 0, 8192, rw, MAP_SHARED, fd, 0)
    w(f'   fd = shm_open("/buf", O_RDWR|O_CREAT, 0600) -> {fd}; ftruncate(fd, 8192)\n')
    w(f"   server maps it at {mine:#x}; mmap_peer puts it at {theirs:#x} in pid {client.pid}\n")
    server.write_memory(mine, b"request #1")
    w(f"   server writes b'request #1'; the client reads {client.read_memory(theirs, 10)!r}\n")
    server.close(fd)
    server.shm_unlink("/buf")
    w("   close(fd) and shm_unlink(\"/buf\"): the client's mapping lives on (R-OBJ-2): "
      f"{client.read_memory(theirs, 10)!r}\n")  # fmt: skip
    info = k.meminfo()
    w(f"   meminfo: {info.allocated:#x} bytes allocated, {info.reserved:#x} reserved\n\n")

    w(f"6. The parent's address space afterwards, as `pidin mem` shows it:\n{HEADER}\n")
    w("\n".join(process_lines(parent)) + "\n")
    k.check_invariants()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qnxsim", description="A simulator of the QNX Neutrino memory manager."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="walk through mmap_peer() and its errors")
    pidin = sub.add_parser("pidin", help="print `pidin mem` of a freshly booted machine")
    pidin.add_argument("view", nargs="?", default="mem", choices=["mem"])
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(sys.stdout)
    k = Kernel()
    k.spawn()
    print(k.pidin(args.view))
    return 0


if __name__ == "__main__":
    sys.exit(main())
