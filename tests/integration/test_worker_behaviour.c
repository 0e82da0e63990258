/* SPDX-License-Identifier: MIT */
/* Worker behaviour against a real redis-server: blocking processors, pause,
 * close, stalled recovery, corrupt jobs, rate limits, timeouts, delays,
 * manual processing. Each test ends by proving the loop closed clean. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "worker_harness.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(behaviour, .init = setup, .fini = teardown, .timeout = 60);

static void add_n(bullc_queue *q, int n, const char *opts_json) {
    bullc_job_opts *o = tu_job_opts(opts_json);
    for (int i = 0; i < n; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        bullc_error err = {0};
        cr_assert_geq(bullc_queue_add(q, "job", data, o, NULL, &err), 0, "%s", err.message);
    }
    bullc_job_opts_free(o);
}

static long long zcard(const char *p, const char *k) {
    redisReply *r = tu_cmd(rc, "ZCARD %s:q:%s", p, k);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}
static long long llen(const char *p, const char *k) {
    redisReply *r = tu_cmd(rc, "LLEN %s:q:%s", p, k);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}
static char *jfield(const char *p, const char *id, const char *f) {
    char key[128];
    snprintf(key, sizeof key, "%s:q:%s", p, id);
    return tu_hget(rc, key, f);
}

/* ---- blocking processor on the thread pool, with progress and logs ---- */
static void blocking(bullc_job *job, bullc_job_result *out, void *data) {
    (void)data;
    usleep(20000); /* blocking work: must not stall the loop */
    cr_assert_eq(bullc_job_update_progress(job, "{\"pct\":50}", NULL, NULL), 0);
    cr_assert_eq(bullc_job_log(job, "half way", NULL, NULL), 0);
    out->result_json = strdup("42");
}

Test(behaviour, blocking_processor_with_progress_and_logs) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 4, "{\"keepLogs\":5}");
    wh h;
    wh_init(&h);
    h.want = 4;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_blocking_processor(o, blocking, NULL);
    bullc_worker_opts_set_concurrency(o, 4);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 20000);
    cr_assert_eq(h.completed, 4);
    char *rv = jfield(p, "2", "returnvalue"), *pr = jfield(p, "2", "progress");
    cr_assert_str_eq(rv, "42");
    cr_assert_str_eq(pr, "{\"pct\":50}");
    free(rv), free(pr);
    redisReply *r = tu_cmd(rc, "LRANGE %s:q:3:logs 0 -1", p);
    cr_assert_eq(r->elements, 1);
    cr_assert_str_eq(r->element[0]->str, "half way");
    freeReplyObject(r);
    bullc_queue_free(q);
}

/* ---- graceful close waits for the job in process ---- */
typedef struct slow {
    uv_timer_t t;
    bullc_job *job;
} slow;
static void slow_done(uv_timer_t *t) {
    slow *s = t->data;
    bullc_job_complete(s->job, "\"slow\"");
    uv_close((uv_handle_t *)&s->t, (uv_close_cb)free);
}
static void slow_proc(bullc_job *job, void *data) {
    wh *h = data;
    slow *s = calloc(1, sizeof *s);
    s->job = job;
    uv_timer_init(&h->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, slow_done, 300, 0);
    /* ask to close while the job is in process */
    if (h->user == NULL) {
        h->user = job;
        wh_close_all(h, false);
    }
}

Test(behaviour, graceful_close_finishes_the_job_in_process) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 3, NULL);
    wh h;
    wh_init(&h);
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, slow_proc, &h);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 10000);
    cr_assert_eq(h.completed, 1, "exactly the job in process completes");
    cr_assert_eq(zcard(p, "completed"), 1);
    cr_assert_eq(llen(p, "wait"), 2, "no further job is taken while closing");
    cr_assert_eq(llen(p, "active"), 0);
    bullc_queue_free(q);
}

/* ---- forced close leaves the job; another worker recovers it ---- */
static void never_proc(bullc_job *job, void *data) {
    wh *h = data;
    h->user = job;
    wh_close_all(h, true); /* the job stays active with a lock that expires */
}
static void hold_then_release(uv_timer_t *t);

