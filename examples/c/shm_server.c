/* A server shares a buffer with its client: it creates a shm object, writes into its own
 * mapping, forks a client and maps the object read-only into the client with mmap_peer.
 * The client learns the address over a pipe and reads the server's bytes.
 * Build: qnxsim cc shm_server.c -o shm_server      Run: qnxsim exec ./shm_server */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 4096

int main(void) {
    int fd = shm_open("/demo", O_RDWR | O_CREAT, 0600);
    if (fd == -1 || ftruncate(fd, SIZE) == -1) {
        perror("shm");
        return 1;
    }
    char *buf = mmap(0, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (buf == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    strcpy(buf, "hello from the server");
    int link[2];
    if (pipe(link) == -1) {
        perror("pipe");
        return 1;
    }
    pid_t client = fork();
    if (client == 0) {
        uintptr_t where;
        close(link[1]);
        if (read(link[0], &where, sizeof where) != (ssize_t)sizeof where)
            _exit(2);
        printf("client %d reads at %#lx: \"%s\"\n", getpid(), (unsigned long)where,
               (const char *)where);
        fflush(stdout);
        _exit(strcmp((const char *)where, "hello from the server") == 0 ? 0 : 3);
    }
    close(link[0]);
    void *there = mmap_peer(client, 0, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    if (there == MAP_FAILED) {
        perror("mmap_peer");
        return 1;
    }
    uintptr_t where = (uintptr_t)there;
    if (write(link[1], &where, sizeof where) != (ssize_t)sizeof where)
        return 1;
    int status;
    if (waitpid(client, &status, 0) != client)
        return 1;
    printf("server %d: client exited with %d\n", getpid(), WEXITSTATUS(status));
    shm_unlink("/demo");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
