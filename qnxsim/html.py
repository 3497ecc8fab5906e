"""Notebook pictures: an SVG strip of an address space and an HTML table of its records.

Used by ``_repr_html_`` of ``Kernel``, ``Process``, ``TraceEvent`` and ``Kernel.trace``.
The HTML is self-contained (inline styles, no scripts, fonts or stylesheets) and
deterministic.  Widths are log-scaled, so a one-page mapping stays visible next to a
gigabyte; each mapping is one ``<rect class="mapping">`` with a ``<title>`` for hovering,
filled by kind, labelled with its protection (``rw-``) and faded when it is PROT_NONE.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingABC
from html import escape
from typing import TYPE_CHECKING

from qnxsim.addrspace import Mapping
from qnxsim.constants import MAP_FLAG_NAMES, flag_names
from qnxsim.render import object_name, pidin_size, prot_text

if TYPE_CHECKING:
    from qnxsim.kernel import Kernel
    from qnxsim.process import Process

#: Fill colour per record kind.
KIND_COLOURS: dict[str, str] = {
    "anon": "#8ecae6",
    "shared-anon": "#ffb703",
    "shm": "#fb8500",
    "file": "#90be6d",
    "zero": "#bde0fe",
    "phys": "#e5989b",
    "stack-guard": "#d9d9d9",
    "elf": "#b5a1e6",
}
OTHER_COLOUR = "#cccccc"
Side = MappingABC[int, Sequence[Mapping]]  # pid -> records
WIDTH = 760  # px of the drawing area of a strip
LABEL = 56  # px left of a strip for its row label
ROW = 30  # px per strip
TICKS = 14  # px under a strip for address labels
MAX_DRAWN = 400  # records drawn per strip; the table still lists them all
#: Above this many records a table shows its first and last ``TABLE_EDGE`` rows and a row
#: that says how many it left out (as pandas summarises a long frame); the strip above it
#: still draws the whole address space.
TABLE_MAX = 60
TABLE_EDGE = 10
PAGE = 4096

_TABLE = "border-collapse:collapse;font-family:monospace;font-size:12px;margin:4px 0"
_CELL = "border:1px solid #ccc;padding:1px 6px;text-align:left"


def _weight(size: int, covered: bool) -> float:
    """Log-scaled width of an interval: mappings from 2 (one page) up, gaps at most 3."""
    pages = max(size / PAGE, 1.0)
    if covered:
        return 2.0 + math.log2(pages)
    return 0.8 + min(2.2, 0.15 * math.log2(pages))


class Axis:
    """Address -> x for a set of strips drawn one above the other (shared breakpoints)."""

    def __init__(self, rows: Iterable[Sequence[Mapping]], width: float = WIDTH) -> None:
        points: set[int] = set()
        spans: list[tuple[int, int]] = []
        for records in rows:
            for r in records[:MAX_DRAWN]:
                points.update((r.start, r.end))
                spans.append((r.start, r.end))
        self.points = sorted(points)
        spans.sort()
        weights: list[float] = []
        j = 0
        reach = -1
        for lo, hi in itertools.pairwise(self.points):
            while j < len(spans) and spans[j][0] <= lo:
                reach = max(reach, spans[j][1])
                j += 1
            weights.append(_weight(hi - lo, covered=reach >= hi))
        total = sum(weights) or 1.0
        self.x: dict[int, float] = {}
        acc = 0.0
        for p, w in zip(self.points, [*weights, 0.0], strict=True):
            self.x[p] = LABEL + acc * width / total
            acc += w

    def at(self, addr: int) -> float:
        return self.x[addr]


def _title(r: Mapping, names: dict[int, str] = MAP_FLAG_NAMES) -> str:
    parts = [
        f"{r.start:#x}-{r.end:#x}",
        f"{pidin_size(r.size)} ({r.size} bytes)",
        prot_text(r.prot),
        r.kind,
        flag_names(r.flags, names),
        f"offset {r.offset:#x}",
    ]
    if r.name:
        parts.append(r.name)
    if r.locked:
        parts.append("locked")
    return " ".join(parts)


def _strip(
    records: Sequence[Mapping],
    axis: Axis,
    y: float,
    label: str,
    names: dict[int, str] = MAP_FLAG_NAMES,
) -> list[str]:
    out = [
        f'<text x="2" y="{y + ROW / 2 + 4:.1f}" font-size="11" fill="#333">{escape(label)}</text>'
    ]
    drawn = records[:MAX_DRAWN]
    last_tick = -1e9
    for i, r in enumerate(drawn):
        x0, x1 = axis.at(r.start), axis.at(r.end)
        w = max(x1 - x0, 1.0)
        if i and drawn[i - 1].end < r.start:
            g0 = axis.at(drawn[i - 1].end)
            gap = r.start - drawn[i - 1].end
            out.append(
                f'<rect class="gap" x="{g0:.1f}" y="{y + ROW / 2 - 1:.1f}" width="{x0 - g0:.1f}" '
                f'height="2" fill="#eee"><title>unmapped {drawn[i - 1].end:#x}-{r.start:#x} '
                f"({pidin_size(gap)})</title></rect>"
            )
        fill = KIND_COLOURS.get(r.kind, OTHER_COLOUR)
        faded = ' fill-opacity="0.25" stroke-dasharray="3,2"' if r.prot == 0 else ""
        out.append(
            f'<rect class="mapping" x="{x0:.1f}" y="{y + 2:.1f}" width="{w:.1f}" '
            f'height="{ROW - 4}" fill="{fill}" stroke="#555" stroke-width="0.6"{faded}>'
            f"<title>{escape(_title(r, names))}</title></rect>"
        )
        if w >= 22:
            out.append(
                f'<text x="{x0 + w / 2:.1f}" y="{y + ROW / 2 + 4:.1f}" text-anchor="middle" '
                f'font-size="10" fill="#222">{prot_text(r.prot)}</text>'
            )
        if x0 - last_tick >= 80:
            out.append(
                f'<text x="{x0:.1f}" y="{y + ROW + 10:.1f}" font-size="9" fill="#666">'
                f"{r.start:x}</text>"
            )
            last_tick = x0
    if len(records) > MAX_DRAWN:
        out.append(
            f'<text x="{LABEL + WIDTH - 2}" y="{y + ROW + 10:.1f}" text-anchor="end" '
            f'font-size="9" fill="#a00">{len(records) - MAX_DRAWN} more not drawn</text>'
        )
    return out


def space_svg(
    rows: Sequence[tuple[str, Sequence[Mapping]]],
    title: str = "",
    names: dict[int, str] = MAP_FLAG_NAMES,
) -> str:
    """One SVG with a strip per ``(label, records)`` row, all on one address axis; the
    records' titles name MAP_* flags with ``names`` (8.0's by default).

    >>> from qnxsim import Kernel
    >>> p = Kernel().spawn()
    >>> svg = space_svg([("pid 2", p.mappings())], "pid 2")
    >>> svg.startswith("<svg") and svg.count('class="mapping"') == len(p.mappings())
    True
    """
    axis = Axis([records for _, records in rows])
    height = max(len(rows), 1) * (ROW + TICKS) + 4
    width = LABEL + WIDTH + 4
    body: list[str] = []
    if title:
        body.append(f"<title>{escape(title)}</title>")
    for i, (label, records) in enumerate(rows):
        y = 2 + i * (ROW + TICKS)
        if records:
            body.extend(_strip(records, axis, y, label, names))
        else:
            body.append(
                f'<text x="2" y="{y + ROW / 2 + 4:.1f}" font-size="11" fill="#333">'
                f"{escape(label)}</text>"
                f'<text x="{LABEL}" y="{y + ROW / 2 + 4:.1f}" font-size="11" fill="#999">'
                "(no mappings)</text>"
            )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" role="img">'
        + "".join(body)
        + "</svg>"
    )


def legend(records: Iterable[Mapping]) -> str:
    """Colour swatches for the kinds present."""
    kinds = sorted({r.kind for r in records})
    items = [
        f'<span style="display:inline-block;width:10px;height:10px;margin:0 3px 0 10px;'
        f'background:{KIND_COLOURS.get(k, OTHER_COLOUR)};border:1px solid #555"></span>'
        f"{escape(k)}"
        for k in kinds
    ]
    return f'<div style="font-family:monospace;font-size:11px">{"".join(items)}</div>'


def records_table(
    records: Sequence[Mapping], names: dict[int, str] = MAP_FLAG_NAMES, limit: int = TABLE_MAX
) -> str:
    """An HTML table with one row per record (R-MAP-1 fields); ``names`` names the MAP_*
    flags (the kernel's ``profile.map_flag_names``; 8.0's by default).  Above ``limit``
    records only the first and last ``TABLE_EDGE`` rows are shown, with a row between
    that counts the others (``mappings()`` has them all)."""
    head = ("start", "end", "size", "prot", "flags", "kind", "offset", "name", "locked")
    left_out = 0
    if len(records) > limit:
        left_out = len(records) - 2 * TABLE_EDGE
        records = [*records[:TABLE_EDGE], *records[-TABLE_EDGE:]]
    rows = [
        (
            f"{r.start:#x}",
            f"{r.end:#x}",
            pidin_size(r.size),
            prot_text(r.prot),
            flag_names(r.flags, names),
            r.kind,
            f"{r.offset:#x}",
            object_name(r),
            "yes" if r.locked else "",
        )
        for r in records
    ]
    th = "".join(f'<th style="{_CELL}">{h}</th>' for h in head)
    cells = [
        "<tr>" + "".join(f'<td style="{_CELL}">{escape(c)}</td>' for c in row) + "</tr>"
        for row in rows
    ]
    if left_out:
        gap = (
            f'<tr><td colspan="{len(head)}" style="{_CELL};color:#666;text-align:center">'
            f"... {left_out} more records (proc.mappings() lists them all) ...</td></tr>"
        )
        cells.insert(TABLE_EDGE, gap)
    trs = "".join(cells)
    return f'<table style="{_TABLE}"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>'


def _heading(text: str) -> str:
    style = "font-family:monospace;font-weight:bold;margin-top:6px"
    return f'<div style="{style}">{escape(text)}</div>'


def process_html(proc: Process) -> str:
    """A process: a title line, the strip, a legend and the table of records."""
    records = proc.mappings()
    state = "running" if proc.alive else "zombie"
    title = f"pid {proc.pid} {proc.path} (uid {proc.uid}, {state}, {len(records)} mappings)"
    parts = [_heading(title)]
    if records:
        names = proc.kernel.profile.map_flag_names  # SPEC 19
        parts.append(space_svg([(f"pid {proc.pid}", records)], title, names))
        parts.append(legend(records))
        parts.append(records_table(records, names))
    else:
        parts.append('<div style="font-family:monospace;color:#999">no mappings</div>')
    return "<div>" + "".join(parts) + "</div>"


def kernel_html(kernel: Kernel) -> str:
    """The machine: configuration and RAM use, then every process with mappings."""
    info = kernel.meminfo()
    summary = (
        f"Kernel {kernel.arch} QNX {kernel.version}: RAM {pidin_size(info.total)}, "
        f"free {pidin_size(info.free)}, allocated {pidin_size(info.allocated)}, "
        f"reserved {pidin_size(info.reserved)}; {len(kernel.processes())} processes"
    )
    parts = [_heading(summary)]
    for proc in kernel.processes():
        if proc.mappings():
            parts.append(process_html(proc))
        else:
            state = "running" if proc.alive else "zombie"
            parts.append(
                '<div style="font-family:monospace;color:#666">'
                f"pid {proc.pid} {escape(proc.path)} ({state}): no mappings</div>"
            )
    return "<div>" + "".join(parts) + "</div>"


def before_after_html(
    text: str,
    before: Side,
    after: Side,
    names: dict[int, str] = MAP_FLAG_NAMES,
) -> str:
    """An explanation, then per pid the records a call replaced and what replaced them."""
    parts: list[str] = []
    if text:
        style = "font-family:sans-serif;font-size:13px;margin:4px 0"
        parts.append(f'<p style="{style}">{escape(text)}</p>')
    for pid in sorted(set(before) | set(after)):
        old, new = before.get(pid, ()), after.get(pid, ())
        title = f"pid {pid}: before and after"
        parts.append(space_svg([("before", old), ("after", new)], title, names))
        parts.append(legend([*old, *new]))
    return "<div>" + "".join(parts) + "</div>"


def trace_html(
    events: Sequence[tuple[str, Side, Side]],
    names: dict[int, str] = MAP_FLAG_NAMES,
) -> str:
    """A numbered list of explained events; those that changed mappings show before/after."""
    items: list[str] = []
    for text, before, after in events:
        body = escape(text)
        if before or after:
            body = (
                f"<details><summary>{body}</summary>"
                + before_after_html("", before, after, names)
                + "</details>"
            )
        items.append(f'<li style="margin:2px 0">{body}</li>')
    if not items:
        return '<div style="font-family:monospace;color:#999">empty trace</div>'
    return f'<ol style="font-family:sans-serif;font-size:13px">{"".join(items)}</ol>'
