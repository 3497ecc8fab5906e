"""QNX Neutrino errno numbers (QNX numbering, not Linux), as in QNX 7.x/8.0 ``<errno.h>``.

Also here: ``errorcode`` (number -> name), ``strerror()`` and ``QnxError``, the ``OSError``
subclass that every simulated call raises on failure.
"""

from __future__ import annotations

import operator
from typing import Any, Final

# --- POSIX and System V errors ---
EOK: Final = 0
EPERM: Final = 1
ENOENT: Final = 2
ESRCH: Final = 3
EINTR: Final = 4
EIO: Final = 5
ENXIO: Final = 6
E2BIG: Final = 7
ENOEXEC: Final = 8
EBADF: Final = 9
ECHILD: Final = 10
EAGAIN: Final = 11
EWOULDBLOCK: Final = EAGAIN
ENOMEM: Final = 12
EACCES: Final = 13
EFAULT: Final = 14
ENOTBLK: Final = 15
EBUSY: Final = 16
EEXIST: Final = 17
EXDEV: Final = 18
ENODEV: Final = 19
ENOTDIR: Final = 20
EISDIR: Final = 21
EINVAL: Final = 22
ENFILE: Final = 23
EMFILE: Final = 24
ENOTTY: Final = 25
ETXTBSY: Final = 26
EFBIG: Final = 27
ENOSPC: Final = 28
ESPIPE: Final = 29
EROFS: Final = 30
EMLINK: Final = 31
EPIPE: Final = 32
EDOM: Final = 33
ERANGE: Final = 34
ENOMSG: Final = 35
EIDRM: Final = 36
ECHRNG: Final = 37
EL2NSYNC: Final = 38
EL3HLT: Final = 39
EL3RST: Final = 40
ELNRNG: Final = 41
EUNATCH: Final = 42
ENOCSI: Final = 43
EL2HLT: Final = 44
EDEADLK: Final = 45
ENOLCK: Final = 46
ECANCELED: Final = 47
ENOTSUP: Final = 48
EDQUOT: Final = 49

# --- Convergent error returns ---
EBADE: Final = 50
EBADR: Final = 51
EXFULL: Final = 52
ENOANO: Final = 53
EBADRQC: Final = 54
EBADSLT: Final = 55
EDEADLOCK: Final = 56
EBFONT: Final = 57
EOWNERDEAD: Final = 58

# --- STREAMS ---
ENOSTR: Final = 60
ENODATA: Final = 61
ETIME: Final = 62
ENOSR: Final = 63

# --- Remote objects and links ---
ENONET: Final = 64
ENOPKG: Final = 65
EREMOTE: Final = 66
ENOLINK: Final = 67
EADV: Final = 68
ESRMNT: Final = 69
ECOMM: Final = 70
EPROTO: Final = 71
EMULTIHOP: Final = 74
EBADMSG: Final = 77
ENAMETOOLONG: Final = 78
EOVERFLOW: Final = 79
ENOTUNIQ: Final = 80
EBADFD: Final = 81
EREMCHG: Final = 82

# --- Shared libraries ---
ELIBACC: Final = 83
ELIBBAD: Final = 84
ELIBSCN: Final = 85
ELIBMAX: Final = 86
ELIBEXEC: Final = 87
EILSEQ: Final = 88

# --- System calls ---
ENOSYS: Final = 89
ELOOP: Final = 90
ERESTART: Final = 91
ESTRPIPE: Final = 92
ENOTEMPTY: Final = 93
EUSERS: Final = 94
ENOTRECOVERABLE: Final = 95
EOPNOTSUPP: Final = 103
EFPOS: Final = 110
ESTALE: Final = 122

# --- Non-blocking and interrupted I/O ---
EINPROGRESS: Final = 236
EALREADY: Final = 237

# --- IPC and networking: argument errors ---
ENOTSOCK: Final = 238
EDESTADDRREQ: Final = 239
EMSGSIZE: Final = 240
EPROTOTYPE: Final = 241
ENOPROTOOPT: Final = 242
EPROTONOSUPPORT: Final = 243
ESOCKTNOSUPPORT: Final = 244
EPFNOSUPPORT: Final = 246
EAFNOSUPPORT: Final = 247
EADDRINUSE: Final = 248
EADDRNOTAVAIL: Final = 249

# --- IPC and networking: operational errors ---
ENETDOWN: Final = 250
ENETUNREACH: Final = 251
ENETRESET: Final = 252
ECONNABORTED: Final = 253
ECONNRESET: Final = 254
ENOBUFS: Final = 255
EISCONN: Final = 256
ENOTCONN: Final = 257
ESHUTDOWN: Final = 258
ETOOMANYREFS: Final = 259
ETIMEDOUT: Final = 260
ECONNREFUSED: Final = 261
EHOSTDOWN: Final = 264
EHOSTUNREACH: Final = 265

