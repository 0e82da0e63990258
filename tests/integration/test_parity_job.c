/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job.test.ts / job.redis.test.ts cases for the methods that
 * act on one job: updateData, remove, progress, logs, moveToFailed /
 * moveToWait on a manually fetched job, changeDelay, changePriority, promote,
 * getState. Node's `job.method()` is bullc's `bullc_queue_*_job*(queue, id)`
 * (same scripts, by id); a job taken with a token is a manual worker's job. */
#include "test_parity_util.h"

#include <math.h>
#include <unistd.h>

TestSuite(parity_job, .timeout = 60);

static void missing_key_message(bullc_error *err, const char *id, const char *script) {
    char want[128];
    snprintf(want, sizeof want, "Missing key for job %s. %s", id, script);
    cr_assert(strstr(err->message, want), "expected \"%s\" in \"%s\"", want, err->message);
}

/* ---- updateData / remove ------------------------------------------------------- */

/* node: "[.update] should allow updating job data" */
Test(parity_job, update_data) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_update_job_data(h->q, id, "{\"baz\":\"qux\"}", &err), 0, "%s", err.message);
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "data", "{\"baz\":\"qux\"}");
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "[.update > when job is removed] throws error" */
Test(parity_job, update_data_of_a_removed_job) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_update_job_data(h->q, id, "{\"foo\":\"baz\"}", &err), BULLC_ENOTFOUND);
    missing_key_message(&err, id, "updateData");
    ph_end(h);
}

/* node: "[.progressProgress > when job is removed] throws error" */
Test(parity_job, update_progress_of_a_removed_job) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_update_job_progress(h->q, id, "{\"total\":120,\"completed\":40}", &err), BULLC_ENOTFOUND);
    missing_key_message(&err, id, "updateProgress");
    ph_end(h);
}

/* node: "[.log > when job is removed] throws error" */
Test(parity_job, log_to_a_removed_job) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_add_job_log(h->q, id, "oneLog", 0, NULL, &err), BULLC_ENOTFOUND);
    missing_key_message(&err, id, "addLog");
    ph_end(h);
}

/* node: "[.remove] removes the job from redis" */
Test(parity_job, remove) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0, "%s", err.message);
    cr_assert_not(ph_job_exists(h, id));
    ph_end(h);
}

/* node: "[.remove] removes 4000 jobs in time range of 4000ms" */
Test(parity_job, remove_4000_jobs_in_time) {
    ph *h = ph_new("q");
    enum { N = 4000 };
    static bullc_bulk_job waiting[N / 2], delayed[N / 2];
    static char data[N][32];
    static bullc_job_opts *opts[N / 2];
    for (int i = 0; i < N / 2; i++) {
        snprintf(data[i], sizeof data[i], "{\"order\":%d}", N - i);
        waiting[i] = (bullc_bulk_job){.name = "test", .data_json = data[i]};
        bullc_job_opts_new(&opts[i]);
        bullc_job_opts_set_delay(opts[i], 500 + (int64_t)(N - i) * 150);
        delayed[i] = (bullc_bulk_job){.name = "test", .data_json = data[i], .opts = opts[i]};
    }
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add_bulk(h->q, waiting, N / 2, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_add_bulk(h->q, delayed, N / 2, &err), 0, "%s", err.message);
    int64_t t0 = tu_now_ms();
    for (int i = 0; i < N / 2; i++)
        cr_assert_eq(bullc_queue_remove_job(h->q, delayed[i].id, true, &err), 0, "%s", err.message);
    for (int i = 0; i < N / 2; i++)
        cr_assert_eq(bullc_queue_remove_job(h->q, waiting[i].id, true, &err), 0, "%s", err.message);
    cr_assert_lt(tu_now_ms() - t0, 4000);
    cr_assert_eq(ph_count(h, "waiting") + ph_count(h, "delayed"), 0);
    for (int i = 0; i < N / 2; i++) {
        bullc_free(waiting[i].id), bullc_free(delayed[i].id);
        bullc_job_opts_free(opts[i]);
    }
    ph_end(h);
}

/* ---- progress ------------------------------------------------------------------- */