static void echo_proc(bullc_job *job, void *data) {
    (void)data;
    bullc_job_complete(job, bullc_job_data(job));
}

Test(behaviour, forced_close_then_stalled_recovery) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 1, NULL);
    wh h;
    wh_init(&h);
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, never_proc, &h);
    bullc_worker_opts_set_lock_duration(o, 500);
    wh_add_worker(&h, "q", o);
    /* the processor never hands the job back: closing completes only after
     * it does, so hand it back right after the forced close */
    h.want = 0;
    uv_timer_t t;
    uv_timer_init(&h.loop, &t);
    t.data = &h;
    uv_timer_start(&t, hold_then_release, 200, 0);
    uv_unref((uv_handle_t *)&t);
    wh_run(&h, 10000);
    cr_assert_eq(llen(p, "active"), 1, "a forced close leaves the job active");
    cr_assert_eq(zcard(p, "completed"), 0);

    wh h2;
    wh_init(&h2);
    h2.want = 1;
    bullc_worker_opts *o2 = wh_opts(p);
    bullc_worker_opts_set_processor(o2, echo_proc, NULL);
    bullc_worker_opts_set_stalled_interval(o2, 300);
    wh_add_worker(&h2, "q", o2);
    wh_run(&h2, 15000);
    cr_assert_eq(h2.completed, 1);
    cr_assert_geq(h2.stalled, 1, "the job is reported stalled");
    char *stc = jfield(p, "1", "stc");
    cr_assert_str_eq(stc, "1");
    free(stc);
    bullc_queue_free(q);
}
static void hold_then_release(uv_timer_t *t) {
    wh *h = t->data;
    if (h->user) bullc_job_fail(h->user, "released", 0); /* dropped: the worker is closed */
    uv_close((uv_handle_t *)t, NULL);
}

/* ---- a corrupt job fails with a clear reason; the next one runs ---- */
Test(behaviour, invalid_json_in_job_hash_fails_clearly) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 2, "{\"attempts\":3}");
    freeReplyObject(tu_cmd(rc, "HSET %s:q:1 data {broken", p));
    wh h;
    wh_init(&h);
    h.want = 2;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, echo_proc, NULL);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 10000);
    cr_assert_eq(h.failed, 1);
    cr_assert_eq(h.retried, 0, "corrupt data is not retried");
    cr_assert_eq(h.completed, 1);
    char *reason = jfield(p, "1", "failedReason");
    cr_assert(reason && strstr(reason, "invalid JSON in its data"), "%s", reason);
    free(reason);
    bullc_queue_free(q);
}

/* ---- manual rate limit: the job goes back without an attempt ---- */
static void limited_proc(bullc_job *job, void *data) {
    wh *h = data;
    if (!h->user) {
        h->user = (void *)1;
        bullc_worker_rate_limit(h->w[0], 400);
        bullc_job_fail(job, "bullmq:rateLimitExceeded", BULLC_FAIL_RATE_LIMITED);
        return;
    }
    bullc_job_complete(job, NULL);
}

Test(behaviour, rate_limited_job_goes_back_without_attempt) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 1, NULL);
    wh h;
    wh_init(&h);
    h.want = 1;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, limited_proc, &h);
    wh_add_worker(&h, "q", o);
    int64_t t0 = tu_now_ms();
    wh_run(&h, 10000);
    cr_assert_eq(h.completed, 1);
    cr_assert_eq(h.active, 2, "taken twice");
    cr_assert_geq(tu_now_ms() - t0, 350, "not before the rate limit ends");
    char *atm = jfield(p, "1", "atm");
    cr_assert_str_eq(atm, "1", "only the completed attempt counts");
    free(atm);
    bullc_queue_free(q);
}

/* ---- per-job deadline ---- */
static void late_proc(bullc_job *job, void *data) {
    wh *h = data;
    slow *s = calloc(1, sizeof *s);
    s->job = job;
    uv_timer_init(&h->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, slow_done, 800, 0);
}

