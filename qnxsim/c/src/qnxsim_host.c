/* qnxsim call host: runs functions of a user's shared object inside a simulated process.
 *
 * Built by qnxsim.c.load with the client library (so it is a simulated process, bound to
 * a pid by the usual handshake) and exported symbols (so the shared object's mmap,
 * mmap_peer... resolve to the client library's).  argv: the shared object, the fd of the
 * channel to Python, the simulated user range [lo, hi).  It then runs calls until EOF.
 *
 * Channel (native byte order), request: u32 size | u16 namelen | name | u16 nargs |
 * per argument u8 kind (0: i64 value; 1: u32 len + bytes, passed as a pointer to a host
 * copy and sent back after the call).  Reply: u8 status (0: done; 1: no such function;
 * 2: a host fault outside the simulated range, then i64 address and i32 si_code) |
 * i64 result | i32 host errno | per buffer u32 len + bytes.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define QH_MAXARGS 8
#define QH_MAXMSG (16u << 20)

static int qh_fd = -1;
extern void (*qnxsim_on_host_fault)(const siginfo_t *si);

/* All of n bytes by read or write (nr: SYS_read or SYS_write); -1 at end or error. */
static int qh_all(long nr, unsigned char *b, size_t n) {
    while (n) {
        long r = syscall(nr, qh_fd, b, n);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            return -1;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int qh_recv(void *p, size_t n) { return qh_all(SYS_read, p, n); }

static int qh_send(const void *p, size_t n) {
    return qh_all(SYS_write, (unsigned char *)(uintptr_t)p, n);
}

/* A fault outside the simulated range is the host's: say where before dying by it (the
 * client library calls this just before the process dies). */
static void qh_note(const siginfo_t *si) {
    unsigned char note[17];
    uint32_t size = 13;
    long long addr = (long long)(uintptr_t)si->si_addr;
    int code = si->si_code;
    memcpy(note, &size, 4);
    note[4] = 2;
    memcpy(note + 5, &addr, 8);
    memcpy(note + 13, &code, 4);
    qh_send(note, sizeof note);
}

typedef long long (*qh_fn)(long long, long long, long long, long long, long long, long long,
                           long long, long long);

int main(int argc, char **argv) {
    if (argc != 5)
        return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (lib == NULL)
        return 3;
    qh_fd = atoi(argv[2]);
    /* argv[3], argv[4]: the simulated range; the client library knows it already */
    qnxsim_on_host_fault = qh_note;
    unsigned char *msg = malloc(QH_MAXMSG), *out = malloc(QH_MAXMSG);
    if (msg == NULL || out == NULL)
        return 4;
    for (;;) {
        uint32_t size;
        if (qh_recv(&size, 4) < 0)
            break;
        if (size > QH_MAXMSG || qh_recv(msg, size) < 0)
            return 5;
        unsigned char *p = msg;
        uint16_t namelen, nargs;
        memcpy(&namelen, p, 2);
        char name[256];
        if (namelen >= sizeof name)
            return 6;
        memcpy(name, p + 2, namelen);
        name[namelen] = 0;
        p += 2 + namelen;
        memcpy(&nargs, p, 2);
        p += 2;
        if (nargs > QH_MAXARGS)
            return 6;
        long long a[QH_MAXARGS] = {0};
        unsigned char *bufs[QH_MAXARGS];
        uint32_t lens[QH_MAXARGS];
        int isbuf[QH_MAXARGS] = {0};
        for (unsigned i = 0; i < nargs; i++) {
            unsigned char kind = *p++;
            if (kind == 0) {
                memcpy(&a[i], p, 8);
                p += 8;
            } else {
                memcpy(&lens[i], p, 4);
                p += 4;
                bufs[i] = malloc(lens[i] ? lens[i] : 1);
                memcpy(bufs[i], p, lens[i]);
                p += lens[i];
                a[i] = (long long)(intptr_t)bufs[i];
                isbuf[i] = 1;
            }
        }
        qh_fn fn = (qh_fn)(intptr_t)dlsym(lib, name);
        unsigned char status = fn == NULL ? 1 : 0;
        long long ret = 0;
        int err = 0;
        if (fn != NULL) {
            errno = 0;
            ret = fn(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
            err = errno;
        }
        size_t n = 4;
        out[n++] = status;
        memcpy(out + n, &ret, 8);
        n += 8;
        memcpy(out + n, &err, 4);
        n += 4;
        for (unsigned i = 0; i < nargs; i++) {
            if (!isbuf[i])
                continue;
            memcpy(out + n, &lens[i], 4);
            memcpy(out + n + 4, bufs[i], lens[i]);
            n += 4 + lens[i];
            free(bufs[i]);
        }
        uint32_t body = (uint32_t)(n - 4);
        memcpy(out, &body, 4);
        if (qh_send(out, n) < 0)
            break;
    }
    return 0;
}
