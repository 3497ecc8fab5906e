"""Testing a QNX port with qnxsim: a server that shares a buffer with its clients.

``share_buffer`` stands for the code being ported.  The tests check it against the
simulated QNX 8.0 memory manager: where the buffer lands, what the client sees, and which
errno QNX gives when things go wrong.  Run with ``pytest`` once ``qnxsim[test]`` is
installed; the fixtures and the marker come from qnxsim's pytest plugin.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis.stateful import rule

from qnxsim import Kernel, Process
from qnxsim.constants import (
    MAP_ANON,
    MAP_SHARED,
    NOFD,
    O_CREAT,
    O_RDWR,
    PROT_EXEC,
    PROT_READ,
    PROT_WRITE,
)
from qnxsim.strategies import MACHINE_SETTINGS, PAGES, KernelMachine, mmap_args
from qnxsim.testing import assert_errno, assert_mapped, kernel

PAGE = 4096


def share_buffer(server: Process, client_pid: int, size: int) -> tuple[int, int]:
    """The server's code: a shm buffer mapped read-write here and read-only in the client.

    Returns the buffer's address in the server and its address in the client.
    """
    fd = server.shm_open("/ring", O_RDWR | O_CREAT, 0o600)
    server.ftruncate(fd, size)
    mine = server.mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
    theirs = server.mmap_peer(client_pid, 0, size, PROT_READ, MAP_SHARED, fd, 0)
    server.close(fd)
    return mine, theirs


# qnx_kernel is a fresh Kernel per test; qnx_process a root process spawned in it.
def test_the_client_sees_what_the_server_writes(qnx_kernel: Kernel, qnx_process: Process) -> None:
    client = qnx_kernel.spawn(uid=1000)
    mine, theirs = share_buffer(qnx_process, client.pid, 2 * PAGE)
    assert_mapped(client, theirs, 2 * PAGE, prot=PROT_READ, kind="shm")
    qnx_process.write_memory(mine, b"hello")
    assert client.read_memory(theirs, 5) == b"hello"


def test_a_client_that_has_exited_gives_ESRCH(qnx_kernel: Kernel, qnx_process: Process) -> None:
    client = qnx_kernel.spawn(uid=1000)
    client.exit(0)
    err = assert_errno("ESRCH", share_buffer, qnx_process, client.pid, PAGE)
    assert err.reason.startswith("R-PEER-2")


def test_a_server_without_root_may_not_map_into_other_users(qnx_kernel: Kernel) -> None:
    server = qnx_kernel.spawn(uid=1000)
    client = qnx_kernel.spawn(uid=2000)
    assert_errno("EPERM", share_buffer, server, client.pid, PAGE)
    # The C facade: MAP_FAILED and errno, as the ported C code will see them.
    flags = MAP_SHARED | MAP_ANON
    assert_errno("EPERM", server.libc.mmap_peer, client.pid, 0, PAGE, PROT_READ, flags, NOFD, 0)


# The marker configures qnx_kernel (arch, version, ram, aslr, seed, ...) and qnx_process.
@pytest.mark.qnxsim(arch="aarch64", page_size=16384, ram=64 << 20, image=False)
def test_a_small_buffer_takes_a_whole_page(qnx_kernel: Kernel, qnx_process: Process) -> None:
    client = qnx_kernel.spawn(image=False)
    _, theirs = share_buffer(qnx_process, client.pid, 100)
    (record,) = assert_mapped(client, theirs, 100)
    assert record.size == 16384


# Property tests draw calls from qnxsim.strategies. The function-scoped qnx_kernel fixture
# does not mix with @given (one test, many examples): each example makes its kernel with
# qnxsim.testing.kernel(), which follows --qnx-version/--qnx-arch and, when the example
# fails, adds the address spaces to the error.
@settings(max_examples=25, deadline=None)
@given(args=mmap_args(max_pages=4))
def test_new_anonymous_memory_reads_as_zero(args: tuple[int, int, int, int, int, int]) -> None:
    with kernel(ram=64 << 20) as k:
        proc = k.spawn(image=False)
        _, length, prot, _, _, _ = args
        start = proc.mmap(*args)
        if prot & (PROT_READ | PROT_WRITE | PROT_EXEC):
            assert proc.read_memory(start, length) == bytes(length)


# A state machine of your own: KernelMachine's rules and checks, plus the server's. Rules
# take live processes from the machine's bundle, so a failing run shrinks to a few steps;
# MACHINE_SETTINGS leaves out hypothesis's slow explain phase.
class ServerMachine(KernelMachine):
    kernel_options: ClassVar[dict[str, Any]] = {"ram": 32 << 20}

    @rule(client=KernelMachine.procs, pages=PAGES)
    def server_shares_a_buffer(self, client: Process, pages: int) -> None:
        server = self.processes[0]  # root, so it may map into any client (R-PEER-3)
        rw = PROT_READ | PROT_WRITE
        self.check_mmap(server, client, pages, rw, "shared-anon")


TestServerMachine = settings(MACHINE_SETTINGS, max_examples=10, stateful_step_count=20)(
    ServerMachine
).TestCase
