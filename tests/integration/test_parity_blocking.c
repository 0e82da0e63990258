/* SPDX-License-Identifier: MIT */
/* How a worker waits for jobs, as Node BullMQ's worker.test.ts and
 * worker.redis.test.ts check it: the block timeout it computes
 * (getBlockTimeout), how many moveToActive calls and BZPOPMINs it makes for
 * a batch of jobs, and that Redis's shortest block returns. The calls are
 * counted on the wire, from a MONITOR connection, where Node spies on its
 * methods; on both majors. And that a worker whose blocking connection
 * breaks, cannot reconnect for a while or never hears its BZPOPMIN's answer
 * comes back to work. */
#include "faultproxy.h"
#include "test_parity_util.h"

#include <sys/time.h>
#include <unistd.h>

TestSuite(parity_blocking, .timeout = 60);

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

static void node5_meta(ph *h) {
    freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, h->qname));
}

static int64_t epoch_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* 1 when the test Redis is 7.0.8 or newer (a 1 ms block), else 0 (2 ms). */
static bool redis_7_0_8(void) {
    redisReply *r = ph_cmd("INFO server");
    const char *v = strstr(r->str, "redis_version:");
    cr_assert_not_null(v);
    int a = 0, b = 0, c = 0;
    sscanf(v + strlen("redis_version:"), "%d.%d.%d", &a, &b, &c);
    freeReplyObject(r);
    return a * 10000 + b * 100 + c >= 70008;
}

/* A worker created without running, ready (its Redis version known). */
static bullc_worker *idle_worker(ph *h, double drain_delay) {
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    if (drain_delay > 0) bullc_worker_opts_set_drain_delay(o, drain_delay);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    return w;
}

/* node: "[when drainDelay is greater than minimumBlockTimeout] returns drainDelay" */
Test(parity_blocking, block_timeout_is_the_drain_delay) {
    ph *h = ph_new("q");
    h->proc = noop;
    bullc_worker_opts *o = tu_wopts(); /* Node's default drain delay, 5 s */
    bullc_worker_opts_set_prefix(o, h->prefix);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_float_eq(bullc_worker_block_timeout(w, 0), 5, 1e-9);
    ph_end(h);
}

/* node: "[when drainDelay is lower than minimumBlockTimeout] returns drainDelay" */
Test(parity_blocking, block_timeout_is_at_least_redis_shortest) {
    ph *h = ph_new("q");
    bullc_worker *w = idle_worker(h, 0.00001);
    cr_assert_float_eq(bullc_worker_block_timeout(w, 0), redis_7_0_8() ? 0.001 : 0.002, 1e-12);
    ph_end(h);
}

/* node: "[when blockUntil is lower than date now value] returns blockDelay value lower or equal 0" */
Test(parity_blocking, block_timeout_past_due) {
    ph *h = ph_new("q");
    bullc_worker *w = idle_worker(h, 0);
    cr_assert_leq(bullc_worker_block_timeout(w, epoch_ms() - 1), 0);
    ph_end(h);
}

/* node: "[when blockUntil is greater than date now value] returns delay value greater than minimumBlockTimeout" */
Test(parity_blocking, block_timeout_until_a_delayed_job) {
    ph *h = ph_new("q");
    bullc_worker *w = idle_worker(h, 0);
    double t = bullc_worker_block_timeout(w, epoch_ms() + 100);
    cr_assert_gt(t, redis_7_0_8() ? 0.001 : 0.002);
    cr_assert_leq(t, 0.1);
    /* capped at 10 s however far the delayed job is */
    cr_assert_float_eq(bullc_worker_block_timeout(w, epoch_ms() + 3600000), 10, 1e-9);
    ph_end(h);
}

/* ---- calls counted on the wire --------------------------------------------------------- */

/* A MONITOR connection: every command Redis runs from now on. */
static redisContext *monitor_start(void) {
    redisContext *c = tu_redis();
    redisReply *r = redisCommand(c, "MONITOR");
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "MONITOR");
    freeReplyObject(r);
    return c;
}

/* Reads what MONITOR saw up to now (an ECHO of a mark sent after), counting
 * moveToActive calls and BZPOPMINs on `base` ("<prefix>:<queue>:") and
 * collecting the BZPOPMIN timeouts; frees `c`. */
