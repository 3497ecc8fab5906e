"""Call trace events (``Kernel(trace=True)``), their mapping diffs and explanations.

A ``TraceEvent`` records one call: who made it, the arguments, the result or errno and
reason, and the mapping records it added, removed or changed.  ``explain`` turns an event
into a paragraph with symbolic constants.  The kernel's hook is two calls: ``watch``
before a call and ``record`` after it; nothing here runs when tracing is off.
"""

from __future__ import annotations

import functools
import weakref
from collections import deque
from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from typing import TYPE_CHECKING, Any, SupportsIndex, overload

import attrs

from qnxsim import constants as C
from qnxsim.addrspace import Mapping
from qnxsim.calls import CALLS
from qnxsim.errno import errorcode, strerror
from qnxsim.profile import PROFILES
from qnxsim.render import prot_text

if TYPE_CHECKING:
    from qnxsim.kernel import Kernel

Records = dict[int, tuple[Mapping, ...]]


@attrs.frozen
class TraceEvent:
    """One call as the kernel saw it (``Kernel(trace=True)``).

    ``errno`` is 0 on success, and ``reason`` then says which C conversions changed an
    argument (R-CALL-2: ``pid 2**80 is 0 as a 32-bit pid_t ...``), or is empty; ``result``
    is None on failure.
    ``added`` and ``removed`` hold ``(pid, record)`` pairs; ``changed`` holds
    ``(pid, before, after)`` for a record that still starts at the same address but was
    trimmed, grown, split or re-protected.  All three are sorted by pid and address.
    """

    call: str
    pid: int
    args: tuple[Any, ...]
    result: Any
    errno: int
    reason: str
    added: tuple[tuple[int, Mapping], ...] = ()
    removed: tuple[tuple[int, Mapping], ...] = ()
    changed: tuple[tuple[int, Mapping, Mapping], ...] = ()
    #: The kernel's QNX version: MAP_* flags are named by its profile (SPEC 19).
    version: str = "8.0"

    @property
    def ok(self) -> bool:
        """True when the call succeeded."""
        return self.errno == 0

    def pids(self) -> tuple[int, ...]:
        """The processes whose mappings the call changed, ascending."""
        seen = {p for p, _ in self.added} | {p for p, _ in self.removed}
        seen |= {p for p, _, _ in self.changed}
        return tuple(sorted(seen))

    def explain(self) -> str:
        """``explain(self)``."""
        return explain(self)

    def _repr_html_(self) -> str:
        from qnxsim.html import before_after_html

        before, after = self.sides()
        return before_after_html(explain(self), before, after, _map_names(self.version))

    def sides(self) -> tuple[Records, Records]:
        """Per pid, the records the call took away and the ones it left in their place."""
        before: dict[int, list[Mapping]] = {p: [] for p in self.pids()}
        after: dict[int, list[Mapping]] = {p: [] for p in self.pids()}
        for pid, rec in self.removed:
            before[pid].append(rec)
        for pid, rec in self.added:
            after[pid].append(rec)
        for pid, old, new in self.changed:
            before[pid].append(old)
            after[pid].append(new)
        return (
            {p: tuple(sorted(rs, key=_start)) for p, rs in before.items()},
            {p: tuple(sorted(rs, key=_start)) for p, rs in after.items()},
        )


class TraceList(list[TraceEvent]):
    """``Kernel.trace``: a plain list of ``TraceEvent`` that also draws itself in Jupyter.

    A slice is a ``TraceList`` too, so ``k.trace[-3:]`` draws the last three calls.
    """

    @overload
    def __getitem__(self, index: SupportsIndex) -> TraceEvent: ...

    @overload
    def __getitem__(self, index: slice) -> TraceList: ...

    def __getitem__(self, index: SupportsIndex | slice) -> TraceEvent | TraceList:
        if isinstance(index, slice):
            return TraceList(super().__getitem__(index))
        return super().__getitem__(index)

    def explain(self) -> str:
        """One paragraph per event, numbered."""
        return "\n".join(f"{i}. {explain(e)}" for i, e in enumerate(self, 1))

    def _repr_html_(self) -> str:
        from qnxsim.html import trace_html

        names = _map_names(self[0].version) if self else C.MAP_FLAG_NAMES
        return trace_html([(explain(e), *e.sides()) for e in self], names)


