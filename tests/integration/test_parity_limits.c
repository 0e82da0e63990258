/* SPDX-License-Identifier: MIT */
/* Node BullMQ's rate_limiter.test.ts and concurrency.test.ts cases: the
 * worker's limiter, the queue's global rate limit and global concurrency,
 * dynamic rate limits (Node's worker.rateLimit / queue.rateLimit with a
 * RateLimitError), reproduced with bullc. Where the Node test only waits out
 * 1 s limiter windows, the windows are shorter here (the assertion scales
 * with them). */
#include "test_flow_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_limits, .timeout = 60);

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}
static void add_n(ph *h, int n, const char *name, const char *opts_json) {
    bullc_job_opts *o = tu_job_opts(opts_json);
    bullc_bulk_job *jobs = calloc((size_t)n, sizeof *jobs);
    char(*data)[32] = calloc((size_t)n, sizeof *data);
    for (int i = 0; i < n; i++) {
        snprintf(data[i], sizeof data[i], "{\"foo\":\"bar%d\"}", i);
        jobs[i] = (bullc_bulk_job){.name = name, .data_json = data[i], .opts = o};
    }
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, (size_t)n, &err), 0, "%s", err.message);
    for (int i = 0; i < n; i++) bullc_free(jobs[i].id);
    free(jobs);
    free(data);
    bullc_job_opts_free(o);
}
static int64_t rl_ttl(ph *h, int64_t max_jobs) {
    int64_t ttl = 0;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_rate_limit_ttl(h->q, max_jobs, &ttl, &err), 0, "%s", err.message);
    return ttl;
}
static bullc_worker *limited_worker(ph *h, ph_proc_fn proc, int concurrency, int64_t max, int64_t duration,
                                    bool autorun) {
    h->proc = proc;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, concurrency);
    bullc_worker_opts_set_limiter(o, max, duration);
    bullc_worker_opts_set_autorun(o, autorun);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready >= 1));
    return w;
}
static void rate_limited(ph *h, bullc_job *job) {
    ph_fail(h, job, "bullmq:rateLimitExceeded", BULLC_FAIL_RATE_LIMITED);
}

/* ---- worker limiter --------------------------------------------------------------------- */

static void delay200(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 200, NULL);
}

/* node: "should not put a job into the delayed queue when limit is hit" */
Test(parity_limits, limit_does_not_delay_jobs) {
    ph *h = ph_new("q");
    limited_worker(h, delay200, 5, 1, 1000, true);
    add_n(h, 5, "test", NULL);
    PH_RUN_FOR(h, 100);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}

/* Completions of `n` jobs, as QueueEvents sees them; returns the time they took. */
static int64_t run_jobs_timed(ph *h, int n, const char *name) {
    int64_t t0 = tu_now_ms();
    add_n(h, n, name, NULL);
    cr_assert(PH_WAIT(h, 20000, ph_qe_count(h, "completed", NULL) == n));
    cr_assert_eq(ph_qe_count(h, "failed", NULL), 0);
    return tu_now_ms() - t0;
}

/* node: "should obey the rate limit" */
Test(parity_limits, obey_the_rate_limit) {
    ph *h = ph_new("q");
    ph_qe(h);
    limited_worker(h, noop, 1, 1, 200, true);
    int64_t took = run_jobs_timed(h, 10, "rate test");
    cr_assert_geq(took, 9 * 200, "took %lld", (long long)took);
    ph_end(h);
}

/* node: "should obey the rate limit with max value greater than 1" */
Test(parity_limits, obey_the_rate_limit_max_2) {
    ph *h = ph_new("q");
    ph_qe(h);
    limited_worker(h, noop, 1, 2, 250, true);
    int64_t took = run_jobs_timed(h, 10, "rate test");
    cr_assert_geq(took, (10 / 2 - 1) * 250, "took %lld", (long long)took);
    ph_end(h);
}

static void short_random(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 1 + rand() % 4, NULL);
}
static void processing_time_within_window(ph *h, ph_wev *e) {
    cJSON *j = ph_job(h, e->id);
    double d = ph_jnum(j, "finishedOn") - ph_jnum(j, "processedOn");
    cJSON_Delete(j);
    cr_assert_leq(d, 250, "job %s took %g ms from processedOn to finishedOn", e->id, d);
}

