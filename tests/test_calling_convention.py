"""The calling convention of the simulated C functions (SPEC 2): R-CALL-1..5 and QnxError.

R-CALL-1 two forms (method raises, ``libc`` returns the C failure value and sets errno);
R-CALL-2 C integer conversions; R-CALL-3 mmap64; R-CALL-4 every failure names its rule;
R-CALL-5 a failing call changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ANON, PROGRAM_BASE, PS, RW, SHARED_ANON

import qnxsim.abilities
from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno

RAM = 64 << 20
USER_END = 2**39 - PS  # R-SYS-3
SIZE_MAX = 2**64 - 1
RULE = re.compile(r"^(R-[A-Z]+-[A-Z0-9]+\b|\[SIM\])")


def setup(image: bool = False) -> tuple[Kernel, Process]:
    k = Kernel(ram=RAM)
    return k, k.spawn(image=image)


def raises(errno: int, rule: str, fn: Callable[..., Any], *args: Any) -> QnxError:
    with pytest.raises(QnxError) as info:
        fn(*args)
    assert info.value.errno == errno, info.value
    assert rule in info.value.reason, info.value.reason
    return info.value


def world(k: Kernel) -> tuple[object, ...]:
    """Everything a call could change that tests can see (R-CALL-5)."""
    procs = tuple(
        (
            p.pid,
            p.ppid,
            p.alive,
            p.mappings(),
            (p.ruid, p.euid, p.suid, p.rgid, p.egid, p.sgid),
            tuple(p.getrlimit(r) for r in range(9)) if p.alive and p.pid != 1 else (),
        )
        for p in k.processes()
    )
    return procs, k.meminfo()


# -- QnxError ------------------------------------------------------------------------------------


def test_R_CALL_1_qnxerror_fields_and_str() -> None:
    _k, p = setup()
    with pytest.raises(QnxError) as info:
        p.mmap(0, 0, RW, ANON, C.NOFD, 0)
    e = info.value
    assert isinstance(e, OSError)
    assert e.errno == qerrno.EINVAL
    assert e.strerror == qerrno.strerror(qerrno.EINVAL)
    assert e.args == (qerrno.EINVAL, qerrno.strerror(qerrno.EINVAL))
    assert e.reason == "R-MMAP-2: len is 0"
    assert e.call == "mmap"
    assert e.pid == p.pid
    assert str(e) == "EINVAL (22): mmap: R-MMAP-2: len is 0"


def test_R_CALL_1_qnxerror_call_and_pid_of_peer_and_other_calls() -> None:
    _k, p = setup()
    e = raises(qerrno.ESRCH, "R-PEER-2", p.mmap_peer, 99999, 0, PS, RW, ANON, C.NOFD, 0)
    assert e.call == "mmap_peer" and e.pid == p.pid
    assert str(e).startswith("ESRCH (3): mmap_peer: R-PEER-2")
    e = raises(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, PROGRAM_BASE, PS, C.PROT_READ)
    assert e.call == "mprotect" and e.pid == p.pid
    e = raises(qerrno.EINVAL, "R-UNMAP-6", p.munmap_flags, PROGRAM_BASE, PS, 1)
    assert e.call == "munmap_flags"
    e = raises(qerrno.ESRCH, "R-PEER-2", p.munmap_peer, 99999, PROGRAM_BASE, PS)
    assert e.call == "munmap_peer"
    e = raises(qerrno.EINVAL, "R-MMAP-2", p.mmap64, 0, 0, RW, ANON, C.NOFD, 0)
    assert e.call == "mmap64"


# -- R-CALL-1: the two forms ---------------------------------------------------------------------


def test_R_CALL_1_method_raises_libc_returns_map_failed_and_sets_errno() -> None:
    _k, p = setup()
    with pytest.raises(QnxError):
        p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_PRIVATE, C.NOFD, 0)
    assert p.libc.errno == 0
    assert p.libc.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_PRIVATE, C.NOFD, 0) == C.MAP_FAILED
    assert p.libc.errno == qerrno.EINVAL
    assert p.libc.mmap64(0, 0, RW, ANON, C.NOFD, 0) == C.MAP_FAILED
    assert p.libc.errno == qerrno.EINVAL
    assert p.libc.mmap_peer(99999, 0, PS, RW, ANON, C.NOFD, 0) == C.MAP_FAILED
    assert p.libc.errno == qerrno.ESRCH
    assert p.libc.mmap64_peer(99999, 0, PS, RW, ANON, C.NOFD, 0) == C.MAP_FAILED
    assert p.libc.errno == qerrno.ESRCH


def test_R_CALL_1_int_functions_return_minus_one() -> None:
    _k, p = setup()
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    cases: list[tuple[str, tuple[int, ...], int]] = [
        ("munmap", (a, 0), qerrno.EINVAL),
        ("munmap_flags", (a, PS, 4), qerrno.EINVAL),
        ("munmap_peer", (99999, a, PS), qerrno.ESRCH),
        ("mprotect", (a, 2 * PS, C.PROT_READ), qerrno.ENOMEM),
        ("mprotect", (a, PS, 0x1000), qerrno.EINVAL),
        ("waitpid", (99999, 0), qerrno.ECHILD),
    ]
    for name, args, errno in cases:
        p.libc.errno = 0
        assert getattr(p.libc, name)(*args) == -1, name
        assert p.libc.errno == errno, name


def test_R_CALL_1_libc_success_returns_the_c_value() -> None:
    k, p = setup()
    a = p.libc.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    assert a == PROGRAM_BASE
    assert p.libc.mprotect(a, PS, C.PROT_READ) == 0
    assert p.libc.munmap(a, PS) == 0
    assert p.libc.munmap_flags(a + PS, PS, 0) == 0
    assert p.mappings() == ()
    k.check_invariants()


def test_R_CALL_1_libc_and_method_fail_the_same_way() -> None:
    _k, p = setup()
    for args in [
        (0, 0, RW, ANON, C.NOFD, 0),
        (0, PS, 0x1000, ANON, C.NOFD, 0),
        (0, PS, RW, ANON | C.MAP_HANDLE, C.NOFD, 0),
        (0, PS, RW, ANON, 3, 0),
        (PS - 1, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0),
    ]:
        with pytest.raises(QnxError) as info:
            p.mmap(*args)
        assert p.libc.mmap(*args) == C.MAP_FAILED
        assert p.libc.errno == info.value.errno


def test_R_CALL_1_error_number_functions_return_it_in_both_forms() -> None:
    _k, p = setup()
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    assert p.posix_madvise(a, 0, C.POSIX_MADV_NORMAL) == qerrno.EINVAL  # 8.0: len 0
    p.libc.errno = 0
    assert p.libc.posix_madvise(a, 0, C.POSIX_MADV_NORMAL) == qerrno.EINVAL
    assert p.libc.errno == 0  # R-MADV-1: never sets errno
    assert p.posix_madvise(a, PS, C.POSIX_MADV_NORMAL) == 0


# -- R-CALL-2: C conversions -----------------------------------------------------------------


def test_R_CALL_2_len_minus_one_is_size_max() -> None:
    _k, p = setup()
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    e1 = raises(qerrno.ENOMEM, "R-MMAP-14", p.mmap, 0, -1, RW, ANON, C.NOFD, 0)
    e2 = raises(qerrno.ENOMEM, "R-MMAP-14", p.mmap, 0, SIZE_MAX, RW, ANON, C.NOFD, 0)
    assert e1.reason.startswith(f"{e2.reason} (len -1 is {SIZE_MAX:#x} as a 64-bit size_t")
    raises(qerrno.EINVAL, "R-UNMAP-4", p.munmap, a, -1)  # cut at ADDR_MAX, above USER_END
    raises(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, a, -1, C.PROT_READ)
    raises(qerrno.ENOMEM, "R-MMAP-14", p.mmap, 0, -1 - 2**64, RW, ANON, C.NOFD, 0)
    assert p.mapping_at(a) is not None


def test_R_CALL_2_fd_wraps_to_int() -> None:
    """fd 2**32-1 is -1 (NOFD) as a C int: private memory without MAP_ANON becomes anonymous."""
    _k, p = setup()
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE, 2**32 - 1, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.kind == "anon" and rec.flags & C.MAP_ANON
    b = p.mmap(0, PS, RW, ANON, -1 - 2**32, 0)  # also -1 after wrapping
    assert p.mapping_at(b) is not None
    raises(qerrno.EBADF, "R-MMAP-12", p.mmap, 0, PS, RW, C.MAP_PRIVATE, 2**31, 0)  # INT_MIN
    raises(qerrno.EINVAL, "R-MMAP-6", p.mmap, 0, PS, RW, ANON, 2**32 + 5, 0)  # fd 5


def test_R_CALL_2_int_prot_and_flags_wrap_at_32_bits() -> None:
    _k, p = setup()
    a = p.mmap(0, PS, 2**32 + C.PROT_READ, 2**32 + ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.prot == C.PROT_READ and rec.flags == ANON
    assert p.mprotect(a, PS, 2**33 + RW) == 0
    assert p.mapping_at(a).prot == RW
    raises(qerrno.EINVAL, "R-MMAP-3", p.mmap, 0, PS, -1, ANON, C.NOFD, 0)  # all 32 bits set


def test_R_CALL_2_addr_wraps_modulo_2_to_the_64() -> None:
    _k, p = setup()
    target = PROGRAM_BASE + 16 * PS
    assert p.mmap(2**64 + target, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0) == target
    assert p.munmap(target - 2**64, PS) == 0
    assert p.mappings() == ()
    raises(qerrno.EINVAL, "R-MMAP-F1", p.mmap, -PS, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)


def test_R_CALL_2_pid_wraps_to_pid_t() -> None:
    k = Kernel(ram=RAM)
    caller = k.spawn(uid=0, image=False)
    target = k.spawn(uid=0, image=False)
    a = caller.mmap_peer(2**32 + target.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert target.mapping_at(a) is not None and caller.mappings() == ()
    b = caller.mmap_peer(2**32, 0, PS, RW, ANON, C.NOFD, 0)  # pid 0: the caller
    assert caller.mapping_at(b) is not None
    raises(qerrno.ESRCH, "R-PEER-2", caller.mmap_peer, 2**32 - 1, 0, PS, RW, ANON, C.NOFD, 0)


def test_R_CALL_2_off_wraps_to_off_t() -> None:
    """MAP_STACK takes the guard size from off; off_t -4096 compares as a huge size_t."""
    _k, p = setup()
    for off in (-PS, 2**64 - PS):
        raises(qerrno.EINVAL, "R-MMAP-8", p.mmap, 0, 8 * PS, RW, ANON | C.MAP_STACK, C.NOFD, off)
    a = p.mmap(0, 8 * PS, RW, ANON | C.MAP_STACK, C.NOFD, 2**64 + PS)  # off PS
    guard = p.mapping_at(a)
    assert guard is not None and guard.kind == "stack-guard" and guard.size == PS


BAD_VALUES: list[object] = [1.0, None, "4096", b"\x00", [0], 4096.0]


@pytest.mark.parametrize("bad", BAD_VALUES)
@pytest.mark.parametrize("position", range(6))
def test_R_CALL_2_non_integer_argument_is_type_error(bad: object, position: int) -> None:
    k, p = setup()
    args: list[object] = [0, PS, RW, ANON, C.NOFD, 0]
    args[position] = bad
    before = world(k)
    with pytest.raises(TypeError):
        p.mmap(*args)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.mmap64(*args)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        p.libc.mmap(*args)
    with pytest.raises(TypeError):
        p.mmap_peer(0, *args)  # type: ignore[arg-type]
    assert world(k) == before


@pytest.mark.parametrize("bad", [1.5, None, "1"])
def test_R_CALL_2_non_integer_for_other_calls_is_type_error(bad: object) -> None:
    k, p = setup()
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    before = world(k)
    calls: list[tuple[Callable[..., Any], tuple[object, ...]]] = [
        (p.munmap, (bad, PS)),
        (p.munmap, (a, bad)),
        (p.munmap_flags, (a, PS, bad)),
        (p.mprotect, (a, PS, bad)),
        (p.mprotect, (bad, PS, RW)),
        (p.munmap_peer, (bad, a, PS)),
        (p.mmap_peer, (bad, 0, PS, RW, ANON, C.NOFD, 0)),
        (p.setuid, (bad,)),
        (p.setrlimit, (C.RLIMIT_AS, bad, bad)),
        (p.getrlimit, (bad,)),
        (p.read_memory, (a, bad)),
        (p.check_access, (bad, 1, "r")),
    ]
    for fn, args in calls:
        with pytest.raises(TypeError):
            fn(*args)
    assert world(k) == before


def test_R_CALL_2_bool_is_refused_as_type_error() -> None:
    """[SIM] decision (README, "Bad input"): no simulated C parameter is a bool, so a bool
    where an integer goes is a caller's bug (``mmap(0, True, ...)``), refused before any rule."""
    _k, p = setup()
    for call, args in [
        (p.mmap, (False, PS, RW, ANON, C.NOFD, 0)),
        (p.mmap, (0, True, RW, ANON, C.NOFD, 0)),
        (p.munmap_flags, (PROGRAM_BASE, PS, False)),
        (p.mprotect, (PROGRAM_BASE, True, C.PROT_READ)),
    ]:
        with pytest.raises(TypeError, match="not bool"):
            call(*args)
    assert p.mappings() == ()


