/* SPDX-License-Identifier: MIT */
/* Node BullMQ's pause.test.ts and delay.test.ts / delay.redis.test.ts cases
 * (and worker.test.ts's "pick standard job without delay"), reproduced with
 * bullc's queue, worker and QueueEvents. */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_pause_delay, .timeout = 60);

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}
static void pause_q(ph *h) {
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0, "%s", err.message);
}
static void resume_q(ph *h) {
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_resume(h->q, &err), 0, "%s", err.message);
}

/* ---- pause.test.ts ------------------------------------------------------------------------ */

/* node: "should not process delayed jobs" */
Test(parity_pause_delay, paused_queue_does_not_process_delayed_jobs) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    pause_q(h);
    ph_add(h, "test", "{}", "{\"delay\":300}");
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    PH_RUN_FOR(h, 500);
    cr_assert_eq(h->n_active, 0, "should not process delayed jobs in paused queue.");
    cr_assert_eq(ph_count(h, "waiting"), 1);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}

static bool queue_is_paused;
static void not_while_paused(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_not(queue_is_paused);
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"paused\"}");
    ph_complete(h, job, NULL);
}

/* node: "should pause a queue until resumed" */
Test(parity_pause_delay, pause_until_resumed) {
    ph *h = ph_new("q");
    h->proc = not_while_paused;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_run(w);
    pause_q(h);
    queue_is_paused = true;
    ph_add(h, "test", "{\"foo\":\"paused\"}", NULL);
    ph_add(h, "test", "{\"foo\":\"paused\"}", NULL);
    PH_RUN_FOR(h, 200);
    queue_is_paused = false;
    resume_q(h);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    ph_end(h);
}

static bool pause_flag, resumed_flag = true, first_job = true;
static void pause_on_first(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_not(pause_flag);
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"paused\"}");
    if (first_job) {
        first_job = false;
        pause_flag = true;
        resumed_flag = false;
        pause_q(h);
    } else {
        cr_assert(resumed_flag);
    }
    ph_complete(h, job, NULL);
}

/* node: "should be able to pause a running queue and emit relevant events" */
Test(parity_pause_delay, pause_running_queue_with_events) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = pause_on_first;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"foo\":\"paused\"}", NULL);
    ph_add(h, "test", "{\"foo\":\"paused\"}", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "paused", NULL) == 1));
    cJSON *p = ph_qe_get(h, "paused", 0);
    cr_assert_eq(cJSON_GetArraySize(p), 3, "event, id and nothing else"); /* + our _t */
    pause_flag = false;
    resumed_flag = true; /* the next job may only start once the queue is resumed */
    resume_q(h);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "resumed", NULL) == 1));
    cr_assert_neq(*ph_qe_field(ph_qe_get(h, "resumed", 0), "id"), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    ph_end(h);
}

static bullc_worker *the_worker;
static void not_paused_locally(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_not(bullc_worker_is_paused(the_worker));
    ph_complete(h, job, NULL);
}

/* node: "should pause the queue locally" */
Test(parity_pause_delay, pause_locally) {
    ph *h = ph_new("q");
    h->proc = not_paused_locally;
    the_worker = ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_pause(the_worker);
    /* Node awaits worker.pause(): a fetch already sent when it was called settles first */
    PH_RUN_FOR(h, 100);
    cr_assert_eq(h->n_active, 0);
    ph_add(h, "test", "{\"foo\":\"paused\"}", NULL);
    ph_add(h, "test", "{\"foo\":\"paused\"}", NULL);
    PH_RUN_FOR(h, 200);
    cr_assert_eq(h->n_active, 0);
    cr_assert(bullc_worker_is_paused(the_worker));
    bullc_worker_resume(the_worker);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    ph_end(h);
}

static void delay200(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 200, NULL);
}

