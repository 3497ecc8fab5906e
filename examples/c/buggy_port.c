/* A bug that ports from QNX: the server maps a page into its client with mmap_peer and
 * then uses the returned address in its own address space, where nothing is mapped.
 * On QNX (and here) the server dies by SIGSEGV with si_code SEGV_MAPERR.
 * Build: qnxsim cc buggy_port.c -o buggy_port     Run: qnxsim exec --trace ./buggy_port */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    int link[2];
    if (pipe(link) == -1)
        return 1;
    pid_t client = fork();
    if (client == 0) {
        char c;
        close(link[1]);
        while (read(link[0], &c, 1) > 0) { /* until the server goes */
        }
        _exit(0);
    }
    close(link[0]);
    int *p = mmap_peer(client, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, NOFD, 0);
    if (p == (void *)MAP_FAILED) {
        perror("mmap_peer");
        return 1;
    }
    printf("server: mapped %p into client %d; now writing to it in my own space\n", (void *)p,
           client);
    fflush(stdout);
    *p = 42; /* the bug: p is an address in the client, not here */
    printf("not reached\n");
    return 0;
}
