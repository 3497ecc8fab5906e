"""Views of a kernel: ``pidin mem`` (R-MAP-3), the ``maps`` listing, and the notebook HTML/SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from support import ANON, PS, RW

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim.html import kernel_html, process_html, records_table, space_svg
from qnxsim.render import HEADER, pidin_size, prot_text

SVG = "{http://www.w3.org/2000/svg}"


def fixed_scenario(version: str = "8.0") -> tuple[Kernel, Process, Process]:
    """A server with the realistic image, and an imageless client holding a peer shm
    mapping and 3 MiB of private rwx memory."""
    k = Kernel(version=version, arch="x86_64")
    server = k.spawn("/proc/boot/server", uid=0)
    client = k.spawn("/proc/boot/client", uid=1000, image=False)
    fd = server.shm_open("/buf", C.O_RDWR | C.O_CREAT, 0o600)
    server.ftruncate(fd, 8192)
    server.mmap_peer(client.pid, 0, 8192, RW, C.MAP_SHARED, fd, 0)
    client.mmap(0, 3 << 20, RW | C.PROT_EXEC, ANON, C.NOFD, 0)
    return k, server, client


# -- pidin mem ------------------------------------------------------------------------------

PIDIN_MEM = """\
     pid tid name               prio STATE          code   data      stack
       1   1 procnto             10r READY             0      0          0
       2   1 proc/boot/server    10r READY          768K    32K       512K
             (stack-guard)      @7f80000      (     7f80000)          4096
             (stack)            @7f81000      (     7f81000)          508K
             /proc/boot/server  @8000000                        64K    16K
             roc/boot/libc.so.6 @7000000000                    704K    16K
       3   1 proc/boot/client    10r READY         3072K   8192          0
             (anon)             @8000000      (     8000000)  3072K
             /dev/shmem/buf     @1000000000   (           0)          8192"""


def test_R_MAP_3_pidin_mem_of_a_fixed_scenario() -> None:
    k, _, _ = fixed_scenario()
    assert k.pidin("mem") == PIDIN_MEM
    assert k.pidin() == PIDIN_MEM


def test_R_MAP_3_pidin_mem_header_columns() -> None:
    assert HEADER.split() == ["pid", "tid", "name", "prio", "STATE", "code", "data", "stack"]
    # right-aligned fields end at their last column; left-aligned ones start at their first
    assert HEADER.index("pid") + 3 == 8
    assert HEADER.index("tid") + 3 == 12
    assert HEADER.index("name") == 13
    assert HEADER.index("prio") + 4 == 36
    assert HEADER.index("STATE") == 37
    assert HEADER.index("code") + 4 == 56
    assert HEADER.index("data") + 4 == 63
    assert HEADER.index("stack") + 5 == 74


def test_R_MAP_3_process_line_columns() -> None:
    k, _server, _ = fixed_scenario()
    line = k.pidin().splitlines()[2]
    assert line[0:8] == "       2"
    assert line[9:12] == "  1"
    assert line[13:31] == "proc/boot/server  "
    assert line[32:36] == " 10r"
    assert line[37:49] == "READY       "
    assert line[50:56] == "  768K"
    assert line[57:63] == "   32K"
    assert line[64:74] == "      512K"
    assert len(line) == 74


def test_R_MAP_3_object_line_columns() -> None:
    k, _, _client = fixed_scenario()
    lines = k.pidin().splitlines()
    shm = next(line for line in lines if "/dev/shmem/buf" in line)
    assert shm[:13] == " " * 13
    assert shm[13:31] == "/dev/shmem/buf    "  # name, left in 18
    assert shm[32] == "@"
    assert shm[33:45] == "1000000000  "  # address: lowercase hex, no 0x
    assert shm[46:60] == "(           0)"  # (offset) for a non-ELF object
    assert shm[61:67] == " " * 6  # no code
    assert shm[68:74] == "  8192"  # data size
    libc = next(line for line in lines if "libc" in line)
    assert libc[13:31] == "/proc/boot/libc.so.6"[-18:]  # the rightmost 18 characters
    assert libc[46:60] == " " * 14  # ELF objects show no offset
    assert libc[61:67] == "  704K" and libc[68:74] == "   16K"  # text and data: one line
    anon = next(line for line in lines if "(anon)" in line)
    assert anon[61:67] == " 3072K"  # executable memory counts as code


def test_R_MAP_3_address_lowercase_hex_without_0x() -> None:
    k, _, client = fixed_scenario()
    text = k.pidin()
    for rec in client.mappings():
        assert f"@{rec.start:x}" in text
    assert "0x" not in text


def test_R_MAP_3_zombie_shows_dead_and_nothing_mapped() -> None:
    k = Kernel()
    parent = k.spawn()
    child = parent.spawn()
    child.exit(0)
    line = k.pidin().splitlines()[-1]
    assert line.split() == [str(child.pid), "1", "proc/boot/app", "10r", "DEAD", "0", "0", "0"]


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0"), (8192, "8192"), (8193, "8K"), (8 << 20, "8192K"), ((8 << 20) + 1, "8192K"),
     ((8 << 20) + 1024, "8M"), (3 << 30, "3072M"), (9 << 30, "9G"), (9 << 40, "9T"),
     (9 << 50, "9216T")],
)  # fmt: skip
def test_R_MAP_3_pidin_size_format(n: int, text: str) -> None:
    assert pidin_size(n) == text


def test_pidin_unknown_view_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="mem"):
        Kernel().pidin("threads")


# -- pidin maps --------------------------------------------------------------------------------


def test_pidin_maps_lists_every_record_with_symbolic_flags() -> None:
    k, server, client = fixed_scenario("7.1")  # a profile with lock state (R-LOCK-7)
    data = server.mappings()[3]  # the program's data (root may mlock)
    server.mlock(data.start, data.size)
    text = k.pidin("maps")
    lines = text.splitlines()
    assert f"pid {client.pid}  /proc/boot/client  uid 1000  running  2 mappings" in lines
    header = next(line for line in lines if "start-end" in line).split()
    assert header == ["start-end", "prot", "flags", "kind", "offset", "name", "locked"]
    rows = [line.split() for line in lines if line.startswith("  0")]
    assert len(rows) == len(server.mappings()) + len(client.mappings())
    assert rows[3] == [
        f"{data.start:012x}-{data.end:012x}",
        "rw-",
        "MAP_PRIVATE|MAP_ELF",
        "elf",
        "0x10000",
        "/proc/boot/server",
        "locked",
    ]
    anon = client.mappings()[0]
    assert rows[len(server.mappings())] == [
        f"{anon.start:012x}-{anon.end:012x}",
        "rwx",
        "MAP_PRIVATE|MAP_ANON",
        "anon",
        f"{anon.offset:#x}",
        "-",
        "-",
    ]
    shm = next(r for r in rows if "/dev/shmem/buf" in r)
    assert shm[1:] == ["rw-", "MAP_SHARED", "shm", "0x0", "/dev/shmem/buf", "-"]
    # columns line up across the whole listing
    starts = {line.index("  ", 30) for line in lines if line.startswith("  0")}
    assert len(starts) == 1


def test_prot_text() -> None:
    assert [prot_text(p) for p in (0, C.PROT_READ, RW, RW | C.PROT_EXEC)] == [
        "---",
        "r--",
        "rw-",
        "rwx",
    ]
    assert prot_text(C.PROT_READ | C.PROT_NOCACHE) == "r--n"


# -- SVG and HTML -----------------------------------------------------------------------------


def test_svg_is_well_formed_with_one_titled_rect_per_mapping() -> None:
    _k, server, _ = fixed_scenario()
    records = server.mappings()
    root = ET.fromstring(space_svg([("server", records)], "the server"))
    assert root.tag == f"{SVG}svg"
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "mapping"]
    assert len(rects) == len(records)
    for rect, rec in zip(rects, records, strict=True):
        title = rect.find(f"{SVG}title")
        assert title is not None and title.text is not None
        assert title.text.startswith(f"{rec.start:#x}-{rec.end:#x}")
        assert prot_text(rec.prot) in title.text and rec.kind in title.text
    xs = [float(r.get("x", "0")) for r in rects]
    assert xs == sorted(xs)


def test_svg_log_scale_keeps_a_page_visible_beside_megabytes() -> None:
    k = Kernel()
    p = k.spawn(image=False)
    p.mmap(0, 256 << 20, RW, ANON, C.NOFD, 0)
    p.mmap(0, PS, C.PROT_READ, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    root = ET.fromstring(space_svg([("p", p.mappings())]))
    widths = sorted(
        float(r.get("width", "0")) for r in root.iter(f"{SVG}rect") if r.get("class") == "mapping"
    )
    assert widths[0] >= 22  # wide enough for its prot label
    assert widths[0] < widths[1]


def test_svg_colours_by_kind_and_fades_prot_none() -> None:
    k = Kernel()
    p = k.spawn()
    root = ET.fromstring(space_svg([("p", p.mappings())]))
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "mapping"]
    kinds = [rec.kind for rec in p.mappings()]
    fills = {kind: r.get("fill") for kind, r in zip(kinds, rects, strict=True)}
    assert len(set(fills.values())) == len(fills)
    guard = rects[kinds.index("stack-guard")]
    assert guard.get("fill-opacity") == "0.25"


def wrap(html: str) -> ET.Element:
    return ET.fromstring(f"<root>{html}</root>")


def self_contained(html: str) -> bool:
    lowered = html.lower()
    return not any(s in lowered for s in ("<script", "<link", "@import", "url(", "src="))


def test_process_html_has_a_picture_and_a_table_of_records() -> None:
    _k, server, _ = fixed_scenario()
    html = server._repr_html_()
    assert html == process_html(server)
    root = wrap(html)
    rows = root.findall(".//tbody/tr")
    assert len(rows) == len(server.mappings())
    assert len(root.findall(f".//{SVG}svg")) == 1
    assert self_contained(html)


def test_kernel_html_shows_every_process() -> None:
    k, server, client = fixed_scenario()
    html = k._repr_html_()
    assert html == kernel_html(k)
    root = wrap(html)
    assert len(root.findall(f".//{SVG}svg")) == 2  # procnto has no mappings
    assert len(root.findall(".//tbody/tr")) == len(server.mappings()) + len(client.mappings())
    assert "x86_64" in html and "procnto" in html
    assert self_contained(html)


def test_trace_html_is_well_formed_and_self_contained() -> None:
    k = Kernel(trace=True)
    p = k.spawn()
    a = p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)
    p.mprotect(a, PS, C.PROT_READ)
    html = k.trace._repr_html_()
    root = wrap(html)
    assert len(root.findall(".//li")) == len(k.trace)
    assert len(root.findall(".//details")) == 3  # spawn, mmap, mprotect changed mappings
    assert self_contained(html)
    assert "&lt;" not in records_table(p.mappings())