/* node: "should respect processing time without adding limiter delay" */
Test(parity_limits, processing_time_without_limiter_delay) {
    ph *h = ph_new("q");
    h->on_completed = processing_time_within_window;
    limited_worker(h, short_random, 5, 4, 250, true);
    add_n(h, 40, "rate test", NULL);
    cr_assert(PH_WAIT(h, 20000, h->n_completed == 40));
    ph_end(h);
}

/* node: "should quickly close a worker even with slow rate-limit" */
Test(parity_limits, quick_close_with_slow_limit) {
    ph *h = ph_new("q");
    limited_worker(h, noop, 1, 1, 60000, true);
    ph_add(h, "test", "1", NULL);
    PH_RUN_FOR(h, 500);
    int64_t t0 = tu_now_ms();
    ph_close_worker(h, 0, false);
    cr_assert_lt(tu_now_ms() - t0, 2000);
    ph_end(h);
}

static bullc_job *never_job;
static void never_or_success(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_data(job), "\"delay\""))
        never_job = job; /* never resolves */
    else
        ph_complete(h, job, "\"Success\"");
}

/* node: "[when a job never completed] should not block the rate limit" */
Test(parity_limits, hung_job_does_not_block_the_limit) {
    ph *h = ph_new("q");
    bullc_worker *w = limited_worker(h, never_or_success, 2, 5, 250, false);
    ph_add(h, "delay-job", "\"delay\"", NULL);
    for (int i = 0; i < 20; i++) ph_add(h, "test-job", "\"test\"", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 15000, h->n_completed == 20));
    ph_close_worker_async(h, 0, true);
    if (never_job) ph_complete(h, never_job, NULL); /* dropped: the close was forced */
    cr_assert(PH_WAIT(h, 5000, h->wdone[0]));
    ph_end(h);
}

/* node: "[when queue is paused between rate limit] should add active jobs to wait" */
Test(parity_limits, pause_between_rate_limits) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = noop;
    for (int i = 0; i < 4; i++) {
        bullc_worker_opts *o = ph_wopts(h);
        bullc_worker_opts_set_limiter(o, 1, 2000);
        ph_worker(h, o);
    }
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 4));
    PH_RUN_FOR(h, 100);
    add_n(h, 4, "rate test", NULL);
    PH_RUN_FOR(h, 100);
    cr_assert_eq(bullc_queue_pause(h->q, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "completed", NULL) >= 1));
    PH_RUN_FOR(h, 500);
    cr_assert_eq(ph_qe_count(h, "failed", NULL), 0);
    cr_assert_eq(ph_count(h, "completed"), 1);
    cr_assert_eq(ph_count(h, "wait"), 3);
    ph_end(h);
}

static void delay700_max1(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_leq(h->in_process, 1, "%d jobs in parallel", h->in_process);
    ph_complete_in(h, job, 200, "\"success\"");
}

/* node: "[when rate limit is max 1] processes jobs as max limiter from the beginning" */
Test(parity_limits, max_one_from_the_beginning) {
    ph *h = ph_new("q");
    bullc_worker *w = limited_worker(h, delay700_max1, 100, 1, 300, false);
    add_n(h, 5, "test-job", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 5));
    cr_assert_eq(h->max_in_process, 1);
    ph_end(h);
}

static void delay700_max100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_leq(h->in_process, 100, "%d jobs in parallel", h->in_process);
    ph_complete_in(h, job, 700, "\"success\"");
}

/* node: "[when there are more added jobs than max limiter] processes jobs as max limiter from the beginning" */
Test(parity_limits, max_100_from_the_beginning) {
    ph *h = ph_new("q");
    bullc_worker *w = limited_worker(h, delay700_max100, 600, 100, 1000, false);
    add_n(h, 400, "test-job", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 400));
    cr_assert_leq(h->max_in_process, 100);
    ph_end(h);
}

static int buckets[5];
static void priority_buckets(ph *h, bullc_job *job, int widx) {
    (void)widx;
    int p = (int)bullc_job_priority(job);
    buckets[p]--;
    for (int q = 1; q < p; q++)
        cr_assert_leq(buckets[q], 0, "a job of priority %d ran before all jobs of priority %d", p, q);
    ph_complete(h, job, NULL);
}

