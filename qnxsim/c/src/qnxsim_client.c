/* qnxsim client library: runs a C program as a simulated QNX process.
 *
 * Linked into the program by `qnxsim cc`.  It defines the simulated calls under their own
 * names (link-time interposition: the program's calls resolve here, the host libc's own
 * internal calls do not), sends each one to the kernel server over a Unix socket, and
 * keeps the host's view of the process's memory in step with the simulated one:
 *
 * - the simulated user range is reserved PROT_NONE at start; a first access faults, the
 *   SIGSEGV handler asks the server, which either grants frames (the shared RAM file is
 *   mapped there and the access retried) or decides a QNX fault (the process dies by it);
 * - the server invalidates what a call takes away: in the reply for the caller, and by a
 *   signal plus acknowledgement on a second socket (a shootdown) for other processes.
 *
 * Host operations it needs itself go through raw system calls (syscall(2)).
 * C99 with POSIX/GNU extensions; no dependencies beyond the host libc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <ucontext.h>
#include <unistd.h>

#include "qnxsim_tables.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

#define QX_BUFSZ ((1u << 20) + 65536u)
#define QX_MAXIO (1u << 20)
#define QX_MAXFD 4096
#define QX_MAXKIDS 1024
#define QX_MAXARGS 512
#define QX_BADFD 0x7ffffff0LL /* a host fd that is not simulated: EBADF in the simulator */
#define QX_NOT_SIMULATED (-2) /* open(): the path is the host's */
#define QX_DIE (-1)           /* fault reply: the process dies by a QNX signal */
#define QX_DELIVER (-3)       /* fault reply: the program's handler takes the QNX signal */
#define QX_PRIVATE_FD 1000    /* the library's own fds live at or above this number */

struct posix_typed_mem_info {
    size_t posix_tmi_length;
};

/* -- state ------------------------------------------------------------------------------ */

static int qx_sock = -1, qx_sd = -1, qx_ram = -1, qx_sdsig = 0;
static long long qx_pid = -1;
static uintptr_t qx_user_start, qx_user_end;
/* Under an emulator (QNXSIM_EMULATED, set by qnxsim when it starts the program through
 * one) the host keeps memory of its own inside the simulated user range: qemu-user puts
 * the program, its stack and its libraries at 0x5500000000 and up, and grows its own
 * allocations upward from there.  That memory is a hole of the mirror: never mapped over,
 * and a grant that reaches into it kills the process with words.  The rest of the range
 * is not reserved there: qemu-user 7.2 keeps ~24 bytes of bookkeeping per guest page it
 * maps, so reserving 512 GiB would cost ~3 GB per process; unmapped, a first access faults
 * all the same. */
#define QX_MAXHOLES 16
#define QX_HOLE_MERGE (1ull << 30)   /* host mappings closer than this: one hole */
#define QX_HOST_GROWTH (16ull << 30) /* room above the top hole for the host's allocations */
static int qx_emulated;
static int qx_nholes;
static uintptr_t qx_holes[QX_MAXHOLES][2];
static int qx_fdmap[QX_MAXFD]; /* host fd -> simulated fd + 1; 0: the host's own */
static long long qx_kid_sim[QX_MAXKIDS], qx_kid_host[QX_MAXKIDS];
static volatile sig_atomic_t qx_sd_gen;
static int qx_status;
static unsigned char qx_buf[QX_BUFSZ];    /* calls */
static unsigned char qx_fbuf[4096];       /* the fault handler */
/* The program's own SIGSEGV action: the mirror's handler stays installed and passes it the
 * faults that are the program's (sigaction and signal below keep it). */
static struct sigaction qx_user_segv;
/* Called before the process dies by a host fault outside the simulated range (the call
 * host of qnxsim.c.load reports where). */
void (*qnxsim_on_host_fault)(const siginfo_t *si);

struct qx_reply {
    int err;
    unsigned nvals, nranges;
    const long long *vals;
    const long long *ranges;
    const unsigned char *blob;
    uint32_t bloblen;
};

/* -- raw host operations ------------------------------------------------------------------ */

static long qx_sys_write(int fd, const void *p, size_t n) { return syscall(SYS_write, fd, p, n); }
static long qx_sys_read(int fd, void *p, size_t n) { return syscall(SYS_read, fd, p, n); }
static int qx_sys_close(int fd) { return (int)syscall(SYS_close, fd); }
/* dup2 and access as system calls that every Linux arch has (aarch64 has no SYS_dup2 and
 * no SYS_access). */
static long qx_sys_dup2(int fd, int fd2) {
    if (fd == fd2) /* dup3 refuses what dup2 allows: an fd onto itself, if it is open */
        return syscall(SYS_fcntl, fd, F_GETFD) < 0 ? -1 : fd2;
    return syscall(SYS_dup3, fd, fd2, 0);
}
static long qx_sys_access(const char *path, int mode) {
    return syscall(SYS_faccessat, AT_FDCWD, path, mode, 0);
}

static void qx_say(const char *msg) {
    size_t n = strlen(msg);
    (void)!qx_sys_write(2, msg, n);
}

__attribute__((noreturn)) static void qx_fatal(const char *msg) {
    qx_say("qnxsim: ");
    qx_say(msg);
    qx_say("\n");
    syscall(SYS_exit_group, 125);
    for (;;) {
    }
}

static void *qx_next(const char *name) {
    void *f = dlsym(RTLD_NEXT, name);
    if (f == NULL)
        qx_fatal("the host libc lacks a function the client library needs");
    return f;
}

static pid_t qx_host_fork(void) {
    pid_t (*f)(void) = (pid_t(*)(void))qx_next("fork");
    return f();
}

static int qx_high_fd(int fd) {
    if (fd < 0 || fd >= QX_PRIVATE_FD)
        return fd;
    int hi = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, QX_PRIVATE_FD);
    if (hi < 0)
        qx_fatal("cannot move a private fd above 1000");
    qx_sys_close(fd);
    return hi;
}

static void qx_unmirror(uintptr_t lo, uintptr_t hi);

