/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job_cancellation(.advanced).test.ts cases, reproduced with
 * bullc's worker: bullc_worker_cancel_job / cancel_all_jobs, the flag, the
 * reason and the cancel callback a processor gets (Node's AbortSignal), and
 * how the job ends as its processor ends it (retried, unrecoverable,
 * completed when ignored); a cancel from the lock_lost event, a failure that
 * cannot be stored without the lock, and processors holding real resources
 * (a Redis connection, sockets, a file, an unanswered HTTP call). Also worker.test.ts' runtime concurrency cases
 * (bullc_worker_set_concurrency, Node's `worker.concurrency = n`). */
#include "test_parity_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

TestSuite(parity_cancel, .timeout = 90);

/* How the test processor reacts: on its cancel callback (Node's abort
 * listener), by polling the flag (signal.aborted), or not at all. */
enum { ON_EVENT, POLL, IGNORE };

typedef struct cfg {
    int mode;
    int64_t work_ms;    /* an uncancelled job completes after this */
    int fail_flags;     /* how a cancelled job fails */
    const char *msg;    /* its failure message; NULL: the cancellation's reason */
    int64_t cleanup_ms; /* ON_EVENT: fail only after this much cleanup */
    int progress_steps; /* progress updates spread over work_ms */
    int fail_first;     /* the first N attempts fail on their own ("attempt failed") */
    int callbacks, settled, progress_sent, cancel_again;
} cfg;

typedef struct pj {
    uv_timer_t t;
    ph *h;
    bullc_job *job;
    int64_t start;
    bool finished, cleaning;
} pj;

static void pj_closed(uv_handle_t *t) { free(t->data); }

static void pj_end(pj *p, bool ok, const char *msg, int flags) {
    if (p->finished) return;
    p->finished = true;
    uv_timer_stop(&p->t);
    if (ok)
        ph_complete(p->h, p->job, "\"done\"");
    else
        ph_fail(p->h, p->job, msg, flags);
    uv_close((uv_handle_t *)&p->t, pj_closed);
}

static void pj_fail_cancelled(pj *p) {
    cfg *c = p->h->user;
    pj_end(p, false, c->msg ? c->msg : bullc_job_cancel_reason(p->job), c->fail_flags);
}

static void pj_tick(uv_timer_t *t) {
    pj *p = t->data;
    cfg *c = p->h->user;
    int64_t el = tu_now_ms() - p->start;
    if (p->cleaning) {
        if (el >= c->cleanup_ms) pj_fail_cancelled(p);
        return;
    }
    if (c->mode == POLL && bullc_job_is_cancelled(p->job)) {
        pj_fail_cancelled(p);
        return;
    }
    if (c->progress_steps && c->progress_sent < c->progress_steps &&
        el >= c->work_ms * (c->progress_sent + 1) / (c->progress_steps + 1)) {
        char v[16];
        snprintf(v, sizeof v, "%d", ++c->progress_sent * 100 / (c->progress_steps + 1));
        bullc_job_update_progress(p->job, v, NULL, NULL);
    }
    if (el >= c->work_ms) pj_end(p, true, NULL, 0);
}

static void on_cancel(bullc_job *job, const char *reason, void *data) {
    pj *p = data;
    cfg *c = p->h->user;
    if (!reason) {
        c->settled++;
        return;
    }
    c->callbacks++;
    cr_assert(bullc_job_is_cancelled(job));
    cr_assert_str_eq(bullc_job_cancel_reason(job), reason);
    /* re-entrant: cancelling again from the listener finds the job and
     * does not call the listener again */
    if (c->cancel_again) cr_assert_eq(bullc_worker_cancel_job(p->h->w[0], bullc_job_id(job), "again"), 1);
    if (c->cleanup_ms) {
        p->cleaning = true;
        p->start = tu_now_ms();
        return;
    }
    pj_fail_cancelled(p);
}

static void proc(ph *h, bullc_job *job, int widx) {
    (void)widx;
    cfg *c = h->user;
    if (bullc_job_attempts_made(job) < c->fail_first) {
        ph_fail(h, job, "attempt failed", 0);
        return;
    }
    pj *p = calloc(1, sizeof *p);
    p->h = h;
    p->job = job;
    p->start = tu_now_ms();
    uv_timer_init(&h->loop, &p->t);
    p->t.data = p;
    if (c->mode == ON_EVENT) {
        if (bullc_job_is_cancelled(job)) { /* cancelled before it started */
            cr_assert_eq(bullc_job_on_cancel(job, on_cancel, p), 1);
            pj_fail_cancelled(p);
            return;
        }
        cr_assert_eq(bullc_job_on_cancel(job, on_cancel, p), 0);
        cr_assert_eq(bullc_job_on_cancel(job, on_cancel, p), BULLC_EINVAL, "one listener per job");
    }
    uv_timer_start(&p->t, pj_tick, 5, 5);
}

static ph *setup(cfg *c, int concurrency) {
    ph *h = ph_new("q");
    h->user = c;
    h->proc = proc;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, concurrency);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    return h;
}

static void wait_active(ph *h, const char *id) { cr_assert(PH_WAIT(h, 10000, ph_wcount(h, 'a', id) > 0), "%s", id); }

static const char *failed_reason(ph *h, const char *id) {
    static char buf[256];
    cJSON *j = ph_job(h, id);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "failedReason");
    snprintf(buf, sizeof buf, "%s", cJSON_IsString(r) ? r->valuestring : "");
    cJSON_Delete(j);
    return buf;
}

