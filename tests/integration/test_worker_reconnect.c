/* SPDX-License-Identifier: MIT */
/* Redis restarts under a working worker: reconnect with backoff, lose
 * nothing, complete nothing twice. Uses redis-servers of its own (AOF, fsync
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
 * runs within drainDelay + 2 s of Redis coming back, with no new add. The
 * three run at once, each with a redis-server and a worker of its own on one
 * loop: the test lasts as long as the longest outage instead of the sum. ---- */
typedef struct outage {
    private_redis r;
    uv_timer_t t;
    int step;
    int down_ms;
    int completed;
    int64_t up_at, done_at;
} outage;

static void outage_proc(bullc_job *job, void *data) {
    outage *o = data;
    o->completed++;
    o->done_at = tu_now_ms();
    bullc_job_complete(job, "1");
}

static void outage_tick(uv_timer_t *t) {
    outage *o = t->data;
    if (o->step++ == 0) {
        bullc_redis_opts *ro;
        bullc_redis_opts_new(&ro);
        bullc_redis_opts_parse_url(ro, o->r.url, NULL);
        bullc_queue_opts *qo = tu_qopts();
        bullc_queue_opts_set_redis(qo, ro);
        bullc_queue_opts_set_prefix(qo, "out");
        bullc_redis_opts_free(ro);
        bullc_queue *q;
        cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
        bullc_job_opts *jo;
        bullc_job_opts_new(&jo);
        bullc_job_opts_set_delay(jo, 300);
        cr_assert_geq(bullc_queue_add(q, "job", "{}", jo, NULL, NULL), 0);
        bullc_job_opts_free(jo);
        bullc_queue_free(q);
        pr_kill(&o->r);
        uv_timer_start(t, outage_tick, (uint64_t)o->down_ms, 0);
        return;
    }
    pr_up(&o->r);
    o->up_at = tu_now_ms();
    uv_close((uv_handle_t *)t, NULL);
}

Test(reconnect, outages_1s_6s_60s, .timeout = 120) {
    enum { N = 3 };
    static const int down_ms[N] = {1000, 6000, 60000};
    outage o[N];
    wh h;
    wh_init(&h);
    h.want = N;
    for (int i = 0; i < N; i++) {
        o[i] = (outage){.down_ms = down_ms[i]};
        pr_start(&o[i].r, "--appendonly yes --appendfsync always");
        bullc_redis_opts *ro;
        bullc_redis_opts_new(&ro);
        bullc_redis_opts_parse_url(ro, o[i].r.url, NULL);
        bullc_redis_opts_set_timeouts(ro, 1000, 2000);
        bullc_worker_opts *wo = wh_opts("out");
        bullc_worker_opts_set_redis(wo, ro);
        bullc_redis_opts_free(ro);
        bullc_worker_opts_set_processor(wo, outage_proc, &o[i]);
        bullc_worker_opts_set_drain_delay(wo, 1);
        wh_add_worker(&h, "q", wo);
        uv_timer_init(&h.loop, &o[i].t);
        o[i].t.data = &o[i];
        uv_timer_start(&o[i].t, outage_tick, 600, 0);
    }
    wh_run(&h, 60000 + 30000);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(o[i].completed, 1, "outage %d ms: completed %d times", o[i].down_ms, o[i].completed);
        int64_t after = o[i].done_at - o[i].up_at;
        cr_log_info("outage %d ms: the job ran %lld ms after Redis came back", o[i].down_ms, (long long)after);
        cr_assert_leq(after, 1000 + 2000, "outage %d ms: ran %lld ms after Redis came back (bound drainDelay + 2 s)",
                      o[i].down_ms, (long long)after);
        pr_stop(&o[i].r);
    }
}

/* ---- progress and logs written while Redis restarts ------------------------- */

enum { WRITES = 3000, PER_TICK = 5 };

typedef struct writer {
    wh *h;
    bullc_job *job;
    uv_timer_t tick, restart;
    int n;            /* progress updates and log lines written so far (each) */
    int down_at;      /* n when Redis was killed */
    uint64_t down_ms; /* uv_now then */
    bool up_again;
} writer;

static void bring_up(uv_timer_t *t) {
    writer *w = t->data;
    redis_up();
    w->up_again = true;
    uv_close((uv_handle_t *)t, NULL);
}

