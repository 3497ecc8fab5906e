"""Hostile arguments to every public call: DESIGN's "Bad input" promises and R-CALL-5.

Every row of the call table (``qnxsim.calls.TABLE``) is called by hypothesis with values
a careless or hostile caller could pass: huge and negative ints, every single bit, the
edges of each C type, values of the wrong Python type, pids of exited, reaped and unknown
processes and of procnto, strings with odd names.  Whatever happens must be one of:

- success (and the invariants hold);
- ``QnxError`` with a QNX errno and a reason, and the machine exactly as it was (R-CALL-5);
- ``MemoryFault`` from a memory access, with no byte moved (R-FAULT-2);
- ``TypeError`` when some argument has the wrong Python type (bool included), changing
  nothing;
- ``ValueError`` for a Python-level size out of range (``read_memory``, ``check_access``,
  ``read``, ``pread``) or a bad access kind, changing nothing.

Nothing else may escape (no OverflowError, MemoryError, KeyError, IndexError ...), and no
call may build an unbounded Python object.  A second test runs hostile calls from four
threads on one kernel.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qnxsim import Kernel, MemoryFault, Process, QnxError, calls
from qnxsim import constants as C
from qnxsim import errno as E

PS = 4096
RAM = 16 << 20
#: Calls whose size is a Python-level count (ValueError outside [0, ADDR_MAX]).
PYTHON_SIZES = {"read_memory", "check_access", "read", "pread"}
ROWS = {row.name: row for row in calls.TABLE}
WRONG_TYPES: list[object] = [None, 1.5, "1", b"1", True, False, [1], (1,), object()]
EDGES = [
    0, 1, -1, 2, 3, 4095, 4096, 4097, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32 - 1,
    2**32, 2**39, 2**44, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 4096, 2**64 - 1,
    2**64, 2**64 + 4096, 2**100, -(2**100),
]  # fmt: skip
NAMES = ["", "/", "/x", "/dev/shmem/x", "/dev/zero", "/dev/mem", "/..", "/a/b", "x" * 300,
         "/" + "y" * 300, "\x00", "/memory", "sysram", "/proc/boot/app", "/dev/shmem/"]  # fmt: skip
#: Counted while the tests run (the report quotes them).
COUNTS = {"inputs": 0, "ok": 0, "QnxError": 0, "TypeError": 0, "ValueError": 0, "fault": 0}


class World:
    """A kernel with processes in every state a pid can name."""

    def __init__(self) -> None:
        k = self.k = Kernel(ram=RAM)
        self.root = k.spawn(uid=0, image=False)
        self.user = k.spawn(uid=1000, image=False)
        rw = C.PROT_READ | C.PROT_WRITE
        self.a = self.root.mmap(0, 4 * PS, rw, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
        self.fd = self.root.shm_open("/adv", C.O_RDWR | C.O_CREAT, 0o666)
        self.root.ftruncate(self.fd, 2 * PS)
        self.s = self.root.mmap(0, 2 * PS, rw, C.MAP_SHARED, self.fd, 0)
        self.root.write_memory(self.a, b"private")
        self.root.write_memory(self.s, b"shared")
        k.create_file("/etc/data", b"file contents")
        zombie = self.root.spawn(image=False)  # a child of root that exited: a zombie
        zombie.exit(3)
        self.zombie = zombie
        reaped = k.spawn(image=False)  # procnto's child: reaped at once when it exits
        reaped.exit(0)
        self.reaped = reaped
        self.procnto = k.process(C.PROCNTO_PID)
        self.pids = [0, 1, self.root.pid, self.user.pid, zombie.pid, reaped.pid, 99999]

    def observe(self) -> tuple[Any, ...]:
        """What a failing call must leave as it was (R-CALL-5)."""
        k = self.k
        procs = tuple(
            (p.pid, p.ppid, p.state, (p.ruid, p.euid, p.suid, p.rgid, p.egid, p.sgid),
             tuple(sorted(p.rlimits.items())), p.mappings(), tuple(sorted(p.fdt.fds)))
            for p in k.processes()
        )  # fmt: skip
        data = (self.root.read_memory(self.a, 8), self.root.read_memory(self.s, 8))
        return procs, k.meminfo(), data, tuple(sorted(k.paths.nodes))


def int_values(w: World) -> st.SearchStrategy[object]:
    useful = [w.a, w.a + PS, w.s, w.fd, PS, 2 * PS, C.NOFD, *w.pids]
    return st.one_of(
        st.sampled_from(EDGES + useful),
        st.integers(0, 70).map(lambda b: 1 << b),
        st.integers(-(2**70), 2**70),
    )


def value_for(convert: str, w: World) -> st.SearchStrategy[object]:
    """Values of the right Python type for the parameter (hostile ones included)."""
    if convert in ("str",):
        return st.one_of(st.sampled_from(NAMES), st.text(max_size=20))
    if convert == "shm_name":
        return st.sampled_from([*NAMES, C.SHM_ANON])
    if convert == "bytes":
        return st.one_of(
            st.binary(max_size=64),
            st.integers(0, 3 * PS).map(bytes),
            st.sampled_from([bytearray(b"ab"), memoryview(b"cd")]),
        )
    if convert == "object":  # check_access's access kind
        return st.sampled_from(["r", "w", "x", "rw", "", "R"])
    return int_values(w)


def wrong_type(convert: str, value: object) -> bool:
    """Whether ``value`` is of a type the parameter refuses (TypeError is then right)."""
    if convert in ("str",):
        return not isinstance(value, str)
    if convert == "shm_name":
        return not isinstance(value, str) and value is not C.SHM_ANON
    if convert == "bytes":
        return not isinstance(value, bytes | bytearray | memoryview)
    if convert == "object":
        return not isinstance(value, str)
    return isinstance(value, bool) or not isinstance(value, int)


def draw_args(data: st.DataObject, row: calls.Call, w: World) -> tuple[list[object], bool]:
    args: list[object] = []
    wrong = False
    # At most one argument of a wrong Python type (-1: none), so that most calls get past
    # the conversions to the rules.
    bad_at = data.draw(st.integers(-1, len(row.args) - 1) if row.args else st.just(-1))
    for i, arg in enumerate(row.args):
        strategy = value_for(arg.convert, w)
        if i == bad_at:
            strategy = st.one_of(strategy, st.sampled_from(WRONG_TYPES))
        value = data.draw(strategy, label=arg.name)
        wrong |= wrong_type(arg.convert, value)
        args.append(value)
    if row.variadic is not None:
        extra = data.draw(st.lists(value_for(row.variadic.convert, w), max_size=4), label="more")
        wrong |= any(wrong_type(row.variadic.convert, v) for v in extra)
        args.extend(extra)
    return args, wrong


def invoke(caller: Process, name: str, args: list[object]) -> object:
    """``caller.name(*args)``, passing keyword-only parameters (spawn's ``image``) by name."""
    method = getattr(caller, name)
    params = list(inspect.signature(method).parameters.values())
    positional: list[object] = []
    keywords: dict[str, object] = {}
    for i, value in enumerate(args):
        if i < len(params) and params[i].kind is inspect.Parameter.KEYWORD_ONLY:
            keywords[params[i].name] = value
        else:
            positional.append(value)
    return method(*positional, **keywords)


def check_one(w: World, caller: Process, name: str, args: list[object], wrong: bool) -> None:
    """One hostile call and the promises of DESIGN's "Bad input" about its outcome."""
    COUNTS["inputs"] += 1
    before = w.observe()
    try:
        invoke(caller, name, args)
        COUNTS["ok"] += 1
    except QnxError as err:
        COUNTS["QnxError"] += 1
        assert err.errno in E.errorcode and err.reason, repr(err)
        assert err.reason.startswith(("R-", "[SIM]")), f"reason names no rule: {err!r}"
        assert w.observe() == before, f"R-CALL-5: {name}{tuple(args)} -> {err}"
    except MemoryFault as fault:
        COUNTS["fault"] += 1
        assert name in ("read_memory", "write_memory", "check_access"), fault
        assert w.observe() == before, "R-FAULT-2: a fault moves nothing"
    except TypeError as err:
        COUNTS["TypeError"] += 1
        assert wrong, f"{name}{tuple(args)}: TypeError without a wrongly typed value: {err}"
        assert w.observe() == before
    except ValueError as err:
        COUNTS["ValueError"] += 1
        assert name in PYTHON_SIZES, f"{name}{tuple(args)}: {err}"
        assert w.observe() == before
    w.k.check_invariants()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow],
    database=None,
)  # fmt: skip
@given(data=st.data())
def test_R_CALL_5_hostile_arguments_to_every_call(data: st.DataObject) -> None:
    w = World()
    name = data.draw(st.sampled_from(sorted(ROWS)), label="call")
    caller = data.draw(st.sampled_from([w.root, w.user, w.zombie, w.reaped]), label="caller")
    args, wrong = draw_args(data, ROWS[name], w)
    check_one(w, caller, name, args, wrong)


