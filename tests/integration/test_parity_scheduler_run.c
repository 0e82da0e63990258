/* SPDX-License-Identifier: MIT */
/* Node BullMQ's job_scheduler.test.ts, the cases where workers take a
 * scheduler's jobs: the next iteration after a failure, a retry, a
 * promotion or a drain, the iteration count, removeOnComplete, ids with
 * many colons. Node freezes its clock with sinon and steps it; these run on
 * the real clock with intervals long enough that no iteration comes due
 * unless the case wants it, or short (one second) where it does. */
#include "test_sched_util.h"

TestSuite(parity_scheduler_run, .timeout = 60);

static void proc_complete(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_complete(h, job, NULL);
}

static void proc_fail(ph *h, bullc_job *job, int widx) {
    (void)widx;
    ph_fail(h, job, "failed", 0);
}

/* Fails the first job it sees, completes the others. */
static void proc_fail_first(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (h->n_retried + h->n_failed == 0)
        ph_fail(h, job, "failed", 0);
    else
        ph_complete(h, job, NULL);
}

/* The job's stored options (Node's job.opts), from Redis. */
static cJSON *job_opts(ph *h, const char *id) {
    cJSON *job = ph_job(h, id);
    cr_assert_not_null(job, "job %s is gone", id);
    cJSON *opts = cJSON_DetachItemFromObjectCaseSensitive(job, "opts");
    cJSON_Delete(job);
    return opts;
}

/* node: "[when repeatable job fails] should continue repeating" */
Test(parity_scheduler_run, continues_after_a_failure) {
    ph *h = ph_new("q");
    bullc_scheduler_opts *o;
    bullc_scheduler_opts_new(&o);
    bullc_scheduler_opts_set_pattern(o, "0 * 1 * *", "Asia/Calcutta");
    char *id = upsert(h, "test", o, "a", "{\"foo\":\"bar\"}", "{\"priority\":1}");
    cr_assert_eq(ph_count(h, "delayed"), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), 0, "%s", err.message);
    bullc_free(id);
    cr_assert_eq(ph_count(h, "prioritized"), 1);
    h->proc = proc_fail;
    int64_t from = now_ms();
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1), "the job did not fail");
    ph_close_worker(h, 0, false);
    cr_assert_eq(ph_count(h, "failed"), 1);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cJSON *l = schedulers(h);
    cr_assert_eq(cJSON_GetArraySize(l), 1);
    cJSON *s = cJSON_GetArrayItem(l, 0);
    /* the failed job was the promoted iteration: the next one follows its time (prevMillis), not now */
    int64_t first, next;
    cr_assert_eq(bullc_cron_next("0 * 1 * *", "Asia/Calcutta", from, &first, &err), 0, "%s", err.message);
    cr_assert_eq(bullc_cron_next("0 * 1 * *", "Asia/Calcutta", first, &next, &err), 0, "%s", err.message);
    cr_assert_eq(num_field(s, "next"), next);
    cJSON_DeleteItemFromObjectCaseSensitive(s, "next");
    char *got = cJSON_PrintUnformatted(s);
    cJSON *want = cJSON_Parse("{\"key\":\"test\",\"name\":\"a\",\"iterationCount\":2,\"tz\":\"Asia/Calcutta\","
                              "\"pattern\":\"0 * 1 * *\",\"offset\":0,"
                              "\"template\":{\"data\":{\"foo\":\"bar\"},\"opts\":{\"priority\":1}}}");
    cr_assert(cJSON_Compare(s, want, true), "getJobSchedulers()[0] without next: %s", got);
    free(got);
    cJSON_Delete(want);
    cJSON_Delete(l);
    ph_end(h);
}

/* node: "[when repeatable job fails] should not create a new delayed job if the failed job is retried with retryJobs" */
Test(parity_scheduler_run, retried_with_retry_jobs) {
    ph *h = ph_new("q");
    UPSERT(h, "test", every(60000));
    cr_assert_eq(ph_count(h, "delayed"), 0);
    h->proc = proc_fail_first;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1), "the job did not fail");
    cr_assert_eq(ph_count(h, "failed"), 1);
    cr_assert_eq(ph_count(h, "delayed"), 1, "the next iteration");
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_jobs(h->q, "failed", 1000, 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "failed"), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1), "the retried job was not processed");
    cr_assert_eq(ph_count(h, "failed"), 0);
    ph_close_worker(h, 0, false);
    cr_assert_eq(ph_count(h, "waiting") + ph_count(h, "delayed"), 1, "still one iteration ahead, not two");
    ph_end(h);
}

/* Fails the first job; every run records whether one iteration was delayed. */
static void proc_fail_first_check_delayed(ph *h, bullc_job *job, int widx) {
    if (ph_count(h, "delayed") != 1) h->user = (void *)"a run saw other than one delayed job";
    proc_fail_first(h, job, widx);
}