static void progress_roundtrip(const char *value) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_update_job_progress(h->q, id, value, &err), 0, "%s", err.message);
    cJSON *j = ph_job(h, id);
    cJSON *want = cJSON_Parse(value);
    cr_assert(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(j, "progress"), want, true), "progress");
    cJSON_Delete(want);
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "can set and get progress as number" */
Test(parity_job, progress_number) { progress_roundtrip("42"); }

/* node: "can set and get progress as object" */
Test(parity_job, progress_object) { progress_roundtrip("{\"total\":120,\"completed\":40}"); }

/* node: "can set and get progress as string" */
Test(parity_job, progress_string) { progress_roundtrip("\"hello, world!\""); }

/* node: "can set and get progress as boolean" */
Test(parity_job, progress_boolean) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_update_job_progress(h->q, id, "false", &err), 0, "%s", err.message);
    cJSON *j = ph_job(h, id);
    ph_assert_json(j, "progress", "false");
    cJSON_Delete(j);
    cr_assert_eq(bullc_queue_update_job_progress(h->q, id, "true", &err), 0, "%s", err.message);
    j = ph_job(h, id);
    ph_assert_json(j, "progress", "true");
    cJSON_Delete(j);
    ph_end(h);
}

/* node: "can set progress as number using the Queue instance" */
Test(parity_job, queue_progress_number_with_event) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_update_job_progress(h->q, id, "42", &err), 0, "%s", err.message);
    /* the progress event, as Queue's 'progress' listeners get it */
    char *evs = NULL;
    cr_assert_eq(bullc_queue_get_events(h->q, NULL, 0, &evs, &err), 0, "%s", err.message);
    cJSON *a = cJSON_Parse(evs);
    bullc_free(evs);
    int found = 0;
    cJSON *e;
    cJSON_ArrayForEach(e, a) {
        if (strcmp(ph_qe_field(e, "event"), "progress")) continue;
        found++;
        cr_assert_str_eq(ph_qe_field(e, "jobId"), id);
        cr_assert_str_eq(ph_qe_field(e, "data"), "42");
    }
    cJSON_Delete(a);
    cr_assert_eq(found, 1);
    cr_assert_eq(ph_job_num(h, id, "progress"), 42);
    ph_end(h);
}

/* node: "can set progress as object using the Queue instance" */
Test(parity_job, queue_progress_object) { progress_roundtrip("{\"total\":120,\"completed\":40}"); }

/* ---- logs ----------------------------------------------------------------------- */

static char *logs_of(ph *h, const char *id, int64_t start, int64_t end, bool asc) {
    char *s = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_get_job_logs(h->q, id, start, end, asc, &s, &err), 0, "%s", err.message);
    cJSON *j = cJSON_Parse(s);
    bullc_free(s);
    char *out = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return out;
}
#define assert_logs(h, id, start, end, asc, expected) \
    do {                                              \
        char *l_ = logs_of(h, id, start, end, asc);   \
        cr_assert_str_eq(l_, expected);               \
        free(l_);                                     \
    } while (0)

static void two_logs_case(bool asc) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_add_job_log(h->q, id, "some log text 1", 0, NULL, &err), 0);
    cr_assert_eq(bullc_queue_add_job_log(h->q, id, "some log text 2", 0, NULL, &err), 0);
    if (asc) {
        assert_logs(h, id, 0, -1, true, "{\"logs\":[\"some log text 1\",\"some log text 2\"],\"count\":2}");
        assert_logs(h, id, 0, 0, true, "{\"logs\":[\"some log text 1\"],\"count\":2}");
        assert_logs(h, id, 1, 1, true, "{\"logs\":[\"some log text 2\"],\"count\":2}");
    } else {
        assert_logs(h, id, 0, -1, false, "{\"logs\":[\"some log text 2\",\"some log text 1\"],\"count\":2}");
        assert_logs(h, id, 0, 0, false, "{\"logs\":[\"some log text 2\"],\"count\":2}");
        assert_logs(h, id, 1, 1, false, "{\"logs\":[\"some log text 1\"],\"count\":2}");
    }
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[],\"count\":0}");
    ph_end(h);
}

/* node: "can log two rows with text in asc order" */
Test(parity_job, logs_asc) { two_logs_case(true); }

/* node: "can log two rows with text in desc order" */
Test(parity_job, logs_desc) { two_logs_case(false); }