# -- R-CALL-3: mmap64 on 64-bit arches -------------------------------------------------------


def _outcome(use64: bool, args: tuple[int, ...]) -> tuple[object, ...]:
    k, p = setup()
    fn = p.mmap64 if use64 else p.mmap
    try:
        result: object = fn(*args)
    except QnxError as err:
        result = (err.errno, err.reason)
    return result, p.mappings(), k.meminfo()


@pytest.mark.parametrize(
    "args",
    [
        (0, PS, RW, ANON, C.NOFD, 0),
        (0, PS, RW, ANON, C.NOFD, -PS),
        (0, PS, RW, ANON, C.NOFD, 2**63),
        (0, PS, RW, ANON, C.NOFD, PS + 17),
        (0, 8 * PS, RW, ANON | C.MAP_STACK, C.NOFD, -PS),
        (0, 8 * PS, RW, ANON | C.MAP_STACK, C.NOFD, 2 * PS),
        (0, PS, RW, C.MAP_PRIVATE | C.MAP_PHYS, C.NOFD, -PS),
        (0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, 0xF000_0000),
        (PROGRAM_BASE + 5, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 7),
    ],
)
def test_R_CALL_3_mmap64_equals_mmap_on_x86_64(args: tuple[int, ...]) -> None:
    assert _outcome(True, args) == _outcome(False, args)


