/* SPDX-License-Identifier: MIT */
/* bullc_worker_stats against a real redis-server: the counters equal the
 * jobs processed, failed attempts and lost locks; the duration histogram
 * counts every finish, cumulatively; a clean loop at the end. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "testutil.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(stats, .init = setup, .fini = teardown, .timeout = 60);

typedef struct ctx {
    uv_loop_t loop;
    bullc_worker *w;
    bullc_stats *seen; /* a snapshot taken inside the last finish event */
    const char *prefix;
    int finished, want, lock_lost;
    bool closed, up_while_running;
    uv_timer_t guard, later;
} ctx;

static void on_closed(bullc_worker *w, void *data) {
    (void)w;
    ((ctx *)data)->closed = true;
}

static void finished(ctx *c) {
    if (++c->finished < c->want) return;
    cr_assert_eq(bullc_worker_stats(c->w, c->seen), 0);
    c->up_while_running = bullc_stats_redis_up(c->seen);
    bullc_worker_close(c->w, false, 5000, on_closed, c);
}

static void ev_completed(bullc_worker *w, const bullc_job *job, const char *res, void *data) {
    (void)w, (void)job, (void)res;
    finished(data);
}

static void ev_failed(bullc_worker *w, const bullc_job *job, const char *reason, bool will_retry, void *data) {
    (void)w, (void)job, (void)reason, (void)will_retry;
    finished(data);
}

static void ev_lock_lost(bullc_worker *w, const bullc_job *job, void *data) {
    ctx *c = data;
    (void)w, (void)job;
    c->lock_lost++;
    bullc_worker_close(c->w, false, 5000, on_closed, c);
}

/* data {"ms":N} completes after N ms; {"fail":1} fails; {"steal":N} loses
 * its lock (another worker takes it) and completes after N ms, too late */
static void finish_later(uv_timer_t *t) {
    bullc_job *job = t->data;
    bullc_job_complete(job, "1");
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
}

static void proc(bullc_job *job, void *data) {
    ctx *c = data;
    const char *d = bullc_job_data(job);
    if (strstr(d, "\"fail\"")) {
        bullc_job_fail(job, "asked to", 0);
    } else if (strstr(d, "\"ms\"") || strstr(d, "\"steal\"")) {
        /* steal: another worker takes the lock; this one's result, later, is dropped */
        if (strstr(d, "\"steal\""))
            freeReplyObject(tu_cmd(rc, "SET %s:q:%s:lock someone-else", c->prefix, bullc_job_id(job)));
        uv_timer_t *t = malloc(sizeof *t);
        uv_timer_init(&c->loop, t);
        t->data = job;
        uv_timer_start(t, finish_later, (uint64_t)atoi(strchr(d, ':') + 1), 0);
    } else {
        bullc_job_complete(job, "1");
    }
}

static void guard_cb(uv_timer_t *t) {
    ctx *c = t->data;
    cr_log_error("guard fired: %d finished", c->finished);
    bullc_worker_close(c->w, true, 0, on_closed, c);
}

/* Runs a worker on queue q until it closes; its stats after the close in *out. */
static void run(ctx *c, bullc_worker_opts *o, bullc_stats *out) {
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_worker_opts_set_redis(o, ro);
    bullc_worker_opts_set_prefix(o, c->prefix);
    bullc_worker_opts_set_processor(o, proc, c);
    bullc_worker_events ev = {.completed = ev_completed, .failed = ev_failed, .lock_lost = ev_lock_lost};
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
    cr_assert_eq(bullc_worker_stats(c->w, out), 0);
    bullc_worker_free(c->w);
    cr_assert_eq(uv_loop_close(&c->loop), 0, "the loop must close clean");
}

