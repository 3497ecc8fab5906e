"""The call table: one row per simulated C call, the facts every other module reads.

A ``Call`` row holds what is true of a call wherever it is used: its arguments (C name,
C type, how the Python side converts it, how a trace shows it), its C return type and
header, how C reports its failure, what kind of value it returns, and which argument names
another process.  ``Process`` converts its arguments from the row (``Process._args``);
``libc`` wraps exactly the rows that have a C failure convention; ``trace`` formats calls
and results from it; the scenario language lists and documents calls from it; the C bridge
emits header declarations from ``prototype``.  Rules live elsewhere (``vmm``, ``peer``,
``files``...), and so do the methods themselves (``process.py``).

How to add a call:

1. Write the ``Process`` method: the C name, the C argument order, and as its first line
   ``args = self._args("NAME", arg1, arg2, ...)`` (every argument, in order).  Its
   docstring ends with a ``Cost: O(...)`` line, and the ``Process`` class docstring lists
   it under its purpose (``tests/test_docs_contract.py``).
2. Add its row to ``TABLE`` below (or move it there from ``PLANNED``), in its header's
   group: ``Call(name, header, returns,
   (Arg(...), ...), failure=..., result=...)``.  Give ``c_params`` when the C parameters
   are not the Python arguments one for one (out-pointers, buffers, structs), ``target``
   when an argument is the pid of the process it acts on.
3. Rewrite ``qnxsim/libc_calls.pyi``, the typed ``libc`` methods, from the table:
   ``python -c "import qnxsim.calls as c; open('qnxsim/libc_calls.pyi', 'w').write(c.libc_stub())"``
   then ``ruff format qnxsim/libc_calls.pyi``.  ``tests/test_calls.py`` checks that the
   method and its row agree and that the stub is up to date.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import attrs

from qnxsim.constants import MAP_FAILED, SHM_ANON

if TYPE_CHECKING:
    from qnxsim.arch import CTypes

#: How the Python side converts an argument: a ``CTypes`` method (R-CALL-2), or one of
#: ``str`` (a path or name), ``bytes`` (bytes-like data), ``shm_name`` (a str or SHM_ANON)
#: and ``object`` (passed as it is; the method checks it).
Convert = Literal[
    "addr", "size_t", "int_", "pid_t", "unsigned_int", "uint64_t", "off_t", "off64_t",
    "rlim_t", "str", "bytes", "shm_name", "object",
]  # fmt: skip
#: How a trace shows an argument (``trace.format_arg``): ``addr`` a virtual address,
#: ``phys`` a physical one, ``size``, ``prot`` / ``map`` / ``oflag`` / ``ms`` / ``mcl`` /
#: ``shmctl`` / ``wait`` flag words, ``handleopt`` (the SHM_CREATE_HANDLE_OPT_* bits the
#: version defines), ``mapfd`` (NOFD by name), ``mode`` (octal), ``madv`` / ``whence`` /
#: ``rlimit`` named values, ``rlim`` (RLIM_INFINITY by name), ``pid`` and ``int`` in
#: decimal (a handle too: C prints ``shm_handle_t`` with ``%u``), ``number`` (decimal when
#: small, else hex), ``str``, ``bytes``.
Kind = Literal[
    "addr", "phys", "size", "prot", "map", "mapfd", "oflag", "mode", "ms", "mcl", "shmctl",
    "handleopt", "wait", "madv", "whence", "rlimit", "rlim", "pid", "int", "number", "str",
    "bytes",
]  # fmt: skip
#: How the C function reports failure: ``map_failed`` (returns MAP_FAILED, sets errno),
#: ``minus_one`` (returns -1, sets errno), ``errno`` (returns the error number, 0 on
#: success), ``errno_and_result`` (returns the error number and gives its results through
#: pointers), ``raises`` (a Python-level method with no C convention: not on ``libc``).
Failure = Literal["map_failed", "minus_one", "errno", "errno_and_result", "raises"]
#: What the Python method returns on success: ``address`` (in the caller, or in the
#: target process), ``new_pid`` (a new process: its pid, which the trace records even where
#: the method returns the ``Process``), ``fd``, ``errno`` (an error number),
#: ``zero``, ``count`` (bytes moved), ``offset`` (a file offset), ``length``, ``bytes``,
#: ``phys`` (a physical address and a contiguous length), ``tuple``, ``stat``, ``record``
#: / ``records`` (mapping records), ``handle``, ``none``.
Result = Literal[
    "address", "new_pid", "fd", "errno", "zero", "count", "offset", "length", "bytes", "phys",
    "tuple", "stat", "record", "records", "handle", "none",
]  # fmt: skip


@attrs.frozen
class Arg:
    """One argument: its name (the Python parameter's and the C parameter's), C type,
    Python conversion, trace format, and whether the Python method gives it a default."""

    name: str
    ctype: str
    convert: Convert
    kind: Kind = "number"
    optional: bool = False


@attrs.frozen
class Call:
    """One simulated call (see the module docstring).

    ``header`` is "" for a Python-level method with no C declaration.  ``c_params`` lists
    the C parameters, ``(name, C type)``, when they differ from ``args`` (``"..."`` for C
    varargs); ``c_name`` is the C function when its name differs.  ``target`` is the index
    of the argument that is the pid of the process the call acts on.  ``variadic`` is the
    argument a ``*args`` parameter repeats.  ``py_result`` is the Python type of the
    success value, for the typed ``libc`` stub.
    """

    name: str
    header: str
    returns: str
    args: tuple[Arg, ...]
    failure: Failure
    result: Result
    py_result: str = "int"
    target: int | None = None
    variadic: Arg | None = None
    c_params: tuple[tuple[str, str], ...] | None = None
    c_name: str = ""

    @property
    def on_libc(self) -> bool:
        """True when ``process.libc`` has this call (it has a C failure convention)."""
        return self.failure != "raises"

    @property
    def failure_value(self) -> int | None:
        """What the C function returns on failure (MAP_FAILED or -1), else None."""
        return {"map_failed": MAP_FAILED, "minus_one": -1}.get(self.failure)

    def arg_index(self, kind: Kind) -> int | None:
        """The index of the first argument shown as ``kind``, or None."""
        return next((i for i, a in enumerate(self.args) if a.kind == kind), None)


# -- the arguments most calls share ---------------------------------------------------------

ADDR = Arg("addr", "void *", "addr", "addr")
CADDR = Arg("addr", "const void *", "addr", "addr")
LEN = Arg("len", "size_t", "size_t", "size")
PROT = Arg("prot", "int", "int_", "prot")
MAP_FLAGS = Arg("flags", "int", "int_", "map")
MAP_FD = Arg("fd", "int", "int_", "mapfd")
OFF = Arg("off", "off_t", "off_t", "number")
OFF64 = Arg("off", "off64_t", "off64_t", "number")
PID = Arg("pid", "pid_t", "pid_t", "pid")
FD = Arg("fd", "int", "int_", "int")
OFLAG = Arg("oflag", "int", "int_", "oflag")
PATH = Arg("path", "const char *", "str", "str")
NAME = Arg("name", "const char *", "str", "str")
HANDLE = Arg("handle", "shm_handle_t", "unsigned_int", "int")
MMAP_ARGS = (ADDR, LEN, PROT, MAP_FLAGS, MAP_FD, OFF)
MMAP64_ARGS = (ADDR, LEN, PROT, MAP_FLAGS, MAP_FD, OFF64)


def _id(name: str, ctype: str) -> Arg:
    return Arg(name, ctype, "int_", "number")


MMAN = "sys/mman.h"
UNISTD = "unistd.h"

# fmt: off
TABLE: tuple[Call, ...] = (
    # -- sys/mman.h: mapping -------------------------------------------------------------
    Call("mmap", MMAN, "void *", MMAP_ARGS, "map_failed", "address"),
    Call("mmap64", MMAN, "void *", MMAP64_ARGS, "map_failed", "address"),
    Call("mmap_peer", MMAN, "void *", (PID, *MMAP_ARGS), "map_failed", "address", target=0),
    Call("mmap64_peer", MMAN, "void *", (PID, *MMAP64_ARGS), "map_failed", "address",
         target=0),
    Call("munmap", MMAN, "int", (ADDR, LEN), "minus_one", "zero"),
    Call("munmap_flags", MMAN, "int",
         (ADDR, LEN, Arg("flags", "unsigned", "unsigned_int", "int")), "minus_one", "zero"),
    Call("munmap_peer", MMAN, "int", (PID, ADDR, LEN), "minus_one", "zero", target=0),
    Call("mprotect", MMAN, "int", (ADDR, LEN, PROT), "minus_one", "zero"),
    Call("msync", MMAN, "int", (ADDR, LEN, Arg("flags", "int", "int_", "ms")), "minus_one",
         "zero"),
    Call("mlock", MMAN, "int", (CADDR, LEN), "minus_one", "zero"),
    Call("munlock", MMAN, "int", (CADDR, LEN), "minus_one", "zero"),
    Call("mlockall", MMAN, "int", (Arg("flags", "int", "int_", "mcl"),), "minus_one", "zero"),
    Call("munlockall", MMAN, "int", (), "minus_one", "zero"),
    Call("posix_madvise", MMAN, "int", (ADDR, LEN, Arg("advice", "int", "int_", "madv")),
         "errno", "errno"),
    # -- sys/mman.h: physical memory -----------------------------------------------------
    Call("mem_offset", MMAN, "int", (CADDR, MAP_FD, Arg("length", "size_t", "size_t", "size")),
         "minus_one", "phys", "tuple[int, int]",
         c_params=(("addr", "const void *"), ("fd", "int"), ("length", "size_t"),
                   ("offset", "off_t *"), ("contig_len", "size_t *"))),
    Call("mem_offset64", MMAN, "int",
         (CADDR, MAP_FD, Arg("length", "size_t", "size_t", "size")),
         "minus_one", "phys", "tuple[int, int]",
         c_params=(("addr", "const void *"), ("fd", "int"), ("length", "size_t"),
                   ("offset", "off64_t *"), ("contig_len", "size_t *"))),
    Call("mmap_device_memory", MMAN, "void *",
         (ADDR, LEN, PROT, MAP_FLAGS, Arg("physical", "uint64_t", "off64_t", "phys")),
         "map_failed", "address"),
    Call("munmap_device_memory", MMAN, "int", (ADDR, LEN), "minus_one", "zero"),
    Call("mmap_device_io", MMAN, "uintptr_t",
         (LEN, Arg("io", "uint64_t", "uint64_t", "phys")), "map_failed", "address"),
    Call("munmap_device_io", MMAN, "int", (Arg("io", "uintptr_t", "addr", "addr"), LEN),
         "minus_one", "zero"),
    Call("posix_mem_offset", MMAN, "int", (CADDR, LEN), "errno_and_result", "tuple",
         "tuple[int, int, int]",
         c_params=(("addr", "const void *"), ("len", "size_t"), ("off", "off_t *"),
                   ("contig_len", "size_t *"), ("fildes", "int *"))),
    Call("posix_mem_offset64", MMAN, "int", (CADDR, LEN), "errno_and_result", "tuple",
         "tuple[int, int, int]",
         c_params=(("addr", "const void *"), ("len", "size_t"), ("off", "off64_t *"),
                   ("contig_len", "size_t *"), ("fildes", "int *"))),
    # -- sys/mman.h: shared and typed memory ---------------------------------------------
    Call("shm_open", MMAN, "int",
         (Arg("name", "const char *", "shm_name", "str"), OFLAG,
          Arg("mode", "mode_t", "unsigned_int", "mode", optional=True)),
         "minus_one", "fd"),
    Call("shm_unlink", MMAN, "int", (NAME,), "minus_one", "zero"),
    Call("shm_ctl", MMAN, "int",
         (FD, Arg("flags", "int", "int_", "shmctl"), Arg("paddr", "uint64_t", "uint64_t", "phys"),
          Arg("size", "uint64_t", "uint64_t", "size")),
         "minus_one", "zero"),
    Call("shm_ctl_special", MMAN, "int",
         (FD, Arg("flags", "int", "int_", "shmctl"), Arg("paddr", "uint64_t", "uint64_t", "phys"),
          Arg("size", "uint64_t", "uint64_t", "size"),
          Arg("special", "unsigned", "unsigned_int", "number")),
         "minus_one", "zero"),
    Call("shm_create_handle", MMAN, "int",
         (FD, PID, Arg("flags", "int", "int_", "oflag"),
          Arg("options", "unsigned", "unsigned_int", "handleopt")),
         "minus_one", "handle",
         c_params=(("fd", "int"), ("pid", "pid_t"), ("flags", "int"),
                   ("handlep", "shm_handle_t *"), ("options", "unsigned"))),
    Call("shm_open_handle", MMAN, "int", (HANDLE, Arg("flags", "int", "int_", "oflag")),
         "minus_one", "fd"),
    Call("mmap_handle", MMAN, "void *", (ADDR, LEN, PROT, MAP_FLAGS, HANDLE, OFF),
         "map_failed", "address"),
    Call("shm_delete_handle", MMAN, "int", (HANDLE,), "minus_one", "zero"),
    Call("shm_revoke", MMAN, "int", (FD, PID), "minus_one", "zero", target=1),
    Call("posix_typed_mem_open", MMAN, "int", (NAME, OFLAG, _id("tflag", "int")), "minus_one",
         "fd"),
    Call("posix_typed_mem_get_info", MMAN, "int", (FD,), "errno_and_result", "length",
         c_params=(("fd", "int"), ("info", "struct posix_typed_mem_info *"))),
    # -- fcntl.h, unistd.h, sys/stat.h: files --------------------------------------------
    Call("open", "fcntl.h", "int",
         (PATH, OFLAG, Arg("mode", "mode_t", "unsigned_int", "mode", optional=True)),
         "minus_one", "fd", c_params=(("path", "const char *"), ("oflag", "int"), ("...", ""))),
    Call("close", UNISTD, "int", (FD,), "minus_one", "zero"),
    Call("dup", UNISTD, "int", (FD,), "minus_one", "fd"),
    Call("dup2", UNISTD, "int", (FD, Arg("fd2", "int", "int_", "int")), "minus_one", "fd"),
    Call("read", UNISTD, "ssize_t", (FD, Arg("n", "size_t", "size_t", "size")), "minus_one",
         "bytes", "bytes", c_params=(("fd", "int"), ("buf", "void *"), ("n", "size_t"))),
    Call("pread", UNISTD, "ssize_t",
         (FD, Arg("n", "size_t", "size_t", "size"), Arg("offset", "off_t", "off64_t", "number")),
         "minus_one", "bytes", "bytes",
         c_params=(("fd", "int"), ("buf", "void *"), ("n", "size_t"), ("offset", "off_t"))),
    Call("write", UNISTD, "ssize_t", (FD, Arg("data", "const void *", "bytes", "bytes")),
         "minus_one", "count",
         c_params=(("fd", "int"), ("data", "const void *"), ("nbytes", "size_t"))),
    Call("pwrite", UNISTD, "ssize_t",
         (FD, Arg("data", "const void *", "bytes", "bytes"),
          Arg("offset", "off_t", "off64_t", "number")),
         "minus_one", "count",
         c_params=(("fd", "int"), ("data", "const void *"), ("nbytes", "size_t"),
                   ("offset", "off_t"))),
    Call("lseek", UNISTD, "off_t",
         (FD, Arg("offset", "off_t", "off64_t", "int"), Arg("whence", "int", "int_", "whence")),
         "minus_one", "offset"),
    Call("fstat", "sys/stat.h", "int", (FD,), "minus_one", "stat", "Stat",
         c_params=(("fd", "int"), ("buf", "struct stat *"))),
    Call("ftruncate", UNISTD, "int", (FD, Arg("length", "off_t", "off64_t", "size")),
         "minus_one", "zero"),
    # -- sys/procmgr.h -------------------------------------------------------------------
    Call("procmgr_ability", "sys/procmgr.h", "int", (PID,), "errno", "errno", target=0,
         variadic=Arg("entries", "unsigned", "uint64_t", "number"),
         c_params=(("pid", "pid_t"), ("ability", "unsigned"), ("...", ""))),
    # -- processes -----------------------------------------------------------------------
    Call("fork", UNISTD, "pid_t", (), "minus_one", "new_pid"),
    Call("exec", "process.h", "int", (PATH,), "minus_one", "zero", c_name="execv",
         c_params=(("path", "const char *"), ("argv", "char *const *"))),
    Call("waitpid", "sys/wait.h", "pid_t",
         (Arg("pid", "pid_t", "pid_t", "pid"),
          Arg("options", "int", "int_", "wait", optional=True)),
         "minus_one", "tuple", "tuple[int, int]",
         c_params=(("pid", "pid_t"), ("stat_loc", "int *"), ("options", "int"))),
    Call("exit", "stdlib.h", "void", (Arg("status", "int", "int_", optional=True),), "raises",
         "none", "None"),
    Call("spawn", "", "",
         (Arg("path", "const char *", "str", "str", optional=True),
          Arg("image", "", "object", "number", optional=True)),
         "raises", "new_pid", "Process"),
    # -- credentials and limits ----------------------------------------------------------
    Call("setuid", UNISTD, "int", (_id("uid", "uid_t"),), "minus_one", "zero"),
    Call("seteuid", UNISTD, "int", (_id("uid", "uid_t"),), "minus_one", "zero"),
    Call("setgid", UNISTD, "int", (_id("gid", "gid_t"),), "minus_one", "zero"),
    Call("setegid", UNISTD, "int", (_id("gid", "gid_t"),), "minus_one", "zero"),
    Call("getrlimit", "sys/resource.h", "int", (Arg("resource", "int", "int_", "rlimit"),),
         "minus_one", "tuple", "tuple[int, int]",
         c_params=(("resource", "int"), ("rlp", "struct rlimit *"))),
    Call("setrlimit", "sys/resource.h", "int",
         (Arg("resource", "int", "int_", "rlimit"), Arg("soft", "rlim_t", "rlim_t", "rlim"),
          Arg("hard", "rlim_t", "rlim_t", "rlim")),
         "minus_one", "zero",
         c_params=(("resource", "int"), ("rlp", "const struct rlimit *"))),
    # -- Python-level methods: memory access and introspection (SPEC 14, R-MAP-1) --------
    Call("read_memory", "", "", (ADDR, Arg("size", "size_t", "size_t", "size")), "raises",
         "bytes", "bytes"),
    Call("write_memory", "", "", (ADDR, Arg("data", "const void *", "bytes", "bytes")),
         "raises", "none", "None"),
    Call("check_access", "", "",
         (ADDR, Arg("size", "size_t", "size_t", "size"),
          Arg("access_kind", "", "object", "str")),
         "raises", "none", "None"),
    Call("mapping_at", "", "", (ADDR,), "raises", "record", "Mapping | None"),
    Call("mappings", "", "", (), "raises", "records", "tuple[Mapping, ...]"),
)

#: Rows of SPEC calls whose ``Process`` methods are not written yet.  A row moves from here
#: to ``TABLE`` in the change that adds its method (``tests/test_calls.py`` insists).
PLANNED: tuple[Call, ...] = ()
# fmt: on

#: Name -> row.
CALLS: dict[str, Call] = {row.name: row for row in TABLE}
#: The calls ``process.libc`` has, in table order.
LIBC_CALLS: tuple[str, ...] = tuple(row.name for row in TABLE if row.on_libc)


# -- C declarations -------------------------------------------------------------------------


def _param(name: str, ctype: str) -> str:
    if name == "...":
        return "..."
    return f"{ctype}{name}" if ctype.endswith("*") else f"{ctype} {name}"


def c_params(row: Call) -> tuple[tuple[str, str], ...]:
    """The C parameters of ``row``, ``(name, C type)``, in C order."""
    if row.c_params is not None:
        return row.c_params
    params = tuple((a.name, a.ctype) for a in row.args)
    return (*params, ("...", "")) if row.variadic is not None else params


def prototype(row: Call) -> str:
    """The C declaration of a call as its QNX header has it (without ``extern`` and ``;``).

    >>> prototype(CALLS["mmap_peer"])
    'void *mmap_peer(pid_t pid, void *addr, size_t len, int prot, int flags, int fd, off_t off)'
    >>> prototype(CALLS["shm_unlink"])
    'int shm_unlink(const char *name)'
    """
    if not row.header:
        raise ValueError(f"{row.name} is a Python-level method with no C declaration")
    params = ", ".join(_param(n, t) for n, t in c_params(row)) or "void"
    name = row.c_name or row.name
    sep = "" if row.returns.endswith("*") else " "
    return f"{row.returns}{sep}{name}({params})"


def headers() -> dict[str, tuple[Call, ...]]:
    """Header -> the rows it declares, in table order (Python-level methods left out)."""
    out: dict[str, list[Call]] = {}
    for row in TABLE:
        if row.header:
            out.setdefault(row.header, []).append(row)
    return {h: tuple(rows) for h, rows in out.items()}


# -- Python-side argument conversion (R-CALL-2) ---------------------------------------------


def check_str(name: str, value: object) -> str:
    """A path or name: a ``str``, else TypeError."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    return value