# --- Network File System (RPC) ---
EBADRPC: Final = 272
ERPCMISMATCH: Final = 273
EPROGUNAVAIL: Final = 274
EPROGMISMATCH: Final = 275
EPROCUNAVAIL: Final = 276

# --- QNX specific ---
ENOREMOTE: Final = 300
ENONDP: Final = 301
EBADFSYS: Final = 302
EMORE: Final = 309
ECTRLTERM: Final = 310
ENOLIC: Final = 311
ESRVRFAULT: Final = 312
EENDIAN: Final = 313
ESECTYPEINVAL: Final = 314

#: Names that are a second spelling of another errno (same number).
ALIASES: Final[dict[str, str]] = {"EWOULDBLOCK": "EAGAIN"}

_MESSAGES: Final[dict[int, str]] = {
    EOK: "No error",
    EPERM: "Operation not permitted",
    ENOENT: "No such file or directory",
    ESRCH: "No such process",
    EINTR: "Interrupted function call",
    EIO: "I/O error",
    ENXIO: "No such device or address",
    E2BIG: "Arg list too long",
    ENOEXEC: "Exec format error",
    EBADF: "Bad file descriptor",
    ECHILD: "No child processes",
    EAGAIN: "Resource temporarily unavailable",
    ENOMEM: "Not enough memory",
    EACCES: "Permission denied",
    EFAULT: "Bad address",
    ENOTBLK: "Block device required",
    EBUSY: "Resource busy",
    EEXIST: "File exists",
    EXDEV: "Cross-device link",
    ENODEV: "No such device",
    ENOTDIR: "Not a directory",
    EISDIR: "Is a directory",
    EINVAL: "Invalid argument",
    ENFILE: "Too many open files in system",
    EMFILE: "Too many open files",
    ENOTTY: "Inappropriate I/O control operation",
    ETXTBSY: "Text file busy",
    EFBIG: "File too large",
    ENOSPC: "No space left on device",
    ESPIPE: "Invalid seek",
    EROFS: "Read-only file system",
    EMLINK: "Too many links",
    EPIPE: "Broken pipe",
    EDOM: "Math argument out of domain of function",
    ERANGE: "Result too large",
    ENOMSG: "No message of desired type",
    EIDRM: "Identifier removed",
    ECHRNG: "Channel number out of range",
    EL2NSYNC: "Level 2 not synchronized",
    EL3HLT: "Level 3 halted",
    EL3RST: "Level 3 reset",
    ELNRNG: "Link number out of range",
    EUNATCH: "Protocol driver not attached",
    ENOCSI: "No CSI structure available",
    EL2HLT: "Level 2 halted",
    EDEADLK: "Resource deadlock avoided",
    ENOLCK: "No locks available",
    ECANCELED: "Operation canceled",
    ENOTSUP: "Not supported",
    EDQUOT: "Disk quota exceeded",
    EBADE: "Invalid exchange",
    EBADR: "Invalid request descriptor",
    EXFULL: "Exchange full",
    ENOANO: "No anode",
    EBADRQC: "Invalid request code",
    EBADSLT: "Invalid slot",
    EDEADLOCK: "File locking deadlock",
    EBFONT: "Bad font file format",
    EOWNERDEAD: "Previous owner died",
    ENOSTR: "Device not a stream",
    ENODATA: "No data available",
    ETIME: "Timer expired",
    ENOSR: "Out of streams resources",
    ENONET: "Machine is not on the network",
    ENOPKG: "Package not installed",
    EREMOTE: "Object is remote",
    ENOLINK: "Link has been severed",
    EADV: "Advertise error",
    ESRMNT: "Srmount error",
    ECOMM: "Communication error on send",
    EPROTO: "Protocol error",
    EMULTIHOP: "Multihop attempted",
    EBADMSG: "Bad message",
    ENAMETOOLONG: "File name too long",
    EOVERFLOW: "Value too large to be stored in data type",
    ENOTUNIQ: "Name not unique on network",
    EBADFD: "File descriptor invalid for this operation",
    EREMCHG: "Remote address changed",
    ELIBACC: "Cannot access a needed shared library",
    ELIBBAD: "Accessing a corrupted shared library",
    ELIBSCN: ".lib section in a.out corrupted",
    ELIBMAX: "Attempting to link in too many shared libraries",
    ELIBEXEC: "Cannot exec a shared library directly",
    EILSEQ: "Illegal byte sequence",
    ENOSYS: "Function not implemented",
    ELOOP: "Too many levels of symbolic links or prefixes",
    ERESTART: "Restartable system call",
    ESTRPIPE: "Streams pipe error",
    ENOTEMPTY: "Directory not empty",
    EUSERS: "Too many users",
    ENOTRECOVERABLE: "State not recoverable",
    EOPNOTSUPP: "Operation not supported",
    EFPOS: "File position error",
    ESTALE: "Stale file handle",
    EINPROGRESS: "Operation now in progress",
    EALREADY: "Operation already in progress",
    ENOTSOCK: "Socket operation on non-socket",
    EDESTADDRREQ: "Destination address required",
    EMSGSIZE: "Message too long",
    EPROTOTYPE: "Protocol wrong type for socket",
    ENOPROTOOPT: "Protocol not available",
    EPROTONOSUPPORT: "Protocol not supported",
    ESOCKTNOSUPPORT: "Socket type not supported",
    EPFNOSUPPORT: "Protocol family not supported",
    EAFNOSUPPORT: "Address family not supported by protocol family",
    EADDRINUSE: "Address already in use",
    EADDRNOTAVAIL: "Can't assign requested address",
    ENETDOWN: "Network is down",
    ENETUNREACH: "Network is unreachable",
    ENETRESET: "Network dropped connection on reset",
    ECONNABORTED: "Software caused connection abort",
    ECONNRESET: "Connection reset by peer",
    ENOBUFS: "No buffer space available",
    EISCONN: "Socket is already connected",
    ENOTCONN: "Socket is not connected",
    ESHUTDOWN: "Can't send after socket shutdown",
    ETOOMANYREFS: "Too many references: can't splice",
    ETIMEDOUT: "Connection timed out",
    ECONNREFUSED: "Connection refused",
    EHOSTDOWN: "Host is down",
    EHOSTUNREACH: "No route to host",
    EBADRPC: "RPC struct is bad",
    ERPCMISMATCH: "RPC version wrong",
    EPROGUNAVAIL: "RPC program not available",
    EPROGMISMATCH: "Program version wrong",
    EPROCUNAVAIL: "Bad procedure for program",
    ENOREMOTE: "Must be done on local machine",
    ENONDP: "Need an NDP (8087...) to run",
    EBADFSYS: "Corrupted file system detected",
    EMORE: "More to do, send message again",
    ECTRLTERM: "Remap to controlling terminal",
    ENOLIC: "No license",
    ESRVRFAULT: "Server fault on msg pass",
    EENDIAN: "Endian not supported",
    ESECTYPEINVAL: "Security type invalid",
}

