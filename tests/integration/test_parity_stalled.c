/* SPDX-License-Identifier: MIT */
/* Node BullMQ's stalled_jobs.test.ts cases (and the lock cases of
 * worker.redis.test.ts / lock_manager.test.ts that concern a whole worker):
 * jobs left active by a worker that is closed by force are found by another
 * worker's stalled checker, moved back to wait or failed past
 * maxStalledCount, with removeOnFail applied; renewed locks keep jobs from
 * stalling. */
#include "test_flow_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_stalled, .timeout = 60);

static const char *const STALL_MSG = "job stalled more than allowable limit";

static bullc_job *held[16];
static int nheld;
static void hold_forever(ph *h, bullc_job *job, int widx) {
    (void)h, (void)widx;
    held[nheld++] = job;
}
static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

/* Worker `idx` (already holding `n` jobs) is closed by force; its processors
 * hand the jobs back (dropped), leaving them active with locks that expire. */
static void force_close_holding(ph *h, int idx) {
    ph_close_worker_async(h, idx, true);
    for (int i = 0; i < nheld; i++) ph_complete(h, held[i], NULL);
    nheld = 0;
    cr_assert(PH_WAIT(h, 5000, h->wdone[idx]));
}

/* A worker that takes `n` jobs and never finishes them, then is closed by force. */
static void stall_jobs(ph *h, int n, int max_stalled) {
    ph_proc_fn saved = h->proc;
    h->proc = hold_forever;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_max_stalled_count(o, max_stalled);
    bullc_worker_opts_set_concurrency(o, 4);
    int idx = h->nw;
    int active0 = h->n_active;
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_active - active0 == n), "all %d active", n);
    force_close_holding(h, idx);
    h->proc = saved;
}
static void second_worker(ph *h, int max_stalled) {
    h->proc = noop;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_max_stalled_count(o, max_stalled);
    bullc_worker_opts_set_concurrency(o, 4);
    ph_worker(h, o);
}
static void add4(ph *h, const char *opts, const char *ids[4]) {
    const char *datas[] = {"{\"bar\":\"baz\"}", "{\"bar1\":\"baz1\"}", "{\"bar2\":\"baz2\"}", "{\"bar3\":\"baz3\"}"};
    for (int i = 0; i < 4; i++) {
        const char *id = ph_add(h, "test", datas[i], opts);
        if (ids) ids[i] = id;
    }
}

/* node: "process stalled jobs when starting a queue" */
Test(parity_stalled, stalled_jobs_processed_by_a_new_worker) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *ids[4];
    add4(h, NULL, ids);
    stall_jobs(h, 4, 1);
    second_worker(h, 1);
    cr_assert(PH_WAIT(h, 10000, h->n_stalled == 4));
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "stalled", NULL) == 4));
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    for (int i = 0; i < 4; i++) cr_assert_eq(ph_job_num(h, ids[i], "stalledCounter"), 1);
    ph_end(h);
}

static void delay1000(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 1000, NULL);
}

/* node: "don't process stalled jobs when starting a queue with skipStalledCheck" */
Test(parity_stalled, skip_stalled_check) {
    ph *h = ph_new("q");
    h->proc = delay1000;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_stalled_interval(o, 50);
    bullc_worker_opts_set_skip_stalled_check(o, true);
    bullc_worker_opts_set_concurrency(o, 4);
    ph_worker(h, o);
    add4(h, NULL, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    cr_assert_eq(h->n_stalled, 0);
    ph_end(h);
}

/* The four stalled jobs fail at the second worker as stalled; checks the failures. */
static void assert_stall_failures(ph *h, int n, int64_t started, int64_t made, int64_t stalled) {
    cr_assert(PH_WAIT(h, 10000, h->n_failed == n), "%d failed", h->n_failed);
    for (int i = 0; i < h->nwev; i++) {
        ph_wev *e = &h->wev[i];
        if (e->kind != 'f') continue;
        cr_assert_str_eq(e->text, STALL_MSG);
        cJSON *j = ph_job(h, e->id);
        if (!j) continue; /* removed on failure */
        cr_assert(!isnan(ph_jnum(j, "finishedOn")));
        cr_assert_eq(ph_jnum(j, "attemptsStarted"), started, "job %s", e->id);
        cr_assert_eq(ph_jnum(j, "attemptsMade"), made, "job %s", e->id);
        cr_assert_eq(ph_jnum(j, "stalledCounter"), stalled, "job %s", e->id);
        cJSON_Delete(j);
    }
}
static void assert_global_failures(ph *h) {
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "failed", NULL) >= 1));
    cJSON *e;
    cJSON_ArrayForEach(e, h->qev) {
        if (!strcmp(ph_qe_field(e, "event"), "failed")) cr_assert_str_eq(ph_qe_field(e, "failedReason"), STALL_MSG);
    }
}

