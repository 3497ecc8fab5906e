"""aarch64 C programs on an x86_64 host, through qemu-user (``QNXSIM_C_EMULATOR_AARCH64``).

The client library's aarch64 side (its fault decoding, system calls, signal frames) runs
here for real: the examples and a handful of the x86_64 tests' programs are built by the
cross compiler and run as simulated processes of an ``aarch64`` kernel.  Under qemu-user
the host keeps the program, its stack and its libraries inside QNX's user range: those
holes are never mapped over, and a mapping the simulator puts there ends the process with
words.  Skipped when qemu-aarch64 or the cross compiler is missing (CI installs both).
"""

from __future__ import annotations

import platform
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest
from c_support import EXAMPLES, cli, needs_c, run_full, session_alive, write_c
from test_c_bridge import EVICT, MEMORY, PROTECT, SHOOTDOWN
from test_c_signals import CATCHER, SIGBUS_HANDLER

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim.c import build
from qnxsim.c.server import Server

QEMU = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
CROSS = shutil.which("aarch64-linux-gnu-gcc")


def _skip_reason() -> str | None:
    if platform.machine() not in ("x86_64", "amd64"):
        return f"the host is {platform.machine()}: these run aarch64 programs on x86_64"
    if QEMU is None:
        return "no qemu-aarch64 (Debian: apt-get install qemu-user-static)"
    if CROSS is None:
        return "no aarch64-linux-gnu-gcc (Debian: apt-get install gcc-aarch64-linux-gnu)"
    if not Path("/usr/aarch64-linux-gnu/lib").is_dir():
        return "no aarch64 libc (Debian: apt-get install libc6-dev-arm64-cross)"
    return None


REASON = _skip_reason()
pytestmark = [
    needs_c,
    pytest.mark.skipif(REASON is not None, reason=f"aarch64 under qemu: {REASON}"),
]


@pytest.fixture(autouse=True)
def _emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    assert QEMU is not None
    monkeypatch.setenv("QNXSIM_C_EMULATOR_AARCH64", QEMU)


def run(
    k: Kernel, source: Path, *argv: str, arch: str = "aarch64", timeout: float = 60
) -> tuple[int, str, str]:
    return run_full(k, source, *argv, arch=arch, timeout=timeout)


def _ranges(pairs: Any) -> list[tuple[int, int, int, int, str]]:
    return [(pid, m.start, m.end, m.prot, str(m.kind)) for pid, m in pairs]


def _events(k: Kernel) -> list[tuple[Any, ...]]:
    """The trace without the program's path: what each call did to which mapping."""
    out = []
    for e in k.trace:
        args = () if e.call == "spawn" else e.args
        out.append((e.call, e.pid, args, e.result, e.errno, _ranges(e.added), _ranges(e.removed)))
    return out


@pytest.mark.parametrize(
    ("example", "expect"),
    [("peer_page", 0), ("shm_server", 0), ("buggy_port", 128 + signal.SIGSEGV)],
)
def test_the_examples_run_on_aarch64_with_the_same_mapping_events_as_on_x86_64(
    example: str, expect: int
) -> None:
    traces = {}
    for arch in ("aarch64", "x86_64"):
        k = Kernel(arch=arch, trace=True)
        status, out, _ = run(k, EXAMPLES / f"{example}.c", arch=arch)
        assert status == expect, (arch, out)
        assert k.meminfo().allocated == 0
        traces[arch] = _events(k)
    assert traces["aarch64"] == traces["x86_64"]
    faults = [e for e in traces["aarch64"] if e[0] == "MemoryFault"]
    if example == "buggy_port":  # R-FAULT-2: a write through a peer's address
        ((_, _, args, result, *_),) = faults
        assert result == C.SIGSEGV and args[1] == "w"
    else:
        assert faults == []


def test_R_OBJ_4_first_touches_read_and_write_the_simulators_ram(tmp_path: Path) -> None:
    k = Kernel(arch="aarch64")
    py = k.spawn(uid=0, image=False)
    fd = py.shm_open("/shared", C.O_RDWR | C.O_CREAT, 0o644)
    py.ftruncate(fd, 2 * 4096)
    a = py.mmap(0, 2 * 4096, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, fd, 0)
    py.write_memory(a + 4096, b"from python\0")
    status, out, err = run(k, write_c(tmp_path, "memory", MEMORY))
    assert status == 0, out + err
    assert "python wrote: from python" in out
    assert "private now: Xrom python, object: from python" in out
    assert py.read_memory(a, 12) == b"written by C"