@settings(max_examples=100, deadline=None)
@given(
    off=st.integers(-(2**65), 2**65),
    length=st.integers(0, 16 * PS),
    flags=st.sampled_from([ANON, SHARED_ANON, ANON | C.MAP_STACK, ANON | C.MAP_FIXED]),
)
def test_R_CALL_3_mmap64_equals_mmap_property(off: int, length: int, flags: int) -> None:
    args = (PROGRAM_BASE + PS, length, RW, flags, C.NOFD, off)
    assert _outcome(True, args) == _outcome(False, args)


# -- R-CALL-4: every failure names its rule ---------------------------------------------------


def _failures(k: Kernel, p: Process) -> list[QnxError]:
    other = k.spawn(uid=2000, image=False)
    user = k.spawn(uid=1000, gid=100, image=False)
    user.setrlimit(C.RLIMIT_CORE, 0, 0)
    parent = k.spawn(image=False)
    zombie = parent.spawn(image=False)
    zombie.exit(0)
    runner = k.spawn(image=False)
    runner.spawn(image=False)  # a running child: a wait would block
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    full = k.spawn(image=False)
    full.setrlimit(C.RLIMIT_AS, PS, PS)
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]] = [
        (p.mmap, (0, PS, RW, 0, C.NOFD, 0)),
        (p.mmap, (0, 0, RW, ANON, C.NOFD, 0)),
        (p.mmap, (0, PS, 0x1000, ANON, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, ANON | C.PROT_READ, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, ANON | C.MAP_SYSRAM, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, ANON | 0x8, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, ANON | C.MAP_HANDLE, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, ANON, 3, 0)),
        (p.mmap, (0, PS, RW, ANON | C.MAP_PHYS | C.MAP_LAZY, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, C.MAP_PRIVATE | C.MAP_STACK, 3, 0)),
        (p.mmap, (0, PS, RW, ANON | C.MAP_STACK, C.NOFD, PS)),
        (p.mmap, (0, PS, RW, C.MAP_PRIVATE, 77, 0)),
        (p.mmap, (0, SIZE_MAX, RW, ANON, C.NOFD, 0)),
        (p.mmap, (0, 2 * RAM, RW, ANON, C.NOFD, 0)),
        (p.mmap, (0, USER_END, RW, ANON, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)),
        (p.mmap, (USER_END - PS, 2 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)),
        (p.mmap, (0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, 2**40)),
        (user.mmap, (0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, 0xF000_0000)),
        (full.mmap, (0, 2 * PS, RW, ANON, C.NOFD, 0)),
        (p.mmap_peer, (99999, 0, PS, RW, ANON, C.NOFD, 0)),
        (p.mmap_peer, (zombie.pid, 0, PS, RW, ANON, C.NOFD, 0)),
        (user.mmap_peer, (other.pid, 0, PS, RW, ANON, C.NOFD, 0)),
        (p.mmap64_peer, (99999, 0, PS, RW, ANON, C.NOFD, 0)),
        (p.munmap, (a, 0)),
        (p.munmap, (USER_END, PS)),
        (p.munmap_flags, (a, PS, 1)),
        (p.munmap_peer, (99999, a, PS)),
        (user.munmap_peer, (other.pid, a, PS)),
        (p.mprotect, (a, PS, 0x1000)),
        (p.mprotect, (a, 0, RW)),
        (p.mprotect, (a, 3 * PS, RW)),
        (p.mprotect, (USER_END, PS, RW)),
        (user.setuid, (0,)),
        (user.seteuid, (0,)),
        (user.setgid, (0,)),
        (user.setegid, (5,)),
        (p.setuid, (-1,)),
        (user.setrlimit, (C.RLIMIT_AS, 2 * PS, PS)),
        (user.setrlimit, (C.RLIMIT_CORE, 0, 1)),
        (p.getrlimit, (99,)),
        (p.setrlimit, (-1, 0, 0)),
        (p.waitpid, (99999, 0)),
        (runner.waitpid, (-1, 0)),
        (user.waitpid, (-1, 0)),
        (zombie.mmap, (0, PS, RW, ANON, C.NOFD, 0)),
        (zombie.exit, (0,)),
        (k.process(1).exit, (0,)),
    ]
    user.abilities.set(
        C.PROCMGR_AID_MAP_FIXED, qnxsim.abilities.NONROOT, qnxsim.abilities.DomainEntry(False)
    )
    user.abilities.set(
        C.PROCMGR_AID_PROT_WRITE_AND_EXEC,
        qnxsim.abilities.NONROOT,
        qnxsim.abilities.DomainEntry(False),
    )
    calls += [
        (user.mmap, (PROGRAM_BASE, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)),
        (user.mmap, (0, PS, C.PROT_READ | C.PROT_EXEC, ANON, C.NOFD, 0)),
    ]
    if hasattr(Process, "shm_open"):
        calls += [
            (p.shm_open, ("/nope", C.O_RDWR, 0)),
            (p.shm_open, ("", C.O_RDWR | C.O_CREAT, 0o600)),
            (p.ftruncate, (55, PS)),
            (p.close, (55,)),
        ]
    if hasattr(Process, "msync"):
        calls += [(p.msync, (a, PS, C.MS_SYNC | C.MS_ASYNC))]
    if hasattr(Process, "mlock"):
        calls += [(user.mlock, (a, PS)), (p.mlock, (PROGRAM_BASE + 64 * PS, PS))]
    errors: list[QnxError] = []
    for fn, args in calls:
        with pytest.raises(QnxError) as info:
            fn(*args)
        errors.append(info.value)
    return errors


