"""What the call table (``qnxsim.calls``) gives the C bridge: declarations and wrappers.

``declarations(header)`` is the C prototypes of the table's rows in a QNX header;
``wrappers()`` the client library's definitions of every row it does not define by hand
(integer arguments, a result the reply carries whole), and ``unsigned_args(name)`` the
arguments the server reads as unsigned words.  A row added to the table is routed from C
without touching the bridge when it is of that simple shape.
"""

from __future__ import annotations

from qnxsim import calls
from qnxsim.calls import Call

#: Headers the bridge generates; the others (unistd.h, fcntl.h...) are the host's.
QNX_HEADERS = ("sys/mman.h", "sys/procmgr.h")
#: Calls the client library defines by hand (strings, out-pointers, varargs, processes).
HAND_WRITTEN = frozenset({
    "mmap", "mmap64", "mmap_peer", "mmap64_peer", "munmap", "munmap_flags", "munmap_peer",
    "mprotect", "msync", "mlock", "munlock", "mlockall", "munlockall", "posix_madvise",
    "mem_offset", "mem_offset64", "mmap_device_memory", "munmap_device_memory",
    "posix_mem_offset", "posix_mem_offset64", "shm_open", "shm_unlink", "shm_ctl",
    "posix_typed_mem_open", "posix_typed_mem_get_info", "open", "close", "dup", "dup2",
    "read", "pread", "write", "pwrite", "lseek", "fstat", "ftruncate", "procmgr_ability",
    "fork", "exec", "waitpid", "exit", "setuid", "seteuid", "setgid", "setegid", "getrlimit",
    "setrlimit", "shm_create_handle",
})  # fmt: skip
#: QNX's handle type, for the header and the client library alike.
SHM_HANDLE_T = """\
#ifndef _QNXSIM_SHM_HANDLE_T
#define _QNXSIM_SHM_HANDLE_T
typedef unsigned shm_handle_t;
#endif
"""
_UNSIGNED = {"addr", "size_t", "uint64_t", "unsigned_int", "rlim_t"}
_SIMPLE_RESULTS = {"address", "zero", "fd", "errno", "length", "count", "offset", "handle"}


def declarations(header: str) -> str:
    """``prototype;`` lines of the table's rows declared in ``header``."""
    rows = calls.headers().get(header, ())
    return "".join(calls.prototype(row) + ";\n" for row in rows)


def unsigned_args(name: str) -> tuple[int, ...]:
    """Indexes of the arguments of ``name`` that C passes as unsigned words."""
    row = calls.CALLS.get(name)
    if row is None:
        return ()
    return tuple(i for i, a in enumerate(row.args) if a.convert in _UNSIGNED)


def generated_rows() -> tuple[Call, ...]:
    """Rows the client library gets a generated definition for."""
    return tuple(
        row
        for row in calls.TABLE
        if row.header in QNX_HEADERS
        and row.name not in HAND_WRITTEN
        and row.c_params is None
        and row.variadic is None
        and row.result in _SIMPLE_RESULTS
        and all(a.convert not in ("str", "bytes", "shm_name", "object") for a in row.args)
    )


def _conv(arg: calls.Arg) -> str:
    if arg.kind == "mapfd" or (arg.name in ("fd", "fildes") and arg.ctype == "int"):
        return f"qx_simfd_or_bad({arg.name})"
    if arg.kind == "oflag":
        return f"qx_qnx_oflags({arg.name})"
    if arg.ctype.endswith("*") or arg.ctype == "uintptr_t":
        return f"(long long)(uintptr_t){arg.name}"
    return f"(long long){arg.name}"


def _ret(row: Call) -> str:
    lens = [a.name for a in row.args if a.name == "len"]
    if row.failure == "map_failed" and row.returns == "void *" and lens and row.target is None:
        return f"qx_map_result(r, {lens[0]})"  # a new mapping: never over the host's holes
    if row.failure == "map_failed":
        cast = "(void *)" if row.returns.endswith("*") else f"({row.returns})"
        return f"r.err ? {cast}MAP_FAILED : {cast}(uintptr_t)r.vals[0]"
    if row.failure == "errno":
        return "r.err ? qx_host_errno(r.err) : (r.nvals ? (int)r.vals[0] : 0)"
    if row.result == "fd":
        return "r.err ? -1 : qx_new_hostfd(r.vals[0])"
    return f"({row.returns})qx_int_result(r)"


def wrappers() -> str:
    """C definitions of ``generated_rows()`` for the client library."""
    out = ["/* Generated from qnxsim.calls by qnxsim.c.generate: do not edit. */\n", SHM_HANDLE_T]
    for row in generated_rows():
        n = len(row.args)
        vals = ", ".join(_conv(a) for a in row.args) or "0"
        proto = calls.prototype(row)
        out.append(
            f"{proto};\n{proto} {{\n"
            f"    long long a[{max(n, 1)}] = {{{vals}}};\n"
            f'    struct qx_reply r = qx_call("{row.name}", {n}, a);\n'
            f"    return {_ret(row)};\n}}\n"
        )
    return "".join(out)
