"""C programs as simulated processes: examples, memory through the mirror, faults, fork,
wait, exec, errno, fds, the CLI (``qnxsim cc`` / ``qnxsim exec``)."""

from __future__ import annotations

import errno as host_errno
import os
import signal
from pathlib import Path

import pytest
from c_support import EXAMPLES, build, cli, needs_c, run, write_c

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim import errno as qerrno

pytestmark = needs_c


def test_example_peer_page_maps_into_parent_and_back() -> None:
    k = Kernel(trace=True)
    status, out = run(k, EXAMPLES / "peer_page.c")
    assert status == 0, out
    peer = (
        k.trace.calls("mmap_peer")
        if hasattr(k.trace, "calls")
        else [e for e in k.trace if e.call == "mmap_peer"]
    )
    (ev,) = peer
    parent = ev.args[0]
    assert ev.ok and [p for p, _ in ev.added] == [parent]
    (gone,) = [e for e in k.trace if e.call == "munmap_peer"]
    assert gone.ok and [p for p, _ in gone.removed] == [parent]
    assert "exited with 0" in out
    assert k.meminfo().allocated == 0 and [p.pid for p in k.processes()] == [1]


def test_example_shm_server_client_reads_server_bytes() -> None:
    k = Kernel(trace=True)
    status, out = run(k, EXAMPLES / "shm_server.c")
    assert status == 0, out
    assert '"hello from the server"' in out
    (ev,) = [e for e in k.trace if e.call == "mmap_peer"]
    ((_, rec),) = ev.added
    assert rec.prot == C.PROT_READ


def test_R_FAULT_2_example_buggy_port_dies_by_segv_maperr() -> None:
    k = Kernel(trace=True)
    status, out = run(k, EXAMPLES / "buggy_port.c")
    assert status == 128 + signal.SIGSEGV
    assert "not reached" not in out
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert fault.result == C.SIGSEGV and "SEGV_MAPERR" in fault.reason
    assert k.meminfo().allocated == 0


MEMORY = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    int fd = shm_open("/shared", O_RDWR | O_CREAT, 0644);
    if (fd == -1 || ftruncate(fd, 2 * 4096) == -1) return 1;
    char *p = mmap(0, 2 * 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 2;
    printf("python wrote: %s\n", p + 4096);
    strcpy(p, "written by C");
    char *q = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096);
    if (q == MAP_FAILED) return 3;
    printf("private reads: %s\n", q);
    q[0] = 'X';                      /* R-OBJ-4: a private copy on the first write */
    printf("private now: %s, object: %s\n", q, p + 4096);
    return 0;
}
"""


def test_R_OBJ_4_memory_is_the_simulators_ram_both_ways(tmp_path: Path) -> None:
    k = Kernel()
    py = k.spawn(uid=0, image=False)
    fd = py.shm_open("/shared", C.O_RDWR | C.O_CREAT, 0o644)
    py.ftruncate(fd, 2 * 4096)
    a = py.mmap(0, 2 * 4096, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, fd, 0)
    py.write_memory(a + 4096, b"from python\0")
    status, out = run(k, write_c(tmp_path, "memory", MEMORY))
    assert status == 0, out
    assert "python wrote: from python" in out
    assert "private reads: from python" in out
    assert "private now: Xrom python, object: from python" in out
    assert py.read_memory(a, 12) == b"written by C"


PROTECT = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
int main(int argc, char **argv) {
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    p[0] = 1;
    if (mprotect(p, 4096, PROT_READ) == -1) return 1;
    printf("read %d\n", p[0]);
    fflush(stdout);
    if (argv[1][0] == 'w') p[0] = 2;        /* SEGV_ACCERR */
    if (argv[1][0] == 'u') { munmap(p, 4096); printf("%d\n", p[0]); }  /* SEGV_MAPERR */
    return 0;
}
"""


