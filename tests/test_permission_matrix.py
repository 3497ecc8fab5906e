"""The peer permission matrix: mmap_peer and munmap_peer for every caller and target kind.

SPEC 6 and R-UNMAP-7: R-PEER-2 (no process, zombie or exiting → ESRCH, checked first,
whatever the caller), then R-PEER-3 (PROCMGR_AID_MEM_PEER for the target's pid, or the
caller's ruid/euid equal to the target's ruid/suid; else EPERM).  A refused call leaves the
target (and every other process, and RAM) untouched (R-CALL-5).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import ANON, PS, RW, SHARED_ANON

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.abilities import NONROOT, DomainEntry

TARGET_UID = 1000
OTHER_UID = 2000
NO_SUCH_PID = 99999

CALLERS = ("root", "same-uid", "other-uid", "granted-mem-peer", "granted-excluding-target")
TARGETS = ("alive", "zombie", "missing")


def make_target(k: Kernel, kind: str) -> tuple[int, Process | None]:
    """The target pid and, when it is alive, its process with one mapping of its own."""
    if kind == "missing":
        return NO_SUCH_PID, None
    if kind == "zombie":
        parent = k.spawn(uid=TARGET_UID, image=False)
        child = parent.spawn(image=False)
        child.mmap(0, PS, RW, ANON, C.NOFD, 0)
        child.exit(0)  # R-PROC-4: a zombie until its parent waits
        assert not child.alive and k.process(child.pid) is child
        return child.pid, None
    target = k.spawn(uid=TARGET_UID, image=False)
    addr = target.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    target.write_memory(addr, b"target data")
    return target.pid, target


def make_caller(k: Kernel, kind: str, target_pid: int) -> Process:
    if kind == "root":
        return k.spawn(uid=0, image=False)
    if kind == "same-uid":
        return k.spawn(uid=TARGET_UID, image=False)
    caller = k.spawn(uid=OTHER_UID, image=False)
    if kind == "granted-mem-peer":
        grant = DomainEntry(True)
    elif kind == "granted-excluding-target":
        grant = DomainEntry(True, ((target_pid + 1, target_pid + 100), (1, target_pid - 1)))
    else:
        assert kind == "other-uid"
        return caller
    caller.abilities.set(C.PROCMGR_AID_MEM_PEER, NONROOT, grant)
    return caller


def expected(caller: str, target: str) -> int:
    """SPEC: ESRCH for a zombie or missing pid whatever the caller, then R-PEER-3."""
    if target != "alive":
        return qerrno.ESRCH
    if caller in ("other-uid", "granted-excluding-target"):
        return qerrno.EPERM
    return 0


def state(k: Kernel) -> tuple[object, ...]:
    return (
        tuple((p.pid, p.state, p.mappings()) for p in k.processes()),
        k.meminfo(),
    )


def refused(errno: int, fn: Callable[..., object], *args: int) -> None:
    with pytest.raises(QnxError) as info:
        fn(*args)
    assert info.value.errno == errno, info.value
    rule = "R-PEER-2" if errno == qerrno.ESRCH else "R-PEER-3"
    assert rule in info.value.reason, info.value.reason


MATRIX = [(c, t) for c in CALLERS for t in TARGETS]


@pytest.mark.parametrize(("caller_kind", "target_kind"), MATRIX)
def test_R_PEER_2_R_PEER_3_mmap_peer_matrix(caller_kind: str, target_kind: str) -> None:
    k = Kernel(ram=64 << 20)
    pid, target = make_target(k, target_kind)
    caller = make_caller(k, caller_kind, pid)
    want = expected(caller_kind, target_kind)
    before = state(k)
    caller_before = caller.mappings()
    args = (pid, 0, PS, RW, SHARED_ANON, C.NOFD, 0)
    if want:
        refused(want, caller.mmap_peer, *args)
        refused(want, caller.mmap64_peer, *args)
        assert caller.libc.mmap_peer(*args) == C.MAP_FAILED
        assert caller.libc.errno == want
        assert state(k) == before
    else:
        assert target is not None
        addr = caller.mmap_peer(*args)
        record = target.mapping_at(addr)
        assert record is not None and record.kind == "shared-anon"
        target.write_memory(addr, b"peer")  # R-PEER-5: an ordinary mapping of the target
        assert caller.mappings() == caller_before  # the caller's space is unchanged
        assert target.read_memory(target.mappings()[0].start, 11) == b"target data"
    k.check_invariants()


@pytest.mark.parametrize(("caller_kind", "target_kind"), MATRIX)
def test_R_UNMAP_7_munmap_peer_matrix(caller_kind: str, target_kind: str) -> None:
    k = Kernel(ram=64 << 20)
    pid, target = make_target(k, target_kind)
    caller = make_caller(k, caller_kind, pid)
    want = expected(caller_kind, target_kind)
    where = target.mappings()[0].start if target is not None else 0x0800_0000
    before = state(k)
    if want:
        refused(want, caller.munmap_peer, pid, where, 2 * PS)
        assert caller.libc.munmap_peer(pid, where, 2 * PS) == -1
        assert caller.libc.errno == want
        assert state(k) == before
        if target is not None:
            assert target.read_memory(where, 11) == b"target data"
    else:
        assert target is not None
        free = k.meminfo().free
        assert caller.munmap_peer(pid, where, PS) == 0
        assert [(m.start, m.end) for m in target.mappings()] == [(where + PS, where + 2 * PS)]
        assert caller.libc.munmap_peer(pid, where + PS, PS) == 0
        assert target.mappings() == ()
        assert k.meminfo().free == free + 2 * PS  # the target's frames are back
    k.check_invariants()


@pytest.mark.parametrize("caller_kind", CALLERS)
def test_R_PEER_1_own_pid_and_pid_0_need_no_permission(caller_kind: str) -> None:
    k = Kernel(ram=64 << 20)
    caller = make_caller(k, caller_kind, NO_SUCH_PID)
    for pid in (0, caller.pid):
        addr = caller.mmap_peer(pid, 0, PS, RW, ANON, C.NOFD, 0)
        assert caller.mapping_at(addr) is not None
        assert caller.munmap_peer(pid, addr, PS) == 0
        assert caller.mapping_at(addr) is None
    k.check_invariants()


@pytest.mark.parametrize(
    ("caller_uids", "target_uids", "ok"),
    [
        # (ruid, euid) of the caller, (ruid, suid) of the target.
        ((1000, 1000), (1000, 1000), True),
        ((1000, 1000), (3000, 1000), True),  # caller uid = target suid
        ((1000, 3000), (3000, 3000), True),  # caller euid = target ruid
        ((3000, 1000), (2000, 1000), True),  # caller euid = target suid
        ((1000, 1000), (2000, 2000), False),
        ((1000, 3000), (2000, 4000), False),
    ],
)
def test_R_PEER_3_uid_rule(
    caller_uids: tuple[int, int], target_uids: tuple[int, int], ok: bool
) -> None:
    k = Kernel(ram=64 << 20)
    caller = make_creds(k, *caller_uids, saved=caller_uids[0])
    target = make_creds(k, target_uids[0], target_uids[1], saved=target_uids[1])
    assert (target.ruid, target.suid) == target_uids
    assert (caller.ruid, caller.euid) == caller_uids
    before = state(k)
    if ok:
        addr = caller.mmap_peer(target.pid, 0, PS, RW, ANON, C.NOFD, 0)
        assert target.mapping_at(addr) is not None
    else:
        refused(qerrno.EPERM, caller.mmap_peer, target.pid, 0, PS, RW, ANON, C.NOFD, 0)
        assert state(k) == before


def make_creds(k: Kernel, ruid: int, euid: int, saved: int) -> Process:
    """A non-root process with the given ruid, euid and suid (set as the kernel would)."""
    p = k.spawn(uid=ruid, image=False)
    p.ruid, p.euid, p.suid = ruid, euid, saved
    return p
