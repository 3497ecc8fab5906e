"""Security properties: random ability tables and credentials against the memory calls.

For random tables (allow/deny and subranges, per domain, for MEM_PEER, MAP_FIXED,
PROT_EXEC, PROT_WRITE_AND_EXEC, MEM_PHYS and MEM_LOCK) and random credentials, each call's
outcome must equal a direct evaluation of R-ABLE-2 on the table, written here from the SPEC
text (R-ABLE-1..3, R-MMAP-9/10/11, R-MPROT-3, R-PEER-3/4, R-LOCK-1).  So no call succeeds
that the table forbids, and a refused call changes nothing (R-CALL-5).

Per version (SPEC 19): 7.1's PROT_EXEC rule asks PROT_EXEC always and, with PROT_WRITE,
PROT_WRITE_AND_EXEC too; 6.4 has no abilities, so the table does not matter there: MEM_PEER,
MEM_PHYS and MEM_LOCK are "euid 0", MAP_FIXED and PROT_EXEC always pass.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from support import PROGRAM_BASE, PS, SHMEM_BASE, R

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as qerrno
from qnxsim.abilities import NONROOT, ROOT, DomainEntry
from qnxsim.profile import PROFILES, ROOT_ONLY_AIDS, Profile

FIXED_BASE = 0x0000_0000_4000_0000  # a quiet place for MAP_FIXED requests
DEVICE = 0xF000_0000  # R-SYS-5
FILE = "/lib/libprop.so"
FILE_PAGES = 4

MEM_PEER = C.PROCMGR_AID_MEM_PEER
MAP_FIXED = C.PROCMGR_AID_MAP_FIXED
PROT_EXEC = C.PROCMGR_AID_PROT_EXEC
WRITE_AND_EXEC = C.PROCMGR_AID_PROT_WRITE_AND_EXEC
MEM_PHYS = C.PROCMGR_AID_MEM_PHYS
MEM_LOCK = C.PROCMGR_AID_MEM_LOCK
#: R-ABLE-3: (root, nonroot) defaults of the abilities under test.
SPEC_DEFAULTS = {
    MEM_PEER: (True, False),
    MAP_FIXED: (True, True),
    PROT_EXEC: (True, True),
    WRITE_AND_EXEC: (True, True),
    MEM_PHYS: (True, False),
    MEM_LOCK: (True, False),
}
AIDS = tuple(SPEC_DEFAULTS)
DOMAINS = ((ROOT, C.PROCMGR_ADN_ROOT), (NONROOT, C.PROCMGR_ADN_NONROOT))

Table = dict[tuple[int, int], DomainEntry]


# -- the model: R-ABLE-1 and R-ABLE-2 from the SPEC text --------------------------------------


def spec_allows(table: Table, aid: int, euid: int, lo: int, hi: int) -> bool:
    """R-ABLE-1: the domain is the current euid's.  R-ABLE-2: denied → no; allowed without
    subranges → yes; with subranges → yes only if one subrange holds all of [lo, hi]."""
    domain = ROOT if euid == 0 else NONROOT
    entry = table.get((aid, domain))
    if entry is None:
        root, nonroot = SPEC_DEFAULTS[aid]
        return root if domain == ROOT else nonroot
    if not entry.allowed:
        return False
    if not entry.subranges:
        return True
    return any(a <= lo and hi <= b for a, b in entry.subranges)


def allows(profile: Profile, table: Table, aid: int, euid: int, lo: int, hi: int) -> bool:
    """``spec_allows`` on a version with abilities; on 6.4 (SPEC 19) the abilities that
    deny non-root by default are "euid 0" and every other check passes."""
    if not profile.abilities:
        return euid == 0 if aid in ROOT_ONLY_AIDS else True
    return spec_allows(table, aid, euid, lo, hi)


def exec_aids(profile: Profile, file_backed: bool, write: bool) -> tuple[int, ...]:
    """The abilities PROT_EXEC needs, in check order: R-MMAP-9 / R-MPROT-3 (8.0); 7.1:
    PROT_EXEC, and with PROT_WRITE also PROT_WRITE_AND_EXEC; 6.4: none (SPEC 19)."""
    if profile.exec_rule == "none":
        return ()
    if profile.exec_rule == "7.1":
        return (PROT_EXEC, WRITE_AND_EXEC) if write else (PROT_EXEC,)
    return (PROT_EXEC if file_backed and not write else WRITE_AND_EXEC,)


def place_up(proc: Process, hint: int, size: int) -> int:
    """R-PLACE-2 for this test's layouts: the lowest free place at or above the hint."""
    at = hint
    for m in proc.mappings():
        if m.end <= at:
            continue
        if m.start >= at + size:
            break
        at = m.end
    return at