def _map_names(version: str) -> dict[int, str]:
    """The MAP_* flag names of QNX ``version`` (SPEC 19)."""
    return PROFILES[version].map_flag_names


@functools.cache
def _handle_option_names(version: str) -> dict[int, str]:
    """Value -> name of the SHM_CREATE_HANDLE_OPT_* bits QNX ``version`` defines (SPEC 18:
    SUBRANGE is 8.0's; 6.4 has none)."""
    return {value: name for name, value in PROFILES[version].handle_options}


def _start(rec: Mapping) -> int:
    return rec.start


# -- the kernel's hook --------------------------------------------------------------------


def _records(kernel: Kernel, pid: int) -> tuple[Mapping, ...]:
    proc = kernel.lookup(pid)
    return proc.space.records() if proc is not None else ()


def watch(kernel: Kernel, call: str, pid: int, args: tuple[Any, ...]) -> Records:
    """The records of every process a call may change (the caller, and the process its
    row's ``target`` argument names), taken before it runs.  O(n)."""
    pids = [pid]
    row = CALLS.get(call)
    i = row.target if row is not None else None
    if i is not None and i < len(args) and isinstance(args[i], int) and args[i] not in (0, pid):
        pids.append(args[i])
    return {p: _records(kernel, p) for p in pids}


def record(
    kernel: Kernel,
    call: str,
    pid: int,
    args: tuple[Any, ...],
    before: Records,
    result: Any = None,
    errno: int = 0,
    reason: str = "",
) -> TraceEvent:
    """The event for a finished call: its outcome and the diff of ``before`` against now."""
    pids = list(before)
    row = CALLS.get(call)
    if not errno and row is not None and row.result == "new_pid" and isinstance(result, int):
        pids.append(result)
    after = {p: _records(kernel, p) for p in pids}
    added, removed, changed = diff({p: before.get(p, ()) for p in pids}, after)
    return TraceEvent(
        call, pid, args, result, errno, reason, added, removed, changed, kernel.profile.version
    )


def diff(
    before: MappingABC[int, Iterable[Mapping]], after: MappingABC[int, Iterable[Mapping]]
) -> tuple[
    tuple[tuple[int, Mapping], ...],
    tuple[tuple[int, Mapping], ...],
    tuple[tuple[int, Mapping, Mapping], ...],
]:
    """``(added, removed, changed)`` between two sets of records per pid.  O(n log n).

    A record in ``after`` that starts where a vanished record started is a change of it.

    >>> a = Mapping(0x1000, 0x3000, 0x2000, 0x300, 0x80002, 0x1000, "anon", None, False)
    >>> b = attrs.evolve(a, end=0x2000, size=0x1000)
    >>> c = attrs.evolve(a, start=0x2000, size=0x1000, prot=0x100, offset=0x2000)
    >>> added, removed, changed = diff({2: [a]}, {2: [b, c]})
    >>> [hex(r.start) for _, r in added], removed, [hex(n.end) for _, _, n in changed]
    (['0x2000'], (), ['0x2000'])
    """
    added: list[tuple[int, Mapping]] = []
    removed: list[tuple[int, Mapping]] = []
    changed: list[tuple[int, Mapping, Mapping]] = []
    for pid in sorted(set(before) | set(after)):
        old = set(before.get(pid, ()))
        new = set(after.get(pid, ()))
        came = {r.start: r for r in new - old}
        for rec in sorted(old - new, key=_start):
            twin = came.pop(rec.start, None)
            if twin is None:
                removed.append((pid, rec))
            else:
                changed.append((pid, rec, twin))
        added.extend((pid, came[s]) for s in sorted(came))
    added.sort(key=lambda pr: (pr[0], pr[1].start))
    return tuple(added), tuple(removed), tuple(changed)


# -- symbolic formatting ------------------------------------------------------------------