/* node: "should obey priority" */
Test(parity_limits, obey_priority) {
    ph *h = ph_new("q");
    ph_qe(h);
    cr_assert_eq(bullc_queue_pause(h->q, NULL), 0);
    for (int i = 0; i < 10; i++) {
        int p = i % 4 + 1;
        buckets[p]++;
        char d[16], o[24];
        snprintf(d, sizeof d, "{\"id\":%d}", i);
        snprintf(o, sizeof o, "{\"priority\":%d}", p);
        ph_add(h, "priority test", d, o);
    }
    limited_worker(h, priority_buckets, 1, 1, 10, true);
    cr_assert_eq(bullc_queue_resume(h->q, NULL), 0);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "completed", NULL) == 10));
    cr_assert_eq(ph_qe_count(h, "failed", NULL), 0);
    for (int p = 1; p <= 4; p++) cr_assert_eq(buckets[p], 0);
    ph_end(h);
}

/* ---- global rate limit ------------------------------------------------------------------- */

static void ttl_within_500(ph *h, bullc_job *job, int widx) {
    (void)widx;
    int64_t ttl = rl_ttl(h, 0);
    cr_assert(ttl <= 500 && ttl > 200, "rate limit ttl %lld", (long long)ttl);
    ph_complete(h, job, NULL);
}

/* node: "[when setting rate limit globally] should obey the rate limit" */
Test(parity_limits, global_rate_limit) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = ttl_within_500;
    ph_worker(h, NULL);
    cr_assert_eq(bullc_queue_set_global_rate_limit(h->q, 1, 500, NULL), 0);
    int64_t max = 0, dur = 0;
    cr_assert_eq(bullc_queue_get_global_rate_limit(h->q, &max, &dur, NULL), 0);
    cr_assert(max == 1 && dur == 500);
    int64_t took = run_jobs_timed(h, 10, "rate test");
    cr_assert_geq(took, 9 * 500, "took %lld", (long long)took);
    ph_end(h);
}

static void no_ttl(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(rl_ttl(h, 0), -2, "no rate limit");
    ph_complete(h, job, NULL);
}

/* node: "[when rate limit is removed] should execute jobs without rate limit" */
Test(parity_limits, global_rate_limit_removed) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = no_ttl;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_eq(bullc_queue_set_global_rate_limit(h->q, 1, 500, NULL), 0);
    cr_assert_eq(bullc_queue_remove_global_rate_limit(h->q, NULL), 0);
    int64_t max = -1, dur = -1;
    cr_assert_eq(bullc_queue_get_global_rate_limit(h->q, &max, &dur, NULL), 0);
    cr_assert(max == 0 && dur == 0, "null");
    /* With the 1-per-500 ms limit still in force the 10 jobs would take 4.5 s;
       the bound leaves room for a loaded CI machine, not for the limit. */
    int64_t took = run_jobs_timed(h, 10, "rate test");
    cr_assert_leq(took, 2000, "took %lld", (long long)took);
    ph_end(h);
}

/* ---- dynamic rate limits ------------------------------------------------------------------ */

/* bullc_worker_rate_limit sends its SET on the worker's connection without a
 * callback: the TTL is read once that connection had a moment (Node awaits
 * worker.rateLimit before reading it). */
static int64_t ttl_max, ttl_min;
static void check_ttl_then_limited(ph *h, void *arg) {
    int64_t ttl = rl_ttl(h, 0);
    cr_assert(ttl <= ttl_max && ttl > ttl_min, "ttl %lld", (long long)ttl);
    rate_limited(h, arg);
}
static void dynamic_250(ph *h, bullc_job *job, int widx) {
    if (bullc_job_attempts_started(job) == 1) {
        cr_assert_eq(bullc_worker_rate_limit(h->w[widx], 250), 0);
        ttl_max = 250, ttl_min = 100;
        ph_call_in(h, 5, check_ttl_then_limited, job);
        return;
    }
    ph_complete(h, job, NULL);
}

