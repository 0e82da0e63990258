/* SPDX-License-Identifier: MIT */
/* Node BullMQ's worker.test.ts cases (processing, results, failures, close,
 * autorun, concurrency, pause, manual processing, job retry), reproduced
 * with bullc's worker and queue. Each case names the Node test it mirrors. */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_worker, .timeout = 60);

/* ---- progress ---------------------------------------------------------------- */

static const char *progress_value;
static void progress_proc(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    cr_assert_eq(bullc_job_update_progress(job, progress_value, NULL, NULL), 0);
    ph_complete(h, job, NULL);
}

/* The progress a processor reports reaches QueueEvents as the same value. */
static void progress_case(const char *value) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    progress_value = value;
    h->proc = progress_proc;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "progress", NULL) == 1), "no progress event");
    cJSON *ev = ph_qe_get(h, "progress", 0);
    cr_assert_str_eq(ph_qe_field(ev, "jobId"), id);
    cJSON *data = cJSON_Parse(ph_qe_field(ev, "data"));
    cJSON *want = cJSON_Parse(value);
    cr_assert(data && cJSON_Compare(data, want, true), "progress data %s, expected %s", ph_qe_field(ev, "data"), value);
    cJSON_Delete(data), cJSON_Delete(want);
    ph_end(h);
}

/* node: "process a job that updates progress as number" */
Test(parity_worker, progress_as_number) { progress_case("42"); }

/* node: "process a job that updates progress as object" */
Test(parity_worker, progress_as_object) { progress_case("{\"percentage\":42}"); }

/* node: "process a job that updates progress as string" */
Test(parity_worker, progress_as_string) { progress_case("\"progress as string\""); }

/* node: "process a job that updates progress as boolean" */
Test(parity_worker, progress_as_boolean) { progress_case("true"); }

/* ---- results ----------------------------------------------------------------- */

static void return37(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    ph_complete(h, job, "37");
}

static void returns_37(void) {
    ph *h = ph_new("q");
    h->proc = return37;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    ph_wev *c = ph_wget(h, 'c', 0);
    cr_assert_str_eq(c->id, id);
    cr_assert_str_eq(c->text, "37", "the completed event carries the return value");
    cJSON *j = ph_job(h, id);
    cr_assert_not_null(j);
    ph_assert_json(j, "returnvalue", "37");
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "process a job that returns data in the process handler" */
Test(parity_worker, returns_data) { returns_37(); }

/* node: "process a job that returning data returnvalue gets stored in the database" */
Test(parity_worker, returnvalue_stored) { returns_37(); }

static void return_string(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, "\"a very dignified string\"");
}

/* node: "process a job that returns a string in the process handler" */
Test(parity_worker, returns_a_string) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = return_string;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"testing\":true}", NULL);
    cr_assert(PH_WAIT(h, 10000, ph_qe_count(h, "completed", id) == 1));
    cJSON *rv = cJSON_Parse(ph_qe_field(ph_qe_get(h, "completed", 0), "returnvalue"));
    cr_assert(cJSON_IsString(rv));
    cr_assert_str_eq(rv->valuestring, "a very dignified string");
    cJSON_Delete(rv);
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "returnvalue", "\"a very dignified string\"");
    cJSON_Delete(j);
    ph_end(h);
}

static void async_op(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    ph_complete_in(h, job, 250, "\"my data\"");
}

/* node: "process a job that does some asynchronous operation" */
Test(parity_worker, asynchronous_operation) {
    ph *h = ph_new("q");
    h->proc = async_op;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    int64_t t0 = tu_now_ms();
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_geq(tu_now_ms() - t0, 240);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, id);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->text, "\"my data\"");
    ph_end(h);
}

static void sync_proc(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    ph_complete(h, job, NULL);
}

/* node: "process a synchronous job" */
Test(parity_worker, synchronous_job) {
    ph *h = ph_new("q");
    h->proc = sync_proc;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, id);
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