def _bit_names(prefix: str, skip: Iterable[str] = ()) -> dict[int, str]:
    """Single-bit constants named ``prefix*``, the first name of each value winning."""
    table: dict[int, str] = {}
    for name, value in vars(C).items():
        if not name.startswith(prefix) or name in skip or not isinstance(value, int):
            continue
        if value > 0 and value & (value - 1) == 0:
            table.setdefault(value, name)
    return table


def _value_names(prefix: str, skip: Iterable[str] = ()) -> dict[int, str]:
    table: dict[int, str] = {}
    for name, value in vars(C).items():
        if name.startswith(prefix) and name not in skip and isinstance(value, int):
            table.setdefault(value, name)
    return table


_MS = _bit_names("MS_")
_MCL = _bit_names("MCL_")
_SHMCTL = _bit_names("SHMCTL_", skip=("SHMCTL_FLAG_MASK",))
_O_BITS = _bit_names("O_", skip=("O_RDONLY", "O_WRONLY", "O_RDWR", "O_EXEC", "O_ACCMODE"))
_O_ACCESS = {C.O_RDONLY: "O_RDONLY", C.O_WRONLY: "O_WRONLY", C.O_RDWR: "O_RDWR", C.O_EXEC: "O_EXEC"}
_MADV = _value_names("POSIX_MADV_")
_SEEK = _value_names("SEEK_")
_RLIMIT = {
    C.RLIMIT_CPU: "RLIMIT_CPU", C.RLIMIT_FSIZE: "RLIMIT_FSIZE", C.RLIMIT_DATA: "RLIMIT_DATA",
    C.RLIMIT_STACK: "RLIMIT_STACK", C.RLIMIT_CORE: "RLIMIT_CORE",
    C.RLIMIT_NOFILE: "RLIMIT_NOFILE", C.RLIMIT_AS: "RLIMIT_AS",
    C.RLIMIT_MEMLOCK: "RLIMIT_MEMLOCK", C.RLIMIT_NPROC: "RLIMIT_NPROC",
}  # fmt: skip


def _oflag(value: int) -> str:
    access = _O_ACCESS.get(value & C.O_ACCMODE, hex(value & C.O_ACCMODE))
    rest = value & ~C.O_ACCMODE
    return access if not rest else f"{access}|{C.flag_names(rest, _O_BITS)}"


def _number(value: int) -> str:
    return str(value) if -0x10000 < value < 0x10000 else hex(value)


def format_arg(
    kind: str, value: Any, map_names: dict[int, str] = C.MAP_FLAG_NAMES, *, version: str = "8.0"
) -> str:
    """One argument as C source would spell it; ``map_names`` names MAP_* flags (default
    8.0's; ``Profile.map_flag_names`` gives another version's) and ``version`` the QNX
    version whose SHM_CREATE_HANDLE_OPT_* names a ``handleopt`` word uses (SPEC 18).

    >>> format_arg("prot", C.PROT_READ | C.PROT_WRITE), format_arg("mapfd", C.NOFD)
    ('PROT_READ|PROT_WRITE', 'NOFD')
    >>> format_arg("oflag", C.O_RDWR | C.O_CREAT), format_arg("mode", 0o600)
    ('O_RDWR|O_CREAT', '0o600')
    >>> format_arg("handleopt", C.SHM_CREATE_HANDLE_OPT_NOFD | 0x10)
    'SHM_CREATE_HANDLE_OPT_NOFD|0x10'
    >>> format_arg("handleopt", C.SHM_CREATE_HANDLE_OPT_SUBRANGE, version="7.1")
    '0x2'
    """
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes):
        return repr(value if len(value) <= 24 else value[:24]) + ("..." if len(value) > 24 else "")
    if isinstance(value, bool) or not isinstance(value, int):
        return repr(value)
    if kind == "prot":
        return "PROT_NONE" if value == 0 else C.flag_names(value, C.PROT_NAMES)
    if kind == "map":
        return C.flag_names(value, map_names)
    if kind == "mapfd" and value == C.NOFD:
        return "NOFD"
    if kind in ("addr", "phys"):
        return "0" if value == 0 else hex(value)
    if kind == "oflag":
        return _oflag(value)
    if kind == "mode":
        return oct(value)
    if kind == "rlim" and value == C.RLIM_INFINITY:
        return "RLIM_INFINITY"
    if kind == "handleopt":
        return C.flag_names(value, _handle_option_names(version))
    tables = {"ms": _MS, "mcl": _MCL, "shmctl": _SHMCTL, "wait": {C.WNOHANG: "WNOHANG"}}
    if kind in tables:
        return C.flag_names(value, tables[kind])
    names = {"madv": _MADV, "whence": _SEEK, "rlimit": _RLIMIT}.get(kind)
    if names is not None and value in names:
        return names[value]
    if kind in ("pid", "int"):
        return str(value)
    return _number(value)