@pytest.mark.parametrize(("how", "code"), [("w", C.SEGV_ACCERR), ("u", C.SEGV_MAPERR)])
def test_R_FAULT_1_mirror_is_invalidated_by_mprotect_and_munmap(
    tmp_path: Path, how: str, code: int
) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "protect", PROTECT), how)
    assert out.startswith("read 1")
    assert status == 128 + signal.SIGSEGV
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert fault.reason.startswith("SIGSEGV/" + {1: "SEGV_MAPERR", 2: "SEGV_ACCERR"}[code])


SIGBUS_PROG = r"""
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    int fd = shm_open("/short", O_RDWR | O_CREAT, 0600);
    ftruncate(fd, 8192);
    volatile char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    p[4096] = 1;
    ftruncate(fd, 4096);         /* the second page is past the end of the object now */
    return p[4096];
}
"""


def test_R_FAULT_2_shrunk_object_gives_sigbus_objerr(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, _ = run(k, write_c(tmp_path, "sigbus", SIGBUS_PROG))
    assert status == 128 + signal.SIGBUS  # the host's SIGBUS number (QNX's is 10)
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert fault.result == C.SIGBUS and "BUS_OBJERR" in fault.reason


SHOOTDOWN = r"""
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    volatile int *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, NOFD, 0);
    p[0] = 7;                                    /* mirrored in this process now */
    pid_t kid = fork();
    if (kid == 0) {
        if (p[0] != 7) _exit(3);                 /* the child sees the shared page */
        p[0] = 8;
        _exit(munmap_peer(getppid(), (void *)p, 4096) == 0 ? 0 : 4);
    }
    int st;
    waitpid(kid, &st, 0);
    printf("child %d\n", WEXITSTATUS(st));
    fflush(stdout);
    return p[0];                                 /* gone from this process: SIGSEGV */
}
"""


def test_R_PEER_munmap_peer_shoots_the_page_down_in_the_target(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "shootdown", SHOOTDOWN))
    assert out == "child 0\n"
    assert status == 128 + signal.SIGSEGV
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert "SEGV_MAPERR" in fault.reason


ERRNO = r"""
#include <errno.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/procmgr.h>
#include <unistd.h>
int main(void) {
    errno = 0;
    void *p = mmap(0, 0, PROT_READ, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    printf("%d %d\n", p == MAP_FAILED, errno);
    p = mmap_peer(99999, 0, 4096, PROT_READ, MAP_SHARED | MAP_ANON, NOFD, 0);
    printf("%d %d\n", p == MAP_FAILED, errno);
    printf("%d %d\n", munmap((void *)0x1001, 4096), errno);
    unsigned allow = PROCMGR_ADN_NONROOT | PROCMGR_AOP_ALLOW | PROCMGR_AID_MEM_PEER;
    unsigned rest = PROCMGR_ADN_NONROOT | PROCMGR_AOP_DENY | PROCMGR_AID_EOL;
    printf("%d\n", procmgr_ability(0, allow, rest));
    printf("%d\n", procmgr_ability(0, PROCMGR_ADN_NONROOT | PROCMGR_AOP_ALLOW | PROCMGR_AOP_DENY
                                   | PROCMGR_AID_EOL));
    return 0;
}
"""


def test_R_CALL_1_errno_is_translated_by_name_to_the_hosts(tmp_path: Path) -> None:
    k = Kernel()
    status, out = run(k, write_c(tmp_path, "errno", ERRNO))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == f"1 {host_errno.EINVAL}"
    assert lines[1] == f"1 {host_errno.ESRCH}"
    py = Kernel().spawn(image=False).libc  # the same call through the Python facade
    result = py.munmap(0x1001, 4096)
    if result == -1:
        assert lines[2] == f"-1 {getattr(host_errno, qerrno.errorcode[py.errno])}"
    else:  # success leaves errno as the last failure set it
        assert lines[2] == f"{result} {host_errno.ESRCH}"
    assert lines[3] == "0"
    assert lines[4] == str(host_errno.EINVAL)  # R-ABLE-4: both allows and denies


