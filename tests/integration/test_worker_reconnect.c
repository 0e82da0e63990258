/* SPDX-License-Identifier: MIT */
/* Redis restarts under a working worker: reconnect with backoff, lose
 * nothing, complete nothing twice. Uses its own redis-server (AOF, fsync
 * always) so that the shared one is never restarted. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "private_redis.h"
#include "testutil.h"
#include "worker_harness.h"

static private_redis pr;

static void redis_up(void) { pr_up(&pr); }
/* SIGKILL after the AOF fsync: what a crash or a container restart does */
static void redis_down(void) { pr_kill(&pr); }

static void setup(void) { pr_init(&pr, "--appendonly yes --appendfsync always"); }
static void teardown(void) { pr_stop(&pr); }
TestSuite(reconnect, .init = setup, .fini = teardown, .timeout = 90);

static bullc_queue *queue_on_private(const char *prefix) {
    bullc_redis_opts *o;
    bullc_redis_opts_new(&o);
    bullc_redis_opts_parse_url(o, pr.url, NULL);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, o);
    bullc_queue_opts_set_prefix(qo, prefix);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
    bullc_redis_opts_free(o);
    return q;
}

typedef struct slow {
    uv_timer_t t;
    bullc_job *job;
} slow;
static void slow_done(uv_timer_t *t) {
    slow *s = t->data;
    bullc_job_complete(s->job, "1");
    uv_close((uv_handle_t *)&s->t, (uv_close_cb)free);
}
static void slow_proc(bullc_job *job, void *data) {
    wh *h = data;
    slow *s = calloc(1, sizeof *s);
    s->job = job;
    uv_timer_init(&h->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, slow_done, 10, 0);
}

typedef struct restart_ctx {
    wh *h;
    uv_timer_t t;
    int phase;
} restart_ctx;

static void restart_tick(uv_timer_t *t) {
    restart_ctx *r = t->data;
    if (r->phase == 0 && r->h->completed >= 40) {
        redis_down();
        r->phase = 1;
        uv_timer_start(t, restart_tick, 1200, 0); /* down for 1.2 s */
        return;
    }
    if (r->phase == 1) {
        redis_up();
        r->phase = 2;
        uv_close((uv_handle_t *)t, NULL);
        return;
    }
    uv_timer_start(t, restart_tick, 5, 0);
}

/* Worker options on the private Redis (freed at exit). */
static bullc_worker_opts *opts_private(const char *prefix) {
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, pr.url, NULL);
    bullc_redis_opts_set_timeouts(ro, 1000, 2000);
    bullc_worker_opts *o = wh_opts(prefix);
    bullc_worker_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    return o;
}

Test(reconnect, redis_restart_loses_nothing_and_completes_nothing_twice) {
    redis_up();
    const char *p = "rc";
    bullc_queue *q = queue_on_private(p);
    enum { N = 150 };
    bullc_bulk_job jobs[N];
    for (int i = 0; i < N; i++) jobs[i] = (bullc_bulk_job){"job", "{}", NULL, NULL, 0};
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add_bulk(q, jobs, N, &err), 0, "%s", err.message);
    for (int i = 0; i < N; i++) bullc_free(jobs[i].id);
    bullc_queue_free(q);

    wh h;
    wh_init(&h);
    h.want = N;
    bullc_worker_opts *o = opts_private(p);
    bullc_worker_opts_set_processor(o, slow_proc, &h);
    bullc_worker_opts_set_concurrency(o, 4);
    wh_add_worker(&h, "q", o);
    restart_ctx r = {&h, {0}, 0};
    uv_timer_init(&h.loop, &r.t);
    r.t.data = &r;
    uv_timer_start(&r.t, restart_tick, 5, 0);
    wh_run(&h, 60000);
    cr_assert_eq(r.phase, 2, "the restart happened");
    cr_assert_eq(h.completed, N, "every job completed locally once (got %d)", h.completed);
    cr_assert_geq(h.errors, 1, "the outage was reported");

    /* Redis's view: every job completed exactly once */
    redisContext *c = pr_connect(&pr);
    redisReply *z = tu_cmd(c, "ZCARD rc:q:completed");
    cr_assert_eq(z->integer, N);
    freeReplyObject(z);
    redisReply *ev = tu_cmd(c, "XRANGE rc:q:events - +");
    int *seen = calloc(N + 1, sizeof *seen);
    for (size_t i = 0; i < ev->elements; i++) {
        redisReply *f = ev->element[i]->element[1];
        if (f->elements >= 4 && !strcmp(f->element[1]->str, "completed")) {
            int id = atoi(f->element[3]->str);
            cr_assert(id >= 1 && id <= N);
            seen[id]++;
        }
    }
    for (int i = 1; i <= N; i++) cr_assert_eq(seen[i], 1, "job %d completed %d times", i, seen[i]);
    free(seen);
    freeReplyObject(ev);
    redisFree(c);
}