def format_call(
    call: str,
    args: tuple[Any, ...],
    map_names: dict[int, str] = C.MAP_FLAG_NAMES,
    *,
    version: str = "8.0",
) -> str:
    """``mmap(0, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANON, NOFD, 0)``; each
    argument as its call-table row's trace kind says (``format_arg``).

    >>> format_call("mprotect", (0x8001000, 4096, C.PROT_READ))
    'mprotect(0x8001000, 4096, PROT_READ)'
    """
    row = CALLS.get(call)
    kinds = [a.kind for a in row.args] if row is not None else []
    parts = [
        format_arg(kinds[i] if i < len(kinds) else "", a, map_names, version=version)
        for i, a in enumerate(args)
    ]
    return f"{call}({', '.join(parts)})"


def call_text(event: TraceEvent) -> str:
    """The call of ``event`` as C source would spell it, with the constants of the
    kernel's QNX version (SPEC 18, 19).

    >>> from qnxsim import Kernel
    >>> k = Kernel(version="7.1", trace=True)
    >>> p = k.spawn(image=False)
    >>> fd = p.shm_open("/b", C.O_RDWR | C.O_CREAT, 0o600)
    >>> h = p.shm_create_handle(fd, p.pid, C.O_RDONLY, C.SHM_CREATE_HANDLE_OPT_NOFD)
    >>> call_text(k.trace[-1])
    'shm_create_handle(0, 2, O_RDONLY, SHM_CREATE_HANDLE_OPT_NOFD)'
    """
    return format_call(event.call, event.args, _map_names(event.version), version=event.version)


def errno_text(errno: int) -> str:
    """``EINVAL (22, Invalid argument)``."""
    return f"{errorcode.get(errno, 'EUNKNOWN')} ({errno}, {strerror(errno)})"


def format_result(call: str, result: Any) -> str:
    """A call's success value as the C caller would read it.

    >>> format_result("mmap", 0x8000000), format_result("munmap", 0)
    ('0x8000000', '0')
    """
    row = CALLS.get(call)
    kind = row.result if row is not None else None
    if kind == "address" and isinstance(result, int):
        return hex(result)
    if kind == "errno" and isinstance(result, int) and result:
        return errno_text(result)
    if kind == "phys" and isinstance(result, tuple):
        return "(" + ", ".join(hex(v) for v in result) + ")"
    if kind == "new_pid" and isinstance(result, int):
        return f"pid {result}"
    if row is None and call in ("MemoryFault", "kill") and isinstance(result, int):
        return _SIGNALS.get(result, str(result))  # the signal that ended the process
    if kind == "handle" and isinstance(result, int):
        return str(result)  # as C prints a shm_handle_t (%u), and as reasons name it
    if isinstance(result, int) and not isinstance(result, bool):
        return _number(result)
    if isinstance(result, bytes):
        return format_arg("", result)
    return repr(result)


#: Signals a C process can die by (QNX <signal.h>): the result of ``MemoryFault`` and
#: ``kill`` events, which the C bridge records when it ends a process.
_SIGNALS = {9: "SIGKILL", C.SIGBUS: "SIGBUS", C.SIGSEGV: "SIGSEGV"}


def human_size(n: int) -> str:
    """``4 KiB``, ``1 MiB``, ``12288 bytes``.

    >>> human_size(4096), human_size(3 << 20), human_size(12288 + 1)
    ('4 KiB', '3 MiB', '12289 bytes')
    """
    for shift, unit in ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} bytes"