#: errno number -> canonical symbolic name (aliases such as EWOULDBLOCK are not listed).
errorcode: Final[dict[int, str]] = {
    value: name
    for name, value in list(globals().items())
    if name.startswith("E") and name.isupper() and isinstance(value, int) and name not in ALIASES
}

_UNKNOWN_NAME: Final = "EUNKNOWN"


def strerror(n: int) -> str:
    """Return QNX's message for errno ``n``; ``"Unknown error <n>"`` for numbers QNX lacks.

    >>> strerror(EINVAL)
    'Invalid argument'
    >>> strerror(9999)
    'Unknown error 9999'
    """
    message = _MESSAGES.get(n)
    return message if message is not None else f"Unknown error {n}"


def _rebuild_qnx_error(
    cls: type[QnxError], errno: int, reason: str, call: str, pid: int | None
) -> QnxError:
    return cls(errno, reason, call=call, pid=pid)


class QnxError(OSError):
    """A simulated C call failed; ``errno`` is the QNX errno number.

    ``args`` is ``(errno, strerror)`` as for ``OSError``; ``reason`` names the SPEC rule that
    decided the failure, ``call`` the simulated function and ``pid`` the calling process.

    >>> e = QnxError(EINVAL, "R-MMAP-2: len is 0", call="mmap", pid=2)
    >>> str(e)
    'EINVAL (22): mmap: R-MMAP-2: len is 0'
    >>> e.args
    (22, 'Invalid argument')
    >>> e.name, e.errno, e.pid
    ('EINVAL', 22, 2)
    """

    errno: int
    strerror: str

    def __init__(self, errno: int, reason: str, *, call: str = "", pid: int | None = None) -> None:
        errno = operator.index(errno)  # bool -> int; a non-integer raises TypeError
        super().__init__(errno, strerror(errno))
        self.reason: str = reason
        self.call: str = call
        self.pid: int | None = pid

    @property
    def name(self) -> str:
        """The symbolic name of ``errno`` (``"EUNKNOWN"`` for a number QNX does not define)."""
        return errorcode.get(self.errno, _UNKNOWN_NAME)

    def __str__(self) -> str:
        reason = self.reason or self.strerror
        prefix = f"{self.name} ({self.errno}): "
        if self.call:
            return f"{prefix}{self.call}: {reason}"
        return f"{prefix}{reason}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.errno!r}, {self.reason!r}, "
            f"call={self.call!r}, pid={self.pid!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        state = dict(self.__dict__)
        for key in ("reason", "call", "pid"):
            state.pop(key, None)
        return (
            _rebuild_qnx_error,
            (type(self), self.errno, self.reason, self.call, self.pid),
            state or None,
        )
