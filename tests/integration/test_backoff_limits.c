/* SPDX-License-Identifier: MIT */
/* Retry delays beyond what an int64 holds (a producer may store any JSON
 * number): the worker hands them to moveToDelayed as Node does, so the job
 * waits in the delayed set instead of being retried at once. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "worker_harness.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(backoff_limits, .init = setup, .fini = teardown, .timeout = 60);

static void always_fail(bullc_job *job, void *data) {
    (void)data;
    bullc_job_fail(job, "boom", 0);
}

static uv_timer_t stop;
static void stop_cb(uv_timer_t *t) {
    wh_close_all(t->data, false);
    uv_close((uv_handle_t *)t, NULL);
}

/* One job whose stored opts are `opts_json`, run under a failing processor
 * for `ms`; returns the job's id (static). */
static const char *run_failing(const char *prefix, const char *opts_json, int ms, wh *h) {
    bullc_queue *q = tu_queue("huge", prefix);
    char *id = NULL;
    cr_assert_geq(bullc_queue_add(q, "j", "{}", NULL, &id, NULL), 0);
    static char sid[32];
    snprintf(sid, sizeof sid, "%s", id);
    bullc_free(id);
    bullc_queue_free(q);
    /* what a Node producer (or anyone) may store: Node's own add takes it */
    freeReplyObject(tu_cmd(rc, "HSET %s:huge:%s opts %s", prefix, sid, opts_json));
    wh_init(h);
    bullc_worker_opts *o = wh_opts(prefix);
    bullc_worker_opts_set_processor(o, always_fail, NULL);
    wh_add_worker(h, "huge", o);
    uv_timer_init(&h->loop, &stop);
    stop.data = h;
    uv_timer_start(&stop, stop_cb, (uint64_t)ms, 0);
    return sid;
}

static void check_parked(const char *prefix, const char *id, const wh *h, const char *delay_field) {
    cr_assert_eq(h->retried, 1, "one failure, then the job waits (retried %d, failed %d)", h->retried, h->failed);
    cr_assert_eq(h->failed, 0);
    char key[128];
    snprintf(key, sizeof key, "%s:huge:%s", prefix, id);
    char *atm = tu_hget(rc, key, "atm"), *delay = tu_hget(rc, key, "delay");
    cr_assert_str_eq(atm, "1", "one attempt made");
    cr_assert_str_eq(delay, delay_field, "the delay as Node's String(delay) sends it");
    free(atm);
    free(delay);
    redisReply *r = tu_cmd(rc, "ZSCORE %s:huge:delayed %s", prefix, id);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "the job is in the delayed set");
    cr_assert_gt(strtod(r->str, NULL), 4096.0 * 1e18, "scored past any real time (%s)", r->str);
    freeReplyObject(r);
}

/* A job whose stored opts are `opts_json` fails once, then waits. */
static void parks(const char *opts_json, const char *delay_field) {
    const char *prefix = tu_prefix();
    wh h;
    const char *id = run_failing(prefix, opts_json, 1500, &h);
    wh_run(&h, 10000);
    check_parked(prefix, id, &h, delay_field);
}

Test(backoff_limits, delay_past_int64_parks_the_job) {
    parks("{\"attempts\":5,\"backoff\":{\"type\":\"fixed\",\"delay\":1e19}}", "10000000000000000000");
}

Test(backoff_limits, delay_1e308_parks_the_job) {
    parks("{\"attempts\":1000,\"backoff\":{\"type\":\"fixed\",\"delay\":1e308}}", "1e+308");
}

/* attempt 1 of an exponential: 2^0 * 1e300, far beyond int64 already */
Test(backoff_limits, exponential_overflow_parks_the_job) {
    parks("{\"attempts\":5,\"backoff\":{\"type\":\"exponential\",\"delay\":1e300}}", "1e+300");
}