# -- strategies ---------------------------------------------------------------------------


def subranges_near(bases: list[int], unit: int) -> st.SearchStrategy[tuple[int, int]]:
    """An inclusive ``[lo, hi]`` a few units from one of ``bases``, or everything."""
    near = st.builds(
        lambda base, i, n: (base + i * unit, base + (i + n) * unit - 1),
        st.sampled_from(bases),
        st.integers(0, 6),
        st.integers(1, 6),
    )
    return st.one_of(near, st.just((0, 2**64 - 1)))


VALUE_SPACE = {
    MEM_PEER: subranges_near([2], 1),  # pids
    MAP_FIXED: subranges_near([FIXED_BASE, PROGRAM_BASE], PS),  # vaddr
    PROT_EXEC: subranges_near([FIXED_BASE, PROGRAM_BASE, SHMEM_BASE], PS),
    WRITE_AND_EXEC: subranges_near([FIXED_BASE, PROGRAM_BASE, SHMEM_BASE], PS),
    MEM_PHYS: subranges_near([DEVICE], PS),  # paddr
    MEM_LOCK: subranges_near([FIXED_BASE, PROGRAM_BASE, SHMEM_BASE], PS),
}


@st.composite
def ability_tables(draw: st.DrawFn) -> Table:
    table: Table = {}
    for aid in AIDS:
        for domain, _ in DOMAINS:
            if draw(st.booleans()):
                continue  # the R-ABLE-3 default
            allowed = draw(st.booleans())
            subs = draw(st.lists(VALUE_SPACE[aid], max_size=2))
            table[(aid, domain)] = DomainEntry(allowed, tuple(subs))
    return table


#: How the caller's credentials are reached: spawn as root, then nothing / seteuid / setuid.
CREDENTIALS = st.sampled_from(["root", "root-seteuid-1000", "setuid-1000"])

mmap_calls = st.fixed_dictionaries(
    {
        "call": st.just("mmap"),
        "kind": st.sampled_from(["anon", "shared-anon", "file", "phys"]),
        "pages": st.integers(1, 3),
        "exec": st.booleans(),
        "write": st.booleans(),
        "fixed": st.booleans(),
        "fixed_base": st.sampled_from([FIXED_BASE, PROGRAM_BASE]),
        "fixed_page": st.integers(0, 8),
        "phys_page": st.integers(0, 8),
    }
)
peer_calls = st.fixed_dictionaries(
    {
        "call": st.just("mmap_peer"),
        "target": st.integers(0, 2),
        "kind": st.sampled_from(["anon", "shared-anon"]),
        "pages": st.integers(1, 2),
        "exec": st.booleans(),
        "write": st.booleans(),
        "fixed": st.booleans(),
        "fixed_base": st.just(FIXED_BASE),
        "fixed_page": st.integers(0, 8),
        "phys_page": st.just(0),
    }
)
lock_calls = st.fixed_dictionaries(
    {"call": st.just("mlock"), "which": st.integers(0, 20), "page": st.integers(0, 3),
     "pages": st.integers(1, 3)}
)  # fmt: skip
mprotect_calls = st.fixed_dictionaries(
    {"call": st.just("mprotect"), "which": st.integers(0, 20), "page": st.integers(0, 3),
     "pages": st.integers(1, 3), "write": st.booleans()}
)  # fmt: skip
CALLS = st.lists(st.one_of(mmap_calls, peer_calls, lock_calls, mprotect_calls), min_size=1,
                 max_size=6)  # fmt: skip


# -- the world ----------------------------------------------------------------------------


def world(version: str = "8.0") -> tuple[Kernel, Process, list[Process], int]:
    """A kernel, the caller (spawned as root), three peer targets, and the caller's file fd."""
    k = Kernel(ram=64 << 20, version=version, arch="x86_64")
    k.create_file(FILE, b"\x7fELF" + bytes(FILE_PAGES * PS - 4), mode=0o755)
    caller = k.spawn(uid=0, image=False)
    targets = [k.spawn(uid=uid, image=False) for uid in (1000, 2000, 0)]
    fd = caller.open(FILE, C.O_RDONLY)
    return k, caller, targets, fd