/* node: "should pause the queue locally when more than one worker is active" */
Test(parity_pause_delay, pause_two_workers_locally) {
    ph *h = ph_new("q");
    h->proc = delay200;
    bullc_worker *w1 = ph_worker(h, NULL);
    bullc_worker *w2 = ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 2));
    for (int i = 1; i <= 4; i++) {
        char d[4];
        snprintf(d, sizeof d, "%d", i);
        ph_add(h, "test", d, NULL);
    }
    /* each worker started one job */
    cr_assert(PH_WAIT(h, 5000, bullc_worker_active_count(w1) == 1 && bullc_worker_active_count(w2) == 1));
    bullc_worker_pause(w1);
    bullc_worker_pause(w2);
    cr_assert(PH_WAIT(h, 5000, bullc_worker_active_count(w1) == 0 && bullc_worker_active_count(w2) == 0));
    PH_RUN_FOR(h, 50);
    cr_assert_eq(ph_count(h, "active"), 0);
    cr_assert_eq(ph_count(h, "waiting"), 2);
    cr_assert_eq(ph_count(h, "completed"), 2);
    ph_end(h);
}

/* node: "should wait for blocking job retrieval to complete before pausing locally" */
Test(parity_pause_delay, paused_while_blocking) {
    ph *h = ph_new("q");
    h->proc = delay200;
    bullc_worker *w = ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "1", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    bullc_worker_pause(w);
    cr_assert(PH_WAIT(h, 5000, bullc_worker_active_count(w) == 0));
    PH_RUN_FOR(h, 50);
    ph_add(h, "test", "2", NULL);
    PH_RUN_FOR(h, 300);
    cr_assert_eq(ph_count(h, "active"), 0);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    cr_assert_eq(ph_count(h, "completed"), 1);
    ph_end(h);
}

static void delay50(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 50, NULL);
}

/* node: "pauses fast when queue is drained" */
Test(parity_pause_delay, pause_fast_when_drained) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = delay50;
    ph_worker(h, NULL);
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "drained", NULL) >= 1));
    int64_t t0 = tu_now_ms();
    pause_q(h);
    cr_assert_lt(tu_now_ms() - t0, 1000);
    ph_end(h);
}

/* node: "gets the right response from isPaused" */
Test(parity_pause_delay, is_paused) {
    ph *h = ph_new("q");
    bool paused = false;
    pause_q(h);
    cr_assert_eq(bullc_queue_is_paused(h->q, &paused, NULL), 0);
    cr_assert(paused);
    resume_q(h);
    cr_assert_eq(bullc_queue_is_paused(h->q, &paused, NULL), 0);
    cr_assert_not(paused);
    ph_end(h);
}

/* node: "should rename the legacy paused list into wait on resume" */
Test(parity_pause_delay, legacy_paused_list_renamed) {
    ph *h = ph_new("q");
    cr_assert_eq(bullc_queue_ping(h->q, NULL), 0);
    ph_vcmd("LPUSH %s legacy-3 legacy-2 legacy-1", ph_key(h, "paused"));
    resume_q(h);
    cr_assert_eq(ph_icmd("EXISTS %s", ph_key(h, "paused")), 0);
    redisReply *r = ph_cmd("LRANGE %s 0 -1", ph_key(h, "wait"));
    cr_assert_eq(r->elements, 3);
    for (int i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof want, "legacy-%d", i + 1);
        cr_assert_str_eq(r->element[i]->str, want);
    }
    freeReplyObject(r);
    ph_end(h);
}

/* node: "should fully migrate the legacy paused list in batches on resume" */
Test(parity_pause_delay, legacy_paused_list_in_batches) {
    ph *h = ph_new("q");
    cr_assert_eq(bullc_queue_ping(h->q, NULL), 0);
    enum { BATCH = 7000, N = BATCH + 5 };
    ph_vcmd("LPUSH %s waiting-1", ph_key(h, "wait"));
    /* the legacy list, in the order a right-push made it, pushed in two reversed chunks */
    for (int i = N - 1; i >= BATCH / 2; i--) ph_vcmd("LPUSH %s legacy-%d", ph_key(h, "paused"), i);
    for (int i = BATCH / 2 - 1; i >= 0; i--) ph_vcmd("LPUSH %s legacy-%d", ph_key(h, "paused"), i);
    resume_q(h);
    cr_assert_eq(ph_icmd("EXISTS %s", ph_key(h, "paused")), 0);
    cr_assert_eq(ph_icmd("LLEN %s", ph_key(h, "wait")), N + 1);
    redisReply *r = ph_cmd("XRANGE %s - + COUNT 100", ph_key(h, "events"));
    int resumed = 0;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        if (f->elements >= 2 && !strcmp(f->element[1]->str, "resumed")) resumed++;
    }
    freeReplyObject(r);
    cr_assert_eq(resumed, 1);
    ph_end(h);
}

