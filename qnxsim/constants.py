"""QNX Neutrino constants for the simulated C calls: the QNX 8.0 values (SPEC section 18).

These are QNX numbers, not Linux ones: tests and code must use the names, never literals.
Values that differ in the "7.1" and "6.4" profiles are per-profile data (SPEC section 19).
"""

from __future__ import annotations

from typing import ClassVar, Final

# --- mmap() flags (sys/mman.h) ---
MAP_FILE: Final = 0x0
MAP_SHARED: Final = 0x1
MAP_PRIVATE: Final = 0x2
MAP_TYPE: Final = 0x3
MAP_FIXED: Final = 0x10
MAP_ELF: Final = 0x20
MAP_NOSYNCFILE: Final = 0x0  # 0x40 in 7.1
MAP_LAZY: Final = 0x80
MAP_STACK: Final = 0x1000
MAP_BELOW: Final = 0x2000
MAP_NOINIT: Final = 0x4000
MAP_PHYS: Final = 0x10000
MAP_NOINHERIT: Final = 0x20000
MAP_HANDLE: Final = 0x40000
MAP_ANON: Final = 0x80000
MAP_ANONYMOUS: Final = MAP_ANON
MAP_SYSRAM: Final = 0x1000000
MAP_RESERVMASK: Final = 0xFFF00000
MAP_NORESERVE: Final = 0x0
MAP_RENAME: Final = 0x0

NOFD: Final = -1
MAP_FAILED: Final = -1
MAP_DEVICE_FAILED: Final = MAP_FAILED  # mmap_device_io()'s failure (R-DEVIO-1)

# --- Memory protection ---
PROT_NONE: Final = 0x0
PROT_READ: Final = 0x100
PROT_WRITE: Final = 0x200
PROT_EXEC: Final = 0x400
PROT_NOCACHE: Final = 0x800
PROT_MASK: Final = 0xF00

# --- msync() flags ---
MS_ASYNC: Final = 0x1
MS_SYNC: Final = 0x2
MS_INVALIDATE: Final = 0x4
MS_INVALIDATE_LOCKED: Final = 0x100000
MS_INVALIDATE_ICACHE: Final = 0x1000000
MS_CACHE_ONLY: Final = 0x2000000
MS_CLEAN_ONLY: Final = 0x4000000
MS_SYNC_FULL: Final = 0x8000000  # 8.0 only

# --- mlockall() flags ---
MCL_CURRENT: Final = 0x1
MCL_FUTURE: Final = 0x2

# --- posix_madvise() advice ---
POSIX_MADV_NORMAL: Final = 0
POSIX_MADV_SEQUENTIAL: Final = 1
POSIX_MADV_RANDOM: Final = 2
POSIX_MADV_WILLNEED: Final = 3
POSIX_MADV_DONTNEED: Final = 4
POSIX_MADV_DISCARD_NP: Final = 5

# --- shm_ctl() flags ---
SHMCTL_ANON: Final = 0x1
SHMCTL_PHYS: Final = 0x2
SHMCTL_SEAL: Final = 0x4
SHMCTL_REVOCABLE: Final = 0x8
SHMCTL_GLOBAL: Final = 0x10
SHMCTL_PRIV: Final = 0x20
SHMCTL_LOWERPROT: Final = 0x40
SHMCTL_LAZYWRITE: Final = 0x80
SHMCTL_HIGHUSAGE: Final = 0x200
SHMCTL_LAZY: Final = 0x400
SHMCTL_REPEAT: Final = 0x800
SHMCTL_NODEFRAG: Final = 0x1000
SHMCTL_TYMEM: Final = 0x2000
SHMCTL_GET_FLAGS: Final = 0x4000
SHMCTL_HAS_SPECIAL: Final = 0x8000
SHMCTL_FLAG_MASK: Final = 0xFFFF

# --- posix_typed_mem_open() tflag (sys/mman.h) ---
POSIX_TYPED_MEM_ALLOCATE: Final = 0x1
POSIX_TYPED_MEM_ALLOCATE_CONTIG: Final = 0x2
POSIX_TYPED_MEM_MAP_ALLOCATABLE: Final = 0x4

# --- open() flags (octal, as in fcntl.h) ---
O_RDONLY: Final = 0o0
O_WRONLY: Final = 0o1
O_RDWR: Final = 0o2
O_EXEC: Final = 0o3
O_ACCMODE: Final = 0o7
O_APPEND: Final = 0o10
O_DSYNC: Final = 0o20
O_SYNC: Final = 0o40
O_RSYNC: Final = 0o100
O_NONBLOCK: Final = 0o200
O_CREAT: Final = 0o400
O_TRUNC: Final = 0o1000
O_EXCL: Final = 0o2000
O_NOCTTY: Final = 0o4000
O_NOFOLLOW: Final = 0o10000
O_CLOEXEC: Final = 0o20000
O_REALIDS: Final = 0o40000
O_LARGEFILE: Final = 0o100000
O_ASYNC: Final = 0o200000
O_ANON: Final = 0o1000000

