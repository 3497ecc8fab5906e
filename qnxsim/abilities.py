"""procmgr abilities (R-ABLE-1..3): per process, per ability, per domain (root / nonroot).

This module holds the table and the check of R-ABLE-2.  The calls that change a table
(procmgr_ability) build on ``Abilities.set``.
"""

from __future__ import annotations

import attrs

from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim.errno import QnxError

ROOT = 0
NONROOT = 1


@attrs.frozen
class DomainEntry:
    """One ability in one domain: allowed or denied, subranges, locked, inherited."""

    allowed: bool
    subranges: tuple[tuple[int, int], ...] = ()
    locked: bool = False
    inherit: bool = True


#: R-ABLE-3 defaults as (root allowed, nonroot allowed); any other id: root only.
DEFAULTS: dict[int, tuple[bool, bool]] = {
    C.PROCMGR_AID_MEM_ADD: (True, False),
    C.PROCMGR_AID_MEM_PHYS: (True, False),
    C.PROCMGR_AID_MEM_SPECIAL: (True, False),
    C.PROCMGR_AID_MEM_GLOBAL: (True, False),
    C.PROCMGR_AID_MEM_PEER: (True, False),
    C.PROCMGR_AID_MEM_LOCK: (True, False),
    C.PROCMGR_AID_PROT_EXEC: (True, True),
    C.PROCMGR_AID_MAP_FIXED: (True, True),
    C.PROCMGR_AID_PROT_WRITE_AND_EXEC: (True, True),
    C.PROCMGR_AID_XPROCESS_ABLE: (True, False),
}


_ALLOWED = DomainEntry(True)  # the default entries are shared: DomainEntry is frozen
_DENIED = DomainEntry(False)


def domain_of(euid: int) -> int:
    """R-ABLE-1: the domain is chosen by the process's current euid."""
    return ROOT if euid == 0 else NONROOT


class Abilities:
    """A process's ability table.  Unset entries take the R-ABLE-3 defaults.

    >>> a = Abilities()
    >>> a.check(C.PROCMGR_AID_MEM_PEER, euid=0, lo=5, hi=5)
    True
    >>> a.check(C.PROCMGR_AID_MEM_PEER, euid=1000, lo=5, hi=5)
    False
    >>> a.set(C.PROCMGR_AID_MEM_PEER, NONROOT, DomainEntry(True, ((10, 20),)))
    >>> a.check(C.PROCMGR_AID_MEM_PEER, 1000, 12, 12), a.check(C.PROCMGR_AID_MEM_PEER, 1000, 5, 5)
    (True, False)
    """

    __slots__ = ("_table",)

    def __init__(self) -> None:
        self._table: dict[tuple[int, int], DomainEntry] = {}

    def entry(self, aid: int, domain: int) -> DomainEntry:
        hit = self._table.get((aid, domain))
        if hit is not None:
            return hit
        root, nonroot = DEFAULTS.get(aid, (True, False))
        return _ALLOWED if (root if domain == ROOT else nonroot) else _DENIED

    def set(self, aid: int, domain: int, entry: DomainEntry) -> None:
        self._table[(aid, domain)] = entry

    def check(self, aid: int, euid: int, lo: int | None = None, hi: int | None = None) -> bool:
        """R-ABLE-2 for value range ``[lo, hi]`` (inclusive).

        Denied: False.  Allowed without subranges: True.  With subranges: True only when one
        subrange holds the whole range.  A range of None (one that cannot exist, such as the
        place of a mapping that does not fit) is judged by the allowed bit alone; the call
        then fails on its own later rule.
        """
        e = self.entry(aid, domain_of(euid))
        if not e.allowed:
            return False
        if not e.subranges:
            return True
        if lo is None or hi is None:
            return True
        return any(a <= lo and hi <= b for a, b in e.subranges)

    def inherited(self) -> Abilities:
        """The table a spawn or fork child gets: entries marked inherit, defaults elsewhere."""
        child = Abilities()
        child._table = {k: v for k, v in self._table.items() if v.inherit}
        return child

    def copy(self) -> Abilities:
        new = Abilities()
        new._table = dict(self._table)
        return new


#: The operation bits of an ability word (R-ABLE-4).
_OPS = (
    C.PROCMGR_AOP_DENY | C.PROCMGR_AOP_ALLOW | C.PROCMGR_AOP_SUBRANGE | C.PROCMGR_AOP_LOCK
    | C.PROCMGR_AOP_INHERIT_YES | C.PROCMGR_AOP_INHERIT_NO
)  # fmt: skip
_DOMAINS = ((C.PROCMGR_ADN_ROOT, ROOT), (C.PROCMGR_ADN_NONROOT, NONROOT))
#: Every ability id QNX 8.0 defines (what a final PROCMGR_AID_EOL entry reaches).
KNOWN_IDS = tuple(
    sorted(
        getattr(C, n)
        for n in dir(C)
        if n.startswith("PROCMGR_AID_") and n not in ("PROCMGR_AID_MASK", "PROCMGR_AID_EOL")
    )
)


