/* SPDX-License-Identifier: MIT */
/* Node BullMQ's worker.test.ts "Retries and backoffs" cases, reproduced with
 * bullc's worker: the delay stored by a backoff (fixed, exponential, with
 * jitter), retries-exhausted, unrecoverable errors, custom strategies,
 * maxStartedAttempts and job.retry() on jobs in the wrong state. Delays of
 * custom strategies are scaled down where the Node test only waits for them. */
#include "test_parity_util.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

TestSuite(parity_retries, .timeout = 60);

static void always_fails(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "error", 0);
}

/* node: "updates job's delay property if it fails and backoff is set" */
Test(parity_retries, delay_property_with_numeric_backoff) {
    ph *h = ph_new("q");
    h->proc = always_fails;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"bar\":\"baz\"}", "{\"attempts\":3,\"backoff\":300}");
    cr_assert(PH_WAIT(h, 10000, h->n_retried >= 1));
    cr_assert_eq(ph_job_num(h, id, "delay"), 300);
    ph_end(h);
}

/* Fails a job with `attempts` and `backoff`; at each failure checks the
 * stored delay with check(attemptsMade, delay); returns when it failed for good. */
static void check_delay_on_fail(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "error", 0);
}
static void delay_case(const char *opts, int attempts, void (*check)(int64_t, double)) {
    ph *h = ph_new("q");
    h->proc = check_delay_on_fail;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"bar\":\"baz\"}", opts);
    bullc_worker_run(w);
    int seen = 0;
    while (seen < attempts) {
        cr_assert(PH_WAIT(h, 10000, ph_wcount(h, 'f', NULL) > seen), "failure %d", seen + 1);
        seen++;
        /* the stored job as it is right after this failure */
        cJSON *j = ph_job(h, id);
        int64_t made = (int64_t)ph_jnum(j, "attemptsMade");
        cr_assert_eq(made, seen);
        double delay = ph_jnum(j, "delay");
        cJSON_Delete(j);
        if (made >= attempts)
            cr_assert_eq(delay, 0, "the final failure leaves delay 0");
        else
            check(made, delay);
    }
    cr_assert_eq(h->n_failed, 1);
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

static void exp_min(int64_t made, double delay) { cr_assert_geq(delay, pow(2, (double)(made - 1)) * 200); }
static void exp_jitter(int64_t made, double delay) {
    cr_assert_leq(delay, pow(2, (double)(made - 1)) * 200);
    cr_assert_geq(delay, 0);
}
static void exp_half_jitter(int64_t made, double delay) {
    cr_assert_leq(delay, pow(2, (double)(made - 1)) * 200);
    cr_assert_geq(delay, pow(2, (double)(made - 1)) * 200 * 0.5);
}
static void fixed_jitter(int64_t made, double delay) {
    (void)made;
    cr_assert_leq(delay, 750);
    cr_assert_geq(delay, 0);
}
static void fixed_half_jitter(int64_t made, double delay) {
    (void)made;
    cr_assert_leq(delay, 750);
    cr_assert_geq(delay, 325);
}

/* node: "[when backoff type is exponential] updates job's delay property if it fails and backoff is set" */
Test(parity_retries, exponential_delay_property) {
    delay_case("{\"attempts\":3,\"backoff\":{\"type\":\"exponential\",\"delay\":200}}", 3, exp_min);
}

/* node: "[when jitter option is provided] updates job's delay property between 0 and max exponential backoff value" */
Test(parity_retries, exponential_with_jitter) {
    delay_case("{\"attempts\":3,\"backoff\":{\"type\":\"exponential\",\"delay\":200,\"jitter\":1}}", 3, exp_jitter);
}

/* node: "[when backoff type is exponential > when jitter option is provided > when jitter is provided with lower value than 1] updates job's delay property only applying jitter in a fixed percentage" */
Test(parity_retries, exponential_with_half_jitter) {
    delay_case("{\"attempts\":3,\"backoff\":{\"type\":\"exponential\",\"delay\":200,\"jitter\":0.5}}", 3,
               exp_half_jitter);
}

/* node: "[when jitter option is provided] updates job's delay property between 0 and max fixed backoff value" */
Test(parity_retries, fixed_with_jitter) {
    delay_case("{\"attempts\":3,\"backoff\":{\"type\":\"fixed\",\"delay\":750,\"jitter\":1}}", 3, fixed_jitter);
}

