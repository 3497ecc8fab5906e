/* Differential driver: runs the calls listed in the file argv[1], one a line, and prints
 * one line per call (the result, or "! errno-number").  Memory accesses that fault end
 * the process as QNX would. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static void result_ptr(void *r) {
    if (r == MAP_FAILED)
        printf("! %d\n", errno);
    else
        printf("= %#lx\n", (unsigned long)r);
}

static void result_int(int r) {
    if (r == -1)
        printf("! %d\n", errno);
    else
        printf("= %d\n", r);
}

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    FILE *f = fopen(argv[1], "r");
    if (f == NULL)
        return 2;
    char op[32];
    unsigned long long a[7];
    while (fscanf(f, "%31s", op) == 1) {
        if (!strcmp(op, "mmap")) {
            if (fscanf(f, "%lli %lli %lli %lli %lli %lli", (long long *)&a[0], (long long *)&a[1],
                       (long long *)&a[2], (long long *)&a[3], (long long *)&a[4],
                       (long long *)&a[5]) != 6)
                return 2;
            result_ptr(mmap((void *)a[0], a[1], (int)a[2], (int)a[3], (int)a[4], (off_t)a[5]));
        } else if (!strcmp(op, "mmap_peer")) {
            if (fscanf(f, "%lli %lli %lli %lli %lli %lli %lli", (long long *)&a[0],
                       (long long *)&a[1], (long long *)&a[2], (long long *)&a[3],
                       (long long *)&a[4], (long long *)&a[5], (long long *)&a[6]) != 7)
                return 2;
            result_ptr(mmap_peer((pid_t)a[0], (void *)a[1], a[2], (int)a[3], (int)a[4],
                                 (int)a[5], (off_t)a[6]));
        } else if (!strcmp(op, "munmap")) {
            if (fscanf(f, "%lli %lli", (long long *)&a[0], (long long *)&a[1]) != 2)
                return 2;
            result_int(munmap((void *)a[0], a[1]));
        } else if (!strcmp(op, "munmap_peer")) {
            if (fscanf(f, "%lli %lli %lli", (long long *)&a[0], (long long *)&a[1],
                       (long long *)&a[2]) != 3)
                return 2;
            result_int(munmap_peer((pid_t)a[0], (void *)a[1], a[2]));
        } else if (!strcmp(op, "mprotect")) {
            if (fscanf(f, "%lli %lli %lli", (long long *)&a[0], (long long *)&a[1],
                       (long long *)&a[2]) != 3)
                return 2;
            result_int(mprotect((void *)a[0], a[1], (int)a[2]));
        } else if (!strcmp(op, "write")) {
            if (fscanf(f, "%lli %lli", (long long *)&a[0], (long long *)&a[1]) != 2)
                return 2;
            fflush(stdout);
            memset((void *)a[0], (int)a[1], 8);
            printf("= ok\n");
        } else if (!strcmp(op, "read")) {
            if (fscanf(f, "%lli", (long long *)&a[0]) != 1)
                return 2;
            fflush(stdout);
            unsigned char b[8];
            memcpy(b, (const void *)a[0], 8);
            printf("= %02x%02x%02x%02x%02x%02x%02x%02x\n", b[0], b[1], b[2], b[3], b[4], b[5],
                   b[6], b[7]);
        } else {
            return 2;
        }
    }
    return 0;
}