/* node: "[when stalled jobs stall more than allowable stalled limit] moves jobs to failed" */
Test(parity_stalled, past_max_stalled_count_fails) {
    ph *h = ph_new("q");
    ph_qe(h);
    add4(h, NULL, NULL);
    stall_jobs(h, 4, 0);
    second_worker(h, 0);
    assert_stall_failures(h, 4, 2, 1, 1);
    assert_global_failures(h);
    ph_end(h);
}

/* node: "[when retrying jobs] keeps stalledCounter" */
Test(parity_stalled, retry_keeps_stalled_counter) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *ids[4];
    add4(h, NULL, ids);
    stall_jobs(h, 4, 0);
    second_worker(h, 0);
    assert_stall_failures(h, 4, 2, 1, 1);
    assert_global_failures(h);
    for (int i = 0; i < 4; i++) cr_assert_eq(bullc_queue_retry_job(h->q, ids[i], NULL, 0, NULL), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    for (int i = 0; i < 4; i++) {
        cJSON *j = ph_job(h, ids[i]);
        cr_assert_eq(ph_jnum(j, "attemptsStarted"), 3);
        cr_assert_eq(ph_jnum(j, "attemptsMade"), 2);
        cr_assert_eq(ph_jnum(j, "stalledCounter"), 1);
        cJSON_Delete(j);
    }
    ph_end(h);
}

static int round_failures;
static void count_failures(ph *h, ph_wev *e) {
    (void)h;
    cr_assert_str_eq(e->text, STALL_MSG);
    cr_assert_eq(e->attempts_started, 4, "attemptsStarted");
    round_failures++;
}

/* node: "[when stalled jobs stall more than allowable stalled limit] moves jobs to failed with maxStalledCount > 1" */
Test(parity_stalled, past_max_stalled_count_2) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *ids[4];
    add4(h, "{\"removeOnFail\":true}", ids);
    /* three workers in turn take the jobs and are closed by force */
    for (int i = 0; i <= 2; i++) stall_jobs(h, 4, 2);
    h->on_failed = count_failures;
    h->proc = hold_forever;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_max_stalled_count(o, 2);
    bullc_worker_opts_set_concurrency(o, 4);
    ph_worker(h, o);
    cr_assert(PH_WAIT(h, 10000, round_failures == 4), "%d failed", round_failures);
    assert_global_failures(h);
    for (int i = 0; i < 4; i++) cr_assert_not(ph_job_exists(h, ids[i]), "removed on failure");
    ph_end(h);
}

/* node: "[when removeOnFail is provided as a number] keeps the specified number of jobs in failed" */
Test(parity_stalled, stalled_failures_keep_count) {
    ph *h = ph_new("q");
    for (int i = 0; i < 4; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"index\":%d}", i);
        ph_add(h, "test", d, "{\"removeOnFail\":3}");
    }
    stall_jobs(h, 4, 0);
    second_worker(h, 0);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 4));
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 'f') cr_assert_str_eq(h->wev[i].text, STALL_MSG);
    cr_assert_eq(ph_count(h, "failed"), 3);
    ph_end(h);
}