static void write_tick(uv_timer_t *t) {
    writer *w = t->data;
    for (int i = 0; i < PER_TICK && w->n < WRITES; i++, w->n++) {
        char buf[64];
        snprintf(buf, sizeof buf, "{\"i\":%d}", w->n);
        cr_assert_eq(bullc_job_update_progress(w->job, buf, NULL, NULL), 0, "kept, not refused (n=%d)", w->n);
        snprintf(buf, sizeof buf, "line %d", w->n);
        cr_assert_eq(bullc_job_log(w->job, buf, NULL, NULL), 0, "kept, not refused (n=%d)", w->n);
    }
    if (!w->down_at && w->n >= WRITES / 3) {
        redis_down(); /* a third written; the next ones while it is away */
        w->down_at = w->n;
        w->down_ms = uv_now(t->loop);
    }
    if (w->n == WRITES) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        /* Redis comes back only once every write is made (a slow loop under
         * a sanitizer and load may take longer than the outage), and after
         * 800 ms away at least */
        uint64_t away = uv_now(t->loop) - w->down_ms;
        uv_timer_start(&w->restart, bring_up, away < 800 ? 800 - away : 0, 0);
        bullc_job_complete(w->job, "\"done\"");
    }
}

static void writing_proc(bullc_job *job, void *data) {
    writer *w = data;
    w->job = job;
    uv_timer_init(&w->h->loop, &w->tick);
    w->tick.data = w;
    uv_timer_start(&w->tick, write_tick, 1, 1);
}

Test(reconnect, progress_and_logs_written_while_redis_restarts_are_kept) {
    redis_up();
    bullc_queue *q = queue_on_private("pl");
    cr_assert_geq(bullc_queue_add(q, "job", "{}", NULL, NULL, NULL), 0);
    bullc_queue_free(q);
    wh h;
    wh_init(&h);
    h.want = 1;
    writer w = {.h = &h};
    uv_timer_init(&h.loop, &w.restart);
    w.restart.data = &w;
    bullc_worker_opts *o = opts_private("pl");
    bullc_worker_opts_set_processor(o, writing_proc, &w);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 60000);
    cr_assert(w.up_again && w.down_at > 0);
    cr_assert_eq(h.completed, 1);
    cr_log_info("errors (%d):\n%s", h.errors, h.errlog);
    cr_assert_leq(h.errors, 12, "no flood of warnings for %d actions made while Redis was away", WRITES * 2);

    redisContext *c = pr_connect(&pr);
    char *progress = tu_hget(c, "pl:q:1", "progress");
    cr_assert_str_eq(progress, "{\"i\":2999}", "the last progress is the job's");
    free(progress);
    /* every line, in order; a command in flight when Redis died may have
     * been applied and is sent again (as ioredis resends), so a few repeats */
    redisReply *logs = tu_cmd(c, "LRANGE pl:q:1:logs 0 -1");
    int next = 0;
    for (size_t i = 0; i < logs->elements; i++) {
        char want[32];
        snprintf(want, sizeof want, "line %d", next);
        if (next < WRITES && !strcmp(logs->element[i]->str, want)) next++;
    }
    cr_assert_eq(next, WRITES, "all %d lines in order (found up to line %d of %zu stored)", WRITES, next,
                 logs->elements);
    cr_assert_leq(logs->elements, WRITES + 100, "repeats only from the commands in flight");
    freeReplyObject(logs);
    /* the completion came after the last progress */
    redisReply *ev = tu_cmd(c, "XRANGE pl:q:events - +");
    long last_progress = -1, completed_at = -1, progress_events = 0;
    for (size_t i = 0; i < ev->elements; i++) {
        redisReply *f = ev->element[i]->element[1];
        if (f->elements < 2) continue;
        if (!strcmp(f->element[1]->str, "progress")) last_progress = (long)i, progress_events++;
        if (!strcmp(f->element[1]->str, "completed")) completed_at = (long)i;
    }
    cr_assert_geq(progress_events, WRITES, "a progress event for each update");
    cr_assert_gt(completed_at, last_progress, "completed after its progress");
    freeReplyObject(ev);
    redisFree(c);
}