/* One job cancelled while running with `reason`; waits for its failure. */
static void cancel_one(cfg *c, const char *reason, const char *expected) {
    ph *h = setup(c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    PH_RUN_FOR(h, 50);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, reason), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_str_eq(ph_state(h, id), "failed");
    cr_assert_str_eq(failed_reason(h, id), expected);
    cr_assert_str_eq(ph_wget(h, 'f', 0)->text, expected);
    cr_assert_eq(h->n_completed, 0);
    ph_end(h);
}

/* node: "should cancel a running job using abort event (recommended)" */
Test(parity_cancel, abort_event) {
    cfg c = {.mode = ON_EVENT, .work_ms = 10000};
    cancel_one(&c, "Job was cancelled", "Job was cancelled");
    cr_assert_eq(c.callbacks, 1);
    cr_assert_eq(c.settled, 0, "a listener runs once: not again when the job is failed");
}

/* node: "should cancel a running job using polling (alternative)" */
Test(parity_cancel, polling) {
    cfg c = {.mode = POLL, .work_ms = 10000, .msg = "Job cancelled by polling"};
    cancel_one(&c, NULL, "Job cancelled by polling");
}

/* node: "should interrupt async operations with abort event" */
Test(parity_cancel, interrupts_long_work) {
    cfg c = {.mode = ON_EVENT, .work_ms = 60000};
    int64_t t0 = tu_now_ms();
    cancel_one(&c, "interrupted", "interrupted");
    cr_assert_lt(tu_now_ms() - t0, 20000, "the minute of work was cut short");
}

/* node: "should return false when cancelling a non-existent job" */
Test(parity_cancel, unknown_job) {
    cfg c = {.mode = ON_EVENT, .work_ms = 10};
    ph *h = setup(&c, 1);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], "non-existent-job-id", NULL), 0);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], NULL, NULL), 0);
    cr_assert_eq(bullc_worker_cancel_all_jobs(h->w[0], NULL), 0);
    ph_end(h);
}

/* node: "should return false when cancelling a job that has already completed" */
Test(parity_cancel, completed_job) {
    cfg c = {.mode = ON_EVENT, .work_ms = 20};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, NULL), 0);
    cr_assert_eq(c.settled, 1, "the listener was told the job ended uncancelled");
    cr_assert_eq(c.callbacks, 0);
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

/* node: "should cancel all active jobs" */
Test(parity_cancel, cancel_all) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    ph *h = setup(&c, 3);
    for (int i = 0; i < 3; i++) ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_active == 3));
    cr_assert_eq(bullc_worker_cancel_all_jobs(h->w[0], "Shutting down"), 3);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 3));
    for (int i = 0; i < 3; i++) cr_assert_str_eq(ph_wget(h, 'f', i)->text, "Shutting down");
    cr_assert_eq(ph_count(h, "failed"), 3);
    ph_end(h);
}

/* A blocking processor (a thread-pool thread, as a plugin's) that polls the
 * flag between slices of work, as a fetch given a signal stops. */
static void blocking_poll(bullc_job *job, bullc_job_result *out, void *data) {
    (void)data;
    for (int i = 0; i < 3000; i++) {
        if (bullc_job_is_cancelled(job)) {
            out->error = strdup(bullc_job_cancel_reason(job));
            return;
        }
        usleep(2000);
    }
    out->result_json = strdup("\"fetched\"");
}

/* node: "should work with fetch-like APIs that accept abort signal" */
Test(parity_cancel, blocking_processor_polls) {
    ph *h = ph_new("q");
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_blocking_processor(o, blocking_poll, NULL);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "fetch", "{}", NULL);
    wait_active(h, id);
    PH_RUN_FOR(h, 50);
    cr_assert_eq(bullc_worker_cancel_job(w, id, "fetch aborted"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_str_eq(failed_reason(h, id), "fetch aborted");
    ph_end(h);
}

/* node: "should work with processor that ignores signal (backward compatibility)" */
Test(parity_cancel, ignored) {
    cfg c = {.mode = IGNORE, .work_ms = 300};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "ignored"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1));
    cr_assert_eq(h->n_failed + h->n_retried, 0);
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

