"""The call trace (``Kernel(trace=True)``): events, their mapping diffs and explanations."""

from __future__ import annotations

import pytest
from support import ANON, PS, RW, SHARED_ANON

import qnxsim.trace
from qnxsim import Kernel, Mapping, Process, QnxError, TraceEvent
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.trace import TraceList, describe, diff, explain, format_arg, format_call


def traced() -> tuple[Kernel, Process]:
    k = Kernel(ram=64 << 20, trace=True)
    return k, k.spawn(image=False)


def only(records: tuple[Mapping, ...], start: int) -> Mapping:
    return next(r for r in records if r.start == start)


# -- the list and tracing off --------------------------------------------------------------


def test_trace_is_a_list_of_events() -> None:
    k, p = traced()
    p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    assert isinstance(k.trace, list) and isinstance(k.trace, TraceList)
    assert len(k.trace) == 2  # spawn, mmap
    assert [e.call for e in k.trace] == ["spawn", "mmap"]
    assert k.trace[-1] is k.trace[1]
    assert all(isinstance(e, TraceEvent) for e in k.trace)
    assert "<ol" in k.trace._repr_html_()
    tail = k.trace[-1:]
    assert isinstance(tail, TraceList) and tail == [k.trace[1]]
    assert tail.explain().startswith("1. pid 2 called mmap(")


def test_tracing_off_records_nothing_and_copies_no_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("trace code ran with tracing off")

    monkeypatch.setattr(qnxsim.trace, "watch", refuse)
    monkeypatch.setattr(qnxsim.trace, "record", refuse)
    k = Kernel(ram=64 << 20)
    p = k.spawn()
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    p.munmap(a, PS)
    with pytest.raises(QnxError):
        p.mmap(0, 0, RW, ANON, C.NOFD, 0)
    k.process(p.fork()).exit(0)
    assert len(k.trace) == 0


def test_events_are_frozen() -> None:
    k, p = traced()
    p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    with pytest.raises(AttributeError):
        k.trace[-1].errno = 1  # type: ignore[misc]


# -- one event per call --------------------------------------------------------------------


def test_mmap_event_fields_and_added_record() -> None:
    k, p = traced()
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    ev = k.trace[-1]
    assert (ev.call, ev.pid, ev.args, ev.result) == ("mmap", p.pid, (0, 2 * PS, RW, ANON, -1, 0), a)
    assert (ev.errno, ev.reason, ev.ok) == (0, "", True)
    assert ev.added == ((p.pid, p.mapping_at(a)),)
    assert ev.removed == () and ev.changed == ()
    assert ev.pids() == (p.pid,)


def test_failed_call_event_has_errno_and_rule_and_no_changes() -> None:
    k, p = traced()
    with pytest.raises(QnxError):
        p.mmap(0, 0, RW, ANON, C.NOFD, 0)
    ev = k.trace[-1]
    assert ev.call == "mmap" and ev.result is None and not ev.ok
    assert ev.errno == qerrno.EINVAL
    assert ev.reason.startswith("R-MMAP-2")
    assert ev.added == ev.removed == ev.changed == ()
    text = explain(ev)
    assert "EINVAL (22, Invalid argument)" in text and "R-MMAP-2" in text
    assert "changed nothing (R-CALL-5)" in text


def test_munmap_of_a_whole_mapping_removes_its_record() -> None:
    k, p = traced()
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    p.munmap(a, 2 * PS)
    ev = k.trace[-1]
    assert ev.removed == ((p.pid, rec),)
    assert ev.added == () and ev.changed == ()


def test_munmap_of_a_middle_page_changes_the_head_and_adds_the_tail() -> None:
    k, p = traced()
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    whole = p.mapping_at(a)
    p.munmap(a + PS, PS)
    ev = k.trace[-1]
    head, tail = p.mappings()
    assert ev.changed == ((p.pid, whole, head),)
    assert ev.added == ((p.pid, tail),)
    assert ev.removed == ()
    assert (head.start, head.end, tail.start, tail.end) == (a, a + PS, a + 2 * PS, a + 3 * PS)


