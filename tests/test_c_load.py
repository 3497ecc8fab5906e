"""``qnxsim.c.load``: C functions called from Python inside simulated processes (the call
host), the ``qnx_c`` fixtures, and the example port test proven able to fail."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from c_support import EXAMPLES, needs_c
from hypothesis import given, settings
from hypothesis import strategies as st

from qnxsim import Kernel, MemoryFault
from qnxsim import constants as C
from qnxsim.c.load import CallTimeout, load, out, parse_cdef, parse_type
from qnxsim.pytest_plugin import CLoader

pytestmark = needs_c
pytest_plugins = ["pytester"]

HELPERS = r"""
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
int add(int a, int b);
unsigned umax(void);
long neg(long a);
void fill(char *buf, size_t n, int c);
int with_errno(int e);
int crash_null(void);
int spin(void);
void *leak(size_t n);
int add(int a, int b) { return a + b; }
unsigned umax(void) { return 0xffffffffu; }
long neg(long a) { return -a; }
void fill(char *buf, size_t n, int c) { memset(buf, c, n); }
int with_errno(int e) { errno = e; return -1; }
int crash_null(void) { return *(volatile int *)0; }
int spin(void) { for (;;) { } }
void *leak(size_t n) {
    void *p = mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    if (p != MAP_FAILED)
        memset(p, 7, n);
    return p;
}
"""
CDEF = """
int add(int a, int b); unsigned umax(void); long neg(long a);
void fill(char *buf, size_t n, int c); int with_errno(int e); int crash_null(void);
int spin(void); void *leak(size_t n);
"""
SERVER_CDEF = "int share_buffer(pid_t client, size_t size, void **theirs);"


@pytest.fixture(scope="module")
def helpers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    src = tmp_path_factory.mktemp("c") / "helpers.c"
    src.write_text(HELPERS)
    lib = load([src], cdef=CDEF)
    yield lib
    lib.close()


def test_integers_cross_with_their_declared_types(helpers: Any) -> None:
    k = Kernel()
    p = k.spawn()
    assert helpers.add.as_process(p, 2, 40) == 42
    assert helpers.add.as_process(p, -5, 2) == -3
    assert helpers.umax.as_process(p) == 0xFFFFFFFF
    assert helpers.neg.as_process(p, 1 << 40) == -(1 << 40)
    assert helpers.add.errno is None
    helpers.close()
    assert not p.alive and k.meminfo().allocated == 0
    k.check_invariants()


def test_the_call_host_persists_between_calls_of_a_process(helpers: Any) -> None:
    k = Kernel()
    p = k.spawn()
    helpers.add.as_process(p, 1, 1)
    host = helpers._hosts[id(p)]
    for i in range(20):
        assert helpers.add.as_process(p, i, i) == 2 * i
    assert helpers._hosts[id(p)] is host and host.popen.poll() is None
    helpers.close()


def test_buffers_and_out_parameters_come_back(helpers: Any) -> None:
    k = Kernel()
    p = k.spawn()
    buf = bytearray(8)
    assert helpers.fill.as_process(p, buf, 8, ord("z")) is None
    assert buf == b"z" * 8
    ro = b"abc"
    helpers.fill.as_process(p, ro, 3, 0)
    assert ro == b"abc"  # bytes are copied in, never back
    helpers.close()


def test_errno_is_qnx_name_and_number(helpers: Any) -> None:
    import errno as host

    k = Kernel()
    p = k.spawn()
    r = helpers.with_errno.call(p, host.ESRCH)
    assert (r.value, r.errno, r.errno_name) == (-1, 3, "ESRCH")
    helpers.with_errno.as_process(p, host.ENOTSUP)
    assert helpers.with_errno.errno == "ENOTSUP" and helpers.with_errno.last is not None
    assert helpers.with_errno.last.errno == 48  # QNX's ENOTSUP, not the host's
    helpers.close()


def test_bad_arguments_are_type_errors(helpers: Any) -> None:
    k = Kernel()
    p = k.spawn()
    with pytest.raises(TypeError, match="takes 2 arguments, not 1"):
        helpers.add.as_process(p, 1)
    with pytest.raises(TypeError, match="float does not cross"):
        helpers.add.as_process(p, 1.5, 2)
    with pytest.raises(TypeError, match="Process first"):
        helpers.add.as_process(p.pid, 1, 2)
    with pytest.raises(TypeError, match="None for 'int'"):
        helpers.add.as_process(p, None, 2)
    with pytest.raises(AttributeError, match="no function 'nope' was declared"):
        helpers.nope  # noqa: B018
    with pytest.raises(TypeError, match="floating point"):
        parse_cdef("double f(double x);")
    with pytest.raises(ValueError, match="cannot parse"):
        parse_cdef("int f(int x")
    assert parse_type("void *").pointer and parse_type("pid_t").signed
    with pytest.raises(ValueError, match=r"built for QNX 8\.0"):
        helpers.add.as_process(Kernel(version="7.1").spawn(), 1, 2)


def test_R_FAULT_2_a_host_fault_raises_MemoryFault_and_the_next_call_is_unaffected(
    helpers: Any,
) -> None:
    k = Kernel()
    p, q = k.spawn(), k.spawn()
    with pytest.raises(MemoryFault) as fault:
        helpers.crash_null.as_process(p)
    assert (fault.value.signo, fault.value.addr, fault.value.pid) == (C.SIGSEGV, 0, p.pid)
    assert not p.alive
    with pytest.raises(ProcessLookupError, match="has ended"):
        helpers.add.as_process(p, 1, 2)
    assert helpers.add.as_process(q, 1, 2) == 3
    helpers.close()
    k.check_invariants()
    assert k.meminfo().allocated == 0


def test_a_function_that_loops_forever_times_out_and_its_process_is_killed(
    helpers: Any,
) -> None:
    k = Kernel()
    p, q = k.spawn(), k.spawn()
    with pytest.raises(CallTimeout, match=r"spin\(\) did not return within 0.5 s"):
        helpers.spin.as_process(p, timeout=0.5)
    assert not p.alive
    assert helpers.add.as_process(q, 2, 2) == 4
    helpers.close()
    k.check_invariants()


def test_R_PROC_4_a_mapping_leaking_function_is_released_with_its_process(helpers: Any) -> None:
    k = Kernel()
    p = k.spawn()
    addr = helpers.leak.as_process(p, 3 * 4096)
    assert p.read_memory(addr, 3 * 4096) == b"\x07" * (3 * 4096)
    assert k.meminfo().allocated >= 3 * 4096
    helpers.close()
    assert not p.alive and k.meminfo().allocated == 0
    k.check_invariants()


def _example_module() -> Any:
    spec = importlib.util.spec_from_file_location("c_test_server", EXAMPLES / "test_server.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_example_catches_a_port_that_maps_read_write() -> None:
    example = _example_module()
    options = {"sources": [EXAMPLES / "server.c"], "cdef": SERVER_CDEF}
    right = CLoader("8.0", options)
    wrong = CLoader("8.0", {**options, "cflags": ["-DSHARE_PROT=PROT_READ|PROT_WRITE"]})
    try:
        example.test_the_mapping_lands_read_only_in_the_client(Kernel(trace=True), right)
        with pytest.raises(AssertionError):
            example.test_the_mapping_lands_read_only_in_the_client(Kernel(trace=True), wrong)
    finally:
        right.close()
        wrong.close()


def test_the_example_catches_a_port_that_ignores_errors(tmp_path: Path) -> None:
    example = _example_module()
    src = tmp_path / "server.c"
    src.write_text(
        "#include <sys/types.h>\n#include <stddef.h>\n"
        "int share_buffer(pid_t client, size_t size, void **theirs);\n"
        "int share_buffer(pid_t c, size_t s, void **t) { (void)c; (void)s; *t = 0; return 0; }\n"
    )
    wrong = CLoader("8.0", {"sources": [src], "cdef": SERVER_CDEF})
    try:
        with pytest.raises(AssertionError):
            example.test_ESRCH_when_the_client_has_exited(Kernel(), wrong)
        with pytest.raises(AssertionError):
            example.test_EPERM_for_a_non_root_server(Kernel(), wrong)
    finally:
        wrong.close()


@pytest.mark.qnxsim_c(sources=[EXAMPLES / "server.c"], cdef=SERVER_CDEF)
def test_the_qnx_c_fixture_loads_for_the_kernel_and_ends_its_hosts(
    qnx_kernel: Kernel, qnx_c: CLoader
) -> None:
    lib = qnx_c()
    assert qnx_c() is lib and lib.version == qnx_kernel.version
    s, c = qnx_kernel.spawn(), qnx_kernel.spawn()
    assert lib.share_buffer.as_process(s, c.pid, 4096, out("void *")) == 0


FAILING_C_TESTS = """
import pytest
from qnxsim import MemoryFault
from qnxsim.c import build
from qnxsim.c.load import out

