/* SPDX-License-Identifier: MIT */
/* Worker groups against a real redis-server: thousands of queues served over
 * a fixed number of connections, fairness under a flooding queue and the
 * process-wide cap, both BullMQ majors. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "testutil.h"

static redisContext *rc;
static void setup(void) { rc = tu_redis(); }
static void teardown(void) { redisFree(rc); }
TestSuite(worker_group, .init = setup, .fini = teardown, .timeout = 240);

/* TCP connections this process holds to the tests' Redis, from /proc: what
 * the server sees as this process's clients. */
static int own_redis_connections(void) {
    char inodes[4096][24];
    int ninodes = 0;
    DIR *d = opendir("/proc/self/fd");
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d)) && ninodes < 4096;) {
        char path[300], link[64];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, link, sizeof link - 1);
        if (n <= 0) continue;
        link[n] = '\0';
        if (!strncmp(link, "socket:[", 8)) snprintf(inodes[ninodes++], 24, "%.*s", (int)(strlen(link) - 9), link + 8);
    }
    closedir(d);
    int count = 0;
    const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "r");
        if (!f) continue;
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char rem[64], inode[24];
            unsigned st;
            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, " %*s %*s %63s %x %*s %*s %*s %*s %*s %23s", rem, &st, inode) != 3) continue;
            const char *colon = strrchr(rem, ':');
            if (!colon || (int)strtol(colon + 1, NULL, 16) != tu_redis_port() || st != 1 /* ESTABLISHED */) continue;
            for (int i = 0; i < ninodes; i++)
                if (!strcmp(inodes[i], inode)) count++;
        }
        fclose(f);
    }
    return count;
}

typedef struct gctx {
    uv_loop_t loop;
    bullc_worker_group *g;
    bullc_worker **w;
    int nw, closed, completed, want;
    bool group_closed, closing;
    int conns_at_end;
    const char *prefix;
    /* fairness */
    int flood_completed, flood_total, max_active, quiet_added, quiet_started;
    int64_t added_at[64], latency[64];
    int flood_done_when_quiet[64];
    /* jobs one after another: the group's BZPOPMINs and CLIENT UNBLOCKs */
    bool one_by_one;
    bool long_drain; /* the members' drain delay is 60 s */
    long long bzpopmin_at_start, unblock_at_start, bzpopmin_at_end, unblock_at_end;
    uv_timer_t guard, adder;
    /* a stalled job in member `stuck` - 1's queue: when that member got
     * ready (CLOCK_REALTIME ms, as the job's finishedOn) and found it */
    int stuck;
    int64_t stuck_ready, stuck_found;
} gctx;

static void group_closed(bullc_worker_group *g, void *data) {
    (void)g;
    ((gctx *)data)->group_closed = true;
}

static void worker_closed(bullc_worker *w, void *data) {
    gctx *c = data;
    (void)w;
    if (++c->closed == c->nw) cr_assert_eq(bullc_worker_group_close(c->g, group_closed, c), 0);
}

static void close_all(gctx *c, bool force) {
    c->closing = true;
    uv_timer_stop(&c->adder);
    for (int i = 0; i < c->nw; i++) bullc_worker_close(c->w[i], force, 5000, worker_closed, c);
}

static void add_later(uv_timer_t *t);
static void next_cb(uv_timer_t *t);

/* How many times Redis ran a command ("bzpopmin", "client|unblock"), from
 * INFO commandstats (the tests run one at a time on their Redis). */