/* node: "[when backoff type is fixed > when jitter option is provided > when jitter is provided with lower value than 1] updates job's delay property only applying jitter in a fixed percentage" */
Test(parity_retries, fixed_with_half_jitter) {
    delay_case("{\"attempts\":3,\"backoff\":{\"type\":\"fixed\",\"delay\":750,\"jitter\":0.5}}", 3, fixed_half_jitter);
}

/* node: "[when backoff type is fixed] updates job's delay property and respects fixed delay value" */
Test(parity_retries, fixed_delay_property_and_timing) {
    ph *h = ph_new("q");
    h->proc = always_fails;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    const char *id =
        ph_add(h, "test", "{\"bar\":\"baz\"}", "{\"attempts\":4,\"backoff\":{\"type\":\"fixed\",\"delay\":750}}");
    cr_assert(PH_WAIT(h, 10000, h->n_retried >= 1));
    cr_assert_eq(ph_job_num(h, id, "delay"), 750);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    int64_t took = tu_now_ms() - t0;
    cr_assert_eq(h->n_retried, 3);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 4);
    cr_assert_eq(ph_job_num(h, id, "delay"), 0);
    cr_assert_geq(took, 2250);
    cr_assert_leq(took, 2750);
    ph_end(h);
}

/* ---- retries-exhausted ------------------------------------------------------ */

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

/* node: "[when jobs do not fail and get the maximum attempts limit] does not emit retries-exhausted event" */
Test(parity_retries, no_retries_exhausted_on_success) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = noop;
    ph_worker(h, NULL);
    for (int i = 0; i < 3; i++) ph_add(h, "test", "{\"foo\":\"baz\"}", "{\"attempts\":1}");
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "completed", NULL) == 3));
    PH_RUN_FOR(h, 100);
    cr_assert_eq(ph_qe_count(h, "retries-exhausted", NULL), 0);
    ph_end(h);
}

static void not_yet_until_3(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) < 3)
        ph_fail(h, job, "Not yet!", 0);
    else
        ph_complete(h, job, NULL);
}

/* The retries of a job with attempts 3 exhaust; retries-exhausted names it with attemptsMade 3. */
static void retries_exhausted_after_3(void) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = not_yet_until_3;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3}");
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "retries-exhausted", NULL) == 1));
    cJSON *e = ph_qe_get(h, "retries-exhausted", 0);
    cr_assert_str_eq(ph_qe_field(e, "jobId"), id);
    cr_assert_str_eq(ph_qe_field(e, "attemptsMade"), "3");
    /* every waiting event of a retry comes from active */
    cJSON *ev;
    cJSON_ArrayForEach(ev, h->qev) {
        if (strcmp(ph_qe_field(ev, "event"), "waiting")) continue;
        const char *prev = ph_qe_field(ev, "prev");
        if (*prev) cr_assert_str_eq(prev, "active");
    }
    cr_assert_eq(h->n_completed, 0, "Failed job was retried more than it should be!");
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

/* node: "should not retry a failed job more than the number of given attempts times" */
Test(parity_retries, not_retried_more_than_attempts) { retries_exhausted_after_3(); }

static void rate_limit_then_throw(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) != 0) { /* Node's expect(job.attemptsMade).toBe(0) throwing */
        ph_fail(h, job, "expected attemptsMade 0", 0);
        return;
    }
    cr_assert_eq(bullc_queue_rate_limit(h->q, 5000, NULL), 0);
    ph_fail(h, job, "error", 0);
}
static char reason_after_first_failure[64];
static void read_reason(ph *h, ph_wev *e) {
    if (*reason_after_first_failure) return;
    cJSON *j = ph_job(h, e->id);
    char *r = ph_jtext(j, "failedReason");
    snprintf(reason_after_first_failure, sizeof reason_after_first_failure, "%s", r);
    free(r);
    cJSON_Delete(j);
}

/* node: "[when job has been failed and moved to wait] saves failedReason" */
Test(parity_retries, failed_reason_saved_when_moved_to_wait) {
    ph *h = ph_new("q");
    h->proc = rate_limit_then_throw;
    h->on_failed = read_reason;
    ph_worker(h, NULL);
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":5}");
    cr_assert(PH_WAIT(h, 10000, h->n_retried >= 1));
    cr_assert_str_eq(reason_after_first_failure, "\"error\"");
    ph_end(h);
}