/* node: "[when removeOnFail is provided as true] removes all job keys" */
Test(parity_stalled, stalled_failures_removed) {
    ph *h = ph_new("q");
    ph_qe(h);
    const char *ids[4];
    add4(h, "{\"removeOnFail\":true}", ids);
    stall_jobs(h, 4, 0);
    second_worker(h, 0);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 4));
    for (int i = 0; i < h->nwev; i++) {
        if (h->wev[i].kind != 'f') continue;
        cr_assert_str_eq(h->wev[i].text, STALL_MSG);
        cr_assert_eq(h->wev[i].attempts_started, 2);
    }
    assert_global_failures(h);
    for (int i = 0; i < 4; i++) cr_assert_not(ph_job_exists(h, ids[i]));
    ph_end(h);
}

/* node: "[when removeOnFail is provided as boolean] keeps the jobs with removeOnFail as false in failed" */
Test(parity_stalled, stalled_failures_removed_only_when_asked) {
    ph *h = ph_new("q");
    for (int i = 0; i < 4; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"index\":%d}", i);
        ph_add(h, "test", d, i % 2 == 1 ? "{\"removeOnFail\":true}" : "{\"removeOnFail\":false}");
    }
    stall_jobs(h, 4, 0);
    second_worker(h, 0);
    assert_stall_failures(h, 4, 2, 1, 1);
    cr_assert_eq(ph_count(h, "failed"), 2);
    ph_end(h);
}

static void fail_two_hold_two(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (strstr(bullc_job_data(job), "\"index\":0") || strstr(bullc_job_data(job), "\"index\":1"))
        ph_fail(h, job, "fail", 0);
    else
        hold_forever(h, job, widx);
}

/* node: "[when removeOnFail is provided as a object] keeps the specified number of jobs in failed respecting the age"
 */
Test(parity_stalled, stalled_failures_keep_by_age) {
    ph *h = ph_new("q");
    for (int i = 0; i < 4; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"index\":%d}", i);
        ph_add(h, "test", d, "{\"removeOnFail\":{\"count\":4,\"age\":1}}");
    }
    h->proc = fail_two_hold_two;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_max_stalled_count(o, 0);
    bullc_worker_opts_set_concurrency(o, 4);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 5000, h->n_active == 4 && h->n_failed == 2));
    force_close_holding(h, 0);
    second_worker(h, 0);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 4));
    int stalled_failures = 0;
    char ids[2][64];
    for (int i = 0; i < h->nwev; i++) {
        if (h->wev[i].kind != 'f' || h->wev[i].widx != 1) continue;
        cr_assert_str_eq(h->wev[i].text, STALL_MSG);
        snprintf(ids[stalled_failures++], 64, "%s", h->wev[i].id);
    }
    cr_assert_eq(stalled_failures, 2);
    cr_assert_eq(ph_count(h, "failed"), 2, "the two older failures are past the age");
    bool three = !strcmp(ids[0], "3") || !strcmp(ids[1], "3"), four = !strcmp(ids[0], "4") || !strcmp(ids[1], "4");
    cr_assert(three && four, "jobs 3 and 4 failed as stalled");
    ph_end(h);
}

static void delay4000(ph *h, bullc_job *job, int widx) {
    (void)widx;
    held[nheld++] = job; /* handed back when the worker is closed */
    (void)h;
}

/* node: "jobs not stalled while lock is extended" */
Test(parity_stalled, renewed_locks_do_not_stall) {
    ph *h = ph_new("q");
    h->proc = delay4000;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_lock_duration(o, 100);
    bullc_worker_opts_set_stalled_interval(o, 50);
    bullc_worker_opts_set_concurrency(o, 4);
    ph_worker(h, o);
    for (int i = 0; i < 4; i++) {
        char d[24];
        snprintf(d, sizeof d, "{\"bar\":\"baz-%d\"}", i);
        ph_add(h, "test", d, NULL);
    }
    cr_assert(PH_WAIT(h, 5000, h->n_active == 4));
    h->proc = noop;
    bullc_worker_opts *o2 = ph_wopts(h);
    bullc_worker_opts_set_stalled_interval(o2, 50);
    bullc_worker_opts_set_concurrency(o2, 4);
    ph_worker(h, o2);
    PH_RUN_FOR(h, 500);
    cr_assert_eq(ph_count(h, "active"), 4);
    cr_assert_eq(h->n_stalled, 0, "renewed locks keep the jobs from stalling");
    force_close_holding(h, 0);
    cr_assert(PH_WAIT(h, 5000, h->n_stalled == 4));
    ph_end(h);
}

