#!/usr/bin/env python3
"""What the C bridge costs: a C program's memory at host speed, its calls one round trip.

Rows (Linux x86_64/aarch64 hosts with cc):

* memset of 64 MiB from C after the first touch, in simulated memory (the RAM file mapped
  by the mirror) and in host anonymous memory (raw mmap); target: within 1.5x;
* first touch: the fault that maps each page (a round trip to the server), per page;
* an mmap + munmap pair of one page from C, and the same pair through the Python API in
  the same state (a 64 MiB mapping beside it), measured right after each program run;
  the median of their differences is the bridge's cost (target: <= 30 us);
* what that cost is made of: a call that does nothing in the simulator (getppid) from C,
  and the floor under it, a round trip between two host C processes over a Unix socket
  (no simulator, no Python), both on one CPU as the bridge runs a program and the thread
  serving it (``QNXSIM_PIN``), and on two, measured in the same run.

Usage: ``python benchmarks/c_bench.py [--rounds R] [--pairs N] [--runs K]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qnxsim import Kernel
from qnxsim import constants as C
from qnxsim.c import build, unsupported_reason

PROGRAM = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SIZE (64u << 20)

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double best_memset(char *p, int rounds) {
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t = now();
        memset(p, r + 1, SIZE);
        __asm__ volatile("" ::: "memory");
        t = now() - t;
        if (t < best) best = t;
    }
    return best;
}

int main(int argc, char **argv) {
    int rounds = atoi(argv[1]), pairs = atoi(argv[2]);
    char *sim = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    if (sim == MAP_FAILED) return 1;
    double t = now();
    for (unsigned i = 0; i < SIZE; i += 4096) sim[i] = 1;   /* first touch: one fault a run */
    double first = now() - t;
    /* host anonymous memory, by a raw system call (Linux's own flag values) */
    char *host = (char *)syscall(SYS_mmap, 0, SIZE, 3, 0x22, -1, 0);
    if (host == (char *)-1) return 2;
    memset(host, 0, SIZE);
    double hs = best_memset(host, rounds), ss = best_memset(sim, rounds);
    t = now();
    for (int i = 0; i < pairs; i++) {
        void *q = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
        munmap(q, 4096);
    }
    double pair = (now() - t) / pairs;
    t = now();
    for (int i = 0; i < pairs; i++)
        getppid();
    double empty = (now() - t) / pairs;
    printf("%f %f %f %f %f\n", first, hs, ss, pair, empty);
    return 0;
}
"""


PING = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    int n = atoi(argv[1]), sv[2];
    char b[64] = {0};
    struct timespec t0, t1;
    if (atoi(argv[2])) { /* both processes on this CPU, as the bridge runs a call */
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu(), &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) return 3;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
    pid_t kid = fork();
    if (kid == 0) {
        close(sv[0]);
        while (read(sv[1], b, sizeof b) > 0)
            if (write(sv[1], b, 1) != 1) _exit(1);
        _exit(0);
    }
    close(sv[1]);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++)
        if (write(sv[0], b, 1) != 1 || read(sv[0], b, sizeof b) <= 0) return 2;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(sv[0]);
    waitpid(kid, NULL, 0);
    printf("%f\n", ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / n);
    return 0;
}
"""


def host_round_trip(tmp: Path, n: int, one_cpu: bool) -> float:
    """A round trip between two host C processes over a Unix socket, in us; ``one_cpu``:
    both pinned to one CPU (as the bridge pins a program and its serving thread)."""
    src, exe = Path(tmp) / "ping.c", Path(tmp) / "ping"
    src.write_text(PING)
    subprocess.run(["cc", "-O2", "-o", str(exe), str(src)], check=True)
    out = subprocess.run(
        [str(exe), str(n), str(int(one_cpu))],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return float(out.stdout)


def python_pair(pairs: int) -> float:
    """The pair through the Python API, in the state the C program makes its pairs in: a
    process of a kernel like the program's whose 64 MiB mapping is still there (a new page
    goes next to it, so the pair merges and splits the records as the C one does)."""
    k = Kernel(ram=256 << 20)
    p = k.spawn()
    rw, flags = C.PROT_READ | C.PROT_WRITE, C.MAP_PRIVATE | C.MAP_ANON
    big = p.mmap(0, 64 << 20, rw, flags, C.NOFD, 0)
    p.write_memory(big, bytes(64 << 20))  # touched, as the program's is
    t = time.perf_counter()
    for _ in range(pairs):
        p.munmap(p.mmap(0, 4096, rw, flags, C.NOFD, 0), 4096)
    return (time.perf_counter() - t) / pairs * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="memsets per column (best kept)")
    ap.add_argument("--pairs", type=int, default=2000, help="mmap+munmap pairs")
    ap.add_argument("--runs", type=int, default=5, help="program runs (median kept)")
    a = ap.parse_args()
    reason = unsupported_reason()
    if reason is not None:
        print(f"c_bench: skipped, {reason}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "c_bench.c"
        src.write_text(PROGRAM)
        prog = build([src], cflags=["-O2"])
        floors = [
            statistics.median(host_round_trip(Path(tmp), a.pairs, one) for _ in range(a.runs))
            for one in (True, False)
        ]
    rows: list[list[float]] = []
    for _ in range(a.runs):  # each run of the program is followed by a Python pair run
        run = Kernel(ram=256 << 20).exec_c(str(prog), [str(a.rounds), str(a.pairs)])
        if run.wait(600) != 0:
            print("c_bench: the program failed", run.stderr, file=sys.stderr)
            return 1
        assert run.stdout is not None
        row = [float(x) for x in run.stdout.split()]
        py = python_pair(a.pairs)
        rows.append([*row, py, row[3] - py])
    first, host, sim, pair, empty, py, adds = (
        statistics.median(col) for col in zip(*rows, strict=True)
    )
    pages = (64 << 20) // 4096
    print(f"memset 64 MiB, host anonymous memory:   {host / 1000:9.2f} ms")
    print(
        f"memset 64 MiB, simulated (after touch): {sim / 1000:9.2f} ms  "
        f"ratio {sim / host:.2f} (target <= 1.5)"
    )
    print(f"first touch, per 4 KiB page:            {first / pages:9.2f} us")
    print(f"mmap + munmap from C:                   {pair:9.2f} us")
    print(f"mmap + munmap through the Python API:   {py:9.2f} us")
    print(f"the bridge adds:                        {adds:9.2f} us  (target <= 30)")
    print(f"  an empty call (getppid) from C:       {empty:9.2f} us")
    print(f"  host C to C round trip, one CPU:      {floors[0]:9.2f} us  (the floor)")
    print(f"  host C to C round trip, two CPUs:     {floors[1]:9.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
