"""Helpers for tests written against qnxsim: kernels, mapped ranges, holes, errno.

A failing helper raises ``AssertionError`` whose message shows the part of the process's
address space around the address, one pidin-style line per record (name, ``@`` address,
offset, size) with its prot and flags.  Plain ``assert`` semantics: pytest is not needed.
The helpers hide their own frames from pytest's tracebacks (``__tracebackhide__``).

``kernel(...)`` makes a Kernel for one test or one hypothesis example, where the
function-scoped ``qnx_kernel`` fixture cannot be used (``@given`` runs many examples in one
test).  As a context manager it adds the address spaces to a failure's notes::

    @given(pages=page_counts())
    def test_round_trip(pages):
        with kernel(ram=64 << 20) as k:
            p = k.spawn(image=False)
            ...
"""

from __future__ import annotations

import bisect
import contextlib
import inspect
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from qnxsim import errno as E
from qnxsim.access import MemoryFault
from qnxsim.addrspace import Mapping
from qnxsim.calls import CALLS, Call
from qnxsim.constants import (
    MAP_FLAG_NAMES,
    MAP_STACK,
    PROT_EXEC,
    PROT_NAMES,
    PROT_NOCACHE,
    PROT_READ,
    PROT_WRITE,
    flag_names,
)
from qnxsim.errno import QnxError
from qnxsim.kernel import Kernel
from qnxsim.libc import Libc
from qnxsim.objects import MappingKind
from qnxsim.render import pidin_size
from qnxsim.trace import TraceEvent, c_processes, call_text, format_result

if TYPE_CHECKING:
    from qnxsim.process import Process


@runtime_checkable
class _ProcessLike(Protocol):
    """What the helpers read of a ``qnxsim.Process``: a view needs no more (README,
    "Layers")."""

    pid: int
    path: str
    state: str
    kernel: Any

    def mappings(self) -> tuple[Mapping, ...]: ...


#: Records shown on each side of the range in a failure message.
CONTEXT_RECORDS = 2
#: Records shown when a failure has no address to centre on.
SUMMARY_RECORDS = 12


# -- kernels for tests --------------------------------------------------------------------

#: Defaults of ``kernel()`` and of the ``qnx_kernel`` fixture: the pytest plugin fills them
#: from ``--qnx-version`` / ``--qnx-arch`` (ini ``qnx_version`` / ``qnx_arch``).
DEFAULTS: dict[str, Any] = {}
#: Trace events a failure report shows.
REPORT_CALLS = 20


def make_kernel(**options: Any) -> Kernel:
    """``Kernel(**options)`` on top of ``DEFAULTS`` (a suite's ``--qnx-version``...).

    >>> make_kernel(ram=1 << 20).ram
    1048576
    """
    return Kernel(**{**DEFAULTS, **options})


@contextlib.contextmanager
def kernel(**options: Any) -> Iterator[Kernel]:
    """A fresh Kernel for the ``with`` block (``Kernel(**options)`` on ``DEFAULTS``); if the
    block fails, the error gets the address spaces and the last calls as a note.

    Use it where the ``qnx_kernel`` fixture cannot go: a hypothesis ``@given`` test runs
    many examples in one function-scoped fixture, so each example makes its own kernel.

    >>> with kernel(ram=1 << 20) as k:
    ...     k.spawn(image=False).pid
    2
    """
    __tracebackhide__ = True
    k = make_kernel(**options)
    try:
        yield k
    except BaseException as err:
        if isinstance(err, Exception):
            err.add_note(kernel_report(k, REPORT_CALLS))
        raise


def kernel_report(k: Kernel, calls: int = REPORT_CALLS) -> str:
    """``pidin mem``, RAM use and, when tracing, the last ``calls`` calls, written as
    ``explain()`` writes them (symbolic flags, addresses in hex)."""
    try:
        lines = [k.pidin("mem")]
        info = k.meminfo()
        lines.append(
            f"\nRAM: total {info.total:#x}, free {info.free:#x}, allocated "
            f"{info.allocated:#x}, reserved {info.reserved:#x}"
        )
        if k.tracing and k.trace:
            lines.append(f"\nlast {min(calls, len(k.trace))} calls:")
            lines.extend(f"  pid {ev.pid} {_event_line(ev)}" for ev in k.trace[-calls:])
        lines.extend(_c_report(k))
        return "\n".join(lines)
    except Exception as err:  # the report must not hide the test's own failure
        return f"(the address spaces could not be shown: {type(err).__name__}: {err})"


#: Calls shown for each C process in a failure report (when the kernel traces).
C_PROCESS_CALLS = 8


