/* SPDX-License-Identifier: MIT */
/* Faults on the wire, through a TCP fault proxy in front of the test Redis:
 * blackhole, reset, CLIENT KILL, a dropped reply. After each, a delayed job
 * that fell due meanwhile runs with no new add, within drainDelay + 2 s. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultproxy.h"
#include "testutil.h"
#include "worker_harness.h"

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
TestSuite(faults, .init = setup, .fini = teardown, .timeout = 60);

typedef struct scenario {
    wh *h;
    uv_timer_t t;
    int step;
    int64_t fault_end; /* when the fault was lifted (ms) */
    int64_t done_at;
    const char *prefix;
    void (*fault)(struct scenario *s);
    void (*lift)(struct scenario *s);
    int fault_ms;
} scenario;

static void echo(bullc_job *job, void *data) {
    scenario *s = data;
    s->done_at = tu_now_ms();
    bullc_job_complete(job, "1");
}

static void step(uv_timer_t *t) {
    scenario *s = t->data;
    switch (s->step++) {
    case 0: { /* idle worker blocked on the marker: add a job due in 300 ms, then break the wire */
        char cmdline[512];
        bullc_queue *q = tu_queue("q", s->prefix);
        bullc_job_opts *o;
        bullc_job_opts_new(&o);
        bullc_job_opts_set_delay(o, 300);
        cr_assert_geq(bullc_queue_add(q, "late", "{}", o, NULL, NULL), 0);
        bullc_job_opts_free(o);
        bullc_queue_free(q);
        (void)cmdline;
        s->fault(s);
        uv_timer_start(t, step, (uint64_t)s->fault_ms, 0);
        break;
    }
    case 1:
        if (s->lift) s->lift(s);
        s->fault_end = tu_now_ms();
        uv_close((uv_handle_t *)t, NULL);
        break;
    }
}

/* Worker options through the proxy, 1 s timeouts (freed at exit). */
static bullc_worker_opts *proxied_opts(const char *prefix) {
    bullc_worker_opts *o = wh_opts(prefix);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", fp_port(fp));
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, url, NULL);
    bullc_redis_opts_set_timeouts(ro, 1000, 1000);
    bullc_worker_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    return o;
}

static void run_scenario(scenario *s, double drain_delay) {
    s->prefix = tu_prefix();
    wh h;
    wh_init(&h);
    h.want = 1;
    s->h = &h;
    bullc_worker_opts *o = proxied_opts(s->prefix);
    bullc_worker_opts_set_processor(o, echo, s);
    bullc_worker_opts_set_drain_delay(o, drain_delay);
    wh_add_worker(&h, "q", o);
    uv_timer_init(&h.loop, &s->t);
    s->t.data = s;
    uv_timer_start(&s->t, step, 700, 0); /* let it connect and block first */
    wh_run(&h, 30000);
    cr_assert_eq(h.completed, 1, "the delayed job ran");
    cr_assert_gt(s->fault_end, 0);
    int64_t after = s->done_at - s->fault_end;
    cr_log_info("job ran %lld ms after the fault ended", (long long)after);
    cr_assert_leq(after, (int64_t)(drain_delay * 1000) + 2000, "ran %lld ms after the fault ended", (long long)after);
}

static void blackhole(scenario *s) { (void)s, fp_set_mode(fp, FP_BLACKHOLE, 0); }
static void pass(scenario *s) { (void)s, fp_set_mode(fp, FP_PASS, 0); }
static void reset(scenario *s) { (void)s, fp_reset_all(fp); }

Test(faults, blackhole_during_bzpopmin) {
    scenario s = {0};
    s.fault = blackhole;
    s.lift = pass;
    s.fault_ms = 2500;
    run_scenario(&s, 1);
}

Test(faults, reset_during_bzpopmin) {
    scenario s = {0};
    s.fault = reset;
    s.fault_ms = 50;
    run_scenario(&s, 1);
    cr_assert_geq(fp_accepted(fp), 4, "both connections were re-established");
}

static void kill_blocking(scenario *s) {
    /* the blocking connection is the one named "<prefix>:<base64("q")>" = "...:cQ==" */
    char name[128];
    snprintf(name, sizeof name, "%s:cQ==", s->prefix);
    redisReply *r = tu_cmd(rc, "CLIENT LIST");
    char *line = strstr(r->str, name);
    cr_assert_not_null(line, "the blocking connection is named as Node names it");
    while (line > r->str && line[-1] != '\n') line--;
    long long id = atoll(strstr(line, "id=") + 3);
    freeReplyObject(r);
    r = tu_cmd(rc, "CLIENT KILL ID %lld", id);
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
}