pytestmark = pytest.mark.qnxsim_c(
    sources=["server.c"],
    cdef="int share_buffer(pid_t client, size_t size, void **theirs);"
         "int share_buffer_buggy(pid_t client, size_t size, void **theirs);",
)


@pytest.mark.qnxsim(trace=True)
def test_traced(qnx_kernel, qnx_c):
    s, c = qnx_kernel.spawn(), qnx_kernel.spawn()
    qnx_kernel.spawn().mmap(0, 4096, 0x100, 0x80002, -1, 0)  # a Python process's call
    assert qnx_c().share_buffer.as_process(s, c.pid, 8192, out("void *")) == 1


def test_untraced(qnx_kernel, qnx_c):
    s = qnx_kernel.spawn()
    assert qnx_c().share_buffer.as_process(s, 99, 4096, out("void *")) == 0


@pytest.mark.qnxsim(trace=True)
def test_faulted(qnx_kernel, qnx_c):
    s, c = qnx_kernel.spawn(), qnx_kernel.spawn()
    with pytest.raises(MemoryFault):
        qnx_c().share_buffer_buggy.as_process(s, c.pid, 4096, out("void *"))
    assert s.alive


@pytest.mark.qnxsim(trace=True)
def test_program(qnx_kernel):
    assert qnx_kernel.exec_c(build(["peer_page.c"])).wait() == 1
