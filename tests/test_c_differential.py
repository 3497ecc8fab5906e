"""Differential test: the same random call sequences (``qnxsim.strategies``) run by a C
program and through the Python API, on identical kernels, give identical results, errnos,
mapping records (the traces) and memory contents; a faulting access ends the C process
by the signal the Python API raises as MemoryFault."""

from __future__ import annotations

import errno as host_errno
import functools
import signal
import tempfile
from pathlib import Path
from typing import Any

from c_support import PROGRAMS, build, needs_c
from hypothesis import HealthCheck, given, settings

from qnxsim import Kernel, MemoryFault, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.physmem import RAM_START
from qnxsim.process import Process
from qnxsim.strategies import Call, call_sequences

pytestmark = needs_c

NAMES = ("mmap", "write_memory", "read_memory", "munmap", "mprotect", "mmap_peer", "munmap_peer")
COMPARED = {"spawn", "mmap", "mmap_peer", "munmap", "munmap_peer", "mprotect"}
HOST_SIGNAL = {C.SIGSEGV: signal.SIGSEGV, C.SIGBUS: signal.SIGBUS}


@functools.cache
def driver() -> Path:
    return build(PROGRAMS / "driver.c")


def _address(proc: Process, mapping: int, page: int) -> int:
    """The address a Call names, as ``qnxsim.strategies.run_calls`` reads it."""
    records = proc.mappings()
    start = records[mapping % len(records)].start if records else 0x8000000
    return start + page * proc.kernel.page_size


def _ptr(v: int) -> str:
    return "= 0" if v == 0 else f"= {v:#x}"


def _fail(err: QnxError) -> str:
    return f"! {getattr(host_errno, qerrno.errorcode[err.errno])}"


def python_side(k: Kernel, path: str, seq: list[Call]) -> tuple[list[str], list[str], int]:
    """Run ``seq`` through the Python API: the driver's input lines, its expected output
    lines and its expected exit status."""
    p = k.spawn(path)
    ps = k.page_size
    ops: list[str] = []
    out: list[str] = []
    for call in seq:
        a = call.args
        op: tuple[Any, ...]
        if call.name == "mmap":
            op = ("mmap", *a)
        elif call.name == "mmap_peer":
            op = ("mmap_peer", p.pid, *a[1:])
        elif call.name == "munmap":
            op = ("munmap", _address(p, a[0], a[1]), a[2] * ps)
        elif call.name == "munmap_peer":
            op = ("munmap_peer", p.pid, _address(p, a[1], a[2]), a[3] * ps)
        elif call.name == "mprotect":
            op = ("mprotect", _address(p, a[0], a[1]), a[2] * ps, a[3])
        elif call.name == "write_memory":
            op = ("write", _address(p, a[0], a[1]), a[2])
        else:
            op = ("read", _address(p, a[0], a[1]))
        ops.append(" ".join(str(x) for x in op))
        name, args = op[0], op[1:]
        try:
            if name == "write":
                p.write_memory(args[0], bytes([args[1]]) * 8)
                out.append("= ok")
            elif name == "read":
                out.append("= " + p.read_memory(args[0], 8).hex())
            elif name.startswith("mmap"):
                out.append(_ptr(getattr(p, name)(*args)))
            else:
                out.append(f"= {getattr(p, name)(*args)}")
        except QnxError as err:
            out.append(_fail(err))
        except MemoryFault as fault:
            p.exit(0)  # the C process dies here; its memory goes the same way
            return ops, out, 128 + HOST_SIGNAL[fault.signo]
    p.exit(0)
    return ops, out, 0


def _events(k: Kernel) -> list[tuple[Any, ...]]:
    return [
        (e.call, e.pid, e.args, e.result, e.errno, e.added, e.removed, e.changed)
        for e in k.trace
        if e.call in COMPARED
    ]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(call_sequences(4096, max_calls=12, max_processes=1, names=NAMES))
def test_c_and_python_agree_on_random_call_sequences(seq: list[Call]) -> None:
    prog = str(driver())
    kp, kc = Kernel(trace=True), Kernel(trace=True)
    ops, expected, status = python_side(kp, prog, seq)
    with tempfile.NamedTemporaryFile("w", suffix=".ops") as f:
        f.write("\n".join(ops) + "\n")
        f.flush()
        run = kc.exec_c(prog, [f.name])
        got = run.wait(30)
    assert run.stdout is not None
    assert run.stdout.decode().splitlines() == expected
    assert got == status
    assert _events(kc) == _events(kp)
    kc.check_invariants()
    assert kc.meminfo() == kp.meminfo()  # released alike (an image page read stays cached)
    assert kc.pm.read(RAM_START, 1 << 20) == kp.pm.read(RAM_START, 1 << 20)
