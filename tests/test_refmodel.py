"""The reference model (qnxsim.refmodel) on its own: small examples of what it predicts,
each against SPEC (the state machines then compare it with the kernel)."""

from __future__ import annotations

from support import PROGRAM_BASE, PS, SHMEM_BASE

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.refmodel import (
    FRAME,
    FROM_RESERVE,
    READY,
    Fault,
    KernelModel,
    Layout,
    ObjectModel,
)

MIB = 1 << 20
LAYOUT = Layout.of("8.0", "x86_64")
ANON = C.MAP_PRIVATE | C.MAP_ANON


def model(ram: int = 4 * MIB) -> KernelModel:
    m = KernelModel(PS, layout=LAYOUT, ram=ram)
    m.spawn(2, 0)
    return m


def test_R_PLACE_1_hints() -> None:
    assert LAYOUT.hint(0, ANON) == (PROGRAM_BASE, False)
    assert LAYOUT.hint(0, C.MAP_SHARED | C.MAP_ANON, "shared-anon") == (SHMEM_BASE, False)
    assert LAYOUT.hint(0, ANON | C.MAP_ELF) == (LAYOUT.so_base, False)
    assert LAYOUT.hint(0, ANON | C.MAP_STACK) == (PROGRAM_BASE, True)
    assert LAYOUT.hint(PS + 1, ANON) == (2 * PS, False)  # rounded up
    assert LAYOUT.hint(PS + 1, ANON | C.MAP_BELOW) == (PS, True)  # rounded down
    assert LAYOUT.hint(PS + 1, ANON | C.MAP_STACK) == (PROGRAM_BASE, True)  # R-MMAP-26
    assert LAYOUT.hint(LAYOUT.user_end, ANON) == (None, False)  # SPEC is silent


def test_R_MMAP_F1_fixed_range() -> None:
    assert LAYOUT.fixed_errno(0, PS) == E.EINVAL
    assert LAYOUT.fixed_errno(LAYOUT.user_end, PS) == E.EINVAL
    assert LAYOUT.fixed_errno(LAYOUT.user_end - PS, 2 * PS) == E.ENOMEM
    assert LAYOUT.fixed_errno(PS, PS) is None


def test_R_UNMAP_1_to_3_widen() -> None:
    assert LAYOUT.widen(PS + 1, 1) == (PS, 2 * PS)
    assert LAYOUT.widen(5, 0) is None
    assert LAYOUT.widen(LAYOUT.addr_max, 1) is None  # cut to 0 (R-UNMAP-1)


def test_R_MMAP_8_R_MMAP_26_stack_guard() -> None:
    m = model()
    assert m.plan_anon_mmap(2, 0, PS, ANON | C.MAP_STACK, PS).errno == E.EINVAL
    plan = m.plan_anon_mmap(2, 0, 4 * PS, ANON | C.MAP_STACK, 1)
    # R-PLACE-3: at the hint itself while [hint, hint + size) is free
    assert (plan.errno, plan.start, plan.size, plan.guard) == (None, PROGRAM_BASE, 4 * PS, PS)


def test_R_MMAP_F2_congruence() -> None:
    m = model()
    assert m.plan_anon_mmap(2, PS + 1, PS, C.MAP_SHARED | C.MAP_FIXED, 0).errno == E.EINVAL
    plan = m.plan_anon_mmap(2, PS + 1, PS, ANON | C.MAP_FIXED, 0)
    assert (plan.start, plan.size, plan.pg_off) == (PS, 2 * PS, 1)
    # off's sub-page part is ignored before R-MMAP-F1 judges the range: the last page
    # of the user range fits, though len + off % PS would run past USER_END
    last = LAYOUT.user_end - PS
    plan = m.plan_anon_mmap(2, last, PS, ANON | C.MAP_FIXED, 1)
    assert (plan.errno, plan.start, plan.size, plan.pg_off) == (None, last, PS, 0)
    assert m.plan_anon_mmap(2, last, PS, C.MAP_SHARED | C.MAP_FIXED, 1).errno == E.ENOMEM


