"""R-MMAP-21 / R-MPROT-5: a MAP_SHARED `/dev/zero` mapping made through a fd without write
access can never gain PROT_WRITE; mprotect() adding it is EACCES, pieces below the refused
one keep their new protection (the one documented exception to R-CALL-5)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support import ANON, PS, RW, expect_error

from qnxsim import Kernel, Process
from qnxsim import constants as C
from qnxsim import errno as qerrno

R = C.PROT_READ


def setup() -> tuple[Kernel, Process, int, int]:
    k = Kernel(ram=64 << 20)
    p = k.spawn(image=False)
    return k, p, p.open("/dev/zero", C.O_RDONLY), p.open("/dev/zero", C.O_RDWR)


def prots(p: Process, base: int) -> list[tuple[int, int]]:
    return [(m.start - base, m.prot) for m in p.mappings()]


def test_R_MMAP_21_shared_dev_zero_from_read_only_fd_never_gains_write() -> None:
    k, p, ro, _ = setup()
    a = p.mmap(0, 2 * PS, R, C.MAP_SHARED, ro, 0)
    before = (p.mappings(), k.meminfo())
    expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, a, 2 * PS, RW)
    expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, a + PS, 1, C.PROT_WRITE)
    assert p.libc.mprotect(a, PS, RW | C.PROT_EXEC) == -1 and p.libc.errno == qerrno.EACCES
    assert (p.mappings(), k.meminfo()) == before
    p.close(ro)  # the mapping remembers how /dev/zero was opened, not the fd
    expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, a, PS, RW)
    assert p.mprotect(a, 2 * PS, C.PROT_NONE) == 0  # other changes are fine
    assert p.mprotect(a, 2 * PS, R) == 0
    k.check_invariants()


def test_R_MPROT_5_dev_zero_pieces_below_the_refused_one_keep_their_change() -> None:
    k, p, ro, _ = setup()
    low = p.mmap(0, 4 * PS, R, ANON, C.NOFD, 0)
    p.mmap(low + 2 * PS, PS, R, C.MAP_SHARED | C.MAP_FIXED, ro, 0)
    err = expect_error(qerrno.EACCES, "R-MPROT-5", p.mprotect, low, 4 * PS, RW)
    assert f"{low + 2 * PS:#x}" in err.reason and "R-MMAP-21" in err.reason
    assert prots(p, low) == [(0, RW), (2 * PS, R), (3 * PS, R)]
    p.write_memory(low, b"ok")
    k.check_invariants()


def test_R_MMAP_21_writable_or_private_dev_zero_may_gain_write() -> None:
    k, p, ro, rw = setup()
    private = p.mmap(0, PS, R, C.MAP_PRIVATE, ro, 0)
    shared = p.mmap(0, PS, R, C.MAP_SHARED, rw, 0)
    assert p.mprotect(private, PS, RW) == 0 and p.mprotect(shared, PS, RW) == 0
    p.write_memory(private, b"p")
    p.write_memory(shared, b"s")
    k.check_invariants()


def test_R_MMAP_21_fork_child_inherits_the_refusal() -> None:
    k, p, ro, _ = setup()
    a = p.mmap(0, PS, R, C.MAP_SHARED, ro, 0)
    child = k.process(p.fork())
    expect_error(qerrno.EACCES, "R-MPROT-5", child.mprotect, a, PS, RW)
    k.check_invariants()


#: One page of the run: (fd kind, flags) with the fd kind "ro", "rw" or None for NOFD.
PIECES = st.sampled_from(
    [(None, ANON), ("ro", C.MAP_SHARED), ("rw", C.MAP_SHARED), ("ro", C.MAP_PRIVATE)]
)


@given(
    pieces=st.lists(PIECES, min_size=1, max_size=6),
    prot=st.sampled_from([C.PROT_NONE, R, RW, C.PROT_WRITE]),
)
def test_R_MPROT_5_property_low_to_high_partial_application(
    pieces: list[tuple[str | None, int]], prot: int
) -> None:
    """Adding PROT_WRITE over a run of pages: the pages below the first read-only shared
    /dev/zero page get ``prot``, that page and the ones above keep theirs; without
    PROT_WRITE, or without such a page, every page gets ``prot``."""
    k, p, ro, rw = setup()
    base = 0x1000_0000
    for i, (kind, flags) in enumerate(pieces):
        fd = {None: C.NOFD, "ro": ro, "rw": rw}[kind]
        p.mmap(base + i * PS, PS, R, flags | C.MAP_FIXED, fd, 0)
    refused = [i for i, piece in enumerate(pieces) if piece == ("ro", C.MAP_SHARED)]
    stop = refused[0] if refused and prot & C.PROT_WRITE else len(pieces)
    result = p.libc.mprotect(base, len(pieces) * PS, prot)
    assert result == (0 if stop == len(pieces) else -1)
    if result:
        assert p.libc.errno == qerrno.EACCES
    want = [prot if i < stop else R for i in range(len(pieces))]
    got = [p.mapping_at(base + i * PS).prot for i in range(len(pieces))]  # type: ignore[union-attr]
    assert got == want
    k.check_invariants()
