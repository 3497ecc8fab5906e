"""Per-version differences of QNX, as data (SPEC section 19).

A ``Profile`` holds every point on which QNX versions differ; the rules read these fields
instead of testing version strings.  ``PROFILES`` has "8.0" (the default), "7.1" and "6.4";
``differences_markdown`` renders the README's table of differences from the same data.
"""

from __future__ import annotations

import functools
import operator
import types
from typing import Any

import attrs

from qnxsim import constants as C
from qnxsim import errno as E

#: Abilities whose R-ABLE-3 default denies non-root; on a profile without abilities (6.4)
#: these checks are "euid == 0" and every other ability check passes (SPEC 19).
ROOT_ONLY_AIDS = frozenset(
    {
        C.PROCMGR_AID_MEM_ADD,
        C.PROCMGR_AID_MEM_PHYS,
        C.PROCMGR_AID_MEM_SPECIAL,
        C.PROCMGR_AID_MEM_GLOBAL,
        C.PROCMGR_AID_MEM_PEER,
        C.PROCMGR_AID_MEM_LOCK,
        C.PROCMGR_AID_XPROCESS_ABLE,
    }
)

#: The MAP_* flags (other than the type field) QNX 8.0 defines, name -> value (SPEC 18).
_FLAGS_8_0: tuple[tuple[str, int], ...] = (
    ("MAP_FIXED", 0x10), ("MAP_ELF", 0x20), ("MAP_LAZY", 0x80), ("MAP_STACK", 0x1000),
    ("MAP_BELOW", 0x2000), ("MAP_NOINIT", 0x4000), ("MAP_PHYS", 0x10000),
    ("MAP_NOINHERIT", 0x20000), ("MAP_HANDLE", 0x40000), ("MAP_ANON", 0x80000),
)  # fmt: skip
#: 7.1 adds MAP_NOSYNCFILE 0x40 (SPEC 18).
_FLAGS_7_1 = (*_FLAGS_8_0, ("MAP_NOSYNCFILE", 0x40))
#: 6.4's <sys/mman.h> (openqnx): 0x20000 and 0x40000 are physical placement flags, and
#: MAP_NOSYNCFILE 0x40 and MAP_RENAME 0x8000 are defined.
_FLAGS_6_4: tuple[tuple[str, int], ...] = (
    ("MAP_FIXED", 0x10), ("MAP_ELF", 0x20), ("MAP_NOSYNCFILE", 0x40), ("MAP_LAZY", 0x80),
    ("MAP_STACK", 0x1000), ("MAP_BELOW", 0x2000), ("MAP_NOINIT", 0x4000),
    ("MAP_RENAME", 0x8000), ("MAP_PHYS", 0x10000), ("MAP_NOX64K", 0x20000),
    ("MAP_BELOW16M", 0x40000), ("MAP_ANON", 0x80000),
)  # fmt: skip


#: The SHMCTL_* flags QNX 7.1 added (SPEC 19: undefined on 6.4).
_SHMCTL_7_1 = C.SHMCTL_SEAL | C.SHMCTL_REVOCABLE | C.SHMCTL_TYMEM | C.SHMCTL_GET_FLAGS


@functools.cache
def _flag_table(flags: tuple[tuple[str, int], ...]) -> dict[str, int]:
    """``map_flags`` as a dict, built once per profile (``flag`` is on the mmap path)."""
    return dict(flags)