/* node: "should handle signal.aborted check in async operations" */
Test(parity_cancel, aborted_checked_between_steps) {
    cfg c = {.mode = POLL, .work_ms = 2000, .progress_steps = 9, .msg = "Aborted at step"};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, c.progress_sent >= 2));
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, NULL), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_lt(c.progress_sent, 9, "no step ran after the check");
    cr_assert_str_eq(failed_reason(h, id), "Aborted at step");
    ph_end(h);
}

/* node: "should handle cancellation of job that throws error" */
Test(parity_cancel, processor_error_wins) {
    cfg c = {.mode = ON_EVENT, .work_ms = 10000, .msg = "Processing error"};
    cancel_one(&c, "cancel", "Processing error");
}

/* node: "should handle concurrent cancellations" */
Test(parity_cancel, concurrent_cancellations) {
    cfg c = {.mode = POLL, .work_ms = 10000};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "first"), 1);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "second"), 1);
    cr_assert_eq(bullc_worker_cancel_all_jobs(h->w[0], "third"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_str_eq(failed_reason(h, id), "first", "the first reason stays");
    cr_assert_eq(h->n_failed, 1);
    ph_end(h);
}

/* node: "should handle cancellation with UnrecoverableError" */
Test(parity_cancel, unrecoverable) {
    cfg c = {.mode = ON_EVENT, .work_ms = 10000, .fail_flags = BULLC_FAIL_UNRECOVERABLE};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", "{\"attempts\":3}");
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "Cancelled for good"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    PH_RUN_FOR(h, 200);
    cr_assert_eq(h->n_retried, 0);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 1);
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

/* node: "should work with multiple workers processing same queue" */
Test(parity_cancel, two_workers) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    ph *h = setup(&c, 1);
    bullc_worker_opts *o = ph_wopts(h);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 2));
    const char *a = ph_add(h, "a", "{}", NULL);
    char ida[64];
    snprintf(ida, sizeof ida, "%s", a);
    const char *idb = ph_add(h, "b", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_active == 2));
    int wa = ph_wget(h, 'a', 0)->widx, wb = ph_wget(h, 'a', 1)->widx;
    const char *first = ph_wget(h, 'a', 0)->id, *second = ph_wget(h, 'a', 1)->id;
    cr_assert_neq(wa, wb, "one job each");
    cr_assert_eq(bullc_worker_cancel_job(h->w[wb], first, "wrong worker"), 0);
    cr_assert_eq(bullc_worker_cancel_job(h->w[wa], first, "w1"), 1);
    cr_assert_eq(bullc_worker_cancel_job(h->w[wb], second, "w2"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 2));
    cr_assert_str_eq(failed_reason(h, ida), !strcmp(first, ida) ? "w1" : "w2");
    cr_assert_str_eq(failed_reason(h, idb), !strcmp(first, idb) ? "w1" : "w2");
    ph_end(h);
}

/* node: "should provide working AbortSignal with aborted property" */
Test(parity_cancel, flag_and_reason) {
    cfg c = {.mode = POLL, .work_ms = 10000};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, NULL), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_str_eq(failed_reason(h, id), "This operation was aborted", "Node's default reason");
    ph_end(h);
}

/* node: "should work with signal event listener" */
Test(parity_cancel, listener_once) {
    cfg c = {.mode = ON_EVENT, .work_ms = 10000, .cleanup_ms = 100};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "listened"), 1);
    cr_assert_eq(c.callbacks, 1, "the listener ran inside the cancel call");
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "again"), 1);
    cr_assert_eq(c.callbacks, 1, "and only once");
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_eq(c.settled, 0);
    ph_end(h);
}

/* node: "should support cancellation reason" */
Test(parity_cancel, reason) {
    cfg c = {.mode = ON_EVENT, .work_ms = 10000};
    cancel_one(&c, "User requested cancellation", "User requested cancellation");
}

/* node: "should retry cancelled job when throwing regular Error" */
Test(parity_cancel, retried) {
    cfg c = {.mode = ON_EVENT, .work_ms = 200};
    ph *h = setup(&c, 1);
    c.work_ms = 30000;
    const char *id = ph_add(h, "test", "{}", "{\"attempts\":3}");
    wait_active(h, id);
    c.work_ms = 100; /* the retry completes */
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "retry me"), 1);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_eq(h->n_retried, 1);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 2);
    cr_assert_str_eq(ph_state(h, id), "completed");
    ph_end(h);
}

/* node: "should NOT retry cancelled job when throwing UnrecoverableError" */
Test(parity_cancel, not_retried) {
    cfg c = {.mode = POLL, .work_ms = 30000, .fail_flags = BULLC_FAIL_UNRECOVERABLE};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", "{\"attempts\":5,\"backoff\":10}");
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "no retry"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    PH_RUN_FOR(h, 200);
    cr_assert_eq(h->n_active, 1);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 1);
    ph_end(h);
}