def set_credentials(p: Process, creds: str) -> None:
    if creds == "root-seteuid-1000":
        assert p.seteuid(1000) == 0
    elif creds == "setuid-1000":
        assert p.setuid(1000) == 0


def install_directly(p: Process, table: Table) -> None:
    for (aid, domain), entry in table.items():
        p.abilities.set(aid, domain, entry)


def install_with_procmgr_ability(p: Process, table: Table) -> None:
    """R-ABLE-4 as root on itself: ALLOW or DENY, then one SUBRANGE entry per subrange."""
    words: list[int] = []
    for (aid, domain), entry in table.items():
        adn = dict(DOMAINS)[domain]
        words.append(adn | (C.PROCMGR_AOP_ALLOW if entry.allowed else C.PROCMGR_AOP_DENY) | aid)
        for lo, hi in entry.subranges:
            words += [adn | C.PROCMGR_AOP_SUBRANGE | aid, lo, hi]
    assert p.procmgr_ability(0, *words) == 0
    for (aid, domain), entry in table.items():
        assert p.abilities.entry(aid, domain) == entry


def snapshot(k: Kernel) -> tuple[object, ...]:
    return (tuple((p.pid, p.mappings()) for p in k.processes()), k.meminfo())


# -- expectations ---------------------------------------------------------------------------


def expect_mmap(
    table: Table, caller: Process, space: Process, c: dict[str, Any]
) -> tuple[int, str, int, int]:
    """(errno or 0, rule, start, size) for an mmap-like request made by ``caller`` into
    ``space`` (R-PEER-4: the caller's abilities, the target's placement)."""
    size = c["pages"] * PS
    if c["fixed"]:
        start = c["fixed_base"] + c["fixed_page"] * PS
    else:
        hint = PROGRAM_BASE if c["kind"] == "anon" else SHMEM_BASE  # R-PLACE-1
        start = place_up(space, hint, size)
    euid = caller.euid
    profile = caller.kernel.profile
    for aid in exec_aids(profile, c["kind"] == "file", c["write"]) if c["exec"] else ():
        if not allows(profile, table, aid, euid, start, start + size - 1):  # R-MMAP-9
            return qerrno.EPERM, "R-MMAP-9", start, size
    if c["fixed"] and not allows(profile, table, MAP_FIXED, euid, start, start + size - 1):
        return qerrno.EPERM, "R-MMAP-10", start, size  # R-MMAP-10
    if c["kind"] == "phys":  # R-MMAP-11
        off = DEVICE + c["phys_page"] * PS
        if not allows(profile, table, MEM_PHYS, euid, off, off + size - 1):
            return qerrno.EPERM, "R-MMAP-11", start, size
    return 0, "", start, size


def mmap_args(c: dict[str, Any], fd: int, start: int, size: int) -> tuple[int, ...]:
    prot = R | (C.PROT_WRITE if c["write"] else 0) | (C.PROT_EXEC if c["exec"] else 0)
    flags = C.MAP_FIXED if c["fixed"] else 0
    addr = start if c["fixed"] else 0
    if c["kind"] == "anon":
        return addr, size, prot, flags | C.MAP_PRIVATE | C.MAP_ANON, C.NOFD, 0
    if c["kind"] == "shared-anon":
        return addr, size, prot, flags | C.MAP_SHARED | C.MAP_ANON, C.NOFD, 0
    if c["kind"] == "file":
        return addr, size, prot, flags | C.MAP_PRIVATE, fd, 0
    off = DEVICE + c["phys_page"] * PS
    return addr, size, prot, flags | C.MAP_SHARED | C.MAP_PHYS, C.NOFD, off