/* node: "[when dynamic limit is used] should obey the rate limit" */
Test(parity_limits, dynamic_rate_limit) {
    ph *h = ph_new("q");
    ph_qe(h);
    cr_assert_eq(rl_ttl(h, 0), -2);
    limited_worker(h, dynamic_250, 1, 1, 100, true);
    int64_t took = run_jobs_timed(h, 10, "rate test");
    cr_assert_geq(took, (10 * 250 + 10 * 100) * 0.95, "took %lld", (long long)took);
    ph_end(h);
}

static void dynamic_1(ph *h, bullc_job *job, int widx) {
    if (bullc_job_attempts_started(job) == 1) {
        cr_assert_eq(bullc_worker_rate_limit(h->w[widx], 1), 0);
        ttl_max = 1, ttl_min = INT64_MIN;
        ph_call_in(h, 5, check_ttl_then_limited, job);
        return;
    }
    ph_complete(h, job, NULL);
}

/* node: "[when rate limit is too low] should move job to wait anyway" */
Test(parity_limits, too_low_rate_limit) {
    ph *h = ph_new("q");
    ph_qe(h);
    cr_assert_eq(rl_ttl(h, 0), -2);
    h->proc = dynamic_1;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_max_stalled_count(o, 0);
    bullc_worker_opts_set_limiter(o, 1, 100);
    ph_worker(h, o);
    run_jobs_timed(h, 10, "rate test");
    ph_end(h);
}

static void ttl_zero_below_max(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_started(job) == 1) cr_assert_eq(rl_ttl(h, 2), 0);
    ph_complete(h, job, NULL);
}

/* node: "[when rate limit counter is lower than maxJobs] should returns 0" */
Test(parity_limits, ttl_below_max_jobs) {
    ph *h = ph_new("q");
    ph_qe(h);
    cr_assert_eq(rl_ttl(h, 0), -2);
    h->proc = ttl_zero_below_max;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_max_stalled_count(o, 0);
    bullc_worker_opts_set_limiter(o, 2, 100);
    ph_worker(h, o);
    run_jobs_timed(h, 1, "rate test");
    ph_end(h);
}

static void ttl_at_most_duration(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_started(job) == 1) cr_assert_leq(rl_ttl(h, 1), 100);
    ph_complete(h, job, NULL);
}

/* node: "[when rate limit counter is greater than maxJobs] should returns at least rate limit duration" */
Test(parity_limits, ttl_above_max_jobs) {
    ph *h = ph_new("q");
    ph_qe(h);
    cr_assert_eq(rl_ttl(h, 0), -2);
    h->proc = ttl_at_most_duration;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_max_stalled_count(o, 0);
    bullc_worker_opts_set_limiter(o, 1, 100);
    ph_worker(h, o);
    run_jobs_timed(h, 10, "rate test");
    ph_end(h);
}

static void rate_limit_until_last_attempt(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(bullc_queue_rate_limit(h->q, 550, NULL), 0);
    if (bullc_job_attempts_started(job) >= 2)
        ph_fail(h, job, "Unrecoverable", BULLC_FAIL_UNRECOVERABLE);
    else
        rate_limited(h, job);
}

/* node: "[when reaching max attempts and we want to move the job to failed] should throw Unrecoverable error" */
Test(parity_limits, unrecoverable_after_rate_limits) {
    ph *h = ph_new("q");
    ph_qe(h);
    limited_worker(h, rate_limit_until_last_attempt, 1, 1, 100, true);
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "rate-test", "{\"foo\":\"bar\"}", "{\"attempts\":2,\"backoff\":1000}");
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "failed", NULL) == 1));
    cr_assert_geq(tu_now_ms() - t0, 550);
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

static int extra_count = 3, next_priority = 9;
static void add_higher_priority_then_limit(ph *h, bullc_job *job, int widx) {
    if (bullc_job_attempts_started(job) == 1) {
        if (extra_count > 0) {
            char o[24];
            snprintf(o, sizeof o, "{\"priority\":%d}", next_priority);
            ph_add(h, "rate test", "{}", o);
            next_priority--;
            extra_count--;
        }
        cr_assert_eq(bullc_worker_rate_limit(h->w[widx], 250), 0);
        rate_limited(h, job);
        return;
    }
    ph_complete(h, job, NULL);
}