def check_bytes(name: str, value: object) -> bytes:
    """Data to write: bytes-like, else TypeError."""
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes-like, not {type(value).__name__}")
    return bytes(value)


def _shm_name(name: str, value: object) -> object:
    return value if value is SHM_ANON else check_str(name, value)


def _as_is(name: str, value: object) -> object:
    return value


_PLAIN: dict[str, Callable[[str, Any], Any]] = {
    "str": check_str,
    "bytes": check_bytes,
    "shm_name": _shm_name,
    "object": _as_is,
}
Converter = tuple[str, Callable[[str, Any], Any]]
_BOUND: dict[int, dict[str, tuple[tuple[Converter, ...], Converter | None]]] = {}


def _bind(ctypes: CTypes) -> dict[str, tuple[tuple[Converter, ...], Converter | None]]:
    def one(arg: Arg) -> Converter:
        fn = _PLAIN.get(arg.convert) or getattr(ctypes, arg.convert)
        return arg.name, fn

    table = {
        row.name: (
            tuple(one(a) for a in row.args),
            one(row.variadic) if row.variadic is not None else None,
        )
        for row in TABLE
    }
    _BOUND[ctypes.bits] = table
    return table


def convert(ctypes: CTypes, call: str, values: tuple[object, ...]) -> tuple[Any, ...]:
    """The arguments of ``call`` converted as its C parameters convert them (R-CALL-2).

    TypeError for a value of the wrong Python type.  O(number of arguments).

    >>> from qnxsim.arch import CTypes
    >>> convert(CTypes(64), "munmap", (0x1000, -1)) == (0x1000, 2**64 - 1)
    True
    """
    table = _BOUND.get(ctypes.bits) or _bind(ctypes)
    fixed, repeated = table[call]
    if repeated is not None and len(values) > len(fixed):
        fixed = fixed + (repeated,) * (len(values) - len(fixed))
    return tuple([fn(name, v) for (name, fn), v in zip(fixed, values, strict=True)])


