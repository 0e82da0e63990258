/* SPDX-License-Identifier: MIT */
/* Shutdown while a moveToActive is in flight (its reply held back by a slow
 * link, the fault proxy's delay): Redis has already moved the job to active
 * and locked it, so the fetch is work in process. A graceful close waits for
 * it and finishes the job it brings, as Node's worker.close() does; a forced
 * one says what it left behind (bullc-worker: exit code 4 and a log line). */
#include <criterion/criterion.h>

#include "faultproxy.h"
#include "test_socket_client_util.h"
#include "testutil.h"
#include "worker_harness.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) {
    sct_kill_all();
    redisFree(rc);
}
TestSuite(shutdown_inflight, .init = setup, .fini = teardown, .timeout = 90);

static long long llen(const char *prefix, const char *list) {
    redisReply *r = tu_cmd(rc, "LLEN %s:q:%s", prefix, list);
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

static bool completed(const char *prefix, const char *id) {
    redisReply *r = tu_cmd(rc, "ZSCORE %s:q:completed %s", prefix, id);
    bool yes = r->type == REDIS_REPLY_STRING;
    freeReplyObject(r);
    return yes;
}

static void add_job(const char *prefix) {
    bullc_queue *q = tu_queue("q", prefix);
    char *id = NULL;
    cr_assert_geq(bullc_queue_add(q, "j", "{}", NULL, &id, NULL), 0);
    cr_assert_str_eq(id, "1");
    bullc_free(id);
    bullc_queue_free(q);
}

static faultproxy *proxy(char *url, size_t size) {
    bullc_redis_opts *ro = tu_redis_opts();
    faultproxy *fp = fp_start(bullc_redis_opts_port(ro));
    bullc_redis_opts_free(ro);
    snprintf(url, size, "redis://127.0.0.1:%d", fp_port(fp));
    return fp;
}

/* ---- the library ------------------------------------------------------------ */

typedef struct lib_run {
    wh h;
    faultproxy *fp;
    const char *prefix;
    bool force;
    int phase; /* 0: waiting to be idle, 1: job added, waiting for it in active, 2: closed, 3: link healed */
    int64_t closed_at;
    uv_timer_t t;
} lib_run;

static void complete_now(bullc_job *job, void *data) {
    (void)data;
    bullc_job_complete(job, "1");
}

static void step(uv_timer_t *t) {
    lib_run *r = t->data;
    if (r->phase == 0 && r->h.ready && r->h.drained) {
        fp_set_mode(r->fp, FP_DELAY, 1500); /* every reply from now on comes 1.5 s late */
        add_job(r->prefix);
        r->phase = 1;
    } else if (r->phase == 1 && llen(r->prefix, "active") == 1) {
        /* moveToActive ran in Redis; its reply is on the way */
        cr_assert_eq(r->h.active, 0, "the reply has not arrived yet");
        wh_close_all(&r->h, r->force);
        r->phase = 2;
        r->closed_at = tu_now_ms();
    } else if (r->phase == 2 && tu_now_ms() - r->closed_at > 1000) {
        /* the proxy holds every chunk in turn, so delays pile up: a healed
         * link lets the rest finish well within the close's timeout */
        fp_set_mode(r->fp, FP_PASS, 0);
        r->phase = 3;
        uv_close((uv_handle_t *)t, NULL);
    }
}

static void lib_close_with_fetch_in_flight(lib_run *r) {
    char url[64];
    r->fp = proxy(url, sizeof url);
    r->prefix = tu_prefix();
    wh_init(&r->h);
    bullc_worker_opts *o = wh_opts(r->prefix);
    bullc_redis_opts *ro;
    bullc_redis_opts_new(&ro);
    bullc_redis_opts_parse_url(ro, url, NULL);
    bullc_worker_opts_set_redis(o, ro);
    bullc_worker_opts_set_processor(o, complete_now, NULL);
    bullc_worker_opts_set_drain_delay(o, 0.2);
    wh_add_worker(&r->h, "q", o);
    bullc_redis_opts_free(ro);
    uv_timer_init(&r->h.loop, &r->t);
    r->t.data = r;
    uv_timer_start(&r->t, step, 20, 20);
    wh_run(&r->h, 30000);
    fp_stop(r->fp);
    cr_assert_geq(r->phase, 2);
}

Test(shutdown_inflight, graceful_close_finishes_the_fetched_job) {
    lib_run r = {0};
    lib_close_with_fetch_in_flight(&r);
    cr_assert_not(r.h.guard_fired);
    cr_assert_eq(r.h.completed, 1, "the job the fetch brought was processed");
    cr_assert(completed(r.prefix, "1"));
    cr_assert_eq(llen(r.prefix, "active"), 0, "nothing left active");
}

Test(shutdown_inflight, forced_close_names_the_fetch_it_left) {
    lib_run r = {.force = true};
    lib_close_with_fetch_in_flight(&r);
    cr_assert_not(r.h.guard_fired);
    cr_assert_eq(r.h.completed, 0);
    cr_assert(strstr(r.h.errlog, "closing: left active for stalled recovery: 1 fetch in flight"), "%s", r.h.errlog);
    cr_assert_eq(llen(r.prefix, "active"), 1, "the job stays active (its lock expires)");
}

/* ---- bullc-worker ------------------------------------------------------------- */

/* bullc-worker behind the proxy; SIGTERM once the job is active in Redis
 * with the fetch's reply still held back, for `hold_ms` more. Returns the
 * exit code. */
static int worker_sigterm(const char *prefix, int delay_ms, int hold_ms, const char *shutdown_timeout, sct_proc **out) {
    char url[64];
    faultproxy *fp = proxy(url, sizeof url);
    const char *args[] = {
        "--redis",       url,   "--prefix",           prefix,           "--queue", "q", "--builtin", "noop",
        "--drain-delay", "0.2", "--shutdown-timeout", shutdown_timeout, NULL};
    sct_proc *p = sct_spawn("bullc-worker", "worker", args);
    cr_assert(sct_wait_for(p->err, "ready", 1, 10000), "bullc-worker did not start");
    sct_sleep_ms(300); /* idle: blocking on the marker */
    fp_set_mode(fp, FP_DELAY, delay_ms);
    add_job(prefix);
    int64_t until = tu_now_ms() + 10000;
    while (llen(prefix, "active") != 1 && tu_now_ms() < until) sct_sleep_ms(5);
    cr_assert_eq(llen(prefix, "active"), 1, "the fetch took the job");
    cr_assert_eq(sct_count(p->err, "active"), 0, "its reply has not arrived yet");
    kill(p->pid, SIGTERM);
    sct_sleep_ms(hold_ms); /* the reply still held back */
    fp_set_mode(fp, FP_PASS, 0);
    int code = sct_wait_exit(p, 20000);
    fp_stop(fp);
    *out = p;
    return code;
}

Test(shutdown_inflight, bullc_worker_sigterm_finishes_the_fetched_job) {
    const char *prefix = tu_prefix();
    sct_proc *p;
    int code = worker_sigterm(prefix, 1500, 1000, "10000", &p);
    char *log = sct_read(p->err);
    cr_log_info("%s", log);
    free(log);
    cr_assert_eq(code, 0, "a graceful shutdown that finished everything");
    cr_assert(completed(prefix, "1"), "the job the fetch brought was processed");
    cr_assert_eq(llen(prefix, "active"), 0, "nothing left active");
}

Test(shutdown_inflight, bullc_worker_timeout_with_a_fetch_in_flight_exits_4) {
    const char *prefix = tu_prefix();
    sct_proc *p;
    int code = worker_sigterm(prefix, 3000, 2500, "300", &p);
    char *log = sct_read(p->err);
    cr_assert_eq(code, 4, "the shutdown left work behind: %s", log);
    cr_assert(strstr(log, "1 fetch in flight"), "the log says what was left: %s", log);
    free(log);
}