/* ---- order of retries and delayed jobs ---------------------------------------- */

static int proc_calls;
static void order_check(ph *h, bullc_job *job, int widx) {
    (void)widx;
    proc_calls++;
    /* first attempts run in id order: the delayed jobs are promoted before the retry */
    if (bullc_job_attempts_made(job) == 0) {
        char want[16];
        snprintf(want, sizeof want, "%d", proc_calls);
        cr_assert_str_eq(bullc_job_id(job), want, "call %d got job %s", proc_calls, bullc_job_id(job));
    }
    if (!strcmp(bullc_job_id(job), "1") && bullc_job_attempts_made(job) < 1)
        ph_fail_in(h, job, 200, "Not yet!", 0);
    else
        ph_complete_in(h, job, 200, NULL);
}

/* node: "[when using retryJob] promotes delayed jobs first" */
Test(parity_retries, retry_job_promotes_delayed_jobs_first) {
    ph *h = ph_new("q");
    h->proc = order_check;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":2}");
    bullc_job_opts *d;
    bullc_job_opts_new(&d);
    bullc_job_opts_set_delay(d, 200);
    bullc_bulk_job jobs[3];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 3; i++) jobs[i].name = "test", jobs[i].data_json = "{}", jobs[i].opts = d;
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 3, NULL), 0);
    for (int i = 0; i < 3; i++) bullc_free(jobs[i].id);
    bullc_job_opts_free(d);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    cr_assert_eq(proc_calls, 5);
    cr_assert_str_eq(ph_wget(h, 'a', 4)->id, "1", "the retried job runs last");
    ph_end(h);
}

static int first_attempts;
static void priority_order_check(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) == 0) {
        first_attempts++;
        char want[16];
        snprintf(want, sizeof want, "%d", first_attempts);
        cr_assert_str_eq(bullc_job_id(job), want);
    }
    if (!strcmp(bullc_job_id(job), "1") && bullc_job_attempts_made(job) < 1)
        ph_fail_in(h, job, 200, "Not yet!", 0);
    else
        ph_complete_in(h, job, 200, NULL);
}

/* node: "[when job has more priority than delayed jobs] executes retried job first" */
Test(parity_retries, retried_job_with_higher_priority_first) {
    ph *h = ph_new("q");
    h->proc = priority_order_check;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":2,\"priority\":1}");
    bullc_job_opts *d;
    bullc_job_opts_new(&d);
    bullc_job_opts_set_delay(d, 200);
    bullc_job_opts_set_priority(d, 2);
    bullc_bulk_job jobs[3];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 3; i++) jobs[i].name = "test", jobs[i].data_json = "{}", jobs[i].opts = d;
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 3, NULL), 0);
    for (int i = 0; i < 3; i++) bullc_free(jobs[i].id);
    bullc_job_opts_free(d);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    cr_assert_str_eq(ph_wget(h, 'a', 1)->id, "1", "the retried job runs right after its failure");
    ph_end(h);
}

/* ---- unrecoverable ------------------------------------------------------------- */

static void then_unrecoverable(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) < 1)
        ph_fail(h, job, "Not yet!", 0);
    else if (bullc_job_attempts_made(job) < 2)
        ph_fail(h, job, "Unrecoverable", BULLC_FAIL_UNRECOVERABLE);
    else
        ph_complete(h, job, NULL);
}

/* node: "[when UnrecoverableError is throw] moves job to failed" */
Test(parity_retries, unrecoverable_error_moves_to_failed) {
    ph *h = ph_new("q");
    h->proc = then_unrecoverable;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3,\"backoff\":1000}");
    cr_assert(PH_WAIT(h, 10000, ph_wcount(h, 'f', NULL) == 2));
    cr_assert_gt(tu_now_ms() - t0, 1000);
    ph_wev *f = ph_wget(h, 'f', 1);
    cr_assert_str_eq(f->text, "Unrecoverable");
    cr_assert_not(f->will_retry);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 2);
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

/* ---- custom backoff strategies ---------------------------------------------------- */

static void not_yet_until_2(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) < 2)
        ph_fail(h, job, "Not yet!", 0);
    else
        ph_complete(h, job, NULL);
}