# -- the typed libc stub --------------------------------------------------------------------

_PY_TYPES: dict[str, str] = {"str": "str", "bytes": "bytes", "shm_name": "object"}


def _stub_method(row: Call) -> str:
    params = ["self"]
    for a in row.args:
        default = " = 0" if a.optional and a.convert not in _PY_TYPES else ""
        params.append(f"{a.name}: {_PY_TYPES.get(a.convert, 'int')}{default}")
    if row.variadic is not None:
        params.append(f"*{row.variadic.name}: int")
    else:
        params.append("/")
    result = row.py_result
    if row.failure == "errno_and_result":
        result = f"tuple[int, {result} | None]"
    elif row.failure_value is not None and result != "int":
        result = f"{result} | int"
    return f"    def {row.name}({', '.join(params)}) -> {result}: ..."


def libc_stub() -> str:
    """The text of ``qnxsim/libc_calls.pyi``: a typed method per ``libc`` row, so that
    ``mypy --strict`` rejects ``libc.mmapp`` and wrong argument counts."""
    lines = [
        '"""Typed methods of ``process.libc``, generated by ``qnxsim.calls.libc_stub()``."""',
        "",
        "from qnxsim.pathspace import Stat",
        "",
        "class LibcCalls:",
    ]
    lines += [_stub_method(CALLS[name]) for name in LIBC_CALLS]
    return "\n".join(lines) + "\n"