Test(behaviour, job_timeout_fails_a_hung_job) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 1, NULL);
    wh h;
    wh_init(&h);
    h.want = 1;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, late_proc, &h);
    bullc_worker_opts_set_job_timeout(o, 200);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 10000);
    cr_assert_eq(h.failed, 1);
    cr_assert_eq(h.completed, 0, "the late result is dropped");
    char *reason = jfield(p, "1", "failedReason");
    cr_assert(reason && strstr(reason, "timed out"), "%s", reason);
    free(reason);
    cr_assert_eq(zcard(p, "completed"), 0);
    bullc_queue_free(q);
}

/* ---- a delayed job runs when due, with no new add to wake the worker ---- */
Test(behaviour, delayed_job_runs_when_due) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 1, "{\"delay\":700}");
    wh h;
    wh_init(&h);
    h.want = 1;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, echo_proc, NULL);
    bullc_worker_opts_set_drain_delay(o, 5);
    wh_add_worker(&h, "q", o);
    int64_t t0 = tu_now_ms();
    wh_run(&h, 10000);
    int64_t took = tu_now_ms() - t0;
    cr_assert_eq(h.completed, 1);
    cr_assert_geq(took, 550);
    cr_assert_lt(took, 2500, "the worker must wake up for the delayed job, not sleep the drain delay");
    bullc_queue_free(q);
}

/* ---- local pause / resume ---- */
static void resume_cb(uv_timer_t *t) {
    wh *h = t->data;
    cr_assert_eq(h->completed, 0, "a paused worker takes nothing");
    bullc_worker_resume(h->w[0]);
    uv_close((uv_handle_t *)t, NULL);
}

Test(behaviour, pause_and_resume) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 3, NULL);
    wh h;
    wh_init(&h);
    h.want = 3;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, echo_proc, NULL);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = wh_add_worker(&h, "q", o);
    bullc_worker_pause(w);
    cr_assert(bullc_worker_is_paused(w));
    cr_assert_eq(bullc_worker_run(w), 0);
    uv_timer_t t;
    uv_timer_init(&h.loop, &t);
    t.data = &h;
    uv_timer_start(&t, resume_cb, 300, 0);
    wh_run(&h, 10000);
    cr_assert_eq(h.completed, 3);
    bullc_queue_free(q);
}

/* ---- worker rate limiter ---- */
Test(behaviour, limiter_spaces_jobs) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 6, NULL);
    wh h;
    wh_init(&h);
    h.want = 6;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, echo_proc, NULL);
    bullc_worker_opts_set_concurrency(o, 4);
    bullc_worker_opts_set_limiter(o, 2, 400);
    wh_add_worker(&h, "q", o);
    int64_t t0 = tu_now_ms();
    wh_run(&h, 10000);
    cr_assert_eq(h.completed, 6);
    cr_assert_geq(tu_now_ms() - t0, 780, "6 jobs at 2 per 400 ms need at least two windows");
    bullc_queue_free(q);
}

/* ---- manual processing ---- */
static void got_job(bullc_worker *w, bullc_job *job, int code, void *data) {
    wh *h = data;
    cr_assert_eq(code, 0);
    cr_assert_not_null(job, "a job is waiting");
    cr_assert_str_eq(bullc_job_token(job), "my-token");
    cr_assert_str_eq(bullc_job_data(job), "{\"i\":0}");
    bullc_job_complete(job, "\"manual\"");
    (void)w;
    h->user = (void *)1;
}
static void manual_ready(uv_timer_t *t) {
    wh *h = t->data;
    if (!h->ready) return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    cr_assert_eq(bullc_worker_get_next_job(h->w[0], "my-token", false, got_job, h), 0);
}

Test(behaviour, manual_processing_with_a_token) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 1, NULL);
    wh h;
    wh_init(&h);
    h.want = 1;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_autorun(o, false);
    wh_add_worker(&h, "q", o);
    uv_timer_t t;
    uv_timer_init(&h.loop, &t);
    t.data = &h;
    uv_timer_start(&t, manual_ready, 10, 10);
    wh_run(&h, 10000);
    cr_assert_eq(h.completed, 1);
    char *rv = jfield(p, "1", "returnvalue");
    cr_assert_str_eq(rv, "\"manual\"");
    free(rv);
    bullc_queue_free(q);
}