typedef struct wire_counts {
    int move_to_active, bzpopmin;
    char timeouts[4096];
} wire_counts;
static wire_counts monitor_stop(redisContext *c, const char *base) {
    char mark[64], fetch[256], block[256];
    snprintf(mark, sizeof mark, "parity-blocking-mark-%d", (int)getpid());
    /* moveToActive has 11 keys from wait and active in both majors (retryJob
       and 6.x's moveToDelayed, the others of 11 keys, start elsewhere) */
    snprintf(fetch, sizeof fetch, "\"11\" \"%swait\" \"%sactive\"", base, base);
    snprintf(block, sizeof block, "\"BZPOPMIN\" \"%smarker\" \"", base);
    freeReplyObject(ph_cmd("ECHO %s", mark));
    wire_counts n = {0};
    for (;;) {
        redisReply *r = NULL;
        cr_assert_eq(redisGetReply(c, (void **)&r), REDIS_OK, "MONITOR read");
        bool end = r->type == REDIS_REPLY_STATUS && strstr(r->str, "\"ECHO\"") && strstr(r->str, mark);
        if (r->type == REDIS_REPLY_STATUS && !strstr(r->str, "lua]")) { /* the client's own calls, not the scripts' */
            n.move_to_active += strstr(r->str, "\"EVALSHA\"") && strstr(r->str, fetch);
            const char *b = strstr(r->str, block);
            if (b) {
                n.bzpopmin++;
                size_t used = strlen(n.timeouts);
                snprintf(n.timeouts + used, sizeof n.timeouts - used, "%.*s,", (int)strcspn(b + strlen(block), "\""),
                         b + strlen(block));
            }
        }
        freeReplyObject(r);
        if (end) break;
    }
    redisFree(c);
    return n;
}

/* Waits until the worker is blocked on its drained queue's marker. */
static void wait_blocked(ph *h) {
    cr_assert(PH_WAIT(h, 5000, h->n_drained >= 1), "drained");
    PH_RUN_FOR(h, 100);
}

static void complete_in_250(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    ph_complete_in(h, job, 250, NULL);
}

static void jobs_plus_two(int major) {
    ph *h = ph_new("q");
    if (major == 5) node5_meta(h);
    for (int i = 0; i < 50; i++) ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    h->proc = complete_in_250;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 100);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    redisContext *mon = monitor_start();
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 20000, h->n_completed == 50));
    wait_blocked(h);
    char base[128];
    snprintf(base, sizeof base, "%s:%s:", h->prefix, h->qname);
    wire_counts n = monitor_stop(mon, base);
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    /* one per job (more slots than jobs), one that found the queue empty
       while the jobs ran, and one after the first block */
    cr_assert_eq(n.move_to_active, 50 + 2, "%d moveToActive", n.move_to_active);
    cr_assert_eq(n.bzpopmin, 2, "%d BZPOPMIN", n.bzpopmin);
    ph_end(h);
}

/* node: "do not call moveToActive more than number of jobs + 2" */
Test(parity_blocking, move_to_active_jobs_plus_two) {
    jobs_plus_two(6);
    jobs_plus_two(5);
}

/* Node blocks once with the shortest timeout and sees the call return; a
 * worker whose drain delay is below it blocks that long, again and again,
 * each block returning (a 0 would block forever). */
/* node: "[when 0.002 is used as blocktimeout] should not block forever" */
Test(parity_blocking, shortest_block_returns) {
    ph *h = ph_new("q");
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_drain_delay(o, 0.00001);
    ph_worker(h, o);
    wait_blocked(h);
    redisContext *mon = monitor_start();
    PH_RUN_FOR(h, 300);
    char base[128];
    snprintf(base, sizeof base, "%s:%s:", h->prefix, h->qname);
    wire_counts n = monitor_stop(mon, base);
    cr_assert_geq(n.bzpopmin, 3, "%d BZPOPMIN in 300 ms (%s)", n.bzpopmin, n.timeouts);
    const char *want = redis_7_0_8() ? "0.001" : "0.002";
    for (char *t = strtok(n.timeouts, ","); t; t = strtok(NULL, ",")) cr_assert_str_eq(t, want);
    /* and a job added now is taken */
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    ph_end(h);
}

static void complete_in_250_bulk(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    ph_complete_in(h, job, 250, NULL);
}

static void concurrency_plus_one(int major) {
    enum { NUM_JOBS = 57, CONCURRENCY = 13 };
    ph *h = ph_new("q");
    if (major == 5) node5_meta(h);
    h->proc = complete_in_250_bulk;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, CONCURRENCY);
    bullc_worker *w = ph_worker(h, o);
    wait_blocked(h);
    redisContext *mon = monitor_start();
    bullc_bulk_job jobs[NUM_JOBS];
    for (int i = 0; i < NUM_JOBS; i++) jobs[i] = (bullc_bulk_job){.name = "test", .data_json = "{\"foo\":\"bar\"}"};
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, NUM_JOBS, &err), 0, "%s", err.message);
    for (int i = 0; i < NUM_JOBS; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 20000, h->n_completed == NUM_JOBS));
    PH_RUN_FOR(h, 300); /* blocked again (the queue was drained as the last jobs were taken) */
    char base[128];
    snprintf(base, sizeof base, "%s:%s:", h->prefix, h->qname);
    wire_counts n = monitor_stop(mon, base);
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    /* one per slot, the finished jobs fetching the others; the first
       finish that finds none leaves the worker drained, so it blocks: the
       marker the last job taken left ends that block at once, one
       moveToActive finds the queue empty, and the worker blocks again (the
       block that the adds ended began before the count, as Node's spies) */
    cr_assert_eq(n.move_to_active, CONCURRENCY + 1, "%d moveToActive, %d BZPOPMIN (%s)", n.move_to_active, n.bzpopmin,
                 n.timeouts);
    cr_assert_eq(n.bzpopmin, 2, "%d BZPOPMIN (%s)", n.bzpopmin, n.timeouts);
    ph_end(h);
}