# --- lseek() whence ---
SEEK_SET: Final = 0
SEEK_CUR: Final = 1
SEEK_END: Final = 2

# --- waitpid() options (sys/wait.h) and processes ---
WNOHANG: Final = 0x40
PROCNTO_PID: Final = 1  # [SIM] R-SYS-7: procnto's pid, owner of no user mappings

# --- Signals and their si_code values ---
SIGBUS: Final = 10
SIGSEGV: Final = 11
SEGV_MAPERR: Final = 1
SEGV_ACCERR: Final = 2
BUS_ADRALN: Final = 1
BUS_ADRERR: Final = 2
BUS_OBJERR: Final = 3

# --- procmgr_ability() ability ids (sys/procmgr.h) ---
# Only ids that are the same in every QNX 7.x/8.x sys/procmgr.h consulted are listed; the
# memory abilities the simulator checks are those of SPEC R-ABLE-3.
PROCMGR_AID_SPAWN_SETUID: Final = 0
PROCMGR_AID_SPAWN_SETGID: Final = 1
PROCMGR_AID_SETUID: Final = 2
PROCMGR_AID_SETGID: Final = 3
PROCMGR_AID_GETID: Final = 4
PROCMGR_AID_PATHSPACE: Final = 5
PROCMGR_AID_REBOOT: Final = 6
PROCMGR_AID_CPUMODE: Final = 7
PROCMGR_AID_RUNSTATE: Final = 8
PROCMGR_AID_CONFSET: Final = 9
PROCMGR_AID_RSRCDBMGR: Final = 10
PROCMGR_AID_SESSION: Final = 11
PROCMGR_AID_UMASK: Final = 12
PROCMGR_AID_EVENT: Final = 13
PROCMGR_AID_RLIMIT: Final = 14
PROCMGR_AID_MEM_ADD: Final = 15
PROCMGR_AID_MEM_PHYS: Final = 16
PROCMGR_AID_MEM_SPECIAL: Final = 17
PROCMGR_AID_MEM_GLOBAL: Final = 18
PROCMGR_AID_MEM_PEER: Final = 19
PROCMGR_AID_MEM_LOCK: Final = 20
PROCMGR_AID_SPAWN: Final = 21
PROCMGR_AID_FORK: Final = 22
PROCMGR_AID_PROT_EXEC: Final = 23
PROCMGR_AID_WAIT: Final = 24
PROCMGR_AID_CLOCKSET: Final = 27
PROCMGR_AID_INTERRUPT: Final = 29
PROCMGR_AID_IO: Final = 31
PROCMGR_AID_TRACE: Final = 32
PROCMGR_AID_PRIORITY: Final = 33
PROCMGR_AID_CONNECTION: Final = 34
PROCMGR_AID_SCHEDULE: Final = 35
PROCMGR_AID_SIGNAL: Final = 36
PROCMGR_AID_TIMER: Final = 37
PROCMGR_AID_PGRP: Final = 38
PROCMGR_AID_MAP_FIXED: Final = 39
PROCMGR_AID_PATH_TRUST: Final = 40
PROCMGR_AID_SWAP: Final = 41
PROCMGR_AID_RCONSTRAINT: Final = 42
PROCMGR_AID_CHILD_NEWAPP: Final = 43
PROCMGR_AID_PUBLIC_CHANNEL: Final = 44
PROCMGR_AID_APS_ROOT: Final = 45
PROCMGR_AID_ABLE_CREATE: Final = 46
PROCMGR_AID_RUNSTATE_BURST: Final = 47
PROCMGR_AID_DEFAULT_TIMER_TOLERANCE: Final = 48
PROCMGR_AID_XPROCESS_QUERY: Final = 50
PROCMGR_AID_CHROOT: Final = 51
PROCMGR_AID_POWER: Final = 52
PROCMGR_AID_PROT_WRITE_AND_EXEC: Final = 53
PROCMGR_AID_SRANDOM: Final = 54
PROCMGR_AID_RLIMIT_PEER: Final = 57
PROCMGR_AID_CHANNEL_CONNECT: Final = 58
PROCMGR_AID_MAC_POLICY: Final = 59
PROCMGR_AID_SETTYPEID: Final = 60
PROCMGR_AID_ABLE_PRIV: Final = 61
PROCMGR_AID_XPROCESS_ABLE: Final = 62
PROCMGR_AID_XPROCESS_DEBUG: Final = 64
PROCMGR_AID_XPROCESS_MEM_READ: Final = 65
PROCMGR_AID_HIGH_RESOLUTION_TIMER: Final = 66
PROCMGR_AID_SERVER_MONITOR: Final = 68
PROCMGR_AID_SIGEV_THREAD: Final = 69
PROCMGR_AID_PRIVREG: Final = 70
PROCMGR_AID_MASK: Final = 0xFFFF
PROCMGR_AID_EOL: Final = 0xFFFF