Test(faults, client_kill_during_bzpopmin) {
    scenario s = {0};
    s.fault = kill_blocking;
    s.fault_ms = 10;
    run_scenario(&s, 1);
}

static void drop_next_reply(scenario *s) { (void)s, fp_set_mode(fp, FP_DROP_REPLY, 0); }

Test(faults, dropped_reply_is_recovered) {
    scenario s = {0};
    s.fault = drop_next_reply;
    s.fault_ms = 10;
    run_scenario(&s, 1);
    char key[128];
    snprintf(key, sizeof key, "%s:q:1", s.prefix);
    char *fin = tu_hget(rc, key, "finishedOn");
    cr_assert_not_null(fin, "the job was completed once, in Redis");
    free(fin);
}

/* ---- liveness without the marker: the wake-up signal is deleted or stolen ---- */
static void delete_marker(scenario *s) {
    redisReply *r = tu_cmd(rc, "DEL %s:q:marker", s->prefix);
    freeReplyObject(r);
}

Test(faults, marker_deleted_while_a_delayed_job_falls_due) {
    scenario s = {0};
    s.fault = delete_marker;
    s.fault_ms = 10;
    run_scenario(&s, 1);
}

static void steal_marker(scenario *s) {
    /* another client consumes the marker (as a second, idle worker would) */
    redisReply *r = tu_cmd(rc, "ZPOPMIN %s:q:marker 10", s->prefix);
    freeReplyObject(r);
}

Test(faults, marker_consumed_by_another_client) {
    scenario s = {0};
    s.fault = steal_marker;
    s.fault_ms = 10;
    run_scenario(&s, 1);
}

/* ---- the reply of a finish that fetched the next job is lost ---------------- */
typedef struct lost_next {
    wh *h;
    uv_timer_t t;
    bullc_job *job;
} lost_next;

static void complete_with_reply_dropped(uv_timer_t *t) {
    lost_next *l = t->data;
    /* nothing else is in flight (concurrency 1, not blocking, no renewal
     * due): the next chunk from Redis is this finish's reply, which holds
     * job 2, already active and locked for this worker */
    fp_set_mode(fp, FP_DROP_REPLY, 0);
    bullc_job_complete(l->job, "1");
    uv_close((uv_handle_t *)t, NULL);
}

static void complete_first_after_drop(bullc_job *job, void *data) {
    lost_next *l = data;
    if (strcmp(bullc_job_id(job), "1")) {
        bullc_job_complete(job, "2");
        return;
    }
    l->job = job;
    uv_timer_start(&l->t, complete_with_reply_dropped, 300, 0);
}

Test(faults, lost_reply_of_a_finish_that_fetched_the_next_job) {
    const char *p = tu_prefix();
    bullc_queue *q = tu_queue("q", p);
    cr_assert_geq(bullc_queue_add(q, "a", "{}", NULL, NULL, NULL), 0);
    cr_assert_geq(bullc_queue_add(q, "b", "{}", NULL, NULL, NULL), 0);
    bullc_queue_free(q);
    wh h;
    wh_init(&h);
    h.want = 2;
    lost_next l = {&h, {0}, NULL};
    uv_timer_init(&h.loop, &l.t);
    l.t.data = &l;
    bullc_worker_opts *o = proxied_opts(p);
    bullc_worker_opts_set_processor(o, complete_first_after_drop, &l);
    wh_add_worker(&h, "q", o);
    int64_t t0 = tu_now_ms();
    /* well below the stalled checker's 30 s, which alone would free job 2 */
    wh_run(&h, 10000);
    cr_log_info("both done in %lld ms; errors:\n%s", (long long)(tu_now_ms() - t0), h.errlog);
    cr_assert_not(h.guard_fired, "job 2, taken by the lost reply, was processed (completed %d)", h.completed);
    cr_assert_eq(h.completed, 2, "job 1's completion was reported, and job 2's");
    for (int id = 1; id <= 2; id++) {
        char key[128];
        snprintf(key, sizeof key, "%s:q:%d", p, id);
        char *rv = tu_hget(rc, key, "returnvalue");
        char want[2] = {(char)('0' + id), 0};
        cr_assert_str_eq(rv ? rv : "", want, "job %d completed, by its own processor call", id);
        free(rv);
    }
    redisReply *ev = tu_cmd(rc, "XRANGE %s:q:events - +", p);
    int seen[3] = {0};
    for (size_t i = 0; i < ev->elements; i++) {
        redisReply *f = ev->element[i]->element[1];
        if (f->elements >= 4 && !strcmp(f->element[1]->str, "completed")) seen[atoi(f->element[3]->str) % 3]++;
    }
    freeReplyObject(ev);
    cr_assert(seen[1] == 1 && seen[2] == 1, "each completed once in Redis (%d, %d)", seen[1], seen[2]);
}