@attrs.frozen
class Profile:
    """What one QNX version does where versions differ (SPEC 19).

    Read by: ``vmm`` (MAP_TYPE, flag bits, PROT_EXEC, mlockall, posix_madvise, msync),
    ``placement`` (hole fit), ``process`` (abilities or euid 0, shm_ctl errno, fork's
    MAP_NOINHERIT, the default arch), ``physmem`` (MAP_BELOW16M / MAP_NOX64K).
    """

    version: str
    #: SPEC 19 "arch default": the arch of ``Kernel(version=...)`` without ``arch``.
    default_arch: str
    #: R-MMAP-1: the mask of the sharing-type field.
    map_type_mask: int
    #: SPEC 19 (6.4): type values rewritten before R-MMAP-1, as ``(type, flags for it)``.
    map_type_compat: tuple[tuple[int, int], ...]
    #: SPEC 19 (6.4): the flags any other type value in 4..mask becomes; None: EINVAL.
    map_type_other: int | None
    #: R-MMAP-4: reserved bits.
    reserved_mask: int
    #: R-MMAP-4: the defined MAP_* flags, name -> value (the type field excluded).
    map_flags: tuple[tuple[str, int], ...]
    #: R-MMAP-9 / R-MPROT-3: "8.0" (R-MMAP-9), "7.1" (PROT_EXEC always needs
    #: PROCMGR_AID_PROT_EXEC; W+X also PROCMGR_AID_PROT_WRITE_AND_EXEC) or "none".
    exec_rule: str
    #: SPEC 16: abilities exist; False (6.4): ROOT_ONLY_AIDS checks are euid 0, others pass.
    abilities: bool
    #: R-LOCK-7: lock state exists (7.1, 6.4: R-LOCK-1..4, R-MSYNC-3, R-MMAP-19).  Without
    #: it (8.0) mlock only checks its range (R-LOCK-5), munlock returns 0 (R-LOCK-6) and
    #: mlockall/munlockall do nothing (R-LOCK-3).
    lock_state: bool
    #: R-LOCK-1: the errno of a lock over RLIMIT_MEMLOCK (7.1: ENOMEM; 6.4: EAGAIN).
    memlock_errno: int
    #: R-MADV-2: posix_madvise with len 0 is EINVAL (8.0) or succeeds.
    madvise_len0_einval: bool
    #: R-MSYNC-1: MS_SYNC_FULL is a valid msync flag (8.0 only).
    ms_sync_full: bool
    #: SPEC 19 hole fit: a hole must hold size + this many pages (6.4 quirk: 1).
    hole_slack_pages: int
    #: SPEC 19 / R-SHM-7: the errno of every shm_ctl failure (6.4 libc: ENOSYS); None: R-SHM-7.
    shm_ctl_errno: int | None
    #: SPEC 19 / R-TYMEM-2: posix_typed_mem_open without ALLOCATE(_CONTIG) needs euid 0
    #: (6.4's devmem.c); False: allowed, the mapping needs PROCMGR_AID_MEM_PHYS (R-TYMEM-4).
    tymem_direct_needs_root: bool = False
    #: R-MOFF-4 / SPEC 19: posix_mem_offset's ``off`` is the physical address (7.1, 8.0);
    #: False (6.4 [SIM]): the offset in the typed-memory pool when the caller has an fd
    #: open on the pool the memory came from.
    mem_offset_physical: bool = True
    #: R-SHM-1: SHM_ANON exists (7.1+).  [SIM] Without it (6.4) shm_open(SHM_ANON) is
    #: EINVAL: 6.4 defines no SHM_ANON, and its value, the pointer (const char *)1, is
    #: no valid path.
    shm_anon: bool = True
    #: R-SHM-7 step 2: the SHMCTL_* bits the version defines.  [SIM] 6.4 has no
    #: SHMCTL_SEAL, _REVOCABLE, _TYMEM or _GET_FLAGS (7.1+): a call using them fails.
    shmctl_flags: int = C.SHMCTL_FLAG_MASK
    #: SPEC 13.3: shared memory handles, mmap_handle and shm_revoke exist (7.1+); without
    #: them (6.4) every such call is ENOSYS [SIM].
    handles: bool = True
    #: SPEC 18: the SHM_CREATE_HANDLE_OPT_* names the version defines (SUBRANGE: 8.0).
    handle_options: tuple[tuple[str, int], ...] = (
        ("SHM_CREATE_HANDLE_OPT_NOFD", C.SHM_CREATE_HANDLE_OPT_NOFD),
        ("SHM_CREATE_HANDLE_OPT_SUBRANGE", C.SHM_CREATE_HANDLE_OPT_SUBRANGE),
    )
    #: Derived, not set: R-MMAP-4's defined bits (every MAP_* flag and the type field).
    known_map_flags: int = attrs.field(init=False, repr=False, eq=False)
    #: Derived, not set: the flags of this version that take mmap off its common path
    #: (MAP_HANDLE, R-MMAP-5; 6.4's MAP_BELOW16M and MAP_NOX64K, SPEC 19).
    rare_map_flags: int = attrs.field(init=False, repr=False, eq=False)

    @known_map_flags.default
    def _known_map_flags(self) -> int:
        flags = _flag_table(self.map_flags).values()
        return functools.reduce(operator.or_, flags, self.map_type_mask)

    @rare_map_flags.default
    def _rare_map_flags(self) -> int:
        names = ("MAP_HANDLE", "MAP_BELOW16M", "MAP_NOX64K")
        return functools.reduce(operator.or_, map(self.flag, names), 0)

    @property
    def mlockall_noop(self) -> bool:
        """R-LOCK-3: mlockall/munlockall do nothing and return 0 (8.0: no lock state)."""
        return not self.lock_state

    def flag(self, name: str) -> int:
        """The value of MAP_* flag ``name`` in this profile; 0 when it does not define it."""
        return _flag_table(self.map_flags).get(name, 0)

    @property
    def map_flag_names(self) -> dict[int, str]:
        """Value -> name of this version's MAP_* flags, MAP_SHARED and MAP_PRIVATE included,
        for ``constants.flag_names`` (6.4 names 0x20000 MAP_NOX64K, SPEC 19)."""
        return _flag_names(self.map_flags)

    def constants(self) -> types.SimpleNamespace:
        """``qnxsim.constants`` with this profile's values (SPEC 18, 19): names it does not
        define are left out (6.4 has no MAP_NOINHERIT), names it adds are put in."""
        values: dict[str, Any] = {n: v for n, v in vars(C).items() if n.isupper()}
        for name in ("MAP_NOINHERIT", "MAP_HANDLE", "MAP_NOX64K", "MAP_BELOW16M"):
            values.pop(name, None)
        if not self.ms_sync_full:
            values.pop("MS_SYNC_FULL", None)
        for name in [n for n in values if n.startswith("SHMCTL_") and n != "SHMCTL_FLAG_MASK"]:
            if values[name] & ~self.shmctl_flags:
                del values[name]  # SPEC 19: 6.4 has no SEAL, REVOCABLE, TYMEM, GET_FLAGS
        for name in ("SHM_CREATE_HANDLE_OPT_NOFD", "SHM_CREATE_HANDLE_OPT_SUBRANGE"):
            values.pop(name, None)
        values.update(self.handle_options)
        values.update(self.map_flags)
        values["MAP_NOSYNCFILE"] = self.flag("MAP_NOSYNCFILE")
        values["MAP_RENAME"] = self.flag("MAP_RENAME")
        values["MAP_TYPE"] = self.map_type_mask
        values["MAP_RESERVMASK"] = self.reserved_mask
        for value, flags in self.map_type_compat:
            if flags == C.MAP_PRIVATE | C.MAP_ANON:
                values["MAP_PRIVATEANON"] = value
        return types.SimpleNamespace(**values)