static long long calls_of(const char *cmd) {
    redisReply *r = tu_cmd(rc, "INFO commandstats");
    char field[64];
    snprintf(field, sizeof field, "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, field);
    long long n = p ? atoll(p + strlen(field)) : 0;
    freeReplyObject(r);
    return n;
}

static void guard_cb(uv_timer_t *t) {
    gctx *c = t->data;
    cr_log_error("test guard fired: completed=%d of %d", c->completed, c->want);
    close_all(c, true);
}

static void complete(bullc_job *job, void *data) {
    (void)data;
    bullc_job_complete(job, "true");
}

static void ev_completed(bullc_worker *w, const bullc_job *job, const char *res, void *data) {
    gctx *c = data;
    (void)w, (void)res;
    /* the quiet jobs come once the flood is being worked through */
    if (!strcmp(bullc_job_name(job), "flood") && ++c->flood_completed == 500)
        uv_timer_start(&c->adder, add_later, 0, 0);
    if (c->one_by_one && c->completed + 1 < c->want) uv_timer_start(&c->adder, next_cb, 20, 0);
    if (++c->completed == c->want && !c->closing) {
        c->bzpopmin_at_end = calls_of("bzpopmin");
        c->unblock_at_end = calls_of("client|unblock");
        c->conns_at_end = own_redis_connections();
        close_all(c, false);
    }
}

static void ev_active(bullc_worker *w, const bullc_job *job, void *data) {
    gctx *c = data;
    (void)w;
    int a = bullc_worker_group_active_count(c->g);
    if (a > c->max_active) c->max_active = a;
    if (!strncmp(bullc_job_name(job), "quiet", 5)) {
        int i = atoi(bullc_job_name(job) + 5);
        c->latency[i] = tu_now_ms() - c->added_at[i];
        c->flood_done_when_quiet[i] = c->flood_completed;
        c->quiet_started++;
        /* the next is added once this one started, not on a clock: a fixed
         * pace let a fast machine finish the flood before the last was added */
        if (!c->closing) uv_timer_start(&c->adder, add_later, 2, 0);
    }
    if (!strcmp(bullc_job_name(job), "late")) c->latency[0] = tu_now_ms() - c->added_at[0];
}

/* The group on the tests' Redis with room for `nw` workers and its timers
 * (the guard fires after `guard_ms`); returns the settings its workers
 * share, for the caller to free. */
static bullc_worker_opts *group_new(gctx *c, int nw, uint64_t guard_ms) {
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_error err = {0};
    cr_assert_eq(bullc_worker_group_new(&c->g, &c->loop, ro, &err), 0, "%s", err.message);
    bullc_redis_opts_free(ro);
    c->w = calloc((size_t)nw + 1, sizeof *c->w);
    uv_timer_init(&c->loop, &c->guard);
    uv_timer_init(&c->loop, &c->adder);
    c->guard.data = c->adder.data = c;
    uv_timer_start(&c->guard, guard_cb, guard_ms, 0);
    uv_unref((uv_handle_t *)&c->guard);
    bullc_worker_opts *o;
    bullc_worker_opts_new(&o);
    bullc_worker_opts_set_group(o, c->g);
    bullc_worker_opts_set_prefix(o, c->prefix);
    bullc_worker_opts_set_processor(o, complete, NULL);
    return o;
}

static int64_t epoch_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ev_ready(bullc_worker *w, void *data) {
    gctx *c = data;
    if (c->stuck && w == c->w[c->stuck - 1] && !c->stuck_ready) c->stuck_ready = epoch_ms();
}

static void ev_stalled(bullc_worker *w, const char *job_id, void *data) {
    gctx *c = data;
    (void)job_id;
    if (c->stuck && w == c->w[c->stuck - 1]) c->stuck_found = epoch_ms();
}

/* One more worker of the group, on queue `q`. */
static void add_worker(gctx *c, const bullc_worker_opts *o, const char *q) {
    bullc_worker_events ev = {.completed = ev_completed, .active = ev_active, .ready = ev_ready, .stalled = ev_stalled};
    bullc_error err = {0};
    cr_assert_eq(bullc_worker_new(&c->w[c->nw], &c->loop, q, o, &ev, c, &err), 0, "%s", err.message);
    c->nw++;
}

/* Starts `nw` workers named <name><i> (prefix c->prefix) in one group. */
static void start(gctx *c, int nw, const char *name, int concurrency, int major, int cap) {
    bullc_worker_opts *o = group_new(c, nw, 180000);
    cr_assert_eq(bullc_worker_group_set_concurrency(c->g, cap), 0);
    bullc_worker_opts_set_bullmq_version(o, major);
    /* counting a job's BZPOPMINs: the members' drain-delay polls, spread over
     * the delay (worker_group.c), come after the count */
    if (c->one_by_one || c->long_drain) bullc_worker_opts_set_drain_delay(o, 60);
    for (int i = 0; i < nw; i++) {
        char q[64];
        snprintf(q, sizeof q, "%s%d", name, i);
        bullc_worker_opts_set_concurrency(o, i == 0 && concurrency ? concurrency : 1);
        add_worker(c, o, q);
    }
    bullc_worker_opts_free(o);
}

static void finish(gctx *c) {
    while (!c->group_closed) uv_run(&c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&c->guard, NULL);
    uv_close((uv_handle_t *)&c->adder, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    for (int i = 0; i < c->nw; i++) bullc_worker_free(c->w[i]);
    free(c->w);
    bullc_worker_group_free(c->g);
    cr_assert_eq(uv_loop_close(&c->loop), 0, "the loop must close clean");
}

static void add_one(const char *prefix, const char *queue, const char *name, int major) {
    bullc_queue_opts *qo;
    bullc_queue_opts_new(&qo);
    bullc_queue_opts_set_prefix(qo, prefix);
    bullc_queue_opts_set_bullmq_version(qo, major);
    bullc_queue *q;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_new(&q, queue, qo, &err), 0, "%s", err.message);
    cr_assert_geq(bullc_queue_add(q, name, "{}", NULL, NULL, &err), 0, "%s", err.message);
    bullc_queue_free(q);
    bullc_queue_opts_free(qo);
}

Test(worker_group, two_thousand_queues_over_four_lanes) {
    gctx c = {.prefix = tu_prefix(), .want = 2000};
    for (int i = 0; i < c.want; i++) {
        char q[32];
        snprintf(q, sizeof q, "tenant%d", i);
        add_one(c.prefix, q, "job", 0);
    }
    uv_loop_init(&c.loop);
    start(&c, c.want, "tenant", 1, 0, 0);
    finish(&c);
    cr_assert_eq(c.completed, c.want);
    /* four lanes of 500 members (a blocking connection each) on one
     * command connection, and this test's own */
    cr_assert_eq(c.conns_at_end, 6, "%d connections to Redis", c.conns_at_end);
    for (int i = 0; i < c.want; i += 199) {
        redisReply *r = tu_cmd(rc, "ZCARD %s:tenant%d:completed", c.prefix, i);
        cr_assert_eq(r->integer, 1, "tenant%d", i);
        freeReplyObject(r);
    }
}

/* Jobs added once the workers wait, one at a time: each is taken through its
 * marker. */
static void add_later(uv_timer_t *t) {
    gctx *c = t->data;
    if (c->quiet_added == 40 || c->closing) return;
    int i = c->quiet_added++;
    char q[32], name[32];
    snprintf(q, sizeof q, "quiet%d", 1 + (i * 37) % (c->nw - 1));
    snprintf(name, sizeof name, "quiet%d", i);
    add_one(c->prefix, q, name, 0);
    c->added_at[i] = tu_now_ms();
}

static void check_latencies(gctx *c, int64_t bound_ms) {
    int64_t worst = 0;
    for (int i = 0; i < c->quiet_added; i++) worst = c->latency[i] > worst ? c->latency[i] : worst;
    cr_log_info("quiet jobs: %d started, the slowest %lld ms after its add (first %lld, last %lld)", c->quiet_started,
                (long long)worst, (long long)c->latency[0], (long long)c->latency[c->quiet_added - 1]);
    cr_assert_eq(c->quiet_started, c->quiet_added);
    cr_assert_leq(worst, bound_ms);
}

/* One queue with 10,000 jobs waiting; 40 jobs added one by one to 299 quiet
 * queues of the same group start promptly, long before the flood is done. */
static void flood_case(int cap, int flood_concurrency) {
    gctx c = {.prefix = tu_prefix(), .flood_total = 10000};
    bullc_queue *fq = tu_queue("quiet0", c.prefix);
    bullc_bulk_job jobs[1000];
    for (int b = 0; b < 10; b++) {
        for (int i = 0; i < 1000; i++) jobs[i] = (bullc_bulk_job){.name = "flood", .data_json = "{}"};
        cr_assert_eq(bullc_queue_add_bulk(fq, jobs, 1000, NULL), 0);
        for (int i = 0; i < 1000; i++) bullc_free(jobs[i].id);
    }
    bullc_queue_free(fq);
    c.want = c.flood_total + 40;
    uv_loop_init(&c.loop);
    start(&c, 300, "quiet", flood_concurrency, 0, cap);
    finish(&c);
    cr_assert_eq(c.completed, c.want);
    /* a loaded two-core machine: the bound is generous, the log has the value */
    check_latencies(&c, 1000);
    for (int i = 0; i < c.quiet_added; i++)
        cr_assert_lt(c.flood_done_when_quiet[i], c.flood_total, "quiet job %d waited for the flood", i);
    if (cap) cr_assert_leq(c.max_active, cap, "%d jobs at once over the cap of %d", c.max_active, cap);
}

Test(worker_group, a_flooding_queue_does_not_delay_the_others) { flood_case(0, 1); }

Test(worker_group, the_cap_serves_waiting_queues_in_turn) { flood_case(4, 8); }

/* Jobs added one at a time, each 20 ms after the one before completed, to
 * queues the group's BZPOPMIN names: each costs it two BZPOPMINs (one after
 * the job's marker, one after the marker BullMQ puts back as it hands the job
 * out, both naming the queue served), and no CLIENT UNBLOCK with a BZPOPMIN
 * more when that queue waits again (thousands of keys each with thousands of
 * queues). */
static void add_next(gctx *c) {
    char q[32];
    snprintf(q, sizeof q, "seq%d", 1 + (c->completed * 7) % (c->nw - 1));
    add_one(c->prefix, q, "one", 0);
}

static void next_cb(uv_timer_t *t) { add_next(t->data); }

static void first_add(uv_timer_t *t) {
    gctx *c = t->data;
    c->bzpopmin_at_start = calls_of("bzpopmin");
    c->unblock_at_start = calls_of("client|unblock");
    add_next(c);
}

Test(worker_group, one_bzpopmin_per_job_one_after_another) {
    gctx c = {.prefix = tu_prefix(), .want = 30, .one_by_one = true};
    uv_loop_init(&c.loop);
    start(&c, 200, "seq", 1, 0, 0);
    /* once every member waits */
    uv_timer_start(&c.adder, first_add, 500, 0);
    finish(&c);
    cr_assert_eq(c.completed, c.want);
    long long bz = c.bzpopmin_at_end - c.bzpopmin_at_start, ub = c.unblock_at_end - c.unblock_at_start;
    cr_assert_leq(bz, 2 * c.want + 3, "%lld BZPOPMINs (%lld CLIENT UNBLOCKs) for %d jobs", bz, ub, c.want);
    cr_assert_leq(ub, 3, "%lld CLIENT UNBLOCKs for %d jobs", ub, c.want);
}

/* A delayed job in a queue whose member waits: its marker tells the member
 * when the job is due, and the lane's BZPOPMIN times out then to wake it
 * (nothing else would in time: the drain delay is 60 s, a lane's wait 10 s). */
static void add_delayed(uv_timer_t *t) {
    gctx *c = t->data;
    bullc_queue *q = tu_queue("late7", c->prefix);
    bullc_free(tu_add(q, "late", "{}", "{\"delay\":700}"));
    c->added_at[0] = tu_now_ms();
    bullc_queue_free(q);
}

Test(worker_group, a_delayed_job_starts_when_due) {
    gctx c = {.prefix = tu_prefix(), .want = 1, .long_drain = true};
    uv_loop_init(&c.loop);
    start(&c, 50, "late", 1, 0, 0);
    uv_timer_start(&c.adder, add_delayed, 500, 0);
    finish(&c);
    cr_assert_eq(c.completed, 1);
    cr_log_info("the delayed job started %lld ms after its add", (long long)c.latency[0]);
    cr_assert(c.latency[0] >= 600 && c.latency[0] <= 3000, "started %lld ms after its add (delay 700)",
              (long long)c.latency[0]);
}

/* Queues of both majors in one group: each worker speaks its queue's. */
Test(worker_group, both_majors) {
    gctx c = {.prefix = tu_prefix(), .want = 20};
    for (int i = 0; i < 10; i++) {
        char q[32];
        snprintf(q, sizeof q, "v5q%d", i);
        add_one(c.prefix, q, "job", 5);
        snprintf(q, sizeof q, "v6q%d", i);
        add_one(c.prefix, q, "job", 6);
    }
    uv_loop_init(&c.loop);
    bullc_worker_opts *o = group_new(&c, 20, 60000);
    for (int i = 0; i < 20; i++) {
        char q[32];
        snprintf(q, sizeof q, "v%dq%d", i % 2 ? 6 : 5, i / 2);
        add_worker(&c, o, q);
    }
    bullc_worker_opts_free(o);
    finish(&c);
    cr_assert_eq(c.completed, 20);
    for (int i = 0; i < 10; i++) {
        for (int major = 5; major <= 6; major++) {
            char key[128];
            snprintf(key, sizeof key, "%s:v%dq%d:meta", c.prefix, major, i);
            char *v = tu_hget(rc, key, "version");
            cr_assert(v && !strncmp(v, major == 5 ? "bullmq:5." : "bullmq:6.", 9), "%s: %s", key, v ? v : "none");
            free(v);
            redisReply *r = tu_cmd(rc, "ZCARD %s:v%dq%d:completed", c.prefix, major, i);
            cr_assert_eq(r->integer, 1, "v%dq%d", major, i);
            freeReplyObject(r);
        }
    }
}

/* A job left active by a worker that hung (its processor keeps the job,
 * nothing renews its lock), marked stalled by an earlier check, in the last
 * of 2,000 queues of a group: the member's first stalled check, sent in the
 * group's batches of first checks (5 a millisecond: 2,000 queues' within
 * 0.4 s of their start), moves it back to wait, and the member runs it. The
 * checks came one a millisecond before: that queue's 2 s after its start. */
static bullc_job *stuck_job;
static char stuck_id[64];
static uv_timer_t stuck_timer;
static bool stuck_closed;

static void hold(bullc_job *job, void *data) {
    (void)data;
    stuck_job = job;
    snprintf(stuck_id, sizeof stuck_id, "%s", bullc_job_id(job));
}

static void stuck_group(uv_timer_t *t) {
    gctx *c = t->data;
    uv_close((uv_handle_t *)t, NULL);
    start(c, 2000, "stall", 1, 0, 0);
}

static void stuck_worker_closed(bullc_worker *w, void *data) {
    (void)w, (void)data;
    stuck_closed = true;
}

static void stuck_marked(bullc_worker *w, int code, int stalled, void *data) {
    cr_assert_eq(code, 0);
    cr_assert_eq(stalled, 0, "its lock lives: marked, not moved");
    /* it dies: its job's result is dropped, the job stays active */
    bullc_worker_close(w, true, 0, stuck_worker_closed, NULL);
    bullc_job_complete(stuck_job, "true");
    /* the group once the lock (200 ms) and the check's stalled-check key
     * (100 ms) are gone */
    stuck_timer.data = data;
    uv_timer_start(&stuck_timer, stuck_group, 300, 0);
}

static void stuck_active(bullc_worker *w, const bullc_job *job, void *data) {
    (void)job;
    cr_assert_eq(bullc_worker_check_stalled(w, stuck_marked, data), 0);
}

Test(worker_group, a_stalled_job_found_at_start_in_the_last_of_2000_queues) {
    gctx c = {.prefix = tu_prefix(), .want = 1, .stuck = 2000};
    add_one(c.prefix, "stall1999", "stuck", 0);
    uv_loop_init(&c.loop);
    uv_timer_init(&c.loop, &stuck_timer);
    bullc_worker_opts *o = tu_wopts();
    bullc_redis_opts *ro = tu_redis_opts();
    bullc_worker_opts_set_redis(o, ro);
    bullc_redis_opts_free(ro);
    bullc_worker_opts_set_prefix(o, c.prefix);
    bullc_worker_opts_set_processor(o, hold, NULL);
    bullc_worker_opts_set_lock_duration(o, 200);
    bullc_worker_opts_set_skip_lock_renewal(o, true);
    bullc_worker_opts_set_skip_stalled_check(o, true);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_events ev = {.active = stuck_active};
    bullc_worker *hung;
    bullc_error err = {0};
    cr_assert_eq(bullc_worker_new(&hung, &c.loop, "stall1999", o, &ev, &c, &err), 0, "%s", err.message);
    finish(&c);
    cr_assert(stuck_closed);
    bullc_worker_free(hung);
    cr_assert_eq(c.completed, 1);
    char key[128];
    snprintf(key, sizeof key, "%s:stall1999:%s", c.prefix, stuck_id);
    char *finished = tu_hget(rc, key, "finishedOn"), *counter = tu_hget(rc, key, "stc");
    cr_assert(finished && counter && !strcmp(counter, "1"), "finishedOn %s, stc (stalledCounter) %s",
              finished ? finished : "none", counter ? counter : "none");
    int64_t found = c.stuck_found - c.stuck_ready, done = atoll(finished) - c.stuck_ready;
    free(finished), free(counter);
    cr_log_info("the stalled job: found %lld ms, completed %lld ms after its queue's worker got ready",
                (long long)found, (long long)done);
    /* 0.4 s by the batches; a loaded machine's loop comes late */
    cr_assert(c.stuck_ready && c.stuck_found, "ready %lld, found %lld", (long long)c.stuck_ready,
              (long long)c.stuck_found);
    cr_assert_leq(done, 1500);
}