/* node: "should preserve up to keepLogs latest entries" */
Test(parity_job, keep_logs) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"keepLogs\":2}");
    cJSON *j = ph_job(h, id);
    int keep = (int)ph_jnum(cJSON_GetObjectItemCaseSensitive(j, "opts"), "keepLogs");
    cJSON_Delete(j);
    cr_assert_eq(keep, 2);
    bullc_error err = {0};
    int64_t n = 0;
    cr_assert_eq(bullc_queue_add_job_log(h->q, id, "some log text 1", keep, &n, &err), 0);
    cr_assert_eq(n, 1);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[\"some log text 1\"],\"count\":1}");
    cr_assert_eq(bullc_queue_add_job_log(h->q, id, "some log text 2", keep, &n, &err), 0);
    cr_assert_eq(n, 2);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[\"some log text 1\",\"some log text 2\"],\"count\":2}");
    cr_assert_eq(bullc_queue_add_job_log(h->q, id, "some log text 3", keep, &n, &err), 0);
    cr_assert_eq(n, 2);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[\"some log text 2\",\"some log text 3\"],\"count\":2}");
    ph_end(h);
}

/* A job with `n` log lines "some log text 1".. added through the queue. */
static const char *job_with_logs(ph *h, int n) {
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    for (int i = 1; i <= n; i++) {
        char line[32];
        snprintf(line, sizeof line, "some log text %d", i);
        cr_assert_eq(bullc_queue_add_job_log(h->q, id, line, 0, NULL, &err), 0, "%s", err.message);
    }
    return id;
}

/* node: "should allow to add job logs from Queue instance" */
Test(parity_job, queue_add_job_log) {
    ph *h = ph_new("q");
    const char *id = job_with_logs(h, 2);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[\"some log text 1\",\"some log text 2\"],\"count\":2}");
    ph_end(h);
}

static void clear_logs(ph *h, const char *id, int64_t keep) {
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_clear_job_logs(h->q, id, keep, &err), 0, "%s", err.message);
}

/* node: "[.clearLogs] can clear the log" */
Test(parity_job, clear_logs) {
    ph *h = ph_new("q");
    const char *id = job_with_logs(h, 2);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[\"some log text 1\",\"some log text 2\"],\"count\":2}");
    clear_logs(h, id, 0);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[],\"count\":0}");
    cJSON *j = ph_job(h, id);
    cr_assert_not_null(j, "the job itself stays");
    cJSON_Delete(j);
    /* Node's clearLogs is no script: a job without logs, or none, is no error */
    clear_logs(h, id, 0);
    clear_logs(h, "no-such-job", 2);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_clear_job_logs(h->q, id, -1, &err), BULLC_EINVAL);
    ph_end(h);
}

/* node: "[.clearLogs] can preserve up to keepLogs latest entries" */
Test(parity_job, clear_logs_keeping_the_last) {
    ph *h = ph_new("q");
    const char *id = job_with_logs(h, 3);
    const char *all = "{\"logs\":[\"some log text 1\",\"some log text 2\",\"some log text 3\"],\"count\":3}";
    assert_logs(h, id, 0, -1, true, all);
    clear_logs(h, id, 4);
    assert_logs(h, id, 0, -1, true, all);
    clear_logs(h, id, 3);
    assert_logs(h, id, 0, -1, true, all);
    clear_logs(h, id, 2);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[\"some log text 2\",\"some log text 3\"],\"count\":2}");
    clear_logs(h, id, 0);
    assert_logs(h, id, 0, -1, true, "{\"logs\":[],\"count\":0}");
    ph_end(h);
}

/* ---- a job taken with a token: moveToFailed / moveToWait / moveToCompleted ----------- */

static bullc_job *next_job(ph *h, bullc_worker *w) { return ph_next_job_or_null(h, w, "my-token"); }
static bullc_worker *manual_worker(ph *h) {
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker_ex(h, o, true);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    return w;
}
/* The job's stacktrace as stored (cJSON array, delete it). */
static cJSON *stacktrace(ph *h, const char *id) {
    cJSON *j = ph_job(h, id);
    cJSON *st = cJSON_DetachItemFromObjectCaseSensitive(j, "stacktrace");
    cJSON_Delete(j);
    cr_assert(cJSON_IsArray(st));
    return st;
}
/* Fails a manual job and waits until the failure is stored. */
static void fail_and_wait(ph *h, bullc_job *job, const char *msg, const char *state) {
    char id[64];
    snprintf(id, sizeof id, "%s", bullc_job_id(job));
    cr_assert_eq(bullc_job_fail(job, msg, 0), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, id), state)), "job %s: %s, expected %s", id, ph_state(h, id), state);
}

