/* A resource manager's helper, ported from QNX: share a buffer with a client.
 *
 * share_buffer() creates an anonymous shm object of `size` bytes, maps it read-write in
 * the caller (the server), writes a greeting at its start and maps it read-only into
 * `client` with mmap_peer; *theirs gets the client's address.  0 on success, else -1 and
 * errno (ESRCH: no such client; EPERM: the server may not map into another process).
 * share_buffer_buggy() is the port's bug: it maps anonymous memory into the client and
 * writes the greeting through the client's address in its own address space (SIGSEGV).
 * SHARE_PROT is the client's protection; a build with -DSHARE_PROT='PROT_READ|PROT_WRITE'
 * is the deliberately wrong variant the tests must catch.
 * Tested from Python by examples/c/test_server.py (qnxsim.c.load). */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef SHARE_PROT
#define SHARE_PROT PROT_READ
#endif

#define GREETING "hello from the server"

int share_buffer(pid_t client, size_t size, void **theirs);
int share_buffer_buggy(pid_t client, size_t size, void **theirs);

int share_buffer(pid_t client, size_t size, void **theirs) {
    int fd = shm_open(SHM_ANON, O_RDWR | O_CREAT, 0600);
    if (fd == -1)
        return -1;
    if (ftruncate(fd, (off_t)size) == -1) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    char *mine = mmap(0, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mine == MAP_FAILED) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    void *there = mmap_peer(client, 0, size, SHARE_PROT, MAP_SHARED, fd, 0);
    if (there == MAP_FAILED) {
        int e = errno;
        munmap(mine, size);
        close(fd);
        errno = e;
        return -1;
    }
    close(fd);
    if (size > sizeof GREETING)
        memcpy(mine, GREETING, sizeof GREETING);
    *theirs = there;
    return 0;
}

int share_buffer_buggy(pid_t client, size_t size, void **theirs) {
    void *there = mmap_peer(client, 0, size, PROT_READ, MAP_SHARED | MAP_ANON, NOFD, 0);
    if (there == MAP_FAILED)
        return -1;
    memcpy(there, GREETING, sizeof GREETING); /* the bug: the client's address, used here */
    *theirs = there;
    return 0;
}