def _parse(entries: tuple[int, ...]) -> list[tuple[int, int, int, tuple[int, int] | None]]:
    """Ability words into ``(aid, ops, domains, subrange)``; EINVAL for malformed ones.

    R-ABLE-4: the list ends at the first PROCMGR_AID_EOL entry (what follows is ignored) or
    at the last argument; a bare PROCMGR_AID_EOL (no operation, no domain) only ends it.
    """
    out: list[tuple[int, int, int, tuple[int, int] | None]] = []
    i = 0
    while i < len(entries):
        word = entries[i] & 0xFFFFFFFF
        i += 1
        aid = word & C.PROCMGR_AID_MASK
        ops = word & _OPS
        domains = word & (C.PROCMGR_ADN_ROOT | C.PROCMGR_ADN_NONROOT)
        stray = word & ~(C.PROCMGR_AID_MASK | _OPS | C.PROCMGR_ADN_ROOT | C.PROCMGR_ADN_NONROOT)
        if stray:
            raise QnxError(E.EINVAL, f"R-ABLE-4: entry {word:#x} has unknown bits {stray:#x}")
        if aid == C.PROCMGR_AID_EOL and not ops and not domains:
            break  # the usual terminator: procmgr_ability(pid, entry, PROCMGR_AID_EOL)
        if not domains:
            raise QnxError(
                E.EINVAL, f"R-ABLE-4: [SIM] entry {word:#x} names no domain (ADN_ROOT/NONROOT)"
            )
        both = C.PROCMGR_AOP_DENY | C.PROCMGR_AOP_ALLOW
        if ops & both == both:
            raise QnxError(E.EINVAL, f"R-ABLE-4: entry {word:#x} both allows and denies")
        both = C.PROCMGR_AOP_INHERIT_YES | C.PROCMGR_AOP_INHERIT_NO
        if ops & both == both:
            raise QnxError(E.EINVAL, f"R-ABLE-4: entry {word:#x} has INHERIT_YES and _NO")
        sub: tuple[int, int] | None = None
        if ops & C.PROCMGR_AOP_SUBRANGE:
            if i + 2 > len(entries):
                raise QnxError(E.EINVAL, "R-ABLE-4: PROCMGR_AOP_SUBRANGE without lo, hi")
            lo, hi = entries[i] % (1 << 64), entries[i + 1] % (1 << 64)
            i += 2
            if lo > hi:
                raise QnxError(E.EINVAL, f"R-ABLE-4: subrange [{lo:#x}, {hi:#x}] is empty")
            sub = (lo, hi)
        out.append((aid, ops, domains, sub))
        if aid == C.PROCMGR_AID_EOL:
            break  # arguments after the PROCMGR_AID_EOL entry are ignored
    return out


def _apply(
    table: Abilities, aid: int, domain: int, ops: int, sub: tuple[int, int] | None,
    caller: Abilities, caller_euid: int,
) -> None:  # fmt: skip
    old = table.entry(aid, domain)
    if old.locked:
        raise QnxError(E.EPERM, f"R-ABLE-4: ability {aid} is locked in that domain")
    if ops & C.PROCMGR_AOP_ALLOW and caller_euid != 0 and not caller.entry(aid, domain).allowed:
        raise QnxError(
            E.EPERM,
            f"R-ABLE-4: [SIM] a non-root caller may allow only abilities it holds (ability {aid})",
        )
    allowed = old.allowed
    if ops & C.PROCMGR_AOP_ALLOW:
        allowed = True
    if ops & C.PROCMGR_AOP_DENY:
        allowed = False
    subranges = old.subranges + ((sub,) if sub is not None else ())
    inherit = old.inherit
    if ops & C.PROCMGR_AOP_INHERIT_YES:
        inherit = True
    if ops & C.PROCMGR_AOP_INHERIT_NO:
        inherit = False
    locked = bool(ops & C.PROCMGR_AOP_LOCK)
    table.set(aid, domain, DomainEntry(allowed, subranges, locked, inherit))


def apply_entries(
    table: Abilities, entries: tuple[int, ...], caller: Abilities, caller_euid: int
) -> None:
    """R-ABLE-4: apply ability words to ``table``, all or nothing (QnxError on refusal)."""
    parsed = _parse(entries)
    new = table.copy()
    listed = {aid for aid, _, _, _ in parsed if aid != C.PROCMGR_AID_EOL}
    for aid, ops, domains, sub in parsed:
        for bit, domain in _DOMAINS:
            if not domains & bit:
                continue
            if aid != C.PROCMGR_AID_EOL:
                _apply(new, aid, domain, ops, sub, caller, caller_euid)
                continue
            ids = set(KNOWN_IDS) | {a for a, _ in table._table}
            for other in sorted(ids - listed):
                if not new.entry(other, domain).locked:  # EOL: every unlocked one not listed
                    _apply(new, other, domain, ops, sub, caller, caller_euid)
    table._table = new._table