/* node: "should handle cancellation on last retry attempt" */
Test(parity_cancel, last_attempt) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000, .fail_first = 1};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", "{\"attempts\":2}");
    cr_assert(PH_WAIT(h, 10000, h->n_active == 2));
    PH_RUN_FOR(h, 20);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "last"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_eq(h->n_retried, 1);
    cr_assert_eq(ph_job_num(h, id, "attemptsMade"), 2);
    cr_assert_str_eq(failed_reason(h, id), "last");
    ph_end(h);
}

/* node: "should move cancelled job to failed state" */
Test(parity_cancel, failed_state) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    cr_assert_str_eq(ph_state(h, id), "active");
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "to failed"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_str_eq(ph_state(h, id), "failed");
    cr_assert_eq(ph_count(h, "active"), 0);
    cr_assert_gt(ph_job_num(h, id, "finishedOn"), 0);
    ph_end(h);
}

/* node: "should track job state through QueueEvents" */
Test(parity_cancel, queue_events) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    ph *h = setup(&c, 1);
    ph_qe(h);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "seen by listeners"), 1);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "failed", id) == 1));
    cr_assert_eq(ph_qe_count(h, "active", id), 1);
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "failed", 0), "failedReason"), "seen by listeners");
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "failed", 0), "prev"), "active");
    ph_end(h);
}

static void cancel_at_active(ph *h, ph_wev *e) {
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], e->id, "before any data"), 1);
}

/* node: "should cancel job before it processes any data" */
Test(parity_cancel, before_processing) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000, .progress_steps = 3};
    ph *h = setup(&c, 1);
    h->on_active = cancel_at_active;
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_eq(c.progress_sent, 0);
    cr_assert_eq(c.callbacks, 0, "registering on a cancelled job registers nothing");
    cr_assert_str_eq(failed_reason(h, id), "before any data");
    ph_end(h);
}

static void mid_or_late(int at_progress, const char *reason) {
    cfg c = {.mode = ON_EVENT, .work_ms = 3000, .progress_steps = 9};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, c.progress_sent >= at_progress));
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, reason), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_eq(h->n_completed, 0);
    cr_assert_eq(c.progress_sent, at_progress);
    cJSON *j = ph_job(h, id);
    char want[8];
    snprintf(want, sizeof want, "%d", at_progress * 10);
    ph_assert_json(j, "progress", want);
    cJSON_Delete(j);
    cr_assert_str_eq(failed_reason(h, id), reason);
    ph_end(h);
}

/* node: "should cancel job in the middle of processing" */
Test(parity_cancel, middle) { mid_or_late(5, "mid"); }

/* node: "should handle cancellation near completion" */
Test(parity_cancel, near_completion) { mid_or_late(9, "late"); }

/* node: "should cancel specific job among concurrent jobs" */
Test(parity_cancel, one_among_many) {
    cfg c = {.mode = ON_EVENT, .work_ms = 600};
    ph *h = setup(&c, 3);
    char ids[3][64];
    for (int i = 0; i < 3; i++) snprintf(ids[i], sizeof ids[i], "%s", ph_add(h, "test", "{}", NULL));
    cr_assert(PH_WAIT(h, 10000, h->n_active == 3));
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], ids[1], "only this one"), 1);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2 && h->n_failed == 1));
    cr_assert_str_eq(ph_state(h, ids[0]), "completed");
    cr_assert_str_eq(ph_state(h, ids[1]), "failed");
    cr_assert_str_eq(ph_state(h, ids[2]), "completed");
    ph_end(h);
}

/* node: "should handle rapid cancellations with high concurrency" */
Test(parity_cancel, rapid_many) {
    cfg c = {.mode = POLL, .work_ms = 30000};
    ph *h = setup(&c, 10);
    char ids[10][64];
    for (int i = 0; i < 10; i++) snprintf(ids[i], sizeof ids[i], "%s", ph_add(h, "test", "{}", NULL));
    cr_assert(PH_WAIT(h, 10000, h->n_active == 10));
    for (int i = 0; i < 10; i++) cr_assert_eq(bullc_worker_cancel_job(h->w[0], ids[i], "rapid"), 1);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 10));
    cr_assert_eq(ph_count(h, "failed"), 10);
    ph_end(h);
}

/* node: "should handle cancellation of job with backoff retry" */
Test(parity_cancel, backoff_retry) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", "{\"attempts\":2,\"backoff\":{\"type\":\"fixed\",\"delay\":300}}");
    wait_active(h, id);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "back off"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_retried == 1));
    PH_RUN_FOR(h, 50);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    c.work_ms = 50;
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_geq(ph_wget(h, 'a', 1)->t - ph_wget(h, 'f', 0)->t, 250, "the backoff was waited");
    ph_end(h);
}