def run_call(
    k: Kernel, table: Table, caller: Process, targets: list[Process], fd: int, c: dict[str, Any]
) -> None:
    before = snapshot(k)
    want, rule = 0, ""
    profile = k.profile
    if c["call"] in ("mmap", "mmap_peer"):
        space = caller if c["call"] == "mmap" else targets[c["target"]]
        if c["call"] == "mmap_peer":  # R-PEER-3: the ability for the pid, or the uid rule
            pid = space.pid
            by_uid = bool({caller.ruid, caller.euid} & {space.ruid, space.suid})
            if not (allows(profile, table, MEM_PEER, caller.euid, pid, pid) or by_uid):
                want, rule = qerrno.EPERM, "R-PEER-3"
        start, size = 0, c["pages"] * PS
        if not want:
            want, rule, start, size = expect_mmap(table, caller, space, c)
        args = mmap_args(c, fd, start, size)

        def call() -> int:
            if c["call"] == "mmap":
                return caller.mmap(*args)
            return caller.mmap_peer(space.pid, *args)

    else:
        mine = caller.mappings()
        if not mine:
            return
        rec = mine[c["which"] % len(mine)]
        first = min(rec.start + c["page"] * PS, rec.end - PS)
        end = min(first + c["pages"] * PS, rec.end)
        if c["call"] == "mlock":  # R-LOCK-1: MEM_LOCK for the (widened) range
            if not allows(profile, table, MEM_LOCK, caller.euid, first, end - 1):
                want, rule = qerrno.EPERM, "R-LOCK-1"

            def call() -> int:
                return caller.mlock(first, end - first)

        else:  # R-MPROT-3 with R-MMAP-9's choice; "fd != NOFD" is "a file mapping"
            prot = R | C.PROT_EXEC | (C.PROT_WRITE if c["write"] else 0)
            for aid in exec_aids(profile, rec.kind == "file", c["write"]):
                if not allows(profile, table, aid, caller.euid, first, end - 1):
                    want, rule = qerrno.EPERM, "R-MPROT-3"
                    break

            def call() -> int:
                return caller.mprotect(first, end - first, prot)

    event(f"{c['call']}: {rule or 'allowed'}")
    if want:
        try:
            call()
        except QnxError as err:
            assert err.errno == want, (c, err)
            assert rule in err.reason, (c, err.reason)
        else:
            raise AssertionError(f"{c} succeeded; the table forbids it ({rule})")
        assert snapshot(k) == before, f"refused {c} changed the system"
    else:
        result = call()
        if c["call"] in ("mmap", "mmap_peer"):
            assert result == start, (c, hex(result), hex(start))
            space = caller if c["call"] == "mmap" else targets[c["target"]]
            rec2 = space.mapping_at(start)
            assert rec2 is not None and rec2.start <= start and start + size <= rec2.end
        else:
            assert result == 0
    k.check_invariants()


# -- the properties -----------------------------------------------------------------------


@pytest.mark.parametrize("version", list(PROFILES))
@settings(max_examples=100, deadline=None)
@given(table=ability_tables(), creds=CREDENTIALS, calls=CALLS)
def test_R_ABLE_2_calls_agree_with_the_table_set_directly(
    version: str, table: Table, creds: str, calls: list[dict[str, Any]]
) -> None:
    """On 6.4 the table is set but not consulted: the prediction is "euid 0 or pass"."""
    k, caller, targets, fd = world(version)
    install_directly(caller, table)
    set_credentials(caller, creds)
    for c in calls:
        run_call(k, table, caller, targets, fd, c)


@pytest.mark.parametrize("version", [v for v, p in PROFILES.items() if p.abilities])
@settings(max_examples=100, deadline=None)
@given(table=ability_tables(), creds=CREDENTIALS, calls=CALLS)
def test_R_ABLE_4_calls_agree_with_the_table_set_by_procmgr_ability(
    version: str, table: Table, creds: str, calls: list[dict[str, Any]]
) -> None:
    k, caller, targets, fd = world(version)
    install_with_procmgr_ability(caller, table)
    set_credentials(caller, creds)
    for c in calls:
        run_call(k, table, caller, targets, fd, c)


@pytest.mark.parametrize("version", list(PROFILES))
@settings(max_examples=100, deadline=None)
@given(table=ability_tables(), calls=CALLS)
def test_R_ABLE_1_non_root_spawned_process_follows_the_nonroot_domain(
    version: str, table: Table, calls: list[dict[str, Any]]
) -> None:
    """A process that never was root: only the nonroot half of the table applies (on 6.4:
    the euid 0 rule, so MEM_PEER by uid match only, MEM_PHYS and MEM_LOCK never)."""
    k = Kernel(ram=64 << 20, version=version, arch="x86_64")
    k.create_file(FILE, b"\x7fELF" + bytes(FILE_PAGES * PS - 4), mode=0o755)
    caller = k.spawn(uid=1000, image=False)
    targets = [k.spawn(uid=uid, image=False) for uid in (1000, 2000, 0)]
    fd = caller.open(FILE, C.O_RDONLY)
    install_directly(caller, table)
    for c in calls:
        run_call(k, table, caller, targets, fd, c)