/* node: "marks the job as failed" */
Test(parity_job, move_to_failed) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_job *job = next_job(h, w);
    cr_assert_str_neq(ph_state(h, id), "failed");
    fail_and_wait(h, job, "test error", "failed");
    cJSON *st = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st), 1);
    cr_assert(strstr(cJSON_GetArrayItem(st, 0)->valuestring, "test error"));
    cJSON_Delete(st);
    ph_end(h);
}

/* node: "moves the job to wait for retry if attempts are given" */
Test(parity_job, move_to_failed_with_attempts_goes_to_wait) {
    ph *h = ph_new("q");
    ph_qe(h);
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3}");
    bullc_job *job = next_job(h, w);
    int waiting_before = ph_qe_count(h, "waiting", id);
    cr_assert_eq(bullc_job_fail(job, "test error", 0), 0);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "waiting", id) > waiting_before), "a waiting event");
    cr_assert_str_eq(ph_state(h, id), "waiting");
    cJSON *st = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st), 1);
    cJSON_Delete(st);
    ph_end(h);
}

/* node: "[when attempts made equal to attempts given] marks the job as failed" */
Test(parity_job, move_to_failed_last_attempt) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":1}");
    bullc_job *job = next_job(h, w);
    fail_and_wait(h, job, "test error", "failed");
    cJSON *st = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st), 1);
    cJSON_Delete(st);
    ph_end(h);
}

/* node: "[when attempts are given and backoff is non zero] moves the job to delayed for retry" */
Test(parity_job, move_to_failed_with_backoff_goes_to_delayed) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3,\"backoff\":300}");
    bullc_job *job = next_job(h, w);
    fail_and_wait(h, job, "test error", "delayed");
    cJSON *st = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st), 1);
    cJSON_Delete(st);
    ph_end(h);
}

/* node: "applies stacktrace limit on failure" */
Test(parity_job, stacktrace_limit) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"stackTraceLimit\":1,\"attempts\":2}");
    bullc_job *job = next_job(h, w);
    fail_and_wait(h, job, "failed once", "waiting");
    cJSON *st1 = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st1), 1);
    bullc_job *again = next_job(h, w);
    cr_assert_not_null(again);
    cr_assert_str_eq(bullc_job_name(again), "test");
    fail_and_wait(h, again, "failed twice", "failed");
    cJSON *st2 = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st2), 1);
    cr_assert_str_neq(cJSON_GetArrayItem(st1, 0)->valuestring, cJSON_GetArrayItem(st2, 0)->valuestring);
    cJSON_Delete(st1), cJSON_Delete(st2);
    ph_end(h);
}

/* node: "[when stackTraceLimit is provided as 0] keep stacktrace empty" */
Test(parity_job, stacktrace_limit_zero) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"stackTraceLimit\":0,\"attempts\":2}");
    bullc_job *job = next_job(h, w);
    fail_and_wait(h, job, "failed once", "waiting");
    cJSON *st = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st), 0);
    cJSON_Delete(st);
    bullc_job *again = next_job(h, w);
    cr_assert_not_null(again);
    fail_and_wait(h, again, "failed twice", "failed");
    st = stacktrace(h, id);
    cr_assert_eq(cJSON_GetArraySize(st), 0);
    cJSON_Delete(st);
    ph_end(h);
}

/* node: "saves error stacktrace" */
Test(parity_job, saves_stacktrace) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_job *job = next_job(h, w);
    fail_and_wait(h, job, "test error", "failed");
    cJSON *st = stacktrace(h, id);
    cr_assert_gt(cJSON_GetArraySize(st), 0);
    cJSON_Delete(st);
    ph_end(h);
}

/* node: "[.moveToWait] moves job to wait from active" */
Test(parity_job, move_to_wait_from_active) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_job *job = next_job(h, w);
    cr_assert_str_eq(ph_state(h, id), "active");
    /* bullc moves a job from active back to wait with moveJobFromActiveToWait (Node's
     * job.moveToWait) when it is failed as rate-limited */
    cr_assert_eq(bullc_job_fail(job, "bullmq:rateLimitExceeded", BULLC_FAIL_RATE_LIMITED), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, id), "waiting")));
    ph_end(h);
}

