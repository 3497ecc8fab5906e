"""qnxsim.strategies: every strategy gives only values of its declared kind, and shrinks
towards "one process, one page".

Valid ``map_flags`` pass R-MMAP-1 and R-MMAP-4 and invalid ones get EINVAL from exactly
those rules; ``prot_values`` against R-MMAP-3 and R-MPROT-1; addresses are page-aligned and
in the user range (R-SYS-3); ``mmap_args`` are accepted by a fresh process; call sequences
run on any kernel without breaking its invariants, the same way twice (determinism).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from support import PS, RW

from qnxsim import Kernel, MemoryFault, Process, QnxError, vmm
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.strategies import (
    CALL_NAMES,
    Call,
    call_sequences,
    calls,
    map_flags,
    mmap_args,
    page_aligned_addresses,
    page_counts,
    prot_values,
    run_calls,
)

USER_END = 0x7F_FFFF_F000  # R-SYS-3, x86_64 with 4 KiB pages
#: SPEC 18: the MAP_* flags QNX 8.0 defines.
KNOWN_MAP_FLAGS_8_0 = (
    C.MAP_TYPE | C.MAP_FIXED | C.MAP_ELF | C.MAP_LAZY | C.MAP_STACK | C.MAP_BELOW
    | C.MAP_NOINIT | C.MAP_PHYS | C.MAP_NOINHERIT | C.MAP_HANDLE | C.MAP_ANON
)  # fmt: skip
SOME = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Kernels made once: the strategies read their page size and user range.
K4 = Kernel(ram=64 << 20)
K16 = Kernel(arch="aarch64", page_size=16384, ram=64 << 20)
K64 = Kernel(arch="aarch64", page_size=65536, ram=64 << 20)


def fresh(uid: int = 0) -> tuple[Kernel, Process]:
    k = Kernel(ram=64 << 20)
    return k, k.spawn(uid=uid, image=False)


def minimal(strategy: st.SearchStrategy[object]) -> object:
    return find(strategy, lambda _: True, settings=settings(database=None))


# -- prot_values --------------------------------------------------------------------------


@SOME
@given(prot_values())
def test_R_MMAP_3_valid_prot_values_stay_inside_PROT_MASK_and_mprotect_takes_them(
    prot: int,
) -> None:
    assert prot & ~C.PROT_MASK == 0
    assert vmm.check_flag_bits(prot, C.MAP_PRIVATE, "mmap") == (prot, C.MAP_PRIVATE)
    _, p = fresh()
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    assert p.mprotect(a, PS, prot) == 0
    assert p.mapping_at(a) is not None and p.mapping_at(a).prot == prot  # type: ignore[union-attr]


@SOME
@given(prot_values(with_exec=False, with_nocache=False))
def test_prot_values_can_leave_out_exec_and_nocache(prot: int) -> None:
    assert prot & ~(C.PROT_READ | C.PROT_WRITE) == 0


@SOME
@given(prot_values(valid=False))
def test_R_MMAP_3_R_MPROT_1_invalid_prot_values_get_EINVAL(prot: int) -> None:
    assert prot & ~C.PROT_MASK
    _, p = fresh()
    with pytest.raises(QnxError) as info:
        p.mmap(0, PS, prot, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    assert info.value.errno == E.EINVAL and info.value.reason.startswith("R-MMAP-3:")
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    with pytest.raises(QnxError) as info:
        p.mprotect(a, PS, prot)
    assert info.value.errno == E.EINVAL and info.value.reason.startswith("R-MPROT-1:")


# -- map_flags ----------------------------------------------------------------------------


@SOME
@given(map_flags())
def test_R_MMAP_1_R_MMAP_4_valid_map_flags_pass_both_checks(flags: int) -> None:
    assert flags & C.MAP_TYPE in (C.MAP_SHARED, C.MAP_PRIVATE)  # exactly one type
    assert flags & ~KNOWN_MAP_FLAGS_8_0 == 0
    assert not flags & C.MAP_HANDLE  # R-MMAP-5 would refuse it
    vmm.check_map_type(flags, "mmap")
    assert vmm.check_flag_bits(C.PROT_READ, flags, "mmap") == (C.PROT_READ, flags)


@SOME
@given(map_flags(), prot_values(), page_counts())
def test_R_MMAP_1_R_MMAP_4_mmap_never_refuses_valid_flags_by_those_rules(
    flags: int, prot: int, pages: int
) -> None:
    _, p = fresh()
    try:
        p.mmap(0, pages * PS, prot, flags, C.NOFD, 0)
    except QnxError as err:  # other rules (MAP_STACK, MAP_FIXED at 0, ...) may refuse
        assert not err.reason.startswith(("R-MMAP-1:", "R-MMAP-3:", "R-MMAP-4:")), err


@SOME
@given(map_flags(types=(C.MAP_SHARED,), optional=(C.MAP_LAZY,)))
def test_map_flags_types_and_optional_narrow_the_choice(flags: int) -> None:
    assert flags in (C.MAP_SHARED, C.MAP_SHARED | C.MAP_LAZY)


@SOME
@given(map_flags(valid=False), prot_values(), page_counts())
def test_R_MMAP_1_R_MMAP_4_invalid_map_flags_get_EINVAL_from_those_rules(
    flags: int, prot: int, pages: int
) -> None:
    k, p = fresh()
    before = (p.mappings(), k.meminfo())
    with pytest.raises(QnxError) as info:
        p.mmap(0, pages * PS, prot, flags, C.NOFD, 0)
    assert info.value.errno == E.EINVAL
    assert info.value.reason.startswith(("R-MMAP-1:", "R-MMAP-4:")), info.value.reason
    assert (p.mappings(), k.meminfo()) == before  # R-CALL-5


def test_invalid_map_flags_cover_every_kind_of_R_MMAP_1_and_R_MMAP_4() -> None:
    """Each kind the docstring promises is generated (a type fault, a PROT bit, a reserved
    bit, an undefined bit)."""
    strategy = map_flags(valid=False)

    def kind(f: int) -> str:
        if f & C.MAP_TYPE in (0, C.MAP_TYPE):
            return "type"
        if f & C.PROT_MASK & ~C.PROT_NOCACHE:
            return "prot"
        if f & C.MAP_RESERVMASK:
            return "reserved"
        return "undefined"

    quick = settings(database=None, phases=[Phase.generate])
    for wanted in ("type", "prot", "reserved", "undefined"):
        found = find(strategy, lambda f, w=wanted: kind(f) == w, settings=quick)
        assert kind(found) == wanted


def test_map_flags_rejects_nonsense_arguments() -> None:
    with pytest.raises(ValueError):
        map_flags(types=(C.MAP_TYPE,))
    with pytest.raises(ValueError):
        map_flags(optional=(C.MAP_PRIVATE,))


# -- counts and addresses -----------------------------------------------------------------


@SOME
@given(page_counts(max_pages=5, min_pages=2))
def test_page_counts_stay_in_their_bounds(n: int) -> None:
    assert 2 <= n <= 5


@SOME
@given(st.data())
def test_R_SYS_3_addresses_are_page_aligned_pages_of_the_user_range(data: st.DataObject) -> None:
    k = data.draw(st.sampled_from((K4, K16, K64)))
    a = data.draw(page_aligned_addresses(k))
    ps = k.page_size
    assert a % ps == 0
    assert k.machine.user_start <= a and a + ps <= k.machine.user_end


@SOME
@given(page_aligned_addresses(PS, min_value=0x8000_0001, max_value=0x8010_0FFF))
def test_address_bounds_round_inwards_to_pages(a: int) -> None:
    assert a % PS == 0 and 0x8000_1000 <= a <= 0x8010_0000


def test_page_aligned_addresses_from_a_bare_page_size_use_the_64_bit_range() -> None:
    assert minimal(page_aligned_addresses(PS)) == PS  # USER_START
    assert minimal(page_aligned_addresses(PS, min_value=USER_END - PS)) == USER_END - PS
    with pytest.raises(ValueError):  # no page of the user range starts at USER_END
        page_aligned_addresses(PS, min_value=USER_END)


def test_bad_page_sizes_and_empty_ranges_are_refused() -> None:
    with pytest.raises(ValueError):
        page_aligned_addresses(3000)
    with pytest.raises(TypeError):
        page_aligned_addresses("4096")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        page_aligned_addresses(PS, min_value=0x9000, max_value=0x8000)
    with pytest.raises(ValueError):
        page_counts(min_pages=3, max_pages=2)


# -- mmap_args ----------------------------------------------------------------------------


@SOME
@given(mmap_args(K4), st.sampled_from((0, 1000)))
def test_anonymous_mmap_args_are_accepted_by_a_fresh_process(
    args: tuple[int, int, int, int, int, int], uid: int
) -> None:
    addr, length, prot, flags, fd, off = args
    assert fd == C.NOFD and off == 0 and flags & C.MAP_ANON
    assert addr % PS == 0 and 0 < length <= 16 * PS
    _, p = fresh(uid)
    start = p.mmap(*args)
    if flags & C.MAP_FIXED:
        assert start == addr  # R-MMAP-F4
    for page in range(start, start + length, PS):
        record = p.mapping_at(page)
        assert record is not None and record.prot == prot


@SOME
@given(st.data())
def test_fd_mmap_args_map_the_object_at_a_page_offset(data: st.DataObject) -> None:
    k, p = fresh()
    fd = p.shm_open("/buf", C.O_RDWR | C.O_CREAT, 0o600)
    p.ftruncate(fd, 4 * PS)
    args = data.draw(mmap_args(k, max_pages=4, fd=fd))
    _, _, _, flags, fd_arg, off = args
    assert fd_arg == fd and not flags & C.MAP_ANON and off % PS == 0 and off < 4 * PS
    start = p.mmap(*args)
    record = p.mapping_at(start)
    assert record is not None and record.kind == "shm" and record.offset == off


def test_mmap_args_shrink_to_one_private_anonymous_page() -> None:
    assert minimal(mmap_args()) == (0, PS, C.PROT_NONE, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)


def test_the_strategies_shrink_to_their_simplest_values() -> None:
    assert minimal(prot_values()) == C.PROT_NONE
    assert minimal(map_flags()) == C.MAP_PRIVATE
    assert minimal(map_flags(valid=False)) == 0  # neither type (R-MMAP-1)
    assert minimal(page_counts()) == 1
    assert minimal(page_aligned_addresses(K16)) == K16.machine.user_start


# -- call sequences -----------------------------------------------------------------------


def test_call_sequences_shrink_to_one_process_mapping_one_page() -> None:
    assert minimal(call_sequences()) == [
        Call("mmap", 0, (0, PS, C.PROT_NONE, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0))
    ]


@SOME
@given(calls(names=("munmap", "fork")))
def test_calls_only_make_the_calls_named(call: Call) -> None:
    assert call.name in ("munmap", "fork")


@SOME
@given(st.lists(calls(), min_size=1, max_size=30))
def test_calls_cover_every_name(seq: list[Call]) -> None:
    assert {c.name for c in seq} <= set(CALL_NAMES)


def test_calls_refuses_unknown_names() -> None:
    with pytest.raises(ValueError):
        calls(names=("mmap", "reboot"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call_sequences(max_calls=15))
def test_R_CALL_5_any_call_sequence_keeps_the_invariants_and_is_deterministic(
    seq: list[Call],
) -> None:
    outcomes = []
    views = []
    for _ in range(2):
        k = Kernel(ram=64 << 20)
        results = run_calls(k, seq)
        k.check_invariants()
        assert len(results) == len(seq)
        for r in results:
            assert r is None or isinstance(r, int | bytes | Process | QnxError | MemoryFault)
        outcomes.append([_comparable(r) for r in results])
        views.append(k.pidin("mem"))
    assert outcomes[0] == outcomes[1] and views[0] == views[1]


def _comparable(r: object) -> object:
    if isinstance(r, QnxError):
        return ("QnxError", r.errno, r.reason)
    if isinstance(r, MemoryFault):
        return ("MemoryFault", r.signo, r.code, r.addr)
    if isinstance(r, Process):
        return ("Process", r.pid)
    return r


def test_run_calls_resolves_indexes_modulo_the_live_processes() -> None:
    k = Kernel(ram=64 << 20)
    rw = C.PROT_READ | C.PROT_WRITE
    seq = [
        Call("mmap", 0, (0, PS, rw, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)),
        Call("write_memory", 5, (3, 0, 0x41)),  # process 5 % 1 == 0, mapping 3 % 1 == 0
        Call("fork", 0),
        Call("read_memory", 1, (0, 0)),  # the child reads its copy (R-PROC-2)
        Call("exit", 1),
        Call("exit", 0),  # the last live process: skipped
        Call("munmap", 7, (0, 0, 1)),
    ]
    out = run_calls(k, seq)
    assert out[0] == 0x0800_0000 and out[3] == b"A" * 8
    assert out[4] is None and out[5] is None and out[6] == 0
    assert [p.pid for p in k.processes() if p.alive] == [1, 2]


# -- optional dependencies ----------------------------------------------------------------


def test_import_qnxsim_works_without_pytest_and_hypothesis() -> None:
    """DESIGN: pytest and hypothesis are optional; only strategies and the plugin need them."""
    code = (
        "import sys\n"
        "sys.modules['hypothesis'] = None\n"
        "sys.modules['pytest'] = None\n"
        "import qnxsim, qnxsim.testing, qnxsim.refmodel\n"
        "k = qnxsim.Kernel()\n"
        "qnxsim.testing.assert_unmapped(k.spawn(image=False), 0x8000000, 4096)\n"
        "try:\n"
        "    import qnxsim.strategies\n"
        "except ImportError:\n"
        "    print('strategies need hypothesis')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "strategies need hypothesis"