def test_R_CALL_4_every_failure_reason_starts_with_rule_id_or_sim() -> None:
    k, p = setup(image=True)
    errors = _failures(k, p)
    assert len(errors) >= 50
    for e in errors:
        assert RULE.match(e.reason), f"{e.call}: {e.reason!r}"
        assert e.call and e.pid is not None


def test_R_CALL_4_reason_names_the_rule_that_fired() -> None:
    _k, p = setup()
    cases = [
        ((0, PS, RW, C.MAP_SHARED | C.MAP_PRIVATE, C.NOFD, 0), "R-MMAP-1"),
        ((0, 0, RW, ANON, C.NOFD, 0), "R-MMAP-2"),
        ((0, PS, 0x1000, ANON, C.NOFD, 0), "R-MMAP-3"),
        ((0, PS, RW, ANON | 0x4, C.NOFD, 0), "R-MMAP-4"),
        ((0, PS, RW, ANON | C.MAP_HANDLE, C.NOFD, 0), "R-MMAP-5"),
        ((0, PS, RW, ANON, 3, 0), "R-MMAP-6"),
        ((0, PS, RW, ANON | C.MAP_PHYS | C.MAP_LAZY, C.NOFD, 0), "R-MMAP-7"),
        ((0, PS, RW, ANON | C.MAP_STACK, C.NOFD, PS), "R-MMAP-8"),
    ]
    for args, rule in cases:
        e = raises(qerrno.EINVAL, rule, p.mmap, *args)
        assert e.reason.startswith(rule + ":")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    addr=st.one_of(
        st.sampled_from([0, 1, PS - 1, PS, PROGRAM_BASE, USER_END - PS, USER_END, 2**64 - 1]),
        st.integers(-(2**64), 2**65),
    ),
    length=st.one_of(st.sampled_from([0, 1, PS, 3 * PS, SIZE_MAX]), st.integers(-(2**64), 2**65)),
    prot=st.one_of(st.sampled_from([0, C.PROT_READ, RW, RW | C.PROT_EXEC, 0x1000])),
    flags=st.one_of(
        st.integers(0, 2**32 - 1),
        st.lists(st.sampled_from(sorted(C.MAP_FLAG_NAMES)), max_size=4).map(
            lambda xs: sum(set(xs))
        ),
    ),
    fd=st.sampled_from([C.NOFD, 0, 3, 2**31, 2**32 - 1]),
    off=st.one_of(st.sampled_from([0, PS, -PS, 2**63]), st.integers(-(2**64), 2**64)),
)
def test_R_CALL_4_R_CALL_5_fuzzed_mmap_fails_cleanly(
    addr: int, length: int, prot: int, flags: int, fd: int, off: int
) -> None:
    """Any mmap either succeeds (invariants hold) or raises QnxError naming a rule and
    changing nothing; nothing else escapes.  Same for munmap/mprotect at the same place."""
    k = Kernel(ram=RAM)
    p = k.spawn(image=True)
    p.write_memory(PROGRAM_BASE + 0x10000, b"marker")  # the image's data page
    for call, args in [
        (p.mmap, (addr, length, prot, flags, fd, off)),
        (p.mprotect, (addr, length, prot)),
        (p.munmap, (addr, length)),
    ]:
        before = world(k)
        try:
            call(*args)
        except QnxError as e:
            assert RULE.match(e.reason), e.reason
            if not (call == p.mprotect and "R-MPROT-5" in e.reason):
                assert world(k) == before
        k.check_invariants()
    if p.mapping_at(PROGRAM_BASE + 0x10000) is not None:
        try:
            data = p.read_memory(PROGRAM_BASE + 0x10000, 6)
        except Exception:
            data = None
        assert data in (b"marker", bytes(6), None)