/* ---- lock lost: the job is given up and never completed by this worker ---- */
static int lock_lost_events;
static const char *stolen_prefix;
static void on_lock_lost(bullc_worker *w, const bullc_job *job, void *data) {
    (void)w, (void)job, (void)data;
    lock_lost_events++;
}
static void steal_then_finish(uv_timer_t *t) {
    slow *s = t->data;
    bullc_job_complete(s->job, "\"too late\""); /* dropped: the lock is gone */
    uv_close((uv_handle_t *)&s->t, (uv_close_cb)free);
}
static void stolen_proc(bullc_job *job, void *data) {
    wh *h = data;
    /* another worker takes the lock (what happens after this one froze) */
    freeReplyObject(tu_cmd(rc, "SET %s:q:%s:lock someone-else", stolen_prefix, bullc_job_id(job)));
    slow *s = calloc(1, sizeof *s);
    s->job = job;
    uv_timer_init(&h->loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, steal_then_finish, 900, 0);
}
static void close_later(uv_timer_t *t) {
    wh_close_all(t->data, false);
    uv_close((uv_handle_t *)t, NULL);
}

Test(behaviour, lost_lock_gives_the_job_up) {
    const char *p = tu_prefix();
    stolen_prefix = p;
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 1, NULL);
    wh h;
    wh_init(&h);
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, stolen_proc, &h);
    bullc_worker_opts_set_lock_duration(o, 600); /* renewal every 150 ms */
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_worker_opts_set_redis(o, ro);
    bullc_worker_events ev = {0};
    ev.lock_lost = on_lock_lost;
    bullc_worker *w;
    cr_assert_eq(bullc_worker_new(&w, &h.loop, "q", o, &ev, &h, NULL), 0);
    bullc_redis_opts_free(ro);
    h.w[h.nworkers++] = w;
    uv_timer_t t;
    uv_timer_init(&h.loop, &t);
    t.data = &h;
    uv_timer_start(&t, close_later, 1500, 0);
    wh_run(&h, 10000);
    cr_assert_eq(lock_lost_events, 1);
    cr_assert_eq(zcard(p, "completed"), 0, "a worker that lost the lock never completes the job");
    char *rv = jfield(p, "1", "returnvalue");
    cr_assert_null(rv);
    bullc_queue_free(q);
}

/* ---- a job's progress and logs are stored before the job leaves active ---- */
static void progress_then_result(bullc_job *job, bullc_job_result *out, void *data) {
    (void)data;
    bullc_job_update_progress(job, "77", NULL, NULL);
    bullc_job_log(job, "last words", NULL, NULL);
    if (!strcmp(bullc_job_name(job), "bad"))
        out->result_json = strdup("{not json");
    else
        out->result_json = strdup("\"ok\"");
}

Test(behaviour, progress_lands_before_completion_and_bad_results_fail) {
    const char *p = tu_prefix();
    freeReplyObject(tu_cmd(rc, "SCRIPT FLUSH")); /* the worst case for ordering: scripts not cached */
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 3, NULL);
    cr_assert_geq(bullc_queue_add(q, "bad", "{}", NULL, NULL, NULL), 0);
    wh h;
    wh_init(&h);
    h.want = 4;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_blocking_processor(o, progress_then_result, NULL);
    bullc_worker_opts_set_concurrency(o, 2);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 10000);
    cr_assert_eq(h.completed, 3);
    cr_assert_eq(h.failed, 1, "a blocking processor's invalid JSON fails the job");
    redisReply *ev = tu_cmd(rc, "XRANGE %s:q:events - +", p);
    for (int id = 1; id <= 3; id++) {
        int progress_at = -1, completed_at = -1;
        char sid[8];
        snprintf(sid, sizeof sid, "%d", id);
        for (size_t i = 0; i < ev->elements; i++) {
            redisReply *f = ev->element[i]->element[1];
            if (f->elements < 4 || strcmp(f->element[3]->str, sid)) continue;
            if (!strcmp(f->element[1]->str, "progress")) progress_at = (int)i;
            if (!strcmp(f->element[1]->str, "completed")) completed_at = (int)i;
        }
        cr_assert(progress_at >= 0 && completed_at > progress_at, "job %d: progress %d, completed %d", id, progress_at,
                  completed_at);
    }
    freeReplyObject(ev);
    char *reason = jfield(p, "4", "failedReason");
    cr_assert(reason && strstr(reason, "invalid JSON"), "%s", reason);
    free(reason);
    bullc_queue_free(q);
}

