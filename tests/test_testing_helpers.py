"""qnxsim.testing: assert_mapped, assert_unmapped and assert_errno pass when they should,
fail when they should, and fail with a message that shows the records around the address.
"""

from __future__ import annotations

import re

import pytest
from support import ANON, PROGRAM_BASE, PS, RW, SHMEM_BASE

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.testing import (
    address_space_around,
    assert_errno,
    assert_mapped,
    assert_unmapped,
    errno_number,
    prot_string,
    record_line,
)


@pytest.fixture
def p() -> Process:
    """A process with [A, A+3 pages) mapped private anonymous rw-, then its middle page
    unmapped, and one shared page at SHMEM_BASE, read-only."""
    proc = Kernel(ram=64 << 20).spawn(image=False)
    assert proc.mmap(0, 3 * PS, RW, ANON, C.NOFD, 0) == PROGRAM_BASE
    proc.munmap(PROGRAM_BASE + PS, PS)
    assert proc.mmap(0, PS, C.PROT_READ, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0) == SHMEM_BASE
    return proc


def failure(fn: object, *args: object, **kwargs: object) -> str:
    assert callable(fn)
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# -- assert_mapped ------------------------------------------------------------------------


def test_assert_mapped_passes_and_returns_the_records(p: Process) -> None:
    records = assert_mapped(p, PROGRAM_BASE, PS, prot=RW, kind="anon")
    assert [(r.start, r.end) for r in records] == [(PROGRAM_BASE, PROGRAM_BASE + PS)]
    assert_mapped(p, PROGRAM_BASE + 10, 5)  # bytes inside one page
    assert_mapped(p, SHMEM_BASE, PS, prot=C.PROT_READ, kind="shared-anon")


def test_assert_mapped_names_the_hole_and_shows_it_among_the_records(p: Process) -> None:
    text = failure(assert_mapped, p, PROGRAM_BASE, 3 * PS)
    first = text.splitlines()[0]
    assert first == "pid 2: [0x8000000, 0x8003000): [0x8001000, 0x8002000) is not mapped"
    lines = text.splitlines()[1:]
    assert lines[0] == "pid 2 (/proc/boot/app, running) around [0x8000000, 0x8003000):"
    marked = [line for line in lines if line.lstrip().startswith(">>")]
    assert len(marked) == 3
    assert re.search(r">>  \(anon\)\s+@8000000 .* 4096  rw- anon MAP_PRIVATE\|MAP_ANON", marked[0])
    assert re.search(r">>  \(unmapped\)\s+@8001000 .* 4096$", marked[1])
    assert re.search(r">>  \(anon\)\s+@8002000 ", marked[2])
    assert any("(shared-anon)" in line and "@1000000000" in line for line in lines)


def test_assert_mapped_reports_a_wrong_prot_and_kind(p: Process) -> None:
    text = failure(assert_mapped, p, SHMEM_BASE, PS, prot=RW, kind="anon")
    assert "the record at 0x1000000000 has prot r-- (PROT_READ), expected rw-" in text
    assert "is 'shared-anon', expected 'anon'" in text
    assert ">>" in text and "@1000000000" in text


def test_assert_mapped_of_nothing_at_all() -> None:
    proc = Kernel(ram=64 << 20).spawn(image=False)
    text = failure(assert_mapped, proc, PROGRAM_BASE, PS)
    assert "[0x8000000, 0x8001000) is not mapped" in text and "(no mappings)" in text


def test_assert_mapped_refuses_nonsense() -> None:
    proc = Kernel(ram=64 << 20).spawn(image=False)
    with pytest.raises(ValueError):
        assert_mapped(proc, PROGRAM_BASE, 0)
    with pytest.raises(TypeError):
        assert_mapped("pid 2", PROGRAM_BASE, PS)  # type: ignore[arg-type]


# -- assert_unmapped ----------------------------------------------------------------------


def test_assert_unmapped_passes_over_holes(p: Process) -> None:
    assert_unmapped(p, PROGRAM_BASE + PS, PS)
    assert_unmapped(p, PROGRAM_BASE + PS + 1, PS - 1)
    assert_unmapped(p, PROGRAM_BASE - PS, PS)


def test_assert_unmapped_names_what_is_mapped(p: Process) -> None:
    text = failure(assert_unmapped, p, PROGRAM_BASE + PS, 2 * PS)
    assert text.splitlines()[0] == (
        "pid 2: [0x8001000, 0x8003000) should be unmapped, but [0x8002000, 0x8003000) is mapped"
    )
    assert re.search(r">>  \(anon\)\s+@8002000", text)


def test_context_is_cut_to_the_records_around_the_range() -> None:
    proc = Kernel(ram=64 << 20).spawn(image=False)
    for i in range(20):  # 20 one-page mappings with holes between them
        proc.mmap(PROGRAM_BASE + 2 * i * PS, PS, RW, ANON | C.MAP_FIXED, C.NOFD, 0)
    text = address_space_around(proc, PROGRAM_BASE + 20 * PS, PROGRAM_BASE + 21 * PS)
    assert "... 8 record(s) below" in text and "... 7 record(s) above" in text
    lines = text.splitlines()
    assert sum("(anon)" in line for line in lines) == 5  # two on each side of the one hit
    assert [line.split("@")[1].split()[0] for line in lines if ">>" in line] == ["8014000"]