/* node: "should preserve error message from cancellation" */
Test(parity_cancel, message_kept) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    cancel_one(&c, "Cancelled: user pressed stop (id 42) \xc3\xa9", "Cancelled: user pressed stop (id 42) \xc3\xa9");
}

/* node: "should track stacktrace for cancelled jobs" */
Test(parity_cancel, stacktrace) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", "{\"attempts\":2}");
    for (int i = 0; i < 2; i++) {
        cr_assert(PH_WAIT(h, 10000, h->n_active == i + 1));
        PH_RUN_FOR(h, 20);
        cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "traced"), 1);
        cr_assert(PH_WAIT(h, 5000, h->n_retried + h->n_failed == i + 1));
    }
    cJSON *j = ph_job(h, id);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "stacktrace");
    cr_assert(cJSON_IsArray(st));
    cr_assert_eq(cJSON_GetArraySize(st), 2, "one entry per failed attempt");
    cr_assert(strstr(cJSON_GetArrayItem(st, 0)->valuestring, "traced"));
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "should handle cancellation during worker shutdown" */
Test(parity_cancel, during_shutdown) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000};
    ph *h = setup(&c, 2);
    ph_add(h, "test", "{}", NULL);
    ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_active == 2));
    ph_close_worker_async(h, 0, false);
    PH_RUN_FOR(h, 50);
    cr_assert(!h->wdone[0], "the close waits for the jobs");
    cr_assert_eq(bullc_worker_cancel_all_jobs(h->w[0], "shutting down"), 2);
    cr_assert(PH_WAIT(h, 10000, h->wdone[0]));
    cr_assert_eq(h->n_failed, 2);
    cr_assert_eq(ph_count(h, "failed"), 2, "both failures were stored before the close ended");
    cr_assert_eq(bullc_worker_close_left(h->w[0]), 0);
    ph_end(h);
}

/* node: "should not cancel jobs after worker is closed" */
Test(parity_cancel, after_close) {
    cfg c = {.mode = ON_EVENT, .work_ms = 100};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    ph_close_worker(h, 0, false);
    cr_assert_eq(h->n_completed, 1);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "late"), 0);
    cr_assert_eq(bullc_worker_cancel_all_jobs(h->w[0], "late"), 0);
    ph_end(h);
}

/* node: "should support async cleanup when job is cancelled" */
Test(parity_cancel, async_cleanup) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000, .cleanup_ms = 300};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    wait_active(h, id);
    int64_t t0 = tu_now_ms();
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "cleaned"), 1);
    PH_RUN_FOR(h, 100);
    cr_assert_str_eq(ph_state(h, id), "active", "still active while cleaning up");
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_geq(ph_wget(h, 'f', 0)->t - t0, 290);
    ph_end(h);
}

/* node: "should allow cleanup to check signal again (re-entrant cancellation)" */
Test(parity_cancel, reentrant) {
    cfg c = {.mode = ON_EVENT, .work_ms = 30000, .cancel_again = 1};
    cancel_one(&c, "outer", "outer");
    cr_assert_eq(c.callbacks, 1);
}

/* node: "should handle cancellation with progress updates" */
Test(parity_cancel, progress_then_cancel) {
    cfg c = {.mode = ON_EVENT, .work_ms = 2000, .progress_steps = 9};
    ph *h = setup(&c, 1);
    const char *id = ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_progress >= 3));
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, "progress stopped"), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    int n = h->n_progress;
    PH_RUN_FOR(h, 300);
    cr_assert_eq(h->n_progress, n, "no progress after the cancellation");
    ph_end(h);
}

/* ---- a lost lock ---------------------------------------------------------------- */

static void cancel_on_lock_lost(ph *h, ph_wev *e) {
    cr_assert_eq(bullc_worker_cancel_job(h->w[e->widx], e->id, "Cancelled due to lock renewal failure"), 1);
}

/* Node's lockRenewalFailed is bullc's lock_lost event: a handler that
 * cancels the job reaches its processor while the job is still its own;
 * the worker has given the job up, so what the processor reports after is
 * not written (the lock's holder decides). */