FILES = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    int fd = shm_open("/f", O_RDWR | O_CREAT | O_EXCL, 0640);
    int again = shm_open("/f", O_RDWR | O_CREAT | O_EXCL, 0640);
    printf("excl %d\n", again);
    printf("write %zd\n", write(fd, "abcdef", 6));
    printf("lseek %ld\n", (long)lseek(fd, 1, SEEK_SET));
    char b[8] = {0};
    printf("read %zd %s\n", read(fd, b, 3), b);
    struct stat st;
    fstat(fd, &st);
    printf("size %ld mode %o\n", (long)st.st_size, (unsigned)(st.st_mode & 0777));
    int d = dup(fd);
    printf("pread %zd\n", pread(d, b, 2, 4));
    close(fd);
    char *p = mmap(0, 4096, PROT_READ, MAP_SHARED, d, 0);
    printf("mapped %s\n", p);
    FILE *host = fopen("/dev/null", "w");     /* host files keep working */
    printf("host %d\n", host != NULL && fputs("x", host) >= 0);
    printf("bad %d\n", close(12345) == -1);
    return 0;
}
"""


def test_R_FS_2_simulated_fds_beside_host_fds(tmp_path: Path) -> None:
    k = Kernel()
    status, out = run(k, write_c(tmp_path, "files", FILES))
    assert status == 0, out
    assert out.splitlines() == [
        "excl -1",
        "write 6",
        "lseek 1",
        "read 3 bcd",
        "size 6 mode 640",
        "pread 2",
        "mapped abcdef",
        "host 1",
        "bad 1",
    ]


PROCS = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    p[0] = 5;
    pid_t kid = fork();
    if (kid == 0) {
        p[0] = 6;                      /* R-PROC-2: the child's private copy */
        printf("child pid %d ppid %d sees %d\n", getpid(), getppid(), p[0]);
        fflush(stdout);
        exit(p[0]);
    }
    int st;
    pid_t got = wait(&st);
    printf("parent %d reaped %d status %d, sees %d\n", getpid(), got, WEXITSTATUS(st), p[0]);
    pid_t orphan = fork();             /* never waited for: reaped anyway */
    if (orphan == 0) { usleep(20000); _exit(0); }
    printf("again %d\n", waitpid(kid, &st, 0));
    return 0;
}
"""


def test_R_PROC_2_fork_wait_exit_and_no_host_process_left(tmp_path: Path) -> None:
    k = Kernel()
    status, out = run(k, write_c(tmp_path, "procs", PROCS))
    assert status == 0, out
    assert "child pid 3 ppid 2 sees 6" in out
    assert "parent 2 reaped 3 status 6, sees 5" in out
    assert "again -1" in out
    assert k.meminfo().allocated == 0


EXEC = r"""
#include <stdio.h>
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "second") == 0) {
        printf("second image, pid %d\n", getpid());
        return 4;
    }
    printf("first image, pid %d\n", getpid());
    fflush(stdout);
    execl(argv[0], argv[0], "second", (char *)0);
    return 1;
}
"""


def test_R_PROC_3_exec_keeps_the_pid(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "exec", EXEC))
    assert out.splitlines() == ["first image, pid 2", "second image, pid 2"]
    assert status == 4
    assert [e.call for e in k.trace if e.call == "exec"] == ["exec"]


def test_cli_cc_and_exec_trace(tmp_path: Path) -> None:
    prog = tmp_path / "peer_page"
    built = cli("cc", "-O1", str(EXAMPLES / "peer_page.c"), "-o", str(prog))
    assert built.returncode == 0, built.stderr
    done = cli("exec", "--trace", "--pidin", str(prog))
    assert done.returncode == 0, done.stderr
    assert "called mmap_peer(2, 0, 4096, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANON, NOFD, 0)" in (
        done.stdout
    )
    assert "called munmap_peer(2, " in done.stdout
    buggy = tmp_path / "buggy"
    assert cli("cc", str(EXAMPLES / "buggy_port.c"), "-o", str(buggy)).returncode == 0
    assert cli("exec", str(buggy)).returncode == 128 + signal.SIGSEGV