static void slow_first(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (strstr(bullc_job_data(job), "\"index\":1")) {
        ph_add(h, "test", "{\"foo\":\"bar\",\"index\":2}", NULL);
        ph_complete_in(h, job, 1000, "\"my data\"");
    } else {
        ph_complete(h, job, "\"my data\"");
    }
}

/* node: "process a slow job without waiting previous job to finish" */
Test(parity_worker, slow_job_does_not_hold_the_next) {
    ph *h = ph_new("q");
    h->proc = slow_first;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 2);
    ph_worker(h, o);
    ph_add(h, "test", "{\"foo\":\"bar\",\"index\":1}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert(strstr(ph_wget(h, 'c', 0)->data, "\"index\":2"), "the second job completes first");
    cr_assert(strstr(ph_wget(h, 'c', 1)->data, "\"index\":1"));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->text, "\"my data\"");
    ph_end(h);
}

static void only_first_worker(ph *h, bullc_job *job, int widx) {
    cr_assert_eq(widx, 0, "the second worker must not receive the job being processed");
    ph_complete_in(h, job, 500, NULL);
}

/* node: "does not process a job that is being processed when a new queue starts" */
Test(parity_worker, job_in_process_not_taken_by_a_new_worker) {
    ph *h = ph_new("q");
    h->proc = only_first_worker;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    PH_RUN_FOR(h, 200);
    cr_assert_eq(h->n_active, 1);
    cr_assert_eq(ph_wget(h, 'c', 0)->widx, 0);
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, id);
    ph_end(h);
}

/* ---- failures ---------------------------------------------------------------- */

static void throws(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_str_eq(bullc_job_data(job), "{\"foo\":\"bar\"}");
    ph_fail(h, job, "Job Failed", 0);
}

/* node: "process a job that throws an exception" */
Test(parity_worker, job_that_throws) {
    ph *h = ph_new("q");
    h->proc = throws;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(bullc_worker_run(w), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    ph_wev *f = ph_wget(h, 'f', 0);
    cr_assert_str_eq(f->id, id);
    cr_assert_str_eq(f->data, "{\"foo\":\"bar\"}");
    cr_assert_str_eq(f->text, "Job Failed");
    cJSON *j = ph_job(h, id);
    cr_assert(!isnan(ph_jnum(j, "finishedOn")), "finishedOn is a number");
    ph_assert_json(j, "failedReason", "\"Job Failed\"");
    cJSON_Delete(j);
    ph_end(h);
}

static void rejects_later(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail_in(h, job, 0, "Job Failed", 0);
}

/* node: "process a job that returns a rejected promise" */
Test(parity_worker, job_that_rejects) {
    ph *h = ph_new("q");
    h->proc = rejects_later;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    ph_wev *f = ph_wget(h, 'f', 0);
    cr_assert_str_eq(f->id, id);
    cr_assert_str_eq(f->data, "{\"foo\":\"bar\"}");
    cr_assert_str_eq(f->text, "Job Failed");
    ph_end(h);
}

static void unserialisable(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_done(h);
    /* a value that cannot be serialised (Node: a circular object) */
    cr_assert_eq(bullc_job_complete(job, "{\"x\":"), BULLC_EINVAL);
}

/* node: "process a job that returns data with a circular dependency" */
Test(parity_worker, unserialisable_result_fails_the_job) {
    ph *h = ph_new("q");
    h->proc = unserialisable;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    PH_RUN_FOR(h, 100);
    cr_assert_eq(h->n_completed, 0, "should not complete");
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

static void check_processed_by(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cJSON *j = ph_job(h, bullc_job_id(job));
    ph_assert_json(j, "processedBy", "\"foobar\"");
    cJSON_Delete(j);
    ph_complete_in(h, job, 100, NULL);
}

/* node: "sets the worker name on the job upon processing" */
Test(parity_worker, worker_name_on_the_job) {
    ph *h = ph_new("q");
    h->proc = check_processed_by;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_name(o, "foobar");
    ph_worker(h, o);
    ph_add(h, "test1", "{\"foo\":\"bar\"}", NULL);
    ph_add(h, "test2", "{\"foo\":\"baz\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    ph_end(h);
}

/* ---- job.retry() --------------------------------------------------------------- */

static void fail_first_time(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!h->user) {
        h->user = (void *)1;
        ph_fail(h, job, "Not even!", 0);
    } else {
        ph_complete(h, job, NULL);
    }
}

static void retry_failed_case(int flags, int64_t expect_second) {
    ph *h = ph_new("q");
    h->proc = fail_first_time;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    ph_wev *f = ph_wget(h, 'f', 0);
    cr_assert_str_eq(f->data, "{\"foo\":\"bar\"}");
    cr_assert_str_eq(f->text, "Not even!");
    cr_assert_eq(ph_job_num(h, id, "attemptsStarted"), 1);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, "failed", flags, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(ph_job_num(h, id, "attemptsStarted"), expect_second);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), expect_second);
    ph_end(h);
}