/* node: "[.moveToCompleted] should not fail if queue meta key is missing" */
Test(parity_job, complete_without_meta_key) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "test", "{\"color\":\"red\"}", NULL);
    bullc_job *job = next_job(h, w);
    ph_vcmd("DEL %s", ph_key(h, "meta"));
    cr_assert_eq(bullc_job_complete(job, "\"done\""), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, id), "completed")));
    cr_assert_eq(h->n_errors, 0);
    ph_end(h);
}

/* node: "[.getState] should get job actual state" */
Test(parity_job, get_state_through_the_lifecycle) {
    ph *h = ph_new("q");
    bullc_worker *w = manual_worker(h);
    const char *id = ph_add(h, "job1", "{\"foo\":\"bar\"}", "{\"delay\":1000}");
    cr_assert_str_eq(ph_state(h, id), "delayed");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_queue_resume(h->q, &err), 0);
    cr_assert_str_eq(ph_state(h, id), "waiting");
    bullc_job *job1 = next_job(h, w);
    cr_assert_not_null(job1);
    fail_and_wait(h, job1, "test error", "failed");
    const char *id2 = ph_add(h, "job2", "{\"foo\":\"foo\"}", NULL);
    bullc_job *job2 = next_job(h, w);
    cr_assert_not_null(job2);
    cr_assert_eq(bullc_job_complete(job2, "\"succeeded\""), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, id2), "completed")));
    cr_assert_str_eq(ph_state(h, id), "failed");
    ph_end(h);
}

/* ---- changeDelay ------------------------------------------------------------------- */

static void noop(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

/* node: "[.changeDelay] can change delay of a delayed job" */
Test(parity_job, change_delay) {
    ph *h = ph_new("q");
    h->proc = noop;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    int64_t t0 = tu_now_ms();
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"delay\":8000}");
    cr_assert_str_eq(ph_state(h, id), "delayed");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_change_job_delay(h->q, id, 2000, &err), 0, "%s", err.message);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    cr_assert_eq(ph_job_num(h, id, "delay"), 2000);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1));
    cr_assert_geq(tu_now_ms() - t0, 2000);
    cr_assert_lt(tu_now_ms() - t0, 7000, "not after the original delay");
    ph_end(h);
}

/* node: "[.changeDelay] should not change delay if a job is not delayed" */
Test(parity_job, change_delay_of_a_job_not_delayed) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    cr_assert_str_neq(ph_state(h, id), "delayed");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_change_job_delay(h->q, id, 2000, &err), BULLC_ESTATE);
    char want[96];
    snprintf(want, sizeof want, "Job %s is not in the delayed state. changeDelay", id);
    cr_assert(strstr(err.message, want), "%s", err.message);
    ph_end(h);
}

/* ---- changePriority ------------------------------------------------------------------ */

static void delay20(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 20, NULL);
}

/* Starts a worker, resumes the queue and returns the name of the job completed second. */
static const char *second_completed(ph *h) {
    h->proc = delay20;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_resume(h->q, &err), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    return ph_wget(h, 'c', 1)->name;
}

/* node: "[when lifo option is provided as true] moves job to the head of wait list" */
Test(parity_job, change_priority_lifo_head_of_wait) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    ph_add(h, "test1", "{\"foo\":\"bar\"}", NULL);
    const char *id = ph_add(h, "test2", "{\"foo\":\"bar\"}", "{\"priority\":16}");
    cr_assert_eq(ph_job_num(h, id, "priority"), 16);
    cr_assert_eq(bullc_queue_change_job_priority(h->q, id, 0, true, &err), 0, "%s", err.message);
    cr_assert_eq(ph_job_num(h, id, "priority"), 0);
    cr_assert_str_eq(second_completed(h), "test1");
    ph_end(h);
}

/* node: "[when lifo option is provided as false] moves job to the tail of wait list and has more priority" */
Test(parity_job, change_priority_to_zero_fifo) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    const char *id = ph_add(h, "test1", "{\"foo\":\"bar\"}", "{\"priority\":8}");
    ph_add(h, "test2", "{\"foo\":\"bar\"}", NULL);
    cr_assert_eq(bullc_queue_change_job_priority(h->q, id, 0, false, &err), 0, "%s", err.message);
    cr_assert_str_eq(second_completed(h), "test1");
    ph_end(h);
}