static int64_t strategy_calls[8];
static int nstrategy;
static int64_t times_300(int64_t made, const char *type, const char *error, const bullc_job *job, void *data) {
    (void)type, (void)error, (void)job, (void)data;
    strategy_calls[nstrategy++ % 8] = made;
    return made * 300;
}

/* node: "should retry a job after a delay if a custom backoff is given" */
Test(parity_retries, custom_backoff) {
    ph *h = ph_new("q");
    h->proc = not_yet_until_2;
    h->backoff = times_300;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3,\"backoff\":{\"type\":\"custom\"}}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_gt(tu_now_ms() - t0, 900, "1 x 300 + 2 x 300 ms of backoff");
    cr_assert_eq(nstrategy, 2);
    cr_assert_eq(strategy_calls[0], 1);
    cr_assert_eq(strategy_calls[1], 2);
    ph_end(h);
}

static int64_t by_type(int64_t made, const char *type, const char *error, const bullc_job *job, void *data) {
    (void)error, (void)job, (void)data;
    if (!strcmp(type, "custom1")) return made * 250;
    if (!strcmp(type, "custom2")) return made * 500;
    cr_assert_fail("invalid type %s", type);
    return -1;
}

/* node: "[when applying custom backoff by type] should retry a job after a delay for custom type" */
Test(parity_retries, custom_backoff_by_type) {
    ph *h = ph_new("q");
    h->proc = not_yet_until_2;
    h->backoff = by_type;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    ph_add(h, "test", "{\"foo\":\"baz\"}", "{\"attempts\":3,\"backoff\":{\"type\":\"custom1\"}}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    int64_t t1 = tu_now_ms();
    cr_assert_gt(t1 - t0, 750);
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3,\"backoff\":{\"type\":\"custom2\"}}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert_gt(tu_now_ms() - t1, 1500);
    ph_end(h);
}

static int64_t minus_one(int64_t made, const char *type, const char *error, const bullc_job *job, void *data) {
    (void)made, (void)type, (void)error, (void)job, (void)data;
    return -1;
}
static int tries;
static void count_tries(ph *h, bullc_job *job, int widx) {
    tries++;
    not_yet_until_2(h, job, widx);
}

/* node: "should not retry a job if the custom backoff returns -1" */
Test(parity_retries, custom_backoff_minus_one_does_not_retry) {
    ph *h = ph_new("q");
    h->proc = count_tries;
    h->backoff = minus_one;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3,\"backoff\":{\"type\":\"custom\"}}");
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    PH_RUN_FOR(h, 200);
    cr_assert_eq(tries, 1);
    cr_assert_eq(h->n_retried, 0);
    cr_assert_eq(h->n_completed, 0, "Failed job was retried more than it should be!");
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

static void custom_error(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (bullc_job_attempts_made(job) < 2)
        ph_fail(h, job, "CustomError: Hey, custom error!", 0);
    else
        ph_complete(h, job, NULL);
}
static int64_t by_error(int64_t made, const char *type, const char *error, const bullc_job *job, void *data) {
    (void)made, (void)type, (void)job, (void)data;
    if (error && strstr(error, "CustomError")) return 600;
    return 100;
}

/* node: "should retry a job after a delay if a custom backoff is given based on the error thrown" */
Test(parity_retries, custom_backoff_by_error) {
    ph *h = ph_new("q");
    h->proc = custom_error;
    h->backoff = by_error;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3,\"backoff\":{\"type\":\"custom\"}}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_gt(tu_now_ms() - t0, 1200, "two retries 600 ms apart (100 ms for another error)");
    ph_end(h);
}

static void fails_with_many_ids(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "ids"));
    cJSON_Delete(d);
    if (n > 2)
        ph_fail(h, job, "CustomError: Hey, custom error!", 0);
    else
        ph_complete(h, job, NULL);
}
static int64_t update_data_strategy(int64_t made, const char *type, const char *error, const bullc_job *job,
                                    void *data) {
    (void)made, (void)type;
    ph *h = data;
    if (error && strstr(error, "CustomError")) {
        /* the strategy stores the failed ids as the job's new data */
        bullc_error err = {0};
        cr_assert_eq(bullc_queue_update_job_data(h->q, bullc_job_id(job), "{\"ids\":[1,2]}", &err), 0, "%s",
                     err.message);
        return 1000;
    }
    return 100;
}