static void delay100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, NULL);
}

/* node: "should pause and resume worker without error" */
Test(parity_pause_delay, pause_resume_worker) {
    ph *h = ph_new("q");
    h->proc = delay100;
    bullc_worker *w = ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    PH_RUN_FOR(h, 10);
    bullc_worker_pause(w);
    PH_RUN_FOR(h, 10);
    bullc_worker_resume(w);
    PH_RUN_FOR(h, 10);
    bullc_worker_pause(w);
    PH_RUN_FOR(h, 10);
    ph_close_worker(h, 0, false);
    cr_assert_eq(h->n_errors, 0);
    ph_end(h);
}

static void pause_then_throw(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) == 0) {
        pause_q(h);
        ph_fail_in(h, job, 10, "Not yet!", 0);
    } else {
        ph_complete_in(h, job, 10, NULL);
    }
}

/* node: "[when backoff is 0] moves job into paused queue" */
Test(parity_pause_delay, retry_into_paused_queue) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = pause_then_throw;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":2,\"backoff\":0}");
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, ({
                          bool seen = false;
                          cJSON *e;
                          cJSON_ArrayForEach(e, h->qev) {
                              if (!strcmp(ph_qe_field(e, "event"), "waiting") && *ph_qe_field(e, "prev")) seen = true;
                          }
                          seen;
                      })));
    cJSON *e;
    cJSON_ArrayForEach(e, h->qev) {
        if (!strcmp(ph_qe_field(e, "event"), "waiting") && *ph_qe_field(e, "prev"))
            cr_assert_str_eq(ph_qe_field(e, "prev"), "active");
    }
    cr_assert_eq(ph_count(h, "wait"), 1);
    cr_assert_str_eq(ph_state(h, id), "waiting");
    resume_q(h);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    ph_end(h);
}

/* ---- delay.test.ts ------------------------------------------------------------------------- */

/* node: "[when priority is not provided] should add job directly into wait state" */
Test(parity_pause_delay, delay_zero_goes_to_wait) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{}", "{\"delay\":0}");
    cr_assert_str_eq(ph_state(h, id), "waiting");
    ph_end(h);
}

/* node: "[when priority is provided] should add job directly into prioritized state" */
Test(parity_pause_delay, delay_zero_with_priority_goes_to_prioritized) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{}", "{\"delay\":0,\"priority\":1}");
    cr_assert_str_eq(ph_state(h, id), "prioritized");
    ph_end(h);
}

/* node: "[when queue is paused] should keep moving delayed jobs to waiting" */
Test(parity_pause_delay, paused_queue_keeps_promoting_delayed_jobs) {
    ph *h = ph_new("q");
    ph_qe(h);
    pause_q(h);
    h->proc = noop;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    ph_add(h, "test", "{\"delayed\":\"foobar\"}", "{\"delay\":2500}");
    int before = ph_qe_count(h, "waiting", NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "waiting", NULL) > before));
    int64_t took = tu_now_ms() - t0;
    cr_assert_geq(took, 2500);
    cr_assert_leq(took, 2500 * 1.2);
    ph_end(h);
}

/* Checks at a completion that the job ran after its delay, within 20%. */
static void completed_in_margin(ph *h, ph_wev *e) {
    cJSON *j = ph_job(h, e->id);
    double d = ph_jnum(j, "processedOn") - ph_jnum(j, "timestamp");
    double want = ph_jnum(cJSON_GetObjectItemCaseSensitive(j, "opts"), "delay");
    cJSON_Delete(j);
    cr_assert_geq(d, want, "job %s ran %g ms after it was added, delay %g", e->id, d, want);
    cr_assert_lt(d, want * 1.2, "processedOn is not within margin (%g for %g)", d, want);
}

