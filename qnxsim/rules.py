"""The rule catalogue: every rule id that errors, code and tests cite, in plain words.

A reason such as ``R-PEER-3: caller pid 3 ... lacks PROCMGR_AID_MEM_PEER`` names a rule;
``qnxsim rules R-PEER-3`` (or ``RULES["R-PEER-3"]``) says what that rule decides, which
errno it gives, whether it is a fact about QNX or a decision of the simulator and on what
evidence, where the code decides it and which tests check it.  ``docs/RULES.md`` is
generated from this table and the sources (``catalogue_markdown``); a test keeps both in
step with the code.

Kinds: ``QNX`` (what QNX does, from its documentation, headers or source), ``POSIX`` (what
POSIX requires where QNX documents nothing else), ``SIM`` (a choice the simulator makes
where QNX is silent or a simulator needs one).
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs


@attrs.frozen
class Rule:
    """One rule: its id, what it decides, its errno(s), its kind and its evidence."""

    id: str
    kind: str
    errno: str
    text: str
    source: str

    @property
    def section(self) -> str:
        """The family of the rule: ``"MMAP"`` for ``R-MMAP-4``."""
        return self.id.split("-")[1]


_TABLE: tuple[tuple[str, str, str, str, str], ...] = (
    # -- the simulated system ------------------------------------------------------------
    ("R-SYS-1", "SIM", "ValueError / TypeError",
     "A Kernel is one simulated QNX machine. Its arch, version, RAM size, page size, ASLR "
     "switch and seed, and typed-memory pools are fixed when it is made; a bad value is a "
     "ValueError, a value of the wrong type a TypeError.",
     "simulator design"),
    ("R-SYS-2", "QNX", "",
     "x86_64 and aarch64 have 64-bit pointers, size_t and off_t; x86 and armle-v7 are 32-bit "
     "with a 64-bit off64_t.",
     "QNX architecture guides"),
    ("R-SYS-3", "QNX", "",
     "The user address range of each arch: page 0 is never used, and the top ends at "
     "2^39 minus a page on 64-bit arches, 0xBFFFF000 on x86 and 0x7FFFF000 on armle-v7.",
     "QNX 512 GB user space; QNX 6.4 source for the 32-bit ends; [SIM] top page kept back"),
    ("R-SYS-4", "SIM", "",
     "Where non-fixed mappings start looking: program base for private memory and stacks, "
     "a shared-memory base for objects, a library base for MAP_ELF; with ASLR each hint "
     "moves by a seeded random number of pages.",
     "simulator values; QNX 8.0 randomises every non-fixed mapping"),
    ("R-SYS-5", "SIM", "",
     "Physical memory is one RAM range at 1 MiB plus one device range just below 4 GiB. "
     "Every page of contents lives in exactly one frame, so two mappings of one frame see "
     "the same bytes.",
     "simulator layout"),
    ("R-SYS-6", "QNX", "ENOMEM / SIGBUS",
     "QNX does not overcommit: memory is allocated (or, for later private copies, reserved) "
     "when mapped or sized, and the call fails if RAM is short. Lazy memory is allocated "
     "on first touch, and a touch with no RAM left is a SIGBUS.",
     "QNX System Architecture, memory management"),
    ("R-SYS-7", "SIM", "",
     "procnto is pid 1 and owns no user mappings; new processes get increasing pids from 2, "
     "never reused in one Kernel.",
     "simulator design"),
    # -- calling convention --------------------------------------------------------------
    ("R-CALL-1", "SIM", "",
     "Each C call exists as a Process method that raises QnxError, and on process.libc "
     "with C's conventions (MAP_FAILED or -1 and errno, or a returned error number).",
     "simulator design"),
    ("R-CALL-2", "SIM", "TypeError",
     "Integer arguments are converted as C converts them to the parameter type of the arch "
     "(len=-1 is SIZE_MAX). A non-integer, and since this revision a bool, is a TypeError. "
     "A failing call's reason says what a converted value became.",
     "C conversion rules; simulator decision on bool (README, Bad input)"),
    ("R-CALL-3", "QNX", "",
     "On 32-bit arches plain mmap() takes a 32-bit off_t and zero-extends it; mmap64() takes "
     "a 64-bit offset. The two are the same on 64-bit arches.",
     "QNX 6.4 libc mmap()"),
    ("R-CALL-4", "SIM", "",
     "Every failure's reason begins with the id of the rule that decided it.",
     "simulator design"),
    ("R-CALL-5", "SIM", "",
     "A failing call leaves no trace: no mapping, object, fd, lock, limit, frame or path "
     "changes, no ASLR draw and no pid is used up; a failing exec or spawn keeps the old "
     "image. The one exception is mprotect's partial progress (R-MPROT-5).",
     "simulator decision; found by an adversarial run"),
    # -- mmap ----------------------------------------------------------------------------
    ("R-MMAP-1", "QNX", "EINVAL",
     "The mapping type in flags must be exactly MAP_SHARED or MAP_PRIVATE.",
     "QNX 7.0+ mmap()"),
    ("R-MMAP-2", "QNX", "EINVAL", "A length of zero is refused.", "QNX mmap()"),
    ("R-MMAP-3", "QNX", "EINVAL",
     "prot may hold only bits inside PROT_MASK (0xF00); Linux's small PROT values are "
     "outside it.",
     "QNX <sys/mman.h>, mmap()"),
    ("R-MMAP-4", "QNX", "EINVAL",
     "flags may not hold PROT bits (PROT_NOCACHE is quietly moved into prot), reserved bits "
     "(MAP_SYSRAM among them) or bits that are no MAP_* flag of the version.",
     "QNX 6.4 source, vmm_mmap.c; QNX <sys/mman.h>"),
    ("R-MMAP-5", "QNX", "EINVAL",
     "MAP_HANDLE is refused by plain mmap(); handles are mapped with mmap_handle().",
     "QNX 7.1 Programmer's Guide, shared memory handles"),
    ("R-MMAP-6", "QNX", "EINVAL",
     "NOFD without MAP_PHYS means anonymous memory; MAP_ANON together with a real fd is "
     "refused.",
     "QNX mmap()"),
    ("R-MMAP-7", "QNX", "EINVAL",
     "MAP_ANON, MAP_PHYS and MAP_LAZY may not all be given together.", "QNX mmap()"),
    ("R-MMAP-8", "QNX", "EINVAL",
     "MAP_STACK needs MAP_ANON, and its guard size (passed in off) must be smaller than "
     "the length.",
     "QNX mmap()"),
    ("R-MMAP-9", "QNX", "EPERM",
     "Asking for PROT_EXEC needs an ability of the caller over the final address range: "
     "PROCMGR_AID_PROT_EXEC for a read-only object mapping, otherwise "
     "PROCMGR_AID_PROT_WRITE_AND_EXEC.",
     "QNX 8.0 mmap(), procmgr_ability()"),
    ("R-MMAP-10", "QNX", "EPERM",
     "MAP_FIXED needs PROCMGR_AID_MAP_FIXED for the range (allowed by default).",
     "QNX procmgr_ability()"),
    ("R-MMAP-11", "QNX", "EINVAL / EPERM",
     "A MAP_PHYS mapping of physical memory takes no fd, needs PROCMGR_AID_MEM_PHYS for the "
     "physical range, and the range must end within physical memory without wrapping.",
     "QNX 6.4 source, vmm_mmap.c; QNX 8.0 mmap_device_io()"),
    ("R-MMAP-12", "QNX", "EBADF / ENOTSUP / EACCES",
     "An object mapping needs an fd open in the caller (EBADF), an object that can be mapped "
     "(not a directory: ENOTSUP), read access, and write access for a writable shared "
     "mapping (EACCES).",
     "QNX mmap(); QNX 6.4 source"),
    ("R-MMAP-13", "SIM", "EINVAL",
     "A negative offset into an object or physical memory is refused.", "simulator decision"),
    ("R-MMAP-14", "QNX", "ENOMEM",
     "The length plus the offset's position in its page, rounded up to pages, must fit the "
     "arch's size_t.",
     "QNX 6.4 source, vmm_mmap.c"),
    ("R-MMAP-15", "QNX", "ENXIO",
     "The object offset range of a non-anonymous mapping must stay within 2^44 bytes; it is "
     "checked after the mapping has been placed.",
     "QNX 6.4 source, vmm_mmap.c: map_create() before memobj_offset_check()"),
    ("R-MMAP-16", "QNX", "ENOMEM",
     "Placement found no hole big enough (section 4).", "QNX 6.4 source"),
    ("R-MMAP-17", "QNX", "EINVAL / ENOMEM",
     "The MAP_FIXED checks of section 4.2 (R-MMAP-F1, R-MMAP-F2) failed.", "QNX 6.4 source"),
    ("R-MMAP-18", "QNX", "ENOMEM",
     "The target process's RLIMIT_AS (total mapped bytes) and, for private anonymous "
     "non-stack memory, RLIMIT_DATA must not be exceeded; typed memory never counts "
     "against RLIMIT_DATA.",
     "QNX setrlimit(); QNX 7.0 System Architecture, typed memory"),
    ("R-MMAP-19", "QNX", "EAGAIN",
     "With mlockall(MCL_FUTURE) in force a new mapping is locked, and may not push the "
     "locked total past RLIMIT_MEMLOCK.",
     "QNX mlockall()"),
    ("R-MMAP-20", "QNX", "ENOMEM",
     "The physical memory the mapping needs cannot be allocated or reserved.",
     "QNX System Architecture"),
    ("R-MMAP-21", "QNX", "EACCES",
     "/dev/zero maps as private anonymous memory (MAP_PRIVATE) or a new shared anonymous "
     "object (MAP_SHARED); a shared mapping from a read-only /dev/zero fd can never become "
     "writable.",
     "QNX 6.4 source, pathmgr/devzero.c; LTP mprotect01"),
    ("R-MMAP-22", "QNX", "EPERM",
     "A shared mapping of a /dev/mem fd maps physical memory at off, as MAP_PHYS does.",
     "QNX /dev/mem"),
    ("R-MMAP-23", "QNX", "",
     "MAP_ANON|MAP_SHARED makes a new unnamed shared object that fork children share and "
     "that dies with its last mapping.",
     "QNX mmap()"),
    ("R-MMAP-24", "QNX", "ENOMEM",
     "MAP_ANON|MAP_PHYS allocates physically contiguous memory.", "QNX mmap()"),
    ("R-MMAP-25", "QNX", "SIGBUS",
     "Mapping past the end of a file or shm object is allowed; touching a page wholly past "
     "its end is a SIGBUS (BUS_OBJERR).",
     "QNX mmap()"),
    ("R-MMAP-26", "QNX", "",
     "MAP_STACK puts a no-access guard of off bytes at the bottom, places the stack downward "
     "from the program base, and returns the start of the guard.",
     "QNX mmap(), MAP_STACK"),
    ("R-MMAP-27", "QNX", "",
     "Flags accepted without effect (MAP_NOINIT, MAP_NORESERVE, ...) and those that only "
     "change placement (MAP_ELF), inheritance (MAP_NOINHERIT) or allocation time (MAP_LAZY).",
     "QNX <sys/mman.h>, mmap()"),
    ("R-MMAP-F1", "QNX", "EINVAL / ENOMEM",
     "A MAP_FIXED address is rounded down to its page; a start outside the user range is "
     "EINVAL, an end past it (or wrapping) ENOMEM.",
     "QNX 6.4 source"),
    ("R-MMAP-F2", "QNX", "EINVAL",
     "A MAP_FIXED address must sit at the same offset in its page as off, except for "
     "private anonymous memory.",
     "QNX 6.4 source"),
    ("R-MMAP-F3", "QNX", "",
     "MAP_FIXED replaces whatever was mapped in its range, as munmap would, once every "
     "check has passed.",
     "QNX mmap()"),
    ("R-MMAP-F4", "QNX", "", "A MAP_FIXED mapping returns exactly addr.", "QNX mmap()"),
    # -- placement -----------------------------------------------------------------------
    ("R-PLACE-1", "QNX", "",
     "The starting point of the search: addr rounded to a page if given, else the base of "
     "the mapping's category.",
     "QNX 6.4 algorithm; simulator base values"),
    ("R-PLACE-2", "QNX", "ENOMEM",
     "Searching upward: the lowest fitting hole at or above the hint (at the hint when it "
     "fits there), else the highest fitting hole below it.",
     "QNX 6.4 algorithm"),
    ("R-PLACE-3", "QNX", "ENOMEM",
     "Searching downward (MAP_BELOW, MAP_STACK): the top of the highest fitting hole at or "
     "below the hint, else the lowest fitting hole above it.",
     "QNX 6.4 algorithm"),
    ("R-PLACE-4", "QNX", "",
     "Holes lie within the user range; without MAP_FIXED nothing overlaps or replaces an "
     "existing mapping.",
     "QNX 6.4 algorithm"),
    ("R-PLACE-5", "SIM", "",
     "Finding a place costs about O(log n) in the number of mappings, never a scan of every "
     "hole.",
     "simulator requirement (benchmarks)"),
    # -- objects -------------------------------------------------------------------------
    ("R-OBJ-1", "QNX", "",
     "The kinds of memory object: private and shared anonymous memory, named and anonymous "
     "shm objects, files, /dev/zero, physical and typed memory.",
     "QNX System Architecture"),
    ("R-OBJ-2", "QNX", "",
     "A mapping keeps its object alive after the fd is closed; an object with no name, fd "
     "or mapping is destroyed and its frames freed.",
     "QNX System Architecture"),
    ("R-OBJ-3", "QNX", "",
     "meminfo() accounts RAM as total, free, allocated and reserved; private object "
     "mappings reserve room for their future copies, and the sum never exceeds RAM.",
     "QNX System Architecture"),
    ("R-OBJ-4", "QNX", "",
     "A private mapping of an object sees the object until a page is first written; the "
     "write copies that page, and writes never reach the object.",
     "QNX mmap(), MAP_PRIVATE"),
    ("R-OBJ-5", "QNX", "",
     "Shared mappings and read()/write() on an object's fds all see the same bytes at once.",
     "QNX mmap(), MAP_SHARED"),
    ("R-OBJ-6", "QNX", "SIGBUS",
     "New memory reads as zero. Shrinking an object zeroes the tail of its last page and "
     "frees whole pages past the end; mappings stay, and touching there is a SIGBUS.",
     "QNX ftruncate()"),
    # -- mmap_peer -----------------------------------------------------------------------
    ("R-PEER-1", "QNX", "",
     "mmap_peer() with pid 0 or the caller's own pid is plain mmap() in the caller.",
     "QNX mmap_peer(); [SIM] for pid 0"),
    ("R-PEER-2", "QNX", "ESRCH",
     "The target pid must exist and be neither a zombie nor exiting; this is checked first.",
     "QNX mmap_peer()"),
    ("R-PEER-3", "QNX", "EPERM",
     "The caller may map into the target if it holds PROCMGR_AID_MEM_PEER for the target's "
     "pid (root does by default), or if its real or effective uid equals the target's real "
     "or saved uid.",
     "QNX 7+ mmap_peer(); QNX 6.4 source for the uid rule; [SIM] how 8.0 combines them"),
    ("R-PEER-4", "QNX", "",
     "After the permission check every mmap rule runs: fd, open mode and abilities are the "
     "caller's; placement, limits and accounting are the target's.",
     "QNX mmap_peer()"),
    ("R-PEER-5", "QNX", "",
     "A mapping made by a peer is the target's own afterwards; the caller's address space "
     "does not change.",
     "QNX mmap_peer()"),
    ("R-PEER-6", "QNX", "",
     "mmap64_peer() takes a 64-bit offset; on 64-bit arches it equals mmap_peer().",
     "QNX mmap64_peer()"),
    # -- munmap --------------------------------------------------------------------------
    ("R-UNMAP-1", "QNX", "",
     "A length reaching past the top of the address space is cut to end there, before any "
     "other check; mprotect, msync, mlock and posix_madvise do the same.",
     "QNX 6.4 source, vmm_munmap.c"),
    ("R-UNMAP-2", "QNX", "EINVAL", "After that cut a zero length is refused.",
     "QNX 6.4 source"),
    ("R-UNMAP-3", "QNX", "",
     "The range widens to whole pages; an unaligned address is not an error.",
     "QNX munmap()"),
    ("R-UNMAP-4", "QNX", "EINVAL", "A widened range that ends above the user range is refused.",
     "QNX 6.4 source"),
    ("R-UNMAP-5", "QNX", "",
     "Every mapped page in the range goes (splitting mappings as needed); unmapped pages are "
     "skipped, so an empty range succeeds.",
     "QNX munmap()"),
    ("R-UNMAP-6", "QNX", "EINVAL",
     "munmap_flags() takes no flags in 8.0; then it is munmap().", "QNX 8.0 munmap_flags()"),
    ("R-UNMAP-7", "QNX", "ESRCH / EPERM",
     "munmap_peer() checks the target as mmap_peer() does, then unmaps there.",
     "QNX munmap_peer()"),
    # -- mprotect ------------------------------------------------------------------------
    ("R-MPROT-1", "QNX", "EINVAL",
     "prot may hold only bits inside PROT_MASK (0xF00).", "QNX mprotect()"),
    ("R-MPROT-2", "QNX", "ENOMEM",
     "The widened range must be non-empty, inside the user range and wholly mapped; "
     "otherwise nothing changes.",
     "QNX mprotect(); QNX 6.4 source"),
    ("R-MPROT-3", "QNX", "EPERM",
     "Adding PROT_EXEC needs the abilities of R-MMAP-9, checked before any change.",
     "QNX 8.0 mprotect()"),
    ("R-MPROT-4", "QNX", "",
     "Mappings split at the range ends take the new prot, and equal neighbours merge again.",
     "QNX mprotect()"),
    ("R-MPROT-5", "QNX", "EACCES",
     "Write access cannot be added to a shared mapping of an object opened read-only; pieces "
     "below the refused one keep their new protection.",
     "QNX mprotect(); QNX 6.4 source, devzero.c"),
    ("R-MPROT-6", "QNX", "",
     "mprotect() over a stack guard succeeds and leaves the guard as it is.",
     "QNX 6.4 source"),
    # -- msync ---------------------------------------------------------------------------
    ("R-MSYNC-1", "QNX", "EINVAL",
     "Only the MS_* bits of the version are valid, and MS_SYNC with MS_ASYNC is refused.",
     "QNX msync()"),
    ("R-MSYNC-2", "QNX", "ENOMEM",
     "The range is checked as for mprotect (R-MPROT-2), so a zero length fails too.",
     "QNX 6.4 source, vmm_validate.c"),
    ("R-MSYNC-3", "POSIX", "EBUSY",
     "MS_INVALIDATE over a locked page is refused; on 8.0 no page is ever locked, so it "
     "never fires there.",
     "POSIX msync(); [SIM] for 8.0"),
    ("R-MSYNC-4", "SIM", "",
     "Shared mappings are always coherent with their object, so msync only validates.",
     "simulator decision"),
    # -- locks ---------------------------------------------------------------------------
    ("R-LOCK-1", "QNX", "ENOMEM / EPERM / EAGAIN",
     "7.1 and 6.4 mlock(): a zero length, a range not wholly mapped or with a PROT_NONE "
     "page, or a locked total over RLIMIT_MEMLOCK fails with ENOMEM (EAGAIN on 6.4); the "
     "caller needs PROCMGR_AID_MEM_LOCK (EPERM).",
     "QNX 6.6/7.0 mlock(); QNX 6.4 source, vmm_mlock.c"),
    ("R-LOCK-2", "QNX", "ENOMEM",
     "7.1 and 6.4 munlock(): a zero length or a range not wholly mapped fails; locks do not "
     "nest.",
     "QNX munlock(); QNX 6.4 source"),
    ("R-LOCK-3", "QNX", "EINVAL / EPERM",
     "mlockall() takes MCL_CURRENT and/or MCL_FUTURE and needs PROCMGR_AID_MEM_LOCK; on 8.0 "
     "it and munlockall() do nothing.",
     "QNX mlockall(); QNX SDP 8.0 mlockall()"),
    ("R-LOCK-4", "QNX", "",
     "Locks go with munmap of their pages and with exec, and children do not inherit them.",
     "QNX mlock()"),
    ("R-LOCK-5", "QNX", "ENOMEM",
     "8.0 mlock() only checks that the range is non-empty, wholly mapped and backed; no "
     "ability and no RLIMIT_MEMLOCK are involved.",
     "QNX SDP 8.0 mlock(); [SIM] what counts as backed"),
    ("R-LOCK-6", "QNX", "", "8.0 munlock() always succeeds and does nothing.",
     "QNX SDP 8.0 munlock()"),
    ("R-LOCK-7", "SIM", "",
     "8.0 keeps no lock state: every record reports locked False.",
     "QNX SDP 8.0 mlock(): all memory is always locked"),
    # -- posix_madvise -------------------------------------------------------------------
    ("R-MADV-1", "QNX", "", "posix_madvise() returns its error number and never sets errno.",
     "QNX posix_madvise()"),
    ("R-MADV-2", "QNX", "EINVAL / ENOMEM",
     "Advice outside 0..5, or (8.0) a zero length, is EINVAL; the range is checked as for "
     "mprotect (ENOMEM).",
     "QNX posix_madvise()"),
    ("R-MADV-3", "QNX", "",
     "POSIX_MADV_DISCARD_NP frees the pages of a lazy private mapping, which then read as "
     "zero; other advice changes no data.",
     "QNX posix_madvise()"),
    # -- physical memory -----------------------------------------------------------------
    ("R-MOFF-1", "QNX", "ENODEV / EACCES",
     "mem_offset64() gives the physical address behind addr and how far it is contiguous; "
     "an fd other than NOFD is ENODEV, an unmapped addr EACCES.",
     "QNX 6.4 libc; POSIX posix_mem_offset()"),
    ("R-MOFF-2", "QNX", "EOVERFLOW",
     "mem_offset() is the same with a 32-bit result on 32-bit arches.", "QNX mem_offset()"),
    ("R-MOFF-3", "QNX", "",
     "mmap_device_memory() is mmap64() of physical memory with MAP_PHYS|MAP_SHARED; "
     "munmap_device_memory() is munmap().",
     "QNX mmap_device_memory()"),
    ("R-MOFF-4", "QNX", "EACCES / EOVERFLOW",
     "posix_mem_offset() returns a physical address (not an offset in the object), the "
     "contiguous length and the lowest fd open on the mapping's object; it returns its "
     "error number.",
     "QNX SDP 8.0 and 7.1 posix_mem_offset(); [SIM] the fd"),
    ("R-DEVIO-1", "QNX", "EINVAL / EPERM",
     "mmap_device_io() returns the port unchanged on x86 and x86_64, and elsewhere maps the "
     "physical range uncached with mmap's checks.",
     "QNX SDP 8.0 mmap_device_io(); QNX 6.4 libc"),
    ("R-DEVIO-2", "QNX", "",
     "munmap_device_io() does nothing on x86 and x86_64 and is munmap() elsewhere.",
     "QNX 6.4 libc munmap_device_io.c"),
    # -- typed memory --------------------------------------------------------------------
    ("R-TYMEM-1", "QNX", "ValueError",
     "Typed-memory pools are named by asinfo path (/memory, /memory/ram, "
     "/memory/ram/sysram, ...); Kernel(typed_memory=...) replaces them, and a bad pool is "
     "a ValueError.",
     "QNX System Architecture, typed memory naming; [SIM] the ranges"),
    ("R-TYMEM-2", "QNX", "EINVAL / ENOENT / ENAMETOOLONG / EMFILE",
     "posix_typed_mem_open() checks its tflag, then matches a name with a leading / exactly "
     "and any other name against the tail of the pool names.",
     "QNX 7.0/7.1 posix_typed_mem_open()"),
    ("R-TYMEM-3", "POSIX", "EBADF / ENODEV",
     "posix_typed_mem_get_info() reports how much the pool can still give to an fd of its "
     "kind, and returns its error number.",
     "POSIX posix_typed_mem_get_info()"),
    ("R-TYMEM-4", "QNX", "ENOMEM / ENXIO / EPERM",
     "mmap() of typed memory allocates from the pool (for an ALLOCATE fd) or maps the pool's "
     "physical memory at off (otherwise, needing PROCMGR_AID_MEM_PHYS).",
     "QNX 7.0 System Architecture; QNX 6.4 source, vmm_mmap.c"),
    ("R-TYMEM-5", "QNX", "",
     "A typed-memory fd works with fstat() (the pool's size), dup(), dup2() and close().",
     "QNX 7.0 System Architecture"),
    # -- shared memory and files ---------------------------------------------------------
    ("R-SHM-1", "QNX", "EISDIR / ENOENT",
     "How shm_open() resolves its name: /X is /dev/shmem/X, / alone is the shm directory, "
     "other names are paths (a new path outside the filesystem becomes a shm object with "
     "O_CREAT), and SHM_ANON makes an unnamed object.",
     "QNX 6.4 source, _connect_object.c, devmem.c, pathmgr_open.c"),
    ("R-SHM-2", "QNX", "ENOENT / ENAMETOOLONG / EEXIST / EACCES / EMFILE",
     "shm_open()'s errors: empty or missing name, too long a name, O_EXCL on an existing "
     "object, no permission, too many fds.",
     "QNX shm_open(); eclipse-score/baselibs tests on QNX 8.0"),
    ("R-SHM-3", "QNX", "",
     "A new object is empty, owned by the caller's euid/egid with the mode less the umask; "
     "O_TRUNC empties an existing one; the fd is close-on-exec.",
     "QNX shm_open()"),
    ("R-SHM-4", "QNX", "ENOENT / EPERM",
     "shm_unlink() removes the name at once (owner or root only); the object lives while "
     "fds or mappings hold it.",
     "QNX 6.4 source, _unlink_object.c"),
    ("R-SHM-5", "QNX", "EINVAL / EBADF / ENOMEM",
     "ftruncate(): a negative length, an fd not open for writing, or an object given its "
     "memory by shm_ctl or sealed is refused; growing a shm object allocates at once.",
     "QNX ftruncate(); QNX 7.1 Programmer's Guide, sealing"),
    ("R-FS-1", "SIM", "",
     "The filesystem is a flat in-memory tree of regular files made with "
     "Kernel.create_file(); /dev/zero, /dev/mem and /dev/shmem always exist.",
     "simulator design"),
    ("R-FS-2", "QNX", "EBADF / EACCES / EINVAL",
     "open, close, dup, dup2, read, write, pread, pwrite, lseek and fstat behave as POSIX "
     "says, with QNX errno numbers and the caller's euid/egid for permissions.",
     "POSIX; QNX errno numbering"),
    ("R-SHM-6", "QNX", "",
     "shm_ctl() gives a shm object its memory once (anonymous, physical, typed or lazy) and "
     "sets its size; a zero size is accepted; hint flags have no effect.",
     "QNX shm_ctl(); eclipse-score/baselibs tests on QNX 8.0"),
    ("R-SHM-7", "QNX", "EBADF / EINVAL / EPERM / EBUSY / ENOMEM",
     "The order of shm_ctl()'s checks: fd, flag bits, object kind, flag query, sealed, "
     "attribute-only call, flag combinations, memory already given (EBUSY), privileges, "
     "size, physical range, typed fd, RAM.",
     "QNX 6.4 source; qnx-ports/libmetal; QNX 7.1 Programmer's Guide"),
    ("R-SHM-8", "QNX", "EPERM",
     "SHMCTL_SEAL freezes an object's layout and size (its contents stay writable); "
     "SHMCTL_REVOCABLE lets its creator revoke access; both may be set in a call of their "
     "own.",
     "QNX 7.1 Programmer's Guide, sealing and securing shared memory"),
    ("R-SHM-9", "QNX", "",
     "SHMCTL_GET_FLAGS returns the SHMCTL_* bits an object holds, sealed or not, and "
     "changes nothing.",
     "QNX 7.1 Programmer's Guide; [SIM] the value"),
    ("R-SHM-10", "QNX", "EBADF / EINVAL / ENOMEM",
     "SHMCTL_TYMEM|SHMCTL_ANON takes the object's memory from the typed-memory pool whose fd "
     "is passed in paddr.",
     "hailo-ai/hailort; eclipse-score/baselibs; [SIM] the errnos"),
    ("R-SHM-11", "QNX", "EPERM",
     "shm_ctl_special() is shm_ctl() with a special value; a non-zero one needs "
     "PROCMGR_AID_MEM_SPECIAL and marks the object.",
     "QNX shm_ctl_special()"),
    # -- handles -------------------------------------------------------------------------
    ("R-HANDLE-1", "QNX", "EBADF / EINVAL / EACCES / ESRCH",
     "shm_create_handle() makes a single-use handle on a shm object for one recipient pid, "
     "with no more access than the creator's fd has.",
     "QNX 7.1 shm_create_handle(); [SIM] the errnos"),
    ("R-HANDLE-2", "QNX", "EINVAL / EBADF / EPERM / EACCES / EMFILE",
     "shm_open_handle() turns the recipient's handle into a close-on-exec fd and uses the "
     "handle up; a failure leaves it usable.",
     "QNX 7.1 shm_open_handle()"),
    ("R-HANDLE-3", "QNX", "EBADF / EINVAL",
     "mmap_handle() maps the handle's object as mmap() would with the handle's access, and "
     "uses the handle up on success.",
     "QNX 7.1 Programmer's Guide, shared memory handles"),
    ("R-HANDLE-4", "QNX", "ESRCH",
     "shm_delete_handle() deletes an unused handle of which the caller is creator or "
     "recipient.",
     "QNX 7.1/8.0 shm_delete_handle()"),
    ("R-HANDLE-5", "SIM", "",
     "An unused handle keeps its object alive until it is used, deleted or revoked or its "
     "recipient exits; children cannot use it, exec keeps it.",
     "simulator decision"),
    ("R-HANDLE-6", "QNX", "EBADF / EINVAL / EPERM / ESRCH",
     "shm_revoke() lets the creator of a revocable object remove every mapping of it in the "
     "recipient and destroy the recipient's unused handles; the recipient's fds stay.",
     "QNX 7.1 Programmer's Guide, securing shared memory"),
    # -- access --------------------------------------------------------------------------
    ("R-FAULT-1", "QNX", "SIGSEGV / SIGBUS",
     "Each touched page, in address order: unmapped is SEGV_MAPERR, forbidden by prot "
     "SEGV_ACCERR, past the object's end BUS_OBJERR, a lazy page with no RAM BUS_ADRERR.",
     "QNX signal codes"),
    ("R-FAULT-2", "SIM", "",
     "A faulting access raises MemoryFault with the first faulting address and moves no "
     "bytes; the process keeps running.",
     "simulator design"),
    ("R-FAULT-3", "QNX", "",
     "Any of read, write or exec permission allows reading; write allows writing; exec "
     "allows executing.",
     "QNX memory protection"),
    ("R-FAULT-4", "QNX", "",
     "Touching a lazy page allocates it; writing a page of a private object mapping copies "
     "it.",
     "QNX System Architecture"),
    # -- processes -----------------------------------------------------------------------
    ("R-PROC-1", "SIM", "",
     "Kernel.spawn() and Process.spawn() make a process, optionally with a realistic image "
     "(program, libc, a main stack with a guard); a child inherits creds, umask, "
     "inheritable abilities and fds without close-on-exec.",
     "simulator design; QNX posix_spawn()"),
    ("R-PROC-2", "QNX", "ENOMEM",
     "fork() copies private memory, shares shared mappings, keeps object mappings, drops "
     "MAP_NOINHERIT mappings and locks; without RAM for the copies there is no child.",
     "QNX fork()"),
    ("R-PROC-3", "QNX", "",
     "exec() removes every mapping, closes close-on-exec fds, drops locks and maps a new "
     "image.",
     "QNX exec*()"),
    ("R-PROC-4", "QNX", "ESRCH",
     "exit() unmaps and closes everything; the process stays a zombie until its parent "
     "waits, orphans are reaped at once.",
     "QNX exit(), waitpid()"),
    ("R-PROC-5", "QNX", "EPERM",
     "Real, effective and saved uids and gids change under POSIX's rules.",
     "POSIX setuid() family"),
    ("R-PROC-6", "SIM", "EPERM / ESRCH / TypeError",
     "procnto (pid 1) makes no calls (EPERM); a Process handle whose pid is not, or no "
     "longer, its own entry in the pid table fails every call with ESRCH; snapshots are "
     "opaque; libc.errno is per thread.",
     "simulator decision"),
    # -- abilities -----------------------------------------------------------------------
    ("R-ABLE-1", "QNX", "",
     "Each ability has, for root and non-root, allowed or denied, optional subranges, a "
     "locked bit and an inherit bit; the current euid picks the domain.",
     "QNX procmgr_ability()"),
    ("R-ABLE-2", "QNX", "EPERM",
     "A check passes when the ability is allowed and, if it has subranges, one of them "
     "holds the whole value or range.",
     "QNX procmgr_ability()"),
    ("R-ABLE-3", "QNX", "",
     "The default allow/deny of the memory abilities for root and non-root.",
     "QNX procmgr_ability()"),
    ("R-ABLE-4", "QNX", "EINVAL / EPERM / ESRCH",
     "procmgr_ability() applies ability words (with subranges) up to the first "
     "PROCMGR_AID_EOL; another pid needs PROCMGR_AID_XPROCESS_ABLE; locked abilities "
     "cannot change.",
     "QNX 7.1 procmgr_ability(); eclipse-score/baselibs"),
    # -- records and views ---------------------------------------------------------------
    ("R-MAP-1", "SIM", "",
     "mappings() returns frozen records (start, end, size, prot, flags, offset, kind, name, "
     "locked) in address order.",
     "simulator design"),
    ("R-MAP-2", "QNX", "",
     "Neighbouring records of the same object, contiguous offsets and identical prot, flags "
     "and lock state are always merged.",
     "QNX 6.4 source"),
    ("R-MAP-3", "QNX", "",
     "pidin('mem') prints the layout of QNX's pidin mem.", "QNX pidin"),
)  # fmt: skip

#: Every rule, by id, in the order of the specification.
RULES: dict[str, Rule] = {row[0]: Rule(*row) for row in _TABLE}

#: A rule id as code and reasons write it, and as test names spell it.
RULE_ID = re.compile(r"(?<![\w-])R-([A-Z]+)-(F?\d+)(?![\w])")
TEST_ID = re.compile(r"(?:^|_)R_([A-Z]+)_(F?\d+)(?=_|$)")


def lookup(rule_id: str) -> Rule:
    """The rule ``rule_id`` (``R-PEER-3``; ``r_peer_3`` and ``PEER-3`` work too).

    >>> lookup("peer-3").errno
    'EPERM'
    """
    key = rule_id.strip().upper().replace("_", "-")
    if not key.startswith("R-"):
        key = "R-" + key
    try:
        return RULES[key]
    except KeyError:
        raise KeyError(f"no rule {rule_id!r}; `qnxsim rules` lists them") from None


@attrs.frozen
class Citation:
    """Where a rule id appears: a file (relative), a line and the enclosing function."""

    path: str
    line: int
    where: str


def _functions(tree: ast.AST) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                walk(child, name + ".")
            else:
                walk(child, prefix)

    walk(tree, "")
    return spans


def _enclosing(spans: list[tuple[int, int, str]], line: int) -> str:
    best = ""
    for start, end, name in spans:
        if start <= line <= end and len(name) >= len(best):
            best = name
    return best or "(module)"


def code_citations(package: Path | None = None) -> dict[str, list[Citation]]:
    """Rule id -> where the package's code cites it (``qnxsim/*.py`` but the catalogue and
    the command line that prints it)."""
    root = package if package is not None else Path(__file__).resolve().parent
    found: dict[str, list[Citation]] = {}
    for path in sorted(root.glob("*.py")):
        if path.name in ("rules.py", "__main__.py"):  # the catalogue and its command
            continue
        text = path.read_text(encoding="utf-8")
        spans = _functions(ast.parse(text))
        for lineno, line in enumerate(text.splitlines(), 1):
            for m in RULE_ID.finditer(line):
                rid = m.group(0)
                where = _enclosing(spans, lineno)
                cites = found.setdefault(rid, [])
                if not any(c.path.endswith(path.name) and c.where == where for c in cites):
                    cites.append(Citation(f"qnxsim/{path.name}", lineno, where))
    return found


def naming_tests(tests: Path) -> dict[str, list[str]]:
    """Rule id -> ``file::test`` names that name it: first those whose name holds the id,
    then those whose body cites it."""
    named_first: dict[str, list[str]] = {}
    cited: dict[str, list[str]] = {}
    found: dict[str, list[str]]
    for path in sorted(tests.glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            named = {f"R-{a}-{b}" for a, b in TEST_ID.findall(node.name)}
            body = ast.get_source_segment(text, node) or ""
            for rid in named | {m.group(0) for m in RULE_ID.finditer(body)}:
                # tests named after the rule come first
                (named_first if rid in named else cited).setdefault(rid, []).append(
                    f"{path.name}::{node.name}"
                )
    found = {}
    for rid in {*named_first, *cited}:
        found[rid] = named_first.get(rid, []) + cited.get(rid, [])
    return found


def cited_ids(paths: Iterable[Path]) -> set[str]:
    """Every rule id written in these files (code, tests, docs, examples)."""
    ids: set[str] = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        ids |= {m.group(0) for m in RULE_ID.finditer(text)}
        ids |= {f"R-{a}-{b}" for a, b in TEST_ID.findall(text)}
        ids |= {f"R-{a}-{b}" for a, b in re.findall(r"\btest_R_([A-Z]+)_(F?\d+)", text)}
    return ids


def describe(rule: Rule, code: Iterable[Citation] = (), tests: Iterable[str] = ()) -> str:
    """A rule as ``qnxsim rules ID`` prints it."""

    def block(label: str, text: str) -> list[str]:
        return textwrap.wrap(text, 88, initial_indent=f"  {label}", subsequent_indent="    ")

    lines = [f"{rule.id} [{rule.kind}]" + (f"  errno: {rule.errno}" if rule.errno else "")]
    lines += block("", rule.text) + block("source: ", rule.source)
    code = list(code)
    if code:
        lines += block("decided in: ", ", ".join(f"{c.path} {c.where}" for c in code))
    tests = list(tests)
    if tests:
        shown = tests[:8] + ([f"... {len(tests) - 8} more"] if len(tests) > 8 else [])
        lines += ["  tests:"] + [f"    {t}" for t in shown]
    return "\n".join(lines)


def catalogue_markdown(package: Path, tests: Path) -> str:
    """``docs/RULES.md``: every rule, with where the code decides it and which tests check
    it.  Generated; ``tests/test_rules.py`` fails when the file is stale."""
    code = code_citations(package)
    checks = naming_tests(tests)
    out = [
        "# Rule catalogue",
        "",
        "<!-- generated by `python -m qnxsim rules --markdown`; do not edit -->",
        "",
        "Every error reason of qnxsim starts with a rule id. This page says, for each rule,",
        "what it decides, the errno it gives, whether it is a fact about QNX (**QNX**,",
        "**POSIX**) or a choice the simulator makes (**SIM**) and on what evidence, where",
        "the code decides it and which tests check it. `qnxsim rules ID` prints one rule.",
        "",
    ]
    section = ""
    for rule in RULES.values():
        if rule.section != section:
            section = rule.section
            out += [f"## {section}", ""]
        out.append(f"### {rule.id}")
        out.append("")
        meta = f"**{rule.kind}**" + (f" · errno: {rule.errno}" if rule.errno else "")
        out += [meta + f" · source: {rule.source}", "", rule.text, ""]
        cites = code.get(rule.id, [])
        if cites:
            places = ", ".join(f"`{c.path}` `{c.where}`" for c in cites)
            out += [f"Code: {places}", ""]
        names = checks.get(rule.id, [])
        if names:
            shown = ", ".join(f"`{n}`" for n in sorted(set(names))[:12])
            more = len(set(names)) - 12
            out += [f"Tests: {shown}" + (f" and {more} more" if more > 0 else ""), ""]
    return "\n".join(out).rstrip() + "\n"


def _sources() -> tuple[Path, Path | None]:
    package = Path(__file__).resolve().parent
    tests = package.parent / "tests"
    return package, tests if tests.is_dir() else None


def listing() -> Iterator[str]:
    """One line per rule: id, kind, errno and the start of its text."""
    for rule in RULES.values():
        text = rule.text if len(rule.text) <= 70 else rule.text[:67] + "..."
        yield f"{rule.id:<11} {rule.kind:<5} {rule.errno[:24]:<24} {text}"


__all__ = [
    "RULES",
    "Citation",
    "Rule",
    "catalogue_markdown",
    "cited_ids",
    "code_citations",
    "describe",
    "listing",
    "lookup",
    "naming_tests",
]