/* node: "should retry a job after a delay if a custom backoff is given based on the job data" */
Test(parity_retries, custom_backoff_updates_job_data) {
    ph *h = ph_new("q");
    h->proc = fails_with_many_ids;
    h->backoff = update_data_strategy;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"ids\":[1,2,3]}", "{\"attempts\":3,\"backoff\":{\"type\":\"custom\"}}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_gt(tu_now_ms() - t0, 1000);
    cr_assert_eq(h->n_retried, 1);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"ids\":[1,2]}");
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 2);
    ph_end(h);
}

/* ---- job.retry() on jobs in other states ------------------------------------------- */

static void fail_once(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!h->user) {
        h->user = (void *)1;
        ph_fail(h, job, "failed", 0);
    } else {
        ph_complete(h, job, NULL);
    }
}

/* node: "should not retry a job that has been removed" */
Test(parity_retries, no_retry_of_a_removed_job) {
    ph *h = ph_new("q");
    h->proc = fail_once;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_str_eq(ph_wget(h, 'f', 0)->data, "{\"foo\":\"bar\"}");
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "failedReason", "\"failed\"");
    cJSON_Delete(j);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(ph_count(h, "completed"), 1);
    usleep(10000);
    cr_assert_eq(bullc_queue_clean(h->q, 0, 0, NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), BULLC_ENOTFOUND);
    char want[64];
    snprintf(want, sizeof want, "Missing key for job %s. reprocessJob", id);
    cr_assert(strstr(err.message, want), "%s", err.message);
    cr_assert_eq(ph_count(h, "completed"), 0);
    cr_assert_eq(ph_count(h, "failed"), 0);
    ph_end(h);
}

/* node: "should not retry a job that has been retried already" */
Test(parity_retries, no_retry_of_a_retried_job) {
    ph *h = ph_new("q");
    h->proc = fail_once;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(ph_count(h, "completed"), 1);
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), BULLC_ESTATE);
    char want[64];
    snprintf(want, sizeof want, "Job %s is not in the failed state. reprocessJob", id);
    cr_assert(strstr(err.message, want), "%s", err.message);
    cr_assert_eq(ph_count(h, "completed"), 1);
    cr_assert_eq(ph_count(h, "failed"), 0);
    ph_end(h);
}

static int attempts_left;
static void fail_three_times(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (attempts_left < 3) {
        attempts_left++;
        ph_fail(h, job, "failed", 0);
    } else {
        ph_complete(h, job, NULL);
    }
}

/* node: "should only retry a job once after it has reached the max attempts" */
Test(parity_retries, retry_once_after_max_attempts) {
    ph *h = ph_new("q");
    h->proc = fail_three_times;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":2}");
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 2);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 2));
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 3);
    cr_assert_eq(h->n_retried, 1, "only the first run retried by itself");
    cr_assert_eq(ph_count(h, "failed"), 1);
    cr_assert_eq(bullc_queue_retry_job(h->q, id, "completed", 0, &err), BULLC_ESTATE);
    char want[64];
    snprintf(want, sizeof want, "Job %s is not in the completed state. reprocessJob", id);
    cr_assert(strstr(err.message, want), "%s", err.message);
    cr_assert_eq(ph_count(h, "completed"), 0);
    ph_end(h);
}

static void slow500(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 500, NULL);
}

/* node: "should not retry a job that is active" */
Test(parity_retries, no_retry_of_an_active_job) {
    ph *h = ph_new("q");
    h->proc = slow500;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_active == 1));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), BULLC_ESTATE);
    char want[64];
    snprintf(want, sizeof want, "Job %s is not in the failed state. reprocessJob", id);
    cr_assert(strstr(err.message, want), "%s", err.message);
    ph_end(h);
}

/* ---- step jobs: a processor keeps its progress in job.data across runs ------------------- */

static void node5_meta(ph *h) {
    freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, h->qname));
}

/* The step a job's data names: {"step":N,...}. */
static int data_step(const bullc_job *job) {
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    cr_assert(d, "%s", bullc_job_data(job));
    int step = (int)cJSON_GetObjectItem(d, "step")->valuedouble;
    cJSON_Delete(d);
    return step;
}

/* Node's enum Step { Initial, Second, Finish } */
enum { STEP_INITIAL, STEP_SECOND, STEP_FINISH };