def test_cli_exec_uid_and_errors(tmp_path: Path) -> None:
    text = 'int main(void) { printf("%d %d\\n", getuid(), getgid()); return 0; }\n'
    src = write_c(tmp_path, "ids", "#include <stdio.h>\n#include <unistd.h>\n" + text)
    prog = tmp_path / "ids"
    assert cli("cc", str(src), "-o", str(prog)).returncode == 0
    done = cli("exec", "--uid", "1000", "--gid", "100", str(prog))
    assert done.stdout == "1000 100\n"
    missing = cli("exec", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no executable program" in missing.stderr
    bad = cli("cc", str(src), "-o", str(prog), "--qnx-version", "9.9")
    assert bad.returncode == 2 and "9.9" in bad.stderr


def test_program_run_outside_qnxsim_says_so(tmp_path: Path) -> None:
    import subprocess

    prog = build(EXAMPLES / "peer_page.c")
    env = {k: v for k, v in os.environ.items() if not k.startswith("QNXSIM_")}
    done = subprocess.run([str(prog)], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 125 and "qnxsim exec" in done.stderr


def test_the_last_run_stops_the_kernels_server(tmp_path: Path) -> None:
    k = Kernel()
    prog = str(build(EXAMPLES / "peer_page.c"))
    first, second = k.exec_c(prog), k.exec_c(prog)
    assert first.server is second.server
    assert first.wait(30) == 0 and not first.server._closed  # the second still runs
    assert second.wait(30) == 0 and second.server._closed
    third = k.exec_c(prog)  # a new server for the same kernel
    assert third.wait(30) == 0 and third.server is not first.server
    assert [p.pid for p in k.processes()] == [1]


def test_kernel_arch_must_be_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    other = "aarch64" if os.uname().machine == "x86_64" else "x86_64"
    monkeypatch.delenv(f"QNXSIM_C_EMULATOR_{other.upper()}", raising=False)  # no emulator
    k = Kernel(arch=other)
    with pytest.raises(ValueError, match="host"):
        k.exec_c(str(build(EXAMPLES / "peer_page.c")))


def test_cli_serve_hands_out_pids_to_programs_started_by_hand() -> None:
    import subprocess
    import sys

    prog = build(EXAMPLES / "peer_page.c")
    env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent.parent))
    serve = subprocess.Popen(
        [sys.executable, "-m", "qnxsim", "serve", "--processes", "1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert serve.stdout is not None
        sock = serve.stdout.readline().split("=", 1)[1].strip()
        token = serve.stdout.readline().split()[0].split("=", 1)[1]
        assert serve.stdout.readline().startswith("serving")
        env = dict(os.environ, QNXSIM_SOCK=sock, QNXSIM_TOKEN=token, QNXSIM_TOP="1")
        done = subprocess.run([str(prog)], env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and "exited with 0" in done.stdout
        again = subprocess.run([str(prog)], env=env, capture_output=True, text=True, timeout=30)
        assert again.returncode == 125 and "token" in again.stderr  # one-time tokens
    finally:
        serve.send_signal(signal.SIGINT)
        out, _ = serve.communicate(timeout=30)
    assert "called mmap_peer(2, 0, 4096" in out


EVICT = r"""
#include <stdio.h>
#include <sys/mman.h>
int main(void) {
    char *p = mmap(0, 512 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    for (int i = 0; i < 512; i++) p[i * 4096] = (char)(i % 64);
    for (int i = 0; i < 512; i += 2) mprotect(p + i * 4096, 4096, PROT_READ); /* 512 runs */
    int sum = 0;
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 512; i++) sum += p[i * 4096];
    printf("%d\n", sum);
    return 0;
}
"""


@pytest.mark.parametrize("runs", [4, 300])
def test_mirror_is_emptied_before_the_hosts_map_count_is_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: int
) -> None:
    """300 runs: the eviction's reply must not list every run (it would not fit the
    client's fault buffer, and the program would die)."""
    import qnxsim.c.server as server

    monkeypatch.setattr(server, "MAX_MIRROR_RUNS", runs)
    r = Kernel().exec_c(str(build(write_c(tmp_path, "evict", EVICT))))
    assert r.wait(60) == 0, r.stderr
    assert r.stdout == f"{3 * sum(i % 64 for i in range(512))}\n".encode()
    assert r.server.evictions >= 3


def test_kernel_page_size_must_be_a_multiple_of_the_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A host of 16 KiB pages (as Apple silicon and some aarch64 Linux kernels have) cannot
    mirror a kernel of 4 KiB pages; on a 4 KiB host the larger host page is pretended."""
    import mmap

    import qnxsim.c.run as run

    host_page = max(mmap.PAGESIZE, 16384)
    monkeypatch.setattr(run.mmap, "PAGESIZE", host_page)
    k = Kernel(arch=os.uname().machine, page_size=4096)
    with pytest.raises(ValueError, match=f"pages of {host_page}: use a multiple of it"):
        k.exec_c(str(build(EXAMPLES / "peer_page.c")))


CLOSER = r"""
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
    for (int fd = 3; fd < 4096; fd++) close(fd);   /* a daemon's habit */
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    p[0] = 'k';
    printf("%c\n", p[0]);
    return 0;
}
"""


def test_closing_every_fd_leaves_the_bridge_working(tmp_path: Path) -> None:
    status, out = run(Kernel(), write_c(tmp_path, "closer", CLOSER))
    assert (status, out) == (0, "k\n")


PHYS = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
int main(void) {
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, NOFD, 0);
    strcpy(p, "frame");
    off_t paddr;
    size_t contig;
    if (mem_offset(p, NOFD, 4096, &paddr, &contig) == -1) return 1;
    char *alias = mmap_device_memory(0, 4096, PROT_READ | PROT_WRITE, 0, (uint64_t)paddr);
    if (alias == MAP_FAILED) return 2;
    alias[0] = 'F';                               /* one frame, two mappings */
    printf("%s %s %zu\n", p, alias, contig);
    int fd = posix_typed_mem_open("/memory/isa", O_RDWR, POSIX_TYPED_MEM_ALLOCATE);
    struct posix_typed_mem_info info;
    if (fd == -1 || posix_typed_mem_get_info(fd, &info) != 0) return 3;
    char *t = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (t == MAP_FAILED) return 4;
    t[0] = 1;
    off_t toff;
    size_t tlen;
    int tfd;
    if (posix_mem_offset(t, 4096, &toff, &tlen, &tfd) != 0) return 5;
    printf("%d %d\n", toff < 16 << 20, tfd == fd);
    return 0;
}
"""


def test_R_MOFF_1_dev_mem_alias_and_typed_memory_from_c(tmp_path: Path) -> None:
    k = Kernel()
    status, out = run(k, write_c(tmp_path, "phys", PHYS))
    assert status == 0, out
    first, second = out.splitlines()
    assert first == "Frame Frame 4096"
    py = k.spawn(image=False)  # the Python API says the same of the same calls
    fd = py.posix_typed_mem_open("/memory/isa", C.O_RDWR, C.POSIX_TYPED_MEM_ALLOCATE)
    t = py.mmap(0, 4096, C.PROT_READ | C.PROT_WRITE, C.MAP_SHARED, fd, 0)
    py.write_memory(t, b"\1")
    off, _, named = py.posix_mem_offset(t, 4096)
    assert second == f"{int(off < 16 << 20)} {int(named == fd)}" == "1 1"


CHILD_FAULT = r"""
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    volatile char *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    pid_t kid = fork();
    if (kid == 0) {
        p[0] = 1;                                   /* read-only: SIGSEGV/SEGV_ACCERR */
        _exit(0);
    }
    int st;
    waitpid(kid, &st, 0);
    printf("%d %d\n", WIFSIGNALED(st), WIFSIGNALED(st) ? WTERMSIG(st) : -1);
    return 0;
}
"""


def test_R_PROC_4_parent_sees_a_child_killed_by_its_fault(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "child_fault", CHILD_FAULT))
    assert status == 0
    assert out == f"1 {signal.SIGSEGV}\n"
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert fault.pid == 3 and "SEGV_ACCERR" in fault.reason