/* node: "[when priority is provided] should obey the rate limit respecting priority" */
Test(parity_limits, dynamic_limit_respects_priority) {
    ph *h = ph_new("q");
    ph_qe(h);
    limited_worker(h, add_higher_priority_then_limit, 1, 1, 100, true);
    ph_add(h, "rate test", "{}", "{\"priority\":10}");
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "completed", NULL) == 4));
    cr_assert_eq(ph_qe_count(h, "failed", NULL), 0);
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "completed", 3), "jobId"), "1", "the lowest priority runs last");
    ph_end(h);
}

static void always_limit(ph *h, bullc_job *job, int widx) {
    cr_assert_eq(bullc_worker_rate_limit(h->w[widx], (int64_t)(intptr_t)h->user), 0);
    rate_limited(h, job);
}
static char *prioritized_names(ph *h) {
    cJSON *a = ph_jobs(h, "prioritized", 0, -1, true);
    char buf[64] = "";
    cJSON *j;
    cJSON_ArrayForEach(j, a) strcat(buf, cJSON_GetObjectItemCaseSensitive(j, "name")->valuestring);
    cJSON_Delete(a);
    return strdup(buf);
}

/* node: "[when priority is the same for some jobs] should get jobs in fifo order" */
Test(parity_limits, same_priority_stays_fifo) {
    ph *h = ph_new("q");
    h->user = (void *)500;
    limited_worker(h, always_limit, 1, 1, 100, true);
    for (int i = 1; i <= 4; i++) {
        char name[4];
        snprintf(name, sizeof name, "%d", i);
        ph_add(h, name, "{}", "{\"priority\":10}");
    }
    PH_RUN_FOR(h, 250);
    char *names = prioritized_names(h);
    cr_assert_str_eq(names, "1234");
    free(names);
    ph_end(h);
}

/* node: "[when priority is different for some jobs] should get jobs in fifo order" */
Test(parity_limits, different_priorities_fifo_within_each) {
    ph *h = ph_new("q");
    h->user = (void *)250;
    limited_worker(h, always_limit, 1, 1, 100, true);
    for (int i = 1; i <= 4; i++) {
        char name[4], o[24];
        snprintf(name, sizeof name, "%d", i);
        snprintf(o, sizeof o, "{\"priority\":%d}", (i - 1) % 2 + 1);
        ph_add(h, name, "{}", o);
    }
    PH_RUN_FOR(h, 1000);
    char *names = prioritized_names(h);
    cr_assert_str_eq(names, "1324");
    free(names);
    ph_end(h);
}

static void pause_then_limit(ph *h, void *arg) {
    cr_assert_eq(bullc_queue_rate_limit(h->q, 250, NULL), 0);
    rate_limited(h, arg);
}
static void pause_wait_limit(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_started(job) == 1) {
        cr_assert_eq(bullc_queue_pause(h->q, NULL), 0);
        ph_call_in(h, 150, pause_then_limit, job);
        return;
    }
    ph_complete(h, job, NULL);
}

/* node: "[when queue is paused] moves job to wait" */
Test(parity_limits, rate_limited_while_paused_goes_to_wait) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = limited_worker(h, pause_wait_limit, 1, 1, 100, false);
    PH_RUN_FOR(h, 200);
    ph_add(h, "rate test", "{}", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "waiting", NULL) == 2));
    cr_assert_eq(ph_count(h, "wait"), 1);
    ph_end(h);
}

/* ---- global concurrency ------------------------------------------------------------------- */

static int last_id;
static void sequential_in_order(ph *h, bullc_job *job, int widx) {
    (void)widx;
    char want[16];
    snprintf(want, sizeof want, "%d", ++last_id);
    cr_assert_str_eq(bullc_job_id(job), want, "order");
    cr_assert_eq(h->in_process, 1, "global concurrency 1");
    ph_complete_in(h, job, 100, NULL);
}

/* node: "should run max concurrency for jobs added" */
Test(parity_limits, global_concurrency_one) {
    ph *h = ph_new("q");
    int64_t gc = -1;
    cr_assert_eq(bullc_queue_get_global_concurrency(h->q, &gc, NULL), 0);
    cr_assert_eq(gc, 0, "null");
    add_n(h, 15, "test", NULL);
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    h->proc = sequential_in_order;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 10);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 15));
    cr_assert_eq(h->max_in_process, 1);
    cr_assert_eq(bullc_queue_get_global_concurrency(h->q, &gc, NULL), 0);
    cr_assert_eq(gc, 1);
    ph_end(h);
}

