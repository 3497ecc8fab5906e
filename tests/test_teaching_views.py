"""The teaching views say what happened: explain() narrates splits and merges, and the
HTML of a big address space stays small (a summarised table under a whole strip)."""

from __future__ import annotations

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim.html import TABLE_EDGE
from qnxsim.trace import explain

PS = 4096
RW = C.PROT_READ | C.PROT_WRITE
ANON = C.MAP_PRIVATE | C.MAP_ANON


def traced() -> tuple[Kernel, Process, int]:
    k = Kernel(ram=64 << 20, trace=True)
    p = k.spawn(image=False)
    return k, p, p.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0)


def test_R_MPROT_4_explain_says_a_middle_page_split_the_record_in_three() -> None:
    k, p, a = traced()
    p.mprotect(a + PS, PS, C.PROT_READ)
    text = explain(k.trace[-1])
    assert "split 0x8000000-0x8003000 (12 KiB, rw-, anon) into three:" in text
    assert text.endswith("the middle 4 KiB is now r--.")
    assert "added" not in text and "changed" not in text


def test_R_MAP_2_explain_says_pieces_merged_back() -> None:
    k, p, a = traced()
    p.mprotect(a + PS, PS, C.PROT_READ)
    p.mprotect(a + PS, PS, RW)
    assert "merged 0x8000000-0x8001000 (4 KiB, rw-, anon);" in explain(k.trace[-1])
    assert explain(k.trace[-1]).endswith("into 0x8000000-0x8003000 (12 KiB, rw-, anon) (R-MAP-2).")


def test_R_UNMAP_5_explain_says_which_range_is_no_longer_mapped() -> None:
    k, p, a = traced()
    p.munmap(a + PS, PS)
    text = explain(k.trace[-1])
    assert "into two:" in text and "0x8001000-0x8002000 (4 KiB) no longer mapped" in text


def test_explain_whole_record_protection_and_growth() -> None:
    k, p, a = traced()
    p.mprotect(a, 3 * PS, C.PROT_READ)
    assert "changed 0x8000000-0x8003000 (12 KiB) from rw- to r--" in explain(k.trace[-1])
    assert p.mmap(0, PS, C.PROT_READ, ANON, C.NOFD, 0) == a + 3 * PS
    assert "grew 0x8000000-0x8003000 (12 KiB, r--, anon) into" in explain(k.trace[-1])
    p.munmap(a, 4 * PS)
    assert "removed 0x8000000-0x8004000" in explain(k.trace[-1])


def test_html_of_thousands_of_mappings_is_summarised() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    for i in range(2000):
        p.mmap(0x1000_0000 + 2 * i * PS, PS, C.PROT_READ, ANON | C.MAP_FIXED, C.NOFD, 0)
    html = p._repr_html_()
    assert len(html) < 250_000  # was 1.6 MB
    assert f"... {2000 - 2 * TABLE_EDGE} more records" in html
    assert "0x10000000" in html and f"{0x1000_0000 + 2 * 1999 * PS:#x}" in html  # both ends
    assert html.count("<tr>") == 2 * TABLE_EDGE + 2  # the heading row and the gap row


def test_html_of_a_small_process_lists_every_record() -> None:
    k = Kernel(ram=64 << 20)
    p = k.spawn()
    html = p._repr_html_()
    assert "more records" not in html
    assert html.count("<tr>") == len(p.mappings()) + 1