@pytest.mark.parametrize(("how", "code"), [("w", "SEGV_ACCERR"), ("u", "SEGV_MAPERR")])
def test_R_FAULT_1_a_write_to_read_only_memory_is_told_from_a_read(
    tmp_path: Path, how: str, code: str
) -> None:
    """qemu-user's signal frame has no ESR: the client decodes the faulting instruction."""
    k = Kernel(arch="aarch64", trace=True)
    status, out, _ = run(k, write_c(tmp_path, "protect", PROTECT), how)
    assert out.startswith("read 1")
    assert status == 128 + signal.SIGSEGV
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert fault.reason.startswith(f"SIGSEGV/{code}")
    assert fault.args[1] == ("w" if how == "w" else "r")


def test_R_PEER_fork_shared_memory_and_a_shootdown_between_two_processes(
    tmp_path: Path,
) -> None:
    k = Kernel(arch="aarch64", trace=True)
    status, out, _ = run(k, write_c(tmp_path, "shootdown", SHOOTDOWN))
    assert out == "child 0\n"  # the child saw the parent's write and made its own
    assert status == 128 + signal.SIGSEGV  # the page was shot down in the parent
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert "SEGV_MAPERR" in fault.reason and fault.pid == 2


def test_R_FAULT_1_the_programs_own_sigsegv_handler(tmp_path: Path) -> None:
    k = Kernel(arch="aarch64", trace=True)
    status, out, err = run(k, write_c(tmp_path, "catcher", CATCHER))
    assert (status, out) == (0, "caught 3, sum 27\n"), err
    faults = [e for e in k.trace if e.call == "MemoryFault"]
    assert [(e.result, e.args[1]) for e in faults] == [(C.SIGSEGV, "w"), (C.SIGSEGV, "w")]


#: One A64 access per case, each the first touch of its own mapping: (asm, writes).
#: x0 holds the address (x3 zero); the decoder must tell which (qemu-user gives no ESR).
ACCESSES = [
    ("strb wzr, [x0]", 1),
    ("strh wzr, [x0, #2]", 1),
    ("str wzr, [x0, #4]!", 1),
    ("stur xzr, [x0, #8]", 1),
    ("stp xzr, xzr, [x0]", 1),
    ("movi v0.16b, #7; str q0, [x0]", 1),
    ("movi v0.16b, #7; st1 {v0.16b}, [x0]", 1),
    ("stlr xzr, [x0]", 1),
    ("swp x1, x2, [x0]", 1),
    ("cas x1, x2, [x0]", 1),
    ("ldadd x1, x2, [x0]", 1),
    ("dc zva, x0", 1),
    ("ldr x1, [x0]", 0),
    ("ldrsb x1, [x0, #1]", 0),
    ("ldp x1, x2, [x0]", 0),
    ("ldr q0, [x0]", 0),
    ("ld1 {v0.16b}, [x0]", 0),
    ("ldar x1, [x0]", 0),
    ("ldxr x1, [x0]", 0),
    ("prfm pldl1keep, [x0]; ldr w1, [x0, x3]", 0),
]


def _accesses_program() -> str:
    n = len(ACCESSES)
    cases = "\n".join(
        f'    __asm__ volatile("mov x0, %0; mov x3, xzr; {asm}" :: "r"(p[{i}])'
        ' : "x0", "x1", "x2", "x3", "v0", "memory");'
        for i, (asm, _) in enumerate(ACCESSES)
    )
    return f"""
#include <stdio.h>
#include <sys/mman.h>
int main(void) {{
    /* the odd pages, read-only, keep the records apart (a grant covers one record) */
    char *m = mmap(0, {2 * n} * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    for (int i = 1; i < {2 * n}; i += 2)
        mprotect(m + i * 4096, 4096, PROT_READ);
    char *p[{n}];
    for (int i = 0; i < {n}; i++)
        p[i] = m + 2 * i * 4096 + 64;
{cases}
    printf("done\\n");
    return 0;
}}
"""