static void step_or_not_yet(ph *h, bullc_job *job, int widx) {
    (void)widx;
    int step = data_step(job);
    if (step == STEP_INITIAL) {
        cr_assert_eq(bullc_job_update_data(job, "{\"step\":1}", NULL, NULL), 0);
        step = STEP_SECOND;
    }
    cr_assert_eq(step, STEP_SECOND);
    if (bullc_job_attempts_made(job) < 2) {
        ph_fail(h, job, "Not yet!", 0);
        return;
    }
    cr_assert_eq(bullc_job_update_data(job, "{\"step\":2}", NULL, NULL), 0);
    ph_complete(h, job, "2");
}

/* node: "should retry a job after a delay if a fixed backoff is given, keeping the current step" */
Test(parity_retries, step_job_keeps_its_step_across_backoffs) {
    ph *h = ph_new("q");
    h->proc = step_or_not_yet;
    ph_worker(h, NULL);
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"step\":0}", "{\"attempts\":3,\"backoff\":1000}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_gt(tu_now_ms() - t0, 2000, "two backoffs of 1 s");
    cr_assert_eq(h->n_retried, 2);
    /* every run after the first started at the second step */
    for (int i = 1; i < 3; i++) cr_assert_str_eq(ph_wget(h, 'a', i)->data, "{\"step\":1}");
    cr_assert_str_eq(ph_wget(h, 'c', 0)->text, "2");
    cJSON *j = ph_job(h, id);
    cr_assert_eq(ph_jnum(j, "attemptsMade"), 3);
    cr_assert_eq(ph_jnum(j, "returnvalue"), STEP_FINISH);
    cJSON_Delete(j);
    ph_end(h);
}

/* One run of the timed step job: its start, and whether its timeout passed. */
typedef struct timed_run {
    ph *h;
    bullc_job *job;
    int64_t started, timeout;
    int step;
} timed_run;

static void timed_step(ph *h, void *arg) {
    timed_run *r = arg;
    if (tu_now_ms() - r->started > r->timeout) {
        ph_fail(h, r->job, "Timeout", 0);
        free(r);
        return;
    }
    if (r->step == STEP_INITIAL) {
        cr_assert_eq(bullc_job_update_data(r->job, "{\"step\":1,\"timeout\":1500}", NULL, NULL), 0);
        r->step = STEP_SECOND;
        ph_call_in(h, 1000, timed_step, r);
        return;
    }
    cr_assert_eq(bullc_job_update_data(r->job, "{\"step\":2,\"timeout\":1500}", NULL, NULL), 0);
    ph_complete(h, r->job, "2");
    free(r);
}

/* each step takes 1 s; the run fails once it is past data.timeout when a step ends */
static void timed_steps(ph *h, bullc_job *job, int widx) {
    (void)widx;
    timed_run *r = calloc(1, sizeof *r);
    cJSON *d = cJSON_Parse(bullc_job_data(job));
    *r = (timed_run){h, job, tu_now_ms(), (int64_t)cJSON_GetObjectItem(d, "timeout")->valuedouble,
                     (int)cJSON_GetObjectItem(d, "step")->valuedouble};
    cJSON_Delete(d);
    ph_call_in(h, 1000, timed_step, r);
}

/* node: "[when timeout is provided] should check if timeout is reached in each step" */
Test(parity_retries, step_job_checks_its_timeout_at_each_step) {
    ph *h = ph_new("q");
    h->proc = timed_steps;
    ph_worker(h, NULL);
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"step\":0,\"timeout\":1500}", "{\"attempts\":3,\"backoff\":500}");
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    int64_t took = tu_now_ms() - t0;
    /* two steps past the timeout, 500 ms of backoff, then the second step alone */
    cr_assert(took > 3000 && took < 4000, "%lld ms", (long long)took);
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "failedReason", "\"Timeout\"");
    cr_assert_eq(ph_jnum(j, "returnvalue"), STEP_FINISH);
    cr_assert_eq(ph_jnum(j, "attemptsMade"), 2);
    cJSON_Delete(j);
    ph_end(h);
}

/* ms since the epoch, as the moves take them (tu_now_ms is monotonic) */
static int64_t epoch_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void delayed_then_moved(bullc_job *job, int code, const char *message, void *data) {
    cr_assert_eq(code, 1, "moveToDelayed: %d %s", code, message ? message : "");
    ph_fail(data, job, NULL, BULLC_FAIL_MOVED);
}

