/* SPDX-License-Identifier: MIT */
/* Server-side faults: error classes of a restarting server (LOADING, BUSY,
 * NOSCRIPT, in Redis and Valkey wording), SCRIPT FLUSH mid-run, a
 * master/replica flip, maxmemory. No hot loop, no log flood, and work
 * resumes without a restart. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faultproxy.h"
#include "private_redis.h"
#include "testutil.h"
#include "worker_harness.h"

TestSuite(server, .timeout = 60);

static bullc_redis_opts *opts_for(const char *url) {
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, url, NULL);
    bullc_redis_opts_set_timeouts(ro, 1000, 2000);
    return ro;
}

static void add_delayed(const char *url, const char *prefix, int64_t delay) {
    bullc_redis_opts *ro = opts_for(url);
    bullc_queue_opts *qo = tu_qopts();
    bullc_queue_opts_set_redis(qo, ro);
    bullc_queue_opts_set_prefix(qo, prefix);
    bullc_queue *q;
    cr_assert_eq(bullc_queue_new(&q, "q", qo, NULL), 0);
    bullc_job_opts *o;
    bullc_job_opts_new(&o);
    if (delay) bullc_job_opts_set_delay(o, delay);
    bullc_error err = {0};
    cr_assert_geq(bullc_queue_add(q, "job", "{}", o, NULL, &err), 0, "%s", err.message);
    bullc_job_opts_free(o);
    bullc_queue_free(q);
    bullc_redis_opts_free(ro);
}

typedef struct fault_run {
    wh h;
    uv_timer_t t;
    int step;
    int64_t lifted_at, done_at;
    void (*apply)(struct fault_run *f);
    void (*lift)(struct fault_run *f);
    int fault_ms;
    void *ctx;
    const char *queue_url; /* where the test adds its delayed job */
    const char *prefix;
} fault_run;

static void done_proc(bullc_job *job, void *data) {
    fault_run *f = data;
    if (!f->done_at) f->done_at = tu_now_ms();
    bullc_job_complete(job, "1");
}

static void fault_step(uv_timer_t *t) {
    fault_run *f = t->data;
    if (f->step++ == 0) {
        f->apply(f);
        uv_timer_start(t, fault_step, (uint64_t)f->fault_ms, 0);
    } else {
        f->lift(f);
        f->lifted_at = tu_now_ms();
        uv_close((uv_handle_t *)t, NULL);
    }
}

/* Runs a worker on `worker_url`; after 600 ms applies the fault, which
 * should add a delayed job itself (so it falls due during the fault). */
static void run_fault(fault_run *f, const char *worker_url) {
    wh_init(&f->h);
    f->h.want = 1;
    bullc_worker_opts *o = wh_opts(f->prefix);
    bullc_redis_opts *ro = opts_for(worker_url);
    bullc_worker_opts_set_redis(o, ro);
    bullc_worker_opts_set_processor(o, done_proc, f);
    bullc_worker_opts_set_drain_delay(o, 1);
    wh_add_worker(&f->h, "q", o);
    bullc_redis_opts_free(ro);
    uv_timer_init(&f->h.loop, &f->t);
    f->t.data = f;
    uv_timer_start(&f->t, fault_step, 600, 0);
    wh_run(&f->h, 40000);
    cr_assert_eq(f->h.completed, 1, "the job ran after the fault");
    int64_t after = f->done_at - f->lifted_at;
    cr_log_info("ran %lld ms after the fault was lifted; %d error events", (long long)after, f->h.errors);
    cr_assert_leq(after, 1000 + 2000, "ran %lld ms after the fault was lifted (bound drainDelay + 2 s)",
                  (long long)after);
}

/* ---- error classes, injected by the proxy ---- */
typedef struct inject {
    faultproxy *fp;
    const char *error;
    int sent_during;
} inject;

static void inject_apply(fault_run *f) {
    inject *in = f->ctx;
    add_delayed(f->queue_url, f->prefix, 300);
    fp_set_error(in->fp, in->error);
    fp_set_mode(in->fp, FP_ERROR, 0);
}
static void inject_lift(fault_run *f) {
    inject *in = f->ctx;
    in->sent_during = fp_errors_sent(in->fp);
    fp_set_mode(in->fp, FP_PASS, 0);
}

static void error_class(const char *error) {
    const char *url = tu_redis_url();
    bullc_redis_opts *ro = opts_for(url);
    faultproxy *fp = fp_start(bullc_redis_opts_port(ro));
    bullc_redis_opts_free(ro);
    char purl[64];
    snprintf(purl, sizeof purl, "redis://127.0.0.1:%d", fp_port(fp));
    inject in = {fp, error, 0};
    fault_run f = {0};
    f.apply = inject_apply;
    f.lift = inject_lift;
    f.fault_ms = 3000;
    f.ctx = &in;
    f.queue_url = url;
    f.prefix = tu_prefix();
    run_fault(&f, purl);
    cr_log_info("%s: %d error replies in 3 s", error, in.sent_during);
    cr_assert_gt(in.sent_during, 0, "the worker did meet the error");
    cr_assert_leq(in.sent_during, 30, "no hot loop: %d commands in 3 s of errors", in.sent_during);
    cr_assert_leq(f.h.errors, 20, "no log flood: %d error events in 3 s", f.h.errors);
    fp_stop(fp);
}

