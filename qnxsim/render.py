"""Text views of a kernel: QNX's ``pidin mem`` layout (R-MAP-3) and a full mappings listing.

Nothing here changes state; it reads mapping records and formats them.  The notebook
pictures (HTML and SVG) live in ``html.py``.

``pidin mem`` columns (0-based, fixed: every field is padded to its width; a value wider
than its field, such as an address above 2**48, pushes the rest of its line to the right)::

    process line                         object line (one per mapped object)
     0- 7  pid            right           13-30  name, rightmost 18 chars  left
     9-11  tid            right           32     "@"
    13-30  name           left            33-44  address, lowercase hex    left
    32-35  prio           right           46-59  "(offset)" 12 hex digits  right,
    37-48  STATE          left                   blank for ELF objects
    50-55  code           right           61-66  code size                 right
    57-62  data           right           68-73  data size                 right
    64-73  stack          right

Sizes use the pidin size format (``pidin_size``).  Code is memory mapped PROT_EXEC, stack
is MAP_STACK memory (guard page included), data is everything else.  An ELF object's text
and data records make one object line, as in QNX; every other record is its own line,
named by its object, or ``(stack)``, ``(stack-guard)``, ``(anon)`` ... when it has none.
Trailing blanks are stripped.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from qnxsim.addrspace import Mapping
from qnxsim.constants import (
    MAP_FLAG_NAMES,
    MAP_STACK,
    PROT_EXEC,
    PROT_NOCACHE,
    PROT_READ,
    PROT_WRITE,
    flag_names,
)

if TYPE_CHECKING:
    from qnxsim.kernel import Kernel
    from qnxsim.process import Process

PROCESS_LINE = "{:>8} {:>3} {:<18} {:>4} {:<12} {:>6} {:>6} {:>10}"
OBJECT_LINE = "{:13}{:<18} @{:<12} {:>14} {:>6} {:>6}"
HEADER = PROCESS_LINE.format("pid", "tid", "name", "prio", "STATE", "code", "data", "stack")
VIEWS = ("mem", "maps")


def pidin_size(n: int) -> str:
    """R-MAP-3 size format: divide by 1024 while above 8192, suffix K, M, G, T.

    >>> pidin_size(4096), pidin_size(8193), pidin_size(512 * 1024), pidin_size(3 << 30)
    ('4096', '8K', '512K', '3072M')
    """
    units = ["", "K", "M", "G", "T"]
    i = 0
    while n > 8192 and i < len(units) - 1:
        n //= 1024
        i += 1
    return f"{n}{units[i]}"


def prot_text(prot: int) -> str:
    """``rwx`` with ``-`` for a missing bit, and ``n`` appended for PROT_NOCACHE.

    >>> prot_text(0x100 | 0x200), prot_text(0), prot_text(0x100 | 0x800)
    ('rw-', '---', 'r--n')
    """
    bits = (("r", PROT_READ), ("w", PROT_WRITE), ("x", PROT_EXEC))
    text = "".join(c if prot & bit else "-" for c, bit in bits)
    return text + "n" if prot & PROT_NOCACHE else text


def _totals(records: Iterable[Mapping]) -> tuple[int, int, int]:
    code = data = stack = 0
    for r in records:
        if r.flags & MAP_STACK:
            stack += r.size
        elif r.prot & PROT_EXEC:
            code += r.size
        else:
            data += r.size
    return code, data, stack


def object_name(r: Mapping) -> str:
    """The name pidin shows for a record's object: its path, or its kind in parentheses."""
    if r.name:
        return r.name
    if r.kind == "stack-guard":
        return "(stack-guard)"
    return "(stack)" if r.flags & MAP_STACK else f"({r.kind})"