/* ---- a custom backoff strategy (Node's settings.backoffStrategy) ---- */
static int64_t custom_backoff(int64_t attempts_made, const char *type, const char *error, const bullc_job *job,
                              void *data) {
    (void)job, (void)data;
    cr_assert_str_eq(type, "linear");
    cr_assert_str_eq(error, "asked to fail");
    return attempts_made >= 2 ? -1 : 150 * attempts_made; /* -1: do not retry */
}
static void always_fail(bullc_job *job, void *data) {
    (void)data;
    bullc_job_fail(job, "asked to fail", 0);
}

Test(behaviour, custom_backoff_strategy_and_its_stop) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 1, "{\"attempts\":5,\"backoff\":{\"type\":\"linear\",\"delay\":1}}");
    wh h;
    wh_init(&h);
    h.want = 1;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, always_fail, NULL);
    bullc_worker_opts_set_backoff_strategy(o, custom_backoff, NULL);
    wh_add_worker(&h, "q", o);
    int64_t t0 = tu_now_ms();
    wh_run(&h, 10000);
    cr_assert_eq(h.retried, 1, "one retry after 150 ms, then the strategy says -1");
    cr_assert_eq(h.failed, 1);
    cr_assert_geq(tu_now_ms() - t0, 140);
    char *atm = jfield(p, "1", "atm");
    cr_assert_str_eq(atm, "2", "failed for good at the second attempt, though attempts is 5");
    free(atm);
    bullc_queue_free(q);
}

/* ---- a job key of the wrong type: errors, but the other jobs are untouched ---- */
Test(behaviour, wrong_type_job_key_does_not_stop_the_others) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    add_n(q, 3, NULL);
    /* a buggy client overwrote job 1's hash with a string */
    freeReplyObject(tu_cmd(rc, "DEL %s:q:1", p));
    freeReplyObject(tu_cmd(rc, "SET %s:q:1 garbage", p));
    wh h;
    wh_init(&h);
    h.want = 2;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, echo_proc, NULL);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 15000);
    cr_assert_eq(h.completed, 2, "jobs 2 and 3 completed");
    cr_assert_geq(h.errors, 1, "the broken job was reported");
    cr_assert_eq(zcard(p, "completed"), 2);
    bullc_queue_free(q);
}

/* ---- invalid UTF-8: refused at add, failed clearly when a buggy producer wrote it ---- */
Test(behaviour, invalid_utf8_is_refused_and_failed_clearly) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add(q, "job", "{\"s\":\"\xc3\x28\"}", NULL, NULL, &err), BULLC_EINVAL);
    cr_assert(strstr(err.message, "UTF-8"), "%s", err.message);
    add_n(q, 2, NULL);
    redisReply *r = tu_cmd(rc, "HSET %s:q:1 data %b", p, "{\"s\":\"\xff\"}", (size_t)9);
    freeReplyObject(r);
    wh h;
    wh_init(&h);
    h.want = 2;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_processor(o, echo_proc, NULL);
    wh_add_worker(&h, "q", o);
    wh_run(&h, 10000);
    cr_assert_eq(h.failed, 1);
    cr_assert_eq(h.completed, 1, "the other job is untouched");
    char *reason = jfield(p, "1", "failedReason");
    cr_assert(reason && strstr(reason, "invalid UTF-8"), "%s", reason);
    free(reason);
    bullc_queue_free(q);
}
