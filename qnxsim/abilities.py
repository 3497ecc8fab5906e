"""procmgr abilities (R-ABLE-1..3): per process, per ability, per domain (root / nonroot).

This module holds the table and the check of R-ABLE-2.  The calls that change a table
(procmgr_ability) build on ``Abilities.set``.
"""

from __future__ import annotations

import attrs

from qnxsim import constants as C

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
        return DomainEntry(root if domain == ROOT else nonroot)

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
