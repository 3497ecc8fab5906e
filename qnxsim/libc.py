"""The C-convention facade, ``process.libc`` (R-CALL-1).

Each call runs the ``Process`` method of the same name; on ``QnxError`` it sets
``libc.errno`` and returns the C failure value instead of raising.  The table below is the
whole facade: a name and what that C function returns on failure.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qnxsim.constants import MAP_FAILED
from qnxsim.errno import QnxError

if TYPE_CHECKING:
    from qnxsim.process import Process

#: C name -> the value the C function returns on failure.
FAILURE: dict[str, int] = {
    "mmap": MAP_FAILED,
    "mmap64": MAP_FAILED,
    "mmap_peer": MAP_FAILED,
    "mmap64_peer": MAP_FAILED,
    "munmap": -1,
    "munmap_flags": -1,
    "munmap_peer": -1,
    "mprotect": -1,
    "fork": -1,
    "waitpid": -1,
    "setuid": -1,
    "seteuid": -1,
    "setgid": -1,
    "setegid": -1,
    "getrlimit": -1,
    "setrlimit": -1,
    "mem_offset": -1,
    "mem_offset64": -1,
    "mmap_device_memory": MAP_FAILED,
    "munmap_device_memory": -1,
    "open": -1,
    "shm_open": -1,
    "shm_unlink": -1,
    "shm_ctl": -1,
    "ftruncate": -1,
    "close": -1,
    "dup": -1,
    "dup2": -1,
    "read": -1,
    "pread": -1,
    "write": -1,
    "pwrite": -1,
    "lseek": -1,
    "fstat": -1,
    "msync": -1,
    "mlock": -1,
    "munlock": -1,
    "mlockall": -1,
    "munlockall": -1,
    "exec": -1,
    "posix_typed_mem_open": -1,
}
#: Functions that return an error number instead of setting errno (R-CALL-1).
RETURNS_ERRNO = ("posix_madvise", "procmgr_ability")
#: Functions that return an error number and give results through pointers: the facade
#: returns ``(0, result)`` or ``(error number, None)`` (POSIX 1003.1j).
RETURNS_ERRNO_AND_RESULT = ("posix_typed_mem_get_info", "posix_mem_offset")


class Libc:
    """``process.libc.<name>(...)``: the C functions with C conventions.

    >>> from qnxsim import Kernel
    >>> p = Kernel().spawn(image=False)
    >>> p.libc.mmap(0, 0, 0x100, 0x2, -1, 0), p.libc.errno
    (-1, 22)
    """

    __slots__ = ("_proc", "errno")

    def __init__(self, proc: Process) -> None:
        self._proc = proc
        self.errno = 0

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name in RETURNS_ERRNO:
            direct: Callable[..., Any] = getattr(self._proc, name)
            return direct
        if name in RETURNS_ERRNO_AND_RESULT:
            outer: Callable[..., Any] = getattr(self._proc, name)

            def pair(*args: Any) -> tuple[int, Any]:
                try:
                    return 0, outer(*args)
                except QnxError as err:
                    return err.errno, None

            pair.__name__ = name
            return pair
        if name not in FAILURE:
            raise AttributeError(f"libc has no simulated function {name!r}")
        method: Callable[..., Any] = getattr(self._proc, name)
        failure = FAILURE[name]

        def call(*args: Any) -> Any:
            try:
                return method(*args)
            except QnxError as err:
                self.errno = err.errno
                return failure

        call.__name__ = name
        call.__doc__ = method.__doc__
        return call

    def __dir__(self) -> list[str]:
        return sorted({*FAILURE, *RETURNS_ERRNO, *RETURNS_ERRNO_AND_RESULT, "errno"})