static void check_two(ph *h, void *arg) {
    cr_assert_eq(h->in_process, 2, "two jobs in parallel");
    ph_complete_in(h, arg, 100, NULL);
}
static void two_in_parallel(ph *h, bullc_job *job, int widx) {
    (void)widx;
    char want[16];
    snprintf(want, sizeof want, "%d", ++last_id);
    cr_assert_str_eq(bullc_job_id(job), want, "order");
    ph_call_in(h, 100, check_two, job);
}

/* node: "should run max concurrency for jobs added" */
Test(parity_limits, global_concurrency_removed) {
    ph *h = ph_new("q");
    add_n(h, 16, "test", NULL);
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    cr_assert_eq(bullc_queue_remove_global_concurrency(h->q, NULL), 0);
    h->proc = two_in_parallel;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 2);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 16));
    int64_t gc = -1;
    cr_assert_eq(bullc_queue_get_global_concurrency(h->q, &gc, NULL), 0);
    cr_assert_eq(gc, 0, "null");
    ph_end(h);
}

static void queue_limit_once(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_started(job) == 1) {
        cr_assert_eq(bullc_queue_rate_limit(h->q, 250, NULL), 0);
        rate_limited(h, job);
        return;
    }
    ph_complete(h, job, NULL);
}

static void global_dynamic_case(int numjobs, int64_t max, int64_t min_ms) {
    ph *h = ph_new("q");
    ph_qe(h);
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    bullc_worker *w = limited_worker(h, queue_limit_once, 10, max, 100, false);
    int64_t t0 = tu_now_ms();
    add_n(h, numjobs, "test", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 20000, ph_qe_count(h, "completed", NULL) == numjobs));
    cr_assert_eq(ph_qe_count(h, "failed", NULL), 0);
    int64_t took = tu_now_ms() - t0;
    cr_assert_geq(took, min_ms, "took %lld", (long long)took);
    ph_end(h);
}

/* node: "[when global dynamic limit is used] should run max concurrency for jobs added respecting global dynamic limit"
 */
Test(parity_limits, global_concurrency_with_dynamic_limit) { global_dynamic_case(5, 1, 5 * (250 + 100) - 100); }

/* node: "[when max limiter is greater than 1] should run max concurrency for jobs added first processed" */
Test(parity_limits, global_concurrency_with_dynamic_limit_max_2) { global_dynamic_case(10, 2, 10 * 250); }

static bullc_job *held[8];
static int nheld;
static void hold_forever(ph *h, bullc_job *job, int widx) {
    (void)h, (void)widx;
    held[nheld++] = job;
}
static void note_order(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 10, NULL);
}

/* node: "should automatically process stalled jobs respecting group order" */
Test(parity_limits, stalled_jobs_under_global_concurrency) {
    ph *h = ph_new("q");
    for (int j = 0; j < 4; j++) ph_add(h, "test-stalled", j % 2 ? "{\"foo\":1}" : "{\"foo\":0}", NULL);
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 2, NULL), 0);
    h->proc = hold_forever;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_concurrency(o, 4);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 2));
    PH_RUN_FOR(h, 100);
    cr_assert_eq(h->n_active, 2, "global concurrency 2");
    ph_close_worker_async(h, 0, true);
    for (int i = 0; i < nheld; i++) ph_complete(h, held[i], NULL); /* dropped: forced close */
    cr_assert(PH_WAIT(h, 5000, h->wdone[0]));
    int active_before = h->n_active;
    h->proc = note_order;
    bullc_worker_opts *o2 = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o2, 4);
    bullc_worker_opts_set_stalled_interval(o2, 100);
    ph_worker(h, o2);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    cr_assert_geq(h->n_stalled, 2, "both held jobs are reported stalled");
    /* completed in pairs, each pair one foo 0 and one foo 1 */
    int sum = 0, i = 0;
    for (int k = 0; k < h->nwev; k++) {
        if (h->wev[k].kind != 'c') continue;
        sum += strstr(h->wev[k].data, "\"foo\":1") ? 1 : 0;
        if (++i % 2 == 0) {
            cr_assert_eq(sum, 1, "pair %d", i / 2);
            sum = 0;
        }
    }
    (void)active_before;
    ph_end(h);
}