def _event_line(ev: TraceEvent) -> str:
    """``mmap(...) -> 0x8000000``, ``-> EINVAL: reason``, or the signal that ended a
    process with what it says (a C process's ``MemoryFault`` and ``kill`` events)."""
    if ev.errno:
        return f"{call_text(ev)} -> {E.errorcode.get(ev.errno, ev.errno)}: {ev.reason}"
    outcome = format_result(ev.call, ev.result)
    return f"{call_text(ev)} -> {outcome}" + (f": {ev.reason}" if ev.reason else "")


def _c_report(k: Kernel) -> list[str]:
    """The failure report's part on C code (``qnxsim.c``): each process that ran a C
    function or program (and its children), whether it still runs, what C ran in it and,
    when the kernel traces, the last calls that process made."""
    ran = c_processes(k)
    if not ran:
        return []
    lines = ["\nC processes (lib.f.as_process, Kernel.exec_c):"]
    for pid, notes in ran.items():
        proc = k.lookup(pid)
        if proc is None:
            head = f"pid {pid}: ended"
        elif proc.alive:
            head = f"pid {pid} ({proc.path}): running, {len(proc.mappings())} record(s)"
        else:
            head = f"pid {pid} ({proc.path}): ended, status {proc.exit_status}"
        lines.append(f"  {head}")
        lines.extend(f"    C {note}" for note in notes)
        if k.tracing:
            mine = [ev for ev in k.trace if ev.pid == pid][-C_PROCESS_CALLS:]
            lines.extend(f"    {_event_line(ev)}" for ev in mine)
    return lines


# -- pidin-style lines --------------------------------------------------------------------


def prot_string(prot: int) -> str:
    """``rwx`` letters of a prot (``-`` for a missing one), ``+nocache`` for PROT_NOCACHE.

    >>> prot_string(PROT_READ | PROT_WRITE), prot_string(0), prot_string(PROT_EXEC)
    ('rw-', '---', '--x')
    """
    text = "".join(
        ch if prot & bit else "-"
        for ch, bit in (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC))
    )
    return text + ("+nocache" if prot & PROT_NOCACHE else "")


def record_line(r: Mapping, mark: str = "") -> str:
    """One record as ``pidin mem`` shows it (R-MAP-3), then its prot, kind and flags."""
    name = (r.name or ("(stack)" if r.flags & MAP_STACK else f"({r.kind})"))[-18:]
    offset = "" if r.kind == "elf" else f"({r.offset:#10x})"
    return (
        f"{mark:>10}  {name:<18} @{r.start:<12x} {offset:<12} {pidin_size(r.size):>6}  "
        f"{prot_string(r.prot):<3} {r.kind} {flag_names(r.flags, MAP_FLAG_NAMES)}"
        + (" locked" if r.locked else "")
    )


def _hole_line(start: int, end: int) -> str:
    return f"{'>>':>10}  {'(unmapped)':<18} @{start:<12x} {'':<12} {pidin_size(end - start):>6}"


