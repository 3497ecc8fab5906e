"""The C-convention facade, ``process.libc`` (R-CALL-1).

Each call runs the ``Process`` method of the same name and reports failure as its C
function does, by its row in ``qnxsim.calls``: MAP_FAILED or -1 with ``libc.errno`` set,
the error number as the result, or ``(error number, None)`` for the POSIX functions that
give their results through pointers.  ``libc.last_error`` keeps the ``QnxError`` (errno and
the rule that fired) of the last failure caught.  The typed methods are declared in
``libc_calls.pyi``, generated from the same table.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qnxsim.calls import CALLS, LIBC_CALLS
from qnxsim.errno import QnxError

if TYPE_CHECKING:
    from qnxsim.libc_calls import LibcCalls
    from qnxsim.process import Process
else:
    LibcCalls = object


class Libc(LibcCalls):
    """``process.libc.<name>(...)``: the C functions with C conventions.

    ``errno`` is set by every failure of a function that sets errno in C, and kept until
    the next failure, as C's is; ``last_error`` is the ``QnxError`` behind the last failure
    of any function that had one (None before the first).  Both are per thread (R-PROC-6).
    Functions that return their error number (posix_madvise, procmgr_ability) leave both
    alone, as C's leave errno.

    >>> from qnxsim import Kernel
    >>> p = Kernel().spawn(image=False)
    >>> p.libc.mmap(0, 0, 0x100, 0x2, -1, 0), p.libc.errno
    (-1, 22)
    >>> p.libc.last_error.reason
    'R-MMAP-2: len is 0'
    """

    __slots__ = ("_proc", "_thread")

    def __init__(self, proc: Process) -> None:
        self._proc = proc
        self._thread = threading.local()  # R-PROC-6: errno is per thread, as C's is

    @property
    def errno(self) -> int:
        """This thread's errno (0 before its first failure)."""
        value: int = getattr(self._thread, "errno", 0)
        return value

    @errno.setter
    def errno(self, value: int) -> None:
        self._thread.errno = value

    @property
    def last_error(self) -> QnxError | None:
        """This thread's last caught ``QnxError`` (None before the first)."""
        err: QnxError | None = getattr(self._thread, "last_error", None)
        return err

    @last_error.setter
    def last_error(self, err: QnxError | None) -> None:
        self._thread.last_error = err

    if not TYPE_CHECKING:  # mypy sees only the declared methods, so typos are errors

        def __getattr__(self, name: str) -> Callable[..., Any]:
            row = CALLS.get(name)
            if row is None or not row.on_libc:
                raise AttributeError(f"libc has no simulated function {name!r}")
            method: Callable[..., Any] = getattr(self._proc, name)
            if row.failure == "errno":
                return method
            if row.failure == "errno_and_result":

                def pair(*args: Any) -> tuple[int, Any]:
                    try:
                        return 0, method(*args)
                    except QnxError as err:
                        self.last_error = err
                        return err.errno, None

                pair.__name__ = name
                pair.__doc__ = method.__doc__
                return pair
            failure = row.failure_value

            def call(*args: Any) -> Any:
                try:
                    return method(*args)
                except QnxError as err:
                    self.errno = err.errno
                    self.last_error = err
                    return failure

            call.__name__ = name
            call.__doc__ = method.__doc__
            return call

    def __dir__(self) -> list[str]:
        return sorted({*LIBC_CALLS, "errno", "last_error"})
