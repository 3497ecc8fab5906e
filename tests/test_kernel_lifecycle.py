"""The kernel and the lifecycle calls as callers see them: exec and spawn are atomic and
load only regular files (R-CALL-5, R-PROC-1, R-PROC-3), procnto and stale handles make no
calls, snapshots are opaque, errno is per thread (R-PROC-6), ASLR keeps images inside the
user range (R-SYS-4), and a failing call consumes no pid and no ASLR draw (R-CALL-5).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import ANON, PROGRAM_BASE, PS, RW
from support import expect_error as expect

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.calls import CALLS
from qnxsim.pathspace import S_IFCHR, S_IFDIR, S_IFNAM, S_IFREG

RAM = 64 << 20
S_IFMT = 0o170000


def fingerprint(k: Kernel) -> tuple[object, ...]:
    """Everything a caller can observe of a kernel: processes with their creds, limits,
    paths, fds and mappings; RAM; the named objects of the path space."""
    procs = tuple(
        (p.pid, p.ppid, p.path, p.state, p.ruid, p.euid, p.suid, p.rgid, p.egid, p.sgid,
         tuple(sorted(p.rlimits.items())), tuple(sorted(p.fdt.fds)), p.mappings())
        for p in k.processes()
    )  # fmt: skip
    return procs, k.meminfo(), tuple(sorted(k.paths.nodes))


def file_type(p: Process, path: str) -> int:
    """The S_IFMT bits of ``path`` as ``fstat`` reports them."""
    fd = p.open(path, C.O_RDONLY)
    try:
        return p.fstat(fd).st_mode & S_IFMT
    finally:
        p.close(fd)


def exists(p: Process, path: str) -> bool:
    try:
        p.close(p.open(path, C.O_RDONLY))
    except QnxError as err:
        assert err.errno == qerrno.ENOENT, err
        return False
    return True


def test_kernel_is_still_importable_from_qnxsim_process() -> None:
    from qnxsim.process import Kernel as FromProcess

    assert FromProcess is Kernel
    with pytest.raises(ImportError):
        from qnxsim.process import NoSuchName  # type: ignore[attr-defined]  # noqa: F401


# == R-CALL-5 / R-PROC-3: exec is atomic ========================================================


def test_R_CALL_5_exec_over_rlimit_as_keeps_the_old_image_path_and_fds() -> None:
    k = Kernel(ram=RAM)
    k.create_file("/b", b"b")
    p = k.spawn("/proc/boot/old")
    kept = p.open("/b", C.O_RDONLY | C.O_CLOEXEC)  # exec would close it
    total = sum(m.size for m in p.mappings())
    p.setrlimit(C.RLIMIT_AS, total - PS, total - PS)  # the new image cannot fit
    before = fingerprint(k)
    err = expect(qerrno.ENOMEM, "R-", p.exec, "/proc/boot/new")
    assert (err.call, err.pid) == ("exec", p.pid)
    assert fingerprint(k) == before
    assert p.path == "/proc/boot/old" and kept in p.fdt.fds
    assert not exists(p, "/proc/boot/new")  # no executable left behind
    k.check_invariants()


def test_R_CALL_5_exec_without_ram_for_the_image_keeps_the_old_one() -> None:
    k = Kernel(ram=4 << 20)
    p = k.spawn("/proc/boot/old")
    free = k.meminfo().free
    p.mmap(0, free - 2 * PS, RW, ANON, C.NOFD, 0)  # leaves less than the image needs
    before = fingerprint(k)
    err = expect(qerrno.ENOMEM, "R-SYS-6", p.exec, "/proc/boot/new")
    assert err.call == "exec"
    assert fingerprint(k) == before
    k.check_invariants()


def test_R_CALL_5_failing_spawn_leaves_no_file_no_pid_and_no_process() -> None:
    k = Kernel(ram=RAM)
    parent = k.spawn(image=False)
    parent.setrlimit(C.RLIMIT_AS, 8 * PS, 8 * PS)  # inherited: no image fits
    before = fingerprint(k)
    err = expect(qerrno.ENOMEM, "R-", parent.spawn, "/proc/boot/child")
    assert (err.call, err.pid) == ("spawn", parent.pid)
    assert fingerprint(k) == before
    assert not exists(parent, "/proc/boot/child")
    assert k.spawn(image=False).pid == parent.pid + 1  # R-CALL-5: the pid was not used up
    k.check_invariants()


def test_R_CALL_5_kernel_spawn_failure_is_stamped_as_procnto_spawn() -> None:
    k = Kernel(ram=64 * PS)  # too little RAM for any image
    before = fingerprint(k)
    err = expect(qerrno.ENOMEM, "R-SYS-6", k.spawn, "/proc/boot/app")
    assert (err.call, err.pid) == ("spawn", 1)
    assert fingerprint(k) == before
    assert k.spawn(image=False).pid == 2


def test_R_PROC_1_spawn_of_a_missing_path_still_makes_the_file() -> None:
    k = Kernel(ram=RAM)
    p = k.spawn("/proc/boot/fresh")
    assert file_type(p, "/proc/boot/fresh") == S_IFREG
    assert p.exec("/proc/boot/other") == 0
    assert file_type(p, "/proc/boot/other") == S_IFREG


# == R-PROC-1 / R-PROC-3: only regular files are executables =====================================


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/dev/shmem/obj", S_IFNAM),
        ("/dev/zero", S_IFCHR),
        ("/dev/mem", S_IFCHR),
        ("/", S_IFDIR),
        ("/dev", S_IFDIR),
        ("/dev/shmem", S_IFDIR),
    ],
)
def test_R_PROC_1_exec_and_spawn_of_a_non_regular_file_is_eacces(path: str, kind: int) -> None:
    k = Kernel(ram=RAM)
    p = k.spawn()
    fd = p.shm_open("/obj", C.O_RDWR | C.O_CREAT, 0o600)
    p.write(fd, b"shm data")
    before = fingerprint(k)
    expect(qerrno.EACCES, "R-PROC-3", p.exec, path)
    expect(qerrno.EACCES, "R-PROC-1", p.spawn, path)
    expect(qerrno.EACCES, "R-PROC-1", k.spawn, path)
    assert fingerprint(k) == before
    assert file_type(p, path) == kind  # nothing was replaced
    assert p.pread(fd, 8, 0) == b"shm data"
    k.check_invariants()


def test_R_PROC_1_a_path_under_a_file_is_enotdir_and_an_empty_one_enoent() -> None:
    k = Kernel(ram=RAM)
    k.create_file("/proc/boot/tool", b"x")
    p = k.spawn()
    before = fingerprint(k)
    expect(qerrno.ENOTDIR, "R-PROC-3", p.exec, "/proc/boot/tool/sub")
    expect(qerrno.ENOENT, "R-PROC-1", k.spawn, "")
    assert fingerprint(k) == before


def test_R_PROC_1_an_existing_regular_file_is_used_not_replaced() -> None:
    k = Kernel(ram=RAM)
    k.create_file("/bin/tool", b"\x7fELF", mode=0o755)
    p = k.spawn("/bin/tool")
    assert p.read_memory(PROGRAM_BASE, 4) == b"\x7fELF"


# == NAME_MAX and PATH_MAX ==================================================================


LONG_NAME = "/proc/boot/" + "n" * (C.NAME_MAX + 1)
LONG_PATH = "/" + "d/" * 512  # 1025 bytes, every component short


@pytest.mark.parametrize("path", [LONG_NAME, LONG_PATH])
def test_R_PROC_1_over_long_image_paths_are_enametoolong(path: str) -> None:
    k = Kernel(ram=RAM)
    p = k.spawn()
    before = fingerprint(k)
    expect(qerrno.ENAMETOOLONG, "R-PROC-1", k.spawn, path)
    expect(qerrno.ENAMETOOLONG, "R-PROC-1", p.spawn, path)
    expect(qerrno.ENAMETOOLONG, "R-PROC-3", p.exec, path)
    assert fingerprint(k) == before


def test_R_PROC_1_names_at_the_limits_are_accepted() -> None:
    k = Kernel(ram=RAM)
    name = "/proc/boot/" + "n" * C.NAME_MAX
    p = k.spawn(name)
    assert file_type(p, name) == S_IFREG
    path = "/" + "d/" * 510 + "xy"  # 1023 bytes: PATH_MAX counts the terminating NUL
    assert len(path) == 1023
    assert p.exec(path) == 0


@pytest.mark.parametrize("path", [LONG_NAME, LONG_PATH])
def test_R_FS_1_create_file_refuses_over_long_paths(path: str) -> None:
    k = Kernel(ram=RAM)
    before = fingerprint(k)
    with pytest.raises(ValueError, match=r"NAME_MAX|PATH_MAX"):
        k.create_file(path, b"x")
    assert fingerprint(k) == before


# == R-SYS-4: ASLR keeps the image inside the user range ========================================


@pytest.mark.parametrize("arch", ["x86", "armle-v7", "x86_64", "aarch64"])
@pytest.mark.parametrize("seed", range(12))
def test_R_SYS_4_aslr_images_stay_inside_the_user_range(arch: str, seed: int) -> None:
    k = Kernel(arch=arch, aslr=True, seed=seed, ram=RAM)
    p = k.spawn()
    k.check_invariants()
    limit = 0xBFFFF000 if arch == "x86" else 0x7FFFF000 if arch == "armle-v7" else 2**39
    assert all(m.start >= PS and m.end <= limit for m in p.mappings())


def test_R_SYS_4_aslr_still_moves_32_bit_images() -> None:
    def text(seed: int) -> int:
        p = Kernel(arch="x86", aslr=True, seed=seed).spawn()
        return min(m.start for m in p.mappings() if m.kind == "elf")

    assert len({text(seed) for seed in range(8)}) == 8


# == R-PROC-6: procnto makes no calls ==========================================================


PROCNTO_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("mmap", (0, PS, RW, ANON, C.NOFD, 0)),
    ("mmap_device_memory", (0, PS, RW, 0, 0)),
    ("munmap", (PS, PS)),
    ("exec", ("/proc/boot/app",)),
    ("fork", ()),
    ("setuid", (5,)),
    ("getrlimit", (C.RLIMIT_AS,)),
    ("setrlimit", (C.RLIMIT_AS, 0, 0)),
    ("open", ("/dev/zero", C.O_RDONLY)),
    ("shm_open", ("/x", C.O_RDWR | C.O_CREAT, 0o600)),
    ("waitpid", (-1, 0)),
    ("exit", (0,)),
]


@pytest.mark.parametrize(("name", "args"), PROCNTO_CALLS)
def test_R_PROC_6_every_call_through_procnto_is_eperm(name: str, args: tuple[Any, ...]) -> None:
    k = Kernel(ram=RAM)
    k.spawn()
    procnto = k.process(1)
    before = fingerprint(k)
    err = expect(qerrno.EPERM, "R-PROC-6", getattr(procnto, name), *args)
    assert (err.call, err.pid) == (name, 1)
    row = CALLS[name]
    if row.on_libc and row.failure_value is not None:
        assert getattr(procnto.libc, name)(*args) == row.failure_value
        assert procnto.libc.errno == qerrno.EPERM
    assert fingerprint(k) == before
    k.check_invariants()


def test_R_PROC_6_procnto_spawns_nothing_through_its_handle() -> None:
    k = Kernel(ram=RAM)
    before = fingerprint(k)
    expect(qerrno.EPERM, "R-PROC-6", k.process(1).spawn)
    expect(qerrno.EPERM, "R-PROC-6", lambda: k.spawn(parent=k.process(1)))
    assert fingerprint(k) == before
    assert k.process(1).posix_madvise(0, PS, 0) == qerrno.EPERM
    assert k.process(1).procmgr_ability(0) == qerrno.EPERM


# == R-PROC-6: stale handles and opaque snapshots ==============================================


def test_R_PROC_6_a_handle_made_after_a_restored_snapshot_is_esrch() -> None:
    k = Kernel(ram=RAM)
    p = k.spawn(image=False)
    snap = k.snapshot()
    q = k.spawn(image=False)
    a = q.mmap(0, PS, RW, ANON, C.NOFD, 0)
    k.restore(snap)
    r = k.spawn(image=False)  # takes q's pid again in the live table
    assert r.pid == q.pid and r is not q
    before = fingerprint(k)
    for call, args in [
        (q.mmap, (0, PS, RW, ANON, C.NOFD, 0)),
        (q.munmap, (a, PS)),
        (q.fork, ()),
        (q.exec, ("/proc/boot/app",)),
        (q.exit, (0,)),
        (q.setrlimit, (C.RLIMIT_AS, 0, 0)),
        (q.spawn, ()),
    ]:
        err = expect(qerrno.ESRCH, "R-PROC-6", call, *args)
        assert err.pid == q.pid
    assert fingerprint(k) == before
    assert p.mmap(0, PS, RW, ANON, C.NOFD, 0)  # the restored handle still works
    assert r.mappings() == ()


def test_R_PROC_6_a_reaped_handle_is_esrch() -> None:
    k = Kernel(ram=RAM)
    parent = k.spawn(image=False)
    child = parent.spawn(image=False)
    child.exit(3)
    assert parent.waitpid(child.pid) == (child.pid, 3)
    expect(qerrno.ESRCH, "R-PROC-6", child.mmap, 0, PS, RW, ANON, C.NOFD, 0)


def test_R_PROC_6_snapshots_are_opaque_and_restore_refuses_anything_else() -> None:
    k = Kernel(ram=RAM)
    snap = k.snapshot()
    assert not isinstance(snap, dict)
    other = Kernel(ram=RAM).snapshot()
    for fake in ({}, {"_procs": {}}, None, 0, other):
        with pytest.raises(TypeError):
            k.restore(fake)
    k.restore(snap)
    k.restore(snap)  # reusable
    k.check_invariants()


# == R-PROC-6: errno per thread; the pid table under threads ===================================


def test_R_PROC_6_libc_errno_is_per_thread() -> None:
    k = Kernel(ram=RAM)
    p = k.spawn(image=False)
    seen: list[int] = []

    def other() -> None:
        p.libc.mmap(0, 0, RW, ANON, C.NOFD, 0)  # EINVAL in this thread
        seen.append(p.libc.errno)

    assert p.libc.close(7) == -1  # EBADF in this thread
    assert p.libc.errno == qerrno.EBADF
    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [qerrno.EINVAL]
    assert p.libc.errno == qerrno.EBADF, "another thread's failure changed this errno"


def test_R_PROC_6_processes_is_consistent_while_other_threads_spawn_and_reap() -> None:
    k = Kernel(ram=RAM)
    parent = k.spawn(image=False)
    errors: list[BaseException] = []
    stop = threading.Event()

    def churn() -> None:
        try:
            while not stop.is_set():
                child = parent.spawn(image=False)
                child.exit(0)
                parent.waitpid(child.pid)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for _ in range(3000):
            k.processes()
    except BaseException as exc:
        errors.append(exc)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []


# == R-CALL-5: the fields of a failure ========================================================


def test_R_CALL_5_setrlimit_failures_name_setrlimit() -> None:
    k = Kernel(ram=RAM)
    p = k.spawn(image=False)
    err = expect(qerrno.EINVAL, "SPEC 18", p.setrlimit, 99, 0, 0)
    assert (err.call, err.pid) == ("setrlimit", p.pid)


def test_R_CALL_5_mem_offset_overflow_allocates_nothing() -> None:
    k = Kernel(arch="x86", ram=0xC000_0000)
    p = k.spawn(image=False)
    low = k.meminfo().free - 0x4000_0000  # fill RAM up to 2 GiB: the next frame is above
    p.mmap(0, low, RW, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    lazy = p.mmap(0, PS, RW, ANON | C.MAP_LAZY, C.NOFD, 0)
    before = fingerprint(k)
    expect(qerrno.EOVERFLOW, "R-MOFF-2", p.mem_offset, lazy, C.NOFD, PS)
    assert fingerprint(k) == before
    paddr, _ = p.mem_offset64(lazy, C.NOFD, PS)  # the 64-bit call gives the frame
    assert paddr >= 0x8000_0000
    k.check_invariants()


# == R-CALL-5: a failing call uses up no pid and no ASLR draw ===================================


def twin_kernels() -> tuple[Kernel, Kernel]:
    return Kernel(aslr=True, seed=7, ram=RAM), Kernel(aslr=True, seed=7, ram=RAM)


def test_R_CALL_5_failing_spawn_consumes_no_pid_and_no_draw() -> None:
    a, b = twin_kernels()
    pa = a.spawn(image=False)
    pb = b.spawn(image=False)
    pa.setrlimit(C.RLIMIT_AS, 64 * PS, 64 * PS)
    expect(qerrno.ENOMEM, "R-", pa.spawn)
    pa.setrlimit(C.RLIMIT_AS, 2**64 - 3, 2**64 - 3)
    assert pa.spawn().mappings() == pb.spawn().mappings()
    assert fingerprint(a) == fingerprint(b)


def test_R_CALL_5_failing_exec_consumes_no_draw() -> None:
    a, b = twin_kernels()
    pa, pb = a.spawn(), b.spawn()
    pa.setrlimit(C.RLIMIT_AS, 64 * PS, 64 * PS)
    expect(qerrno.ENOMEM, "R-", pa.exec, "/proc/boot/x")
    pa.setrlimit(C.RLIMIT_AS, 2**64 - 3, 2**64 - 3)
    pa.exec("/proc/boot/y")
    pb.exec("/proc/boot/y")
    assert fingerprint(a) == fingerprint(b)


def test_R_CALL_5_failing_fork_consumes_no_pid() -> None:
    k = Kernel(ram=4 << 20)
    p = k.spawn(image=False)
    p.mmap(0, 3 * (1 << 20), RW, ANON, C.NOFD, 0)  # the copy would not fit
    expect(qerrno.ENOMEM, "R-PROC-2", p.fork)
    assert k.spawn(image=False).pid == p.pid + 1


def test_R_CALL_5_failing_aslr_mmap_consumes_no_draw() -> None:
    a, b = twin_kernels()
    pa, pb = a.spawn(image=False), b.spawn(image=False)
    pa.setrlimit(C.RLIMIT_AS, 4 * PS, 4 * PS)
    expect(qerrno.ENOMEM, "R-MMAP", pa.mmap, 0, 8 * PS, RW, ANON, C.NOFD, 0)
    pa.setrlimit(C.RLIMIT_AS, 2**64 - 3, 2**64 - 3)
    assert pa.mmap(0, PS, RW, ANON, C.NOFD, 0) == pb.mmap(0, PS, RW, ANON, C.NOFD, 0)


# == R-CALL-5 property: failing lifecycle calls change and consume nothing ======================

Op = tuple[str, int, Any]

ops = st.lists(
    st.tuples(
        st.sampled_from(["spawn", "fork", "exec", "exit", "waitpid", "setuid", "setrlimit",
                         "mmap"]),
        st.integers(0, 5),  # which process makes the call (5: procnto)
        st.integers(0, 7),  # the call's variant
    ),
    max_size=16,
)  # fmt: skip

RAM_SMALL = 3 << 20  # room for a few images: spawn, exec, fork and mmap run short of RAM
PATHS = ["/proc/boot/a", "/proc/boot/b", "/dev/zero", "/", LONG_NAME, "/dev/shmem/s"]


def apply(k: Kernel, op: Op) -> Callable[[], object]:
    """The call ``op`` names, against ``k``'s live processes (procnto included)."""
    name, who, variant = op
    procs = k.processes()
    p = procs[0] if who == 5 or len(procs) == 1 else procs[1 + who % (len(procs) - 1)]
    if name == "spawn":
        return lambda: p.spawn(PATHS[variant % len(PATHS)], image=variant % 2 == 0)
    if name == "fork":
        return p.fork
    if name == "exec":
        return lambda: p.exec(PATHS[variant % len(PATHS)])
    if name == "exit":
        return lambda: p.exit(variant)
    if name == "waitpid":
        return lambda: p.waitpid(-1 if variant < 4 else variant, 0x40 if variant % 2 else 0)
    if name == "setuid":
        return lambda: p.setuid(variant * 500)
    if name == "setrlimit":
        size = (variant + 1) * 64 * PS
        return lambda: p.setrlimit(C.RLIMIT_AS, size, size if variant % 4 else size // 2)
    return lambda: p.mmap(0, (variant + 1) * 128 * PS, RW, ANON, C.NOFD, 0)


@settings(max_examples=60, deadline=None)
@given(ops)
def test_R_CALL_5_failing_lifecycle_calls_change_and_consume_nothing(seq: list[Op]) -> None:
    k = Kernel(aslr=True, seed=3, ram=RAM_SMALL)
    k.spawn()
    done: list[Op] = []
    for op in seq:
        call = apply(k, op)
        before = fingerprint(k)
        try:
            call()
        except QnxError:
            assert fingerprint(k) == before, f"failing {op} changed the kernel"
        else:
            done.append(op)
        k.check_invariants()
    # The same successful calls alone give the same kernel: same pids, same addresses.
    twin = Kernel(aslr=True, seed=3, ram=RAM_SMALL)
    twin.spawn()
    for op in done:
        apply(twin, op)()
    assert fingerprint(twin) == fingerprint(k)
    assert outcome(lambda: twin.spawn(image=False).pid) == outcome(lambda: k.spawn(image=False).pid)
    probe = twin.processes()[-1]
    assert outcome(apply(twin, ("mmap", probe.pid, 0))) == outcome(apply(k, ("mmap", probe.pid, 0)))


def outcome(call: Callable[[], object]) -> object:
    """What a call gave: its result, or its errno."""
    try:
        return call()
    except QnxError as err:
        return err.name