Test(server, loading_redis_wording) { error_class("LOADING Redis is loading the dataset in memory"); }
Test(server, loading_valkey_wording) { error_class("LOADING Valkey is loading the dataset in memory"); }
Test(server, busy_script) {
    error_class("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.");
}
Test(server, busy_valkey_wording) {
    error_class("BUSY Valkey is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.");
}
Test(server, noscript_everywhere) { error_class("NOSCRIPT No matching script. Please use EVAL."); }
Test(server, masterdown) {
    error_class("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.");
}

/* ---- a master/replica flip ---- */
typedef struct flip {
    private_redis a, b;
} flip;

static void flip_apply(fault_run *f) {
    flip *fl = f->ctx;
    /* a becomes a replica of b (empty): writes fail with READONLY, the
     * blocked BZPOPMIN is unblocked by the role change */
    pr_cmd(&fl->a, "REPLICAOF 127.0.0.1 %d", fl->b.port);
    add_delayed(fl->b.url, f->prefix, 300);
}
static void flip_lift(fault_run *f) {
    flip *fl = f->ctx;
    /* the sync must be over, else a keeps nothing of b's data */
    for (int i = 0; i < 100; i++) {
        redisContext *c = pr_connect(&fl->a);
        redisReply *r = redisCommand(c, "INFO replication");
        bool up = r && r->type == REDIS_REPLY_STRING && strstr(r->str, "master_link_status:up");
        freeReplyObject(r);
        redisFree(c);
        if (up) break;
        usleep(50000);
    }
    pr_cmd(&fl->a, "REPLICAOF NO ONE"); /* a is a master again, with b's data */
}

Test(server, replica_master_flip) {
    flip fl;
    pr_start(&fl.a, "");
    /* a full sync starts at once (Redis 7 waits 5 s by default for more replicas) */
    pr_start(&fl.b, "--repl-diskless-sync-delay 0");
    fault_run f = {0};
    f.apply = flip_apply;
    f.lift = flip_lift;
    f.fault_ms = 2500;
    f.ctx = &fl;
    f.prefix = "flip";
    run_fault(&f, fl.a.url);
    pr_stop(&fl.a);
    pr_stop(&fl.b);
}

/* ---- SCRIPT FLUSH while processing ---- */
static void flush_apply(fault_run *f) {
    add_delayed(f->queue_url, f->prefix, 300);
    redisContext *c = tu_redis();
    freeReplyObject(tu_cmd(c, "SCRIPT FLUSH"));
    redisFree(c);
}
static void nothing(fault_run *f) { (void)f; }

Test(server, script_flush) {
    fault_run f = {0};
    f.apply = flush_apply;
    f.lift = nothing;
    f.fault_ms = 10;
    f.queue_url = tu_redis_url();
    f.prefix = tu_prefix();
    run_fault(&f, tu_redis_url());
}

/* ---- maxmemory with noeviction ----
 * Redis refuses a script's first write when memory is full, but lets a
 * script that already wrote finish (atomicity): moveToFinished deletes the
 * lock first, so the result in hand is still stored. Taking jobs then fails
 * with OOM: retried, paced, reported without a flood, until memory is back. */
typedef struct oom {
    private_redis r;
    uv_timer_t t;
    int64_t lifted_at, second_at;
    int n;
} oom;

static void oom_proc(bullc_job *job, void *data) {
    oom *o = data;
    if (++o->n == 1)
        pr_cmd(&o->r, "CONFIG SET maxmemory 1");
    else
        o->second_at = tu_now_ms();
    bullc_job_complete(job, "{\"kept\":true}");
}
static void oom_lift(uv_timer_t *t) {
    oom *o = t->data;
    pr_cmd(&o->r, "CONFIG SET maxmemory 0");
    o->lifted_at = tu_now_ms();
    add_delayed(o->r.url, "oom", 0); /* adds failed while memory was full */
    uv_close((uv_handle_t *)t, NULL);
}

Test(server, maxmemory_result_kept_then_work_resumes) {
    oom o = {0};
    pr_start(&o.r, "--maxmemory-policy noeviction");
    add_delayed(o.r.url, "oom", 0);
    wh h;
    wh_init(&h);
    h.want = 2;
    bullc_worker_opts *wo = wh_opts("oom");
    bullc_redis_opts *ro = opts_for(o.r.url);
    bullc_worker_opts_set_redis(wo, ro);
    bullc_worker_opts_set_processor(wo, oom_proc, &o);
    bullc_worker_opts_set_drain_delay(wo, 0.2); /* many moveToActive attempts while memory is full */
    wh_add_worker(&h, "q", wo);
    bullc_redis_opts_free(ro);
    uv_timer_init(&h.loop, &o.t);
    o.t.data = &o;
    uv_timer_start(&o.t, oom_lift, 2500, 0);
    wh_run(&h, 20000);
    cr_assert_eq(h.completed, 2);
    cr_assert_leq(o.second_at - o.lifted_at, 2200, "work resumed within drainDelay + 2 s");
    cr_assert_geq(h.errors, 1, "the OOM was reported");
    cr_assert_leq(h.errors, 15, "no log flood: %d error events in 2.5 s", h.errors);
    redisContext *c = pr_connect(&o.r);
    redisReply *r = redisCommand(c, "HGET oom:q:1 returnvalue");
    cr_assert(r && r->type == REDIS_REPLY_STRING, "the first result is stored despite the full memory");
    cr_assert_str_eq(r->str, "{\"kept\":true}");
    freeReplyObject(r);
    redisFree(c);
    pr_stop(&o.r);
}