def test_R_FAULT_1_each_store_is_a_write_and_each_load_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each first touch asks once, as the access it is (a store taken for a load would be
    granted read-only and fault a second time; a QNX fault would name the wrong access):
    plain, pair, SIMD, release, atomic, compare-and-swap and cache-zeroing stores."""
    asked: list[tuple[int, int]] = []
    fault = Server._fault

    def counting(self: Server, client: Any, args: list[int]) -> None:
        asked.append((args[0], args[1]))
        fault(self, client, args)

    monkeypatch.setattr(Server, "_fault", counting)
    k = Kernel(arch="aarch64", trace=True)
    source = write_c(tmp_path, "accesses", _accesses_program())
    exe = build([str(source)], cflags=["-march=armv8.1-a"], arch="aarch64")
    r = k.exec_c(str(exe))
    assert r.wait(60) == 0, r.stderr
    assert not [e for e in k.trace if e.call == "MemoryFault"]
    (mapped,) = [e.result for e in k.trace if e.call == "mmap"]
    n = len(ACCESSES)
    mine = [((a - mapped) // 8192, w) for a, w in asked if 0 <= a - mapped < 2 * n * 4096]
    assert [ACCESSES[i][0] for i, _ in mine] == [asm for asm, _ in ACCESSES]
    assert [(ACCESSES[i][0], w) for i, w in mine] == ACCESSES


HOLE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char here;
    unsigned long page = (unsigned long)&here & ~4095ul;   /* qemu's guest stack */
    if (argv[1][0] == 'f') {  /* a mapping of its own over the host's stack */
        char *p = mmap((void *)page, 4096, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANON | MAP_FIXED, NOFD, 0);
        printf("mapped %p\n", (void *)p);
        return 0;
    }
    /* a peer maps a page where the host's allocations grow; the first touch asks for it */
    unsigned long top = 0, lo, hi;
    FILE *f = fopen("/proc/self/maps", "r");
    while (fscanf(f, "%lx-%lx%*[^\n]\n", &lo, &hi) == 2)
        if (hi <= (1ul << 39) && hi > top)
            top = hi;
    fclose(f);
    int go[2];
    if (pipe(go) != 0) return 2;
    pid_t kid = fork();
    char c;
    if (kid == 0) {
        if (read(go[0], &c, 1) != 1) _exit(3);
        volatile char *q = (char *)((top + (1ul << 30)) & ~0xfffful);
        return q[0];
    }
    void *p = mmap_peer(kid, (void *)((top + (1ul << 30)) & ~0xfffful), 4096,
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON | MAP_FIXED, NOFD, 0);
    printf("peer mapped %p\n", p);
    fflush(stdout);
    if (write(go[1], "x", 1) != 1) return 4;
    int st;
    waitpid(kid, &st, 0);
    return 0;
}
"""


@pytest.mark.parametrize("how", ["fixed", "grant"])
def test_a_mapping_over_the_hosts_memory_ends_the_process_with_words(
    tmp_path: Path, how: str
) -> None:
    """Under qemu-user the host's stack and libraries lie inside QNX's user range: the
    client never maps the simulator's RAM over them (neither a mapping the program asked
    for, nor a page granted on a fault), it stops the process and says why."""
    k = Kernel(arch="aarch64", trace=True)
    status, out, err = run(k, write_c(tmp_path, "hole", HOLE), how)
    assert "where the host keeps its own memory" in err, err
    assert "run the program on a native host" in err
    if how == "fixed":
        assert status == 125 and "mapped" not in out
        assert "the simulator placed a mapping at" in err
    else:
        assert status == 0 and out.startswith("peer mapped 0x")
        assert "the simulator granted RAM at" in err
        (ev,) = [e for e in k.trace if e.call == "mmap_peer"]
        ((_, m),) = ev.added
        assert f"[{m.start:#x}, {m.start + 4096:#x})" in err


def test_cli_cc_and_exec_with_arch(tmp_path: Path) -> None:
    exe = tmp_path / "peer"
    made = cli("cc", "--arch", "aarch64", str(EXAMPLES / "peer_page.c"), "-o", str(exe))
    assert made.returncode == 0, made.stderr
    assert exe.read_bytes()[18:20] == (183).to_bytes(2, "little")  # ELF e_machine: AArch64
    ran = cli("exec", "--arch", "aarch64", "--trace", str(exe))
    assert ran.returncode == 0, ran.stderr
    assert "mmap_peer(2, 0, 4096" in ran.stdout