static void qx_reserve(uintptr_t lo, uintptr_t hi) {
    if (hi <= lo)
        return;
    if (qx_emulated) {
        qx_unmirror(lo, hi);
        return;
    }
    long r = syscall(SYS_mmap, lo, hi - lo, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (r == -1)
        qx_fatal("cannot reset a range of the memory mirror");
}

/* -- holes: the host's own memory inside the simulated range (under an emulator) ----------- */

/* Calls fn(lo, hi) for each mapping of /proc/self/maps (raw system calls only: it runs in
 * the fault and shootdown handlers).  Returns -1 when the file cannot be read. */
static int qx_each_map(void (*fn)(uintptr_t, uintptr_t)) {
    static char buf[8192];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    size_t have = 0;
    for (;;) {
        long got = qx_sys_read(fd, buf + have, sizeof buf - 1 - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        have += (size_t)got;
        buf[have] = 0;
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            char *end;
            unsigned long lo = strtoul(line, &end, 16);
            if (*end == '-')
                fn((uintptr_t)lo, (uintptr_t)strtoul(end + 1, NULL, 16));
            line = nl + 1;
        }
        have -= (size_t)(line - buf);
        memmove(buf, line, have);
        if (have == sizeof buf - 1)
            have = 0; /* a line longer than the buffer: only its start mattered */
    }
    qx_sys_close(fd);
    return 0;
}

static void qx_add_hole(uintptr_t lo, uintptr_t hi) {
    if (hi <= qx_user_start || lo >= qx_user_end)
        return;
    for (int i = 0; i < qx_nholes; i++)
        if (lo < qx_holes[i][1] + QX_HOLE_MERGE && qx_holes[i][0] < hi + QX_HOLE_MERGE) {
            qx_holes[i][0] = lo < qx_holes[i][0] ? lo : qx_holes[i][0];
            qx_holes[i][1] = hi > qx_holes[i][1] ? hi : qx_holes[i][1];
            return;
        }
    if (qx_nholes == QX_MAXHOLES)
        qx_fatal("the host's memory is scattered over the simulated user range");
    qx_holes[qx_nholes][0] = lo;
    qx_holes[qx_nholes][1] = hi;
    qx_nholes++;
}

/* The host's mappings in the user range at start, merged; the top one gets room for the
 * emulator's later allocations, which it places upward from the top of its own. */
static void qx_find_holes(void) {
    qx_nholes = 0;
    if (qx_each_map(qx_add_hole) < 0)
        qx_fatal("cannot read /proc/self/maps to find the host's memory");
    int top = -1;
    for (int i = 0; i < qx_nholes; i++)
        if (top < 0 || qx_holes[i][0] > qx_holes[top][0])
            top = i;
    if (top >= 0) {
        uintptr_t grown = qx_holes[top][1] + (uintptr_t)QX_HOST_GROWTH;
        qx_holes[top][1] = grown < qx_user_end ? grown : qx_user_end;
    }
}

/* The first hole that [lo, hi) overlaps, or -1. */
static int qx_hole_at(uintptr_t lo, uintptr_t hi) {
    for (int i = 0; i < qx_nholes; i++)
        if (lo < qx_holes[i][1] && qx_holes[i][0] < hi)
            return i;
    return -1;
}

/* The simulator gave [lo, hi) to this process; die with words if the host's memory is
 * there (mapping the RAM over it would corrupt the emulator or the libraries). */
static void qx_check_holes(uintptr_t lo, uintptr_t hi, const char *what) {
    int h = qx_hole_at(lo, hi);
    if (h < 0)
        return;
    char msg[600];
    snprintf(msg, sizeof msg,
             "%s [%#lx, %#lx) overlaps [%#lx, %#lx), where the host keeps its own memory "
             "(under an emulator such as qemu-user its stack, the program and its "
             "libraries lie inside QNX's user range); mapping there would corrupt it, so "
             "the process stops; run the program on a native host, or keep its mappings "
             "out of that range",
             what, (unsigned long)lo, (unsigned long)hi, (unsigned long)qx_holes[h][0],
             (unsigned long)qx_holes[h][1]);
    qx_fatal(msg);
}

/* Under an emulator: unmap what the mirror has in [lo, hi), never the host's memory.  A
 * large range is taken from /proc/self/maps (unmapping address space that is not mapped
 * costs the emulator bookkeeping per page). */
static uintptr_t qx_cut_lo, qx_cut_hi;
static int qx_cut_found;

static void qx_unmap_clipped(uintptr_t lo, uintptr_t hi) {
    lo = lo > qx_cut_lo ? lo : qx_cut_lo;
    hi = hi < qx_cut_hi ? hi : qx_cut_hi;
    while (lo < hi) {
        int h = qx_hole_at(lo, hi);
        uintptr_t stop = h < 0 ? hi : (qx_holes[h][0] > lo ? qx_holes[h][0] : lo);
        if (stop > lo) {
            syscall(SYS_munmap, lo, stop - lo);
            qx_cut_found = 1;
        }
        if (h < 0)
            break;
        lo = qx_holes[h][1];
    }
}

static void qx_unmirror(uintptr_t lo, uintptr_t hi) {
    /* a shootdown waits until this one is done (they share the walk's state) */
    sigset_t sd, old;
    sigemptyset(&sd);
    if (qx_sdsig > 0)
        sigaddset(&sd, qx_sdsig);
    sigprocmask(SIG_BLOCK, &sd, &old);
    qx_cut_lo = lo;
    qx_cut_hi = hi;
    if (hi - lo <= (64u << 20)) {
        qx_unmap_clipped(lo, hi);
    } else {
        do { /* the file changes under the walk: again until nothing is left */
            qx_cut_found = 0;
            if (qx_each_map(qx_unmap_clipped) < 0)
                qx_fatal("cannot read /proc/self/maps to reset the memory mirror");
        } while (qx_cut_found);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* -- messages ----------------------------------------------------------------------------- */

static int qx_send_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        long w = syscall(SYS_sendto, fd, p, n, MSG_NOSIGNAL, NULL, 0);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int qx_recv_all(int fd, unsigned char *p, size_t n) {
    while (n) {
        long r = syscall(SYS_recvfrom, fd, p, n, 0, NULL, NULL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Request: u32 size | u8 namelen | name | u16 nargs | i64 args[] | u32 bloblen | blob. */
static size_t qx_pack(unsigned char *b, size_t cap, const char *name, unsigned nargs,
                      const long long *args, const void *blob, size_t bloblen) {
    size_t nl = strlen(name), n = 4;
    if (4 + 1 + nl + 2 + 8 * (size_t)nargs + 4 + bloblen > cap)
        qx_fatal("a request is larger than the client's buffer");
    b[n++] = (unsigned char)nl;
    memcpy(b + n, name, nl);
    n += nl;
    uint16_t na = (uint16_t)nargs;
    memcpy(b + n, &na, 2);
    n += 2;
    memcpy(b + n, args, 8 * (size_t)nargs);
    n += 8 * (size_t)nargs;
    uint32_t bl = (uint32_t)bloblen;
    memcpy(b + n, &bl, 4);
    n += 4;
    if (bloblen)
        memcpy(b + n, blob, bloblen); /* may fault on a simulated buffer: before any send */
    n += bloblen;
    uint32_t size = (uint32_t)(n - 4);
    memcpy(b, &size, 4);
    return n;
}

/* Reply: u32 size | i32 err | u16 nvals | u16 nranges | u32 bloblen | i64 vals[] |
 * i64 ranges[4 * nranges] (lo, hi, ram offset, host prot; prot -1: invalidate) | blob. */
static int qx_unpack(unsigned char *b, size_t cap, int fd, struct qx_reply *r) {
    /* One receive takes the whole reply when it has arrived whole (the server sends each
     * in one write); more only for a large one. */
    size_t have = 0;
    uint32_t size = 0;
    for (;;) {
        if (have >= 4) {
            memcpy(&size, b, 4);
            if (size > cap - 4 || size < 12)
                return -1;
            if (have >= 4 + (size_t)size)
                break;
        }
        long got = syscall(SYS_recvfrom, fd, b + have, cap - have, 0, NULL, NULL);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        have += (size_t)got;
    }
    if (have != 4 + (size_t)size)
        return -1; /* the server never sends ahead of a request */
    b += 4;
    int32_t err;
    uint16_t nv, nr;
    memcpy(&err, b, 4);
    memcpy(&nv, b + 4, 2);
    memcpy(&nr, b + 6, 2);
    memcpy(&r->bloblen, b + 8, 4);
    r->err = err;
    r->nvals = nv;
    r->nranges = nr;
    r->vals = (const long long *)(void *)(b + 12);
    r->ranges = r->vals + nv;
    r->blob = (const unsigned char *)(r->ranges + 4 * (size_t)nr);
    return 0;
}

/* Map or invalidate what a reply lists. */
static void qx_apply(const struct qx_reply *r) {
    for (unsigned i = 0; i < r->nranges; i++) {
        const long long *g = r->ranges + 4 * i;
        uintptr_t lo = (uintptr_t)g[0], hi = (uintptr_t)g[1];
        if (g[3] < 0) {
            qx_reserve(lo, hi);
            continue;
        }
        if (qx_nholes)
            qx_check_holes(lo, hi, "the simulator granted RAM at");
        long m = syscall(SYS_mmap, lo, hi - lo, (int)g[3], MAP_SHARED | MAP_FIXED, qx_ram,
                         (off_t)g[2]);
        if (m == -1)
            qx_fatal("cannot map RAM into the memory mirror (vm.max_map_count?)");
    }
}

static const char *qx_current;

static struct qx_reply qx_call_blob(const char *name, unsigned nargs, const long long *args,
                                    const void *blob, size_t bloblen) {
    struct qx_reply r;
    if (qx_sock < 0)
        qx_fatal("no kernel server connection (was the program started by qnxsim exec?)");
    qx_current = name;
    size_t n = qx_pack(qx_buf, sizeof qx_buf, name, nargs, args, blob, bloblen);
    if (qx_send_all(qx_sock, qx_buf, n) < 0 || qx_unpack(qx_buf, sizeof qx_buf, qx_sock, &r) < 0)
        qx_fatal("the kernel server went away");
    qx_apply(&r);
    if (r.err > 0)
        errno = qx_host_errno(r.err);
    return r;
}

static struct qx_reply qx_call(const char *name, unsigned nargs, const long long *args) {
    return qx_call_blob(name, nargs, args, NULL, 0);
}

static long long qx_int_result(struct qx_reply r) {
    return r.err ? -1 : (r.nvals ? r.vals[0] : 0);
}

/* -- fds ---------------------------------------------------------------------------------- */

static long long qx_simfd(int fd) {
    if (fd >= 0 && fd < QX_MAXFD && qx_fdmap[fd])
        return qx_fdmap[fd] - 1;
    return -1;
}

static long long qx_simfd_or_bad(int fd) {
    if (fd == -1)
        return -1; /* NOFD */
    long long s = qx_simfd(fd);
    return s >= 0 ? s : QX_BADFD;
}

/* A host fd number that stands for simulated fd `sim` (the host never reuses it). */
static int qx_new_hostfd(long long sim) {
    int h = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, 0);
    if (h < 0 || h >= QX_MAXFD) {
        if (h >= 0)
            qx_sys_close(h);
        long long a[1] = {sim};
        qx_call("close", 1, a);
        errno = EMFILE;
        return -1;
    }
    qx_fdmap[h] = (int)sim + 1;
    return h;
}

/* -- the memory mirror ---------------------------------------------------------------------- */

#if defined(__aarch64__)
/* Does the A64 instruction `insn` write memory?  For signal frames without the ESR record
 * (qemu-user 7.2 has none): the load/store classes of the Arm ARM, C4.1. */
static int qx_a64_writes(uint32_t insn) {
    if ((insn & 0xffffffe0u) == 0xd50b7420u) /* DC ZVA (memset zeroes with it) */
        return 1;
    if ((insn & 0x0a000000u) != 0x08000000u) /* not a load or store */
        return 0;
    unsigned cls = (insn >> 27) & 7, opc = (insn >> 22) & 3, v = (insn >> 26) & 1;
    int l = (insn >> 22) & 1, b24 = (insn >> 24) & 1, b21 = (insn >> 21) & 1;
    if (cls == 3) /* 011: literal loads (b24 0); LDAPUR/STLUR (b24 1): opc 00 stores */
        return b24 && opc == 0;
    if (cls == 1 && !v && !b24) { /* exclusives, acquire/release, CAS, CASP */
        int o2 = (insn >> 23) & 1;
        if (b21 && (o2 || !(insn >> 31)))
            return 1; /* CAS, CASP: read-modify-write */
        return !l;
    }
    if (cls == 7 && !b24 && b21 && ((insn >> 10) & 3) == 0) /* atomics: read-modify-write */
        return !(((insn >> 15) & 1) && ((insn >> 12) & 7) == 4); /* but LDAPR reads */
    if (cls == 7) /* single registers: opc 00 stores; 10 stores a SIMD Q register */
        return opc == 0 || (v && opc == 2);
    return !l; /* pairs, SIMD structures: L clear stores */
}

/* Without the ESR: the page of the last fault taken for a read, so that a second fault
 * there at once is taken for the write it must be. */
static uintptr_t qx_last_read_fault = 1;
#endif

static int qx_is_write(void *ucv, siginfo_t *si) {
    (void)si;
#if defined(__x86_64__)
    ucontext_t *uc = (ucontext_t *)ucv;
    return (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#elif defined(__aarch64__)
    ucontext_t *uc = (ucontext_t *)ucv;
    unsigned char *p = (unsigned char *)uc->uc_mcontext.__reserved;
    unsigned char *end = p + sizeof uc->uc_mcontext.__reserved;
    while (p + 8 <= end) {
        uint32_t magic, size;
        memcpy(&magic, p, 4);
        memcpy(&size, p + 4, 4);
        if (magic == 0 || size < 8)
            break;
        if (magic == 0x45535201) { /* ESR_MAGIC */
            uint64_t esr;
            memcpy(&esr, p + 8, 8);
            return (esr & (1u << 6)) != 0; /* WnR */
        }
        p += size;
    }
    uintptr_t page = (uintptr_t)si->si_addr & ~(uintptr_t)4095;
    uint32_t insn;
    memcpy(&insn, (const void *)(uintptr_t)uc->uc_mcontext.pc, 4);
    int w = qx_a64_writes(insn);
    if (!w && page == qx_last_read_fault && si->si_code == SEGV_ACCERR)
        w = 1; /* mapped readable and faulting again: a write the decoder did not know */
    qx_last_read_fault = w ? 1 : page;
    return w;
#else
#error "qnxsim runs C programs on Linux x86_64 and aarch64 only"
#endif
}

typedef int (*qx_sigaction_fn)(int, const struct sigaction *, struct sigaction *);

static int qx_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    static qx_sigaction_fn real;
    if (real == NULL)
        real = (qx_sigaction_fn)qx_next("sigaction");
    return real(sig, act, old);
}

static int qx_catches(const struct sigaction *act) {
    if (act->sa_flags & SA_SIGINFO)
        return act->sa_sigaction != NULL;
    return act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
}

/* The program's action for a host signal: SIGSEGV's is kept here, others are the host's. */
static struct sigaction qx_user_action(int hostsig) {
    struct sigaction act;
    if (hostsig == SIGSEGV)
        act = qx_user_segv;
    else if (qx_real_sigaction(hostsig, NULL, &act) != 0)
        memset(&act, 0, sizeof act);
    return act;
}

/* Bits of the QNX fault signals the program catches: 1 SIGSEGV, 2 SIGBUS. */
static int qx_bus_caught; /* kept by sigaction below: no system call on each page fault */

static long long qx_caught(void) {
    return (qx_catches(&qx_user_segv) ? 1 : 0) | (qx_bus_caught ? 2 : 0);
}

__attribute__((noreturn)) static void qx_die(int hostsig);

/* Run the program's handler for a fault, as the host's kernel would have: with its mask
 * (and the signal itself unless SA_NODEFER) blocked, once if SA_RESETHAND.  Returns when
 * the handler returns (the access then runs again); dies where the program has none. */
static void qx_deliver(int hostsig, int code, uintptr_t addr, void *uc) {
    struct sigaction act = qx_user_action(hostsig);
    if (!qx_catches(&act))
        qx_die(hostsig);
    if (act.sa_flags & SA_RESETHAND) { /* through the wrapper: it keeps what was caught */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(hostsig, &dfl, NULL);
    }
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = hostsig;
    si.si_code = code;
    si.si_addr = (void *)addr;
    sigset_t mask = act.sa_mask, old;
    if (!(act.sa_flags & SA_NODEFER))
        sigaddset(&mask, hostsig);
    sigprocmask(SIG_BLOCK, &mask, &old);
    if (act.sa_flags & SA_SIGINFO)
        act.sa_sigaction(hostsig, &si, uc);
    else
        act.sa_handler(hostsig);
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* QNX's fault code as the host's si_code (the same names on both). */
static int qx_host_code(int hostsig, long long q) {
    if (hostsig == SIGSEGV)
        return q == QX_SEGV_ACCERR ? SEGV_ACCERR : SEGV_MAPERR;
    if (q == QX_BUS_OBJERR)
        return BUS_OBJERR;
    return q == QX_BUS_ADRALN ? BUS_ADRALN : BUS_ADRERR;
}

__attribute__((noreturn)) static void qx_die(int hostsig) {
    struct rlimit nocore = {0, 0};
    syscall(SYS_prlimit64, 0, RLIMIT_CORE, &nocore, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    qx_real_sigaction(hostsig, &sa, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, hostsig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    syscall(SYS_kill, syscall(SYS_getpid), hostsig);
    syscall(SYS_exit_group, 128 + hostsig);
    for (;;) {
    }
}

static void qx_segv(int sig, siginfo_t *si, void *uc) {
    int saved = errno;
    uintptr_t a = (uintptr_t)si->si_addr;
    if (qx_sock < 0 || a < qx_user_start || a >= qx_user_end || si->si_code <= 0) {
        /* a host fault, outside the simulated range: the program's, or death */
        if (qx_catches(&qx_user_segv)) {
            qx_deliver(sig, si->si_code, a, uc);
            errno = saved;
            return;
        }
        if (qnxsim_on_host_fault != NULL)
            qnxsim_on_host_fault(si);
        qx_die(sig);
    }
    long long args[3] = {(long long)a, qx_is_write(uc, si), qx_caught()};
    struct qx_reply r;
    sig_atomic_t gen = qx_sd_gen;
    size_t n = qx_pack(qx_fbuf, sizeof qx_fbuf, "@fault", 3, args, NULL, 0);
    if (qx_send_all(qx_sock, qx_fbuf, n) < 0 || qx_unpack(qx_fbuf, sizeof qx_fbuf, qx_sock, &r) < 0)
        qx_fatal("the kernel server went away during a page fault");
    if (r.err == QX_DIE) {
        qx_die(qx_host_signal(r.vals[0])); /* the server has recorded the MemoryFault */
    }
    if (r.err == QX_DELIVER) { /* recorded; the process lives on in the program's handler */
        int hs = qx_host_signal(r.vals[0]);
        qx_deliver(hs, qx_host_code(hs, r.vals[1]), a, uc);
        errno = saved;
        return;
    }
    qx_apply(&r);
    if (gen != qx_sd_gen) { /* a shootdown raced the grant: drop it, the access re-asks */
        for (unsigned i = 0; i < r.nranges; i++)
            qx_reserve((uintptr_t)r.ranges[4 * i], (uintptr_t)r.ranges[4 * i + 1]);
    }
    errno = saved;
}

/* Shootdown: u32 count | count x (i64 lo, i64 hi); acknowledged with one byte each. */
static void qx_shootdown(int sig) {
    (void)sig;
    int saved = errno;
    for (;;) {
        uint32_t count;
        long got = syscall(SYS_recvfrom, qx_sd, &count, 4, MSG_DONTWAIT, NULL, NULL);
        if (got != 4)
            break;
        for (uint32_t i = 0; i < count; i++) {
            long long lh[2];
            if (qx_recv_all(qx_sd, (unsigned char *)lh, sizeof lh) < 0)
                qx_fatal("the kernel server went away during a shootdown");
            qx_reserve((uintptr_t)lh[0], (uintptr_t)lh[1]);
        }
        qx_sd_gen++;
        unsigned char ack = 1;
        qx_send_all(qx_sd, &ack, 1);
    }
    errno = saved;
}

/* -- connection ------------------------------------------------------------------------------ */

static int qx_connect_socket(const char *path) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (s < 0 || strlen(path) >= sizeof sa.sun_path)
        qx_fatal("cannot make a socket to the kernel server");
    strcpy(sa.sun_path, path);
    if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0)
        qx_fatal("cannot reach the kernel server (QNXSIM_SOCK)");
    return qx_high_fd(s);
}

static void qx_hello(const char *path, const char *token) {
    qx_sock = qx_connect_socket(path);
    long long args[2] = {(long long)syscall(SYS_getpid), qx_sdsig};
    size_t n = qx_pack(qx_buf, sizeof qx_buf, "@hello", 2, args, token, strlen(token));
    if (qx_send_all(qx_sock, qx_buf, n) < 0)
        qx_fatal("the kernel server went away at the handshake");
    /* The reply's first byte carries the RAM file's fd. */
    uint32_t size;
    char cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&size, 4};
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    long got = syscall(SYS_recvmsg, qx_sock, &mh, MSG_CMSG_CLOEXEC);
    if (got <= 0)
        qx_fatal("the kernel server refused the handshake (a bad or used token?)");
    if (got < 4 && qx_recv_all(qx_sock, (unsigned char *)&size + got, (size_t)(4 - got)) < 0)
        qx_fatal("the kernel server went away at the handshake");
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    int ram = -1;
    if (cm && cm->cmsg_type == SCM_RIGHTS)
        memcpy(&ram, CMSG_DATA(cm), sizeof ram);
    if (size > sizeof qx_buf || size < 12 || qx_recv_all(qx_sock, qx_buf, size) < 0)
        qx_fatal("the kernel server sent a bad handshake");
    int32_t err;
    memcpy(&err, qx_buf, 4);
    if (err != 0 || ram < 0)
        qx_fatal("the kernel server refused the handshake (a bad or used token?)");
    const long long *v = (const long long *)(void *)(qx_buf + 12);
    qx_pid = v[0];
    qx_user_start = (uintptr_t)v[1];
    qx_user_end = (uintptr_t)v[2];
    if (qx_ram >= 0)
        qx_sys_close(qx_ram);
    qx_ram = qx_high_fd(ram);
    char sdtok[128];
    uint32_t bl;
    memcpy(&bl, qx_buf + 8, 4);
    if (bl >= sizeof sdtok)
        qx_fatal("the kernel server sent a bad handshake");
    memcpy(sdtok, qx_buf + 12 + 8 * 3, bl);
    sdtok[bl] = 0;
    qx_sd = qx_connect_socket(path);
    n = qx_pack(qx_buf, sizeof qx_buf, "@sd", 0, NULL, sdtok, bl);
    unsigned char ok = 0;
    if (qx_send_all(qx_sd, qx_buf, n) < 0 || qx_recv_all(qx_sd, &ok, 1) < 0 || ok != 1)
        qx_fatal("the kernel server refused the shootdown channel");
}

static void qx_reserve_user_range(int fresh) {
    uintptr_t lo = qx_user_start, hi = qx_user_end;
    if (qx_emulated) { /* holes instead of a reservation (see qx_emulated) */
        if (fresh)
            qx_find_holes();
        else
            qx_unmirror(lo, hi); /* a forked child drops the mirror it inherited */
        return;
    }
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    flags |= fresh ? MAP_FIXED_NOREPLACE : MAP_FIXED;
    long r = syscall(SYS_mmap, lo, hi - lo, PROT_NONE, flags, -1, 0);
    if (r == -1 || (uintptr_t)r != lo) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "cannot reserve the simulated user range [%#lx, %#lx) in the host "
                 "(something of the host is there, or the host refuses it; build with "
                 "qnxsim cc, which makes PIE)",
                 (unsigned long)lo, (unsigned long)hi);
        qx_fatal(msg);
    }
}

static void qx_load_fdmap(void) {
    const char *s = getenv("QNXSIM_FDS");
    while (s && *s) {
        char *end;
        long h = strtol(s, &end, 10);
        if (*end != ':')
            break;
        long v = strtol(end + 1, &end, 10);
        if (h >= 0 && h < QX_MAXFD)
            qx_fdmap[h] = (int)v + 1;
        s = *end == ',' ? end + 1 : end;
    }
}

static void qx_atexit(void) {
    fflush(NULL);
    long long a[1] = {qx_status};
    qx_call("exit", 1, a);
}

static void qx_reaper(void);

__attribute__((constructor)) static void qx_init(void) {
    if (getenv("QNXSIM_TOP") != NULL) {
        unsetenv("QNXSIM_TOP");
        qx_reaper();
    }
    const char *path = getenv("QNXSIM_SOCK"), *tok = getenv("QNXSIM_TOKEN");
    if (path == NULL || tok == NULL)
        qx_fatal("this program was built by `qnxsim cc`; run it with `qnxsim exec PROG`");
    qx_emulated = getenv("QNXSIM_EMULATED") != NULL;
    /* An emulator may number real-time signals differently from the host (qemu-user
     * shifts them), and the server signals the host process: under one, a signal that
     * has one number everywhere. */
    qx_sdsig = qx_emulated ? SIGURG : SIGRTMIN + 4;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = qx_shootdown;
    sa.sa_flags = SA_RESTART;
    qx_real_sigaction(qx_sdsig, &sa, NULL);
    qx_hello(path, tok);
    unsetenv("QNXSIM_TOKEN");
    qx_load_fdmap();
    qx_reserve_user_range(1);
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = qx_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_NODEFER;
    qx_real_sigaction(SIGSEGV, &sa, NULL); /* qx_user_segv starts as SIG_DFL (zero) */
    atexit(qx_atexit);
}

/* The first host process of a run: reaps every descendant (a subreaper) and ends as its
 * child, the program, ended (exit status, or the same signal). */
static void qx_reaper(void) {
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    pid_t kid = qx_host_fork();
    if (kid < 0)
        qx_fatal("cannot fork the program");
    if (kid == 0)
        return;
    int kid_status = 0, st;
    for (;;) {
        pid_t w = (pid_t)syscall(SYS_wait4, -1, &st, 0, NULL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            break;
        if (w == kid)
            kid_status = st;
    }
    if (WIFSIGNALED(kid_status))
        qx_die(WTERMSIG(kid_status));
    syscall(SYS_exit_group, WEXITSTATUS(kid_status));
    for (;;) {
    }
}

int __real_main(int, char **, char **);
int __wrap_main(int argc, char **argv, char **envp);
int __wrap_main(int argc, char **argv, char **envp) {
    exit(__real_main(argc, argv, envp));
}

/* -- memory calls ------------------------------------------------------------------------------ */

#define A(x) ((long long)(intptr_t)(x))

static void *qx_ptr_result(struct qx_reply r) {
    return r.err ? MAP_FAILED : (void *)(intptr_t)r.vals[0];
}

/* A new mapping of this process: under an emulator, not where the host keeps memory (an
 * access there would not fault, and would read or write the host's bytes). */
static void *qx_map_result(struct qx_reply r, size_t len) {
    void *p = qx_ptr_result(r);
    if (qx_nholes && p != MAP_FAILED)
        qx_check_holes((uintptr_t)p, (uintptr_t)p + len, "the simulator placed a mapping at");
    return p;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    long long a[6] = {A(addr), (long long)len, prot, flags, qx_simfd_or_bad(fd), off};
    return qx_map_result(qx_call("mmap", 6, a), len);
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, __off64_t off) {
    long long a[6] = {A(addr), (long long)len, prot, flags, qx_simfd_or_bad(fd), off};
    return qx_map_result(qx_call("mmap64", 6, a), len);
}

void *mmap_peer(pid_t pid, void *addr, size_t len, int prot, int flags, int fd, off_t off);
void *mmap_peer(pid_t pid, void *addr, size_t len, int prot, int flags, int fd, off_t off) {
    long long a[7] = {pid, A(addr), (long long)len, prot, flags, qx_simfd_or_bad(fd), off};
    struct qx_reply r = qx_call("mmap_peer", 7, a);
    return pid == 0 || pid == qx_pid ? qx_map_result(r, len) : qx_ptr_result(r);
}

void *mmap64_peer(pid_t pid, void *addr, size_t len, int prot, int flags, int fd,
                  __off64_t off);
void *mmap64_peer(pid_t pid, void *addr, size_t len, int prot, int flags, int fd,
                  __off64_t off) {
    long long a[7] = {pid, A(addr), (long long)len, prot, flags, qx_simfd_or_bad(fd), off};
    struct qx_reply r = qx_call("mmap64_peer", 7, a);
    return pid == 0 || pid == qx_pid ? qx_map_result(r, len) : qx_ptr_result(r);
}

int munmap(void *addr, size_t len) {
    long long a[2] = {A(addr), (long long)len};
    return (int)qx_int_result(qx_call("munmap", 2, a));
}

int munmap_flags(void *addr, size_t len, unsigned flags);
int munmap_flags(void *addr, size_t len, unsigned flags) {
    long long a[3] = {A(addr), (long long)len, flags};
    return (int)qx_int_result(qx_call("munmap_flags", 3, a));
}

int munmap_peer(pid_t pid, void *addr, size_t len);
int munmap_peer(pid_t pid, void *addr, size_t len) {
    long long a[3] = {pid, A(addr), (long long)len};
    return (int)qx_int_result(qx_call("munmap_peer", 3, a));
}

int mprotect(void *addr, size_t len, int prot) {
    long long a[3] = {A(addr), (long long)len, prot};
    return (int)qx_int_result(qx_call("mprotect", 3, a));
}

int msync(void *addr, size_t len, int flags) {
    long long a[3] = {A(addr), (long long)len, flags};
    return (int)qx_int_result(qx_call("msync", 3, a));
}

int mlock(const void *addr, size_t len) {
    long long a[2] = {A(addr), (long long)len};
    return (int)qx_int_result(qx_call("mlock", 2, a));
}

int munlock(const void *addr, size_t len) {
    long long a[2] = {A(addr), (long long)len};
    return (int)qx_int_result(qx_call("munlock", 2, a));
}

int mlockall(int flags) {
    long long a[1] = {flags};
    return (int)qx_int_result(qx_call("mlockall", 1, a));
}

int munlockall(void) { return (int)qx_int_result(qx_call("munlockall", 0, NULL)); }

int posix_madvise(void *addr, size_t len, int advice) {
    long long a[3] = {A(addr), (long long)len, advice};
    struct qx_reply r = qx_call("posix_madvise", 3, a);
    return r.err ? qx_host_errno(r.err) : 0; /* returns the errno, as POSIX says */
}

/* mem_offset and mem_offset64 differ only in the type of *off. */
static int qx_mem_offset(const char *call, const void *addr, int fd, size_t len, long long *off,
                         size_t *contig) {
    long long a[3] = {A(addr), qx_simfd_or_bad(fd), (long long)len};
    struct qx_reply r = qx_call(call, 3, a);
    if (r.err)
        return -1;
    *off = r.vals[0];
    if (contig)
        *contig = (size_t)r.vals[1];
    return 0;
}

int mem_offset64(const void *addr, int fd, size_t len, __off64_t *off, size_t *contig);
int mem_offset64(const void *addr, int fd, size_t len, __off64_t *off, size_t *contig) {
    long long o;
    int rc = qx_mem_offset("mem_offset64", addr, fd, len, &o, contig);
    if (rc == 0 && off)
        *off = (__off64_t)o;
    return rc;
}

int mem_offset(const void *addr, int fd, size_t len, off_t *off, size_t *contig);
int mem_offset(const void *addr, int fd, size_t len, off_t *off, size_t *contig) {
    long long o;
    int rc = qx_mem_offset("mem_offset", addr, fd, len, &o, contig);
    if (rc == 0 && off)
        *off = (off_t)o;
    return rc;
}

void *mmap_device_memory(void *addr, size_t len, int prot, int flags, uint64_t physical);
void *mmap_device_memory(void *addr, size_t len, int prot, int flags, uint64_t physical) {
    long long a[5] = {A(addr), (long long)len, prot, flags, (long long)physical};
    return qx_map_result(qx_call("mmap_device_memory", 5, a), len);
}

int munmap_device_memory(void *addr, size_t len);
int munmap_device_memory(void *addr, size_t len) {
    long long a[2] = {A(addr), (long long)len};
    return (int)qx_int_result(qx_call("munmap_device_memory", 2, a));
}

/* -- shared memory and typed memory ---------------------------------------------------------------- */

int shm_open(const char *name, int oflag, mode_t mode) {
    int anon = name == (const char *)1;
    long long a[3] = {qx_qnx_oflags(oflag), (long long)mode, anon};
    struct qx_reply r = qx_call_blob("shm_open", 3, a, anon ? "" : name, anon ? 0 : strlen(name));
    if (r.err)
        return -1;
    return qx_new_hostfd(r.vals[0]);
}

int shm_unlink(const char *name) {
    struct qx_reply r = qx_call_blob("shm_unlink", 0, NULL, name, strlen(name));
    return (int)qx_int_result(r);
}

int shm_ctl(int fd, int flags, uint64_t paddr, uint64_t size);
int shm_ctl(int fd, int flags, uint64_t paddr, uint64_t size) {
    long long a[4] = {qx_simfd_or_bad(fd), flags, (long long)paddr, (long long)size};
    return (int)qx_int_result(qx_call("shm_ctl", 4, a));
}

int posix_typed_mem_open(const char *name, int oflag, int tflag);
int posix_typed_mem_open(const char *name, int oflag, int tflag) {
    long long a[2] = {qx_qnx_oflags(oflag), tflag};
    struct qx_reply r = qx_call_blob("posix_typed_mem_open", 2, a, name, strlen(name));
    if (r.err)
        return -1;
    return qx_new_hostfd(r.vals[0]);
}

int posix_typed_mem_get_info(int fd, struct posix_typed_mem_info *info);
int posix_typed_mem_get_info(int fd, struct posix_typed_mem_info *info) {
    long long a[1] = {qx_simfd_or_bad(fd)};
    struct qx_reply r = qx_call("posix_typed_mem_get_info", 1, a);
    if (r.err)
        return qx_host_errno(r.err);
    info->posix_tmi_length = (size_t)r.vals[0];
    return 0;
}

/* posix_mem_offset and posix_mem_offset64 differ only in the type of *off; the fd comes
 * back as the host fd that stands for the simulated one (-1 for NOFD). */
static int qx_posix_mem_offset(const char *call, const void *addr, size_t len, long long *off,
                               size_t *contig, int *fd) {
    long long a[2] = {A(addr), (long long)len};
    struct qx_reply r = qx_call(call, 2, a);
    if (r.err)
        return qx_host_errno(r.err);
    *off = r.vals[0];
    *contig = (size_t)r.vals[1];
    *fd = -1;
    for (int h = 0; h < QX_MAXFD; h++)
        if (qx_fdmap[h] == r.vals[2] + 1) {
            *fd = h;
            break;
        }
    return 0;
}

int posix_mem_offset(const void *addr, size_t len, off_t *off, size_t *contig, int *fd);
int posix_mem_offset(const void *addr, size_t len, off_t *off, size_t *contig, int *fd) {
    long long o;
    int rc = qx_posix_mem_offset("posix_mem_offset", addr, len, &o, contig, fd);
    if (rc == 0)
        *off = (off_t)o;
    return rc;
}

int posix_mem_offset64(const void *addr, size_t len, __off64_t *off, size_t *contig, int *fd);
int posix_mem_offset64(const void *addr, size_t len, __off64_t *off, size_t *contig, int *fd) {
    long long o;
    int rc = qx_posix_mem_offset("posix_mem_offset64", addr, len, &o, contig, fd);
    if (rc == 0)
        *off = (__off64_t)o;
    return rc;
}

int procmgr_ability(pid_t pid, unsigned ability, ...);
int procmgr_ability(pid_t pid, unsigned ability, ...) {
    long long a[QX_MAXARGS];
    unsigned n = 0;
    a[n++] = pid;
    va_list ap;
    va_start(ap, ability);
    unsigned w = ability;
    for (;;) {
        if (n + 3 >= QX_MAXARGS)
            break;
        a[n++] = w;
        if (w & 0x40000u) { /* PROCMGR_AOP_SUBRANGE: two uint64_t follow */
            a[n++] = (long long)va_arg(ap, uint64_t);
            a[n++] = (long long)va_arg(ap, uint64_t);
        }
        if ((w & 0xFFFFu) == 0xFFFFu) /* PROCMGR_AID_EOL ends the list */
            break;
        w = va_arg(ap, unsigned);
    }
    va_end(ap);
    struct qx_reply r = qx_call("procmgr_ability", n, a);
    if (r.err)
        return qx_host_errno(r.err);
    return r.vals[0] ? qx_host_errno(r.vals[0]) : 0; /* returns an errno (EOK: 0) */
}

/* -- fds ------------------------------------------------------------------------------------------- */

static int qx_open_common(const char *path, int oflag, mode_t mode) {
    long long a[2] = {qx_qnx_oflags(oflag), (long long)mode};
    struct qx_reply r = qx_call_blob("open", 2, a, path, strlen(path));
    if (r.err)
        return -1;
    if (r.vals[0] == QX_NOT_SIMULATED)
        return (int)syscall(SYS_openat, AT_FDCWD, path, oflag, mode);
    return qx_new_hostfd(r.vals[0]);
}

static mode_t qx_mode_arg(int oflag, va_list ap) {
    if (oflag & (O_CREAT | O_TMPFILE))
        return (mode_t)va_arg(ap, int);
    return 0;
}

int open(const char *path, int oflag, ...) {
    va_list ap;
    va_start(ap, oflag);
    mode_t mode = qx_mode_arg(oflag, ap);
    va_end(ap);
    return qx_open_common(path, oflag, mode);
}

int open64(const char *path, int oflag, ...) {
    va_list ap;
    va_start(ap, oflag);
    mode_t mode = qx_mode_arg(oflag, ap);
    va_end(ap);
    return qx_open_common(path, oflag, mode);
}

/* The library's own fds (the sockets, the RAM file) are not the program's to close. */
static int qx_private_fd(int fd) {
    return fd >= 0 && (fd == qx_sock || fd == qx_sd || fd == qx_ram);
}

int close(int fd) {
    if (qx_private_fd(fd)) {
        errno = EBADF;
        return -1;
    }
    long long s = qx_simfd(fd);
    if (s < 0)
        return (int)syscall(SYS_close, fd);
    long long a[1] = {s};
    struct qx_reply r = qx_call("close", 1, a);
    if (r.err)
        return -1;
    qx_fdmap[fd] = 0;
    qx_sys_close(fd);
    return 0;
}

int dup(int fd) {
    long long s = qx_simfd(fd);
    if (s < 0)
        return (int)syscall(SYS_dup, fd);
    long long a[1] = {s};
    struct qx_reply r = qx_call("dup", 1, a);
    return r.err ? -1 : qx_new_hostfd(r.vals[0]);
}

int dup2(int fd, int fd2) {
    if (qx_private_fd(fd) || qx_private_fd(fd2)) {
        errno = EBADF;
        return -1;
    }
    long long s = qx_simfd(fd);
    if (s < 0) {
        if (qx_simfd(fd2) >= 0)
            close(fd2);
        return (int)qx_sys_dup2(fd, fd2);
    }
    if (fd == fd2)
        return fd2;
    if (fd2 < 0 || fd2 >= QX_MAXFD) {
        errno = EBADF;
        return -1;
    }
    long long s2 = qx_simfd(fd2);
    if (s2 >= 0) {
        long long a[2] = {s, s2};
        struct qx_reply r = qx_call("dup2", 2, a);
        return r.err ? -1 : fd2;
    }
    long long a[1] = {s};
    struct qx_reply r = qx_call("dup", 1, a);
    if (r.err)
        return -1;
    int h = (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY, 0);
    if (h < 0 || qx_sys_dup2(h, fd2) < 0)
        qx_fatal("cannot reserve a host fd for dup2");
    qx_sys_close(h);
    qx_fdmap[fd2] = (int)r.vals[0] + 1;
    return fd2;
}

static ssize_t qx_read_common(const char *call, int fd, void *buf, size_t n, long long off,
                              int has_off) {
    long long s = qx_simfd(fd);
    if (s < 0)
        return has_off ? syscall(SYS_pread64, fd, buf, n, off) : qx_sys_read(fd, buf, n);
    if (n > QX_MAXIO)
        n = QX_MAXIO;
    long long a[3] = {s, (long long)n, off};
    struct qx_reply r = qx_call(call, has_off ? 3 : 2, a);
    if (r.err)
        return -1;
    memcpy(buf, r.blob, r.bloblen); /* may fault on simulated memory: the exchange is over */
    return (ssize_t)r.bloblen;
}

static ssize_t qx_write_common(const char *call, int fd, const void *buf, size_t n,
                               long long off, int has_off) {
    long long s = qx_simfd(fd);
    if (s < 0)
        return has_off ? syscall(SYS_pwrite64, fd, buf, n, off) : qx_sys_write(fd, buf, n);
    if (n > QX_MAXIO)
        n = QX_MAXIO;
    long long a[2] = {s, off};
    return (ssize_t)qx_int_result(qx_call_blob(call, has_off ? 2 : 1, a, buf, n));
}

ssize_t read(int fd, void *buf, size_t n) { return qx_read_common("read", fd, buf, n, 0, 0); }
ssize_t write(int fd, const void *buf, size_t n) {
    return qx_write_common("write", fd, buf, n, 0, 0);
}
ssize_t pread(int fd, void *buf, size_t n, off_t off) {
    return qx_read_common("pread", fd, buf, n, off, 1);
}
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    return qx_write_common("pwrite", fd, buf, n, off, 1);
}
ssize_t pread64(int fd, void *buf, size_t n, __off64_t off) {
    return qx_read_common("pread", fd, buf, n, off, 1);
}
ssize_t pwrite64(int fd, const void *buf, size_t n, __off64_t off) {
    return qx_write_common("pwrite", fd, buf, n, off, 1);
}

off_t lseek(int fd, off_t off, int whence) {
    long long s = qx_simfd(fd);
    if (s < 0)
        return (off_t)syscall(SYS_lseek, fd, off, whence);
    long long a[3] = {s, off, whence};
    return (off_t)qx_int_result(qx_call("lseek", 3, a));
}
__off64_t lseek64(int fd, __off64_t off, int whence) { return lseek(fd, off, whence); }

int ftruncate(int fd, off_t len) {
    long long s = qx_simfd(fd);
    if (s < 0)
        return (int)syscall(SYS_ftruncate, fd, len);
    long long a[2] = {s, len};
    return (int)qx_int_result(qx_call("ftruncate", 2, a));
}
int ftruncate64(int fd, __off64_t len) { return ftruncate(fd, len); }

int fstat(int fd, struct stat *st) {
    long long s = qx_simfd(fd);
    if (s < 0)
        return (int)syscall(SYS_fstat, fd, st);
    long long a[1] = {s};
    struct qx_reply r = qx_call("fstat", 1, a);
    if (r.err)
        return -1;
    memset(st, 0, sizeof *st);
    st->st_size = r.vals[0];
    st->st_mode = (mode_t)r.vals[1];
    st->st_uid = (uid_t)r.vals[2];
    st->st_gid = (gid_t)r.vals[3];
    st->st_ino = (ino_t)r.vals[4];
    st->st_nlink = (nlink_t)r.vals[5];
    st->st_blksize = 4096;
    return 0;
}
int fstat64(int fd, struct stat64 *st) { return fstat(fd, (struct stat *)(void *)st); }

/* -- processes --------------------------------------------------------------------------------------- */

pid_t getpid(void) { return (pid_t)qx_pid; }

pid_t getppid(void) { return (pid_t)qx_int_result(qx_call("getppid", 0, NULL)); }

pid_t fork(void) {
    struct qx_reply r = qx_call("fork", 0, NULL);
    if (r.err)
        return -1;
    long long child = r.vals[0];
    char token[128];
    if (r.bloblen >= sizeof token)
        qx_fatal("the kernel server sent a bad fork token");
    memcpy(token, r.blob, r.bloblen);
    token[r.bloblen] = 0;
    fflush(NULL);
    pid_t h = qx_host_fork();
    if (h < 0) {
        long long a[1] = {child};
        qx_call("@forkfailed", 1, a);
        errno = EAGAIN;
        return -1;
    }
    if (h == 0) { /* the host child binds to the new pid and drops its inherited mirror */
        qx_sys_close(qx_sock);
        qx_sys_close(qx_sd);
        qx_sock = qx_sd = -1;
        memset(qx_kid_sim, 0, sizeof qx_kid_sim);
        memset(qx_kid_host, 0, sizeof qx_kid_host);
        qx_hello(getenv("QNXSIM_SOCK"), token);
        qx_reserve_user_range(0);
        return 0;
    }
    for (int i = 0; i < QX_MAXKIDS; i++)
        if (qx_kid_sim[i] == 0) {
            qx_kid_sim[i] = child;
            qx_kid_host[i] = h;
            break;
        }
    long long a[2] = {child, h}; /* so that a child that dies unborn cannot hang a wait */
    qx_call("@forkhost", 2, a);
    return (pid_t)child;
}

/* Reap the host process of simulated child `sim`; its host wait status, or -1. */
static int qx_reap_host(long long sim) {
    for (int i = 0; i < QX_MAXKIDS; i++)
        if (qx_kid_sim[i] == sim) {
            long h = (long)qx_kid_host[i];
            int st = -1;
            qx_kid_sim[i] = qx_kid_host[i] = 0;
            while (syscall(SYS_wait4, h, &st, 0, NULL) < 0 && errno == EINTR) {
            }
            return st;
        }
    return -1;
}

pid_t waitpid(pid_t pid, int *status, int options) {
    long long a[2] = {pid, (options & WNOHANG) ? QX_WNOHANG : 0};
    struct qx_reply r = qx_call("waitpid", 2, a);
    if (r.err)
        return -1;
    if (r.vals[0] > 0) {
        int saved = errno;
        int host = qx_reap_host(r.vals[0]);
        errno = saved;
        if (status)
            *status = r.vals[1] ? (qx_host_signal(r.vals[2]) & 0x7f)
                                : (int)((r.vals[2] & 0xff) << 8);
        /* The simulator saw the host process vanish (SIGKILL); the host knows which
         * signal it was (abort(), a host fault outside the simulated range...). */
        if (status && r.vals[1] && r.vals[2] == 9 && host != -1 && WIFSIGNALED(host))
            *status = host;
    }
    return (pid_t)r.vals[0];
}

pid_t wait(int *status) { return waitpid(-1, status, 0); }

void exit(int status) {
    void (*real)(int) = (void (*)(int))qx_next("exit");
    qx_status = status;
    real(status);
    for (;;) {
    }
}

void _exit(int status) {
    fflush(NULL);
    long long a[1] = {status};
    if (qx_sock >= 0)
        qx_call("exit", 1, a);
    syscall(SYS_exit_group, status);
    for (;;) {
    }
}

void _Exit(int status) { _exit(status); }

/* exec: the simulator replaces the image of this pid; the new host program binds to it. */
int execve(const char *path, char *const argv[], char *const envp[]) {
    if (qx_sys_access(path, X_OK) < 0)
        return -1;
    struct qx_reply r = qx_call_blob("exec", 0, NULL, path, strlen(path));
    if (r.err)
        return -1;
    static char tokenvar[160], fdsvar[8192];
    snprintf(tokenvar, sizeof tokenvar, "QNXSIM_TOKEN=%.*s", (int)r.bloblen, (const char *)r.blob);
    size_t used = (size_t)snprintf(fdsvar, sizeof fdsvar, "QNXSIM_FDS=");
    for (int h = 0; h < QX_MAXFD && used + 32 < sizeof fdsvar; h++)
        if (qx_fdmap[h])
            used += (size_t)snprintf(fdsvar + used, sizeof fdsvar - used, "%d:%d,", h,
                                     qx_fdmap[h] - 1);
    static char *env[1024];
    size_t n = 0;
    for (size_t i = 0; envp && envp[i] && n < 1020; i++)
        if (strncmp(envp[i], "QNXSIM_TOKEN=", 13) && strncmp(envp[i], "QNXSIM_FDS=", 11) &&
            strncmp(envp[i], "QNXSIM_TOP=", 11))
            env[n++] = envp[i];
    if (getenv("QNXSIM_SOCK") && n < 1020) {
        static char sockvar[200];
        snprintf(sockvar, sizeof sockvar, "QNXSIM_SOCK=%s", getenv("QNXSIM_SOCK"));
        int have = 0;
        for (size_t i = 0; i < n; i++)
            have |= !strncmp(env[i], "QNXSIM_SOCK=", 12);
        if (!have)
            env[n++] = sockvar;
    }
    env[n++] = tokenvar;
    env[n++] = fdsvar;
    env[n] = NULL;
    syscall(SYS_execve, path, argv, env);
    qx_fatal("exec failed after the simulator replaced the image");
}

int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

int execvp(const char *file, char *const argv[]) {
    if (strchr(file, '/'))
        return execve(file, argv, environ);
    const char *p = getenv("PATH");
    char buf[4096];
    for (p = p ? p : "/bin:/usr/bin"; *p;) {
        const char *c = strchr(p, ':');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, file);
        if (qx_sys_access(buf, X_OK) == 0)
            return execve(buf, argv, environ);
        p += len + (c != NULL);
    }
    errno = ENOENT;
    return -1;
}

int execl(const char *path, const char *arg, ...) {
    char *argv[QX_MAXARGS];
    int n = 0;
    va_list ap;
    va_start(ap, arg);
    argv[n++] = (char *)arg;
    while (n < QX_MAXARGS - 1 && (argv[n] = va_arg(ap, char *)) != NULL)
        n++;
    argv[n] = NULL;
    va_end(ap);
    return execve(path, argv, environ);
}

/* -- signals -------------------------------------------------------------------------------------- */

/* SIGSEGV stays the mirror's (its first touches are page faults); the program's action is
 * kept and run for the faults that are really the program's (qx_deliver).  The shootdown
 * signal (qx_sdsig) stays the client's: a program that sets an action for it is refused
 * with EINVAL, as a signal the host reserves would be, instead of losing its shootdowns
 * and then being killed for not acknowledging them. */
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
    if (sig == qx_sdsig && act != NULL && qx_sdsig > 0) {
        errno = EINVAL;
        return -1;
    }
    if (sig != SIGSEGV) {
        int rc = qx_real_sigaction(sig, act, old);
        if (rc == 0 && sig == SIGBUS && act != NULL)
            qx_bus_caught = qx_catches(act);
        return rc;
    }
    struct sigaction prev = qx_user_segv;
    if (act != NULL)
        qx_user_segv = *act;
    if (old != NULL)
        *old = prev;
    return 0;
}

void (*signal(int sig, void (*handler)(int)))(int) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART; /* BSD semantics, as the host's signal() */
    if (sigaction(sig, &sa, &old) != 0)
        return SIG_ERR;
    return (old.sa_flags & SA_SIGINFO) ? (void (*)(int))(void *)old.sa_sigaction : old.sa_handler;
}