/* node: "should process a delayed job added after an initial long delayed job" */
Test(parity_pause_delay, delayed_job_after_a_long_one) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = noop;
    h->on_completed = completed_in_margin;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_drain_delay(o, 5);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"delayed\":\"foobar\"}", "{\"delay\":31536000000}");
    PH_RUN_FOR(h, 1000);
    const char *id = ph_add(h, "test", "{\"delayed\":\"foobar\"}", "{\"delay\":1000}");
    cr_assert_eq(ph_job_num(h, id, "delay"), 1000);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_geq(ph_qe_count(h, "delayed", NULL), 1);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, id);
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cr_assert_eq(ph_count(h, "active"), 0);
    ph_end(h);
}

static bool delay_ok_checked;
static void check_delay_then_100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    int64_t d = bullc_job_processed_on(job) - bullc_job_timestamp(job);
    cJSON *o = cJSON_Parse(bullc_job_opts_json(job));
    double want = ph_jnum(o, "delay");
    cJSON_Delete(o);
    cr_assert_geq(d, want, "waited at least delay time");
    /* The bound catches a promotion missed until the next block timeout
       (seconds), not scheduling jitter on a loaded 2-core CI machine. */
    cr_assert_lt(d, fmax(want * 1.3, want + 1000), "processedOn is not within margin");
    delay_ok_checked = true;
    ph_complete_in(h, job, 100, NULL);
}

/* node: "should process delayed jobs with several workers respecting delay" */
Test(parity_pause_delay, delayed_jobs_with_several_workers) {
    ph *h = ph_new("q");
    h->proc = check_delay_then_100;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 25);
    ph_worker(h, o);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 2));
    enum { N = 50 };
    bullc_bulk_job jobs[N];
    bullc_job_opts *opts[N];
    char data[N][24];
    for (int i = 0; i < N; i++) {
        snprintf(data[i], sizeof data[i], "{\"order\":%d}", N - i);
        bullc_job_opts_new(&opts[i]);
        bullc_job_opts_set_delay(opts[i], 500 + (N - i));
        jobs[i] = (bullc_bulk_job){.name = "test", .data_json = data[i], .opts = opts[i]};
    }
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, N, NULL), 0);
    for (int i = 0; i < N; i++) bullc_free(jobs[i].id), bullc_job_opts_free(opts[i]);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == N));
    cr_assert(delay_ok_checked);
    ph_end(h);
}

static void check_waited_250(ph *h, bullc_job *job, int widx) {
    (void)widx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t d = now - bullc_job_timestamp(job);
    cr_assert_geq(d, 250, "waited at least delay time");
    cr_assert_lt(d, 1250, "waited less than delay time and margin (a missed promotion waits seconds)");
    ph_complete(h, job, NULL);
}

/* node: "should process delayed jobs concurrently respecting delay and concurrency" */
Test(parity_pause_delay, delayed_jobs_concurrently) {
    ph *h = ph_new("q");
    h->proc = check_waited_250;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 100);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 1; i <= 10; i++) {
        char d[48];
        snprintf(d, sizeof d, "{\"foo\":\"bar\",\"index\":%d}", i);
        ph_add(h, "my-queue", d, "{\"delay\":250}");
        PH_RUN_FOR(h, 50);
    }
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 10));
    ph_end(h);
}

static void fail_first_attempt(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) == 0)
        ph_fail_in(h, job, 250, "forced error in test", 0);
    else
        ph_complete_in(h, job, 25, NULL);
}

/* node: "[when failed jobs are retried and moved to delayed] processes jobs without getting stuck" */
Test(parity_pause_delay, retried_to_delayed_not_stuck) {
    ph *h = ph_new("q");
    h->proc = fail_first_attempt;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 50);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_run(w);
    for (int j = 0; j < 2; j++) {
        char d[24];
        snprintf(d, sizeof d, "{\"foo\":\"bar%d\"}", j);
        ph_add(h, "test", d, "{\"attempts\":2,\"backoff\":10}");
    }
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 2));
    cr_assert_eq(ph_count(h, "failed") + ph_count(h, "wait") + ph_count(h, "delayed"), 0);
    ph_end(h);
}

