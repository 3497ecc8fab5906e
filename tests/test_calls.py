"""The call table (qnxsim.calls) against the code that reads it: Process, libc, its stub.

Every row has a Process method with the same arguments in the same order, every public
call method of Process has a row, ``libc`` has exactly the rows with a C failure
convention, and the typed stub of ``libc`` is the one the table generates, so that mypy
rejects a misspelt ``libc`` call.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from support import mypy_strict

from qnxsim import Kernel, Process, QnxError
from qnxsim import constants as C
from qnxsim import errno as E
from qnxsim import process as process_module
from qnxsim.arch import CTypes
from qnxsim.calls import CALLS, LIBC_CALLS, PLANNED, TABLE, Call, convert, libc_stub, prototype
from qnxsim.libc import Libc

PACKAGE = Path(__file__).resolve().parent.parent / "qnxsim"
#: Public methods of Process that are not calls of the table.
NOT_CALLS = {"able"}


def public_methods() -> set[str]:
    return {
        name
        for name, value in vars(Process).items()
        if not name.startswith("_") and inspect.isfunction(value) and name not in NOT_CALLS
    }


def parameters(name: str) -> tuple[list[str], str | None]:
    """The argument names of ``Process.<name>`` (``self`` left out) and its ``*args``."""
    params = list(inspect.signature(getattr(Process, name)).parameters.values())[1:]
    names = [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    star = [p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL]
    return names, star[0] if star else None


def test_names_are_unique() -> None:
    names = [row.name for row in (*TABLE, *PLANNED)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("row", TABLE, ids=lambda r: r.name)
def test_every_row_has_a_process_method_with_its_arguments(row: Call) -> None:
    assert row.name in public_methods(), f"{row.name} has a row but no Process method"
    names, star = parameters(row.name)
    assert names == [a.name for a in row.args]
    assert star == (row.variadic.name if row.variadic else None)
    defaults = [
        p.default is not inspect.Parameter.empty
        for p in inspect.signature(getattr(Process, row.name)).parameters.values()
        if p.name != "self" and p.kind is not inspect.Parameter.VAR_POSITIONAL
    ]
    assert defaults == [a.optional for a in row.args]


def test_every_public_call_method_has_a_row() -> None:
    assert public_methods() - set(CALLS) == set()


def test_a_planned_row_has_no_method_yet() -> None:
    """When the method lands, its row moves from calls.PLANNED to calls.TABLE (PLANNED may
    be empty: then nothing is waiting for a method)."""
    landed = [row.name for row in PLANNED if row.name in public_methods()]
    assert landed == [], f"move the rows of {landed} to calls.TABLE"


def test_libc_has_exactly_the_rows_with_a_c_failure_convention() -> None:
    libc = Kernel().spawn(image=False).libc
    assert set(dir(libc)) == {*LIBC_CALLS, "errno", "last_error"}
    assert set(LIBC_CALLS) == {row.name for row in TABLE if row.failure != "raises"}
    for name in LIBC_CALLS:
        assert callable(getattr(libc, name))
    for row in TABLE:
        if row.failure == "raises":
            with pytest.raises(AttributeError):
                getattr(libc, row.name)


def test_R_CALL_1_libc_keeps_the_last_error_with_its_reason() -> None:
    p = Kernel().spawn(image=False)
    assert p.libc.last_error is None
    anon = C.MAP_PRIVATE | C.MAP_ANON
    assert p.libc.mmap(0, 0, C.PROT_READ, anon, C.NOFD, 0) == C.MAP_FAILED
    err = p.libc.last_error
    assert isinstance(err, QnxError) and err.errno == E.EINVAL == p.libc.errno
    assert err.reason.startswith("R-MMAP-2") and err.call == "mmap" and err.pid == p.pid
    assert p.libc.mmap(0, 4096, C.PROT_READ, anon, C.NOFD, 0) != C.MAP_FAILED
    assert p.libc.last_error is err  # a success leaves errno and last_error alone, as in C
    assert p.libc.posix_mem_offset(0x1000, 4096) == (E.EACCES, None)
    assert p.libc.last_error is not None and p.libc.last_error.errno == E.EACCES
    assert p.libc.errno == E.EINVAL  # R-CALL-1: returned, errno untouched


def test_the_typed_libc_stub_is_generated_from_the_table() -> None:
    stub = (PACKAGE / "libc_calls.pyi").read_text()
    assert ast.dump(ast.parse(stub)) == ast.dump(ast.parse(libc_stub())), (
        "qnxsim/libc_calls.pyi is stale: regenerate it as the calls.py docstring says"
    )
    declared = {
        node.name for node in ast.walk(ast.parse(stub)) if isinstance(node, ast.FunctionDef)
    }
    assert declared == set(LIBC_CALLS)
    assert issubclass(Libc, object) and "__getattr__" in vars(Libc)


def test_mypy_rejects_a_misspelt_libc_call(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    out = mypy_strict(
        tmp_path,
        "use_libc.py",
        "from qnxsim.libc import Libc\n\n\n"
        "def use(libc: Libc) -> None:\n"
        "    libc.mmap(0, 4096, 3, 0x80002, -1, 0)\n"
        "    libc.mmapp(0, 4096, 3, 0x80002, -1, 0)\n"
        "    libc.munmap(0)\n",
    )
    assert 'use_libc.py:6: error: "Libc" has no attribute "mmapp"' in out, out
    assert 'use_libc.py:7: error: Too few arguments for "munmap"' in out
    assert out.count("error:") == 2, out


def test_R_CALL_2_convert_follows_the_row() -> None:
    c64, c32 = CTypes(64), CTypes(32)
    args = (0, -1, 3, 2, -1, -4096)
    assert convert(c64, "mmap", args) == (0, 2**64 - 1, 3, 2, -1, -4096)
    assert convert(c32, "mmap", args) == (0, 2**32 - 1, 3, 2, -1, 0xFFFF_F000)  # R-CALL-3
    assert convert(c32, "mmap64", args) == (0, 2**32 - 1, 3, 2, -1, -4096)
    assert convert(c64, "procmgr_ability", (0, 1, -1)) == (0, 1, 2**64 - 1)
    assert convert(c64, "shm_open", (C.SHM_ANON, 2, 0o600)) == (C.SHM_ANON, 2, 0o600)
    with pytest.raises(TypeError, match="path must be a str, not int"):
        convert(c64, "open", (3, 0, 0))
    with pytest.raises(TypeError, match="data must be bytes-like, not str"):
        convert(c64, "write", (3, "text"))
    with pytest.raises(TypeError, match="len must be an int, not float"):
        convert(c64, "munmap", (0, 1.0))


def test_prototypes_match_qnx_headers() -> None:
    want = {
        "mmap_peer": "void *mmap_peer(pid_t pid, void *addr, size_t len, int prot, int flags, "
        "int fd, off_t off)",
        "mem_offset64": "int mem_offset64(const void *addr, int fd, size_t length, "
        "off64_t *offset, size_t *contig_len)",
        "posix_mem_offset": "int posix_mem_offset(const void *addr, size_t len, off_t *off, "
        "size_t *contig_len, int *fildes)",
        "munlockall": "int munlockall(void)",
        "procmgr_ability": "int procmgr_ability(pid_t pid, unsigned ability, ...)",
        "open": "int open(const char *path, int oflag, ...)",
    }
    for name, text in want.items():
        assert prototype(CALLS[name]) == text
    planned = {row.name: row for row in PLANNED}
    if "shm_create_handle" in planned:
        assert prototype(planned["shm_create_handle"]) == (
            "int shm_create_handle(int fd, pid_t pid, int flags, shm_handle_t *handlep, "
            "unsigned options)"
        )
    with pytest.raises(ValueError, match="no C declaration"):
        prototype(CALLS["read_memory"])


def test_every_c_row_names_its_header_and_a_failure_value_matching_its_return() -> None:
    for row in TABLE:
        if row.failure == "raises":
            continue
        assert row.header.endswith(".h"), row.name
        if row.failure == "map_failed":
            assert row.returns in ("void *", "uintptr_t") and row.result == "address"
        else:
            assert row.returns in ("int", "ssize_t", "off_t", "pid_t"), row.name


def test_one_home_for_wnohang_and_procnto_pid() -> None:
    assert process_module.WNOHANG is C.WNOHANG and process_module.PROCNTO_PID is C.PROCNTO_PID
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign | ast.AnnAssign) and path.name != "constants.py":
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                assert not names & {"WNOHANG", "PROCNTO_PID"}, path.name


def test_strategies_and_script_calls_are_rows() -> None:
    from qnxsim.script import CALLS as SCRIPT_CALLS
    from qnxsim.strategies import CALL_NAMES

    assert set(CALL_NAMES) <= set(CALLS)
    assert set(SCRIPT_CALLS) == set(CALLS) - {"exit"}