def test_mprotect_split_shows_the_three_pieces() -> None:
    k, p = traced()
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    whole = p.mapping_at(a)
    p.mprotect(a + PS, PS, C.PROT_READ)
    ev = k.trace[-1]
    first, middle, last = p.mappings()
    assert ev.changed == ((p.pid, whole, first),)
    assert ev.added == ((p.pid, middle), (p.pid, last))
    assert middle.prot == C.PROT_READ and first.prot == last.prot == RW
    assert ev.removed == ()


def test_mprotect_of_a_whole_mapping_is_a_change_of_prot() -> None:
    k, p = traced()
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    old = p.mapping_at(a)
    p.mprotect(a, 2 * PS, C.PROT_READ)
    ev = k.trace[-1]
    assert len(ev.changed) == 1
    pid, before, after = ev.changed[0]
    assert (pid, before) == (p.pid, old)
    assert (after.start, after.end, after.prot) == (a, a + 2 * PS, C.PROT_READ)


def test_map_fixed_replacement_is_a_change() -> None:
    k, p = traced()
    a = p.mmap(0, 2 * PS, RW, ANON, C.NOFD, 0)
    old = p.mapping_at(a)
    p.mmap(a, 2 * PS, C.PROT_READ, SHARED_ANON | C.MAP_FIXED, C.NOFD, 0)
    ev = k.trace[-1]
    assert [(pid, o) for pid, o, _ in ev.changed] == [(p.pid, old)]
    assert ev.changed[0][2].kind == "shared-anon"


def test_mmap_peer_adds_in_the_target_and_not_in_the_caller() -> None:
    k = Kernel(ram=64 << 20, trace=True)
    server = k.spawn(uid=0)
    client = k.spawn(uid=1000)
    before = server.mappings()
    addr = server.mmap_peer(client.pid, 0, 2 * PS, RW, SHARED_ANON, C.NOFD, 0)
    ev = k.trace[-1]
    assert ev.call == "mmap_peer" and ev.pid == server.pid and ev.result == addr
    assert ev.added == ((client.pid, client.mapping_at(addr)),)
    assert ev.pids() == (client.pid,)
    assert server.mappings() == before
    assert f"In pid {client.pid} it added {addr:#x}-" in explain(ev)
    server.munmap_peer(client.pid, addr, 2 * PS)
    assert k.trace[-1].removed == ev.added


def test_mmap_peer_to_a_missing_pid_traces_esrch() -> None:
    k, p = traced()
    with pytest.raises(QnxError):
        p.mmap_peer(99999, 0, PS, RW, SHARED_ANON, C.NOFD, 0)
    ev = k.trace[-1]
    assert ev.errno == qerrno.ESRCH and "R-PEER-2" in ev.reason
    assert ev.added == ev.removed == ev.changed == ()


def test_fork_adds_the_childs_records() -> None:
    k = Kernel(ram=64 << 20, trace=True)
    parent = k.spawn()
    a = parent.mmap(0, PS, RW, ANON, C.NOFD, 0)
    parent.mmap(0, PS, RW, SHARED_ANON, C.NOFD, 0)
    pid = parent.fork()
    ev = k.trace[-1]
    child = k.process(pid)
    assert ev.call == "fork" and ev.result == pid
    assert ev.added == tuple((pid, r) for r in child.mappings())
    assert ev.removed == ev.changed == ()
    assert child.mapping_at(a) == parent.mapping_at(a)
    assert explain(ev).startswith(f"pid {parent.pid} called fork() and it returned pid {pid}.")


