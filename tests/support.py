"""What the test modules share: constants of the default machine (x86_64, QNX 8.0,
4 KiB pages) as SPEC gives them, and helpers that check a call fails as SPEC says."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

PS = 4096  # the default page size
R = C.PROT_READ
RW = C.PROT_READ | C.PROT_WRITE
RX = C.PROT_READ | C.PROT_EXEC
ANON = C.MAP_PRIVATE | C.MAP_ANON
SHARED_ANON = C.MAP_SHARED | C.MAP_ANON
LAZY_ANON = ANON | C.MAP_LAZY
PROGRAM_BASE = 0x0000_0000_0800_0000  # R-SYS-4, 64-bit arches
SHMEM_BASE = 0x0000_0010_0000_0000  # R-SYS-4, 64-bit arches
SO_BASE = 0x0000_0070_0000_0000  # R-SYS-4, 64-bit arches
STACK_SIZE = 512 * 1024  # R-PROC-1: the main stack of a spawned image
STACK_GUARD = 4096  # R-PROC-1: its guard page

#: Every RLIMIT_* resource of SPEC 18.
RLIMITS = (
    C.RLIMIT_CPU,
    C.RLIMIT_FSIZE,
    C.RLIMIT_DATA,
    C.RLIMIT_STACK,
    C.RLIMIT_CORE,
    C.RLIMIT_NOFILE,
    C.RLIMIT_AS,
    C.RLIMIT_MEMLOCK,
    C.RLIMIT_NPROC,
)


def expect_error(errno: int, rule: str, fn: Callable[..., Any], *args: Any) -> QnxError:
    """Call ``fn(*args)``; it must fail with the QNX ``errno`` and a reason naming ``rule``."""
    with pytest.raises(QnxError) as info:
        fn(*args)
    err = info.value
    assert err.errno == errno, (qerrno.errorcode.get(err.errno, err.errno), err.reason)
    assert rule in err.reason, err.reason
    return err


def expect_fail(
    k: Kernel, p: Process, errno: int, rule: str, call: Callable[..., int], *args: int
) -> QnxError:
    """Run a call that must fail with ``errno`` by ``rule`` (cited as ``"R-...:"``) and
    change nothing (R-CALL-5)."""
    before = (p.mappings(), k.meminfo())
    err = expect_error(errno, f"{rule}:", call, *args)
    assert (p.mappings(), k.meminfo()) == before, "R-CALL-5: a failed call changed state"
    k.check_invariants()
    return err


def creds(p: Process) -> tuple[int, ...]:
    """A process's real, effective and saved user and group ids."""
    return (p.ruid, p.euid, p.suid, p.rgid, p.egid, p.sgid)


#: The checkout's top directory (where pyproject.toml is).
ROOT = Path(__file__).resolve().parent.parent


def load_script(name: str, path: Path) -> ModuleType:
    """Import a script that is not a package module (a benchmark) once, as ``name``."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def mypy_strict(tmp_path: Path, name: str, source: str) -> str:
    """What ``mypy --strict`` says of ``source`` (written to ``tmp_path/name``), run from
    the checkout so that it type-checks against this qnxsim; stdout and stderr."""
    snippet = tmp_path / name
    snippet.write_text(source)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         f"--cache-dir={tmp_path / 'cache'}", str(snippet)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def anon(p: Process, pages: int, prot: int = RW, flags: int = ANON) -> int:
    """``pages`` pages of new anonymous memory in ``p``, placed by the kernel."""
    return p.mmap(0, pages * PS, prot, flags, C.NOFD, 0)