PROFILES: dict[str, Profile] = {
    "8.0": Profile(
        "8.0", default_arch="x86_64", map_type_mask=0x3, map_type_compat=(),
        map_type_other=None, reserved_mask=0xFFF00000, map_flags=_FLAGS_8_0, exec_rule="8.0",
        abilities=True, lock_state=False, memlock_errno=E.ENOMEM, madvise_len0_einval=True,
        ms_sync_full=True, hole_slack_pages=0, shm_ctl_errno=None,
    ),
    "7.1": Profile(
        "7.1", default_arch="x86_64", map_type_mask=0x3, map_type_compat=(),
        map_type_other=None, reserved_mask=0xFFF00000, map_flags=_FLAGS_7_1, exec_rule="7.1",
        abilities=True, lock_state=True, memlock_errno=E.ENOMEM, madvise_len0_einval=False,
        ms_sync_full=False, hole_slack_pages=0, shm_ctl_errno=None,
        handle_options=(("SHM_CREATE_HANDLE_OPT_NOFD", C.SHM_CREATE_HANDLE_OPT_NOFD),),
    ),
    "6.4": Profile(
        "6.4", default_arch="x86", map_type_mask=0xF,
        map_type_compat=((0, C.MAP_PRIVATE), (3, C.MAP_PRIVATE | C.MAP_ANON)),
        map_type_other=C.MAP_SHARED, reserved_mask=0xF1F00F00, map_flags=_FLAGS_6_4,
        exec_rule="none", abilities=False, lock_state=True, memlock_errno=E.EAGAIN,
        madvise_len0_einval=False, ms_sync_full=False, hole_slack_pages=1,
        shm_ctl_errno=E.ENOSYS, shm_anon=False,
        shmctl_flags=C.SHMCTL_FLAG_MASK & ~_SHMCTL_7_1, handles=False, handle_options=(),
        tymem_direct_needs_root=True, mem_offset_physical=False,
    ),
}  # fmt: skip