def test_spawn_and_exit_show_the_image_coming_and_going() -> None:
    k = Kernel(ram=64 << 20, trace=True)
    p = k.spawn("/proc/boot/app")
    spawn = k.trace[-1]
    assert (spawn.call, spawn.pid, spawn.args, spawn.result) == (
        "spawn",
        1,
        ("/proc/boot/app",),
        p.pid,
    )
    records = p.mappings()
    assert spawn.added == tuple((p.pid, r) for r in records)
    p.exit(3)
    ev = k.trace[-1]
    assert (ev.call, ev.args, ev.result) == ("exit", (3,), None)
    assert ev.removed == tuple((p.pid, r) for r in records)
    assert "and it succeeded" in explain(ev)


def test_same_calls_give_the_same_trace() -> None:
    def scenario() -> TraceList:
        k = Kernel(ram=64 << 20, trace=True)
        server, client = k.spawn(uid=0), k.spawn(uid=1000)
        fd = server.shm_open("/buf", C.O_RDWR | C.O_CREAT, 0o600)
        server.ftruncate(fd, 2 * PS)
        server.mmap_peer(client.pid, 0, 2 * PS, RW, C.MAP_SHARED, fd, 0)
        a = client.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
        client.mprotect(a, PS, C.PROT_NONE)
        with pytest.raises(QnxError):
            client.mmap(0, 0, RW, ANON, C.NOFD, 0)
        client.fork()
        return k.trace

    first, second = scenario(), scenario()
    assert first == second
    assert [explain(e) for e in first] == [explain(e) for e in second]


# -- explanations ----------------------------------------------------------------------------


def test_explain_names_constants_result_and_changes() -> None:
    k, p = traced()
    a = p.mmap(0, PS, RW, ANON, C.NOFD, 0)
    assert explain(k.trace[-1]) == (
        f"pid {p.pid} called mmap(0, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANON, NOFD, 0)"
        f" and it returned {a:#x}. In pid {p.pid} it added {a:#x}-{a + PS:#x} (4 KiB, rw-, anon)."
    )
    assert k.trace[-1].explain() == explain(k.trace[-1])
    assert k.trace.explain().startswith("1. pid 1 called spawn(")


def test_explain_of_a_call_without_changes() -> None:
    k, p = traced()
    p.shm_open("/x", C.O_RDWR | C.O_CREAT, 0o600)
    assert explain(k.trace[-1]) == (
        f'pid {p.pid} called shm_open("/x", O_RDWR|O_CREAT, 0o600) and it returned 0. '
        "No mapping changed."
    )


def test_format_call_spells_constants() -> None:
    assert format_call("mmap_peer", (5, 0, 8192, RW, C.MAP_SHARED, C.NOFD, 0)) == (
        "mmap_peer(5, 0, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, NOFD, 0)"
    )
    assert format_call("msync", (0x8000000, PS, C.MS_SYNC | C.MS_INVALIDATE)) == (
        "msync(0x8000000, 4096, MS_SYNC|MS_INVALIDATE)"
    )
    assert format_arg("prot", C.PROT_NONE) == "PROT_NONE"
    assert format_arg("rlimit", C.RLIMIT_AS) == "RLIMIT_AS"
    assert format_arg("rlim", C.RLIM_INFINITY) == "RLIM_INFINITY"


def test_describe_and_diff_of_nothing() -> None:
    rec = Mapping(0x1000, 0x3000, 0x2000, RW, SHARED_ANON, 0, "shm", "/dev/shmem/x", True)
    assert describe(rec) == "0x1000-0x3000 (8 KiB, rw-, shm, /dev/shmem/x, locked)"
    assert diff({2: [rec]}, {2: [rec]}) == ((), (), ())


def test_event_picture_shows_before_and_after() -> None:
    k, p = traced()
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    p.mprotect(a + PS, PS, C.PROT_READ)
    html = k.trace[-1]._repr_html_()
    assert html.count("<svg") == 1
    assert ">before<" in html and ">after<" in html
    assert html.count('class="mapping"') == 1 + 3