/* node: "should allow manual cancellation on lockRenewalFailed event" */
Test(parity_cancel, cancel_on_lock_renewal_failure) {
    cfg c = {.mode = ON_EVENT, .work_ms = 5000, .cleanup_ms = 20};
    ph *h = ph_new("q");
    h->user = &c;
    h->proc = proc;
    h->on_lock_lost = cancel_on_lock_lost;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 1000); /* renewed every 250 ms */
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    wait_active(h, id);
    char lock[96];
    snprintf(lock, sizeof lock, "%s:lock", id);
    ph_vcmd("SET %s another-token XX", ph_key(h, lock));
    cr_assert(PH_WAIT(h, 3000, h->n_lock_lost == 1), "the renewal failed");
    cr_assert_eq(c.callbacks, 1, "the processor was told by the handler's cancel");
    cr_assert(PH_WAIT(h, 3000, h->in_process == 0), "the processor ended the job");
    cr_assert_eq(bullc_worker_active_count(h->w[0]), 0);
    PH_RUN_FOR(h, 200);
    cr_assert_eq(h->n_failed + h->n_retried + h->n_completed, 0);
    cr_assert_str_eq(ph_state(h, id), "active", "left to the lock's holder");
    redisReply *r = ph_cmd("GET %s", ph_key(h, lock));
    cr_assert_str_eq(r->str, "another-token");
    freeReplyObject(r);
    char want[96];
    snprintf(want, sizeof want, "could not renew lock for job %s", id);
    cr_assert(h->n_errors >= 1 && strstr(ph_wget(h, 'e', 0)->text, want), "an error event names the job");
    ph_end(h);
}

static void lose_lock_then_fail(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (strcmp(bullc_job_name(job), "lose")) {
        ph_complete(h, job, NULL);
        return;
    }
    char lock[96];
    snprintf(lock, sizeof lock, "%s:lock", bullc_job_id(job));
    ph_vcmd("DEL %s", ph_key(h, lock));
    ph_fail(h, job, "Job processing error", 0);
}

/* The failure cannot be stored without the lock: an error event, no failed
 * event, and the worker goes on with the next job. */
/* node: "should catch error from moveToFailed when lock is lost" */
PH_BOTH_MAJORS(parity_cancel, move_to_failed_without_lock) {
    ph *h = ph_new("q");
    if (major == 5)
        freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, h->qname));
    h->proc = lose_lock_then_fail;
    bullc_worker *w = ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    const char *id = ph_add(h, "lose", "{\"foo\":\"bar\"}", "{\"attempts\":1}");
    char want[96];
    snprintf(want, sizeof want, "Missing lock for job %s. moveToFinished", id);
    cr_assert(PH_WAIT(h, 5000, h->n_errors >= 1));
    cr_assert(strstr(ph_wget(h, 'e', 0)->text, want), "%s", ph_wget(h, 'e', 0)->text);
    PH_RUN_FOR(h, 100);
    cr_assert_eq(h->n_failed + h->n_retried, 0, "no failed event");
    cr_assert_str_eq(ph_state(h, id), "active");
    const char *next = ph_add(h, "next", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_completed == 1), "the worker goes on");
    cr_assert_str_eq(ph_state(h, next), "completed");
    ph_end(h);
}

/* ---- complex cancellation patterns -------------------------------------------------------- */

/* A processor holding three real resources: a Redis connection (the
 * "database"), one end of a socket pair (the "cache", whose other end the
 * test keeps) and a temporary file. A cancel releases them one by one, 20 ms
 * apart, then fails the job. */
typedef struct held {
    uv_timer_t t;
    ph *h;
    bullc_job *job;
    redisContext *db;
    int cache_fd, peer_fd, file_fd, step;
    char path[64], log[256], db_name[64];
    bool emergency;
} held;

static void held_log(held *r, const char *what) {
    size_t n = strlen(r->log);
    snprintf(r->log + n, sizeof r->log - n, "%s%s", n ? "," : "", what);
}

static void held_step(uv_timer_t *t) {
    held *r = t->data;
    switch (r->step++) {
    case 0:
        redisFree(r->db);
        r->db = NULL;
        held_log(r, "db-closed");
        break;
    case 1:
        close(r->cache_fd);
        r->cache_fd = -1;
        held_log(r, "cache-cleared");
        break;
    default:
        close(r->file_fd);
        unlink(r->path);
        r->file_fd = -1;
        held_log(r, "file-closed");
        uv_timer_stop(t);
        if (r->db) { /* never: the database went first */
            redisFree(r->db);
            r->db = NULL;
            r->emergency = true;
        }
        ph_fail(r->h, r->job, "Gracefully cancelled", 0);
    }
}

static void held_cancelled(bullc_job *job, const char *reason, void *data) {
    (void)job;
    held *r = data;
    if (!reason) return;
    held_log(r, "cancellation-detected");
    uv_timer_start(&r->t, held_step, 20, 20);
}

static void hold_resources(ph *h, bullc_job *job, int widx) {
    (void)widx;
    held *r = h->user;
    r->h = h;
    r->job = job;
    r->db = tu_redis();
    snprintf(r->db_name, sizeof r->db_name, "held-db-%d", (int)getpid());
    freeReplyObject(redisCommand(r->db, "CLIENT SETNAME %s", r->db_name));
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    r->cache_fd = sv[0], r->peer_fd = sv[1];
    snprintf(r->path, sizeof r->path, "/tmp/bullc-held-XXXXXX");
    r->file_fd = mkstemp(r->path);
    cr_assert_geq(r->file_fd, 0);
    uv_timer_init(&h->loop, &r->t);
    r->t.data = r;
    cr_assert_eq(bullc_job_on_cancel(job, held_cancelled, r), 0);
}