static int attempts_seen;
static void fail_first_then_ok(ph *h, bullc_job *job, int widx) {
    (void)widx;
    attempts_seen++;
    if (bullc_job_attempts_started(job) == 1)
        ph_fail_in(h, job, 25, "Not yet!", 0);
    else
        ph_complete_in(h, job, 25, NULL);
}

/* node: "[when jobs use backoff strategy] processes jobs without getting stuck" */
Test(parity_limits, global_concurrency_with_backoff) {
    ph *h = ph_new("q");
    for (int j = 0; j < 2; j++) ph_add(h, "test", "{}", "{\"attempts\":2,\"backoff\":100}");
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    h->proc = fail_first_then_ok;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 10);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    ph_end(h);
}

/* node: "[when backoff is 0] processes jobs without getting stuck" */
Test(parity_limits, global_concurrency_with_zero_backoff) {
    ph *h = ph_new("q");
    for (int j = 0; j < 7; j++) ph_add(h, "test", "{}", "{\"attempts\":2,\"backoff\":0}");
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    h->proc = fail_first_then_ok;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 4);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 7));
    ph_end(h);
}
/* node: "[when maximumRateLimitDelay is reached] should continue processing jobs" */
Test(parity_limits, maximum_rate_limit_delay_then_continue) {
    ph *h = ph_new("q");
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_maximum_rate_limit_delay(o, 3000);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_eq(bullc_queue_set_global_rate_limit(h->q, 1, 10000, NULL), 0);
    add_n(h, 4, "rate test", NULL);
    cr_assert_eq(ph_count(h, "waiting"), 4);
    bullc_worker_run(w);
    PH_RUN_FOR(h, 1500);
    cr_assert_eq(bullc_queue_remove_global_rate_limit(h->q, NULL), 0);
    PH_RUN_FOR(h, 1500);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 4));
    cr_assert_eq(ph_count(h, "completed"), 4);
    ph_end(h);
}

/* node: "[when there are delayed jobs to promote] should promote jobs after maximumRateLimitDelay" */
Test(parity_limits, promote_delayed_after_maximum_rate_limit_delay) {
    ph *h = ph_new("q");
    cr_assert_eq(rl_ttl(h, 0), -2);
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_maximum_rate_limit_delay(o, 3000);
    bullc_worker_opts_set_limiter(o, 1, 10000);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    add_n(h, 2, "rate test", NULL);
    add_n(h, 2, "delayed test", "{\"delay\":1500}");
    cr_assert_eq(ph_count(h, "waiting"), 2);
    cr_assert_eq(ph_count(h, "delayed"), 2);
    bullc_worker_run(w);
    PH_RUN_FOR(h, 3100);
    cr_assert_eq(ph_count(h, "waiting"), 3);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    ph_end(h);
}

/* node: "[when removing rate limit] should process jobs normally" */
Test(parity_limits, removing_the_rate_limit_key) {
    ph *h = ph_new("q");
    ph_qe(h);
    cr_assert_eq(rl_ttl(h, 0), -2);
    bullc_worker *w = limited_worker(h, noop, 1, 1, 1000, false);
    cr_assert_eq(bullc_worker_rate_limit(w, 10000), 0);
    PH_RUN_FOR(h, 50);
    cr_assert_eq(bullc_queue_remove_rate_limit_key(h->q, NULL), 0);
    int64_t t0 = tu_now_ms();
    add_n(h, 2, "rate test", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "completed", NULL) == 2));
    int64_t took = tu_now_ms() - t0;
    cr_assert_geq(took, 1000);
    cr_assert_leq(took, 2000, "took %lld", (long long)took);
    ph_end(h);
}

/* ---- flows ------------------------------------------------------------------------------ */

/* Major `major`'s queue metas for each of `queues`, written before any
 * handle reads them. */
static void speak(ph *h, int major, const char *const *queues, int n) {
    for (int i = 0; major == 5 && i < n; i++)
        freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, queues[i]));
}

/* When worker `widx` completed its n-th job (1-based), or -1. */
static int64_t nth_completed_at(ph *h, int widx, int n) {
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 'c' && h->wev[i].widx == widx && --n == 0) return h->wev[i].t;
    return -1;
}