def test_without_the_emulator_another_arch_is_refused_with_the_variable_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QNXSIM_C_EMULATOR_AARCH64")
    true = shutil.which("true")
    assert true is not None
    with pytest.raises(ValueError, match="QNXSIM_C_EMULATOR_AARCH64=/usr/bin/qemu-aarch64"):
        Kernel(arch="aarch64").exec_c(true)
    ran = cli("exec", "--arch", "aarch64", true)
    assert ran.returncode == 2 and "QNXSIM_C_EMULATOR_AARCH64" in ran.stderr
    exe = build([str(EXAMPLES / "peer_page.c")], arch="aarch64")  # building needs none
    monkeypatch.setenv("QNXSIM_C_EMULATOR_AARCH64", "/nonexistent/qemu")
    with pytest.raises(ValueError, match="'/nonexistent/qemu', which is not an executable"):
        Kernel(arch="aarch64").exec_c(str(exe))


def test_no_core_file_is_left_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """qemu-user writes its own core files; the client sets RLIMIT_CORE to 0 first."""
    k = Kernel(arch="aarch64")
    monkeypatch.chdir(tmp_path)
    status, _, _ = run(k, EXAMPLES / "buggy_port.c")
    assert status == 128 + signal.SIGSEGV
    assert not [p for p in tmp_path.iterdir() if "core" in p.name]


def test_the_first_host_process_reaps_the_programs_orphans() -> None:
    """qemu-user refuses PR_SET_CHILD_SUBREAPER: the native process that becomes the
    emulator takes it, so when the first host process ends, none of the run is left (the
    example's child outlives its parent)."""
    k = Kernel(arch="aarch64")
    r = k.exec_c(str(build([str(EXAMPLES / "buggy_port.c")], arch="aarch64")))
    r.popen.wait(timeout=60)
    assert not session_alive(r.popen.pid), "an orphan of the program outlived its reaper"
    assert r.wait() == 128 + signal.SIGSEGV


@pytest.mark.parametrize("runs", [4, 300])
def test_an_emptied_mirror_spares_the_hosts_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: int
) -> None:
    """An eviction takes back the whole user range: under an emulator the client unmaps
    what it mapped there (from /proc/self/maps), never the emulator's holes."""
    import qnxsim.c.server as server

    monkeypatch.setattr(server, "MAX_MIRROR_RUNS", runs)
    k = Kernel(arch="aarch64")
    r = k.exec_c(str(build([str(write_c(tmp_path, "evict", EVICT))], arch="aarch64")))
    assert r.wait(60) == 0, r.stderr
    assert r.stdout == f"{3 * sum(i % 64 for i in range(512))}\n".encode()
    assert r.server.evictions >= 3


FORK_PRIVATE = r"""
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    p[0] = 'A';                     /* mirrored in the parent before the fork */
    pid_t kid = fork();
    if (kid == 0) {
        char seen = p[0];
        p[0] = 'B';                 /* the child's own copy: not the parent's frame */
        _exit(seen == 'A' ? 0 : 1);
    }
    int st;
    waitpid(kid, &st, 0);
    printf("%d %c\n", WEXITSTATUS(st), p[0]);
    return 0;
}
"""


def test_R_PROC_2_a_forked_child_drops_the_mirror_it_inherited(tmp_path: Path) -> None:
    k = Kernel(arch="aarch64")
    status, out, err = run(k, write_c(tmp_path, "forkpriv", FORK_PRIVATE))
    assert (status, out) == (0, "0 A\n"), err


def test_R_FAULT_2_a_shrunk_object_gives_the_programs_handler_bus_objerr(
    tmp_path: Path,
) -> None:
    k = Kernel(arch="aarch64", trace=True)
    status, _, err = run(k, write_c(tmp_path, "sigbus", SIGBUS_HANDLER))
    assert status == 7, err
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert fault.result == C.SIGBUS and "BUS_OBJERR" in fault.reason


@pytest.mark.parametrize("page_size", [16384, 65536])
def test_R_SYS_1_kernels_of_larger_aarch64_pages_run_the_examples(page_size: int) -> None:
    """aarch64 QNX may use 16 KiB or 64 KiB pages: the mirror maps whole kernel pages."""
    for example, expect in (("shm_server", 0), ("buggy_port", 128 + signal.SIGSEGV)):
        k = Kernel(arch="aarch64", page_size=page_size, trace=True)
        status, out, err = run(k, EXAMPLES / f"{example}.c")
        assert status == expect, out + err
        assert k.meminfo().allocated == 0
        (mapped,) = [e for e in k.trace if e.call == "mmap_peer"]
        ((_, m),) = mapped.added
        assert m.size == page_size  # one page of 4096 bytes asked, one kernel page mapped
