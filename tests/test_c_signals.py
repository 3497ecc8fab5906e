"""A C program's own SIGSEGV and SIGBUS handlers: the mirror keeps its page faults, and the
faults that are the program's (R-FAULT-1, R-FAULT-2) reach the program's handler with
QNX's code and address, as on QNX; the process lives on unless the handler ends it."""

from __future__ import annotations

import signal
from pathlib import Path

from c_support import needs_c, run, write_c

from qnxsim import Kernel
from qnxsim import constants as C

pytestmark = needs_c


CATCHER = r"""
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
static sigjmp_buf env;
static void *volatile where;
static volatile int code;
static void on_segv(int sig, siginfo_t *si, void *uc) {
    (void)sig;
    (void)uc;
    where = si->si_addr;
    code = si->si_code;
    siglongjmp(env, 1);
}
int main(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGSEGV, NULL, &old);
    if (old.sa_sigaction != on_segv) return 10;
    /* first touches of a new mapping are the mirror's page faults, not the program's */
    char *p = mmap(0, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    for (int i = 0; i < 8; i++) p[i * 4096] = (char)i;
    munmap(p + 4096, 4096);
    if (sigsetjmp(env, 1) == 0) { p[4096] = 1; return 11; }
    if (where != p + 4096 || code != SEGV_MAPERR) return 12;
    mprotect(p, 4096, PROT_READ);
    if (sigsetjmp(env, 1) == 0) { p[0] = 1; return 13; }
    if (where != p || code != SEGV_ACCERR) return 14;
    if (sigsetjmp(env, 1) == 0) { *(volatile int *)0 = 1; return 15; }  /* the host's own */
    if (where != NULL) return 16;
    int sum = 0;
    for (int i = 2; i < 8; i++) sum += p[i * 4096];
    printf("caught 3, sum %d\n", sum);
    return 0;
}
"""


def test_R_FAULT_1_the_programs_sigsegv_handler_gets_its_faults_and_the_mirror_its_own(
    tmp_path: Path,
) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "catcher", CATCHER))
    assert (status, out) == (0, "caught 3, sum 27\n")
    faults = [e for e in k.trace if e.call == "MemoryFault"]
    assert [(e.result, e.args[1]) for e in faults] == [(C.SIGSEGV, "w"), (C.SIGSEGV, "w")]
    assert "SEGV_MAPERR" in faults[0].reason and "SEGV_ACCERR" in faults[1].reason
    assert all("handler" in e.reason for e in faults)


SIGBUS_HANDLER = r"""
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
static volatile char *page;
static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    _exit(sig == SIGBUS && si->si_code == BUS_OBJERR && si->si_addr == (void *)page ? 7 : 8);
}
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_bus;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGBUS, &sa, NULL);
    int fd = shm_open("/short", O_RDWR | O_CREAT, 0600);
    ftruncate(fd, 8192);
    volatile char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    page = p + 4096;
    p[4096] = 1;
    ftruncate(fd, 4096);
    return p[4096];
}
"""


def test_R_FAULT_2_the_programs_sigbus_handler_gets_bus_objerr(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, _ = run(k, write_c(tmp_path, "bus", SIGBUS_HANDLER))
    assert status == 7  # the handler's _exit, not death by SIGBUS
    (fault,) = [e for e in k.trace if e.call == "MemoryFault"]
    assert fault.result == C.SIGBUS and "BUS_OBJERR" in fault.reason


RESETHAND = r"""
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
static volatile int calls;
static void once(int sig) { (void)sig; calls++; printf("handled %d\n", calls); fflush(stdout); }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = once;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    char *p = mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANON, NOFD, 0);
    p[0] = 1;          /* handled once, then the store runs again: death by SIGSEGV */
    return 3;
}
"""


def test_R_FAULT_1_a_handler_that_returns_runs_the_access_again(tmp_path: Path) -> None:
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "reset", RESETHAND))
    assert (status, out) == (128 + signal.SIGSEGV, "handled 1\n")
    faults = [e for e in k.trace if e.call == "MemoryFault"]
    assert len(faults) == 2 and "handler" in faults[0].reason
    assert "handler" not in faults[1].reason


SIGNAL_FN = r"""
#include <signal.h>
#include <unistd.h>
static void bye(int sig) { _exit(sig == SIGSEGV ? 5 : 6); }
int main(void) {
    if (signal(SIGSEGV, bye) != SIG_DFL) return 10;
    if (signal(SIGSEGV, bye) != bye) return 11;
    return *(volatile int *)(void *)0x1000;   /* simulated range, nothing mapped */
}
"""


def test_R_FAULT_1_signal_installs_a_handler_too(tmp_path: Path) -> None:
    k = Kernel()
    status, _ = run(k, write_c(tmp_path, "signal", SIGNAL_FN))
    assert status == 5


BUS_RESETHAND = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
static volatile int calls;
static void once(int sig) { (void)sig; calls++; printf("handled %d\n", calls); fflush(stdout); }
int main(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = once;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGBUS, &sa, NULL);
    int fd = shm_open("/short", O_RDWR | O_CREAT, 0600);
    ftruncate(fd, 8192);
    volatile char *p = mmap(0, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    p[4096] = 1;
    ftruncate(fd, 4096);
    return p[4096];    /* handled once, then the load runs again: death by SIGBUS */
}
"""


def test_R_FAULT_2_a_one_shot_sigbus_handler_is_gone_after_it_ran(tmp_path: Path) -> None:
    """SA_RESETHAND on SIGBUS: the second fault is no longer the program's to handle, so
    the simulator kills the process by SIGBUS instead of delivering it again."""
    k = Kernel(trace=True)
    status, out = run(k, write_c(tmp_path, "busreset", BUS_RESETHAND))
    assert (status, out) == (128 + signal.SIGBUS, "handled 1\n")
    faults = [e for e in k.trace if e.call == "MemoryFault"]
    assert len(faults) == 2 and "handler" in faults[0].reason
    assert "handler" not in faults[1].reason and faults[1].result == C.SIGBUS


SHOOTDOWN_SIGNAL = r"""
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
int main(void) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    int rc = sigaction(SIGRTMIN + 4, &sa, NULL);
    printf("sigaction %d %s\n", rc, errno == EINVAL ? "EINVAL" : "other");
    printf("signal %s\n", signal(SIGRTMIN + 4, SIG_IGN) == SIG_ERR ? "SIG_ERR" : "taken");
    rc = sigaction(SIGRTMIN + 4, NULL, &old);
    printf("query %d %s\n", rc, old.sa_handler == SIG_DFL ? "default" : "the client's");
    return 0;
}
"""


def test_the_shootdown_signal_stays_the_clients(tmp_path: Path) -> None:
    """A program cannot take the mirror's shootdown signal (it would lose its shootdowns
    and be killed for not acknowledging them): setting an action is EINVAL, asking works."""
    status, out = run(Kernel(), write_c(tmp_path, "sdsig", SHOOTDOWN_SIGNAL))
    assert status == 0
    assert out.splitlines() == ["sigaction -1 EINVAL", "signal SIG_ERR", "query 0 the client's"]
