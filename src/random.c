/* SPDX-License-Identifier: MIT */
/* One random source per process, for reconnect and backoff jitter and for
 * ids (worker ids, hence lock tokens; flow job ids).
 *
 * rand() was used before, and nothing seeds it: workers started or
 * restarted together drew the same reconnect delays and reconnected in step
 * to a restarting Redis, the stampede the jitter is there to prevent. This
 * source is seeded once per process from the kernel (getrandom, else
 * /dev/urandom, else the clock and the pid), again in the child after a
 * fork, and never touches rand()'s state, which belongs to the program.
 *
 * SplitMix64 on an atomic counter: one atomic add per draw, so any thread
 * may draw without a lock. Not for secrets; these values only need to
 * differ between processes and calls. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bullc-private.h"

#define GAMMA 0x9e3779b97f4a7c15ULL

static _Atomic uint64_t state;
static uv_once_t once = UV_ONCE_INIT;

static uint64_t kernel_seed(void) {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) == (ssize_t)sizeof s) return s;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, &s, sizeof s);
        close(fd);
        if (n == (ssize_t)sizeof s) return s;
    }
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 30) ^ ((uint64_t)getpid() << 16) ^ (uintptr_t)&t;
}

/* A forked child would otherwise go on with its parent's sequence. */
static void reseed_child(void) { atomic_store(&state, kernel_seed()); }

static void seed(void) {
    atomic_store(&state, kernel_seed());
    pthread_atfork(NULL, NULL, reseed_child);
}

uint64_t bullc__random_u64(void) {
    uv_once(&once, seed);
    uint64_t z = atomic_fetch_add(&state, GAMMA) + GAMMA;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t bullc__random_below(uint64_t n) {
    if (n <= 1) return 0;
    /* rejection keeps every value equally likely */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, r;
    do r = bullc__random_u64();
    while (r >= limit);
    return r % n;
}

double bullc__random01(void) { return (double)(bullc__random_u64() >> 11) * 0x1.0p-53; }

void bullc__random_bytes(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n) {
        uint64_t r = bullc__random_u64();
        size_t k = n < sizeof r ? n : sizeof r;
        memcpy(p, &r, k);
        p += k, n -= k;
    }
}

void bullc__uuid4(char out[37]) {
    unsigned char b[16];
    bullc__random_bytes(b, sizeof b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