HANDLES = r"""
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    int fd = shm_open(SHM_ANON, O_RDWR | O_CREAT, 0600);
    if (fd == -1 || ftruncate(fd, 4096) == -1) return 1;
    char *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    strcpy(p, "through a handle");
    int link[2];
    pipe(link);
    pid_t kid = fork();
    if (kid == 0) {
        shm_handle_t h;
        if (read(link[0], &h, sizeof h) != (ssize_t)sizeof h) _exit(2);
        int hfd = shm_open_handle(h, O_RDONLY);
        if (hfd == -1) _exit(3);
        const char *q = mmap(0, 4096, PROT_READ, MAP_SHARED, hfd, 0);
        printf("child reads \"%s\"\n", q);
        fflush(stdout);
        _exit(shm_open_handle(h, O_RDONLY) == -1 ? 0 : 4);   /* a handle is used up */
    }
    shm_handle_t h;
    if (shm_create_handle(fd, kid, O_RDONLY, &h, 0) == -1) return 5;
    write(link[1], &h, sizeof h);
    int st;
    waitpid(kid, &st, 0);
    return WEXITSTATUS(st);
}
"""


def test_R_HANDLE_1_shm_handles_from_c(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "handles", HANDLES))
    assert (status, out) == (0, 'child reads "through a handle"\n')
    assert [e.ok for e in k.trace if e.call == "shm_open_handle"] == [True, False]