static void check_priority(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!strcmp(bullc_job_name(job), "test1"))
        cr_assert_eq(bullc_job_priority(job), 8);
    else
        cr_assert_eq(bullc_job_priority(job), 1);
    ph_complete_in(h, job, 20, NULL);
}

/* node: "[when job is in prioritized state] can change priority of a job" */
Test(parity_job, change_priority_of_a_prioritized_job) {
    ph *h = ph_new("q");
    ph_add(h, "test1", "{\"foo\":\"bar\"}", "{\"priority\":8}");
    const char *id = ph_add(h, "test2", "{\"foo\":\"bar\"}", "{\"priority\":16}");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_change_job_priority(h->q, id, 1, false, &err), 0, "%s", err.message);
    h->proc = check_priority;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 2));
    cr_assert_str_eq(ph_wget(h, 'c', 1)->name, "test1");
    ph_end(h);
}

/* node: "[when lifo option is provided as true] moves job to the head of prioritized jobs with same priority" */
Test(parity_job, change_priority_lifo_among_same_priority) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    ph_add(h, "test1", "{\"foo\":\"bar\"}", "{\"priority\":16}");
    const char *id = ph_add(h, "test2", "{\"foo\":\"bar\"}", "{\"priority\":16}");
    cr_assert_eq(bullc_queue_change_job_priority(h->q, id, 16, true, &err), 0, "%s", err.message);
    cr_assert_str_eq(second_completed(h), "test1");
    ph_end(h);
}

/* node: "[when queue is paused] respects new priority" */
Test(parity_job, change_priority_while_paused) {
    ph *h = ph_new("q");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    ph_add(h, "test1", "{\"foo\":\"bar\"}", "{\"priority\":8}");
    const char *id = ph_add(h, "test2", "{\"foo\":\"bar\"}", "{\"priority\":16}");
    cr_assert_eq(bullc_queue_change_job_priority(h->q, id, 1, false, &err), 0, "%s", err.message);
    cr_assert_str_eq(second_completed(h), "test1");
    ph_end(h);
}

/* node: "[when job is not in wait or prioritized state] does not add a record in priority zset" */
Test(parity_job, change_priority_of_a_delayed_job) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test1", "{\"foo\":\"bar\"}", "{\"delay\":500}");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_change_job_priority(h->q, id, 10, false, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "prioritized"), 0);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    cr_assert_eq(ph_job_num(h, id, "priority"), 10);
    ph_end(h);
}

/* node: "[when job does not exist] throws an error" */
Test(parity_job, change_priority_of_a_missing_job) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_remove_job(h->q, id, true, &err), 0);
    cr_assert_eq(bullc_queue_change_job_priority(h->q, id, 2, false, &err), BULLC_ENOTFOUND);
    missing_key_message(&err, id, "changePriority");
    ph_end(h);
}

/* ---- promote ------------------------------------------------------------------------ */

/* node: "can promote a delayed job to be executed immediately" */
Test(parity_job, promote_a_delayed_job) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"delay\":1500}");
    cr_assert_str_eq(ph_state(h, id), "delayed");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), 0, "%s", err.message);
    cr_assert_eq(ph_job_num(h, id, "delay"), 0);
    cr_assert_str_eq(ph_state(h, id), "waiting");
    ph_end(h);
}

static void delay200(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete_in(h, job, 200, NULL);
}

/* node: "should process a promoted job according to its priority" */
Test(parity_job, promoted_job_by_priority) {
    ph *h = ph_new("q");
    h->proc = delay200;
    bullc_worker_opts *o = ph_wopts(h);
    bullc_worker_opts_set_autorun(o, false);
    bullc_worker *w = ph_worker(h, o);
    cr_assert(PH_WAIT(h, 5000, h->n_ready == 1));
    ph_add(h, "test", "{}", "{\"jobId\":\"a\",\"priority\":1}");
    ph_add(h, "test", "{}", "{\"jobId\":\"b\",\"priority\":2}");
    ph_add(h, "test", "{}", "{\"jobId\":\"d\",\"priority\":4}");
    ph_add(h, "test", "{}", "{\"jobId\":\"c\",\"delay\":2000,\"priority\":3}");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_promote_job(h->q, "c", &err), 0, "%s", err.message);
    bullc_worker_run(w);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 4));
    const char *order[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) cr_assert_str_eq(ph_wget(h, 'c', i)->id, order[i]);
    ph_end(h);
}