/* node: "[when repeatable job fails] should not create a new delayed job if the failed job is retried with Job.retry()" */
Test(parity_scheduler_run, retried_with_job_retry) {
    ph *h = ph_new("q");
    UPSERT(h, "test", every(60000));
    cr_assert_eq(ph_count(h, "delayed"), 0);
    h->proc = proc_fail_first_check_delayed;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_failed == 1), "the job did not fail");
    cJSON *failed = ph_jobs(h, "failed", 0, -1, true);
    cr_assert_eq(cJSON_GetArraySize(failed), 1);
    const char *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(failed, 0), "id")->valuestring;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_retry_job(h->q, id, "failed", 0, &err), 0, "%s", err.message);
    cJSON_Delete(failed);
    cr_assert_eq(ph_count(h, "failed"), 0);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1), "the retried job was not processed");
    ph_close_worker(h, 0, false);
    cr_assert_null(h->user, "%s", (const char *)h->user);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* Records the first job's opts.repeat.count and opts.delay. */
static void proc_record_opts(ph *h, bullc_job *job, int widx) {
    (void)widx;
    if (!h->user) {
        cJSON *o = job_opts(h, bullc_job_id(job));
        h->user = o;
    }
    ph_complete(h, job, NULL);
}

/* node: "should have the right count value" */
Test(parity_scheduler_run, first_iteration_count) {
    ph *h = ph_new("q");
    UPSERT(h, "test", every(1000));
    h->proc = proc_record_opts;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->user != NULL), "nothing processed");
    ph_close_worker(h, 0, false);
    cJSON *o = h->user;
    cr_assert_eq(ph_jnum(cJSON_GetObjectItemCaseSensitive(o, "repeat"), "count"), 1);
    cJSON_Delete(o);
    ph_end(h);
}

/* node: "should start immediately even after removing the job scheduler and adding it again" */
Test(parity_scheduler_run, immediate_again_after_removal) {
    ph *h = ph_new("q");
    h->proc = proc_record_opts;
    for (int round = 0; round < 2; round++) {
        bullc_free(upsert(h, "repeat", every(2000), NULL, "{\"foo\":\"bar\"}", NULL));
        ph_worker(h, NULL);
        cr_assert(PH_WAIT(h, 10000, h->user != NULL), "round %d: nothing processed", round);
        ph_close_worker(h, round, false);
        cJSON *o = h->user;
        cr_assert_eq(ph_jnum(o, "delay"), 0, "round %d: the first iteration runs at once", round);
        cJSON_Delete(o);
        h->user = NULL;
        bullc_error err = {0};
        cr_assert_eq(bullc_queue_remove_job_scheduler(h->q, "repeat", &err), 0, "%s", err.message);
    }
    ph_end(h);
}

/* node: "[when repeatable job is promoted] keeps one repeatable and one delayed after being processed" */
Test(parity_scheduler_run, promoted_then_processed) {
    ph *h = ph_new("q");
    char *id = upsert(h, "test", pattern("0 * 1 * *"), NULL, NULL, NULL);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    h->proc = proc_complete;
    ph_worker(h, NULL);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_promote_job(h->q, id, &err), 0, "%s", err.message);
    bullc_free(id);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 1), "not completed");
    ph_close_worker(h, 0, false);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    cr_assert_eq(nschedulers(h), 1);
    ph_end(h);
}

/* node: "should emit a waiting event when adding a repeatable job to the waiting list" */
Test(parity_scheduler_run, waiting_event) {
    ph *h = ph_new("q");
    ph_qe(h);
    h->proc = proc_complete;
    ph_worker(h, NULL);
    char *id = upsert(h, "test", pattern("*/1 * * * * *"), NULL, NULL, NULL);
    cr_assert(PH_WAIT(h, 5000, ph_qe_count(h, "waiting", NULL) >= 1), "no waiting event");
    /* the delayed iteration the upsert made, promoted when its second came */
    cr_assert_str_eq(ph_qe_field(ph_qe_get(h, "waiting", 0), "jobId"), id);
    bullc_free(id);
    ph_end(h);
}

/* Runs one worker until it completed one more job, then closes it. */
static void process_one(ph *h) {
    int before = h->n_completed;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed > before), "nothing processed");
    ph_close_worker(h, h->nw - 1, false);
}

