/*
 * The power-loss test's file layer, preloaded (LD_PRELOAD) into the child
 * that writes: every successful fsync or fdatasync of a regular file
 * appends "<size> <path>" to $BULKHEAD_SYNC_LOG, the size taken before the
 * sync began, so every byte below it was written before the sync and is
 * durable once it returns. After SIGKILL the test cuts each RocksDB WAL
 * back to its last synced size: what a power cut leaves of a file whose
 * tail sat only in the page cache. Built by the test with `cc`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void record(int fd, long long size) {
    const char *log = getenv("BULKHEAD_SYNC_LOG");
    if (log == NULL) {
        return;
    }
    char link[64];
    char path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) {
        return;
    }
    path[n] = '\0';
    char line[4200];
    int len = snprintf(line, sizeof line, "%lld %s\n", size, path);
    int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (out < 0) {
        return;
    }
    /* One write of one line: O_APPEND keeps lines whole across threads. */
    if (write(out, line, (size_t)len) < 0) {
        /* Nothing to do: a lost line only makes the cut deeper. */
    }
    close(out);
}

static int synced(int fd, int (*real)(int)) {
    struct stat st;
    int regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    int rc = real(fd);
    if (rc == 0 && regular) {
        record(fd, (long long)st.st_size);
    }
    return rc;
}

int fsync(int fd) {
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    }
    return synced(fd, real);
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (real == NULL) {
        real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    }
    return synced(fd, real);
}