@pytest.mark.parametrize("name", sorted(ROWS))
@settings(max_examples=12, deadline=None, database=None)
@given(data=st.data())
def test_R_CALL_5_hostile_arguments_per_call(name: str, data: st.DataObject) -> None:
    """Each call by itself, so that no call goes unfuzzed."""
    w = World()
    caller = data.draw(st.sampled_from([w.root, w.user]), label="caller")
    args, wrong = draw_args(data, ROWS[name], w)
    check_one(w, caller, name, args, wrong)


def test_R_PROC_4_exited_callers_make_no_calls() -> None:
    w = World()
    for proc in (w.zombie, w.reaped):
        before = w.observe()
        with pytest.raises(QnxError) as info:
            proc.mmap(0, PS, C.PROT_READ, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
        assert info.value.errno == E.ESRCH
        assert w.observe() == before


def test_hostile_calls_from_four_threads() -> None:
    """One kernel, four threads of hostile calls: no unexpected exception, invariants
    hold, and each thread's libc.errno is its own (R-PROC-6)."""
    w = World()
    errors: list[BaseException] = []
    names = [n for n in sorted(ROWS) if n not in ("exit", "exec", "fork", "spawn", "waitpid")]

    def work(seed: int) -> None:
        import random

        rnd = random.Random(seed)
        try:
            for _ in range(150):
                name = rnd.choice(names)
                row = ROWS[name]
                args = [_simple(a.convert, rnd, w) for a in row.args]
                with contextlib.suppress(QnxError, MemoryFault, TypeError, ValueError):
                    invoke(w.root, name, args)
                w.user.libc.munmap(0, 0)  # EINVAL (R-UNMAP-2), in this thread
                assert w.user.libc.errno == E.EINVAL
        except BaseException as err:  # reported below, with the thread's seed
            errors.append(err)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    w.k.check_invariants()


def _simple(convert: str, rnd: Any, w: World) -> object:
    if convert in ("str", "shm_name"):
        return rnd.choice(NAMES)
    if convert == "bytes":
        return bytes(rnd.randrange(64))
    if convert == "object":
        return rnd.choice(["r", "w", "x"])
    return rnd.choice([*EDGES, w.a, w.s, w.fd, PS, *w.pids])
