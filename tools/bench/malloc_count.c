/* SPDX-License-Identifier: MIT */
/* malloc_count.so: counts heap calls of a process, for tools/bench/profile.sh.
 *
 *   LD_PRELOAD=malloc_count.so MALLOC_COUNT_OUT=file PROGRAM ...
 *
 * At exit, appends one JSON line to MALLOC_COUNT_OUT (else stderr):
 * {"malloc":N,"calloc":N,"realloc":N,"free":N,"bytes":N}. glibc's __libc_*
 * entry points do the work, so no dlsym bootstrap is needed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static atomic_ullong n_malloc, n_calloc, n_realloc, n_free, n_bytes;

void *malloc(size_t n) {
    atomic_fetch_add_explicit(&n_malloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b) {
    atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, a * b, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n) {
    atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&n_bytes, n, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void free(void *p) {
    if (p) atomic_fetch_add_explicit(&n_free, 1, memory_order_relaxed);
    __libc_free(p);
}

__attribute__((destructor)) static void report(void) {
    char line[256];
    int len = snprintf(line, sizeof line,
                       "{\"pid\":%d,\"malloc\":%llu,\"calloc\":%llu,\"realloc\":%llu,\"free\":%llu,\"bytes\":%llu}\n",
                       (int)getpid(), (unsigned long long)n_malloc, (unsigned long long)n_calloc,
                       (unsigned long long)n_realloc, (unsigned long long)n_free, (unsigned long long)n_bytes);
    const char *path = getenv("MALLOC_COUNT_OUT");
    int fd = path ? open(path, O_WRONLY | O_CREAT | O_APPEND, 0644) : 2;
    if (fd >= 0) {
        ssize_t w = write(fd, line, (size_t)len);
        (void)w;
        if (fd != 2) close(fd);
    }
}