/* ---- a flow's child among the stalled jobs: its parent's on-failure option ------- */

/* Writes queue `queue`'s meta as a Node 5.81.5 Queue does, so that every
 * handle of the case (auto) speaks 5.x to it. */
static void node5_meta(ph *h, const char *queue) {
    freeReplyObject(ph_cmd("HSET %s:%s:meta opts.maxLenEvents 10000 version bullmq:5.81.5", h->prefix, queue));
}

static int failed_on(ph *h, int widx) {
    int n = 0;
    for (int i = 0; i < h->nwev; i++) n += h->wev[i].kind == 'f' && h->wev[i].widx == widx;
    return n;
}

/* A one-child flow (parent on "parents", child on "q" with `child_opts`) and
 * three plain jobs, all four stalled past maxStalledCount 0 and failed by a
 * second worker speaking `major`; with `parent_worker`, worker 0 serves
 * "parents". Returns the ph and the created tree. */
static ph *stall_flow_child(int major, const char *child_opts, bool parent_worker, cJSON **tree) {
    ph *h = ph_new("q");
    if (major == 5) node5_meta(h, "q"), node5_meta(h, "parents");
    h->proc = noop;
    if (parent_worker) worker_on(h, "parents");
    char flow[512];
    snprintf(flow, sizeof flow,
             "{\"name\":\"parent-job\",\"queueName\":\"parents\",\"data\":{},\"children\":[{\"name\":\"test\","
             "\"data\":{\"foo\":\"bar\"},\"queueName\":\"q\",\"opts\":%s}]}",
             child_opts);
    *tree = add_flow(h, flow);
    for (int i = 0; i < 3; i++) {
        char d[16];
        snprintf(d, sizeof d, "{\"index\":%d}", i);
        ph_add(h, "test", d, NULL);
    }
    stall_jobs(h, 4, 0);
    second_worker(h, 0);
    cr_assert(PH_WAIT(h, 10000, failed_on(h, h->nw - 1) == 4), "%d failed", failed_on(h, h->nw - 1));
    cr_assert_eq(bullc_worker_bullmq_version(h->w[h->nw - 1]), major);
    for (int i = 0; i < h->nwev; i++) {
        if (h->wev[i].kind != 'f' || h->wev[i].widx != h->nw - 1) continue;
        cr_assert_str_eq(h->wev[i].text, STALL_MSG);
    }
    return h;
}