static bool client_named(const char *name) {
    redisReply *r = ph_cmd("CLIENT LIST");
    bool found = strstr(r->str, name) != NULL;
    freeReplyObject(r);
    return found;
}

/* node: "should handle complex async cleanup with multiple resources" */
Test(parity_cancel, cleanup_of_several_resources) {
    held r = {.cache_fd = -1, .peer_fd = -1, .file_fd = -1};
    ph *h = ph_new("q");
    h->user = &r;
    h->proc = hold_resources;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    wait_active(h, id);
    PH_RUN_FOR(h, 50);
    cr_assert(client_named(r.db_name), "the database connection is open");
    cr_assert_eq(access(r.path, F_OK), 0);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, NULL), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert_str_eq(ph_wget(h, 'f', 0)->text, "Gracefully cancelled");
    cr_assert_str_eq(r.log, "cancellation-detected,db-closed,cache-cleared,file-closed");
    cr_assert(!r.emergency);
    cr_assert(!client_named(r.db_name), "the database connection was closed");
    char b;
    cr_assert_eq(recv(r.peer_fd, &b, 1, MSG_DONTWAIT), 0, "the cache's end was closed");
    cr_assert_neq(access(r.path, F_OK), 0, "the file was removed");
    close(r.peer_fd);
    uv_close((uv_handle_t *)&r.t, NULL);
    ph_end(h);
}

/* A cleanup of 200 ms raced against a 100 ms limit: the limit wins and the
 * job fails saying so. */
typedef struct raced {
    uv_timer_t poll, cleanup, limit;
    ph *h;
    bullc_job *job;
    bool attempted, timed_out, cleaned;
    int64_t cancelled_at;
} raced;

static void raced_cleanup_done(uv_timer_t *t) {
    raced *r = t->data;
    r->cleaned = true;
    uv_timer_stop(&r->limit);
    ph_fail(r->h, r->job, "Cancelled after cleanup", 0);
}

static void raced_limit(uv_timer_t *t) {
    raced *r = t->data;
    r->timed_out = true;
    uv_timer_stop(&r->cleanup);
    ph_fail(r->h, r->job, "Cancelled - cleanup timeout", 0);
}

static void raced_poll(uv_timer_t *t) {
    raced *r = t->data;
    if (!bullc_job_is_cancelled(r->job)) return;
    uv_timer_stop(t);
    r->attempted = true;
    r->cancelled_at = tu_now_ms();
    uv_timer_start(&r->cleanup, raced_cleanup_done, 200, 0);
    uv_timer_start(&r->limit, raced_limit, 100, 0);
}

static void race_cleanup(ph *h, bullc_job *job, int widx) {
    (void)widx;
    raced *r = h->user;
    r->h = h;
    r->job = job;
    uv_timer_t *ts[] = {&r->poll, &r->cleanup, &r->limit};
    for (int i = 0; i < 3; i++) {
        uv_timer_init(&h->loop, ts[i]);
        ts[i]->data = r;
    }
    uv_timer_start(&r->poll, raced_poll, 10, 10);
}

/* node: "should handle timeout during async cleanup" */
Test(parity_cancel, cleanup_overruns_its_limit) {
    raced r = {0};
    ph *h = ph_new("q");
    h->user = &r;
    h->proc = race_cleanup;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    wait_active(h, id);
    PH_RUN_FOR(h, 50);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, NULL), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1));
    cr_assert(strstr(ph_wget(h, 'f', 0)->text, "cleanup timeout"), "%s", ph_wget(h, 'f', 0)->text);
    cr_assert(r.attempted && r.timed_out);
    cr_assert_geq(ph_wget(h, 'f', 0)->t - r.cancelled_at, 95, "the limit ran out first");
    PH_RUN_FOR(h, 200);
    cr_assert(!r.cleaned, "the overrunning cleanup was dropped");
    cr_assert_str_eq(failed_reason(h, id), "Cancelled - cleanup timeout");
    uv_close((uv_handle_t *)&r.poll, NULL);
    uv_close((uv_handle_t *)&r.cleanup, NULL);
    uv_close((uv_handle_t *)&r.limit, NULL);
    ph_end(h);
}

/* An HTTP call to a local server that accepts the connection (the kernel's
 * backlog) and never answers: the cancel closes the socket, which ends the
 * call; the server then reads the request and the end of the stream. */
typedef struct api_call {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    ph *h;
    bullc_job *job;
    int port;
    bool started, completed, closed;
} api_call;

static const char api_request[] = "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