# -- R-CALL-5: failures change nothing --------------------------------------------------------


def test_R_CALL_5_map_fixed_replacement_happens_only_after_every_check() -> None:
    k, p = setup()
    a = p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    p.write_memory(a, b"survivor")
    p.setrlimit(C.RLIMIT_AS, 6 * PS, 6 * PS)
    before = world(k)
    fixed = ANON | C.MAP_FIXED
    raises(qerrno.ENOMEM, "R-MMAP-18", p.mmap, a, 8 * PS, RW, fixed, C.NOFD, 0)
    p.abilities.set(
        C.PROCMGR_AID_PROT_WRITE_AND_EXEC,
        qnxsim.abilities.ROOT,
        qnxsim.abilities.DomainEntry(False),
    )
    raises(qerrno.EPERM, "R-MMAP-9", p.mmap, a, PS, RW | C.PROT_EXEC, fixed, C.NOFD, 0)
    raises(qerrno.EINVAL, "R-MMAP-4", p.mmap, a, PS, RW, fixed | 0x4, C.NOFD, 0)
    assert world(k) == before
    assert p.read_memory(a, 8) == b"survivor"
    k.check_invariants()


def test_R_CALL_5_map_fixed_out_of_ram_keeps_old_mapping() -> None:
    k, p = setup()
    a = p.mmap(0, 4 * PS, RW, ANON, C.NOFD, 0)
    p.write_memory(a + PS, b"still here")
    far = p.mmap(0x4000_0000, k.meminfo().free, RW, ANON, C.NOFD, 0)
    assert far == 0x4000_0000  # not next to ``a``: [a+4, a+8) stays a hole
    before = world(k)
    # Replacing 4 pages frees 4, but 8 are needed.
    raises(qerrno.ENOMEM, "R-MMAP-20", p.mmap, a, 8 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    assert world(k) == before
    assert p.read_memory(a + PS, 10) == b"still here"
    # Replacing in place with the same size fits exactly: RAM freed by the old pages.
    assert p.mmap(a, 4 * PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0) == a
    assert p.read_memory(a + PS, 10) == bytes(10)
    k.check_invariants()


def test_R_CALL_5_failed_mprotect_and_munmap_change_nothing() -> None:
    k, p = setup()
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    p.munmap(a + 2 * PS, PS)
    p.write_memory(a, b"x")
    before = world(k)
    raises(qerrno.ENOMEM, "R-MPROT-2", p.mprotect, a, 3 * PS, C.PROT_NONE)
    raises(qerrno.EINVAL, "R-MPROT-1", p.mprotect, a, PS, 0x2000)
    raises(qerrno.EINVAL, "R-UNMAP-4", p.munmap, a, USER_END)
    raises(qerrno.EINVAL, "R-UNMAP-6", p.munmap_flags, a, PS, 2)
    assert world(k) == before
    assert p.read_memory(a, 1) == b"x"


def test_R_CALL_5_failed_peer_calls_change_nothing() -> None:
    k, p = setup()
    user = k.spawn(uid=1000, image=False)
    other = k.spawn(uid=2000, image=True)
    before = world(k)
    raises(qerrno.EPERM, "R-PEER-3", user.mmap_peer, other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    raises(qerrno.EPERM, "R-PEER-3", user.munmap_peer, other.pid, PROGRAM_BASE, PS)
    raises(qerrno.ESRCH, "R-PEER-2", user.munmap_peer, 99999, PROGRAM_BASE, PS)
    other.setrlimit(C.RLIMIT_DATA, 0, 0)
    before = world(k)
    raises(qerrno.ENOMEM, "R-MMAP-18", p.mmap_peer, other.pid, 0, PS, RW, ANON, C.NOFD, 0)
    assert world(k) == before


def test_R_CALL_5_failed_credentials_and_limits_change_nothing() -> None:
    k, _p = setup()
    user = k.spawn(uid=1000, gid=100, image=False)
    user.setrlimit(C.RLIMIT_AS, 8 * PS, 16 * PS)
    before = world(k)
    for fn, args in [
        (user.setuid, (0,)),
        (user.seteuid, (7,)),
        (user.setgid, (0,)),
        (user.setegid, (7,)),
        (user.setrlimit, (C.RLIMIT_AS, 32 * PS, 16 * PS)),
        (user.setrlimit, (C.RLIMIT_AS, 8 * PS, 32 * PS)),
    ]:
        with pytest.raises(QnxError):
            fn(*args)
    assert world(k) == before
