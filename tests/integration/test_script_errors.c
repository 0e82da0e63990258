/* SPDX-License-Identifier: MIT */
/* A BullMQ script that answers an error may still have written: the worker
 * reads the job's state back instead of assuming nothing happened, and its
 * error events never hide one error behind another. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "worker_harness.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(script_errors, .init = setup, .fini = teardown, .timeout = 60);

static void always_fail(bullc_job *job, void *data) {
    (void)data;
    bullc_job_fail(job, "boom", 0);
}

static const char *g_prefix;

static bool in_failed(const char *id) {
    redisReply *r = tu_cmd(rc, "ZSCORE %s:supp:failed %s", g_prefix, id);
    bool yes = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return yes;
}

static void poll_cb(uv_timer_t *t) {
    wh *h = t->data;
    if (h->guard_fired) { /* the guard closes the workers */
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    if (!in_failed("2")) return; /* job 2 is the last to end in both tests */
    uv_close((uv_handle_t *)t, NULL);
    wh_close_all(h, false);
}

/* A worker with a failing processor, until job 2 is failed (or 15 s, less
 * than lockDuration: job 2 ends by the worker, not by stalled recovery). */
static void run_until_job2_ends(wh *h) {
    wh_init(h);
    bullc_worker_opts *o = wh_opts(g_prefix);
    bullc_worker_opts_set_processor(o, always_fail, NULL);
    wh_add_worker(h, "supp", o);
    uv_timer_t poll;
    uv_timer_init(&h->loop, &poll);
    poll.data = h;
    uv_timer_start(&poll, poll_cb, 200, 200);
    wh_run(h, 15000);
}

/* Job 1 fails with an unknown backoff type (so: failed, not retried), and
 * moveToFinished fetches job 2 in the same call, whose hash has a non-integer
 * `ats`: the script moves job 1 to failed and job 2 to active, then Redis
 * answers ERR. Before, the worker sent the finish again ("Missing lock"),
 * never reported job 1's failure, hid Redis's error behind a "similar" one,
 * and job 2 went round between active and the stalled checker for ever; now
 * the worker finds job 2 under its token and processes it. */
Test(script_errors, error_after_writes_is_read_back) {
    g_prefix = tu_prefix();
    bullc_queue *q = tu_queue("supp", g_prefix);
    bullc_job_opts *jo;
    bullc_job_opts_new(&jo);
    cr_assert_eq(bullc_job_opts_merge_json(jo, "{\"attempts\":3,\"backoff\":{\"type\":\"custom\"}}", NULL), 0);
    char *id = NULL;
    cr_assert_geq(bullc_queue_add(q, "j", "{}", jo, &id, NULL), 0);
    cr_assert_str_eq(id, "1");
    bullc_free(id);
    cr_assert_geq(bullc_queue_add(q, "j", "{}", NULL, &id, NULL), 0);
    cr_assert_str_eq(id, "2");
    bullc_free(id);
    bullc_job_opts_free(jo);
    bullc_queue_free(q);
    freeReplyObject(tu_cmd(rc, "HSET %s:supp:2 ats abc", g_prefix));

    wh h;
    run_until_job2_ends(&h);
    cr_log_info("errors:\n%s", h.errlog);
    cr_assert_not(h.guard_fired, "job 2 ended, not active for ever");
    cr_assert(strstr(h.errlog, "hash value is not an integer"), "Redis's own error is reported");
    cr_assert_null(strstr(h.errlog, "Missing lock"), "the finish is not sent again after it was stored");
    cr_assert_null(strstr(h.errlog, "suppressed"), "no error hidden behind another");
    cr_assert_eq(h.failed, 2, "job 1's failure is reported, and job 2's: the worker processed it");
    for (int i = 1; i <= 2; i++) {
        char key[128];
        snprintf(key, sizeof key, "%s:supp:%d", g_prefix, i);
        char *reason = tu_hget(rc, key, "failedReason");
        cr_assert_str_eq(reason, "boom", "job %d failed by its processor", i);
        free(reason);
    }
    redisReply *r = tu_cmd(rc, "LLEN %s:supp:active", g_prefix);
    cr_assert_eq(r->integer, 0, "nothing left active");
    freeReplyObject(r);
}

/* The same without job 1: a plain moveToActive takes job 2 and errors. */
Test(script_errors, fetch_error_after_taking_a_job_processes_it) {
    g_prefix = tu_prefix();
    bullc_queue *q = tu_queue("supp", g_prefix);
    char *id = NULL;
    cr_assert_geq(bullc_queue_add(q, "j", "{}", NULL, &id, NULL), 0);
    bullc_free(id);
    cr_assert_geq(bullc_queue_add(q, "j", "{}", NULL, &id, NULL), 0);
    cr_assert_str_eq(id, "2");
    bullc_free(id);
    bullc_queue_free(q);
    freeReplyObject(tu_cmd(rc, "HSET %s:supp:2 ats abc", g_prefix));
    freeReplyObject(tu_cmd(rc, "LREM %s:supp:wait 0 1", g_prefix)); /* job 2 alone in wait */

    wh h;
    run_until_job2_ends(&h);
    cr_log_info("errors:\n%s", h.errlog);
    cr_assert_not(h.guard_fired, "job 2 ended, not active for ever");
    cr_assert(strstr(h.errlog, "hash value is not an integer"), "Redis's own error is reported");
    cr_assert_eq(h.failed, 1);
    redisReply *r = tu_cmd(rc, "LLEN %s:supp:active", g_prefix);
    cr_assert_eq(r->integer, 0, "nothing left active");
    freeReplyObject(r);
}