def describe(rec: Mapping) -> str:
    """``0x8000000-0x8001000 (4 KiB, rw-, anon)`` with the object's name if it has one."""
    name = f", {rec.name}" if rec.name else ""
    locked = ", locked" if rec.locked else ""
    return (
        f"{rec.start:#x}-{rec.end:#x} ({human_size(rec.size)}, {prot_text(rec.prot)}, "
        f"{rec.kind}{name}{locked})"
    )


_COUNTS = {2: "two", 3: "three", 4: "four", 5: "five"}


def _span(lo: int, hi: int) -> str:
    return f"{lo:#x}-{hi:#x} ({human_size(hi - lo)})"


def _where(i: int, n: int) -> str:
    """The position of piece ``i`` of ``n`` in words."""
    if n == 3 and i == 1:
        return "the middle"
    return "the first" if i == 0 else "the last" if i == n - 1 else f"piece {i + 1}"


def _split(old: Mapping, pieces: list[Mapping]) -> str:
    """One record that became several: say how many, which ranges left and what changed."""
    n = len(pieces)
    count = _COUNTS.get(n, str(n))
    text = f"split {describe(old)} into {count}: " + "; ".join(describe(r) for r in pieces)
    notes = []
    for i, r in enumerate(pieces):
        if r.prot != old.prot:
            notes.append(f"{_where(i, n)} {human_size(r.size)} is now {prot_text(r.prot)}")
    cursor, holes = old.start, []
    for r in pieces:
        if r.start > cursor:
            holes.append(_span(cursor, r.start))
        cursor = r.end
    if cursor < old.end:
        holes.append(_span(cursor, old.end))
    if holes:
        notes.append(" and ".join(holes) + " no longer mapped")
    return text + ("; " + ", ".join(notes) if notes else "")


def _one_to_one(old: Mapping, new: Mapping) -> str:
    if (old.start, old.end) == (new.start, new.end):
        if old.prot != new.prot and (old.kind, old.flags) == (new.kind, new.flags):
            return (
                f"changed {_span(old.start, old.end)} from {prot_text(old.prot)} to "
                f"{prot_text(new.prot)}"
            )
        return f"replaced {describe(old)} by {describe(new)}"
    if new.start <= old.start and old.end <= new.end:
        return f"grew {describe(old)} into {describe(new)} (neighbours merge, R-MAP-2)"
    return f"cut {describe(old)} to {describe(new)}"


def _narrate(olds: list[Mapping], news: list[Mapping]) -> list[str]:
    """What happened to the records of one process, in words: splits, merges, growth,
    protection changes; whatever fits no pattern is listed as added or removed."""
    parts: list[str] = []
    olds, news = sorted(olds, key=_start), sorted(news, key=_start)
    used_new: set[int] = set()
    used_old: set[int] = set()
    for oi, o in enumerate(olds):  # one old record -> its pieces
        inside = [i for i, n in enumerate(news) if o.start <= n.start and n.end <= o.end]
        whole = (
            len(inside) == 1 and news[inside[0]].start == o.start and news[inside[0]].end == o.end
        )
        if len(inside) >= 2 or (len(inside) == 1 and not whole):
            pieces = [news[i] for i in inside]
            parts.append(_split(o, pieces) if len(pieces) > 1 else _one_to_one(o, pieces[0]))
            used_new.update(inside)
            used_old.add(oi)
    for ni, n in enumerate(news):  # one new record <- several old ones, or a grown one
        if ni in used_new:
            continue
        within = [i for i, o in enumerate(olds) if i not in used_old
                  and n.start <= o.start and o.end <= n.end]  # fmt: skip
        if len(within) >= 2:
            joined = "; ".join(describe(olds[i]) for i in within)
            parts.append(f"merged {joined} into {describe(n)} (R-MAP-2)")
        elif len(within) == 1:
            parts.append(_one_to_one(olds[within[0]], n))
        else:
            same = [i for i, o in enumerate(olds) if i not in used_old and o.start == n.start]
            if not same:
                continue
            within = same
            parts.append(_one_to_one(olds[same[0]], n))
        used_new.add(ni)
        used_old.update(within)
    removed = [describe(o) for i, o in enumerate(olds) if i not in used_old]
    added = [describe(n) for i, n in enumerate(news) if i not in used_new]
    if added:
        parts.append("added " + "; ".join(added))
    if removed:
        parts.append("removed " + "; ".join(removed))
    return parts


