/* SPDX-License-Identifier: MIT */
/* bullc-test-cluster-loop: whether a worker group and a bullc_aqueue_conn
 * on Redis Cluster ever hold the loop with a blocking read of the slot map,
 * for the Node test (compat-tests/test/cluster.test.js) that pauses a seed
 * node meanwhile:
 *
 *   bullc-test-cluster-loop URL WAIT_URL PREFIX JOBS QUEUE...
 *
 * A bullc_aqueue_conn on WAIT_URL (whose seeds do not answer at start: it
 * is made anyway and reads the map on the loop) asks QUEUE's counts every
 * 100 ms; once the loop runs, a worker group on URL and a member per QUEUE
 * are made and complete JOBS jobs. A 10 ms timer measures the longest the
 * loop was held. Prints "started", "counts ok" (the first counts read),
 * "completed N" and at the end "max gap MS"; exit 0, 1 (not done within
 * 60 s) or 2 (usage). */
#include <bullc/bullc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define MAXQ 16

static uv_loop_t loop;
static uv_timer_t tick, poll_timer, start_timer, give_up;
static bullc_redis_opts *ro, *wait_ro;
static bullc_aqueue_conn *conn;
static bullc_aqueue *aq;
static bullc_worker_group *group;
static bullc_worker *workers[MAXQ];
static const char *prefix, *queues[MAXQ];
static int nq, jobs, completed, open_workers, exit_code = 1;
static bool counts_ok, asking, stopping;
static uint64_t last_tick, max_gap;

static void on_tick(uv_timer_t *t) {
    uint64_t now = uv_now(t->loop);
    if (now - last_tick > max_gap) max_gap = now - last_tick;
    last_tick = now;
}

static void on_group_closed(bullc_worker_group *g, void *data) {
    (void)data;
    bullc_worker_group_free(g);
}

static void on_worker_closed(bullc_worker *w, void *data) {
    (void)data;
    bullc_worker_free(w);
    if (--open_workers == 0) bullc_worker_group_close(group, on_group_closed, NULL);
}

static void on_conn_closed(bullc_aqueue_conn *c, void *data) {
    (void)data;
    bullc_aqueue_conn_free(c);
}

static void on_aq_closed(bullc_aqueue *q, void *data) {
    (void)data;
    bullc_aqueue_free(q);
    bullc_aqueue_conn_close(conn, on_conn_closed, NULL);
}

static void stop(int code) {
    if (stopping) return;
    stopping = true;
    exit_code = code;
    printf("max gap %llu ms\n", (unsigned long long)max_gap);
    fflush(stdout);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&poll_timer, NULL);
    uv_close((uv_handle_t *)&start_timer, NULL);
    uv_close((uv_handle_t *)&give_up, NULL);
    for (int i = 0; i < nq; i++)
        if (workers[i]) bullc_worker_close(workers[i], false, 5000, on_worker_closed, NULL);
    if (group && !open_workers) bullc_worker_group_close(group, on_group_closed, NULL);
    bullc_aqueue_close(aq, on_aq_closed, NULL);
}

static void maybe_done(void) {
    if (counts_ok && completed >= jobs) stop(0);
}

static void on_counts(bullc_aqueue *q, int status, const char *json, const bullc_error *err, void *data) {
    (void)q, (void)json, (void)err, (void)data;
    asking = false;
    if (status || counts_ok) return;
    counts_ok = true;
    printf("counts ok\n");
    fflush(stdout);
    maybe_done();
}

static void on_poll(uv_timer_t *t) {
    (void)t;
    const char *states[] = {"wait"};
    if (!counts_ok && !asking && !stopping) asking = bullc_aqueue_get_job_counts(aq, states, 1, on_counts, NULL) == 0;
}

static void process(bullc_job *job, void *data) {
    (void)data;
    bullc_job_complete(job, NULL);
    if (++completed % 10 == 0) {
        printf("completed %d\n", completed);
        fflush(stdout);
    }
    maybe_done();
}

static void on_start(uv_timer_t *t) {
    (void)t;
    bullc_error err = {0};
    bullc_worker_opts *o = NULL;
    int rc = bullc_worker_group_new(&group, &loop, ro, &err);
    if (!rc) rc = bullc_worker_opts_new(&o);
    if (!rc) rc = bullc_worker_opts_set_redis(o, ro);
    if (!rc) rc = bullc_worker_opts_set_prefix(o, prefix);
    if (!rc) rc = bullc_worker_opts_set_group(o, group);
    if (!rc) rc = bullc_worker_opts_set_processor(o, process, NULL);
    for (int i = 0; !rc && i < nq; i++)
        if (!(rc = bullc_worker_new(&workers[i], &loop, queues[i], o, NULL, NULL, &err))) open_workers++;
    bullc_worker_opts_free(o);
    printf(rc ? "start failed: %s\n" : "started\n", err.message);
    fflush(stdout);
    if (rc) stop(1);
}

static void on_give_up(uv_timer_t *t) {
    (void)t;
    stop(1);
}

int main(int argc, char **argv) {
    if (argc < 6 || argc - 5 > MAXQ || (jobs = atoi(argv[4])) <= 0) {
        fprintf(stderr, "usage: %s URL WAIT_URL PREFIX JOBS QUEUE...\n", argv[0]);
        return 2;
    }
    prefix = argv[3];
    for (int i = 5; i < argc; i++) queues[nq++] = argv[i];
    bullc_error err = {0};
    bullc_queue_opts *qo = NULL;
    uv_loop_init(&loop);
    int rc = bullc_redis_opts_new(&ro);
    if (!rc) rc = bullc_redis_opts_new(&wait_ro);
    if (!rc) rc = bullc_redis_opts_parse_url(ro, argv[1], &err);
    if (!rc) rc = bullc_redis_opts_parse_url(wait_ro, argv[2], &err);
    /* a paused seed is left within 1.5 s */
    if (!rc) rc = bullc_redis_opts_set_timeouts(ro, 500, 1000);
    if (!rc) rc = bullc_redis_opts_set_timeouts(wait_ro, 500, 1000);
    /* made before the loop runs, where a blocking read is allowed */
    if (!rc) rc = bullc_aqueue_conn_new(&conn, &loop, wait_ro, &err);
    if (!rc) rc = bullc_queue_opts_new(&qo);
    if (!rc) rc = bullc_queue_opts_set_prefix(qo, prefix);
    if (!rc) rc = bullc_aqueue_new_shared(&aq, conn, queues[0], qo, &err);
    bullc_queue_opts_free(qo);
    if (rc) {
        fprintf(stderr, "%s\n", err.message);
        return 2;
    }
    uv_timer_t *timers[] = {&tick, &poll_timer, &start_timer, &give_up};
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) uv_timer_init(&loop, timers[i]);
    uv_update_time(&loop); /* after the blocking read above */
    last_tick = uv_now(&loop);
    uv_timer_start(&tick, on_tick, 10, 10);
    uv_timer_start(&poll_timer, on_poll, 0, 100);
    uv_timer_start(&start_timer, on_start, 20, 0);
    uv_timer_start(&give_up, on_give_up, 60000, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    bullc_redis_opts_free(ro);
    bullc_redis_opts_free(wait_ro);
    rc = uv_loop_close(&loop);
    if (rc) fprintf(stderr, "the loop did not close clean: %s\n", uv_strerror(rc));
    return rc ? 1 : exit_code;
}