@functools.cache
def _flag_names(flags: tuple[tuple[str, int], ...]) -> dict[int, str]:
    """``Profile.map_flag_names``, built once per profile."""
    return {C.MAP_SHARED: "MAP_SHARED", C.MAP_PRIVATE: "MAP_PRIVATE"} | {v: n for n, v in flags}


def normalize_map_type(flags: int, profile: Profile) -> int:
    """SPEC 19 (6.4): rewrite the type field to MAP_SHARED or MAP_PRIVATE before R-MMAP-1.

    Type 0 becomes MAP_PRIVATE, 3 (MAP_PRIVATEANON) MAP_PRIVATE|MAP_ANON, and [SIM] 4..15
    pass as MAP_SHARED (6.4's memory manager privatises only MAP_PRIVATE).  Profiles
    without compatibility types return ``flags`` unchanged.

    >>> hex(normalize_map_type(0x3, PROFILES["6.4"])), hex(normalize_map_type(0x3, PROFILES["8.0"]))
    ('0x80002', '0x3')
    """
    if not profile.map_type_compat and profile.map_type_other is None:
        return flags
    mask = profile.map_type_mask
    t = flags & mask
    if t in (C.MAP_SHARED, C.MAP_PRIVATE):
        return flags
    new = dict(profile.map_type_compat).get(t, profile.map_type_other)
    if new is None:
        return flags
    return (flags & ~mask) | new


def for_version(version: str) -> types.SimpleNamespace:
    """The constants of QNX ``version`` ("8.0", "7.1", "6.4") as a namespace of names ->
    values: ``qnxsim.constants`` with the profile's differences (SPEC 19); KeyError for
    an unknown version.

    >>> hex(for_version("6.4").MAP_NOX64K), hasattr(for_version("6.4"), "MAP_NOINHERIT")
    ('0x20000', False)
    """
    return PROFILES[version].constants()


# -- the README table ---------------------------------------------------------------------

_EXEC_WORDS = {
    "8.0": "R-MMAP-9: PROT_EXEC (object, no PROT_WRITE) or PROT_WRITE_AND_EXEC",
    "7.1": "PROT_EXEC always; W+X also PROT_WRITE_AND_EXEC",
    "none": "no ability checks",
}


def _flag_words(p: Profile) -> str:
    parts = [f"{name} {value:#x}" for name, value in p.map_flags if value & 0x7FF40]
    return ", ".join(parts) + f"; reserved {p.reserved_mask:#010x}"


def _type_words(p: Profile) -> str:
    words = f"{p.map_type_mask:#x}"
    if not p.map_type_compat and p.map_type_other is None:
        return words + ", exactly one type required"
    compat = "; ".join(f"{t} → {_name_flags(f)}" for t, f in p.map_type_compat)
    other = f"; other types → {_name_flags(p.map_type_other)}" if p.map_type_other else ""
    return f"{words}; {compat}{other}"