static void start_redis_later(uv_timer_t *t) {
    redis_up();
    uv_close((uv_handle_t *)t, NULL);
}

Test(reconnect, redis_down_at_start_then_up) {
    redis_up();
    bullc_queue *q = queue_on_private("late");
    cr_assert_geq(bullc_queue_add(q, "job", "{}", NULL, NULL, NULL), 0);
    bullc_queue_free(q);
    redis_down();
    wh h;
    wh_init(&h);
    h.want = 1;
    bullc_worker_opts *o = opts_private("late");
    bullc_worker_opts_set_processor(o, slow_proc, &h);
    wh_add_worker(&h, "q", o);
    uv_timer_t t;
    uv_timer_init(&h.loop, &t);
    uv_timer_start(&t, start_redis_later, 1500, 0);
    wh_run(&h, 20000);
    cr_assert_eq(h.completed, 1);
    cr_assert_geq(h.errors, 1, "the failed connects were reported");
}

/* ---- outages of 1 s, 6 s and 60 s: a delayed job that fell due meanwhile
 * runs within drainDelay + 2 s of Redis coming back, with no new add ---- */
typedef struct outage {
    wh *h;
    uv_timer_t t;
    int step;
    int down_ms;
    int64_t up_at, done_at;
} outage;

static void outage_proc(bullc_job *job, void *data) {
    outage *o = data;
    o->done_at = tu_now_ms();
    bullc_job_complete(job, "1");
}

static void outage_tick(uv_timer_t *t) {
    outage *o = t->data;
    if (o->step++ == 0) {
        bullc_queue *q = queue_on_private("out");
        bullc_job_opts *jo;
        bullc_job_opts_new(&jo);
        bullc_job_opts_set_delay(jo, 300);
        cr_assert_geq(bullc_queue_add(q, "job", "{}", jo, NULL, NULL), 0);
        bullc_job_opts_free(jo);
        bullc_queue_free(q);
        redis_down();
        uv_timer_start(t, outage_tick, (uint64_t)o->down_ms, 0);
        return;
    }
    redis_up();
    o->up_at = tu_now_ms();
    uv_close((uv_handle_t *)t, NULL);
}

static void outage_of(int down_ms) {
    redis_up();
    wh h;
    wh_init(&h);
    h.want = 1;
    outage o = {&h, {0}, 0, down_ms, 0, 0};
    bullc_worker_opts *wo = opts_private("out");
    bullc_worker_opts_set_processor(wo, outage_proc, &o);
    bullc_worker_opts_set_drain_delay(wo, 1);
    wh_add_worker(&h, "q", wo);
    uv_timer_init(&h.loop, &o.t);
    o.t.data = &o;
    uv_timer_start(&o.t, outage_tick, 600, 0);
    wh_run(&h, down_ms + 30000);
    cr_assert_eq(h.completed, 1);
    int64_t after = o.done_at - o.up_at;
    cr_log_info("outage %d ms: the job ran %lld ms after Redis came back", down_ms, (long long)after);
    cr_assert_leq(after, 1000 + 2000, "ran %lld ms after Redis came back (bound drainDelay + 2 s)", (long long)after);
}

Test(reconnect, outage_1s) { outage_of(1000); }
Test(reconnect, outage_6s) { outage_of(6000); }
Test(reconnect, outage_60s, .timeout = 120) { outage_of(60000); }