Test(stats, counters_and_histogram_equal_what_was_processed) {
    ctx c = {.prefix = tu_prefix(), .want = 7};
    bullc_queue *q = tu_queue("q", c.prefix);
    bullc_job_opts *jo;
    bullc_job_opts_new(&jo);
    bullc_job_opts_merge_json(jo, "{\"attempts\":2}", NULL);
    cr_assert_geq(bullc_queue_add(q, "f", "{\"fail\":1}", jo, NULL, NULL), 0); /* 2 failed attempts */
    bullc_job_opts_free(jo);
    for (int i = 0; i < 4; i++) cr_assert_geq(bullc_queue_add(q, "ok", "{}", NULL, NULL, NULL), 0);
    cr_assert_geq(bullc_queue_add(q, "slow", "{\"ms\":30}", NULL, NULL, NULL), 0);
    uv_loop_init(&c.loop);
    bullc_stats *after;
    cr_assert_eq(bullc_stats_new(&c.seen), 0);
    cr_assert_eq(bullc_stats_new(&after), 0);
    cr_assert_eq(bullc_stats_completed(after), 0, "a new snapshot is zeroed");
    bullc_worker_opts *o = tu_wopts();
    bullc_worker_opts_set_concurrency(o, 1);
    run(&c, o, after);
    cr_assert(c.up_while_running, "Redis is up while the worker runs");
    cr_assert_eq(bullc_stats_completed(after), 5);
    cr_assert_eq(bullc_stats_failed(after), 2, "each failed attempt, the retried one too");
    cr_assert_eq(bullc_stats_lock_lost(after), 0);
    cr_assert_eq(bullc_stats_reconnects(after), 0);
    cr_assert_eq(bullc_stats_active(after), 0);
    cr_assert_eq(bullc_stats_duration_count(after), 7);
    cr_assert(bullc_stats_duration_sum(after) >= 0.030, "the slow job's 30 ms are in the sum: %f",
              bullc_stats_duration_sum(after));
    size_t nb = bullc_stats_duration_buckets(after);
    cr_assert_eq(nb, 12);
    double le, prev_le = 0;
    uint64_t prev = 0;
    for (size_t i = 0; i < nb; i++) {
        uint64_t n = bullc_stats_duration_bucket(after, i, &le);
        cr_assert(le > prev_le && n >= prev, "bounds rise and counts are cumulative at %zu", i);
        prev_le = le, prev = n;
    }
    cr_assert(isinf(le) && prev == 7, "the last bucket is +Inf and holds every finish");
    cr_assert_lt(bullc_stats_duration_bucket(after, 2, &le), 7, "the 30 ms job is above 0.025 s");
    cr_assert_eq(bullc_stats_duration_bucket(after, nb, NULL), 0, "out of range");
    cr_assert_eq(bullc_worker_stats(NULL, after), BULLC_EINVAL);
    bullc_stats_free(c.seen);
    bullc_stats_free(after);
    bullc_stats_free(NULL);
    bullc_queue_free(q);
}

Test(stats, a_lost_lock_is_counted) {
    ctx c = {.prefix = tu_prefix(), .want = 1};
    bullc_queue *q = tu_queue("q", c.prefix);
    cr_assert_geq(bullc_queue_add(q, "s", "{\"steal\":900}", NULL, NULL, NULL), 0);
    uv_loop_init(&c.loop);
    bullc_stats *after;
    cr_assert_eq(bullc_stats_new(&after), 0);
    cr_assert_eq(bullc_stats_new(&c.seen), 0);
    bullc_worker_opts *o = tu_wopts();
    bullc_worker_opts_set_lock_duration(o, 600); /* renewal every 150 ms */
    run(&c, o, after);
    cr_assert_eq(c.lock_lost, 1);
    cr_assert_eq(bullc_stats_lock_lost(after), 1);
    cr_assert_eq(bullc_stats_completed(after) + bullc_stats_failed(after), 0);
    cr_assert_eq(bullc_stats_duration_count(after), 0, "a job given up has no processing time");
    bullc_stats_free(after);
    bullc_stats_free(c.seen);
    bullc_queue_free(q);
}