/* node: "[when job is in failed state] retries a job that fails" */
Test(parity_worker, retry_a_failed_job) { retry_failed_case(0, 2); }

/* node: "[when passing resetAttemptsMade and resetAttemptsStarted as true] retries a job that fails and resets attemptsMade and attemptsStarted" */
Test(parity_worker, retry_a_failed_job_resetting_attempts) {
    retry_failed_case(BULLC_RETRY_RESET_ATTEMPTS_MADE | BULLC_RETRY_RESET_ATTEMPTS_STARTED, 1);
}

static void count_results(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, h->user ? "2" : "1");
    h->user = (void *)1;
}

static void retry_completed_case(int flags, int64_t expect_second) {
    ph *h = ph_new("q");
    h->proc = count_results;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->text, "1");
    cr_assert_eq(ph_job_num(h, id, "attemptsStarted"), 1);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, "completed", flags, &err), 0, "%s", err.message);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert_str_eq(ph_wget(h, 'c', 1)->text, "2");
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"foo\":\"bar\"}");
    cr_assert_eq(ph_job_num(h, id, "attemptsStarted"), expect_second);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), expect_second);
    ph_end(h);
}

/* node: "[when job is in completed state] retries a job that completes" */
Test(parity_worker, retry_a_completed_job) { retry_completed_case(0, 2); }

/* node: "[when passing resetAttemptsMade and resetAttemptsStarted as true] retries a job that completes and resets attemptsMade and attemptsStarted" */
Test(parity_worker, retry_a_completed_job_resetting_attempts) {
    retry_completed_case(BULLC_RETRY_RESET_ATTEMPTS_MADE | BULLC_RETRY_RESET_ATTEMPTS_STARTED, 1);
}

static void delay100(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, NULL);
}

/* node: "[when queue is paused and retry a job] moves job to wait" */
Test(parity_worker, retry_while_paused_moves_to_wait) {
    ph *h = ph_new("q");
    h->proc = delay100;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->data, "{\"foo\":\"bar\"}");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    cr_assert_eq(bullc_queue_retry_job(h->q, id, "completed", 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    ph_end(h);
}

static void fail_odd_calls(ph *h, bullc_job *job, int widx) {
    (void)widx;
    h->user = (void *)((intptr_t)h->user + 1);
    if ((intptr_t)h->user % 2)
        ph_fail(h, job, "Not even!", 0);
    else
        ph_complete(h, job, NULL);
}

/* node: "retry a job that fails using job retry method" */
Test(parity_worker, retry_clears_the_failure) {
    ph *h = ph_new("q");
    h->proc = fail_odd_calls;
    bullc_worker *w = ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1));
    cr_assert_str_eq(ph_wget(h, 'f', 0)->text, "Not even!");
    bullc_worker_pause(w);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, NULL, 0, &err), 0, "%s", err.message);
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "failedReason", "<absent>");
    ph_assert_json(j, "processedOn", "<absent>");
    ph_assert_json(j, "finishedOn", "<absent>");
    ph_assert_json(j, "returnvalue", "null");
    cJSON_Delete(j);
    bullc_worker_resume(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    ph_end(h);
}