def test_lines_look_like_pidin_mem_plus_prot_and_flags(p: Process) -> None:
    record = p.mapping_at(SHMEM_BASE)
    assert record is not None
    line = record_line(record)
    assert re.fullmatch(
        r" {12}\(shared-anon\) {6}@1000000000 {3}\( {7}0x0\) {3}4096  r-- shared-anon "
        r"MAP_SHARED\|MAP_ANON",
        line,
    ), line
    assert prot_string(C.PROT_READ | C.PROT_NOCACHE) == "r--+nocache"


# -- assert_errno -------------------------------------------------------------------------


def test_assert_errno_takes_names_and_numbers_and_returns_the_error(p: Process) -> None:
    err = assert_errno("EINVAL", p.mmap, 0, 0, C.PROT_READ, ANON, C.NOFD, 0)
    assert isinstance(err, QnxError) and err.reason.startswith("R-MMAP-2:")
    err = assert_errno(E.ENOMEM, p.mprotect, PROGRAM_BASE, 2 * PS, C.PROT_READ)  # R-MPROT-2
    assert err.reason.startswith("R-MPROT-2:")
    assert_errno("ESRCH", p.mmap_peer, 99999, 0, PS, C.PROT_READ, ANON, C.NOFD, 0)
    old = Kernel(version="6.4").spawn(image=False)
    a = old.mmap(0, PS, C.PROT_READ, ANON, C.NOFD, 0)
    old.setrlimit(C.RLIMIT_MEMLOCK, 0, 0)
    assert_errno("EWOULDBLOCK", old.mlock, a, PS)  # EAGAIN by R-LOCK-1 on 6.4, an alias


def test_assert_errno_passes_keyword_arguments_through(p: Process) -> None:
    assert_errno("EINVAL", p.mmap, addr=0, len=0, prot=0, flags=ANON, fd=C.NOFD, off=0)


def test_assert_errno_works_with_the_libc_facade(p: Process) -> None:
    err = assert_errno("ENOMEM", p.libc.mprotect, PROGRAM_BASE, 2 * PS, C.PROT_READ)
    assert (err.errno, err.call, err.pid) == (E.ENOMEM, "mprotect", p.pid)
    assert_errno("EINVAL", p.libc.mmap, 0, 0, C.PROT_READ, ANON, C.NOFD, 0)  # MAP_FAILED


def test_assert_errno_works_with_calls_that_return_their_errno(p: Process) -> None:
    err = assert_errno("ENOMEM", p.posix_madvise, PROGRAM_BASE, 2 * PS, C.POSIX_MADV_NORMAL)
    assert err.errno == E.ENOMEM
    assert_errno("EINVAL", p.libc.posix_madvise, PROGRAM_BASE, PS, 99)  # R-MADV-2


def test_assert_errno_fails_on_success_and_shows_the_records(p: Process) -> None:
    """The records are shown as the call left them: here, without the page it unmapped."""
    text = failure(assert_errno, "EINVAL", p.munmap, PROGRAM_BASE, PS)
    assert text.splitlines()[0] == "munmap(0x8000000, 0x1000): expected EINVAL (22), " + (
        "but it returned 0"
    )
    assert re.search(r">>  \(unmapped\)\s+@8000000", text)
    assert re.search(r" \(anon\)\s+@8002000", text)


def test_assert_errno_fails_on_the_wrong_errno(p: Process) -> None:
    text = failure(assert_errno, "EINVAL", p.mprotect, PROGRAM_BASE, 2 * PS, C.PROT_READ)
    assert "expected EINVAL (22), got ENOMEM (12): mprotect: R-MPROT-2:" in text
    assert re.search(r">>  \(unmapped\)\s+@8001000", text)


def test_assert_errno_failure_with_libc_names_errno_and_result(p: Process) -> None:
    text = failure(assert_errno, "EINVAL", p.libc.mprotect, PROGRAM_BASE, 2 * PS, C.PROT_READ)
    assert "but it set errno to ENOMEM (12)" in text
    text = failure(assert_errno, "EINVAL", p.libc.munmap, PROGRAM_BASE, PS)
    assert "but it returned 0 (success)" in text
    text = failure(assert_errno, "EINVAL", p.posix_madvise, SHMEM_BASE, PS, 0)
    assert "but it returned 0 (success)" in text


def test_assert_errno_failure_of_a_peer_call_shows_the_peer(p: Process) -> None:
    k = p.kernel
    other = k.spawn(image=False)
    other.mmap(0, PS, RW, ANON, C.NOFD, 0)
    text = failure(assert_errno, "EPERM", p.munmap_peer, other.pid, PROGRAM_BASE, PS)
    assert f"pid {other.pid} (/proc/boot/app, running) around [0x8000000, 0x8001000)" in text


def test_assert_errno_failure_on_a_fault(p: Process) -> None:
    text = failure(assert_errno, "EFAULT", p.write_memory, SHMEM_BASE, b"x")
    assert "but it faulted: SIGSEGV/SEGV_ACCERR at 0x1000000000" in text
    assert ">>" in text


def test_assert_errno_with_no_address_summarises_the_process(p: Process) -> None:
    text = failure(assert_errno, "EBADF", p.shm_open, "/x", C.O_RDWR | C.O_CREAT, 0o600)
    assert "pid 2 (/proc/boot/app, running), 3 record(s):" in text


def test_errno_names_must_be_qnx_errno_names() -> None:
    assert errno_number("EOK") == 0 and errno_number(E.ENOTSUP) == 48  # QNX numbering
    for bad in ("EINVALID", "einval", "PROT_READ", ""):
        with pytest.raises(ValueError):
            errno_number(bad)
    with pytest.raises(TypeError):
        errno_number(22.0)  # type: ignore[arg-type]