/* Each case runs speaking BullMQ 6 (the marked test) and 5 (its twin). */
#define BOTH_MAJORS(name)                             \
    static void name(int major);                      \
    Test(parity_stalled, name) { name(6); }           \
    Test(parity_stalled, name##_bullmq5) { name(5); } \
    static void name(int major)

static void assert_parent(ph *h, const cJSON *tree, const char *state, const char *reason) {
    bullc_queue *pq = tu_queue("parents", h->prefix);
    cr_assert(PH_WAIT(h, 10000, !strcmp(state_of(pq, nid(tree, "")), state)), "parent %s, not %s",
              state_of(pq, nid(tree, "")), state);
    if (reason) {
        cJSON *j = ph_job_in(pq, nid(tree, ""));
        cr_assert_str_eq(cJSON_GetObjectItem(j, "failedReason")->valuestring, reason);
        cJSON_Delete(j);
    }
    bullc_queue_free(pq);
}

/* Failed events of worker `widx` with `reason`. */
static int worker_failures(const ph *h, int widx, const char *reason) {
    int n = 0;
    for (int i = 0; i < h->nwev; i++)
        if (h->wev[i].kind == 'f' && h->wev[i].widx == widx && !strcmp(h->wev[i].text, reason)) n++;
    return n;
}

/* node: "[when failParentOnFailure is provided as true] should move parent to failed when child is moved to failed" */
BOTH_MAJORS(stalled_child_fails_parent) {
    cJSON *tree;
    ph *h = stall_flow_child(major, "{\"failParentOnFailure\":true}", true, &tree);
    char reason[256];
    snprintf(reason, sizeof reason, "child %s failed", job_key(h, "q", nid(tree, "0")));
    assert_parent(h, tree, "failed", reason);
    /* both majors release the parent to wait with a deferred failure: the
     * worker taking it fails it without running its processor (its event
     * may come a moment after Redis shows the parent failed) */
    cr_assert(PH_WAIT(h, 5000, worker_failures(h, 0, reason) >= 1));
    cr_assert_eq(worker_failures(h, 0, reason), 1);
    cJSON_Delete(tree);
    ph_end(h);
}

/* node: "[when continueParentOnFailure is provided as true] should start processing parent when child is moved to failed" */
BOTH_MAJORS(stalled_child_continues_parent) {
    cJSON *tree;
    ph *h = stall_flow_child(major, "{\"continueParentOnFailure\":true}", false, &tree);
    assert_parent(h, tree, "waiting", NULL);
    cJSON_Delete(tree);
    ph_end(h);
}

/* node: "[when ignoreDependencyOnFailure is provided as true] should move parent to waiting when child is moved to failed and save child failedReason" */
BOTH_MAJORS(stalled_child_ignored_by_parent) {
    cJSON *tree;
    ph *h = stall_flow_child(major, "{\"ignoreDependencyOnFailure\":true}", false, &tree);
    assert_parent(h, tree, "waiting", NULL);
    bullc_queue *pq = tu_queue("parents", h->prefix);
    char *ignored = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_ignored_children_failures(pq, nid(tree, ""), &ignored, &err), 0, "%s", err.message);
    char want[256];
    snprintf(want, sizeof want, "{\"%s\":\"%s\"}", job_key(h, "q", nid(tree, "0")), STALL_MSG);
    cr_assert_str_eq(ignored, want);
    bullc_free(ignored);
    bullc_queue_free(pq);
    cJSON_Delete(tree);
    ph_end(h);
}

/* node: "[when removeDependencyOnFailure is provided as true] should move parent to waiting when child is moved to failed" */
BOTH_MAJORS(stalled_child_removed_from_parent) {
    cJSON *tree;
    ph *h = stall_flow_child(major, "{\"removeDependencyOnFailure\":true}", false, &tree);
    assert_parent(h, tree, "waiting", NULL);
    int64_t counts[4];
    bullc_queue *pq = tu_queue("parents", h->prefix);
    cr_assert_eq(bullc_queue_get_dependencies_count(pq, nid(tree, ""), counts, NULL), 0);
    cr_assert(counts[0] == 0 && counts[1] == 0 && counts[2] == 0 && counts[3] == 0, "the dependency is gone");
    bullc_queue_free(pq);
    cJSON_Delete(tree);
    ph_end(h);
}

/* ---- a stalled job taken by hand past maxStalledCount --------------------------------- */

static int checks_answered;
static void check_answered(bullc_worker *w, int code, int stalled, void *data) {
    (void)w, (void)stalled, (void)data;
    cr_assert_eq(code, 0);
    checks_answered++;
}

/* Node's markJobForDeferredFailure: the lock of `job` is deleted and two
 * stalled checks run (the first marks it, the second finds it). */
static void mark_for_deferred_failure(ph *h, bullc_worker *w, const char *id) {
    char lock[96];
    snprintf(lock, sizeof lock, "%s:lock", id);
    ph_vcmd("DEL %s", ph_key(h, lock));
    for (int i = 0; i < 2; i++) {
        ph_vcmd("DEL %s", ph_key(h, "stalled-check"));
        int before = checks_answered;
        cr_assert_eq(bullc_worker_check_stalled(w, check_answered, NULL), 0);
        cr_assert(PH_WAIT(h, 5000, checks_answered == before + 1));
    }
    cr_assert_eq(h->n_stalled, 1);
    cr_assert_str_eq(ph_wget(h, 's', 0)->id, id);
}

