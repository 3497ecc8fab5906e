"""Helpers the test modules share: checking that a call fails the way SPEC says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

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