static void complete_in_50(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 50, NULL);
}

/* Node's windows are 1 s for the children and 2 s for the parents; here
 * 100 and 400 ms, so that the parents' bound is not already met by waiting
 * for their children (done by 1 s). */
/* node: "[when using flows] should obey the rate limit per queue" */
PH_BOTH_MAJORS(parity_limits, flow_rate_limit_per_queue) {
    ph *h = ph_new("q");
    const char *queues[] = {"q", "parent"};
    speak(h, major, queues, 2);
    h->proc = complete_in_50;
    for (int i = 0; i < 2; i++) {
        bullc_worker_opts *o = ph_wopts(h);
        bullc_worker_opts_set_concurrency(o, 2);
        bullc_worker_opts_set_limiter(o, 1, i == 0 ? 100 : 400);
        worker_on_with(h, queues[i], o);
    }
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 2));
    cr_assert_eq(bullc_worker_bullmq_version(h->w[1]), major);
    const char *flow = "{\"name\":\"parent-job\",\"queueName\":\"parent\",\"data\":{},\"children\":["
                       "{\"name\":\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\"},"
                       "{\"name\":\"child-job\",\"data\":{\"idx\":1,\"foo\":\"baz\"},\"queueName\":\"q\"}]}";
    char flows[2048] = "[";
    for (int i = 0; i < 5; i++)
        snprintf(flows + strlen(flows), sizeof flows - strlen(flows), "%s%s", i ? "," : "", flow);
    strcat(flows, "]");
    int64_t t0 = tu_now_ms();
    char *trees = NULL;
    bullc_error err = {0};
    bullc_flow_producer *fp = producer(h);
    cr_assert_eq(bullc_flow_producer_add_bulk(fp, flows, &trees, &err), 0, "%s", err.message);
    bullc_free(trees);
    bullc_flow_producer_free(fp);
    cr_assert(PH_WAIT(h, 15000, h->n_completed == 15), "%d completed", h->n_completed);
    cr_assert_eq(h->n_failed, 0);
    int64_t children = nth_completed_at(h, 0, 10) - t0, parents = nth_completed_at(h, 1, 5) - t0;
    cr_assert_geq(children, 9 * 100, "children took %lld ms", (long long)children);
    cr_assert_geq(parents, 4 * 400, "parents took %lld ms", (long long)parents);
    ph_end(h);
}

static void waiting_children_answered(bullc_job *job, int code, const char *message, void *data) {
    ph *h = data;
    cr_assert(code == 0 || code == 1, "moveToWaitingChildren: %d %s", code, message ? message : "");
    if (code == 1)
        ph_fail(h, job, NULL, BULLC_FAIL_MOVED);
    else
        ph_complete(h, job, NULL);
}
static void one_then_wait_children(ph *h, void *arg) {
    bullc_job *job = arg;
    cr_assert_eq(h->in_process, 1, "global concurrency 1");
    cr_assert_eq(bullc_job_move_to_waiting_children(job, waiting_children_answered, h), 0);
}
static void move_to_waiting_children_in_100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_call_in(h, 100, one_then_wait_children, job);
}

/* node: "[when moving job to waiting-children] should run max concurrency for jobs added first processed" */
PH_BOTH_MAJORS(parity_limits, global_concurrency_with_waiting_children) {
    ph *h = ph_new("q");
    const char *queues[] = {"q"};
    speak(h, major, queues, 1);
    add_n(h, 5, "test", NULL);
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    cJSON_Delete(add_flow(h, "{\"name\":\"parent-job\",\"queueName\":\"q\",\"data\":{},\"children\":[{\"name\":"
                             "\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\",\"children\":[{"
                             "\"name\":\"child-job\",\"data\":{\"idx\":0,\"foo\":\"bar\"},\"queueName\":\"q\"}]}]}"));
    h->proc = move_to_waiting_children_in_100;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 10);
    bullc_worker_opts_set_drain_delay(o, 10);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 5 + 3), "%d completed", h->n_completed);
    cr_assert_eq(h->n_active, 5 + 3, "each job processed once");
    cr_assert_eq(h->max_in_process, 1);
    cr_assert_eq(h->n_failed, 0);
    ph_end(h);
}