/* node: "should schedule next "every" repeatable job after promote" */
Test(parity_scheduler_run, every_after_promote) {
    ph *h = ph_new("q");
    h->proc = proc_complete;
    UPSERT(h, "scheduler-test", every(50000));
    cr_assert_eq(ph_count(h, "waiting"), 1);
    process_one(h);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    bullc_error err = {0};
    cr_assert_geq(bullc_queue_promote_jobs(h->q, 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    cr_assert_eq(ph_count(h, "delayed"), 0);
    process_one(h);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* node: "should schedule next "pattern" repeatable job after promote" */
Test(parity_scheduler_run, pattern_after_promote) {
    ph *h = ph_new("q");
    h->proc = proc_complete;
    UPSERT(h, "scheduler-test", pattern("*/1 * * * * *"));
    cr_assert_eq(ph_count(h, "delayed"), 1);
    bullc_error err = {0};
    cr_assert_geq(bullc_queue_promote_jobs(h->q, 0, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    process_one(h);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    process_one(h);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* node: "should schedule next "pattern" repeatable job after promote with immediately" */
Test(parity_scheduler_run, pattern_immediately_after_promote) {
    ph *h = ph_new("q");
    h->proc = proc_complete;
    bullc_scheduler_opts *o = pattern("*/1 * * * * *");
    bullc_scheduler_opts_set_immediately(o, true);
    UPSERT(h, "scheduler-test", o);
    cr_assert_eq(ph_count(h, "waiting"), 1);
    process_one(h);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    bullc_error err = {0};
    cr_assert_geq(bullc_queue_promote_jobs(h->q, 0, &err), 0, "%s", err.message);
    process_one(h);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    ph_end(h);
}

/* node: "worker should start processing repeatable jobs after drain" */
Test(parity_scheduler_run, processed_after_drain) {
    ph *h = ph_new("q");
    bullc_free(upsert(h, "scheduler-test", pattern("* * * * * *"), NULL, "{\"foo\":\"bar\"}", NULL));
    cr_assert_eq(ph_count(h, "delayed"), 1);
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_drain(h->q, true, &err), 0, "%s", err.message);
    cr_assert_eq(ph_count(h, "delayed"), 1);
    h->proc = proc_complete;
    process_one(h);
    ph_wev *c = ph_wget(h, 'c', 0);
    cr_assert_str_eq(c->data, "{\"foo\":\"bar\"}");
    ph_end(h);
}

/* node: "[when using removeOnComplete] should remove repeated job" */
Test(parity_scheduler_run, remove_on_complete) {
    ph *h = ph_new("q");
    bullc_queue *q2 = ph_queue_with_defaults(h, "{\"removeOnComplete\":true}");
    bullc_scheduler_opts *o = pattern("* * * * * *");
    bullc_scheduler_opts_set_start_date(o, now_ms() + 1000);
    char *id = NULL;
    bullc_error err = {0};
    cr_assert_eq(bullc_queue_upsert_job_scheduler(q2, "test", o, NULL, "{\"foo\":\"bar\"}", NULL, &id, &err), 0, "%s",
                 err.message);
    bullc_free(id);
    bullc_scheduler_opts_free(o);
    h->proc = proc_complete;
    ph_worker(h, NULL);
    /* one iteration a second (Node's case: every 2 s, stepped by its fake clock) */
    cr_assert(PH_WAIT(h, 15000, h->n_completed >= 5), "%d completed", h->n_completed);
    ph_close_worker(h, 0, false);
    for (int i = 1; i < 5; i++) {
        const char *a = ph_wget(h, 'c', i - 1)->id, *b = ph_wget(h, 'c', i)->id;
        /* the ids carry the iterations' times: a second apart at least */
        int64_t ta = strtoll(strrchr(a, ':') + 1, NULL, 10), tb = strtoll(strrchr(b, ':') + 1, NULL, 10);
        cr_assert_geq(tb - ta, 1000, "%s then %s", a, b);
    }
    cr_assert_eq(ph_count(h, "completed"), 0);
    bullc_queue_free(q2);
    ph_end(h);
}

/* node: "should processes delayed jobs by priority" */
Test(parity_scheduler_run, delayed_jobs_by_priority) {
    ph *h = ph_new("q");
    ph_add(h, "test", "{\"p\":1}", "{\"priority\":1,\"delay\":300}");
    ph_add(h, "test", "{\"p\":2}", "{\"priority\":2,\"delay\":200}");
    ph_add(h, "test", "{\"p\":3}", "{\"priority\":3,\"delay\":100}");
    uv_sleep(400);
    h->proc = proc_complete;
    ph_worker(h, NULL);
    cr_assert(PH_WAIT(h, 10000, h->n_completed == 3), "not all processed");
    for (int i = 0; i < 3; i++) {
        char want[16];
        snprintf(want, sizeof want, "{\"p\":%d}", i + 1);
        cr_assert_str_eq(ph_wget(h, 'c', i)->data, want);
    }
    ph_end(h);
}

/* node: "[when job scheduler id contains 5 or more colon segments] should not create duplicate schedulers after a job completes (issue #3828)" */
Test(parity_scheduler_run, many_colons_in_the_id) {
    ph *h = ph_new("q");
    const char *key = "tenant:region:env:service:queue:task";
    UPSERT(h, key, every(60000));
    cr_assert_eq(nschedulers(h), 1);
    h->proc = proc_complete;
    process_one(h);
    cJSON *l = schedulers(h);
    cr_assert_eq(cJSON_GetArraySize(l), 1);
    cr_assert_str_eq(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(l, 0), "key")->valuestring, key);
    cJSON_Delete(l);
    cr_assert_eq(ph_count(h, "delayed"), 1, "its next iteration");
    cr_assert_eq(h->n_errors, 0);
    ph_end(h);
}