static void delay_200(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(bullc_job_move_to_delayed(job, epoch_ms() + 200, delayed_then_moved, h), 0);
}

static void fail_when_started_twice(int major) {
    ph *h = ph_new("q");
    if (major == 5) node5_meta(h);
    h->proc = delay_200;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_max_started_attempts(o, 1);
    bullc_worker *w = ph_worker(h, o);
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    cr_assert_gt(tu_now_ms() - t0, 200);
    cr_assert_str_eq(ph_wget(h, 'f', 0)->text, "job started more than allowable limit");
    cJSON *j = ph_job(h, id);
    cr_assert_eq(ph_jnum(j, "attemptsMade"), 1);
    cr_assert_eq(ph_jnum(j, "attemptsStarted"), 2);
    cJSON_Delete(j);
    cr_assert_eq(h->n_errors, 0);
    ph_end(h);
}

/* node: "[when moving job to delayed in one step > when passing maxStartedAttempts] should fail job when consuming the max started attempts" */
Test(parity_retries, step_job_fails_past_max_started_attempts) {
    fail_when_started_twice(6);
    fail_when_started_twice(5);
}

/* 6.7.0's shouldRetryJob retries no job started maxStartedAttempts times
 * (hasReachedMaxStartedAttempts): the first failure is the last, and
 * job.retry() gives it one more start, refused. 5.81.5 retries it once and
 * refuses that start, then the one job.retry() gives it, as Node's test
 * (written before 6.x) expects. */
static void retry_past_max_started(int major) {
    ph *h = ph_new("q");
    if (major == 5) node5_meta(h);
    attempts_left = 0;
    h->proc = fail_three_times;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_max_started_attempts(o, 1);
    ph_worker(h, o);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":2}");
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    int64_t made = major == 5 ? 2 : 1;
    ph_wev *f = ph_wget(h, 'f', (int)made - 1);
    cr_assert_not_null(f, "%d failed events", ph_wcount(h, 'f', NULL));
    cr_assert_str_eq(f->data, "{\"foo\":\"bar\"}");
    cr_assert_str_eq(f->text, major == 5 ? "job started more than allowable limit" : "failed");
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), made);
    cr_assert_eq(ph_job_num(h, id, "attemptsStarted"), made);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 2));
    cr_assert_str_eq(ph_wget(h, 'f', (int)made)->text, "job started more than allowable limit");
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), made + 1);
    cr_assert_eq(ph_job_num(h, id, "attemptsStarted"), made + 1);
    cr_assert_eq(attempts_left, 1, "the processor ran only the first time");
    cr_assert_eq(ph_count(h, "failed"), 1);
    cr_assert_eq(ph_count(h, "completed"), 0);
    ph_end(h);
}

/* node: "[when moving job to delayed in one step > when passing maxStartedAttempts] should allow only retry a job once after it has reached the max attemptsStarted" */
Test(parity_retries, retry_once_past_max_started_attempts) {
    retry_past_max_started(6);
    retry_past_max_started(5);
}

/* Node's job.moveToWait(token) then WaitingError: BULLC_FAIL_RATE_LIMITED
 * runs the same moveJobFromActiveToWait, counting no attempt. */
static void wait_then_finish(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (data_step(job) == STEP_INITIAL) {
        cr_assert_eq(bullc_job_update_data(job, "{\"step\":1}", NULL, NULL), 0);
        ph_fail(h, job, NULL, BULLC_FAIL_RATE_LIMITED);
        return;
    }
    cr_assert_eq(data_step(job), STEP_SECOND);
    cr_assert_eq(bullc_job_update_data(job, "{\"step\":2}", NULL, NULL), 0);
    ph_complete(h, job, "2");
}

static void wait_step(int major) {
    ph *h = ph_new("q");
    if (major == 5) node5_meta(h);
    h->proc = wait_then_finish;
    bullc_worker *w = ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"step\":0}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    cr_assert_eq(h->n_failed + h->n_retried + h->n_errors, 0);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->text, "2");
    cJSON *j = ph_job(h, id);
    cr_assert_eq(ph_jnum(j, "attemptsMade"), 1);
    cr_assert_eq(ph_jnum(j, "attemptsStarted"), 2);
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "[when moving job to waiting in one step] should retry job right away, keeping the current step" */
Test(parity_retries, step_job_back_to_wait_keeps_its_step) {
    wait_step(6);
    wait_step(5);
}