def test_exec_c_with_a_python_parent_that_reaps_it() -> None:
    k = Kernel()
    parent = k.spawn(uid=1000, gid=100)
    run = k.exec_c(str(build(EXAMPLES / "peer_page.c")), parent=parent, uid=1000, gid=100)
    assert k.process(run.pid).ppid == parent.pid
    assert run.wait(30) == 0
    assert parent.waitpid(run.pid) == (run.pid, 0)
    k.check_invariants()


def test_import_qnxsim_does_not_load_the_bridge() -> None:
    import subprocess
    import sys

    code = (
        "import sys, qnxsim; print(any(m.split('.')[:2] == ['qnxsim', 'c'] for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


HOST_SIGNAL = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    pid_t kid = fork();
    if (kid == 0) raise(SIGTERM);              /* a host signal the simulator never saw */
    int st;
    waitpid(kid, &st, 0);
    printf("%d %d\n", WIFSIGNALED(st), WTERMSIG(st));
    return 0;
}
"""


def test_a_child_killed_by_a_host_signal_reports_that_signal(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "host_signal", HOST_SIGNAL))
    assert (status, out) == (0, f"1 {signal.SIGTERM}\n")
    assert [e.call for e in k.trace if e.pid == 3][-1] == "kill"  # the simulator: killed


BIG_IO = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#define N 200000
int main(void) {
    static char out[N], in[N];
    for (int i = 0; i < N; i++) out[i] = (char)(i * 7);
    int fd = shm_open("/big", O_RDWR | O_CREAT, 0600);
    if (fd < 0 || write(fd, out, N) != N) return 2;          /* one request of 200 KB */
    if (lseek(fd, 0, SEEK_SET) != 0 || read(fd, in, N) != N) return 3;
    printf("%s\n", memcmp(in, out, N) == 0 ? "same" : "different");
    return 0;
}
"""