static int fifo_order = 1;
static void check_fifo(ph *h, bullc_job *job, int widx) {
    (void)widx;
    char want[24];
    snprintf(want, sizeof want, "{\"order\":%d}", fifo_order);
    cr_assert_str_eq(bullc_job_data(job), want);
    fifo_order++;
    ph_complete(h, job, NULL);
}

/* node: "should process delayed jobs with exact same timestamps in correct order (FIFO)" */
Test(parity_pause_delay, same_timestamp_fifo) {
    ph *h = ph_new("q");
    h->proc = check_fifo;
    ph_worker(h, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (int i = 1; i <= 43; i++) {
        char d[24], o[64];
        snprintf(d, sizeof d, "{\"order\":%d}", i);
        snprintf(o, sizeof o, "{\"delay\":1000,\"timestamp\":%lld}", (long long)now);
        ph_add(h, "test", d, o);
    }
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 43));
    cr_assert_eq(h->n_failed, 0);
    ph_end(h);
}

/* node: "[when autorun option is provided as false] should process a delayed job only after delayed time" */
Test(parity_pause_delay, delayed_job_with_autorun_off) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"delayed\":\"foobar\"}", "{\"delay\":1000}");
    cJSON *j = ph_job(h, id);
    cr_assert_eq(ph_jnum(cJSON_GetObjectItemCaseSensitive(j, "opts"), "delay"), 1000);
    cJSON_Delete(j);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "completed", NULL) == 1));
    cr_assert_geq(tu_now_ms() - t0, 1000);
    cr_assert_geq(ph_qe_count(h, "delayed", NULL), 1);
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}

/* node: "[when markers are deleted] should process a delayed job without getting stuck" */
Test(parity_pause_delay, deleted_markers_do_not_stick) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = noop;
    h->on_completed = completed_in_margin;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_drain_delay(o, 5); /* Node's default */
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"delayed\":\"foobar\"}", "{\"delay\":6000}");
    cr_assert_eq(ph_job_num(h, id, "delay"), 6000);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "delayed", NULL) == 1));
    ph_vcmd("DEL %s", ph_key(h, "marker"));
    bullc_worker_run(w);
    PH_RUN_FOR(h, 2000);
    ph_vcmd("DEL %s", ph_key(h, "marker"));
    cr_assert(PH_WAIT(h, 8000, h->n_completed == 1));
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}

static void delay1000(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 1000, NULL);
}
static int64_t bulk_start;
static void add_bulk_after_first(ph *h, ph_wev *e) {
    (void)e;
    if (bulk_start) return;
    bulk_start = tu_now_ms();
    bullc_job_opts *d;
    bullc_job_opts_new(&d);
    bullc_job_opts_set_delay(d, 3000);
    bullc_bulk_job jobs[2] = {{.name = "test1", .data_json = "{\"idx\":0,\"foo\":\"bar\"}"},
                              {.name = "test2", .data_json = "{\"idx\":1,\"foo\":\"baz\"}", .opts = d}};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 2, NULL), 0);
    bullc_free(jobs[0].id), bullc_free(jobs[1].id);
    bullc_job_opts_free(d);
}

/* node: "[when adding delayed job after standard one when worker is drained] pick standard job without delay" */
Test(parity_pause_delay, standard_job_first_when_drained) {
    ph *h = ph_new("q");
    h->proc = delay1000;
    h->on_completed = add_bulk_after_first;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test1", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 3));
    int64_t d = ph_wget(h, 'c', 2)->t - bulk_start;
    cr_assert_geq(d, 4000);
    cr_assert_lt(d, 4500);
    cr_assert_str_eq(ph_wget(h, 'c', 1)->name, "test1", "the standard job runs at once");
    cr_assert_eq(ph_job_num(h, ph_wget(h, 'c', 2)->id, "delay"), 0);
    ph_end(h);
}