# --- procmgr_ability() operations and domains ---
PROCMGR_AOP_DENY: Final = 0x10000
PROCMGR_AOP_ALLOW: Final = 0x20000
PROCMGR_AOP_SUBRANGE: Final = 0x40000
PROCMGR_AOP_LOCK: Final = 0x80000
PROCMGR_AOP_INHERIT_YES: Final = 0x400000
PROCMGR_AOP_INHERIT_NO: Final = 0x800000
PROCMGR_ADN_ROOT: Final = 0x10000000
PROCMGR_ADN_NONROOT: Final = 0x20000000

# --- Resource limits (sys/resource.h) ---
RLIMIT_CPU: Final = 0
RLIMIT_FSIZE: Final = 1
RLIMIT_DATA: Final = 2
RLIMIT_STACK: Final = 3
RLIMIT_CORE: Final = 4
RLIMIT_NOFILE: Final = 5
RLIMIT_AS: Final = 6
RLIMIT_VMEM: Final = RLIMIT_AS
RLIMIT_RSS: Final = RLIMIT_AS
RLIMIT_MEMLOCK: Final = 7
RLIMIT_NPROC: Final = 8
RLIM_INFINITY: Final = 2**64 - 3  # 64-bit arches
RLIM_INFINITY_32: Final = 0x7FFFFFFF  # 32-bit arches

# --- Limits ---
NAME_MAX: Final = 255


class _ShmAnon:
    """The type of ``SHM_ANON``: QNX's ``((const char *)1)`` path for an anonymous object."""

    __slots__ = ()
    _instance: ClassVar[_ShmAnon | None] = None

    def __new__(cls) -> _ShmAnon:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "SHM_ANON"

    def __reduce__(self) -> str:
        return "SHM_ANON"


#: Pass as the name to ``shm_open()`` for an anonymous shared memory object.
SHM_ANON: Final = _ShmAnon()

# --- shm_create_handle() options (sys/mman.h, 7.1+; SUBRANGE 8.0 only) ---
SHM_CREATE_HANDLE_OPT_NOFD: Final = 0x1
SHM_CREATE_HANDLE_OPT_SUBRANGE: Final = 0x2


# --- Pretty-printing ---

#: Non-zero single-bit ``mmap()`` flags. MAP_SHARED and MAP_PRIVATE are values of the
#: MAP_TYPE field; ``flag_names`` renders that field as a whole.
MAP_FLAG_NAMES: Final[dict[int, str]] = {
    MAP_SHARED: "MAP_SHARED",
    MAP_PRIVATE: "MAP_PRIVATE",
    MAP_FIXED: "MAP_FIXED",
    MAP_ELF: "MAP_ELF",
    MAP_LAZY: "MAP_LAZY",
    MAP_STACK: "MAP_STACK",
    MAP_BELOW: "MAP_BELOW",
    MAP_NOINIT: "MAP_NOINIT",
    MAP_PHYS: "MAP_PHYS",
    MAP_NOINHERIT: "MAP_NOINHERIT",
    MAP_HANDLE: "MAP_HANDLE",
    MAP_ANON: "MAP_ANON",
    MAP_SYSRAM: "MAP_SYSRAM",
}

#: Non-zero single-bit ``PROT_*`` values.
PROT_NAMES: Final[dict[int, str]] = {
    PROT_READ: "PROT_READ",
    PROT_WRITE: "PROT_WRITE",
    PROT_EXEC: "PROT_EXEC",
    PROT_NOCACHE: "PROT_NOCACHE",
}

_UINT32_MASK: Final = 0xFFFFFFFF


def flag_names(value: int, table: dict[int, str]) -> str:
    """Render a flag word as ``NAME|NAME|0x...`` using ``table`` (single-bit value -> name).

    When ``table`` names MAP_PRIVATE (a ``MAP_*`` table), the MAP_TYPE field is rendered as one
    value first (MAP_SHARED, MAP_PRIVATE, or hex if it is neither). Bits the table does not
    name are shown together as one hex number at the end. ``0`` renders as ``"0"``; a negative
    value is read as the 32-bit C ``int`` it would be.

    >>> flag_names(MAP_PRIVATE | MAP_ANON, MAP_FLAG_NAMES)
    'MAP_PRIVATE|MAP_ANON'
    >>> flag_names(PROT_READ | PROT_WRITE | 0x1, PROT_NAMES)
    'PROT_READ|PROT_WRITE|0x1'
    >>> flag_names(0, PROT_NAMES)
    '0'
    """
    if value < 0:
        value &= _UINT32_MASK
    if value == 0:
        return "0"
    parts: list[str] = []
    rest = value
    if table.get(MAP_PRIVATE) == "MAP_PRIVATE":
        map_type = value & MAP_TYPE
        rest &= ~MAP_TYPE
        if map_type:
            parts.append(table.get(map_type, hex(map_type)))
    unknown = 0
    bit = 1
    while bit <= rest:
        if rest & bit:
            name = table.get(bit)
            if name is None:
                unknown |= bit
            else:
                parts.append(name)
        bit <<= 1
    if unknown:
        parts.append(hex(unknown))
    return "|".join(parts)
