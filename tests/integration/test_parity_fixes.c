/* SPDX-License-Identifier: MIT */
/* Node cases that first showed bullc behaving differently (found by the
 * parity tests), reproduced after the fix. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "worker_harness.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(parity_fixes, .init = setup, .fini = teardown, .timeout = 30);

/* ---- manual processing: getNextJob emits active, and gives nothing while paused ---- */
typedef struct manual {
    wh *h;
    uv_timer_t t;
    int actives_seen_before_cb;
    bool paused_case, got_null;
} manual;

static void got(bullc_worker *w, bullc_job *job, int code, void *data) {
    manual *m = data;
    cr_assert_eq(code, 0);
    if (m->paused_case) {
        m->got_null = job == NULL;
        if (job) bullc_job_complete(job, NULL);
    } else {
        cr_assert_not_null(job);
        m->actives_seen_before_cb = m->h->active;
        bullc_job_complete(job, "1");
    }
    (void)w;
    wh_close_all(m->h, false);
}
static void when_ready(uv_timer_t *t) {
    manual *m = t->data;
    if (!m->h->ready) return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    if (m->paused_case) bullc_worker_pause(m->h->w[0]);
    cr_assert_eq(bullc_worker_get_next_job(m->h->w[0], "tok", false, got, m), 0);
}
static void run_manual(manual *m, const char *p) {
    bullc_queue *q = tu_queue("q", p);
    cr_assert_geq(bullc_queue_add(q, "test", "{\"foo\":\"bar\"}", NULL, NULL, NULL), 0);
    bullc_queue_free(q);
    wh h;
    wh_init(&h);
    m->h = &h;
    bullc_worker_opts *o = wh_opts(p);
    bullc_worker_opts_set_autorun(o, false);
    wh_add_worker(&h, "q", o);
    uv_timer_init(&h.loop, &m->t);
    m->t.data = m;
    uv_timer_start(&m->t, when_ready, 10, 10);
    wh_run(&h, 10000);
}

/* node: "[when there is a job in waiting] should emit active event when calling getNextJob" */
Test(parity_fixes, get_next_job_emits_active) {
    manual m = {0};
    run_manual(&m, tu_prefix());
    cr_assert_eq(m.actives_seen_before_cb, 1);
}

/* node: "shouldn't block when disabled and paused" */
Test(parity_fixes, get_next_job_while_paused_gives_nothing) {
    manual m = {0};
    m.paused_case = true;
    const char *p = tu_prefix();
    run_manual(&m, p);
    cr_assert(m.got_null, "a paused worker hands out no job");
    redisReply *r = tu_cmd(rc, "LLEN %s:q:wait", p);
    cr_assert_eq(r->integer, 1, "the job is still waiting");
    freeReplyObject(r);
}

/* ---- drainDelay must be greater than 0 ---- */
/* node: "drain delay cannot be zero" */
Test(parity_fixes, drain_delay_zero_is_refused) {
    bullc_worker_opts *o = tu_wopts();
    cr_assert_eq(bullc_worker_opts_set_drain_delay(o, 0), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_drain_delay(o, -1), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_opts_set_drain_delay(o, 0.5), 0);
}

/* ---- a queue handle whose connection Redis dropped reconnects on the next call ---- */
/* node: "should recover from a connection loss" */
Test(parity_fixes, queue_recovers_from_a_connection_loss) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    char *id = NULL;
    bullc_error err = {0};
    cr_assert_geq(bullc_queue_add(q, "test", "{}", NULL, &id, &err), 0, "%s", err.message);
    bullc_free(id);
    /* Redis drops every normal client but ours (a restart, an idle timeout) */
    redisReply *me = tu_cmd(rc, "CLIENT ID");
    redisReply *k = tu_cmd(rc, "CLIENT KILL TYPE normal SKIPME yes");
    cr_assert_geq(k->integer, 1);
    freeReplyObject(k);
    freeReplyObject(me);
    cr_assert_geq(bullc_queue_add(q, "test", "{}", NULL, &id, &err), 0, "the next add reconnects: %s", err.message);
    cr_assert_str_eq(id, "2");
    bullc_free(id);
    bullc_queue_free(q);
}
