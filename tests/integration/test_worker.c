/* SPDX-License-Identifier: MIT */
/* Worker library against a real redis-server: processing, results,
 * failures, retries, events, a clean loop at the end. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "testutil.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(worker, .init = setup, .fini = teardown, .timeout = 60);

typedef struct ctx {
    uv_loop_t loop;
    bullc_worker *w;
    int completed, failed, retried, active, drained;
    int want; /* close when completed + failed reaches it */
    bool closed;
    char order[64][32];
    int norder;
    uv_timer_t guard;
} ctx;

static void on_closed(bullc_worker *w, void *data) {
    ctx *c = data;
    (void)w;
    c->closed = true;
}

static void maybe_done(ctx *c) {
    if (c->completed + c->failed >= c->want) bullc_worker_close(c->w, false, 5000, on_closed, c);
}

static void ev_completed(bullc_worker *w, const bullc_job *job, const char *res, void *data) {
    ctx *c = data;
    (void)w, (void)res;
    if (c->norder < 64) snprintf(c->order[c->norder++], 32, "%s", bullc_job_id(job));
    c->completed++;
    maybe_done(c);
}

static void ev_failed(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data) {
    ctx *c = data;
    (void)w, (void)job, (void)reason;
    if (will_retry)
        c->retried++;
    else {
        c->failed++;
        maybe_done(c);
    }
}

static void ev_active(bullc_worker *w, const bullc_job *job, void *data) {
    (void)w, (void)job;
    ((ctx *)data)->active++;
}

/* echo processor: returns {"echo": data}; fails when data has "fail" */
static void echo(bullc_job *job, void *data) {
    (void)data;
    if (strstr(bullc_job_data(job), "\"fail\"")) {
        bullc_job_fail(job, "asked to fail", 0);
        return;
    }
    char *res = malloc(strlen(bullc_job_data(job)) + 16);
    sprintf(res, "{\"echo\":%s}", bullc_job_data(job));
    bullc_job_complete(job, res);
    free(res);
}

static void guard_cb(uv_timer_t *t) {
    ctx *c = t->data;
    cr_log_error("test guard fired: completed=%d failed=%d", c->completed, c->failed);
    bullc_worker_close(c->w, true, 0, on_closed, c);
}

static void run(ctx *c, const char *prefix, bullc_worker_opts *o) {
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_worker_opts_set_redis(o, ro);
    bullc_worker_opts_set_prefix(o, prefix);
    bullc_worker_events ev = {0};
    ev.completed = ev_completed;
    ev.failed = ev_failed;
    ev.active = ev_active;
    bullc_error err = {0};
    cr_assert_eq(bullc_worker_new(&c->w, &c->loop, "q", o, &ev, c, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    uv_timer_init(&c->loop, &c->guard);
    c->guard.data = c;
    uv_timer_start(&c->guard, guard_cb, 20000, 0);
    uv_unref((uv_handle_t *)&c->guard);
    while (!c->closed) uv_run(&c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&c->guard, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    bullc_worker_free(c->w);
    cr_assert_eq(uv_loop_close(&c->loop), 0, "the loop must close clean");
}

Test(worker, processes_jobs_and_stores_results) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    for (int i = 0; i < 5; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        cr_assert_geq(bullc_queue_add(q, "job", data, NULL, NULL, NULL), 0);
    }
    ctx c = {0};
    uv_loop_init(&c.loop);
    c.want = 5;
    bullc_worker_opts *o = tu_wopts();
    bullc_worker_opts_set_processor(o, echo, NULL);
    bullc_worker_opts_set_concurrency(o, 2);
    run(&c, p, o);
    cr_assert_eq(c.completed, 5);
    cr_assert_eq(c.active, 5);
    char key[128];
    snprintf(key, sizeof key, "%s:q:1", p);
    char *rv = tu_hget(rc, key, "returnvalue");
    cr_assert_str_eq(rv, "{\"echo\":{\"i\":0}}");
    free(rv);
    redisReply *r = tu_cmd(rc, "ZCARD %s:q:completed", p);
    cr_assert_eq(r->integer, 5);
    freeReplyObject(r);
    r = tu_cmd(rc, "LLEN %s:q:active", p);
    cr_assert_eq(r->integer, 0);
    freeReplyObject(r);
    bullc_queue_free(q);
}

Test(worker, failures_retry_then_fail_with_reason) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_job_opts *jo;
    bullc_job_opts_new(&jo);
    bullc_job_opts_merge_json(jo, "{\"attempts\":3,\"backoff\":{\"type\":\"fixed\",\"delay\":200}}", NULL);
    cr_assert_geq(bullc_queue_add(q, "job", "{\"fail\":1}", jo, NULL, NULL), 0);
    bullc_job_opts_free(jo);
    ctx c = {0};
    uv_loop_init(&c.loop);
    c.want = 1;
    bullc_worker_opts *o = tu_wopts();
    bullc_worker_opts_set_processor(o, echo, NULL);
    bullc_worker_opts_set_drain_delay(o, 1);
    run(&c, p, o);
    cr_assert_eq(c.failed, 1);
    cr_assert_eq(c.retried, 2);
    char key[128];
    snprintf(key, sizeof key, "%s:q:1", p);
    char *reason = tu_hget(rc, key, "failedReason");
    cr_assert_str_eq(reason, "asked to fail");
    char *atm = tu_hget(rc, key, "atm");
    cr_assert_str_eq(atm, "3");
    char *st = tu_hget(rc, key, "stacktrace");
    cr_assert(st && st[0] == '[', "stacktrace must be a JSON array: %s", st);
    free(reason), free(atm), free(st);
    bullc_queue_free(q);
}
