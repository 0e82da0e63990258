/* SPDX-License-Identifier: MIT */
/* The callback contract of every public call that takes one: a call that
 * returns 0 runs its callback exactly once, later, from the loop; a call that
 * returns an error never runs it. Each call is made with `in_call` set, so a
 * callback that runs inside it is counted; the loop runs to its end before the
 * counts are read. Redis is reached through a fault proxy, to cut it off. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "faultproxy.h"
#include "testutil.h"

static redisContext *rc;
static faultproxy *fp;

static void setup(void) {
    rc = tu_redis();
    fp = fp_start(tu_redis_port());
    cr_assert_not_null(fp);
}
static void teardown(void) {
    fp_stop(fp);
    redisFree(rc);
}
TestSuite(callbacks, .init = setup, .fini = teardown, .timeout = 60);

#define MAXCALLS 16

typedef struct cbt cbt;
typedef struct call {
    cbt *t;
    int rc;   /* what the registering call returned */
    int ran;  /* times the callback ran */
    int code; /* the code it ran with */
    bool got_job;
} call;

struct cbt {
    uv_loop_t loop;
    uv_timer_t timer, guard;
    const char *prefix;
    bullc_worker *w;
    bullc_job *job; /* held by the processor */
    bool in_call;   /* inside a registering call right now */
    int inside;     /* callbacks run inside their registering call */
    call calls[MAXCALLS];
    int ncalls;
    int ready, step;
    bool closing, guard_fired;
    void (*on_step)(cbt *t);
};

static call *next_call(cbt *t) {
    cr_assert_lt(t->ncalls, MAXCALLS);
    call *c = &t->calls[t->ncalls++];
    c->t = t;
    return c;
}

/* Counts a callback run; `c` is the call that registered it. */
static void ran(call *c, int code) {
    if (c->t->in_call) c->t->inside++;
    c->ran++;
    c->code = code;
}

/* Every call that returned 0 called back exactly once, none that failed
 * did, and none ran inside its call. */
static void assert_contract(const cbt *t) {
    cr_assert_eq(t->inside, 0, "%d callbacks ran inside the call that registered them", t->inside);
    for (int i = 0; i < t->ncalls; i++) {
        const call *c = &t->calls[i];
        if (c->rc == 0)
            cr_assert_eq(c->ran, 1, "call %d returned 0 and its callback ran %d times", i, c->ran);
        else
            cr_assert_eq(c->ran, 0, "call %d returned %d and its callback ran %d times", i, c->rc, c->ran);
    }
}

static void worker_closed(bullc_worker *w, void *data) {
    (void)w;
    call *c = data;
    uv_timer_stop(&c->t->guard);
    ran(c, 0);
}

/* Closes the worker (twice: the second call's callback must never run). */
static void close_worker(cbt *t, bool force) {
    if (t->closing) return;
    t->closing = true;
    uv_timer_stop(&t->timer);
    call *c = next_call(t);
    t->in_call = true;
    bullc_worker_close(t->w, force, 5000, worker_closed, c);
    bullc_worker_close(t->w, force, 5000, worker_closed, next_call(t));
    t->in_call = false;
    t->calls[t->ncalls - 1].rc = BULLC_ECLOSED; /* a second close registers nothing */
}

static void guard_cb(uv_timer_t *h) {
    cbt *t = h->data;
    cr_log_error("guard fired at step %d", t->step);
    t->guard_fired = true;
    if (t->job) bullc_job_fail(t->job, "guard", BULLC_FAIL_UNRECOVERABLE), t->job = NULL;
    close_worker(t, true);
}

static void step_cb(uv_timer_t *h) {
    cbt *t = h->data;
    t->on_step(t);
}

static void ev_ready(bullc_worker *w, void *data) {
    (void)w;
    cbt *t = data;
    if (t->ready++ == 0 && t->on_step) uv_timer_start(&t->timer, step_cb, 0, 0);
}

static void hold(bullc_job *job, void *data) {
    cbt *t = data;
    t->job = job;
    uv_timer_start(&t->timer, step_cb, 0, 0);
}

static char url[128];

