"""SPEC section 19: every row of the profile table, tested for "8.0", "7.1" and "6.4".

Also the README's generated "Differences between QNX versions" table, and
``profile.for_version``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import PS, RW

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.abilities import NONROOT, ROOT, DomainEntry
from qnxsim.profile import PROFILES, differences_markdown, for_version

VERSIONS = ("8.0", "7.1", "6.4")
README = Path(__file__).resolve().parent.parent / "README.md"


def kernel(version: str) -> Kernel:
    return Kernel(version=version, arch="x86_64", ram=64 << 20)


def fails(
    k: Kernel, p: Process, errno: int, rule: str, call: Callable[..., Any], *args: Any
) -> str:
    before = (p.mappings(), k.meminfo())
    with pytest.raises(QnxError) as info:
        call(*args)
    err = info.value
    assert err.errno == errno, f"{err!r}: expected {E.errorcode[errno]}"
    assert rule in err.reason, err.reason
    assert (p.mappings(), k.meminfo()) == before, "R-CALL-5: a failed call changed state"
    k.check_invariants()
    return err.reason


def deny(p: Process, aid: int, domain: int = ROOT) -> None:
    p.abilities.set(aid, domain, DomainEntry(False))


# -- MAP_TYPE (R-MMAP-1) ----------------------------------------------------------------


@pytest.mark.parametrize("version", ["8.0", "7.1"])
@pytest.mark.parametrize("mtype", [0, 3])
def test_R_MMAP_1_exactly_one_type_on_80_and_71(version: str, mtype: int) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    fails(k, p, E.EINVAL, "R-MMAP-1", p.mmap, 0, PS, RW, mtype | C.MAP_ANON, C.NOFD, 0)


def test_R_MMAP_1_64_type_0_is_map_private() -> None:
    k = kernel("6.4")
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, 0, C.NOFD, 0)  # NOFD implies MAP_ANON (R-MMAP-6)
    rec = p.mapping_at(a)
    assert rec is not None and rec.flags & C.MAP_TYPE == C.MAP_PRIVATE and rec.kind == "anon"


def test_R_MMAP_1_64_map_privateanon_is_private_anon() -> None:
    k = kernel("6.4")
    p = k.spawn(image=False)
    privateanon = k.constants.MAP_PRIVATEANON
    assert privateanon == 3
    a = p.mmap(0, PS, RW, privateanon, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.flags == C.MAP_PRIVATE | C.MAP_ANON


@pytest.mark.parametrize("mtype", range(4, 16))
def test_R_MMAP_1_64_types_4_to_15_pass(mtype: int) -> None:
    k = kernel("6.4")
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, mtype | C.MAP_ANON, C.NOFD, 0)
    rec = p.mapping_at(a)
    assert rec is not None and rec.flags & 0xF == C.MAP_SHARED  # [SIM] as MAP_SHARED
    k.check_invariants()


# -- flag bits (R-MMAP-4, R-MMAP-5, R-MMAP-27) -------------------------------------------


def test_R_MMAP_4_80_map_nosyncfile_0x40_is_no_flag() -> None:
    k = kernel("8.0")
    p = k.spawn(image=False)
    assert k.constants.MAP_NOSYNCFILE == 0
    fails(k, p, E.EINVAL, "R-MMAP-4", p.mmap, 0, PS, RW, C.MAP_PRIVATE | 0x40, C.NOFD, 0)


@pytest.mark.parametrize("version", ["7.1", "6.4"])
def test_R_MMAP_27_map_nosyncfile_0x40_accepted(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    assert k.constants.MAP_NOSYNCFILE == 0x40
    assert p.mmap(0, PS, RW, C.MAP_PRIVATE | 0x40, C.NOFD, 0) > 0


@pytest.mark.parametrize("version", ["8.0", "7.1"])
def test_R_MMAP_5_0x40000_is_map_handle(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    assert k.constants.MAP_HANDLE == 0x40000
    fails(k, p, E.EINVAL, "R-MMAP-5", p.mmap, 0, PS, RW, C.MAP_PRIVATE | 0x40000, C.NOFD, 0)


def test_R_MMAP_4_64_0x40000_is_map_below16m() -> None:
    k = kernel("6.4")
    p = k.spawn(image=False)
    below16m = k.constants.MAP_BELOW16M
    assert below16m == 0x40000 and not hasattr(k.constants, "MAP_HANDLE")
    a = p.mmap(0, 4 * PS, RW, C.MAP_PRIVATE | below16m, C.NOFD, 0)
    for page in range(4):
        paddr, _ = p.mem_offset64(a + page * PS, C.NOFD, PS)
        assert paddr + PS <= 0x100_0000


@pytest.mark.parametrize("version", ["8.0", "7.1", "6.4"])
def test_R_PROC_2_0x20000_is_noinherit_only_where_defined(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON | 0x20000, C.NOFD, 0)
    child = k.process(p.fork())
    inherited = child.mapping_at(a) is not None
    assert inherited == (version == "6.4")  # 6.4: 0x20000 is MAP_NOX64K
    k.check_invariants()


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MMAP_4_reserved_mask_per_profile(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    # 0x00100000 (PG_MODIFIED in 6.4) is reserved in every profile ...
    fails(k, p, E.EINVAL, "reserved bits", p.mmap, 0, PS, RW, C.MAP_PRIVATE | 0x100000, C.NOFD, 0)
    # ... 0x02000000 is reserved in 8.0/7.1 (0xFFF00000) but not in 6.4 (0xF1F00F00),
    # where it is still no MAP_* flag.
    reason = fails(k, p, E.EINVAL, "R-MMAP-4", p.mmap, 0, PS, RW, C.MAP_PRIVATE | 0x2000000,
                   C.NOFD, 0)  # fmt: skip
    assert ("reserved bits" in reason) == (version != "6.4"), reason
    assert PROFILES[version].reserved_mask == k.constants.MAP_RESERVMASK


# -- PROT_EXEC rule (R-MMAP-9, R-MPROT-3) ------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MMAP_9_anon_exec_without_prot_exec_ability(version: str) -> None:
    """8.0: anonymous PROT_EXEC needs only PROT_WRITE_AND_EXEC; 7.1: PROT_EXEC; 6.4: none."""
    k = kernel(version)
    p = k.spawn(uid=1000, image=False)
    deny(p, C.PROCMGR_AID_PROT_EXEC, NONROOT)
    rx = C.PROT_READ | C.PROT_EXEC
    if version == "7.1":
        fails(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0, PS, rx, C.MAP_PRIVATE, C.NOFD, 0)
    else:
        assert p.mmap(0, PS, rx, C.MAP_PRIVATE, C.NOFD, 0) > 0


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MMAP_9_write_and_exec_ability(version: str) -> None:
    k = kernel(version)
    p = k.spawn(uid=1000, image=False)
    deny(p, C.PROCMGR_AID_PROT_WRITE_AND_EXEC, NONROOT)
    rwx = RW | C.PROT_EXEC
    if version == "6.4":
        assert p.mmap(0, PS, rwx, C.MAP_PRIVATE, C.NOFD, 0) > 0
    else:
        fails(k, p, E.EPERM, "R-MMAP-9", p.mmap, 0, PS, rwx, C.MAP_PRIVATE, C.NOFD, 0)


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MPROT_3_exec_rule_per_profile(version: str) -> None:
    k = kernel(version)
    p = k.spawn(uid=1000, image=False)
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE, C.NOFD, 0)
    deny(p, C.PROCMGR_AID_PROT_EXEC, NONROOT)
    if version == "7.1":
        fails(k, p, E.EPERM, "R-MPROT-3", p.mprotect, a, PS, C.PROT_READ | C.PROT_EXEC)
    else:
        assert p.mprotect(a, PS, C.PROT_READ | C.PROT_EXEC) == 0


# -- peer permission (R-PEER-3) ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_R_PEER_3_root_without_mem_peer(version: str) -> None:
    k = kernel(version)
    root = k.spawn(uid=0, image=False)
    target = k.spawn(uid=1000, image=False)
    deny(root, C.PROCMGR_AID_MEM_PEER, ROOT)
    args = (target.pid, 0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    if version == "6.4":  # euid 0 is enough; there are no abilities
        assert root.mmap_peer(*args) > 0
    else:
        fails(k, target, E.EPERM, "R-PEER-3", root.mmap_peer, *args)


@pytest.mark.parametrize("version", VERSIONS)
def test_R_PEER_3_uid_match_and_mismatch(version: str) -> None:
    k = kernel(version)
    caller = k.spawn(uid=1000, image=False)
    same = k.spawn(uid=1000, image=False)
    other = k.spawn(uid=2000, image=False)
    flags = C.MAP_PRIVATE | C.MAP_ANON
    assert caller.mmap_peer(same.pid, 0, PS, RW, flags, C.NOFD, 0) > 0
    fails(k, other, E.EPERM, "R-PEER-3", caller.mmap_peer, other.pid, 0, PS, RW, flags, C.NOFD, 0)


# -- MAP_PHYS, mlock, shm_ctl privilege ----------------------------------------------------

PHYS = 0xF000_0000  # device memory (R-SYS-5)


def _phys_call(p: Process, what: str) -> Callable[[], Any]:
    if what == "MAP_PHYS":
        return lambda: p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_PHYS, C.NOFD, PHYS)
    if what == "mlock":
        a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
        return lambda: p.mlock(a, PS)
    fd = p.shm_open("/priv", C.O_RDWR | C.O_CREAT, 0o600)
    return lambda: p.shm_ctl(fd, C.SHMCTL_PHYS, PHYS, PS)


WHAT_AID = {
    "MAP_PHYS": (C.PROCMGR_AID_MEM_PHYS, "R-MMAP-11"),
    "mlock": (C.PROCMGR_AID_MEM_LOCK, "R-LOCK-1"),
    "shm_ctl": (C.PROCMGR_AID_MEM_PHYS, "R-SHM-7"),
}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("what", list(WHAT_AID))
def test_privilege_root_with_ability_denied(version: str, what: str) -> None:
    """R-MMAP-11 / R-LOCK-1 / R-SHM-7: abilities on 8.0 and 7.1; euid 0 on 6.4; 8.0's
    mlock checks nothing (R-LOCK-5)."""
    k = kernel(version)
    p = k.spawn(uid=0, image=False)
    aid, rule = WHAT_AID[what]
    call = _phys_call(p, what)
    deny(p, aid, ROOT)
    if version == "6.4" or (what == "mlock" and not k.profile.lock_state):  # R-LOCK-5
        assert call() is not None
    else:
        with pytest.raises(QnxError) as info:
            call()
        assert info.value.errno == E.EPERM and rule in info.value.reason


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("what", list(WHAT_AID))
def test_privilege_non_root_refused(version: str, what: str) -> None:
    k = kernel(version)
    p = k.spawn(uid=1000, image=False)
    call = _phys_call(p, what)
    if what == "mlock" and not k.profile.lock_state:  # R-LOCK-5: 8.0 checks no ability
        assert call() == 0
        return
    with pytest.raises(QnxError) as info:
        call()
    want = E.ENOSYS if version == "6.4" and what == "shm_ctl" else E.EPERM
    assert info.value.errno == want, info.value
    assert WHAT_AID[what][1] in info.value.reason


# -- mlockall / munlockall (R-LOCK-3) --------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_R_LOCK_3_mlockall_per_profile(version: str) -> None:
    k = kernel(version)
    p = k.spawn(uid=0, image=False)
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    if version == "8.0":
        assert p.mlockall(0) == 0  # a no-op, even with invalid flags
        assert p.mlockall(C.MCL_CURRENT) == 0
        assert not p.mapping_at(a).locked  # type: ignore[union-attr]
        assert p.munlockall() == 0
        return
    fails(k, p, E.EINVAL, "R-LOCK-3", p.mlockall, 0)
    assert p.mlockall(C.MCL_CURRENT | C.MCL_FUTURE) == 0
    assert p.mapping_at(a).locked  # type: ignore[union-attr]
    b = p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    assert p.mapping_at(b).locked  # type: ignore[union-attr]
    assert p.munlockall() == 0
    assert not p.mapping_at(a).locked  # type: ignore[union-attr]
    k.check_invariants()


@pytest.mark.parametrize("version", ["7.1", "6.4"])
def test_R_LOCK_3_mlockall_privilege(version: str) -> None:
    k = kernel(version)
    p = k.spawn(uid=1000, image=False)
    fails(k, p, E.EPERM, "R-LOCK-3", p.mlockall, C.MCL_CURRENT)


# -- posix_madvise len 0 (R-MADV-2) ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MADV_2_len_0(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    want = E.EINVAL if version == "8.0" else 0
    assert p.posix_madvise(a, 0, C.POSIX_MADV_NORMAL) == want


@pytest.mark.parametrize("version", VERSIONS)
def test_R_MSYNC_1_ms_sync_full_only_on_80(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    a = p.mmap(0, PS, RW, C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0)
    if version == "8.0":
        assert p.msync(a, PS, C.MS_SYNC_FULL) == 0
    else:
        fails(k, p, E.EINVAL, "R-MSYNC-1", p.msync, a, PS, C.MS_SYNC_FULL)


# -- hole fit (R-PLACE-2, R-PLACE-3) -----------------------------------------------------------

X = 0x4000_0000


def _one_page_hole(version: str) -> tuple[Kernel, Process]:
    """Mappings at X and X + 2 pages: a hole of exactly one page at X + 1 page."""
    k = kernel(version)
    p = k.spawn(image=False)
    fixed = C.MAP_PRIVATE | C.MAP_ANON | C.MAP_FIXED
    p.mmap(X, PS, RW, fixed, C.NOFD, 0)
    p.mmap(X + 2 * PS, PS, RW, fixed, C.NOFD, 0)
    return k, p


@pytest.mark.parametrize("version", VERSIONS)
def test_R_PLACE_2_hole_fit_upward(version: str) -> None:
    k, p = _one_page_hole(version)
    got = p.mmap(X + PS, PS, RW, C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0)
    # 6.4 needs size + one page: the one-page hole is skipped, the next hole starts at X+3P.
    assert got == (X + 3 * PS if version == "6.4" else X + PS)
    k.check_invariants()


@pytest.mark.parametrize("version", VERSIONS)
def test_R_PLACE_3_hole_fit_downward(version: str) -> None:
    k, p = _one_page_hole(version)
    got = p.mmap(X + PS, PS, RW, C.MAP_PRIVATE | C.MAP_ANON | C.MAP_BELOW, C.NOFD, 0)
    # 6.4: the hole below X is used, the mapping at its top (the rules are otherwise equal).
    assert got == (X - PS if version == "6.4" else X + PS)
    k.check_invariants()


# -- shm_ctl failure errno (R-SHM-7) -----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_R_SHM_7_failure_errno(version: str) -> None:
    k = kernel(version)
    p = k.spawn(image=False)
    fd = p.shm_open("/x", C.O_RDWR | C.O_CREAT, 0o600)
    want = E.ENOSYS if version == "6.4" else E.EINVAL
    fails(k, p, want, "R-SHM-7", p.shm_ctl, fd, 0x10000, 0, PS)  # an unknown flag bit
    fails(k, p, E.ENOSYS if version == "6.4" else E.EBADF, "R-SHM-7", p.shm_ctl, 99, 1, 0, PS)
    assert p.shm_ctl(fd, C.SHMCTL_ANON, 0, PS) == 0


# -- arch default (R-SYS-1) --------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_R_SYS_1_arch_default(version: str) -> None:
    assert Kernel(version=version).arch == ("x86" if version == "6.4" else "x86_64")
    assert Kernel(version=version, arch="aarch64").arch == "aarch64"


def test_R_SYS_1_unknown_version_is_valueerror() -> None:
    with pytest.raises(ValueError):
        Kernel(version="7.0")


# -- constants per version, README -------------------------------------------------------------


def test_constants_for_version() -> None:
    assert for_version("8.0").MAP_NOINHERIT == C.MAP_NOINHERIT
    assert for_version("8.0").MAP_TYPE == 0x3
    c71 = for_version("7.1")
    assert c71.MAP_NOSYNCFILE == 0x40 and not hasattr(c71, "MS_SYNC_FULL")
    c64 = for_version("6.4")
    assert (c64.MAP_TYPE, c64.MAP_NOX64K, c64.MAP_BELOW16M) == (0xF, 0x20000, 0x40000)
    assert c64.MAP_RESERVMASK == 0xF1F00F00
    assert not hasattr(c64, "MAP_NOINHERIT") and not hasattr(c64, "MAP_HANDLE")
    assert C.MAP_NOSYNCFILE == 0  # the module itself stays 8.0


def test_readme_differences_table_is_generated() -> None:
    text = README.read_text(encoding="utf-8")
    begin = "<!-- differences:begin (generated by qnxsim.profile.differences_markdown) -->\n"
    end = "<!-- differences:end -->"
    assert begin in text and end in text
    section = text.split(begin, 1)[1].split(end, 1)[0]
    assert section == differences_markdown()


# -- flag names and SHM_ANON per version ----------------------------------------------------


def test_SPEC_19_trace_pidin_maps_and_html_name_flags_with_the_kernels_profile() -> None:
    """0x20000 is MAP_NOX64K on 6.4 and MAP_NOINHERIT on 8.0, in every view."""
    from qnxsim.html import process_html
    from qnxsim.render import maps

    names = {}
    for version in ("8.0", "6.4"):
        k = Kernel(version=version, trace=True)
        p = k.spawn(image=False)
        flags = C.MAP_PRIVATE | C.MAP_ANON | 0x20000
        p.mmap(0, k.page_size, C.PROT_READ, flags, C.NOFD, 0)
        views = (k.trace[-1].explain(), maps(k, [p]), process_html(p))
        names[version] = views
    assert all("MAP_NOINHERIT" in v for v in names["8.0"])
    assert all("MAP_NOX64K" in v and "MAP_NOINHERIT" not in v for v in names["6.4"])
    assert PROFILES["6.4"].map_flag_names[0x40000] == "MAP_BELOW16M"
    assert PROFILES["7.1"].map_flag_names[0x40] == "MAP_NOSYNCFILE"


def test_R_SHM_1_SPEC_19_shm_anon_is_7_1_and_later() -> None:
    """6.4 has no SHM_ANON: [SIM] EINVAL, nothing made; 7.1 and 8.0 make an unnamed object."""
    for version in ("8.0", "7.1"):
        p = Kernel(version=version).spawn(image=False)
        assert p.shm_open(C.SHM_ANON, C.O_RDWR | C.O_CREAT, 0o600) >= 0
    k = Kernel(version="6.4")
    p = k.spawn(image=False)
    before = k.meminfo()
    with pytest.raises(QnxError) as info:
        p.shm_open(C.SHM_ANON, C.O_RDWR | C.O_CREAT, 0o600)
    assert info.value.errno == E.EINVAL and info.value.reason.startswith("R-SHM-1 [SIM]")
    assert "no SHM_ANON" in info.value.reason and k.meminfo() == before
    assert p.libc.shm_open(C.SHM_ANON, C.O_RDWR | C.O_CREAT, 0o600) == -1
    assert p.libc.errno == E.EINVAL
    assert p.open("/dev/zero", C.O_RDONLY) == 0  # no fd was taken