/* ---- closing --------------------------------------------------------------------- */

static void fail_after_3s(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail_in(h, job, 1500, "Job Failed", 0);
}
static void complete_after_3s(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 1500, NULL);
}

static void close_while_processing(ph_proc_fn proc, bool fail) {
    ph *h = ph_new("q");
    h->proc = proc;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    PH_RUN_FOR(h, 100);
    ph_close_worker_async(h, 0, false); /* graceful close with the job running */
    cr_assert(PH_WAIT(h, 10000, h->wdone[0]));
    cr_assert_eq(fail ? h->n_failed : h->n_completed, 1);
    ph_wev *e = ph_wget(h, fail ? 'f' : 'c', 0);
    cr_assert_str_eq(e->id, id);
    cr_assert_str_eq(e->data, "{\"foo\":\"bar\"}");
    if (fail) cr_assert_str_eq(e->text, "Job Failed");
    cr_assert(!isnan(ph_job_num(h, id, "finishedOn")));
    cr_assert_eq(ph_count(h, "active"), 0);
    cr_assert_eq(ph_count(h, fail ? "failed" : "completed"), 1);
    ph_end(h);
}

/* node: "process a job that throws an exception after worker close" */
Test(parity_worker, job_fails_after_close) { close_while_processing(fail_after_3s, true); }

/* node: "process a job that complete after worker close" */
Test(parity_worker, job_completes_after_close) { close_while_processing(complete_after_3s, false); }

static void lock_extender_proc(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 2000, NULL);
    ph_close_worker_async(h, 0, false);
}

/* node: "lock extender continues to run until all active jobs are completed when closing a worker" */
Test(parity_worker, lock_renewal_continues_while_closing) {
    ph *h = ph_new("q");
    h->proc = lock_extender_proc;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_lock_renew_time(o, 500);
    bullc_worker_opts_set_stalled_interval(o, 1000);
    ph_worker(h, o);
    /* a second worker would take the job if its lock expired */
    bullc_worker_opts *o2 = ph_wopts(h);
    bullc_worker_opts_set_stalled_interval(o2, 200);
    bullc_worker_opts_set_lock_duration(o2, 1000);
    const char *id = ph_add(h, "test", "{\"bar\":\"baz\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 1));
    ph_worker(h, o2);
    cr_assert(PH_WAIT(h, 10000, h->wdone[0]));
    cr_assert_eq(h->n_completed, 1);
    cr_assert_eq(h->n_failed + h->n_retried, 0);
    cr_assert_eq(h->n_stalled, 0, "the lock was kept while closing");
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

/* ---- autorun ----------------------------------------------------------------- */

static void serial_check(ph *h, bullc_job *job, int widx) {
    (void)widx;
    intptr_t n = (intptr_t)h->user + 1;
    h->user = (void *)n;
    char want[64];
    snprintf(want, sizeof want, "{\"foo\":\"bar\",\"num\":%d}", (int)n);
    cr_assert_str_eq(bullc_job_data(job), want);
    ph_complete_in(h, job, 20, NULL);
}

/* node: "processes several jobs serially using process option as false" */
Test(parity_worker, autorun_off_processes_serially) {
    ph *h = ph_new("q");
    h->proc = serial_check;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 1; i <= 10; i++) {
        char d[64];
        snprintf(d, sizeof d, "{\"foo\":\"bar\",\"num\":%d}", i);
        ph_add(h, "test", d, NULL);
    }
    PH_RUN_FOR(h, 100);
    cr_assert_eq(h->n_active, 0, "nothing runs before run()");
    cr_assert_eq(bullc_worker_run(w), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 10));
    ph_end(h);
}