def test_R_FS_2_a_request_larger_than_the_servers_buffer_goes_through(tmp_path: Path) -> None:
    k = Kernel()
    status, out = run(k, write_c(tmp_path, "bigio", BIG_IO))
    assert (status, out) == (0, "same\n")


AFFINITY = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>
static void show(const char *who) {
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) != 0) return;
    printf("%s", who);
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &s)) printf(" %d", c);
    printf("\n");
    fflush(stdout);
}
int main(void) {
    show("parent");
    pid_t kid = fork();
    if (kid == 0) {
        show("child");
        return 0;
    }
    int st;
    waitpid(kid, &st, 0);
    return 0;
}
"""


def _cpus(out: str, who: str) -> set[int]:
    line = next(x for x in out.splitlines() if x.startswith(who + " "))
    return {int(c) for c in line.split()[1:]}


def test_a_program_and_its_serving_thread_share_one_cpu(tmp_path: Path) -> None:
    """Each connection runs on one CPU with the thread serving it (a round trip is then a
    switch, not a cross-CPU wake-up); connections take the CPUs in turn, so a forked child
    runs on another CPU than its parent when there is one."""
    allowed = os.sched_getaffinity(0)
    status, out = run(Kernel(), write_c(tmp_path, "affinity", AFFINITY))
    assert status == 0, out
    parent, child = _cpus(out, "parent"), _cpus(out, "child")
    assert len(parent) == 1 and len(child) == 1 and parent | child <= allowed
    assert (parent != child) == (len(allowed) > 1)


def test_QNXSIM_PIN_0_leaves_cpu_placement_to_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QNXSIM_PIN", "0")
    status, out = run(Kernel(), write_c(tmp_path, "affinity", AFFINITY))
    assert status == 0, out
    assert _cpus(out, "parent") == _cpus(out, "child") == os.sched_getaffinity(0)


def test_colocate_pins_the_host_process_and_only_the_serving_thread() -> None:
    import subprocess
    import threading

    from qnxsim.c.server import Client, Server

    k = Kernel()
    srv = Server(k)
    host = subprocess.Popen(["sleep", "30"])
    try:
        client = Client(srv, k.spawn(), None, host.pid)  # type: ignore[arg-type]
        seen: list[set[int]] = []
        t = threading.Thread(
            target=lambda: (srv._colocate(client, None), seen.append(os.sched_getaffinity(0)))
        )
        t.start()
        t.join()
        assert client.cpu is not None
        assert seen == [{client.cpu}]
        assert os.sched_getaffinity(host.pid) == {client.cpu}
        assert client.cpus == os.sched_getaffinity(0)  # this thread was left alone
    finally:
        host.kill()
        host.wait()
        srv.close()


def test_cli_cc_c_for_another_arch_needs_its_cross_compiler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``qnxsim cc -c --arch A`` never falls back to the host's cc (it would build a host
    object against A's headers)."""
    import sys

    from qnxsim.c import cli as c_cli

    c_build = sys.modules["qnxsim.c.build"]  # the module (qnxsim.c.build is also a function)

    other = "aarch64" if c_build.host_arch() == "x86_64" else "x86_64"
    monkeypatch.setattr(c_build, "find_cc", lambda cc=None, arch=None: None)
    src = write_c(tmp_path, "part", "int part(void) { return 1; }\n")
    obj = tmp_path / "part.o"
    assert c_cli.cc(["-c", str(src), "--arch", other, "-o", str(obj)]) == 2
    assert f"no C compiler for {other}" in capsys.readouterr().err
    assert not obj.exists()


def test_the_emulators_library_prefix_comes_from_the_programs_environment() -> None:
    from qnxsim.c.build import emulator_env

    assert emulator_env("aarch64", {}) == {
        "QNXSIM_EMULATED": "1",
        "QEMU_LD_PREFIX": "/usr/aarch64-linux-gnu",
    }
    assert emulator_env("aarch64", {"QEMU_LD_PREFIX": "/opt/arm"})["QEMU_LD_PREFIX"] == "/opt/arm"