"""


def test_the_failure_report_shows_c_processes_and_their_last_calls(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_failing=FAILING_C_TESTS)
    for name in ("server.c", "peer_page.c"):
        (pytester.path / name).write_bytes((EXAMPLES / name).read_bytes())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    reports = {}
    for block in result.stdout.str().split("_ test_")[1:]:
        name = block.split(" ", 1)[0]
        reports[name] = block[block.index("qnxsim address spaces") :]
    assert set(reports) == {"traced", "untraced", "faulted", "program"}
    traced = reports["traced"]
    head = "C processes (lib.f.as_process, Kernel.exec_c):\n  pid 2 (/proc/boot/app): running"
    assert head in traced
    c_part = traced[traced.index("C processes") :]
    assert "    C share_buffer(3, 8192, out('void *')) -> 0\n" in c_part
    assert "    mmap(0, 8192, PROT_READ|PROT_WRITE, MAP_SHARED, 0, 0) -> 0x" in c_part
    assert "    mmap_peer(3, 0, 8192, PROT_READ, MAP_SHARED, 0, 0) -> 0x1000000000\n" in c_part
    assert "pid 4" not in c_part  # the Python process is in the trace, not among these
    assert "pid 4 mmap(0, 4096, PROT_READ, MAP_PRIVATE|MAP_ANON, NOFD, 0)" in traced
    untraced = reports["untraced"]
    assert "    C share_buffer(99, 4096, out('void *')) -> -1, errno ESRCH\n" in untraced
    assert "last " not in untraced  # no trace: the C call only
    faulted = reports["faulted"]
    assert (
        "  pid 2: ended\n    C share_buffer_buggy(3, 4096, out('void *')): MemoryFault: " in faulted
    )
    assert "SIGSEGV/SEGV_MAPERR at 0x1000000000" in faulted
    assert 'MemoryFault(0x1000000000, "w") -> SIGSEGV: SIGSEGV/SEGV_MAPERR' in faulted
    program = reports["program"]
    assert "  pid 2: ended\n    C program " in program and "  pid 3: ended\n" in program
    assert "    munmap_peer(2, 0x1000000000, 4096) -> 0\n" in program


# The hypothesis pattern: one build for the session, a fresh kernel per example, the C
# function driven with generated arguments and the simulated state checked after each call.
@settings(max_examples=8, deadline=None)
@given(size=st.integers(min_value=1, max_value=5 * 4096), uid=st.sampled_from([0, 1000]))
def test_share_buffer_maps_whole_pages_read_only_or_fails_cleanly(
    qnx_c_session: CLoader, size: int, uid: int
) -> None:
    lib = qnx_c_session([EXAMPLES / "server.c"], cdef=SERVER_CDEF)
    k = Kernel()
    server, client = k.spawn(uid=uid), k.spawn(uid=0)
    before = client.mappings()
    theirs = out("void *")
    rc = lib.share_buffer.as_process(server, client.pid, size, theirs)
    if uid == 0:
        m = client.mapping_at(theirs.value)
        assert rc == 0 and m is not None and m.prot == C.PROT_READ
        assert m.end - m.start == -(-size // k.page_size) * k.page_size
    else:
        assert (rc, lib.share_buffer.errno) == (-1, "EPERM")
        assert client.mappings() == before
    k.check_invariants()  # the call hosts end with the session (qnx_c_session's finalizer)


SESSION_CONFTEST = """
import json
import os


