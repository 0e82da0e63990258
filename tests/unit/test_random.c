/* SPDX-License-Identifier: MIT */
/* The process's random source (src/random.c): workers started together, or
 * forked from one parent after it drew, must draw different reconnect
 * delays and ids; draws stay within their ranges. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bullc-private.h"

enum { DRAWS = 4 };

/* DRAWS values drawn in a child process. */
static void child_draws(uint64_t out[DRAWS]) {
    int fd[2];
    cr_assert_eq(pipe(fd), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        uint64_t v[DRAWS];
        for (int i = 0; i < DRAWS; i++) v[i] = bullc__random_u64();
        _exit(write(fd[1], v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fd[1]);
    ssize_t n = read(fd[0], out, sizeof(uint64_t) * DRAWS);
    close(fd[0]);
    int status = 0;
    if (n != (ssize_t)(sizeof(uint64_t) * DRAWS)) kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    cr_assert_eq(n, (ssize_t)(sizeof(uint64_t) * DRAWS));
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

Test(random, processes_draw_different_sequences) {
    uint64_t seq[5][DRAWS];
    /* two processes that seed themselves (nothing drawn before the fork),
     * as workers started together */
    child_draws(seq[0]);
    child_draws(seq[1]);
    /* the parent draws, then two children forked from the seeded parent */
    for (int i = 0; i < DRAWS; i++) seq[2][i] = bullc__random_u64();
    child_draws(seq[3]);
    child_draws(seq[4]);
    for (int a = 0; a < 5; a++)
        for (int b = a + 1; b < 5; b++)
            cr_assert(memcmp(seq[a], seq[b], sizeof seq[a]) != 0, "sequences %d and %d are the same", a, b);
    /* and the parent's next draws are not any child's */
    uint64_t next[DRAWS];
    for (int i = 0; i < DRAWS; i++) next[i] = bullc__random_u64();
    for (int a = 0; a < 5; a++) cr_assert(memcmp(next, seq[a], sizeof next) != 0);
}

Test(random, ranges) {
    int seen[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t r = bullc__random_below(7);
        cr_assert_lt(r, 7);
        seen[r]++;
        double d = bullc__random01();
        cr_assert(d >= 0 && d < 1);
    }
    for (int i = 0; i < 7; i++) cr_assert_gt(seen[i], 700, "value %d drawn %d times in 7000", i, seen[i]);
    cr_assert_eq(bullc__random_below(0), 0);
    cr_assert_eq(bullc__random_below(1), 0);
    unsigned char b[13] = {0}, z[13] = {0};
    bullc__random_bytes(b, sizeof b);
    cr_assert(memcmp(b, z, sizeof b) != 0);
}