def test_R_MMAP_18_rlimits() -> None:
    m = model()
    m.map(2, PROGRAM_BASE, 2 * PS, C.PROT_READ, "anon", None, 0, private=True,
          noinherit=False, flags=ANON)  # fmt: skip
    assert m.setrlimit(2, C.RLIMIT_AS, 3 * PS, 3 * PS) is None
    assert m.plan_anon_mmap(2, 0, 2 * PS, ANON, 0).errno == E.ENOMEM
    assert m.plan_anon_mmap(2, 0, PS, ANON, 0).errno is None
    # replacing what a MAP_FIXED request covers does not count twice
    assert m.plan_anon_mmap(2, PROGRAM_BASE, 3 * PS, ANON | C.MAP_FIXED, 0).errno is None
    assert m.setrlimit(2, C.RLIMIT_AS, LAYOUT.rlim_infinity, LAYOUT.rlim_infinity) is None
    assert m.setrlimit(2, C.RLIMIT_DATA, 2 * PS, 2 * PS) is None
    assert m.plan_anon_mmap(2, 0, PS, ANON, 0).errno == E.ENOMEM
    assert m.plan_anon_mmap(2, 0, PS, C.MAP_SHARED | C.MAP_ANON, 0).errno is None  # not data
    assert m.plan_anon_mmap(2, 0, PS, ANON | C.MAP_STACK, 0).errno is None  # stack: not data


