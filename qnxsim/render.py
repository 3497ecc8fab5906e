"""Text views of a kernel: the ``pidin mem`` layout (R-MAP-3).

Nothing here changes state; it reads mapping records and formats them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qnxsim.addrspace import Mapping
from qnxsim.constants import MAP_STACK, PROT_EXEC

if TYPE_CHECKING:
    from qnxsim.process import Kernel, Process

HEADER = "     pid tid name               prio STATE       code  data        stack"


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


def _totals(records: tuple[Mapping, ...]) -> tuple[int, int, int]:
    code = data = stack = 0
    for r in records:
        if r.flags & MAP_STACK:
            stack += r.size
        elif r.prot & PROT_EXEC:
            code += r.size
        else:
            data += r.size
    return code, data, stack


def _object_line(r: Mapping) -> str:
    name = (r.name or ("(stack)" if r.flags & MAP_STACK else f"({r.kind})"))[-18:]
    offset = "" if r.kind == "elf" else f"({r.offset:#10x})"
    return f"            {name:<18} @{r.start:<12x} {offset:<12} {pidin_size(r.size):>6}"


def process_lines(proc: Process) -> list[str]:
    records = proc.space.records()
    code, data, stack = _totals(records)
    state = "READY" if proc.alive else "DEAD"
    name = proc.path.lstrip("/")[-18:]
    lines = [
        f"{proc.pid:>8} {1:>3} {name:<18} {'10r':>4} {state:<10} {pidin_size(code):>5} "
        f"{pidin_size(data):>5} {pidin_size(stack):>12}"
    ]
    lines.extend(_object_line(r) for r in records)
    return lines


def pidin(kernel: Kernel, what: str = "mem") -> str:
    """``pidin mem``: the header, a line per process, an indented line per mapping."""
    if what != "mem":
        raise ValueError(f"pidin view {what!r} is not known; use 'mem'")
    lines = [HEADER]
    for proc in kernel.processes():
        lines.extend(process_lines(proc))
    return "\n".join(lines)
