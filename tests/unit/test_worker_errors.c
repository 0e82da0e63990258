/* SPDX-License-Identifier: MIT */
/* The worker's error events: the same error repeated is held back and
 * counted, a different one always shows (one error must never hide another). */
#include <criterion/criterion.h>
#include <string.h>

#include "bullc-private.h"

static char seen[8][600];
static int nseen;

static void on_error(bullc_worker *w, int code, const char *msg, void *data) {
    (void)w, (void)code, (void)data;
    if (nseen < 8) snprintf(seen[nseen++], sizeof seen[0], "%s", msg);
}

Test(worker_errors, only_identical_errors_are_held_back) {
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    bullc_worker w;
    memset(&w, 0, sizeof w);
    w.loop = &loop;
    w.ev.error = on_error;
    w.last_error_at = -100000;
    bullc__worker_error(&w, BULLC_EREDIS, "job %d: boom", 1);
    for (int i = 0; i < 50; i++) bullc__worker_error(&w, BULLC_EREDIS, "job %d: boom", 1);
    cr_assert_eq(nseen, 1, "50 repeats held back");
    bullc__worker_error(&w, BULLC_EREDIS, "job %d: %s", 1, "ERR hash value is not an integer");
    cr_assert_eq(nseen, 3, "a different error shows at once, after the count of the held-back one");
    cr_assert_str_eq(seen[1], "job 1: boom (repeated 50 more times)");
    cr_assert_str_eq(seen[2], "job 1: ERR hash value is not an integer");
    bullc__worker_error(&w, BULLC_ECONN, "job %d: boom", 2);
    cr_assert_eq(nseen, 4, "another job's error is another error");
    cr_assert_eq(uv_loop_close(&loop), 0);
}