/* node: "[when process function is not defined] throws error" */
Test(parity_worker, run_without_a_processor_fails) {
    ph *h = ph_new("q");
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_eq(bullc_worker_run(w), BULLC_EINVAL);
    cr_assert_not(bullc_worker_is_running(w));
    ph_end(h);
}

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

/* node: "[when run method is called when worker is running] throws error" */
Test(parity_worker, run_twice_fails) {
    ph *h = ph_new("q");
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_eq(bullc_worker_run(w), 0);
    for (int i = 1; i <= 10; i++) ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(bullc_worker_run(w), BULLC_EINVAL);
    cr_assert(bullc_worker_is_running(w));
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 10));
    ph_end(h);
}

/* ---- option checks -------------------------------------------------------------- */

/* Where Node's `new Worker(...)` throws, the setter refuses the value. */
static int set_max_stalled(bullc_worker_opts *o) { return bullc_worker_opts_set_max_stalled_count(o, -1); }
static int set_max_started(bullc_worker_opts *o) { return bullc_worker_opts_set_max_started_attempts(o, -1); }
static int set_stalled_interval(bullc_worker_opts *o) { return bullc_worker_opts_set_stalled_interval(o, 0); }
static int set_concurrency(bullc_worker_opts *o) { return bullc_worker_opts_set_concurrency(o, 0); }
static int new_worker_with(int (*set)(bullc_worker_opts *o)) { return set(tu_wopts()); }

/* node: "max stalled count cannot be less than zero" */
Test(parity_worker, max_stalled_count_below_zero) { cr_assert_eq(new_worker_with(set_max_stalled), BULLC_EINVAL); }

/* node: "max started attempts cannot be less than zero" */
Test(parity_worker, max_started_attempts_below_zero) { cr_assert_eq(new_worker_with(set_max_started), BULLC_EINVAL); }

/* node: "stalled interval cannot be zero" */
Test(parity_worker, stalled_interval_zero) { cr_assert_eq(new_worker_with(set_stalled_interval), BULLC_EINVAL); }

/* node: "should thrown an exception if I specify a concurrency of 0" */
Test(parity_worker, concurrency_zero) { cr_assert_eq(new_worker_with(set_concurrency), BULLC_EINVAL); }

/* ---- concurrency ------------------------------------------------------------------ */

static void one_at_a_time(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_eq(h->in_process, 1, "a second job started while one was processing");
    ph_complete_in(h, job, 50, NULL);
}

/* node: "should run job in sequence if I specify a concurrency of 1" */
Test(parity_worker, concurrency_one_runs_in_sequence) {
    ph *h = ph_new("q");
    h->proc = one_at_a_time;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 1);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{}", NULL);
    ph_add(h, "test", "{}", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert_eq(h->max_in_process, 1);
    ph_end(h);
}

static int pending_jobs = 8;
static int64_t wait_ms = 10;
typedef struct cjob {
    bullc_job *job;
} cjob;
static void conc_done(ph *h, void *arg) {
    bullc_job *job = arg;
    /* all 4 slots stay busy while jobs are left */
    cr_assert_eq(h->in_process, pending_jobs < 4 ? pending_jobs : 4, "in process %d with %d pending", h->in_process,
                 pending_jobs);
    pending_jobs--;
    ph_complete(h, job, NULL);
}
static void conc_proc(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cr_assert_lt(h->in_process, 5);
    wait_ms += 100;
    ph_call_in(h, wait_ms, conc_done, job);
}