/* node: "should not promote a job that is not delayed" */
Test(parity_job, promote_a_job_not_delayed) {
    ph *h = ph_new("q");
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), BULLC_ESTATE);
    char want[96];
    snprintf(want, sizeof want, "Job %s is not in the delayed state. promote", id);
    cr_assert(strstr(err.message, want), "%s", err.message);
    ph_end(h);
}

static void promote_while_paused(bool with_normal) {
    ph *h = ph_new("q");
    if (with_normal) ph_add(h, "normal", "{\"foo\":\"bar\"}", NULL);
    const char *id = ph_add(h, "delayed", "{\"foo\":\"bar\"}", "{\"delay\":100}");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_pause(h->q, &err), 0);
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "waiting"), with_normal ? 2 : 1);
    cr_assert_eq(bullc_queue_resume(h->q, &err), 0);
    cr_assert_eq(ph_count(h, "waiting"), with_normal ? 2 : 1);
    cr_assert_str_eq(ph_state(h, id), "waiting");
    ph_end(h);
}

/* node: "[when queue is paused] should promote delayed job to the right queue" */
Test(parity_job, promote_while_paused) { promote_while_paused(true); }

/* node: "[when queue is empty] should promote delayed job to the right queue" */
Test(parity_job, promote_in_an_empty_queue) { promote_while_paused(false); }

/* ---- a manual job's move answered, with the next job (fetchNext) ----------------- */

/* A ph whose queue speaks BullMQ `major` (its meta names the version before
 * any handle reads it), with a manual worker. */
static ph *major_case(int major, bullc_worker **w) {
    ph *h = ph_new("q");
    if (major == 5) freeReplyObject(ph_cmd("HSET %s opts.maxLenEvents 10000 version bullmq:5.81.5", ph_key(h, "meta")));
    *w = manual_worker(h);
    cr_assert_eq(bullc_worker_bullmq_version(*w), major);
    return h;
}

/* Waits for a move's answer, which never comes inside the call. */
static void wait_answer(ph *h, ph_manual *m) {
    cr_assert_not(m->done, "answered inside the call");
    cr_assert(PH_WAIT(h, 5000, m->done));
}

/* node: "marks the job as completed and returns new job" */
PH_BOTH_MAJORS(parity_job, move_to_completed_fetches_next) {
    bullc_worker *w;
    ph *h = major_case(major, &w);
    char id1[64], id2[64];
    snprintf(id1, sizeof id1, "%s", ph_add(h, "test", "{\"foo\":\"bar\"}", NULL));
    snprintf(id2, sizeof id2, "%s", ph_add(h, "test", "{\"baz\":\"qux\"}", NULL));
    bullc_job *job1 = next_job(h, w);
    cr_assert_str_eq(bullc_job_id(job1), id1);
    cr_assert_str_eq(ph_state(h, id1), "active");
    ph_manual m = {0};
    cr_assert_eq(bullc_job_move_to_completed(job1, "\"succeeded\"", true, ph__got_next, &m), 0);
    wait_answer(h, &m);
    cr_assert_eq(m.code, 0);
    cr_assert_not_null(m.job, "the next job comes with the move");
    cr_assert_str_eq(bullc_job_id(m.job), id2);
    cr_assert_str_eq(bullc_job_token(m.job), "my-token");
    cr_assert_str_eq(ph_state(h, id1), "completed");
    cJSON *j = ph_job(h, id1);
    ph_assert_json(j, "returnvalue", "\"succeeded\"");
    cJSON_Delete(j);
    cr_assert_str_eq(ph_state(h, id2), "active");
    cr_assert_eq(bullc_job_complete(m.job, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, id2), "completed")));
    ph_end(h);
}

static void check_answered(bullc_worker *w, int code, int stalled, void *data) {
    (void)w, (void)stalled;
    cr_assert_eq(code, 0);
    (*(int *)data)++;
}