/* node: "do not call moveToActive more than concurrency factor + 1" */
Test(parity_blocking, move_to_active_concurrency_plus_one) {
    concurrency_plus_one(6);
    concurrency_plus_one(5);
}

/* ---- the blocking connection broken, refused, or never answered ----------------------- */

/* The CLIENT ID of the worker's blocking connection while it waits in
 * BZPOPMIN (named "<prefix>:<base64(queue)>" as Node names it), or 0. */
static long long blocking_client(ph *h) {
    redisReply *r = ph_cmd("CLIENT LIST");
    char name[128];
    snprintf(name, sizeof name, " name=%s:", h->prefix);
    long long id = 0;
    for (char *line = strtok(r->str, "\n"); line && !id; line = strtok(NULL, "\n"))
        if (strstr(line, name) && strstr(line, " cmd=bzpopmin")) sscanf(line, "id=%lld", &id);
    freeReplyObject(r);
    return id;
}

static void kill_client(long long id) { cr_assert_eq(ph_icmd("CLIENT KILL ID %lld", id), 1); }

/* Node's waitForJob meets 'Connection is closed.', reconnects the blocking
 * client and goes on: here Redis closes it. */
/* node: "[when waiting for a job] reconnects blocking transport after a connection error (#4378)" */
Test(parity_blocking, blocking_connection_killed) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    wait_blocked(h);
    long long first = blocking_client(h);
    cr_assert_neq(first, 0);
    kill_client(first);
    cr_assert(PH_WAIT(h, 5000, blocking_client(h) > first), "blocking again on a new connection");
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 3000, h->n_completed == 1));
    ph_end(h);
}

/* A worker reaching Redis through a fault proxy, blocked in BZPOPMIN for
 * up to `drain_delay` s at a time. */
static faultproxy *proxied_worker(ph *h, char *url, size_t len, double drain_delay) {
    faultproxy *fp = fp_start(tu_redis_port());
    snprintf(url, len, "redis://127.0.0.1:%d", fp_port(fp));
    h->url = url;
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_drain_delay(o, drain_delay);
    ph_worker(h, o);
    wait_blocked(h);
    return fp;
}

/* Node's reconnectBlocking rejects too; the worker waits and tries again:
 * here each new connection is closed as soon as it is accepted. */
/* node: "[when waiting for a job] retries after reconnecting blocking transport fails" */
Test(parity_blocking, blocking_reconnect_refused) {
    ph *h = ph_new("q");
    char url[64];
    faultproxy *fp = proxied_worker(h, url, sizeof url, 1);
    long long first = blocking_client(h);
    cr_assert_neq(first, 0);
    fp_set_mode(fp, FP_REFUSE, 0);
    kill_client(first);
    cr_assert(PH_WAIT(h, 5000, fp_refused(fp) >= 3), "%d reconnections refused", fp_refused(fp));
    cr_assert_eq(blocking_client(h), 0);
    fp_set_mode(fp, FP_PASS, 0);
    cr_assert(PH_WAIT(h, 5000, blocking_client(h) > first), "blocking again on a new connection");
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 3000, h->n_completed == 1));
    ph_end(h);
    fp_stop(fp);
}

/* Node's bzpopmin re-sent by ioredis never settles and a watchdog gives the
 * wait up: here the proxy swallows the answer of the BZPOPMIN that the add
 * ends, and the worker's deadline for it (its timeout, 2 s, plus 2 s) gives
 * the blocking connection up and rebuilds it. The worker is otherwise idle:
 * the swallowed chunk is that answer. */
/* node: "[when waiting for a job] recovers when the blocking command never settles (#4479)" */
Test(parity_blocking, blocking_answer_never_comes) {
    ph *h = ph_new("q");
    char url[64];
    faultproxy *fp = proxied_worker(h, url, sizeof url, 2);
    int accepted = fp_accepted(fp);
    cr_assert_neq(blocking_client(h), 0, "waiting in BZPOPMIN");
    fp_set_mode(fp, FP_DROP_REPLY, 0);
    int64_t added = tu_now_ms();
    const char *id = ph_add(h, "test", "{}", NULL);
    PH_RUN_FOR(h, 1500);
    cr_assert_eq(h->n_completed, 0, "the marker's answer was swallowed");
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1), "not processed: the job is %s", ph_state(h, id));
    cr_assert_lt(tu_now_ms() - added, 4500);
    cr_assert(PH_WAIT(h, 3000, fp_accepted(fp) > accepted), "a new blocking connection");
    ph_end(h);
    fp_stop(fp);
}