/* A manual worker (no processor, no autorun) with maxStalledCount 0. */
static bullc_worker *manual_worker(ph *h) {
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker_opts_set_lock_duration(o, 1000);
    bullc_worker_opts_set_stalled_interval(o, 100);
    bullc_worker_opts_set_max_stalled_count(o, 0);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    return w;
}

/* Takes the deferred-failure job `id` again and fails it as Node's test does. */
static void fail_deferred(ph *h, bullc_worker *w, const char *id) {
    bullc_job *again = ph_next_job_or_null(h, w, "my-token");
    cr_assert_not_null(again);
    cr_assert_str_eq(bullc_job_id(again), id);
    cr_assert_str_eq(bullc_job_deferred_failure(again), STALL_MSG);
    cr_assert_eq(bullc_job_fail(again, bullc_job_deferred_failure(again), BULLC_FAIL_UNRECOVERABLE), 0);
    cr_assert(PH_WAIT(h, 5000, ph_count(h, "failed") == 1));
}

/* Node's setup: a job named `name` taken by hand and found stalled past
 * maxStalledCount 0; its id in `id`. */
static bullc_worker *stalled_by_hand(ph *h, int major, const char *name, char id[64]) {
    if (major == 5) node5_meta(h, h->qname);
    snprintf(id, 64, "%s", ph_add(h, name, "{\"foo\":\"bar\"}", NULL));
    bullc_worker *w = manual_worker(h);
    bullc_job *first = ph_next_job(h, w, "my-token");
    cr_assert_null(bullc_job_deferred_failure(first));
    mark_for_deferred_failure(h, w, id);
    cr_assert_eq(bullc_worker_bullmq_version(w), major);
    /* the job is back in wait, still held by this process's handle: hand
       that one back without storing anything */
    cr_assert_eq(bullc_job_fail(first, NULL, BULLC_FAIL_MOVED), 0);
    return w;
}

static void deferred_then_nothing(int major) {
    ph *h = ph_new("q");
    char id[64];
    bullc_worker *w = stalled_by_hand(h, major, "test", id);
    fail_deferred(h, w, id);
    cr_assert_null(ph_next_job_or_null(h, w, "my-token"));
    cr_assert_eq(ph_count(h, "failed"), 1);
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "active"), 0);
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "failedReason", "\"job stalled more than allowable limit\"");
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "[when a stalled job has exhausted its max stalled attempts] should move the job to failed automatically on the next getNextJob call and return undefined when no other jobs are waiting" */
Test(parity_stalled, manual_deferred_failure_then_nothing) {
    deferred_then_nothing(6);
    deferred_then_nothing(5);
}

static void deferred_then_next(int major) {
    ph *h = ph_new("q");
    char id[64];
    bullc_worker *w = stalled_by_hand(h, major, "stalled-job", id);
    char second[64];
    snprintf(second, sizeof second, "%s", ph_add(h, "runnable-job", "{\"foo\":\"baz\"}", NULL));
    fail_deferred(h, w, id);
    bullc_job *next = ph_next_job_or_null(h, w, "my-token");
    cr_assert_not_null(next);
    cr_assert_str_eq(bullc_job_id(next), second);
    cr_assert_eq(ph_count(h, "failed"), 1);
    cr_assert_eq(ph_count(h, "waiting"), 0);
    cr_assert_eq(ph_count(h, "active"), 1);
    cr_assert_eq(bullc_job_complete(next, "\"done\""), 0);
    cr_assert(PH_WAIT(h, 5000, ph_count(h, "completed") == 1));
    ph_end(h);
}

/* node: "[when a stalled job has exhausted its max stalled attempts] should fail the deferred-failure job and return the next waiting job" */
Test(parity_stalled, manual_deferred_failure_then_next) {
    deferred_then_next(6);
    deferred_then_next(5);
}