static void api_alloc(uv_handle_t *hd, size_t sz, uv_buf_t *b) {
    (void)hd, (void)sz;
    static char buf[256];
    *b = uv_buf_init(buf, sizeof buf);
}

static void api_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
    (void)b;
    api_call *a = s->data;
    if (n > 0) a->completed = true; /* an answer: never sent */
}

static void api_written(uv_write_t *wr, int status) {
    api_call *a = wr->data;
    if (status == 0) a->started = true;
}

static void api_connected(uv_connect_t *c, int status) {
    api_call *a = c->data;
    cr_assert_eq(status, 0, "%s", uv_strerror(status));
    uv_buf_t b = uv_buf_init((char *)api_request, sizeof api_request - 1);
    a->wr.data = a;
    uv_write(&a->wr, (uv_stream_t *)&a->tcp, &b, 1, api_written);
    uv_read_start((uv_stream_t *)&a->tcp, api_alloc, api_read);
}

static void api_closed(uv_handle_t *hd) { ((api_call *)hd->data)->closed = true; }

static void api_abort(bullc_job *job, const char *reason, void *data) {
    (void)job;
    api_call *a = data;
    if (!reason) return;
    uv_close((uv_handle_t *)&a->tcp, api_closed);
    ph_fail(a->h, a->job, "API call aborted", 0);
}

static void call_api(ph *h, bullc_job *job, int widx) {
    (void)widx;
    api_call *a = h->user;
    a->h = h;
    a->job = job;
    uv_tcp_init(&h->loop, &a->tcp);
    a->tcp.data = a->conn.data = a;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", a->port, &sa);
    cr_assert_eq(uv_tcp_connect(&a->conn, &a->tcp, (const struct sockaddr *)&sa, api_connected), 0);
    cr_assert_eq(bullc_job_on_cancel(job, api_abort, a), 0);
}

/* node: "should cancel job that makes external API calls" */
Test(parity_cancel, cancel_interrupts_a_slow_call) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    cr_assert_eq(bind(ls, (struct sockaddr *)&sa, sl), 0);
    cr_assert_eq(listen(ls, 4), 0);
    cr_assert_eq(getsockname(ls, (struct sockaddr *)&sa, &sl), 0);
    api_call a = {.port = ntohs(sa.sin_port)};
    ph *h = ph_new("q");
    h->user = &a;
    h->proc = call_api;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert(PH_WAIT(h, 5000, a.started), "the request was sent");
    PH_RUN_FOR(h, 50);
    cr_assert_eq(bullc_worker_cancel_job(h->w[0], id, NULL), 1);
    cr_assert(PH_WAIT(h, 5000, h->n_failed == 1 && a.closed));
    cr_assert_str_eq(ph_wget(h, 'f', 0)->text, "API call aborted");
    cr_assert(!a.completed);
    int cs = accept(ls, NULL, NULL);
    cr_assert_geq(cs, 0);
    struct timeval tv = {.tv_sec = 2};
    setsockopt(cs, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[256];
    size_t got = 0;
    ssize_t n;
    while ((n = recv(cs, buf + got, sizeof buf - got, 0)) > 0) got += (size_t)n;
    cr_assert_eq(n, 0, "the call's connection was closed");
    cr_assert_eq(got, sizeof api_request - 1, "the request reached the server, which never answered");
    close(cs);
    close(ls);
    ph_end(h);
}

/* ---- runtime concurrency ---------------------------------------------------- */

static void hold(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 300, NULL);
}

static void concurrency_change(int from, int to) {
    ph *h = ph_new("q");
    h->proc = hold;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_concurrency(o, from);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    cr_assert_eq(bullc_worker_concurrency(w), from);
    for (int i = 0; i < 12; i++) ph_add(h, "test", "{}", NULL);
    cr_assert(PH_WAIT(h, 5000, h->in_process == from));
    cr_assert_eq(bullc_worker_set_concurrency(w, 0), BULLC_EINVAL);
    cr_assert_eq(bullc_worker_set_concurrency(w, to), 0);
    cr_assert_eq(bullc_worker_concurrency(w), to);
    int done = h->n_completed;
    h->max_in_process = 0;
    cr_assert(PH_WAIT(h, 5000, h->n_completed > done + from)); /* the jobs held at the change ended */
    h->max_in_process = h->in_process;
    cr_assert(PH_WAIT(h, 20000, h->n_completed == 12));
    cr_assert_eq(h->max_in_process, to, "%d at once after the change", h->max_in_process);
    ph_end(h);
}

/* node: "[when increasing value] should process job respecting the current concurrency set" */
Test(parity_cancel, concurrency_up) { concurrency_change(1, 4); }

/* node: "[when decreasing value] should process job respecting the current concurrency set" */
Test(parity_cancel, concurrency_down) { concurrency_change(4, 2); }