/* node: "should process job respecting the concurrency set" */
Test(parity_worker, concurrency_is_respected) {
    ph *h = ph_new("q");
    h->proc = conc_proc;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, 4);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_bulk_job jobs[8];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 8; i++) jobs[i].name = "test", jobs[i].data_json = "{}";
    cr_assert_eq(bullc_queue_add_bulk(h->q, jobs, 8, NULL), 0);
    for (int i = 0; i < 8; i++) bullc_free(jobs[i].id);
    cr_assert(PH_WAIT(h, 15000, h->n_completed == 8));
    cr_assert_eq(pending_jobs, 0);
    cr_assert_eq(h->max_in_process, 4);
    ph_end(h);
}

/* ---- local pause -------------------------------------------------------------------- */

static void pause_on_first(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 100, NULL);
}

/* node: "[when pausing] should not keep active jobs" */
Test(parity_worker, pausing_keeps_no_active_jobs) {
    ph *h = ph_new("q");
    h->proc = pause_on_first;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_concurrency(o, 4);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 0; i < 8; i++) ph_add(h, "test", "{}", NULL);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed >= 1));
    bullc_worker_pause(w);
    /* once the jobs in process finished, nothing is left active */
    cr_assert(PH_WAIT(h, 10000, bullc_worker_active_count(w) == 0));
    PH_RUN_FOR(h, 100);
    cr_assert_eq(ph_count(h, "active"), 0);
    cr_assert_eq(h->n_completed + ph_count(h, "waiting"), 8);
    ph_end(h);
}

static void delay50(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 50, NULL);
}

/* node: "[when pausing] should resume processing after pause with doNotWaitActive" */
Test(parity_worker, resume_after_pause_without_waiting) {
    ph *h = ph_new("q");
    h->proc = delay50;
    bullc_worker *w = ph_worker(h, NULL);
    ph_add(h, "test", "{\"seq\":\"first\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert(bullc_worker_is_running(w));
    cr_assert_not(bullc_worker_is_paused(w));
    bullc_worker_pause(w);
    cr_assert(bullc_worker_is_paused(w));
    cr_assert(bullc_worker_is_running(w));
    bullc_worker_resume(w);
    cr_assert_not(bullc_worker_is_paused(w));
    cr_assert(bullc_worker_is_running(w));
    ph_add(h, "test", "{\"seq\":\"after-resume\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert_str_eq(ph_wget(h, 'c', 1)->data, "{\"seq\":\"after-resume\"}");
    ph_end(h);
}

/* ---- stalled ------------------------------------------------------------------------ */

static void first_hangs(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!h->user) {
        h->user = (void *)1;
        ph_complete_in(h, job, 2000, NULL);
    } else {
        ph_complete(h, job, NULL);
    }
}

/* node: "continues processing after a worker has stalled" */
Test(parity_worker, continues_after_a_stall) {
    ph *h = ph_new("q");
    h->proc = first_hangs;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_lock_renew_time(o, 3000); /* the lock is not renewed in time */
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_concurrency(o, 2);
    ph_worker(h, o);
    const char *id = ph_add(h, "test", "{\"bar\":\"baz\"}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed >= 1));
    cr_assert_str_eq(ph_wget(h, 'c', 0)->id, id);
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

/* ---- manual processing ------------------------------------------------------------ */

typedef struct manual {
    bullc_job *job;
    int code;
    bool done;
} manual;
static void got_next(bullc_worker *w, bullc_job *job, int code, void *data) {
    (void)w;
    manual *m = data;
    m->job = job;
    m->code = code;
    m->done = true;
}
static bullc_job *next_job(ph *h, bullc_worker *w, const char *token, bool block) {
    manual m = {0};
    cr_assert_eq(bullc_worker_get_next_job(w, token, block, got_next, &m), 0);
    cr_assert(PH_WAIT(h, 10000, m.done));
    cr_assert_eq(m.code, 0);
    return m.job;
}
static bullc_worker *manual_worker(ph *h) {
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    return w;
}

/* node: "should allow to complete jobs manually" */
Test(parity_worker, complete_manually) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_job *job = next_job(h, w, "my-token", true);
    cr_assert_not_null(job);
    cr_assert_str_eq(ph_state(h, id), "active");
    cr_assert_eq(bullc_job_complete(job, "\"return value\""), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, id), "completed")));
    cJSON *j = ph_job(h, id);
    cr_assert_eq(ph_jnum(j, "attemptsMade"), 1);
    cr_assert(!isnan(ph_jnum(j, "finishedOn")));
    ph_assert_json(j, "returnvalue", "\"return value\"");
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "should allow to fail jobs manually" */
Test(parity_worker, fail_manually) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_job *job = next_job(h, w, "my-token", true);
    cr_assert_not_null(job);
    cr_assert_str_eq(ph_state(h, id), "active");
    cr_assert_eq(bullc_job_fail(job, "job failed for some reason", 0), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, id), "failed")));
    cJSON *j = ph_job(h, id);
    cr_assert_eq(ph_jnum(j, "attemptsMade"), 1);
    cr_assert(!isnan(ph_jnum(j, "finishedOn")));
    ph_assert_json(j, "failedReason", "\"job failed for some reason\"");
    cJSON_Delete(j);
    ph_end(h);
}