/* A worker through the proxy; with `manual`, no processor and no autorun. */
static void start(cbt *t, bool manual, void (*on_step)(cbt *t)) {
    memset(t, 0, sizeof *t);
    cr_assert_eq(uv_loop_init(&t->loop), 0);
    uv_timer_init(&t->loop, &t->timer);
    uv_timer_init(&t->loop, &t->guard);
    t->timer.data = t->guard.data = t;
    uv_timer_start(&t->guard, guard_cb, 20000, 0);
    t->prefix = tu_prefix();
    t->on_step = on_step;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", fp_port(fp));
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, url, NULL);
    bullc_redis_opts_set_timeouts(ro, 1000, 2000);
    bullc_worker_opts *o = tu_wopts();
    bullc_worker_opts_set_redis(o, ro);
    bullc_worker_opts_set_prefix(o, t->prefix);
    bullc_worker_opts_set_drain_delay(o, 1);
    if (manual) {
        bullc_worker_opts_set_autorun(o, false);
    } else {
        bullc_worker_opts_set_processor(o, hold, t);
    }
    bullc_worker_events ev = {.ready = manual ? ev_ready : NULL};
    bullc_error err = {0};
    cr_assert_eq(bullc_worker_new(&t->w, &t->loop, "q", o, &ev, t, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
}

static void finish(cbt *t) {
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t->timer, NULL);
    uv_close((uv_handle_t *)&t->guard, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    bullc_worker_free(t->w);
    cr_assert_eq(uv_loop_close(&t->loop), 0, "the loop must close clean");
    fp_set_mode(fp, FP_PASS, 0);
    cr_assert(!t->guard_fired, "the test did not finish in time");
}

static void add_job(cbt *t) {
    bullc_queue *q = tu_queue("q", t->prefix);
    cr_assert_eq(bullc_queue_add(q, "j", "{\"a\":1}", NULL, NULL, NULL), 0);
    bullc_queue_free(q);
}

/* ---- job actions ------------------------------------------------------------ */

static void job_cb(bullc_job *job, int code, const char *message, void *data) {
    (void)job, (void)message;
    ran(data, code);
}

/* The four actions on the held job; returns how many returned 0. */
static int job_actions(cbt *t) {
    int ok = 0;
    for (int k = 0; k < 4; k++) {
        call *c = next_call(t);
        t->in_call = true;
        switch (k) {
        case 0:
            c->rc = bullc_job_update_progress(t->job, "42", job_cb, c);
            break;
        case 1:
            c->rc = bullc_job_log(t->job, "a line", job_cb, c);
            break;
        case 2:
            c->rc = bullc_job_update_data(t->job, "{\"b\":2}", job_cb, c);
            break;
        default:
            c->rc = bullc_job_extend_lock(t->job, 30000, job_cb, c);
        }
        t->in_call = false;
        ok += c->rc == 0;
    }
    return ok;
}

static void actions_step(cbt *t) {
    switch (t->step++) {
    case 0:
        cr_assert_eq(job_actions(t), 4, "every action is accepted while connected");
        uv_timer_start(&t->timer, step_cb, 20, 20); /* until every callback ran */
        return;
    default:
        for (int i = 0; i < 4; i++)
            if (!t->calls[i].ran) return;
        bullc_job_complete(t->job, "1");
        t->job = NULL;
        close_worker(t, false);
    }
}

Test(callbacks, job_actions_call_back_once_from_the_loop) {
    cbt t;
    start(&t, false, actions_step);
    add_job(&t);
    finish(&t);
    assert_contract(&t);
    for (int i = 0; i < 4; i++) cr_assert_eq(t.calls[i].code, 0, "action %d: code %d", i, t.calls[i].code);
    char key[128];
    snprintf(key, sizeof key, "%s:q:1", t.prefix);
    char *progress = tu_hget(rc, key, "progress");
    cr_assert_str_eq(progress, "42", "the progress was written");
    free(progress);
}

static void unreachable_step(cbt *t) {
    switch (t->step++) {
    case 0: /* Redis out of reach: connections reset, new ones never answered */
        fp_set_mode(fp, FP_BLACKHOLE, 0);
        fp_reset_all(fp);
        uv_timer_start(&t->timer, step_cb, 300, 0);
        return;
    case 1:
        cr_assert_eq(job_actions(t), 0, "no action is accepted while Redis is out of reach");
        for (int i = 0; i < 4; i++) cr_assert_eq(t->calls[i].rc, BULLC_ECONN, "action %d: %d", i, t->calls[i].rc);
        uv_timer_start(&t->timer, step_cb, 200, 0); /* time for a wrongly deferred callback to show */
        return;
    default: /* Redis back: the result is stored once reconnected */
        fp_set_mode(fp, FP_PASS, 0);
        bullc_job_complete(t->job, "1");
        t->job = NULL;
        close_worker(t, false);
    }
}

Test(callbacks, job_actions_return_econn_and_never_call_back_when_redis_is_unreachable) {
    cbt t;
    start(&t, false, unreachable_step);
    add_job(&t);
    finish(&t);
    assert_contract(&t);
}

/* A result that cannot be stored (Redis out of reach) is kept for a resend;
 * a forced close gives it up (stalled recovery takes the job) and closes. */
static void parked_step(cbt *t) {
    switch (t->step++) {
    case 0:
        fp_set_mode(fp, FP_BLACKHOLE, 0);
        fp_reset_all(fp);
        uv_timer_start(&t->timer, step_cb, 300, 0);
        return;
    case 1:
        bullc_job_complete(t->job, "1"); /* parked: nothing to send it on */
        t->job = NULL;
        uv_timer_start(&t->timer, step_cb, 100, 0);
        return;
    default:
        close_worker(t, true);
    }
}

Test(callbacks, forced_close_with_a_parked_result_calls_back_once) {
    cbt t;
    start(&t, false, parked_step);
    add_job(&t);
    finish(&t);
    assert_contract(&t);
    cr_assert_eq(t.calls[0].ran, 1, "the close callback ran");
}

/* ---- bullc_worker_get_next_job ------------------------------------------------ */

static void next_cb(bullc_worker *w, bullc_job *job, int code, void *data) {
    (void)w;
    call *c = data;
    ran(c, code);
    c->got_job = job != NULL;
    if (job) bullc_job_complete(job, "1");
}

static call *get_next(cbt *t, bool block) {
    call *c = next_call(t);
    t->in_call = true;
    c->rc = bullc_worker_get_next_job(t->w, "tok", block, next_cb, c);
    t->in_call = false;
    return c;
}

static void next_job_step(cbt *t) {
    switch (t->step++) {
    case 0:
        cr_assert_eq(get_next(t, false)->rc, 0); /* a job */
        cr_assert_eq(get_next(t, false)->rc, 0); /* none left */
        bullc_worker_pause(t->w);
        cr_assert_eq(get_next(t, true)->rc, 0); /* paused: nothing, from the loop */
        uv_timer_start(&t->timer, step_cb, 500, 0);
        return;
    default:
        close_worker(t, false);
    }
}

Test(callbacks, get_next_job_calls_back_once_from_the_loop) {
    cbt t;
    start(&t, true, next_job_step);
    add_job(&t);
    finish(&t);
    assert_contract(&t);
    cr_assert(t.calls[0].got_job && t.calls[0].code == 0, "the first call gets the job");
    cr_assert(!t.calls[1].got_job && t.calls[1].code == 0, "the second finds none");
    cr_assert(!t.calls[2].got_job && t.calls[2].code == 0, "a paused worker gives none");
}

static void next_job_down_step(cbt *t) {
    switch (t->step++) {
    case 0: /* the call is sent, then the connection breaks before the answer */
        fp_set_mode(fp, FP_BLACKHOLE, 0);
        cr_assert_eq(get_next(t, false)->rc, 0);
        fp_reset_all(fp);
        uv_timer_start(&t->timer, step_cb, 300, 0);
        return;
    case 1: /* now out of reach: refused at once */
        cr_assert_eq(get_next(t, false)->rc, BULLC_ECONN);
        uv_timer_start(&t->timer, step_cb, 200, 0);
        return;
    default:
        close_worker(t, true);
    }
}

Test(callbacks, get_next_job_when_redis_is_unreachable) {
    cbt t;
    start(&t, true, NULL);
    /* before the worker is ready: refused, no callback */
    cr_assert_eq(get_next(&t, false)->rc, BULLC_ECONN);
    t.on_step = next_job_down_step;
    finish(&t);
    assert_contract(&t);
    cr_assert_eq(t.calls[1].code, BULLC_ECONN, "the broken call reports the connection: %d", t.calls[1].code);
}

/* ---- closing ------------------------------------------------------------------ */

static void close_step(cbt *t) { close_worker(t, false); }

Test(callbacks, worker_close_calls_back_once_from_the_loop) {
    cbt t;
    start(&t, true, close_step);
    finish(&t);
    assert_contract(&t);
    cr_assert_eq(t.calls[0].ran, 1);
}

static void events_closed(bullc_queue_events *qe, void *data) {
    (void)qe;
    ran(data, 0);
}

Test(callbacks, queue_events_close_calls_back_once_from_the_loop) {
    cbt t;
    memset(&t, 0, sizeof t);
    cr_assert_eq(uv_loop_init(&t.loop), 0);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", fp_port(fp));
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, url, NULL);
    bullc_queue_events_opts *o = tu_eopts();
    bullc_queue_events_opts_set_redis(o, ro);
    bullc_queue_events_opts_set_prefix(o, tu_prefix());
    bullc_queue_events *qe = NULL;
    cr_assert_eq(bullc_queue_events_new(&qe, &t.loop, "q", o, NULL, NULL, NULL), 0);
    bullc_redis_opts_free(ro);
    uv_run(&t.loop, UV_RUN_NOWAIT);
    call *c = next_call(&t);
    t.in_call = true;
    bullc_queue_events_close(qe, events_closed, c);
    bullc_queue_events_close(qe, events_closed, next_call(&t));
    t.in_call = false;
    t.calls[1].rc = BULLC_ECLOSED; /* a second close registers nothing */
    uv_run(&t.loop, UV_RUN_DEFAULT);
    bullc_queue_events_free(qe);
    cr_assert_eq(uv_loop_close(&t.loop), 0);
    assert_contract(&t);
}