/* -- credentials and limits --------------------------------------------------------------------------- */

uid_t getuid(void) { return (uid_t)qx_int_result(qx_call("getuid", 0, NULL)); }
uid_t geteuid(void) { return (uid_t)qx_int_result(qx_call("geteuid", 0, NULL)); }
gid_t getgid(void) { return (gid_t)qx_int_result(qx_call("getgid", 0, NULL)); }
gid_t getegid(void) { return (gid_t)qx_int_result(qx_call("getegid", 0, NULL)); }

static int qx_id_call(const char *name, long long id) {
    long long a[1] = {id};
    return (int)qx_int_result(qx_call(name, 1, a));
}
int setuid(uid_t uid) { return qx_id_call("setuid", uid); }
int seteuid(uid_t uid) { return qx_id_call("seteuid", uid); }
int setgid(gid_t gid) { return qx_id_call("setgid", gid); }
int setegid(gid_t gid) { return qx_id_call("setegid", gid); }

int getrlimit(__rlimit_resource_t resource, struct rlimit *rl) {
    long long a[1] = {qx_qnx_rlimit((int)resource)};
    struct qx_reply r = qx_call("getrlimit", 1, a);
    if (r.err)
        return -1;
    unsigned long long soft = (unsigned long long)r.vals[0], hard = (unsigned long long)r.vals[1];
    rl->rlim_cur = soft == QX_RLIM_INFINITY ? RLIM_INFINITY : soft;
    rl->rlim_max = hard == QX_RLIM_INFINITY ? RLIM_INFINITY : hard;
    return 0;
}

int setrlimit(__rlimit_resource_t resource, const struct rlimit *rl) {
    unsigned long long soft = rl->rlim_cur, hard = rl->rlim_max;
    long long a[3] = {qx_qnx_rlimit((int)resource),
                      (long long)(soft == RLIM_INFINITY ? QX_RLIM_INFINITY : soft),
                      (long long)(hard == RLIM_INFINITY ? QX_RLIM_INFINITY : hard)};
    return (int)qx_int_result(qx_call("setrlimit", 3, a));
}

/* -- every other call of the table (generated from qnxsim.calls) ----------------------------- */

#include "qnxsim_generated.h"

int shm_create_handle(int fd, pid_t pid, int flags, shm_handle_t *handlep, unsigned options);
int shm_create_handle(int fd, pid_t pid, int flags, shm_handle_t *handlep, unsigned options) {
    long long a[4] = {qx_simfd_or_bad(fd), pid, qx_qnx_oflags(flags), options};
    struct qx_reply r = qx_call("shm_create_handle", 4, a);
    if (r.err)
        return -1;
    *handlep = (shm_handle_t)r.vals[0];
    return 0;
}