static void add_later(ph *h, void *arg) {
    (void)arg;
    ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
}

/* node: "[when lock is expired and removing a job in active state] does not get stuck in max state" */
Test(parity_worker, removed_active_job_frees_global_slot) {
    ph *h = ph_new("q");
    cr_assert_eq(bullc_queue_set_global_concurrency(h->q, 1, NULL), 0);
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_lock_duration(o, 20);
    bullc_worker_opts_set_lock_renew_time(o, 200);
    bullc_worker_opts_set_skip_stalled_check(o, true);
    bullc_worker_opts_set_skip_lock_renewal(o, true);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    for (int i = 0; i < 4; i++) ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_job *job = next_job(h, w, "my-token", true);
    cr_assert_not_null(job);
    cr_assert_str_eq(ph_state(h, bullc_job_id(job)), "active");
    PH_RUN_FOR(h, 50);
    bool maxed = false;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_is_maxed(h->q, &maxed, &err), 0, "%s", err.message);
    cr_assert(maxed, "one active job at a global concurrency of 1");
    /* its lock expired: the active job can be removed, and its slot with it */
    cr_assert_eq(bullc_queue_remove_job(h->q, bullc_job_id(job), false, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_is_maxed(h->q, &maxed, &err), 0, "%s", err.message);
    cr_assert_not(maxed);
    bullc_job_fail(job, "removed", 0); /* handed back; nothing of it is left to store */
    PH_RUN_FOR(h, 100);
    ph_end(h);
}

/* node: "should block by default" */
Test(parity_worker, manual_fetch_blocks_by_default) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    cr_assert_null(next_job(h, w, "my-token", true), "the queue is empty"); /* drained */
    ph_call_in(h, 100, add_later, NULL);
    bullc_job *job = next_job(h, w, "my-token", true);
    cr_assert_not_null(job, "the job added while blocking is returned");
    cr_assert_str_eq(ph_state(h, bullc_job_id(job)), "active");
    bullc_job_complete(job, NULL);
    PH_RUN_FOR(h, 100);
    ph_end(h);
}

/* node: "shouldn't block when disabled" */
Test(parity_worker, manual_fetch_without_blocking) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    cr_assert_null(next_job(h, w, "my-token", false));
    ph_call_in(h, 100, add_later, NULL);
    cr_assert_null(next_job(h, w, "my-token", false), "returns at once with nothing");
    PH_RUN_FOR(h, 200);
    bullc_job *job = next_job(h, w, "my-token", false);
    cr_assert_not_null(job);
    cr_assert_str_eq(ph_state(h, bullc_job_id(job)), "active");
    bullc_job_complete(job, NULL);
    PH_RUN_FOR(h, 100);
    ph_end(h);
}