def _name_flags(flags: int | None) -> str:
    names = {C.MAP_SHARED: "MAP_SHARED", C.MAP_PRIVATE: "MAP_PRIVATE", C.MAP_ANON: "MAP_ANON"}
    return "\\|".join(n for bit, n in names.items() if flags is not None and flags & bit)


#: (row label, how a profile's cell reads); one row per point of SPEC 19.
ROWS: tuple[tuple[str, Any], ...] = (
    ("MAP_TYPE", _type_words),
    ("flag bits", _flag_words),
    ("PROT_EXEC rule", lambda p: _EXEC_WORDS[p.exec_rule]),
    ("peer permission", lambda p: "R-PEER-3 (ability or uid match)" if p.abilities
     else "euid 0 or uid match"),
    ("MAP_PHYS, shm_ctl privilege", lambda p: "abilities" if p.abilities else "euid 0"),
    ("mlock", lambda p: "R-LOCK-5: range mapped and backed (ENOMEM), no lock recorded"
     if not p.lock_state else
     f"R-LOCK-1{'' if p.abilities else ' with euid 0'} (over RLIMIT_MEMLOCK → "
     f"{E.errorcode[p.memlock_errno]})"),
    ("munlock", lambda p: "R-LOCK-6: always 0" if not p.lock_state else "R-LOCK-2"),
    ("mlockall/munlockall", lambda p: "no-op, return 0" if p.mlockall_noop else "R-LOCK-3"),
    ("lock state, msync EBUSY (R-MSYNC-3)", lambda p: "R-LOCK-1..4, R-MSYNC-3"
     if p.lock_state else "never (R-LOCK-7)"),
    ("posix_madvise len 0", lambda p: "EINVAL" if p.madvise_len0_einval else "success"),
    ("msync MS_SYNC_FULL", lambda p: "valid" if p.ms_sync_full else "EINVAL"),
    ("hole fit for placement", lambda p: "hole ≥ size" if not p.hole_slack_pages
     else f"hole ≥ size + {p.hole_slack_pages} page(s)"),
    ("shm_ctl failure errno", lambda p: "R-SHM-7" if p.shm_ctl_errno is None
     else f"always {E.errorcode[p.shm_ctl_errno]}"),
    ("SHMCTL_SEAL, _REVOCABLE, _TYMEM, _GET_FLAGS", lambda p: "R-SHM-8..10"
     if not _SHMCTL_7_1 & ~p.shmctl_flags else "not defined (ENOSYS) [SIM]"),
    ("handles, mmap_handle, shm_revoke", lambda p: "R-HANDLE-1..6" if p.handles
     else "ENOSYS [SIM]"),
    ("shm_open(SHM_ANON)", lambda p: "R-SHM-1" if p.shm_anon else "EINVAL [SIM]: no SHM_ANON"),
    ("posix_mem_offset `off`", lambda p: "the physical address (R-MOFF-4)"
     if p.mem_offset_physical else "[SIM] the offset in the typed-memory pool when the caller "
     "has an fd open on it; else the physical address"),
    ("posix_typed_mem_open without ALLOCATE(_CONTIG)", lambda p: "euid != 0 → EPERM at open"
     if p.tymem_direct_needs_root else "allowed; mapping needs PROCMGR_AID_MEM_PHYS"),
    ("arch default", lambda p: p.default_arch),
)  # fmt: skip


def differences_markdown() -> str:
    """The README's "Differences between QNX versions" table, from ``PROFILES``."""
    versions = list(PROFILES)
    lines = [
        "| point | " + " | ".join(f'"{v}"' for v in versions) + " |",
        "|---|" + "---|" * len(versions),
    ]
    for label, cell in ROWS:
        lines.append(f"| {label} | " + " | ".join(cell(PROFILES[v]) for v in versions) + " |")
    return "\n".join(lines) + "\n"