def live_processes():
    \"\"\"(pid, parent pid, process group) of every process that has not ended.\"\"\"
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as f:
                state, ppid, pgid = f.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if state != "Z":
            found.append((int(entry), int(ppid), int(pgid)))
    return found


def pytest_sessionfinish(session):
    with open("hosts.json") as f:
        hosts = set(json.load(f))
    procs = live_processes()
    left = {
        "children": [pid for pid, ppid, _ in procs if ppid == os.getpid()],
        "groups": [pid for pid, _, pgid in procs if pgid in hosts],
    }
    with open("left.json", "w") as f:
        json.dump(left, f)
"""
SESSION_TESTS = """
import json
from hypothesis import given, settings, strategies as st
from qnxsim import Kernel
from qnxsim.c.load import out

CDEF = "int share_buffer(pid_t client, size_t size, void **theirs); int forker(void);"
HOSTS = set()


@settings(max_examples=4, deadline=None, database=None)
@given(size=st.integers(1, 3 * 4096))
def test_no_close(qnx_c_session, size):
    lib = qnx_c_session(["server.c", "forker.c"], cdef=CDEF)
    k = Kernel()
    server, client = k.spawn(), k.spawn()
    assert lib.share_buffer.as_process(server, client.pid, size, out("void *")) == 0
    assert lib.forker.as_process(k.spawn()) > 0  # its forked child never ends by itself
    HOSTS.update(h.popen.pid for h in lib._hosts.values())
    with open("hosts.json", "w") as f:
        json.dump(sorted(HOSTS), f)
"""
FORKER = r"""
#include <sys/types.h>
#include <unistd.h>
int forker(void);
int forker(void) {
    pid_t pid = fork();
    if (pid == 0)
        for (;;)
            pause();
    return (int)pid;
}
"""


def test_qnx_c_session_ends_its_hosts_and_their_children_with_the_session(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(SESSION_CONFTEST)
    pytester.makepyfile(test_session=SESSION_TESTS)
    (pytester.path / "server.c").write_bytes((EXAMPLES / "server.c").read_bytes())
    (pytester.path / "forker.c").write_text(FORKER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    hosts = json.loads((pytester.path / "hosts.json").read_text())
    assert len(hosts) >= 8  # two hosts an example, none closed by the test
    left = json.loads((pytester.path / "left.json").read_text())
    assert left == {"children": [], "groups": []}, "host processes outlived the session"


README_HEADING = "## Testing your C port"
README_OPENING = "<!-- examples/c/test_server.py -->\n```python\n"


def test_the_readme_example_is_examples_c_test_server() -> None:
    text = (EXAMPLES.parent.parent / "README.md").read_text(encoding="utf-8")
    section = text[text.index(README_HEADING) :]
    body = section[section.index(README_OPENING) + len(README_OPENING) :]
    assert body[: body.index("```\n")] == (EXAMPLES / "test_server.py").read_text()


def test_the_example_test_file_passes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_server=(EXAMPLES / "test_server.py").read_text())
    (pytester.path / "server.c").write_bytes((EXAMPLES / "server.c").read_bytes())
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=7)


def test_the_module_is_callable_as_load() -> None:
    import qnxsim.c.load

    lib = qnxsim.c.load([EXAMPLES / "server.c"], cdef=SERVER_CDEF)
    assert set(lib.functions) == {"share_buffer"}
