/* A child lends its parent one page: it maps anonymous shared memory into the parent's
 * address space with mmap_peer, then takes it back with munmap_peer.  The parent waits.
 * Build: qnxsim cc peer_page.c -o peer_page      Run: qnxsim exec --trace ./peer_page */
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == -1) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        void *p = mmap_peer(parent, 0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANON, NOFD, 0);
        if (p == MAP_FAILED) {
            perror("mmap_peer");
            _exit(1);
        }
        printf("child %d: mapped a page at %p in parent %d\n", getpid(), p, parent);
        if (munmap_peer(parent, p, 4096) == -1) {
            perror("munmap_peer");
            _exit(1);
        }
        printf("child %d: unmapped it again\n", getpid());
        return 0;
    }
    int status;
    if (waitpid(child, &status, 0) != child) {
        perror("waitpid");
        return 1;
    }
    printf("parent %d: child %d exited with %d\n", parent, child, WEXITSTATUS(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