def test_SPEC_18_setrlimit_rules() -> None:
    m = model()
    assert m.setrlimit(2, 99, 1, 1) == E.EINVAL
    assert m.setrlimit(2, C.RLIMIT_AS, 2, 1) == E.EINVAL
    assert m.setrlimit(2, C.RLIMIT_AS, PS, PS) is None
    assert m.set_id(2, "uid", 1000, every=True) is None
    assert m.setrlimit(2, C.RLIMIT_AS, 2 * PS, 2 * PS) == E.EPERM  # raising the hard limit
    assert m.setrlimit(2, C.RLIMIT_AS, PS // 2, PS // 2) is None
    assert m.procs[2].limits[C.RLIMIT_AS] == (PS // 2, PS // 2)


def test_R_PROC_5_set_id() -> None:
    m = model()
    assert m.set_id(2, "uid", 1000, every=False) is None  # root: the euid only
    p = m.procs[2]
    assert (p.ruid, p.euid, p.suid) == (0, 1000, 0)
    assert m.set_id(2, "uid", 0, every=False) is None  # back to the real uid
    assert m.set_id(2, "uid", 7, every=True) is None
    assert (p.ruid, p.euid, p.suid) == (7, 7, 7)
    assert m.set_id(2, "uid", 0, every=False) == E.EPERM
    assert m.set_id(2, "uid", -1, every=True) == E.EINVAL


def test_R_PROC_4_zombies_and_waitpid() -> None:
    m = model()
    m.fork(2, 3)
    m.fork(3, 4)
    assert m.waitpid(2, -1, C.WNOHANG) == (None, (0, 0))
    assert m.waitpid(2, -1, 0)[0] == E.EDEADLK
    assert m.waitpid(2, 4, 0)[0] == E.ECHILD  # a grandchild
    m.exit(4, 0x1234)
    assert m.zombies == {4: (3, 0x34)}
    m.exit(3, 1)  # its zombie child is reaped
    assert m.zombies == {3: (2, 1)}
    assert m.waitpid(2, -1, 0) == (None, (3, 1))
    assert m.waitpid(2, -1, 0)[0] == E.ECHILD


def test_R_OBJ_3_accounting_and_R_PROC_2_fork_need() -> None:
    m = model()
    shm = ObjectModel("shm", PS, 3 * PS, "/o")
    m.names["/o"] = shm
    assert m.allocated() == 3 * PS  # R-SHM-5: ftruncate allocates
    m.map(2, SHMEM_BASE, 2 * PS, C.PROT_READ | C.PROT_WRITE, "shm", shm, 0, private=True,
          noinherit=False)  # fmt: skip
    assert m.reserved() == 2 * PS
    assert m.needs(2, SHMEM_BASE // PS, "w") == FROM_RESERVE
    m.write(2, SHMEM_BASE, b"x")  # the private copy uses its reservation
    assert (m.allocated(), m.reserved()) == (4 * PS, PS)
    m.map(2, PROGRAM_BASE, 2 * PS, C.PROT_READ, "anon", None, 0, private=True,
          noinherit=False, lazy=True)  # fmt: skip
    assert m.needs(2, PROGRAM_BASE // PS, "r") == FRAME
    assert m.read(2, PROGRAM_BASE, 1) == b"\0"  # R-FAULT-4: a read touch gives a frame
    assert m.needs(2, PROGRAM_BASE // PS, "r") == READY
    assert m.allocated() == 5 * PS
    assert m.fork_need(2) == 3 * PS  # two private frames and one reservation
    assert m.reclaimable(2, SHMEM_BASE, SHMEM_BASE + 2 * PS) == 2 * PS  # the name keeps shm
    del m.names["/o"]
    assert m.reclaimable(2, SHMEM_BASE, SHMEM_BASE + 2 * PS) == 5 * PS


def test_R_SYS_6_lazy_touch_without_ram_is_bus_adrerr() -> None:
    m = model(ram=2 * PS)
    m.map(2, PROGRAM_BASE, PS, C.PROT_READ, "anon", None, 0, private=True, noinherit=False)
    m.map(2, PROGRAM_BASE + PS, 2 * PS, C.PROT_READ, "anon", None, 0, private=True,
          noinherit=False, lazy=True)  # fmt: skip
    assert m.fault(2, PROGRAM_BASE, PS + 1, "r") is None
    assert m.fault(2, PROGRAM_BASE, 3 * PS, "r") == Fault(
        C.SIGBUS, C.BUS_ADRERR, PROGRAM_BASE + 2 * PS
    )
    assert m.plan_anon_mmap(2, 0, 2 * PS, ANON, 0).errno == E.ENOMEM  # R-MMAP-20
    assert m.plan_anon_mmap(2, 0, 2 * PS, ANON | C.MAP_LAZY, 0).errno is None


def test_R_MPROT_6_guard_keeps_its_prot() -> None:
    m = model()
    m.map(2, PROGRAM_BASE, 2 * PS, C.PROT_READ, "anon", None, 0, private=True,
          noinherit=False, guard=PS, flags=ANON | C.MAP_STACK)  # fmt: skip
    m.protect(2, PROGRAM_BASE, PROGRAM_BASE + 2 * PS, C.PROT_READ | C.PROT_WRITE)
    assert m.layout(2) == [(PROGRAM_BASE, C.PROT_NONE, "stack-guard"),
                           (PROGRAM_BASE + PS, C.PROT_READ | C.PROT_WRITE, "anon")]  # fmt: skip
    assert m.allocated() == PS  # the guard has no memory


def lock_model(version: str) -> KernelModel:
    """A model of ``version`` whose pid 2 maps 3 read-write pages at PROGRAM_BASE."""
    m = KernelModel(PS, layout=Layout.of(version, "x86_64"))
    m.spawn(2, 0)
    m.map(2, PROGRAM_BASE, 3 * PS, C.PROT_READ | C.PROT_WRITE, "anon", None, 0,
          private=True, noinherit=False)  # fmt: skip
    return m


def test_R_LOCK_1_R_LOCK_2_model_checks_in_order() -> None:
    m = lock_model("7.1")
    a = PROGRAM_BASE
    assert m.mlock(2, a, 0) == E.ENOMEM  # len 0 first
    m.spawn(3, 1000)
    assert m.mlock(3, a, PS) == E.EPERM  # unmapped there, but the ability comes first
    assert m.mlock(2, a, 4 * PS) == E.ENOMEM  # not wholly mapped
    m.protect(2, a + 2 * PS, a + 3 * PS, C.PROT_NONE)
    assert m.mlock(2, a, 3 * PS) == E.ENOMEM  # a PROT_NONE page
    m.setrlimit(2, C.RLIMIT_MEMLOCK, PS, PS)
    assert m.mlock(2, a, 2 * PS) == E.ENOMEM  # over RLIMIT_MEMLOCK: 7.1's errno
    assert m.locked_pages(2) == set()
    assert m.mlock(2, a + 1, 1) is None  # widened to the page
    assert m.mlock(2, a, PS) is None  # a locked page counts once
    assert m.locked_pages(2) == {a} and m.locked_bytes(2) == PS
    assert m.munlock(2, a, 4 * PS) == E.ENOMEM and m.munlock(2, a, 0) == E.ENOMEM
    assert m.munlock(2, a, 3 * PS) is None and m.locked_pages(2) == set()
    m6 = lock_model("6.4")
    m6.setrlimit(2, C.RLIMIT_MEMLOCK, 0, 0)
    assert m6.mlock(2, PROGRAM_BASE, PS) == E.EAGAIN  # 6.4's errno (SPEC 19)


def test_R_LOCK_3_R_MMAP_19_model_mlockall_and_mcl_future() -> None:
    m = lock_model("7.1")
    a = PROGRAM_BASE
    assert m.mlockall(2, 0) == E.EINVAL and m.mlockall(2, 4) == E.EINVAL
    m.protect(2, a, a + PS, C.PROT_NONE)
    m.setrlimit(2, C.RLIMIT_MEMLOCK, 3 * PS, 3 * PS)
    assert m.mlockall(2, C.MCL_CURRENT | C.MCL_FUTURE) is None
    assert m.locked_pages(2) == {a + PS, a + 2 * PS}  # not the PROT_NONE page
    plan = m.plan_anon_mmap(2, 0, 2 * PS, ANON, 0, C.PROT_READ)
    assert (plan.errno, plan.rule) == (E.EAGAIN, "R-MMAP-19")  # 4 pages > 3
    assert m.plan_anon_mmap(2, 0, 2 * PS, ANON, 0, C.PROT_NONE).errno is None
    assert m.plan_anon_mmap(2, 0, 2 * PS, ANON | C.MAP_STACK, PS, C.PROT_READ).errno is None
    m.map(2, SHMEM_BASE, PS, C.PROT_READ, "anon", None, 0, private=True, noinherit=False)
    assert SHMEM_BASE in m.locked_pages(2)
    m.munlockall(2)
    assert m.locked_pages(2) == set() and not m.procs[2].lock_future


def test_R_LOCK_4_model_fork_and_exec_drop_locks() -> None:
    m = lock_model("6.4")
    assert m.mlockall(2, C.MCL_CURRENT | C.MCL_FUTURE) is None
    child = m.fork(2, 3)
    assert m.locked_pages(3) == set() and not child.lock_future
    assert len(m.locked_pages(2)) == 3
    m.exec(2)
    assert m.locked_pages(2) == set() and not m.procs[2].lock_future and not m.procs[2].pages


def test_R_LOCK_5_to_7_model_on_8_0() -> None:
    m = lock_model("8.0")
    a = PROGRAM_BASE
    m.protect(2, a, a + PS, C.PROT_NONE)
    assert m.mlock(2, a, 3 * PS) is None  # PROT_NONE is backed (R-LOCK-5)
    assert m.locked_pages(2) == set()  # R-LOCK-7
    assert m.mlock(2, a, 0) == E.ENOMEM and m.mlock(2, a, 4 * PS) == E.ENOMEM
    m.map(2, SHMEM_BASE, 2 * PS, C.PROT_READ | C.PROT_WRITE, "anon", None, 0, private=True,
          noinherit=False, lazy=True)  # fmt: skip
    assert m.mlock(2, SHMEM_BASE, PS) == E.ENOMEM  # lazy, never touched
    m.write(2, SHMEM_BASE, b"x")
    assert m.mlock(2, SHMEM_BASE, PS) is None and m.mlock(2, SHMEM_BASE, 2 * PS) == E.ENOMEM
    obj = ObjectModel("shm", PS, PS)
    m.map(2, SHMEM_BASE + 4 * PS, 2 * PS, C.PROT_READ, "shm", obj, 0, private=False,
          noinherit=False)  # fmt: skip
    assert not m.backed(2, (SHMEM_BASE + 5 * PS) // PS)  # wholly past the object's end
    assert m.munlock(2, 0, 0) is None  # R-LOCK-6
    assert m.mlockall(2, 0) is None and m.munlockall(2) is None  # R-LOCK-3 on 8.0