def _objects(records: tuple[Mapping, ...]) -> list[list[Mapping]]:
    """Records grouped per object line: touching ELF records of one object form a group."""
    groups: list[list[Mapping]] = []
    for r in records:
        last = groups[-1][-1] if groups else None
        if (
            last is not None
            and r.kind == last.kind == "elf"
            and r.name == last.name
            and r.start == last.end
        ):
            groups[-1].append(r)
        else:
            groups.append([r])
    return groups


def _object_line(group: list[Mapping]) -> str:
    first = group[0]
    code = sum(r.size for r in group if r.prot & PROT_EXEC)
    data = sum(r.size for r in group if not r.prot & PROT_EXEC)
    if first.kind == "elf":
        offset, code_text, data_text = "", pidin_size(code), pidin_size(data)
    else:
        offset = f"({first.offset:>12x})"
        code_text = pidin_size(code) if code else ""
        data_text = pidin_size(data) if data else ""
    name = object_name(first)[-18:]
    line = OBJECT_LINE.format("", name, f"{first.start:x}", offset, code_text, data_text)
    return line.rstrip()


def process_lines(proc: Process) -> list[str]:
    """The ``pidin mem`` lines of one process: its own line, then its object lines."""
    records = proc.space.records()
    code, data, stack = _totals(records)
    state = "READY" if proc.alive else "DEAD"
    name = proc.path.lstrip("/")[-18:]
    sizes = (pidin_size(code), pidin_size(data), pidin_size(stack))
    lines = [PROCESS_LINE.format(proc.pid, 1, name, "10r", state, *sizes).rstrip()]
    lines.extend(_object_line(group) for group in _objects(records))
    return lines


def _maps_rows(
    records: tuple[Mapping, ...], map_names: dict[int, str] = MAP_FLAG_NAMES
) -> list[tuple[str, ...]]:
    return [
        (
            f"{r.start:012x}-{r.end:012x}",
            prot_text(r.prot),
            flag_names(r.flags, map_names),
            r.kind,
            f"{r.offset:#x}",
            r.name or "-",
            "locked" if r.locked else "-",
        )
        for r in records
    ]


MAPS_COLUMNS = ("start-end", "prot", "flags", "kind", "offset", "name", "locked")


def maps(kernel: Kernel, procs: Iterable[Process] | None = None) -> str:
    """Every mapping record of every process (or of ``procs``), as ``/proc/<pid>/mappings``
    would list them.

    One block per process: a title line ``pid N  PATH  uid U  STATE  M mappings``, a
    column header, then one row per record (start-end in hex, prot as ``rwx``, flags by
    name, kind, offset, object name or ``-``, ``locked`` or ``-``).  Columns are aligned
    across the whole listing.  O(n) in records.
    """
    chosen = kernel.processes() if procs is None else procs
    names = kernel.profile.map_flag_names  # SPEC 19: the version's flag names
    blocks = [(proc, _maps_rows(proc.space.records(), names)) for proc in chosen]
    every = [MAPS_COLUMNS, *(row for _, rows in blocks for row in rows)]
    widths = [max(len(row[i]) for row in every) for i in range(len(MAPS_COLUMNS))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()

    out: list[str] = []
    for proc, rows in blocks:
        state = "running" if proc.alive else "zombie"
        count = f"{len(rows)} mapping{'' if len(rows) == 1 else 's'}"
        out.append(f"pid {proc.pid}  {proc.path}  uid {proc.uid}  {state}  {count}")
        if rows:
            out.append("  " + line(MAPS_COLUMNS))
            out.extend("  " + line(row) for row in rows)
        out.append("")
    return "\n".join(out).rstrip("\n")


def pidin(kernel: Kernel, what: str = "mem") -> str:
    """``pidin mem`` (the header, a line per process, a line per object) or the ``maps``
    listing.  ValueError for any other view."""
    if what == "maps":
        return maps(kernel)
    if what != "mem":
        raise ValueError(f"pidin view {what!r} is not known; use one of {VIEWS}")
    lines = [HEADER]
    for proc in kernel.processes():
        lines.extend(process_lines(proc))
    return "\n".join(lines)
