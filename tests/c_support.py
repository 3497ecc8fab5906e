"""Helpers of the C bridge tests: skip where the host cannot run C programs, build once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