def address_space_around(proc: Process, start: int, end: int | None = None) -> str:
    """The records around ``[start, end)`` (``>>`` marks those in it, and its holes)."""
    ps = proc.kernel.page_size
    end = start + 1 if end is None or end <= start else end
    lo, hi = start - start % ps, -(-end // ps) * ps
    records = proc.mappings()
    head = f"pid {proc.pid} ({proc.path}, {proc.state}) around [{lo:#x}, {hi:#x}):"
    if not records:
        return f"{head}\n{'':>10}  (no mappings)"
    starts = [r.start for r in records]
    first = max(0, bisect.bisect_right(starts, lo) - 1 - CONTEXT_RECORDS)
    last = min(len(records), bisect.bisect_left(starts, hi) + CONTEXT_RECORDS)
    lines = [head]
    if first:
        lines.append(f"{'':>10}  ... {first} record(s) below")
    cursor = lo
    for r in records[first:last]:
        if cursor < min(r.start, hi) and r.start > lo:
            lines.append(_hole_line(cursor, min(r.start, hi)))
        inside = r.start < hi and r.end > lo
        lines.append(record_line(r, ">>" if inside else ""))
        cursor = max(cursor, r.end)
    if cursor < hi:
        lines.append(_hole_line(max(cursor, lo), hi))
    if last < len(records):
        lines.append(f"{'':>10}  ... {len(records) - last} record(s) above")
    return "\n".join(lines)


def address_space_summary(proc: Process) -> str:
    """The first ``SUMMARY_RECORDS`` records of the process."""
    records = proc.mappings()
    lines = [f"pid {proc.pid} ({proc.path}, {proc.state}), {len(records)} record(s):"]
    lines.extend(record_line(r) for r in records[:SUMMARY_RECORDS])
    if len(records) > SUMMARY_RECORDS:
        lines.append(f"{'':>10}  ... {len(records) - SUMMARY_RECORDS} more")
    return "\n".join(lines)


# -- mapped and unmapped ranges -----------------------------------------------------------


def _page_range(proc: Process, addr: int, size: int) -> tuple[int, int]:
    if not isinstance(proc, _ProcessLike):
        raise TypeError(f"proc must be a qnxsim Process, not {type(proc).__name__}")
    if size <= 0:
        raise ValueError(f"size must be positive, not {size}")
    ps = proc.kernel.page_size
    return addr - addr % ps, -(-(addr + size) // ps) * ps


def _overlapping(proc: Process, lo: int, hi: int) -> list[Mapping]:
    return [r for r in proc.mappings() if r.start < hi and r.end > lo]


def assert_mapped(
    proc: Process,
    addr: int,
    size: int,
    prot: int | None = None,
    kind: MappingKind | None = None,
) -> tuple[Mapping, ...]:
    """Assert every page of ``[addr, addr+size)`` is mapped in ``proc``; with ``prot`` or
    ``kind`` (``"anon"``, ``"shared-anon"``, ``"shm"``, ``"file"``, ...; R-MAP-1), also
    that every record covering it has exactly that prot and kind.  Returns the records.
    """
    __tracebackhide__ = True
    lo, hi = _page_range(proc, addr, size)
    where = f"pid {proc.pid}: [{addr:#x}, {addr + size:#x})"
    covering = _overlapping(proc, lo, hi)
    problems: list[str] = []
    cursor = lo
    for r in covering:
        if r.start > cursor:
            problems.append(f"[{cursor:#x}, {r.start:#x}) is not mapped")
        cursor = max(cursor, r.end)
    if cursor < hi:
        problems.append(f"[{cursor:#x}, {hi:#x}) is not mapped")
    for r in covering:
        if prot is not None and r.prot != prot:
            problems.append(
                f"the record at {r.start:#x} has prot {prot_string(r.prot)} "
                f"({flag_names(r.prot, PROT_NAMES)}), expected {prot_string(prot)} "
                f"({flag_names(prot, PROT_NAMES)})"
            )
        if kind is not None and r.kind != kind:
            problems.append(f"the record at {r.start:#x} is {r.kind!r}, expected {kind!r}")
    if problems:
        raise AssertionError(
            f"{where}: " + "; ".join(problems) + "\n" + address_space_around(proc, lo, hi)
        )
    return tuple(covering)


def assert_unmapped(proc: Process, addr: int, size: int) -> None:
    """Assert no page of ``[addr, addr+size)`` is mapped in ``proc``."""
    __tracebackhide__ = True
    lo, hi = _page_range(proc, addr, size)
    covering = _overlapping(proc, lo, hi)
    if covering:
        spans = ", ".join(f"[{max(r.start, lo):#x}, {min(r.end, hi):#x})" for r in covering)
        raise AssertionError(
            f"pid {proc.pid}: [{addr:#x}, {addr + size:#x}) should be unmapped, but {spans} "
            f"is mapped\n" + address_space_around(proc, lo, hi)
        )


# -- errno --------------------------------------------------------------------------------


def errno_number(errno: int | str) -> int:
    """A QNX errno from its name (``"EINVAL"``) or number (``qnxsim.errno.EINVAL``).

    >>> errno_number("EINVAL"), errno_number(22), errno_number("EWOULDBLOCK")
    (22, 22, 11)
    """
    if isinstance(errno, str):
        value = getattr(E, errno, None) if errno.isupper() and errno.startswith("E") else None
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{errno!r} is not a QNX errno name")
        return value
    if isinstance(errno, bool) or not isinstance(errno, int):
        raise TypeError(f"errno must be a name or an int, not {type(errno).__name__}")
    return errno


def _errno_text(n: int) -> str:
    return f"{E.errorcode.get(n, 'unknown errno')} ({n})"


def _arg_text(value: object) -> str:
    """An argument as a test would write it: addresses and sizes in hex."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 0x1000:
        return hex(value)
    return repr(value)


def _libc_of(fn: Callable[..., Any]) -> Libc | None:
    """The ``Libc`` a ``process.libc.<name>`` function belongs to, if ``fn`` is one."""
    if not getattr(fn, "__qualname__", "").startswith("Libc."):
        return None
    try:
        owner = inspect.getclosurevars(fn).nonlocals.get("self")
    except TypeError:
        return None
    return owner if isinstance(owner, Libc) else None


def _process_of(fn: Callable[..., Any], libc: Libc | None) -> Process | None:
    if libc is not None:
        proc: object = libc._proc
    else:
        proc = getattr(fn, "__self__", None)
    return cast("Process", proc) if isinstance(proc, _ProcessLike) else None


def _context(proc: Process | None, name: str, args: tuple[Any, ...], kw: dict[str, Any]) -> str:
    """The part of the address space a call was about, for a failure message: around its
    (virtual) address and length, in the process its row's target argument names."""
    if proc is None:
        return ""
    row = CALLS.get(name)
    addr_i = row.arg_index("addr") if row is not None else None
    if row is None or addr_i is None:
        return "\n" + address_space_summary(proc)
    len_i = row.arg_index("size")

    def arg(i: int | None) -> Any:
        if i is None or row is None:
            return None
        return args[i] if i < len(args) else kw.get(row.args[i].name)

    target = proc
    pid = arg(row.target)
    if isinstance(pid, int) and pid not in (0, proc.pid):
        try:
            target = proc.kernel.process(pid)
        except LookupError:
            return f"\n(no process {pid})\n" + address_space_summary(proc)
    addr = arg(addr_i)
    length = arg(len_i)
    if not isinstance(addr, int) or addr <= 0:
        return "\n" + address_space_summary(target)
    end = addr + length if isinstance(length, int) and 0 < length < 1 << 40 else None
    return "\n" + address_space_around(target, addr, end)


def assert_errno(
    errno: int | str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> QnxError:
    """Assert ``fn(*args, **kwargs)`` fails with QNX errno ``errno`` (a name or a number).

    ``fn`` may be a ``Process`` method (it raises ``QnxError``), a ``process.libc``
    function (it returns ``MAP_FAILED`` or -1 and sets ``libc.errno``, or returns
    ``(error number, None)``), or a call that returns its error number (``posix_madvise``,
    ``procmgr_ability``); the call table (``qnxsim.calls``) says which.  Returns the
    ``QnxError`` (for the C styles, one made from the errno) so that the test can check
    ``.reason``.  A failure message shows the records around the call's address (in the
    target process for a peer call), as the call left them.
    """
    __tracebackhide__ = True
    expected = errno_number(errno)
    name = getattr(fn, "__name__", repr(fn))
    shown = ", ".join([*map(_arg_text, args), *(f"{k}={_arg_text(v)}" for k, v in kwargs.items())])
    call = f"{name}({shown})"
    libc = _libc_of(fn)
    proc = _process_of(fn, libc)
    pid = proc.pid if proc is not None else None
    want = f"expected {_errno_text(expected)}"

    def fail(what: str) -> AssertionError:
        return AssertionError(f"{call}: {want}, {what}" + _context(proc, name, args, kwargs))

    if libc is not None:
        libc.errno = 0
        libc.last_error = None
    try:
        result = fn(*args, **kwargs)
    except QnxError as err:
        if err.errno != expected:
            raise fail(f"got {err}") from err
        return err
    except MemoryFault as err:
        raise fail(f"but it faulted: {err}") from err
    row: Call | None = CALLS.get(name)
    failure = row.failure if row is not None else None
    if failure == "errno" and isinstance(result, int) and not isinstance(result, bool):
        if result != expected:
            raise fail(f"but it returned {_errno_text(result) if result else '0 (success)'}")
        return QnxError(expected, f"{name} returned {result}", call=name, pid=pid)
    if libc is not None and row is not None and row.failure_value is not None:
        if result != row.failure_value:
            raise fail(f"but it returned {result!r} (success)")
        if libc.errno != expected:
            raise fail(f"but it set errno to {_errno_text(libc.errno)}")
        if libc.last_error is not None:
            return libc.last_error  # the reason too
        return QnxError(expected, f"libc.{name} returned {result} and set errno", call=name,
                        pid=pid)  # fmt: skip
    if libc is not None and failure == "errno_and_result" and isinstance(result, tuple):
        if result[0] != expected:
            got = _errno_text(result[0]) if result[0] else "0 (success)"
            raise fail(f"but it returned {got}")
        if libc.last_error is not None:
            return libc.last_error
    shown_result = hex(result) if isinstance(result, int) and result > 9 else repr(result)
    raise fail(f"but it returned {shown_result}")


__all__ = [
    "DEFAULTS",
    "address_space_around",
    "address_space_summary",
    "assert_errno",
    "assert_mapped",
    "assert_unmapped",
    "errno_number",
    "kernel",
    "kernel_report",
    "make_kernel",
    "prot_string",
    "record_line",
]
