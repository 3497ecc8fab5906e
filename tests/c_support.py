"""Helpers of the C bridge tests: skip where the host cannot run C programs, build once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from qnxsim.c.build import unsupported_reason

REASON = unsupported_reason()
#: Mark a test module: ``pytestmark = needs_c``.
needs_c = pytest.mark.skipif(REASON is not None, reason=f"C bridge: {REASON}")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "c"
PROGRAMS = Path(__file__).resolve().parent / "c_programs"


def build(source: Path | str, tmp: Path | None = None) -> Path:
    """Build one C file (cached by content: the client library is built once)."""
    from qnxsim.c import build as c_build

    return c_build([str(source)])


def run_full(
    k: Any, source: Path, *argv: str, uid: int = 0, arch: str | None = None, timeout: float = 30
) -> tuple[int, str, str]:
    """Build ``source`` (for ``arch``, by default the host's), run it as a new process of
    kernel ``k`` and wait: ``(exit status as a shell reports it, stdout, stderr)``.
    Asserts that no host process of the run is left and that the kernel is consistent."""
    from qnxsim.c import build as c_build

    r = k.exec_c(str(c_build([str(source)], arch=arch)), list(argv), uid=uid)
    status = r.wait(timeout)
    assert not session_alive(r.popen.pid), "a host process of the run is left"
    k.check_invariants()
    assert r.stdout is not None and r.stderr is not None
    return status, r.stdout.decode(), r.stderr.decode()


def run(k: Any, source: Path, *argv: str, uid: int = 0, timeout: float = 30) -> tuple[int, str]:
    """``run_full`` on the host's arch, without stderr: ``(status, stdout)``."""
    status, out, _ = run_full(k, source, *argv, uid=uid, timeout=timeout)
    return status, out


def write_c(tmp: Path, name: str, text: str) -> Path:
    path = tmp / f"{name}.c"
    path.write_text(text)
    return path


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m qnxsim ARGS`` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "qnxsim", *args],
        capture_output=True, text=True, timeout=timeout, env=env, check=False,
    )  # fmt: skip


def session_alive(pgid: int) -> bool:
    """Is any host process of the session/group ``pgid`` still there?"""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
