"""Testing a C port with pytest: examples/c/server.c's share_buffer, called as a simulated
QNX process through the ``qnx_c`` fixture (``qnxsim.c.load``), then both address spaces,
the errno and the trace checked from Python."""

from __future__ import annotations

from pathlib import Path

import pytest

from qnxsim import Kernel, MemoryFault
from qnxsim import constants as C
from qnxsim.c.build import HOST_ARCHES, unsupported_reason
from qnxsim.c.load import out

pytestmark = [
    pytest.mark.skipif(unsupported_reason() is not None, reason=f"{unsupported_reason()}"),
    pytest.mark.qnxsim_c(
        sources=[Path(__file__).with_name("server.c")],
        cdef="""
            int share_buffer(pid_t client, size_t size, void **theirs);
            int share_buffer_buggy(pid_t client, size_t size, void **theirs);
        """,
    ),
]

SIZE = 8192


def host_arch() -> str:
    import platform

    return HOST_ARCHES.get(platform.machine(), "x86_64")


@pytest.mark.qnxsim(trace=True)
def test_the_mapping_lands_read_only_in_the_client(qnx_kernel: Kernel, qnx_c) -> None:
    lib = qnx_c()
    server, client = qnx_kernel.spawn(), qnx_kernel.spawn()
    theirs = out("void *")
    assert lib.share_buffer.as_process(server, client.pid, SIZE, theirs) == 0
    assert lib.share_buffer.errno is None
    addr = theirs.value
    mapping = client.mapping_at(addr)
    assert mapping is not None and mapping.prot == C.PROT_READ
    assert client.read_memory(addr, 21) == b"hello from the server"
    with pytest.raises(MemoryFault) as fault:
        client.write_memory(addr, b"x")
    assert fault.value.code == C.SEGV_ACCERR
    (peer,) = [e for e in qnx_kernel.trace if e.call == "mmap_peer"]
    assert peer.ok and [pid for pid, _ in peer.added] == [client.pid]


def test_ESRCH_when_the_client_has_exited(qnx_kernel: Kernel, qnx_c) -> None:
    lib = qnx_c()
    server, client = qnx_kernel.spawn(), qnx_kernel.spawn()
    client.exit(0)
    before = server.mappings()
    assert lib.share_buffer.as_process(server, client.pid, SIZE, out("void *")) == -1
    assert lib.share_buffer.errno == "ESRCH"
    assert server.mappings() == before  # share_buffer undid its own mapping


def test_EPERM_for_a_non_root_server(qnx_kernel: Kernel, qnx_c) -> None:
    lib = qnx_c()
    server, client = qnx_kernel.spawn(uid=1000), qnx_kernel.spawn(uid=0)
    before = client.mappings()
    assert lib.share_buffer.as_process(server, client.pid, SIZE, out("void *")) == -1
    assert lib.share_buffer.errno == "EPERM"
    assert client.mappings() == before


# The host runs the C code, so the kernel's arch is the host's; 6.4 has no SHM_ANON
# (R-SHM-1), so the port's shm_open fails there with EINVAL and nothing is mapped.
@pytest.mark.parametrize(
    ("version", "errno"),
    [
        pytest.param(v, e, marks=pytest.mark.qnxsim(version=v, arch=host_arch()))
        for v, e in (("8.0", None), ("7.1", None), ("6.4", "EINVAL"))
    ],
)
def test_R_SHM_1_share_buffer_on_each_version(
    qnx_kernel: Kernel, qnx_c, version: str, errno: str | None
) -> None:
    lib = qnx_c()
    assert qnx_kernel.version == version
    server, client = qnx_kernel.spawn(), qnx_kernel.spawn()
    before = client.mappings()
    theirs = out("void *")
    rc = lib.share_buffer.as_process(server, client.pid, SIZE, theirs)
    assert lib.share_buffer.errno == errno
    if errno is None:
        assert rc == 0 and client.mapping_at(theirs.value).prot == C.PROT_READ
    else:
        assert rc == -1 and client.mappings() == before


@pytest.mark.qnxsim(trace=True)
def test_the_buggy_port_dies_by_SIGSEGV(qnx_kernel: Kernel, qnx_c) -> None:
    lib = qnx_c()
    server, client = qnx_kernel.spawn(), qnx_kernel.spawn()
    theirs = out("void *")
    with pytest.raises(MemoryFault) as fault:
        lib.share_buffer_buggy.as_process(server, client.pid, SIZE, theirs)
    assert (fault.value.signo, fault.value.code) == (C.SIGSEGV, C.SEGV_MAPERR)
    assert fault.value.pid == server.pid
    assert not server.alive and client.alive