/* node: "[.moveToFailed > when job is not in active state] throws an error" */
PH_BOTH_MAJORS(parity_job, move_to_failed_not_active) {
    bullc_worker *w;
    ph *h = major_case(major, &w);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3}");
    /* Node's case calls moveToFailed with the token "0" on a job in wait.
     * Taken with "0" (for BullMQ's scripts: no lock at all), the job is
     * found stalled by the second check and moved back to wait. */
    bullc_job *job = ph_next_job(h, w, "0");
    char lock[128];
    snprintf(lock, sizeof lock, "%s%s:lock", ph_key(h, ""), id);
    cr_assert_eq(ph_icmd("EXISTS %s", lock), 0);
    int checks = 0;
    for (int i = 1; i <= 2; i++) {
        ph_vcmd("DEL %s", ph_key(h, "stalled-check"));
        cr_assert_eq(bullc_worker_check_stalled(w, check_answered, &checks), 0);
        cr_assert(PH_WAIT(h, 5000, checks == i));
    }
    cr_assert_str_eq(ph_state(h, id), "waiting");
    ph_manual m = {0};
    cr_assert_eq(bullc_job_move_to_failed(job, "test error", 0, true, ph__got_next, &m), 0);
    wait_answer(h, &m);
    cr_assert_eq(m.code, BULLC_ESTATE);
    cr_assert_null(m.job);
    char want[96];
    snprintf(want, sizeof want, "Job %s is not in the active state. retryJob", id);
    bool said = false;
    for (int i = 0; ph_wget(h, 'e', i); i++) said = said || !strcmp(ph_wget(h, 'e', i)->text, want);
    cr_assert(said, "an error event \"%s\"", want);
    cr_assert_str_eq(ph_state(h, id), "waiting");
    ph_end(h);
}

/* Takes the job of a {attempts: 3, backoff: 300} add (a 'test2' job after it
 * when `another`) and fails it, fetching the next job when `fetch_next`:
 * the failed job goes to delayed; the answer is `m`. */
static ph *fail_to_delayed(int major, bool another, bool fetch_next, ph_manual *m, char *next_id) {
    bullc_worker *w;
    ph *h = major_case(major, &w);
    const char *id = ph_add(h, "test", "{\"foo\":\"bar\"}", "{\"attempts\":3,\"backoff\":300}");
    if (another) snprintf(next_id, 64, "%s", ph_add(h, "test2", "{\"baz\":\"qux\"}", NULL));
    bullc_job *job = next_job(h, w);
    cr_assert_str_eq(bullc_job_id(job), id);
    cr_assert_eq(bullc_job_move_to_failed(job, "test error", 0, fetch_next, ph__got_next, m), 0);
    wait_answer(h, m);
    cr_assert_eq(m->code, 0);
    cr_assert_str_eq(ph_state(h, id), "delayed");
    return h;
}

/* node: "[when another job is waiting] returns the next job data after moving the failed job to delayed" */
PH_BOTH_MAJORS(parity_job, failed_to_delayed_fetches_next) {
    ph_manual m = {0};
    char next_id[64] = "";
    ph *h = fail_to_delayed(major, true, true, &m, next_id);
    cr_assert_not_null(m.job);
    cr_assert_str_eq(bullc_job_id(m.job), next_id);
    cr_assert_str_eq(bullc_job_name(m.job), "test2");
    cr_assert_str_eq(bullc_job_data(m.job), "{\"baz\":\"qux\"}");
    cr_assert_str_eq(ph_state(h, next_id), "active");
    cr_assert_eq(bullc_job_complete(m.job, NULL), 0);
    cr_assert(PH_WAIT(h, 5000, !strcmp(ph_state(h, next_id), "completed")));
    ph_end(h);
}

/* node: "[when no job is waiting] does not return any job data after moving the failed job to delayed" */
PH_BOTH_MAJORS(parity_job, failed_to_delayed_nothing_to_fetch) {
    ph_manual m = {0};
    ph *h = fail_to_delayed(major, false, true, &m, NULL);
    cr_assert_null(m.job);
    ph_end(h);
}

/* node: "[when fetchNext is false and another job is waiting] does not return next job data" */
PH_BOTH_MAJORS(parity_job, failed_to_delayed_without_fetch) {
    ph_manual m = {0};
    char next_id[64] = "";
    ph *h = fail_to_delayed(major, true, false, &m, next_id);
    cr_assert_null(m.job);
    cr_assert_str_eq(ph_state(h, next_id), "waiting");
    ph_end(h);
}