def _changes(event: TraceEvent) -> list[str]:
    sentences: list[str] = []
    for pid in event.pids():
        olds = [r for p, r in event.removed if p == pid]
        olds += [o for p, o, _ in event.changed if p == pid]
        news = [r for p, r in event.added if p == pid]
        news += [n for p, _, n in event.changed if p == pid]
        parts = _narrate(olds, news)
        if parts:
            sentences.append(f"In pid {pid} it {', '.join(parts)}.")
    return sentences


def explain(event: TraceEvent) -> str:
    """A one-paragraph explanation of a traced call: call, outcome and rule, changes.

    >>> from qnxsim import Kernel
    >>> k = Kernel(trace=True)
    >>> p = k.spawn(image=False)
    >>> a = p.mmap(0, 4096, C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    >>> print(explain(k.trace[-1]))
    pid 2 called mmap(0, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANON, NOFD, 0) and it \
returned 0x8000000. In pid 2 it added 0x8000000-0x8001000 (4 KiB, rw-, anon).
    """
    text = f"pid {event.pid} called {call_text(event)}"
    if event.errno:
        reason = event.reason or strerror(event.errno)
        text += f" and it failed with {errno_text(event.errno)}: {reason}."
    else:
        if event.result is None:
            text += " and it succeeded"
        else:
            text += f" and it returned {format_result(event.call, event.result)}"
        text += f" ({event.reason})." if event.reason else "."
    changes = _changes(event)
    if changes:
        text += " " + " ".join(changes)
    elif event.errno:
        text += " Like every failed call it changed nothing (R-CALL-5)."
    else:
        text += " No mapping changed."
    return text


# -- C code run in simulated processes (qnxsim.c) -----------------------------------------

#: What C ran in a process (``note_c``): the last lines kept per process.
C_NOTES = 8
_C_RAN: weakref.WeakKeyDictionary[Kernel, dict[int, deque[str]]] = weakref.WeakKeyDictionary()


def note_c(kernel: Kernel, pid: int, text: str) -> None:
    """Remember that C code ran in process ``pid`` of ``kernel``: a function that
    ``lib.f.as_process`` called and what came of it, or a program ``exec_c`` started.
    Kept whether or not the kernel traces (the last ``C_NOTES`` per process), for the
    failure report (``qnxsim.testing.kernel_report``).  O(1)."""
    with kernel.lock:
        ran = _C_RAN.setdefault(kernel, {})
        ran.setdefault(pid, deque(maxlen=C_NOTES)).append(text)


def c_processes(kernel: Kernel) -> dict[int, tuple[str, ...]]:
    """Pid -> what C ran in it (``note_c``, oldest first) for each process of ``kernel``
    that ran C code, and the processes those forked or spawned (a C program's children run
    C too; their own list may be empty), ascending by pid.  O(processes + trace)."""
    with kernel.lock:
        ran = {pid: tuple(lines) for pid, lines in _C_RAN.get(kernel, {}).items()}
        if not ran:
            return {}
        children: dict[int, list[int]] = {}
        for proc in kernel.processes():
            children.setdefault(proc.ppid, []).append(proc.pid)
        for ev in kernel.trace:
            if ev.call in ("fork", "spawn") and ev.ok and isinstance(ev.result, int):
                children.setdefault(ev.pid, []).append(ev.result)
    found = dict(ran)
    todo = list(ran)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found[child] = ()
                todo.append(child)
    return {pid: found[pid] for pid in sorted(found)}


__all__ = [
    "TraceEvent",
    "TraceList",
    "c_processes",
    "call_text",
    "describe",
    "diff",
    "explain",
    "format_arg",
    "format_call",
    "format_result",
    "note_c",
    "record",
    "watch",
]
