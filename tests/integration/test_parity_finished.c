/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job.test.ts `.finished` cases: job.waitUntilFinished is
 * bullc_queue_wait_until_finished, a blocking call; it runs on a thread of
 * its own with its own queue handle while the test's loop runs the worker. */
#include "test_parity_util.h"

#include <pthread.h>

TestSuite(parity_finished, .timeout = 60);

typedef struct waiter {
    bullc_queue *q;
    const char *id;
    int64_t timeout_ms;
    int rc;
    bool failed;
    char *value;
    bullc_error err;
    int done; /* set by the thread (atomically), read by the loop */
    pthread_t t;
} waiter;

static void *wait_thread(void *p) {
    waiter *w = p;
    w->rc = bullc_queue_wait_until_finished(w->q, w->id, w->timeout_ms, &w->failed, &w->value, &w->err);
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void wait_start(ph *h, waiter *w, const char *id, int64_t timeout_ms) {
    memset(w, 0, sizeof *w);
    w->q = ph_queue_at(h, tu_redis_url());
    w->id = id;
    w->timeout_ms = timeout_ms;
    cr_assert_eq(pthread_create(&w->t, NULL, wait_thread, w), 0);
}

/* Runs the loop until the wait returns; its code. */
static int wait_end(ph *h, waiter *w) {
    cr_assert(PH_WAIT(h, 20000, __atomic_load_n(&w->done, __ATOMIC_SEQ_CST)), "waitUntilFinished did not return");
    pthread_join(w->t, NULL);
    bullc_queue_free(w->q);
    return w->rc;
}

/* Job `id`'s waitUntilFinished, started now, with the loop running. */
static int wait_for(ph *h, waiter *w, const char *id) {
    wait_start(h, w, id, 0);
    return wait_end(h, w);
}

static void complete_with(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, h->user);
}
static void complete_later(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 300, h->user);
}
static void fail_later(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail_in(h, job, 500, "test error", 0);
}
static void fail_now(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "test error", 0);
}

/* A worker completing every job with `result` (JSON), and a job for it. */
static const char *worker_returning(ph *h, const char *result, ph_proc_fn proc) {
    h->user = (void *)result;
    h->proc = proc;
    ph_worker(h, NULL);
    return ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
}

static void assert_completed_with(waiter *w, const char *json) {
    cr_assert_eq(w->rc, 0, "%s", w->err.message);
    cr_assert_not(w->failed);
    cr_assert_str_eq(w->value, json);
    bullc_free(w->value);
}

/* A worker returning `result` (JSON) through `proc`; the test waits `before`
 * ms after the add, then for the job's end: `result` must come back. */
static void completed_case(const char *result, ph_proc_fn proc, int64_t before) {
    ph *h = ph_new("q");
    const char *id = worker_returning(h, result, proc);
    if (before) PH_RUN_FOR(h, before);
    waiter w;
    wait_for(h, &w, id);
    assert_completed_with(&w, result);
    ph_end(h);
}

/* node: "[.finished] should resolve when the job has been completed" */
Test(parity_finished, completed) { completed_case("\"qux\"", complete_with, 0); }

/* node: "[.finished] should resolve when the job has been completed and return object" */
Test(parity_finished, completed_with_an_object) { completed_case("{\"resultFoo\":\"bar\"}", complete_with, 0); }

/* node: "[.finished] should resolve when the job has been delayed and completed and return object" */
Test(parity_finished, completed_after_a_while) { completed_case("{\"resultFoo\":\"bar\"}", complete_later, 600); }

/* node: "[.finished] should resolve when the job has been completed and return string" */
Test(parity_finished, completed_with_a_string) { completed_case("\"a string\"", complete_with, 0); }

/* node: "[.finished] should reject when the job has been failed" */
Test(parity_finished, failed) {
    ph *h = ph_new("q");
    const char *id = worker_returning(h, NULL, fail_later);
    waiter w;
    wait_start(h, &w, id, 0);
    cr_assert_eq(wait_end(h, &w), 0, "%s", w.err.message);
    cr_assert(w.failed);
    cr_assert_str_eq(w.value, "test error");
    cr_assert(PH_WAIT(h, 2000, h->n_failed == 1));
    bullc_free(w.value);
    ph_end(h);
}

/* node: "[.finished] should resolve directly if already processed" */
Test(parity_finished, already_completed) {
    ph *h = ph_new("q");
    const char *id = worker_returning(h, "{\"resultFoo\":\"bar\"}", complete_with);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    ph_close_worker(h, 0, false); /* nothing may come on the stream now: the answer is isFinished's */
    waiter w;
    wait_for(h, &w, id);
    assert_completed_with(&w, "{\"resultFoo\":\"bar\"}");
    ph_end(h);
}

/* node: "[.finished] should reject directly if already processed" */
Test(parity_finished, already_failed) {
    ph *h = ph_new("q");
    const char *id = worker_returning(h, NULL, fail_now);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    ph_close_worker(h, 0, false);
    waiter w;
    cr_assert_eq(wait_for(h, &w, id), 0, "%s", w.err.message);
    cr_assert(w.failed);
    cr_assert_str_eq(w.value, "test error");
    bullc_free(w.value);
    ph_end(h);
}

/* node: "[.finished > when job was added with removeOnComplete] rejects with missing key for job message" */
Test(parity_finished, removed_on_complete) {
    ph *h = ph_new("q");
    h->user = "\"qux\"";
    h->proc = complete_later;
    ph_worker(h, NULL);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"removeOnComplete\":true}");
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_not(ph_job_exists(h, id));
    cr_assert_eq(ph_count(h, "completed"), 0);
    waiter w;
    cr_assert_eq(wait_for(h, &w, id), BULLC_ENOTFOUND);
    char want[160];
    snprintf(want, sizeof want, "Missing key for job %s. isFinished", ph_key(h, id));
    cr_assert_str_eq(w.err.message, want);
    ph_end(h);
}

/* Node's ttl: the wait gives up with Node's message, naming the job */
Test(parity_finished, times_out) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "slow", "{}", NULL);
    waiter w;
    int64_t t0 = tu_now_ms();
    wait_start(h, &w, id, 300);
    cr_assert_eq(wait_end(h, &w), BULLC_ETIMEDOUT);
    cr_assert_geq(tu_now_ms() - t0, 300);
    char want[160];
    snprintf(want, sizeof want,
             "Job wait slow timed out before finishing, no finish notification arrived after 300ms (id=%s)", id);
    cr_assert_str_eq(w.err.message, want);
    cr_assert_null(w.value);
    ph_end(h);
}
